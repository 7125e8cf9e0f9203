"""The native runtime: OpenGL through moderngl, in this process.

A :class:`NativeRuntime` wraps one moderngl context.  By default it is a headless EGL
context (Mesa's llvmpipe on a machine without a GPU, the vendor's driver on one
with a GPU); an existing moderngl context can be passed in instead, and a hidden
GLFW window is tried when EGL is not available.  Textures are released by the plan
that made them (:meth:`~NativeRuntime.free`); compiled programs are kept in a bounded
LRU cache, keyed by the program's source key.  Freed textures go to a bounded pool
(:attr:`~NativeRuntime.POOL_BYTES`, keyed by size, components and texel type) that
later uploads and draws take from: making a new texture costs more than the draw into
it (llvmpipe clears every new one).  :meth:`~NativeRuntime.release` frees the programs,
the pool and, for a context it created itself, the context (and GLFW window).
"""

from __future__ import annotations

import ctypes
import functools
import os
import sys
import threading
import time
from collections import OrderedDict
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Tuple, TypeVar

import numpy as np

from .. import codegen
from ..layout import InputLayout, Layout
from ..limits import Limits
from ..plan import Plan
from ..programs import LLVMPIPE_LOOP_LIMIT, Drawable, Program
from ..storage import check_storage
from .base import BaseRuntime, GLUnavailableError

#: Debian/Ubuntu packages that provide headless GL (Mesa's EGL and the llvmpipe driver).
GL_PACKAGES = "libegl1 libegl-mesa0 libgl1 libgl1-mesa-dri"

#: Where to choose the default runtime: "egl" (default) or "glfw" (native contexts), "browser".
BACKEND_ENV = "GPUCONV_BACKEND"


def _install_hint(errors: Mapping[str, str]) -> str:
    details = "; ".join(f"{name}: {text.strip().splitlines()[-1] if text.strip() else text}"
                        for name, text in errors.items())
    joined = " ".join(errors.values())
    if list(errors) == ["glfw"] and "glfw package is not installed" in joined:
        return (f"gpuconv could not create an OpenGL context: the glfw package is not installed: "
                f"pip install 'gpuconv[glfw]' (or unset {BACKEND_ENV} to use headless EGL). Details: {details}")
    if "libEGL" in joined and "not loaded" in joined:
        missing = "the EGL loader (libEGL.so.1) is missing"
    elif "0 devices" in joined:
        missing = "no EGL vendor library is installed (Mesa's libegl-mesa0)"
    elif "swrast" in joined or "eglInitialize" in joined or "MESA-LOADER" in joined:
        missing = "Mesa's DRI driver (swrast/llvmpipe) is missing"
    else:
        missing = "no OpenGL 3.3+ driver could be opened"
    return (
        f"gpuconv could not create an OpenGL context: {missing}. "
        f"On Debian/Ubuntu install Mesa's headless drivers with "
        f"'apt-get install --no-install-recommends {GL_PACKAGES}' "
        f"(they include the llvmpipe CPU renderer; a GPU's own EGL driver works too). "
        f"Details: {details}"
    )


def _egl_context() -> Any:
    import moderngl

    return moderngl.create_standalone_context(require=330, backend="egl")  # type: ignore[arg-type]


#: Shared libraries that bundle their own LLVM, whose symbols then take the place of the ones
#: Mesa's llvmpipe needs: its first draw crashes the process (seen with TensorFlow 2.21).
LLVM_CLASHES = {"libtensorflow_framework": "TensorFlow", "_pywrap_tensorflow_internal": "TensorFlow",
                "xla_extension": "JAX (jaxlib)"}


def llvm_clash() -> Optional[str]:
    """The library loaded in this process whose LLVM clashes with Mesa's, or ``None``."""
    if not any(name in sys.modules for name in ("tensorflow", "jaxlib", "jax")):
        return None  # the usual case, without reading the memory map
    try:
        with open("/proc/self/maps") as maps:
            text = maps.read()
    except OSError:  # no /proc: look at what Python imported
        text = " ".join(name for name in ("tensorflow", "jaxlib") if name in sys.modules)
        text = text.replace("tensorflow", "libtensorflow_framework").replace("jaxlib", "xla_extension")
    for marker, owner in LLVM_CLASHES.items():
        if marker in text:
            return f"{owner} ({marker})"
    return None


