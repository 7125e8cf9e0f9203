"""PyTorch's ``conv2d``, ``conv_transpose2d``, ``conv3d`` and ``conv1d`` conventions on NumPy
arrays, run by gpuconv's programs.  (:func:`conv_transpose2d`, :func:`conv3d` and
:func:`conv1d`, each with its ``*_oracle`` twin, are described further down.)

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
from .device import to_gpu
from .geometry import IntsLike, normalize_hw
from .tensor import Tensor

__all__ = ["conv1d", "conv1d_oracle", "conv2d", "conv2d_oracle", "conv3d", "conv3d_oracle",
           "conv_transpose2d", "conv_transpose2d_oracle"]

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
    _host_arrays(weight=weight)
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
           padding: TorchPadding = 0, dilation: IntsLike = 1, groups: int = 1) -> ops.Result:
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


# ---------------------------------------------------------------------------
# conv_transpose2d, conv3d and conv1d.
#
# Each maps PyTorch's arguments (one mapping per op, shared by the GPU function and its
# float64 twin) onto calls of one gpuconv op -- the same calls of ``gpuconv.ops.<op>``
# on the GPU and of ``gpuconv.oracle.<op>`` for the twin -- and assembles the result:
#
# * conv_transpose2d -> gpuconv.conv2d_transpose (NCHW, filter [kH, kW, outC/g, inC/g],
#   explicit pads, fused bias), one call per group (it has no groups), concatenated
#   along the channels;
# * conv3d -> gpuconv.conv3d (NCDHW, filter [kD, kH, kW, inC/g, outC/g]), one call per
#   group (Conv3DProgram has no groups), concatenated; the bias (conv3d has no fused
#   one) added afterwards;
# * conv1d -> gpuconv.conv2d on [N, C, 1, W] (NCHW, filter [1, kW, inC/g, outC]): one call
#   on conv2d's grouped program with the fused bias.  (gpuconv.conv1d is this same
#   height-1 conv2d, without groups or bias.)
#
# ``input`` may be a gpuconv.Tensor (the result is then a Tensor, as from the ops): it is read
# in place where the mapping is one call with nothing done on the host, otherwise read back,
# and the result uploaded again.  Weights (and biases) are NumPy arrays: they are rearranged here.

_INPUT_LAYOUT_T = _INPUT_LAYOUT
_WEIGHT_LAYOUT_T = "[in_channels, out_channels/groups, kH, kW]"
_INPUT_LAYOUT_3D = ("[batch, in_channels, depth, height, width] or "
                    "[in_channels, depth, height, width]")
_WEIGHT_LAYOUT_3D = "[out_channels, in_channels/groups, kD, kH, kW]"
_INPUT_LAYOUT_1D = "[batch, in_channels, width] or [in_channels, width]"
_WEIGHT_LAYOUT_1D = "[out_channels, in_channels/groups, kW]"
_AXES = {1: "(w)", 2: "(h, w)", 3: "(d, h, w)"}


def _ints(value: Any, name: str, n: int, minimum: int) -> Tuple[int, ...]:
    """An int or a sequence of 1 or ``n`` ints (PyTorch expands one value to every axis)."""
    what = f"an int or a tuple {_AXES[n]} of ints" if n > 1 else "an int or a 1-tuple of ints"
    if isinstance(value, (list, tuple)):
        if not all(map(_is_int, value)):
            raise TypeError(f"{name} must be {what}, got {value!r}")
        if len(value) not in (1, n):
            raise ValueError(f"{name} must be {what} ({n} values for a {n}-D convolution), got {value!r}")
        values = tuple(int(v) for v in value) * (n if len(value) == 1 else 1)
    elif _is_int(value):
        values = (int(value),) * n
    else:
        raise TypeError(f"{name} must be {what}, got {value!r}")
    if min(values) < minimum:
        rule = "positive" if minimum == 1 else "non-negative"
        raise ValueError(f"{name} must be {rule}, got {name}={value!r}")
    return values


def _check_groups(groups: Any) -> int:
    if not _is_int(groups):
        raise TypeError(f"groups must be a positive integer, got {groups!r}")
    if groups < 1:
        raise ValueError(f"groups must be a positive integer, got groups={groups!r}")
    return int(groups)


def _forward_pads(padding: Any, n: int, kernel: Tuple[int, ...], stride: Tuple[int, ...],
                  dilation: Tuple[int, ...]) -> List[List[int]]:
    """conv3d's and conv1d's ``padding`` as explicit pads ``[[before, after], ...]`` per axis."""
    if isinstance(padding, str):
        if padding == "valid":
            return [[0, 0] for _ in range(n)]
        if padding == "same":
            if any(s != 1 for s in stride):
                raise ValueError(f"padding='same' is not supported for strided convolutions "
                                 f"(as in PyTorch), got stride={stride}")
            # PyTorch: a total of dilation * (k - 1), the smaller half before
            totals = [d * (k - 1) for d, k in zip(dilation, kernel)]
            return [[t // 2, t - t // 2] for t in totals]
        raise ValueError(f"padding must be 'same', 'valid', an int or a tuple {_AXES[n]} of ints, "
                         f"got {padding!r}")
    try:
        pads = _ints(padding, "padding", n, 0)
    except (TypeError, ValueError) as exc:
        text = str(exc).replace("must be an int", "must be 'same', 'valid', an int")
        raise type(exc)(text) from None
    return [[p, p] for p in pads]


def _check_forward_size(spatial: Tuple[int, ...], pads: List[List[int]], kernel: Tuple[int, ...],
                        dilation: Tuple[int, ...], input_shape: Tuple[int, ...],
                        weight_shape: Tuple[int, ...]) -> None:
    padded = tuple(size + a + b for size, (a, b) in zip(spatial, pads))
    extent = tuple(d * (k - 1) + 1 for d, k in zip(dilation, kernel))
    if any(p < e for p, e in zip(padded, extent)):
        raise ValueError(
            f"the kernel does not fit in the padded input: input of shape {input_shape} padded to "
            f"{padded} per channel is smaller than the dilated kernel size {extent} (weight of shape "
            f"{weight_shape}, dilation {dilation})"
        )


def _check_bias(bias: Optional[npt.ArrayLike], out_channels: int,
                weight_shape: Tuple[int, ...]) -> Optional[np.ndarray]:
    if bias is None:
        return None
    array = as_tensor(bias, "bias", ranks=(1,), layout="[out_channels]")
    if array.shape != (out_channels,):
        raise ValueError(f"bias must have shape [out_channels] = [{out_channels}] for a weight of shape "
                         f"{weight_shape}, got shape {array.shape}")
    return array


def _host_arrays(**arrays: Any) -> None:
    """The weight and the bias are rearranged on the host: a :class:`~gpuconv.Tensor` there is refused."""
    for name, value in arrays.items():
        if isinstance(value, Tensor):
            raise TypeError(f"{name} must be a NumPy array, got a gpuconv.Tensor: the PyTorch adapters rearrange "
                            f"{name} on the host (pass {name}.numpy()); input may be a Tensor")


def _read_back(input: Any, host: bool) -> Tuple[Any, Any]:
    """``(input, runtime)``: a Tensor input read back when the mapping needs the host (groups
    split, a bias or rows added), with the runtime its result goes back to; else as it is."""
    if host and isinstance(input, Tensor):
        return input.numpy(), input.runtime
    return input, None


class _Calls:
    """The gpuconv calls one PyTorch call maps onto, and how their results make PyTorch's.

    ``op`` names the function in :mod:`gpuconv.ops` and its twin in :mod:`gpuconv.oracle`;
    ``calls`` holds one set of keyword arguments per call (one per group, or one); the
    results are concatenated along ``channel_axis`` (negative: batched or not), grown by
    ``extend`` zeros at the end of each spatial axis, the ``bias`` (not fused into the
    calls) added per channel, and reshaped to ``out_shape``.  With no ``calls`` the
    result is zeros (plus the bias).  ``runtime``: where a Tensor input came from when it
    was read back for this host work; the GPU result goes back there as a Tensor.
    """

    def __init__(self, op: str, calls: List[Dict[str, Any]], channel_axis: int, out_shape: Tuple[int, ...],
                 bias: Optional[np.ndarray] = None, extend: Tuple[int, ...] = (), runtime: Any = None) -> None:
        self.op, self.calls, self.channel_axis = op, calls, channel_axis
        self.out_shape, self.bias, self.extend, self.runtime = out_shape, bias, extend, runtime

    def run(self, module: Any, dtype: Any) -> Any:
        function = getattr(module, self.op)
        if not self.calls:
            y = np.zeros(self.out_shape, dtype)
        else:
            parts = [function(**call) for call in self.calls]
            y = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=self.channel_axis)
            if any(self.extend):
                y = np.pad(y, [(0, 0)] * (y.ndim - len(self.extend)) + [(0, e) for e in self.extend])
            y = y.reshape(self.out_shape)
        if self.bias is not None:
            spatial = -self.channel_axis - 1
            y = y + self.bias.astype(dtype).reshape((-1,) + (1,) * spatial)
        if self.runtime is not None and module is ops:
            return to_gpu(y, self.runtime)
        return y


def _channel_slice(array: Any, axis: int, start: int, size: int) -> Any:
    if start == 0 and size == array.shape[axis]:
        return array  # the whole input (perhaps a Tensor, read in place)
    index = [slice(None)] * array.ndim
    index[axis] = slice(start, start + size)
    return array[tuple(index)]


def _transpose_calls(input: npt.ArrayLike, weight: npt.ArrayLike, bias: Optional[npt.ArrayLike], stride: Any,
                     padding: Any, output_padding: Any, groups: Any, dilation: Any) -> _Calls:
    """Map ``torch.nn.functional.conv_transpose2d``'s arguments onto gpuconv.conv2d_transpose calls.

    PyTorch's output size is ``(H - 1) stride - 2 padding + dilation (kH - 1) + output_padding + 1``.
    The transposed convolution is the gradient of the forward convolution of that size
    by the same kernel with pads ``[padding, after]``, whose output has ``H`` rows: any
    ``after`` with ``padding - output_padding <= after <= padding - output_padding +
    stride - 1`` gives it, and the result does not depend on which.  gpuconv takes
    ``after = max(padding - output_padding, 0)``.  Only when ``output_padding >= padding
    + stride`` (PyTorch allows ``output_padding`` up to ``dilation - 1``) is there no
    such pad: the last ``output_padding - padding - stride + 1`` rows, which no input
    pixel reaches, are then left out of the GPU call and appended as zeros (plus the bias).
    """
    input = as_tensor(input, "input", ranks=(3, 4), layout=_INPUT_LAYOUT_T)
    _host_arrays(weight=weight, bias=bias)
    weight = as_tensor(weight, "weight", ranks=(4,), layout=_WEIGHT_LAYOUT_T)
    stride_hw = _ints(stride, "stride", 2, 1)
    if isinstance(padding, str):
        raise TypeError(f"padding must be an int or a tuple (h, w) of ints for conv_transpose2d "
                        f"(it takes no 'same' or 'valid', as in PyTorch), got {padding!r}")
    pad_hw = _ints(padding, "padding", 2, 0)
    out_pad = _ints(output_padding, "output_padding", 2, 0)
    dilation_hw = _ints(dilation, "dilation", 2, 1)
    groups = _check_groups(groups)
    for axis, (op, s, d) in enumerate(zip(out_pad, stride_hw, dilation_hw)):
        if op >= s and op >= d:
            raise ValueError(
                f"output_padding must be smaller than either stride or dilation (as in PyTorch), got "
                f"output_padding={out_pad}, stride={stride_hw}, dilation={dilation_hw} "
                f"({'hw'[axis]}: {op} >= {s} and {op} >= {d})"
            )
    channels = input.shape[-3]
    if weight.shape[0] != channels:
        raise ValueError(
            f"weight must be {_WEIGHT_LAYOUT_T}: its in_channels (dimension 0, {weight.shape[0]}) must "
            f"equal input's channels ({channels}, dimension {input.ndim - 3}); weight shape "
            f"{weight.shape}, input shape {input.shape}"
        )
    if channels % groups:
        raise ValueError(f"input's channels ({channels}) and weight's in_channels (dimension 0 of "
                         f"{_WEIGHT_LAYOUT_T}) must be divisible by groups={groups}")
    per_group_out = weight.shape[1]
    out_channels = per_group_out * groups
    bias_array = _check_bias(bias, out_channels, weight.shape)

    spatial, kernel = input.shape[-2:], weight.shape[2:]
    sizes, computed, after = [], [], []
    for i, k, s, p, op, d in zip(spatial, kernel, stride_hw, pad_hw, out_pad, dilation_hw):
        size = (i - 1) * s - 2 * p + d * (k - 1) + op + 1
        sizes.append(size)
        cut = max(op - p - s + 1, 0)  # trailing rows no input pixel reaches, when no pad gives them
        computed.append(size - cut)
        after.append(max(p - op, 0))
    if min(sizes) < 1:
        raise ValueError(
            f"the output is empty: input of shape {input.shape} and weight of shape {weight.shape} with "
            f"stride={stride_hw}, padding={pad_hw}, output_padding={out_pad}, dilation={dilation_hw} give "
            f"an output of {tuple(sizes)} per channel ((H - 1) * stride - 2 * padding + dilation * "
            f"(kH - 1) + output_padding + 1)"
        )
    out_shape = input.shape[:-3] + (out_channels,) + tuple(sizes)
    extend = tuple(a - b for a, b in zip(sizes, computed))
    calls: List[Dict[str, Any]] = []
    reached = min(computed) >= 1  # otherwise no input pixel reaches the output: it is the bias
    fused = not any(extend)
    source, runtime = _read_back(input, groups > 1 or not fused or not reached)
    if reached:
        per_group_in = channels // groups
        for g in range(groups):
            w = weight[g * per_group_in:(g + 1) * per_group_in]
            calls.append(dict(
                x=_channel_slice(source, -3, g * per_group_in, per_group_in),
                filter=w.transpose(2, 3, 1, 0),  # [inC/g, outC/g, kH, kW] -> [kH, kW, outC/g, inC/g]
                output_shape=(per_group_out,) + tuple(computed),
                strides=stride_hw,
                padding=[[pad_hw[0], after[0]], [pad_hw[1], after[1]]],
                data_format="NCHW",
                dilations=dilation_hw,
                bias=None if bias_array is None or not fused else
                bias_array[g * per_group_out:(g + 1) * per_group_out],
            ))
        if fused:
            bias_array = None
    return _Calls("conv2d_transpose", calls, -3, out_shape, bias_array, extend, runtime)


def _grouped_forward(input: np.ndarray, weight: np.ndarray, groups: int, weight_layout: str) -> Tuple[int, int]:
    """Check the channels of a forward convolution's input and weight; (out_channels, in_channels/groups)."""
    out_channels, per_group = weight.shape[0], weight.shape[1]
    n = weight.ndim - 2
    channels = input.shape[-n - 1]
    if out_channels % groups:
        raise ValueError(f"weight's out_channels (dimension 0 of {weight_layout}, {out_channels}) must be "
                         f"divisible by groups={groups}; weight shape {weight.shape}")
    if per_group * groups != channels:
        raise ValueError(
            f"weight must be {weight_layout}: given groups={groups}, weight of shape {weight.shape} "
            f"expects an input with {per_group * groups} channels (in_channels/groups = {per_group}), "
            f"but input of shape {input.shape} has {channels} channels (dimension {input.ndim - n - 1})"
        )
    return out_channels, per_group


