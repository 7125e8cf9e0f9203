"""The ``gpuconv`` command: print, run and test the convolution programs from a shell.

Subcommands (each has ``--help`` with an example to copy):

* ``gpuconv shader OP --input 1x7x7x6 --filter 3x3x6x4 ...``: print the generated GLSL;
* ``gpuconv run OP --input x.npy --filter w.npy ... [--check]``: run an op on .npy files;
* ``gpuconv selftest [--quick]``: a fixed matrix of convolutions, GPU against the oracle;
* ``gpuconv info``: the GL device and the versions in use;
* ``gpuconv demo``: one real convolution, timed and checked.

Exit codes: 0 success, 1 a result outside the tolerance, 2 bad arguments,
3 no usable OpenGL, 4 an unexpected error (``--debug`` shows its traceback).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import textwrap
import time
from dataclasses import dataclass
from typing import Callable, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from . import __version__, oracle
from .arguments import ACTIVATIONS
from .geometry import DATA_FORMATS, ROUNDING_MODES
from .programs import PackedProgramSpec
from .ops import (ALGORITHMS, conv1d, conv2d, depthwise_conv2d, plan_shapes, separable_conv2d,
                  shader_sources)
from .programs import shape_text
from .runtimes import GLUnavailableError, get_runtime

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_NO_GL, EXIT_INTERNAL = 0, 1, 2, 3, 4
DEFAULT_TOLERANCE = 1e-5


# ---------------------------------------------------------------------------
# the ops the command knows: one entry each


def _plan(op: str, x, f, pointwise=None, **kwargs):
    """The shapes-only plan of ``op`` (the pointwise filter shape for separable_conv2d)."""
    if pointwise is not None:
        kwargs["pointwise_filter_shape"] = pointwise
    return plan_shapes(op, x, f, **kwargs)


@dataclass(frozen=True)
class OpEntry:
    """How the command calls one op: on the GPU, in the oracle, and how it plans.

    ``gpu`` and ``oracle`` take the arrays positionally (``x, filter`` or, for an op
    with a ``pointwise`` filter, ``x, depthwise_filter, pointwise_filter``) and the
    keyword arguments :func:`op_kwargs` builds; :func:`_plan` plans it from shapes.
    """

    gpu: Callable            # gpuconv.<op>
    oracle: Callable         # gpuconv.oracle.<op>, same signature, float64
    filter_layout: str
    summary: str = ""
    data_formats: Tuple[str, ...] = DATA_FORMATS  # the first is the default
    one_d: bool = False      # conv1d: --strides/--dilations are one int each (stride=, dilation=)
    grouped: bool = False    # accepts --groups
    fused: bool = False      # accepts --bias, --activation, --leakyrelu-alpha, --prelu-weights
    rounding: bool = True    # accepts --dim-rounding-mode
    pointwise: bool = False  # needs --pointwise-filter (a second, 1x1 filter)


POINTWISE_LAYOUT = "1 x 1 x in_channels*channel_multiplier x out_channels"

OPS = {
    "conv2d": OpEntry(conv2d, oracle.conv2d, grouped=True, fused=True,
                      filter_layout="filter_height x filter_width x in_channels/groups x out_channels",
                      summary="2-D convolution (tf.nn.conv2d; fused bias/activation as tf.fused.conv2d)"),
    "depthwise_conv2d": OpEntry(depthwise_conv2d, oracle.depthwise_conv2d, fused=True,
                                filter_layout="filter_height x filter_width x in_channels x channel_multiplier",
                                summary="depthwise 2-D convolution (tf.nn.depthwise_conv2d)"),
    "separable_conv2d": OpEntry(separable_conv2d, oracle.separable_conv2d,
                                rounding=False, pointwise=True,
                                filter_layout="filter_height x filter_width x in_channels x channel_multiplier, "
                                              "then --pointwise-filter " + POINTWISE_LAYOUT,
                                summary="depthwise then pointwise 1x1 convolution, two programs "
                                        "(tf.nn.separable_conv2d)"),
    "conv1d": OpEntry(conv1d, oracle.conv1d, data_formats=("NWC", "NCW"), one_d=True,
                      filter_layout="filter_width x in_channels x out_channels",
                      summary="1-D convolution, run as a conv2d of height 1 (tf.conv1d)"),
}

#: Every --data-format any op accepts.
ALL_DATA_FORMATS = tuple(dict.fromkeys(f for entry in OPS.values() for f in entry.data_formats))


def _with(names) -> str:
    return ", ".join(names)


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


def parse_pair(text: str):
    """``"2"`` -> ``2``; ``"2x1"`` -> ``(2, 1)`` (height, width)."""
    values = _positive_ints(text, "x", "one integer or an HxW pair", "2 or 2x1")
    if len(values) > 2:
        raise argparse.ArgumentTypeError(
            f"expected one integer or an HxW pair written like 2 or 2x1, got {text!r}")
    return values[0] if len(values) == 1 else values


def parse_padding(text: str):
    """``same``/``valid`` -> ``"SAME"``/``"VALID"``; ``1`` -> ``1``; ``L,R`` -> ``[L, R]`` (conv1d);
    ``T,B,L,R`` -> ``[[T, B], [L, R]]``."""
    word = text.strip().upper()
    if word in ("SAME", "VALID"):
        return word
    try:
        values = [int(p) for p in word.split(",")]
    except ValueError:
        values = []
    if len(values) in (1, 2, 4) and min(values) >= 0:
        return {1: lambda: values[0], 2: lambda: values, 4: lambda: [values[0:2], values[2:4]]}[len(values)]()
    raise argparse.ArgumentTypeError(
        f"expected same, valid, a number of pixels (1), explicit pads top,bottom,left,right "
        f"(1,0,2,1) or, for conv1d, left,right (2,1), got {text!r}")


def padding_text(padding) -> str:
    """The inverse of :func:`parse_padding`, for tables."""
    if isinstance(padding, list):
        return ",".join(str(v) for item in padding for v in (item if isinstance(item, list) else [item]))
    return str(padding)


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


# ---------------------------------------------------------------------------
# argument parser


class UsageError(ValueError):
    """A bad command line; reported in one line with exit code 2."""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser that raises instead of printing usage and exiting."""

    def error(self, message):
        raise UsageError(f"{message} (see '{self.prog} --help')")


