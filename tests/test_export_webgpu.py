"""gpuconv export --target webgpu: a kernel's WGSL compute programs as a dependency-free ES module
(run(device, inputs) -> Promise<Float32Array>) and as a self-checking HTML page.

The modules run in the session's headless Chromium with WebGPU (conftest.py's browser_webgpu:
Chromium started for ANGLE over Mesa's EGL), on the compatibility-mode adapter on ANGLE
(llvmpipe) and, for one case, on SwiftShader (the fallback adapter a core request gets in the
same browser), against the float64 oracle.  The pages are served from http://127.0.0.1/ by
Playwright's routing (WebGPU needs a secure context) and must say PASS.  A device whose limits
fall short gets an Error naming the limit; the command line writes both files.
"""

from __future__ import annotations

import base64
import re
from typing import Any, Dict, NamedTuple, Tuple

import numpy as np
import pytest

import gpuconv
from gpuconv import cli, registry
from gpuconv.export import build
from gpuconv.webgpu.limits import WebGPULimits

TOLERANCE = 1e-5
ORIGIN = "http://127.0.0.1/gpuconv-export/"
HELPER_URL = ORIGIN + "helpers.html"

# Helpers in a page of the session's WebGPU Chromium: one device per adapter kind (an adapter
# gives one device), requested with the adapter's own limits; modules imported from blob: URLs;
# float32 arrays crossing as base64.
HELPERS = """() => {
  window.T = {
    devices: {},
    async device(kind) {
      if (!this.devices[kind]) {
        const options = kind === "swiftshader" ? { forceFallbackAdapter: true } : { featureLevel: "compatibility" };
        const adapter = await navigator.gpu.requestAdapter(options);
        if (!adapter) throw new Error("no WebGPU adapter for " + JSON.stringify(options));
        const requiredLimits = {};
        for (const name in adapter.limits) {
          const value = adapter.limits[name];
          if (typeof value === "number" && name.startsWith("max")) requiredLimits[name] = value;
        }
        const device = await adapter.requestDevice({ requiredLimits });
        const info = adapter.info || {};
        this.devices[kind] = { device, adapter: { vendor: info.vendor, architecture: info.architecture,
                                                  description: info.description,
                                                  isFallbackAdapter: !!info.isFallbackAdapter } };
      }
      return this.devices[kind];
    },
    async load(source) {
      const url = URL.createObjectURL(new Blob([source], { type: "text/javascript" }));
      try { return await import(url); } finally { URL.revokeObjectURL(url); }
    },
    decode(text) {
      const binary = atob(text);
      const bytes = new Uint8Array(binary.length);
      for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
      return new Float32Array(bytes.buffer);
    },
    encode(floats) {
      const bytes = new Uint8Array(floats.buffer, floats.byteOffset, floats.byteLength);
      let binary = "";
      for (let i = 0; i < bytes.length; i += 0x8000) {
        binary += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
      }
      return btoa(binary);
    },
    inputs(encoded) {
      const arrays = {};
      for (const [name, text] of Object.entries(encoded)) arrays[name] = this.decode(text);
      return arrays;
    },
    // A device that reports smaller limits (the others, and every method, are the device's).
    shrunk(device, smaller) {
      const limits = new Proxy(device.limits, {
        get(target, property) { return property in smaller ? smaller[property] : target[property]; },
      });
      return new Proxy(device, {
        get(target, property) {
          if (property === "limits") return limits;
          const value = target[property];
          return typeof value === "function" ? value.bind(target) : value;
        },
      });
    },
    // A device that counts the pipelines and buffers made and the buffers destroyed.
    counting(device) {
      const counts = { createComputePipelineAsync: 0, createBuffer: 0, destroy: 0 };
      const proxy = new Proxy(device, {
        get(target, property) {
          const value = target[property];
          if (typeof value !== "function") return value;
          if (property === "createComputePipelineAsync") {
            return (...args) => { counts.createComputePipelineAsync++; return value.apply(target, args); };
          }
          if (property === "createBuffer") {
            return (...args) => {
              counts.createBuffer++;
              const buffer = value.apply(target, args);
              const destroy = buffer.destroy.bind(buffer);
              buffer.destroy = () => { counts.destroy++; destroy(); };
              return buffer;
            };
          }
          return value.bind(target);
        },
      });
      return [proxy, counts];
    },
  };
}"""


