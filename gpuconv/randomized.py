"""Seeded random configurations of every op, run on the GPU and checked against the oracle.

:func:`random_config` draws one valid call of ``conv2d``, ``depthwise_conv2d``,
``separable_conv2d`` or ``conv1d`` with every argument the op has: small shapes
(spatial 1-12, channels 1-9 so every input depth mod 4 occurs, batch 1-3 or none,
filters 1-5), strides and dilations 1-3 (never both above 1) in each of their
forms, every padding form (``"SAME"``/``"VALID"`` in any case, an int with each
``dim_rounding_mode``, explicit pads in each layout), every data format, groups,
channel multipliers, a fused bias and each activation (PReLU weights per channel,
per element or broadcast), every ``algorithm=`` (the TF.js-style programs or the
packed ones) and float16/32/64 inputs.  Shapes stay small because
a GL driver compiles each distinct program at its first draw.
:func:`run_config` runs one on the GPU and in the float64 oracle and returns the
relative error; :func:`run_many` is ``gpuconv random``.

:func:`lifetime` is the resource check: it cycles a few configurations many
times through a :class:`Runtime` whose context is wrapped in a
:class:`CountingContext` (which counts GL objects created and released) and
reports live GL objects, cached programs and the process's resident memory::

    python -m gpuconv.randomized --lifetime 10000
    python -m gpuconv.randomized --count 1000 --seed 3     # the same as gpuconv random
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, TextIO, Tuple

import numpy as np

from . import ops, oracle
from .arguments import ACTIVATIONS
from .geometry import ROUNDING_MODES
from .programs import shape_text
from .runtimes import Runtime, get_runtime

#: The ops :func:`random_config` draws, with how often (relative weights).
OP_WEIGHTS = {"conv2d": 4, "depthwise_conv2d": 3, "separable_conv2d": 2, "conv1d": 3}

_GPU = {"conv2d": ops.conv2d, "depthwise_conv2d": ops.depthwise_conv2d,
        "separable_conv2d": ops.separable_conv2d, "conv1d": ops.conv1d}
_ORACLE = {"conv2d": oracle.conv2d, "depthwise_conv2d": oracle.depthwise_conv2d,
           "separable_conv2d": oracle.separable_conv2d, "conv1d": oracle.conv1d}
_FILTER_NAMES = {"separable_conv2d": ("depthwise_filter", "pointwise_filter")}
_DTYPES = (np.float32, np.float16, np.float64)


# ---------------------------------------------------------------------------
# configurations


@dataclass(frozen=True)
class Config:
    """One call: the op, the shapes of its arrays, its keyword arguments and how to fill them.

    ``filters`` is ``(filter,)`` or, for ``separable_conv2d``, ``(depthwise, pointwise)``;
    ``bias`` and ``prelu`` are the shapes of the fused inputs (``None``: not given).
    Arrays are drawn from ``data_seed`` (see :meth:`arrays`), so a config and its data
    can be rebuilt from the configuration alone.
    """

    op: str
    x: Tuple[int, ...]
    filters: Tuple[Tuple[int, ...], ...]
    kwargs: Tuple[Tuple[str, object], ...]  # sorted (name, value) pairs
    dtype: str = "float32"
    bias: Optional[Tuple[int, ...]] = None
    prelu: Optional[Tuple[int, ...]] = None
    scale: float = 1.0          # the filter values lie in [-scale, scale]
    data_seed: int = 0

    @property
    def options(self) -> Dict[str, object]:
        return dict(self.kwargs)

    def arrays(self) -> Tuple[Tuple[np.ndarray, ...], Dict[str, np.ndarray]]:
        """``(positional arrays, fused keyword arrays)`` of the call, from ``data_seed``."""
        rng = np.random.default_rng(self.data_seed)
        dtype = np.dtype(self.dtype)
        x = rng.uniform(-1, 1, self.x).astype(dtype)
        filters = tuple((rng.uniform(-1, 1, shape) * self.scale).astype(dtype) for shape in self.filters)
        fused = {}
        if self.bias is not None:
            fused["bias"] = rng.uniform(-1, 1, self.bias).astype(np.float32)
        if self.prelu is not None:
            fused["prelu_weights"] = rng.uniform(-1, 1, self.prelu).astype(np.float32)
        return (x,) + filters, fused

    def describe(self) -> str:
        """The call, readable: ``gpuconv.conv2d(x 1x5x5x3 float32, filter 3x3x3x2, strides=2, ...)``."""
        def shape(s):
            return shape_text(s) or "scalar"

        names = _FILTER_NAMES.get(self.op, ("filter",))
        parts = [f"x {shape(self.x)} {self.dtype}"]
        parts += [f"{name} {shape(s)}" for name, s in zip(names, self.filters)]
        parts += [f"{k}={v!r}" for k, v in self.kwargs]
        if self.bias is not None:
            parts.append(f"bias {shape(self.bias)}")
        if self.prelu is not None:
            parts.append(f"prelu_weights {shape(self.prelu)}")
        if self.scale != 1:
            parts.append(f"filter values in [-{self.scale:g}, {self.scale:g}]")
        return f"gpuconv.{self.op}({', '.join(parts)})"


def _pair_form(rng, pair, data_format):
    """Strides or dilations ``(h, w)`` in one of the forms the ops accept."""
    forms = ["pair", "4-list"] + (["int"] if pair[0] == pair[1] else [])
    form = forms[rng.integers(len(forms))]
    if form == "int":
        return int(pair[0])
    if form == "pair":
        return (int(pair[0]), int(pair[1]))
    return [1, int(pair[0]), int(pair[1]), 1] if data_format == "NHWC" else [1, 1, int(pair[0]), int(pair[1])]


def _strides_dilations(rng, axes: int):
    """Per-axis strides and dilations, 1-3, never a stride and a dilation both above 1."""
    which = ("stride", "dilation", "neither")[rng.integers(3)]
    ones = (1,) * axes
    drawn = tuple(int(v) for v in rng.integers(1, 4, axes))
    return (drawn if which == "stride" else ones), (drawn if which == "dilation" else ones)


def _padding_2d(rng, data_format, rounding_allowed: bool):
    """A padding argument and a dim_rounding_mode."""
    kind = rng.integers(5)
    if kind == 0:
        return str(rng.choice(["SAME", "same", "Same"])), None
    if kind == 1:
        return str(rng.choice(["VALID", "valid"])), None
    if kind == 2:
        modes = (None,) + ROUNDING_MODES if rounding_allowed else (None,)
        return int(rng.integers(0, 4)), modes[rng.integers(len(modes))]
    t, b, l, r = (int(v) for v in rng.integers(0, 4, 4))
    if kind == 3:
        return [[t, b], [l, r]], None
    if data_format == "NHWC":
        return [[0, 0], [t, b], [l, r], [0, 0]], None
    return [[0, 0], [0, 0], [t, b], [l, r]], None


def _padding_1d(rng, data_format):
    kind = rng.integers(7)
    if kind == 0:
        return str(rng.choice(["SAME", "same"])), None
    if kind == 1:
        return str(rng.choice(["VALID", "valid"])), None
    if kind == 2:
        modes = (None,) + ROUNDING_MODES
        return int(rng.integers(0, 4)), modes[rng.integers(len(modes))]
    left, right = (int(v) for v in rng.integers(0, 4, 2))
    if kind == 3:
        return [left, right], None
    if kind == 4:
        return [[0, 0], [left, right]], None
    if kind == 5:
        return ([[0, 0], [left, right], [0, 0]] if data_format == "NWC" else [[0, 0], [0, 0], [left, right]]), None
    return [[0, 0], [0, 0], [left, right], [0, 0]], None


def _prelu_shape(rng, out_shape, channel_axis):
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


def _draw(rng, op: str) -> Tuple[tuple, tuple, dict, bool]:
    """Shapes and options for ``op`` (not yet checked to fit): ``(x, filters, kwargs, rank_reduced)``."""
    batch = int(rng.integers(1, 4)) if rng.random() > 0.15 else None
    channels = int(rng.integers(1, 10))
    if op == "conv1d":
        data_format = ("NWC", "NCW")[rng.integers(2)]
        width = int(rng.integers(1, 13))
        x = (width, channels) if data_format == "NWC" else (channels, width)
        filters = ((int(rng.integers(1, 6)), channels, int(rng.integers(1, 10))),)
        (stride,), (dilation,) = _strides_dilations(rng, 1)
        padding, rounding = _padding_1d(rng, data_format)
        kwargs = dict(stride=stride, dilation=dilation, padding=padding, data_format=data_format)
        if rounding is not None or rng.random() < 0.1:
            kwargs["dim_rounding_mode"] = rounding
    else:
        data_format = ("NHWC", "NCHW")[rng.integers(2)]
        height, width = (int(v) for v in rng.integers(1, 13, 2))
        x = (height, width, channels) if data_format == "NHWC" else (channels, height, width)
        fh, fw = (int(v) for v in rng.integers(1, 6, 2))
        if op == "conv2d":
            divisors = [g for g in range(2, channels + 1) if channels % g == 0]
            groups = int(rng.choice(divisors)) if divisors and rng.random() < 0.3 else 1
            out_c = groups * int(rng.integers(1, max(2, 10 // groups)))
            filters = ((fh, fw, channels // groups, out_c),)
        else:
            multiplier = int(rng.integers(1, 4))
            filters = ((fh, fw, channels, multiplier),)
            if op == "separable_conv2d":
                filters += ((1, 1, channels * multiplier, int(rng.integers(1, 10))),)
        strides, dilations = _strides_dilations(rng, 2)
        padding, rounding = _padding_2d(rng, data_format, rounding_allowed=op != "separable_conv2d")
        kwargs = dict(strides=_pair_form(rng, strides, data_format), padding=padding,
                      data_format=data_format, dilations=_pair_form(rng, dilations, data_format))
        if rounding is not None:
            kwargs["dim_rounding_mode"] = rounding
        if op == "conv2d" and (groups > 1 or rng.random() < 0.1):
            kwargs["groups"] = groups
    if batch is not None:
        x = (batch,) + x
    return x, filters, kwargs, batch is None


def _plan(op, x, filters, kwargs, fused=False):
    """The shapes-only plan of a call (raises ValueError for one that does not fit).

    Without ``fused`` the epilogue is left out (it changes no shape)."""
    options = {k: v for k, v in kwargs.items()
               if fused or k not in ("bias", "activation", "leakyrelu_alpha", "prelu_weights")}
    if op == "separable_conv2d":
        options["pointwise_filter_shape"] = filters[1]
    return ops.plan_shapes(op, x, filters[0], **options)


def _algorithm(rng, op, x, filters, kwargs, bias, prelu) -> str:
    """An ``algorithm=`` for the call: "auto" half the time, else "direct" or "packed"
    ("auto" where the packed programs cannot run it)."""
    choice = str(rng.choice(["auto", "auto", "direct", "packed"]))
    if choice == "packed":
        fused = dict(kwargs)
        if bias is not None:
            fused["bias"] = np.zeros(bias, np.float32)
        if prelu is not None:
            fused["prelu_weights"] = np.zeros(prelu, np.float32)
        try:
            _plan(op, x, filters, dict(fused, algorithm="packed"), fused=True)
        except ValueError:
            choice = "auto"
    return choice


def random_config(rng: np.random.Generator, op: Optional[str] = None) -> Config:
    """Draw a valid configuration (one whose filter fits the padded input) of ``op``
    (default: an op drawn by :data:`OP_WEIGHTS`)."""
    if op is None:
        names, weights = zip(*OP_WEIGHTS.items())
        op = names[rng.choice(len(names), p=np.array(weights) / sum(weights))]
    for _ in range(1000):
        x, filters, kwargs, unbatched = _draw(rng, op)
        try:
            plan = _plan(op, x, filters, kwargs)
        except ValueError:  # the filter does not fit the padded input: draw again
            continue
        break
    else:  # pragma: no cover - every op has many configurations that fit
        raise RuntimeError(f"no valid {op} configuration drawn in 1000 tries")
    bias = prelu = None
    scale = 1.0
    if op in ("conv2d", "depthwise_conv2d"):
        out_shape = plan.out_shape
        channels = plan.geometry.out_channels
        if rng.random() < 0.5:
            bias = (channels,)
        activation = ([None] + list(ACTIVATIONS))[rng.integers(len(ACTIVATIONS) + 1)]
        if activation is not None:
            kwargs["activation"] = activation
            scale = float(rng.choice([1.0, 4.0]))  # push some outputs past relu6's 6
        if activation == "leakyrelu":
            kwargs["leakyrelu_alpha"] = round(float(rng.uniform(0, 1)), 3)
        if activation == "prelu":
            channel_axis = (3 if plan.geometry.channels_last else 1) - (1 if unbatched else 0)
            prelu = _prelu_shape(rng, out_shape, channel_axis)
    kwargs["algorithm"] = _algorithm(rng, op, x, filters, kwargs, bias, prelu)
    dtype = np.dtype(_DTYPES[rng.choice(3, p=[0.7, 0.15, 0.15])]).name
    return Config(op, tuple(x), tuple(filters), tuple(sorted(kwargs.items())), dtype, bias, prelu, scale,
                  data_seed=int(rng.integers(2 ** 31)))


def config_at(seed: int, index: int, op: Optional[str] = None) -> Config:
    """The ``index``-th configuration of ``seed`` (what ``gpuconv random --seed S --start I`` runs first)."""
    return random_config(np.random.default_rng([seed, index]), op)


# ---------------------------------------------------------------------------
# running


def run_config(config: Config, runtime: Optional[Runtime] = None) -> float:
    """Run ``config`` on the GPU and in the float64 oracle; the relative error (NaN if the
    NaN patterns differ, ``inf`` for a non-zero result where the oracle is all zero)."""
    arrays, fused = config.arrays()
    kwargs = dict(config.kwargs, **fused)
    y = _GPU[config.op](*arrays, **kwargs, runtime=runtime or get_runtime())
    kwargs.pop("algorithm", None)  # the oracle has one way
    expected = _ORACLE[config.op](*arrays, **kwargs)
    if y.dtype != np.float32:
        raise AssertionError(f"the GPU result is {y.dtype}, not float32")
    return oracle.compare(y, expected)[1]


@dataclass
class Report:
    """The outcome of :func:`run_many`."""

    count: int = 0
    failed: int = 0
    largest: float = 0.0
    seconds: float = 0.0
    ops: Counter = field(default_factory=Counter)
    failures: List[str] = field(default_factory=list)
    tolerance: float = 1e-5

    @property
    def passed(self) -> int:
        return self.count - self.failed

    def summary(self) -> str:
        per_op = ", ".join(f"{op} {n}" for op, n in sorted(self.ops.items()))
        return (f"random: {self.passed} passed, {self.failed} failed, largest error {self.largest:.3g} "
                f"(tolerance {self.tolerance:g}; {per_op}; {self.seconds:.1f} s)")


def run_many(count: int, seed: int = 0, tolerance: float = 1e-5, *, start: int = 0,
             runtime: Optional[Runtime] = None, verbose: bool = False,
             progress: Optional[TextIO] = None, out: Optional[TextIO] = None) -> Report:
    """Run configurations ``start .. start + count - 1`` of ``seed``; failures go to ``out``."""
    from .runtimes import GLUnavailableError

    runtime = runtime or get_runtime()
    report = Report(tolerance=tolerance)
    started = time.perf_counter()
    every = max(1, count // 20)
    tty = progress is not None and progress.isatty()
    for index in range(start, start + count):
        config = config_at(seed, index)
        try:
            error = run_config(config, runtime)
            problem = None if error <= tolerance else f"relative error {error:.3g} > {tolerance:g}"
        except (GLUnavailableError, KeyboardInterrupt):
            raise
        except Exception as exc:  # report it as a failure and go on
            error, problem = float("nan"), f"{type(exc).__name__}: {exc}"
        report.count += 1
        report.ops[config.op] += 1
        if not np.isnan(error):
            report.largest = max(report.largest, error)
        if problem is not None:
            report.failed += 1
            text = (f"FAIL #{index}: {problem}\n  {config.describe()}\n"
                    f"  repeat: gpuconv random --seed {seed} --start {index} --count 1")
            report.failures.append(text)
        if out is not None and (problem is not None or verbose):
            print(report.failures[-1] if problem is not None else
                  f"ok #{index}: {error:.2g} {config.describe()}", file=out, flush=True)
        done = index - start + 1
        if progress is not None and (tty or done % every == 0 or done == count):
            line = (f"random [{done}/{count}] {report.failed} failed, largest error {report.largest:.2g}, "
                    f"{time.perf_counter() - started:.0f} s")
            progress.write(f"\r\033[K{line}" if tty else line + "\n")
            progress.flush()
    if tty:
        progress.write("\n")
    report.seconds = time.perf_counter() - started
    return report


# ---------------------------------------------------------------------------
# resource lifetime


def resident_bytes() -> int:
    """The process's resident set size, from ``/proc/self/statm`` (0 where there is none)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


