"""gpuconv.torch's conv_transpose2d, conv3d and conv1d, and gpuconv.caffe.Deconvolution.

Each runs on the GPU (float32, llvmpipe here) and is checked against its float64 oracle
twin; both against real PyTorch (torch.nn.functional in float64: required on CI, skipped
locally where it is missing) -- the GPU within 1e-5 of the output's largest magnitude,
the twin within 1e-12; the transposed mapping also against a direct NumPy definition
that needs neither.  Shapes are few and small: llvmpipe compiles every distinct program
on first use.  Bad arguments raise before any GL context is asked for.  GPU tests take conftest's
``runtime`` fixture: without GL they skip locally and fail on CI.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from helpers import import_crosscheck

import gpuconv
from gpuconv import caffe
from gpuconv import torch as gt

RTOL = 1e-5  # of the output's largest magnitude
ORACLE_RTOL = 1e-12


@pytest.fixture
def no_gl(monkeypatch):
    """Every attempt at a GL context fails loudly (as in tests/test_errors.py)."""
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise gpuconv.GLUnavailableError("test: the argument checks must come before any GL")

    monkeypatch.setattr(gpuconv.runtimes.native, "create_context", refuse)
    monkeypatch.setattr(gpuconv.runtimes._defaults, "holder", None, raising=False)
    return attempts


def _relative(actual, expected):
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    scale = max(float(np.abs(expected).max()), 1e-30)
    return float(np.abs(actual.astype(np.float64) - expected).max()) / scale


def _assert_close(actual, expected, rtol=RTOL):
    error = _relative(actual, expected)
    assert error <= rtol, f"relative error {error:.3g} > {rtol:.3g}"


# (id, input shape, weight shape, keyword arguments, expected output shape); "nobias" in the id: no bias.
# conv_transpose2d: weight [in_channels, out_channels/groups, kH, kW]
TRANSPOSE_CASES = [
    ("stride2-pad1-outpad1-batch2", (2, 3, 4, 5), (3, 4, 3, 3),
     dict(stride=2, padding=1, output_padding=1), (2, 4, 8, 10)),
    ("groups3-stride-pair-dilation-pair", (1, 6, 5, 4), (6, 2, 2, 3),
     dict(groups=3, stride=(2, 1), dilation=(1, 2), padding=(0, 1)), (1, 6, 10, 6)),
    # output_padding 2 >= stride 1 (allowed: < dilation 3) and > padding: 2 rows no input reaches
    ("unbatched-1ch-outpad-past-stride-nobias", (1, 5, 5), (1, 2, 3, 2),
     dict(dilation=3, output_padding=(2, 1), padding=(0, 1), stride=(1, 2)), (2, 13, 11)),
    ("depthwise-9ch-stride3-outpad", (2, 9, 3, 3), (9, 1, 3, 3),
     dict(groups=9, stride=3, padding=(1, 0), output_padding=(2, 0)), (2, 9, 9, 9)),
    # no input pixel reaches the single output row: the result is the bias
    ("unreached-rows-bias-only", (1, 2, 1, 3), (2, 3, 1, 1),
     dict(padding=(1, 0), output_padding=(2, 0), dilation=3), (1, 3, 1, 3)),
]
# conv3d: weight [out_channels, in_channels/groups, kD, kH, kW]
CONV3D_CASES = [
    ("pad-int-batch2", (2, 2, 4, 5, 4), (3, 2, 3, 3, 2), dict(padding=1), (2, 3, 4, 5, 5)),
    ("groups2-stride-triple-pad-triple", (1, 4, 5, 6, 5), (6, 2, 2, 3, 3),
     dict(groups=2, stride=(2, 1, 2), padding=(0, 1, 1)), (1, 6, 2, 6, 3)),
    ("same-even-dilated-unbatched-nobias", (3, 5, 4, 6), (2, 3, 2, 3, 2),
     dict(padding="same", dilation=(2, 1, 2)), (2, 5, 4, 6)),
    ("valid-depthwise-7ch-stride-dilation", (1, 7, 6, 5, 7), (7, 1, 2, 2, 3),
     dict(groups=7, stride=2, dilation=(1, 2, 1), padding="valid"), (1, 7, 3, 2, 3)),
]
# conv1d: weight [out_channels, in_channels/groups, kW]
CONV1D_CASES = [
    ("pad-int-batch2", (2, 3, 12), (5, 3, 3), dict(padding=2), (2, 5, 14)),
    ("groups3-same-even-dilated", (1, 6, 10), (9, 2, 4), dict(groups=3, padding="same", dilation=2),
     (1, 9, 10)),
    ("stride-dilation-unbatched-8ch-nobias", (8, 15), (4, 8, 3), dict(stride=3, dilation=2, padding=(1,)),
     (4, 5)),
    ("depthwise-valid-stride2-batch3", (3, 4, 9), (8, 1, 2), dict(groups=4, padding="valid", stride=2),
     (3, 8, 4)),
]

OPS = {
    "conv_transpose2d": (gt.conv_transpose2d, gt.conv_transpose2d_oracle, TRANSPOSE_CASES),
    "conv3d": (gt.conv3d, gt.conv3d_oracle, CONV3D_CASES),
    "conv1d": (gt.conv1d, gt.conv1d_oracle, CONV1D_CASES),
}
CASES = [(op, index) for op, (_, _, cases) in OPS.items() for index in range(len(cases))]
IDS = [f"{op}-{OPS[op][2][index][0]}" for op, index in CASES]


def _case(op, index):
    name, xs, ws, kwargs, out_shape = OPS[op][2][index]
    rng = np.random.default_rng(100 * list(OPS).index(op) + index)
    x = rng.standard_normal(xs).astype(np.float32)
    w = rng.standard_normal(ws).astype(np.float32)
    out_channels = ws[1] * kwargs.get("groups", 1) if op == "conv_transpose2d" else ws[0]
    b = None if "nobias" in name else rng.standard_normal(out_channels).astype(np.float32)
    return x, w, b, kwargs, out_shape


def _double(a):
    torch = import_crosscheck("torch")
    return None if a is None else torch.from_numpy(np.asarray(a, np.float64))


def _pytorch(op, x, w, b, kwargs):
    torch = import_crosscheck("torch")
    return getattr(torch.nn.functional, op)(_double(x), _double(w), _double(b), **kwargs).numpy()


@pytest.mark.parametrize("op, index", CASES, ids=IDS)
def test_gpu_matches_oracle_twin(runtime, op, index):
    function, twin, _ = OPS[op]
    x, w, b, kwargs, out_shape = _case(op, index)
    y, expected = function(x, w, b, **kwargs), twin(x, w, b, **kwargs)
    assert y.dtype == np.float32 and expected.dtype == np.float64
    assert y.shape == expected.shape == out_shape
    _assert_close(y, expected)


@pytest.mark.parametrize("op, index", CASES, ids=IDS)
def test_against_real_pytorch(runtime, op, index):
    function, twin, _ = OPS[op]
    x, w, b, kwargs, out_shape = _case(op, index)
    expected = _pytorch(op, x, w, b, kwargs)
    assert expected.shape == out_shape
    _assert_close(twin(x, w, b, **kwargs), expected, rtol=ORACLE_RTOL)
    _assert_close(function(x, w, b, **kwargs), expected)


def _transpose_definition(x, w, b, stride, padding, output_padding, groups, dilation):
    """PyTorch's conv_transpose2d from its definition, in float64 NumPy (scatter per tap):
    out[n, g*og + j, i*s - p + t*d] += x[n, g*ig + c, i] * w[g*ig + c, j, t]."""
    x, w = x.astype(np.float64), w.astype(np.float64)
    n, channels, h, wd = x.shape
    ig, og = channels // groups, w.shape[1]
    (sh, sw), (ph, pw), (oph, opw), (dh, dw) = stride, padding, output_padding, dilation
    kh, kw = w.shape[2:]
    oh = (h - 1) * sh - 2 * ph + dh * (kh - 1) + oph + 1
    ow = (wd - 1) * sw - 2 * pw + dw * (kw - 1) + opw + 1
    full = np.zeros((n, og * groups, (h - 1) * sh + dh * (kh - 1) + 1 + oph + ph,
                     (wd - 1) * sw + dw * (kw - 1) + 1 + opw + pw))
    for g in range(groups):
        xs, ws = x[:, g * ig:(g + 1) * ig], w[g * ig:(g + 1) * ig]
        for t in range(kh):
            for u in range(kw):
                contribution = np.einsum("ncij,ck->nkij", xs, ws[:, :, t, u])
                full[:, g * og:(g + 1) * og, t * dh:t * dh + (h - 1) * sh + 1:sh,
                     u * dw:u * dw + (wd - 1) * sw + 1:sw] += contribution
    out = full[:, :, ph:ph + oh, pw:pw + ow]
    assert out.shape[2:] == (oh, ow)
    return out if b is None else out + b.astype(np.float64)[:, None, None]


@pytest.mark.parametrize("index", range(len(TRANSPOSE_CASES)), ids=[c[0] for c in TRANSPOSE_CASES])
def test_transpose_twin_matches_the_definition_without_pytorch(index):
    x, w, b, kwargs, out_shape = _case("conv_transpose2d", index)
    args = dict(stride=1, padding=0, output_padding=0, groups=1, dilation=1)
    args.update(kwargs)
    pairs = {k: (v if k == "groups" or isinstance(v, tuple) else (v, v)) for k, v in args.items()}
    x4 = x if x.ndim == 4 else x[np.newaxis]
    expected = _transpose_definition(x4, w, b, **pairs)
    expected = expected if x.ndim == 4 else expected[0]
    assert expected.shape == out_shape
    _assert_close(gt.conv_transpose2d_oracle(x, w, b, **kwargs), expected, rtol=ORACLE_RTOL)


def test_mappings_are_gpuconv_ops_after_the_layout_change(runtime):
    """conv_transpose2d (groups 1) is gpuconv.conv2d_transpose with filter weight.transpose(2, 3, 1, 0)
    and pads [[p, p - op], ...]; conv3d is gpuconv.conv3d (NDHWC here); conv1d is gpuconv.conv1d."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)
    w = rng.standard_normal((3, 4, 3, 3)).astype(np.float32)
    y = gt.conv_transpose2d(x, w, stride=2, padding=1, output_padding=1)
    direct = gpuconv.conv2d_transpose(x.transpose(0, 2, 3, 1), w.transpose(2, 3, 1, 0), (2, 8, 10, 4),
                                      strides=2, padding=[[1, 0], [1, 0]])
    np.testing.assert_allclose(y, direct.transpose(0, 3, 1, 2), rtol=0, atol=1e-6 * np.abs(y).max())

    x = rng.standard_normal((2, 2, 4, 5, 4)).astype(np.float32)
    w = rng.standard_normal((3, 2, 3, 3, 2)).astype(np.float32)
    y = gt.conv3d(x, w, padding=1)
    direct = gpuconv.conv3d(x.transpose(0, 2, 3, 4, 1), w.transpose(2, 3, 4, 1, 0), padding=[[1, 1]] * 3)
    np.testing.assert_allclose(y, direct.transpose(0, 4, 1, 2, 3), rtol=0, atol=1e-6 * np.abs(y).max())

    x = rng.standard_normal((2, 3, 12)).astype(np.float32)
    w = rng.standard_normal((5, 3, 3)).astype(np.float32)
    y = gt.conv1d(x, w, padding=2)
    direct = gpuconv.conv1d(x, w.transpose(2, 1, 0), padding=[2, 2], data_format="NCW")
    np.testing.assert_allclose(y, direct, rtol=0, atol=1e-6 * np.abs(y).max())


