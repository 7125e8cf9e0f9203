"""The GL object-lifetime check: many calls over changing shapes leave nothing behind.

:func:`lifetime` cycles a few random configurations (:func:`gpuconv.checks.random_config`)
many times through a :class:`~gpuconv.NativeRuntime` whose context is wrapped in a
:class:`CountingContext` (which counts GL objects created and released) and reports
live GL objects, cached programs and the process's resident memory::

    python -m gpuconv.lifetime --lifetime 10000
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, TextIO, Tuple

import numpy as np

from . import registry
from .checks import OP_WEIGHTS, Config, random_config
from .runtimes import NativeRuntime, get_runtime


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

    _ctx: Any
    created: Counter
    released: Counter

    def __init__(self, ctx: Any) -> None:
        object.__setattr__(self, "_ctx", ctx)
        object.__setattr__(self, "created", Counter())
        object.__setattr__(self, "released", Counter())

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._ctx, name)
        if name in self.KINDS and callable(value):
            return self._counting(name, value)
        return value

    def __setattr__(self, name: str, value: Any) -> None:  # viewport, blend state, ...: the real context's
        setattr(self._ctx, name, value)

    def __enter__(self) -> Any:
        return self._ctx.__enter__()

    def __exit__(self, *exc: Any) -> Any:
        return self._ctx.__exit__(*exc)

    def _counting(self, kind: str, make: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            obj = make(*args, **kwargs)
            self.created[kind] += 1
            release = obj.release
            done: List[bool] = []

            def counted_release(*a: Any, **k: Any) -> Any:
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
    pooled_textures: int = 0   # freed textures the runtime kept for reuse at the end (live by design)
    pooled_bytes: int = 0
    pool_limit: int = 0        # the runtime's POOL_BYTES

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
            f"  pooled textures at the end: {self.pooled_textures} ({self.pooled_bytes / mib:.1f} MiB of at most "
            f"{self.pool_limit / mib:.0f} MiB)",
            f"  cached programs: {self.cached_programs} (cache size {self.cache_size}); live GL objects "
            f"after Runtime.release(): {self.live_after_release or 'none'}",
        ]


def lifetime_configs(count: int = 20, seed: int = 0) -> List[Config]:
    """``count`` configurations cycling through every op (NCHW, grouped, fused, ... as drawn)."""
    rng = np.random.default_rng([seed, 10 ** 6])
    names = list(OP_WEIGHTS)
    return [random_config(rng, names[i % len(names)]) for i in range(count)]


def lifetime(calls: int = 10000, configs: Sequence[Config] = (), *, context: Any = None,
             check: Optional[Callable[[NativeRuntime, CountingContext], None]] = None,
             every: int = 0, cache_size: Optional[int] = None,
             progress: Optional[TextIO] = None) -> LifetimeReport:
    """Make ``calls`` calls cycling over ``configs`` through a counting runtime.

    ``context`` is the moderngl context to wrap (default: this thread's default
    runtime's, so no second context is made current).  ``check(runtime, counter)``
    runs after every ``every``-th call.  ``cache_size`` overrides the runtime's
    ``PROGRAM_CACHE_SIZE``.  The runtime's programs are released at the end.
    """
    configs = list(configs) or lifetime_configs()
    if context is None:
        default = get_runtime()
        if not isinstance(default, NativeRuntime):
            raise TypeError(f"the lifetime check counts GL objects of a native runtime, but this thread's "
                            f"default runtime is a {type(default).__name__}; pass context=")
        context = default.ctx
    counter = CountingContext(context)
    runtime = NativeRuntime(counter)
    if cache_size is not None:
        runtime.PROGRAM_CACHE_SIZE = cache_size
    prepared = []
    for config in configs:
        arrays, fused = config.arrays()
        prepared.append((registry.get(config.op).gpu, arrays, dict(config.kwargs, **fused)))
    peak: Counter = Counter()
    live_start: Dict[str, int] = {}
    rss_start, rss_before = 0, resident_bytes()
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
        cached_programs = runtime.info().get("cached_programs", 0)
        cached = cached_programs if isinstance(cached_programs, int) else 0
        pooled, pooled_bytes = runtime.pooled_textures, runtime.pooled_bytes
    finally:
        runtime.release()
    if not rss_start:
        live_start, rss_start = live_end, rss_end
    return LifetimeReport(calls, len(configs), seconds, rss_start, rss_end, live_start, live_end, dict(peak),
                          dict(counter.created), dict(counter.released), cached, runtime.PROGRAM_CACHE_SIZE,
                          counter.live(), rss_before, pooled, pooled_bytes, runtime.POOL_BYTES)


@dataclass
class TensorLifetimeReport:
    """:func:`tensor_lifetime`'s numbers: GL objects (as :class:`LifetimeReport`) and what
    :func:`gpuconv.memory` counts, after the first pass and at the end."""

    calls: int
    seconds: float
    live_start: Dict[str, int]
    live_end: Dict[str, int]
    memory_start: Dict[str, int]
    memory_end: Dict[str, int]
    rss_start: int
    rss_end: int
    live_after_release: Dict[str, int] = field(default_factory=dict)

    @property
    def flat(self) -> bool:
        return self.live_start == self.live_end and self.memory_start == self.memory_end

    def lines(self) -> List[str]:
        mib = 1 << 20
        return [
            f"tensor lifetime: {self.calls} op calls on Tensors in {self.seconds:.1f} s "
            f"({self.seconds / max(self.calls, 1) * 1e3:.2f} ms per call)",
            f"  gpuconv.memory(): {self.memory_start} after the first pass, {self.memory_end} at the end",
            f"  live GL objects: {self.live_start} after the first pass, {self.live_end} at the end; after "
            f"Runtime.release(): {self.live_after_release or 'none'}",
            f"  RSS: {self.rss_start / mib:.1f} MiB after the first pass, {self.rss_end / mib:.1f} MiB at the end",
        ]


def tensor_lifetime(calls: int = 10000, *, context: Any = None, progress: Optional[TextIO] = None,
                    seed: int = 0) -> TensorLifetimeReport:
    """``calls`` op calls on :class:`~gpuconv.Tensor` s through a counting runtime: a chain over
    a few shapes (both data formats) of a packed conv2d, a direct depthwise (a conversion on the
    GPU), a packed 1x1 conv2d (reading the split outputs in place) and a direct conv2d, each
    input released once the next op has read it; the weights are uploaded Tensors, kept."""
    from . import ops
    from .device import memory, to_gpu

    if context is None:
        default = get_runtime()
        if not isinstance(default, NativeRuntime):
            raise TypeError(f"the lifetime check counts GL objects of a native runtime, but this thread's "
                            f"default runtime is a {type(default).__name__}; pass context=")
        context = default.ctx
    counter = CountingContext(context)
    runtime = NativeRuntime(counter)
    rng = np.random.default_rng(seed)
    chains: List[Tuple[Any, str, List[Any]]] = []  # each chain's current Tensor, data format, weights
    for shape, data_format in (((1, 12, 12, 4), "NHWC"), ((2, 4, 9, 7), "NCHW"), ((1, 20, 6, 3), "NHWC")):
        c = shape[3] if data_format == "NHWC" else shape[1]
        weights = [to_gpu(rng.standard_normal(s).astype(np.float32) * 0.3, runtime)
                   for s in ((3, 3, c, 8), (3, 3, 8, 1), (1, 1, 8, 8), (3, 3, 8, c))]
        chains.append((to_gpu(rng.standard_normal(shape).astype(np.float32), runtime), data_format, weights))
    steps = [
        lambda x, f, w: ops.conv2d(x, w[0], padding="SAME", data_format=f, activation="relu6", algorithm="packed"),
        lambda x, f, w: ops.depthwise_conv2d(x, w[1], padding="SAME", data_format=f, algorithm="direct"),
        lambda x, f, w: ops.conv2d(x, w[2], data_format=f, activation="relu6", algorithm="packed"),
        lambda x, f, w: ops.conv2d(x, w[3], padding="SAME", data_format=f, activation="relu6", algorithm="direct"),
    ]
    first_pass = len(steps) * len(chains)
    live_start: Dict[str, int] = {}
    memory_start: Dict[str, int] = {}
    rss_start = 0
    started = time.perf_counter()
    try:
        for call in range(calls):
            index = call // len(steps) % len(chains)
            x, data_format, weights = chains[index]
            y = steps[call % len(steps)](x, data_format, weights)
            x.release()
            chains[index] = (y, data_format, weights)
            if call + 1 == first_pass:
                live_start, memory_start, rss_start = counter.live(), memory(runtime), resident_bytes()
            if progress is not None and (call + 1) % max(1, calls // 10) == 0:
                progress.write(f"tensor lifetime [{call + 1}/{calls}] memory {memory(runtime)}, "
                               f"live {counter.live()}\n")
                progress.flush()
        seconds = time.perf_counter() - started
        live_end, memory_end, rss_end = counter.live(), memory(runtime), resident_bytes()
        if not memory_start:
            live_start, memory_start, rss_start = live_end, memory_end, rss_end
        for x, _, weights in chains:
            for tensor in [x, *weights]:
                tensor.release()
    finally:
        runtime.release()
    return TensorLifetimeReport(calls, seconds, live_start, live_end, memory_start, memory_end, rss_start,
                                rss_end, counter.live())


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m gpuconv.lifetime",
        description="A resource-lifetime run: make CALLS calls cycling over a few random configurations "
                    "and print live GL objects, cached programs and the process's memory; exits 1 if "
                    "live objects changed after the first pass or the memory grew by more than 64 MiB.",
        epilog="example:\n  python -m gpuconv.lifetime --lifetime 10000",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lifetime", type=int, default=10000, metavar="CALLS",
                        help="how many calls (default 10000)")
    parser.add_argument("--configs", type=int, default=20, help="configurations the run cycles over (default 20)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the configurations (default 0)")
    parser.add_argument("--tensors", action="store_true",
                        help="chain the calls on gpuconv Tensors (results kept on the GPU, inputs released) and "
                             "check gpuconv.memory() too; exits 1 unless it and the live objects stay flat")
    args = parser.parse_args(argv)
    if args.lifetime < 1 or args.configs < 1:
        parser.error(f"--lifetime and --configs must be positive, got {args.lifetime} and {args.configs}")
    if args.tensors:
        tensor_report = tensor_lifetime(args.lifetime, progress=sys.stderr, seed=args.seed)
        for line in tensor_report.lines():
            print(line)
        print("tensor lifetime: " + ("flat" if tensor_report.flat else "FAIL: memory or live objects changed"))
        return 0 if tensor_report.flat else 1
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
