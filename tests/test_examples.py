"""The scripts in examples/: each runs on small sizes, passes its own oracle check and
writes the files it promises.

The examples are not a package; each is imported from its file.  Their ``main(argv)``
returns the exit status (0: the GPU agreed with the float64 oracle).  llvmpipe compiles
each distinct program at its first draw, so the sizes here are the examples' small ones.
"""

import importlib.util
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from gpuconv import cli

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"


def load(name: str):
    """Import ``examples/<name>.py`` as a module."""
    path = EXAMPLES / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"gpuconv_example_{name}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def require(name: str):
    """Import a package of the ``examples`` extra: skip without it, but fail on CI (which installs it)."""
    if os.environ.get("CI"):
        return __import__(name)
    return pytest.importorskip(name, reason=f"{name} is in the 'examples' extra: pip install -e '.[examples]'")


def test_edge_detection(runtime, tmp_path, capsys):
    require("skimage")
    require("PIL")
    from PIL import Image

    assert load("edge_detection").main(["--small", "--output", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "PASS" in out and "GPU vs float64 oracle" in out
    png = tmp_path / "edges.png"
    assert png.is_file()
    with Image.open(png) as image:
        # three 128x128 panels (original, Sobel magnitude, |Laplacian|) with two 4-pixel gaps
        assert image.size == (3 * 128 + 2 * 4, 128)
        assert image.mode == "L"


def test_edge_filters_are_sobel_and_laplacian():
    example = load("edge_detection")
    w = example.edge_filter()
    assert w.shape == (3, 3, 1, 3)
    ramp = np.tile(np.arange(5, dtype=np.float64), (5, 1))  # brightness rising to the right
    import gpuconv

    y = gpuconv.oracle.conv2d(ramp[None, :, :, None], w, padding="VALID")[0, 1, 1]
    assert y.tolist() == [8.0, 0.0, 0.0]  # Sobel x sees the ramp, Sobel y and the Laplacian do not


@pytest.mark.parametrize("algorithm", ["auto", "direct"])
def test_mobilenet_block(runtime, tmp_path, capsys, algorithm):
    assert load("mobilenet_block").main(["--small", "--algorithm", algorithm, "--output", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "ms per block" in out and "PASS" in out
    report = json.loads((tmp_path / "mobilenet_block.json").read_text())
    assert report["input"] == [1, 28, 28, 8] and report["output"] == [1, 28, 28, 16]
    assert report["passed"] and report["relative_error"] <= 1e-5 and report["algorithm"] == algorithm


@pytest.mark.parametrize("algorithm", ["auto", "direct"])
def test_mobilenet_block_on_webgpu(webgpu, tmp_path, capsys, algorithm):
    """The same block on the WebGPU target: the same check against the unfused oracle."""
    assert load("mobilenet_block").main(["--small", "--backend", "webgpu", "--algorithm", algorithm,
                                         "--output", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "(webgpu)" in out and "PASS" in out
    report = json.loads((tmp_path / "mobilenet_block.json").read_text())
    assert report["target"] == "webgpu" and report["passed"] and report["relative_error"] <= 1e-5


def test_mobilenet_block_refuses_packed_on_webgpu(capsys):
    with pytest.raises(SystemExit):
        load("mobilenet_block").main(["--small", "--backend", "webgpu", "--algorithm", "packed"])
    assert "use auto or direct with --backend webgpu" in capsys.readouterr().err


def test_mobilenet_batch_norm_folding_matches_explicit_batch_norm():
    """The fold itself, in float64 and without GL, including a channel multiplier."""
    import gpuconv

    example = load("mobilenet_block")
    rng = np.random.default_rng(7)
    x = rng.uniform(-1, 1, (1, 6, 6, 3))
    block = example.make_block(rng, 3, 5, multiplier=2)
    dw, b1 = example.fold_batch_norm(block["depthwise"], block["bn1"], depthwise=True)
    pw, b2 = example.fold_batch_norm(block["pointwise"], block["bn2"], depthwise=False)
    explicit = example.batch_norm(gpuconv.oracle.depthwise_conv2d(x, block["depthwise"], padding="SAME"),
                                  block["bn1"])
    folded = gpuconv.oracle.depthwise_conv2d(x, dw, padding="SAME", bias=b1)
    np.testing.assert_allclose(folded, explicit, rtol=1e-5, atol=1e-5)
    h = rng.uniform(-1, 1, (1, 6, 6, 6))  # the pointwise input: 3 channels x multiplier 2
    explicit = example.batch_norm(gpuconv.oracle.conv2d(h, block["pointwise"]), block["bn2"])
    folded = gpuconv.oracle.conv2d(h, pw, bias=b2)
    np.testing.assert_allclose(folded, explicit, rtol=1e-5, atol=1e-5)


def test_grouped_vs_depthwise(runtime, tmp_path, capsys):
    assert load("grouped_vs_depthwise").main(["--small", "--output", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "[:, :, 2, 1]" in out and "[5, 0, :, :]" in out  # the index mapping table, C=3, m=2
    assert (tmp_path / "mapping.txt").read_text().startswith("grouped_vs_depthwise:")
    with np.load(tmp_path / "grouped_vs_depthwise.npz") as saved:
        assert saved["tf_filter"].shape == (3, 3, 3, 2) and saved["torch_weight"].shape == (6, 1, 3, 3)
        np.testing.assert_array_equal(saved["y_torch"], saved["y_caffe"])
        np.testing.assert_allclose(saved["y_tf"], saved["y_torch"].transpose(0, 2, 3, 1), rtol=0, atol=1e-6)


def test_grouped_weight_mapping_round_trips():
    example = load("grouped_vs_depthwise")
    tf_filter = np.arange(3 * 3 * 4 * 3, dtype=np.float32).reshape(3, 3, 4, 3)
    weight = example.tf_to_torch(tf_filter)
    assert weight.shape == (12, 1, 3, 3)
    for k in range(4):
        for q in range(3):
            np.testing.assert_array_equal(weight[k * 3 + q, 0], tf_filter[:, :, k, q])
    np.testing.assert_array_equal(example.torch_to_tf(weight, 4), tf_filter)


def test_mobilenet_tensors(runtime, tmp_path, capsys):
    assert load("mobilenet_tensors").main(["--small", "--output", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "PASS" in out and "ms per stack" in out and "bit-identical" in out
    report = json.loads((tmp_path / "mobilenet_tensors.json").read_text())
    assert report["input"] == [1, 28, 28, 8] and report["output"] == [1, 14, 14, 32]
    assert report["passed"] and max(report["relative_error"].values()) <= 1e-5


def test_inspect_shaders(runtime, tmp_path, capsys):
    assert load("inspect_shaders").main(["--small", "--output", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "PASS" in out
    for depth in (4, 5, 6, 7):
        assert (tmp_path / f"conv_d{depth}.glsl").is_file()
        assert str(tmp_path / f"conv_d{depth}.glsl") in out
    diff = (tmp_path / "conv_d4-7.diff").read_text()
    for depth in (5, 6, 7):
        assert f"+++ conv_d{depth}.glsl" in diff
    sources = {d: (tmp_path / f"conv_d{d}.glsl").read_text() for d in (4, 5, 6, 7)}
    assert "leftover" not in sources[4]
    assert "vec2 xValues" in sources[6] and "vec3 xValues" in sources[7]


def test_inspect_shaders_files_match_the_cli(tmp_path, capsys):
    """The example's conv_d5.glsl is what `gpuconv shader ... --output` writes (without --annotate)."""
    assert load("inspect_shaders").main(["--no-run", "--output", str(tmp_path)]) == 0
    cli_file = tmp_path / "cli_d5.glsl"
    assert cli.main(["shader", "conv2d", "--input", "1x7x7x5", "--filter", "3x3x5x4",
                     "--output", str(cli_file)]) == 0
    assert cli_file.read_text().rstrip("\n") == (tmp_path / "conv_d5.glsl").read_text().rstrip("\n")
