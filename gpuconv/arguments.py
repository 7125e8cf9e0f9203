"""Normalisation of tensor and activation arguments shared by the ops and the oracle.

Shapes, strides and padding live in :mod:`gpuconv.geometry`; this module checks
what is not geometry: that a tensor is a real floating-point array of the right
rank, and that an activation is one the programs know.
"""

from __future__ import annotations

import numbers
from typing import Any, Optional, Sequence, Tuple

import numpy as np

from .tensor import Tensor

#: Activations of the fused programs: TF.js's (named as TF.js names them), then those of real
#: models that TF.js's fused ops lack, as PyTorch and Keras 3 define them: "swish" (x * sigmoid(x),
#: PyTorch's SiLU), "hard_swish" (x * relu6(x + 3) / 6), "hard_sigmoid" (relu6(x + 3) / 6, not
#: Keras 2's 0.2 x + 0.5), "gelu" (exact: x * (1 + erf(x / sqrt 2)) / 2) and "gelu_tanh" (PyTorch's
#: approximate="tanh").  The one list: the ops, the oracle and the CLI's --activation read it.
ACTIVATIONS = ("linear", "relu", "relu6", "elu", "sigmoid", "leakyrelu", "prelu",
               "swish", "hard_swish", "hard_sigmoid", "gelu", "gelu_tanh")

_ACCEPTED_DTYPES = (np.float16, np.float32, np.float64)


def as_tensor(value: Any, name: str, ranks: Sequence[int] = (4,), layout: str = "") -> np.ndarray:
    """Return ``value`` as a floating-point NumPy array of one of ``ranks``.

    Accepts NumPy arrays of float16/32/64 and (nested) lists of real numbers (ints
    and floats, made float64).  Integer, bool, complex and object arrays are refused,
    as TF and TF.js refuse them for convolutions; so are lists holding bools,
    complex numbers, strings or ``None``, ragged lists, masked arrays (their masked
    values would be used as they are) and anything that is not an array.

    A :class:`~gpuconv.Tensor` (float32, on the GPU) is checked for its rank and returned
    as it is (a view naming ``name`` in messages): the ops read it where it is.
    """
    tensor = _gpu_tensor(value)
    if tensor is not None:
        if tensor.ndim not in ranks:
            wanted = " or ".join(str(r) for r in ranks)
            suffix = f" ({layout})" if layout else ""
            raise ValueError(f"{name} must be rank {wanted}{suffix}, got a Tensor of shape {tensor.shape}")
        return tensor.as_argument(name)  # an array's stand-in on the GPU (the ops read it in place)
    if isinstance(value, np.ma.MaskedArray):
        raise TypeError(f"{name} must be a plain NumPy array of floats, got a masked array "
                        f"(fill it first, e.g. {name}.filled(0.0))")
    if isinstance(value, np.ndarray):
        array = value
    elif isinstance(value, (list, tuple)):
        try:
            array = np.asarray(value)
        except ValueError:
            raise TypeError(f"{name} must be an array of floats, got a {type(value).__name__} "
                            f"that is not a rectangular array of numbers") from None
        if array.dtype.kind not in "iuf":
            held = {"b": "bools", "c": "complex numbers", "U": "strings", "S": "bytes"}.get(
                array.dtype.kind, "values that are not all numbers")
            raise TypeError(f"{name} must be an array of floats, got a {type(value).__name__} of {held}")
        array = array.astype(np.float64)
    elif isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)):
        array = np.asarray(value, dtype=np.float64)
    elif hasattr(value, "__array__") and not isinstance(value, (str, bytes, dict)):
        array = np.asarray(value)
    else:
        raise TypeError(f"{name} must be a NumPy array of floats, got {type(value).__name__}")
    if array.dtype.type not in _ACCEPTED_DTYPES:
        raise TypeError(
            f"{name} must have a floating-point dtype (float16, float32 or float64), got {array.dtype}"
        )
    if array.ndim not in ranks:
        wanted = " or ".join(str(r) for r in ranks)
        suffix = f" ({layout})" if layout else ""
        raise ValueError(f"{name} must be rank {wanted}{suffix}, got shape {array.shape}")
    return array


def _gpu_tensor(value: Any) -> Any:
    """``value`` if it is a :class:`gpuconv.Tensor`, else ``None``."""
    return value if isinstance(value, Tensor) else None


def _exact_tensor(tensor: Any, name: str, shapes: Sequence[Tuple[int, ...]], wanted: str) -> None:
    """A Tensor is not broadcast on the GPU: it must have one of ``shapes`` as it is."""
    if tuple(tensor.shape) not in shapes:
        raise ValueError(f"{name} is a Tensor of shape {tuple(tensor.shape)}; a Tensor {name} must be {wanted} "
                         f"as it is (it is not broadcast on the GPU; pass a NumPy array to broadcast it)")


def normalize_activation(activation: Optional[str]) -> str:
    """The activation's canonical name; ``None`` means ``"linear"``."""
    if activation is None:
        return "linear"
    if isinstance(activation, str) and activation.lower() in ACTIVATIONS:
        return activation.lower()
    raise ValueError(
        f"activation must be one of {', '.join(map(repr, ACTIVATIONS))} or None, got {activation!r}"
    )


