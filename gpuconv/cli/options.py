"""The options several commands share, built from the op table (:data:`gpuconv.registry.OPS`): how each is
parsed, the argparse groups that add them, and what they become in a call of ``gpuconv.<op>``."""

from __future__ import annotations

import argparse
from typing import Any, Callable, Dict, List, NoReturn, Optional, Tuple, Union

import numpy as np

from .. import registry
from ..arguments import ACTIVATIONS
from ..geometry import ROUNDING_MODES
from ..ops import ALGORITHMS
from ..registry import OPS, option_name, padding_text, pair_text
from ..runtimes import BACKEND_ENV, RUNTIME_KINDS
from ..storage import STORAGES
from ..target import TARGETS, WEBGL2
from .backend import API_CHOICES, GL_CHOICES
from .common import FLOAT16_TOLERANCE, Args, UsageError, joined, ops_with

#: The OP argument's help: every op with its one-line summary.
OPS_HELP = "; ".join(f"{name}: {entry.summary}" for name, entry in OPS.items())

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


def upper(text: str) -> str:
    return text.upper()


def lower(text: str) -> str:
    return text.lower()


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number like 1e-5, got {text!r}")
    return value


def positive_int(text: str) -> int:
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


def add_leading_options(p: argparse.ArgumentParser, metavar: str, kind: Callable[[str], Any] = str) -> None:
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
                       + f" ({joined(owners)}{'; ' + ', '.join(sorted(names)) if len(names) > 1 else ''})")


