"""The runtime seam and the native runtime's lifetime (issue 10's runtime defects).

* a thread's default runtime is released when the thread ends: 200 short-lived threads
  leave the process's memory within a small bound (it grew by ~6 MiB per thread);
* ``use_context`` leaves the caller's framebuffer binding and viewport as they were;
* two runtimes in one thread each draw on their own context (moderngl makes no context
  current by itself: the first runtime's calls reached the context made last);
* ``release()`` frees the context a runtime made, a released runtime refuses calls, a
  runtime is a context manager; ``max_draw_buffers`` emulates a smaller device.
"""

from __future__ import annotations

import os
import threading

import numpy as np
import pytest

import gpuconv
from gpuconv.limits import Limits
from gpuconv.ops import plan_conv2d


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / (1 << 20)


def _data(rng, *shapes):
    return [rng.uniform(-1, 1, shape).astype(np.float32) for shape in shapes]


def test_short_lived_threads_do_not_keep_their_contexts(runtime, rng):
    x, w = _data(rng, (1, 6, 6, 3), (3, 3, 3, 2))
    expected = gpuconv.oracle.conv2d(x, w)
    errors = []

    def work():
        try:
            y = gpuconv.conv2d(x, w)
            assert gpuconv.oracle.relative_error(y, expected) <= 1e-5
        except Exception as exc:  # reported below
            errors.append(exc)

    def threads(count):
        for _ in range(count):
            thread = threading.Thread(target=work)
            thread.start()
            thread.join()

    threads(20)  # warm: the allocator's and the driver's one-off growth
    before = _rss_mib()
    threads(200)
    grown = _rss_mib() - before
    assert not errors, errors[0]
    # Each thread's context used to stay alive: ~6 MiB a thread, 1.2 GiB for 200.
    assert grown < 60, f"RSS grew by {grown:.0f} MiB over 200 short-lived threads"


def test_use_context_restores_the_callers_framebuffer_and_viewport(runtime, rng):
    import moderngl

    ctx = moderngl.create_standalone_context(require=330, backend="egl")
    try:
        target = ctx.texture((32, 16), 4, dtype="f4")
        fbo = ctx.framebuffer(color_attachments=[target])
        fbo.use()
        ctx.viewport = (1, 2, 30, 13)
        own = gpuconv.use_context(ctx)
        try:
            x, w = _data(rng, (1, 6, 6, 3), (3, 3, 3, 2))
            for algorithm in ("direct", "packed"):
                y = gpuconv.conv2d(x, w, algorithm=algorithm)
                assert gpuconv.oracle.relative_error(y, gpuconv.oracle.conv2d(x, w)) <= 1e-5
                assert ctx.fbo is fbo
                assert ctx.viewport == (1, 2, 30, 13)
            # the user's framebuffer is still the one GL draws into
            ctx.clear(0.25, 0.5, 0.75, 1.0)
            np.testing.assert_array_equal(np.frombuffer(fbo.read(components=4, dtype="f4"), "f4")[:4],
                                          [0.25, 0.5, 0.75, 1.0])
        finally:
            own.release()
            gpuconv.set_runtime(None)
        assert not ctx.mglo.__class__.__name__ == "InvalidObject"  # the context stays the caller's
        fbo.release()
        target.release()
    finally:
        ctx.release()


def test_making_and_releasing_a_runtime_keeps_the_callers_context_current(runtime, rng):
    import moderngl

    ctx = moderngl.create_standalone_context(require=330, backend="egl")
    try:
        target = ctx.texture((4, 4), 4, dtype="f4")
        fbo = ctx.framebuffer(color_attachments=[target])
        fbo.use()
        x, w = _data(rng, (1, 5, 5, 2), (3, 3, 2, 2))
        with gpuconv.Runtime() as own:  # made current while it is created, then ctx again
            ctx.clear(0.5, 0.25, 0.125, 1.0)
            gpuconv.conv2d(x, w, runtime=own)
            ctx.clear(0.5, 0.25, 0.125, 1.0)
        np.testing.assert_array_equal(np.frombuffer(fbo.read(components=4, dtype="f4"), "f4")[:4],
                                      [0.5, 0.25, 0.125, 1.0])
        fbo.release()
        target.release()
    finally:
        ctx.release()
    # and the default runtime's context still draws
    assert gpuconv.oracle.relative_error(gpuconv.conv2d(x, w, runtime=runtime), gpuconv.oracle.conv2d(x, w)) <= 1e-5


def test_two_runtimes_in_one_thread_each_use_their_own_context(runtime, rng):
    x, w = _data(rng, (1, 8, 8, 3), (3, 3, 3, 2))
    expected = gpuconv.oracle.conv2d(x, w)
    gpuconv.conv2d(x, w, runtime=runtime)
    with gpuconv.Runtime() as second:  # made current last
        for which in (runtime, second, runtime):
            for algorithm in ("direct", "packed"):
                y = gpuconv.conv2d(x, w, runtime=which, algorithm=algorithm)
                assert gpuconv.oracle.relative_error(y, expected) <= 1e-5
    assert gpuconv.oracle.relative_error(gpuconv.conv2d(x, w, runtime=runtime), expected) <= 1e-5


