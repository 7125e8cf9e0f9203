"""``algorithm="im2col"``: TF.js's default conv2d path, and when ``"auto"`` takes it.

TF.js's WebGL backend runs conv2d as two packed programs: Im2ColPackedProgram lays every
receptive field out as a row of a matrix, MatMulPackedProgram multiplies that matrix by the
filter reshaped to ``[FH * FW * inC, outC]`` (and a 1x1 unpadded filter skips the first
program: x is the matrix, read at the strides).  The specs are :class:`~gpuconv.programs.Im2ColProgramSpec`
and :class:`~gpuconv.programs.MatMulProgramSpec` (``shaders/im2col.glsl``,
``shaders/matmul.glsl``); :func:`gpuconv.ops.plan_conv2d` chains them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .geometry import Conv2DGeometry
from .layout import SplitImageLayout
from .limits import Limits
from .programs import Epilogue, im2col_programs, im2col_shortcut, im2col_unsupported, transpose_matmul_unsupported

__all__ = ["choose_im2col", "im2col_programs", "auto_prefers_im2col", "auto_prefers_transpose_matmul",
           "choose_transpose_matmul"]


#: The largest im2col matrix (texels; 128 MiB of RGBA32F) "auto" writes: the largest measured,
#: 6.1M texels (97 MiB: an 11x11 over 224x224x3, stride 1), was 1.39x faster, but the matrix is
#: memory the packed program never needs.
AUTO_MAX_MATRIX_TEXELS = 1 << 23


def packed_reuses_columns(geometry: Conv2DGeometry) -> bool:
    """Whether the packed conv2d program fetches each input column once for its 8 pixels
    (:attr:`gpuconv.programs.PackedProgramSpec.reuse_width`: stride 1 and no dilation across,
    a filter 2-7 wide)."""
    g = geometry
    return g.stride_width == 1 and g.dilation_width == 1 and 1 < g.filter_width <= 7


def auto_prefers_im2col(geometry: Conv2DGeometry) -> bool:
    """The cost rule of ``algorithm="auto"``: im2col + matmul where it measured faster than the
    packed program on llvmpipe (2 cores, LLVM 15; draw-only medians, both timed in the same run
    taking turns, ``benchmarks/im2col_vs_packed.py --extra``, 2026-12-01; ratio = packed ms /
    im2col ms; the first figure from the run in README's Benchmarks, the second from another):

    * the 1x1 unpadded shortcut (the matrix multiply alone, no window arithmetic):
      1x56x56x128 -> 128 1.38x (1.41-1.55x in four runs before), 1x64x64x16 -> 32 1.46x,
      4x28x28x64 -> 64 1.26x; strided, reading only x's kept pixels (2026-12-07, draws + finish
      on resident inputs, interleaved): ResNet-18's stride-2 shortcuts 1x56x56x64 -> 128 1.37x,
      1x28x28x128 -> 256 1.37x, 1x14x14x256 -> 512 1.34x, 1x28x28x512 -> 256 1.35x;
    * a filter the packed program reuses no input columns for (stride or dilation across > 1,
      or wider than 7) over at most 4 input channels (one texel per tap: the packed program's
      per-tap bounds checks and loops are then most of its time; the matrix multiply has none)
      into at least 16 output channels, with a matrix of at most :data:`AUTO_MAX_MATRIX_TEXELS`:
      3x3 s2 1x128x128x3 -> 16 1.49x / 1.27x, 3x3 s2 1x224x224x3 -> 32 (MobileNet's first
      layer) 2.12x, 7x7 s2 1x224x224x3 -> 64 (ResNet's) 2.36x, 11x11 s4 1x224x224x3 -> 96
      (AlexNet's) 2.57x, 11x11 1x224x224x3 -> 16 1.39x, 11x11 1x64x64x3 -> 16 1.50x / 1.38x;
    * a filter up to 5x5 the packed program does reuse input columns for, over at most 4 input
      channels into at least 16 output channels (2026-12-07, draws + finish on resident inputs,
      interleaved, 9 runs each, load under 1): 3x3 1x224x224x3 -> 64 (VGG-16's first layer)
      1.44x / 1.56x, 3x3 1x128x128x3 -> 32 1.48x, 3x3 1x224x224x3 -> 16 1.17x, 3x3
      1x112x112x4 -> 32 1.21x, 3x3 1x64x64x1 -> 32 1.18x, 5x5 1x224x224x3 -> 32 1.10x; into
      8 output channels 0.99x, and at 7x7 (1x224x224x3 -> 32) 0.97x, so those stay packed.

    Never elsewhere: where the packed program reuses input columns over more channels im2col
    was 0.59-0.81x (3x3 1x64x64x16 -> 32 0.68x / 0.81x, 3x3 4x32x32x64 -> 64 0.81x / 0.51x,
    5x5 1x56x56x32 -> 32 0.59x); without reuse but over more input channels it
    was faster, but by little and unevenly (3x3 s2 1x56x56x32 -> 64 1.05x / 1.37x, 5x5 s2
    1x112x112x8 -> 16 1.06x / 1.25x, 3x3 dilation 2 1x64x64x16 -> 32 1.17x / 1.24x), so the
    packed program keeps those.  Padded 1x1 filters were not measured.

    Since the packed program walks such filter rows as flat runs of texels
    (:attr:`gpuconv.programs.PackedProgramSpec.flat_row`, 2026-12-07, ``benchmarks``' model
    layers, interleaved in one run, load 5-15 from other sessions), im2col over many channels
    was 0.53-1.17x of it, as fast on the whole: ResNet-18's 3x3/2 64>128 @56, 128>256 @28,
    256>512 @14 1.05x, 0.53x / 1.00x / 1.04x, 1.08x; ConvNeXt-Tiny's 2x2/2 96>192 @56,
    192>384 @28, 384>768 @14 0.93x, 1.17x / 0.95x / 0.92x, 1.07x (before the flat rows:
    1.17-1.71x), so the packed program (no matrix in memory, one draw) keeps them; over 3
    channels im2col still won, if less: ConvNeXt's 4x4/4 stem 1.30x / 1.63x / 1.30x (once
    0.82x), MobileNet's 3x3/2 first layer 1.53x / 1.00x.
    """
    g = geometry
    if g.depthwise or g.groups > 1:
        return False
    if im2col_shortcut(g):
        return True
    taps = g.filter_height * g.filter_width
    if taps == 1 or (packed_reuses_columns(g) and taps > 25):
        return False
    matrix = g.batch * g.out_height * g.out_width * taps * -(-g.in_channels // 4)
    return g.in_channels <= 4 and g.out_channels >= 16 and matrix <= AUTO_MAX_MATRIX_TEXELS


def choose_im2col(algorithm: str, geometry: Conv2DGeometry, epilogue: Epilogue, limits: Limits,
                  filter: Any = None, x: Any = None) -> bool:
    """Whether a conv2d call runs im2col + matmul: always under ``algorithm="im2col"`` (refused,
    with the reason, where it cannot run), under ``"auto"`` where :func:`auto_prefers_im2col`
    says it is faster, never otherwise.

    A tap on the padding is a zero in the im2col matrix, multiplied by its weight (as in TF.js),
    so a NaN or infinite weight there gives NaN where the direct and packed programs (and the
    oracle) skip the tap; ``"auto"`` therefore takes im2col for a padded convolution only when
    ``filter`` is a host array of finite values.  Nor does it for an ``x`` that is a packed
    program's output Tensor (split textures), which the packed 1x1 program reads in place.
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
    if isinstance(getattr(x, "layout", None), SplitImageLayout):
        return False
    if geometry.padded and not im2col_shortcut(geometry):
        if filter is None or not isinstance(filter, np.ndarray) or not np.isfinite(filter).all():
            return False
    return True




#: Multiply-adds from which "auto" runs a transposed convolution as matmul + col2im.
TRANSPOSE_MATMUL_MIN_MULTIPLY_ADDS = 2_000_000


def auto_prefers_transpose_matmul(geometry: Conv2DGeometry) -> bool:
    """The cost rule of ``algorithm="auto"`` for a transposed convolution / input gradient
    (``geometry``: the forward convolution's): the matrix multiply + col2im
    (:func:`gpuconv.programs.transpose_matmul_programs`) from
    :data:`TRANSPOSE_MATMUL_MIN_MULTIPLY_ADDS` multiply-adds, where it measured faster than
    PackedConv2DDerInputProgram.  (A stride-1 conv2d_transpose with a host filter runs as the
    forward convolution it equals before this rule is asked, ``gpuconv.ops._transpose_as_forward``:
    that measured as fast or faster, 1.0-1.8x.)

    The packed program walks a transposed convolution's taps for 8 pixels per fragment, and at
    stride 2 each tap lands on half of them (its mat4 of weights serves 4 pixels, not 8); the
    matrix multiply has no taps and no bounds checks and every weight serves 8 pixels; col2im then
    adds up ceil(FH / stride) * ceil(FW / stride) texels per output texel.  Below about 2M
    multiply-adds the second draw costs more than it saves.  Measured on llvmpipe (2 cores, load
    ~4-9 from other jobs), ``benchmarks/transpose_bench.py``: draw-only medians of 7 runs taking
    turns in one process (ratio = packed ms / matmul + col2im ms), 2026-12-07, against the packed
    program with its stepped filter rows:

    * stride 2: 5x5 16x16x128 -> 64 2.41x, 3x3 28x28x128 -> 64 2.37x, 4x4 14x14x256 -> 128 2.31x,
      2x2 14x14x256 -> 128 2.16x, 2x2 28x28x128 -> 64 1.83x, 3x3 32x32x32 -> 32 1.81x, 4x4
      32x32x64 -> 3 1.73x, 2x2 32x32x64 -> 32 1.68x, 4x4 2x16x16x32 -> 16 1.58x; under 2M: 3x3
      32x32x8 -> 8 (0.6M) 1.10x, 2x2 32x32x16 -> 8 (0.5M) 0.92x, 3x3 8x8x4 -> 4 (0.01M) 0.57x;
    * stride 1 (a filter Tensor, or pads beyond the filter: where it is not run as the forward
      convolution): 3x3 10x10x256 -> 256 1.57x, 7x7x512 -> 512 1.51x, 14x14x64 -> 64 1.41x,
      56x56x32 -> 32 1.01x; under 2M: 16x16x16 -> 16 (0.6M) 0.78x.
    """
    return geometry.multiply_adds >= TRANSPOSE_MATMUL_MIN_MULTIPLY_ADDS


def choose_transpose_matmul(algorithm: str, geometry: Conv2DGeometry, epilogue: Epilogue, limits: Limits,
                            bias_full: bool = False) -> bool:
    """Whether a conv2d_transpose / conv2d_backprop_input call runs the matrix multiply + col2im:
    always under ``algorithm="im2col"`` (refused, with the reason, where it cannot run), under
    ``"auto"`` where :func:`auto_prefers_transpose_matmul` says it is faster, never otherwise.
    (A filter Tensor is read through a conversion into TransposeMatMulFilterLayout.)"""
    if algorithm not in ("im2col", "auto"):
        return False
    reason = transpose_matmul_unsupported(geometry, epilogue, limits.max_texture_size, limits.max_draw_buffers)
    if reason is None and bias_full:
        reason = "a bias that varies within a channel runs only on the direct program"
    if algorithm == "im2col":
        if reason:
            raise ValueError(f"algorithm='im2col' cannot run this call: {reason}; "
                             f"use algorithm='auto', 'packed' or 'direct'")
        return True
    return reason is None and auto_prefers_transpose_matmul(geometry)