def _serve(tab, pages: Dict[str, str]) -> None:
    """Answer http://127.0.0.1/gpuconv-export/<name> with pages[name] (no server: Playwright routes it)."""
    def serve(route: Any) -> None:
        name = route.request.url.split("?", 1)[0][len(ORIGIN):]
        if name in pages:
            route.fulfill(status=200, content_type="text/html; charset=utf-8", body=pages[name])
        else:
            route.fulfill(status=404, body="")

    tab.route(ORIGIN + "**", serve)


@pytest.fixture(scope="module")
def chromium(browser_webgpu):
    """The session's WebGPU Chromium (ANGLE over EGL; SwiftShader for a core request)."""
    return browser_webgpu._browser


@pytest.fixture(scope="module")
def page(chromium):
    tab = chromium.new_page()
    _serve(tab, {"helpers.html": "<!DOCTYPE html><html><head><meta charset='utf-8'><title>export tests</title>"
                                 "</head><body></body></html>"})
    tab.goto(HELPER_URL)
    tab.evaluate(HELPERS)
    yield tab
    tab.close()


@pytest.fixture(scope="module")
def page_tab(chromium):
    """A second page, into which the exported pages are loaded (from http://127.0.0.1/)."""
    pages: Dict[str, str] = {}
    tab = chromium.new_page()
    _serve(tab, pages)
    tab.pages = pages  # type: ignore[attr-defined]
    yield tab
    tab.close()


def _b64(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array, "<f4").tobytes()).decode("ascii")


def run_module(page, text: str, arrays: Dict[str, np.ndarray], kind: str = "compatibility") -> Tuple[np.ndarray, Any]:
    """The module's run() on the helper page's device of ``kind``; its buffers released afterwards."""
    answer = page.evaluate(
        """async ([source, inputs, kind]) => {
             const module = await T.load(source);
             const { device, adapter } = await T.device(kind);
             try { return [T.encode(await module.run(device, T.inputs(inputs))), adapter]; }
             finally { module.release(); }
           }""", [text, {name: _b64(a) for name, a in arrays.items()}, kind])
    return np.frombuffer(base64.b64decode(answer[0]), "<f4").astype(np.float32), answer[1]


def run_page(tab, text: str, query: str = "") -> Dict[str, Any]:
    name = f"page{len(tab.pages)}.html"
    tab.pages[name] = text
    tab.goto(ORIGIN + name + query)
    tab.wait_for_function("window.gpuconvResult !== undefined", timeout=60_000)
    result = tab.evaluate("window.gpuconvResult")
    result["shown"] = tab.inner_text("#status")
    return result


# ---------------------------------------------------------------------------
# the cases


class Case(NamedTuple):
    op: str
    name: str
    leading: Tuple[Any, ...]          # the op's leading arguments: an array's name, or a shape
    shapes: Dict[str, Tuple[int, ...]]
    kwargs: Dict[str, Any]
    programs: Tuple[str, ...]         # what the WebGPU target runs for it

    @property
    def id(self) -> str:
        return f"{self.op}-{self.name}"

    def export(self, **options: Any):
        kwargs = dict(self.kwargs)
        names = [v for v in self.leading if isinstance(v, str)]
        positional = [self.shapes[v] if isinstance(v, str) else v for v in self.leading]
        if self.op in registry.OPS and not registry.OPS[self.op].signature:
            for name in names[2:]:
                kwargs[f"{name}_shape"] = self.shapes[name]
            positional = positional[:2]
        return build(self.op, *positional, target="webgpu", **kwargs, **options)

    def oracle(self, arrays: Dict[str, np.ndarray]) -> np.ndarray:
        kwargs = {k: v for k, v in self.kwargs.items() if k != "algorithm"}
        for name in ("bias", "prelu_weights", "residual"):
            if name in kwargs:
                kwargs[name] = arrays[name]
        if kwargs.get("activation") == "prelu" and "prelu_weights" not in kwargs:
            kwargs["prelu_weights"] = arrays["prelu_weights"]
        function = registry.OPS[self.op].oracle if self.op in registry.OPS else getattr(gpuconv.oracle, self.op)
        return function(*[arrays[v] if isinstance(v, str) else v for v in self.leading], **kwargs)


def _r(op: str, name: str, shapes: Dict[str, Tuple[int, ...]], programs: Tuple[str, ...], **kwargs: Any) -> Case:
    return Case(op, name, registry.OPS[op].arrays, shapes, kwargs, programs)


