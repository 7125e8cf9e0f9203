"""Caffe's ``Convolution`` and ``Deconvolution`` layers on NumPy blobs, run by gpuconv's programs.

:class:`Convolution` takes the fields of Caffe's ``convolution_param`` (as keyword
arguments, or as a dict through :meth:`Convolution.from_param`) and follows
Caffe's rules for them (``ConvolutionParameter`` and ``BaseConvolutionLayer``):

* the kernel is ``kernel_size`` (one value, or one per spatial axis ``[h, w]``)
  *or* ``kernel_h`` and ``kernel_w``, never both;
* ``pad`` (default 0) and ``stride`` (default 1) are likewise one value, one per
  axis, or ``pad_h``/``pad_w`` (a missing one is 0) and ``stride_h``/``stride_w``
  (both needed); ``dilation`` is one value or one per axis (default 1);
* ``num_output`` must be a multiple of ``group``, and so must the input's channels;
* weights are ``[num_output, channels / group, kernel_h, kernel_w]``, the bias
  ``[num_output]`` (present exactly when ``bias_term``).

The output size is Caffe's ``floor((H + 2 pad - (dilation (k - 1) + 1)) / stride) + 1``,
which is the explicit-padding rule of :mod:`gpuconv.geometry` with pads
``[[pad_h, pad_h], [pad_w, pad_w]]``; the geometry computes it.  Calling the layer
runs :func:`gpuconv.ops.conv2d` on the NCHW blob; :meth:`Convolution.forward_oracle`
is the float64 twin from :func:`gpuconv.oracle.conv2d`.  A stride and a dilation
may both be greater than 1, as in Caffe.

:class:`Deconvolution` reads the same fields; its weight is ``[channels, num_output /
group, kernel_h, kernel_w]`` (Caffe stores it as the forward convolution's), its top
``stride (in - 1) + dilation (k - 1) + 1 - 2 pad`` rows and columns; it runs as
:func:`gpuconv.torch.conv_transpose2d` with ``output_padding=0`` (the same mapping).
"""

from __future__ import annotations

import numbers
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple, Type, TypeVar, Union

import numpy as np
import numpy.typing as npt

from . import ops
from . import oracle as _oracle
from .arguments import as_tensor
from .geometry import Conv2DGeometry, ShapeLike, conv2d_geometry

__all__ = ["Convolution", "Deconvolution"]

_BLOB_LAYOUT = "[num, channels, height, width]"
_WEIGHT_LAYOUT = "[num_output, channels / group, kernel_h, kernel_w]"

#: convolution_param fields that do not change what the forward pass computes.
_IGNORED_FIELDS = ("weight_filler", "bias_filler", "engine", "force_nd_im2col")
#: A repeated convolution_param field: not given (``None`` or ``[]``), one value, or one per axis.
Repeated = Union[int, Sequence[int], None]

_FIELDS = ("num_output", "kernel_size", "kernel_h", "kernel_w", "stride", "stride_h", "stride_w",
           "pad", "pad_h", "pad_w", "dilation", "group", "bias_term", "axis") + _IGNORED_FIELDS


def _is_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _check_int(value: Any, name: str, minimum: int) -> int:
    if not _is_int(value):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        rule = "positive" if minimum == 1 else "non-negative"
        raise ValueError(f"{name} must be {rule}, got {value!r}")
    return int(value)


def _repeated(value: Any, name: str, minimum: int) -> Tuple[int, ...]:
    """A repeated field: ``None`` or ``[]`` (not given), one value, or a list of 1 or 2 values."""
    if value is None:
        return ()
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    if len(values) > 2:
        raise ValueError(
            f"{name} must be specified once, or once per spatial dimension (2 for a 2-D "
            f"convolution), got {len(values)} values: {value!r}"
        )
    return tuple(_check_int(v, name, minimum) for v in values)


