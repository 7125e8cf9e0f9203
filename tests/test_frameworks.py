"""The framework adapters: gpuconv.torch (PyTorch's conv2d) and gpuconv.caffe (Caffe's Convolution).

(conv_transpose2d, conv3d, conv1d and caffe.Deconvolution: tests/test_frameworks_family.py.)

GPU results (float32, llvmpipe here) are checked against the float64 oracle; the
adapters against gpuconv.conv2d and each other; and, where PyTorch happens to be
installed (it is not a dependency), against torch.nn.functional.conv2d itself.
Shapes are few and small: llvmpipe compiles every distinct program on first use.
"""

from __future__ import annotations

import importlib.util
import os
import re

import numpy as np
import pytest
from helpers import import_crosscheck

import gpuconv
from gpuconv import caffe
from gpuconv import torch as gt
from gpuconv.runtimes import GLUnavailableError

RTOL = 1e-5  # of the output's largest magnitude


@pytest.fixture(scope="module")
def gpu():
    try:
        return gpuconv.get_runtime()
    except GLUnavailableError as exc:  # pragma: no cover - depends on the machine
        pytest.skip(f"no OpenGL context: {exc}")


def _rng(seed):
    return np.random.default_rng(seed)


def _data(seed, input_shape, weight_shape, bias=True):
    rng = _rng(seed)
    x = rng.standard_normal(input_shape).astype(np.float32)
    w = rng.standard_normal(weight_shape).astype(np.float32)
    b = rng.standard_normal(weight_shape[0]).astype(np.float32) if bias else None
    return x, w, b


def _assert_close(actual, expected, rtol=RTOL):
    assert actual.shape == expected.shape
    scale = max(float(np.abs(expected).max()), 1e-30)
    error = float(np.abs(actual.astype(np.float64) - expected).max()) / scale
    assert error <= rtol, f"relative error {error:.3g} > {rtol:.3g}"
    return error


# (id, input shape, weight shape [outC, inC/groups, kH, kW], keyword arguments, expected out shape)
TORCH_CASES = [
    ("int-pad-bias", (2, 3, 7, 7), (4, 3, 3, 3), dict(padding=1), (2, 4, 7, 7)),
    ("groups2-stride2-pair", (1, 4, 8, 7), (6, 2, 3, 2), dict(stride=2, padding=(1, 0), groups=2),
     (1, 6, 4, 3)),
    ("depthwise-dilated-same-even-unbatched", (3, 9, 8), (6, 1, 4, 3),
     dict(padding="same", dilation=2, groups=3), (6, 9, 8)),
    ("valid-stride-pair-nobias", (2, 2, 6, 9), (3, 2, 2, 3), dict(padding="valid", stride=(2, 1)),
     (2, 3, 3, 7)),
    ("dilation-pair-pad-pair", (1, 3, 10, 10), (2, 3, 3, 3), dict(dilation=(1, 2), padding=(2, 1)),
     (1, 2, 12, 8)),
]
_IDS = [case[0] for case in TORCH_CASES]


def _torch_case(index):
    name, xs, ws, kwargs, out_shape = TORCH_CASES[index]
    x, w, b = _data(index, xs, ws, bias="nobias" not in name)
    return x, w, b, kwargs, out_shape


@pytest.mark.parametrize("index", range(len(TORCH_CASES)), ids=_IDS)
def test_torch_conv2d_matches_oracle(gpu, index):
    x, w, b, kwargs, out_shape = _torch_case(index)
    y = gt.conv2d(x, w, b, **kwargs)
    expected = gt.conv2d_oracle(x, w, b, **kwargs)
    assert y.dtype == np.float32 and expected.dtype == np.float64
    assert y.shape == expected.shape == out_shape
    _assert_close(y, expected)


def test_torch_conv2d_equals_gpuconv_conv2d_nhwc(gpu):
    """The adapter is gpuconv.conv2d after the layout change (NCHW -> NHWC, weight -> HWIO)."""
    x, w, b = _data(10, (2, 4, 7, 6), (6, 2, 3, 3))
    y = gt.conv2d(x, w, b, stride=2, padding=1, groups=2)
    y_nhwc = gpuconv.conv2d(x.transpose(0, 2, 3, 1), w.transpose(2, 3, 1, 0), 2, [[1, 1], [1, 1]],
                            groups=2, bias=b)
    np.testing.assert_allclose(y, y_nhwc.transpose(0, 3, 1, 2), rtol=0, atol=1e-6 * np.abs(y).max())

    # 'same' is TF's SAME for stride 1, also with an even (asymmetrically padded) dilated kernel.
    x, w, _ = _data(11, (1, 3, 6, 7), (2, 3, 2, 4), bias=False)
    y = gt.conv2d(x, w, padding="same", dilation=2)
    y_nhwc = gpuconv.conv2d(x.transpose(0, 2, 3, 1), w.transpose(2, 3, 1, 0), 1, "SAME", dilations=2)
    assert y.shape == (1, 2, 6, 7)
    np.testing.assert_allclose(y, y_nhwc.transpose(0, 3, 1, 2), rtol=0, atol=1e-6 * np.abs(y).max())


