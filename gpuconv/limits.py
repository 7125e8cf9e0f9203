"""Device limits that the generated programs respect (texture size, render targets)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from .layout import DEFAULT_MAX_TEXTURE_SIZE

#: WebGL2's guaranteed minimum of draw buffers (many phones have exactly this many).
WEBGL2_MIN_DRAW_BUFFERS = 4
#: Render targets the packed programs use at most (llvmpipe, ANGLE and desktop GPUs have 8).
DEFAULT_MAX_DRAW_BUFFERS = 8


@dataclass(frozen=True)
class Limits:
    """What the generated programs may use on a device.

    ``max_texture_size`` caps a texture's side (layouts wrap or split to stay under it);
    ``max_draw_buffers`` caps the render targets of one draw (the packed programs compute
    that many output pixels per fragment).  A runtime reports its device's limits,
    capped at the defaults so that programs are the same on every capable device;
    pass smaller values to emulate a smaller device.
    """

    max_texture_size: int = DEFAULT_MAX_TEXTURE_SIZE
    max_draw_buffers: int = DEFAULT_MAX_DRAW_BUFFERS

    def __post_init__(self) -> None:
        for name in ("max_texture_size", "max_draw_buffers"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")

    @staticmethod
    def capped(device_texture_size: int, device_draw_buffers: int,
               max_texture_size: Optional[int] = None, max_draw_buffers: Optional[int] = None) -> "Limits":
        """The limits to lay out and generate for: the device's, capped by the defaults and by the
        caller's ``max_*`` (which may not exceed what the device has)."""
        limits = []
        for name, device, default, wanted in (
                ("max_texture_size", device_texture_size, DEFAULT_MAX_TEXTURE_SIZE, max_texture_size),
                ("max_draw_buffers", device_draw_buffers, DEFAULT_MAX_DRAW_BUFFERS, max_draw_buffers)):
            value = min(device, default)
            if wanted is not None:
                if isinstance(wanted, bool) or not isinstance(wanted, int) or wanted < 1:
                    raise ValueError(f"{name} must be a positive integer, got {wanted!r}")
                if wanted > device:
                    raise ValueError(f"{name}={wanted} exceeds this device's limit of {device}")
                value = min(value, wanted)
            limits.append(value)
        return Limits(*limits)
