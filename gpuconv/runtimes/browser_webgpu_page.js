// gpuconv's WebGPU page in headless Chromium: one GPUDevice and the buffers and compute
// pipelines gpuconv keeps on it.
//
// gpuconv.runtimes.browser.BrowserWebGPURuntime loads this script into a page served from a loopback origin
// (WebGPU needs a secure context) and drives it as the WebGL2 page is driven: one entry point,
// gpuconv.call(message), where message.ops run in order (init, upload, draw, timed_draw, read,
// finish, compile, describe), message.drop names pipelines and buffers to forget first and
// message.free buffers to destroy last (even after an error).  Every call answers
// {ok: true, results: [...]} or {ok: false, kind, message, ...}; it never throws.  kind is
// "webgpu" for an error WebGPU reported (validation, out of memory, a pipeline that did not
// compile: the message names the program), "lost" once the device is lost, "unavailable"
// when there is no WebGPU here.
//
// A tensor is one storage buffer of float32 values, or of halves two to a 32-bit word
// (gpuconv.webgpu.layout.BufferLayout: padded to 16 bytes).  Arrays cross as their
// little-endian bytes, inline as base64 or outside the message (browser_transfer.js); a buffer's count is the 32-bit words its values take (read back).
// Programs are compute pipelines, made with createComputePipelineAsync: every new program of a
// call is made at once before its first op runs, so the browser compiles them in parallel.
// Errors are caught with error scopes around each pipeline and each dispatch; the scopes are
// popped at once but awaited only before a read, a finish or the end of the call, so that a
// chain of dispatches is not a round trip to the GPU process each.
"use strict";

