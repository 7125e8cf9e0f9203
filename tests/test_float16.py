"""Half-float storage (issue 12): storage="float16" stores every texture as R16F/RGBA16F, as
TF.js does on devices without float32 render targets.

Each op runs on the native runtime with half-float storage and is checked two ways:

* against the oracle's prediction (``gpuconv.oracle.<op>(..., storage="float16")``: inputs,
  filters, bias, intermediates and the output rounded to float16, float64 otherwise) within
  :func:`gpuconv.oracle.float16_prediction_tolerance`: 2 float16 ulps of the output's
  largest magnitude plus the float32 summation's error (the device sums in float32, the
  oracle in float64, so a stored value may be the neighbouring half);
* against the float64 oracle within :func:`gpuconv.oracle.float16_error_bound`:
  ``u * max|y| + max over outputs of (2u + u^2 + g32) * sum_k |x_k w_k|`` (+ subnormal,
  bias and activation terms), ``u = 2^-11`` and ``g32 = n 2^-24 / (1 - n 2^-24)``.

The results must be halves (every value exactly a float16), which shows the storage is
half-float.  A few run in the browser's WebGL2 too; the exported module stores halves; the
runtime default and the per-call override; the errors.
"""

from __future__ import annotations

import numpy as np
import pytest

import gpuconv
from gpuconv import oracle
from test_export import page, page_tab, run_module  # noqa: F401  (a page of the session's Chromium, the module's run())


