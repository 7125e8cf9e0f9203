"""gpuconv benchmark: the direct TF.js-style programs, the packed fast path, NumPy baselines and TF.js.

Prints one table over a fixed set of layers, each timed warm (median of
``--repeat`` runs after a warm-up) on the current GL device:

* ``direct`` / ``packed``: draw-only time with the inputs already in textures
  (what TF.js's own timings measure) of the direct programs and of the fast path
  (``algorithm="auto"``: the packed programs, or im2col + matmul, or a matmul, where auto
  picks them; the side-by-side table names them): the median and the best run, and GFLOP/s =
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
* ratios of the packed path to each baseline (``packed/X`` = X's time / packed's time:
  above 1, gpuconv is faster).

``--browser`` also times gpuconv's fast path in headless Chromium's WebGL2
(``gpuconv.BrowserRuntime``, ANGLE over the system's EGL): draw-only, timed inside the
page (``performance.now()`` around the draws and a sync), and from Python (the round
trips into the page on top).  ``--tfjs`` (implies ``--browser``) times TF.js 4.22's WebGL
backend in the same Chromium build and GL, in the same run: its default path and its
direct programs (``benchmarks/tfjs/runner.py``: ``PATHS``), each op on inputs already in
textures.  Both browser sides follow one timing rule: a timed run is the draws, then a
1-texel ``gl.readPixels`` of the output texture (which waits for the GPU to draw it;
Chromium's ``gl.finish()`` only flushes); median of ``--repeat`` runs after 5 warm-ups.
TF.js's ``await y.data()`` (op + full download) goes into ``--json``.  Then a second table
puts gpuconv (native and browser), TF.js and NumPy side by side.  ``--autotune`` times as the fast path what
``gpuconv.autotune`` measures fastest for each layer on each runtime, instead of auto's rule.
``--tfjs`` needs TF.js's
npm packages: ``bash benchmarks/tfjs/setup.sh`` (gpuconv itself never does).

Usage::

    python benchmarks/bench.py                 # the table
    python benchmarks/bench.py --json out.json --png out.png
    python benchmarks/bench.py --quick         # a smoke run on small layers
    python benchmarks/bench.py --tfjs          # and gpuconv in Chromium beside TF.js 4.22
"""

from __future__ import annotations

import argparse
import atexit
import importlib.util
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

import gpuconv
import gpuconv.tuning
from gpuconv.ops import plan_conv2d, plan_separable_conv2d
from gpuconv.runtimes import BACKEND_ENV, RUNTIME_KINDS, make_runtime


@dataclass
class Layer:
    name: str
    op: str                   # conv2d | depthwise_conv2d | separable_conv2d
    x: tuple
    filter: tuple
    kwargs: dict = field(default_factory=dict)
    pointwise: Optional[tuple] = None