(() => {
  const state = {
    adapter: null,
    device: null,
    lost: null,             // {reason, message} once device.lost has resolved
    timestamps: false,      // whether the device has timestamp-query
    featureLevel: null,
    pipelines: new Map(),   // program id -> {pipeline, name, inputs}
    buffers: new Map(),     // buffer id -> {buffer, bytes, count (32-bit words of values)}
    layouts: new Map(),     // input count -> {bindGroupLayout, pipelineLayout}
    pending: [],            // [{name, what, promise}] popped error scopes not yet awaited
    uncaptured: [],         // errors outside every scope (device.onuncapturederror)
  };

  class GpuconvError extends Error {
    constructor(kind, message, extra) {
      super(message);
      this.kind = kind;
      this.extra = extra || {};
    }
  }

  const transfer = globalThis.gpuconvTransfer;  // browser_transfer.js: inline base64, the server, a download
  let blobBytes = 0;  // read-backs of at least this many bytes leave as the call's download

  // ---- set-up ---------------------------------------------------------------------------------
  function adapterInfo(adapter) {
    const info = adapter.info || {};
    const features = [...adapter.features].sort();
    // Chromium 156 has no GPUAdapter.featureLevel yet: a core adapter has core-features-and-limits.
    const level = adapter.featureLevel ||
      (features.includes("core-features-and-limits") ? "core" : "compatibility");
    return {
      vendor: info.vendor || "", architecture: info.architecture || "", device: info.device || "",
      description: info.description || "", isFallbackAdapter: !!info.isFallbackAdapter,
      featureLevel: level, features,
    };
  }

  function limitsOf(object) {
    const limits = {};
    for (const name in object) if (typeof object[name] === "number") limits[name] = object[name];
    return limits;
  }

  async function init(op) {
    if (state.device) return describe();
    if (!isSecureContext) throw new GpuconvError("unavailable", "the page is not a secure context, so it has no WebGPU");
    if (!navigator.gpu) {
      throw new GpuconvError("unavailable", "this Chromium offers no WebGPU (navigator.gpu is missing; it needs " +
                             "--enable-unsafe-webgpu on Linux)");
    }
    const adapter = await navigator.gpu.requestAdapter(op.adapter || {});
    if (!adapter) {
      throw new GpuconvError("unavailable", "navigator.gpu.requestAdapter(" + JSON.stringify(op.adapter || {}) +
                             ") found no adapter");
    }
    const info = adapterInfo(adapter);
    if (op.refuse_fallback && info.isFallbackAdapter) {
      throw new GpuconvError("unavailable", "requestAdapter(" + JSON.stringify(op.adapter || {}) + ") gave only " +
                             "the fallback adapter (" + (info.description || info.architecture) + "), not the " +
                             "compatibility-mode adapter on ANGLE");
    }
    // The device gets WebGPU's default limits unless asked: ask for the adapter's own of those
    // the programs are sized by (a compatibility device's defaults are smaller still).
    const requiredLimits = {};
    for (const name of op.limits || []) {
      if (typeof adapter.limits[name] === "number") requiredLimits[name] = adapter.limits[name];
    }
    const requiredFeatures = adapter.features.has("timestamp-query") ? ["timestamp-query"] : [];
    const device = await adapter.requestDevice({ requiredFeatures, requiredLimits, label: "gpuconv" });
    state.adapter = adapter;
    state.device = device;
    state.info = info;
    state.timestamps = device.features.has("timestamp-query");
    device.lost.then((why) => { state.lost = { reason: why.reason, message: why.message }; });
    device.onuncapturederror = (event) => { state.uncaptured.push(event.error); };
    return describe();
  }

  function describe() {
    let bytes = 0;
    for (const entry of state.buffers.values()) bytes += entry.bytes;
    return {
      adapter: state.info,
      adapter_limits: limitsOf(state.adapter.limits),
      limits: limitsOf(state.device.limits),
      device_features: [...state.device.features].sort(),
      timestamp_query: state.timestamps,
      programs: state.pipelines.size,
      buffers: state.buffers.size,
      buffer_bytes: bytes,
    };
  }

  // ---- errors ---------------------------------------------------------------------------------
  // Run fn inside validation and out-of-memory scopes; the popped scopes are kept to be awaited
  // (checkErrors) with the program's name and what was being done.
  function scoped(name, what, fn) {
    const device = state.device;
    device.pushErrorScope("out-of-memory");
    device.pushErrorScope("validation");
    try {
      return fn();
    } finally {
      state.pending.push({ name, what, promise: device.popErrorScope() });
      state.pending.push({ name, what, promise: device.popErrorScope() });
    }
  }

  async function checkErrors() {
    const pending = state.pending;
    state.pending = [];
    let failure = null;
    for (const item of pending) {
      const error = await item.promise.catch((reason) => reason);
      if (error && !failure) {
        const verb = (typeof GPUOutOfMemoryError === "function" && error instanceof GPUOutOfMemoryError)
          ? "ran out of memory for" : "refused";
        failure = new GpuconvError("webgpu", item.name + ": WebGPU " + verb + " the " + item.what + ": " +
                                   (error.message || String(error)), { name: item.name });
      }
    }
    if (!failure && state.uncaptured.length) {
      const error = state.uncaptured.shift();
      state.uncaptured = [];
      failure = new GpuconvError("webgpu", "WebGPU reported an error outside gpuconv's calls: " + error.message,
                                 { name: "" });
    }
    if (failure) throw failure;
  }

  // ---- buffers --------------------------------------------------------------------------------
  const STORAGE = () => GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;

  function buffer(id) {
    const entry = state.buffers.get(id);
    if (!entry) throw new GpuconvError("error", "no buffer " + id + " in the page (freed already?)");
    return entry;
  }

  // Freed buffers are kept for reuse, by size, up to POOL_BYTES: on ANGLE's adapter a fresh
  // storage buffer's first use costs 2-30 ms (1.6-26 MB) against 0.5-1.2 ms reused, as TF.js
  // reuses its buffers.  Queue order keeps a reused buffer's new writes after its old reads.
  const POOL_BYTES = 256 * 1024 * 1024;
  const pool = new Map();   // bytes -> [GPUBuffer]
  let pooledBytes = 0;

  function newBuffer(id, bytes, count, name) {
    if (state.buffers.has(id)) throw new GpuconvError("error", "buffer " + id + " exists already");
    const kept = pool.get(bytes);
    let made;
    if (kept && kept.length) {
      made = kept.pop();
      pooledBytes -= bytes;
    } else {
      made = scoped(name, "buffer of " + bytes + " bytes",
                    () => state.device.createBuffer({ size: bytes, usage: STORAGE() }));
    }
    const entry = { buffer: made, bytes, count };
    state.buffers.set(id, entry);
    return entry;
  }

  function upload(op) {
    const bytes = op.payload;
    if (bytes.byteLength !== op.bytes || op.bytes % 16) {
      throw new GpuconvError("error", "buffer " + op.id + ": got " + bytes.byteLength + " bytes, expected " + op.bytes);
    }
    const entry = newBuffer(op.id, op.bytes, op.count, "upload");
    state.device.queue.writeBuffer(entry.buffer, 0, bytes.buffer, bytes.byteOffset, bytes.byteLength);
    return null;
  }

  function destroy(id) {
    const entry = state.buffers.get(id);
    if (!entry) return;
    state.buffers.delete(id);
    if (state.lost || pooledBytes + entry.bytes > POOL_BYTES) {
      entry.buffer.destroy();
      return;
    }
    if (!pool.has(entry.bytes)) pool.set(entry.bytes, []);
    pool.get(entry.bytes).push(entry.buffer);
    pooledBytes += entry.bytes;
  }

  async function read(op) {
    await checkErrors();
    const entry = buffer(op.id);
    const device = state.device;
    const bytes = entry.count * 4;
    const staging = device.createBuffer({ size: entry.bytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    try {
      const encoder = device.createCommandEncoder();
      encoder.copyBufferToBuffer(entry.buffer, 0, staging, 0, entry.bytes);
      device.queue.submit([encoder.finish()]);
      await staging.mapAsync(GPUMapMode.READ);
      const values = bytes ? new Uint8Array(staging.getMappedRange(0, bytes)).slice() : new Uint8Array(0);
      staging.unmap();
      return transfer.send(values, blobBytes);
    } catch (error) {
      throw lostOr(error, "reading a buffer back");
    } finally {
      staging.destroy();
    }
  }

  async function finish() {
    await state.device.queue.onSubmittedWorkDone().catch((error) => { throw lostOr(error, "finishing"); });
    await checkErrors();
    return null;
  }

  // A promise WebGPU rejected: the lost device if that is why, else the error as it came.
  function lostOr(error, what) {
    if (state.lost) return new GpuconvError("lost", "the WebGPU device was lost while " + what);
    return error;
  }

  // ---- pipelines ------------------------------------------------------------------------------
  // One explicit layout per input count: inputs read-only storage at bindings 0..n-1, the output
  // read-write at n, as every gpuconv WGSL program declares them ("auto" would drop a binding the
  // compiler found unused, and the bind group would then not match).
  function layoutFor(inputs) {
    let cached = state.layouts.get(inputs);
    if (!cached) {
      const entries = [];
      for (let i = 0; i <= inputs; i++) {
        entries.push({ binding: i, visibility: GPUShaderStage.COMPUTE,
                       buffer: { type: i < inputs ? "read-only-storage" : "storage" } });
      }
      const bindGroupLayout = state.device.createBindGroupLayout({ entries });
      const pipelineLayout = state.device.createPipelineLayout({ bindGroupLayouts: [bindGroupLayout] });
      state.layouts.set(inputs, cached = { bindGroupLayout, pipelineLayout });
    }
    return cached;
  }

  async function makePipeline(spec) {
    const device = state.device;
    const inputs = spec.samplers.length;
    const { pipelineLayout } = layoutFor(inputs);
    const module = scoped(spec.name, "shader module", () =>
      device.createShaderModule({ code: spec.source, label: spec.name }));
    let pipeline;
    try {
      pipeline = await device.createComputePipelineAsync({
        layout: pipelineLayout, compute: { module, entryPoint: "main" }, label: spec.name });
    } catch (error) {
      if (state.lost) throw new GpuconvError("lost", "the WebGPU device was lost while compiling " + spec.name);
      // The shader compiler's first error says more than the pipeline's "invalid module": lead with it.
      let messages = [];
      try {
        messages = (await module.getCompilationInfo()).messages;
      } catch (ignored) { /* the pipeline's own message is still there */ }
      const lines = messages.map((m) => m.type + " at line " + m.lineNum + ":" + m.linePos + ": " + m.message);
      const first = messages.findIndex((m) => m.type === "error");
      const reason = first >= 0 ? lines[first] : (error.message || String(error));
      throw new GpuconvError("webgpu", spec.name + ": WebGPU refused the program: " + reason,
                             { name: spec.name, log: lines.concat([error.message || String(error)]).join("\n") });
    }
    return { id: spec.id, entry: { pipeline, name: spec.name, inputs } };
  }

  // Make every program of specs the page lacks, all at once; the first failure is thrown
  // after all have settled, so none is left half made.
  async function compileMany(specs) {
    const wanted = new Map();
    for (const spec of specs) if (!state.pipelines.has(spec.id) && !wanted.has(spec.id)) wanted.set(spec.id, spec);
    const settled = await Promise.allSettled([...wanted.values()].map(makePipeline));
    let failure = null;
    for (const result of settled) {
      if (result.status === "fulfilled") state.pipelines.set(result.value.id, result.value.entry);
      else failure = failure || result.reason;
    }
    if (failure) throw failure;
    await checkErrors();  // a shader module's validation error, if the pipeline still came
    return wanted.size;
  }

  async function compile(op) {
    return { compiled: await compileMany(op.programs), parallel: true };
  }

  // ---- dispatches -----------------------------------------------------------------------------
  // The draw's command buffer: its output buffers made (and cleared where asked), its inputs then
  // its output bound in binding order, its grid dispatched; timestampWrites, when given, time the pass.
  function encodeDraw(op, timestampWrites) {
    const entry = state.pipelines.get(op.program.id);
    if (!entry) throw new GpuconvError("error", "program " + op.program.id + " is not in the page");
    const inputs = op.inputs.map(buffer);
    const outputs = op.outputs.map((o) => newBuffer(o.id, o.bytes, o.count, entry.name));
    const bound = inputs.concat(outputs);
    if (bound.length !== entry.inputs + 1) {
      throw new GpuconvError("error", entry.name + " binds " + (entry.inputs + 1) + " buffers, got " + bound.length);
    }
    return scoped(entry.name, "dispatch", () => {
      const device = state.device;
      const group = device.createBindGroup({
        layout: layoutFor(entry.inputs).bindGroupLayout,
        entries: bound.map((b, binding) => ({ binding, resource: { buffer: b.buffer } })),
      });
      const encoder = device.createCommandEncoder({ label: entry.name });
      // a buffer of halves is ORed into word by word: cleared first, not trusting the new buffer's zeros
      op.outputs.forEach((o, i) => { if (o.clear) encoder.clearBuffer(outputs[i].buffer); });
      const pass = encoder.beginComputePass(timestampWrites ? { timestampWrites } : {});
      pass.setPipeline(entry.pipeline);
      pass.setBindGroup(0, group);
      pass.dispatchWorkgroups(op.dispatch[0], op.dispatch[1], op.dispatch[2]);
      pass.end();
      return encoder;
    });
  }

  function draw(op) {
    const encoder = encodeDraw(op, null);
    const name = state.pipelines.get(op.program.id).name;
    // Most of a dispatch's validation happens as its command buffer is finished: same label.
    scoped(name, "dispatch", () => state.device.queue.submit([encoder.finish()]));
    return null;
  }

  // One dispatch timed: by timestamp queries around its pass where the device has them, else by
  // the page's clock from submission to onSubmittedWorkDone (the queue drained first).
  async function timedDraw(op) {
    const device = state.device;
    await finish();
    const name = state.pipelines.get(op.program.id).name;
    if (state.timestamps) {
      const querySet = device.createQuerySet({ type: "timestamp", count: 2 });
      const resolved = device.createBuffer({ size: 16, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
      const mapped = device.createBuffer({ size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
      try {
        const encoder = encodeDraw(op, { querySet, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 });
        encoder.resolveQuerySet(querySet, 0, 2, resolved, 0);
        encoder.copyBufferToBuffer(resolved, 0, mapped, 0, 16);
        scoped(name, "dispatch", () => device.queue.submit([encoder.finish()]));
        await checkErrors();
        await mapped.mapAsync(GPUMapMode.READ);
        const [begin, end] = new BigUint64Array(mapped.getMappedRange());
        mapped.unmap();
        return { seconds: end >= begin ? Number(end - begin) * 1e-9 : 0, how: "GPU timestamp query (ns)" };
      } finally {
        querySet.destroy();
        resolved.destroy();
        mapped.destroy();
      }
    }
    const encoder = encodeDraw(op, null);
    const start = performance.now();
    scoped(name, "dispatch", () => device.queue.submit([encoder.finish()]));
    await device.queue.onSubmittedWorkDone();
    const seconds = (performance.now() - start) * 1e-3;
    await checkErrors();
    return { seconds, how: "wall time in the page (submit to onSubmittedWorkDone; no timestamp-query)" };
  }

  function emptyPool() {  // destroy the buffers kept for reuse
    for (const buffers of pool.values()) for (const kept of buffers) kept.destroy();
    pool.clear();
    pooledBytes = 0;
    return null;
  }

  const OPS = { init, upload, draw, timed_draw: timedDraw, read, finish, describe, compile, empty_pool: emptyPool };

  const LOST = () => ({ ok: false, kind: "lost", reason: state.lost.reason,
                        message: "the WebGPU device was lost (" + (state.lost.reason || "unknown") + ": " +
                          (state.lost.message || "no message") + ")" });

  async function call(message) {
    try {
      if (state.lost) return LOST();
      if (message.drop) {
        for (const id of message.drop.programs || []) state.pipelines.delete(id);
        for (const id of message.drop.textures || []) destroy(id);
      }
      const results = [];
      blobBytes = message.blob_bytes || 0;
      try {
        const ops = message.ops || [];
        await transfer.receive(ops);
        if (!state.device && ops.some((op) => op.op !== "init")) {
          throw new GpuconvError("error", "the page has no WebGPU device yet");
        }
        // Every program the call's dispatches need and the page lacks, made at once.
        const fresh = ops.filter((op) => (op.op === "draw" || op.op === "timed_draw") && op.program.source !== undefined)
          .map((op) => op.program);
        if (fresh.length) await compileMany(fresh);
        for (const op of ops) {
          const run = OPS[op.op];
          if (!run) throw new GpuconvError("error", "unknown operation " + op.op);
          const result = run(op);
          results.push(result instanceof Promise ? await result : result);
        }
        if (state.device) await checkErrors();
        transfer.flush();  // the call's large read-backs, as one download
      } finally {
        for (const id of message.free || []) destroy(id);
      }
      if (state.lost) return LOST();
      return { ok: true, results };
    } catch (error) {
      transfer.discard();
      state.pending = [];  // what failed may leave scopes whose errors are this one's consequences
      if (state.lost) return LOST();
      if (error instanceof GpuconvError) {
        return Object.assign({ ok: false, kind: error.kind, message: error.message }, error.extra);
      }
      return { ok: false, kind: "error", message: String(error && error.stack || error) };
    }
  }

  // For tests: lose the device as a crashed GPU process would (device.destroy() resolves device.lost).
  async function loseDevice() {
    state.device.destroy();
    await state.device.lost;
    return state.lost;
  }

  globalThis.gpuconv = { call, loseDevice };
})();
