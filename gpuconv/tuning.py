"""``algorithm="auto"`` from this device's own measurements: a tuning cache, as cuDNN's
benchmark mode (``torch.backends.cudnn.benchmark``) keeps one.

By default ``"auto"`` follows a cost rule measured on llvmpipe (the packed programs, or
im2col + matmul where :func:`gpuconv.im2col.auto_prefers_im2col` says).  Under
:func:`autotune` (or ``GPUCONV_AUTOTUNE=1``) the first ``"auto"`` call of each shape on a
device instead times every algorithm that can run it (``"packed"``, ``"im2col"``,
``"direct"``: draws on resident inputs, one warm-up each, which compiles, then
:data:`TIMED_RUNS` rounds taking turns; the median decides, and the rule's own choice stays
unless another is at least :data:`MARGIN` faster), runs the fastest, and remembers it in
``tuning-<device>.json`` in the user's cache directory (``$GPUCONV_CACHE_DIR``, else
``$XDG_CACHE_HOME/gpuconv``, else ``~/.cache/gpuconv``), so a later process on that device
skips the timing.  A call is keyed by its op, its programs' geometry and epilogue, the
storage and any GPU-resident input's layout; a device by its runtime kind, renderer, GL version and gpuconv's version.

The algorithms give the same answer with one exception, which tuning respects as the rule
does: im2col multiplies a tap on the padding (a zero) by its weight, so it is a candidate
only when every host array of the call is finite.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import statistics
import tempfile
import threading
import time
import weakref
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import numpy as np

from .plan import Plan
from .runtimes.base import BaseRuntime
from .tensor import Tensor

__all__ = ["autotune", "autotuning", "cache_dir", "cache_path", "cached_entries", "clear", "tuned_plan",
           "CANDIDATES"]

AUTOTUNE_ENV = "GPUCONV_AUTOTUNE"
CACHE_DIR_ENV = "GPUCONV_CACHE_DIR"
#: The WebGL2 target's algorithms timed against one another, in the order ties go to (a target
#: says what it times: :meth:`gpuconv.target.Target.tuning_candidates`).
CANDIDATES = ("packed", "im2col", "direct")
#: Timed runs per candidate (after one warm-up run that compiles it); the median decides.
TIMED_RUNS = 9
#: How much faster (a fraction of its time) another algorithm must measure than the one
#: ``"auto"``'s rule picks to be chosen instead.
MARGIN = 0.1
#: Bump when the meaning of a cache entry changes: older files are then ignored.
FORMAT = 1

_state = threading.local()
_lock = threading.Lock()
_caches: Dict[Path, Dict[str, Any]] = {}
_devices: "weakref.WeakKeyDictionary[BaseRuntime, str]" = weakref.WeakKeyDictionary()


def autotuning() -> bool:
    """Whether ``"auto"`` calls are tuned here: inside :func:`autotune`, or with
    ``GPUCONV_AUTOTUNE=1`` in the environment (``autotune(False)`` turns that off)."""
    value = getattr(_state, "enabled", None)
    if value is None:
        return os.environ.get(AUTOTUNE_ENV, "").strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


@contextlib.contextmanager
def autotune(enabled: bool = True) -> Iterator[None]:
    """Tune ``algorithm="auto"`` calls in this block (this thread): ``with gpuconv.autotune(): ...``.

    Each new call shape times the algorithms that can run it once on its runtime's device and
    keeps the fastest in the tuning cache (:func:`cache_path`); calls already in the cache just
    run their entry.  ``autotune(False)`` turns tuning off inside the block, even with
    ``GPUCONV_AUTOTUNE=1`` set.
    """
    if not isinstance(enabled, bool):
        raise TypeError(f"enabled must be True or False, got {type(enabled).__name__}")
    before = getattr(_state, "enabled", None)
    _state.enabled = enabled
    try:
        yield
    finally:
        _state.enabled = before


def cache_dir() -> Path:
    """Where tuning caches live: ``$GPUCONV_CACHE_DIR``, else ``$XDG_CACHE_HOME/gpuconv``, else
    ``~/.cache/gpuconv``."""
    explicit = os.environ.get(CACHE_DIR_ENV)
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "gpuconv"


def device_description(runtime: BaseRuntime) -> str:
    """What a tuning cache belongs to: the runtime kind, its renderer and GL version, gpuconv's version."""
    cached = _devices.get(runtime)
    if cached is None:  # asked once per runtime: info() may be a round trip into a page
        from .version import __version__

        info = runtime.info()
        device = info.get("renderer") or info.get("adapter")
        cached = _devices[runtime] = (f"{info.get('runtime')} | {device} | {info.get('version') or info.get('driver')}"
                                      f" | {info.get('backend')} | gpuconv {__version__}")
    return cached


