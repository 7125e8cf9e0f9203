"""The ``gpuconv`` command, called in-process through ``gpuconv.cli.main``.

The GPU tests run on the default headless runtime (EGL; Mesa llvmpipe without a
GPU) and are skipped when no GL context can be created.  llvmpipe compiles each
distinct program at its first draw, so the tests reuse a few shapes.
"""

import argparse
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import gpuconv
from gpuconv import GLUnavailableError, checks, codegen, oracle, registry
from gpuconv.cli import backend as cli_backend
from gpuconv.cli import main
from gpuconv.cli.options import parse_padding, parse_pair, parse_shape

REPO = Path(__file__).resolve().parent.parent
SHADER = ["shader", "conv2d", "--input", "1x7x7x6", "--filter", "3x3x6x4"]


@pytest.fixture(scope="module")
def runtime():
    try:
        import gpuconv

        return gpuconv.get_runtime()
    except GLUnavailableError as exc:
        pytest.skip(f"no OpenGL context: {exc}")


@pytest.fixture(autouse=True)
def default_context_current_again():
    """The commands make runtimes of their own (and release them); a new native runtime leaves
    its context current, so the tests that use the default runtime's moderngl context
    directly (``runtime.ctx.program``) need that one current again: any call of it does that."""
    yield
    try:
        gpuconv.get_runtime().finish()
    except GLUnavailableError:  # no GL here: nothing to make current
        pass


def error_line(capsys):
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("gpuconv: error: ")
    assert "Traceback" not in err
    return lines[0]


# -- parse helpers -----------------------------------------------------------------


def test_parse_helpers():
    assert parse_shape("1x7x7x6") == (1, 7, 7, 6)
    assert parse_pair("2") == 2 and parse_pair("2x1") == (2, 1)
    assert parse_padding("same") == "SAME" and parse_padding("Valid") == "VALID"
    assert parse_padding("2") == 2
    assert parse_padding("1,0,2,1") == [[1, 0], [2, 1]]
    assert parse_padding("2,1") == [2, 1]  # conv1d's left,right
    for bad in ("1x7x", "", "1x0x3", "ax3"):
        with pytest.raises(argparse.ArgumentTypeError, match="1x7x7x6"):
            parse_shape(bad)
    assert parse_pair("1x2x3") == (1, 2, 3)  # the 3-D ops' depth x height x width
    assert parse_padding("1,1,0,0,2,1") == [[1, 1], [0, 0], [2, 1]]  # the 3-D ops' explicit pads
    with pytest.raises(argparse.ArgumentTypeError, match="one integer, an HxW pair or a DxHxW triple"):
        parse_pair("1x2x3x4")
    for bad in ("1,2,3", "-1", "1,a", "full"):
        with pytest.raises(argparse.ArgumentTypeError, match="top,bottom,left,right"):
            parse_padding(bad)


# -- gpuconv shader ----------------------------------------------------------------


