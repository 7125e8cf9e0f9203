"""The ``//`` comment lines ``gpuconv shader --annotate`` puts above a program: :func:`annotate`
for a GLSL fragment program (textures), :func:`annotate_wgsl` for a WGSL compute program
(storage buffers, the dispatch grid, the GEMM's tiling).  ``//`` is a comment in both languages."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, List, Optional, Protocol, Sequence, Tuple

from ..layout import (
    Layout,
)
from .base import LLVMPIPE_LOOP_LIMIT, Epilogue, Program, ProgramInput, shape_text
from .packed import PackedGradientProgramSpec, PackedProgramSpec

if TYPE_CHECKING:  # pragma: no cover
    from ..geometry import Conv2DGeometry


class _Tiling(Protocol):
    """What :func:`annotate_wgsl` reads of a WGSL program's GEMM tiling (``gpuconv.webgpu.programs.TileConfig``)."""

    @property
    def tile_m(self) -> int: ...
    @property
    def tile_n(self) -> int: ...
    @property
    def tile_k(self) -> int: ...
    @property
    def per_invocation(self) -> Tuple[int, int]: ...
    @property
    def workgroup_bytes(self) -> int: ...


class _Shaped(Protocol):
    @property
    def shape(self) -> Tuple[int, ...]: ...


class ComputeProgramFacts(Protocol):
    """What :func:`annotate_wgsl` reads of a WGSL compute program
    (``gpuconv.webgpu.programs.ComputeProgramSpec`` has it): named here, structurally, so the
    programs package never imports the WebGPU target's programs, which import it."""

    @property
    def name(self) -> str: ...
    @property
    def template(self) -> str: ...
    @property
    def geometry(self) -> "Conv2DGeometry": ...
    @property
    def epilogue(self) -> Epilogue: ...
    @property
    def inputs(self) -> Tuple[ProgramInput, ...]: ...
    @property
    def output(self) -> _Shaped: ...
    @property
    def parameters(self) -> Tuple[Tuple[str, Any], ...]: ...
    @property
    def tile(self) -> Optional[_Tiling]: ...
    @property
    def notes(self) -> Tuple[str, ...]: ...
    @property
    def workgroup_size(self) -> Tuple[int, int, int]: ...
    @property
    def workgroups(self) -> int: ...
    @property
    def max_workgroups_per_dimension(self) -> int: ...
    @property
    def dispatch(self) -> Tuple[int, int, int]: ...
    @property
    def invocations(self) -> int: ...
    @property
    def loop_iterations(self) -> int: ...


def _padding_kind(g: "Conv2DGeometry", dim_rounding_mode: Optional[str]) -> str:
    kind = g.padding_kind.lower()
    if g.padding_kind == "NUMBER":
        kind += f" (output size rounding: {dim_rounding_mode or 'truncate'})"
    return kind


def _fused(epilogue: Epilogue, bias_full: bool = False, prelu_detail: bool = False) -> str:
    """The fused epilogue in words (``prelu_detail``/``bias_full``: say how the bias and weights are read)."""
    fused = []
    if epilogue.has_bias:
        per_channel = epilogue.bias_per_channel and not bias_full
        fused.append("bias" + ((" (one per channel)" if per_channel else " (the output's shape)")
                               if prelu_detail else ""))
    if getattr(epilogue, "has_residual", False):
        fused.append("residual" + (" (the output's shape)" if prelu_detail else ""))
    if epilogue.activation == "leakyrelu":
        fused.append(f"activation leakyrelu (alpha {epilogue.leakyrelu_alpha:g})")
    elif epilogue.activation == "prelu" and prelu_detail:
        fused.append("activation prelu (weights " + ("one per channel)" if epilogue.prelu_per_channel
                                                     else "of the output's shape)"))
    elif epilogue.activation != "linear":
        fused.append(f"activation {epilogue.activation}")
    return ", ".join(fused) or "none"


def _block(rows: Sequence[Tuple[str, str]]) -> List[str]:
    """The rows as ``// key: value`` lines between rules, under gpuconv's version."""
    from ..version import __version__

    width = max(len(k) for k, _ in rows) + 1
    rule = "// " + "-" * 70
    return [rule, f"// gpuconv {__version__}: the parameters that shaped this program", rule] + \
           [f"// {k + ':':<{width}} {v}" for k, v in rows] + [rule]


