"""TF.js 4.22's WebGL and WebGPU backends in headless Chromium, for ``benchmarks/bench.py --tfjs``
and ``--tfjs-webgpu``.

:class:`TfjsBench` launches Chromium exactly as ``gpuconv.BrowserRuntime`` does for a ``gl``
choice (``gpuconv.runtimes.browser.launch_flags``: ``angle-egl`` is ANGLE over the system's
EGL, Mesa's llvmpipe here), opens one page per TF.js path (:data:`PATHS`: its defaults, and
the flags that make it run its direct programs), serves the page and TF.js's bundles from
``node_modules`` through Playwright's request routing (every other request is refused:
nothing leaves the machine) and times each layer inside the page (``page.js``).

``TfjsBench(api="webgpu")`` runs TF.js's WebGPU backend instead (``page_webgpu.js``, one page:
:data:`WEBGPU_PATHS`), in Chromium launched with :data:`WEBGPU_GL`'s flags for the ``gl``
choice, on the adapter those options ask for (``angle-egl``: a compatibility-mode adapter on
ANGLE over the system's EGL, which TF.js's own adapter request never gets; ``swiftshader``:
SwiftShader, what TF.js's own request gets).

Playwright's sync API allows one driver per thread, and a ``BrowserRuntime`` holds the
calling thread's, so the session runs in a thread of its own; its methods block until
that thread has answered.  The npm packages come from ``benchmarks/tfjs/setup.sh``.
"""

from __future__ import annotations

import base64
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

HERE = Path(__file__).resolve().parent
VERSION = "4.22.0"

#: What the pages load, by URL path: the unminified ES2017 bundles (program class names intact).
BUNDLES = {
    "/tf-core.js": "@tensorflow/tfjs-core/dist/tf-core.es2017.js",
    "/tf-backend-webgl.js": "@tensorflow/tfjs-backend-webgl/dist/tf-backend-webgl.es2017.js",
    "/tf-backend-webgpu.js": "@tensorflow/tfjs-backend-webgpu/dist/tf-backend-webgpu.es2017.js",
}
#: The bundles each API's page loads, in order, and its own script.
PAGES = {
    "webgl": (("/tf-core.js", "/tf-backend-webgl.js"), "page.js"),
    "webgpu": (("/tf-core.js", "/tf-backend-webgpu.js"), "page_webgpu.js"),
}

#: TF.js's flags per path, set before its WebGL backend starts.
PATHS: Dict[str, Dict[str, Any]] = {
    # WEBGL_PACK=true: conv2d is Im2ColPackedProgram + MatMulPackedProgram (WEBGL_CONV_IM2COL),
    # depthwise DepthwiseConvPacked2DProgram where the multiplier is 1 and the width stride <= 2.
    "default": {},
    # Conv2DProgram and DepthwiseConv2DProgram, unpacked (a 1x1, stride-1 conv2d stays a packed
    # matmul in every path, and so does a separable convolution's pointwise step).
    "direct": {"WEBGL_CONV_IM2COL": False, "WEBGL_PACK_DEPTHWISECONV": False},
}

#: TF.js's WebGPU backend: its defaults (conv2d is Conv2DMMProgram, a 1x1 one MatMulPackedProgram,
#: depthwise DepthwiseConv2DVec4Program where the multiplier is 1 and channels come in fours).
WEBGPU_PATHS: Dict[str, Dict[str, Any]] = {"webgpu": {}}

#: Chromium's WebGPU flags for each ``gl`` choice, and the options the page asks for its adapter
#: with (None: TF.js's own request).  ``angle-egl``: Dawn's OpenGL ES backend on ANGLE over EGL,
#: offered to compatibility-mode requests alone; ``swiftshader``: Dawn's Vulkan backend on
#: SwiftShader (a fallback adapter), which TF.js's own request gets.
WEBGPU_GL: Dict[str, Tuple[Tuple[str, ...], Optional[Dict[str, Any]]]] = {
    "angle-egl": (("--enable-unsafe-webgpu", "--enable-webgpu-developer-features", "--use-webgpu-adapter=opengles",
                   "--use-gl=angle", "--use-angle=gl-egl", "--ignore-gpu-blocklist"),
                  {"featureLevel": "compatibility"}),
    "swiftshader": (("--enable-unsafe-webgpu", "--enable-webgpu-developer-features"), None),
}

