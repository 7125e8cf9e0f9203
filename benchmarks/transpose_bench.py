"""conv2d_transpose on WebGL2: the packed program (PackedConv2DDerInputProgram) against the matrix
multiply + col2im (MatMulPackedProgram, then Col2ImProgram), on decoder / upsampling layers.

Each layer's plans are drawn on inputs already in textures (``bench._Resident``), taking turns in
one process (``--rounds`` rounds after 3 warm-ups each), so that load from other processes hits
both alike; prints the median draw time, GFLOP/s (2 * multiply-adds / median) and the ratio
packed / matmul + col2im (above 1: the matrix multiply is faster), and what ``algorithm="auto"``
runs (``gpuconv.im2col.auto_prefers_transpose_matmul``).

Usage::

    python benchmarks/transpose_bench.py                       # every layer, packed vs im2col
    python benchmarks/transpose_bench.py --algorithms packed,im2col,auto   # and what auto runs
    python benchmarks/transpose_bench.py --algorithms direct,packed,im2col --layers "s2"
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import _Resident  # noqa: E402

from gpuconv.ops import plan_conv2d_transpose  # noqa: E402
from gpuconv.runtimes import get_runtime  # noqa: E402

# name: (x shape, filter [FH, FW, outC, inC], output shape, strides, padding)
LAYERS = {
    "3x3 s1 10x10x256->256": ((1, 10, 10, 256), (3, 3, 256, 256), (1, 10, 10, 256), 1, "SAME"),
    "3x3 s1 7x7x512->512": ((1, 7, 7, 512), (3, 3, 512, 512), (1, 7, 7, 512), 1, "SAME"),
    "3x3 s1 14x14x64->64": ((1, 14, 14, 64), (3, 3, 64, 64), (1, 14, 14, 64), 1, "SAME"),
    "3x3 s1 56x56x32->32": ((1, 56, 56, 32), (3, 3, 32, 32), (1, 56, 56, 32), 1, "SAME"),
    "3x3 s1 16x16x16->16": ((1, 16, 16, 16), (3, 3, 16, 16), (1, 16, 16, 16), 1, "SAME"),
    "4x4 s2 14x14x256->128": ((1, 14, 14, 256), (4, 4, 128, 256), (1, 28, 28, 128), 2, "SAME"),
    "4x4 s2 32x32x64->3": ((1, 32, 32, 64), (4, 4, 3, 64), (1, 64, 64, 3), 2, "SAME"),
    "3x3 s2 28x28x128->64": ((1, 28, 28, 128), (3, 3, 64, 128), (1, 56, 56, 64), 2, "SAME"),
    "3x3 s2 32x32x8->8": ((1, 32, 32, 8), (3, 3, 8, 8), (1, 64, 64, 8), 2, "SAME"),
    "5x5 s2 16x16x128->64": ((1, 16, 16, 128), (5, 5, 64, 128), (1, 32, 32, 64), 2, "SAME"),
    "2x2 s2 28x28x128->64": ((1, 28, 28, 128), (2, 2, 64, 128), (1, 56, 56, 64), 2, "VALID"),
    "2x2 s2 14x14x256->128": ((1, 14, 14, 256), (2, 2, 128, 256), (1, 28, 28, 128), 2, "VALID"),
    "2x2 s2 32x32x16->8": ((1, 32, 32, 16), (2, 2, 8, 16), (1, 64, 64, 8), 2, "VALID"),
    "2x2 s2 32x32x64->32": ((1, 32, 32, 64), (2, 2, 32, 64), (1, 64, 64, 32), 2, "VALID"),
    "3x3 s2 32x32x32->32": ((1, 32, 32, 32), (3, 3, 32, 32), (1, 64, 64, 32), 2, "SAME"),
    "4x4 s2 2x16x16x32->16": ((2, 16, 16, 32), (4, 4, 16, 32), (2, 32, 32, 16), 2, "SAME"),
    "3x3 s2 8x8x4->4": ((1, 8, 8, 4), (3, 3, 4, 4), (1, 16, 16, 4), 2, "SAME"),
}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--algorithms", default="packed,im2col", help="comma-separated; default packed,im2col")
    parser.add_argument("--layers", default="", help="comma-separated substrings of the layer names to run")
    parser.add_argument("--rounds", type=int, default=7, help="timed rounds (median); default 7")
    args = parser.parse_args(argv)
    algorithms = args.algorithms.split(",")
    wanted = [s for s in args.layers.split(",") if s]
    runtime = get_runtime()
    rng = np.random.default_rng(0)
    header = ["layer"] + [f"{a} ms (GFLOP/s)" for a in algorithms] + ["auto runs"]
    if "packed" in algorithms and "im2col" in algorithms:
        header.insert(-1, "packed / im2col")
    print("| " + " | ".join(header) + " |\n|" + "---|" * len(header), flush=True)
    for name, (x_shape, filter_shape, out_shape, strides, padding) in LAYERS.items():
        if wanted and not any(s in name for s in wanted):
            continue
        x = rng.standard_normal(x_shape).astype(np.float32)
        w = rng.standard_normal(filter_shape).astype(np.float32)
        flops = 0
        draws, times = {}, {a: [] for a in algorithms}
        for algorithm in algorithms:
            plan = plan_conv2d_transpose(x, w, out_shape, strides, padding, algorithm=algorithm,
                                         limits=runtime.limits)
            flops = 2 * plan.geometry.multiply_adds
            resident = _Resident(runtime, plan)

            def draw(resident=resident):
                _, made = resident.chain(runtime.draw)
                runtime.finish()
                runtime.free(made)

            for _ in range(3):
                draw()
            draws[algorithm] = draw
        for _ in range(args.rounds):
            for algorithm in algorithms:
                start = time.perf_counter()
                draws[algorithm]()
                times[algorithm].append(time.perf_counter() - start)
        medians = {a: statistics.median(t) for a, t in times.items()}
        row = [name] + [f"{medians[a] * 1e3:.1f} ({flops / medians[a] / 1e9:.2f})" for a in algorithms]
        if "packed" in algorithms and "im2col" in algorithms:
            row.append(f"{medians['packed'] / medians['im2col']:.2f}x")
        auto = plan_conv2d_transpose(x_shape, filter_shape, out_shape, strides, padding, algorithm="auto",
                                     shapes_only=True)
        row.append(" + ".join(spec.name for spec in auto.specs))
        print("| " + " | ".join(row) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
