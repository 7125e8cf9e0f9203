"""PackedConv2DDerInputProgram: the packed conv2d_transpose / conv2d_backprop_input, against
the float64 oracle and the direct program (Conv2DDerInputProgram)."""

import numpy as np
import pytest

import gpuconv
from gpuconv import ops, oracle
from gpuconv.geometry import conv2d_geometry
from gpuconv.im2col import auto_prefers_transpose_matmul
from gpuconv.layout import PackedFilterLayout
from gpuconv.programs import PackedGradientProgramSpec, packed_backprop_input_program

# (dx shape, filter [FH, FW, dx channels, dy channels], strides, padding, dilations, data format)
CASES = [
    ((1, 10, 10, 4), (3, 3, 4, 3), 2, "SAME", 1, "NHWC"),
    ((2, 13, 15, 5), (4, 4, 5, 9), 2, "VALID", 1, "NHWC"),
    ((1, 8, 8, 6), (3, 3, 6, 2), 1, "VALID", 1, "NHWC"),
    ((1, 8, 9, 7), (3, 3, 7, 1), 1, "SAME", 1, "NHWC"),
    ((1, 11, 12, 3), (3, 2, 3, 5), 3, "SAME", 1, "NHWC"),
    ((1, 12, 14, 8), (3, 3, 8, 4), (2, 3), "VALID", 1, "NHWC"),
    ((1, 9, 11, 2), (3, 3, 2, 6), 1, "SAME", 2, "NHWC"),
    ((1, 13, 13, 4), (2, 3, 4, 7), 2, "VALID", (2, 1), "NHWC"),
    ((1, 9, 10, 5), (3, 3, 5, 8), 2, [[0, 0], [1, 0], [2, 1], [0, 0]], 1, "NHWC"),
    ((1, 9, 10, 3), (3, 3, 3, 4), 1, [[0, 0], [0, 2], [1, 1], [0, 0]], 2, "NHWC"),
    ((3, 7, 9, 6), (2, 2, 6, 3), 2, "SAME", 1, "NHWC"),
    ((1, 5, 12, 14), (3, 2, 5, 3), (1, 2), [[0, 0], [0, 0], [1, 1], [2, 0]], 1, "NCHW"),
    ((2, 6, 10, 10), (3, 3, 6, 5), 2, "SAME", 1, "NCHW"),
    ((1, 4, 9, 9), (1, 1, 4, 6), 1, "VALID", 1, "NCHW"),
    ((1, 17, 19, 9), (5, 5, 9, 4), 2, "SAME", 1, "NHWC"),
    # filter rows stepped by stride / gcd(stride, dilation): 2 with dilation 3, 3 with dilation 2
    ((2, 12, 9, 5), (3, 2, 5, 4), (2, 1), "SAME", (3, 1), "NHWC"),
    ((1, 14, 8, 2), (4, 3, 2, 3), (3, 2), "VALID", (2, 1), "NHWC"),
]


def dy_shape(dx_shape, filter_shape, strides, padding, dilations, data_format):
    return conv2d_geometry(dx_shape, filter_shape, strides, padding, data_format, dilations).out_shape


