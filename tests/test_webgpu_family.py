"""The rest of the family on the WebGPU target: the filter gradients (conv2d, depthwise, conv3d;
workgroup reductions), conv3d, conv3d_backprop_input and conv3d_transpose, against the float64
oracle on a WebGPURuntime (Mesa's lavapipe without a GPU), and against the WebGL2 runtime."""

from __future__ import annotations

import os

import numpy as np
import pytest

import gpuconv
from gpuconv import oracle
from gpuconv.codegen import program_source
from gpuconv.geometry import conv2d_backprop_filter_geometry, conv3d_geometry
from gpuconv.programs import LLVMPIPE_LOOP_LIMIT
from gpuconv.runtimes import GLUnavailableError
from gpuconv.target import WEBGPU
from gpuconv.webgpu.gradients import conv2d_backprop_filter_program, conv3d_backprop_filter_program
from gpuconv.webgpu.limits import WebGPULimits


def _unavailable(what: str, exc: Exception) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"no {what} on CI: {exc}")
    pytest.skip(f"no {what}: {exc}")


@pytest.fixture(scope="module")
def gpu():
    try:
        runtime = gpuconv.WebGPURuntime()
    except GLUnavailableError as exc:
        _unavailable("WebGPU adapter", exc)
    yield runtime
    runtime.release()


@pytest.fixture(scope="module")
def gl():
    try:
        return gpuconv.get_runtime() if os.environ.get("GPUCONV_BACKEND") != "webgpu" else gpuconv.Runtime()
    except GLUnavailableError as exc:
        _unavailable("GL context", exc)


def _close(got, want, rtol: float = 2e-6) -> float:
    got = np.asarray(got)
    assert got.shape == want.shape
    scale = max(float(np.abs(want).max()), 1e-6)
    error = float(np.abs(got.astype(np.float64) - want).max()) / scale
    assert error <= rtol, f"relative error {error:.2e}"
    return error


def _rand(rng, shape):
    return rng.standard_normal(shape).astype(np.float32)


# NHWC paddings; NCHW tests move the spatial pairs.
PAD_2D = ["VALID", "SAME", [[0, 0], [1, 2], [2, 0], [0, 0]], 1]
CASES_2D = [  # (strides, dilations, padding)
    (1, 1, "SAME"), (2, 1, "VALID"), ((2, 1), 1, "SAME"), (1, (2, 3), [[0, 0], [1, 2], [2, 0], [0, 0]]),
    (2, 1, 1), (3, 2, "SAME"),
]


def _nchw_padding(padding):
    return [padding[0], padding[3], padding[1], padding[2]] if isinstance(padding, list) else padding


def _2d_args(data_format, strides, dilations, padding):
    if data_format == "NCHW":
        padding = _nchw_padding(padding)
    rounding = "floor" if isinstance(padding, int) else None
    return strides, padding, data_format, dilations, rounding


@pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
@pytest.mark.parametrize("strides,dilations,padding", CASES_2D)
def test_conv2d_backprop_filter(gpu, rng, data_format, strides, dilations, padding):
    args = _2d_args(data_format, strides, dilations, padding)
    x = _rand(rng, (2, 11, 10, 5) if data_format == "NHWC" else (2, 5, 11, 10))
    filter_shape = (3, 2, 5, 7)
    dy = _rand(rng, oracle.conv2d(x, np.zeros(filter_shape, np.float32), *args).shape)
    want = oracle.conv2d_backprop_filter(x, filter_shape, dy, *args)
    _close(gpuconv.conv2d_backprop_filter(x, filter_shape, dy, *args, runtime=gpu), want)


@pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
@pytest.mark.parametrize("multiplier", [1, 3])
@pytest.mark.parametrize("strides,dilations,padding", CASES_2D[:4])
def test_depthwise_conv2d_backprop_filter(gpu, rng, data_format, multiplier, strides, dilations, padding):
    args = _2d_args(data_format, strides, dilations, padding)
    x = _rand(rng, (3, 9, 8, 7) if data_format == "NHWC" else (3, 7, 9, 8))
    filter_shape = (3, 3, 7, multiplier)
    dy = _rand(rng, oracle.depthwise_conv2d(x, np.zeros(filter_shape, np.float32), *args).shape)
    want = oracle.depthwise_conv2d_backprop_filter(x, filter_shape, dy, *args)
    _close(gpuconv.depthwise_conv2d_backprop_filter(x, filter_shape, dy, *args, runtime=gpu), want)