def test_release_frees_the_context_and_refuses_later_calls(runtime, rng):
    x, w = _data(rng, (1, 5, 5, 2), (3, 3, 2, 2))
    own = gpuconv.Runtime()
    gpuconv.conv2d(x, w, runtime=own)
    own.release()
    own.release()  # twice is fine
    assert type(own.ctx.mglo).__name__ == "InvalidObject"
    with pytest.raises(RuntimeError, match="has been released"):
        gpuconv.conv2d(x, w, runtime=own)


def test_a_released_default_runtime_is_replaced(runtime, rng):
    x, w = _data(rng, (1, 5, 5, 2), (3, 3, 2, 2))
    results = {}

    def work():
        first = gpuconv.get_runtime()
        first.release()
        results["y"] = gpuconv.conv2d(x, w)
        results["new"] = gpuconv.get_runtime() is not first

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert results["new"]
    assert gpuconv.oracle.relative_error(results["y"], gpuconv.oracle.conv2d(x, w)) <= 1e-5


def test_runtime_argument_must_be_a_runtime(rng):
    x, w = _data(rng, (1, 5, 5, 2), (3, 3, 2, 2))
    with pytest.raises(TypeError, match="runtime must be a gpuconv runtime"):
        gpuconv.conv2d(x, w, runtime="egl")


@pytest.mark.parametrize("op", ["conv2d", "depthwise_conv2d", "separable_conv2d"])
def test_packed_programs_fit_four_draw_buffers(runtime, rng, op):
    x = _data(rng, (2, 9, 13, 6))[0]
    filters = {"conv2d": [(3, 3, 6, 5)], "depthwise_conv2d": [(3, 3, 6, 2)],
               "separable_conv2d": [(3, 3, 6, 2), (1, 1, 12, 7)]}[op]
    arrays = _data(rng, *filters)
    with gpuconv.Runtime(max_draw_buffers=4) as phone:
        assert phone.max_draw_buffers == 4 and phone.info()["program_draw_buffers"] == 4
        y = getattr(gpuconv, op)(x, *arrays, padding="SAME", algorithm="packed", runtime=phone)
    assert gpuconv.oracle.relative_error(y, getattr(gpuconv.oracle, op)(x, *arrays, padding="SAME")) <= 1e-5
    extra = {"pointwise_filter_shape": filters[1]} if op == "separable_conv2d" else {}
    for buffers in (4, 8):
        sources = gpuconv.shader_sources(op, x.shape, filters[0], padding="SAME", algorithm="packed",
                                         max_draw_buffers=buffers, **extra)
        assert all(f"layout(location = {buffers - 1}) out vec4" in s for s in sources)
        assert not any(f"layout(location = {buffers}) out vec4" in s for s in sources)


def test_limits_are_checked():
    with pytest.raises(ValueError, match="max_draw_buffers must be a positive integer"):
        Limits(16384, 0)
    with pytest.raises(ValueError, match="exceeds this device's limit of 8"):
        Limits.capped(16384, 8, None, 16)
    assert Limits.capped(16384, 8, 2048, 4) == Limits(2048, 4)
    assert plan_conv2d((1, 5, 5, 3), (3, 3, 3, 4), algorithm="packed", shapes_only=True,
                       limits=Limits(16384, 2)).spec.pixels == 2


def test_programs_that_would_overrun_llvmpipes_loop_limit_are_refused(runtime):
    """llvmpipe ends a fragment's loops after 65535 iterations, silently: 9 taps x 8000 blocks of
    four channels came back as 262052 where 288000 was right.  Such a call is refused."""
    assert runtime.max_loop_iterations == 65535 and runtime.info()["max_loop_iterations"] == 65535
    fits = (np.ones((1, 3, 3, 4 * 7000), np.float32), np.ones((3, 3, 4 * 7000, 1), np.float32))
    np.testing.assert_array_equal(gpuconv.conv2d(*fits, algorithm="direct"), [[[[9 * 4 * 7000]]]])
    over = (np.ones((1, 3, 3, 4 * 8000), np.float32), np.ones((3, 3, 4 * 8000, 1), np.float32))
    with pytest.raises(ValueError, match="72012 loop iterations per output value, more than the 65535"):
        gpuconv.conv2d(*over, algorithm="direct")


def test_loop_iterations_of_the_programs():
    direct = plan_conv2d((1, 8, 8, 10), (3, 2, 10, 4), shapes_only=True).spec
    assert direct.loop_iterations == 3 + 6 + 6 * 2  # rows, taps, two blocks of four channels a tap
    depthwise = plan_conv2d((1, 8, 8, 10), (3, 2, 10, 2), depthwise=True, shapes_only=True).spec
    assert depthwise.loop_iterations == 3 + 6
    packed = plan_conv2d((1, 8, 8, 10), (3, 3, 10, 4), strides=2, algorithm="packed", shapes_only=True).spec
    assert packed.flat_row and packed.loop_iterations == 3 + 3 * 3 * 3  # rows, then a row's taps x blocks as one run
    dilated = plan_conv2d((1, 8, 8, 10), (3, 3, 10, 4), strides=2, dilations=2, algorithm="packed",
                          shapes_only=True).spec
    assert not (dilated.reuse_width or dilated.flat_row) and dilated.loop_iterations == 3 + 9 + 9 * 3
    reused = plan_conv2d((1, 8, 8, 10), (3, 3, 10, 4), algorithm="packed", shapes_only=True).spec
    assert reused.reuse_width == 3 and reused.loop_iterations == 3 + 3 * 3  # a row's taps unrolled
