"""The WebGPU target's programs: WGSL compute programs, one small spec per program, as TF.js's
WebGPU backend has them (``Conv2DMMProgram``, ``DepthwiseConv2DProgram``, ...).

A spec says which template in ``shaders/wgsl/`` renders it and with what; everything a
template needs (shapes, tile sizes, the dispatch) is computed here.  Shapes are baked into
the source as constants, so a pipeline is made once per distinct spec.  Inputs are bound in
``inputs`` order at ``@group(0) @binding(0..)``, the output after them; a program's grid is
``dispatch`` workgroups of ``workgroup_size`` (a grid longer than the device allows along x
folds into y, and the program unfolds it).

Tile, vector and workgroup sizes are data (:class:`TileConfig`, :data:`CONV2D_MM_TILES`), not
constants in templates: a rule picks one per call (:func:`choose_tile`), and a search may
try the others.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Dict, Hashable, Optional, Sequence, Tuple, cast

import numpy as np

from ..geometry import Conv2DGeometry
from ..programs.base import LLVMPIPE_LOOP_LIMIT, Epilogue, ProgramInput, shape_text
from .axes import spatial_axes
from .layout import BufferLayout
from .limits import WebGPULimits

#: Invocations of the one-output-per-invocation programs' workgroups (TF.js: 64 to 256).
FLAT_WORKGROUP = 64
#: The templates of the programs ``algorithm="auto"`` runs in place of the direct ones (the tiled ones).
AUTO_TEMPLATES = ("wgsl/conv2d_mm.wgsl", "wgsl/conv2d_blocked.wgsl", "wgsl/depthwise_vec4.wgsl")


@dataclass(frozen=True)
class TileConfig:
    """How the implicit GEMM tiles its output: a workgroup of ``workgroup`` = (x, y)
    invocations, each computing ``per_invocation`` = (rows, columns) outputs, so one workgroup
    covers ``tile_m`` output pixels x ``tile_n`` output channels; the reduction advances
    ``tile_k`` at a time through workgroup memory."""

    workgroup: Tuple[int, int] = (8, 8)
    per_invocation: Tuple[int, int] = (4, 4)
    tile_k: int = 32

    @property
    def invocations(self) -> int:
        return self.workgroup[0] * self.workgroup[1]

    @property
    def tile_m(self) -> int:
        return self.workgroup[1] * self.per_invocation[0]

    @property
    def tile_n(self) -> int:
        return self.workgroup[0] * self.per_invocation[1]

    @property
    def workgroup_bytes(self) -> int:
        """var<workgroup> bytes: a tile_m x tile_k tile of the im2col matrix and a tile_k x tile_n one of W."""
        return 4 * (self.tile_m * self.tile_k + self.tile_k * self.tile_n)

    def unfit(self, limits: WebGPULimits) -> Optional[str]:
        """Why this tiling cannot run within ``limits``, or ``None``."""
        if self.invocations > limits.max_compute_invocations_per_workgroup:
            return (f"{self.invocations} invocations per workgroup exceed maxComputeInvocationsPerWorkgroup "
                    f"{limits.max_compute_invocations_per_workgroup}")
        if self.workgroup[0] > limits.max_compute_workgroup_size_x or \
                self.workgroup[1] > limits.max_compute_workgroup_size_y:
            return f"workgroup {self.workgroup} exceeds maxComputeWorkgroupSizeX/Y"
        if self.workgroup_bytes > limits.max_compute_workgroup_storage_size:
            return (f"{self.workgroup_bytes} bytes of workgroup memory exceed maxComputeWorkgroupStorageSize "
                    f"{limits.max_compute_workgroup_storage_size}")
        return None

    def describe(self) -> str:
        return (f"workgroup {self.workgroup[0]}x{self.workgroup[1]}, {self.per_invocation[0]}x"
                f"{self.per_invocation[1]} outputs per invocation, tile {self.tile_m}x{self.tile_n}, "
                f"k-step {self.tile_k}")


#: The implicit GEMM's tilings, in order of preference: TF.js's 8x8 workgroup of 4x4 outputs
#: (32 pixels x 32 channels), then shapes for few output channels (64 x 16, 64 x 8) and for
#: few output pixels (16 x 64).  Each is 64 invocations and at most 10 KiB of workgroup memory.
CONV2D_MM_TILES: Tuple[TileConfig, ...] = (
    TileConfig((8, 8), (4, 4), 32),
    TileConfig((4, 16), (4, 4), 32),
    TileConfig((2, 32), (2, 4), 32),
    TileConfig((16, 4), (4, 4), 32),
)


def choose_tile(rows: int, cols: int, limits: WebGPULimits,
                tiles: Sequence[TileConfig] = CONV2D_MM_TILES) -> TileConfig:
    """The tiling that wastes least work on a ``rows`` x ``cols`` output (padding the last tiles),
    the earlier in ``tiles`` on a tie; only tilings that fit ``limits``."""
    fitting = [tile for tile in tiles if tile.unfit(limits) is None]
    if not fitting:
        raise ValueError("no tiling of the implicit GEMM fits this device's limits: "
                         + "; ".join(str(tile.unfit(limits)) for tile in tiles))

    def waste(tile: TileConfig) -> float:
        padded = -(-rows // tile.tile_m) * tile.tile_m * -(-cols // tile.tile_n) * tile.tile_n
        return padded / (rows * cols)

    return min(fitting, key=waste)


@dataclass(frozen=True)
class ComputeProgramSpec:
    """One WGSL compute program: its template, its storage-buffer inputs and output, its grid.

    Offers what the plan, the code generator and the profiler ask of every program
    (:class:`gpuconv.programs.Program`), and the grid a WebGPU runtime dispatches."""

    name: str
    template: str
    inputs: Tuple[ProgramInput, ...]
    output: BufferLayout
    geometry: Conv2DGeometry
    epilogue: Epilogue
    #: (x, y, z) invocations of one workgroup
    workgroup_size: Tuple[int, int, int]
    #: workgroups the program needs, before folding into the dispatch grid
    workgroups: int
    #: what the template needs beyond the common context, as sorted (name, value) pairs
    parameters: Tuple[Tuple[str, Any], ...] = ()
    chained_inputs: Tuple[str, ...] = ("x",)
    #: loop iterations one invocation runs, all loops together (llvmpipe/lavapipe end loops after 65535)
    iterations: int = 0
    tile: Optional[TileConfig] = None
    #: the longest a dispatch may be along one axis (the device's maxComputeWorkgroupsPerDimension)
    max_workgroups_per_dimension: int = 65535
    notes: Tuple[str, ...] = field(default=())
    #: how every buffer it reads and writes stores its values: "float32", or "float16" (halves,
    #: two to a 32-bit word; the arithmetic stays float32): see :meth:`with_storage`
    storage: str = "float32"

    # -- what every program offers ----------------------------------------------------------------
    @property
    def variable_names(self) -> Tuple[str, ...]:
        return tuple(item.name for item in self.inputs)

    @property
    def output_layouts(self) -> Tuple[BufferLayout, ...]:
        return (self.output,)

    @property
    def output_shape(self) -> Tuple[int, ...]:
        return self.output.shape

    @property
    def uniforms(self) -> Dict[str, Any]:
        return {}  # shapes are constants of the source

    @property
    def loop_iterations(self) -> int:
        return self.iterations

    @property
    def algorithm(self) -> str:
        """Which of the target's algorithms this program is (what :func:`gpuconv.profile` records):
        "auto" for the tiled programs only it runs, "direct" for the others."""
        return "auto" if self.template in AUTO_TEMPLATES else "direct"

    def source_key(self) -> Hashable:
        return self

    def with_storage(self, storage: str) -> "ComputeProgramSpec":
        """This program reading and writing buffers of ``storage`` values: with "float16" every
        input is halves (read with ``unpack2x16float``) and the result is rounded to halves as it
        is written (``pack2x16float``), as WebGL2 keeps every texture in R16F/RGBA16F."""
        if storage == self.storage:
            return self
        inputs = tuple(ProgramInput(item.name, cast(BufferLayout, item.layout).stored_as(storage))
                       for item in self.inputs)
        return replace(self, inputs=inputs, output=self.output.stored_as(storage), storage=storage)

    def assemble(self, parts: Sequence[np.ndarray]) -> np.ndarray:
        return self.output.unpack(parts[0])

    # -- the grid ---------------------------------------------------------------------------------
    @property
    def dispatch(self) -> Tuple[int, int, int]:
        """Workgroups along x, y, z: ``workgroups`` folded at the device's per-dimension limit."""
        longest = self.max_workgroups_per_dimension
        x = max(1, min(self.workgroups, longest))
        return (x, -(-self.workgroups // x), 1)

    @property
    def invocations(self) -> int:
        return self.workgroup_size[0] * self.workgroup_size[1] * self.workgroup_size[2]

    @property
    def workgroup_bytes(self) -> int:
        return self.tile.workgroup_bytes if self.tile else 0

    # -- text -------------------------------------------------------------------------------------
    def describe(self) -> str:
        g = self.geometry
        inputs = ", ".join(f"{i.name} {shape_text(i.layout.shape)}" for i in self.inputs)
        text = (f"gpuconv {self.name} (WGSL): {inputs} -> {shape_text(self.output.shape)} ({g.data_format}); "
                f"strides {g.stride_height}x{g.stride_width}, dilations {g.dilation_height}x{g.dilation_width}, "
                f"pads top {g.pad_top} bottom {g.pad_bottom} left {g.pad_left} right {g.pad_right} "
                f"({g.padding_kind})")
        if g.groups > 1:
            text += f", groups {g.groups}"
        if g.depthwise:
            text += f", channel multiplier {g.channel_multiplier}"
        text += self.epilogue.describe()
        if self.storage == "float16":
            text += "; half-float storage (halves two to a u32, float32 arithmetic)"
        return text

    def grid_text(self) -> str:
        x, y, z = self.dispatch
        size = "x".join(str(d) for d in self.workgroup_size)
        text = f"dispatch {x}x{y}x{z} workgroups of {size} invocations"
        if self.tile is not None:
            text += f"; {self.tile.describe()}, {self.workgroup_bytes} bytes of workgroup memory"
        return text

    def template_context(self) -> Dict[str, Any]:
        g = self.geometry
        context: Dict[str, Any] = {
            "description": self.describe(),
            "grid": self.grid_text(),
            "notes": self.notes,
            "inputs": self.inputs,
            "output": self.output,
            "epilogue": self.epilogue,
            "g": g,
            "channels_last": g.channels_last,
            "workgroup_size": self.workgroup_size,
            "invocations": self.invocations,
            "dispatch": self.dispatch,
            "workgroups": self.workgroups,
            "tile": self.tile,
            "half": self.storage == "float16",
        }
        context.update(self.parameters)
        return context

    # -- checks -----------------------------------------------------------------------------------
    def check(self, limits: WebGPULimits) -> None:
        """Refuse, naming the limit, a program this device cannot run (before any GPU work)."""
        for name, layout in [(i.name, i.layout) for i in self.inputs] + [("the output", self.output)]:
            if not isinstance(layout, BufferLayout):
                raise TypeError(f"{self.name}: {name} must be a storage buffer (BufferLayout), got {layout!r}")
            if layout.byte_size > limits.max_storage_buffer_binding_size:
                raise ValueError(f"{self.name}: {name} takes {layout.byte_size} bytes, more than this device's "
                                 f"maxStorageBufferBindingSize ({limits.max_storage_buffer_binding_size}); "
                                 f"split the batch or the image into smaller calls")
        if len(self.inputs) + 1 > limits.max_storage_buffers_per_shader_stage:
            raise ValueError(f"{self.name} binds {len(self.inputs) + 1} storage buffers, more than this device's "
                             f"maxStorageBuffersPerShaderStage ({limits.max_storage_buffers_per_shader_stage})")
        if self.tile is not None:
            reason = self.tile.unfit(limits)
            if reason:
                raise ValueError(f"{self.name}: {reason}")
        elif self.invocations > limits.max_compute_invocations_per_workgroup:
            raise ValueError(f"{self.name}: {self.invocations} invocations per workgroup exceed "
                             f"maxComputeInvocationsPerWorkgroup ({limits.max_compute_invocations_per_workgroup})")
        if self.dispatch[1] > limits.max_compute_workgroups_per_dimension:
            raise ValueError(f"{self.name} needs {self.workgroups} workgroups, more than this device's "
                             f"maxComputeWorkgroupsPerDimension ({limits.max_compute_workgroups_per_dimension}) "
                             f"squared; split the call")


def _buffer(name: str, shape: Sequence[int]) -> ProgramInput:
    return ProgramInput(name, BufferLayout(tuple(int(d) for d in shape)))


def _epilogue_inputs(epilogue: Epilogue, channels: int, out_shape: Tuple[int, ...],
                     bias_full: bool = False) -> list:
    inputs = []
    if epilogue.has_bias:
        per_channel = epilogue.bias_per_channel and not bias_full
        inputs.append(_buffer("bias", (channels,) if per_channel else out_shape))
    if epilogue.has_residual:  # the output's shape and layout: read at the output's index
        inputs.append(_buffer("residual", out_shape))
    if epilogue.activation == "prelu":
        inputs.append(_buffer("preluActivationWeights", (channels,) if epilogue.prelu_per_channel else out_shape))
    return inputs


def _loop_cost(outer: int, inner: int = 0) -> int:
    """What a loop of ``outer`` iterations, each running a loop of ``inner``, costs one invocation on
    llvmpipe/lavapipe (``loop_iterations``): gallivm counts every pass of every loop against one
    limit (65535), the pass that leaves a loop included: ``outer + 1``, plus ``inner + 1`` per
    outer iteration (measured: the implicit GEMM's k-steps cost ``tile_k + 2`` each)."""
    return outer + 1 + (outer * (inner + 1) if inner else 0)


def _flat_workgroup(limits: WebGPULimits) -> int:
    """Invocations of a one-output-per-invocation program's workgroup: :data:`FLAT_WORKGROUP`, or
    as many as a device allows that allows fewer."""
    return min(FLAT_WORKGROUP, limits.max_compute_invocations_per_workgroup, limits.max_compute_workgroup_size_x)


def _flat_grid(size: int, workgroup: int = FLAT_WORKGROUP) -> int:
    return -(-size // workgroup)


def im2col_program(geometry: Conv2DGeometry, limits: WebGPULimits) -> ComputeProgramSpec:
    """TF.js's Im2ColProgram: the conv2d's im2col matrix, ``[groups, batch x out_height x out_width,
    filter_height x filter_width x in_channels/groups]``, written once for :func:`conv2d_mm_program`
    (``from_matrix``) to multiply by W."""
    g = geometry
    rows = g.batch * g.out_height * g.out_width
    depth = g.filter_height * g.filter_width * g.in_channels_per_group
    size = g.groups * rows * depth
    return ComputeProgramSpec(
        "Im2ColProgram", "wgsl/im2col.wgsl", (_buffer("x", g.in_shape),), BufferLayout((g.groups, rows, depth)),
        g, Epilogue(), (FLAT_WORKGROUP, 1, 1), _flat_grid(size),
        (("depth", depth), ("rows", rows), ("size", size)), iterations=0,
        max_workgroups_per_dimension=limits.max_compute_workgroups_per_dimension)


def conv2d_mm_program(geometry: Conv2DGeometry, epilogue: Epilogue, limits: WebGPULimits,
                      tile: Optional[TileConfig] = None, from_matrix: bool = False) -> ComputeProgramSpec:
    """TF.js's Conv2DMMProgram: conv2d as an implicit GEMM.  The output is a (batch x out_height x
    out_width) x out_channels matrix per group, the reduction runs over filter_height x filter_width x
    in_channels/groups; each workgroup stages tiles of the virtual im2col matrix (read from x with the
    padding and dilation applied as it loads) and of W in workgroup memory."""
    g = geometry
    if g.depthwise:
        raise ValueError("conv2d_mm_program needs a conv2d geometry, got a depthwise one")
    rows = g.batch * g.out_height * g.out_width
    cols = g.out_channels // g.groups
    depth = g.filter_height * g.filter_width * g.in_channels_per_group
    tile = tile or choose_tile(rows, cols, limits)
    tiles_m, tiles_n = -(-rows // tile.tile_m), -(-cols // tile.tile_n)
    steps = -(-depth // tile.tile_k)
    # from_matrix: the im2col matrix A (chained from Im2ColProgram) instead of x
    first = _buffer("A", (g.groups, rows, depth)) if from_matrix else _buffer("x", g.in_shape)
    inputs = (first, _buffer("W", g.filter_shape), *_epilogue_inputs(epilogue, g.out_channels, g.out_shape))
    loads_a = -(-tile.tile_m * tile.tile_k // tile.invocations)
    loads_b = -(-tile.tile_k * tile.tile_n // tile.invocations)
    # The tile loads are loops (compact code: SwiftShader's compiler takes minutes over 36 unrolled
    # loads), unrolled only where a reduction is too deep for llvmpipe/lavapipe's loop limit with them.
    iterations = _loop_cost(steps, loads_a + loads_b + tile.tile_k + 2)
    unroll_loads = iterations > LLVMPIPE_LOOP_LIMIT
    if unroll_loads:
        iterations = _loop_cost(steps, tile.tile_k)
    parameters = {"rows": rows, "cols": cols, "depth": depth, "tiles_m": tiles_m, "tiles_n": tiles_n,
                  "from_matrix": from_matrix, "loads_a": loads_a, "loads_b": loads_b, "unroll_loads": unroll_loads}
    return ComputeProgramSpec(
        "MatMulProgram" if from_matrix else "Conv2DMMProgram", "wgsl/conv2d_mm.wgsl", inputs,
        BufferLayout(g.out_shape), g, epilogue,
        (tile.workgroup[0], tile.workgroup[1], 1), tiles_m * tiles_n * g.groups, tuple(sorted(parameters.items())),
        chained_inputs=("A",) if from_matrix else ("x",), iterations=iterations, tile=tile,
        max_workgroups_per_dimension=limits.max_compute_workgroups_per_dimension)


#: Output pixels and vec4s of output channels per invocation of Conv2DBlockedProgram, and the most
#: input columns it keeps in registers.  On lavapipe (2 cores, LLVM 15, 2026-12-07) 8 pixels were
#: 1.2-2.3x faster than 4 on the benchmark's conv2d layers; 8 x 8 channels ran within the noise of
#: 8 x 4 (9.9-17.2 against 11.9-12.0 ms on conv3x3) but took 2.5 s to compile against 0.8 s, and
#: every new call shape compiles anew: 8 x 4 by default, 8 x 8 a tuning variant.
BLOCKED_PIXELS = 8
BLOCKED_BLOCKS = 1
BLOCKED_MAX_SPAN = 24


def conv2d_blocked_applies(geometry: Conv2DGeometry, pixels: int = BLOCKED_PIXELS, blocks: int = 1) -> bool:
    """Whether Conv2DBlockedProgram runs this conv2d: NHWC, output channels (per group) in fours
    (``blocks`` x 4 at a time), and a row of ``pixels`` windows no wider than
    :data:`BLOCKED_MAX_SPAN` input columns."""
    g = geometry
    span = (pixels - 1) * g.stride_width + (g.filter_width - 1) * g.dilation_width + 1
    return (not g.depthwise and g.channels_last and (g.out_channels // g.groups) % (4 * blocks) == 0
            and span <= BLOCKED_MAX_SPAN)


def conv2d_blocked_program(geometry: Conv2DGeometry, epilogue: Epilogue, limits: WebGPULimits,
                           pixels: int = BLOCKED_PIXELS, blocks: int = 0) -> ComputeProgramSpec:
    """gpuconv's register-blocked conv2d (NHWC, output channels in fours): each invocation computes
    ``pixels`` neighbouring output pixels x ``blocks`` vec4s of output channels (0: :data:`BLOCKED_BLOCKS`),
    reading each input column of their windows once per filter row and block of input channels,
    with no workgroup memory."""
    g = geometry
    if not conv2d_blocked_applies(g, pixels):
        raise ValueError("Conv2DBlockedProgram needs NHWC, output channels per group in fours, and a narrow window")
    out_blocks = g.out_channels // 4
    blocks = blocks or BLOCKED_BLOCKS
    if blocks < 1 or (g.out_channels // g.groups) % (4 * blocks):
        raise ValueError(f"Conv2DBlockedProgram: {4 * blocks} output channels per invocation need the group's "
                         f"{g.out_channels // g.groups} output channels to come in {4 * blocks}s")
    column_groups = -(-g.out_width // pixels)
    size = g.batch * g.out_height * column_groups * (out_blocks // blocks)
    span = (pixels - 1) * g.stride_width + (g.filter_width - 1) * g.dilation_width + 1
    x_vec4 = g.in_channels % 4 == 0 and g.in_channels_per_group % 4 == 0
    steps = g.in_channels_per_group // 4 if x_vec4 else g.in_channels_per_group
    inputs = (_buffer("x", g.in_shape), _buffer("W", g.filter_shape),
              *_epilogue_inputs(epilogue, g.out_channels, g.out_shape))
    parameters = {"size": size, "pixels": pixels, "blocks": blocks, "out_blocks": out_blocks,
                  "column_groups": column_groups,
                  "span": span, "x_vec4": x_vec4, "steps": steps,
                  "x_stride": g.in_channels // 4 if x_vec4 else g.in_channels}
    flat = _flat_workgroup(limits)
    return ComputeProgramSpec(
        "Conv2DBlockedProgram", "wgsl/conv2d_blocked.wgsl", inputs, BufferLayout(g.out_shape), g, epilogue,
        (flat, 1, 1), _flat_grid(size, flat), tuple(sorted(parameters.items())),
        iterations=_loop_cost(g.filter_height, steps),
        max_workgroups_per_dimension=limits.max_compute_workgroups_per_dimension,
        notes=(f"{pixels} output pixels x {4 * blocks} output channels per invocation; {span} input columns "
               f"read once per filter row and {'block of 4 input channels' if x_vec4 else 'input channel'}",))


def conv2d_naive_program(geometry: Conv2DGeometry, epilogue: Epilogue, limits: WebGPULimits) -> ComputeProgramSpec:
    """TF.js's Conv2DNaiveProgram and DepthwiseConv2DProgram: one output value per invocation,
    the filter window (and, for conv2d, the group's input channels) looped over.  Taps on the
    padding are skipped, never multiplied by zero."""
    g = geometry
    size = int(np.prod(g.out_shape))
    inputs = (_buffer("x", g.in_shape), _buffer("W", g.filter_shape),
              *_epilogue_inputs(epilogue, g.out_channels, g.out_shape))
    name = "DepthwiseConv2DProgram" if g.depthwise else "Conv2DNaiveProgram"
    flat = _flat_workgroup(limits)
    taps = g.filter_height * g.filter_width
    iterations = _loop_cost(g.filter_height, g.filter_width) + (0 if g.depthwise else
                                                                 taps * (g.in_channels_per_group + 1))
    return ComputeProgramSpec(
        name, "wgsl/conv2d_naive.wgsl", inputs, BufferLayout(g.out_shape), g, epilogue,
        (flat, 1, 1), _flat_grid(size, flat), (("size", size),), iterations=iterations,
        max_workgroups_per_dimension=limits.max_compute_workgroups_per_dimension)


#: Output pixels per invocation of DepthwiseConv2DVec4Program (TF.js: 4; 8 measured 1.1-1.5x faster on
#: lavapipe on the benchmark's depthwise layers, 2026-12-07), and the most input columns it keeps.
DEPTHWISE_COLUMNS = 8
DEPTHWISE_MAX_SPAN = 32
#: The largest channel multiplier it unrolls (m output vec4s per column: registers grow with it).
DEPTHWISE_MAX_MULTIPLIER = 4


def depthwise_vec4_program(geometry: Conv2DGeometry, epilogue: Epilogue, limits: WebGPULimits,
                           columns: int = DEPTHWISE_COLUMNS) -> ComputeProgramSpec:
    """TF.js's DepthwiseConv2DVec4Program (NHWC, input channels a multiple of 4, stride <= 2), here
    with any channel multiplier m (up to :data:`DEPTHWISE_MAX_MULTIPLIER`): each invocation computes
    ``columns`` adjacent output pixels of the 4m output channels one vec4 of input channels feeds,
    reading each input column of their windows once."""
    g = geometry
    blocks = g.in_channels // 4
    column_groups = -(-g.out_width // columns)
    size = g.batch * g.out_height * column_groups * blocks
    span = (columns - 1) * g.stride_width + (g.filter_width - 1) * g.dilation_width + 1
    inputs = (_buffer("x", g.in_shape), _buffer("W", g.filter_shape),
              *_epilogue_inputs(epilogue, g.out_channels, g.out_shape))
    m = g.channel_multiplier
    # output vec4 j of a block holds output channels 4j..4j+3 of its 4m, fed by input channels (4j + i) // m
    swizzles = ["" if m == 1 else "." + "".join("xyzw"[(4 * j + i) // m] for i in range(4)) for j in range(m)]
    parameters = {"size": size, "columns": columns, "blocks": blocks, "column_groups": column_groups,
                  "multiplier": m, "swizzles": tuple(swizzles),
                  "span": span}
    flat = _flat_workgroup(limits)
    return ComputeProgramSpec(
        "DepthwiseConv2DVec4Program", "wgsl/depthwise_vec4.wgsl", inputs, BufferLayout(g.out_shape), g, epilogue,
        (flat, 1, 1), _flat_grid(size, flat), tuple(sorted(parameters.items())),
        iterations=_loop_cost(g.filter_height),  # the columns and taps of a row are unrolled
        max_workgroups_per_dimension=limits.max_compute_workgroups_per_dimension)


def depthwise_vec4_applies(geometry: Conv2DGeometry, epilogue: Epilogue) -> bool:
    g = geometry
    span = (DEPTHWISE_COLUMNS - 1) * g.stride_width + (g.filter_width - 1) * g.dilation_width + 1
    return (g.channels_last and g.channel_multiplier <= DEPTHWISE_MAX_MULTIPLIER and g.in_channels % 4 == 0
            and g.stride_width <= 2
            and span <= DEPTHWISE_MAX_SPAN and epilogue.bias_per_channel and epilogue.prelu_per_channel)


def conv2d_backprop_input_program(geometry: Conv2DGeometry, epilogue: Epilogue, limits: WebGPULimits,
                                  bias_full: bool = False) -> ComputeProgramSpec:
    """TF.js's Conv2DDerInputProgram (and its depthwise twin): one element of dx per invocation, the
    gradient of a conv2d with respect to its input; with an epilogue, the transposed convolution."""
    g = geometry
    size = int(np.prod(g.in_shape))
    inputs = (_buffer("dy", g.out_shape), _buffer("W", g.filter_shape),
              *_epilogue_inputs(epilogue, g.in_channels, g.in_shape, bias_full))
    name = "DepthwiseConv2DDerInputProgram" if g.depthwise else "Conv2DDerInputProgram"
    taps = g.filter_height * g.filter_width
    inner = g.channel_multiplier if g.depthwise else g.out_channels
    flat = _flat_workgroup(limits)
    # dy's window corner for dx: the transposed convolution pads by (effective filter - 1 - pad) before
    pad_t = (g.effective_filter_height - 1 - g.pad_top, g.effective_filter_width - 1 - g.pad_left)
    parameters = {"size": size, "bias_full": bias_full, "axes": spatial_axes(g), "pad_t": pad_t}
    return ComputeProgramSpec(
        name, "wgsl/conv2d_backprop_input.wgsl", inputs, BufferLayout(g.in_shape), g, epilogue,
        (flat, 1, 1), _flat_grid(size, flat), tuple(sorted(parameters.items())), chained_inputs=("dy",),
        iterations=_loop_cost(g.filter_height, g.filter_width) + taps * (inner + 1),
        max_workgroups_per_dimension=limits.max_compute_workgroups_per_dimension)
