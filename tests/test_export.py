"""gpuconv export (issue 12): a kernel as a dependency-free JavaScript module and as a
self-checking HTML page.

Every op and algorithm is exported, the module is run in headless Chromium's WebGL2 (the
session's BrowserRuntime of conftest.py: ANGLE over Mesa's EGL) on inputs from Python and
its output compared with the float64 oracle; the page runs itself and must say PASS. The
module refuses a context without what it needs, compiles once per context and frees what
each run makes; the page refuses inputs too large to embed.
"""

from __future__ import annotations

import base64
import re
from typing import Any, Dict, NamedTuple, Optional, Tuple

import numpy as np
import pytest

import gpuconv
from gpuconv import cli, registry
from gpuconv.export import MAX_EMBEDDED_BYTES, build, exportable_ops

TOLERANCE = 1e-5

# Helpers in a blank page of the session's Chromium: one WebGL2 context, modules imported
# from blob: URLs, float32 arrays crossing as base64.
HELPERS = """() => {
  window.T = {
    gl: null,
    context() {
      if (!this.gl) this.gl = document.createElement("canvas").getContext("webgl2");
      return this.gl;
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
    // A WebGL2 context that answers some getParameter/getExtension queries differently.
    wrap(parameters, missingExtensions) {
      const gl = this.context();
      return new Proxy(gl, {
        get(target, property) {
          if (property === "getParameter") {
            return (p) => (p in parameters ? parameters[p] : target.getParameter(p));
          }
          if (property === "getExtension") {
            return (name) => (missingExtensions.includes(name) ? null : target.getExtension(name));
          }
          const value = target[property];
          return typeof value === "function" ? value.bind(target) : value;
        },
      });
    },
    // A WebGL2 context that counts the objects made and deleted.
    counting() {
      const gl = this.context();
      const counts = {};
      const counted = ["createProgram", "deleteProgram", "createTexture", "deleteTexture",
                       "createFramebuffer", "deleteFramebuffer", "createShader", "deleteShader"];
      const proxy = new Proxy(gl, {
        get(target, property) {
          const value = target[property];
          if (typeof value !== "function") return value;
          if (!counted.includes(property)) return value.bind(target);
          return (...args) => { counts[property] = (counts[property] || 0) + 1; return value.apply(target, args); };
        },
      });
      return [proxy, counts];
    },
  };
}"""


@pytest.fixture(scope="module")
def page(browser):
    """A page of its own in the session's Chromium (same launch flags as the runtime's)."""
    page = browser._browser.new_page()
    page.set_content("<!DOCTYPE html><html><head><meta charset='utf-8'><title>export tests</title></head>"
                     "<body></body></html>")
    page.evaluate(HELPERS)
    yield page
    page.close()


@pytest.fixture(scope="module")
def page_tab(browser):
    """A second page, into which the exported pages are loaded."""
    tab = browser._browser.new_page()
    yield tab
    tab.close()


def _b64(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array, "<f4").tobytes()).decode("ascii")


def run_module(page, text: str, arrays: Dict[str, np.ndarray]) -> np.ndarray:
    """The module's run() on the page's context; its programs released afterwards."""
    encoded = page.evaluate(
        """async ([source, inputs]) => {
             const module = await T.load(source);
             const gl = T.context();
             try { return T.encode(module.run(gl, T.inputs(inputs))); } finally { module.release(gl); }
           }""", [text, {name: _b64(a) for name, a in arrays.items()}])
    return np.frombuffer(base64.b64decode(encoded), "<f4").astype(np.float32)


def run_page(tab, text: str) -> Dict[str, Any]:
    tab.set_content(text)
    tab.wait_for_function("window.gpuconvResult !== undefined", timeout=60_000)
    result = tab.evaluate("window.gpuconvResult")
    result["shown"] = tab.inner_text("#status")
    return result


# ---------------------------------------------------------------------------
# the cases: every op, both algorithms where the op has them


