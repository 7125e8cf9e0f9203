"""The WebGPU target end to end: WGSL compute programs through wgpu-py (Mesa's lavapipe on a
machine without a GPU), each op against the float64 oracle (relative error <= 1e-5 of the
output's largest magnitude), for both of the target's algorithms ("auto": the implicit GEMM
and the vec4 depthwise program; "direct": one output per invocation), and against the WebGL2
target's results; Tensors as storage buffers; the device's limits; the errors.

Shapes are few and small (each distinct shape is a pipeline to compile) but cover what the
WebGL2 target's tests cover: every padding form, strides, dilations, both data formats,
batches, groups, depths of every remainder mod 4, tiny and larger images, the fused epilogue,
NaN and infinity.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import relative_error

import gpuconv
from gpuconv.ops import plan_conv2d
from gpuconv.runtimes import GLUnavailableError
from gpuconv.webgpu.limits import WebGPULimits
from gpuconv.webgpu.programs import CONV2D_MM_TILES, choose_tile

ALGORITHMS = ["auto", "direct"]
#: the largest relative error seen per op, printed at the end (pytest -s) for the record
LARGEST: dict = {}


def _data(rng, *shapes, low=-1.0):
    return [rng.uniform(low, 1, size=shape).astype(np.float32) for shape in shapes]


def _check(op, result, expected, tol=1e-5):
    assert result.shape == expected.shape and result.dtype == np.float32
    error = relative_error(result, expected)
    LARGEST[op] = max(LARGEST.get(op, 0.0), error)
    assert error <= tol, f"{op}: relative error {error:.3g} > {tol:g}"


def _programs(runtime, op, *args, **kwargs):
    """The names of the programs one call runs on ``runtime`` (from its profile)."""
    with gpuconv.profile(runtime) as prof:
        getattr(gpuconv, op)(*args, runtime=runtime, **kwargs)
    return [record.program for record in prof.records]


def _nchw(a):
    return np.ascontiguousarray(a.transpose(0, 3, 1, 2))


def test_the_webgpu_fixture_is_a_webgpu_runtime(webgpu):
    assert isinstance(webgpu, gpuconv.WebGPURuntime) and webgpu.target.name == "webgpu"
    info = webgpu.info()
    assert info["target"] == "webgpu" and info["program_limits"]["max_compute_workgroups_per_dimension"] >= 1


# -- conv2d ---------------------------------------------------------------------------------------

CONV2D_CASES = [
    # x (NHWC),          filter,          keyword arguments
    ((1, 7, 7, 1), (3, 3, 1, 2), dict(padding="SAME")),
    ((3, 8, 6, 2), (3, 3, 2, 3), dict(strides=2, padding="VALID")),
    ((1, 9, 7, 3), (2, 3, 3, 4), dict(strides=3, padding="same")),
    ((1, 6, 6, 4), (3, 3, 4, 2), dict(dilations=2, padding="SAME")),
    ((1, 11, 9, 5), (3, 2, 5, 3), dict(strides=2, dilations=2, padding="VALID")),
    ((2, 7, 7, 7), (1, 1, 7, 5), dict(padding="VALID")),
    ((1, 8, 8, 8), (1, 3, 8, 4), dict(padding=[[1, 2], [0, 3]])),
    ((1, 7, 9, 5), (5, 2, 5, 3), dict(padding=2)),
    ((2, 9, 9, 3), (3, 3, 3, 4), dict(strides=2, padding=1, dim_rounding_mode="ceil")),
    ((1, 9, 9, 5), (3, 3, 5, 2), dict(strides=2, padding=1, dim_rounding_mode="round")),
    ((1, 9, 9, 6), (3, 3, 6, 2), dict(strides=2, padding=1, dim_rounding_mode="floor")),
    ((1, 10, 8, 3), (3, 3, 3, 3), dict(dilations=[1, 2, 1, 1], padding=[[0, 0], [2, 1], [1, 0], [0, 0]])),
    ((2, 9, 10, 2), (2, 2, 2, 3), dict(strides=(1, 3), padding="SAME")),
    ((1, 1, 1, 3), (1, 1, 3, 2), dict()),                              # a 1x1 image
    ((1, 1, 1, 5), (3, 3, 5, 4), dict(padding="SAME")),                # a 1x1 image, every tap but one padding
    ((1, 3, 3, 2), (5, 5, 2, 2), dict(padding="SAME")),                # filter larger than the input
    ((2, 6, 5, 8), (3, 3, 2, 8), dict(groups=4, padding="SAME")),      # groups
    ((1, 7, 6, 6), (3, 2, 3, 4), dict(groups=2, strides=2, padding=1)),
    ((1, 64, 64, 16), (3, 3, 16, 32), dict(padding="SAME")),           # a larger one: many workgroups
]


def _ids(cases):
    return [f"x{'x'.join(map(str, x))}-w{'x'.join(map(str, w))}-{kw}" for x, w, kw in cases]


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("x_shape, w_shape, kwargs", CONV2D_CASES, ids=_ids(CONV2D_CASES))
def test_conv2d_matches_the_oracle(webgpu, rng, x_shape, w_shape, kwargs, algorithm):
    x, w = _data(rng, x_shape, w_shape)
    y = gpuconv.conv2d(x, w, algorithm=algorithm, runtime=webgpu, **kwargs)
    _check("conv2d", y, gpuconv.oracle.conv2d(x, w, **kwargs))


NCHW_CASES = [
    ((2, 7, 6, 5), (3, 3, 5, 3), dict(strides=2, padding="SAME")),
    ((1, 9, 8, 7), (2, 3, 7, 4), dict(dilations=2, padding=[[0, 0], [0, 0], [1, 2], [2, 0]])),
    ((3, 8, 7, 6), (3, 2, 3, 4), dict(groups=2, padding=1, strides=[1, 1, 2, 2])),
]


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("x_shape, w_shape, kwargs", NCHW_CASES, ids=_ids(NCHW_CASES))
def test_conv2d_nchw_matches_the_oracle(webgpu, rng, x_shape, w_shape, kwargs, algorithm):
    x, w = _data(rng, x_shape, w_shape)
    y = gpuconv.conv2d(_nchw(x), w, data_format="NCHW", algorithm=algorithm, runtime=webgpu, **kwargs)
    _check("conv2d", y, gpuconv.oracle.conv2d(_nchw(x), w, data_format="NCHW", **kwargs))


@pytest.mark.parametrize("in_c", [1, 2, 3, 4, 5, 7, 8])
def test_conv2d_every_input_depth_mod_4(webgpu, rng, in_c):
    x, w = _data(rng, (2, 5, 6, in_c), (3, 3, in_c, 5))
    for algorithm in ALGORITHMS:
        y = gpuconv.conv2d(x, w, padding="SAME", algorithm=algorithm, runtime=webgpu)
        _check("conv2d", y, gpuconv.oracle.conv2d(x, w, padding="SAME"))


def test_conv2d_rank3_input_and_identity_is_exact(webgpu, rng):
    x, w = _data(rng, (6, 5, 3), (3, 3, 3, 2))
    for algorithm in ALGORITHMS:
        y = gpuconv.conv2d(x, w, padding="SAME", algorithm=algorithm, runtime=webgpu)
        assert y.ndim == 3
        _check("conv2d", y, gpuconv.oracle.conv2d(x, w, padding="SAME"))
        # a 1x1 identity filter returns x bit for bit: buffers lose nothing
        big = rng.standard_normal((1, 4, 5, 3)).astype(np.float32) * np.float32(1e30)
        eye = np.eye(3, dtype=np.float32).reshape(1, 1, 3, 3)
        np.testing.assert_array_equal(gpuconv.conv2d(big, eye, algorithm=algorithm, runtime=webgpu), big)


# -- the fused epilogue ---------------------------------------------------------------------------

ACTIVATIONS = ["linear", "relu", "relu6", "elu", "sigmoid", "leakyrelu", "prelu"]


def _epilogue(rng, activation, out_shape, channels, per_channel=True):
    kwargs = dict(activation=activation,
                  bias=rng.uniform(-1, 1, channels if per_channel else out_shape).astype(np.float32))
    if activation == "leakyrelu":
        kwargs["leakyrelu_alpha"] = 0.37
    if activation == "prelu":
        kwargs["prelu_weights"] = rng.uniform(0, 1, channels if per_channel else out_shape).astype(np.float32)
    return kwargs


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_conv2d_fused_bias_and_activation(webgpu, rng, activation, algorithm):
    x, w = _data(rng, (2, 6, 5, 5), (3, 3, 5, 4))
    x *= 3  # reach relu6's upper clamp
    kwargs = _epilogue(rng, activation, (2, 6, 5, 4), 4)
    y = gpuconv.conv2d(x, w, padding="SAME", algorithm=algorithm, runtime=webgpu, **kwargs)
    _check("conv2d", y, gpuconv.oracle.conv2d(x, w, padding="SAME", **kwargs))


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
def test_conv2d_broadcast_bias_and_per_element_prelu(webgpu, rng, algorithm, data_format):
    x, w = _data(rng, (1, 5, 6, 3), (3, 3, 3, 4))
    if data_format == "NCHW":
        x = _nchw(x)
    out_shape = (1, 5, 6, 4) if data_format == "NHWC" else (1, 4, 5, 6)
    for kwargs in (dict(bias=rng.uniform(-1, 1, out_shape).astype(np.float32)),            # the output's shape
                   dict(bias=np.float32(0.25), activation="relu"),                          # a scalar
                   _epilogue(rng, "prelu", out_shape, 4, per_channel=False)):               # per element
        y = gpuconv.conv2d(x, w, padding="SAME", data_format=data_format, algorithm=algorithm, runtime=webgpu,
                           **kwargs)
        _check("conv2d", y, gpuconv.oracle.conv2d(x, w, padding="SAME", data_format=data_format, **kwargs))


# -- NaN and infinity -----------------------------------------------------------------------------

def _with_specials(rng, shape):
    x = rng.uniform(-1, 1, shape).astype(np.float32)
    flat = x.reshape(-1)
    flat[rng.choice(flat.size, 6, replace=False)] = [np.nan, np.inf, -np.inf, np.inf, -np.inf, np.nan]
    return x


def _same_specials_and_close(y, expected, tol=1e-5):
    assert y.shape == expected.shape and y.dtype == np.float32
    np.testing.assert_array_equal(np.isnan(y), np.isnan(expected), err_msg="NaN positions differ")
    np.testing.assert_array_equal(np.isposinf(y), np.isposinf(expected), err_msg="+inf positions differ")
    np.testing.assert_array_equal(np.isneginf(y), np.isneginf(expected), err_msg="-inf positions differ")
    finite = np.isfinite(expected)
    scale = max(float(np.max(np.abs(expected[finite]), initial=0.0)), 1e-30)
    assert np.max(np.abs(y[finite] - expected[finite]), initial=0.0) <= tol * scale


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("activation", [None, "relu", "relu6", "elu", "sigmoid", "leakyrelu", "prelu"])
@pytest.mark.parametrize("op, x_shape, filter_shape, data_format", [
    ("conv2d", (2, 6, 7, 5), (3, 3, 5, 4), "NHWC"),
    ("depthwise_conv2d", (2, 6, 7, 8), (3, 3, 8, 1), "NHWC"),   # the vec4 program under "auto"
    ("depthwise_conv2d", (2, 5, 6, 7), (3, 2, 5, 2), "NCHW"),
])
def test_nan_and_infinity_propagate_as_in_the_oracle(webgpu, op, x_shape, filter_shape, data_format, activation,
                                                     algorithm):
    rng = np.random.default_rng(11)
    x = _with_specials(rng, x_shape)
    w = rng.uniform(-1, 1, filter_shape).astype(np.float32)
    out_c = filter_shape[3] * (filter_shape[2] if op == "depthwise_conv2d" else 1)
    kwargs = dict(padding="SAME", data_format=data_format, activation=activation,
                  bias=rng.uniform(-1, 1, out_c).astype(np.float32))
    if activation == "prelu":
        kwargs["prelu_weights"] = rng.uniform(0, 1, out_c).astype(np.float32)
    y = getattr(gpuconv, op)(x, w, **kwargs, algorithm=algorithm, runtime=webgpu)
    expected = getattr(gpuconv.oracle, op)(x, w, **kwargs)
    assert np.isnan(expected).any() and np.isfinite(expected).any()
    _same_specials_and_close(y, expected)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("op, channels, multiplier", [("conv2d", 3, 2), ("depthwise_conv2d", 4, 1),
                                                       ("depthwise_conv2d", 3, 2)])
def test_non_finite_weights_on_the_padding_are_never_read(webgpu, op, channels, multiplier, algorithm):
    # a program that multiplied a zero on the padding by the weight would make 0 * inf = NaN there
    rng = np.random.default_rng(12)
    x = rng.uniform(-1, 1, (1, 6, 6, channels)).astype(np.float32)
    w = rng.uniform(-1, 1, (3, 3, channels, multiplier)).astype(np.float32)
    w[1, 1, 0, 0], w[0, 2, 1, 0], w[2, 0, 2, 0] = np.inf, np.nan, -np.inf
    for kwargs in (dict(padding="SAME"), dict(padding="VALID", strides=2), dict(padding=[[2, 0], [0, 1]])):
        y = getattr(gpuconv, op)(x, w, **kwargs, algorithm=algorithm, runtime=webgpu)
        _same_specials_and_close(y, getattr(gpuconv.oracle, op)(x, w, **kwargs))


# -- depthwise_conv2d -----------------------------------------------------------------------------

DEPTHWISE_CASES = [
    ((1, 7, 7, 1), (3, 3, 1, 1), dict(padding="SAME")),
    ((3, 8, 6, 2), (3, 3, 2, 2), dict(strides=2, padding="VALID")),
    ((1, 9, 7, 3), (2, 3, 3, 3), dict(strides=3, padding="SAME")),
    ((1, 9, 9, 4), (3, 3, 4, 1), dict(dilations=3, padding="SAME")),           # vec4 under "auto"
    ((2, 9, 10, 8), (3, 3, 8, 1), dict(strides=2, padding=1)),                # vec4, stride 2
    ((1, 9, 10, 8), (3, 3, 8, 1), dict(strides=3, padding="SAME")),           # channels in fours, stride 3
    ((1, 10, 9, 12), (5, 2, 12, 1), dict(padding=[[2, 1], [0, 1]], dilations=(1, 2))),
    ((2, 8, 9, 5), (1, 1, 5, 2), dict(padding="VALID")),
    ((1, 9, 9, 7), (3, 3, 7, 2), dict(strides=2, padding=1, dim_rounding_mode="ceil")),
    ((1, 10, 7, 9), (3, 1, 9, 3), dict(dilations=(2, 1), padding=1)),
    ((1, 1, 1, 4), (3, 3, 4, 1), dict(padding="SAME")),                       # a 1x1 image
    ((1, 32, 32, 16), (3, 3, 16, 1), dict(padding="SAME")),
]


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("x_shape, w_shape, kwargs", DEPTHWISE_CASES, ids=_ids(DEPTHWISE_CASES))
def test_depthwise_conv2d_matches_the_oracle(webgpu, rng, x_shape, w_shape, kwargs, algorithm):
    x, w = _data(rng, x_shape, w_shape)
    y = gpuconv.depthwise_conv2d(x, w, algorithm=algorithm, runtime=webgpu, **kwargs)
    _check("depthwise_conv2d", y, gpuconv.oracle.depthwise_conv2d(x, w, **kwargs))


@pytest.mark.parametrize("strides", [4, (4, 5)])
def test_wide_strides_run_the_blocked_program_four_pixels_at_a_time(webgpu, rng, strides):
    """Eight windows of a 4x4/4 filter span 32 input columns, past the blocked program's reach:
    it then computes 4 pixels per invocation (ConvNeXt's stem, 2-2.5x faster than the GEMM)."""
    x, w, b = _data(rng, (2, 19, 23, 3), (4, 4, 3, 8), (8,))
    assert _programs(webgpu, "conv2d", x, w, strides=strides) == ["Conv2DBlockedProgram"]
    y = gpuconv.conv2d(x, w, strides=strides, padding="SAME", bias=b, activation="relu", runtime=webgpu)
    _check("conv2d", y, gpuconv.oracle.conv2d(x, w, strides=strides, padding="SAME", bias=b, activation="relu"))


@pytest.mark.parametrize("out_c, channels", [(16, 8), (8, 8), (12, 4)])
def test_pointwise_convolutions_compute_8_output_channels_per_invocation(webgpu, rng, out_c, channels):
    x, w, b, r = _data(rng, (2, 5, 11, 6), (1, 1, 6, out_c), (out_c,), (2, 5, 11, out_c))
    def make(limits, algorithm="auto"):
        return plan_conv2d(x, w, bias=b, residual=r, activation="relu", algorithm=algorithm, limits=limits)

    (spec,) = webgpu.target.plan(make, "auto", webgpu.limits).specs
    assert spec.name == "Conv2DBlockedProgram" and dict(spec.parameters)["blocks"] * 4 == channels
    y = gpuconv.conv2d(x, w, bias=b, residual=r, activation="relu", runtime=webgpu)
    _check("conv2d", y, gpuconv.oracle.conv2d(x, w, bias=b, residual=r, activation="relu"))


def test_depthwise_conv2d_runs_the_vec4_program_where_it_applies(webgpu, rng):
    x, w = _data(rng, (1, 6, 6, 8), (3, 3, 8, 1))
    assert _programs(webgpu, "depthwise_conv2d", x, w, padding="SAME") == ["DepthwiseConv2DVec4Program"]
    assert _programs(webgpu, "depthwise_conv2d", x, w, padding="SAME", algorithm="direct") == \
        ["DepthwiseConv2DProgram"]
    assert _programs(webgpu, "depthwise_conv2d", x, w, strides=3) == ["DepthwiseConv2DProgram"]
    assert _programs(webgpu, "depthwise_conv2d", x[..., :6], w[:, :, :6]) == ["DepthwiseConv2DProgram"]
    assert _programs(webgpu, "depthwise_conv2d", _nchw(x), w, data_format="NCHW") == ["DepthwiseConv2DProgram"]


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("activation", ["relu6", "leakyrelu", "prelu"])
@pytest.mark.parametrize("channels, multiplier", [(8, 1), (5, 2)])
def test_depthwise_conv2d_fused(webgpu, rng, channels, multiplier, activation, algorithm):
    x, w = _data(rng, (1, 7, 6, channels), (3, 3, channels, multiplier))
    x *= 3
    kwargs = _epilogue(rng, activation, (1, 7, 6, channels * multiplier), channels * multiplier)
    y = gpuconv.depthwise_conv2d(x, w, padding="SAME", algorithm=algorithm, runtime=webgpu, **kwargs)
    _check("depthwise_conv2d", y, gpuconv.oracle.depthwise_conv2d(x, w, padding="SAME", **kwargs))
    full = _epilogue(rng, activation, (1, 7, 6, channels * multiplier), channels * multiplier, per_channel=False)
    y = gpuconv.depthwise_conv2d(x, w, padding="SAME", algorithm=algorithm, runtime=webgpu, **full)
    _check("depthwise_conv2d", y, gpuconv.oracle.depthwise_conv2d(x, w, padding="SAME", **full))


# -- separable_conv2d, conv1d ---------------------------------------------------------------------

@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("x_shape, dw_shape, pw_shape, kwargs, data_format", [
    ((2, 8, 7, 3), (3, 3, 3, 2), (1, 1, 6, 5), dict(padding="SAME"), "NHWC"),
    ((1, 9, 9, 8), (3, 3, 8, 1), (1, 1, 8, 4), dict(strides=2, padding="VALID"), "NHWC"),
    ((1, 9, 8, 4), (3, 2, 4, 2), (1, 1, 8, 3), dict(dilations=2, padding="SAME"), "NCHW"),
])
def test_separable_conv2d_matches_the_oracle(webgpu, rng, x_shape, dw_shape, pw_shape, kwargs, data_format,
                                             algorithm):
    x, dw, pw = _data(rng, x_shape, dw_shape, pw_shape)
    if data_format == "NCHW":
        x = _nchw(x)
    y = gpuconv.separable_conv2d(x, dw, pw, data_format=data_format, algorithm=algorithm, runtime=webgpu, **kwargs)
    _check("separable_conv2d", y, gpuconv.oracle.separable_conv2d(x, dw, pw, data_format=data_format, **kwargs))


def test_separable_conv2d_keeps_the_intermediate_on_the_gpu(webgpu, rng, monkeypatch):
    x, dw, pw = _data(rng, (1, 8, 8, 4), (3, 3, 4, 1), (1, 1, 4, 6))
    reads, uploads = [], []
    read, upload = webgpu.read, webgpu.upload
    monkeypatch.setattr(webgpu, "read", lambda *a, **k: reads.append(a) or read(*a, **k))
    monkeypatch.setattr(webgpu, "upload", lambda *a, **k: uploads.append(a) or upload(*a, **k))
    y = gpuconv.separable_conv2d(x, dw, pw, padding="SAME", runtime=webgpu)
    assert len(reads) == 1 and len(uploads) == 3  # x, the two filters; the depthwise result stays a buffer
    _check("separable_conv2d", y, gpuconv.oracle.separable_conv2d(x, dw, pw, padding="SAME"))
    names = _programs(webgpu, "separable_conv2d", x, dw, pw, padding="SAME")
    assert names == ["DepthwiseConv2DVec4Program", "Conv2DMMProgram"] or len(names) == 2


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("x_shape, w_shape, kwargs", [
    ((2, 20, 3), (3, 3, 4), dict(stride=2, padding="SAME")),
    ((1, 17, 5), (4, 5, 2), dict(dilation=2, padding="VALID")),
    ((1, 16, 4), (5, 4, 8), dict(padding=2)),
])
@pytest.mark.parametrize("data_format", ["NWC", "NCW"])
def test_conv1d_matches_the_oracle(webgpu, rng, x_shape, w_shape, kwargs, data_format, algorithm):
    x, w = _data(rng, x_shape, w_shape)
    if data_format == "NCW":
        x = np.ascontiguousarray(x.transpose(0, 2, 1))
    y = gpuconv.conv1d(x, w, data_format=data_format, algorithm=algorithm, runtime=webgpu, **kwargs)
    _check("conv1d", y, gpuconv.oracle.conv1d(x, w, data_format=data_format, **kwargs))


# -- the transposed convolution and the input gradients -------------------------------------------

TRANSPOSE_CASES = [
    # x (NHWC), filter (h, w, out_c, in_c), output_shape, keyword arguments
    ((1, 4, 4, 3), (3, 3, 2, 3), (1, 8, 8, 2), dict(strides=2, padding="SAME")),
    ((2, 5, 4, 4), (2, 3, 3, 4), (2, 6, 6, 3), dict(padding="VALID")),
    ((1, 4, 4, 2), (3, 3, 5, 2), (1, 7, 9, 5), dict(strides=2, padding=[[1, 1], [0, 1]])),
    ((1, 6, 6, 2), (3, 3, 4, 2), (1, 8, 8, 4), dict(dilations=2, padding=1)),
]


@pytest.mark.parametrize("x_shape, w_shape, output_shape, kwargs", TRANSPOSE_CASES,
                         ids=[f"x{'x'.join(map(str, c[0]))}-{c[3]}" for c in TRANSPOSE_CASES])
def test_conv2d_transpose_matches_the_oracle(webgpu, rng, x_shape, w_shape, output_shape, kwargs):
    x, w = _data(rng, x_shape, w_shape)
    for algorithm in ALGORITHMS:
        y = gpuconv.conv2d_transpose(x, w, output_shape, algorithm=algorithm, runtime=webgpu, **kwargs)
        _check("conv2d_transpose", y, gpuconv.oracle.conv2d_transpose(x, w, output_shape, **kwargs))


@pytest.mark.parametrize("activation", ["relu", "elu", "leakyrelu", "prelu"])
@pytest.mark.parametrize("per_channel", [True, False])
def test_conv2d_transpose_fused(webgpu, rng, activation, per_channel):
    x, w = _data(rng, (1, 4, 4, 3), (3, 3, 2, 3))
    output_shape = (1, 8, 8, 2)
    kwargs = dict(strides=2, padding="SAME", **_epilogue(rng, activation, output_shape, 2, per_channel))
    y = gpuconv.conv2d_transpose(x, w, output_shape, runtime=webgpu, **kwargs)
    _check("conv2d_transpose", y, gpuconv.oracle.conv2d_transpose(x, w, output_shape, **kwargs))
    nchw = (1, 2, 8, 8)
    kwargs = dict(strides=2, padding="SAME", data_format="NCHW", **_epilogue(rng, activation, nchw, 2, per_channel))
    y = gpuconv.conv2d_transpose(_nchw(x), w, nchw, runtime=webgpu, **kwargs)
    _check("conv2d_transpose", y, gpuconv.oracle.conv2d_transpose(_nchw(x), w, nchw, **kwargs))


@pytest.mark.parametrize("input_shape, w_shape, kwargs", [
    ((2, 8, 7, 3), (3, 3, 3, 4), dict(strides=2, padding="SAME")),
    ((1, 9, 9, 5), (2, 3, 5, 2), dict(dilations=2, padding="VALID")),
    ((1, 7, 8, 4), (3, 3, 4, 6), dict(padding=[[1, 2], [0, 1]], strides=(2, 1))),
    ((1, 9, 9, 3), (3, 3, 3, 2), dict(strides=2, padding=1, dim_rounding_mode="ceil", data_format="NCHW")),
])
def test_conv2d_backprop_input_matches_the_oracle(webgpu, rng, input_shape, w_shape, kwargs):
    if kwargs.get("data_format") == "NCHW":
        b, h, w_, c = input_shape
        input_shape = (b, c, h, w_)
    (w,) = _data(rng, w_shape)
    dy_shape = gpuconv.oracle.conv2d(np.zeros(input_shape, np.float32), w, **kwargs).shape
    (dy,) = _data(rng, dy_shape)
    y = gpuconv.conv2d_backprop_input(input_shape, w, dy, runtime=webgpu, **kwargs)
    _check("conv2d_backprop_input", y, gpuconv.oracle.conv2d_backprop_input(input_shape, w, dy, **kwargs))


@pytest.mark.parametrize("input_shape, w_shape, kwargs", [
    ((2, 8, 7, 3), (3, 3, 3, 2), dict(strides=2, padding="SAME")),
    ((1, 9, 9, 4), (3, 2, 4, 1), dict(dilations=2, padding="VALID")),
    ((1, 7, 8, 2), (3, 3, 2, 3), dict(padding=[[1, 2], [0, 1]], strides=(1, 3))),
])
def test_depthwise_conv2d_backprop_input_matches_the_oracle(webgpu, rng, input_shape, w_shape, kwargs):
    (w,) = _data(rng, w_shape)
    dy_shape = gpuconv.oracle.depthwise_conv2d(np.zeros(input_shape, np.float32), w, **kwargs).shape
    (dy,) = _data(rng, dy_shape)
    y = gpuconv.depthwise_conv2d_backprop_input(input_shape, w, dy, runtime=webgpu, **kwargs)
    _check("depthwise_conv2d_backprop_input", y,
           gpuconv.oracle.depthwise_conv2d_backprop_input(input_shape, w, dy, **kwargs))


# -- the two targets agree to float32 rounding ----------------------------------------------------

AGREEMENT = [
    ("conv2d", ((1, 9, 8, 5), (3, 3, 5, 6)), dict(strides=2, padding="SAME", activation="relu")),
    ("conv2d", ((2, 8, 6, 6), (3, 3, 4, 6)), dict(groups=2, padding="VALID", data_format="NCHW")),
    ("depthwise_conv2d", ((1, 8, 8, 8), (3, 3, 8, 1)), dict(padding="SAME")),
    ("depthwise_conv2d", ((1, 8, 7, 3), (3, 3, 3, 2)), dict(strides=2, padding=1, dilations=1)),
    ("conv1d", ((1, 20, 3), (3, 3, 4)), dict(stride=2, padding="SAME")),
]


@pytest.mark.parametrize("op, shapes, kwargs", AGREEMENT, ids=[f"{c[0]}-{i}" for i, c in enumerate(AGREEMENT)])
def test_webgpu_and_webgl2_agree(webgpu, runtime, rng, op, shapes, kwargs):
    if runtime is webgpu:
        pytest.skip("GPUCONV_BACKEND=webgpu: the default runtime is this WebGPU runtime")
    arrays = _data(rng, *shapes)
    for algorithm in ALGORITHMS:
        a = getattr(gpuconv, op)(*arrays, algorithm=algorithm, runtime=webgpu, **kwargs)
        b = getattr(gpuconv, op)(*arrays, algorithm="direct", runtime=runtime, **kwargs)
        scale = float(np.max(np.abs(b)))
        # float32 sums of at most a few dozen products, in another order: a few ulps of the largest value
        np.testing.assert_allclose(a, b, rtol=0, atol=8 * np.finfo(np.float32).eps * scale)


def test_webgpu_and_webgl2_agree_on_the_transposed_convolution(webgpu, runtime, rng):
    if runtime is webgpu:
        pytest.skip("GPUCONV_BACKEND=webgpu: the default runtime is this WebGPU runtime")
    x, w = _data(rng, (1, 4, 4, 3), (3, 3, 2, 3))
    kwargs = dict(strides=2, padding="SAME", bias=np.float32([0.5, -0.5]), activation="elu")
    a = gpuconv.conv2d_transpose(x, w, (1, 8, 8, 2), runtime=webgpu, **kwargs)
    b = gpuconv.conv2d_transpose(x, w, (1, 8, 8, 2), runtime=runtime, algorithm="direct", **kwargs)
    np.testing.assert_allclose(a, b, rtol=0, atol=8 * np.finfo(np.float32).eps * float(np.max(np.abs(b))))


# -- Tensors: storage buffers ---------------------------------------------------------------------

def test_tensors_round_trip_and_reshape(webgpu, rng):
    start = gpuconv.memory(webgpu)["textures"]
    for shape in [(1,), (3,), (2, 5), (1, 4, 4, 3), (2, 3, 5, 7)]:
        (a,) = _data(rng, shape)
        t = gpuconv.to_gpu(a, runtime=webgpu)
        assert t.runtime is webgpu and t.shape == shape and t.dtype == np.float32
        np.testing.assert_array_equal(t.numpy(), a)
        view = t.reshape(-1)
        np.testing.assert_array_equal(view.numpy(), a.reshape(-1))
        assert gpuconv.memory(webgpu)["textures"] == start + 1  # a reshape is a view of the same buffer
        t.release()
        t.release()  # twice is fine
        assert t.released
    assert gpuconv.memory(webgpu)["textures"] == start


def test_a_chain_of_tensors_stays_on_the_gpu(webgpu, rng):
    x, w, dw, sdw, spw = _data(rng, (2, 9, 9, 5), (3, 3, 5, 8), (3, 3, 8, 1), (3, 3, 8, 2), (1, 1, 16, 6))
    bias = rng.uniform(-1, 1, 8).astype(np.float32)
    start = gpuconv.memory(webgpu)
    reads = []
    read = webgpu.read
    webgpu.read = lambda *a, **k: reads.append(a) or read(*a, **k)
    try:
        tx = gpuconv.to_gpu(x, runtime=webgpu)
        a = gpuconv.conv2d(tx, w, padding="SAME", bias=bias, activation="relu")
        b = gpuconv.depthwise_conv2d(a, dw, strides=2, padding="SAME")
        c = gpuconv.separable_conv2d(b, sdw, spw, padding="SAME")
        flat = c.reshape(2, -1, 6)  # a reshape view
        assert isinstance(c, gpuconv.Tensor) and c.runtime is webgpu and not reads
        gpuconv.synchronize(webgpu)
        assert gpuconv.memory(webgpu)["textures"] == start["textures"] + 4  # x, a, b, c
    finally:
        webgpu.read = read
    ya = gpuconv.oracle.conv2d(x, w, padding="SAME", bias=bias, activation="relu")
    yb = gpuconv.oracle.depthwise_conv2d(ya, dw, strides=2, padding="SAME")
    yc = gpuconv.oracle.separable_conv2d(yb, sdw, spw, padding="SAME")
    _check("conv2d", a.numpy(), ya)
    _check("depthwise_conv2d", b.numpy(), yb)
    _check("separable_conv2d", c.numpy(), yc)
    np.testing.assert_array_equal(flat.numpy(), c.numpy().reshape(2, -1, 6))
    for tensor in (tx, a, b, c):
        tensor.release()
    assert gpuconv.memory(webgpu) == start


def test_a_tensor_of_another_runtime_is_refused(webgpu, runtime, rng):
    (x, w) = _data(rng, (1, 4, 4, 2), (3, 3, 2, 2))
    other = gpuconv.WebGPURuntime() if runtime is webgpu else runtime
    try:
        t = gpuconv.to_gpu(x, runtime=other)
        with pytest.raises(ValueError, match="x is a Tensor of another runtime"):
            gpuconv.conv2d(t, w, runtime=webgpu)
        t.release()
        tw = gpuconv.to_gpu(w, runtime=webgpu)
        tx = gpuconv.to_gpu(x, runtime=other)
        with pytest.raises(ValueError, match="Tensor of another runtime"):
            gpuconv.conv2d(tx, tw)
        tx.release()
        tw.release()
    finally:
        if other is not runtime:
            other.release()


def test_released_tensors_are_refused(webgpu, rng):
    (x, w) = _data(rng, (1, 4, 4, 2), (3, 3, 2, 2))
    t = gpuconv.to_gpu(x, runtime=webgpu)
    t.release()
    with pytest.raises(ValueError, match="released"):
        gpuconv.conv2d(t, w)


# -- the profiler and precompile ------------------------------------------------------------------

def test_profile_records_the_compute_programs(webgpu, rng):
    x, w, pw = _data(rng, (1, 8, 8, 4), (3, 3, 4, 8), (1, 1, 8, 3))
    with gpuconv.profile(webgpu) as prof:
        gpuconv.conv2d(x, w, padding="SAME", runtime=webgpu)
        gpuconv.conv2d(x, w, padding="SAME", runtime=webgpu, algorithm="direct")
        t = gpuconv.depthwise_conv2d(gpuconv.to_gpu(x, runtime=webgpu), w[:, :, :, :1], padding="SAME")
        gpuconv.conv2d(t, pw[:, :, :4], runtime=webgpu)
    t.release()
    records = prof.records
    assert [r.op for r in records] == ["conv2d", "conv2d", "depthwise_conv2d", "conv2d"]
    assert records[1].program == "Conv2DNaiveProgram" and records[2].program == "DepthwiseConv2DVec4Program"
    assert records[0].algorithm == "auto" and records[1].algorithm == "direct"
    assert records[0].shapes == "x 1x8x8x4, W 3x3x4x8 -> 1x8x8x8"
    expected = "GPU timestamp query (ns)" if webgpu.info()["timestamp_query"] else "synchronized wall time"
    assert {r.draw_timing for r in records} == {expected}
    assert all(r.draw_ms >= 0 and r.flops > 0 for r in records)
    assert records[0].read_ms > 0 and records[2].read_ms == 0  # a Tensor result is not read back
    assert "Conv2DNaiveProgram" in prof.table()


def test_precompile_makes_the_pipelines_before_the_first_call(webgpu, rng):
    shapes = ((1, 13, 11, 5), (3, 3, 5, 7))
    kwargs = dict(padding="SAME", strides=2)
    assert gpuconv.precompile("conv2d", *shapes, runtime=webgpu, **kwargs) == 1
    assert gpuconv.precompile("conv2d", *shapes, runtime=webgpu, **kwargs) == 0
    calls = [("conv2d", *shapes, {"algorithm": "direct", **kwargs}),
             ("depthwise_conv2d", (1, 13, 11, 8), (3, 3, 8, 1), {"padding": "SAME"}),
             ("conv2d_transpose", (1, 7, 6, 3), (3, 3, 2, 3), (1, 13, 11, 2), {"strides": 2, "padding": "SAME"})]
    assert gpuconv.precompile_all(calls, runtime=webgpu) == 3
    before = webgpu.compiled_programs
    x, w = _data(rng, *shapes)
    gpuconv.conv2d(x, w, runtime=webgpu, **kwargs)
    gpuconv.conv2d(x, w, runtime=webgpu, algorithm="direct", **kwargs)
    assert webgpu.compiled_programs == before  # every pipeline was made already


def test_repeated_calls_reuse_the_pipeline(webgpu, rng):
    x, w = _data(rng, (1, 6, 6, 3), (3, 3, 3, 2))
    gpuconv.conv2d(x, w, runtime=webgpu)
    before = webgpu.compiled_programs
    for _ in range(3):
        gpuconv.conv2d(x, w, runtime=webgpu)
    assert webgpu.compiled_programs == before


# -- the device's limits --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def small_device():
    """A WebGPU device emulating small limits: a 3-workgroup grid axis (longer grids fold into y),
    9 KiB of workgroup memory (the GEMM's 64x16 tiling, 10 KiB, does not fit)."""
    try:
        runtime = gpuconv.WebGPURuntime(max_compute_workgroups_per_dimension=3,
                                        max_compute_workgroup_storage_size=9216)
    except GLUnavailableError as exc:
        pytest.skip(f"no WebGPU adapter: {exc}")
    yield runtime
    runtime.release()


#: Calls whose grids fold on a 3-workgroup axis (4 to 9 workgroups), per algorithm.
FOLDED = {
    "auto": [("conv2d", (1, 16, 16, 4), (3, 3, 4, 5)),            # 256 rows x 5 channels: four 64 x 8 tiles
             ("depthwise_conv2d", (2, 16, 16, 8), (3, 3, 8, 1))],  # the vec4 program
    "direct": [("conv2d", (2, 7, 6, 4), (3, 3, 4, 5)),             # 420 outputs, 7 workgroups of 64
               ("depthwise_conv2d", (2, 7, 6, 4), (3, 3, 4, 1))],
}


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_small_limits_fold_the_grid_and_still_give_the_right_results(small_device, rng, algorithm):
    assert small_device.limits.max_compute_workgroups_per_dimension == 3
    for op, x_shape, w_shape in FOLDED[algorithm]:
        x, w = _data(rng, x_shape, w_shape)
        with gpuconv.profile(small_device):
            y = getattr(gpuconv, op)(x, w, padding="SAME", algorithm=algorithm, runtime=small_device)
        _check(op, y, getattr(gpuconv.oracle, op)(x, w, padding="SAME"))
    x, tw = _data(rng, (2, 4, 4, 8), (3, 3, 3, 8))  # 2x8x8x3: 384 outputs, 6 workgroups
    y = gpuconv.conv2d_transpose(x, tw, (2, 8, 8, 3), strides=2, padding="SAME", algorithm=algorithm,
                                 runtime=small_device)
    _check("conv2d_transpose", y, gpuconv.oracle.conv2d_transpose(x, tw, (2, 8, 8, 3), strides=2, padding="SAME"))
    x, w = _data(rng, (2, 16, 16, 4), (3, 3, 4, 5))
    with pytest.raises(ValueError, match=r"more than this device's maxComputeWorkgroupsPerDimension \(3\) squared"):
        gpuconv.conv2d(x, w, padding="SAME", algorithm="direct", runtime=small_device)


def test_small_limits_shape_the_programs(small_device, rng):
    for algorithm in ALGORITHMS:
        _, x_shape, w_shape = FOLDED[algorithm][0]
        x, w = _data(rng, x_shape, w_shape)
        def make(limits, algorithm="auto", x=x, w=w):
            return plan_conv2d(x, w, padding="SAME", algorithm=algorithm, limits=limits)

        spec = small_device.target.plan(make, algorithm, small_device.limits).spec
        assert spec.dispatch[0] == 3 and spec.dispatch[1] > 1 and spec.dispatch[0] * spec.dispatch[1] >= \
            spec.workgroups > 3
        if spec.tile is not None:
            assert spec.tile.workgroup_bytes <= 9216
    x, w = _data(rng, (1, 16, 16, 4), (3, 3, 4, 11))  # 256 rows x 11 channels: 64 x 16 tiles waste least
    make = lambda limits, algorithm="auto": plan_conv2d(x, w, padding="SAME",  # noqa: E731
                                                        algorithm=algorithm, limits=limits)
    assert small_device.target.plan(make, "auto", small_device.limits).spec.tile == CONV2D_MM_TILES[2]
    assert small_device.target.plan(make, "auto", WebGPULimits()).spec.tile == CONV2D_MM_TILES[1]


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_fewer_invocations_per_workgroup(rng, algorithm):
    try:
        runtime = gpuconv.WebGPURuntime(max_compute_invocations_per_workgroup=32)
    except GLUnavailableError as exc:
        pytest.skip(f"no WebGPU adapter: {exc}")
    with runtime:
        x, w, dw = _data(rng, (1, 7, 9, 8), (3, 3, 8, 3), (3, 3, 8, 1))
        if algorithm == "auto":  # every tiling of the implicit GEMM is 64 invocations
            with pytest.raises(ValueError, match="no tiling of the implicit GEMM fits this device's limits: 64 "
                                                 "invocations per workgroup exceed "
                                                 "maxComputeInvocationsPerWorkgroup 32"):
                gpuconv.conv2d(x, w, padding="SAME", runtime=runtime)
        else:  # the one-output-per-invocation programs take 32 per workgroup
            _check("conv2d", gpuconv.conv2d(x, w, padding="SAME", algorithm=algorithm, runtime=runtime),
                   gpuconv.oracle.conv2d(x, w, padding="SAME"))
        _check("depthwise_conv2d", gpuconv.depthwise_conv2d(x, dw, padding="SAME", algorithm=algorithm,
                                                            runtime=runtime),
               gpuconv.oracle.depthwise_conv2d(x, dw, padding="SAME"))
        y = gpuconv.conv2d_backprop_input((1, 7, 9, 8), w, x[..., :3], padding="SAME", runtime=runtime)
        _check("conv2d_backprop_input", y,
               gpuconv.oracle.conv2d_backprop_input((1, 7, 9, 8), w, x[..., :3], padding="SAME"))


def test_choose_tile_takes_a_smaller_tiling_within_the_workgroup_memory():
    limits = WebGPULimits()
    assert choose_tile(4096, 64, limits) == CONV2D_MM_TILES[0]
    assert choose_tile(4096, 16, limits) == CONV2D_MM_TILES[1]  # 64 x 16: 10 KiB of workgroup memory
    small = WebGPULimits(max_compute_workgroup_storage_size=9216)
    assert choose_tile(4096, 16, small) == CONV2D_MM_TILES[2]  # 64 x 8: 9 KiB
    assert all(choose_tile(rows, cols, small).workgroup_bytes <= 9216 for rows in (1, 50, 4096) for cols in (1, 9, 64))
    tiny = WebGPULimits(max_compute_workgroup_storage_size=1024)
    with pytest.raises(ValueError, match="no tiling of the implicit GEMM fits.*maxComputeWorkgroupStorageSize"):
        choose_tile(4096, 64, tiny)


def test_workgroup_memory_smaller_than_every_tiling_is_refused_clearly(rng):
    try:
        runtime = gpuconv.WebGPURuntime(max_compute_workgroup_storage_size=1024)
    except GLUnavailableError as exc:
        pytest.skip(f"no WebGPU adapter: {exc}")
    with runtime:
        x, w = _data(rng, (1, 6, 6, 3), (3, 3, 3, 3))
        with pytest.raises(ValueError, match="maxComputeWorkgroupStorageSize"):
            gpuconv.conv2d(x, w, runtime=runtime)
        y = gpuconv.conv2d(x, w, runtime=runtime, algorithm="direct")  # needs no workgroup memory
        _check("conv2d", y, gpuconv.oracle.conv2d(x, w))


def test_a_tensor_larger_than_a_storage_binding_is_refused(rng):
    try:
        runtime = gpuconv.WebGPURuntime(max_storage_buffer_binding_size=4096)
    except GLUnavailableError as exc:
        pytest.skip(f"no WebGPU adapter: {exc}")
    with runtime:
        x, w = _data(rng, (1, 8, 8, 4), (3, 3, 4, 4))  # 1 KiB in and out
        _check("conv2d", gpuconv.conv2d(x, w, padding="SAME", runtime=runtime),
               gpuconv.oracle.conv2d(x, w, padding="SAME"))
        big = np.zeros((1, 32, 32, 4), np.float32)  # 16 KiB
        for algorithm in ALGORITHMS:
            with pytest.raises(ValueError, match=r"x takes 16384 bytes, more than this device's "
                                                 r"maxStorageBufferBindingSize \(4096\)"):
                gpuconv.conv2d(big, w, padding="SAME", runtime=runtime, algorithm=algorithm)
        assert runtime.memory()["textures"] == 0  # refused before anything was made


def test_limits_above_the_devices_or_unknown_are_refused(webgpu):
    device = webgpu.device_limits["max-compute-workgroups-per-dimension"]
    with pytest.raises(ValueError, match=f"max_compute_workgroups_per_dimension={device + 1} exceeds this "
                                         f"device's limit of {device}"):
        gpuconv.WebGPURuntime(max_compute_workgroups_per_dimension=device + 1)
    with pytest.raises(TypeError, match="unknown WebGPU limit"):
        gpuconv.WebGPURuntime(max_texture_size=64)
    with pytest.raises(ValueError, match="must be a positive integer"):
        gpuconv.WebGPURuntime(max_compute_invocations_per_workgroup=0)


# -- llvmpipe/lavapipe's loop limit ---------------------------------------------------------------
# gallivm (lavapipe compiles with it too) ends an invocation's loops after 65535 passes in all,
# silently: before WebGPURuntime set max_loop_iterations there, a 1x1 conv2d over 70000 input
# channels summed 65535 of them ("direct") and the implicit GEMM only 29121 of 60000.

def _on_gallivm(runtime):
    return "llvmpipe" in str(runtime.info()["adapter"]).lower()


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_a_reduction_longer_than_the_loop_limit_is_refused(webgpu, algorithm):
    if not _on_gallivm(webgpu):
        assert webgpu.max_loop_iterations is None
        pytest.skip("the loop limit is lavapipe's (gallivm's); this adapter has none")
    assert webgpu.max_loop_iterations == 65535 and webgpu.info()["max_loop_iterations"] == 65535
    channels = 70000
    x, w = np.ones((1, 1, 1, channels), np.float32), np.ones((1, 1, channels, 1), np.float32)
    with pytest.raises(ValueError, match=r"would run \d+ loop iterations per output value, more than the 65535"):
        gpuconv.conv2d(x, w, algorithm=algorithm, runtime=webgpu)
    with pytest.raises(ValueError, match="more than the 65535"):
        gpuconv.conv2d_backprop_input((1, 1, 1, 1), np.ones((1, 1, 1, channels), np.float32),
                                      np.ones((1, 1, 1, channels), np.float32), runtime=webgpu)


@pytest.mark.parametrize("algorithm, channels", [("direct", 65000), ("auto", 61000)])
def test_the_deepest_reduction_within_the_loop_limit_is_right(webgpu, algorithm, channels):
    # just under the limit the whole sum is taken (the estimate is an upper bound of gallivm's count)
    x, w = np.ones((1, 1, 1, channels), np.float32), np.ones((1, 1, channels, 1), np.float32)
    y = gpuconv.conv2d(x, w, algorithm=algorithm, runtime=webgpu)
    assert float(y.reshape(-1)[0]) == channels


# -- errors ---------------------------------------------------------------------------------------

def test_webgl2_algorithms_are_refused(webgpu, rng):
    x, w = _data(rng, (1, 5, 5, 3), (3, 3, 3, 2))
    with pytest.raises(ValueError, match="algorithm must be one of 'auto', 'direct', 'im2col' on the WebGPU "
                                         "target, got 'packed'"):
        gpuconv.conv2d(x, w, algorithm="packed", runtime=webgpu)
    with pytest.raises(ValueError, match="packed"):
        gpuconv.depthwise_conv2d(x, w[..., :1], algorithm="packed", runtime=webgpu)
    with pytest.raises(ValueError, match="algorithm='im2col' runs conv2d and conv1d only"):
        gpuconv.depthwise_conv2d(x, w[..., :1], algorithm="im2col", runtime=webgpu)


def test_float16_storage_runs_and_unknown_storage_is_refused(webgpu, rng):
    x, w = _data(rng, (1, 5, 5, 3), (3, 3, 3, 2))
    y = gpuconv.conv2d(x, w, storage="float16", runtime=webgpu)  # halves: tests/test_webgpu_float16.py
    assert np.array_equal(y, y.astype(np.float16).astype(np.float32))
    with pytest.raises(ValueError, match="storage must be"):
        gpuconv.conv2d(x, w, storage="float8", runtime=webgpu)


def test_bad_arguments_are_refused_clearly(webgpu, rng):
    x, w = _data(rng, (1, 5, 5, 3), (3, 3, 3, 2))
    with pytest.raises(TypeError, match="runtime must be a gpuconv runtime"):
        gpuconv.conv2d(x, w, runtime="webgpu")
    with pytest.raises(TypeError, match="runtime must be a gpuconv runtime"):
        gpuconv.to_gpu(x, runtime=object())
    with pytest.raises(ValueError, match="power_preference must be one of"):
        gpuconv.WebGPURuntime("fastest")
    with pytest.raises(TypeError, match="adapter must be a wgpu.GPUAdapter"):
        gpuconv.WebGPURuntime(adapter="llvmpipe")
    with pytest.raises(ValueError, match="in_channels"):
        gpuconv.conv2d(x, w[:, :, :2], runtime=webgpu)


def test_a_released_runtime_is_refused(rng):
    try:
        runtime = gpuconv.WebGPURuntime()
    except GLUnavailableError as exc:
        pytest.skip(f"no WebGPU adapter: {exc}")
    x, w = _data(rng, (1, 5, 5, 3), (3, 3, 3, 2))
    t = gpuconv.to_gpu(x, runtime=runtime)
    runtime.release()
    runtime.release()  # twice is fine
    with pytest.raises(RuntimeError, match="this WebGPURuntime has been released"):
        gpuconv.conv2d(x, w, runtime=runtime)
    with pytest.raises(ValueError, match="Tensor of a runtime that has been released"):
        gpuconv.conv2d(t, w)


def test_largest_errors(capsys):
    """Prints the largest relative error seen per op (run with -s to see it)."""
    with capsys.disabled():
        if LARGEST:
            print("\nWebGPU largest relative errors: "
                  + ", ".join(f"{op} {error:.2e}" for op, error in sorted(LARGEST.items())))