def test_a_tensor_input_gives_a_tensor(runtime):
    """A gpuconv.Tensor input: read in place (one call, nothing on the host) or read back (groups,
    the host's bias, appended rows); a Tensor comes back either way.  Weights stay NumPy arrays."""
    rng = np.random.default_rng(9)
    x = rng.standard_normal((2, 4, 5, 5)).astype(np.float32)
    x3 = rng.standard_normal((1, 4, 4, 4, 4)).astype(np.float32)
    calls = [
        (gt.conv_transpose2d, gt.conv_transpose2d_oracle, x, (4, 3, 3, 3), dict(stride=2)),
        (gt.conv_transpose2d, gt.conv_transpose2d_oracle, x, (4, 3, 3, 3), dict(groups=2, bias=6)),
        (gt.conv_transpose2d, gt.conv_transpose2d_oracle, x, (4, 3, 3, 3), dict(output_padding=2, dilation=3)),
        (gt.conv3d, gt.conv3d_oracle, x3, (2, 4, 3, 3, 3), dict()),
        (gt.conv3d, gt.conv3d_oracle, x3, (2, 2, 3, 3, 3), dict(groups=2, bias=2)),
        (gt.conv1d, gt.conv1d_oracle, x[:, :, 0], (6, 2, 3), dict(groups=2, bias=6)),
    ]
    for function, twin, array, weight_shape, kwargs in calls:
        w = rng.standard_normal(weight_shape).astype(np.float32)
        if "bias" in kwargs:
            kwargs["bias"] = rng.standard_normal(kwargs["bias"]).astype(np.float32)
        with gpuconv.to_gpu(array) as tensor:
            y = function(tensor, w, **kwargs)
            assert isinstance(y, gpuconv.Tensor), (function.__name__, kwargs)
            _assert_close(y.numpy(), twin(array, w, **kwargs))
            y.release()
        with gpuconv.to_gpu(w) as weight, pytest.raises(TypeError, match=r"weight must be a NumPy array, got a "
                                                                       r"gpuconv.Tensor"):
            function(array, weight)


