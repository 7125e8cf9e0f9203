"""``gpuconv.precompile()``: compile ops' programs before their first call.

A GL driver compiles a program when it is linked, and Mesa's llvmpipe again, to
machine code, at its first draw; so precompiling links every program first, all at once
(:meth:`~gpuconv.BaseRuntime.compile`: in one round trip into a browser page, where
``KHR_parallel_shader_compile`` lets the browser compile them in parallel), then draws each
once on zero-filled inputs of the planned shapes.  A packed program serves every shape of
its family (sizes are uniforms): one warm-up covers them all.  The direct programs bake
their shapes in and are compiled per shape.
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, List, Optional, Sequence

import numpy as np

from . import registry
from .layout import uploadable
from .plan import Plan
from .runtimes import BaseRuntime, get_runtime
from .target import WEBGL2

__all__ = ["precompile", "precompile_all"]


def _zero_plan(runtime: BaseRuntime, op: str, shapes: Sequence[Any], kwargs: Dict[str, Any]) -> Plan:
    """The plan of one call, planned for ``runtime``'s limits, on zero-filled host inputs."""
    if len(shapes) < 2:
        raise TypeError(f"precompile {op}: give the shapes of its leading arguments (at least two), got {shapes!r}")
    entry = registry.OPS.get(op) if isinstance(op, str) else None
    algorithm = kwargs.pop("algorithm", "auto")
    if entry is None or entry.algorithms:
        kwargs["algorithm"] = algorithm
    elif algorithm not in ("auto", "direct"):  # an op with its direct program only
        raise ValueError(f"{op} runs its direct program only, got algorithm={algorithm!r}")
    if runtime.target is WEBGL2:
        limits: Dict[str, Any] = {"max_texture_size": runtime.max_texture_size,
                                  "max_draw_buffers": runtime.max_draw_buffers}
    else:  # another target (WebGPU) plans for its own limits, which the runtime holds
        limits = {"target": runtime.target.name, "target_limits": runtime.limits}
    plan = registry.plan_shapes(op, shapes[0], shapes[1], *shapes[2:], **limits, **kwargs)
    steps = []
    for spec in plan.specs:
        zeros: Dict[str, np.ndarray] = {item.name: np.zeros(item.layout.shape, np.float32)
                                        for item in spec.inputs if uploadable(item.layout)}
        steps.append((spec, zeros))
    return Plan(tuple(steps), plan.out_shape)


def precompile_all(calls: Iterable[Sequence[Any]], runtime: Optional[BaseRuntime] = None) -> int:
    """Compile every program of several calls on ``runtime``, linking them all before drawing
    any (in parallel where the browser allows); returns how many were compiled.

    Each call is a tuple: the op's name, the shapes of its leading arguments, and optionally
    a dict of its keyword arguments (as :func:`precompile` takes them).

    Example:
        >>> gpuconv.precompile_all([("conv2d", (1, 64, 64, 16), (3, 3, 16, 32), {"padding": "SAME"}),
        ...                         ("depthwise_conv2d", (1, 64, 64, 32), (3, 3, 32, 1))])
        2
    """
    runtime = runtime or get_runtime()
    plans: List[Plan] = []
    for call in calls:
        if isinstance(call, (str, bytes)) or not isinstance(call, Sequence) or not call:
            raise TypeError(f"each call is a tuple (op, shapes..., optional keyword dict), got {call!r}")
        op, *rest = call
        kwargs = dict(rest.pop()) if rest and isinstance(rest[-1], dict) else {}
        plans.append(_zero_plan(runtime, op, rest, kwargs))
    before = runtime.compiled_programs
    runtime.compile(spec for plan in plans for spec in plan.specs)
    for plan in plans:  # llvmpipe generates machine code at the first draw
        plan.execute(runtime)
    return runtime.compiled_programs - before


def precompile(op: str, x_shape: Sequence[int], filter_shape: Sequence[int], *args: Any,
               runtime: Optional[BaseRuntime] = None, algorithm: str = "auto", **kwargs: Any) -> int:
    """Compile every program ``op`` runs for these shapes on ``runtime``; returns how many
    were compiled (0 when all were compiled already).

    The arguments are :func:`gpuconv.shader_sources`'s (shapes, the op's keyword arguments,
    ``algorithm`` defaulting to ``"auto"`` as the ops do); the programs are planned for the
    runtime's limits, as a call on it would be.  :func:`precompile_all` compiles several
    calls' programs at once.

    Example:
        >>> gpuconv.precompile("conv2d", (1, 64, 64, 16), (3, 3, 16, 32), padding="SAME")
        1
    """
    return precompile_all([(op, x_shape, filter_shape, *args, {"algorithm": algorithm, **kwargs})], runtime)
