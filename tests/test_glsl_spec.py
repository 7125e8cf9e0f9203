"""Every generated program is valid GLSL ES 3.00, as Khronos's glslangValidator judges it (issue 11).

A GL driver is a lenient judge (Mesa compiles some desktop-GLSL habits that WebGL2's
ANGLE refuses), so the programs the tests generate are also checked against the spec:
the selftest table, a few hundred seeded random configurations, and explicit cases
for every op, both algorithms, every fused epilogue, both data formats, groups,
channel multipliers, input depths 1-9, split and wrapped layouts under a small texture
limit, and the packed programs for 4 and 8 draw buffers; the vertex shader too.
Sources come from ``gpuconv.shader_sources`` (shapes only, no GL), the distinct ones
are checked in a few runs of the validator.  The first tests prove that the validator,
run as :mod:`gpuconv.validate` runs it, catches ES-specific mistakes.

Needs glslangValidator (Debian's glslang-tools, which .ci/setup installs): locally a
missing one skips these tests; on CI (``CI`` set) it fails them.
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from helpers import assert_close

import gpuconv
from gpuconv import checks, codegen, registry, validate
from gpuconv.arguments import ACTIVATIONS
from gpuconv.layout import DEFAULT_MAX_TEXTURE_SIZE, TextureLayout
from gpuconv.limits import DEFAULT_MAX_DRAW_BUFFERS
from gpuconv.programs import PackedProgramSpec, ProgramSpec

# plan_shapes is moving from gpuconv.ops to gpuconv.registry.
try:
    from gpuconv.registry import plan_shapes  # type: ignore[attr-defined]
except ImportError:
    from gpuconv.ops import plan_shapes  # type: ignore[attr-defined,no-redef]
from gpuconv.checks import SELFTEST_CASES, config_at

RANDOM_SEED = 11
RANDOM_COUNT = 400
LIMIT = 80  # texels per texture side: small enough that the tensors below are split or wrapped
DRAW_BUFFERS = (4, DEFAULT_MAX_DRAW_BUFFERS)  # WebGL2's minimum and what the packed programs use at most


@pytest.fixture(scope="session")
def glslang() -> str:
    try:
        return validate.validator_version()
    except validate.GLSLValidatorUnavailableError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"glslangValidator is missing on CI: {exc}")
        pytest.skip(f"no glslangValidator: {exc}")


# -- the validator catches what GLSL ES 3.00 forbids -----------------------------------------------------

VALID = """#version 300 es
precision highp float;
uniform sampler2D x;
out vec4 outputColor;
void main() {
  outputColor = texture(x, vec2(0.5));
}
"""

# Each is VALID with one ES mistake (most of them compile as desktop GLSL or on lenient drivers).
ES_MISTAKES = [
    ("texture2D", VALID.replace("texture(x,", "texture2D(x,"), "texture2D"),
    ("no-float-precision", VALID.replace("precision highp float;\n", ""), "precision"),
    ("gl_FragColor", VALID.replace("out vec4 outputColor;\n", "").replace("outputColor =", "gl_FragColor ="),
     "gl_FragColor"),
    ("implicit-int-to-float", VALID.replace("void main() {\n", "void main() {\n  float f = 1;\n"), "convert"),
    ("location-on-fragment-input", VALID.replace("out vec4", "layout(location = 0) in vec4 v;\nout vec4"),
     "location"),
    ("varying", VALID.replace("out vec4", "varying vec2 uv;\nout vec4"), "varying"),
    ("es-3.10-builtin", VALID.replace("void main() {\n", "void main() {\n  int i = bitfieldExtract(7, 0, 2);\n"),
     "bitfieldExtract"),
    ("int-float-mix", VALID.replace("vec2(0.5)", "vec2(0.5 * 2)"), "ERROR"),
]


def test_a_valid_es_300_fragment_shader_passes(glslang):
    validate.validate_glsl(VALID)


@pytest.mark.parametrize("source, expected", [c[1:] for c in ES_MISTAKES], ids=[c[0] for c in ES_MISTAKES])
def test_the_validator_rejects_es_mistakes(glslang, source, expected):
    with pytest.raises(validate.GLSLValidationError) as caught:
        validate.validate_glsl(source)
    assert expected in caught.value.messages
    assert "ERROR" in str(caught.value)


@pytest.mark.parametrize("header", ["#version 330\n", "#version 330 core\n", "#version 310 es\n", "#version 100\n", ""])
def test_sources_that_are_not_declared_es_300_are_refused(header):
    # Valid for their own version, mostly, so glslang would pass them: the version check must not.
    source = header + "\n".join(VALID.splitlines()[1:]) + "\n"
    with pytest.raises(validate.GLSLValidationError, match="300 es"):
        validate.validate_glsl(source)


def _validator_status(source: str) -> tuple[int, str]:
    """glslangValidator's own verdict on a source (bypassing validate's version check)."""
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "shader.frag")
        with open(path, "w") as file:
            file.write(source)
        return validate._run(["-S", "frag", path])


def test_desktop_glsl_would_pass_glslang_so_the_version_check_matters(glslang):
    """Why :func:`validate_glsl` refuses other versions: glslang checks each by its own rules."""
    desktop = VALID.replace("#version 300 es", "#version 330").replace("precision highp float;\n", "") \
        .replace("void main() {\n", "void main() {\n  float f = 1;\n")
    status, output = _validator_status(desktop)
    assert status == 0, output
    assert validate.version_problem(desktop) is not None


@pytest.mark.parametrize("before", ["\n", "// a comment\n", "/* a block\n   comment */\n"])
def test_nothing_may_precede_the_version_line(glslang, before):
    # GLSL ES (unlike desktop GLSL) allows no comment or blank line before #version; glslang agrees.
    with pytest.raises(validate.GLSLValidationError, match="first line"):
        validate.validate_glsl(before + VALID)
    status, output = _validator_status(before + VALID)
    assert status != 0 and "must appear first" in output


def test_spaces_on_the_version_line_are_fine(glslang):
    validate.validate_glsl(VALID.replace("#version 300 es", "  #  version 300 es  // WebGL2"))


def test_a_broken_generated_program_is_caught_with_its_description(glslang):
    source = gpuconv.shader_source("conv2d", (1, 7, 7, 6), (3, 3, 6, 4), padding="SAME")
    broken = source.replace("void main() {", "void main() {\n  float oops = 1;", 1)
    assert broken != source
    with pytest.raises(validate.GLSLValidationError) as caught:
        validate.validate_glsl(broken)
    assert caught.value.description.startswith("gpuconv Conv2DProgram: x 1x7x7x6, W 3x3x6x4")
    assert "Conv2DProgram" in str(caught.value) and "cannot convert" in caught.value.messages


def test_a_batch_names_each_invalid_source(glslang):
    broken = VALID.replace("texture(x,", "texture2D(x,").replace("precision highp float;\n",
                                                                 "precision highp float;\n// the broken one\n")
    failures = validate.find_errors([VALID, broken, VALID, "#version 330\nvoid main() {}\n", VALID])
    assert [f.index for f in failures] == [1, 3]
    assert failures[0].description == "the broken one" and "texture2D" in failures[0].messages
    assert "300 es" in failures[1].messages
    with pytest.raises(validate.GLSLValidationError, match="2 of 3 sources"):
        validate.validate_sources([VALID, broken, "#version 330\nvoid main() {}\n"])


def test_stage_is_vert_or_frag(glslang):
    with pytest.raises(ValueError, match="stage"):
        validate.validate_glsl(VALID, "comp")
    with pytest.raises(validate.GLSLValidationError):  # a fragment shader's `out` is no vertex shader
        validate.validate_glsl(VALID.replace("outputColor = texture(x, vec2(0.5));", "gl_FragDepth = 0.0;"),
                               "vert")


def test_a_missing_validator_says_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(validate.GLSLValidatorUnavailableError, match=r"apt-get install glslang-tools"):
        validate.validate_glsl(VALID)
    with pytest.raises(validate.GLSLValidatorUnavailableError, match="glslang-tools"):
        validate.validator_version()


def test_validator_version(glslang):
    assert re.search(r"\d+\.\d+", glslang), glslang


def test_validate_program_and_plan(glslang):
    plan = plan_shapes("separable_conv2d", (1, 8, 8, 3), (3, 3, 3, 2), padding="SAME",
                           pointwise_filter_shape=(1, 1, 6, 4), algorithm="packed")
    validate.validate_plan(plan)
    for spec in plan.specs:
        validate.validate_program(spec)


# -- every program the tests generate ----------------------------------------------------------------------


@dataclass
class Call:
    """One shapes-only call of an op; ``bias``, ``prelu`` and ``residual`` are the fused inputs' shapes."""

    label: str
    op: str
    x: tuple[int, ...]
    filters: tuple[tuple[int, ...], ...]
    kwargs: dict[str, Any] = field(default_factory=dict)
    bias: tuple[int, ...] | None = None
    prelu: tuple[int, ...] | None = None
    max_texture_size: int = DEFAULT_MAX_TEXTURE_SIZE
    max_draw_buffers: int = DEFAULT_MAX_DRAW_BUFFERS
    #: a gradient, transposed or 3-D op's leading shapes in its order (x, filters: its forward convolution's)
    leading: tuple[tuple[int, ...], ...] = ()
    residual: tuple[int, ...] | None = None

    def arguments(self, algorithm: str) -> dict[str, Any]:
        kwargs = {k: v for k, v in self.kwargs.items() if k != "algorithm"}
        if self.bias is not None:
            kwargs["bias"] = np.zeros(self.bias, np.float32)
        if self.prelu is not None:
            kwargs["prelu_weights"] = np.zeros(self.prelu, np.float32)
        if self.residual is not None:
            kwargs["residual"] = np.zeros(self.residual, np.float32)
        if self.op == "separable_conv2d":
            kwargs["pointwise_filter_shape"] = self.filters[1]
        if registry.get(self.op).algorithms:
            kwargs["algorithm"] = algorithm  # (the other gradient and 3-D ops run their direct program)
        return dict(kwargs, max_texture_size=self.max_texture_size,
                    max_draw_buffers=self.max_draw_buffers)

    def sources(self, algorithm: str) -> tuple[str, ...]:
        """The programs of this call, or none where the packed programs cannot run it."""
        if not registry.get(self.op).algorithms and algorithm != "direct":
            return ()
        try:
            shapes = self.leading or (self.x, self.filters[0])
            return gpuconv.shader_sources(self.op, *shapes, **self.arguments(algorithm))
        except ValueError as exc:
            if algorithm == "packed" and "algorithm='packed' cannot run" in str(exc):
                return ()
            raise

    def plan(self, algorithm: str) -> Any:
        arguments = self.arguments(algorithm)
        return plan_shapes(self.op, *(self.leading or (self.x, self.filters[0])), **arguments)


