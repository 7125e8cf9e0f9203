"""Shared fixtures.  GPU tests need a GL context: without one they skip locally,
but on CI (CI=true) they fail, because running them is the point of CI."""

import os

import numpy as np
import pytest

import gpuconv
from gpuconv.runtimes import GLUnavailableError


@pytest.fixture(scope="session")
def runtime():
    try:
        return gpuconv.get_runtime()
    except GLUnavailableError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"no GL context on CI: {exc}")
        pytest.skip(f"no GL context: {exc}")


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


# -- the WebGPU target (tests/test_webgpu.py, and GPUCONV_BACKEND=webgpu) ------------------
# Under GPUCONV_BACKEND=webgpu the `runtime` fixture is a WebGPURuntime, and the end-to-end
# files run again on the WebGPU target (.ci/run).  A test about the WebGL2 target itself
# (packed programs, textures, im2col, draw buffers, float16 storage, GLSL) is marked
# @pytest.mark.webgl2_only("why") and skips there, as does every test parametrized with a
# WebGL2-only algorithm ("packed", "im2col").

WEBGPU_BACKEND = os.environ.get("GPUCONV_BACKEND") == "webgpu"
WEBGL2_ALGORITHMS = ("packed", "im2col")


def pytest_configure(config):
    config.addinivalue_line("markers", "webgl2_only(reason): a test of the WebGL2 target; skipped when "
                                       "GPUCONV_BACKEND=webgpu runs the suite on the WebGPU target")


def pytest_collection_modifyitems(config, items):
    if not WEBGPU_BACKEND:
        return
    for item in items:
        marker = item.get_closest_marker("webgl2_only")
        params = getattr(getattr(item, "callspec", None), "params", {})
        algorithms = [value for name, value in params.items() if "algorithm" in name]
        algorithms = [a for value in algorithms for a in (value if isinstance(value, (tuple, list)) else [value])]
        webgl2 = [a for a in algorithms if isinstance(a, str) and a in WEBGL2_ALGORITHMS]
        if marker is not None:
            reason = marker.args[0] if marker.args else "a test of the WebGL2 target"
        elif webgl2:
            reason = f"algorithm={webgl2[0]!r} is a WebGL2 program"
        else:
            continue
        item.add_marker(pytest.mark.skip(reason=f"GPUCONV_BACKEND=webgpu: {reason}"))


@pytest.fixture(scope="session")
def webgpu():
    """A WebGPURuntime (wgpu-py; Mesa's lavapipe without a GPU) shared by the session: the default
    runtime itself under GPUCONV_BACKEND=webgpu."""
    try:
        if WEBGPU_BACKEND:
            yield gpuconv.get_runtime()
            return
        runtime = gpuconv.WebGPURuntime()
    except GLUnavailableError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"no WebGPU adapter on CI: {exc}")
        pytest.skip(f"no WebGPU adapter: {exc}")
    yield runtime
    runtime.release()


# -- the browser runtime (tests/test_browser.py) ---------------------------------------
# One Chromium per GL choice for the whole session.  Without Chromium or Playwright the
# browser tests skip locally and fail on CI (CI=true), like the GL tests above.

def _browser_runtime(**options):
    try:
        from gpuconv.runtimes.browser import BrowserRuntime

        return BrowserRuntime(**options)
    except GLUnavailableError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"no browser runtime on CI: {exc}")
        pytest.skip(f"no browser runtime: {exc}")


@pytest.fixture(scope="session")
def browser():
    """A BrowserRuntime on ANGLE over Mesa's EGL (llvmpipe), shared by the session."""
    runtime = _browser_runtime(gl="angle-egl")
    yield runtime
    runtime.release()


@pytest.fixture(scope="session")
def browser_swiftshader():
    """A BrowserRuntime on SwiftShader (Chromium's CPU Vulkan), shared by the session."""
    runtime = _browser_runtime(gl="swiftshader")
    yield runtime
    runtime.release()


@pytest.fixture(scope="session")
def browser_phone():
    """A BrowserRuntime (ANGLE/EGL) emulating a phone's 4 draw buffers."""
    runtime = _browser_runtime(gl="angle-egl", max_draw_buffers=4)
    yield runtime
    runtime.release()


# -- the browser runtime's WebGPU page (tests/test_browser_webgpu.py) -----------------------

@pytest.fixture(scope="session")
def browser_webgpu():
    """A BrowserRuntime(api="webgpu") on the compatibility adapter on ANGLE over EGL (llvmpipe)."""
    runtime = _browser_runtime(api="webgpu", gl="angle-egl")
    yield runtime
    runtime.release()


@pytest.fixture(scope="session")
def browser_webgpu_swiftshader():
    """A BrowserRuntime(api="webgpu") on SwiftShader, Chromium's fallback adapter (timestamp-query)."""
    runtime = _browser_runtime(api="webgpu", gl="swiftshader")
    yield runtime
    runtime.release()
