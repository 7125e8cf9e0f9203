"""The ``gpuconv`` command: parse the command line and dispatch to gpuconv.

Subcommands (each has ``--help`` with an example to copy):

* ``gpuconv shader OP --input 1x7x7x6 --filter 3x3x6x4 ...``: print the generated GLSL
  (``--target webgpu``: the WGSL compute program the WebGPU target runs);
* ``gpuconv run OP --input x.npy --filter w.npy ... [--check]``: run an op on .npy files;
* ``gpuconv selftest [--quick]``: a fixed matrix of convolutions, GPU against the oracle;
* ``gpuconv random --count N``: seeded random configurations, GPU against the oracle;
* ``gpuconv info``: the GL device and the versions in use;
* ``gpuconv export OP --input ... --format js|html``: the programs as a JavaScript module or a web page;
* ``gpuconv demo``: one real convolution, timed and checked.

The ops and their options come from :mod:`gpuconv.registry`, the checks from
:mod:`gpuconv.checks`, the runtime from :func:`gpuconv.runtimes.make_runtime`
(``--backend native|browser|webgpu``, ``--gl``, ``--api webgl2|webgpu`` for the browser).

Exit codes: 0 success, 1 a result outside the tolerance (or invalid GLSL), 2 bad
arguments, 3 no usable OpenGL (or browser, WebGPU adapter, or GLSL/WGSL validator), 4 an unexpected error
(``--debug`` adds the traceback of any error).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib
import os
import statistics
import sys
import textwrap
import time
import traceback
from typing import Any, Callable, Dict, Iterable, List, NoReturn, Optional, Sequence, Tuple, Union

import numpy as np

from . import checks, registry, tuning
from .arguments import ACTIVATIONS
from .geometry import ROUNDING_MODES
from .ops import ALGORITHMS
from .precision import DEFAULT_PRECISION_TOLERANCE
from .precompile import precompile
from .profiler import profile
from .programs import annotate, annotate_wgsl, shape_text
from .registry import OPS, option_name, padding_text, pair_text
from .runtimes import BACKEND_ENV, RUNTIME_KINDS, BaseRuntime, GLUnavailableError, make_runtime
from .storage import STORAGES
from .target import TARGETS, WEBGL2, NotOnTargetError
from .tuning import autotune
from .version import __version__

#: The default tolerance of run --check, selftest, random and export's page with --storage float16:
#: float16 keeps 11 significant bits, and a sum of many rounded products drifts further.
FLOAT16_TOLERANCE = 1e-2

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_NO_GL, EXIT_INTERNAL = 0, 1, 2, 3, 4
DEFAULT_TOLERANCE = checks.DEFAULT_TOLERANCE
SELFTEST_CASES = checks.SELFTEST_CASES

#: --gl values for each --backend (the first is the default); wgpu-py picks WebGPU's adapter itself.
GL_CHOICES: Dict[str, Tuple[str, ...]] = {"native": ("egl", "glfw"), "browser": ("angle-egl", "swiftshader"),
                                          "webgpu": ()}
#: --api values: what a browser runtime's page runs (the first is the default).
API_CHOICES: Tuple[str, ...] = ("webgl2", "webgpu")

Args = argparse.Namespace


def _with(names: Iterable[str]) -> str:
    return ", ".join(names)


def _ops_with(flag: str) -> str:
    return _with(registry.ops_with(flag))


# ---------------------------------------------------------------------------
# parse helpers (argparse `type=` functions: they raise ArgumentTypeError)


def _positive_ints(text: str, sep: str, what: str, example: str) -> Tuple[int, ...]:
    parts = text.strip().lower().split(sep)
    try:
        values = tuple(int(p) for p in parts)
    except ValueError:
        values = ()
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(
            f"expected {what} written like {example} (positive integers joined by '{sep}'), got {text!r}")
    return values


def parse_shape(text: str) -> Tuple[int, ...]:
    """``"1x7x7x6"`` -> ``(1, 7, 7, 6)``."""
    return _positive_ints(text, "x", "a shape", "1x7x7x6")


def parse_pair(text: str) -> Union[int, Tuple[int, ...]]:
    """``"2"`` -> ``2``; ``"2x1"`` -> ``(2, 1)`` (height, width); ``"1x2x2"`` -> ``(1, 2, 2)``
    (depth, height, width: the 3-D ops)."""
    values = _positive_ints(text, "x", "one integer, an HxW pair or a DxHxW triple", "2, 2x1 or 1x2x2")
    if len(values) > 3:
        raise argparse.ArgumentTypeError(
            f"expected one integer, an HxW pair or a DxHxW triple written like 2, 2x1 or 1x2x2, got {text!r}")
    return values[0] if len(values) == 1 else values


def parse_padding(text: str) -> Any:
    """``same``/``valid`` -> ``"SAME"``/``"VALID"``; ``1`` -> ``1``; ``L,R`` -> ``[L, R]`` (conv1d);
    ``T,B,L,R`` -> ``[[T, B], [L, R]]``."""
    word = text.strip().upper()
    if word in ("SAME", "VALID"):
        return word
    try:
        values = [int(p) for p in word.split(",")]
    except ValueError:
        values = []
    if len(values) in (1, 2, 4, 6) and min(values) >= 0:
        if len(values) == 1:
            return values[0]
        return values if len(values) == 2 else [values[i:i + 2] for i in range(0, len(values), 2)]
    raise argparse.ArgumentTypeError(
        f"expected same, valid, a number of pixels (1), explicit pads top,bottom,left,right "
        f"(1,0,2,1), for conv1d left,right (2,1), for the 3-D ops front,back,top,bottom,left,right "
        f"(1,1,0,0,2,1), got {text!r}")


def _upper(text: str) -> str:
    return text.upper()


def _lower(text: str) -> str:
    return text.lower()


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number like 1e-5, got {text!r}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


# ---------------------------------------------------------------------------
# the options of the ops' leading arguments (arrays, and the shape of the gradient and transposed ops)

#: Every leading argument's option, in the order the ops name them (--input, --filter, --dy, ...).
LEADING_OPTIONS: Tuple[str, ...] = tuple(dict.fromkeys(
    ["--input", "--filter"] + [registry.array_option(n) for e in OPS.values() for n in e.leading]))

_LEADING_HELP = {
    "--input": "the input x, {metavar}, in --data-format order, e.g. 1x7x7x6 (NHWC), 1x6x7x7 (NCHW), "
               "1x20x3 (conv1d, NWC) or 1x5x7x7x6 (NDHWC); the batch may be left out",
    "--filter": "the filter, {metavar}, e.g. 3x3x6x4 ("
                + "; ".join(f"{n}: {e.first_layout or e.filter_layouts[0]}" for n, e in OPS.items()
                            if "filter" in e.arrays or "depthwise_filter" in e.arrays) + ")",
    "--dy": "the gradient of the forward output, {metavar}, of the forward convolution's output shape "
            "in --data-format order",
    "--pointwise-filter": "the second filter, {metavar}, 1 x 1 x in_channels*channel_multiplier x out_channels, "
                          "e.g. 1x1x6x8",
    "--output-shape": "the result's shape in --data-format order (the forward convolution's input), "
                      "e.g. 1x7x7x3; the batch may be left out",
    "--input-shape": "the forward input's shape in --data-format order, the result's, e.g. 1x7x7x3; "
                     "the batch may be left out",
    "--filter-shape": "the filter's shape, the result's, e.g. 3x3x3x6",
}


def _dest(option: str) -> str:
    return option[2:].replace("-", "_")


def _option_owners(option: str) -> List[str]:
    """The ops that take ``option``."""
    return [name for name, e in OPS.items() if option in {registry.array_option(n) for n in e.leading}]


def _leading_text(entry: registry.OpEntry, name: str) -> str:
    """What the value of leading argument ``name`` of ``entry`` is, for a message."""
    if name == entry.shape_argument:
        return f"its {name}, a shape like {'3x3x3x6' if name == 'filter_shape' else '1x7x7x3'}"
    if name in entry.filters:
        return entry.filter_layouts[entry.filters.index(name)]
    return entry.first_layout or f"the {name}, in --data-format order"


def leading_values(args: argparse.Namespace, load: Callable[[Any, str], Any]) -> Dict[str, Any]:
    """The op's leading arguments by name from their options (``load(value, option)`` each array;
    shapes as parsed).  A missing one, or the option of another op's argument, is a UsageError
    naming the option."""
    entry = OPS[args.op]
    mine = [registry.array_option(n) for n in entry.leading]
    for option in LEADING_OPTIONS:
        if option not in mine and getattr(args, _dest(option), None) is not None:
            raise UsageError(f"{option} is an option of {_with(_option_owners(option))} only, not of {args.op} "
                             f"(it takes {', '.join(mine)})")
    values: Dict[str, Any] = {}
    for name in entry.leading:
        option = registry.array_option(name)
        value = getattr(args, _dest(option), None)
        if value is None:
            raise UsageError(f"{args.op} needs {option} ({_leading_text(entry, name)})")
        values[name] = value if name == entry.shape_argument else load(value, option)
    return values


# ---------------------------------------------------------------------------
# argument parser


class UsageError(ValueError):
    """A bad command line; reported in one line with exit code 2."""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser that raises instead of printing usage and exiting."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


def _add_conv_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("convolution")
    three_d = _with(name for name, e in OPS.items() if e.spatial == 3)
    g.add_argument("--strides", type=parse_pair, default=1, metavar="S|HxW|DxHxW",
                   help="stride, one for every axis (2) or height x width (2x1); default 1; "
                        f"one integer for {_ops_with('one_d')} (its stride=); depth x height x width "
                        f"(1x2x2) for {three_d}")
    g.add_argument("--dilations", type=parse_pair, default=1, metavar="D|HxW|DxHxW",
                   help="dilation rate, like --strides")
    g.add_argument("--padding", type=parse_padding, default="VALID", metavar="PAD",
                   help="same, valid (default), a number of pixels on every side (1), "
                        "or explicit pads top,bottom,left,right (1,0,2,1); "
                        f"for {_ops_with('one_d')}: a number, or left,right (2,1); for {three_d}: "
                        f"front,back,top,bottom,left,right (1,1,0,0,2,1)")
    g.add_argument("--dim-rounding-mode", type=_lower, choices=ROUNDING_MODES, default=None,
                   help="rounding of the output size when --padding is a number (default: truncate); "
                        f"for {_ops_with('rounding')}")
    g.add_argument("--data-format", type=_upper, choices=registry.ALL_DATA_FORMATS, default=None,
                   help="layout of the input and output; the filter layout does not change. "
                        + "; ".join(f"{name}: {' or '.join(e.data_formats)}" for name, e in OPS.items())
                        + " (the first is the default)")
    g.add_argument("--groups", type=int, default=1, metavar="N",
                   help=f"grouped convolution ({_ops_with('grouped')} only); default 1")
    g.add_argument("--activation", type=_lower, choices=ACTIVATIONS, default=None,
                   help=f"fused activation after the convolution (and bias); {_ops_with('fused')}")
    g.add_argument("--leakyrelu-alpha", type=float, default=None, metavar="A",
                   help="slope for --activation leakyrelu (default 0.2); refused with another activation")
    g.add_argument("--algorithm", type=_lower, choices=ALGORITHMS, default=None,
                   help="direct: TF.js's programs (one output per fragment); packed: the fast "
                        "shape-generic programs; im2col: TF.js's default conv2d path (im2col + matrix "
                        "multiply); auto: packed or im2col where each measured faster. Default: direct "
                        "for 'shader' (the TF.js-style source), auto for 'run' (what the API runs); "
                        f"{_ops_with('algorithms')} only (the others run their direct program). The WebGPU "
                        f"target (--target/--backend webgpu) runs auto (its tiled programs: the implicit GEMM, "
                        f"the vec4 depthwise program; the default of 'shader' there too) or direct")


def _add_limit_options(p: argparse.ArgumentParser, what: str) -> None:
    g = p.add_argument_group("device limits")
    g.add_argument("--max-texture-size", type=_positive_int, default=None, metavar="N",
                   help=f"the largest texture side {what} (default: the device's, at most 16384; "
                        f"WebGL2 guarantees 2048)")
    g.add_argument("--max-draw-buffers", type=_positive_int, default=None, metavar="N",
                   help=f"the most render targets of one draw {what} (default: the device's, at most 8; "
                        f"WebGL2 guarantees 4)")


def _add_runtime_options(p: argparse.ArgumentParser, limits: bool = True) -> None:
    g = p.add_argument_group("runtime")
    g.add_argument("--backend", type=_lower, choices=RUNTIME_KINDS, default=None,
                   help=f"where the programs run: native (moderngl in this process, the default), "
                        f"browser (headless Chromium: WebGL2, or WebGPU with --api webgpu) or webgpu (the "
                        f"WebGPU target's WGSL programs through wgpu-py; Mesa's lavapipe without a GPU); "
                        f"default browser or webgpu when {BACKEND_ENV} says so")
    g.add_argument("--gl", type=_lower, choices=tuple(c for kinds in GL_CHOICES.values() for c in kinds),
                   default=None, metavar="NAME",
                   help="the GL under the runtime: " + "; ".join(
                       f"{kind}: {' or '.join(names)}" for kind, names in GL_CHOICES.items() if names)
                   + " (the first is the default); none for webgpu")
    g.add_argument("--api", type=_lower, choices=API_CHOICES, default=None,
                   help="with --backend browser: the page's API, webgl2 (the default) or webgpu "
                        "(Chromium's WebGPU running the WebGPU target's WGSL programs)")
    _add_storage_option(g)
    if limits:
        _add_limit_options(p, "the runtime lays out and generates for")


def _add_storage_option(g: Any) -> None:
    g.add_argument("--storage", type=_lower, choices=STORAGES, default=None,
                   help="how every texture stores its values: float32 (R32F/RGBA32F, the default) or float16 "
                        "(R16F/RGBA16F, as TF.js stores tensors on phones without float32 render targets); "
                        f"with float16 the default tolerance is {FLOAT16_TOLERANCE:g}")


def _tolerance(args: Args, given: Optional[float]) -> float:
    """--tolerance, or its default for --storage (float16's is looser)."""
    if given is not None:
        return given
    return FLOAT16_TOLERANCE if getattr(args, "storage", None) == "float16" else DEFAULT_TOLERANCE


def build_parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="also print the traceback of an error (the exit code stays the same)")

    parser = _Parser(
        prog="gpuconv",
        description="Generate, inspect and run TensorFlow.js-style WebGL convolution shaders "
                    "headless, checked against a float64 NumPy oracle.",
        epilog="examples:\n"
               "  gpuconv shader conv2d --input 1x7x7x6 --filter 3x3x6x4 --padding same\n"
               "  gpuconv shader conv2d --input 1x7x7x6 --filter 3x3x6x4 --target webgpu --annotate\n"
               "  gpuconv selftest --quick\n"
               "  gpuconv selftest --quick --backend webgpu\n"
               "  gpuconv random --count 200 --seed 0\n\n"
               "exit codes: 0 ok, 1 result outside the tolerance, 2 bad arguments, "
               "3 no usable OpenGL, 4 unexpected error",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"gpuconv {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    ops_help = "; ".join(f"{name}: {entry.summary}" for name, entry in OPS.items())

    def add(name: str, help: str, description: str, example: str,
            func: Callable[[Args], int]) -> argparse.ArgumentParser:
        paragraphs = [textwrap.fill(text, 88) for text in description.split("\n")]
        p = sub.add_parser(name, help=help, description="\n".join(paragraphs) + f"\n\nexample:\n  {example}",
                           formatter_class=argparse.RawDescriptionHelpFormatter, parents=[common])
        p.set_defaults(func=func)
        return p

    def add_leading(p: argparse.ArgumentParser, metavar: str, kind: Callable[[str], Any] = str) -> None:
        """--input, --filter and the options of the other leading arguments (--dy,
        --pointwise-filter, --output-shape, ...): arrays as ``kind`` gives them, shapes as shapes."""
        for option in LEADING_OPTIONS:
            owners = _option_owners(option)
            names = {n for e in OPS.values() for n in e.leading if registry.array_option(n) == option}
            is_shape = all(n == OPS[o].shape_argument for o in owners for n in OPS[o].leading
                           if registry.array_option(n) == option)
            p.add_argument(option, metavar="SHAPE" if is_shape else metavar, dest=_dest(option),
                           type=parse_shape if is_shape else kind, default=None,
                           help=_LEADING_HELP.get(option, "").format(metavar=metavar)
                           + f" ({_with(owners)}{'; ' + ', '.join(sorted(names)) if len(names) > 1 else ''})")

    multi = [e for e in OPS.values() if len(e.programs) > 1]
    p = add("shader", "print the GLSL fragment program (or WGSL compute program) an op runs",
            "Print the GLSL ES 3.00 fragment program that OP runs for these shapes "
            "(no GL needed); with --target webgpu, the WGSL compute program the WebGPU target runs "
            "(TF.js's WebGPU programs: Conv2DMMProgram, an implicit GEMM, for conv2d).\n"
            "Shapes are written like 1x7x7x6, in --data-format order for the input.\n"
            + "".join(f"{e.name} runs {len(e.programs)} programs ({', then '.join(e.programs)}); all are "
                      f"printed, each after the first behind a "
                      f"'{registry.program_banner(e.name, 2, len(e.programs)).split(':')[0]}' line. "
                      for e in multi),
            "gpuconv shader conv2d --input 1x7x7x6 --filter 3x3x6x4 --padding same --annotate", cmd_shader)
    def add_shapes(p: argparse.ArgumentParser) -> None:
        p.add_argument("op", choices=list(OPS), metavar="OP", help=f"one of: {ops_help}")
        add_leading(p, "SHAPE", parse_shape)
        _add_conv_options(p)
        p.add_argument("--bias", action="store_true", help=f"fuse a per-channel bias ({_ops_with('fused')})")

    add_shapes(p)
    p.add_argument("--target", type=_lower, choices=tuple(TARGETS), default=WEBGL2.name,
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
    _add_limit_options(p, "to generate for")

    p = add("warmup", "compile the programs an op runs for these shapes, ahead of the first call",
            "Compile (and draw once: llvmpipe compiles a program at its first draw) every program OP "
            "runs for these shapes, on the runtime --backend names, and say how long it took. The "
            "packed programs serve every shape of their family, so one warm-up covers them all; "
            "the direct ones are compiled per shape. In Python: gpuconv.precompile(...).",
            "gpuconv warmup conv2d --input 1x64x64x16 --filter 3x3x16x32 --padding same", cmd_warmup)
    add_shapes(p)
    _add_runtime_options(p)

    p = add("run", "run an op on .npy files on the GPU",
            "Run OP on the GPU on arrays from .npy files and save the float32 result.\n"
            "--check also runs the float64 NumPy oracle and exits 1 if the error relative to the "
            "output's largest magnitude exceeds --tolerance; it also says how many NaN and infinite "
            "values the output holds and whether the oracle has them at the same positions.",
            "gpuconv run conv2d --input x.npy --filter w.npy --padding same --output y.npy --check",
            cmd_run)
    p.add_argument("op", choices=list(OPS), metavar="OP", help=f"one of: {ops_help}")
    add_leading(p, "FILE.npy")
    _add_conv_options(p)
    p.add_argument("--bias", metavar="B.npy",
                   help=f"fused bias: one value per output channel, or any shape that broadcasts to the "
                        f"output, a scalar included ({_ops_with('fused')})")
    p.add_argument("--residual", metavar="R.npy",
                   help=f"fused residual: an array of the output's shape, added after the bias and before "
                        f"the activation, as a ResNet or MobileNetV2 skip connection ({_ops_with('fused')})")
    p.add_argument("--prelu-weights", metavar="P.npy", help="weights for --activation prelu")
    p.add_argument("--output", metavar="Y.npy", help="save the float32 result in this file (numpy.save)")
    p.add_argument("--check", action="store_true", help="compare with the float64 oracle")
    p.add_argument("--repeat", type=int, default=0, metavar="N",
                   help="after the first call, time N more (warm) calls and print their median, "
                        "the draw time of each program (gpuconv.profile) and GFLOP/s")
    p.add_argument("--autotune", action="store_true",
                   help="with --algorithm auto (the default): time the algorithms that can run this call "
                        "on this device once, run the fastest and keep the choice in the tuning cache "
                        "(gpuconv.autotune; the cache is in $GPUCONV_CACHE_DIR or ~/.cache/gpuconv)")
    p.add_argument("--tolerance", type=_positive_float, default=None, metavar="T",
                   help=f"largest relative error --check accepts (default {DEFAULT_TOLERANCE:g}); "
                        f"only with --check")
    _add_runtime_options(p)

    p = add("selftest", "run a fixed matrix of convolutions and compare with the oracle",
            f"Run {len(SELFTEST_CASES)} convolutions (every op, input depths 1-9, strides, dilations, "
            f"every padding form, every data format, batches 1 and 3, grouped, fused) on the GPU "
            f"with seeded random data in [-1, 1], compare each with "
            f"the float64 oracle and print a table. Exits 1 if any fails.",
            "gpuconv selftest --quick", cmd_selftest)
    p.add_argument("--quick", action="store_true",
                   help=f"run only {sum(c.quick for c in SELFTEST_CASES)} of the cases")
    p.add_argument("--seed", type=int, default=0, help="seed of the random data (default 0)")
    p.add_argument("--tolerance", type=_positive_float, default=None, metavar="T",
                   help=f"largest relative error accepted (default {DEFAULT_TOLERANCE:g}; "
                        f"{FLOAT16_TOLERANCE:g} with --storage float16)")
    _add_runtime_options(p)

    _add_conformance_command(add)

    p = add("random", "run seeded random configurations and compare with the oracle",
            "Draw COUNT valid configurations at random (every op and argument: shapes with every "
            "input depth mod 4, strides, dilations, every padding form and rounding mode, every data "
            "format, rank-3 inputs, groups, multipliers, fused bias and activations, algorithm=, float16/32/64) "
            "from --seed, run each on the GPU and in the float64 oracle, and compare. Progress goes "
            "to stderr; each failure is printed with its configuration and the command that repeats "
            "it (with every option that changes the outcome). Exits 1 if any fails.",
            "gpuconv random --count 200 --seed 0", cmd_random)
    p.add_argument("--count", type=int, default=200, metavar="N", help="how many configurations (default 200)")
    p.add_argument("--seed", type=int, default=0, help="seed of the configurations and data (default 0)")
    p.add_argument("--start", type=int, default=0, metavar="I",
                   help="index of the first configuration (to repeat one: --start I --count 1)")
    p.add_argument("--tolerance", type=_positive_float, default=None, metavar="T",
                   help=f"largest relative error accepted (default {DEFAULT_TOLERANCE:g}; "
                        f"{FLOAT16_TOLERANCE:g} with --storage float16)")
    p.add_argument("--verbose", action="store_true", help="print every configuration, not only failures")
    p.add_argument("--compare-native", action="store_true",
                   help="with --backend browser or webgpu: run each configuration on a native (WebGL2) "
                        "runtime too and report the largest difference between the two")
    _add_runtime_options(p)

    p = add("info", "show the GL device (or WebGPU adapter) and versions",
            "Show the device gpuconv runs on (renderer, vendor, version, limits, backend; for a "
            "browser also its version and float-texture extensions; for --backend webgpu the adapter, "
            "its backend, features and WebGPU limits beside what the programs use) and the versions of "
            "gpuconv and moderngl.", "gpuconv info", cmd_info)
    _add_runtime_options(p, limits=False)

    p = add("demo", "run one real convolution, timed and checked",
            "Run a 3x3 convolution of a 1x64x64x16 input to 32 channels (SAME, stride 1) on the "
            "default headless GPU, time it and check it against the float64 oracle.",
            "gpuconv demo", cmd_demo)
    p.add_argument("--seed", type=int, default=0, help="seed of the random data (default 0)")
    p.add_argument("--tolerance", type=_positive_float, default=None, metavar="T",
                   help=f"largest relative error accepted (default {DEFAULT_TOLERANCE:g}; "
                        f"{FLOAT16_TOLERANCE:g} with --storage float16)")
    _add_runtime_options(p, limits=False)

    from .export import FORMATS, MAX_EMBEDDED_TEXT

    p = add("export", "write an op's programs as a JavaScript module or a self-checking web page",
            "Write the WebGL2 programs OP runs for these shapes (what 'run' runs: --algorithm auto by "
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
                   help=f"one of: {ops_help}; or conformance: one page that runs the conformance suite "
                        f"in the visitor's browser on WebGL2 and, where the browser has it, WebGPU (--quick, "
                        f"the default, or --full)")
    add_leading(p, "SHAPE", parse_shape)
    _add_conv_options(p)
    _add_export_conformance_options(p)
    p.add_argument("--bias", action="store_true",
                   help=f"fuse a per-channel bias, an input of the module ({_ops_with('fused')})")
    p.add_argument("--format", choices=FORMATS, default=None,
                   help="js: an ES module (default); html: a self-checking page (the default when "
                        "--output ends in .html)")
    p.add_argument("--target", type=_lower, choices=tuple(TARGETS), default=WEBGL2.name,
                   help="webgl2 (GLSL fragment programs, the default) or webgpu (the WGSL compute programs: "
                        "the module exports run(device, inputs), a Promise of the output, and requirements.limits; "
                        "the page requests an adapter, ?featureLevel=core|compatibility in its URL chooses)")
    p.add_argument("--output", metavar="FILE", help="write to FILE instead of stdout")
    p.add_argument("--seed", type=int, default=None,
                   help="seed of the page's inputs, uniform in [-1, 1] (default 0); --format html only")
    p.add_argument("--tolerance", type=_positive_float, default=None, metavar="T",
                   help=f"largest relative error the page accepts (default {DEFAULT_TOLERANCE:g}; "
                        f"{FLOAT16_TOLERANCE:g} with --storage float16); --format html only")
    _add_storage_option(p.add_argument_group("storage"))
    _add_limit_options(p, "to generate for")

    p = add("precision", "will a layer survive phones? its error in float32 and in float16 storage",
            "Run one configuration of OP with float32 storage and with float16 storage (R16F/RGBA16F "
            "textures, as TF.js stores tensors on phones without float32 render targets; on WebGPU, halves "
            "two to a 32-bit word) on the native runtime and in the browser's WebGL2 and on WebGPU (wgpu-py), "
            "and print for each the largest error against the float64 "
            "oracle, absolute and relative to the output's largest magnitude, float16's error bound "
            "(gpuconv.oracle.float16_error_bound) and the distance from the oracle's float16 prediction, "
            "with a verdict per storage against --tolerance (relative; default "
            f"{DEFAULT_PRECISION_TOLERANCE:g}). Values beyond float16's range (65504) in an input, filter, "
            "intermediate or the output are reported. Each array option takes a .npy file or a shape "
            "(1x64x64x16: seeded uniform values in [-1, 1], times --scale). Without --backend all three runtimes "
            "run, and a missing Chromium or WebGPU adapter is a note; --backend browser without one exits 3. "
            "Exits 1 if a "
            "verdict is FAIL.",
            "gpuconv precision conv2d --input 1x64x64x16 --filter 3x3x16x32 --padding same", cmd_precision)
    p.add_argument("op", choices=list(OPS), metavar="OP", help=f"one of: {ops_help}")
    add_leading(p, "FILE.npy|SHAPE")
    _add_conv_options(p)
    p.add_argument("--bias", metavar="B.npy|SHAPE", help=f"fused bias ({_ops_with('fused')})")
    p.add_argument("--prelu-weights", metavar="P.npy|SHAPE", help="weights for --activation prelu")
    p.add_argument("--seed", type=int, default=0, help="seed of the random arrays given as shapes (default 0)")
    p.add_argument("--scale", type=_positive_float, default=1.0, metavar="S",
                   help="multiply the random arrays by S (default 1: uniform in [-1, 1])")
    p.add_argument("--tolerance", type=_positive_float, default=DEFAULT_PRECISION_TOLERANCE, metavar="T",
                   help=f"largest relative error a storage may have to pass (default {DEFAULT_PRECISION_TOLERANCE:g})")
    g = p.add_argument_group("runtime")
    g.add_argument("--backend", type=_lower, choices=RUNTIME_KINDS, default=None,
                   help="measure on this runtime only (default: native, and the browser where Chromium is; "
                        "webgpu: float32 only, its buffers have no float16 storage yet)")
    return parser


# ---------------------------------------------------------------------------
# shared pieces


def op_kwargs(op: str, strides: Any = 1, dilations: Any = 1, padding: Any = "VALID",
              data_format: Optional[str] = None, dim_rounding_mode: Optional[str] = None,
              groups: int = 1) -> Dict[str, Any]:
    """The keyword arguments of ``gpuconv.<op>`` for these command-line values.

    Raises :class:`UsageError`, naming the option, for a value the op has no
    argument for (``--groups`` for an op without groups, a 2-D stride for conv1d, ...).
    """
    entry = OPS[op]

    def only(option: str, flag: str) -> NoReturn:
        raise UsageError(f"{option} is an option of {_ops_with(flag)} only, not of {op}")

    data_format = data_format or entry.data_formats[0]
    if data_format not in entry.data_formats:
        raise UsageError(f"--data-format {data_format} is not a data format of {op}: "
                         f"it takes {' or '.join(entry.data_formats)}")
    explicit = isinstance(padding, list)
    if entry.spatial == 3:
        for option, value in (("--strides", strides), ("--dilations", dilations)):
            if not isinstance(value, int) and len(value) != 3:
                raise UsageError(f"{option} {pair_text(value)}: {op} takes one integer or depth x height x width "
                                 f"(e.g. 1x2x2)")
        if explicit and (len(padding) != 3 or not all(isinstance(v, list) for v in padding)):
            raise UsageError(f"--padding {padding_text(padding)}: {op}'s explicit pads are "
                             f"front,back,top,bottom,left,right (e.g. 1,1,0,0,2,1)")
    elif entry.one_d:
        for option, value in (("--strides", strides), ("--dilations", dilations)):
            if not isinstance(value, int):
                raise UsageError(f"{option} {pair_text(value)}: {op} takes one integer (along the width)")
        if explicit and not all(isinstance(v, int) for v in padding):
            raise UsageError(f"--padding {padding_text(padding)}: {op}'s explicit pads are left,right (e.g. 2,1)")
    else:
        for option, value in (("--strides", strides), ("--dilations", dilations)):
            if not isinstance(value, int) and len(value) != 2:
                raise UsageError(f"{option} {pair_text(value)}: {op} takes one integer or height x width "
                                 f"(e.g. 2x1)")
        if explicit and (len(padding) != 2 or not all(isinstance(v, list) for v in padding)):
            raise UsageError(f"--padding {padding_text(padding)}: {op}'s explicit pads are "
                             f"top,bottom,left,right (e.g. 1,0,2,1); left,right is for {_ops_with('one_d')}")
    if not entry.rounding and dim_rounding_mode is not None:
        only("--dim-rounding-mode", "rounding")
    if not entry.grouped and groups != 1:
        only("--groups", "grouped")
    kwargs = entry.call_kwargs(strides, dilations, padding, data_format, dim_rounding_mode, groups)
    if entry.grouped:
        kwargs["groups"] = groups
    return kwargs


def _conv_kwargs(args: Args) -> Dict[str, Any]:
    return op_kwargs(args.op, args.strides, args.dilations, args.padding, args.data_format,
                     args.dim_rounding_mode, args.groups)


def _algorithm(args: Args, default: str) -> Dict[str, Any]:
    """``algorithm=`` for the op: --algorithm or ``default``; none for an op without a packed
    program (--algorithm direct is what it runs; packed and auto are refused)."""
    if OPS[args.op].algorithms:
        return {"algorithm": args.algorithm or default}
    if args.algorithm not in (None, "direct"):
        raise UsageError(f"--algorithm {args.algorithm}: {args.op} runs its direct program only "
                         f"(--algorithm is for {_ops_with('algorithms')})")
    return {}


def _check_fused_options(args: Args) -> None:
    """--bias, --activation, --leakyrelu-alpha and --prelu-weights only for the ops with a fused
    epilogue; --leakyrelu-alpha only with --activation leakyrelu, --prelu-weights only with prelu."""
    if not OPS[args.op].fused:
        for option in ("bias", "activation", "leakyrelu_alpha", "prelu_weights", "residual"):
            if getattr(args, option, None) not in (None, False):
                raise UsageError(f"{option_name(option)} is an option of {_ops_with('fused')} only "
                                 f"(a fused epilogue), not of {args.op}")
        return
    activation = args.activation or "linear"
    for option, needs in (("leakyrelu_alpha", "leakyrelu"), ("prelu_weights", "prelu")):
        if getattr(args, option, None) is not None and activation != needs:
            raise UsageError(f"{option_name(option)} is only used with --activation {needs}, "
                             f"got --activation {activation}")


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.1f} ms"


_NPY_MAGIC = b"\x93NUMPY"


def _load_optional(path: Optional[str], option: str) -> Optional[np.ndarray]:
    """The array in the .npy file ``path``, or ``None`` for no path."""
    return None if path is None else _load(path, option)


def _load(path: str, option: str) -> np.ndarray:
    """The array in the .npy file ``path``; a UsageError naming ``option`` if it cannot be read."""
    try:
        with open(path, "rb") as f:
            magic = f.read(len(_NPY_MAGIC))
            if magic != _NPY_MAGIC:
                what = ("it is a .npz archive (numpy.savez); save the one array with numpy.save"
                        if magic.startswith(b"PK\x03\x04") else "it does not start with the .npy header")
                raise UsageError(f"{option}: {path} is not a .npy file (a single array saved with "
                                 f"numpy.save): {what}")
            f.seek(0)
            return np.lib.format.read_array(f, allow_pickle=False)
    except UsageError:
        raise
    except (OSError, ValueError) as exc:
        raise UsageError(f"{option}: cannot read {path!r} as a .npy array: {exc}") from exc


def _save(path: str, array: np.ndarray) -> None:
    """``array`` in the .npy file ``path``, under exactly that name (a directory is refused)."""
    try:
        with open(path, "wb") as f:
            np.save(f, array)
    except OSError as exc:
        raise UsageError(f"--output: cannot write {path!r}: {exc}") from exc


def _emit(text: str, output: Optional[str]) -> None:
    if output is None:
        sys.stdout.write(text)
        return
    try:
        with open(output, "w", encoding="utf-8") as f:
            f.write(text)
    except OSError as exc:
        raise UsageError(f"--output: cannot write {output!r}: {exc}") from exc
    print(f"gpuconv: wrote {output}", file=sys.stderr)


def _limits(args: Args) -> Dict[str, int]:
    """--max-texture-size and --max-draw-buffers as keyword arguments (only those given)."""
    return {name: getattr(args, name) for name in ("max_texture_size", "max_draw_buffers")
            if getattr(args, name, None) is not None}


def _backend(args: Args) -> str:
    if args.backend is not None:
        return str(args.backend)
    backend = os.environ.get(BACKEND_ENV)
    return backend if backend in ("browser", "webgpu") else "native"


def _api(args: Args, kind: str) -> str:
    """--api for a runtime of ``kind`` (webgl2 unless given; only a browser takes another)."""
    api = getattr(args, "api", None)
    if api in (None, "webgl2"):
        return "webgl2"
    if kind != "browser":
        raise UsageError(f"--api {api} is for --backend browser (Chromium's {api}); --backend {kind} "
                         + ("is WebGPU already" if kind == "webgpu" else "runs WebGL2 (--backend webgpu runs WebGPU)"))
    return str(api)


def _runtime(args: Args, kind: Optional[str] = None) -> BaseRuntime:
    """A new runtime as --backend, --gl and the limits say (``kind`` overrides --backend;
    the --gl of another backend is not passed on).  A missing browser runtime is a GL error."""
    second = kind is not None and kind != _backend(args)  # the native runtime of --compare-native
    kind = kind or _backend(args)
    gl = args.gl
    if gl is not None and gl not in GL_CHOICES[kind]:
        if second:  # its default GL
            gl = None
        else:
            owner = next(k for k, names in GL_CHOICES.items() if gl in names)
            raise UsageError(f"--gl {gl} is a GL of --backend {owner}; --backend {kind} takes "
                             + (' or '.join(GL_CHOICES[kind]) if GL_CHOICES[kind] else
                                "no --gl (wgpu-py picks the adapter)"))
    api = "webgl2" if second else _api(args, kind)
    options: Dict[str, Any] = {"api": api} if api != "webgl2" else {}
    limits = _limits(args)
    if limits and (kind == "webgpu" or api == "webgpu"):
        raise UsageError(f"{', '.join(map(option_name, limits))}: WebGL2 limits; the WebGPU target plans for its "
                         f"device's WebGPU limits (gpuconv info --backend webgpu lists them)")
    storage = {"storage": args.storage} if getattr(args, "storage", None) and not second else {}
    try:
        runtime = make_runtime(kind, gl=gl, **limits, **storage, **options)
    except ImportError as exc:  # the browser runtime (or what it needs) is not installed
        raise GLUnavailableError(f"gpuconv's {kind} runtime is not available: {exc}") from exc
    if storage and runtime.target is not WEBGL2:
        try:  # refused now, in one line, rather than at the first call (WebGPU's buffers hold float32)
            runtime.require_storage(storage["storage"])
        except GLUnavailableError:
            runtime.release()
            raise
    return runtime


def _runtime_options(args: Args) -> List[str]:
    """The options that made the runtime, to repeat a command with."""
    words = []
    if args.backend is not None or _backend(args) != "native":
        words += ["--backend", _backend(args)]
    if args.gl is not None:
        words += ["--gl", args.gl]
    if getattr(args, "api", None) not in (None, "webgl2"):
        words += ["--api", args.api]
    for name, value in _limits(args).items():
        words += [option_name(name), str(value)]
    if getattr(args, "storage", None):
        words += ["--storage", args.storage]
    return words


# ---------------------------------------------------------------------------
# gpuconv shader


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
    from .version import __version__

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
    try:
        validate = importlib.import_module("gpuconv.validate")
    except ImportError as exc:
        _fail(f"--validate: gpuconv.validate is not available: {exc}")
        return EXIT_NO_GL
    wgsl = target != WEBGL2.name
    check: Callable[[str], None]
    if wgsl:
        check = functools.partial(validate.validate_wgsl, pipeline=True)
        verdict = "valid WGSL (naga, through wgpu-py)"
        unavailable, invalid = validate.WGSLValidatorUnavailableError, validate.WGSLValidationError
    else:
        check = functools.partial(validate.validate_glsl, stage="frag")
        verdict = "valid GLSL ES 3.00 (glslangValidator)"
        unavailable, invalid = validate.GLSLValidatorUnavailableError, validate.GLSLValidationError
    for step, source in enumerate(sources, 1):
        which = f"program {step} of {len(sources)}: " if len(sources) > 1 else ""
        try:
            check(source)
        except unavailable as exc:
            _fail(f"--validate: {exc}")
            return EXIT_NO_GL
        except invalid as exc:
            if wgsl:  # naga's message points a caret at the column: keep its lines
                print(f"gpuconv: error: --validate: {which}{exc}", file=sys.stderr)
            else:
                _fail(f"--validate: {which}{exc}")
            return EXIT_FAILED
        print(f"gpuconv: {which}{verdict}", file=sys.stderr)
    return EXIT_OK


def _channel_count(entry: registry.OpEntry, plan: Any, data_format: Optional[str]) -> int:
    """The channels of a plan's result (the fused inputs' size)."""
    data_format = data_format or entry.data_formats[0]
    axis = -1 if data_format.endswith("C") else -(entry.spatial + 1)
    return int(plan.out_shape[axis])


def _shape_call(args: Args, limits: Dict[str, int]) -> Tuple[Tuple[Any, ...], Dict[str, Any]]:
    """The positional and keyword arguments of ``registry.plan_shapes`` (after the op) for
    ``shader``/``warmup``'s options (zero-filled fused inputs, which need only the output channels)."""
    entry = OPS[args.op]
    conv = _conv_kwargs(args)
    _check_fused_options(args)
    positional, extra = registry.shape_call(args.op, leading_values(args, lambda v, _: v))
    fused: Dict[str, Any] = {}
    if entry.fused:
        # A plan without the epilogue tells the output channels; the dummy fused inputs need only that.
        plain = registry.plan_shapes(args.op, positional[0], positional[1], *positional[2:],
                                     **{**conv, **extra, **limits})
        out_channels = _channel_count(entry, plain, args.data_format)
        fused = {"activation": args.activation, "leakyrelu_alpha": args.leakyrelu_alpha}
        if args.bias:
            fused["bias"] = np.zeros(out_channels, np.float32)
        if args.activation == "prelu":  # one weight per channel, in either data format
            fused["prelu_weights"] = np.zeros(out_channels, np.float32)
    return positional, {**conv, **fused, **extra}


def cmd_warmup(args: Args) -> int:
    algorithm = _algorithm(args, "auto")
    with _runtime(args) as runtime:
        # the plan that counts the output channels is WebGL2's: its texture limits, where it has them
        limits = ({"max_texture_size": runtime.max_texture_size, "max_draw_buffers": runtime.max_draw_buffers}
                  if runtime.target is WEBGL2 else {})
        positional, kwargs = _shape_call(args, limits)
        start = time.perf_counter()
        compiled = precompile(args.op, positional[0], positional[1], *positional[2:], runtime=runtime,
                              **{**kwargs, **algorithm})
        seconds = time.perf_counter() - start
        renderer = checks.device_name(runtime)
        parallel = getattr(runtime, "last_compile_parallel", None)
    shapes = " * ".join(shape_text(v) for v in positional)
    how = {None: "", True: " (linked together, KHR_parallel_shader_compile)",
           False: " (linked together, each waited for: no KHR_parallel_shader_compile)"}[parallel]
    print(f"warmup: {args.op} {shapes}: {compiled} program(s) compiled in {_ms(seconds)} on {renderer}{how}")
    return EXIT_OK


def _target_algorithm(args: Args) -> Dict[str, Any]:
    """``algorithm=`` for ``shader --target``: WebGL2's default is TF.js's direct programs; another
    target's is what the ops run there ("auto": on WebGPU, TF.js's WebGPU programs), and an
    algorithm it does not offer is refused."""
    target = TARGETS[args.target]
    if target is WEBGL2:
        return _algorithm(args, "direct")
    if args.algorithm is not None and args.algorithm not in target.algorithms:
        raise UsageError(f"--algorithm {args.algorithm} is a WebGL2 program; --target {target.name} runs "
                         f"{' or '.join(target.algorithms)}")
    return _algorithm(args, "auto")


def cmd_shader(args: Args) -> int:
    limits = _limits(args)
    target = TARGETS[args.target]
    if limits and target is not WEBGL2:
        raise UsageError(f"{', '.join(map(option_name, limits))}: WebGL2 limits, not used with --target "
                         f"{target.name} (its programs fit WebGPU's guaranteed limits)")
    algorithm = _target_algorithm(args)
    positional, kwargs = _shape_call(args, limits)
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
    _emit(registry.join_programs(args.op, texts), args.output)
    return _validate(sources, target.name) if args.validate else EXIT_OK


# ---------------------------------------------------------------------------
# gpuconv run


def cmd_run(args: Args) -> int:
    entry = OPS[args.op]
    conv = _conv_kwargs(args)
    _check_fused_options(args)
    if args.tolerance is not None and not args.check:
        raise UsageError("--tolerance is only used with --check")
    tolerance = _tolerance(args, args.tolerance)
    if args.repeat < 0:
        raise UsageError(f"--repeat must be 0 or more, got {args.repeat}")
    if args.output and os.path.isdir(args.output):  # before any work: np.save would write DIR.npy
        raise UsageError(f"--output: cannot write {args.output!r}: it is a directory "
                         f"(give a file name, e.g. {os.path.join(args.output, 'y.npy')!r})")
    algorithm = _algorithm(args, "auto")
    if args.autotune and algorithm.get("algorithm") != "auto":
        raise UsageError(f"--autotune tunes --algorithm auto; got --algorithm {args.algorithm}"
                         if algorithm else f"--autotune: {args.op} runs its direct program only")
    values = leading_values(args, _load)
    arrays = entry.positional(values)
    fused: Dict[str, Any] = {}
    if entry.fused:
        fused = dict(bias=_load_optional(args.bias, "--bias"), residual=_load_optional(args.residual, "--residual"),
                     activation=args.activation,
                     leakyrelu_alpha=args.leakyrelu_alpha,
                     prelu_weights=_load_optional(args.prelu_weights, "--prelu-weights"))
    def call() -> np.ndarray:
        with autotune() if args.autotune else contextlib.nullcontext():
            return np.asarray(entry.gpu(*arrays, **conv, **fused, **algorithm, runtime=runtime))

    with _runtime(args) as runtime:
        start = time.perf_counter()
        y = call()
        gpu_s = time.perf_counter() - start
        repeat_line = _repeat(call, runtime, args.repeat) if args.repeat else ""
    y = np.asarray(y, dtype=np.float32)
    if args.output:
        _save(args.output, y)
    saved = f" -> {args.output}" if args.output else " (not saved: use --output)"
    if entry.signature:  # name each leading argument
        given = ", ".join(f"{name} {shape_text(values[name] if name == entry.shape_argument else values[name].shape)}"
                          for name in entry.leading)
    else:
        filters = " then ".join(shape_text(values[name].shape) for name in entry.filters)
        given = f"x {shape_text(values['x'].shape)}, filter {filters}"
    print(f"{args.op}: {given} -> {shape_text(y.shape)} "
          f"float32 in {_ms(gpu_s)} on the GPU (first call: includes compiling the program){saved}")
    if repeat_line:
        print(repeat_line)
    if not args.check:
        return EXIT_OK
    start = time.perf_counter()
    expected = entry.oracle(*arrays, **conv, **fused)
    oracle_s = time.perf_counter() - start
    result = checks.check_result(y, expected, tolerance)
    if result.specials:
        print(f"check: {result.specials}")
    print(f"check: max abs error {result.max_abs:.3g}, relative {result.relative:.3g} (tolerance {tolerance:g}; "
          f"oracle {_ms(oracle_s)}): {'PASS' if result.ok else 'FAIL'}")
    return EXIT_OK if result.ok else EXIT_FAILED


def _repeat(call: Callable[[], Any], runtime: BaseRuntime, count: int) -> str:
    """``count`` warm calls: their median and best time, then one profiled call's draw times."""
    seconds = []
    for _ in range(count):
        start = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - start)
    with profile(runtime) as prof:
        call()
    flops = sum(record.flops for record in prof.records)
    draw_ms = sum(record.draw_ms for record in prof.records)
    median = statistics.median(seconds)
    programs = ", ".join(f"{r.program} {r.draw_ms:.2f} ms" for r in prof.records)
    return (f"repeat: {count} warm calls, median {_ms(median)} (best {_ms(min(seconds))}), "
            f"{flops / median / 1e9:.2f} GFLOP/s per call (upload and read-back included); "
            f"draw {draw_ms:.2f} ms = {flops / (draw_ms * 1e6) if draw_ms else float('nan'):.2f} GFLOP/s "
            f"({programs}; {prof.records[0].draw_timing if prof.records else '-'})")


