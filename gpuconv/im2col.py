"""``algorithm="im2col"``: TF.js's default conv2d path, and when ``"auto"`` takes it.

TF.js's WebGL backend runs conv2d as two packed programs: Im2ColPackedProgram lays every
receptive field out as a row of a matrix, MatMulPackedProgram multiplies that matrix by the
filter reshaped to ``[FH * FW * inC, outC]`` (and a 1x1, stride-1, unpadded filter skips the
first program: x is the matrix).  The specs are :class:`~gpuconv.programs.Im2ColProgramSpec`
and :class:`~gpuconv.programs.MatMulProgramSpec` (``shaders/im2col.glsl``,
``shaders/matmul.glsl``); :func:`gpuconv.ops.plan_conv2d` chains them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .geometry import Conv2DGeometry
from .limits import Limits
from .programs import Epilogue, im2col_programs, im2col_shortcut, im2col_unsupported

__all__ = ["choose_im2col", "im2col_programs", "auto_prefers_im2col"]


def _padded(geometry: Conv2DGeometry) -> bool:
    g = geometry
    return any((g.pad_top, g.pad_bottom, g.pad_left, g.pad_right))


def auto_prefers_im2col(geometry: Conv2DGeometry) -> bool:
    """The cost rule of ``algorithm="auto"`` (measured on llvmpipe; see the comment below)."""
    return False


def choose_im2col(algorithm: str, geometry: Conv2DGeometry, epilogue: Epilogue, limits: Limits,
                  filter: Any = None) -> bool:
    """Whether a conv2d call runs im2col + matmul: always under ``algorithm="im2col"`` (refused,
    with the reason, where it cannot run), under ``"auto"`` where :func:`auto_prefers_im2col`
    says it is faster, never otherwise.

    A tap on the padding is a zero in the im2col matrix, multiplied by its weight (as in TF.js),
    so a NaN or infinite weight there gives NaN where the direct and packed programs (and the
    oracle) skip the tap; ``"auto"`` therefore takes im2col for a padded convolution only when
    ``filter`` is a host array of finite values.
    """
    if algorithm == "im2col":
        reason = im2col_unsupported(geometry, epilogue, limits.max_texture_size, limits.max_draw_buffers)
        if reason:
            raise ValueError(f"algorithm='im2col' cannot run this call: {reason}; "
                             f"use algorithm='auto', 'packed' or 'direct'")
        return True
    if algorithm != "auto" or not auto_prefers_im2col(geometry):
        return False
    if im2col_unsupported(geometry, epilogue, limits.max_texture_size, limits.max_draw_buffers):
        return False
    if _padded(geometry) and not im2col_shortcut(geometry):
        if filter is None or not isinstance(filter, np.ndarray) or not np.isfinite(filter).all():
            return False
    return True


