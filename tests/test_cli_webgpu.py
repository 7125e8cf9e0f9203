"""The ``gpuconv`` command and the WebGPU target, called in-process through ``gpuconv.cli.main``
as tests/test_cli.py calls it.

``shader --target webgpu`` needs no GPU (and ``--validate`` needs wgpu-py's WGSL front end);
the runtime commands run ``--backend webgpu`` (wgpu-py on Mesa's lavapipe without a GPU) and
skip locally without wgpu-py or a Vulkan adapter (on CI, ``CI`` set, they fail).  Each command
makes its own runtime, so the tests keep to a few small shapes.
"""

from __future__ import annotations

import os
import re
from typing import Any

import numpy as np
import pytest

from gpuconv import GLUnavailableError, checks, cli, registry, validate
from gpuconv.cli import backend as cli_backend
from gpuconv.cli import main
from gpuconv.cli import selftest as cli_selftest
from gpuconv.plan import Plan
from gpuconv.programs import annotate_wgsl
from gpuconv.target import WEBGPU, NotOnTargetError
from gpuconv.webgpu.limits import WebGPULimits
from gpuconv.webgpu.programs import CONV2D_MM_TILES, conv2d_mm_program

SHADER = ["shader", "conv2d", "--input", "1x7x7x6", "--filter", "3x3x6x4", "--target", "webgpu"]

#: one call of each op the WebGPU target runs that `gpuconv shader` takes (shapes only)
SHADER_CALLS = {
    "conv2d": ["conv2d", "--input", "2x9x9x6", "--filter", "3x3x6x6", "--padding", "same", "--strides", "2",
               "--bias", "--activation", "prelu"],
    "depthwise_conv2d": ["depthwise_conv2d", "--input", "1x9x9x8", "--filter", "3x3x8x1", "--padding", "same"],
    "depthwise_conv2d-nchw": ["depthwise_conv2d", "--input", "1x3x9x9", "--filter", "3x3x3x2",
                              "--data-format", "nchw", "--activation", "relu6"],
    "separable_conv2d": ["separable_conv2d", "--input", "1x8x8x3", "--filter", "3x3x3x2",
                         "--pointwise-filter", "1x1x6x4", "--padding", "same"],
    "conv1d": ["conv1d", "--input", "1x20x3", "--filter", "3x3x4", "--strides", "2"],
    "conv2d_transpose": ["conv2d_transpose", "--input", "1x4x4x6", "--filter", "3x3x3x6", "--output-shape",
                         "1x7x7x3", "--strides", "2", "--padding", "same", "--bias", "--activation", "elu"],
}


def error_line(capsys: Any) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.strip().splitlines() if "XDG_RUNTIME_DIR" not in line]  # Mesa's, not ours
    assert len(lines) == 1, err
    assert lines[0].startswith("gpuconv: error: ")
    assert "Traceback" not in err
    return lines[0]


RULE = "// " + "-" * 70


def without_annotations(text: str) -> list[str]:
    """``text``'s lines without the --annotate blocks (three rules each: before, under the title, after)."""
    lines, rules = [], 0
    for line in text.splitlines():
        if line == RULE:
            rules += 1
        elif rules % 3 == 0:
            lines.append(line)
    return lines


def _unavailable(what: str, exc: Exception) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{what} on CI: {exc}")
    pytest.skip(f"{what}: {exc}")


@pytest.fixture(scope="module")
def naga() -> Any:
    try:
        return validate.wgsl_device()
    except validate.WGSLValidatorUnavailableError as exc:
        _unavailable("no WGSL validator", exc)


@pytest.fixture(scope="module")
def webgpu() -> None:
    """A WebGPU adapter answers here (the commands make their own runtimes)."""
    try:
        from gpuconv import WebGPURuntime

        WebGPURuntime().release()
    except GLUnavailableError as exc:
        _unavailable("no WebGPU runtime", exc)


@pytest.fixture
def npy(tmp_path: Any) -> Any:
    """Write ``array`` as tmp_path/name.npy; returns its path."""
    rng = np.random.default_rng(5)

    def save(name: str, shape: tuple[int, ...]) -> str:
        path = tmp_path / f"{name}.npy"
        np.save(path, rng.uniform(-1, 1, shape).astype(np.float32))
        return str(path)

    return save


# -- shader --target webgpu ---------------------------------------------------------------------------------


