"""The browser runtime: WebGL2 in headless Chromium, driven by Playwright.

A :class:`BrowserRuntime` launches the system's Chromium (never a downloaded one) with
Playwright for Python, loads a page of its own (``browser_page.js``) that holds one
WebGL2 context, and runs gpuconv's programs there exactly as TF.js's WebGL backend
would run them in a browser.  ``gl`` picks Chromium's GL implementation:

* ``"angle-egl"``: ANGLE over the system's EGL (Mesa's llvmpipe on a machine without a
  GPU, the GPU's driver on one with a GPU);
* ``"swiftshader"``: ANGLE over Vulkan over SwiftShader, Chromium's own CPU renderer.

Each call is one ``page.evaluate`` round trip.  The page is served by the runtime's own
server on 127.0.0.1 (:mod:`.page_server`), from which the page fetches large uploads as
bytes; a call's large read-backs come back as one download, which Python reads from disk
(``browser_transfer.js``); small arrays cross inline as base64 strings of their float32
bytes.  :meth:`BrowserRuntime.run` sends a whole plan (uploads, draws, the chaining and the
read-back) in one round trip; the primitive calls (upload, draw, read, free, finish) work too.
Compiled programs are kept in the page (an LRU of
:attr:`BrowserRuntime.PROGRAM_CACHE_SIZE`, keyed by the program's source key).

``BrowserRuntime(api="webgpu")`` runs the WebGPU target's WGSL compute programs in the same
way, on a page of its own (:class:`BrowserWebGPURuntime`, at the end of this module, which
the ``api=`` choice names); everything on this side is shared.
"""

from __future__ import annotations

import base64
import itertools
import re
import shutil
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Hashable, Iterable, List, Mapping, Optional, Sequence, Set, Tuple, Union

import numpy as np

from .. import codegen
from ..layout import InputLayout, Layout
from ..limits import Limits
from ..programs import LLVMPIPE_LOOP_LIMIT, Drawable
from ..storage import check_storage
from ..webgpu.layout import BufferLayout
from ..webgpu.limits import LIMIT_NAMES, WebGPULimits
from ..webgpu.target import WEBGPU
from .base import BaseRuntime, GLUnavailableError
from .page_server import BLOB_BYTES, PageServer
from .webgpu import WebGPUError, _stored_as

if TYPE_CHECKING:  # pragma: no cover
    from ..plan import Plan

#: How long a call's read-back download may take to arrive (Playwright's milliseconds).
DOWNLOAD_TIMEOUT_MS = 60_000

#: Chromium's flags for each ``gl`` choice.
GL_FLAGS: Dict[str, Tuple[str, ...]] = {
    "angle-egl": ("--use-gl=angle", "--use-angle=gl-egl", "--ignore-gpu-blocklist"),
    "swiftshader": ("--use-gl=angle", "--use-angle=swiftshader", "--enable-unsafe-swiftshader"),
}

#: Flags every launch gets: no sandbox (CI runs as root), no network chatter, no first-run UI.
BASE_FLAGS: Tuple[str, ...] = (
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
)

#: Playwright's default flags that would undo a ``gl`` choice (it allows SwiftShader by default).
IGNORED_DEFAULT_FLAGS: Tuple[str, ...] = ("--enable-unsafe-swiftshader",)

#: Executable names looked up on PATH when none is given.
CHROMIUM_NAMES: Tuple[str, ...] = ("chromium", "chromium-browser")

CHROMIUM_HINT = ("install Debian's Chromium with 'apt-get install chromium' (Ubuntu: 'chromium-browser' "
                 "or the snap), or pass the browser's path: gpuconv.BrowserRuntime(executable=...)")
PLAYWRIGHT_HINT = "pip install 'gpuconv[browser]' (Playwright for Python; no 'playwright install' is needed)"

_PAGE_SCRIPT = Path(__file__).with_name("browser_page.js")
#: How arrays cross (inline base64, or through the runtime's server), loaded before either page's script.
_TRANSFER_SCRIPT = Path(__file__).with_name("browser_transfer.js")
_GL_HINTS = {
    "angle-egl": ("gl='angle-egl' needs the system's EGL (Mesa's: 'apt-get install --no-install-recommends "
                  "libegl1 libegl-mesa0 libgl1 libgl1-mesa-dri', or a GPU driver's); gl='swiftshader' needs none"),
    "swiftshader": "gl='swiftshader' needs the SwiftShader that Chromium ships (libvk_swiftshader.so)",
}
_CHROMIUM_CLOSED = "Chromium has closed (it exited, crashed or was closed)"


