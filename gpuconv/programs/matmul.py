"""TF.js's default conv2d path (``algorithm="im2col"``): Im2ColPackedProgram and
MatMulPackedProgram, and when they apply."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import Any, Dict, Hashable, Optional, Sequence, Tuple

import numpy as np

from ..geometry import Conv2DGeometry
from ..layout import (
    DEFAULT_MAX_TEXTURE_SIZE,
    Layout,
    PackedFilterLayout,
    PackedImageLayout,
    SplitImageLayout,
    TransposeMatMulFilterLayout,
    choose_fold,
)
from ..limits import DEFAULT_MAX_DRAW_BUFFERS
from .base import LLVMPIPE_LOOP_LIMIT, Epilogue, ProgramInput
from .packed import PACKED_PIXELS, _SplitOutput, packed_epilogue_inputs, packed_pixels, residual_layout


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
    """A 1x1 filter, no padding: x itself is the im2col matrix (TF.js then runs the matrix
    multiply alone on x reshaped, at stride 1).  Strided, the matrix multiply reads x's kept
    pixels in place (every ``stride``-th row and column) rather than a matrix of them copied
    first, or computing the skipped pixels."""
    g = geometry
    return (g.filter_height, g.filter_width) == (1, 1) and not g.padded


def matmul_pixels(geometry: Conv2DGeometry, max_draw_buffers: int = DEFAULT_MAX_DRAW_BUFFERS) -> int:
    """Output pixels per fragment (and render targets) of the matrix multiply: the device's
    (:func:`packed_pixels`), halved while half still covers an output row.  A narrow output
    fills few of 8 targets, yet each is drawn, pooled and (for an array result) read back;
    on llvmpipe (2 cores, 2026-12-07, interleaved, draws + finish on resident inputs / the whole
    run with read-back) a 1x1 conv2d 1x1x1x120 -> 32 took 0.229 / 0.435 ms with 8 targets,
    0.186 / 0.302 ms with 1; 1x4x4x64 -> 64 0.329 / 0.561 ms with 8, 0.286 / 0.466 with 4;
    at 7 wide 8 stayed best (1x7x7x96 -> 576: 1.91 ms, 4 targets 2.44 ms)."""
    pixels = packed_pixels(max_draw_buffers)
    while pixels > 1 and pixels // 2 >= geometry.out_width:
        pixels //= 2
    return pixels


# Cached, as im2col_programs: both are asked on every conv2d call (auto's choice, then the plan),
# of frozen arguments; the layouts they build were ~25% of planning a warm 1x1 call.
@lru_cache(maxsize=256)
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
    pixels = matmul_pixels(g, max_draw_buffers)
    matrix = im2col_layout(g, max_texture_size, pixels)
    layouts: list = [PackedImageLayout(g.batch, g.in_height, g.in_width, g.in_channels), matrix,
                     PackedFilterLayout(g.filter_shape),
                     SplitImageLayout(g.batch, g.out_height, g.out_width, g.out_channels, pixels)]
    if epilogue.has_residual:
        layouts.append(residual_layout(g))
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
    and reads back as theirs.  ``shortcut``: A is x itself (a 1x1 unpadded filter, any stride)."""

    geometry: Conv2DGeometry
    epilogue: Epilogue
    shortcut: bool = False
    pixels: int = PACKED_PIXELS
    fold: int = 1
    max_texture_size: int = DEFAULT_MAX_TEXTURE_SIZE
    name: str = "MatMulPackedProgram"
    template: str = "matmul.glsl"
    algorithm = "im2col"

    # cached (as _SplitOutput's layouts): the runtimes ask a spec for these on every draw, and a
    # frozen spec's never change; a warm 1x1 conv2d on a 1x1 input spent ~15% of its Python here
    @cached_property
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

    @cached_property
    def inputs(self) -> Tuple[ProgramInput, ...]:
        g = self.geometry
        items = [ProgramInput(name, self.a_layout) for name in self.chained_inputs]
        items.append(ProgramInput("W", PackedFilterLayout(g.filter_shape)))
        return tuple(items + packed_epilogue_inputs(self.epilogue, g.out_channels, residual_layout(g)))

    @cached_property
    def variable_names(self) -> Tuple[str, ...]:
        return tuple(i.name for i in self.inputs)


    @property
    def loop_iterations(self) -> int:
        return self.a_layout.depth4

    @property
    def flops(self) -> int:
        return 2 * int(self.geometry.multiply_adds)

    def source_key(self) -> Hashable:
        return self._source_key

    @cached_property
    def _source_key(self) -> Hashable:
        return (self.template, tuple(sorted(self.template_context().items())))

    def describe(self) -> str:
        what = "x as the matrix (1x1, unpadded)" if self.shortcut else "the im2col matrix"
        return (f"gpuconv MatMulPackedProgram: {what} times the filter, {self.pixels} rows (output pixels) "
                f"x 4 columns (output channels) per fragment, sizes as uniforms")

    def template_context(self) -> Dict[str, Any]:
        return {"description": self.describe(), "epilogue": self.epilogue, "pixels": self.pixels,
                "shortcut": self.shortcut}

    @cached_property
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
            **({"residualWidth": g.out_width} if self.epilogue.has_residual else {}),
            **({"inHeight": g.in_height, "strides": (g.stride_height, g.stride_width)} if self.shortcut else {}),
        }

    def assemble(self, parts: Sequence[np.ndarray]) -> np.ndarray:
        return self.output.assemble(parts, self.geometry.data_format)


