"""``gpuconv info``: the device (GL or WebGPU adapter), its limits, the versions and the tuning cache."""

from __future__ import annotations

from typing import Dict, List, Tuple

import numpy as np

from .. import tuning
from ..version import __version__
from .backend import open_runtime
from .common import EXIT_OK, AddCommand, Args
from .options import add_runtime_options

#: The info() keys ``gpuconv info`` names itself, with their labels (other keys are printed as they come).
_INFO_LABELS = (("runtime", "runtime"), ("renderer", "renderer"), ("adapter", "adapter"), ("vendor", "vendor"),
                ("version", "GL version"), ("glsl", "GLSL dialect"), ("max_texture_size", "max texture size"),
                ("max_draw_buffers", "max draw buffers"), ("max_texture_image_units", "texture units"),
                ("backend", "context backend"))
_INFO_NOTES = {"max_texture_size": ("layout_texture_size", "layouts use up to {}"),
               "max_draw_buffers": ("program_draw_buffers", "packed programs use up to {}")}
_INFO_SKIP = {"cached_programs"}
#: A WebGPU runtime's info(): its backend is the adapter's API (Vulkan, Metal, ...), not a GL context's;
#: its "limits" (the device's) are printed one per line, each with what the programs use ("program_limits").
_WEBGPU_LABELS = {"backend": "WebGPU backend"}


def add_info_command(add: AddCommand) -> None:
    p = add("info", "show the GL device (or WebGPU adapter) and versions",
            "Show the device gpuconv runs on (renderer, vendor, version, limits, backend; for a "
            "browser also its version and float-texture extensions; for --backend webgpu the adapter, "
            "its backend, features and WebGPU limits beside what the programs use) and the versions of "
            "gpuconv and moderngl.", "gpuconv info", cmd_info)
    add_runtime_options(p, limits=False)


def _info_value(value: object) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k} {_info_value(v)}" for k, v in value.items()) or "none"
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value)) or "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def info_lines(info: Dict[str, object]) -> List[str]:
    """``info()``'s facts, one ``label: value`` line each: the known keys first, then any other."""
    rows: List[Tuple[str, str]] = []
    used = set(_INFO_SKIP)
    webgpu = info.get("target") == "webgpu"
    for key, label in _INFO_LABELS:
        if key not in info:
            continue
        text = _info_value(info[key])
        note = _INFO_NOTES.get(key)
        if note and note[0] in info:
            text += f" ({note[1].format(info[note[0]])})"
            used.add(note[0])
        rows.append((_WEBGPU_LABELS.get(key, label) if webgpu else label, text))
        used.add(key)
    uses = info.get("program_limits")
    if webgpu and isinstance(uses, dict):
        used.add("program_limits")  # told beside each device limit
    for key, value in info.items():
        if key in used:
            continue
        if webgpu and key == "limits" and isinstance(value, dict):
            for name, have in value.items():
                used_up_to = f" (programs use up to {uses[name]})" if isinstance(uses, dict) and name in uses else ""
                rows.append((name.replace("_", " "), f"{have}{used_up_to}"))
            continue
        rows.append((key.replace("_", " "), _info_value(value)))
    return [f"{label + ':':<17} {text}" for label, text in rows]


def cmd_info(args: Args) -> int:
    try:  # deferred: the GL binding, only for its version (info reports "not installed" without it)
        import moderngl

        moderngl_version = getattr(moderngl, "__version__", "unknown")
    except ImportError:  # pragma: no cover - a dependency
        moderngl_version = "not installed"
    print(f"{'gpuconv:':<17} {__version__}")
    print(f"{'moderngl:':<17} {moderngl_version}")
    print(f"{'numpy:':<17} {np.__version__}")
    with open_runtime(args) as runtime:
        info = runtime.info()
        cache = tuning.cache_path(runtime)
    for line in info_lines(info):
        print(line)
    tuned = tuning.cached_entries(cache)
    print(f"{'tuning cache:':<17} {cache} ({tuned} call shape{'' if tuned == 1 else 's'} tuned; "
          f"read under gpuconv.autotune / --autotune)")
    return EXIT_OK