class _ClashGuard:
    """Refuses ``import tensorflow`` (or jax) once Mesa is loaded in this process.

    The other order crashes too, and inside TensorFlow's own import (a segmentation
    fault before any of its code returns), so gpuconv cannot switch to a worker then;
    a clear ImportError is the best it can do.  Installed on ``sys.meta_path`` when the
    first Mesa context is made here.
    """

    PACKAGES = ("tensorflow", "jax", "jaxlib")

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name in self.PACKAGES:
            raise ImportError(
                f"gpuconv: importing {name} after gpuconv has drawn with Mesa's llvmpipe in this "
                f"process would crash it ({name}'s bundled LLVM clashes with Mesa's). Import {name} "
                f"before gpuconv's first call (gpuconv then runs its GL work in a worker process), "
                f"or set GPUCONV_WORKER=1 to always run it in a worker", name=name)
        return None


def _guard_imports() -> None:
    if not any(isinstance(finder, _ClashGuard) for finder in sys.meta_path):
        sys.meta_path.insert(0, _ClashGuard())


class LLVMClashError(GLUnavailableError):
    """Mesa's llvmpipe cannot draw in this process: another library's LLVM is loaded."""


def clash_message(clash: str) -> str:
    return (f"{clash} is loaded in this process, and its bundled LLVM crashes Mesa's llvmpipe at "
            f"the first draw; gpuconv.get_runtime() runs gpuconv's GL work in a worker process in "
            f"that case (or create one yourself: gpuconv.WorkerRuntime())")


def _is_mesa(ctx: Any) -> bool:
    return "Mesa" in str(ctx.info.get("GL_VERSION", "")) or "llvmpipe" in str(ctx.info.get("GL_RENDERER", ""))


_EGL_DRAW, _EGL_READ = 0x3059, 0x305A


@functools.lru_cache(maxsize=1)
def _libegl() -> Any:
    """libEGL through ctypes, or ``None`` where there is none."""
    try:
        egl = ctypes.CDLL("libEGL.so.1")
    except OSError:
        return None
    for name in ("eglGetCurrentDisplay", "eglGetCurrentContext", "eglGetCurrentSurface"):
        getattr(egl, name).restype = ctypes.c_void_p
    egl.eglGetCurrentSurface.argtypes = [ctypes.c_int]
    egl.eglMakeCurrent.argtypes = [ctypes.c_void_p] * 4
    egl.eglMakeCurrent.restype = ctypes.c_uint
    return egl


_EGLState = Tuple[Optional[int], Optional[int], Optional[int], Optional[int]]  # display, draw, read, context


def _egl_state() -> _EGLState:
    egl = _libegl()
    if egl is None:
        return (None, None, None, None)
    return (egl.eglGetCurrentDisplay(), egl.eglGetCurrentSurface(_EGL_DRAW),
            egl.eglGetCurrentSurface(_EGL_READ), egl.eglGetCurrentContext())


class _EGLCurrent:
    """Makes one EGL context current around gpuconv's calls, then the caller's again.

    moderngl makes no context current by itself, so with two contexts in one thread the
    calls meant for the first reached the one made last (silently wrong results); and
    moderngl's own ``with ctx:`` leaves no context current afterwards, which would break a
    caller's context given to :func:`gpuconv.use_context`.  Made from the thread where the
    context is current (right after it is created, or the caller's own).
    """

    def __init__(self) -> None:
        self.state = _egl_state()
        self._saved: List[Optional[_EGLState]] = []

    @property
    def usable(self) -> bool:
        return self.state[3] is not None

    def __enter__(self) -> None:
        # The usual case (ours already current) asks EGL one question, not four: each is a
        # ctypes call, and every runtime call comes through here (~10 us a call on llvmpipe)
        if not self.usable or _libegl().eglGetCurrentContext() == self.state[3]:
            self._saved.append(None)  # already current: nothing to do
            return
        current = _egl_state()
        self._saved.append(current)
        display, draw, read, context = self.state
        _libegl().eglMakeCurrent(display, draw, read, context)

    def __exit__(self, *exc: object) -> None:
        saved = self._saved.pop()
        if saved is not None and saved[3] is not None:  # the caller had a context current: theirs again
            _libegl().eglMakeCurrent(*saved)

    def unbind(self) -> None:
        """Make no context current: EGL destroys a context only once no thread has it current,
        and glcontext's release leaves it current, so a thread that ended with its context
        released still held ~6 MiB (Mesa's per-context state) for the life of the process."""
        if self.usable and _egl_state()[3] == self.state[3]:
            _libegl().eglMakeCurrent(self.state[0], None, None, None)


