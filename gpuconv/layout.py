"""Where a tensor lives in a texture: logical shape -> texture shape, and back.

Tensors are stored unpacked, one float32 per texel of an R32F texture, in
row-major order (as TF.js's WebGL backend stores them).  The usual layout puts
the innermost dimension(s) across a texture row and the outer dimensions down
the rows, so a sampler needs no division: ``row = dot(outer coords, strides)``,
``col = dot(inner coords, strides)``.  When no split of the dimensions fits
the texture size limit, the flat array is wrapped into a "squarish" texture and
the sampler divides the flat index by the row length.

Everything here is plain Python: the templates receive the numbers it computes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import Hashable, Iterable, List, Optional, Protocol, Sequence, Tuple, runtime_checkable

import numpy as np
import numpy.typing as npt

#: The largest texture side the layout uses.  WebGL2 guarantees only 2048, but
#: every desktop driver (Mesa llvmpipe included) offers 16384; capping here, not at
#: the device's own limit, keeps generated programs the same on every device.
#: Tests lower it to exercise the wrapped layouts with small arrays.
DEFAULT_MAX_TEXTURE_SIZE = 16384

#: Coordinate names of a sampler's arguments, by rank (TF.js's convention).
COORD_NAMES = {
    1: ("index",),
    2: ("r", "c"),
    3: ("r", "c", "d"),
    4: ("b", "r", "c", "d"),
    5: ("b", "r", "c", "d", "d2"),
}


class Layout(Protocol):
    """What the runtimes and the code generator need of any texture layout.

    ``shape`` is the logical shape of the tensor it holds; ``rows x cols`` texels of
    ``components`` floats each (1: R32F, 4: RGBA32F); ``storage`` identifies where the
    values are, so that a chained program can check it reads what the previous one wrote.
    """

    @property
    def shape(self) -> Tuple[int, ...]: ...

    @property
    def rows(self) -> int: ...

    @property
    def cols(self) -> int: ...

    @property
    def components(self) -> int: ...

    @property
    def storage(self) -> Hashable: ...


@runtime_checkable
class InputLayout(Layout, Protocol):
    """A layout a host array can be uploaded into: ``pack`` turns an array of ``shape``
    into the ``rows x cols x components`` texels.  The split outputs of the packed
    programs are not: only a program writes them."""

    def pack(self, array: np.ndarray) -> np.ndarray: ...


def uploadable(layout: Layout) -> bool:
    """Whether a host array can be uploaded into ``layout`` (an :class:`InputLayout`): the same
    answer as ``isinstance(layout, InputLayout)``, without typing's protocol check, which walks
    the protocol's members on every call (a sixth of a small call's fixed cost)."""
    return callable(getattr(layout, "pack", None))


class TensorLayout(InputLayout, Protocol):
    """How :func:`gpuconv.to_gpu` stores a tensor on a target: uploaded with ``pack``, read back
    with ``unpack`` (an R32F :class:`TextureLayout`, or a WebGPU storage buffer)."""

    def unpack(self, texels: np.ndarray) -> np.ndarray: ...


def row_major_strides(shape: Sequence[int]) -> Tuple[int, ...]:
    strides: List[int] = []
    acc = 1
    for size in reversed(shape):
        strides.append(acc)
        acc *= size
    return tuple(reversed(strides))


@dataclass(frozen=True)
class TextureLayout:
    """A logical shape placed in a ``rows x cols`` texture.

    ``split`` is the number of leading dimensions that index rows; the rest
    index columns.  ``split is None`` means the flat index wraps at ``cols``.
    """

    shape: Tuple[int, ...]
    rows: int
    cols: int
    split: Optional[int]
    names: Optional[Tuple[str, ...]] = None  # coordinate names in samplers (default by rank)

    #: One float per texel (an R32F texture).
    components = 1

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def coord_names(self) -> Tuple[str, ...]:
        return self.names or COORD_NAMES[len(self.shape)]

    @property
    def storage(self):
        """Where the values are, whatever the sampler calls the coordinates."""
        return (self.shape, self.rows, self.cols, self.split)

    @property
    def wrapped(self) -> bool:
        return self.split is None

    def _terms(self, dims: Sequence[int]) -> Tuple[Tuple[str, int], ...]:
        """(coordinate, stride) pairs for ``dims``; size-1 dimensions are squeezed out."""
        sub_shape = [self.shape[i] for i in dims]
        strides = row_major_strides(sub_shape)
        return tuple(
            (self.coord_names[i], stride)
            for i, stride in zip(dims, strides)
            if self.shape[i] != 1
        )

    @property
    def row_terms(self) -> Tuple[Tuple[str, int], ...]:
        if self.split is None:  # wrapped: no row terms
            return ()
        return self._terms(range(self.split))

    @property
    def col_terms(self) -> Tuple[Tuple[str, int], ...]:
        if self.split is None:  # wrapped: no column terms
            return ()
        return self._terms(range(self.split, len(self.shape)))

    @property
    def flat_terms(self):
        return self._terms(range(len(self.shape)))

    def _decomposition(self, dims: Iterable[int]) -> Tuple[Tuple[str, int, str], ...]:
        """How to recover coordinates ``dims`` from one integer (for getOutputCoords).

        Returns ``(name, stride, kind)`` with kind ``"zero"`` (a squeezed size-1
        dimension), ``"divide"`` or ``"rest"`` (the last dimension that varies).
        """
        dims = list(dims)
        strides = row_major_strides([self.shape[i] for i in dims])
        varying = [i for i in dims if self.shape[i] != 1]
        steps = []
        for i, stride in zip(dims, strides):
            if self.shape[i] == 1:
                steps.append((self.coord_names[i], 0, "zero"))
            elif i == varying[-1]:
                steps.append((self.coord_names[i], stride, "rest"))
            else:
                steps.append((self.coord_names[i], stride, "divide"))
        return tuple(steps)

    @property
    def row_decomposition(self) -> Tuple[Tuple[str, int, str], ...]:
        if self.split is None:  # wrapped: no row decomposition
            return ()
        return self._decomposition(range(self.split))

    @property
    def col_decomposition(self) -> Tuple[Tuple[str, int, str], ...]:
        if self.split is None:  # wrapped: no column decomposition
            return ()
        return self._decomposition(range(self.split, len(self.shape)))

    @property
    def flat_decomposition(self):
        return self._decomposition(range(len(self.shape)))

    def pack(self, array: np.ndarray) -> np.ndarray:
        """The ``rows x cols`` float32 texture contents for ``array`` (of ``shape``)."""
        flat = np.ascontiguousarray(array, dtype=np.float32).reshape(-1)
        padding = self.rows * self.cols - flat.size
        if padding:
            flat = np.concatenate([flat, np.zeros(padding, np.float32)])
        return flat.reshape(self.rows, self.cols)

    def unpack(self, texels: np.ndarray) -> np.ndarray:
        """The logical array from ``rows x cols`` texture contents."""
        return np.asarray(texels, dtype=np.float32).reshape(-1)[: self.size].reshape(self.shape)


class TextureTooLargeError(ValueError):
    """A tensor that no texture of the allowed size can hold."""


def texture_layout(shape: Iterable[int], max_texture_size: int = DEFAULT_MAX_TEXTURE_SIZE,
                   names: Optional[Tuple[str, ...]] = None) -> TextureLayout:
    """Choose the texture shape for a logical ``shape``.

    Prefers the split with the innermost dimension alone across the columns,
    then other splits (innermost first), then a squarish wrap of the flat array.
    ``names`` renames the sampler's coordinates (e.g. ``b, d, r, c`` for NCHW).
    """
    shape = tuple(int(d) for d in shape)
    if not shape:
        shape = (1,)
    rank = len(shape)
    if rank not in COORD_NAMES:
        raise ValueError(f"tensors of rank {rank} are not supported (ranks 1 to 5 are)")
    for split in range(rank - 1, -1, -1):
        rows, cols = math.prod(shape[:split]), math.prod(shape[split:])
        if rows <= max_texture_size and cols <= max_texture_size:
            return TextureLayout(shape, rows, cols, split, names)
    size = math.prod(shape)
    cols = min(math.isqrt(size - 1) + 1, max_texture_size)
    rows = -(-size // cols)
    if rows > max_texture_size:
        raise TextureTooLargeError(
            f"a tensor of shape {shape} ({size} values) does not fit in one texture: "
            f"the limit is {max_texture_size}x{max_texture_size} = {max_texture_size ** 2} values"
        )
    return TextureLayout(shape, rows, cols, None, names)


# ---------------------------------------------------------------------------
# Packed layouts of the fast programs: four floats per RGBA texel.


class _StoredAsLaidOut:
    """A packed layout's sampler has no coordinate names: the layout itself is its storage."""

    @property
    def storage(self) -> Hashable:
        return self


