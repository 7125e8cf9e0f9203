"""GPU-against-oracle checks: the selftest table, seeded random configurations, the demo.

Every check runs the ops of :data:`gpuconv.registry.OPS` on a ``runtime`` (default: this
thread's, :func:`gpuconv.get_runtime`; pass another, a browser runtime say, to check
it) and compares each result with the float64 oracle through :func:`gpuconv.oracle.compare`.

* :data:`SELFTEST_CASES` and :func:`run_selftest` are ``gpuconv selftest``: a fixed table
  of configurations (every op, input depths 1-9, strides, dilations, paddings, formats);
* :func:`random_config` draws one valid call of any op with every argument the op has:
  small shapes (spatial 1-12, channels 1-9 so every input depth mod 4 occurs, batch 1-3
  or none, filters 1-5), strides and dilations 1-3 (never both above 1) in each of their
  forms, every padding form (``"SAME"``/``"VALID"`` in any case, an int with each
  ``dim_rounding_mode``, explicit pads in each layout), every data format, groups,
  channel multipliers, a fused bias, a residual and each activation (PReLU weights per
  channel, per element or broadcast), every ``algorithm=`` and float16/32/64 inputs.  Shapes stay
  small because a GL driver compiles each distinct program at its first draw.
  :func:`run_config` runs one; :func:`run_many` is ``gpuconv random``;
* :func:`check_result` compares one result with the oracle's and says how many NaN and
  infinite values both hold (``gpuconv run --check``); :func:`run_demo` is ``gpuconv demo``.

On a runtime whose target does not run an op yet (the WebGPU target and the filter
gradients, say) the selftest and the random checks count that case as not on the target,
not as a failure (:class:`~gpuconv.target.NotOnTargetError`, raised while planning); an
``algorithm=`` the target does not offer ("packed" on WebGPU) runs as "auto" there.

The GL object-lifetime harness is :mod:`gpuconv.lifetime`.
"""

from __future__ import annotations

import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import (
    Any,
    Callable,
    Dict,
    List,
    NamedTuple,
    Optional,
    Sequence,
    TextIO,
    Tuple,
    TypeVar,
)

import numpy as np

from . import oracle, registry
from .arguments import ACTIVATIONS
from .geometry import ROUNDING_MODES
from .plan import Plan
from .programs import shape_text
from .runtimes import BaseRuntime, GLUnavailableError, get_runtime
from .target import WEBGL2, NotOnTargetError

#: The largest relative error (over the output's largest magnitude) a check accepts by default.
DEFAULT_TOLERANCE = 1e-5

Shape = Tuple[int, ...]
_T = TypeVar("_T")


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


def device_name(runtime: BaseRuntime) -> str:
    """What ``runtime`` runs on, for a report line: a GL renderer or a WebGPU adapter."""
    info = runtime.info()
    for key in ("renderer", "adapter"):
        value = info.get(key)
        if isinstance(value, dict):  # a page's GPUAdapterInfo: vendor, architecture, device, description
            value = value.get("description") or value.get("device")
        if value:
            return str(value)
    return runtime.kind or type(runtime).__name__


def runtime_name(runtime: BaseRuntime) -> str:
    """A runtime's short name: its kind ("native", "browser"), or on another target than WebGL2
    that target ("webgpu" natively, "browser webgpu" in a page)."""
    kind = runtime.kind or "runtime"
    if runtime.target is WEBGL2:
        return kind
    return runtime.target.name if kind == "native" else f"{kind} {runtime.target.name}"


def _runtime(runtime: Optional[BaseRuntime]) -> BaseRuntime:
    return runtime if runtime is not None else get_runtime()


# ---------------------------------------------------------------------------
# one result against the oracle's (gpuconv run --check)


