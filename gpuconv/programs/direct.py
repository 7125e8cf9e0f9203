"""TF.js's direct programs (Conv2DProgram, DepthwiseConv2DProgram): one output value per
fragment, shapes baked into the source."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Hashable, Optional, Sequence, Tuple

import numpy as np

from ..geometry import Conv2DGeometry
from ..layout import (
    DEFAULT_MAX_TEXTURE_SIZE,
    texture_layout,
)
from .base import Epilogue, OneTextureProgram, ProgramInput, ProgramOutput


@dataclass(frozen=True)
class ProgramSpec(OneTextureProgram):
    """Everything that determines a program's source (and so its cache key)."""

    name: str                          # TF.js's name of the program, e.g. "Conv2DProgram"
    template: str                      # the file in shaders/ holding its main()
    inputs: Tuple[ProgramInput, ...]
    output: ProgramOutput
    geometry: Conv2DGeometry
    epilogue: Epilogue = field(default_factory=Epilogue)

    #: Inputs that a chained program takes from the previous program's outputs.
    chained_inputs: Tuple[str, ...] = ("x",)

    @property
    def output_shape(self) -> Tuple[int, ...]:
        return self.output.layout.shape

    def source_key(self) -> Hashable:
        """What determines the source: everything (shapes are baked in as constants)."""
        return self

    @property
    def loop_iterations(self) -> int:
        """Loop iterations per fragment, all loops together: the filter window's rows and
        taps, and conv2d's channel loop (four channels an iteration) at every tap."""
        g = self.geometry
        taps = g.filter_height * g.filter_width
        channel_blocks = 0 if g.depthwise else g.in_channels_per_group // 4
        return g.filter_height + taps + taps * channel_blocks

    def assemble(self, parts: Sequence[np.ndarray]) -> np.ndarray:
        """The logical result from the output textures' contents."""
        return self.output.layout.unpack(parts[0])

    def describe(self) -> str:
        g = self.geometry
        text = (
            f"gpuconv {self.name}: {self.inputs_text()} -> {self.output.shape_text} ({g.data_format}); "
            f"strides {g.stride_height}x{g.stride_width}, dilations {g.dilation_height}x{g.dilation_width}, "
            f"pads top {g.pad_top} bottom {g.pad_bottom} left {g.pad_left} right {g.pad_right} ({g.padding_kind})"
        )
        if g.groups > 1:
            text += f", groups {g.groups}"
        return text + self.epilogue.describe()

    def template_context(self) -> Dict[str, Any]:
        g = self.geometry
        channels_last = g.channels_last
        depth = g.in_channels_per_group
        return {
            **self.frame_context(),
            "g": g,
            "channels_last": channels_last,
            "channel_axis": 3 if channels_last else 1,
            "height_axis": 1 if channels_last else 2,
            "width_axis": 2 if channels_last else 3,
            "groups": g.groups,
            "depth_vec4": depth - depth % 4,
            "depth_remainder": depth % 4,
        }


def _fused_inputs(geometry: Conv2DGeometry, epilogue: Epilogue, limit: int) -> list:
    inputs = []
    if epilogue.has_bias:
        shape = (geometry.out_channels,) if epilogue.bias_per_channel else geometry.out_shape
        inputs.append(ProgramInput("bias", texture_layout(shape, limit)))
    if epilogue.has_residual:
        inputs.append(ProgramInput("residual", texture_layout(geometry.out_shape, limit)))
    if epilogue.activation == "prelu":
        shape = (geometry.out_channels,) if epilogue.prelu_per_channel else geometry.out_shape
        inputs.append(ProgramInput("preluActivationWeights", texture_layout(shape, limit)))
    return inputs


def _conv_spec(name: str, template: str, geometry: Conv2DGeometry, epilogue: Epilogue,
               limit: int) -> ProgramSpec:
    inputs = [
        # Channels-first x: its sampler reads getX(b, d, r, c), batch, channel, row, column.
        ProgramInput("x", texture_layout(geometry.in_shape, limit,
                                         None if geometry.channels_last else ("b", "d", "r", "c"))),
        ProgramInput("W", texture_layout(geometry.filter_shape, limit)),
        *_fused_inputs(geometry, epilogue, limit),
    ]
    output = ProgramOutput(texture_layout(geometry.out_shape, limit))
    return ProgramSpec(name, template, tuple(inputs), output, geometry, epilogue)


def conv2d_program(geometry: Conv2DGeometry, epilogue: Optional[Epilogue] = None,
                   max_texture_size: int = DEFAULT_MAX_TEXTURE_SIZE) -> ProgramSpec:
    """TF.js's Conv2DProgram (and FusedConv2D, grouped when ``geometry.groups > 1``)."""
    if geometry.depthwise:
        raise ValueError("conv2d_program needs a conv2d geometry, got a depthwise one")
    return _conv_spec("Conv2DProgram", "conv2d.glsl", geometry, epilogue or Epilogue(), max_texture_size)


def depthwise_conv2d_program(geometry: Conv2DGeometry, epilogue: Optional[Epilogue] = None,
                             max_texture_size: int = DEFAULT_MAX_TEXTURE_SIZE) -> ProgramSpec:
    """TF.js's DepthwiseConv2DProgram (channel multiplier, optional fused epilogue)."""
    if not geometry.depthwise:
        raise ValueError("depthwise_conv2d_program needs a depthwise geometry")
    return _conv_spec("DepthwiseConv2DProgram", "depthwise_conv2d.glsl", geometry,
                      epilogue or Epilogue(), max_texture_size)
