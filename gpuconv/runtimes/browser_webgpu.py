"""WebGPU in headless Chromium: the WebGPU target's WGSL compute programs as a browser runs them.

``gpuconv.BrowserRuntime(api="webgpu")`` is this runtime.  It is the browser runtime
(:mod:`.browser`) with another page (``browser_webgpu_page.js``): the same shared Playwright,
the same one-round-trip plans, program cache, compile batching, handles and memory counts;
only the ops it sends differ (buffers instead of textures, a dispatch grid instead of
uniforms).  ``gl`` picks Chromium's WebGPU adapter:

* ``"angle-egl"``: Dawn's OpenGL ES backend on ANGLE over the system's EGL (Mesa's llvmpipe
  on a machine without a GPU): a compatibility-mode adapter, without ``timestamp-query``;
* ``"swiftshader"``: Dawn's Vulkan backend on SwiftShader, Chromium's fallback adapter
  (core features, ``timestamp-query``; slower).

WebGPU needs a secure context, so the page is served from ``http://127.0.0.1/`` by
Playwright's request routing (no server, no socket).  A WebGPU error (validation, out of
memory, a pipeline that does not compile) is a :class:`~gpuconv.runtimes.webgpu.WebGPUError`
naming the program; a lost device one too, after which the runtime refuses every call.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Dict, Hashable, Iterable, List, Mapping, Optional, Set, Tuple

import numpy as np

from ..layout import InputLayout, Layout
from ..programs import LLVMPIPE_LOOP_LIMIT
from ..storage import check_storage
from ..webgpu.layout import BufferLayout
from ..webgpu.limits import LIMIT_NAMES, WebGPULimits
from ..webgpu.target import WEBGPU
from .base import BaseRuntime, GLUnavailableError
from .browser import BASE_FLAGS, BrowserRuntime, BrowserTexture, _encode
from .webgpu import WebGPUError, _stored_as

#: Chromium's flags for each ``gl`` choice of the WebGPU page.  --enable-webgpu-developer-features
#: fills in the adapter's description and leaves timestamp queries unquantized.
WEBGPU_FLAGS: Dict[str, Tuple[str, ...]] = {
    "angle-egl": ("--enable-unsafe-webgpu", "--enable-webgpu-developer-features", "--use-webgpu-adapter=opengles",
                  "--use-gl=angle", "--use-angle=gl-egl", "--ignore-gpu-blocklist"),
    "swiftshader": ("--enable-unsafe-webgpu", "--enable-webgpu-developer-features"),
}

#: The page's navigator.gpu.requestAdapter() options for each ``gl``: Dawn offers its OpenGL ES
#: backend only to a compatibility-mode request (a core request still gets SwiftShader).
ADAPTER_REQUESTS: Dict[str, Dict[str, Any]] = {
    "angle-egl": {"featureLevel": "compatibility"},
    "swiftshader": {"forceFallbackAdapter": True},
}

_HINTS = {
    "angle-egl": ("gl='angle-egl' needs Chromium started with " + " ".join(WEBGPU_FLAGS["angle-egl"]) +
                  " (gpuconv passes them), a compatibility-mode adapter request, and the system's EGL (Mesa's: "
                  "'apt-get install --no-install-recommends libegl1 libegl-mesa0 libgl1 libgl1-mesa-dri'); "
                  "gl='swiftshader' needs none of it"),
    "swiftshader": ("gl='swiftshader' needs Chromium started with --enable-unsafe-webgpu (gpuconv passes it) "
                    "and the SwiftShader Vulkan that Chromium ships (libvk_swiftshader.so)"),
}

def _words(layout: BufferLayout) -> int:
    """The 32-bit words that hold a buffer's values (what the page reads back)."""
    return -(-layout.size * layout.value_bytes // 4)


#: Where the page is served from: a secure context without a server (Playwright routes the request).
PAGE_URL = "http://127.0.0.1/gpuconv/webgpu.html"


def _camel(kebab: str) -> str:
    head, *rest = kebab.split("-")
    return head + "".join(word.capitalize() for word in rest)


def _kebab(camel: str) -> str:
    return re.sub(r"(?<!^)([A-Z0-9]+)", lambda m: "-" + m.group(1).lower(), camel)


class BrowserWebGPURuntime(BrowserRuntime):
    """WebGPU in a headless Chromium; make it as ``gpuconv.BrowserRuntime(api="webgpu", gl=...)``.

    ``gl``: ``"angle-egl"`` (the compatibility adapter on ANGLE over EGL) or ``"swiftshader"``
    (the fallback adapter).  The ``max_*`` keywords (WebGPU's limit names in snake case, as
    :class:`~gpuconv.WebGPURuntime` takes them) emulate a device with smaller limits.  Buffers
    hold float32, or with ``storage="float16"`` halves two to a 32-bit word.
    """

    api = "webgpu"
    target = WEBGPU
    PAGE_SCRIPT = Path(__file__).with_name("browser_webgpu_page.js")

    def __init__(self, gl: str = "angle-egl", executable: Optional[str] = None, headless: bool = True, *,
                 api: str = "webgpu", storage: str = "float32", **limits: Optional[int]) -> None:
        if api != "webgpu":
            raise ValueError(f"api must be 'webgl2' or 'webgpu', got {api!r}")
        if gl not in WEBGPU_FLAGS:
            raise ValueError(f"gl must be one of {', '.join(map(repr, WEBGPU_FLAGS))} with api='webgpu', got {gl!r}")
        unknown = set(limits) - set(LIMIT_NAMES)
        if unknown:
            raise TypeError(f"unknown WebGPU limit(s) {sorted(unknown)}; choose from {sorted(LIMIT_NAMES)}")
        self._lost: Optional[str] = None
        self._halves: Set[int] = set()  # ids of the page's buffers of halves
        self.storage = self.require_storage(storage)
        wanted = [_camel(key) for key in LIMIT_NAMES.values()] + ["maxBufferSize"]
        result = self._open(gl, executable, headless, list(BASE_FLAGS) + list(WEBGPU_FLAGS[gl]),
                            {"op": "init", "adapter": ADAPTER_REQUESTS[gl], "refuse_fallback": gl == "angle-egl",
                             "limits": wanted})
        self._device: Dict[str, Any] = result
        self.adapter_info: Dict[str, Any] = dict(result["adapter"])
        self.device_limits = {_kebab(name): int(value) for name, value in result["limits"].items()}
        self.timestamp_query = bool(result["timestamp_query"])
        try:
            self.limits = WebGPULimits.capped(self.device_limits, **limits)  # type: ignore[assignment]
        except BaseException:
            self.release()
            raise
        if "llvmpipe" in str(self.adapter_info.get("description", "")):
            # llvmpipe ends every loop of a shader after 65535 iterations, compute shaders too
            self.max_loop_iterations = LLVMPIPE_LOOP_LIMIT

    def _load_page(self, html: str) -> None:
        def serve(route: Any) -> None:
            if route.request.url == PAGE_URL:
                route.fulfill(status=200, content_type="text/html; charset=utf-8", body=html)
            else:
                route.fulfill(status=404, body="")

        self._page.route("http://127.0.0.1/**", serve)
        self._page.goto(PAGE_URL)

    def require_storage(self, storage: str) -> str:
        """Both storages: "float16" keeps halves two to a 32-bit word (core WGSL's pack2x16float)."""
        return check_storage(storage)

    # -- failures ----------------------------------------------------------------------------------
    def _lost_error(self) -> WebGPUError:
        return WebGPUError(f"{self._lost}; this runtime refuses every further call: make a new "
                           f"gpuconv.BrowserRuntime(api='webgpu', gl={self.gl!r})")

    def _check_usable(self) -> None:
        super()._check_usable()
        if self._lost is not None:
            raise self._lost_error()

    def _page_failure(self, answer: Dict[str, Any]) -> BaseException:
        kind, message = answer.get("kind"), answer.get("message")
        if kind == "lost":
            self._lost = str(message)
            return self._lost_error()
        if kind == "unavailable":
            return GLUnavailableError(f"gpuconv's browser runtime (api='webgpu', gl={self.gl!r}): {message}; "
                                      f"{_HINTS[self.gl]}")
        if kind == "webgpu":
            log = answer.get("log")
            return WebGPUError(f"{message} (Chromium's WebGPU, gl={self.gl!r})" + (f"\n{log}" if log else ""))
        return super()._page_failure(answer)

    # -- the ops, as this page takes them -------------------------------------------------------
    def _new_buffer(self, layout: BufferLayout) -> BrowserTexture:
        """A buffer's handle; one of halves is remembered as such (read back as halves)."""
        texture = self._new_texture(layout)
        if layout.half:
            self._halves.add(texture.id)
        return texture

    def read(self, texture: Any, layout: Layout) -> np.ndarray:
        if isinstance(texture, BrowserTexture) and texture.id in self._halves and isinstance(layout, BufferLayout):
            layout = layout.stored_as("float16")
        return super().read(texture, layout)

    def free(self, textures: Iterable[Any]) -> None:
        textures = list(textures)
        self._halves.difference_update(getattr(texture, "id", None) for texture in textures)
        super().free(textures)

    def _upload_op(self, array: np.ndarray, layout: InputLayout, storage: str = "float32"
                   ) -> Tuple[BrowserTexture, Dict[str, Any]]:
        if not isinstance(layout, BufferLayout):
            raise TypeError(f"the WebGPU page stores tensors in buffers (BufferLayout), got {type(layout).__name__}")
        if np.size(array) != layout.size:
            raise ValueError(f"array of shape {np.shape(array)} does not match layout {layout.shape}")
        layout = layout.stored_as(storage)  # float16: rounded to halves here, two to a word
        texture = self._new_buffer(layout)
        return texture, {"op": "upload", "id": texture.id, "bytes": layout.byte_size, "count": _words(layout),
                         "data": _encode(layout.pack(array), layout.dtype)}

    def _draw_op(self, spec: Any, inputs: Mapping[str, Any], pending: List[Hashable],
                 storage: str = "float32") -> Tuple[List[BrowserTexture], Dict[str, Any]]:
        self._check_draw(spec, inputs, 1)
        spec = _stored_as(spec, storage)
        spec.check(self.limits)  # refused here, naming the limit, before the page is asked
        ids = []
        for name in spec.variable_names:
            texture = inputs[name]
            if not isinstance(texture, BrowserTexture) or texture.runtime is not self:
                raise TypeError(f"input {name!r} of {spec.name} is not a buffer of this BrowserRuntime")
            ids.append(texture.id)
        layouts = spec.output_layouts
        outputs = [self._new_buffer(layout) for layout in layouts]
        op = {"op": "draw", "program": self._program_ref(spec, pending), "inputs": ids,
              "dispatch": [int(n) for n in spec.dispatch],
              "outputs": [{"id": t.id, "bytes": layout.byte_size, "count": _words(layout), "clear": layout.half}
                          for t, layout in zip(outputs, layouts)]}
        return outputs, op

    def timed_draw(self, program: Any, inputs: Mapping[str, Any],
                   storage: str = "float32") -> Tuple[List[Any], float, str]:
        """One dispatch timed in the page: by timestamp queries around its compute pass where the
        adapter has ``timestamp-query`` (SwiftShader), else by the page's clock from submission to
        ``onSubmittedWorkDone`` (the compatibility adapter); ``how`` says which."""
        self._check_usable()
        self.require_storage(storage)
        pending: List[Hashable] = []
        outputs, op = self._draw_op(program, inputs, pending, storage)
        op["op"] = "timed_draw"
        try:
            (answer,) = self._call_compiling([op], pending)
        except BaseException:
            self.free(outputs)
            raise
        self._count_made(outputs, program.output_layouts, storage)
        return outputs, float(answer["seconds"]), str(answer["how"])

    # -- facts ------------------------------------------------------------------------------------
    def info(self) -> Dict[str, object]:
        """The browser, the WebGPU adapter (vendor, architecture, description, whether it is the
        fallback adapter, its feature level), its features, the device's limits and those the
        programs are generated for."""
        device = self._call([{"op": "describe"}])[0]
        adapter = dict(device["adapter"])
        return {
            "runtime": self.kind,
            "api": self.api,
            "target": self.target.name,
            "backend": self.gl,
            "browser": "chromium",
            "browser_version": self.browser_version,
            "executable": self.executable,
            "headless": self.headless,
            "adapter": {key: adapter.get(key) for key in ("vendor", "architecture", "device", "description",
                                                          "isFallbackAdapter", "featureLevel")},
            "features": list(adapter.get("features", [])),
            "device_features": list(device["device_features"]),
            "limits": {name: self.device_limits.get(key) for name, key in LIMIT_NAMES.items()},
            "program_limits": {name: getattr(self.limits, name) for name in LIMIT_NAMES},
            "timestamp_query": bool(device["timestamp_query"]),
            "max_loop_iterations": self.max_loop_iterations,
            "cached_programs": len(self._programs),
            "page_programs": int(device["programs"]),
            "page_buffers": int(device["buffers"]),  # live: made and not freed
            "page_buffer_bytes": int(device["buffer_bytes"]),
            "storage": self.storage,
        }

    def memory(self) -> Dict[str, int]:
        """As :meth:`BaseRuntime.memory`, with ``page_buffers``: the live buffers the page holds
        (after destroying the freed ones)."""
        facts = BaseRuntime.memory(self)
        facts["page_buffers"] = int(self._call([{"op": "describe"}])[0]["buffers"])
        return facts

    def __repr__(self) -> str:
        state = "released" if self._released else str(self.adapter_info.get("description")
                                                       or self.adapter_info.get("architecture"))
        return f"gpuconv.BrowserRuntime(api='webgpu', gl={self.gl!r}: {state})"


__all__ = ["BrowserWebGPURuntime", "WEBGPU_FLAGS", "ADAPTER_REQUESTS", "PAGE_URL"]