def _ops_with(flag: str) -> str:
    return _with(name for name, entry in OPS.items() if getattr(entry, flag))


def _add_conv_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("convolution")
    g.add_argument("--strides", type=parse_pair, default=1, metavar="S|HxW",
                   help="stride, one for both axes (2) or height x width (2x1); default 1; "
                        f"one integer for {_ops_with('one_d')} (its stride=)")
    g.add_argument("--dilations", type=parse_pair, default=1, metavar="D|HxW",
                   help="dilation rate, like --strides; strides and dilations cannot both exceed 1")
    g.add_argument("--padding", type=parse_padding, default="VALID", metavar="PAD",
                   help="same, valid (default), a number of pixels on every side (1), "
                        "or explicit pads top,bottom,left,right (1,0,2,1); "
                        f"for {_ops_with('one_d')}: a number, or left,right (2,1)")
    g.add_argument("--dim-rounding-mode", type=_lower, choices=ROUNDING_MODES, default=None,
                   help="rounding of the output size when --padding is a number (default: truncate); "
                        f"for {_ops_with('rounding')}")
    g.add_argument("--data-format", type=_upper, choices=ALL_DATA_FORMATS, default=None,
                   help="layout of the input and output; the filter layout does not change. "
                        + "; ".join(f"{name}: {' or '.join(e.data_formats)}" for name, e in OPS.items())
                        + " (the first is the default)")
    g.add_argument("--groups", type=int, default=1, metavar="N",
                   help=f"grouped convolution ({_ops_with('grouped')} only); default 1")
    g.add_argument("--activation", type=_lower, choices=ACTIVATIONS, default=None,
                   help=f"fused activation after the convolution (and bias); {_ops_with('fused')}")
    g.add_argument("--leakyrelu-alpha", type=float, default=0.2, metavar="A",
                   help="slope for --activation leakyrelu (default 0.2)")
    g.add_argument("--algorithm", type=_lower, choices=ALGORITHMS, default=None,
                   help="direct: TF.js's programs (one output per fragment); packed: the fast "
                        "shape-generic programs; auto: packed where it applies. Default: direct "
                        "for 'shader' (the TF.js-style source), auto for 'run' (what the API runs)")


