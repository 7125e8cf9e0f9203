"""The gradient and transposed convolutions on the GPU (TF.js's Conv2DDerInputProgram,
Conv2DDerFilterProgram, DepthwiseConv2DDerInputProgram, DepthwiseConv2DDerFilterProgram),
each against its float64 oracle twin (gpuconv.oracle.<op>), the adjoint identities and
the oracle's argument errors; conv3d (TF.js's Conv3DProgram); and conv1d with a stride and a
dilation both above 1."""

from __future__ import annotations

from typing import Any, Dict, Tuple

import numpy as np
import pytest
from helpers import relative_error

import gpuconv
from gpuconv import codegen, ops, validate

TOL = 1e-5


def _data(rng: np.random.Generator, *shapes: Tuple[int, ...]) -> list:
    return [rng.uniform(-1, 1, size=shape).astype(np.float32) for shape in shapes]


def _check(result: np.ndarray, reference: np.ndarray) -> float:
    assert result.shape == reference.shape, (result.shape, reference.shape)
    assert result.dtype == np.float32
    error = relative_error(result, reference)
    assert error <= TOL, f"relative error {error:.3g} > {TOL:g}"
    return error


# -- conv1d: a conv2d of height 1, so a stride and a dilation both above 1 run ------------------------------


@pytest.mark.parametrize("data_format", ["NWC", "NCW"])
def test_conv1d_takes_a_stride_and_a_dilation_both_above_1(runtime, rng, data_format):
    x, w = _data(rng, (2, 19, 3) if data_format == "NWC" else (2, 3, 19), (3, 3, 4))
    kwargs: Dict[str, Any] = dict(stride=2, dilation=3, padding="SAME", data_format=data_format)
    _check(gpuconv.conv1d(x, w, runtime=runtime, **kwargs), gpuconv.oracle.conv1d(x, w, **kwargs))


# -- the cases: forward convolutions whose gradients (and transposes) run on the GPU -----------------------
# (x shape in NHWC, filter [FH, FW, inC, outC], the forward arguments, data format).  Between them
# they cover input and output depths 1 to 9 (so every vec4 remainder), strides, dilations, both
# together, every padding form (SAME, VALID, a number with each rounding mode, explicit pairs and
# TF's 4x2 list), a batch of 1 and above, both data formats and rank 3 (no batch).

CONV_CASES = [
    ((2, 7, 7, 5), (3, 3, 5, 6), dict(strides=2, padding="SAME"), "NHWC"),
    ((1, 8, 9, 3), (3, 2, 3, 9), dict(strides=(2, 3), dilations=2, padding=[[1, 2], [0, 3]]), "NCHW"),
    ((2, 6, 6, 1), (2, 2, 1, 4), dict(strides=2, padding=1, dim_rounding_mode="ceil"), "NHWC"),
    ((3, 5, 6, 7), (1, 3, 7, 3), dict(dilations=(1, 2), padding="VALID"), "NCHW"),
    ((6, 6, 2), (3, 3, 2, 7), dict(padding="SAME"), "NHWC"),
    ((1, 9, 9, 8), (5, 5, 8, 2), dict(strides=3, padding=2, dim_rounding_mode="floor"), "NHWC"),
    ((1, 5, 7, 4), (3, 3, 4, 5), dict(padding=[[0, 0], [2, 0], [1, 1], [0, 0]]), "NHWC"),
    ((5, 7, 9), (2, 3, 9, 8), dict(strides=(1, 2), dilations=3, padding=1, dim_rounding_mode="round"), "NCHW"),
    ((2, 4, 5, 6), (3, 3, 6, 1), dict(strides=2, dilations=2, padding="SAME"), "NCHW"),
]

DEPTHWISE_CASES = [
    ((2, 7, 7, 3), (3, 3, 3, 2), dict(strides=2, padding="SAME"), "NHWC"),
    ((1, 9, 8, 1), (3, 3, 1, 4), dict(dilations=2, padding=[[2, 1], [0, 2]]), "NCHW"),
    ((3, 6, 6, 5), (2, 2, 5, 1), dict(strides=(2, 1), padding=1, dim_rounding_mode="ceil"), "NHWC"),
    ((7, 5, 9), (1, 3, 9, 3), dict(padding="VALID"), "NHWC"),
    ((2, 5, 6, 8), (3, 2, 8, 1), dict(dilations=(2, 1), padding="SAME"), "NCHW"),
    ((1, 6, 7, 6), (3, 3, 6, 2), dict(strides=3, padding=[[0, 0], [0, 0], [1, 1], [2, 0]]), "NCHW"),
    ((1, 8, 8, 7), (4, 4, 7, 1), dict(strides=2, padding=1, dim_rounding_mode="floor"), "NHWC"),
]


def _in_format(shape: Tuple[int, ...], data_format: str) -> Tuple[int, ...]:
    """An NHWC (or HWC) shape in ``data_format``."""
    if data_format == "NHWC":
        return tuple(shape)
    return (shape[0], shape[3], shape[1], shape[2]) if len(shape) == 4 else (shape[2], shape[0], shape[1])


def _forward(rng: np.random.Generator, case: tuple, depthwise: bool = False) -> tuple:
    """``x``, ``filter``, ``dy`` (random, of the forward output's shape) and the arguments of one case."""
    x_shape, filter_shape, kwargs, data_format = case
    kwargs = dict(kwargs, data_format=data_format)
    x, w = _data(rng, _in_format(x_shape, data_format), filter_shape)
    forward = gpuconv.oracle.depthwise_conv2d if depthwise else gpuconv.oracle.conv2d
    (dy,) = _data(rng, forward(x, w, **kwargs).shape)
    return x, w, dy, kwargs


def _ids(cases: list) -> list:
    return [f"{'x'.join(map(str, c[0]))}-{c[3]}-" + ",".join(f"{k}={v}" for k, v in c[2].items()) for c in cases]


