"""algorithm="im2col": TF.js's default conv2d path (Im2ColPackedProgram, then MatMulPackedProgram;
a 1x1 unpadded filter runs the matrix multiply alone), against the float64 oracle
and against the packed and direct programs, natively, in the browser and on a 4-draw-buffer
device, and its two programs through glslang."""

import numpy as np
import pytest
from helpers import assert_close
from test_export import HELPERS, run_module
from test_gpu_conv import CONV2D_CASES, _ids
from test_gpu_ops import ACTIVATIONS, CONV1D_CASES, NCHW_CASES

import gpuconv
from gpuconv import im2col, validate
from gpuconv.cli import main
from gpuconv.export import build
from gpuconv.im2col import choose_im2col
from gpuconv.limits import Limits
from gpuconv.ops import plan_conv2d
from gpuconv.programs import Im2ColProgramSpec, MatMulProgramSpec, im2col_layout


def _data(rng, *shapes):
    return [rng.uniform(-1, 1, size=shape).astype(np.float32) for shape in shapes]


def _nchw(a):
    return np.ascontiguousarray(a.transpose(0, 3, 1, 2))


# Beyond test_gpu_conv's matrix (depths 1-9, strides, dilations, every padding form, batches,
# 1x1 and non-square filters): the 1x1 shortcut at batch 2, a 1x1 filter that is padded or
# strided (both programs), stride and dilation both > 1, and a wide 7x7.
EXTRA_CASES = [
    ((2, 5, 9, 4), (1, 1, 4, 6), dict(padding="SAME")),                  # the shortcut
    ((1, 6, 7, 3), (1, 1, 3, 5), dict(padding=1)),                       # 1x1, padded: im2col too
    ((2, 7, 7, 5), (1, 1, 5, 3), dict(strides=2, padding="VALID")),      # 1x1, strided: the shortcut too
    ((1, 13, 12, 3), (3, 3, 3, 4), dict(strides=2, dilations=2, padding="SAME")),
    ((1, 20, 19, 3), (7, 7, 3, 9), dict(strides=2, padding="SAME")),
]
CASES = CONV2D_CASES + EXTRA_CASES


@pytest.mark.parametrize("x_shape, w_shape, kwargs", CASES, ids=_ids(CASES))
def test_im2col_matches_the_oracle_packed_and_direct(runtime, rng, x_shape, w_shape, kwargs):
    x, w = _data(rng, x_shape, w_shape)
    y = gpuconv.conv2d(x, w, algorithm="im2col", **kwargs)
    assert_close(y, gpuconv.oracle.conv2d(x, w, **kwargs))
    for other in ("packed", "direct"):  # the same sums in another order: float32 rounding apart
        assert_close(y, gpuconv.conv2d(x, w, algorithm=other, **kwargs))


@pytest.mark.parametrize("x_shape, w_shape, kwargs", CASES, ids=_ids(CASES))
def test_plan_is_two_programs_or_the_matmul_alone(x_shape, w_shape, kwargs):
    plan = plan_conv2d(x_shape, w_shape, algorithm="im2col", shapes_only=True, **kwargs)
    g = plan.geometry
    shortcut = (g.filter_height, g.filter_width) == (1, 1) and not any((g.pad_top, g.pad_bottom, g.pad_left,
                                                                         g.pad_right))
    names = [spec.name for spec in plan.specs]
    assert names == (["MatMulPackedProgram"] if shortcut else ["Im2ColPackedProgram", "MatMulPackedProgram"])
    assert plan.out_shape == g.out_shape
    plan.check_chaining()


@pytest.mark.parametrize("op, x_shape, w_shape, kwargs", [c for c in NCHW_CASES if c[0] == "conv2d"
                                                          and c[3].get("groups", 1) == 1])
def test_nchw(runtime, rng, op, x_shape, w_shape, kwargs):
    x, w = _data(rng, x_shape, w_shape)
    y = gpuconv.conv2d(_nchw(x), w, data_format="NCHW", algorithm="im2col", **kwargs)
    expected = gpuconv.oracle.conv2d(_nchw(x), w, data_format="NCHW", **kwargs)
    assert_close(y, expected)
    assert_close(y, gpuconv.conv2d(_nchw(x), w, data_format="NCHW", algorithm="packed", **kwargs))


