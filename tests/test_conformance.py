"""gpuconv.conformance: the suite's coverage and shards, the bounds and the grading (a perturbed
runtime reaches each category when it should), the reports, the command, the exported page,
and the suite itself as parametrized tests (``pytest -n auto`` spreads them over processes).

The quick suite runs on the default runtime; GPUCONV_CONFORMANCE=full runs the full suite here
instead (the README's table comes from ``gpuconv conformance`` on each implementation)."""

import json
import os

import numpy as np
import pytest

import gpuconv
from gpuconv import conformance, registry
from gpuconv.arguments import ACTIVATIONS
from gpuconv.cli import main
from gpuconv.conformance import bounds as B
from gpuconv.conformance.page import build_page, page_for
from gpuconv.runtimes import GLUnavailableError
from gpuconv.target import WEBGL2, WEBGPU

SUITE = os.environ.get("GPUCONV_CONFORMANCE", "quick")
TARGET = WEBGPU if os.environ.get("GPUCONV_BACKEND") == "webgpu" else WEBGL2


# ---------------------------------------------------------------------------
# the suite as data


@pytest.mark.parametrize("target", [WEBGL2, WEBGPU], ids=lambda t: t.name)
def test_suite_covers_what_the_issue_lists(target):
    suite = conformance.cases("full", target)
    names = [c.name for c in suite]
    assert len(names) == len(set(names))
    assert {c.op for c in suite} == set(registry.OPS)
    for op, entry in registry.OPS.items():
        if entry.algorithms:
            ran = {c.algorithm for c in suite if c.op == op}
            assert {a for a in target.algorithms if a != "auto"} & ran, op
    algorithms = {c.algorithm for c in suite} - {None}
    assert algorithms == {a for a in target.algorithms if a != "auto"}
    channels = {c.case.x[-1] % 4 for c in suite if c.op == "conv2d" and c.case.data_format == "NHWC"}
    assert channels == {0, 1, 2, 3}
    assert {c.case.data_format for c in suite} >= {"NHWC", "NCHW", "NWC", "NCW", "NDHWC", "NCDHW"}
    assert any(len(c.case.x) == 4 and c.case.x[0] > 1 for c in suite)
    paddings = {type(c.case.padding).__name__ for c in suite} | {c.case.padding for c in suite
                                                                 if isinstance(c.case.padding, str)}
    assert paddings >= {"SAME", "VALID", "int", "list"}
    assert any(c.case.strides != 1 for c in suite) and any(c.case.dilations != 1 for c in suite)
    assert any(c.case.groups > 1 for c in suite)
    assert any(registry.get(c.op).multiplier and c.case.filter[-1] > 1 for c in suite)
    assert {c.case.activation for c in suite} >= set(ACTIVATIONS)
    assert any(c.case.bias for c in suite)
    assert {c.values for c in suite} == set(conformance.VALUES)
    assert any(c.limit is not None for c in suite)
    assert any(c.op == "conv2d" and c.case.filter[:3] == (7, 7, 512) for c in suite)
    assert {c.group for c in suite} == set(conformance.GROUPS) - ({"float16"} if target is WEBGPU else set())
    assert (target is WEBGPU) != any(c.storage == "float16" for c in suite)


def test_quick_is_a_subset():
    full, quick = conformance.cases("full"), conformance.cases("quick")
    assert {c.name for c in quick} < {c.name for c in full} and 20 <= len(quick) <= 60
    with pytest.raises(ValueError, match="suite must be"):
        conformance.cases("fast")


@pytest.mark.parametrize("count", [1, 2, 3, 4, 7])
def test_shards_union_is_the_suite(count):
    suite = conformance.cases("full")
    shards = [conformance.shard(suite, (i, count)) for i in range(1, count + 1)]
    names = [c.name for part in shards for c in part]
    assert sorted(names) == sorted(c.name for c in suite) and len(names) == len(set(names))
    assert max(map(len, shards)) - min(map(len, shards)) <= 1


@pytest.mark.parametrize("text", ["0/4", "5/4", "2", "a/b", "1/0"])
def test_bad_shards_are_refused(text):
    with pytest.raises(ValueError, match="shard"):
        conformance.parse_shard(text)