# ---------------------------------------------------------------------------
# gpuconv selftest, random


def cmd_selftest(args: Args) -> int:
    cases = [c for c in SELFTEST_CASES if c.quick or not args.quick]
    with _runtime(args) as runtime:
        report = checks.run_selftest(cases, args.seed, _tolerance(args, args.tolerance), runtime,
                                     progress=sys.stderr)
    print(report.table())
    print(report.summary())
    return EXIT_FAILED if report.failed else EXIT_OK


def cmd_random(args: Args) -> int:
    if args.count < 1 or args.start < 0:
        raise UsageError(f"--count must be positive and --start non-negative, got --count {args.count} "
                         f"--start {args.start}")
    if args.compare_native and _backend(args) == "native":
        raise UsageError("--compare-native is only used with --backend browser or webgpu, got --backend native")
    options = _runtime_options(args) + (["--compare-native"] if args.compare_native else [])
    with _runtime(args) as runtime:
        other = _runtime(args, "native") if args.compare_native else None
        try:
            report = checks.run_many(args.count, args.seed, _tolerance(args, args.tolerance), start=args.start,
                                     runtime=runtime,
                                     other=other, repeat_options=options, verbose=args.verbose,
                                     progress=sys.stderr, out=sys.stdout)
        finally:
            if other is not None:
                other.release()
    print(report.summary())
    return EXIT_FAILED if report.failed else EXIT_OK


