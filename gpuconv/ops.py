"""The public convolution ops: validate, plan (geometry + program spec), run on the GPU.

Each op is three steps wired together: normalise the arguments
(:mod:`~gpuconv.arguments`, :mod:`~gpuconv.geometry`), build the program spec
(:mod:`~gpuconv.programs`), and hand spec and arrays to the runtime
(:mod:`~gpuconv.runtime`).  :func:`shader_source` runs the same planning step
without GL and returns the generated fragment program(s).
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Tuple, Union, cast

import numpy as np
from numpy.typing import ArrayLike

from .arguments import as_tensor, check_alpha, check_bias, check_prelu_weights, check_residual, normalize_activation
from .geometry import (
    Conv2DGeometry,
    IntsLike,
    PaddingLike,
    ShapeLike,
    check_conv1d_arguments,
    conv2d_geometry,
    normalize_padding_1d,
)
from .im2col import choose_im2col, choose_transpose_matmul, im2col_programs
from .layout import SplitImageLayout, choose_fold
from .limits import Limits
from .plan import Plan
from .profiler import active_profile
from .programs import (
    Epilogue,
    Program,
    conv2d_backprop_filter_program,
    conv2d_backprop_input_program,
    conv2d_program,
    depthwise_conv2d_program,
    matmul_pixels,
    packed_backprop_input_program,
    packed_backprop_input_unsupported,
    packed_pixels,
    packed_program,
    packed_unsupported,
    transpose_matmul_programs,
)
from .runtimes import BaseRuntime, WebGPUError, get_runtime
from .storage import check_storage, resolve_storage
from .tensor import Tensor, collect, split_input_fold, tensors_in
from .tuning import autotuning, tuned_plan

#: What an op returns: a float32 array for arrays in, a :class:`~gpuconv.Tensor` (the result
#: kept on the GPU) when any input is a Tensor.
Result = Union[np.ndarray, Tensor]

_X_LAYOUTS = {"NHWC": "[batch, height, width, channels] or [height, width, channels]",
              "NCHW": "[batch, channels, height, width] or [channels, height, width]"}


#: ``algorithm=`` values: "direct" runs the TF.js-style programs, "packed" the fast
#: packed programs, "im2col" TF.js's default conv2d path (Im2ColPackedProgram, then
#: MatMulPackedProgram; for conv2d_transpose MatMulPackedProgram, then Col2ImProgram), "auto"
#: im2col where its cost rule says it is faster, else the packed ones wherever they apply.
ALGORITHMS = ("auto", "direct", "packed", "im2col")


def _choose_packed(algorithm: str, geometry: Conv2DGeometry, epilogue: Epilogue, limits: Limits) -> bool:
    if algorithm not in ALGORITHMS:
        raise ValueError(f"algorithm must be one of {', '.join(map(repr, ALGORITHMS))}, got {algorithm!r}")
    if algorithm == "direct":
        return False
    if algorithm == "im2col":  # plan_conv2d plans conv2d's im2col before it asks this
        raise ValueError("algorithm='im2col' runs conv2d and conv1d only (TF.js's im2col + matrix multiply); "
                         "use algorithm='auto', 'packed' or 'direct' for this op")
    reason = packed_unsupported(geometry, epilogue, limits.max_texture_size, limits.max_draw_buffers)
    if reason and algorithm == "packed":
        raise ValueError(f"algorithm='packed' cannot run this call: {reason}; use algorithm='auto' or 'direct'")
    return reason is None


def _choose_packed_backprop_input(algorithm: str, geometry: Conv2DGeometry, epilogue: Epilogue, limits: Limits,
                                  bias_full: bool = False) -> bool:
    """Whether conv2d_backprop_input / conv2d_transpose run PackedConv2DDerInputProgram."""
    if algorithm not in ALGORITHMS:
        raise ValueError(f"algorithm must be one of {', '.join(map(repr, ALGORITHMS))}, got {algorithm!r}")
    if algorithm == "direct":
        return False
    if algorithm == "im2col":  # the input gradient plans its matrix multiply + col2im before it asks this
        raise ValueError("algorithm='im2col' runs conv2d and conv1d only (TF.js's im2col + matrix multiply), "
                         "and conv2d_transpose and conv2d_backprop_input (a matrix multiply, then col2im); use "
                         "algorithm='auto', 'packed' or 'direct' for this op")
    reason = packed_backprop_input_unsupported(geometry, epilogue, bias_full=bias_full,
                                               max_texture_size=limits.max_texture_size,
                                               max_draw_buffers=limits.max_draw_buffers)
    if reason and algorithm == "packed":
        raise ValueError(f"algorithm='packed' cannot run this call: {reason}; use algorithm='auto' or 'direct'")
    return reason is None


def _batched_shape(x_shape: ShapeLike) -> Tuple[Tuple[int, ...], bool]:
    x_shape = tuple(int(d) for d in x_shape)
    return ((1,) + x_shape, False) if len(x_shape) == 3 else (x_shape, True)


def _epilogue(geometry: Conv2DGeometry, batched: bool, bias: Optional[ArrayLike], activation: Optional[str],
              leakyrelu_alpha: Optional[float], prelu_weights: Optional[ArrayLike], residual: Any = None
              ) -> Tuple[Epilogue, Dict[str, np.ndarray]]:
    activation = normalize_activation(activation)
    arrays = {}
    out_shape = geometry.out_shape if batched else geometry.out_shape[1:]
    channel_axis = (3 if geometry.channels_last else 1) - (0 if batched else 1)
    # anything that broadcasts to the output, as TF.js's fused ops take it: per channel when it
    # varies only along the channels, else at the output's shape (the direct programs read it so)
    bias = check_bias(bias, geometry.out_channels, out_shape=out_shape, channel_axis=channel_axis)
    bias_per_channel = bias is None or tuple(bias.shape) == (geometry.out_channels,)
    if bias is not None:
        arrays["bias"] = bias if (bias_per_channel or batched) else bias.reshape((1,) + tuple(bias.shape))
    per_channel = True
    if activation == "prelu":
        weights, per_channel = check_prelu_weights(prelu_weights, out_shape, channel_axis)
        arrays["preluActivationWeights"] = weights if (per_channel or batched) else \
            weights.reshape((1,) + weights.shape)
    elif prelu_weights is not None:
        raise ValueError(f"prelu_weights is only used with activation='prelu', got activation={activation!r}")
    if leakyrelu_alpha is not None and activation != "leakyrelu":  # refused as the oracle refuses it
        raise ValueError(f"leakyrelu_alpha is only used with activation='leakyrelu', got activation={activation!r}")
    # 0.2 (TF.js's default) when not given; unused by the other activations, so the spec
    # (and the program cache key) does not depend on it
    alpha = float(np.float32(check_alpha(0.2 if leakyrelu_alpha is None else leakyrelu_alpha)))
    _add_residual(arrays, residual, out_shape, batched)
    return Epilogue(activation, bias is not None, alpha, per_channel, bias_per_channel,
                    has_residual=residual is not None), arrays


def _add_residual(arrays: Dict[str, Any], residual: Any, out_shape: Tuple[int, ...], batched: bool) -> None:
    """``arrays["residual"]``: the residual checked to have the output's shape, batched as the programs read it."""
    residual = check_residual(residual, out_shape)
    if residual is not None:
        arrays["residual"] = residual if batched else residual.reshape((1,) + tuple(residual.shape))


