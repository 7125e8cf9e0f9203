"""The packed ("fast") programs: shape-generic, 8 pixels x 4 channels per fragment, sizes as
uniforms; their split output layout, and the packed input gradient."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Dict, Hashable, List, Optional, Sequence, Tuple

import numpy as np

from ..geometry import Conv2DGeometry
from ..layout import (
    DEFAULT_MAX_TEXTURE_SIZE,
    Layout,
    PackedFilterLayout,
    PackedImageLayout,
    PackedVectorLayout,
    SplitImageLayout,
    choose_fold,
)
from ..limits import DEFAULT_MAX_DRAW_BUFFERS
from .base import LLVMPIPE_LOOP_LIMIT, Epilogue, ProgramInput

#: Output pixels per fragment of the packed programs, one render target each.  Measured on
#: llvmpipe (LLVM 15, 2 cores): 8 beats 4 by 1.2-1.35x on the benchmark's layers, because each
#: fetched weight serves twice as many pixels.  A device with fewer draw buffers
#: (``GL_MAX_DRAW_BUFFERS``; WebGL2 guarantees 4) gets as many pixels as it has buffers.
PACKED_PIXELS = DEFAULT_MAX_DRAW_BUFFERS


def packed_pixels(max_draw_buffers: int = DEFAULT_MAX_DRAW_BUFFERS) -> int:
    """Output pixels per fragment of a packed program on a device with ``max_draw_buffers``."""
    return max(1, min(PACKED_PIXELS, max_draw_buffers))


def packed_epilogue_inputs(epilogue: Epilogue, out_channels: int,
                           residual: Optional[PackedImageLayout] = None) -> List[ProgramInput]:
    """The fused epilogue's inputs of a packed program: bias and PReLU weights, four channels a texel,
    and a residual laid out as the output's pixels (``residual``: its layout, given with a residual)."""
    items = []
    if epilogue.has_bias:
        items.append(ProgramInput("bias", PackedVectorLayout(out_channels)))
    if epilogue.has_residual:
        if residual is None:
            raise ValueError("a residual epilogue needs the residual's layout")
        items.append(ProgramInput("residual", residual))
    if epilogue.activation == "prelu":
        items.append(ProgramInput("preluActivationWeights", PackedVectorLayout(out_channels)))
    return items


class _SplitOutput:
    """The output of a program writing the packed programs' split layout: ``pixels`` render
    targets of one :class:`~gpuconv.layout.SplitImageLayout` (needs ``geometry``, ``pixels``, ``fold``)."""

    geometry: Conv2DGeometry
    pixels: int
    fold: int

    # cached: the runtimes ask a spec for its layouts on every draw (frozen, so they never change)
    @cached_property
    def output(self) -> SplitImageLayout:
        g = self.geometry
        return SplitImageLayout(g.batch, g.out_height, g.out_width, g.out_channels, self.pixels, self.fold)

    @cached_property
    def output_layouts(self) -> Tuple[Layout, ...]:
        return (self.output,) * self.output.count

    @property
    def output_shape(self) -> Tuple[int, ...]:
        return self.geometry.out_shape


