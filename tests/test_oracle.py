"""The NumPy oracle: reference loops vs the vectorized path, known answers, identities.

No GL needed.  Reference loops only run on tiny shapes, so the file stays fast.
"""

import math
import time

import numpy as np
import pytest
from helpers import import_crosscheck
from numpy.lib.stride_tricks import sliding_window_view
from numpy.testing import assert_allclose, assert_array_equal

from gpuconv import oracle
from gpuconv.arguments import ACTIVATIONS

TOL = dict(rtol=1e-12, atol=1e-12)


def rand(rng, *shape):
    return rng.standard_normal(shape)


def both(fn, *args, **kwargs):
    """Run ``fn`` with both methods, check they agree, return the vectorized result."""
    ref = fn(*args, method="reference", **kwargs)
    vec = fn(*args, method="vectorized", **kwargs)
    assert ref.dtype == vec.dtype == np.float64
    assert ref.shape == vec.shape
    assert_allclose(vec, ref, **TOL)
    return vec


# ---------------------------------------------------------------------------
# reference vs vectorized

# (x shape, filter shape, keyword arguments); channels 1..9 cover every remainder mod 4.
CONV_CASES = [
    ((1, 4, 4, 1), (3, 3, 1, 2), dict()),
    ((1, 5, 7, 2), (3, 3, 2, 3), dict(strides=2, padding="SAME")),
    ((1, 6, 5, 3), (1, 3, 3, 2), dict(strides=3, padding="same")),
    ((1, 10, 6, 4), (5, 2, 4, 2), dict(dilations=2, padding="VALID")),
    ((1, 6, 7, 5), (3, 2, 5, 2), dict(strides=2, padding=1, dim_rounding_mode="floor")),
    ((1, 7, 6, 6), (2, 3, 6, 2), dict(strides=3, padding=2, dim_rounding_mode="round")),
    ((1, 6, 5, 7), (2, 2, 7, 1), dict(strides=2, padding=1, dim_rounding_mode="ceil")),
    ((1, 8, 6, 5), (3, 3, 8, 2), dict(strides=2, padding=1, data_format="NCHW")),  # trunc
    ((3, 4, 5, 9), (3, 2, 9, 2), dict(strides=(2, 1), padding=[[1, 2], [0, 3]])),
    ((1, 5, 4, 3), (2, 3, 3, 3), dict(padding=[[0, 0], [2, 0], [1, 1], [0, 0]])),
    ((1, 2, 5, 6), (2, 2, 2, 2), dict(dilations=(1, 3), data_format="NCHW",
                                      padding=[[0, 0], [0, 0], [1, 0], [0, 2]])),
    ((3, 5, 5, 5), (1, 1, 5, 3), dict(strides=2)),
    ((1, 7, 5, 2), (5, 2, 2, 2), dict(strides=[1, 2, 3, 1], padding="SAME")),
    ((1, 6, 6, 1), (2, 2, 1, 2), dict(dilations=3, padding=2, dim_rounding_mode="ceil")),
    ((1, 3, 2, 4), (3, 3, 4, 1), dict(dilations=[1, 1, 2, 1], padding=3, dim_rounding_mode="round")),
    ((4, 4, 3), (3, 2, 3, 2), dict(padding="SAME")),  # rank 3, NHWC
    ((3, 4, 5), (2, 3, 3, 2), dict(strides=2, padding="SAME", data_format="NCHW")),  # rank 3, NCHW
    # grouped
    ((1, 5, 4, 6), (3, 3, 3, 4), dict(groups=2, padding="SAME")),
    ((3, 4, 5, 6), (2, 3, 2, 3), dict(groups=3, strides=2, padding=1, dim_rounding_mode="ceil")),
    ((1, 6, 5, 6), (3, 2, 1, 6), dict(groups=6, dilations=2, padding=[[1, 1], [0, 2]])),
    ((1, 6, 4, 5), (2, 2, 3, 4), dict(groups=2, data_format="NCHW", padding="SAME")),
    ((1, 6, 4, 4), (3, 3, 2, 6), dict(groups=3, data_format="NCHW", padding="VALID")),
]


@pytest.mark.parametrize("x_shape, f_shape, kwargs", CONV_CASES)
def test_conv2d_reference_matches_vectorized(x_shape, f_shape, kwargs):
    rng = np.random.default_rng(sum(x_shape) * 31 + sum(f_shape))
    x, f = rand(rng, *x_shape), rand(rng, *f_shape)
    y = both(oracle.conv2d, x, f, **kwargs)
    assert y.ndim == len(x_shape)
    channel_axis = -3 if kwargs.get("data_format") == "NCHW" else -1
    assert y.shape[channel_axis] == f_shape[3]