def plan_conv2d(x: Any, filter: Any, strides: IntsLike = 1, padding: PaddingLike = "VALID",
                data_format: str = "NHWC", dilations: IntsLike = 1, dim_rounding_mode: Optional[str] = None, *,
                groups: int = 1, bias: Optional[ArrayLike] = None, activation: Optional[str] = None,
                leakyrelu_alpha: Optional[float] = None, prelu_weights: Optional[ArrayLike] = None,
                residual: Any = None, depthwise: bool = False, algorithm: str = "direct",
                limits: Limits = Limits(), shapes_only: bool = False) -> Plan:
    """Validate a conv2d/depthwise_conv2d call and choose its program.

    With ``shapes_only``, ``x`` and ``filter`` are shapes, not arrays (for
    :func:`shader_source`); fused-input arrays are still checked if given.
    """
    if shapes_only:
        x_shape, filter_shape = tuple(x), tuple(filter)
    else:
        x = as_tensor(x, "x", ranks=(3, 4), layout=_X_LAYOUTS.get(str(data_format).upper(), ""))
        filter_layout = ("[filter_height, filter_width, in_channels, channel_multiplier]" if depthwise
                         else "[filter_height, filter_width, in_channels / groups, out_channels]")
        filter = as_tensor(filter, "filter", ranks=(4,), layout=filter_layout)
        x_shape, filter_shape = x.shape, filter.shape
    if len(x_shape) not in (3, 4):
        raise ValueError(f"x must be rank 3 or 4, got shape {x_shape}")
    x4_shape, batched = _batched_shape(x_shape)
    geometry = conv2d_geometry(x4_shape, filter_shape, strides, padding, data_format, dilations,
                               dim_rounding_mode, groups=groups, depthwise=depthwise)
    epilogue, arrays = _epilogue(geometry, batched, bias, activation, leakyrelu_alpha, prelu_weights, residual)
    if not depthwise and choose_im2col(algorithm, geometry, epilogue, limits, None if shapes_only else filter,
                                         None if shapes_only else x):
        return _plan_im2col(geometry, epilogue, arrays, x, filter, x4_shape, batched, limits, shapes_only)
    spec: Program
    split_fold = None
    packed = _choose_packed(algorithm, geometry, epilogue, limits)
    if packed and depthwise and algorithm == "auto" and _nonfinite_weight_on_padding(geometry, filter, shapes_only):
        packed = False
    if packed:
        # A packed program's output Tensor is read in place by a 1x1 one (as separable_conv2d
        # chains) and by a depthwise one that reuses its columns (a MobileNet block's next half)
        draw_buffers = limits.max_draw_buffers
        split_fold = None if shapes_only else split_input_fold(x, geometry, packed_pixels(draw_buffers))
        if split_fold is None and not (shapes_only or depthwise):
            # A matrix multiply's narrow output (fewer render targets: matmul_pixels), such as a
            # squeeze-and-excite conv's, is read in place by a 1x1 program as narrow
            narrow = matmul_pixels(geometry, draw_buffers)
            split_fold = split_input_fold(x, geometry, narrow)
            draw_buffers = narrow if split_fold is not None else draw_buffers
        folds = {"x_fold": split_fold} if depthwise else {"fold": split_fold}
        spec = packed_program(geometry, epilogue, x_split=split_fold is not None, **folds,
                              max_texture_size=limits.max_texture_size, max_draw_buffers=draw_buffers)
    else:
        make = depthwise_conv2d_program if depthwise else conv2d_program
        spec = make(geometry, epilogue, limits.max_texture_size)
    if not shapes_only:
        if split_fold is not None:
            arrays.update({name: x.part(j) for j, name in enumerate(spec.chained_inputs)})
        else:
            arrays["x"] = x.reshape(x4_shape)
        arrays["W"] = filter
    out_shape = geometry.out_shape if batched else geometry.out_shape[1:]
    return Plan(((spec, arrays),), out_shape)


def _plan_im2col(geometry: Conv2DGeometry, epilogue: Epilogue, arrays: Dict[str, Any], x: Any, filter: Any,
                 x4_shape: Tuple[int, ...], batched: bool, limits: Limits, shapes_only: bool) -> Plan:
    """TF.js's default conv2d as a two-step plan: Im2ColPackedProgram writes the im2col matrix,
    which stays on the GPU for MatMulPackedProgram (bias and activation in its epilogue); a 1x1,
    unpadded filter (any stride) runs the matrix multiply alone on x."""
    specs = im2col_programs(geometry, epilogue, limits.max_texture_size, limits.max_draw_buffers)
    matmul_arrays: Dict[str, Any] = dict(arrays)
    im2col_arrays: Dict[str, Any] = {}
    if not shapes_only:
        (matmul_arrays if len(specs) == 1 else im2col_arrays)[specs[0].chained_inputs[0]] = x.reshape(x4_shape)
        matmul_arrays["W"] = filter
    steps = ((specs[0], matmul_arrays),) if len(specs) == 1 else ((specs[0], im2col_arrays),
                                                                   (specs[1], matmul_arrays))
    out_shape = geometry.out_shape if batched else geometry.out_shape[1:]
    return Plan(steps, out_shape)


def _check_tensors(tensors: List[Tensor], runtime: BaseRuntime) -> None:
    """Every Tensor argument alive and on ``runtime``."""
    for tensor in tensors:
        name = tensor.argument or "an argument"
        if tensor.released:
            raise ValueError(f"{name} is a Tensor that has been released")
        if tensor.runtime is not runtime:
            raise ValueError(f"{name} is a Tensor of another runtime; run the op on the runtime that holds it "
                             f"(runtime={name}.runtime) or move it there: gpuconv.to_gpu({name}.numpy(), runtime)")
        if getattr(runtime, "_released", False):
            raise ValueError(f"{name} is a Tensor of a runtime that has been released")


def _execute(op: str, make_plan: Callable[..., Plan], runtime: Optional[BaseRuntime],
             storage: Optional[str] = None, algorithm: Optional[str] = None) -> Any:
    """Plan (which checks every argument before any GL is touched), then run.

    ``make_plan(limits)`` builds the plan; it is planned again only when the
    runtime's device has smaller limits than the defaults.  ``op`` names the call
    for :func:`gpuconv.profile`.  ``storage`` ("float32", "float16" or ``None``: the
    runtime's :attr:`~gpuconv.BaseRuntime.storage`) is how every texture of the plan
    stores its values (:mod:`gpuconv.storage`).

    With a :class:`~gpuconv.Tensor` among the inputs, the call runs on the Tensors' runtime
    (every Tensor must be on the one used) and returns a Tensor (the result stays on the GPU);
    Tensors hold float32, so half-float storage is refused with them.

    ``algorithm`` is the call's, for an op that takes one: ``make_plan(limits, algorithm)``
    plans another, and an ``"auto"`` call under :func:`gpuconv.autotune` runs the algorithm
    this device measured fastest (:func:`gpuconv.tuning.tuned_plan`).
    """
    if storage is not None:
        check_storage(storage)
    planned: Optional[Plan]
    try:
        plan = planned = make_plan(Limits())
    except ValueError:
        if algorithm in (None, "direct"):
            raise
        # An algorithm WebGL2's programs cannot run for this call: the arguments checked with the
        # canonical programs, the runtime's target then says whether the algorithm runs there.
        plan, planned = make_plan(Limits(), "direct"), None
    tensors = tensors_in(plan.steps)
    if runtime is None:
        # A Tensor names its runtime structurally (gpuconv.tensor is below the runtimes); runtimes made it.
        runtime = cast(BaseRuntime, next((t for t in tensors if t.argument in ("x", "dy")), tensors[0]).runtime) \
            if tensors else get_runtime()
    elif not isinstance(runtime, BaseRuntime):
        raise TypeError(f"runtime must be a gpuconv runtime (gpuconv.Runtime(), gpuconv.BrowserRuntime()), "
                        f"got {type(runtime).__name__}")
    if tensors:
        _check_tensors(tensors, runtime)
    storage = resolve_storage(storage, getattr(runtime, "storage", "float32"))
    if tensors and storage != "float32":
        names = ", ".join(sorted({t.argument or "an argument" for t in tensors}))
        raise ValueError(f"storage={storage!r} cannot be used with gpuconv Tensors ({names}): a Tensor holds "
                         f"float32 textures; pass NumPy arrays to emulate half-float storage, or "
                         f"storage='float32' on a runtime whose default is {storage!r}")
    # The runtime's target turns the call's plan into the programs it runs (and plans again for a
    # device with smaller limits than the defaults).
    target, limits = runtime.target, runtime.limits
    plan = target.plan(make_plan, algorithm, limits, planned=planned)
    plan = plan.with_storage(runtime.require_storage(storage))
    if algorithm == "auto" and autotuning():
        plan = tuned_plan(op, plan, lambda choice: target.tuned_plan(make_plan, choice, limits), runtime)
    plan.check_loops(runtime.max_loop_iterations)
    profile = active_profile(runtime)
    try:
        if tensors:
            collect(runtime)
            return runtime.run_to_tensor(plan) if profile is None else profile.execute_to_tensor(op, plan, runtime)
        if profile is not None:
            return profile.execute(op, plan, runtime)
        return runtime.run(plan)
    except WebGPUError as error:  # name the op the refused program belonged to
        raise type(error)(f"{op}: {error}") from error


