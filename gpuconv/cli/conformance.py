"""``gpuconv conformance``: the versioned conformance suite on one runtime, graded case by case."""

from __future__ import annotations

import os
import sys

from .. import conformance
from ..runtimes import BaseRuntime, make_runtime
from ..runtimes.worker import DRIVERS
from ..target import TARGETS
from .backend import backend_kind, limit_kwargs, open_runtime
from .common import EXIT_FAILED, EXIT_OK, AddCommand, Args, UsageError
from .options import add_runtime_options, lower


def add_conformance_command(add: AddCommand) -> None:
    p = add("conformance", "run the conformance suite: can this device be trusted with these convolutions?",
            "Run the versioned conformance suite (every op and algorithm of the runtime's target, every "
            "input-depth remainder, stride, dilation, padding form, data format, batch, group and fused "
            "epilogue; textures at the device's limits, long narrow textures, long reductions, values near "
            "float16's range, signed zeros, denormals, NaN/inf, half-float storage) and grade each result "
            "element by element against two bounds derived from the data: Pass within the expected bound, "
            "QualityWarning within the rigorous one, Fail beyond it (or NaN/inf where the oracle has none), "
            "NotSupported where the device lacks a feature. Prints a summary table; exits 1 when a case "
            "fails (a QualityWarning does not fail the run).",
            "gpuconv conformance --quick --shard 2/4 --json report.json", cmd_conformance)
    p.add_argument("--quick", action="store_true", help="the quick subset (under a minute on llvmpipe)")
    p.add_argument("--shard", default=None, metavar="I/N",
                   help="run shard I of N (every N-th case from the I-th; the shards together are the suite)")
    p.add_argument("--json", default=None, metavar="FILE", help="write the JSON report to FILE")
    p.add_argument("--html", default=None, metavar="FILE", help="write the HTML report to FILE")
    p.add_argument("--case", action="append", default=None, metavar="NAME",
                   help="run only the case NAME (repeatable)")
    p.add_argument("--list", action="store_true", help="list the suite's cases and exit")
    p.add_argument("--seed", type=int, default=0, help="seed of the cases' data (default 0)")
    p.add_argument("--driver", type=lower, choices=tuple(DRIVERS), default=None,
                   help="with --backend native: open Mesa's driver NAME in a worker process (softpipe, zink on "
                        "lavapipe, llvmpipe), its environment set before EGL opens")
    p.add_argument("--verbose", action="store_true", help="print every case's line, not only those that did "
                                                          "not pass")
    add_runtime_options(p)


def _conformance_runtime(args: Args) -> BaseRuntime:
    if args.driver is None:
        return open_runtime(args)
    if backend_kind(args) != "native":
        raise UsageError(f"--driver is for --backend native (a Mesa driver), not --backend {backend_kind(args)}")
    storage = {"storage": args.storage} if args.storage else {}
    return make_runtime("native", gl=args.gl, driver=args.driver, **limit_kwargs(args), **storage)


def cmd_conformance(args: Args) -> int:
    suite = "quick" if args.quick else "full"
    shard = conformance.parse_shard(args.shard) if args.shard else None
    if args.list:
        target = TARGETS["webgpu" if "webgpu" in (backend_kind(args), args.api) else "webgl2"]
        chosen = conformance.shard(conformance.cases(suite, target), shard)
        for case in chosen:
            print(f"{case.name}  [{case.group}]  {case.describe()}")
        print(f"{len(chosen)} cases", file=sys.stderr)
        return EXIT_OK
    for option in ("json", "html"):
        path = getattr(args, option)
        if path and os.path.isdir(path):
            raise UsageError(f"--{option}: cannot write {path!r}: it is a directory")
    with _conformance_runtime(args) as runtime:
        report = conformance.run(runtime, suite=suite, shard=shard, seed=args.seed, only=args.case,
                                 progress=sys.stderr)
    print(report.summary_table())
    if args.verbose:
        for r in report.results:
            print(f"{r.verdict:<14} {r.name}  ({(r.grade or {}).get('ratio_expected', '-')})")
    details = report.details()
    if details:
        print(details)
    print(report.summary())
    if args.json:
        with open(args.json, "w", encoding="utf-8") as stream:
            stream.write(report.to_json())
    if args.html:
        with open(args.html, "w", encoding="utf-8") as stream:
            stream.write(report.to_html())
    return EXIT_FAILED if report.failed else EXIT_OK
