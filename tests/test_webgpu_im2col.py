"""algorithm="im2col" on the WebGPU target: TF.js's Im2ColProgram writes the im2col matrix, which
stays on the GPU for a tiled matrix multiply (MatMulProgram) with the fused epilogue."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import assert_close

import gpuconv

CASES = [
    ((2, 9, 8, 8), (3, 2, 8, 8), dict(padding="SAME")),
    ((1, 9, 11, 3), (3, 3, 3, 8), dict(padding="VALID", strides=2)),
    ((1, 8, 10, 10), (3, 3, 4, 6), dict(padding=[[1, 2], [0, 1]], dilations=2, groups=2, data_format="NCHW",
                                        activation="relu6")),
    ((1, 7, 7, 5), (1, 1, 5, 3), dict(padding="VALID", activation="leakyrelu", leakyrelu_alpha=0.1)),
]


@pytest.mark.parametrize("x_shape, w_shape, kwargs", CASES)
def test_im2col_agrees_with_the_oracle(webgpu, rng, x_shape, w_shape, kwargs):
    x = rng.standard_normal(x_shape).astype(np.float32)
    w = rng.standard_normal(w_shape).astype(np.float32)
    out_channels = w_shape[-1]
    bias = rng.standard_normal(out_channels).astype(np.float32)
    with gpuconv.profile() as prof:
        y = gpuconv.conv2d(x, w, bias=bias, algorithm="im2col", runtime=webgpu, **kwargs)
    assert [record.program for record in prof.records] == ["Im2ColProgram", "MatMulProgram"]
    assert_close(y, gpuconv.oracle.conv2d(x, w, bias=bias, **kwargs))


def test_im2col_runs_conv1d_and_tensors(webgpu, rng):
    x = rng.standard_normal((2, 20, 3)).astype(np.float32)
    w = rng.standard_normal((3, 3, 5)).astype(np.float32)
    assert_close(gpuconv.conv1d(x, w, padding="SAME", algorithm="im2col", runtime=webgpu),
                 gpuconv.oracle.conv1d(x, w, padding="SAME"))
    image = rng.standard_normal((1, 6, 6, 4)).astype(np.float32)
    filter = rng.standard_normal((1, 3, 4, 5)).astype(np.float32)
    with gpuconv.to_gpu(image, runtime=webgpu) as t:
        out = gpuconv.conv2d(t, filter, padding="SAME", algorithm="im2col")
        assert_close(out.numpy(), gpuconv.oracle.conv2d(image, filter, padding="SAME"))
        out.release()


def test_im2col_is_conv2d_only_and_packed_is_webgl2s(webgpu):
    x, w = np.ones((1, 5, 5, 4), np.float32), np.ones((3, 3, 4, 1), np.float32)
    with pytest.raises(ValueError, match="algorithm='im2col' runs conv2d and conv1d only"):
        gpuconv.depthwise_conv2d(x, w, algorithm="im2col", runtime=webgpu)
    with pytest.raises(ValueError, match="'packed' is WebGL2's"):
        gpuconv.conv2d(x, w.reshape(3, 3, 4, 1), algorithm="packed", runtime=webgpu)


def test_grouped_im2col_runs_on_webgpu_though_webgl2_refuses_it(webgpu, runtime, rng):
    """WebGL2's im2col programs do not run a grouped call; WebGPU's do (the runtime's target says)."""
    x = rng.standard_normal((1, 6, 6, 4)).astype(np.float32)
    w = rng.standard_normal((3, 3, 2, 4)).astype(np.float32)
    assert_close(gpuconv.conv2d(x, w, groups=2, algorithm="im2col", runtime=webgpu),
                 gpuconv.oracle.conv2d(x, w, groups=2))
    with pytest.raises(ValueError, match="grouped convolution"):
        gpuconv.conv2d(x, w, groups=2, algorithm="im2col", runtime=runtime)


def test_im2col_sources_are_valid_wgsl():
    from gpuconv.validate import validate_wgsl

    sources = gpuconv.shader_sources("conv2d", (1, 7, 7, 6), (3, 3, 6, 4), padding="SAME", target="webgpu",
                                     algorithm="im2col", activation="relu")
    assert len(sources) == 2 and "Im2ColProgram" in sources[0] and "MatMulProgram" in sources[1]
    for source in sources:
        validate_wgsl(source, pipeline=True)
