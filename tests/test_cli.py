"""The ``gpuconv`` command, called in-process through ``gpuconv.cli.main``.

The GPU tests run on the default headless runtime (EGL; Mesa llvmpipe without a
GPU) and are skipped when no GL context can be created.  llvmpipe compiles each
distinct program at its first draw, so the tests reuse a few shapes.
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gpuconv import GLUnavailableError, cli, codegen, oracle
from gpuconv.cli import main, parse_padding, parse_pair, parse_shape

REPO = Path(__file__).resolve().parent.parent
SHADER = ["shader", "conv2d", "--input", "1x7x7x6", "--filter", "3x3x6x4"]


@pytest.fixture(scope="module")
def runtime():
    try:
        import gpuconv

        return gpuconv.get_runtime()
    except GLUnavailableError as exc:
        pytest.skip(f"no OpenGL context: {exc}")


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
    for bad in ("1x7x", "", "1x0x3", "ax3"):
        with pytest.raises(Exception, match="1x7x7x6"):
            parse_shape(bad)
    with pytest.raises(Exception):
        parse_pair("1x2x3")
    with pytest.raises(Exception):
        parse_padding("1,2")


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
    assert "x 49x6, W 54x4, output 16x4 (rows x cols)" in out
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
    (["shader", "conv3d", "--input", "1x7x7x6", "--filter", "3x3x6x4"], "conv3d"),
    (["shader", "conv2d", "--input", "1x7x7x6"], "--filter"),
    (["shader", "conv2d", "--input", "1x7x7x6", "--filter", "3x3x5x4"], "in_channels"),
    (["shader", "conv2d", "--input", "1x7x7x6", "--filter", "3x3x6x4", "--strides", "2",
      "--dilations", "2"], "dilations"),
    (["shader", "depthwise_conv2d", "--input", "1x7x7x6", "--filter", "3x3x6x1", "--groups", "2"],
     "--groups"),
    (["run", "conv2d", "--input", "missing.npy", "--filter", "w.npy"], "missing.npy"),
])
def test_bad_arguments_exit_2_with_one_line(argv, needle, capsys):
    assert main(argv) == 2
    assert needle in error_line(capsys)
    assert capsys.readouterr().out == ""


def test_debug_shows_the_traceback():
    with pytest.raises(ValueError, match="in_channels"):
        main(["--debug", "shader", "conv2d", "--input", "1x7x7x6", "--filter", "3x3x5x4"])


def test_no_gl_exits_3(monkeypatch, tmp_path, capsys):
    def unavailable():
        raise GLUnavailableError("gpuconv could not create an OpenGL context: install libegl1")

    monkeypatch.setattr(cli, "get_runtime", unavailable)
    assert main(["info"]) == 3
    assert "install libegl1" in error_line(capsys)


def test_help(capsys):
    for argv in (["--help"], ["shader", "--help"], ["run", "--help"], ["selftest", "--help"],
                 ["info", "--help"], ["demo", "--help"]):
        assert main(argv) == 0
        out = capsys.readouterr().out
        assert "gpuconv" in out
        if len(argv) > 1:
            assert "example:\n  gpuconv " + argv[0] in out


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


def test_selftest_quick(capsys, runtime):
    assert main(["selftest", "--quick"]) == 0
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    assert lines[0].split()[:3] == ["op", "x", "filter"]
    assert lines[-1].startswith(f"selftest: {sum(c.quick for c in cli.SELFTEST_CASES)} passed, 0 failed")
    assert "FAIL" not in captured.out


def test_selftest_matrix_covers_the_brief():
    cases = cli.SELFTEST_CASES
    assert 30 <= len(cases) <= 60 and 8 <= sum(c.quick for c in cases) <= 12

    def depth(c):
        return c.x[3] if c.data_format == "NHWC" else c.x[1]

    def pairs(value):
        return value if isinstance(value, tuple) else (value, value)

    assert {depth(c) for c in cases} >= set(range(1, 10))
    assert {op for op in cli.OPS} == {c.op for c in cases}
    assert {max(pairs(c.strides)) for c in cases} >= {1, 2, 3}
    assert {max(pairs(c.dilations)) for c in cases} >= {1, 2, 3}
    assert not any(max(pairs(c.strides)) > 1 and max(pairs(c.dilations)) > 1 for c in cases)
    assert {c.padding if isinstance(c.padding, str) else type(c.padding).__name__ for c in cases} \
        >= {"SAME", "VALID", "int", "list"}
    assert {c.data_format for c in cases} == {"NHWC", "NCHW"}
    assert {c.x[0] for c in cases} >= {1, 3}
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
