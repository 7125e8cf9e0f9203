"""The conformance suite as data: which calls it makes, with which values, in which storage.

A :class:`ConformanceCase` is one call of one op of :data:`gpuconv.registry.OPS`, written as a
:class:`gpuconv.checks.Case` (the selftest's configuration: shapes in ``data_format`` order, the
forward convolution's shapes for a gradient or transposed op, strides, dilations, padding,
groups, the fused epilogue) plus what the selftest does not vary: the ``algorithm=``, how the
arrays are filled (:data:`VALUES`), the storage, a leaky-ReLU slope, and for the cases that
probe the device's limits the axis sized from its ``max_texture_size``.

:func:`cases` gives a suite for a target (WebGL2 or WebGPU): ``"full"`` or ``"quick"`` (the
cases marked quick, under a minute on llvmpipe).  Its contents are named in :data:`GROUPS`.
The suite's version, :data:`SUITE_VERSION`, is in every report: change it whenever a case is
added, removed or changed, so that two reports with one version ran the same calls.
:func:`shard` splits a suite round-robin (``--shard i/n``; the shards' union is the suite).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Dict, List, Optional, Sequence, Tuple

from .. import registry
from ..arguments import ACTIVATIONS
from ..checks import SELFTEST_CASES, Case, plan_leading
from ..plan import Plan
from ..target import WEBGL2, Target
from ..webgpu.target import NotOnTargetError

__all__ = ["SUITE_VERSION", "SUITES", "VALUES", "GROUPS", "ConformanceCase", "cases", "shard", "parse_shard",
           "LIMIT_CAP"]

#: The suite's version: in every report; bumped whenever a case changes.
SUITE_VERSION = "1.2"

#: ``suite=`` values.
SUITES = ("full", "quick")

#: How a case's arrays are filled (seeded per case):
VALUES: Dict[str, str] = {
    "uniform": "every array uniform in [-1, 1]",
    "positive": "every array uniform in [0, 1]: no cancellation, the worst case for a long sum's rounding",
    "float16-range": "x uniform in [-1, 1] times 2^11: outputs of up to tens of thousands, near float16's "
                     "largest finite value (65504)",
    "signed-zero": "x and the filter: half of the values +0.0 or -0.0, the others uniform in [-1, 1]",
    "denormal": "x: float32 subnormals (uniform in [-1, 1] times 2^-130) mixed with normal values; the "
                "filter uniform in [-1, 1]",
    "nan-inf": "x uniform in [-1, 1] with a few NaN, +inf and -inf values",
}

#: What each group of cases covers.
GROUPS: Dict[str, str] = {
    "ops": "the selftest table: every op, input depths 1-9 (every remainder mod 4), strides, dilations, "
           "every padding form, both data formats, batch 1 and 3 (and none), groups, multipliers",
    "algorithm": "the same calls with each algorithm= the target offers (WebGL2: direct, packed, im2col; "
                 "WebGPU: direct), where it runs the call",
    "depth": "input depths 13-16 (every remainder mod 4) with each algorithm",
    "epilogue": "every fused activation, with and without a bias, on every op that fuses one",
    "groups": "more groups and channel multipliers, batch 4",
    "limits": "textures sized from the device's largest texture side: long narrow 1 x N textures "
              "(TF.js issue 6775), at the limit and one past it (the layout must wrap)",
    "reduction": "long reductions: 7x7x512, 7x7x1024, 11x11x512, 3x3x1024, 1x1x4096, a 64x64 filter gradient",
    "special": "values near float16's range, signed zeros, denormals, NaN and infinity propagation",
    "float16": "half-float storage (R16F/RGBA16F), graded with the oracle's float16 prediction and bound",
}

#: The largest texture side a limits case sizes itself to (larger devices are tested at this size).
LIMIT_CAP = 16384


@dataclass(frozen=True)
class ConformanceCase:
    """One call of the suite: ``case`` (the selftest's :class:`~gpuconv.checks.Case`) and how to run it.

    ``limit`` sizes one axis of ``case.x`` from the device: ``(axis, offset)`` makes that axis
    ``min(max_texture_size, LIMIT_CAP) + offset`` long (:meth:`resolved`)."""

    name: str
    group: str
    case: Case
    algorithm: Optional[str] = None
    values: str = "uniform"
    storage: str = "float32"
    alpha: Optional[float] = None  # leakyrelu's slope (the op's default when None)
    quick: bool = False
    limit: Optional[Tuple[int, int]] = None

    @property
    def op(self) -> str:
        return self.case.op

    def resolved(self, max_texture_size: int) -> "ConformanceCase":
        """The case with its limit-sized axis filled in for a device of ``max_texture_size``."""
        if self.limit is None:
            return self
        axis, offset = self.limit
        x = list(self.case.x)
        x[axis] = min(int(max_texture_size), LIMIT_CAP) + offset
        return replace(self, case=self.case._replace(x=tuple(x)), limit=None)

    def kwargs(self) -> Dict[str, object]:
        """The op's keyword arguments, without the fused arrays (the runner adds them)."""
        kwargs: Dict[str, object] = dict(self.case.kwargs())
        if self.case.activation:
            kwargs["activation"] = self.case.activation
        if self.alpha is not None:
            kwargs["leakyrelu_alpha"] = self.alpha
        if self.algorithm is not None:
            kwargs["algorithm"] = self.algorithm
        return kwargs

    def describe(self) -> str:
        """The call in one line: op, shapes by argument name, options."""
        if self.limit is not None:  # sized from a device: shown at the largest size it takes
            axis, offset = self.limit
            side = "the device's largest texture side" + (" + 1" if offset else "")
            return f"{self.resolved(LIMIT_CAP).describe()} (x's axis {axis}: {side}, at most {LIMIT_CAP + offset})"
        parts = []
        entry = registry.get(self.op)
        for name, shape in self.case.leading().items():
            text = "x".join(map(str, shape))
            parts.append(f"{name}={text}" if name == entry.shape_argument else f"{name} {text}")
        c = self.case
        parts.append(f"strides={registry.pair_text(c.strides)}")
        if c.dilations != 1:
            parts.append(f"dilations={registry.pair_text(c.dilations)}")
        parts.append(f"padding={registry.padding_text(c.padding)}" + (f" ({c.rounding})" if c.rounding else ""))
        parts.append(c.data_format)
        if c.groups != 1:
            parts.append(f"groups={c.groups}")
        if c.bias:
            parts.append("bias")
        if c.activation:
            parts.append(c.activation + (f"({self.alpha:g})" if self.alpha is not None else ""))
        if self.algorithm:
            parts.append(f"algorithm={self.algorithm}")
        if self.values != "uniform":
            parts.append(f"values={self.values}")
        if self.storage != "float32":
            parts.append(f"storage={self.storage}")
        return f"{self.op}({', '.join(parts)})"


def _shape(text: str) -> Tuple[int, ...]:
    return tuple(int(d) for d in text.split("x"))


def _conv(x: str, f: str, **kw: object) -> Case:
    return Case("conv2d", _shape(x), _shape(f), **kw)  # type: ignore[arg-type]


def _dw(x: str, f: str, **kw: object) -> Case:
    return Case("depthwise_conv2d", _shape(x), _shape(f), **kw)  # type: ignore[arg-type]


def _op(op: str, x: str, f: str, **kw: object) -> Case:
    kw.setdefault("data_format", registry.get(op).data_formats[0])
    return Case(op, _shape(x), _shape(f), **kw)  # type: ignore[arg-type]


def _runs(case: Case, algorithm: Optional[str], target: Target = WEBGL2) -> bool:
    """Whether the op plans ``case`` with ``algorithm`` on ``target`` (at its default limits): as
    on WebGL2, then lowered by another target (which may not run that algorithm for the op:
    WebGPU's im2col is conv2d's only)."""
    options = case.kwargs()
    if case.activation and case.activation != "prelu":
        options["activation"] = case.activation
    if algorithm is not None:
        options["algorithm"] = algorithm
    try:
        plan_leading(case.op, case.leading(), options)
    except ValueError:
        return False
    if target is WEBGL2 or algorithm is None:
        return True

    def make_plan(limits: object, *choice: str) -> Plan:
        return plan_leading(case.op, case.leading(), {**options, "algorithm": choice[0] if choice else algorithm})

    try:
        target.plan(make_plan, algorithm, target.default_limits())
    except NotOnTargetError:
        return True  # the case reports the op as not on the target, as before
    except ValueError:
        return False
    return True


def _selftest_cases() -> List[ConformanceCase]:
    """Group "ops": the selftest table, each op's default algorithm."""
    counts: Dict[str, int] = {}
    made = []
    for case in SELFTEST_CASES:
        counts[case.op] = counts.get(case.op, 0) + 1
        made.append(ConformanceCase(f"ops/{case.op}/{counts[case.op]}", "ops", case, quick=case.quick))
    return made


def _algorithm_cases(target: Target) -> List[ConformanceCase]:
    """Group "algorithm": every selftest case of an op with algorithm= under each of the target's."""
    made = []
    chosen = [a for a in target.algorithms if a != "auto"]
    counts: Dict[str, int] = {}
    quick_done = set()
    for case in SELFTEST_CASES:
        counts[case.op] = counts.get(case.op, 0) + 1
        if not registry.get(case.op).algorithms:
            continue
        for algorithm in chosen:
            if not _runs(case, algorithm, target):
                continue
            quick = case.quick and (case.op, algorithm) not in quick_done and case.op in ("conv2d", "depthwise_conv2d")
            if quick:
                quick_done.add((case.op, algorithm))
            made.append(ConformanceCase(f"algorithm/{algorithm}/{case.op}/{counts[case.op]}", "algorithm", case,
                                        algorithm=algorithm, quick=quick))
    return made


def _with_algorithms(target: Target, name: str, group: str, case: Case, quick_algorithm: Optional[str] = "",
                     **options: object) -> List[ConformanceCase]:
    """``case`` under each of the target's algorithms (the op's default only, for an op without
    algorithm=); the one named ``quick_algorithm`` is in the quick suite ("": none; None: the default)."""
    algorithms: Sequence[Optional[str]] = [None]
    if registry.get(case.op).algorithms:
        algorithms = [a for a in target.algorithms if a != "auto"]
    made = []
    probe = case
    limit = options.get("limit")
    if isinstance(limit, tuple):  # planned at the largest size it takes
        axis, offset = limit
        probe = case._replace(x=tuple(LIMIT_CAP + offset if i == axis else d for i, d in enumerate(case.x)))
    for algorithm in algorithms:
        if algorithm is not None and not _runs(probe, algorithm, target):
            continue
        label = f"{name}/{algorithm}" if algorithm else name
        made.append(ConformanceCase(label, group, case, algorithm=algorithm,
                                    quick=quick_algorithm != "" and algorithm == (quick_algorithm or algorithms[0]),
                                    **options))  # type: ignore[arg-type]
    return made


def _depth_cases(target: Target) -> List[ConformanceCase]:
    made = []
    for channels in (13, 14, 15, 16):
        made += _with_algorithms(target, f"depth/conv2d/c{channels}", "depth",
                                 _conv(f"1x9x9x{channels}", f"3x3x{channels}x5", padding="SAME"),
                                 quick_algorithm="" if channels != 15 else "direct")
        made += _with_algorithms(target, f"depth/depthwise/c{channels}", "depth",
                                 _dw(f"2x8x8x{channels}", f"3x3x{channels}x2", padding="SAME", strides=2))
    return made


def _epilogue_cases(target: Target) -> List[ConformanceCase]:
    made = []
    fused = [op for op in registry.ops_with("fused")]
    shapes = {"conv2d": ("1x7x7x6", "3x3x6x5"), "depthwise_conv2d": ("1x7x7x5", "3x3x5x2"),
              "conv2d_transpose": ("1x8x8x3", "3x3x3x6"), "separable_conv2d": ("1x7x7x3", "3x3x3x2")}
    for op in fused:
        x, f = shapes.get(op, ("1x7x7x6", "3x3x6x5"))
        # the epilogue follows the pointwise step: 5 channels, not the depthwise step's 6
        shaped: Dict[str, object] = {"pointwise": (1, 1, 6, 5)} if registry.get(op).pointwise else {}
        for activation in ACTIVATIONS:
            for bias in (False, True):
                case = _op(op, x, f, padding="SAME", strides=2 if op == "conv2d_transpose" else 1,
                           bias=bias, activation=activation, **shaped)
                quick = op == "conv2d" and bias
                made.append(ConformanceCase(f"epilogue/{op}/{activation}{'+bias' if bias else ''}", "epilogue",
                                            case, values="uniform", quick=quick,
                                            alpha=0.3 if activation == "leakyrelu" else None))
        made.append(ConformanceCase(f"epilogue/{op}/leakyrelu-steep+bias", "epilogue",
                                    _op(op, x, f, padding="SAME", bias=True, activation="leakyrelu", **shaped),
                                    alpha=1.7))
    # each algorithm's own epilogue code (the packed programs fuse it too)
    for algorithm in [a for a in target.algorithms if a != "auto"]:
        for activation in ("relu6", "prelu", "elu", "sigmoid"):
            case = _conv("2x6x6x8", "3x3x8x8", padding="SAME", bias=True, activation=activation)
            if _runs(case, algorithm, target):
                made.append(ConformanceCase(f"epilogue/{algorithm}/{activation}", "epilogue", case,
                                            algorithm=algorithm))
    return made


def _group_cases(target: Target) -> List[ConformanceCase]:
    made = []
    made += _with_algorithms(target, "groups/conv2d/g4", "groups",
                             _conv("4x6x6x8", "3x3x2x8", padding="SAME", groups=4), quick_algorithm=None)
    made += _with_algorithms(target, "groups/conv2d/g3-nchw", "groups",
                             _conv("2x9x7x7", "3x3x3x6", padding="VALID", data_format="NCHW", groups=3))
    made += _with_algorithms(target, "groups/depthwise/m4", "groups",
                             _dw("4x7x7x5", "3x3x5x4", padding="SAME"), quick_algorithm=None)
    made += _with_algorithms(target, "groups/depthwise/m3-nchw", "groups",
                             _dw("2x6x7x7", "3x3x6x3", padding=1, data_format="NCHW", strides=2))
    made += _with_algorithms(target, "groups/separable/m2-batch4", "groups",
                             Case("separable_conv2d", (4, 8, 8, 3), (3, 3, 3, 2), pointwise=(1, 1, 6, 5)))
    return made


def _limit_cases(target: Target) -> List[ConformanceCase]:
    """Textures (buffers on WebGPU) as long as the device allows, and one texel past it."""
    made = []
    for offset, label in ((0, "at"), (1, "past")):
        # x [1, 1, N, 1]: a texture N texels long and one wide (one past the limit: it must wrap)
        made += _with_algorithms(target, f"limits/long-narrow-{label}", "limits",
                                 _conv("1x1x0x1", "1x3x1x2", padding="SAME"), limit=(2, offset),
                                 quick_algorithm="" if offset else "direct")
        made += _with_algorithms(target, f"limits/long-narrow-4ch-{label}", "limits",
                                 _conv("1x0x1x4", "3x1x4x4", padding="SAME"), limit=(1, offset))
        made.append(ConformanceCase(f"limits/conv1d-{label}", "limits",
                                    Case("conv1d", (1, 0, 3), (5, 3, 2), padding="SAME", data_format="NWC"),
                                    limit=(1, offset)))
        made += _with_algorithms(target, f"limits/depthwise-long-{label}", "limits",
                                 _dw("1x2x0x3", "1x3x3x1", padding="SAME"), limit=(2, offset))
    # an output N texels long from a tall, narrow input
    made.append(ConformanceCase("limits/transpose-long", "limits",
                                _op("conv2d_transpose", "1x0x1x2", "3x1x2x3", padding="SAME"), limit=(1, 0)))
    return made


def _reduction_cases(target: Target) -> List[ConformanceCase]:
    made = []
    big = (("7x7x512", "1x9x9x512", "7x7x512x4"), ("7x7x1024", "1x8x8x1024", "7x7x1024x2"),
           ("11x11x512", "1x11x11x512", "11x11x512x2"), ("3x3x1024", "1x5x5x1024", "3x3x1024x4"),
           ("1x1x4096", "1x3x3x4096", "1x1x4096x4"))
    for label, x, f in big:
        for values in ("uniform", "positive"):
            made += _with_algorithms(target, f"reduction/{label}/{values}", "reduction",
                                     _conv(x, f, padding="VALID"), values=values,
                                     quick_algorithm="direct" if label == "7x7x512" and values == "positive" else "")
    made.append(ConformanceCase("reduction/depthwise-15x15/positive", "reduction",
                                _dw("1x20x20x8", "15x15x8x1", padding="VALID"), values="positive"))
    made.append(ConformanceCase("reduction/backprop-filter-64x64/positive", "reduction",
                                _op("conv2d_backprop_filter", "1x64x64x4", "3x3x4x4", padding="SAME"),
                                values="positive"))
    made.append(ConformanceCase("reduction/backprop-filter-64x64/uniform", "reduction",
                                _op("conv2d_backprop_filter", "2x64x64x3", "3x3x3x2", padding="SAME")))
    made.append(ConformanceCase("reduction/backprop-input-3x3x512", "reduction",
                                _op("conv2d_backprop_input", "1x6x6x8", "3x3x8x512", padding="SAME"),
                                values="positive"))
    made.append(ConformanceCase("reduction/conv3d-3x3x3x128", "reduction",
                                _op("conv3d", "1x5x5x5x128", "3x3x3x128x2", padding="VALID"), values="positive"))
    return made


def _special_cases(target: Target) -> List[ConformanceCase]:
    made = []
    calls = {
        "conv2d": _conv("2x7x7x5", "3x3x5x3", padding="SAME", strides=2),
        "conv2d-nchw": _conv("1x6x7x7", "3x3x6x4", padding=1, data_format="NCHW"),
        "depthwise": _dw("1x7x7x6", "3x3x6x2", padding="SAME"),
        "conv1d": Case("conv1d", (2, 17, 5), (3, 5, 4), padding="SAME", data_format="NWC"),
        "transpose": _op("conv2d_transpose", "1x7x7x3", "3x3x3x4", strides=2, padding="SAME"),
        "backprop-filter": _op("conv2d_backprop_filter", "1x7x7x4", "3x3x4x3", padding="SAME"),
        "conv3d": _op("conv3d", "1x4x5x5x3", "2x3x3x3x2", padding="SAME"),
    }
    for values in ("float16-range", "signed-zero", "denormal", "nan-inf"):
        for label, case in calls.items():
            quick_algorithm = "direct" if label == "conv2d" and values in ("nan-inf", "signed-zero") else ""
            if values == "nan-inf" and label == "conv2d":
                quick_algorithm = "packed" if "packed" in target.algorithms else "direct"
            made += _with_algorithms(target, f"special/{values}/{label}", "special", case, values=values,
                                     quick_algorithm=quick_algorithm)
    return made


def _float16_cases(target: Target) -> List[ConformanceCase]:
    made = []
    calls = {
        "conv2d": (_conv("1x12x12x16", "3x3x16x8", padding="SAME", bias=True, activation="relu"), True),
        "depthwise": (_dw("1x10x10x8", "3x3x8x2", padding="SAME", strides=2), False),
        "separable": (Case("separable_conv2d", (1, 9, 9, 4), (3, 3, 4, 2), pointwise=(1, 1, 8, 6)), False),
        "conv1d": (Case("conv1d", (1, 30, 8), (5, 8, 4), padding="SAME", data_format="NWC"), False),
        "transpose": (_op("conv2d_transpose", "1x9x9x4", "3x3x4x4", strides=2, padding="SAME"), False),
        "backprop-filter": (_op("conv2d_backprop_filter", "1x16x16x4", "3x3x4x4", padding="SAME"), True),
        "conv3d": (_op("conv3d", "1x5x5x5x4", "3x3x3x4x2", padding="SAME"), False),
        "reduction-3x3x256": (_conv("1x6x6x256", "3x3x256x4", padding="VALID"), False),
    }
    for label, (case, quick) in calls.items():
        made += _with_algorithms(target, f"float16/{label}", "float16", case, storage="float16",
                                 quick_algorithm=None if quick else "")
    made += _with_algorithms(target, "float16/range", "float16", _conv("1x6x6x2", "3x3x2x2", padding="SAME"),
                             storage="float16", values="float16-range")
    return made


_BUILDERS = (_algorithm_cases, _depth_cases, _epilogue_cases, _group_cases, _limit_cases, _reduction_cases,
             _special_cases, _float16_cases)

_CACHE: Dict[Tuple[str, str], Tuple[ConformanceCase, ...]] = {}


def cases(suite: str = "full", target: Target = WEBGL2) -> Tuple[ConformanceCase, ...]:
    """The cases of ``suite`` ("full" or "quick") for ``target``, in a fixed order (names are unique)."""
    if suite not in SUITES:
        raise ValueError(f"suite must be one of {', '.join(map(repr, SUITES))}, got {suite!r}")
    key = (suite, target.name)
    if key not in _CACHE:
        made = _selftest_cases()
        for build in _BUILDERS:
            made += build(target)
        if target.name != "webgl2":  # half-float storage is a WebGL2 texture format
            made = [c for c in made if c.storage == "float32"]
        names = [c.name for c in made]
        if len(set(names)) != len(names):  # pragma: no cover - a suite definition mistake
            raise RuntimeError(f"duplicate case names: {sorted({n for n in names if names.count(n) > 1})}")
        _CACHE[key] = tuple(c for c in made if suite == "full" or c.quick)
    return _CACHE[key]


def parse_shard(text: str) -> Tuple[int, int]:
    """``"2/4"`` -> ``(2, 4)``: shard 2 of 4 (from 1); a ValueError for anything else."""
    try:
        index, count = (int(v) for v in str(text).split("/"))
    except ValueError:
        raise ValueError(f"shard must be I/N (e.g. 2/4, 1 <= I <= N), got {text!r}") from None
    if not 1 <= index <= count:
        raise ValueError(f"shard must be I/N with 1 <= I <= N, got {text!r}")
    return index, count


def shard(suite: Sequence[ConformanceCase], which: Optional[Tuple[int, int]]) -> Tuple[ConformanceCase, ...]:
    """Shard ``which = (i, n)`` of ``suite``: cases i-1, i-1+n, i-1+2n, ... (round-robin, so the
    shards are alike in size and mix; their union is the suite).  ``None``: the whole suite."""
    if which is None:
        return tuple(suite)
    index, count = which
    if not 1 <= index <= count:
        raise ValueError(f"shard must be (i, n) with 1 <= i <= n, got {which!r}")
    return tuple(suite[index - 1::count])