# ---------------------------------------------------------------------------
# gpuconv export


def cmd_export(args: Args) -> int:
    from .export import build

    if args.op == "conformance":
        return cmd_export_conformance(args)
    entry = OPS[args.op]
    conv = _conv_kwargs(args)
    _check_fused_options(args)
    target = TARGETS[args.target]
    if target is not WEBGL2:
        webgl2_only = list(_limits(args)) + (["storage"] if args.storage not in (None, "float32") else [])
        if webgl2_only:
            raise UsageError(f"{', '.join(map(option_name, webgl2_only))}: WebGL2 options, not used with --target "
                             f"{target.name} (its programs fit WebGPU's guaranteed limits; its buffers hold float32)")
    algorithm = _target_algorithm(args) if target is not WEBGL2 else _algorithm(args, "auto")
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
    exported = build(args.op, positional[0], positional[1], *positional[2:], format=format,
                     seed=0 if args.seed is None else args.seed,
                     tolerance=_tolerance(args, args.tolerance), storage=args.storage or "float32",
                     target=target.name, **{**algorithm, **conv, **fused, **extra, **_limits(args)})
    _emit(exported.text, args.output)
    print(f"gpuconv: {exported.summary()}", file=sys.stderr)
    return EXIT_OK


# ---------------------------------------------------------------------------
# gpuconv conformance, gpuconv export conformance