#: the largest error each op has shown (for a report: ``LARGEST`` after the run)
LARGEST: Dict[str, float] = {}


def _record(op: str, error: float) -> None:
    LARGEST[op] = max(LARGEST.get(op, 0.0), error)


@pytest.mark.parametrize("case", CONV_CASES, ids=_ids(CONV_CASES))
def test_conv2d_backprop_input(runtime, rng, case):
    x, w, dy, kwargs = _forward(rng, case)
    result = gpuconv.conv2d_backprop_input(x.shape, w, dy, runtime=runtime, **kwargs)
    _record("conv2d_backprop_input", _check(result, gpuconv.oracle.conv2d_backprop_input(x.shape, w, dy, **kwargs)))


@pytest.mark.parametrize("case", CONV_CASES, ids=_ids(CONV_CASES))
def test_conv2d_backprop_filter(runtime, rng, case):
    x, w, dy, kwargs = _forward(rng, case)
    result = gpuconv.conv2d_backprop_filter(x, w.shape, dy, runtime=runtime, **kwargs)
    _record("conv2d_backprop_filter", _check(result, gpuconv.oracle.conv2d_backprop_filter(x, w.shape, dy, **kwargs)))


#: the transposed convolution's fused epilogue, one per case
EPILOGUES = [
    dict(),
    dict(bias="channel", activation="relu"),
    dict(bias="channel", activation="leakyrelu", leakyrelu_alpha=0.3),
    dict(bias="full", activation="elu"),
    dict(activation="prelu", prelu_weights="channel"),
    dict(bias="channel", activation="sigmoid"),
    dict(bias="scalar", activation="relu6"),
    dict(bias="full", activation="prelu", prelu_weights="full"),
    dict(bias="channel", activation="linear"),
]


def _epilogue_arrays(rng: np.random.Generator, spec: Dict[str, Any], out_shape: Tuple[int, ...],
                     channel_axis: int) -> Dict[str, Any]:
    kwargs = dict(spec)
    for name in ("bias", "prelu_weights"):
        kind = kwargs.get(name)
        if kind == "channel":
            kwargs[name] = _data(rng, (out_shape[channel_axis],))[0]
        elif kind == "full":
            kwargs[name] = _data(rng, out_shape)[0]
        elif kind == "scalar":
            kwargs[name] = np.float32(0.25)
    return kwargs


@pytest.mark.parametrize("case, epilogue", list(zip(CONV_CASES, EPILOGUES)), ids=_ids(CONV_CASES))
def test_conv2d_transpose(runtime, rng, case, epilogue):
    # the transposed convolution of dy by the filter is the gradient of the forward one: the
    # forward x's shape is its output_shape, and the filter [FH, FW, inC, outC] reads as
    # conv2d_transpose's [FH, FW, out_channels, in_channels]
    x, w, dy, kwargs = _forward(rng, case)
    channel_axis = (-1 if kwargs["data_format"] == "NHWC" else (1 if x.ndim == 4 else 0))
    fused = _epilogue_arrays(rng, epilogue, x.shape, channel_axis)
    result = gpuconv.conv2d_transpose(dy, w, x.shape, runtime=runtime, **kwargs, **fused)
    expected = gpuconv.oracle.conv2d_transpose(dy, w, x.shape, **kwargs, **fused)
    _record("conv2d_transpose", _check(result, expected))


@pytest.mark.parametrize("case", DEPTHWISE_CASES, ids=_ids(DEPTHWISE_CASES))
def test_depthwise_conv2d_backprop_input(runtime, rng, case):
    x, w, dy, kwargs = _forward(rng, case, depthwise=True)
    result = gpuconv.depthwise_conv2d_backprop_input(x.shape, w, dy, runtime=runtime, **kwargs)
    expected = gpuconv.oracle.depthwise_conv2d_backprop_input(x.shape, w, dy, **kwargs)
    _record("depthwise_conv2d_backprop_input", _check(result, expected))


@pytest.mark.parametrize("case", DEPTHWISE_CASES, ids=_ids(DEPTHWISE_CASES))
def test_depthwise_conv2d_backprop_filter(runtime, rng, case):
    x, w, dy, kwargs = _forward(rng, case, depthwise=True)
    result = gpuconv.depthwise_conv2d_backprop_filter(x, w.shape, dy, runtime=runtime, **kwargs)
    expected = gpuconv.oracle.depthwise_conv2d_backprop_filter(x, w.shape, dy, **kwargs)
    _record("depthwise_conv2d_backprop_filter", _check(result, expected))


def test_the_cases_cover_what_they_claim():
    depths = {c[0][-1] for c in CONV_CASES + DEPTHWISE_CASES}
    dy_depths = {c[1][-1] for c in CONV_CASES} | {c[0][-1] * c[1][-1] for c in DEPTHWISE_CASES}
    assert depths >= set(range(1, 10)) and dy_depths >= set(range(1, 10))
    padding = {type(c[2]["padding"]).__name__ if not isinstance(c[2]["padding"], str) else c[2]["padding"]
               for c in CONV_CASES + DEPTHWISE_CASES}
    assert padding == {"SAME", "VALID", "int", "list"}
    assert {c[2].get("dim_rounding_mode") for c in CONV_CASES} == {None, "floor", "round", "ceil"}
    assert any("strides" in c[2] and "dilations" in c[2] for c in CONV_CASES)
    assert {len(c[0]) for c in CONV_CASES} == {len(c[0]) for c in DEPTHWISE_CASES} == {3, 4}
    assert {c[1][-1] > 1 for c in DEPTHWISE_CASES} == {True, False}  # channel multipliers 1 and above


# -- the adjoint identities, on the GPU: <conv(x, w), dy> = <x, dx(dy)> = <w, dw(x, dy)> -------------------


