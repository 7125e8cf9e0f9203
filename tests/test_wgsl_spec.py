"""Every WGSL program the WebGPU target generates is valid WGSL, as naga (wgpu's WGSL front end) judges it.

The WGSL twin of tests/test_glsl_spec.py.  A driver is not the judge here either: naga is, reached
through wgpu-py (:func:`gpuconv.validate.validate_wgsl`), and each program's compute pipeline is
made too, on a device asked for WebGPU's guaranteed limits, so a workgroup larger than every
device allows is refused.  Checked: every program family, built directly (Conv2DMMProgram with
each tiling of CONV2D_MM_TILES, Conv2DNaiveProgram, DepthwiseConv2DProgram,
DepthwiseConv2DVec4Program, Conv2DDerInputProgram, DepthwiseConv2DDerInputProgram) over both data
formats, strides, dilations, padding, groups, multipliers and every fused epilogue (each activation,
PReLU weights per channel and per element, a bias per channel and of the output's shape); then
whatever the target lowers the selftest table and seeded random configurations to.  The first
tests prove that naga, run as :mod:`gpuconv.validate` runs it, catches WGSL mistakes and that its
message comes through.

Needs wgpu-py and a Vulkan driver (Mesa's lavapipe): locally a missing one skips these tests;
on CI (``CI`` set) it fails them.  Each distinct source is validated once.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

import gpuconv
from gpuconv import checks, registry, validate
from gpuconv.arguments import ACTIVATIONS
from gpuconv.programs import Epilogue
from gpuconv.target import WEBGPU, NotOnTargetError
from gpuconv.webgpu.limits import WebGPULimits
from gpuconv.webgpu.programs import (
    CONV2D_MM_TILES,
    ComputeProgramSpec,
    conv2d_backprop_input_program,
    conv2d_mm_program,
    conv2d_naive_program,
    depthwise_vec4_applies,
    depthwise_vec4_program,
)

RANDOM_SEED = 11
RANDOM_COUNT = 120
LIMITS = WebGPULimits()  # WebGPU's guaranteed limits: what the programs are generated for by default


@pytest.fixture(scope="session")
def naga() -> Any:
    """The validation device (wgpu-py's); skips (fails on CI) without wgpu-py or a Vulkan adapter."""
    try:
        return validate.wgsl_device()
    except validate.WGSLValidatorUnavailableError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"no WGSL validator on CI: {exc}")
        pytest.skip(f"no WGSL validator: {exc}")


# -- naga catches WGSL mistakes, and says where ------------------------------------------------------------

VALID = """// a doubling kernel
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> result: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
  if (id.x < arrayLength(&result)) {
    result[id.x] = x[id.x] * 2.0;
  }
}
"""

# Each is VALID with one mistake (several are GLSL habits), and a phrase of naga's message about it.
WGSL_MISTAKES = [
    ("u32-times-f32", VALID.replace("x[id.x] * 2.0", "x[id.x] * id.x"), "cannot convert"),
    ("missing-semicolon", VALID.replace("* 2.0;", "* 2.0"), "expected `;`"),
    ("write-to-read-only-storage", VALID.replace("result[id.x] = x[id.x] * 2.0;", "x[id.x] = 2.0;"),
     "not permitted"),
    ("u32-into-i32", VALID.replace("  if (id.x", "  let i: i32 = id.x;\n  if (id.x"), "expected to be `i32`"),
    ("glsl-texture2D", VALID.replace("x[id.x] * 2.0", "texture2D(x, 0.5)"), "texture2D"),
    ("glsl-float-constructor", VALID.replace("x[id.x] * 2.0", "float(x[id.x])"), "`float`"),
    ("glsl-for-loop", VALID.replace("result[id.x] = x[id.x] * 2.0;",
                                    "for (int i = 0; i < 4; i++) { result[id.x] = 1.0; }"), "expected"),
    ("duplicate-binding", VALID.replace("@binding(1)", "@binding(0)"), "conflict"),
    ("assign-to-let", VALID.replace("result[id.x] = x[id.x] * 2.0;",
                                    "let v = 1.0;\n    v = 2.0;\n    result[id.x] = v;"), "immutable"),
]


