"""One small spec per GPU program: its inputs, its output and its template parameters.

Like TF.js's program classes, a spec knows the maths' parameters (from the
geometry) and the inputs' texture layouts, but holds no GLSL: the template
named by ``template`` does.  Specs are frozen and hashable: the runtime caches
compiled programs under them, and two calls with the same spec share one program.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Tuple

from .geometry import Conv2DGeometry
from .layout import DEFAULT_MAX_TEXTURE_SIZE, TextureLayout, texture_layout

_COORD_TYPES = {1: "int", 2: "ivec2", 3: "ivec3", 4: "ivec4"}


def shape_text(shape) -> str:
    return "x".join(str(d) for d in shape)


@dataclass(frozen=True)
class ProgramInput:
    """One input texture: uniform ``name``, read through ``get<Name>(...)``."""

    name: str
    layout: TextureLayout

    @property
    def getter(self) -> str:
        return "get" + self.name[0].upper() + self.name[1:]

    @property
    def shape_text(self) -> str:
        return shape_text(self.layout.shape)


@dataclass(frozen=True)
class ProgramOutput:
    layout: TextureLayout

    @property
    def coord_type(self) -> str:
        return _COORD_TYPES[len(self.layout.shape)]

    @property
    def shape_text(self) -> str:
        return shape_text(self.layout.shape)


@dataclass(frozen=True)
class Epilogue:
    """What a fused program does after the convolution: add a bias, apply an activation.

    ``prelu_per_channel`` says whether the PReLU weights are one per output
    channel (read by channel) or a full tensor of the output's shape.
    """

    activation: str = "linear"
    has_bias: bool = False
    leakyrelu_alpha: float = 0.2
    prelu_per_channel: bool = True

    @property
    def is_identity(self) -> bool:
        return self.activation == "linear" and not self.has_bias


@dataclass(frozen=True)
class ProgramSpec:
    """Everything that determines a program's source (and so its cache key)."""

    name: str                          # TF.js's name of the program, e.g. "Conv2DProgram"
    template: str                      # the file in shaders/ holding its main()
    inputs: Tuple[ProgramInput, ...]
    output: ProgramOutput
    geometry: Conv2DGeometry
    epilogue: Epilogue = field(default_factory=Epilogue)

    @property
    def variable_names(self) -> Tuple[str, ...]:
        return tuple(i.name for i in self.inputs)

    @property
    def output_shape(self) -> Tuple[int, ...]:
        return self.output.layout.shape

    def describe(self) -> str:
        g = self.geometry
        inputs = ", ".join(f"{i.name} {i.shape_text}" for i in self.inputs)
        text = (
            f"gpuconv {self.name}: {inputs} -> {self.output.shape_text} ({g.data_format}); "
            f"strides {g.stride_height}x{g.stride_width}, dilations {g.dilation_height}x{g.dilation_width}, "
            f"pads top {g.pad_top} bottom {g.pad_bottom} left {g.pad_left} right {g.pad_right} ({g.padding_kind})"
        )
        if g.groups > 1:
            text += f", groups {g.groups}"
        if not self.epilogue.is_identity:
            text += f", bias {'yes' if self.epilogue.has_bias else 'no'}, activation {self.epilogue.activation}"
        return text

    def template_context(self) -> dict:
        g = self.geometry
        channels_last = g.channels_last
        depth = g.in_channels_per_group
        return {
            "description": self.describe(),
            "inputs": self.inputs,
            "output": self.output,
            "epilogue": self.epilogue,
            "g": g,
            "channels_last": channels_last,
            "channel_axis": 3 if channels_last else 1,
            "height_axis": 1 if channels_last else 2,
            "width_axis": 2 if channels_last else 3,
            "groups": g.groups,
            "depth_vec4": depth - depth % 4,
            "depth_remainder": depth % 4,
        }


def _fused_inputs(geometry: Conv2DGeometry, epilogue: Epilogue, limit: int):
    inputs = []
    if epilogue.has_bias:
        inputs.append(ProgramInput("bias", texture_layout((geometry.out_channels,), limit)))
    if epilogue.activation == "prelu":
        shape = (geometry.out_channels,) if epilogue.prelu_per_channel else geometry.out_shape
        inputs.append(ProgramInput("preluActivationWeights", texture_layout(shape, limit)))
    return inputs


def _conv_spec(name, template, geometry, epilogue, limit) -> ProgramSpec:
    inputs = [
        ProgramInput("x", texture_layout(geometry.in_shape, limit)),
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
