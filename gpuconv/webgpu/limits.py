"""What WebGPU programs may use on a device: the limits of the WebGPU specification that
shape gpuconv's compute programs, and the device's own where they are smaller."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Mapping, Optional

#: WebGPU's names (GPUSupportedLimits, kebab-case as wgpu-py reports them) of the limits below.
LIMIT_NAMES = {
    "max_storage_buffer_binding_size": "max-storage-buffer-binding-size",
    "max_compute_workgroup_storage_size": "max-compute-workgroup-storage-size",
    "max_compute_invocations_per_workgroup": "max-compute-invocations-per-workgroup",
    "max_compute_workgroup_size_x": "max-compute-workgroup-size-x",
    "max_compute_workgroup_size_y": "max-compute-workgroup-size-y",
    "max_compute_workgroups_per_dimension": "max-compute-workgroups-per-dimension",
    "max_storage_buffers_per_shader_stage": "max-storage-buffers-per-shader-stage",
}


@dataclass(frozen=True)
class WebGPULimits:
    """What the generated compute programs may use.  The defaults are WebGPU's guaranteed
    limits (every adapter offers at least these), so programs are the same on every device;
    a runtime caps them by its device's, and smaller values emulate a small device."""

    #: bytes one storage-buffer binding may span (a larger tensor is refused, naming this)
    max_storage_buffer_binding_size: int = 128 << 20
    #: bytes of var<workgroup> memory one program may declare (the GEMM tiles live there)
    max_compute_workgroup_storage_size: int = 16384
    max_compute_invocations_per_workgroup: int = 256
    max_compute_workgroup_size_x: int = 256
    max_compute_workgroup_size_y: int = 256
    #: workgroups of one dispatch along each axis (longer grids fold into the next axis)
    max_compute_workgroups_per_dimension: int = 65535
    max_storage_buffers_per_shader_stage: int = 8

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{item.name} must be a positive integer, got {value!r}")

    @classmethod
    def capped(cls, device: Mapping[str, Any], **wanted: Optional[int]) -> "WebGPULimits":
        """The limits to generate for: the device's (``device``: its GPUSupportedLimits by WebGPU's
        kebab-case names), capped by the defaults and by the caller's ``wanted`` values (each at
        most the device's)."""
        unknown = set(wanted) - set(LIMIT_NAMES)
        if unknown:
            raise TypeError(f"unknown WebGPU limit(s) {sorted(unknown)}; choose from {sorted(LIMIT_NAMES)}")
        values = {}
        defaults = cls()
        for name, key in LIMIT_NAMES.items():
            have = int(device.get(key, getattr(defaults, name)))
            value = min(have, getattr(defaults, name))
            asked = wanted.get(name)
            if asked is not None:
                if isinstance(asked, bool) or not isinstance(asked, int) or asked < 1:
                    raise ValueError(f"{name} must be a positive integer, got {asked!r}")
                if asked > have:
                    raise ValueError(f"{name}={asked} exceeds this device's limit of {have}")
                value = min(value, asked)
            values[name] = value
        return cls(**values)
