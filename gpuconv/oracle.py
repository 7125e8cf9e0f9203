"""Float64 NumPy references for the convolutions, in TensorFlow / TF.js semantics.

Every function validates its tensors, takes its sizes and pads from
:func:`gpuconv.geometry.conv2d_geometry` (never recomputing them), computes in
float64 and returns a float64 array.

Layouts (as in ``tf.nn`` and TF.js):

* ``x`` is ``[N, H, W, C]`` (``"NHWC"``) or ``[N, C, H, W]`` (``"NCHW"``); a rank-3
  ``x`` without the batch dimension gives a rank-3 result;
* a convolution filter is ``[FH, FW, inC / groups, outC]`` whatever the data format;
* a depthwise filter is ``[FH, FW, inC, multiplier]`` and output channel
  ``k * multiplier + q`` is input channel ``k`` convolved with ``filter[:, :, k, q]``;
* ``out[b, i, j, k] = sum_{di, dj, q} x[b, sh*i + dh*di - pad_top,
  sw*j + dw*dj - pad_left, q] * filter[di, dj, q, k]``, where taps outside the
  input contribute nothing (zero padding).

Two implementations are selected by ``method``: ``"reference"`` is a plain loop
that reads like the formula above (slow: tiny shapes only), ``"vectorized"``
(the default) zero-pads, builds strided windows and hands the contraction to
BLAS (im2col + matmul).  Both propagate NaN and infinity as a plain sum of
products over the taps inside the input does: when the filter holds a
non-finite value, the vectorized path does not pad (``0 * inf`` would be NaN)
but accumulates each tap over the outputs whose input position is inside.

After the convolution an optional ``bias`` (shape ``[outC]``, on the channel axis)
is added, then an optional ``residual`` (the output's shape), and an activation applied
(:func:`apply_activation`), as TF.js's fused ops do (the residual, and the activations
after ``"prelu"`` in :data:`~gpuconv.arguments.ACTIVATIONS`, are gpuconv's own).
"""

from __future__ import annotations

import functools
import inspect
import itertools
import math
import numbers
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, List, Mapping, Optional, Sequence, Tuple, TypeVar, cast

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

from .arguments import (
    ACTIVATIONS,
    as_tensor,
    check_alpha,
    check_bias,
    check_prelu_weights,
    check_residual,
    normalize_activation,
)
from .geometry import (
    Conv2DGeometry,
    Conv3DGeometry,
    IntsLike,
    PaddingLike,
    ShapeLike,
    conv2d_backprop_filter_geometry,
    conv2d_backprop_input_geometry,
    conv2d_geometry,
    conv2d_transpose_geometry,
    conv3d_backprop_filter_geometry,
    conv3d_backprop_input_geometry,
    conv3d_geometry,
    conv3d_transpose_geometry,
    depthwise_conv2d_backprop_filter_geometry,
    depthwise_conv2d_backprop_input_geometry,
    normalize_data_format,
    normalize_data_format_3d,
    normalize_padding_1d,
)
from .storage import FLOAT16_MAX, FLOAT16_UNIT_ROUNDOFF, check_storage

__all__ = [
    "METHODS",
    "apply_activation",
    "compare",
    "conv1d",
    "conv2d",
    "conv2d_backprop_filter",
    "conv2d_backprop_input",
    "conv2d_transpose",
    "conv3d",
    "conv3d_backprop_filter",
    "conv3d_backprop_input",
    "conv3d_transpose",
    "depthwise_conv2d",
    "depthwise_conv2d_backprop_filter",
    "depthwise_conv2d_backprop_input",
    "separable_conv2d",
    "relative_error",
    "float16_error_bound",
    "float16_prediction_tolerance",
    "float16_overflows",
]

#: The implementations that ``method=`` selects.
METHODS = ("vectorized", "reference")

_X_LAYOUTS = {
    "NHWC": "[batch, height, width, channels] or [height, width, channels]",
    "NCHW": "[batch, channels, height, width] or [channels, height, width]",
}
_CONV_FILTER_LAYOUT = "[filter_height, filter_width, in_channels / groups, out_channels]"
_DEPTHWISE_FILTER_LAYOUT = "[filter_height, filter_width, in_channels, channel_multiplier]"


# ---------------------------------------------------------------------------
# argument handling


def _check_method(method: object) -> str:
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(map(repr, METHODS))}, got {method!r}")
    return method


def _prepare(x, filter, strides, padding, data_format, dilations, dim_rounding_mode,
             groups, depthwise):
    """Validate the tensors; return ``(x4, filter, geometry, batched)``.

    ``x4`` is rank 4 in ``data_format`` (a batch of one added to a rank-3 ``x``)
    and both arrays are float64.
    """
    data_format = normalize_data_format(data_format)
    x = as_tensor(x, "x", ranks=(3, 4), layout=_X_LAYOUTS[data_format])
    filter_layout = _DEPTHWISE_FILTER_LAYOUT if depthwise else _CONV_FILTER_LAYOUT
    f = as_tensor(filter, "filter", ranks=(4,), layout=filter_layout)
    batched = x.ndim == 4
    if not batched:
        x = x[np.newaxis]
    geometry = conv2d_geometry(x.shape, f.shape, strides, padding, data_format, dilations,
                               dim_rounding_mode, groups=groups, depthwise=depthwise)
    return x.astype(np.float64), f.astype(np.float64), geometry, batched


def _result_shape(geometry: Conv2DGeometry, batched: bool) -> Tuple[int, ...]:
    shape = geometry.out_shape
    return shape if batched else shape[1:]


def _channel_axis(data_format: str) -> int:
    """The channel axis as a negative index (the same with or without the batch dimension)."""
    return -1 if data_format.endswith("C") else -(len(data_format) - 1)


def _prelu_broadcastable(weights, out_shape, channel_axis):
    """PReLU weights (checked) in a shape that broadcasts against the output."""
    weights, per_channel = check_prelu_weights(weights, out_shape, channel_axis)
    if per_channel:
        shape = [1] * len(out_shape)
        shape[channel_axis] = weights.shape[0]
        weights = weights.reshape(shape)
    return weights.astype(np.float64)


class _Epilogue:
    """Bias and activation, validated before the convolution runs.

    ``out_shape`` is the result's shape, ``channel_axis`` its (negative) channel axis.
    With ``broadcast_bias`` the bias may be anything that broadcasts to the output
    (TF.js's fused ops); otherwise exactly ``[out_channels]``, as the GPU programs take it.
    """

    def __init__(self, out_shape: Sequence[int], channel_axis: int, out_channels: int, bias: Any,
                 activation: Optional[str], leakyrelu_alpha: Optional[float], prelu_weights: Any, *,
                 broadcast_bias: bool = False, residual: Any = None) -> None:
        self.activation = normalize_activation(activation)
        self.channel_axis = channel_axis
        if broadcast_bias:
            bias = check_bias(bias, out_channels, out_shape=out_shape, channel_axis=channel_axis)
        else:
            bias = check_bias(bias, out_channels)
        self.bias = None if bias is None else bias.astype(np.float64)
        residual = check_residual(residual, out_shape)
        self.residual = None if residual is None else residual.astype(np.float64)
        if leakyrelu_alpha is not None and self.activation != "leakyrelu":  # as gpuconv's ops refuse it
            raise ValueError(f"leakyrelu_alpha is only used with activation='leakyrelu', "
                             f"got activation={self.activation!r}")
        self.alpha = check_alpha(0.2 if leakyrelu_alpha is None else leakyrelu_alpha)
        self.prelu = None
        if self.activation == "prelu":
            self.prelu = _prelu_broadcastable(prelu_weights, out_shape, self.channel_axis)

    @classmethod
    def of(cls, geometry: Conv2DGeometry, batched: bool, bias: Any, activation: Optional[str],
           leakyrelu_alpha: Optional[float], prelu_weights: Any, residual: Any = None) -> _Epilogue:
        """The epilogue of a forward convolution (a bias that broadcasts to the output, as TF.js's fused ops)."""
        return cls(_result_shape(geometry, batched), _channel_axis(geometry.data_format), geometry.out_channels,
                   bias, activation, leakyrelu_alpha, prelu_weights, broadcast_bias=True, residual=residual)

    def __call__(self, y):
        if self.bias is not None:
            if self.bias.ndim == 1:  # one value per channel, on the channel axis
                shape = [1] * y.ndim
                shape[self.channel_axis] = self.bias.shape[0]
                y = y + self.bias.reshape(shape)
            else:  # already broadcast to the output's shape
                y = y + self.bias
        if self.residual is not None:
            y = y + self.residual
        return _activate(y, self.activation, self.alpha, self.prelu)


