"""Helpers the tests import (``from helpers import assert_close``); fixtures live in conftest.py.

pytest puts this directory on ``sys.path`` (the default "prepend" import mode, tests/ being
no package), so ``python -m pytest`` from the repository root finds this module.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import numpy as np
import pytest

import gpuconv

relative_error = gpuconv.oracle.relative_error


def assert_close(result: np.ndarray, reference: np.ndarray, tol: float = 1e-5) -> None:
    assert result.shape == reference.shape, (result.shape, reference.shape)
    assert result.dtype == np.float32
    error = relative_error(result, reference)
    assert error <= tol, f"relative error {error:.3g} > {tol:g}"


def import_crosscheck(name: str) -> ModuleType:
    """Import a library that a cross-check compares against (PyTorch, SciPy).

    They are not dependencies: locally a missing one skips its tests; CI installs
    them and sets GPUCONV_REQUIRE_CROSSCHECKS, and then a missing one fails.
    """
    if os.environ.get("GPUCONV_REQUIRE_CROSSCHECKS"):
        return importlib.import_module(name)
    return pytest.importorskip(name)
