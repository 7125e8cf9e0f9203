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

``--webgpu`` also times gpuconv's WebGPU target (its WGSL compute programs, ``algorithm="auto"``),
each layer's plan lowered as gpuconv's ops lower it, with the same machinery as the WebGL2
columns (``_Resident`` inputs uploaded once, ``Plan.chain``, the median of ``--repeat`` runs after
5 warm-ups): natively (``gpuconv.WebGPURuntime``: wgpu-py on the system's Vulkan driver, Mesa's
lavapipe here; a run is the dispatches, then a wait for the queue) beside gpuconv's WebGL2 path
natively in the same round, and in headless Chromium (``gpuconv.BrowserRuntime(api="webgpu")``,
``time_in_page``).  ``--tfjs-webgpu`` (implies ``--webgpu``) times TF.js 4.22's WebGPU backend
(its defaults; ``benchmarks/tfjs/page_webgpu.js``) in the same Chromium build, launched with the
same WebGPU flags and asking for its adapter with the same options as gpuconv's page
(``--webgpu-gl angle-egl``, the default: a compatibility-mode adapter on ANGLE over the system's
EGL, Mesa's llvmpipe here, which TF.js's own adapter request never gets; ``--webgpu-gl
swiftshader``: SwiftShader's Vulkan, what TF.js's own request gets).  Both WebGPU page sides
follow one timing rule: a timed run is the op's dispatches on inputs already in buffers, then
``await device.queue.onSubmittedWorkDone()`` (TF.js's recorded commands submitted first), which
resolves once the GPU has run them; median of ``--repeat`` runs after 5 warm-ups.  The side-by-side
table gains the WebGPU columns and ratios (each ratio = the other side's time / ours: above 1,
ours is faster): ``WebGPU page/TF.js WebGPU`` (gpuconv's page against TF.js's, on the same adapter),
``WebGPU/WebGL2 native`` and ``WebGPU/WebGL2 page`` (gpuconv's two targets against each other);
the median and worst of each are printed under it and go into ``--json`` (``ratios``).

Usage::

    python benchmarks/bench.py                 # the table
    python benchmarks/bench.py --json out.json --png out.png
    python benchmarks/bench.py --quick         # a smoke run on small layers
    python benchmarks/bench.py --tfjs          # and gpuconv in Chromium beside TF.js 4.22
    python benchmarks/bench.py --webgpu --tfjs-webgpu   # gpuconv's WebGPU target beside TF.js 4.22's
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


def _plan(layer: Layer, arrays, algorithm: str, runtime=None, limits=None):
    """The layer's canonical (WebGL2) plan for ``algorithm``, for ``limits`` or ``runtime``'s."""
    x, w, pw = arrays
    if limits is None and runtime is not None:
        limits = runtime.limits
    given = {"limits": limits} if limits is not None else {}
    if layer.op == "separable_conv2d":
        return plan_separable_conv2d(x, w, pw, algorithm=algorithm, **given, **layer.kwargs)
    return plan_conv2d(x, w, depthwise=layer.op == "depthwise_conv2d", algorithm=algorithm, **given,
                       **layer.kwargs)


#: --autotune: the fast path is what gpuconv.autotune picks on each runtime, not auto's rule.
AUTOTUNE = False


def _target_plan(layer: Layer, arrays, runtime, algorithm: str):
    """The plan ``runtime``'s target runs for the layer's call with ``algorithm`` (as gpuconv's
    ops plan it: the WebGL2 target plans for the runtime's limits, the WebGPU one lowers the
    canonical plan to its WGSL programs)."""
    def make(limits, choice="direct"):
        return _plan(layer, arrays, choice, limits=limits)

    return runtime.target.plan(make, algorithm, runtime.limits)


def _fast_plan(layer: Layer, arrays, runtime):
    """The plan of gpuconv's fast path (``algorithm="auto"``) for this layer on ``runtime``
    (either target); under ``--autotune`` the algorithm gpuconv.autotune measures fastest there
    (where the target has candidates to time)."""
    plan = _target_plan(layer, arrays, runtime, "auto").with_storage(runtime.storage)
    if not AUTOTUNE or not runtime.target.tuning_candidates:
        return plan
    with gpuconv.autotune():
        return gpuconv.tuning.tuned_plan(layer.op, plan,
                                         lambda algorithm: _target_plan(layer, arrays, runtime, algorithm), runtime)


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

    The same for both of the runtime's APIs: on WebGL2 (``BrowserRuntime()``) the ops are draws
    and the finish a 1-texel ``gl.readPixels`` of the last output; on WebGPU
    (``BrowserRuntime(api="webgpu")``) they are dispatches, and the finish is ``await
    device.queue.onSubmittedWorkDone()`` (the page's ``finish`` op).

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
                "tfjs_direct_data": "TF.js direct + data()",
                "webgpu_draw": "gpuconv WebGPU native", "webgpu_page_draw": "gpuconv WebGPU, in the page",
                "tfjs_webgpu": "TF.js WebGPU", "tfjs_webgpu_data": "TF.js WebGPU + data()"}


def time_side_by_side(layer: Layer, row: Dict[str, Any], runtime, repeat: int, seed: int = 0,
                      browser=None, tfjs=None, webgpu=None, webgpu_page=None, tfjs_webgpu=None) -> None:
    """One round of the side-by-side series for a layer, one after the other: gpuconv's fast
    path natively, in the browser (in the page and from Python), TF.js's WebGL paths, then
    gpuconv's WebGPU target natively (``webgpu``: a WebGPURuntime) and in the page
    (``webgpu_page``: a BrowserRuntime(api="webgpu")) and TF.js's WebGPU backend
    (``tfjs_webgpu``); the samples go into ``row["samples"]``, the medians and best runs (of
    every round so far) into the row."""
    x, w, pw = arrays = _arrays(layer, np.random.default_rng(seed))
    pooled = row.setdefault("samples", {})
    expected = None

    def add(key, times):
        pooled.setdefault(key, []).extend(times)

    def tfjs_series(bench):
        nonlocal expected
        if expected is None:
            expected = getattr(gpuconv.oracle, layer.op)(*(a for a in arrays if a is not None), **layer.kwargs)
        for path, result in bench.time_layer(layer.name, layer.op, x, w, pw, layer.kwargs, repeat).items():
            add(f"tfjs_{path}", result["synced"])
            add(f"tfjs_{path}_data", result["downloaded"])
            row[f"tfjs_{path}_programs"] = _programs(result["programs"])
            error = gpuconv.oracle.relative_error(result["output"].reshape(expected.shape), expected)
            row[f"tfjs_{path}_rel_error"] = max(error, row.get(f"tfjs_{path}_rel_error", 0.0))

    add("packed_draw", time_phases(runtime, _fast_plan(layer, arrays, runtime), repeat,
                                   draw_only=True)["draw_samples"])
    if browser is not None:
        browser_plan = _fast_plan(layer, arrays, browser)
        add("browser_draw", time_in_page(browser, browser_plan, repeat))
        add("browser_python_draw", time_phases(browser, browser_plan, repeat, draw_only=True)["draw_samples"])
    if tfjs is not None:
        tfjs_series(tfjs)
    if webgpu is not None:
        add("webgpu_draw", time_phases(webgpu, _fast_plan(layer, arrays, webgpu), repeat,
                                       draw_only=True)["draw_samples"])
    if webgpu_page is not None:
        add("webgpu_page_draw", time_in_page(webgpu_page, _fast_plan(layer, arrays, webgpu_page), repeat))
    if tfjs_webgpu is not None:
        tfjs_series(tfjs_webgpu)
    for key, times in pooled.items():
        row[f"{key}_s"] = statistics.median(times)
        row[f"{key}_best_s"] = min(times)


def run_layer(layer: Layer, runtime, repeat: int, seed: int = 0, browser=None, tfjs=None,
              webgpu=None, webgpu_page=None, tfjs_webgpu=None) -> Dict[str, object]:
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
    for prefix, webgpu_runtime in (("webgpu", webgpu), ("webgpu_page", webgpu_page)):
        if webgpu_runtime is None:
            continue
        start = time.perf_counter()
        y_webgpu = gpu_op(*call_args, runtime=webgpu_runtime, **layer.kwargs)  # compiles; checked
        row[f"{prefix}_cold_s"] = time.perf_counter() - start
        row[f"{prefix}_rel_error"] = gpuconv.oracle.relative_error(y_webgpu, expected)
        row[f"{prefix}_programs"] = _programs(s.name for s in _fast_plan(layer, arrays, webgpu_runtime).specs)
    if any(side is not None for side in (browser, tfjs, webgpu, webgpu_page, tfjs_webgpu)):
        time_side_by_side(layer, row, runtime, repeat, seed, browser, tfjs, webgpu, webgpu_page, tfjs_webgpu)
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


#: The side-by-side table's ratios: label -> (baseline's row key, ours); value = baseline's time /
#: ours (above 1: ours is faster).  A ratio is printed where both series were timed.
RATIOS = {
    "native/TF.js": ("tfjs_default_s", "packed_draw_s"),
    "browser/TF.js": ("tfjs_default_s", "browser_draw_s"),
    "WebGPU page/TF.js WebGPU": ("tfjs_webgpu_s", "webgpu_page_draw_s"),
    "WebGPU/WebGL2 native": ("packed_draw_s", "webgpu_draw_s"),
    "WebGPU/WebGL2 page": ("browser_draw_s", "webgpu_page_draw_s"),
}


def format_side_by_side(rows: List[Dict[str, object]]) -> str:
    """gpuconv's fast path natively and in Chromium, TF.js's two WebGL paths and NumPy, and
    gpuconv's WebGPU target natively and in Chromium beside TF.js's WebGPU backend, per layer;
    columns of series not timed in this run are left out."""
    def ms(key):
        def cell(r):
            if not r.get(key):
                return "-"
            return f"{r[key] * 1e3:.{2 if r[key] < 0.01 else 1}f} ({gflops(r, key):.2f})"
        return cell

    def ratio(label):
        def cell(r):
            value = _ratio(r, *RATIOS[label])
            return f"{value:.2f}x" if value else "-"
        return cell

    def on_top(r):
        if not r.get("browser_draw_s"):
            return "-"
        return f"{(r['browser_python_draw_s'] - r['browser_draw_s']) * 1e3:+.1f}"

    def text(key):
        return lambda r: str(r.get(key, "-"))

    def error(*keys):
        def cell(r):
            values = [r[key] for key in keys if r.get(key) is not None]
            return f"{max(values):.1e}" if values else "-"
        return cell

    # (header, cell, the row key whose presence in some row brings the column in; None: always)
    columns = [
        ("layer", text("layer"), None),
        ("MFLOP", lambda r: f"{r['mflop']:.1f}", None),
        ("native ms (GF/s)", ms("packed_draw_s"), None),
        ("browser ms (GF/s)", ms("browser_draw_s"), "browser_draw_s"),
        ("+ Python ms", on_top, "browser_draw_s"),
        ("TF.js default ms (GF/s)", ms("tfjs_default_s"), "browser_draw_s"),
        ("TF.js direct ms (GF/s)", ms("tfjs_direct_s"), "browser_draw_s"),
        ("numpy f32 ms", lambda r: f"{r['numpy_f32_s'] * 1e3:.1f}", None),
        ("native/TF.js", ratio("native/TF.js"), "browser_draw_s"),
        ("browser/TF.js", ratio("browser/TF.js"), "browser_draw_s"),
        ("WebGPU native ms (GF/s)", ms("webgpu_draw_s"), "webgpu_draw_s"),
        ("WebGPU page ms (GF/s)", ms("webgpu_page_draw_s"), "webgpu_draw_s"),
        ("TF.js WebGPU ms (GF/s)", ms("tfjs_webgpu_s"), "webgpu_draw_s"),
        ("WebGPU page/TF.js WebGPU", ratio("WebGPU page/TF.js WebGPU"), "webgpu_draw_s"),
        ("WebGPU/WebGL2 native", ratio("WebGPU/WebGL2 native"), "webgpu_draw_s"),
        ("WebGPU/WebGL2 page", ratio("WebGPU/WebGL2 page"), "webgpu_page_draw_s"),
        ("WebGPU error (native, page)", error("webgpu_rel_error", "webgpu_page_rel_error"), "webgpu_draw_s"),
        ("gpuconv programs (auto)", text("programs"), None),
        ("TF.js default programs", text("tfjs_default_programs"), "browser_draw_s"),
        ("TF.js direct programs", text("tfjs_direct_programs"), "browser_draw_s"),
        ("gpuconv WebGPU programs", text("webgpu_programs"), "webgpu_draw_s"),
        ("TF.js WebGPU programs", text("tfjs_webgpu_programs"), "webgpu_draw_s"),
    ]
    columns = [c for c in columns if c[2] is None or any(r.get(c[2]) for r in rows)]
    return _markdown([header for header, _, _ in columns], [[cell(r) for _, cell, _ in columns] for r in rows])


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


def ratio_summary(rows, label: str) -> Optional[Dict[str, Any]]:
    """Over the layers where both of :data:`RATIOS`' ``label`` series were timed: the median,
    the worst (smallest) and the best ratio, their layers, and on how many ours was faster."""
    values = sorted((_ratio(r, *RATIOS[label]), r["layer"]) for r in rows if _ratio(r, *RATIOS[label]))
    if not values:
        return None
    return {"median": statistics.median(v for v, _ in values), "worst": values[0][0], "worst_layer": values[0][1],
            "best": values[-1][0], "best_layer": values[-1][1], "faster": sum(v > 1 for v, _ in values),
            "layers": len(values)}


def side_by_side_summary(rows) -> str:
    """The median and the worst (smallest) ratio of each of :data:`RATIOS` over the layers."""
    parts = []
    for label, text in (("native/TF.js", "gpuconv native/TF.js-default"),
                        ("browser/TF.js", "gpuconv browser/TF.js-default"),
                        ("WebGPU page/TF.js WebGPU", "gpuconv WebGPU in the page/TF.js WebGPU"),
                        ("WebGPU/WebGL2 native", "gpuconv WebGPU/WebGL2 natively"),
                        ("WebGPU/WebGL2 page", "gpuconv WebGPU/WebGL2 in the page")):
        stats = ratio_summary(rows, label)
        if stats:
            parts.append(f"{text}: median {stats['median']:.2f}x, worst {stats['worst']:.2f}x "
                         f"({stats['worst_layer']}), faster on {stats['faster']} of {stats['layers']}")
    errors = [r[key] for r in rows for key in ("browser_rel_error", "tfjs_default_rel_error", "tfjs_direct_rel_error")
              if r.get(key) is not None]
    if errors:
        parts.append(f"largest browser/TF.js error vs the oracle {max(errors):.2g} (relative)")
    errors = [r[key] for r in rows for key in ("webgpu_rel_error", "webgpu_page_rel_error", "tfjs_webgpu_rel_error")
              if r.get(key) is not None]
    if errors:
        parts.append(f"largest WebGPU error vs the oracle {max(errors):.2g} (relative)")
    return ";\n".join(parts)


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
              ("TF.js direct", "tfjs_direct_s"), ("WebGPU native", "webgpu_draw_s"),
              ("WebGPU page", "webgpu_page_draw_s"), ("TF.js WebGPU", "tfjs_webgpu_s")]
    series = [(label, key) for label, key in series if all(r.get(key) for r in rows)]
    positions = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(11, 5.5))
    width = 0.8 / len(series)
    for i, (label, key) in enumerate(series):
        ax.bar(positions + (i - (len(series) - 1) / 2) * width, [gflops(r, key) for r in rows], width, label=label)
    ax.set_xticks(positions, names, rotation=20)
    ax.set_ylabel("GFLOP/s (higher is better)")
    ax.set_yscale("log")
    # below the axes: with the browser and WebGPU series there are ten, which would hide bars
    ax.legend(fontsize=8, ncol=5, loc="upper center", bbox_to_anchor=(0.5, -0.22))
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