@pytest.mark.parametrize("x_shape, w_shape, kwargs", CONV1D_CASES, ids=_ids(CONV1D_CASES))
def test_conv1d(runtime, rng, x_shape, w_shape, kwargs):
    x, w = _data(rng, x_shape, w_shape)
    assert_close(gpuconv.conv1d(x, w, algorithm="im2col", **kwargs), gpuconv.oracle.conv1d(x, w, **kwargs))


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("x_shape, w_shape, kwargs", [
    ((2, 7, 6, 5), (3, 3, 5, 6), dict(strides=2, padding="SAME")),
    ((1, 6, 8, 7), (1, 1, 7, 5), dict(padding="VALID")),                 # the shortcut's epilogue
])
def test_fused_bias_and_activation_in_the_matmul_epilogue(runtime, rng, x_shape, w_shape, kwargs, activation):
    x, w, b = _data(rng, x_shape, w_shape, (w_shape[3],))
    fused = dict(kwargs, bias=b, activation=activation)
    if activation == "prelu":
        fused["prelu_weights"] = rng.uniform(0, 1, w_shape[3]).astype(np.float32)
    if activation == "leakyrelu":
        fused["leakyrelu_alpha"] = 0.3
    plan = plan_conv2d(x, w, algorithm="im2col", **fused)
    assert not isinstance(plan.specs[0], MatMulProgramSpec) or len(plan.specs) == 1
    assert plan.specs[-1].epilogue.activation == activation and plan.specs[-1].epilogue.has_bias
    y = gpuconv.conv2d(x, w, algorithm="im2col", **fused)
    assert_close(y, gpuconv.oracle.conv2d(x, w, **fused))
    assert_close(y, gpuconv.conv2d(x, w, algorithm="packed", **fused))


@pytest.mark.parametrize("x_shape, w_shape, kwargs, pixels", [
    ((2, 1, 1, 7), (1, 1, 7, 9), dict(), 1),                                   # squeeze-and-excite: 1x1 maps
    ((1, 6, 2, 6), (1, 1, 6, 5), dict(data_format="NCHW"), 2),
    ((2, 7, 7, 5), (1, 1, 5, 8), dict(strides=2), 4),                          # strided: x's kept pixels only
    ((1, 9, 19, 8), (1, 1, 8, 7), dict(strides=(3, 2), data_format="NCHW"), 8),
])
def test_the_matmul_alone_on_narrow_and_strided_1x1(runtime, rng, x_shape, w_shape, kwargs, pixels):
    """A 1x1 unpadded filter at any stride runs the matrix multiply alone on x (auto's choice),
    with as few render targets as the output's width needs, the epilogue fused."""
    x, w, b = _data(rng, x_shape, w_shape, (w_shape[3],))
    nchw = kwargs.get("data_format") == "NCHW"
    x = _nchw(x) if nchw else x
    expected_shape = gpuconv.oracle.conv2d(x, w, **kwargs).shape
    (r,) = _data(rng, expected_shape)
    fused = dict(kwargs, bias=b, residual=r, activation="hard_sigmoid")
    plan = plan_conv2d(x, w, algorithm="auto", **fused)
    (spec,) = plan.specs
    assert isinstance(spec, MatMulProgramSpec) and spec.shortcut and spec.pixels == pixels
    y = gpuconv.conv2d(x, w, **fused)
    assert_close(y, gpuconv.oracle.conv2d(x, w, **fused))
    assert_close(y, gpuconv.conv2d(x, w, algorithm="packed", **fused))


