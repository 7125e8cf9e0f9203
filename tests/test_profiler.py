"""gpuconv.profile() and ``gpuconv run --repeat`` (issue 14's profiler)."""

from __future__ import annotations

import numpy as np
import pytest

import gpuconv
from gpuconv import cli
from gpuconv.profiler import GL_TIMER, WALL_TIME


def _data(rng, *shapes):
    return [rng.uniform(-1, 1, shape).astype(np.float32) for shape in shapes]


def test_profile_records_every_program_of_every_call(runtime, rng):
    x, w, dw, pw = _data(rng, (1, 12, 12, 6), (3, 3, 6, 5), (3, 3, 6, 2), (1, 1, 12, 4))
    expected = gpuconv.oracle.conv2d(x, w, padding="SAME")
    with gpuconv.profile() as prof:
        y_packed = gpuconv.conv2d(x, w, padding="SAME", algorithm="packed")
        y_direct = gpuconv.conv2d(x, w, padding="SAME", algorithm="direct")
        y_sep = gpuconv.separable_conv2d(x, dw, pw, padding="SAME")
    # profiled calls give the same results as unprofiled ones
    np.testing.assert_array_equal(y_packed, gpuconv.conv2d(x, w, padding="SAME", algorithm="packed"))
    assert gpuconv.oracle.relative_error(y_direct, expected) <= 1e-5
    assert gpuconv.oracle.relative_error(y_sep, gpuconv.oracle.separable_conv2d(x, dw, pw, padding="SAME")) <= 1e-5
    records = prof.records
    assert [(r.op, r.program, r.algorithm) for r in records] == [
        ("conv2d", "PackedConv2DProgram", "packed"), ("conv2d", "Conv2DProgram", "direct"),
        ("separable_conv2d", "PackedDepthwiseConv2DProgram", "packed"),
        ("separable_conv2d", "PackedConv2DProgram", "packed")]
    assert records[0].shapes == "x 1x12x12x6, W 3x3x6x5 -> 1x12x12x5"
    assert records[3].shapes.startswith("x0..x7 1x12x12x12, W 1x1x12x4")
    assert records[0].flops == 2 * 12 * 12 * 5 * 3 * 3 * 6
    for r in records:
        assert r.draw_ms > 0 and r.upload_ms >= 0 and r.read_ms >= 0
        assert r.draw_timing in (GL_TIMER, WALL_TIME)
        assert r.gflops > 0
    assert records[2].read_ms == 0 and records[2].upload_ms > 0  # the intermediate stays on the GPU
    assert records[3].read_ms > 0
    table = prof.table()
    assert table.splitlines()[0].startswith("| op ") and "PackedDepthwiseConv2DProgram" in table
    assert "4 programs" in table.splitlines()[-1]


def test_native_draws_are_timed_by_the_gl_timer(runtime, rng):
    x, w = _data(rng, (1, 9, 9, 4), (3, 3, 4, 4))
    gpuconv.conv2d(x, w, runtime=runtime)  # compiled before the profile
    with gpuconv.profile(runtime) as prof:
        gpuconv.conv2d(x, w, runtime=runtime)
    assert prof.records[0].draw_timing == GL_TIMER and not prof.records[0].compiled


def test_a_profile_marks_the_draw_that_compiled_a_program(runtime, rng):
    x = _data(rng, (1, 9, 11, 3))[0]
    w = _data(rng, (2, 5, 3, 7))[0]  # a direct program of its own shape: compiled in the block
    with gpuconv.profile() as prof:
        gpuconv.conv2d(x, w, algorithm="direct")
        gpuconv.conv2d(x, w, algorithm="direct")
    assert [r.compiled for r in prof.records] == [True, False]
    assert "(compiled)" in prof.table() and "(1 compiled)" in prof.table()


