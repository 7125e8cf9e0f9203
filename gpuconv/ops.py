"""The public convolution ops: validate, plan (geometry + program spec), run on the GPU.

Each op is three steps wired together: normalise the arguments
(:mod:`~gpuconv.arguments`, :mod:`~gpuconv.geometry`), build the program spec
(:mod:`~gpuconv.programs`), and hand spec and arrays to the runtime
(:mod:`~gpuconv.runtime`).  :func:`shader_source` runs the same planning step
without GL and returns the fragment program a call would run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional, Tuple

import numpy as np

from . import codegen
from .arguments import as_tensor, check_bias, check_prelu_weights, normalize_activation
from .geometry import Conv2DGeometry, conv2d_geometry
from .layout import DEFAULT_MAX_TEXTURE_SIZE
from .programs import Epilogue, ProgramSpec, conv2d_program, depthwise_conv2d_program
from .runtime import Runtime, get_runtime

_X_LAYOUTS = {"NHWC": "[batch, height, width, channels] or [height, width, channels]",
              "NCHW": "[batch, channels, height, width] or [channels, height, width]"}


@dataclass(frozen=True)
class Plan:
    """A planned call: its geometry, the program to run and the arrays it reads."""

    geometry: Conv2DGeometry
    spec: ProgramSpec
    arrays: Dict[str, np.ndarray]
    batched: bool  # False when x had no batch dimension (the result drops it too)

    def finish(self, result: np.ndarray) -> np.ndarray:
        return result if self.batched else result[0]


def _batched_shape(x_shape) -> Tuple[Tuple[int, ...], bool]:
    x_shape = tuple(int(d) for d in x_shape)
    return ((1,) + x_shape, False) if len(x_shape) == 3 else (x_shape, True)


def _epilogue(geometry, batched, bias, activation, leakyrelu_alpha, prelu_weights):
    activation = normalize_activation(activation)
    arrays = {}
    bias = check_bias(bias, geometry.out_channels)
    if bias is not None:
        arrays["bias"] = bias
    per_channel = True
    if activation == "prelu":
        out_shape = geometry.out_shape if batched else geometry.out_shape[1:]
        channel_axis = (3 if geometry.channels_last else 1) - (0 if batched else 1)
        weights, per_channel = check_prelu_weights(prelu_weights, out_shape, channel_axis)
        arrays["preluActivationWeights"] = weights if (per_channel or batched) else weights[None]
    elif prelu_weights is not None:
        raise ValueError(f"prelu_weights is only used with activation='prelu', got activation={activation!r}")
    if activation == "leakyrelu":
        if isinstance(leakyrelu_alpha, bool) or not isinstance(leakyrelu_alpha, (int, float, np.floating)) \
                or not np.isfinite(leakyrelu_alpha):
            raise TypeError(f"leakyrelu_alpha must be a finite number, got {leakyrelu_alpha!r}")
        alpha = float(np.float32(leakyrelu_alpha))
    else:
        alpha = 0.2  # unused: keep the spec (and so the program cache key) independent of it
    return Epilogue(activation, bias is not None, alpha, per_channel), arrays


def plan_conv2d(x, filter, strides=1, padding="VALID", data_format="NHWC", dilations=1,
                dim_rounding_mode=None, *, groups=1, bias=None, activation=None,
                leakyrelu_alpha=0.2, prelu_weights=None, depthwise=False,
                max_texture_size=DEFAULT_MAX_TEXTURE_SIZE, shapes_only=False) -> Plan:
    """Validate a conv2d/depthwise_conv2d call and choose its program.

    With ``shapes_only``, ``x`` and ``filter`` are shapes, not arrays (for
    :func:`shader_source`); fused-input arrays are still checked if given.
    """
    if shapes_only:
        x_shape, filter_shape = tuple(x), tuple(filter)
    else:
        x = as_tensor(x, "x", ranks=(3, 4), layout=_X_LAYOUTS.get(str(data_format).upper(), ""))
        filter_layout = ("[filter_height, filter_width, in_channels, channel_multiplier]" if depthwise
                         else "[filter_height, filter_width, in_channels / groups, out_channels]")
        filter = as_tensor(filter, "filter", ranks=(4,), layout=filter_layout)
        x_shape, filter_shape = x.shape, filter.shape
    if len(x_shape) not in (3, 4):
        raise ValueError(f"x must be rank 3 or 4, got shape {x_shape}")
    x4_shape, batched = _batched_shape(x_shape)
    geometry = conv2d_geometry(x4_shape, filter_shape, strides, padding, data_format, dilations,
                               dim_rounding_mode, groups=groups, depthwise=depthwise)
    epilogue, arrays = _epilogue(geometry, batched, bias, activation, leakyrelu_alpha, prelu_weights)
    make = depthwise_conv2d_program if depthwise else conv2d_program
    spec = make(geometry, epilogue, max_texture_size)
    if not shapes_only:
        arrays["x"] = x.reshape(x4_shape)
        arrays["W"] = filter
    return Plan(geometry, spec, arrays, batched)


def _run(plan: Plan, runtime: Optional[Runtime]) -> np.ndarray:
    runtime = runtime or get_runtime()
    return plan.finish(runtime.run(plan.spec, plan.arrays))


def conv2d(x, filter, strides=1, padding="VALID", data_format="NHWC", dilations=1,
           dim_rounding_mode=None, *, groups=1, bias=None, activation=None,
           leakyrelu_alpha=0.2, prelu_weights=None, runtime: Optional[Runtime] = None) -> np.ndarray:
    """2-D convolution on the GPU, as ``tf.nn.conv2d`` / ``tf.conv2d`` define it.

    Args:
        x: ``[batch, height, width, channels]`` (NHWC) or ``[batch, channels,
            height, width]`` (NCHW); without the batch dimension the result has none either.
        filter: ``[filter_height, filter_width, in_channels / groups, out_channels]``.
        strides, dilations: an int, an ``(h, w)`` pair or TF's 4-list (``[1, h, w, 1]``
            for NHWC); strides and dilations may not both exceed 1.
        padding: ``"SAME"``, ``"VALID"``, an int (output size rounded by
            ``dim_rounding_mode``: ``"floor"``, ``"round"`` or ``"ceil"``) or explicit pads
            ``[[top, bottom], [left, right]]`` (or TF's 4x2 list).
        groups: grouped convolution; ``in_channels`` and ``out_channels`` divisible by it.
        bias, activation, leakyrelu_alpha, prelu_weights: a fused epilogue (TF.js's
            ``fused.conv2d``): bias per output channel, then one of ``"linear"``,
            ``"relu"``, ``"relu6"``, ``"elu"``, ``"sigmoid"``, ``"leakyrelu"``, ``"prelu"``.
        runtime: the :class:`~gpuconv.Runtime` to run on (default: headless EGL).

    Returns:
        float32 array ``[batch, out_height, out_width, out_channels]`` (NHWC) or
        ``[batch, out_channels, out_height, out_width]`` (NCHW).

    Example:
        >>> y = gpuconv.conv2d(np.ones((1, 5, 5, 3), np.float32),
        ...                    np.ones((3, 3, 3, 2), np.float32), padding="SAME")
        >>> y.shape
        (1, 5, 5, 2)
    """
    plan = plan_conv2d(x, filter, strides, padding, data_format, dilations, dim_rounding_mode,
                       groups=groups, bias=bias, activation=activation,
                       leakyrelu_alpha=leakyrelu_alpha, prelu_weights=prelu_weights,
                       max_texture_size=(runtime or get_runtime()).max_texture_size)
    return _run(plan, runtime)


def depthwise_conv2d(x, filter, strides=1, padding="VALID", data_format="NHWC", dilations=1,
                     dim_rounding_mode=None, *, bias=None, activation=None, leakyrelu_alpha=0.2,
                     prelu_weights=None, runtime: Optional[Runtime] = None) -> np.ndarray:
    """Depthwise 2-D convolution on the GPU, as ``tf.nn.depthwise_conv2d`` defines it.

    ``filter`` is ``[filter_height, filter_width, in_channels, channel_multiplier]``;
    output channel ``k * channel_multiplier + q`` is input channel ``k`` convolved
    with ``filter[:, :, k, q]``.  Other arguments as for :func:`conv2d`.

    Example:
        >>> y = gpuconv.depthwise_conv2d(np.ones((1, 8, 8, 3), np.float32),
        ...                              np.ones((3, 3, 3, 2), np.float32), padding="SAME")
        >>> y.shape
        (1, 8, 8, 6)
    """
    plan = plan_conv2d(x, filter, strides, padding, data_format, dilations, dim_rounding_mode,
                       bias=bias, activation=activation, leakyrelu_alpha=leakyrelu_alpha,
                       prelu_weights=prelu_weights, depthwise=True,
                       max_texture_size=(runtime or get_runtime()).max_texture_size)
    return _run(plan, runtime)


_SHADER_OPS = {"conv2d": False, "depthwise_conv2d": True}


def shader_source(op: str, x_shape, filter_shape, strides=1, padding="VALID", data_format="NHWC",
                  dilations=1, dim_rounding_mode=None, *,
                  max_texture_size: int = DEFAULT_MAX_TEXTURE_SIZE, **fused) -> str:
    """The complete GLSL ES 3.00 fragment program that ``op`` would run for these shapes.

    ``op`` is ``"conv2d"`` or ``"depthwise_conv2d"``; the other arguments are
    those of the op (shapes instead of arrays).  Needs no GL context.

    Example:
        >>> print(gpuconv.shader_source("conv2d", (1, 7, 7, 6), (3, 3, 6, 4), padding="SAME"))
    """
    if op not in _SHADER_OPS:
        raise ValueError(f"op must be one of {', '.join(map(repr, _SHADER_OPS))}, got {op!r}")
    plan = plan_conv2d(x_shape, filter_shape, strides, padding, data_format, dilations,
                       dim_rounding_mode, depthwise=_SHADER_OPS[op],
                       max_texture_size=max_texture_size, shapes_only=True, **fused)
    return codegen.fragment_source(plan.spec)
