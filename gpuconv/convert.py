"""Layout conversions on the GPU: a tensor's values moved from one texture layout into another.

A :class:`~gpuconv.Tensor` stays where the program that made it wrote it (an R32F
:class:`~gpuconv.layout.TextureLayout`, or a packed program's ``count`` split textures);
the next program may want it stored otherwise (four channels per texel, a filter in the
packed programs' order, a vector of four per texel, a row-major texture of another
shape).  A :class:`ConversionSpec` is the program that copies it there, texel for texel,
without any host transfer (``shaders/convert.glsl``).

Both sides speak the tensor's *logical row-major flat index* ``i`` (as NumPy holds the
array: NHWC or NCHW).  The target side computes, for each of its texels and components,
the ``i`` it holds (or -1: padding, written as 0.0); the source side fetches element
``i`` from wherever its layout keeps it.  So every source kind converts into every
target kind:

* sources: :class:`TextureLayout` (wrapped or split), :class:`SplitImageLayout` (any
  fold, NHWC or NCHW order), :class:`PackedImageLayout` (any repeat, either format);
* targets: :class:`TextureLayout`, :class:`PackedImageLayout` (NHWC/NCHW, depthwise
  repeat), :class:`PackedFilterLayout` (conv and depthwise), :class:`PackedVectorLayout`,
  :class:`TransposeMatMulFilterLayout`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Dict, Hashable, List, Sequence, Tuple

import numpy as np

from .layout import (
    Layout,
    PackedFilterLayout,
    PackedImageLayout,
    PackedVectorLayout,
    SplitImageLayout,
    TextureLayout,
    TransposeMatMulFilterLayout,
    blocks_of_4,
    row_major_strides,
)
from .programs import ProgramInput, shape_text

SOURCE_KINDS = (TextureLayout, SplitImageLayout, PackedImageLayout)
TARGET_KINDS = (TextureLayout, PackedImageLayout, PackedFilterLayout, PackedVectorLayout,
                TransposeMatMulFilterLayout)


def layout_text(layout: Layout, data_format: str = "NHWC") -> str:
    """``"1x8x8x3 PackedImageLayout 8x16 RGBA"``: a layout in one phrase."""
    kind = "RGBA" if layout.components == 4 else "R"
    text = f"{shape_text(layout.shape)} {type(layout).__name__} {layout.rows}x{layout.cols} {kind}"
    if isinstance(layout, TextureLayout) and layout.wrapped:
        text += " (wrapped)"
    if isinstance(layout, SplitImageLayout):
        text += f" x {layout.count} (fold {layout.fold}; the image read as {data_format})"
    if isinstance(layout, PackedImageLayout):
        text += f" ({layout.data_format}{f', repeat {layout.repeat}' if layout.repeat > 1 else ''})"
    if isinstance(layout, PackedFilterLayout) and layout.depthwise:
        text += " (depthwise)"
    if isinstance(layout, PackedFilterLayout) and layout.swapped:
        text += " (swapped)"
    return text


def logical_size(layout: Layout) -> int:
    return math.prod(layout.shape)


def same_storage(held: Layout, wanted: Layout) -> bool:
    """Whether a texture laid out as ``held`` can be read as ``wanted`` without converting it.

    Two row-major R32F layouts keep element ``i`` at texel ``row * cols + col`` whatever
    their logical shapes, so they agree when their sizes and texture shapes do (a reshape
    is free); other layouts must have equal :attr:`~gpuconv.layout.Layout.storage`.
    """
    if isinstance(held, TextureLayout) and isinstance(wanted, TextureLayout):
        return (held.size, held.rows, held.cols) == (wanted.size, wanted.rows, wanted.cols)
    return type(held) is type(wanted) and held.storage == wanted.storage


def _image_steps(batch: int, height: int, width: int, channels: int, data_format: str) -> List[Tuple[str, int]]:
    names, sizes = (("b", "h", "w", "c"), (batch, height, width, channels)) if data_format == "NHWC" else \
        (("b", "c", "h", "w"), (batch, channels, height, width))
    return list(zip(names, row_major_strides(sizes)))


def _source_context(layout: Layout, data_format: str) -> Dict[str, Any]:
    text = layout_text(layout, data_format)
    if isinstance(layout, TextureLayout):
        return {"kind": "texture", "text": text, "cols": layout.cols}
    if isinstance(layout, SplitImageLayout):
        return {"kind": "split", "text": text, "count": layout.count, "height": layout.height,
                "rows": layout.rows, "unfolded_cols": layout.unfolded_cols, "depth4": layout.depth4,
                "steps": _image_steps(layout.batch, layout.height, layout.width, layout.channels, data_format)}
    if isinstance(layout, PackedImageLayout):
        return {"kind": "packed_image", "text": text, "height": layout.height, "depth4": layout.depth4,
                "repeat": layout.repeat,
                "steps": _image_steps(layout.batch, layout.height, layout.width, layout.channels,
                                      layout.data_format)}
    raise ValueError(f"cannot convert from a {type(layout).__name__} (the sources are "
                     f"{', '.join(k.__name__ for k in SOURCE_KINDS)})")


def _target_context(layout: Layout) -> Dict[str, Any]:
    text = layout_text(layout)
    context: Dict[str, Any] = {"text": text, "components": layout.components}
    if isinstance(layout, TextureLayout):
        context.update(kind="texture", cols=layout.cols, size=layout.size)
    elif isinstance(layout, PackedImageLayout):
        context.update(kind="packed_image", height=layout.height, width=layout.width, channels=layout.channels,
                       depth4=layout.depth4, repeat=layout.repeat, stored=layout.channels * layout.repeat,
                       channels_last=layout.data_format == "NHWC")
    elif isinstance(layout, PackedFilterLayout):
        fh, fw, c, o = layout.filter_shape
        if layout.depthwise:
            context.update(kind="filter_depthwise", out_channels=c * o)
        elif layout.swapped:  # [FH, FW, C, O] read as its mat4s of O (rows) -> C (columns)
            context.update(kind="filter_conv", channels=o, out_channels=c, rows_per_tap=-(-o // 4) * 4,
                           swapped=True)
        else:
            context.update(kind="filter_conv", channels=c, out_channels=o, rows_per_tap=-(-c // 4) * 4,
                           swapped=False)
    elif isinstance(layout, PackedVectorLayout):
        context.update(kind="vector", length=layout.length)
    elif isinstance(layout, TransposeMatMulFilterLayout):
        _, _, o, c = layout.filter_shape
        context.update(kind="transpose_matmul_filter", out_channels=o, channels=c, tap_columns=4 * blocks_of_4(o))
    else:
        raise ValueError(f"cannot convert into a {type(layout).__name__} (the targets are "
                         f"{', '.join(k.__name__ for k in TARGET_KINDS)})")
    return context


@dataclass(frozen=True)
class ConversionSpec:
    """The program that copies a tensor stored as ``source`` into a new texture laid out as
    ``target`` (a :class:`~gpuconv.programs.Drawable`: the runtimes draw it like any program).

    ``source_format`` is the logical order ("NHWC" or "NCHW") of a :class:`SplitImageLayout`
    source, whose own shape is always NHWC.  Shapes are baked into the source, so the spec
    is its own cache key.
    """

    source: Layout
    target: Layout
    source_format: str = "NHWC"

    name = "ConvertProgram"
    template = "convert.glsl"

    def __post_init__(self) -> None:
        if self.source_format not in ("NHWC", "NCHW"):
            raise ValueError(f"source_format must be 'NHWC' or 'NCHW', got {self.source_format!r}")
        if logical_size(self.source) != logical_size(self.target):
            raise ValueError(f"cannot convert {layout_text(self.source, self.source_format)} "
                             f"({logical_size(self.source)} values) into {layout_text(self.target)} "
                             f"({logical_size(self.target)} values)")
        _source_context(self.source, self.source_format)  # refuses what it cannot read
        _target_context(self.target)

    @property
    def inputs(self) -> Tuple[ProgramInput, ...]:
        if isinstance(self.source, SplitImageLayout):
            return tuple(ProgramInput(f"x{j}", self.source) for j in range(self.source.count))
        return (ProgramInput("src", self.source),)

    @property
    def variable_names(self) -> Tuple[str, ...]:
        return tuple(item.name for item in self.inputs)

    @property
    def output_layouts(self) -> Tuple[Layout, ...]:
        return (self.target,)

    @property
    def uniforms(self) -> Dict[str, Any]:
        return {}

    def source_key(self) -> Hashable:
        return self

    def describe(self) -> str:
        return (f"gpuconv {self.name}: {layout_text(self.source, self.source_format)} -> "
                f"{layout_text(self.target)}")

    @property
    def texel_copy(self) -> bool:
        """Split textures into a packed image of the same pixels and order, repeat 1: one
        texel fetch per target texel (the four channels move together)."""
        source, target = self.source, self.target
        return (isinstance(source, SplitImageLayout) and isinstance(target, PackedImageLayout)
                and target.repeat == 1 and target.data_format == self.source_format
                and (source.batch, source.height, source.width, source.channels)
                == (target.batch, target.height, target.width, target.channels))

    def template_context(self) -> Dict[str, Any]:
        return {"description": self.describe(), "inputs": self.inputs, "copy": self.texel_copy,
                "source": _source_context(self.source, self.source_format),
                "target": _target_context(self.target)}


def conversion(source: Layout, target: Layout, source_format: str = "NHWC") -> ConversionSpec:
    """The conversion program from ``source`` into ``target`` (:class:`ConversionSpec`)."""
    return ConversionSpec(source, target, source_format)


def host_values(texels: Sequence[np.ndarray], layout: Layout, data_format: str = "NHWC") -> np.ndarray:
    """The logical values held in textures of ``layout`` (read back), for tests and ``Tensor.numpy``."""
    if isinstance(layout, TextureLayout):
        return layout.unpack(texels[0])
    if isinstance(layout, SplitImageLayout):
        return layout.assemble(texels, data_format)
    raise ValueError(f"no read-back for a {type(layout).__name__}")