def test_a_valid_compute_program_passes(naga):
    validate.validate_wgsl(VALID)
    validate.validate_wgsl(VALID, pipeline=True)


@pytest.mark.parametrize("source, expected", [m[1:] for m in WGSL_MISTAKES], ids=[m[0] for m in WGSL_MISTAKES])
def test_naga_rejects_wgsl_mistakes_with_its_message(naga, source, expected):
    with pytest.raises(validate.WGSLValidationError) as caught:
        validate.validate_wgsl(source)
    assert expected in caught.value.messages
    assert caught.value.description == "a doubling kernel"
    assert str(caught.value).startswith("not valid WGSL (a doubling kernel):")
    assert expected in str(caught.value)


@pytest.mark.parametrize("source, expected", [
    (VALID.replace("@workgroup_size(64)", "@workgroup_size(512)"), "max_compute_invocations_per_workgroup"),
    (VALID.replace("fn main", "fn start"), "entry point 'main'"),
], ids=["workgroup-beyond-the-guaranteed-256", "no-main"])
def test_the_pipeline_check_catches_what_the_module_does_not(naga, source, expected):
    validate.validate_wgsl(source)  # a valid module ...
    with pytest.raises(validate.WGSLValidationError, match=expected.replace("(", r"\(")):
        validate.validate_wgsl(source, pipeline=True)  # ... but no pipeline within WebGPU's guaranteed limits


def test_a_broken_generated_program_is_caught_with_its_description(naga):
    source = gpuconv.shader_source("conv2d", (1, 7, 7, 6), (3, 3, 6, 4), padding="SAME", target="webgpu",
                                   algorithm="direct")
    broken = source.replace("let ", "lett ", 1)
    assert broken != source
    with pytest.raises(validate.WGSLValidationError) as caught:
        validate.validate_wgsl(broken)
    assert caught.value.description.startswith("gpuconv Conv2DNaiveProgram (WGSL): x 1x7x7x6, W 3x3x6x4")
    assert "parsing error" in caught.value.messages


def test_one_device_serves_every_validation(naga):
    assert validate.wgsl_device() is naga
    assert naga.limits["max-compute-invocations-per-workgroup"] == LIMITS.max_compute_invocations_per_workgroup


