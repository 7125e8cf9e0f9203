"""A runtime wrapper that perturbs every result: to test the grading (a device that is off by
``ulps`` float32 ulps must be graded as the bounds say), and to see what a suite catches."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, Iterable, List, Mapping, Optional

import numpy as np

from ..layout import InputLayout, Layout
from ..runtimes.base import BaseRuntime

if TYPE_CHECKING:  # pragma: no cover
    from ..plan import Plan
    from ..programs import Drawable, Program

__all__ = ["PerturbedRuntime"]


class PerturbedRuntime(BaseRuntime):
    """``inner`` (any runtime), with each op's result moved ``ulps`` float32 ulps away from zero
    (``y + ulps * spacing(y)``), and optionally ``nan_every``-th value made NaN.

    Everything else (compiling, uploads, draws, limits, target) is ``inner``'s; releasing the
    wrapper leaves ``inner`` alone (it is the caller's)."""

    def __init__(self, inner: BaseRuntime, ulps: float = 0.0, nan_every: Optional[int] = None) -> None:
        self.inner = inner
        self.ulps = float(ulps)
        self.nan_every = nan_every
        self.kind = inner.kind
        self.target = inner.target
        self.limits = inner.limits
        self.max_loop_iterations = inner.max_loop_iterations
        self.storage = inner.storage

    def perturb(self, y: np.ndarray) -> np.ndarray:
        y = np.asarray(y, dtype=np.float32)
        with np.errstate(invalid="ignore", over="ignore"):
            moved = (y.astype(np.float64) + np.sign(y) * self.ulps * np.spacing(np.abs(y))).astype(np.float32)
        if self.nan_every:
            moved.reshape(-1)[:: self.nan_every] = np.nan
        return moved

    def run(self, plan: "Plan") -> np.ndarray:
        return self.perturb(self.inner.run(plan))

    def info(self) -> Dict[str, object]:
        return dict(self.inner.info(), perturbed=f"{self.ulps:g} ulps" + (
            f", NaN every {self.nan_every}" if self.nan_every else ""))

    def upload(self, array: np.ndarray, layout: InputLayout, storage: str = "float32") -> Any:
        return self.inner.upload(array, layout, storage)

    def draw(self, program: "Drawable", inputs: Mapping[str, Any], storage: str = "float32") -> List[Any]:
        return self.inner.draw(program, inputs, storage)

    def read(self, texture: Any, layout: Layout) -> np.ndarray:
        return self.inner.read(texture, layout)

    def free(self, textures: Iterable[Any]) -> None:
        self.inner.free(textures)

    def finish(self) -> None:
        self.inner.finish()

    def compile(self, programs: Iterable["Drawable"]) -> int:
        return self.inner.compile(programs)

    def timed_draw(self, program: "Program", inputs: Mapping[str, Any], storage: str = "float32") -> Any:
        return self.inner.timed_draw(program, inputs, storage)

    def require_storage(self, storage: str) -> str:
        return self.inner.require_storage(storage)

    def release(self) -> None:
        """Nothing to release: ``inner`` stays the caller's."""
