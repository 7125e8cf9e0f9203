"""Everything that touches OpenGL: the context, textures, the program cache, draws, read-back.

A :class:`Runtime` wraps one moderngl context.  By default it is a headless EGL
context (Mesa's llvmpipe on a machine without a GPU, the vendor's driver on one
with a GPU); an existing moderngl context can be passed in instead, and a hidden
GLFW window is tried when EGL is not available.  Every texture and framebuffer a
call creates is released before the call returns; compiled programs are kept,
keyed by the :class:`~gpuconv.programs.ProgramSpec` that determines their source.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from typing import Dict, Mapping, Optional, Sequence, Tuple

import numpy as np

from . import codegen
from .layout import DEFAULT_MAX_TEXTURE_SIZE

#: Debian/Ubuntu packages that provide headless GL (Mesa's EGL and the llvmpipe driver).
GL_PACKAGES = "libegl1 libegl-mesa0 libgl1 libgl1-mesa-dri"

#: Where to override the context backend: "egl" (default) or "glfw".
BACKEND_ENV = "GPUCONV_BACKEND"


class GLUnavailableError(RuntimeError):
    """No usable OpenGL context could be created; the message says what to install."""


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


def _egl_context():
    import moderngl

    return moderngl.create_standalone_context(require=330, backend="egl")


def _glfw_context():
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
    ctx._gpuconv_glfw_window = window  # keep the window alive as long as the context
    return ctx


_BACKENDS = {"egl": _egl_context, "glfw": _glfw_context}


def create_context(backend: Optional[str] = None):
    """A new moderngl context; returns ``(context, backend_name)``.

    ``backend`` is ``"egl"``, ``"glfw"`` or ``None`` (the ``GPUCONV_BACKEND``
    environment variable, else EGL with GLFW as a fallback).
    """
    backend = backend or os.environ.get(BACKEND_ENV) or None
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


# A quad covering clip space, drawn as a triangle strip.
_QUAD = np.array([-1, -1, 1, -1, -1, 1, 1, 1], dtype="f4")


class Runtime:
    """One GL context and what gpuconv keeps in it (compiled programs).

    Use it from the thread that created it; moderngl contexts are bound to one
    thread, and another thread's call is refused with a clear error.
    """

    #: Compiled programs kept at most (least recently used ones are released).  llvmpipe
    #: holds about 2 MiB of machine code per program, so 64 programs cost ~130 MiB; the
    #: packed programs are shape-generic, so a working set rarely needs more.
    PROGRAM_CACHE_SIZE = 64

    def __init__(self, context=None, backend: Optional[str] = None):
        if context is None:
            context, backend = create_context(backend)
        self.ctx = context
        self.backend = backend or "external"
        self.thread_id = threading.get_ident()
        self.device_max_texture_size = int(self.ctx.info["GL_MAX_TEXTURE_SIZE"])
        #: The texture side the layouts may use: the device's limit, capped at the common
        #: default so that programs are the same on every device.  Tests lower it.
        self.max_texture_size = min(self.device_max_texture_size, DEFAULT_MAX_TEXTURE_SIZE)
        self._programs: "OrderedDict[object, tuple]" = OrderedDict()  # by source key
        self._quad = self.ctx.buffer(_QUAD.tobytes())
        self._check_float_targets()

    # -- facts -----------------------------------------------------------------
    def info(self) -> Dict[str, object]:
        return {
            "renderer": self.ctx.info["GL_RENDERER"],
            "vendor": self.ctx.info["GL_VENDOR"],
            "version": self.ctx.info["GL_VERSION"],
            "glsl": "ES 3.00 (#version 300 es)",
            "backend": self.backend,
            "max_texture_size": self.device_max_texture_size,
            "layout_texture_size": self.max_texture_size,
            "cached_programs": len(self._programs),
        }

    def _check_thread(self) -> None:
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

    # -- textures --------------------------------------------------------------
    def upload(self, array: np.ndarray, layout):
        """A new float texture holding ``array`` (of ``layout.shape``) as ``layout`` lays it out."""
        self._check_thread()
        if tuple(array.shape) != tuple(layout.shape):
            raise ValueError(f"array of shape {array.shape} does not match layout {layout.shape}")
        texels = np.ascontiguousarray(layout.pack(array), dtype=np.float32)
        texture = self.ctx.texture((layout.cols, layout.rows), layout.components, texels.tobytes(), dtype="f4")
        texture.filter = (self.ctx.NEAREST, self.ctx.NEAREST)
        return texture

    def _read(self, texture, layout) -> np.ndarray:
        data = np.frombuffer(texture.read(), dtype=np.float32)
        return data.reshape(layout.rows, layout.cols, layout.components)

    def download(self, textures, spec) -> np.ndarray:
        """The logical result of ``spec`` from its output ``textures``."""
        self._check_thread()
        return spec.assemble([self._read(t, layout) for t, layout in zip(textures, spec.output_layouts)])

    # -- programs --------------------------------------------------------------
    def program(self, spec):
        """The compiled program and its vertex array for ``spec`` (compiled once per source)."""
        key = spec.source_key()
        cached = self._programs.get(key)
        if cached is not None:
            self._programs.move_to_end(key)
            return cached
        program = self.ctx.program(vertex_shader=codegen.vertex_source(),
                                   fragment_shader=codegen.fragment_source(spec))
        for unit, name in enumerate(spec.variable_names):
            if name in program:  # the GLSL compiler may drop an unused sampler
                program[name].value = unit
        vao = self.ctx.vertex_array(program, [(self._quad, "2f", "clipSpacePos")])
        self._programs[key] = cached = (program, vao)
        if len(self._programs) > self.PROGRAM_CACHE_SIZE:
            _, (old_program, old_vao) = self._programs.popitem(last=False)
            old_vao.release()
            old_program.release()
        return cached

    def draw(self, spec, textures: Mapping[str, object]) -> list:
        """Run ``spec`` once over its whole output; returns its new output textures."""
        self._check_thread()
        missing = set(spec.variable_names) - set(textures)
        if missing:
            raise ValueError(f"inputs missing for {spec.name}: {sorted(missing)}")
        program, vao = self.program(spec)
        for name, value in spec.uniforms.items():
            if name in program:
                program[name].value = value
        outputs = [self.ctx.texture((layout.cols, layout.rows), layout.components, dtype="f4")
                   for layout in spec.output_layouts]
        for output in outputs:  # a chained program samples them: nearest, never filtered
            output.filter = (self.ctx.NEAREST, self.ctx.NEAREST)
        fbo = None
        try:
            fbo = self.ctx.framebuffer(color_attachments=outputs)
            for unit, name in enumerate(spec.variable_names):
                textures[name].use(location=unit)
            fbo.use()
            layout = spec.output_layouts[0]
            self.ctx.viewport = (0, 0, layout.cols, layout.rows)
            vao.render(mode=self.ctx.TRIANGLE_STRIP)
        except Exception:
            for output in outputs:
                output.release()
            raise
        finally:
            if fbo is not None:
                fbo.release()
        return outputs

    def run(self, spec, arrays: Mapping[str, np.ndarray]) -> np.ndarray:
        """Upload ``arrays`` (by input name), draw ``spec``, read the result back."""
        return self.run_chain([(spec, arrays)])

    def run_chain(self, steps: Sequence[Tuple[object, Mapping[str, np.ndarray]]]) -> np.ndarray:
        """Run programs one after another; each later program reads the previous outputs.

        A later program's ``chained_inputs`` (``x``, or ``x0..x3`` for a packed
        program) are the previous program's output textures, which stay on the
        GPU; only the last program's outputs are read back.
        """
        textures, previous = [], []
        try:
            for position, (spec, arrays) in enumerate(steps):
                inputs = {}
                if position:
                    before = steps[position - 1][0]
                    wanted = {i.name: i.layout for i in spec.inputs}
                    for name, texture, layout in zip(spec.chained_inputs, previous, before.output_layouts):
                        if getattr(wanted[name], "storage", wanted[name]) != getattr(layout, "storage", layout):
                            raise ValueError(f"{spec.name} expects {name} laid out as {wanted[name]}, "
                                             f"but {before.name} writes {layout}")
                        inputs[name] = texture
                for item in spec.inputs:
                    if item.name not in inputs:
                        inputs[item.name] = self.upload(arrays[item.name], item.layout)
                        textures.append(inputs[item.name])
                previous = self.draw(spec, inputs)
                textures.extend(previous)
            return self.download(previous, steps[-1][0])
        finally:
            for texture in textures:
                texture.release()

    def release(self) -> None:
        """Release the cached programs and the context's own objects."""
        for program, vao in self._programs.values():
            vao.release()
            program.release()
        self._programs.clear()
        self._quad.release()


# GL contexts are bound to a thread, so each thread gets its own default runtime.
_defaults = threading.local()


def get_runtime() -> Runtime:
    """This thread's default runtime, created on first use (headless EGL)."""
    runtime = getattr(_defaults, "runtime", None)
    if runtime is None:
        runtime = _defaults.runtime = Runtime()
    return runtime


def use_context(context) -> Runtime:
    """Make gpuconv run on an existing moderngl ``context`` in this thread from now on."""
    _defaults.runtime = Runtime(context)
    return _defaults.runtime
