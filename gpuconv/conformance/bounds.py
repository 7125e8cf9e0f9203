"""Per-element error bounds for a convolution's result, and the grade they give it.

Every output of every op is an epilogue applied to a sum of products, ``z = sum_k a_k b_k``
(``a``, ``b`` the op's factors: x and the filter, the filter and dy, x and dy; separable_conv2d
has three: x, the depthwise and the pointwise filter).  :func:`float32_bounds` computes, from the
data and the same float64 oracle (so the same geometry) that gives the reference result:

* ``A`` = the oracle run on ``|a|``, ``|b|`` (and ``|bias|``): ``sum_k |a_k b_k| + |bias|`` per output;
* ``n`` = the oracle run on ones: the number of terms each output sums (taps in the padding
  contribute nothing and are not counted); ``m = n + (factors - 2) + (1 with a bias)`` is the
  most roundings on the way from one product to the result;
* ``D`` = ``sum_k (|a_k| + |b_k|) + 2 n``: what flushing float32 subnormals to zero can cost
  (an input, a product or a partial sum below ``2^-126`` may become 0; GLSL ES and WGSL allow it).

**The rigorous bound** (beyond it: Fail), per output::

    R = L * gamma_m(2^-23) * A + 2^-126 * D + (epilogue terms),   gamma_m(u) = m u / (1 - m u)

the classic bound on a sum of ``n`` products in any order (Higham, *Accuracy and Stability of
Numerical Algorithms*, 3.1), with the unit roundoff of any faithful rounding (``2^-23``, so a
device that rounds toward zero is covered too; an FMA only tightens it).  It holds whatever
order, blocking, vectorisation (vec4 dot products) or partial-sum splitting the program uses.

**The expected bound** (within it: Pass; between the two: QualityWarning), per output::

    E = L * 2^-24 * (2 sqrt(m) + 2) * A + 2^-126 * D + (epilogue terms)

A correct implementation rounds to nearest, and its rounding errors behave like independent
zero-mean terms, so they grow like ``sqrt(m)`` and not ``m`` (Higham and Mary, "A new approach
to probabilistic rounding error analysis", SIAM J. Sci. Comput. 2019: ``u sqrt(m)`` with a
small constant holds with high probability); each partial sum is at most ``A``.  With every
rounding of one output at once at its extreme this could be exceeded, but only a biased
arithmetic (truncating rounding, a float16 or 22-bit accumulator) gets there systematically,
and that is exactly a QualityWarning.  The constant 2 was calibrated on llvmpipe, lavapipe,
softpipe, zink and SwiftShader over the whole suite (including all-positive data over
reductions of 25088 to 61952 terms, the worst case: no cancellation); the largest
error seen was well under half of ``E`` (the README's table gives the measurements).

The epilogue's terms (:data:`ACTIVATION_MODEL`): each activation's Lipschitz constant ``L``
multiplies the sum's bound, and its own evaluation adds ``abs + rel * A``.  relu, relu6 and
linear are exact (min/max) and 1-Lipschitz; leaky ReLU and PReLU multiply by a slope ``s``:
``L = max(1, |s|)`` and one more rounding of ``|s| A``; elu, sigmoid, swish and gelu_tanh call
``exp`` (GLSL ES 3.00 and WGSL allow ``3 + 2|x|`` ulp) then an add and a divide: ``2^-20`` (and
``2^-20 A`` where the value is multiplied by x) rigorously, a quarter of it expected (a good
``exp`` is within a few ulp); gelu's erf polynomial is within 1.3e-7 (:mod:`gpuconv.erf`);
hard_sigmoid and hard_swish round ``x + 3``, a product and a division by 6.  A bias or a
residual is one more addend (in ``A``) and one more rounding (in ``m``).

Half-float storage (:func:`float16_bounds`) uses the oracle's model: Pass within
:func:`gpuconv.oracle.float16_prediction_tolerance` of :func:`the prediction
<gpuconv.oracle.conv2d>` (``storage="float16"``), Fail beyond
:func:`gpuconv.oracle.float16_error_bound` of the float64 result, QualityWarning between.

Non-finite values: a NaN or infinity where the oracle's result is finite is a Fail (a wrong
result); where the oracle has NaN or an infinity and the device gives another value, a
QualityWarning (GLSL ES 3.00 does not require NaN or infinity to be produced or propagated).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Dict, Optional, Sequence, Tuple

import numpy as np

from .. import oracle, registry
from ..arguments import normalize_activation

__all__ = ["VERDICTS", "PASS", "QUALITY_WARNING", "FAIL", "NOT_SUPPORTED", "Bounds", "Grade",
           "float32_bounds", "float16_bounds", "grade", "EXPECTED_CONSTANT", "UNIT_ROUNDOFF",
           "FAITHFUL_ROUNDOFF", "SMALLEST_NORMAL"]

#: The verdict of an output within the expected bound.
PASS = "Pass"
#: Beyond the expected bound but within the rigorous one.
QUALITY_WARNING = "QualityWarning"
#: Beyond the rigorous bound, or NaN or infinity where the oracle has none.
FAIL = "Fail"
#: What the device lacks (a feature, a limit): the case could not run.
NOT_SUPPORTED = "NotSupported"
#: The four verdicts, in report order.
VERDICTS = (PASS, QUALITY_WARNING, FAIL, NOT_SUPPORTED)

#: float32's unit roundoff with rounding to nearest (the expected bound)
UNIT_ROUNDOFF = 2.0 ** -24
#: float32's unit roundoff for any faithful rounding, toward zero included (the rigorous bound)
FAITHFUL_ROUNDOFF = 2.0 ** -23
#: float32's smallest normal value: what flushing a subnormal to zero can change a value by
SMALLEST_NORMAL = 2.0 ** -126
#: the expected bound's constant ``c`` in ``u (c sqrt(m) + 2) A``
EXPECTED_CONSTANT = 2.0
#: Each activation's Lipschitz constant and the error its own evaluation may add, as
#: ``(lipschitz, rigorous absolute, rigorous relative to A, expected absolute, expected relative)``:
#: the error is ``abs + rel * A`` on top of ``lipschitz`` times the sum's.  Exact ones (min/max)
#: add nothing; exp-based ones (GLSL ES / WGSL allow exp ``3 + 2|x|`` ulp, then an add and a
#: divide) ``2^-20``; gelu's erf polynomial is within 1.3e-7 (:mod:`gpuconv.erf`);
#: hard_sigmoid/hard_swish round ``x + 3``, a product and a division by 6.  Leaky ReLU and PReLU
#: take their slope from the call.  An activation not listed gets :data:`UNLISTED_ACTIVATION`.
ACTIVATION_MODEL: Dict[str, Tuple[float, float, float, float, float]] = {
    "linear": (1.0, 0.0, 0.0, 0.0, 0.0),
    "relu": (1.0, 0.0, 0.0, 0.0, 0.0),
    "relu6": (1.0, 0.0, 0.0, 0.0, 0.0),
    "elu": (1.0, 2.0 ** -20, 0.0, 2.0 ** -22, 0.0),
    "sigmoid": (1.0, 2.0 ** -20, 0.0, 2.0 ** -22, 0.0),
    "swish": (1.1, 2.0 ** -20, 2.0 ** -20, 2.0 ** -22, 2.0 ** -22),
    "gelu": (1.13, 2.0 ** -20, 2.0 ** -20, 2.0 ** -22, 2.0 ** -22),
    "gelu_tanh": (1.13, 2.0 ** -20, 2.0 ** -20, 2.0 ** -22, 2.0 ** -22),
    "hard_sigmoid": (1.0, 2.0 ** -21, 2.0 ** -22, 2.0 ** -23, 2.0 ** -24),
    "hard_swish": (1.5, 2.0 ** -19, 2.0 ** -20, 2.0 ** -21, 2.0 ** -22),
}
#: The model of an activation missing from :data:`ACTIVATION_MODEL` (deliberately loose).
UNLISTED_ACTIVATION = (2.0, 2.0 ** -18, 2.0 ** -18, 2.0 ** -20, 2.0 ** -20)
#: leaky ReLU's slope when the call gives none (the ops' default)
DEFAULT_LEAKYRELU_ALPHA = 0.2

_EPILOGUE = ("bias", "activation", "leakyrelu_alpha", "prelu_weights", "residual")
#: the fused arrays added to the sum before the activation (one more rounding each)
_ADDENDS = ("bias", "residual")


@dataclass
class Bounds:
    """What a result is held against: ``reference`` (the float64 oracle) with ``rigorous`` per
    element, and ``centre`` (the oracle, or for half-float storage the float16 prediction) with
    ``expected`` per element.  ``model`` names the rule ("float32" or "float16")."""

    reference: np.ndarray
    rigorous: np.ndarray
    centre: np.ndarray
    expected: np.ndarray
    model: str = "float32"


@dataclass
class Grade:
    """One result's verdict and the numbers behind it."""

    verdict: str
    max_error: float                    # largest |y - reference| over finite positions
    ratio_expected: float               # largest error against the expected bound (<= 1: Pass)
    ratio_rigorous: float               # largest error against the rigorous bound (<= 1: not Fail)
    expected_bound: float               # the expected bound where its ratio is largest
    rigorous_bound: float               # the rigorous bound where its ratio is largest
    first_bad: Optional[Dict[str, Any]] = None  # the first element behind the verdict
    reason: str = ""

    def to_dict(self) -> Dict[str, Any]:
        return {"verdict": self.verdict, "max_error": _num(self.max_error),
                "ratio_expected": _num(self.ratio_expected), "ratio_rigorous": _num(self.ratio_rigorous),
                "expected_bound": _num(self.expected_bound), "rigorous_bound": _num(self.rigorous_bound),
                "first_bad": self.first_bad, "reason": self.reason}


