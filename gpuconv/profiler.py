"""``gpuconv.profile()``: what each program cost, per call.

Inside ``with gpuconv.profile() as prof:`` every op records, for each program it runs:
the op, the program, the shapes, the algorithm, and the upload, draw and read-back
times, with GFLOP/s (2 x multiply-adds / draw time).  Draws are timed with GL timer
queries where the runtime has them (the native runtime: ``GL_TIME_ELAPSED``, the
device's own clock) and with synchronized wall time elsewhere (a ``finish()`` before
and after: the browser and worker runtimes, whose wall time includes the trip into the
page or the worker); uploads and read-backs always with synchronized wall time.  Each
record says which.  Profiling synchronizes after every step, so calls run slower than
unprofiled ones: use it to see where the time goes, and the benchmark for speed.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Union

import numpy as np

from .convert import ConversionSpec, layout_text
from .layout import InputLayout
from .programs import PackedProgramSpec, Program, shape_text
from .tensor import Tensor

if TYPE_CHECKING:  # pragma: no cover
    from .plan import Plan
    from .runtimes.base import BaseRuntime

GL_TIMER = "GL timer query"
WALL_TIME = "synchronized wall time"


@dataclass(frozen=True)
class Record:
    """One program of one call."""

    op: str
    program: str            # the program class, e.g. "PackedConv2DProgram"
    shapes: str             # "x 1x64x64x16, W 3x3x16x32 -> 1x64x64x32"
    algorithm: str          # "packed", "direct" or "im2col"
    upload_ms: float        # this program's host inputs (0 for inputs chained on the GPU)
    draw_ms: float
    read_ms: float          # the read-back (the last program of a call only)
    draw_timing: str        # GL_TIMER or WALL_TIME
    flops: int              # 2 x multiply-adds
    compiled: bool = False  # the program was compiled for this draw (llvmpipe compiles at the first draw)

    @property
    def gflops(self) -> float:
        return self.flops / (self.draw_ms * 1e6) if self.draw_ms > 0 else float("nan")


def _algorithm(spec: Program) -> str:
    if isinstance(spec, ConversionSpec):
        return "conversion"
    named = getattr(spec, "algorithm", None)  # the im2col path's two programs say "im2col"
    if isinstance(named, str):
        return named
    return "packed" if isinstance(spec, PackedProgramSpec) else "direct"


def _shapes(spec: Program) -> str:
    if isinstance(spec, ConversionSpec):  # a Tensor input moved to the storage the next program reads
        return f"{layout_text(spec.source, spec.source_format)} -> {layout_text(spec.target)}"
    names = [item.name for item in spec.inputs]
    split = [name for name in names if name[1:].isdigit() and name[0] == "x"]  # a packed program's x0..x7
    parts = []
    for item in spec.inputs:
        if item.name in split[1:]:
            continue
        name = f"x0..x{len(split) - 1}" if split and item.name == split[0] else item.name
        parts.append(f"{name} {shape_text(item.layout.shape)}")
    return f"{', '.join(parts)} -> {shape_text(spec.output_shape)}"


def _flops(spec: Program) -> int:
    own = getattr(spec, "flops", None)  # a program that says (the im2col copy: 0)
    if isinstance(own, int):
        return own
    return 2 * int(getattr(getattr(spec, "geometry", None), "multiply_adds", 0))


@dataclass
class Profile:
    """The records of one ``with gpuconv.profile():`` block (``runtime``: only that runtime's calls;
    ``None``: every runtime's, in this thread)."""

    runtime: Optional["BaseRuntime"] = None
    records: List[Record] = field(default_factory=list)

    def __enter__(self) -> "Profile":
        _stack().append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        _stack().remove(self)

    def execute(self, op: str, plan: "Plan", runtime: "BaseRuntime") -> np.ndarray:
        """Run ``plan`` step by step on ``runtime``, timing each upload, draw and read-back."""
        result = self._run(op, plan, runtime, to_tensor=False)
        assert isinstance(result, np.ndarray)
        return result

    def execute_to_tensor(self, op: str, plan: "Plan", runtime: "BaseRuntime") -> Tensor:
        """Run ``plan`` step by step on ``runtime``, timing each upload and draw (a conversion of
        a Tensor input included), and keep the result on the GPU: no read-back to time."""
        result = self._run(op, plan, runtime, to_tensor=True)
        assert isinstance(result, Tensor)
        return result

    def _run(self, op: str, plan: "Plan", runtime: "BaseRuntime", to_tensor: bool) -> Union[np.ndarray, Tensor]:
        made: List[Any] = []
        uploads: Dict[str, float] = {"pending": 0.0}
        steps: List[Dict[str, Any]] = []

        def upload(array: np.ndarray, layout: InputLayout, storage: str = "float32") -> Any:
            runtime.finish()
            start = time.perf_counter()
            texture = runtime.upload(array, layout, storage)
            runtime.finish()
            uploads["pending"] += time.perf_counter() - start
            return texture

        def draw(spec: Program, inputs: Dict[str, Any], storage: str = "float32") -> List[Any]:
            runtime.finish()
            compiled = runtime.compiled_programs
            outputs, seconds, timing = runtime.timed_draw(spec, inputs, storage)
            steps.append(dict(spec=spec, upload=uploads["pending"], draw=seconds, timing=timing,
                              compiled=runtime.compiled_programs != compiled))
            uploads["pending"] = 0.0
            return outputs

        result: Union[np.ndarray, Tensor]
        read = 0.0
        try:
            outputs = plan.chain(upload, draw, made)
            if not to_tensor:
                start = time.perf_counter()
                parts = [runtime.read(texture, layout) for texture, layout in zip(outputs, plan.spec.output_layouts)]
                read = time.perf_counter() - start
        except BaseException:
            runtime.free(made)
            raise
        if to_tensor:  # the outputs stay on the GPU, owned by the Tensor; the rest is freed
            kept = {id(texture) for texture in outputs}
            runtime.free([texture for texture in made if id(texture) not in kept])
            result = Tensor.from_program(runtime, outputs, plan.spec, plan.out_shape)
        else:
            runtime.free(made)
            result = plan.spec.assemble(parts).reshape(plan.out_shape)
        for position, step in enumerate(steps):
            spec = step["spec"]
            self.records.append(Record(
                op, spec.name, _shapes(spec), _algorithm(spec), step["upload"] * 1e3, step["draw"] * 1e3,
                read * 1e3 if position == len(steps) - 1 else 0.0, step["timing"], _flops(spec), step["compiled"]))
        return result

    def table(self) -> str:
        """The records as a Markdown table, then the totals."""
        header = ["op", "program", "shapes", "algorithm", "upload ms", "draw ms", "read ms", "GFLOP/s", "draw timing"]
        rows = [[r.op, r.program, r.shapes, r.algorithm, f"{r.upload_ms:.2f}",
                 f"{r.draw_ms:.2f}" + (" (compiled)" if r.compiled else ""), f"{r.read_ms:.2f}",
                 f"{r.gflops:.2f}" if r.flops else "-", r.draw_timing] for r in self.records]
        widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]

        def line(cells: List[str]) -> str:
            return "| " + " | ".join(f"{cell:<{width}}" for cell, width in zip(cells, widths)) + " |"

        lines = [line(header), line(["-" * w for w in widths])] + [line(row) for row in rows]
        total = sum(r.upload_ms + r.draw_ms + r.read_ms for r in self.records)
        lines.append(f"{len(self.records)} programs ({sum(r.compiled for r in self.records)} compiled), "
                     f"{total:.2f} ms in all "
                     f"(upload {sum(r.upload_ms for r in self.records):.2f}, "
                     f"draw {sum(r.draw_ms for r in self.records):.2f}, "
                     f"read {sum(r.read_ms for r in self.records):.2f})")
        return "\n".join(lines)


_local = threading.local()


def _stack() -> List[Profile]:
    stack: Optional[List[Profile]] = getattr(_local, "stack", None)
    if stack is None:
        stack = _local.stack = []
    return stack


def active_profile(runtime: "BaseRuntime") -> Optional[Profile]:
    """The innermost profile of this thread that records ``runtime``'s calls, if any."""
    for profile in reversed(getattr(_local, "stack", ())):
        if profile.runtime is None or profile.runtime is runtime:
            return profile
    return None


def profile(runtime: Optional["BaseRuntime"] = None) -> Profile:
    """Record every program the ops run in this ``with`` block (on ``runtime`` only, if given).

    Example:
        >>> with gpuconv.profile() as prof:
        ...     y = gpuconv.conv2d(x, w, padding="SAME")
        >>> print(prof.table())
    """
    return Profile(runtime)
