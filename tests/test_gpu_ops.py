"""Issue 4's ops on the GPU: NCHW, grouped, fused bias + activation, separable, conv1d,
each against the oracle and against the equivalences that hold by definition."""

import numpy as np
import pytest

import gpuconv
from gpuconv.ops import plan_separable_conv2d
from helpers import assert_close


def _data(rng, *shapes):
    return [rng.uniform(-1, 1, size=shape).astype(np.float32) for shape in shapes]


def _nchw(a):
    return np.ascontiguousarray(a.transpose(0, 3, 1, 2))


NCHW_CASES = [
    ("conv2d", (2, 7, 6, 5), (3, 3, 5, 3), dict(strides=2, padding="SAME")),
    ("conv2d", (1, 9, 8, 7), (2, 3, 7, 4), dict(dilations=2, padding=[[0, 0], [0, 0], [1, 2], [2, 0]])),
    ("conv2d", (1, 6, 6, 8), (1, 1, 8, 3), dict(padding="VALID")),
    ("conv2d", (3, 8, 7, 6), (3, 2, 3, 4), dict(groups=2, padding=1, strides=[1, 1, 2, 2])),
    ("depthwise_conv2d", (2, 7, 6, 3), (3, 3, 3, 2), dict(padding="SAME", strides=(1, 2))),
    ("depthwise_conv2d", (1, 9, 9, 6), (3, 3, 6, 1), dict(dilations=3, padding="VALID")),
]


ALGORITHMS = ["direct", "packed"]


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("op, x_shape, w_shape, kwargs", NCHW_CASES)
def test_nchw_equals_transposed_nhwc_and_the_oracle(runtime, rng, op, x_shape, w_shape, kwargs, algorithm):
    if kwargs.get("groups", 1) > 1 and algorithm == "packed":
        algorithm = "direct"  # grouped convolution has no packed program
    x, w = _data(rng, x_shape, w_shape)
    nhwc_kwargs = dict(kwargs)
    if isinstance(kwargs.get("padding"), list):  # TF's 4x2 list names the axes in NCHW order
        pads = kwargs["padding"]
        nhwc_kwargs["padding"] = [pads[0], pads[2], pads[3], pads[1]]
    if isinstance(kwargs.get("strides"), list):
        s = kwargs["strides"]
        nhwc_kwargs["strides"] = [s[0], s[2], s[3], s[1]]
    y_nchw = getattr(gpuconv, op)(_nchw(x), w, data_format="NCHW", algorithm=algorithm, **kwargs)
    y_nhwc = getattr(gpuconv, op)(x, w, algorithm=algorithm, **nhwc_kwargs)
    np.testing.assert_allclose(y_nchw, _nchw(y_nhwc), rtol=0, atol=1e-6)
    assert_close(y_nchw, getattr(gpuconv.oracle, op)(_nchw(x), w, data_format="NCHW", **kwargs))