def test_limit_cases_take_the_device_size():
    case = next(c for c in conformance.cases("full") if c.limit is not None)
    axis, offset = case.limit
    assert case.resolved(2048).case.x[axis] == 2048 + offset
    assert case.resolved(10 ** 6).case.x[axis] == conformance.suite.LIMIT_CAP + offset
    with pytest.raises(ValueError, match="resolve"):
        conformance.case_arrays(case)


def test_case_data_depend_on_the_name_only():
    case = conformance.cases("quick")[3]
    a, _ = conformance.case_arrays(case, seed=0)
    b, _ = conformance.case_arrays(case, seed=0)
    c, _ = conformance.case_arrays(case, seed=1)
    assert all(np.array_equal(x, y) for x, y in zip(a, b) if isinstance(x, np.ndarray))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c) if isinstance(x, np.ndarray))


# ---------------------------------------------------------------------------
# the bounds


def _sequential_float32(x, w):
    """A 1x1 conv2d summed sequentially in float32 (a correct device's simplest order)."""
    products = (x[0, 0, 0, :, None].astype(np.float32) * w[0, 0]).astype(np.float32)
    return np.cumsum(products, axis=0, dtype=np.float32)[-1].reshape(1, 1, 1, -1)


@pytest.mark.parametrize("low", [0.0, -1.0])
def test_bounds_hold_a_float32_sum_and_expected_is_inside_rigorous(low):
    rng = np.random.default_rng(5)
    x = rng.uniform(low, 1, (1, 1, 1, 20000)).astype(np.float32)
    w = rng.uniform(low, 1, (1, 1, 20000, 16)).astype(np.float32)
    bounds = B.float32_bounds("conv2d", (x, w), {"padding": "VALID"})
    assert np.all(bounds.expected <= bounds.rigorous)
    graded = B.grade(_sequential_float32(x, w), bounds)
    assert graded.verdict == B.PASS and graded.ratio_expected < 1
    # a float32 sum that rounds toward zero at every step: within the rigorous bound, beyond the expected one
    y = np.zeros(16, np.float32)
    zero = np.float32(0)
    for k in range(x.shape[-1]):
        exact = y.astype(np.float64) + np.float64(x[0, 0, 0, k]) * w[0, 0, k].astype(np.float64)
        rounded = exact.astype(np.float32)
        y = np.where(np.abs(rounded) > np.abs(exact), np.nextafter(rounded, zero), rounded)
    truncated = B.grade(y.reshape(1, 1, 1, -1), bounds)
    assert truncated.ratio_rigorous <= 1
    if low == 0.0:  # no cancellation: the bias of truncation piles up beyond the expected bound
        assert truncated.verdict == B.QUALITY_WARNING


def test_bounds_grow_with_the_reduction_and_carry_the_epilogue():
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, (1, 5, 5, 64)).astype(np.float32)
    w = rng.uniform(-1, 1, (3, 3, 64, 4)).astype(np.float32)
    bias = rng.uniform(-1, 1, 4).astype(np.float32)
    small = B.float32_bounds("conv2d", (x[..., :8], w[:, :, :8]), {"padding": "SAME"})
    large = B.float32_bounds("conv2d", (x, w), {"padding": "SAME"})
    assert large.rigorous.max() > 4 * small.rigorous.max()
    corner, centre = large.rigorous[0, 0, 0, 0], large.rigorous[0, 2, 2, 0]
    assert corner < centre  # the corner sums 4 of 9 taps
    plain = B.float32_bounds("conv2d", (x, w), {"padding": "SAME", "bias": bias})
    leaky = B.float32_bounds("conv2d", (x, w), {"padding": "SAME", "bias": bias, "activation": "leakyrelu",
                                                "leakyrelu_alpha": 3.0})
    assert np.all(leaky.rigorous > 2.9 * plain.rigorous)
    elu = B.float32_bounds("conv2d", (x, w), {"padding": "SAME", "activation": "elu"})
    assert np.all(elu.rigorous >= large.rigorous + 2.0 ** -20)
    half = B.float16_bounds("conv2d", (x, w), {"padding": "SAME"})
    assert half.model == "float16" and np.all(half.rigorous > large.rigorous)