def _source_state() -> str:
    """The commit this gpuconv is at, and the files that differ from it (others may be editing
    the tree while the benchmark runs): what a table was measured on."""
    import subprocess

    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                              timeout=10)
        if head.returncode:
            return f"{root} is not a git checkout"
        commit = head.stdout.strip()
        changed = subprocess.run(["git", "status", "--porcelain", "--", "gpuconv", "shaders"], cwd=root,
                                 capture_output=True, text=True, timeout=10).stdout.split("\n")
    except (OSError, subprocess.SubprocessError):
        return "not a git checkout"
    changed = [line[3:] for line in changed if line.strip()]
    return (f"gpuconv at {commit or '?'}" + (f", {len(changed)} files changed ({', '.join(changed)})"
                                             if changed else ", unchanged"))


def _load() -> str:
    try:
        return "load average " + " ".join(f"{v:.2f}" for v in os.getloadavg()) + f" on {os.cpu_count()} CPUs"
    except OSError:  # pragma: no cover - no getloadavg on this platform
        return f"{os.cpu_count()} CPUs"


def _open_webgpu(args, report: Dict[str, Any]):
    """gpuconv's WebGPU runtimes for ``--webgpu``: ``(native, in the page)``.  The native one
    (gpuconv.WebGPURuntime) must start; the page's (gpuconv.BrowserRuntime(api="webgpu"), on
    ``--webgpu-gl``'s adapter) is ``None`` where this gpuconv has none or it cannot start
    (said, and its column stays empty)."""
    try:
        native = gpuconv.WebGPURuntime()
    except Exception as error:  # no wgpu-py, or no adapter: --webgpu was asked for, so stop here
        raise SystemExit(f"--webgpu: gpuconv.WebGPURuntime() did not start: {error}") from error
    info = native.info()
    report["webgpu"] = info
    print(f"WebGPU natively: {info['adapter']} ({info['backend']}, {info['driver']}; wgpu-py {info['wgpu']})",
          flush=True)
    page = None
    try:
        page = gpuconv.BrowserRuntime(gl=args.webgpu_gl, api="webgpu")
    except TypeError as error:  # a BrowserRuntime without the api= argument
        why = f"this gpuconv's BrowserRuntime has no api='webgpu' ({error})"
    except Exception as error:
        why = f"gpuconv.BrowserRuntime(api='webgpu', gl={args.webgpu_gl!r}) did not start: {error}"
    if page is None:
        print(f"gpuconv WebGPU in the page: not timed: {why}", flush=True)
        report["webgpu_browser"] = {"error": why}
        return native, None
    page_info = page.info()
    adapter = page_info.get("adapter") or page_info.get("renderer")
    if isinstance(adapter, dict):
        adapter = adapter.get("description") or adapter.get("device")
    report["webgpu_browser"] = dict(page_info, adapter=adapter)
    print(f"gpuconv WebGPU in the page: Chromium {page.browser_version}, {adapter} "
          f"(gpuconv.BrowserRuntime(api='webgpu', gl={args.webgpu_gl!r}))", flush=True)
    return native, page


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
    parser.add_argument("--webgpu", action="store_true",
                        help="also time gpuconv's WebGPU target: natively (gpuconv.WebGPURuntime, wgpu-py) beside "
                             "its WebGL2 path, and in headless Chromium (gpuconv.BrowserRuntime(api='webgpu'))")
    parser.add_argument("--tfjs-webgpu", action="store_true",
                        help="also time TF.js 4.22's WebGPU backend in the same Chromium on the same adapter "
                             "(implies --webgpu; needs 'bash benchmarks/tfjs/setup.sh' first)")
    parser.add_argument("--webgpu-gl", choices=("angle-egl", "swiftshader"), default="angle-egl",
                        help="Chromium's WebGPU adapter for --webgpu and --tfjs-webgpu: angle-egl (default; a "
                             "compatibility-mode adapter on ANGLE over the system's EGL) or swiftshader")
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
    args.webgpu = args.webgpu or args.tfjs_webgpu
    if args.webgpu and args.storage != "float32":
        parser.error("--webgpu: gpuconv's WebGPU target stores float32 alone; leave --storage at float32")
    for wanted, api in ((args.tfjs, "webgl"), (args.tfjs_webgpu, "webgpu")):
        if wanted:
            runner = load_tfjs_runner()
            problem = runner.missing(Path(args.tfjs_dir), api)
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
    browser = tfjs = webgpu = webgpu_page = tfjs_webgpu = None
    report: Dict[str, Any] = {"device": info, "repeat": repeat, "load_before": _load(), "source": _source_state()}
    print(report["source"], flush=True)
    try:
        if args.webgpu:
            webgpu, webgpu_page = _open_webgpu(args, report)
            if args.tfjs_webgpu:
                tfjs_webgpu = runner.TfjsBench(gl=args.webgpu_gl, directory=Path(args.tfjs_dir), api="webgpu")
                page = tfjs_webgpu.info["webgpu"]
                report["tfjs_webgpu"] = {"gl": args.webgpu_gl, "pages": tfjs_webgpu.info}
                print(f"TF.js {page['version']} WebGPU backend (defaults) on {page['renderer']} "
                      f"(requested {page['adapter']['request'] or 'as TF.js does'}, gl={args.webgpu_gl!r}"
                      f"{', compatibility mode' if page['adapter']['compatibility'] else ''}"
                      f"{', a fallback adapter' if page['adapter']['fallback'] else ''})", flush=True)
                ours = report.get("webgpu_browser", {}).get("adapter")
                report["tfjs_webgpu"]["same_adapter"] = ours == page["renderer"] if ours else None
                if ours and ours != page["renderer"]:
                    print(f"warning: TF.js's WebGPU adapter ({page['renderer']}) is not gpuconv's page's ({ours})",
                          flush=True)
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
            rows.append(run_layer(layer, runtime, repeat, browser=browser, tfjs=tfjs, webgpu=webgpu,
                                  webgpu_page=webgpu_page, tfjs_webgpu=tfjs_webgpu))
        for round_ in range(2, args.rounds + 1):
            for i, (layer, row) in enumerate(zip(layers, rows), 1):
                print(f"  round {round_}/{args.rounds} [{i}/{len(layers)}] {layer.name} ...", file=sys.stderr,
                      flush=True)
                loads.append(os.getloadavg()[0])
                time_side_by_side(layer, row, runtime, repeat, browser=browser, tfjs=tfjs, webgpu=webgpu,
                                  webgpu_page=webgpu_page, tfjs_webgpu=tfjs_webgpu)
    finally:
        for bench in (tfjs, tfjs_webgpu):
            if bench is not None:
                bench.close()
        for other in (browser, webgpu_page, webgpu):
            if other is not None:
                other.release()
    report["load_after"] = _load()
    report["load_1min_during"] = loads
    print(format_table(rows))
    print(summary(rows))
    if browser is not None or webgpu is not None:
        print()
        print(format_side_by_side(rows))
        text = side_by_side_summary(rows)
        if text:
            print(text)
        report["ratios"] = {label: ratio_summary(rows, label) for label in RATIOS if ratio_summary(rows, label)}
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
