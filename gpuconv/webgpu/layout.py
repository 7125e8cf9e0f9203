"""Where a tensor lives on the WebGPU target: one storage buffer, row-major, float32.

WebGPU programs read and write storage buffers, not textures: a tensor is its NumPy
bytes (row-major in its logical shape, as TF.js's WebGPU backend keeps tensors), padded
to a whole vec4 so that a program may read it four floats at a time.  A reshape is
free: every buffer of the same size holds its values in the same place.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Hashable, Tuple

import numpy as np

#: Bytes of one value (float32).
VALUE_BYTES = 4
#: Values a buffer is padded to a multiple of: one vec4<f32> (WGSL reads 16 bytes at a time).
VEC4 = 4


@dataclass(frozen=True)
class BufferLayout:
    """A logical ``shape`` held row-major in one ``array<f32>`` storage buffer.

    Offers what every layout offers (:class:`gpuconv.layout.Layout`): the buffer is one
    row of ``size`` single-float "texels", so memory accounting and read-back work alike
    on both targets."""

    shape: Tuple[int, ...]

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
    def padded_size(self) -> int:
        """Values the buffer holds: ``size`` rounded up to a whole vec4 (at least one)."""
        return max(VEC4, -(-self.size // VEC4) * VEC4)

    @property
    def byte_size(self) -> int:
        return self.padded_size * VALUE_BYTES

    @property
    def storage(self) -> Hashable:
        """Any two buffers of the same size hold their values alike (a reshape is free)."""
        return ("buffer", self.size)

    def pack(self, array: np.ndarray) -> np.ndarray:
        """``array`` (of ``shape``) as the buffer's float32 values, padded with zeros."""
        values = np.zeros(self.padded_size, np.float32)
        values[:self.size] = np.asarray(array, np.float32).reshape(-1)
        return values

    def unpack(self, values: np.ndarray) -> np.ndarray:
        """The logical array from the buffer's values (padding dropped)."""
        return np.asarray(values, np.float32).reshape(-1)[:self.size].reshape(self.shape)