def test_a_missing_wgpu_says_what_to_install(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_wgpu(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "wgpu" or name.startswith("wgpu."):
            raise ImportError("No module named 'wgpu'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(validate, "_wgsl_device", [])  # as in a fresh process
    monkeypatch.setattr(builtins, "__import__", no_wgpu)
    with pytest.raises(validate.WGSLValidatorUnavailableError, match=r"pip install 'gpuconv\[webgpu\]'"):
        validate.validate_wgsl(VALID)


def test_no_adapter_says_what_to_install(monkeypatch):
    wgpu = pytest.importorskip("wgpu")

    def no_adapter(**kwargs: Any) -> None:
        return None

    monkeypatch.setattr(validate, "_wgsl_device", [])
    monkeypatch.setattr(wgpu.gpu, "request_adapter_sync", no_adapter)
    with pytest.raises(validate.WGSLValidatorUnavailableError, match="apt-get install mesa-vulkan-drivers libvulkan1"):
        validate.validate_wgsl(VALID)


# -- every program family, built directly --------------------------------------------------------------------


def _nchw(x: tuple[int, ...]) -> tuple[int, ...]:
    return (x[0], x[3], x[1], x[2])


def _canonical(op: str, *shapes: Any, bias: str | None = None, activation: str | None = None,
               prelu: str = "channel", **kwargs: Any) -> Any:
    """The WebGL2 direct program's spec of a call (its geometry and epilogue are what the WebGPU
    target lowers): ``bias``/``prelu`` "channel" (one per output channel) or "full" (the output's shape)."""
    algorithm = {"algorithm": "direct"} if registry.get(op).algorithms else {}
    plain = registry.plan_shapes(op, *shapes, **kwargs, **algorithm)
    channels = checks.result_channels(op, plain, kwargs.get("data_format"))
    fused: dict[str, Any] = {}
    if bias is not None:
        fused["bias"] = np.zeros((channels,) if bias == "channel" else plain.out_shape, np.float32)
    if activation is not None:
        fused["activation"] = activation
    if activation == "prelu":
        fused["prelu_weights"] = np.zeros((channels,) if prelu == "channel" else plain.out_shape, np.float32)
    if activation == "leakyrelu":
        fused["leakyrelu_alpha"] = 1 / 3
    return registry.plan_shapes(op, *shapes, **kwargs, **algorithm, **fused).specs[0]


def _epilogues() -> Iterator[dict[str, Any]]:
    """Every fused epilogue: no bias or one of each kind, with each activation (PReLU's weights both ways)."""
    for activation in (None, *ACTIVATIONS):
        for bias in (None, "channel", "full"):
            if activation == "prelu":
                for prelu in ("channel", "full"):
                    yield {"activation": activation, "bias": bias, "prelu": prelu}
            else:
                yield {"activation": activation, "bias": bias}


#: (x in NHWC, filter, keyword arguments): the conv2d geometries the GEMM and the naive program are checked over.
CONV2D_SHAPES = [
    ((1, 6, 7, 5), (3, 3, 5, 6), {"padding": "SAME"}),
    ((2, 9, 8, 8), (3, 2, 8, 12), {"padding": "VALID", "strides": 2}),
    ((1, 9, 9, 3), (3, 3, 3, 4), {"padding": [[1, 0], [2, 1]], "dilations": 2}),
    ((1, 8, 8, 6), (3, 3, 2, 9), {"padding": "SAME", "groups": 3}),
    ((3, 5, 5, 1), (1, 1, 1, 40), {}),
    ((1, 20, 20, 40), (5, 5, 40, 3), {"padding": 2, "strides": (1, 2), "dim_rounding_mode": "ceil"}),
]
DEPTHWISE_SHAPES = [
    ((1, 6, 7, 8), (3, 3, 8, 1), {"padding": "SAME"}),          # vec4 (NHWC)
    ((2, 9, 8, 4), (3, 2, 4, 1), {"padding": "VALID", "strides": 2}),
    ((1, 9, 9, 12), (3, 3, 12, 1), {"padding": "SAME", "dilations": 2}),
    ((1, 7, 7, 3), (3, 3, 3, 2), {"padding": "SAME"}),          # multiplier 2: the naive program
    ((1, 9, 10, 5), (2, 3, 5, 3), {"padding": [[0, 1], [1, 1]], "strides": (2, 1)}),
]
#: (op, input_shape in NHWC, filter, dy in NHWC, keyword arguments)
GRADIENT_SHAPES = [
    ("conv2d_backprop_input", (1, 7, 7, 3), (3, 3, 3, 4), (1, 4, 4, 4), {"padding": "SAME", "strides": 2}),
    ("conv2d_backprop_input", (2, 8, 9, 5), (2, 3, 5, 6), (2, 7, 7, 6), {"padding": "VALID"}),
    ("conv2d_backprop_input", (1, 9, 9, 2), (3, 3, 2, 3), (1, 7, 7, 3), {"padding": 1, "dilations": 2}),
    ("depthwise_conv2d_backprop_input", (1, 6, 6, 3), (3, 3, 3, 2), (1, 3, 3, 6), {"padding": "SAME", "strides": 2}),
    ("depthwise_conv2d_backprop_input", (2, 7, 7, 4), (2, 2, 4, 1), (2, 6, 6, 4), {"padding": "VALID"}),
]


@dataclass
class Program:
    label: str
    spec: ComputeProgramSpec


def _formats(*shapes: tuple[int, ...]) -> Iterator[tuple[str, tuple[tuple[int, ...], ...]]]:
    """``shapes`` (NHWC) in each data format."""
    yield "NHWC", shapes
    yield "NCHW", tuple(_nchw(shape) for shape in shapes)


def conv2d_programs() -> Iterator[Program]:
    for x, f, kwargs in CONV2D_SHAPES:
        for fmt, (xs,) in _formats(x):
            canonical = _canonical("conv2d", xs, f, data_format=fmt, **kwargs)
            g = canonical.geometry
            for tile in CONV2D_MM_TILES:
                yield Program(f"Conv2DMMProgram {tile.describe()} x {xs} {fmt} {kwargs}",
                              conv2d_mm_program(g, Epilogue(), LIMITS, tile))
            yield Program(f"Conv2DNaiveProgram x {xs} {fmt} {kwargs}", conv2d_naive_program(g, Epilogue(), LIMITS))
    # every epilogue, on both programs and both formats (one geometry)
    x, f, kwargs = CONV2D_SHAPES[0]
    for fmt, (xs,) in _formats(x):
        for fused in _epilogues():
            canonical = _canonical("conv2d", xs, f, data_format=fmt, **kwargs, **fused)
            g, epilogue = canonical.geometry, canonical.epilogue
            yield Program(f"Conv2DMMProgram {fmt} {fused}", conv2d_mm_program(g, epilogue, LIMITS, CONV2D_MM_TILES[0]))
            yield Program(f"Conv2DNaiveProgram {fmt} {fused}", conv2d_naive_program(g, epilogue, LIMITS))


def depthwise_programs() -> Iterator[Program]:
    for x, f, kwargs in DEPTHWISE_SHAPES:
        for fmt, (xs,) in _formats(x):
            for fused in ({}, {"activation": "prelu", "bias": "channel"}, {"activation": "prelu", "prelu": "full",
                                                                             "bias": "full"}):
                canonical = _canonical("depthwise_conv2d", xs, f, data_format=fmt, **kwargs, **fused)
                g, epilogue = canonical.geometry, canonical.epilogue
                label = f"x {xs} filter {f} {fmt} {kwargs} {fused}"
                yield Program(f"DepthwiseConv2DProgram {label}", conv2d_naive_program(g, epilogue, LIMITS))
                if depthwise_vec4_applies(g, epilogue):
                    yield Program(f"DepthwiseConv2DVec4Program {label}", depthwise_vec4_program(g, epilogue, LIMITS))
    x, f, kwargs = DEPTHWISE_SHAPES[0]
    for fused in _epilogues():
        canonical = _canonical("depthwise_conv2d", x, f, **kwargs, **fused)
        g, epilogue = canonical.geometry, canonical.epilogue
        yield Program(f"DepthwiseConv2DProgram {fused}", conv2d_naive_program(g, epilogue, LIMITS))
        if depthwise_vec4_applies(g, epilogue):
            yield Program(f"DepthwiseConv2DVec4Program {fused}", depthwise_vec4_program(g, epilogue, LIMITS))


def gradient_programs() -> Iterator[Program]:
    for op, input_shape, f, dy, kwargs in GRADIENT_SHAPES:
        for fmt, (shape, dys) in _formats(input_shape, dy):
            canonical = _canonical(op, shape, f, dys, data_format=fmt, **kwargs)
            yield Program(f"{op} input_shape {shape} {fmt} {kwargs}",
                          conv2d_backprop_input_program(canonical.geometry, canonical.epilogue, LIMITS))
    # the transposed convolution's epilogues: conv2d_transpose(x=dy, filter, output_shape)
    for fmt in ("NHWC", "NCHW"):
        dy, out = ((1, 4, 4, 4), (1, 7, 7, 3)) if fmt == "NHWC" else ((1, 4, 4, 4), (1, 3, 7, 7))
        for fused in _epilogues():  # "full": a bias (PReLU weights) of the result's shape
            canonical = _canonical("conv2d_transpose", dy, (3, 3, 3, 4), out, padding="SAME", strides=2,
                                   data_format=fmt, **fused)
            bias_full = bool(getattr(canonical, "bias_full", False))
            yield Program(f"conv2d_transpose {fmt} {fused}",
                          conv2d_backprop_input_program(canonical.geometry, canonical.epilogue, LIMITS,
                                                        bias_full=bias_full))


FAMILIES = {"conv2d": conv2d_programs, "depthwise": depthwise_programs, "gradients": gradient_programs}
#: The program names each family must produce (the test fails if one goes missing from the sweep).
FAMILY_PROGRAMS = {
    "conv2d": {"Conv2DMMProgram", "Conv2DNaiveProgram"},
    "depthwise": {"DepthwiseConv2DProgram", "DepthwiseConv2DVec4Program"},
    "gradients": {"Conv2DDerInputProgram", "DepthwiseConv2DDerInputProgram"},
}


def _check(sources: dict[str, str]) -> list[str]:
    """The failures among ``sources`` (source -> label), each with naga's message."""
    failures = []
    for source, label in sources.items():
        try:
            validate.validate_wgsl(source, pipeline=True)
        except validate.WGSLValidationError as exc:
            failures.append(f"{label}:\n{exc}")
    return failures


@pytest.mark.parametrize("family", list(FAMILIES))
def test_every_program_family_is_valid_wgsl(naga, family):
    sources: dict[str, str] = {}
    names = set()
    tiles = set()
    for program in FAMILIES[family]():
        program.spec.check(LIMITS)  # within WebGPU's guaranteed limits, workgroup memory included
        names.add(program.spec.name)
        if program.spec.tile is not None:
            tiles.add(program.spec.tile)
        sources.setdefault(WEBGPU.source(program.spec), program.label)
    assert names == FAMILY_PROGRAMS[family]
    if family == "conv2d":
        assert tiles == set(CONV2D_MM_TILES)
    failures = _check(sources)
    assert not failures, f"{len(failures)} of {len(sources)} programs are not valid WGSL:\n" + "\n\n".join(failures[:5])


# -- what the target lowers the selftest table and random configurations to -----------------------------------


def _lowered(op: str, leading: dict[str, Any], kwargs: dict[str, Any], algorithm: str) -> tuple[str, ...]:
    """The WGSL sources of one call on the WebGPU target, or none where the target does not run the op."""
    shapes, extra = registry.shape_call(op, leading)
    choice = {"algorithm": algorithm} if registry.get(op).algorithms else {}
    try:
        return registry.shader_sources(op, *shapes, target="webgpu", **kwargs, **extra, **choice)
    except NotOnTargetError:
        return ()
    except ValueError as exc:  # im2col is conv2d's and conv1d's only
        if "runs conv2d and conv1d only" not in str(exc):
            raise
        return ()


def _fused_arrays(bias: Any, prelu: Any, residual: Any = None) -> dict[str, Any]:
    """Zero-filled fused inputs of these shapes (``None``: not given)."""
    fused: dict[str, Any] = {}
    if bias is not None:
        fused["bias"] = np.zeros(bias, np.float32)
    if prelu is not None:
        fused["prelu_weights"] = np.zeros(prelu, np.float32)
    if residual is not None:
        fused["residual"] = np.zeros(residual, np.float32)
    return fused


def lowered_sources() -> dict[str, str]:
    sources: dict[str, str] = {}
    for number, case in enumerate(checks.SELFTEST_CASES):
        kwargs = dict(case.kwargs())
        if case.bias or case.activation:
            channels = checks.result_channels(case.op, case.plan(), case.data_format)
            if case.bias:
                kwargs["bias"] = np.zeros(channels, np.float32)
            if case.activation:
                kwargs["activation"] = case.activation
            if case.activation == "prelu":
                kwargs["prelu_weights"] = np.zeros(channels, np.float32)
        for algorithm in WEBGPU.algorithms:
            for source in _lowered(case.op, case.leading(), kwargs, algorithm):
                sources.setdefault(source, f"selftest case {number} ({case.label}), algorithm={algorithm!r}")
    for index in range(RANDOM_COUNT):
        config = checks.config_at(RANDOM_SEED, index)
        kwargs = {k: v for k, v in config.kwargs if k != "algorithm"}
        kwargs.update(_fused_arrays(config.bias, config.prelu, config.residual))
        for algorithm in WEBGPU.algorithms:
            for source in _lowered(config.op, config.leading(), kwargs, algorithm):
                sources.setdefault(source, f"random seed {RANDOM_SEED} index {index}: {config.describe()}, "
                                           f"algorithm={algorithm!r}")
    return sources


def test_what_the_target_runs_for_the_selftest_and_random_calls_is_valid_wgsl(naga):
    sources = lowered_sources()
    assert len(sources) > 50, len(sources)
    failures = _check(sources)
    assert not failures, f"{len(failures)} of {len(sources)} programs are not valid WGSL:\n" + "\n\n".join(failures[:5])
