"""The gradient and transposed convolutions' direct programs (TF.js's Conv2DDerInputProgram,
Conv2DDerFilterProgram and the depthwise ones), and the split of long filter-gradient sums."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Dict, Optional, Tuple

from ..geometry import Conv2DGeometry
from ..layout import (
    DEFAULT_MAX_TEXTURE_SIZE,
    texture_layout,
)
from .base import LLVMPIPE_LOOP_LIMIT, Epilogue, ProgramInput, ProgramOutput
from .direct import ProgramSpec


@dataclass(frozen=True)
class GradientProgramSpec(ProgramSpec):
    """A gradient program: one element of ``dx`` (``kind="input"``) or of ``df`` (``kind="filter"``)
    per fragment.  ``bias_full`` says a fused bias is a full tensor of the output's shape
    (the transposed convolution broadcasts its bias, as TF.js's fused ops do), not one per channel."""

    kind: str = "input"
    bias_full: bool = False
    #: a filter gradient split into partial sums (see :func:`filter_gradient_slices`): each
    #: fragment sums ``slice_length`` of the batch's dy positions; 1: one program sums them all
    slices: int = 1
    slice_length: int = 0

    @property
    def loop_iterations(self) -> int:
        """Loop iterations per fragment: the input gradient runs the filter window and dy's
        channels (or a depthwise filter's multiplier) at every tap; the filter gradient the
        batch's dy positions (a slice of them, when split)."""
        g = self.geometry
        if self.kind == "filter":
            if self.slices > 1:
                return self.slice_length
            return g.batch + g.batch * g.out_height + g.batch * g.out_height * g.out_width
        taps = g.filter_height * g.filter_width
        inner = g.channel_multiplier if g.depthwise else g.out_channels // 4
        return g.filter_height + taps + taps * inner

    def describe(self) -> str:
        g = self.geometry
        text = (
            f"gpuconv {self.name}: {self.inputs_text()} -> {self.output.shape_text} ({g.data_format}); the forward "
            f"convolution's strides {g.stride_height}x{g.stride_width}, dilations "
            f"{g.dilation_height}x{g.dilation_width}, pads top {g.pad_top} bottom {g.pad_bottom} "
            f"left {g.pad_left} right {g.pad_right} ({g.padding_kind})"
        )
        if g.depthwise:
            text += f", channel multiplier {g.channel_multiplier}"
        if self.slices > 1:
            text += (f"; partial sums: {self.slices} slices of {self.slice_length} of the "
                     f"{g.batch * g.out_height * g.out_width} dy positions")
        return text + self.epilogue.describe()

    def template_context(self) -> Dict[str, Any]:
        context = super().template_context()
        g = self.geometry
        depth = g.out_channels  # dx sums over dy's channels
        context.update({
            "kind": self.kind,
            "depth_vec4": depth - depth % 4,
            "depth_remainder": depth % 4,
            # dy's window corner for dx[r, c]: the transposed convolution pads by
            # (effective filter - 1 - pad) before
            "pad_top_t": g.effective_filter_height - 1 - g.pad_top,
            "pad_left_t": g.effective_filter_width - 1 - g.pad_left,
            "bias_full": self.bias_full,
            "slices": self.slices,
            "slice_length": self.slice_length,
            # the epilogue without its bias, for a full bias the template adds itself
            "epilogue_unbiased": replace(self.epilogue, has_bias=False),
        })
        return context


def _image_input(name: str, shape: Tuple[int, ...], geometry: Conv2DGeometry, limit: int) -> ProgramInput:
    """An image tensor (x or dy) in the geometry's data format; NCHW reads get<Name>(b, d, r, c)."""
    return ProgramInput(name, texture_layout(shape, limit, None if geometry.channels_last else ("b", "d", "r", "c")))


def conv2d_backprop_input_program(geometry: Conv2DGeometry, epilogue: Optional[Epilogue] = None,
                                  max_texture_size: int = DEFAULT_MAX_TEXTURE_SIZE, *,
                                  bias_full: bool = False) -> GradientProgramSpec:
    """TF.js's Conv2DDerInputProgram (``geometry.depthwise``: DepthwiseConv2DDerInputProgram).

    Inputs ``dy`` (``geometry.out_shape``) and ``W``; output ``dx`` (``geometry.in_shape``).
    With an ``epilogue`` (the transposed convolution's bias and activation) its bias is
    one per dx channel, or a full dx-shaped tensor with ``bias_full``.
    """
    epilogue = epilogue or Epilogue()
    g = geometry
    limit = max_texture_size
    inputs = [_image_input("dy", g.out_shape, g, limit), ProgramInput("W", texture_layout(g.filter_shape, limit))]
    if epilogue.has_bias:
        inputs.append(_image_input("bias", g.in_shape, g, limit) if bias_full
                      else ProgramInput("bias", texture_layout((g.in_channels,), limit)))
    if epilogue.activation == "prelu":
        shape = (g.in_channels,) if epilogue.prelu_per_channel else g.in_shape
        inputs.append(ProgramInput("preluActivationWeights", texture_layout(shape, limit)))
    if epilogue.has_residual:
        inputs.append(_image_input("residual", g.in_shape, g, limit))
    if g.depthwise:
        name, template = "DepthwiseConv2DDerInputProgram", "depthwise_conv2d_backprop_input.glsl"
    else:
        name, template = "Conv2DDerInputProgram", "conv2d_backprop_input.glsl"
    output = ProgramOutput(texture_layout(g.in_shape, limit))
    return GradientProgramSpec(name, template, tuple(inputs), output, g, epilogue, ("dy",), "input", bias_full)


def conv2d_backprop_filter_program(geometry: Conv2DGeometry, max_texture_size: int = DEFAULT_MAX_TEXTURE_SIZE,
                                   slices: int = 1) -> GradientProgramSpec:
    """TF.js's Conv2DDerFilterProgram (``geometry.depthwise``: DepthwiseConv2DDerFilterProgram).

    Inputs ``x`` (``geometry.in_shape``) and ``dy`` (``geometry.out_shape``); output ``df``
    (``geometry.filter_shape``), one filter element per fragment, summed over the batch
    and dy's positions.  With ``slices`` > 1 it writes partial sums instead,
    ``[slices * FH, FW, C, K]``, each over one slice of the batch's dy positions, which
    :func:`slice_sum_program` adds up.
    """
    g = geometry
    inputs = (_image_input("x", g.in_shape, g, max_texture_size), _image_input("dy", g.out_shape, g, max_texture_size))
    if g.depthwise:
        name, template = "DepthwiseConv2DDerFilterProgram", "depthwise_conv2d_backprop_filter.glsl"
    else:
        name, template = "Conv2DDerFilterProgram", "conv2d_backprop_filter.glsl"
    shape = tuple(g.filter_shape)
    if slices > 1:
        shape = (slices * shape[0],) + shape[1:]
    output = ProgramOutput(texture_layout(shape, max_texture_size))
    positions = g.batch * g.out_height * g.out_width
    return GradientProgramSpec(name, template, inputs, output, g, Epilogue(), ("x",), "filter",
                               slices=slices, slice_length=-(-positions // slices))


#: dy positions per partial sum of a filter gradient: short float32 sums (a sum of 16k terms
#: drifts to ~5e-6 of its size), far below the loop limit.
FILTER_GRADIENT_SLICE = 2048
#: the most partial sums a split filter gradient stores (values; 64 MiB of float32)
FILTER_GRADIENT_PARTIALS = 1 << 24


def filter_gradient_slices(positions: int, filter_size: int) -> int:
    """How many partial sums a filter gradient over ``positions`` dy positions (batch and
    spatial) is split into: 1 (one program, TF.js's) up to :data:`FILTER_GRADIENT_SLICE`
    positions, else enough slices of at most that many, as far as
    :data:`FILTER_GRADIENT_PARTIALS` values of ``filter_size`` allow, and always enough
    to keep each slice's loop within llvmpipe's :data:`LLVMPIPE_LOOP_LIMIT`."""
    needed = -(-positions // (LLVMPIPE_LOOP_LIMIT - 1))
    wanted = min(-(-positions // FILTER_GRADIENT_SLICE), max(1, FILTER_GRADIENT_PARTIALS // max(1, filter_size)))
    return max(1, needed, wanted)
