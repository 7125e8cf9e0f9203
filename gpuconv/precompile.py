"""``gpuconv.precompile()``: compile an op's programs before its first call.

A GL driver compiles a program when it is linked, and Mesa's llvmpipe again, to
machine code, at its first draw; so precompiling draws each program once, on
zero-filled inputs of the planned shapes.  A packed program serves every shape of
its family (sizes are uniforms): one warm-up covers them all.  The direct programs
bake their shapes in and are compiled per shape.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Sequence

import numpy as np

from . import registry
from .layout import InputLayout
from .plan import Plan
from .runtimes import BaseRuntime, get_runtime


def precompile(op: str, x_shape: Sequence[int], filter_shape: Sequence[int], *args: Any,
               runtime: Optional[BaseRuntime] = None, algorithm: str = "auto", **kwargs: Any) -> int:
    """Compile every program ``op`` runs for these shapes on ``runtime``; returns how many
    were compiled (0 when all were compiled already).

    The arguments are :func:`gpuconv.shader_sources`'s (shapes, the op's keyword arguments,
    ``algorithm`` defaulting to ``"auto"`` as the ops do); the programs are planned for the
    runtime's limits, as a call on it would be.

    Example:
        >>> gpuconv.precompile("conv2d", (1, 64, 64, 16), (3, 3, 16, 32), padding="SAME")
        1
    """
    runtime = runtime or get_runtime()
    entry = registry.OPS.get(op) if isinstance(op, str) else None
    if entry is None or entry.algorithms:
        kwargs["algorithm"] = algorithm
    elif algorithm not in ("auto", "direct"):  # an op with its direct program only
        raise ValueError(f"{op} runs its direct program only, got algorithm={algorithm!r}")
    plan = registry.plan_shapes(op, x_shape, filter_shape, *args,
                                max_texture_size=runtime.max_texture_size,
                                max_draw_buffers=runtime.max_draw_buffers, **kwargs)
    steps = []
    for spec in plan.specs:
        zeros: Dict[str, np.ndarray] = {item.name: np.zeros(item.layout.shape, np.float32)
                                        for item in spec.inputs if isinstance(item.layout, InputLayout)}
        steps.append((spec, zeros))
    before = runtime.compiled_programs
    Plan(tuple(steps), plan.out_shape).execute(runtime)
    return runtime.compiled_programs - before
