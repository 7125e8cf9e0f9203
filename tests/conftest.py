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