class BrowserClosedError(GLUnavailableError):
    """The runtime's Chromium (or its page, or its WebGL context) is gone; make a new runtime."""


def find_chromium(executable: Optional[str] = None) -> str:
    """The Chromium to launch: ``executable`` if given, else ``chromium`` / ``chromium-browser`` on PATH."""
    if executable is not None:
        path = shutil.which(executable) or (executable if Path(executable).is_file() else None)
        if path is None:
            raise GLUnavailableError(f"gpuconv's browser runtime: no browser at {executable!r}; {CHROMIUM_HINT}")
        return path
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    raise GLUnavailableError(f"gpuconv's browser runtime needs Chromium, and none is on PATH "
                             f"({' or '.join(CHROMIUM_NAMES)}): {CHROMIUM_HINT}")


def launch_flags(gl: str) -> List[str]:
    """Chromium's command-line flags for ``gl`` (besides those Playwright adds itself)."""
    if gl not in GL_FLAGS:
        raise ValueError(f"gl must be one of {', '.join(map(repr, GL_FLAGS))}, got {gl!r}")
    return list(BASE_FLAGS) + list(GL_FLAGS[gl])


class _SharedPlaywright:
    """One Playwright driver per thread, shared by that thread's browser runtimes.

    Playwright's sync API refuses a second ``sync_playwright().start()`` in a thread while
    one runs, so the runtimes of a thread count their uses of one driver; the last
    :meth:`release` stops it.
    """

    _local = threading.local()

    @classmethod
    def acquire(cls) -> Any:
        holder = getattr(cls._local, "holder", None)
        if holder is None:
            try:
                from playwright.sync_api import sync_playwright
            except ImportError as exc:
                raise GLUnavailableError(f"gpuconv's browser runtime needs Playwright for Python: "
                                         f"{PLAYWRIGHT_HINT} ({exc})") from exc
            try:
                driver = sync_playwright().start()
            except Exception as exc:  # Playwright's own Error: a running asyncio loop (Jupyter, say)
                if "asyncio loop" not in str(exc):
                    raise
                raise RuntimeError(
                    "gpuconv's BrowserRuntime drives Chromium with Playwright's sync API, which cannot run in "
                    "a thread with a running asyncio event loop (a Jupyter notebook, an async program, or your "
                    "own Playwright session): create and use the BrowserRuntime in another thread, e.g. "
                    "concurrent.futures.ThreadPoolExecutor(1)") from exc
            holder = cls._local.holder = [driver, 0]
        holder[1] += 1
        return holder[0]

    @classmethod
    def release(cls) -> None:
        holder = getattr(cls._local, "holder", None)
        if holder is None:
            return
        holder[1] -= 1
        if holder[1] <= 0:
            cls._local.holder = None
            try:
                holder[0].stop()
            except Exception:  # the driver may be gone already
                pass


@dataclass(frozen=True, eq=False)
class BrowserTexture:
    """A texture in the runtime's page: its id there and its size."""

    id: int
    cols: int
    rows: int
    components: int
    runtime: "BrowserRuntime"


def _texel_bytes(texels: np.ndarray, storage: str = "float32") -> bytes:
    """The texels' float32 bytes, or (float16 storage) their float16 bytes: the page uploads
    those as HALF_FLOAT, rounded here as NumPy rounds (to the nearest half)."""
    with np.errstate(over="ignore"):  # beyond 65504 a half is infinity, as the GPU stores it
        data = np.ascontiguousarray(np.asarray(texels, dtype=np.float32),
                                    dtype="<f2" if storage == "float16" else "<f4")
    return data.tobytes()


def _decode(answer: Union[str, bytes], layout: Layout) -> np.ndarray:
    """A read-back: bytes that came through the runtime's server, or base64 text inline."""
    raw = answer if isinstance(answer, bytes) else base64.b64decode(answer)
    if getattr(layout, "dtype", "float32") == "float16":  # a WebGPU buffer of halves, two to a word
        halves = np.frombuffer(raw, dtype="<f2", count=layout.rows * layout.cols)
        return halves.astype(np.float32).reshape(layout.rows, layout.cols, layout.components)
    data = np.frombuffer(raw, dtype="<f4").astype(np.float32, copy=False)
    return data.reshape(layout.rows, layout.cols, layout.components)