def _hw(repeated: Any, h: Any, w: Any, name: str, default: int, minimum: int,
        both_required: bool) -> Tuple[int, int]:
    """Combine the repeated field ``name`` with its ``_h``/``_w`` fields as Caffe does.

    ``name`` is ``"kernel"`` (the repeated field is ``kernel_size``), ``"stride"`` or ``"pad"``.
    """
    field = "kernel_size" if name == "kernel" else name
    h_name, w_name = f"{name}_h", f"{name}_w"
    values = _repeated(repeated, field, minimum)
    if h is not None or w is not None:
        if values:
            raise ValueError(f"either {field} or {h_name}/{w_name} should be specified; not both "
                             f"(got {field}={repeated!r}, {h_name}={h!r}, {w_name}={w!r})")
        if both_required and (h is None or w is None):
            raise ValueError(f"both {h_name} and {w_name} are required when either is given "
                             f"(got {h_name}={h!r}, {w_name}={w!r})")
        return (_check_int(default if h is None else h, h_name, minimum),
                _check_int(default if w is None else w, w_name, minimum))
    if not values:
        return default, default
    return values[0], values[-1]


_Layer = TypeVar("_Layer", bound="_ConvolutionLayer")


class _ConvolutionLayer:
    """What Caffe's ``BaseConvolutionLayer`` reads from ``convolution_param`` (both layers)."""

    def __init__(self, num_output: int, kernel_size: Repeated = None, kernel_h: Optional[int] = None,
                 kernel_w: Optional[int] = None, stride: Repeated = None, stride_h: Optional[int] = None,
                 stride_w: Optional[int] = None, pad: Repeated = None, pad_h: Optional[int] = None,
                 pad_w: Optional[int] = None, dilation: Repeated = None, group: int = 1, bias_term: bool = True,
                 weight: Optional[npt.ArrayLike] = None, bias: Optional[npt.ArrayLike] = None) -> None:
        self.num_output = _check_int(num_output, "num_output", 1)
        if kernel_size is None and kernel_h is None and kernel_w is None:
            raise ValueError("the kernel size is required: give kernel_size, or kernel_h and kernel_w")
        if kernel_size is not None and not _repeated(kernel_size, "kernel_size", 1):
            raise ValueError("kernel_size is empty: give one value, [kernel_h, kernel_w], "
                             "or kernel_h and kernel_w")
        self.kernel = _hw(kernel_size, kernel_h, kernel_w, "kernel", 0, 1, both_required=True)
        self.stride = _hw(stride, stride_h, stride_w, "stride", 1, 1, both_required=True)
        self.pad = _hw(pad, pad_h, pad_w, "pad", 0, 0, both_required=False)
        dilations = _repeated(dilation, "dilation", 1) or (1,)
        self.dilation = (dilations[0], dilations[-1])  # with any stride, as in Caffe
        self.group = _check_int(group, "group", 1)
        if self.num_output % self.group:
            raise ValueError(f"num_output ({self.num_output}) must be a multiple of group ({self.group})")
        if not isinstance(bias_term, (bool, np.bool_)):
            raise TypeError(f"bias_term must be a bool, got {bias_term!r}")
        self.bias_term = bool(bias_term)
        self.weight: Optional[np.ndarray] = None
        self.bias: Optional[np.ndarray] = None
        if weight is not None or bias is not None:
            self.set_params(weight, bias)

    @classmethod
    def from_param(cls: Type[_Layer], param: Mapping[str, Any], weight: Optional[npt.ArrayLike] = None,
                   bias: Optional[npt.ArrayLike] = None) -> _Layer:
        """A layer from a dict of ``convolution_param`` fields, as a prototxt parser gives them.

        Repeated fields may be a single value or a list.  ``weight_filler``,
        ``bias_filler``, ``engine`` and ``force_nd_im2col`` are accepted and ignored
        (they do not change the forward pass); ``axis`` must be 1 (channels).
        """
        if not isinstance(param, Mapping):
            raise TypeError(f"param must be a dict of convolution_param fields, got {type(param).__name__}")
        unknown = sorted(set(param) - set(_FIELDS))
        if unknown:
            raise ValueError(f"unknown convolution_param fields {unknown}; known: {', '.join(_FIELDS)}")
        if "num_output" not in param:
            raise ValueError("convolution_param must give num_output")
        axis = param.get("axis", 1)
        if axis not in (1, -3):
            raise ValueError(f"only axis 1 (the channel axis of an NCHW blob) is supported, got axis={axis!r}")
        fields = {k: v for k, v in param.items() if k not in _IGNORED_FIELDS and k != "axis"}
        return cls(**fields, weight=weight, bias=bias)

    def set_params(self, weight: Optional[npt.ArrayLike], bias: Optional[npt.ArrayLike] = None) -> None:
        raise NotImplementedError

    def _checked_bias(self, bias: Optional[npt.ArrayLike]) -> Optional[np.ndarray]:
        if self.bias_term:
            if bias is None:
                raise ValueError(f"bias_term is true: a bias of shape [num_output] = [{self.num_output}] "
                                 f"is required")
            array = as_tensor(bias, "bias", ranks=(1,), layout="[num_output]")
            if array.shape != (self.num_output,):
                raise ValueError(f"bias must have shape [num_output] = [{self.num_output}], "
                                 f"got shape {array.shape}")
            return array
        if bias is not None:
            raise ValueError("bias_term is false: the layer takes no bias (got one)")
        return None

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(num_output={self.num_output}, kernel={self.kernel}, "
                f"stride={self.stride}, pad={self.pad}, dilation={self.dilation}, group={self.group}, "
                f"bias_term={self.bias_term})")


