"""The WebGPU target's filter gradients: conv2d_backprop_filter, depthwise_conv2d_backprop_filter
and conv3d_backprop_filter as one WGSL compute program each, a reduction in workgroup memory.

A filter gradient df[taps..., c, k] sums x * dy over the batch and every dy position, many more
terms than a filter has elements.  One invocation looping over all of them would be slow, drift
in float32, and be cut short by llvmpipe/lavapipe (gallivm ends an invocation's loops after
65535 passes).  Here one workgroup computes a block of ``block_c`` input channels x ``block_k``
output channels (or channel multipliers) at one filter tap: its invocations each sum a strided
share of the dy positions (position ``lid``, ``lid + invocations``, ...), reading each x value
once for the block's ``block_k`` products, then add their partial sums up in ``var<workgroup>``
memory, a tree of ``workgroupBarrier()`` steps.  One invocation loops over positions /
invocations positions, so the WebGL2 plan's partial sums (SliceSumProgram) are not needed.

The template (``shaders/wgsl/filter_gradient.wgsl``) is the same for 2-D and 3-D: the spatial
axes are a list.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Dict, Sequence, Tuple, cast

from ..geometry import Conv2DGeometry, Conv3DGeometry
from ..programs.base import LLVMPIPE_LOOP_LIMIT, Epilogue, shape_text
from .axes import SpatialAxis, spatial_axes
from .layout import BufferLayout
from .limits import WebGPULimits
from .programs import ComputeProgramSpec, _buffer, _loop_cost

#: Invocations of one filter-gradient workgroup (fewer for few positions; more where one invocation's
#: share of the positions would loop past llvmpipe's limit), and the fewest (lavapipe runs 8 lanes at
#: a time).  32 measured fastest on lavapipe with 8x8 blocks (2 cores, LLVM 15: dw 3x3x64x64 over
#: 4x32x32: 64 invocations 1.3-1.7x slower, 4x4 blocks 2-3x slower, 2026-12-08).
REDUCTION_WORKGROUP = 32
MIN_REDUCTION_WORKGROUP = 8
#: The most filter elements along the last filter axis (output channels, or a depthwise filter's
#: channel multipliers) one workgroup computes, and the most in all (input channels x that).
REDUCTION_BLOCK = 8
REDUCTION_VALUES = 64
MAX_BLOCK_C = 16


@dataclass(frozen=True)
class FamilyProgramSpec(ComputeProgramSpec):
    """A :class:`ComputeProgramSpec` of this family: ``geometry`` is a :class:`Conv2DGeometry` or a
    :class:`Conv3DGeometry` (described either way), and a filter gradient's workgroups reduce in
    ``var<workgroup>`` memory (``shared_values`` floats; 0 for the one-output-per-invocation 3-D
    programs), which the grid text, the check and the workgroup bytes count."""

    shared_values: int = 0

    @property
    def workgroup_bytes(self) -> int:
        return 4 * self.shared_values

    def describe(self) -> str:
        g: Any = self.geometry
        inputs = ", ".join(f"{i.name} {shape_text(i.layout.shape)}" for i in self.inputs)
        if isinstance(g, Conv3DGeometry):
            geometry = (f"strides {shape_text(g.strides)}, dilations {shape_text(g.dilations)}, pads front "
                        f"{g.pad_front} back {g.pad_back} top {g.pad_top} bottom {g.pad_bottom} left {g.pad_left} "
                        f"right {g.pad_right} ({g.padding_kind})")
        else:
            geometry = (f"strides {g.stride_height}x{g.stride_width}, dilations {g.dilation_height}x"
                        f"{g.dilation_width}, pads top {g.pad_top} bottom {g.pad_bottom} left {g.pad_left} "
                        f"right {g.pad_right} ({g.padding_kind})")
            if g.depthwise:
                geometry += f", channel multiplier {g.channel_multiplier}"
        return (f"gpuconv {self.name} (WGSL): {inputs} -> {shape_text(self.output.shape)} ({g.data_format}); "
                f"the forward convolution's {geometry}")

    def grid_text(self) -> str:
        text = super().grid_text()
        if self.shared_values:
            text += f"; {self.workgroup_bytes} bytes of workgroup memory"
        return text

    def check(self, limits: WebGPULimits) -> None:
        super().check(limits)
        if self.workgroup_bytes > limits.max_compute_workgroup_storage_size:
            raise ValueError(f"{self.name}: {self.workgroup_bytes} bytes of workgroup memory exceed this device's "
                             f"maxComputeWorkgroupStorageSize ({limits.max_compute_workgroup_storage_size})")
        if self.workgroup_size[0] > limits.max_compute_workgroup_size_x:
            raise ValueError(f"{self.name}: a workgroup of {self.workgroup_size[0]} invocations exceeds this "
                             f"device's maxComputeWorkgroupSizeX ({limits.max_compute_workgroup_size_x})")


def _pow2_at_most(value: int) -> int:
    return 1 << (max(1, value).bit_length() - 1)


def reduction_shape(positions: int, block_values: int, limits: WebGPULimits) -> int:
    """Invocations of one filter-gradient workgroup: a power of two (the tree halves it), up to
    :data:`REDUCTION_WORKGROUP` (fewer for few positions), more where one invocation's share of
    ``positions`` would loop past llvmpipe's limit; within ``limits`` (invocations, size along x,
    ``block_values`` floats each of workgroup memory)."""
    most = _pow2_at_most(min(limits.max_compute_invocations_per_workgroup, limits.max_compute_workgroup_size_x,
                             limits.max_compute_workgroup_storage_size // (4 * block_values)))
    size = min(REDUCTION_WORKGROUP, max(MIN_REDUCTION_WORKGROUP, 1 << max(0, positions - 1).bit_length()))
    while size < most and -(-positions // size) >= LLVMPIPE_LOOP_LIMIT - 256:
        size *= 2
    return max(1, min(size, most))


def reduction_block(positions: int, in_channels: int, last: int, limits: WebGPULimits) -> Tuple[int, int, int]:
    """``(block_c, block_k, invocations)`` of a filter gradient's workgroups: the largest block (up to
    :data:`REDUCTION_BLOCK` along the last axis, :data:`REDUCTION_VALUES` in all) whose workgroup
    memory leaves room for the invocations ``positions`` need to stay within llvmpipe's loop limit
    (halving the block as it must; at 1x1 what it gets)."""
    block_k = min(REDUCTION_BLOCK, last)
    block_c = min(in_channels, MAX_BLOCK_C, max(1, REDUCTION_VALUES // block_k))
    while True:
        size = reduction_shape(positions, block_c * block_k, limits)
        fits = 4 * block_c * block_k * size <= limits.max_compute_workgroup_storage_size
        if (fits and -(-positions // size) < LLVMPIPE_LOOP_LIMIT - 256) or block_c * block_k == 1:
            return block_c, block_k, size
        if block_c >= block_k:
            block_c = max(1, block_c // 2)
        else:
            block_k = max(1, block_k // 2)


def filter_gradient_program(name: str, geometry: Any, axes: Sequence[SpatialAxis], batch: int, in_channels: int,
                            last: int, multiplier: int, filter_shape: Sequence[int], x_shape: Sequence[int],
                            dy_shape: Sequence[int], limits: WebGPULimits) -> FamilyProgramSpec:
    """The filter gradient of a convolution over ``axes`` (2 or 3): df ``filter_shape``
    ``[taps..., in_channels, last]`` from x ``x_shape`` and dy ``dy_shape``; ``multiplier`` > 0: a
    depthwise filter (``last`` is the channel multiplier, dy's channel ``c * multiplier + k``)."""
    g = geometry
    positions = batch * math.prod(axis.output for axis in axes)
    block_c, block_k, size = reduction_block(positions, in_channels, last, limits)
    values = block_c * block_k
    c_blocks, k_blocks = -(-in_channels // block_c), -(-last // block_k)
    taps = math.prod(axis.filter for axis in axes)
    steps = []
    step = size // 2
    while step:
        steps.append(step)
        step //= 2
    parameters: Dict[str, Any] = {
        "axes": tuple(axes), "batch": batch, "channels": in_channels, "last": last, "multiplier": multiplier,
        "dy_channels": in_channels * multiplier if multiplier else last, "positions": positions,
        "block_c": block_c, "block_k": block_k, "c_blocks": c_blocks, "k_blocks": k_blocks,
        "blocks": taps * c_blocks * k_blocks, "steps": tuple(steps),
        "in_sizes": tuple(axis.input for axis in axes), "out_sizes": tuple(axis.output for axis in axes),
        "in_volume": math.prod(axis.input for axis in axes), "out_volume": math.prod(axis.output for axis in axes),
    }
    share = -(-positions // size)
    # the positions loop, then (per tree step, unrolled) a loop over the block's values
    iterations = _loop_cost(share) + len(steps) * _loop_cost(values) + _loop_cost(-(-values // size))
    per = f"{block_c} input channel{'s' if block_c > 1 else ''} x {block_k} " + \
        ("channel multiplier(s)" if multiplier else "output channel(s)")
    return FamilyProgramSpec(
        name, "wgsl/filter_gradient.wgsl", (_buffer("x", x_shape), _buffer("dy", dy_shape)),
        BufferLayout(tuple(int(d) for d in filter_shape)), cast(Any, g), Epilogue(), (size, 1, 1),
        taps * c_blocks * k_blocks, tuple(sorted(parameters.items())), chained_inputs=("x",),
        iterations=iterations, max_workgroups_per_dimension=limits.max_compute_workgroups_per_dimension,
        notes=(f"one workgroup per filter tap x {per}; each invocation sums {share} of the {positions} dy "
               f"positions (a stride of {size}), then a tree of {len(steps)} steps in workgroup memory",),
        shared_values=values * size)


def conv2d_backprop_filter_program(geometry: Conv2DGeometry, limits: WebGPULimits) -> FamilyProgramSpec:
    """Conv2DDerFilterProgram (``geometry.depthwise``: DepthwiseConv2DDerFilterProgram) on WebGPU:
    df ``geometry.filter_shape`` from x (``geometry.in_shape``) and dy (``geometry.out_shape``)."""
    g = geometry
    if g.groups != 1:
        raise ValueError("a grouped filter gradient is not planned on the WebGPU target")
    name = "DepthwiseConv2DDerFilterProgram" if g.depthwise else "Conv2DDerFilterProgram"
    last = g.channel_multiplier if g.depthwise else g.out_channels
    return filter_gradient_program(name, g, spatial_axes(g), g.batch, g.in_channels, last,
                                   g.channel_multiplier if g.depthwise else 0, g.filter_shape, g.in_shape,
                                   g.out_shape, limits)


def conv3d_backprop_filter_program(geometry: Conv3DGeometry, limits: WebGPULimits) -> FamilyProgramSpec:
    """Conv3DDerFilterProgram on WebGPU: df ``[FD, FH, FW, C, K]`` from x and dy."""
    g = geometry
    return filter_gradient_program("Conv3DDerFilterProgram", g, spatial_axes(g), g.batch, g.in_channels,
                                   g.out_channels, 0, g.filter_shape, g.in_shape, g.out_shape, limits)
