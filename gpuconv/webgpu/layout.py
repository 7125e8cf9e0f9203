"""Where a tensor lives on the WebGPU target: one storage buffer, row-major.

WebGPU programs read and write storage buffers, not textures: a tensor is its NumPy
bytes (row-major in its logical shape, as TF.js's WebGPU backend keeps tensors), padded
to a whole 16 bytes so that a program may read it a vec4 at a time.  A reshape is
free: every buffer of the same size holds its values in the same place.

With half-float storage (``dtype="float16"``, :mod:`gpuconv.storage`) the buffer holds
IEEE halves, two to a 32-bit word (value ``2i`` in the word's low half, ``2i + 1`` in its
high half, as WGSL's ``pack2x16float`` puts them): NumPy's float16 bytes, little-endian.
Programs read them with ``unpack2x16float`` and write them with ``pack2x16float`` (core
WGSL: no ``shader-f16``); the host rounds to half when it uploads (beyond 65504 is
infinity, as in a WebGL2 R16F texture) and reads halves back as float32.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Hashable, Tuple

import numpy as np

from ..storage import check_storage, component_bytes

#: Bytes of one float32 value.
VALUE_BYTES = 4
#: Values a float32 buffer is padded to a multiple of: one vec4<f32> (WGSL reads 16 bytes at a time).
VEC4 = 4
#: Bytes a buffer is padded to a multiple of (one vec4<f32>, or two vec2<u32> of eight halves).
UNIT_BYTES = 16


@dataclass(frozen=True)
class BufferLayout:
    """A logical ``shape`` held row-major in one storage buffer: ``array<f32>``, or with
    ``dtype="float16"`` halves packed two to a ``u32``.

    Offers what every layout offers (:class:`gpuconv.layout.Layout`): the buffer is one
    row of ``size`` single-value "texels", so memory accounting and read-back work alike
    on both targets."""

    shape: Tuple[int, ...]
    #: How each value is stored: "float32", or "float16" (halves, two to a 32-bit word).
    dtype: str = "float32"

    #: One float per element.
    components = 1

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def rows(self) -> int:
        return 1

    @property
    def cols(self) -> int:
        return self.size

    @property
    def value_bytes(self) -> int:
        """Bytes of one value: 4, or 2 for halves."""
        return component_bytes(self.dtype)

    @property
    def half(self) -> bool:
        """Whether the buffer holds halves, two to a 32-bit word."""
        return self.dtype == "float16"

    @property
    def padded_size(self) -> int:
        """Values the buffer holds: ``size`` rounded up to a whole 16 bytes (at least 16): a
        vec4 of floats, or eight halves."""
        unit = UNIT_BYTES // self.value_bytes
        return max(unit, -(-self.size // unit) * unit)

    @property
    def byte_size(self) -> int:
        return self.padded_size * self.value_bytes

    @property
    def storage(self) -> Hashable:
        """Any two buffers of the same size and dtype hold their values alike (a reshape is free)."""
        return ("buffer", self.size) if self.dtype == "float32" else ("buffer", self.size, self.dtype)

    def stored_as(self, dtype: str) -> "BufferLayout":
        """This layout holding ``dtype`` values ("float32" or "float16")."""
        return self if dtype == self.dtype else BufferLayout(self.shape, check_storage(dtype, "dtype"))

    def pack(self, array: np.ndarray) -> np.ndarray:
        """``array`` (of ``shape``) as the buffer's values (float32, or float16: rounded to the
        nearest half, beyond 65504 infinity), padded with zeros."""
        values = np.zeros(self.padded_size, np.float16 if self.half else np.float32)
        with np.errstate(over="ignore"):
            values[:self.size] = np.asarray(array, np.float32).reshape(-1)
        return values

    def unpack(self, values: np.ndarray) -> np.ndarray:
        """The logical array, as float32, from the buffer's values (padding dropped)."""
        return np.asarray(values).reshape(-1)[:self.size].astype(np.float32).reshape(self.shape)

    def from_bytes(self, data: bytes) -> np.ndarray:
        """The buffer's first ``size`` values from its bytes (little-endian), as float32."""
        values = np.frombuffer(data, dtype="<f2" if self.half else "<f4", count=self.size)
        return values.astype(np.float32)