def _conv3d_calls(input: npt.ArrayLike, weight: npt.ArrayLike, bias: Optional[npt.ArrayLike], stride: Any,
                  padding: Any, dilation: Any, groups: Any) -> _Calls:
    """Map ``torch.nn.functional.conv3d``'s arguments onto gpuconv.conv3d calls (one per group)."""
    input = as_tensor(input, "input", ranks=(4, 5), layout=_INPUT_LAYOUT_3D)
    _host_arrays(weight=weight, bias=bias)
    weight = as_tensor(weight, "weight", ranks=(5,), layout=_WEIGHT_LAYOUT_3D)
    stride_dhw = _ints(stride, "stride", 3, 1)
    dilation_dhw = _ints(dilation, "dilation", 3, 1)
    kernel = tuple(weight.shape[2:])
    pads = _forward_pads(padding, 3, kernel, stride_dhw, dilation_dhw)
    groups = _check_groups(groups)
    out_channels, per_group = _grouped_forward(input, weight, groups, _WEIGHT_LAYOUT_3D)
    bias_array = _check_bias(bias, out_channels, weight.shape)
    _check_forward_size(input.shape[-3:], pads, kernel, dilation_dhw, input.shape, weight.shape)
    out_spatial = tuple((i + a + b - d * (k - 1) - 1) // s + 1
                        for i, (a, b), k, s, d in zip(input.shape[-3:], pads, kernel, stride_dhw, dilation_dhw))
    per_group_out = out_channels // groups
    source, runtime = _read_back(input, groups > 1 or bias_array is not None)
    calls = [dict(
        x=_channel_slice(source, -4, g * per_group, per_group),
        filter=weight[g * per_group_out:(g + 1) * per_group_out].transpose(2, 3, 4, 1, 0),  # -> [kD, kH, kW, in, out]
        strides=stride_dhw,
        padding=pads,
        data_format="NCDHW",
        dilations=dilation_dhw,
    ) for g in range(groups)]
    return _Calls("conv3d", calls, -4, input.shape[:-4] + (out_channels,) + out_spatial, bias_array,
                  runtime=runtime)


