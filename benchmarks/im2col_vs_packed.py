"""im2col + matmul (TF.js's default conv2d path, ``algorithm="im2col"``) against the packed
program, on bench.py's conv2d layers, draw-only (inputs resident, as bench.py's ``time_phases``).

Both algorithms are timed in the same run, alternating in rounds (llvmpipe's draw times drift
by up to 2x over a run: each round times both, and the medians are over all rounds), and one
profiled call per round gives the im2col plan's split between its two programs (GL timer
queries).  ``ratio`` = packed ms / im2col ms (above 1: im2col is faster).

Usage::

    python benchmarks/im2col_vs_packed.py             # bench.py's conv2d layers
    python benchmarks/im2col_vs_packed.py --extra     # and strided/dilated layers (EXTRA_LAYERS)
    python benchmarks/im2col_vs_packed.py --quick     # small layers, a smoke run
    python benchmarks/im2col_vs_packed.py --json out.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Dict, List

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench  # noqa: E402  (benchmarks/bench.py: its layers and its draw-only timing)

import gpuconv  # noqa: E402

#: Layers beyond bench.py's where the packed program reuses no input columns (stride or
#: dilation across > 1), which is where im2col can win: the classic strided first layers
#: (ResNet's 7x7 s2, AlexNet's 11x11 s4), a strided and a dilated 3x3 over more channels.
EXTRA_LAYERS = [
    bench.Layer("resnet conv1 7x7 s2", "conv2d", (1, 224, 224, 3), (7, 7, 3, 64), dict(padding="SAME", strides=2)),
    bench.Layer("alexnet conv1 11x11 s4", "conv2d", (1, 224, 224, 3), (11, 11, 3, 96),
                dict(padding="VALID", strides=4)),
    bench.Layer("conv3x3 s2 c32", "conv2d", (1, 56, 56, 32), (3, 3, 32, 64), dict(padding="SAME", strides=2)),
    bench.Layer("conv3x3 d2", "conv2d", (1, 64, 64, 16), (3, 3, 16, 32), dict(padding="SAME", dilations=2)),
    bench.Layer("conv5x5 s2 c8", "conv2d", (1, 112, 112, 8), (5, 5, 8, 16), dict(padding="SAME", strides=2)),
    bench.Layer("mobilenet conv1 3x3 s2", "conv2d", (1, 224, 224, 3), (3, 3, 3, 32), dict(padding="SAME", strides=2)),
    bench.Layer("conv11x11 64", "conv2d", (1, 64, 64, 3), (11, 11, 3, 16), dict(padding="SAME")),
    bench.Layer("conv1x1 c16", "conv2d", (1, 64, 64, 16), (1, 1, 16, 32), dict(padding="VALID")),
    bench.Layer("conv1x1 batch", "conv2d", (4, 28, 28, 64), (1, 1, 64, 64), dict(padding="VALID")),
]


def _layers(quick: bool, extra: bool = False) -> List["bench.Layer"]:
    layers = bench.QUICK_LAYERS if quick else bench.LAYERS
    chosen = [layer for layer in layers if layer.op == "conv2d"]
    return chosen + (EXTRA_LAYERS if extra and not quick else [])


def measure(layer: "bench.Layer", runtime, rounds: int, repeat: int) -> Dict[str, object]:
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, layer.x).astype(np.float32)
    w = rng.uniform(-1, 1, layer.filter).astype(np.float32)
    plans = {a: bench.plan_conv2d(x, w, algorithm=a, limits=runtime.limits, **layer.kwargs)
             for a in ("packed", "im2col")}
    times: Dict[str, List[float]] = {"packed": [], "im2col": []}
    split: Dict[str, List[float]] = {}
    for _ in range(rounds):
        for algorithm, plan in plans.items():
            phases = bench.time_phases(runtime, plan, repeat, draw_only=True)
            times[algorithm].append(phases["draw"])
        with gpuconv.profile(runtime) as prof:
            gpuconv.conv2d(x, w, algorithm="im2col", runtime=runtime, **layer.kwargs)
        for record in prof.records:
            split.setdefault(record.program, []).append(record.draw_ms)
    expected = gpuconv.oracle.conv2d(x, w, **layer.kwargs)
    error = max(gpuconv.oracle.relative_error(plans[a].execute(runtime), expected) for a in plans)
    packed, im2col = (statistics.median(times[a]) * 1e3 for a in ("packed", "im2col"))
    flops = 2 * plans["packed"].geometry.multiply_adds
    g = plans["packed"].geometry
    return {
        "layer": layer.name, "x": layer.x, "filter": layer.filter, "kwargs": layer.kwargs,
        "programs": " + ".join(s.name for s in plans["im2col"].specs),
        "packed_ms": packed, "packed_best_ms": min(times["packed"]) * 1e3,
        "im2col_ms": im2col, "im2col_best_ms": min(times["im2col"]) * 1e3,
        "split_ms": {name: statistics.median(v) for name, v in split.items()},
        "ratio": packed / im2col, "gflops_packed": flops / (packed * 1e6), "gflops_im2col": flops / (im2col * 1e6),
        "patch_texels": g.filter_height * g.filter_width * -(-g.in_channels // 4),
        "error": error,
    }


def table(rows: List[Dict[str, object]]) -> str:
    header = ["layer", "x -> filter", "packed ms, best", "im2col ms, best", "im2col + matmul ms (profiled)",
              "packed/im2col", "GF/s packed, im2col", "patch texels"]
    lines = []
    for r in rows:
        split = r["split_ms"]
        parts = " + ".join(f"{split[name]:.2f}" for name in ("Im2ColPackedProgram", "MatMulPackedProgram")
                           if name in split)
        lines.append([
            str(r["layer"]), f"{'x'.join(map(str, r['x']))} * {'x'.join(map(str, r['filter']))}",
            f"{r['packed_ms']:.2f}, {r['packed_best_ms']:.2f}", f"{r['im2col_ms']:.2f}, {r['im2col_best_ms']:.2f}",
            parts, f"{r['ratio']:.2f}x", f"{r['gflops_packed']:.2f}, {r['gflops_im2col']:.2f}",
            str(r["patch_texels"])])
    widths = [max(len(row[i]) for row in [header] + lines) for i in range(len(header))]
    out = ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |" for row in [header] + lines]
    out.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(out)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small layers, few runs")
    parser.add_argument("--rounds", type=int, default=None, help="rounds (each times both algorithms)")
    parser.add_argument("--repeat", type=int, default=None, help="timed runs per algorithm per round")
    parser.add_argument("--extra", action="store_true", help="also the layers of EXTRA_LAYERS (strided, dilated)")
    parser.add_argument("--layers", default=None, help="comma-separated layer names (default: every conv2d layer)")
    parser.add_argument("--json", default=None, help="write the rows to this file")
    args = parser.parse_args(argv)
    rounds = args.rounds or (1 if args.quick else 5)
    repeat = args.repeat or (3 if args.quick else 7)
    runtime = gpuconv.get_runtime()
    layers = _layers(args.quick, args.extra or bool(args.layers))
    if args.layers:
        wanted = {name.strip() for name in args.layers.split(",")}
        layers = [layer for layer in layers if layer.name in wanted]
    rows = []
    for layer in layers:
        rows.append(measure(layer, runtime, rounds, repeat))
        print(f"{layer.name}: packed {rows[-1]['packed_ms']:.2f} ms, im2col {rows[-1]['im2col_ms']:.2f} ms",
              file=sys.stderr, flush=True)
    print(f"{runtime.info().get('renderer')}; draw-only medians of {rounds} rounds x {repeat} runs "
          f"(5 warm-ups each), alternating")
    print(table(rows))
    print(f"largest error vs the oracle: {max(float(r['error']) for r in rows):.2g}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