def test_a_narrow_matmul_output_tensor_is_read_in_place(runtime, rng):
    """Squeeze-and-excite's second 1x1 conv on the first's output Tensor (1 render target): a
    packed 1x1 program as narrow reads it in place, no conversion."""
    x, w1, w2 = _data(rng, (2, 1, 1, 7), (1, 1, 7, 6), (1, 1, 6, 9))
    squeezed = gpuconv.conv2d(gpuconv.to_gpu(x, runtime), w1, activation="relu")
    assert squeezed.layout.count == 1
    (spec,) = plan_conv2d(squeezed, w2, activation="hard_sigmoid", algorithm="auto").specs
    assert spec.x_split and spec.pixels == 1
    y = gpuconv.conv2d(squeezed, w2, activation="hard_sigmoid")
    expected = gpuconv.oracle.conv2d(gpuconv.oracle.conv2d(x, w1, activation="relu"), w2, activation="hard_sigmoid")
    assert_close(y.numpy(), expected)
    squeezed.release()
    y.release()


def test_rank3_input(runtime, rng):
    x, w = _data(rng, (6, 5, 3), (3, 3, 3, 2))
    y = gpuconv.conv2d(x, w, padding="SAME", algorithm="im2col")
    assert y.shape == (6, 5, 2)
    assert_close(y, gpuconv.oracle.conv2d(x, w, padding="SAME"))


def _numpy_im2col(x, g):
    """The im2col matrix [N * OH * OW, FH * FW * C] (taps row-major, channels innermost)."""
    padded = np.pad(x, ((0, 0), (g.pad_top, g.pad_bottom + g.effective_filter_height),
                        (g.pad_left, g.pad_right + g.effective_filter_width), (0, 0)))
    rows = []
    for fh in range(g.filter_height):
        for fw in range(g.filter_width):
            r0, c0 = fh * g.dilation_height, fw * g.dilation_width
            rows.append(padded[:, r0:r0 + g.stride_height * g.out_height:g.stride_height,
                               c0:c0 + g.stride_width * g.out_width:g.stride_width, :])
    return np.stack(rows, axis=3).reshape(g.batch * g.out_height * g.out_width, -1)


@pytest.mark.parametrize("x_shape, w_shape, kwargs, limit", [
    ((2, 7, 6, 3), (3, 2, 3, 4), dict(strides=(1, 2), padding="SAME"), None),
    ((1, 9, 8, 6), (3, 3, 6, 2), dict(dilations=2, padding=[[1, 2], [2, 0]]), None),
    ((2, 9, 40, 6), (3, 3, 6, 5), dict(padding="SAME"), 80),    # rows split: 4 groups of 8 pixels a row
])
def test_the_im2col_matrix_itself(runtime, rng, x_shape, w_shape, kwargs, limit):
    x, w = _data(rng, x_shape, w_shape)
    limits = Limits(max_texture_size=limit) if limit else Limits()
    plan = plan_conv2d(x, w, algorithm="im2col", limits=limits, **kwargs)
    spec, arrays = plan.steps[0]
    assert isinstance(spec, Im2ColProgramSpec)
    layout = spec.output_layouts[0]
    assert layout.cols <= limits.max_texture_size and layout.rows <= limits.max_texture_size
    if limit:
        assert layout.row_split > 1 and layout.row_pixels < plan.geometry.out_width
    texture = runtime.upload(arrays["x"], spec.inputs[0].layout)
    outputs = runtime.draw(spec, {"x": texture})
    assert len(outputs) == spec.pixels == (4 if plan.geometry.out_width <= 4 else 8)  # a 3-wide output: 4 targets
    try:
        matrix = spec.assemble([runtime.read(output, layout) for output in outputs])
    finally:
        runtime.free([texture, *outputs])
    np.testing.assert_array_equal(matrix, _numpy_im2col(x, plan.geometry))
    assert_close(plan.execute(runtime), gpuconv.oracle.conv2d(x, w, **kwargs))