def _n(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


def _cases(rng):
    return {
        "conv2d-direct": ("conv2d", (_n(rng, 1, 9, 9, 16), _n(rng, 3, 3, 16, 8)),
                          dict(padding="SAME", bias=_n(rng, 8), activation="relu", algorithm="direct")),
        "conv2d-packed": ("conv2d", (_n(rng, 1, 9, 9, 16), _n(rng, 3, 3, 16, 8)),
                          dict(padding="SAME", strides=2, algorithm="packed")),
        "conv2d-im2col": ("conv2d", (_n(rng, 1, 9, 9, 16), _n(rng, 3, 3, 16, 8)),
                          dict(padding="SAME", bias=_n(rng, 8), algorithm="im2col")),
        "conv2d-nchw-prelu": ("conv2d", (_n(rng, 1, 6, 8, 8), _n(rng, 3, 3, 6, 5)),
                              dict(padding="SAME", data_format="NCHW", activation="prelu",
                                   prelu_weights=_n(rng, 5), algorithm="direct")),
        "conv2d-sigmoid": ("conv2d", (_n(rng, 1, 7, 7, 4), _n(rng, 3, 3, 4, 4)),
                           dict(activation="sigmoid", bias=_n(rng, 4))),
        "depthwise_conv2d": ("depthwise_conv2d", (_n(rng, 1, 9, 9, 8), _n(rng, 3, 3, 8, 2)),
                             dict(padding="SAME", strides=2)),
        "depthwise_conv2d-packed": ("depthwise_conv2d", (_n(rng, 1, 9, 9, 8), _n(rng, 3, 3, 8, 1)),
                                    dict(padding="SAME", bias=_n(rng, 8), algorithm="packed")),
        "separable_conv2d": ("separable_conv2d", (_n(rng, 1, 9, 9, 8), _n(rng, 3, 3, 8, 2), _n(rng, 1, 1, 16, 12)),
                             dict(padding="SAME", algorithm="direct")),
        "separable_conv2d-packed": ("separable_conv2d",
                                    (_n(rng, 1, 9, 9, 8), _n(rng, 3, 3, 8, 1), _n(rng, 1, 1, 8, 12)),
                                    dict(padding="SAME", algorithm="packed")),
        "conv1d": ("conv1d", (_n(rng, 2, 20, 6), _n(rng, 3, 6, 5)), dict(padding="SAME")),
        "conv2d_transpose": ("conv2d_transpose", (_n(rng, 1, 5, 5, 4), _n(rng, 3, 3, 6, 4), (1, 10, 10, 6)),
                             dict(strides=2, padding="SAME", bias=_n(rng, 6), activation="elu")),
        "conv2d_backprop_input": ("conv2d_backprop_input", ((1, 9, 9, 5), _n(rng, 3, 3, 5, 7), _n(rng, 1, 7, 7, 7)),
                                  {}),
        "conv2d_backprop_filter": ("conv2d_backprop_filter",
                                   (_n(rng, 1, 9, 9, 5), (3, 3, 5, 7), _n(rng, 1, 7, 7, 7)), {}),
        "conv2d_backprop_filter-sliced": ("conv2d_backprop_filter",
                                          (_n(rng, 2, 50, 50, 2), (3, 3, 2, 3), _n(rng, 2, 48, 48, 3)), {}),
        "depthwise_conv2d_backprop_input": ("depthwise_conv2d_backprop_input",
                                            ((1, 9, 9, 4), _n(rng, 3, 3, 4, 2), _n(rng, 1, 7, 7, 8)), {}),
        "depthwise_conv2d_backprop_filter": ("depthwise_conv2d_backprop_filter",
                                             (_n(rng, 1, 9, 9, 4), (3, 3, 4, 2), _n(rng, 1, 7, 7, 8)), {}),
        "conv3d": ("conv3d", (_n(rng, 1, 5, 6, 6, 3), _n(rng, 3, 3, 3, 3, 4)), {}),
        "conv3d_backprop_input": ("conv3d_backprop_input",
                                  ((1, 5, 6, 6, 3), _n(rng, 3, 3, 3, 3, 4), _n(rng, 1, 3, 4, 4, 4)), {}),
        "conv3d_backprop_filter": ("conv3d_backprop_filter",
                                   (_n(rng, 1, 5, 6, 6, 3), (3, 3, 3, 3, 4), _n(rng, 1, 3, 4, 4, 4)), {}),
        "conv3d_transpose": ("conv3d_transpose", (_n(rng, 1, 3, 4, 4, 4), _n(rng, 3, 3, 3, 3, 4), (1, 5, 6, 6, 3)),
                             {}),
    }


CASES = _cases(np.random.default_rng(16))


def _oracle_kwargs(kwargs):
    return {k: v for k, v in kwargs.items() if k != "algorithm"}


def check_float16(result, op, args, kwargs):
    """The two checks of this module's docstring, and that the result holds halves."""
    kwargs = _oracle_kwargs(kwargs)
    assert result.dtype == np.float32
    assert np.array_equal(result.astype(np.float16).astype(np.float32), result), "the values are not halves"
    predicted = getattr(oracle, op)(*args, storage="float16", **kwargs)
    exact = getattr(oracle, op)(*args, **kwargs)
    tolerance = oracle.float16_prediction_tolerance(op, *args, **kwargs)
    bound = oracle.float16_error_bound(op, *args, **kwargs)
    off_prediction = float(np.max(np.abs(result - predicted)))
    off_exact = float(np.max(np.abs(result - exact)))
    assert off_prediction <= tolerance, f"{op}: {off_prediction:.3g} from the prediction > {tolerance:.3g}"
    assert off_exact <= bound, f"{op}: {off_exact:.3g} from the float64 oracle > the bound {bound:.3g}"
    # neither loose nor vacuous: the prediction itself is within the bound, and float16 does differ
    assert float(np.max(np.abs(predicted - exact))) <= bound
    assert off_exact > 0
    return off_prediction, off_exact


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_native_float16_vs_prediction_and_bound(runtime, case):
    op, args, kwargs = CASES[case]
    result = getattr(gpuconv, op)(*args, runtime=runtime, storage="float16", **kwargs)
    check_float16(result, op, args, kwargs)
    # float32 storage (the default) is far closer
    plain = getattr(gpuconv, op)(*args, runtime=runtime, **kwargs)
    exact = getattr(oracle, op)(*args, **_oracle_kwargs(kwargs))
    assert np.max(np.abs(plain - exact)) < np.max(np.abs(result - exact)) / 8


@pytest.mark.parametrize("case", ["conv2d-packed", "conv2d-im2col", "separable_conv2d", "conv2d_backprop_filter",
                                  "conv2d_transpose"])
def test_browser_float16(browser, runtime, case):
    op, args, kwargs = CASES[case]
    result = getattr(gpuconv, op)(*args, runtime=browser, storage="float16", **kwargs)
    check_float16(result, op, args, kwargs)
    native = getattr(gpuconv, op)(*args, runtime=runtime, storage="float16", **kwargs)
    assert np.max(np.abs(result - native)) <= oracle.float16_prediction_tolerance(op, *args, **_oracle_kwargs(kwargs))


def test_browser_primitives_hold_halves(browser):
    """upload/draw/read with storage="float16": R16F/RGBA16F textures, read back as float32."""
    from gpuconv.layout import texture_layout

    values = np.array([[1 + 2 ** -11, 65504, 70000, -1e-7, 3.0e-5, 0.1]], np.float32)
    layout = texture_layout(values.shape, browser.max_texture_size)
    before = browser.memory()["bytes"]
    texture = browser.upload(values, layout, "float16")
    assert browser.memory()["bytes"] - before == layout.rows * layout.cols * layout.components * 2
    read = layout.unpack(browser.read(texture, layout))
    browser.free([texture])
    with np.errstate(over="ignore"):
        assert np.array_equal(read, values.astype(np.float16).astype(np.float32))
    assert browser.info()["half_float_render"] is True


def test_runtime_default_and_override(rng):
    x, w = _n(rng, 1, 8, 8, 8), _n(rng, 3, 3, 8, 4)
    with gpuconv.NativeRuntime(storage="float16") as halves, gpuconv.NativeRuntime() as floats:
        assert halves.storage == "float16" and floats.storage == "float32"
        assert halves.info()["storage"] == "float16"
        by_default = gpuconv.conv2d(x, w, runtime=halves)
        asked = gpuconv.conv2d(x, w, runtime=floats, storage="float16")
        assert np.array_equal(by_default, asked)
        assert np.array_equal(by_default.astype(np.float16).astype(np.float32), by_default)
        overridden = gpuconv.conv2d(x, w, runtime=halves, storage="float32")
        assert np.array_equal(overridden, gpuconv.conv2d(x, w, runtime=floats))
        assert not np.array_equal(overridden, by_default)
        # the plan-level walk: upload and draw make half textures (2 bytes a component)
        from gpuconv.layout import texture_layout

        layout = texture_layout((4, 4), 4096)
        start = halves.memory()["bytes"]
        texture = halves.upload(np.ones((4, 4), np.float32), layout, "float16")
        assert halves.memory()["bytes"] - start == layout.rows * layout.cols * layout.components * 2
        halves.free([texture])


def test_worker_runtime_storage(rng):
    x, w = _n(rng, 1, 6, 6, 4), _n(rng, 3, 3, 4, 4)
    with gpuconv.WorkerRuntime(storage="float16") as worker, gpuconv.NativeRuntime() as native:
        assert worker.storage == "float16"
        assert np.array_equal(gpuconv.conv2d(x, w, runtime=worker),
                              gpuconv.conv2d(x, w, runtime=native, storage="float16"))
        assert np.array_equal(gpuconv.conv2d(x, w, runtime=worker, storage="float32"), gpuconv.conv2d(x, w, runtime=native))


def test_worker_per_call_float16_and_profile(rng):
    """A float32 worker asked for float16 per call (checked in the worker), and a profiled float16 call."""
    x, w = _n(rng, 1, 6, 6, 4), _n(rng, 3, 3, 4, 4)
    with gpuconv.WorkerRuntime() as worker, gpuconv.NativeRuntime() as native:
        expected = gpuconv.conv2d(x, w, runtime=native, storage="float16")
        assert np.array_equal(gpuconv.conv2d(x, w, runtime=worker, storage="float16"), expected)
        with gpuconv.profile(native) as prof:
            profiled = gpuconv.conv2d(x, w, runtime=native, storage="float16")
        assert np.array_equal(profiled, expected) and prof.records


def test_exported_page_float16_passes(page_tab):
    from test_export import run_page

    from gpuconv.export import FLOAT16_PAGE_TOLERANCE, build

    text = build("separable_conv2d", (1, 12, 12, 8), (3, 3, 8, 1), format="html", padding="SAME",
                 pointwise_filter_shape=(1, 1, 8, 8), storage="float16").text
    result = run_page(page_tab, text)
    assert result["status"] == "PASS", result
    assert result["tolerance"] == FLOAT16_PAGE_TOLERANCE and 1e-5 < result["maxError"] <= FLOAT16_PAGE_TOLERANCE


def test_oracle_prediction_rounds_every_stored_value():
    x = np.array([[[[1 + 2 ** -12]]]], np.float64)  # rounds to 1 in a half
    w = np.array([[[[3.0]]]])
    assert oracle.conv2d(x, w, storage="float16")[0, 0, 0, 0] == 3.0
    assert oracle.conv2d(x, w)[0, 0, 0, 0] == 3 * (1 + 2 ** -12)
    # the depthwise result of a separable convolution is a texture too
    dw = np.full((1, 1, 1, 1), 1 + 2 ** -11 * 1.5)
    pw = np.ones((1, 1, 1, 1))
    inner = np.float64(np.float16(1 + 2 ** -11 * 1.5))
    assert oracle.separable_conv2d(x, dw, pw, storage="float16")[0, 0, 0, 0] == np.float16(inner)
    # beyond 65504: infinity, as in the texture
    assert np.isinf(oracle.conv2d(x * 4e4, w, storage="float16")).all()
    assert oracle.float16_overflows("conv2d", x * 4e4, w) == [("the output", 1)]
    assert oracle.float16_overflows("conv2d", x * 7e4, w) == [("x", 1), ("the output", 1)]


def test_the_bound_is_not_loose(rng):
    """The bound is a few times the error actually seen, not orders of magnitude above it."""
    x, w = _n(rng, 1, 16, 16, 32), _n(rng, 3, 3, 32, 16)
    predicted = oracle.conv2d(x, w, padding="SAME", storage="float16")
    exact = oracle.conv2d(x, w, padding="SAME")
    bound = oracle.float16_error_bound("conv2d", x, w, padding="SAME")
    assert float(np.max(np.abs(predicted - exact))) <= bound <= 50 * float(np.max(np.abs(predicted - exact)))


def test_exported_module_stores_halves(page):
    """gpuconv export --storage float16: R16F/RGBA16F textures, inputs rounded to halves in JS
    (ties to even, subnormals, overflow to infinity: exactly as NumPy rounds them)."""
    from gpuconv.export import build

    exported = build("conv2d", (1, 4, 8, 1), (1, 1, 1, 1), algorithm="direct", storage="float16")
    assert "R16F" in exported.text and "HALF_FLOAT" in exported.text
    assert exported.requirements["storage"] == "float16"
    values = np.array([1 + 2 ** -11, 1 + 3 * 2 ** -11, -(1 + 2 ** -11), 65504, 65520, 70000, -7e4, 2.0 ** -25,
                       2.0 ** -24 * 1.5, 2.0 ** -24 * 2.5, 3.0e-5, 6.1e-5, 0.1, -0.3333, 1e-9, 0.0,
                       1234.5678, -2.0 ** -14, 2.0 ** -14 * (1 - 2 ** -11), 5.5, 2049.0, 2051.0, -4095.0, 8.0,
                       9.99, -9.99, 42.0, 1e4, 3e4, 6e4, 2.0 ** -20, 7.0], np.float32).reshape(1, 4, 8, 1)
    one = np.ones((1, 1, 1, 1), np.float32)
    result = run_module(page, exported.text, {"x": values, "filter": one}).reshape(values.shape)
    with np.errstate(over="ignore"):
        assert np.array_equal(result, values.astype(np.float16).astype(np.float32))
    # and a real convolution against the prediction
    rng = np.random.default_rng(3)
    x, w = _n(rng, 1, 9, 9, 8), _n(rng, 3, 3, 8, 8)
    for algorithm in ("direct", "packed"):
        exported = build("conv2d", x.shape, w.shape, padding="SAME", algorithm=algorithm, storage="float16")
        result = run_module(page, exported.text, {"x": x, "filter": w}).reshape(1, 9, 9, 8)
        check_float16(result, "conv2d", (x, w), {"padding": "SAME"})


# ---------------------------------------------------------------------------
# errors


@pytest.mark.parametrize("bad", ["half", "float64", 16, None])
def test_bad_storage_names_the_choices(runtime, rng, bad):
    x, w = _n(rng, 1, 4, 4, 2), _n(rng, 3, 3, 2, 2)
    calls = [lambda: gpuconv.NativeRuntime(storage=bad), lambda: oracle.conv2d(x, w, storage=bad),
             lambda: gpuconv.export("conv2d", x.shape, w.shape, storage=bad)]
    if bad is not None:  # storage=None on an op is the runtime's default
        calls.append(lambda: gpuconv.conv2d(x, w, runtime=runtime, storage=bad))
    for call in calls:
        with pytest.raises(ValueError, match=r"storage must be one of 'float32', 'float16'"):
            call()


def test_tensors_refuse_float16(runtime, rng):
    x = gpuconv.to_gpu(_n(rng, 1, 6, 6, 4), runtime)
    w = _n(rng, 3, 3, 4, 4)
    try:
        with pytest.raises(ValueError, match=r"storage='float16' cannot be used with gpuconv Tensors \(x\)"):
            gpuconv.conv2d(x, w, runtime=runtime, storage="float16")
        y = gpuconv.conv2d(x, w, runtime=runtime)  # float32: fine
        y.release()
    finally:
        x.release()


def test_oracle_helpers_refuse_unknown_ops():
    with pytest.raises(ValueError, match="op must be one of"):
        oracle.float16_error_bound("conv4d", np.ones((1, 2, 2, 1)), np.ones((1, 1, 1, 1)))


# ---------------------------------------------------------------------------
# the command line: --storage, gpuconv precision


def _main(argv):
    from gpuconv.cli import main

    return main(argv)


def test_precision_command(capsys, runtime, browser):
    code = _main(["precision", "conv2d", "--input", "1x16x16x16", "--filter", "3x3x16x8", "--padding", "same"])
    out = capsys.readouterr().out
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0].startswith("conv2d: x 1x16x16x16, filter 3x3x16x8")
    assert "tolerance 0.001 relative to it" in lines[1]
    rows = {tuple(line.split()[:2]): line for line in lines if line.startswith(("float32 ", "float16 "))}
    assert set(rows) == {(storage, backend) for storage in ("float32", "float16")
                         for backend in ("native", "browser", "webgpu")}  # WebGPU beside WebGL2
    assert all(row.endswith("PASS") for row in rows.values())
    # the numbers are the errors of the calls themselves
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (1, 16, 16, 16)).astype(np.float32)
    w = rng.uniform(-1, 1, (3, 3, 16, 8)).astype(np.float32)
    y16 = gpuconv.conv2d(x, w, padding="SAME", runtime=runtime, storage="float16")
    max_abs, relative = oracle.compare(y16, oracle.conv2d(x, w, padding="SAME"))
    assert f"{max_abs:.3g}" in rows[("float16", "native")] and f"{relative:.3g}" in rows[("float16", "native")]
    assert f"{oracle.float16_error_bound('conv2d', x, w, padding='SAME'):.3g}" in rows[("float16", "native")]
    assert "verdict float32: PASS" in out and "verdict float16: PASS" in out
    # a tolerance float16 cannot meet: exit 1, the verdict says so
    code = _main(["precision", "conv2d", "--input", "1x16x16x16", "--filter", "3x3x16x8", "--padding", "same",
                  "--tolerance", "1e-5", "--backend", "native"])
    out = capsys.readouterr().out
    assert code == 1
    assert "verdict float32: PASS" in out
    assert "verdict float16: FAIL" in out and "does not survive phones" in out
    assert "browser" not in out.split("verdict")[0].split("\n", 2)[2]  # --backend native: only native rows