def _add_conformance_command(add: Callable[..., argparse.ArgumentParser]) -> None:
    from .runtimes.worker import DRIVERS

    p = add("conformance", "run the conformance suite: can this device be trusted with these convolutions?",
            "Run the versioned conformance suite (every op and algorithm of the runtime's target, every "
            "input-depth remainder, stride, dilation, padding form, data format, batch, group and fused "
            "epilogue; textures at the device's limits, long narrow textures, long reductions, values near "
            "float16's range, signed zeros, denormals, NaN/inf, half-float storage) and grade each result "
            "element by element against two bounds derived from the data: Pass within the expected bound, "
            "QualityWarning within the rigorous one, Fail beyond it (or NaN/inf where the oracle has none), "
            "NotSupported where the device lacks a feature. Prints a summary table; exits 1 when a case "
            "fails (a QualityWarning does not fail the run).",
            "gpuconv conformance --quick --shard 2/4 --json report.json", cmd_conformance)
    p.add_argument("--quick", action="store_true", help="the quick subset (under a minute on llvmpipe)")
    p.add_argument("--shard", default=None, metavar="I/N",
                   help="run shard I of N (every N-th case from the I-th; the shards together are the suite)")
    p.add_argument("--json", default=None, metavar="FILE", help="write the JSON report to FILE")
    p.add_argument("--html", default=None, metavar="FILE", help="write the HTML report to FILE")
    p.add_argument("--case", action="append", default=None, metavar="NAME",
                   help="run only the case NAME (repeatable)")
    p.add_argument("--list", action="store_true", help="list the suite's cases and exit")
    p.add_argument("--seed", type=int, default=0, help="seed of the cases' data (default 0)")
    p.add_argument("--driver", type=_lower, choices=tuple(DRIVERS), default=None,
                   help="with --backend native: open Mesa's driver NAME in a worker process (softpipe, zink on "
                        "lavapipe, llvmpipe), its environment set before EGL opens")
    p.add_argument("--verbose", action="store_true", help="print every case's line, not only those that did "
                                                          "not pass")
    _add_runtime_options(p)