def _conv1d_calls(input: npt.ArrayLike, weight: npt.ArrayLike, bias: Optional[npt.ArrayLike], stride: Any,
                  padding: Any, dilation: Any, groups: Any) -> _Calls:
    """Map ``torch.nn.functional.conv1d``'s arguments onto one gpuconv.conv2d call of height 1 (NCHW)."""
    input = as_tensor(input, "input", ranks=(2, 3), layout=_INPUT_LAYOUT_1D)
    _host_arrays(weight=weight, bias=bias)
    weight = as_tensor(weight, "weight", ranks=(3,), layout=_WEIGHT_LAYOUT_1D)
    (stride_w,) = _ints(stride, "stride", 1, 1)
    (dilation_w,) = _ints(dilation, "dilation", 1, 1)
    kernel = (weight.shape[2],)
    pads = _forward_pads(padding, 1, kernel, (stride_w,), (dilation_w,))
    groups = _check_groups(groups)
    out_channels, _ = _grouped_forward(input, weight, groups, _WEIGHT_LAYOUT_1D)
    bias_array = _check_bias(bias, out_channels, weight.shape)
    _check_forward_size(input.shape[-1:], pads, kernel, (dilation_w,), input.shape, weight.shape)
    out_width = (input.shape[-1] + sum(pads[0]) - dilation_w * (kernel[0] - 1) - 1) // stride_w + 1
    x4 = input.reshape(input.shape[:-1] + (1, input.shape[-1]))  # [N, C, 1, W]
    call = dict(
        x=x4,
        filter=weight[:, :, np.newaxis].transpose(2, 3, 1, 0),  # [out, in/g, 1, kW] -> [1, kW, in/g, out]
        strides=(1, stride_w),
        padding=[[0, 0], pads[0]],
        data_format="NCHW",
        dilations=(1, dilation_w),
        groups=groups,
        bias=bias_array,
    )
    return _Calls("conv2d", [call], -2, input.shape[:-2] + (out_channels, out_width))