LAYERS = [
    Layer("conv3x3", "conv2d", (1, 64, 64, 16), (3, 3, 16, 32), dict(padding="SAME")),
    Layer("conv3x3 s2", "conv2d", (1, 128, 128, 3), (3, 3, 3, 16), dict(padding="SAME", strides=2)),
    Layer("conv3x3 batch", "conv2d", (4, 32, 32, 64), (3, 3, 64, 64), dict(padding="SAME")),
    Layer("conv1x1", "conv2d", (1, 56, 56, 128), (1, 1, 128, 128), dict(padding="VALID")),
    Layer("dw3x3", "depthwise_conv2d", (1, 112, 112, 32), (3, 3, 32, 1), dict(padding="SAME")),
    Layer("dw3x3 m2 s2", "depthwise_conv2d", (1, 56, 56, 64), (3, 3, 64, 2), dict(padding="SAME", strides=2)),
    Layer("separable", "separable_conv2d", (1, 64, 64, 32), (3, 3, 32, 1), dict(padding="SAME"),
          pointwise=(1, 1, 32, 64)),
    # Layers TF.js users report as slow: large filters on a large image with few channels,
    # a large depthwise filter over many channels, and a 5x5 convolution.
    Layer("conv7x7 224", "conv2d", (1, 224, 224, 3), (7, 7, 3, 32), dict(padding="SAME")),
    Layer("conv11x11 224", "conv2d", (1, 224, 224, 3), (11, 11, 3, 16), dict(padding="SAME")),
    Layer("dw7x7 c256", "depthwise_conv2d", (1, 56, 56, 256), (7, 7, 256, 1), dict(padding="SAME")),
    Layer("conv5x5", "conv2d", (1, 56, 56, 32), (5, 5, 32, 32), dict(padding="SAME")),
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


def samples(fn: Callable[[], object], repeat: int, warmup: int = 5) -> List[float]:
    """Seconds of each of ``repeat`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def timings(fn: Callable[[], object], repeat: int, warmup: int = 5):
    """``(median, best)`` seconds of ``repeat`` runs after ``warmup`` runs."""
    times = samples(fn, repeat, warmup)
    return statistics.median(times), min(times)


def _plan(layer: Layer, arrays, algorithm: str, runtime=None):
    x, w, pw = arrays
    limits = {"limits": runtime.limits} if runtime is not None else {}
    if layer.op == "separable_conv2d":
        return plan_separable_conv2d(x, w, pw, algorithm=algorithm, **limits, **layer.kwargs)
    return plan_conv2d(x, w, depthwise=layer.op == "depthwise_conv2d", algorithm=algorithm, **limits,
                       **layer.kwargs)


#: --autotune: the fast path is what gpuconv.autotune picks on each runtime, not auto's rule.
AUTOTUNE = False


def _fast_plan(layer: Layer, arrays, runtime):
    """The plan of gpuconv's fast path (``algorithm="auto"``) for this layer on ``runtime``;
    under ``--autotune`` the algorithm gpuconv.autotune measures fastest there."""
    plan = _plan(layer, arrays, "auto", runtime).with_storage(runtime.storage)
    if not AUTOTUNE:
        return plan
    with gpuconv.autotune():
        return gpuconv.tuning.tuned_plan(layer.op, plan, lambda algorithm: _plan(layer, arrays, algorithm, runtime),
                                         runtime)


def _flops(plan) -> int:
    # a program may count its own (the im2col path's copy: 0; its matrix multiply: the convolution's)
    return sum(spec.flops if isinstance(getattr(spec, "flops", None), int) else 2 * spec.geometry.multiply_adds
               for spec in plan.specs)


class _Resident:
    """A plan's host inputs uploaded once, for runs of its draws alone: :meth:`chain` walks the
    plan with :meth:`gpuconv.plan.Plan.chain` (the one walk the runtimes use too), each upload
    answered by the resident texture of that array."""

    def __init__(self, runtime, plan):
        self.runtime, self.plan = runtime, plan.with_storage(runtime.storage)
        self.textures: Dict[Tuple[int, Any], Any] = {}  # (id(array), layout) -> texture
        for spec, arrays in self.plan.steps:
            for item in spec.inputs:
                key = (id(arrays.get(item.name)), item.layout)
                if item.name in arrays and key not in self.textures:
                    self.textures[key] = runtime.upload(arrays[item.name], item.layout, runtime.storage)
        runtime.finish()

    def chain(self, draw) -> Tuple[List[Any], List[Any]]:
        """The last program's outputs and every texture the draws made (to free)."""
        made: List[Any] = []
        outputs = self.plan.chain(lambda array, layout, *_: self.textures[(id(array), layout)], draw, made)
        resident = {id(texture) for texture in self.textures.values()}
        return outputs, [texture for texture in made if id(texture) not in resident]

    def release(self) -> None:
        self.runtime.free(self.textures.values())
        self.textures.clear()


def time_phases(runtime, plan, repeat: int, draw_only: bool = False) -> Dict[str, Any]:
    """Median upload, draw-only (inputs resident) and read-back times of a plan
    (``draw_only``: the draw times alone), and ``draw_samples``: every timed draw run.

    llvmpipe runs the first few draws after a compile slowly, hence the warm-up runs.
    """
    def draw():
        outputs, made = resident.chain(runtime.draw)
        runtime.finish()
        return outputs, made

    def draw_once():
        _, made = draw()
        runtime.free(made)

    resident = _Resident(runtime, plan)
    draws = samples(draw_once, repeat)
    result: Dict[str, Any] = {"draw": statistics.median(draws), "draw_best": min(draws), "draw_samples": draws}
    if draw_only:
        resident.release()
        return result
    result["upload"] = median_time(lambda: _Resident(runtime, plan).release(), repeat)
    outputs, made = draw()
    last = plan.spec
    result["readback"] = median_time(
        lambda: last.assemble([runtime.read(t, layout) for t, layout in zip(outputs, last.output_layouts)]), repeat)
    runtime.free(made)
    resident.release()
    return result


#: Times the page's own call (gpuconv.call in browser_page.js) of one message, run after run:
#: the draws and a finish (a 1-texel readPixels of the last output) are timed, the
#: outputs are deleted after each run, untimed.
_PAGE_TIMER = """async ({ops, free, repeat, warmup}) => {
  const times = [];
  for (let i = 0; i < warmup + repeat; i++) {
    const start = performance.now();
    const answer = await gpuconv.call({ops});
    const elapsed = performance.now() - start;
    await gpuconv.call({ops: [], free});
    if (!answer.ok) return answer;
    if (i >= warmup) times.push(elapsed / 1e3);
  }
  return {ok: true, times};
}"""


def time_in_page(browser, plan, repeat: int, warmup: int = 5) -> List[float]:
    """Seconds of each run of a plan's draws on resident inputs, timed inside the
    browser runtime's page: its draw ops and a finish, sent once and run ``warmup + repeat``
    times there (no round trip into Python in between).

    gpuconv.BrowserRuntime has no public way to time inside its page, so this uses its
    internals: ``_draw_op`` (the message a ``draw`` sends) and ``_page`` (its Playwright page).
    """
    if not all(hasattr(browser, name) for name in ("_draw_op", "_page")):
        raise RuntimeError("benchmarks/bench.py: gpuconv.BrowserRuntime no longer has _draw_op and _page, "
                           "which the in-page timing uses; update time_in_page")
    resident = _Resident(browser, plan)
    # Draw once through the runtime, so that the page has compiled every program.
    browser.free(resident.chain(browser.draw)[1])
    browser.finish()
    ops: List[Dict[str, Any]] = []
    pending: List[Any] = []

    def record(spec, inputs, *storage):
        outputs, op = browser._draw_op(spec, inputs, pending, *storage)
        ops.append(op)
        return outputs

    _, made = resident.chain(record)
    if pending:
        raise RuntimeError(f"time_in_page: programs not compiled in the page: {pending}")
    ops.append({"op": "finish"})
    answer = browser._page.evaluate(_PAGE_TIMER, {"ops": ops, "free": [t.id for t in made],
                                                  "repeat": repeat, "warmup": warmup})
    resident.release()
    if not answer.get("ok"):
        raise RuntimeError(f"time_in_page: the page failed: {answer.get('message')}")
    return answer["times"]


def _programs(names) -> str:
    return " > ".join(name[:-len("Program")] if name.endswith("Program") else name for name in names)


def _arrays(layer: Layer, rng):
    x = rng.uniform(-1, 1, layer.x).astype(np.float32)
    w = rng.uniform(-1, 1, layer.filter).astype(np.float32)
    pw = rng.uniform(-1, 1, layer.pointwise).astype(np.float32) if layer.pointwise else None
    return x, w, pw


#: The series timed side by side, sampled again in every round (``--rounds``): row key -> label.
SIDE_BY_SIDE = {"packed_draw": "gpuconv native", "browser_draw": "gpuconv browser, in the page",
                "browser_python_draw": "gpuconv browser, from Python", "tfjs_default": "TF.js default",
                "tfjs_direct": "TF.js direct", "tfjs_default_data": "TF.js default + data()",
                "tfjs_direct_data": "TF.js direct + data()"}


def time_side_by_side(layer: Layer, row: Dict[str, Any], runtime, repeat: int, seed: int = 0,
                      browser=None, tfjs=None) -> None:
    """One round of the side-by-side series for a layer, one after the other: gpuconv's fast
    path natively, in the browser (in the page and from Python), and TF.js's paths; the
    samples go into ``row["samples"]``, the medians and best runs (of every round so far)
    into the row."""
    x, w, pw = arrays = _arrays(layer, np.random.default_rng(seed))
    pooled = row.setdefault("samples", {})

    def add(key, times):
        pooled.setdefault(key, []).extend(times)

    add("packed_draw", time_phases(runtime, _fast_plan(layer, arrays, runtime), repeat,
                                   draw_only=True)["draw_samples"])
    if browser is not None:
        browser_plan = _fast_plan(layer, arrays, browser)
        add("browser_draw", time_in_page(browser, browser_plan, repeat))
        add("browser_python_draw", time_phases(browser, browser_plan, repeat, draw_only=True)["draw_samples"])
    if tfjs is not None:
        expected = getattr(gpuconv.oracle, layer.op)(*(a for a in arrays if a is not None), **layer.kwargs)
        for path, result in tfjs.time_layer(layer.name, layer.op, x, w, pw, layer.kwargs, repeat).items():
            add(f"tfjs_{path}", result["synced"])
            add(f"tfjs_{path}_data", result["downloaded"])
            row[f"tfjs_{path}_programs"] = _programs(result["programs"])
            error = gpuconv.oracle.relative_error(result["output"].reshape(expected.shape), expected)
            row[f"tfjs_{path}_rel_error"] = max(error, row.get(f"tfjs_{path}_rel_error", 0.0))
    for key, times in pooled.items():
        row[f"{key}_s"] = statistics.median(times)
        row[f"{key}_best_s"] = min(times)


def run_layer(layer: Layer, runtime, repeat: int, seed: int = 0, browser=None, tfjs=None) -> Dict[str, object]:
    rng = np.random.default_rng(seed)
    x, w, pw = arrays = _arrays(layer, rng)
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

    packed, direct = _fast_plan(layer, arrays, runtime), _plan(layer, arrays, "direct")
    flops = _flops(packed)
    row: Dict[str, object] = {"layer": layer.name, "op": layer.op, "mflop": flops / 1e6,
                              "rel_error": error, "cold_s": cold, "cold_compiles": compiled,
                              "algorithm": "+".join(sorted({type(s).__name__ for s in packed.specs})),
                              "programs": _programs(s.name for s in packed.specs)}
    phases = time_phases(runtime, packed, repeat)
    row["samples"] = {"packed_draw": phases.pop("draw_samples")}
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

    if browser is not None:
        y_browser = gpu_op(*call_args, runtime=browser, **layer.kwargs)  # compiles; checked
        row["browser_rel_error"] = gpuconv.oracle.relative_error(y_browser, expected)
        time_side_by_side(layer, row, runtime, repeat, seed, browser, tfjs)
    return row


# ---------------------------------------------------------------------------
# output

def gflops(row, key):
    seconds = row.get(key)
    return row["mflop"] / 1e3 / seconds if seconds else None


def _markdown(header: List[str], lines: List[List[str]]) -> str:
    widths = [max(len(str(c)) for c in col) for col in zip(header, *lines)]
    out = ["| " + " | ".join(h.ljust(w) for h, w in zip(header, widths)) + " |",
           "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += ["| " + " | ".join(str(c).ljust(w) for c, w in zip(line, widths)) + " |" for line in lines]
    return "\n".join(out)


def _ratio(row, baseline: str, ours: str) -> Optional[float]:
    """``row[baseline] / row[ours]`` (above 1: ours is faster), or None when either is missing."""
    if row.get(baseline) and row.get(ours):
        return row[baseline] / row[ours]
    return None


def format_table(rows: List[Dict[str, object]]) -> str:
    header = ["layer", "MFLOP", "direct ms, best (GF/s)", "packed ms, best (GF/s)", "packed/direct",
              "call ms = up + draw + read", "cold ms", "new shape ms", "oracle f64 ms", "numpy f32 ms (GF/s)",
              "packed/numpy", "oracle/numpy", "packed/TF.js"]
    lines = []
    for r in rows:
        ratio_tfjs = _ratio(r, "tfjs_default_s", "packed_draw_s")
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
            f"{ratio_tfjs:.2f}x" if ratio_tfjs else "-",
        ])
    return _markdown(header, lines)