ORIGIN = "http://localhost"
#: Headers that make a page cross-origin isolated, where Chromium times performance.now() to 5 us
#: (100 us otherwise: too coarse for a layer that takes 0.1 ms).
ISOLATED = {"Cross-Origin-Opener-Policy": "same-origin", "Cross-Origin-Embedder-Policy": "require-corp"}


def _index(api: str) -> str:
    bundles, script = PAGES[api]
    tags = "".join(f"<script src=\"{src}\"></script>" for src in bundles + ("/" + script,))
    return (f"<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>gpuconv bench: TF.js {api}</title>"
            f"{tags}</head><body></body></html>")

SETUP_HINT = "run 'bash benchmarks/tfjs/setup.sh' (npm ci: TF.js 4.22 from the npm registry; needs node and npm)"


def missing(directory: Path = HERE, api: str = "webgl") -> Optional[str]:
    """Why TF.js's ``api`` backend ("webgl" or "webgpu") cannot be loaded from ``directory``
    (None when its bundles are there)."""
    bundles = [BUNDLES[src] for src in PAGES[api][0]]
    absent = [name for name in bundles if not (directory / "node_modules" / name).is_file()]
    if not absent:
        return None
    option, packages = ("--tfjs", "@tensorflow/tfjs-core, @tensorflow/tfjs-backend-webgl") if api == "webgl" else \
        ("--tfjs-webgpu", "@tensorflow/tfjs-core, @tensorflow/tfjs-backend-webgpu")
    return (f"{option} needs TF.js {VERSION}'s npm packages ({packages}) in {directory / 'node_modules'}, "
            f"and {absent[0]} is not there: {SETUP_HINT}")


def _encode(array: np.ndarray) -> Dict[str, Any]:
    data = np.ascontiguousarray(array, dtype="<f4")
    return {"shape": list(array.shape), "data": base64.b64encode(data.tobytes()).decode("ascii")}


def _pair(value: Any) -> List[int]:
    if isinstance(value, int):
        return [value, value]
    values = [int(v) for v in value]
    if len(values) == 4:  # TF's [1, h, w, 1]
        values = values[1:3]
    if len(values) != 2:
        raise ValueError(f"no TF.js form for {value!r}")
    return values


def tfjs_arguments(kwargs: Mapping[str, Any]) -> Dict[str, Any]:
    """gpuconv's keyword arguments of a layer as TF.js's (strides, pad, dilations)."""
    unknown = set(kwargs) - {"padding", "strides", "dilations"}
    if unknown:
        raise ValueError(f"the TF.js benchmark maps padding, strides and dilations only, not {sorted(unknown)}")
    padding = kwargs.get("padding", "VALID")
    if not isinstance(padding, str):
        raise ValueError(f"the TF.js benchmark maps 'SAME' and 'VALID' padding only, not {padding!r}")
    return {"pad": padding.lower(), "strides": _pair(kwargs.get("strides", 1)),
            "dilations": _pair(kwargs.get("dilations", 1))}