def _num(value: Any) -> Any:
    """A float for JSON: NaN and infinities as strings (JSON has none)."""
    value = float(value)
    return value if np.isfinite(value) else str(value)


def _gamma(m: np.ndarray, u: float) -> np.ndarray:
    mu = m * u
    return np.where(mu < 0.5, mu / np.maximum(1 - mu, 0.5), np.inf)


class _Call:
    """An op's call split into its factors and the rest, to run the oracle on other factors."""

    def __init__(self, op: str, args: Sequence[Any], kwargs: Dict[str, Any]) -> None:
        self.entry = registry.get(op)
        self.args = list(args)
        self.kwargs = dict(kwargs)
        self.kwargs.pop("algorithm", None)
        self.kwargs.pop("storage", None)
        leading = self.entry.leading
        self.factors = [leading.index(name) for name in self.entry.arrays]

    def plain(self) -> Dict[str, Any]:
        return {k: v for k, v in self.kwargs.items() if k not in _EPILOGUE}

    def run(self, values: Sequence[np.ndarray], **extra: Any) -> np.ndarray:
        args = list(self.args)
        for position, value in zip(self.factors, values):
            args[position] = value
        return np.asarray(self.entry.oracle(*args, **self.plain(), **extra), dtype=np.float64)

    def factor_values(self) -> Tuple[np.ndarray, ...]:
        return tuple(np.asarray(self.args[p], dtype=np.float64) for p in self.factors)