def cache_path(runtime: BaseRuntime) -> Path:
    """The tuning cache file of ``runtime``'s device."""
    digest = hashlib.sha1(device_description(runtime).encode()).hexdigest()[:16]
    return cache_dir() / f"tuning-{digest}.json"


def _load(path: Path, device: str) -> Dict[str, Any]:
    with _lock:
        cache = _caches.get(path)
        if cache is None:
            cache = {"format": FORMAT, "device": device, "entries": {}}
            try:
                loaded = json.loads(path.read_text())
                if loaded.get("format") == FORMAT and loaded.get("device") == device:
                    cache = loaded
            except (OSError, ValueError, AttributeError):
                pass  # no cache yet, or an unreadable one: start afresh
            _caches[path] = cache
        return cache


def _save(path: Path, cache: Dict[str, Any]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # write whole, then rename: a reader never sees half a file
        with tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=path.name, suffix=".tmp",
                                         delete=False) as handle:
            json.dump(cache, handle, indent=1, sort_keys=True)
        os.replace(handle.name, path)
    except OSError as error:  # a read-only home still runs; it just tunes again next time
        import warnings

        warnings.warn(f"gpuconv could not write its tuning cache {path}: {error}", RuntimeWarning, stacklevel=3)


def cached_entries(path: Path) -> int:
    """How many tuned call shapes the cache file at ``path`` holds (0 when there is none)."""
    try:
        return len(json.loads(path.read_text()).get("entries", {}))
    except (OSError, ValueError, AttributeError):
        return 0


def clear(runtime: Optional[BaseRuntime] = None) -> None:
    """Forget tuned choices: ``runtime``'s device's file, or every tuning cache file."""
    with _lock:
        paths = [cache_path(runtime)] if runtime is not None else list(cache_dir().glob("tuning-*.json"))
        for path in paths:
            _caches.pop(path, None)
            with contextlib.suppress(OSError):
                path.unlink()
        if runtime is None:
            _caches.clear()


def call_key(op: str, plan: Plan) -> Tuple[str, str]:
    """A call's cache key (a digest) and a readable summary of it, from its planned programs:
    op, geometries, epilogues, storage, and how each GPU-resident input is stored."""
    parts: List[str] = [op, plan.storage]
    shapes: Dict[str, str] = {}
    for spec, arrays in plan.steps:
        parts.append(repr(getattr(spec, "geometry", None)))
        parts.append(repr(getattr(spec, "epilogue", None)))
        parts.extend(f"{name}:{value.layout!r}" for name, value in sorted(arrays.items())
                     if isinstance(value, Tensor))
        for name, value in arrays.items():
            shapes.setdefault(name, "x".join(map(str, value.shape if isinstance(value, Tensor)
                                                  else np.shape(value))))
    digest = hashlib.sha1("\n".join(parts).encode()).hexdigest()
    g = plan.specs[0].geometry if hasattr(plan.specs[0], "geometry") else None
    where = "".join(f", {label} {getattr(g, a)}x{getattr(g, b)}" for label, a, b in
                    (("strides", "stride_height", "stride_width"), ("dilations", "dilation_height", "dilation_width"))
                    if hasattr(g, a) and hasattr(g, b))
    summary = ", ".join(f"{name} {shape}" for name, shape in shapes.items())
    return digest, f"{op}: {summary}{where}, storage {plan.storage}"


def _all_finite(plan: Plan) -> bool:
    return all(np.isfinite(value).all() for _, arrays in plan.steps for value in arrays.values()
               if isinstance(value, np.ndarray))