@lru_cache(maxsize=256)  # the same specs for the same call: what they cache (layouts, uniforms) carries over
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
    pixels = matmul_pixels(g, max_draw_buffers)
    out = SplitImageLayout(g.batch, g.out_height, g.out_width, g.out_channels, pixels)
    fold = choose_fold(out.unfolded_rows, out.unfolded_cols, max_texture_size)
    shortcut = im2col_shortcut(g)
    matmul = MatMulProgramSpec(g, epilogue, shortcut, pixels, fold, max_texture_size)
    return (matmul,) if shortcut else (Im2ColProgramSpec(g, max_texture_size, pixels), matmul)


# ---------------------------------------------------------------------------
# The transposed convolution as a matrix multiply, then col2im (what TensorFlow's own
# kernels do): x [pixels x inC] times the filter reshaped to [inC x (FH * FW * outC)] gives every
# tap's contribution of every input pixel; col2im adds up those that land on each output pixel.


def _transpose_product_depth4(geometry: Conv2DGeometry) -> int:
    """Texels per input pixel of the product: each tap's output channels padded to a multiple of
    4, so that a tap's 4 channels are one texel."""
    g = geometry
    return g.filter_height * g.filter_width * _blocks_of_4(g.in_channels)


def transpose_matmul_geometry(geometry: Conv2DGeometry) -> Conv2DGeometry:
    """The 1x1 convolution the matrix multiply runs for a transposed convolution whose forward
    geometry is ``geometry``: x (the forward output's shape) to ``FH * FW * 4 * ceil(outC / 4)``
    channels."""
    from ..geometry import conv2d_geometry

    g = geometry
    channels = 4 * _transpose_product_depth4(g)
    return conv2d_geometry(g.out_shape, (1, 1, g.out_channels, channels), 1, "VALID", g.data_format)