def test_grade_of_special_values():
    reference = np.array([1.0, np.nan, np.inf, -np.inf, 0.0])
    bounds = B.Bounds(reference, np.full(5, 1e-6), reference, np.full(5, 1e-7))
    assert B.grade(reference.astype(np.float32), bounds).verdict == B.PASS
    spurious = np.array([np.nan, np.nan, np.inf, -np.inf, 0.0])
    failed = B.grade(spurious, bounds)
    assert failed.verdict == B.FAIL and failed.first_bad["index"] == [0] and "NaN/inf" in failed.reason
    missed = B.grade(np.array([1.0, 0.0, np.inf, 5.0, 0.0]), bounds)
    assert missed.verdict == B.QUALITY_WARNING and missed.first_bad["index"] == [1]
    assert B.grade(np.array([1.0, np.nan, np.inf, -np.inf, 5e-7]), bounds).verdict == B.QUALITY_WARNING
    assert B.grade(np.array([1.0, np.nan, np.inf, -np.inf, 5e-6]), bounds).verdict == B.FAIL
    assert B.grade(np.zeros(4), bounds).verdict == B.FAIL  # the wrong shape
    assert json.dumps(failed.to_dict())


# ---------------------------------------------------------------------------
# perturbed results reach each category


PERTURBED_CASE = "reduction/7x7x512/positive/direct"


@pytest.mark.webgl2_only("the case runs the direct WebGL2 program")
@pytest.mark.parametrize("ulps, nan_every, verdict", [(0, None, "Pass"), (20, None, "Pass"),
                                                      (1000, None, "QualityWarning"),
                                                      (60000, None, "Fail"), (0, 7, "Fail")])
def test_perturbed_results_are_graded_accordingly(runtime, ulps, nan_every, verdict):
    """7x7x512 over positive data: the result is sum |x||w| = A, so k ulps of it are between k and
    2k unit roundoffs of A; the expected bound is u (2 sqrt(m) + 2) A = 318 u A (m = 25088) and the
    rigorous one about 2 m u A = 50178 u A: 20 ulps pass, 1000 warn, 60000 fail, a NaN fails."""
    wrapped = conformance.PerturbedRuntime(runtime, ulps=ulps, nan_every=nan_every)
    report = conformance.run(wrapped, suite="full", only=[PERTURBED_CASE])
    (result,) = report.results
    assert result.verdict == verdict, result
    if verdict != "Pass":
        assert result.grade["first_bad"]["index"] == [0, 0, 0, 0]
    assert report.exit_code == (1 if verdict == "Fail" else 0)
    assert "perturbed" in report.device["info"]


# ---------------------------------------------------------------------------
# reports


def _report():
    results = [conformance.CaseResult("a", "ops", "conv2d", "conv2d(x 1x1x1x1)", "Pass", 0.1,
                                      grade={"max_error": 1e-7, "ratio_expected": 0.2, "ratio_rigorous": 0.01,
                                             "expected_bound": 1e-6, "rigorous_bound": 1e-5, "first_bad": None,
                                             "reason": ""}),
               conformance.CaseResult("b</script>", "special", "conv2d", "conv2d(...)", "QualityWarning", 0.2,
                                      grade={"max_error": 1.0, "ratio_expected": "inf", "ratio_rigorous": 0.5,
                                             "expected_bound": 0.0, "rigorous_bound": 2.0,
                                             "first_bad": {"index": [0], "got": 1.0, "want": 0.0, "bound": 0.0,
                                                           "against": "expected"}, "reason": "x"}),
               conformance.CaseResult("c", "float16", "conv2d", "conv2d(...)", "NotSupported", 0.0,
                                      message="no half floats")]
    return conformance.Report("quick", conformance.SUITE_VERSION, {"name": "dev"}, results, shard="1/2",
                              seconds=1.0, runtime="native", gpuconv_version=gpuconv.__version__, total_cases=6)


def test_report_json_html_and_counts():
    report = _report()
    assert report.counts == {"Pass": 1, "QualityWarning": 1, "Fail": 0, "NotSupported": 1}
    assert report.exit_code == 0
    data = json.loads(report.to_json())
    assert data["suite"] == {"name": "quick", "version": conformance.SUITE_VERSION, "shard": "1/2", "cases": 3,
                             "total_cases": 6}
    assert data["cases"][1]["category"] == "QualityWarning" and data["cases"][1]["first_bad"]["index"] == [0]
    again = conformance.Report.from_dict(data)
    assert again.to_dict() == report.to_dict()
    page = report.to_html()
    assert "<svg" in page and page.count("<tr class=") == 3 and "b&lt;/script&gt;" in page
    embedded = page.split('<script type="application/json" id="report">')[1].split("</script>")[0]
    assert json.loads(embedded)["counts"] == report.counts
    assert "QualityWarning: b</script>" in report.details()
    assert "total" in report.summary_table() and "1/2" in report.summary()


