"""The oracle's convolution family: gradients, transposed and 3-D convolutions.

Reference loops against the vectorized versions, the adjoint identities that define
the gradients, finite differences, known answers, PyTorch cross-checks, bias
broadcasting, argument errors, and conv2d on the GPU with a stride and a dilation
both above 1.  Reference loops run on tiny shapes only.
"""

from __future__ import annotations

import importlib
import itertools
from pathlib import Path
from typing import Any, Callable

import gpuconv
import numpy as np
import pytest
from gpuconv import caffe, geometry, oracle
from gpuconv import torch as gt
from gpuconv.arguments import check_bias
from numpy.testing import assert_allclose, assert_array_equal

# the shared test helpers live in tests/helpers.py where it exists, else in conftest.py
_helpers = importlib.import_module("helpers" if Path(__file__).with_name("helpers.py").exists() else "conftest")
assert_close = _helpers.assert_close
import_crosscheck = _helpers.import_crosscheck



def assert_near(actual: Any, expected: Any) -> None:
    """Equal to 1e-12 (relative and absolute)."""
    assert_allclose(actual, expected, rtol=1e-12, atol=1e-12)


Case = tuple[tuple[int, ...], tuple[int, ...], dict[str, Any]]


def rand(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return rng.standard_normal(shape)


#: The largest relative differences seen (loops vs vectorized, oracle vs PyTorch), printed at the end.
LARGEST: dict[str, float] = {}


def both(fn: Callable[..., np.ndarray], *args: Any, **kwargs: Any) -> np.ndarray:
    """Run ``fn`` with both methods, check they agree to 1e-12, return the vectorized result."""
    ref = fn(*args, method="reference", **kwargs)
    vec = fn(*args, method="vectorized", **kwargs)
    assert ref.dtype == vec.dtype == np.float64
    assert ref.shape == vec.shape
    assert_near(vec, ref)
    name = f"loops vs vectorized: {fn.__name__}"
    LARGEST[name] = max(LARGEST.get(name, 0.0), oracle.relative_error(vec, ref))
    return vec


def inner(a: np.ndarray, b: np.ndarray) -> float:
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.sum(a * b))


def assert_same_number(*values: float) -> None:
    scale = max(abs(v) for v in values)
    for v in values[1:]:
        assert abs(v - values[0]) <= 1e-12 * max(scale, 1.0), values


def seed(*shapes: tuple[int, ...]) -> np.random.Generator:
    return np.random.default_rng(sum(sum(s) * (i + 7) for i, s in enumerate(shapes)))


def _ids(cases: list[Case]) -> list[str]:
    return [f"x{'x'.join(map(str, x))}-w{'x'.join(map(str, w))}-{kw}" for x, w, kw in cases]


# ---------------------------------------------------------------------------
# the cases: forward (x shape, filter shape, arguments); dy gets the forward output's shape

# input depths 1..9; strides, dilations (both above 1 too), every padding form and rounding
# mode, batch > 1, both data formats, rank-3 inputs, a filter larger than the input
CONV2D_CASES: list[Case] = [
    ((1, 5, 5, 1), (3, 3, 1, 2), {}),
    ((2, 7, 6, 2), (3, 3, 2, 3), {"strides": 2, "padding": "SAME"}),
    ((1, 8, 7, 3), (2, 3, 3, 2), {"strides": 3, "padding": "same"}),
    ((1, 9, 8, 4), (3, 2, 4, 2), {"dilations": 2, "padding": "VALID"}),
    ((1, 7, 6, 5), (3, 2, 5, 2), {"strides": 2, "padding": 1, "dim_rounding_mode": "floor"}),
    ((1, 7, 6, 6), (2, 3, 6, 2), {"strides": 3, "padding": 2, "dim_rounding_mode": "round"}),
    ((1, 6, 5, 7), (2, 2, 7, 1), {"strides": 2, "padding": 1, "dim_rounding_mode": "ceil"}),
    ((1, 8, 6, 5), (3, 3, 8, 2), {"strides": 2, "padding": 1, "data_format": "NCHW"}),  # truncation
    ((3, 4, 5, 9), (3, 2, 9, 2), {"strides": (2, 1), "padding": [[1, 2], [0, 3]]}),
    ((2, 5, 4, 3), (2, 3, 3, 3), {"padding": [[0, 0], [2, 0], [1, 1], [0, 0]]}),
    ((1, 2, 5, 6), (2, 2, 2, 2), {"dilations": (1, 3), "data_format": "NCHW",
                                  "padding": [[0, 0], [0, 0], [1, 0], [0, 2]]}),
    ((1, 9, 9, 2), (3, 3, 2, 3), {"strides": 2, "dilations": 2, "padding": "SAME"}),
    ((2, 3, 10, 9), (2, 3, 3, 2), {"strides": [1, 1, 2, 3], "dilations": (2, 2), "padding": 1,
                                   "data_format": "NCHW"}),
    ((1, 11, 10, 4), (3, 2, 4, 2), {"strides": (3, 2), "dilations": (2, 3), "padding": [[2, 1], [0, 3]]}),
    ((5, 4, 3), (3, 2, 3, 2), {"padding": "SAME"}),                          # rank 3, NHWC
    ((3, 5, 6), (2, 3, 3, 2), {"strides": 2, "padding": "SAME", "data_format": "NCHW"}),  # rank 3, NCHW
    ((1, 3, 3, 2), (5, 5, 2, 2), {"padding": "SAME"}),                       # filter larger than x
]

DEPTHWISE_CASES: list[Case] = [
    ((1, 5, 5, 1), (3, 3, 1, 1), {}),
    ((2, 6, 5, 2), (3, 3, 2, 2), {"strides": 2, "padding": "SAME"}),
    ((1, 6, 7, 3), (2, 3, 3, 3), {"dilations": 2, "padding": "same"}),
    ((1, 7, 5, 4), (3, 2, 4, 1), {"strides": 3, "padding": 1, "dim_rounding_mode": "ceil"}),
    ((1, 6, 6, 5), (1, 1, 5, 2), {"strides": 2, "padding": 2, "dim_rounding_mode": "round"}),
    ((2, 5, 4, 7), (3, 2, 7, 1), {"padding": [[2, 1], [0, 1]]}),
    ((1, 2, 6, 5), (2, 2, 2, 3), {"data_format": "NCHW", "strides": 2, "padding": "SAME"}),
    ((2, 9, 5, 5), (3, 3, 9, 1), {"data_format": "NCHW", "dilations": (2, 1), "padding": 1}),
    ((5, 4, 3), (3, 3, 3, 2), {"padding": "SAME"}),  # rank 3
    ((1, 6, 5, 6), (2, 2, 6, 2), {"strides": [1, 2, 1, 1], "padding": [[0, 0], [1, 0], [0, 1], [0, 0]]}),
]

CONV3D_CASES: list[Case] = [
    ((1, 3, 4, 3, 1), (2, 2, 2, 1, 2), {}),
    ((2, 4, 3, 4, 2), (2, 2, 3, 2, 2), {"strides": 2, "padding": "SAME"}),
    ((1, 5, 4, 4, 3), (3, 2, 2, 3, 1), {"strides": (1, 2, 3), "padding": "same"}),
    ((1, 5, 5, 4, 4), (2, 2, 2, 4, 2), {"dilations": (2, 1, 2), "padding": "VALID"}),
    ((1, 4, 5, 4, 5), (2, 3, 2, 5, 1), {"strides": 2, "padding": 1, "dim_rounding_mode": "ceil"}),
    ((1, 4, 4, 5, 6), (2, 2, 2, 6, 1), {"strides": 2, "padding": 1, "dim_rounding_mode": "floor"}),
    ((1, 5, 4, 4, 7), (2, 2, 3, 7, 1), {"strides": 3, "padding": 2, "dim_rounding_mode": "round"}),
    ((1, 8, 3, 4, 3), (2, 2, 2, 8, 2), {"data_format": "NCDHW", "strides": 2, "padding": "SAME"}),
    ((2, 3, 4, 5, 9), (2, 2, 2, 9, 1), {"padding": [[1, 0], [0, 1], [2, 0]], "strides": [1, 1, 2, 1, 1]}),
    ((1, 4, 4, 3, 2), (2, 2, 2, 2, 2), {"padding": [[0, 0], [1, 1], [0, 2], [1, 0], [0, 0]]}),
    ((1, 2, 4, 3, 5), (2, 2, 2, 2, 1), {"data_format": "NCDHW", "dilations": [1, 1, 2, 1, 2],
                                        "padding": [[0, 0], [0, 0], [1, 0], [0, 1], [2, 1]]}),
    ((1, 7, 7, 6, 2), (2, 2, 2, 2, 2), {"strides": 2, "dilations": 2, "padding": "SAME"}),
    ((3, 4, 4, 2), (2, 2, 2, 2, 2), {"padding": "SAME"}),                     # rank 4, NDHWC
    ((2, 3, 4, 4), (2, 2, 2, 2, 1), {"data_format": "NCDHW", "strides": 2, "padding": 1}),  # rank 4, NCDHW
]