def float32_bounds(op: str, args: Sequence[Any], kwargs: Dict[str, Any]) -> Bounds:
    """The rigorous and expected bounds of each output of ``op(*args, **kwargs)`` with float32
    storage (module docstring): ``args`` the op's leading arguments (arrays and any shape),
    ``kwargs`` its keyword arguments, fused arrays included."""
    call = _Call(op, args, kwargs)
    entry = call.entry
    reference = np.asarray(entry.oracle(*call.args, **call.kwargs), dtype=np.float64)
    factors = call.factor_values()
    with np.errstate(invalid="ignore", over="ignore"):
        magnitudes = [np.abs(f) for f in factors]
        extra = {name: np.abs(np.asarray(kwargs[name], np.float64)) for name in _ADDENDS
                 if kwargs.get(name) is not None}
        total = call.run(magnitudes, **extra)   # sum_k |a_k b_k| (+ |bias| + |residual|)
        count = call.run([np.ones_like(f) for f in factors])
        flush = 2 * count
        for j in range(len(factors)):
            flush = flush + call.run([np.ones_like(f) if i == j else magnitudes[i] for i, f in enumerate(factors)])
    m = np.maximum(count + (len(factors) - 2) + len(extra), 1.0)
    lipschitz, r_abs, r_rel, e_abs, e_rel = _activation_model(kwargs)
    with np.errstate(invalid="ignore", over="ignore"):
        rigorous = (lipschitz * _gamma(m, FAITHFUL_ROUNDOFF) * total + SMALLEST_NORMAL * flush
                    + r_abs + r_rel * total)
        expected = (lipschitz * UNIT_ROUNDOFF * (EXPECTED_CONSTANT * np.sqrt(m) + 2) * total
                    + SMALLEST_NORMAL * flush + e_abs + e_rel * total)
    expected = np.minimum(expected, rigorous)  # a short sum: at most the rigorous bound
    shape = reference.shape
    return Bounds(reference, np.broadcast_to(rigorous, shape), reference, np.broadcast_to(expected, shape))


def _activation_model(kwargs: Dict[str, Any]) -> Tuple[float, float, float, float, float]:
    """The call's activation's entry of :data:`ACTIVATION_MODEL` (a leaky ReLU's or PReLU's from
    its slope ``s``: Lipschitz ``max(1, |s|)``, one rounding of ``|s| A``)."""
    activation = normalize_activation(kwargs.get("activation")) or "linear"
    if activation in ("leakyrelu", "prelu"):
        if activation == "leakyrelu":
            alpha = kwargs.get("leakyrelu_alpha")
            slope = abs(DEFAULT_LEAKYRELU_ALPHA if alpha is None else float(alpha))
        else:
            slope = float(np.abs(np.asarray(kwargs.get("prelu_weights"), dtype=np.float64)).max(initial=0.0))
        return max(1.0, slope), 0.0, FAITHFUL_ROUNDOFF * slope, 0.0, UNIT_ROUNDOFF * slope
    return ACTIVATION_MODEL.get(activation, UNLISTED_ACTIVATION)