class Case(NamedTuple):
    op: str
    name: str
    leading: Tuple[Any, ...]          # the op's leading arguments: an array's name, or a shape
    shapes: Dict[str, Tuple[int, ...]]
    kwargs: Dict[str, Any]
    algorithms: Tuple[Optional[str], ...] = ("direct", "packed")

    @property
    def id(self) -> str:
        return f"{self.op}-{self.name}"

    def export_args(self) -> Tuple[Tuple[Any, ...], Dict[str, Any]]:
        """export()'s positional and keyword arguments: shapes for arrays; a registry op's
        filters after the first as <name>_shape=."""
        kwargs = dict(self.kwargs)
        names = [v for v in self.leading if isinstance(v, str)]
        positional = [self.shapes[v] if isinstance(v, str) else v for v in self.leading]
        if self.op in registry.OPS and not registry.OPS[self.op].signature:
            for name in names[2:]:
                kwargs[f"{name}_shape"] = self.shapes[name]
            positional = positional[:2]
        return tuple(positional), kwargs

    def oracle(self, arrays: Dict[str, np.ndarray]) -> np.ndarray:
        kwargs = {k: v for k, v in self.kwargs.items() if k not in ("max_texture_size", "max_draw_buffers")}
        for name in ("bias", "prelu_weights", "residual"):
            if name in kwargs:
                kwargs[name] = arrays[name]
        if kwargs.get("activation") == "prelu" and "prelu_weights" not in kwargs:
            kwargs["prelu_weights"] = arrays["prelu_weights"]
        function = registry.OPS[self.op].oracle if self.op in registry.OPS else getattr(gpuconv.oracle, self.op)
        return function(*[arrays[v] if isinstance(v, str) else v for v in self.leading], **kwargs)


def _r(op: str, name: str, shapes: Dict[str, Tuple[int, ...]], algorithms=("direct", "packed"), **kwargs) -> Case:
    return Case(op, name, registry.OPS[op].arrays, shapes, kwargs, algorithms)


DIRECT = ("direct",)

CASES = [
    _r("conv2d", "same-s2", {"x": (1, 9, 9, 5), "filter": (3, 3, 5, 6)}, padding="SAME", strides=2),
    _r("conv2d", "rank3-dil2", {"x": (9, 9, 4), "filter": (3, 3, 4, 4)}, dilations=2),
    _r("conv2d", "nchw-bias-residual-relu6", {"x": (2, 5, 9, 9), "filter": (3, 3, 5, 6)}, padding="SAME",
       data_format="NCHW", bias=True, residual=True, activation="relu6"),
    _r("conv2d", "explicit-leakyrelu", {"x": (1, 8, 7, 3), "filter": (2, 3, 3, 5)}, padding=[[1, 0], [2, 1]],
       strides=(2, 1), activation="leakyrelu", leakyrelu_alpha=0.1),
    _r("conv2d", "prelu", {"x": (1, 7, 7, 6), "filter": (3, 3, 6, 5)}, padding="SAME", activation="prelu"),
    _r("conv2d", "bias-gelu", {"x": (1, 6, 6, 4), "filter": (3, 3, 4, 4)}, padding="SAME", bias=True,
       activation="gelu"),  # the programs' own erf in the exported source
    _r("conv2d", "4-draw-buffers", {"x": (1, 10, 11, 6), "filter": (3, 3, 6, 9)}, algorithms=("packed",),
       padding="SAME", bias=True, max_draw_buffers=4),
    _r("conv2d", "groups", {"x": (1, 6, 6, 4), "filter": (3, 3, 2, 6)}, algorithms=DIRECT, groups=2,
       padding="SAME"),
    _r("conv2d", "prelu-full", {"x": (1, 6, 6, 3), "filter": (3, 3, 3, 2)}, algorithms=DIRECT,
       activation="prelu", prelu_weights=np.zeros((1, 4, 4, 2), np.float32)),
    _r("conv2d", "wrapped", {"x": (1, 9, 9, 5), "filter": (3, 3, 5, 6)}, algorithms=DIRECT, padding="SAME",
       max_texture_size=32),
    _r("depthwise_conv2d", "m2-s2", {"x": (1, 9, 9, 3), "filter": (3, 3, 3, 2)}, padding="SAME", strides=2),
    _r("depthwise_conv2d", "nchw-bias-residual-relu", {"x": (1, 5, 8, 8), "filter": (3, 3, 5, 1)},
       padding="SAME", data_format="NCHW", bias=True, residual=True, activation="relu"),
    _r("depthwise_conv2d", "dil2", {"x": (2, 10, 10, 6), "filter": (3, 3, 6, 1)}, dilations=2),
    # the epilogue after the pointwise step: 4 channels (the depthwise step has 6); the page runs it
    _r("separable_conv2d", "bias-residual-swish", {"x": (1, 8, 8, 3), "depthwise_filter": (3, 3, 3, 2),
                                                   "pointwise_filter": (1, 1, 6, 4)}, padding="SAME", bias=True,
       residual=True, activation="swish"),
    _r("separable_conv2d", "nchw-s2", {"x": (2, 3, 9, 9), "depthwise_filter": (3, 3, 3, 1),
                                       "pointwise_filter": (1, 1, 3, 5)}, padding="SAME", strides=2,
       data_format="NCHW"),
    _r("conv1d", "nwc-s2", {"x": (2, 20, 3), "filter": (5, 3, 4)}, stride=2, padding="SAME"),
    _r("conv1d", "ncw-dil2", {"x": (2, 3, 20), "filter": (3, 3, 5)}, dilation=2, data_format="NCW"),
    _r("conv1d", "rank2", {"x": (20, 3), "filter": (3, 3, 2)}),
]

