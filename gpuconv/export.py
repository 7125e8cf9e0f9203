"""Ship a kernel to the web: one planned call as a dependency-free JavaScript module, or as a
self-checking HTML page (``gpuconv export``).

Python plans the call exactly as the op plans it (the registry's planner, with the op's own
arguments, so whatever the planner learns later, ``storage=`` say, reaches the export too) and
computes every number the browser needs: the fragment programs and the vertex program, each
input's texture and how to pack its NumPy-order values into texels, each program's uniforms,
the chaining (which outputs of program i feed which inputs of program i + 1, walked by
:meth:`~gpuconv.plan.Plan.chain` as every runtime walks it) and how to assemble the result
from the last program's render targets.  The JavaScript itself lives in templates
(``export_templates/module.mjs.j2``, ``export_templates/page.html.j2``), rendered with
Jinja2; no JavaScript is built out of Python strings.

* :func:`export` returns the text; :func:`build` returns it with what the kernel needs of a
  device (:class:`Exported`), which ``gpuconv export`` prints.
* The module exports ``shapes`` (each input's shape and the output's), ``requirements``,
  ``about``, ``run(gl, inputs)`` and ``release(gl)``.
* The page embeds the module, seeded inputs and the float64 oracle's output, runs the
  kernel on load and sets ``window.gpuconvResult``.
* ``target="webgpu"``: the WebGPU target's WGSL compute programs, the plan lowered as
  :func:`gpuconv.registry.plan_shapes` lowers it and walked by the same :meth:`Plan.chain`,
  recording the buffers each input fills and the dispatches
  (``export_templates/module_webgpu.mjs.j2``: ``run(device, inputs)`` resolves to the output;
  ``page_webgpu.html.j2``: requests an adapter and a device).  Resolving the call, planning,
  the seeded inputs, the oracle's check and the page's data are shared by both targets.
"""

from __future__ import annotations

import base64
import functools
import inspect
import json
import math
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import jinja2
import numpy as np

from . import codegen, oracle, registry
from .checks import DEFAULT_TOLERANCE
from .layout import (
    DEFAULT_MAX_TEXTURE_SIZE,
    Layout,
    PackedFilterLayout,
    PackedImageLayout,
    PackedVectorLayout,
    TextureLayout,
    TransposeMatMulFilterLayout,
)
from .limits import DEFAULT_MAX_DRAW_BUFFERS, Limits
from .plan import Plan
from .programs import Col2ImProgramSpec, MatMulProgramSpec, PackedProgramSpec, Program, ProgramSpec
from .storage import check_storage
from .target import WEBGL2, target_named
from .webgpu.layout import BufferLayout
from .webgpu.limits import LIMIT_NAMES, WebGPULimits
from .webgpu.programs import ComputeProgramSpec

Shape = Tuple[int, ...]

#: The page's default tolerance with half-float storage (float16 keeps 11 significant bits).
FLOAT16_PAGE_TOLERANCE = 1e-2

#: ``format=`` values: an ES module (``.mjs``) or a self-checking HTML page.
FORMATS = ("js", "html")

#: The most data (inputs as float32, the oracle's output as float64, before base64) a page embeds.
MAX_EMBEDDED_BYTES = 16 * 1024 * 1024
MAX_EMBEDDED_TEXT = "16 MiB"

#: Timed runs of the page (after one warm-up run, which compiles the programs); it shows their median.
WARM_RUNS = 5

#: The arrays of a fused epilogue, by the op's argument names.
FUSED_ARRAYS = ("bias", "prelu_weights", "residual")

_TEMPLATE_DIR = Path(__file__).resolve().parent / "export_templates"


# ---------------------------------------------------------------------------
# templates


