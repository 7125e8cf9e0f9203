"""WebGPU natively: gpuconv's WGSL compute programs through wgpu-py (Vulkan, Metal, D3D12; Mesa's
lavapipe on a machine without a GPU).

One device per runtime.  A tensor is one storage buffer (:class:`~gpuconv.webgpu.layout.BufferLayout`);
a program is a compute pipeline, made once per source and kept; a draw is one dispatch of it
over new output buffers.  Buffers are destroyed when freed (``free``), not left to the
garbage collector.  The runtime is safe to share between threads: a lock serialises its
calls, as WebGPU's queue is one ordered stream anyway.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple

import numpy as np

from ..layout import InputLayout, Layout
from ..programs import LLVMPIPE_LOOP_LIMIT
from ..webgpu.layout import BufferLayout
from ..webgpu.limits import LIMIT_NAMES, WebGPULimits
from ..webgpu.target import WEBGPU
from .base import BaseRuntime, GLUnavailableError

#: What to install for WebGPU on a Debian/Ubuntu machine without a GPU driver of its own.
VULKAN_PACKAGES = "mesa-vulkan-drivers libvulkan1"
POWER_PREFERENCES = ("high-performance", "low-power")


def _wgpu() -> Any:
    try:
        import wgpu
    except ImportError as error:
        raise GLUnavailableError(
            "gpuconv.WebGPURuntime needs wgpu-py: pip install 'gpuconv[webgpu]' (or pip install wgpu)") from error
    return wgpu


def _gallivm(info: Mapping[str, Any]) -> bool:
    """Whether the adapter is Mesa's lavapipe (it names itself llvmpipe), which runs shaders through
    gallivm as llvmpipe does."""
    return any("llvmpipe" in str(info.get(key, "")).lower() for key in ("device", "vendor", "description"))


def _stored_as(program: Any, storage: str) -> Any:
    """``program`` reading and writing buffers of ``storage`` values (a WGSL program's source
    depends on it: halves are unpacked as they are read and packed as they are written)."""
    return program if storage == "float32" and getattr(program, "storage", "float32") == "float32" \
        else program.with_storage(storage)


class WebGPUError(RuntimeError):
    """WebGPU refused or lost something (validation, out of memory, a lost device): the message
    names the op's program and what the device said."""


class Buffer:
    """A storage buffer gpuconv made, and what it holds."""

    __slots__ = ("buffer", "layout", "__weakref__")

    def __init__(self, buffer: Any, layout: Layout) -> None:
        self.buffer = buffer
        self.layout = layout

    def __repr__(self) -> str:
        return f"Buffer({self.layout.shape}, {getattr(self.buffer, 'size', '?')} bytes)"


