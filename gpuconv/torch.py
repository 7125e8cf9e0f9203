"""PyTorch's ``conv2d`` conventions on NumPy arrays, run by gpuconv's programs.

:func:`conv2d` takes the arguments of ``torch.nn.functional.conv2d`` and runs the
convolution on the GPU through :func:`gpuconv.ops.conv2d` (NCHW, grouped, fused
bias); :func:`conv2d_oracle` is its float64 twin computed by
:func:`gpuconv.oracle.conv2d`.  Both go through one argument mapping,
:func:`_tf_arguments`, which only translates PyTorch's arguments into TF's forms;
output sizes and pads are computed by :mod:`gpuconv.geometry`:

* ``input`` ``[N, C, H, W]`` (or ``[C, H, W]``) is already the ``"NCHW"`` data format;
* ``weight`` ``[out_channels, in_channels / groups, kH, kW]`` becomes TF's filter
  ``[kH, kW, in_channels / groups, out_channels]``;
* ``padding``: ``"valid"`` is ``"VALID"``; ``"same"`` (stride 1 only, as in
  PyTorch) is ``"SAME"`` -- for stride 1 both pad ``dilation * (k - 1)`` in total,
  the smaller half before; an int ``p`` or a pair ``(pH, pW)`` are the explicit
  pads ``[[pH, pH], [pW, pW]]``, whose output size is PyTorch's
  ``floor((H + 2 pH - dilation (kH - 1) - 1) / stride) + 1``.

A stride and a dilation may both be greater than 1, as in PyTorch.

This module does not import PyTorch (and is named so that ``import torch``
elsewhere still finds the real one).
"""

from __future__ import annotations

import numbers
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import numpy.typing as npt

from . import ops
from . import oracle as _oracle
from .arguments import as_tensor
from .geometry import IntsLike, normalize_hw

__all__ = ["conv2d", "conv2d_oracle"]

_INPUT_LAYOUT = "[batch, in_channels, height, width] or [in_channels, height, width]"
_WEIGHT_LAYOUT = "[out_channels, in_channels/groups, kH, kW]"

#: What ``padding`` may be: ``"valid"``, ``"same"``, an int or a pair ``(padH, padW)``.
TorchPadding = Union[str, int, Sequence[int]]


def _is_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _pair(value: Any, name: str) -> Tuple[int, int]:
    """``stride`` / ``dilation``: an int or a sequence of 1 or 2 ints (as PyTorch expands them)."""
    if isinstance(value, (list, tuple)):
        if len(value) == 1:
            value = (value[0], value[0])
        elif len(value) != 2:
            raise ValueError(f"{name} must be an int or a pair (h, w) of ints, got {value!r}")
    elif not _is_int(value):
        raise TypeError(f"{name} must be an int or a pair (h, w) of ints, got {value!r}")
    return normalize_hw(tuple(value) if isinstance(value, (list, tuple)) else value, name)


def _padding(padding: Any, stride: Tuple[int, int]) -> Union[str, List[List[int]]]:
    """PyTorch's padding as one of geometry's forms."""
    if isinstance(padding, str):
        if padding == "valid":
            return "VALID"
        if padding == "same":
            if stride != (1, 1):
                raise ValueError(
                    f"padding='same' is not supported for strided convolutions "
                    f"(as in PyTorch), got stride={stride}"
                )
            return "SAME"
        raise ValueError(f"padding must be 'same', 'valid', an int or a pair (padH, padW), "
                         f"got {padding!r}")
    if _is_int(padding):
        pads = (padding, padding)
    elif isinstance(padding, (list, tuple)) and len(padding) in (1, 2) and all(map(_is_int, padding)):
        pads = (padding[0], padding[-1])
    elif isinstance(padding, (list, tuple)):
        raise ValueError(f"padding must be 'same', 'valid', an int or a pair (padH, padW) of ints, "
                         f"got {padding!r}")
    else:
        raise TypeError(f"padding must be 'same', 'valid', an int or a pair (padH, padW) of ints, "
                        f"got {padding!r}")
    if min(pads) < 0:
        raise ValueError(f"negative padding is not supported, got padding={padding!r}")
    return [[int(pads[0]), int(pads[0])], [int(pads[1]), int(pads[1])]]


