"""conv2d and depthwise_conv2d on the real GL path against the float64 oracle.

The configurations cover input depths 1..9 (all remainders mod 4), strides 1-3,
dilations 1-3, SAME/VALID/int/explicit padding with every rounding mode, batch 1
and 3, 1x1 and non-square filters, non-square inputs and multipliers 1-3, with
few enough distinct shapes that llvmpipe's per-program compile stays cheap.
"""

import numpy as np
import pytest

import gpuconv
from helpers import assert_close

CONV2D_CASES = [
    # x (NHWC),        filter,        keyword arguments
    ((1, 7, 7, 1), (3, 3, 1, 2), dict(padding="SAME")),
    ((3, 8, 6, 2), (3, 3, 2, 3), dict(strides=2, padding="VALID")),
    ((1, 9, 7, 3), (2, 3, 3, 4), dict(strides=3, padding="same")),
    ((1, 6, 6, 4), (3, 3, 4, 2), dict(dilations=2, padding="SAME")),
    ((1, 11, 9, 5), (3, 2, 5, 3), dict(dilations=3, padding="VALID")),
    ((3, 7, 7, 6), (1, 1, 6, 5), dict(padding="VALID")),
    ((1, 8, 8, 7), (1, 3, 7, 2), dict(padding=[[1, 2], [0, 3]])),
    ((1, 7, 9, 8), (5, 2, 8, 3), dict(padding=2)),
    ((2, 9, 9, 9), (3, 3, 9, 4), dict(strides=2, padding=1, dim_rounding_mode="ceil")),
    ((1, 9, 9, 5), (3, 3, 5, 2), dict(strides=2, padding=1, dim_rounding_mode="round")),
    ((1, 9, 9, 6), (3, 3, 6, 2), dict(strides=2, padding=1, dim_rounding_mode="floor")),
    ((1, 10, 8, 3), (3, 3, 3, 3), dict(dilations=[1, 2, 1, 1], padding=[[0, 0], [2, 1], [1, 0], [0, 0]])),
    ((2, 9, 10, 2), (2, 2, 2, 3), dict(strides=(1, 3), padding="SAME")),
    ((1, 3, 3, 2), (5, 5, 2, 2), dict(padding="SAME")),              # filter larger than the input
    ((1, 12, 12, 16), (3, 3, 16, 8), dict(strides=[1, 2, 2, 1], padding="SAME")),
]

DEPTHWISE_CASES = [
    ((1, 7, 7, 1), (3, 3, 1, 1), dict(padding="SAME")),
    ((3, 8, 6, 2), (3, 3, 2, 2), dict(strides=2, padding="VALID")),
    ((1, 9, 7, 3), (2, 3, 3, 3), dict(strides=3, padding="SAME")),
    ((1, 9, 9, 4), (3, 3, 4, 1), dict(dilations=3, padding="SAME")),
    ((2, 8, 9, 5), (1, 1, 5, 2), dict(padding="VALID")),
    ((1, 8, 8, 6), (5, 2, 6, 1), dict(padding=[[2, 1], [0, 1]])),
    ((1, 9, 9, 7), (3, 3, 7, 2), dict(strides=2, padding=1, dim_rounding_mode="ceil")),
    ((1, 10, 7, 9), (3, 1, 9, 3), dict(dilations=(2, 1), padding=1)),
]


def _ids(cases):
    return [f"x{'x'.join(map(str, x))}-w{'x'.join(map(str, w))}-{kw}" for x, w, kw in cases]


def _data(rng, *shapes):
    return [rng.uniform(-1, 1, size=shape).astype(np.float32) for shape in shapes]


ALGORITHMS = ["direct", "packed"]  # TF.js's programs, and the fast packed ones


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("x_shape, w_shape, kwargs", CONV2D_CASES, ids=_ids(CONV2D_CASES))
def test_conv2d_matches_oracle(runtime, rng, x_shape, w_shape, kwargs, algorithm):
    x, w = _data(rng, x_shape, w_shape)
    assert_close(gpuconv.conv2d(x, w, algorithm=algorithm, **kwargs), gpuconv.oracle.conv2d(x, w, **kwargs))


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("x_shape, w_shape, kwargs", DEPTHWISE_CASES, ids=_ids(DEPTHWISE_CASES))
def test_depthwise_conv2d_matches_oracle(runtime, rng, x_shape, w_shape, kwargs, algorithm):
    x, w = _data(rng, x_shape, w_shape)
    assert_close(gpuconv.depthwise_conv2d(x, w, algorithm=algorithm, **kwargs),
                 gpuconv.oracle.depthwise_conv2d(x, w, **kwargs))