def transpose_matmul_unsupported(geometry: Conv2DGeometry, epilogue: Epilogue,
                                 max_texture_size: int = DEFAULT_MAX_TEXTURE_SIZE,
                                 max_draw_buffers: int = DEFAULT_MAX_DRAW_BUFFERS) -> Optional[str]:
    """Why the matrix multiply + col2im cannot run this transposed convolution (``geometry``:
    the forward one's), or ``None`` if it can."""
    g = geometry
    if g.depthwise or g.groups > 1:
        return "the matrix multiply + col2im runs ungrouped, non-depthwise convolutions only"
    if epilogue.activation == "prelu" and not epilogue.prelu_per_channel:
        return "PReLU weights that vary within a channel run only on the direct program"
    if epilogue.has_bias and not getattr(epilogue, "bias_per_channel", True):
        return "a bias that varies within a channel runs only on the direct program"
    multiply = transpose_matmul_geometry(g)
    pixels = packed_pixels(max_draw_buffers)
    layouts: list = [PackedImageLayout(g.batch, g.out_height, g.out_width, g.out_channels),
                     TransposeMatMulFilterLayout(g.filter_shape),
                     SplitImageLayout(g.batch, g.out_height, g.out_width, multiply.out_channels, pixels),
                     SplitImageLayout(g.batch, g.in_height, g.in_width, g.in_channels, pixels)]
    if epilogue.has_residual:
        layouts.append(residual_layout(g, transposed=True))
    for layout in layouts:
        if layout.rows > max_texture_size or layout.cols > max_texture_size:
            return f"a texture would be {layout.rows}x{layout.cols} texels, over the {max_texture_size} limit"
    if _blocks_of_4(g.out_channels) >= LLVMPIPE_LOOP_LIMIT:
        return f"the matrix multiply would loop {_blocks_of_4(g.out_channels)} times, over llvmpipe's limit"
    return None


@dataclass(frozen=True)
class TransposeMatMulProgramSpec(MatMulProgramSpec):
    """MatMulPackedProgram as the transposed convolution's first program: x times its filter read
    as :class:`~gpuconv.layout.TransposeMatMulFilterLayout` (the 1x1 filter's texels, packed from
    the op's own filter on upload).  ``filter_shape``: the op's ``[FH, FW, outC, inC]``."""

    filter_shape: Tuple[int, int, int, int] = (1, 1, 1, 1)

    @property
    def inputs(self) -> Tuple[ProgramInput, ...]:
        return tuple(ProgramInput("W", TransposeMatMulFilterLayout(self.filter_shape)) if item.name == "W" else item
                     for item in super().inputs)