def conv2d(x: ArrayLike, filter: ArrayLike, strides: IntsLike = 1, padding: PaddingLike = "VALID",
           data_format: str = "NHWC", dilations: IntsLike = 1, dim_rounding_mode: Optional[str] = None, *,
           groups: int = 1, bias: Optional[ArrayLike] = None, activation: Optional[str] = None,
           leakyrelu_alpha: Optional[float] = None, prelu_weights: Optional[ArrayLike] = None,
           residual: Any = None, algorithm: str = "auto", runtime: Optional[BaseRuntime] = None,
        storage: Optional[str] = None) -> Result:
    """2-D convolution on the GPU, as ``tf.nn.conv2d`` / ``tf.conv2d`` define it.

    Args:
        x: ``[batch, height, width, channels]`` (NHWC) or ``[batch, channels,
            height, width]`` (NCHW); without the batch dimension the result has none either.
        filter: ``[filter_height, filter_width, in_channels / groups, out_channels]``.
        strides, dilations: an int, an ``(h, w)`` pair or TF's 4-list (``[1, h, w, 1]``
            for NHWC); strides and dilations may both exceed 1 (as in TF's conv2d).
        padding: ``"SAME"``, ``"VALID"``, an int (output size rounded by
            ``dim_rounding_mode``: ``"floor"``, ``"round"`` or ``"ceil"``) or explicit pads
            ``[[top, bottom], [left, right]]`` (or TF's 4x2 list).
        groups: grouped convolution; ``in_channels`` and ``out_channels`` divisible by it.
        bias, activation, leakyrelu_alpha, prelu_weights: a fused epilogue (TF.js's
            ``fused.conv2d``): a bias (one per output channel, or any shape that broadcasts
            to the output: a scalar, ``[1]``, the output's shape, ...), then one of ``"linear"``,
            ``"relu"``, ``"relu6"``, ``"elu"``, ``"sigmoid"``, ``"leakyrelu"``, ``"prelu"``, and
            those TF.js's fused ops lack: ``"swish"`` (x * sigmoid(x)), ``"hard_swish"`` (x * relu6(x + 3)
            / 6), ``"hard_sigmoid"`` (relu6(x + 3) / 6, as PyTorch and Keras 3), ``"gelu"`` (exact, with
            erf) and ``"gelu_tanh"`` (its tanh approximation); see :data:`gpuconv.arguments.ACTIVATIONS`.
        residual: an array or Tensor of the output's shape (exactly), added after the bias and
            before the activation (a ResNet or MobileNetV2 skip connection).
        algorithm: ``"direct"`` runs TF.js's Conv2DProgram (one output per fragment);
            ``"packed"`` the fast program (4 channels per texel, 8 pixels x 4 channels
            per fragment, one program for every shape); ``"im2col"`` TF.js's default path
            (Im2ColPackedProgram writes the im2col matrix, MatMulPackedProgram multiplies it
            by the filter; a 1x1 unpadded filter runs the matrix multiply alone);
            ``"auto"`` (default) im2col where it measured faster
            (:func:`gpuconv.im2col.auto_prefers_im2col`), else the packed one wherever it
            applies (not for groups > 1 or per-element PReLU weights).
        runtime: the :class:`~gpuconv.Runtime` to run on (default: headless EGL).
        storage: how every texture (inputs, intermediates, the output) stores its values:
            ``"float32"`` (R32F/RGBA32F) or ``"float16"`` (R16F/RGBA16F, as TF.js on devices
            without float32 render targets: the result drifts as it does on such a phone;
            :func:`gpuconv.oracle.conv2d` predicts it with the same ``storage=``); ``None``
            (default): the runtime's ``storage``.  Every op takes it.

    Returns:
        float32 array ``[batch, out_height, out_width, out_channels]`` (NHWC) or
        ``[batch, out_channels, out_height, out_width]`` (NCHW).

    Example:
        >>> y = gpuconv.conv2d(np.ones((1, 5, 5, 3), np.float32),
        ...                    np.ones((3, 3, 3, 2), np.float32), padding="SAME")
        >>> y.shape
        (1, 5, 5, 2)
    """
    return _execute("conv2d", lambda limits, algorithm=algorithm: plan_conv2d(
        x, filter, strides, padding, data_format, dilations, dim_rounding_mode, groups=groups,
        bias=bias, activation=activation, leakyrelu_alpha=leakyrelu_alpha,
        prelu_weights=prelu_weights, residual=residual, algorithm=algorithm, limits=limits), runtime, storage,
        algorithm)


def depthwise_conv2d(x: ArrayLike, filter: ArrayLike, strides: IntsLike = 1, padding: PaddingLike = "VALID",
                     data_format: str = "NHWC", dilations: IntsLike = 1, dim_rounding_mode: Optional[str] = None,
                     *, bias: Optional[ArrayLike] = None, activation: Optional[str] = None,
                     leakyrelu_alpha: Optional[float] = None, prelu_weights: Optional[ArrayLike] = None,
                     residual: Any = None, algorithm: str = "auto", runtime: Optional[BaseRuntime] = None,
        storage: Optional[str] = None) -> Result:
    """Depthwise 2-D convolution on the GPU, as ``tf.nn.depthwise_conv2d`` defines it.

    ``filter`` is ``[filter_height, filter_width, in_channels, channel_multiplier]``;
    output channel ``k * channel_multiplier + q`` is input channel ``k`` convolved
    with ``filter[:, :, k, q]``.  Other arguments (``algorithm`` included) as for
    :func:`conv2d`.

    Example:
        >>> y = gpuconv.depthwise_conv2d(np.ones((1, 8, 8, 3), np.float32),
        ...                              np.ones((3, 3, 3, 2), np.float32), padding="SAME")
        >>> y.shape
        (1, 8, 8, 6)
    """
    return _execute("depthwise_conv2d", lambda limits, algorithm=algorithm: plan_conv2d(
        x, filter, strides, padding, data_format, dilations, dim_rounding_mode, bias=bias,
        activation=activation, leakyrelu_alpha=leakyrelu_alpha, prelu_weights=prelu_weights,
        residual=residual, depthwise=True, algorithm=algorithm, limits=limits), runtime, storage, algorithm)


def plan_separable_conv2d(x: Any, depthwise_filter: Any, pointwise_filter: Any, strides: IntsLike = 1,
                          padding: PaddingLike = "VALID", data_format: str = "NHWC", dilations: IntsLike = 1, *,
                          bias: Optional[ArrayLike] = None, activation: Optional[str] = None,
                          leakyrelu_alpha: Optional[float] = None, prelu_weights: Optional[ArrayLike] = None,
                          residual: Any = None, algorithm: str = "direct", limits: Limits = Limits(),
                          shapes_only: bool = False) -> Plan:
    """A depthwise program chained into a 1x1 conv2d program (the intermediate stays on the GPU),
    which applies the fused epilogue (bias, residual, activation: after the pointwise step, as
    Keras's SeparableConv2D applies its bias and activation)."""
    depthwise = plan_conv2d(x, depthwise_filter, strides, padding, data_format, dilations,
                            depthwise=True, algorithm="direct", limits=limits,
                            shapes_only=shapes_only)
    if shapes_only:
        pointwise_shape = tuple(pointwise_filter)
    else:
        pointwise_filter = as_tensor(pointwise_filter, "pointwise_filter", ranks=(4,),
                                     layout="[1, 1, in_channels * channel_multiplier, out_channels]")
        pointwise_shape = pointwise_filter.shape
    channels = depthwise.geometry.out_channels
    if len(pointwise_shape) != 4 or pointwise_shape[:3] != (1, 1, channels):
        raise ValueError(
            f"pointwise_filter must have shape [1, 1, in_channels * channel_multiplier, out_channels] = "
            f"[1, 1, {channels}, out_channels], got {tuple(pointwise_shape)}"
        )
    geometry = conv2d_geometry(depthwise.geometry.out_shape, pointwise_shape, 1, "VALID", data_format)
    batched = len(depthwise.out_shape) == 4
    epilogue, arrays = _epilogue(geometry, batched, bias, activation, leakyrelu_alpha, prelu_weights, residual)
    first_spec, first_arrays = depthwise.steps[0]
    # Both halves packed (the pointwise program then reads the depthwise one's four
    # outputs directly) or both direct: the intermediate never leaves the GPU.
    spec: Program
    if _choose_packed(algorithm, first_spec.geometry, Epilogue(), limits) and \
            _choose_packed(algorithm, geometry, epilogue, limits):
        # One fold for both: the pointwise program reads the depthwise outputs in place.
        rows = geometry.batch * geometry.in_height
        widest = SplitImageLayout(geometry.batch, geometry.out_height, geometry.out_width,
                                  max(geometry.in_channels, geometry.out_channels),
                                  packed_pixels(limits.max_draw_buffers))
        fold = choose_fold(rows, widest.unfolded_cols, limits.max_texture_size)
        first_spec = packed_program(first_spec.geometry, fold=fold, max_texture_size=limits.max_texture_size,
                                    max_draw_buffers=limits.max_draw_buffers)
        spec = packed_program(geometry, epilogue, x_split=True, fold=fold, max_texture_size=limits.max_texture_size,
                              max_draw_buffers=limits.max_draw_buffers)
    else:
        spec = conv2d_program(geometry, epilogue, limits.max_texture_size)
    if not shapes_only:
        arrays["W"] = pointwise_filter
    out_shape = geometry.out_shape if batched else geometry.out_shape[1:]
    return Plan(((first_spec, first_arrays), (spec, arrays)), out_shape)