def test_filter_gradient_without_batch_and_many_channels(gpu, rng):
    """Unbatched x and dy; channels past one 8x8 block (partial blocks at both ends)."""
    x, filter_shape = _rand(rng, (6, 7, 19)), (2, 3, 19, 13)
    dy = _rand(rng, oracle.conv2d(x[None], np.zeros(filter_shape, np.float32), 1, "SAME").shape[1:])
    want = oracle.conv2d_backprop_filter(x, filter_shape, dy, 1, "SAME")
    _close(gpuconv.conv2d_backprop_filter(x, filter_shape, dy, 1, "SAME", runtime=gpu), want)
    depthwise = (3, 3, 19, 2)
    dy = _rand(rng, oracle.depthwise_conv2d(x[None], np.zeros(depthwise, np.float32), 2, "SAME").shape[1:])
    want = oracle.depthwise_conv2d_backprop_filter(x, depthwise, dy, 2, "SAME")
    _close(gpuconv.depthwise_conv2d_backprop_filter(x, depthwise, dy, 2, "SAME", runtime=gpu), want)


def test_a_filter_gradient_past_the_loop_limit_is_reduced(gpu, rng):
    """90,000 dy positions: one invocation summing them all would loop past llvmpipe's 65535 (the
    WebGL2 plan splits them into partial sums); here each invocation sums its share, the workgroup
    the rest, in one program."""
    x = _rand(rng, (1, 300, 300, 2))
    dy = _rand(rng, (1, 300, 300, 3))
    plan = gpuconv.ops.plan_conv2d_backprop_filter(x, (3, 3, 2, 3), dy, 1, "SAME")
    assert [spec.name for spec in plan.specs] == ["Conv2DDerFilterProgram", "SliceSumProgram"]
    lowered = WEBGPU.lower(plan, "auto", gpu.limits)
    assert [spec.name for spec in lowered.specs] == ["Conv2DDerFilterProgram"]
    assert lowered.out_shape == (3, 3, 2, 3)
    spec = lowered.spec
    assert 90000 > LLVMPIPE_LOOP_LIMIT > spec.loop_iterations
    assert spec.parameters and dict(spec.parameters)["positions"] == 90000
    want = oracle.conv2d_backprop_filter(x, (3, 3, 2, 3), dy, 1, "SAME")
    _close(gpuconv.conv2d_backprop_filter(x, (3, 3, 2, 3), dy, 1, "SAME", runtime=gpu), want, 1e-5)


def test_filter_gradient_shapes_itself_to_the_device():
    """Small devices: fewer invocations and less workgroup memory shrink the block, more positions
    widen the workgroup; what no workgroup keeps within the loop limit is refused by check_loops."""
    g, _ = conv2d_backprop_filter_geometry((8, 64, 64, 64), (3, 3, 64, 64), (8, 64, 64, 64), 1, "SAME")
    spec = conv2d_backprop_filter_program(g, WebGPULimits())
    parameters = dict(spec.parameters)
    assert (parameters["block_c"], parameters["block_k"], spec.invocations) == (8, 8, 32)
    assert spec.workgroup_bytes == 8 * 8 * 32 * 4 and spec.iterations < LLVMPIPE_LOOP_LIMIT
    small = WebGPULimits(max_compute_workgroup_storage_size=1024, max_compute_invocations_per_workgroup=16)
    spec = conv2d_backprop_filter_program(g, small)
    spec.check(small)
    assert spec.workgroup_bytes <= 1024 and spec.invocations <= 16
    huge, _ = conv2d_backprop_filter_geometry((1, 5000, 4000, 1), (1, 1, 1, 1), (1, 5000, 4000, 1), 1, "VALID")
    spec = conv2d_backprop_filter_program(huge, WebGPULimits())
    assert spec.invocations == 256 and spec.iterations > LLVMPIPE_LOOP_LIMIT
    with pytest.raises(ValueError, match="loop iterations"):
        gpuconv.plan.Plan(((spec, {}),), spec.output_shape).check_loops(LLVMPIPE_LOOP_LIMIT)


