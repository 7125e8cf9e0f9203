"""Tensors that stay on the GPU (gpuconv.to_gpu, gpuconv.Tensor): every op takes them and gives
them back, equal to the array path; conversions between layouts run on the GPU; nothing crosses
to the host between ops; textures are counted and freed."""

import gc
import math

import numpy as np
import pytest
from helpers import assert_close

import gpuconv
from gpuconv import oracle
from gpuconv.convert import ConversionSpec, conversion, same_storage
from gpuconv.geometry import conv2d_geometry
from gpuconv.layout import (
    PackedFilterLayout,
    PackedImageLayout,
    PackedVectorLayout,
    SplitImageLayout,
    TextureLayout,
    texture_layout,
)
from gpuconv.programs import packed_program
from gpuconv.webgpu.layout import BufferLayout


def f32(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


@pytest.fixture
def small_runtime(runtime):
    """A native runtime whose layouts wrap early (textures at most 48 texels a side)."""
    small = gpuconv.Runtime(max_texture_size=48)
    yield small
    small.release()


# -- Tensor basics ----------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(), (5,), (3, 4), (2, 3, 4), (1, 5, 5, 3), (1, 2, 3, 4, 5)])
def test_to_gpu_numpy_roundtrip(runtime, rng, shape):
    array = rng.standard_normal(shape)  # float64 in, float32 out
    with gpuconv.to_gpu(array, runtime) as t:
        assert isinstance(t, gpuconv.Tensor)
        assert t.shape == shape and t.dtype == np.float32 and t.runtime is runtime
        assert isinstance(t.layout, (TextureLayout, BufferLayout)) and t.layout.components == 1
        values = t.numpy()
        assert values.dtype == np.float32 and values.shape == shape
        np.testing.assert_array_equal(values, array.astype(np.float32))
        np.testing.assert_array_equal(np.asarray(t), values)
    assert t.released
    with pytest.raises(ValueError, match="released"):
        t.numpy()


def test_reshape_is_a_view(runtime, rng):
    array = f32(rng, 2, 3, 4)
    t = gpuconv.to_gpu(array, runtime)
    v = t.reshape(4, -1)
    assert v.shape == (4, 6) and v.textures == t.textures
    np.testing.assert_array_equal(v.numpy(), array.reshape(4, 6))
    with pytest.raises(ValueError, match="cannot reshape"):
        t.reshape(5, 5)
    v.release()  # the textures are shared: every view is released
    assert t.released


def test_to_gpu_refuses_what_as_tensor_refuses(runtime):
    with pytest.raises(TypeError, match="floating-point"):
        gpuconv.to_gpu(np.ones((2, 2), np.int32), runtime)
    t = gpuconv.to_gpu(np.ones(3, np.float32), runtime)
    with pytest.raises(TypeError, match="Tensor already"):
        gpuconv.to_gpu(t, runtime)
    t.release()


def test_wrapped_upload_and_read(small_runtime, rng):
    array = f32(rng, 1, 9, 9, 10)  # 81 rows of 10, or 9 of 90: wrapped into a squarish texture
    with gpuconv.to_gpu(array, small_runtime) as t:
        assert t.layout.wrapped
        np.testing.assert_array_equal(t.numpy(), array)


# -- every op: a Tensor in gives a Tensor out, equal to the array path ------------------------

def _same(runtime, fn, arrays, tensor_names, **kwargs):
    """fn with arrays, and with the named arguments as Tensors: bit-identical, a Tensor back."""
    expected = fn(*arrays.values(), **kwargs, runtime=runtime)
    assert isinstance(expected, np.ndarray)
    before = gpuconv.memory(runtime)
    tensors = {name: gpuconv.to_gpu(value, runtime) if name in tensor_names else value
               for name, value in arrays.items()}
    try:
        got = fn(*tensors.values(), **kwargs)  # runtime=None: the Tensors' runtime
        assert isinstance(got, gpuconv.Tensor) and got.runtime is runtime
        assert got.shape == expected.shape
        np.testing.assert_array_equal(got.numpy(), expected)
        got.release()
    finally:
        for value in tensors.values():
            if isinstance(value, gpuconv.Tensor):
                value.release()
    assert gpuconv.memory(runtime) == before  # the uploads, their conversions and the result freed
    return expected


@pytest.mark.parametrize("algorithm", ["direct", "packed"])
@pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
def test_conv2d(runtime, rng, algorithm, data_format):
    x = f32(rng, 2, 7, 6, 5) if data_format == "NHWC" else f32(rng, 2, 5, 7, 6)
    _same(runtime, gpuconv.conv2d, {"x": x, "filter": f32(rng, 3, 3, 5, 6)}, {"x", "filter"},
          strides=2, padding="SAME", data_format=data_format, algorithm=algorithm)
    _same(runtime, gpuconv.conv2d, {"x": x, "filter": f32(rng, 3, 3, 5, 6)}, {"x"},
          padding="VALID", data_format=data_format, algorithm=algorithm)


@pytest.mark.parametrize("algorithm", ["direct", "packed"])
def test_conv2d_fused(runtime, rng, algorithm):
    x, w, b = f32(rng, 1, 8, 8, 3), f32(rng, 3, 3, 3, 8), f32(rng, 8)
    _same(runtime, lambda x, filter, bias, **k: gpuconv.conv2d(x, filter, bias=bias, **k),
          {"x": x, "filter": w, "bias": b}, {"x", "filter", "bias"},
          padding="SAME", activation="relu6", algorithm=algorithm)
    _same(runtime, lambda x, filter, alpha, **k: gpuconv.conv2d(x, filter, prelu_weights=alpha, **k),
          {"x": x, "filter": w, "alpha": f32(rng, 8)}, {"x", "alpha"},
          padding="SAME", activation="prelu", algorithm=algorithm)


def test_conv2d_full_prelu_weights_groups_and_rank3(runtime, rng):
    x, w = f32(rng, 6, 6, 4), f32(rng, 3, 3, 4, 6)
    _same(runtime, lambda x, filter, alpha, **k: gpuconv.conv2d(x, filter, prelu_weights=alpha, **k),
          {"x": x, "filter": w, "alpha": f32(rng, 4, 4, 6)}, {"x", "filter", "alpha"},
          activation="prelu")
    _same(runtime, gpuconv.conv2d, {"x": f32(rng, 1, 6, 6, 4), "filter": f32(rng, 3, 3, 2, 6)},
          {"x", "filter"}, groups=2, padding="SAME")


@pytest.mark.parametrize("algorithm", ["direct", "packed"])
@pytest.mark.parametrize("multiplier", [1, 2, 3])
def test_depthwise(runtime, rng, algorithm, multiplier):
    x = f32(rng, 1, 9, 9, 5)
    _same(runtime, gpuconv.depthwise_conv2d, {"x": x, "filter": f32(rng, 3, 3, 5, multiplier)},
          {"x", "filter"}, padding="SAME", algorithm=algorithm)


def test_depthwise_nchw_fused(runtime, rng):
    _same(runtime, lambda x, filter, bias, **k: gpuconv.depthwise_conv2d(x, filter, bias=bias, **k),
          {"x": f32(rng, 2, 3, 7, 7), "filter": f32(rng, 3, 3, 3, 2), "bias": f32(rng, 6)},
          {"x", "filter", "bias"}, data_format="NCHW", padding="SAME", activation="relu")


@pytest.mark.parametrize("algorithm", ["auto", "direct"])
def test_separable(runtime, rng, algorithm):
    _same(runtime, gpuconv.separable_conv2d,
          {"x": f32(rng, 1, 8, 8, 3), "dw": f32(rng, 3, 3, 3, 2), "pw": f32(rng, 1, 1, 6, 5)},
          {"x", "dw", "pw"}, padding="SAME", algorithm=algorithm)


@pytest.mark.parametrize("data_format", ["NWC", "NCW"])
@pytest.mark.parametrize("algorithm", ["direct", "packed"])
def test_conv1d(runtime, rng, data_format, algorithm):
    x = f32(rng, 2, 12, 3) if data_format == "NWC" else f32(rng, 2, 3, 12)
    _same(runtime, gpuconv.conv1d, {"x": x, "filter": f32(rng, 3, 3, 4)}, {"x", "filter"},
          padding="SAME", data_format=data_format, algorithm=algorithm)


def test_gradient_ops(runtime, rng):
    x, w, dy = f32(rng, 1, 6, 6, 3), f32(rng, 3, 3, 3, 4), f32(rng, 1, 6, 6, 4)
    _same(runtime, lambda filter, dy, **k: gpuconv.conv2d_backprop_input(x.shape, filter, dy, **k),
          {"filter": w, "dy": dy}, {"filter", "dy"}, padding="SAME")
    _same(runtime, lambda x, dy, **k: gpuconv.conv2d_backprop_filter(x, w.shape, dy, **k),
          {"x": x, "dy": dy}, {"x", "dy"}, padding="SAME")
    _same(runtime, lambda x, filter, bias, **k: gpuconv.conv2d_transpose(x, filter, (1, 12, 12, 3), bias=bias, **k),
          {"x": f32(rng, 1, 6, 6, 4), "filter": w, "bias": f32(rng, 3)}, {"x", "filter", "bias"},
          strides=2, padding="SAME", activation="relu")
    dw = f32(rng, 3, 3, 3, 2)
    _same(runtime, lambda filter, dy, **k: gpuconv.depthwise_conv2d_backprop_input(x.shape, filter, dy, **k),
          {"filter": dw, "dy": f32(rng, 1, 6, 6, 6)}, {"filter", "dy"}, padding="SAME")
    _same(runtime, lambda x, dy, **k: gpuconv.depthwise_conv2d_backprop_filter(x, dw.shape, dy, **k),
          {"x": x, "dy": f32(rng, 1, 6, 6, 6)}, {"x", "dy"}, padding="SAME")


@pytest.mark.parametrize("data_format", ["NDHWC", "NCDHW"])
def test_conv3d_and_its_gradients(runtime, rng, data_format):
    x = f32(rng, 1, 4, 5, 5, 2) if data_format == "NDHWC" else f32(rng, 1, 2, 4, 5, 5)
    w = f32(rng, 2, 3, 3, 2, 3)
    dy = _same(runtime, gpuconv.conv3d, {"x": x, "filter": w}, {"x", "filter"}, padding="SAME",
               data_format=data_format)
    _same(runtime, lambda filter, dy, **k: gpuconv.conv3d_backprop_input(x.shape, filter, dy, **k),
          {"filter": w, "dy": dy}, {"filter", "dy"}, padding="SAME", data_format=data_format)
    _same(runtime, lambda x, dy, **k: gpuconv.conv3d_backprop_filter(x, w.shape, dy, **k),
          {"x": x, "dy": dy}, {"x", "dy"}, padding="SAME", data_format=data_format)
    _same(runtime, lambda y, filter, **k: gpuconv.conv3d_transpose(y, filter, x.shape, **k),
          {"y": dy, "filter": w}, {"y"}, padding="SAME", data_format=data_format)


# -- chains on the GPU ------------------------------------------------------------------------

def _block_oracle(x, w1, dw, w2, data_format="NHWC"):
    y = oracle.conv2d(x, w1, padding="SAME", data_format=data_format, activation="relu6")
    y = oracle.depthwise_conv2d(y, dw, padding="SAME", data_format=data_format)
    return oracle.conv2d(y, w2, data_format=data_format)


@pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
@pytest.mark.parametrize("algorithms", [("packed", "direct", "packed"), ("direct", "packed", "direct"),
                                        ("packed", "packed", "packed"), ("direct", "direct", "direct")])
def test_chain_agrees_with_oracle(runtime, rng, data_format, algorithms):
    x = f32(rng, 2, 10, 9, 3) if data_format == "NHWC" else f32(rng, 2, 3, 10, 9)
    w1, dw, w2 = f32(rng, 3, 3, 3, 8), f32(rng, 3, 3, 8, 2), f32(rng, 1, 1, 16, 5)
    a1, a2, a3 = algorithms
    with gpuconv.to_gpu(x, runtime) as t:
        y1 = gpuconv.conv2d(t, w1, padding="SAME", data_format=data_format, activation="relu6", algorithm=a1)
        y2 = gpuconv.depthwise_conv2d(y1, dw, padding="SAME", data_format=data_format, algorithm=a2)
        y3 = gpuconv.conv2d(y2, w2, data_format=data_format, algorithm=a3)
        assert_close(y3.numpy(), _block_oracle(x, w1, dw, w2, data_format))
        for y in (y1, y2, y3):
            y.release()


@pytest.mark.webgl2_only("the packed programs' folded render targets")
def test_chain_with_folded_split_outputs(runtime, rng):
    """Small packed outputs are folded (bands side by side): the next program still reads them."""
    x, w1, w2 = f32(rng, 1, 40, 160, 8), f32(rng, 3, 3, 8, 4), f32(rng, 3, 3, 4, 3)
    with gpuconv.to_gpu(x, runtime) as t, \
            gpuconv.conv2d(t, w1, padding="SAME", algorithm="packed") as y1:
        assert isinstance(y1.layout, SplitImageLayout) and y1.layout.fold > 1
        with gpuconv.conv2d(y1, w2, padding="SAME", algorithm="direct") as y2, \
                gpuconv.depthwise_conv2d(y1, f32(rng, 3, 3, 4, 3), padding="SAME", algorithm="packed") as y3:
            assert_close(y2.numpy(), oracle.conv2d(oracle.conv2d(x, w1, padding="SAME"), w2, padding="SAME"))
            assert y3.shape == (1, 40, 160, 12)


def test_chain_on_wrapped_layouts(small_runtime, rng):
    x, w1, dw = f32(rng, 1, 12, 12, 6), f32(rng, 3, 3, 6, 8), f32(rng, 3, 3, 8, 1)
    with gpuconv.to_gpu(x, small_runtime) as t:
        assert t.layout.wrapped
        with gpuconv.conv2d(t, w1, padding="SAME") as y1, gpuconv.depthwise_conv2d(y1, dw, padding="SAME") as y2:
            expected = oracle.depthwise_conv2d(oracle.conv2d(x, w1, padding="SAME"), dw, padding="SAME")
            assert_close(y2.numpy(), expected)
            np.testing.assert_array_equal(
                y2.numpy(), gpuconv.depthwise_conv2d(gpuconv.conv2d(x, w1, padding="SAME", runtime=small_runtime),
                                                     dw, padding="SAME", runtime=small_runtime))


def test_rank3_and_reshaped_views_chain(runtime, rng):
    x, w, f = f32(rng, 6, 6, 3), f32(rng, 3, 3, 3, 4), f32(rng, 3, 24, 2)
    with gpuconv.to_gpu(x.reshape(-1), runtime) as flat:
        with gpuconv.conv2d(flat.reshape(6, 6, 3), w, padding="SAME") as y:
            assert y.shape == (6, 6, 4)
            with gpuconv.conv1d(y.reshape(6, 24), f, padding="SAME") as z:  # [width 6, channels 24]
                expected = oracle.conv1d(oracle.conv2d(x, w, padding="SAME").reshape(6, 24), f, padding="SAME")
                assert z.shape == expected.shape == (6, 2)
                assert_close(z.numpy(), expected)


@pytest.mark.webgl2_only("chains the packed programs (tests/test_webgpu.py chains on WebGPU)")
def test_no_host_transfer_in_a_chain(runtime, rng, monkeypatch):
    x, w1, dw, w2 = f32(rng, 1, 8, 8, 3), f32(rng, 3, 3, 3, 8), f32(rng, 3, 3, 8, 2), f32(rng, 1, 1, 16, 4)
    tensors = [gpuconv.to_gpu(a, runtime) for a in (x, w1, dw, w2, f32(rng, 3, 3, 4, 1), f32(rng, 1, 1, 4, 2))]
    calls = {"upload": 0, "read": 0}
    for name in calls:
        original = getattr(runtime, name)

        def counting(*args, _original=original, _name=name, **kwargs):
            calls[_name] += 1
            return _original(*args, **kwargs)
        monkeypatch.setattr(runtime, name, counting)
    t, f1, f2, f3, f4, f5 = tensors
    y1 = gpuconv.conv2d(t, f1, padding="SAME", algorithm="packed")
    y2 = gpuconv.depthwise_conv2d(y1, f2, padding="SAME", algorithm="direct")
    y3 = gpuconv.conv2d(y2, f3, algorithm="packed")
    y4 = gpuconv.separable_conv2d(y3, f4, f5, padding="SAME")
    assert calls == {"upload": 0, "read": 0}
    result = y4.numpy()
    assert calls == {"upload": 0, "read": len(y4.textures)}  # the read-back only
    assert result.shape == (1, 8, 8, 2)
    for tensor in tensors + [y1, y2, y3, y4]:
        tensor.release()


# -- conversions ------------------------------------------------------------------------------

def _split_source(runtime, x, data_format="NHWC", fold=None):
    """Textures of a SplitImageLayout holding x exactly (a packed 1x1 identity convolution)."""
    channels = x.shape[3] if data_format == "NHWC" else x.shape[1]
    identity = np.eye(channels, dtype=np.float32).reshape(1, 1, channels, channels)
    g = conv2d_geometry(x.shape, identity.shape, 1, "VALID", data_format)
    spec = packed_program(g, fold=fold)
    plan = gpuconv.plan.Plan(((spec, {"x": x, "W": identity}),), g.out_shape)
    made = []
    outputs = plan.chain(runtime.upload, runtime.draw, made)
    runtime.free([t for t in made if all(t is not o for o in outputs)])
    return outputs, spec.output_layouts[0]


def _convert(runtime, source_textures, source, target, source_format="NHWC"):
    spec = conversion(source, target, source_format)
    (out,) = runtime.draw(spec, dict(zip(spec.variable_names, source_textures)))
    texels = runtime.read(out, target)
    runtime.free([out])
    return texels


def _wrapped(shape):
    """A squarish wrapped layout of ``shape`` (as texture_layout makes when no split fits)."""
    size = int(np.prod(shape))
    cols = math.isqrt(size - 1) + 1
    return TextureLayout(tuple(shape), -(-size // cols), cols, None)


def _targets(values, data_format):
    """Every target layout the values fit (as an image, a filter, a vector, a texture)."""
    n = values.size
    b, h, w, c = values.shape if data_format == "NHWC" else (values.shape[0],) + values.shape[2:] + values.shape[1:2]
    targets = [texture_layout((n,)), texture_layout(values.shape), _wrapped(values.shape),
               PackedImageLayout(b, h, w, c, data_format), PackedImageLayout(b, h, w, c, data_format, 3),
               PackedVectorLayout(n)]
    if data_format == "NHWC":
        targets += [PackedFilterLayout(values.shape), PackedFilterLayout(values.shape, depthwise=True)]
    return targets


@pytest.mark.webgl2_only("texture conversions between the WebGL2 programs' layouts")
@pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
def test_conversions_from_textures(runtime, rng, data_format):
    values = f32(rng, 2, 5, 3, 6) if data_format == "NHWC" else f32(rng, 2, 6, 5, 3)
    for source in (texture_layout(values.shape), _wrapped(values.shape)):
        (texture,) = [runtime.upload(values, source)]
        for target in _targets(values, data_format):
            texels = _convert(runtime, [texture], source, target)
            np.testing.assert_array_equal(texels, target.pack(values).reshape(texels.shape), err_msg=str(target))
        runtime.free([texture])


@pytest.mark.webgl2_only("texture conversions between the WebGL2 programs' layouts")
@pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
@pytest.mark.parametrize("fold", [1, 3])
def test_conversions_from_split_outputs(runtime, rng, data_format, fold):
    values = f32(rng, 2, 7, 9, 6) if data_format == "NHWC" else f32(rng, 2, 6, 7, 9)
    textures, source = _split_source(runtime, values, data_format, fold)
    assert source.fold == fold
    np.testing.assert_array_equal(
        source.assemble([runtime.read(t, source) for t in textures], data_format), values)
    for target in _targets(values, data_format):
        texels = _convert(runtime, textures, source, target, data_format)
        np.testing.assert_array_equal(texels, target.pack(values).reshape(texels.shape), err_msg=str(target))
    runtime.free(textures)


@pytest.mark.webgl2_only("texture conversions between the WebGL2 programs' layouts")
@pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
@pytest.mark.parametrize("repeat", [1, 2])
def test_conversions_from_packed_images(runtime, rng, data_format, repeat):
    values = f32(rng, 1, 4, 5, 3) if data_format == "NHWC" else f32(rng, 1, 3, 4, 5)
    b, h, w, c = (1, 4, 5, 3)
    source = PackedImageLayout(b, h, w, c, data_format, repeat)
    texture = runtime.upload(values, source)
    for target in _targets(values, data_format):
        texels = _convert(runtime, [texture], source, target)
        np.testing.assert_array_equal(texels, target.pack(values).reshape(texels.shape), err_msg=str(target))
    runtime.free([texture])


def test_conversion_spec_refuses_what_it_cannot_do():
    with pytest.raises(ValueError, match="values"):
        ConversionSpec(texture_layout((2, 3)), texture_layout((7,)))
    with pytest.raises(ValueError, match="cannot convert into a SplitImageLayout"):
        ConversionSpec(texture_layout((1, 2, 4, 4)), SplitImageLayout(1, 2, 4, 4))
    with pytest.raises(ValueError, match="cannot convert from a PackedVectorLayout"):
        ConversionSpec(PackedVectorLayout(4), texture_layout((4,)))


def test_same_storage_skips_conversions():
    assert same_storage(texture_layout((6, 6, 3)), texture_layout((1, 6, 6, 3)))
    assert same_storage(texture_layout((2, 3, 4)), texture_layout((2, 3, 4), names=("b", "d", "r")))
    assert not same_storage(texture_layout((6, 6, 3)), texture_layout((6, 18)))
    assert same_storage(PackedVectorLayout(5), PackedVectorLayout(5))
    assert not same_storage(PackedImageLayout(1, 2, 2, 3), PackedImageLayout(1, 2, 2, 3, repeat=2))


def test_conversion_source_is_glsl_es(runtime):
    spec = conversion(SplitImageLayout(1, 4, 9, 6, 8, 2), PackedImageLayout(1, 4, 9, 6, "NHWC", 2))
    source = gpuconv.codegen.fragment_source(spec)
    assert source.startswith("#version 300 es") and "texelFetch(x7" in source and "readSource" in source


# -- runtimes, errors, lifetime ---------------------------------------------------------------

def test_tensor_of_another_runtime_is_refused(runtime, rng):
    other = gpuconv.Runtime()
    try:
        x = gpuconv.to_gpu(f32(rng, 1, 5, 5, 2), other)
        w = gpuconv.to_gpu(f32(rng, 3, 3, 2, 2), runtime)
        with pytest.raises(ValueError, match="x is a Tensor of another runtime"):
            gpuconv.conv2d(x, f32(rng, 3, 3, 2, 2), runtime=runtime)
        with pytest.raises(ValueError, match="filter is a Tensor of another runtime"):
            gpuconv.conv2d(x, w)
        with pytest.raises(ValueError, match="pointwise_filter is a Tensor of another runtime"):
            gpuconv.separable_conv2d(x, f32(rng, 3, 3, 2, 1), gpuconv.to_gpu(f32(rng, 1, 1, 2, 2), runtime))
        with gpuconv.conv2d(x, f32(rng, 3, 3, 2, 2)) as y:  # runtime=None: x's runtime
            assert y.runtime is other
        x.release()
        with pytest.raises(ValueError, match="x is a Tensor that has been released"):
            gpuconv.conv2d(x, f32(rng, 3, 3, 2, 2))
        w.release()
    finally:
        other.release()


def test_tensor_argument_errors(runtime, rng):
    x = gpuconv.to_gpu(f32(rng, 1, 5, 5, 2), runtime)
    with pytest.raises(ValueError, match="filter must be rank 4.*got a Tensor of shape"):
        gpuconv.conv2d(x, x.reshape(5, 5, 2))
    with pytest.raises(ValueError, match="(bias must have one value per output channel|a Tensor bias must be)"):
        gpuconv.conv2d(x, f32(rng, 3, 3, 2, 4), bias=gpuconv.to_gpu(np.ones(3), runtime))
    with pytest.raises(ValueError, match="a Tensor prelu_weights must be"):
        gpuconv.conv2d(x, f32(rng, 3, 3, 2, 4), activation="prelu",
                       prelu_weights=gpuconv.to_gpu(np.ones((1, 4)), runtime))
    x.release()


@pytest.mark.webgl2_only("runs the packed programs (tests/test_webgpu.py releases WebGPU buffers)")
def test_release_frees_textures(runtime, rng):
    start = gpuconv.memory(runtime)
    x = gpuconv.to_gpu(f32(rng, 1, 8, 8, 4), runtime)
    assert gpuconv.memory(runtime)["textures"] == start["textures"] + 1
    assert gpuconv.memory(runtime)["bytes"] == start["bytes"] + 8 * 8 * 4 * 4
    y = gpuconv.conv2d(x, f32(rng, 3, 3, 4, 8), padding="SAME", algorithm="packed")
    # x, the packed copy of x it keeps (an uploaded Tensor keeps its conversions), y's 8 textures
    assert gpuconv.memory(runtime)["textures"] == start["textures"] + 2 + y.layout.count
    y.release()
    y.release()  # twice is fine
    x.release()
    assert gpuconv.memory(runtime) == start


def test_collected_tensors_are_freed_by_the_next_call(runtime, rng):
    gc.collect()
    start = gpuconv.memory(runtime)["textures"]
    x = gpuconv.to_gpu(f32(rng, 1, 6, 6, 2), runtime)
    gpuconv.conv2d(x, f32(rng, 3, 3, 2, 3))  # the result is dropped at once
    del x
    gc.collect()
    assert gpuconv.memory(runtime)["textures"] == start


def test_synchronize(runtime, rng):
    with gpuconv.to_gpu(f32(rng, 1, 6, 6, 2), runtime) as x, gpuconv.conv2d(x, f32(rng, 3, 3, 2, 3)) as y:
        gpuconv.synchronize(runtime)
        gpuconv.synchronize()
        assert y.shape == (1, 4, 4, 3)


@pytest.mark.webgl2_only("chains the packed programs (tests/test_webgpu.py counts WebGPU buffers)")
def test_a_long_chain_keeps_memory_flat(runtime, rng):
    """2,100 calls: a packed, a direct and a packed op per step, each input released after use."""
    w1, dw, w2 = (gpuconv.to_gpu(a, runtime) for a in (f32(rng, 3, 3, 4, 8), f32(rng, 3, 3, 8, 1),
                                                        f32(rng, 1, 1, 8, 4)))
    x = gpuconv.to_gpu(f32(rng, 1, 6, 6, 4) * 0.1, runtime)
    start = None
    for step in range(700):
        y1 = gpuconv.conv2d(x, w1, padding="SAME", activation="relu6", algorithm="packed")
        x.release()
        y2 = gpuconv.depthwise_conv2d(y1, dw, padding="SAME", algorithm="direct")
        y1.release()
        x = gpuconv.conv2d(y2, w2, activation="relu6", algorithm="packed")
        y2.release()
        if step == 10:
            start = gpuconv.memory(runtime)
    assert gpuconv.memory(runtime) == start
    assert np.isfinite(x.numpy()).all()
    for t in (x, w1, dw, w2):
        t.release()


def test_worker_runtime_chain(rng):
    worker = gpuconv.WorkerRuntime()
    try:
        x, w, dw = f32(rng, 1, 8, 8, 3), f32(rng, 3, 3, 3, 4), f32(rng, 3, 3, 4, 2)
        with gpuconv.to_gpu(x, worker) as t, gpuconv.conv2d(t, w, padding="SAME") as y, \
                gpuconv.depthwise_conv2d(y, dw, padding="SAME", algorithm="direct") as z:
            assert isinstance(z.textures[0], int)  # the worker's own handles
            expected = gpuconv.depthwise_conv2d(gpuconv.conv2d(x, w, padding="SAME", runtime=worker), dw,
                                                padding="SAME", algorithm="direct", runtime=worker)
            np.testing.assert_array_equal(z.numpy(), expected)
        assert gpuconv.memory(worker)["textures"] == 0
    finally:
        worker.release()


def _recording_draws(runtime, monkeypatch):
    names = []
    original = runtime.draw

    def draw(spec, inputs):
        names.append(spec.name)
        return original(spec, inputs)
    monkeypatch.setattr(runtime, "draw", draw)
    return names


@pytest.mark.webgl2_only("reads the packed programs' split outputs")
@pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
def test_a_1x1_packed_conv_reads_split_outputs_in_place(runtime, rng, monkeypatch, data_format):
    x = f32(rng, 2, 9, 11, 5) if data_format == "NHWC" else f32(rng, 2, 5, 9, 11)
    w, pw = f32(rng, 3, 3, 5, 6), f32(rng, 1, 1, 6, 7)
    with gpuconv.to_gpu(x, runtime) as t, \
            gpuconv.conv2d(t, w, padding="SAME", data_format=data_format, algorithm="packed") as y:
        names = _recording_draws(runtime, monkeypatch)
        with gpuconv.conv2d(y, pw, data_format=data_format, algorithm="packed", activation="relu") as z:
            assert names == ["PackedConv2DProgram"]  # no conversion: x0 .. x7 are y's textures
            expected = gpuconv.conv2d(y.numpy(), pw, data_format=data_format, algorithm="packed",
                                      activation="relu", runtime=runtime)
            np.testing.assert_array_equal(z.numpy(), expected)


# (x shape, depthwise filter, strides, padding): pads 0-3 on the left (the taps' textures are
# baked in), widths that are no multiple of 8, stride 2, batch 2 and small images (folded outputs)
SPLIT_DEPTHWISE = [
    ((1, 9, 11, 5), (3, 3), 1, "SAME"),
    ((2, 10, 13, 8), (3, 3), 2, "SAME"),
    ((1, 12, 9, 3), (5, 5), 1, "SAME"),
    ((1, 11, 17, 4), (5, 5), 2, "VALID"),
    ((1, 8, 20, 6), (2, 7), 1, [[0, 1], [3, 3]]),
    ((2, 7, 23, 7), (3, 2), 2, [[1, 1], [1, 0]]),
    ((1, 30, 30, 16), (3, 3), 1, "SAME"),
]


@pytest.mark.webgl2_only("reads the packed programs' split outputs")
@pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
@pytest.mark.parametrize("shape, window, strides, padding", SPLIT_DEPTHWISE)
def test_a_packed_depthwise_reads_split_outputs_in_place(runtime, rng, monkeypatch, data_format, shape, window,
                                                         strides, padding):
    """A MobileNet block's depthwise half after a packed program: no conversion, the same values."""
    channels = shape[3]
    x = f32(rng, *shape) if data_format == "NHWC" else f32(rng, *shape).transpose(0, 3, 1, 2).copy()
    w, dw, bias = f32(rng, 1, 1, channels, channels), f32(rng, *window, channels, 1), f32(rng, channels)
    with gpuconv.to_gpu(x, runtime) as t, gpuconv.conv2d(t, w, data_format=data_format, algorithm="packed") as y:
        assert isinstance(y.layout, SplitImageLayout)
        names = _recording_draws(runtime, monkeypatch)
        with gpuconv.depthwise_conv2d(y, dw, strides=strides, padding=padding, data_format=data_format,
                                      bias=bias, activation="relu6", algorithm="packed") as z:
            assert names == ["PackedDepthwiseConv2DProgram"]  # x0 .. x7 are y's textures
            expected = oracle.depthwise_conv2d(oracle.conv2d(x, w, data_format=data_format), dw, strides=strides,
                                               padding=padding, data_format=data_format, bias=bias,
                                               activation="relu6")
            assert_close(z.numpy(), expected)
            np.testing.assert_array_equal(z.numpy(), gpuconv.depthwise_conv2d(
                y.numpy(), dw, strides=strides, padding=padding, data_format=data_format, bias=bias,
                activation="relu6", algorithm="packed", runtime=runtime))


@pytest.mark.webgl2_only("converts the packed programs' split outputs")
@pytest.mark.parametrize("multiplier, dilations", [(2, 1), (1, 2)])
def test_a_depthwise_that_cannot_read_split_outputs_converts_them(runtime, rng, monkeypatch, multiplier, dilations):
    x, w, dw = f32(rng, 1, 9, 10, 4), f32(rng, 1, 1, 4, 4), f32(rng, 3, 3, 4, multiplier)
    with gpuconv.to_gpu(x, runtime) as t, gpuconv.conv2d(t, w, algorithm="packed") as y:
        names = _recording_draws(runtime, monkeypatch)
        with gpuconv.depthwise_conv2d(y, dw, padding="SAME", dilations=dilations, algorithm="packed") as z:
            assert names == ["ConvertProgram", "PackedDepthwiseConv2DProgram"]
            assert_close(z.numpy(), oracle.depthwise_conv2d(oracle.conv2d(x, w), dw, padding="SAME",
                                                            dilations=dilations))


def test_browser_depthwise_reads_split_outputs_in_place(browser, rng):
    from gpuconv.ops import plan_conv2d

    x, w, dw = f32(rng, 2, 10, 13, 6), f32(rng, 1, 1, 6, 6), f32(rng, 3, 3, 6, 1)
    with gpuconv.to_gpu(x, browser) as t, gpuconv.conv2d(t, w, algorithm="packed") as y:
        (spec, _), = plan_conv2d(y, dw, strides=2, padding="SAME", depthwise=True, algorithm="packed",
                                 limits=browser.limits).steps
        assert spec.x_split
        with gpuconv.depthwise_conv2d(y, dw, strides=2, padding="SAME", activation="relu") as z:
            assert_close(z.numpy(), oracle.depthwise_conv2d(oracle.conv2d(x, w), dw, strides=2, padding="SAME",
                                                            activation="relu"))


@pytest.mark.webgl2_only("texture conversions between the WebGL2 programs' layouts")
def test_uploaded_tensors_keep_their_conversions(runtime, rng, monkeypatch):
    x, w = f32(rng, 1, 8, 8, 4), gpuconv.to_gpu(f32(rng, 3, 3, 4, 8), runtime)
    names = _recording_draws(runtime, monkeypatch)
    first = gpuconv.conv2d(x, w, padding="SAME", algorithm="packed")  # W converted into the packed order
    assert names == ["ConvertProgram", "PackedConv2DProgram"]
    second = gpuconv.conv2d(x, w, padding="SAME", algorithm="packed")  # ... once
    assert names[2:] == ["PackedConv2DProgram"]
    np.testing.assert_array_equal(first.numpy(), second.numpy())
    before = gpuconv.memory(runtime)["textures"]
    w.release()  # with its packed copy
    assert gpuconv.memory(runtime)["textures"] == before - 2
    first.release()
    second.release()


def test_browser_runtime_chain(browser, rng):
    """One chain in Chromium's WebGL2: packed conv2d, direct depthwise (a conversion), packed 1x1 (in place)."""
    x, w1, dw, w2 = f32(rng, 1, 10, 10, 3), f32(rng, 3, 3, 3, 8), f32(rng, 3, 3, 8, 1), f32(rng, 1, 1, 8, 4)
    start = gpuconv.memory(browser)
    with gpuconv.to_gpu(x, browser) as t, gpuconv.to_gpu(w1, browser) as f1:
        y1 = gpuconv.conv2d(t, f1, padding="SAME", activation="relu6", algorithm="packed")
        y2 = gpuconv.depthwise_conv2d(y1, dw, padding="SAME", algorithm="direct")
        y3 = gpuconv.conv2d(y2, w2, algorithm="packed")
        y4 = gpuconv.conv2d(y3, f32(rng, 1, 1, 4, 2), algorithm="packed")  # reads y3's split textures in place
        assert all(isinstance(y.textures[0], gpuconv.runtimes.browser.BrowserTexture) for y in (y1, y2, y3, y4))
        arrays = gpuconv.conv2d(gpuconv.depthwise_conv2d(
            gpuconv.conv2d(x, w1, padding="SAME", activation="relu6", algorithm="packed", runtime=browser),
            dw, padding="SAME", algorithm="direct", runtime=browser), w2, algorithm="packed", runtime=browser)
        np.testing.assert_array_equal(y3.numpy(), arrays)
        expected = oracle.conv2d(oracle.depthwise_conv2d(oracle.conv2d(x, w1, padding="SAME", activation="relu6"),
                                                         dw, padding="SAME"), w2)
        assert_close(y3.numpy(), expected)
        assert y4.shape == (1, 10, 10, 2)
        held = gpuconv.memory(browser)
        # x and w1 with their packed copies (uploaded Tensors keep them), y1's 8 split textures,
        # y2's one, y3's and y4's 8
        assert held["textures"] == start["textures"] + 4 + 8 + 1 + 8 + 8
        assert held["page_textures"] == start["page_textures"] + 4 + 8 + 1 + 8 + 8
        for y in (y1, y2, y3, y4):
            y.release()
    assert gpuconv.memory(browser) == start


@pytest.mark.webgl2_only("the lifetime harness counts a native GL runtime's objects")
def test_tensor_lifetime_harness(runtime):
    from gpuconv import lifetime

    report = lifetime.tensor_lifetime(240)  # 20 passes over 3 chains of 4 ops
    assert report.flat, report.lines()
    assert report.memory_end["textures"] == 21  # 3 chains' current Tensors, 12 weights, 6 packed weight copies
    assert report.live_after_release == {}
    assert lifetime.main(["--tensors", "--lifetime", "48"]) == 0


def test_numpy_code_and_the_oracle_read_tensors_back(runtime, rng):
    x, w, b = f32(rng, 1, 6, 6, 2), f32(rng, 3, 3, 2, 3), f32(rng, 1, 6, 6, 3)
    with gpuconv.to_gpu(x, runtime) as t, gpuconv.to_gpu(b, runtime) as tb:
        np.testing.assert_array_equal(x + t, 2 * x)
        np.testing.assert_array_equal(oracle.conv2d(t, w, padding="SAME", bias=tb),
                                      oracle.conv2d(x, w, padding="SAME", bias=b))
        # a full-shape bias Tensor (the direct program's broadcast bias) is read where it is
        with gpuconv.conv2d(t, w, padding="SAME", bias=tb) as y:
            np.testing.assert_array_equal(y.numpy(), gpuconv.conv2d(x, w, padding="SAME", bias=b, runtime=runtime))


def test_four_draw_buffers(rng):
    """A device with 4 draw buffers (a phone): split outputs of 4 textures, converted and read in place."""
    phone = gpuconv.Runtime(max_draw_buffers=4)
    try:
        x, w, dw, pw = f32(rng, 1, 9, 13, 6), f32(rng, 3, 3, 6, 8), f32(rng, 3, 3, 8, 2), f32(rng, 1, 1, 16, 3)
        with gpuconv.to_gpu(x, phone) as t, gpuconv.conv2d(t, w, padding="SAME", algorithm="packed") as y1, \
                gpuconv.depthwise_conv2d(y1, dw, padding="SAME", algorithm="packed") as y2, \
                gpuconv.conv2d(y2, pw, algorithm="packed") as y3:
            assert len(y1.textures) == len(y3.textures) == 4
            arrays = gpuconv.conv2d(gpuconv.depthwise_conv2d(gpuconv.conv2d(
                x, w, padding="SAME", algorithm="packed", runtime=phone), dw, padding="SAME", algorithm="packed",
                runtime=phone), pw, algorithm="packed", runtime=phone)
            np.testing.assert_array_equal(y3.numpy(), arrays)
    finally:
        phone.release()


def test_browser_failed_round_trip_forgets_kept_conversions(browser, rng, monkeypatch):
    w = gpuconv.to_gpu(f32(rng, 3, 3, 2, 4), browser)
    x = f32(rng, 1, 6, 6, 2)

    def failing(*args, **kwargs):
        raise RuntimeError("the page failed")
    with monkeypatch.context() as patch:
        patch.setattr(browser, "_call", failing)
        with pytest.raises(RuntimeError, match="the page failed"):
            gpuconv.conv2d(x, w, algorithm="packed")
    assert w._storage.conversions == {}  # the packed copy was never made: made again next time
    with gpuconv.conv2d(x, w, algorithm="packed") as y:
        np.testing.assert_array_equal(y.numpy(), gpuconv.conv2d(x, w.numpy(), algorithm="packed", runtime=browser))
    w.release()


@pytest.mark.webgl2_only("random chains of the WebGL2 algorithms")
@pytest.mark.parametrize("seed", range(12))
def test_random_chains_match_the_array_path(runtime, seed):
    """Random chains (ops, algorithms, data formats, odd channel counts and widths, batches):
    the Tensor path gives exactly what arrays between ops give."""
    _random_chain(runtime, seed, ("auto", "direct", "packed"))


@pytest.mark.parametrize("seed", range(6))
def test_random_chains_on_wrapped_layouts_and_four_draw_buffers(small_runtime, seed):
    _random_chain(small_runtime, seed, ("auto", "direct"))  # packed textures do not fit 48 texels
    phone = gpuconv.Runtime(max_draw_buffers=4)
    try:
        _random_chain(phone, seed, ("auto", "direct", "packed"))
    finally:
        phone.release()


def _random_chain(runtime, seed, algorithms):
    rng = np.random.default_rng([seed, 14])
    data_format = ["NHWC", "NCHW"][seed % 2]
    batch, height, width, channels = int(rng.integers(1, 3)), int(rng.integers(3, 12)), int(rng.integers(3, 20)), \
        int(rng.integers(1, 8))
    shape = (batch, height, width, channels) if data_format == "NHWC" else (batch, channels, height, width)
    x = f32(rng, *shape)
    t = gpuconv.to_gpu(x, runtime)
    array, tensor = x, t
    for _ in range(3):
        op = rng.choice(["conv2d", "conv1x1", "depthwise", "separable"])
        algorithm = str(rng.choice(algorithms))
        kwargs = dict(data_format=data_format, algorithm=algorithm if op != "separable" else "auto")
        out = int(rng.integers(1, 9))
        if op == "conv2d":
            args = (f32(rng, 3, 3, channels, out),)
            kwargs.update(padding="SAME", strides=int(rng.integers(1, 3)), activation="relu")
            fn, channels = gpuconv.conv2d, out
        elif op == "conv1x1":
            args = (f32(rng, 1, 1, channels, out),)
            kwargs.update(bias=f32(rng, out))
            fn, channels = gpuconv.conv2d, out
        elif op == "depthwise":
            m = int(rng.integers(1, 3))
            args = (f32(rng, 3, 3, channels, m),)
            kwargs.update(padding="SAME", activation="relu6")
            fn, channels = gpuconv.depthwise_conv2d, channels * m
        else:
            args = (f32(rng, 3, 3, channels, 1), f32(rng, 1, 1, channels, out))
            kwargs.update(padding="SAME")
            fn, channels = gpuconv.separable_conv2d, out
        try:
            array = fn(array, *args, **kwargs, runtime=runtime)
        except gpuconv.layout.TextureTooLargeError:  # the small runtime's textures are small
            break
        following = fn(tensor, *args, **kwargs)
        if tensor is not t:
            tensor.release()
        tensor = following
        np.testing.assert_array_equal(tensor.numpy(), array, err_msg=f"{op} {kwargs}")
    tensor.release()
    t.release()


def test_every_conversion_is_valid_glsl_es():
    from gpuconv import validate

    sources = []
    for data_format in ("NHWC", "NCHW"):
        values = np.zeros((2, 5, 7, 6) if data_format == "NHWC" else (2, 6, 5, 7), np.float32)
        for source in (texture_layout(values.shape), _wrapped(values.shape), SplitImageLayout(2, 5, 7, 6, 8, 2),
                       SplitImageLayout(2, 5, 7, 6, 4), PackedImageLayout(2, 5, 7, 6, data_format, 2)):
            for target in _targets(values, data_format):
                sources.append(gpuconv.codegen.fragment_source(conversion(source, target, data_format)))
    try:
        validate.validate_sources(sources)
    except validate.GLSLValidatorUnavailableError as exc:
        pytest.skip(str(exc))
