"""Convolution geometry: argument normalisation, output shape and the four pads.

This is the only place where padding is interpreted.  Every other module (the
program specs, the oracle, the framework adapters) takes a :class:`Conv2DGeometry`
and never recomputes a pad or an output size.  The rules follow TensorFlow and
TensorFlow.js (``conv_util.computeConv2DInfo``):

* ``"VALID"``: no padding, ``out = ceil((in - eff + 1) / stride)``;
* ``"SAME"``: ``out = ceil(in / stride)``, the total pad split with the smaller
  half before (top/left) and the larger after;
* an int ``p``: ``p`` on every side, ``out = rounding((in - eff + 2p) / stride + 1)``
  where the rounding is ``dim_rounding_mode`` (truncation when it is ``None``).
  Each axis uses its own filter size and stride.  (TF.js 4.x applies the filter
  height and stride height to the width as well, which differs for non-square
  filters or strides; PyTorch, Caffe and TF's explicit pads agree with the per-axis rule.);
* explicit pads: ``out = floor((in + before + after - eff) / stride) + 1``;

with ``eff = (filter - 1) * dilation + 1`` the dilated ("effective") filter size.

A stride and a dilation may both exceed 1 (as in TF's conv2d, PyTorch and Caffe),
except for a depthwise (and so separable) convolution, which TF refuses too.
:class:`Conv3DGeometry` (:func:`conv3d_geometry`) applies the same rules to three
spatial axes.  The gradients and transposed convolutions
(``conv2d_backprop_input_geometry``, ``conv2d_transpose_geometry``, ...) are
expressed through the geometry of their forward convolution, whose output shape
must be ``dy``'s (the transposed convolution's ``x``'s).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Optional, Sequence, Tuple, TypeVar, Union

DATA_FORMATS = ("NHWC", "NCHW")
ROUNDING_MODES = ("floor", "round", "ceil")
PADDING_STRINGS = ("SAME", "VALID")


def _is_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _describe(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def normalize_data_format(data_format: str) -> str:
    """Return ``"NHWC"`` or ``"NCHW"``; anything else is a ``ValueError``."""
    if not isinstance(data_format, str) or data_format.upper() not in DATA_FORMATS:
        raise ValueError(
            f"data_format must be 'NHWC' or 'NCHW', got {_describe(data_format)}"
        )
    return data_format.upper()


def normalize_hw(value: IntsLike, name: str, data_format: str = "NHWC") -> Tuple[int, int]:
    """Strides or dilations as ``(h, w)``.

    Accepts an int, an ``(h, w)`` pair, or TF's 4-list in the data format's order
    (``[1, h, w, 1]`` for NHWC, ``[1, 1, h, w]`` for NCHW).
    """
    pair: Tuple[Any, ...]
    if _is_int(value):
        pair = (value, value)
    elif isinstance(value, (list, tuple)) and len(value) in (2, 4) and all(map(_is_int, value)):
        if len(value) == 2:
            pair = tuple(value)
        else:
            h_axis, w_axis = (1, 2) if data_format == "NHWC" else (2, 3)
            others = [v for axis, v in enumerate(value) if axis not in (h_axis, w_axis)]
            if any(v != 1 for v in others):
                layout = "[1, h, w, 1]" if data_format == "NHWC" else "[1, 1, h, w]"
                raise ValueError(
                    f"{name} as a 4-list must be {layout} for {data_format} "
                    f"(batch and channel entries 1), got {_describe(value)}"
                )
            pair = (value[h_axis], value[w_axis])
    else:
        raise TypeError(
            f"{name} must be a positive int, an (h, w) pair of ints or a 4-list of ints, "
            f"got {_describe(value)}"
        )
    pair = (int(pair[0]), int(pair[1]))
    if min(pair) < 1:
        raise ValueError(f"{name} must be positive integers, got {_describe(value)}")
    return pair


@dataclass(frozen=True)
class Padding:
    """A padding argument in one form.

    ``kind`` is ``"SAME"``, ``"VALID"``, ``"NUMBER"`` (``pads`` all equal) or
    ``"EXPLICIT"``; ``pads`` is ``((top, bottom), (left, right))`` for the last two
    (``((front, back), (top, bottom), (left, right))`` for a 3-D convolution).
    """

    kind: str
    pads: Tuple[Tuple[int, int], ...] = ((0, 0), (0, 0))


#: The argument forms callers may pass (each function checks its argument and names what it expected).
IntsLike = Union[int, Sequence[int]]                  # strides, dilations
PaddingLike = Union[str, int, Sequence[Any], Padding]  # "SAME", "VALID", an int, explicit pads
ShapeLike = Iterable[int]                             # a shape: a tuple, a list, a 1-D integer array


def normalize_padding(padding: PaddingLike, data_format: str = "NHWC", dim_rounding_mode: Optional[str] = None, *,
                      spatial: int = 2) -> Padding:
    """Turn every padding form TF, TF.js and their users write into a :class:`Padding`.

    ``spatial`` is the number of spatial axes: 2 (``data_format`` ``"NHWC"``/``"NCHW"``)
    or 3 (``"NDHWC"``/``"NCDHW"``, explicit pads ``[[front, back], [top, bottom],
    [left, right]]`` or TF's 5x2 list).
    """
    if dim_rounding_mode is not None and dim_rounding_mode not in ROUNDING_MODES:
        raise ValueError(
            f"dim_rounding_mode must be one of {', '.join(map(repr, ROUNDING_MODES))} or None, "
            f"got {_describe(dim_rounding_mode)}"
        )
    if isinstance(padding, Padding):  # already normalised (conv1d builds its own)
        return padding
    if isinstance(padding, str):
        kind = padding.upper()
        if kind not in PADDING_STRINGS:
            raise ValueError(
                f"padding must be 'SAME', 'VALID', an int or explicit pads, got {_describe(padding)}"
            )
        if dim_rounding_mode is not None:
            raise ValueError(
                f"padding must be an integer when dim_rounding_mode is given "
                f"({dim_rounding_mode!r}), got {_describe(padding)}"
            )
        return Padding(kind, ((0, 0),) * spatial)
    if isinstance(padding, numbers.Real) and not isinstance(padding, bool):
        if not _is_int(padding):
            if dim_rounding_mode is not None:
                raise ValueError(
                    f"padding must be an integer when dim_rounding_mode is given "
                    f"({dim_rounding_mode!r}), got {_describe(padding)}"
                )
            raise ValueError(f"padding must be an integer number of pixels, got {_describe(padding)}")
        if padding < 0:
            raise ValueError(f"padding must be non-negative, got {_describe(padding)}")
        assert isinstance(padding, numbers.Integral)  # _is_int said so
        p = int(padding)
        return Padding("NUMBER", ((p, p),) * spatial)
    if isinstance(padding, (list, tuple)):
        return Padding("EXPLICIT", _explicit_pads(padding, data_format, spatial))
    raise TypeError(
        f"padding must be 'SAME', 'VALID', an int or explicit pads, got {_describe(padding)}"
    )


def _explicit_pads(padding: Sequence, data_format: str, spatial: int = 2) -> tuple[tuple[int, int], ...]:
    channels_last = data_format in ("NHWC", "NDHWC")
    if spatial == 3:
        expected = (
            "[[front, back], [top, bottom], [left, right]] or TF's 5x2 list "
            + ("[[0, 0], [front, back], [top, bottom], [left, right], [0, 0]]" if channels_last
               else "[[0, 0], [0, 0], [front, back], [top, bottom], [left, right]]")
        )
    else:
        expected = (
            "[[top, bottom], [left, right]] or TF's 4x2 list "
            + ("[[0, 0], [top, bottom], [left, right], [0, 0]]" if channels_last
               else "[[0, 0], [0, 0], [top, bottom], [left, right]]")
        )
    rows = list(padding)
    if len(rows) not in (spatial, spatial + 2) \
            or not all(isinstance(r, (list, tuple)) and len(r) == 2 for r in rows):
        raise ValueError(f"explicit padding must be {expected}, got {_describe(padding)}")
    for row in rows:
        for v in row:
            if not _is_int(v):
                raise ValueError(f"explicit padding must hold integers, got {_describe(padding)}")
            if v < 0:
                raise ValueError(f"explicit padding must be non-negative, got {_describe(padding)}")
    if len(rows) == spatial + 2:
        axes = range(1, spatial + 1) if channels_last else range(2, spatial + 2)
        others = [rows[a] for a in range(spatial + 2) if a not in axes]
        if any(tuple(r) != (0, 0) for r in others):
            raise ValueError(
                f"explicit padding may only pad the spatial dimensions: expected {expected}, "
                f"got {_describe(padding)}"
            )
        rows = [rows[a] for a in axes]
    return tuple((int(a), int(b)) for a, b in rows)


def normalize_padding_1d(padding: PaddingLike, data_format: str = "NWC",
                         dim_rounding_mode: Optional[str] = None) -> Padding:
    """A conv1d padding as the :class:`Padding` of the equivalent height-1 conv2d.

    Accepts ``"SAME"``/``"VALID"``, an int ``p`` (``p`` left and right, none above
    or below: the height stays 1), ``[left, right]``, ``[[0, 0], [left, right]]``,
    the 3-row form in the data format's order, or TF.js's conv2d form
    ``[[0, 0], [0, 0], [left, right], [0, 0]]``.
    """
    if isinstance(padding, (list, tuple)):
        _check_pad_values(padding)
        rows: Optional[list] = list(padding)
        assert rows is not None
        if len(rows) == 2 and all(_is_int(v) for v in rows):
            rows = [[0, 0], rows]
        elif len(rows) in (2, 3, 4) and all(isinstance(r, (list, tuple)) and len(r) == 2 for r in rows):
            width_axis = {2: 1, 3: 1 if data_format == "NWC" else 2, 4: 2}[len(rows)]
            if any(list(r) != [0, 0] for axis, r in enumerate(rows) if axis != width_axis):
                rows = None
            else:
                rows = [[0, 0], list(rows[width_axis])]
        else:
            rows = None
        if rows is None:
            three_rows = ("[[0, 0], [left, right], [0, 0]]" if data_format == "NWC"
                          else "[[0, 0], [0, 0], [left, right]]")
            raise ValueError(
                f"explicit conv1d padding must be [left, right], [[0, 0], [left, right]], {three_rows} "
                f"or TF.js's conv2d form [[0, 0], [0, 0], [left, right], [0, 0]], got {_describe(padding)}"
            )
        padding = rows
    pad = normalize_padding(padding, "NHWC", dim_rounding_mode)
    if pad.kind == "NUMBER":
        return Padding("NUMBER", ((0, 0), pad.pads[1]))
    return pad


def _check_pad_values(padding: object) -> None:
    """Every number in (nested) explicit ``padding`` is a non-negative int; messages show ``padding`` as given."""
    def leaves(value):
        if isinstance(value, (list, tuple)):
            for item in value:
                yield from leaves(item)
        else:
            yield value

    for v in leaves(padding):
        if not _is_int(v):
            raise ValueError(f"explicit padding must hold integers, got {_describe(padding)}")
        if v < 0:
            raise ValueError(f"explicit padding must be non-negative, got {_describe(padding)}")


def check_conv1d_arguments(x_shape: ShapeLike, filter_shape: ShapeLike, stride: int, dilation: int,
                           data_format: str = "NWC") -> None:
    """Check conv1d's own arguments under conv1d's names, before it becomes a height-1 conv2d.

    ``x_shape`` is ``[batch, width, channels]`` / ``[width, channels]`` (NWC) or
    ``[batch, channels, width]`` / ``[channels, width]`` (NCW), ``filter_shape``
    ``[filter_width, in_channels, out_channels]``; ``stride`` and ``dilation`` are
    single positive ints (both may exceed 1, as in TF's conv1d and gpuconv's conv2d,
    which runs it).  (The conv2d checks would name the
    4-D shapes and ``strides=(1, s)`` instead.)
    """
    data_format = str(data_format).upper()
    for name, value in (("stride", stride), ("dilation", dilation)):
        if not _is_int(value):
            raise TypeError(f"{name} must be a positive int for conv1d (one value, along the width), "
                            f"got {_describe(value)}")
        if value < 1:
            raise ValueError(f"{name} must be a positive int for conv1d, got {_describe(value)}")
    layout = "[batch, width, channels]" if data_format == "NWC" else "[batch, channels, width]"
    x_shape, filter_shape = tuple(int(d) for d in x_shape), tuple(int(d) for d in filter_shape)
    if len(x_shape) not in (2, 3):
        raise ValueError(f"x must be rank 2 or 3 ({layout}, the batch may be left out), got shape {x_shape}")
    if len(filter_shape) != 3:
        raise ValueError(f"filter must be rank 3 ([filter_width, in_channels, out_channels]), "
                         f"got shape {filter_shape}")
    if min(x_shape + filter_shape) < 1:
        raise ValueError(f"x and filter must not have an empty dimension, got x shape {x_shape} "
                         f"and filter shape {filter_shape}")
    channels = x_shape[-1] if data_format == "NWC" else x_shape[-2]
    if filter_shape[1] != channels:
        raise ValueError(
            f"filter's in_channels (dimension 1 of [filter_width, in_channels, out_channels], "
            f"{filter_shape[1]}) must equal x's channels ({channels}); filter shape {filter_shape}, "
            f"x shape {x_shape} ({data_format})"
        )


def _round(value: float, mode: Optional[str]) -> int:
    if mode is None:  # TF.js truncates when no rounding mode is given
        return math.trunc(value)
    if mode == "floor":
        return math.floor(value)
    if mode == "ceil":
        return math.ceil(value)
    return math.floor(value + 0.5)  # JavaScript's Math.round: halves go up


def _out_and_pads(kind, in_size, eff, stride, pads, rounding):
    """Output size and (before, after) pad along one spatial axis."""
    if kind == "VALID":
        return -(-(in_size - eff + 1) // stride), (0, 0)
    if kind == "SAME":
        out = -(-in_size // stride)
        total = max((out - 1) * stride + eff - in_size, 0)
        return out, (total // 2, total - total // 2)
    before, after = pads
    if kind == "NUMBER":
        return _round((in_size - eff + before + after) / stride + 1, rounding), pads
    return (in_size + before + after - eff) // stride + 1, pads


@dataclass(frozen=True)
class Conv2DGeometry:
    """Everything a convolution program or the oracle needs to know about sizes.

    Shapes in ``in_shape``/``out_shape`` follow ``data_format``; the filter is
    always ``[filter_height, filter_width, in_channels / groups, out_channels]``
    for a convolution and ``[filter_height, filter_width, in_channels,
    channel_multiplier]`` for a depthwise convolution.
    """

    data_format: str
    batch: int
    in_height: int
    in_width: int
    in_channels: int
    filter_height: int
    filter_width: int
    out_channels: int
    stride_height: int
    stride_width: int
    dilation_height: int
    dilation_width: int
    pad_top: int
    pad_bottom: int
    pad_left: int
    pad_right: int
    out_height: int
    out_width: int
    padding_kind: str
    groups: int = 1
    channel_multiplier: int = 1
    depthwise: bool = False

    @property
    def effective_filter_height(self) -> int:
        return (self.filter_height - 1) * self.dilation_height + 1

    @property
    def effective_filter_width(self) -> int:
        return (self.filter_width - 1) * self.dilation_width + 1

    @property
    def channels_last(self) -> bool:
        return self.data_format == "NHWC"

    @property
    def padded(self) -> bool:
        """Whether any window reaches past the input (a pad on any side): a tap there is skipped
        by the programs that test it and by the oracle, a zero times its weight by those that do not."""
        return any((self.pad_top, self.pad_bottom, self.pad_left, self.pad_right))

    def _shape(self, height, width, channels):
        if self.channels_last:
            return (self.batch, height, width, channels)
        return (self.batch, channels, height, width)

    @property
    def in_shape(self) -> Tuple[int, int, int, int]:
        return self._shape(self.in_height, self.in_width, self.in_channels)

    @property
    def out_shape(self) -> Tuple[int, int, int, int]:
        return self._shape(self.out_height, self.out_width, self.out_channels)

    @property
    def filter_shape(self) -> Tuple[int, int, int, int]:
        if self.depthwise:
            return (self.filter_height, self.filter_width, self.in_channels, self.channel_multiplier)
        return (self.filter_height, self.filter_width, self.in_channels // self.groups, self.out_channels)

    @property
    def window_pads(self) -> Tuple[Tuple[int, int], Tuple[int, int]]:
        """Zero pads that put every output's input window inside the padded input.

        Equal to the pads for 'SAME', 'VALID' and explicit padding with exact
        division; with an int pad and ``dim_rounding_mode='ceil'`` the last window
        can reach past the bottom/right pad, and this covers it.  (The GPU
        programs never pad: they skip taps outside the input.)
        """
        def after(out, stride, eff, size, before):
            return max(0, (out - 1) * stride + eff - size - before)
        return (
            (self.pad_top, after(self.out_height, self.stride_height, self.effective_filter_height,
                                 self.in_height, self.pad_top)),
            (self.pad_left, after(self.out_width, self.stride_width, self.effective_filter_width,
                                  self.in_width, self.pad_left)),
        )

    @property
    def in_channels_per_group(self) -> int:
        return self.in_channels // self.groups

    @property
    def out_channels_per_group(self) -> int:
        return self.out_channels // self.groups

    @property
    def multiply_adds(self) -> int:
        """Multiply-adds of the convolution (FLOPs are twice this)."""
        taps = self.filter_height * self.filter_width
        depth = 1 if self.depthwise else self.in_channels_per_group
        return self.batch * self.out_height * self.out_width * self.out_channels * taps * depth

    # The spatial sizes as tuples (height, width), as Conv3DGeometry gives (depth, height, width):
    # code written for any number of spatial axes reads these.

    @property
    def in_spatial(self) -> tuple[int, ...]:
        return (self.in_height, self.in_width)

    @property
    def out_spatial(self) -> tuple[int, ...]:
        return (self.out_height, self.out_width)

    @property
    def filter_spatial(self) -> tuple[int, ...]:
        return (self.filter_height, self.filter_width)

    @property
    def strides(self) -> tuple[int, ...]:
        return (self.stride_height, self.stride_width)

    @property
    def dilations(self) -> tuple[int, ...]:
        return (self.dilation_height, self.dilation_width)

    @property
    def pads(self) -> tuple[tuple[int, int], ...]:
        """``((top, bottom), (left, right))``."""
        return ((self.pad_top, self.pad_bottom), (self.pad_left, self.pad_right))


def _check_shape(shape: ShapeLike, name: str, rank: int, layout: str) -> Tuple[int, ...]:
    shape = tuple(int(d) for d in shape)
    if len(shape) != rank:
        raise ValueError(f"{name} must be rank {rank} ({layout}), got shape {shape}")
    if min(shape) < 1:
        raise ValueError(f"{name} must not have an empty dimension ({layout}), got shape {shape}")
    return shape


def conv2d_geometry(
    x_shape: ShapeLike,
    filter_shape: ShapeLike,
    strides: IntsLike = 1,
    padding: PaddingLike = "VALID",
    data_format: str = "NHWC",
    dilations: IntsLike = 1,
    dim_rounding_mode: Optional[str] = None,
    *,
    groups: int = 1,
    depthwise: bool = False,
) -> Conv2DGeometry:
    """Compute the geometry of a 2-D (grouped or depthwise) convolution.

    ``x_shape`` is rank 4 in ``data_format``; ``filter_shape`` is
    ``[FH, FW, inC / groups, outC]``, or ``[FH, FW, inC, multiplier]`` when
    ``depthwise`` is true.
    """
    data_format = normalize_data_format(data_format)
    layout = "[batch, height, width, channels]" if data_format == "NHWC" else "[batch, channels, height, width]"
    x_shape = _check_shape(x_shape, "x", 4, layout)
    if depthwise:
        filter_shape = _check_shape(filter_shape, "filter", 4, _DEPTHWISE_FILTER_LAYOUT_2D)
    else:
        filter_shape = _check_shape(filter_shape, "filter", 4,
                                    "[filter_height, filter_width, in_channels / groups, out_channels]")
    stride_h, stride_w = normalize_hw(strides, "strides", data_format)
    dilation_h, dilation_w = normalize_hw(dilations, "dilations", data_format)
    if depthwise and max(stride_h, stride_w) > 1 and max(dilation_h, dilation_w) > 1:
        # PyTorch, Caffe and TF's conv2d take both; TF's depthwise (and so separable) convolution refuses them.
        raise ValueError(
            f"strides and dilations cannot both be greater than 1 for a depthwise or separable "
            f"convolution (TF and TF.js refuse it too; conv2d accepts it), "
            f"got strides={(stride_h, stride_w)} and dilations={(dilation_h, dilation_w)}"
        )
    pad = normalize_padding(padding, data_format, dim_rounding_mode)

    if data_format == "NHWC":
        batch, in_h, in_w, in_c = x_shape
    else:
        batch, in_c, in_h, in_w = x_shape
    filter_h, filter_w, filter_in, filter_out = filter_shape

    if not _is_int(groups) or groups < 1:
        raise ValueError(f"groups must be a positive integer, got {_describe(groups)}")
    if depthwise:
        if filter_in != in_c:
            raise ValueError(
                f"filter's in_channels (dimension 2, {filter_in}) must equal x's channels ({in_c}) "
                f"for a depthwise convolution; filter shape {filter_shape}, x shape {x_shape}"
            )
        out_c, multiplier = in_c * filter_out, filter_out
    else:
        if in_c % groups or filter_out % groups:
            raise ValueError(
                f"groups ({groups}) must divide both x's channels ({in_c}) and the filter's "
                f"out_channels ({filter_out})"
            )
        if filter_in * groups != in_c:
            expected = (f"in_channels / groups = {in_c} / {groups} = {in_c // groups}" if groups > 1
                        else f"x's channels ({in_c})")
            hint = ""
            if groups == 1 and in_c % filter_in == 0 and filter_out % (in_c // filter_in) == 0:
                hint = f" (for a grouped convolution, pass groups={in_c // filter_in})"
            raise ValueError(
                f"filter's in_channels (dimension 2, {filter_in}) must equal {expected}; "
                f"filter shape {filter_shape}, x shape {x_shape}{hint}"
            )
        out_c, multiplier = filter_out, 1

    eff_h = (filter_h - 1) * dilation_h + 1
    eff_w = (filter_w - 1) * dilation_w + 1
    out_h, (top, bottom) = _out_and_pads(pad.kind, in_h, eff_h, stride_h, pad.pads[0], dim_rounding_mode)
    out_w, (left, right) = _out_and_pads(pad.kind, in_w, eff_w, stride_w, pad.pads[1], dim_rounding_mode)
    if out_h < 1 or out_w < 1:
        raise ValueError(
            f"the filter (effective size {eff_h}x{eff_w} after dilation) does not fit in the padded "
            f"input ({in_h + top + bottom}x{in_w + left + right}): the output would be "
            f"{out_h}x{out_w}; use a smaller filter, more padding or 'SAME'"
        )
    return Conv2DGeometry(
        data_format=data_format, batch=batch, in_height=in_h, in_width=in_w, in_channels=in_c,
        filter_height=filter_h, filter_width=filter_w, out_channels=out_c,
        stride_height=stride_h, stride_width=stride_w,
        dilation_height=dilation_h, dilation_width=dilation_w,
        pad_top=top, pad_bottom=bottom, pad_left=left, pad_right=right,
        out_height=out_h, out_width=out_w, padding_kind=pad.kind,
        groups=groups, channel_multiplier=multiplier, depthwise=depthwise,
    )


def depthwise_conv2d_geometry(x_shape: ShapeLike, filter_shape: ShapeLike, strides: IntsLike = 1,
                              padding: PaddingLike = "VALID", data_format: str = "NHWC", dilations: IntsLike = 1,
                              dim_rounding_mode: Optional[str] = None) -> Conv2DGeometry:
    """Geometry of a depthwise convolution (filter ``[FH, FW, inC, multiplier]``)."""
    return conv2d_geometry(x_shape, filter_shape, strides, padding, data_format, dilations,
                           dim_rounding_mode, depthwise=True)


# ---------------------------------------------------------------------------
# 3-D convolutions


DATA_FORMATS_3D = ("NDHWC", "NCDHW")

_LAYOUTS = {
    "NHWC": "[batch, height, width, channels]",
    "NCHW": "[batch, channels, height, width]",
    "NDHWC": "[batch, depth, height, width, channels]",
    "NCDHW": "[batch, channels, depth, height, width]",
}
_FILTER_LAYOUT_2D = "[filter_height, filter_width, in_channels, out_channels]"
_TRANSPOSE_FILTER_LAYOUT_2D = "[filter_height, filter_width, out_channels, in_channels]"
_DEPTHWISE_FILTER_LAYOUT_2D = "[filter_height, filter_width, in_channels, channel_multiplier]"
_FILTER_LAYOUT_3D = "[filter_depth, filter_height, filter_width, in_channels, out_channels]"
_TRANSPOSE_FILTER_LAYOUT_3D = "[filter_depth, filter_height, filter_width, out_channels, in_channels]"


def normalize_data_format_3d(data_format: str) -> str:
    """Return ``"NDHWC"`` or ``"NCDHW"``; anything else is a ``ValueError``."""
    if not isinstance(data_format, str) or data_format.upper() not in DATA_FORMATS_3D:
        raise ValueError(
            f"data_format must be 'NDHWC' or 'NCDHW' for a 3-D convolution, got {_describe(data_format)}"
        )
    return data_format.upper()


def normalize_dhw(value: IntsLike, name: str, data_format: str = "NDHWC") -> tuple[int, int, int]:
    """3-D strides or dilations as ``(d, h, w)``.

    Accepts an int, a ``(d, h, w)`` triple, or TF's 5-list in the data format's order
    (``[1, d, h, w, 1]`` for NDHWC, ``[1, 1, d, h, w]`` for NCDHW).
    """
    triple: tuple[Any, ...]
    if _is_int(value):
        triple = (value, value, value)
    elif isinstance(value, (list, tuple)) and len(value) in (3, 5) and all(map(_is_int, value)):
        if len(value) == 3:
            triple = tuple(value)
        else:
            axes = (1, 2, 3) if data_format == "NDHWC" else (2, 3, 4)
            if any(v != 1 for axis, v in enumerate(value) if axis not in axes):
                layout = "[1, d, h, w, 1]" if data_format == "NDHWC" else "[1, 1, d, h, w]"
                raise ValueError(
                    f"{name} as a 5-list must be {layout} for {data_format} "
                    f"(batch and channel entries 1), got {_describe(value)}"
                )
            triple = tuple(value[a] for a in axes)
    else:
        raise TypeError(
            f"{name} must be a positive int, a (d, h, w) triple of ints or a 5-list of ints, "
            f"got {_describe(value)}"
        )
    d, h, w = (int(v) for v in triple)
    if min(d, h, w) < 1:
        raise ValueError(f"{name} must be positive integers, got {_describe(value)}")
    return (d, h, w)


@dataclass(frozen=True)
class Conv3DGeometry:
    """The sizes of a 3-D convolution, as :class:`Conv2DGeometry` for 2-D.

    Shapes in ``in_shape``/``out_shape`` follow ``data_format`` (``"NDHWC"`` or
    ``"NCDHW"``); the filter is ``[filter_depth, filter_height, filter_width,
    in_channels, out_channels]``.
    """

    data_format: str
    batch: int
    in_depth: int
    in_height: int
    in_width: int
    in_channels: int
    filter_depth: int
    filter_height: int
    filter_width: int
    out_channels: int
    stride_depth: int
    stride_height: int
    stride_width: int
    dilation_depth: int
    dilation_height: int
    dilation_width: int
    pad_front: int
    pad_back: int
    pad_top: int
    pad_bottom: int
    pad_left: int
    pad_right: int
    out_depth: int
    out_height: int
    out_width: int
    padding_kind: str

    @property
    def channels_last(self) -> bool:
        return self.data_format == "NDHWC"

    @property
    def in_spatial(self) -> tuple[int, ...]:
        return (self.in_depth, self.in_height, self.in_width)

    @property
    def out_spatial(self) -> tuple[int, ...]:
        return (self.out_depth, self.out_height, self.out_width)

    @property
    def filter_spatial(self) -> tuple[int, ...]:
        return (self.filter_depth, self.filter_height, self.filter_width)

    @property
    def strides(self) -> tuple[int, ...]:
        return (self.stride_depth, self.stride_height, self.stride_width)

    @property
    def dilations(self) -> tuple[int, ...]:
        return (self.dilation_depth, self.dilation_height, self.dilation_width)

    @property
    def pads(self) -> tuple[tuple[int, int], ...]:
        """``((front, back), (top, bottom), (left, right))``."""
        return ((self.pad_front, self.pad_back), (self.pad_top, self.pad_bottom),
                (self.pad_left, self.pad_right))

    @property
    def effective_filter_spatial(self) -> tuple[int, ...]:
        return tuple((f - 1) * d + 1 for f, d in zip(self.filter_spatial, self.dilations))

    def _shape(self, spatial: tuple[int, ...], channels: int) -> tuple[int, ...]:
        if self.channels_last:
            return (self.batch,) + spatial + (channels,)
        return (self.batch, channels) + spatial

    @property
    def in_shape(self) -> tuple[int, ...]:
        return self._shape(self.in_spatial, self.in_channels)

    @property
    def out_shape(self) -> tuple[int, ...]:
        return self._shape(self.out_spatial, self.out_channels)

    @property
    def filter_shape(self) -> tuple[int, ...]:
        return self.filter_spatial + (self.in_channels, self.out_channels)

    @property
    def window_pads(self) -> tuple[tuple[int, int], ...]:
        """Zero pads that put every output's input window inside the padded input (see Conv2DGeometry)."""
        return tuple(
            (before, max(0, (out - 1) * stride + eff - size - before))
            for (before, _), out, stride, eff, size in zip(self.pads, self.out_spatial, self.strides,
                                                            self.effective_filter_spatial, self.in_spatial)
        )

    @property
    def multiply_adds(self) -> int:
        """Multiply-adds of the convolution (FLOPs are twice this)."""
        return (self.batch * math.prod(self.out_spatial) * self.out_channels
                * math.prod(self.filter_spatial) * self.in_channels)


def conv3d_geometry(x_shape: ShapeLike, filter_shape: ShapeLike, strides: IntsLike = 1,
                    padding: PaddingLike = "VALID", data_format: str = "NDHWC", dilations: IntsLike = 1,
                    dim_rounding_mode: Optional[str] = None) -> Conv3DGeometry:
    """Compute the geometry of a 3-D convolution (``tf.nn.conv3d``, TF.js ``conv3d``).

    ``x_shape`` is rank 5 in ``data_format``; ``filter_shape`` is ``[FD, FH, FW, inC,
    outC]``.  Strides and dilations: an int, ``(d, h, w)`` or TF's 5-list (both may
    exceed 1 together, as in TF and PyTorch); padding: ``"SAME"``, ``"VALID"``, an int
    (with ``dim_rounding_mode``) or explicit ``[[front, back], [top, bottom], [left,
    right]]`` (or TF's 5x2 list), with the same per-axis rules as :func:`conv2d_geometry`.
    """
    data_format = normalize_data_format_3d(data_format)
    x_shape = _check_shape(x_shape, "x", 5, _LAYOUTS[data_format])
    filter_shape = _check_shape(filter_shape, "filter", 5, _FILTER_LAYOUT_3D)
    stride = normalize_dhw(strides, "strides", data_format)
    dilation = normalize_dhw(dilations, "dilations", data_format)
    pad = normalize_padding(padding, data_format, dim_rounding_mode, spatial=3)
    if data_format == "NDHWC":
        batch, in_d, in_h, in_w, in_c = x_shape
    else:
        batch, in_c, in_d, in_h, in_w = x_shape
    filter_d, filter_h, filter_w, filter_in, filter_out = filter_shape
    if filter_in != in_c:
        raise ValueError(
            f"filter's in_channels (dimension 3, {filter_in}) must equal x's channels ({in_c}); "
            f"filter shape {filter_shape}, x shape {x_shape} ({data_format})"
        )
    sizes = (in_d, in_h, in_w)
    effs = tuple((f - 1) * d + 1 for f, d in zip((filter_d, filter_h, filter_w), dilation))
    axes = [_out_and_pads(pad.kind, size, eff, s, pads, dim_rounding_mode)
            for size, eff, s, pads in zip(sizes, effs, stride, pad.pads)]
    outs = tuple(out for out, _ in axes)
    (front, back), (top, bottom), (left, right) = (pads for _, pads in axes)
    if min(outs) < 1:
        padded = "x".join(str(size + b + a) for size, (_, (b, a)) in zip(sizes, axes))
        raise ValueError(
            f"the filter (effective size {'x'.join(map(str, effs))} after dilation) does not fit in "
            f"the padded input ({padded}): the output would be {'x'.join(map(str, outs))}; "
            f"use a smaller filter, more padding or 'SAME'"
        )
    return Conv3DGeometry(
        data_format=data_format, batch=batch, in_depth=in_d, in_height=in_h, in_width=in_w,
        in_channels=in_c, filter_depth=filter_d, filter_height=filter_h, filter_width=filter_w,
        out_channels=filter_out, stride_depth=stride[0], stride_height=stride[1], stride_width=stride[2],
        dilation_depth=dilation[0], dilation_height=dilation[1], dilation_width=dilation[2],
        pad_front=front, pad_back=back, pad_top=top, pad_bottom=bottom, pad_left=left, pad_right=right,
        out_depth=outs[0], out_height=outs[1], out_width=outs[2], padding_kind=pad.kind,
    )


# ---------------------------------------------------------------------------
# gradients and transposed convolutions, through the forward convolution's geometry
#
# conv2d_backprop_input(input_shape, filter, dy) is the adjoint of x -> conv2d(x, filter)
# for an x of shape input_shape: its geometry is that forward convolution's, whose
# in_shape is the result's shape and whose out_shape must be dy's.  conv2d_transpose(x,
# filter, output_shape) is conv2d_backprop_input(output_shape, filter, x).
# conv2d_backprop_filter(x, filter_shape, dy) is the adjoint of filter -> conv2d(x, filter).

_G = TypeVar("_G", Conv2DGeometry, Conv3DGeometry)


@dataclass(frozen=True)
class _Roles:
    """How one gradient op names its arguments in messages."""

    shape: str              # the shape argument: "input_shape", "output_shape" or "filter_shape"
    input: str              # the forward convolution's input: "input_shape" / "output_shape" / "x"
    output: str             # the forward convolution's output: "dy" or (transposed) "x"
    filter: str             # "filter" or "filter_shape"
    filter_channels: tuple[str, str]  # names of the filter's last two dimensions
    transpose: bool = False


def _shape_argument(value: Any, name: str, ranks: tuple[int, ...], layout: str) -> tuple[int, ...]:
    """A shape passed as an argument (``input_shape``, ``output_shape``, ``filter_shape``)."""
    wanted = " or ".join(map(str, ranks))
    items: list | None = None
    if not isinstance(value, (str, bytes, dict)) and not _is_int(value):
        try:
            items = list(value)
        except TypeError:
            items = None
    if items is None or not all(_is_int(v) for v in items):
        raise TypeError(f"{name} must be a list or tuple of {wanted} ints ({layout}), got {_describe(value)}")
    if len(items) not in ranks:
        raise ValueError(f"{name} must have {wanted} entries ({layout}), got {_describe(value)}")
    if min(items) < 1:
        raise ValueError(f"{name} must hold positive sizes ({layout}), got {_describe(value)}")
    return tuple(int(v) for v in items)


def _tensor_shape(shape: ShapeLike, name: str, ranks: tuple[int, ...], layout: str) -> tuple[int, ...]:
    """The shape of a tensor argument (``x``, ``dy``, ``filter``): one of ``ranks``, no empty dimension."""
    shape = tuple(int(d) for d in shape)
    if len(shape) not in ranks:
        wanted = " or ".join(map(str, ranks))
        raise ValueError(f"{name} must be rank {wanted} ({layout}), got shape {shape}")
    if min(shape) < 1:
        raise ValueError(f"{name} must not have an empty dimension ({layout}), got shape {shape}")
    return shape


def _unbatched_layout(data_format: str) -> str:
    layout = _LAYOUTS[data_format]
    return f"{layout} or {layout.replace('batch, ', '')}"


def _check_gradient_channels(in_full: tuple[int, ...], filter_shape: tuple[int, ...], out_full: tuple[int, ...],
                             in_shown: tuple[int, ...], out_shown: tuple[int, ...], data_format: str,
                             roles: _Roles, depthwise: bool) -> None:
    """The filter's last two dimensions against the forward input's and output's channels."""
    channel_axis = -1 if data_format.endswith("C") else 1
    in_c, out_c = in_full[channel_axis], out_full[channel_axis]
    d_in, d_out = len(filter_shape) - 2, len(filter_shape) - 1
    first, second = roles.filter_channels
    if filter_shape[d_in] != in_c:
        raise ValueError(
            f"{roles.filter}'s {first} (dimension {d_in}, {filter_shape[d_in]}) must equal "
            f"{roles.input}'s channels ({in_c}); {roles.filter} {tuple(filter_shape)}, "
            f"{roles.input} {tuple(in_shown)} ({data_format})"
        )
    if depthwise:
        expected = in_c * filter_shape[d_out]
        what = (f"in_channels * channel_multiplier = {in_c} * {filter_shape[d_out]} = {expected} "
                f"for a depthwise convolution")
    else:
        expected = filter_shape[d_out]
        what = f"{roles.filter}'s {second} (dimension {d_out}, {expected})"
    if out_c != expected:
        raise ValueError(
            f"{roles.output}'s channels ({out_c}) must equal {what}; {roles.output} {tuple(out_shown)}, "
            f"{roles.filter} {tuple(filter_shape)} ({data_format})"
        )


def _check_forward_output(g: _G, out_full: tuple[int, ...], out_shown: tuple[int, ...], in_shown: tuple[int, ...],
                          filter_shape: tuple[int, ...], batched: bool, roles: _Roles) -> None:
    if tuple(g.out_shape) == tuple(out_full):
        return
    expected = tuple(g.out_shape) if batched else tuple(g.out_shape)[1:]
    text = (
        f"{roles.output} must have shape {expected}, got shape {tuple(out_shown)}: the forward "
        f"convolution of {roles.input} {tuple(in_shown)} by a filter {tuple(filter_shape)} with "
        f"strides {g.strides}, dilations {g.dilations} and {g.padding_kind} padding {g.pads} "
        f"gives {expected}"
    )
    if roles.transpose:
        text += " (output_shape is inconsistent with x's shape under these strides and padding)"
    raise ValueError(text)


def _backprop_input_geometry(forward: Callable[[tuple[int, ...], tuple[int, ...]], _G], data_format: str,
                             shape: ShapeLike, filter_shape: ShapeLike, dy_shape: ShapeLike, roles: _Roles,
                             filter_layout: str, depthwise: bool = False) -> tuple[_G, bool]:
    rank = len(data_format)
    layout = _unbatched_layout(data_format)
    dy = _tensor_shape(dy_shape, roles.output, (rank - 1, rank), layout)
    filter_shape = _tensor_shape(filter_shape, roles.filter, (rank,), filter_layout)
    shape = _shape_argument(shape, roles.shape, (rank - 1, rank), layout)
    batched = len(dy) == rank
    dy_full = dy if batched else (1,) + dy
    if len(shape) == rank:
        if not batched and shape[0] != 1:
            raise ValueError(
                f"{roles.shape} {shape} has a batch of {shape[0]}, but {roles.output} of shape {dy} has no "
                f"batch dimension: give {roles.shape} without the batch ({shape[1:]}) or "
                f"{roles.output} with it"
            )
        full = shape
    else:
        full = (dy_full[0],) + shape  # the batch comes from dy (x)
    _check_gradient_channels(full, filter_shape, dy_full, shape, dy, data_format, roles, depthwise)
    g = forward(full, filter_shape)
    _check_forward_output(g, dy_full, dy, shape, filter_shape, batched, roles)
    return g, batched


def _backprop_filter_geometry(forward: Callable[[tuple[int, ...], tuple[int, ...]], _G], data_format: str,
                              x_shape: ShapeLike, filter_shape: ShapeLike, dy_shape: ShapeLike, filter_layout: str,
                              depthwise: bool = False) -> tuple[_G, bool]:
    rank = len(data_format)
    layout = _unbatched_layout(data_format)
    roles = _Roles("filter_shape", "x", "dy", "filter_shape",
                   ("in_channels", "channel_multiplier" if depthwise else "out_channels"))
    x = _tensor_shape(x_shape, "x", (rank - 1, rank), layout)
    dy = _tensor_shape(dy_shape, "dy", (rank - 1, rank), layout)
    filter_shape = _shape_argument(filter_shape, "filter_shape", (rank,), filter_layout)
    if len(x) != len(dy):
        raise ValueError(f"x and dy must both have the batch dimension or both leave it out, "
                         f"got x shape {x} and dy shape {dy}")
    batched = len(x) == rank
    x_full, dy_full = (x, dy) if batched else ((1,) + x, (1,) + dy)
    _check_gradient_channels(x_full, filter_shape, dy_full, x, dy, data_format, roles, depthwise)
    g = forward(x_full, filter_shape)
    _check_forward_output(g, dy_full, dy, x, filter_shape, batched, roles)
    return g, batched


_BACKPROP_INPUT = _Roles("input_shape", "input_shape", "dy", "filter", ("in_channels", "out_channels"))
_DEPTHWISE_BACKPROP_INPUT = _Roles("input_shape", "input_shape", "dy", "filter",
                                   ("in_channels", "channel_multiplier"))
_TRANSPOSE = _Roles("output_shape", "output_shape", "x", "filter", ("out_channels", "in_channels"),
                    transpose=True)


def _conv2d_forward(strides: IntsLike, padding: PaddingLike, data_format: str, dilations: IntsLike,
                    dim_rounding_mode: Optional[str],
                    depthwise: bool) -> Callable[[tuple[int, ...], tuple[int, ...]], Conv2DGeometry]:
    def forward(x_shape: tuple[int, ...], filter_shape: tuple[int, ...]) -> Conv2DGeometry:
        return conv2d_geometry(x_shape, filter_shape, strides, padding, data_format, dilations,
                               dim_rounding_mode, depthwise=depthwise)
    return forward


def _conv3d_forward(strides: IntsLike, padding: PaddingLike, data_format: str, dilations: IntsLike,
                    dim_rounding_mode: Optional[str]) -> Callable[[tuple[int, ...], tuple[int, ...]], Conv3DGeometry]:
    def forward(x_shape: tuple[int, ...], filter_shape: tuple[int, ...]) -> Conv3DGeometry:
        return conv3d_geometry(x_shape, filter_shape, strides, padding, data_format, dilations,
                               dim_rounding_mode)
    return forward


def conv2d_backprop_input_geometry(
        input_shape: ShapeLike, filter_shape: ShapeLike, dy_shape: ShapeLike, strides: IntsLike = 1,
        padding: PaddingLike = "VALID", data_format: str = "NHWC", dilations: IntsLike = 1,
        dim_rounding_mode: Optional[str] = None, *, depthwise: bool = False) -> tuple[Conv2DGeometry, bool]:
    """Geometry of ``conv2d_backprop_input`` (the gradient of conv2d with respect to its input).

    Returns ``(g, batched)``: ``g`` is the geometry of the forward convolution of an
    input of ``input_shape`` by the filter (``[FH, FW, inC, outC]``, or ``[FH, FW, inC,
    multiplier]`` with ``depthwise``), so ``g.in_shape`` is the result's (rank-4) shape
    and ``g.out_shape`` is ``dy``'s, checked; ``batched`` says whether ``dy`` (and so the
    result) has the batch dimension.  ``input_shape`` may leave the batch out (it is
    then ``dy``'s).  Strides and dilations may both exceed 1 except for ``depthwise``.
    """
    data_format = normalize_data_format(data_format)
    forward = _conv2d_forward(strides, padding, data_format, dilations, dim_rounding_mode, depthwise)
    roles = _DEPTHWISE_BACKPROP_INPUT if depthwise else _BACKPROP_INPUT
    layout = _DEPTHWISE_FILTER_LAYOUT_2D if depthwise else _FILTER_LAYOUT_2D
    return _backprop_input_geometry(forward, data_format, input_shape, filter_shape, dy_shape, roles,
                                    layout, depthwise)


def conv2d_backprop_filter_geometry(
        x_shape: ShapeLike, filter_shape: ShapeLike, dy_shape: ShapeLike, strides: IntsLike = 1,
        padding: PaddingLike = "VALID", data_format: str = "NHWC", dilations: IntsLike = 1,
        dim_rounding_mode: Optional[str] = None, *, depthwise: bool = False) -> tuple[Conv2DGeometry, bool]:
    """Geometry of ``conv2d_backprop_filter``: the forward convolution of ``x`` by a filter of ``filter_shape``.

    Returns ``(g, batched)`` as :func:`conv2d_backprop_input_geometry`; ``x`` and ``dy``
    both have the batch dimension or both leave it out, and ``dy``'s shape must be
    the forward convolution's output shape.
    """
    data_format = normalize_data_format(data_format)
    forward = _conv2d_forward(strides, padding, data_format, dilations, dim_rounding_mode, depthwise)
    layout = _DEPTHWISE_FILTER_LAYOUT_2D if depthwise else _FILTER_LAYOUT_2D
    return _backprop_filter_geometry(forward, data_format, x_shape, filter_shape, dy_shape, layout, depthwise)


def conv2d_transpose_geometry(
        x_shape: ShapeLike, filter_shape: ShapeLike, output_shape: ShapeLike, strides: IntsLike = 1,
        padding: PaddingLike = "VALID", data_format: str = "NHWC", dilations: IntsLike = 1,
        dim_rounding_mode: Optional[str] = None) -> tuple[Conv2DGeometry, bool]:
    """Geometry of ``conv2d_transpose(x, filter, output_shape)`` (TF.js ``conv2dTranspose``).

    The filter is ``[FH, FW, out_channels, in_channels]``; the result is
    ``conv2d_backprop_input(output_shape, filter, x)``, so ``g`` is the forward
    convolution of ``output_shape`` by the filter: ``g.in_shape`` is the result's
    shape, ``g.out_shape`` must be ``x``'s (the error says so when ``output_shape`` is
    inconsistent with ``x`` under the strides and padding).  ``output_shape`` may
    leave the batch out (it is then ``x``'s).
    """
    data_format = normalize_data_format(data_format)
    forward = _conv2d_forward(strides, padding, data_format, dilations, dim_rounding_mode, False)
    return _backprop_input_geometry(forward, data_format, output_shape, filter_shape, x_shape, _TRANSPOSE,
                                    _TRANSPOSE_FILTER_LAYOUT_2D)


def depthwise_conv2d_backprop_input_geometry(
        input_shape: ShapeLike, filter_shape: ShapeLike, dy_shape: ShapeLike, strides: IntsLike = 1,
        padding: PaddingLike = "VALID", data_format: str = "NHWC", dilations: IntsLike = 1,
        dim_rounding_mode: Optional[str] = None) -> tuple[Conv2DGeometry, bool]:
    """:func:`conv2d_backprop_input_geometry` of a depthwise convolution (filter ``[FH, FW, inC, multiplier]``)."""
    return conv2d_backprop_input_geometry(input_shape, filter_shape, dy_shape, strides, padding, data_format,
                                          dilations, dim_rounding_mode, depthwise=True)


def depthwise_conv2d_backprop_filter_geometry(
        x_shape: ShapeLike, filter_shape: ShapeLike, dy_shape: ShapeLike, strides: IntsLike = 1,
        padding: PaddingLike = "VALID", data_format: str = "NHWC", dilations: IntsLike = 1,
        dim_rounding_mode: Optional[str] = None) -> tuple[Conv2DGeometry, bool]:
    """:func:`conv2d_backprop_filter_geometry` of a depthwise convolution."""
    return conv2d_backprop_filter_geometry(x_shape, filter_shape, dy_shape, strides, padding, data_format,
                                           dilations, dim_rounding_mode, depthwise=True)


def conv3d_backprop_input_geometry(
        input_shape: ShapeLike, filter_shape: ShapeLike, dy_shape: ShapeLike, strides: IntsLike = 1,
        padding: PaddingLike = "VALID", data_format: str = "NDHWC", dilations: IntsLike = 1,
        dim_rounding_mode: Optional[str] = None) -> tuple[Conv3DGeometry, bool]:
    """Geometry of ``conv3d_backprop_input``: as :func:`conv2d_backprop_input_geometry`, for rank 5."""
    data_format = normalize_data_format_3d(data_format)
    forward = _conv3d_forward(strides, padding, data_format, dilations, dim_rounding_mode)
    return _backprop_input_geometry(forward, data_format, input_shape, filter_shape, dy_shape, _BACKPROP_INPUT,
                                    _FILTER_LAYOUT_3D)


def conv3d_backprop_filter_geometry(
        x_shape: ShapeLike, filter_shape: ShapeLike, dy_shape: ShapeLike, strides: IntsLike = 1,
        padding: PaddingLike = "VALID", data_format: str = "NDHWC", dilations: IntsLike = 1,
        dim_rounding_mode: Optional[str] = None) -> tuple[Conv3DGeometry, bool]:
    """Geometry of ``conv3d_backprop_filter``: as :func:`conv2d_backprop_filter_geometry`, for rank 5."""
    data_format = normalize_data_format_3d(data_format)
    forward = _conv3d_forward(strides, padding, data_format, dilations, dim_rounding_mode)
    return _backprop_filter_geometry(forward, data_format, x_shape, filter_shape, dy_shape, _FILTER_LAYOUT_3D)


def conv3d_transpose_geometry(
        x_shape: ShapeLike, filter_shape: ShapeLike, output_shape: ShapeLike, strides: IntsLike = 1,
        padding: PaddingLike = "VALID", data_format: str = "NDHWC", dilations: IntsLike = 1,
        dim_rounding_mode: Optional[str] = None) -> tuple[Conv3DGeometry, bool]:
    """Geometry of ``conv3d_transpose`` (filter ``[FD, FH, FW, out_channels, in_channels]``), as
    :func:`conv2d_transpose_geometry` for rank 5."""
    data_format = normalize_data_format_3d(data_format)
    forward = _conv3d_forward(strides, padding, data_format, dilations, dim_rounding_mode)
    return _backprop_input_geometry(forward, data_format, output_shape, filter_shape, x_shape, _TRANSPOSE,
                                    _TRANSPOSE_FILTER_LAYOUT_3D)
