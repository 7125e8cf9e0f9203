"""Sizes, lifetime, threads and missing drivers (issue 5).

* tensors larger than one texture row are laid out to fit, for every op;
* many calls over changing shapes leave no GL object behind and keep the process's
  memory flat (a counting proxy around the context tells created from released
  objects: moderngl cannot list live objects itself); the program cache stays bounded;
* the default runtime is per thread, so the ops work from any thread;
* without a GL driver the error says what is missing and what to install.

``python -m gpuconv.lifetime --lifetime 10000`` is the long version of the lifetime test.
"""

import threading

import numpy as np
import pytest

import gpuconv
import gpuconv.runtimes.native
from helpers import assert_close
from gpuconv import checks, lifetime
from gpuconv.runtimes import GL_PACKAGES, GLUnavailableError

LIMIT = 80  # texels per texture side: small enough that the tensors below must be wrapped


def _data(rng, *shapes):
    return [rng.uniform(-1, 1, shape).astype(np.float32) for shape in shapes]


# -- tensors too large for one texture row, every op ----------------------------------------------------

WRAPPED_CASES = [
    # id, op, shapes (x, filters...), keyword arguments
    ("separable", "separable_conv2d", [(2, 16, 30, 3), (3, 3, 3, 2), (1, 1, 6, 4)], dict(padding="SAME")),
    ("separable-nchw", "separable_conv2d", [(1, 3, 40, 45), (3, 3, 3, 1), (1, 1, 3, 5)],
     dict(padding="VALID", strides=2, data_format="NCHW")),
    ("conv1d", "conv1d", [(2, 300, 3), (3, 3, 4)], dict(padding="SAME", stride=2)),
    ("conv1d-ncw", "conv1d", [(3, 250), (5, 3, 2)], dict(padding=[2, 1], dilation=2, data_format="NCW")),
    ("conv2d-nchw", "conv2d", [(2, 3, 20, 30), (3, 3, 3, 4)], dict(padding=1, data_format="NCHW")),
    ("grouped-fused", "conv2d", [(2, 16, 30, 4), (3, 2, 2, 6)],
     dict(padding="SAME", groups=2, bias=True, activation="relu")),
    ("depthwise-nchw-prelu", "depthwise_conv2d", [(1, 3, 30, 28), (3, 3, 3, 2)],
     dict(padding="SAME", data_format="NCHW", activation="prelu", prelu="full")),
]


@pytest.mark.parametrize("op, shapes, kwargs", [c[1:] for c in WRAPPED_CASES], ids=[c[0] for c in WRAPPED_CASES])
def test_every_op_fits_large_tensors_under_a_lowered_texture_limit(runtime, rng, monkeypatch, op, shapes, kwargs):
    arrays = _data(rng, *shapes)
    kwargs = dict(kwargs)
    shape_kwargs = {k: v for k, v in kwargs.items() if k not in ("bias", "prelu")}
    extra = {"pointwise_filter_shape": shapes[2]} if op == "separable_conv2d" else {}
    plan_sources = gpuconv.shader_sources(op, shapes[0], shapes[1], max_texture_size=LIMIT,
                                          **{k: v for k, v in shape_kwargs.items() if k != "activation"}, **extra)
    assert any("wrapped into" in source for source in plan_sources), "the limit should force a wrapped layout"
    out = getattr(gpuconv.oracle, op)(*arrays, **{k: v for k, v in shape_kwargs.items() if k != "activation"})
    channel_axis = 1 if kwargs.get("data_format", "NHWC") in ("NCHW", "NCW") else -1
    if kwargs.pop("bias", False):
        kwargs["bias"] = rng.uniform(-1, 1, out.shape[channel_axis]).astype(np.float32)
    if kwargs.pop("prelu", None):
        kwargs["prelu_weights"] = rng.uniform(0, 1, out.shape).astype(np.float32)  # one per output element
    monkeypatch.setattr(runtime, "max_texture_size", LIMIT)
    y = getattr(gpuconv, op)(*arrays, **kwargs, runtime=runtime)
    assert_close(y, getattr(gpuconv.oracle, op)(*arrays, **kwargs))


# -- no GL object or memory grows with use ---------------------------------------------------------------


