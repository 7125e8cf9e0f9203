"""Issue 10's command-line defects, each with a test that failed before its fix, and the new
command-line options (--backend, --gl, --max-draw-buffers, --max-texture-size, --validate,
--compare-native, info's generic keys); the op table and the module boundaries.

GPU tests use the default headless runtime and skip without GL; the browser test skips
without Chromium/Playwright; the real --validate test skips without glslangValidator.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List

import numpy as np
import pytest

import gpuconv
from gpuconv import GLUnavailableError, checks, cli, registry
from gpuconv.cli import backend as cli_backend
from gpuconv.cli import main
from gpuconv.cli.info import info_lines

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def runtime():
    try:
        return gpuconv.get_runtime()
    except GLUnavailableError as exc:
        pytest.skip(f"no OpenGL context: {exc}")


@pytest.fixture(autouse=True)
def default_context_current_again():
    """The commands make (and release) runtimes of their own; make the default one's context
    current again for tests that use its moderngl context directly."""
    yield
    try:
        gpuconv.get_runtime().finish()
    except GLUnavailableError:
        pass


def error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("gpuconv: error: ")
    return lines[0]


@pytest.fixture
def files(tmp_path):
    """x.npy (1x6x6x3) and w.npy (3x3x3x2) in tmp_path; returns a path maker."""
    rng = np.random.default_rng(5)
    np.save(tmp_path / "x.npy", rng.uniform(-1, 1, (1, 6, 6, 3)).astype(np.float32))
    np.save(tmp_path / "w.npy", rng.uniform(-1, 1, (3, 3, 3, 2)).astype(np.float32))
    return lambda name: str(tmp_path / name)


def run_argv(path, *extra: str) -> List[str]:
    return ["run", "conv2d", "--input", path("x.npy"), "--filter", path("w.npy"), "--padding", "same", *extra]


# -- 1: --output names the file written; a directory is refused ------------------------------------------


def test_run_output_writes_exactly_the_file_it_names(files, capsys, runtime):
    assert main(run_argv(files, "--output", files("y.txt"))) == 0
    out = capsys.readouterr().out
    assert f"-> {files('y.txt')}" in out
    assert os.path.exists(files("y.txt")) and not os.path.exists(files("y.txt.npy"))
    y = np.load(files("y.txt"))
    assert y.shape == (1, 6, 6, 2) and y.dtype == np.float32


def test_run_output_refuses_a_directory(files, tmp_path, capsys):
    target = tmp_path / "out"
    target.mkdir()
    assert main(run_argv(files, "--output", str(target))) == 2
    line = error_line(capsys)
    assert "--output" in line and "is a directory" in line
    assert not (tmp_path / "out.npy").exists()
    # as `gpuconv shader --output DIR` refuses it
    assert main(["shader", "conv2d", "--input", "1x6x6x3", "--filter", "3x3x3x2", "--output", str(target)]) == 2
    assert "--output" in error_line(capsys)


# -- 2: --debug adds the traceback and changes nothing else ----------------------------------------------


def test_debug_keeps_the_exit_code_and_adds_the_traceback(files, capsys):
    argv = ["run", "conv2d", "--input", files("missing.npy"), "--filter", files("w.npy")]
    assert main(argv) == 2
    plain = error_line(capsys)
    assert "missing.npy" in plain
    assert main(["--debug"] + argv) == 2
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err
    assert err.strip().splitlines()[-1] == plain


def test_debug_keeps_the_codes_of_gl_and_internal_errors(monkeypatch, capsys):
    def no_gl(*args: Any, **kwargs: Any) -> Any:
        raise GLUnavailableError("gpuconv could not create an OpenGL context: test")

    monkeypatch.setattr(cli_backend, "make_runtime", no_gl)
    for debug in ([], ["--debug"]):
        assert main(debug + ["info"]) == 3
        err = capsys.readouterr().err
        assert err.strip().splitlines()[-1] == "gpuconv: error: gpuconv could not create an OpenGL context: test"
        assert ("Traceback" in err) == bool(debug)

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(cli_backend, "make_runtime", broken)
    assert main(["info"]) == 4
    assert "RuntimeError: boom (run again with --debug for the traceback)" in error_line(capsys)
    assert main(["--debug", "info"]) == 4
    err = capsys.readouterr().err
    assert "Traceback" in err and err.strip().splitlines()[-1] == "gpuconv: error: RuntimeError: boom"


# -- 6: options that do nothing are refused ----------------------------------------------------------------

X = np.zeros((1, 5, 5, 3), np.float32)
W = np.zeros((3, 3, 3, 2), np.float32)


@pytest.mark.parametrize("activation, shown", [(None, "linear"), ("relu", "relu"), ("prelu", "prelu")])
@pytest.mark.parametrize("op", ["conv2d", "depthwise_conv2d"])
def test_leakyrelu_alpha_without_leakyrelu_is_refused_by_the_api_and_the_oracle(op, activation, shown):
    kwargs: Dict[str, Any] = dict(activation=activation, leakyrelu_alpha=0.5)
    if activation == "prelu":
        kwargs["prelu_weights"] = np.ones(2 if op == "conv2d" else 6, np.float32)
    message = f"leakyrelu_alpha is only used with activation='leakyrelu', got activation='{shown}'"
    for call in (getattr(gpuconv, op), getattr(gpuconv.oracle, op)):
        with pytest.raises(ValueError, match=re.escape(message)):
            call(X, W, **kwargs)
    with pytest.raises(ValueError, match=re.escape(message)):
        gpuconv.shader_source(op, X.shape, W.shape, **kwargs)
    # with leakyrelu it is the slope; without it the default 0.2
    y = gpuconv.oracle.conv2d(X - 1, np.ones((3, 3, 3, 2)), activation="leakyrelu", leakyrelu_alpha=0.5)
    assert np.allclose(y[0, 2, 2], 0.5 * -27)
    y = gpuconv.oracle.conv2d(X - 1, np.ones((3, 3, 3, 2)), activation="leakyrelu")
    assert np.allclose(y[0, 2, 2], 0.2 * -27)


def test_leakyrelu_alpha_and_tolerance_without_their_option_are_refused_by_the_cli(files, capsys):
    shader = ["shader", "conv2d", "--input", "1x6x6x3", "--filter", "3x3x3x2"]
    assert main(shader + ["--leakyrelu-alpha", "0.5"]) == 2
    assert error_line(capsys).endswith(
        "--leakyrelu-alpha is only used with --activation leakyrelu, got --activation linear")
    assert main(shader + ["--activation", "relu", "--leakyrelu-alpha", "0.5"]) == 2
    assert "got --activation relu" in error_line(capsys)
    assert main(run_argv(files, "--leakyrelu-alpha", "0.5")) == 2
    assert "--leakyrelu-alpha is only used with --activation leakyrelu" in error_line(capsys)
    assert main(run_argv(files, "--prelu-weights", files("w.npy"))) == 2
    assert "--prelu-weights is only used with --activation prelu" in error_line(capsys)
    assert main(run_argv(files, "--tolerance", "1e-3")) == 2
    assert error_line(capsys).endswith("--tolerance is only used with --check")
    # with their option they work
    assert main(shader + ["--activation", "leakyrelu", "--leakyrelu-alpha", "0.5", "--annotate"]) == 0
    assert "activation leakyrelu (alpha 0.5)" in capsys.readouterr().out


# -- 7: --check says how many NaN/inf values the output holds and whether the oracle agrees -------------


def test_run_check_reports_nan_values(files, tmp_path, capsys, runtime):
    x = np.load(files("x.npy"))
    x[0, 2, 3, 1] = np.nan
    np.save(files("x.npy"), x)
    assert main(run_argv(files, "--check")) == 0
    out = capsys.readouterr().out
    expected = gpuconv.oracle.conv2d(x, np.load(files("w.npy")), padding="SAME")
    nans = int(np.isnan(expected).sum())
    assert nans == 9 * 2  # a 3x3 neighbourhood, two output channels
    assert f"check: the output holds {nans} NaN and 0 infinite values (of {expected.size}); " \
           f"the oracle has the same ones at the same positions" in out
    assert out.strip().splitlines()[-1].endswith("PASS")


def test_special_values_says_where_the_oracle_disagrees():
    expected = np.array([1.0, np.nan, np.inf, -np.inf, 2.0])
    assert checks.special_values(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 3.0])) is None
    assert checks.special_values(expected.copy(), expected).endswith(
        "holds 1 NaN and 2 infinite values (of 5); the oracle has the same ones at the same positions")
    result = np.array([np.nan, np.nan, -np.inf, -np.inf, 2.0])
    text = checks.special_values(result, expected)
    assert text == ("the output holds 2 NaN and 2 infinite values (of 5); the oracle disagrees: it holds "
                    "1 NaN and 2 infinite values, and 2 positions differ")
    check = checks.check_result(result, expected)
    assert not check.ok and check.specials == text


# -- 8: the repeat line repeats the failure: every option that changes the outcome ------------------------


class FakeRuntime(gpuconv.BaseRuntime):
    """A runtime that runs nothing (the configurations are judged by a patched run_config)."""

    def __init__(self, kind: str, **options: Any) -> None:
        self.kind = kind
        self.options = options
        self.released = False

    def info(self) -> Dict[str, object]:
        return {"renderer": f"fake {self.kind}", "backend": self.options.get("gl")}

    def upload(self, array, layout):  # pragma: no cover - never called
        raise NotImplementedError

    def draw(self, program, inputs):  # pragma: no cover
        raise NotImplementedError

    def read(self, texture, layout):  # pragma: no cover
        raise NotImplementedError

    def free(self, textures):  # pragma: no cover
        raise NotImplementedError

    def finish(self) -> None:
        pass

    def release(self) -> None:
        self.released = True


@pytest.fixture
def fake_runtimes(monkeypatch):
    made: List[FakeRuntime] = []

    def make(kind: str = "native", *, gl: Any = None, **options: Any) -> FakeRuntime:
        made.append(FakeRuntime(kind, gl=gl, **options))
        return made[-1]

    monkeypatch.setattr(cli_backend, "make_runtime", make)
    return made


def test_the_repeat_line_carries_every_option_that_changes_the_outcome(monkeypatch, capsys, fake_runtimes):
    monkeypatch.setattr(checks, "run_config", lambda config, runtime=None: 3e-4 if config.op == "conv1d" else 0.0)
    argv = ["random", "--count", "12", "--seed", "5", "--tolerance", "1e-4", "--max-draw-buffers", "4",
            "--max-texture-size", "1024", "--gl", "egl"]
    assert main(argv) == 1
    out = capsys.readouterr().out
    repeats = [line.split("repeat: ", 1)[1] for line in out.splitlines() if "repeat: " in line]
    assert repeats and "--tolerance 0.0001" in repeats[0]
    for repeat in repeats:
        words = shlex.split(repeat)
        assert words[:2] == ["gpuconv", "random"]
        again, first = cli.build_parser().parse_args(words[1:]), cli.build_parser().parse_args(argv)
        for name in ("seed", "tolerance", "backend", "gl", "max_draw_buffers", "max_texture_size", "compare_native"):
            assert getattr(again, name) == getattr(first, name), (name, repeat)
        assert again.count == 1
    # the same configuration fails again with the repeat line
    made = len(fake_runtimes)
    assert main(shlex.split(repeats[0])[1:]) == 1
    assert fake_runtimes[made].options == dict(gl="egl", max_draw_buffers=4, max_texture_size=1024)
    assert all(r.released for r in fake_runtimes)


def test_the_repeat_line_names_the_browser_backend_from_the_environment(monkeypatch, capsys, fake_runtimes):
    monkeypatch.setattr(checks, "run_config", lambda config, runtime=None: 1.0)
    monkeypatch.setattr(checks, "run_config_on_both", lambda config, runtime, other: (1.0, 0.5))
    monkeypatch.setenv("GPUCONV_BACKEND", "browser")
    assert main(["random", "--count", "1", "--compare-native", "--gl", "swiftshader"]) == 1
    out = capsys.readouterr().out
    assert "repeat: gpuconv random --seed 0 --start 0 --count 1 --backend browser --gl swiftshader " \
           "--compare-native" in out
    assert "browser-vs-native difference 0.5" in out
    assert [(r.kind, r.options["gl"]) for r in fake_runtimes] == [("browser", "swiftshader"), ("native", None)]
    assert all(r.released for r in fake_runtimes)


# -- 9: LICENSE, README's extras, one banner, clear .npy errors --------------------------------------------


def test_license_ships_in_the_wheel_and_the_sdist():
    text = (REPO / "LICENSE").read_text(encoding="utf-8")
    assert text.lstrip().startswith("Apache License") and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text and "APPENDIX: How to apply the Apache License" in text
    pyproject = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    assert re.search(r'license-files\s*=\s*\[\s*"LICENSE"\s*\]', pyproject)
    sdist = re.search(r"\[tool\.hatch\.build\.targets\.sdist\]\s*include\s*=\s*\[([^\]]*)\]", pyproject)
    assert sdist and '"LICENSE"' in sdist.group(1)


def test_readme_names_the_extras_that_setup_installs():
    setup = (REPO / ".ci" / "setup").read_text(encoding="utf-8")
    extras = set(re.search(r'-e "\.\[([^\]]*)\]"', setup).group(1).split(","))
    readme = " ".join((REPO / "README.md").read_text(encoding="utf-8").split())
    sentence = re.search(r"`\.ci/setup` installs gpuconv \(editable\) with its (.*?) extras", readme)
    assert sentence, "README should say which extras .ci/setup installs"
    assert set(re.findall(r"`(\w+)`", sentence.group(1))) == extras


def test_the_api_and_the_cli_separate_programs_with_the_same_banner(capsys):
    source = gpuconv.shader_source("separable_conv2d", (1, 7, 7, 3), (3, 3, 3, 2), padding="SAME",
                                   pointwise_filter_shape=(1, 1, 6, 8))
    banner = registry.program_banner("separable_conv2d", 2, 2)
    assert banner == "// ---- program 2 of 2: the pointwise 1x1 conv2d, reading program 1's output as x ----"
    assert main(["shader", "separable_conv2d", "--input", "1x7x7x3", "--filter", "3x3x3x2",
                 "--pointwise-filter", "1x1x6x8", "--padding", "same"]) == 0
    out = capsys.readouterr().out
    assert out == source and source.count(banner) == 1


def test_a_file_that_is_no_npy_array_is_named_as_such(files, tmp_path, capsys):
    (tmp_path / "text.npy").write_text("not an array\n")
    assert main(["run", "conv2d", "--input", files("text.npy"), "--filter", files("w.npy")]) == 2
    line = error_line(capsys)
    assert f"--input: {files('text.npy')} is not a .npy file (a single array saved with numpy.save)" in line
    assert "pickle" not in line
    np.savez(tmp_path / "x.npz", x=np.zeros(3))
    assert main(["run", "conv2d", "--input", files("x.npy"), "--filter", files("x.npz")]) == 2
    line = error_line(capsys)
    assert f"--filter: {files('x.npz')} is not a .npy file (a single array saved with numpy.save)" in line
    assert ".npz archive" in line and "NpzFile" not in line


# -- 10: the stride-and-dilation message is true -----------------------------------------------------------


def test_the_stride_and_dilation_messages_are_true():
    # conv1d (a conv2d of height 1) takes both, as TensorFlow's conv1d and gpuconv's conv2d do
    assert gpuconv.shader_source("conv1d", (1, 10, 3), (3, 3, 4), stride=2, dilation=2)
    with pytest.raises(ValueError) as info:
        gpuconv.depthwise_conv2d(X, np.zeros((3, 3, 3, 1), np.float32), strides=2, dilations=2)
    assert "as in TF and TF.js" not in str(info.value)
    # TensorFlow's conv2d takes both, and so does gpuconv's
    assert gpuconv.shader_source("conv2d", (1, 9, 9, 3), (3, 3, 3, 2), strides=2, dilations=2)


# -- the new options -----------------------------------------------------------------------------------------


def test_gl_must_belong_to_the_backend(capsys):
    assert main(["info", "--gl", "swiftshader"]) == 2
    assert "--gl swiftshader is a GL of --backend browser; --backend native takes egl or glfw" in error_line(capsys)
    assert main(["random", "--compare-native"]) == 2
    assert "--compare-native is only used with --backend browser" in error_line(capsys)


def test_a_missing_browser_runtime_exits_3(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "gpuconv.runtimes.browser", None)  # import fails
    assert main(["info", "--backend", "browser"]) == 3
    line = error_line(capsys)
    assert "gpuconv's browser runtime is not available" in line and "gpuconv.runtimes.browser" in line
    monkeypatch.setenv("GPUCONV_BACKEND", "browser")  # the default backend then
    assert main(["demo"]) == 3
    assert "browser runtime is not available" in error_line(capsys)


def test_the_runtime_options_reach_make_runtime(files, fake_runtimes, monkeypatch, capsys):
    monkeypatch.setattr(checks, "run_selftest", lambda cases, seed, tolerance, runtime, progress=None:
                        checks.SelftestReport([], 0, 0.0, tolerance, str(runtime.info()["renderer"])))
    assert main(["selftest", "--quick", "--backend", "browser", "--gl", "angle-egl", "--max-draw-buffers", "4"]) == 0
    assert "on fake browser" in capsys.readouterr().out
    assert fake_runtimes[-1].kind == "browser"
    assert fake_runtimes[-1].options == dict(gl="angle-egl", max_draw_buffers=4)
    assert fake_runtimes[-1].released


def test_info_prints_the_known_keys_then_any_other():
    lines = info_lines({"renderer": "R", "backend": "angle-egl", "max_texture_size": 4096,
                            "layout_texture_size": 2048, "browser_version": "156.0",
                            "extensions": {"EXT_color_buffer_float": True, "EXT_float_blend": False},
                            "cached_programs": 3})
    assert lines == ["renderer:         R",
                     "max texture size: 4096 (layouts use up to 2048)",
                     "context backend:  angle-egl",
                     "browser version:  156.0",
                     "extensions:       EXT_color_buffer_float yes, EXT_float_blend no"]


def test_info_shows_the_native_runtime(capsys, runtime):
    assert main(["info", "--backend", "native", "--gl", "egl"]) == 0
    out = capsys.readouterr().out
    for key in ("renderer", "vendor", "max_texture_size", "max_draw_buffers", "max_texture_image_units"):
        assert str(runtime.info()[key]) in out
    assert "context backend:  egl" in out and "texture units:" in out


def test_shader_takes_the_device_limits(capsys):
    packed = ["shader", "conv2d", "--input", "1x9x9x6", "--filter", "3x3x6x4", "--algorithm", "packed"]
    assert main(packed + ["--max-draw-buffers", "4"]) == 0
    out = capsys.readouterr().out
    assert "layout(location = 3) out vec4 result3;" in out and "result4" not in out
    assert out == gpuconv.shader_source("conv2d", (1, 9, 9, 6), (3, 3, 6, 4), algorithm="packed", max_draw_buffers=4)
    assert main(["shader", "conv2d", "--input", "1x30x30x3", "--filter", "3x3x3x2", "--max-texture-size", "64"]) == 0
    assert capsys.readouterr().out == gpuconv.shader_source("conv2d", (1, 30, 30, 3), (3, 3, 3, 2), max_texture_size=64)


def test_run_takes_the_device_limits(files, capsys, runtime):
    assert main(run_argv(files, "--algorithm", "packed", "--max-draw-buffers", "4", "--max-texture-size", "64",
                         "--check")) == 0
    assert capsys.readouterr().out.strip().endswith("PASS")


def _fake_validate(monkeypatch, outcome: str) -> List[str]:
    """glslangValidator's three outcomes without it: gpuconv.validate's GLSL check and errors replaced."""
    from gpuconv import validate

    seen: List[str] = []

    class GLSLValidationError(ValueError):
        pass

    class GLSLValidatorUnavailableError(RuntimeError):
        pass

    def validate_glsl(source: str, stage: str = "frag") -> None:
        seen.append(stage)
        if outcome == "invalid" and len(seen) == 2:
            raise GLSLValidationError("ERROR: 0:12: 'x' : undeclared identifier")
        if outcome == "missing":
            raise GLSLValidatorUnavailableError("glslangValidator is not installed: apt-get install glslang-tools")

    monkeypatch.setattr(validate, "GLSLValidationError", GLSLValidationError)
    monkeypatch.setattr(validate, "GLSLValidatorUnavailableError", GLSLValidatorUnavailableError)
    monkeypatch.setattr(validate, "validate_glsl", validate_glsl)
    return seen


SEPARABLE = ["shader", "separable_conv2d", "--input", "1x7x7x3", "--filter", "3x3x3x2",
             "--pointwise-filter", "1x1x6x8", "--validate"]


@pytest.mark.parametrize("outcome, code", [("valid", 0), ("invalid", 1), ("missing", 3)])
def test_shader_validate_exit_codes(monkeypatch, capsys, outcome, code):
    seen = _fake_validate(monkeypatch, outcome)
    assert main(SEPARABLE) == code
    captured = capsys.readouterr()
    assert captured.out.startswith("#version 300 es")  # the source is printed either way
    err = captured.err.strip().splitlines()
    if outcome == "valid":
        assert seen == ["frag", "frag"]
        assert err == [f"gpuconv: program {i} of 2: valid GLSL ES 3.00 (glslangValidator)" for i in (1, 2)]
    elif outcome == "invalid":
        assert err == ["gpuconv: program 1 of 2: valid GLSL ES 3.00 (glslangValidator)",
                       "gpuconv: error: --validate: program 2 of 2: ERROR: 0:12: 'x' : undeclared identifier"]
    else:
        assert err == ["gpuconv: error: --validate: glslangValidator is not installed: apt-get install "
                       "glslang-tools"]


def test_shader_validate_with_glslang(capsys):
    validate = pytest.importorskip("gpuconv.validate")
    try:
        validate.validator_version()
    except validate.GLSLValidatorUnavailableError as exc:
        pytest.skip(str(exc))
    assert main(["shader", "conv2d", "--input", "1x7x7x6", "--filter", "3x3x6x4", "--validate"]) == 0
    assert capsys.readouterr().err == "gpuconv: valid GLSL ES 3.00 (glslangValidator)\n"
    assert main(SEPARABLE + ["--algorithm", "packed"]) == 0
    assert capsys.readouterr().err.count("valid GLSL ES 3.00 (glslangValidator)") == 2
    # an annotated or numbered print validates the programs themselves
    assert main(SEPARABLE + ["--line-numbers"]) == 0


def test_random_compares_a_browser_with_native(capsys, runtime):
    code = main(["random", "--backend", "browser", "--compare-native", "--count", "2", "--seed", "3"])
    captured = capsys.readouterr()
    if code == 3:
        pytest.skip(f"no browser runtime: {captured.err.strip()}")
    assert code == 0, captured
    assert re.search(r"largest browser-vs-native difference \S+", captured.out.splitlines()[-1])


# -- one op table; modules that do not import each other the wrong way -------------------------------------


def test_every_part_reads_the_one_op_table():
    ops = set(registry.OPS)
    assert ops == set(checks.OP_WEIGHTS) == {c.op for c in checks.SELFTEST_CASES} == set(registry.SHADER_OPS)
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, type(parser._subparsers._group_actions[0])))
    for command in ("shader", "run"):
        op_action = next(a for a in sub.choices[command]._actions if a.dest == "op")
        assert set(op_action.choices) == ops
    for name, entry in registry.OPS.items():
        assert entry.name == name and entry.gpu is getattr(gpuconv.ops, name)
        assert entry.oracle is getattr(gpuconv.oracle, name)
        assert len(entry.filter_layouts) == len(entry.filters)
        assert entry.arrays[0] == "x" or entry.arrays == ("filter", "dy")  # the backprop_input ops
        assert set(entry.arrays) <= set(entry.leading) and len(entry.leading) - len(entry.arrays) <= 1
        assert entry.pointwise == (len(entry.filters) > 1 and "dy" not in entry.filters)
        assert len(entry.programs) in (0, len(entry.filters))


def test_no_import_cycles():
    code = ("import sys, gpuconv.checks, gpuconv.lifetime, gpuconv.registry; "
            "assert 'gpuconv.cli' not in sys.modules, 'checks imports cli'")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120,
                          env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert done.returncode == 0, done.stderr
    for module, forbidden in (("ops", "registry"), ("checks", "cli"), ("lifetime", "cli"), ("registry", "cli"),
                              ("registry", "checks")):
        source = (REPO / "gpuconv" / f"{module}.py").read_text(encoding="utf-8")
        pattern = rf"^\s*(from \.+{forbidden}\b|from \. import .*\b{forbidden}\b|import gpuconv\.{forbidden})"
        assert not re.search(pattern, source, re.M), (module, forbidden)
