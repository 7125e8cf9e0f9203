"""The error function the GPU programs compute for ``activation="gelu"`` (GLSL and WGSL have no erf).

One approximation, written once per shading language (``erf`` in ``shaders/epilogue.glsl``
and ``shaders/wgsl/common.wgsl``) from the coefficients here, which the templates read
(:func:`gpuconv.codegen.environment` hands this module to them as ``erf``):

* ``|x| < SMALL_LIMIT``: ``erf(x) = x * P(x^2)``, ``P`` of degree 7 (odd, so exact at 0 and
  accurate relative to the value near it);
* ``SMALL_LIMIT <= |x| < TAIL_LIMIT``: ``erfc(|x|) = exp(-x^2) * R(|x| - TAIL_CENTRE)``, ``R`` of
  degree 11 (``erfc(x) exp(x^2)`` is smooth there: 0.26 .. 0.14), then ``erf = +-(1 - erfc)``;
* ``|x| >= TAIL_LIMIT``: ``+-1`` (``erfc(4) = 1.5e-8``, under half a float32 ulp of 1).

Both polynomials are weighted least-squares fits of the relative error on Chebyshev nodes,
computed in float64 for this module.  :func:`erf_float32` evaluates the same formula in
float32 arithmetic (as the programs do, exp included); over a dense grid of float32 values its
largest error against :func:`math.erf` is 1.3e-7 absolute and 1.8e-7 relative (about 1.5
float32 ulps; ``tests/test_epilogues.py`` measures it).  ``gelu`` uses the tail directly for
negative arguments (``Phi(x) = erfc(-x / sqrt 2) / 2``), so it keeps its relative accuracy where
``1 + erf`` would cancel.
"""

from __future__ import annotations

import math

import numpy as np

SMALL_LIMIT = 0.9
TAIL_LIMIT = 4.0
TAIL_CENTRE = 2.0

#: P: erf(x) / x as a polynomial in x^2 on [0, SMALL_LIMIT), lowest degree first.
SMALL = (1.1283791670925094, -0.37612638818355537, 0.11283789203302821, -0.02686591280470371,
         0.005222677645333454, -0.0008512854121270349, 0.00011514923599853051, -1.0512217137954224e-05)

#: R: erfc(a) * exp(a^2) as a polynomial in a - TAIL_CENTRE on [SMALL_LIMIT, TAIL_LIMIT), lowest first.
TAIL = (0.2553956850118536, -0.10679639424271721, 0.0418024234387085, -0.015461192338367877,
        0.005442774459460693, -0.0018309377519763435, 0.0005881408888275483, -0.0001837105098454445,
        5.910326831820723e-05, -1.8523808589206305e-05, 4.245633728294747e-06, -4.579247513214274e-07)

#: 1 / sqrt(2) and sqrt(2 / pi), the constants of gelu and gelu_tanh.
SQRT1_2 = math.sqrt(0.5)
SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


def _horner32(coefficients: tuple, u: np.ndarray) -> np.ndarray:
    result = np.full_like(u, np.float32(coefficients[-1]))
    for c in coefficients[-2::-1]:
        result = (result * u + np.float32(c)).astype(np.float32)
    return result


def erfc_tail_float32(a: np.ndarray) -> np.ndarray:
    """``erfc(a)`` for ``SMALL_LIMIT <= a`` as the programs compute it in float32 (0 from TAIL_LIMIT)."""
    a = np.asarray(a, dtype=np.float32)
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        e = np.exp(-(a * a)).astype(np.float32)
        tail = (e * _horner32(TAIL, (a - np.float32(TAIL_CENTRE)).astype(np.float32))).astype(np.float32)
    return np.where(a < np.float32(TAIL_LIMIT), tail, np.float32(0.0))


def erf_float32(x: np.ndarray) -> np.ndarray:
    """The programs' erf, evaluated in float32 with NumPy (for measuring its accuracy)."""
    x = np.asarray(x, dtype=np.float32)
    a = np.abs(x)
    with np.errstate(over="ignore", invalid="ignore"):
        small = (x * _horner32(SMALL, (x * x).astype(np.float32))).astype(np.float32)
    large = (np.float32(1.0) - erfc_tail_float32(np.maximum(a, np.float32(SMALL_LIMIT)))).astype(np.float32)
    return np.where(np.isnan(x), x, np.where(a < np.float32(SMALL_LIMIT), small, np.copysign(large, x)))
