"""The WebGPU target: how a call's canonical plan becomes WGSL compute programs.

An op plans its call once, target-free in all but name: its steps are TF.js's direct
programs (:mod:`gpuconv.programs`), each carrying the call's geometry, fused epilogue and
arrays.  :meth:`WebGPUTarget.plan` lowers each step to the compute program that fits it, as
TF.js's WebGPU kernels choose, but faster on the devices measured: conv2d's blocked program
(``Conv2DBlockedProgram``: 8 pixels x 4 channels per invocation) by default, TF.js's implicit
GEMM (``Conv2DMMProgram``) among :data:`VARIANTS` for tuning, the one-output-per-invocation
programs for ``algorithm="direct"``; the vec4 depthwise program where NHWC channels come in
fours; the input-gradient program for the transposed convolution.
The steps' arrays and chaining are kept as they are.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from ..codegen import program_source
from ..geometry import Conv2DGeometry
from ..limits import Limits
from ..plan import Plan, Step
from .conv3d import conv3d_backprop_input_program, conv3d_program
from .gradients import conv2d_backprop_filter_program, conv3d_backprop_filter_program
from .layout import BufferLayout
from .limits import WebGPULimits
from .programs import (
    BLOCKED_PIXELS,
    CONV2D_MM_TILES,
    ComputeProgramSpec,
    conv2d_backprop_input_program,
    conv2d_blocked_applies,
    conv2d_blocked_program,
    conv2d_mm_program,
    conv2d_naive_program,
    depthwise_vec4_applies,
    depthwise_vec4_program,
    im2col_program,
)

#: Ops of the WebGL2 target that the WebGPU target does not run yet, by their direct program.
_NOT_YET: Dict[str, str] = {}
#: Steps of the canonical plan the WebGPU target has no program for, because the one before does
#: their work: a filter gradient reduces in workgroup memory, with no partial sums to add up.
_DROPPED = ("SliceSumProgram",)


class NotOnTargetError(ValueError):
    """An op (a program of its plan) that this target does not run yet: a ValueError, raised
    while planning, before any GPU work; ``op`` and ``target`` say which."""

    def __init__(self, message: str, op: str = "", target: str = "") -> None:
        super().__init__(message)
        self.op = op
        self.target = target


#: Blocks of 4 output channels per invocation of the blocked program for a 1x1 convolution.
POINTWISE_BLOCKS = 2


def pointwise_blocks(geometry: Conv2DGeometry) -> int:
    """Output channels per invocation of a 1x1 convolution's blocked program, in blocks of 4:
    :data:`POINTWISE_BLOCKS` where the group's channels come in that many fours, else 1 (the
    rule's default, :data:`~gpuconv.webgpu.programs.BLOCKED_BLOCKS`, for every other filter:
    8 channels there doubles the unrolled taps and the compile time, 0.8 -> 2.5 s a program).
    A 1x1 program has no taps to unroll, and 8 channels per invocation reads each input texel
    once for twice the outputs.  Measured on lavapipe (2026-12-07, the 81 distinct 1x1 layers of
    ``benchmarks/models.py``'s eight models with 8k output channels, 4 and 8 channels taking
    turns in one process, median of 7, quiet machine): faster on all 42 layers over 5 ms
    (1.09-3.34x, median 1.29x: MobileNetV1's pw 1x1 128>128 @56 23.5 -> 18.2 ms, ConvNeXt-Tiny's
    stage2 1x1 192>768 @28 33.1 -> 21.8 ms, YOLOv8n's n15 C2f cv2 18.8 -> 13.1 ms), level on the
    39 under it (median 1.05x, 0.5-3.6x: their time is mostly the dispatch); the 81 together
    933 -> 729 ms."""
    g = geometry
    one_by_one = g.filter_height == g.filter_width == 1
    return POINTWISE_BLOCKS if one_by_one and (g.out_channels // g.groups) % (4 * POINTWISE_BLOCKS) == 0 else 1


def _finite(value: Any) -> bool:
    """Whether host array ``value`` holds only finite numbers (a Tensor is taken to)."""
    return not isinstance(value, np.ndarray) or bool(np.isfinite(value).all())


#: The program variants :func:`gpuconv.autotune` times on the WebGPU target (tile, vector and
#: workgroup sizes as data, as Triton's autotune configs): name -> (program family, parameters).
#: The rule's own choice is one of them; the others are what a device may prefer.
VARIANTS: Dict[str, Tuple[str, Dict[str, Any]]] = {
    "blocked-8px-4ch": ("Conv2DBlockedProgram", {"pixels": 8, "blocks": 1}),
    "blocked-8px-8ch": ("Conv2DBlockedProgram", {"pixels": 8, "blocks": 2}),
    "blocked-4px-8ch": ("Conv2DBlockedProgram", {"pixels": 4, "blocks": 2}),
    "blocked-4px-4ch": ("Conv2DBlockedProgram", {"pixels": 4, "blocks": 1}),
    **{f"mm-{tile.tile_m}x{tile.tile_n}": ("Conv2DMMProgram", {"tile": tile}) for tile in CONV2D_MM_TILES},
    "dw-vec4-8px": ("DepthwiseConv2DVec4Program", {"columns": 8}),
    "dw-vec4-4px": ("DepthwiseConv2DVec4Program", {"columns": 4}),
    "naive": ("naive", {}),
}

#: The family of each lowered program, and of each variant's program (:meth:`WebGPUTarget.tuning_candidates`).
_FAMILIES = {"Conv2DBlockedProgram": "conv2d", "Conv2DMMProgram": "conv2d", "Conv2DNaiveProgram": "conv2d",
             "DepthwiseConv2DVec4Program": "depthwise", "DepthwiseConv2DProgram": "depthwise"}


def _check_limits(limits: Any) -> None:
    """The WebGPU target plans for :class:`WebGPULimits` only (a runtime's ``limits``, or
    ``default_limits()``): WebGL2's texture limits say nothing about buffers and workgroups."""
    if not isinstance(limits, WebGPULimits):
        raise TypeError(f"the WebGPU target plans for WebGPULimits, got {type(limits).__name__}")


class WebGPUTarget:
    """WGSL compute programs over storage buffers (TF.js's WebGPU programs)."""

    name: str = "webgpu"
    language: str = "WGSL"
    #: "auto": the tiled programs (blocked conv2d, implicit GEMM, vec4 depthwise); "direct": one output per
    #: invocation; "im2col": conv2d as TF.js's Im2ColProgram, then a tiled matrix multiply
    algorithms: Tuple[str, ...] = ("auto", "direct", "im2col")

    def default_limits(self) -> WebGPULimits:
        return WebGPULimits()

    def tuning_candidates(self, plan: Plan) -> Tuple[str, ...]:
        """The program variants (:data:`VARIANTS`) that would change one of ``plan``'s programs."""
        families = {_FAMILIES.get(spec.name) for spec, _ in plan.steps}
        return tuple(name for name, (family, _) in VARIANTS.items()
                     if _FAMILIES.get(family) in families
                     or (family == "naive" and families & {"conv2d", "depthwise"}))

    def tuned_plan(self, make_plan: Callable[..., Plan], candidate: str, limits: Any) -> Plan:
        if candidate not in VARIANTS:
            raise ValueError(f"unknown WebGPU program variant {candidate!r}; choose from {', '.join(VARIANTS)}")
        _check_limits(limits)
        return self.lower(make_plan(Limits(), "direct"), "auto", limits, candidate)

    def plan(self, make_plan: Callable[..., Plan], algorithm: Optional[str], limits: Any,
             planned: Optional[Plan] = None) -> Plan:
        if algorithm is not None and algorithm not in self.algorithms:
            raise ValueError(f"algorithm must be one of {', '.join(map(repr, self.algorithms))} on the WebGPU "
                             f"target, got {algorithm!r} ('packed' is WebGL2's)")
        if planned is None or algorithm not in (None, "direct"):
            planned = make_plan(Limits()) if algorithm is None else make_plan(Limits(), "direct")
        _check_limits(limits)
        return self.lower(planned, algorithm or "auto", limits)

    def lower(self, plan: Plan, algorithm: str, limits: WebGPULimits, variant: Optional[str] = None) -> Plan:
        """``plan`` (of TF.js's direct WebGL programs) with each step's program replaced by its
        WebGPU program; the arrays, chaining and result shape are kept.  ``variant`` (one of
        :data:`VARIANTS`) overrides the rule's program where it applies."""
        kept = [(spec, arrays) for spec, arrays in plan.steps if spec.name not in _DROPPED]
        if algorithm == "im2col":
            if len(kept) != 1 or kept[0][0].name != "Conv2DProgram":
                raise ValueError("algorithm='im2col' runs conv2d and conv1d only (TF.js's im2col + matrix "
                                 "multiply); use algorithm='auto' or 'direct' for this op")
            lowered = self._im2col_steps(*kept[0], limits)
        else:
            lowered = [(self._program(spec, arrays, algorithm, limits, variant), arrays) for spec, arrays in kept]
        for program, _ in lowered:
            program.check(limits)
        steps: Tuple[Step, ...] = tuple(lowered)
        return Plan(steps, plan.out_shape).with_storage(plan.storage)

    def _im2col_steps(self, spec: Any, arrays: Mapping[str, Any],
                      limits: WebGPULimits) -> List[Tuple[ComputeProgramSpec, Mapping[str, Any]]]:
        """TF.js's im2col path: Im2ColProgram writes the matrix (which stays on the GPU), a tiled
        matrix multiply takes it with W and applies the epilogue."""
        g = spec.geometry
        matrix = im2col_program(g, limits)
        multiply = conv2d_mm_program(g, spec.epilogue, limits, from_matrix=True)
        first = {name: value for name, value in arrays.items() if name == "x"}
        rest = {name: value for name, value in arrays.items() if name != "x"}
        return [(matrix, first), (multiply, rest)]

    def _program(self, spec: Any, arrays: Any, algorithm: str, limits: WebGPULimits,
                 variant: Optional[str] = None) -> ComputeProgramSpec:
        name = spec.name
        g: Conv2DGeometry = spec.geometry
        epilogue = spec.epilogue
        family, parameters = VARIANTS.get(variant or "", ("", {}))
        if name == "Conv2DProgram":
            # A zero on the padding times a NaN/inf weight is NaN where the oracle skips the tap:
            # such a host filter runs the program that skips taps.
            if algorithm == "direct" or family == "naive" or (g.padded and not _finite(arrays.get("W"))):
                return conv2d_naive_program(g, epilogue, limits)
            if family == "Conv2DMMProgram":
                return conv2d_mm_program(g, epilogue, limits, **parameters)
            if family == "Conv2DBlockedProgram" and conv2d_blocked_applies(g, **parameters):
                return conv2d_blocked_program(g, epilogue, limits, **parameters)
            blocks = pointwise_blocks(g)
            if blocks > 1 and conv2d_blocked_applies(g, BLOCKED_PIXELS, blocks):
                return conv2d_blocked_program(g, epilogue, limits, BLOCKED_PIXELS, blocks)
            for pixels in (BLOCKED_PIXELS, 4):  # 4 pixels where 8 windows span too many columns
                if conv2d_blocked_applies(g, pixels):
                    return conv2d_blocked_program(g, epilogue, limits, pixels)
            return conv2d_mm_program(g, epilogue, limits)
        if name == "DepthwiseConv2DProgram":
            if algorithm == "auto" and family != "naive" and depthwise_vec4_applies(g, epilogue) and \
                    not (g.padded and not _finite(arrays.get("W"))):
                columns = parameters.get("columns") if family == "DepthwiseConv2DVec4Program" else None
                return depthwise_vec4_program(g, epilogue, limits, *([columns] if columns else []))
            return conv2d_naive_program(g, epilogue, limits)
        if name in ("Conv2DDerInputProgram", "DepthwiseConv2DDerInputProgram"):
            return conv2d_backprop_input_program(g, epilogue, limits, bias_full=getattr(spec, "bias_full", False))
        if name in ("Conv2DDerFilterProgram", "DepthwiseConv2DDerFilterProgram"):
            return conv2d_backprop_filter_program(g, limits)
        if name == "Conv3DProgram":
            return conv3d_program(spec.geometry, limits)
        if name == "Conv3DDerInputProgram":
            return conv3d_backprop_input_program(spec.geometry, limits)
        if name == "Conv3DDerFilterProgram":
            return conv3d_backprop_filter_program(spec.geometry, limits)
        op = _NOT_YET.get(name, name)
        raise NotOnTargetError(f"{op} does not run on the WebGPU target yet; run it on a WebGL2 runtime "
                               f"(gpuconv.Runtime(), gpuconv.BrowserRuntime())", op, self.name)

    def source(self, spec: Any) -> str:
        return program_source(spec)

    def tensor_layout(self, shape: Sequence[int], limits: Any) -> BufferLayout:
        return BufferLayout(tuple(int(d) for d in shape))

    def __repr__(self) -> str:
        return "gpuconv.target.WEBGPU"


WEBGPU = WebGPUTarget()
