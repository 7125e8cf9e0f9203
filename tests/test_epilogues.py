"""The fused epilogues real models use (issue 20): activations "swish", "hard_swish",
"hard_sigmoid", "gelu" (exact, with the programs' own erf) and "gelu_tanh"; residual= (a tensor of
the output's shape added after the bias, before the activation); bias=/activation= on
separable_conv2d (after the pointwise step, as Keras's SeparableConv2D).

Each on every program family of both targets (WebGL2: direct, packed, im2col + matmul, packed
transpose; WebGPU: blocked, implicit GEMM, naive, vec4 depthwise, input gradient) against the
float64 oracle, NaN/inf against the oracle's limits, erf's accuracy, and PyTorch where it is
importable.  Few shapes: every program compiles once.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import import_crosscheck

import gpuconv
from gpuconv import erf, oracle
from gpuconv.arguments import ACTIVATIONS

NEW = ("swish", "hard_swish", "hard_sigmoid", "gelu", "gelu_tanh")
TOLERANCE = 1e-5


def _rand(rng, *shape, scale=2.0):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def _run(runtime, op, *args, **kwargs):
    """The result of one call and the names of the programs it ran."""
    with gpuconv.profile(runtime) as prof:
        y = getattr(gpuconv, op)(*args, runtime=runtime, **kwargs)
    y = y.numpy() if isinstance(y, gpuconv.Tensor) else y
    return y, [record.program for record in prof.records]


def test_the_new_activations_are_in_the_one_list():
    assert set(NEW) <= set(ACTIVATIONS)
    from gpuconv import cli
    action = next(a for a in cli.build_parser()._subparsers._group_actions[0].choices["run"]._actions
                  if "--activation" in a.option_strings)
    assert tuple(action.choices) == ACTIVATIONS


# ---------------------------------------------------------------------------
# erf


def test_erf_accuracy_against_math_erf():
    """The programs' erf (evaluated in float32 as they do) over a dense float32 grid."""
    x = np.linspace(-6.0, 6.0, 1_200_001, dtype=np.float32)
    x = np.concatenate([x, np.float32(10.0) ** np.arange(-30, 1, dtype=np.float32)])
    got = erf.erf_float32(x).astype(np.float64)
    want = np.array([math.erf(float(v)) for v in x])
    error = np.abs(got - want)
    assert error.max() <= 1.5e-7, f"max abs error {error.max():.3g} at {x[error.argmax()]}"
    relative = error[x != 0] / np.abs(want[x != 0])
    assert relative.max() <= 2.5e-7, f"max relative error {relative.max():.3g}"
    assert np.isnan(erf.erf_float32(np.float32(np.nan)))
    assert erf.erf_float32(np.array([np.inf, -np.inf], np.float32)).tolist() == [1.0, -1.0]


@pytest.mark.parametrize("target", ["webgl2", "webgpu"])
def test_gelu_on_the_gpu_over_a_dense_grid(request, target):
    """gelu(x) = x Phi(x) through an identity 1x1 convolution: the device's erf and exp included."""
    runtime = request.getfixturevalue("runtime" if target == "webgl2" else "webgpu")
    x = np.linspace(-9.0, 9.0, 64 * 128, dtype=np.float32).reshape(1, 64, 128, 1)
    ones = np.ones((1, 1, 1, 1), np.float32)
    y, _ = _run(runtime, "conv2d", x, ones, activation="gelu", algorithm="direct")
    expected = oracle.conv2d(x, ones, activation="gelu")
    # erf's error (2e-7 of Phi), float32's rounding of x Phi(x), exp's on the device
    bound = 4e-7 * np.abs(x) + 1e-30
    excess = np.abs(y - expected) - bound
    assert excess.max() <= 0, f"error over the bound at x = {x.reshape(-1)[excess.argmax()]}"
    # and relative to the value down to x = -4 sqrt 2 (|gelu| > 1e-7; Phi is 0 below): no
    # cancellation in the left tail, where 1 + erf would lose every digit
    kept = (x > -5.6) & (x != 0)
    assert (np.abs(y - expected)[kept] / np.abs(expected[kept])).max() < 2e-5