_CONV1D_FORMATS = {"NWC": "NHWC", "NCW": "NCHW"}


def plan_conv1d(x: Any, filter: Any, stride: int = 1, padding: PaddingLike = "VALID", data_format: str = "NWC",
                dilation: int = 1, dim_rounding_mode: Optional[str] = None, *, algorithm: str = "direct",
                limits: Limits = Limits(), shapes_only: bool = False) -> Plan:
    """conv1d as TF.js runs it: a conv2d of height 1."""
    if not isinstance(data_format, str) or data_format.upper() not in _CONV1D_FORMATS:
        raise ValueError(f"data_format must be 'NWC' or 'NCW' for conv1d, got {data_format!r}")
    data_format = data_format.upper()
    layout = "[batch, width, channels]" if data_format == "NWC" else "[batch, channels, width]"
    if shapes_only:
        x_shape, filter_shape = tuple(x), tuple(filter)
    else:
        x = as_tensor(x, "x", ranks=(2, 3), layout=layout)
        filter = as_tensor(filter, "filter", ranks=(3,), layout="[filter_width, in_channels, out_channels]")
        x_shape, filter_shape = x.shape, filter.shape
    check_conv1d_arguments(x_shape, filter_shape, stride, dilation, data_format)
    batched = len(x_shape) == 3
    x3_shape = x_shape if batched else (1,) + tuple(x_shape)
    # Height 1 goes just before width in either layout: [N, 1, W, C] or [N, C, 1, W].
    x4_shape = x3_shape[:-1] + (1, x3_shape[-1]) if data_format == "NCW" else \
        (x3_shape[0], 1) + tuple(x3_shape[1:])
    filter4_shape = (1,) + tuple(filter_shape)
    plan = plan_conv2d(
        x4_shape if shapes_only else x.reshape(x4_shape),
        filter4_shape if shapes_only else filter.reshape(filter4_shape),
        (1, stride), normalize_padding_1d(padding, data_format, dim_rounding_mode), _CONV1D_FORMATS[data_format],
        (1, dilation), dim_rounding_mode, algorithm=algorithm, limits=limits,
        shapes_only=shapes_only,
    )
    g = plan.geometry
    out_shape = (g.batch, g.out_width, g.out_channels) if data_format == "NWC" else \
        (g.batch, g.out_channels, g.out_width)
    return Plan(plan.steps, out_shape if batched else out_shape[1:])


def separable_conv2d(x: ArrayLike, depthwise_filter: ArrayLike, pointwise_filter: ArrayLike,
                     strides: IntsLike = 1, padding: PaddingLike = "VALID", data_format: str = "NHWC",
                     dilations: IntsLike = 1, *, bias: Optional[ArrayLike] = None, activation: Optional[str] = None,
                     leakyrelu_alpha: Optional[float] = None, prelu_weights: Optional[ArrayLike] = None,
                     residual: Any = None, algorithm: str = "auto", runtime: Optional[BaseRuntime] = None,
                     storage: Optional[str] = None) -> Result:
    """Depthwise then pointwise (1x1) convolution, as ``tf.nn.separable_conv2d`` defines it.

    ``depthwise_filter`` is ``[FH, FW, in_channels, channel_multiplier]``,
    ``pointwise_filter`` ``[1, 1, in_channels * channel_multiplier, out_channels]``.
    Runs two programs; the depthwise result stays in GPU textures between them.
    ``bias``, ``activation``, ``leakyrelu_alpha``, ``prelu_weights`` and ``residual``: the fused
    epilogue of :func:`conv2d`, applied after the pointwise step (as Keras's SeparableConv2D
    applies ``use_bias`` and ``activation``).  ``algorithm`` as for :func:`conv2d`.

    Example:
        >>> y = gpuconv.separable_conv2d(np.ones((1, 8, 8, 3), np.float32),
        ...     np.ones((3, 3, 3, 2), np.float32), np.ones((1, 1, 6, 4), np.float32), padding="SAME")
        >>> y.shape
        (1, 8, 8, 4)
    """
    return _execute("separable_conv2d", lambda limits, algorithm=algorithm: plan_separable_conv2d(
        x, depthwise_filter, pointwise_filter, strides, padding, data_format, dilations, bias=bias,
        activation=activation, leakyrelu_alpha=leakyrelu_alpha, prelu_weights=prelu_weights, residual=residual,
        algorithm=algorithm, limits=limits), runtime, storage, algorithm)


def conv1d(x: ArrayLike, filter: ArrayLike, stride: int = 1, padding: PaddingLike = "VALID",
           data_format: str = "NWC", dilation: int = 1, dim_rounding_mode: Optional[str] = None, *,
           algorithm: str = "auto", runtime: Optional[BaseRuntime] = None,
        storage: Optional[str] = None) -> Result:
    """1-D convolution as ``tf.conv1d`` (TF.js) defines it, run as a conv2d of height 1.

    ``x`` is ``[batch, width, channels]`` (NWC) or ``[batch, channels, width]``
    (NCW), with or without the batch dimension; ``filter`` is
    ``[filter_width, in_channels, out_channels]``; ``padding`` is ``"SAME"``,
    ``"VALID"``, an int (left and right), ``[left, right]`` or TF.js's 4-D form
    ``[[0, 0], [0, 0], [left, right], [0, 0]]``.  ``algorithm`` as for :func:`conv2d`.

    Example:
        >>> gpuconv.conv1d(np.ones((1, 10, 3), np.float32), np.ones((3, 3, 2), np.float32)).shape
        (1, 8, 2)
    """
    return _execute("conv1d", lambda limits, algorithm=algorithm: plan_conv1d(
        x, filter, stride, padding, data_format, dilation, dim_rounding_mode,
        algorithm=algorithm, limits=limits), runtime, storage, algorithm)


# ---------------------------------------------------------------------------
# The gradient and transposed convolutions (TF.js's Conv2DDerInputProgram and
# Conv2DDerFilterProgram, and their depthwise twins).  Each checks its arguments as its
# oracle twin (gpuconv.oracle.<op>) does, in the same order, so both raise the same errors.


def _gradient_arrays(data_format: Any, **tensors: Tuple[str, Any, Tuple[int, ...], str]
                     ) -> Tuple[str, Dict[str, Any]]:
    """``data_format`` normalised, and each tensor checked as an array, in the order given:
    ``input=(name, value, ranks, layout)`` names the program's input and the argument the
    messages name (an empty layout: the data format's image layout)."""
    from .geometry import normalize_data_format

    data_format = normalize_data_format(data_format)
    checked = {key: as_tensor(value, name, ranks=ranks, layout=layout or _X_LAYOUTS[data_format])
               for key, (name, value, ranks, layout) in tensors.items()}
    return data_format, checked


def _gradient_plan(spec: Program, arrays: Dict[str, Any], shapes_only: bool, geometry: Conv2DGeometry,
                   result_shape: Tuple[int, ...], batched: bool) -> Plan:
    """One program; the arrays batched to the program's rank-4 inputs."""
    if shapes_only:
        arrays = {}
    else:
        arrays = {name: (a if a.ndim == 4 or name == "W" else a.reshape((1,) + a.shape)) for name, a in arrays.items()}
    return Plan(((spec, arrays),), result_shape if batched else result_shape[1:])


_GRADIENT_FILTER_LAYOUT = "[filter_height, filter_width, in_channels, out_channels]"
_DEPTHWISE_GRADIENT_FILTER_LAYOUT = "[filter_height, filter_width, in_channels, channel_multiplier]"
_TRANSPOSE_FILTER_LAYOUT = "[filter_height, filter_width, out_channels, in_channels]"


