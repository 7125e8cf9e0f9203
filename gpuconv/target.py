"""Targets: the languages gpuconv generates for, and what each owns.

A target is a language and a memory model: WebGL2 runs GLSL ES 3.00 fragment programs that
read textures and write render targets; WebGPU runs WGSL compute programs that read and
write storage buffers.  Everything else is shared (the registry, argument checks, geometry,
the plan's steps and chaining, the oracle, the checks, the profiler, the Tensor API): an op
plans its call once, with TF.js's direct programs as the canonical steps, and the runtime's
target turns that into the programs it runs (:meth:`Target.plan`).  A runtime knows its
target (``runtime.target``); ``shader_source(..., target=)`` names one.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Optional, Protocol, Sequence, Tuple

from . import codegen
from .layout import TensorLayout, texture_layout
from .limits import Limits
from .plan import Plan
from .webgpu.target import WEBGPU, NotOnTargetError

__all__ = ["Target", "PlanMaker", "WebGL2Target", "WEBGL2", "WEBGPU", "TARGETS", "target_named", "NotOnTargetError"]

#: ``make_plan(limits)`` or ``make_plan(limits, algorithm)``: an op's planner with its call's arguments bound.
PlanMaker = Callable[..., Plan]


class Target(Protocol):
    """What a target offers the ops, the registry, the Tensors and the runtimes."""

    #: "webgl2" or "webgpu"
    name: str
    #: the shading language of its programs
    language: str
    #: the ``algorithm=`` values it runs
    algorithms: Tuple[str, ...]
    def default_limits(self) -> Any: ...

    def tuning_candidates(self, plan: Plan) -> Tuple[str, ...]:
        """What :func:`gpuconv.autotune` times against each other for an "auto" call planned as
        ``plan``, in the order ties go to: algorithms, or program variants (tile, vector and
        workgroup sizes)."""

    def tuned_plan(self, make_plan: PlanMaker, candidate: str, limits: Any) -> Plan:
        """The call's plan with ``candidate`` (one of :meth:`tuning_candidates`)."""

    def plan(self, make_plan: PlanMaker, algorithm: Optional[str], limits: Any,
             planned: Optional[Plan] = None) -> Plan:
        """The plan this target runs for a call: ``make_plan`` is the op's planner with the call's
        arguments bound; ``algorithm`` the call's (``None`` for an op without one); ``planned``
        what ``make_plan`` gave for the default limits and the call's algorithm, if at hand."""

    def source(self, spec: Any) -> str:
        """The program's generated source."""

    def tensor_layout(self, shape: Sequence[int], limits: Any) -> TensorLayout:
        """How :func:`gpuconv.to_gpu` stores a tensor of ``shape`` on this target."""


class WebGL2Target:
    """GLSL ES 3.00 fragment programs over textures: TF.js's WebGL programs and the packed ones."""

    name: str = "webgl2"
    language: str = "GLSL ES 3.00"
    algorithms: Tuple[str, ...] = ("auto", "direct", "packed", "im2col")

    def default_limits(self) -> Limits:
        return Limits()

    def tuning_candidates(self, plan: Plan) -> Tuple[str, ...]:
        return ("packed", "im2col", "direct")

    def tuned_plan(self, make_plan: PlanMaker, candidate: str, limits: Any) -> Plan:
        return make_plan(limits, candidate)

    def plan(self, make_plan: PlanMaker, algorithm: Optional[str], limits: Any,
             planned: Optional[Plan] = None) -> Plan:
        if planned is not None and limits == Limits():
            return planned
        return make_plan(limits) if algorithm is None else make_plan(limits, algorithm)

    def source(self, spec: Any) -> str:
        return codegen.fragment_source(spec)

    def tensor_layout(self, shape: Sequence[int], limits: Any) -> TensorLayout:
        return texture_layout(shape, limits.max_texture_size)

    def __repr__(self) -> str:
        return "gpuconv.target.WEBGL2"


WEBGL2 = WebGL2Target()

#: The targets by name (``shader_source(target=)``, ``gpuconv shader --target``).
TARGETS: Dict[str, Target] = {WEBGL2.name: WEBGL2, WEBGPU.name: WEBGPU}


def target_named(name: Any) -> Target:
    """The target called ``name`` ("webgl2" or "webgpu"); a ValueError names the choices."""
    if isinstance(name, str) and name.lower() in TARGETS:
        return TARGETS[name.lower()]
    raise ValueError(f"target must be one of {', '.join(map(repr, TARGETS))}, got {name!r}")