def build_parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show the full traceback of an error")

    parser = _Parser(
        prog="gpuconv",
        description="Generate, inspect and run TensorFlow.js-style WebGL convolution shaders "
                    "headless, checked against a float64 NumPy oracle.",
        epilog="examples:\n"
               "  gpuconv shader conv2d --input 1x7x7x6 --filter 3x3x6x4 --padding same\n"
               "  gpuconv selftest --quick\n"
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

    def add(name, help, description, example, func):
        paragraphs = [textwrap.fill(text, 88) for text in description.split("\n")]
        p = sub.add_parser(name, help=help, description="\n".join(paragraphs) + f"\n\nexample:\n  {example}",
                           formatter_class=argparse.RawDescriptionHelpFormatter, parents=[common])
        p.set_defaults(func=func)
        return p

    p = add("shader", "print the GLSL fragment program an op runs",
            "Print the GLSL ES 3.00 fragment program that OP runs for these shapes "
            "(no GL needed).\nShapes are written like 1x7x7x6, in --data-format order for the input.\n"
            "separable_conv2d runs two programs (depthwise, then the pointwise 1x1 conv2d that reads "
            "its output); both are printed, the second after a '// ---- program 2 of 2' line.",
            "gpuconv shader conv2d --input 1x7x7x6 --filter 3x3x6x4 --padding same --annotate", cmd_shader)
    p.add_argument("op", choices=list(OPS), metavar="OP", help=f"one of: {ops_help}")
    p.add_argument("--input", type=parse_shape, required=True, metavar="SHAPE",
                   help="input shape, e.g. 1x7x7x6 (NHWC), 1x6x7x7 (NCHW) or 1x20x3 (conv1d, NWC); "
                        "the batch may be left out")
    p.add_argument("--filter", type=parse_shape, required=True, metavar="SHAPE",
                   help="filter shape, e.g. 3x3x6x4 (" + "; ".join(
                       f"{n}: {e.filter_layout}" for n, e in OPS.items()) + ")")
    p.add_argument("--pointwise-filter", type=parse_shape, metavar="SHAPE",
                   help=f"the second filter of {_ops_with('pointwise')}, {POINTWISE_LAYOUT}, e.g. 1x1x6x8")
    _add_conv_options(p)
    p.add_argument("--bias", action="store_true", help=f"fuse a per-channel bias ({_ops_with('fused')})")
    p.add_argument("--annotate", action="store_true",
                   help="add '//' comments after the #version line with the parameters that shaped "
                        "the program (shapes, texture shapes, strides, pads, depth split); "
                        "the output stays valid GLSL")
    p.add_argument("--line-numbers", action="store_true",
                   help="prefix lines with their number in the compiled program, to read compiler "
                        "errors (the output is then NOT valid GLSL; --annotate lines get no number)")
    p.add_argument("--output", metavar="FILE", help="write to FILE instead of stdout")

    p = add("run", "run an op on .npy files on the GPU",
            "Run OP on the GPU on arrays from .npy files and save the float32 result.\n"
            "--check also runs the float64 NumPy oracle and exits 1 if the error relative to the "
            "output's largest magnitude exceeds --tolerance.",
            "gpuconv run conv2d --input x.npy --filter w.npy --padding same --output y.npy --check",
            cmd_run)
    p.add_argument("op", choices=list(OPS), metavar="OP", help=f"one of: {ops_help}")
    p.add_argument("--input", required=True, metavar="X.npy", help="the input tensor")
    p.add_argument("--filter", required=True, metavar="W.npy",
                   help="the filter (for separable_conv2d: the depthwise filter)")
    p.add_argument("--pointwise-filter", metavar="PW.npy",
                   help=f"the second filter of {_ops_with('pointwise')} ({POINTWISE_LAYOUT})")
    _add_conv_options(p)
    p.add_argument("--bias", metavar="B.npy",
                   help=f"fused bias, one value per output channel ({_ops_with('fused')})")
    p.add_argument("--prelu-weights", metavar="P.npy", help="weights for --activation prelu")
    p.add_argument("--output", metavar="Y.npy", help="save the float32 result here")
    p.add_argument("--check", action="store_true", help="compare with the float64 oracle")
    p.add_argument("--tolerance", type=_positive_float, default=DEFAULT_TOLERANCE, metavar="T",
                   help=f"largest relative error --check accepts (default {DEFAULT_TOLERANCE:g})")

    p = add("selftest", "run a fixed matrix of convolutions and compare with the oracle",
            f"Run {len(SELFTEST_CASES)} convolutions (every op, input depths 1-9, strides, dilations, "
            f"every padding form, every data format, batches 1 and 3, grouped, fused) on the GPU "
            f"with seeded random data in [-1, 1], compare each with "
            f"the float64 oracle and print a table. Exits 1 if any fails.",
            "gpuconv selftest --quick", cmd_selftest)
    p.add_argument("--quick", action="store_true",
                   help=f"run only {sum(c.quick for c in SELFTEST_CASES)} of the cases")
    p.add_argument("--seed", type=int, default=0, help="seed of the random data (default 0)")
    p.add_argument("--tolerance", type=_positive_float, default=DEFAULT_TOLERANCE, metavar="T",
                   help=f"largest relative error accepted (default {DEFAULT_TOLERANCE:g})")

    p = add("random", "run seeded random configurations and compare with the oracle",
            "Draw COUNT valid configurations at random (every op and argument: shapes with every "
            "input depth mod 4, strides, dilations, every padding form and rounding mode, every data "
            "format, rank-3 inputs, groups, multipliers, fused bias and activations, algorithm=, float16/32/64) "
            "from --seed, run each on the GPU and in the float64 oracle, and compare. Progress goes "
            "to stderr; each failure is printed with its configuration and the command that repeats "
            "it. Exits 1 if any fails.",
            "gpuconv random --count 200 --seed 0", cmd_random)
    p.add_argument("--count", type=int, default=200, metavar="N", help="how many configurations (default 200)")
    p.add_argument("--seed", type=int, default=0, help="seed of the configurations and data (default 0)")
    p.add_argument("--start", type=int, default=0, metavar="I",
                   help="index of the first configuration (to repeat one: --start I --count 1)")
    p.add_argument("--tolerance", type=_positive_float, default=DEFAULT_TOLERANCE, metavar="T",
                   help=f"largest relative error accepted (default {DEFAULT_TOLERANCE:g})")
    p.add_argument("--verbose", action="store_true", help="print every configuration, not only failures")

    add("info", "show the GL device and versions",
        "Show the OpenGL device gpuconv runs on (renderer, vendor, version, limits, backend) "
        "and the versions of gpuconv and moderngl.", "gpuconv info", cmd_info)

    p = add("demo", "run one real convolution, timed and checked",
            "Run a 3x3 convolution of a 1x64x64x16 input to 32 channels (SAME, stride 1) on the "
            "default headless GPU, time it and check it against the float64 oracle.",
            "gpuconv demo", cmd_demo)
    p.add_argument("--seed", type=int, default=0, help="seed of the random data (default 0)")
    p.add_argument("--tolerance", type=_positive_float, default=DEFAULT_TOLERANCE, metavar="T",
                   help=f"largest relative error accepted (default {DEFAULT_TOLERANCE:g})")
    return parser


# ---------------------------------------------------------------------------
# shared pieces


def op_kwargs(op: str, strides=1, dilations=1, padding="VALID", data_format=None,
              dim_rounding_mode=None, groups=1) -> dict:
    """The keyword arguments of ``gpuconv.<op>`` for these command-line values.

    Raises :class:`UsageError`, naming the option, for a value the op has no
    argument for (``--groups`` for an op without groups, a 2-D stride for conv1d, ...).
    """
    entry = OPS[op]

    def only(option, flag):
        raise UsageError(f"{option} is an option of {_ops_with(flag)} only, not of {op}")

    data_format = data_format or entry.data_formats[0]
    if data_format not in entry.data_formats:
        raise UsageError(f"--data-format {data_format} is not a data format of {op}: "
                         f"it takes {' or '.join(entry.data_formats)}")
    explicit = isinstance(padding, list)
    if entry.one_d:
        for option, value in (("--strides", strides), ("--dilations", dilations)):
            if not isinstance(value, int):
                raise UsageError(f"{option} {_pair_text(value)}: {op} takes one integer (along the width)")
        if explicit and not all(isinstance(v, int) for v in padding):
            raise UsageError(f"--padding {padding_text(padding)}: {op}'s explicit pads are left,right (e.g. 2,1)")
        kwargs = dict(stride=strides, padding=padding, data_format=data_format, dilation=dilations)
    else:
        if explicit and not all(isinstance(v, list) for v in padding):
            raise UsageError(f"--padding {padding_text(padding)}: {op}'s explicit pads are "
                             f"top,bottom,left,right (e.g. 1,0,2,1); left,right is for {_ops_with('one_d')}")
        kwargs = dict(strides=strides, padding=padding, data_format=data_format, dilations=dilations)
    if entry.rounding:
        kwargs["dim_rounding_mode"] = dim_rounding_mode
    elif dim_rounding_mode is not None:
        only("--dim-rounding-mode", "rounding")
    if entry.grouped:
        kwargs["groups"] = groups
    elif groups != 1:
        only("--groups", "grouped")
    return kwargs


def _conv_kwargs(args) -> dict:
    return op_kwargs(args.op, args.strides, args.dilations, args.padding, args.data_format,
                     args.dim_rounding_mode, args.groups)


def _check_fused_options(args) -> None:
    """--bias, --activation and --prelu-weights only for the ops with a fused epilogue."""
    if OPS[args.op].fused:
        return
    for option in ("bias", "activation", "prelu_weights"):
        if getattr(args, option, None):
            raise UsageError(f"--{option.replace('_', '-')} is an option of {_ops_with('fused')} only "
                             f"(a fused epilogue), not of {args.op}")


def _pointwise(args, load):
    """The --pointwise-filter of an op that needs one (loaded by ``load``); else refuse it."""
    if OPS[args.op].pointwise:
        if args.pointwise_filter is None:
            raise UsageError(f"{args.op} needs --pointwise-filter ({POINTWISE_LAYOUT})")
        return load(args.pointwise_filter)
    if args.pointwise_filter is not None:
        raise UsageError(f"--pointwise-filter is an option of {_ops_with('pointwise')} only, not of {args.op}")
    return None


def compare(result: np.ndarray, expected: np.ndarray) -> Tuple[float, float]:
    """Max abs error and that error relative to the largest magnitude of ``expected``
    (:func:`gpuconv.oracle.compare`; a shape mismatch is an internal error here, not bad input)."""
    if np.shape(result) != np.shape(expected):
        raise AssertionError(f"result shape {np.shape(result)} != oracle shape {np.shape(expected)}")
    return oracle.compare(result, expected)


def passed(rel_error: float, tolerance: float) -> bool:
    return bool(rel_error <= tolerance)  # False for NaN


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.1f} ms"