def _plan_backprop_input(input_shape: Any, filter: Any, dy: Any, strides: Any, padding: Any, data_format: Any,
                         dilations: Any, dim_rounding_mode: Optional[str], limits: Limits, shapes_only: bool,
                         depthwise: bool, algorithm: str = "direct") -> Plan:
    from .geometry import conv2d_backprop_input_geometry

    layout = _DEPTHWISE_GRADIENT_FILTER_LAYOUT if depthwise else _GRADIENT_FILTER_LAYOUT
    if shapes_only:
        data_format, arrays = _gradient_arrays(data_format)
        filter_shape, dy_shape = tuple(filter), tuple(dy)
    else:
        data_format, arrays = _gradient_arrays(data_format, W=("filter", filter, (4,), layout),
                                               dy=("dy", dy, (3, 4), ""))
        filter_shape, dy_shape = arrays["W"].shape, arrays["dy"].shape
    geometry, batched = conv2d_backprop_input_geometry(input_shape, filter_shape, dy_shape, strides, padding,
                                                       data_format, dilations, dim_rounding_mode,
                                                       depthwise=depthwise)
    if not depthwise and choose_transpose_matmul(algorithm, geometry, Epilogue(), limits):
        result_shape = geometry.in_shape if batched else geometry.in_shape[1:]
        return _plan_transpose_matmul(geometry, Epilogue(), arrays, {}, result_shape, limits, shapes_only)
    spec: Program
    if not depthwise and _choose_packed_backprop_input(algorithm, geometry, Epilogue(), limits):
        spec = packed_backprop_input_program(geometry, Epilogue(), limits.max_texture_size, limits.max_draw_buffers)
    else:
        spec = conv2d_backprop_input_program(geometry, Epilogue(), limits.max_texture_size)
    return _gradient_plan(spec, arrays, shapes_only, geometry, geometry.in_shape, batched)


def _plan_backprop_filter(x: Any, filter_shape: Any, dy: Any, strides: Any, padding: Any, data_format: Any,
                          dilations: Any, dim_rounding_mode: Optional[str], limits: Limits, shapes_only: bool,
                          depthwise: bool) -> Plan:
    from .geometry import conv2d_backprop_filter_geometry
    from .programs import filter_gradient_slices

    if shapes_only:
        data_format, arrays = _gradient_arrays(data_format)
        x_shape, dy_shape = tuple(x), tuple(dy)
    else:
        data_format, arrays = _gradient_arrays(data_format, x=("x", x, (3, 4), ""), dy=("dy", dy, (3, 4), ""))
        x_shape, dy_shape = arrays["x"].shape, arrays["dy"].shape
    geometry, batched = conv2d_backprop_filter_geometry(x_shape, filter_shape, dy_shape, strides, padding,
                                                        data_format, dilations, dim_rounding_mode,
                                                        depthwise=depthwise)
    slices = filter_gradient_slices(geometry.batch * geometry.out_height * geometry.out_width,
                                    int(np.prod(geometry.filter_shape)))
    spec = conv2d_backprop_filter_program(geometry, limits.max_texture_size, slices)
    plan = _gradient_plan(spec, arrays, shapes_only, geometry, geometry.filter_shape, True)
    return _sum_slices(plan, limits)


def _sum_slices(plan: Plan, limits: Limits) -> Plan:
    """A filter gradient split into partial sums (``slices`` > 1) gets the program adding them up."""
    from .programs import slice_sum_program

    spec = plan.spec
    if getattr(spec, "slices", 1) == 1:
        return plan
    return Plan(plan.steps + ((slice_sum_program(spec, limits.max_texture_size), {}),), plan.out_shape)


def plan_conv2d_backprop_input(input_shape: Any, filter: Any, dy: Any, strides: Any = 1, padding: Any = "VALID",
                               data_format: str = "NHWC", dilations: Any = 1,
                               dim_rounding_mode: Optional[str] = None, *, algorithm: str = "direct",
                               limits: Limits = Limits(), shapes_only: bool = False) -> Plan:
    """Validate a conv2d_backprop_input call and choose its program (Conv2DDerInputProgram, or
    with ``algorithm`` "packed" PackedConv2DDerInputProgram, "im2col" MatMulPackedProgram then
    Col2ImProgram, "auto" either, as for :func:`plan_conv2d_transpose`).

    With ``shapes_only``, ``filter`` and ``dy`` are shapes, not arrays."""
    return _plan_backprop_input(input_shape, filter, dy, strides, padding, data_format, dilations,
                                dim_rounding_mode, limits, shapes_only, False, algorithm)


def plan_depthwise_conv2d_backprop_input(input_shape: Any, filter: Any, dy: Any, strides: Any = 1,
                                         padding: Any = "VALID", data_format: str = "NHWC", dilations: Any = 1,
                                         dim_rounding_mode: Optional[str] = None, *, limits: Limits = Limits(),
                                         shapes_only: bool = False) -> Plan:
    """:func:`plan_conv2d_backprop_input` of a depthwise convolution (DepthwiseConv2DDerInputProgram)."""
    return _plan_backprop_input(input_shape, filter, dy, strides, padding, data_format, dilations,
                                dim_rounding_mode, limits, shapes_only, True)


def plan_conv2d_backprop_filter(x: Any, filter_shape: Any, dy: Any, strides: Any = 1, padding: Any = "VALID",
                                data_format: str = "NHWC", dilations: Any = 1,
                                dim_rounding_mode: Optional[str] = None, *, limits: Limits = Limits(),
                                shapes_only: bool = False) -> Plan:
    """Validate a conv2d_backprop_filter call and choose its program (Conv2DDerFilterProgram).

    With ``shapes_only``, ``x`` and ``dy`` are shapes, not arrays."""
    return _plan_backprop_filter(x, filter_shape, dy, strides, padding, data_format, dilations,
                                 dim_rounding_mode, limits, shapes_only, False)


def plan_depthwise_conv2d_backprop_filter(x: Any, filter_shape: Any, dy: Any, strides: Any = 1,
                                          padding: Any = "VALID", data_format: str = "NHWC", dilations: Any = 1,
                                          dim_rounding_mode: Optional[str] = None, *, limits: Limits = Limits(),
                                          shapes_only: bool = False) -> Plan:
    """:func:`plan_conv2d_backprop_filter` of a depthwise convolution (DepthwiseConv2DDerFilterProgram)."""
    return _plan_backprop_filter(x, filter_shape, dy, strides, padding, data_format, dilations,
                                 dim_rounding_mode, limits, shapes_only, True)


def plan_conv2d_transpose(x: Any, filter: Any, output_shape: Any, strides: Any = 1, padding: Any = "VALID",
                          data_format: str = "NHWC", dilations: Any = 1, dim_rounding_mode: Optional[str] = None,
                          *, bias: Any = None, activation: Optional[str] = None,
                          leakyrelu_alpha: Optional[float] = None, prelu_weights: Any = None, residual: Any = None,
                          algorithm: str = "direct", limits: Limits = Limits(), shapes_only: bool = False) -> Plan:
    """Validate a conv2d_transpose call and choose its programs: Conv2DDerInputProgram with the
    fused epilogue (``algorithm`` "packed": PackedConv2DDerInputProgram; "im2col":
    MatMulPackedProgram then Col2ImProgram; "auto": im2col or packed, as
    :func:`gpuconv.im2col.choose_transpose_matmul` and the packed program's limits decide).
    With ``shapes_only``, ``x`` and ``filter`` are shapes (bias and PReLU weights are still
    arrays, as for :func:`plan_conv2d`)."""
    from .geometry import conv2d_transpose_geometry

    if shapes_only:
        data_format, arrays = _gradient_arrays(data_format)
        x_shape, filter_shape = tuple(x), tuple(filter)
    else:
        # x is the program's dy: the transposed convolution is the gradient of a forward one
        data_format, arrays = _gradient_arrays(data_format, dy=("x", x, (3, 4), ""),
                                               W=("filter", filter, (4,), _TRANSPOSE_FILTER_LAYOUT))
        x_shape, filter_shape = arrays["dy"].shape, arrays["W"].shape
    geometry, batched = conv2d_transpose_geometry(x_shape, filter_shape, output_shape, strides, padding,
                                                  data_format, dilations, dim_rounding_mode)
    # The epilogue acts on the result, whose shape is the forward convolution's input.
    result_shape = geometry.in_shape if batched else geometry.in_shape[1:]
    channel_axis = (3 if geometry.channels_last else 1) - (0 if batched else 1)
    activation = normalize_activation(activation)
    bias_array = check_bias(bias, geometry.in_channels, out_shape=result_shape, channel_axis=channel_axis)
    if leakyrelu_alpha is not None and activation != "leakyrelu":
        raise ValueError(f"leakyrelu_alpha is only used with activation='leakyrelu', got activation={activation!r}")
    alpha = float(np.float32(check_alpha(0.2 if leakyrelu_alpha is None else leakyrelu_alpha)))
    per_channel = True
    fused: Dict[str, Any] = {}
    if activation == "prelu":
        weights, per_channel = check_prelu_weights(prelu_weights, result_shape, channel_axis)
        fused["preluActivationWeights"] = weights if (per_channel or batched) else \
            weights.reshape((1,) + weights.shape)
    elif prelu_weights is not None:
        raise ValueError(f"prelu_weights is only used with activation='prelu', got activation={activation!r}")
    bias_full = bias_array is not None and bias_array.ndim > 1
    if bias_array is not None:
        fused["bias"] = bias_array if (not bias_full or batched) else bias_array.reshape((1,) + bias_array.shape)
    forward = _transpose_as_forward(geometry, algorithm, bias_full, per_channel, filter_shape,
                                    None if shapes_only else arrays["W"])
    if forward is not None:
        padding_forward, filter_forward = forward
        return plan_conv2d(x_shape if shapes_only else arrays["dy"], filter_forward, 1, padding_forward, data_format,
                           (geometry.dilation_height, geometry.dilation_width), bias=bias, activation=activation,
                           leakyrelu_alpha=leakyrelu_alpha, prelu_weights=prelu_weights, residual=residual,
                           algorithm="auto", limits=limits, shapes_only=shapes_only)
    _add_residual(fused, residual, result_shape, batched)
    epilogue = Epilogue(activation, bias_array is not None, alpha, per_channel, has_residual=residual is not None)
    if choose_transpose_matmul(algorithm, geometry, epilogue, limits, bias_full):
        return _plan_transpose_matmul(geometry, epilogue, arrays, fused, result_shape, limits, shapes_only)
    spec: Program
    if _choose_packed_backprop_input(algorithm, geometry, epilogue, limits, bias_full):
        spec = packed_backprop_input_program(geometry, epilogue, limits.max_texture_size, limits.max_draw_buffers)
    else:
        spec = conv2d_backprop_input_program(geometry, epilogue, limits.max_texture_size, bias_full=bias_full)
    plan = _gradient_plan(spec, arrays, shapes_only, geometry, geometry.in_shape, batched)
    if not shapes_only:
        plan = Plan(((spec, {**plan.steps[0][1], **fused}),), plan.out_shape)
    return plan


