"""One small spec per GPU program: its inputs, its output and its template parameters.

Like TF.js's program classes, a spec knows the maths' parameters (from the
geometry) and the inputs' texture layouts, but holds no GLSL: the template
named by ``template`` does.  Specs are frozen and hashable: the runtime caches
compiled programs under them, and two calls with the same spec share one program.

The specs live in one module per family: ``base`` (the ``Drawable``/``Program`` seams,
inputs, outputs, the epilogue), ``direct`` (TF.js's one-output-per-fragment programs),
``packed`` (the shape-generic fast programs and their split output), ``gradients`` and
``slice_sum`` (the gradient programs), ``conv3d``, ``matmul`` (im2col + matrix multiply) and
``annotate`` (``gpuconv shader --annotate``); every name is importable from here.
"""

from .annotate import (
    annotate,
    annotate_wgsl,
)
from .base import (
    LLVMPIPE_LOOP_LIMIT,
    Drawable,
    Epilogue,
    Program,
    ProgramInput,
    ProgramOutput,
    shape_text,
)
from .conv3d import (
    Conv3DProgramSpec,
    conv3d_backprop_filter_program,
    conv3d_backprop_input_program,
    conv3d_program,
)
from .direct import (
    ProgramSpec,
    conv2d_program,
    depthwise_conv2d_program,
)
from .gradients import (
    FILTER_GRADIENT_PARTIALS,
    FILTER_GRADIENT_SLICE,
    GradientProgramSpec,
    conv2d_backprop_filter_program,
    conv2d_backprop_input_program,
    filter_gradient_slices,
)
from .matmul import (
    Col2ImProgramSpec,
    Im2ColLayout,
    Im2ColProgramSpec,
    MatMulProgramSpec,
    TransposeMatMulProgramSpec,
    im2col_layout,
    im2col_programs,
    im2col_shortcut,
    im2col_unsupported,
    matmul_pixels,
    transpose_matmul_geometry,
    transpose_matmul_programs,
    transpose_matmul_unsupported,
)
from .packed import (
    PACKED_PIXELS,
    PackedGradientProgramSpec,
    PackedProgramSpec,
    packed_backprop_input_program,
    packed_backprop_input_unsupported,
    packed_epilogue_inputs,
    packed_pixels,
    packed_program,
    packed_unsupported,
)
from .slice_sum import (
    SliceSumProgramSpec,
    slice_sum_program,
)

__all__ = [
    "annotate",
    "annotate_wgsl",
    "Drawable",
    "Epilogue",
    "Program",
    "ProgramInput",
    "ProgramOutput",
    "shape_text",
    "Conv3DProgramSpec",
    "conv3d_backprop_filter_program",
    "conv3d_backprop_input_program",
    "conv3d_program",
    "ProgramSpec",
    "conv2d_program",
    "depthwise_conv2d_program",
    "FILTER_GRADIENT_PARTIALS",
    "FILTER_GRADIENT_SLICE",
    "LLVMPIPE_LOOP_LIMIT",
    "GradientProgramSpec",
    "conv2d_backprop_filter_program",
    "conv2d_backprop_input_program",
    "filter_gradient_slices",
    "Col2ImProgramSpec",
    "Im2ColLayout",
    "Im2ColProgramSpec",
    "MatMulProgramSpec",
    "im2col_layout",
    "im2col_programs",
    "im2col_shortcut",
    "im2col_unsupported",
    "matmul_pixels",
    "TransposeMatMulProgramSpec",
    "transpose_matmul_geometry",
    "transpose_matmul_programs",
    "transpose_matmul_unsupported",
    "PACKED_PIXELS",
    "PackedGradientProgramSpec",
    "PackedProgramSpec",
    "packed_backprop_input_program",
    "packed_backprop_input_unsupported",
    "packed_epilogue_inputs",
    "packed_pixels",
    "packed_program",
    "packed_unsupported",
    "SliceSumProgramSpec",
    "slice_sum_program",
]