# ---------------------------------------------------------------------------
# the suite, as parametrized tests (pytest -n auto spreads them)


@pytest.mark.parametrize("name", [c.name for c in conformance.cases(SUITE, TARGET)])
def test_suite_case(runtime, name):
    (case,) = [c for c in conformance.cases(SUITE, runtime.target) if c.name == name]
    result = conformance.run_case(case, runtime)
    assert result.verdict == "Pass", (result.message, result.grade)


# ---------------------------------------------------------------------------
# the command


def test_cli_conformance_shard_json_html(tmp_path, capsys):
    out, page = tmp_path / "r.json", tmp_path / "r.html"
    code = main(["conformance", "--quick", "--shard", "3/8", "--json", str(out), "--html", str(page)])
    text = capsys.readouterr()
    assert code == 0, text
    data = json.loads(out.read_text())
    assert data["suite"]["shard"] == "3/8" and data["counts"]["Fail"] == 0
    assert data["suite"]["version"] == conformance.SUITE_VERSION and data["device"]["limits"]
    assert [c["name"] for c in data["cases"]] == [c.name for c in conformance.shard(conformance.cases("quick"),
                                                                                     (3, 8))]
    assert "<svg" in page.read_text() and "Pass" in text.out and "conformance" in text.err


def test_cli_conformance_list_exit_codes_and_usage(tmp_path, capsys, monkeypatch):
    assert main(["conformance", "--quick", "--list"]) == 0
    listed = capsys.readouterr().out.strip().splitlines()
    assert len(listed) == len(conformance.cases("quick"))
    assert main(["conformance", "--list"]) == 0  # the full suite: its device-sized cases too
    listed = capsys.readouterr().out.strip().splitlines()
    assert len(listed) == len(conformance.cases("full"))
    assert any(line.startswith("limits/transpose-long") and "largest texture side" in line for line in listed)
    assert main(["conformance", "--shard", "5/4"]) == 2
    assert main(["conformance", "--driver", "zink", "--backend", "webgpu"]) == 2
    assert main(["conformance", "--json", str(tmp_path)]) == 2
    capsys.readouterr()

    def failing(runtime, **kwargs):
        report = _report()
        report.results[1].verdict = "Fail"
        return report

    monkeypatch.setattr(conformance, "run", failing)
    assert main(["conformance", "--quick"]) == 1
    assert "Fail: b</script>" in capsys.readouterr().out


def test_cli_export_conformance_usage(tmp_path, capsys):
    assert main(["export", "conformance", "--quick", "--full"]) == 2
    assert main(["export", "conformance", "--format", "js"]) == 2
    assert main(["export", "conformance", "--output", str(tmp_path)]) == 2


# ---------------------------------------------------------------------------
# the exported page, in headless Chromium on each GL choice


@pytest.fixture(scope="module")
def quick_page():
    return build_page("quick")


def _run_page(browser_runtime, page):
    tab = browser_runtime._browser.new_page()
    try:
        tab.set_content(page.text)
        tab.wait_for_function("window.gpuconvConformance !== undefined", timeout=300_000)
        report = tab.evaluate("window.gpuconvConformance")
        shown = tab.inner_text("#status")
        link = tab.get_attribute("#download", "href")
    finally:
        tab.close()
    return report, shown, link


@pytest.mark.parametrize("gl", ["browser", "browser_swiftshader"])
def test_exported_page_runs_the_suite(request, quick_page, gl):
    report, shown, link = _run_page(request.getfixturevalue(gl), quick_page)
    assert "error" not in report, report
    assert report["counts"]["Fail"] == 0, [c for c in report["cases"] if c["category"] == "Fail"]
    assert sum(report["counts"].values()) == quick_page.cases == len(report["cases"])
    webgl2 = report["targets"]["webgl2"]  # this Chromium has no WebGPU: those cases are NotSupported
    assert sum(webgl2["counts"].values()) == quick_page.targets["webgl2"] == len(conformance.cases("quick"))
    assert webgl2["counts"]["NotSupported"] == 0
    assert report["suite"]["version"] == conformance.SUITE_VERSION and report["device"]["info"]["renderer"]
    assert shown.startswith("PASS") and link.startswith("blob:")
    parsed = conformance.Report.from_dict(report)  # the page's JSON reads as a report, and each target's part
    assert parsed.counts == report["counts"] and conformance.Report.from_dict(webgl2).counts == webgl2["counts"]
    assert not [name for name, _ in quick_page.skipped if not name.startswith("webgpu: ")]