def test_shader_prints_wgsl_for_target_webgpu(capsys):
    assert main(SHADER + ["--padding", "same"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("// gpuconv ") and "(WGSL)" in out.splitlines()[0]
    assert "@compute @workgroup_size(" in out and "var<storage, read>" in out
    assert "#version" not in out and "void main()" not in out


def test_shader_default_target_is_still_glsl(capsys):
    assert main(SHADER[:-2]) == 0
    assert capsys.readouterr().out.startswith("#version 300 es\n")
    assert main(SHADER[:-1] + ["webgl2"]) == 0
    assert capsys.readouterr().out.startswith("#version 300 es\n")


def test_shader_webgpu_runs_auto_by_default_and_direct_when_asked(capsys):
    # conv2d's default on WebGPU is what the ops run there (TF.js's WebGPU programs), not the naive program
    assert main(SHADER + ["--groups", "2", "--filter", "3x3x3x4"]) == 0  # grouped: the implicit GEMM
    assert "Conv2DMMProgram" in capsys.readouterr().out.splitlines()[0]
    assert main(SHADER + ["--algorithm", "direct"]) == 0
    assert "Conv2DNaiveProgram" in capsys.readouterr().out.splitlines()[0]


def test_shader_webgpu_refuses_webgl2_algorithms(capsys):
    assert main(SHADER + ["--algorithm", "packed"]) == 2
    line = error_line(capsys)
    assert "--algorithm packed" in line and "auto or direct or im2col" in line


def test_shader_webgpu_im2col_prints_both_programs(capsys):
    assert main(SHADER + ["--algorithm", "im2col"]) == 0
    out = capsys.readouterr().out
    assert "Im2ColProgram" in out and "MatMulProgram" in out


@pytest.mark.parametrize("option", [["--max-texture-size", "100"], ["--max-draw-buffers", "4"]])
def test_shader_webgpu_refuses_webgl2_limits(capsys, option):
    assert main(SHADER + option) == 2
    assert option[0] in error_line(capsys)


@pytest.mark.parametrize("name", list(SHADER_CALLS))
def test_shader_webgpu_annotate_and_validate(naga, capsys, name):
    argv = ["shader", *SHADER_CALLS[name], "--target", "webgpu"]
    assert main(argv) == 0
    plain = capsys.readouterr().out
    assert main(argv + ["--annotate", "--validate"]) == 0
    captured = capsys.readouterr()
    out, err = captured.out, captured.err
    programs = 2 if name == "separable_conv2d" else 1
    assert err.count("valid WGSL (naga, through wgpu-py)") == programs, err
    # the annotation is a block of '//' lines after each program's first line: the rest is the plain program
    assert without_annotations(out) == plain.splitlines()
    for label in ("op:", "buffers:", "dispatch:", "loop iterations:", "strides:", "dilations:", "pads:",
                  "padding:", "fused:"):
        assert out.count(f"// {label}") == programs, (label, out)
    assert "(binding 0)" in out and "invocations" in out
    assert "// GEMM:" in out or "// per invocation:" in out
    if programs == 1:  # the annotated program is still valid WGSL
        validate.validate_wgsl(out, pipeline=True)
    if name == "conv2d":
        assert "activation prelu (weights one per channel)" in out and "bias (one per channel)" in out
    if name == "conv1d":
        assert "run as a conv2d of height 1" in out
    if name == "conv2d_transpose":
        assert "// forward x:" in out and "Conv2DDerInputProgram" in out and "dy 1x4x4x6 (binding 0)" in out
    if name == "separable_conv2d":
        assert "program 2 of 2: pointwise" in out


def test_shader_webgpu_line_numbers(capsys):
    assert main(SHADER) == 0
    plain = capsys.readouterr().out.splitlines()
    assert main(SHADER + ["--line-numbers", "--annotate"]) == 0
    lines = capsys.readouterr().out.splitlines()
    numbered = [line for line in lines if line.split("|")[0].strip()]
    assert len(numbered) == len(plain)
    assert re.match(r" *1 \| // gpuconv ", numbered[0]), numbered[0]
    assert all(re.match(r" *\| ", line) for line in lines if line not in numbered)  # the annotation: no number


def test_annotate_wgsl_says_the_gemm_tiling():
    from gpuconv import registry

    g = registry.plan_shapes("conv2d", (2, 9, 9, 8), (3, 3, 8, 12), padding="SAME", algorithm="direct").specs[0]
    for tile in CONV2D_MM_TILES:
        spec = conv2d_mm_program(g.geometry, g.epilogue, WebGPULimits(), tile)
        lines = annotate_wgsl(spec, "conv2d", "filter_height x filter_width x in_channels x out_channels")
        text = "\n".join(lines)
        assert all(line.startswith("//") for line in lines)
        assert f"// GEMM:            {2 * 9 * 9} rows (output pixels) x 12 cols (output channels) x {3 * 3 * 8} " \
               f"depth" in text
        assert (f"tile {tile.tile_m}x{tile.tile_n} (tile_m x tile_n), k-step {tile.tile_k}, "
                f"{tile.per_invocation[0]}x{tile.per_invocation[1]} outputs per invocation, "
                f"{tile.workgroup_bytes} bytes of workgroup memory") in text
        x, y, z = spec.dispatch
        assert f"// dispatch:        {x}x{y}x{z} workgroups" in text
        assert f"of {tile.workgroup[0]}x{tile.workgroup[1]}x1 = {tile.invocations} invocations" in text
        assert f"// loop iterations: {spec.loop_iterations} per invocation" in text


def test_shader_webgpu_validate_reports_nagas_message(naga, capsys, monkeypatch):
    sources = Plan.sources

    def broken(plan: Plan) -> tuple[str, ...]:
        return tuple(source.replace("let ", "lett ", 1) for source in sources(plan))

    monkeypatch.setattr(Plan, "sources", broken)
    assert main(SHADER + ["--validate"]) == 1
    err = capsys.readouterr().err
    assert "gpuconv: error: --validate: not valid WGSL (gpuconv " in err
    assert "parsing error" in err and "Traceback" not in err


def test_shader_webgpu_validate_without_wgpu_exits_3(capsys, monkeypatch):
    def missing() -> None:
        raise validate.WGSLValidatorUnavailableError("validating WGSL needs wgpu-py: pip install 'gpuconv[webgpu]'")

    monkeypatch.setattr(validate, "wgsl_device", missing)
    assert main(SHADER + ["--validate"]) == 3
    assert "pip install 'gpuconv[webgpu]'" in error_line(capsys)


# -- --backend webgpu ---------------------------------------------------------------------------------------


def _not_on_webgpu(case: checks.Case) -> bool:
    """Whether the WebGPU target refuses ``case``'s op while planning it."""
    shapes, extra = registry.shape_call(case.op, case.leading())
    try:
        registry.plan_shapes(case.op, *shapes, target="webgpu", **case.kwargs(), **extra)
    except NotOnTargetError:
        return True
    return False


def test_selftest_quick_backend_webgpu(webgpu, capsys):
    assert main(["selftest", "--quick", "--backend", "webgpu"]) == 0
    out = capsys.readouterr().out
    summary = out.strip().splitlines()[-1]
    assert summary.startswith("selftest: ") and " 0 failed" in summary
    quick = [case for case in checks.SELFTEST_CASES if case.quick]
    not_yet = sum(map(_not_on_webgpu, quick))
    assert f"selftest: {len(quick) - not_yet} passed, 0 failed" in summary
    assert (f", {not_yet} not on the webgpu target yet (" in summary) == bool(not_yet)
    rows = [line for line in out.splitlines() if line.startswith(("conv", "depthwise", "separable"))]
    assert len(rows) == len(quick)
    assert sum(row.endswith("  not on webgpu yet") for row in rows) == not_yet
    assert sum(row.endswith("  PASS") for row in rows) == len(quick) - not_yet
    # every op the WebGPU target runs from the start ran, and passed
    for op in ("conv2d", "depthwise_conv2d", "separable_conv2d", "conv1d", "conv2d_transpose",
               "conv2d_backprop_input", "depthwise_conv2d_backprop_input"):
        assert any(row.startswith(op + " ") and row.endswith("PASS") for row in rows), op


@pytest.fixture
def transpose_not_yet(monkeypatch: Any) -> None:
    """Whichever ops the WebGPU target runs by now, have it refuse the input-gradient program (which
    conv2d_transpose and conv2d_backprop_input run) as one it does not run yet."""
    lower = type(WEBGPU).lower

    def refusing(self: Any, plan: Plan, algorithm: str, limits: Any) -> Plan:
        if any(spec.name == "Conv2DDerInputProgram" for spec in plan.specs):
            raise NotOnTargetError("conv2d_transpose does not run on the WebGPU target yet", "conv2d_transpose",
                                   "webgpu")
        return lower(self, plan, algorithm, limits)

    monkeypatch.setattr(type(WEBGPU), "lower", refusing)


def test_selftest_counts_an_op_not_on_the_target_apart(webgpu, capsys, monkeypatch, transpose_not_yet):
    cases = [case for case in checks.SELFTEST_CASES if case.op in ("conv2d_transpose", "depthwise_conv2d")
             and case.quick]
    monkeypatch.setattr(cli_selftest, "SELFTEST_CASES", tuple(cases))
    assert main(["selftest", "--quick", "--backend", "webgpu"]) == 0
    out = capsys.readouterr().out
    refused = sum(case.op == "conv2d_transpose" for case in cases)
    assert refused and f"selftest: {len(cases) - refused} passed, 0 failed, {refused} not on the webgpu target " \
                      f"yet" in out
    rows = [row for row in out.splitlines() if row.startswith("conv2d_transpose")]
    assert len(rows) == refused and all(row.endswith("  -            not on webgpu yet") for row in rows)


def test_random_counts_an_op_not_on_the_target_apart(webgpu, capsys, transpose_not_yet):
    assert main(["random", "--count", "8", "--seed", "94", "--backend", "webgpu", "--verbose"]) == 0
    out = capsys.readouterr().out
    assert "random: 6 passed, 0 failed, 2 not on the webgpu target yet (conv2d_transpose 2)" in out
    assert out.count("not on webgpu yet #") == 2  # --verbose names them


def test_run_backend_webgpu_checks_and_repeats(webgpu, capsys, npy, tmp_path):
    x, w = npy("x", (1, 9, 9, 6)), npy("w", (3, 3, 6, 8))
    out_path = tmp_path / "y.npy"
    assert main(["run", "conv2d", "--input", x, "--filter", w, "--padding", "same", "--backend", "webgpu",
                 "--check", "--repeat", "2", "--output", str(out_path)]) == 0
    out = capsys.readouterr().out
    assert "-> 1x9x9x8 float32" in out and "check: max abs error" in out and out.strip().endswith("PASS")
    assert "repeat: 2 warm calls" in out
    assert np.load(out_path).shape == (1, 9, 9, 8)


def test_run_backend_webgpu_refuses_packed(webgpu, capsys, npy):
    x, w = npy("x", (1, 5, 5, 3)), npy("w", (3, 3, 3, 2))
    assert main(["run", "conv2d", "--input", x, "--filter", w, "--algorithm", "packed", "--backend", "webgpu"]) == 2
    assert "'auto', 'direct'" in error_line(capsys)


@pytest.mark.parametrize("extra, code, phrase", [
    (["--gl", "egl"], 2, "--backend webgpu takes no --gl"),
    (["--max-texture-size", "1000"], 2, "WebGL2 limits"),
    (["--api", "webgpu"], 2, "--api webgpu is for --backend browser"),
])
def test_runtime_options_webgpu_refuses_in_one_line(webgpu, capsys, npy, extra, code, phrase):
    x, w = npy("x", (1, 5, 5, 3)), npy("w", (3, 3, 3, 2))
    assert main(["run", "conv2d", "--input", x, "--filter", w, "--backend", "webgpu", *extra]) == code
    assert phrase in error_line(capsys)


def test_random_backend_webgpu(webgpu, capsys):
    # (a seed whose calls are of the ops the WebGPU target ran from the start)
    assert main(["random", "--count", "8", "--seed", "127", "--backend", "webgpu"]) == 0
    summary = capsys.readouterr().out.strip().splitlines()[-1]
    assert summary.startswith("random: ") and " 0 failed" in summary


def test_random_backend_webgpu_compare_native(webgpu, capsys):
    try:
        import gpuconv

        gpuconv.get_runtime()
    except GLUnavailableError as exc:
        pytest.skip(f"no native GL to compare with: {exc}")
    assert main(["random", "--count", "4", "--seed", "189", "--backend", "webgpu", "--compare-native"]) == 0
    summary = capsys.readouterr().out.strip().splitlines()[-1]
    assert "largest webgpu-vs-native difference" in summary and " 0 failed" in summary


def test_random_compare_native_needs_another_backend(capsys):
    assert main(["random", "--count", "1", "--backend", "native", "--compare-native"]) == 2
    assert "--backend browser or webgpu" in error_line(capsys)


def test_info_backend_webgpu(webgpu, capsys):
    assert main(["info", "--backend", "webgpu"]) == 0
    out = capsys.readouterr().out
    labels = {line.split(":")[0] for line in out.splitlines()}
    assert {"runtime", "adapter", "WebGPU backend", "features", "target"} <= labels, out
    assert "max compute workgroup storage size:" in out and "(programs use up to 16384)" in out
    assert "max texture size" not in out and "GLSL dialect" not in out
    assert "tuning cache:" in out


def test_demo_warmup_precision_backend_webgpu(webgpu, capsys, npy):
    assert main(["demo", "--backend", "webgpu"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("gpuconv demo: conv2d on ") and out.strip().endswith("PASS")
    assert main(["warmup", "depthwise_conv2d", "--input", "1x8x8x4", "--filter", "3x3x4x1", "--padding", "same",
                 "--backend", "webgpu"]) == 0
    assert "1 program(s) compiled" in capsys.readouterr().out
    assert main(["precision", "conv2d", "--input", "1x6x6x3", "--filter", "3x3x3x2", "--backend", "webgpu"]) == 0
    out = capsys.readouterr().out
    assert "float32  webgpu" in out and "verdict float32: PASS" in out
    assert "float16  webgpu" in out and "verdict float16: PASS" in out and "skipped" not in out
    x, w = npy("x", (1, 6, 6, 3)), npy("w", (3, 3, 3, 2))
    assert main(["run", "conv2d", "--input", x, "--filter", w, "--backend", "webgpu", "--storage", "float16",
                 "--check"]) == 0


def test_gpuconv_backend_env_picks_webgpu(monkeypatch):
    monkeypatch.setenv("GPUCONV_BACKEND", "webgpu")
    args = cli.build_parser().parse_args(["selftest"])
    assert cli_backend.backend_kind(args) == "webgpu"
    assert cli_backend.runtime_options(args) == ["--backend", "webgpu"]


def test_browser_api_webgpu_reaches_the_browser_runtime(monkeypatch):
    made: dict[str, Any] = {}

    def fake(kind: str, **options: Any) -> Any:
        made.update(options, kind=kind)
        raise GLUnavailableError("no browser here")

    monkeypatch.setattr(cli_backend, "make_runtime", fake)
    args = cli.build_parser().parse_args(["selftest", "--backend", "browser", "--api", "webgpu", "--gl",
                                          "swiftshader"])
    with pytest.raises(GLUnavailableError):
        cli_backend.open_runtime(args)
    assert made == {"kind": "browser", "gl": "swiftshader", "api": "webgpu"}
    assert cli_backend.runtime_options(args) == ["--backend", "browser", "--gl", "swiftshader", "--api", "webgpu"]
    made.clear()
    args = cli.build_parser().parse_args(["selftest", "--backend", "browser"])
    with pytest.raises(GLUnavailableError):
        cli_backend.open_runtime(args)
    assert made == {"kind": "browser", "gl": None}  # WebGL2 by default: no api= at all


def test_the_target_names_itself_in_the_help(capsys):
    assert main(["shader", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--target {webgl2,webgpu}" in out and "naga" in out
    assert main(["run", "--help"]) == 0
    assert "--api {webgl2,webgpu}" in capsys.readouterr().out
    assert WEBGPU.name == "webgpu"


def test_an_op_not_on_the_target_is_one_line_in_shader_and_run(webgpu, capsys, npy, transpose_not_yet):
    # the same refusal, whichever ops the target runs by now
    shader = ["shader", *SHADER_CALLS["conv2d_transpose"], "--target", "webgpu"]
    assert main(shader) == 2
    line = error_line(capsys)
    assert "conv2d_transpose does not run on the WebGPU target yet" in line and "leave out --target webgpu" in line
    x, w = npy("x", (1, 4, 4, 6)), npy("w", (3, 3, 3, 6))
    assert main(["run", "conv2d_transpose", "--input", x, "--filter", w, "--output-shape", "1x7x7x3", "--strides",
                 "2", "--padding", "same", "--backend", "webgpu"]) == 2
    assert "conv2d_transpose does not run on the WebGPU target yet" in error_line(capsys)
