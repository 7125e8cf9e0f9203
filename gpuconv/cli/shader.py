"""``gpuconv shader``: the GLSL (or WGSL) source an op runs for some shapes, annotated, numbered, validated."""

from __future__ import annotations

import functools
import sys
from typing import Any, Callable, List, Optional, Sequence, Type

from .. import registry, validate
from ..programs import annotate, annotate_wgsl, shape_text
from ..registry import OPS, option_name
from ..target import TARGETS, WEBGL2
from ..version import __version__
from .backend import limit_kwargs
from .common import EXIT_FAILED, EXIT_NO_GL, EXIT_OK, AddCommand, Args, UsageError, emit, fail
from .options import add_limit_options, add_shape_arguments, lower, shape_call, target_algorithm_kwargs


def add_shader_command(add: AddCommand) -> None:
    multi = [e for e in OPS.values() if len(e.programs) > 1]
    p = add("shader", "print the GLSL fragment program (or WGSL compute program) an op runs",
            "Print the GLSL ES 3.00 fragment program that OP runs for these shapes "
            "(no GL needed); with --target webgpu, the WGSL compute program the WebGPU target runs "
            "(Conv2DBlockedProgram for conv2d, the vec4 depthwise program, ...; --algorithm direct: "
            "one output per invocation; TF.js's implicit GEMM, Conv2DMMProgram, is among autotune's "
            "candidates).\n"
            "Shapes are written like 1x7x7x6, in --data-format order for the input.\n"
            + "".join(f"{e.name} runs {len(e.programs)} programs ({', then '.join(e.programs)}); all are "
                      f"printed, each after the first behind a "
                      f"'{registry.program_banner(e.name, 2, len(e.programs)).split(':')[0]}' line. "
                      for e in multi),
            "gpuconv shader conv2d --input 1x7x7x6 --filter 3x3x6x4 --padding same --annotate", cmd_shader)
    add_shape_arguments(p)
    p.add_argument("--target", type=lower, choices=tuple(TARGETS), default=WEBGL2.name,
                   help="the language to generate: webgl2 (GLSL ES 3.00 fragment programs over textures, "
                        "the default) or webgpu (WGSL compute programs over storage buffers)")
    p.add_argument("--annotate", action="store_true",
                   help="add '//' comments after the first line with the parameters that shaped "
                        "the program (shapes, texture shapes, strides, pads, depth split; for WGSL the "
                        "buffers, the dispatch grid and workgroup size, the GEMM's tiling, loop iterations); "
                        "the output stays valid GLSL (WGSL)")
    p.add_argument("--line-numbers", action="store_true",
                   help="prefix lines with their number in the compiled program, to read compiler "
                        "errors (the output is then NOT valid GLSL; --annotate lines get no number)")
    p.add_argument("--validate", action="store_true",
                   help="check each program with glslangValidator (Debian's glslang-tools) as "
                        "GLSL ES 3.00, or with --target webgpu with naga (wgpu's WGSL front end, through "
                        "wgpu-py: pip install 'gpuconv[webgpu]'); exit 1 if one is invalid, 3 if the "
                        "validator is missing")
    p.add_argument("--output", metavar="FILE", help="write to FILE instead of stdout")
    add_limit_options(p, "to generate for")


def number_lines(source_lines: Sequence[str], annotated_after_first: int = 0) -> List[str]:
    """Prefix each line with its number in the compiled program.

    ``annotated_after_first`` annotation lines follow line 1; they get no number,
    so the numbers match the compiler's messages about the plain program.
    """
    width = len(str(len(source_lines) - annotated_after_first))
    numbered, n = [], 0
    for i, line in enumerate(source_lines):
        if 1 <= i <= annotated_after_first:
            numbered.append(f"{'':>{width}} | {line}".rstrip())
        else:
            n += 1
            numbered.append(f"{n:>{width}} | {line}".rstrip())
    return numbered


def annotation(op: str, spec: Any, dim_rounding_mode: Optional[str] = None, step: int = 1,
               steps: int = 1, target: str = "webgl2") -> List[str]:
    """``//`` comment lines for program ``step`` of ``steps`` of ``op`` (:func:`gpuconv.programs.annotate`,
    or for a WGSL program of the WebGPU target :func:`gpuconv.programs.annotate_wgsl`)."""
    entry = OPS[op]
    title = op
    if steps > 1:
        role = (entry.programs[step - 1] if step <= len(entry.programs) else
                "partial filter gradients over slices of the dy positions" if step < steps else
                "the sum of the partial filter gradients")
        title = f"{op}, program {step} of {steps}: {role}"
    layout = entry.filter_layouts[min(step, len(entry.filter_layouts)) - 1]
    if target != WEBGL2.name:
        return annotate_wgsl(spec, title, layout, dim_rounding_mode=dim_rounding_mode, one_d=entry.one_d,
                             forward=bool(entry.signature))
    if entry.signature or entry.spatial == 3:
        return _forward_annotation(entry, spec, title, dim_rounding_mode)
    return annotate(spec, title, layout, dim_rounding_mode=dim_rounding_mode, one_d=entry.one_d)


