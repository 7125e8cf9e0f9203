"""Every op, with every algorithm it has, on every runtime of both targets: the quick selftest
cases (each op at least once: the forward, gradient, transposed and 3-D convolutions) on the
native WebGL2 runtime, in Chromium's WebGL2 on ANGLE over Mesa's EGL and on SwiftShader, with 4
draw buffers (a phone), and on the WebGPU target natively (wgpu-py on lavapipe) and in Chromium's
WebGPU (the compatibility adapter on ANGLE, and SwiftShader), each against the float64 oracle."""

from __future__ import annotations

import pytest

from gpuconv import registry
from gpuconv.checks import SELFTEST_CASES, run_case
from gpuconv.ops import ALGORITHMS

QUICK = [case for case in SELFTEST_CASES if case.quick]
RUNTIMES = ["runtime", "browser", "browser_swiftshader", "browser_phone", "webgpu", "browser_webgpu",
            "browser_webgpu_swiftshader"]


def _algorithms(op: str, runtime):
    """Every algorithm of ``op`` that ``runtime``'s target runs (WebGL2's "auto" is one of its others;
    WebGPU's tiled programs run only under "auto")."""
    if not registry.get(op).algorithms:
        return [None]
    return [a for a in ALGORITHMS if a in runtime.target.algorithms and a != "auto"] + \
        (["auto"] if runtime.target.name == "webgpu" else [])


def test_the_quick_cases_cover_every_op():
    assert {case.op for case in QUICK} == set(registry.OPS)


@pytest.mark.parametrize("fixture", RUNTIMES)
@pytest.mark.parametrize("case", QUICK, ids=[f"{c.label}-{'x'.join(map(str, c.x))}" for c in QUICK])
def test_every_op_and_algorithm_agrees_with_the_oracle(request, fixture, case):
    runtime = request.getfixturevalue(fixture)
    ran = []
    for position, algorithm in enumerate(_algorithms(case.op, runtime)):
        try:
            error = run_case(case, seed=17 + position, runtime=runtime, algorithm=algorithm)
        except ValueError as exc:  # e.g. the packed programs do not run grouped convolutions
            assert "cannot run this call" in str(exc) or "runs conv2d and conv1d only" in str(exc), exc
            continue
        assert error <= 1e-5, f"{case.label} algorithm={algorithm} on {fixture}: relative error {error:.3g}"
        ran.append(algorithm)
    assert ran, f"no algorithm ran {case.label}"