@pytest.mark.parametrize("in_c, out_c, groups", [(6, 9, 3), (8, 4, 2), (5, 10, 5), (4, 8, 4)])
def test_grouped_conv_matches_oracle(runtime, rng, in_c, out_c, groups):
    x, w = _data(rng, (2, 7, 6, in_c), (3, 2, in_c // groups, out_c))
    kwargs = dict(groups=groups, padding="SAME", strides=(2, 1))
    assert_close(gpuconv.conv2d(x, w, **kwargs), gpuconv.oracle.conv2d(x, w, **kwargs))


@pytest.mark.parametrize("multiplier", [1, 2, 3])
def test_groups_equal_to_channels_is_depthwise(runtime, rng, multiplier):
    x, dw = _data(rng, (1, 8, 7, 5), (3, 3, 5, multiplier))
    # depthwise [FH, FW, C, m] -> grouped [FH, FW, 1, C*m]: output channel k*m + q in both
    grouped = dw.reshape(3, 3, 1, 5 * multiplier)
    y_grouped = gpuconv.conv2d(x, grouped, groups=5, padding="SAME")
    y_depthwise = gpuconv.depthwise_conv2d(x, dw, padding="SAME", algorithm="direct")
    np.testing.assert_allclose(y_grouped, y_depthwise, rtol=0, atol=1e-6)


ACTIVATIONS = ["linear", "relu", "relu6", "elu", "sigmoid", "leakyrelu", "prelu"]


def _numpy_activation(y, activation, alpha, prelu):
    if activation == "relu":
        return np.maximum(y, 0)
    if activation == "relu6":
        return np.clip(y, 0, 6)
    if activation == "elu":
        return np.where(y > 0, y, np.expm1(np.minimum(y, 0)))
    if activation == "sigmoid":
        return 1 / (1 + np.exp(-y))
    if activation == "leakyrelu":
        return np.where(y < 0, alpha * y, y)
    if activation == "prelu":
        return np.where(y < 0, prelu * y, y)
    return y


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("op", ["conv2d", "depthwise_conv2d"])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_fused_equals_unfused_then_activation(runtime, rng, op, activation, algorithm):
    x, w = _data(rng, (2, 6, 5, 3), (3, 3, 3, 4 if op == "conv2d" else 2))
    w *= 4  # push outputs past relu6's 6 and deep into the negative side
    out_c = 4 if op == "conv2d" else 6
    bias = rng.uniform(-1, 1, out_c).astype(np.float32)
    prelu = rng.uniform(0, 1, out_c).astype(np.float32) if activation == "prelu" else None
    alpha = {"leakyrelu_alpha": 0.3} if activation == "leakyrelu" else {}  # refused with the others
    fused = getattr(gpuconv, op)(x, w, padding="SAME", bias=bias, activation=activation,
                                 **alpha, prelu_weights=prelu, algorithm=algorithm)
    plain = getattr(gpuconv, op)(x, w, padding="SAME", algorithm=algorithm).astype(np.float64) + bias
    expected = _numpy_activation(plain, activation, np.float32(0.3), prelu)
    assert_close(fused, expected)
    assert_close(fused, getattr(gpuconv.oracle, op)(x, w, padding="SAME", bias=bias, activation=activation,
                                                    **alpha, prelu_weights=prelu))


def test_fused_in_nchw_with_full_prelu_weights(runtime, rng):
    x, w = _data(rng, (1, 3, 6, 5), (3, 3, 3, 4))
    prelu = rng.uniform(0, 1, (1, 4, 6, 5)).astype(np.float32)  # one weight per output element
    bias = rng.uniform(-1, 1, 4).astype(np.float32)
    kwargs = dict(padding="SAME", data_format="NCHW", bias=bias, activation="prelu", prelu_weights=prelu)
    assert_close(gpuconv.conv2d(x, w, **kwargs), gpuconv.oracle.conv2d(x, w, **kwargs))


SEPARABLE_CASES = [
    ((1, 9, 8, 3), (3, 3, 3, 1), (1, 1, 3, 5), dict(padding="SAME")),
    ((2, 10, 9, 5), (3, 2, 5, 2), (1, 1, 10, 4), dict(strides=2, padding="VALID")),
    ((1, 9, 9, 4), (3, 3, 4, 3), (1, 1, 12, 6), dict(dilations=2, padding="SAME", data_format="NCHW")),
]


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("x_shape, dw_shape, pw_shape, kwargs", SEPARABLE_CASES)
def test_separable_is_depthwise_then_pointwise(runtime, rng, x_shape, dw_shape, pw_shape, kwargs, algorithm):
    if kwargs.get("data_format") == "NCHW":
        x_shape = (x_shape[0], x_shape[3], x_shape[1], x_shape[2])
    x, dw, pw = _data(rng, x_shape, dw_shape, pw_shape)
    y = gpuconv.separable_conv2d(x, dw, pw, algorithm=algorithm, **kwargs)
    fmt = kwargs.get("data_format", "NHWC")
    two_steps = gpuconv.conv2d(gpuconv.depthwise_conv2d(x, dw, algorithm=algorithm, **kwargs), pw,
                               data_format=fmt, algorithm=algorithm)
    np.testing.assert_allclose(y, two_steps, rtol=0, atol=1e-6)
    assert_close(y, gpuconv.oracle.separable_conv2d(x, dw, pw, **kwargs))


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_separable_keeps_the_intermediate_on_the_gpu(runtime, rng, monkeypatch, algorithm):
    x, dw, pw = _data(rng, (1, 6, 6, 3), (3, 3, 3, 2), (1, 1, 6, 4))
    reads = []
    original = type(runtime).read
    monkeypatch.setattr(type(runtime), "read", lambda self, *a: reads.append(a) or original(self, *a))
    gpuconv.separable_conv2d(x, dw, pw, padding="SAME", algorithm=algorithm, runtime=runtime)
    # only the final result comes back to the host: one read per render target of the last program
    plan = runtime.target.plan(lambda limits, algorithm=algorithm: plan_separable_conv2d(  # the runtime's programs
        x, dw, pw, padding="SAME", algorithm=algorithm, limits=limits), algorithm, runtime.limits)
    assert len(reads) == len(plan.spec.output_layouts)
    assert all(read[1] in plan.spec.output_layouts for read in reads)
    assert len(gpuconv.shader_sources("separable_conv2d", x.shape, dw.shape, pointwise_filter_shape=pw.shape,
                                      padding="SAME")) == 2


CONV1D_CASES = [
    ((2, 20, 3), (3, 3, 4), dict(stride=2, padding="SAME")),
    ((1, 17, 5), (4, 5, 2), dict(dilation=3, padding="VALID")),
    ((3, 16, 6), (5, 6, 3), dict(stride=3, padding=2, dim_rounding_mode="ceil")),
    ((1, 12, 4), (3, 4, 2), dict(padding=[2, 1])),
    ((1, 12, 4), (3, 4, 2), dict(padding=[[0, 0], [0, 0], [1, 2], [0, 0]])),
    ((12, 4), (2, 4, 3), dict(padding="SAME")),  # no batch
]


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("x_shape, w_shape, kwargs", CONV1D_CASES)
def test_conv1d_matches_oracle_and_height_one_conv2d(runtime, rng, x_shape, w_shape, kwargs, algorithm):
    x, w = _data(rng, x_shape, w_shape)
    y = gpuconv.conv1d(x, w, algorithm=algorithm, **kwargs)
    assert_close(y, gpuconv.oracle.conv1d(x, w, **kwargs))
    if isinstance(kwargs.get("padding"), str) and len(x_shape) == 3:
        y2d = gpuconv.conv2d(x[:, None], w[None], strides=(1, kwargs.get("stride", 1)),
                             dilations=(1, kwargs.get("dilation", 1)), padding=kwargs["padding"])
        np.testing.assert_allclose(y, y2d[:, 0], rtol=0, atol=1e-6)


def test_conv1d_channels_first(runtime, rng):
    x, w = _data(rng, (2, 15, 3), (3, 3, 2))
    y = gpuconv.conv1d(np.ascontiguousarray(x.transpose(0, 2, 1)), w, padding="SAME", data_format="NCW")
    np.testing.assert_allclose(y, gpuconv.conv1d(x, w, padding="SAME").transpose(0, 2, 1), rtol=0, atol=1e-6)


def test_dilated_conv_equals_conv_with_zero_stuffed_filter(runtime, rng):
    x, w = _data(rng, (1, 12, 11, 3), (3, 2, 3, 2))
    stuffed = np.zeros((1 + 2 * 2, 1 + 1 * 3, 3, 2), np.float32)  # dilation (2, 3): taps 2 rows, 3 columns apart
    stuffed[::2, ::3] = w
    y_dilated = gpuconv.conv2d(x, w, dilations=(2, 3), padding="VALID")
    y_stuffed = gpuconv.conv2d(x, stuffed, padding="VALID")
    np.testing.assert_allclose(y_dilated, y_stuffed, rtol=0, atol=1e-6)


@pytest.mark.webgl2_only("the packed programs' render targets")
@pytest.mark.parametrize("fold", [2, 3, 5])
def test_packed_programs_with_folded_render_targets(runtime, rng, fold):
    import dataclasses

    from gpuconv.ops import plan_conv2d
    from gpuconv.plan import Plan

    x, w, dw, pw = _data(rng, (2, 9, 10, 6), (3, 2, 6, 5), (3, 3, 6, 2), (1, 1, 12, 7))
    plan = plan_conv2d(x, w, padding="SAME", algorithm="packed", bias=np.ones(5), activation="elu")
    spec, arrays = plan.steps[0]
    y = runtime.run(Plan(((dataclasses.replace(spec, fold=fold), arrays),), plan.out_shape))
    assert_close(y, gpuconv.oracle.conv2d(x, w, padding="SAME", bias=np.ones(5), activation="elu"))
    # A separable pair: the pointwise program reads the depthwise program's folded outputs in place.
    pair = plan_separable_conv2d(x, dw, pw, strides=(1, 2), padding="SAME", algorithm="packed")
    folded = tuple((dataclasses.replace(s, fold=fold), a) for s, a in pair.steps)
    assert_close(runtime.run(Plan(folded, pair.out_shape)),
                 gpuconv.oracle.separable_conv2d(x, dw, pw, strides=(1, 2), padding="SAME"))
