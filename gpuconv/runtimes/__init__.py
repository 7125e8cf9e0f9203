"""Where programs run: the runtime interface, its implementations and each thread's default.

* :class:`BaseRuntime` (:mod:`.base`): compile, upload, draw, read back, free;
* :class:`NativeRuntime` (:mod:`.native`): moderngl in this process (EGL by default);
* ``BrowserRuntime`` (:mod:`.browser`): WebGL2 in headless Chromium, driven by Playwright.

:func:`get_runtime` gives each thread its own default runtime (GL contexts belong to
one thread), made on first use and released when the thread ends.  ``GPUCONV_BACKEND``
chooses it: ``egl`` (default) or ``glfw`` for a native context, ``browser`` for WebGL2.
"""

from __future__ import annotations

import os
import threading
from typing import Any, Optional

from ..limits import Limits
from .base import BaseRuntime, GLUnavailableError
from .native import BACKEND_ENV, GL_PACKAGES, NativeRuntime, Runtime, create_context

__all__ = ["BaseRuntime", "NativeRuntime", "Runtime", "GLUnavailableError", "Limits", "get_runtime",
           "use_context", "set_runtime", "create_context", "make_runtime", "RUNTIME_KINDS", "GL_PACKAGES", "BACKEND_ENV", "default_runtime"]

#: The values GPUCONV_BACKEND may take.
BACKENDS = ("egl", "glfw", "browser")


class _ThreadDefault:
    """Holds one thread's default runtime and releases it when the thread ends.

    Python drops a thread's ``threading.local`` values in that thread as it exits, so
    the GL context is destroyed by the thread it is current in (another thread could
    not release it: an EGL context current in a dead thread is never freed).
    """

    def __init__(self, runtime: BaseRuntime, owned: bool):
        self.runtime = runtime
        self.owned = owned

    def __del__(self) -> None:
        if self.owned:
            try:
                self.runtime.release()
            except Exception:  # at interpreter exit the GL library may be gone already
                pass


_defaults = threading.local()


#: ``--backend`` values of the command line: where programs run.
RUNTIME_KINDS = ("native", "browser")


def make_runtime(kind: str = "native", *, gl: Optional[str] = None, **options: Any) -> BaseRuntime:
    """A new runtime: ``kind`` ``"native"`` (moderngl; ``gl`` is the context backend, ``"egl"``
    or ``"glfw"``) or ``"browser"`` (headless Chromium; ``gl`` is ``"angle-egl"`` or
    ``"swiftshader"``).  ``options`` go to the runtime (``max_draw_buffers=``, ...)."""
    if kind == "browser":
        from .browser import BrowserRuntime

        return BrowserRuntime(gl=gl or "angle-egl", **options)
    if kind == "native":
        return NativeRuntime(backend=gl, **options)
    raise ValueError(f"backend must be one of {', '.join(map(repr, RUNTIME_KINDS))}, got {kind!r}")


def default_runtime() -> BaseRuntime:
    """A new runtime of the kind ``GPUCONV_BACKEND`` names (native EGL by default)."""
    backend = os.environ.get(BACKEND_ENV) or None
    if backend is not None and backend not in BACKENDS:
        raise ValueError(f"{BACKEND_ENV} must be one of {', '.join(map(repr, BACKENDS))}, got {backend!r}")
    if backend == "browser":
        return make_runtime("browser")
    return NativeRuntime(backend=backend)


def get_runtime() -> BaseRuntime:
    """This thread's default runtime, created on first use (headless EGL unless
    ``GPUCONV_BACKEND`` says otherwise) and released when the thread ends."""
    holder: Optional[_ThreadDefault] = getattr(_defaults, "holder", None)
    if holder is None or getattr(holder.runtime, "_released", False):
        holder = _defaults.holder = _ThreadDefault(default_runtime(), owned=True)
    return holder.runtime


def set_runtime(runtime: Optional[BaseRuntime]) -> None:
    """Make ``runtime`` this thread's default (``None``: forget it; the next call makes a new one).
    A runtime set here is yours: gpuconv does not release it."""
    _defaults.holder = None if runtime is None else _ThreadDefault(runtime, owned=False)


def use_context(context: Any) -> NativeRuntime:
    """Make gpuconv run on an existing moderngl ``context`` in this thread from now on.

    gpuconv draws into framebuffers of its own and restores the framebuffer binding
    and the viewport it changed; it leaves its textures bound to units 0..n-1 and its
    program current (moderngl binds what each of your render calls needs anyway).
    The context stays yours: gpuconv never releases it.
    """
    runtime = NativeRuntime(context)
    _defaults.holder = _ThreadDefault(runtime, owned=True)  # its programs; the context is not its own
    return runtime