# The registry's other ops (direct programs only), where this gpuconv has them.
OTHER_CASES = [
    Case("conv2d_transpose", "s2-bias-residual-relu", ("x", "filter", (1, 8, 8, 5)),
         {"x": (1, 4, 4, 3), "filter": (3, 3, 5, 3)},
         dict(strides=2, padding="SAME", bias=True, residual=True, activation="relu"), DIRECT),
    Case("conv2d_backprop_input", "s2", ((1, 7, 7, 3), "filter", "dy"), {"filter": (3, 3, 3, 4), "dy": (1, 4, 4, 4)},
         dict(strides=2, padding="SAME"), DIRECT),
    Case("conv2d_backprop_filter", "s2", ("x", (3, 3, 3, 4), "dy"), {"x": (1, 7, 7, 3), "dy": (1, 4, 4, 4)},
         dict(strides=2, padding="SAME"), DIRECT),
    Case("depthwise_conv2d_backprop_input", "m2", ((1, 7, 7, 3), "filter", "dy"),
         {"filter": (3, 3, 3, 2), "dy": (1, 7, 7, 6)}, dict(padding="SAME"), DIRECT),
    Case("depthwise_conv2d_backprop_filter", "m2", ("x", (3, 3, 3, 2), "dy"),
         {"x": (1, 7, 7, 3), "dy": (1, 7, 7, 6)}, dict(padding="SAME"), DIRECT),
    Case("conv3d", "same", ("x", "filter"), {"x": (1, 4, 5, 5, 3), "filter": (2, 3, 3, 3, 4)},
         dict(padding="SAME"), DIRECT),
    Case("conv3d_transpose", "s2", ("x", "filter", (1, 4, 6, 6, 3)), {"x": (1, 2, 3, 3, 4), "filter": (2, 3, 3, 3, 4)},
         dict(strides=2, padding="SAME"), DIRECT),
    Case("conv3d_backprop_input", "same", ((1, 4, 5, 5, 3), "filter", "dy"),
         {"filter": (2, 3, 3, 3, 4), "dy": (1, 4, 5, 5, 4)}, dict(padding="SAME"), DIRECT),
    Case("conv3d_backprop_filter", "same", ("x", (2, 3, 3, 3, 4), "dy"),
         {"x": (1, 4, 5, 5, 3), "dy": (1, 4, 5, 5, 4)}, dict(padding="SAME"), DIRECT),
]
OTHER_CASES = [case for case in OTHER_CASES if case.op in exportable_ops()]