def blocks_of_4(n: int) -> int:
    return -(-n // 4)


@dataclass(frozen=True)
class PackedImageLayout(_StoredAsLaidOut):
    """An image batch with four channels per RGBA texel (zero-filled up to a multiple of 4).

    Texel ``(col = w * depth4 + c // 4, row = b * height + h)`` holds channels
    ``c .. c + 3`` of pixel ``(b, h, w)``.  ``data_format`` is the layout of the
    array that :meth:`pack` receives (NCHW arrays are reordered while packing).
    With ``repeat`` r, each channel is stored r times in a row (channel ``k``
    becomes ``k * r .. k * r + r - 1``): a depthwise convolution with multiplier
    r then reads its input exactly like one with multiplier 1.
    """

    batch: int
    height: int
    width: int
    channels: int
    data_format: str = "NHWC"
    repeat: int = 1
    components = 4

    @property
    def depth4(self) -> int:
        return blocks_of_4(self.channels * self.repeat)

    @property
    def rows(self) -> int:
        return self.batch * self.height

    @property
    def cols(self) -> int:
        return self.width * self.depth4

    @property
    def shape(self):
        if self.data_format == "NHWC":
            return (self.batch, self.height, self.width, self.channels)
        return (self.batch, self.channels, self.height, self.width)

    def pack(self, array: np.ndarray) -> np.ndarray:
        nhwc = array if self.data_format == "NHWC" else array.transpose(0, 2, 3, 1)
        texels = np.zeros((self.batch, self.height, self.width, self.depth4 * 4), np.float32)
        stored = self.channels * self.repeat
        texels[..., :stored] = nhwc if self.repeat == 1 else np.repeat(nhwc, self.repeat, axis=3)
        return texels.reshape(self.rows, self.cols, 4)


#: Mesa's llvmpipe hands a render target to its threads in 64x64-pixel tiles.
RASTER_TILE = 64


@dataclass(frozen=True)
class SplitImageLayout(_StoredAsLaidOut):
    """The output of a packed program: ``count`` RGBA textures, one per pixel of each group.

    Unfolded, texture ``j`` at texel ``(col = q * depth4 + c // 4, row = b * height + h)``
    holds channels ``c .. c + 3`` of pixel ``(b, h, count * q + j)``.  A 1x1,
    stride-1 program can read it directly (pixel ``count * q + j`` is in texture ``j``).

    ``fold`` bands of rows are laid side by side: unfolded row ``r`` lives at row
    ``r % band_rows``, shifted right by ``(r // band_rows) * unfolded_cols``.  A
    short, wide texture covers more raster tiles than a square one of the same
    size, so more of llvmpipe's threads share the draw (see :func:`choose_fold`).
    """

    batch: int
    height: int
    width: int
    channels: int
    count: int = 4
    fold: int = 1
    components = 4

    @cached_property  # a layout is asked for its sizes on every draw
    def depth4(self) -> int:
        return blocks_of_4(self.channels)

    @property
    def shape(self) -> Tuple[int, ...]:
        """The logical NHWC shape of the image the ``count`` textures hold together."""
        return (self.batch, self.height, self.width, self.channels)

    @cached_property
    def pixel_groups(self) -> int:
        """Groups of ``count`` pixels along a row."""
        return -(-self.width // self.count)

    @cached_property
    def unfolded_rows(self) -> int:
        return self.batch * self.height

    @cached_property
    def unfolded_cols(self) -> int:
        return self.pixel_groups * self.depth4

    @cached_property
    def rows(self) -> int:
        """Rows of each band (and of the texture)."""
        return -(-self.unfolded_rows // self.fold)

    @cached_property
    def cols(self) -> int:
        return self.fold * self.unfolded_cols

    def assemble(self, parts: Iterable[npt.ArrayLike], data_format: str = "NHWC") -> np.ndarray:
        """The logical array from the textures' ``rows x cols x 4`` contents."""
        unfolded = [np.asarray(p, np.float32).reshape(self.rows, self.fold, self.unfolded_cols * 4)
                    .transpose(1, 0, 2).reshape(self.fold * self.rows, self.unfolded_cols * 4)[: self.unfolded_rows]
                    for p in parts]
        stacked = np.stack([p.reshape(self.unfolded_rows, self.pixel_groups, self.depth4 * 4) for p in unfolded],
                           axis=2)                           # [rows, groups, count (j), depth4 * 4]
        nhwc = stacked.reshape(self.batch, self.height, self.pixel_groups * self.count, self.depth4 * 4)
        nhwc = nhwc[:, :, : self.width, : self.channels]
        if data_format == "NHWC":
            return np.ascontiguousarray(nhwc)
        return np.ascontiguousarray(nhwc.transpose(0, 3, 1, 2))


def raster_tiles(rows: int, cols: int) -> int:
    return blocks_of(rows, RASTER_TILE) * blocks_of(cols, RASTER_TILE)


def blocks_of(n: int, size: int) -> int:
    return -(-n // size)


def choose_fold(unfolded_rows: int, unfolded_cols: int, max_texture_size: int,
                wanted_tiles: int = 4, max_fold: int = 16) -> int:
    """The smallest fold that gives a render target ``wanted_tiles`` raster tiles.

    Falls back to the fold with the most tiles when none reaches it; never makes
    the texture wider than ``max_texture_size`` or folds more bands than rows.
    """
    best, best_tiles = 1, raster_tiles(unfolded_rows, unfolded_cols)
    for fold in range(1, min(max_fold, unfolded_rows) + 1):
        if fold * unfolded_cols > max_texture_size:
            break
        tiles = raster_tiles(blocks_of(unfolded_rows, fold), fold * unfolded_cols)
        if tiles >= wanted_tiles:
            return fold
        if tiles > best_tiles:
            best, best_tiles = fold, tiles
    return best


@dataclass(frozen=True)
class PackedFilterLayout(_StoredAsLaidOut):
    """Filter weights re-laid out in the order a fast program reads them.

    ``conv``: texel ``(col = o // 4, row = ((fh * FW + fw) * depth4 + c // 4) * 4 + c % 4)``
    holds ``filter[fh, fw, c, o .. o + 3]``: four consecutive rows make the ``mat4``
    that maps 4 input channels to 4 output channels.
    ``depthwise``: texel ``(col = o // 4, row = fh * FW + fw)`` holds the weights of
    output channels ``o .. o + 3`` (output channel ``k * multiplier + q`` is
    ``filter[fh, fw, k, q]``).
    ``swapped`` (conv only): the filter's last two axes trade places, for the packed input
    gradient / transposed convolution, whose mat4 maps 4 of dy's channels (the filter's
    last axis) to 4 of dx's (its third): texel ``(col = c // 4, row = ((fh * FW + fw) *
    depth4(O) + o // 4) * 4 + o % 4)`` holds ``filter[fh, fw, c .. c + 3, o]``.
    """

    filter_shape: Tuple[int, int, int, int]
    depthwise: bool = False
    swapped: bool = False
    components = 4

    def __post_init__(self) -> None:
        if self.swapped and self.depthwise:
            raise ValueError("a depthwise PackedFilterLayout cannot be swapped")

    @property
    def out_channels(self) -> int:
        fh, fw, c, o = self.filter_shape
        if self.swapped:
            return c
        return c * o if self.depthwise else o

    @property
    def in_channels(self) -> int:
        """The channels each mat4 reads, 4 at a time (a depthwise filter's: 1)."""
        fh, fw, c, o = self.filter_shape
        return o if self.swapped else (1 if self.depthwise else c)

    @property
    def cols(self) -> int:
        return blocks_of_4(self.out_channels)

    @property
    def rows(self) -> int:
        fh, fw, c, o = self.filter_shape
        if self.depthwise:
            return fh * fw
        return fh * fw * blocks_of_4(self.in_channels) * 4

    @property
    def shape(self):
        return self.filter_shape

    def pack(self, filter: np.ndarray) -> np.ndarray:
        fh, fw, c, o = self.filter_shape
        out4 = self.cols * 4
        if self.depthwise:
            texels = np.zeros((fh * fw, out4), np.float32)
            texels[:, : c * o] = filter.reshape(fh * fw, c * o)
            return texels.reshape(self.rows, self.cols, 4)
        if self.swapped:
            texels = np.zeros((fh * fw, blocks_of_4(o) * 4, out4), np.float32)
            texels[:, :o, :c] = filter.reshape(fh * fw, c, o).transpose(0, 2, 1)
            return texels.reshape(self.rows, self.cols, 4)
        texels = np.zeros((fh * fw, blocks_of_4(c) * 4, out4), np.float32)
        texels[:, :c, :o] = filter.reshape(fh * fw, c, o)
        return texels.reshape(self.rows, self.cols, 4)


@dataclass(frozen=True)
class TransposeMatMulFilterLayout(_StoredAsLaidOut):
    """A transposed convolution's filter ``[FH, FW, outC, inC]`` as the matrix multiply's 1x1
    filter ``[1, 1, inC, FH * FW * 4 * ceil(outC / 4)]`` in :class:`PackedFilterLayout`'s texels
    (the same rows and columns): texel ``(col = (fh * FW + fw) * ceil(outC / 4) + o // 4,
    row = c)`` holds ``filter[fh, fw, o .. o + 3, c]`` (zeros past outC and inC), so that the
    matrix multiply's column ``(fh * FW + fw) * 4 * ceil(outC / 4) + o`` is tap (fh, fw) of
    output channel o (:class:`gpuconv.programs.Col2ImProgramSpec` adds the taps up)."""

    filter_shape: Tuple[int, int, int, int]
    components = 4

    @property
    def cols(self) -> int:
        fh, fw, o, _ = self.filter_shape
        return fh * fw * blocks_of_4(o)

    @property
    def rows(self) -> int:
        return blocks_of_4(self.filter_shape[3]) * 4

    @property
    def shape(self):
        return self.filter_shape

    def pack(self, filter: np.ndarray) -> np.ndarray:
        fh, fw, o, c = self.filter_shape
        texels = np.zeros((self.rows, fh * fw, blocks_of_4(o) * 4), np.float32)
        texels[:c, :, :o] = np.asarray(filter, np.float32).reshape(fh * fw, o, c).transpose(2, 0, 1)
        return texels.reshape(self.rows, self.cols, 4)


@dataclass(frozen=True)
class PackedVectorLayout(_StoredAsLaidOut):
    """A per-channel vector (bias, PReLU weights), four channels per texel, one row."""

    length: int
    components = 4
    rows = 1

    @property
    def cols(self) -> int:
        return blocks_of_4(self.length)

    @property
    def shape(self):
        return (self.length,)

    def pack(self, vector: np.ndarray) -> np.ndarray:
        texels = np.zeros(self.cols * 4, np.float32)
        texels[: self.length] = np.asarray(vector, np.float32).reshape(-1)
        return texels.reshape(1, self.cols, 4)