def special_values(result: np.ndarray, expected: np.ndarray) -> Optional[str]:
    """A sentence on the NaN and infinite values of ``result`` and whether ``expected`` has the
    same ones at the same positions; ``None`` when neither holds any."""
    result = np.asarray(result, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    r_nan, e_nan = np.isnan(result), np.isnan(expected)
    r_inf, e_inf = np.isinf(result), np.isinf(expected)
    if not (r_nan.any() or r_inf.any() or e_nan.any() or e_inf.any()):
        return None
    text = (f"the output holds {int(r_nan.sum())} NaN and {int(r_inf.sum())} infinite values "
            f"(of {result.size})")
    with np.errstate(invalid="ignore"):
        differ = (r_nan != e_nan) | (r_inf != e_inf) | (r_inf & e_inf & (np.sign(result) != np.sign(expected)))
    if not differ.any():
        return text + "; the oracle has the same ones at the same positions"
    return (text + f"; the oracle disagrees: it holds {int(e_nan.sum())} NaN and {int(e_inf.sum())} infinite "
            f"values, and {int(differ.sum())} positions differ")


@dataclass(frozen=True)
class ResultCheck:
    """One result against the oracle: the errors, the verdict and a word on NaN/inf values."""

    max_abs: float
    relative: float
    tolerance: float
    specials: Optional[str] = None

    @property
    def ok(self) -> bool:
        return passed(self.relative, self.tolerance)


def check_result(result: np.ndarray, expected: np.ndarray, tolerance: float = DEFAULT_TOLERANCE) -> ResultCheck:
    """Compare ``result`` with the oracle's ``expected`` (NaN against NaN and equal infinities agree)."""
    max_abs, relative = compare(result, expected)
    return ResultCheck(max_abs, relative, tolerance, special_values(result, expected))


# ---------------------------------------------------------------------------
# gpuconv selftest


_FORWARD_KEYS = ("strides", "padding", "data_format", "dilations", "dim_rounding_mode")


def leading_shapes(op: str, x: Sequence[int], filters: Sequence[Sequence[int]],
                   kwargs: Dict[str, Any]) -> Dict[str, Shape]:
    """The shapes of a call's leading arguments, by name.

    For the ops of one forward convolution (:attr:`~gpuconv.registry.OpEntry.forward`: the
    gradients and the transposed convolutions) ``x`` and ``filters[0]`` are the FORWARD
    convolution's input and filter; its output is ``dy`` (the transposed op's ``x``), its
    input the ``input_shape`` (the transposed op's ``output_shape``), its filter the
    ``filter_shape`` (the transposed op's ``filter``, ``[.., out_channels, in_channels]``).
    For the other ops: ``x`` and the filters, as given."""
    entry = registry.get(op)
    if entry.forward is None:
        return dict(zip(entry.arrays, (tuple(x),) + tuple(tuple(f) for f in filters)))
    forward = {k: v for k, v in kwargs.items() if k in _FORWARD_KEYS}
    out = tuple(registry.get(entry.forward).plan((tuple(x), tuple(filters[0])), **forward).out_shape)
    roles = {"x": tuple(x), "filter": tuple(filters[0]), "dy": out, "input_shape": tuple(x),
             "filter_shape": tuple(filters[0])}
    if entry.name.endswith("_transpose"):
        roles.update(x=out, output_shape=tuple(x))
    return {name: roles[name] for name in entry.leading}


def call_values(op: str, shapes: Dict[str, Shape], make: Callable[[Shape], Any]) -> Tuple[Any, ...]:
    """A call's leading positional values: ``make(shape)`` for each array, the shape argument as it is."""
    entry = registry.get(op)
    return tuple(shapes[name] if name == entry.shape_argument else make(shapes[name]) for name in entry.leading)


def plan_leading(op: str, shapes: Dict[str, Shape], kwargs: Dict[str, Any]) -> Plan:
    """The shapes-only plan of a call from its leading shapes (:func:`leading_shapes`)."""
    entry = registry.get(op)
    return entry.plan([shapes[name] for name in entry.arrays],
                      shape=shapes[entry.shape_argument] if entry.shape_argument else None, **kwargs)


def result_channels(op: str, plan: Plan, data_format: Optional[str]) -> int:
    """The channels of a plan's result (the size of a per-channel bias)."""
    entry = registry.get(op)
    data_format = data_format or entry.data_formats[0]
    return int(plan.out_shape[-1 if data_format.endswith("C") else -(entry.spatial + 1)])


class Case(NamedTuple):
    """One selftest configuration; shapes in ``data_format`` order.

    For a gradient or transposed op, ``x`` and ``filter`` are its forward convolution's
    (see :func:`leading_shapes`): the call's own shapes follow from them."""

    op: str
    x: Shape
    filter: Shape
    strides: Any = 1
    dilations: Any = 1
    padding: Any = "SAME"
    data_format: str = "NHWC"
    rounding: Optional[str] = None
    groups: int = 1
    bias: bool = False
    activation: Optional[str] = None
    quick: bool = False
    pointwise: Optional[Shape] = None  # separable_conv2d's second filter

    def kwargs(self) -> Dict[str, Any]:
        """The op's keyword arguments (named as the op names them; groups only when not 1)."""
        return registry.get(self.op).call_kwargs(self.strides, self.dilations, self.padding, self.data_format,
                                                 self.rounding, self.groups)

    @property
    def filters(self) -> Tuple[Shape, ...]:
        return (self.filter,) + ((self.pointwise,) if self.pointwise else ())

    @property
    def shapes(self) -> Tuple[Shape, ...]:
        """The shapes of the op's arrays, ``x`` first."""
        return (self.x,) + self.filters

    def leading(self) -> Dict[str, Shape]:
        """The shapes of the call's leading arguments, by name (:func:`leading_shapes`)."""
        return leading_shapes(self.op, self.x, self.filters, self.kwargs())

    def plan(self) -> Plan:
        """The shapes-only plan of the case (without its fused epilogue)."""
        return plan_leading(self.op, self.leading(), self.kwargs())

    @property
    def label(self) -> str:
        """The op column: the op, its groups and its fused epilogue."""
        return (self.op + (f" g={self.groups}" if self.groups != 1 else "")
                + ("+bias" if self.bias else "") + (f"+{self.activation}" if self.activation else ""))


def _shape(text: str) -> Shape:
    return tuple(int(d) for d in text.split("x"))


def _c(x: str, f: str, s: Any = 1, d: Any = 1, pad: Any = "SAME", fmt: str = "NHWC", **kw: Any) -> Case:
    return Case("conv2d", _shape(x), _shape(f), s, d, pad, fmt, **kw)


def _d(x: str, f: str, s: Any = 1, d: Any = 1, pad: Any = "SAME", fmt: str = "NHWC", **kw: Any) -> Case:
    return Case("depthwise_conv2d", _shape(x), _shape(f), s, d, pad, fmt, **kw)


def _s(x: str, f: str, pw: str, s: Any = 1, d: Any = 1, pad: Any = "SAME", fmt: str = "NHWC", **kw: Any) -> Case:
    return Case("separable_conv2d", _shape(x), _shape(f), s, d, pad, fmt, pointwise=_shape(pw), **kw)


def _1(x: str, f: str, s: Any = 1, d: Any = 1, pad: Any = "SAME", fmt: str = "NWC", **kw: Any) -> Case:
    return Case("conv1d", _shape(x), _shape(f), s, d, pad, fmt, **kw)


def _g(op: str, x: str, f: str, s: Any = 1, d: Any = 1, pad: Any = "SAME", fmt: Optional[str] = None,
       **kw: Any) -> Case:
    """A case of a gradient, transposed or 3-D op: ``x`` and ``f`` are the forward convolution's."""
    return Case(op, _shape(x), _shape(f), s, d, pad, fmt or registry.get(op).data_formats[0], **kw)


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
    _s("1x7x7x2", "3x3x2x3", "1x1x6x5", pad=1, bias=True, activation="prelu"),  # per pointwise channel
    # conv1d (x [batch, width, channels] or [batch, channels, width]; filter [width, in, out])
    _1("1x20x3", "3x3x4", quick=True),
    _1("2x17x5", "4x5x2", d=3, pad="VALID"),
    _1("1x4x16", "5x4x3", s=3, pad=2, rounding="ceil", fmt="NCW"),
    _1("12x6", "3x6x2", pad=[2, 1]),
    _1("3x7x15", "2x7x3", s=2, fmt="NCW"),
    # the transposed and gradient convolutions, each given by its forward convolution (x, filter):
    # conv2d_transpose of x 1x4x4x6 by a 3x3x3x6 filter to output_shape 1x7x7x3, ...
    _g("conv2d_transpose", "1x7x7x3", "3x3x3x6", s=2, quick=True),
    _g("conv2d_transpose", "2x5x6x6", "2x3x5x4", d=2, pad="VALID", fmt="NCHW", bias=True, activation="relu"),
    _g("conv2d_transpose", "6x6x2", "3x3x2x3", s=(1, 2), pad=[[1, 0], [0, 1]], bias=True,
       activation="prelu"),
    _g("conv2d_backprop_input", "1x7x7x3", "3x3x3x4", s=2, pad=1, rounding="ceil", quick=True),
    _g("conv2d_backprop_input", "3x4x6x6", "3x2x4x2", d=2, fmt="NCHW"),
    _g("conv2d_backprop_filter", "1x7x7x5", "3x3x5x2", s=2, quick=True),
    _g("conv2d_backprop_filter", "6x6x9", "2x2x9x3", d=3, pad="VALID"),
    _g("conv2d_backprop_filter", "2x3x7x7", "3x3x3x2", s=(1, 2), pad=[[1, 1], [0, 2]], fmt="NCHW"),
    _g("depthwise_conv2d_backprop_input", "1x6x6x3", "3x3x3x2", s=2, quick=True),
    _g("depthwise_conv2d_backprop_input", "1x4x7x7", "3x3x4x1", d=2, pad="VALID", fmt="NCHW"),
    _g("depthwise_conv2d_backprop_filter", "2x6x6x2", "3x3x2x3", s=(2, 1), quick=True),
    _g("depthwise_conv2d_backprop_filter", "1x5x8x8", "2x2x5x1", d=(1, 2), pad=1, fmt="NCHW"),
    # the 3-D convolutions (x [batch, depth, height, width, channels] or channels first)
    _g("conv3d", "1x5x5x5x2", "3x3x3x2x4", quick=True),
    _g("conv3d", "2x3x6x5x4", "2x2x2x3x2", s=(1, 2, 2), pad="VALID", fmt="NCDHW"),
    _g("conv3d", "4x5x5x3", "3x1x3x3x2", d=(2, 1, 1), pad=[[1, 1], [0, 0], [1, 0]]),
    _g("conv3d_transpose", "1x5x6x6x2", "3x3x3x2x3", s=2, quick=True),
    _g("conv3d_transpose", "1x2x4x5x5", "2x3x3x2x2", d=2, pad="VALID", fmt="NCDHW"),
    _g("conv3d_backprop_input", "1x4x5x5x3", "2x3x3x3x2", s=(1, 2, 2), pad=1, quick=True),
    _g("conv3d_backprop_input", "3x4x4x4", "3x2x2x3x2", d=2, fmt="NCDHW"),
    _g("conv3d_backprop_filter", "2x4x4x4x2", "2x2x2x2x3", s=2, pad="VALID", quick=True),
    _g("conv3d_backprop_filter", "1x3x5x5x5", "3x3x3x3x2", fmt="NCDHW"),
)