def _add_export_conformance_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("export conformance")
    g.add_argument("--quick", action="store_true", default=None,
                   help="with OP conformance: the quick suite (the default)")
    g.add_argument("--full", action="store_true", default=None,
                   help="with OP conformance: the whole suite of each target (a larger page)")


def _conformance_runtime(args: Args) -> BaseRuntime:
    if args.driver is None:
        return _runtime(args)
    if _backend(args) != "native":
        raise UsageError(f"--driver is for --backend native (a Mesa driver), not --backend {_backend(args)}")
    storage = {"storage": args.storage} if args.storage else {}
    return make_runtime("native", gl=args.gl, driver=args.driver, **_limits(args), **storage)


def cmd_conformance(args: Args) -> int:
    from . import conformance

    suite = "quick" if args.quick else "full"
    shard = conformance.parse_shard(args.shard) if args.shard else None
    if args.list:
        target = TARGETS["webgpu" if "webgpu" in (_backend(args), args.api) else "webgl2"]
        chosen = conformance.shard(conformance.cases(suite, target), shard)
        for case in chosen:
            print(f"{case.name}  [{case.group}]  {case.describe()}")
        print(f"{len(chosen)} cases", file=sys.stderr)
        return EXIT_OK
    for option in ("json", "html"):
        path = getattr(args, option)
        if path and os.path.isdir(path):
            raise UsageError(f"--{option}: cannot write {path!r}: it is a directory")
    with _conformance_runtime(args) as runtime:
        report = conformance.run(runtime, suite=suite, shard=shard, seed=args.seed, only=args.case,
                                 progress=sys.stderr)
    print(report.summary_table())
    if args.verbose:
        for r in report.results:
            print(f"{r.verdict:<14} {r.name}  ({(r.grade or {}).get('ratio_expected', '-')})")
    details = report.details()
    if details:
        print(details)
    print(report.summary())
    if args.json:
        with open(args.json, "w", encoding="utf-8") as stream:
            stream.write(report.to_json())
    if args.html:
        with open(args.html, "w", encoding="utf-8") as stream:
            stream.write(report.to_html())
    return EXIT_FAILED if report.failed else EXIT_OK