def test_precision_reports_float16_overflow(capsys, runtime, tmp_path):
    """Inputs scaled to 1e3 make a 3x3x16 conv's outputs exceed 65504: reported, not silently inf."""
    rng = np.random.default_rng(5)
    x = (rng.uniform(0.5, 1, (1, 8, 8, 16)) * 1e3).astype(np.float32)
    w = rng.uniform(0.5, 1, (3, 3, 16, 4)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "w.npy", w)
    over = int(np.count_nonzero(np.abs(oracle.conv2d(x, w, padding="SAME")) > 65504))
    assert over > 0
    code = _main(["precision", "conv2d", "--input", str(tmp_path / "x.npy"), "--filter", str(tmp_path / "w.npy"),
                  "--padding", "same", "--backend", "native"])
    out = capsys.readouterr().out
    assert code == 1
    assert (f"float16 overflow: {over} values of the output exceed float16's largest finite value 65504: "
            f"they become inf in half-float storage") in out
    assert "verdict float16: FAIL" in out and "verdict float32: PASS" in out
    # an input beyond 65504 is named too
    np.save(tmp_path / "x.npy", np.where(np.arange(x.size).reshape(x.shape) < 3, 7e4, x).astype(np.float32))
    _main(["precision", "conv2d", "--input", str(tmp_path / "x.npy"), "--filter", str(tmp_path / "w.npy"),
           "--backend", "native"])
    assert "float16 overflow: 3 values of x exceed float16's largest finite value 65504" in capsys.readouterr().out