def format_side_by_side(rows: List[Dict[str, object]]) -> str:
    """gpuconv's fast path natively and in Chromium, TF.js's two paths and NumPy, per layer."""
    def ms(r, key):
        if not r.get(key):
            return "-"
        return f"{r[key] * 1e3:.{2 if r[key] < 0.01 else 1}f} ({gflops(r, key):.2f})"

    def ratio(r, ours):
        value = _ratio(r, "tfjs_default_s", ours)
        return f"{value:.2f}x" if value else "-"

    header = ["layer", "MFLOP", "native ms (GF/s)", "browser ms (GF/s)", "+ Python ms",
              "TF.js default ms (GF/s)", "TF.js direct ms (GF/s)", "numpy f32 ms", "native/TF.js",
              "browser/TF.js", "gpuconv programs (auto)", "TF.js default programs", "TF.js direct programs"]
    lines = []
    for r in rows:
        on_top = (r["browser_python_draw_s"] - r["browser_draw_s"]) if r.get("browser_draw_s") else None
        lines.append([
            r["layer"], f"{r['mflop']:.1f}", ms(r, "packed_draw_s"), ms(r, "browser_draw_s"),
            f"{on_top * 1e3:+.1f}" if on_top is not None else "-",
            ms(r, "tfjs_default_s"), ms(r, "tfjs_direct_s"), f"{r['numpy_f32_s'] * 1e3:.1f}",
            ratio(r, "packed_draw_s"), ratio(r, "browser_draw_s"), r["programs"],
            r.get("tfjs_default_programs", "-"), r.get("tfjs_direct_programs", "-"),
        ])
    return _markdown(header, lines)


