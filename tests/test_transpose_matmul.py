"""conv2d_transpose and conv2d_backprop_input as MatMulPackedProgram + Col2ImProgram
(algorithm="im2col", and "auto" where gpuconv.im2col.auto_prefers_transpose_matmul picks it),
against the float64 oracle."""

import numpy as np
import pytest

import gpuconv
from gpuconv import ops, oracle
from gpuconv.geometry import conv2d_geometry
from gpuconv.im2col import auto_prefers_transpose_matmul
from gpuconv.layout import PackedFilterLayout, TransposeMatMulFilterLayout
from gpuconv.programs import Col2ImProgramSpec, transpose_matmul_programs

# (result shape, filter [FH, FW, result channels, x channels], strides, padding, dilations, data format):
# result and x channels cover every remainder mod 4; strides 1, 2, 3 and unequal; SAME, VALID,
# explicit pads; a stride equal to the filter (non-overlapping taps); NCHW; batch > 1.
CASES = [
    ((1, 10, 10, 4), (2, 2, 4, 5), 2, "VALID", 1, "NHWC"),
    ((2, 9, 10, 3), (3, 3, 3, 6), 2, "SAME", 1, "NHWC"),
    ((1, 8, 8, 6), (3, 3, 6, 7), 1, "SAME", 1, "NHWC"),
    ((1, 13, 12, 7), (4, 3, 7, 8), (2, 3), [[0, 0], [1, 2], [1, 0], [0, 0]], 1, "NHWC"),
    ((1, 9, 11, 2), (3, 3, 2, 9), 1, "SAME", 2, "NHWC"),
    ((2, 5, 12, 14), (3, 2, 5, 3), (1, 2), "VALID", 1, "NCHW"),
    ((1, 8, 9, 12), (4, 4, 8, 4), 2, "SAME", 1, "NCHW"),
]