DEPTHWISE_CASES = [
    ((1, 4, 4, 1), (3, 3, 1, 1), dict()),
    ((1, 5, 6, 2), (3, 3, 2, 2), dict(strides=2, padding="SAME")),
    ((3, 6, 5, 3), (2, 3, 3, 3), dict(dilations=2, padding="same")),
    ((1, 7, 5, 4), (3, 2, 4, 1), dict(strides=3, padding=1, dim_rounding_mode="ceil")),
    ((1, 6, 6, 5), (1, 1, 5, 2), dict(strides=2, padding=2, dim_rounding_mode="round")),
    ((1, 5, 4, 7), (5, 2, 7, 1), dict(padding=[[2, 1], [0, 1]])),
    ((1, 2, 6, 5), (2, 2, 2, 3), dict(data_format="NCHW", strides=2, padding="SAME")),
    ((1, 3, 5, 5), (3, 3, 3, 2), dict(data_format="NCHW", dilations=2, padding=1)),
    ((5, 4, 3), (3, 3, 3, 2), dict(padding="SAME")),  # rank 3
]


@pytest.mark.parametrize("x_shape, f_shape, kwargs", DEPTHWISE_CASES)
def test_depthwise_reference_matches_vectorized(x_shape, f_shape, kwargs):
    rng = np.random.default_rng(sum(x_shape) * 17 + sum(f_shape))
    x, f = rand(rng, *x_shape), rand(rng, *f_shape)
    y = both(oracle.depthwise_conv2d, x, f, **kwargs)
    channel_axis = -3 if kwargs.get("data_format") == "NCHW" else -1
    assert y.shape[channel_axis] == f_shape[2] * f_shape[3]


def _expected_activation(y, activation, alpha=0.2, weights=None):
    """The activations written out element by element, independently of the oracle."""
    def one(v, w):
        if activation == "linear":
            return v
        if activation == "relu":
            return v if v > 0 else 0.0
        if activation == "relu6":
            return min(v if v > 0 else 0.0, 6.0)
        if activation == "elu":
            return v if v > 0 else float(np.exp(v)) - 1.0
        if activation == "sigmoid":
            return 1.0 / (1.0 + float(np.exp(-v)))
        if activation == "leakyrelu":
            return alpha * v if v < 0 else v
        if activation == "prelu":
            return w * v if v < 0 else v
        if activation == "swish":
            return v / (1.0 + math.exp(-v))
        if activation == "hard_sigmoid":
            return min(max(v + 3.0, 0.0), 6.0) / 6.0
        if activation == "hard_swish":
            return v * min(max(v + 3.0, 0.0), 6.0) / 6.0
        if activation == "gelu":
            return 0.5 * v * (1.0 + math.erf(v / math.sqrt(2.0)))
        if activation == "gelu_tanh":
            return 0.5 * v * (1.0 + math.tanh(math.sqrt(2.0 / math.pi) * (v + 0.044715 * v ** 3)))
        raise AssertionError(activation)
    if weights is None:
        weights = np.zeros_like(y)
    return np.vectorize(one, otypes=[float])(y, np.broadcast_to(weights, y.shape))


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
def test_bias_and_activation(activation, data_format):
    rng = np.random.default_rng(3)
    channels_last = data_format == "NHWC"
    x = rand(rng, 2, 5, 4, 3) * 3
    if not channels_last:
        x = x.transpose(0, 3, 1, 2)
    f, bias = rand(rng, 3, 2, 3, 4), rand(rng, 4)
    prelu = rand(rng, 4) if activation == "prelu" else None
    kwargs = dict(strides=1, padding="SAME", data_format=data_format)
    alpha = {"leakyrelu_alpha": 0.3} if activation == "leakyrelu" else {}  # refused with the others
    y = both(oracle.conv2d, x, f, bias=bias, activation=activation, **alpha,
             prelu_weights=prelu, **kwargs)
    plain = oracle.conv2d(x, f, **kwargs)
    shape = (1, 1, 1, 4) if channels_last else (1, 4, 1, 1)
    weights = None if prelu is None else prelu.reshape(shape)
    assert_allclose(y, _expected_activation(plain + bias.reshape(shape), activation, 0.3, weights), **TOL)

    # depthwise shares the epilogue
    fd, bias_d = rand(rng, 2, 2, 3, 2), rand(rng, 6)
    prelu_d = rand(rng, 6) if activation == "prelu" else None
    y = both(oracle.depthwise_conv2d, x, fd, bias=bias_d, activation=activation, prelu_weights=prelu_d,
             **kwargs)
    plain = oracle.depthwise_conv2d(x, fd, **kwargs)
    shape = (1, 1, 1, 6) if channels_last else (1, 6, 1, 1)
    weights = None if prelu_d is None else prelu_d.reshape(shape)
    assert_allclose(y, _expected_activation(plain + bias_d.reshape(shape), activation, 0.2, weights), **TOL)


