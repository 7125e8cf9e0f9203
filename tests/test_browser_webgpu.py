"""The browser runtime's WebGPU page: gpuconv's WGSL programs in headless Chromium's WebGPU.

The matrix runs on the compatibility adapter on ANGLE over Mesa's EGL (llvmpipe), both
algorithms; a subset on SwiftShader (the fallback adapter: slow, with timestamp-query).
Every result is checked against the float64 oracle and against the native WebGPURuntime
(wgpu-py on lavapipe: the same programs, another compiler).  One Chromium per adapter
serves the session (fixtures in conftest.py).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import gpuconv
from gpuconv.runtimes import GLUnavailableError, WebGPUError
from gpuconv.webgpu.layout import BufferLayout
from gpuconv.webgpu.target import WEBGPU

#: Relative error against the oracle, of the output's largest magnitude.
TOL = 1e-5
#: Page against native WebGPURuntime: the same WGSL, compiled by ANGLE/SwiftShader vs lavapipe.
NATIVE_TOL = 2e-6


def _data(rng, *shapes):
    return [rng.uniform(-1, 1, size=shape).astype(np.float32) for shape in shapes]


def _check(page, native, run, expected):
    """``run(runtime)`` on the page matches ``expected`` (the oracle's) and, where the native
    WebGPURuntime is at hand, its result too."""
    result = run(page)
    assert result.dtype == np.float32 and result.shape == expected.shape, (result.shape, expected.shape)
    error = gpuconv.oracle.relative_error(result, expected)
    assert error <= TOL, f"relative error {error:.3g} > {TOL:g}"
    if native is not None:
        difference = gpuconv.oracle.relative_error(result, run(native))
        assert difference <= NATIVE_TOL, f"page vs native WebGPURuntime {difference:.3g}"
    return error


@pytest.fixture(scope="module")
def native(request):
    """The native WebGPURuntime to agree with, or None where wgpu-py has no adapter (CI has one)."""
    try:
        return request.getfixturevalue("webgpu")
    except pytest.skip.Exception:
        return None


def _ran(page, name):
    """Whether the page has compiled a program called ``name``."""
    return any(getattr(key, "name", None) == name for key in page._programs)


def _ran_planned(page, op, x_shape, w_shape, **kwargs):
    """The programs the WebGPU target plans for this call on ``page``: all compiled there."""
    specs = gpuconv.registry.plan_shapes(op, x_shape, w_shape, target="webgpu", target_limits=page.limits,
                                         **kwargs).specs
    assert all(spec in page._programs for spec in specs), [spec.name for spec in specs]
    return [spec.name for spec in specs]


# -- conv2d ------------------------------------------------------------------------------------

CONV2D_CASES = [
    # x (NHWC),         filter,         keyword arguments
    ((2, 9, 10, 6), (3, 3, 6, 8), dict(padding="SAME")),
    ((1, 11, 9, 4), (3, 2, 4, 5), dict(strides=(2, 1), padding="VALID")),
    ((1, 10, 10, 3), (3, 3, 3, 4), dict(padding=[[1, 2], [0, 1]], dilations=2)),
    ((1, 9, 9, 5), (3, 3, 5, 36), dict(strides=2, padding="SAME")),
    ((1, 8, 8, 6), (3, 3, 3, 4), dict(padding="SAME", groups=2)),
]
CONV2D_IDS = ["batch2-same", "strides-valid", "explicit-dilated", "strided-many-channels", "groups"]


@pytest.mark.parametrize("algorithm", ["auto", "direct"])
@pytest.mark.parametrize("x_shape, w_shape, kwargs", CONV2D_CASES, ids=CONV2D_IDS)
def test_conv2d(browser_webgpu, native, rng, x_shape, w_shape, kwargs, algorithm):
    x, w = _data(rng, x_shape, w_shape)
    _check(browser_webgpu, native, lambda rt: gpuconv.conv2d(x, w, algorithm=algorithm, runtime=rt, **kwargs),
           gpuconv.oracle.conv2d(x, w, **kwargs))
    names = _ran_planned(browser_webgpu, "conv2d", x_shape, w_shape, algorithm=algorithm, **kwargs)
    assert (names == ["Conv2DNaiveProgram"]) == (algorithm == "direct"), names


@pytest.mark.parametrize("algorithm", ["auto", "direct"])
def test_conv2d_nchw(browser_webgpu, native, rng, algorithm):
    x, w = _data(rng, (2, 5, 9, 8), (3, 3, 5, 6))
    kwargs = dict(strides=2, padding="SAME", data_format="NCHW")
    _check(browser_webgpu, native, lambda rt: gpuconv.conv2d(x, w, algorithm=algorithm, runtime=rt, **kwargs),
           gpuconv.oracle.conv2d(x, w, **kwargs))


EPILOGUES = {
    "bias-relu6": dict(activation="relu6"),
    "bias-prelu": dict(activation="prelu", prelu_weights="per-channel"),
    "bias-leakyrelu": dict(activation="leakyrelu", leakyrelu_alpha=0.3),
}


@pytest.mark.parametrize("algorithm", ["auto", "direct"])
@pytest.mark.parametrize("epilogue", list(EPILOGUES))
def test_conv2d_fused_epilogue(browser_webgpu, native, rng, epilogue, algorithm):
    x, w, bias, alpha = _data(rng, (1, 9, 10, 6), (3, 3, 6, 8), (8,), (8,))
    kwargs = dict(EPILOGUES[epilogue], padding="SAME", bias=bias * 3)
    if kwargs.get("prelu_weights") is not None:
        kwargs["prelu_weights"] = alpha
    _check(browser_webgpu, native, lambda rt: gpuconv.conv2d(x, w, algorithm=algorithm, runtime=rt, **kwargs),
           gpuconv.oracle.conv2d(x, w, **kwargs))


# -- depthwise, separable, conv1d, transpose ---------------------------------------------------

DEPTHWISE_CASES = [
    ((2, 9, 11, 8), (3, 3, 8, 1), dict(padding="SAME"), "DepthwiseConv2DVec4Program"),
    ((1, 10, 9, 8), (3, 3, 8, 1), dict(strides=2, padding="VALID", dilations=1), "DepthwiseConv2DVec4Program"),
    ((1, 9, 9, 3), (3, 3, 3, 2), dict(strides=2, padding=[[1, 0], [2, 1]]), "DepthwiseConv2DProgram"),
]


@pytest.mark.parametrize("x_shape, w_shape, kwargs, program", DEPTHWISE_CASES,
                         ids=["vec4-same", "vec4-strided", "multiplier2"])
def test_depthwise_conv2d(browser_webgpu, native, rng, x_shape, w_shape, kwargs, program):
    x, w, bias = _data(rng, x_shape, w_shape, (w_shape[2] * w_shape[3],))
    kwargs = dict(kwargs, bias=bias, activation="relu")
    _check(browser_webgpu, native, lambda rt: gpuconv.depthwise_conv2d(x, w, runtime=rt, **kwargs),
           gpuconv.oracle.depthwise_conv2d(x, w, **kwargs))
    assert _ran(browser_webgpu, program)


def test_separable_conv2d(browser_webgpu, native, rng):
    x, dw, pw = _data(rng, (1, 9, 9, 4), (3, 3, 4, 2), (1, 1, 8, 6))
    kwargs = dict(strides=1, padding="SAME")
    _check(browser_webgpu, native, lambda rt: gpuconv.separable_conv2d(x, dw, pw, runtime=rt, **kwargs),
           gpuconv.oracle.separable_conv2d(x, dw, pw, **kwargs))


def test_conv1d(browser_webgpu, native, rng):
    x, w = _data(rng, (2, 17, 5), (4, 5, 7))
    kwargs = dict(stride=2, padding="SAME")
    _check(browser_webgpu, native, lambda rt: gpuconv.conv1d(x, w, runtime=rt, **kwargs),
           gpuconv.oracle.conv1d(x, w, **kwargs))


def test_conv2d_transpose_with_bias(browser_webgpu, native, rng):
    x, w, bias = _data(rng, (2, 5, 6, 6), (3, 3, 4, 6), (4,))
    kwargs = dict(strides=2, padding="SAME", bias=bias)
    shape = (2, 10, 12, 4)
    _check(browser_webgpu, native, lambda rt: gpuconv.conv2d_transpose(x, w, shape, runtime=rt, **kwargs),
           gpuconv.oracle.conv2d_transpose(x, w, shape, **kwargs))
    assert _ran(browser_webgpu, "Conv2DDerInputProgram")


# -- SwiftShader: a subset ---------------------------------------------------------------------

@pytest.mark.parametrize("algorithm", ["auto", "direct"])
def test_swiftshader_conv2d(browser_webgpu_swiftshader, native, rng, algorithm):
    x, w, bias = _data(rng, (2, 9, 10, 6), (3, 3, 6, 8), (8,))
    kwargs = dict(strides=(1, 2), padding="SAME", bias=bias, activation="relu6")
    _check(browser_webgpu_swiftshader, native,
           lambda rt: gpuconv.conv2d(x, w, algorithm=algorithm, runtime=rt, **kwargs),
           gpuconv.oracle.conv2d(x, w, **kwargs))


def test_swiftshader_depthwise_and_transpose(browser_webgpu_swiftshader, native, rng):
    x, w = _data(rng, (1, 9, 11, 8), (3, 3, 8, 1))
    _check(browser_webgpu_swiftshader, native, lambda rt: gpuconv.depthwise_conv2d(x, w, padding="SAME", runtime=rt),
           gpuconv.oracle.depthwise_conv2d(x, w, padding="SAME"))
    assert _ran(browser_webgpu_swiftshader, "DepthwiseConv2DVec4Program")
    dy, wt = _data(rng, (1, 5, 6, 6), (3, 3, 4, 6))
    _check(browser_webgpu_swiftshader, native,
           lambda rt: gpuconv.conv2d_transpose(dy, wt, (1, 10, 12, 4), strides=2, padding="SAME", runtime=rt),
           gpuconv.oracle.conv2d_transpose(dy, wt, (1, 10, 12, 4), strides=2, padding="SAME"))


# -- Tensors -----------------------------------------------------------------------------------

def test_tensors_chain_in_the_page(browser_webgpu, rng):
    page = browser_webgpu
    x, w1, w2 = _data(rng, (1, 9, 9, 4), (3, 3, 4, 8), (3, 3, 8, 1))
    before = gpuconv.memory(page)
    with gpuconv.to_gpu(x, runtime=page) as tx:
        assert isinstance(tx.layout, BufferLayout)
        np.testing.assert_array_equal(tx.numpy(), x)  # float32 crosses bit for bit
        y = gpuconv.conv2d(tx, w1, padding="SAME")
        z = gpuconv.depthwise_conv2d(y, w2, padding="SAME", activation="relu")
        assert gpuconv.memory(page)["textures"] == before["textures"] + 3  # x, y, z (the weights went)
        expected = gpuconv.oracle.depthwise_conv2d(gpuconv.oracle.conv2d(x, w1, padding="SAME"), w2,
                                                   padding="SAME", activation="relu")
        assert gpuconv.oracle.relative_error(z.numpy(), expected) <= TOL
        y.release()
        z.release()
    after = gpuconv.memory(page)
    assert after["textures"] == before["textures"] and after["bytes"] == before["bytes"]
    assert after["page_buffers"] == before["page_buffers"]


@pytest.mark.parametrize("storage", ["float32", "float16"])
def test_arrays_cross_through_the_server_exactly(browser_webgpu, rng, monkeypatch, storage):
    """Every array outside the message (the page fetches uploads from the runtime's own server and
    hands read-backs back as a download)."""
    monkeypatch.setattr(gpuconv.runtimes.browser, "BLOB_BYTES", 1)
    x, w = _data(rng, (2, 7, 5, 3), (3, 3, 3, 5))
    with gpuconv.to_gpu(x, runtime=browser_webgpu) as tx:
        np.testing.assert_array_equal(tx.numpy(), x)
    y = gpuconv.conv2d(x, w, padding="SAME", storage=storage, runtime=browser_webgpu)
    expected = gpuconv.oracle.conv2d(x, w, padding="SAME")
    assert gpuconv.oracle.relative_error(y, expected) <= (TOL if storage == "float32" else 2e-3)
    assert not browser_webgpu._server._blobs and not browser_webgpu._downloads


# -- failures ----------------------------------------------------------------------------------

def test_float16_storage_runs_and_unknown_storage_is_refused(browser_webgpu, rng):
    x, w = _data(rng, (1, 6, 6, 2), (3, 3, 2, 2))
    y = gpuconv.conv2d(x, w, storage="float16", runtime=browser_webgpu)  # halves: tests/test_webgpu_float16.py
    assert np.array_equal(y, y.astype(np.float16).astype(np.float32))
    with pytest.raises(ValueError, match="storage must be"):
        gpuconv.BrowserRuntime(api="webgpu", storage="float8")  # before any browser starts


def test_a_rejected_program_names_itself_and_the_runtime_goes_on(browser_webgpu, rng, monkeypatch):
    page = browser_webgpu
    x, w = _data(rng, (1, 7, 13, 3), (2, 2, 3, 5))  # a shape no other test compiles
    expected = gpuconv.oracle.conv2d(x, w, padding="SAME")
    real = WEBGPU.source
    monkeypatch.setattr(WEBGPU, "source", lambda spec: real(spec).replace("fn main", "fn main_is_missing"))
    with pytest.raises(WebGPUError, match="Conv2DMMProgram: WebGPU refused the program"):
        gpuconv.conv2d(x, w, padding="SAME", runtime=page)
    monkeypatch.setattr(WEBGPU, "source", lambda spec: real(spec) + "\nfn broken() -> f32 { return undefined_name; }\n")
    with pytest.raises(WebGPUError, match="Conv2DNaiveProgram.*undefined_name"):
        gpuconv.conv2d(x, w, padding="SAME", algorithm="direct", runtime=page)
    monkeypatch.undo()
    assert gpuconv.oracle.relative_error(gpuconv.conv2d(x, w, padding="SAME", runtime=page), expected) <= TOL
    assert gpuconv.memory(page)["page_buffers"] == gpuconv.memory(page)["textures"]


def test_a_refused_dispatch_names_the_program(browser_webgpu, rng):
    page = browser_webgpu
    x, w = _data(rng, (1, 8, 8, 1), (1, 1, 1, 1))
    (spec, _), = gpuconv.registry.plan_shapes("conv2d", x.shape, w.shape, target="webgpu", algorithm="direct").steps
    # 70000 workgroups along x: more than maxComputeWorkgroupsPerDimension, caught by WebGPU alone
    spec = dataclasses.replace(spec, workgroups=70000, max_workgroups_per_dimension=70000)
    tx, tw = page.upload(x, BufferLayout(x.shape)), page.upload(w, BufferLayout(w.shape))
    with pytest.raises(WebGPUError, match="Conv2DNaiveProgram: WebGPU refused the dispatch"):
        page.draw(spec, {"x": tx, "W": tw})
    page.free([tx, tw])
    assert gpuconv.conv2d(x, w, runtime=page).shape == (1, 8, 8, 1)  # still working


def test_a_lost_device_is_an_error_and_the_runtime_refuses_after(rng):
    page = gpuconv.BrowserRuntime(api="webgpu", gl="angle-egl")
    try:
        x, w = _data(rng, (1, 6, 6, 2), (3, 3, 2, 2))
        gpuconv.conv2d(x, w, runtime=page)
        page._page.evaluate("gpuconv.loseDevice()")
        with pytest.raises(WebGPUError, match="device was lost.*make a new"):
            gpuconv.conv2d(x, w, runtime=page)
        with pytest.raises(WebGPUError, match="device was lost"):
            gpuconv.to_gpu(x, runtime=page)
    finally:
        page.release()


def test_no_webgpu_says_which_flags(monkeypatch):
    from gpuconv.runtimes import browser

    monkeypatch.setitem(browser.WEBGPU_FLAGS, "angle-egl", ("--disable-gpu",))
    with pytest.raises(GLUnavailableError, match="--enable-unsafe-webgpu.*--use-webgpu-adapter=opengles"):
        gpuconv.BrowserRuntime(api="webgpu", gl="angle-egl")
    with pytest.raises(ValueError, match="gl must be one of 'angle-egl', 'swiftshader' with api='webgpu'"):
        gpuconv.BrowserRuntime(api="webgpu", gl="egl")
    with pytest.raises(ValueError, match="api must be 'webgl2' or 'webgpu'"):
        gpuconv.BrowserRuntime(api="vulkan")
    with pytest.raises(TypeError, match="unknown WebGPU limit"):
        gpuconv.BrowserRuntime(api="webgpu", max_draw_buffers=4)


# -- facts -------------------------------------------------------------------------------------

def test_info_names_the_adapter(browser_webgpu, browser_webgpu_swiftshader):
    angle, swift = browser_webgpu.info(), browser_webgpu_swiftshader.info()
    for info in (angle, swift):
        assert info["api"] == "webgpu" and info["target"] == "webgpu" and info["runtime"] == "browser"
        assert set(info["limits"]) == set(info["program_limits"])
        assert set(info["adapter"]) >= {"vendor", "architecture", "description", "isFallbackAdapter", "featureLevel"}
    assert angle["adapter"]["featureLevel"] == "compatibility" and not angle["adapter"]["isFallbackAdapter"]
    assert "ANGLE" in angle["adapter"]["description"] and not angle["timestamp_query"]
    assert swift["adapter"]["isFallbackAdapter"] and swift["adapter"]["architecture"] == "swiftshader"
    assert swift["timestamp_query"] and "timestamp-query" in swift["features"]
    assert browser_webgpu.target is WEBGPU and browser_webgpu.api == "webgpu"
    assert isinstance(browser_webgpu, gpuconv.BrowserRuntime)


def test_limits_emulate_a_smaller_device(rng):
    page = gpuconv.runtimes.make_runtime("browser", api="webgpu", gl="angle-egl",
                                         max_compute_workgroup_storage_size=4096)
    try:
        assert page.limits.max_compute_workgroup_storage_size == 4096
        x, w = _data(rng, (1, 6, 6, 2), (3, 3, 2, 2))
        with pytest.raises(ValueError, match="maxComputeWorkgroupStorageSize"):
            gpuconv.conv2d(x, w, runtime=page)
        assert gpuconv.oracle.relative_error(gpuconv.conv2d(x, w, algorithm="direct", runtime=page),
                                             gpuconv.oracle.conv2d(x, w)) <= TOL
    finally:
        page.release()


@pytest.mark.parametrize("adapter", ["browser_webgpu", "browser_webgpu_swiftshader"])
def test_profile_times_inside_the_page(request, rng, adapter):
    page = request.getfixturevalue(adapter)
    x, w = _data(rng, (1, 8, 8, 4), (3, 3, 4, 8))
    with gpuconv.profile(page) as prof:
        gpuconv.conv2d(x, w, padding="SAME", runtime=page)
    (record,) = prof.records
    assert record.draw_ms > 0
    assert ("timestamp" if adapter.endswith("swiftshader") else "wall time in the page") in record.draw_timing


def test_compile_makes_a_batch_at_once(browser_webgpu):
    page = browser_webgpu
    specs = [spec for shape in [(1, 5, 5, 3), (1, 6, 5, 3), (1, 7, 5, 3)]
             for spec in gpuconv.registry.plan_shapes("conv2d", shape, (3, 3, 3, 2), target="webgpu").specs]
    before = page.info()["page_programs"]
    assert page.compile(specs) == 3
    assert page.compile(specs) == 0
    assert page.info()["page_programs"] == before + 3
