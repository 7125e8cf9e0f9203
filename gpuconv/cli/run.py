"""``gpuconv run``: an op on .npy files on the GPU, optionally checked against the oracle and timed."""

from __future__ import annotations

import contextlib
import os
import statistics
import time
from typing import Any, Callable, Dict

import numpy as np

from .. import checks
from ..profiler import profile
from ..programs import shape_text
from ..registry import OPS
from ..runtimes import BaseRuntime
from ..tuning import autotune
from .backend import open_runtime
from .common import (
    DEFAULT_TOLERANCE,
    EXIT_FAILED,
    EXIT_OK,
    AddCommand,
    Args,
    UsageError,
    load_npy,
    load_optional_npy,
    ms,
    ops_with,
    save_npy,
    tolerance_for,
)
from .options import (
    OPS_HELP,
    add_conv_options,
    add_leading_options,
    add_runtime_options,
    algorithm_kwargs,
    check_fused_options,
    conv_kwargs,
    leading_values,
    positive_float,
)


def add_run_command(add: AddCommand) -> None:
    p = add("run", "run an op on .npy files on the GPU",
            "Run OP on the GPU on arrays from .npy files and save the float32 result.\n"
            "--check also runs the float64 NumPy oracle and exits 1 if the error relative to the "
            "output's largest magnitude exceeds --tolerance; it also says how many NaN and infinite "
            "values the output holds and whether the oracle has them at the same positions.",
            "gpuconv run conv2d --input x.npy --filter w.npy --padding same --output y.npy --check",
            cmd_run)
    p.add_argument("op", choices=list(OPS), metavar="OP", help=f"one of: {OPS_HELP}")
    add_leading_options(p, "FILE.npy")
    add_conv_options(p)
    p.add_argument("--bias", metavar="B.npy",
                   help=f"fused bias: one value per output channel, or any shape that broadcasts to the "
                        f"output, a scalar included ({ops_with('fused')})")
    p.add_argument("--residual", metavar="R.npy",
                   help=f"fused residual: an array of the output's shape, added after the bias and before "
                        f"the activation, as a ResNet or MobileNetV2 skip connection ({ops_with('fused')})")
    p.add_argument("--prelu-weights", metavar="P.npy", help="weights for --activation prelu")
    p.add_argument("--output", metavar="Y.npy", help="save the float32 result in this file (numpy.save)")
    p.add_argument("--check", action="store_true", help="compare with the float64 oracle")
    p.add_argument("--repeat", type=int, default=0, metavar="N",
                   help="after the first call, time N more (warm) calls and print their median, "
                        "the draw time of each program (gpuconv.profile) and GFLOP/s")
    p.add_argument("--autotune", action="store_true",
                   help="with --algorithm auto (the default): time the algorithms that can run this call "
                        "on this device once, run the fastest and keep the choice in the tuning cache "
                        "(gpuconv.autotune; the cache is in $GPUCONV_CACHE_DIR or ~/.cache/gpuconv)")
    p.add_argument("--tolerance", type=positive_float, default=None, metavar="T",
                   help=f"largest relative error --check accepts (default {DEFAULT_TOLERANCE:g}); "
                        f"only with --check")
    add_runtime_options(p)


def cmd_run(args: Args) -> int:
    entry = OPS[args.op]
    conv = conv_kwargs(args)
    check_fused_options(args)
    if args.tolerance is not None and not args.check:
        raise UsageError("--tolerance is only used with --check")
    tolerance = tolerance_for(args, args.tolerance)
    if args.repeat < 0:
        raise UsageError(f"--repeat must be 0 or more, got {args.repeat}")
    if args.output and os.path.isdir(args.output):  # before any work: np.save would write DIR.npy
        raise UsageError(f"--output: cannot write {args.output!r}: it is a directory "
                         f"(give a file name, e.g. {os.path.join(args.output, 'y.npy')!r})")
    algorithm = algorithm_kwargs(args, "auto")
    if args.autotune and algorithm.get("algorithm") != "auto":
        raise UsageError(f"--autotune tunes --algorithm auto; got --algorithm {args.algorithm}"
                         if algorithm else f"--autotune: {args.op} runs its direct program only")
    values = leading_values(args, load_npy)
    arrays = entry.positional(values)
    fused: Dict[str, Any] = {}
    if entry.fused:
        fused = dict(bias=load_optional_npy(args.bias, "--bias"),
                     residual=load_optional_npy(args.residual, "--residual"),
                     activation=args.activation,
                     leakyrelu_alpha=args.leakyrelu_alpha,
                     prelu_weights=load_optional_npy(args.prelu_weights, "--prelu-weights"))
    def call() -> np.ndarray:
        with autotune() if args.autotune else contextlib.nullcontext():
            return np.asarray(entry.gpu(*arrays, **conv, **fused, **algorithm, runtime=runtime))

    with open_runtime(args) as runtime:
        start = time.perf_counter()
        y = call()
        gpu_s = time.perf_counter() - start
        repeat_line = _repeat(call, runtime, args.repeat) if args.repeat else ""
    y = np.asarray(y, dtype=np.float32)
    if args.output:
        save_npy(args.output, y)
    saved = f" -> {args.output}" if args.output else " (not saved: use --output)"
    if entry.signature:  # name each leading argument
        given = ", ".join(f"{name} {shape_text(values[name] if name == entry.shape_argument else values[name].shape)}"
                          for name in entry.leading)
    else:
        filters = " then ".join(shape_text(values[name].shape) for name in entry.filters)
        given = f"x {shape_text(values['x'].shape)}, filter {filters}"
    print(f"{args.op}: {given} -> {shape_text(y.shape)} "
          f"float32 in {ms(gpu_s)} on the GPU (first call: includes compiling the program){saved}")
    if repeat_line:
        print(repeat_line)
    if not args.check:
        return EXIT_OK
    start = time.perf_counter()
    expected = entry.oracle(*arrays, **conv, **fused)
    oracle_s = time.perf_counter() - start
    result = checks.check_result(y, expected, tolerance)
    if result.specials:
        print(f"check: {result.specials}")
    print(f"check: max abs error {result.max_abs:.3g}, relative {result.relative:.3g} (tolerance {tolerance:g}; "
          f"oracle {ms(oracle_s)}): {'PASS' if result.ok else 'FAIL'}")
    return EXIT_OK if result.ok else EXIT_FAILED


def _repeat(call: Callable[[], Any], runtime: BaseRuntime, count: int) -> str:
    """``count`` warm calls: their median and best time, then one profiled call's draw times."""
    seconds = []
    for _ in range(count):
        start = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - start)
    with profile(runtime) as prof:
        call()
    flops = sum(record.flops for record in prof.records)
    draw_ms = sum(record.draw_ms for record in prof.records)
    median = statistics.median(seconds)
    programs = ", ".join(f"{r.program} {r.draw_ms:.2f} ms" for r in prof.records)
    return (f"repeat: {count} warm calls, median {ms(median)} (best {ms(min(seconds))}), "
            f"{flops / median / 1e9:.2f} GFLOP/s per call (upload and read-back included); "
            f"draw {draw_ms:.2f} ms = {flops / (draw_ms * 1e6) if draw_ms else float('nan'):.2f} GFLOP/s "
            f"({programs}; {prof.records[0].draw_timing if prof.records else '-'})")