def test_prelu_weights_broadcast_to_the_output():
    rng = np.random.default_rng(4)
    x, f = rand(rng, 1, 4, 5, 2), rand(rng, 3, 3, 2, 3)
    plain = oracle.conv2d(x, f, padding="SAME")
    full = rand(rng, 1, 4, 5, 3)
    y = both(oracle.conv2d, x, f, padding="SAME", activation="prelu", prelu_weights=full)
    assert_allclose(y, _expected_activation(plain, "prelu", weights=full), **TOL)
    per_column = rand(rng, 5, 1)  # broadcasts over [4, 5, 3]-shaped rank-3 output
    y = oracle.conv2d(x[0], f, padding="SAME", activation="prelu", prelu_weights=per_column)
    assert_allclose(y, _expected_activation(plain[0], "prelu", weights=per_column), **TOL)
    # NCHW: a [outC] vector goes on the channel axis (axis 1), not the last one
    xc = x.transpose(0, 3, 1, 2)
    w = np.array([0.5, -2.0, 3.0])
    y = oracle.conv2d(xc, f, padding="SAME", data_format="NCHW", activation="prelu", prelu_weights=w)
    assert_allclose(y, _expected_activation(plain.transpose(0, 3, 1, 2), "prelu",
                                            weights=w.reshape(1, 3, 1, 1)), **TOL)


def test_apply_activation_known_values():
    y = np.array([-2.0, -0.5, 0.0, 0.5, 7.0, np.nan])
    nan = np.nan
    cases = {
        "linear": y,
        None: y,
        "relu": [0, 0, 0, 0.5, 7, nan],
        "relu6": [0, 0, 0, 0.5, 6, nan],
        "elu": [np.exp(-2) - 1, np.exp(-0.5) - 1, 0, 0.5, 7, nan],
        "sigmoid": [1 / (1 + np.exp(2)), 1 / (1 + np.exp(0.5)), 0.5, 1 / (1 + np.exp(-0.5)),
                    1 / (1 + np.exp(-7)), nan],
        "leakyrelu": [-0.4, -0.1, 0, 0.5, 7, nan],
    }
    for activation, expected in cases.items():
        assert_allclose(oracle.apply_activation(y, activation), expected, rtol=1e-14, atol=0)
    assert_allclose(oracle.apply_activation(y, "LeakyRelu", leakyrelu_alpha=0.5),
                    [-1, -0.25, 0, 0.5, 7, nan])
    assert_allclose(oracle.apply_activation(y, "prelu", prelu_weights=np.arange(6.0)),
                    [0, -0.5, 0, 0.5, 7, nan])
    # channel_axis places a per-channel vector
    z = -np.ones((2, 3, 4))
    out = oracle.apply_activation(z, "prelu", prelu_weights=[1.0, 2.0, 3.0], channel_axis=1)
    assert_array_equal(out[:, :, 0], [[-1, -2, -3]] * 2)
    # no overflow trouble at the extremes
    big = np.array([-1000.0, 1000.0])
    with np.errstate(all="raise"):
        assert_array_equal(oracle.apply_activation(big, "sigmoid"), [0.0, 1.0])
        assert_array_equal(oracle.apply_activation(big, "elu"), [-1.0, 1000.0])


# ---------------------------------------------------------------------------
# known answers, worked by hand


def test_known_valid_window_sums():
    x = np.arange(1.0, 10.0).reshape(1, 3, 3, 1)
    f = np.ones((2, 2, 1, 1))
    expected = np.array([[12.0, 16.0], [24.0, 28.0]]).reshape(1, 2, 2, 1)
    assert_array_equal(both(oracle.conv2d, x, f), expected)


