"""Half-float storage on the WebGPU target: storage="float16" keeps every buffer (inputs,
intermediates, the output) as IEEE halves, two to a 32-bit word, read with WGSL's core
unpack2x16float and written with pack2x16float (no shader-f16); the arithmetic stays float32.

Every WebGPU program family runs with half-float storage and is checked as tests/test_float16.py
checks the WebGL2 target: against the oracle's prediction (``gpuconv.oracle.<op>(...,
storage="float16")``) within :func:`gpuconv.oracle.float16_prediction_tolerance`, against the
float64 oracle within :func:`gpuconv.oracle.float16_error_bound`, and every value a half.  Then:
WebGPU and WebGL2 agree; a sample in Chromium's WebGPU; the packing itself (upload, a program's
write, read-back) against NumPy's float16 on NaN, infinities, signed zeros, subnormal halves, ties
and values beyond half's range (infinity, as a WebGL2 R16F texture stores them).
"""

from __future__ import annotations

import numpy as np
import pytest
from test_float16 import _oracle_kwargs, check_float16

import gpuconv
from gpuconv import oracle


def _n(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


def _cases(rng):
    """name -> (op, args, kwargs, the WebGPU programs the call runs)."""
    return {
        "blocked": ("conv2d", (_n(rng, 1, 9, 9, 16), _n(rng, 3, 3, 16, 8)),
                    dict(padding="SAME", bias=_n(rng, 8), activation="relu"), ["Conv2DBlockedProgram"]),
        "blocked-residual-prelu": ("conv2d", (_n(rng, 1, 7, 10, 6), _n(rng, 3, 3, 6, 4)),
                                   dict(padding="SAME", residual=_n(rng, 1, 7, 10, 4), activation="prelu",
                                        prelu_weights=_n(rng, 4)), ["Conv2DBlockedProgram"]),
        "gemm": ("conv2d", (_n(rng, 1, 6, 8, 8), _n(rng, 3, 3, 6, 5)),
                 dict(padding="SAME", data_format="NCHW", activation="prelu", prelu_weights=_n(rng, 5)),
                 ["Conv2DMMProgram"]),
        "im2col": ("conv2d", (_n(rng, 1, 9, 9, 16), _n(rng, 3, 3, 16, 8)),
                   dict(padding="SAME", bias=_n(rng, 8), algorithm="im2col"), ["Im2ColProgram", "MatMulProgram"]),
        "naive": ("conv2d", (_n(rng, 1, 7, 7, 5), _n(rng, 3, 3, 5, 3)),  # an odd output: a half-used last word
                  dict(activation="sigmoid", bias=_n(rng, 3), algorithm="direct"), ["Conv2DNaiveProgram"]),
        "conv1d": ("conv1d", (_n(rng, 2, 20, 6), _n(rng, 3, 6, 5)), dict(padding="SAME"), None),
        "depthwise-vec4": ("depthwise_conv2d", (_n(rng, 1, 9, 9, 8), _n(rng, 3, 3, 8, 2)),
                           dict(padding="SAME", strides=2, bias=_n(rng, 16)), ["DepthwiseConv2DVec4Program"]),
        "depthwise-naive": ("depthwise_conv2d", (_n(rng, 1, 7, 7, 3), _n(rng, 3, 3, 3, 1)),
                            dict(padding="SAME"), ["DepthwiseConv2DProgram"]),
        "separable": ("separable_conv2d", (_n(rng, 1, 9, 9, 8), _n(rng, 3, 3, 8, 2), _n(rng, 1, 1, 16, 12)),
                      dict(padding="SAME"), ["DepthwiseConv2DVec4Program", "Conv2DBlockedProgram"]),
        "backprop-input": ("conv2d_backprop_input", ((1, 9, 9, 5), _n(rng, 3, 3, 5, 7), _n(rng, 1, 7, 7, 7)), {},
                           ["Conv2DDerInputProgram"]),
        "transpose": ("conv2d_transpose", (_n(rng, 1, 5, 5, 4), _n(rng, 3, 3, 6, 4), (1, 10, 10, 6)),
                      dict(strides=2, padding="SAME", bias=_n(rng, 6), activation="elu"), ["Conv2DDerInputProgram"]),
        "depthwise-backprop-input": ("depthwise_conv2d_backprop_input",
                                     ((1, 9, 9, 4), _n(rng, 3, 3, 4, 2), _n(rng, 1, 7, 7, 8)), {},
                                     ["DepthwiseConv2DDerInputProgram"]),
        "backprop-filter": ("conv2d_backprop_filter", (_n(rng, 1, 9, 9, 5), (3, 3, 5, 7), _n(rng, 1, 7, 7, 7)), {},
                            ["Conv2DDerFilterProgram"]),
        # WebGL2 sums this one in slices (each partial sum a half); WebGPU reduces in workgroup memory
        "backprop-filter-long": ("conv2d_backprop_filter",
                                 (_n(rng, 2, 50, 50, 2), (3, 3, 2, 3), _n(rng, 2, 48, 48, 3)), {},
                                 ["Conv2DDerFilterProgram"]),
        "depthwise-backprop-filter": ("depthwise_conv2d_backprop_filter",
                                      (_n(rng, 1, 9, 9, 4), (3, 3, 4, 2), _n(rng, 1, 7, 7, 8)), {},
                                      ["DepthwiseConv2DDerFilterProgram"]),
        "conv3d": ("conv3d", (_n(rng, 1, 5, 6, 6, 3), _n(rng, 3, 3, 3, 3, 4)), {}, ["Conv3DProgram"]),
        "conv3d-backprop-input": ("conv3d_backprop_input",
                                  ((1, 5, 6, 6, 3), _n(rng, 3, 3, 3, 3, 4), _n(rng, 1, 3, 4, 4, 4)), {},
                                  ["Conv3DDerInputProgram"]),
        "conv3d-backprop-filter": ("conv3d_backprop_filter",
                                   (_n(rng, 1, 5, 6, 6, 3), (3, 3, 3, 3, 4), _n(rng, 1, 3, 4, 4, 4)), {},
                                   ["Conv3DDerFilterProgram"]),
    }


CASES = _cases(np.random.default_rng(1616))


def _run(op, args, kwargs, runtime, **extra):
    return getattr(gpuconv, op)(*args, runtime=runtime, **kwargs, **extra)


@pytest.mark.parametrize("case", list(CASES))
def test_every_family_matches_the_prediction_and_bound(webgpu, case):
    op, args, kwargs, programs = CASES[case]
    with gpuconv.profile(webgpu) as prof:
        result = _run(op, args, kwargs, webgpu, storage="float16")
    if programs is not None:
        assert [record.program for record in prof.records] == programs
    check_float16(result, op, args, kwargs)
    # float32 storage (the default) is far closer to the float64 oracle
    exact = getattr(oracle, op)(*args, **_oracle_kwargs(kwargs))
    plain = _run(op, args, kwargs, webgpu)
    assert np.max(np.abs(plain - exact)) < np.max(np.abs(result - exact)) / 8


@pytest.mark.parametrize("case", ["blocked", "gemm", "im2col", "depthwise-vec4", "separable", "transpose",
                                  "backprop-filter-long", "conv3d"])
def test_webgpu_and_webgl2_agree(webgpu, runtime, case):
    """Both store the same halves; they may differ where the float32 sums (in other orders)
    round to neighbouring halves: within the prediction's tolerance."""
    op, args, kwargs, _ = CASES[case]
    on_webgpu = _run(op, args, kwargs, webgpu, storage="float16")
    on_webgl2 = _run(op, args, kwargs, runtime, storage="float16")
    tolerance = oracle.float16_prediction_tolerance(op, *args, **_oracle_kwargs(kwargs))
    assert float(np.max(np.abs(on_webgpu - on_webgl2))) <= tolerance


@pytest.mark.parametrize("case", ["blocked", "depthwise-vec4", "naive", "backprop-filter"])
def test_browser_webgpu_float16(browser_webgpu, webgpu, case):
    op, args, kwargs, _ = CASES[case]
    result = _run(op, args, kwargs, browser_webgpu, storage="float16")
    check_float16(result, op, args, kwargs)
    native = _run(op, args, kwargs, webgpu, storage="float16")
    assert np.max(np.abs(result - native)) <= oracle.float16_prediction_tolerance(op, *args,
                                                                                   **_oracle_kwargs(kwargs))


# -- the packing itself ------------------------------------------------------------------------

#: Values whose halves are the edge cases: signed zeros, subnormal halves (and values that round
#: into and out of them), ties (to even), the largest half and what rounds past it, the specials.
SPECIAL = np.array([0.0, -0.0, 1.0, -1.5, 1 + 2 ** -11, 1 + 3 * 2 ** -11, 2 ** -24, -2 ** -24, 3 * 2 ** -25,
                    2 ** -25, 2 ** -26, 2 ** -14 - 2 ** -24, 2 ** -14, 5.96e-8, 1e-9, -1e-9, 0.1, -3.3e-6,
                    65504.0, 65519.0, 65520.0, -65520.0, 70000.0, -1e6, 3.4e38, np.inf, -np.inf, np.nan],
                   np.float32)


def _halves(values):
    with np.errstate(over="ignore"):
        return np.asarray(values, np.float32).astype(np.float16).astype(np.float32)


def _same(a, b):
    """Equal bit for bit as float32 (signed zeros told apart), NaN equal to NaN."""
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    return a.shape == b.shape and bool(np.all((a.view(np.uint32) == b.view(np.uint32)) | (np.isnan(a) & np.isnan(b))))


def _copy_program(n, webgpu, inputs, output):
    """Im2ColProgram over a 1 x 1 x n x 1 image with a 1 x 1 filter: a plain copy, each value read
    and written once, its input and output stored as asked (float32 or float16)."""
    from gpuconv.geometry import conv2d_geometry
    from gpuconv.programs.base import ProgramInput
    from gpuconv.webgpu.programs import im2col_program

    spec = im2col_program(conv2d_geometry((1, 1, n, 1), (1, 1, 1, 1), 1, "VALID"), webgpu.limits)
    spec = spec.with_storage("float16")
    from dataclasses import replace

    return replace(spec, inputs=tuple(ProgramInput(i.name, i.layout.stored_as(inputs)) for i in spec.inputs),
                   output=spec.output.stored_as(output))


def _through(webgpu, spec, values, upload_as):
    made = []
    try:
        made.append(webgpu.upload(values.reshape(1, 1, -1, 1), spec.inputs[0].layout, upload_as))
        made += webgpu.draw(spec, {"x": made[0]}, spec.storage)
        return webgpu.read(made[-1], spec.output).reshape(-1)
    finally:
        webgpu.free(made)


def test_upload_and_read_round_to_halves_as_numpy(webgpu):
    from gpuconv.webgpu.layout import BufferLayout

    layout = BufferLayout((SPECIAL.size,))
    before = webgpu.memory()["bytes"]
    buffer = webgpu.upload(SPECIAL, layout, "float16")
    try:
        assert webgpu.memory()["bytes"] - before == SPECIAL.size * 2
        assert buffer.buffer.size == layout.stored_as("float16").byte_size == 64  # padded to 16 bytes
        assert _same(webgpu.read(buffer, layout).reshape(-1), _halves(SPECIAL))
    finally:
        webgpu.free([buffer])


@pytest.mark.parametrize("size", [SPECIAL.size, SPECIAL.size - 1])  # an odd count: the last word's high half
def test_a_program_writes_halves_as_numpy_rounds(webgpu, size):
    """float32 in, halves out: pack2x16float's rounding (ties to even), and the program's own
    infinity beyond 65520 and NaN, where WGSL leaves pack2x16float indeterminate."""
    values = np.concatenate([SPECIAL, np.random.default_rng(2).standard_normal(2000).astype(np.float32)
                             * np.float32(10.0) ** np.arange(-8, 6, dtype=np.float32).repeat(143)[:2000]])[:size + 2000]
    spec = _copy_program(values.size, webgpu, "float32", "float16")
    assert _same(_through(webgpu, spec, values, "float32"), _halves(values))


def test_a_program_reads_halves_exactly(webgpu):
    """halves in, float32 out: unpack2x16float of every special half, subnormals included."""
    every_half = np.arange(2 ** 16, dtype=np.uint16).view(np.float16).astype(np.float32)
    spec = _copy_program(every_half.size, webgpu, "float16", "float32")
    assert _same(_through(webgpu, spec, every_half, "float16"), every_half)


def test_halves_through_a_whole_call(webgpu, runtime):
    """Specials through conv2d with a 1 x 1 filter of 2s: 40000 * 2 is infinity in a half (as the
    oracle's prediction has it), NaN stays NaN, a subnormal half doubles.  WebGL2 gives the same
    halves, except that llvmpipe's GL saturates a program's output beyond half's range at 65504
    where the oracle (and an uploaded value, rounded on the host) is infinity."""
    x = np.array([1.0, -0.5, 40000.0, -40000.0, np.nan, np.inf, 3e-8, 2 ** -24, 0.25, 7.0], np.float32)
    x = x.reshape(1, 1, 10, 1)
    w = np.full((1, 1, 1, 1), 2.0, np.float32)
    y = gpuconv.conv2d(x, w, runtime=webgpu, storage="float16")
    with np.errstate(over="ignore", invalid="ignore"):
        assert _same(y, _halves(_halves(x) * 2))
        assert _same(y, oracle.conv2d(x, w, storage="float16"))
    webgl2 = gpuconv.conv2d(x, w, runtime=runtime, storage="float16")
    beyond = np.isfinite(x) & (np.abs(x) * 2 > 65520)
    assert _same(y[~beyond], webgl2[~beyond])
    assert np.all(np.isinf(y[beyond])) and np.all(np.abs(webgl2[beyond]) >= 65504)


def test_repeated_calls_write_into_cleared_words(webgpu):
    """Halves are ORed into their words: every call's buffers must start from zero, even where the
    device hands out memory a freed buffer held (wgpu-native on lavapipe did, before each output of
    halves was cleared)."""
    op, args, kwargs, _ = CASES["im2col"]
    first = _run(op, args, kwargs, webgpu, storage="float16")
    for _ in range(2):
        _run(op, tuple(-a if isinstance(a, np.ndarray) else a for a in args), kwargs, webgpu, storage="float16")
        assert _same(_run(op, args, kwargs, webgpu, storage="float16"), first)


def test_runtime_default_storage_and_override(rng):
    x, w = _n(rng, 1, 8, 8, 8), _n(rng, 3, 3, 8, 4)
    with gpuconv.WebGPURuntime(storage="float16") as halves:
        assert halves.storage == "float16"
        by_default = gpuconv.conv2d(x, w, runtime=halves)
        assert _same(by_default, _halves(by_default))
        overridden = gpuconv.conv2d(x, w, runtime=halves, storage="float32")
        assert not _same(overridden, _halves(overridden))
    with pytest.raises(ValueError, match="storage must be"):
        gpuconv.WebGPURuntime(storage="float8")


def test_the_sources_say_how_they_store(webgpu, rng):
    """A float16 plan's programs bind u32 words (vec2<u32> for vec4s; the scalar result atomic),
    unpack and pack halves in their accessors; float32's bind f32 arrays and never pack."""
    from gpuconv.geometry import conv2d_geometry
    from gpuconv.programs.base import Epilogue
    from gpuconv.webgpu.programs import conv2d_blocked_program, conv2d_naive_program

    g = conv2d_geometry((1, 8, 8, 8), (3, 3, 8, 8), 1, "SAME")
    for make in (conv2d_blocked_program, conv2d_naive_program):
        floats = make(g, Epilogue(), webgpu.limits)
        halves = floats.with_storage("float16")
        assert halves.with_storage("float16") is halves and halves.with_storage("float32") == floats
        text32, text16 = webgpu.target.source(floats), webgpu.target.source(halves)
        for word in ("pack2x16float", "atomic<", "array<u32>", "array<vec2<u32>>"):
            assert word not in text32
        for word in ("unpack2x16float", "pack_halves(" if make is conv2d_blocked_program else "half_bits("):
            assert word in text16
        bindings16 = [line for line in text16.splitlines() if line.startswith("@group")]
        bindings32 = [line for line in text32.splitlines() if line.startswith("@group")]
        assert all("u32>" in line and "f32" not in line for line in bindings16)
        assert all("f32>" in line and "u32" not in line for line in bindings32)
        assert ("atomicOr" in text16) == (make is conv2d_naive_program)
        assert "half-float storage" in text16.splitlines()[0]
    with pytest.raises(ValueError, match="cannot be used with gpuconv Tensors"):
        gpuconv.conv2d(gpuconv.to_gpu(_n(rng, 1, 4, 4, 4), runtime=webgpu), _n(rng, 1, 1, 4, 4),
                       runtime=webgpu, storage="float16")
