"""The 3-D convolution and its gradients (TF.js's Conv3DProgram, Conv3DDerInputProgram,
Conv3DDerFilterProgram)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Dict, Hashable, Sequence, Tuple

import numpy as np

from ..geometry import Conv3DGeometry
from ..layout import (
    DEFAULT_MAX_TEXTURE_SIZE,
    texture_layout,
)
from .base import Epilogue, OneTextureProgram, ProgramInput, ProgramOutput, shape_text


@dataclass(frozen=True)
class Conv3DProgramSpec(OneTextureProgram):
    """TF.js's Conv3DProgram (``kind="forward"``), Conv3DDerInputProgram (``"input"``) or
    Conv3DDerFilterProgram (``"filter"``): one output element per fragment, shapes baked in.

    ``geometry3d`` is the (forward) convolution's :class:`~gpuconv.geometry.Conv3DGeometry`.
    The rank-5 result is written as a rank-4 tensor, its first two dimensions folded into
    one (the batch and the output depth, ``[N * OD, OH, OW, K]``, NDHWC, or the batch and
    the channels, ``[N * K, OD, OH, OW]``, NCDHW; a filter gradient's ``[FD * FH, FW, C, K]``):
    the same values in the same order, read back through an ``ivec4``.
    """

    name: str
    template: str
    inputs: Tuple[ProgramInput, ...]
    output: ProgramOutput
    geometry3d: Conv3DGeometry
    epilogue: Epilogue = field(default_factory=Epilogue)
    chained_inputs: Tuple[str, ...] = ("x",)
    kind: str = "forward"
    #: a filter gradient's partial sums, as :attr:`GradientProgramSpec.slices`
    slices: int = 1
    slice_length: int = 0

    @property
    def geometry(self) -> Any:
        """The 3-D geometry (the :class:`Program` protocol's ``geometry`` is 2-D; nothing that
        needs a 2-D one reads a 3-D program's)."""
        return self.geometry3d

    @property
    def loop_iterations(self) -> int:
        """Loop iterations per fragment: the filter window (depth, rows, taps) and four channels
        an iteration at every tap; a filter gradient the batch's dy positions (or one slice)."""
        g = self.geometry3d
        if self.kind == "filter":
            if self.slices > 1:
                return self.slice_length
            return g.batch * math.prod(g.out_spatial) * 2
        fd, fh, fw = g.filter_spatial
        channels = g.in_channels if self.kind == "forward" else g.out_channels
        return fd + fd * fh + fd * fh * fw + fd * fh * fw * (channels // 4)

    @property
    def output_shape(self) -> Tuple[int, ...]:
        g = self.geometry3d
        shape = tuple({"forward": g.out_shape, "input": g.in_shape, "filter": g.filter_shape}[self.kind])
        return (self.slices * shape[0],) + shape[1:] if self.slices > 1 else shape

    def source_key(self) -> Hashable:
        return self

    def assemble(self, parts: Sequence[np.ndarray]) -> np.ndarray:
        return self.output.layout.unpack(parts[0]).reshape(self.output_shape)

    def describe(self) -> str:
        g = self.geometry3d
        forward = "" if self.kind == "forward" else "the forward convolution's "
        text = (
            f"gpuconv {self.name}: {self.inputs_text()} -> {shape_text(self.output_shape)} ({g.data_format}), "
            f"written as {self.output.shape_text}; {forward}strides {shape_text(g.strides)}, dilations "
            f"{shape_text(g.dilations)}, pads front {g.pad_front} back {g.pad_back} top {g.pad_top} "
            f"bottom {g.pad_bottom} left {g.pad_left} right {g.pad_right} ({g.padding_kind})"
        )
        if self.slices > 1:
            text += (f"; partial sums: {self.slices} slices of {self.slice_length} of the "
                     f"{g.batch * math.prod(g.out_spatial)} dy positions")
        return text

    def template_context(self) -> Dict[str, Any]:
        g = self.geometry3d
        depth = g.out_channels if self.kind == "input" else g.in_channels  # what the dot products run over
        front, top, left = (eff - 1 - before for eff, (before, _) in zip(g.effective_filter_spatial, g.pads))
        return {
            **self.frame_context(),
            "g": g,
            "channels_last": g.channels_last,
            "depth_vec4": depth - depth % 4,
            "depth_remainder": depth % 4,
            # the transposed pads (dy's window corner for dx), as in Conv2DDerInputProgram
            "pad_front_t": front,
            "pad_top_t": top,
            "pad_left_t": left,
            "slices": self.slices,
            "slice_length": self.slice_length,
        }


def conv3d_program(geometry: Conv3DGeometry, max_texture_size: int = DEFAULT_MAX_TEXTURE_SIZE) -> Conv3DProgramSpec:
    """TF.js's Conv3DProgram for ``geometry`` (x ``geometry.in_shape``, W ``[FD, FH, FW, inC, outC]``)."""
    g = geometry
    if g.channels_last:
        x_names = ("b", "z", "r", "c", "d")
        folded: Tuple[int, ...] = (g.batch * g.out_depth, g.out_height, g.out_width, g.out_channels)
    else:
        x_names = ("b", "d", "z", "r", "c")
        folded = (g.batch * g.out_channels, g.out_depth, g.out_height, g.out_width)
    inputs = (ProgramInput("x", texture_layout(g.in_shape, max_texture_size, x_names)),
              ProgramInput("W", texture_layout(g.filter_shape, max_texture_size, ("z", "r", "c", "d1", "d2"))))
    output = ProgramOutput(texture_layout(folded, max_texture_size))
    return Conv3DProgramSpec("Conv3DProgram", "conv3d.glsl", inputs, output, g)


def _folded(shape: Sequence[int]) -> Tuple[int, ...]:
    """A rank-5 shape with its first two dimensions folded into one (how the 3-D programs write it)."""
    return (shape[0] * shape[1],) + tuple(shape[2:])


def conv3d_backprop_input_program(geometry: Conv3DGeometry,
                                  max_texture_size: int = DEFAULT_MAX_TEXTURE_SIZE) -> Conv3DProgramSpec:
    """TF.js's Conv3DDerInputProgram: ``dy`` (``geometry.out_shape``) and ``W`` in, ``dx``
    (``geometry.in_shape``) out; also the transposed 3-D convolution."""
    g = geometry
    names = ("b", "z", "r", "c", "d") if g.channels_last else ("b", "d", "z", "r", "c")
    inputs = (ProgramInput("dy", texture_layout(g.out_shape, max_texture_size, names)),
              ProgramInput("W", texture_layout(g.filter_shape, max_texture_size, ("z", "r", "c", "d1", "d2"))))
    output = ProgramOutput(texture_layout(_folded(g.in_shape), max_texture_size))
    return Conv3DProgramSpec("Conv3DDerInputProgram", "conv3d_backprop_input.glsl", inputs, output, g,
                             Epilogue(), ("dy",), "input")


def conv3d_backprop_filter_program(geometry: Conv3DGeometry, max_texture_size: int = DEFAULT_MAX_TEXTURE_SIZE,
                                   slices: int = 1) -> Conv3DProgramSpec:
    """TF.js's Conv3DDerFilterProgram: ``x`` and ``dy`` in, ``df`` (``geometry.filter_shape``) out;
    with ``slices`` > 1 partial sums ``[slices * FD, FH, FW, C, K]`` (written ``[slices * FD * FH,
    FW, C, K]``) for :func:`slice_sum_program`, as :func:`conv2d_backprop_filter_program`."""
    g = geometry
    names = ("b", "z", "r", "c", "d") if g.channels_last else ("b", "d", "z", "r", "c")
    inputs = (ProgramInput("x", texture_layout(g.in_shape, max_texture_size, names)),
              ProgramInput("dy", texture_layout(g.out_shape, max_texture_size, names)))
    shape = tuple(g.filter_shape)
    if slices > 1:
        shape = (slices * shape[0],) + shape[1:]
    output = ProgramOutput(texture_layout(_folded(shape), max_texture_size))
    positions = g.batch * math.prod(g.out_spatial)
    return Conv3DProgramSpec("Conv3DDerFilterProgram", "conv3d_backprop_filter.glsl", inputs, output, g,
                             Epilogue(), ("x",), "filter", slices, -(-positions // slices))