class CountingContext:
    """A moderngl context that counts the GL objects made through it and their releases.

    Everything is passed to the wrapped context; the objects it returns are the real
    ones, with their ``release`` wrapped to count (once per object).  Give it to
    :class:`~gpuconv.Runtime` (``Runtime(CountingContext(ctx))``) and read
    :meth:`live`: objects created and not yet released, by kind.
    """

    KINDS = ("texture", "framebuffer", "program", "vertex_array", "buffer", "renderbuffer",
             "sampler", "query", "simple_framebuffer", "depth_texture", "texture_array", "texture3d")

    def __init__(self, ctx):
        object.__setattr__(self, "_ctx", ctx)
        object.__setattr__(self, "created", Counter())
        object.__setattr__(self, "released", Counter())

    def __getattr__(self, name):
        value = getattr(self._ctx, name)
        if name in self.KINDS and callable(value):
            return self._counting(name, value)
        return value

    def __setattr__(self, name, value):  # viewport, blend state, ...: the real context's
        setattr(self._ctx, name, value)

    def __enter__(self):
        return self._ctx.__enter__()

    def __exit__(self, *exc):
        return self._ctx.__exit__(*exc)

    def _counting(self, kind: str, make: Callable):
        def wrapper(*args, **kwargs):
            obj = make(*args, **kwargs)
            self.created[kind] += 1
            release = obj.release
            done = []

            def counted_release(*a, **k):
                if not done:
                    done.append(True)
                    self.released[kind] += 1
                return release(*a, **k)

            obj.release = counted_release
            return obj
        return wrapper

    def live(self) -> Dict[str, int]:
        """Objects created and not released, by kind (kinds with none left out)."""
        return {kind: self.created[kind] - self.released[kind] for kind in self.created
                if self.created[kind] != self.released[kind]}