def _newer(op: str) -> bool:
    """A gradient, transposed or 3-D op (one with a shape argument, or only its direct program)."""
    return bool(registry.get(op).signature) or not registry.get(op).algorithms


def _leading(op: str, x, filters, kwargs) -> tuple[tuple[int, ...], ...]:
    return tuple(checks.leading_shapes(op, x, filters, kwargs).values()) if _newer(op) else ()


def _out_channels(op: str, x, filters, kwargs) -> int:
    if _newer(op):
        plan = checks.plan_call(op, x, filters, kwargs)
        return checks.result_channels(op, plan, kwargs.get("data_format"))
    extra = {"pointwise_filter_shape": filters[1]} if op == "separable_conv2d" else {}
    return plan_shapes(op, x, filters[0], **kwargs, **extra).geometry.out_channels


def selftest_calls() -> Iterator[Call]:
    for number, case in enumerate(SELFTEST_CASES):
        kwargs = dict(case.kwargs())
        channels = _out_channels(case.op, case.x, case.filters, kwargs) if case.bias or case.activation else 0
        if case.activation:
            kwargs["activation"] = case.activation
        yield Call(f"selftest case {number} ({case.op} x {case.x})", case.op, tuple(case.x), tuple(case.filters),
                   kwargs, bias=(channels,) if case.bias else None,
                   prelu=(channels,) if case.activation == "prelu" else None,
                   leading=_leading(case.op, case.x, case.filters, case.kwargs()))