def _configs(count, seed):
    configs = lifetime.lifetime_configs(count, seed)
    options = [c.options for c in configs]
    assert {c.op for c in configs} == set(checks.OP_WEIGHTS)
    assert {o["data_format"] for o in options} >= {"NHWC", "NCHW"}
    return configs


def test_no_gl_object_or_memory_grows_with_use(runtime):
    configs = _configs(20, seed=3)
    seen = []
    report = lifetime.lifetime(300, configs, every=20,
                                 check=lambda rt, counter: seen.append((counter.live(), len(rt._programs),
                                                                        rt.pooled_textures)))
    # After the first pass over the 20 configurations (every program compiled, the texture pool
    # filled with what one call needs at once), nothing changes:
    assert seen and all(live == report.live_start for live, _, _ in seen), seen
    assert report.live_end == report.live_start
    # no framebuffer outlives its call; the only live textures are the pooled ones (bounded, flat),
    # and the pool is reused: far fewer textures made than drawn into
    assert report.live_end.get("framebuffer", 0) == 0
    assert 0 < report.pooled_textures == report.live_end.get("texture", 0)
    assert all(pooled == report.pooled_textures for _, _, pooled in seen), seen
    assert report.pooled_bytes <= report.pool_limit
    assert report.created["framebuffer"] >= 300 and report.created["texture"] < 300
    # every compiled program is a cached one
    assert report.live_end.get("program", 0) == report.cached_programs <= report.cache_size
    assert report.live_peak.get("program", 0) == report.cached_programs
    # Runtime.release() gives everything back, the pool included
    assert report.live_after_release == {}
    # resident memory stays flat (generous bound: the allocator keeps some slack)
    assert report.rss_end - report.rss_start < 16 << 20, report.lines()


def test_the_program_cache_is_a_bounded_lru_whose_evictions_free_memory(runtime):
    # 24 configurations (about as many distinct programs) through a cache of 4, twice:
    # every eviction must release the program and its vertex array, and the driver's
    # memory for it (llvmpipe keeps ~2 MiB of JIT code per program: with releases made
    # no-ops this run grows by ~100 MiB; as it is, by ~2 MiB).
    configs = _configs(24, seed=4)
    sizes, rss = [], []

    def check(rt, counter):
        sizes.append((len(rt._programs), counter.live()))
        rss.append(lifetime.resident_bytes())

    report = lifetime.lifetime(48, configs, cache_size=4, every=1, check=check)
    assert max(size for size, _ in sizes) == 4
    assert report.created["program"] > 24  # evicted programs were compiled again on the second pass
    for size, live in sizes:
        assert live.get("program", 0) == live.get("vertex_array", 0) == size
    assert report.live_after_release == {}
    assert max(rss[8:]) - rss[8] < 32 << 20, [f"{value >> 20} MiB" for value in rss[::8]]


def test_the_texture_pool_is_reused_bounded_and_keyed_by_storage(runtime, rng):
    x, w = _data(rng, (1, 12, 10, 3), (3, 3, 3, 8))
    expected = gpuconv.oracle.conv2d(x, w, padding="SAME")
    counter = lifetime.CountingContext(runtime.ctx)
    own = gpuconv.NativeRuntime(counter)
    try:
        assert_close(gpuconv.conv2d(x, w, padding="SAME", runtime=own), expected)
        made, pooled = counter.created["texture"], own.pooled_textures
        assert pooled > 0 and counter.live()["texture"] == pooled and own.memory()["textures"] == 0
        for _ in range(5):  # the same call again: every texture comes from the pool
            assert_close(gpuconv.conv2d(x, w, padding="SAME", runtime=own), expected)
        assert counter.created["texture"] == made and own.pooled_textures == pooled
        assert own.info()["pooled_textures"] == pooled and own.info()["pooled_bytes"] == own.pooled_bytes
        # float16 textures are other pool keys: a float16 call makes its own, a float32 one still reuses
        try:
            own.require_storage("float16")
        except GLUnavailableError:
            pass
        else:
            gpuconv.conv2d(x, w, padding="SAME", runtime=own, storage="float16")
            assert counter.created["texture"] > made
            assert {key[3] for key in own._pool} == {"f4", "f2"}
            made = counter.created["texture"]
            assert_close(gpuconv.conv2d(x, w, padding="SAME", runtime=own), expected)
            assert counter.created["texture"] == made
        # the bound: beyond POOL_BYTES the least recently freed textures are released
        own.POOL_BYTES = 2048
        assert_close(gpuconv.conv2d(x, w, padding="SAME", runtime=own), expected)
        assert own.pooled_bytes <= 2048 and counter.live().get("texture", 0) == own.pooled_textures
    finally:
        own.release()
    assert counter.live() == {} and own.pooled_textures == 0