CASES = [
    _r("conv2d", "same-s2", {"x": (1, 9, 9, 5), "filter": (3, 3, 5, 6)}, ("Conv2DMMProgram",),
       padding="SAME", strides=2),
    _r("conv2d", "blocked-bias-residual-relu", {"x": (1, 10, 10, 4), "filter": (3, 3, 4, 8)},
       ("Conv2DBlockedProgram",), padding="SAME", bias=True, residual=True, activation="relu"),
    _r("conv2d", "nchw-bias-residual-relu6", {"x": (2, 5, 9, 9), "filter": (3, 3, 5, 6)}, ("Conv2DMMProgram",),
       padding="SAME", data_format="NCHW", bias=True, residual=True, activation="relu6"),
    _r("conv2d", "groups", {"x": (1, 6, 6, 4), "filter": (3, 3, 2, 6)}, ("Conv2DMMProgram",), groups=2,
       padding="SAME"),
    _r("conv2d", "direct-prelu", {"x": (1, 7, 7, 6), "filter": (3, 3, 6, 5)}, ("Conv2DNaiveProgram",),
       padding="SAME", activation="prelu", algorithm="direct"),
    _r("depthwise_conv2d", "m1-vec4-residual", {"x": (1, 9, 9, 8), "filter": (3, 3, 8, 1)},
       ("DepthwiseConv2DVec4Program",), padding="SAME", bias=True, residual=True, activation="relu"),
    _r("depthwise_conv2d", "m2-s2", {"x": (1, 9, 9, 3), "filter": (3, 3, 3, 2)}, ("DepthwiseConv2DProgram",),
       padding="SAME", strides=2),
    # the epilogue after the pointwise step: 4 channels (the depthwise step has 6)
    _r("separable_conv2d", "bias-residual-swish", {"x": (1, 8, 8, 3), "depthwise_filter": (3, 3, 3, 2),
                                                   "pointwise_filter": (1, 1, 6, 4)},
       ("DepthwiseConv2DProgram", "Conv2DBlockedProgram"), padding="SAME", bias=True, residual=True,
       activation="swish"),
    _r("conv1d", "nwc-s2", {"x": (2, 20, 3), "filter": (5, 3, 4)}, ("Conv2DBlockedProgram",), stride=2,
       padding="SAME"),
    Case("conv2d_transpose", "s2-bias-residual-relu", ("x", "filter", (1, 8, 8, 5)),
         {"x": (1, 4, 4, 3), "filter": (3, 3, 5, 3)},
         dict(strides=2, padding="SAME", bias=True, residual=True, activation="relu"), ("Conv2DDerInputProgram",)),
]

#: The largest error of each adapter, for the report at the end of the module.
ERRORS: Dict[str, float] = {}


def _inputs(exported, seed: int = 7) -> Dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {name: rng.uniform(-1, 1, size=shape).astype(np.float32)
            for name, shape in exported.shapes.items() if name != "output"}


def _check_module(page, case: Case, kind: str) -> None:
    exported = case.export(format="js")
    assert exported.programs == case.programs
    assert exported.text.startswith("// gpuconv ") and "export async function run(device, inputs)" in exported.text
    arrays = _inputs(exported)
    expected = np.asarray(case.oracle(arrays))
    assert list(expected.shape) == exported.shapes["output"]
    output, adapter = run_module(page, exported.text, arrays, kind)
    error = gpuconv.oracle.relative_error(output.reshape(expected.shape), expected)
    name = f"{kind}: {adapter['description'] or adapter['architecture']}"
    ERRORS[name] = max(ERRORS.get(name, 0.0), error)
    assert adapter["isFallbackAdapter"] == (kind == "swiftshader"), adapter
    assert error <= TOLERANCE, f"relative error {error:.3g} > {TOLERANCE:g}"


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_module_matches_oracle(page, case):
    _check_module(page, case, "compatibility")


@pytest.mark.parametrize("case", [CASES[7]], ids=[CASES[7].id])
def test_module_on_swiftshader(page, case):
    _check_module(page, case, "swiftshader")


# One page per op (its first case); the default adapter choice on the first, SwiftShader by ?featureLevel=core.
PAGE_RUNS = [case for i, case in enumerate(CASES) if case.op not in {c.op for c in CASES[:i]}]