def test_rows_too_wide_for_one_texture_row_are_split(runtime, rng):
    # 11x11x3 on 300 columns: a row of the matrix is 121 texels, 38 groups of 8 pixels 4598 > 2048
    x, w = _data(rng, (1, 12, 300, 3), (11, 11, 3, 4))
    layout = im2col_layout(plan_conv2d(x.shape, w.shape, padding="SAME", shapes_only=True).geometry, 2048)
    assert (layout.row_pixels, layout.row_split, layout.cols) == (128, 3, 16 * 121)
    y = gpuconv.conv2d(x, w, padding="SAME", algorithm="im2col", runtime=gpuconv.Runtime(max_texture_size=2048))
    assert_close(y, gpuconv.oracle.conv2d(x, w, padding="SAME"))


def test_four_draw_buffers(rng):
    with gpuconv.Runtime(max_draw_buffers=4) as phone:
        for x_shape, w_shape, kwargs in [((2, 7, 9, 5), (3, 3, 5, 6), dict(padding="SAME")),
                                         ((1, 6, 11, 8), (1, 1, 8, 7), {})]:
            x, w, b = _data(rng, x_shape, w_shape, (w_shape[3],))
            plan = plan_conv2d(x, w, algorithm="im2col", limits=phone.limits, **kwargs)
            assert len(plan.spec.output_layouts) == 4
            y = gpuconv.conv2d(x, w, bias=b, activation="relu", algorithm="im2col", runtime=phone, **kwargs)
            assert_close(y, gpuconv.oracle.conv2d(x, w, bias=b, activation="relu", **kwargs))


BROWSER_CASES = [
    ((2, 9, 8, 5), (3, 3, 5, 6), dict(strides=2, padding="SAME")),
    ((1, 7, 7, 6), (1, 1, 6, 5), dict(padding="VALID")),
    ((1, 11, 9, 3), (3, 2, 3, 3), dict(dilations=2, padding=[[1, 0], [2, 1]])),
]


@pytest.mark.parametrize("x_shape, w_shape, kwargs", BROWSER_CASES, ids=_ids(BROWSER_CASES))
def test_browser(browser, rng, x_shape, w_shape, kwargs):
    x, w, b = _data(rng, x_shape, w_shape, (w_shape[3],))
    fused = dict(kwargs, bias=b, activation="relu6")
    y = gpuconv.conv2d(x, w, algorithm="im2col", runtime=browser, **fused)
    assert_close(y, gpuconv.oracle.conv2d(x, w, **fused))


def test_browser_four_draw_buffers(browser_phone, rng):
    x, w = _data(rng, (1, 9, 10, 7), (3, 3, 7, 5))
    y = gpuconv.conv2d(_nchw(x), w, data_format="NCHW", padding="SAME", algorithm="im2col", runtime=browser_phone)
    assert_close(y, gpuconv.oracle.conv2d(_nchw(x), w, data_format="NCHW", padding="SAME"))


def test_tensors_chain_through_both_programs(runtime, rng):
    x, w1, w2 = _data(rng, (1, 12, 10, 6), (3, 3, 6, 8), (1, 1, 8, 4))
    with gpuconv.to_gpu(x) as t, gpuconv.conv2d(t, w1, padding="SAME", algorithm="im2col") as h, \
            gpuconv.conv2d(h, w2, algorithm="im2col") as out:       # the shortcut reads h converted
        expected = gpuconv.oracle.conv2d(gpuconv.oracle.conv2d(x, w1, padding="SAME"), w2)
        assert_close(out.numpy(), expected)
        assert_close(h.numpy(), gpuconv.oracle.conv2d(x, w1, padding="SAME"))


# -- what im2col refuses, and what "auto" never gives it --------------------------------------


def test_groups_are_refused_and_auto_never_picks_im2col_for_them(runtime, rng):
    x, w = _data(rng, (1, 6, 6, 4), (3, 3, 2, 4))
    with pytest.raises(ValueError, match="algorithm='im2col' cannot run this call: grouped convolution"):
        gpuconv.conv2d(x, w, groups=2, algorithm="im2col")
    plan = plan_conv2d(x, w, groups=2, algorithm="auto")
    assert [spec.name for spec in plan.specs] == ["Conv2DProgram"]