@dataclass
class LifetimeReport:
    calls: int
    configs: int
    seconds: float
    rss_start: int            # after the first pass over the configs (every program compiled)
    rss_end: int
    live_start: Dict[str, int]
    live_end: Dict[str, int]
    live_peak: Dict[str, int]  # the most live objects of each kind seen between calls
    created: Dict[str, int]
    released: Dict[str, int]
    cached_programs: int
    cache_size: int
    live_after_release: Dict[str, int] = field(default_factory=dict)  # after Runtime.release()
    rss_before: int = 0        # before the first call

    def lines(self) -> List[str]:
        mib = 1 << 20
        kinds = sorted(set(self.created) | set(self.released))
        return [
            f"lifetime: {self.calls} calls over {self.configs} configurations in {self.seconds:.1f} s "
            f"({self.seconds / max(self.calls, 1) * 1e3:.2f} ms per call)",
            f"  RSS: {self.rss_before / mib:.1f} MiB before the first call, {self.rss_start / mib:.1f} MiB after "
            f"the first pass (programs compiled), {self.rss_end / mib:.1f} MiB at the end "
            f"({(self.rss_end - self.rss_start) / mib:+.1f} MiB over the last {self.calls - self.configs} calls)",
            *(f"  {kind + 's:':<14} {self.created.get(kind, 0):>7} created, {self.released.get(kind, 0):>7} released"
              f", live after the first pass {self.live_start.get(kind, 0)}, at the end "
              f"{self.live_end.get(kind, 0)}, at most {self.live_peak.get(kind, 0)}" for kind in kinds),
            f"  cached programs: {self.cached_programs} (cache size {self.cache_size}); live GL objects "
            f"after Runtime.release(): {self.live_after_release or 'none'}",
        ]