def test_torch_same_pads_like_pytorch_without_gpu():
    """PyTorch's 'same': total pad dilation*(k-1), total//2 before -- checked on the oracle."""
    x, w, _ = _data(12, (1, 1, 5, 6), (1, 1, 4, 3), bias=False)
    y = gt.conv2d_oracle(x, w, padding="same", dilation=(1, 2))
    # rows: total 3 -> 1 before, 2 after; columns: total 2*(3-1) = 4 -> 2 and 2
    padded = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (1, 2), (2, 2)))
    manual = gt.conv2d_oracle(padded, w, padding="valid", dilation=(1, 2))
    np.testing.assert_allclose(y, manual, rtol=1e-12, atol=1e-12)
    assert y.shape == x.shape


# -- Caffe ------------------------------------------------------------------------

def test_caffe_layer_equals_torch_adapter(gpu):
    x, w, b = _data(20, (2, 4, 8, 7), (6, 2, 3, 2))
    layer = caffe.Convolution(num_output=6, kernel_h=3, kernel_w=2, stride=2, pad_h=1, group=2,
                              weight=w, bias=b)
    y = layer(x)
    assert layer.output_shape(x.shape) == y.shape == (2, 6, 4, 3)
    np.testing.assert_array_equal(y, gt.conv2d(x, w, b, stride=2, padding=(1, 0), groups=2))
    _assert_close(y, layer.forward_oracle(x))

    # repeated fields through from_param, no bias, dilation
    x, w, _ = _data(21, (1, 3, 10, 10), (2, 3, 3, 3), bias=False)
    layer = caffe.Convolution.from_param(
        {"num_output": 2, "kernel_size": [3], "pad": [2, 1], "dilation": [1, 2], "bias_term": False,
         "weight_filler": {"type": "xavier"}, "engine": "CAFFE"}, weight=w)
    y = layer.forward(x)
    assert y.shape == layer.output_shape(x.shape) == (1, 2, 12, 8)
    np.testing.assert_array_equal(y, gt.conv2d(x, w, padding=(2, 1), dilation=(1, 2)))
    _assert_close(y, layer.forward_oracle(x))


def test_caffe_output_size_floors(gpu):
    # H = 7, k = 3, stride 2, pad 0: floor((7 - 3) / 2) + 1 = 3; W = 8: floor(5 / 2) + 1 = 3
    x, w, b = _data(22, (1, 2, 7, 8), (3, 2, 3, 3))
    layer = caffe.Convolution(3, kernel_size=3, stride=2, weight=w, bias=b)
    assert layer.output_shape((1, 2, 7, 8)) == (1, 3, 3, 3)
    y = layer(x)
    assert y.shape == (1, 3, 3, 3)
    _assert_close(y, layer.forward_oracle(x))
    # and Caffe's formula on more sizes (shape only: no GPU work)
    for h, k, s, p, d in [(7, 3, 2, 0, 1), (8, 3, 3, 1, 1), (10, 2, 4, 3, 1), (9, 3, 1, 0, 3),
                          (5, 5, 2, 2, 1), (6, 1, 5, 0, 1)]:
        layer = caffe.Convolution(1, kernel_size=k, stride=s, pad=p, dilation=d)
        expected = (h + 2 * p - (d * (k - 1) + 1)) // s + 1
        assert layer.output_shape((1, 1, h, h)) == (1, 1, expected, expected)


def test_caffe_parameter_forms():
    layer = caffe.Convolution(8, kernel_size=[3, 5], stride=[2, 1], pad=[1, 2], group=2)
    assert (layer.kernel, layer.stride, layer.pad, layer.dilation) == ((3, 5), (2, 1), (1, 2), (1, 1))
    layer = caffe.Convolution.from_param({"num_output": 4, "kernel_h": 2, "kernel_w": 3,
                                          "stride_h": 1, "stride_w": 2, "pad_w": 1})
    assert (layer.kernel, layer.stride, layer.pad) == ((2, 3), (1, 2), (0, 1))
    layer = caffe.Convolution.from_param({"num_output": 4, "kernel_size": 3, "stride": [],
                                          "bias_term": True, "axis": 1})
    assert (layer.kernel, layer.stride, layer.pad, layer.bias_term) == ((3, 3), (1, 1), (0, 0), True)
    assert layer.output_shape((2, 6, 5, 5)) == (2, 4, 3, 3)


