"""Run the suite on a runtime: each case's arrays, its call, its bounds and its grade."""

from __future__ import annotations

import dataclasses
import platform
import time
import zlib
from typing import Any, Dict, List, Optional, Sequence, TextIO, Tuple, Union

import numpy as np

from .. import registry
from ..checks import device_name, result_channels, runtime_name
from ..runtimes import BaseRuntime, GLUnavailableError, get_runtime
from ..target import NotOnTargetError
from .bounds import FAIL, NOT_SUPPORTED, Bounds, float16_bounds, float32_bounds, grade
from .report import CaseResult, Report
from .suite import LIMIT_CAP, SUITE_VERSION, ConformanceCase, cases, parse_shard
from .suite import shard as shard_cases

__all__ = ["run", "run_case", "case_arrays", "case_bounds", "device_facts"]

ShardLike = Union[None, str, Tuple[int, int]]


def _rng(case: ConformanceCase, seed: int) -> np.random.Generator:
    """Each case's own stream (by name: a case's data do not depend on its shard or position)."""
    return np.random.default_rng([seed, zlib.crc32(case.name.encode())])


def _fill(rng: np.random.Generator, shape: Tuple[int, ...], values: str, first: bool) -> np.ndarray:
    low = 0.0 if values == "positive" else -1.0
    a = rng.uniform(low, 1.0, shape)
    if values == "float16-range" and first:
        a = a * 2.0 ** 11
    elif values == "signed-zero":
        zero = rng.random(shape) < 0.5
        a = np.where(zero, np.where(rng.random(shape) < 0.5, -0.0, 0.0), a)
    elif values == "denormal" and first:
        tiny = rng.random(shape) < 0.5
        a = np.where(tiny, a * 2.0 ** -130, a)
    elif values == "nan-inf" and first and a.size >= 3:
        flat = a.reshape(-1)
        spots = rng.choice(flat.size, 3, replace=False)
        flat[spots] = (np.nan, np.inf, -np.inf)
    return a.astype(np.float32)


def case_arrays(case: ConformanceCase, seed: int = 0) -> Tuple[Tuple[Any, ...], Dict[str, Any]]:
    """The call's leading positional values and its keyword arguments (fused arrays included),
    drawn from the case's own seeded stream; ``case`` must be resolved (no ``limit`` left)."""
    if case.limit is not None:
        raise ValueError(f"{case.name}: resolve the case for a device first (case.resolved(max_texture_size))")
    rng = _rng(case, seed)
    entry = registry.get(case.op)
    leading = case.case.leading()
    args = tuple(leading[name] if name == entry.shape_argument else
                 _fill(rng, leading[name], case.values, name == entry.arrays[0]) for name in entry.leading)
    kwargs: Dict[str, Any] = dict(case.kwargs())
    c = case.case
    if c.bias or c.activation == "prelu":
        channels = result_channels(case.op, c.plan(), c.data_format)
        low = 0.0 if case.values == "positive" else -1.0
        if c.bias:
            kwargs["bias"] = rng.uniform(low, 1.0, channels).astype(np.float32)
        if c.activation == "prelu":
            kwargs["prelu_weights"] = rng.uniform(-1.5, 1.5, channels).astype(np.float32)
    return args, kwargs


def case_bounds(case: ConformanceCase, args: Sequence[Any], kwargs: Dict[str, Any]) -> Bounds:
    """The case's bounds (:mod:`gpuconv.conformance.bounds`) for these arrays."""
    if case.storage == "float16":
        return float16_bounds(case.op, args, kwargs)
    return float32_bounds(case.op, args, kwargs)


def _texture_size(runtime: BaseRuntime) -> int:
    """What a limits case sizes itself to: the largest texture side (WebGL2); on a target without
    textures (WebGPU's buffers) the suite's cap, :data:`~gpuconv.conformance.suite.LIMIT_CAP`."""
    size = getattr(runtime.limits, "max_texture_size", None)
    return int(size) if isinstance(size, int) else LIMIT_CAP


def _limits(runtime: BaseRuntime) -> Dict[str, Any]:
    limits = runtime.limits
    if dataclasses.is_dataclass(limits) and not isinstance(limits, type):
        values: Dict[str, Any] = dataclasses.asdict(limits)
    else:  # pragma: no cover - every runtime's limits are a dataclass
        values = {"repr": repr(limits)}
    values["max_loop_iterations"] = runtime.max_loop_iterations
    return values


def _not_supported(exc: BaseException) -> bool:
    """Errors that say the device (or its runtime) lacks something, before any result."""
    if isinstance(exc, NotOnTargetError):
        return True
    text = str(exc)
    return isinstance(exc, ValueError) and ("loop iterations" in text or "too large" in text
                                            or "draw buffers" in text or "texture" in text and "limit" in text)