def lifetime_configs(count: int = 20, seed: int = 0) -> List[Config]:
    """``count`` configurations cycling through every op (NCHW, grouped, fused, ... as drawn)."""
    rng = np.random.default_rng([seed, 10 ** 6])
    names = list(OP_WEIGHTS)
    return [random_config(rng, names[i % len(names)]) for i in range(count)]


def lifetime(calls: int = 10000, configs: Sequence[Config] = (), *, context=None,
             check: Optional[Callable[[Runtime, CountingContext], None]] = None,
             every: int = 0, cache_size: Optional[int] = None,
             progress: Optional[TextIO] = None) -> LifetimeReport:
    """Make ``calls`` calls cycling over ``configs`` through a counting runtime.

    ``context`` is the moderngl context to wrap (default: this thread's default
    runtime's, so no second context is made current).  ``check(runtime, counter)``
    runs after every ``every``-th call.  ``cache_size`` overrides the runtime's
    ``PROGRAM_CACHE_SIZE``.  The runtime's programs are released at the end.
    """
    configs = list(configs) or lifetime_configs()
    counter = CountingContext(context if context is not None else get_runtime().ctx)
    runtime = Runtime(counter)
    if cache_size is not None:
        runtime.PROGRAM_CACHE_SIZE = cache_size
    prepared = []
    for config in configs:
        arrays, fused = config.arrays()
        prepared.append((_GPU[config.op], arrays, dict(config.kwargs, **fused)))
    peak: Counter = Counter()
    live_start, rss_start, rss_before = {}, 0, resident_bytes()
    started = time.perf_counter()
    try:
        for call in range(calls):
            fn, arrays, kwargs = prepared[call % len(prepared)]
            fn(*arrays, **kwargs, runtime=runtime)
            for kind, n in counter.live().items():
                peak[kind] = max(peak[kind], n)
            if call + 1 == len(prepared):
                live_start, rss_start = counter.live(), resident_bytes()
            if check is not None and every and (call + 1) % every == 0:
                check(runtime, counter)
            if progress is not None and (call + 1) % max(1, calls // 10) == 0:
                progress.write(f"lifetime [{call + 1}/{calls}] RSS {resident_bytes() / (1 << 20):.1f} MiB, "
                               f"live {counter.live()}\n")
                progress.flush()
        seconds = time.perf_counter() - started
        rss_end, live_end = resident_bytes(), counter.live()
        cached = runtime.info().get("cached_programs", 0)
    finally:
        runtime.release()
    if not rss_start:
        live_start, rss_start = live_end, rss_end
    return LifetimeReport(calls, len(configs), seconds, rss_start, rss_end, live_start, live_end, dict(peak),
                          dict(counter.created), dict(counter.released), cached, runtime.PROGRAM_CACHE_SIZE,
                          counter.live(), rss_before)


# ---------------------------------------------------------------------------
# command line


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m gpuconv.randomized",
        description="Random configurations against the oracle (like 'gpuconv random'), or a "
                    "resource-lifetime run (--lifetime N).")
    parser.add_argument("--lifetime", type=int, metavar="CALLS",
                        help="make CALLS calls cycling over --configs configurations and print live GL "
                             "objects, cached programs and RSS")
    parser.add_argument("--configs", type=int, default=20, help="configurations the lifetime run cycles (20)")
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tolerance", type=float, default=1e-5)
    args = parser.parse_args(argv)
    if args.lifetime is None:
        from .cli import main as cli_main

        return cli_main(["random", "--count", str(args.count), "--seed", str(args.seed),
                         "--tolerance", str(args.tolerance)])
    report = lifetime(args.lifetime, lifetime_configs(args.configs, args.seed), progress=sys.stderr)
    for line in report.lines():
        print(line)
    leaked = {k: v for k, v in report.live_end.items() if v != report.live_start.get(k, 0)}
    grew = report.rss_end - report.rss_start > 64 << 20
    print("lifetime: " + ("FAIL: " + (f"live objects changed {leaked}; " if leaked else "")
                          + ("RSS grew by more than 64 MiB" if grew else "") if leaked or grew else "flat"))
    return 1 if leaked or grew else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