CASES_3D = [  # (strides, dilations, padding) in NDHWC
    (1, 1, "SAME"), (2, 1, "VALID"), ((1, 2, 1), (2, 1, 1), "SAME"),
    (1, (1, 2, 1), [[0, 0], [1, 0], [0, 2], [1, 1], [0, 0]]), (2, 1, 1),
]


def _3d_args(data_format, strides, dilations, padding):
    if data_format == "NCDHW" and isinstance(padding, list):
        padding = [padding[0], padding[4]] + padding[1:4]
    return strides, padding, data_format, dilations, "ceil" if isinstance(padding, int) else None


@pytest.mark.parametrize("data_format", ["NDHWC", "NCDHW"])
@pytest.mark.parametrize("strides,dilations,padding", CASES_3D)
def test_conv3d_and_its_gradients(gpu, rng, data_format, strides, dilations, padding):
    args = _3d_args(data_format, strides, dilations, padding)
    shape = (2, 5, 6, 7, 3) if data_format == "NDHWC" else (2, 3, 5, 6, 7)
    x, w = _rand(rng, shape), _rand(rng, (2, 3, 2, 3, 5))
    y = oracle.conv3d(x, w, *args)
    _close(gpuconv.conv3d(x, w, *args, runtime=gpu), y)
    dy = _rand(rng, y.shape)
    _close(gpuconv.conv3d_backprop_input(shape, w, dy, *args, runtime=gpu),
           oracle.conv3d_backprop_input(shape, w, dy, *args))
    _close(gpuconv.conv3d_backprop_filter(x, w.shape, dy, *args, runtime=gpu),
           oracle.conv3d_backprop_filter(x, w.shape, dy, *args))


@pytest.mark.parametrize("data_format", ["NDHWC", "NCDHW"])
@pytest.mark.parametrize("strides,padding", [(1, "VALID"), (2, "SAME"), ((2, 1, 2), "VALID")])
def test_conv3d_transpose(gpu, rng, data_format, strides, padding):
    x = _rand(rng, (2, 3, 4, 3, 5) if data_format == "NDHWC" else (2, 5, 3, 4, 3))
    w = _rand(rng, (2, 3, 3, 3, 5))  # [FD, FH, FW, out_channels, in_channels]
    spatial = [(n - 1) * s + (f if padding == "VALID" else 1) for n, s, f in
               zip((3, 4, 3), (strides,) * 3 if isinstance(strides, int) else strides, (2, 3, 3))]
    output_shape = (2, *spatial, 3) if data_format == "NDHWC" else (2, 3, *spatial)
    want = oracle.conv3d_transpose(x, w, output_shape, strides, padding, data_format)
    _close(gpuconv.conv3d_transpose(x, w, output_shape, strides, padding, data_format, runtime=gpu), want)


def test_unbatched_conv3d(gpu, rng):
    x, w = _rand(rng, (4, 5, 6, 3)), _rand(rng, (3, 3, 3, 3, 2))
    _close(gpuconv.conv3d(x, w, 1, "SAME", runtime=gpu), oracle.conv3d(x, w, 1, "SAME"))


def test_every_program_is_valid_wgsl(gpu):
    """naga (the runtime's create_shader_module and compute pipeline) takes every new program,
    including the 3-D filter gradient and a 1x1 block."""
    limits = WebGPULimits()
    g2, _ = conv2d_backprop_filter_geometry((1, 4, 4, 1), (1, 1, 1, 1), (1, 4, 4, 1), 1, "VALID")
    g3 = conv3d_geometry((1, 2, 4, 4, 4), (2, 2, 2, 2, 3), 1, "SAME", "NCDHW")
    assert gpu.compile([conv2d_backprop_filter_program(g2, limits), conv3d_backprop_filter_program(g3, limits)]) >= 0
    source = program_source(conv3d_backprop_filter_program(g3, limits))
    assert "var<workgroup> partial" in source and "workgroupBarrier()" in source