@pytest.mark.parametrize("call", [
    lambda x: gpuconv.depthwise_conv2d(x, np.ones((3, 3, 4, 1), np.float32), algorithm="im2col"),
    lambda x: gpuconv.separable_conv2d(x, np.ones((3, 3, 4, 1), np.float32), np.ones((1, 1, 4, 2), np.float32),
                                       algorithm="im2col"),
])
def test_other_ops_refuse_it(runtime, call):
    with pytest.raises(ValueError, match="im2col' runs conv2d and conv1d only"):
        call(np.ones((1, 6, 6, 4), np.float32))


def test_per_element_prelu_is_refused(rng):
    x, w = _data(rng, (1, 5, 5, 3), (3, 3, 3, 2))
    with pytest.raises(ValueError, match="PReLU weights that vary within a channel"):
        plan_conv2d(x, w, padding="SAME", activation="prelu", prelu_weights=np.ones((1, 5, 5, 2), np.float32),
                    algorithm="im2col")


def test_a_non_finite_weight_on_a_padding_tap_gives_nan_as_in_tfjs(runtime, rng):
    # The im2col matrix holds a zero for a tap on the padding, multiplied by its weight (TF.js's
    # path does the same): 0 * inf is NaN there, where the oracle skips the tap.  Without padding
    # every product is one the oracle makes too.
    x, w = _data(rng, (1, 6, 6, 3), (3, 3, 3, 2))
    w[0, 0, 0, 0] = np.inf
    y = gpuconv.conv2d(x, w, padding="SAME", algorithm="im2col")
    expected = gpuconv.oracle.conv2d(x, w, padding="SAME")
    assert np.isnan(y[0, 0, 0, 0]) and not np.isnan(expected[0, 0, 0, 0])
    np.testing.assert_array_equal(np.isposinf(y[0, 1:, 1:, 0]), np.isposinf(expected[0, 1:, 1:, 0]))
    valid = gpuconv.conv2d(x, w, padding="VALID", algorithm="im2col")
    expected = gpuconv.oracle.conv2d(x, w, padding="VALID")
    np.testing.assert_array_equal(np.isnan(valid), np.isnan(expected))
    np.testing.assert_array_equal(np.isposinf(valid), np.isposinf(expected))
    # so "auto" takes im2col for a padded convolution only when the filter is finite (and on the host)
    g = plan_conv2d(x.shape, w.shape, padding="SAME", shapes_only=True).geometry
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(im2col, "auto_prefers_im2col", lambda geometry: True)
        assert not choose_im2col("auto", g, plan_conv2d(x, w, padding="SAME").spec.epilogue, Limits(), w)
        assert not choose_im2col("auto", g, plan_conv2d(x, w, padding="SAME").spec.epilogue, Limits(), None)
        assert choose_im2col("auto", g, plan_conv2d(x, w, padding="SAME").spec.epilogue, Limits(),
                             np.ones_like(w))


# -- the programs' sources ------------------------------------------------------------------------


def test_shader_sources_give_both_programs():
    im2col, matmul = gpuconv.shader_sources("conv2d", (1, 7, 7, 6), (3, 3, 6, 4), padding="SAME",
                                            algorithm="im2col")
    assert "Im2ColPackedProgram" in im2col and "uniform int patchDepth4;" in im2col
    assert "MatMulPackedProgram" in matmul and "mat4 w = mat4(" in matmul
    (alone,) = gpuconv.shader_sources("conv2d", (1, 7, 7, 6), (1, 1, 6, 4), algorithm="im2col")
    assert "MatMulPackedProgram: x as the matrix" in alone
    # sizes are uniforms: another shape of the family has the same sources
    assert gpuconv.shader_sources("conv2d", (2, 9, 19, 3), (5, 3, 3, 7), strides=2, padding="VALID",
                                  algorithm="im2col") == (im2col, matmul)
    fused = gpuconv.shader_sources("conv2d", (1, 7, 7, 6), (3, 3, 6, 4), padding="SAME", algorithm="im2col",
                                   bias=np.zeros(4, np.float32), activation="relu6")
    assert fused[0] == im2col and "uniform sampler2D bias;" in fused[1] and "activation(" in fused[1]