def run_case(case: Case, seed: int, runtime: Optional[BaseRuntime] = None, algorithm: Optional[str] = None) -> float:
    """The relative error of one case, GPU against the oracle (``algorithm``: the op's default
    unless given)."""
    rng = np.random.default_rng(seed)
    arrays = call_values(case.op, case.leading(), lambda shape: rng.uniform(-1, 1, shape).astype(np.float32))
    entry = registry.get(case.op)
    kwargs = case.kwargs()
    if case.bias or case.activation == "prelu":
        out_channels = result_channels(case.op, case.plan(), case.data_format)
    if case.bias:
        kwargs["bias"] = rng.uniform(-1, 1, out_channels).astype(np.float32)
    if case.activation:
        kwargs["activation"] = case.activation
    if case.activation == "prelu":
        kwargs["prelu_weights"] = rng.uniform(-1, 1, out_channels).astype(np.float32)
    algorithm_kwargs = {} if algorithm is None else {"algorithm": algorithm}
    y = np.asarray(entry.gpu(*arrays, **kwargs, **algorithm_kwargs, runtime=_runtime(runtime)))  # an array out
    return compare(y, entry.oracle(*arrays, **kwargs))[1]


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns under a header and a rule."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(row: Sequence[str]) -> str:
        return "  ".join(f"{str(v):<{w}}" for v, w in zip(row, widths)).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths])] + [line(r) for r in rows])


@dataclass
class SelftestReport:
    """The outcome of :func:`run_selftest`: one row per case."""

    rows: List[List[str]]
    failed: int
    seconds: float
    tolerance: float
    renderer: str
    #: cases whose op the runtime's target does not run yet (neither passed nor failed), and that target
    skipped: int = 0
    target: str = "webgl2"

    HEADER = ("op", "x", "filter", "strides", "dilations", "padding", "format", "max rel err", "result")

    @property
    def passed(self) -> int:
        return len(self.rows) - self.failed - self.skipped

    def table(self) -> str:
        return table(self.HEADER, self.rows)

    def summary(self) -> str:
        not_yet = f", {self.skipped} not on the {self.target} target yet" if self.skipped else ""
        return (f"selftest: {self.passed} passed, {self.failed} failed{not_yet} "
                f"(tolerance {self.tolerance:g}, {self.seconds:.1f} s on {self.renderer})")