def test_same_padding_puts_the_odd_pixel_after_without_gpu():
    """PyTorch's 'same' (conv3d, conv1d): total dilation*(k-1), total//2 before."""
    rng = np.random.default_rng(8)
    x = rng.standard_normal((1, 2, 4, 5, 3))
    w = rng.standard_normal((2, 2, 2, 3, 4))
    y = gt.conv3d_oracle(x, w, padding="same", dilation=(3, 1, 1))
    # depth: total 3 -> 1 before, 2 after; height: 2 -> 1 and 1; width: 3 -> 1 and 2
    manual = gt.conv3d_oracle(np.pad(x, ((0, 0), (0, 0), (1, 2), (1, 1), (1, 2))), w, dilation=(3, 1, 1))
    np.testing.assert_allclose(y, manual, rtol=1e-12, atol=1e-12)
    x1 = rng.standard_normal((2, 2, 7))
    w1 = rng.standard_normal((3, 2, 4))
    manual = gt.conv1d_oracle(np.pad(x1, ((0, 0), (0, 0), (1, 2))), w1)
    np.testing.assert_allclose(gt.conv1d_oracle(x1, w1, padding="same"), manual, rtol=1e-12, atol=1e-12)


def _random_call(rng):
    """A random call of one of the three ops: small sizes, any groups, strides, dilations and
    paddings (many of them invalid, as PyTorch would say)."""
    op = ("conv_transpose2d", "conv3d", "conv1d")[int(rng.integers(3))]
    n = {"conv_transpose2d": 2, "conv3d": 3, "conv1d": 1}[op]
    groups = int(rng.integers(1, 4))
    cin, cout = groups * int(rng.integers(1, 4)), groups * int(rng.integers(1, 3))
    kernel, stride, dilation = (tuple(int(v) for v in rng.integers(1, 4, n)) for _ in range(3))
    spatial = tuple(int(v) for v in rng.integers(1, 7, n))
    x = rng.standard_normal(((2,) if rng.random() < 0.7 else ()) + (cin,) + spatial)
    b = rng.standard_normal(cout) if rng.random() < 0.6 else None
    kwargs = dict(stride=stride, dilation=dilation, groups=groups)
    if op == "conv_transpose2d":
        w = rng.standard_normal((cin, cout // groups) + kernel)
        kwargs.update(padding=tuple(int(v) for v in rng.integers(0, 4, 2)),
                      output_padding=tuple(int(v) for v in rng.integers(0, 3, 2)))
    else:
        w = rng.standard_normal((cout, cin // groups) + kernel)
        form = int(rng.integers(4))
        kwargs["padding"] = ("same", "valid", int(rng.integers(0, 3)),
                             tuple(int(v) for v in rng.integers(0, 3, n)))[form]
        if form == 0:
            kwargs["stride"] = 1
    return op, x, w, b, kwargs


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel lengths")
def test_oracle_twins_agree_with_pytorch_on_random_calls():
    """200 seeded random calls: where PyTorch raises the twin raises (ValueError/TypeError), and
    everywhere else they agree to 1e-12 (no GPU: the twins share the GPU functions' mapping)."""
    torch = import_crosscheck("torch")
    rng = np.random.default_rng(2026)
    computed = 0
    for _ in range(200):
        op, x, w, b, kwargs = _random_call(rng)
        try:
            expected = getattr(torch.nn.functional, op)(_double(x), _double(w), _double(b), **kwargs).numpy()
        except RuntimeError:
            with pytest.raises((ValueError, TypeError)):
                OPS[op][1](x, w, b, **kwargs)
            continue
        _assert_close(OPS[op][1](x, w, b, **kwargs), expected, rtol=ORACLE_RTOL)
        computed += 1
    assert computed > 80


# -- Caffe's Deconvolution ----------------------------------------------------------

DECONV_CASES = [
    ("kernel4-stride2-pad1-batch2", dict(num_output=4, kernel_size=4, stride=2, pad=1), (2, 3, 5, 5),
     (3, 4, 4, 4), dict(stride=2, padding=1), (2, 4, 10, 10)),
    ("param-hw-fields-dilation-group2-nobias",
     {"num_output": 6, "kernel_h": 3, "kernel_w": 2, "stride_h": 2, "stride_w": 1, "pad_w": 1,
      "dilation": [1, 2], "group": 2, "bias_term": False, "weight_filler": {"type": "xavier"}},
     (1, 4, 4, 5), (4, 3, 3, 2), dict(stride=(2, 1), padding=(0, 1), dilation=(1, 2), groups=2), (1, 6, 9, 5)),
]


def _deconv_case(index):
    name, param, xs, ws, torch_kwargs, out_shape = DECONV_CASES[index]
    rng = np.random.default_rng(50 + index)
    x = rng.standard_normal(xs).astype(np.float32)
    w = rng.standard_normal(ws).astype(np.float32)
    b = None if "nobias" in name else rng.standard_normal(param["num_output"]).astype(np.float32)
    if "num_output" in param and "kernel_size" in param:
        layer = caffe.Deconvolution(**param, weight=w, bias=b)
    else:
        layer = caffe.Deconvolution.from_param(param, weight=w, bias=b)
    return layer, x, w, b, torch_kwargs, out_shape


@pytest.mark.parametrize("index", range(len(DECONV_CASES)), ids=[c[0] for c in DECONV_CASES])
def test_caffe_deconvolution(runtime, index):
    layer, x, w, b, torch_kwargs, out_shape = _deconv_case(index)
    assert isinstance(layer, caffe.Deconvolution)
    y = layer(x)
    assert y.dtype == np.float32 and y.shape == layer.output_shape(x.shape) == out_shape
    expected = layer.forward_oracle(x)
    _assert_close(y, expected)
    # the same mapping as PyTorch's conv_transpose2d with output_padding 0
    np.testing.assert_array_equal(y, gt.conv_transpose2d(x, w, b, **torch_kwargs))
    np.testing.assert_array_equal(expected, gt.conv_transpose2d_oracle(x, w, b, **torch_kwargs))


@pytest.mark.parametrize("index", range(len(DECONV_CASES)), ids=[c[0] for c in DECONV_CASES])
def test_caffe_deconvolution_against_real_pytorch(runtime, index):
    layer, x, w, b, torch_kwargs, out_shape = _deconv_case(index)
    expected = _pytorch("conv_transpose2d", x, w, b, torch_kwargs)
    assert expected.shape == out_shape
    _assert_close(layer.forward_oracle(x), expected, rtol=ORACLE_RTOL)
    _assert_close(layer.forward(x), expected)


def test_caffe_deconvolution_output_size():
    # Caffe: stride * (in - 1) + dilation * (k - 1) + 1 - 2 * pad (no GPU work)
    for h, k, s, p, d in [(5, 4, 2, 1, 1), (7, 3, 3, 2, 1), (4, 2, 1, 0, 3), (3, 5, 2, 4, 1), (6, 1, 4, 0, 1)]:
        layer = caffe.Deconvolution(2, kernel_size=k, stride=s, pad=p, dilation=d)
        expected = s * (h - 1) + d * (k - 1) + 1 - 2 * p
        assert layer.output_shape((3, 4, h, h)) == (3, 2, expected, expected)
    layer = caffe.Deconvolution.from_param({"num_output": 4, "kernel_size": [3, 2], "stride": [2, 1]})
    assert (layer.kernel, layer.stride, layer.pad, layer.group) == ((3, 2), (2, 1), (0, 0), 1)
    assert repr(layer).startswith("Deconvolution(num_output=4, kernel=(3, 2)")
    assert repr(caffe.Convolution(4, kernel_size=3)).startswith("Convolution(num_output=4")
    assert isinstance(caffe.Convolution.from_param({"num_output": 4, "kernel_size": 3}), caffe.Convolution)


# -- errors: PyTorch's names, before any GL ------------------------------------------

XT, WT = np.zeros((1, 4, 5, 5), np.float32), np.zeros((4, 3, 3, 3), np.float32)
X3, W3 = np.zeros((1, 4, 5, 5, 5), np.float32), np.zeros((6, 2, 3, 3, 3), np.float32)
X1, W1 = np.zeros((2, 4, 8), np.float32), np.zeros((6, 2, 3), np.float32)
DEFAULTS = {"conv_transpose2d": dict(input=XT, weight=WT, groups=2),
            "conv3d": dict(input=X3, weight=W3, groups=2),
            "conv1d": dict(input=X1, weight=W1, groups=2)}

ERRORS = [
    # conv_transpose2d: weight [in_channels, out_channels/groups, kH, kW]
    ("conv_transpose2d", dict(weight=np.zeros((5, 3, 3, 3), np.float32)), ValueError,
     r"weight must be \[in_channels, out_channels/groups, kH, kW\]: its in_channels \(dimension 0, 5\) "
     r"must equal input's channels \(4"),
    ("conv_transpose2d", dict(input=np.zeros((1, 3, 5, 5), np.float32), weight=np.zeros((3, 3, 3, 3))),
     ValueError, r"input's channels \(3\) .* divisible by groups=2"),
    ("conv_transpose2d", dict(weight=np.zeros((4, 3, 3), np.float32)), ValueError,
     r"weight must be rank 4 \(\[in_channels, out_channels/groups, kH, kW\]\)"),
    ("conv_transpose2d", dict(input=np.zeros((4, 5), np.float32)), ValueError, r"input must be rank 3 or 4"),
    ("conv_transpose2d", dict(input=np.zeros((1, 4, 5, 5), np.int32)), TypeError,
     r"input must have a floating-point"),
    ("conv_transpose2d", dict(padding="same"), TypeError, r"padding must be .* takes no 'same' or 'valid'"),
    ("conv_transpose2d", dict(padding=-1), ValueError, r"padding must be non-negative"),
    ("conv_transpose2d", dict(padding=(1, 2, 3)), ValueError, r"padding must be an int or a tuple \(h, w\)"),
    ("conv_transpose2d", dict(padding=1.5), TypeError, r"padding must be an int or a tuple \(h, w\)"),
    ("conv_transpose2d", dict(output_padding=1), ValueError,
     r"output_padding must be smaller than either stride or dilation"),
    ("conv_transpose2d", dict(output_padding=(0, 2), stride=2, dilation=(1, 2)), ValueError,
     r"output_padding must be smaller than either stride or dilation .*w: 2 >= 2 and 2 >= 2"),
    ("conv_transpose2d", dict(output_padding=-1), ValueError, r"output_padding must be non-negative"),
    ("conv_transpose2d", dict(stride=0), ValueError, r"stride must be positive"),
    ("conv_transpose2d", dict(dilation="2"), TypeError, r"dilation must be an int or a tuple \(h, w\)"),
    ("conv_transpose2d", dict(groups=0), ValueError, r"groups must be a positive integer"),
    ("conv_transpose2d", dict(groups=2.0), TypeError, r"groups must be a positive integer"),
    ("conv_transpose2d", dict(bias=np.zeros(5, np.float32)), ValueError,
     r"bias must have shape \[out_channels\] = \[6\]"),
    ("conv_transpose2d", dict(bias=np.zeros((6, 1), np.float32)), ValueError, r"bias must be rank 1"),
    ("conv_transpose2d", dict(padding=5), ValueError, r"the output is empty: .* \(-3, -3\) per channel"),
    # conv3d: weight [out_channels, in_channels/groups, kD, kH, kW]
    ("conv3d", dict(weight=np.zeros((6, 3, 3, 3, 3), np.float32)), ValueError,
     r"weight must be \[out_channels, in_channels/groups, kD, kH, kW\]: given groups=2, .* expects an "
     r"input with 6 channels .* has 4 channels"),
    ("conv3d", dict(weight=np.zeros((5, 2, 3, 3, 3), np.float32)), ValueError,
     r"weight's out_channels .* divisible by groups=2"),
    ("conv3d", dict(weight=np.zeros((6, 2, 3, 3), np.float32)), ValueError, r"weight must be rank 5"),
    ("conv3d", dict(input=np.zeros((4, 5, 5), np.float32)), ValueError, r"input must be rank 4 or 5"),
    ("conv3d", dict(padding="same", stride=2), ValueError, r"padding='same' is not supported for strided"),
    ("conv3d", dict(padding="full"), ValueError, r"padding must be 'same', 'valid'"),
    ("conv3d", dict(padding=(1, 1)), ValueError,
     r"padding must be 'same', 'valid', an int or a tuple \(d, h, w\) of ints \(3 values"),
    ("conv3d", dict(padding=-1), ValueError, r"padding must be non-negative"),
    ("conv3d", dict(padding=[1.0]), TypeError, r"padding must be 'same', 'valid', an int"),
    ("conv3d", dict(stride=(1, 2)), ValueError, r"stride must be an int or a tuple \(d, h, w\)"),
    ("conv3d", dict(dilation=0), ValueError, r"dilation must be positive"),
    ("conv3d", dict(groups=-1), ValueError, r"groups must be a positive integer"),
    ("conv3d", dict(weight=np.zeros((6, 2, 7, 3, 3), np.float32)), ValueError,
     r"the kernel does not fit in the padded input"),
    ("conv3d", dict(bias=np.zeros(4, np.float32)), ValueError, r"bias must have shape \[out_channels\] = \[6\]"),
    # conv1d: weight [out_channels, in_channels/groups, kW]
    ("conv1d", dict(weight=np.zeros((6, 2, 3, 3), np.float32)), ValueError,
     r"weight must be rank 3 \(\[out_channels, in_channels/groups, kW\]\)"),
    ("conv1d", dict(weight=np.zeros((6, 4, 3), np.float32)), ValueError,
     r"expects an input with 8 channels"),
    ("conv1d", dict(input=np.zeros((1, 4, 5, 5), np.float32)), ValueError, r"input must be rank 2 or 3"),
    ("conv1d", dict(stride=(1, 2)), ValueError, r"stride must be an int or a 1-tuple of ints"),
    ("conv1d", dict(padding="same", stride=2), ValueError, r"padding='same' is not supported for strided"),
    ("conv1d", dict(padding=(1, 1)), ValueError, r"padding must be 'same', 'valid', an int or a 1-tuple"),
    ("conv1d", dict(padding=True), TypeError, r"padding must be 'same', 'valid', an int"),
    ("conv1d", dict(dilation=-2), ValueError, r"dilation must be positive"),
    ("conv1d", dict(weight=np.zeros((6, 2, 11), np.float32)), ValueError,
     r"the kernel does not fit in the padded input: input of shape \(2, 4, 8\) padded to \(8,\)"),
    ("conv1d", dict(input=[[1, 2], [3, 4]], weight=np.zeros((2, 1, 1)), bias="b"), TypeError, r"bias must be"),
]


@pytest.mark.parametrize("op, kwargs, exc, pattern", ERRORS,
                         ids=[f"{e[0]}-{i}" for i, e in enumerate(ERRORS)])
def test_bad_arguments_are_refused_before_any_gl(no_gl, op, kwargs, exc, pattern):
    function, twin, _ = OPS[op]
    args = dict(DEFAULTS[op])
    args.update(kwargs)
    for call in (function, twin):  # one mapping: the same error from both
        with pytest.raises(exc, match=pattern) as info:
            call(**args)
        assert type(info.value) is exc
    assert not no_gl, "a GL context was asked for before the arguments were checked"


_DECONV_LAYOUT = re.escape("[channels, num_output / group, kernel_h, kernel_w]")


@pytest.mark.parametrize("kwargs, exc, pattern", [
    (dict(), ValueError, r"kernel size is required"),
    (dict(kernel_size=3, kernel_h=3, kernel_w=3), ValueError, r"either kernel_size or kernel_h/kernel_w"),
    (dict(kernel_size=3, stride=0), ValueError, r"stride must be positive"),
    (dict(kernel_size=3, group=4), ValueError, r"num_output \(6\) must be a multiple of group \(4\)"),
    (dict(kernel_size=3, weight=np.zeros((4, 6, 3, 3), np.float32)), ValueError,
     "weight must have shape " + _DECONV_LAYOUT + r" = \[channels, 3, 3, 3\] \(num_output=6, group=2\)"),
    (dict(kernel_size=[3, 2], weight=np.zeros((4, 3, 3, 3), np.float32), bias=np.zeros(6)), ValueError,
     "weight must have shape " + _DECONV_LAYOUT + r" = \[channels, 3, 3, 2\]"),
    (dict(kernel_size=3, weight=np.zeros((5, 3, 3, 3), np.float32), bias=np.zeros(6)), ValueError,
     r"weight's channels \(dimension 0 of .*, 5\) must be a multiple of group \(2\)"),
    (dict(kernel_size=3, weight=np.zeros((4, 3, 3, 3), np.float32)), ValueError, r"bias_term is true: a bias"),
    (dict(kernel_size=3, bias_term=False, weight=np.zeros((4, 3, 3, 3), np.float32), bias=np.zeros(6)),
     ValueError, r"bias_term is false"),
    (dict(kernel_size=3, weight=np.zeros((4, 3, 3, 3), np.float32), bias=np.zeros(4)), ValueError,
     r"bias must have shape \[num_output\] = \[6\]"),
])
def test_caffe_deconvolution_construction_errors(kwargs, exc, pattern):
    args = dict(num_output=6, group=2)
    args.update(kwargs)
    with pytest.raises(exc, match=pattern):
        caffe.Deconvolution(**args)


def test_caffe_deconvolution_call_errors(no_gl):
    layer = caffe.Deconvolution(6, kernel_size=3, group=2, weight=np.zeros((4, 3, 3, 3), np.float32),
                                bias=np.zeros(6))
    for run in (layer, layer.forward_oracle):
        with pytest.raises(ValueError, match="weight must have shape " + _DECONV_LAYOUT +
                           r" = \[6, 3, 3, 3\] for a bottom of shape \(1, 6, 5, 5\)"):
            run(np.zeros((1, 6, 5, 5), np.float32))
        with pytest.raises(ValueError, match=r"input's channels \(5\) must be a multiple of group \(2\)"):
            run(np.zeros((1, 5, 5, 5), np.float32))
        with pytest.raises(ValueError, match=r"bottom must be rank 4 \(\[num, channels, height, width\]\)"):
            run(np.zeros((4, 5, 5), np.float32))
    with pytest.raises(ValueError, match=r"the top blob would be empty: .* \(-1, -1\) per channel"):
        caffe.Deconvolution(2, kernel_size=1, pad=1, weight=np.zeros((4, 2, 1, 1)),
                            bias=np.zeros(2))(np.zeros((1, 4, 1, 1), np.float32))
    with pytest.raises(ValueError, match=r"the layer has no weight"):
        caffe.Deconvolution(6, kernel_size=3)(np.zeros((1, 4, 5, 5), np.float32))
    with pytest.raises(ValueError, match=r"unknown convolution_param fields \['output_padding'\]"):
        caffe.Deconvolution.from_param({"num_output": 6, "kernel_size": 3, "output_padding": 1})
    assert not no_gl, "a GL context was asked for before the arguments were checked"