def test_exported_page_grades_as_python_does(browser, quick_page):
    """The page's errors are the browser runtime's (same programs, same GL) against the same bounds."""
    report, _, _ = _run_page(browser, quick_page)
    python = conformance.run(browser, suite="quick", only=[c["name"] for c in report["cases"][:12]])
    for mine, theirs in zip(python.results, report["cases"]):
        assert mine.name == theirs["name"] and mine.verdict == theirs["category"]
        if mine.grade:
            assert theirs["ratio_rigorous"] == pytest.approx(mine.grade["ratio_rigorous"], rel=1e-6, abs=1e-12)


def test_cli_export_conformance(tmp_path, capsys):
    out = tmp_path / "check.html"
    assert main(["export", "conformance", "--output", str(out), "--max-texture-size", "2048"]) == 0
    text = out.read_text()
    assert "window.gpuconvConformance" in text and "<script" in text
    assert "conformance page (quick suite" in capsys.readouterr().err


# ---------------------------------------------------------------------------
# a sample on the other implementations (the full runs are the README's table)

SAMPLE = ["ops/conv2d/1", "ops/depthwise_conv2d/1", "ops/conv2d_transpose/1",
          "epilogue/conv2d/sigmoid+bias", "special/nan-inf/conv2d/direct", "reduction/7x7x512/positive/direct"]


def _sample(runtime):
    report = conformance.run(runtime, suite="full", only=SAMPLE)
    assert report.counts["Fail"] == 0, report.details()
    assert report.counts["Pass"] == len(SAMPLE), report.details()
    return report


@pytest.mark.parametrize("driver", ["softpipe", "zink"])
def test_sample_on_other_mesa_drivers(driver):
    try:
        runtime = gpuconv.runtimes.make_runtime("native", driver=driver)
    except (GLUnavailableError, RuntimeError) as exc:
        pytest.skip(f"no {driver}: {exc}")
    try:
        assert driver in str(runtime.info()["renderer"])
        report = _sample(runtime)
        assert report.device["driver"] == driver
    finally:
        runtime.release()


def test_driver_choice_is_checked():
    with pytest.raises(ValueError, match="driver must be one of"):
        gpuconv.WorkerRuntime(driver="nouveau")


def test_sample_on_webgpu(webgpu):
    report = conformance.run(webgpu, suite="full", only=SAMPLE)
    assert report.counts["Fail"] == 0 and report.device["target"] == "webgpu", report.details()


def test_sample_in_the_browser(browser):
    _sample(browser)


def test_float16_cases_pass_on_webgpu(webgpu):
    """The WebGL2 suite's half-float cases run on WebGPU too (buffers of halves), graded alike;
    the WebGPU suite itself stays float32 (its exported page keeps float32 buffers)."""
    # not "packed" (WebGL2's), nor im2col but for conv2d (WebGL2's transposed matmul + col2im)
    chosen = [c for c in conformance.cases("full", WEBGL2) if c.storage == "float16" and c.algorithm != "packed"
              and (c.algorithm != "im2col" or c.case.op in ("conv2d", "conv1d"))]
    verdicts = {case.name: conformance.run_case(case, webgpu) for case in chosen}
    assert len(chosen) >= 10 and all(r.verdict == "Pass" for r in verdicts.values()), \
        {name: (r.verdict, r.message) for name, r in verdicts.items() if r.verdict != "Pass"}


# ---------------------------------------------------------------------------
# the exported page's WebGPU part: in the WebGPU Chromium (ANGLE's compatibility adapter), and
# with navigator.gpu removed; served from http://127.0.0.1/ (WebGPU needs a secure context)

PAGE_ORIGIN = "http://127.0.0.1/gpuconv-conformance/"