def conv_transpose2d(input: npt.ArrayLike, weight: npt.ArrayLike, bias: Optional[npt.ArrayLike] = None,
                     stride: IntsLike = 1, padding: IntsLike = 0, output_padding: IntsLike = 0, groups: int = 1,
                     dilation: IntsLike = 1) -> np.ndarray:
    """``torch.nn.functional.conv_transpose2d`` on NumPy arrays, run on the GPU.

    Args:
        input: ``[N, C, H, W]`` or unbatched ``[C, H, W]``.
        weight: ``[C, out_channels / groups, kH, kW]`` (PyTorch's transposed layout).
        bias: ``[out_channels]`` or ``None``.
        stride, padding, output_padding, dilation: an int or a pair ``(h, w)``;
            ``output_padding`` smaller than the stride or the dilation on each axis.
        groups: split the channels into this many groups (one GPU call each).

    Returns:
        float32 ``[N, out_channels, outH, outW]`` with ``outH = (H - 1) stride - 2 padding +
        dilation (kH - 1) + output_padding + 1`` (no ``N`` for an unbatched input).

    Example:
        >>> from gpuconv import torch as gt
        >>> gt.conv_transpose2d(np.ones((1, 3, 4, 4), np.float32), np.ones((3, 2, 3, 3), np.float32),
        ...                     stride=2, padding=1, output_padding=1).shape
        (1, 2, 8, 8)
    """
    return _transpose_calls(input, weight, bias, stride, padding, output_padding, groups,
                            dilation).run(ops, np.float32)


