// The page side of `benchmarks/bench.py --tfjs-webgpu`: TF.js's WebGPU backend, timed inside the page.
//
// benchmarks/tfjs/runner.py loads this after tf-core and tf-backend-webgpu (served from
// node_modules) and calls window.tfjsBench.init(flags, adapterOptions) once, then load(...)
// and time(...) per layer, as page.js does for the WebGL backend.
//
// The adapter: TF.js asks navigator.gpu.requestAdapter({powerPreference}) and nothing else,
// which under Chromium's ANGLE/OpenGL ES WebGPU flags still answers SwiftShader; the ANGLE
// adapter is offered to a compatibility-mode request only.  With `adapterOptions` (the
// options gpuconv's WebGPU page asks with), init() registers 'webgpu' again with a factory
// that asks for the adapter with those options and otherwise makes the device as TF.js 4.22's
// own factory does (timestamp-query and bgra8unorm-storage when offered, the adapter's
// maxima of the same six limits), then starts tf.WebGPUBackend on it.
//
// The timing rule, the same as bench.py's in-page timing of gpuconv's WebGPU programs: one
// run = the op on inputs already in buffers (TF.js records its dispatches into a command
// encoder and submits every 15), then the rest submitted and `await
// device.queue.onSubmittedWorkDone()`, which resolves once the GPU has run every dispatch.
// `await y.data()` (op + full download) is timed as well.
"use strict";

(() => {
  let backend = null;
  let device = null;
  let adapterRecord = null;
  let recording = null;          // program class names, while one call is recorded
  const errors = [];             // WebGPU validation errors and device loss, as they come
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

  function describe(adapter, options) {
    const info = adapter.info || {};
    const features = [...adapter.features].sort();
    return {
      request: options,
      vendor: info.vendor || "",
      architecture: info.architecture || "",
      device: info.device || "",
      description: info.description || "",
      fallback: Boolean(info.isFallbackAdapter ?? adapter.isFallbackAdapter),
      // a compatibility-mode adapter lacks core-features-and-limits
      compatibility: !features.includes("core-features-and-limits"),
      features,
    };
  }

  function useAdapter(options) {
    tf.removeBackend("webgpu");
    tf.registerBackend("webgpu", async () => {
      const adapter = await navigator.gpu.requestAdapter(options);
      if (!adapter) throw new Error("navigator.gpu.requestAdapter(" + JSON.stringify(options) + ") gave no adapter");
      const wanted = ["timestamp-query", "bgra8unorm-storage"].filter((name) => adapter.features.has(name));
      const limits = {};
      for (const name of ["maxComputeWorkgroupStorageSize", "maxComputeWorkgroupsPerDimension",
                          "maxStorageBufferBindingSize", "maxBufferSize", "maxComputeWorkgroupSizeX",
                          "maxComputeInvocationsPerWorkgroup"]) {
        limits[name] = adapter.limits[name];
      }
      const made = await adapter.requestDevice({ requiredFeatures: wanted, requiredLimits: limits });
      adapterRecord = describe(adapter, options);
      return new tf.WebGPUBackend(made, adapter.info);
    }, 3);
  }

  async function init(flags, adapterOptions) {
    if (!navigator.gpu) throw new Error("navigator.gpu is missing (is the page a secure context?)");
    for (const [name, value] of Object.entries(flags)) tf.env().set(name, value);
    if (adapterOptions) useAdapter(adapterOptions);
    if (!(await tf.setBackend("webgpu"))) throw new Error("TF.js could not start its WebGPU backend");
    await tf.ready();
    backend = tf.backend();
    device = backend.device;
    if (!adapterRecord) {
      // TF.js's own factory ran; it keeps no adapter: ask again as it asked.
      const options = { powerPreference: tf.env().get("WEBGPU_USE_LOW_POWER_GPU") ? "low-power" : "high-performance" };
      adapterRecord = describe(await navigator.gpu.requestAdapter(options), options);
    }
    device.addEventListener("uncapturederror", (event) => errors.push(String(event.error && event.error.message)));
    device.lost.then((info) => errors.push("device lost: " + info.message));
    // Which of TF.js's programs a call runs (the names survive in the unminified bundles).
    const runProgram = backend.runWebGPUProgram.bind(backend);
    backend.runWebGPUProgram = (program, ...rest) => {
      const output = runProgram(program, ...rest);
      if (recording) recording.push(program.constructor.name);
      return output;
    };
    const env = {};
    for (const name of ["WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE", "WEBGPU_CPU_FORWARD", "WEBGPU_MATMUL_PROGRAM_TYPE",
                        "WEBGPU_CONV_SEPARATE_IM2COL_SHADER", "WEBGPU_USE_NAIVE_CONV2D_DEBUG"]) {
      env[name] = tf.env().get(name);
    }
    // Named as gpuconv's WebGPU page names its adapter: the description (vendor and
    // architecture are in `adapter`).
    const name = adapterRecord.description || adapterRecord.device || "(adapter without a name)";
    return { version: tf.version_core, backend: tf.getBackend(), renderer: name, adapter: adapterRecord, env };
  }

  // Submits what TF.js has recorded and waits until the GPU has run it.
  async function settle() {
    if (backend.commandEncoder) {
      backend.endComputePassEncoder();
      backend.submitQueue();
    }
    await device.queue.onSubmittedWorkDone();
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
  // checked), `warmup` untimed runs, one recorded run (the programs), then `repeat` timed
  // runs of each kind.  Times in seconds.
  async function time(name, repeat, warmup) {
    const { call } = layers.get(name);
    const errorsBefore = errors.length;
    let y = call();
    const output = await y.data();
    const shape = y.shape;
    y.dispose();
    for (let i = 0; i < warmup; i++) { y = call(); await settle(); y.dispose(); }
    recording = [];
    y = call(); await settle(); y.dispose();
    const programs = recording;
    recording = null;
    const synced = [];
    for (let i = 0; i < repeat; i++) {
      const start = performance.now();
      y = call();
      await settle();
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
    await settle();
    if (errors.length > errorsBefore) throw new Error("WebGPU errors: " + errors.slice(errorsBefore).join("; "));
    return { synced, downloaded, programs, shape, output: toBase64(output), tensors: tf.memory().numTensors };
  }

  window.tfjsBench = { init, load, time, unload };
})();