def _nonfinite_weight_on_padding(geometry: Conv2DGeometry, filter: Any, shapes_only: bool) -> bool:
    """Whether a padded call's host filter holds a NaN or infinity: the packed depthwise program
    masks padding columns to zero (a select, not a branch per fetch), and zero times such a
    weight is NaN where the oracle (and the direct program) skips the tap."""
    return (not shapes_only and geometry.padded and isinstance(filter, np.ndarray)
            and not bool(np.isfinite(filter).all()))


def _transpose_as_forward(geometry: Conv2DGeometry, algorithm: str, bias_full: bool, prelu_per_channel: bool,
                          filter_shape: Tuple[int, ...], filter: Any
                          ) -> Optional[Tuple[Tuple[Tuple[int, int], Tuple[int, int]], Any]]:
    """Under ``"auto"``, a stride-1 transposed convolution as the forward convolution it equals:
    ``(the pads, the filter)``, or ``None`` where it runs as the input gradient.

    At stride 1 the transposed convolution of dy is the convolution of dy with the filter flipped
    in space and its channel axes swapped, padded by ``effective filter - 1 - pad``; the forward
    packed program then fetches each input column once for its 8 pixels (the input-gradient
    program has no such reuse).  Measured on llvmpipe (draw-only, interleaved in one run, load
    ~15 from other sessions, two runs): 3x3 SAME 1x10x10x256 -> 256 1.87x / 1.20x faster,
    1x28x28x64 -> 64 2.48x / 1.83x, 1x56x56x32 -> 32 2.18x / 1.81x.
    The filter must be a host array (flipped here, on the host, as it is packed anyway)."""
    g = geometry
    if algorithm != "auto" or (g.stride_height, g.stride_width) != (1, 1) or bias_full or not prelu_per_channel:
        return None
    if filter is not None and not isinstance(filter, np.ndarray):
        return None  # a Tensor: read in place by the input-gradient program
    pads = ((g.effective_filter_height - 1 - g.pad_top, g.effective_filter_height - 1 - g.pad_bottom),
            (g.effective_filter_width - 1 - g.pad_left, g.effective_filter_width - 1 - g.pad_right))
    if min(min(pair) for pair in pads) < 0:
        return None
    fh, fw, out_channels, in_channels = filter_shape
    flipped = (fh, fw, in_channels, out_channels) if filter is None else \
        np.ascontiguousarray(filter[::-1, ::-1].transpose(0, 1, 3, 2))
    return pads, flipped


def _plan_transpose_matmul(geometry: Conv2DGeometry, epilogue: Epilogue, arrays: Dict[str, Any],
                           fused: Dict[str, Any], result_shape: Tuple[int, ...], limits: Limits,
                           shapes_only: bool) -> Plan:
    """conv2d_transpose as MatMulPackedProgram (x times the filter read as [inC, FH * FW * outC]:
    TransposeMatMulFilterLayout) then Col2ImProgram (the taps added up, the fused epilogue)."""
    multiply, col2im = transpose_matmul_programs(geometry, epilogue, limits.max_texture_size,
                                                 limits.max_draw_buffers)
    if shapes_only:
        return Plan(((multiply, {}), (col2im, {})), result_shape)
    x = arrays["dy"]
    x4 = x if x.ndim == 4 else x.reshape((1,) + tuple(x.shape))
    return Plan(((multiply, {"A": x4, "W": arrays["W"]}), (col2im, fused)), result_shape)


def conv2d_backprop_input(input_shape: Any, filter: Any, dy: Any, strides: Any = 1, padding: Any = "VALID",
                          data_format: str = "NHWC", dilations: Any = 1, dim_rounding_mode: Optional[str] = None,
                          *, algorithm: str = "auto", runtime: Optional[BaseRuntime] = None,
        storage: Optional[str] = None) -> Result:
    """The gradient of :func:`conv2d` with respect to its input, on the GPU
    (``tf.raw_ops.Conv2DBackpropInput``; TF.js's Conv2DDerInputProgram).

    Args:
        input_shape: the forward input's shape in ``data_format`` (the batch may be left
            out: it is then ``dy``'s).
        filter: ``[filter_height, filter_width, in_channels, out_channels]``.
        dy: the gradient of the forward output, of the forward convolution's output shape
            (without the batch, the result has none either).
        strides, padding, data_format, dilations, dim_rounding_mode: the forward
            convolution's, as for :func:`conv2d` (strides and dilations may both exceed 1).
        algorithm: ``"direct"`` TF.js's Conv2DDerInputProgram, ``"packed"``
            PackedConv2DDerInputProgram (dy 4 channels per texel, 8 dx pixels x 4 channels
            per fragment, the filter swapped on upload), ``"im2col"`` dy times the filter
            (MatMulPackedProgram), then Col2ImProgram adding up each dx pixel's taps (a host
            filter), ``"auto"`` (default) im2col where
            :func:`gpuconv.im2col.auto_prefers_transpose_matmul` measured it faster, else the
            packed one wherever it runs.

    Returns:
        float32 array of ``input_shape``: ``dx[b, i, c] = sum dy[b, o, k] * filter[t, c, k]``
        over ``o * strides + t * dilations - pad = i``, as :func:`gpuconv.oracle.conv2d_backprop_input`.

    Example:
        >>> gpuconv.conv2d_backprop_input((1, 5, 5, 3), np.ones((3, 3, 3, 2), np.float32),
        ...                               np.ones((1, 3, 3, 2), np.float32)).shape
        (1, 5, 5, 3)
    """
    return _execute("conv2d_backprop_input", lambda limits, algorithm=algorithm: plan_conv2d_backprop_input(
        input_shape, filter, dy, strides, padding, data_format, dilations, dim_rounding_mode, algorithm=algorithm,
        limits=limits), runtime, storage, algorithm)


def conv2d_backprop_filter(x: Any, filter_shape: Any, dy: Any, strides: Any = 1, padding: Any = "VALID",
                           data_format: str = "NHWC", dilations: Any = 1, dim_rounding_mode: Optional[str] = None,
                           *, runtime: Optional[BaseRuntime] = None,
        storage: Optional[str] = None) -> Result:
    """The gradient of :func:`conv2d` with respect to its filter, on the GPU
    (``tf.raw_ops.Conv2DBackpropFilter``; TF.js's Conv2DDerFilterProgram).

    ``x`` is the forward input, ``filter_shape`` ``[FH, FW, in_channels, out_channels]``,
    ``dy`` the gradient of the forward output (``x`` and ``dy`` both with the batch or
    both without); the other arguments are the forward convolution's.  Returns float32
    of ``filter_shape``: ``df[t, c, k] = sum_{b, o} x[b, o * strides + t * dilations - pad, c] * dy[b, o, k]``.

    Example:
        >>> gpuconv.conv2d_backprop_filter(np.ones((1, 5, 5, 3), np.float32), (3, 3, 3, 2),
        ...                                np.ones((1, 3, 3, 2), np.float32)).shape
        (3, 3, 3, 2)
    """
    return _execute("conv2d_backprop_filter", lambda limits: plan_conv2d_backprop_filter(
        x, filter_shape, dy, strides, padding, data_format, dilations, dim_rounding_mode, limits=limits),
        runtime, storage)