def test_a_profile_of_one_runtime_ignores_the_others(runtime, rng):
    x, w = _data(rng, (1, 6, 6, 2), (3, 3, 2, 2))
    with gpuconv.Runtime() as other:
        with gpuconv.profile(other) as prof:
            gpuconv.conv2d(x, w, runtime=runtime)
            gpuconv.conv2d(x, w, runtime=other)
    assert len(prof.records) == 1
    with gpuconv.profile() as outer, gpuconv.profile() as inner:
        gpuconv.conv2d(x, w)
    assert len(inner.records) == 1 and not outer.records  # the innermost records


def test_run_repeat_prints_the_warm_median_and_gflops(runtime, tmp_path, capsys):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "x.npy", rng.random((1, 16, 16, 6), "f4"))
    np.save(tmp_path / "w.npy", rng.random((3, 3, 6, 4), "f4"))
    code = cli.main(["run", "conv2d", "--input", str(tmp_path / "x.npy"), "--filter", str(tmp_path / "w.npy"),
                     "--padding", "same", "--repeat", "3", "--check"])
    out = capsys.readouterr().out
    assert code == 0, out
    line = next(line for line in out.splitlines() if line.startswith("repeat:"))
    assert "3 warm calls, median" in line and "GFLOP/s per call" in line and "PackedConv2DProgram" in line
    assert "PASS" in out


@pytest.mark.parametrize("value", ["-1", "x"])
def test_run_repeat_refuses_a_bad_count(tmp_path, capsys, value):
    code = cli.main(["run", "conv2d", "--input", "x.npy", "--filter", "w.npy", "--repeat", value])
    assert code == 2
    assert "--repeat" in capsys.readouterr().err


def test_precompile_compiles_each_program_once_and_covers_the_packed_family(rng):
    with gpuconv.Runtime() as own:
        assert gpuconv.precompile("separable_conv2d", (1, 20, 24, 6), (3, 3, 6, 2), padding="SAME",
                                  pointwise_filter_shape=(1, 1, 12, 5), runtime=own) == 2
        assert gpuconv.precompile("separable_conv2d", (1, 20, 24, 6), (3, 3, 6, 2), padding="SAME",
                                  pointwise_filter_shape=(1, 1, 12, 5), runtime=own) == 0
        x, dw, pw = _data(rng, (2, 13, 31, 6), (3, 3, 6, 2), (1, 1, 12, 5))  # another shape, same family
        before = own.compiled_programs
        y = gpuconv.separable_conv2d(x, dw, pw, padding="SAME", runtime=own)
        assert own.compiled_programs == before
        assert gpuconv.oracle.relative_error(y, gpuconv.oracle.separable_conv2d(x, dw, pw, padding="SAME")) <= 1e-5
        # a direct program bakes its shapes in: precompiled for exactly this shape
        assert gpuconv.precompile("conv2d", (1, 7, 9, 5), (3, 2, 5, 3), algorithm="direct", bias=np.zeros(3),
                                  activation="relu", runtime=own) == 1
        before = own.compiled_programs
        gpuconv.conv2d(*_data(rng, (1, 7, 9, 5), (3, 2, 5, 3)), algorithm="direct", bias=np.ones(3, np.float32),
                       activation="relu", runtime=own)
        assert own.compiled_programs == before


CALLS = [("conv2d", (1, 9, 11, 6), (3, 3, 6, 8), {"padding": "SAME"}),
         ("depthwise_conv2d", (1, 9, 11, 6), (3, 3, 6, 1)),
         ("conv2d", (1, 9, 11, 6), (1, 1, 6, 8), {"algorithm": "direct"})]


def _compiles_then_runs_warm(runtime, rng):
    compiled = gpuconv.precompile_all(CALLS, runtime=runtime)
    assert compiled == 3
    assert gpuconv.precompile_all(CALLS, runtime=runtime) == 0
    before = runtime.compiled_programs
    x, w, dw, w1 = _data(rng, (1, 9, 11, 6), (3, 3, 6, 8), (3, 3, 6, 1), (1, 1, 6, 8))
    y = gpuconv.conv2d(x, w, padding="SAME", runtime=runtime)
    gpuconv.depthwise_conv2d(x, dw, runtime=runtime)
    gpuconv.conv2d(x, w1, algorithm="direct", runtime=runtime)
    assert runtime.compiled_programs == before
    assert gpuconv.oracle.relative_error(y, gpuconv.oracle.conv2d(x, w, padding="SAME")) <= 1e-5


