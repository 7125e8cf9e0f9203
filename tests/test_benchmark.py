"""The benchmark script keeps working (a quick run; speed is never asserted)."""

import importlib.util
import json
import sys
from pathlib import Path


def test_quick_benchmark_runs_and_agrees_with_the_oracle(runtime, tmp_path, capsys):
    path = Path(__file__).resolve().parent.parent / "benchmarks" / "bench.py"
    spec = importlib.util.spec_from_file_location("gpuconv_bench", path)
    bench = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = bench  # dataclasses look their module up there
    spec.loader.exec_module(bench)
    assert bench.main(["--quick", "--json", str(tmp_path / "bench.json"), "--png", str(tmp_path / "bench.png")]) == 0
    assert (tmp_path / "bench.png").stat().st_size > 1000
    out = capsys.readouterr().out
    assert "packed/direct" in out and "median over layers" in out
    rows = json.loads((tmp_path / "bench.json").read_text())["rows"]
    assert [r["layer"] for r in rows] == ["conv3x3", "dw3x3", "separable"]
    assert all(r["rel_error"] <= 1e-5 for r in rows)
