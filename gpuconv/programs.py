"""One small spec per GPU program: its inputs, its output and its template parameters.

Like TF.js's program classes, a spec knows the maths' parameters (from the
geometry) and the inputs' texture layouts, but holds no GLSL: the template
named by ``template`` does.  Specs are frozen and hashable: the runtime caches
compiled programs under them, and two calls with the same spec share one program.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Dict, Hashable, List, Optional, Protocol, Sequence, Tuple

import numpy as np

from .geometry import Conv2DGeometry, Conv3DGeometry
from .layout import (
    DEFAULT_MAX_TEXTURE_SIZE,
    Layout,
    PackedFilterLayout,
    PackedImageLayout,
    PackedVectorLayout,
    SplitImageLayout,
    TextureLayout,
    choose_fold,
    texture_layout,
)
from .limits import DEFAULT_MAX_DRAW_BUFFERS

_COORD_TYPES = {1: "int", 2: "ivec2", 3: "ivec3", 4: "ivec4"}


def shape_text(shape: Sequence[int]) -> str:
    return "x".join(str(d) for d in shape)


class Drawable(Protocol):
    """What the code generator (:mod:`~gpuconv.codegen`) and a runtime's ``draw`` need of a
    program: its template and what renders it, its inputs (samplers) and its render targets.
    A layout conversion (:class:`~gpuconv.convert.ConversionSpec`) is one; so is every
    :class:`Program`."""

    @property
    def name(self) -> str: ...            # the program class, e.g. "Conv2DProgram"

    @property
    def template(self) -> str: ...        # the file in shaders/ holding its main()

    @property
    def inputs(self) -> Tuple["ProgramInput", ...]: ...

    @property
    def variable_names(self) -> Tuple[str, ...]: ...

    @property
    def output_layouts(self) -> Tuple[Layout, ...]: ...  # one per render target

    @property
    def uniforms(self) -> Dict[str, Any]: ...

    def source_key(self) -> Hashable: ...  # equal keys, equal sources

    def template_context(self) -> Dict[str, Any]: ...

    def describe(self) -> str: ...


class Program(Drawable, Protocol):
    """What a program spec offers the code generator (:mod:`~gpuconv.codegen`), the plan and
    the runtimes.  :class:`ProgramSpec` (TF.js's programs) and :class:`PackedProgramSpec`
    (the packed ones) are the two kinds."""

    @property
    def loop_iterations(self) -> int: ...  # per fragment, all loops together (see LLVMPIPE_LOOP_LIMIT)

    @property
    def geometry(self) -> Conv2DGeometry: ...

    @property
    def epilogue(self) -> "Epilogue": ...

    @property
    def chained_inputs(self) -> Tuple[str, ...]: ...  # inputs a chained program takes from the previous one

    @property
    def output_shape(self) -> Tuple[int, ...]: ...

    def assemble(self, parts: Sequence[np.ndarray]) -> np.ndarray: ...  # the result from the outputs' texels


@dataclass(frozen=True)
class ProgramInput:
    """One input texture: uniform ``name``, read through ``get<Name>(...)``."""

    name: str
    layout: Layout

    @property
    def getter(self) -> str:
        return "get" + self.name[0].upper() + self.name[1:]

    @property
    def shape_text(self) -> str:
        return shape_text(self.layout.shape)


@dataclass(frozen=True)
class ProgramOutput:
    layout: TextureLayout

    @property
    def coord_type(self) -> str:
        return _COORD_TYPES[len(self.layout.shape)]

    @property
    def shape_text(self) -> str:
        return shape_text(self.layout.shape)


@dataclass(frozen=True)
class Epilogue:
    """What a fused program does after the convolution: add a bias, apply an activation.

    ``prelu_per_channel`` says whether the PReLU weights are one per output
    channel (read by channel) or a full tensor of the output's shape;
    ``bias_per_channel`` the same of the bias (a bias that broadcasts to the output
    and varies within a channel is given to the direct programs at the output's shape).
    """

    activation: str = "linear"
    has_bias: bool = False
    leakyrelu_alpha: float = 0.2
    prelu_per_channel: bool = True
    bias_per_channel: bool = True

    @property
    def is_identity(self) -> bool:
        return self.activation == "linear" and not self.has_bias


@dataclass(frozen=True)
class ProgramSpec:
    """Everything that determines a program's source (and so its cache key)."""

    name: str                          # TF.js's name of the program, e.g. "Conv2DProgram"
    template: str                      # the file in shaders/ holding its main()
    inputs: Tuple[ProgramInput, ...]
    output: ProgramOutput
    geometry: Conv2DGeometry
    epilogue: Epilogue = field(default_factory=Epilogue)

    #: Inputs that a chained program takes from the previous program's outputs.
    chained_inputs: Tuple[str, ...] = ("x",)

    @property
    def variable_names(self) -> Tuple[str, ...]:
        return tuple(i.name for i in self.inputs)

    @property
    def output_shape(self) -> Tuple[int, ...]:
        return self.output.layout.shape

    def source_key(self) -> Hashable:
        """What determines the source: everything (shapes are baked in as constants)."""
        return self

    @property
    def loop_iterations(self) -> int:
        """Loop iterations per fragment, all loops together: the filter window's rows and
        taps, and conv2d's channel loop (four channels an iteration) at every tap."""
        g = self.geometry
        taps = g.filter_height * g.filter_width
        channel_blocks = 0 if g.depthwise else g.in_channels_per_group // 4
        return g.filter_height + taps + taps * channel_blocks

    @property
    def uniforms(self) -> Dict[str, Any]:
        return {}

    @property
    def output_layouts(self) -> Tuple[Layout, ...]:
        return (self.output.layout,)

    def assemble(self, parts: Sequence[np.ndarray]) -> np.ndarray:
        """The logical result from the output textures' contents."""
        return self.output.layout.unpack(parts[0])

    def describe(self) -> str:
        g = self.geometry
        inputs = ", ".join(f"{i.name} {i.shape_text}" for i in self.inputs)
        text = (
            f"gpuconv {self.name}: {inputs} -> {self.output.shape_text} ({g.data_format}); "
            f"strides {g.stride_height}x{g.stride_width}, dilations {g.dilation_height}x{g.dilation_width}, "
            f"pads top {g.pad_top} bottom {g.pad_bottom} left {g.pad_left} right {g.pad_right} ({g.padding_kind})"
        )
        if g.groups > 1:
            text += f", groups {g.groups}"
        if not self.epilogue.is_identity:
            text += f", bias {'yes' if self.epilogue.has_bias else 'no'}, activation {self.epilogue.activation}"
        return text

    def template_context(self) -> Dict[str, Any]:
        g = self.geometry
        channels_last = g.channels_last
        depth = g.in_channels_per_group
        return {
            "description": self.describe(),
            "inputs": self.inputs,
            "output": self.output,
            "epilogue": self.epilogue,
            "g": g,
            "channels_last": channels_last,
            "channel_axis": 3 if channels_last else 1,
            "height_axis": 1 if channels_last else 2,
            "width_axis": 2 if channels_last else 3,
            "groups": g.groups,
            "depth_vec4": depth - depth % 4,
            "depth_remainder": depth % 4,
        }


def _fused_inputs(geometry: Conv2DGeometry, epilogue: Epilogue, limit: int) -> list:
    inputs = []
    if epilogue.has_bias:
        shape = (geometry.out_channels,) if epilogue.bias_per_channel else geometry.out_shape
        inputs.append(ProgramInput("bias", texture_layout(shape, limit)))
    if epilogue.activation == "prelu":
        shape = (geometry.out_channels,) if epilogue.prelu_per_channel else geometry.out_shape
        inputs.append(ProgramInput("preluActivationWeights", texture_layout(shape, limit)))
    return inputs


def _conv_spec(name: str, template: str, geometry: Conv2DGeometry, epilogue: Epilogue,
               limit: int) -> ProgramSpec:
    inputs = [
        # Channels-first x: its sampler reads getX(b, d, r, c), batch, channel, row, column.
        ProgramInput("x", texture_layout(geometry.in_shape, limit,
                                         None if geometry.channels_last else ("b", "d", "r", "c"))),
        ProgramInput("W", texture_layout(geometry.filter_shape, limit)),
        *_fused_inputs(geometry, epilogue, limit),
    ]
    output = ProgramOutput(texture_layout(geometry.out_shape, limit))
    return ProgramSpec(name, template, tuple(inputs), output, geometry, epilogue)


def conv2d_program(geometry: Conv2DGeometry, epilogue: Optional[Epilogue] = None,
                   max_texture_size: int = DEFAULT_MAX_TEXTURE_SIZE) -> ProgramSpec:
    """TF.js's Conv2DProgram (and FusedConv2D, grouped when ``geometry.groups > 1``)."""
    if geometry.depthwise:
        raise ValueError("conv2d_program needs a conv2d geometry, got a depthwise one")
    return _conv_spec("Conv2DProgram", "conv2d.glsl", geometry, epilogue or Epilogue(), max_texture_size)


def depthwise_conv2d_program(geometry: Conv2DGeometry, epilogue: Optional[Epilogue] = None,
                             max_texture_size: int = DEFAULT_MAX_TEXTURE_SIZE) -> ProgramSpec:
    """TF.js's DepthwiseConv2DProgram (channel multiplier, optional fused epilogue)."""
    if not geometry.depthwise:
        raise ValueError("depthwise_conv2d_program needs a depthwise geometry")
    return _conv_spec("DepthwiseConv2DProgram", "depthwise_conv2d.glsl", geometry,
                      epilogue or Epilogue(), max_texture_size)


# ---------------------------------------------------------------------------
# The packed ("fast") programs: shape-generic, 8 pixels x 4 channels per fragment.


#: Output pixels per fragment of the packed programs, one render target each.  Measured on
#: llvmpipe (LLVM 15, 2 cores): 8 beats 4 by 1.2-1.35x on the benchmark's layers, because each
#: fetched weight serves twice as many pixels.  A device with fewer draw buffers
#: (``GL_MAX_DRAW_BUFFERS``; WebGL2 guarantees 4) gets as many pixels as it has buffers.
PACKED_PIXELS = DEFAULT_MAX_DRAW_BUFFERS


def packed_pixels(max_draw_buffers: int = DEFAULT_MAX_DRAW_BUFFERS) -> int:
    """Output pixels per fragment of a packed program on a device with ``max_draw_buffers``."""
    return max(1, min(PACKED_PIXELS, max_draw_buffers))


def packed_epilogue_inputs(epilogue: Epilogue, out_channels: int) -> List[ProgramInput]:
    """The fused epilogue's inputs of a packed program: bias and PReLU weights, four channels a texel."""
    items = []
    if epilogue.has_bias:
        items.append(ProgramInput("bias", PackedVectorLayout(out_channels)))
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
        return tuple(items + packed_epilogue_inputs(self.epilogue, g.out_channels))

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
        return values

    def assemble(self, parts: Sequence[np.ndarray]) -> np.ndarray:
        return self.output.assemble(parts, self.geometry.data_format)


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
    layouts: list = [PackedImageLayout(g.batch, g.in_height, g.in_width, g.in_channels),
               PackedFilterLayout(g.filter_shape, g.depthwise), out]
    for layout in layouts:
        if layout.rows > max_texture_size or layout.cols > max_texture_size:
            return (f"a packed texture would be {layout.rows}x{layout.cols} texels, over the "
                    f"{max_texture_size} limit")
    return None


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
        return tuple(items + packed_epilogue_inputs(self.epilogue, g.in_channels))  # dx's channels

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
            "dyTexelSize": (1 / layouts["dy"].cols, 1 / layouts["dy"].rows),
            "wTexelSize": (1 / layouts["W"].cols, 1 / layouts["W"].rows),
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
    layouts: list = [PackedImageLayout(g.batch, g.out_height, g.out_width, g.out_channels),
                     PackedFilterLayout(g.filter_shape, swapped=True), out]
    for layout in layouts:
        if layout.rows > max_texture_size or layout.cols > max_texture_size:
            return (f"a packed texture would be {layout.rows}x{layout.cols} texels, over the "
                    f"{max_texture_size} limit")
    return None


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


def annotate(spec: Program, op_title: str, filter_layout: str, *, dim_rounding_mode: Optional[str] = None,
             one_d: bool = False) -> list[str]:
    """``//`` comment lines with the parameters that shaped one program (``gpuconv shader --annotate``).

    ``op_title`` names the op (and, for one program of several, which one and what it does:
    ``"separable_conv2d, program 1 of 2: depthwise"``); ``filter_layout`` is the layout of
    this program's filter; ``dim_rounding_mode`` the output size rounding of a numeric
    padding; ``one_d`` says the op is a 1-D convolution run as a conv2d of height 1.
    """
    from . import __version__

    g = spec.geometry

    def texture_text(name: str, layout: Layout) -> str:
        kind = "RGBA" if layout.components == 4 else "R"
        return f"{name} {layout.rows}x{layout.cols} {kind}{' (wrapped)' if getattr(layout, 'wrapped', False) else ''}"

    textures = ", ".join(texture_text(i.name, i.layout) for i in spec.inputs)
    outputs = spec.output_layouts
    textures += ", " + texture_text("output", outputs[0])
    if len(outputs) > 1:
        textures += f" x {len(outputs)} render targets"
    split: Tuple[str, str]
    if isinstance(spec, PackedGradientProgramSpec):
        depth = (f"dy's {g.out_channels} channels in blocks of 4 (one RGBA texel each); "
                 f"{spec.pixels} dx pixels x 4 dx channels per fragment, fold {spec.fold}")
        split = ("groups", str(g.groups))
    elif isinstance(spec, PackedProgramSpec):
        depth = (f"{g.in_channels} channels in blocks of 4 (one RGBA texel each); "
                 f"{spec.pixels} pixels x 4 output channels per fragment, fold {spec.fold}")
        split = ("groups", str(g.groups)) if not g.depthwise else ("channel multiplier", str(g.channel_multiplier))
    elif g.depthwise:
        depth = (f"{g.in_channels} channels; depthwise: each output channel reads one input "
                 f"channel (no vec4 depth loop)")
        split = ("channel multiplier", str(g.channel_multiplier))
    else:
        context = spec.template_context()
        depth = (f"{g.in_channels_per_group} per group = {context['depth_vec4']} (vec4 part) + "
                 f"{context['depth_remainder']} (remainder)")
        split = ("groups", str(g.groups))
    kind = g.padding_kind.lower()
    if g.padding_kind == "NUMBER":
        kind += f" (output size rounding: {dim_rounding_mode or 'truncate'})"
    epilogue = spec.epilogue
    fused = ["bias"] if epilogue.has_bias else []
    if epilogue.activation == "leakyrelu":
        fused.append(f"activation leakyrelu (alpha {epilogue.leakyrelu_alpha:g})")
    elif epilogue.activation != "linear":
        fused.append(f"activation {epilogue.activation}")
    title = f"{op_title} ({spec.name}, template {spec.template})"
    if one_d:
        title += "; run as a conv2d of height 1, shapes below are its 4-D ones"
        filter_layout = "1 x " + filter_layout
    rows = [
        ("op", title),
        ("x", f"{shape_text(g.in_shape)} ({g.data_format})"),
        ("filter", f"{shape_text(g.filter_shape)} ({filter_layout})"),
        ("output", f"{shape_text(g.out_shape)} ({g.data_format})"),
        ("textures", f"{textures} (rows x cols)"),
        ("strides", f"{g.stride_height}x{g.stride_width}"),
        ("dilations", f"{g.dilation_height}x{g.dilation_width}"),
        ("pads", f"top {g.pad_top}, bottom {g.pad_bottom}, left {g.pad_left}, right {g.pad_right}"),
        ("padding", kind),
        ("input depth", depth),
        split,
        ("fused", ", ".join(fused) or "none"),
    ]
    width = max(len(k) for k, _ in rows) + 1
    rule = "// " + "-" * 70
    return [rule, f"// gpuconv {__version__}: the parameters that shaped this program", rule] + \
           [f"// {k + ':':<{width}} {v}" for k, v in rows] + [rule]


# ---------------------------------------------------------------------------
# The gradient and transposed convolutions (TF.js's Conv2DDerInputProgram,
# Conv2DDerFilterProgram, DepthwiseConv2DDerInputProgram, DepthwiseConv2DDerFilterProgram).
# Their geometry is the FORWARD convolution's: g.in_shape is dx's shape, g.out_shape dy's,
# g.filter_shape the filter's (or df's).


@dataclass(frozen=True)
class GradientProgramSpec(ProgramSpec):
    """A gradient program: one element of ``dx`` (``kind="input"``) or of ``df`` (``kind="filter"``)
    per fragment.  ``bias_full`` says a fused bias is a full tensor of the output's shape
    (the transposed convolution broadcasts its bias, as TF.js's fused ops do), not one per channel."""

    kind: str = "input"
    bias_full: bool = False
    #: a filter gradient split into partial sums (see :func:`filter_gradient_slices`): each
    #: fragment sums ``slice_length`` of the batch's dy positions; 1: one program sums them all
    slices: int = 1
    slice_length: int = 0

    @property
    def loop_iterations(self) -> int:
        """Loop iterations per fragment: the input gradient runs the filter window and dy's
        channels (or a depthwise filter's multiplier) at every tap; the filter gradient the
        batch's dy positions (a slice of them, when split)."""
        g = self.geometry
        if self.kind == "filter":
            if self.slices > 1:
                return self.slice_length
            return g.batch + g.batch * g.out_height + g.batch * g.out_height * g.out_width
        taps = g.filter_height * g.filter_width
        inner = g.channel_multiplier if g.depthwise else g.out_channels // 4
        return g.filter_height + taps + taps * inner

    def describe(self) -> str:
        g = self.geometry
        inputs = ", ".join(f"{i.name} {i.shape_text}" for i in self.inputs)
        text = (
            f"gpuconv {self.name}: {inputs} -> {self.output.shape_text} ({g.data_format}); the forward "
            f"convolution's strides {g.stride_height}x{g.stride_width}, dilations "
            f"{g.dilation_height}x{g.dilation_width}, pads top {g.pad_top} bottom {g.pad_bottom} "
            f"left {g.pad_left} right {g.pad_right} ({g.padding_kind})"
        )
        if g.depthwise:
            text += f", channel multiplier {g.channel_multiplier}"
        if self.slices > 1:
            text += (f"; partial sums: {self.slices} slices of {self.slice_length} of the "
                     f"{g.batch * g.out_height * g.out_width} dy positions")
        if not self.epilogue.is_identity:
            text += f", bias {'yes' if self.epilogue.has_bias else 'no'}, activation {self.epilogue.activation}"
        return text

    def template_context(self) -> Dict[str, Any]:
        context = super().template_context()
        g = self.geometry
        depth = g.out_channels  # dx sums over dy's channels
        context.update({
            "kind": self.kind,
            "depth_vec4": depth - depth % 4,
            "depth_remainder": depth % 4,
            # dy's window corner for dx[r, c]: the transposed convolution pads by
            # (effective filter - 1 - pad) before
            "pad_top_t": g.effective_filter_height - 1 - g.pad_top,
            "pad_left_t": g.effective_filter_width - 1 - g.pad_left,
            "bias_full": self.bias_full,
            "slices": self.slices,
            "slice_length": self.slice_length,
            # the epilogue without its bias, for a full bias the template adds itself
            "epilogue_unbiased": Epilogue(self.epilogue.activation, False, self.epilogue.leakyrelu_alpha,
                                          self.epilogue.prelu_per_channel),
        })
        return context


def _image_input(name: str, shape: Tuple[int, ...], geometry: Conv2DGeometry, limit: int) -> ProgramInput:
    """An image tensor (x or dy) in the geometry's data format; NCHW reads get<Name>(b, d, r, c)."""
    return ProgramInput(name, texture_layout(shape, limit, None if geometry.channels_last else ("b", "d", "r", "c")))


def conv2d_backprop_input_program(geometry: Conv2DGeometry, epilogue: Optional[Epilogue] = None,
                                  max_texture_size: int = DEFAULT_MAX_TEXTURE_SIZE, *,
                                  bias_full: bool = False) -> GradientProgramSpec:
    """TF.js's Conv2DDerInputProgram (``geometry.depthwise``: DepthwiseConv2DDerInputProgram).

    Inputs ``dy`` (``geometry.out_shape``) and ``W``; output ``dx`` (``geometry.in_shape``).
    With an ``epilogue`` (the transposed convolution's bias and activation) its bias is
    one per dx channel, or a full dx-shaped tensor with ``bias_full``.
    """
    epilogue = epilogue or Epilogue()
    g = geometry
    limit = max_texture_size
    inputs = [_image_input("dy", g.out_shape, g, limit), ProgramInput("W", texture_layout(g.filter_shape, limit))]
    if epilogue.has_bias:
        inputs.append(_image_input("bias", g.in_shape, g, limit) if bias_full
                      else ProgramInput("bias", texture_layout((g.in_channels,), limit)))
    if epilogue.activation == "prelu":
        shape = (g.in_channels,) if epilogue.prelu_per_channel else g.in_shape
        inputs.append(ProgramInput("preluActivationWeights", texture_layout(shape, limit)))
    if g.depthwise:
        name, template = "DepthwiseConv2DDerInputProgram", "depthwise_conv2d_backprop_input.glsl"
    else:
        name, template = "Conv2DDerInputProgram", "conv2d_backprop_input.glsl"
    output = ProgramOutput(texture_layout(g.in_shape, limit))
    return GradientProgramSpec(name, template, tuple(inputs), output, g, epilogue, ("dy",), "input", bias_full)


def conv2d_backprop_filter_program(geometry: Conv2DGeometry, max_texture_size: int = DEFAULT_MAX_TEXTURE_SIZE,
                                   slices: int = 1) -> GradientProgramSpec:
    """TF.js's Conv2DDerFilterProgram (``geometry.depthwise``: DepthwiseConv2DDerFilterProgram).

    Inputs ``x`` (``geometry.in_shape``) and ``dy`` (``geometry.out_shape``); output ``df``
    (``geometry.filter_shape``), one filter element per fragment, summed over the batch
    and dy's positions.  With ``slices`` > 1 it writes partial sums instead,
    ``[slices * FH, FW, C, K]``, each over one slice of the batch's dy positions, which
    :func:`slice_sum_program` adds up.
    """
    g = geometry
    inputs = (_image_input("x", g.in_shape, g, max_texture_size), _image_input("dy", g.out_shape, g, max_texture_size))
    if g.depthwise:
        name, template = "DepthwiseConv2DDerFilterProgram", "depthwise_conv2d_backprop_filter.glsl"
    else:
        name, template = "Conv2DDerFilterProgram", "conv2d_backprop_filter.glsl"
    shape = tuple(g.filter_shape)
    if slices > 1:
        shape = (slices * shape[0],) + shape[1:]
    output = ProgramOutput(texture_layout(shape, max_texture_size))
    positions = g.batch * g.out_height * g.out_width
    return GradientProgramSpec(name, template, inputs, output, g, Epilogue(), ("x",), "filter",
                               slices=slices, slice_length=-(-positions // slices))


#: Loop iterations llvmpipe runs per fragment, all loops together: gallivm's loop limiter
#: (LP_MAX_TGSI_LOOP_ITERATIONS, 65535) silently ends every loop after that many.
LLVMPIPE_LOOP_LIMIT = 65535
#: dy positions per partial sum of a filter gradient: short float32 sums (a sum of 16k terms
#: drifts to ~5e-6 of its size), far below the loop limit.
FILTER_GRADIENT_SLICE = 2048
#: the most partial sums a split filter gradient stores (values; 64 MiB of float32)
FILTER_GRADIENT_PARTIALS = 1 << 24


def filter_gradient_slices(positions: int, filter_size: int) -> int:
    """How many partial sums a filter gradient over ``positions`` dy positions (batch and
    spatial) is split into: 1 (one program, TF.js's) up to :data:`FILTER_GRADIENT_SLICE`
    positions, else enough slices of at most that many, as far as
    :data:`FILTER_GRADIENT_PARTIALS` values of ``filter_size`` allow, and always enough
    to keep each slice's loop within llvmpipe's :data:`LLVMPIPE_LOOP_LIMIT`."""
    needed = -(-positions // (LLVMPIPE_LOOP_LIMIT - 1))
    wanted = min(-(-positions // FILTER_GRADIENT_SLICE), max(1, FILTER_GRADIENT_PARTIALS // max(1, filter_size)))
    return max(1, needed, wanted)


# ---------------------------------------------------------------------------
# The 3-D convolution (TF.js's Conv3DProgram).


@dataclass(frozen=True)
class Conv3DProgramSpec:
    """TF.js's Conv3DProgram (``kind="forward"``), Conv3DDerInputProgram (``"input"``) or
    Conv3DDerFilterProgram (``"filter"``): one output element per fragment, shapes baked in.

    ``geometry3d`` is the (forward) convolution's :class:`~gpuconv.geometry.Conv3DGeometry`.
    The rank-5 result is written as a rank-4 tensor, its first two dimensions folded into
    one (the batch and the output depth, ``[N * OD, OH, OW, K]``, NDHWC, or the batch and
    the channels, ``[N * K, OD, OH, OW]``, NCDHW; a filter gradient's ``[FD * FH, FW, C, K]``):
    the same values in the same order, read back through an ``ivec4``.
    """

    name: str
    template: str
    inputs: Tuple[ProgramInput, ...]
    output: ProgramOutput
    geometry3d: Conv3DGeometry
    epilogue: Epilogue = field(default_factory=Epilogue)
    chained_inputs: Tuple[str, ...] = ("x",)
    kind: str = "forward"
    #: a filter gradient's partial sums, as :attr:`GradientProgramSpec.slices`
    slices: int = 1
    slice_length: int = 0

    @property
    def geometry(self) -> Any:
        """The 3-D geometry (the :class:`Program` protocol's ``geometry`` is 2-D; nothing that
        needs a 2-D one reads a 3-D program's)."""
        return self.geometry3d

    @property
    def loop_iterations(self) -> int:
        """Loop iterations per fragment: the filter window (depth, rows, taps) and four channels
        an iteration at every tap; a filter gradient the batch's dy positions (or one slice)."""
        g = self.geometry3d
        if self.kind == "filter":
            if self.slices > 1:
                return self.slice_length
            return g.batch * math.prod(g.out_spatial) * 2
        fd, fh, fw = g.filter_spatial
        channels = g.in_channels if self.kind == "forward" else g.out_channels
        return fd + fd * fh + fd * fh * fw + fd * fh * fw * (channels // 4)

    @property
    def variable_names(self) -> Tuple[str, ...]:
        return tuple(i.name for i in self.inputs)

    @property
    def output_shape(self) -> Tuple[int, ...]:
        g = self.geometry3d
        shape = tuple({"forward": g.out_shape, "input": g.in_shape, "filter": g.filter_shape}[self.kind])
        return (self.slices * shape[0],) + shape[1:] if self.slices > 1 else shape

    @property
    def output_layouts(self) -> Tuple[Layout, ...]:
        return (self.output.layout,)

    @property
    def uniforms(self) -> Dict[str, Any]:
        return {}

    def source_key(self) -> Hashable:
        return self

    def assemble(self, parts: Sequence[np.ndarray]) -> np.ndarray:
        return self.output.layout.unpack(parts[0]).reshape(self.output_shape)

    def describe(self) -> str:
        g = self.geometry3d
        inputs = ", ".join(f"{i.name} {i.shape_text}" for i in self.inputs)
        forward = "" if self.kind == "forward" else "the forward convolution's "
        text = (
            f"gpuconv {self.name}: {inputs} -> {shape_text(self.output_shape)} ({g.data_format}), written as "
            f"{self.output.shape_text}; {forward}strides {shape_text(g.strides)}, dilations "
            f"{shape_text(g.dilations)}, pads front {g.pad_front} back {g.pad_back} top {g.pad_top} "
            f"bottom {g.pad_bottom} left {g.pad_left} right {g.pad_right} ({g.padding_kind})"
        )
        if self.slices > 1:
            text += (f"; partial sums: {self.slices} slices of {self.slice_length} of the "
                     f"{g.batch * math.prod(g.out_spatial)} dy positions")
        return text

    def template_context(self) -> Dict[str, Any]:
        g = self.geometry3d
        depth = g.out_channels if self.kind == "input" else g.in_channels  # what the dot products run over
        front, top, left = (eff - 1 - before for eff, (before, _) in zip(g.effective_filter_spatial, g.pads))
        return {
            "description": self.describe(),
            "inputs": self.inputs,
            "output": self.output,
            "epilogue": self.epilogue,
            "g": g,
            "channels_last": g.channels_last,
            "depth_vec4": depth - depth % 4,
            "depth_remainder": depth % 4,
            # the transposed pads (dy's window corner for dx), as in Conv2DDerInputProgram
            "pad_front_t": front,
            "pad_top_t": top,
            "pad_left_t": left,
            "slices": self.slices,
            "slice_length": self.slice_length,
        }


def conv3d_program(geometry: Conv3DGeometry, max_texture_size: int = DEFAULT_MAX_TEXTURE_SIZE) -> Conv3DProgramSpec:
    """TF.js's Conv3DProgram for ``geometry`` (x ``geometry.in_shape``, W ``[FD, FH, FW, inC, outC]``)."""
    g = geometry
    if g.channels_last:
        x_names = ("b", "z", "r", "c", "d")
        folded: Tuple[int, ...] = (g.batch * g.out_depth, g.out_height, g.out_width, g.out_channels)
    else:
        x_names = ("b", "d", "z", "r", "c")
        folded = (g.batch * g.out_channels, g.out_depth, g.out_height, g.out_width)
    inputs = (ProgramInput("x", texture_layout(g.in_shape, max_texture_size, x_names)),
              ProgramInput("W", texture_layout(g.filter_shape, max_texture_size, ("z", "r", "c", "d1", "d2"))))
    output = ProgramOutput(texture_layout(folded, max_texture_size))
    return Conv3DProgramSpec("Conv3DProgram", "conv3d.glsl", inputs, output, g)


def _folded(shape: Sequence[int]) -> Tuple[int, ...]:
    """A rank-5 shape with its first two dimensions folded into one (how the 3-D programs write it)."""
    return (shape[0] * shape[1],) + tuple(shape[2:])


def conv3d_backprop_input_program(geometry: Conv3DGeometry,
                                  max_texture_size: int = DEFAULT_MAX_TEXTURE_SIZE) -> Conv3DProgramSpec:
    """TF.js's Conv3DDerInputProgram: ``dy`` (``geometry.out_shape``) and ``W`` in, ``dx``
    (``geometry.in_shape``) out; also the transposed 3-D convolution."""
    g = geometry
    names = ("b", "z", "r", "c", "d") if g.channels_last else ("b", "d", "z", "r", "c")
    inputs = (ProgramInput("dy", texture_layout(g.out_shape, max_texture_size, names)),
              ProgramInput("W", texture_layout(g.filter_shape, max_texture_size, ("z", "r", "c", "d1", "d2"))))
    output = ProgramOutput(texture_layout(_folded(g.in_shape), max_texture_size))
    return Conv3DProgramSpec("Conv3DDerInputProgram", "conv3d_backprop_input.glsl", inputs, output, g,
                             Epilogue(), ("dy",), "input")


def conv3d_backprop_filter_program(geometry: Conv3DGeometry, max_texture_size: int = DEFAULT_MAX_TEXTURE_SIZE,
                                   slices: int = 1) -> Conv3DProgramSpec:
    """TF.js's Conv3DDerFilterProgram: ``x`` and ``dy`` in, ``df`` (``geometry.filter_shape``) out;
    with ``slices`` > 1 partial sums ``[slices * FD, FH, FW, C, K]`` (written ``[slices * FD * FH,
    FW, C, K]``) for :func:`slice_sum_program`, as :func:`conv2d_backprop_filter_program`."""
    g = geometry
    names = ("b", "z", "r", "c", "d") if g.channels_last else ("b", "d", "z", "r", "c")
    inputs = (ProgramInput("x", texture_layout(g.in_shape, max_texture_size, names)),
              ProgramInput("dy", texture_layout(g.out_shape, max_texture_size, names)))
    shape = tuple(g.filter_shape)
    if slices > 1:
        shape = (slices * shape[0],) + shape[1:]
    output = ProgramOutput(texture_layout(_folded(shape), max_texture_size))
    positions = g.batch * math.prod(g.out_spatial)
    return Conv3DProgramSpec("Conv3DDerFilterProgram", "conv3d_backprop_filter.glsl", inputs, output, g,
                             Epilogue(), ("x",), "filter", slices, -(-positions // slices))


@dataclass(frozen=True)
class SliceSumProgramSpec:
    """Adds up a split filter gradient's partial sums: ``partials`` is the previous program's
    output, ``[slices * R, ...]`` (rank 4), the result ``[R, ...]``, reshaped to ``result_shape``."""

    name: str
    template: str
    inputs: Tuple[ProgramInput, ...]
    output: ProgramOutput
    source: Any                   # the program whose partial sums this adds (its geometry is this one's)
    slices: int
    result_shape: Tuple[int, ...]
    epilogue: Epilogue = field(default_factory=Epilogue)
    chained_inputs: Tuple[str, ...] = ("partials",)

    @property
    def geometry(self) -> Any:
        return self.source.geometry

    @property
    def loop_iterations(self) -> int:
        return self.slices

    @property
    def variable_names(self) -> Tuple[str, ...]:
        return tuple(i.name for i in self.inputs)

    @property
    def output_shape(self) -> Tuple[int, ...]:
        return self.result_shape

    @property
    def output_layouts(self) -> Tuple[Layout, ...]:
        return (self.output.layout,)

    @property
    def uniforms(self) -> Dict[str, Any]:
        return {}

    def source_key(self) -> Hashable:
        return (self.template, self.inputs, self.output, self.slices)

    def assemble(self, parts: Sequence[np.ndarray]) -> np.ndarray:
        return self.output.layout.unpack(parts[0]).reshape(self.result_shape)

    def describe(self) -> str:
        return (f"gpuconv {self.name}: partials {self.inputs[0].shape_text} -> {shape_text(self.result_shape)}, "
                f"the sum of {self.slices} partial sums of {self.source.name}")

    def template_context(self) -> Dict[str, Any]:
        return {
            "description": self.describe(),
            "inputs": self.inputs,
            "output": self.output,
            "epilogue": self.epilogue,
            "slices": self.slices,
            "rows": self.output.layout.shape[0],
        }


def slice_sum_program(partials: Program, max_texture_size: int = DEFAULT_MAX_TEXTURE_SIZE) -> SliceSumProgramSpec:
    """The program adding up the partial sums a sliced filter-gradient program (``slices`` > 1) writes."""
    layout = partials.output_layouts[0]
    slices = int(getattr(partials, "slices", 1))
    written = tuple(layout.shape)
    if slices < 2 or written[0] % slices:
        raise ValueError(f"{partials.name} writes no partial sums to add up")
    result = (written[0] // slices,) + written[1:]
    inputs = (ProgramInput("partials", texture_layout(written, max_texture_size)),)
    output = ProgramOutput(texture_layout(result, max_texture_size))
    shape = tuple(partials.output_shape)
    return SliceSumProgramSpec("SliceSumProgram", "slice_sum.glsl", inputs, output, partials, slices,
                               (shape[0] // slices,) + shape[1:])


# ---------------------------------------------------------------------------
# TF.js's default conv2d path (algorithm="im2col"): Im2ColPackedProgram writes every receptive
# field as a row of the im2col matrix, MatMulPackedProgram multiplies it by the filter.
#
# The im2col matrix A has a row per output pixel (batch * outHeight * outWidth) and a column
# per filter tap and input channel, the channels of each tap padded to a multiple of 4:
# FH * FW * ceil(inC / 4) RGBA texels per row, 4 values along the columns per texel (not TF.js's
# 2x2 blocks).  So one texel of A is one texel of the packed x (one fetch per texel, no channel
# shuffling), and the filter reshaped to [FH * FW * inC, outC] is exactly the packed programs'
# PackedFilterLayout (a mat4 per block of 4 columns of A, 4 output channels per texel): weights
# converted once serve both paths.  A row's texels are laid out as a packed image of the output
# ([batch, outHeight, outWidth, 4 * patchDepth4]), so a texture row is one output row and the
# matrix fits a texture up to 16384 / patchDepth4 output columns.


def _blocks_of_4(n: int) -> int:
    return -(-n // 4)


@dataclass(frozen=True)
class Im2ColLayout:
    """Where the im2col matrix lives: ``count`` RGBA textures, one per pixel of each group of
    ``count`` neighbouring output pixels (as the packed programs' :class:`SplitImageLayout`).
    Texture ``j`` at texel ``(col = q * depth4 + k4, row = (b * out_height + h) * row_split +
    part)`` holds columns ``4 k4 .. 4 k4 + 3`` of the matrix row of output pixel
    ``(b, h, part * row_pixels + count * q + j)``; column block ``k4 = (fh * FW + fw) *
    ceil(inC / 4) + c // 4``.  An output row's pixels share one texture row (``row_split`` 1)
    unless that would be wider than the texture limit: then ``row_split`` rows of
    ``row_pixels`` pixels (a multiple of ``count``) each.  Pixels past the output's width (the
    last group's padding) hold zeros."""

    batch: int
    out_height: int
    out_width: int
    depth4: int                  # texels per matrix row: filter taps * ceil(inC / 4)
    row_pixels: int              # output pixels per texture row
    count: int = PACKED_PIXELS   # textures: pixels per group
    components = 4

    @property
    def row_split(self) -> int:
        return -(-self.out_width // self.row_pixels)

    @property
    def row_groups(self) -> int:
        """Groups of ``count`` pixels per texture row."""
        return -(-self.row_pixels // self.count)

    @property
    def rows(self) -> int:
        return self.batch * self.out_height * self.row_split

    @property
    def cols(self) -> int:
        return self.row_groups * self.depth4

    @property
    def shape(self) -> Tuple[int, ...]:
        return (self.batch * self.out_height * self.out_width, self.depth4 * 4)

    @property
    def storage(self) -> Hashable:
        return self

    def assemble(self, parts: Sequence[np.ndarray]) -> np.ndarray:
        """``[batch * out_height * out_width, 4 * depth4]`` from the ``count`` textures' texels."""
        stacked = np.stack([np.asarray(p, np.float32).reshape(self.rows, self.row_groups, self.depth4 * 4)
                            for p in parts], axis=2)       # [rows, groups, count, 4 depth4]
        pixels = stacked.reshape(self.batch * self.out_height, self.row_split * self.row_groups * self.count,
                                 self.depth4 * 4)
        if self.row_split > 1:  # each part holds row_pixels pixels (a multiple of count)
            pixels = pixels.reshape(self.batch * self.out_height, self.row_split, self.row_groups * self.count,
                                    -1)[:, :, : self.row_pixels].reshape(self.batch * self.out_height, -1,
                                                                          self.depth4 * 4)
        return np.ascontiguousarray(pixels[:, : self.out_width].reshape(self.shape))


def im2col_layout(geometry: Conv2DGeometry, max_texture_size: int = DEFAULT_MAX_TEXTURE_SIZE,
                  pixels: int = PACKED_PIXELS) -> Im2ColLayout:
    """The im2col matrix's layout for ``geometry``, in ``pixels`` textures (:class:`Im2ColLayout`)."""
    g = geometry
    depth4 = g.filter_height * g.filter_width * _blocks_of_4(g.in_channels)
    row_pixels = g.out_width
    if -(-row_pixels // pixels) * depth4 > max_texture_size:
        row_pixels = max(1, max_texture_size // depth4) * pixels
    return Im2ColLayout(g.batch, g.out_height, g.out_width, depth4, row_pixels, pixels)


def im2col_shortcut(geometry: Conv2DGeometry) -> bool:
    """A 1x1 filter, stride 1, no padding: x itself is the im2col matrix (TF.js then runs the
    matrix multiply alone on x reshaped)."""
    g = geometry
    return (g.filter_height, g.filter_width, g.stride_height, g.stride_width) == (1, 1, 1, 1) and \
        (g.pad_top, g.pad_bottom, g.pad_left, g.pad_right) == (0, 0, 0, 0)


def im2col_unsupported(geometry: Conv2DGeometry, epilogue: Epilogue,
                       max_texture_size: int = DEFAULT_MAX_TEXTURE_SIZE,
                       max_draw_buffers: int = DEFAULT_MAX_DRAW_BUFFERS) -> Optional[str]:
    """Why im2col + matmul cannot run this convolution, or ``None`` if it can."""
    g = geometry
    if g.depthwise:
        return "im2col runs conv2d only (depthwise convolutions run on the direct or packed programs)"
    if g.groups > 1:
        return "grouped convolution (groups > 1) runs only on the direct program"
    if epilogue.activation == "prelu" and not epilogue.prelu_per_channel:
        return "PReLU weights that vary within a channel run only on the direct program"
    if epilogue.has_bias and not getattr(epilogue, "bias_per_channel", True):
        return "a bias that varies within a channel runs only on the direct program"
    matrix = im2col_layout(g, max_texture_size, packed_pixels(max_draw_buffers))
    layouts: list = [PackedImageLayout(g.batch, g.in_height, g.in_width, g.in_channels), matrix,
                     PackedFilterLayout(g.filter_shape),
                     SplitImageLayout(g.batch, g.out_height, g.out_width, g.out_channels,
                                      packed_pixels(max_draw_buffers))]
    for layout in layouts:
        if layout.rows > max_texture_size or layout.cols > max_texture_size:
            return (f"a texture would be {layout.rows}x{layout.cols} texels (the im2col matrix: "
                    f"{matrix.rows}x{matrix.cols}), over the {max_texture_size} limit")
    if matrix.depth4 >= LLVMPIPE_LOOP_LIMIT:
        return f"the matrix multiply would loop {matrix.depth4} times, over llvmpipe's limit"
    return None


@dataclass(frozen=True)
class Im2ColProgramSpec:
    """TF.js's Im2ColPackedProgram: per fragment one RGBA texel of the im2col matrix for each of
    ``pixels`` neighbouring output pixels (4 columns of their rows: the same tap and block of
    channels), one render target each (:class:`Im2ColLayout`): a texel of the packed x, or
    zeros for a tap on the padding.  Sizes are uniforms: one compiled program serves every
    shape.  NCHW inputs are packed channels-last on upload (or by the conversion program for a
    Tensor), so the program reads both formats alike."""

    geometry: Conv2DGeometry
    max_texture_size: int = DEFAULT_MAX_TEXTURE_SIZE
    pixels: int = PACKED_PIXELS
    name: str = "Im2ColPackedProgram"
    template: str = "im2col.glsl"
    epilogue: Epilogue = field(default_factory=Epilogue)
    chained_inputs: Tuple[str, ...] = ("x",)
    algorithm = "im2col"

    @property
    def inputs(self) -> Tuple[ProgramInput, ...]:
        g = self.geometry
        return (ProgramInput("x", PackedImageLayout(g.batch, g.in_height, g.in_width, g.in_channels,
                                                    g.data_format)),)

    @property
    def variable_names(self) -> Tuple[str, ...]:
        return ("x",)

    @property
    def output(self) -> Im2ColLayout:
        return im2col_layout(self.geometry, self.max_texture_size, self.pixels)

    @property
    def output_layouts(self) -> Tuple[Layout, ...]:
        return (self.output,) * self.pixels

    @property
    def output_shape(self) -> Tuple[int, ...]:
        """The im2col matrix: ``[batch * outHeight * outWidth, FH * FW * inC]``."""
        g = self.geometry
        return (g.batch * g.out_height * g.out_width, g.filter_height * g.filter_width * g.in_channels)

    @property
    def loop_iterations(self) -> int:
        return 0  # no loop: one fetch per pixel

    @property
    def flops(self) -> int:
        return 0  # a copy

    def source_key(self) -> Hashable:
        return (self.template, self.name, self.pixels)

    def describe(self) -> str:
        return (f"gpuconv Im2ColPackedProgram: one RGBA texel (4 columns) of the im2col matrix for each of "
                f"{self.pixels} output pixels per fragment, sizes as uniforms")

    def template_context(self) -> Dict[str, Any]:
        return {"description": self.describe(), "pixels": self.pixels}

    @property
    def uniforms(self) -> Dict[str, Any]:
        g = self.geometry
        x = self.inputs[0].layout
        out = self.output
        return {
            "inSize": (g.in_height, g.in_width),
            "inDepth4": _blocks_of_4(g.in_channels),
            "outHeight": g.out_height,
            "patchDepth4": out.depth4,
            "outWidth": g.out_width,
            "rowPixels": out.row_pixels,
            "rowSplit": out.row_split,
            "filterWidth": g.filter_width,
            "strides": (g.stride_height, g.stride_width),
            "dilations": (g.dilation_height, g.dilation_width),
            "pads": (g.pad_top, g.pad_left),
            "xTexelSize": (1 / x.cols, 1 / x.rows),
            "inverses": (1 / out.depth4, 1 / _blocks_of_4(g.in_channels), 1 / g.filter_width, 1 / g.out_height),
            "inverseRowSplit": 1 / out.row_split,
        }

    def assemble(self, parts: Sequence[np.ndarray]) -> np.ndarray:
        """The im2col matrix (``output_shape``) from the textures, the channel padding dropped."""
        g = self.geometry
        rows, _ = self.output_shape
        matrix = self.output.assemble(parts).reshape(rows, g.filter_height * g.filter_width, -1)
        return np.ascontiguousarray(matrix[:, :, : g.in_channels].reshape(self.output_shape))


@dataclass(frozen=True)
class MatMulProgramSpec(_SplitOutput):
    """TF.js's MatMulPackedProgram, as the second half of im2col: the im2col matrix ``A``
    times the filter ``W`` (``[FH * FW * inC, outC]``, PackedFilterLayout), with the fused
    bias and activation in its epilogue.  Each fragment computes ``pixels`` rows of the
    product (output pixels) x 4 columns (output channels): per block of 4 columns of A one
    ``mat4`` of weights (4 fetches) and one texel of A per pixel.  It writes the packed
    programs' split layout (one render target per pixel of a group), so its result chains
    and reads back as theirs.  ``shortcut``: A is x itself (a 1x1, stride-1, unpadded filter)."""

    geometry: Conv2DGeometry
    epilogue: Epilogue
    shortcut: bool = False
    pixels: int = PACKED_PIXELS
    fold: int = 1
    max_texture_size: int = DEFAULT_MAX_TEXTURE_SIZE
    name: str = "MatMulPackedProgram"
    template: str = "matmul.glsl"
    algorithm = "im2col"

    @property
    def a_layout(self) -> Any:
        """The im2col matrix's :class:`Im2ColLayout`, or (``shortcut``) x's PackedImageLayout,
        which keeps the same texels where an Im2ColLayout of one texture row per output row would."""
        g = self.geometry
        if self.shortcut:
            return PackedImageLayout(g.batch, g.in_height, g.in_width, g.in_channels, g.data_format)
        return im2col_layout(g, self.max_texture_size, self.pixels)

    @property
    def chained_inputs(self) -> Tuple[str, ...]:
        """The im2col program's ``pixels`` outputs, ``A0`` ..; the shortcut reads x as ``A``."""
        return ("A",) if self.shortcut else tuple(f"A{j}" for j in range(self.pixels))

    @property
    def row_pixels(self) -> int:
        return self.geometry.out_width if self.shortcut else self.a_layout.row_pixels

    @property
    def inputs(self) -> Tuple[ProgramInput, ...]:
        g = self.geometry
        items = [ProgramInput(name, self.a_layout) for name in self.chained_inputs]
        items.append(ProgramInput("W", PackedFilterLayout(g.filter_shape)))
        return tuple(items + packed_epilogue_inputs(self.epilogue, g.out_channels))

    @property
    def variable_names(self) -> Tuple[str, ...]:
        return tuple(i.name for i in self.inputs)


    @property
    def loop_iterations(self) -> int:
        return self.a_layout.depth4

    @property
    def flops(self) -> int:
        return 2 * int(self.geometry.multiply_adds)

    def source_key(self) -> Hashable:
        return (self.template, tuple(sorted(self.template_context().items())))

    def describe(self) -> str:
        what = "x as the matrix (1x1, stride 1, unpadded)" if self.shortcut else "the im2col matrix"
        return (f"gpuconv MatMulPackedProgram: {what} times the filter, {self.pixels} rows (output pixels) "
                f"x 4 columns (output channels) per fragment, sizes as uniforms")

    def template_context(self) -> Dict[str, Any]:
        return {"description": self.describe(), "epilogue": self.epilogue, "pixels": self.pixels,
                "shortcut": self.shortcut}

    @property
    def uniforms(self) -> Dict[str, Any]:
        g = self.geometry
        a, w = self.a_layout, PackedFilterLayout(g.filter_shape)
        return {
            "patchDepth4": a.depth4,
            "outHeight": g.out_height,
            "outWidth": g.out_width,
            "rowPixels": self.row_pixels,
            "rowSplit": -(-g.out_width // self.row_pixels),
            "outDepth4": _blocks_of_4(g.out_channels),
            "outRows": self.output.unfolded_rows,
            "outCols": self.output.unfolded_cols,
            "outBandRows": self.output.rows,
            "aTexelSize": (1 / a.cols, 1 / a.rows),
            "wTexelSize": (1 / w.cols, 1 / w.rows),
        }

    def assemble(self, parts: Sequence[np.ndarray]) -> np.ndarray:
        return self.output.assemble(parts, self.geometry.data_format)


def im2col_programs(geometry: Conv2DGeometry, epilogue: Optional[Epilogue] = None,
                    max_texture_size: int = DEFAULT_MAX_TEXTURE_SIZE,
                    max_draw_buffers: int = DEFAULT_MAX_DRAW_BUFFERS) -> Tuple[Any, ...]:
    """TF.js's default conv2d: ``(Im2ColProgramSpec, MatMulProgramSpec)``, or the matrix
    multiply alone (:func:`im2col_shortcut`)."""
    epilogue = epilogue or Epilogue()
    reason = im2col_unsupported(geometry, epilogue, max_texture_size, max_draw_buffers)
    if reason:
        raise ValueError(reason)
    g = geometry
    pixels = packed_pixels(max_draw_buffers)
    out = SplitImageLayout(g.batch, g.out_height, g.out_width, g.out_channels, pixels)
    fold = choose_fold(out.unfolded_rows, out.unfolded_cols, max_texture_size)
    shortcut = im2col_shortcut(g)
    matmul = MatMulProgramSpec(g, epilogue, shortcut, pixels, fold, max_texture_size)
    return (matmul,) if shortcut else (Im2ColProgramSpec(g, max_texture_size, pixels), matmul)