def test_filter_gradients_chain_on_tensors(gpu, rng):
    """Tensors on the GPU in, a Tensor out (the plan's chaining keeps the reduction's buffer)."""
    x, dy = _rand(rng, (2, 8, 8, 4)), _rand(rng, (2, 8, 8, 6))
    out = gpuconv.conv2d_backprop_filter(gpuconv.to_gpu(x, runtime=gpu), (3, 3, 4, 6),
                                         gpuconv.to_gpu(dy, runtime=gpu), 1, "SAME")
    _close(out.numpy(), oracle.conv2d_backprop_filter(x, (3, 3, 4, 6), dy, 1, "SAME"))


AGREEMENT = {
    "conv2d_backprop_filter": lambda rng: ((_rand(rng, (2, 40, 40, 6)), (3, 3, 6, 5), _rand(rng, (2, 20, 20, 5)),
                                            2, "SAME"), {}),
    "depthwise_conv2d_backprop_filter": lambda rng: ((_rand(rng, (1, 6, 15, 15)), (3, 3, 6, 2),
                                                      _rand(rng, (1, 12, 15, 15)), 1, "SAME", "NCHW"), {}),
    "conv3d": lambda rng: ((_rand(rng, (1, 6, 7, 8, 4)), _rand(rng, (3, 3, 3, 4, 5)), 1, "SAME"), {}),
    "conv3d_backprop_filter": lambda rng: ((_rand(rng, (2, 3, 6, 6, 6)), (2, 2, 2, 3, 4),
                                            _rand(rng, (2, 4, 3, 3, 3)), 2, "VALID", "NCDHW"), {}),
    "conv3d_transpose": lambda rng: ((_rand(rng, (1, 3, 3, 3, 4)), _rand(rng, (2, 2, 2, 2, 4)), (1, 6, 6, 6, 2),
                                      2, "VALID"), {}),
}


@pytest.mark.parametrize("op", sorted(AGREEMENT))
def test_agrees_with_the_webgl2_runtime(gpu, gl, rng, op):
    """The same call on both targets: equal to float32 rounding (different summation orders)."""
    args, kwargs = AGREEMENT[op](rng)
    on_webgpu = np.asarray(getattr(gpuconv, op)(*args, runtime=gpu, **kwargs), np.float64)
    on_webgl2 = np.asarray(getattr(gpuconv, op)(*args, runtime=gl, **kwargs), np.float64)
    want = getattr(oracle, op)(*args, **kwargs)
    scale = np.abs(want).max()
    assert np.abs(on_webgpu - on_webgl2).max() <= 4e-6 * scale
    _close(on_webgpu, want)


def test_folded_grids(gpu, rng):
    """A device with few workgroups per dimension: the grids fold into y, and the spare workgroups
    of the last row leave (a filter gradient's whole workgroup at once, before its barriers)."""
    with gpuconv.WebGPURuntime(adapter=gpu.adapter, max_compute_workgroups_per_dimension=7) as small:
        x, dy = _rand(rng, (2, 7, 7, 11)), _rand(rng, (2, 7, 7, 9))
        plan = WEBGPU.plan(lambda limits: gpuconv.ops.plan_conv2d_backprop_filter(
            x, (3, 3, 11, 9), dy, 1, "SAME", limits=limits), None, small.limits)
        assert plan.spec.workgroups == 9 * 2 * 2 and plan.spec.dispatch == (7, 6, 1)
        _close(gpuconv.conv2d_backprop_filter(x, (3, 3, 11, 9), dy, 1, "SAME", runtime=small),
               oracle.conv2d_backprop_filter(x, (3, 3, 11, 9), dy, 1, "SAME"))
        x3, w3 = _rand(rng, (1, 6, 8, 8, 3)), _rand(rng, (2, 2, 2, 3, 2))
        _close(gpuconv.conv3d(x3, w3, 1, "SAME", runtime=small), oracle.conv3d(x3, w3, 1, "SAME"))