@pytest.mark.webgl2_only("the packed depthwise program's padding columns")
@pytest.mark.parametrize("strides", [1, 2, 3])  # 3: the program without column reuse
def test_packed_depthwise_keeps_edge_infinities_out_of_the_padding(runtime, rng, strides):
    # the packed program reads a padding column at the nearest input column and selects zero
    # instead: an inf there must give inf (or NaN where +inf meets -inf), as the oracle's sum
    x = rng.uniform(-1, 1, size=(2, 6, 11, 5)).astype(np.float32)
    x[0, :, 0, 1] = np.inf
    x[1, 2:4, -1, 2] = -np.inf
    x[1, :, 0, 4] = np.nan
    w = rng.uniform(0.5, 1, size=(3, 3, 5, 1)).astype(np.float32)  # one sign: inf stays inf
    w[..., 3, :] *= -1
    result = gpuconv.depthwise_conv2d(x, w, strides=strides, padding="SAME", algorithm="packed")
    expected = gpuconv.oracle.depthwise_conv2d(x, w, strides=strides, padding="SAME")
    assert np.array_equal(np.isnan(result), np.isnan(expected))
    assert np.array_equal(result[np.isinf(expected)], expected[np.isinf(expected)])
    finite = np.isfinite(expected)
    assert_close(np.where(finite, result, 0).astype(np.float32), np.where(finite, expected, 0))


def test_depthwise_output_channel_order_is_k_times_multiplier_plus_q(runtime, rng):
    x, w = _data(rng, (1, 5, 5, 3), (3, 3, 3, 2))
    y = gpuconv.depthwise_conv2d(x, w, padding="SAME")
    for k in range(3):
        for q in range(2):
            single = gpuconv.oracle.conv2d(x[..., k:k + 1], w[:, :, k:k + 1, q:q + 1], padding="SAME")
            assert_close(y[..., k * 2 + q:k * 2 + q + 1], single)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("op", ["conv2d", "depthwise_conv2d"])
def test_rank3_input_gives_rank3_result(runtime, rng, op, algorithm):
    x, w = _data(rng, (6, 5, 3), (3, 3, 3, 2))
    y = getattr(gpuconv, op)(x, w, padding="SAME", algorithm=algorithm)
    assert y.ndim == 3
    assert_close(y, getattr(gpuconv.oracle, op)(x, w, padding="SAME"))


@pytest.mark.parametrize("dtype", [np.float16, np.float64])
def test_other_float_dtypes_are_accepted_and_give_float32(runtime, rng, dtype):
    x, w = (a.astype(dtype) for a in _data(rng, (1, 5, 5, 3), (3, 3, 3, 2)))
    y = gpuconv.conv2d(x, w)
    assert y.dtype == np.float32
    assert_close(y, gpuconv.oracle.conv2d(x.astype(np.float32), w.astype(np.float32)))


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_float32_values_survive_the_texture_round_trip_exactly(runtime, rng, algorithm):
    # A 1x1 identity filter must return x bit for bit: the textures and the highp
    # samplers lose nothing (a mediump sampler would round to ~16 bits).
    x = rng.standard_normal((1, 4, 5, 3)).astype(np.float32) * np.float32(1e30)
    y = gpuconv.conv2d(x, np.eye(3, dtype=np.float32).reshape(1, 1, 3, 3), algorithm=algorithm)
    np.testing.assert_array_equal(y, x)


def test_repeated_calls_reuse_the_compiled_program(runtime, rng):
    x, w = _data(rng, (1, 6, 6, 3), (3, 3, 3, 2))
    gpuconv.conv2d(x, w, runtime=runtime)
    cached = runtime.compiled_programs
    for _ in range(3):
        gpuconv.conv2d(x, w, runtime=runtime)
    assert runtime.compiled_programs == cached