def cmd_export_conformance(args: Args) -> int:
    from .conformance.page import build_page

    if args.quick and args.full:
        raise UsageError("--quick and --full: choose one")
    format = args.format or "html"
    if format != "html":
        raise UsageError("export conformance writes an HTML page (--format html)")
    if args.output and os.path.isdir(args.output):
        raise UsageError(f"--output: cannot write {args.output!r}: it is a directory")
    page = build_page(suite="full" if args.full else "quick", seed=0 if args.seed is None else args.seed,
                      **_limits(args))
    _emit(page.text, args.output)
    print(f"gpuconv: {page.summary()}", file=sys.stderr)
    return EXIT_OK


# ---------------------------------------------------------------------------
# gpuconv precision


def cmd_precision(args: Args) -> int:
    from . import precision

    entry = OPS[args.op]
    conv = _conv_kwargs(args)
    _check_fused_options(args)
    algorithm = _algorithm(args, "auto")
    rng = np.random.default_rng(args.seed)

    def load(value: str, option: str) -> np.ndarray:
        """A .npy file, or a shape: seeded uniform values in [-1, 1] times --scale."""
        if os.path.exists(value) or value.lower().endswith(".npy"):
            return _load(value, option)
        try:
            shape = parse_shape(value)
        except (ValueError, argparse.ArgumentTypeError) as exc:
            raise UsageError(f"{option}: {value!r} is neither a .npy file nor a shape like 1x64x64x16") from exc
        return (rng.uniform(-1, 1, size=shape) * args.scale).astype(np.float32)

    values = leading_values(args, load)
    arrays = entry.positional(values)
    fused: Dict[str, Any] = {}
    if entry.fused:
        fused = dict(activation=args.activation, leakyrelu_alpha=args.leakyrelu_alpha)
        if args.bias is not None:
            fused["bias"] = load(args.bias, "--bias")
        if args.prelu_weights is not None:
            fused["prelu_weights"] = load(args.prelu_weights, "--prelu-weights")
    given = ", ".join(f"{name} {shape_text(values[name] if name == entry.shape_argument else values[name].shape)}"
                      for name in entry.leading)
    options = " ".join(f"{key}={value}" for key, value in {**conv, **algorithm}.items()
                       if value not in (None, 1, "VALID") and key != "data_format" or
                       (key == "data_format" and value != entry.data_formats[0]))
    kinds = [args.backend] if args.backend else ["native", "browser", "webgpu"]
    runtimes: List[Tuple[str, Any]] = []
    try:
        for kind in kinds:
            try:
                runtimes.append((kind, make_runtime(kind)))
            except (GLUnavailableError, ImportError) as exc:
                if args.backend:  # asked for explicitly: no runtime is an error (exit 3)
                    raise GLUnavailableError(f"gpuconv precision --backend {kind}: {exc}") from exc
                runtimes.append((kind, f"no {kind} runtime ({str(exc).split(';')[0][:100]})"))
        result = precision.measure(args.op, entry.gpu, arrays, {**conv, **fused}, runtimes,
                                   call=f"{given}{'; ' + options if options else ''}", gpu_kwargs=algorithm)
    finally:
        for _, runtime in runtimes:
            if not isinstance(runtime, str):
                runtime.release()
    print("\n".join(precision.report(result, args.tolerance)))
    return EXIT_OK if precision.passed(result, args.tolerance) else EXIT_FAILED