def _load(path: Optional[str], option: str) -> Optional[np.ndarray]:
    if path is None:
        return None
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise UsageError(f"{option}: cannot read {path!r} as a .npy array: {exc}") from exc


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


# ---------------------------------------------------------------------------
# gpuconv shader


def annotation(op: str, spec, dim_rounding_mode: Optional[str] = None, step: int = 1,
               steps: int = 1) -> List[str]:
    """``//`` comment lines with the parameters that shaped one program of ``op`` (``spec``).

    ``step`` of ``steps`` says which program of a chained op it is (separable_conv2d
    runs a depthwise program, then a pointwise 1x1 conv2d reading its output).
    """
    g = spec.geometry
    entry = OPS[op]
    def texture_text(name, layout):
        kind = "RGBA" if layout.components == 4 else "R"
        return f"{name} {layout.rows}x{layout.cols} {kind}{' (wrapped)' if getattr(layout, 'wrapped', False) else ''}"

    textures = ", ".join(texture_text(i.name, i.layout) for i in spec.inputs)
    outputs = spec.output_layouts
    textures += ", " + texture_text("output", outputs[0])
    if len(outputs) > 1:
        textures += f" x {len(outputs)} render targets"
    if isinstance(spec, PackedProgramSpec):
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
    title = f"{op} ({spec.name}, template {spec.template})"
    filter_layout = entry.filter_layout.split(", then")[0]
    if steps > 1:
        role = "depthwise" if g.depthwise else "pointwise 1x1 conv2d, reading program 1's output as x"
        title = f"{op}, program {step} of {steps}: {role} ({spec.name}, template {spec.template})"
        filter_layout = filter_layout if g.depthwise else POINTWISE_LAYOUT
    if entry.one_d:
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