def test_the_shader_command_prints_both(capsys):
    args = ["shader", "conv2d", "--input", "1x7x7x6", "--filter", "3x3x6x4", "--padding", "same"]
    assert main(args + ["--algorithm", "im2col"]) == 0
    first, marker, second = capsys.readouterr().out.partition("\n// ---- program 2 of 2")
    assert marker and "Im2ColPackedProgram" in first and "MatMulPackedProgram" in second
    assert first.startswith("#version 300 es")


@pytest.fixture(scope="module")
def glslang():
    try:
        return validate.validator_version()
    except validate.GLSLValidatorUnavailableError as exc:
        import os

        if os.environ.get("CI"):
            pytest.fail(f"glslangValidator is missing on CI: {exc}")
        pytest.skip(f"no glslangValidator: {exc}")


def test_glslang_accepts_every_program(glslang):
    sources = set()
    for activation in ACTIVATIONS:
        for x_shape, w_shape in [((1, 7, 7, 6), (3, 3, 6, 4)), ((1, 7, 7, 6), (1, 1, 6, 4))]:
            for buffers in (4, 8):
                fused = dict(bias=np.zeros(4, np.float32), activation=activation)
                if activation == "prelu":
                    fused["prelu_weights"] = np.ones(4, np.float32)
                sources.update(gpuconv.shader_sources("conv2d", x_shape, w_shape, algorithm="im2col",
                                                      max_draw_buffers=buffers, **fused))
    sources.update(gpuconv.shader_sources("conv2d", (1, 7, 7, 6), (3, 3, 6, 4), algorithm="im2col"))
    assert len(sources) > 2 * len(ACTIVATIONS)  # one im2col; a matmul per epilogue, buffers and shortcut
    validate.validate_sources(sorted(sources))


def test_the_profile_names_both_programs(runtime, rng):
    x, w = _data(rng, (1, 10, 10, 5), (3, 3, 5, 8))
    with gpuconv.profile(runtime) as prof:
        gpuconv.conv2d(x, w, padding="SAME", algorithm="im2col", runtime=runtime)
    im2col_record, matmul_record = prof.records
    assert (im2col_record.program, matmul_record.program) == ("Im2ColPackedProgram", "MatMulPackedProgram")
    assert im2col_record.algorithm == matmul_record.algorithm == "im2col"
    assert im2col_record.flops == 0 and matmul_record.flops == 2 * 10 * 10 * 8 * 9 * 5


@pytest.mark.parametrize("x_shape, w_shape, kwargs, picked", [
    ((1, 56, 56, 128), (1, 1, 128, 128), dict(padding="VALID"), True),        # the shortcut
    ((1, 128, 128, 3), (3, 3, 3, 16), dict(padding="SAME", strides=2), True),
    ((1, 224, 224, 3), (7, 7, 3, 64), dict(padding="SAME", strides=2), True),
    ((1, 224, 224, 3), (11, 11, 3, 96), dict(padding="VALID", strides=4), True),
    ((1, 64, 64, 16), (3, 3, 16, 32), dict(padding="SAME"), False),           # packed reuses columns
    ((1, 224, 224, 3), (11, 11, 3, 16), dict(padding="SAME"), True),          # wider than 7: no reuse
    ((1, 64, 64, 3), (7, 7, 3, 32), dict(padding="SAME"), False),             # 7 wide: reused
    ((1, 224, 224, 3), (3, 3, 3, 64), dict(padding="SAME"), True),            # reused, but 3 channels
    ((1, 112, 112, 4), (5, 5, 4, 32), dict(padding="VALID"), True),           # reused, 4 channels, 5x5
    ((1, 224, 224, 3), (3, 3, 3, 8), dict(padding="SAME"), False),            # reused, 8 output channels
    ((4, 224, 224, 3), (11, 11, 3, 16), dict(padding="SAME"), False),         # a 388 MiB matrix
    ((1, 112, 112, 8), (5, 5, 8, 16), dict(padding="SAME", strides=2), False),  # 8 input channels
    ((1, 128, 128, 3), (3, 3, 3, 8), dict(padding="SAME", strides=2), False),   # 8 output channels
    ((1, 64, 64, 16), (3, 3, 16, 32), dict(padding="SAME", dilations=2), False),
    ((1, 64, 64, 3), (3, 3, 3, 32), dict(padding="VALID", dilations=2), True),
    ((1, 56, 56, 64), (1, 1, 64, 128), dict(padding="VALID", strides=2), True),  # 1x1 strided: the shortcut
    ((1, 56, 56, 3), (1, 1, 3, 16), dict(padding=1, strides=2), False),          # 1x1 padded: not measured
])
def test_auto_picks_im2col_where_it_measured_faster(x_shape, w_shape, kwargs, picked):
    w = np.ones(w_shape, np.float32)
    plan = plan_conv2d(np.zeros(x_shape, np.float32), w, algorithm="auto", **kwargs)
    assert (plan.spec.name == "MatMulPackedProgram") == picked, [s.name for s in plan.specs]
    shapes = plan_conv2d(x_shape, w_shape, algorithm="auto", shapes_only=True, **kwargs)
    padded = kwargs.get("padding") == "SAME" and w_shape[0] > 1
    # shapes only (no filter to check for non-finite values): a padded convolution stays packed
    assert (shapes.spec.name == "MatMulPackedProgram") == (picked and not padded)