# ---------------------------------------------------------------------------
# every program family, every new activation, with a bias and a residual

rng0 = np.random.default_rng(20)
X = _rand(rng0, 1, 6, 7, 8)
F = _rand(rng0, 3, 3, 8, 8, scale=0.5)
DW = _rand(rng0, 3, 3, 8, 1)
B = _rand(rng0, 8)
R = _rand(rng0, 1, 6, 7, 8)
XT = _rand(rng0, 1, 3, 4, 8)  # conv2d_transpose: x of stride 2 into R's shape

CONV = ("conv2d", (X, F), dict(padding="SAME"))
DEPTHWISE = ("depthwise_conv2d", (X, DW), dict(padding="SAME"))
TRANSPOSE = ("conv2d_transpose", (XT, F, R.shape), dict(strides=2, padding="SAME"))

FAMILIES = [  # (target, call, algorithm, programs it runs)
    ("webgl2", CONV, "direct", ["Conv2DProgram"]),
    ("webgl2", CONV, "packed", ["PackedConv2DProgram"]),
    ("webgl2", CONV, "im2col", ["Im2ColPackedProgram", "MatMulPackedProgram"]),
    ("webgl2", DEPTHWISE, "direct", ["DepthwiseConv2DProgram"]),
    ("webgl2", DEPTHWISE, "packed", ["PackedDepthwiseConv2DProgram"]),
    ("webgl2", TRANSPOSE, "direct", ["Conv2DDerInputProgram"]),
    ("webgl2", TRANSPOSE, "packed", ["PackedConv2DDerInputProgram"]),
    ("webgl2", TRANSPOSE, "im2col", ["MatMulPackedProgram", "Col2ImProgram"]),
    ("webgpu", CONV, "auto", ["Conv2DBlockedProgram"]),
    ("webgpu", CONV, "direct", ["Conv2DNaiveProgram"]),
    ("webgpu", DEPTHWISE, "auto", ["DepthwiseConv2DVec4Program"]),
    ("webgpu", DEPTHWISE, "direct", ["DepthwiseConv2DProgram"]),  # the naive one, TF.js's name
    ("webgpu", TRANSPOSE, "direct", ["Conv2DDerInputProgram"]),
]
FAMILY_IDS = [f"{t}-{call[0]}-{a}" for t, call, a, _ in FAMILIES]


def _family(request, target):
    return request.getfixturevalue("runtime" if target == "webgl2" else "webgpu")


@pytest.mark.parametrize("activation", NEW)
@pytest.mark.parametrize("target, call, algorithm, programs", FAMILIES, ids=FAMILY_IDS)
def test_activation_bias_and_residual_on_every_family(request, target, call, algorithm, programs, activation):
    runtime = _family(request, target)
    op, args, kwargs = call
    fused = dict(bias=B, residual=R, activation=activation)
    y, ran = _run(runtime, op, *args, **kwargs, **fused, algorithm=algorithm)
    assert [name for name in ran if "Conversion" not in name] == programs or \
        (programs == ["Conv2DBlockedProgram"] and ran == ["Conv2DMMProgram"]), ran
    expected = getattr(oracle, op)(*args, **kwargs, **fused)
    error = oracle.relative_error(y, expected)
    assert error <= TOLERANCE, f"{activation}: relative error {error:.3g}"


def test_webgpu_implicit_gemm_family(webgpu):
    """Conv2DMMProgram (the blocked program does not take an odd channel count)."""
    rng = np.random.default_rng(3)
    x, f, r = _rand(rng, 1, 5, 6, 3), _rand(rng, 3, 3, 3, 5), _rand(rng, 1, 5, 6, 5)
    for activation in NEW:
        y, ran = _run(webgpu, "conv2d", x, f, padding="SAME", residual=r, activation=activation)
        assert ran == ["Conv2DMMProgram"]
        error = oracle.relative_error(y, oracle.conv2d(x, f, padding="SAME", residual=r, activation=activation))
        assert error <= TOLERANCE, f"{activation}: {error:.3g}"