def _glfw_context() -> Any:
    """A moderngl context in a hidden GLFW window (needs a display)."""
    try:
        import glfw
    except ImportError as exc:  # optional dependency
        raise RuntimeError("the glfw package is not installed (pip install 'gpuconv[glfw]')") from exc
    import moderngl

    if not glfw.init():
        raise RuntimeError("glfw.init() failed (no display?)")
    glfw.window_hint(glfw.VISIBLE, glfw.FALSE)
    glfw.window_hint(glfw.CONTEXT_VERSION_MAJOR, 3)
    glfw.window_hint(glfw.CONTEXT_VERSION_MINOR, 3)
    glfw.window_hint(glfw.OPENGL_PROFILE, glfw.OPENGL_CORE_PROFILE)
    glfw.window_hint(glfw.OPENGL_FORWARD_COMPAT, True)
    window = glfw.create_window(16, 16, "gpuconv", None, None)
    if not window:
        glfw.terminate()
        raise RuntimeError("glfw could not create a hidden window with an OpenGL 3.3 core context")
    glfw.make_context_current(window)
    ctx = moderngl.create_context(require=330)
    # Destroyed with the context by NativeRuntime.release().  setattr, not an assignment:
    # moderngl.Context declares no such attribute, so mypy would reject one.
    setattr(ctx, "_gpuconv_glfw_window", window)  # noqa: B010
    return ctx


_BACKENDS = {"egl": _egl_context, "glfw": _glfw_context}


def create_context(backend: Optional[str] = None) -> Tuple[Any, str]:
    """A new moderngl context; returns ``(context, backend_name)``.

    ``backend`` is ``"egl"``, ``"glfw"`` or ``None`` (the ``GPUCONV_BACKEND``
    environment variable when it names a native backend, else EGL with GLFW as a fallback).
    """
    if backend is None:
        backend = os.environ.get(BACKEND_ENV) or None
        if backend in ("browser", "webgpu"):  # the default runtime is another; a native context was asked for
            backend = None
    if backend is not None and backend not in _BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(map(repr, _BACKENDS))}, got {backend!r}")
    order = [backend] if backend else ["egl", "glfw"]
    errors: Dict[str, str] = {}
    for name in order:
        try:
            return _BACKENDS[name](), name
        except Exception as exc:  # each backend fails in its own way; report them all
            errors[name] = f"{type(exc).__name__}: {exc}"
    raise GLUnavailableError(_install_hint(errors))


_Method = TypeVar("_Method", bound=Callable[..., Any])


def _current(method: _Method) -> _Method:
    """Run ``method`` with this runtime's context current (and the caller's current again after)."""
    @functools.wraps(method)
    def wrapper(self: "NativeRuntime", *args: Any, **kwargs: Any) -> Any:
        self._check_usable()
        with self._egl:
            return method(self, *args, **kwargs)
    return wrapper  # type: ignore[return-value]


#: The texel type of each storage (moderngl's dtype is its ``str`` without the byte order).
_TEXTURE_DTYPES: Dict[str, np.dtype] = {"float32": np.dtype("<f4"), "float16": np.dtype("<f2")}

#: A pool key: cols, rows, components, moderngl dtype ("f4", "f2").
_PoolKey = Tuple[int, int, int, str]

# A quad covering clip space, drawn as a triangle strip.
_QUAD = np.array([-1, -1, 1, -1, -1, 1, 1, 1], dtype="f4")