# -- threads ---------------------------------------------------------------------------------------------


def test_the_default_runtime_works_from_a_second_thread(runtime, rng):
    x, w = _data(rng, (1, 6, 7, 3), (3, 3, 3, 2))
    results = {}

    def work():
        try:
            results["y"] = gpuconv.conv2d(x, w, padding="SAME")
            results["runtime"] = gpuconv.get_runtime()
        except Exception as exc:  # reported below
            results["error"] = exc

    thread = threading.Thread(target=work)
    thread.start()
    thread.join(120)
    assert not thread.is_alive()
    assert "error" not in results, results.get("error")
    assert results["runtime"] is not runtime  # each thread has its own default runtime
    assert_close(results["y"], gpuconv.oracle.conv2d(x, w, padding="SAME"))
    # ... and this thread's runtime still works
    assert_close(gpuconv.conv2d(x, w, padding="SAME"), gpuconv.oracle.conv2d(x, w, padding="SAME"))


# -- no GL driver -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("egl_failure, missing", [
    ("Exception: libEGL.so.1 not loaded", "the EGL loader (libEGL.so.1) is missing"),
    ("Exception: requested device index 0, but found 0 devices",
     "no EGL vendor library is installed (Mesa's libegl-mesa0)"),
    ("Exception: MESA-LOADER: failed to open swrast: /usr/lib/dri/swrast_dri.so: cannot open shared object file",
     "Mesa's DRI driver (swrast/llvmpipe) is missing"),
    ("Exception: eglInitialize failed (0x3001)", "Mesa's DRI driver (swrast/llvmpipe) is missing"),
])
def test_the_install_hint_says_what_is_missing_and_what_to_install(egl_failure, missing):
    text = gpuconv.runtimes.native._install_hint({"egl": egl_failure, "glfw": "RuntimeError: glfw.init() failed (no display?)"})
    assert f"gpuconv could not create an OpenGL context: {missing}." in text
    assert f"apt-get install --no-install-recommends {GL_PACKAGES}" in text
    assert {"libegl1", "libgl1", "libgl1-mesa-dri"} <= set(GL_PACKAGES.split())
    assert egl_failure.split(": ", 1)[1].splitlines()[-1] in text and "glfw.init() failed" in text  # the details


def test_create_context_names_the_packages_when_every_backend_fails(monkeypatch):
    def egl():
        raise Exception("requested device index 0, but found 0 devices")

    def glfw():
        raise RuntimeError("the glfw package is not installed (pip install 'gpuconv[glfw]')")

    monkeypatch.delenv(gpuconv.runtimes.native.BACKEND_ENV, raising=False)
    monkeypatch.setitem(gpuconv.runtimes.native._BACKENDS, "egl", egl)
    monkeypatch.setitem(gpuconv.runtimes.native._BACKENDS, "glfw", glfw)
    with pytest.raises(GLUnavailableError) as info:
        gpuconv.runtimes.native.create_context()
    message = str(info.value)
    assert "no EGL vendor library is installed" in message
    assert f"apt-get install --no-install-recommends {GL_PACKAGES}" in message
    assert all(package in message for package in ("libegl1", "libgl1", "libgl1-mesa-dri"))
    assert "egl: Exception: requested device index 0" in message and "glfw: RuntimeError: the glfw package" in message
    # An op on a thread without a runtime gets the same error (the arguments were fine).
    monkeypatch.setattr(gpuconv.runtimes._defaults, "holder", None, raising=False)
    with pytest.raises(GLUnavailableError, match=GL_PACKAGES):
        gpuconv.conv2d(np.zeros((1, 5, 5, 3), np.float32), np.zeros((3, 3, 3, 4), np.float32))