def test_precision_browser_missing(capsys, monkeypatch):
    """Without Chromium: a note when not asked for, exit 3 with --backend browser."""
    from gpuconv.runtimes import browser as browser_module

    def missing(executable=None):
        raise gpuconv.GLUnavailableError("gpuconv's browser runtime needs Chromium, and none is on PATH")

    monkeypatch.setattr(browser_module, "find_chromium", missing)
    argv = ["precision", "depthwise_conv2d", "--input", "1x8x8x4", "--filter", "3x3x4x1"]
    assert _main(argv) == 0
    out = capsys.readouterr().out
    assert "float16  browser  -" in out and "skipped: no browser runtime" in out
    assert _main(argv + ["--backend", "browser"]) == 3
    assert "Chromium" in capsys.readouterr().err


def test_storage_option_of_run_selftest_random_export(capsys, runtime, tmp_path):
    rng = np.random.default_rng(2)
    x, w = _n(rng, 1, 8, 8, 4), _n(rng, 3, 3, 4, 4)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "w.npy", w)
    assert _main(["run", "conv2d", "--input", str(tmp_path / "x.npy"), "--filter", str(tmp_path / "w.npy"),
                  "--output", str(tmp_path / "y.npy"), "--storage", "float16", "--check"]) == 0
    out = capsys.readouterr().out
    assert "(tolerance 0.01;" in out
    y = np.load(tmp_path / "y.npy")
    assert np.array_equal(y, gpuconv.conv2d(x, w, runtime=runtime, storage="float16"))
    # float16 fails float32's tolerance
    assert _main(["run", "conv2d", "--input", str(tmp_path / "x.npy"), "--filter", str(tmp_path / "w.npy"),
                  "--storage", "float16", "--check", "--tolerance", "1e-5"]) == 1
    capsys.readouterr()
    assert _main(["selftest", "--quick", "--storage", "float16"]) == 0
    assert "tolerance 0.01" in capsys.readouterr().out
    assert _main(["random", "--count", "6", "--storage", "float16"]) == 0
    capsys.readouterr()
    out_file = tmp_path / "m.mjs"
    assert _main(["export", "conv2d", "--input", "1x8x8x4", "--filter", "3x3x4x4", "--storage", "float16",
                  "--output", str(out_file)]) == 0
    text = out_file.read_text()
    assert '"internalFormat": "RGBA16F"' in text and '"internalFormat": "R32F"' not in text
    assert "EXT_color_buffer_half_float" in capsys.readouterr().err
    assert _main(["run", "conv2d", "--input", str(tmp_path / "x.npy"), "--filter", str(tmp_path / "w.npy"),
                  "--storage", "half"]) == 2
    assert "--storage" in capsys.readouterr().err