def test_shader_prints_glsl(capsys):
    assert main(SHADER + ["--padding", "same"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("#version 300 es\n")
    assert "void main()" in out


def test_shader_options_reach_the_program(capsys):
    assert main(["shader", "depthwise_conv2d", "--input", "1x6x9x9", "--filter", "3x2x6x2",
                 "--data-format", "nchw", "--strides", "2x1", "--padding", "1,0,2,1",
                 "--bias", "--activation", "prelu"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("#version 300 es\n")
    assert "DepthwiseConv2DProgram" in out and "(NCHW)" in out
    assert "strides 2x1" in out and "pads top 1 bottom 0 left 2 right 1 (EXPLICIT)" in out
    assert "uniform sampler2D bias;" in out and "uniform sampler2D preluActivationWeights;" in out


def test_shader_annotate(capsys, runtime):
    assert main(SHADER + ["--padding", "same", "--strides", "2", "--annotate"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == "#version 300 es"
    assert lines[1].startswith("//")
    assert "top 1, bottom 1, left 1, right 1" in out  # SAME with stride 2: ceil(7/2)=4 -> pad 2 split 1+1
    assert "6 per group = 4 (vec4 part) + 2 (remainder)" in out
    assert "x 49x6 R, W 54x4 R, output 16x4 R (rows x cols)" in out
    assert "1x4x4x4" in out
    # An annotated dump is still a valid program.
    runtime.ctx.program(vertex_shader=codegen.vertex_source(), fragment_shader=out).release()


def test_shader_line_numbers(capsys):
    assert main(SHADER + ["--line-numbers"]) == 0
    numbered = capsys.readouterr().out.splitlines()
    assert main(SHADER) == 0
    plain_lines = capsys.readouterr().out.splitlines()
    assert len(numbered) == len(plain_lines)
    width = len(str(len(plain_lines)))
    assert numbered[0] == f"{1:>{width}} | #version 300 es"
    for n, (num, plain) in enumerate(zip(numbered, plain_lines), 1):
        assert num == f"{n:>{width}} | {plain}".rstrip()
    # With --annotate, the comment lines get no number: numbers stay those of the compiled program.
    assert main(SHADER + ["--line-numbers", "--annotate"]) == 0
    both = capsys.readouterr().out.splitlines()
    assert both[0] == numbered[0]
    assert both[1].startswith(" " * width + " | //")
    assert both[-1] == numbered[-1]


SEPARABLE = ["shader", "separable_conv2d", "--input", "1x7x7x3", "--filter", "3x3x3x2",
             "--pointwise-filter", "1x1x6x8", "--padding", "same"]


def _programs(out):
    """Split a separable dump at its '// ---- program 2 of 2' line."""
    first, marker, second = out.partition("\n// ---- program 2 of 2")
    assert marker, out[:200]
    return first, second.split("\n", 1)[1].lstrip("\n")


def test_shader_separable_fuses_its_epilogue_after_the_pointwise_step(capsys):
    """--bias and --activation (as Keras's SeparableConv2D): in the pointwise program, 8 channels."""
    assert main(SEPARABLE + ["--bias", "--activation", "prelu"]) == 0
    depthwise, pointwise = _programs(capsys.readouterr().out)
    assert "bias" not in depthwise and "preluActivationWeights" not in depthwise
    assert "uniform sampler2D bias;" in pointwise and "uniform sampler2D preluActivationWeights;" in pointwise
    expected = gpuconv.shader_sources("separable_conv2d", (1, 7, 7, 3), (3, 3, 3, 2),
                                      pointwise_filter_shape=(1, 1, 6, 8), padding="SAME",
                                      bias=np.zeros(8, np.float32), activation="prelu",
                                      prelu_weights=np.zeros(8, np.float32))
    assert pointwise.strip() == expected[1].strip()
    assert main(SEPARABLE + ["--residual"]) == 0  # the output's shape: 1x7x7x8
    depthwise, pointwise = _programs(capsys.readouterr().out)
    assert "residual" not in depthwise and "uniform sampler2D residual;" in pointwise
    assert "residual 1x7x7x8 -> 1x7x7x8" in pointwise


def test_shader_separable_prints_both_programs(capsys, runtime):
    assert main(SEPARABLE) == 0
    out = capsys.readouterr().out
    depthwise, pointwise = _programs(out)
    expected = gpuconv.shader_sources("separable_conv2d", (1, 7, 7, 3), (3, 3, 3, 2),
                                      pointwise_filter_shape=(1, 1, 6, 8), padding="SAME")
    assert (depthwise.strip(), pointwise.strip()) == tuple(source.strip() for source in expected)
    assert "DepthwiseConv2DProgram: x 1x7x7x3, W 3x3x3x2 -> 1x7x7x6" in depthwise
    assert "Conv2DProgram: x 1x7x7x6, W 1x1x6x8 -> 1x7x7x8" in pointwise
    # --annotate annotates each program after its own #version line; each still compiles.
    assert main(SEPARABLE + ["--annotate"]) == 0
    depthwise, pointwise = _programs(capsys.readouterr().out)
    assert "program 1 of 2: depthwise" in depthwise and "channel multiplier: 2" in depthwise
    assert "program 2 of 2: pointwise 1x1 conv2d" in pointwise
    assert "1x1x6x8 (1 x 1 x in_channels*channel_multiplier x out_channels)" in pointwise
    assert "6 per group = 4 (vec4 part) + 2 (remainder)" in pointwise
    for source in (depthwise, pointwise):
        assert source.splitlines()[0] == "#version 300 es" and source.splitlines()[1].startswith("// ---")
        runtime.ctx.program(vertex_shader=codegen.vertex_source(), fragment_shader=source).release()
    # --line-numbers numbers each program from 1, as its compiler does.
    assert main(SEPARABLE + ["--line-numbers"]) == 0
    depthwise, pointwise = _programs(capsys.readouterr().out)
    for source in (depthwise, pointwise):
        assert source.lstrip().startswith("1 | #version 300 es")


@pytest.mark.parametrize("extra, needles", [
    ([], ["x 1x1x20x3, W 1x3x3x4 -> 1x1x9x4 (NHWC); strides 1x2", "left 0 right 0 (VALID)"]),
    (["--padding", "2,1"], ["-> 1x1x11x4 (NHWC)", "pads top 0 bottom 0 left 2 right 1 (EXPLICIT)"]),
    (["--padding", "1", "--dim-rounding-mode", "ceil"], ["-> 1x1x11x4", "left 1 right 1 (NUMBER)"]),
])
def test_shader_conv1d(capsys, extra, needles):
    assert main(["shader", "conv1d", "--input", "1x20x3", "--filter", "3x3x4", "--strides", "2"] + extra) == 0
    out = capsys.readouterr().out
    assert out.startswith("#version 300 es\n")
    for needle in needles:
        assert needle in out


def test_shader_conv1d_channels_first_and_dilation(capsys):
    assert main(["shader", "conv1d", "--input", "3x20", "--filter", "3x3x4", "--data-format", "ncw",
                 "--dilations", "2", "--padding", "same", "--annotate"]) == 0
    out = capsys.readouterr().out
    assert "x 1x3x1x20, W 1x3x3x4 -> 1x4x1x20 (NCHW); strides 1x1, dilations 1x2" in out
    assert "run as a conv2d of height 1" in out


def test_shader_output_file(tmp_path, capsys):
    target = tmp_path / "conv.frag"
    assert main(SHADER + ["--output", str(target)]) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    text = target.read_text()
    assert text.startswith("#version 300 es\n") and "void main()" in text


@pytest.mark.parametrize("argv, needle", [
    (["shader", "conv2d", "--input", "1x7x", "--filter", "3x3x6x4"], "--input"),
    (["shader", "conv2d", "--input", "1x7x7x6", "--filter", "3x3xx4"], "--filter"),
    (["shader", "conv2d", "--input", "1x7x7x6", "--filter", "3x3x6x4", "--strides", "1x2x3"], "--strides"),
    (["shader", "conv2d", "--input", "1x7x7x6", "--filter", "3x3x6x4", "--padding", "1,2"], "--padding"),
    (["shader", "conv4d", "--input", "1x7x7x6", "--filter", "3x3x6x4"], "conv4d"),
    (["shader", "conv3d", "--input", "1x7x7x6", "--filter", "3x3x6x4"], "filter must be rank 5"),
    # the gradient, transposed and 3-D ops: their options by name, each refused for another op
    (["shader", "conv2d_transpose", "--input", "1x4x4x6", "--filter", "3x3x3x6"],
     "conv2d_transpose needs --output-shape"),
    (["shader", "conv2d_backprop_filter", "--input", "1x7x7x3", "--dy", "1x5x5x6"],
     "conv2d_backprop_filter needs --filter-shape"),
    (["shader", "conv2d_backprop_input", "--filter", "3x3x3x6", "--dy", "1x5x5x6"],
     "conv2d_backprop_input needs --input-shape"),
    (["shader", "conv2d_backprop_input", "--input-shape", "1x7x7x3", "--filter", "3x3x3x6"],
     "conv2d_backprop_input needs --dy"),
    (["shader", "conv2d_backprop_filter", "--input", "1x7x7x3", "--filter", "3x3x3x6", "--dy", "1x5x5x6"],
     "--filter is an option of conv2d, "),
    (["shader", "conv2d_backprop_input", "--input", "1x7x7x3", "--input-shape", "1x7x7x3", "--filter", "3x3x3x6",
      "--dy", "1x5x5x6"], "not of conv2d_backprop_input (it takes --input-shape, --filter, --dy)"),
    (SHADER + ["--output-shape", "1x7x7x6"], "--output-shape is an option of conv2d_transpose, conv3d_transpose only"),
    (SHADER + ["--dy", "1x5x5x4"], "--dy is an option of conv2d_backprop_input, "),
    (["shader", "conv3d", "--input", "1x5x5x5x2", "--filter", "3x3x3x2x4", "--strides", "2x1"],
     "--strides 2x1: conv3d takes one integer or depth x height x width"),
    (["shader", "conv3d", "--input", "1x5x5x5x2", "--filter", "3x3x3x2x4", "--padding", "1,0,2,1"],
     "front,back,top,bottom,left,right"),
    (["shader", "conv3d", "--input", "1x5x5x5x2", "--filter", "3x3x3x2x4", "--data-format", "nhwc"],
     "NDHWC or NCDHW"),
    (["shader", "conv3d", "--input", "1x5x5x5x2", "--filter", "3x3x3x2x4", "--algorithm", "packed"],
     "--algorithm packed: conv3d runs its direct program only"),
    (SHADER + ["--strides", "1x2x2"], "--strides 1x2x2: conv2d takes one integer or height x width"),
    (SHADER + ["--padding", "1,1,0,0,2,1"], "top,bottom,left,right"),
    (["shader", "conv2d_backprop_filter", "--input", "1x7x7x3", "--filter-shape", "3x3x3x6", "--dy", "1x5x5x6",
      "--bias"], "--bias is an option of conv2d, depthwise_conv2d, separable_conv2d, conv2d_transpose only"),
    (["shader", "conv2d_backprop_input", "--input-shape", "1x7x7x3", "--filter", "3x3x3x6", "--dy", "1x4x4x6"],
     "dy must have shape (1, 5, 5, 6)"),
    (["shader", "conv2d", "--input", "1x7x7x6"], "--filter"),
    (["shader", "conv2d", "--input", "1x7x7x6", "--filter", "3x3x5x4"], "in_channels"),
    (["shader", "depthwise_conv2d", "--input", "1x7x7x6", "--filter", "3x3x6x1", "--strides", "2",
      "--dilations", "2"], "dilations"),  # conv2d takes both (as TF's conv2d); depthwise does not
    (["shader", "depthwise_conv2d", "--input", "1x7x7x6", "--filter", "3x3x6x1", "--groups", "2"],
     "--groups"),
    (["run", "conv2d", "--input", "missing.npy", "--filter", "w.npy"], "missing.npy"),
    # the newer ops: options they do not have are refused by name
    (["shader", "separable_conv2d", "--input", "1x7x7x3", "--filter", "3x3x3x2"], "--pointwise-filter"),
    (SEPARABLE[:8] + ["--pointwise-filter", "1x1x5x8"], "[1, 1, 6, out_channels], got (1, 1, 5, 8)"),
    (SEPARABLE + ["--dim-rounding-mode", "ceil"], "--dim-rounding-mode"),
    (SHADER + ["--pointwise-filter", "1x1x4x4"], "--pointwise-filter is an option of separable_conv2d only"),
    (["shader", "conv1d", "--input", "1x20x3", "--filter", "3x3x4", "--strides", "2x1"],
     "--strides 2x1: conv1d takes one integer"),
    (["shader", "conv1d", "--input", "1x20x3", "--filter", "3x3x4", "--padding", "1,0,2,1"],
     "left,right"),
    (["shader", "conv1d", "--input", "1x20x3", "--filter", "3x3x4", "--groups", "3"], "--groups"),
    (["shader", "conv1d", "--input", "1x20x3", "--filter", "3x3x4", "--data-format", "nhwc"],
     "NWC or NCW"),
    (["shader", "conv1d", "--input", "1x20x3", "--filter", "3x2x4"], "in_channels"),
    (SHADER + ["--padding", "2,1"], "top,bottom,left,right"),
    (SHADER + ["--data-format", "ncw"], "NHWC or NCHW"),
])
def test_bad_arguments_exit_2_with_one_line(argv, needle, capsys):
    assert main(argv) == 2
    assert needle in error_line(capsys)
    assert capsys.readouterr().out == ""


def test_debug_shows_the_traceback(capsys):
    # --debug adds the traceback and changes nothing else: the same exit code and error line.
    argv = ["shader", "conv2d", "--input", "1x7x7x6", "--filter", "3x3x5x4"]
    assert main(argv) == 2
    plain = error_line(capsys)
    assert main(["--debug"] + argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "Traceback (most recent call last)" in captured.err and "ValueError" in captured.err
    assert captured.err.strip().splitlines()[-1] == plain and "in_channels" in plain


def test_no_gl_exits_3(monkeypatch, tmp_path, capsys):
    def unavailable():
        raise GLUnavailableError("gpuconv could not create an OpenGL context: install libegl1")

    monkeypatch.setattr(cli_backend, "make_runtime", lambda *args, **kwargs: unavailable())
    assert main(["info"]) == 3
    assert "install libegl1" in error_line(capsys)


def test_help(capsys):
    for argv in (["--help"], ["shader", "--help"], ["run", "--help"], ["selftest", "--help"],
                 ["random", "--help"], ["info", "--help"], ["demo", "--help"]):
        assert main(argv) == 0
        out = capsys.readouterr().out
        assert "gpuconv" in out
        if len(argv) > 1:
            assert "example:\n  gpuconv " + argv[0] in out
        else:  # every subcommand is listed, and the examples include random
            for command in ("shader", "run", "selftest", "random", "info", "demo"):
                assert command in out
            assert "gpuconv random --count" in out
    assert main(["shader", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    for op in registry.OPS:
        assert op in out
    assert "--pointwise-filter" in out and "NWC or NCW" in out


# -- GPU: run, selftest, info, demo --------------------------------------------------


def test_run_check(tmp_path, capsys, runtime):
    rng = np.random.default_rng(7)
    x = rng.uniform(-1, 1, (2, 7, 7, 6)).astype(np.float32)
    w = rng.uniform(-1, 1, (3, 3, 6, 4)).astype(np.float32)
    b = rng.uniform(-1, 1, 4).astype(np.float32)
    for name, array in (("x", x), ("w", w), ("b", b)):
        np.save(tmp_path / f"{name}.npy", array)
    out_file = tmp_path / "y.npy"
    argv = ["run", "conv2d", "--input", str(tmp_path / "x.npy"), "--filter", str(tmp_path / "w.npy"),
            "--padding", "same", "--strides", "2", "--bias", str(tmp_path / "b.npy"),
            "--activation", "relu", "--output", str(out_file), "--check"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "2x4x4x4" in out and " ms" in out
    assert "max abs error" in out and "PASS" in out
    y = np.load(out_file)
    assert y.dtype == np.float32
    expected = oracle.conv2d(x, w, 2, "SAME", bias=b, activation="relu")
    np.testing.assert_allclose(y, expected, rtol=0, atol=1e-5)
    # The same call with an impossible tolerance fails the check: exit 1.
    assert main(argv + ["--tolerance", "1e-300"]) == 1
    assert "FAIL" in capsys.readouterr().out


def test_run_separable_and_conv1d_check(tmp_path, capsys, runtime):
    rng = np.random.default_rng(8)
    arrays = {
        "x": rng.uniform(-1, 1, (1, 3, 7, 7)), "dw": rng.uniform(-1, 1, (3, 3, 3, 2)),
        "pw": rng.uniform(-1, 1, (1, 1, 6, 8)), "x1": rng.uniform(-1, 1, (2, 3, 20)),
        "w1": rng.uniform(-1, 1, (3, 3, 4)),
    }
    for name, array in arrays.items():
        np.save(tmp_path / f"{name}.npy", array.astype(np.float32))
    path = lambda name: str(tmp_path / f"{name}.npy")
    assert main(["run", "separable_conv2d", "--input", path("x"), "--filter", path("dw"),
                 "--pointwise-filter", path("pw"), "--data-format", "nchw", "--padding", "same",
                 "--output", path("y"), "--check"]) == 0
    out = capsys.readouterr().out
    assert "filter 3x3x3x2 then 1x1x6x8 -> 1x8x7x7" in out and "PASS" in out
    expected = oracle.separable_conv2d(*(arrays[k].astype(np.float32) for k in ("x", "dw", "pw")),
                                       padding="SAME", data_format="NCHW")
    np.testing.assert_allclose(np.load(path("y")), expected, rtol=0, atol=1e-5)
    assert main(["run", "conv1d", "--input", path("x1"), "--filter", path("w1"), "--data-format", "ncw",
                 "--strides", "2", "--padding", "2,1", "--output", path("y1"), "--check"]) == 0
    out = capsys.readouterr().out
    assert "2x3x20, filter 3x3x4 -> 2x4x11" in out and "PASS" in out
    expected = oracle.conv1d(arrays["x1"].astype(np.float32), arrays["w1"].astype(np.float32), stride=2,
                             padding=[2, 1], data_format="NCW")
    np.testing.assert_allclose(np.load(path("y1")), expected, rtol=0, atol=1e-5)
    assert main(["run", "separable_conv2d", "--input", path("x"), "--filter", path("dw")]) == 2
    assert "--pointwise-filter" in error_line(capsys)


def test_selftest_quick(capsys, runtime):
    assert main(["selftest", "--quick"]) == 0
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    assert lines[0].split()[:3] == ["op", "x", "filter"]
    assert lines[-1].startswith(f"selftest: {sum(c.quick for c in checks.SELFTEST_CASES)} passed, 0 failed")
    assert "FAIL" not in captured.out


def test_selftest_matrix_covers_the_brief():
    cases = checks.SELFTEST_CASES
    assert 30 <= len(cases) <= 80 and 8 <= sum(c.quick for c in cases) <= 22

    def depth(c):
        return c.plan().geometry.in_channels

    def pairs(value):
        return value if isinstance(value, tuple) else (value, value)

    # the gradient, transposed and 3-D ops: each padding form, strides, dilations, both data
    # formats (NDHWC and NCDHW for 3-D), with and without the batch, the fused epilogue of conv2d_transpose
    newer = [c for c in cases if registry.get(c.op).forward or registry.get(c.op).spatial == 3]
    assert {c.data_format for c in newer} == {"NHWC", "NCHW", "NDHWC", "NCDHW"}
    assert {c.padding if isinstance(c.padding, str) else type(c.padding).__name__ for c in newer} \
        >= {"SAME", "VALID", "int", "list"}
    assert {max(pairs(c.dilations)) for c in newer} >= {1, 2, 3}
    assert any(len(c.x) == 3 for c in newer if c.op.startswith("conv2d"))  # no batch
    assert any(len(c.x) == 4 for c in newer if c.op.startswith("conv3d"))
    assert {c.bias for c in newer if c.op == "conv2d_transpose"} == {True, False}
    assert {c.activation for c in newer if c.op == "conv2d_transpose"} >= {"relu", "prelu"}

    assert {depth(c) for c in cases} >= set(range(1, 10))
    assert {op for op in registry.OPS} == {c.op for c in cases} == {c.op for c in cases if c.quick}
    assert {max(pairs(c.strides)) for c in cases} >= {1, 2, 3}
    assert {max(pairs(c.dilations)) for c in cases} >= {1, 2, 3}
    assert not any(max(pairs(c.strides)) > 1 and max(pairs(c.dilations)) > 1 for c in cases)
    assert {c.padding if isinstance(c.padding, str) else type(c.padding).__name__ for c in cases} \
        >= {"SAME", "VALID", "int", "list"}
    assert {c.data_format for c in cases} == {"NHWC", "NCHW", "NWC", "NCW", "NDHWC", "NCDHW"}
    assert {c.x[0] for c in cases} >= {1, 3}
    assert any(len(c.x) == 2 for c in cases if c.op == "conv1d")  # no batch
    assert {type(c.padding).__name__ for c in cases if c.op == "conv1d"} >= {"str", "int", "list"}
    assert {c.op for c in cases if c.strides != 1} == set(registry.OPS)
    assert any(c.filter[:2] == (1, 1) for c in cases)
    assert any(c.filter[0] != c.filter[1] for c in cases)
    assert {c.filter[3] for c in cases if c.op == "depthwise_conv2d"} >= {1, 2, 3}


def test_info(capsys, runtime):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert f"renderer:         {runtime.info()['renderer']}" in out
    assert "moderngl:" in out and "GLSL dialect:" in out and "context backend:" in out


def test_demo(capsys, runtime):
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert runtime.info()["renderer"] in out
    assert "1x64x64x16" in out and "1x64x64x32" in out and "median of 5" in out
    assert out.strip().splitlines()[-1] == "PASS"


def test_python_m_gpuconv_help():
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    done = subprocess.run([sys.executable, "-m", "gpuconv", "--help"], capture_output=True, text=True,
                          env=env, cwd=REPO, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "usage: gpuconv" in done.stdout and "selftest" in done.stdout
    done = subprocess.run([sys.executable, "-m", "gpuconv", "shader", "conv2d", "--input", "1x7x"],
                          capture_output=True, text=True, env=env, cwd=REPO, timeout=60)
    assert done.returncode == 2
    assert done.stderr.startswith("gpuconv: error: argument --input") and "Traceback" not in done.stderr


def test_shader_and_run_take_an_algorithm(tmp_path, capsys):
    from gpuconv.cli import main

    assert main(["shader", "conv2d", "--input", "1x9x9x6", "--filter", "3x3x6x4", "--algorithm", "packed",
                 "--annotate"]) == 0
    out = capsys.readouterr().out
    assert "PackedConv2DProgram" in out and "layout(location = 7) out vec4 result7;" in out
    rng = np.random.default_rng(0)
    np.save(tmp_path / "x.npy", rng.uniform(-1, 1, (1, 9, 9, 6)).astype(np.float32))
    np.save(tmp_path / "w.npy", rng.uniform(-1, 1, (3, 3, 6, 4)).astype(np.float32))
    for algorithm in ("direct", "packed"):
        assert main(["run", "conv2d", "--input", str(tmp_path / "x.npy"), "--filter", str(tmp_path / "w.npy"),
                     "--algorithm", algorithm, "--check"]) == 0
