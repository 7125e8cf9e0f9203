"""``gpuconv selftest``, ``random`` and ``demo``: generated convolutions on the GPU, checked against the oracle."""

from __future__ import annotations

import sys

from .. import checks
from ..checks import SELFTEST_CASES
from .backend import backend_kind, open_runtime, runtime_options
from .common import (
    DEFAULT_TOLERANCE,
    EXIT_FAILED,
    EXIT_OK,
    FLOAT16_TOLERANCE,
    AddCommand,
    Args,
    UsageError,
    tolerance_for,
)
from .options import add_runtime_options, positive_float

_TOLERANCE_HELP = (f"largest relative error accepted (default {DEFAULT_TOLERANCE:g}; "
                   f"{FLOAT16_TOLERANCE:g} with --storage float16)")


def add_selftest_command(add: AddCommand) -> None:
    p = add("selftest", "run a fixed matrix of convolutions and compare with the oracle",
            f"Run {len(SELFTEST_CASES)} convolutions (every op, input depths 1-9, strides, dilations, "
            f"every padding form, every data format, batches 1 and 3, grouped, fused) on the GPU "
            f"with seeded random data in [-1, 1], compare each with "
            f"the float64 oracle and print a table. Exits 1 if any fails.",
            "gpuconv selftest --quick", cmd_selftest)
    p.add_argument("--quick", action="store_true",
                   help=f"run only {sum(c.quick for c in SELFTEST_CASES)} of the cases")
    p.add_argument("--seed", type=int, default=0, help="seed of the random data (default 0)")
    p.add_argument("--tolerance", type=positive_float, default=None, metavar="T", help=_TOLERANCE_HELP)
    add_runtime_options(p)


def add_random_command(add: AddCommand) -> None:
    p = add("random", "run seeded random configurations and compare with the oracle",
            "Draw COUNT valid configurations at random (every op and argument: shapes with every "
            "input depth mod 4, strides, dilations, every padding form and rounding mode, every data "
            "format, rank-3 inputs, groups, multipliers, fused bias and activations, algorithm=, float16/32/64) "
            "from --seed, run each on the GPU and in the float64 oracle, and compare. Progress goes "
            "to stderr; each failure is printed with its configuration and the command that repeats "
            "it (with every option that changes the outcome). Exits 1 if any fails.",
            "gpuconv random --count 200 --seed 0", cmd_random)
    p.add_argument("--count", type=int, default=200, metavar="N", help="how many configurations (default 200)")
    p.add_argument("--seed", type=int, default=0, help="seed of the configurations and data (default 0)")
    p.add_argument("--start", type=int, default=0, metavar="I",
                   help="index of the first configuration (to repeat one: --start I --count 1)")
    p.add_argument("--tolerance", type=positive_float, default=None, metavar="T", help=_TOLERANCE_HELP)
    p.add_argument("--verbose", action="store_true", help="print every configuration, not only failures")
    p.add_argument("--compare-native", action="store_true",
                   help="with --backend browser or webgpu: run each configuration on a native (WebGL2) "
                        "runtime too and report the largest difference between the two")
    add_runtime_options(p)


def add_demo_command(add: AddCommand) -> None:
    p = add("demo", "run one real convolution, timed and checked",
            "Run a 3x3 convolution of a 1x64x64x16 input to 32 channels (SAME, stride 1) on the "
            "default headless GPU, time it and check it against the float64 oracle.",
            "gpuconv demo", cmd_demo)
    p.add_argument("--seed", type=int, default=0, help="seed of the random data (default 0)")
    p.add_argument("--tolerance", type=positive_float, default=None, metavar="T", help=_TOLERANCE_HELP)
    add_runtime_options(p, limits=False)


def cmd_selftest(args: Args) -> int:
    cases = [c for c in SELFTEST_CASES if c.quick or not args.quick]
    with open_runtime(args) as runtime:
        report = checks.run_selftest(cases, args.seed, tolerance_for(args, args.tolerance), runtime,
                                     progress=sys.stderr)
    print(report.table())
    print(report.summary())
    return EXIT_FAILED if report.failed else EXIT_OK


def cmd_random(args: Args) -> int:
    if args.count < 1 or args.start < 0:
        raise UsageError(f"--count must be positive and --start non-negative, got --count {args.count} "
                         f"--start {args.start}")
    if args.compare_native and backend_kind(args) == "native":
        raise UsageError("--compare-native is only used with --backend browser or webgpu, got --backend native")
    options = runtime_options(args) + (["--compare-native"] if args.compare_native else [])
    with open_runtime(args) as runtime:
        other = open_runtime(args, "native") if args.compare_native else None
        try:
            report = checks.run_many(args.count, args.seed, tolerance_for(args, args.tolerance), start=args.start,
                                     runtime=runtime,
                                     other=other, repeat_options=options, verbose=args.verbose,
                                     progress=sys.stderr, out=sys.stdout)
        finally:
            if other is not None:
                other.release()
    print(report.summary())
    return EXIT_FAILED if report.failed else EXIT_OK


def cmd_demo(args: Args) -> int:
    with open_runtime(args) as runtime:
        lines, ok = checks.run_demo(runtime, args.seed, tolerance_for(args, args.tolerance))
    for line in lines:
        print(line)
    return EXIT_OK if ok else EXIT_FAILED