def depthwise_conv2d_backprop_input(input_shape: Any, filter: Any, dy: Any, strides: Any = 1,
                                    padding: Any = "VALID", data_format: str = "NHWC", dilations: Any = 1,
                                    dim_rounding_mode: Optional[str] = None, *,
                                    runtime: Optional[BaseRuntime] = None,
        storage: Optional[str] = None) -> Result:
    """The gradient of :func:`depthwise_conv2d` with respect to its input, on the GPU
    (``tf.raw_ops.DepthwiseConv2dNativeBackpropInput``; TF.js's DepthwiseConv2DDerInputProgram).

    ``filter`` is ``[FH, FW, in_channels, channel_multiplier]``; ``dy`` has
    ``in_channels * channel_multiplier`` channels.  Strides and dilations may not both
    exceed 1.  Otherwise as :func:`conv2d_backprop_input`.
    """
    return _execute("depthwise_conv2d_backprop_input", lambda limits: plan_depthwise_conv2d_backprop_input(
        input_shape, filter, dy, strides, padding, data_format, dilations, dim_rounding_mode, limits=limits),
        runtime, storage)


def depthwise_conv2d_backprop_filter(x: Any, filter_shape: Any, dy: Any, strides: Any = 1,
                                     padding: Any = "VALID", data_format: str = "NHWC", dilations: Any = 1,
                                     dim_rounding_mode: Optional[str] = None, *,
                                     runtime: Optional[BaseRuntime] = None,
        storage: Optional[str] = None) -> Result:
    """The gradient of :func:`depthwise_conv2d` with respect to its filter, on the GPU
    (``tf.raw_ops.DepthwiseConv2dNativeBackpropFilter``; TF.js's DepthwiseConv2DDerFilterProgram):
    float32 of ``filter_shape`` ``[FH, FW, in_channels, channel_multiplier]``.  Otherwise as
    :func:`conv2d_backprop_filter`.
    """
    return _execute("depthwise_conv2d_backprop_filter", lambda limits: plan_depthwise_conv2d_backprop_filter(
        x, filter_shape, dy, strides, padding, data_format, dilations, dim_rounding_mode, limits=limits),
        runtime, storage)


def conv2d_transpose(x: Any, filter: Any, output_shape: Any, strides: Any = 1, padding: Any = "VALID",
                     data_format: str = "NHWC", dilations: Any = 1, dim_rounding_mode: Optional[str] = None, *,
                     bias: Any = None, activation: Optional[str] = None, leakyrelu_alpha: Optional[float] = None,
                     prelu_weights: Any = None, residual: Any = None, algorithm: str = "auto",
                     runtime: Optional[BaseRuntime] = None, storage: Optional[str] = None) -> Result:
    """Transposed convolution on the GPU (TF.js ``conv2dTranspose``, ``tf.nn.conv2d_transpose``).

    ``x``: ``[N, H, W, inC]`` / ``[N, inC, H, W]`` (or without ``N``); ``filter``:
    ``[FH, FW, outC, inC]``; ``output_shape``: the result's shape in ``data_format``
    (the batch may be left out: it is then ``x``'s).  It is
    ``conv2d_backprop_input(output_shape, filter, x, ...)`` (Conv2DDerInputProgram), then
    the fused epilogue: ``bias`` (one per output channel, or anything that broadcasts to
    the output), a ``residual`` of the output's shape and the activation, as in :func:`conv2d`.  Returns float32 of
    ``output_shape`` (rank 3 when ``x`` is), as :func:`gpuconv.oracle.conv2d_transpose`.
    ``algorithm``: ``"direct"`` (Conv2DDerInputProgram), ``"packed"`` (PackedConv2DDerInputProgram:
    not for a bias or PReLU weights varying within a channel), ``"im2col"`` (MatMulPackedProgram,
    then Col2ImProgram adding up each output pixel's taps; a host filter) or ``"auto"``
    (default: im2col where :func:`gpuconv.im2col.auto_prefers_transpose_matmul` measured it
    faster, else packed wherever it runs).

    Example:
        >>> gpuconv.conv2d_transpose(np.ones((1, 3, 3, 2), np.float32), np.ones((3, 3, 4, 2), np.float32),
        ...                          (1, 6, 6, 4), strides=2, padding="SAME").shape
        (1, 6, 6, 4)
    """
    return _execute("conv2d_transpose", lambda limits, algorithm=algorithm: plan_conv2d_transpose(
        x, filter, output_shape, strides, padding, data_format, dilations, dim_rounding_mode, bias=bias,
        activation=activation, leakyrelu_alpha=leakyrelu_alpha, prelu_weights=prelu_weights, residual=residual,
        algorithm=algorithm, limits=limits), runtime, storage, algorithm)


# ---------------------------------------------------------------------------
# The 3-D convolution (TF.js's Conv3DProgram); arguments checked as gpuconv.oracle.conv3d checks them.

_X_LAYOUTS_3D = {"NDHWC": "[batch, depth, height, width, channels] or [depth, height, width, channels]",
                 "NCDHW": "[batch, channels, depth, height, width] or [channels, depth, height, width]"}
_FILTER_LAYOUT_3D = "[filter_depth, filter_height, filter_width, in_channels, out_channels]"


def plan_conv3d(x: Any, filter: Any, strides: Any = 1, padding: Any = "VALID", data_format: str = "NDHWC",
                dilations: Any = 1, dim_rounding_mode: Optional[str] = None, *, limits: Limits = Limits(),
                shapes_only: bool = False) -> Plan:
    """Validate a conv3d call and choose its program (Conv3DProgram).

    With ``shapes_only``, ``x`` and ``filter`` are shapes, not arrays."""
    from .geometry import conv3d_geometry, normalize_data_format_3d
    from .programs import conv3d_program

    data_format = normalize_data_format_3d(data_format)
    arrays: Dict[str, Any] = {}
    if shapes_only:
        x_shape, filter_shape = tuple(int(d) for d in x), tuple(int(d) for d in filter)
        if len(x_shape) not in (4, 5):
            raise ValueError(f"x must be rank 4 or 5 ({_X_LAYOUTS_3D[data_format]}), got shape {x_shape}")
    else:
        x = as_tensor(x, "x", ranks=(4, 5), layout=_X_LAYOUTS_3D[data_format])
        filter = as_tensor(filter, "filter", ranks=(5,), layout=_FILTER_LAYOUT_3D)
        x_shape, filter_shape = x.shape, filter.shape
    batched = len(x_shape) == 5
    x5_shape = tuple(x_shape) if batched else (1,) + tuple(x_shape)
    geometry = conv3d_geometry(x5_shape, filter_shape, strides, padding, data_format, dilations, dim_rounding_mode)
    spec = conv3d_program(geometry, limits.max_texture_size)
    if not shapes_only:
        arrays = {"x": x.reshape(x5_shape), "W": filter}
    out_shape = tuple(geometry.out_shape)
    return Plan(((spec, arrays),), out_shape if batched else out_shape[1:])


def conv3d(x: Any, filter: Any, strides: Any = 1, padding: Any = "VALID", data_format: str = "NDHWC",
           dilations: Any = 1, dim_rounding_mode: Optional[str] = None, *,
           runtime: Optional[BaseRuntime] = None,
        storage: Optional[str] = None) -> Result:
    """3-D convolution on the GPU, as ``tf.nn.conv3d`` / TF.js ``conv3d`` define it (TF.js's Conv3DProgram).

    Args:
        x: ``[batch, depth, height, width, channels]`` (NDHWC) or ``[batch, channels,
            depth, height, width]`` (NCDHW); without the batch the result has none either.
        filter: ``[filter_depth, filter_height, filter_width, in_channels, out_channels]``.
        strides, dilations: an int, a ``(d, h, w)`` triple or TF's 5-list (both may exceed 1).
        padding: ``"SAME"``, ``"VALID"``, an int (output size rounded by ``dim_rounding_mode``)
            or explicit ``[[front, back], [top, bottom], [left, right]]`` (or TF's 5x2 list).

    Returns:
        float32 ``[batch, out_depth, out_height, out_width, out_channels]`` (NDHWC) or
        ``[batch, out_channels, out_depth, out_height, out_width]`` (NCDHW), as
        :func:`gpuconv.oracle.conv3d`.

    Example:
        >>> gpuconv.conv3d(np.ones((1, 5, 5, 5, 2), np.float32), np.ones((3, 3, 3, 2, 4), np.float32)).shape
        (1, 3, 3, 3, 4)
    """
    return _execute("conv3d", lambda limits: plan_conv3d(x, filter, strides, padding, data_format, dilations,
                                               dim_rounding_mode, limits=limits), runtime, storage)


