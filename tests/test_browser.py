"""The browser runtime (issue 11): gpuconv's programs in headless Chromium's WebGL2.

The core GPU-vs-oracle matrix runs in ANGLE over Mesa's EGL (llvmpipe), both algorithms;
the packed programs also at 4 draw buffers (a phone); a subset runs on SwiftShader.
Results agree with the native runtime's to float32 rounding, arrays cross bit for bit,
and a closed or crashed browser gives an error that says to make a new runtime.
One Chromium per GL choice serves the session (fixtures in conftest.py).
"""

from __future__ import annotations

import os
import signal
import threading
import time

import numpy as np
import pytest
from test_gpu_conv import CONV2D_CASES, DEPTHWISE_CASES
from test_gpu_ops import ACTIVATIONS, CONV1D_CASES, NCHW_CASES, SEPARABLE_CASES

import gpuconv
from gpuconv.layout import PackedImageLayout, texture_layout
from gpuconv.ops import plan_conv2d, plan_separable_conv2d
from gpuconv.runtimes import GLUnavailableError

ALGORITHMS = ["direct", "packed"]


def fresh_download_budget(runtime, per_window: int = 8, window_ms: int = 1200) -> None:
    """The page starts at most 8 downloads in any 1.2 s (browser_transfer.js): a test that counts
    them waits until none is spent, in the page's count and in Chromium's (and, with a long window,
    counts with no clock in it)."""
    time.sleep(1.3)
    runtime._page.evaluate("([n, ms]) => gpuconvTransfer.downloadBudget(n, ms, true)", [per_window, window_ms])


def assert_close(result, reference, tol=1e-5):
    assert result.shape == reference.shape, (result.shape, reference.shape)
    assert result.dtype == np.float32
    error = gpuconv.oracle.relative_error(result, reference)
    assert error <= tol, f"relative error {error:.3g} > {tol:g}"


def _data(rng, *shapes):
    return [rng.uniform(-1, 1, size=shape).astype(np.float32) for shape in shapes]


def _ids(cases):
    return [f"x{'x'.join(map(str, x))}-w{'x'.join(map(str, w))}-{kw}" for x, w, kw in cases]


def _nchw(a):
    return np.ascontiguousarray(a.transpose(0, 3, 1, 2))


def _browser_pid(runtime, kind="browser"):
    """The pid of one of the runtime's Chromium processes ("browser", "GPU", "renderer")."""
    session = runtime._browser.new_browser_cdp_session()
    try:
        processes = session.send("SystemInfo.getProcessInfo")["processInfo"]
    finally:
        session.detach()
    return next(p["id"] for p in processes if p["type"] == kind)


# -- the core matrix on ANGLE / EGL --------------------------------------------------

@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("x_shape, w_shape, kwargs", CONV2D_CASES, ids=_ids(CONV2D_CASES))
def test_conv2d_matches_oracle(browser, rng, x_shape, w_shape, kwargs, algorithm):
    x, w = _data(rng, x_shape, w_shape)
    assert_close(gpuconv.conv2d(x, w, algorithm=algorithm, runtime=browser, **kwargs),
                 gpuconv.oracle.conv2d(x, w, **kwargs))


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("x_shape, w_shape, kwargs", DEPTHWISE_CASES, ids=_ids(DEPTHWISE_CASES))
def test_depthwise_conv2d_matches_oracle(browser, rng, x_shape, w_shape, kwargs, algorithm):
    x, w = _data(rng, x_shape, w_shape)
    assert_close(gpuconv.depthwise_conv2d(x, w, algorithm=algorithm, runtime=browser, **kwargs),
                 gpuconv.oracle.depthwise_conv2d(x, w, **kwargs))


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("op, x_shape, w_shape, kwargs", NCHW_CASES)
def test_nchw_matches_oracle(browser, rng, op, x_shape, w_shape, kwargs, algorithm):
    if kwargs.get("groups", 1) > 1:
        algorithm = "direct"  # grouped convolution has no packed program
    x, w = _data(rng, x_shape, w_shape)
    y = getattr(gpuconv, op)(_nchw(x), w, data_format="NCHW", algorithm=algorithm, runtime=browser, **kwargs)
    assert_close(y, getattr(gpuconv.oracle, op)(_nchw(x), w, data_format="NCHW", **kwargs))