@pytest.mark.webgl2_only("texture layouts (max_texture_size)")
@pytest.mark.parametrize("op, w_shape", [("conv2d", (3, 3, 3, 4)), ("depthwise_conv2d", (3, 3, 3, 1))])
def test_tensors_too_large_for_one_texture_row_are_wrapped(runtime, rng, monkeypatch, op, w_shape):
    # With the limit lowered to 80 texels, x (2x20x30x3: 1200 rows of 3, or 40 of 90) and the output
    # no longer fit as rows x channels and are wrapped into squarish textures.
    monkeypatch.setattr(runtime, "max_texture_size", 80)
    x, w = _data(rng, (2, 20, 30, 3), w_shape)
    source = gpuconv.shader_source(op, x.shape, w.shape, padding="SAME", max_texture_size=80)
    assert "wrapped into" in source
    y = getattr(gpuconv, op)(x, w, padding="SAME", algorithm="direct", runtime=runtime)
    assert_close(y, getattr(gpuconv.oracle, op)(x, w, padding="SAME"))


@pytest.mark.webgl2_only("a GL context belongs to one thread; a WebGPURuntime is shared")
def test_a_runtime_refuses_calls_from_another_thread(runtime, rng):
    import threading

    x, w = _data(rng, (1, 5, 5, 3), (3, 3, 3, 2))
    errors = []

    def call():
        try:
            gpuconv.conv2d(x, w, runtime=runtime)
        except RuntimeError as exc:
            errors.append(str(exc))

    thread = threading.Thread(target=call)
    thread.start()
    thread.join()
    assert errors and "belongs to the thread that created it" in errors[0]


@pytest.mark.webgl2_only("the packed programs' GLSL")
def test_packed_programs_share_one_source_across_shapes(runtime, rng):
    # A family is the op, the epilogue and (at stride 1, where columns are reused)
    # the filter width; every other size is a uniform.
    sources = {gpuconv.shader_source("conv2d", x, w, padding=p, algorithm="packed")
               for x, w, p in [((1, 7, 7, 3), (3, 3, 3, 2), "SAME"), ((2, 30, 9, 17), (5, 3, 17, 9), 1)]}
    assert len(sources) == 1
    strided = {gpuconv.shader_source("conv2d", x, w, strides=2, algorithm="packed")
               for x, w in [((1, 7, 7, 3), (3, 3, 3, 2)), ((2, 30, 9, 17), (1, 5, 17, 9))]}
    assert len(strided) == 1
    x, w = _data(rng, (1, 9, 10, 5), (3, 3, 5, 6))
    gpuconv.conv2d(x, w, padding="SAME", runtime=runtime)
    cached = len(runtime._programs)
    x, w = _data(rng, (2, 13, 6, 7), (2, 3, 7, 3))  # a new shape of the same family: no new program
    assert_close(gpuconv.conv2d(x, w, padding=[[1, 0], [2, 1]], runtime=runtime),
                 gpuconv.oracle.conv2d(x, w, padding=[[1, 0], [2, 1]]))
    assert len(runtime._programs) == cached


@pytest.mark.webgl2_only("the packed programs' refusals")
def test_packed_is_refused_where_it_cannot_run(runtime, rng):
    x, w = _data(rng, (1, 6, 6, 4), (3, 3, 2, 4))
    with pytest.raises(ValueError, match="algorithm='packed' cannot run this call: grouped"):
        gpuconv.conv2d(x, w, groups=2, algorithm="packed")
    with pytest.raises(ValueError, match="algorithm must be one of"):
        gpuconv.conv2d(x, w, groups=2, algorithm="fast")
    assert_close(gpuconv.conv2d(x, w, groups=2), gpuconv.oracle.conv2d(x, w, groups=2))  # auto: direct


@pytest.mark.webgl2_only("the packed programs' texture sampling")
def test_packed_sampling_at_texel_centres_is_exact_on_wide_textures(runtime, rng):
    # x packs to an 8000-texel-wide texture and W to 9 * 2 * 4 = 72 rows: normalised
    # coordinates (col + 0.5) / cols must still land on the right texel everywhere.
    x, w = _data(rng, (1, 3, 4000, 8), (3, 3, 8, 4))
    y = gpuconv.conv2d(x, w, padding="SAME", algorithm="packed", runtime=runtime)
    assert_close(y, gpuconv.oracle.conv2d(x, w, padding="SAME"))
    # the depthwise program samples so too: x 4000 x 2 texels wide, W 9 rows
    y = gpuconv.depthwise_conv2d(x, w[:, :, :, :1], padding="SAME", algorithm="packed", runtime=runtime)
    assert_close(y, gpuconv.oracle.depthwise_conv2d(x, w[:, :, :, :1], padding="SAME"))