# ---------------------------------------------------------------------------
# NaN and infinities

SPECIAL = np.array([np.nan, np.inf, -np.inf, 1e30, -1e30, 1e5, -1e5, 100, -100, 88, -88, 20, -20, -5, -3, 3,
                    0.0, -0.0, 1e-30, -1e-30], np.float32)


@pytest.mark.parametrize("target, algorithm", [("webgl2", "direct"), ("webgl2", "packed"),
                                               ("webgpu", "auto"), ("webgpu", "direct")])
def test_nan_passes_and_infinities_give_the_oracles_limits(request, target, algorithm):
    runtime = _family(request, target)
    x = np.tile(SPECIAL, 2).reshape(1, 5, 8, 1)
    ones = np.ones((1, 1, 1, 4), np.float32)
    for activation in NEW:
        y, _ = _run(runtime, "conv2d", x, ones, activation=activation, algorithm=algorithm)
        expected = oracle.conv2d(x, ones, activation=activation)
        assert np.array_equal(np.isnan(y), np.isnan(expected)), activation
        finite = ~np.isnan(expected)
        assert np.array_equal(np.isinf(y[finite]), np.isinf(expected[finite])), activation
        with np.errstate(invalid="ignore"):  # inf - inf where both are inf
            close = np.abs(y[finite] - expected[finite]) <= 1e-6 * np.maximum(1.0, np.abs(expected[finite]))
        assert (close | (y[finite] == expected[finite])).all(), (activation, y[finite][~close])


def test_the_oracles_limits():
    y = np.array([np.nan, np.inf, -np.inf])
    for activation in NEW:
        got = oracle.apply_activation(y, activation)
        assert np.isnan(got[0]) and got[2] == 0.0, activation
        assert got[1] == (1.0 if activation == "hard_sigmoid" else np.inf), activation


# ---------------------------------------------------------------------------
# residual: arrays and Tensors, layouts, errors


@pytest.mark.parametrize("target, algorithm", [("webgl2", "direct"), ("webgl2", "packed"), ("webgl2", "im2col"),
                                               ("webgpu", "auto")])
def test_residual_tensor(request, target, algorithm):
    """A Tensor residual is read where it is (converted on the GPU into a packed program's layout)."""
    runtime = _family(request, target)
    residual = gpuconv.to_gpu(R, runtime)
    y, _ = _run(runtime, "conv2d", X, F, padding="SAME", bias=B, residual=residual, activation="hard_swish",
                algorithm=algorithm)
    expected = oracle.conv2d(X, F, padding="SAME", bias=B, residual=R, activation="hard_swish")
    assert oracle.relative_error(y, expected) <= TOLERANCE


@pytest.mark.parametrize("algorithm", ["direct", "packed"])
def test_residual_nchw_and_unbatched(runtime, webgpu, algorithm):
    xn, rn = np.ascontiguousarray(X.transpose(0, 3, 1, 2)), np.ascontiguousarray(R.transpose(0, 3, 1, 2))
    expected = oracle.conv2d(xn[0], F, padding="SAME", data_format="NCHW", residual=rn[0], activation="gelu")
    y = gpuconv.conv2d(xn[0], F, padding="SAME", data_format="NCHW", residual=rn[0], activation="gelu",
                       algorithm=algorithm, runtime=runtime)
    assert y.shape == expected.shape and oracle.relative_error(y, expected) <= TOLERANCE
    if algorithm == "direct":
        y = gpuconv.conv2d(xn[0], F, padding="SAME", data_format="NCHW", residual=rn[0], activation="gelu",
                           runtime=webgpu)
        assert oracle.relative_error(y, expected) <= TOLERANCE


