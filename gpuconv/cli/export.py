"""``gpuconv export``: an op's programs as a JavaScript module or a self-checking web page, or the
conformance suite as one page (``gpuconv export conformance``)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Dict

from .. import registry
from ..conformance.page import build_page
from ..export import FORMATS, MAX_EMBEDDED_TEXT, build
from ..registry import OPS, option_name
from ..target import TARGETS, WEBGL2
from .backend import limit_kwargs
from .common import (
    DEFAULT_TOLERANCE,
    EXIT_OK,
    FLOAT16_TOLERANCE,
    AddCommand,
    Args,
    UsageError,
    emit,
    ops_with,
    tolerance_for,
)
from .options import (
    OPS_HELP,
    add_conv_options,
    add_leading_options,
    add_limit_options,
    add_storage_option,
    algorithm_kwargs,
    check_fused_options,
    conv_kwargs,
    leading_values,
    lower,
    parse_shape,
    positive_float,
    target_algorithm_kwargs,
)


def add_export_command(add: AddCommand) -> None:
    p = add("export", "write an op's programs as a JavaScript module or a self-checking web page",
            "Write the programs OP runs for these shapes on WebGL2 (or, with --target webgpu, the WGSL "
            "compute programs of the WebGPU target; what 'run' runs: --algorithm auto by "
            "default) as a dependency-free ES module (--format js: it exports shapes and run(gl, inputs), "
            "which takes Float32Arrays in NumPy order and returns the output) or as one self-contained "
            "HTML page (--format html) that runs them on load on seeded inputs, compares the result "
            "with the float64 oracle's and shows PASS or FAIL, the renderer and the warm time (no "
            "network, no other files).\nShapes are written like 1x64x64x16, in --data-format order for "
            f"the input. A page embeds at most {MAX_EMBEDDED_TEXT} of data (inputs and the oracle's "
            "output). The module and the page need WebGL2 with EXT_color_buffer_float and as many draw "
            "buffers as the packed programs draw at once: --max-draw-buffers 4 runs on every WebGL2 "
            "device (phones too).",
            "gpuconv export conv2d --input 1x64x64x16 --filter 3x3x16x32 --padding same --format html "
            "--output conv.html", cmd_export)
    p.add_argument("op", choices=list(OPS) + ["conformance"], metavar="OP",
                   help=f"one of: {OPS_HELP}; or conformance: one page that runs the conformance suite "
                        f"in the visitor's browser on WebGL2 and, where the browser has it, WebGPU (--quick, "
                        f"the default, or --full)")
    add_leading_options(p, "SHAPE", parse_shape)
    add_conv_options(p)
    _add_export_conformance_options(p)
    p.add_argument("--bias", action="store_true",
                   help=f"fuse a per-channel bias, an input of the module ({ops_with('fused')})")
    p.add_argument("--residual", action="store_true",
                   help=f"fuse a residual, an input of the module of the output's shape in --data-format order, "
                        f"added after the bias and before the activation ({ops_with('fused')})")
    p.add_argument("--format", choices=FORMATS, default=None,
                   help="js: an ES module (default); html: a self-checking page (the default when "
                        "--output ends in .html)")
    p.add_argument("--target", type=lower, choices=tuple(TARGETS), default=WEBGL2.name,
                   help="webgl2 (GLSL fragment programs, the default) or webgpu (the WGSL compute programs: "
                        "the module exports run(device, inputs), a Promise of the output, and requirements.limits; "
                        "the page requests an adapter, ?featureLevel=core|compatibility in its URL chooses)")
    p.add_argument("--output", metavar="FILE", help="write to FILE instead of stdout")
    p.add_argument("--seed", type=int, default=None,
                   help="seed of the page's inputs, uniform in [-1, 1] (default 0); --format html only")
    p.add_argument("--tolerance", type=positive_float, default=None, metavar="T",
                   help=f"largest relative error the page accepts (default {DEFAULT_TOLERANCE:g}; "
                        f"{FLOAT16_TOLERANCE:g} with --storage float16); --format html only")
    add_storage_option(p.add_argument_group("storage"))
    add_limit_options(p, "to generate for")


def _add_export_conformance_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("export conformance")
    g.add_argument("--quick", action="store_true", default=None,
                   help="with OP conformance: the quick suite (the default)")
    g.add_argument("--full", action="store_true", default=None,
                   help="with OP conformance: the whole suite of each target (a larger page)")


def cmd_export(args: Args) -> int:
    if args.op == "conformance":
        return cmd_export_conformance(args)
    entry = OPS[args.op]
    conv = conv_kwargs(args)
    check_fused_options(args)
    target = TARGETS[args.target]
    if target is not WEBGL2:
        webgl2_only = list(limit_kwargs(args)) + (["storage"] if args.storage not in (None, "float32") else [])
        if webgl2_only:
            raise UsageError(f"{', '.join(map(option_name, webgl2_only))}: WebGL2 options, not used with --target "
                             f"{target.name} (its programs fit WebGPU's guaranteed limits; its buffers hold float32)")
    algorithm = target_algorithm_kwargs(args) if target is not WEBGL2 else algorithm_kwargs(args, "auto")
    positional, extra = registry.shape_call(args.op, leading_values(args, lambda v, _: v))
    format = args.format or ("html" if str(args.output or "").lower().endswith((".html", ".htm")) else "js")
    if format != "html":
        for option in ("seed", "tolerance"):
            if getattr(args, option) is not None:
                raise UsageError(f"{option_name(option)} is only used with --format html (the page's inputs "
                                 f"and its check)")
    if args.output and os.path.isdir(args.output):
        raise UsageError(f"--output: cannot write {args.output!r}: it is a directory")
    fused: Dict[str, Any] = {}
    if entry.fused:
        fused = {"activation": args.activation, "leakyrelu_alpha": args.leakyrelu_alpha}
        if args.bias:
            fused["bias"] = True  # one value per output channel
        if args.activation == "prelu":
            fused["prelu_weights"] = True  # one weight per output channel
        if args.residual:
            fused["residual"] = True  # the output's shape
    exported = build(args.op, positional[0], positional[1], *positional[2:], format=format,
                     seed=0 if args.seed is None else args.seed,
                     tolerance=tolerance_for(args, args.tolerance), storage=args.storage or "float32",
                     target=target.name, **{**algorithm, **conv, **fused, **extra, **limit_kwargs(args)})
    emit(exported.text, args.output)
    print(f"gpuconv: {exported.summary()}", file=sys.stderr)
    return EXIT_OK


def cmd_export_conformance(args: Args) -> int:
    if args.quick and args.full:
        raise UsageError("--quick and --full: choose one")
    format = args.format or "html"
    if format != "html":
        raise UsageError("export conformance writes an HTML page (--format html)")
    if args.output and os.path.isdir(args.output):
        raise UsageError(f"--output: cannot write {args.output!r}: it is a directory")
    page = build_page(suite="full" if args.full else "quick", seed=0 if args.seed is None else args.seed,
                      **limit_kwargs(args))
    emit(page.text, args.output)
    print(f"gpuconv: {page.summary()}", file=sys.stderr)
    return EXIT_OK
