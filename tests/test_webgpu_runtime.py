"""The WebGPU runtime itself: what it tells, what it refuses, threads, and its messages when a
piece is missing.  (The op matrix on WebGPU is in tests/test_webgpu.py.)"""

from __future__ import annotations

import os
import sys
import threading

import numpy as np
import pytest

import gpuconv
from gpuconv.runtimes import GLUnavailableError
from gpuconv.runtimes.webgpu import VULKAN_PACKAGES, WebGPURuntime


@pytest.fixture(scope="module")
def gpu():
    try:
        runtime = WebGPURuntime()
    except GLUnavailableError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"no WebGPU adapter on CI: {exc}")
        pytest.skip(f"no WebGPU adapter: {exc}")
    yield runtime
    runtime.release()


def test_info_names_the_adapter_backend_and_limits(gpu):
    info = gpu.info()
    assert info["target"] == "webgpu"
    assert info["adapter"] and info["backend"]
    assert info["limits"]["max_storage_buffer_binding_size"] >= 128 << 20
    # programs are generated for WebGPU's guaranteed limits, not this device's larger ones
    assert info["program_limits"]["max_compute_workgroup_storage_size"] == 16384
    assert gpu.target.name == "webgpu" and gpu.target.language == "WGSL"


def test_a_smaller_device_is_emulated_and_a_larger_one_refused(gpu):
    with WebGPURuntime(adapter=gpu.adapter, max_compute_invocations_per_workgroup=32) as small:
        assert small.limits.max_compute_invocations_per_workgroup == 32
    with pytest.raises(ValueError, match="max_compute_invocations_per_workgroup=.* exceeds this device's limit"):
        WebGPURuntime(adapter=gpu.adapter, max_compute_invocations_per_workgroup=1 << 20)
    with pytest.raises(TypeError, match="unknown WebGPU limit"):
        WebGPURuntime(adapter=gpu.adapter, max_texture_size=2048)
    with pytest.raises(ValueError, match="power_preference must be one of"):
        WebGPURuntime("fast")
    with pytest.raises(TypeError, match="adapter must be a wgpu.GPUAdapter"):
        WebGPURuntime(adapter="llvmpipe")


def test_threads_share_one_runtime(gpu, rng):
    """Calls from several threads on one runtime each get their own right answer (the runtime
    serialises them on its one queue)."""
    x = rng.standard_normal((4, 12, 12, 8)).astype(np.float32)
    w = rng.standard_normal((3, 3, 8, 8)).astype(np.float32)
    expected = gpuconv.oracle.conv2d(x, w, padding="SAME")
    errors, results = [], {}

    def work(k: int) -> None:
        try:
            for _ in range(3):
                results[k] = gpuconv.conv2d(x[k:k + 1], w, padding="SAME", runtime=gpu)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    for k in range(4):
        np.testing.assert_allclose(results[k][0], expected[k], rtol=0, atol=1e-5 * np.abs(expected).max())


def test_buffers_are_freed_deterministically(gpu, rng):
    before = gpu.memory()["textures"]
    x = rng.standard_normal((1, 9, 9, 4)).astype(np.float32)
    gpuconv.conv2d(x, rng.standard_normal((3, 3, 4, 4)).astype(np.float32), runtime=gpu)
    assert gpu.memory()["textures"] == before
    t = gpuconv.to_gpu(x, runtime=gpu)
    assert gpu.memory() == {"textures": before + 1, "bytes": gpu.memory()["bytes"]}
    handle = t.textures[0]
    t.release()
    assert handle.buffer is None  # destroyed now, not when the garbage collector runs
    assert gpu.memory()["textures"] == before


def test_a_released_runtime_refuses_work(gpu, rng):
    runtime = WebGPURuntime(adapter=gpu.adapter)
    runtime.release()
    runtime.release()  # twice is fine
    with pytest.raises(RuntimeError, match="released"):
        gpuconv.conv2d(np.ones((1, 4, 4, 1), np.float32), np.ones((1, 1, 1, 1), np.float32), runtime=runtime)


def test_missing_wgpu_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "wgpu", None)  # import wgpu now raises ImportError
    with pytest.raises(GLUnavailableError, match=r"pip install 'gpuconv\[webgpu\]'"):
        WebGPURuntime()


def test_no_adapter_says_what_to_install(monkeypatch):
    import wgpu

    monkeypatch.setattr(wgpu.gpu, "request_adapter_sync", lambda **kw: None)
    with pytest.raises(GLUnavailableError, match=VULKAN_PACKAGES):
        WebGPURuntime()


# -- faults, forced: what the user sees -------------------------------------------------------------

def test_a_program_webgpu_refuses_names_the_op_and_the_program(gpu, rng, monkeypatch):
    from gpuconv.runtimes.webgpu import WebGPUError
    from gpuconv.webgpu.target import WEBGPU

    real = WEBGPU.source
    monkeypatch.setattr(type(WEBGPU), "source", lambda self, spec: real(spec).replace("fn main(", "fn main((", 1))
    runtime = WebGPURuntime(adapter=gpu.adapter)
    x = rng.standard_normal((1, 6, 6, 4)).astype(np.float32)
    with pytest.raises(WebGPUError, match=r"(?s)conv2d: Conv2DBlockedProgram: WebGPU refused the program.*"
                                          r"(expected|parsing)"):
        gpuconv.conv2d(x, np.ones((3, 3, 4, 4), np.float32), runtime=runtime)
    monkeypatch.undo()
    assert gpuconv.conv2d(x, np.ones((3, 3, 4, 4), np.float32), runtime=runtime).shape == (1, 4, 4, 4)  # still works
    runtime.release()


def test_a_lost_device_is_reported_and_a_new_runtime_works(gpu):
    from gpuconv.runtimes.webgpu import WebGPUError

    runtime = WebGPURuntime(adapter=gpu.adapter)
    x, w = np.ones((1, 6, 6, 4), np.float32), np.ones((3, 3, 4, 4), np.float32)
    runtime.device.destroy()  # what a driver reset or a GPU removal does to the device
    for _ in range(2):  # and every later call says so too, without touching the device
        with pytest.raises(WebGPUError, match="conv2d: .*device was lost.*make a new gpuconv.WebGPURuntime"):
            gpuconv.conv2d(x, w, runtime=runtime)
    runtime.release()
    with WebGPURuntime(adapter=gpu.adapter) as fresh:
        np.testing.assert_allclose(gpuconv.conv2d(x, w, runtime=fresh), gpuconv.oracle.conv2d(x, w), rtol=1e-6)


def test_out_of_memory_is_reported_with_what_to_do(gpu, monkeypatch):
    import wgpu

    from gpuconv.runtimes.webgpu import WebGPUError

    runtime = WebGPURuntime(adapter=gpu.adapter)

    def exhausted(**kwargs):
        raise wgpu.GPUOutOfMemoryError("Not enough memory left")  # what the driver raises when it is full

    monkeypatch.setattr(runtime.device, "create_buffer", exhausted)
    with pytest.raises(WebGPUError, match=r"conv2d: a buffer of \d+ bytes .* out of memory.*release"):
        gpuconv.conv2d(np.ones((1, 6, 6, 4), np.float32), np.ones((3, 3, 4, 4), np.float32), runtime=runtime)
    monkeypatch.undo()
    runtime.release()