class WebGPURuntime(BaseRuntime):
    """Runs gpuconv's WGSL programs on a WebGPU device of this machine, through wgpu-py.

    ``power_preference`` ("high-performance" or "low-power") picks the adapter, or pass one
    (``adapter=``, a ``wgpu.GPUAdapter``).  The ``max_*`` keywords (WebGPU's limit names in
    snake case: ``max_storage_buffer_binding_size``, ``max_compute_workgroup_storage_size``,
    ``max_compute_invocations_per_workgroup``, ...) emulate a device with smaller limits.

    Example:
        >>> with gpuconv.WebGPURuntime() as gpu:                       # doctest: +SKIP
        ...     y = gpuconv.conv2d(x, w, padding="SAME", runtime=gpu)
    """

    kind = "native"
    target = WEBGPU
    #: Bytes of freed buffers kept for reuse: a new buffer's allocation and zeroing cost lavapipe
    #: about as much as a small dispatch (the separable benchmark layer: 12.3 -> 4.6 ms a call).
    POOL_BYTES = 256 << 20

    def __init__(self, power_preference: str = "high-performance", *, adapter: Any = None,
                 storage: str = "float32", **limits: Optional[int]) -> None:
        if power_preference not in POWER_PREFERENCES:
            raise ValueError(f"power_preference must be one of {', '.join(map(repr, POWER_PREFERENCES))}, "
                             f"got {power_preference!r}")
        self._released = True  # until the device exists
        wgpu = _wgpu()
        if adapter is None:
            try:
                adapter = wgpu.gpu.request_adapter_sync(power_preference=power_preference)
            except Exception as error:  # wgpu-native raises RuntimeError when no adapter answers
                raise GLUnavailableError(
                    f"no WebGPU adapter found ({error}); on Debian/Ubuntu install Mesa's Vulkan driver "
                    f"(apt-get install {VULKAN_PACKAGES}), or a GPU's Vulkan driver") from error
            if adapter is None:
                raise GLUnavailableError(f"no WebGPU adapter found; on Debian/Ubuntu install Mesa's Vulkan "
                                         f"driver (apt-get install {VULKAN_PACKAGES}), or a GPU's Vulkan driver")
        elif not hasattr(adapter, "request_device_sync"):
            raise TypeError(f"adapter must be a wgpu.GPUAdapter, got {type(adapter).__name__}")
        self.adapter = adapter
        self._timestamps = "timestamp-query" in adapter.features
        self.device = adapter.request_device_sync(
            required_features=["timestamp-query"] if self._timestamps else [],
            label="gpuconv")
        self._lost: Optional[str] = None
        self.device_limits = {key: int(value) for key, value in self.device.limits.items()
                              if isinstance(value, (int, float))}
        self.limits = WebGPULimits.capped(self.device_limits, **limits)  # type: ignore[assignment]
        self.storage = self.require_storage(storage)
        if _gallivm(dict(adapter.info)):
            # lavapipe compiles with gallivm, whose loop limiter silently ends an invocation's loops
            # after 65535 passes in all: refuse such a program (Plan.check_loops) instead of a wrong result
            self.max_loop_iterations = LLVMPIPE_LOOP_LIMIT
        self._pipelines: Dict[Any, Any] = {}
        self._pool: Dict[int, List[Any]] = {}  # freed buffers by byte size, for reuse
        self._pool_bytes = 0
        self._lock = threading.RLock()
        self._wgpu = wgpu
        self._released = False

    # -- what this device is -------------------------------------------------------------------------
    def info(self) -> Dict[str, object]:
        info = dict(self.adapter.info)
        return {
            "runtime": "WebGPURuntime (wgpu-py)",
            "target": self.target.name,
            "adapter": info.get("device") or info.get("description"),
            "vendor": info.get("vendor"),
            "adapter_type": info.get("adapter_type"),
            "backend": info.get("backend_type"),
            "driver": info.get("description"),
            "wgpu": getattr(self._wgpu, "__version__", "?"),
            "features": sorted(self.adapter.features),
            "limits": {name: self.device_limits.get(key) for name, key in LIMIT_NAMES.items()},
            "program_limits": {name: getattr(self.limits, name) for name in LIMIT_NAMES},
            "timestamp_query": self._timestamps,
            "max_loop_iterations": self.max_loop_iterations,
        }

    # -- buffers -------------------------------------------------------------------------------------
    def _check_alive(self) -> None:
        if self._released:
            raise RuntimeError("this WebGPURuntime has been released")
        if self._lost:
            raise WebGPUError(f"the WebGPU device was lost ({self._lost}); this runtime refuses every further "
                              f"call: make a new gpuconv.WebGPURuntime()")

    def _refused(self, what: str, error: BaseException) -> WebGPUError:
        """The error a user sees for a failed WebGPU call: a lost device (after which this runtime
        refuses every call), out of memory, or what validation said; ``what`` names the program."""
        text = str(error)
        if "lost" in text.lower():
            self._lost = text.strip().splitlines()[-1].strip()
            return WebGPUError(f"{what}: the WebGPU device was lost ({self._lost}); this runtime refuses every "
                               f"further call: make a new gpuconv.WebGPURuntime()")
        if type(error).__name__ == "GPUOutOfMemoryError" or "out of memory" in text.lower():
            return WebGPUError(f"{what}: the WebGPU device is out of memory ({text.strip()}); free Tensors "
                               f"(Tensor.release()) or split the call")
        return WebGPUError(f"{what}: {text.strip()}")

    def _new_buffer(self, layout: BufferLayout, data: Optional[np.ndarray] = None) -> Buffer:
        usage = self._wgpu.BufferUsage
        flags = usage.STORAGE | usage.COPY_SRC | usage.COPY_DST
        kept = self._pool.get(layout.byte_size)
        try:
            if kept:  # a freed buffer of this size: no allocation, no zeroing
                buffer = kept.pop()
                self._pool_bytes -= layout.byte_size
                if data is not None:
                    self.device.queue.write_buffer(buffer, 0, data)
            elif data is None:
                buffer = self.device.create_buffer(size=layout.byte_size, usage=flags)
            else:
                buffer = self.device.create_buffer_with_data(data=data, usage=flags)
        except Exception as error:
            raise self._refused(f"a buffer of {layout.byte_size} bytes ({'x'.join(map(str, layout.shape))})",
                                error) from error
        handle = Buffer(buffer, layout)
        self._count_made([handle], [layout], layout.dtype)
        return handle

    def upload(self, array: np.ndarray, layout: InputLayout, storage: str = "float32") -> Buffer:
        self.require_storage(storage)
        if not isinstance(layout, BufferLayout):
            raise TypeError(f"the WebGPU runtime stores tensors in buffers (BufferLayout), got {type(layout).__name__}")
        layout = layout.stored_as(storage)  # float16: rounded to halves here, two to a word
        values = layout.pack(np.asarray(array, dtype=np.float32))
        with self._lock:
            self._check_alive()
            return self._new_buffer(layout, values)

    def read(self, texture: Buffer, layout: Layout) -> np.ndarray:
        with self._lock:
            self._check_alive()
            try:
                data = self.device.queue.read_buffer(texture.buffer)
            except Exception as error:
                raise self._refused("reading a result back", error) from error
        stored = texture.layout if isinstance(texture.layout, BufferLayout) else BufferLayout(tuple(layout.shape))
        return stored.from_bytes(data).reshape(1, -1, 1)

    def free(self, textures: Iterable[Buffer]) -> None:
        """Release buffers this runtime made: each is kept for reuse by a later buffer of its size
        (up to :attr:`POOL_BYTES` in all; the queue's order keeps its new writes after its old
        reads), else destroyed.  The handle is detached either way."""
        textures = list(textures)
        with self._lock:
            for handle in textures:
                if handle.buffer is not None:
                    size = handle.buffer.size
                    if self._lost or self._pool_bytes + size > self.POOL_BYTES:
                        handle.buffer.destroy()
                    else:
                        self._pool.setdefault(size, []).append(handle.buffer)
                        self._pool_bytes += size
                    handle.buffer = None
            self._count_freed(textures)

    def _empty_pool(self) -> None:
        for buffers in self._pool.values():
            for buffer in buffers:
                buffer.destroy()
        self._pool.clear()
        self._pool_bytes = 0

    # -- programs ------------------------------------------------------------------------------------
    def _pipeline(self, spec: Any) -> Any:
        key = spec.source_key()
        pipeline = self._pipelines.get(key)
        if pipeline is None:
            source = self.target.source(spec)
            try:
                module = self.device.create_shader_module(code=source, label=spec.name)
                pipeline = self.device.create_compute_pipeline(
                    layout="auto", compute={"module": module, "entry_point": "main"}, label=spec.name)
            except Exception as error:
                raise self._refused(f"{spec.name}: WebGPU refused the program", error) from error
            self._pipelines[key] = pipeline
            self.compiled_programs += 1
        return pipeline

    def compile(self, programs: Iterable[Any]) -> int:
        """Create the compute pipelines of ``programs`` ahead of their first dispatch."""
        with self._lock:
            self._check_alive()
            before = self.compiled_programs
            for spec in programs:
                self._pipeline(spec)
            return self.compiled_programs - before

    def _encode(self, spec: Any, inputs: Mapping[str, Buffer], timestamps: Any = None) -> Tuple[Any, List[Buffer]]:
        missing = set(spec.variable_names) - set(inputs)
        if missing:
            raise ValueError(f"inputs missing for {spec.name}: {sorted(missing)}")
        spec.check(self.limits)
        pipeline = self._pipeline(spec)
        outputs = [self._new_buffer(layout) for layout in spec.output_layouts]
        buffers = [inputs[name] for name in spec.variable_names] + outputs
        entries = [{"binding": i, "resource": {"buffer": handle.buffer, "offset": 0, "size": handle.buffer.size}}
                   for i, handle in enumerate(buffers)]
        try:
            bind_group = self.device.create_bind_group(layout=pipeline.get_bind_group_layout(0), entries=entries)
            encoder = self.device.create_command_encoder()
            # halves are ORed into their words: cleared first (wgpu-native on lavapipe was seen to hand
            # out a new buffer holding a destroyed one's values, where WebGPU promises zeros)
            for handle in outputs:
                if getattr(handle.layout, "half", False):
                    encoder.clear_buffer(handle.buffer)
            compute = encoder.begin_compute_pass(timestamp_writes=timestamps) if timestamps else \
                encoder.begin_compute_pass()
            compute.set_pipeline(pipeline)
            compute.set_bind_group(0, bind_group)
            compute.dispatch_workgroups(*spec.dispatch)
            compute.end()
        except Exception as error:
            self.free(outputs)
            raise self._refused(f"{spec.name}: WebGPU refused the dispatch", error) from error
        return encoder, outputs

    def draw(self, program: Any, inputs: Mapping[str, Any], storage: str = "float32") -> List[Buffer]:
        """Dispatch ``program`` over its whole output; returns its new output buffer.  With
        ``storage="float16"`` the program reads and writes halves (its ``with_storage``)."""
        self.require_storage(storage)
        program = _stored_as(program, storage)
        with self._lock:
            self._check_alive()
            encoder, outputs = self._encode(program, inputs)
            try:
                self.device.queue.submit([encoder.finish()])
            except Exception as error:
                self.free(outputs)
                raise self._refused(f"{program.name}: WebGPU refused the submission", error) from error
            return outputs

    def timed_draw(self, program: Any, inputs: Mapping[str, Any],
                   storage: str = "float32") -> Tuple[List[Any], float, str]:
        """One dispatch timed by the GPU's timestamp queries where the adapter has them, else
        synchronized wall time."""
        if not self._timestamps:
            return super().timed_draw(program, inputs, storage)
        self.require_storage(storage)
        program = _stored_as(program, storage)
        wgpu = self._wgpu
        with self._lock:
            self._check_alive()
            query = self.device.create_query_set(type="timestamp", count=2)
            resolved = self.device.create_buffer(size=16, usage=wgpu.BufferUsage.QUERY_RESOLVE
                                                 | wgpu.BufferUsage.COPY_SRC)
            encoder, outputs = self._encode(program, inputs, {
                "query_set": query, "beginning_of_pass_write_index": 0, "end_of_pass_write_index": 1})
            encoder.resolve_query_set(query, 0, 2, resolved, 0)
            self.device.queue.submit([encoder.finish()])
            stamps = np.frombuffer(self.device.queue.read_buffer(resolved), dtype=np.uint64)
            resolved.destroy()
            query.destroy()
        seconds = float(stamps[1] - stamps[0]) * 1e-9 if stamps[1] >= stamps[0] else 0.0
        return outputs, seconds, "GPU timestamp query (ns)"

    def finish(self) -> None:
        """Wait for every queued dispatch: a 4-byte copy and its read-back queue behind them."""
        with self._lock:
            self._check_alive()
            usage = self._wgpu.BufferUsage
            try:
                fence = self.device.create_buffer(size=4, usage=usage.COPY_SRC | usage.COPY_DST)
                self.device.queue.read_buffer(fence)
            except Exception as error:
                raise self._refused("waiting for the queue", error) from error
            fence.destroy()

    def release(self) -> None:
        with getattr(self, "_lock", threading.RLock()):
            if self._released:
                return
            self._released = True
            live = self.__dict__.get("_live_textures", {})
            for handle, _ in list(live.values()):
                if handle.buffer is not None:
                    handle.buffer.destroy()
                    handle.buffer = None
            live.clear()
            with contextlib.suppress(Exception):  # a lost device's buffers are gone already
                self._empty_pool()
            self._pipelines.clear()
            with contextlib.suppress(Exception):  # a lost device is gone already
                self.device.destroy()

    def __repr__(self) -> str:
        state = "released" if self._released else str(dict(self.adapter.info).get("device"))
        return f"gpuconv.WebGPURuntime({state})"