# The packed conv2d's flat rows (no column reuse, no dilation across: each filter row's taps are
# one run of texels): without bounds checks (no tap on the horizontal padding) and with them.
FLAT_ROW_CASES = [
    # x (NHWC),         filter,        keyword arguments,                                    checked
    ((2, 8, 8, 5), (2, 2, 5, 6), dict(strides=2, padding="VALID"), False),          # space-to-depth
    ((1, 12, 16, 7), (4, 4, 7, 9), dict(strides=4, padding="VALID"), False),
    ((1, 9, 9, 4), (1, 1, 4, 3), dict(strides=2, padding="VALID"), False),          # a strided 1x1
    ((2, 8, 10, 6), (3, 3, 6, 5), dict(strides=2, padding="SAME"), True),           # padding right only
    ((1, 9, 11, 3), (3, 2, 3, 4), dict(strides=(2, 3), padding=[[1, 2], [2, 1]]), True),
    ((1, 7, 11, 9), (3, 9, 9, 2), dict(dilations=(2, 1), padding="SAME"), True),  # wider than 7, stride 1
]


@pytest.mark.webgl2_only("the packed programs' flat rows")
@pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
@pytest.mark.parametrize("x_shape, w_shape, kwargs, checked", FLAT_ROW_CASES, ids=_ids([c[:3] for c in FLAT_ROW_CASES]))
def test_packed_flat_rows_match_oracle(runtime, rng, x_shape, w_shape, kwargs, checked, data_format):
    x, w = _data(rng, x_shape, w_shape)
    if data_format == "NCHW":
        x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    kwargs = dict(kwargs, data_format=data_format)
    spec = gpuconv.ops.plan_conv2d(x, w, algorithm="packed", **kwargs).specs[0]
    assert (spec.flat_row, spec.flat_row_checked) == (True, checked)
    assert_close(gpuconv.conv2d(x, w, algorithm="packed", runtime=runtime, **kwargs),
                 gpuconv.oracle.conv2d(x, w, **kwargs))


@pytest.mark.webgl2_only("the packed programs' flat rows")
def test_packed_flat_rows_fuse_the_epilogue_once(runtime, rng):
    # bias, PReLU and a residual on a strided flat-row program, checked and unchecked
    for w_shape, padding in [((3, 3, 6, 7), "SAME"), ((2, 2, 6, 7), "VALID")]:
        x, w, bias, prelu = _data(rng, (2, 10, 10, 6), w_shape, (7,), (7,))
        plain = gpuconv.oracle.conv2d(x, w, strides=2, padding=padding)
        residual = rng.uniform(-1, 1, plain.shape).astype(np.float32)
        kwargs = dict(strides=2, padding=padding, bias=bias, activation="prelu", prelu_weights=prelu,
                      residual=residual)
        assert gpuconv.ops.plan_conv2d(x, w, algorithm="packed", **kwargs).specs[0].flat_row
        assert_close(gpuconv.conv2d(x, w, algorithm="packed", runtime=runtime, **kwargs),
                     gpuconv.oracle.conv2d(x, w, **kwargs))


@pytest.mark.webgl2_only("the packed programs' texture sampling")
def test_packed_flat_rows_sample_exactly_on_wide_textures(runtime, rng):
    # x packs to 8000 texels a row; a flat row steps its coordinate by k / cols from each pixel's first tap
    x, w = _data(rng, (1, 3, 4000, 8), (3, 3, 8, 4))
    assert gpuconv.ops.plan_conv2d(x, w, strides=2, padding="SAME", algorithm="packed").specs[0].flat_row_checked
    y = gpuconv.conv2d(x, w, strides=2, padding="SAME", algorithm="packed", runtime=runtime)
    assert_close(y, gpuconv.oracle.conv2d(x, w, strides=2, padding="SAME"))