MODULE_RUNS = [(case, algorithm) for case in CASES + OTHER_CASES for algorithm in case.algorithms]


def _export(case: Case, algorithm: Optional[str], **options: Any):
    positional, kwargs = case.export_args()
    if case.op in registry.OPS and registry.OPS[case.op].algorithms and algorithm is not None:
        kwargs["algorithm"] = algorithm
    return build(case.op, *positional, **kwargs, **options)


def _inputs(exported, seed: int = 7) -> Dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {name: rng.uniform(-1, 1, size=shape).astype(np.float32)
            for name, shape in exported.shapes.items() if name != "output"}


@pytest.mark.parametrize("case, algorithm", MODULE_RUNS, ids=[f"{c.id}-{a}" for c, a in MODULE_RUNS])
def test_module_matches_oracle(page, case, algorithm):
    exported = _export(case, algorithm, format="js")
    packed = all(name.startswith("Packed") for name in exported.programs)
    assert packed == (algorithm == "packed"), exported.programs
    assert exported.text.startswith("// gpuconv ")
    arrays = _inputs(exported)
    assert set(arrays) >= set(case.shapes)
    expected = np.asarray(case.oracle(arrays))
    assert list(expected.shape) == exported.shapes["output"]
    output = run_module(page, exported.text, arrays).reshape(expected.shape)
    error = gpuconv.oracle.relative_error(output, expected)
    assert error <= TOLERANCE, f"relative error {error:.3g} > {TOLERANCE:g}"


def _first_per_op_and_algorithm():
    runs, seen = [], set()
    for case, algorithm in MODULE_RUNS:
        if (case.op, algorithm) not in seen:
            seen.add((case.op, algorithm))
            runs.append((case, algorithm))
    return runs


# One page per op and algorithm: the first case of each.
PAGE_RUNS = _first_per_op_and_algorithm()


@pytest.mark.parametrize("case, algorithm", PAGE_RUNS, ids=[f"{c.id}-{a}" for c, a in PAGE_RUNS])
def test_page_passes(page_tab, case, algorithm):
    exported = _export(case, algorithm, format="html")
    assert not re.search(r"https?://", exported.text)  # nothing to fetch
    result = run_page(page_tab, exported.text)
    assert result.get("error") is None, result
    assert result["status"] == "PASS" and result["shown"] == "PASS", result
    assert result["maxError"] <= TOLERANCE and result["tolerance"] == TOLERANCE
    assert result["renderer"] and result["warmMs"] > 0


def test_page_screenshot_shows_pass(browser, tmp_path):
    """The page opened from a file: no other request, PASS on screen and in window.gpuconvResult."""
    path = tmp_path / "conv.html"
    path.write_text(gpuconv.export("conv2d", (1, 64, 64, 16), (3, 3, 16, 32), padding="SAME", format="html"),
                    encoding="utf-8")
    tab = browser._browser.new_page()
    requests = []
    tab.on("request", lambda request: requests.append(request.url))
    try:
        tab.goto(path.as_uri())
        tab.wait_for_function("window.gpuconvResult !== undefined", timeout=60_000)
        result = tab.evaluate("window.gpuconvResult")
        shown = tab.inner_text("#status")
        shot = tmp_path / "conv.png"
        tab.screenshot(path=str(shot), full_page=True)
    finally:
        tab.close()
    assert requests == [path.as_uri()]
    assert shown == "PASS" and result["status"] == "PASS", result
    assert result["maxError"] <= TOLERANCE and result["warmMs"] > 0 and result["renderer"]
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 1000