def cmd_shader(args) -> int:
    entry = OPS[args.op]
    conv = _conv_kwargs(args)
    _check_fused_options(args)
    pointwise = _pointwise(args, lambda shape: shape)
    fused = {}
    if entry.fused:
        # A plan without the epilogue tells the output channels; the dummy fused inputs need only that.
        out_channels = _plan(args.op, args.input, args.filter, **conv).geometry.out_channels
        fused = {"activation": args.activation, "leakyrelu_alpha": args.leakyrelu_alpha}
        if args.bias:
            fused["bias"] = np.zeros(out_channels, np.float32)
        if args.activation == "prelu":  # one weight per channel, in either data format
            fused["prelu_weights"] = np.zeros(out_channels, np.float32)
    extra = {"pointwise_filter_shape": pointwise} if entry.pointwise else {}
    algorithm = args.algorithm or "direct"
    sources = shader_sources(args.op, args.input, args.filter, **conv, **fused, **extra, algorithm=algorithm)
    specs = (_plan(args.op, args.input, args.filter, pointwise, **conv, **fused, algorithm=algorithm).specs
             if args.annotate else ())
    chunks = []
    for step, source in enumerate(sources, 1):
        lines = source.splitlines()
        notes = 0
        if args.annotate:
            note = annotation(args.op, specs[step - 1], args.dim_rounding_mode, step, len(sources))
            lines = lines[:1] + note + lines[1:]
            notes = len(note)
        if args.line_numbers:
            lines = number_lines(lines, notes)
        if step > 1:
            lines = ["", f"// ---- program {step} of {len(sources)}: the pointwise 1x1 conv2d, reading "
                         f"program {step - 1}'s output as x ----", ""] + lines
        chunks.append("\n".join(lines) + "\n")
    _emit("".join(chunks), args.output)
    return EXIT_OK


# ---------------------------------------------------------------------------
# gpuconv run


def cmd_run(args) -> int:
    entry = OPS[args.op]
    conv = _conv_kwargs(args)
    _check_fused_options(args)
    x, w = _load(args.input, "--input"), _load(args.filter, "--filter")
    arrays = (x, w)
    pointwise = _pointwise(args, lambda path: _load(path, "--pointwise-filter"))
    if pointwise is not None:
        arrays += (pointwise,)
    fused = {}
    if entry.fused:
        fused = dict(bias=_load(args.bias, "--bias"), activation=args.activation,
                     leakyrelu_alpha=args.leakyrelu_alpha,
                     prelu_weights=_load(args.prelu_weights, "--prelu-weights"))
    runtime = get_runtime()
    start = time.perf_counter()
    y = entry.gpu(*arrays, **conv, **fused, algorithm=args.algorithm or "auto", runtime=runtime)
    gpu_s = time.perf_counter() - start
    y = np.asarray(y, dtype=np.float32)
    if args.output:
        try:
            np.save(args.output, y)
        except OSError as exc:
            raise UsageError(f"--output: cannot write {args.output!r}: {exc}") from exc
    saved = f" -> {args.output}" if args.output else " (not saved: use --output)"
    filters = " then ".join(shape_text(a.shape) for a in arrays[1:])
    print(f"{args.op}: x {shape_text(x.shape)}, filter {filters} -> {shape_text(y.shape)} "
          f"float32 in {_ms(gpu_s)} on the GPU (first call: includes compiling the program){saved}")
    if not args.check:
        return EXIT_OK
    start = time.perf_counter()
    expected = entry.oracle(*arrays, **conv, **fused)
    oracle_s = time.perf_counter() - start
    max_abs, rel = compare(y, expected)
    ok = passed(rel, args.tolerance)
    print(f"check: max abs error {max_abs:.3g}, relative {rel:.3g} (tolerance {args.tolerance:g}; "
          f"oracle {_ms(oracle_s)}): {'PASS' if ok else 'FAIL'}")
    return EXIT_OK if ok else EXIT_FAILED


