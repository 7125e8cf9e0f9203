"""Texture storage: float32 (R32F/RGBA32F, the default) or float16 (R16F/RGBA16F).

Many mobile GPUs cannot render to float32 textures, so TF.js stores every tensor in
half-float textures there (``WEBGL_RENDER_FLOAT32_CAPABLE`` false).  With
``storage="float16"`` gpuconv does the same: every uploaded array and every program's
output (intermediates included) is kept in a half-float texture, while the arithmetic
inside a program stays as the device does it (float32 on a desktop GPU and llvmpipe).
Results still come back as float32 NumPy arrays.  :mod:`gpuconv.oracle` predicts what
half-float storage gives (``storage="float16"`` on every op) and bounds its error
(:func:`gpuconv.oracle.float16_error_bound`).
"""

from __future__ import annotations

from typing import Any, Optional

#: The ``storage=`` values, the default first.
STORAGES = ("float32", "float16")

#: float16's largest finite value: larger magnitudes become infinity in a half-float texture.
FLOAT16_MAX = 65504.0

#: float16's unit roundoff (half its machine epsilon, 2^-10): rounding to the nearest half
#: changes a value by at most this fraction of its magnitude (in the normal range).
FLOAT16_UNIT_ROUNDOFF = 2.0 ** -11


def check_storage(storage: Any, what: str = "storage") -> str:
    """``storage`` if it is one of :data:`STORAGES`, else a ValueError naming ``what`` and the choices."""
    if not isinstance(storage, str) or storage not in STORAGES:
        raise ValueError(f"{what} must be one of {', '.join(map(repr, STORAGES))}, got {storage!r}")
    return storage


def resolve_storage(storage: Optional[str], default: str = "float32") -> str:
    """An op's ``storage=`` (``None``: the runtime's ``default``), checked."""
    return check_storage(default if storage is None else storage)


def component_bytes(storage: str) -> int:
    """Bytes one texel component takes in ``storage``."""
    return 2 if storage == "float16" else 4