def apply_activation(y, activation, leakyrelu_alpha=None, prelu_weights=None, *, channel_axis=-1):
    """Apply a TF.js fused activation to ``y`` (float64 result).

    ``"linear"`` (or ``None``): ``y``; ``"relu"``: ``max(0, y)``; ``"relu6"``:
    ``min(max(0, y), 6)``; ``"elu"``: ``y > 0 ? y : exp(y) - 1``; ``"sigmoid"``:
    ``1 / (1 + exp(-y))``; ``"leakyrelu"``: ``y < 0 ? alpha * y : y``;
    ``"prelu"``: ``y < 0 ? w * y : y`` where ``prelu_weights`` ``w`` is either one
    weight per channel (shape ``[y.shape[channel_axis]]``, applied on
    ``channel_axis``) or any array broadcastable to ``y``; ``"swish"``: ``y * sigmoid(y)``
    (PyTorch's SiLU); ``"hard_sigmoid"``: ``relu6(y + 3) / 6`` (PyTorch's Hardsigmoid, Keras 3's
    hard_sigmoid; not Keras 2's ``0.2 y + 0.5``); ``"hard_swish"``: ``y * relu6(y + 3) / 6``;
    ``"gelu"``: ``y * (1 + erf(y / sqrt 2)) / 2`` (exact, PyTorch's default); ``"gelu_tanh"``:
    ``y * (1 + tanh(sqrt(2 / pi) (y + 0.044715 y^3))) / 2``.  NaN propagates; at -inf swish,
    hard_swish, gelu and gelu_tanh give their limit 0 (not ``-inf * 0``).
    ``leakyrelu_alpha`` (default 0.2) and ``prelu_weights`` are ignored by the other
    activations, as in TF.js (the convolutions refuse them instead).
    """
    activation = normalize_activation(activation)
    y = as_tensor(y, "y", ranks=tuple(range(33))).astype(np.float64)
    alpha = check_alpha(0.2 if leakyrelu_alpha is None else leakyrelu_alpha)
    weights = None
    if activation == "prelu":
        if y.ndim == 0:
            raise ValueError("prelu needs a y of rank 1 or more to find the channel axis")
        weights = _prelu_broadcastable(prelu_weights, y.shape, channel_axis % y.ndim)
    return _activate(y, activation, alpha, weights)


_erf = np.frompyfunc(math.erf, 1, 1)


def _gelu(y: np.ndarray) -> np.ndarray:
    return 0.5 * y * (1.0 + np.asarray(_erf(y / np.sqrt(2.0)), dtype=np.float64))


#: The activations that multiply y by a gate (0 at -inf): computed in float64 here, and their -inf
#: limit set by _activate.
_SMOOTH: dict = {
    "swish": lambda y: y / (1.0 + np.exp(-y)),
    "hard_sigmoid": lambda y: np.minimum(np.maximum(y + 3.0, 0.0), 6.0) / 6.0,
    "hard_swish": lambda y: y * (np.minimum(np.maximum(y + 3.0, 0.0), 6.0) / 6.0),
    "gelu": _gelu,
    "gelu_tanh": lambda y: 0.5 * y * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (y + 0.044715 * y ** 3))),
}


def _activate(y, activation, alpha, prelu_weights):
    if activation == "linear":
        return y
    if activation == "relu":
        return np.maximum(y, 0.0)  # np.maximum propagates NaN
    if activation == "relu6":
        return np.minimum(np.maximum(y, 0.0), 6.0)
    if activation == "elu":
        with np.errstate(under="ignore"):
            return np.where(y > 0, y, np.expm1(np.minimum(y, 0.0)))
    if activation == "sigmoid":
        with np.errstate(over="ignore", under="ignore"):
            return 1.0 / (1.0 + np.exp(-y))
    if activation == "leakyrelu":
        return np.where(y < 0, alpha * y, y)
    if activation == "prelu":
        return np.where(y < 0, prelu_weights * y, y)
    if activation in _SMOOTH:
        with np.errstate(over="ignore", under="ignore", invalid="ignore"):
            result = _SMOOTH[activation](y)
        return np.where(y == -np.inf, 0.0, result)  # the limit, where the formula gives -inf * 0
    raise AssertionError(f"unhandled activation {activation!r} (known: {ACTIVATIONS})")


# ---------------------------------------------------------------------------
# layouts


def _to_nhwc(x4, data_format):
    return x4 if data_format == "NHWC" else x4.transpose(0, 2, 3, 1)


def _from_nhwc(y4, data_format, batched):
    if data_format == "NCHW":
        y4 = y4.transpose(0, 3, 1, 2)
    y4 = np.ascontiguousarray(y4)
    return y4 if batched else y4[0]


# ---------------------------------------------------------------------------
# the reference: plain loops over the formula


def _reference_nhwc(x: np.ndarray, f: np.ndarray, g: Conv2DGeometry) -> np.ndarray:
    """``out[b, i, j, k]`` as a sum over the taps inside the input (NHWC in and out)."""
    xs, fs = x.tolist(), f.tolist()
    cg, ocg, mult = g.in_channels_per_group, g.out_channels_per_group, g.channel_multiplier
    out = np.zeros((g.batch, g.out_height, g.out_width, g.out_channels))
    for b in range(g.batch):
        for i in range(g.out_height):
            for j in range(g.out_width):
                for k in range(g.out_channels):
                    acc = 0.0
                    for di in range(g.filter_height):
                        r = i * g.stride_height + di * g.dilation_height - g.pad_top
                        if not 0 <= r < g.in_height:
                            continue
                        for dj in range(g.filter_width):
                            c = j * g.stride_width + dj * g.dilation_width - g.pad_left
                            if not 0 <= c < g.in_width:
                                continue
                            pixel, taps = xs[b][r][c], fs[di][dj]
                            if g.depthwise:
                                channel, q = divmod(k, mult)
                                acc += pixel[channel] * taps[channel][q]
                            else:
                                first = (k // ocg) * cg
                                for q in range(cg):
                                    acc += pixel[first + q] * taps[q][k]
                    out[b, i, j, k] = acc
    return out


# ---------------------------------------------------------------------------
# the vectorized implementation


def _padded_windows(x: np.ndarray, g: Conv2DGeometry) -> np.ndarray:
    """The padded NHWC input as a window view ``[N, OH, OW, FH, FW, C]`` (no copy).

    ``view[b, i, j, di, dj, c]`` is ``x[b, sh*i + dh*di - pad_top, sw*j + dw*dj - pad_left, c]``,
    zero outside the input.  Pads come from ``g.window_pads``.
    """
    (top, bottom), (left, right) = g.window_pads
    # np.pad copies even when there is nothing to pad; VALID and 1x1 convolutions skip it.
    padded = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0))) if top or bottom or left or right else x
    eff_h, eff_w = g.effective_filter_height, g.effective_filter_width
    windows = sliding_window_view(padded, (eff_h, eff_w), axis=(1, 2))  # [N, ., ., C, effH, effW]
    windows = windows[:, ::g.stride_height, ::g.stride_width, :, ::g.dilation_height, ::g.dilation_width]
    windows = windows[:, :g.out_height, :g.out_width]
    expected = (g.batch, g.out_height, g.out_width, g.in_channels, g.filter_height, g.filter_width)
    if windows.shape != expected:  # geometry.window_pads did not cover every window
        raise AssertionError(f"window view {windows.shape} != {expected} for {g}")
    return windows.transpose(0, 1, 2, 4, 5, 3)


def _conv_windows(x: np.ndarray, f: np.ndarray, g: Conv2DGeometry) -> np.ndarray:
    """Grouped convolution as im2col + (batched) matmul, NHWC in and out."""
    groups, cg, ocg = g.groups, g.in_channels_per_group, g.out_channels_per_group
    rows = g.batch * g.out_height * g.out_width
    depth = g.filter_height * g.filter_width * cg
    windows = _padded_windows(x, g)
    if groups == 1:
        y = windows.reshape(rows, depth) @ f.reshape(depth, g.out_channels)
        return y.reshape(g.batch, g.out_height, g.out_width, g.out_channels)
    cols = windows.reshape(g.batch, g.out_height, g.out_width, g.filter_height, g.filter_width,
                           groups, cg)
    cols = cols.transpose(5, 0, 1, 2, 3, 4, 6).reshape(groups, rows, depth)
    weights = f.reshape(g.filter_height, g.filter_width, cg, groups, ocg)
    weights = weights.transpose(3, 0, 1, 2, 4).reshape(groups, depth, ocg)
    y = np.matmul(cols, weights)  # [G, rows, OCg]
    return y.transpose(1, 0, 2).reshape(g.batch, g.out_height, g.out_width, g.out_channels)


def _depthwise_windows(x: np.ndarray, f: np.ndarray, g: Conv2DGeometry) -> np.ndarray:
    """Depthwise convolution as an einsum over each channel's windows, NHWC in and out."""
    # Without a multiplier, einsum's own loop beats its BLAS path (measured); with one, not.
    y = np.einsum("nhwijc,ijcm->nhwcm", _padded_windows(x, g), f,
                  optimize=g.channel_multiplier > 1)
    return y.reshape(g.batch, g.out_height, g.out_width, g.out_channels)