def _pretty(value: Any, indent: int, depth: int = 0, width: int = 120) -> str:
    """JSON, one member per line, but what fits in ``width`` characters on one line."""
    flat = json.dumps(value, allow_nan=False)
    if len(flat) + indent * depth <= width or not isinstance(value, (dict, list)) or not value:
        return flat
    pad, inner = " " * (indent * depth), " " * (indent * (depth + 1))
    if isinstance(value, dict):
        items = [f"{inner}{json.dumps(str(k))}: {_pretty(v, indent, depth + 1, width)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    items = [inner + _pretty(v, indent, depth + 1, width) for v in value]
    return "[\n" + ",\n".join(items) + "\n" + pad + "]"


def _js(value: Any, indent: Optional[int] = None) -> str:
    """A JSON value as JavaScript, safe inside an inline ``<script>`` (no ``</``); with ``indent``,
    spread over lines where it does not fit on one."""
    text = json.dumps(value, allow_nan=False) if indent is None else _pretty(value, indent)
    return text.replace("</", "<\\/")


def _js_source(text: str) -> str:
    """A GLSL source as a readable JavaScript string: a raw template literal, or JSON if it cannot be one."""
    if "`" in text or "${" in text or "\\" in text or "</" in text:
        return _js(text)
    return "String.raw`" + text + "`"


@functools.lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """The Jinja2 environment of the export templates (``gpuconv/export_templates``)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(_TEMPLATE_DIR)),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters["js"] = _js
    env.filters["js_source"] = _js_source
    return env


# ---------------------------------------------------------------------------
# what the browser needs of each texture


def texture_format(layout: Layout, storage: str = "float32") -> Dict[str, Any]:
    """A texture of ``layout`` in WebGL terms: size, components and the GL format names.

    Float32 storage: ``R32F``/``RGBA32F``, uploaded and read as ``FLOAT``.  Half-float
    storage (``"float16"``): ``R16F``/``RGBA16F``, uploaded as ``HALF_FLOAT`` (the module
    rounds the Float32Array's values to the nearest half, ties to even, as NumPy and the
    oracle do; WebGL2 would also take ``FLOAT`` data into a half texture, but rounds it as the
    implementation likes) and read back as ``FLOAT`` (EXT_color_buffer_float renders to them
    and reads them so).  This is the one place that picks them.
    """
    if layout.components not in (1, 4):
        raise NotImplementedError(f"cannot export a texture of {layout.components} components (1 or 4 are known)")
    one = layout.components == 1
    if check_storage(storage) == "float16":
        return {"rows": int(layout.rows), "cols": int(layout.cols), "components": int(layout.components),
                "internalFormat": "R16F" if one else "RGBA16F", "format": "RED" if one else "RGBA",
                "type": "HALF_FLOAT"}
    return {"rows": int(layout.rows), "cols": int(layout.cols), "components": int(layout.components),
            "internalFormat": "R32F" if one else "RGBA32F", "format": "RED" if one else "RGBA", "type": "FLOAT"}


def pack_description(layout: Layout) -> Dict[str, Any]:
    """How the module's JavaScript packs an input of ``layout`` (NumPy order) into texels,
    as the layout's ``pack`` method does in Python."""
    if isinstance(layout, TextureLayout):
        return {"kind": "texels"}  # the row-major values, zero-padded to rows * cols
    if isinstance(layout, PackedImageLayout):
        return {"kind": "image", "batch": layout.batch, "height": layout.height, "width": layout.width,
                "channels": layout.channels, "nchw": layout.data_format != "NHWC", "repeat": layout.repeat,
                "depth4": layout.depth4}
    if isinstance(layout, PackedFilterLayout):
        fh, fw, c, o = layout.filter_shape
        kind = "depthwise_filter" if layout.depthwise else "swapped_filter" if layout.swapped else "filter"
        return {"kind": kind, "filterHeight": fh,
                "filterWidth": fw, "inChannels": c, "outChannels": o, "cols": layout.cols}
    if isinstance(layout, PackedVectorLayout):
        return {"kind": "vector", "length": layout.length, "cols": layout.cols}
    if isinstance(layout, TransposeMatMulFilterLayout):
        fh, fw, o, c = layout.filter_shape
        return {"kind": "transpose_matmul_filter", "taps": fh * fw, "outChannels": o, "inChannels": c,
                "cols": layout.cols}
    raise NotImplementedError(f"cannot export an input laid out as {type(layout).__name__}: the module "
                              f"knows TextureLayout, PackedImageLayout, PackedFilterLayout, PackedVectorLayout and "
                              f"TransposeMatMulFilterLayout")


def assembly_description(spec: Program, out_shape: Shape) -> Dict[str, Any]:
    """How the module assembles the result from the last program's render targets, as
    ``spec.assemble`` does in Python."""
    size = math.prod(out_shape)
    if isinstance(spec, (PackedProgramSpec, MatMulProgramSpec, Col2ImProgramSpec)):  # the split layout
        out = spec.output
        description: Dict[str, Any] = {
            "kind": "split", "batch": out.batch, "height": out.height, "width": out.width,
            "channels": out.channels, "count": out.count, "fold": out.fold, "rows": out.rows, "cols": out.cols,
            "unfoldedCols": out.unfolded_cols, "depth4": out.depth4, "nchw": spec.geometry.data_format != "NHWC"}
        logical = out.batch * out.height * out.width * out.channels
    elif _assembles_row_major(spec, size):
        description = {"kind": "texels"}  # TextureLayout.unpack: the first size values, row-major
        logical = size
    else:
        raise NotImplementedError(f"cannot export {spec.name}: the module does not know how to assemble "
                                  f"its result ({type(spec).__name__})")
    if logical != size:
        raise NotImplementedError(f"{spec.name} writes {logical} values, but the result has {size}")
    description.update({"size": size, "shape": list(out_shape)})
    return description


def _assembles_row_major(spec: Program, size: int) -> bool:
    """Whether ``spec.assemble`` takes the first ``size`` texels of its one output, in order (as
    TextureLayout.unpack does): tried on texels that hold their own index."""
    layouts = spec.output_layouts
    if len(layouts) != 1 or layouts[0].components != 1:
        return False
    if isinstance(spec, ProgramSpec) and type(spec).assemble is ProgramSpec.assemble:
        return True
    texels = layouts[0].rows * layouts[0].cols
    if texels < size or texels > 2 ** 24:  # float32 holds every index up to 2 ** 24 exactly
        return False
    probe = np.arange(texels, dtype=np.float32).reshape(layouts[0].rows, layouts[0].cols)
    assembled = np.asarray(spec.assemble([probe])).reshape(-1)
    return assembled.size == size and bool(np.array_equal(assembled, probe.reshape(-1)[:size]))


def _uniform(value: Any) -> Any:
    """A uniform's value as JSON (the module picks the GL call from the uniform's type)."""
    if isinstance(value, (tuple, list)):
        return [_uniform(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    return float(value)


# ---------------------------------------------------------------------------
# the call: which arguments are arrays, their shapes, the planner and the oracle


@dataclass
class _Call:
    op: str
    planner: Callable[..., Plan]
    oracle: Callable[..., Any]
    leading: List[Tuple[str, Any]]   # the positional arguments: ("array", name) or ("value", a shape)
    shapes: Dict[str, Shape]         # every array argument's shape, by the op's name for it
    args: Tuple[Any, ...]            # further positional arguments (strides, ...)
    kwargs: Dict[str, Any]           # the op's keyword arguments, fused arrays left out
    fused: Dict[str, Any]            # "bias" / "prelu_weights" / "residual": True or an array

    def positional(self, arrays: Mapping[str, Any]) -> List[Any]:
        return [arrays[v] if kind == "array" else v for kind, v in self.leading] + list(self.args)

    def plan(self, arrays: Mapping[str, Any], limits: Limits, shapes_only: bool = False,
             fused: Optional[Mapping[str, Any]] = None) -> Plan:
        kwargs = dict(self.kwargs)
        if fused is None and kwargs.get("activation") == "prelu":
            kwargs.pop("activation")  # planned from shapes alone: PReLU needs its weights (not yet known)
        return self.planner(*self.positional(arrays), limits=limits, shapes_only=shapes_only,
                            **kwargs, **(fused or {}))

    def expected(self, arrays: Mapping[str, np.ndarray]) -> np.ndarray:
        """The float64 oracle's result (the keyword arguments the oracle does not take, such as
        ``algorithm``, change how the GPU computes, not what)."""
        kwargs = {**self.kwargs, **{name: arrays[name] for name in self.fused}}
        parameters = inspect.signature(self.oracle).parameters
        if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
            kwargs = {k: v for k, v in kwargs.items() if k in parameters}
        return np.asarray(self.oracle(*self.positional(arrays), **kwargs), np.float64)


def _shape(value: Any, what: str) -> Shape:
    try:
        shape = tuple(int(d) for d in value)
    except TypeError:
        raise TypeError(f"{what} must be a shape (a sequence of ints), got {value!r}") from None
    return shape


def _other_planners() -> Mapping[str, Callable[..., Plan]]:
    """The registry's ops beyond :data:`~gpuconv.registry.OPS` (gradients, transposed and 3-D
    convolutions), by their planners."""
    planners: Dict[str, Callable[..., Plan]] = {}
    for table in ("SHADER_ONLY_PLANNERS", "GRADIENT_PLANNERS"):
        planners.update(getattr(registry, table, {}))
    # the registry's ops with a shape among their leading arguments, or without algorithm=
    planners.update({name: entry.planner for name, entry in registry.OPS.items()
                     if entry.signature or not entry.algorithms})
    return planners


def exportable_ops() -> Tuple[str, ...]:
    """Every op :func:`export` takes: the registry's ops and its other planners' ops."""
    return tuple(registry.OPS) + tuple(op for op in _other_planners() if op not in registry.OPS)


def _resolve(op: str, x_shape: Any, filter_shape: Any, args: Sequence[Any], kwargs: Dict[str, Any]) -> _Call:
    fused = {name: kwargs.pop(name) for name in FUSED_ARRAYS if name in kwargs}
    fused = {name: value for name, value in fused.items() if value is not None and value is not False}
    entry = registry.OPS.get(op) if isinstance(op, str) else None
    planner = _other_planners().get(op) if isinstance(op, str) else None
    if entry is not None and planner is None:
        shapes = [_shape(x_shape, entry.arrays[0] + " shape"), _shape(filter_shape, entry.arrays[1] + " shape")]
        for name in entry.filters[1:]:
            value = kwargs.pop(f"{name}_shape", None)
            if value is None:
                layout = entry.filter_layouts[len(shapes) - 1].replace(" x ", ", ")
                raise TypeError(f"{op} needs {name}_shape=[{layout}]")
            shapes.append(_shape(value, f"{name}_shape"))
        kwargs.setdefault("algorithm", "auto")  # what the op runs by default
        leading: List[Tuple[str, Any]] = [("array", name) for name in entry.arrays]
        return _Call(op, entry.planner, entry.oracle, leading, dict(zip(entry.arrays, shapes)), tuple(args),
                     kwargs, fused)
    if planner is not None:
        # The planner's leading arguments (those without a default): a name ending in _shape is
        # a shape (input_shape, filter_shape, output_shape), any other an array (x, filter, dy).
        names = [p.name for p in inspect.signature(planner).parameters.values()
                 if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD and p.default is inspect.Parameter.empty]
        values = [x_shape, filter_shape, *args]
        if len(values) < len(names):
            raise TypeError(f"{op} takes {len(names)} leading arguments ({', '.join(names)}): give the "
                            f"{'third' if len(names) == 3 else 'others'} after x_shape and filter_shape")
        leading, shapes_by_name = [], {}
        for name, value in zip(names, values):
            if name.endswith("_shape"):
                leading.append(("value", _shape(value, name)))
            else:
                leading.append(("array", name))
                shapes_by_name[name] = _shape(value, f"{name}'s shape")
        return _Call(op, planner, getattr(oracle, op), leading, shapes_by_name, tuple(values[len(names):]),
                     kwargs, fused)
    raise ValueError(f"op must be one of {', '.join(map(repr, exportable_ops()))}, got {op!r}")


# ---------------------------------------------------------------------------
# the export


@dataclass(frozen=True)
class Exported:
    """One export: its text and what the kernel needs of a device."""

    text: str
    format: str
    op: str
    shapes: Dict[str, List[int]]
    requirements: Dict[str, Any]
    programs: Tuple[str, ...]
    embedded_bytes: int = 0
    #: "webgl2" or "webgpu"
    target: str = "webgl2"

    @property
    def size(self) -> int:
        """The text's size in bytes (UTF-8)."""
        return len(self.text.encode("utf-8"))

    def summary(self) -> str:
        """One line: what it holds and what it needs."""
        r = self.requirements
        programs = ", ".join(self.programs)
        kind = "module" if self.format == "js" else "page"
        if self.target == "webgpu":
            limits = r["limits"]
            return (f"{self.op} WebGPU {kind}, {self.size / 1024:.1f} KiB, {len(self.programs)} compute program"
                    f"{'s' if len(self.programs) > 1 else ''} ({programs}); needs WebGPU with buffers up to "
                    f"{limits['maxStorageBufferBindingSize']} bytes, {limits['maxStorageBuffersPerShaderStage']} "
                    f"storage buffers per program, {limits['maxComputeInvocationsPerWorkgroup']} invocations and "
                    f"{limits['maxComputeWorkgroupStorageSize']} bytes of workgroup memory per workgroup")
        buffers = r["maxDrawBuffers"]
        return (f"{self.op} {kind}, {self.size / 1024:.1f} KiB, {len(self.programs)} program"
                f"{'s' if len(self.programs) > 1 else ''} ({programs}); needs WebGL2 with "
                f"{', '.join(r['extensions'])}, {buffers} draw buffer{'s' if buffers > 1 else ''}, "
                f"textures up to {r['maxTextureSize']} texels a side, {r['maxTextureImageUnits']} texture units")


def _call_text(call: _Call) -> str:
    """``conv2d(x[1, 8, 8, 3], filter[3, 3, 3, 4], padding='SAME', ...)``: the call, for comments."""
    parts = [f"{v}{list(call.shapes[v])}" if kind == "array" else repr(list(v)) for kind, v in call.leading]
    parts += [repr(a) for a in call.args]
    parts += [f"{k}={v!r}" for k, v in call.kwargs.items() if v is not None]
    parts += [f"{name}{list(call.shapes[name])}" for name in call.fused]
    return f"{call.op}({', '.join(parts)})".replace("\n", " ")


def _source_of(array: np.ndarray, arrays: Mapping[str, np.ndarray], program: str, input_name: str) -> str:
    """The argument whose values (in NumPy order) ``array`` holds: the plan uploads reshapes of the
    op's arguments, so the module packs the caller's arrays exactly as given."""
    flat = np.asarray(array, np.float32).reshape(-1)
    matches = [name for name, value in arrays.items()
               if value.size == flat.size and np.array_equal(value.reshape(-1), flat)]
    if len(matches) != 1:
        raise NotImplementedError(f"cannot export: {program}'s input {input_name} is not one of the op's arrays "
                                  f"in its own element order ({', '.join(arrays)}); a broadcast argument "
                                  f"(a bias or PReLU weights of another shape) cannot be exported: give "
                                  f"one value per channel or the output's full shape")
    return matches[0]


def _embedded(values: np.ndarray, dtype: str) -> str:
    return base64.b64encode(np.ascontiguousarray(values, dtype=dtype).tobytes()).decode("ascii")


def build(op: str, x_shape: Any, filter_shape: Any, *args: Any, format: str = "js", seed: int = 0,
          tolerance: Optional[float] = None, max_texture_size: Optional[int] = None,
          max_draw_buffers: Optional[int] = None, storage: str = "float32", target: str = "webgl2",
          target_limits: Optional[WebGPULimits] = None, **kwargs: Any) -> Exported:
    """:func:`export`, with what the kernel needs of a device (:class:`Exported`)."""
    from .version import __version__

    chosen = target_named(target)
    storage = check_storage(storage)
    if chosen is not WEBGL2:
        webgl2_limits = [name for name, value in (("max_texture_size", max_texture_size),
                                                  ("max_draw_buffers", max_draw_buffers)) if value is not None]
        if webgl2_limits:
            raise ValueError(f"{' and '.join(webgl2_limits)}: WebGL2 limits, not used with target={chosen.name!r} (its "
                             f"programs fit WebGPU's guaranteed limits; target_limits=WebGPULimits(...) "
                             f"describes another device)")
        if storage != "float32":
            raise ValueError(f"storage={storage!r} is a WebGL2 texture format; target={chosen.name!r} keeps "
                             f"float32 in its buffers: use storage='float32'")
        if target_limits is not None and not isinstance(target_limits, WebGPULimits):
            raise TypeError(f"target_limits must be a gpuconv.webgpu.limits.WebGPULimits, got {target_limits!r}")
    elif target_limits is not None:
        raise ValueError("target_limits describes a WebGPU device: it is used with target='webgpu' only "
                         "(max_texture_size= and max_draw_buffers= describe a WebGL2 one)")
    if tolerance is None:
        tolerance = FLOAT16_PAGE_TOLERANCE if storage == "float16" else DEFAULT_TOLERANCE
    if format not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(map(repr, FORMATS))}, got {format!r}")
    if format == "html" and (isinstance(tolerance, bool) or not isinstance(tolerance, (int, float))
                             or not tolerance > 0):
        raise ValueError(f"tolerance must be a positive number, got {tolerance!r}")
    limits = Limits(DEFAULT_MAX_TEXTURE_SIZE if max_texture_size is None else max_texture_size,
                    DEFAULT_MAX_DRAW_BUFFERS if max_draw_buffers is None else max_draw_buffers)
    call = _resolve(op, x_shape, filter_shape, args, dict(kwargs))
    if chosen is not WEBGL2:
        # refused before any data: an algorithm the target has not, a buffer over its limits
        _lowered(call, chosen, call.shapes, limits, target_limits, shapes_only=True)
    if call.kwargs.get("activation") == "prelu" and "prelu_weights" not in call.fused:
        call.fused["prelu_weights"] = True  # one weight per channel
    # Plan from shapes first: every argument is checked (and the output's shape known) before any data.
    probe = call.plan(call.shapes, limits, shapes_only=True)
    out_shape = tuple(int(d) for d in probe.out_shape)
    fused_values: Dict[str, np.ndarray] = {}
    for name, value in call.fused.items():
        if value is True and name == "residual":
            call.shapes[name] = out_shape  # the output's shape, in the op's data format
        elif value is True:
            spec = probe.spec
            channel_axis = -1 if spec.geometry.channels_last else 1
            call.shapes[name] = (int(spec.output_shape[channel_axis]),)
        else:
            try:
                fused_values[name] = np.asarray(value, np.float32)
            except (TypeError, ValueError):
                raise TypeError(f"{name} must be True or an array of numbers, got {value!r}") from None
            call.shapes[name] = tuple(fused_values[name].shape)
    embedded = 4 * sum(math.prod(s) for s in call.shapes.values()) + 8 * math.prod(out_shape)
    if format == "html" and embedded > MAX_EMBEDDED_BYTES:
        raise ValueError(f"the page would embed {embedded / 2 ** 20:.1f} MiB of data (inputs as float32, the "
                         f"oracle's output as float64), over the limit of {MAX_EMBEDDED_TEXT} "
                         f"({MAX_EMBEDDED_BYTES} bytes) of embedded data in total: export smaller shapes, or "
                         f"export the module (format 'js') and feed it your own data")

    rng = np.random.default_rng(seed)
    arrays: Dict[str, np.ndarray] = {}
    for name, shape in call.shapes.items():
        given = fused_values.get(name)
        arrays[name] = given if given is not None else rng.uniform(-1, 1, size=shape).astype(np.float32)
    fused = {name: arrays[name] for name in call.fused}
    if chosen is not WEBGL2:
        plan = _lowered(call, chosen, arrays, limits, target_limits, fused=fused)
    else:
        plan = call.plan(arrays, limits, fused=fused).with_storage(storage)
    if tuple(plan.out_shape) != out_shape:  # pragma: no cover - a planner that plans shapes differently
        raise RuntimeError(f"{op}: the plan's output shape {plan.out_shape} differs from the shapes-only plan's")
    if chosen is not WEBGL2:
        context = _webgpu_context(call, chosen, plan, arrays, out_shape, target_limits or chosen.default_limits())
        return _finish(call, context, "webgpu", format, arrays, out_shape, tolerance, seed, embedded)

    # Walk the plan as every runtime does (Plan.chain), recording what the browser must do.
    uploads: List[Dict[str, Any]] = []
    steps: List[Dict[str, Any]] = []
    sources: List[str] = []
    pending_input: List[Tuple[str, str]] = []  # (program, input) of the upload being recorded

    def upload(array: np.ndarray, layout: Any, storage: str = "float32") -> Dict[str, int]:
        program, input_name = pending_input.pop(0)
        if tuple(array.shape) != tuple(layout.shape):
            raise NotImplementedError(f"{program}'s input {input_name} has shape {array.shape}, its layout "
                                      f"{tuple(layout.shape)}")
        uploads.append({"input": _source_of(array, arrays, program, input_name), "program": program,
                        "name": input_name, "pack": pack_description(layout),
                        "texture": texture_format(layout, storage)})
        return {"upload": len(uploads) - 1}

    def draw(spec: Program, inputs: Dict[str, Dict[str, int]], storage: str = "float32") -> List[Dict[str, int]]:
        source = codegen.fragment_source(spec)
        if source not in sources:
            sources.append(source)
        step = len(steps)
        steps.append({"name": spec.name, "program": sources.index(source), "samplers": list(spec.variable_names),
                      "inputs": [inputs[name] for name in spec.variable_names],
                      "uniforms": {name: _uniform(v) for name, v in spec.uniforms.items()},
                      "outputs": [texture_format(layout, storage) for layout in spec.output_layouts]})
        return [{"step": step, "output": j} for j in range(len(spec.output_layouts))]

    for position, (spec, _) in enumerate(plan.steps):  # the inputs Plan.chain uploads, in its order
        chained = set(spec.chained_inputs) if position else set()
        pending_input.extend((spec.name, item.name) for item in spec.inputs if item.name not in chained)
    plan.chain(upload, draw, [])
    if pending_input:  # pragma: no cover - Plan.chain uploads exactly the unchained inputs
        raise RuntimeError(f"the plan did not upload {pending_input}")

    last = plan.spec
    result = assembly_description(last, out_shape)
    textures = [u["texture"] for u in uploads] + [o for s in steps for o in s["outputs"]]
    requirements = {
        "webgl2": True,
        "extensions": ["EXT_color_buffer_float"] if storage == "float32" else
                      ["EXT_color_buffer_float or EXT_color_buffer_half_float"],
        "maxDrawBuffers": max(len(s["outputs"]) for s in steps),
        "maxTextureSize": max(max(t["rows"], t["cols"]) for t in textures),
        "maxTextureImageUnits": max(len(s["samplers"]) for s in steps),
        "storage": storage,
    }
    inputs = {name: list(shape) for name, shape in call.shapes.items()}
    shapes = {**inputs, "output": list(out_shape)}
    names = tuple(s["name"] for s in steps)
    call_text = _call_text(call) + (f", storage={storage!r}" if storage != "float32" else "")
    about = {"op": op, "call": call_text, "programs": list(names), "gpuconv": __version__,
             "limits": {"maxTextureSize": limits.max_texture_size, "maxDrawBuffers": limits.max_draw_buffers}}
    plan_data = {"inputs": {name: {"shape": shape, "size": math.prod(shape)} for name, shape in inputs.items()},
                 "uploads": uploads, "steps": steps, "result": result}
    context = {"about": about, "shapes": shapes, "requirements": requirements, "plan": plan_data,
               "programs": [{"name": next(s["name"] for s in steps if s["program"] == i), "source": source}
                            for i, source in enumerate(sources)],
               "vertex": codegen.vertex_source(), "version": __version__}
    return _finish(call, context, "webgl2", format, arrays, out_shape, tolerance, seed, embedded)


#: Each target's templates: the module's and the page's.
_TEMPLATES = {"webgl2": ("module.mjs.j2", "page.html.j2"), "webgpu": ("module_webgpu.mjs.j2", "page_webgpu.html.j2")}


def _finish(call: _Call, context: Dict[str, Any], target: str, format: str, arrays: Mapping[str, np.ndarray],
            out_shape: Shape, tolerance: float, seed: int, embedded: int) -> Exported:
    """The module from the target's template; for a page, the module, the seeded inputs and the
    oracle's output in the target's page template."""
    module_template, page_template = _TEMPLATES[target]
    shapes, requirements = context["shapes"], context["requirements"]
    names = tuple(context["about"]["programs"])
    module = environment().get_template(module_template).render(**context)
    if format == "js":
        return Exported(module, format, call.op, shapes, requirements, names, target=target)

    if "</script" in module.lower():  # pragma: no cover - the templates and the GLSL never hold it
        raise RuntimeError("the module holds '</script', which would end the page's inline script")
    expected = call.expected(arrays)
    if tuple(expected.shape) != out_shape:  # pragma: no cover - the oracle and the plan agree on shapes
        raise RuntimeError(f"the oracle's result has shape {expected.shape}, the plan's {out_shape}")
    page = {"inputs": {name: _embedded(arrays[name], "<f4") for name in context["plan"]["inputs"]},
            "expected": _embedded(expected, "<f8"), "tolerance": float(tolerance), "seed": int(seed),
            "warmRuns": WARM_RUNS}
    text = environment().get_template(page_template).render(module=module, page=page, **context)
    return Exported(text, format, call.op, shapes, requirements, names, embedded, target=target)


# ---------------------------------------------------------------------------
# the WebGPU target: WGSL compute programs over storage buffers


def _lowered(call: _Call, target: Any, arrays: Mapping[str, Any], limits: Limits,
             target_limits: Optional[WebGPULimits], shapes_only: bool = False,
             fused: Optional[Mapping[str, Any]] = None) -> Plan:
    """The call's plan on ``target``: planned as on WebGL2 (TF.js's direct programs), then lowered
    as :func:`gpuconv.registry.plan_shapes` lowers it (``algorithm`` "auto" or "direct")."""
    kwargs = dict(call.kwargs)
    algorithm = kwargs.pop("algorithm", None)

    def make_plan(webgl2_limits: Limits, *choice: str) -> Plan:
        chosen = {**kwargs, "algorithm": choice[0]} if choice else kwargs
        return replace(call, kwargs=chosen).plan(arrays, webgl2_limits, shapes_only=shapes_only, fused=fused)

    return target.plan(make_plan, algorithm, target_limits or target.default_limits())


#: What each WebGPU limit the module checks measures (its message names it).
_LIMIT_NOTES = {
    "maxStorageBufferBindingSize": "bytes of its largest buffer, {largest}",
    "maxBufferSize": "bytes of its largest buffer, {largest}",
    "maxStorageBuffersPerShaderStage": "storage buffers one program binds",
    "maxComputeWorkgroupStorageSize": "bytes of workgroup memory one program declares",
    "maxComputeInvocationsPerWorkgroup": "invocations of one workgroup",
    "maxComputeWorkgroupSizeX": "a workgroup's size along x",
    "maxComputeWorkgroupSizeY": "a workgroup's size along y",
    "maxComputeWorkgroupSizeZ": "a workgroup's size along z",
    "maxComputeWorkgroupsPerDimension": "workgroups of one dispatch along one axis",
}


def _entry_point(source: str, name: str) -> str:
    """The compute entry point's name in a WGSL source (gpuconv's programs call it ``main``)."""
    found = re.search(r"@compute\s[^{]*?\bfn\s+([A-Za-z_][A-Za-z0-9_]*)", source)
    if found is None:  # pragma: no cover - every WGSL template declares one
        raise NotImplementedError(f"cannot export {name}: its WGSL has no @compute entry point")
    return found.group(1)


def _webgpu_context(call: _Call, target: Any, plan: Plan, arrays: Mapping[str, np.ndarray], out_shape: Shape,
                    target_limits: WebGPULimits) -> Dict[str, Any]:
    """What the WebGPU templates need: walk the plan as every runtime does (:meth:`Plan.chain`),
    recording the uploads (the op's arrays as they are: a buffer holds its values row-major) and
    the dispatches, and the device limits the programs need."""
    from .version import __version__

    uploads: List[Dict[str, Any]] = []
    steps: List[Dict[str, Any]] = []
    sources: List[str] = []
    specs: List[Any] = []
    pending_input: List[Tuple[str, str]] = []

    def upload(array: np.ndarray, layout: Any, *storage: str) -> Dict[str, int]:
        program, input_name = pending_input.pop(0)
        if not isinstance(layout, BufferLayout) or layout.size != np.size(array):
            raise NotImplementedError(f"{program}'s input {input_name} has shape {np.shape(array)}, its buffer "
                                      f"{layout!r}")
        uploads.append({"input": _source_of(array, arrays, program, input_name), "program": program,
                        "name": input_name, "size": layout.size, "bytes": layout.byte_size})
        return {"upload": len(uploads) - 1}

    def draw(spec: Any, inputs: Dict[str, Dict[str, int]], *storage: str) -> List[Dict[str, int]]:
        (output,) = spec.output_layouts
        source = target.source(spec)
        if source not in sources:
            sources.append(source)
        specs.append(spec)
        steps.append({"name": spec.name, "program": sources.index(source), "bindings": list(spec.variable_names),
                      "inputs": [inputs[name] for name in spec.variable_names],
                      "output": {"size": output.size, "bytes": output.byte_size},
                      "dispatch": [int(n) for n in spec.dispatch]})
        return [{"step": len(steps) - 1, "output": 0}]

    for position, (spec, _) in enumerate(plan.steps):  # the inputs Plan.chain uploads, in its order
        chained = set(spec.chained_inputs) if position else set()
        pending_input.extend((spec.name, item.name) for item in spec.inputs if item.name not in chained)
    plan.chain(upload, draw, [])
    if pending_input:  # pragma: no cover - Plan.chain uploads exactly the unchained inputs
        raise RuntimeError(f"the plan did not upload {pending_input}")

    size = math.prod(out_shape)
    last = plan.spec
    (output,) = last.output_layouts
    unpacks = type(last).assemble is ComputeProgramSpec.assemble  # BufferLayout.unpack: the first values
    if not (unpacks and isinstance(output, BufferLayout) and output.size == size) \
            and not _assembles_row_major(last, size):
        raise NotImplementedError(f"cannot export {plan.spec.name}: its result is not the first {size} values "
                                  f"of its output buffer")
    buffers = [(u["bytes"], f"{u['program']}'s input {u['name']}") for u in uploads]
    buffers += [(s["output"]["bytes"], f"{s['name']}'s output") for s in steps]
    largest = max(buffers, key=lambda item: item[0])
    needed = {
        "maxStorageBufferBindingSize": largest[0],
        "maxBufferSize": largest[0],
        "maxStorageBuffersPerShaderStage": max(len(spec.variable_names) + 1 for spec in specs),
        "maxComputeWorkgroupStorageSize": max(int(spec.workgroup_bytes) for spec in specs),
        "maxComputeInvocationsPerWorkgroup": max(int(spec.invocations) for spec in specs),
        "maxComputeWorkgroupSizeX": max(int(spec.workgroup_size[0]) for spec in specs),
        "maxComputeWorkgroupSizeY": max(int(spec.workgroup_size[1]) for spec in specs),
        "maxComputeWorkgroupSizeZ": max(int(spec.workgroup_size[2]) for spec in specs),
        "maxComputeWorkgroupsPerDimension": max(max(s["dispatch"]) for s in steps),
    }
    requirements = {"webgpu": True, "limits": needed, "storage": "float32"}
    inputs = {name: list(shape) for name, shape in call.shapes.items()}
    shapes = {**inputs, "output": list(out_shape)}
    names = [s["name"] for s in steps]
    about = {"op": call.op, "call": _call_text(call), "programs": names, "gpuconv": __version__,
             "target": "webgpu",
             "limits": {_camel(name): getattr(target_limits, name) for name in LIMIT_NAMES}}
    notes = {name: text.format(largest=largest[1]) for name, text in _LIMIT_NOTES.items()}
    plan_data = {"inputs": {name: {"shape": shape, "size": math.prod(shape)} for name, shape in inputs.items()},
                 "uploads": uploads, "steps": steps, "result": {"size": size, "shape": list(out_shape)},
                 "limitNotes": notes}
    programs = [{"name": next(s["name"] for s in steps if s["program"] == i), "source": source,
                 "entryPoint": _entry_point(source, names[0])} for i, source in enumerate(sources)]
    return {"about": about, "shapes": shapes, "requirements": requirements, "plan": plan_data,
            "programs": programs, "version": __version__}


def _camel(snake: str) -> str:
    head, *rest = snake.split("_")
    return head + "".join(word.capitalize() for word in rest)


def export(op: str, x_shape: Any, filter_shape: Any, *args: Any, format: str = "js", seed: int = 0,
           tolerance: Optional[float] = None, max_texture_size: Optional[int] = None,
           max_draw_buffers: Optional[int] = None, storage: str = "float32", target: str = "webgl2",
           target_limits: Optional[WebGPULimits] = None, **kwargs: Any) -> str:
    """The programs of one call of ``op`` as a dependency-free ES module (``format="js"``) or as one
    self-contained page that runs them on load and checks them against the oracle (``"html"``).

    Arguments are the op's own, with shapes instead of arrays, as :func:`gpuconv.registry.plan_shapes`
    takes them: ``x_shape`` and ``filter_shape``, ``pointwise_filter_shape=`` for
    ``separable_conv2d``; for a gradient op its three leading arguments (the third in ``args``).
    ``bias`` and ``prelu_weights``: ``True`` for one value per output channel, or an array (its
    shape, and in the page its values); ``activation="prelu"`` without weights gets one per channel.
    ``residual``: ``True`` for one of the output's shape (in the op's data format), added after the
    bias and before the activation, or such an array; either way one more input of the module.
    ``algorithm`` defaults to ``"auto"``, what the op runs.  ``max_texture_size`` and
    ``max_draw_buffers`` describe the device to generate for (``max_draw_buffers=4``: every
    WebGL2 device, phones included).  The page's inputs are seeded (``seed``) uniform values in
    [-1, 1]; it passes when the error relative to the output's largest magnitude is at most
    ``tolerance``.  ``storage="float16"`` makes every texture half-float (R16F/RGBA16F, as
    TF.js on phones without float32 render targets; see :mod:`gpuconv.storage`): the module
    rounds its inputs to halves as it uploads them, and the page's default ``tolerance`` is then
    :data:`FLOAT16_PAGE_TOLERANCE` (1e-2; else 1e-5: see :func:`gpuconv.oracle.float16_error_bound`).
    A page refuses to embed over :data:`MAX_EMBEDDED_BYTES` of data (``ValueError``).

    ``target="webgpu"``: the WebGPU target's WGSL compute programs instead (what the ops run on a
    WebGPU runtime; ``algorithm`` "auto" or "direct"), as a module exporting ``run(device, inputs)``
    (a GPUDevice; it resolves to the output), ``release()``, ``shapes``, ``about`` and
    ``requirements`` (``requirements["limits"]``: the least ``device.limits`` the programs need,
    which ``run`` checks first), or as a page that requests an adapter (``?featureLevel=core`` or
    ``compatibility`` in its URL chooses; by default core, then compatibility where core gives no
    adapter or only the fallback one) and checks the kernel on it.  ``target_limits`` (a
    :class:`~gpuconv.webgpu.limits.WebGPULimits`) describes the device to generate for (default:
    WebGPU's guaranteed limits); the WebGL2 options ``max_texture_size``, ``max_draw_buffers`` and
    ``storage="float16"`` are refused with it.

    Example:
        >>> text = gpuconv.export("conv2d", (1, 64, 64, 16), (3, 3, 16, 32), padding="SAME", format="js")
        >>> wgsl = gpuconv.export("conv2d", (1, 64, 64, 16), (3, 3, 16, 32), padding="SAME", target="webgpu")
    """
    return build(op, x_shape, filter_shape, *args, format=format, seed=seed, tolerance=tolerance,
                 max_texture_size=max_texture_size, max_draw_buffers=max_draw_buffers, storage=storage,
                 target=target, target_limits=target_limits, **kwargs).text