# The 3-D gradients and the transposed 3-D convolution (TF.js's Conv3DDerInputProgram and
# Conv3DDerFilterProgram), checked as their oracle twins check them.

_TRANSPOSE_FILTER_LAYOUT_3D = "[filter_depth, filter_height, filter_width, out_channels, in_channels]"


def _checked_3d(data_format: Any, **tensors: Tuple[str, Any, Tuple[int, ...], str]) -> Tuple[str, Dict[str, Any]]:
    """As :func:`_gradient_arrays`, for the 3-D data formats."""
    from .geometry import normalize_data_format_3d

    data_format = normalize_data_format_3d(data_format)
    checked = {key: as_tensor(value, name, ranks=ranks, layout=layout or _X_LAYOUTS_3D[data_format])
               for key, (name, value, ranks, layout) in tensors.items()}
    return data_format, checked


def _plan_3d(spec: Program, arrays: Dict[str, Any], result_shape: Tuple[int, ...], batched: bool) -> Plan:
    arrays = {name: (a if a.ndim == 5 else a.reshape((1,) + a.shape)) for name, a in arrays.items()}
    return Plan(((spec, arrays),), tuple(result_shape) if batched else tuple(result_shape)[1:])


def plan_conv3d_backprop_input(input_shape: Any, filter: Any, dy: Any, strides: Any = 1, padding: Any = "VALID",
                               data_format: str = "NDHWC", dilations: Any = 1,
                               dim_rounding_mode: Optional[str] = None, *, limits: Limits = Limits(),
                               shapes_only: bool = False) -> Plan:
    """Validate a conv3d_backprop_input call and choose its program (Conv3DDerInputProgram).

    With ``shapes_only``, ``filter`` and ``dy`` are shapes, not arrays."""
    from .geometry import conv3d_backprop_input_geometry
    from .programs import conv3d_backprop_input_program

    if shapes_only:
        data_format, arrays = _checked_3d(data_format)
        filter_shape, dy_shape = tuple(filter), tuple(dy)
    else:
        data_format, arrays = _checked_3d(data_format, W=("filter", filter, (5,), _FILTER_LAYOUT_3D),
                                          dy=("dy", dy, (4, 5), ""))
        filter_shape, dy_shape = arrays["W"].shape, arrays["dy"].shape
    geometry, batched = conv3d_backprop_input_geometry(input_shape, filter_shape, dy_shape, strides, padding,
                                                       data_format, dilations, dim_rounding_mode)
    spec = conv3d_backprop_input_program(geometry, limits.max_texture_size)
    return _plan_3d(spec, arrays, geometry.in_shape, batched)


def plan_conv3d_backprop_filter(x: Any, filter_shape: Any, dy: Any, strides: Any = 1, padding: Any = "VALID",
                                data_format: str = "NDHWC", dilations: Any = 1,
                                dim_rounding_mode: Optional[str] = None, *, limits: Limits = Limits(),
                                shapes_only: bool = False) -> Plan:
    """Validate a conv3d_backprop_filter call and choose its program (Conv3DDerFilterProgram).

    With ``shapes_only``, ``x`` and ``dy`` are shapes, not arrays."""
    from .geometry import conv3d_backprop_filter_geometry
    from .programs import conv3d_backprop_filter_program, filter_gradient_slices

    if shapes_only:
        data_format, arrays = _checked_3d(data_format)
        x_shape, dy_shape = tuple(x), tuple(dy)
    else:
        data_format, arrays = _checked_3d(data_format, x=("x", x, (4, 5), ""), dy=("dy", dy, (4, 5), ""))
        x_shape, dy_shape = arrays["x"].shape, arrays["dy"].shape
    geometry, _ = conv3d_backprop_filter_geometry(x_shape, filter_shape, dy_shape, strides, padding,
                                                  data_format, dilations, dim_rounding_mode)
    slices = filter_gradient_slices(geometry.batch * int(np.prod(geometry.out_spatial)),
                                    int(np.prod(geometry.filter_shape)))
    spec = conv3d_backprop_filter_program(geometry, limits.max_texture_size, slices)
    return _sum_slices(_plan_3d(spec, arrays, geometry.filter_shape, True), limits)


def plan_conv3d_transpose(x: Any, filter: Any, output_shape: Any, strides: Any = 1, padding: Any = "VALID",
                          data_format: str = "NDHWC", dilations: Any = 1, dim_rounding_mode: Optional[str] = None,
                          *, limits: Limits = Limits(), shapes_only: bool = False) -> Plan:
    """Validate a conv3d_transpose call and choose its program (Conv3DDerInputProgram, ``x`` as its dy).

    With ``shapes_only``, ``x`` and ``filter`` are shapes, not arrays."""
    from .geometry import conv3d_transpose_geometry
    from .programs import conv3d_backprop_input_program

    if shapes_only:
        data_format, arrays = _checked_3d(data_format)
        x_shape, filter_shape = tuple(x), tuple(filter)
    else:
        data_format, arrays = _checked_3d(data_format, dy=("x", x, (4, 5), ""),
                                          W=("filter", filter, (5,), _TRANSPOSE_FILTER_LAYOUT_3D))
        x_shape, filter_shape = arrays["dy"].shape, arrays["W"].shape
    geometry, batched = conv3d_transpose_geometry(x_shape, filter_shape, output_shape, strides, padding,
                                                  data_format, dilations, dim_rounding_mode)
    spec = conv3d_backprop_input_program(geometry, limits.max_texture_size)
    return _plan_3d(spec, arrays, geometry.in_shape, batched)


def conv3d_backprop_input(input_shape: Any, filter: Any, dy: Any, strides: Any = 1, padding: Any = "VALID",
                          data_format: str = "NDHWC", dilations: Any = 1, dim_rounding_mode: Optional[str] = None,
                          *, runtime: Optional[BaseRuntime] = None,
        storage: Optional[str] = None) -> Result:
    """The gradient of :func:`conv3d` with respect to its input, on the GPU
    (``tf.raw_ops.Conv3DBackpropInputV2``; TF.js's Conv3DDerInputProgram): as
    :func:`conv2d_backprop_input` with a filter ``[FD, FH, FW, inC, outC]``; float32 of
    ``input_shape`` (rank 4 when ``dy`` is), as :func:`gpuconv.oracle.conv3d_backprop_input`."""
    return _execute("conv3d_backprop_input", lambda limits: plan_conv3d_backprop_input(
        input_shape, filter, dy, strides, padding, data_format, dilations, dim_rounding_mode, limits=limits),
        runtime, storage)


def conv3d_backprop_filter(x: Any, filter_shape: Any, dy: Any, strides: Any = 1, padding: Any = "VALID",
                           data_format: str = "NDHWC", dilations: Any = 1, dim_rounding_mode: Optional[str] = None,
                           *, runtime: Optional[BaseRuntime] = None,
        storage: Optional[str] = None) -> Result:
    """The gradient of :func:`conv3d` with respect to its filter, on the GPU
    (``tf.raw_ops.Conv3DBackpropFilterV2``; TF.js's Conv3DDerFilterProgram): float32 of
    ``filter_shape`` ``[FD, FH, FW, inC, outC]``, as :func:`gpuconv.oracle.conv3d_backprop_filter`."""
    return _execute("conv3d_backprop_filter", lambda limits: plan_conv3d_backprop_filter(
        x, filter_shape, dy, strides, padding, data_format, dilations, dim_rounding_mode, limits=limits),
        runtime, storage)


def conv3d_transpose(x: Any, filter: Any, output_shape: Any, strides: Any = 1, padding: Any = "VALID",
                     data_format: str = "NDHWC", dilations: Any = 1, dim_rounding_mode: Optional[str] = None, *,
                     runtime: Optional[BaseRuntime] = None,
        storage: Optional[str] = None) -> Result:
    """Transposed 3-D convolution on the GPU (TF.js ``conv3dTranspose``, ``tf.nn.conv3d_transpose``):
    ``conv3d_backprop_input(output_shape, filter, x, ...)`` with a filter ``[FD, FH, FW, outC, inC]``,
    as :func:`gpuconv.oracle.conv3d_transpose` (no fused epilogue, as there)."""
    return _execute("conv3d_transpose", lambda limits: plan_conv3d_transpose(
        x, filter, output_shape, strides, padding, data_format, dilations, dim_rounding_mode, limits=limits),
        runtime, storage)