@pytest.mark.parametrize("in_c, out_c, groups", [(6, 9, 3), (8, 4, 2), (5, 10, 5)])
def test_grouped_conv_matches_oracle(browser, rng, in_c, out_c, groups):
    x, w = _data(rng, (2, 7, 6, in_c), (3, 2, in_c // groups, out_c))
    kwargs = dict(groups=groups, padding="SAME", strides=(2, 1))
    assert_close(gpuconv.conv2d(x, w, runtime=browser, **kwargs), gpuconv.oracle.conv2d(x, w, **kwargs))


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("multiplier", [1, 2, 3])
def test_depthwise_multipliers(browser, rng, multiplier, algorithm):
    x, w = _data(rng, (2, 8, 7, 5), (3, 3, 5, multiplier))
    kwargs = dict(padding="SAME", strides=(1, 2))
    assert_close(gpuconv.depthwise_conv2d(x, w, algorithm=algorithm, runtime=browser, **kwargs),
                 gpuconv.oracle.depthwise_conv2d(x, w, **kwargs))


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("op", ["conv2d", "depthwise_conv2d"])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_fused_bias_and_activation(browser, rng, op, activation, algorithm):
    x, w = _data(rng, (2, 6, 5, 3), (3, 3, 3, 4 if op == "conv2d" else 2))
    w *= 4  # past relu6's 6 and deep into the negative side
    out_c = 4 if op == "conv2d" else 6
    bias = rng.uniform(-1, 1, out_c).astype(np.float32)
    prelu = rng.uniform(0, 1, out_c).astype(np.float32) if activation == "prelu" else None
    alpha = {"leakyrelu_alpha": 0.3} if activation == "leakyrelu" else {}
    kwargs = dict(padding="SAME", bias=bias, activation=activation, prelu_weights=prelu, **alpha)
    assert_close(getattr(gpuconv, op)(x, w, algorithm=algorithm, runtime=browser, **kwargs),
                 getattr(gpuconv.oracle, op)(x, w, **kwargs))


def test_fused_prelu_weights_of_the_output_shape(browser, rng):
    x, w = _data(rng, (1, 3, 6, 5), (3, 3, 3, 4))
    prelu = rng.uniform(0, 1, (1, 4, 6, 5)).astype(np.float32)
    kwargs = dict(padding="SAME", data_format="NCHW", bias=np.ones(4, np.float32), activation="prelu",
                  prelu_weights=prelu)
    assert_close(gpuconv.conv2d(x, w, runtime=browser, **kwargs), gpuconv.oracle.conv2d(x, w, **kwargs))


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("x_shape, dw_shape, pw_shape, kwargs", SEPARABLE_CASES)
def test_separable_matches_oracle(browser, rng, x_shape, dw_shape, pw_shape, kwargs, algorithm):
    if kwargs.get("data_format") == "NCHW":
        x_shape = (x_shape[0], x_shape[3], x_shape[1], x_shape[2])
    x, dw, pw = _data(rng, x_shape, dw_shape, pw_shape)
    assert_close(gpuconv.separable_conv2d(x, dw, pw, algorithm=algorithm, runtime=browser, **kwargs),
                 gpuconv.oracle.separable_conv2d(x, dw, pw, **kwargs))


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("x_shape, w_shape, kwargs", CONV1D_CASES)
def test_conv1d_matches_oracle(browser, rng, x_shape, w_shape, kwargs, algorithm):
    x, w = _data(rng, x_shape, w_shape)
    assert_close(gpuconv.conv1d(x, w, algorithm=algorithm, runtime=browser, **kwargs),
                 gpuconv.oracle.conv1d(x, w, **kwargs))


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_float32_values_cross_the_programs_exactly(browser, rng, algorithm):
    x = rng.standard_normal((1, 4, 5, 3)).astype(np.float32) * np.float32(1e30)
    y = gpuconv.conv2d(x, np.eye(3, dtype=np.float32).reshape(1, 1, 3, 3), algorithm=algorithm, runtime=browser)
    np.testing.assert_array_equal(y, x)


def test_wrapped_layouts_under_a_lowered_texture_limit(browser, rng, monkeypatch):
    monkeypatch.setattr(browser, "max_texture_size", 80)
    x, w = _data(rng, (2, 20, 30, 3), (3, 3, 3, 4))
    y = gpuconv.conv2d(x, w, padding="SAME", algorithm="direct", runtime=browser)
    assert_close(y, gpuconv.oracle.conv2d(x, w, padding="SAME"))


# -- packed programs at 4 and 8 draw buffers ------------------------------------------

PHONE_CASES = [
    ("conv2d", (2, 9, 11, 6), (3, 3, 6, 5), dict(padding="SAME")),
    ("conv2d", (1, 10, 9, 7), (3, 2, 7, 4), dict(strides=2, padding="VALID", bias=True, activation="relu6")),
    ("depthwise_conv2d", (1, 9, 10, 5), (3, 3, 5, 2), dict(strides=2, padding="SAME")),
    ("depthwise_conv2d", (2, 7, 13, 3), (3, 3, 3, 1), dict(dilations=2, padding="SAME", bias=True,
                                                           activation="elu")),
]


@pytest.mark.parametrize("fixture, buffers", [("browser", 8), ("browser_phone", 4)])
@pytest.mark.parametrize("op, x_shape, w_shape, kwargs", PHONE_CASES)
def test_packed_programs_at_4_and_8_draw_buffers(request, rng, fixture, buffers, op, x_shape, w_shape, kwargs):
    runtime = request.getfixturevalue(fixture)
    assert runtime.max_draw_buffers == buffers
    x, w = _data(rng, x_shape, w_shape)
    kwargs = dict(kwargs)
    if kwargs.pop("bias", False):
        kwargs["bias"] = rng.uniform(-1, 1, x_shape[3] * w_shape[3] if op == "depthwise_conv2d" else w_shape[3])
    plan = plan_conv2d(x, w, depthwise=op == "depthwise_conv2d", algorithm="packed", limits=runtime.limits,
                       **kwargs)
    assert len(plan.spec.output_layouts) == buffers  # one render target per output pixel of a fragment
    y = getattr(gpuconv, op)(x, w, algorithm="packed", runtime=runtime, **kwargs)
    assert_close(y, getattr(gpuconv.oracle, op)(x, w, **kwargs))


def test_separable_at_4_draw_buffers(browser_phone, rng):
    x, dw, pw = _data(rng, (1, 9, 10, 6), (3, 3, 6, 2), (1, 1, 12, 7))
    y = gpuconv.separable_conv2d(x, dw, pw, strides=(1, 2), padding="SAME", algorithm="packed",
                                 runtime=browser_phone)
    assert_close(y, gpuconv.oracle.separable_conv2d(x, dw, pw, strides=(1, 2), padding="SAME"))


# -- SwiftShader: a subset ------------------------------------------------------------

SWIFTSHADER_CASES = [CONV2D_CASES[i] for i in (0, 4, 8, 11, 14)]


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("x_shape, w_shape, kwargs", SWIFTSHADER_CASES, ids=_ids(SWIFTSHADER_CASES))
def test_swiftshader_conv2d(browser_swiftshader, rng, x_shape, w_shape, kwargs, algorithm):
    x, w = _data(rng, x_shape, w_shape)
    assert_close(gpuconv.conv2d(x, w, algorithm=algorithm, runtime=browser_swiftshader, **kwargs),
                 gpuconv.oracle.conv2d(x, w, **kwargs))


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_swiftshader_depthwise_fused_separable_nchw(browser_swiftshader, rng, algorithm):
    rt = browser_swiftshader
    x, dw, pw = _data(rng, (2, 9, 8, 5), (3, 3, 5, 2), (1, 1, 10, 6))
    bias = rng.uniform(-1, 1, 10).astype(np.float32)
    kwargs = dict(strides=2, padding="SAME", bias=bias, activation="leakyrelu")
    assert_close(gpuconv.depthwise_conv2d(x, dw, algorithm=algorithm, runtime=rt, **kwargs),
                 gpuconv.oracle.depthwise_conv2d(x, dw, **kwargs))
    assert_close(gpuconv.separable_conv2d(x, dw, pw, padding="SAME", algorithm=algorithm, runtime=rt),
                 gpuconv.oracle.separable_conv2d(x, dw, pw, padding="SAME"))
    xn, w = _nchw(x), _data(rng, (3, 2, 5, 4))[0]
    assert_close(gpuconv.conv2d(xn, w, data_format="NCHW", padding=1, algorithm=algorithm, runtime=rt),
                 gpuconv.oracle.conv2d(xn, w, data_format="NCHW", padding=1))


def test_swiftshader_limits_and_info(browser_swiftshader):
    info = browser_swiftshader.info()
    assert "SwiftShader" in info["renderer"]
    assert info["backend"] == "swiftshader"
    # SwiftShader's 8192 texels are under the layouts' default of 16384: the plans use its limit.
    assert info["layout_texture_size"] == min(info["max_texture_size"], 16384)


# -- browser and native agree ---------------------------------------------------------

AGREEMENT_CASES = [
    ("conv2d", (2, 12, 11, 7), (3, 3, 7, 9), dict(padding="SAME")),
    ("conv2d", (1, 13, 12, 16), (3, 3, 16, 8), dict(strides=2, padding="VALID", bias=True, activation="relu")),
    ("depthwise_conv2d", (1, 12, 12, 6), (3, 3, 6, 2), dict(padding="SAME", bias=True, activation="sigmoid")),
]


@pytest.mark.parametrize("fixture", ["browser", "browser_swiftshader"])
@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("op, x_shape, w_shape, kwargs", AGREEMENT_CASES)
def test_browser_and_native_agree_to_float32_rounding(request, runtime, rng, op, x_shape, w_shape, kwargs,
                                                      algorithm, fixture):
    # ANGLE over llvmpipe gives the native runtime's results bit for bit; SwiftShader differs
    # by float32 rounding (measured: at most 3.3e-7 of the largest magnitude).
    browser = request.getfixturevalue(fixture)
    x, w = _data(rng, x_shape, w_shape)
    kwargs = dict(kwargs)
    if kwargs.pop("bias", False):
        kwargs["bias"] = rng.uniform(-1, 1, x_shape[3] * w_shape[3] if op == "depthwise_conv2d" else w_shape[3])
    y_browser = getattr(gpuconv, op)(x, w, algorithm=algorithm, runtime=browser, **kwargs)
    y_native = getattr(gpuconv, op)(x, w, algorithm=algorithm, runtime=runtime, **kwargs)
    scale = float(np.max(np.abs(y_native)))
    difference = float(np.max(np.abs(y_browser.astype(np.float64) - y_native)))
    assert difference <= 1e-6 * scale, f"browser vs native: max |diff| {difference:.3g} (max |y| {scale:.3g})"


# -- the runtime itself ----------------------------------------------------------------

def test_docs_browser_example_runs(browser, monkeypatch, tmp_path):  # browser: skips where there is none
    """The docs' "Running in a browser" block runs as written (it launches its own Chromium) and
    gives what it says."""
    import docs_pages

    page, section, first_line = docs_pages.section("Running in a browser")
    blocks = [b for b in docs_pages.blocks(page, docs_pages.PYTHON, section, first_line) if "BrowserRuntime()" in b.code]
    assert len(blocks) == 1, f"one block making a BrowserRuntime() in {page}'s 'Running in a browser'"
    monkeypatch.chdir(tmp_path)
    printed = []
    namespace = {"print": printed.append}
    exec(compile(blocks[0].code, blocks[0].where, "exec"), namespace)
    assert_close(namespace["y"], gpuconv.oracle.conv2d(namespace["x"], namespace["w"], padding="SAME"))
    assert printed and printed[0]["runtime"] == "browser"


def test_info(browser):
    info = browser.info()
    assert info["runtime"] == "browser" and info["backend"] == "angle-egl"
    assert info["renderer"]  # "ANGLE (Mesa/X.org, llvmpipe ...)" here, a GPU's name where there is one
    assert info["version"].startswith("WebGL 2.0")
    assert "GLSL ES 3.00" in info["glsl"]
    assert info["browser_version"].split(".")[0].isdigit()
    assert info["extensions"]["EXT_color_buffer_float"] is True
    assert set(info["extensions"]) == {"EXT_color_buffer_float", "EXT_float_blend", "OES_texture_float_linear",
                                       "KHR_parallel_shader_compile",
                                       "EXT_color_buffer_half_float"}
    assert info["max_draw_buffers"] >= 4 and info["program_draw_buffers"] == min(info["max_draw_buffers"], 8)
    assert info["max_texture_image_units"] >= 16 and info["max_texture_size"] >= 2048
    assert isinstance(info["cached_programs"], int)
    for key in ("vendor", "layout_texture_size", "max_color_attachments"):
        assert key in info


@pytest.mark.parametrize("through", ["inline", "outside"])
def test_a_large_tensor_crosses_exactly(browser, rng, monkeypatch, through):
    """Bit for bit both ways: inline as base64 in the message, or outside it (arrays of at least
    BLOB_BYTES: the page fetches uploads from the runtime's server, hands read-backs back as the
    call's one download)."""
    monkeypatch.setattr(gpuconv.runtimes.browser, "BLOB_BYTES", 1 if through == "outside" else 1 << 40)
    fresh_download_budget(browser)
    server = browser._server
    put, download = server.put, browser._download
    crossed = []
    monkeypatch.setattr(server, "put", lambda data: crossed.append(("up", len(data))) or put(data))
    monkeypatch.setattr(browser, "_download", lambda name: crossed.append(("down", name)) or download(name))
    x = (rng.standard_normal((1, 112, 112, 32)) * 1e30).astype(np.float32)  # 1.6 MB
    x.reshape(-1)[:4] = [np.inf, -np.inf, np.finfo(np.float32).max, np.finfo(np.float32).tiny]
    for layout in (texture_layout(x.shape), PackedImageLayout(1, 112, 112, 32)):
        texture = browser.upload(x, layout)
        back = browser.read(texture, layout)
        browser.free([texture])
        assert back.dtype == np.float32 and back.shape == (layout.rows, layout.cols, layout.components)
        np.testing.assert_array_equal(back.view(np.uint32), layout.pack(x).reshape(back.shape).view(np.uint32))
    assert [direction for direction, _ in crossed] == ([] if through == "inline" else ["up", "down"] * 2)
    assert not server._blobs and not browser._downloads  # nothing left behind


def test_a_call_hands_back_its_large_outputs_as_one_download(browser, rng, monkeypatch):
    """A packed program's 8 outputs, each over BLOB_BYTES: one file, sliced in order."""
    monkeypatch.setattr(gpuconv.runtimes.browser, "BLOB_BYTES", 1)
    fresh_download_budget(browser)
    download = browser._download
    names = []
    monkeypatch.setattr(browser, "_download", lambda name: names.append(name) or download(name))
    x, w = _data(rng, (1, 16, 64, 8), (3, 3, 8, 12))
    y = gpuconv.conv2d(x, w, padding="SAME", algorithm="packed", runtime=browser)
    assert_close(y, gpuconv.oracle.conv2d(x, w, padding="SAME"))
    assert len(names) == 1 and not browser._downloads


def test_read_backs_past_chromiums_download_limit_come_inline(browser, rng, monkeypatch, request):
    """Chromium drops a frame's downloads beyond 10 a second: the page starts at most 8 in 1.2 s
    and answers the calls past that inline, exactly as well.  (Here 8 in a minute, so that a slow
    machine's 12 reads still overrun it.)"""
    monkeypatch.setattr(gpuconv.runtimes.browser, "BLOB_BYTES", 1)
    fresh_download_budget(browser, 8, 60_000)
    request.addfinalizer(lambda: browser._page.evaluate("() => gpuconvTransfer.downloadBudget()"))
    download = browser._download
    names = []
    monkeypatch.setattr(browser, "_download", lambda name: names.append(name) or download(name))
    layout = PackedImageLayout(1, 8, 8, 4)
    arrays = [rng.standard_normal((1, 8, 8, 4)).astype(np.float32) for _ in range(12)]
    textures = [browser.upload(x, layout) for x in arrays]
    backs = [browser.read(texture, layout) for texture in textures]
    browser.free(textures)
    for x, back in zip(arrays, backs):
        np.testing.assert_array_equal(back.reshape(-1), layout.pack(x).reshape(-1))
    assert len(names) == 8 and not browser._downloads


def test_a_conv_through_the_server_matches_the_oracle(browser, rng, monkeypatch):
    monkeypatch.setattr(gpuconv.runtimes.browser, "BLOB_BYTES", 1)  # every array through the server
    x, w = _data(rng, (2, 9, 7, 5), (3, 2, 5, 6))
    assert_close(gpuconv.conv2d(x, w, padding="SAME", runtime=browser), gpuconv.oracle.conv2d(x, w, padding="SAME"))


def test_primitive_calls_match_run_and_free_everything(browser, rng):
    x, w = _data(rng, (1, 10, 9, 6), (3, 3, 6, 5))
    for algorithm in ALGORITHMS:
        plan = plan_conv2d(x, w, padding="SAME", algorithm=algorithm, limits=browser.limits)
        spec, arrays = plan.steps[0]
        inputs = {item.name: browser.upload(arrays[item.name], item.layout) for item in spec.inputs}
        outputs = browser.draw(spec, inputs)
        browser.finish()
        parts = [browser.read(t, layout) for t, layout in zip(outputs, spec.output_layouts)]
        browser.free(list(inputs.values()) + outputs)
        np.testing.assert_array_equal(spec.assemble(parts).reshape(plan.out_shape), browser.run(plan))
        np.testing.assert_array_equal(plan.execute(browser), browser.run(plan))  # the base class's chaining
    assert browser.info()["page_textures"] == 0  # freed ones go at the start of the next call


def test_separable_intermediate_stays_in_the_page(browser, rng, monkeypatch):
    x, dw, pw = _data(rng, (1, 6, 6, 3), (3, 3, 3, 2), (1, 1, 6, 4))
    plan = plan_separable_conv2d(x, dw, pw, padding="SAME", algorithm="packed", limits=browser.limits)
    messages = []
    original = browser._call
    monkeypatch.setattr(browser, "_call", lambda ops, free=(): messages.append(ops) or original(ops, free))
    y = browser.run(plan)
    assert len(messages) == 1  # one round trip for the whole plan
    reads = [op for op in messages[0] if op["op"] == "read"]
    assert len(reads) == len(plan.spec.output_layouts)
    assert_close(y, gpuconv.oracle.separable_conv2d(x, dw, pw, padding="SAME"))


def test_program_cache_is_bounded(browser, rng, monkeypatch):
    monkeypatch.setattr(browser, "PROGRAM_CACHE_SIZE", 2)
    for size in (5, 6, 7):  # three direct programs (shapes are baked in)
        x, w = _data(rng, (1, size, size, 2), (3, 3, 2, 2))
        assert_close(gpuconv.conv2d(x, w, algorithm="direct", runtime=browser),
                     gpuconv.oracle.conv2d(x, w))
    assert len(browser._programs) == 2
    assert browser.info()["page_programs"] == 2
    monkeypatch.undo()
    x, w = _data(rng, (1, 6, 6, 3), (3, 3, 3, 2))
    gpuconv.conv2d(x, w, runtime=browser)
    cached = len(browser._programs)
    gpuconv.conv2d(x, w, runtime=browser)
    assert len(browser._programs) == cached


def test_a_compile_error_names_the_program_and_shows_the_log(browser, rng, monkeypatch):
    from gpuconv import codegen

    x, w = _data(rng, (1, 5, 4, 3), (3, 3, 3, 2))
    plan = plan_conv2d(x, w, algorithm="direct", limits=browser.limits)
    broken = codegen.fragment_source(plan.spec).replace("void main()", "void main() { undefinedThing; }\nvoid f()")
    monkeypatch.setattr(codegen, "fragment_source", lambda spec: broken)
    with pytest.raises(RuntimeError, match="Conv2DProgram") as info:
        browser.run(plan)
    assert "undefinedThing" in str(info.value)
    monkeypatch.undo()
    assert_close(browser.run(plan), gpuconv.oracle.conv2d(x, w))  # the failed program was not kept


def test_calls_from_another_thread_are_refused(browser, rng):
    x, w = _data(rng, (1, 5, 5, 3), (3, 3, 3, 2))
    errors = []

    def call():
        try:
            gpuconv.conv2d(x, w, runtime=browser)
        except RuntimeError as exc:
            errors.append(str(exc))

    thread = threading.Thread(target=call)
    thread.start()
    thread.join()
    assert errors and "belongs to the thread that created it" in errors[0]


def test_a_closed_or_crashed_browser_says_so_and_a_new_runtime_works(rng):
    from gpuconv.runtimes.browser import BrowserClosedError, BrowserRuntime

    x, w = _data(rng, (1, 6, 6, 3), (3, 3, 3, 2))
    expected = gpuconv.oracle.conv2d(x, w)
    closed = BrowserRuntime()
    closed._browser.close()  # behind the runtime's back
    with pytest.raises(BrowserClosedError, match=r"Chromium has closed.*create a new gpuconv.BrowserRuntime\(\)"):
        gpuconv.conv2d(x, w, runtime=closed)
    with pytest.raises(RuntimeError, match="Chromium has closed"):  # and it stays so
        closed.finish()
    closed.release()
    closed.release()  # idempotent
    with pytest.raises(RuntimeError, match="released"):
        closed.info()

    with gpuconv.runtimes.make_runtime("browser") as crashed:
        assert isinstance(crashed, BrowserRuntime)
        assert_close(gpuconv.conv2d(x, w, runtime=crashed), expected)
        os.kill(_browser_pid(crashed, "GPU"), signal.SIGKILL)  # the WebGL context is lost
        deadline = time.monotonic() + 10
        with pytest.raises(BrowserClosedError, match="WebGL context was lost"):
            while time.monotonic() < deadline:
                gpuconv.conv2d(x, w, runtime=crashed)
                time.sleep(0.1)

    killed = BrowserRuntime()
    os.kill(_browser_pid(killed), signal.SIGKILL)
    with pytest.raises(BrowserClosedError, match="Chromium has closed"):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            gpuconv.conv2d(x, w, runtime=killed)
            time.sleep(0.1)
    killed.release()

    with BrowserRuntime() as fresh:
        assert_close(gpuconv.conv2d(x, w, runtime=fresh), expected)


def test_a_missing_browser_gives_the_install_line(monkeypatch):
    from gpuconv.runtimes import browser as module

    with pytest.raises(GLUnavailableError, match=r"apt-get install chromium.*executable=") as info:
        module.BrowserRuntime(executable="/nonexistent/chromium")
    assert "/nonexistent/chromium" in str(info.value)
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(GLUnavailableError, match=r"apt-get install chromium.*executable="):
        module.BrowserRuntime()
    with pytest.raises(ValueError, match="gl must be one of"):
        module.BrowserRuntime(gl="webgpu")


def test_missing_playwright_gives_the_pip_line(monkeypatch):
    import sys

    from gpuconv.runtimes.browser import BrowserRuntime

    monkeypatch.setitem(sys.modules, "playwright.sync_api", None)  # "import" now raises ImportError
    errors = []

    def make():  # a new thread has no Playwright driver yet, so it must import one
        try:
            BrowserRuntime()
        except GLUnavailableError as exc:
            errors.append(str(exc))

    thread = threading.Thread(target=make)
    thread.start()
    thread.join()
    assert errors and "pip install 'gpuconv[browser]'" in errors[0]


def test_a_running_asyncio_loop_is_refused_with_the_way_out():
    import asyncio

    from gpuconv.runtimes.browser import BrowserRuntime

    errors = []

    async def make():
        try:
            BrowserRuntime()
        except RuntimeError as exc:
            errors.append(str(exc))

    thread = threading.Thread(target=lambda: asyncio.run(make()))  # a fresh thread: no Playwright yet
    thread.start()
    thread.join()
    assert errors and "asyncio event loop" in errors[0] and "another thread" in errors[0]


def test_gpuconv_backend_browser_makes_the_default_runtime_a_browser(monkeypatch, rng):
    monkeypatch.setenv("GPUCONV_BACKEND", "browser")
    x, w = _data(rng, (1, 6, 6, 3), (3, 3, 3, 2))
    results = []

    def work():  # a thread's default runtime, released when the thread ends
        try:
            runtime = gpuconv.get_runtime()
            results.append((runtime.kind, gpuconv.conv2d(x, w)))
        except Exception as exc:  # reported below
            results.append(exc)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert not isinstance(results[0], Exception), results[0]
    kind, y = results[0]
    assert kind == "browser"
    assert_close(y, gpuconv.oracle.conv2d(x, w))


def test_freed_textures_are_pooled_reused_and_reported(browser, rng):
    x, w = _data(rng, (1, 10, 9, 6), (3, 3, 6, 5))
    plan = plan_conv2d(x, w, padding="SAME", algorithm="packed", limits=browser.limits)
    expected = browser.run(plan)
    before = browser.info()
    assert before["page_textures"] == 0 and before["page_pooled_textures"] > 0  # the run's, freed
    for _ in range(5):  # the same plan again: taken from the pool and given back, no new ones
        np.testing.assert_array_equal(browser.run(plan), expected)
        np.testing.assert_array_equal(plan.execute(browser), expected)
    info = browser.info()
    assert info["page_pooled_textures"] == before["page_pooled_textures"] and info["page_textures"] == 0
    assert browser.memory()["page_textures"] == 0 and "page_pooled_textures" not in browser.memory()
    assert 0 < info["page_pooled_bytes"] <= info["pool_bytes_limit"] == browser.POOL_BYTES


def _eight_then_one_output(runtime, rng):
    """A depthwise draw into 8 render targets, a matrix multiply into 1, then 8 again: the page
    keeps its framebuffers' attachments between draws and sets only those that change."""
    x, w = _data(rng, (1, 12, 12, 8), (3, 3, 8, 1))
    x2, w2 = _data(rng, (1, 1, 1, 12), (1, 1, 12, 5))
    kwargs = dict(strides=2, padding="SAME")
    first = gpuconv.depthwise_conv2d(x, w, runtime=runtime, **kwargs)
    assert gpuconv.oracle.relative_error(first, gpuconv.oracle.depthwise_conv2d(x, w, **kwargs)) < 1e-5
    for _ in range(2):
        y = gpuconv.conv2d(x2, w2, runtime=runtime)
        assert gpuconv.oracle.relative_error(y, gpuconv.oracle.conv2d(x2, w2)) < 1e-5
        np.testing.assert_array_equal(gpuconv.depthwise_conv2d(x, w, runtime=runtime, **kwargs), first)


def test_draws_with_changing_render_target_counts(browser, rng):
    _eight_then_one_output(browser, rng)


def test_the_page_pool_is_bounded(monkeypatch, rng):
    monkeypatch.setattr(gpuconv.BrowserRuntime, "POOL_BYTES", 4096)
    x, w = _data(rng, (1, 10, 9, 6), (3, 3, 6, 5))
    from conftest import _browser_runtime

    with _browser_runtime(gl="angle-egl") as small:
        plan = plan_conv2d(x, w, padding="SAME", algorithm="packed", limits=small.limits)
        np.testing.assert_array_equal(small.run(plan), plan.execute(small))
        facts = small.info()
        assert facts["page_textures"] == 0 and facts["page_pooled_bytes"] <= 4096
        assert facts["pool_bytes_limit"] == 4096
        # Textures the framebuffers still hold, deleted for good (the pool is too small for them).
        _eight_then_one_output(small, rng)
        assert small.info()["page_pooled_bytes"] <= 4096