@dataclass(frozen=True)
class Col2ImProgramSpec:
    """col2im, the transposed convolution's second program (``shaders/col2im.glsl``): reads the
    matrix multiply's product (split textures, :func:`transpose_matmul_geometry`'s output) and,
    per fragment, adds up for ``pixels`` output pixels x 4 channels the product's texels of the
    taps that land on them, then applies the fused epilogue.  ``geometry`` is the forward
    convolution's (as for the input gradient programs): it writes ``geometry.in_shape``.
    ``x_fold`` is the product's fold.  Sizes are uniforms but for the filter's width, the stride
    and dilation across and the left padding modulo ``pixels * stride`` (baked in, so that the
    program knows which of the product's textures holds each tap of each pixel)."""

    geometry: Conv2DGeometry
    epilogue: Epilogue
    pixels: int = PACKED_PIXELS
    fold: int = 1
    x_fold: int = 1
    name: str = "Col2ImProgram"
    template: str = "col2im.glsl"
    algorithm = "im2col"

    @property
    def output(self) -> SplitImageLayout:
        g = self.geometry
        return SplitImageLayout(g.batch, g.in_height, g.in_width, g.in_channels, self.pixels, self.fold)

    @property
    def output_layouts(self) -> Tuple[Layout, ...]:
        return (self.output,) * self.pixels

    @property
    def output_shape(self) -> Tuple[int, ...]:
        return self.geometry.in_shape

    @property
    def product_layout(self) -> SplitImageLayout:
        g = self.geometry
        return SplitImageLayout(g.batch, g.out_height, g.out_width, 4 * _transpose_product_depth4(g),
                                self.pixels, self.x_fold)

    @property
    def chained_inputs(self) -> Tuple[str, ...]:
        return tuple(f"x{j}" for j in range(self.pixels))

    @property
    def inputs(self) -> Tuple[ProgramInput, ...]:
        g = self.geometry
        items = [ProgramInput(name, self.product_layout) for name in self.chained_inputs]
        return tuple(items + packed_epilogue_inputs(self.epilogue, g.in_channels, residual_layout(g, transposed=True)))

    @property
    def variable_names(self) -> Tuple[str, ...]:
        return tuple(i.name for i in self.inputs)

    @property
    def loop_iterations(self) -> int:
        return self.geometry.filter_height  # the taps across are unrolled

    @property
    def flops(self) -> int:
        return 0  # additions only: the matrix multiply counts the convolution's

    def source_key(self) -> Hashable:
        return (self.template, tuple(sorted(self.template_context().items())))

    def describe(self) -> str:
        return (f"gpuconv {self.name}: the transposed convolution's taps added up from the matrix multiply's "
                f"product, {self.pixels} output pixels x 4 channels per fragment, sizes as uniforms")

    def template_context(self) -> Dict[str, Any]:
        return {"description": self.describe(), "epilogue": self.epilogue, "x_split": True, "pixels": self.pixels,
                "stride": self.geometry.stride_width, "dilation": self.geometry.dilation_width,
                "filter_width": self.geometry.filter_width,
                "pad_phase": self.geometry.pad_left % (self.pixels * self.geometry.stride_width)}

    @property
    def uniforms(self) -> Dict[str, Any]:
        g = self.geometry
        product = self.product_layout
        return {
            "inSize": (g.out_height, g.out_width),
            "inDepth4": product.depth4,
            "inCols": product.unfolded_cols,
            "inBandRows": product.rows,
            "outHeight": g.in_height,
            "outDepth4": _blocks_of_4(g.in_channels),
            "filterSize": (g.filter_height, g.filter_width),
            "strides": (g.stride_height, g.stride_width),
            "dilations": (g.dilation_height, g.dilation_width),
            "pads": (g.pad_top, g.pad_left),
            # the window's leftmost corner is pad_left - (FW - 1) * dilation: enough periods to make it >= 0
            "shiftPeriods": 1 + (g.filter_width - 1) * g.dilation_width // (self.pixels * g.stride_width),
            "outRows": self.output.unfolded_rows,
            "outCols": self.output.unfolded_cols,
            "outBandRows": self.output.rows,
            **({"residualWidth": g.in_width} if self.epilogue.has_residual else {}),
        }

    def assemble(self, parts: Sequence[np.ndarray]) -> np.ndarray:
        return self.output.assemble(parts, self.geometry.data_format)


def transpose_matmul_programs(geometry: Conv2DGeometry, epilogue: Optional[Epilogue] = None,
                              max_texture_size: int = DEFAULT_MAX_TEXTURE_SIZE,
                              max_draw_buffers: int = DEFAULT_MAX_DRAW_BUFFERS
                              ) -> Tuple[TransposeMatMulProgramSpec, Col2ImProgramSpec]:
    """The transposed convolution (``geometry``: the forward one's) as MatMulPackedProgram (x times
    the filter read as :class:`~gpuconv.layout.TransposeMatMulFilterLayout`, no epilogue) then
    :class:`Col2ImProgramSpec` (the epilogue)."""
    epilogue = epilogue or Epilogue()
    reason = transpose_matmul_unsupported(geometry, epilogue, max_texture_size, max_draw_buffers)
    if reason:
        raise ValueError(reason)
    g = geometry
    pixels = packed_pixels(max_draw_buffers)
    multiply_geometry = transpose_matmul_geometry(g)
    product = SplitImageLayout(g.batch, g.out_height, g.out_width, multiply_geometry.out_channels, pixels)
    product_fold = choose_fold(product.unfolded_rows, product.unfolded_cols, max_texture_size)
    multiply = TransposeMatMulProgramSpec(multiply_geometry, Epilogue(), True, pixels, product_fold, max_texture_size,
                                          filter_shape=g.filter_shape)
    out = SplitImageLayout(g.batch, g.in_height, g.in_width, g.in_channels, pixels)
    fold = choose_fold(out.unfolded_rows, out.unfolded_cols, max_texture_size)
    return multiply, Col2ImProgramSpec(g, epilogue, pixels, fold, product_fold)