def _inner(a: np.ndarray, b: np.ndarray) -> Tuple[float, float]:
    """The inner product and the sum of |a||b| (the scale its rounding error is relative to)."""
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    return float(np.sum(a64 * b64)), float(np.sum(np.abs(a64 * b64)))


def _assert_equal_products(left: Tuple[float, float], right: Tuple[float, float]) -> None:
    assert abs(left[0] - right[0]) <= TOL * max(left[1], right[1]), (left, right)


def test_adjoint_identities_of_conv2d_on_the_gpu(runtime, rng):
    x, w, dy, kwargs = _forward(rng, CONV_CASES[1])
    y = gpuconv.conv2d(x, w, runtime=runtime, **kwargs)
    dx = gpuconv.conv2d_backprop_input(x.shape, w, dy, runtime=runtime, **kwargs)
    dw = gpuconv.conv2d_backprop_filter(x, w.shape, dy, runtime=runtime, **kwargs)
    _assert_equal_products(_inner(y, dy), _inner(x, dx))
    _assert_equal_products(_inner(y, dy), _inner(w, dw))


def test_adjoint_identity_of_conv2d_transpose_on_the_gpu(runtime, rng):
    # conv2d_transpose(., w, shape of z) is the adjoint of z -> conv2d(z, w)
    z, w, x, kwargs = _forward(rng, CONV_CASES[0])
    transposed = gpuconv.conv2d_transpose(x, w, z.shape, runtime=runtime, **kwargs)
    _assert_equal_products(_inner(gpuconv.conv2d(z, w, runtime=runtime, **kwargs), x), _inner(z, transposed))


def test_adjoint_identities_of_depthwise_conv2d_on_the_gpu(runtime, rng):
    x, w, dy, kwargs = _forward(rng, DEPTHWISE_CASES[0], depthwise=True)
    y = gpuconv.depthwise_conv2d(x, w, runtime=runtime, **kwargs)
    dx = gpuconv.depthwise_conv2d_backprop_input(x.shape, w, dy, runtime=runtime, **kwargs)
    dw = gpuconv.depthwise_conv2d_backprop_filter(x, w.shape, dy, runtime=runtime, **kwargs)
    _assert_equal_products(_inner(y, dy), _inner(x, dx))
    _assert_equal_products(_inner(y, dy), _inner(w, dw))



# -- bad arguments: the same error as the oracle twin, before any GL ---------------------------------------

X = np.zeros((1, 6, 6, 3), np.float32)
W = np.zeros((3, 3, 3, 4), np.float32)      # conv2d [FH, FW, inC, outC]
DY = np.zeros((1, 4, 4, 4), np.float32)     # VALID, stride 1
WD = np.zeros((3, 3, 3, 2), np.float32)     # depthwise [FH, FW, inC, multiplier]
DYD = np.zeros((1, 4, 4, 6), np.float32)

BAD = [
    # (op, positional arguments, keyword arguments)
    ("conv2d_backprop_input", ((1, 6, 6, 3), W, np.zeros((1, 5, 5, 4), np.float32)), {}),  # dy's shape
    ("conv2d_backprop_input", ((1, 6, 6, 5), W, DY), {}),                                    # channels
    ("conv2d_backprop_input", ((1, 6, 6, 3), W, np.zeros((4, 4, 5), np.float32)), {}),
    ("conv2d_backprop_input", ((2, 6, 6, 3), W, DY[0]), {}),                                 # batch without dy's
    ("conv2d_backprop_input", ((1, 6, 6, 3), W[0], DY), {}),                                 # filter rank
    ("conv2d_backprop_input", ((1, 6, 6, 3), W.astype(np.int32), DY), {}),                   # dtype
    ("conv2d_backprop_input", ((1, 6, 6), W, DY), {}),                                       # input_shape rank
    ("conv2d_backprop_input", ((1, 6, 6, 3), W, DY), dict(data_format="NWHC")),
    ("conv2d_backprop_input", ((1, 6, 6, 3), W, DY), dict(padding="FULL")),
    ("conv2d_backprop_input", ((1, 6, 6, 3), W, DY), dict(strides=0)),
    ("conv2d_backprop_input", ("166", W, DY), {}),
    ("conv2d_backprop_filter", (X, (3, 3, 3, 4), np.zeros((1, 3, 3, 4), np.float32)), {}),
    ("conv2d_backprop_filter", (X, (3, 3, 2, 4), DY), {}),
    ("conv2d_backprop_filter", (X, (3, 3, 3, 5), DY), {}),
    ("conv2d_backprop_filter", (X[0], (3, 3, 3, 4), DY), {}),                                # batch in one only
    ("conv2d_backprop_filter", (X, (3, 3, 3), DY), {}),
    ("conv2d_backprop_filter", (X, (3, 3, 3, 0), DY), {}),
    ("conv2d_backprop_filter", ("x", (3, 3, 3, 4), DY), {}),
    ("conv2d_backprop_filter", (X, (3, 3, 3, 4), DY), dict(dilations=[1, 0])),
    ("conv2d_transpose", (DY, W, (1, 7, 7, 3)), {}),                                         # output_shape
    ("conv2d_transpose", (DY, W, (1, 6, 6, 3)), dict(strides=2, padding="SAME")),
    ("conv2d_transpose", (DY, np.zeros((3, 3, 4, 3), np.float32), (1, 6, 6, 3)), {}),          # filter channels
    ("conv2d_transpose", (DY, W, (1, 6, 6, 3)), dict(bias=np.zeros(4, np.float32))),
    ("conv2d_transpose", (DY, W, (1, 6, 6, 3)), dict(bias=np.zeros((2, 6), np.float32))),
    ("conv2d_transpose", (DY, W, (1, 6, 6, 3)), dict(activation="mish")),
    ("conv2d_transpose", (DY, W, (1, 6, 6, 3)), dict(activation="prelu")),
    ("conv2d_transpose", (DY, W, (1, 6, 6, 3)), dict(leakyrelu_alpha=0.1)),
    ("conv2d_transpose", (DY, W, (1, 6, 6, 3)), dict(activation="prelu", prelu_weights=np.zeros(2, np.float32))),
    ("conv2d_transpose", (DY, W, (1, 6, 6, 3)), dict(padding=1.5)),
    ("conv2d_transpose", (DY, W, (1, 6, 6, 3)), dict(padding="SAME", dim_rounding_mode="floor")),
    ("conv2d_transpose", ([[1.0]], W, (1, 6, 6, 3)), {}),
    ("depthwise_conv2d_backprop_input", ((1, 6, 6, 3), WD, DYD), dict(strides=2, dilations=2)),
    ("depthwise_conv2d_backprop_input", ((1, 6, 6, 3), WD, DY), {}),                         # dy's channels
    ("depthwise_conv2d_backprop_input", ((1, 6, 6, 4), WD, DYD), {}),
    ("depthwise_conv2d_backprop_filter", (X, (3, 3, 3, 2), DYD), dict(strides=(1, 2), dilations=(2, 1))),
    ("depthwise_conv2d_backprop_filter", (X, (3, 3, 3, 3), DYD), {}),
    ("depthwise_conv2d_backprop_filter", (X, (3, 3, 3, 2), DYD), dict(data_format="NCHW")),
]