def leading_values(args: argparse.Namespace, load: Callable[[Any, str], Any]) -> Dict[str, Any]:
    """The op's leading arguments by name from their options (``load(value, option)`` each array;
    shapes as parsed).  A missing one, or the option of another op's argument, is a UsageError
    naming the option."""
    entry = OPS[args.op]
    mine = [registry.array_option(n) for n in entry.leading]
    for option in LEADING_OPTIONS:
        if option not in mine and getattr(args, _dest(option), None) is not None:
            raise UsageError(f"{option} is an option of {joined(_option_owners(option))} only, not of {args.op} "
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
# the option groups


def add_conv_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("convolution")
    three_d = joined(name for name, e in OPS.items() if e.spatial == 3)
    g.add_argument("--strides", type=parse_pair, default=1, metavar="S|HxW|DxHxW",
                   help="stride, one for every axis (2) or height x width (2x1); default 1; "
                        f"one integer for {ops_with('one_d')} (its stride=); depth x height x width "
                        f"(1x2x2) for {three_d}")
    g.add_argument("--dilations", type=parse_pair, default=1, metavar="D|HxW|DxHxW",
                   help="dilation rate, like --strides")
    g.add_argument("--padding", type=parse_padding, default="VALID", metavar="PAD",
                   help="same, valid (default), a number of pixels on every side (1), "
                        "or explicit pads top,bottom,left,right (1,0,2,1); "
                        f"for {ops_with('one_d')}: a number, or left,right (2,1); for {three_d}: "
                        f"front,back,top,bottom,left,right (1,1,0,0,2,1)")
    g.add_argument("--dim-rounding-mode", type=lower, choices=ROUNDING_MODES, default=None,
                   help="rounding of the output size when --padding is a number (default: truncate); "
                        f"for {ops_with('rounding')}")
    g.add_argument("--data-format", type=upper, choices=registry.ALL_DATA_FORMATS, default=None,
                   help="layout of the input and output; the filter layout does not change. "
                        + "; ".join(f"{name}: {' or '.join(e.data_formats)}" for name, e in OPS.items())
                        + " (the first is the default)")
    g.add_argument("--groups", type=int, default=1, metavar="N",
                   help=f"grouped convolution ({ops_with('grouped')} only); default 1")
    g.add_argument("--activation", type=lower, choices=ACTIVATIONS, default=None,
                   help=f"fused activation after the convolution (and bias); {ops_with('fused')}")
    g.add_argument("--leakyrelu-alpha", type=float, default=None, metavar="A",
                   help="slope for --activation leakyrelu (default 0.2); refused with another activation")
    g.add_argument("--algorithm", type=lower, choices=ALGORITHMS, default=None,
                   help="direct: TF.js's programs (one output per fragment); packed: the fast "
                        "shape-generic programs; im2col: TF.js's default conv2d path (im2col + matrix "
                        "multiply); auto: packed or im2col where each measured faster. Default: direct "
                        "for 'shader' (the TF.js-style source), auto for 'run' (what the API runs); "
                        f"{ops_with('algorithms')} only (the others run their direct program). The WebGPU "
                        f"target (--target/--backend webgpu) runs auto (its blocked conv2d and vec4 depthwise "
                        f"programs; the default of 'shader' there too), direct or im2col")


def add_shape_arguments(p: argparse.ArgumentParser) -> None:
    """OP, its leading arguments as shapes, the convolution options and the --bias and --residual flags:
    the arguments of the commands that need shapes only (shader, warmup)."""
    p.add_argument("op", choices=list(OPS), metavar="OP", help=f"one of: {OPS_HELP}")
    add_leading_options(p, "SHAPE", parse_shape)
    add_conv_options(p)
    p.add_argument("--bias", action="store_true", help=f"fuse a per-channel bias ({ops_with('fused')})")
    p.add_argument("--residual", action="store_true",
                   help=f"fuse a residual of the output's shape, added after the bias and before the activation "
                        f"({ops_with('fused')})")


def add_limit_options(p: argparse.ArgumentParser, what: str) -> None:
    g = p.add_argument_group("device limits")
    g.add_argument("--max-texture-size", type=positive_int, default=None, metavar="N",
                   help=f"the largest texture side {what} (default: the device's, at most 16384; "
                        f"WebGL2 guarantees 2048)")
    g.add_argument("--max-draw-buffers", type=positive_int, default=None, metavar="N",
                   help=f"the most render targets of one draw {what} (default: the device's, at most 8; "
                        f"WebGL2 guarantees 4)")


def add_runtime_options(p: argparse.ArgumentParser, limits: bool = True) -> None:
    g = p.add_argument_group("runtime")
    g.add_argument("--backend", type=lower, choices=RUNTIME_KINDS, default=None,
                   help=f"where the programs run: native (moderngl in this process, the default), "
                        f"browser (headless Chromium: WebGL2, or WebGPU with --api webgpu) or webgpu (the "
                        f"WebGPU target's WGSL programs through wgpu-py; Mesa's lavapipe without a GPU); "
                        f"default browser or webgpu when {BACKEND_ENV} says so")
    g.add_argument("--gl", type=lower, choices=tuple(c for kinds in GL_CHOICES.values() for c in kinds),
                   default=None, metavar="NAME",
                   help="the GL under the runtime: " + "; ".join(
                       f"{kind}: {' or '.join(names)}" for kind, names in GL_CHOICES.items() if names)
                   + " (the first is the default); none for webgpu")
    g.add_argument("--api", type=lower, choices=API_CHOICES, default=None,
                   help="with --backend browser: the page's API, webgl2 (the default) or webgpu "
                        "(Chromium's WebGPU running the WebGPU target's WGSL programs)")
    add_storage_option(g)
    if limits:
        add_limit_options(p, "the runtime lays out and generates for")


def add_storage_option(g: Any) -> None:
    g.add_argument("--storage", type=lower, choices=STORAGES, default=None,
                   help="how every texture stores its values: float32 (R32F/RGBA32F, the default) or float16 "
                        "(R16F/RGBA16F, as TF.js stores tensors on phones without float32 render targets); "
                        f"with float16 the default tolerance is {FLOAT16_TOLERANCE:g}")


# ---------------------------------------------------------------------------
# the options as the arguments of gpuconv.<op>


def op_kwargs(op: str, strides: Any = 1, dilations: Any = 1, padding: Any = "VALID",
              data_format: Optional[str] = None, dim_rounding_mode: Optional[str] = None,
              groups: int = 1) -> Dict[str, Any]:
    """The keyword arguments of ``gpuconv.<op>`` for these command-line values.

    Raises :class:`UsageError`, naming the option, for a value the op has no
    argument for (``--groups`` for an op without groups, a 2-D stride for conv1d, ...).
    """
    entry = OPS[op]

    def only(option: str, flag: str) -> NoReturn:
        raise UsageError(f"{option} is an option of {ops_with(flag)} only, not of {op}")

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
                             f"top,bottom,left,right (e.g. 1,0,2,1); left,right is for {ops_with('one_d')}")
    if not entry.rounding and dim_rounding_mode is not None:
        only("--dim-rounding-mode", "rounding")
    if not entry.grouped and groups != 1:
        only("--groups", "grouped")
    kwargs = entry.call_kwargs(strides, dilations, padding, data_format, dim_rounding_mode, groups)
    if entry.grouped:
        kwargs["groups"] = groups
    return kwargs


