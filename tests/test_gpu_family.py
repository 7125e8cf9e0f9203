"""The gradient and transposed convolutions on the GPU (TF.js's Conv2DDerInputProgram,
Conv2DDerFilterProgram, DepthwiseConv2DDerInputProgram, DepthwiseConv2DDerFilterProgram),
each against its float64 oracle twin (gpuconv.oracle.<op>), the adjoint identities and
the oracle's argument errors; and conv1d with a stride and a dilation both above 1."""

from __future__ import annotations

from typing import Any, Dict, Tuple

import numpy as np
import pytest

import gpuconv
from helpers import relative_error

TOL = 1e-5


def _data(rng: np.random.Generator, *shapes: Tuple[int, ...]) -> list:
    return [rng.uniform(-1, 1, size=shape).astype(np.float32) for shape in shapes]


def _check(result: np.ndarray, reference: np.ndarray) -> float:
    assert result.shape == reference.shape, (result.shape, reference.shape)
    assert result.dtype == np.float32
    error = relative_error(result, reference)
    assert error <= TOL, f"relative error {error:.3g} > {TOL:g}"
    return error


# -- conv1d: a conv2d of height 1, so a stride and a dilation both above 1 run ------------------------------


@pytest.mark.parametrize("data_format", ["NWC", "NCW"])
def test_conv1d_takes_a_stride_and_a_dilation_both_above_1(runtime, rng, data_format):
    x, w = _data(rng, (2, 19, 3) if data_format == "NWC" else (2, 3, 19), (3, 3, 4))
    kwargs: Dict[str, Any] = dict(stride=2, dilation=3, padding="SAME", data_format=data_format)
    _check(gpuconv.conv1d(x, w, runtime=runtime, **kwargs), gpuconv.oracle.conv1d(x, w, **kwargs))