def _raised(call: Any, *args: Any, **kwargs: Any) -> Tuple[type, str]:
    with pytest.raises((TypeError, ValueError)) as info:
        call(*args, **kwargs)
    return type(info.value), str(info.value)


@pytest.mark.parametrize("op, args, kwargs", BAD, ids=[f"{i}-{row[0]}" for i, row in enumerate(BAD)])
def test_bad_arguments_raise_the_oracles_error_before_any_gl(monkeypatch, op, args, kwargs):
    def no_gl(*_: Any, **__: Any) -> None:
        raise AssertionError("a runtime was asked for before the arguments were checked")

    monkeypatch.setattr(gpuconv.ops, "get_runtime", no_gl)
    assert _raised(getattr(gpuconv, op), *args, **kwargs) == _raised(getattr(gpuconv.oracle, op), *args, **kwargs)


def test_prelu_weights_without_prelu_are_refused_as_conv2d_refuses_them():
    # (gpuconv.oracle ignores them, in conv2d as in conv2d_transpose)
    with pytest.raises(ValueError, match=r"prelu_weights is only used with activation='prelu', got activation='relu'"):
        gpuconv.conv2d_transpose(DY, W, (1, 6, 6, 3), activation="relu", prelu_weights=np.zeros(3, np.float32))


# -- the programs: shader_source knows them, and they are valid GLSL ES 3.00 -------------------------------


def _shader_calls(case: tuple, depthwise: bool) -> list:
    """``(op, three leading shapes, keyword arguments)`` of each gradient op of one forward case."""
    x_shape, filter_shape, kwargs, data_format = case
    kwargs = dict(kwargs, data_format=data_format)
    x = _in_format(x_shape, data_format)
    forward = gpuconv.oracle.depthwise_conv2d if depthwise else gpuconv.oracle.conv2d
    y = forward(np.zeros(x, np.float32), np.zeros(filter_shape, np.float32), **kwargs).shape
    if depthwise:
        return [("depthwise_conv2d_backprop_input", (x, filter_shape, y), kwargs),
                ("depthwise_conv2d_backprop_filter", (x, filter_shape, y), kwargs)]
    return [("conv2d_backprop_input", (x, filter_shape, y), kwargs),
            ("conv2d_backprop_filter", (x, filter_shape, y), kwargs),
            ("conv2d_transpose", (y, filter_shape, x), dict(kwargs, bias=np.zeros(x[-1 if data_format == "NHWC"
                                                                                      else -3], np.float32),
                                                              activation="relu"))]


SHADER_CALLS = [call for case in CONV_CASES for call in _shader_calls(case, False)] + \
               [call for case in DEPTHWISE_CASES for call in _shader_calls(case, True)]

PROGRAM_NAMES = {"conv2d_backprop_input": "Conv2DDerInputProgram", "conv2d_transpose": "Conv2DDerInputProgram",
                 "conv2d_backprop_filter": "Conv2DDerFilterProgram",
                 "depthwise_conv2d_backprop_input": "DepthwiseConv2DDerInputProgram",
                 "depthwise_conv2d_backprop_filter": "DepthwiseConv2DDerFilterProgram"}


@pytest.mark.parametrize("op", sorted(PROGRAM_NAMES))
def test_shader_source_shows_the_program_the_op_runs(op):
    name, shapes, kwargs = next(call for call in SHADER_CALLS if call[0] == op)
    source = gpuconv.shader_source(op, *shapes, **kwargs)
    assert source.startswith("#version 300 es\n")
    assert f"// gpuconv {PROGRAM_NAMES[op]}: " in source
    plan = getattr(ops, f"plan_{op}")(*shapes, shapes_only=True, **kwargs)
    assert (source,) == gpuconv.shader_sources(op, *shapes, **kwargs) == plan.sources()
    template = ("depthwise_" if op.startswith("depthwise") else "") + \
        ("conv2d_backprop_filter.glsl" if op.endswith("filter") else "conv2d_backprop_input.glsl")
    assert plan.spec.name == PROGRAM_NAMES[op] and plan.spec.template == template
    assert codegen.fragment_source(plan.spec) == source


@pytest.fixture(scope="module")
def glslang() -> str:
    import os

    try:
        return validate.validator_version()
    except validate.GLSLValidatorUnavailableError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"glslangValidator is missing on CI: {exc}")
        pytest.skip(f"no glslangValidator: {exc}")