def conv_kwargs(args: Args) -> Dict[str, Any]:
    """:func:`op_kwargs` for the parsed convolution options."""
    return op_kwargs(args.op, args.strides, args.dilations, args.padding, args.data_format,
                     args.dim_rounding_mode, args.groups)


def algorithm_kwargs(args: Args, default: str) -> Dict[str, Any]:
    """``algorithm=`` for the op: --algorithm or ``default``; none for an op without a packed
    program (--algorithm direct is what it runs; packed and auto are refused)."""
    if OPS[args.op].algorithms:
        return {"algorithm": args.algorithm or default}
    if args.algorithm not in (None, "direct"):
        raise UsageError(f"--algorithm {args.algorithm}: {args.op} runs its direct program only "
                         f"(--algorithm is for {ops_with('algorithms')})")
    return {}


def target_algorithm_kwargs(args: Args) -> Dict[str, Any]:
    """``algorithm=`` for ``--target``: WebGL2's default is TF.js's direct programs; another
    target's is what the ops run there ("auto": on WebGPU, TF.js's WebGPU programs), and an
    algorithm it does not offer is refused."""
    target = TARGETS[args.target]
    if target is WEBGL2:
        return algorithm_kwargs(args, "direct")
    if args.algorithm is not None and args.algorithm not in target.algorithms:
        raise UsageError(f"--algorithm {args.algorithm} is a WebGL2 program; --target {target.name} runs "
                         f"{' or '.join(target.algorithms)}")
    return algorithm_kwargs(args, "auto")


def check_fused_options(args: Args) -> None:
    """--bias, --activation, --leakyrelu-alpha, --prelu-weights and --residual only for the ops with a fused
    epilogue; --leakyrelu-alpha only with --activation leakyrelu, --prelu-weights only with prelu."""
    if not OPS[args.op].fused:
        for option in ("bias", "activation", "leakyrelu_alpha", "prelu_weights", "residual"):
            if getattr(args, option, None) not in (None, False):
                raise UsageError(f"{option_name(option)} is an option of {ops_with('fused')} only "
                                 f"(a fused epilogue), not of {args.op}")
        return
    activation = args.activation or "linear"
    for option, needs in (("leakyrelu_alpha", "leakyrelu"), ("prelu_weights", "prelu")):
        if getattr(args, option, None) is not None and activation != needs:
            raise UsageError(f"{option_name(option)} is only used with --activation {needs}, "
                             f"got --activation {activation}")


def _channel_count(entry: registry.OpEntry, plan: Any, data_format: Optional[str]) -> int:
    """The channels of a plan's result (the fused inputs' size)."""
    data_format = data_format or entry.data_formats[0]
    axis = -1 if data_format.endswith("C") else -(entry.spatial + 1)
    return int(plan.out_shape[axis])


def shape_call(args: Args, limits: Dict[str, int]) -> Tuple[Tuple[Any, ...], Dict[str, Any]]:
    """The positional and keyword arguments of ``registry.plan_shapes`` (after the op) for
    ``shader``/``warmup``'s options (zero-filled fused inputs, which need only the output channels)."""
    entry = OPS[args.op]
    conv = conv_kwargs(args)
    check_fused_options(args)
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
        if args.residual:
            fused["residual"] = np.zeros(plain.out_shape, np.float32)
    return positional, {**conv, **fused, **extra}