def _forward_annotation(entry: registry.OpEntry, spec: Any, title: str, dim_rounding_mode: Optional[str]) -> List[str]:
    """The ``//`` lines of a gradient, transposed or 3-D op's program: the forward convolution's
    shapes (the geometry these programs are planned on), strides, dilations, pads and textures."""
    g = spec.geometry
    axes = ("depth", "height", "width") if entry.spatial == 3 else ("height", "width")

    def per_axis(what: str) -> str:
        return "x".join(str(getattr(g, f"{what}_{axis}")) for axis in axes)

    sides = (("front", "back"),) * (entry.spatial == 3) + (("top", "bottom"), ("left", "right"))
    pads = ", ".join(f"{side} {getattr(g, 'pad_' + side)}" for pair in sides for side in pair)
    kind = g.padding_kind.lower() + (f" (output size rounding: {dim_rounding_mode or 'truncate'})"
                                     if g.padding_kind == "NUMBER" else "")
    textures = ", ".join(f"{i.name} {i.layout.rows}x{i.layout.cols}" for i in spec.inputs)
    output = spec.output_layouts[0]
    epilogue = getattr(spec, "epilogue", None)
    fused = [] if epilogue is None else (["bias"] if epilogue.has_bias else []) + (
        ["residual"] if epilogue.has_residual else []) + (
        [f"activation {epilogue.activation}"] if epilogue.activation != "linear" else [])
    rows = [("op", f"{title} ({spec.name}, template {spec.template})"),
            ("forward x", f"{shape_text(g.in_shape)} ({g.data_format})"),
            ("forward filter", shape_text(g.filter_shape)),
            ("forward output", f"{shape_text(g.out_shape)} ({g.data_format})"),
            ("textures", f"{textures}, output {output.rows}x{output.cols} (rows x cols)"),
            ("strides", per_axis("stride")), ("dilations", per_axis("dilation")), ("pads", pads),
            ("padding", kind), ("fused", ", ".join(fused) or "none")]
    width = max(len(k) for k, _ in rows) + 1
    rule = "// " + "-" * 70
    return [rule, f"// gpuconv {__version__}: the parameters that shaped this program", rule] + \
           [f"// {k + ':':<{width}} {v}" for k, v in rows] + [rule]


def _validate(sources: Sequence[str], target: str = "webgl2") -> int:
    """Check each program with glslangValidator (WebGL2's GLSL) or naga (WebGPU's WGSL, its compute
    pipeline within WebGPU's guaranteed limits too): EXIT_OK, EXIT_FAILED (invalid) or EXIT_NO_GL
    (no validator)."""
    wgsl = target != WEBGL2.name
    check: Callable[[str], None]
    if wgsl:
        check = functools.partial(validate.validate_wgsl, pipeline=True)
        verdict = "valid WGSL (naga, through wgpu-py)"
        unavailable: Type[Exception] = validate.WGSLValidatorUnavailableError
        invalid: Type[Exception] = validate.WGSLValidationError
    else:
        check = functools.partial(validate.validate_glsl, stage="frag")
        verdict = "valid GLSL ES 3.00 (glslangValidator)"
        unavailable, invalid = validate.GLSLValidatorUnavailableError, validate.GLSLValidationError
    for step, source in enumerate(sources, 1):
        which = f"program {step} of {len(sources)}: " if len(sources) > 1 else ""
        try:
            check(source)
        except unavailable as exc:
            fail(f"--validate: {exc}")
            return EXIT_NO_GL
        except invalid as exc:
            if wgsl:  # naga's message points a caret at the column: keep its lines
                print(f"gpuconv: error: --validate: {which}{exc}", file=sys.stderr)
            else:
                fail(f"--validate: {which}{exc}")
            return EXIT_FAILED
        print(f"gpuconv: {which}{verdict}", file=sys.stderr)
    return EXIT_OK


def cmd_shader(args: Args) -> int:
    limits = limit_kwargs(args)
    target = TARGETS[args.target]
    if limits and target is not WEBGL2:
        raise UsageError(f"{', '.join(map(option_name, limits))}: WebGL2 limits, not used with --target "
                         f"{target.name} (its programs fit WebGPU's guaranteed limits)")
    algorithm = target_algorithm_kwargs(args)
    positional, kwargs = shape_call(args, limits)
    plan = registry.plan_shapes(args.op, positional[0], positional[1], *positional[2:],
                                **{**kwargs, **algorithm, **limits, "target": target.name})
    sources = plan.sources()
    texts = []
    for step, (spec, source) in enumerate(zip(plan.specs, sources), 1):
        lines = source.splitlines()
        notes = 0
        if args.annotate:
            note = annotation(args.op, spec, args.dim_rounding_mode, step, len(sources), target.name)
            lines = lines[:1] + note + lines[1:]
            notes = len(note)
        if args.line_numbers:
            lines = number_lines(lines, notes)
        texts.append("\n".join(lines) + "\n")
    emit(registry.join_programs(args.op, texts), args.output)
    return _validate(sources, target.name) if args.validate else EXIT_OK