def _run_served_page(chromium, page, without_webgpu=False):
    tab = chromium.new_page()
    try:
        tab.route(PAGE_ORIGIN + "**", lambda route: route.fulfill(status=200, body=page.text,
                                                                   content_type="text/html; charset=utf-8"))
        if without_webgpu:
            tab.add_init_script("Object.defineProperty(Navigator.prototype, 'gpu', { get: () => undefined });")
        tab.goto(PAGE_ORIGIN + "conformance.html")
        tab.wait_for_function("window.gpuconvConformance !== undefined", timeout=300_000)
        report = tab.evaluate("window.gpuconvConformance")
        counts = tab.inner_text("#counts")
        shown = tab.inner_text("#status")
    finally:
        tab.close()
    assert "error" not in report, report
    return report, counts, shown


def test_exported_page_holds_both_targets(quick_page):
    webgpu = conformance.cases("quick", WEBGPU)
    exportable = [c for c in webgpu if c.storage == "float32"]  # the WebGPU module export keeps float32 buffers
    assert quick_page.targets == {"webgl2": len(conformance.cases("quick")), "webgpu": len(exportable)}
    assert sorted(n for n, _ in quick_page.skipped) == sorted(f"webgpu: {c.name}" for c in webgpu
                                                              if c.storage != "float32")
    assert "WebGL2 and WebGPU" in quick_page.summary() and quick_page.size < 8 * 2 ** 20
    webgl2_only = page_for((WEBGL2,), "quick")
    assert webgl2_only.targets == {"webgl2": len(conformance.cases("quick"))}
    assert quick_page.size < 1.5 * webgl2_only.size  # the shared calls' arrays are embedded once


def test_exported_page_runs_the_webgpu_suite(browser_webgpu, quick_page):
    """In a browser with WebGPU: the WebGPU cases run as the exported WebGPU modules and all pass."""
    report, counts, shown = _run_served_page(browser_webgpu._browser, quick_page)
    webgpu = report["targets"]["webgpu"]
    assert webgpu["counts"] == {"Pass": quick_page.targets["webgpu"], "QualityWarning": 0, "Fail": 0,
                                "NotSupported": 0}, [c for c in webgpu["cases"] if c["category"] != "Pass"]
    assert webgpu["device"]["target"] == "webgpu" and webgpu["device"]["info"]["featureLevel"] == "compatibility"
    assert not webgpu["device"]["info"]["isFallbackAdapter"] and "ANGLE" in webgpu["device"]["name"]
    assert report["targets"]["webgl2"]["counts"]["Fail"] == 0 and report["counts"]["Fail"] == 0
    assert sum(report["counts"].values()) == quick_page.cases == len(report["cases"])
    assert {c["target"] for c in report["cases"]} == {"webgl2", "webgpu"}
    assert all(c["ratio_rigorous"] <= 1 for c in webgpu["cases"])
    assert [c["name"] for c in webgpu["cases"]] == [c.name for c in conformance.cases("quick", WEBGPU)
                                                    if c.storage == "float32"]
    parsed = conformance.Report.from_dict(webgpu)  # each target's part reads as a report
    assert parsed.counts == webgpu["counts"] and parsed.device["runtime"] == "page webgpu"
    assert shown.startswith("PASS") and "WebGPU\tPass: " in counts


def test_exported_page_without_webgpu(browser_webgpu, quick_page):
    """navigator.gpu removed: the WebGPU cases are NotSupported (not failures), the WebGL2 ones still graded."""
    report, counts, shown = _run_served_page(browser_webgpu._browser, quick_page, without_webgpu=True)
    webgpu, webgl2 = report["targets"]["webgpu"], report["targets"]["webgl2"]
    assert webgpu["counts"]["NotSupported"] == quick_page.targets["webgpu"] == len(webgpu["cases"])
    assert all("navigator.gpu is missing" in c["message"] for c in webgpu["cases"])
    assert webgpu["device"]["name"] == "no WebGPU"
    assert webgl2["counts"]["Pass"] == quick_page.targets["webgl2"] and webgl2["counts"]["Fail"] == 0
    assert all(c["ratio_rigorous"] <= 1 for c in webgl2["cases"])
    assert report["counts"]["Fail"] == 0 and shown.startswith("PASS") and "no WebGPU" in counts