# -- real PyTorch, where it is installed -------------------------------------------

@pytest.mark.parametrize("index", range(len(TORCH_CASES)), ids=_IDS)
def test_against_real_pytorch(gpu, index):
    torch = import_crosscheck("torch")
    x, w, b, kwargs, out_shape = _torch_case(index)
    expected = torch.nn.functional.conv2d(
        torch.from_numpy(x.astype(np.float64)), torch.from_numpy(w.astype(np.float64)),
        None if b is None else torch.from_numpy(b.astype(np.float64)), **kwargs).numpy()
    assert expected.shape == out_shape
    _assert_close(gt.conv2d_oracle(x, w, b, **kwargs), expected, rtol=1e-12)
    _assert_close(gt.conv2d(x, w, b, **kwargs), expected)


def test_caffe_matches_real_pytorch_floor():
    torch = import_crosscheck("torch")
    x, w, b = _data(23, (1, 2, 7, 8), (3, 2, 3, 3))
    layer = caffe.Convolution(3, kernel_size=3, stride=2, pad=[0, 1], weight=w, bias=b)
    expected = torch.nn.functional.conv2d(torch.from_numpy(x).double(), torch.from_numpy(w).double(),
                                          torch.from_numpy(b).double(), stride=2, padding=(0, 1))
    _assert_close(layer.forward_oracle(x), expected.numpy(), rtol=1e-12)


def test_module_name_does_not_shadow_pytorch():
    spec = importlib.util.find_spec("torch")
    if spec is not None:
        assert os.path.dirname(spec.origin) != os.path.dirname(gt.__file__)
    assert gt.__name__ == "gpuconv.torch"
    assert set(gt.__all__) == {f"{op}{twin}" for op in ("conv2d", "conv_transpose2d", "conv3d", "conv1d")
                               for twin in ("", "_oracle")}
    assert set(caffe.__all__) == {"Convolution", "Deconvolution"}


# -- errors (no GPU needed: the oracle twins share the argument mapping) -----------

X = np.zeros((1, 4, 6, 6), np.float32)
W = np.zeros((6, 2, 3, 3), np.float32)


# (overrides of input=X, weight=W, groups=2; exception; message pattern; raised by geometry)
@pytest.mark.parametrize("kwargs, exc, pattern, in_geometry", [
    (dict(weight=np.zeros((6, 3, 3, 3), np.float32)), ValueError,
     r"weight must be \[out_channels, in_channels/groups, kH, kW\]: given groups=2, weight of shape "
     r"\(6, 3, 3, 3\) expects an input with 6 channels .* has 4 channels", False),
    (dict(weight=np.zeros((6, 3, 3, 3), np.float32), groups=1), ValueError,
     r"weight must be .*expects an input with 3 channels", False),
    (dict(weight=np.zeros((5, 2, 3, 3), np.float32)), ValueError,
     r"weight's out_channels .* divisible by groups=2", False),
    (dict(weight=np.zeros((3, 3, 4, 6), np.float32), groups=1), ValueError,  # a TF (HWIO) filter
     r"weight must be \[out_channels", False),
    (dict(weight=np.zeros((6, 2, 3), np.float32)), ValueError,
     r"weight must be rank 4 \(\[out_channels, in_channels/groups, kH, kW\]\)", False),
    (dict(input=np.zeros((4, 6), np.float32)), ValueError, r"input must be rank 3 or 4", False),
    (dict(input=np.zeros((1, 4, 6, 6), np.int32)), TypeError, r"input must have a floating-point", False),
    (dict(padding="same", stride=2), ValueError, r"padding='same' is not supported for strided", False),
    (dict(padding="SAME"), ValueError, r"padding must be 'same', 'valid'", False),
    (dict(padding="full"), ValueError, r"padding must be 'same', 'valid'", False),
    (dict(padding=-1), ValueError, r"negative padding", False),
    (dict(padding=(1, 1, 1)), ValueError, r"padding must be", False),
    (dict(padding=1.5), TypeError, r"padding must be", False),
    (dict(stride=0), ValueError, r"stride must be positive", False),
    (dict(stride=(1, 2, 3)), ValueError, r"stride must be an int or a pair", False),
    (dict(dilation="2"), TypeError, r"dilation must be an int or a pair", False),
    (dict(bias=np.zeros(5, np.float32)), ValueError, r"bias must have shape \[out_channels\] = \[6\]", False),
    (dict(groups=0), ValueError, r"groups must be a positive integer", True),
    (dict(weight=np.zeros((6, 2, 9, 3), np.float32)), ValueError, r"does not fit", True),
])
def test_torch_errors(kwargs, exc, pattern, in_geometry):
    args = dict(input=X, weight=W, groups=2)
    args.update(kwargs)
    with pytest.raises(exc, match=pattern):
        gt.conv2d_oracle(**args)
    if not in_geometry:  # the GPU op shares the mapping: it fails there, before any GL work
        with pytest.raises(exc, match=pattern):
            gt.conv2d(**args)