class TfjsBench:
    """TF.js in one headless Chromium, one page per path; see the module's docstring.

    ``api``: TF.js's "webgl" backend (paths: :data:`PATHS`) or its "webgpu" one
    (:data:`WEBGPU_PATHS`).  ``info``: per path, TF.js's version, backend, renderer (the WebGL
    renderer, or the WebGPU adapter's description) and flags as the page reports them.
    """

    def __init__(self, gl: str = "angle-egl", executable: Optional[str] = None,
                 paths: Optional[Sequence[str]] = None, directory: Path = HERE, api: str = "webgl"):
        if api not in PAGES:
            raise ValueError(f"api must be one of {', '.join(map(repr, PAGES))}, got {api!r}")
        if api == "webgpu" and gl not in WEBGPU_GL:
            raise ValueError(f"gl must be one of {', '.join(map(repr, WEBGPU_GL))} for TF.js's WebGPU backend, "
                             f"got {gl!r}")
        problem = missing(directory, api)
        if problem:
            raise RuntimeError(problem)
        self.gl = gl
        self.api = api
        self.flags = PATHS if api == "webgl" else WEBGPU_PATHS
        self.paths = list(paths if paths is not None else self.flags)
        self.directory = directory
        self.refused: List[str] = []  # URLs the pages asked for that are not served
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="tfjs-bench")
        self._playwright: Any = None
        self._browser: Any = None
        self._pages: Dict[str, Any] = {}
        try:
            self.info: Dict[str, Dict[str, Any]] = self._in_thread(self._start, executable)
        except BaseException:
            self.close()
            raise

    def _in_thread(self, function, *args):
        return self._executor.submit(function, *args).result()

    # -- in the session's thread -------------------------------------------------------
    def _serve(self, route) -> None:
        path = route.request.url[len(ORIGIN):].split("?")[0] if route.request.url.startswith(ORIGIN + "/") else None
        script = PAGES[self.api][1]
        if path == "/index.html":  # cross-origin isolated, as gpuconv's pages: performance.now() to 5 us, not 100
            route.fulfill(status=200, content_type="text/html", body=_index(self.api), headers=ISOLATED)
        elif path == "/" + script:
            route.fulfill(status=200, content_type="text/javascript", path=str(HERE / script))
        elif path in BUNDLES:
            route.fulfill(status=200, content_type="text/javascript",
                          path=str(self.directory / "node_modules" / BUNDLES[path]))
        else:
            self.refused.append(route.request.url)
            route.abort()

    def _start(self, executable: Optional[str]) -> Dict[str, Dict[str, Any]]:
        from playwright.sync_api import sync_playwright

        from gpuconv.runtimes.browser import BASE_FLAGS, IGNORED_DEFAULT_FLAGS, find_chromium, launch_flags

        if self.api == "webgl":
            flags, adapter = launch_flags(self.gl), None
        else:
            extra, adapter = WEBGPU_GL[self.gl]
            flags = list(BASE_FLAGS) + list(extra)
        self._playwright = sync_playwright().start()
        self._browser = self._playwright.chromium.launch(
            executable_path=find_chromium(executable), headless=True, args=flags,
            ignore_default_args=list(IGNORED_DEFAULT_FLAGS))
        info = {}
        for name in self.paths:
            page = self._browser.new_context().new_page()
            errors: List[str] = []
            page.on("pageerror", lambda error, errors=errors: errors.append(str(error)))
            page.route("**/*", self._serve)
            page.goto(f"{ORIGIN}/index.html")
            if errors or not page.evaluate("typeof window.tfjsBench === 'object' && typeof tf === 'object'"):
                raise RuntimeError(f"the TF.js page did not load: {'; '.join(errors) or 'no tfjsBench'}"
                                   + (f" (refused {self.refused})" if self.refused else ""))
            info[name] = page.evaluate("([flags, adapter]) => tfjsBench.init(flags, adapter)",
                                       [self.flags[name], adapter])
            info[name]["browser_version"] = self._browser.version
            self._pages[name] = page
        return info

    def _time(self, name: str, spec: Dict[str, Any], repeat: int, warmup: int) -> Dict[str, Dict[str, Any]]:
        results = {}
        for path, page in self._pages.items():
            page.evaluate("([name, spec]) => tfjsBench.load(name, spec)", [name, spec])
            try:
                results[path] = page.evaluate("([name, repeat, warmup]) => tfjsBench.time(name, repeat, warmup)",
                                              [name, repeat, warmup])
            finally:
                page.evaluate("name => tfjsBench.unload(name)", name)
        return results

    def _stop(self) -> None:
        try:
            if self._browser is not None:
                self._browser.close()
        finally:
            self._browser = None
            if self._playwright is not None:
                self._playwright.stop()
                self._playwright = None

    # -- the caller's side -------------------------------------------------------------
    def time_layer(self, name: str, op: str, x: np.ndarray, w: np.ndarray, pw: Optional[np.ndarray],
                   kwargs: Mapping[str, Any], repeat: int, warmup: int = 5) -> Dict[str, Dict[str, Any]]:
        """Per path: ``synced`` and ``downloaded`` (seconds of each timed run: op + 1-texel read
        on WebGL, op + ``await device.queue.onSubmittedWorkDone()`` on WebGPU; op + ``await
        y.data()``), ``programs`` (TF.js's program classes, in order) and ``output``
        (the first call's result, float32, shaped as TF.js gives it)."""
        spec = {"op": op, "x": _encode(x), "w": _encode(w), "pw": _encode(pw) if pw is not None else None,
                **tfjs_arguments(kwargs)}
        results = self._in_thread(self._time, name, spec, repeat, warmup)
        for result in results.values():
            data = np.frombuffer(base64.b64decode(result.pop("output")), dtype="<f4")
            result["output"] = data.astype(np.float32).reshape(result["shape"])
        return results

    def close(self) -> None:
        """Close Chromium and the session's thread; safe to call twice."""
        if self._executor is None:
            return
        try:
            self._in_thread(self._stop)
        finally:
            self._executor.shutdown()
            self._executor = None

    def __enter__(self) -> "TfjsBench":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