def test_auto_results_agree_and_a_packed_output_is_read_in_place(runtime, rng):
    x, w1, w2 = _data(rng, (1, 17, 18, 3), (3, 3, 3, 16), (1, 1, 16, 24))
    y = gpuconv.conv2d(x, w1, strides=2, padding="SAME")                        # auto: im2col
    assert_close(y, gpuconv.oracle.conv2d(x, w1, strides=2, padding="SAME"))
    with gpuconv.to_gpu(x) as t, gpuconv.conv2d(t, w1, padding="SAME") as h:     # auto: packed (stride 1)
        assert plan_conv2d(h, w2, algorithm="auto").spec.name == "PackedConv2DProgram"  # h read in place
        with gpuconv.conv2d(h, w2) as out:
            assert_close(out.numpy(), gpuconv.oracle.conv2d(gpuconv.oracle.conv2d(x, w1, padding="SAME"), w2))
    assert plan_conv2d(np.zeros((1, 9, 9, 16), np.float32), w2, algorithm="auto").spec.name == "MatMulPackedProgram"


@pytest.fixture(scope="module")
def module_page(browser):
    """A page of the session's Chromium with test_export's helpers, for exported modules."""
    page = browser._browser.new_page()
    page.set_content("<!DOCTYPE html><html><head><meta charset='utf-8'></head><body></body></html>")
    page.evaluate(HELPERS)
    yield page
    page.close()


@pytest.mark.parametrize("x_shape, w_shape, kwargs", [
    ((2, 9, 8, 5), (3, 3, 5, 6), dict(strides=2, padding="SAME", data_format="NCHW")),
    ((1, 7, 7, 6), (1, 1, 6, 5), dict(padding="VALID")),                 # the shortcut
    ((1, 12, 300, 3), (11, 11, 3, 4), dict(padding="SAME", max_texture_size=2048)),  # rows split
])
def test_exported_module_runs_both_programs_in_the_browser(module_page, x_shape, w_shape, kwargs):
    kwargs = dict(kwargs)
    rng = np.random.default_rng(3)
    x, w, b = _data(rng, x_shape, w_shape, (w_shape[3],))
    if kwargs.get("data_format") == "NCHW":
        x = _nchw(x)
    exported = build("conv2d", x.shape, w.shape, format="js", algorithm="im2col", bias=True, activation="relu",
                     **kwargs)
    assert exported.programs[-1] == "MatMulPackedProgram"
    kwargs.pop("max_texture_size", None)
    output = run_module(module_page, exported.text, {"x": x, "filter": w, "bias": b})
    expected = gpuconv.oracle.conv2d(x, w, bias=b, activation="relu", **kwargs)
    assert_close(output.reshape(expected.shape), expected)