def summary(rows) -> str:
    speedups = sorted(r["direct_draw_s"] / r["packed_draw_s"] for r in rows)
    numpy = sorted(r["numpy_f32_s"] / r["packed_draw_s"] for r in rows)
    tfjs = sorted(r["tfjs_default_s"] / r["packed_draw_s"] for r in rows if r.get("tfjs_default_s"))
    worst = max(r["rel_error"] for r in rows)
    cold = max(r["new_shape_s"] / r["packed_call_s"] for r in rows)
    best = sorted(r["direct_draw_best_s"] / r["packed_draw_best_s"] for r in rows)
    best_tfjs = sorted(r["tfjs_default_best_s"] / r["packed_draw_best_s"] for r in rows if r.get("tfjs_default_s"))
    text = (f"median over layers: packed/direct {statistics.median(speedups):.1f}x "
            f"(min {speedups[0]:.1f}x), packed/numpy-f32 {statistics.median(numpy):.2f}x")
    if tfjs:
        text += f", packed/TF.js-default {statistics.median(tfjs):.2f}x"
    text += f"; with best runs: packed/direct {statistics.median(best):.1f}x (min {best[0]:.1f}x)"
    if best_tfjs:
        text += f", packed/TF.js-default {statistics.median(best_tfjs):.2f}x"
    return text + (f"; new shape at most {cold:.1f}x the warm call; "
                   f"largest error vs the oracle {worst:.2g} (relative)")


