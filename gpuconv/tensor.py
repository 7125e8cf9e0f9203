"""Tensors that stay on the GPU: upload once, chain ops, read back once.

:func:`gpuconv.to_gpu` uploads an array into one R32F row-major texture (as TF.js stores a
tensor) and gives a :class:`Tensor`.  Every op takes a Tensor wherever it takes an
array, and a call with a Tensor among its inputs returns a Tensor: the last program's
output textures, kept where the program wrote them (an R32F texture, or a packed
program's split textures).  When the next program reads its input stored otherwise, a
conversion program (:mod:`gpuconv.convert`) copies it on the GPU; nothing goes through
NumPy until :meth:`Tensor.numpy`.  A Tensor from :func:`gpuconv.to_gpu` (a filter, typically) keeps
each copy it needed, so it is converted once however many calls read it; a packed 1x1
conv2d reads a packed program's split output Tensor in place.

A Tensor belongs to the runtime that holds its textures; :meth:`Tensor.release` (or
``with``) frees them, and so, later, does the garbage collector (the textures of a
collected Tensor are freed by its runtime's next gpuconv call).  :func:`gpuconv.memory` counts
what gpuconv holds on a runtime, :func:`gpuconv.synchronize` waits for its queued work
(:mod:`gpuconv.device`, with :func:`gpuconv.to_gpu`: they find the default runtime, which this
module, below the runtimes, never does).
"""

from __future__ import annotations

import math
import threading
import weakref
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterable, List, Optional, Protocol, Sequence, Tuple

import numpy as np

from .convert import conversion, same_storage
from .layout import Layout, SplitImageLayout, TensorLayout

if TYPE_CHECKING:  # pragma: no cover
    from .programs import Program


class TextureOwner(Protocol):
    """What a Tensor needs of the runtime holding its textures (every
    :class:`~gpuconv.runtimes.base.BaseRuntime` has it): named here, structurally, so this
    module never imports the runtimes, which import it."""

    def read(self, texture: Any, layout: Layout) -> np.ndarray: ...

    def free(self, textures: Iterable[Any]) -> None: ...

#: Textures of Tensors the garbage collector took before they were released, by runtime:
#: freed by that runtime's next gpuconv call, in the thread that uses it (a finalizer may
#: run in any thread, and GL calls must not).
_orphans: "weakref.WeakKeyDictionary[Any, List[Any]]" = weakref.WeakKeyDictionary()
_orphans_lock = threading.Lock()


def collect(runtime: TextureOwner) -> None:
    """Free the textures of the collected, unreleased Tensors of ``runtime``."""
    with _orphans_lock:
        textures = _orphans.pop(runtime, None)
    if textures and not getattr(runtime, "_released", False):
        runtime.free(textures)


class _Storage:
    """The textures a Tensor and its views share, where they keep the values, and who frees them."""

    def __init__(self, runtime: TextureOwner, textures: Sequence[Any], layout: Layout, data_format: str,
                 assemble: Callable[[Sequence[np.ndarray]], np.ndarray], keep_conversions: bool = False) -> None:
        self.runtime = runtime
        self.textures = list(textures)
        self.layout = layout
        self.data_format = data_format  # the logical order of a SplitImageLayout (its shape is NHWC)
        self.assemble = assemble
        self.released = False
        #: Uploaded Tensors (weights, mostly) keep each conversion they needed, by target storage,
        #: so a filter read by every call of a chain is converted once; freed with the Tensor.
        self.keep_conversions = keep_conversions
        self.conversions: Dict[Any, Any] = {}

    @property
    def all_textures(self) -> List[Any]:
        return self.textures + list(self.conversions.values())

    def release(self) -> None:
        if self.released:
            return
        self.released = True
        if not getattr(self.runtime, "_released", False):
            self.runtime.free(self.all_textures)
        self.textures = []
        self.conversions = {}

    def __del__(self) -> None:
        try:
            if not self.released and self.textures:
                with _orphans_lock:
                    _orphans.setdefault(self.runtime, []).extend(self.all_textures)
                self.released = True
        except Exception:  # at interpreter exit
            pass