def test_docs_half_float_block(runtime):
    """The docs' "Half-float storage" Python block runs as written, and says what is true."""
    import docs_pages

    doc, section, first_line = docs_pages.section("Half-float storage")
    (block,) = docs_pages.blocks(doc, docs_pages.PYTHON, section, first_line)
    rng = np.random.default_rng(0)
    namespace = {"gpuconv": gpuconv, "x": _n(rng, 1, 16, 16, 8), "w": _n(rng, 3, 3, 8, 8)}
    exec(compile(block.code, block.where, "exec"), namespace)
    exact = oracle.conv2d(namespace["x"], namespace["w"], padding="SAME")
    assert np.max(np.abs(namespace["y16"] - exact)) <= namespace["bound"]
    assert np.max(np.abs(namespace["y16"] - namespace["predicted"])) <= oracle.float16_prediction_tolerance(
        "conv2d", namespace["x"], namespace["w"], padding="SAME")
    assert np.max(np.abs(namespace["y32"] - exact)) < 1e-4


def test_bench_storage_passes_through(runtime, tmp_path, capsys):
    """benchmarks/bench.py --storage float16 stores gpuconv's textures so (its error is float16's), and
    leaves the thread's default runtime as it was."""
    import importlib.util
    import json
    import sys
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "benchmarks" / "bench.py"
    spec = importlib.util.spec_from_file_location("gpuconv_bench_float16", path)
    bench = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = bench
    spec.loader.exec_module(bench)
    default = gpuconv.get_runtime()
    assert default.storage == "float32"
    assert bench.main(["--quick", "--layers", "conv3x3", "--storage", "float16",
                       "--json", str(tmp_path / "b.json")]) == 0
    capsys.readouterr()
    assert default.storage == "float32"
    (row,) = json.loads((tmp_path / "b.json").read_text())["rows"]
    assert 1e-4 < row["rel_error"] < 1e-2


def test_browser_runtime_default_storage(browser, rng):
    """BrowserRuntime(storage="float16"): the runtime's default, an op's storage= overriding it."""
    x, w = _n(rng, 1, 8, 8, 4), _n(rng, 3, 3, 4, 4)
    with gpuconv.BrowserRuntime(storage="float16") as phone:
        assert phone.info()["storage"] == "float16"
        halves = gpuconv.conv2d(x, w, runtime=phone)
        assert np.array_equal(halves, gpuconv.conv2d(x, w, runtime=browser, storage="float16"))
        assert np.array_equal(gpuconv.conv2d(x, w, runtime=phone, storage="float32"),
                              gpuconv.conv2d(x, w, runtime=browser))