def test_precompile_all_links_several_calls_programs_before_drawing_any(rng):
    with gpuconv.Runtime() as own:
        _compiles_then_runs_warm(own, rng)


def test_precompile_all_in_the_browser_compiles_in_parallel(browser, rng):
    # direct programs bake their shapes in: these two are new to the session's page
    calls = [("conv2d", (1, 9, 13, 6), (2, 3, 6, 7), {"algorithm": "direct"}),
             ("depthwise_conv2d", (1, 9, 13, 6), (2, 3, 6, 2), {"algorithm": "direct"})]
    assert gpuconv.precompile_all(calls, runtime=browser) == 2
    assert browser.last_compile_parallel is browser.info()["extensions"]["KHR_parallel_shader_compile"]
    assert gpuconv.precompile_all(calls, runtime=browser) == 0
    before = browser.compiled_programs
    x, w = _data(rng, (1, 9, 13, 6), (2, 3, 6, 7))
    y = gpuconv.conv2d(x, w, algorithm="direct", runtime=browser)
    assert browser.compiled_programs == before
    assert gpuconv.oracle.relative_error(y, gpuconv.oracle.conv2d(x, w)) <= 1e-5


def test_precompile_all_refuses_what_is_not_a_call():
    with pytest.raises(TypeError, match="each call is a tuple"):
        gpuconv.precompile_all(["conv2d"])
    with pytest.raises(TypeError, match="shapes of its leading arguments"):
        gpuconv.precompile_all([("conv2d", (1, 4, 4, 1))])


def test_the_warmup_command(runtime, capsys):
    code = cli.main(["warmup", "depthwise_conv2d", "--input", "1x10x12x3", "--filter", "3x3x3x2", "--padding", "same",
                     "--bias", "--activation", "relu6"])
    out = capsys.readouterr().out
    assert code == 0 and out.startswith("warmup: depthwise_conv2d 1x10x12x3 * 3x3x3x2: ")
    assert "program(s) compiled in" in out


def test_precompile_on_the_worker_runtime_counts_what_it_compiled(rng):
    with gpuconv.WorkerRuntime() as worker:
        assert gpuconv.precompile("conv2d", (1, 6, 7, 3), (3, 3, 3, 4), algorithm="direct", runtime=worker) == 1
        assert gpuconv.precompile("conv2d", (1, 6, 7, 3), (3, 3, 3, 4), algorithm="direct", runtime=worker) == 0


def test_profile_records_calls_on_tensors_and_their_conversions(runtime, rng):
    x, w, dw, pw = _data(rng, (1, 10, 12, 6), (3, 3, 6, 8), (3, 3, 8, 1), (1, 1, 8, 5))
    with gpuconv.to_gpu(x, runtime) as tx, gpuconv.profile() as prof:
        with gpuconv.conv2d(tx, w, padding="SAME", runtime=runtime) as ty:
            with gpuconv.separable_conv2d(ty, dw, pw, padding="SAME") as tz:
                assert isinstance(tz, gpuconv.Tensor)
                z = tz.numpy()
    expected = gpuconv.oracle.separable_conv2d(gpuconv.oracle.conv2d(x, w, padding="SAME"), dw, pw, padding="SAME")
    assert gpuconv.oracle.relative_error(z, expected) <= 1e-5
    records = prof.records
    assert [r.op for r in records if r.algorithm != "conversion"] == ["conv2d", "separable_conv2d", "separable_conv2d"]
    conversions = [r for r in records if r.algorithm == "conversion"]
    assert conversions and all(r.program == "ConvertProgram" and r.flops == 0 for r in conversions)
    assert all(r.read_ms == 0.0 for r in records)  # the results stayed on the GPU
    assert all(" -> " in r.shapes for r in conversions)
    assert "conversion" in prof.table()