# ---------------------------------------------------------------------------
# gpuconv selftest


class Case(NamedTuple):
    """One selftest configuration; shapes in ``data_format`` order."""

    op: str
    x: Tuple[int, ...]
    filter: Tuple[int, ...]
    strides: object = 1
    dilations: object = 1
    padding: object = "SAME"
    data_format: str = "NHWC"
    rounding: Optional[str] = None
    groups: int = 1
    bias: bool = False
    activation: Optional[str] = None
    quick: bool = False
    pointwise: Optional[Tuple[int, ...]] = None  # separable_conv2d's second filter

    def kwargs(self) -> dict:
        kwargs = op_kwargs(self.op, self.strides, self.dilations, self.padding, self.data_format,
                           self.rounding, self.groups)
        return {k: v for k, v in kwargs.items() if not (k == "groups" and v == 1)}

    @property
    def filters(self) -> Tuple[Tuple[int, ...], ...]:
        return (self.filter,) + ((self.pointwise,) if self.pointwise else ())

    @property
    def label(self) -> str:
        """The op column: the op, its groups and its fused epilogue."""
        return (self.op + (f" g={self.groups}" if self.groups != 1 else "")
                + ("+bias" if self.bias else "") + (f"+{self.activation}" if self.activation else ""))


def _c(x, f, s=1, d=1, pad="SAME", fmt="NHWC", **kw):
    return Case("conv2d", parse_shape(x), parse_shape(f), s, d, pad, fmt, **kw)


def _d(x, f, s=1, d=1, pad="SAME", fmt="NHWC", **kw):
    return Case("depthwise_conv2d", parse_shape(x), parse_shape(f), s, d, pad, fmt, **kw)


def _s(x, f, pw, s=1, d=1, pad="SAME", fmt="NHWC", **kw):
    return Case("separable_conv2d", parse_shape(x), parse_shape(f), s, d, pad, fmt,
                pointwise=parse_shape(pw), **kw)


def _1(x, f, s=1, d=1, pad="SAME", fmt="NWC", **kw):
    return Case("conv1d", parse_shape(x), parse_shape(f), s, d, pad, fmt, **kw)