def f32(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


def rel_error(y, reference):
    return float(np.abs(np.asarray(y, np.float64) - reference).max() / max(np.abs(reference).max(), 1e-30))


def args_of(case, rng):
    dx, fs, strides, padding, dilations, data_format = case
    dy = f32(rng, *dy_shape(dx, fs, strides, padding, dilations, data_format))
    return dy, f32(rng, *fs), dx, dict(strides=strides, padding=padding, dilations=dilations,
                                       data_format=data_format)


@pytest.mark.parametrize("case", CASES, ids=[str(i) for i in range(len(CASES))])
def test_transpose_matches_oracle_and_direct(runtime, rng, case):
    x, w, out_shape, kwargs = args_of(case, rng)
    # "auto" runs a stride-1 transposed convolution as the forward one it equals (the filter flipped),
    # a large strided one as a matrix multiply, then col2im (tests/test_transpose_matmul.py)
    forward = kwargs["strides"] == 1
    auto = ops.plan_conv2d_transpose(x, w, out_shape, **kwargs, algorithm="auto")
    matmul = auto_prefers_transpose_matmul(conv2d_geometry(out_shape, w.shape, **kwargs))
    if forward:  # a forward conv2d plan (packed, or conv2d's own im2col / matmul)
        assert auto.specs[-1].name not in ("PackedConv2DDerInputProgram", "Col2ImProgram")
    else:
        assert auto.specs[-1].name == ("Col2ImProgram" if matmul else "PackedConv2DDerInputProgram")
    assert ops.plan_conv2d_transpose(x, w, out_shape, **kwargs, algorithm="packed").spec.name == \
        "PackedConv2DDerInputProgram"
    reference = oracle.conv2d_transpose(x, w, out_shape, **kwargs)
    if forward:
        assert rel_error(gpuconv.conv2d_transpose(x, w, out_shape, **kwargs, runtime=runtime), reference) < 2e-6
    packed = gpuconv.conv2d_transpose(x, w, out_shape, **kwargs, algorithm="packed", runtime=runtime)
    direct = gpuconv.conv2d_transpose(x, w, out_shape, **kwargs, algorithm="direct", runtime=runtime)
    assert packed.shape == reference.shape
    assert rel_error(packed, reference) < 2e-6
    np.testing.assert_allclose(packed, direct, rtol=1e-5, atol=1e-5 * np.abs(reference).max())


@pytest.mark.parametrize("case", CASES[::3], ids=[str(i) for i in range(0, len(CASES), 3)])
def test_backprop_input_matches_oracle(runtime, rng, case):
    dy, w, dx_shape, kwargs = args_of(case, rng)
    reference = oracle.conv2d_backprop_input(dx_shape, w, dy, **kwargs)
    assert ops.plan_conv2d_backprop_input(dx_shape, w, dy, **kwargs, algorithm="packed").spec.name == \
        "PackedConv2DDerInputProgram"
    packed = gpuconv.conv2d_backprop_input(dx_shape, w, dy, **kwargs, algorithm="packed", runtime=runtime)
    assert rel_error(packed, reference) < 2e-6
    direct = gpuconv.conv2d_backprop_input(dx_shape, w, dy, **kwargs, algorithm="direct", runtime=runtime)
    np.testing.assert_allclose(packed, direct, rtol=1e-5, atol=1e-5 * np.abs(reference).max())


@pytest.mark.parametrize("activation", ["linear", "relu", "relu6", "elu", "sigmoid", "leakyrelu", "prelu"])
@pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
def test_fused_bias_and_activation(runtime, rng, activation, data_format):
    dx = (2, 9, 10, 6) if data_format == "NHWC" else (2, 6, 9, 10)
    x, w, out_shape, kwargs = args_of((dx, (3, 3, 6, 5), 2, "SAME", 1, data_format), rng)
    fused = dict(bias=f32(rng, 6), activation=activation)
    if activation == "prelu":
        fused["prelu_weights"] = f32(rng, 6)
    if activation == "leakyrelu":
        fused["leakyrelu_alpha"] = 0.3
    reference = oracle.conv2d_transpose(x, w, out_shape, **kwargs, **fused)
    y = gpuconv.conv2d_transpose(x, w, out_shape, **kwargs, **fused, algorithm="packed", runtime=runtime)
    assert rel_error(y, reference) < 2e-6


def test_rank_3(runtime, rng):
    x, w, b = f32(rng, 5, 6, 7), f32(rng, 3, 3, 4, 7), f32(rng, 4)
    reference = oracle.conv2d_transpose(x, w, (10, 12, 4), strides=2, padding="SAME", bias=b, activation="elu")
    y = gpuconv.conv2d_transpose(x, w, (10, 12, 4), strides=2, padding="SAME", bias=b, activation="elu",
                                 algorithm="packed", runtime=runtime)
    assert y.shape == reference.shape == (10, 12, 4)
    assert rel_error(y, reference) < 2e-6
    dx = gpuconv.conv2d_backprop_input((10, 12, 4), w, x, strides=2, padding="SAME", algorithm="packed",
                                       runtime=runtime)
    assert rel_error(dx, oracle.conv2d_backprop_input((10, 12, 4), w, x, strides=2, padding="SAME")) < 2e-6


def test_channel_counts(runtime, rng):
    """dy channels 1..9 (the last block of 4 partly padding), dx channels alike."""
    for dy_channels in range(1, 10):
        dx_channels = 10 - dy_channels
        x, w, out_shape, kwargs = args_of(((1, 7, 8, dx_channels), (3, 3, dx_channels, dy_channels), 2, "SAME", 1,
                                           "NHWC"), rng)
        y = gpuconv.conv2d_transpose(x, w, out_shape, **kwargs, algorithm="packed", runtime=runtime)
        assert rel_error(y, oracle.conv2d_transpose(x, w, out_shape, **kwargs)) < 2e-6, dy_channels


def test_four_draw_buffers(rng):
    phone = gpuconv.Runtime(max_draw_buffers=4)
    try:
        x, w, out_shape, kwargs = args_of(CASES[1], rng)
        spec = ops.plan_conv2d_transpose(x, w, out_shape, **kwargs, algorithm="packed",
                                         limits=phone.limits).spec
        assert isinstance(spec, PackedGradientProgramSpec) and spec.pixels == 4
        y = gpuconv.conv2d_transpose(x, w, out_shape, **kwargs, algorithm="packed", runtime=phone)
        assert rel_error(y, oracle.conv2d_transpose(x, w, out_shape, **kwargs)) < 2e-6
    finally:
        phone.release()


def test_tensors(runtime, rng):
    """Tensor filter (swapped on the GPU by the conversion program) and dy from a packed program."""
    x, w, out_shape, kwargs = args_of(CASES[0], rng)
    reference = gpuconv.conv2d_transpose(x, w, out_shape, **kwargs, algorithm="packed", runtime=runtime)
    with gpuconv.to_gpu(w, runtime) as tw, gpuconv.to_gpu(x, runtime) as tx:
        with gpuconv.conv2d_transpose(tx, tw, out_shape, **kwargs, algorithm="packed") as y:
            np.testing.assert_array_equal(y.numpy(), reference)
    # a chain: conv2d (packed, split outputs) -> conv2d_transpose reads them converted
    x0, w0 = f32(rng, 1, 5, 5, 2), f32(rng, 3, 3, 2, 3)
    w1 = f32(rng, 3, 3, 4, 3)
    with gpuconv.to_gpu(x0, runtime) as t0, gpuconv.conv2d(t0, w0, padding="SAME", algorithm="packed") as t1, \
            gpuconv.conv2d_transpose(t1, w1, (1, 10, 10, 4), strides=2, padding="SAME", algorithm="packed") as t2:
        expected = oracle.conv2d_transpose(oracle.conv2d(x0, w0, padding="SAME"), w1, (1, 10, 10, 4), strides=2,
                                           padding="SAME")
        assert rel_error(t2.numpy(), expected) < 2e-6


def test_swapped_filter_layout():
    w = np.arange(3 * 2 * 5 * 6, dtype=np.float32).reshape(3, 2, 5, 6)
    layout = PackedFilterLayout(w.shape, swapped=True)
    texels = layout.pack(w)
    assert (layout.rows, layout.cols) == (3 * 2 * 8, 2)
    # texel (col c // 4, row (tap * 2 + o // 4) * 4 + o % 4) holds filter[tap, c .. c + 3, o]
    assert texels[(1 * 2 + 1) * 4 + 1, 1, 0] == w[0, 1, 4, 5]
    assert texels[(1 * 2 + 1) * 4 + 1, 1, 1] == 0.0  # channel 5 of 5: padding
    with pytest.raises(ValueError, match="swapped"):
        PackedFilterLayout(w.shape, depthwise=True, swapped=True)


def test_one_program_serves_every_shape():
    a = packed_backprop_input_program(conv2d_geometry((1, 10, 10, 4), (3, 3, 4, 3), 2, "SAME"))
    b = packed_backprop_input_program(conv2d_geometry((2, 17, 9, 12), (5, 4, 12, 9), (1, 3), "VALID", "NHWC", 2))
    assert a.source_key() == b.source_key()
    assert a.loop_iterations == 3 + 9 * (1 + 1)


def test_glsl_validation():
    from gpuconv.validate import GLSLValidatorUnavailableError, validate_glsl

    sources = [gpuconv.shader_source("conv2d_transpose", (1, 8, 8, 5), (3, 3, 4, 5), (1, 16, 16, 4), strides=2,
                                     padding="SAME", algorithm="packed", **fused)
               for fused in ({}, dict(bias=np.zeros(4, np.float32), activation="prelu",
                                      prelu_weights=np.zeros(4, np.float32)))]
    sources.append(gpuconv.shader_source("conv2d_backprop_input", (1, 9, 9, 3), (3, 3, 3, 6), (1, 4, 4, 6),
                                         strides=2, algorithm="packed", max_draw_buffers=4))
    assert all("PackedConv2DDerInputProgram" in s for s in sources)
    try:
        for source in sources:
            validate_glsl(source, "frag")
    except GLSLValidatorUnavailableError as exc:
        pytest.skip(str(exc))


def test_refusals():
    x, w = np.zeros((1, 4, 4, 3), np.float32), np.zeros((3, 3, 2, 3), np.float32)
    full_bias = np.zeros((1, 8, 8, 2), np.float32)
    with pytest.raises(ValueError, match="algorithm='packed' cannot run this call: a bias that varies"):
        gpuconv.conv2d_transpose(x, w, (1, 8, 8, 2), strides=2, padding="SAME", bias=full_bias, algorithm="packed")
    with pytest.raises(ValueError, match="PReLU weights that vary"):
        ops.plan_conv2d_transpose(x, w, (1, 8, 8, 2), strides=2, padding="SAME", activation="prelu",
                                  prelu_weights=full_bias, algorithm="packed")
    with pytest.raises(ValueError, match="over the 4 limit"):
        ops.plan_conv2d_transpose(x, w, (1, 8, 8, 2), strides=2, padding="SAME", algorithm="packed",
                                  limits=gpuconv.limits.Limits(4))
    with pytest.raises(ValueError, match="algorithm must be one of"):
        ops.plan_conv2d_backprop_input((1, 8, 8, 2), w, x, strides=2, padding="SAME", algorithm="fast")
    # auto falls back to the direct program where the packed one cannot run
    assert ops.plan_conv2d_transpose(x, w, (1, 8, 8, 2), strides=2, padding="SAME", bias=full_bias,
                                     algorithm="auto").spec.name == "Conv2DDerInputProgram"
    assert ops.plan_conv2d_transpose(x, w, (1, 8, 8, 2), strides=2, padding="SAME",
                                     algorithm="direct").spec.name == "Conv2DDerInputProgram"


def test_cli_shader(capsys):
    from gpuconv.cli import main

    assert main(["shader", "conv2d_transpose", "--input", "1x4x4x3", "--filter", "3x3x2x3", "--output-shape",
                 "1x8x8x2", "--strides", "2", "--padding", "SAME", "--algorithm", "packed"]) == 0
    assert "PackedConv2DDerInputProgram" in capsys.readouterr().out


def test_browser(browser, rng):
    x, w, out_shape, kwargs = args_of(CASES[1], rng)
    b = f32(rng, 5)
    y = gpuconv.conv2d_transpose(x, w, out_shape, **kwargs, bias=b, activation="relu", algorithm="packed",
                                 runtime=browser)
    assert rel_error(y, oracle.conv2d_transpose(x, w, out_shape, **kwargs, bias=b, activation="relu")) < 2e-6


def test_cli_run(tmp_path, capsys):
    from gpuconv.cli import main

    rng = np.random.default_rng(3)
    x, w = f32(rng, 1, 4, 4, 3), f32(rng, 3, 3, 2, 3)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "w.npy", w)
    out = tmp_path / "y.npy"
    assert main(["run", "conv2d_transpose", "--input", str(tmp_path / "x.npy"), "--filter", str(tmp_path / "w.npy"),
                 "--output-shape", "1x8x8x2", "--strides", "2", "--padding", "same", "--algorithm", "packed",
                 "--output", str(out)]) == 0, capsys.readouterr().err
    reference = oracle.conv2d_transpose(x, w, (1, 8, 8, 2), strides=2, padding="SAME")
    assert rel_error(np.load(out), reference) < 2e-6


@pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
def test_stride_1_auto_runs_the_forward_convolution_with_its_epilogue(runtime, rng, data_format):
    # the flipped filter's forward convolution, with bias, PReLU and a residual fused once
    dx, fs = ((2, 7, 6, 5), (3, 2, 5, 6)) if data_format == "NHWC" else ((2, 5, 7, 6), (3, 2, 5, 6))
    kwargs = dict(padding="SAME", data_format=data_format)
    x, w = args_of((dx, fs, 1, "SAME", 1, data_format), rng)[:2]
    fused = dict(bias=f32(rng, 5), activation="prelu", prelu_weights=f32(rng, 5), residual=f32(rng, *dx))
    assert ops.plan_conv2d_transpose(x, w, dx, **kwargs, **fused, algorithm="auto").spec.name == "PackedConv2DProgram"
    y = gpuconv.conv2d_transpose(x, w, dx, **kwargs, **fused, runtime=runtime)
    assert rel_error(y, oracle.conv2d_transpose(x, w, dx, **kwargs, **fused)) < 2e-6
    y3 = gpuconv.conv2d_transpose(x[0], w, dx[1:], **kwargs, runtime=runtime)  # rank 3
    assert rel_error(y3, oracle.conv2d_transpose(x[0], w, dx[1:], **kwargs)) < 2e-6


def test_stride_1_pads_beyond_the_filter_stay_on_the_input_gradient(runtime, rng):
    # pads over effective filter - 1 would be negative pads of the forward convolution
    dx, fs, padding = (1, 9, 9, 3), (3, 3, 3, 4), [[0, 0], [3, 1], [2, 3], [0, 0]]
    x, w, _, kwargs = args_of((dx, fs, 1, padding, 1, "NHWC"), rng)
    assert ops.plan_conv2d_transpose(x, w, dx, **kwargs, algorithm="auto").spec.name == "PackedConv2DDerInputProgram"
    assert rel_error(gpuconv.conv2d_transpose(x, w, dx, **kwargs, runtime=runtime),
                     oracle.conv2d_transpose(x, w, dx, **kwargs)) < 2e-6