def test_every_gradient_program_is_valid_glsl_es_300(glslang):
    # as the cases above generate them, and under a 32-texel limit (split and wrapped layouts)
    sources = {gpuconv.shader_source(op, *shapes, max_texture_size=limit, **kwargs)
               for op, shapes, kwargs in SHADER_CALLS for limit in (4096, 32)}
    assert any("wrapped into" in source for source in sources)
    validate.validate_sources(sorted(sources))


@pytest.mark.webgl2_only("texture layouts (max_texture_size)")
@pytest.mark.parametrize("op", sorted(PROGRAM_NAMES))
def test_wrapped_textures_on_the_gpu(runtime, rng, monkeypatch, op):
    # under a 32-texel limit x, dy, the filter and the result are split or wrapped
    monkeypatch.setattr(runtime, "max_texture_size", 32)
    depthwise = op.startswith("depthwise")
    x, w, dy, kwargs = _forward(rng, (DEPTHWISE_CASES if depthwise else CONV_CASES)[0], depthwise)
    arguments = {"conv2d_transpose": (dy, w, x.shape)}.get(op) or \
        ((x.shape, w, dy) if op.endswith("input") else (x, w.shape, dy))
    shapes = [np.shape(a) if isinstance(a, np.ndarray) else a for a in arguments]
    spec = getattr(ops, f"plan_{op}")(*shapes, shapes_only=True, limits=runtime.limits, **kwargs).spec
    layouts = [i.layout for i in spec.inputs] + list(spec.output_layouts)
    assert any(layout.wrapped or layout.split != len(layout.shape) - 1 for layout in layouts)
    result = getattr(gpuconv, op)(*arguments, runtime=runtime, **kwargs)
    _record(op, _check(result, getattr(gpuconv.oracle, op)(*arguments, **kwargs)))


# -- conv3d (TF.js's Conv3DProgram) -------------------------------------------------------------------------
# (x shape in NDHWC, or DHWC without the batch; filter [FD, FH, FW, inC, outC]; arguments; data format)

CONV3D_CASES = [
    ((2, 5, 6, 7, 3), (3, 2, 3, 3, 4), dict(strides=(1, 2, 1), padding="SAME"), "NDHWC"),
    ((1, 6, 5, 4, 9), (2, 3, 2, 9, 5), dict(dilations=2, padding=1, dim_rounding_mode="ceil"), "NCDHW"),
    ((4, 4, 4, 6), (2, 2, 2, 6, 2), dict(strides=2, dilations=(1, 1, 2), padding=[[0, 1], [1, 0], [2, 1]]), "NDHWC"),
    ((1, 3, 4, 5, 1), (1, 2, 2, 1, 7), dict(padding="VALID"), "NDHWC"),
    ((2, 4, 5, 3, 2), (3, 3, 3, 2, 3), dict(strides=3, padding=2, dim_rounding_mode="floor"), "NCDHW"),
    ((1, 5, 5, 5, 4), (2, 2, 2, 4, 1), dict(strides=(2, 1, 2), padding=[[0, 0], [1, 1], [0, 2], [1, 0], [0, 0]]),
     "NDHWC"),
    ((4, 4, 5, 5), (2, 3, 3, 5, 8), dict(dilations=(2, 1, 1), padding=1, dim_rounding_mode="round"), "NCDHW"),
    ((1, 4, 6, 6, 7), (1, 3, 3, 7, 6), dict(strides=2, padding="SAME"), "NCDHW"),
    ((1, 3, 3, 3, 8), (3, 3, 3, 8, 9), dict(padding="SAME"), "NDHWC"),
]


def _in_format_3d(shape: Tuple[int, ...], data_format: str) -> Tuple[int, ...]:
    """An NDHWC (or DHWC) shape in ``data_format``."""
    if data_format == "NDHWC":
        return tuple(shape)
    return (shape[0], shape[4]) + tuple(shape[1:4]) if len(shape) == 5 else (shape[3],) + tuple(shape[:3])


@pytest.mark.parametrize("case", CONV3D_CASES, ids=_ids(CONV3D_CASES))
def test_conv3d(runtime, rng, case):
    x_shape, filter_shape, kwargs, data_format = case
    kwargs = dict(kwargs, data_format=data_format)
    x, w = _data(rng, _in_format_3d(x_shape, data_format), filter_shape)
    result = gpuconv.conv3d(x, w, runtime=runtime, **kwargs)
    _record("conv3d", _check(result, gpuconv.oracle.conv3d(x, w, **kwargs)))


def _forward_3d(rng: np.random.Generator, case: tuple) -> tuple:
    x_shape, filter_shape, kwargs, data_format = case
    kwargs = dict(kwargs, data_format=data_format)
    x, w = _data(rng, _in_format_3d(x_shape, data_format), filter_shape)
    (dy,) = _data(rng, gpuconv.oracle.conv3d(x, w, **kwargs).shape)
    return x, w, dy, kwargs


@pytest.mark.parametrize("case", CONV3D_CASES, ids=_ids(CONV3D_CASES))
def test_conv3d_backprop_input(runtime, rng, case):
    x, w, dy, kwargs = _forward_3d(rng, case)
    result = gpuconv.conv3d_backprop_input(x.shape, w, dy, runtime=runtime, **kwargs)
    _record("conv3d_backprop_input", _check(result, gpuconv.oracle.conv3d_backprop_input(x.shape, w, dy, **kwargs)))


@pytest.mark.parametrize("case", CONV3D_CASES, ids=_ids(CONV3D_CASES))
def test_conv3d_backprop_filter(runtime, rng, case):
    x, w, dy, kwargs = _forward_3d(rng, case)
    result = gpuconv.conv3d_backprop_filter(x, w.shape, dy, runtime=runtime, **kwargs)
    _record("conv3d_backprop_filter", _check(result, gpuconv.oracle.conv3d_backprop_filter(x, w.shape, dy, **kwargs)))