def test_known_same_stride2_pads_smaller_half_before():
    # 4x4 input, 3x3 ones, stride 2: out 2x2, total pad 1 per axis -> 0 before, 1 after.
    x = np.arange(16.0).reshape(1, 4, 4, 1)
    f = np.ones((3, 3, 1, 1))
    y = both(oracle.conv2d, x, f, strides=2, padding="SAME")
    # rows/cols 0..2 | 2..3 (+pad); windows: 45 = 0+1+2+4+5+6+8+9+10, 39 = 2+3+6+7+10+11,
    # 66 = 8+9+10+12+13+14, 50 = 10+11+14+15
    assert_array_equal(y[0, :, :, 0], [[45.0, 39.0], [66.0, 50.0]])
    # an even filter with stride 1: total pad 1, all of it after
    x1 = np.array([1.0, 2.0, 3.0, 4.0]).reshape(1, 4, 1)
    y1 = oracle.conv1d(x1, np.array([1.0, 10.0]).reshape(2, 1, 1), padding="SAME")
    assert_array_equal(y1[0, :, 0], [21.0, 32.0, 43.0, 4.0])


def test_known_dilated_1d():
    x = np.arange(1.0, 7.0).reshape(1, 6, 1)
    f = np.array([1.0, 10.0, 100.0]).reshape(3, 1, 1)
    # dilation 2: effective filter 5, two outputs: x0 + 10 x2 + 100 x4, x1 + 10 x3 + 100 x5
    y = both(oracle.conv1d, x, f, dilation=2)
    assert_array_equal(y[0, :, 0], [531.0, 642.0])
    # SAME: 6 outputs, total pad 4 -> 2 before, 2 after
    y = both(oracle.conv1d, x, f, dilation=2, padding="SAME")
    assert_array_equal(y[0, :, 0], [310.0, 420.0, 531.0, 642.0, 53.0, 64.0])


@pytest.mark.parametrize("mode, expected", [
    (None, [1.0, 5.0, 9.0]),          # trunc((5 - 2 + 2) / 2 + 1) = 3
    ("floor", [1.0, 5.0, 9.0]),
    ("round", [1.0, 5.0, 9.0, 0.0]),  # Math.round(3.5) = 4
    ("ceil", [1.0, 5.0, 9.0, 0.0]),   # the last window is past the right pad
])
def test_known_int_pad_rounding(mode, expected):
    x = np.arange(1.0, 6.0)
    f = np.ones((2, 1, 1))
    y = both(oracle.conv1d, x.reshape(5, 1), f, stride=2, padding=1, dim_rounding_mode=mode)
    assert_array_equal(y[:, 0], expected)
    # the same through conv2d on a 1-wide column (pad 1 on every side: extra zero columns)
    y2 = both(oracle.conv2d, x.reshape(1, 5, 1, 1), f.reshape(2, 1, 1, 1), strides=(2, 1),
              padding=1, dim_rounding_mode=mode)
    assert y2.shape == (1, len(expected), 3, 1)
    assert_array_equal(y2[0, :, 1, 0], expected)
    assert_array_equal(y2[0, :, [0, 2], 0], 0.0)


# ---------------------------------------------------------------------------
# identities that hold by definition


@pytest.mark.parametrize("kwargs", [
    dict(strides=2, padding="SAME"),
    dict(dilations=2, padding=[[1, 0], [2, 3]]),
    dict(padding=1, dim_rounding_mode="ceil", strides=3),
])
def test_nchw_is_transposed_nhwc(kwargs):
    rng = np.random.default_rng(5)
    x, f, fd = rand(rng, 3, 9, 8, 6), rand(rng, 3, 2, 3, 4), rand(rng, 3, 2, 6, 2)
    to_nchw = (0, 3, 1, 2)
    for fn, filt, extra in ((oracle.conv2d, f, dict(groups=2)), (oracle.conv2d, rand(rng, 2, 2, 6, 5), {}),
                            (oracle.depthwise_conv2d, fd, {})):
        nhwc = fn(x, filt, **kwargs, **extra)
        nchw = fn(x.transpose(to_nchw), filt, data_format="NCHW", **kwargs, **extra)
        assert_allclose(nchw, nhwc.transpose(to_nchw), **TOL)