def conv_transpose2d_oracle(input: npt.ArrayLike, weight: npt.ArrayLike, bias: Optional[npt.ArrayLike] = None,
                            stride: IntsLike = 1, padding: IntsLike = 0, output_padding: IntsLike = 0,
                            groups: int = 1, dilation: IntsLike = 1) -> np.ndarray:
    """The float64 NumPy twin of :func:`conv_transpose2d` (same arguments, computed by the oracle)."""
    return _transpose_calls(input, weight, bias, stride, padding, output_padding, groups,
                            dilation).run(_oracle, np.float64)


def conv3d(input: npt.ArrayLike, weight: npt.ArrayLike, bias: Optional[npt.ArrayLike] = None, stride: IntsLike = 1,
           padding: TorchPadding = 0, dilation: IntsLike = 1, groups: int = 1) -> np.ndarray:
    """``torch.nn.functional.conv3d`` on NumPy arrays, run on the GPU.

    Args:
        input: ``[N, C, D, H, W]`` or unbatched ``[C, D, H, W]``.
        weight: ``[out_channels, C / groups, kD, kH, kW]``.
        bias: ``[out_channels]`` or ``None`` (added to the GPU's result).
        stride, dilation: an int or a triple ``(d, h, w)`` (both may be greater than 1).
        padding: an int, a triple, ``"valid"`` or ``"same"`` (stride 1 only).
        groups: split the channels into this many groups (one GPU call each).

    Returns:
        float32 ``[N, out_channels, outD, outH, outW]`` (no ``N`` for an unbatched input).

    Example:
        >>> from gpuconv import torch as gt
        >>> gt.conv3d(np.ones((1, 2, 5, 5, 5), np.float32), np.ones((4, 2, 3, 3, 3), np.float32),
        ...           padding="same").shape
        (1, 4, 5, 5, 5)
    """
    return _conv3d_calls(input, weight, bias, stride, padding, dilation, groups).run(ops, np.float32)


