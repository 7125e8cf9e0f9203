"""The benchmark layers' largest error in float32 and in float16 storage (issue 12).

For each layer of ``benchmarks/bench.py`` (``LAYERS``, the same seeded data in [-1, 1] as the
benchmark draws), run the op on the native runtime with float32 storage and with float16
storage (R16F/RGBA16F textures, as TF.js on phones without float32 render targets) and print
the largest error against the float64 oracle, absolute and relative to the output's largest
magnitude, with gpuconv.oracle.float16_error_bound and the distance from the oracle's float16
prediction (gpuconv.oracle.<op>(..., storage="float16")).  README's table is its output.

    python benchmarks/precision_table.py [--quick] [--layers conv3x3,dw3x3] [--browser]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import gpuconv  # noqa: E402
from bench import LAYERS, QUICK_LAYERS, _arrays  # noqa: E402
from gpuconv import oracle  # noqa: E402


def measure(layer, runtime):
    x, w, pw = _arrays(layer, np.random.default_rng(0))
    args = (x, w, pw) if pw is not None else (x, w)
    gpu = getattr(gpuconv, layer.op)
    exact = getattr(oracle, layer.op)(*args, **layer.kwargs)
    row = {"layer": layer.name, "op": layer.op, "scale": float(np.max(np.abs(exact)))}
    for storage in ("float32", "float16"):
        y = gpu(*args, runtime=runtime, storage=storage, **layer.kwargs)
        row[storage] = oracle.compare(y, exact)
    predicted = getattr(oracle, layer.op)(*args, storage="float16", **layer.kwargs)
    row["bound"] = oracle.float16_error_bound(layer.op, *args, **layer.kwargs)
    row["prediction"] = float(np.max(np.abs(gpu(*args, runtime=runtime, storage="float16", **layer.kwargs)
                                             - predicted)))
    row["tolerance"] = oracle.float16_prediction_tolerance(layer.op, *args, **layer.kwargs)
    return row


def table(rows) -> str:
    lines = ["| layer | op | max abs, float32 | relative, float32 | max abs, float16 | relative, float16 "
             "| float16 bound | float16 vs prediction (tolerance) |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['layer']} | {r['op']} | {r['float32'][0]:.2g} | {r['float32'][1]:.2g} "
                     f"| {r['float16'][0]:.3g} | {r['float16'][1]:.2g} | {r['bound']:.3g} "
                     f"| {r['prediction']:.3g} ({r['tolerance']:.3g}) |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="the small layers of bench.py --quick")
    parser.add_argument("--layers", default=None, help="comma-separated layer names (default: all)")
    parser.add_argument("--browser", action="store_true", help="on gpuconv.BrowserRuntime instead of native")
    args = parser.parse_args(argv)
    layers = QUICK_LAYERS if args.quick else LAYERS
    if args.layers:
        wanted = [n.strip() for n in args.layers.split(",")]
        layers = [layer for layer in layers if layer.name in wanted]
    runtime = gpuconv.BrowserRuntime() if args.browser else gpuconv.NativeRuntime()
    try:
        info = runtime.info()
        rows = []
        for i, layer in enumerate(layers, 1):
            print(f"  [{i}/{len(layers)}] {layer.name} ...", file=sys.stderr, flush=True)
            rows.append(measure(layer, runtime))
    finally:
        runtime.release()
    print(f"gpuconv {gpuconv.__version__} on {info['renderer']} ({runtime.kind}), {time.strftime('%Y-%m-%d')}; "
          f"inputs and filters uniform in [-1, 1] (seed 0, as benchmarks/bench.py); errors against the "
          f"float64 oracle, relative to the output's largest magnitude")
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