def run_case(case: ConformanceCase, runtime: BaseRuntime, seed: int = 0) -> CaseResult:
    """Run one case on ``runtime`` and grade it; an error fails the case (or, where the device lacks
    what the case needs, makes it NotSupported), but GL going away and Ctrl-C are raised."""
    case = case.resolved(_texture_size(runtime))
    started = time.perf_counter()
    result = CaseResult(case.name, case.group, case.op, case.describe(), FAIL, 0.0, case.algorithm, case.storage,
                        case.values)
    try:
        if case.storage != "float32":
            try:
                runtime.require_storage(case.storage)
            except GLUnavailableError as exc:  # no half-float render targets here
                result.verdict, result.message = NOT_SUPPORTED, f"{case.storage} storage: {exc}"
                return result
        args, kwargs = case_arrays(case, seed)
        if case.algorithm is not None and case.algorithm not in runtime.target.algorithms:
            result.verdict = NOT_SUPPORTED
            result.message = f"algorithm {case.algorithm!r} is not on the {runtime.target.name} target"
            return result
        entry = registry.get(case.op)
        y = np.asarray(entry.gpu(*args, **kwargs, storage=case.storage, runtime=runtime))
        bounds = case_bounds(case, args, kwargs)
        graded = grade(y, bounds)
        result.verdict, result.grade = graded.verdict, graded.to_dict()
    except (GLUnavailableError, KeyboardInterrupt):
        raise
    except Exception as exc:  # a wrong call is the case's failure; the run goes on
        result.verdict = NOT_SUPPORTED if _not_supported(exc) else FAIL
        result.message = f"{type(exc).__name__}: {exc}"[:500]
    finally:
        result.seconds = time.perf_counter() - started
    return result


def _json_safe(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


def device_facts(runtime: BaseRuntime) -> Dict[str, Any]:
    """The device, its driver, versions and limits, as the report records them."""
    from ..version import __version__

    try:
        info = runtime.info()
    except Exception as exc:  # a report without the facts is still a report
        info = {"info_error": f"{type(exc).__name__}: {exc}"}
    facts: Dict[str, Any] = {"name": device_name(runtime), "runtime": runtime_name(runtime),
                             "runtime_class": type(runtime).__name__, "target": runtime.target.name,
                             "limits": _limits(runtime),
                             "storage": runtime.storage, "gpuconv": __version__,
                             "python": platform.python_version(), "numpy": np.__version__,
                             "platform": platform.platform()}
    driver = getattr(runtime, "driver", None)
    if driver:
        facts["driver"] = driver
    facts["info"] = _json_safe(info)
    return facts


def _progress(stream: Optional[TextIO], done: int, total: int, failed: int, warned: int, started: float,
              name: str) -> None:
    if stream is None:
        return
    if stream.isatty():
        width = 30
        filled = int(width * done / max(total, 1))
        bar = "#" * filled + "-" * (width - filled)
        stream.write(f"\r\033[Kconformance [{bar}] {done}/{total} {failed} Fail, {warned} QualityWarning, "
                     f"{time.perf_counter() - started:.0f} s  {name[:40]}")
        if done == total:
            stream.write("\n")
    else:
        every = max(1, total // 20)
        if done % every == 0 or done == total:
            stream.write(f"conformance {done}/{total}: {failed} Fail, {warned} QualityWarning, "
                         f"{time.perf_counter() - started:.0f} s\n")
    stream.flush()


def run(runtime: Optional[BaseRuntime] = None, suite: str = "full", shard: ShardLike = None, *, seed: int = 0,
        progress: Optional[TextIO] = None, only: Optional[Sequence[str]] = None) -> Report:
    """Run the conformance suite on ``runtime`` (default: this thread's, :func:`gpuconv.get_runtime`;
    any runtime object, a subclass of one included) and grade every case.

    ``suite`` is "full" or "quick"; ``shard`` ``"i/n"`` or ``(i, n)`` runs every n-th case from
    the i-th (their union is the suite); ``only`` runs the cases of these names.  ``progress``
    (a stream) gets a progress bar.  Returns a :class:`~gpuconv.conformance.report.Report`:
    ``report.counts``, ``report.to_json()``, ``report.to_html()``."""
    runtime = runtime if runtime is not None else get_runtime()
    if not isinstance(runtime, BaseRuntime):
        raise TypeError(f"runtime must be a gpuconv runtime, got {type(runtime).__name__}")
    which = parse_shard(shard) if isinstance(shard, str) else shard
    everything = cases(suite, runtime.target)
    chosen = shard_cases(everything, which)
    if only is not None:
        wanted = set(only)
        unknown = wanted - {c.name for c in everything}
        if unknown:
            raise ValueError(f"no such case in the {suite} suite: {', '.join(sorted(unknown))}")
        chosen = tuple(c for c in chosen if c.name in wanted)
    from ..version import __version__

    report = Report(suite, SUITE_VERSION, device_facts(runtime),
                    shard=None if which is None else f"{which[0]}/{which[1]}", runtime=runtime_name(runtime),
                    gpuconv_version=__version__, total_cases=len(everything))
    started = time.perf_counter()
    results: List[CaseResult] = report.results
    failed = warned = 0
    for done, case in enumerate(chosen, 1):
        outcome = run_case(case, runtime, seed)
        results.append(outcome)
        failed += outcome.verdict == FAIL
        warned += outcome.verdict == "QualityWarning"
        _progress(progress, done, len(chosen), failed, warned, started, case.name)
    report.seconds = time.perf_counter() - started
    return report