def _tap_range(out_size, in_size, stride, offset):
    """Outputs ``o`` whose input ``o*stride + offset`` is inside ``[0, in_size)``.

    Returns ``(output slice, input slice)`` or ``None`` when there are none.
    """
    first = max(0, -(offset // stride))
    stop = min(out_size, (in_size - 1 - offset) // stride + 1)
    if first >= stop:
        return None
    start = first * stride + offset
    return slice(first, stop), slice(start, start + (stop - first - 1) * stride + 1, stride)


def _tapwise(x: np.ndarray, g: Conv2DGeometry,
             tap_product: Callable[[np.ndarray, int, int], np.ndarray]) -> np.ndarray:
    """Sum over taps of ``tap_product(x_slice, di, dj)`` on the outputs where the tap is inside.

    No padding: exact when the filter holds inf or NaN (``0 * inf`` never happens).
    """
    out = np.zeros((g.batch, g.out_height, g.out_width, g.out_channels))
    for di in range(g.filter_height):
        rows = _tap_range(g.out_height, g.in_height, g.stride_height,
                          di * g.dilation_height - g.pad_top)
        if rows is None:
            continue
        for dj in range(g.filter_width):
            cols = _tap_range(g.out_width, g.in_width, g.stride_width,
                              dj * g.dilation_width - g.pad_left)
            if cols is None:
                continue
            out[:, rows[0], cols[0], :] += tap_product(x[:, rows[1], cols[1], :], di, dj)
    return out


def _conv_tapwise(x: np.ndarray, f: np.ndarray, g: Conv2DGeometry) -> np.ndarray:
    groups, cg, ocg = g.groups, g.in_channels_per_group, g.out_channels_per_group

    def product(xs, di, dj):
        if groups == 1:
            return xs @ f[di, dj]
        grouped = xs.reshape(-1, groups, cg).transpose(1, 0, 2)  # [G, pixels, Cg]
        weights = f[di, dj].reshape(cg, groups, ocg).transpose(1, 0, 2)  # [G, Cg, OCg]
        y = np.matmul(grouped, weights)  # [G, pixels, OCg]
        return y.transpose(1, 0, 2).reshape(xs.shape[:3] + (g.out_channels,))

    return _tapwise(x, g, product)


def _depthwise_tapwise(x: np.ndarray, f: np.ndarray, g: Conv2DGeometry) -> np.ndarray:
    def product(xs, di, dj):
        return (xs[..., None] * f[di, dj]).reshape(xs.shape[:3] + (g.out_channels,))

    return _tapwise(x, g, product)


def _convolve(x4: np.ndarray, f: np.ndarray, g: Conv2DGeometry, method: str, batched: bool) -> np.ndarray:
    """Dispatch on method and kind; ``x4`` in ``g.data_format``, result in the same."""
    x = _to_nhwc(x4, g.data_format)
    if method == "reference":
        y = _reference_nhwc(x, f, g)
    else:
        # inf - inf, 0 * inf and overflow are results here, not accidents to warn about
        with np.errstate(invalid="ignore", over="ignore"):
            if np.isfinite(f).all():
                y = _depthwise_windows(x, f, g) if g.depthwise else _conv_windows(x, f, g)
            else:
                y = _depthwise_tapwise(x, f, g) if g.depthwise else _conv_tapwise(x, f, g)
    return _from_nhwc(y, g.data_format, batched)


# ---------------------------------------------------------------------------
# half-float storage: what a device storing every texture as float16 computes


def _half(value: Any) -> Any:
    """``value`` rounded to the nearest float16 (as a half-float texture holds it), as float64;
    beyond 65504 it is infinity, as there.  ``None`` (and what is no array of numbers) as it is."""
    if value is None:
        return None
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):  # the op's own check says what is wrong with it
        return value
    with np.errstate(over="ignore"):
        return array.astype(np.float16).astype(np.float64)


_F = TypeVar("_F", bound=Callable[..., Any])


def _storage_aware(*arrays: str, sliced: bool = False) -> Callable[[_F], _F]:
    """Give an op ``storage=``: with ``"float16"`` the named array arguments (and ``bias``,
    ``prelu_weights`` and ``residual``) are rounded to float16 before the float64 computation and the result
    after it, as a device storing every texture in half floats gives them (a filter gradient
    that the GPU sums in slices, ``sliced``, has each partial sum rounded too)."""
    def decorate(func: _F) -> _F:
        signature = inspect.signature(func)

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            storage = check_storage(kwargs.pop("storage", "float32"))
            if storage == "float32":
                return func(*args, **kwargs)
            bound = signature.bind(*args, **kwargs)
            for name in arrays + ("bias", "prelu_weights", "residual"):
                if bound.arguments.get(name) is not None:
                    bound.arguments[name] = _half(bound.arguments[name])
            if sliced:
                return _half(_sliced_filter_gradient(func, bound))
            return _half(func(*bound.args, **bound.kwargs))
        return cast(_F, wrapper)
    return decorate


def _gradient_slices(func: Callable[..., Any], bound: inspect.BoundArguments) -> Tuple[int, int, np.ndarray]:
    """How the GPU splits a filter gradient's sum (:func:`gpuconv.programs.filter_gradient_slices`):
    ``(slices, slice_length, dy)`` with ``dy`` channels-last and batched."""
    from .programs import filter_gradient_slices

    dy = np.asarray(bound.arguments["dy"], dtype=np.float64)
    data_format = str(bound.arguments.get("data_format", signature_default(func, "data_format"))).upper()
    channels_first = data_format.startswith("NC")
    spatial = len(tuple(bound.arguments["filter_shape"])) - 2
    if dy.ndim == spatial + 1:
        dy = dy[np.newaxis]
    if channels_first:
        dy = np.moveaxis(dy, 1, -1)
    positions = int(np.prod(dy.shape[:-1]))
    slices = filter_gradient_slices(positions, int(np.prod(tuple(bound.arguments["filter_shape"]))))
    return slices, -(-positions // slices), dy


def signature_default(func: Callable[..., Any], name: str) -> Any:
    return inspect.signature(func).parameters[name].default


def _sliced_filter_gradient(func: Callable[..., Any], bound: inspect.BoundArguments) -> np.ndarray:
    """A filter gradient as the GPU sums it with half-float storage: each slice's partial sum
    rounded to float16, the partial sums added (float64 here) and the result rounded."""
    partials = _filter_gradient_partials(func, bound)
    return np.asarray(sum(partials[1:], partials[0]))


def _filter_gradient_partials(func: Callable[..., Any], bound: inspect.BoundArguments) -> List[np.ndarray]:
    """A sliced filter gradient's partial sums, each rounded to float16 (one when unsliced, unrounded)."""
    slices, length, dy_last = _gradient_slices(func, bound)
    if slices == 1:
        return [np.asarray(func(*bound.args, **bound.kwargs))]
    original = np.asarray(bound.arguments["dy"])
    data_format = str(bound.arguments.get("data_format", signature_default(func, "data_format"))).upper()
    partials = []
    flat = np.arange(int(np.prod(dy_last.shape[:-1]))).reshape(dy_last.shape[:-1] + (1,))
    for s in range(slices):
        mask = ((flat >= s * length) & (flat < (s + 1) * length)).astype(np.float64)
        part = dy_last * mask
        if data_format.startswith("NC"):
            part = np.moveaxis(part, -1, 1)
        bound.arguments["dy"] = part.reshape(original.shape)
        partials.append(np.asarray(_half(func(*bound.args, **bound.kwargs))))
    bound.arguments["dy"] = original
    return partials


# ---------------------------------------------------------------------------
# public ops


@_storage_aware('x', 'filter')
def conv2d(x, filter, strides=1, padding="VALID", data_format="NHWC", dilations=1,
           dim_rounding_mode=None, *, groups=1, bias=None, activation=None,
           leakyrelu_alpha=None, prelu_weights=None, residual=None, method="vectorized", storage="float32"):
    """2-D (grouped) convolution, ``tf.nn.conv2d`` / ``tf.fused.conv2d`` semantics.

    ``x``: ``[N, H, W, C]`` / ``[N, C, H, W]`` per ``data_format`` (or without ``N``);
    ``filter``: ``[FH, FW, C / groups, outC]``.  Group ``g`` reads input channels
    ``[g*C/groups, (g+1)*C/groups)`` and writes output channels
    ``[g*outC/groups, (g+1)*outC/groups)``.  ``padding``: ``"SAME"``, ``"VALID"``,
    an int (output size rounded by ``dim_rounding_mode``) or explicit pads.
    Then ``bias``, ``residual`` (the output's shape) and the activation (:func:`apply_activation`).
    Returns float64 ``[N, OH, OW, outC]`` / ``[N, outC, OH, OW]``.
    """
    method = _check_method(method)
    x4, f, g, batched = _prepare(x, filter, strides, padding, data_format, dilations,
                                 dim_rounding_mode, groups, depthwise=False)
    epilogue = _Epilogue.of(g, batched, bias, activation, leakyrelu_alpha, prelu_weights, residual)
    return epilogue(_convolve(x4, f, g, method, batched))


@_storage_aware('x', 'filter')
def depthwise_conv2d(x, filter, strides=1, padding="VALID", data_format="NHWC", dilations=1,
                     dim_rounding_mode=None, *, bias=None, activation=None, leakyrelu_alpha=None,
                     prelu_weights=None, residual=None, method="vectorized", storage="float32"):
    """Depthwise convolution, ``tf.nn.depthwise_conv2d`` semantics.

    ``filter``: ``[FH, FW, C, multiplier]``; output channel ``k*multiplier + q`` is
    input channel ``k`` convolved with ``filter[:, :, k, q]``.  Other arguments
    and layouts as :func:`conv2d`.  Returns float64 with ``C * multiplier`` channels.
    """
    method = _check_method(method)
    x4, f, g, batched = _prepare(x, filter, strides, padding, data_format, dilations,
                                 dim_rounding_mode, 1, depthwise=True)
    epilogue = _Epilogue.of(g, batched, bias, activation, leakyrelu_alpha, prelu_weights, residual)
    return epilogue(_convolve(x4, f, g, method, batched))


def separable_conv2d(x, depthwise_filter, pointwise_filter, strides=1, padding="VALID",
                     data_format="NHWC", dilations=1, *, bias=None, activation=None, leakyrelu_alpha=None,
                     prelu_weights=None, residual=None, method="vectorized", storage="float32"):
    """Depthwise convolution followed by a 1x1 VALID convolution (``tf.nn.separable_conv2d``).

    ``depthwise_filter``: ``[FH, FW, C, multiplier]``; ``pointwise_filter``:
    ``[1, 1, C * multiplier, outC]``.  The fused epilogue (``bias``, ``residual``, the activation,
    as :func:`conv2d`'s) follows the pointwise step, as Keras's SeparableConv2D applies its bias
    and activation.  Returns float64 with ``outC`` channels.  With
    ``storage="float16"`` the depthwise result (the texture between the two programs) is
    rounded to float16 too, as are the inputs, the filters and the result.
    """
    storage = check_storage(storage)
    dw = as_tensor(depthwise_filter, "depthwise_filter", ranks=(4,), layout=_DEPTHWISE_FILTER_LAYOUT)
    pw = as_tensor(pointwise_filter, "pointwise_filter", ranks=(4,),
                   layout="[1, 1, in_channels * channel_multiplier, out_channels]")
    if pw.shape[:3] != (1, 1, dw.shape[2] * dw.shape[3]):
        raise ValueError(
            f"pointwise_filter must have shape [1, 1, in_channels * channel_multiplier, out_channels] "
            f"= [1, 1, {dw.shape[2] * dw.shape[3]}, out_channels] for a depthwise_filter of shape "
            f"{dw.shape}, got shape {pw.shape}"
        )
    depthwise = depthwise_conv2d(x, dw, strides, padding, data_format, dilations, method=method, storage=storage)
    return conv2d(depthwise, pw, 1, "VALID", data_format, 1, bias=bias, activation=activation,
                  leakyrelu_alpha=leakyrelu_alpha, prelu_weights=prelu_weights, residual=residual,
                  method=method, storage=storage)


@_storage_aware('x', 'filter')
def conv1d(x, filter, stride=1, padding="VALID", data_format="NWC", dilation=1,
           dim_rounding_mode=None, *, method="vectorized", storage="float32"):
    """1-D convolution, ``tf.conv1d`` (TF.js) semantics.

    ``x``: ``[N, W, C]`` or ``[W, C]`` (``"NWC"``), ``[N, C, W]`` or ``[C, W]`` (``"NCW"``);
    ``filter``: ``[FW, C, outC]``.  Computed as a conv2d of height 1 with strides
    ``(1, stride)`` and dilations ``(1, dilation)``.  An int ``padding`` pads only
    left and right (the output width rounded by ``dim_rounding_mode``); explicit
    pads are ``[left, right]`` or the 2-D/3-D/TF.js 4-D forms padding only the width.
    """
    method = _check_method(method)
    if not isinstance(data_format, str) or data_format.upper() not in ("NWC", "NCW"):
        raise ValueError(f"data_format must be 'NWC' or 'NCW', got {data_format!r}")
    data_format = data_format.upper()
    for name, value in (("stride", stride), ("dilation", dilation)):
        if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    layout = "[batch, width, channels] or [width, channels]" if data_format == "NWC" \
        else "[batch, channels, width] or [channels, width]"
    x = as_tensor(x, "x", ranks=(2, 3), layout=layout).astype(np.float64)
    f = as_tensor(filter, "filter", ranks=(3,), layout="[filter_width, in_channels, out_channels]")
    batched = x.ndim == 3
    if not batched:
        x = x[np.newaxis]
    if data_format == "NCW":
        x = x.transpose(0, 2, 1)
    x4 = x[:, np.newaxis]  # [N, 1, W, C]
    f4 = f.astype(np.float64)[np.newaxis]  # [1, FW, C, outC]
    g = conv2d_geometry(x4.shape, f4.shape, (1, int(stride)),
                        normalize_padding_1d(padding, data_format, dim_rounding_mode),
                        "NHWC", (1, int(dilation)), dim_rounding_mode)
    y = _convolve(x4, f4, g, method, True)[:, 0]  # [N, OW, outC]
    if data_format == "NCW":
        y = np.ascontiguousarray(y.transpose(0, 2, 1))
    return y if batched else y[0]


# ---------------------------------------------------------------------------
# gradients, transposed convolutions and 3-D convolutions
#
# All of them take their sizes from the forward convolution's geometry (gpuconv.geometry),
# work channels-last with any number of spatial axes (2 or 3), and sum only the taps
# inside the input, as the forward ops do:
#
#   forward:        y[b, o, k]   = sum_{t, c} x[b, o*s + t*d - p, c] * f[t, c, k]
#   backprop input: dx[b, i, c]  = sum_{o, t, k : o*s + t*d - p = i} dy[b, o, k] * f[t, c, k]
#   backprop filter: df[t, c, k] = sum_{b, o} x[b, o*s + t*d - p, c] * dy[b, o, k]
#
# with o, t, i, s, d, p tuples over the spatial axes; for a depthwise convolution
# k = c * multiplier + q and f[t, c, q] takes the place of f[t, c, k].

_GRAD_FILTER_LAYOUT = "[filter_height, filter_width, in_channels, out_channels]"
_TRANSPOSE_FILTER_LAYOUT = "[filter_height, filter_width, out_channels, in_channels]"
_X_LAYOUTS_3D = {
    "NDHWC": "[batch, depth, height, width, channels] or [depth, height, width, channels]",
    "NCDHW": "[batch, channels, depth, height, width] or [channels, depth, height, width]",
}
_FILTER_LAYOUT_3D = "[filter_depth, filter_height, filter_width, in_channels, out_channels]"
_TRANSPOSE_FILTER_LAYOUT_3D = "[filter_depth, filter_height, filter_width, out_channels, in_channels]"


@dataclass(frozen=True)
class _Spatial:
    """What the public functions of one spatial rank (2-D or 3-D) check their arguments against."""

    rank: int                                       # spatial dimensions
    normalize_data_format: Callable[[str], str]
    layouts: Mapping[str, str]                      # x's (and dy's) layout, by data format
    transpose_filter_layout: str                    # [spatial..., out_channels, in_channels]

    def activations(self, value: npt.ArrayLike, name: str, data_format: str) -> np.ndarray:
        """``x`` or ``dy``: with or without the batch."""
        return as_tensor(value, name, ranks=(self.rank + 1, self.rank + 2), layout=self.layouts[data_format])

    def filter(self, value: npt.ArrayLike, layout: str) -> np.ndarray:
        """A filter of ``layout`` (the op's: conv, depthwise or transposed)."""
        return as_tensor(value, "filter", ranks=(self.rank + 2,), layout=layout)


_SPATIAL_2D = _Spatial(2, normalize_data_format, _X_LAYOUTS, _TRANSPOSE_FILTER_LAYOUT)
_SPATIAL_3D = _Spatial(3, normalize_data_format_3d, _X_LAYOUTS_3D, _TRANSPOSE_FILTER_LAYOUT_3D)

#: conv2d_backprop_input_geometry and its kin: (three shapes, strides, padding, data_format,
#: dilations, dim_rounding_mode) -> (geometry, batched).
_GradientGeometry = Callable[..., Tuple[Any, bool]]


def _is_depthwise(g: Conv2DGeometry | Conv3DGeometry) -> bool:
    return isinstance(g, Conv2DGeometry) and g.depthwise


def _multiplier(g: Conv2DGeometry | Conv3DGeometry) -> int:
    return g.channel_multiplier if isinstance(g, Conv2DGeometry) else 1


def _channels_last(a: np.ndarray, g: Conv2DGeometry | Conv3DGeometry, batched: bool) -> np.ndarray:
    """A tensor of ``g.data_format`` as float64, batched and channels-last."""
    a = a.astype(np.float64)
    if not batched:
        a = a[np.newaxis]
    return a if g.channels_last else np.moveaxis(a, 1, -1)


def _from_channels_last(a: np.ndarray, g: Conv2DGeometry | Conv3DGeometry, batched: bool) -> np.ndarray:
    if not g.channels_last:
        a = np.moveaxis(a, -1, 1)
    a = np.ascontiguousarray(a)
    return a if batched else a[0]


def _taps(g: Conv2DGeometry | Conv3DGeometry
          ) -> Iterator[tuple[tuple[int, ...], tuple[slice, ...], tuple[slice, ...]]]:
    """Every filter tap ``t`` with the output and input index tuples where it lands inside the input.

    Yields ``(t, outputs, inputs)``: ``outputs`` indexes ``[N, *out_spatial, .]`` and
    ``inputs`` indexes ``[N, *in_spatial, .]`` (basic slices: views).
    """
    for tap in itertools.product(*(range(size) for size in g.filter_spatial)):
        ranges = [_tap_range(out, size, stride, t * dilation - before)
                  for t, out, size, stride, dilation, (before, _) in
                  zip(tap, g.out_spatial, g.in_spatial, g.strides, g.dilations, g.pads)]
        if any(r is None for r in ranges):
            continue
        outputs = (slice(None),) + tuple(r[0] for r in ranges if r is not None) + (slice(None),)
        inputs = (slice(None),) + tuple(r[1] for r in ranges if r is not None) + (slice(None),)
        yield tap, outputs, inputs


def _inside(g: Conv2DGeometry | Conv3DGeometry, o: tuple[int, ...],
            tap: tuple[int, ...]) -> tuple[int, ...] | None:
    """The input position that output ``o`` reads through tap ``tap``, or ``None`` outside the input."""
    position = tuple(oi * s + ti * d - before for oi, ti, s, d, (before, _) in
                     zip(o, tap, g.strides, g.dilations, g.pads))
    if all(0 <= p < size for p, size in zip(position, g.in_spatial)):
        return position
    return None


def _positions(g: Conv2DGeometry | Conv3DGeometry
               ) -> Iterator[tuple[int, tuple[int, ...], tuple[int, ...], tuple[int, ...]]]:
    """``(b, o, tap, i)`` for every batch, output position and tap whose input position ``i`` is inside."""
    for b in range(g.batch):
        for o in itertools.product(*(range(size) for size in g.out_spatial)):
            for tap in itertools.product(*(range(size) for size in g.filter_spatial)):
                i = _inside(g, o, tap)
                if i is not None:
                    yield b, o, tap, i


# the readable loops (channels-last in and out; tiny shapes only)


def _forward_loops(x: np.ndarray, f: np.ndarray, g: Conv3DGeometry) -> np.ndarray:
    y = np.zeros((g.batch,) + g.out_spatial + (g.out_channels,))
    for b, o, tap, i in _positions(g):
        for k in range(g.out_channels):
            for c in range(g.in_channels):
                y[(b,) + o + (k,)] += x[(b,) + i + (c,)] * f[tap + (c, k)]
    return y


def _backprop_input_loops(dy: np.ndarray, f: np.ndarray, g: Conv2DGeometry | Conv3DGeometry) -> np.ndarray:
    dx = np.zeros((g.batch,) + g.in_spatial + (g.in_channels,))
    multiplier = _multiplier(g)
    for b, o, tap, i in _positions(g):
        for k in range(g.out_channels):
            gradient = dy[(b,) + o + (k,)]
            if _is_depthwise(g):
                c, q = divmod(k, multiplier)
                dx[(b,) + i + (c,)] += gradient * f[tap + (c, q)]
            else:
                for c in range(g.in_channels):
                    dx[(b,) + i + (c,)] += gradient * f[tap + (c, k)]
    return dx


def _backprop_filter_loops(x: np.ndarray, dy: np.ndarray, g: Conv2DGeometry | Conv3DGeometry) -> np.ndarray:
    multiplier = _multiplier(g)
    df = np.zeros(g.filter_shape)
    for b, o, tap, i in _positions(g):
        for k in range(g.out_channels):
            gradient = dy[(b,) + o + (k,)]
            if _is_depthwise(g):
                c, q = divmod(k, multiplier)
                df[tap + (c, q)] += x[(b,) + i + (c,)] * gradient
            else:
                for c in range(g.in_channels):
                    df[tap + (c, k)] += x[(b,) + i + (c,)] * gradient
    return df


# the vectorized versions: one BLAS product (or einsum) per tap, on the outputs where it is inside


def _forward_taps(x: np.ndarray, f: np.ndarray, g: Conv3DGeometry) -> np.ndarray:
    y = np.zeros((g.batch,) + g.out_spatial + (g.out_channels,))
    for tap, outputs, inputs in _taps(g):
        y[outputs] += x[inputs] @ f[tap]
    return y


def _backprop_input_taps(dy: np.ndarray, f: np.ndarray, g: Conv2DGeometry | Conv3DGeometry) -> np.ndarray:
    """Scatter-add: each tap adds ``dy @ f[tap].T`` onto the inputs it read."""
    dx = np.zeros((g.batch,) + g.in_spatial + (g.in_channels,))
    multiplier = _multiplier(g)
    for tap, outputs, inputs in _taps(g):
        gradient = dy[outputs]
        if _is_depthwise(g):
            grouped = gradient.reshape(gradient.shape[:-1] + (g.in_channels, multiplier))
            dx[inputs] += np.einsum("...cq,cq->...c", grouped, f[tap])
        else:
            dx[inputs] += gradient @ f[tap].T
    return dx


def _backprop_filter_taps(x: np.ndarray, dy: np.ndarray, g: Conv2DGeometry | Conv3DGeometry) -> np.ndarray:
    """Each tap's ``[C, K]`` (depthwise ``[C, multiplier]``) slice is ``x_tap^T @ dy`` over the outputs."""
    multiplier = _multiplier(g)
    df = np.zeros(g.filter_shape)
    for tap, outputs, inputs in _taps(g):
        xs = x[inputs].reshape(-1, g.in_channels)
        gradient = dy[outputs].reshape(-1, g.out_channels)
        if _is_depthwise(g):
            df[tap] = np.einsum("pc,pcq->cq", xs, gradient.reshape(-1, g.in_channels, multiplier))
        else:
            df[tap] = xs.T @ gradient
    return df


def _run(method: str, loops: Callable[..., np.ndarray], taps: Callable[..., np.ndarray],
         *arguments: Any) -> np.ndarray:
    """``loops(*arguments)`` for ``method="reference"``, else ``taps(*arguments)``."""
    if method == "reference":
        return loops(*arguments)
    with np.errstate(invalid="ignore", over="ignore"):  # inf - inf and overflow are results here
        return taps(*arguments)


def _backprop_input(dy: np.ndarray, f: np.ndarray, g: Conv2DGeometry | Conv3DGeometry, batched: bool,
                    method: str) -> np.ndarray:
    dy_last = _channels_last(dy, g, batched)
    dx = _run(method, _backprop_input_loops, _backprop_input_taps, dy_last, f.astype(np.float64), g)
    return _from_channels_last(dx, g, batched)


def _backprop_filter(x: np.ndarray, dy: np.ndarray, g: Conv2DGeometry | Conv3DGeometry, batched: bool,
                     method: str) -> np.ndarray:
    x_last, dy_last = _channels_last(x, g, batched), _channels_last(dy, g, batched)
    return _run(method, _backprop_filter_loops, _backprop_filter_taps, x_last, dy_last, g)


# the public gradient functions of every rank: the arguments checked, then the geometry


def _input_gradient(spatial: _Spatial, geometry: _GradientGeometry, filter_layout: str,
                    input_shape: ShapeLike, filter: npt.ArrayLike, dy: npt.ArrayLike, strides: IntsLike,
                    padding: PaddingLike, data_format: str, dilations: IntsLike, dim_rounding_mode: Optional[str],
                    method: str) -> np.ndarray:
    """A ``*_backprop_input`` function's result."""
    method = _check_method(method)
    data_format = spatial.normalize_data_format(data_format)
    f = spatial.filter(filter, filter_layout)
    dy = spatial.activations(dy, "dy", data_format)
    g, batched = geometry(input_shape, f.shape, dy.shape, strides, padding, data_format, dilations, dim_rounding_mode)
    return _backprop_input(dy, f, g, batched, method)


def _filter_gradient(spatial: _Spatial, geometry: _GradientGeometry,
                     x: npt.ArrayLike, filter_shape: ShapeLike, dy: npt.ArrayLike, strides: IntsLike,
                     padding: PaddingLike, data_format: str, dilations: IntsLike, dim_rounding_mode: Optional[str],
                     method: str) -> np.ndarray:
    """A ``*_backprop_filter`` function's result."""
    method = _check_method(method)
    data_format = spatial.normalize_data_format(data_format)
    x = spatial.activations(x, "x", data_format)
    dy = spatial.activations(dy, "dy", data_format)
    g, batched = geometry(x.shape, filter_shape, dy.shape, strides, padding, data_format, dilations, dim_rounding_mode)
    return _backprop_filter(x, dy, g, batched, method)


def _transposed(spatial: _Spatial, geometry: _GradientGeometry,
                x: npt.ArrayLike, filter: npt.ArrayLike, output_shape: ShapeLike, strides: IntsLike,
                padding: PaddingLike, data_format: str, dilations: IntsLike, dim_rounding_mode: Optional[str],
                method: str) -> np.ndarray:
    """A ``*_transpose`` function's result before its epilogue: the input gradient with ``x`` as dy."""
    method = _check_method(method)
    data_format = spatial.normalize_data_format(data_format)
    x = spatial.activations(x, "x", data_format)
    f = spatial.filter(filter, spatial.transpose_filter_layout)
    g, batched = geometry(x.shape, f.shape, output_shape, strides, padding, data_format, dilations, dim_rounding_mode)
    return _backprop_input(x, f, g, batched, method)


@_storage_aware('filter', 'dy')
def conv2d_backprop_input(
        input_shape: ShapeLike, filter: npt.ArrayLike, dy: npt.ArrayLike,
        strides: IntsLike = 1, padding: PaddingLike = "VALID",
        data_format: str = "NHWC", dilations: IntsLike = 1, dim_rounding_mode: Optional[str] = None,
        *, method: str = "vectorized", storage: str = "float32",
) -> np.ndarray:
    """The gradient of :func:`conv2d` with respect to its input (``tf.raw_ops.Conv2DBackpropInput``).

    ``input_shape``: the forward input's shape in ``data_format`` (the batch may be
    left out: it is then ``dy``'s); ``filter``: ``[FH, FW, inC, outC]``; ``dy``: the
    gradient of the forward output, whose shape must be the forward convolution's
    output shape (rank 3 without the batch).  The other arguments are the forward
    convolution's (strides and dilations may both exceed 1).  Returns float64 of
    ``input_shape`` (rank 3 when ``dy`` is): ``dx[b, i, c] = sum dy[b, o, k] * f[t, c, k]``
    over ``o * strides + t * dilations - pad = i``.
    """
    return _input_gradient(_SPATIAL_2D, conv2d_backprop_input_geometry, _GRAD_FILTER_LAYOUT, input_shape, filter, dy,
                           strides, padding, data_format, dilations, dim_rounding_mode, method)


@_storage_aware('x', 'dy', sliced=True)
def conv2d_backprop_filter(
        x: npt.ArrayLike, filter_shape: ShapeLike, dy: npt.ArrayLike,
        strides: IntsLike = 1, padding: PaddingLike = "VALID",
        data_format: str = "NHWC", dilations: IntsLike = 1, dim_rounding_mode: Optional[str] = None,
        *, method: str = "vectorized", storage: str = "float32",
) -> np.ndarray:
    """The gradient of :func:`conv2d` with respect to its filter (``tf.raw_ops.Conv2DBackpropFilter``).

    ``x``: the forward input; ``filter_shape``: ``[FH, FW, inC, outC]``; ``dy``: the
    gradient of the forward output (both ``x`` and ``dy`` with the batch or both
    without).  Returns float64 of ``filter_shape``:
    ``df[t, c, k] = sum_{b, o} x[b, o * strides + t * dilations - pad, c] * dy[b, o, k]``.
    """
    return _filter_gradient(_SPATIAL_2D, conv2d_backprop_filter_geometry, x, filter_shape, dy,
                            strides, padding, data_format, dilations, dim_rounding_mode, method)


@_storage_aware('x', 'filter')
def conv2d_transpose(
        x: npt.ArrayLike, filter: npt.ArrayLike, output_shape: ShapeLike,
        strides: IntsLike = 1, padding: PaddingLike = "VALID",
        data_format: str = "NHWC", dilations: IntsLike = 1, dim_rounding_mode: Optional[str] = None,
        *, bias: Optional[npt.ArrayLike] = None, activation: Optional[str] = None,
        leakyrelu_alpha: Optional[float] = None, prelu_weights: Optional[npt.ArrayLike] = None,
        residual: Optional[npt.ArrayLike] = None, method: str = "vectorized", storage: str = "float32",
) -> np.ndarray:
    """Transposed convolution, TF.js ``conv2dTranspose`` / ``tf.nn.conv2d_transpose``.

    ``x``: ``[N, H, W, inC]`` / ``[N, inC, H, W]`` (or without ``N``); ``filter``:
    ``[FH, FW, outC, inC]``; ``output_shape``: the result's shape in ``data_format``,
    with or without the batch (``x``'s).  Equal to
    ``conv2d_backprop_input(output_shape, filter, x, ...)``: ``x`` must have the shape
    that a conv2d of ``output_shape`` by ``filter`` with these strides, dilations and
    padding gives.  Then ``bias`` (anything that broadcasts to the output: a scalar,
    ``[1]``, ``[outC]`` on the channel axis, ...), ``residual`` and the activation, as in :func:`conv2d`.
    Returns float64 of ``output_shape`` (rank 3 when ``x`` is).
    """
    dx = _transposed(_SPATIAL_2D, conv2d_transpose_geometry, x, filter, output_shape,
                     strides, padding, data_format, dilations, dim_rounding_mode, method)
    channel_axis = _channel_axis(normalize_data_format(data_format))
    epilogue = _Epilogue(dx.shape, channel_axis, dx.shape[channel_axis], bias, activation,
                         leakyrelu_alpha, prelu_weights, broadcast_bias=True, residual=residual)
    return epilogue(dx)


@_storage_aware('filter', 'dy')
def depthwise_conv2d_backprop_input(
        input_shape: ShapeLike, filter: npt.ArrayLike, dy: npt.ArrayLike,
        strides: IntsLike = 1, padding: PaddingLike = "VALID",
        data_format: str = "NHWC", dilations: IntsLike = 1, dim_rounding_mode: Optional[str] = None,
        *, method: str = "vectorized", storage: str = "float32",
) -> np.ndarray:
    """The gradient of :func:`depthwise_conv2d` with respect to its input
    (``tf.raw_ops.DepthwiseConv2dNativeBackpropInput``).

    ``filter``: ``[FH, FW, inC, multiplier]``; ``dy`` has ``inC * multiplier`` channels
    (channel ``c * multiplier + q`` came from input channel ``c`` and ``filter[:, :, c, q]``).
    Strides and dilations may not both exceed 1.  Otherwise as :func:`conv2d_backprop_input`.
    """
    return _input_gradient(_SPATIAL_2D, depthwise_conv2d_backprop_input_geometry, _DEPTHWISE_FILTER_LAYOUT,
                           input_shape, filter, dy, strides, padding, data_format, dilations, dim_rounding_mode,
                           method)


@_storage_aware('x', 'dy', sliced=True)
def depthwise_conv2d_backprop_filter(
        x: npt.ArrayLike, filter_shape: ShapeLike, dy: npt.ArrayLike,
        strides: IntsLike = 1, padding: PaddingLike = "VALID",
        data_format: str = "NHWC", dilations: IntsLike = 1, dim_rounding_mode: Optional[str] = None,
        *, method: str = "vectorized", storage: str = "float32",
) -> np.ndarray:
    """The gradient of :func:`depthwise_conv2d` with respect to its filter
    (``tf.raw_ops.DepthwiseConv2dNativeBackpropFilter``): float64 of ``filter_shape``
    ``[FH, FW, inC, multiplier]``.  Otherwise as :func:`conv2d_backprop_filter`.
    """
    return _filter_gradient(_SPATIAL_2D, depthwise_conv2d_backprop_filter_geometry, x, filter_shape, dy,
                            strides, padding, data_format, dilations, dim_rounding_mode, method)


@_storage_aware('x', 'filter')
def conv3d(
        x: npt.ArrayLike, filter: npt.ArrayLike,
        strides: IntsLike = 1, padding: PaddingLike = "VALID",
        data_format: str = "NDHWC", dilations: IntsLike = 1, dim_rounding_mode: Optional[str] = None,
        *, method: str = "vectorized", storage: str = "float32",
) -> np.ndarray:
    """3-D convolution, ``tf.nn.conv3d`` / TF.js ``conv3d`` semantics.

    ``x``: ``[N, D, H, W, C]`` (``"NDHWC"``) or ``[N, C, D, H, W]`` (``"NCDHW"``), or
    without ``N``; ``filter``: ``[FD, FH, FW, C, outC]``; ``strides``/``dilations``: an
    int, ``(d, h, w)`` or TF's 5-list; ``padding``: ``"SAME"``, ``"VALID"``, an int
    (rounded by ``dim_rounding_mode``) or ``[[front, back], [top, bottom], [left, right]]``
    (or TF's 5x2 list).  Returns float64 ``[N, OD, OH, OW, outC]`` / ``[N, outC, OD, OH, OW]``.
    """
    method = _check_method(method)
    data_format = normalize_data_format_3d(data_format)
    x = _SPATIAL_3D.activations(x, "x", data_format)
    f = _SPATIAL_3D.filter(filter, _FILTER_LAYOUT_3D)
    batched = x.ndim == 5
    g = conv3d_geometry(x.shape if batched else (1,) + x.shape, f.shape, strides, padding, data_format,
                        dilations, dim_rounding_mode)
    y = _run(method, _forward_loops, _forward_taps, _channels_last(x, g, batched), f.astype(np.float64), g)
    return _from_channels_last(y, g, batched)


@_storage_aware('filter', 'dy')
def conv3d_backprop_input(
        input_shape: ShapeLike, filter: npt.ArrayLike, dy: npt.ArrayLike,
        strides: IntsLike = 1, padding: PaddingLike = "VALID",
        data_format: str = "NDHWC", dilations: IntsLike = 1, dim_rounding_mode: Optional[str] = None,
        *, method: str = "vectorized", storage: str = "float32",
) -> np.ndarray:
    """The gradient of :func:`conv3d` with respect to its input (``tf.raw_ops.Conv3DBackpropInputV2``):
    as :func:`conv2d_backprop_input` with filter ``[FD, FH, FW, inC, outC]``."""
    return _input_gradient(_SPATIAL_3D, conv3d_backprop_input_geometry, _FILTER_LAYOUT_3D, input_shape, filter, dy,
                           strides, padding, data_format, dilations, dim_rounding_mode, method)


@_storage_aware('x', 'dy', sliced=True)
def conv3d_backprop_filter(
        x: npt.ArrayLike, filter_shape: ShapeLike, dy: npt.ArrayLike,
        strides: IntsLike = 1, padding: PaddingLike = "VALID",
        data_format: str = "NDHWC", dilations: IntsLike = 1, dim_rounding_mode: Optional[str] = None,
        *, method: str = "vectorized", storage: str = "float32",
) -> np.ndarray:
    """The gradient of :func:`conv3d` with respect to its filter (``tf.raw_ops.Conv3DBackpropFilterV2``):
    float64 of ``filter_shape`` ``[FD, FH, FW, inC, outC]``, as :func:`conv2d_backprop_filter`."""
    return _filter_gradient(_SPATIAL_3D, conv3d_backprop_filter_geometry, x, filter_shape, dy,
                            strides, padding, data_format, dilations, dim_rounding_mode, method)


@_storage_aware('x', 'filter')
def conv3d_transpose(
        x: npt.ArrayLike, filter: npt.ArrayLike, output_shape: ShapeLike,
        strides: IntsLike = 1, padding: PaddingLike = "VALID",
        data_format: str = "NDHWC", dilations: IntsLike = 1, dim_rounding_mode: Optional[str] = None,
        *, method: str = "vectorized", storage: str = "float32",
) -> np.ndarray:
    """Transposed 3-D convolution, TF.js ``conv3dTranspose`` / ``tf.nn.conv3d_transpose``.

    ``filter``: ``[FD, FH, FW, outC, inC]``; equal to
    ``conv3d_backprop_input(output_shape, filter, x, ...)``, as :func:`conv2d_transpose`.
    (TF.js's own ``conv3dTranspose`` takes only ``strides`` and ``padding``; the other
    arguments are ``tf.nn.conv3d_transpose``'s.)
    """
    return _transposed(_SPATIAL_3D, conv3d_transpose_geometry, x, filter, output_shape,
                       strides, padding, data_format, dilations, dim_rounding_mode, method)


def compare(result: npt.ArrayLike, expected: npt.ArrayLike) -> Tuple[float, float]:
    """How far ``result`` (e.g. a GPU float32 array) is from the oracle's ``expected``.

    Returns ``(max_abs_error, relative_error)``, the relative error being the max
    abs error over the largest finite magnitude of ``expected``.  Equal values
    (the same infinity included) and NaN against NaN count as no error; a NaN
    where the other has a number makes both errors NaN.
    """
    result = np.asarray(result, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    if result.shape != expected.shape:
        raise ValueError(f"result shape {result.shape} differs from the expected shape {expected.shape}")
    if result.size == 0:
        return 0.0, 0.0
    same = (result == expected) | (np.isnan(result) & np.isnan(expected))
    with np.errstate(invalid="ignore"):
        error = np.where(same, 0.0, np.abs(result - expected))
    if np.isnan(error).any():
        return float("nan"), float("nan")
    max_abs = float(np.max(error))
    finite = np.abs(expected[np.isfinite(expected)])
    scale = float(np.max(finite)) if finite.size else 0.0
    if scale == 0:
        return max_abs, 0.0 if max_abs == 0 else float("inf")
    return max_abs, max_abs / scale


def relative_error(result: npt.ArrayLike, expected: npt.ArrayLike) -> float:
    """The max abs error relative to the largest finite magnitude of ``expected`` (see :func:`compare`)."""
    return compare(result, expected)[1]


# ---------------------------------------------------------------------------
# how far half-float storage may take a result from the float64 one

#: Each op's two factors: every output is a sum over products of one value of each.
_FACTORS = {
    "conv2d": ("x", "filter"), "depthwise_conv2d": ("x", "filter"), "conv1d": ("x", "filter"),
    "conv2d_transpose": ("x", "filter"), "conv3d": ("x", "filter"), "conv3d_transpose": ("x", "filter"),
    "conv2d_backprop_input": ("filter", "dy"), "depthwise_conv2d_backprop_input": ("filter", "dy"),
    "conv3d_backprop_input": ("filter", "dy"),
    "conv2d_backprop_filter": ("x", "dy"), "depthwise_conv2d_backprop_filter": ("x", "dy"),
    "conv3d_backprop_filter": ("x", "dy"),
}
_SLICED = {"conv2d_backprop_filter", "depthwise_conv2d_backprop_filter", "conv3d_backprop_filter"}
_EPILOGUE = ("bias", "activation", "leakyrelu_alpha", "prelu_weights", "residual")
#: The largest slope of each activation beyond slope 1 (hard_swish: (2x + 3) / 6 at x = 3).
_SLOPES = {"swish": 1.1, "hard_swish": 1.5, "gelu": 1.13, "gelu_tanh": 1.13}
#: float32's unit roundoff (the arithmetic inside a program) and float16's smallest subnormal / 2.
_U32 = 2.0 ** -24
_TINY16 = 2.0 ** -25


def _op_function(op: Any) -> Tuple[str, Callable[..., Any]]:
    name = op if isinstance(op, str) else getattr(op, "__name__", "")
    if name not in _FACTORS and name != "separable_conv2d":
        raise ValueError(f"op must be one of {', '.join(map(repr, sorted(list(_FACTORS) + ['separable_conv2d'])))}, "
                         f"got {op!r}")
    return name, globals()[name]


def _ulp16(values: np.ndarray) -> np.ndarray:
    """The spacing of float16 at each magnitude (2^-24 in the subnormal range)."""
    magnitude = np.abs(np.asarray(values, dtype=np.float64))
    with np.errstate(divide="ignore", invalid="ignore"):
        exponent = np.floor(np.log2(np.where(magnitude > 0, magnitude, 1.0)))
    return np.where(magnitude >= 2.0 ** -14, 2.0 ** (exponent - 10), 2.0 ** -24)


def _finite_max(values: np.ndarray) -> float:
    finite = np.abs(values[np.isfinite(values)])
    return float(finite.max()) if finite.size else 0.0


class _Sums:
    """One call's sums: ``y`` (float64), ``S`` = sum of |products| per output, the sums of the
    factors' magnitudes per output (for subnormal roundings) and the terms per output ``n``."""

    def __init__(self, func: Callable[..., Any], name: str, args: Sequence[Any], kwargs: dict) -> None:
        bound = inspect.signature(func).bind(*args, **kwargs)
        bound.arguments.pop("storage", None)
        self.y = np.asarray(func(*bound.args, **bound.kwargs), dtype=np.float64)
        a, b = _FACTORS[name]
        plain = inspect.signature(func).bind(*bound.args, **bound.kwargs)
        for key in _EPILOGUE:
            plain.arguments.pop(key, None)
        A = np.asarray(plain.arguments[a], dtype=np.float64)
        B = np.asarray(plain.arguments[b], dtype=np.float64)
        self.z = np.asarray(func(*plain.args, **plain.kwargs), dtype=np.float64)  # before the epilogue

        def linear(first: np.ndarray, second: np.ndarray) -> np.ndarray:
            plain.arguments[a], plain.arguments[b] = first, second
            return np.asarray(func(*plain.args, **plain.kwargs), dtype=np.float64)

        self.S = linear(np.abs(A), np.abs(B))
        self.magnitudes = linear(np.ones_like(A), np.abs(B)) + linear(np.abs(A), np.ones_like(B))
        self.n = float(linear(np.ones_like(A), np.ones_like(B)).max(initial=0.0))
        self.bias = bound.arguments.get("bias")
        self.residual = bound.arguments.get("residual")
        self.activation = normalize_activation(bound.arguments.get("activation"))
        alpha = bound.arguments.get("leakyrelu_alpha")
        self.lipschitz = _SLOPES.get(self.activation, 1.0)
        self.prelu_extra = 0.0
        if self.activation == "leakyrelu":
            self.lipschitz = max(1.0, abs(0.2 if alpha is None else float(alpha)))
        elif self.activation == "prelu":
            weights = np.abs(np.asarray(bound.arguments.get("prelu_weights"), dtype=np.float64))
            self.lipschitz = max(1.0, float(weights.max(initial=0.0)))
            # the weights' own rounding, times the largest value they multiply
            self.prelu_extra = FLOAT16_UNIT_ROUNDOFF * float(weights.max(initial=0.0)) * (
                _finite_max(self.z) + (0.0 if self.bias is None else _finite_max(np.asarray(self.bias, np.float64))))
        self.slices = 1
        if name in _SLICED:
            self.slices = _gradient_slices(func, bound)[0]

    @property
    def gamma32(self) -> float:
        """The float32 summation's relative error bound for ``n`` terms (any order)."""
        return self.n * _U32 / (1 - self.n * _U32)

    def activation_term(self) -> float:
        """elu and sigmoid run exp() in float32 on the device: a few float32 ulps of slack."""
        smooth = ("elu", "sigmoid", "swish", "gelu", "gelu_tanh")
        return 2.0 ** -18 * max(1.0, _finite_max(self.y)) if self.activation in smooth else 0.0

    def element_bound(self) -> np.ndarray:
        """Per output, the error of the value the program computes (before it is stored)."""
        u = FLOAT16_UNIT_ROUNDOFF
        linear = (2 * u + u * u + (1 + 2 * u + u * u) * self.gamma32) * self.S + _TINY16 * self.magnitudes
        if self.slices > 1:  # each partial sum is rounded to a half too
            linear = linear + u * self.S + self.slices * _TINY16
        bias = 0.0
        if self.bias is not None:
            b = np.abs(np.asarray(self.bias, dtype=np.float64))
            bias = u * _finite_max(b) + _TINY16 + _U32 * (_finite_max(self.z) + _finite_max(b))
        if self.residual is not None:  # rounded to a half too, and added in float32
            r = _finite_max(np.abs(np.asarray(self.residual, dtype=np.float64)))
            bias += u * r + _TINY16 + _U32 * (_finite_max(self.z) + r + (
                0.0 if self.bias is None else _finite_max(np.abs(np.asarray(self.bias, np.float64)))))
        return self.lipschitz * (linear + bias) + self.prelu_extra + self.activation_term()


def _stored(value_bound: float, magnitude: float) -> float:
    """The bound once the value is rounded to a half: its rounding (u of the largest magnitude,
    or half a subnormal step) on top of the value's own error."""
    u = FLOAT16_UNIT_ROUNDOFF
    return u * magnitude + (1 + u) * value_bound + _TINY16


def float16_error_bound(op: Any, *args: Any, **kwargs: Any) -> float:
    """How far an op's result with half-float storage may be from the float64 oracle's, for
    these arrays: a bound on ``max |y_float16 - y_float64|`` computed from the data.

    ``op`` is the op's name (``"conv2d"``, ...) or this module's function; ``args`` and
    ``kwargs`` are the op's own arguments (arrays, strides, padding, bias, activation, ...).
    With ``u = 2**-11`` (float16's unit roundoff), for every output ``y = sum_k a_k b_k``
    (``a``, ``b`` the op's two factors: x and the filter, or dy and one of them):

        |error| <= u * max|y| + max over outputs of L * ((2u + u^2 + g32) * sum_k |a_k b_k|
                   + 2^-25 * sum_k (|a_k| + |b_k|) + u * max|bias|) + small terms

    ``u * max|y|`` is the output's rounding to a half; ``2u * sum_k |a_k b_k|`` the rounding of
    both factors (each stored in a half-float texture); ``g32 = n * 2^-24 / (1 - n * 2^-24)``
    the float32 sum over the ``n`` terms inside the program (the reduction length);
    ``2^-25 * ...`` the roundings of values in float16's subnormal range; ``L`` the
    activation's Lipschitz constant (1, or the largest PReLU/leaky-ReLU slope above 1);
    elu and sigmoid get ``2^-18 * max(1, max|y|)`` for the device's float32 exp().  A filter
    gradient summed in slices adds ``u * sum_k |a_k b_k|`` (each partial sum is a half);
    separable_conv2d bounds the depthwise result so, then carries that bound through the
    pointwise filter (``sum_c |p_c| * bound_c``) as another rounded factor.
    The bound is rigorous for finite results (no value beyond 65504).
    """
    name, func = _op_function(op)
    u = FLOAT16_UNIT_ROUNDOFF
    if name == "separable_conv2d":
        return _separable_bounds(func, args, kwargs)[0]
    sums = _Sums(func, name, args, kwargs)
    return float(_stored(float(np.max(sums.element_bound(), initial=0.0)), _finite_max(sums.y))) + 0.0 * u


def float16_prediction_tolerance(op: Any, *args: Any, **kwargs: Any) -> float:
    """How far the GPU's half-float-storage result may be from the oracle's prediction
    (``storage="float16"``): both store the same halves, but the device sums in float32
    (the oracle in float64) and may round a tie the other way, so a stored value may be a
    neighbouring half:

        |y_gpu - y_predicted| <= 2 * ulp16(max|y_predicted|) + g32 * max_k sum |a_k b_k|

    (``ulp16(v)``: the spacing of float16 at ``v``; ``g32`` as in :func:`float16_error_bound`),
    plus, for a filter gradient summed in slices, ``max over outputs of sum_s ulp16(partial_s)``
    (each partial sum may be a neighbouring half; ``+ slices 2^-24 sum_s |partial_s|`` for
    their float32 sum) and, for separable_conv2d, the depthwise result's
    neighbouring halves carried through the pointwise filter (``sum_c |p_c| ulp16(d_c)``).
    """
    name, func = _op_function(op)
    if name == "separable_conv2d":
        return _separable_bounds(func, args, kwargs)[1]
    kwargs = dict(kwargs, storage="float16")
    predicted = np.asarray(func(*args, **kwargs), dtype=np.float64)
    kwargs.pop("storage")
    sums = _Sums(func, name, args, kwargs)
    tolerance = 2 * float(_ulp16(np.array(_finite_max(predicted)))) + sums.gamma32 * _finite_max(sums.S)
    if sums.slices > 1:  # each partial sum may be a neighbouring half too; they are added in float32
        bound = inspect.signature(func).bind(*args, **kwargs)
        bound.arguments["x"], bound.arguments["dy"] = _half(bound.arguments["x"]), _half(bound.arguments["dy"])
        partials = _filter_gradient_partials(func, bound)
        neighbours = sum((_ulp16(p) for p in partials), np.zeros_like(partials[0]))
        magnitudes = sum((np.abs(p) for p in partials), np.zeros_like(partials[0]))
        tolerance += _finite_max(neighbours + sums.slices * _U32 * magnitudes)
    return tolerance + sums.activation_term()


def _separable_bounds(func: Callable[..., Any], args: Sequence[Any], kwargs: dict) -> Tuple[float, float]:
    """separable_conv2d's (error bound, prediction tolerance): the depthwise step's, carried
    through the pointwise filter."""
    bound = inspect.signature(func).bind(*args, **kwargs)
    bound.arguments.pop("storage", None)
    options = {key: bound.arguments[key] for key in ("strides", "padding", "data_format", "dilations")
               if key in bound.arguments}
    data_format = options.get("data_format", "NHWC")
    x, dw, pw = (bound.arguments[key] for key in ("x", "depthwise_filter", "pointwise_filter"))
    pw = np.asarray(pw, dtype=np.float64)
    depthwise = _Sums(depthwise_conv2d, "depthwise_conv2d", (x, dw), options)
    d = depthwise.y
    pointwise = _Sums(conv2d, "conv2d", (d, pw), {"data_format": data_format})
    u = FLOAT16_UNIT_ROUNDOFF
    # the stored depthwise result: its own error and its rounding, per element
    d_error = u * np.abs(d) + (1 + u) * depthwise.element_bound() + _TINY16
    carried = conv2d(d_error, np.abs(pw), 1, "VALID", data_format)
    value_bound = (1 + u) * carried + pointwise.element_bound() + \
        pointwise.gamma32 * conv2d(d_error, np.abs(pw), 1, "VALID", data_format)
    error_bound = _stored(float(np.max(value_bound, initial=0.0)), _finite_max(pointwise.y))
    predicted = np.asarray(func(*args, **dict(kwargs, storage="float16")), dtype=np.float64)
    d_predicted = depthwise_conv2d(x, dw, storage="float16", **options)
    neighbours = conv2d(_ulp16(d_predicted) + depthwise.gamma32 * depthwise.S, np.abs(pw), 1, "VALID", data_format)
    tolerance = 2 * float(_ulp16(np.array(_finite_max(predicted)))) + _finite_max(neighbours) + \
        pointwise.gamma32 * _finite_max(pointwise.S)
    return float(error_bound), float(tolerance)


def float16_overflows(op: Any, *args: Any, **kwargs: Any) -> List[Tuple[str, int]]:
    """What half-float storage cannot hold: ``[(what, count)]`` for each input, filter,
    intermediate (separable's depthwise result) and the output with values beyond
    float16's largest finite value (65504), which become infinity in a half-float texture."""
    name, func = _op_function(op)
    bound = inspect.signature(func).bind(*args, **kwargs)
    bound.arguments.pop("storage", None)
    found: List[Tuple[str, int]] = []

    def count(what: str, value: Any) -> None:
        if value is None or isinstance(value, str):
            return
        try:
            array = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            return
        over = int(np.count_nonzero(np.isfinite(array) & (np.abs(array) > FLOAT16_MAX)))
        if over:
            found.append((what, over))

    arrays = ("x", "depthwise_filter", "pointwise_filter") if name == "separable_conv2d" else _FACTORS[name]
    for key in arrays + ("bias", "prelu_weights"):
        count(key, bound.arguments.get(key))
    y = func(*bound.args, **bound.kwargs)
    if name == "separable_conv2d":
        options = {key: bound.arguments[key] for key in ("strides", "padding", "data_format", "dilations")
                   if key in bound.arguments}
        count("the depthwise result (intermediate)",
              depthwise_conv2d(bound.arguments["x"], bound.arguments["depthwise_filter"], **options))
    elif name in _SLICED:
        count("the output", y)
        return found
    count("the output", y)
    return found
