"""The benchmark script keeps working (quick runs; speed is never asserted)."""

import importlib.util
import json
import os
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("gpuconv_bench", BENCHMARKS / "bench.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_quick_benchmark_runs_and_agrees_with_the_oracle(bench, runtime, tmp_path, capsys):
    assert bench.main(["--quick", "--json", str(tmp_path / "bench.json"), "--png", str(tmp_path / "bench.png")]) == 0
    assert (tmp_path / "bench.png").stat().st_size > 1000
    out = capsys.readouterr().out
    assert "packed/direct" in out and "median over layers" in out
    assert "TF.js default" not in out  # no side-by-side table without --browser or --tfjs
    rows = json.loads((tmp_path / "bench.json").read_text())["rows"]
    assert [r["layer"] for r in rows] == ["conv3x3", "dw3x3", "separable"]
    assert all(r["rel_error"] <= 1e-5 for r in rows)
    assert all("tfjs_default_s" not in r and "browser_draw_s" not in r for r in rows)


def test_autotune_times_what_gpuconv_autotune_picks(bench, runtime, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GPUCONV_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(bench, "AUTOTUNE", False)
    assert bench.main(["--quick", "--autotune", "--layers", "dw3x3", "--json", str(tmp_path / "b.json")]) == 0
    (row,) = json.loads((tmp_path / "b.json").read_text())["rows"]
    (cache,) = (tmp_path / "cache").glob("tuning-*.json")
    (entry,) = json.loads(cache.read_text())["entries"].values()
    assert set(entry["times_ms"]) == {"packed", "direct"}
    picked = {"packed": "PackedDepthwiseConv2D", "direct": "DepthwiseConv2D"}[entry["algorithm"]]
    assert row["programs"] == picked and row["rel_error"] <= 1e-5


def test_the_full_layer_set_has_the_layers_tfjs_users_report_slow(bench):
    layers = {layer.name: layer for layer in bench.LAYERS}
    assert {"conv7x7 224", "conv11x11 224", "dw7x7 c256", "conv5x5"} <= set(layers)
    assert layers["conv11x11 224"].filter[:2] == (11, 11) and layers["conv11x11 224"].x == (1, 224, 224, 3)
    assert layers["dw7x7 c256"].op == "depthwise_conv2d" and layers["dw7x7 c256"].x[-1] == 256


def test_tfjs_without_its_npm_packages_says_to_run_setup(bench, tmp_path, capsys):
    with pytest.raises(SystemExit) as exited:
        bench.main(["--quick", "--tfjs", "--tfjs-dir", str(tmp_path)])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "benchmarks/tfjs/setup.sh" in err and "@tensorflow/tfjs-backend-webgl" in err
    assert str(tmp_path / "node_modules") in err


def test_tfjs_arguments_map_the_layers_keywords(bench):
    runner = bench.load_tfjs_runner()
    assert runner.tfjs_arguments({"padding": "SAME", "strides": 2}) == {
        "pad": "same", "strides": [2, 2], "dilations": [1, 1]}
    assert runner.tfjs_arguments({"padding": "VALID", "dilations": (1, 2, 3, 1)})["dilations"] == [2, 3]
    with pytest.raises(ValueError, match="groups"):
        runner.tfjs_arguments({"groups": 2})
    for layer in bench.LAYERS + bench.QUICK_LAYERS:
        runner.tfjs_arguments(layer.kwargs)


def test_quick_browser_run_times_gpuconv_inside_the_page(bench, runtime, browser, tmp_path, capsys):
    # The `browser` fixture skips (or fails on CI) without Chromium; the benchmark starts its own.
    assert bench.main(["--quick", "--browser", "--layers", "conv3x3,separable",
                       "--json", str(tmp_path / "bench.json")]) == 0
    out = capsys.readouterr().out
    assert "browser ms (GF/s)" in out and "+ Python ms" in out
    rows = json.loads((tmp_path / "bench.json").read_text())["rows"]
    assert [r["layer"] for r in rows] == ["conv3x3", "separable"]
    for r in rows:
        assert 0 < r["browser_draw_best_s"] <= r["browser_draw_s"]
        assert r["browser_python_draw_s"] > 0 and r["browser_rel_error"] <= 1e-5


def test_quick_tfjs_run_puts_tfjs_beside_gpuconv(bench, runtime, browser, tmp_path, capsys):
    runner = bench.load_tfjs_runner()
    if runner.missing():
        if os.environ.get("CI"):  # .ci/run installs them: running this is the point there
            pytest.fail("TF.js's npm packages are not installed on CI (bash benchmarks/tfjs/setup.sh)")
        pytest.skip("TF.js's npm packages are not installed (bash benchmarks/tfjs/setup.sh)")
    assert bench.main(["--quick", "--tfjs", "--json", str(tmp_path / "bench.json")]) == 0
    out = capsys.readouterr().out
    assert "TF.js 4.22.0 default" in out and "native/TF.js" in out and "worst" in out
    report = json.loads((tmp_path / "bench.json").read_text())
    assert set(report["tfjs"]["pages"]) == {"default", "direct"}
    assert report["tfjs"]["pages"]["direct"]["env"]["WEBGL_CONV_IM2COL"] is False
    for r in report["rows"]:
        for path in ("default", "direct"):
            assert r[f"tfjs_{path}_s"] > 0 and r[f"tfjs_{path}_data_s"] > 0
            assert r[f"tfjs_{path}_rel_error"] <= 1e-5
    programs = {r["layer"]: r for r in report["rows"]}
    assert programs["conv3x3"]["tfjs_default_programs"] == "Im2ColPacked > MatMulPacked"
    assert programs["conv3x3"]["tfjs_direct_programs"] == "Conv2D"


@pytest.mark.parametrize("gl", ["angle-egl", "swiftshader"])
def test_quick_run_on_the_browser_backend(bench, browser, tmp_path, capsys, gl):
    assert bench.main(["--quick", "--backend", "browser", "--gl", gl, "--layers", "conv3x3,dw3x3",
                       "--json", str(tmp_path / "bench.json")]) == 0
    report = json.loads((tmp_path / "bench.json").read_text())
    assert report["device"]["runtime"] == "browser" and report["device"]["backend"] == gl
    assert all(row["rel_error"] <= 1e-5 for row in report["rows"]), report["rows"]


# -- gpuconv's WebGPU target and TF.js's WebGPU backend (--webgpu, --tfjs-webgpu) ------------

@pytest.fixture(scope="module")
def webgpu():
    """Whether gpuconv.WebGPURuntime starts here (wgpu-py and a Vulkan adapter): skips locally
    without, fails on CI (which installs both)."""
    import gpuconv
    from gpuconv.runtimes import GLUnavailableError

    try:
        gpuconv.WebGPURuntime().release()
    except GLUnavailableError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"no WebGPU adapter on CI: {exc}")
        pytest.skip(f"no WebGPU adapter: {exc}")


def test_quick_webgpu_run_times_the_webgpu_target_beside_webgl2(bench, runtime, webgpu, tmp_path, capsys):
    assert bench.main(["--quick", "--webgpu", "--layers", "conv3x3,dw3x3,separable",
                       "--json", str(tmp_path / "bench.json")]) == 0
    out = capsys.readouterr().out
    assert "WebGPU native ms (GF/s)" in out and "WebGPU/WebGL2 native" in out
    assert "gpuconv WebGPU/WebGL2 natively: median" in out and "worst" in out
    assert "TF.js default ms" not in out  # the WebGL2 browser columns only with --browser or --tfjs
    report = json.loads((tmp_path / "bench.json").read_text())
    assert report["webgpu"]["target"] == "webgpu"
    assert set(report["ratios"]["WebGPU/WebGL2 native"]) >= {"median", "worst", "worst_layer"}
    rows = {r["layer"]: r for r in report["rows"]}
    for r in rows.values():
        assert 0 < r["webgpu_draw_best_s"] <= r["webgpu_draw_s"] and r["packed_draw_s"] > 0
        assert r["webgpu_rel_error"] <= 1e-5 and len(r["samples"]["webgpu_draw"]) == 2
    assert "DepthwiseConv2D" in rows["dw3x3"]["webgpu_programs"]
    assert " > " in rows["separable"]["webgpu_programs"]  # the depthwise half, then the pointwise one


def test_quick_webgpu_run_times_gpuconv_inside_the_webgpu_page(bench, runtime, webgpu, browser_webgpu, tmp_path,
                                                                capsys):
    # The `browser_webgpu` fixture skips (or fails on CI) without Chromium's WebGPU adapter; the
    # benchmark starts its own.
    assert bench.main(["--quick", "--webgpu", "--layers", "conv3x3,separable",
                       "--json", str(tmp_path / "bench.json")]) == 0
    report = json.loads((tmp_path / "bench.json").read_text())
    assert "error" not in report["webgpu_browser"], report["webgpu_browser"]
    for r in report["rows"]:
        assert 0 < r["webgpu_page_draw_best_s"] <= r["webgpu_page_draw_s"]
        assert r["webgpu_page_rel_error"] <= 1e-5 and r["webgpu_page_programs"] == r["webgpu_programs"]


def test_quick_tfjs_webgpu_run_puts_tfjs_webgpu_beside_gpuconv(bench, runtime, webgpu, browser_webgpu, tmp_path,
                                                                capsys):
    runner = bench.load_tfjs_runner()
    if runner.missing(api="webgpu"):
        if os.environ.get("CI"):  # .ci/run installs them: running this is the point there
            pytest.fail("TF.js's WebGPU npm package is not installed on CI (bash benchmarks/tfjs/setup.sh)")
        pytest.skip("TF.js's WebGPU npm package is not installed (bash benchmarks/tfjs/setup.sh)")
    assert bench.main(["--quick", "--tfjs-webgpu", "--layers", "conv3x3,dw3x3",
                       "--json", str(tmp_path / "bench.json")]) == 0
    out = capsys.readouterr().out
    assert "TF.js 4.22.0 WebGPU backend" in out and "TF.js WebGPU ms (GF/s)" in out
    report = json.loads((tmp_path / "bench.json").read_text())
    page = report["tfjs_webgpu"]["pages"]["webgpu"]
    assert page["backend"] == "webgpu" and page["adapter"]["request"] == {"featureLevel": "compatibility"}
    assert page["adapter"]["compatibility"] and not page["adapter"]["fallback"]
    for r in report["rows"]:
        assert 0 < r["tfjs_webgpu_best_s"] <= r["tfjs_webgpu_s"] and r["tfjs_webgpu_data_s"] > 0
        assert r["tfjs_webgpu_rel_error"] <= 1e-5 and r["tfjs_webgpu_programs"]
    assert report["tfjs_webgpu"]["same_adapter"] is True  # gpuconv's page and TF.js's on one adapter
    assert "gpuconv WebGPU in the page/TF.js WebGPU: median" in out
    assert all(r["webgpu_page_draw_s"] > 0 for r in report["rows"])


def test_tfjs_webgpu_without_its_npm_package_says_to_run_setup(bench, tmp_path, capsys):
    with pytest.raises(SystemExit) as exited:
        bench.main(["--quick", "--tfjs-webgpu", "--tfjs-dir", str(tmp_path)])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "benchmarks/tfjs/setup.sh" in err and "@tensorflow/tfjs-backend-webgpu" in err


def test_side_by_side_table_shows_the_series_timed_and_ratios_as_time_over_time(bench):
    rows = [{"layer": "a", "mflop": 10.0, "packed_draw_s": 0.002, "numpy_f32_s": 0.001, "programs": "P",
             "webgpu_draw_s": 0.004, "webgpu_page_draw_s": 0.003, "tfjs_webgpu_s": 0.009,
             "webgpu_programs": "W", "tfjs_webgpu_programs": "T"},
            {"layer": "b", "mflop": 10.0, "packed_draw_s": 0.002, "numpy_f32_s": 0.001, "programs": "P",
             "webgpu_draw_s": 0.001, "webgpu_page_draw_s": 0.004, "tfjs_webgpu_s": 0.002,
             "webgpu_programs": "W", "tfjs_webgpu_programs": "T"}]
    table = bench.format_side_by_side(rows)
    assert "WebGPU page/TF.js WebGPU" in table and "browser ms" not in table and "TF.js default" not in table
    assert "| 3.00x " in table and "| 0.50x " in table  # TF.js's time / gpuconv's page time
    stats = bench.ratio_summary(rows, "WebGPU/WebGL2 native")  # WebGL2's time / WebGPU's
    assert (stats["median"], stats["worst"], stats["worst_layer"], stats["faster"]) == (1.25, 0.5, "a", 1)
    assert bench.ratio_summary(rows, "browser/TF.js") is None


# -- benchmarks/models.py: the convolution layers of published models ----------------------

@pytest.fixture(scope="module")
def models():
    spec = importlib.util.spec_from_file_location("gpuconv_models", BENCHMARKS / "models.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_quick_models_run_agrees_with_the_oracle(models, runtime, tmp_path, capsys):
    assert models.main(["--quick", "--layers", "--json", str(tmp_path / "m.json"),
                        "--png", str(tmp_path / "m.png")]) == 0
    assert (tmp_path / "m.png").stat().st_size > 1000
    out = capsys.readouterr().out
    assert "MobileNetV1" in out and "SqueezeNet 1.1" in out and "gpuconv native ms (GF/s)" in out
    report = json.loads((tmp_path / "m.json").read_text())
    assert [m["model"] for m in report["models"]] == ["mobilenet_v1", "squeezenet1_1"]
    for model in report["models"]:
        assert model["native_s"] == pytest.approx(sum(r["native_s"] * r["count"] for r in model["layers"]))
        assert all(r["native_rel_error"] <= 1e-4 for r in model["layers"]), model["layers"]
        assert "tfjs_s" not in model  # TF.js only with --tfjs


def test_quick_models_run_puts_tfjs_beside_gpuconv(models, runtime, browser, tmp_path, capsys):
    runner = models.load_bench().load_tfjs_runner()
    if runner.missing():
        if os.environ.get("CI"):  # .ci/run installs them: running this is the point there
            pytest.fail("TF.js's npm packages are not installed on CI (bash benchmarks/tfjs/setup.sh)")
        pytest.skip("TF.js's npm packages are not installed (bash benchmarks/tfjs/setup.sh)")
    assert models.main(["--quick", "--tfjs", "--models", "squeezenet1_1", "--rounds", "2",
                        "--json", str(tmp_path / "m.json")]) == 0
    out = capsys.readouterr().out
    assert "TF.js WebGL ms (GF/s)" in out and "page/TF.js" in out and "worst layer (page/TF.js)" in out
    report = json.loads((tmp_path / "m.json").read_text())
    (model,) = report["models"]
    assert report["rounds"] == 2 and report["repeat"] == 2
    for layer in model["layers"]:  # each side timed in both rounds: ceil(2 / 2) runs a round
        assert [len(layer[f"{key}_samples"]) for key in ("native", "browser", "tfjs")] == [2, 2, 2]
    assert model["tfjs_s"] > 0 and model["browser_s"] > 0
    assert model["page/TF.js"] == pytest.approx(model["tfjs_s"] / model["browser_s"])
    assert model["page/TF.js worst"]["layer"] in {r["layer"] for r in model["layers"]}


#: Published parameter counts of each model's convolution layers (weights, plus the conv bias or
#: the batch norm's scale and shift that follows each), from each reference implementation's
#: total minus what is not a convolution:
PUBLISHED_CONV_PARAMS = {
    # torchvision vgg16: 138,357,544 in all, 123,642,856 of them in the three linear layers
    "vgg16": 138_357_544 - (25088 * 4096 + 4096 + 4096 * 4096 + 4096 + 4096 * 1000 + 1000),
    # torchvision resnet18: 11,689,512; fc 512 x 1000 + 1000 (He et al.: "11.7M")
    "resnet18": 11_689_512 - 513_000,
    # keras.applications.MobileNet (alpha 1.0): 4,231,976 trainable; the 1x1 classifier 1,025,000
    # (Howard et al., Table 8: "4.2M")
    "mobilenet_v1": 4_231_976 - 1_025_000,
    # torchvision mobilenet_v3_small: 2,542,856; classifier 576 x 1024 + 1024 + 1024 x 1000 + 1000
    "mobilenet_v3_small": 2_542_856 - (576 * 1024 + 1024 + 1024 * 1000 + 1000),
    # torchvision shufflenet_v2_x1_0: 2,278,604; fc 1024 x 1000 + 1000 (Ma et al.: "2.3M")
    "shufflenet_v2": 2_278_604 - 1_025_000,
    # torchvision squeezenet1_1: 1,235,496, every one in a convolution
    "squeezenet1_1": 1_235_496,
    # torchvision convnext_tiny: 28,589,128 (Liu et al.: "28M"); less the head (layer norm 2 x 768,
    # linear 768 x 1000 + 1000), the stem's and downsamplers' layer norms (2 x (96 + 96 + 192 + 384))
    # and each block's layer norm and layer scale (3 x dim per block)
    "convnext_tiny": 28_589_128 - (1536 + 769_000) - 2 * (96 + 96 + 192 + 384)
    - 3 * (3 * 96 + 3 * 192 + 9 * 384 + 3 * 768),
    # Ultralytics YOLOv8n: "3,157,200 parameters" (its model summary), less its Detect head for 80
    # classes on (64, 128, 256) channels: box branch Conv 3x3 > 64, Conv 3x3 64 > 64, 1x1 64 > 64
    # (bias); class branch Conv 3x3 > 80, Conv 3x3 80 > 80, 1x1 80 > 80 (bias); the DFL's 16
    "yolov8n": 3_157_200 - sum(9 * c * 64 + 128 + 9 * 64 * 64 + 128 + 64 * 64 + 64
                               + 9 * c * 80 + 160 + 9 * 80 * 80 + 160 + 80 * 80 + 80 for c in (64, 128, 256)) - 16,
}

#: Published multiply-adds of the whole model (its classifier included), in billions.
PUBLISHED_GMACS = {
    "vgg16": 15.5,            # Canziani et al. 2016 (arXiv:1605.07678), Fig. 2 / torchvision's 15.47 GFLOPS
    "resnet18": 1.8,          # He et al. 2015, Table 1: 1.8 x 10^9 FLOPs (multiply-adds)
    "mobilenet_v1": 0.569,    # Howard et al. 2017, Table 8: 569 million mult-adds
    "mobilenet_v3_small": 0.056,  # Howard et al. 2019, Table 3: 56 million MAdds
    "shufflenet_v2": 0.146,   # Ma et al. 2018, Table 5: 146 MFLOPs (multiply-adds)
    "convnext_tiny": 4.5,     # Liu et al. 2022, Table 1: 4.5G FLOPs (multiply-adds)
}


@pytest.mark.parametrize("name", sorted(PUBLISHED_CONV_PARAMS))
def test_model_tables_match_the_published_parameter_counts(models, name):
    model = models.MODELS[name]()
    assert model.params == pytest.approx(PUBLISHED_CONV_PARAMS[name], rel=0.02)
    assert model.source and model.input[0] == 1


@pytest.mark.parametrize("name", sorted(PUBLISHED_GMACS))
def test_model_tables_match_the_published_multiply_adds(models, name):
    # The tables leave out the classifiers (at most a few percent of these models' work).
    assert models.MODELS[name]().macs / 1e9 == pytest.approx(PUBLISHED_GMACS[name], rel=0.04)


def test_model_tables_have_the_published_layer_counts(models):
    counts = {name: build().conv_count for name, build in models.MODELS.items()}
    assert counts["vgg16"] == 13  # configuration D: 13 convolutions + 3 fully connected
    assert counts["resnet18"] == 17 + 3  # 17 convolutions + fc on the main path, 3 projection shortcuts
    assert counts["mobilenet_v1"] == 27  # Table 1: a full convolution, 13 depthwise + 13 pointwise
    assert counts["squeezenet1_1"] == 1 + 8 * 3 + 1  # conv1, eight fire modules, conv10
    assert counts["convnext_tiny"] == 1 + 3 + 3 * (3 + 3 + 9 + 3)  # stem, downsamplers, 3 per block
    convnext = models.MODELS["convnext_tiny"]()
    assert any(layer.op == "depthwise_conv2d" and layer.filter[:2] == (7, 7) for layer in convnext.layers)
    yolo = models.MODELS["yolov8n"](640)
    assert yolo.input == (1, 640, 640, 3) and all(layer.activation == "swish" for layer in yolo.layers)