def conv3d_oracle(input: npt.ArrayLike, weight: npt.ArrayLike, bias: Optional[npt.ArrayLike] = None,
                  stride: IntsLike = 1, padding: TorchPadding = 0, dilation: IntsLike = 1,
                  groups: int = 1) -> np.ndarray:
    """The float64 NumPy twin of :func:`conv3d` (same arguments, computed by the oracle)."""
    return _conv3d_calls(input, weight, bias, stride, padding, dilation, groups).run(_oracle, np.float64)


def conv1d(input: npt.ArrayLike, weight: npt.ArrayLike, bias: Optional[npt.ArrayLike] = None, stride: IntsLike = 1,
           padding: TorchPadding = 0, dilation: IntsLike = 1, groups: int = 1) -> np.ndarray:
    """``torch.nn.functional.conv1d`` on NumPy arrays, run on the GPU (a conv2d of height 1).

    Args:
        input: ``[N, C, W]`` or unbatched ``[C, W]``.
        weight: ``[out_channels, C / groups, kW]``.
        bias: ``[out_channels]`` or ``None`` (fused).
        stride, dilation: an int or a 1-tuple.
        padding: an int, a 1-tuple, ``"valid"`` or ``"same"`` (stride 1 only).
        groups: grouped convolution (conv2d's grouped program).

    Returns:
        float32 ``[N, out_channels, outW]`` (no ``N`` for an unbatched input).

    Example:
        >>> from gpuconv import torch as gt
        >>> gt.conv1d(np.ones((1, 3, 10), np.float32), np.ones((2, 3, 3), np.float32)).shape
        (1, 2, 8)
    """
    return _conv1d_calls(input, weight, bias, stride, padding, dilation, groups).run(ops, np.float32)


def conv1d_oracle(input: npt.ArrayLike, weight: npt.ArrayLike, bias: Optional[npt.ArrayLike] = None,
                  stride: IntsLike = 1, padding: TorchPadding = 0, dilation: IntsLike = 1,
                  groups: int = 1) -> np.ndarray:
    """The float64 NumPy twin of :func:`conv1d` (same arguments, computed by the oracle)."""
    return _conv1d_calls(input, weight, bias, stride, padding, dilation, groups).run(_oracle, np.float64)