class Convolution(_ConvolutionLayer):
    """Caffe's ``Convolution`` layer (2-D, NCHW blobs).

    Args:
        num_output: output channels.
        kernel_size: one value or ``[kernel_h, kernel_w]``; or give ``kernel_h`` and
            ``kernel_w`` instead.
        stride, pad, dilation: one value or ``[h, w]``; ``stride_h``/``stride_w`` and
            ``pad_h``/``pad_w`` instead of ``stride`` / ``pad``.  Defaults 1, 0, 1.
        group: grouped convolution (``num_output`` and the input channels divisible by it).
        bias_term: whether the layer has a bias.
        weight: ``[num_output, channels / group, kernel_h, kernel_w]`` (Caffe's blob 0).
        bias: ``[num_output]`` (blob 1), given exactly when ``bias_term`` (with a weight).

    Example:
        >>> layer = Convolution(num_output=4, kernel_size=3, pad=1,
        ...                     weight=np.ones((4, 3, 3, 3), np.float32), bias=np.zeros(4))
        >>> layer(np.ones((1, 3, 7, 7), np.float32)).shape
        (1, 4, 7, 7)
    """

    # -- parameters ------------------------------------------------------------
    def set_params(self, weight: Optional[npt.ArrayLike], bias: Optional[npt.ArrayLike] = None) -> None:
        """Set the learned blobs: ``weight`` ``[num_output, channels / group, kh, kw]``, ``bias``."""
        if weight is None:
            raise ValueError(f"weight is required ({_WEIGHT_LAYOUT}) when a bias is given")
        weight = as_tensor(weight, "weight", ranks=(4,), layout=_WEIGHT_LAYOUT)
        if weight.shape[0] != self.num_output or weight.shape[2:] != self.kernel:
            raise ValueError(
                f"weight must have shape {_WEIGHT_LAYOUT} = [{self.num_output}, channels / group, "
                f"{self.kernel[0]}, {self.kernel[1]}], got shape {weight.shape}"
            )
        self.weight, self.bias = weight, self._checked_bias(bias)

    # -- the mapping onto gpuconv's TF-style ops ---------------------------------
    def _options(self, channels: int) -> Dict[str, Any]:
        """Everything but the arrays: strides, explicit pads, dilations, groups (NCHW)."""
        if channels % self.group:
            raise ValueError(f"the input's channels ({channels}) must be a multiple of group ({self.group})")
        (pad_h, pad_w) = self.pad
        return dict(strides=self.stride, padding=[[pad_h, pad_h], [pad_w, pad_w]],
                    data_format="NCHW", dilations=self.dilation, groups=self.group)

    def _tf_arguments(self, bottom: npt.ArrayLike) -> Dict[str, Any]:
        bottom = as_tensor(bottom, "bottom", ranks=(4,), layout=_BLOB_LAYOUT)
        if self.weight is None:
            raise ValueError(f"the layer has no weight: pass weight= ({_WEIGHT_LAYOUT}) or call set_params")
        options = self._options(bottom.shape[1])
        per_group = bottom.shape[1] // self.group
        if self.weight.shape[1] != per_group:
            raise ValueError(
                f"weight must have shape {_WEIGHT_LAYOUT} = [{self.num_output}, {per_group}, "
                f"{self.kernel[0]}, {self.kernel[1]}] for a bottom of shape {bottom.shape} and "
                f"group={self.group}, got shape {self.weight.shape}"
            )
        return dict(x=bottom, filter=self.weight.transpose(2, 3, 1, 0), bias=self.bias, **options)

    def geometry(self, input_shape: ShapeLike) -> Conv2DGeometry:
        """The :class:`~gpuconv.geometry.Conv2DGeometry` for an NCHW ``input_shape``."""
        shape = tuple(input_shape)
        if len(shape) != 4:
            raise ValueError(f"input_shape must be {_BLOB_LAYOUT}, got {shape!r}")
        options = self._options(int(shape[1]))
        filter_shape = (self.kernel[0], self.kernel[1], int(shape[1]) // self.group, self.num_output)
        return conv2d_geometry(shape, filter_shape, **options)

    def output_shape(self, input_shape: ShapeLike) -> Tuple[int, int, int, int]:
        """The top blob's shape ``[num, num_output, out_h, out_w]`` for an NCHW ``input_shape``."""
        return self.geometry(input_shape).out_shape

    # -- forward -----------------------------------------------------------------
    def __call__(self, bottom: npt.ArrayLike) -> ops.Result:
        """The top blob (float32 ``[num, num_output, out_h, out_w]``), computed on the GPU
        (a :class:`~gpuconv.Tensor` for a Tensor ``bottom``)."""
        return ops.conv2d(**self._tf_arguments(bottom))

    #: Caffe's name for :meth:`__call__`.
    forward = __call__

    def forward_oracle(self, bottom: npt.ArrayLike) -> np.ndarray:
        """The float64 twin of :meth:`__call__`, computed by :func:`gpuconv.oracle.conv2d`."""
        return _oracle.conv2d(**self._tf_arguments(bottom))


_DECONV_WEIGHT_LAYOUT = "[channels, num_output / group, kernel_h, kernel_w]"


class Deconvolution(_ConvolutionLayer):
    """Caffe's ``Deconvolution`` layer (2-D, NCHW blobs): the transposed :class:`Convolution`.

    Takes the same ``convolution_param`` fields, with Caffe's ``DeconvolutionLayer``
    meaning: the top blob has ``num_output`` channels and
    ``out = stride (in - 1) + dilation (kernel - 1) + 1 - 2 pad`` rows (and columns);
    the weight is stored as the forward convolution's, ``[channels, num_output / group,
    kernel_h, kernel_w]`` (``channels``: the bottom's), the bias ``[num_output]``.

    It is PyTorch's ``conv_transpose2d`` with ``output_padding=0`` (the same weight
    layout), and runs through the same mapping (:func:`gpuconv.torch.conv_transpose2d`):
    one :func:`gpuconv.ops.conv2d_transpose` call per group, concatenated along the
    channels.  :meth:`forward_oracle` is the float64 twin.

    Example:
        >>> layer = Deconvolution(num_output=2, kernel_size=4, stride=2, pad=1,
        ...                       weight=np.ones((3, 2, 4, 4), np.float32), bias=np.zeros(2))
        >>> layer(np.ones((1, 3, 5, 5), np.float32)).shape
        (1, 2, 10, 10)
    """

    def set_params(self, weight: Optional[npt.ArrayLike], bias: Optional[npt.ArrayLike] = None) -> None:
        """Set the learned blobs: ``weight`` ``[channels, num_output / group, kh, kw]``, ``bias``."""
        if weight is None:
            raise ValueError(f"weight is required ({_DECONV_WEIGHT_LAYOUT}) when a bias is given")
        weight = as_tensor(weight, "weight", ranks=(4,), layout=_DECONV_WEIGHT_LAYOUT)
        per_group = self.num_output // self.group
        if weight.shape[1] != per_group or weight.shape[2:] != self.kernel:
            raise ValueError(
                f"weight must have shape {_DECONV_WEIGHT_LAYOUT} = [channels, {per_group}, {self.kernel[0]}, "
                f"{self.kernel[1]}] (num_output={self.num_output}, group={self.group}), got shape {weight.shape}"
            )
        if weight.shape[0] % self.group:
            raise ValueError(f"weight's channels (dimension 0 of {_DECONV_WEIGHT_LAYOUT}, {weight.shape[0]}) "
                             f"must be a multiple of group ({self.group})")
        self.weight, self.bias = weight, self._checked_bias(bias)

    def output_shape(self, input_shape: ShapeLike) -> Tuple[int, int, int, int]:
        """The top blob's shape ``[num, num_output, out_h, out_w]`` for an NCHW ``input_shape``."""
        shape = tuple(int(d) for d in input_shape)
        if len(shape) != 4:
            raise ValueError(f"input_shape must be {_BLOB_LAYOUT}, got {shape!r}")
        if shape[1] % self.group:
            raise ValueError(f"the input's channels ({shape[1]}) must be a multiple of group ({self.group})")
        sizes = tuple(s * (i - 1) + d * (k - 1) + 1 - 2 * p
                      for i, k, s, p, d in zip(shape[2:], self.kernel, self.stride, self.pad, self.dilation))
        if min(sizes) < 1:
            raise ValueError(
                f"the top blob would be empty: a bottom of shape {shape} gives {sizes} per channel "
                f"(stride * (in - 1) + dilation * (kernel - 1) + 1 - 2 * pad, with kernel={self.kernel}, "
                f"stride={self.stride}, pad={self.pad}, dilation={self.dilation})"
            )
        return (shape[0], self.num_output, sizes[0], sizes[1])

    def _calls(self, bottom: npt.ArrayLike) -> Any:
        from . import torch as _torch

        bottom = as_tensor(bottom, "bottom", ranks=(4,), layout=_BLOB_LAYOUT)
        if self.weight is None:
            raise ValueError(f"the layer has no weight: pass weight= ({_DECONV_WEIGHT_LAYOUT}) or call set_params")
        self.output_shape(bottom.shape)
        if self.weight.shape[0] != bottom.shape[1]:
            raise ValueError(
                f"weight must have shape {_DECONV_WEIGHT_LAYOUT} = [{bottom.shape[1]}, "
                f"{self.num_output // self.group}, {self.kernel[0]}, {self.kernel[1]}] for a bottom of shape "
                f"{bottom.shape}, got shape {self.weight.shape}"
            )
        return _torch._transpose_calls(bottom, self.weight, self.bias, self.stride, self.pad, 0, self.group,
                                       self.dilation)

    def __call__(self, bottom: npt.ArrayLike) -> np.ndarray:
        """The top blob (float32 ``[num, num_output, out_h, out_w]``), computed on the GPU."""
        return self._calls(bottom).run(ops, np.float32)

    #: Caffe's name for :meth:`__call__`.
    forward = __call__

    def forward_oracle(self, bottom: npt.ArrayLike) -> np.ndarray:
        """The float64 twin of :meth:`__call__`, computed by :func:`gpuconv.oracle.conv2d_transpose`."""
        return self._calls(bottom).run(_oracle, np.float64)