def test_residual_with_grouped_conv_and_a_full_bias(runtime, webgpu):
    rng = np.random.default_rng(5)
    f = _rand(rng, 3, 3, 4, 8)
    full_bias = _rand(rng, 1, 6, 7, 8)
    kwargs = dict(padding="SAME", groups=2, bias=full_bias, residual=R, activation="swish")
    expected = oracle.conv2d(X, f, **kwargs)
    for rt in (runtime, webgpu):
        assert oracle.relative_error(gpuconv.conv2d(X, f, **kwargs, runtime=rt), expected) <= TOLERANCE
    kwargs = dict(strides=2, padding="SAME", bias=full_bias, residual=R, activation="gelu_tanh")
    expected = oracle.conv2d_transpose(XT, F, R.shape, **kwargs)
    for rt in (runtime, webgpu):
        assert oracle.relative_error(gpuconv.conv2d_transpose(XT, F, R.shape, **kwargs, runtime=rt),
                                     expected) <= TOLERANCE


def test_residual_is_added_before_the_activation():
    y = oracle.conv2d(X, F, padding="SAME", bias=B, residual=R, activation="relu6")
    plain = oracle.conv2d(X, F, padding="SAME")
    np.testing.assert_allclose(y, np.clip(plain + B + R, 0, 6), rtol=1e-12, atol=1e-12)


def test_residual_must_have_the_output_shape(runtime):
    with pytest.raises(ValueError, match=r"residual must have the output's shape \(1, 6, 7, 8\)"):
        gpuconv.conv2d(X, F, padding="SAME", residual=R[..., :1], runtime=runtime)
    with pytest.raises(ValueError, match="residual must have the output's shape"):
        oracle.conv2d(X, F, padding="SAME", residual=R[0])
    with pytest.raises(ValueError, match="a Tensor of shape"):
        gpuconv.conv2d(X, F, padding="SAME", residual=gpuconv.to_gpu(R[:, :5], runtime), runtime=runtime)
    with pytest.raises(TypeError, match="residual must have a floating-point dtype"):
        gpuconv.conv2d(X, F, padding="SAME", residual=R.astype(np.int32), runtime=runtime)


def test_shader_source_names_the_residual():
    source = gpuconv.shader_source("conv2d", X.shape, F.shape, padding="SAME", residual=R, activation="gelu")
    assert "getResidual" in source and "erfcTail" in source


# ---------------------------------------------------------------------------
# separable_conv2d: bias, residual and activation after the pointwise step (Keras's SeparableConv2D)