def side_by_side_summary(rows) -> str:
    """The median and the worst (smallest) ratio to TF.js's default path over the layers."""
    parts = []
    for label, ours in (("native", "packed_draw_s"), ("browser", "browser_draw_s")):
        ratios = [(r["tfjs_default_s"] / r[ours], r["layer"]) for r in rows
                  if r.get("tfjs_default_s") and r.get(ours)]
        if ratios:
            low = min(ratios)
            parts.append(f"gpuconv {label}/TF.js-default: median {statistics.median(v for v, _ in ratios):.2f}x, "
                         f"worst {low[0]:.2f}x ({low[1]}), faster on {sum(v > 1 for v, _ in ratios)} of {len(ratios)}")
    errors = [r[key] for r in rows for key in ("browser_rel_error", "tfjs_default_rel_error", "tfjs_direct_rel_error")
              if r.get(key) is not None]
    if errors:
        parts.append(f"largest browser/TF.js error vs the oracle {max(errors):.2g} (relative)")
    return "; ".join(parts)


def write_png(rows, path: str) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SystemExit("--png needs matplotlib (pip install matplotlib)") from None
    names = [r["layer"] for r in rows]
    series = [("direct", "direct_draw_s"), ("packed", "packed_draw_s"), ("numpy f32", "numpy_f32_s"),
              ("oracle f64", "oracle_f64_s"), ("browser", "browser_draw_s"), ("TF.js default", "tfjs_default_s"),
              ("TF.js direct", "tfjs_direct_s")]
    series = [(label, key) for label, key in series if all(r.get(key) for r in rows)]
    positions = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(10, 4.5))
    width = 0.8 / len(series)
    for i, (label, key) in enumerate(series):
        ax.bar(positions + (i - (len(series) - 1) / 2) * width, [gflops(r, key) for r in rows], width, label=label)
    ax.set_xticks(positions, names, rotation=20)
    ax.set_ylabel("GFLOP/s (higher is better)")
    ax.set_yscale("log")
    ax.legend()
    ax.set_title(f"gpuconv on {gpuconv.get_runtime().info()['renderer']}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


TFJS_DIR = Path(__file__).resolve().parent / "tfjs"


def load_tfjs_runner(directory: Path = TFJS_DIR):
    """benchmarks/tfjs/runner.py as a module (this script's folder is not a package)."""
    name = "gpuconv_bench_tfjs_runner"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, TFJS_DIR / "runner.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def _load() -> str:
    try:
        return "load average " + " ".join(f"{v:.2f}" for v in os.getloadavg()) + f" on {os.cpu_count()} CPUs"
    except OSError:  # pragma: no cover - no getloadavg on this platform
        return f"{os.cpu_count()} CPUs"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     epilog="example: python benchmarks/bench.py --repeat 7 --json bench.json; "
                                            "bash benchmarks/tfjs/setup.sh && python benchmarks/bench.py --tfjs")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per measurement (median); default 5")
    parser.add_argument("--quick", action="store_true", help="small layers, 2 repeats: a smoke run")
    parser.add_argument("--layers", default=None, help="comma-separated layer names to run (default: all)")
    parser.add_argument("--json", default=None, metavar="PATH", help="also write the rows as JSON")
    parser.add_argument("--png", default=None, metavar="PATH", help="also draw a chart (needs matplotlib)")
    parser.add_argument("--browser", action="store_true",
                        help="also time gpuconv in headless Chromium (gpuconv.BrowserRuntime, gl='angle-egl')")
    parser.add_argument("--tfjs", action="store_true",
                        help="also time TF.js 4.22's WebGL backend in the same Chromium and GL (implies --browser; "
                             "needs 'bash benchmarks/tfjs/setup.sh' first)")
    parser.add_argument("--tfjs-dir", default=str(TFJS_DIR), metavar="DIR",
                        help="where TF.js's node_modules are (default: benchmarks/tfjs)")
    parser.add_argument("--rounds", type=int, default=1, metavar="N",
                        help="time the side-by-side series (gpuconv native and browser, TF.js) in N rounds over "
                             "all the layers, each --repeat runs, and take medians over all of them, so that a "
                             "burst of load on a shared machine falls on every series alike; default 1")
    parser.add_argument("--backend", choices=RUNTIME_KINDS, default=None,
                        help="the runtime the main table measures: native (default; browser when "
                             "GPUCONV_BACKEND=browser) or browser (gpuconv.BrowserRuntime)")
    parser.add_argument("--gl", default=None, metavar="NAME",
                        help="its GL: egl or glfw (native), angle-egl or swiftshader (browser)")
    parser.add_argument("--autotune", action="store_true",
                        help="time as gpuconv's fast path what gpuconv.autotune picks for each layer on each "
                             "runtime (its tuning cache: a new temporary directory unless GPUCONV_CACHE_DIR is "
                             "set), instead of auto's measured rule")
    parser.add_argument("--storage", choices=("float32", "float16"), default="float32",
                        help="how gpuconv's textures store values (gpuconv.storage): float32 (default) or float16 "
                             "(R16F/RGBA16F, as TF.js on phones without float32 render targets); TF.js's own "
                             "series keep their defaults")
    args = parser.parse_args(argv)

    global AUTOTUNE
    AUTOTUNE = args.autotune
    if args.autotune and not os.environ.get(gpuconv.tuning.CACHE_DIR_ENV):
        directory = tempfile.mkdtemp(prefix="gpuconv-bench-tuning-")
        atexit.register(shutil.rmtree, directory, ignore_errors=True)
        os.environ[gpuconv.tuning.CACHE_DIR_ENV] = directory
    layers = QUICK_LAYERS if args.quick else LAYERS
    if args.layers:
        wanted = [n.strip() for n in args.layers.split(",")]
        layers = [layer for layer in layers if layer.name in wanted]
        if not layers:
            known = QUICK_LAYERS if args.quick else LAYERS
            parser.error(f"--layers: none of {wanted} is a layer ({', '.join(k.name for k in known)})")
    runner = None
    if args.tfjs:
        runner = load_tfjs_runner()
        problem = runner.missing(Path(args.tfjs_dir))
        if problem:
            parser.error(problem)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    backend = args.backend or ("browser" if os.environ.get(BACKEND_ENV) == "browser" else "native")
    if args.backend is None and args.gl is None and backend == "native":
        runtime = gpuconv.get_runtime()
        saved_storage, runtime.storage = runtime.storage, args.storage  # every call, upload and draw below
        try:
            return _main(args, layers, runner, runtime)
        finally:
            runtime.storage = saved_storage  # the thread's default runtime, as it was
    try:
        own = make_runtime(backend, gl=args.gl, storage=args.storage)
    except (ValueError, TypeError) as exc:
        parser.error(f"--backend {backend} --gl {args.gl}: {exc}")
    with own:
        return _main(args, layers, runner, own)