def _progress(stream: Optional[TextIO], i: int, total: int, case: Case) -> None:
    if stream is None:
        return
    if stream.isatty():
        stream.write(f"\r\033[Kselftest [{i}/{total}] {case.op} {shape_text(case.x)}")
    else:
        stream.write("." if i < total else ".\n")
    stream.flush()


def run_selftest(cases: Sequence[Case] = SELFTEST_CASES, seed: int = 0, tolerance: float = DEFAULT_TOLERANCE,
                 runtime: Optional[BaseRuntime] = None, progress: Optional[TextIO] = None) -> SelftestReport:
    """Run ``cases`` (case ``i``, from 1, with data from ``seed + i``); an error fails its case only."""
    runtime = _runtime(runtime)
    rows, failed, skipped = [], 0, 0
    start = time.perf_counter()
    for i, case in enumerate(cases, 1):
        _progress(progress, i, len(cases), case)
        verdict = ""
        try:
            rel = run_case(case, seed + i, runtime)
            ok, error = passed(rel, tolerance), f"{rel:.1e}"
        except (GLUnavailableError, KeyboardInterrupt):
            raise
        except NotOnTargetError:  # planned, refused before any GPU work: not this target's yet
            ok, error, verdict = True, "-", f"not on {runtime.target.name} yet"
            skipped += 1
        except Exception as exc:  # keep going: report the case as failed
            ok, error = False, f"{type(exc).__name__}: {exc}"[:60]
        failed += not ok
        padding = registry.padding_text(case.padding) + (f" ({case.rounding})" if case.rounding else "")
        if registry.get(case.op).forward:  # the call's own shapes, by name (the case is its forward convolution)
            (first, x), *rest = case.leading().items()
            x_text, filter_text = f"{first} {shape_text(x)}", ", ".join(f"{n} {shape_text(v)}" for n, v in rest)
        else:
            x_text, filter_text = shape_text(case.x), " + ".join(map(shape_text, case.filters))
        rows.append([case.label, x_text, filter_text,
                     registry.pair_text(case.strides), registry.pair_text(case.dilations), padding,
                     case.data_format, error, verdict or ("PASS" if ok else "FAIL")])
    if progress is not None and progress.isatty():
        progress.write("\r\033[K")
    return SelftestReport(rows, failed, time.perf_counter() - start, tolerance, device_name(runtime),
                          skipped, runtime.target.name)


# ---------------------------------------------------------------------------
# random configurations

#: The ops :func:`random_config` draws, with how often (relative weights).
OP_WEIGHTS = {name: entry.random_weight for name, entry in registry.OPS.items()}

_DTYPES = (np.float32, np.float16, np.float64)
_FUSED = ("bias", "activation", "leakyrelu_alpha", "prelu_weights", "residual")


@dataclass(frozen=True)
class Config:
    """One call: the op, the shapes of its arrays, its keyword arguments and how to fill them.

    ``filters`` is ``(filter,)`` or, for ``separable_conv2d``, ``(depthwise, pointwise)``;
    for a gradient or transposed op ``x`` and ``filters`` are its forward convolution's
    (the call's own shapes: :meth:`leading`, :func:`leading_shapes`).
    ``bias``, ``prelu`` and ``residual`` are the shapes of the fused inputs (``None``: not given;
    a residual has the output's shape).
    Arrays are drawn from ``data_seed`` (see :meth:`arrays`), so a config and its data
    can be rebuilt from the configuration alone.
    """

    op: str
    x: Shape
    filters: Tuple[Shape, ...]
    kwargs: Tuple[Tuple[str, Any], ...]  # sorted (name, value) pairs
    dtype: str = "float32"
    bias: Optional[Shape] = None
    prelu: Optional[Shape] = None
    scale: float = 1.0          # the filter values lie in [-scale, scale]
    data_seed: int = 0
    residual: Optional[Shape] = None

    @property
    def options(self) -> Dict[str, Any]:
        return dict(self.kwargs)

    def leading(self) -> Dict[str, Shape]:
        """The shapes of the call's leading arguments, by name (:func:`leading_shapes`)."""
        return leading_shapes(self.op, self.x, self.filters, self.options)

    def arrays(self) -> Tuple[Tuple[Any, ...], Dict[str, np.ndarray]]:
        """``(positional values, fused keyword arrays)`` of the call, from ``data_seed``: the
        leading arguments in the op's order (arrays, and a gradient op's shape argument as it is)."""
        rng = np.random.default_rng(self.data_seed)
        dtype = np.dtype(self.dtype)
        made = []

        def make(shape: Shape) -> np.ndarray:  # the first array in [-1, 1], the others scaled
            made.append(shape)
            return (rng.uniform(-1, 1, shape) * (self.scale if len(made) > 1 else 1.0)).astype(dtype)

        values = call_values(self.op, self.leading(), make)
        fused = {}
        if self.bias is not None:
            fused["bias"] = rng.uniform(-1, 1, self.bias).astype(np.float32)
        if self.prelu is not None:
            fused["prelu_weights"] = rng.uniform(-1, 1, self.prelu).astype(np.float32)
        if self.residual is not None:
            fused["residual"] = rng.uniform(-1, 1, self.residual).astype(np.float32)
        return values, fused

    def describe(self) -> str:
        """The call, readable: ``gpuconv.conv2d(x 1x5x5x3 float32, filter 3x3x3x2, strides=2, ...)``."""
        def shape(s: Shape) -> str:
            return shape_text(s) or "scalar"

        entry = registry.get(self.op)
        parts = []
        for name, value in self.leading().items():
            if name == entry.shape_argument:
                parts.append(f"{name}={value!r}")
            else:
                parts.append(f"{name} {shape(value)}" + (f" {self.dtype}" if name == entry.arrays[0] else ""))
        parts += [f"{k}={v!r}" for k, v in self.kwargs]
        if self.bias is not None:
            parts.append(f"bias {shape(self.bias)}")
        if self.prelu is not None:
            parts.append(f"prelu_weights {shape(self.prelu)}")
        if self.residual is not None:
            parts.append(f"residual {shape(self.residual)}")
        if self.scale != 1:
            parts.append(f"filter values in [-{self.scale:g}, {self.scale:g}]")
        return f"gpuconv.{self.op}({', '.join(parts)})"