@pytest.mark.parametrize("multiplier", [1, 2, 3])
def test_groups_equal_channels_is_depthwise(multiplier):
    rng = np.random.default_rng(6)
    channels = 5
    x, fd = rand(rng, 2, 7, 6, channels), rand(rng, 3, 2, channels, multiplier)
    grouped_filter = fd.reshape(3, 2, 1, channels * multiplier)  # out channel k*m + q
    for kwargs in (dict(padding="SAME", strides=2), dict(padding=[[0, 1], [2, 0]], dilations=2)):
        depthwise = oracle.depthwise_conv2d(x, fd, **kwargs)
        grouped = oracle.conv2d(x, grouped_filter, groups=channels, **kwargs)
        assert_allclose(grouped, depthwise, **TOL)
    tiny = x[:1, :4, :4]
    assert_allclose(both(oracle.conv2d, tiny, grouped_filter, groups=channels, padding="SAME"),
                    both(oracle.depthwise_conv2d, tiny, fd, padding="SAME"), **TOL)


def test_grouped_is_concatenated_convolutions():
    rng = np.random.default_rng(7)
    groups, cg, ocg = 3, 2, 4
    x, f = rand(rng, 2, 8, 7, groups * cg), rand(rng, 3, 3, cg, groups * ocg)
    y = oracle.conv2d(x, f, groups=groups, strides=2, padding="SAME")
    parts = [oracle.conv2d(x[..., g * cg:(g + 1) * cg], f[..., g * ocg:(g + 1) * ocg],
                           strides=2, padding="SAME") for g in range(groups)]
    assert_allclose(y, np.concatenate(parts, axis=-1), **TOL)


@pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
def test_separable_is_depthwise_then_pointwise(data_format):
    rng = np.random.default_rng(8)
    x, dw, pw = rand(rng, 2, 7, 6, 3), rand(rng, 3, 3, 3, 2), rand(rng, 1, 1, 6, 4)
    if data_format == "NCHW":
        x = x.transpose(0, 3, 1, 2)
    kwargs = dict(strides=2, padding="SAME", data_format=data_format)
    y = oracle.separable_conv2d(x, dw, pw, **kwargs)
    depthwise = oracle.depthwise_conv2d(x, dw, **kwargs)
    spec = "nhwc,co->nhwo" if data_format == "NHWC" else "nchw,co->nohw"
    assert_allclose(y, np.einsum(spec, depthwise, pw[0, 0]), **TOL)
    small = x[:1, :, :4, :4] if data_format == "NCHW" else x[:1, :4, :4]
    both(oracle.separable_conv2d, small, dw, pw, padding="VALID", data_format=data_format, dilations=1)
    assert both(oracle.separable_conv2d, small[0], dw, pw, padding="SAME", data_format=data_format).ndim == 3


def _zero_stuffed(f, dh, dw):
    fh, fw = f.shape[:2]
    out = np.zeros(((fh - 1) * dh + 1, (fw - 1) * dw + 1) + f.shape[2:])
    out[::dh, ::dw] = f
    return out


@pytest.mark.parametrize("dilations, padding", [((2, 2), "VALID"), ((3, 1), "SAME"), ((1, 2), [[1, 2], [3, 0]]),
                                                ((2, 3), 2)])
def test_dilated_is_zero_stuffed_filter(dilations, padding):
    rng = np.random.default_rng(9)
    x, f, fd = rand(rng, 2, 11, 10, 3), rand(rng, 3, 2, 3, 4), rand(rng, 2, 3, 3, 2)
    y = oracle.conv2d(x, f, dilations=dilations, padding=padding)
    assert_allclose(y, oracle.conv2d(x, _zero_stuffed(f, *dilations), padding=padding), **TOL)
    y = oracle.depthwise_conv2d(x, fd, dilations=dilations, padding=padding)
    assert_allclose(y, oracle.depthwise_conv2d(x, _zero_stuffed(fd, *dilations), padding=padding), **TOL)