@pytest.mark.parametrize("case", CONV3D_CASES[::2], ids=_ids(CONV3D_CASES[::2]))
def test_conv3d_transpose(runtime, rng, case):
    # as for conv2d_transpose: the forward x's shape is its output_shape, dy its x
    x, w, dy, kwargs = _forward_3d(rng, case)
    result = gpuconv.conv3d_transpose(dy, w, x.shape, runtime=runtime, **kwargs)
    _record("conv3d_transpose", _check(result, gpuconv.oracle.conv3d_transpose(dy, w, x.shape, **kwargs)))


def test_adjoint_identities_of_conv3d_on_the_gpu(runtime, rng):
    x, w, dy, kwargs = _forward_3d(rng, CONV3D_CASES[1])
    y = gpuconv.conv3d(x, w, runtime=runtime, **kwargs)
    dx = gpuconv.conv3d_backprop_input(x.shape, w, dy, runtime=runtime, **kwargs)
    dw = gpuconv.conv3d_backprop_filter(x, w.shape, dy, runtime=runtime, **kwargs)
    transposed = gpuconv.conv3d_transpose(dy, w, x.shape, runtime=runtime, **kwargs)
    _assert_equal_products(_inner(y, dy), _inner(x, dx))
    _assert_equal_products(_inner(y, dy), _inner(w, dw))
    _assert_equal_products(_inner(y, dy), _inner(x, transposed))


def test_conv3d_cases_cover_what_they_claim():
    assert {c[0][-1] for c in CONV3D_CASES} == set(range(1, 10))
    assert {c[1][-1] % 4 for c in CONV3D_CASES} == {0, 1, 2, 3}
    assert {type(c[2]["padding"]).__name__ if not isinstance(c[2]["padding"], str) else c[2]["padding"]
            for c in CONV3D_CASES} == {"SAME", "VALID", "int", "list"}
    assert {c[2].get("dim_rounding_mode") for c in CONV3D_CASES} == {None, "floor", "round", "ceil"}
    assert {len(c[0]) for c in CONV3D_CASES} == {4, 5} and {c[3] for c in CONV3D_CASES} == {"NDHWC", "NCDHW"}


@pytest.mark.webgl2_only("texture layouts (max_texture_size)")
def test_conv3d_wrapped_textures_on_the_gpu(runtime, rng, monkeypatch):
    monkeypatch.setattr(runtime, "max_texture_size", 32)
    x, w = _data(rng, (2, 4, 5, 6, 3), (3, 2, 3, 3, 4))
    spec = ops.plan_conv3d(x.shape, w.shape, padding="SAME", shapes_only=True, limits=runtime.limits).spec
    assert any(i.layout.wrapped for i in spec.inputs)
    _record("conv3d", _check(gpuconv.conv3d(x, w, padding="SAME", runtime=runtime),
                             gpuconv.oracle.conv3d(x, w, padding="SAME")))
    (dy,) = _data(rng, x.shape[:-1] + (4,))
    for op, arguments in (("conv3d_backprop_input", (x.shape, w, dy)), ("conv3d_backprop_filter", (x, w.shape, dy)),
                          ("conv3d_transpose", (dy, w, x.shape))):
        result = getattr(gpuconv, op)(*arguments, padding="SAME", runtime=runtime)
        _record(op, _check(result, getattr(gpuconv.oracle, op)(*arguments, padding="SAME")))


X3 = np.zeros((1, 4, 4, 4, 3), np.float32)
W3 = np.zeros((2, 2, 2, 3, 5), np.float32)

BAD_3D = [
    (X3[..., :2], W3, {}),                                  # channels
    (X3[0, 0], W3, {}),                                     # rank
    (X3, W3[0], {}),
    (X3, W3.astype(np.int64), {}),
    (X3, W3, dict(data_format="NHWC")),
    (X3, W3, dict(strides=(1, 2))),
    (X3, W3, dict(strides=[1, 2, 2, 2, 2])),
    (X3, W3, dict(dilations=0)),
    (X3, W3, dict(padding="FULL")),
    (X3, W3, dict(padding=[[1, 1], [1, 1]])),
    (X3, W3, dict(padding="VALID", dim_rounding_mode="ceil")),
    (X3, np.zeros((5, 5, 5, 3, 1), np.float32), {}),       # does not fit
    ("x", W3, {}),
]


DY3 = np.zeros((1, 3, 3, 3, 5), np.float32)

BAD_3D_GRADIENTS = [
    ("conv3d_backprop_input", ((1, 4, 4, 4, 3), W3, DY3[:, :2]), {}),                 # dy's shape
    ("conv3d_backprop_input", ((1, 4, 4, 4, 2), W3, DY3), {}),                        # channels
    ("conv3d_backprop_input", ((1, 4, 4, 4, 3), W3[0], DY3), {}),
    ("conv3d_backprop_input", ((1, 4, 4, 4, 3), W3, DY3), dict(data_format="NDHWCX")),
    ("conv3d_backprop_input", ((4, 4, 4), W3, DY3), {}),
    ("conv3d_backprop_filter", (X3, (2, 2, 2, 3, 5), DY3[0]), {}),                   # batch in one only
    ("conv3d_backprop_filter", (X3, (2, 2, 2, 3, 6), DY3), {}),
    ("conv3d_backprop_filter", (X3, (2, 2, 3, 5), DY3), {}),
    ("conv3d_backprop_filter", (X3, (2, 2, 2, 3, 5), DY3), dict(strides=2)),
    ("conv3d_transpose", (DY3, W3, (1, 5, 5, 5, 3)), {}),                             # output_shape
    ("conv3d_transpose", (DY3, np.zeros((2, 2, 2, 5, 3), np.float32), (1, 4, 4, 4, 3)), {}),
    ("conv3d_transpose", (DY3, W3, (1, 4, 4, 4, 3)), dict(padding=[[1, 0], [0, 0]])),
    ("conv3d_transpose", (DY3.astype(np.int8), W3, (1, 4, 4, 4, 3)), {}),
]