@pytest.mark.parametrize("target, algorithm", [("webgl2", "direct"), ("webgl2", "auto"), ("webgpu", "auto")])
def test_separable_bias_and_activation_after_the_pointwise_step(request, target, algorithm):
    runtime = _family(request, target)
    rng = np.random.default_rng(9)
    dw, pw, bias = _rand(rng, 3, 3, 8, 1), _rand(rng, 1, 1, 8, 4), _rand(rng, 4)
    residual = _rand(rng, 1, 6, 7, 4)
    kwargs = dict(padding="SAME", bias=bias, residual=residual, activation="hard_swish")
    y, ran = _run(runtime, "separable_conv2d", X, dw, pw, **kwargs, algorithm=algorithm)
    assert len(ran) == 2
    expected = oracle.separable_conv2d(X, dw, pw, **kwargs)
    assert oracle.relative_error(y, expected) <= TOLERANCE
    # Keras: activation(pointwise(depthwise(x)) + bias), the bias after the pointwise step
    pointwise = oracle.conv2d(oracle.depthwise_conv2d(X, dw, padding="SAME"), pw)
    keras = oracle.apply_activation(pointwise + bias + residual, "hard_swish")
    np.testing.assert_allclose(expected, keras, rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------------------
# PyTorch's definitions (CI installs torch; skipped locally without it)


def test_against_pytorch(runtime, webgpu):
    torch = import_crosscheck("torch")
    functional = torch.nn.functional
    reference = {
        "swish": functional.silu, "hard_swish": functional.hardswish, "hard_sigmoid": functional.hardsigmoid,
        "gelu": lambda t: functional.gelu(t, approximate="none"),
        "gelu_tanh": lambda t: functional.gelu(t, approximate="tanh"),
    }
    xn = np.ascontiguousarray(X.transpose(0, 3, 1, 2))
    rn = np.ascontiguousarray(R.transpose(0, 3, 1, 2))
    weight = torch.from_numpy(np.ascontiguousarray(F.transpose(3, 2, 0, 1))).double()
    pre = functional.conv2d(torch.from_numpy(xn).double(), weight, torch.from_numpy(B).double(), padding=1)
    pre = pre + torch.from_numpy(rn).double()
    grid = torch.linspace(-12, 12, 10001, dtype=torch.float64)
    for activation, function in reference.items():
        # the oracle's definition is PyTorch's
        np.testing.assert_allclose(oracle.apply_activation(grid.numpy(), activation), function(grid).numpy(),
                                   rtol=1e-12, atol=1e-15)
        expected = function(pre).numpy()
        for rt in (runtime, webgpu):
            y = gpuconv.conv2d(xn, F, padding="SAME", data_format="NCHW", bias=B, residual=rn,
                               activation=activation, runtime=rt)
            assert oracle.relative_error(y, expected) <= TOLERANCE, (activation, rt)


# ---------------------------------------------------------------------------
# the float16 storage bound covers the new activations and a residual


def test_float16_bound_covers_the_new_epilogues(runtime):
    rng = np.random.default_rng(11)
    x, f, r = _rand(rng, 1, 5, 5, 4, scale=1.0), _rand(rng, 3, 3, 4, 4, scale=0.5), _rand(rng, 1, 5, 5, 4)
    kwargs = dict(padding="SAME", residual=r, activation="gelu")
    y = gpuconv.conv2d(x, f, **kwargs, storage="float16", runtime=runtime)
    bound = oracle.float16_error_bound("conv2d", x, f, **kwargs)
    assert np.abs(y - oracle.conv2d(x, f, **kwargs)).max() <= bound


# ---------------------------------------------------------------------------
# the command line


def test_cli_run_with_a_residual_and_a_new_activation(tmp_path, capsys, runtime):
    from gpuconv.cli import main

    for name, array in (("x", X), ("w", F), ("b", B), ("r", R)):
        np.save(tmp_path / f"{name}.npy", array)
    out_file = tmp_path / "y.npy"
    argv = ["run", "conv2d", "--input", str(tmp_path / "x.npy"), "--filter", str(tmp_path / "w.npy"),
            "--padding", "same", "--bias", str(tmp_path / "b.npy"), "--residual", str(tmp_path / "r.npy"),
            "--activation", "gelu", "--output", str(out_file), "--check"]
    assert main(argv) == 0
    assert "PASS" in capsys.readouterr().out
    expected = oracle.conv2d(X, F, padding="SAME", bias=B, residual=R, activation="gelu")
    assert oracle.relative_error(np.load(out_file), expected) <= TOLERANCE
    # a residual of another shape is refused, as the op refuses it
    np.save(tmp_path / "r.npy", R[..., :2])
    assert main(argv) != 0
    assert "residual must have the output's shape" in capsys.readouterr().err
    # an op without a fused epilogue refuses --residual
    assert main(["run", "conv1d", "--input", str(tmp_path / "x.npy"), "--filter", str(tmp_path / "w.npy"),
                 "--residual", str(tmp_path / "r.npy")]) != 0
    assert "--residual is an option of" in capsys.readouterr().err


# ---------------------------------------------------------------------------
# a browser sample: Chromium's WebGL2 (ANGLE over llvmpipe)


@pytest.mark.parametrize("algorithm", ["direct", "packed"])
def test_browser_webgl2_sample(browser, algorithm):
    y = gpuconv.conv2d(X, F, padding="SAME", bias=B, residual=R, activation="gelu", algorithm=algorithm,
                       runtime=browser)
    expected = oracle.conv2d(X, F, padding="SAME", bias=B, residual=R, activation="gelu")
    assert oracle.relative_error(y, expected) <= TOLERANCE
    y = gpuconv.depthwise_conv2d(X, DW, padding="SAME", residual=R, activation="hard_swish", algorithm=algorithm,
                                 runtime=browser)
    expected = oracle.depthwise_conv2d(X, DW, padding="SAME", residual=R, activation="hard_swish")
    assert oracle.relative_error(y, expected) <= TOLERANCE