# ---------------------------------------------------------------------------
# gpuconv info

#: The info() keys ``gpuconv info`` names itself, with their labels (other keys are printed as they come).
_INFO_LABELS = (("runtime", "runtime"), ("renderer", "renderer"), ("adapter", "adapter"), ("vendor", "vendor"),
                ("version", "GL version"), ("glsl", "GLSL dialect"), ("max_texture_size", "max texture size"),
                ("max_draw_buffers", "max draw buffers"), ("max_texture_image_units", "texture units"),
                ("backend", "context backend"))
_INFO_NOTES = {"max_texture_size": ("layout_texture_size", "layouts use up to {}"),
               "max_draw_buffers": ("program_draw_buffers", "packed programs use up to {}")}
_INFO_SKIP = {"cached_programs"}
#: A WebGPU runtime's info(): its backend is the adapter's API (Vulkan, Metal, ...), not a GL context's;
#: its "limits" (the device's) are printed one per line, each with what the programs use ("program_limits").
_WEBGPU_LABELS = {"backend": "WebGPU backend"}


def _info_value(value: object) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k} {_info_value(v)}" for k, v in value.items()) or "none"
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value)) or "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def info_lines(info: Dict[str, object]) -> List[str]:
    """``info()``'s facts, one ``label: value`` line each: the known keys first, then any other."""
    rows: List[Tuple[str, str]] = []
    used = set(_INFO_SKIP)
    webgpu = info.get("target") == "webgpu"
    for key, label in _INFO_LABELS:
        if key not in info:
            continue
        text = _info_value(info[key])
        note = _INFO_NOTES.get(key)
        if note and note[0] in info:
            text += f" ({note[1].format(info[note[0]])})"
            used.add(note[0])
        rows.append((_WEBGPU_LABELS.get(key, label) if webgpu else label, text))
        used.add(key)
    uses = info.get("program_limits")
    if webgpu and isinstance(uses, dict):
        used.add("program_limits")  # told beside each device limit
    for key, value in info.items():
        if key in used:
            continue
        if webgpu and key == "limits" and isinstance(value, dict):
            for name, have in value.items():
                used_up_to = f" (programs use up to {uses[name]})" if isinstance(uses, dict) and name in uses else ""
                rows.append((name.replace("_", " "), f"{have}{used_up_to}"))
            continue
        rows.append((key.replace("_", " "), _info_value(value)))
    return [f"{label + ':':<17} {text}" for label, text in rows]