def _tf_arguments(input: npt.ArrayLike, weight: npt.ArrayLike, bias: Optional[npt.ArrayLike], stride: IntsLike,
                  padding: TorchPadding, dilation: IntsLike, groups: int) -> Dict[str, Any]:
    """Map ``torch.nn.functional.conv2d``'s arguments onto :func:`gpuconv.ops.conv2d`'s.

    Checks what the TF-style messages would name wrongly (``input``, ``weight``
    and its PyTorch layout, ``bias``, ``stride``, ``dilation``, ``padding``);
    everything else is checked by :mod:`gpuconv.geometry` when the op runs.
    """
    input = as_tensor(input, "input", ranks=(3, 4), layout=_INPUT_LAYOUT)
    weight = as_tensor(weight, "weight", ranks=(4,), layout=_WEIGHT_LAYOUT)
    stride_hw = _pair(stride, "stride")
    dilation_hw = _pair(dilation, "dilation")  # with any stride, as in PyTorch
    tf_padding = _padding(padding, stride_hw)

    out_channels, in_per_group = weight.shape[0], weight.shape[1]
    channels = input.shape[-3]
    if _is_int(groups) and groups >= 1:  # otherwise geometry reports groups itself
        if out_channels % groups:
            raise ValueError(
                f"weight's out_channels (dimension 0 of {_WEIGHT_LAYOUT}, {out_channels}) must be "
                f"divisible by groups={groups}; weight shape {weight.shape}"
            )
        if in_per_group * groups != channels:
            raise ValueError(
                f"weight must be {_WEIGHT_LAYOUT}: given groups={groups}, weight of shape "
                f"{weight.shape} expects an input with {in_per_group * groups} channels "
                f"(in_channels/groups = {in_per_group}), but input of shape {input.shape} has "
                f"{channels} channels (dimension {input.ndim - 3})"
            )
    if bias is not None:
        bias = as_tensor(bias, "bias", ranks=(1,), layout="[out_channels]")
        if bias.shape != (out_channels,):
            raise ValueError(
                f"bias must have shape [out_channels] = [{out_channels}] for a weight of shape "
                f"{weight.shape}, got shape {bias.shape}"
            )
    return dict(
        x=input,
        filter=weight.transpose(2, 3, 1, 0),  # [outC, inC/g, kH, kW] -> [kH, kW, inC/g, outC]
        strides=stride_hw,
        padding=tf_padding,
        data_format="NCHW",
        dilations=dilation_hw,
        groups=groups,
        bias=bias,
    )


def conv2d(input: npt.ArrayLike, weight: npt.ArrayLike, bias: Optional[npt.ArrayLike] = None, stride: IntsLike = 1,
           padding: TorchPadding = 0, dilation: IntsLike = 1, groups: int = 1) -> np.ndarray:
    """``torch.nn.functional.conv2d`` on NumPy arrays, run on the GPU.

    Args:
        input: ``[N, C, H, W]`` or unbatched ``[C, H, W]`` (float16/32/64).
        weight: ``[out_channels, C / groups, kH, kW]``.
        bias: ``[out_channels]`` or ``None``.
        stride, dilation: an int or a pair ``(h, w)`` (both may be greater than 1).
        padding: an int, a pair ``(padH, padW)``, ``"valid"`` or ``"same"`` (stride 1 only).
        groups: split input and output channels into this many groups.

    Returns:
        float32 ``[N, out_channels, outH, outW]`` (``[out_channels, outH, outW]`` for an
        unbatched input).

    Example:
        >>> from gpuconv import torch as gt
        >>> gt.conv2d(np.ones((1, 3, 5, 5), np.float32), np.ones((4, 3, 3, 3), np.float32),
        ...           padding=1).shape
        (1, 4, 5, 5)
    """
    return ops.conv2d(**_tf_arguments(input, weight, bias, stride, padding, dilation, groups))


def conv2d_oracle(input: npt.ArrayLike, weight: npt.ArrayLike, bias: Optional[npt.ArrayLike] = None,
                  stride: IntsLike = 1, padding: TorchPadding = 0, dilation: IntsLike = 1,
                  groups: int = 1) -> np.ndarray:
    """The float64 NumPy twin of :func:`conv2d` (same arguments, computed by the oracle)."""
    return _oracle.conv2d(**_tf_arguments(input, weight, bias, stride, padding, dilation, groups))
