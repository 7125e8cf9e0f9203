"""A planned call: the programs an op runs, in order, with the arrays each reads.

The plan owns the chaining: each program after the first reads the previous one's
output textures (which stay on the GPU) as its ``chained_inputs``; only the last
program's outputs are read back.  It speaks to a runtime only through
:class:`~gpuconv.runtimes.base.BaseRuntime`'s calls, so every runtime runs it alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Tuple

import numpy as np

from . import codegen
from .geometry import Conv2DGeometry
from .layout import InputLayout
from .programs import Program

if TYPE_CHECKING:  # pragma: no cover
    from .runtimes.base import BaseRuntime

#: One program and the arrays (by input name) it reads from the host.
Step = Tuple[Program, Mapping[str, np.ndarray]]


@dataclass(frozen=True)
class Plan:
    """The programs to run, in order, and the shape the caller gets back."""

    steps: Tuple[Step, ...]
    out_shape: Tuple[int, ...]

    @property
    def spec(self) -> Program:
        return self.steps[-1][0]

    @property
    def geometry(self) -> Conv2DGeometry:
        return self.spec.geometry

    @property
    def specs(self) -> Tuple[Program, ...]:
        return tuple(spec for spec, _ in self.steps)

    def sources(self) -> Tuple[str, ...]:
        """The fragment programs' GLSL, in order."""
        return tuple(codegen.fragment_source(spec) for spec in self.specs)

    def check_chaining(self) -> None:
        """Each chained program must read its inputs stored as the previous one writes them."""
        for before, (spec, _) in zip(self.specs, self.steps[1:]):
            wanted = {item.name: item.layout for item in spec.inputs}
            for name, written in zip(spec.chained_inputs, before.output_layouts):
                if wanted[name].storage != written.storage:
                    raise ValueError(f"{spec.name} expects {name} laid out as {wanted[name]}, "
                                     f"but {before.name} writes {written}")

    def execute(self, runtime: "BaseRuntime") -> np.ndarray:
        """Upload, draw each program, read the last one's outputs back, free every texture."""
        self.check_chaining()
        made: List[Any] = []
        previous: List[Any] = []
        try:
            for position, (spec, arrays) in enumerate(self.steps):
                inputs: Dict[str, Any] = dict(zip(spec.chained_inputs, previous)) if position else {}
                for item in spec.inputs:
                    if item.name not in inputs:
                        if not isinstance(item.layout, InputLayout):
                            raise ValueError(f"{spec.name} reads {item.name} from a previous program's output, "
                                             f"so it cannot be the plan's first program")
                        inputs[item.name] = runtime.upload(arrays[item.name], item.layout)
                        made.append(inputs[item.name])
                previous = runtime.draw(spec, inputs)
                made.extend(previous)
            last = self.spec
            parts = [runtime.read(texture, layout) for texture, layout in zip(previous, last.output_layouts)]
            return last.assemble(parts).reshape(self.out_shape)
        finally:
            runtime.free(made)