def random_calls() -> Iterator[Call]:
    for index in range(RANDOM_COUNT):
        config = config_at(RANDOM_SEED, index)
        yield Call(f"random config seed {RANDOM_SEED} index {index}: {config.describe()}", config.op,
                   tuple(config.x), tuple(config.filters), dict(config.options), config.bias, config.prelu,
                   leading=_leading(config.op, config.x, config.filters, config.options), residual=config.residual)


def _fused(op: str, x, f, activation, bias: bool, per_element: bool = False, **kwargs) -> Call:
    plain = {k: v for k, v in kwargs.items() if k not in ("max_texture_size", "max_draw_buffers")}
    limits = {k: v for k, v in kwargs.items() if k in ("max_texture_size", "max_draw_buffers")}
    shapes_only = {k: v for k, v in plain.items() if k != "leakyrelu_alpha"}  # refused without its activation
    plan = plan_shapes(op, x, f, **shapes_only, **limits)
    channels = plan.geometry.out_channels
    if activation is not None:
        plain["activation"] = activation
    prelu = (tuple(plan.out_shape) if per_element else (channels,)) if activation == "prelu" else None
    label = f"{op} x {x} filter {f} {plain} bias {bias} prelu {prelu} {limits}"
    return Call(label, op, tuple(x), (tuple(f),), plain, (channels,) if bias else None, prelu, **limits)


