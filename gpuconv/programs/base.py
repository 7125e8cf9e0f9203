"""The seams every program spec offers (``Drawable``, ``Program``) and the pieces they are made of:
its inputs and output, and the fused epilogue."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Dict, Hashable, Protocol, Sequence, Tuple

import numpy as np

from ..geometry import Conv2DGeometry
from ..layout import (
    Layout,
    TextureLayout,
)

_COORD_TYPES = {1: "int", 2: "ivec2", 3: "ivec3", 4: "ivec4"}


def shape_text(shape: Sequence[int]) -> str:
    return "x".join(str(d) for d in shape)


class Drawable(Protocol):
    """What the code generator (:mod:`~gpuconv.codegen`) and a runtime's ``draw`` need of a
    program: its template and what renders it, its inputs (samplers) and its render targets.
    A layout conversion (:class:`~gpuconv.convert.ConversionSpec`) is one; so is every
    :class:`Program`."""

    @property
    def name(self) -> str: ...            # the program class, e.g. "Conv2DProgram"

    @property
    def template(self) -> str: ...        # the file in shaders/ holding its main()

    @property
    def inputs(self) -> Tuple["ProgramInput", ...]: ...

    @property
    def variable_names(self) -> Tuple[str, ...]: ...

    @property
    def output_layouts(self) -> Tuple[Layout, ...]: ...  # one per render target

    @property
    def uniforms(self) -> Dict[str, Any]: ...

    def source_key(self) -> Hashable: ...  # equal keys, equal sources

    def template_context(self) -> Dict[str, Any]: ...

    def describe(self) -> str: ...


class Program(Drawable, Protocol):
    """What a program spec offers the code generator (:mod:`~gpuconv.codegen`), the plan and
    the runtimes.  :class:`ProgramSpec` (TF.js's programs) and :class:`PackedProgramSpec`
    (the packed ones) are the two kinds."""

    @property
    def loop_iterations(self) -> int: ...  # per fragment, all loops together (see LLVMPIPE_LOOP_LIMIT)

    @property
    def geometry(self) -> Conv2DGeometry: ...

    @property
    def epilogue(self) -> "Epilogue": ...

    @property
    def chained_inputs(self) -> Tuple[str, ...]: ...  # inputs a chained program takes from the previous one

    @property
    def output_shape(self) -> Tuple[int, ...]: ...

    def assemble(self, parts: Sequence[np.ndarray]) -> np.ndarray: ...  # the result from the outputs' texels


@dataclass(frozen=True)
class ProgramInput:
    """One input texture: uniform ``name``, read through ``get<Name>(...)``."""

    name: str
    layout: Layout

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
    """What a fused program does after the convolution: add a bias, add a residual, apply an activation.

    ``has_residual`` says a residual (a tensor of the output's shape, input ``residual``)
    is added after the bias and before the activation.  ``prelu_per_channel`` says whether
    the PReLU weights are one per output channel (read by channel) or a full tensor of the
    output's shape;
    ``bias_per_channel`` the same of the bias (a bias that broadcasts to the output
    and varies within a channel is given to the direct programs at the output's shape).
    """

    activation: str = "linear"
    has_bias: bool = False
    leakyrelu_alpha: float = 0.2
    prelu_per_channel: bool = True
    bias_per_channel: bool = True
    has_residual: bool = False

    @property
    def is_identity(self) -> bool:
        return self.activation == "linear" and not self.has_bias and not self.has_residual

    def describe(self) -> str:
        """``", bias yes, activation relu, residual"``, the end of a program's description ("" if identity)."""
        if self.is_identity:
            return ""
        text = f", bias {'yes' if self.has_bias else 'no'}, activation {self.activation}"
        return text + ", residual" if self.has_residual else text


class OneTextureProgram(ABC):
    """The members shared by the TF.js-style program specs (frozen dataclasses declaring these
    fields): one output texture, shapes baked into the source, so no uniforms."""

    inputs: Tuple[ProgramInput, ...]
    output: ProgramOutput
    epilogue: Epilogue

    @abstractmethod
    def describe(self) -> str: ...

    @property
    def variable_names(self) -> Tuple[str, ...]:
        return tuple(i.name for i in self.inputs)

    @property
    def output_layouts(self) -> Tuple[Layout, ...]:
        return (self.output.layout,)

    @property
    def uniforms(self) -> Dict[str, Any]:
        return {}

    def inputs_text(self) -> str:
        """``"x 1x7x7x6, W 3x3x6x4"``, for :meth:`describe`."""
        return ", ".join(f"{i.name} {i.shape_text}" for i in self.inputs)

    def frame_context(self) -> Dict[str, Any]:
        """What program.glsl, the frame around every such program's main(), reads."""
        return {"description": self.describe(), "inputs": self.inputs, "output": self.output,
                "epilogue": self.epilogue}


#: Loop iterations llvmpipe runs per fragment, all loops together: gallivm's loop limiter
#: (LP_MAX_TGSI_LOOP_ITERATIONS, 65535) silently ends every loop after that many.
LLVMPIPE_LOOP_LIMIT = 65535