def check_bias(bias: Any, out_channels: int, *, out_shape: Optional[Sequence[int]] = None,
               channel_axis: int = -1) -> Optional[np.ndarray]:
    """``bias`` as an array, or ``None``.

    Without ``out_shape`` (the GPU programs' rule): exactly ``[out_channels]``.
    With ``out_shape`` (the output's shape, ``channel_axis`` its channel axis, which
    may be negative), any bias that broadcasts to the output, as TF.js's fused ops
    accept it: a scalar, ``[1]``, ``[out_channels]`` (on the channel axis in either
    data format), or any shape that broadcasts to ``out_shape`` (aligned on the
    right, as NumPy and TF.js broadcast).  A bias that varies only along the channel
    axis comes back as a ``[out_channels]`` vector; any other comes back broadcast
    to ``out_shape``.
    """
    if bias is None:
        return None
    if out_shape is None:
        bias = as_tensor(bias, "bias", ranks=(0, 1, 2, 3, 4))
        if bias.shape != (out_channels,):
            raise ValueError(f"bias must have one value per output channel, shape ({out_channels},), "
                             f"got shape {bias.shape}")
        return bias
    out_shape = tuple(int(d) for d in out_shape)
    channel_axis %= len(out_shape)
    bias = as_tensor(bias, "bias", ranks=tuple(range(len(out_shape) + 1)))
    if _gpu_tensor(bias) is not None:
        _exact_tensor(bias, "bias", [(out_channels,), out_shape],
                      f"shape ({out_channels},) or the output's shape {out_shape}")
        return bias
    if bias.shape == (out_channels,):  # one value per channel, whatever the data format
        return bias
    aligned = bias.reshape((1,) * (len(out_shape) - bias.ndim) + bias.shape)
    if any(size not in (1, out) for size, out in zip(aligned.shape, out_shape)):
        raise ValueError(f"bias must have one value per output channel, shape ({out_channels},), "
                         f"got shape {bias.shape}, which does not broadcast to the output shape "
                         f"{out_shape} either")
    if all(size == 1 for axis, size in enumerate(aligned.shape) if axis != channel_axis):
        return np.broadcast_to(aligned.reshape(-1), (out_channels,))
    return np.broadcast_to(aligned, out_shape)


def check_residual(residual: Any, out_shape: Sequence[int]) -> Any:
    """``residual`` (an array or a :class:`~gpuconv.Tensor`) checked to have exactly the output's
    shape ``out_shape``, or ``None``.  It is added after the bias and before the activation (a
    ResNet or MobileNetV2 skip connection); it is not broadcast."""
    if residual is None:
        return None
    out_shape = tuple(int(d) for d in out_shape)
    residual = as_tensor(residual, "residual", ranks=tuple(range(8)))
    if tuple(residual.shape) != out_shape:
        kind = "a Tensor of shape" if _gpu_tensor(residual) is not None else "shape"
        raise ValueError(f"residual must have the output's shape {out_shape}, got {kind} "
                         f"{tuple(residual.shape)} (it is added element by element, not broadcast)")
    return residual


def check_alpha(leakyrelu_alpha: object) -> float:
    """The leaky ReLU slope as a float (it is baked into the program as a float32 constant)."""
    if isinstance(leakyrelu_alpha, bool) or not isinstance(leakyrelu_alpha, numbers.Real) \
            or not np.isfinite(float(leakyrelu_alpha)):
        raise TypeError(f"leakyrelu_alpha must be a finite real number, got {leakyrelu_alpha!r}")
    return float(leakyrelu_alpha)


def check_prelu_weights(weights: Any, out_shape: Sequence[int], channel_axis: int) -> Tuple[np.ndarray, bool]:
    """PReLU weights as ``(array, per_channel)``.

    A ``[C]`` vector is one weight per channel in either data format.  Other
    ``weights`` must broadcast to ``out_shape``; when they vary only along the
    channel axis (a ``[C]`` vector, ``[1, 1, C]``, a scalar, ...), they come back
    as a ``[C]`` vector with ``per_channel=True``; otherwise broadcast to the
    full output shape.  ``channel_axis`` may be negative.
    """
    channel_axis %= len(out_shape)
    if weights is None:
        raise ValueError("activation 'prelu' needs prelu_weights (shape [out_channels] "
                         "or broadcastable to the output)")
    weights = as_tensor(weights, "prelu_weights", ranks=tuple(range(len(out_shape) + 1)))
    channels = out_shape[channel_axis]
    if _gpu_tensor(weights) is not None:
        _exact_tensor(weights, "prelu_weights", [(channels,), tuple(out_shape)],
                      f"shape ({channels},) or the output's shape {tuple(out_shape)}")
        return weights, tuple(weights.shape) == (channels,)
    if weights.shape == (channels,):  # one weight per channel, whatever the data format
        return weights, True
    aligned = weights.reshape((1,) * (len(out_shape) - weights.ndim) + weights.shape)
    try:
        np.broadcast_shapes(aligned.shape, tuple(out_shape))
    except ValueError:
        raise ValueError(f"prelu_weights of shape {weights.shape} do not broadcast to the output "
                         f"shape {tuple(out_shape)}; give one weight per channel "
                         f"({out_shape[channel_axis]},) or an array broadcastable to the output") from None
    if all(size == 1 for axis, size in enumerate(aligned.shape) if axis != channel_axis):
        return np.broadcast_to(aligned.reshape(-1), (channels,)), True
    return np.broadcast_to(aligned, tuple(out_shape)), False
