"""The WebGPU target's 3-D convolutions: conv3d (TF.js's Conv3DProgram), its input gradient and the
transposed 3-D convolution (Conv3DDerInputProgram), one output value per invocation, and its
filter gradient (Conv3DDerFilterProgram, a workgroup reduction: :mod:`gpuconv.webgpu.gradients`).

The templates (``shaders/wgsl/conv3d*.wgsl``) take the spatial axes as a list; shapes are
constants of the source, NDHWC or NCDHW.
"""

from __future__ import annotations

import math
from typing import Any, Dict, Sequence, cast

from ..geometry import Conv3DGeometry
from ..programs.base import Epilogue
from .axes import spatial_axes
from .gradients import FamilyProgramSpec, conv3d_backprop_filter_program
from .layout import BufferLayout
from .limits import WebGPULimits
from .programs import FLAT_WORKGROUP, _buffer, _flat_grid, _loop_cost

__all__ = ["conv3d_program", "conv3d_backprop_input_program", "conv3d_backprop_filter_program",
           "window_cost"]


def window_cost(window: Sequence[int], inner: int) -> int:
    """Loop iterations of nested loops over ``window`` (outermost first), the innermost running a
    loop of ``inner`` at every tap: gallivm counts them all (:func:`_loop_cost` nested)."""
    counts = list(window) + [inner]
    cost, outer = 0, 1
    for count in counts:
        cost += outer * _loop_cost(count)
        outer *= count
    return cost


def _tap(names: str, sizes: Sequence[int], flipped: bool = False) -> str:
    """The row-major index expression of filter tap (w<name>...) over the filter's spatial ``sizes``."""
    expression = ""
    for name, size in zip(names, sizes):
        term = f"({size - 1}u - w{name})" if flipped else f"w{name}"
        expression = term if not expression else f"({expression}) * {size}u + {term}"
    return expression


def _parameters(g: Conv3DGeometry, size: int) -> Dict[str, Any]:
    axes = spatial_axes(g)
    return {"size": size, "axes": axes, "in_channels": g.in_channels, "out_channels": g.out_channels,
            "in_sizes": g.in_spatial, "out_sizes": g.out_spatial,
            "in_volume": math.prod(g.in_spatial), "out_volume": math.prod(g.out_spatial)}


def _spec(name: str, template: str, inputs: Any, output_shape: Sequence[int], g: Conv3DGeometry, size: int,
          parameters: Dict[str, Any], chained: str, iterations: int, limits: WebGPULimits,
          note: str) -> FamilyProgramSpec:
    return FamilyProgramSpec(
        name, template, inputs, BufferLayout(tuple(int(d) for d in output_shape)), cast(Any, g), Epilogue(),
        (FLAT_WORKGROUP, 1, 1), _flat_grid(size), tuple(sorted(parameters.items())), chained_inputs=(chained,),
        iterations=iterations, max_workgroups_per_dimension=limits.max_compute_workgroups_per_dimension,
        notes=(note,))


def conv3d_program(geometry: Conv3DGeometry, limits: WebGPULimits) -> FamilyProgramSpec:
    """Conv3DProgram: y (``geometry.out_shape``) from x (``geometry.in_shape``) and W
    ``[FD, FH, FW, C, K]``, one output value per invocation."""
    g = geometry
    size = math.prod(g.out_shape)
    parameters = _parameters(g, size)
    parameters["tap_index"] = _tap("FRC", g.filter_spatial)
    inputs = (_buffer("x", g.in_shape), _buffer("W", g.filter_shape))
    return _spec("Conv3DProgram", "wgsl/conv3d.wgsl", inputs, g.out_shape, g, size, parameters, "x",
                 window_cost(g.filter_spatial, g.in_channels), limits,
                 f"one output value per invocation: the {'x'.join(map(str, g.filter_spatial))} window x "
                 f"{g.in_channels} input channels, taps on the padding skipped")


def conv3d_backprop_input_program(geometry: Conv3DGeometry, limits: WebGPULimits) -> FamilyProgramSpec:
    """Conv3DDerInputProgram: dx (``geometry.in_shape``) from dy (``geometry.out_shape``) and W
    ``[FD, FH, FW, C, K]``, one element of dx per invocation (also conv3d_transpose, its x as dy)."""
    g = geometry
    size = math.prod(g.in_shape)
    parameters = _parameters(g, size)
    parameters["flipped_tap_index"] = _tap("FRC", g.filter_spatial, flipped=True)
    parameters["pad_t"] = tuple(eff - 1 - before for eff, (before, _) in zip(g.effective_filter_spatial, g.pads))
    inputs = (_buffer("dy", g.out_shape), _buffer("W", g.filter_shape))
    return _spec("Conv3DDerInputProgram", "wgsl/conv3d_backprop_input.wgsl", inputs, g.in_shape, g, size,
                 parameters, "dy", window_cost(g.filter_spatial, g.out_channels), limits,
                 f"one element of dx per invocation: the {'x'.join(map(str, g.filter_spatial))} window x "
                 f"{g.out_channels} dy channels, dy positions off the stride grid skipped")