@pytest.mark.parametrize("op, args, kwargs", BAD_3D_GRADIENTS,
                         ids=[f"{i}-{row[0]}" for i, row in enumerate(BAD_3D_GRADIENTS)])
def test_conv3d_gradients_bad_arguments_raise_the_oracles_error_before_any_gl(monkeypatch, op, args, kwargs):
    def no_gl(*_: Any, **__: Any) -> None:
        raise AssertionError("a runtime was asked for before the arguments were checked")

    monkeypatch.setattr(gpuconv.ops, "get_runtime", no_gl)
    assert _raised(getattr(gpuconv, op), *args, **kwargs) == _raised(getattr(gpuconv.oracle, op), *args, **kwargs)


@pytest.mark.parametrize("x, w, kwargs", BAD_3D, ids=[str(i) for i in range(len(BAD_3D))])
def test_conv3d_bad_arguments_raise_the_oracles_error_before_any_gl(monkeypatch, x, w, kwargs):
    def no_gl(*_: Any, **__: Any) -> None:
        raise AssertionError("a runtime was asked for before the arguments were checked")

    monkeypatch.setattr(gpuconv.ops, "get_runtime", no_gl)
    assert _raised(gpuconv.conv3d, x, w, **kwargs) == _raised(gpuconv.oracle.conv3d, x, w, **kwargs)


def test_conv3d_programs_are_valid_glsl_es_300(glslang):
    sources = []
    for x_shape, filter_shape, kwargs, data_format in CONV3D_CASES:
        for limit in (4096, 48):
            source = gpuconv.shader_source("conv3d", _in_format_3d(x_shape, data_format), filter_shape,
                                           data_format=data_format, max_texture_size=limit, **kwargs)
            assert "// gpuconv Conv3DProgram: " in source
            sources.append(source)
            y_shape = gpuconv.oracle.conv3d(np.zeros(_in_format_3d(x_shape, data_format), np.float32),
                                            np.zeros(filter_shape, np.float32), data_format=data_format,
                                            **kwargs).shape
            x_in = _in_format_3d(x_shape, data_format)
            for op, shapes, name in (("conv3d_backprop_input", (x_in, filter_shape, y_shape), "Conv3DDerInputProgram"),
                                     ("conv3d_transpose", (y_shape, filter_shape, x_in), "Conv3DDerInputProgram"),
                                     ("conv3d_backprop_filter", (x_in, filter_shape, y_shape),
                                      "Conv3DDerFilterProgram")):
                source = gpuconv.shader_source(op, *shapes, data_format=data_format, max_texture_size=limit,
                                               **kwargs)
                assert f"// gpuconv {name}: " in source
                sources.append(source)
    assert any("wrapped into" in source for source in sources)
    validate.validate_sources(sorted(set(sources)))


# -- in a browser: WebGL2 through ANGLE (the GL TF.js runs on), one case of each program ---------------------


def test_every_program_runs_in_the_browser(browser, rng):
    x, w, dy, kwargs = _forward(rng, CONV_CASES[1])
    calls = [("conv2d_backprop_input", (x.shape, w, dy), kwargs),
             ("conv2d_backprop_filter", (x, w.shape, dy), kwargs),
             ("conv2d_transpose", (dy, w, x.shape), dict(kwargs, bias=_data(rng, (x.shape[1],))[0], activation="elu"))]
    x, w, dy, kwargs = _forward(rng, DEPTHWISE_CASES[0], depthwise=True)
    calls += [("depthwise_conv2d_backprop_input", (x.shape, w, dy), kwargs),
              ("depthwise_conv2d_backprop_filter", (x, w.shape, dy), kwargs)]
    x, w, dy, kwargs = _forward_3d(rng, CONV3D_CASES[1])
    calls += [("conv3d", (x, w), kwargs), ("conv3d_backprop_input", (x.shape, w, dy), kwargs),
              ("conv3d_backprop_filter", (x, w.shape, dy), kwargs), ("conv3d_transpose", (dy, w, x.shape), kwargs)]
    x, dy = _data(rng, (1, 1, 70000, 2), (1, 1, 69998, 3))  # sliced: past the loop limit (ANGLE on llvmpipe has it)
    calls.append(("conv2d_backprop_filter", (x, (1, 3, 2, 3), dy), {}))
    for op, arguments, options in calls:
        result = getattr(gpuconv, op)(*arguments, runtime=browser, **options)
        _check(result, getattr(gpuconv.oracle, op)(*arguments, **options))


# -- filter gradients over many dy positions: partial sums, then SliceSumProgram ----------------------------
# llvmpipe ends a fragment's loops after 65535 iterations in all, and a float32 sum of tens of
# thousands of terms drifts towards 1e-5 of its size: past 2048 dy positions (the batch times
# the output's spatial size) the filter gradients sum slices of them, and a second program
# adds the slices up.

SLICED = [
    ("conv2d_backprop_filter", (2, 48, 48, 3), (3, 3, 3, 4), dict(padding="SAME"), "NHWC"),         # 3 slices
    ("conv2d_backprop_filter", (1, 1, 70000, 2), (1, 3, 2, 3), dict(padding="VALID"), "NHWC"),      # > 65535
    ("depthwise_conv2d_backprop_filter", (3, 40, 40, 2), (3, 3, 2, 2), dict(padding=1), "NCHW"),
    ("conv3d_backprop_filter", (2, 10, 16, 16, 2), (2, 3, 3, 2, 3), dict(padding="SAME"), "NCDHW"),
    ("conv3d_backprop_filter", (1, 2, 200, 200, 1), (1, 1, 1, 1, 2), dict(padding="VALID"), "NDHWC"),  # > 65535
]


