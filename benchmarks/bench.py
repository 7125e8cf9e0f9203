"""gpuconv benchmark: the direct TF.js-style programs, the packed fast path and NumPy baselines.

Prints one table over a fixed set of layers, each timed warm (median of
``--repeat`` runs after a warm-up) on the current GL device:

* ``direct`` / ``packed``: draw-only time with the inputs already in textures
  (what TF.js's own timings measure): the median and the best run, and GFLOP/s =
  2 * multiply-adds / median time (llvmpipe's draw times vary by up to 2x run to run);
* ``call``: a whole ``gpuconv`` call on the fast path, split into upload, draw
  and read-back;
* ``cold``: the first call of the layer in this run (a compile when its program
  family is new to the process), and ``new shape``: a call on a shape not seen
  before (input 2 rows and 2 columns larger) once the family is compiled, as a
  multiple of the warm call;
* ``oracle f64``: gpuconv.oracle's vectorised float64 convolution;
* ``numpy f32``: the float32 im2col + BLAS matmul a NumPy user would write
  (the honest baseline on a CPU machine: llvmpipe runs shaders on the same cores);
* ratios of the packed path to each baseline, and to TF.js 4.22's default packed
  path as quoted in issue 6 (measured on a machine like this one, draw-only).

Usage::

    python benchmarks/bench.py                 # the table
    python benchmarks/bench.py --json out.json --png out.png
    python benchmarks/bench.py --quick         # a smoke run on small layers
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

import gpuconv
from gpuconv.ops import plan_conv2d, plan_separable_conv2d


@dataclass
class Layer:
    name: str
    op: str                   # conv2d | depthwise_conv2d | separable_conv2d
    x: tuple
    filter: tuple
    kwargs: dict = field(default_factory=dict)
    pointwise: Optional[tuple] = None
    tfjs_ms: Optional[float] = None  # TF.js default packed path, draw-only, quoted in issue 6


LAYERS = [
    Layer("conv3x3", "conv2d", (1, 64, 64, 16), (3, 3, 16, 32), dict(padding="SAME"), tfjs_ms=19),
    Layer("conv3x3 s2", "conv2d", (1, 128, 128, 3), (3, 3, 3, 16), dict(padding="SAME", strides=2)),
    Layer("conv3x3 batch", "conv2d", (4, 32, 32, 64), (3, 3, 64, 64), dict(padding="SAME"), tfjs_ms=71),
    Layer("conv1x1", "conv2d", (1, 56, 56, 128), (1, 1, 128, 128), dict(padding="VALID"), tfjs_ms=14),
    Layer("dw3x3", "depthwise_conv2d", (1, 112, 112, 32), (3, 3, 32, 1), dict(padding="SAME"), tfjs_ms=3.8),
    Layer("dw3x3 m2 s2", "depthwise_conv2d", (1, 56, 56, 64), (3, 3, 64, 2), dict(padding="SAME", strides=2),
          tfjs_ms=2.6),
    Layer("separable", "separable_conv2d", (1, 64, 64, 32), (3, 3, 32, 1), dict(padding="SAME"),
          pointwise=(1, 1, 32, 64), tfjs_ms=3.6),
]

QUICK_LAYERS = [
    Layer("conv3x3", "conv2d", (1, 16, 16, 8), (3, 3, 8, 8), dict(padding="SAME")),
    Layer("dw3x3", "depthwise_conv2d", (1, 16, 16, 8), (3, 3, 8, 2), dict(padding="SAME")),
    Layer("separable", "separable_conv2d", (1, 16, 16, 8), (3, 3, 8, 1), dict(padding="SAME"),
          pointwise=(1, 1, 8, 16)),
]


# ---------------------------------------------------------------------------
# the NumPy baseline: float32 im2col + BLAS, as a NumPy user would write it

def numpy_conv2d_f32(x, w, geometry):
    (top, bottom), (left, right) = geometry.window_pads
    padded = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))
    fh, fw = geometry.filter_height, geometry.filter_width
    windows = sliding_window_view(padded, (geometry.effective_filter_height, geometry.effective_filter_width),
                                  axis=(1, 2))
    windows = windows[:, ::geometry.stride_height, ::geometry.stride_width, :,
                      ::geometry.dilation_height, ::geometry.dilation_width]
    windows = windows[:, :geometry.out_height, :geometry.out_width]  # [N, OH, OW, C, FH, FW]
    if geometry.depthwise:
        y = np.einsum("nhwcij,ijcm->nhwcm", windows, w, optimize=True)
        return y.reshape(y.shape[0], y.shape[1], y.shape[2], -1)
    cols = windows.transpose(0, 1, 2, 4, 5, 3).reshape(-1, fh * fw * geometry.in_channels)
    y = cols @ w.reshape(-1, w.shape[-1])
    return y.reshape(geometry.batch, geometry.out_height, geometry.out_width, -1)


# ---------------------------------------------------------------------------
# timing

def median_time(fn: Callable[[], object], repeat: int, warmup: int = 5) -> float:
    return timings(fn, repeat, warmup)[0]


def timings(fn: Callable[[], object], repeat: int, warmup: int = 5):
    """``(median, best)`` seconds of ``repeat`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), min(times)


def _plan(layer: Layer, arrays, algorithm: str):
    x, w, pw = arrays
    if layer.op == "separable_conv2d":
        return plan_separable_conv2d(x, w, pw, algorithm=algorithm, **layer.kwargs)
    return plan_conv2d(x, w, depthwise=layer.op == "depthwise_conv2d", algorithm=algorithm, **layer.kwargs)


def _flops(plan) -> int:
    return 2 * sum(spec.geometry.multiply_adds for spec in plan.specs)


def time_phases(runtime, plan, repeat: int) -> Dict[str, float]:
    """Median upload, draw-only (inputs resident) and read-back times of a plan.

    llvmpipe runs the first few draws after a compile slowly, hence the warm-up runs.
    """
    steps = plan.steps

    def upload():
        textures = []
        for position, (spec, arrays) in enumerate(steps):
            for item in spec.inputs:
                if position == 0 or item.name not in spec.chained_inputs:
                    textures.append((spec, item.name, runtime.upload(arrays[item.name], item.layout)))
        runtime.finish()
        return textures

    def release(textures):
        runtime.free(texture for *_, texture in textures)

    resident = upload()
    by_step = [{name: tex for spec2, name, tex in resident if spec2 is spec} for spec, _ in steps]

    def draw():
        previous, made = [], []
        for position, (spec, _) in enumerate(steps):
            inputs = dict(by_step[position])
            if position:
                inputs.update(zip(spec.chained_inputs, previous))
            previous = runtime.draw(spec, inputs)
            made.extend(previous)
        runtime.finish()
        return previous, made

    def draw_only():
        _, made = draw()
        runtime.free(made)

    result = dict(zip(("draw", "draw_best"), timings(draw_only, repeat)))
    result["upload"] = median_time(lambda: release(upload()), repeat)
    outputs, made = draw()
    last = steps[-1][0]
    result["readback"] = median_time(
        lambda: last.assemble([runtime.read(t, layout) for t, layout in zip(outputs, last.output_layouts)]), repeat)
    runtime.free(made)
    release(resident)
    return result


def run_layer(layer: Layer, runtime, repeat: int, seed: int = 0) -> Dict[str, object]:
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, layer.x).astype(np.float32)
    w = rng.uniform(-1, 1, layer.filter).astype(np.float32)
    pw = rng.uniform(-1, 1, layer.pointwise).astype(np.float32) if layer.pointwise else None
    arrays = (x, w, pw)
    gpu_op = getattr(gpuconv, layer.op)
    oracle_op = getattr(gpuconv.oracle, layer.op)
    call_args = (x, w, pw) if pw is not None else (x, w)

    # Cold: the first call of this shape on the fast path (a compile if its family is new).
    programs_before = len(runtime._programs)
    start = time.perf_counter()
    y = gpu_op(*call_args, runtime=runtime, **layer.kwargs)
    cold = time.perf_counter() - start
    compiled = len(runtime._programs) - programs_before

    expected = oracle_op(*call_args, **layer.kwargs)
    error = gpuconv.oracle.relative_error(y, expected)

    packed, direct = _plan(layer, arrays, "auto"), _plan(layer, arrays, "direct")
    flops = _flops(packed)
    row: Dict[str, object] = {"layer": layer.name, "op": layer.op, "mflop": flops / 1e6,
                              "rel_error": error, "cold_s": cold, "cold_compiles": compiled,
                              "algorithm": "+".join(sorted({type(s).__name__ for s in packed.specs}))}
    phases = time_phases(runtime, packed, repeat)
    row.update({f"packed_{k}_s": v for k, v in phases.items()})
    row["packed_call_s"] = median_time(lambda: gpu_op(*call_args, runtime=runtime, **layer.kwargs), repeat)
    grown = list(layer.x)
    h_axis = 1 if layer.kwargs.get("data_format", "NHWC") == "NHWC" else 2
    grown[h_axis] += 2
    grown[h_axis + 1] += 2
    new_args = (rng.uniform(-1, 1, grown).astype(np.float32),) + call_args[1:]
    programs_before = len(runtime._programs)
    start = time.perf_counter()
    gpu_op(*new_args, runtime=runtime, **layer.kwargs)
    row["new_shape_s"] = time.perf_counter() - start
    row["new_shape_compiles"] = len(runtime._programs) - programs_before
    direct_phases = time_phases(runtime, direct, max(1, repeat // 2))
    row["direct_draw_s"], row["direct_draw_best_s"] = direct_phases["draw"], direct_phases["draw_best"]
    row["oracle_f64_s"] = median_time(lambda: oracle_op(*call_args, **layer.kwargs), repeat)

    def numpy_f32():
        g = packed.steps[0][0].geometry
        y32 = numpy_conv2d_f32(x if g.channels_last else x.transpose(0, 2, 3, 1), w, g)
        if pw is not None:
            y32 = y32 @ pw.reshape(pw.shape[2], pw.shape[3])
        return y32

    row["numpy_f32_s"] = median_time(numpy_f32, repeat)
    row["tfjs_packed_s"] = layer.tfjs_ms / 1e3 if layer.tfjs_ms else None
    return row


# ---------------------------------------------------------------------------
# output

def gflops(row, key):
    seconds = row.get(key)
    return row["mflop"] / 1e3 / seconds if seconds else None


def format_table(rows: List[Dict[str, object]]) -> str:
    header = ["layer", "MFLOP", "direct ms, best (GF/s)", "packed ms, best (GF/s)", "packed/direct",
              "call ms = up + draw + read", "cold ms", "new shape ms", "oracle f64 ms", "numpy f32 ms (GF/s)",
              "packed/numpy", "oracle/numpy", "packed/TF.js"]
    lines = []
    for r in rows:
        ratio_tfjs = f"{r['tfjs_packed_s'] / r['packed_draw_s']:.2f}x" if r["tfjs_packed_s"] else "-"
        lines.append([
            r["layer"], f"{r['mflop']:.1f}",
            f"{r['direct_draw_s'] * 1e3:.1f}, {r['direct_draw_best_s'] * 1e3:.1f} ({gflops(r, 'direct_draw_s'):.2f})",
            f"{r['packed_draw_s'] * 1e3:.2f}, {r['packed_draw_best_s'] * 1e3:.2f} ({gflops(r, 'packed_draw_s'):.2f})",
            f"{r['direct_draw_s'] / r['packed_draw_s']:.1f}x",
            f"{r['packed_call_s'] * 1e3:.1f} = {r['packed_upload_s'] * 1e3:.1f} + "
            f"{r['packed_draw_s'] * 1e3:.1f} + {r['packed_readback_s'] * 1e3:.1f}",
            f"{r['cold_s'] * 1e3:.0f}" + (f" ({r['cold_compiles']} compiled)" if r["cold_compiles"] else ""),
            f"{r['new_shape_s'] * 1e3:.1f} ({r['new_shape_s'] / r['packed_call_s']:.1f}x)"
            + (f" ({r['new_shape_compiles']} compiled)" if r["new_shape_compiles"] else ""),
            f"{r['oracle_f64_s'] * 1e3:.2f}",
            f"{r['numpy_f32_s'] * 1e3:.2f} ({gflops(r, 'numpy_f32_s'):.1f})",
            f"{r['numpy_f32_s'] / r['packed_draw_s']:.2f}x",
            f"{r['oracle_f64_s'] / r['numpy_f32_s']:.1f}x",
            ratio_tfjs,
        ])
    widths = [max(len(str(c)) for c in col) for col in zip(header, *lines)]
    out = ["| " + " | ".join(h.ljust(w) for h, w in zip(header, widths)) + " |",
           "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += ["| " + " | ".join(str(c).ljust(w) for c, w in zip(line, widths)) + " |" for line in lines]
    return "\n".join(out)


def summary(rows) -> str:
    speedups = sorted(r["direct_draw_s"] / r["packed_draw_s"] for r in rows)
    numpy = sorted(r["numpy_f32_s"] / r["packed_draw_s"] for r in rows)
    tfjs = sorted(r["tfjs_packed_s"] / r["packed_draw_s"] for r in rows if r["tfjs_packed_s"])
    worst = max(r["rel_error"] for r in rows)
    cold = max(r["new_shape_s"] / r["packed_call_s"] for r in rows)
    best = sorted(r["direct_draw_best_s"] / r["packed_draw_best_s"] for r in rows)
    best_tfjs = sorted(r["tfjs_packed_s"] / r["packed_draw_best_s"] for r in rows if r["tfjs_packed_s"])
    text = (f"median over layers: packed/direct {statistics.median(speedups):.1f}x "
            f"(min {speedups[0]:.1f}x), packed/numpy-f32 {statistics.median(numpy):.2f}x")
    if tfjs:
        text += f", packed/TF.js-quoted {statistics.median(tfjs):.2f}x"
    text += f"; with best runs: packed/direct {statistics.median(best):.1f}x (min {best[0]:.1f}x)"
    if best_tfjs:
        text += f", packed/TF.js-quoted {statistics.median(best_tfjs):.2f}x"
    return text + (f"; new shape at most {cold:.1f}x the warm call; "
                   f"largest error vs the oracle {worst:.2g} (relative)")


def write_png(rows, path: str) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SystemExit("--png needs matplotlib (pip install matplotlib)") from None
    names = [r["layer"] for r in rows]
    series = [("direct", "direct_draw_s"), ("packed", "packed_draw_s"), ("numpy f32", "numpy_f32_s"),
              ("oracle f64", "oracle_f64_s")]
    positions = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(10, 4.5))
    for i, (label, key) in enumerate(series):
        ax.bar(positions + (i - 1.5) * 0.2, [gflops(r, key) for r in rows], 0.2, label=label)
    ax.set_xticks(positions, names, rotation=20)
    ax.set_ylabel("GFLOP/s (higher is better)")
    ax.set_yscale("log")
    ax.legend()
    ax.set_title(f"gpuconv on {gpuconv.get_runtime().info()['renderer']}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     epilog="example: python benchmarks/bench.py --repeat 7 --json bench.json")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per measurement (median); default 5")
    parser.add_argument("--quick", action="store_true", help="small layers, 2 repeats: a smoke run")
    parser.add_argument("--layers", default=None, help="comma-separated layer names to run (default: all)")
    parser.add_argument("--json", default=None, metavar="PATH", help="also write the rows as JSON")
    parser.add_argument("--png", default=None, metavar="PATH", help="also draw a chart (needs matplotlib)")
    args = parser.parse_args(argv)

    layers = QUICK_LAYERS if args.quick else LAYERS
    if args.layers:
        wanted = [n.strip() for n in args.layers.split(",")]
        layers = [layer for layer in layers if layer.name in wanted]
        if not layers:
            parser.error(f"--layers: none of {wanted} is a layer ({', '.join(l.name for l in LAYERS)})")
    repeat = 2 if args.quick else args.repeat
    runtime = gpuconv.get_runtime()
    info = runtime.info()
    print(f"gpuconv benchmark on {info['renderer']} ({info['backend']}), {platform.processor() or platform.machine()}, "
          f"numpy {np.__version__}; median of {repeat} warm runs", flush=True)
    rows = []
    for i, layer in enumerate(layers, 1):
        print(f"  [{i}/{len(layers)}] {layer.name} ...", file=sys.stderr, flush=True)
        rows.append(run_layer(layer, runtime, repeat))
    print(format_table(rows))
    print(summary(rows))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"device": info, "repeat": repeat, "rows": rows}, handle, indent=2, default=str)
    if args.png:
        write_png(rows, args.png)
    return 0


if __name__ == "__main__":
    sys.exit(main())
