"""The ops gpuconv knows: one table, read by the API, the command line and the checks.

Each :class:`OpEntry` says how to call one op on the GPU (:mod:`gpuconv.ops`) and in the
float64 oracle (:mod:`gpuconv.oracle`), how to plan it from shapes alone (no GL), the
names of its array and stride/dilation arguments, its filter layouts, and which
command-line options it takes.  Adding an op is one entry here plus its template.

:func:`plan_shapes`, :func:`shader_sources` and :func:`shader_source` (the shapes-only
API) dispatch through :data:`OPS`; :func:`program_banner` and :func:`join_programs`
are the one way a multi-program op's sources are shown one after the other.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional, Sequence, Tuple

import numpy as np

from . import ops, oracle
from .geometry import DATA_FORMATS
from .layout import DEFAULT_MAX_TEXTURE_SIZE
from .limits import DEFAULT_MAX_DRAW_BUFFERS, Limits
from .plan import Plan
from .target import WEBGL2, target_named

Shape = Tuple[int, ...]

#: The pointwise filter of a separable convolution.
POINTWISE_LAYOUT = "1 x 1 x in_channels*channel_multiplier x out_channels"


@dataclass(frozen=True)
class OpEntry:
    """One op: how to call it, plan it and describe it.

    ``gpu`` and ``oracle`` take the op's leading arguments positionally, in the order of
    ``signature`` (by default ``arrays``: ``x`` first, then the filters), and keyword
    arguments named as the op names them (``stride_names``: ``("strides", "dilations")``
    or conv1d's ``("stride", "dilation")``).  ``planner`` takes the same positional
    values, arrays as shapes, ``limits=`` and ``shapes_only=True`` (see :meth:`plan`).

    The gradient and transposed ops have one shape among their leading arguments
    (:attr:`shape_argument`): ``conv2d_transpose(x, filter, output_shape)``,
    ``conv2d_backprop_input(input_shape, filter, dy)``,
    ``conv2d_backprop_filter(x, filter_shape, dy)``; ``arrays`` names the others, in order.
    ``filter_layouts`` describes each array after the first (``dy`` included).
    """

    name: str
    gpu: Callable[..., ops.Result]      # gpuconv.ops.<op>
    oracle: Callable[..., np.ndarray]   # gpuconv.oracle.<op>, same signature, float64
    planner: Callable[..., Plan]        # gpuconv.ops.plan_<op>
    arrays: Tuple[str, ...]             # the array arguments' names, x first
    filter_layouts: Tuple[str, ...]     # one per filter (arrays[1:])
    summary: str
    stride_names: Tuple[str, str] = ("strides", "dilations")
    data_formats: Tuple[str, ...] = DATA_FORMATS  # the first is the default
    #: what each program does, for an op that runs more than one (separable: two)
    programs: Tuple[str, ...] = ()
    one_d: bool = False       # conv1d: --strides/--dilations are one int each (stride=, dilation=)
    grouped: bool = False     # accepts --groups
    fused: bool = False       # accepts --bias, --activation, --leakyrelu-alpha, --prelu-weights
    rounding: bool = True     # accepts --dim-rounding-mode
    pointwise: bool = False   # needs a second filter (--pointwise-filter)
    multiplier: bool = False  # the (first) filter's last axis is a channel multiplier (depthwise)
    random_weight: int = 1    # how often the random checks draw it, relative to the others
    #: the op's leading positional arguments, in order, where one is a shape (empty: ``arrays``)
    signature: Tuple[str, ...] = ()
    spatial: int = 2          # spatial axes: 3 for the 3-D ops (--strides DxHxW), 1 for conv1d
    algorithms: bool = True   # takes algorithm= (a packed program); the others run the direct one only
    #: the forward op whose gradient or transpose this is (its geometry gives the shapes)
    forward: Optional[str] = None
    first_layout: str = ""    # the first array's layout where it is not x (backprop_input: the filter)

    @property
    def leading(self) -> Tuple[str, ...]:
        """The op's leading positional arguments, in order (arrays and the shape argument)."""
        return self.signature or self.arrays

    @property
    def shape_argument(self) -> Optional[str]:
        """The leading argument that is a shape (``output_shape``, ``input_shape``, ``filter_shape``), if any."""
        return next((name for name in self.leading if name not in self.arrays), None)

    def positional(self, values: Dict[str, Any]) -> Tuple[Any, ...]:
        """The leading positional values of a call, from ``values`` by argument name."""
        return tuple(values[name] for name in self.leading)

    @property
    def filters(self) -> Tuple[str, ...]:
        """The names of the filter arguments (``("filter",)``, ...)."""
        return self.arrays[1:]

    @property
    def filter_layout(self) -> str:
        """The filter layout(s), for help texts: the first, then each other filter's option."""
        parts = [self.filter_layouts[0]]
        parts += [f"then {option_name(name)} {layout}"
                  for name, layout in zip(self.filters[1:], self.filter_layouts[1:])]
        return ", ".join(parts)

    def plan(self, shapes: Sequence[Sequence[int]], *, shape: Optional[Sequence[int]] = None,
             limits: Optional[Limits] = None, **kwargs: Any) -> Plan:
        """The plan of a call given the shapes of its arrays (in ``arrays`` order) and, for an
        op with a :attr:`shape_argument`, that ``shape``, without GL (for ``limits``, default
        :class:`~gpuconv.limits.Limits`'s defaults)."""
        if len(shapes) != len(self.arrays):
            raise TypeError(f"{self.name} takes {len(self.arrays)} arrays ({', '.join(self.arrays)}), "
                            f"got {len(shapes)} shapes")
        values: Dict[str, Any] = {name: tuple(int(d) for d in s) for name, s in zip(self.arrays, shapes)}
        if self.shape_argument is not None:
            if shape is None:
                raise TypeError(f"{self.name} needs shape= (its {self.shape_argument})")
            values[self.shape_argument] = tuple(int(d) for d in shape)
        return self.planner(*self.positional(values), limits=limits or Limits(), shapes_only=True, **kwargs)

    def call_kwargs(self, strides: Any = 1, dilations: Any = 1, padding: Any = "VALID",
                    data_format: Optional[str] = None, dim_rounding_mode: Optional[str] = None,
                    groups: int = 1) -> Dict[str, Any]:
        """The op's own keyword arguments for these generic values (no checking: the op checks).

        ``dim_rounding_mode`` and ``groups`` are left out where the op has no such
        argument (and ``groups`` where it is 1)."""
        stride_name, dilation_name = self.stride_names
        kwargs: Dict[str, Any] = {stride_name: strides, "padding": padding,
                                  "data_format": data_format or self.data_formats[0], dilation_name: dilations}
        if self.rounding:
            kwargs["dim_rounding_mode"] = dim_rounding_mode
        if self.grouped and groups != 1:
            kwargs["groups"] = groups
        return kwargs


def option_name(argument: str) -> str:
    """The command-line option of an argument: ``pointwise_filter`` -> ``--pointwise-filter``."""
    return "--" + argument.replace("_", "-")


#: The options of the arrays whose option is not named after them.
_ARRAY_OPTIONS = {"x": "--input", "filter": "--filter", "depthwise_filter": "--filter"}


def array_option(argument: str) -> str:
    """The command-line option of a leading argument: ``x`` -> ``--input``, ``filter`` and
    ``depthwise_filter`` -> ``--filter``, any other as :func:`option_name` (``--dy``,
    ``--pointwise-filter``, ``--output-shape``)."""
    return _ARRAY_OPTIONS.get(argument) or option_name(argument)


_DEPTHWISE_LAYOUT = "filter_height x filter_width x in_channels x channel_multiplier"
_GRADIENT_LAYOUT = "filter_height x filter_width x in_channels x out_channels"
_FILTER_LAYOUT_3D = "filter_depth x filter_height x filter_width x in_channels x out_channels"
_DY_LAYOUT = "dy: the forward output's shape, in --data-format order (e.g. 1x5x5x4)"
_DY_LAYOUT_3D = "dy: the forward output's shape, in --data-format order (e.g. 1x3x5x5x4)"
DATA_FORMATS_3D = ("NDHWC", "NCDHW")

OPS: Dict[str, OpEntry] = {entry.name: entry for entry in (
    OpEntry("conv2d", ops.conv2d, oracle.conv2d, functools.partial(ops.plan_conv2d, depthwise=False),
            arrays=("x", "filter"),
            filter_layouts=("filter_height x filter_width x in_channels/groups x out_channels",),
            summary="2-D convolution (tf.nn.conv2d; fused bias/activation as tf.fused.conv2d)",
            grouped=True, fused=True, random_weight=4),
    OpEntry("depthwise_conv2d", ops.depthwise_conv2d, oracle.depthwise_conv2d,
            functools.partial(ops.plan_conv2d, depthwise=True),
            arrays=("x", "filter"), filter_layouts=(_DEPTHWISE_LAYOUT,),
            summary="depthwise 2-D convolution (tf.nn.depthwise_conv2d)",
            fused=True, multiplier=True, random_weight=3),
    OpEntry("separable_conv2d", ops.separable_conv2d, oracle.separable_conv2d, ops.plan_separable_conv2d,
            arrays=("x", "depthwise_filter", "pointwise_filter"),
            filter_layouts=(_DEPTHWISE_LAYOUT, POINTWISE_LAYOUT),
            summary="depthwise then pointwise 1x1 convolution, two programs (tf.nn.separable_conv2d; fused "
                    "bias/activation after the pointwise step, as Keras's SeparableConv2D)",
            programs=("depthwise", "pointwise 1x1 conv2d, reading program 1's output as x"),
            rounding=False, fused=True, pointwise=True, multiplier=True, random_weight=2),
    OpEntry("conv1d", ops.conv1d, oracle.conv1d, ops.plan_conv1d,
            arrays=("x", "filter"), filter_layouts=("filter_width x in_channels x out_channels",),
            summary="1-D convolution, run as a conv2d of height 1 (tf.conv1d)",
            stride_names=("stride", "dilation"), data_formats=("NWC", "NCW"), one_d=True, spatial=1,
            random_weight=3),
    # The transposed and gradient convolutions (TF.js's Conv2DDerInputProgram, Conv2DDerFilterProgram
    # and their depthwise twins) and the 3-D convolutions (Conv3DProgram and its gradients).
    OpEntry("conv2d_transpose", ops.conv2d_transpose, oracle.conv2d_transpose, ops.plan_conv2d_transpose,
            arrays=("x", "filter"), signature=("x", "filter", "output_shape"),
            filter_layouts=("filter_height x filter_width x out_channels x in_channels",),
            summary="transposed 2-D convolution, the input gradient of a conv2d of output_shape "
                    "(tf.nn.conv2d_transpose; fused bias/activation as TF.js's conv2dTranspose)",
            fused=True, forward="conv2d", random_weight=2),
    OpEntry("conv2d_backprop_input", ops.conv2d_backprop_input, oracle.conv2d_backprop_input,
            ops.plan_conv2d_backprop_input, arrays=("filter", "dy"), signature=("input_shape", "filter", "dy"),
            filter_layouts=(_DY_LAYOUT,), first_layout=_GRADIENT_LAYOUT,
            summary="gradient of conv2d with respect to its input (tf.raw_ops.Conv2DBackpropInput)",
            forward="conv2d", random_weight=2),
    OpEntry("conv2d_backprop_filter", ops.conv2d_backprop_filter, oracle.conv2d_backprop_filter,
            ops.plan_conv2d_backprop_filter, arrays=("x", "dy"), signature=("x", "filter_shape", "dy"),
            filter_layouts=(_DY_LAYOUT,),
            summary="gradient of conv2d with respect to its filter (tf.raw_ops.Conv2DBackpropFilter)",
            algorithms=False, forward="conv2d", random_weight=2),
    OpEntry("depthwise_conv2d_backprop_input", ops.depthwise_conv2d_backprop_input,
            oracle.depthwise_conv2d_backprop_input, ops.plan_depthwise_conv2d_backprop_input,
            arrays=("filter", "dy"), signature=("input_shape", "filter", "dy"),
            filter_layouts=(_DY_LAYOUT,), first_layout=_DEPTHWISE_LAYOUT,
            summary="gradient of depthwise_conv2d with respect to its input "
                    "(tf.raw_ops.DepthwiseConv2dNativeBackpropInput)",
            multiplier=True, algorithms=False, forward="depthwise_conv2d"),
    OpEntry("depthwise_conv2d_backprop_filter", ops.depthwise_conv2d_backprop_filter,
            oracle.depthwise_conv2d_backprop_filter, ops.plan_depthwise_conv2d_backprop_filter,
            arrays=("x", "dy"), signature=("x", "filter_shape", "dy"), filter_layouts=(_DY_LAYOUT,),
            summary="gradient of depthwise_conv2d with respect to its filter "
                    "(tf.raw_ops.DepthwiseConv2dNativeBackpropFilter)",
            multiplier=True, algorithms=False, forward="depthwise_conv2d"),
    OpEntry("conv3d", ops.conv3d, oracle.conv3d, ops.plan_conv3d, arrays=("x", "filter"),
            filter_layouts=(_FILTER_LAYOUT_3D,), summary="3-D convolution (tf.nn.conv3d)",
            data_formats=DATA_FORMATS_3D, spatial=3, algorithms=False, random_weight=2),
    OpEntry("conv3d_transpose", ops.conv3d_transpose, oracle.conv3d_transpose, ops.plan_conv3d_transpose,
            arrays=("x", "filter"), signature=("x", "filter", "output_shape"),
            filter_layouts=("filter_depth x filter_height x filter_width x out_channels x in_channels",),
            summary="transposed 3-D convolution (tf.nn.conv3d_transpose)",
            data_formats=DATA_FORMATS_3D, spatial=3, algorithms=False, forward="conv3d"),
    OpEntry("conv3d_backprop_input", ops.conv3d_backprop_input, oracle.conv3d_backprop_input,
            ops.plan_conv3d_backprop_input, arrays=("filter", "dy"), signature=("input_shape", "filter", "dy"),
            filter_layouts=(_DY_LAYOUT_3D,), first_layout=_FILTER_LAYOUT_3D,
            summary="gradient of conv3d with respect to its input (tf.raw_ops.Conv3DBackpropInputV2)",
            data_formats=DATA_FORMATS_3D, spatial=3, algorithms=False, forward="conv3d"),
    OpEntry("conv3d_backprop_filter", ops.conv3d_backprop_filter, oracle.conv3d_backprop_filter,
            ops.plan_conv3d_backprop_filter, arrays=("x", "dy"), signature=("x", "filter_shape", "dy"),
            filter_layouts=(_DY_LAYOUT_3D,),
            summary="gradient of conv3d with respect to its filter (tf.raw_ops.Conv3DBackpropFilterV2)",
            data_formats=DATA_FORMATS_3D, spatial=3, algorithms=False, forward="conv3d"),
)}

#: The ops whose programs :func:`shader_source` can show (every op of :data:`OPS`).
SHADER_OPS = tuple(OPS)

#: Every data format any op accepts.
ALL_DATA_FORMATS = tuple(dict.fromkeys(f for entry in OPS.values() for f in entry.data_formats))


def get(op: str) -> OpEntry:
    """The entry of ``op``; ``ValueError`` naming the ops for an unknown one."""
    entry = OPS.get(op) if isinstance(op, str) else None
    if entry is None:
        raise ValueError(f"op must be one of {', '.join(map(repr, OPS))}, got {op!r}")
    return entry


def ops_with(flag: str) -> Tuple[str, ...]:
    """The names of the ops whose entry has ``flag`` set (``"grouped"``, ``"fused"``, ...)."""
    return tuple(name for name, entry in OPS.items() if getattr(entry, flag))


# ---------------------------------------------------------------------------
# text of generic argument values (as the command line writes them)


def pair_text(value: Any) -> str:
    """``(2, 1)`` -> ``"2x1"``, ``(1, 2, 2)`` -> ``"1x2x2"``, ``2`` -> ``"2"``."""
    return "x".join(str(v) for v in value) if isinstance(value, tuple) else str(value)


def padding_text(padding: Any) -> str:
    """``[[1, 0], [2, 1]]`` -> ``"1,0,2,1"``, ``[2, 1]`` -> ``"2,1"``, ``"SAME"`` -> ``"SAME"``."""
    if isinstance(padding, list):
        return ",".join(str(v) for item in padding for v in (item if isinstance(item, list) else [item]))
    return str(padding)


# ---------------------------------------------------------------------------
# the shapes-only API


def plan_shapes(op: str, x_shape: Sequence[int], filter_shape: Sequence[int], *args: Any,
                max_texture_size: int = DEFAULT_MAX_TEXTURE_SIZE,
                max_draw_buffers: int = DEFAULT_MAX_DRAW_BUFFERS, target: str = "webgl2",
                target_limits: Any = None, **kwargs: Any) -> Plan:
    """The plan of a call of ``op`` given shapes instead of arrays (no GL needed).

    ``op`` is one of :data:`SHADER_OPS`; the other arguments are the op's own, the
    shapes of filters after the first as ``<name>_shape=`` (``pointwise_filter_shape=``
    for ``separable_conv2d``).  ``max_texture_size`` and ``max_draw_buffers`` describe the
    device to generate for (WebGL2 guarantees 2048 and 4).  ``target`` is ``"webgl2"`` (default)
    or ``"webgpu"`` (WGSL compute programs; ``target_limits``, a
    :class:`~gpuconv.webgpu.limits.WebGPULimits`, describes the device).  Raises what the op raises.
    For an op with a shape among its leading arguments (:attr:`OpEntry.shape_argument`)
    ``x_shape``, ``filter_shape`` and the first of ``args`` are its three leading arguments,
    in its order (``input_shape``, ``filter``'s shape and ``dy``'s for ``conv2d_backprop_input``).
    """
    if not isinstance(op, str) or op not in OPS:
        raise ValueError(f"op must be one of {', '.join(map(repr, OPS))}, got {op!r}")
    entry = get(op)
    chosen = target_named(target)
    if chosen is not WEBGL2:
        # The call planned as on WebGL2 (TF.js's direct programs), then lowered by the target;
        # it shows what the ops run there ("auto") unless algorithm= says otherwise.
        algorithm = kwargs.pop("algorithm", "auto") if entry.algorithms else None

        def make_plan(limits: Limits, *choice: str) -> Plan:
            chosen_kwargs = dict(kwargs, algorithm=choice[0]) if choice else kwargs
            return plan_shapes(op, x_shape, filter_shape, *args, max_texture_size=max_texture_size,
                               max_draw_buffers=max_draw_buffers, **chosen_kwargs)

        return chosen.plan(make_plan, algorithm, target_limits or chosen.default_limits())
    limits = Limits(max_texture_size, max_draw_buffers)
    if entry.signature:
        return entry.planner(tuple(x_shape), tuple(filter_shape), *args, limits=limits, shapes_only=True,
                             **kwargs)
    shapes = [tuple(x_shape), tuple(filter_shape)]
    for name in entry.filters[1:]:
        shape = kwargs.pop(f"{name}_shape", None)
        if shape is None:
            layout = entry.filter_layouts[len(shapes) - 1].replace(" x ", ", ")
            raise TypeError(f"{op} needs {name}_shape=[{layout}]")
        shapes.append(tuple(shape))
    planner_args = tuple(shapes) + args
    return entry.planner(*planner_args, limits=limits, shapes_only=True, **kwargs)


def shape_call(op: str, values: Dict[str, Any]) -> Tuple[Tuple[Any, ...], Dict[str, Any]]:
    """The positional and keyword arguments of :func:`plan_shapes` (after ``op``) for the
    shapes of a call's leading arguments, by name (``{"x": ..., "filter": ..., "pointwise_filter": ...}``,
    ``{"input_shape": ..., "filter": ..., "dy": ...}``)."""
    entry = get(op)
    if entry.signature:
        return entry.positional(values), {}
    return (values[entry.arrays[0]], values[entry.arrays[1]]), {f"{name}_shape": values[name]
                                                              for name in entry.filters[1:]}


def shader_sources(op: str, x_shape: Sequence[int], filter_shape: Sequence[int], *args: Any,
                   max_texture_size: int = DEFAULT_MAX_TEXTURE_SIZE,
                   max_draw_buffers: int = DEFAULT_MAX_DRAW_BUFFERS, target: str = "webgl2",
                   **kwargs: Any) -> Tuple[str, ...]:
    """Every program ``op`` runs for these shapes, in order (no GL needed).

    ``separable_conv2d`` runs two (depthwise, then pointwise; pass
    ``pointwise_filter_shape=``), the other ops one.  Like :func:`shader_source`,
    it shows the direct (TF.js-style) programs on WebGL2 unless ``algorithm=`` says otherwise.
    """
    return plan_shapes(op, x_shape, filter_shape, *args, max_texture_size=max_texture_size,
                       max_draw_buffers=max_draw_buffers, target=target, **kwargs).sources()


def shader_source(op: str, x_shape: Sequence[int], filter_shape: Sequence[int], *args: Any,
                  max_texture_size: int = DEFAULT_MAX_TEXTURE_SIZE,
                  max_draw_buffers: int = DEFAULT_MAX_DRAW_BUFFERS, target: str = "webgl2",
                  **kwargs: Any) -> str:
    """The complete program that ``op`` runs for these shapes: a GLSL ES 3.00 fragment program
    (``target="webgl2"``, the default) or a WGSL compute program (``target="webgpu"``: by
    default the one the ops run there, e.g. TF.js's Conv2DMMProgram, an implicit GEMM).

    ``op`` is one of :data:`SHADER_OPS` (``"conv2d"``, ``"depthwise_conv2d"``, ``"conv1d"``,
    ``"separable_conv2d"``, ``"conv3d"``, ``"conv2d_transpose"``, ``"conv2d_backprop_input"``,
    ...; a gradient or transposed op's third argument is a shape too); the other arguments
    are the op's own (shapes instead of arrays; fused ``bias``/``prelu_weights`` as arrays).  Needs no GL context.
    By default it shows the direct program, TF.js's Conv2DProgram or
    DepthwiseConv2DProgram (``algorithm="direct"``); pass ``algorithm="packed"``
    (or ``"auto"``, which the ops use by default) for the fast packed program.
    For ``separable_conv2d`` (two programs) the sources follow each other, the
    second after a ``// ---- program 2 of 2: ...`` line (:func:`program_banner`, the
    line ``gpuconv shader`` prints too); :func:`shader_sources` gives them apart.

    Example:
        >>> print(gpuconv.shader_source("conv2d", (1, 7, 7, 6), (3, 3, 6, 4), padding="SAME"))
    """
    sources = shader_sources(op, x_shape, filter_shape, *args, max_texture_size=max_texture_size,
                             max_draw_buffers=max_draw_buffers, target=target, **kwargs)
    return join_programs(op, sources)


def program_banner(op: str, step: int, steps: int) -> str:
    """The ``//`` line before program ``step`` (of ``steps`` > 1) of ``op``."""
    roles = get(op).programs
    role = f": the {roles[step - 1]}" if step <= len(roles) else ""
    return f"// ---- program {step} of {steps}{role} ----"


def join_programs(op: str, texts: Sequence[str]) -> str:
    """The programs of ``op`` one after the other, each after the first behind its banner line."""
    chunks = []
    for step, text in enumerate(texts, 1):
        text = text if text.endswith("\n") else text + "\n"
        if step > 1:
            text = f"\n{program_banner(op, step, len(texts))}\n\n" + text
        chunks.append(text)
    return "".join(chunks)
