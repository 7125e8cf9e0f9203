"""The runtime interface: what every place that runs gpuconv's programs offers.

A runtime compiles a program's generated source, uploads arrays into textures laid
out as the program's inputs say, draws the program into new output textures and
reads them back.  :class:`~gpuconv.plan.Plan` chains those calls; a runtime that
can do better with a whole plan (another process, a browser page) overrides
:meth:`BaseRuntime.run`.  The native moderngl runtime (:mod:`.native`) is the
first implementation; the browser runtime (:mod:`.browser`) the second.
"""

from __future__ import annotations

import abc
import time
from typing import TYPE_CHECKING, Any, Dict, Iterable, List, Mapping, Optional, Tuple

import numpy as np

from ..layout import InputLayout, Layout
from ..limits import Limits
from ..storage import check_storage, component_bytes
from ..target import WEBGL2, Target

if TYPE_CHECKING:  # pragma: no cover
    from ..plan import Plan
    from ..programs import Drawable, Program
    from ..tensor import Tensor

class GLUnavailableError(RuntimeError):
    """No usable GL context (or browser) could be had; the message says what to install."""


class BaseRuntime(abc.ABC):
    """Compile, upload, draw, read back: the calls a :class:`~gpuconv.plan.Plan` makes.

    Textures are opaque handles of the runtime that made them.  A runtime is a context
    manager; :meth:`release` frees everything it holds (programs, context, browser).
    """

    #: "native" or "browser": where the programs run (this process, or a browser page).
    kind: str = ""
    #: What the programs are written in and how tensors are held (:mod:`gpuconv.target`):
    #: WebGL2 (GLSL fragment programs, textures) or WebGPU (WGSL compute programs, buffers).
    target: Target = WEBGL2
    #: What the programs may use here (see :class:`Limits`).
    limits: Limits = Limits()
    #: Programs compiled so far (a profile marks the draws that compiled one).
    compiled_programs: int = 0
    #: Loop iterations a fragment may run here, all loops together, or ``None`` for no known
    #: limit: Mesa's llvmpipe silently ends every loop after 65535 (wrong results, no error).
    max_loop_iterations: Optional[int] = None
    #: How the ops store textures here unless told otherwise (their ``storage=``): "float32"
    #: (R32F/RGBA32F) or "float16" (R16F/RGBA16F, as TF.js on devices without float32 render
    #: targets).  Set with the runtime's ``storage=`` argument.
    storage: str = "float32"

    @property
    def max_texture_size(self) -> int:
        return self.limits.max_texture_size

    @max_texture_size.setter
    def max_texture_size(self, value: int) -> None:  # tests lower it to exercise wrapped layouts
        self.limits = Limits(value, self.limits.max_draw_buffers)

    @property
    def max_draw_buffers(self) -> int:
        return self.limits.max_draw_buffers

    @abc.abstractmethod
    def info(self) -> Dict[str, object]:
        """Facts about the device: renderer, version, limits, backend."""

    @abc.abstractmethod
    def upload(self, array: np.ndarray, layout: InputLayout, storage: str = "float32") -> Any:
        """A new texture holding ``array`` (of ``layout.shape``) as ``layout`` lays it out,
        stored as ``storage`` ("float32": R32F/RGBA32F; "float16": R16F/RGBA16F, the values
        rounded to the nearest half)."""

    @abc.abstractmethod
    def draw(self, program: "Drawable", inputs: Mapping[str, Any], storage: str = "float32") -> List[Any]:
        """Run ``program`` (compiled once per source) over its whole output, reading ``inputs``
        (texture handles by input name); returns its new output textures, one per output layout,
        stored as ``storage`` (see :meth:`upload`)."""

    @abc.abstractmethod
    def read(self, texture: Any, layout: Layout) -> np.ndarray:
        """The texels of ``texture`` as a float32 ``(rows, cols, components)`` array (whatever
        the texture's storage: a half-float texture's values are read back as float32)."""

    @abc.abstractmethod
    def free(self, textures: Iterable[Any]) -> None:
        """Release textures this runtime made."""

    @abc.abstractmethod
    def finish(self) -> None:
        """Wait until every queued draw and transfer is done (for timing)."""

    @abc.abstractmethod
    def release(self) -> None:
        """Release everything this runtime holds; it cannot be used afterwards."""

    def _check_draw(self, spec: "Drawable", inputs: Mapping[str, Any], max_draw_buffers: int) -> None:
        """Refuse a draw missing one of ``spec``'s inputs, or writing more render targets than
        the device's ``max_draw_buffers`` (before any GL is touched)."""
        missing = set(spec.variable_names) - set(inputs)
        if missing:
            raise ValueError(f"inputs missing for {spec.name}: {sorted(missing)}")
        if len(spec.output_layouts) > max_draw_buffers:
            raise ValueError(f"{spec.name} writes {len(spec.output_layouts)} render targets, more than this "
                             f"device's {max_draw_buffers} draw buffers")

    def compile(self, programs: Iterable["Drawable"]) -> int:
        """Compile and link these programs ahead of their first draw, all at once where the
        driver can compile in parallel; returns how many were new.  (A driver may still
        compile again at the first draw: Mesa's llvmpipe generates its machine code there, so
        :func:`gpuconv.precompile` also draws each program once.)  Here: nothing to do."""
        return 0

    def timed_draw(self, program: "Program", inputs: Mapping[str, Any],
                   storage: str = "float32") -> Tuple[List[Any], float, str]:
        """:meth:`draw`, timed: ``(outputs, seconds, how)``.  Here synchronized wall time
        (finish, draw, finish); a runtime with GPU timers overrides it."""
        self.finish()
        start = time.perf_counter()
        outputs = self.draw(program, inputs, storage)
        self.finish()
        return outputs, time.perf_counter() - start, "synchronized wall time"

    def require_storage(self, storage: str) -> str:
        """``storage`` checked (a ValueError names the choices) and renderable here: a runtime
        whose device cannot render to half-float textures refuses "float16" (GLUnavailableError)."""
        return check_storage(storage)

    def run(self, plan: "Plan") -> np.ndarray:
        """Run a whole plan and return its result (the plan does the chaining)."""
        return plan.execute(self)

    def run_to_tensor(self, plan: "Plan") -> "Tensor":
        """Run a whole plan and keep its result on the GPU: a :class:`~gpuconv.Tensor` owning
        the last program's outputs (every other texture the plan made is freed)."""
        return plan.execute_to_tensor(self)

    # -- what gpuconv holds here (gpuconv.memory) -------------------------------------------------
    def _count_made(self, textures: Iterable[Any], layouts: Iterable[Layout], storage: str = "float32") -> None:
        """Implementations call this for each texture they make (upload, draw)."""
        live = self.__dict__.setdefault("_live_textures", {})
        size = component_bytes(storage)
        for texture, layout in zip(textures, layouts):
            live[id(texture)] = (texture, layout.rows * layout.cols * layout.components * size)

    def _count_freed(self, textures: Iterable[Any]) -> None:
        """Implementations call this for each texture they free."""
        live = self.__dict__.get("_live_textures")
        if live:
            for texture in textures:
                live.pop(id(texture), None)

    def memory(self) -> Dict[str, int]:
        """Textures gpuconv made here and has not freed: ``{"textures": count, "bytes": bytes}``."""
        live = self.__dict__.get("_live_textures", {})
        return {"textures": len(live), "bytes": sum(size for _, size in live.values())}

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