def test_page_fails_beyond_its_tolerance(page_tab):
    exported = build("conv2d", (1, 6, 6, 3), (3, 3, 3, 4), format="html", tolerance=1e-12, algorithm="direct")
    result = run_page(page_tab, exported.text)
    assert result["status"] == "FAIL" and result["shown"] == "FAIL", result
    assert result["maxError"] > 1e-12 and result["tolerance"] == 1e-12 and "error" not in result


def test_residual_is_an_input_and_a_given_one_is_embedded(page_tab):
    """residual=True: one more input of the module, of the output's shape (NCHW here, as the op's
    data format); an array: its values in the page, which checks the module against the oracle
    with them (a module that dropped the residual would FAIL)."""
    shapes = dict(x_shape=(2, 5, 9, 9), filter_shape=(3, 3, 5, 6))
    options = dict(padding="SAME", data_format="NCHW", bias=True, activation="relu6", algorithm="packed")
    module = build("conv2d", *shapes.values(), **options, residual=True)
    assert list(module.shapes) == ["x", "filter", "bias", "residual", "output"]
    assert module.shapes["residual"] == module.shapes["output"] == [2, 6, 9, 9]
    assert "run(gl, { x, filter, bias, residual })" in module.text
    residual = np.linspace(-4, 4, 2 * 6 * 9 * 9, dtype=np.float32).reshape(2, 6, 9, 9)
    exported = build("conv2d", *shapes.values(), **options, residual=residual, format="html")
    assert base64.b64encode(residual.astype("<f4").tobytes()).decode("ascii") in exported.text
    result = run_page(page_tab, exported.text)
    assert result["status"] == "PASS" and result["maxError"] <= TOLERANCE, result
    with pytest.raises(ValueError, match=r"residual must have the output's shape \(2, 6, 9, 9\)"):
        build("conv2d", *shapes.values(), **options, residual=np.zeros((2, 9, 9, 6), np.float32))
    with pytest.raises(TypeError, match="residual must be True or an array of numbers"):
        build("conv2d", *shapes.values(), **options, residual="shortcut")


def test_page_refuses_oversized_inputs():
    with pytest.raises(ValueError, match="16 MiB"):
        gpuconv.export("conv2d", (1, 1024, 1024, 4), (3, 3, 4, 4), padding="SAME", format="html")
    assert MAX_EMBEDDED_BYTES == 16 * 2 ** 20
    # the module of the same call embeds no data, so it is not refused
    assert gpuconv.export("conv2d", (1, 1024, 1024, 4), (3, 3, 4, 4), padding="SAME", format="js")


# ---------------------------------------------------------------------------
# what the module refuses, what it keeps and what it frees

_REFUSE = """async ([source, inputs, parameters, missing]) => {
  const module = await T.load(source);
  const gl = T.context();
  const wrapped = T.wrap(Object.fromEntries(parameters.map(([name, value]) => [gl[name], value])), missing);
  try { module.run(wrapped, T.inputs(inputs)); return null; } catch (error) { return error.message; }
  finally { module.release(wrapped); }
}"""


def _refusal(page, exported, parameters=(), missing=()):
    inputs = {name: _b64(a) for name, a in _inputs(exported).items()}
    return page.evaluate(_REFUSE, [exported.text, inputs, [list(p) for p in parameters], list(missing)])


def test_module_refuses_too_few_draw_buffers(page):
    packed = build("conv2d", (1, 16, 16, 8), (3, 3, 8, 8), padding="SAME", algorithm="packed")
    assert packed.requirements["maxDrawBuffers"] == 8
    message = _refusal(page, packed, [("MAX_DRAW_BUFFERS", 4)])
    assert message and "MAX_DRAW_BUFFERS >= 8" in message and "has 4" in message
    assert "--max-draw-buffers 4" in message
    # exported for 4 draw buffers, it runs on that context (the wrapper itself works)
    phone = build("conv2d", (1, 16, 16, 8), (3, 3, 8, 8), padding="SAME", algorithm="packed", max_draw_buffers=4)
    assert phone.requirements["maxDrawBuffers"] == 4
    assert _refusal(page, phone, [("MAX_DRAW_BUFFERS", 4), ("MAX_COLOR_ATTACHMENTS", 4)]) is None