def _choice(rng: np.random.Generator, options: Sequence[_T]) -> _T:
    return options[int(rng.integers(len(options)))]


def _pair_form(rng: np.random.Generator, pair: Tuple[int, int], data_format: str) -> Any:
    """Strides or dilations ``(h, w)`` in one of the forms the ops accept."""
    forms = ["pair", "4-list"] + (["int"] if pair[0] == pair[1] else [])
    form = _choice(rng, forms)
    if form == "int":
        return int(pair[0])
    if form == "pair":
        return (int(pair[0]), int(pair[1]))
    return [1, int(pair[0]), int(pair[1]), 1] if data_format == "NHWC" else [1, 1, int(pair[0]), int(pair[1])]


def _strides_dilations(rng: np.random.Generator, axes: int) -> Tuple[Shape, Shape]:
    """Per-axis strides and dilations, 1-3, never a stride and a dilation both above 1."""
    which = _choice(rng, ("stride", "dilation", "neither"))
    ones = (1,) * axes
    drawn = tuple(int(v) for v in rng.integers(1, 4, axes))
    return (drawn if which == "stride" else ones), (drawn if which == "dilation" else ones)


def _padding_2d(rng: np.random.Generator, data_format: str, rounding_allowed: bool) -> Tuple[Any, Optional[str]]:
    """A padding argument and a dim_rounding_mode."""
    kind = rng.integers(5)
    if kind == 0:
        return str(rng.choice(["SAME", "same", "Same"])), None
    if kind == 1:
        return str(rng.choice(["VALID", "valid"])), None
    if kind == 2:
        modes = (None,) + ROUNDING_MODES if rounding_allowed else (None,)
        return int(rng.integers(0, 4)), _choice(rng, modes)
    top, bottom, left, right = (int(v) for v in rng.integers(0, 4, 4))
    if kind == 3:
        return [[top, bottom], [left, right]], None
    if data_format == "NHWC":
        return [[0, 0], [top, bottom], [left, right], [0, 0]], None
    return [[0, 0], [0, 0], [top, bottom], [left, right]], None


def _padding_1d(rng: np.random.Generator, data_format: str) -> Tuple[Any, Optional[str]]:
    kind = rng.integers(7)
    if kind == 0:
        return str(rng.choice(["SAME", "same"])), None
    if kind == 1:
        return str(rng.choice(["VALID", "valid"])), None
    if kind == 2:
        modes = (None,) + ROUNDING_MODES
        return int(rng.integers(0, 4)), _choice(rng, modes)
    left, right = (int(v) for v in rng.integers(0, 4, 2))
    if kind == 3:
        return [left, right], None
    if kind == 4:
        return [[0, 0], [left, right]], None
    if kind == 5:
        return ([[0, 0], [left, right], [0, 0]] if data_format == "NWC" else [[0, 0], [0, 0], [left, right]]), None
    return [[0, 0], [0, 0], [left, right], [0, 0]], None


def _prelu_shape(rng: np.random.Generator, out_shape: Sequence[int], channel_axis: int) -> Shape:
    """PReLU weights: one per channel, one per output element, or something broadcasting."""
    kind = rng.integers(3)
    if kind == 0:
        return (out_shape[channel_axis],)
    if kind == 1:
        return tuple(out_shape)
    keep = rng.integers(0, 2, len(out_shape)).astype(bool)
    shape = tuple(size if k else 1 for size, k in zip(out_shape, keep))
    drop = int(rng.integers(0, len(shape)))
    return shape[drop:] if all(s == 1 for s in shape[:drop]) else shape


def _triple_form(rng: np.random.Generator, triple: Shape, data_format: str) -> Any:
    """3-D strides or dilations ``(d, h, w)`` in one of the forms the 3-D ops accept."""
    form = _choice(rng, ["triple", "5-list"] + (["int"] if len(set(triple)) == 1 else []))
    if form == "int":
        return int(triple[0])
    if form == "triple":
        return tuple(int(v) for v in triple)
    return [1, *map(int, triple), 1] if data_format == "NDHWC" else [1, 1, *map(int, triple)]


def _padding_3d(rng: np.random.Generator, data_format: str) -> Tuple[Any, Optional[str]]:
    kind = rng.integers(5)
    if kind == 0:
        return str(rng.choice(["SAME", "same"])), None
    if kind == 1:
        return str(rng.choice(["VALID", "valid"])), None
    if kind == 2:
        return int(rng.integers(0, 3)), _choice(rng, (None,) + ROUNDING_MODES)
    pads = [[int(v) for v in rng.integers(0, 3, 2)] for _ in range(3)]
    if kind == 3:
        return pads, None
    return ([[0, 0], *pads, [0, 0]] if data_format == "NDHWC" else [[0, 0], [0, 0], *pads]), None


_Drawn = Tuple[Shape, Tuple[Shape, ...], Dict[str, Any], bool]


