"""The program that adds up a split filter gradient's partial sums."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Hashable, Sequence, Tuple

import numpy as np

from ..layout import (
    DEFAULT_MAX_TEXTURE_SIZE,
    texture_layout,
)
from .base import Epilogue, OneTextureProgram, Program, ProgramInput, ProgramOutput, shape_text


@dataclass(frozen=True)
class SliceSumProgramSpec(OneTextureProgram):
    """Adds up a split filter gradient's partial sums: ``partials`` is the previous program's
    output, ``[slices * R, ...]`` (rank 4), the result ``[R, ...]``, reshaped to ``result_shape``."""

    name: str
    template: str
    inputs: Tuple[ProgramInput, ...]
    output: ProgramOutput
    source: Any                   # the program whose partial sums this adds (its geometry is this one's)
    slices: int
    result_shape: Tuple[int, ...]
    epilogue: Epilogue = field(default_factory=Epilogue)
    chained_inputs: Tuple[str, ...] = ("partials",)

    @property
    def geometry(self) -> Any:
        return self.source.geometry

    @property
    def loop_iterations(self) -> int:
        return self.slices

    @property
    def output_shape(self) -> Tuple[int, ...]:
        return self.result_shape

    def source_key(self) -> Hashable:
        return (self.template, self.inputs, self.output, self.slices)

    def assemble(self, parts: Sequence[np.ndarray]) -> np.ndarray:
        return self.output.layout.unpack(parts[0]).reshape(self.result_shape)

    def describe(self) -> str:
        return (f"gpuconv {self.name}: partials {self.inputs[0].shape_text} -> {shape_text(self.result_shape)}, "
                f"the sum of {self.slices} partial sums of {self.source.name}")

    def template_context(self) -> Dict[str, Any]:
        return {
            **self.frame_context(),
            "slices": self.slices,
            "rows": self.output.layout.shape[0],
        }


def slice_sum_program(partials: Program, max_texture_size: int = DEFAULT_MAX_TEXTURE_SIZE) -> SliceSumProgramSpec:
    """The program adding up the partial sums a sliced filter-gradient program (``slices`` > 1) writes."""
    layout = partials.output_layouts[0]
    slices = int(getattr(partials, "slices", 1))
    written = tuple(layout.shape)
    if slices < 2 or written[0] % slices:
        raise ValueError(f"{partials.name} writes no partial sums to add up")
    result = (written[0] // slices,) + written[1:]
    inputs = (ProgramInput("partials", texture_layout(written, max_texture_size)),)
    output = ProgramOutput(texture_layout(result, max_texture_size))
    shape = tuple(partials.output_shape)
    return SliceSumProgramSpec("SliceSumProgram", "slice_sum.glsl", inputs, output, partials, slices,
                               (shape[0] // slices,) + shape[1:])
