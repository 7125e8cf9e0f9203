"""The runtime a command runs on, as --backend, --gl, --api, --storage and the WebGL2 limits say."""

from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Tuple

from ..registry import option_name
from ..runtimes import BACKEND_ENV, BaseRuntime, GLUnavailableError, make_runtime
from ..target import WEBGL2
from .common import Args, UsageError

#: --gl values for each --backend (the first is the default); wgpu-py picks WebGPU's adapter itself.
GL_CHOICES: Dict[str, Tuple[str, ...]] = {"native": ("egl", "glfw"), "browser": ("angle-egl", "swiftshader"),
                                          "webgpu": ()}
#: --api values: what a browser runtime's page runs (the first is the default).
API_CHOICES: Tuple[str, ...] = ("webgl2", "webgpu")


def limit_kwargs(args: Args) -> Dict[str, int]:
    """--max-texture-size and --max-draw-buffers as keyword arguments (only those given)."""
    return {name: getattr(args, name) for name in ("max_texture_size", "max_draw_buffers")
            if getattr(args, name, None) is not None}


def backend_kind(args: Args) -> str:
    """--backend, or the default: browser or webgpu where $GPUCONV_BACKEND says so, else native."""
    if args.backend is not None:
        return str(args.backend)
    backend = os.environ.get(BACKEND_ENV)
    return backend if backend in ("browser", "webgpu") else "native"


def _api(args: Args, kind: str) -> str:
    """--api for a runtime of ``kind`` (webgl2 unless given; only a browser takes another)."""
    api = getattr(args, "api", None)
    if api in (None, "webgl2"):
        return "webgl2"
    if kind != "browser":
        raise UsageError(f"--api {api} is for --backend browser (Chromium's {api}); --backend {kind} "
                         + ("is WebGPU already" if kind == "webgpu" else "runs WebGL2 (--backend webgpu runs WebGPU)"))
    return str(api)


def open_runtime(args: Args, kind: Optional[str] = None) -> BaseRuntime:
    """A new runtime as --backend, --gl and the limits say (``kind`` overrides --backend;
    the --gl of another backend is not passed on).  A missing browser runtime is a GL error."""
    second = kind is not None and kind != backend_kind(args)  # the native runtime of --compare-native
    kind = kind or backend_kind(args)
    gl = args.gl
    if gl is not None and gl not in GL_CHOICES[kind]:
        if second:  # its default GL
            gl = None
        else:
            owner = next(k for k, names in GL_CHOICES.items() if gl in names)
            raise UsageError(f"--gl {gl} is a GL of --backend {owner}; --backend {kind} takes "
                             + (' or '.join(GL_CHOICES[kind]) if GL_CHOICES[kind] else
                                "no --gl (wgpu-py picks the adapter)"))
    api = "webgl2" if second else _api(args, kind)
    options: Dict[str, Any] = {"api": api} if api != "webgl2" else {}
    limits = limit_kwargs(args)
    if limits and (kind == "webgpu" or api == "webgpu"):
        raise UsageError(f"{', '.join(map(option_name, limits))}: WebGL2 limits; the WebGPU target plans for its "
                         f"device's WebGPU limits (gpuconv info --backend webgpu lists them)")
    storage = {"storage": args.storage} if getattr(args, "storage", None) and not second else {}
    try:
        runtime = make_runtime(kind, gl=gl, **limits, **storage, **options)
    except ImportError as exc:  # the browser runtime (or what it needs) is not installed
        raise GLUnavailableError(f"gpuconv's {kind} runtime is not available: {exc}") from exc
    if storage and runtime.target is not WEBGL2:
        try:  # refused now, in one line, rather than at the first call (WebGPU's buffers hold float32)
            runtime.require_storage(storage["storage"])
        except GLUnavailableError:
            runtime.release()
            raise
    return runtime


def runtime_options(args: Args) -> List[str]:
    """The options that made the runtime, to repeat a command with."""
    words = []
    if args.backend is not None or backend_kind(args) != "native":
        words += ["--backend", backend_kind(args)]
    if args.gl is not None:
        words += ["--gl", args.gl]
    if getattr(args, "api", None) not in (None, "webgl2"):
        words += ["--api", args.api]
    for name, value in limit_kwargs(args).items():
        words += [option_name(name), str(value)]
    if getattr(args, "storage", None):
        words += ["--storage", args.storage]
    return words
