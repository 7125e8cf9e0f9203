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


relative_error = gpuconv.oracle.relative_error


def assert_close(result, reference, tol=1e-5):
    assert result.shape == reference.shape, (result.shape, reference.shape)
    assert result.dtype == np.float32
    error = relative_error(result, reference)
    assert error <= tol, f"relative error {error:.3g} > {tol:g}"


def import_crosscheck(name: str):
    """Import a library that a cross-check compares against (PyTorch, SciPy).

    They are not dependencies: locally a missing one skips its tests; CI installs
    them and sets GPUCONV_REQUIRE_CROSSCHECKS, and then a missing one fails.
    """
    if os.environ.get("GPUCONV_REQUIRE_CROSSCHECKS"):
        import importlib

        return importlib.import_module(name)
    return pytest.importorskip(name)


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