def cmd_info(args: Args) -> int:
    try:
        import moderngl

        moderngl_version = getattr(moderngl, "__version__", "unknown")
    except ImportError:  # pragma: no cover - a dependency
        moderngl_version = "not installed"
    print(f"{'gpuconv:':<17} {__version__}")
    print(f"{'moderngl:':<17} {moderngl_version}")
    print(f"{'numpy:':<17} {np.__version__}")
    with _runtime(args) as runtime:
        info = runtime.info()
        cache = tuning.cache_path(runtime)
    for line in info_lines(info):
        print(line)
    tuned = tuning.cached_entries(cache)
    print(f"{'tuning cache:':<17} {cache} ({tuned} call shape{'' if tuned == 1 else 's'} tuned; "
          f"read under gpuconv.autotune / --autotune)")
    return EXIT_OK


# ---------------------------------------------------------------------------
# gpuconv demo


def cmd_demo(args: Args) -> int:
    with _runtime(args) as runtime:
        lines, ok = checks.run_demo(runtime, args.seed, _tolerance(args, args.tolerance))
    for line in lines:
        print(line)
    return EXIT_OK if ok else EXIT_FAILED


# ---------------------------------------------------------------------------
# entry point


def _fail(message: object) -> None:
    print(f"gpuconv: error: {' '.join(str(message).split())}", file=sys.stderr)


def _error(message: object, code: int, debug: bool) -> int:
    """Report an error in one line (after its traceback with --debug) and return its exit code."""
    if debug:
        traceback.print_exc(file=sys.stderr)
    _fail(message)
    return code


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv  # before parsing: a parse error gets its traceback too
    try:
        args = build_parser().parse_args(argv)
        debug = bool(getattr(args, "debug", debug))
        return int(args.func(args))
    except SystemExit as exc:  # --help and --version
        return exc.code if isinstance(exc.code, int) else EXIT_OK
    except GLUnavailableError as exc:
        return _error(exc, EXIT_NO_GL, debug)
    except NotOnTargetError as exc:  # the Python API's advice, then the command line's
        return _error(f"{exc}; on the command line: leave out --target {exc.target} / --backend {exc.target}",
                      EXIT_USAGE, debug)
    except (ValueError, TypeError) as exc:  # UsageError and gpuconv's argument checks
        return _error(exc, EXIT_USAGE, debug)
    except KeyboardInterrupt:
        print("gpuconv: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        suffix = "" if debug else " (run again with --debug for the traceback)"
        return _error(f"{type(exc).__name__}: {exc}{suffix}", EXIT_INTERNAL, debug)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
