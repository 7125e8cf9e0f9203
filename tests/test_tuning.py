"""gpuconv.autotune: "auto" from this device's measurements, kept in a tuning cache."""

import json

import numpy as np
import pytest
from helpers import assert_close

import gpuconv
from gpuconv import tuning


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty tuning cache directory, and no cache files or tuning left over from elsewhere."""
    monkeypatch.setenv(tuning.CACHE_DIR_ENV, str(tmp_path))
    monkeypatch.delenv(tuning.AUTOTUNE_ENV, raising=False)
    tuning._caches.clear()
    yield tmp_path
    tuning._caches.clear()


def _entries(runtime):
    return json.loads(tuning.cache_path(runtime).read_text())["entries"]


def _programs(call):
    with gpuconv.profile() as prof:
        result = call()
    return result, [record.program for record in prof.records]


def test_autotune_times_every_algorithm_that_can_run_the_call_and_keeps_the_fastest(runtime, rng, cache):
    x = rng.standard_normal((1, 17, 15, 3)).astype(np.float32)
    w = rng.standard_normal((3, 3, 3, 16)).astype(np.float32)
    with gpuconv.autotune():
        y = gpuconv.conv2d(x, w, strides=2, padding="SAME", runtime=runtime)
    assert_close(y, gpuconv.oracle.conv2d(x, w, strides=2, padding="SAME"))
    (entry,) = _entries(runtime).values()
    assert set(entry["times_ms"]) == {"packed", "im2col", "direct"}
    # the fastest, or the rule's choice (here im2col) within the margin of it
    times = entry["times_ms"]
    assert times[entry["algorithm"]] * (1 - tuning.MARGIN) <= min(times.values())
    assert entry["algorithm"] in ("im2col", min(times, key=times.get))
    assert entry["call"].startswith("conv2d: x 1x17x15x3, W 3x3x3x16, strides 2x2")
    assert tuning.device_description(runtime) == json.loads(tuning.cache_path(runtime).read_text())["device"]


def test_a_tuned_call_runs_the_cached_choice_without_timing_again(runtime, rng, cache, monkeypatch):
    x = rng.standard_normal((1, 9, 9, 5)).astype(np.float32)
    w = rng.standard_normal((3, 3, 5, 6)).astype(np.float32)
    with gpuconv.autotune():
        gpuconv.conv2d(x, w, padding="SAME", runtime=runtime)
    (key,) = _entries(runtime)
    # A later process: the choice comes from the file (here: the direct program), no timing.
    path = tuning.cache_path(runtime)
    saved = json.loads(path.read_text())
    saved["entries"][key]["algorithm"] = "direct"
    path.write_text(json.dumps(saved))
    tuning._caches.clear()
    monkeypatch.setattr(tuning, "_time", lambda *args: pytest.fail("a cached call was timed again"))
    with gpuconv.autotune():
        y, programs = _programs(lambda: gpuconv.conv2d(x, w, padding="SAME", runtime=runtime))
    assert programs == ["Conv2DProgram"]
    assert_close(y, gpuconv.oracle.conv2d(x, w, padding="SAME"))


def test_without_autotune_auto_follows_its_rule_and_touches_no_cache(runtime, rng, cache):
    x = rng.standard_normal((1, 9, 9, 5)).astype(np.float32)
    w = rng.standard_normal((3, 3, 5, 6)).astype(np.float32)
    _, programs = _programs(lambda: gpuconv.conv2d(x, w, padding="SAME", runtime=runtime))
    assert programs == ["PackedConv2DProgram"]
    assert not list(cache.iterdir())


def test_the_environment_turns_tuning_on_and_autotune_false_turns_it_off(runtime, rng, cache, monkeypatch):
    monkeypatch.setenv(tuning.AUTOTUNE_ENV, "1")
    assert tuning.autotuning()
    with gpuconv.autotune(False):
        assert not tuning.autotuning()
        gpuconv.depthwise_conv2d(rng.standard_normal((1, 6, 6, 4)).astype(np.float32),
                                 rng.standard_normal((3, 3, 4, 1)).astype(np.float32), runtime=runtime)
    assert not list(cache.iterdir())
    gpuconv.depthwise_conv2d(rng.standard_normal((1, 6, 6, 4)).astype(np.float32),
                             rng.standard_normal((3, 3, 4, 1)).astype(np.float32), runtime=runtime)
    (entry,) = _entries(runtime).values()
    assert set(entry["times_ms"]) == {"packed", "direct"}  # depthwise has no im2col


def test_im2col_is_no_candidate_when_a_weight_could_meet_the_padding_as_nan(runtime, rng, cache):
    x = rng.standard_normal((1, 12, 12, 3)).astype(np.float32)
    w = rng.standard_normal((3, 3, 3, 16)).astype(np.float32)
    w[0, 0, 0, 0] = np.nan
    with gpuconv.autotune():
        y = gpuconv.conv2d(x, w, strides=2, padding="SAME", runtime=runtime)
    (entry,) = _entries(runtime).values()
    assert "im2col" not in entry["times_ms"]
    expected = gpuconv.oracle.conv2d(x, w, strides=2, padding="SAME")
    np.testing.assert_array_equal(np.isnan(y), np.isnan(expected))


def test_tuned_calls_take_and_give_tensors(runtime, rng, cache):
    x = rng.standard_normal((1, 8, 8, 8)).astype(np.float32)
    dw = rng.standard_normal((3, 3, 8, 1)).astype(np.float32)
    pw = rng.standard_normal((1, 1, 8, 12)).astype(np.float32)
    with gpuconv.autotune(), gpuconv.to_gpu(x, runtime) as tx:
        with gpuconv.separable_conv2d(tx, dw, pw, padding="SAME") as ty:
            assert isinstance(ty, gpuconv.Tensor)
            assert_close(ty.numpy(), gpuconv.oracle.separable_conv2d(x, dw, pw, padding="SAME"))
    (entry,) = _entries(runtime).values()
    assert set(entry["times_ms"]) == {"packed", "direct"}


def test_an_unreadable_cache_is_started_afresh_and_clear_forgets(runtime, rng, cache):
    path = tuning.cache_path(runtime)
    path.write_text("{ not json")
    x = rng.standard_normal((1, 6, 6, 4)).astype(np.float32)
    w = rng.standard_normal((1, 1, 4, 8)).astype(np.float32)
    with gpuconv.autotune():
        gpuconv.conv2d(x, w, runtime=runtime)
    assert len(_entries(runtime)) == 1
    tuning.clear(runtime)
    assert not path.exists()


def test_autotune_refuses_a_non_boolean():
    with pytest.raises(TypeError, match="enabled must be True or False"):
        with gpuconv.autotune("yes"):
            pass


def test_run_autotune_tunes_the_call_and_refuses_another_algorithm(runtime, rng, cache, tmp_path, capsys):
    from gpuconv import cli

    np.save(tmp_path / "x.npy", rng.standard_normal((1, 16, 16, 3)).astype(np.float32))
    np.save(tmp_path / "w.npy", rng.standard_normal((3, 3, 3, 16)).astype(np.float32))
    args = ["run", "conv2d", "--input", str(tmp_path / "x.npy"), "--filter", str(tmp_path / "w.npy"),
            "--strides", "2", "--padding", "same"]
    assert cli.main(args + ["--autotune", "--check"]) == 0
    assert "PASS" in capsys.readouterr().out
    (entry,) = _entries(gpuconv.get_runtime()).values()
    assert set(entry["times_ms"]) == {"packed", "im2col", "direct"}
    assert cli.main(args + ["--autotune", "--algorithm", "packed"]) == 2
    assert "--autotune tunes --algorithm auto" in capsys.readouterr().err


def test_info_names_the_tuning_cache_and_counts_its_entries(runtime, rng, cache, capsys):
    from gpuconv import cli

    assert cli.main(["info"]) == 0
    line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("tuning cache:"))
    assert str(cache) in line and "(0 call shapes tuned" in line
    with gpuconv.autotune():
        gpuconv.conv2d(rng.standard_normal((1, 6, 6, 4)).astype(np.float32),
                       rng.standard_normal((3, 3, 4, 4)).astype(np.float32), runtime=runtime)
    assert cli.main(["info"]) == 0
    assert "(1 call shape tuned" in capsys.readouterr().out


# -- the WebGPU target: program variants (tile, vector and workgroup sizes) per adapter -------------

def test_autotune_on_webgpu_times_the_program_variants_and_keeps_the_fastest(webgpu, rng, cache, monkeypatch):
    from gpuconv.webgpu.target import VARIANTS

    x = rng.standard_normal((1, 12, 12, 8)).astype(np.float32)
    w = rng.standard_normal((3, 3, 8, 8)).astype(np.float32)
    with gpuconv.autotune():
        y = gpuconv.conv2d(x, w, padding="SAME", runtime=webgpu)
    assert_close(y, gpuconv.oracle.conv2d(x, w, padding="SAME"))
    (entry,) = _entries(webgpu).values()
    assert entry["algorithm"] in VARIANTS
    # every conv2d variant that can run it: the blocked shapes, every GEMM tiling, one output per invocation
    assert {"blocked-8px-8ch", "blocked-4px-4ch", "mm-32x32", "naive"} <= set(entry["times_ms"])
    assert not any(name.startswith("dw-") for name in entry["times_ms"])
    assert "llvmpipe" in tuning.device_description(webgpu) or "WebGPU" in tuning.device_description(webgpu)
    # a later process: the cached variant runs, nothing is timed again
    path = tuning.cache_path(webgpu)
    saved = json.loads(path.read_text())
    (key,) = saved["entries"]
    saved["entries"][key]["algorithm"] = "mm-32x32"
    path.write_text(json.dumps(saved))
    tuning._caches.clear()
    monkeypatch.setattr(tuning, "_time", lambda *a: pytest.fail("timed a cached call again"))
    with gpuconv.autotune():
        y, programs = _programs(lambda: gpuconv.conv2d(x, w, padding="SAME", runtime=webgpu))
    assert programs == ["Conv2DMMProgram"]
    assert_close(y, gpuconv.oracle.conv2d(x, w, padding="SAME"))


def test_webgpu_variants_are_refused_where_they_cannot_run(webgpu):
    from gpuconv.registry import get
    from gpuconv.webgpu.target import WEBGPU

    def make(limits, algorithm="auto"):
        return get("conv2d").plan([(1, 9, 9, 4), (3, 3, 4, 12)], padding="SAME", algorithm=algorithm, limits=limits)

    # 12 output channels do not come in 8s: the 8-channel blocked variant falls back to the rule's program
    plan = WEBGPU.tuned_plan(make, "blocked-8px-8ch", webgpu.limits)
    assert plan.spec.name == "Conv2DBlockedProgram" and dict(plan.spec.parameters)["blocks"] == 1
    assert WEBGPU.tuned_plan(make, "naive", webgpu.limits).spec.name == "Conv2DNaiveProgram"
    with pytest.raises(ValueError, match="unknown WebGPU program variant"):
        WEBGPU.tuned_plan(make, "packed", webgpu.limits)
    from gpuconv.limits import Limits

    with pytest.raises(TypeError, match="the WebGPU target plans for WebGPULimits, got Limits"):
        WEBGPU.tuned_plan(make, "naive", Limits())  # WebGL2's texture limits say nothing of buffers