@pytest.mark.parametrize("case", PAGE_RUNS, ids=[c.id for c in PAGE_RUNS])
def test_page_passes(page_tab, case):
    exported = case.export(format="html")
    assert not re.search(r"https?://", exported.text)  # nothing to fetch
    query = "" if case is PAGE_RUNS[0] else "?featureLevel=compatibility"
    result = run_page(page_tab, exported.text, query)
    assert result.get("error") is None, result
    assert result["status"] == "PASS" and result["shown"] == "PASS", result
    assert result["maxError"] <= TOLERANCE and result["tolerance"] == TOLERANCE
    assert result["warmMs"] > 0 and result["renderer"]
    # by default a compatibility adapter on ANGLE is preferred to the fallback adapter (SwiftShader)
    assert result["adapter"]["featureLevel"] == "compatibility" and not result["adapter"]["isFallbackAdapter"], result


def test_page_with_a_given_residual_passes(page_tab):
    """A residual given as an array (NCHW, the op's data format): its values in the page, which
    checks the module with them against the oracle; the module names it among its inputs."""
    case = CASES[2]  # Conv2DMMProgram, NCHW, bias, residual, relu6
    residual = np.linspace(-4, 4, 2 * 6 * 9 * 9, dtype=np.float32).reshape(2, 6, 9, 9)
    kwargs = {**case.kwargs, "residual": residual}
    exported = build("conv2d", case.shapes["x"], case.shapes["filter"], target="webgpu", format="html", **kwargs)
    assert exported.shapes["residual"] == exported.shapes["output"] == [2, 6, 9, 9]
    assert "run(device, { x, filter, bias, residual })" in exported.text
    assert base64.b64encode(residual.astype("<f4").tobytes()).decode("ascii") in exported.text
    result = run_page(page_tab, exported.text, "?featureLevel=compatibility")
    assert result["status"] == "PASS" and result["maxError"] <= TOLERANCE, result


@pytest.mark.parametrize("argv", [
    ("conv2d_backprop_filter", (1, 7, 7, 3), (3, 3, 3, 4), (1, 4, 4, 4), {"strides": 2, "padding": "SAME"}),
    ("conv3d", (1, 4, 5, 5, 3), (2, 3, 3, 3, 4), {"padding": "SAME"}),
], ids=lambda argv: argv[0])
def test_page_passes_for_a_gradient_and_3d(page_tab, argv):
    *leading, kwargs = argv
    exported = build(*leading, target="webgpu", format="html", **kwargs)
    result = run_page(page_tab, exported.text, "?featureLevel=compatibility")
    assert result["status"] == "PASS" and result["maxError"] <= TOLERANCE, result


def test_page_from_a_file(chromium, tmp_path):
    """Opened from a file (a secure context too): no other request, PASS on screen."""
    path = tmp_path / "conv.html"
    path.write_text(gpuconv.export("conv2d", (1, 32, 32, 8), (3, 3, 8, 16), padding="SAME", format="html",
                                   target="webgpu"), encoding="utf-8")
    tab = chromium.new_page()
    requests = []
    tab.on("request", lambda request: requests.append(request.url))
    try:
        tab.goto(path.as_uri())
        tab.wait_for_function("window.gpuconvResult !== undefined", timeout=60_000)
        result = tab.evaluate("window.gpuconvResult")
        shown = tab.inner_text("#status")
        adapter = tab.inner_text("#adapter")
    finally:
        tab.close()
    assert requests == [path.as_uri()]
    assert shown == "PASS" and result["status"] == "PASS", result
    assert adapter == result["renderer"] and "unknown" not in adapter and result["warmMs"] > 0


def test_page_on_core_and_beyond_its_tolerance(page_tab):
    exported = build("conv2d", (1, 6, 6, 3), (3, 3, 3, 4), padding="SAME", target="webgpu", format="html")
    result = run_page(page_tab, exported.text, "?featureLevel=core")
    assert result["status"] == "PASS", result
    assert result["adapter"]["featureLevel"] == "core" and result["adapter"]["isFallbackAdapter"], result
    assert "fallback" in result["renderer"] and "swiftshader" in result["renderer"].lower()
    strict = build("conv2d", (1, 6, 6, 3), (3, 3, 3, 4), target="webgpu", format="html", tolerance=1e-12)
    result = run_page(page_tab, strict.text, "?featureLevel=compatibility")
    assert result["status"] == "FAIL" and result["shown"] == "FAIL" and "error" not in result, result
    assert result["maxError"] > 1e-12


