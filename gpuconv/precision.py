"""Will a layer survive phones?  One call's largest error in float32 and in float16 storage.

Many mobile GPUs cannot render to float32 textures, so TF.js stores every tensor there in
half floats (:mod:`gpuconv.storage`).  :func:`measure` runs one configuration of an op with
both storages, on the native runtime and in the browser's WebGL2 (R16F/RGBA16F textures) and on
WebGPU (buffers of halves, two to a 32-bit word), and compares each result
with the float64 oracle: the largest absolute error, the error relative to the output's
largest magnitude (the tolerance's measure, as ``gpuconv run --check``), and for float16
storage :func:`gpuconv.oracle.float16_error_bound` and the distance from the oracle's
float16 prediction.  Values beyond float16's range (65504) in any input, filter,
intermediate or the output are reported (:func:`overflow_lines`), never silently turned
into infinity.  ``gpuconv precision`` prints it (:func:`report`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from . import oracle
from .runtimes.base import GLUnavailableError
from .storage import FLOAT16_MAX, STORAGES

#: ``gpuconv precision``'s default tolerance: the largest error relative to the output's
#: largest magnitude that a layer may have to pass (float16 holds ~3.3 decimal digits).
DEFAULT_PRECISION_TOLERANCE = 1e-3


@dataclass
class Measurement:
    """One storage on one runtime: the errors against the float64 oracle (or why it was skipped)."""

    storage: str
    backend: str
    max_abs: float = float("nan")
    relative: float = float("nan")
    bound: Optional[float] = None           # float16: oracle.float16_error_bound
    off_prediction: Optional[float] = None  # float16: distance from the oracle's float16 prediction
    tolerance_prediction: Optional[float] = None
    skipped: str = ""

    def passes(self, tolerance: float) -> bool:
        return not self.skipped and bool(self.relative <= tolerance)


@dataclass
class Precision:
    """A configuration's measurements, the overflows float16 storage meets, and the oracle's scale."""

    op: str
    call: str
    scale: float
    measurements: List[Measurement] = field(default_factory=list)
    overflows: List[Tuple[str, int]] = field(default_factory=list)


def measure(op: str, gpu: Callable[..., Any], args: Sequence[Any], kwargs: Dict[str, Any],
            runtimes: Sequence[Tuple[str, Any]], call: str = "",
            gpu_kwargs: Optional[Dict[str, Any]] = None) -> Precision:
    """Run ``gpu(*args, **kwargs, **gpu_kwargs, runtime=..., storage=...)`` with each storage on each
    of ``runtimes`` (``(backend, runtime or the reason it is missing)``) and compare with
    ``gpuconv.oracle.<op>(*args, **kwargs)``."""
    exact = np.asarray(getattr(oracle, op)(*args, **kwargs), dtype=np.float64)
    finite = np.abs(exact[np.isfinite(exact)])
    scale = float(finite.max()) if finite.size else 0.0
    result = Precision(op, call, scale, overflows=oracle.float16_overflows(op, *args, **kwargs))
    bound = prediction = tolerance = None
    if not result.overflows:
        bound = oracle.float16_error_bound(op, *args, **kwargs)
        tolerance = oracle.float16_prediction_tolerance(op, *args, **kwargs)
    prediction = np.asarray(getattr(oracle, op)(*args, storage="float16", **kwargs), dtype=np.float64)
    for backend, runtime in runtimes:
        for storage in STORAGES:
            entry = Measurement(storage, backend)
            result.measurements.append(entry)
            if isinstance(runtime, str):
                entry.skipped = runtime
                continue
            algorithm = (gpu_kwargs or {}).get("algorithm")
            algorithms = getattr(runtime.target, "algorithms", ())
            if algorithm is not None and algorithms and algorithm not in algorithms:
                entry.skipped = f"algorithm={algorithm!r} is not a {runtime.target.name} algorithm"
                continue
            try:  # a runtime without this storage skips it
                runtime.require_storage(storage)
            except GLUnavailableError as exc:
                entry.skipped = str(exc).split(";")[0]
                continue
            y = np.asarray(gpu(*args, **kwargs, **(gpu_kwargs or {}), runtime=runtime, storage=storage),
                           dtype=np.float64)
            entry.max_abs, entry.relative = oracle.compare(y, exact)
            if storage == "float16":
                entry.bound = bound
                entry.off_prediction = oracle.compare(y, prediction)[0]
                entry.tolerance_prediction = tolerance
    return result


def overflow_lines(overflows: Sequence[Tuple[str, int]]) -> List[str]:
    """One line per overflowing array: how many values exceed float16's range, and what becomes of them."""
    return [f"{count} value{'s' if count != 1 else ''} of {what if what.startswith('the ') else what} "
            f"exceed{'s' if count == 1 else ''} float16's largest finite value {FLOAT16_MAX:g}: "
            f"{'it becomes' if count == 1 else 'they become'} inf in half-float storage"
            for what, count in overflows]


def _g(value: Optional[float]) -> str:
    return "-" if value is None or value != value else f"{value:.3g}"


def report(result: Precision, tolerance: float) -> List[str]:
    """The lines ``gpuconv precision`` prints: a table, the overflows, a verdict per storage."""
    lines = [f"{result.op}: {result.call}".rstrip(": "),
             f"largest error against the float64 oracle (largest |output| {result.scale:.4g}); "
             f"tolerance {tolerance:g} relative to it"]
    header = ["storage", "backend", "max abs error", "relative", "float16 bound", "vs float16 prediction",
              "verdict"]
    rows = []
    for m in result.measurements:
        if m.skipped:
            rows.append([m.storage, m.backend, "-", "-", "-", "-", f"skipped: {m.skipped}"])
            continue
        vs = _g(m.off_prediction)
        if m.off_prediction is not None and m.tolerance_prediction:
            vs += f" (<= {_g(m.tolerance_prediction)})"
        rows.append([m.storage, m.backend, _g(m.max_abs), _g(m.relative), _g(m.bound), vs,
                     "PASS" if m.passes(tolerance) else "FAIL"])
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    for row in [header] + rows:
        lines.append("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip())
    lines += [f"float16 overflow: {line}" for line in overflow_lines(result.overflows)]
    for storage in STORAGES:
        measured = [m for m in result.measurements if m.storage == storage and not m.skipped]
        if not measured:
            lines.append(f"verdict {storage}: not measured")
            continue
        worst = max(measured, key=lambda m: (m.relative != m.relative, m.relative))
        ok = all(m.passes(tolerance) for m in measured)
        where = "phones without float32 render targets (TF.js's half-float textures)" if storage == "float16" \
            else "devices with float32 render targets"
        lines.append(f"verdict {storage}: {'PASS' if ok else 'FAIL'} (relative error {_g(worst.relative)} "
                     f"{'<=' if ok else '>'} {tolerance:g}): this layer "
                     f"{'survives' if ok else 'does not survive'} {where}")
    return lines


def passed(result: Precision, tolerance: float) -> bool:
    """Whether every measured storage and runtime is within ``tolerance``."""
    return all(m.passes(tolerance) for m in result.measurements if not m.skipped)