def annotate(spec: Program, op_title: str, filter_layout: str, *, dim_rounding_mode: Optional[str] = None,
             one_d: bool = False) -> list[str]:
    """``//`` comment lines with the parameters that shaped one program (``gpuconv shader --annotate``).

    ``op_title`` names the op (and, for one program of several, which one and what it does:
    ``"separable_conv2d, program 1 of 2: depthwise"``); ``filter_layout`` is the layout of
    this program's filter; ``dim_rounding_mode`` the output size rounding of a numeric
    padding; ``one_d`` says the op is a 1-D convolution run as a conv2d of height 1.
    """
    g = spec.geometry

    def texture_text(name: str, layout: Layout) -> str:
        kind = "RGBA" if layout.components == 4 else "R"
        return f"{name} {layout.rows}x{layout.cols} {kind}{' (wrapped)' if getattr(layout, 'wrapped', False) else ''}"

    textures = ", ".join(texture_text(i.name, i.layout) for i in spec.inputs)
    outputs = spec.output_layouts
    textures += ", " + texture_text("output", outputs[0])
    if len(outputs) > 1:
        textures += f" x {len(outputs)} render targets"
    split: Tuple[str, str]
    if isinstance(spec, PackedGradientProgramSpec):
        depth = (f"dy's {g.out_channels} channels in blocks of 4 (one RGBA texel each); "
                 f"{spec.pixels} dx pixels x 4 dx channels per fragment, fold {spec.fold}")
        split = ("groups", str(g.groups))
    elif isinstance(spec, PackedProgramSpec):
        depth = (f"{g.in_channels} channels in blocks of 4 (one RGBA texel each); "
                 f"{spec.pixels} pixels x 4 output channels per fragment, fold {spec.fold}")
        split = ("groups", str(g.groups)) if not g.depthwise else ("channel multiplier", str(g.channel_multiplier))
    elif g.depthwise:
        depth = (f"{g.in_channels} channels; depthwise: each output channel reads one input "
                 f"channel (no vec4 depth loop)")
        split = ("channel multiplier", str(g.channel_multiplier))
    else:
        context = spec.template_context()
        depth = (f"{g.in_channels_per_group} per group = {context['depth_vec4']} (vec4 part) + "
                 f"{context['depth_remainder']} (remainder)")
        split = ("groups", str(g.groups))
    kind = _padding_kind(g, dim_rounding_mode)
    title = f"{op_title} ({spec.name}, template {spec.template})"
    if one_d:
        title += "; run as a conv2d of height 1, shapes below are its 4-D ones"
        filter_layout = "1 x " + filter_layout
    rows = [
        ("op", title),
        ("x", f"{shape_text(g.in_shape)} ({g.data_format})"),
        ("filter", f"{shape_text(g.filter_shape)} ({filter_layout})"),
        ("output", f"{shape_text(g.out_shape)} ({g.data_format})"),
        ("textures", f"{textures} (rows x cols)"),
        ("strides", f"{g.stride_height}x{g.stride_width}"),
        ("dilations", f"{g.dilation_height}x{g.dilation_width}"),
        ("pads", f"top {g.pad_top}, bottom {g.pad_bottom}, left {g.pad_left}, right {g.pad_right}"),
        ("padding", kind),
        ("input depth", depth),
        split,
        ("fused", _fused(spec.epilogue)),
    ]
    return _block(rows)


