"""TensorFlow's bundled LLVM and Mesa's llvmpipe in one process (issue 10, defect 5).

``import tensorflow`` before the first draw made the process crash (a segmentation
fault in Mesa's ``swrast_dri.so``); importing it after the first draw crashed inside
TensorFlow's own import.  Now gpuconv runs its GL work in a worker process in the
first case (one warning, the same results) and turns the second into an ImportError
that says what to do.  The TensorFlow tests run in subprocesses (a crash there is a
failed test, not a dead test run); they need ``tensorflow-cpu``, which CI installs.
"""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
import threading
import warnings

import numpy as np
import pytest

import gpuconv
import gpuconv.runtimes
import gpuconv.runtimes.native

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _tensorflow_installed() -> bool:
    # Not importlib.util.find_spec: once this process has drawn, gpuconv refuses that import.
    for name in ("tensorflow-cpu", "tensorflow"):
        try:
            importlib.metadata.version(name)
            return True
        except importlib.metadata.PackageNotFoundError:
            pass
    return False


needs_tensorflow = pytest.mark.skipif(
    not _tensorflow_installed() and not os.environ.get("GPUCONV_REQUIRE_CROSSCHECKS"),
    reason="tensorflow-cpu is not installed (CI installs it: pip install tensorflow-cpu==2.21.0)")

SCRIPT = """
import sys, warnings
import numpy as np
{before}
import gpuconv
rng = np.random.default_rng(0)
x = rng.uniform(-1, 1, (2, 9, 9, 5)).astype("f4"); w = rng.uniform(-1, 1, (3, 3, 5, 4)).astype("f4")
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    ys = [gpuconv.conv2d(x, w, padding="SAME", algorithm=a) for a in ("direct", "packed")]
    ys.append(gpuconv.separable_conv2d(x, w[..., :1], np.ones((1, 1, 5, 3), "f4"), padding="SAME"))
{after}
errors = [gpuconv.oracle.relative_error(ys[i], gpuconv.oracle.conv2d(x, w, padding="SAME")) for i in (0, 1)]
errors.append(gpuconv.oracle.relative_error(
    ys[2], gpuconv.oracle.separable_conv2d(x, w[..., :1], np.ones((1, 1, 5, 3), "f4"), padding="SAME")))
print("runtime", type(gpuconv.get_runtime()).__name__)
texts = [str(w.message) for w in caught if "worker process" in str(w.message)]
print("warnings", len(texts))
print("warning", texts[0] if texts else "none")
print("error", max(errors))
"""


def _run(before: str = "", after: str = "", env: dict = {}) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", SCRIPT.format(before=before, after=after)], cwd=ROOT,
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **env})


def _lines(done: subprocess.CompletedProcess) -> dict:
    return dict(line.split(" ", 1) for line in done.stdout.splitlines() if " " in line)


@needs_tensorflow
def test_import_tensorflow_first_runs_the_gl_work_in_a_worker():
    done = _run(before="import tensorflow")
    assert done.returncode == 0, done.stderr[-3000:]
    out = _lines(done)
    assert out["runtime"] == "WorkerRuntime"
    assert out["warnings"] == "1"  # one warning, for the one runtime
    assert float(out["error"]) <= 1e-5
    assert "TensorFlow (libtensorflow_framework) is loaded in this process" in out["warning"]


@needs_tensorflow
def test_import_tensorflow_after_drawing_is_refused_not_a_crash():
    done = _run(after="import tensorflow")
    assert done.returncode == 1, (done.returncode, done.stderr[-3000:])  # not -11 (SIGSEGV)
    assert "ImportError: gpuconv: importing tensorflow after gpuconv has drawn" in done.stderr
    assert "GPUCONV_WORKER=1" in done.stderr


@needs_tensorflow
def test_with_gpuconv_worker_set_tensorflow_may_come_later():
    done = _run(after="import tensorflow", env={"GPUCONV_WORKER": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    out = _lines(done)
    assert out["runtime"] == "WorkerRuntime" and float(out["error"]) <= 1e-5


def test_a_detected_clash_moves_the_default_runtime_to_a_worker(runtime, rng, monkeypatch):
    """Without TensorFlow: pretend the clash is there; the worker's results are the native ones, bit for bit."""
    monkeypatch.setattr(gpuconv.runtimes, "llvm_clash", lambda: "TensorFlow (test)")
    x = rng.uniform(-1, 1, (1, 7, 8, 6)).astype(np.float32)
    w = rng.uniform(-1, 1, (3, 2, 6, 3)).astype(np.float32)
    results = {}

    def work():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            own = gpuconv.get_runtime()
            results["kind"] = type(own).__name__
            results["y"] = [gpuconv.conv2d(x, w, padding="SAME", algorithm=a) for a in ("direct", "packed")]
            results["info"] = own.info()
        results["warnings"] = [str(w.message) for w in caught]

    thread = threading.Thread(target=work)
    thread.start()
    thread.join(300)
    assert results["kind"] == "WorkerRuntime"
    assert len(results["warnings"]) == 1 and "TensorFlow (test) is loaded" in results["warnings"][0]
    assert results["info"]["renderer"] == runtime.info()["renderer"] and "worker" in results["info"]["process"]
    for algorithm, y in zip(("direct", "packed"), results["y"]):
        np.testing.assert_array_equal(y, gpuconv.conv2d(x, w, padding="SAME", algorithm=algorithm, runtime=runtime))


def test_the_worker_runtime_serves_every_call_and_reports_errors(runtime, rng):
    x = rng.uniform(-1, 1, (1, 6, 6, 4)).astype(np.float32)
    dw = rng.uniform(-1, 1, (3, 3, 4, 2)).astype(np.float32)
    pw = rng.uniform(-1, 1, (1, 1, 8, 3)).astype(np.float32)
    with gpuconv.WorkerRuntime(max_draw_buffers=4) as worker:
        assert worker.max_draw_buffers == 4
        y = gpuconv.separable_conv2d(x, dw, pw, padding="SAME", runtime=worker)
        assert gpuconv.oracle.relative_error(y, gpuconv.oracle.separable_conv2d(x, dw, pw, padding="SAME")) <= 1e-5
        # the primitive calls work across the pipe too
        plan = gpuconv.ops.plan_conv2d(x, dw[..., :1], padding="SAME", depthwise=True, algorithm="packed")
        np.testing.assert_array_equal(plan.execute(worker), worker.run(plan))
        with pytest.raises(ValueError, match="inputs missing"):
            worker.draw(plan.spec, {})
    with pytest.raises(RuntimeError, match="has been released"):
        gpuconv.conv2d(x, dw[..., :1], runtime=worker)


def test_a_native_runtime_is_refused_with_the_reason_when_the_clash_is_there(monkeypatch):
    monkeypatch.setattr(gpuconv.runtimes.native, "llvm_clash", lambda: "TensorFlow (test)")
    with pytest.raises(gpuconv.runtimes.LLVMClashError, match="gpuconv.WorkerRuntime()"):
        gpuconv.Runtime()
