"""Where programs run: the runtime interface, its implementations and each thread's default.

* :class:`BaseRuntime` (:mod:`.base`): compile, upload, draw, read back, free;
* :class:`NativeRuntime` (:mod:`.native`): moderngl in this process (EGL by default);
* ``BrowserRuntime`` (:mod:`.browser`): WebGL2 in headless Chromium, driven by Playwright
  (``api="webgpu"``: WebGPU there, :class:`.browser.BrowserWebGPURuntime`);
* :class:`WebGPURuntime` (:mod:`.webgpu`): the WebGPU target's WGSL programs through wgpu-py.

:func:`get_runtime` gives each thread its own default runtime (GL contexts belong to
one thread), made on first use and released when the thread ends.  ``GPUCONV_BACKEND``
chooses it: ``egl`` (default) or ``glfw`` for a native context, ``browser`` for WebGL2,
``webgpu`` for WebGPU natively (wgpu-py).
"""

from __future__ import annotations

import os
import threading
from typing import Any, List, Optional

from ..limits import Limits
from .base import BaseRuntime, GLUnavailableError
from .native import (
    BACKEND_ENV,
    GL_PACKAGES,
    LLVMClashError,
    NativeRuntime,
    Runtime,
    clash_message,
    create_context,
    llvm_clash,
)
from .webgpu import VULKAN_PACKAGES, WebGPUError, WebGPURuntime
from .worker import WorkerRuntime

__all__ = ["BaseRuntime", "NativeRuntime", "WorkerRuntime", "LLVMClashError", "llvm_clash", "Runtime",
           "GLUnavailableError", "Limits", "get_runtime", "use_context", "set_runtime", "create_context",
           "make_runtime", "RUNTIME_KINDS", "GL_PACKAGES", "BACKEND_ENV", "default_runtime", "WebGPURuntime",
           "WebGPUError", "VULKAN_PACKAGES"]

#: Set to 1 to run the default native runtime in a worker process (for programs that import
#: TensorFlow or JAX after gpuconv's first draw: their LLVM clashes with Mesa's).
WORKER_ENV = "GPUCONV_WORKER"

#: The values GPUCONV_BACKEND may take.
BACKENDS = ("egl", "glfw", "browser", "webgpu")


class _ThreadDefaults:
    """One thread's default runtime, and the runtimes gpuconv made for it, released when it ends.

    Python drops a thread's ``threading.local`` values in that thread as it exits, so
    each GL context is destroyed by the thread it is current in (another thread could
    not release it: an EGL context current in a dead thread is never freed).  A default
    that is replaced (:func:`use_context`, :func:`set_runtime`) is kept until then, since
    its caller may still hold it.
    """

    def __init__(self) -> None:
        self.current: Optional[BaseRuntime] = None
        self.owned: List[BaseRuntime] = []

    def __del__(self) -> None:
        for runtime in self.owned:
            try:
                runtime.release()
            except Exception:  # at interpreter exit the GL library may be gone already
                pass


_defaults = threading.local()


#: ``--backend`` values of the command line: where programs run.
RUNTIME_KINDS = ("native", "browser", "webgpu")


def make_runtime(kind: str = "native", *, gl: Optional[str] = None, **options: Any) -> BaseRuntime:
    """A new runtime: ``kind`` ``"native"`` (moderngl; ``gl`` is the context backend, ``"egl"``
    or ``"glfw"``), ``"browser"`` (headless Chromium; ``gl`` is ``"angle-egl"`` or
    ``"swiftshader"``; ``api="webgpu"`` runs the WebGPU target there instead of WebGL2) or
    ``"webgpu"`` (wgpu-py; ``gl`` is the power preference, ``"high-performance"`` or
    ``"low-power"``).  A native runtime with ``driver=`` (``"softpipe"``, ``"zink"``,
    ``"llvmpipe"``: Mesa's drivers, :data:`gpuconv.runtimes.worker.DRIVERS`) is a
    :class:`WorkerRuntime` whose process opens EGL with that driver.  ``options`` go to the runtime
    (``max_draw_buffers=``, ...)."""
    if kind == "browser":
        from .browser import BrowserRuntime

        return BrowserRuntime(gl=gl or "angle-egl", **options)
    if kind == "native":
        if options.get("driver") is not None:  # another Mesa driver: chosen in a worker's environment
            return WorkerRuntime(backend=gl, **options)
        options.pop("driver", None)
        return NativeRuntime(backend=gl, **options)
    if kind == "webgpu":
        return WebGPURuntime(gl or "high-performance", **options)
    raise ValueError(f"backend must be one of {', '.join(map(repr, RUNTIME_KINDS))}, got {kind!r}")


def default_runtime() -> BaseRuntime:
    """A new runtime of the kind ``GPUCONV_BACKEND`` names (native EGL by default)."""
    backend = os.environ.get(BACKEND_ENV) or None
    if backend is not None and backend not in BACKENDS:
        raise ValueError(f"{BACKEND_ENV} must be one of {', '.join(map(repr, BACKENDS))}, got {backend!r}")
    if backend in ("browser", "webgpu"):
        return make_runtime(backend)
    clash = llvm_clash()  # before any context: even creating one leaves Mesa crashing at exit
    if clash:
        return _worker_instead(clash_message(clash), backend)
    if os.environ.get(WORKER_ENV, "0") not in ("", "0"):
        return WorkerRuntime(backend=backend)
    return NativeRuntime(backend=backend)


def _worker_instead(reason: str, backend: Optional[str]) -> BaseRuntime:
    import warnings

    warnings.warn(f"gpuconv: {reason.split(';')[0]}; running gpuconv's GL work in a worker process "
                  f"(same results)", RuntimeWarning, stacklevel=3)
    return WorkerRuntime(backend=backend)


def _thread_defaults() -> _ThreadDefaults:
    holder: Optional[_ThreadDefaults] = getattr(_defaults, "holder", None)
    if holder is None:
        holder = _defaults.holder = _ThreadDefaults()
    return holder


def get_runtime() -> BaseRuntime:
    """This thread's default runtime, created on first use (headless EGL unless
    ``GPUCONV_BACKEND`` says otherwise) and released when the thread ends."""
    holder = _thread_defaults()
    if holder.current is None or getattr(holder.current, "_released", False):
        holder.current = default_runtime()
        holder.owned = [r for r in holder.owned if not getattr(r, "_released", False)] + [holder.current]
    return holder.current


def set_runtime(runtime: Optional[BaseRuntime]) -> None:
    """Make ``runtime`` this thread's default (``None``: forget it; the next call makes a new one).
    A runtime set here is yours: gpuconv does not release it."""
    _thread_defaults().current = runtime


def use_context(context: Any) -> NativeRuntime:
    """Make gpuconv run on an existing moderngl ``context`` in this thread from now on.

    gpuconv draws into framebuffers of its own and restores the framebuffer binding
    and the viewport it changed; it leaves its textures bound to units 0..n-1 and its
    program current (moderngl binds what each of your render calls needs anyway).
    The context stays yours: gpuconv never releases it.
    """
    runtime = NativeRuntime(context)
    holder = _thread_defaults()
    holder.current = runtime
    holder.owned.append(runtime)  # its programs are released with the thread; the context is yours
    return runtime