def test_page_without_webgpu_says_unsupported(chromium):
    tab = chromium.new_page()
    try:
        pages = {"nogpu.html": build("conv1d", (1, 8, 2), (3, 2, 2), target="webgpu", format="html").text}
        _serve(tab, pages)
        tab.add_init_script("Object.defineProperty(Navigator.prototype, 'gpu', { get: () => undefined });")
        tab.goto(ORIGIN + "nogpu.html")
        tab.wait_for_function("window.gpuconvResult !== undefined", timeout=30_000)
        result = tab.evaluate("window.gpuconvResult")
        shown = tab.inner_text("#status")
    finally:
        tab.close()
    assert result["status"] == "unsupported" and shown == "UNSUPPORTED", result
    assert "no WebGPU" in result["error"] and result["maxError"] is None


# ---------------------------------------------------------------------------
# limits, pipelines and buffers

_REFUSE = """async ([source, smaller]) => {
  const module = await T.load(source);
  const { device } = await T.device("compatibility");
  try { await module.run(T.shrunk(device, smaller), {}); return null; } catch (error) { return error.message; }
  finally { module.release(); }
}"""


def test_module_names_the_limit_that_falls_short(page):
    exported = build("conv2d", (1, 8, 8, 4), (3, 3, 4, 8), padding="SAME", bias=True, activation="prelu",
                     target="webgpu")
    limits = exported.requirements["limits"]
    assert limits["maxStorageBuffersPerShaderStage"] == 5  # x, W, bias, PReLU weights, the output
    for name, value in [("maxStorageBuffersPerShaderStage", 4), ("maxStorageBufferBindingSize", 1024),
                        ("maxComputeInvocationsPerWorkgroup", 32)]:
        message = page.evaluate(_REFUSE, [exported.text, {name: value}])
        assert message and f"needs {name} >= {limits[name]}" in message and f"has {value}" in message, message
        assert "requiredLimits" in message
    assert "conv2d's output" not in message


def test_module_refuses_a_buffer_over_the_devices_binding_size(page):
    """Exported for a device with 256 MiB bindings, a 144 MiB output is refused on a default device
    (128 MiB) before anything is made; WebGPU's guaranteed limits refuse it in Python."""
    big = WebGPULimits(max_storage_buffer_binding_size=256 << 20)
    shapes = ((1, 1024, 1024, 4), (1, 1, 4, 36))
    with pytest.raises(ValueError, match="maxStorageBufferBindingSize"):
        build("conv2d", *shapes, target="webgpu")
    exported = build("conv2d", *shapes, target="webgpu", target_limits=big)
    need = exported.requirements["limits"]["maxStorageBufferBindingSize"]
    assert need == 1024 * 1024 * 36 * 4
    message = page.evaluate(_REFUSE, [exported.text, {"maxStorageBufferBindingSize": 128 << 20}])
    assert message and f"maxStorageBufferBindingSize >= {need}" in message and "output" in message, message


def test_module_makes_pipelines_once_and_release_destroys_its_buffers(page):
    exported = CASES[7].export()
    inputs = {name: _b64(a) for name, a in _inputs(exported).items()}
    report = page.evaluate("""async ([source, inputs]) => {
      const module = await T.load(source);
      const { device } = await T.device("compatibility");
      const [counting, counts] = T.counting(device);
      const arrays = T.inputs(inputs);
      const snapshots = [];
      const outputs = await Promise.all([module.run(counting, arrays), module.run(counting, arrays)]);  // queued
      snapshots.push(Object.assign({}, counts));
      await module.run(counting, arrays);
      snapshots.push(Object.assign({}, counts));
      module.release();
      await device.queue.onSubmittedWorkDone();
      await new Promise((resolve) => setTimeout(resolve, 0));
      snapshots.push(Object.assign({}, counts));
      const again = await module.run(counting, arrays);  // made again after release()
      module.release();
      const messages = [];
      for (const attempt of [() => module.run({}, arrays), () => module.run(device, { x: arrays.x }),
                             () => module.run(device, Object.assign({ other: arrays.x }, arrays))]) {
        try { await attempt(); messages.push(null); } catch (error) { messages.push(error.message); }
      }
      const same = T.encode(outputs[0]) === T.encode(outputs[1]) && T.encode(again) === T.encode(outputs[0]);
      return { snapshots, same, messages };
    }""", [exported.text, inputs])
    first, second, released = report["snapshots"]
    assert first["createComputePipelineAsync"] == 2 == second["createComputePipelineAsync"]
    buffers = 5 + 2 + 1  # the five inputs (three arrays, bias, residual), two outputs, the read-back buffer
    assert first["createBuffer"] == buffers == second["createBuffer"] and second["destroy"] == 0
    assert released["destroy"] == buffers
    assert report["same"]
    assert "needs a GPUDevice" in report["messages"][0]
    assert "input depthwise_filter is missing" in report["messages"][1]
    assert "unknown input other" in report["messages"][2]