def _main(args, layers, runner, runtime) -> int:
    repeat = 2 if args.quick else args.repeat
    info = runtime.info()
    print(f"gpuconv benchmark on {info['renderer']} ({info['backend']}), {platform.processor() or platform.machine()}, "
          f"numpy {np.__version__}; median of {repeat} warm runs"
          + (f" x {args.rounds} rounds (side by side)" if args.rounds > 1 else "")
          + f"; {time.strftime('%Y-%m-%d %H:%M')}, {_load()}", flush=True)
    browser = tfjs = None
    report: Dict[str, Any] = {"device": info, "repeat": repeat, "load_before": _load()}
    try:
        if args.browser or args.tfjs:
            browser = gpuconv.BrowserRuntime(gl="angle-egl", storage=args.storage)
            report["browser"] = browser.info()
            print(f"browser: Chromium {browser.browser_version}, {report['browser']['renderer']} "
                  f"(gpuconv.BrowserRuntime, gl='angle-egl')", flush=True)
        if args.tfjs:
            tfjs = runner.TfjsBench(gl="angle-egl", directory=Path(args.tfjs_dir))
            report["tfjs"] = {"paths": runner.PATHS, "pages": tfjs.info}
            for path, page in tfjs.info.items():
                flags = ", ".join(f"{k}={v}" for k, v in runner.PATHS[path].items()) or "defaults"
                print(f"TF.js {page['version']} {path} ({flags}): {page['backend']} backend on {page['renderer']}",
                      flush=True)
        rows = []
        loads = []
        for i, layer in enumerate(layers, 1):
            print(f"  [{i}/{len(layers)}] {layer.name} ...", file=sys.stderr, flush=True)
            loads.append(os.getloadavg()[0])
            rows.append(run_layer(layer, runtime, repeat, browser=browser, tfjs=tfjs))
        for round_ in range(2, args.rounds + 1):
            for i, (layer, row) in enumerate(zip(layers, rows), 1):
                print(f"  round {round_}/{args.rounds} [{i}/{len(layers)}] {layer.name} ...", file=sys.stderr,
                      flush=True)
                loads.append(os.getloadavg()[0])
                time_side_by_side(layer, row, runtime, repeat, browser=browser, tfjs=tfjs)
    finally:
        if tfjs is not None:
            tfjs.close()
        if browser is not None:
            browser.release()
    report["load_after"] = _load()
    report["load_1min_during"] = loads
    print(format_table(rows))
    print(summary(rows))
    if browser is not None:
        print()
        print(format_side_by_side(rows))
        text = side_by_side_summary(rows)
        if text:
            print(text)
    print(f"1-minute load average at each layer's start: {min(loads):.2f} to {max(loads):.2f} "
          f"(median {statistics.median(loads):.2f}); {_load()} at the end")
    if args.json:
        report["rows"] = rows
        with open(args.json, "w") as handle:
            json.dump(report, handle, indent=2, default=str)
    if args.png:
        write_png(rows, args.png)
    return 0


if __name__ == "__main__":
    sys.exit(main())