#: Every op; input depth 1-9 (vec4 remainders 0-3), strides 1-3, dilations 1-3, every
#: padding form, every data format, batch 1 and 3 (and none), 1x1 and non-square filters,
#: multipliers 1-3.
SELFTEST_CASES = (
    # conv2d, NHWC
    _c("1x5x5x1", "3x3x1x2", quick=True),
    _c("1x6x6x2", "3x3x2x3", s=2, pad="VALID"),
    _c("1x7x7x3", "2x3x3x4", d=2, quick=True),
    _c("1x7x7x4", "3x3x4x4", s=3),
    _c("1x6x5x5", "1x1x5x3", pad="VALID", quick=True),
    _c("3x5x5x6", "3x3x6x2", pad=[[1, 0], [2, 1]], quick=True),
    _c("1x8x8x7", "3x2x7x2", s=(2, 1), pad=1),
    _c("1x9x9x8", "3x3x8x4", d=3, pad="VALID"),
    _c("1x7x7x9", "3x3x9x5"),
    _c("1x8x8x8", "5x3x8x2", s=2, pad=2, rounding="ceil"),
    _c("1x7x7x6", "3x3x6x4", s=2, pad=1, rounding="round"),
    _c("3x6x6x1", "1x1x1x4", pad="VALID"),
    _c("1x6x6x4", "3x3x2x4", groups=2, quick=True),
    _c("1x5x5x3", "3x3x3x1", d=3),
    _c("1x10x10x2", "4x4x2x2", s=3),
    # conv2d, NCHW
    _c("1x1x6x6", "3x3x1x2", s=2, fmt="NCHW"),
    _c("1x2x7x7", "3x3x2x3", d=2, pad="VALID", fmt="NCHW"),
    _c("3x4x6x6", "2x2x4x4", s=2, pad=1, fmt="NCHW", quick=True),
    _c("1x5x5x5", "1x1x5x6", s=2, fmt="NCHW"),
    _c("1x6x8x8", "3x3x6x3", s=3, pad=[[2, 1], [0, 2]], fmt="NCHW"),
    _c("1x7x6x6", "3x1x7x2", d=(1, 2), fmt="NCHW"),
    _c("1x9x7x7", "3x3x9x4", s=(1, 3), pad="VALID", fmt="NCHW"),
    _c("3x2x5x5", "2x3x2x2", pad=[[0, 1], [1, 0]], fmt="NCHW"),
    _c("1x6x5x5", "3x3x3x4", pad="VALID", fmt="NCHW", groups=2),
    # depthwise_conv2d, NHWC
    _d("1x5x5x1", "3x3x1x1", quick=True),
    _d("1x6x6x2", "3x3x2x2", s=2, pad="VALID"),
    _d("1x7x7x3", "3x3x3x3", d=2, quick=True),
    _d("1x7x7x4", "2x3x4x1", s=3),
    _d("3x5x5x5", "1x1x5x2", pad="VALID"),
    _d("1x8x8x6", "3x3x6x1", s=(2, 1), pad=[[1, 1], [0, 2]]),
    _d("1x9x9x7", "3x3x7x2", d=3, pad="VALID"),
    _d("1x6x6x8", "3x2x8x1", pad=1),
    _d("1x7x7x9", "3x3x9x1", s=2),
    _d("1x8x8x2", "5x5x2x1", s=2, pad=2, rounding="ceil"),
    _d("1x6x6x3", "3x3x3x2", d=(1, 3)),
    # depthwise_conv2d, NCHW
    _d("1x1x6x6", "3x3x1x3", s=2, fmt="NCHW", quick=True),
    _d("1x3x7x7", "3x3x3x2", s=2, pad="VALID", fmt="NCHW"),
    _d("3x4x5x5", "3x3x4x1", d=2, fmt="NCHW", quick=True),
    _d("1x5x6x6", "1x1x5x3", s=3, pad=1, fmt="NCHW"),
    _d("1x6x7x7", "2x2x6x2", pad=[[0, 1], [1, 0]], fmt="NCHW"),
    _d("1x9x8x8", "3x1x9x1", s=(1, 2), pad="VALID", fmt="NCHW"),
    # fused epilogues (bias, activation)
    _c("1x6x6x5", "3x3x5x3", bias=True, activation="relu"),
    _c("1x3x6x6", "3x3x3x2", s=2, fmt="NCHW", activation="leakyrelu"),
    _d("1x6x6x3", "3x3x3x2", bias=True, activation="prelu"),
    # separable_conv2d (depthwise filter + pointwise filter)
    _s("1x8x8x3", "3x3x3x2", "1x1x6x4", quick=True),
    _s("1x9x9x5", "3x2x5x1", "1x1x5x3", s=2, pad="VALID"),
    _s("3x4x7x7", "3x3x4x2", "1x1x8x2", d=2, fmt="NCHW"),
    _s("1x7x7x2", "3x3x2x3", "1x1x6x5", pad=1),
    # conv1d (x [batch, width, channels] or [batch, channels, width]; filter [width, in, out])
    _1("1x20x3", "3x3x4", quick=True),
    _1("2x17x5", "4x5x2", d=3, pad="VALID"),
    _1("1x4x16", "5x4x3", s=3, pad=2, rounding="ceil", fmt="NCW"),
    _1("12x6", "3x6x2", pad=[2, 1]),
    _1("3x7x15", "2x7x3", s=2, fmt="NCW"),
)


def _pair_text(value) -> str:
    return f"{value[0]}x{value[1]}" if isinstance(value, tuple) else str(value)


def _progress(i: int, total: int, case: Case) -> None:
    if sys.stderr.isatty():
        sys.stderr.write(f"\r\033[Kselftest [{i}/{total}] {case.op} {shape_text(case.x)}")
    else:
        sys.stderr.write("." if i < total else ".\n")
    sys.stderr.flush()


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    fmt = lambda row: "  ".join(f"{str(v):<{w}}" for v, w in zip(row, widths)).rstrip()
    return "\n".join([fmt(header), fmt(["-" * w for w in widths])] + [fmt(r) for r in rows])


def run_case(case: Case, seed: int, runtime) -> float:
    """The relative error of one case, GPU against the oracle."""
    rng = np.random.default_rng(seed)
    arrays = [rng.uniform(-1, 1, shape).astype(np.float32) for shape in (case.x,) + case.filters]
    entry = OPS[case.op]
    kwargs = case.kwargs()
    if case.bias or case.activation == "prelu":
        out_channels = _plan(case.op, case.x, *case.filters, **kwargs).geometry.out_channels
    if case.bias:
        kwargs["bias"] = rng.uniform(-1, 1, out_channels).astype(np.float32)
    if case.activation:
        kwargs["activation"] = case.activation
    if case.activation == "prelu":
        kwargs["prelu_weights"] = rng.uniform(-1, 1, out_channels).astype(np.float32)
    y = entry.gpu(*arrays, **kwargs, runtime=runtime)
    return compare(y, entry.oracle(*arrays, **kwargs))[1]


