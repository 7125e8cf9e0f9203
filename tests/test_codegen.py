"""The generated source: TF.js's program shape, the vec4 loop and exactly one remainder branch."""

import re

import numpy as np
import pytest

import gpuconv
from gpuconv import codegen, registry
from gpuconv.geometry import conv2d_geometry
from gpuconv.programs import conv2d_program

REMAINDER_COMMENTS = {1: "// 1 leftover input channel", 2: "// 2 leftover input channels",
                      3: "// 3 leftover input channels"}


def conv_source(depth, **kw):
    return gpuconv.shader_source("conv2d", (1, 6, 6, depth), (3, 3, depth, 2), **kw)


@pytest.mark.parametrize("depth", range(1, 10))
def test_vec4_loop_and_exactly_the_needed_remainder_branch(depth):
    source = conv_source(depth)
    vec4_part, remainder = depth - depth % 4, depth % 4
    loops = re.findall(r"for \(int d1 = 0; d1 < (\d+); d1 \+= 4\)", source)
    assert loops == ([str(vec4_part)] if vec4_part else [])
    for r, comment in REMAINDER_COMMENTS.items():
        assert source.count(comment) == (1 if r == remainder else 0), (r, remainder)
    if remainder > 1:
        assert f"vec{remainder} xValues" in source and f"vec{remainder} wValues" in source
    if remainder == 1:
        assert f"getX(batch, xR, xC, {vec4_part}) * getW(wR, wC, {vec4_part}, d2)" in source


def test_program_is_glsl_es_300_with_high_precision_everywhere():
    source = conv_source(6, strides=2, padding="SAME")
    lines = source.splitlines()
    assert lines[0] == "#version 300 es"
    for kind in ("float", "int", "sampler2D"):
        assert f"precision highp {kind};" in source
    for name in ("getOutputCoords()", "float getX(int b, int r, int c, int d)",
                 "float getW(int b, int r, int c, int d)", "void main()", "setOutput(dotProd);"):
        assert name in source
    assert "{{" not in source and "{%" not in source


def test_constants_come_from_the_geometry():
    source = conv_source(5, strides=2, padding="SAME", dilations=1)
    g = conv2d_geometry((1, 6, 6, 5), (3, 3, 5, 2), strides=2, padding="SAME")
    assert f"ivec2({g.stride_height}, {g.stride_width}) - ivec2({g.pad_top}, {g.pad_left})" in source
    assert "if (xR < 0 || xR >= 6)" in source


def test_channels_first_reads_x_in_nchw_order():
    source = gpuconv.shader_source("conv2d", (1, 5, 6, 6), (3, 3, 5, 2), data_format="NCHW")
    assert "getX(batch, d1, xR, xC)" in source
    assert "float getX(int b, int d, int r, int c)" in source  # batch, channel, row, column
    assert "int d2 = coords[1];" in source


def test_grouped_program_offsets_input_channels():
    source = gpuconv.shader_source("conv2d", (1, 6, 6, 6), (3, 3, 2, 9), groups=3)
    assert "int inChannelOffset = (d2 / 3) * 2;" in source
    assert "getX(batch, xR, xC, inChannelOffset + 0)" in source
    assert "inChannelOffset" not in conv_source(6)


@pytest.mark.parametrize("multiplier", [1, 3])
def test_depthwise_channel_multiplier_mapping(multiplier):
    source = gpuconv.shader_source("depthwise_conv2d", (1, 6, 6, 4), (3, 3, 4, multiplier))
    if multiplier > 1:
        assert f"int d1 = d2 / {multiplier};" in source
        assert f"int q = d2 - d1 * {multiplier};" in source
    else:
        assert "int d1 = d2;" in source
    assert "getX(batch, xR, xC, d1) " in source or "getX(batch, xR, xC, d1);" in source
    assert "getW(wR, wC, d1, q)" in source
    assert "for (int d1" not in source  # no depth loop in a depthwise program


def test_batch_of_one_is_squeezed_out_of_samplers():
    source = conv_source(4)
    sampler = source[source.index("float getX"):source.index("float getW")]
    assert "b *" not in sampler


def test_wrapped_layout_when_texture_limit_is_small():
    source = gpuconv.shader_source("conv2d", (1, 30, 30, 3), (3, 3, 3, 2), max_texture_size=64)
    assert "wrapped into" in source and "int texRow = index / " in source


def test_shader_source_rejects_unknown_op():
    with pytest.raises(ValueError, match="op must be one of"):
        gpuconv.shader_source("conv4d", (1, 4, 4, 1), (1, 1, 1, 1))  # (conv3d is known: an entry of registry.OPS)


def _configs():
    for depth in range(1, 10):
        for data_format in ("NHWC", "NCHW"):
            x = (2, 7, 5, depth) if data_format == "NHWC" else (2, depth, 7, 5)
            yield "conv2d", x, (3, 2, depth, 3), dict(data_format=data_format, padding="SAME")
            yield "depthwise_conv2d", x, (2, 3, depth, 2), dict(data_format=data_format, strides=2)
    yield "conv2d", (1, 7, 7, 6), (3, 3, 2, 6), dict(groups=3, bias=np.zeros(6), activation="relu6")
    for activation in ("relu", "elu", "sigmoid", "leakyrelu"):
        yield "conv2d", (1, 5, 5, 3), (1, 1, 3, 4), dict(bias=np.zeros(4), activation=activation)
    yield "depthwise_conv2d", (1, 5, 5, 3), (3, 3, 3, 1), dict(activation="prelu", prelu_weights=np.ones(3))


@pytest.mark.parametrize("algorithm", ["direct", "packed"])
def test_every_generated_program_compiles_and_links(runtime, algorithm):
    sources = set()
    for op, x_shape, filter_shape, kwargs in _configs():
        if algorithm == "packed" and kwargs.get("groups", 1) > 1:
            continue
        sources.add(gpuconv.shader_source(op, x_shape, filter_shape, algorithm=algorithm, **kwargs))
    sources.add(gpuconv.shader_source("separable_conv2d", (1, 6, 6, 3), (3, 3, 3, 2), algorithm=algorithm,
                                      pointwise_filter_shape=(1, 1, 6, 4))
                .split(registry.program_banner("separable_conv2d", 2, 2))[1])
    with runtime._egl:  # its context current: another runtime made and released in this thread may not be
        for source in sources:
            program = runtime.ctx.program(vertex_shader=codegen.vertex_source(), fragment_shader=source.strip() + "\n")
            program.release()


def test_compiled_programs_are_cached_by_spec(runtime):
    g = conv2d_geometry((1, 6, 6, 3), (3, 3, 3, 2))
    with runtime._egl:  # runtime.program is called by the runtime's own calls, with its context current
        first, _ = runtime.program(conv2d_program(g))
        assert runtime.program(conv2d_program(g))[0] is first
        other = conv2d_geometry((1, 7, 6, 3), (3, 3, 3, 2))
        assert runtime.program(conv2d_program(other))[0] is not first