class Tensor:
    """A float32 tensor held in textures of one runtime (``runtime``).

    ``shape`` and ``dtype`` as NumPy's; :meth:`numpy` reads it back; :meth:`reshape` is a
    view on the same textures; :meth:`release` frees them (for every view).  Made by
    :func:`gpuconv.to_gpu` and by the ops, not directly.
    """

    def __init__(self, storage: _Storage, shape: Sequence[int], argument: str = "", part: int = 0) -> None:
        self._storage = storage
        self._shape = tuple(int(d) for d in shape)
        self._argument = argument  # the op argument this view was passed as (for messages)
        self._part = part  # which of a split layout's textures a program input reads (x_split)
        if math.prod(self._shape) != math.prod(storage.layout.shape):
            raise ValueError(f"a Tensor of {math.prod(storage.layout.shape)} values cannot have shape {self._shape}")

    # -- what it is ---------------------------------------------------------------------------
    @property
    def shape(self) -> Tuple[int, ...]:
        """Its logical shape, as NumPy's (a view may give the same values another)."""
        return self._shape

    @property
    def dtype(self) -> np.dtype:
        """Always float32: what :meth:`numpy` returns, whatever the runtime's storage."""
        return np.dtype(np.float32)

    @property
    def ndim(self) -> int:
        """The number of dimensions of :attr:`shape`."""
        return len(self._shape)

    @property
    def size(self) -> int:
        """The number of values."""
        return math.prod(self._shape)

    @property
    def runtime(self) -> TextureOwner:
        """The runtime whose textures hold it: an op on this Tensor runs there."""
        return self._storage.runtime

    @property
    def layout(self) -> Layout:
        """How its textures hold the values (an R32F TextureLayout, or a packed program's split layout)."""
        return self._storage.layout

    @property
    def textures(self) -> Tuple[Any, ...]:
        """The runtime's texture handles (one, or a split layout's ``count``)."""
        return tuple(self._storage.textures)

    @property
    def released(self) -> bool:
        """Whether :meth:`release` has freed its textures (of this view and every other)."""
        return self._storage.released

    def __repr__(self) -> str:
        state = "released" if self.released else f"on {type(self.runtime).__name__}"
        return f"gpuconv.Tensor(shape={self._shape}, dtype=float32, {type(self.layout).__name__}, {state})"

    def _check_alive(self, what: str = "this Tensor") -> None:
        if self._storage.released:
            raise ValueError(f"{what} has been released")
        if getattr(self.runtime, "_released", False):
            raise ValueError(f"{what} belongs to a runtime that has been released")

    # -- views ----------------------------------------------------------------------------------
    def reshape(self, *shape: Any) -> "Tensor":
        """A view of another shape (the same number of values) on the same textures; -1 allowed once."""
        dims = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        dims = tuple(int(d) for d in dims)
        if dims.count(-1) > 1:
            raise ValueError("only one dimension of a reshape may be -1")
        if -1 in dims:
            known = math.prod(d for d in dims if d != -1)
            if known == 0 or self.size % known:
                raise ValueError(f"cannot reshape a Tensor of shape {self._shape} into {dims}")
            dims = tuple(self.size // known if d == -1 else d for d in dims)
        if math.prod(dims) != self.size or any(d < 0 for d in dims):
            raise ValueError(f"cannot reshape a Tensor of shape {self._shape} ({self.size} values) into {dims}")
        return Tensor(self._storage, dims, self._argument)

    def as_argument(self, name: str) -> "Tensor":
        """This Tensor as the op argument ``name`` (a view that names it in messages)."""
        return Tensor(self._storage, self._shape, name)

    def part(self, j: int) -> "Tensor":
        """The view a program reading split texture ``j`` in place takes (``x0`` .. ``x<count-1>``)."""
        return Tensor(self._storage, self._shape, self._argument, j)

    @property
    def argument(self) -> str:
        return self._argument

    # -- values ---------------------------------------------------------------------------------
    def numpy(self) -> np.ndarray:
        """The values, read back (float32, ``shape``)."""
        self._check_alive()
        storage = self._storage
        parts = [storage.runtime.read(texture, storage.layout) for texture in storage.textures]
        return np.ascontiguousarray(storage.assemble(parts), dtype=np.float32).reshape(self._shape)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        """``np.asarray(tensor)`` reads it back (so NumPy code, the oracle included, takes a Tensor)."""
        values = self.numpy()
        return values if dtype is None else values.astype(dtype)

    def astype(self, dtype: Any) -> np.ndarray:
        """The values read back as a NumPy array of ``dtype`` (as ``ndarray.astype``)."""
        return self.numpy().astype(dtype)

    def texture_for(self, layout: Layout, draw: Callable[[Any, Dict[str, Any]], List[Any]]) -> Tuple[Any, bool]:
        """A texture holding these values laid out as ``layout`` (of this view's size):
        ``(texture, made)``.  Its own texture where the storage already matches (``made``
        False), else a new one that ``draw`` (a runtime's, or a plan's recording one)
        fills with a conversion program (``made`` True: the caller frees it)."""
        self._check_alive(f"{self._argument or 'a'} Tensor")
        storage = self._storage
        if math.prod(layout.shape) != self.size:
            raise ValueError(f"a Tensor of shape {self._shape} cannot be read as {layout.shape}")
        if same_storage(storage.layout, layout):
            return storage.textures[self._part], False
        kept = storage.conversions.get(layout.storage)
        if kept is not None:
            return kept, False
        spec = conversion(storage.layout, layout, storage.data_format)
        outputs = draw(spec, dict(zip(spec.variable_names, storage.textures)))
        if storage.keep_conversions:
            storage.conversions[layout.storage] = outputs[0]
            return outputs[0], False
        return outputs[0], True

    # -- lifetime -------------------------------------------------------------------------------
    def release(self) -> None:
        """Free the textures (of this Tensor and every view of them).  Safe to call twice."""
        self._storage.release()

    def __enter__(self) -> "Tensor":
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    # -- made by gpuconv ------------------------------------------------------------------------
    @classmethod
    def from_program(cls, runtime: TextureOwner, textures: Sequence[Any], spec: "Program",
                     shape: Sequence[int]) -> "Tensor":
        """The Tensor owning ``textures``, the outputs of ``spec`` (read back as ``spec.assemble``)."""
        layout = spec.output_layouts[0]
        data_format = spec.geometry.data_format if isinstance(layout, SplitImageLayout) else "NHWC"
        return cls(_Storage(runtime, textures, layout, data_format, spec.assemble), shape)

    @classmethod
    def from_upload(cls, runtime: TextureOwner, texture: Any, layout: TensorLayout, shape: Sequence[int]) -> "Tensor":
        """The Tensor owning ``texture``, an upload laid out as ``layout`` (an R32F row-major
        texture): it keeps each conversion it needs (a filter read by every call of a chain)."""
        return cls(_Storage(runtime, [texture], layout, "NHWC", lambda parts: layout.unpack(parts[0]),
                            keep_conversions=True), shape)


def split_input_fold(x: Any, geometry: Any, pixels: int) -> Optional[int]:
    """The fold of ``x``'s split textures when a packed program of ``geometry`` can read them in
    place (a Tensor a packed program wrote, of the same image and data format, with as many
    pixels per fragment), else ``None``: a 1x1, stride-1, unpadded conv2d, or a depthwise
    convolution of multiplier 1 whose columns the packed program reuses (stride 1 or 2, no
    dilation across, 2-7 wide: each tap's texture is then known when the program is made)."""
    if not isinstance(x, Tensor) or not isinstance(x.layout, SplitImageLayout):
        return None
    g, layout = geometry, x.layout
    if g.groups != 1 or layout.count != pixels:
        return None
    if g.depthwise:
        if g.channel_multiplier != 1 or g.stride_width not in (1, 2) or g.dilation_width != 1 \
                or not 1 < g.filter_width <= 7:
            return None
    elif (g.filter_height, g.filter_width, g.stride_height, g.stride_width) != (1,) * 4 \
            or (g.out_height, g.out_width) != (g.in_height, g.in_width):
        return None
    if (layout.batch, layout.height, layout.width, layout.channels) != (g.batch, g.in_height, g.in_width,
                                                                         g.in_channels):
        return None
    return layout.fold if x._storage.data_format == g.data_format else None


def forget_conversions(tensors: Sequence[Tensor], textures: Sequence[Any]) -> None:
    """Drop the kept conversions among ``textures`` (a round trip that failed never made them)."""
    lost = {id(texture) for texture in textures}
    for tensor in tensors:
        kept = tensor._storage.conversions
        for key in [key for key, texture in kept.items() if id(texture) in lost]:
            del kept[key]


def tensors_in(steps: Sequence[Tuple[Any, Any]]) -> List[Tensor]:
    """The Tensors among a plan's host inputs."""
    return [value for _, arrays in steps for value in arrays.values() if isinstance(value, Tensor)]