def annotate_wgsl(spec: ComputeProgramFacts, op_title: str, filter_layout: str, *,
                  dim_rounding_mode: Optional[str] = None, one_d: bool = False,
                  forward: bool = False) -> List[str]:
    """``//`` comment lines with the parameters that shaped one WGSL compute program of the WebGPU
    target: its storage buffers and their shapes, the dispatch grid and workgroup size, the
    implicit GEMM's tiling (or what one invocation computes), the loop iterations per invocation,
    the fused epilogue, and the op's facts as :func:`annotate` gives them.

    ``forward``: the program is a gradient or transposed op's, planned on its forward convolution,
    whose shapes the x/filter/output lines then name (the buffers line has the program's own)."""
    g = spec.geometry
    parameters = dict(spec.parameters)
    bindings = [f"{item.name} {shape_text(item.layout.shape)} (binding {i})" for i, item in enumerate(spec.inputs)]
    bindings.append(f"output {shape_text(spec.output.shape)} (binding {len(spec.inputs)})")
    x, y, z = spec.dispatch
    size = "x".join(str(d) for d in spec.workgroup_size)
    folded = f", folded into y at {spec.max_workgroups_per_dimension} per axis" if y > 1 else ""
    grid = (f"{x}x{y}x{z} workgroups ({spec.workgroups} needed{folded}) of {size} "
            f"= {spec.invocations} invocations")
    taps = f"{g.filter_height}x{g.filter_width} filter window"
    work: List[Tuple[str, str]]
    if spec.tile is not None:
        tile = spec.tile
        per_group = f", per group (x {g.groups} groups)" if g.groups > 1 else ""
        work = [("GEMM", f"{parameters['rows']} rows (output pixels) x {parameters['cols']} cols (output channels) x "
                         f"{parameters['depth']} depth (filter taps x input channels){per_group}; no im2col matrix "
                         f"is written"),
                ("tiling", f"tile {tile.tile_m}x{tile.tile_n} (tile_m x tile_n), k-step {tile.tile_k}, "
                           f"{tile.per_invocation[0]}x{tile.per_invocation[1]} outputs per invocation, "
                           f"{tile.workgroup_bytes} bytes of workgroup memory; {parameters['tiles_m']}x"
                           f"{parameters['tiles_n']} tiles")]
    elif spec.name == "DepthwiseConv2DVec4Program":
        work = [("per invocation", f"{parameters['columns']} adjacent output pixels x 4 channels (one vec4 of "
                                   f"{parameters['blocks']}), reading the {parameters['span']} input columns of "
                                   f"their windows once per filter row")]
    elif spec.name in ("Conv2DDerInputProgram", "DepthwiseConv2DDerInputProgram"):
        inner = f"{g.channel_multiplier} multiplier channel(s)" if g.depthwise else f"{g.out_channels} dy channels"
        work = [("per invocation", f"one element of dx; the {taps} x {inner}, dy positions off the stride grid "
                                   f"skipped")]
    elif spec.name in ("Conv2DNaiveProgram", "DepthwiseConv2DProgram"):
        inner = "its one input channel" if g.depthwise else f"{g.in_channels_per_group} input channels"
        work = [("per invocation", f"one output value; the {taps} x {inner}, taps on the padding skipped")]
    else:  # a program this does not know by name says what an invocation does in its notes
        work = [("per invocation", "; ".join(spec.notes) or "see the program's comments")]
    kind = _padding_kind(g, dim_rounding_mode)
    title = f"{op_title} ({spec.name}, template {spec.template})"
    if one_d:
        title += "; run as a conv2d of height 1, shapes below are its 4-D ones"
        filter_layout = "1 x " + filter_layout
    prefix = "forward " if forward else ""
    if hasattr(g, "filter_depth"):  # a 3-D program's Conv3DGeometry
        g3: Any = g
        shape = [("strides", shape_text(g3.strides)), ("dilations", shape_text(g3.dilations)),
                 ("pads", f"front {g3.pad_front}, back {g3.pad_back}, top {g3.pad_top}, bottom {g3.pad_bottom}, "
                          f"left {g3.pad_left}, right {g3.pad_right}")]
        split: Optional[Tuple[str, str]] = None
    else:
        shape = [("strides", f"{g.stride_height}x{g.stride_width}"),
                 ("dilations", f"{g.dilation_height}x{g.dilation_width}"),
                 ("pads", f"top {g.pad_top}, bottom {g.pad_bottom}, left {g.pad_left}, right {g.pad_right}")]
        split = ("channel multiplier", str(g.channel_multiplier)) if g.depthwise else ("groups", str(g.groups))
    rows = [
        ("op", title),
        (prefix + "x", f"{shape_text(g.in_shape)} ({g.data_format})"),
        (prefix + "filter", f"{shape_text(g.filter_shape)}" + ("" if forward else f" ({filter_layout})")),
        (prefix + "output", f"{shape_text(g.out_shape)} ({g.data_format})"),
        ("buffers", ", ".join(bindings) + "; f32 values, row-major, padded to a whole vec4"),
        ("dispatch", grid),
        *work,
        ("loop iterations", f"{spec.loop_iterations} per invocation (llvmpipe/lavapipe end a loop after "
                            f"{LLVMPIPE_LOOP_LIMIT})"),
        *shape,
        ("padding", kind),
        *([split] if split else []),
        ("fused", _fused(spec.epilogue, bool(parameters.get("bias_full")), prelu_detail=True)),
    ]
    return _block(rows)
