// The page side of `benchmarks/bench.py --tfjs`: TF.js's WebGL backend, timed inside the page.
//
// benchmarks/tfjs/runner.py loads this after tf-core and tf-backend-webgl (served from
// node_modules) and calls window.tfjsBench.init(flags) once per page, then load(...) and
// time(...) per layer.  The timing rule, the same as gpuconv's in-page timing in bench.py:
// one run = the op on inputs already in textures, then a 1-texel gl.readPixels of the
// output's texture, which blocks until the GPU has drawn it (Chromium's gl.finish() only
// flushes).  `await y.data()` (op + full download) is timed as well.
"use strict";

(() => {
  let backend = null;
  let gl = null;
  let readFramebuffer = null;
  let recording = null;          // program class names, while one call is recorded
  const texel = new Float32Array(4);
  const layers = new Map();      // name -> {tensors, call}

  function toFloats(base64) {
    const binary = atob(base64);
    const bytes = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    return new Float32Array(bytes.buffer);
  }

  function toBase64(floats) {
    const bytes = new Uint8Array(floats.buffer, floats.byteOffset, floats.byteLength);
    const parts = [];
    for (let i = 0; i < bytes.length; i += 0x8000) {
      parts.push(String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000)));
    }
    return btoa(parts.join(""));
  }

  async function init(flags) {
    for (const [name, value] of Object.entries(flags)) tf.env().set(name, value);
    if (!(await tf.setBackend("webgl"))) throw new Error("TF.js could not start its WebGL backend");
    await tf.ready();
    backend = tf.backend();
    gl = backend.gpgpu.gl;
    // Which of TF.js's programs a call runs (the names survive in the unminified bundles).
    const runProgram = backend.runWebGLProgram.bind(backend);
    backend.runWebGLProgram = (program, ...rest) => {
      const output = runProgram(program, ...rest);
      // After the call: a program that packs or unpacks its inputs runs that program first.
      if (recording) recording.push(program.constructor.name);
      return output;
    };
    const debug = gl.getExtension("WEBGL_debug_renderer_info");
    const env = {};
    for (const name of ["WEBGL_VERSION", "WEBGL_PACK", "WEBGL_CONV_IM2COL", "WEBGL_PACK_DEPTHWISECONV",
                        "WEBGL_EXP_CONV", "WEBGL_RENDER_FLOAT32_ENABLED"]) {
      env[name] = tf.env().get(name);
    }
    return {
      version: tf.version_core,
      backend: tf.getBackend(),
      renderer: debug ? gl.getParameter(debug.UNMASKED_RENDERER_WEBGL) : gl.getParameter(gl.RENDERER),
      webgl_version: gl.getParameter(gl.VERSION),
      env,
    };
  }

  // Blocks until t's texture is drawn: reads one texel of it.
  function sync(t) {
    const data = backend.texData.get(t.dataId);
    const texture = data.texture.texture || data.texture;
    const previous = gl.getParameter(gl.READ_FRAMEBUFFER_BINDING);
    if (!readFramebuffer) readFramebuffer = gl.createFramebuffer();
    gl.bindFramebuffer(gl.READ_FRAMEBUFFER, readFramebuffer);
    gl.framebufferTexture2D(gl.READ_FRAMEBUFFER, gl.COLOR_ATTACHMENT0, gl.TEXTURE_2D, texture, 0);
    gl.readPixels(0, 0, 1, 1, gl.RGBA, gl.FLOAT, texel);
    gl.framebufferTexture2D(gl.READ_FRAMEBUFFER, gl.COLOR_ATTACHMENT0, gl.TEXTURE_2D, null, 0);
    gl.bindFramebuffer(gl.READ_FRAMEBUFFER, previous);
  }

  function unload(name) {
    const layer = layers.get(name);
    if (!layer) return;
    layer.tensors.forEach((t) => t.dispose());
    layers.delete(name);
  }

  // spec: {op, x, w, pw: {shape, data (base64 float32)}, strides, pad, dilations}
  function load(name, spec) {
    unload(name);
    const tensor = (a) => tf.tensor(toFloats(a.data), a.shape, "float32");
    const x = tensor(spec.x);
    const w = tensor(spec.w);
    const pw = spec.pw ? tensor(spec.pw) : null;
    let call;
    if (spec.op === "conv2d") {
      call = () => tf.conv2d(x, w, spec.strides, spec.pad, "NHWC", spec.dilations);
    } else if (spec.op === "depthwise_conv2d") {
      call = () => tf.depthwiseConv2d(x, w, spec.strides, spec.pad, "NHWC", spec.dilations);
    } else if (spec.op === "separable_conv2d") {
      call = () => tf.separableConv2d(x, w, pw, spec.strides, spec.pad, spec.dilations, "NHWC");
    } else {
      throw new Error("no TF.js op for " + spec.op);
    }
    layers.set(name, { tensors: pw ? [x, w, pw] : [x, w], call });
    return null;
  }

  // The first call (uploads x and the filters, compiles, and gives the output that is
  // checked), `warmup` untimed runs, one recorded run (the programs), then `repeat`
  // timed runs of each kind.  Times in seconds.
  async function time(name, repeat, warmup) {
    const { call } = layers.get(name);
    let y = call();
    const output = await y.data();
    const shape = y.shape;
    y.dispose();
    for (let i = 0; i < warmup; i++) { y = call(); sync(y); y.dispose(); }
    recording = [];
    y = call(); sync(y); y.dispose();
    const programs = recording;
    recording = null;
    const synced = [];
    for (let i = 0; i < repeat; i++) {
      const start = performance.now();
      y = call();
      sync(y);
      synced.push((performance.now() - start) / 1e3);
      y.dispose();
    }
    const downloaded = [];
    for (let i = 0; i < repeat; i++) {
      const start = performance.now();
      y = call();
      await y.data();
      downloaded.push((performance.now() - start) / 1e3);
      y.dispose();
    }
    return { synced, downloaded, programs, shape, output: toBase64(output), tensors: tf.memory().numTensors };
  }

  window.tfjsBench = { init, load, time, unload };
})();