def cmd_selftest(args) -> int:
    cases = [c for c in SELFTEST_CASES if c.quick or not args.quick]
    runtime = get_runtime()
    header = ["op", "x", "filter", "strides", "dilations", "padding", "format", "max rel err", "result"]
    rows, failed = [], 0
    start = time.perf_counter()
    for i, case in enumerate(cases, 1):
        _progress(i, len(cases), case)
        try:
            rel = run_case(case, args.seed + i, runtime)
            ok, error = passed(rel, args.tolerance), f"{rel:.1e}"
        except (GLUnavailableError, KeyboardInterrupt):
            raise
        except Exception as exc:  # keep going: report the case as failed
            ok, error = False, f"{type(exc).__name__}: {exc}"[:60]
        failed += not ok
        padding = padding_text(case.padding) + (f" ({case.rounding})" if case.rounding else "")
        rows.append([case.label, shape_text(case.x), " + ".join(map(shape_text, case.filters)),
                     _pair_text(case.strides),
                     _pair_text(case.dilations), padding, case.data_format, error,
                     "PASS" if ok else "FAIL"])
    if sys.stderr.isatty():
        sys.stderr.write("\r\033[K")
    print(_table(header, rows))
    print(f"selftest: {len(cases) - failed} passed, {failed} failed "
          f"(tolerance {args.tolerance:g}, {time.perf_counter() - start:.1f} s on "
          f"{runtime.info()['renderer']})")
    return EXIT_FAILED if failed else EXIT_OK


# ---------------------------------------------------------------------------
# gpuconv random


def cmd_random(args) -> int:
    from . import randomized

    if args.count < 1 or args.start < 0:
        raise UsageError(f"--count must be positive and --start non-negative, got --count {args.count} "
                         f"--start {args.start}")
    report = randomized.run_many(args.count, args.seed, args.tolerance, start=args.start,
                                 verbose=args.verbose, progress=sys.stderr, out=sys.stdout)
    print(report.summary())
    return EXIT_FAILED if report.failed else EXIT_OK


# ---------------------------------------------------------------------------
# gpuconv info


def cmd_info(args) -> int:
    import moderngl

    print(f"gpuconv:          {__version__}")
    print(f"moderngl:         {getattr(moderngl, '__version__', 'unknown')}")
    print(f"numpy:            {np.__version__}")
    info = get_runtime().info()
    print(f"renderer:         {info['renderer']}")
    print(f"vendor:           {info['vendor']}")
    print(f"GL version:       {info['version']}")
    print(f"GLSL dialect:     {info['glsl']}")
    print(f"max texture size: {info['max_texture_size']} (layouts use up to {info['layout_texture_size']})")
    print(f"context backend:  {info['backend']}")
    return EXIT_OK


# ---------------------------------------------------------------------------
# gpuconv demo

DEMO_X, DEMO_FILTER = (1, 64, 64, 16), (3, 3, 16, 32)


def cmd_demo(args) -> int:
    rng = np.random.default_rng(args.seed)
    x = rng.uniform(-1, 1, DEMO_X).astype(np.float32)
    w = rng.uniform(-1, 1, DEMO_FILTER).astype(np.float32)
    kwargs = dict(strides=1, padding="SAME")
    runtime = get_runtime()

    def timed(fn):
        start = time.perf_counter()
        value = fn()
        return value, time.perf_counter() - start

    y, cold = timed(lambda: conv2d(x, w, **kwargs, runtime=runtime))
    warm = [timed(lambda: conv2d(x, w, **kwargs, runtime=runtime))[1] for _ in range(5)]
    expected, oracle_s = timed(lambda: oracle.conv2d(x, w, **kwargs))
    max_abs, rel = compare(y, expected)
    ok = passed(rel, args.tolerance)
    print(f"gpuconv demo: conv2d on {runtime.info()['renderer']} ({runtime.backend})")
    print(f"  shapes  x {shape_text(x.shape)} (NHWC) * filter {shape_text(w.shape)}, SAME, stride 1 "
          f"-> {shape_text(y.shape)}")
    print(f"  GPU     warm {_ms(statistics.median(warm))} (median of 5), cold {_ms(cold)} "
          f"(first call: compile + upload + draw + read-back)")
    print(f"  oracle  {_ms(oracle_s)} (NumPy, float64)")
    print(f"  error   max abs {max_abs:.3g}, relative {rel:.3g} (tolerance {args.tolerance:g})")
    print("PASS" if ok else "FAIL")
    return EXIT_OK if ok else EXIT_FAILED


# ---------------------------------------------------------------------------
# entry point


def _fail(message: str) -> None:
    print(f"gpuconv: error: {' '.join(str(message).split())}", file=sys.stderr)


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = False
    try:
        args = build_parser().parse_args(argv)
        debug = getattr(args, "debug", False)
        return args.func(args)
    except SystemExit as exc:  # --help and --version
        return exc.code if isinstance(exc.code, int) else EXIT_OK
    except GLUnavailableError as exc:
        if debug:
            raise
        _fail(exc)
        return EXIT_NO_GL
    except (ValueError, TypeError) as exc:  # UsageError and gpuconv's argument checks
        if debug:
            raise
        _fail(exc)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("gpuconv: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if debug:
            raise
        _fail(f"{type(exc).__name__}: {exc} (run again with --debug for the traceback)")
        return EXIT_INTERNAL


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