def test_module_refuses_missing_float_rendering_and_small_textures(page):
    direct = build("conv2d", (1, 64, 64, 16), (3, 3, 16, 32), padding="SAME", algorithm="direct")
    message = _refusal(page, direct, missing=["EXT_color_buffer_float"])
    assert message and "EXT_color_buffer_float" in message
    side = direct.requirements["maxTextureSize"]
    assert side == 4096  # x is 4096 rows of 16 texels
    message = _refusal(page, direct, [("MAX_TEXTURE_SIZE", 2048)])
    assert message and f"MAX_TEXTURE_SIZE >= {side}" in message and "--max-texture-size 2048" in message
    assert _refusal(page, direct, [("MAX_TEXTURE_SIZE", side)]) is None


def test_module_checks_its_inputs(page):
    exported = build("conv2d", (1, 5, 5, 2), (3, 3, 2, 3), bias=True)
    messages = page.evaluate("""async (source) => {
      const module = await T.load(source);
      const gl = T.context();
      const x = new Float32Array(50), filter = new Float32Array(54), bias = new Float32Array(3);
      const attempts = [() => module.run(gl, { x, filter }), () => module.run(gl, { x: x.subarray(1), filter, bias }),
                        () => module.run(gl, { x, filter, bias, other: x }), () => module.run({}, { x, filter, bias })];
      const messages = attempts.map((attempt) => { try { attempt(); return null; } catch (e) { return e.message; } });
      // plain arrays are converted
      messages.push(Array.from(module.run(gl, { x: Array.from(x), filter, bias })).length);
      module.release(gl);
      return messages;
    }""", exported.text)
    assert "input bias is missing" in messages[0]
    assert "must hold 50 values" in messages[1]
    assert "unknown input other" in messages[2]
    assert "WebGL2RenderingContext" in messages[3]
    assert messages[4] == 1 * 3 * 3 * 3


def test_module_compiles_once_frees_each_run_and_restores_state(page):
    exported = build("separable_conv2d", (1, 8, 8, 3), (3, 3, 3, 2), pointwise_filter_shape=(1, 1, 6, 4),
                     padding="SAME", algorithm="packed")
    inputs = {name: _b64(a) for name, a in _inputs(exported).items()}
    report = page.evaluate("""async ([source, inputs]) => {
      const module = await T.load(source);
      const [gl, counts] = T.counting();
      const real = T.context();
      // the caller's state
      const texture = real.createTexture(), framebuffer = real.createFramebuffer();
      real.bindTexture(real.TEXTURE_2D, texture);
      real.bindFramebuffer(real.FRAMEBUFFER, framebuffer);
      real.viewport(1, 2, 3, 4);
      real.enable(real.SCISSOR_TEST);
      real.pixelStorei(real.UNPACK_ALIGNMENT, 8);
      const snapshots = [];
      const arrays = T.inputs(inputs);
      for (let i = 0; i < 3; i++) {
        module.run(gl, arrays);
        snapshots.push(Object.assign({}, counts));
      }
      const state = {
        texture: real.getParameter(real.TEXTURE_BINDING_2D) === texture,
        framebuffer: real.getParameter(real.FRAMEBUFFER_BINDING) === framebuffer,
        viewport: Array.from(real.getParameter(real.VIEWPORT)),
        scissor: real.isEnabled(real.SCISSOR_TEST),
        alignment: real.getParameter(real.UNPACK_ALIGNMENT),
        error: real.getError(),
      };
      real.bindFramebuffer(real.FRAMEBUFFER, null);
      real.deleteFramebuffer(framebuffer);
      real.bindTexture(real.TEXTURE_2D, null);
      real.deleteTexture(texture);
      real.disable(real.SCISSOR_TEST);
      real.viewport(0, 0, 1, 1);
      real.pixelStorei(real.UNPACK_ALIGNMENT, 4);
      module.release(gl);
      snapshots.push(Object.assign({}, counts));
      return { snapshots, state };
    }""", [exported.text, inputs])
    first, second, third, released = report["snapshots"]
    assert first["createProgram"] == 2 and second["createProgram"] == 2 == third["createProgram"]
    per_run = {k: second.get(k, 0) - first.get(k, 0) for k in set(first) | set(second)}
    textures = 3 + 8 + 8  # x, two filters; 8 render targets per program
    assert per_run["createTexture"] == per_run["deleteTexture"] == textures
    assert per_run["createFramebuffer"] == per_run["deleteFramebuffer"] == 2
    assert per_run.get("createShader", 0) == 0
    assert first["createTexture"] == first["deleteTexture"] and first["createFramebuffer"] == first["deleteFramebuffer"]
    assert released["deleteProgram"] == 2
    assert report["state"] == {"texture": True, "framebuffer": True, "viewport": [1, 2, 3, 4], "scissor": True,
                               "alignment": 8, "error": 0}