@pytest.mark.parametrize("op, x_shape, filter_shape, kwargs, data_format", SLICED,
                         ids=[f"{row[0]}-{'x'.join(map(str, row[1]))}" for row in SLICED])
def test_filter_gradients_over_many_positions_are_summed_in_slices(runtime, rng, op, x_shape, filter_shape, kwargs,
                                                                   data_format):
    three_d = op.startswith("conv3d")
    x_shape = _in_format_3d(x_shape, data_format) if three_d else _in_format(x_shape, data_format)
    kwargs = dict(kwargs, data_format=data_format)
    forward = {"conv2d_backprop_filter": gpuconv.oracle.conv2d, "conv3d_backprop_filter": gpuconv.oracle.conv3d,
               "depthwise_conv2d_backprop_filter": gpuconv.oracle.depthwise_conv2d}[op]
    (x,) = _data(rng, x_shape)
    (dy,) = _data(rng, forward(x, np.zeros(filter_shape, np.float32), **kwargs).shape)
    plan = getattr(ops, f"plan_{op}")(x.shape, filter_shape, dy.shape, shapes_only=True, **kwargs)
    positions = dy.size // dy.shape[-1 if data_format.endswith("C") else 1]
    assert [spec.name for spec in plan.specs][1:] == ["SliceSumProgram"]
    slices = -(-positions // 2048)
    assert plan.specs[0].slices == slices and plan.specs[0].slice_length == -(-positions // slices) <= 2048
    result = getattr(gpuconv, op)(x, filter_shape, dy, runtime=runtime, **kwargs)
    _record(op, _check(result, getattr(gpuconv.oracle, op)(x, filter_shape, dy, **kwargs)))


def test_sliced_filter_gradients_are_valid_glsl_es_300(glslang):
    sources = set()
    for op, x_shape, filter_shape, kwargs, data_format in SLICED:
        three_d = op.startswith("conv3d")
        x = _in_format_3d(x_shape, data_format) if three_d else _in_format(x_shape, data_format)
        forward = {"conv2d_backprop_filter": gpuconv.oracle.conv2d, "conv3d_backprop_filter": gpuconv.oracle.conv3d,
                   "depthwise_conv2d_backprop_filter": gpuconv.oracle.depthwise_conv2d}[op]
        y = forward(np.zeros(x, np.float32), np.zeros(filter_shape, np.float32), data_format=data_format,
                    **kwargs).shape
        texts = gpuconv.shader_sources(op, x, filter_shape, y, data_format=data_format, **kwargs)
        assert len(texts) == 2 and "// gpuconv SliceSumProgram: " in texts[1]
        sources.update(texts)
    validate.validate_sources(sorted(sources))


def test_shader_source_names_every_op_it_knows_for_an_unknown_one():
    with pytest.raises(ValueError, match=r"op must be one of 'conv2d', .*'conv1d', .*'conv3d', .*, got 'conv4d'") as info:
        gpuconv.shader_source("conv4d", (1, 4, 4, 4, 1), (1, 1, 1, 1, 1))
    assert all(f"'{op}'" in str(info.value) for op in list(PROGRAM_NAMES) + ["conv3d_transpose", "separable_conv2d"])


# -- conv2d and depthwise_conv2d take a bias that broadcasts to the output (as TF.js's fused ops) -----------


@pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
def test_conv2d_and_depthwise_conv2d_take_a_bias_that_broadcasts(runtime, rng, data_format):
    nhwc = data_format == "NHWC"
    x, w, dw = _data(rng, (2, 5, 5, 3) if nhwc else (2, 3, 5, 5), (3, 3, 3, 6), (3, 3, 3, 2))
    out = (2, 3, 3, 6) if nhwc else (2, 6, 3, 3)
    shapes = [(), (1,), (6,), (1, 1, 6) if nhwc else (6, 1, 1), out, out[1:], (3, 1, 1) if nhwc else (1, 3, 1)]
    for shape in shapes:
        (bias,) = _data(rng, shape)
        for op, f in (("conv2d", w), ("depthwise_conv2d", dw)):
            kwargs: Dict[str, Any] = dict(padding="VALID", data_format=data_format, bias=bias, activation="relu")
            reference = getattr(gpuconv.oracle, op)(x, f, **kwargs)
            _check(getattr(gpuconv, op)(x, f, runtime=runtime, **kwargs), reference)  # auto
            _check(getattr(gpuconv, op)(x, f, runtime=runtime, algorithm="direct", **kwargs), reference)
    # one per channel runs on the packed program; one that varies within a channel does not
    per_channel = ops.plan_conv2d(x, w, data_format=data_format, bias=np.ones((1, 1, 1, 6) if nhwc else (6, 1, 1)),
                                  algorithm="auto")
    assert per_channel.spec.name == "PackedConv2DProgram"
    full = np.ones(out, np.float32)
    assert ops.plan_conv2d(x, w, data_format=data_format, bias=full, algorithm="auto").spec.name == "Conv2DProgram"
    refusal = ("a bias that varies within a channel runs only on the direct program"
               if runtime.target.name == "webgl2" else "'packed' is WebGL2's")
    with pytest.raises(ValueError, match=refusal):
        gpuconv.conv2d(x, w, data_format=data_format, bias=full, algorithm="packed", runtime=runtime)
    with pytest.raises(ValueError, match=r"bias must have one value per output channel, shape \(6,\), got shape "
                                         r"\(4,\), which does not broadcast to the output shape"):
        gpuconv.conv2d(x, w, data_format=data_format, bias=np.ones(4, np.float32), runtime=runtime)