@pytest.mark.parametrize("kwargs, padding_2d", [
    (dict(padding="VALID"), "VALID"),
    (dict(padding="same", stride=2), "SAME"),
    (dict(padding="SAME", dilation=2), "SAME"),
    (dict(padding=[1, 2], stride=3), [[0, 0], [1, 2]]),
    (dict(padding=[[0, 0], [2, 1]]), [[0, 0], [2, 1]]),
    (dict(padding=[[0, 0], [1, 3], [0, 0]], dilation=2), [[0, 0], [1, 3]]),
    (dict(padding=[[0, 0], [0, 0], [2, 2], [0, 0]], stride=2), [[0, 0], [2, 2]]),
    (dict(padding=2, stride=2, dim_rounding_mode="floor"), [[0, 0], [2, 2]]),  # exact division
])
def test_conv1d_is_conv2d_of_height_one(kwargs, padding_2d):
    rng = np.random.default_rng(10)
    x, f = rand(rng, 3, 9, 4), rand(rng, 3, 4, 5)
    y = oracle.conv1d(x, f, **kwargs)
    stride, dilation = kwargs.get("stride", 1), kwargs.get("dilation", 1)
    y2 = oracle.conv2d(x[:, None], f[None], strides=(1, stride), dilations=(1, dilation), padding=padding_2d)
    assert_allclose(y, y2[:, 0], **TOL)
    # NCW (a 3-row padding lists the axes in NCW order) and no batch
    ncw_kwargs = dict(kwargs)
    if isinstance(kwargs["padding"], list) and len(kwargs["padding"]) == 3:
        n, w, c = kwargs["padding"]
        ncw_kwargs["padding"] = [n, c, w]
    ncw = oracle.conv1d(x.transpose(0, 2, 1), f, data_format="NCW", **ncw_kwargs)
    assert_allclose(ncw, y.transpose(0, 2, 1), **TOL)
    assert_allclose(oracle.conv1d(x[1], f, **kwargs), y[1], **TOL)
    small = both(oracle.conv1d, x[:1, :6, :2], f[:, :2, :2], **kwargs)
    assert small.shape[0] == 1


@pytest.mark.parametrize("mode", [None, "floor", "round", "ceil"])
@pytest.mark.parametrize("stride, pad, width, filter_width", [(2, 1, 6, 3), (3, 2, 7, 2), (2, 0, 6, 3)])
def test_conv1d_int_pad_pads_only_the_width(mode, stride, pad, width, filter_width):
    rng = np.random.default_rng(11)
    x, f = rand(rng, 2, width, 3), rand(rng, filter_width, 3, 2)
    y = both(oracle.conv1d, x, f, stride=stride, padding=pad, dim_rounding_mode=mode)
    exact = (width - filter_width + 2 * pad) / stride + 1
    rounded = {None: int(exact), "floor": np.floor(exact), "round": np.floor(exact + 0.5),
               "ceil": np.ceil(exact)}[mode]
    assert y.shape == (2, int(rounded), 2)
    # same values as the 2-D int-pad convolution's middle row (its pad rows are zeros)
    y2 = oracle.conv2d(x[:, None], f[None], strides=(1, stride), padding=pad, dim_rounding_mode=mode)
    assert y2.shape[1] == 1 + 2 * pad
    assert_allclose(y, y2[:, pad], **TOL)