_LAYOUT = re.escape("[num_output, channels / group, kernel_h, kernel_w]")


@pytest.mark.parametrize("kwargs, exc, pattern", [
    (dict(), ValueError, r"kernel size is required"),
    (dict(kernel_size=[]), ValueError, r"kernel_size is empty"),
    (dict(kernel_size=3, kernel_h=3, kernel_w=3), ValueError,
     r"either kernel_size or kernel_h/kernel_w should be specified; not both"),
    (dict(kernel_h=3), ValueError, r"both kernel_h and kernel_w are required"),
    (dict(kernel_size=[3, 3, 3]), ValueError, r"once per spatial dimension"),
    (dict(kernel_size=0), ValueError, r"kernel_size must be positive"),
    (dict(kernel_size=3, pad=1, pad_h=1), ValueError, r"either pad or pad_h/pad_w .* not both"),
    (dict(kernel_size=3, stride_h=2), ValueError, r"both stride_h and stride_w"),
    (dict(kernel_size=3, stride=0), ValueError, r"stride must be positive"),
    (dict(kernel_size=3, pad=-1), ValueError, r"pad must be non-negative"),
    (dict(kernel_size=3, num_output=6, group=4), ValueError, r"num_output \(6\) must be a multiple of group \(4\)"),
    (dict(kernel_size=3, num_output=0), ValueError, r"num_output must be positive"),
    (dict(kernel_size=3, weight=np.zeros((6, 2, 3, 3), np.float32)), ValueError,
     r"bias_term is true: a bias"),
    (dict(kernel_size=3, bias_term=False, weight=np.zeros((6, 2, 3, 3), np.float32),
          bias=np.zeros(6)), ValueError, r"bias_term is false"),
    (dict(kernel_size=3, weight=np.zeros((6, 2, 3, 3), np.float32), bias=np.zeros(4)), ValueError,
     r"bias must have shape \[num_output\] = \[6\]"),
    (dict(kernel_size=3, weight=np.zeros((3, 3, 2, 6), np.float32), bias=np.zeros(6)), ValueError,
     "weight must have shape " + _LAYOUT),
    (dict(kernel_size=[3, 2], weight=np.zeros((6, 2, 3, 3), np.float32), bias=np.zeros(6)),
     ValueError, "weight must have shape " + _LAYOUT + r" = \[6, channels / group, 3, 2\]"),
])
def test_caffe_construction_errors(kwargs, exc, pattern):
    args = dict(num_output=6)
    args.update(kwargs)
    with pytest.raises(exc, match=pattern):
        caffe.Convolution(**args)


def test_caffe_call_errors():
    w = np.zeros((6, 2, 3, 3), np.float32)
    layer = caffe.Convolution(6, kernel_size=3, group=2, weight=w, bias=np.zeros(6))
    with pytest.raises(ValueError, match="weight must have shape " + _LAYOUT + r" = \[6, 3, 3, 3\]"):
        layer.forward_oracle(np.zeros((1, 6, 5, 5), np.float32))
    with pytest.raises(ValueError, match=r"input's channels \(5\) must be a multiple of group \(2\)"):
        layer.forward_oracle(np.zeros((1, 5, 5, 5), np.float32))
    with pytest.raises(ValueError, match=r"input's channels \(5\) must be a multiple of group \(2\)"):
        layer.output_shape((1, 5, 5, 5))
    with pytest.raises(ValueError, match=r"bottom must be rank 4 \(\[num, channels, height, width\]\)"):
        layer.forward_oracle(np.zeros((4, 5, 5), np.float32))
    with pytest.raises(ValueError, match=r"does not fit"):
        layer.output_shape((1, 4, 2, 2))
    with pytest.raises(ValueError, match=r"the layer has no weight"):
        caffe.Convolution(6, kernel_size=3).forward_oracle(np.zeros((1, 4, 5, 5), np.float32))
    with pytest.raises(ValueError, match=r"unknown convolution_param fields \['kernel'\]"):
        caffe.Convolution.from_param({"num_output": 6, "kernel": 3})
    with pytest.raises(ValueError, match=r"must give num_output"):
        caffe.Convolution.from_param({"kernel_size": 3})
    with pytest.raises(ValueError, match=r"only axis 1"):
        caffe.Convolution.from_param({"num_output": 6, "kernel_size": 3, "axis": 2})
