"""The ``//`` comment lines ``gpuconv shader --annotate`` puts above a program."""

from __future__ import annotations

from typing import Optional, Tuple

from ..layout import (
    Layout,
)
from .base import Program, shape_text
from .packed import PackedGradientProgramSpec, PackedProgramSpec


def annotate(spec: Program, op_title: str, filter_layout: str, *, dim_rounding_mode: Optional[str] = None,
             one_d: bool = False) -> list[str]:
    """``//`` comment lines with the parameters that shaped one program (``gpuconv shader --annotate``).

    ``op_title`` names the op (and, for one program of several, which one and what it does:
    ``"separable_conv2d, program 1 of 2: depthwise"``); ``filter_layout`` is the layout of
    this program's filter; ``dim_rounding_mode`` the output size rounding of a numeric
    padding; ``one_d`` says the op is a 1-D convolution run as a conv2d of height 1.
    """
    from .. import __version__

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
    kind = g.padding_kind.lower()
    if g.padding_kind == "NUMBER":
        kind += f" (output size rounding: {dim_rounding_mode or 'truncate'})"
    epilogue = spec.epilogue
    fused = ["bias"] if epilogue.has_bias else []
    if epilogue.activation == "leakyrelu":
        fused.append(f"activation leakyrelu (alpha {epilogue.leakyrelu_alpha:g})")
    elif epilogue.activation != "linear":
        fused.append(f"activation {epilogue.activation}")
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
        ("fused", ", ".join(fused) or "none"),
    ]
    width = max(len(k) for k, _ in rows) + 1
    rule = "// " + "-" * 70
    return [rule, f"// gpuconv {__version__}: the parameters that shaped this program", rule] + \
           [f"// {k + ':':<{width}} {v}" for k, v in rows] + [rule]