# ---------------------------------------------------------------------------
# the Python API and the command line


def test_export_api():
    text = gpuconv.export("conv2d", (1, 8, 8, 3), (3, 3, 3, 4), padding="SAME", format="js")
    assert text == build("conv2d", (1, 8, 8, 3), (3, 3, 3, 4), padding="SAME").text
    assert "export const shapes = " in text and "export function run(gl, inputs)" in text
    assert '"x": [1, 8, 8, 3], "filter": [3, 3, 3, 4], "output": [1, 8, 8, 4]' in text
    with pytest.raises(ValueError, match="format must be one of 'js', 'html'"):
        gpuconv.export("conv2d", (1, 8, 8, 3), (3, 3, 3, 4), format="wasm")
    with pytest.raises(ValueError, match="op must be one of 'conv2d'"):
        gpuconv.export("conv4d", (1, 8, 8, 3), (3, 3, 3, 4))
    with pytest.raises(TypeError, match="pointwise_filter_shape"):
        gpuconv.export("separable_conv2d", (1, 8, 8, 3), (3, 3, 3, 2))
    with pytest.raises(ValueError, match="algorithm='packed' cannot run"):
        gpuconv.export("conv2d", (1, 8, 8, 4), (3, 3, 2, 4), groups=2, algorithm="packed")


@pytest.mark.parametrize("algorithm, program", [("packed", "PackedConv2DProgram"), ("direct", "Conv2DProgram")])
def test_cli_export_reports_the_module_size(tmp_path, capsys, algorithm, program):
    path = tmp_path / "conv.mjs"
    code = cli.main(["export", "conv2d", "--input", "1x64x64x16", "--filter", "3x3x16x32", "--padding", "same",
                     "--algorithm", algorithm, "--format", "js", "--output", str(path)])
    err = capsys.readouterr().err
    assert code == 0, err
    size = path.stat().st_size
    assert f"{size / 1024:.1f} KiB" in err and program in err and "draw buffer" in err
    assert size < 64 * 1024
    print(f"conv2d 1x64x64x16 * 3x3x16x32 {algorithm} module: {size} bytes")