def _channels_first(kwargs: dict[str, Any]) -> bool:
    return kwargs.get("data_format", "NHWC") in ("NCHW", "NCDHW")


def _forward_and_dy(forward: Callable[..., np.ndarray], x_shape: tuple[int, ...], f_shape: tuple[int, ...],
                    kwargs: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = seed(x_shape, f_shape)
    x, f = rand(rng, *x_shape), rand(rng, *f_shape)
    y = forward(x, f, **kwargs)
    return x, f, y, rand(rng, *y.shape)


# ---------------------------------------------------------------------------
# reference loops == vectorized, and the identities that define the gradients


@pytest.mark.parametrize("x_shape, f_shape, kwargs", CONV2D_CASES, ids=_ids(CONV2D_CASES))
def test_conv2d_gradients_and_transpose(x_shape, f_shape, kwargs):
    x, f, y, dy = _forward_and_dy(oracle.conv2d, x_shape, f_shape, kwargs)
    dx = both(oracle.conv2d_backprop_input, x.shape, f, dy, **kwargs)
    df = both(oracle.conv2d_backprop_filter, x, f.shape, dy, **kwargs)
    assert dx.shape == x.shape and df.shape == f.shape
    assert_same_number(inner(y, dy), inner(x, dx), inner(f, df))
    # the transposed convolution is the input gradient, with x in dy's place
    transposed = both(oracle.conv2d_transpose, dy, f, x.shape, **kwargs)
    assert_array_equal(transposed, dx)
    # output_shape (and input_shape) without the batch: the batch is x's (dy's)
    if len(x_shape) == 4:
        assert_array_equal(oracle.conv2d_transpose(dy, f, x.shape[1:], **kwargs), dx)
        assert_array_equal(oracle.conv2d_backprop_input(x.shape[1:], f, dy, **kwargs), dx)
    # the forward convolution is the transposed convolution's adjoint
    z = seed(y.shape).standard_normal(x.shape)
    assert_same_number(inner(oracle.conv2d_transpose(dy, f, x.shape, **kwargs), z),
                       inner(dy, oracle.conv2d(z, f, **kwargs)))


@pytest.mark.parametrize("x_shape, f_shape, kwargs", DEPTHWISE_CASES, ids=_ids(DEPTHWISE_CASES))
def test_depthwise_gradients(x_shape, f_shape, kwargs):
    x, f, y, dy = _forward_and_dy(oracle.depthwise_conv2d, x_shape, f_shape, kwargs)
    dx = both(oracle.depthwise_conv2d_backprop_input, x.shape, f, dy, **kwargs)
    df = both(oracle.depthwise_conv2d_backprop_filter, x, f.shape, dy, **kwargs)
    assert dx.shape == x.shape and df.shape == f.shape
    assert_same_number(inner(y, dy), inner(x, dx), inner(f, df))
    # a depthwise convolution is a grouped one with groups = channels: so are its gradients
    channels, multiplier = f_shape[2], f_shape[3]
    grouped = f.reshape(f_shape[:2] + (1, channels * multiplier))
    assert_near(oracle.conv2d(x, grouped, groups=channels, **kwargs), y)


@pytest.mark.parametrize("x_shape, f_shape, kwargs", CONV3D_CASES, ids=_ids(CONV3D_CASES))
def test_conv3d_gradients_and_transpose(x_shape, f_shape, kwargs):
    rng = seed(x_shape, f_shape)
    x, f = rand(rng, *x_shape), rand(rng, *f_shape)
    y = both(oracle.conv3d, x, f, **kwargs)
    channel_axis = -4 if _channels_first(kwargs) else -1
    assert y.ndim == len(x_shape) and y.shape[channel_axis] == f_shape[4]
    dy = rand(rng, *y.shape)
    dx = both(oracle.conv3d_backprop_input, x.shape, f, dy, **kwargs)
    df = both(oracle.conv3d_backprop_filter, x, f.shape, dy, **kwargs)
    assert dx.shape == x.shape and df.shape == f.shape
    assert_same_number(inner(y, dy), inner(x, dx), inner(f, df))
    transposed = both(oracle.conv3d_transpose, dy, f, x.shape, **kwargs)
    assert_array_equal(transposed, dx)
    if len(x_shape) == 5:
        assert_array_equal(oracle.conv3d_transpose(dy, f, x.shape[1:], **kwargs), dx)


@pytest.mark.parametrize("kwargs", [
    {"strides": 2, "padding": "SAME"},
    {"dilations": (1, 2), "padding": [[1, 0], [2, 3]]},
    {"padding": 1, "dim_rounding_mode": "ceil", "strides": 3},
    {"strides": 2, "dilations": 3, "padding": "VALID"},
])
def test_nchw_gradients_are_transposed_nhwc(kwargs):
    rng = np.random.default_rng(5)
    x, f, fd = rand(rng, 2, 9, 8, 6), rand(rng, 3, 2, 6, 4), rand(rng, 3, 2, 6, 2)
    to_nchw = (0, 3, 1, 2)
    xc = x.transpose(to_nchw)
    dy = rand(rng, *oracle.conv2d(x, f, **kwargs).shape)
    dyc = dy.transpose(to_nchw)
    assert_near(oracle.conv2d_backprop_input(xc.shape, f, dyc, data_format="NCHW", **kwargs),
                    oracle.conv2d_backprop_input(x.shape, f, dy, **kwargs).transpose(to_nchw))
    assert_near(oracle.conv2d_backprop_filter(xc, f.shape, dyc, data_format="NCHW", **kwargs),
                    oracle.conv2d_backprop_filter(x, f.shape, dy, **kwargs))
    if kwargs.get("dilations", 1) == 1 or kwargs.get("strides", 1) == 1:
        dyd = rand(rng, *oracle.depthwise_conv2d(x, fd, **kwargs).shape)
        assert_near(
            oracle.depthwise_conv2d_backprop_input(xc.shape, fd, dyd.transpose(to_nchw), data_format="NCHW",
                                                   **kwargs),
            oracle.depthwise_conv2d_backprop_input(x.shape, fd, dyd, **kwargs).transpose(to_nchw))
        assert_near(
            oracle.depthwise_conv2d_backprop_filter(xc, fd.shape, dyd.transpose(to_nchw), data_format="NCHW",
                                                    **kwargs),
            oracle.depthwise_conv2d_backprop_filter(x, fd.shape, dyd, **kwargs))


def test_conv3d_of_depth_one_is_conv2d():
    rng = np.random.default_rng(6)
    x, f = rand(rng, 2, 7, 6, 3), rand(rng, 3, 2, 3, 4)
    kwargs2 = {"strides": (2, 1), "dilations": (1, 2), "padding": [[1, 0], [2, 1]]}
    kwargs3 = {"strides": (1, 2, 1), "dilations": (1, 1, 2), "padding": [[0, 0], [1, 0], [2, 1]]}
    y2 = oracle.conv2d(x, f, **kwargs2)
    y3 = oracle.conv3d(x[:, None], f[None], **kwargs3)
    assert_near(y3[:, 0], y2)
    dy = rand(rng, *y2.shape)
    assert_near(oracle.conv3d_backprop_input(x[:, None].shape, f[None], dy[:, None], **kwargs3)[:, 0],
                    oracle.conv2d_backprop_input(x.shape, f, dy, **kwargs2))
    assert_near(oracle.conv3d_backprop_filter(x[:, None], f[None].shape, dy[:, None], **kwargs3)[0],
                    oracle.conv2d_backprop_filter(x, f.shape, dy, **kwargs2))


# ---------------------------------------------------------------------------
# finite differences of the gradients (a nonlinear loss: sum(sin(y)), dL/dy = cos(y))


def _numeric_gradient(loss: Callable[[np.ndarray], float], a: np.ndarray, eps: float = 1e-5) -> np.ndarray:
    grad = np.zeros_like(a)
    for index in np.ndindex(a.shape):
        step = np.zeros_like(a)
        step[index] = eps
        grad[index] = (loss(a + step) - loss(a - step)) / (2 * eps)
    return grad


FD_CASES = [
    ("conv2d", (1, 5, 4, 2), (3, 2, 2, 2), {"strides": 2, "padding": "SAME"}),
    ("conv2d", (2, 6, 5, 1), (2, 2, 1, 2), {"strides": 2, "dilations": 2, "padding": [[1, 0], [0, 2]]}),
    ("conv2d", (1, 2, 5, 5), (3, 3, 2, 1), {"padding": 1, "strides": 2, "dim_rounding_mode": "ceil",
                                            "data_format": "NCHW"}),
    ("depthwise", (1, 5, 5, 2), (3, 3, 2, 2), {"strides": 2, "padding": "SAME"}),
    ("depthwise", (2, 4, 5, 1), (2, 3, 1, 3), {"dilations": 2, "padding": 1}),
    ("conv3d", (1, 3, 4, 4, 2), (2, 2, 3, 2, 2), {"strides": (1, 2, 1), "padding": "SAME"}),
    ("conv3d", (1, 2, 4, 3, 3), (2, 2, 2, 2, 1), {"data_format": "NCDHW", "dilations": (1, 2, 1), "padding": 1}),
]

_FD_OPS: dict[str, tuple[Callable[..., np.ndarray], Callable[..., np.ndarray], Callable[..., np.ndarray]]] = {
    "conv2d": (oracle.conv2d, oracle.conv2d_backprop_input, oracle.conv2d_backprop_filter),
    "depthwise": (oracle.depthwise_conv2d, oracle.depthwise_conv2d_backprop_input,
                  oracle.depthwise_conv2d_backprop_filter),
    "conv3d": (oracle.conv3d, oracle.conv3d_backprop_input, oracle.conv3d_backprop_filter),
}


@pytest.mark.parametrize("op, x_shape, f_shape, kwargs", FD_CASES)
def test_gradients_match_finite_differences(op, x_shape, f_shape, kwargs):
    forward, backprop_input, backprop_filter = _FD_OPS[op]
    rng = seed(x_shape, f_shape)
    x, f = rand(rng, *x_shape), rand(rng, *f_shape)
    dy = np.cos(forward(x, f, **kwargs))
    dx = backprop_input(x.shape, f, dy, **kwargs)
    df = backprop_filter(x, f.shape, dy, **kwargs)
    numeric_dx = _numeric_gradient(lambda a: float(np.sum(np.sin(forward(a, f, **kwargs)))), x)
    numeric_df = _numeric_gradient(lambda a: float(np.sum(np.sin(forward(x, a, **kwargs)))), f)
    assert_allclose(dx, numeric_dx, rtol=1e-7, atol=1e-8)
    assert_allclose(df, numeric_df, rtol=1e-7, atol=1e-8)


@pytest.mark.parametrize("spatial", [2, 3])
def test_transpose_gradients_match_finite_differences(spatial):
    # d/dx sum(sin(conv_transpose(x, f))) is the forward convolution of cos(z);
    # d/df is the filter gradient with x in dy's place
    rng = np.random.default_rng(7 + spatial)
    transpose: Callable[..., np.ndarray]
    forward: Callable[..., np.ndarray]
    backprop_filter: Callable[..., np.ndarray]
    out: tuple[int, ...]
    if spatial == 2:
        transpose, forward, backprop_filter = oracle.conv2d_transpose, oracle.conv2d, oracle.conv2d_backprop_filter
        x, f, out = rand(rng, 1, 3, 3, 2), rand(rng, 3, 2, 2, 2), (1, 6, 6, 2)
        kwargs: dict[str, Any] = {"strides": 2, "padding": "SAME"}
    else:
        transpose, forward, backprop_filter = oracle.conv3d_transpose, oracle.conv3d, oracle.conv3d_backprop_filter
        x, f, out = rand(rng, 1, 2, 2, 3, 2), rand(rng, 2, 2, 2, 1, 2), (1, 4, 3, 6, 1)
        kwargs = {"strides": (2, 1, 2), "padding": "VALID"}
    z = transpose(x, f, out, **kwargs)
    assert z.shape == out
    g = np.cos(z)
    dx = forward(g, f, **kwargs)
    df = backprop_filter(g, f.shape, x, **kwargs)
    assert_allclose(dx, _numeric_gradient(lambda a: float(np.sum(np.sin(transpose(a, f, out, **kwargs)))), x),
                    rtol=1e-7, atol=1e-8)
    assert_allclose(df, _numeric_gradient(lambda a: float(np.sum(np.sin(transpose(x, a, out, **kwargs)))), f),
                    rtol=1e-7, atol=1e-8)


# ---------------------------------------------------------------------------
# known answers, worked by hand


def test_known_transpose_places_scaled_filters():
    # two inputs, stride 2, filter [1, 10, 100]: 1 * f at columns 0..2, 2 * f at 2..4
    x = np.array([1.0, 2.0]).reshape(1, 1, 2, 1)
    f = np.array([1.0, 10.0, 100.0]).reshape(1, 3, 1, 1)
    y = both(oracle.conv2d_transpose, x, f, (1, 1, 5, 1), strides=(1, 2))
    assert_array_equal(y[0, 0, :, 0], [1.0, 10.0, 102.0, 20.0, 200.0])
    # output_shape 6 (without the batch) is consistent too (floor((6 - 3) / 2) + 1 = 2): the last
    # column gets nothing
    y = both(oracle.conv2d_transpose, x, f, (1, 6, 1), strides=(1, 2))
    assert_array_equal(y[0, 0, :, 0], [1.0, 10.0, 102.0, 20.0, 200.0, 0.0])
    # SAME, stride 2 on 4 columns: total pad 1, 0 before: the same placement, cropped to 4
    y = both(oracle.conv2d_transpose, x, f, (1, 4, 1), strides=(1, 2), padding="SAME")
    assert_array_equal(y[0, 0, :, 0], [1.0, 10.0, 102.0, 20.0])
    # dilation 2 spreads the taps: columns 0, 2, 4 and (stride 3) 3, 5, 7
    y = both(oracle.conv2d_transpose, x, f, (1, 8, 1), strides=(1, 3), dilations=(1, 2))
    assert_array_equal(y[0, 0, :, 0], [1.0, 0.0, 10.0, 2.0, 100.0, 20.0, 0.0, 200.0])


def test_known_filter_gradient_is_a_correlation_of_x_and_dy():
    x = np.arange(1.0, 6.0).reshape(1, 1, 5, 1)
    dy = np.array([1.0, -1.0]).reshape(1, 1, 2, 1)
    # VALID, filter width 2, stride 2: outputs read columns (0, 1) and (2, 3)
    df = both(oracle.conv2d_backprop_filter, x, (1, 2, 1, 1), dy, strides=(1, 2))
    assert_array_equal(df[0, :, 0, 0], [1.0 - 3.0, 2.0 - 4.0])
    # 3-D: a 1x1x1 filter's gradient is sum(x * dy) over the positions the outputs read
    x3 = np.arange(1.0, 9.0).reshape(1, 2, 2, 2, 1)  # x3[0, d, h, w, 0] = 1 + 4d + 2h + w
    df3 = both(oracle.conv3d_backprop_filter, x3, (1, 1, 1, 1, 1), np.ones((1, 1, 1, 1, 1)), strides=2)
    assert_array_equal(df3.ravel(), [1.0])  # the one output reads x3[0, 0, 0, 0]
    # one pad column on the left: two outputs along the width, reading the pad and column 1
    df3 = both(oracle.conv3d_backprop_filter, x3, (1, 1, 1, 1, 1), np.array([10.0, 100.0]).reshape(1, 1, 1, 2, 1),
               strides=2, padding=[[0, 0], [0, 0], [1, 0]])
    assert_array_equal(df3.ravel(), [100.0 * 2.0])
    # a 2x1x1 filter, VALID, stride 2: tap d reads x3[0, d, 0, 0]
    df3 = both(oracle.conv3d_backprop_filter, x3, (2, 1, 1, 1, 1), np.ones((1, 1, 1, 1, 1)), strides=2)
    assert_array_equal(df3.ravel(), [1.0, 5.0])


# ---------------------------------------------------------------------------
# PyTorch (NCHW / NCDHW; weights [outC, inC, k...]; conv_transpose weights [inC, outC, k...])


def _torch_modules() -> tuple[Any, Any]:
    torch = import_crosscheck("torch")
    return torch, torch.nn.functional


def _to_cf(a: np.ndarray, kwargs: dict[str, Any]) -> np.ndarray:
    return a if _channels_first(kwargs) else np.moveaxis(a, -1, 1)


def _from_cf(a: np.ndarray, kwargs: dict[str, Any]) -> np.ndarray:
    return a if _channels_first(kwargs) else np.moveaxis(a, 1, -1)


def _torch_weight(f: np.ndarray) -> np.ndarray:
    """TF filter [k..., inC, outC] -> PyTorch weight [outC, inC, k...] (a conv_transpose's [inC, outC, k...])."""
    spatial = f.ndim - 2
    return f.transpose((spatial + 1, spatial) + tuple(range(spatial)))


def _torch_pads(g: geometry.Conv2DGeometry | geometry.Conv3DGeometry) -> list[int]:
    """F.pad's list (last axis first) of the window pads (they cover the ceil-rounded last window)."""
    pads: list[int] = []
    for before, after in reversed(g.window_pads):
        pads += [before, after]
    return pads


def _torch_forward_and_grads(x: np.ndarray, f: np.ndarray, dy: np.ndarray, g: Any, kwargs: dict[str, Any],
                             groups: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """PyTorch's forward convolution and autograd gradients, back in the oracle's layouts."""
    torch, functional = _torch_modules()
    spatial = f.ndim - 2
    xt = torch.tensor(_to_cf(x, kwargs), requires_grad=True)
    if groups > 1:  # depthwise [k..., C, m] -> [C * m, 1, k...]
        channels, multiplier = f.shape[-2:]
        weight = np.moveaxis(f.reshape(f.shape[:spatial] + (1, channels * multiplier)), (-1, -2), (0, 1))
    else:
        weight = _torch_weight(f)
    wt = torch.tensor(np.ascontiguousarray(weight), requires_grad=True)
    conv = functional.conv2d if spatial == 2 else functional.conv3d
    yt = conv(functional.pad(xt, _torch_pads(g)), wt, stride=g.strides, dilation=g.dilations, groups=groups)
    yt.backward(torch.tensor(_to_cf(dy, kwargs)))
    dw = wt.grad.numpy()
    if groups > 1:
        df = np.moveaxis(dw, (0, 1), (-1, -2)).reshape(f.shape)
    else:
        df = np.moveaxis(dw, (0, 1), (-1, -2))
    return _from_cf(yt.detach().numpy(), kwargs), _from_cf(xt.grad.numpy(), kwargs), df


def _torch_transpose(x: np.ndarray, f: np.ndarray, g: Any, kwargs: dict[str, Any]) -> np.ndarray:
    """conv_transpose without padding (the full result), cropped as the forward pads say."""
    torch, functional = _torch_modules()
    spatial = f.ndim - 2
    transpose = functional.conv_transpose2d if spatial == 2 else functional.conv_transpose3d
    full = transpose(torch.tensor(_to_cf(x, kwargs)), torch.tensor(np.ascontiguousarray(_torch_weight(f))),
                     stride=g.strides, dilation=g.dilations).numpy()
    crop = [slice(None), slice(None)]
    extra = [(0, 0), (0, 0)]
    for axis, ((before, _), size) in enumerate(zip(g.pads, g.in_spatial)):
        extra.append((0, max(0, before + size - full.shape[2 + axis])))
        crop.append(slice(before, before + size))
    return _from_cf(np.pad(full, extra)[tuple(crop)], kwargs)


def _batched_cases(cases: list[Case], rank: int) -> list[Case]:
    return [case for case in cases if len(case[0]) == rank]


def _record(name: str, result: np.ndarray, expected: np.ndarray, tol: float = 1e-12) -> None:
    """Compare (relative to the largest magnitude) and keep the largest difference seen."""
    error = oracle.relative_error(result, expected)
    name = f"oracle vs PyTorch: {name}"
    LARGEST[name] = max(LARGEST.get(name, 0.0), error)
    assert error <= tol, f"{name}: relative error {error:.3g}"


@pytest.mark.parametrize("x_shape, f_shape, kwargs", _batched_cases(CONV2D_CASES, 4),
                         ids=_ids(_batched_cases(CONV2D_CASES, 4)))
def test_conv2d_family_matches_pytorch(x_shape, f_shape, kwargs):
    x, f, y, dy = _forward_and_dy(oracle.conv2d, x_shape, f_shape, kwargs)
    g = geometry.conv2d_geometry(x.shape, f.shape, **kwargs)
    y_torch, dx_torch, df_torch = _torch_forward_and_grads(x, f, dy, g, kwargs)
    _record("conv2d", y, y_torch)
    _record("conv2d_backprop_input", oracle.conv2d_backprop_input(x.shape, f, dy, **kwargs), dx_torch)
    _record("conv2d_backprop_filter", oracle.conv2d_backprop_filter(x, f.shape, dy, **kwargs), df_torch)
    _record("conv2d_transpose", oracle.conv2d_transpose(dy, f, x.shape, **kwargs), _torch_transpose(dy, f, g, kwargs))


@pytest.mark.parametrize("x_shape, f_shape, kwargs", _batched_cases(DEPTHWISE_CASES, 4),
                         ids=_ids(_batched_cases(DEPTHWISE_CASES, 4)))
def test_depthwise_gradients_match_pytorch(x_shape, f_shape, kwargs):
    x, f, y, dy = _forward_and_dy(oracle.depthwise_conv2d, x_shape, f_shape, kwargs)
    g = geometry.depthwise_conv2d_geometry(x.shape, f.shape, **kwargs)
    y_torch, dx_torch, df_torch = _torch_forward_and_grads(x, f, dy, g, kwargs, groups=f_shape[2])
    _record("depthwise_conv2d", y, y_torch)
    _record("depthwise_conv2d_backprop_input", oracle.depthwise_conv2d_backprop_input(x.shape, f, dy, **kwargs),
            dx_torch)
    _record("depthwise_conv2d_backprop_filter", oracle.depthwise_conv2d_backprop_filter(x, f.shape, dy, **kwargs),
            df_torch)


@pytest.mark.parametrize("x_shape, f_shape, kwargs", _batched_cases(CONV3D_CASES, 5),
                         ids=_ids(_batched_cases(CONV3D_CASES, 5)))
def test_conv3d_family_matches_pytorch(x_shape, f_shape, kwargs):
    x, f, y, dy = _forward_and_dy(oracle.conv3d, x_shape, f_shape, kwargs)
    g = geometry.conv3d_geometry(x.shape, f.shape, **kwargs)
    y_torch, dx_torch, df_torch = _torch_forward_and_grads(x, f, dy, g, kwargs)
    _record("conv3d", y, y_torch)
    _record("conv3d_backprop_input", oracle.conv3d_backprop_input(x.shape, f, dy, **kwargs), dx_torch)
    _record("conv3d_backprop_filter", oracle.conv3d_backprop_filter(x, f.shape, dy, **kwargs), df_torch)
    _record("conv3d_transpose", oracle.conv3d_transpose(dy, f, x.shape, **kwargs), _torch_transpose(dy, f, g, kwargs))


@pytest.mark.parametrize("spatial, x_shape, kernel, stride, dilation, pad, output_padding", [
    (2, (2, 3, 4, 5), (3, 2), (2, 3), (1, 1), (1, 0), (1, 2)),
    (2, (1, 2, 5, 3), (2, 3), (2, 2), (2, 3), (0, 2), (0, 1)),
    (2, (1, 4, 3, 3), (1, 1), (3, 1), (1, 1), (0, 0), (2, 0)),
    (3, (2, 2, 3, 2, 3), (2, 3, 2), (2, 1, 3), (1, 2, 1), (1, 1, 0), (1, 0, 2)),
    (3, (1, 3, 2, 3, 2), (3, 2, 2), (1, 2, 2), (2, 1, 1), (0, 1, 1), (0, 1, 0)),
])
def test_transpose_matches_pytorch_padding_and_output_padding(spatial, x_shape, kernel, stride, dilation, pad,
                                                              output_padding):
    # PyTorch's own output-size rule, independent of gpuconv.geometry:
    # out = (in - 1) * stride - 2 * pad + dilation * (kernel - 1) + output_padding + 1,
    # and TF's explicit pads [[p, p], ...] with that output_shape give the same values.
    torch, functional = _torch_modules()
    rng = np.random.default_rng(sum(x_shape) + sum(kernel))
    in_channels, out_channels = x_shape[1], 3
    x = rand(rng, *x_shape)                                   # NC...
    weight = rand(rng, in_channels, out_channels, *kernel)    # PyTorch: [inC, outC, k...]
    transpose = functional.conv_transpose2d if spatial == 2 else functional.conv_transpose3d
    expected = transpose(torch.tensor(x), torch.tensor(weight), stride=stride, padding=pad,
                         output_padding=output_padding, dilation=dilation).numpy()
    sizes = [(n - 1) * s - 2 * p + d * (k - 1) + op + 1
             for n, s, p, d, k, op in zip(x_shape[2:], stride, pad, dilation, kernel, output_padding)]
    assert list(expected.shape[2:]) == sizes
    f = weight.transpose(tuple(range(2, 2 + spatial)) + (1, 0))  # TF: [k..., outC, inC]
    data_format = "NCHW" if spatial == 2 else "NCDHW"
    op = oracle.conv2d_transpose if spatial == 2 else oracle.conv3d_transpose
    y = op(x, f, expected.shape, strides=stride, padding=[[p, p] for p in pad], data_format=data_format,
           dilations=dilation)
    _record("transpose (PyTorch padding)", y, expected)
    if spatial == 2:  # torch.nn.grad names it the gradient of conv2d with respect to its input
        dx = torch.nn.grad.conv2d_input(expected.shape, torch.tensor(weight), torch.tensor(x), stride=stride,
                                        padding=pad, dilation=dilation).numpy()
        _record("transpose (PyTorch padding)", y, dx)
        dw = torch.nn.grad.conv2d_weight(torch.tensor(expected), weight.shape, torch.tensor(x), stride=stride,
                                         padding=pad, dilation=dilation).numpy()
        df = oracle.conv2d_backprop_filter(expected, f.shape, x, strides=stride, padding=[[p, p] for p in pad],
                                           data_format="NCHW", dilations=dilation)
        _record("conv2d_backprop_filter", df, dw.transpose(2, 3, 1, 0))


def test_torch_and_caffe_adapters_take_stride_and_dilation_together():
    torch, functional = _torch_modules()
    rng = np.random.default_rng(21)
    x, w, b = rand(rng, 2, 4, 11, 10), rand(rng, 6, 2, 3, 2), rand(rng, 6)
    kwargs = {"stride": (2, 3), "padding": (1, 2), "dilation": (2, 2), "groups": 2}
    expected = functional.conv2d(torch.tensor(x), torch.tensor(w), torch.tensor(b), **kwargs).numpy()
    _record("gpuconv.torch.conv2d_oracle", gt.conv2d_oracle(x, w, b, **kwargs), expected)
    layer = caffe.Convolution(num_output=6, kernel_h=3, kernel_w=2, stride_h=2, stride_w=3, pad_h=1, pad_w=2,
                              dilation=2, group=2, weight=w, bias=b)
    _record("gpuconv.caffe forward_oracle", layer.forward_oracle(x), expected)


# ---------------------------------------------------------------------------
# bias that broadcasts to the output (TF.js's fused ops)


@pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
def test_transpose_bias_broadcasts(data_format):
    rng = np.random.default_rng(22)
    channels_last = data_format == "NHWC"
    x = rand(rng, 2, 3, 4, 5) if channels_last else rand(rng, 2, 5, 3, 4)
    f = rand(rng, 3, 3, 4, 5)  # -> 4 channels
    out = (2, 6, 8, 4) if channels_last else (2, 4, 6, 8)
    kwargs: dict[str, Any] = {"strides": 2, "padding": "SAME", "data_format": data_format}
    plain = oracle.conv2d_transpose(x, f, out, **kwargs)
    per_channel = rand(rng, 4)
    on_channels = per_channel.reshape((1, 1, 1, 4) if channels_last else (1, 4, 1, 1))
    spatial = rand(rng, *((6, 8, 1) if channels_last else (1, 6, 8)))
    full = rand(rng, *out)
    for bias, added in [(2.5, 2.5), (np.array(2.5), 2.5), (np.array([2.5]), 2.5), (per_channel, on_channels),
                        (on_channels, on_channels), (on_channels[0], on_channels), (spatial, spatial),
                        (full, full), (full[:1], full[:1])]:
        y = both(oracle.conv2d_transpose, x, f, out, bias=bias, **kwargs)
        assert_near(y, plain + added)
    # with an activation after the bias
    y = oracle.conv2d_transpose(x, f, out, bias=per_channel, activation="relu", **kwargs)
    assert_near(y, np.maximum(plain + on_channels, 0))
    y = oracle.conv2d_transpose(x, f, out, bias=spatial, activation="prelu", prelu_weights=per_channel, **kwargs)
    assert_near(y, np.where(plain + spatial < 0, on_channels * (plain + spatial), plain + spatial))
    y = oracle.conv2d_transpose(x[0], f, out[1:], bias=1.0, activation="leakyrelu", leakyrelu_alpha=0.5, **kwargs)
    assert_near(y, np.where(plain[0] + 1 < 0, 0.5 * (plain[0] + 1), plain[0] + 1))


def test_check_bias_forms():
    # without out_shape (the GPU programs' rule) exactly [out_channels]
    assert_array_equal(check_bias([1.0, 2.0], 2), [1.0, 2.0])
    assert check_bias(None, 3) is None
    with pytest.raises(ValueError,
                       match=r"bias must have one value per output channel, shape \(2,\), got shape \(1, 2\)$"):
        check_bias(np.ones((1, 2)), 2)
    # with out_shape: per channel -> [C]; anything else broadcast to the output
    out = (2, 3, 4, 5)
    for bias in (1.0, [1.0], np.ones(5), np.ones((1, 1, 5)), np.ones((1, 1, 1, 1))):
        result = check_bias(bias, 5, out_shape=out, channel_axis=-1)
        assert result is not None and result.shape == (5,)
    result = check_bias(np.arange(5.0), 5, out_shape=(2, 5, 3, 4), channel_axis=1)  # NCHW: [C] on axis 1
    assert result is not None and result.shape == (5,)
    result = check_bias(np.ones((5, 1, 1)), 5, out_shape=(2, 5, 3, 4), channel_axis=-3)
    assert result is not None and result.shape == (5,)
    result = check_bias(np.ones((3, 1, 5)), 5, out_shape=out, channel_axis=-1)
    assert result is not None and result.shape == out
    with pytest.raises(ValueError, match=r"shape \(5,\), got shape \(4,\), which does not broadcast to the output "
                                         r"shape \(2, 3, 4, 5\) either"):
        check_bias(np.ones(4), 5, out_shape=out)
    with pytest.raises(ValueError, match=r"got shape \(2, 1, 5\), which does not broadcast"):
        check_bias(np.ones((2, 1, 5)), 5, out_shape=out)
    with pytest.raises(ValueError, match=r"bias must be rank"):
        check_bias(np.ones((1, 1, 1, 1, 5)), 5, out_shape=out)
    with pytest.raises(TypeError, match=r"bias must be a NumPy array of floats, got str"):
        check_bias("b", 5, out_shape=out)


# ---------------------------------------------------------------------------
# geometry


def test_conv3d_geometry_forms():
    g = geometry.conv3d_geometry((1, 5, 6, 7, 2), (2, 3, 2, 2, 4), strides=[1, 2, 1, 2, 1],
                                 padding=[[0, 0], [1, 0], [0, 2], [1, 1], [0, 0]], dilations=(1, 2, 1))
    assert g.strides == (2, 1, 2) and g.dilations == (1, 2, 1)
    assert g.pads == ((1, 0), (0, 2), (1, 1))
    assert g.out_shape == (1, 3, 4, 4, 4) and g.filter_shape == (2, 3, 2, 2, 4)
    same = geometry.conv3d_geometry((1, 2, 5, 6, 7), (3, 2, 4, 2, 1), strides=(2, 1, 3), padding="SAME",
                                    data_format="NCDHW")
    assert same.out_shape == (1, 1, 3, 6, 3)
    assert same.pads == ((1, 1), (0, 1), (1, 2))  # the smaller half before, per axis
    assert same.multiply_adds == 3 * 6 * 3 * 3 * 2 * 4 * 2
    for mode, out in ((None, 3), ("floor", 3), ("round", 4), ("ceil", 4)):  # (6 - 3 + 2) / 2 + 1 = 3.5
        g = geometry.conv3d_geometry((1, 6, 6, 6, 1), (3, 3, 3, 1, 1), strides=2, padding=1, dim_rounding_mode=mode)
        assert g.out_spatial == (out, out, out)
    assert geometry.conv3d_geometry((1, 5, 5, 5, 1), (2, 2, 2, 1, 1), strides=2, padding=1,
                                    dim_rounding_mode="ceil").window_pads == ((1, 2),) * 3


def test_gradient_geometry_is_the_forward_geometry():
    g, batched = geometry.conv2d_transpose_geometry((2, 4, 4, 3), (3, 3, 5, 3), (8, 8, 5), strides=2,
                                                    padding="SAME", dilations=1)
    forward = geometry.conv2d_geometry((2, 8, 8, 5), (3, 3, 5, 3), strides=2, padding="SAME")
    assert (g, batched) == (forward, True)
    # input_shape with the batch, dy without (batch 1); stride and dilation together: effective 5, out 3
    g, batched = geometry.conv2d_backprop_input_geometry((1, 9, 9, 2), (3, 3, 2, 4), (3, 3, 4), strides=2,
                                                         dilations=2)
    assert not batched and g.in_shape == (1, 9, 9, 2) and g.out_shape == (1, 3, 3, 4)
    g3, batched = geometry.conv3d_backprop_filter_geometry((2, 5, 6, 7), (2, 2, 2, 2, 3), (3, 4, 5, 6),
                                                           data_format="NCDHW")
    assert not batched and g3.out_shape == (1, 3, 4, 5, 6) and g3.in_shape == (1, 2, 5, 6, 7)


def test_stride_and_dilation_together():
    g = geometry.conv2d_geometry((1, 11, 11, 1), (3, 3, 1, 1), strides=2, dilations=3, padding="VALID")
    assert (g.out_height, g.effective_filter_height) == (3, 7)
    g = geometry.conv2d_geometry((1, 11, 11, 1), (3, 3, 1, 1), strides=3, dilations=2, padding="SAME")
    assert g.out_height == 4 and (g.pad_top, g.pad_bottom) == (1, 2)  # total pad (4 - 1) * 3 + 5 - 11 = 3
    for fn in (geometry.depthwise_conv2d_geometry,):
        with pytest.raises(ValueError, match=r"strides and dilations cannot both be greater than 1 for a depthwise "
                                             r"or separable convolution \(TF and TF.js refuse it too"):
            fn((1, 9, 9, 2), (3, 3, 2, 1), strides=2, dilations=2)
    with pytest.raises(ValueError, match="strides and dilations cannot both be greater than 1 for a depthwise"):
        oracle.separable_conv2d(np.ones((1, 9, 9, 2)), np.ones((3, 3, 2, 1)), np.ones((1, 1, 2, 3)), strides=2,
                                dilations=2)


# ---------------------------------------------------------------------------
# argument errors, named

X4, W4, DY4 = np.ones((2, 8, 8, 3)), np.ones((3, 3, 3, 4)), np.ones((2, 4, 4, 4))  # SAME, stride 2
XD, FD_, DYD = np.ones((1, 6, 6, 2)), np.ones((3, 3, 2, 2)), np.ones((1, 6, 6, 4))
X5, W5, DY5 = np.ones((1, 4, 4, 4, 2)), np.ones((2, 2, 2, 2, 3)), np.ones((1, 3, 3, 3, 3))


def _bpi(**kw: Any) -> np.ndarray:
    args = {"input_shape": X4.shape, "filter": W4, "dy": DY4, "strides": 2, "padding": "SAME", **kw}
    return oracle.conv2d_backprop_input(**args)


def _bpf(**kw: Any) -> np.ndarray:
    args = {"x": X4, "filter_shape": W4.shape, "dy": DY4, "strides": 2, "padding": "SAME", **kw}
    return oracle.conv2d_backprop_filter(**args)


def _transpose(**kw: Any) -> np.ndarray:
    args = {"x": DY4, "filter": W4, "output_shape": X4.shape, "strides": 2, "padding": "SAME", **kw}
    return oracle.conv2d_transpose(**args)


def _dw_bpi(**kw: Any) -> np.ndarray:
    args = {"input_shape": XD.shape, "filter": FD_, "dy": DYD, "padding": "SAME", **kw}
    return oracle.depthwise_conv2d_backprop_input(**args)


def _dw_bpf(**kw: Any) -> np.ndarray:
    args = {"x": XD, "filter_shape": FD_.shape, "dy": DYD, "padding": "SAME", **kw}
    return oracle.depthwise_conv2d_backprop_filter(**args)


def _conv3d(**kw: Any) -> np.ndarray:
    args = {"x": X5, "filter": W5, **kw}
    return oracle.conv3d(**args)


def _bpi3(**kw: Any) -> np.ndarray:
    args = {"input_shape": X5.shape, "filter": W5, "dy": DY5, **kw}
    return oracle.conv3d_backprop_input(**args)


def _bpf3(**kw: Any) -> np.ndarray:
    args = {"x": X5, "filter_shape": W5.shape, "dy": DY5, **kw}
    return oracle.conv3d_backprop_filter(**args)


def _transpose3(**kw: Any) -> np.ndarray:
    args = {"x": DY5, "filter": W5, "output_shape": X5.shape, **kw}
    return oracle.conv3d_transpose(**args)


ERROR_CASES = [
    # dy (x) against the forward convolution's output
    (_bpi, {"dy": np.ones((2, 5, 4, 4))}, ValueError,
     r"dy must have shape \(2, 4, 4, 4\), got shape \(2, 5, 4, 4\): the forward convolution of input_shape "
     r"\(2, 8, 8, 3\) by a filter \(3, 3, 3, 4\) with strides \(2, 2\), dilations \(1, 1\) and SAME padding"),
    (_bpi, {"dy": np.ones((3, 4, 4, 4))}, ValueError, r"dy must have shape \(2, 4, 4, 4\), got shape \(3, 4, 4, 4\)"),
    (_transpose, {"output_shape": (2, 10, 8, 3)}, ValueError,
     r"x must have shape \(2, 5, 4, 4\), got shape \(2, 4, 4, 4\): .* \(output_shape is inconsistent with x's "
     r"shape under these strides and padding\)"),
    (_transpose, {"padding": "VALID"}, ValueError, r"x must have shape \(2, 3, 3, 4\)"),
    (_bpf, {"dy": np.ones((2, 4, 4, 4)), "strides": 1}, ValueError, r"dy must have shape \(2, 8, 8, 4\)"),
    (_dw_bpi, {"strides": 2}, ValueError, r"dy must have shape \(1, 3, 3, 4\), got shape \(1, 6, 6, 4\)"),
    (_bpi3, {"strides": 2}, ValueError, r"dy must have shape \(1, 2, 2, 2, 3\), got shape \(1, 3, 3, 3, 3\)"),
    (_transpose3, {"output_shape": (1, 5, 4, 4, 2)}, ValueError,
     r"x must have shape \(1, 4, 3, 3, 3\), got shape \(1, 3, 3, 3, 3\).*output_shape is inconsistent"),
    # channels
    (_bpi, {"input_shape": (2, 8, 8, 5)}, ValueError,
     r"filter's in_channels \(dimension 2, 3\) must equal input_shape's channels \(5\)"),
    (_bpi, {"dy": np.ones((2, 4, 4, 2))}, ValueError,
     r"dy's channels \(2\) must equal filter's out_channels \(dimension 3, 4\)"),
    (_bpf, {"filter_shape": (3, 3, 2, 4)}, ValueError,
     r"filter_shape's in_channels \(dimension 2, 2\) must equal x's channels \(3\)"),
    (_bpf, {"filter_shape": (3, 3, 3, 5)}, ValueError,
     r"dy's channels \(4\) must equal filter_shape's out_channels \(dimension 3, 5\)"),
    (_transpose, {"filter": np.ones((3, 3, 3, 5))}, ValueError,
     r"x's channels \(4\) must equal filter's in_channels \(dimension 3, 5\)"),
    (_transpose, {"output_shape": (2, 8, 8, 6)}, ValueError,
     r"filter's out_channels \(dimension 2, 3\) must equal output_shape's channels \(6\)"),
    (_dw_bpi, {"dy": np.ones((1, 6, 6, 3))}, ValueError,
     r"dy's channels \(3\) must equal in_channels \* channel_multiplier = 2 \* 2 = 4 for a depthwise"),
    (_dw_bpf, {"filter_shape": (3, 3, 3, 2)}, ValueError,
     r"filter_shape's in_channels \(dimension 2, 3\) must equal x's channels \(2\)"),
    (_bpi3, {"filter": np.ones((2, 2, 2, 3, 3))}, ValueError,
     r"filter's in_channels \(dimension 3, 3\) must equal input_shape's channels \(2\)"),
    (_conv3d, {"filter": np.ones((2, 2, 2, 3, 3))}, ValueError,
     r"filter's in_channels \(dimension 3, 3\) must equal x's channels \(2\)"),
    (_conv3d, {"data_format": "NCDHW"}, ValueError, r"filter's in_channels \(dimension 3, 2\) must equal x's "
                                                    r"channels \(4\)"),
    # shape arguments
    (_bpi, {"input_shape": (8, 8)}, ValueError,
     r"input_shape must have 3 or 4 entries \(\[batch, height, width, channels\] or \[height, width, channels\]\)"),
    (_bpi, {"input_shape": "2x8x8x3"}, TypeError, r"input_shape must be a list or tuple of 3 or 4 ints"),
    (_bpi, {"input_shape": (2, 8.0, 8, 3)}, TypeError, r"input_shape must be a list or tuple of 3 or 4 ints"),
    (_bpi, {"input_shape": 8}, TypeError, r"input_shape must be a list or tuple"),
    (_bpi, {"input_shape": (2, 0, 8, 3)}, ValueError, r"input_shape must hold positive sizes"),
    (_bpf, {"filter_shape": (3, 3, 3)}, ValueError, r"filter_shape must have 4 entries \(\[filter_height, "
                                                    r"filter_width, in_channels, out_channels\]\)"),
    (_bpf, {"filter_shape": None}, TypeError, r"filter_shape must be a list or tuple of 4 ints"),
    (_bpf, {"filter_shape": (3, -3, 3, 4)}, ValueError, r"filter_shape must hold positive sizes"),
    (_transpose, {"output_shape": [9, 8, 3]}, ValueError, r"x must have shape \(2, 5, 4, 4\)"),  # batch from x
    (_transpose, {"output_shape": np.array([8, 8, 3, 1, 1])}, ValueError, r"output_shape must have 3 or 4 entries"),
    (_transpose3, {"output_shape": (4, 4, 4)}, ValueError, r"output_shape must have 4 or 5 entries"),
    (_bpf3, {"filter_shape": (2, 2, 2, 3)}, ValueError, r"filter_shape must have 5 entries \(\[filter_depth, "),
    # batch dimensions
    (_transpose, {"x": np.ones((4, 4, 4))}, ValueError,
     r"output_shape \(2, 8, 8, 3\) has a batch of 2, but x of shape \(4, 4, 4\) has no batch dimension"),
    (_bpf, {"dy": np.ones((4, 4, 4))}, ValueError,
     r"x and dy must both have the batch dimension or both leave it out, got x shape \(2, 8, 8, 3\) and dy shape "
     r"\(4, 4, 4\)"),
    # tensors
    (_bpi, {"dy": np.ones((4, 4))}, ValueError, r"dy must be rank 3 or 4"),
    (_bpi, {"filter": np.ones((3, 3, 3))}, ValueError,
     r"filter must be rank 4 \(\[filter_height, filter_width, in_channels, out_channels\]\)"),
    (_transpose, {"filter": np.ones((3, 3, 3))}, ValueError,
     r"filter must be rank 4 \(\[filter_height, filter_width, out_channels, in_channels\]\)"),
    (_bpf, {"x": np.ones((2, 8, 8, 3), dtype=np.int32)}, TypeError, r"x must have a floating-point dtype"),
    (_transpose, {"x": "x"}, TypeError, r"x must be a NumPy array of floats, got str"),
    (_conv3d, {"x": np.ones((4, 4, 2))}, ValueError, r"x must be rank 4 or 5 \(\[batch, depth, height, width, "
                                                     r"channels\] or \[depth, height, width, channels\]\)"),
    (_conv3d, {"filter": np.ones((2, 2, 2, 3))}, ValueError, r"filter must be rank 5 \(\[filter_depth, "),
    (_transpose3, {"filter": np.ones((2, 2, 2, 3))}, ValueError,
     r"filter must be rank 5 \(\[filter_depth, filter_height, filter_width, out_channels, in_channels\]\)"),
    (_conv3d, {"x": np.ones((1, 4, 0, 4, 2))}, ValueError, r"x must not have an empty dimension"),
    # strides, dilations, padding, data format
    (_dw_bpi, {"strides": 2, "dilations": 2}, ValueError,
     r"strides and dilations cannot both be greater than 1 for a depthwise or separable convolution"),
    (_dw_bpf, {"strides": (1, 2), "dilations": (2, 1)}, ValueError, r"cannot both be greater than 1 for a depthwise"),
    (_bpi, {"strides": 0}, ValueError, r"strides must be positive integers, got 0"),
    (_bpf, {"dilations": 1.5}, TypeError, r"dilations must be a positive int"),
    (_bpi, {"data_format": "NDHWC"}, ValueError, r"data_format must be 'NHWC' or 'NCHW'"),
    (_bpi, {"padding": "FULL"}, ValueError, r"padding must be 'SAME', 'VALID', an int or explicit pads"),
    (_bpi, {"padding": 1, "dim_rounding_mode": "up"}, ValueError, r"dim_rounding_mode must be one of"),
    (_bpi, {"method": "fast"}, ValueError, r"method must be one of"),
    (_conv3d, {"data_format": "NHWC"}, ValueError, r"data_format must be 'NDHWC' or 'NCDHW' for a 3-D convolution"),
    (_conv3d, {"strides": (1, 2)}, TypeError, r"strides must be a positive int, a \(d, h, w\) triple of ints or "
                                              r"a 5-list of ints"),
    (_conv3d, {"strides": [2, 1, 1, 1, 1]}, ValueError, r"strides as a 5-list must be \[1, d, h, w, 1\] for NDHWC"),
    (_conv3d, {"dilations": [1, 2, 1, 1, 1], "data_format": "NCDHW", "x": np.ones((1, 2, 4, 4, 4))}, ValueError,
     r"dilations as a 5-list must be \[1, 1, d, h, w\] for NCDHW"),
    (_conv3d, {"dilations": (1, 0, 1)}, ValueError, r"dilations must be positive integers"),
    (_conv3d, {"padding": [[1, 1], [1, 1]]}, ValueError,
     r"explicit padding must be \[\[front, back\], \[top, bottom\], \[left, right\]\] or TF's 5x2 list"),
    (_conv3d, {"padding": [[1, 0], [0, 0], [0, 0], [0, 0], [0, 0]]}, ValueError,
     r"explicit padding may only pad the spatial dimensions"),
    (_conv3d, {"padding": [[0, 1], [0, 0], [-1, 0]]}, ValueError, r"explicit padding must be non-negative"),
    (_conv3d, {"padding": "SAME", "dim_rounding_mode": "ceil"}, ValueError,
     r"padding must be an integer when dim_rounding_mode is given"),
    (_conv3d, {"filter": np.ones((5, 2, 2, 2, 3))}, ValueError,
     r"the filter \(effective size 5x2x2 after dilation\) does not fit in the padded input \(4x4x4\)"),
    (_bpf3, {"dy": np.ones((1, 3, 3, 3))}, ValueError, r"x and dy must both have the batch dimension"),
    (_bpi3, {"data_format": "NCHW"}, ValueError, r"data_format must be 'NDHWC' or 'NCDHW'"),
    # bias (broadcasting) and the epilogue of conv2d_transpose
    (_transpose, {"bias": np.ones(4)}, ValueError,
     r"bias must have one value per output channel, shape \(3,\), got shape \(4,\), which does not broadcast to "
     r"the output shape \(2, 8, 8, 3\) either"),
    (_transpose, {"bias": np.ones((3, 8, 1))}, ValueError, r"got shape \(3, 8, 1\), which does not broadcast"),
    (_transpose, {"bias": np.ones((1, 1, 1, 1, 3))}, ValueError, r"bias must be rank"),
    (_transpose, {"activation": "tanh"}, ValueError, r"activation must be one of"),
    (_transpose, {"activation": "prelu"}, ValueError, r"prelu_weights"),
    (_transpose, {"activation": "prelu", "prelu_weights": np.ones(4)}, ValueError,
     r"prelu_weights of shape \(4,\) do not broadcast to the output shape \(2, 8, 8, 3\)"),
    (_transpose, {"activation": "leakyrelu", "leakyrelu_alpha": "0.2"}, TypeError,
     r"leakyrelu_alpha must be a finite real number"),
]


@pytest.mark.parametrize("fn, kwargs, error, pattern", ERROR_CASES,
                         ids=[f"{fn.__name__}-{i}" for i, (fn, *_) in enumerate(ERROR_CASES)])
def test_argument_errors(fn, kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        fn(**kwargs)


def test_valid_error_fixtures():
    # the fixtures of ERROR_CASES are valid calls
    for fn in (_bpi, _bpf, _transpose, _dw_bpi, _dw_bpf, _conv3d, _bpi3, _bpf3, _transpose3):
        assert np.isfinite(fn()).all()


# ---------------------------------------------------------------------------
# conv2d on the GPU with a stride and a dilation both above 1

GPU_CASES: list[Case] = [
    ((1, 11, 11, 3), (3, 3, 3, 4), {"strides": 2, "dilations": 2}),
    ((2, 13, 12, 5), (3, 2, 5, 6), {"strides": (2, 3), "dilations": (3, 2), "padding": "SAME"}),
    ((1, 12, 10, 8), (2, 3, 8, 4), {"strides": [1, 3, 2, 1], "dilations": [1, 2, 2, 1],
                                    "padding": [[1, 2], [0, 3]]}),
    ((1, 9, 9, 2), (3, 3, 2, 3), {"strides": 2, "dilations": 2, "padding": 2, "dim_rounding_mode": "ceil"}),
    ((1, 6, 11, 11), (3, 3, 6, 5), {"strides": 2, "dilations": 2, "padding": "SAME", "data_format": "NCHW"}),
    ((10, 10, 4), (2, 2, 4, 4), {"strides": 3, "dilations": 4}),  # rank 3
]


@pytest.mark.parametrize("algorithm", ["direct", "packed"])
@pytest.mark.parametrize("x_shape, w_shape, kwargs", GPU_CASES, ids=_ids(GPU_CASES))
def test_gpu_conv2d_with_stride_and_dilation(runtime, x_shape, w_shape, kwargs, algorithm):
    rng = seed(x_shape, w_shape)
    x = rng.uniform(-1, 1, x_shape).astype(np.float32)
    w = rng.uniform(-1, 1, w_shape).astype(np.float32)
    expected = oracle.conv2d(x, w, **kwargs)
    assert_close(gpuconv.conv2d(x, w, algorithm=algorithm, **kwargs), expected)
    b = rng.uniform(-1, 1, w_shape[3]).astype(np.float32)
    assert_close(gpuconv.conv2d(x, w, algorithm=algorithm, bias=b, activation="relu6", **kwargs),
                 oracle.conv2d(x, w, bias=b, activation="relu6", **kwargs))


def test_gpu_grouped_conv2d_and_adapters_with_stride_and_dilation(runtime):
    rng = np.random.default_rng(23)
    x = rng.uniform(-1, 1, (1, 4, 11, 10)).astype(np.float32)
    w = rng.uniform(-1, 1, (6, 2, 3, 2)).astype(np.float32)  # PyTorch layout, groups 2
    b = rng.uniform(-1, 1, 6).astype(np.float32)
    kwargs = {"stride": (2, 3), "padding": (1, 2), "dilation": 2, "groups": 2}
    assert_close(gt.conv2d(x, w, b, **kwargs), gt.conv2d_oracle(x, w, b, **kwargs))
    layer = caffe.Convolution(num_output=6, kernel_h=3, kernel_w=2, stride_h=2, stride_w=3, pad_h=1, pad_w=2,
                              dilation=2, group=2, weight=w, bias=b)
    assert_close(layer(x), layer.forward_oracle(x))
    tf_filter = w.transpose(2, 3, 1, 0)
    assert_close(gpuconv.conv2d(x, tf_filter, strides=(2, 3), dilations=2, padding=[[1, 1], [2, 2]],
                                data_format="NCHW", groups=2, algorithm="direct"),
                 gt.conv2d_oracle(x, w, None, **kwargs))


def test_every_tap_position_is_covered():
    # a sanity check of _taps: with a ones dy every input position gets the number of
    # (output, tap) pairs that read it, counted here by brute force
    cases: list[dict[str, Any]] = [{"strides": 2, "dilations": 2, "padding": "SAME"},
                                   {"strides": 3, "padding": 1, "dim_rounding_mode": "ceil"}]
    for kwargs in cases:
        x_shape, f_shape = (1, 7, 8, 1), (3, 2, 1, 1)
        g = geometry.conv2d_geometry(x_shape, f_shape, **kwargs)
        counts = np.zeros(x_shape)
        for i, j, di, dj in itertools.product(range(g.out_height), range(g.out_width), range(3), range(2)):
            r = i * g.stride_height + di * g.dilation_height - g.pad_top
            c = j * g.stride_width + dj * g.dilation_width - g.pad_left
            if 0 <= r < 7 and 0 <= c < 8:
                counts[0, r, c, 0] += 1
        dx = oracle.conv2d_backprop_input(x_shape, np.ones(f_shape), np.ones(g.out_shape), **kwargs)
        assert_array_equal(dx, counts)


def test_zz_largest_differences_summary():
    """Print the largest relative differences the tests above saw (run with -s)."""
    if LARGEST:
        width = max(map(len, LARGEST))
        print("\nlargest relative differences (max abs error / largest magnitude):")
        for name, error in sorted(LARGEST.items()):
            print(f"  {name:<{width}}  {error:.2e}")