class NativeRuntime(BaseRuntime):
    """One moderngl context and what gpuconv keeps in it (compiled programs).

    ``context`` is a moderngl context of yours (gpuconv restores the viewport and the
    framebuffer binding it changes; see :func:`gpuconv.use_context`) or ``None`` for a
    new headless one (``backend``: ``"egl"``, ``"glfw"``).  ``max_texture_size`` and
    ``max_draw_buffers`` emulate a smaller device.  ``storage``: how the ops store textures
    here unless an op's ``storage=`` says otherwise ("float32", or "float16": R16F/RGBA16F,
    as TF.js on phones without float32 render targets; refused where the driver cannot
    render to them).  Use it from the thread that created
    it: moderngl contexts are bound to one thread, and another thread's call is refused.
    """

    kind = "native"

    #: Compiled programs kept at most (least recently used ones are released).  llvmpipe
    #: holds about 2 MiB of machine code per program, so 64 programs cost ~130 MiB; the
    #: packed programs are shape-generic, so a working set rarely needs more.
    PROGRAM_CACHE_SIZE = 64
    #: Bytes of freed textures kept for reuse at most (least recently freed ones beyond it are
    #: released).  On llvmpipe drawing into 8 new 448x112 RGBA32F textures took ~9.9 ms against
    #: ~2.6 ms into reused ones (a new texture is allocated and zero-filled); on the benchmark's
    #: smaller layers the difference is within the noise.  0 turns pooling off.
    POOL_BYTES = 256 << 20

    def __init__(self, context: Any = None, backend: Optional[str] = None, *,
                 max_texture_size: Optional[int] = None, max_draw_buffers: Optional[int] = None,
                 storage: str = "float32"):
        self.storage = check_storage(storage)
        self.owns_context = context is None
        callers = _egl_state()  # a new context is made current: the caller's comes back below
        if context is None:
            clash = llvm_clash()
            if clash:  # refuse before Mesa is even loaded: a context made now crashes at exit
                raise LLVMClashError(clash_message(clash))
            context, backend = create_context(backend)
        self.ctx = context
        self._egl = _EGLCurrent()  # the context is current now: remember it
        try:
            self._setup(backend, max_texture_size, max_draw_buffers)
            if self.storage == "float16":
                self._require_half_targets()
        except BaseException:
            if self.owns_context:  # refused (limits, float targets): give the context back
                self._egl.unbind()
                self.ctx.release()
            raise
        finally:
            if self.owns_context and callers[3] is not None and callers[3] != self._egl.state[3]:
                _libegl().eglMakeCurrent(*callers)

    def _setup(self, backend: Optional[str], max_texture_size: Optional[int],
               max_draw_buffers: Optional[int]) -> None:
        self.backend = backend or "external"
        self.thread_id = threading.get_ident()
        self.device_max_texture_size = int(self.ctx.info["GL_MAX_TEXTURE_SIZE"])
        self.device_max_draw_buffers = int(self.ctx.info["GL_MAX_DRAW_BUFFERS"])
        self.limits = Limits.capped(self.device_max_texture_size, self.device_max_draw_buffers,
                                    max_texture_size, max_draw_buffers)
        self._programs: "OrderedDict[object, Tuple[Any, Any]]" = OrderedDict()  # by source key
        self._uniform_members: Dict[int, Dict[str, Any]] = {}  # id(program) -> its uniforms by name
        self._uniforms_set: Dict[int, Dict[str, Any]] = {}  # id(program) -> the uniforms its last draw set
        # Freed textures kept for reuse: by (cols, rows, components, dtype), and all of them in the
        # order they were freed (id(texture) -> (key, texture, bytes)) for the LRU bound.
        self._pool: Dict[_PoolKey, List[Any]] = {}
        self._pool_order: "OrderedDict[int, Tuple[_PoolKey, Any, int]]" = OrderedDict()
        self._pool_bytes = 0
        self._quad = self.ctx.buffer(_QUAD.tobytes())
        self._timer: Any = None  # a GL timer query, made by the first profiled draw
        self._released = False
        self._half_targets: Optional[str] = None  # "" once R16F rendering worked, else why not
        self._mesa = _is_mesa(self.ctx)
        if self._mesa:
            _guard_imports()
        if "llvmpipe" in str(self.ctx.info["GL_RENDERER"]):
            self.max_loop_iterations = LLVMPIPE_LOOP_LIMIT
        self._check_float_targets()

    # -- facts -----------------------------------------------------------------
    def info(self) -> Dict[str, object]:
        """The renderer, vendor and GL version, the device's limits and those the programs use."""
        return {
            "runtime": self.kind,
            "renderer": self.ctx.info["GL_RENDERER"],
            "vendor": self.ctx.info["GL_VENDOR"],
            "version": self.ctx.info["GL_VERSION"],
            "glsl": "ES 3.00 (#version 300 es)",
            "backend": self.backend,
            "max_texture_size": self.device_max_texture_size,
            "layout_texture_size": self.max_texture_size,
            "max_draw_buffers": self.device_max_draw_buffers,
            "program_draw_buffers": self.max_draw_buffers,
            "max_texture_image_units": int(self.ctx.info["GL_MAX_TEXTURE_IMAGE_UNITS"]),
            "cached_programs": len(self._programs),
            "pooled_textures": self.pooled_textures,
            "pooled_bytes": self._pool_bytes,
            "pool_bytes_limit": self.POOL_BYTES,
            "max_loop_iterations": self.max_loop_iterations,
            "storage": self.storage,
        }

    def _check_usable(self) -> None:
        if self._released:
            raise RuntimeError("this gpuconv runtime has been released; create a new one (gpuconv.Runtime())")
        if threading.get_ident() != self.thread_id:
            raise RuntimeError(
                "this gpuconv Runtime's GL context belongs to the thread that created it; "
                "create a Runtime in this thread (gpuconv.Runtime()) or call from the creating thread"
            )

    def _check_float_targets(self) -> None:
        texture = self.ctx.texture((1, 1), 1, dtype="f4")
        try:
            fbo = self.ctx.framebuffer(color_attachments=[texture])
            fbo.release()
        except Exception as exc:
            raise GLUnavailableError(
                f"the GL driver ({self.ctx.info['GL_RENDERER']}) cannot render to float32 (R32F) "
                f"textures, which gpuconv needs; use Mesa's llvmpipe "
                f"('apt-get install {GL_PACKAGES}') or a GPU driver with OpenGL 3.3+ ({exc})"
            ) from exc
        finally:
            texture.release()

    def _require_half_targets(self) -> None:
        """Refuse float16 storage where the driver cannot render to R16F (checked once)."""
        if self._half_targets is None:
            texture = self.ctx.texture((1, 1), 1, dtype="f2")
            try:
                fbo = self.ctx.framebuffer(color_attachments=[texture])
                fbo.release()
                self._half_targets = ""
            except Exception as exc:
                self._half_targets = str(exc) or type(exc).__name__
            finally:
                texture.release()
        if self._half_targets:
            raise GLUnavailableError(
                f"storage='float16': the GL driver ({self.ctx.info['GL_RENDERER']}) cannot render to "
                f"half-float (R16F) textures ({self._half_targets}); use storage='float32'")

    def require_storage(self, storage: str) -> str:
        check_storage(storage)
        if storage == "float16":
            self._check_usable()
            with self._egl:
                self._require_half_targets()
        return storage

    # -- textures --------------------------------------------------------------
    @property
    def pooled_textures(self) -> int:
        """Freed textures kept for reuse (still GL objects: :meth:`release` releases them)."""
        return len(self._pool_order)

    @property
    def pooled_bytes(self) -> int:
        """The bytes of :attr:`pooled_textures` (at most :attr:`POOL_BYTES`)."""
        return self._pool_bytes

    def _take(self, cols: int, rows: int, components: int, dtype: str) -> Any:
        """A pooled texture of this size and format, or a new one (nearest filtering)."""
        stack = self._pool.get((cols, rows, components, dtype))
        if stack:
            texture = stack.pop()
            _, _, size = self._pool_order.pop(id(texture))
            self._pool_bytes -= size
            return texture
        texture = self.ctx.texture((cols, rows), components, dtype=dtype)
        texture.filter = (self.ctx.NEAREST, self.ctx.NEAREST)  # a chained program samples it: never filtered
        return texture

    def _pool_put(self, texture: Any) -> None:
        if id(texture) in self._pool_order:
            return  # freed twice (views of one Tensor): pooled once
        cols, rows = texture.size
        components, dtype = texture.components, texture.dtype
        size = cols * rows * components * _TEXTURE_DTYPES["float16" if dtype == "f2" else "float32"].itemsize
        if size > self.POOL_BYTES:
            texture.release()
            return
        key = (cols, rows, components, dtype)
        self._pool.setdefault(key, []).append(texture)
        self._pool_order[id(texture)] = (key, texture, size)
        self._pool_bytes += size
        while self._pool_bytes > self.POOL_BYTES:
            _, (old_key, old, old_size) = self._pool_order.popitem(last=False)
            self._pool[old_key].remove(old)
            self._pool_bytes -= old_size
            old.release()

    def _empty_pool(self) -> None:
        for _, texture, _ in self._pool_order.values():
            texture.release()
        self._pool.clear()
        self._pool_order.clear()
        self._pool_bytes = 0

    @_current
    def upload(self, array: np.ndarray, layout: InputLayout, storage: str = "float32") -> Any:
        if tuple(array.shape) != tuple(layout.shape):
            raise ValueError(f"array of shape {array.shape} does not match layout {layout.shape}")
        dtype = _TEXTURE_DTYPES[check_storage(storage)]
        if storage == "float16":
            self._require_half_targets()
        texels = np.asarray(layout.pack(array), dtype=np.float32)
        if storage == "float16":  # (np.errstate costs a few microseconds: only where it is needed)
            with np.errstate(over="ignore"):  # beyond 65504 a half is infinity, as the GPU stores it
                texels = texels.astype(dtype)
        texels = np.ascontiguousarray(texels)
        texture = self._take(layout.cols, layout.rows, layout.components, dtype.str[1:])
        texture.write(texels.tobytes())
        self._count_made([texture], [layout], storage)
        return texture

    @_current
    def read(self, texture: Any, layout: Layout) -> np.ndarray:
        dtype = np.float16 if texture.dtype == "f2" else np.float32  # as the texture stores them
        data = np.frombuffer(texture.read(), dtype=dtype).astype(np.float32, copy=False)
        return data.reshape(layout.rows, layout.cols, layout.components)

    @_current
    def free(self, textures: Iterable[Any]) -> None:
        """Return the textures to the pool (a texture this runtime does not count as live, or
        the pool being off, releases it)."""
        textures = list(textures)
        live = self.__dict__.get("_live_textures", {})
        for texture in textures:
            if id(texture) in self._pool_order:
                continue
            if self.POOL_BYTES > 0 and id(texture) in live:
                self._pool_put(texture)
            else:
                texture.release()
        self._count_freed(textures)

    # -- programs --------------------------------------------------------------
    def program(self, spec: Drawable) -> Tuple[Any, Any]:
        """The compiled program and its vertex array for ``spec`` (compiled once per source)."""
        key = spec.source_key()
        cached = self._programs.get(key)
        if cached is not None:
            self._programs.move_to_end(key)
            return cached
        if self._mesa:  # llvmpipe compiles at the first draw: refuse before it would crash
            clash = llvm_clash()
            if clash:
                raise LLVMClashError(clash_message(clash))
        program = self.ctx.program(vertex_shader=codegen.vertex_source(),
                                   fragment_shader=codegen.fragment_source(spec))
        self.compiled_programs += 1
        for unit, name in enumerate(spec.variable_names):
            if name in program:  # the GLSL compiler may drop an unused sampler
                program[name].value = unit
        vao = self.ctx.vertex_array(program, [(self._quad, "2f", "clipSpacePos")])
        # Its uniforms by name, looked up once: `name in program` walks all its members.
        import moderngl

        self._uniform_members[id(program)] = {name: program[name] for name in program
                                              if isinstance(program[name], moderngl.Uniform)}
        self._programs[key] = cached = (program, vao)
        if len(self._programs) > self.PROGRAM_CACHE_SIZE:
            _, (old_program, old_vao) = self._programs.popitem(last=False)
            self._uniform_members.pop(id(old_program), None)
            self._uniforms_set.pop(id(old_program), None)
            old_vao.release()
            old_program.release()
        return cached

    @_current
    def compile(self, programs: Iterable[Drawable]) -> int:
        """Link each program (moderngl compiles one at a time; llvmpipe makes its machine code
        at the first draw)."""
        before = self.compiled_programs
        for spec in programs:
            self.program(spec)
        return self.compiled_programs - before

    @_current
    def draw(self, program: Drawable, inputs: Mapping[str, Any], storage: str = "float32") -> List[Any]:
        spec = program
        dtype = _TEXTURE_DTYPES[check_storage(storage)].str[1:]
        if storage == "float16":
            self._require_half_targets()
        self._check_draw(spec, inputs, self.device_max_draw_buffers)
        compiled, vao = self.program(spec)
        # A program keeps its uniforms: a draw of the same sizes as its last (a warm call's; a
        # cached spec even hands back the same dict) sets none, each set being a few Python calls
        values = spec.uniforms
        last = self._uniforms_set.get(id(compiled))
        if last is not values and last != values:
            members = self._uniform_members[id(compiled)]
            for name, value in values.items():
                member = members.get(name)
                if member is not None:  # the GLSL compiler may drop an unused one
                    member.value = value
            self._uniforms_set[id(compiled)] = values
        outputs = [self._take(layout.cols, layout.rows, layout.components, dtype)
                   for layout in spec.output_layouts]
        # The caller's state, restored below: a context of the user's must look untouched.
        bound, viewport = self.ctx.fbo, self.ctx.viewport
        fbo = None
        try:
            fbo = self.ctx.framebuffer(color_attachments=outputs)
            for unit, name in enumerate(spec.variable_names):
                inputs[name].use(location=unit)
            fbo.use()
            layout = spec.output_layouts[0]
            self.ctx.viewport = (0, 0, layout.cols, layout.rows)
            vao.render(mode=self.ctx.TRIANGLE_STRIP)
        except Exception:
            for output in outputs:
                if self.POOL_BYTES > 0:
                    self._pool_put(output)
                else:
                    output.release()
            raise
        finally:
            if bound is not None:
                bound.use()
            else:  # a standalone context binds nothing until asked; deleting ours rebinds 0
                self.ctx.fbo = None
            self.ctx.viewport = viewport
            if fbo is not None:
                fbo.release()
        self._count_made(outputs, spec.output_layouts, storage)
        return outputs

    @_current
    def timed_draw(self, program: Program, inputs: Mapping[str, Any],
                   storage: str = "float32") -> Tuple[List[Any], float, str]:
        """:meth:`draw`, timed by a GL timer query (``GL_TIME_ELAPSED``) where the driver has one."""
        if self._timer is None:
            try:
                self._timer = self.ctx.query(time=True)
            except Exception:  # no GL_ARB_timer_query: wall time, synchronized
                self._timer = False
        if not self._timer:
            return super().timed_draw(program, inputs, storage)
        start = time.perf_counter()
        with self._timer:
            outputs = self.draw(program, inputs, storage)
        elapsed = self._timer.elapsed
        if elapsed >= 0xFFFFFFFF:  # moderngl reads the query as 32 bits: 4.29 s at most
            self.ctx.finish()
            return outputs, time.perf_counter() - start, "synchronized wall time"
        return outputs, elapsed / 1e9, "GL timer query"

    @_current
    def run(self, plan: "Plan") -> np.ndarray:
        return plan.execute(self)  # one make-current for the whole plan (the calls nest cheaply)

    @_current
    def run_to_tensor(self, plan: "Plan") -> Any:
        return plan.execute_to_tensor(self)

    @_current
    def finish(self) -> None:
        self.ctx.finish()

    def release(self) -> None:
        """Release the cached programs and gpuconv's own objects; a context this runtime
        created (and its GLFW window) too.  Safe to call twice."""
        if self._released:
            return
        with self._egl:
            for program, vao in self._programs.values():
                vao.release()
                program.release()
            self._programs.clear()
            self._uniform_members.clear()
            self._uniforms_set.clear()
            self._empty_pool()
            self._quad.release()
            self._timer = None  # moderngl's Query has no release(): it goes with the context (one per runtime)
        self._released = True
        if self.owns_context:
            window = getattr(self.ctx, "_gpuconv_glfw_window", None)
            self._egl.unbind()
            self.ctx.release()
            if window is not None:
                import glfw

                glfw.destroy_window(window)


#: The native runtime is gpuconv's default: ``gpuconv.Runtime()`` is a :class:`NativeRuntime`.
Runtime = NativeRuntime