def test_module_header_usage_runs(page):
    """The module's own example: a device requested with requiredLimits: requirements.limits."""
    exported = CASES[1].export()
    arrays = _inputs(exported)
    answer = page.evaluate("""async ([source, inputs]) => {
      const { run, release, requirements } = await T.load(source);
      const adapter = await navigator.gpu.requestAdapter({ featureLevel: "compatibility" });
      const device = await adapter.requestDevice({ requiredLimits: requirements.limits });
      try { return T.encode(await run(device, T.inputs(inputs))); } finally { release(); device.destroy(); }
    }""", [exported.text, {name: _b64(a) for name, a in arrays.items()}])
    output = np.frombuffer(base64.b64decode(answer), "<f4")
    expected = np.asarray(CASES[1].oracle(arrays))
    assert gpuconv.oracle.relative_error(output.reshape(expected.shape), expected) <= TOLERANCE


# ---------------------------------------------------------------------------
# the Python API and the command line


def test_export_api_for_webgpu():
    text = gpuconv.export("conv2d", (1, 8, 8, 3), (3, 3, 3, 4), padding="SAME", target="webgpu")
    assert "@compute" in text and "createComputePipelineAsync" in text and "texImage2D" not in text
    assert '"x": [1, 8, 8, 3], "filter": [3, 3, 3, 4], "output": [1, 8, 8, 4]' in text
    with pytest.raises(ValueError, match="on the WebGPU target, got 'packed'"):
        gpuconv.export("conv2d", (1, 8, 8, 4), (3, 3, 4, 4), algorithm="packed", target="webgpu")
    with pytest.raises(ValueError, match="max_texture_size: WebGL2 limits"):
        gpuconv.export("conv2d", (1, 8, 8, 4), (3, 3, 4, 4), max_texture_size=2048, target="webgpu")
    with pytest.raises(ValueError, match="float32"):
        gpuconv.export("conv2d", (1, 8, 8, 4), (3, 3, 4, 4), storage="float16", target="webgpu")
    with pytest.raises(ValueError, match="target must be one of"):
        gpuconv.export("conv2d", (1, 8, 8, 4), (3, 3, 4, 4), target="metal")


def test_cli_writes_the_webgpu_module_and_page(tmp_path, capsys):
    module, page = tmp_path / "conv.mjs", tmp_path / "conv.html"
    base = ["export", "conv2d", "--input", "1x16x16x8", "--filter", "3x3x8x16", "--padding", "same", "--bias",
            "--residual", "--activation", "relu", "--target", "webgpu"]
    assert cli.main(base + ["--output", str(module)]) == 0, capsys.readouterr().err
    err = capsys.readouterr().err
    assert "conv2d WebGPU module" in err and "Conv2DBlockedProgram" in err
    text = module.read_text(encoding="utf-8")
    assert "export async function run(device, inputs)" in text
    assert '"bias": [16], "residual": [1, 16, 16, 16], "output": [1, 16, 16, 16]' in text
    assert cli.main(base + ["--format", "html", "--output", str(page), "--seed", "3"]) == 0
    assert "conv2d WebGPU page" in capsys.readouterr().err
    assert page.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    code = cli.main(base + ["--max-draw-buffers", "4"])
    assert code == 2 and "WebGL2 options" in capsys.readouterr().err
    code = cli.main(base + ["--algorithm", "packed"])
    assert code == 2 and "--algorithm packed is a WebGL2 program" in capsys.readouterr().err


def test_report_largest_errors():
    """The largest error per adapter of the module runs above (printed with -s)."""
    for adapter, error in sorted(ERRORS.items()):
        print(f"largest relative error on {adapter}: {error:.2e}")
    assert all(error <= TOLERANCE for error in ERRORS.values())