def test_cli_export_page_and_refusals(tmp_path, capsys):
    page = tmp_path / "sep.html"
    code = cli.main(["export", "separable_conv2d", "--input", "1x8x8x3", "--filter", "3x3x3x2",
                     "--pointwise-filter", "1x1x6x4", "--padding", "same", "--output", str(page), "--seed", "3",
                     "--bias", "--residual", "--activation", "hard_swish"])
    assert code == 0, capsys.readouterr().err
    text = page.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")  # the format follows the name
    assert '"bias": [4], "residual": [1, 8, 8, 4], "output": [1, 8, 8, 4]' in text  # after the pointwise step
    code = cli.main(["export", "conv1d", "--input", "1x8x3", "--filter", "3x3x4", "--residual"])
    assert code == 2 and "--residual is an option of conv2d, depthwise_conv2d, separable_conv2d" in \
        capsys.readouterr().err
    code = cli.main(["export", "conv2d", "--input", "1x8x8x3", "--filter", "3x3x3x4", "--tolerance", "1e-3"])
    assert code == 2 and "--tolerance is only used with --format html" in capsys.readouterr().err
    code = cli.main(["export", "conv2d", "--input", "1x1024x1024x4", "--filter", "3x3x4x4", "--format", "html",
                     "--output", str(tmp_path / "big.html")])
    assert code == 2 and "16 MiB" in capsys.readouterr().err
    assert not (tmp_path / "big.html").exists()
    code = cli.main(["export", "conv2d", "--input", "1x8x8x3", "--filter", "3x3x3x4", "--format", "js"])
    out = capsys.readouterr()
    assert code == 0 and out.out.startswith("// gpuconv ") and "conv2d module" in out.err


def test_docs_section_runs(page, tmp_path, monkeypatch, capsys):
    """The docs' "Shipping a kernel to the web": its commands work, and its JavaScript runs on the module."""
    import docs_pages

    doc, section, first_line = docs_pages.section("Shipping a kernel to the web")
    commands = [argv[1:] for block in docs_pages.blocks(doc, docs_pages.SHELL, section, first_line)
                for _, argv in docs_pages.command_lines(block) if argv[:2] == ["gpuconv", "export"]]
    assert len(commands) == 3
    monkeypatch.chdir(tmp_path)
    for argv in commands:
        assert cli.main(argv) == 0, (argv, capsys.readouterr().err)
    assert (tmp_path / "conv.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    (script,) = [block.code for block in docs_pages.blocks(doc, ("js",), section, first_line)]
    body = script.replace('import { run, shapes, requirements } from "./conv.mjs";',
                          "const { run, shapes, requirements } = await T.load(source);")
    assert "await T.load" in body
    length = page.evaluate(f"async (source) => {{ {body}\n return [y.length, shapes.output]; }}",
                           (tmp_path / "conv.mjs").read_text(encoding="utf-8"))
    assert length == [64 * 64 * 32, [1, 64, 64, 32]]


@pytest.mark.parametrize("argv", [
    ["conv2d_transpose", "--input", "1x4x4x6", "--filter", "3x3x3x6", "--output-shape", "1x7x7x3", "--strides", "2",
     "--padding", "same", "--bias", "--residual", "--activation", "relu"],
    ["conv2d_backprop_filter", "--input", "2x7x7x3", "--filter-shape", "3x3x3x4", "--dy", "2x3x3x4",
     "--strides", "2"],
    ["depthwise_conv2d_backprop_input", "--input-shape", "1x6x6x3", "--filter", "3x3x3x2", "--dy", "1x6x6x6",
     "--padding", "same", "--data-format", "nhwc"],
    ["conv3d", "--input", "1x5x5x5x2", "--filter", "3x3x3x2x4", "--strides", "1x2x2", "--padding", "same"],
    ["conv3d_backprop_input", "--input-shape", "1x2x4x5x5", "--filter", "2x3x3x2x3", "--dy", "1x3x3x3x3",
     "--data-format", "ncdhw"],
], ids=lambda argv: argv[0])
def test_cli_exports_the_gradient_transposed_and_3d_ops(page_tab, tmp_path, capsys, argv):
    page = tmp_path / "op.html"
    code = cli.main(["export", *argv, "--output", str(page)])
    assert code == 0, capsys.readouterr().err
    result = run_page(page_tab, page.read_text(encoding="utf-8"))
    assert result.get("error") is None, result
    assert result["status"] == "PASS" and result["maxError"] <= TOLERANCE, result