@dataclass(frozen=True)
class PackedProgramSpec(_SplitOutput):
    """A packed program: its source depends only on the op, the epilogue and a few flags.

    Sizes are uniforms, so every shape of a family shares one compiled program.
    ``x_split`` means x is a packed program's split outputs, read in place: by a 1x1,
    stride-1, unpadded conv2d (the pointwise half of a separable convolution), or by a
    depthwise convolution of multiplier 1 that reuses input columns (a MobileNet block's
    depthwise half after its pointwise one).  ``x_fold`` is the fold of those textures
    (0: ``fold``, the output's, as for the 1x1).
    """

    name: str
    template: str
    geometry: Conv2DGeometry
    epilogue: Epilogue
    x_split: bool = False
    pixels: int = PACKED_PIXELS  # output pixels per fragment (and render targets)
    fold: int = 1                # bands of output rows side by side in the render target
    x_fold: int = 0              # a split input's fold (0: the output's)

    @property
    def x_layout(self) -> SplitImageLayout:
        """A split input's textures: the producer's output layout."""
        g = self.geometry
        return SplitImageLayout(g.batch, g.in_height, g.in_width, g.in_channels, self.pixels,
                                self.x_fold or self.fold)

    @property
    def split_taps(self) -> Tuple[Tuple[int, int], ...]:
        """For a depthwise program reading a split input: for each input column t of a
        fragment's window (column ``pixels * q * stride - pad_left + t``), the texture that
        holds it and its pixel group's offset from ``q * stride``; known when the program
        is made, since ``pixels * q * stride`` is a multiple of ``pixels``."""
        if not (self.x_split and self.geometry.depthwise):
            return ()
        columns = (self.pixels - 1) * self.reuse_stride + self.reuse_width
        shift = self.geometry.pad_left
        return tuple(((t - shift) % self.pixels, (t - shift) // self.pixels) for t in range(columns))

    @cached_property
    def inputs(self) -> Tuple[ProgramInput, ...]:
        g = self.geometry
        if self.x_split:
            split = self.x_layout
            xs = [ProgramInput(f"x{j}", split) for j in range(self.pixels)]
        else:
            # A depthwise multiplier m is packed into x (each channel stored m times), so the
            # program reads output channel k * m + q's input at the same position.
            repeat = g.channel_multiplier if g.depthwise else 1
            xs = [ProgramInput("x", PackedImageLayout(g.batch, g.in_height, g.in_width, g.in_channels,
                                                      g.data_format, repeat))]
        items = xs + [ProgramInput("W", PackedFilterLayout(g.filter_shape, g.depthwise))]
        return tuple(items + packed_epilogue_inputs(self.epilogue, g.out_channels, residual_layout(g)))

    @property
    def chained_inputs(self) -> Tuple[str, ...]:
        return tuple(f"x{j}" for j in range(self.pixels)) if self.x_split else ("x",)

    @cached_property
    def variable_names(self) -> Tuple[str, ...]:
        return tuple(i.name for i in self.inputs)


    @property
    def reuse_width(self) -> int:
        """The filter width baked into a packed program that reuses input columns, else 0.

        At stride 1 (and 2 for depthwise) and dilation 1 across, the output pixels
        of a fragment share input columns: each is fetched once per filter row (and
        block of channels).
        """
        g = self.geometry
        # Measured on llvmpipe: at stride 2 the 17 columns of 8 pixels pay off for depthwise
        # (20-25% faster) but spill registers in conv2d's mat4 loop (up to 35% slower).
        strides = (1, 2) if g.depthwise else (1,)
        if (g.depthwise or not self.x_split) and g.stride_width in strides and g.dilation_width == 1 \
                and 1 < g.filter_width <= 7:
            return g.filter_width
        return 0

    @property
    def flat_row(self) -> bool:
        """Whether a conv2d program that reuses no input columns walks each filter row's taps as
        one run of texels: without dilation across, a pixel's taps of one filter row are
        ``filter_width * ceil(in_channels / 4)`` consecutive texels of x's row, in the order of
        the filter's rows, so one loop replaces the loops over taps and channel blocks (and the
        per-tap bounds checks where no tap is on the horizontal padding).  Measured on llvmpipe
        against the loop per tap, in the same run: see :func:`gpuconv.im2col.auto_prefers_im2col`."""
        g = self.geometry
        return not (g.depthwise or self.x_split or self.reuse_width) and g.dilation_width == 1 \
            and g.filter_width * -(-g.in_channels // 4) < LLVMPIPE_LOOP_LIMIT

    @property
    def flat_row_checked(self) -> bool:
        """Whether a flat row's taps need bounds checks: some output pixel's window crosses the
        input's left or right edge (horizontal padding)."""
        g = self.geometry
        return self.flat_row and (g.pad_left > 0 or
                                  (g.out_width - 1) * g.stride_width - g.pad_left + g.filter_width > g.in_width)

    @property
    def reuse_stride(self) -> int:
        return self.geometry.stride_width if self.reuse_width else 0

    @property
    def loop_iterations(self) -> int:
        """Loop iterations per fragment, all loops together: filter rows, then taps (unrolled
        where columns are reused) and blocks of four channels (conv2d)."""
        g = self.geometry
        depth4 = -(-g.in_channels // 4)
        if self.x_split and not g.depthwise:
            return depth4
        if self.flat_row:  # filter rows, then one run of texels each
            return g.filter_height + g.filter_height * g.filter_width * depth4
        columns = 0 if self.reuse_width else g.filter_width  # a reused row's taps are unrolled
        if g.depthwise:
            return g.filter_height + g.filter_height * columns
        return g.filter_height + g.filter_height * columns + g.filter_height * max(1, columns) * depth4

    def source_key(self) -> Hashable:
        """The template and what it is rendered with: sizes are uniforms, so nothing else."""
        return (self.template, tuple(sorted(self.template_context().items())))

    def describe(self) -> str:
        what = f"{self.pixels} output pixels x 4 output channels per fragment, sizes as uniforms"
        if self.x_split:
            what += f", x read from the previous program's {self.pixels} outputs"
        return f"gpuconv {self.name}: {what}"

    def template_context(self) -> Dict[str, Any]:
        return {
            "description": self.describe(),
            "epilogue": self.epilogue,
            "x_split": self.x_split,
            "reuse_width": self.reuse_width,
            "reuse_stride": self.reuse_stride,
            "pixels": self.pixels,
            "split_taps": self.split_taps,
            "flat_row": self.flat_row,
            "flat_row_checked": self.flat_row_checked,
        }

    @property
    def uniforms(self) -> Dict[str, Any]:
        g = self.geometry
        values: Dict[str, Any] = {
            "inSize": (g.in_height, g.in_width),
            "inDepth4": -(-g.in_channels * (g.channel_multiplier if g.depthwise else 1) // 4),
            "outHeight": g.out_height,
            "outDepth4": -(-g.out_channels // 4),
            "filterSize": (g.filter_height, g.filter_width),
            "strides": (g.stride_height, g.stride_width),
            "dilations": (g.dilation_height, g.dilation_width),
            "pads": (g.pad_top, g.pad_left),
            "outRows": self.output.unfolded_rows,
            "outCols": self.output.unfolded_cols,
            "outBandRows": self.output.rows,
        }
        layouts = {item.name: item.layout for item in self.inputs}
        if self.x_split:
            split = layouts["x0"]
            assert isinstance(split, SplitImageLayout)
            values["inCols"] = split.unfolded_cols
            values["inBandRows"] = split.rows
            values["xTexelSize"] = (1 / split.cols, 1 / split.rows)
        else:
            values["xTexelSize"] = (1 / layouts["x"].cols, 1 / layouts["x"].rows)
        values["wTexelSize"] = (1 / layouts["W"].cols, 1 / layouts["W"].rows)
        if self.epilogue.has_residual:
            values["residualWidth"] = g.out_width
        if self.flat_row:
            values["outWidth"] = g.out_width
        return values

    def assemble(self, parts: Sequence[np.ndarray]) -> np.ndarray:
        return self.output.assemble(parts, self.geometry.data_format)


def residual_layout(geometry: Conv2DGeometry, transposed: bool = False) -> PackedImageLayout:
    """Where a packed program reads a residual: the output's pixels, 4 channels a texel (the
    transposed convolution's output is the forward geometry's input)."""
    g = geometry
    if transposed:
        return PackedImageLayout(g.batch, g.in_height, g.in_width, g.in_channels, g.data_format)
    return PackedImageLayout(g.batch, g.out_height, g.out_width, g.out_channels, g.data_format)


def _oversized(layouts: Sequence[Layout], max_texture_size: int) -> Optional[str]:
    """Why one of a packed program's textures cannot be made here (wider or taller than the
    texture limit), or ``None``."""
    for layout in layouts:
        if layout.rows > max_texture_size or layout.cols > max_texture_size:
            return (f"a packed texture would be {layout.rows}x{layout.cols} texels, over the "
                    f"{max_texture_size} limit")
    return None


def packed_unsupported(geometry: Conv2DGeometry, epilogue: Epilogue,
                       max_texture_size: int = DEFAULT_MAX_TEXTURE_SIZE,
                       max_draw_buffers: int = DEFAULT_MAX_DRAW_BUFFERS) -> Optional[str]:
    """Why the packed programs cannot run this convolution, or ``None`` if they can."""
    if geometry.groups > 1:
        return "grouped convolution (groups > 1) runs only on the direct program"
    if epilogue.activation == "prelu" and not epilogue.prelu_per_channel:
        return "PReLU weights that vary within a channel run only on the direct program"
    if epilogue.has_bias and not epilogue.bias_per_channel:
        return "a bias that varies within a channel runs only on the direct program"
    g = geometry
    out = SplitImageLayout(g.batch, g.out_height, g.out_width, g.out_channels, packed_pixels(max_draw_buffers))
    layouts: List[Layout] = [PackedImageLayout(g.batch, g.in_height, g.in_width, g.in_channels),
                             PackedFilterLayout(g.filter_shape, g.depthwise), out]
    if epilogue.has_residual:
        layouts.append(residual_layout(g))
    return _oversized(layouts, max_texture_size)


def packed_program(geometry: Conv2DGeometry, epilogue: Optional[Epilogue] = None,
                   x_split: bool = False, fold: Optional[int] = None,
                   max_texture_size: int = DEFAULT_MAX_TEXTURE_SIZE,
                   max_draw_buffers: int = DEFAULT_MAX_DRAW_BUFFERS, x_fold: Optional[int] = None
                   ) -> PackedProgramSpec:
    """The packed conv2d or depthwise program for ``geometry``.

    ``fold`` defaults to :func:`~gpuconv.layout.choose_fold` for the output; a 1x1
    program reading a split input (``x_split``) must use its producer's fold, and a
    depthwise one is given the producer's as ``x_fold``.
    """
    g = geometry
    pixels = packed_pixels(max_draw_buffers)
    if fold is None:
        if x_split and not geometry.depthwise:
            raise ValueError("a program reading a split input must be given its producer's fold")
        out = SplitImageLayout(g.batch, g.out_height, g.out_width, g.out_channels, pixels)
        fold = choose_fold(out.unfolded_rows, out.unfolded_cols, max_texture_size)
    if geometry.depthwise:
        spec = PackedProgramSpec("PackedDepthwiseConv2DProgram", "packed_depthwise_conv2d.glsl",
                                 geometry, epilogue or Epilogue(), x_split, pixels=pixels, fold=fold,
                                 x_fold=x_fold or 0)
        if x_split and not (x_fold and geometry.channel_multiplier == 1 and spec.reuse_width):
            raise ValueError("a depthwise program reads a split input (given its fold) only at multiplier 1, "
                             "stride 1 or 2 and no dilation across, 2-7 wide")
        return spec
    if x_split and not (geometry.filter_height == geometry.filter_width == 1
                        and geometry.stride_height == geometry.stride_width == 1
                        and geometry.out_height == geometry.in_height
                        and geometry.out_width == geometry.in_width):
        raise ValueError("a split input needs a 1x1, stride-1, unpadded convolution")
    return PackedProgramSpec("PackedConv2DProgram", "packed_conv2d.glsl", geometry,
                             epilogue or Epilogue(), x_split, pixels=pixels, fold=fold)


@dataclass(frozen=True)
class PackedGradientProgramSpec(PackedProgramSpec):
    """The packed input gradient (PackedConv2DDerInputProgram; also the transposed convolution,
    with its fused epilogue).  Its geometry is the forward convolution's, as for
    :class:`GradientProgramSpec`: it reads dy (``geometry.out_shape``, packed 4 channels per
    texel) and the filter swapped (:class:`PackedFilterLayout` ``swapped``: 4 dy channels to 4
    dx channels per mat4), and writes dx (``geometry.in_shape``), ``pixels`` columns x 4
    channels per fragment.  Sizes are uniforms, as for every packed program."""

    @property
    def inputs(self) -> Tuple[ProgramInput, ...]:
        g = self.geometry
        items = [ProgramInput("dy", PackedImageLayout(g.batch, g.out_height, g.out_width, g.out_channels,
                                                      g.data_format)),
                 ProgramInput("W", PackedFilterLayout(g.filter_shape, swapped=True))]
        return tuple(items + packed_epilogue_inputs(self.epilogue, g.in_channels,  # dx's channels
                                                    residual_layout(g, transposed=True)))

    @property
    def chained_inputs(self) -> Tuple[str, ...]:
        return ("dy",)

    @property
    def output(self) -> SplitImageLayout:
        g = self.geometry
        return SplitImageLayout(g.batch, g.in_height, g.in_width, g.in_channels, self.pixels, self.fold)

    @property
    def output_shape(self) -> Tuple[int, ...]:
        return self.geometry.in_shape

    @property
    def reuse_width(self) -> int:
        return 0

    @property
    def loop_iterations(self) -> int:
        """Filter rows, their taps, and at each tap dy's blocks of four channels."""
        g = self.geometry
        depth4 = -(-g.out_channels // 4)
        return g.filter_height + g.filter_height * g.filter_width * (1 + depth4)

    def describe(self) -> str:
        return (f"gpuconv {self.name}: {self.pixels} dx pixels x 4 dx channels per fragment, "
                f"dy 4 channels per texel, the filter swapped and flipped by index, sizes as uniforms")

    def template_context(self) -> Dict[str, Any]:
        return {"description": self.describe(), "epilogue": self.epilogue, "x_split": False,
                "pixels": self.pixels, "x_name": "dy"}

    @property
    def uniforms(self) -> Dict[str, Any]:
        g = self.geometry
        layouts = {item.name: item.layout for item in self.inputs}
        return {
            "inSize": (g.out_height, g.out_width),
            "inDepth4": -(-g.out_channels // 4),
            "outHeight": g.in_height,
            "outDepth4": -(-g.in_channels // 4),
            "filterSize": (g.filter_height, g.filter_width),
            "strides": (g.stride_height, g.stride_width),
            "dilations": (g.dilation_height, g.dilation_width),
            # the transposed pads: dy's window corner for dx[r, c]
            "pads": (g.effective_filter_height - 1 - g.pad_top, g.effective_filter_width - 1 - g.pad_left),
            "outRows": self.output.unfolded_rows,
            "outCols": self.output.unfolded_cols,
            "outBandRows": self.output.rows,
            "tapRowStep": g.stride_height // math.gcd(g.stride_height, g.dilation_height),
            "dyTexelSize": (1 / layouts["dy"].cols, 1 / layouts["dy"].rows),
            "wTexelSize": (1 / layouts["W"].cols, 1 / layouts["W"].rows),
            **({"residualWidth": g.in_width} if self.epilogue.has_residual else {}),
        }


def packed_backprop_input_unsupported(geometry: Conv2DGeometry, epilogue: Epilogue, *, bias_full: bool = False,
                                      max_texture_size: int = DEFAULT_MAX_TEXTURE_SIZE,
                                      max_draw_buffers: int = DEFAULT_MAX_DRAW_BUFFERS) -> Optional[str]:
    """Why the packed input gradient / transposed convolution cannot run, or ``None`` if it can."""
    g = geometry
    if g.depthwise:
        return "the depthwise input gradient runs only on the direct program"
    if g.groups > 1:
        return "grouped convolution (groups > 1) runs only on the direct program"
    if bias_full or (epilogue.has_bias and not epilogue.bias_per_channel):
        return "a bias that varies within a channel runs only on the direct program"
    if epilogue.activation == "prelu" and not epilogue.prelu_per_channel:
        return "PReLU weights that vary within a channel run only on the direct program"
    out = SplitImageLayout(g.batch, g.in_height, g.in_width, g.in_channels, packed_pixels(max_draw_buffers))
    layouts: List[Layout] = [PackedImageLayout(g.batch, g.out_height, g.out_width, g.out_channels),
                             PackedFilterLayout(g.filter_shape, swapped=True), out]
    if epilogue.has_residual:
        layouts.append(residual_layout(g, transposed=True))
    return _oversized(layouts, max_texture_size)


def packed_backprop_input_program(geometry: Conv2DGeometry, epilogue: Optional[Epilogue] = None,
                                  max_texture_size: int = DEFAULT_MAX_TEXTURE_SIZE,
                                  max_draw_buffers: int = DEFAULT_MAX_DRAW_BUFFERS) -> PackedGradientProgramSpec:
    """The packed Conv2DDerInputProgram for ``geometry`` (the forward convolution's)."""
    g = geometry
    if g.depthwise or g.groups > 1:
        raise ValueError("the packed input gradient needs an ungrouped conv2d geometry")
    pixels = packed_pixels(max_draw_buffers)
    out = SplitImageLayout(g.batch, g.in_height, g.in_width, g.in_channels, pixels)
    fold = choose_fold(out.unfolded_rows, out.unfolded_cols, max_texture_size)
    return PackedGradientProgramSpec("PackedConv2DDerInputProgram", "packed_conv2d_backprop_input.glsl",
                                     geometry, epilogue or Epilogue(), pixels=pixels, fold=fold)