def float16_bounds(op: str, args: Sequence[Any], kwargs: Dict[str, Any]) -> Bounds:
    """Half-float storage: the oracle's float16 prediction and tolerance (expected), the float64
    result and :func:`gpuconv.oracle.float16_error_bound` (rigorous)."""
    entry = registry.get(op)
    options = {k: v for k, v in kwargs.items() if k not in ("algorithm", "storage")}
    oracle_function = getattr(oracle, op)
    parameters = inspect.signature(oracle_function).parameters
    if "storage" not in parameters:  # pragma: no cover - every oracle op takes storage=
        raise ValueError(f"the oracle's {op} has no storage=")
    reference = np.asarray(entry.oracle(*args, **options), dtype=np.float64)
    centre = np.asarray(entry.oracle(*args, **options, storage="float16"), dtype=np.float64)
    tolerance = oracle.float16_prediction_tolerance(op, *args, **options)
    bound = oracle.float16_error_bound(op, *args, **options)
    shape = reference.shape
    return Bounds(reference, np.full(shape, float(bound)), centre, np.full(shape, float(tolerance)), "float16")


def _ratio(error: np.ndarray, bound: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(error == 0, 0.0, np.where(bound > 0, error / np.where(bound > 0, bound, 1.0), np.inf))


def grade(result: np.ndarray, bounds: Bounds) -> Grade:
    """The verdict on ``result`` (Pass, QualityWarning or Fail; see the module docstring)."""
    y = np.asarray(result, dtype=np.float64)
    reference = bounds.reference
    if y.shape != reference.shape:
        return Grade(FAIL, float("nan"), float("inf"), float("inf"), 0.0, 0.0,
                     reason=f"the result's shape {y.shape} is not the oracle's {reference.shape}")
    finite = np.isfinite(reference)
    with np.errstate(invalid="ignore"):
        spurious = finite & ~np.isfinite(y)   # NaN/inf where the oracle has none: Fail
        same_special = (np.isnan(reference) & np.isnan(y)) | (np.isinf(reference) & (y == reference))
    missed = ~finite & ~same_special           # NaN/inf not reproduced: QualityWarning
    both = finite & np.isfinite(y)
    with np.errstate(invalid="ignore", over="ignore"):
        error = np.where(both, np.abs(y - reference), 0.0)
        off_centre = np.where(both & np.isfinite(bounds.centre), np.abs(y - bounds.centre), 0.0)
    r_rigorous = np.where(both, _ratio(error, bounds.rigorous), 0.0)
    r_expected = np.where(both, _ratio(off_centre, bounds.expected), 0.0)
    worst_r = int(np.argmax(r_rigorous)) if r_rigorous.size else 0
    worst_e = int(np.argmax(r_expected)) if r_expected.size else 0
    flat = lambda a: np.asarray(a).reshape(-1)
    max_error = float(error.max(initial=0.0))
    ratio_r = float(flat(r_rigorous)[worst_r]) if r_rigorous.size else 0.0
    ratio_e = float(flat(r_expected)[worst_e]) if r_expected.size else 0.0
    bound_r = float(flat(bounds.rigorous)[worst_r]) if r_rigorous.size else 0.0
    bound_e = float(flat(bounds.expected)[worst_e]) if r_expected.size else 0.0

    def first(mask: np.ndarray, which: str, bound: np.ndarray, centre: np.ndarray) -> Dict[str, Any]:
        index = int(np.flatnonzero(flat(mask))[0])
        position = [int(i) for i in np.unravel_index(index, y.shape)]
        return {"index": position, "got": _num(flat(y)[index]), "want": _num(flat(centre)[index]),
                "bound": _num(flat(bound)[index]), "against": which}

    if spurious.any() or ratio_r > 1:
        mask = spurious | (r_rigorous > 1)
        reason = (f"{int(spurious.sum())} NaN/inf values where the oracle's are finite" if spurious.any()
                  else f"error {max_error:.3g} is {ratio_r:.3g} x the rigorous bound")
        return Grade(FAIL, max_error, ratio_e, ratio_r, bound_e, bound_r,
                     first(mask, "rigorous", bounds.rigorous, reference), reason)
    if missed.any() or ratio_e > 1:
        mask = missed | (r_expected > 1)
        reason = (f"{int(missed.sum())} NaN/inf values of the oracle not reproduced" if missed.any()
                  else f"error {float(flat(off_centre)[worst_e]):.3g} is {ratio_e:.3g} x the expected bound")
        return Grade(QUALITY_WARNING, max_error, ratio_e, ratio_r, bound_e, bound_r,
                     first(mask, "expected", bounds.expected, bounds.centre), reason)
    return Grade(PASS, max_error, ratio_e, ratio_r, bound_e, bound_r)