def f32(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


def rel_error(y, reference):
    return float(np.abs(np.asarray(y, np.float64) - reference).max() / max(np.abs(reference).max(), 1e-30))


def args_of(case, rng):
    out_shape, fs, strides, padding, dilations, data_format = case
    x_shape = conv2d_geometry(out_shape, fs, strides, padding, data_format, dilations).out_shape
    return f32(rng, *x_shape), f32(rng, *fs), out_shape, dict(strides=strides, padding=padding,
                                                              dilations=dilations, data_format=data_format)


@pytest.mark.parametrize("case", CASES, ids=[str(i) for i in range(len(CASES))])
def test_matches_oracle(runtime, rng, case):
    x, w, out_shape, kwargs = args_of(case, rng)
    plan = ops.plan_conv2d_transpose(x, w, out_shape, **kwargs, algorithm="im2col")
    assert [spec.name for spec in plan.specs] == ["MatMulPackedProgram", "Col2ImProgram"]
    reference = oracle.conv2d_transpose(x, w, out_shape, **kwargs)
    y = gpuconv.conv2d_transpose(x, w, out_shape, **kwargs, algorithm="im2col", runtime=runtime)
    assert y.shape == reference.shape
    assert rel_error(y, reference) < 2e-6


@pytest.mark.parametrize("case", CASES[::3], ids=[str(i) for i in range(0, len(CASES), 3)])
def test_backprop_input_matches_oracle(runtime, rng, case):
    dy, w, dx_shape, kwargs = args_of(case, rng)
    plan = ops.plan_conv2d_backprop_input(dx_shape, w, dy, **kwargs, algorithm="im2col")
    assert [spec.name for spec in plan.specs] == ["MatMulPackedProgram", "Col2ImProgram"]
    dx = gpuconv.conv2d_backprop_input(dx_shape, w, dy, **kwargs, algorithm="im2col", runtime=runtime)
    assert rel_error(dx, oracle.conv2d_backprop_input(dx_shape, w, dy, **kwargs)) < 2e-6


def test_output_shape_variants_and_rank_3(runtime, rng):
    """SAME at stride 2 allows an odd and an even result from the same x; rank 3 in and out."""
    x, w = f32(rng, 5, 6, 9), f32(rng, 3, 3, 3, 9)
    for out_shape in ((9, 11, 3), (10, 12, 3)):
        reference = oracle.conv2d_transpose(x, w, out_shape, strides=2, padding="SAME")
        y = gpuconv.conv2d_transpose(x, w, out_shape, strides=2, padding="SAME", algorithm="im2col",
                                     runtime=runtime)
        assert y.shape == out_shape
        assert rel_error(y, reference) < 2e-6
    dx = gpuconv.conv2d_backprop_input((10, 12, 3), w, x, strides=2, padding="SAME", algorithm="im2col",
                                       runtime=runtime)
    assert rel_error(dx, oracle.conv2d_backprop_input((10, 12, 3), w, x, strides=2, padding="SAME")) < 2e-6


@pytest.mark.parametrize("activation", ["relu", "elu", "leakyrelu", "prelu"])
@pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
def test_fused_epilogue(runtime, rng, activation, data_format):
    out_shape = (2, 9, 10, 6) if data_format == "NHWC" else (2, 6, 9, 10)
    x, w, out_shape, kwargs = args_of((out_shape, (3, 3, 6, 5), 2, "SAME", 1, data_format), rng)
    fused = dict(bias=f32(rng, 6), activation=activation, residual=f32(rng, *out_shape))
    if activation == "prelu":
        fused["prelu_weights"] = f32(rng, 6)
    if activation == "leakyrelu":
        fused["leakyrelu_alpha"] = 0.3
    reference = oracle.conv2d_transpose(x, w, out_shape, **kwargs, **fused)
    y = gpuconv.conv2d_transpose(x, w, out_shape, **kwargs, **fused, algorithm="im2col", runtime=runtime)
    assert rel_error(y, reference) < 2e-6


def test_folds_and_four_draw_buffers(runtime, rng):
    """Small images fold their render targets (the product's and the result's): both are read back
    through the folds; a device with 4 draw buffers computes 4 pixels per fragment."""
    x, w, out_shape, kwargs = args_of(((1, 40, 64, 40), (2, 2, 40, 5), 2, "VALID", 1, "NHWC"), rng)
    _, col2im = ops.plan_conv2d_transpose(x, w, out_shape, **kwargs, algorithm="im2col").specs
    assert isinstance(col2im, Col2ImProgramSpec) and col2im.fold > 1 and col2im.x_fold > 1
    y = gpuconv.conv2d_transpose(x, w, out_shape, **kwargs, algorithm="im2col", runtime=runtime)
    assert rel_error(y, oracle.conv2d_transpose(x, w, out_shape, **kwargs)) < 2e-6
    phone = gpuconv.Runtime(max_draw_buffers=4)
    try:
        x, w, out_shape, kwargs = args_of(CASES[3], rng)
        plan = ops.plan_conv2d_transpose(x, w, out_shape, **kwargs, algorithm="im2col", limits=phone.limits)
        assert {spec.pixels for spec in plan.specs} == {4}
        y = gpuconv.conv2d_transpose(x, w, out_shape, **kwargs, algorithm="im2col", runtime=phone)
        assert rel_error(y, oracle.conv2d_transpose(x, w, out_shape, **kwargs)) < 2e-6
    finally:
        phone.release()


def test_tensors(runtime, rng):
    """x a Tensor (here a packed program's split output, converted), the result kept on the GPU;
    a filter Tensor converted on the GPU into the matrix multiply's layout: the same values as
    the host filter packed on upload."""
    x0, w0 = f32(rng, 1, 5, 5, 3), f32(rng, 3, 3, 3, 6)
    w1 = f32(rng, 2, 2, 4, 6)
    expected = oracle.conv2d_transpose(oracle.conv2d(x0, w0, padding="SAME"), w1, (1, 10, 10, 4), strides=2)
    with gpuconv.to_gpu(x0, runtime) as t0, gpuconv.conv2d(t0, w0, padding="SAME", algorithm="packed") as t1, \
            gpuconv.conv2d_transpose(t1, w1, (1, 10, 10, 4), strides=2, algorithm="im2col") as t2:
        assert rel_error(t2.numpy(), expected) < 2e-6
    x, w, out_shape, kwargs = args_of(CASES[3], rng)
    expected = gpuconv.conv2d_transpose(x, w, out_shape, **kwargs, algorithm="im2col", runtime=runtime)
    with gpuconv.to_gpu(w, runtime) as tw, \
            gpuconv.conv2d_transpose(x, tw, out_shape, **kwargs, algorithm="im2col") as y:
        np.testing.assert_array_equal(y.numpy(), expected)


def test_auto_rule():
    """auto: matmul + col2im from 2M multiply-adds (measured), but a stride-1 transposed convolution
    with a host filter runs as the forward convolution it equals."""
    def names(x_shape, filter_shape, out_shape, strides, padding, **fused):
        plan = ops.plan_conv2d_transpose(x_shape, filter_shape, out_shape, strides, padding, algorithm="auto",
                                         shapes_only=True, **fused)
        return [spec.name for spec in plan.specs]

    matmul = ["MatMulPackedProgram", "Col2ImProgram"]
    assert names((1, 14, 14, 256), (4, 4, 128, 256), (1, 28, 28, 128), 2, "SAME") == matmul
    assert names((1, 16, 16, 64), (2, 2, 32, 64), (1, 17, 32, 32), (1, 2), "VALID") == matmul
    assert names((1, 32, 32, 16), (2, 2, 8, 16), (1, 64, 64, 8), 2, "VALID") == ["PackedConv2DDerInputProgram"]
    assert names((1, 10, 10, 256), (3, 3, 256, 256), (1, 10, 10, 256), 1, "SAME") == ["PackedConv2DProgram"]
    assert auto_prefers_transpose_matmul(conv2d_geometry((1, 14, 14, 64), (3, 3, 64, 64), 1, "SAME"))
    assert not auto_prefers_transpose_matmul(conv2d_geometry((1, 16, 16, 16), (3, 3, 16, 16), 1, "SAME"))
    # the input gradient: no forward rewrite, the rule alone
    assert ops.plan_conv2d_backprop_input((1, 10, 10, 256), (3, 3, 256, 256), (1, 10, 10, 256), 1, "SAME",
                                          algorithm="auto", shapes_only=True).spec.name == "Col2ImProgram"
    # a bias varying within a channel: the direct program
    bias = np.zeros((1, 32, 32, 4), np.float32)
    assert names((1, 16, 16, 256), (2, 2, 4, 256), (1, 32, 32, 4), 2, "VALID", bias=bias) == \
        ["Conv2DDerInputProgram"]


def test_filter_reshape_and_sources():
    w = np.arange(3 * 2 * 5 * 6, dtype=np.float32).reshape(3, 2, 5, 6)
    layout = TransposeMatMulFilterLayout(w.shape)
    texels = layout.pack(w)
    # the matrix multiply's 1x1 filter [1, 1, 6, 3 * 2 * 8]: column tap * 8 + o, zeros past 5 channels
    matrix = np.zeros((6, 3 * 2, 8), np.float32)
    matrix[:, :, :5] = w.reshape(6, 5, 6).transpose(2, 0, 1)
    expected = PackedFilterLayout((1, 1, 6, 48)).pack(matrix.reshape(1, 1, 6, 48))
    assert (layout.rows, layout.cols) == (8, 12) and texels.shape == expected.shape
    np.testing.assert_array_equal(texels, expected)
    assert texels[2, 3 * 2 + 1, 0] == w[1, 1, 4, 2] and texels[2, 3 * 2 + 1, 1] == 0.0
    a = transpose_matmul_programs(conv2d_geometry((1, 10, 10, 4), (3, 3, 4, 3), 2, "SAME"))
    b = transpose_matmul_programs(conv2d_geometry((2, 17, 9, 12), (5, 3, 12, 9), (3, 2), "VALID", "NHWC"))
    c = transpose_matmul_programs(conv2d_geometry((2, 17, 9, 12), (5, 3, 12, 9), (3, 1), "VALID", "NHWC"))
    # sizes are uniforms; col2im bakes in the filter's width, the stride across and the padding's phase
    assert [s.source_key() for s in a] == [s.source_key() for s in b]
    assert a[0].source_key() == c[0].source_key() and a[1].source_key() != c[1].source_key()
    assert a[1].loop_iterations == 3 and a[1].flops == 0


def test_refusals():
    x, w = np.zeros((1, 4, 4, 3), np.float32), np.zeros((3, 3, 2, 3), np.float32)
    full_bias = np.zeros((1, 8, 8, 2), np.float32)
    with pytest.raises(ValueError, match="algorithm='im2col' cannot run this call: a bias that varies"):
        ops.plan_conv2d_transpose(x, w, (1, 8, 8, 2), strides=2, padding="SAME", bias=full_bias, algorithm="im2col")
    with pytest.raises(ValueError, match="algorithm='im2col' cannot run this call: PReLU weights that vary"):
        ops.plan_conv2d_transpose(x, w, (1, 8, 8, 2), strides=2, padding="SAME", activation="prelu",
                                  prelu_weights=full_bias, algorithm="im2col")
    with pytest.raises(ValueError, match="over the 4 limit"):
        ops.plan_conv2d_transpose(x, w, (1, 8, 8, 2), strides=2, padding="SAME", algorithm="im2col",
                                  limits=gpuconv.limits.Limits(4))


def test_glsl_validation():
    from gpuconv.validate import GLSLValidatorUnavailableError, validate_glsl

    sources = [source for fused in ({}, dict(bias=np.zeros(4, np.float32), activation="prelu",
                                             prelu_weights=np.zeros(4, np.float32)))
               for source in ops.plan_conv2d_transpose((1, 8, 8, 5), (3, 3, 4, 5), (1, 16, 16, 4), 2, "SAME",
                                                       algorithm="im2col", shapes_only=True, **fused).sources()]
    assert sum("Col2ImProgram" in s for s in sources) == 2
    try:
        for source in sources:
            validate_glsl(source, "frag")
    except GLSLValidatorUnavailableError as exc:
        pytest.skip(str(exc))


def test_browser(browser, rng):
    x, w, out_shape, kwargs = args_of(CASES[1], rng)
    b = f32(rng, 3)
    y = gpuconv.conv2d_transpose(x, w, out_shape, **kwargs, bias=b, activation="relu", algorithm="im2col",
                                 runtime=browser)
    assert rel_error(y, oracle.conv2d_transpose(x, w, out_shape, **kwargs, bias=b, activation="relu")) < 2e-6