class _Timer:
    """One candidate's runs: its host inputs uploaded once (untimed), then each run its draws
    and a finish."""

    def __init__(self, plan: Plan, runtime: BaseRuntime) -> None:
        self.plan, self.runtime = plan, runtime
        self.uploaded: Dict[int, Tuple[np.ndarray, Any]] = {}
        self.samples: List[float] = []

    def _upload(self, array: np.ndarray, layout: Any, *storage: str) -> Any:
        key = id(array)
        if key not in self.uploaded:  # the array is kept, so its id stays its own
            self.uploaded[key] = (array, self.runtime.upload(array, layout, *storage))
        return self.uploaded[key][1]

    def run(self, timed: bool = True) -> None:
        made: List[Any] = []
        start = time.perf_counter()
        try:
            self.plan.chain(self._upload, self.runtime.draw, made)
            self.runtime.finish()
        finally:
            uploads = {id(texture) for _, texture in self.uploaded.values()}
            self.runtime.free([texture for texture in made if id(texture) not in uploads])
        if timed:
            self.samples.append(time.perf_counter() - start)

    def release(self) -> None:
        self.runtime.free([texture for _, texture in self.uploaded.values()])
        self.uploaded.clear()


def _time(plans: Dict[str, Plan], runtime: BaseRuntime) -> Dict[str, float]:
    """Median seconds of each plan's draws on resident inputs: one untimed run each (which
    compiles), then :data:`TIMED_RUNS` rounds taking turns, so that a burst of load on a
    shared machine falls on every candidate alike."""
    timers = {algorithm: _Timer(plan, runtime) for algorithm, plan in plans.items()}
    try:
        for timer in timers.values():
            timer.run(timed=False)
        for _ in range(TIMED_RUNS):
            for timer in timers.values():
                timer.run()
    finally:
        for timer in timers.values():
            timer.release()
    return {algorithm: statistics.median(timer.samples) for algorithm, timer in timers.items()}


def tuned_plan(op: str, plan: Plan, make_plan: Callable[[str], Plan], runtime: BaseRuntime) -> Plan:
    """The plan an ``"auto"`` call runs on ``runtime``: ``plan`` (the cost rule's) unless
    :func:`autotuning`; then the algorithm this device's cache names for the call, timing the
    candidates first (``make_plan(algorithm)``; one refused with ``ValueError`` cannot run the
    call) when the call is new to the cache.  The cache is only read while tuning, so that
    ``"auto"`` stays the same everywhere unless a user asks for measurements."""
    if not autotuning():
        return plan
    candidates = runtime.target.tuning_candidates(plan)
    if len(candidates) < 2:
        return plan
    path = cache_path(runtime)
    cache = _load(path, device_description(runtime))
    key, summary = call_key(op, plan)
    entry = cache["entries"].get(key)
    if entry is not None and entry.get("algorithm") in candidates:
        with contextlib.suppress(ValueError):  # an entry this call cannot run: tune it again
            return make_plan(entry["algorithm"]).with_storage(plan.storage)
    plans: Dict[str, Plan] = {}
    if entry is not None:
        with contextlib.suppress(ValueError):
            return plan if entry["algorithm"] == "auto" else \
                make_plan(entry["algorithm"]).with_storage(plan.storage)
    for algorithm in candidates:
        try:
            candidate = make_plan(algorithm).with_storage(plan.storage)
        except ValueError:
            continue
        if algorithm == "im2col" and not _all_finite(candidate):
            continue  # a NaN or inf weight times a padding zero: not the answer the others give
        try:
            candidate.check_loops(runtime.max_loop_iterations)
        except ValueError:
            continue  # a program this device would cut short
        if any(candidate.specs == other.specs for other in plans.values()):
            continue  # the same programs as an earlier candidate
        plans[algorithm] = candidate
    if len(plans) < 2:
        return plan
    times = _time(plans, runtime)
    best = min(times, key=lambda algorithm: times[algorithm])
    # The rule's own choice stays unless another measured clearly faster: run-to-run noise
    # on a shared machine must not flip a call onto a program that is slower on average.
    ruled = next((algorithm for algorithm, candidate in plans.items() if candidate.specs == plan.specs), None)
    if ruled is not None and times[best] > times[ruled] * (1 - MARGIN):
        best = ruled
    with _lock:
        cache["entries"][key] = {"algorithm": best, "call": summary,
                                 "times_ms": {a: round(t * 1e3, 3) for a, t in times.items()}}
    _save(path, cache)
    return plans[best]