def _nchw(x: tuple[int, ...]) -> tuple[int, ...]:
    return (x[0], x[3], x[1], x[2])


def explicit_calls() -> Iterator[Call]:
    formats = ("NHWC", "NCHW")
    # Every fused epilogue, for both fused ops and both data formats.
    for op, f in (("conv2d", (3, 3, 5, 6)), ("depthwise_conv2d", (3, 3, 5, 2))):
        for fmt in formats:
            x = (1, 6, 7, 5) if fmt == "NHWC" else _nchw((1, 6, 7, 5))
            for activation in (None, *ACTIVATIONS):
                for bias in (False, True):
                    yield _fused(op, x, f, activation, bias, padding="SAME", data_format=fmt)
            yield _fused(op, x, f, "prelu", False, per_element=True, padding="SAME", data_format=fmt)
            yield _fused(op, x, f, "prelu", True, per_element=True, padding="VALID", data_format=fmt)
            for alpha in (0.0, 1e-8, 1 / 3, 1.0, 100.0):  # the alpha is a constant in the source
                yield _fused(op, x, f, "leakyrelu", False, padding="SAME", data_format=fmt, leakyrelu_alpha=alpha)
    # Input depths 1-9 (vec4 loop and each remainder), multipliers, groups, both formats.
    for depth in range(1, 10):
        for fmt in formats:
            x = (2, 7, 6, depth) if fmt == "NHWC" else _nchw((2, 7, 6, depth))
            yield _fused("conv2d", x, (3, 2, depth, 3), None, False, padding="SAME", data_format=fmt)
            yield _fused("conv2d", x, (1, 1, depth, 4), "relu", True, data_format=fmt)
            for multiplier in (1, 2, 3, 4):
                yield _fused("depthwise_conv2d", x, (3, 3, depth, multiplier), None, multiplier % 2 == 0,
                             padding="SAME", data_format=fmt, strides=(1, 2))
            for groups in range(2, depth + 1):
                if depth % groups == 0:
                    yield _fused("conv2d", x, (3, 3, depth // groups, 2 * groups), "relu6", True,
                                 padding="SAME", data_format=fmt, groups=groups)
            pointwise = (1, 1, depth * 2, 5)
            yield Call(f"separable depth {depth} {fmt}", "separable_conv2d", x, ((3, 3, depth, 2), pointwise),
                       {"padding": "SAME", "data_format": fmt})
    # Strides, dilations and filter widths 1-7 (the packed programs bake the width in where they reuse columns).
    for width in range(1, 8):
        for op, f in (("conv2d", (2, width, 6, 5)), ("depthwise_conv2d", (2, width, 6, 2))):
            for strides, dilations in ((1, 1), (2, 1), (3, 1), (1, 2), ((1, 2), 1), (1, (2, 1))):
                yield _fused(op, (1, 9, 16, 6), f, None, False, padding="SAME", strides=strides,
                             dilations=dilations)
    # conv1d, both formats.
    for fmt, x in (("NWC", (2, 20, 5)), ("NCW", (2, 5, 20))):
        for stride, dilation in ((1, 1), (2, 1), (1, 3)):
            yield Call(f"conv1d {fmt} {stride} {dilation}", "conv1d", x, ((3, 5, 4),),
                       {"stride": stride, "dilation": dilation, "padding": "SAME", "data_format": fmt})
    # Split and wrapped layouts under a texture limit of LIMIT texels (as tests/test_lifetime.py runs them).
    small = {"max_texture_size": LIMIT}
    yield Call("wrapped separable", "separable_conv2d", (2, 16, 30, 3), ((3, 3, 3, 2), (1, 1, 6, 4)),
               {"padding": "SAME"}, **small)
    yield Call("wrapped separable NCHW", "separable_conv2d", (1, 3, 40, 45), ((3, 3, 3, 1), (1, 1, 3, 5)),
               {"padding": "VALID", "strides": 2, "data_format": "NCHW"}, **small)
    yield Call("wrapped conv1d", "conv1d", (2, 300, 3), ((3, 3, 4),), {"padding": "SAME", "stride": 2}, **small)
    yield Call("wrapped conv1d NCW", "conv1d", (3, 250), ((5, 3, 2),),
               {"padding": [2, 1], "dilation": 2, "data_format": "NCW"}, **small)
    for x, fmt in (((2, 3, 16, 30), "NCHW"), ((1, 10, 20, 3), "NHWC"), ((1, 40, 2, 30), "NHWC"),
                   ((1, 3, 10, 20), "NCHW"), ((3, 9, 9, 9), "NHWC")):
        depth = x[3] if fmt == "NHWC" else x[1]
        for activation, bias, per_element in ((None, False, False), ("prelu", True, True), ("prelu", False, False)):
            yield _fused("conv2d", x, (3, 3, depth, 4), activation, bias, per_element, padding=1,
                         data_format=fmt, **small)
            yield _fused("depthwise_conv2d", x, (3, 3, depth, 2), activation, bias, per_element, padding="SAME",
                         data_format=fmt, **small)
    yield _fused("conv2d", (2, 16, 30, 4), (3, 2, 2, 6), "relu", True, padding="SAME", groups=2, **small)
    yield _fused("conv2d", (20, 5, 4, 4), (3, 3, 4, 2), "relu", True, padding="SAME", **small)  # rows = batch
    for activation in ("relu", "prelu"):  # 100 channels: bias and PReLU weights wrapped too
        yield _fused("conv2d", (1, 2, 2, 3), (1, 1, 3, 100), activation, True, **small)
        yield _fused("depthwise_conv2d", (1, 2, 2, 50), (1, 1, 50, 2), activation, True, **small)
    yield _fused("depthwise_conv2d", (1, 3, 30, 28), (3, 3, 3, 2), "prelu", False, True, padding="SAME",
                 data_format="NCHW", **small)
    # The packed programs at 4 and 8 draw buffers: every epilogue, column reuse on and off, the split input.
    for buffers in DRAW_BUFFERS:
        limits = {"max_draw_buffers": buffers}
        for op, f in (("conv2d", (3, 3, 6, 8)), ("depthwise_conv2d", (3, 3, 6, 2))):
            for activation in (None, *ACTIVATIONS):
                yield _fused(op, (1, 10, 12, 6), f, activation, activation is not None, padding="SAME", **limits)
            for strides, dilations in ((1, 1), (2, 1), (1, 2)):
                yield _fused(op, (2, 10, 12, 6), f, None, False, padding="VALID", strides=strides,
                             dilations=dilations, **limits)
        yield Call(f"separable {buffers} buffers", "separable_conv2d", (1, 9, 11, 5), ((3, 3, 5, 2), (1, 1, 10, 7)),
                   {"padding": "SAME"}, **limits)
        yield Call(f"conv1d {buffers} buffers", "conv1d", (2, 30, 5), ((3, 5, 4),), {"padding": "SAME"}, **limits)


GROUPS = {"selftest": selftest_calls, "random": random_calls, "explicit": explicit_calls}


@dataclass
class Collected:
    """The distinct fragment programs of each group (a program is counted in the first group that has it)."""

    sources: dict[str, dict[str, str]]       # group -> source -> label of its first call
    calls: dict[str, list[Call]]
    seconds: float


@pytest.fixture(scope="module")
def collected() -> Collected:
    start = time.perf_counter()
    seen: set[str] = set()
    sources: dict[str, dict[str, str]] = {}
    calls: dict[str, list[Call]] = {}
    for group, make in GROUPS.items():
        sources[group], calls[group] = {}, list(make())
        for call in calls[group]:
            for algorithm in ("direct", "packed"):
                for step, source in enumerate(call.sources(algorithm), 1):
                    if source not in seen:
                        seen.add(source)
                        sources[group][source] = f"{call.label}, algorithm={algorithm!r}, program {step}"
    return Collected(sources, calls, time.perf_counter() - start)


def _failure_report(failures: Sequence[validate.Failure], sources: Sequence[str], labels: Sequence[str]) -> str:
    lines = []
    for failure in failures:
        lines.append(f"{labels[failure.index]}\n  {failure.description}\n{failure.messages}")
        source_lines = sources[failure.index].splitlines()
        for number in sorted({int(n) for n in re.findall(r"ERROR: \d+:(\d+):", failure.messages)})[:5]:
            if 0 < number <= len(source_lines):
                lines.append(f"  line {number}: {source_lines[number - 1].strip()}")
    return f"{len(failures)} of {len(sources)} programs are not valid GLSL ES 3.00:\n" + "\n".join(lines)


@pytest.mark.parametrize("group", list(GROUPS))
def test_every_generated_program_is_valid_glsl_es_300(glslang, collected, group):
    programs = collected.sources[group]
    assert programs, f"no new programs in group {group!r}"
    sources, labels = list(programs), list(programs.values())
    failures = validate.find_errors(sources, "frag")
    assert not failures, _failure_report(failures, sources, labels)


def test_the_depthwise_program_on_split_inputs_is_valid_glsl_es_300(glslang):
    """A packed depthwise program reading a packed program's outputs in place (a Tensor chain;
    the shape-only calls above never plan it): each left pad bakes in other taps' textures."""
    from gpuconv.geometry import conv2d_geometry
    from gpuconv.programs import packed_program

    sources, labels = [], []
    for buffers in DRAW_BUFFERS:
        for window, strides, padding in (((3, 3), 1, "SAME"), ((3, 3), 2, "SAME"), ((7, 7), 1, "SAME"),
                                         ((2, 5), 2, "VALID"), ((3, 3), 1, [[0, 0], [3, 3]])):
            geometry = conv2d_geometry((1, 10, 13, 8), (*window, 8, 1), strides, padding, depthwise=True)
            for activation in (None, "prelu"):
                epilogue = gpuconv.programs.Epilogue(activation or "linear", has_bias=activation is not None)
                spec = packed_program(geometry, epilogue, x_split=True, x_fold=2, max_draw_buffers=buffers)
                sources.append(codegen.fragment_source(spec))
                labels.append(f"{buffers} buffers, {window} stride {strides} {padding} {activation}")
    assert len(set(sources)) == len(sources) and "fetchX3(" in sources[0]
    failures = validate.find_errors(sources, "frag")
    assert not failures, _failure_report(failures, sources, labels)


def test_the_vertex_shader_is_valid_glsl_es_300(glslang):
    source = codegen.vertex_source()
    assert "{#" not in source and "{{" not in source, "the vertex template must be rendered"
    validate.validate_glsl(source, "vert")


def test_the_programs_cover_what_they_should(collected):
    """The collected programs include each template, epilogue, layout kind and draw-buffer count."""
    specs: list[Any] = []
    for call in collected.calls["explicit"]:
        for algorithm in ("direct", "packed"):
            try:
                specs += call.plan(algorithm).specs
            except ValueError:
                assert algorithm == "packed"
    direct = [s for s in specs if isinstance(s, ProgramSpec)]
    packed = [s for s in specs if isinstance(s, PackedProgramSpec)]
    assert {s.template for s in specs} == {"conv2d.glsl", "depthwise_conv2d.glsl", "packed_conv2d.glsl",
                                           "packed_depthwise_conv2d.glsl"}
    for kind in (direct, packed):
        assert {s.epilogue.activation for s in kind} == set(ACTIVATIONS)
        assert {s.epilogue.has_bias for s in kind} == {False, True}
        assert {s.geometry.data_format for s in kind} == {"NHWC", "NCHW"}
    assert {s.epilogue.prelu_per_channel for s in direct if s.epilogue.activation == "prelu"} == {False, True}
    assert len({s.epilogue.leakyrelu_alpha for s in direct if s.epilogue.activation == "leakyrelu"}) >= 5
    assert {s.geometry.in_channels_per_group for s in direct} >= set(range(1, 10))
    assert {s.geometry.groups for s in direct} >= {1, 2, 3, 4, 9}
    assert {s.geometry.channel_multiplier for s in specs if s.geometry.depthwise} >= {1, 2, 3, 4}
    layouts = [i.layout for s in direct for i in s.inputs] + [s.output.layout for s in direct]
    splits = {(len(t.shape), t.split) for t in layouts if isinstance(t, TextureLayout)}
    assert {(4, None), (4, 1), (4, 2), (4, 3), (1, None), (1, 0)} <= splits, sorted(splits, key=str)
    assert {s.pixels for s in packed} == set(DRAW_BUFFERS)
    assert {s.pixels for s in packed if s.x_split} == set(DRAW_BUFFERS)
    assert {s.reuse_width for s in packed} >= {0, 2, 3, 4, 5, 6, 7}
    assert {s.reuse_stride for s in packed if s.reuse_width} == {1, 2}
    assert any("wrapped into" in source for source in collected.sources["explicit"])
    assert sum(map(len, collected.sources.values())) >= 500


@pytest.mark.parametrize("op, filter_shape", [("conv2d", (1, 1, 3, 100)), ("depthwise_conv2d", (3, 3, 50, 2))])
def test_wrapped_bias_and_prelu_weights_run_on_the_gpu(runtime, monkeypatch, op, filter_shape):
    """What glslang found: a rank-1 input wrapped under the texture limit (more channels than
    texels per side) redeclared its ``index`` parameter.  It now compiles and computes right."""
    rng = np.random.default_rng(5)
    x = rng.uniform(-1, 1, (1, 3, 3, filter_shape[2])).astype(np.float32)
    w = rng.uniform(-1, 1, filter_shape).astype(np.float32)
    b, p = (rng.uniform(-1, 1, 100).astype(np.float32) for _ in range(2))
    monkeypatch.setattr(runtime, "max_texture_size", LIMIT)
    for fused in ({"bias": b, "activation": "relu"}, {"bias": b, "activation": "prelu", "prelu_weights": p}):
        source = gpuconv.shader_source(op, x.shape, w.shape, padding="SAME", max_texture_size=LIMIT, **fused)
        assert "float getBias(int index)" in source and "100 wrapped into" in source
        assert "int index = index;" not in source
        y = getattr(gpuconv, op)(x, w, padding="SAME", algorithm="direct", runtime=runtime, **fused)
        assert_close(y, getattr(gpuconv.oracle, op)(x, w, padding="SAME", **fused))