def test_conv2d_matches_scipy_correlate():
    signal = import_crosscheck("scipy.signal")
    rng = np.random.default_rng(12)
    x, f = rand(rng, 1, 9, 8, 3), rand(rng, 3, 4, 3, 2)
    y = oracle.conv2d(x, f, padding="VALID")
    for k in range(2):
        expected = signal.correlate(x[0], f[:, :, :, k], mode="valid")[:, :, 0]
        assert_allclose(y[0, :, :, k], expected, rtol=1e-12, atol=1e-12)
    # SAME: scipy's zero-padded full correlation, cropped where TF's windows start
    y = oracle.conv2d(x, f, padding="SAME")  # pads: height 2 -> (1, 1), width 3 -> (1, 2)
    for k in range(2):
        full = signal.correlate(x[0], f[:, :, :, k], mode="full")[:, :, 2]  # window starts at -2, -3
        assert_allclose(y[0, :, :, k], full[1:1 + 9, 2:2 + 8], rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------------------
# NaN and infinity


def _window_mask(mask, f_shape, depthwise=False, **kwargs):
    """Outputs whose (valid) window contains a marked input, via a ones filter."""
    ones = np.ones(f_shape)
    fn = oracle.depthwise_conv2d if depthwise else oracle.conv2d
    return fn(mask.astype(np.float64), ones, **kwargs) > 0


@pytest.mark.parametrize("kwargs", [dict(padding="SAME", strides=2), dict(padding=1, dilations=2),
                                    dict(padding=1, strides=2, dim_rounding_mode="ceil")])
def test_nan_in_input_reaches_exactly_its_windows(kwargs):
    rng = np.random.default_rng(13)
    x = rand(rng, 1, 6, 5, 2)
    x[0, 2, 3, 1] = np.nan
    x[0, 5, 0, 0] = np.nan
    f = rand(rng, 3, 2, 2, 3)
    y = both(oracle.conv2d, x, f, **kwargs)
    mask = np.isnan(x).any(axis=-1, keepdims=True)
    expected = np.repeat(_window_mask(mask, (3, 2, 1, 1), **kwargs), 3, axis=-1)
    assert expected.any() and not expected.all()
    assert_array_equal(np.isnan(y), expected)
    # depthwise: only the channel holding the NaN
    fd = rand(rng, 3, 2, 2, 2)
    y = both(oracle.depthwise_conv2d, x, fd, **kwargs)
    expected = np.repeat(_window_mask(np.isnan(x), (3, 2, 2, 1), depthwise=True, **kwargs), 2, axis=-1)
    assert_array_equal(np.isnan(y), expected)


def test_infinities_propagate_as_a_plain_sum():
    rng = np.random.default_rng(14)
    x = rand(rng, 1, 5, 5, 2)
    x[0, 1, 1, 0] = np.inf
    x[0, 1, 2, 0] = -np.inf   # windows holding both (with same-sign weights) are NaN
    f = np.abs(rand(rng, 3, 3, 2, 2)) + 0.1
    y = both(oracle.conv2d, x, f, padding="SAME")
    assert np.isnan(y).any() and np.isinf(y).any() and np.isfinite(y).any()


@pytest.mark.parametrize("depthwise", [False, True])
def test_infinite_weight_meets_no_padding(depthwise):
    # A plain sum over the taps inside the input never computes 0 * inf at a pad.
    rng = np.random.default_rng(15)
    x = np.abs(rand(rng, 2, 5, 6, 2)) + 0.5
    f = rand(rng, 3, 3, 2, 2)
    f[0, 0, 1, 1] = np.inf  # top-left tap: outside the input on the first row/column
    fn = oracle.depthwise_conv2d if depthwise else oracle.conv2d
    for kwargs in (dict(padding="SAME"), dict(padding=2, strides=2, dim_rounding_mode="ceil"),
                   dict(padding=[[2, 0], [1, 3]], dilations=2)):
        y = both(fn, x, f, **kwargs)
        assert np.isinf(y).any()
        assert not np.isnan(y).any()
        assert np.isfinite(y).any()  # the border outputs whose top-left tap is in the pad
    x[0, 3, 4, 1] = 0.0  # the top-left tap of output (4, 5): 0 * inf inside the input is NaN
    y = both(fn, x, f, padding="SAME")
    assert np.isnan(y).any()
    f[1, 1, 0, 0] = np.nan
    both(fn, x, f, padding="SAME", strides=2)


# ---------------------------------------------------------------------------
# arguments


def test_dtypes_and_results():
    x = np.ones((1, 3, 3, 2), dtype=np.float32)
    f = np.ones((2, 2, 2, 1), dtype=np.float16)
    y = oracle.conv2d(x, f)
    assert y.dtype == np.float64 and y.shape == (1, 2, 2, 1)
    assert_array_equal(y, 8.0)
    assert oracle.conv2d(x.tolist(), f.tolist()).dtype == np.float64
    with pytest.raises(TypeError, match="x must have a floating-point dtype"):
        oracle.conv2d(np.ones((1, 3, 3, 2), dtype=np.int32), f)
    with pytest.raises(ValueError, match="x must be rank 3 or 4"):
        oracle.conv2d(np.ones((3, 3)), f)
    with pytest.raises(ValueError, match="filter must be rank 4"):
        oracle.depthwise_conv2d(x, np.ones((2, 2, 2)))


def test_argument_errors():
    x, f = np.ones((1, 4, 4, 2)), np.ones((3, 3, 2, 3))
    with pytest.raises(ValueError, match=r"bias must have one value per output channel, shape \(3,\)"):
        oracle.conv2d(x, f, bias=np.ones(2))
    with pytest.raises(ValueError, match=r"bias must have one value per output channel, shape \(4,\), got shape "
                                         r"\(3, 4\), which does not broadcast to the output shape \(1, 2, 2, 4\)"):
        oracle.depthwise_conv2d(x, np.ones((3, 3, 2, 2)), bias=np.ones((3, 4)))
    # a bias that broadcasts to the output is taken (TF.js's fused ops): [1, C], a scalar, a full one
    plain = oracle.depthwise_conv2d(x, np.ones((3, 3, 2, 2)))
    for bias in (np.ones((1, 4)), np.float64(1.0), np.ones((2, 1, 1))):
        assert_allclose(oracle.depthwise_conv2d(x, np.ones((3, 3, 2, 2)), bias=bias), plain + 1.0)
    with pytest.raises(ValueError, match=r"prelu_weights of shape \(4,\) do not broadcast to the output shape \(1, 2, 2, 3\)"):
        oracle.conv2d(x, f, activation="prelu", prelu_weights=np.ones(4))
    with pytest.raises(ValueError, match="prelu_weights"):
        oracle.conv2d(x, f, activation="prelu")
    with pytest.raises(ValueError, match="activation must be one of"):
        oracle.conv2d(x, f, activation="tanh")
    with pytest.raises(ValueError, match="method must be one of"):
        oracle.conv2d(x, f, method="fast")
    with pytest.raises(ValueError, match="pointwise_filter must have shape"):
        oracle.separable_conv2d(x, np.ones((3, 3, 2, 2)), np.ones((1, 1, 2, 3)))
    with pytest.raises(ValueError, match="explicit conv1d padding"):
        oracle.conv1d(np.ones((1, 5, 2)), np.ones((2, 2, 1)), padding=[[1, 0], [1, 1]])
    with pytest.raises(ValueError, match="data_format must be 'NWC' or 'NCW'"):
        oracle.conv1d(np.ones((1, 5, 2)), np.ones((2, 2, 1)), data_format="NHWC")
    with pytest.raises(ValueError, match="stride must be a positive int"):
        oracle.conv1d(np.ones((1, 5, 2)), np.ones((2, 2, 1)), stride=0)
    with pytest.raises(ValueError, match="groups"):
        oracle.conv2d(np.ones((1, 4, 4, 6)), np.ones((3, 3, 2, 4)), groups=3)  # 4 % 3
    # prelu_weights and alpha are ignored by other activations, as in TF.js
    assert_array_equal(oracle.conv2d(x, f, activation="relu", prelu_weights=np.ones(7)), oracle.conv2d(x, f))


# ---------------------------------------------------------------------------
# speed


def im2col_matmul_float32(x, f, stride=1):
    """The yardstick: float32 SAME conv as im2col + one matmul (stride 1, odd filters)."""
    x, f = x.astype(np.float32), f.astype(np.float32)
    fh, fw, c, oc = f.shape
    padded = np.pad(x, ((0, 0), (fh // 2, fh // 2), (fw // 2, fw // 2), (0, 0)))
    windows = sliding_window_view(padded, (fh, fw), axis=(1, 2))  # [N, H, W, C, FH, FW]
    n, h, w = windows.shape[:3]
    cols = windows.transpose(0, 1, 2, 4, 5, 3).reshape(n * h * w, fh * fw * c)
    return (cols @ f.reshape(fh * fw * c, oc)).reshape(n, h, w, oc)


def best_ms(fn, repeat=15):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times) * 1e3


SPEED_CASES = [((1, 64, 64, 16), (3, 3, 16, 32)), ((4, 32, 32, 64), (3, 3, 64, 64))]


def measure(x_shape, f_shape):
    rng = np.random.default_rng(16)
    x, f = rand(rng, *x_shape), rand(rng, *f_shape)
    assert_allclose(oracle.conv2d(x, f, padding="SAME"), im2col_matmul_float32(x, f), rtol=1e-3, atol=1e-3)
    return (best_ms(lambda: oracle.conv2d(x, f, padding="SAME")),
            best_ms(lambda: im2col_matmul_float32(x, f)))


@pytest.mark.parametrize("x_shape, f_shape", SPEED_CASES)
def test_vectorized_agrees_with_a_float32_im2col(x_shape, f_shape):
    """The oracle's vectorized path against an independent im2col + matmul (its speed beside
    that one: ``python tests/test_oracle.py``, a measurement, not a test)."""
    rng = np.random.default_rng(16)
    x, f = rand(rng, *x_shape), rand(rng, *f_shape)
    assert_allclose(oracle.conv2d(x, f, padding="SAME"), im2col_matmul_float32(x, f), rtol=1e-3, atol=1e-3)


if __name__ == "__main__":
    for shapes in SPEED_CASES:
        oracle_ms, float32_ms = measure(*shapes)
        print(f"{shapes[0]} * {shapes[1]} SAME: vectorized oracle {oracle_ms:.2f} ms, "
              f"float32 im2col+matmul {float32_ms:.2f} ms ({oracle_ms / float32_ms:.1f}x)")
