"""A planned call: the programs an op runs, in order, with the arrays each reads.

The plan owns the chaining: each program after the first reads the previous one's
output textures (which stay on the GPU) as its ``chained_inputs``; only the last
program's outputs are read back.  It speaks to a runtime only through the four calls of
:class:`PlanRunner` (which :class:`~gpuconv.runtimes.base.BaseRuntime` has), so every runtime
runs it alike, and this module never imports the runtimes, which import it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Protocol, Tuple, TypeVar

import numpy as np

from . import codegen
from .geometry import Conv2DGeometry
from .layout import InputLayout, Layout, uploadable
from .programs import Program
from .storage import check_storage
from .tensor import Tensor

T = TypeVar("T")  # a runtime's texture handle


class PlanRunner(Protocol):
    """What :meth:`Plan.execute` needs of a runtime: :class:`~gpuconv.runtimes.base.BaseRuntime`'s
    upload, draw, read and free (every runtime has them)."""

    def upload(self, array: np.ndarray, layout: InputLayout, storage: str = "float32") -> Any: ...

    def draw(self, program: Any, inputs: Mapping[str, Any], storage: str = "float32") -> List[Any]: ...

    def read(self, texture: Any, layout: Layout) -> np.ndarray: ...

    def free(self, textures: Iterable[Any]) -> None: ...

#: One program and the arrays (by input name) it reads from the host (or Tensors already on the GPU).
Step = Tuple[Program, Mapping[str, Any]]


@dataclass(frozen=True)
class Plan:
    """The programs to run, in order, and the shape the caller gets back."""

    steps: Tuple[Step, ...]
    out_shape: Tuple[int, ...]
    #: How every texture of the plan stores its values: "float32" (R32F/RGBA32F) or "float16"
    #: (R16F/RGBA16F, as TF.js stores tensors on devices without float32 render targets).
    #: Set by the ops from their ``storage=`` or the runtime's default (gpuconv.storage).
    storage: str = "float32"

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

    def check_loops(self, limit: Optional[int]) -> None:
        """Refuse a program that would loop more than ``limit`` times per fragment (the runtime's
        ``max_loop_iterations``): llvmpipe would end its loops early, silently."""
        if limit is None:
            return
        for spec in self.specs:
            if spec.loop_iterations > limit:
                raise ValueError(
                    f"{spec.name} would run {spec.loop_iterations} loop iterations per output value, more "
                    f"than the {limit} this renderer runs (Mesa's llvmpipe and lavapipe silently end a shader's loops "
                    f"there: the result would be wrong); use fewer input channels per program (groups=, or "
                    f"split the channels and add the results), a smaller filter, or a GPU")

    def check_chaining(self) -> None:
        """Each chained program must read its inputs stored as the previous one writes them."""
        for before, (spec, _) in zip(self.specs, self.steps[1:]):
            wanted = {item.name: item.layout for item in spec.inputs}
            for name, written in zip(spec.chained_inputs, before.output_layouts):
                if wanted[name].storage != written.storage:
                    raise ValueError(f"{spec.name} expects {name} laid out as {wanted[name]}, "
                                     f"but {before.name} writes {written}")

    def with_storage(self, storage: str) -> "Plan":
        """This plan with every texture stored as ``storage`` ("float32" or "float16").  A program
        whose source depends on it (a WebGPU program reads and writes buffers of halves) is
        replaced by its own ``with_storage(storage)``."""
        if storage == self.storage:
            return self
        storage = check_storage(storage)
        steps = tuple((spec.with_storage(storage) if hasattr(spec, "with_storage") else spec, arrays)
                      for spec, arrays in self.steps)
        return replace(self, steps=steps, storage=storage)

    def chain(self, upload: Callable[..., T], draw: Callable[..., List[T]], made: List[T]) -> List[T]:
        """Walk the steps: upload each host input, draw each program on its inputs (a chained
        input is the previous program's output texture, never the host's).  Every texture
        made is appended to ``made`` as it is made (so a failure can free them); returns the
        last program's outputs.  Runtimes that record the calls instead of making them (the
        browser page, in one round trip) pass their own ``upload`` and ``draw``.  A
        :class:`~gpuconv.Tensor` input is its own texture where it is stored as the program
        reads it, else a conversion program's output (drawn with ``draw``, and in ``made``).
        ``upload(array, layout)`` and ``draw(program, inputs)`` get the plan's :attr:`storage` as a
        third argument when it is not "float32" (two-argument ones keep working for float32 plans)."""
        self.check_chaining()
        storage: Tuple[str, ...] = () if self.storage == "float32" else (self.storage,)
        previous: List[T] = []
        for position, (spec, arrays) in enumerate(self.steps):
            inputs: Dict[str, T] = dict(zip(spec.chained_inputs, previous)) if position else {}
            for item in spec.inputs:
                if item.name not in inputs:
                    value = arrays[item.name]
                    if isinstance(value, Tensor):
                        # Tensors hold float32 (ops refuse storage="float16" with Tensor inputs)
                        texture, converted = value.texture_for(item.layout, draw)
                        inputs[item.name] = texture
                        if converted:
                            made.append(texture)
                        continue
                    if not uploadable(item.layout):
                        raise ValueError(f"{spec.name} reads {item.name} from a previous program's output, "
                                         f"so it cannot be the plan's first program")
                    inputs[item.name] = upload(arrays[item.name], item.layout, *storage)
                    made.append(inputs[item.name])
            previous = draw(spec, inputs, *storage)
            made.extend(previous)
        return previous

    def execute(self, runtime: PlanRunner) -> np.ndarray:
        """Upload, draw each program, read the last one's outputs back, free every texture."""
        made: List[Any] = []
        try:
            outputs = self.chain(runtime.upload, runtime.draw, made)
            last = self.spec
            parts = [runtime.read(texture, layout) for texture, layout in zip(outputs, last.output_layouts)]
            return last.assemble(parts).reshape(self.out_shape)
        finally:
            runtime.free(made)

    def execute_to_tensor(self, runtime: PlanRunner) -> Tensor:
        """Upload, draw each program, and keep the last one's outputs on the GPU: a
        :class:`~gpuconv.Tensor` of ``out_shape`` owning them; every other texture is freed."""
        made: List[Any] = []
        try:
            outputs = self.chain(runtime.upload, runtime.draw, made)
        except BaseException:
            runtime.free(made)
            raise
        kept = {id(texture) for texture in outputs}
        runtime.free([texture for texture in made if id(texture) not in kept])
        return Tensor.from_program(runtime, outputs, self.spec, self.out_shape)