def _draw_3d(rng: np.random.Generator, entry: registry.OpEntry) -> _Drawn:
    """A 3-D forward convolution (small: a GL driver compiles each shape's program)."""
    batch = int(rng.integers(1, 3)) if rng.random() > 0.15 else None
    channels = int(rng.integers(1, 7))
    data_format = _choice(rng, entry.data_formats)
    spatial = tuple(int(v) for v in rng.integers(1, 7, 3))
    x = spatial + (channels,) if data_format == "NDHWC" else (channels,) + spatial
    filters = (tuple(int(v) for v in rng.integers(1, 4, 3)) + (channels, int(rng.integers(1, 6))),)
    strides, dilations = _strides_dilations(rng, 3)
    padding, rounding = _padding_3d(rng, data_format)
    kwargs: Dict[str, Any] = {"strides": _triple_form(rng, strides, data_format), "padding": padding,
                              "data_format": data_format, "dilations": _triple_form(rng, dilations, data_format)}
    if rounding is not None:
        kwargs["dim_rounding_mode"] = rounding
    return (x if batch is None else (batch,) + x), filters, kwargs, batch is None


def _draw(rng: np.random.Generator, entry: registry.OpEntry, grouped: bool = True) -> _Drawn:
    """Shapes and options for ``entry``'s op (not yet checked to fit): ``(x, filters, kwargs, unbatched)``;
    for a gradient or transposed op, those of its forward convolution (without groups)."""
    forward = registry.get(entry.forward) if entry.forward else entry
    if forward.spatial == 3:
        return _draw_3d(rng, forward)
    if forward is not entry:
        return _draw(rng, forward, grouped=False)
    batch = int(rng.integers(1, 4)) if rng.random() > 0.15 else None
    channels = int(rng.integers(1, 10))
    filters: Tuple[Shape, ...]
    x: Shape
    if entry.one_d:
        data_format = _choice(rng, entry.data_formats)
        width = int(rng.integers(1, 13))
        x = (width, channels) if data_format == entry.data_formats[0] else (channels, width)
        filters = ((int(rng.integers(1, 6)), channels, int(rng.integers(1, 10))),)
        (stride,), (dilation,) = _strides_dilations(rng, 1)
        padding, rounding = _padding_1d(rng, data_format)
        stride_name, dilation_name = entry.stride_names
        kwargs: Dict[str, Any] = {stride_name: stride, dilation_name: dilation, "padding": padding,
                                  "data_format": data_format}
        if rounding is not None or rng.random() < 0.1:
            kwargs["dim_rounding_mode"] = rounding
    else:
        data_format = _choice(rng, entry.data_formats)
        height, width = (int(v) for v in rng.integers(1, 13, 2))
        x = (height, width, channels) if data_format == "NHWC" else (channels, height, width)
        fh, fw = (int(v) for v in rng.integers(1, 6, 2))
        groups = 1
        if entry.multiplier:
            multiplier = int(rng.integers(1, 4))
            filters = ((fh, fw, channels, multiplier),)
            if entry.pointwise:
                filters += ((1, 1, channels * multiplier, int(rng.integers(1, 10))),)
        else:
            divisors = [g for g in range(2, channels + 1) if channels % g == 0] if entry.grouped and grouped else []
            groups = int(rng.choice(divisors)) if divisors and rng.random() < 0.3 else 1
            out_c = groups * int(rng.integers(1, max(2, 10 // groups)))
            filters = ((fh, fw, channels // groups, out_c),)
        strides, dilations = _strides_dilations(rng, 2)
        padding, rounding = _padding_2d(rng, data_format, rounding_allowed=entry.rounding)
        stride_name, dilation_name = entry.stride_names
        kwargs = {stride_name: _pair_form(rng, (strides[0], strides[1]), data_format), "padding": padding,
                  "data_format": data_format,
                  dilation_name: _pair_form(rng, (dilations[0], dilations[1]), data_format)}
        if rounding is not None:
            kwargs["dim_rounding_mode"] = rounding
        if entry.grouped and grouped and (groups > 1 or rng.random() < 0.1):
            kwargs["groups"] = groups
    if batch is not None:
        x = (batch,) + x
    return x, filters, kwargs, batch is None


def plan_call(op: str, x: Sequence[int], filters: Sequence[Sequence[int]], kwargs: Dict[str, Any],
              fused: bool = False) -> Plan:
    """The shapes-only plan of a call (raises ValueError for one that does not fit).

    Without ``fused`` the epilogue is left out (it changes no shape)."""
    options = {k: v for k, v in kwargs.items() if fused or k not in _FUSED}
    return plan_leading(op, leading_shapes(op, x, filters, options), options)


def _bias_shape(rng: np.random.Generator, out_shape: Sequence[int], channel_axis: int) -> Shape:
    """A fused bias: one per channel mostly, else a scalar, ``[1]``, or a shape that broadcasts to the output."""
    kind = rng.integers(6)
    if kind <= 2:
        return (int(out_shape[channel_axis]),)
    if kind == 3:
        return _choice(rng, [(), (1,)])
    return _prelu_shape(rng, out_shape, channel_axis)


def _algorithm(rng: np.random.Generator, op: str, x: Shape, filters: Tuple[Shape, ...], kwargs: Dict[str, Any],
               bias: Optional[Shape], prelu: Optional[Shape], residual: Optional[Shape]) -> str:
    """An ``algorithm=`` for the call: "auto" half the time, else "direct", "packed" or (conv2d,
    conv1d) "im2col" ("auto" where the packed programs or im2col cannot run it)."""
    choice = str(rng.choice(["auto", "auto", "direct", "packed"]))
    if choice == "packed" and op in ("conv2d", "conv1d") and rng.random() < 0.5:
        choice = "im2col"
    if choice in ("packed", "im2col"):
        fused: Dict[str, Any] = dict(kwargs)
        if bias is not None:
            fused["bias"] = np.zeros(bias, np.float32)
        if prelu is not None:
            fused["prelu_weights"] = np.zeros(prelu, np.float32)
        if residual is not None:
            fused["residual"] = np.zeros(residual, np.float32)
        try:
            plan_call(op, x, filters, dict(fused, algorithm=choice), fused=True)
        except ValueError:
            choice = "auto"
    return choice


def random_config(rng: np.random.Generator, op: Optional[str] = None) -> Config:
    """Draw a valid configuration (one whose filter fits the padded input) of ``op``
    (default: an op drawn by :data:`OP_WEIGHTS`)."""
    if op is None:
        names, weights = zip(*OP_WEIGHTS.items())
        op = names[rng.choice(len(names), p=np.array(weights) / sum(weights))]
    entry = registry.get(op)
    for _ in range(1000):
        x, filters, kwargs, unbatched = _draw(rng, entry)
        try:
            plan = plan_call(op, x, filters, kwargs)
        except ValueError:  # the filter does not fit the padded input: draw again
            continue
        break
    else:  # pragma: no cover - every op has many configurations that fit
        raise RuntimeError(f"no valid {op} configuration drawn in 1000 tries")
    bias = prelu = residual = None
    scale = 1.0
    if entry.fused:
        out_shape = plan.out_shape
        channel_axis = -1 if kwargs["data_format"].endswith("C") else -(entry.spatial + 1)
        if rng.random() < 0.5:
            bias = _bias_shape(rng, out_shape, channel_axis)
        activation = ([None] + list(ACTIVATIONS))[rng.integers(len(ACTIVATIONS) + 1)]
        if activation is not None:
            kwargs["activation"] = activation
            scale = float(rng.choice([1.0, 4.0]))  # push some outputs past relu6's 6
        if activation == "leakyrelu":
            kwargs["leakyrelu_alpha"] = round(float(rng.uniform(0, 1)), 3)
        if activation == "prelu":
            prelu = _prelu_shape(rng, out_shape, channel_axis % len(out_shape))
        if rng.random() < 0.3:  # a skip connection: the output's shape exactly
            residual = tuple(int(d) for d in out_shape)
    if entry.algorithms:
        kwargs["algorithm"] = _algorithm(rng, op, x, filters, kwargs, bias, prelu, residual)
    dtype = np.dtype(_DTYPES[rng.choice(3, p=[0.7, 0.15, 0.15])]).name
    return Config(op, tuple(x), tuple(filters), tuple(sorted(kwargs.items())), dtype, bias, prelu, scale,
                  data_seed=int(rng.integers(2 ** 31)), residual=residual)


def config_at(seed: int, index: int, op: Optional[str] = None) -> Config:
    """The ``index``-th configuration of ``seed`` (what ``gpuconv random --seed S --start I`` runs first)."""
    return random_config(np.random.default_rng([seed, index]), op)


def gpu_result(config: Config, runtime: Optional[BaseRuntime] = None) -> np.ndarray:
    """``config`` run on ``runtime`` (float32, checked)."""
    runtime = _runtime(runtime)
    arrays, fused = config.arrays()
    kwargs = dict(config.kwargs, **fused)
    if kwargs.get("algorithm", "auto") not in runtime.target.algorithms:
        kwargs["algorithm"] = "auto"  # "packed"/"im2col" are WebGL2's: the target's own choice instead
    result = registry.get(config.op).gpu(*arrays, **kwargs, runtime=runtime)
    if not isinstance(result, np.ndarray):
        raise AssertionError(f"arrays in gave a {type(result).__name__} out, not an array")
    y = result
    if y.dtype != np.float32:
        raise AssertionError(f"the GPU result is {y.dtype}, not float32")
    return y


def oracle_result(config: Config) -> np.ndarray:
    """``config`` in the float64 oracle."""
    arrays, fused = config.arrays()
    kwargs = dict(config.kwargs, **fused)
    kwargs.pop("algorithm", None)  # the oracle has one way
    return registry.get(config.op).oracle(*arrays, **kwargs)


def run_config(config: Config, runtime: Optional[BaseRuntime] = None) -> float:
    """Run ``config`` on the GPU and in the float64 oracle; the relative error (NaN if the
    NaN patterns differ, ``inf`` for a non-zero result where the oracle is all zero)."""
    y = gpu_result(config, runtime)
    return oracle.compare(y, oracle_result(config))[1]


def run_config_on_both(config: Config, runtime: BaseRuntime, other: BaseRuntime) -> Tuple[float, float]:
    """Run ``config`` on ``runtime`` and on ``other``: ``(runtime's error against the oracle,
    the difference between the two results relative to ``other``'s largest magnitude)``."""
    y = gpu_result(config, runtime)
    error = oracle.compare(y, oracle_result(config))[1]
    return error, oracle.compare(y, gpu_result(config, other))[1]


@dataclass
class Report:
    """The outcome of :func:`run_many`."""

    count: int = 0
    failed: int = 0
    largest: float = 0.0
    seconds: float = 0.0
    ops: Counter = field(default_factory=Counter)
    failures: List[str] = field(default_factory=list)
    tolerance: float = DEFAULT_TOLERANCE
    #: with a second runtime: "browser-vs-native" and the largest difference between the two
    compared: str = ""
    difference: float = 0.0
    #: configurations whose op the runtime's target does not run yet, by op (neither passed nor failed)
    not_on_target: Counter = field(default_factory=Counter)
    target: str = "webgl2"

    @property
    def skipped(self) -> int:
        return sum(self.not_on_target.values())

    @property
    def passed(self) -> int:
        return self.count - self.failed - self.skipped

    def summary(self) -> str:
        per_op = ", ".join(f"{op} {n}" for op, n in sorted(self.ops.items()))
        between = f", largest {self.compared} difference {self.difference:.3g}" if self.compared else ""
        not_yet = ""
        if self.skipped:
            ops = ", ".join(f"{op} {n}" for op, n in sorted(self.not_on_target.items()))
            not_yet = f", {self.skipped} not on the {self.target} target yet ({ops})"
        return (f"random: {self.passed} passed, {self.failed} failed{not_yet}, largest error {self.largest:.3g}"
                f"{between} (tolerance {self.tolerance:g}; {per_op}; {self.seconds:.1f} s)")


def repeat_command(seed: int, index: int, tolerance: float = DEFAULT_TOLERANCE,
                   options: Sequence[str] = ()) -> str:
    """The ``gpuconv random`` command that runs configuration ``index`` of ``seed`` again, with
    the tolerance (when not the default) and ``options`` (the runtime's: ``--backend`` ...)."""
    words = ["gpuconv", "random", "--seed", str(seed), "--start", str(index), "--count", "1"]
    if tolerance != DEFAULT_TOLERANCE:
        words += ["--tolerance", repr(float(tolerance))]
    return " ".join(words + list(options))


def run_many(count: int, seed: int = 0, tolerance: float = DEFAULT_TOLERANCE, *, start: int = 0,
             runtime: Optional[BaseRuntime] = None, other: Optional[BaseRuntime] = None,
             repeat_options: Sequence[str] = (), verbose: bool = False,
             progress: Optional[TextIO] = None, out: Optional[TextIO] = None) -> Report:
    """Run configurations ``start .. start + count - 1`` of ``seed`` on ``runtime``; failures go to
    ``out``, each with the command that repeats it (``repeat_options`` appended: how the runtime
    was made).  With ``other``, each also runs there and the report gives the largest difference."""
    runtime = _runtime(runtime)
    report = Report(tolerance=tolerance, target=runtime.target.name)
    if other is not None:
        report.compared = f"{runtime_name(runtime)}-vs-{runtime_name(other)}"
    started = time.perf_counter()
    every = max(1, count // 20)
    tty = progress is not None and progress.isatty()
    for index in range(start, start + count):
        config = config_at(seed, index)
        difference: Optional[float] = None
        not_yet = False
        try:
            if other is None:
                error = run_config(config, runtime)
            else:
                error, difference = run_config_on_both(config, runtime, other)
            problem = None if error <= tolerance else f"relative error {error:.3g} > {tolerance:g}"
        except (GLUnavailableError, KeyboardInterrupt):
            raise
        except NotOnTargetError:  # refused while planning: not a failure, and not a pass either
            error, problem, not_yet = float("nan"), None, True
            report.not_on_target[config.op] += 1
        except Exception as exc:  # report it as a failure and go on
            error, problem = float("nan"), f"{type(exc).__name__}: {exc}"
        report.count += 1
        report.ops[config.op] += 1
        if not np.isnan(error):
            report.largest = max(report.largest, error)
        if difference is not None:
            report.difference = max(report.difference, difference) if not np.isnan(difference) else difference
        between = f", {report.compared} difference {difference:.3g}" if difference is not None else ""
        if problem is not None:
            report.failed += 1
            report.failures.append(f"FAIL #{index}: {problem}{between}\n  {config.describe()}\n"
                                   f"  repeat: {repeat_command(seed, index, tolerance, repeat_options)}")
        if out is not None and (problem is not None or verbose):
            print(report.failures[-1] if problem is not None else
                  f"not on {runtime.target.name} yet #{index}: {config.describe()}" if not_yet else
                  f"ok #{index}: {error:.2g}{between} {config.describe()}", file=out, flush=True)
        done = index - start + 1
        if progress is not None and (tty or done % every == 0 or done == count):
            line = (f"random [{done}/{count}] {report.failed} failed, largest error {report.largest:.2g}, "
                    f"{time.perf_counter() - started:.0f} s")
            progress.write(f"\r\033[K{line}" if tty else line + "\n")
            progress.flush()
    if tty and progress is not None:
        progress.write("\n")
    report.seconds = time.perf_counter() - started
    return report


# ---------------------------------------------------------------------------
# gpuconv demo

DEMO_X, DEMO_FILTER = (1, 64, 64, 16), (3, 3, 16, 32)


def run_demo(runtime: Optional[BaseRuntime] = None, seed: int = 0,
             tolerance: float = DEFAULT_TOLERANCE) -> Tuple[List[str], bool]:
    """One 1x64x64x16 * 3x3x16x32 SAME convolution, timed (cold, then 5 warm calls) and checked:
    ``(lines to print, passed)``."""
    runtime = _runtime(runtime)
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, DEMO_X).astype(np.float32)
    w = rng.uniform(-1, 1, DEMO_FILTER).astype(np.float32)
    entry = registry.get("conv2d")
    kwargs: Dict[str, Any] = dict(strides=1, padding="SAME")

    def timed(fn: Callable[[], Any]) -> Tuple[np.ndarray, float]:
        start = time.perf_counter()
        value = np.asarray(fn())  # arrays in: an array out (np.asarray of it is itself)
        return value, time.perf_counter() - start

    y, cold = timed(lambda: entry.gpu(x, w, **kwargs, runtime=runtime))
    warm = [timed(lambda: entry.gpu(x, w, **kwargs, runtime=runtime))[1] for _ in range(5)]
    expected, oracle_s = timed(lambda: entry.oracle(x, w, **kwargs))
    max_abs, rel = compare(y, expected)
    ok = passed(rel, tolerance)
    info = runtime.info()
    backend = getattr(runtime, "backend", info.get("backend", runtime.kind))
    lines = [
        f"gpuconv demo: conv2d on {device_name(runtime)} ({backend})",
        f"  shapes  x {shape_text(x.shape)} (NHWC) * filter {shape_text(w.shape)}, SAME, stride 1 "
        f"-> {shape_text(y.shape)}",
        f"  GPU     warm {_ms(statistics.median(warm))} (median of 5), cold {_ms(cold)} "
        f"(first call: compile + upload + draw + read-back)",
        f"  oracle  {_ms(oracle_s)} (NumPy, float64)",
        f"  error   max abs {max_abs:.3g}, relative {rel:.3g} (tolerance {tolerance:g})",
        "PASS" if ok else "FAIL",
    ]
    return lines, ok