def _uniform_value(value: Any) -> Any:
    """A uniform as JSON: numbers stay numbers, tuples become lists (the page picks the GL call)."""
    if isinstance(value, (tuple, list)):
        return [_uniform_value(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    return float(value)


class BrowserRuntime(BaseRuntime):
    """WebGL2 in a headless Chromium: gpuconv's programs as a browser runs them.

    ``gl``: ``"angle-egl"`` (ANGLE over the system's EGL: Mesa's llvmpipe here, a GPU's
    driver where there is one) or ``"swiftshader"`` (Chromium's CPU Vulkan).
    ``executable``: the browser to launch (default: ``chromium`` or ``chromium-browser``
    on PATH; a browser is never downloaded).  ``headless=False`` opens a window (needs a
    display).  ``max_draw_buffers`` / ``max_texture_size`` emulate a smaller device
    (``max_draw_buffers=4``: a phone); ``storage="float16"`` stores every texture as a phone
    without float32 render targets does (R16F/RGBA16F; an op's ``storage=`` overrides it).
    Use it from the thread that created it, and
    :meth:`release` it (or use ``with``) to close the browser.

    ``api="webgpu"`` runs the WebGPU target (WGSL compute programs over storage buffers) instead:
    ``gl`` then picks Chromium's WebGPU adapter, and the ``max_*`` keywords are WebGPU's limits
    (:class:`~gpuconv.runtimes.browser.BrowserWebGPURuntime`).
    """

    kind = "browser"
    #: The browser API the page runs gpuconv's programs through: "webgl2" or "webgpu".
    api = "webgl2"
    #: The page's script, beside this module.
    PAGE_SCRIPT = _PAGE_SCRIPT

    #: Compiled programs kept in the page at most (the least recently used are deleted).
    PROGRAM_CACHE_SIZE = 64
    #: Whether the last :meth:`compile` could let the browser compile in parallel
    #: (``KHR_parallel_shader_compile``); ``None`` before one.
    last_compile_parallel: Optional[bool] = None
    #: Bytes of freed textures the page keeps for reuse at most (the least recently freed ones
    #: beyond it are deleted): WebGL zero-fills every new texture, which cost more than the draw
    #: into it (8 new 448x112 RGBA32F outputs: 11.2 ms against 1.3 ms reused).  0: no pool.
    POOL_BYTES = 256 << 20

    def __new__(cls, *args: Any, api: str = "webgl2", **kwargs: Any) -> "BrowserRuntime":
        # api="webgpu" gives the WebGPU page's runtime, which shares everything here but the ops' format.
        if cls is BrowserRuntime and api == "webgpu":
            return super().__new__(BrowserWebGPURuntime)
        return super().__new__(cls)

    def __init__(self, gl: str = "angle-egl", executable: Optional[str] = None, headless: bool = True,
                 max_draw_buffers: Optional[int] = None, max_texture_size: Optional[int] = None,
                 storage: str = "float32", *, api: str = "webgl2"):
        if api != "webgl2":
            raise ValueError(f"api must be 'webgl2' or 'webgpu', got {api!r}")
        self.storage = check_storage(storage)
        result = self._open(gl, executable, headless, launch_flags(gl),
                            {"op": "init", "vertex": codegen.vertex_source(), "pool_bytes": int(self.POOL_BYTES)})
        self._device: Dict[str, Any] = result
        self.device_max_texture_size = int(result["max_texture_size"])
        self.device_max_draw_buffers = min(int(result["max_draw_buffers"]), int(result["max_color_attachments"]))
        self.limits = Limits.capped(self.device_max_texture_size, self.device_max_draw_buffers,
                                    max_texture_size, max_draw_buffers)
        if "llvmpipe" in str(result.get("webgl_renderer", "")) + str(result.get("renderer", "")):
            self.max_loop_iterations = LLVMPIPE_LOOP_LIMIT  # ANGLE over Mesa's llvmpipe
        if self.storage == "float16":
            try:
                self.require_storage("float16")
            except BaseException:
                self.release()
                raise

    def _open(self, gl: str, executable: Optional[str], headless: bool, flags: List[str],
              init: Dict[str, Any]) -> Dict[str, Any]:
        """Launch Chromium with ``flags``, load the page and run its ``init`` op; its answer."""
        self.gl = gl
        self.headless = headless
        self.executable = find_chromium(executable)
        self.thread_id = threading.get_ident()
        self._released = False
        self._closed: Optional[str] = None  # why the browser is gone, once it is
        self._programs: "OrderedDict[Hashable, int]" = OrderedDict()  # source key -> id in the page
        self._drop_programs: List[int] = []
        self._drop_textures: List[int] = []
        self._ids = itertools.count(1)
        self._browser: Any = None
        self._page: Any = None
        self._server: Optional[PageServer] = None
        self._downloads: Dict[str, Any] = {}  # suggested file name -> Playwright Download
        self._playwright: Any = None
        self._playwright = _SharedPlaywright.acquire()
        try:
            self._launch(flags)
            return dict(self._call([init])[0])
        except BaseException:
            self.release()
            raise

    def require_storage(self, storage: str) -> str:
        """As :meth:`BaseRuntime.require_storage`: "float16" needs R16F render targets, which the
        page checked at start (EXT_color_buffer_float, or EXT_color_buffer_half_float)."""
        check_storage(storage)
        if storage == "float16" and not self._device.get("half_float_render"):
            raise GLUnavailableError(
                f"storage='float16': this WebGL2 context ({self._device.get('webgl_renderer')}) cannot render "
                f"to half-float (R16F/RGBA16F) textures (neither EXT_color_buffer_float nor "
                f"EXT_color_buffer_half_float makes them complete framebuffers); use storage='float32'")
        return storage

    def _launch(self, flags: List[str]) -> None:
        from playwright.sync_api import Error as PlaywrightError

        try:
            self._browser = self._playwright.chromium.launch(
                executable_path=self.executable, headless=self.headless, args=flags,
                ignore_default_args=list(IGNORED_DEFAULT_FLAGS))
        except PlaywrightError as exc:
            raise GLUnavailableError(f"gpuconv's browser runtime could not start {self.executable} "
                                     f"({self.gl}): {str(exc).strip().splitlines()[0]}. {CHROMIUM_HINT}") from exc
        self.browser_version = str(self._browser.version)
        self._browser.on("disconnected", lambda *_: self._mark_closed(_CHROMIUM_CLOSED))
        self._server = PageServer()
        # Large read-backs arrive as downloads (browser_transfer.js): kept by name until read.
        self._page = self._browser.new_page(accept_downloads=True)
        self._page.on("download", lambda download: self._downloads.__setitem__(download.suggested_filename, download))
        self._page.on("crash", lambda *_: self._mark_closed("page crashed"))
        self._page.on("close", lambda *_: self._mark_closed("page was closed"))
        self._load_page("<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>gpuconv</title></head><body>"
                        "<script>" + _TRANSFER_SCRIPT.read_text(encoding="utf-8") + "</script>"
                        "<script>" + self.PAGE_SCRIPT.read_text(encoding="utf-8") + "</script></body></html>")

    def _load_page(self, html: str) -> None:
        assert self._server is not None
        self._server.page = html
        self._page.goto(self._server.page_url)

    def _payload(self, data: bytes) -> Dict[str, str]:
        """An upload's bytes in its op: through the server when large, else inline base64."""
        if len(data) >= BLOB_BYTES and self._server is not None:
            return {"blob": self._server.put(data)}
        return {"data": base64.b64encode(data).decode("ascii")}

    def _mark_closed(self, why: str) -> None:
        if self._closed is None:
            self._closed = why

    # -- the one round trip ------------------------------------------------------
    def _check_usable(self) -> None:
        if self._released:
            raise RuntimeError("this gpuconv BrowserRuntime has been released; create a new one "
                               "(gpuconv.BrowserRuntime())")
        if threading.get_ident() != self.thread_id:
            raise RuntimeError(
                "this gpuconv BrowserRuntime belongs to the thread that created it (Playwright's sync API "
                "is bound to one thread); create a BrowserRuntime in this thread or call from the creating thread")
        if self._closed is not None:
            raise self._closed_error()

    def _closed_error(self) -> BrowserClosedError:
        why = self._closed
        if self._browser is not None and not self._browser.is_connected():
            why = _CHROMIUM_CLOSED  # the page closes with it, and may say so first
        return BrowserClosedError(f"the browser runtime's {why}; create a new gpuconv.BrowserRuntime()")

    def _call(self, ops: List[Dict[str, Any]], free: Sequence[int] = ()) -> List[Any]:
        """Run ``ops`` in the page in one round trip (after deleting what was dropped); delete
        the textures ``free`` even if an op fails.  Returns each op's result."""
        from playwright.sync_api import Error as PlaywrightError

        self._check_usable()
        message: Dict[str, Any] = {"ops": ops, "free": list(free), "blob_bytes": BLOB_BYTES}
        if self._drop_programs or self._drop_textures:
            message["drop"] = {"programs": self._drop_programs, "textures": self._drop_textures}
            self._drop_programs, self._drop_textures = [], []
        try:
            self._delete_stray_downloads()
            answer = self._page.evaluate("(message) => gpuconv.call(message)", message)
            if answer.get("ok"):
                files: Dict[str, bytes] = {}
                answer["results"] = [self._fetched(result, files) for result in answer["results"]]
        except PlaywrightError as exc:
            if self._closed is None and (not self._browser.is_connected() or self._page.is_closed()
                                         or "crash" in str(exc).lower() or "closed" in str(exc).lower()):
                self._mark_closed(f"{_CHROMIUM_CLOSED}: {str(exc).strip().splitlines()[0]}")
            if self._closed is not None:
                raise self._closed_error() from exc
            raise RuntimeError(f"gpuconv's browser page failed: {exc}") from exc
        finally:
            if self._server is not None:
                self._server.clear()  # what a failed call left unfetched
        if not answer.get("ok"):
            raise self._page_failure(answer)
        return list(answer["results"])

    def _fetched(self, result: Any, files: Dict[str, bytes]) -> Any:
        """A large read-back (``{"download": name, "offset", "length"}``: its slice of the call's
        one downloaded file; ``{"download": None, ..., "inline": base64}`` past Chromium's limit of
        downloads a second) as its bytes; other results as they are."""
        if not (isinstance(result, dict) and {"download", "offset", "length"} <= set(result)):
            return result
        if result["download"] is None:
            return base64.b64decode(result["inline"])
        name = str(result["download"])
        if name not in files:
            files[name] = self._download(name)
        start = int(result["offset"])
        return files[name][start:start + int(result["length"])]

    def _delete_stray_downloads(self) -> None:
        """Files of calls that answered without reading them (a context lost after the download
        began): a call reads its own before it returns, so any left now are strays."""
        for download in self._downloads.values():
            download.delete()
        self._downloads.clear()

    def _download(self, name: str) -> bytes:
        """The bytes of the call's download ``name``, once Chromium has saved it (then deleted)."""
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        if name not in self._downloads:
            try:
                self._page.wait_for_event("download", predicate=lambda download: download.suggested_filename == name,
                                          timeout=DOWNLOAD_TIMEOUT_MS)
            except PlaywrightTimeout as exc:
                raise RuntimeError(f"gpuconv's browser page handed back a read-back as the download {name!r}, which "
                                   f"Chromium never started in {DOWNLOAD_TIMEOUT_MS / 1000:.0f} s (are downloads "
                                   "blocked by a policy of this Chromium?)") from exc
        download = self._downloads.pop(name)
        try:
            path = download.path()  # waits for the file
            with open(path, "rb") as file:
                return file.read()
        except Exception as exc:
            raise RuntimeError(f"gpuconv's browser page handed back a read-back as the download {name!r}, which "
                               f"Chromium did not save ({download.failure() or exc})") from exc
        finally:
            download.delete()

    def _page_failure(self, answer: Dict[str, Any]) -> BaseException:
        """The exception for a call the page answered with ``{ok: false, kind, message, ...}``."""
        kind = answer.get("kind")
        if kind == "lost":
            self._mark_closed("WebGL context was lost (did Chromium's GPU process crash?)")
            return self._closed_error()
        if kind == "unavailable":
            return GLUnavailableError(f"gpuconv's browser runtime ({self.gl}): {answer.get('message')}; "
                                      f"{_GL_HINTS[self.gl]}")
        if kind == "compile":
            return RuntimeError(f"{answer.get('name')}: the GLSL program did not compile in the browser "
                                f"({self.gl}): {answer.get('message')}\n{answer.get('log', '')}")
        return RuntimeError(f"gpuconv's browser page failed: {answer.get('message')}")

    # -- facts -----------------------------------------------------------------
    def info(self) -> Dict[str, object]:
        """The browser, its WebGL renderer and version, the device's limits and those the programs use."""
        device = self._call([{"op": "describe"}])[0]
        return {
            "runtime": self.kind,
            "renderer": device["renderer"],
            "vendor": device["vendor"],
            "version": device["version"],
            "glsl": device["shading_language_version"],  # SHADING_LANGUAGE_VERSION
            "backend": self.gl,
            "browser": "chromium",
            "browser_version": self.browser_version,
            "executable": self.executable,
            "headless": self.headless,
            "webgl_renderer": device["webgl_renderer"],
            "webgl_vendor": device["webgl_vendor"],
            "max_texture_size": self.device_max_texture_size,
            "layout_texture_size": self.max_texture_size,
            "max_draw_buffers": self.device_max_draw_buffers,
            "program_draw_buffers": self.max_draw_buffers,
            "max_color_attachments": int(device["max_color_attachments"]),
            "max_texture_image_units": int(device["max_texture_image_units"]),
            "extensions": dict(device["extensions"]),
            "cached_programs": len(self._programs),
            "page_programs": int(device["programs"]),
            "page_textures": int(device["textures"]),  # live: made and not freed
            "page_pooled_textures": int(device.get("pooled_textures", 0)),  # freed, kept for reuse
            "page_pooled_bytes": int(device.get("pooled_bytes", 0)),
            "pool_bytes_limit": int(device.get("pool_bytes_limit", self.POOL_BYTES)),
            "max_loop_iterations": self.max_loop_iterations,
            "half_float_render": bool(device.get("half_float_render")),
            "storage": self.storage,
        }

    # -- ops the page runs ---------------------------------------------------------
    def _new_texture(self, layout: Layout) -> BrowserTexture:
        return BrowserTexture(next(self._ids), layout.cols, layout.rows, layout.components, self)

    def _upload_op(self, array: np.ndarray, layout: InputLayout, storage: str = "float32"
                   ) -> Tuple[BrowserTexture, Dict[str, Any]]:
        if tuple(array.shape) != tuple(layout.shape):
            raise ValueError(f"array of shape {array.shape} does not match layout {layout.shape}")
        if layout.components not in (1, 4):
            raise ValueError(f"textures hold 1 or 4 components, not {layout.components}")
        texture = self._new_texture(layout)
        return texture, {"op": "upload", "id": texture.id, "cols": layout.cols, "rows": layout.rows,
                         "components": layout.components, "storage": check_storage(storage),
                         **self._payload(_texel_bytes(layout.pack(array), storage))}

    def _program_ref(self, spec: Drawable, pending: List[Hashable]) -> Dict[str, Any]:
        """The page's program for ``spec``: its id, with the sources when the page has not compiled it."""
        key = spec.source_key()
        program_id = self._programs.get(key)
        if program_id is not None:
            self._programs.move_to_end(key)
            return {"id": program_id}
        program_id = next(self._ids)
        self._programs[key] = program_id
        self.compiled_programs += 1
        pending.append(key)
        while len(self._programs) > self.PROGRAM_CACHE_SIZE:
            _, old = self._programs.popitem(last=False)
            self._drop_programs.append(old)
        return {"id": program_id, "name": spec.name, "source": self.target.source(spec),
                "samplers": list(spec.variable_names)}

    def _input_ids(self, spec: Any, inputs: Mapping[str, Any], kind: str) -> List[int]:
        """The page's ids of a draw's inputs, in the program's order; each must be this runtime's."""
        ids = []
        for name in spec.variable_names:
            texture = inputs[name]
            if not isinstance(texture, BrowserTexture) or texture.runtime is not self:
                raise TypeError(f"input {name!r} of {spec.name} is not a {kind} of this BrowserRuntime")
            ids.append(texture.id)
        return ids

    def _draw_op(self, spec: Drawable, inputs: Mapping[str, Any], pending: List[Hashable],
                 storage: str = "float32") -> Tuple[List[BrowserTexture], Dict[str, Any]]:
        self._check_draw(spec, inputs, self.device_max_draw_buffers)
        ids = self._input_ids(spec, inputs, "texture")
        outputs = [self._new_texture(layout) for layout in spec.output_layouts]
        op = {"op": "draw", "program": self._program_ref(spec, pending), "inputs": ids,
              "uniforms": {name: _uniform_value(value) for name, value in spec.uniforms.items()},
              "outputs": [{"id": t.id, "cols": t.cols, "rows": t.rows, "components": t.components,
                           "storage": check_storage(storage)} for t in outputs]}
        return outputs, op

    def _call_compiling(self, ops: List[Dict[str, Any]], pending: List[Hashable], free: Sequence[int] = ()
                        ) -> List[Any]:
        """:meth:`_call` for ops that may compile programs: a failed call forgets them."""
        try:
            return self._call(ops, free)
        except BaseException:
            for key in pending:
                program_id = self._programs.pop(key, None)
                if program_id is not None:
                    self._drop_programs.append(program_id)
            raise

    # -- the runtime interface -----------------------------------------------------
    def upload(self, array: np.ndarray, layout: InputLayout, storage: str = "float32") -> BrowserTexture:
        self._check_usable()
        self.require_storage(storage)
        texture, op = self._upload_op(array, layout, storage)
        self._call([op])
        self._count_made([texture], [layout], storage)
        return texture

    def compile(self, programs: Iterable[Drawable]) -> int:
        """Compile the programs the page lacks in one round trip: every source is handed to
        WebGL before any link status is asked, and with ``KHR_parallel_shader_compile`` the page
        polls for completion instead of waiting on each link, so Chromium may compile them in
        parallel.  :attr:`last_compile_parallel` says whether it could."""
        self._check_usable()
        pending: List[Hashable] = []
        refs = [ref for ref in (self._program_ref(spec, pending) for spec in programs) if "source" in ref]
        if not refs:
            return 0
        (answer,) = self._call_compiling([{"op": "compile", "programs": refs}], pending)
        self.last_compile_parallel = bool(answer["parallel"])
        return len(refs)

    def draw(self, program: Drawable, inputs: Mapping[str, Any], storage: str = "float32") -> List[BrowserTexture]:
        self._check_usable()
        self.require_storage(storage)
        pending: List[Hashable] = []
        outputs, op = self._draw_op(program, inputs, pending, storage)
        try:
            self._call_compiling([op], pending)
        except BaseException:
            self.free(outputs)  # the page may have made some of them before it failed
            raise
        self._count_made(outputs, program.output_layouts, storage)
        return outputs

    def read(self, texture: Any, layout: Layout) -> np.ndarray:
        self._check_usable()
        if not isinstance(texture, BrowserTexture) or texture.runtime is not self:
            raise TypeError("not a texture of this BrowserRuntime")
        return _decode(self._call([{"op": "read", "id": texture.id}])[0], layout)

    def free(self, textures: Iterable[Any]) -> None:
        """Forget the textures; the page deletes them at the start of the next call."""
        if self._released:
            return
        textures = list(textures)
        self._drop_textures.extend(texture.id for texture in textures)
        self._count_freed(textures)

    def finish(self) -> None:
        self._call([{"op": "finish"}])

    def _record_chain(self, plan: "Plan") -> Tuple[List[Dict[str, Any]], List[BrowserTexture], List[Hashable],
                                                     List[BrowserTexture],
                                                     List[Tuple[List[BrowserTexture], Tuple[Layout, ...]]]]:
        """Walk ``plan`` (:meth:`Plan.chain`) recording the page's uploads and draws instead of
        making them: ``(ops, textures made, programs to compile, the last outputs, each draw's
        outputs and layouts)``, for one round trip."""
        ops: List[Dict[str, Any]] = []
        made: List[BrowserTexture] = []
        pending: List[Hashable] = []
        drawn: List[Tuple[List[BrowserTexture], Tuple[Layout, ...]]] = []

        def upload(array: np.ndarray, layout: InputLayout, storage: str = "float32") -> BrowserTexture:
            texture, op = self._upload_op(array, layout, storage)
            ops.append(op)
            return texture

        def draw(spec: Drawable, inputs: Dict[str, BrowserTexture], storage: str = "float32") -> List[BrowserTexture]:
            outputs, op = self._draw_op(spec, inputs, pending, storage)
            ops.append(op)
            drawn.append((outputs, spec.output_layouts))
            return outputs

        outputs = plan.chain(upload, draw, made)
        return ops, made, pending, outputs, drawn

    def run(self, plan: "Plan") -> np.ndarray:
        """The whole plan in one round trip: upload every array, draw each program (each after
        the first reads the previous one's outputs, as :meth:`Plan.execute` chains them), read
        the last program's outputs back and delete every texture."""
        self._check_usable()
        self.require_storage(plan.storage)
        ops, made, pending, previous, _ = self._record_chain(plan)
        last = plan.spec
        reads = [{"op": "read", "id": texture.id} for texture in previous]
        results = self._call_compiling(ops + reads, pending, free=[texture.id for texture in made])[len(ops):]
        parts = [_decode(text, layout) for text, layout in zip(results, last.output_layouts)]
        return last.assemble(parts).reshape(plan.out_shape)

    def run_to_tensor(self, plan: "Plan") -> Any:
        """The whole plan in one round trip (conversions of Tensor inputs included), its last
        program's outputs kept in the page as a :class:`~gpuconv.Tensor`."""
        from ..tensor import Tensor, forget_conversions, tensors_in

        self._check_usable()
        ops, made, pending, outputs, drawn = self._record_chain(plan)
        kept = {id(texture) for texture in outputs}
        freed = [texture for texture in made if id(texture) not in kept]
        try:
            self._call_compiling(ops, pending, free=[texture.id for texture in freed])
        except BaseException:  # nothing it drew exists: neither the outputs nor a kept conversion
            lost = [texture for textures, _ in drawn for texture in textures]
            self._drop_textures.extend(texture.id for texture in lost)
            forget_conversions(tensors_in(plan.steps), lost)
            raise
        for textures, layouts in drawn:  # the outputs, and conversions an uploaded Tensor keeps
            self._count_made(textures, layouts, plan.storage)
        self._count_freed(freed)
        return Tensor.from_program(self, outputs, plan.spec, plan.out_shape)

    def memory(self) -> Dict[str, int]:
        """As :meth:`BaseRuntime.memory`, with ``page_textures``: the live textures the page holds
        (after taking the freed ones back).  The freed ones the page keeps for reuse (at most
        :attr:`POOL_BYTES`) are not gpuconv's to free: :meth:`info` reports them
        (``page_pooled_textures``, ``page_pooled_bytes``)."""
        facts = super().memory()
        facts["page_textures"] = int(self._call([{"op": "describe"}])[0]["textures"])
        return facts

    def release(self) -> None:
        """Close the page, the browser and (when no other runtime of this thread uses it) Playwright.
        Safe to call twice."""
        if self._released:
            return
        self._released = True
        self._programs.clear()
        self._downloads.clear()  # Playwright deletes their files with the browser
        if threading.get_ident() != self.thread_id:
            return  # Playwright's objects belong to the creating thread; the browser ends with its process
        try:
            if self._browser is not None and self._browser.is_connected():
                try:  # the page's texture pool (it would go with the page anyway)
                    self._page.evaluate("(message) => gpuconv.call(message)", {"ops": [{"op": "empty_pool"}]})
                except Exception:
                    pass
                self._browser.close()
        except Exception:  # a browser that crashed cannot be closed
            pass
        finally:
            self._browser = self._page = None
            if self._server is not None:
                self._server.close()
                self._server = None
            if self._playwright is not None:
                self._playwright = None
                _SharedPlaywright.release()


# -- the WebGPU page: BrowserRuntime(api="webgpu") ----------------------------------------
# WebGPU in headless Chromium: the WebGPU target's WGSL compute programs as a browser runs them.
#
# ``gpuconv.BrowserRuntime(api="webgpu")`` is this runtime.  It is the browser runtime
# (:mod:`.browser`) with another page (``browser_webgpu_page.js``): the same shared Playwright,
# the same one-round-trip plans, program cache, compile batching, handles and memory counts;
# only the ops it sends differ (buffers instead of textures, a dispatch grid instead of
# uniforms).  ``gl`` picks Chromium's WebGPU adapter:
#
# * ``"angle-egl"``: Dawn's OpenGL ES backend on ANGLE over the system's EGL (Mesa's llvmpipe
#   on a machine without a GPU): a compatibility-mode adapter, without ``timestamp-query``;
# * ``"swiftshader"``: Dawn's Vulkan backend on SwiftShader, Chromium's fallback adapter
#   (core features, ``timestamp-query``; slower).
#
# WebGPU needs a secure context: the page is served from ``http://127.0.0.1:<port>/`` by the
# runtime's own server (:mod:`.page_server`), as the WebGL2 page is.  A WebGPU error (validation, out of
# memory, a pipeline that does not compile) is a :class:`~gpuconv.runtimes.webgpu.WebGPUError`
# naming the program; a lost device one too, after which the runtime refuses every call.


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
                         **self._payload(_texel_bytes(layout.pack(array), layout.dtype))}

    def _draw_op(self, spec: Any, inputs: Mapping[str, Any], pending: List[Hashable],
                 storage: str = "float32") -> Tuple[List[BrowserTexture], Dict[str, Any]]:
        self._check_draw(spec, inputs, 1)
        spec = _stored_as(spec, storage)
        spec.check(self.limits)  # refused here, naming the limit, before the page is asked
        ids = self._input_ids(spec, inputs, "buffer")
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
