// gpuconv's page in headless Chromium: one WebGL2 context and what gpuconv keeps in it.
//
// gpuconv.runtimes.browser loads this script into a page of its own server and drives it through
// Playwright with one entry point, gpuconv.call(message): message.ops is a list of
// operations run in order (init, upload, draw, read, finish), message.drop the programs
// and textures to delete first, message.free the textures to delete last (even after
// an error).  A deleted texture goes to a pool (keyed by size and internal format, at most
// POOL_BYTES, least recently freed ones deleted beyond it) that later uploads and draws take
// from: WebGL zero-fills every new texture, which cost more than the draw into it (8 new
// 448x112 RGBA32F outputs: 11.2 ms against 1.3 ms reused); info() reports live and pooled
// textures apart.  Every call answers {ok: true, results: [...]} (one entry per op) or
// {ok: false, kind, message, ...} (after a short wait when the WebGL context may be being
// lost); it never throws.  Arrays cross as little-endian float32 bytes (an upload to a
// half-float texture: float16 bytes, rounded by gpuconv; read-backs are always float32), inline
// as base64 or outside the message (browser_transfer.js).  A texture's storage is "float32"
// (R32F/RGBA32F) or "float16" (R16F/RGBA16F, as TF.js stores tensors on devices without
// float32 render targets).
"use strict";

(() => {
  const state = {
    gl: null,
    canvas: null,
    lost: false,
    vertexShader: null,
    vao: null,
    framebuffer: null,       // the one draw framebuffer (stays bound to DRAW_FRAMEBUFFER)
    readFramebuffer: null,   // for readPixels of one texture (stays bound to READ_FRAMEBUFFER)
    drawAttached: [],        // the texture at each color attachment of the draw framebuffer
    readAttached: null,      // the texture attached to the read framebuffer
    programs: new Map(),     // program id -> {program, uniforms: name -> {location, type}, name}
    textures: new Map(),     // texture id -> {texture, cols, rows, components}
    scratch: null,           // a 1x1 RGBA32F texture: finish() reads a pixel of it
    lastOutput: null,        // the id of the last texture drawn into
    readFormats: new Map(),  // components -> [format, type, channels] for readPixels
    completeFormats: new Set(),  // render-target formats ("4f,4f") the framebuffer was complete with
    pool: new Map(),         // "cols,rows,components,half" -> [texture entry] freed, kept for reuse
    pooled: new Set(),       // every pooled entry, least recently freed first (for the bound)
    pooledBytes: 0,
  };

  // Bytes of freed textures the pool keeps at most (gpuconv.BrowserRuntime passes its own).
  let POOL_BYTES = 256 * 1024 * 1024;

  class GpuconvError extends Error {
    constructor(kind, message, extra) {
      super(message);
      this.kind = kind;
      this.extra = extra || {};
    }
  }

  const transfer = globalThis.gpuconvTransfer;  // browser_transfer.js
  let blobBytes = 0;  // read-backs of at least this many bytes leave as the call's download

  // ---- set-up -------------------------------------------------------------------
  const EXTENSIONS = ["EXT_color_buffer_float", "EXT_float_blend", "OES_texture_float_linear",
                      "EXT_color_buffer_half_float", "KHR_parallel_shader_compile"];

  function init(op) {
    if (state.gl) return describe();
    const canvas = typeof OffscreenCanvas === "function" ? new OffscreenCanvas(1, 1)
                                                          : document.createElement("canvas");
    const gl = canvas.getContext("webgl2", {
      alpha: false, antialias: false, depth: false, stencil: false, premultipliedAlpha: false,
      preserveDrawingBuffer: false, powerPreference: "high-performance",
    });
    if (!gl) throw new GpuconvError("unavailable", "this Chromium gives no WebGL2 context");
    canvas.addEventListener("webglcontextlost", (event) => { state.lost = true; event.preventDefault(); });
    if (!gl.getExtension("EXT_color_buffer_float")) {
      throw new GpuconvError("unavailable",
        "this WebGL2 context lacks EXT_color_buffer_float: it cannot render to float32 textures, " +
        "which gpuconv needs (renderer: " + renderer(gl) + ")");
    }
    state.gl = gl;
    state.canvas = canvas;
    gl.pixelStorei(gl.UNPACK_ALIGNMENT, 1);
    gl.pixelStorei(gl.PACK_ALIGNMENT, 1);
    gl.disable(gl.BLEND);
    gl.disable(gl.DEPTH_TEST);
    gl.disable(gl.DITHER);

    const vs = gl.createShader(gl.VERTEX_SHADER);
    gl.shaderSource(vs, op.vertex);
    gl.compileShader(vs);
    if (!gl.getShaderParameter(vs, gl.COMPILE_STATUS)) {
      throw new GpuconvError("compile", "the vertex shader did not compile",
                             { name: "vertex", log: gl.getShaderInfoLog(vs) || "" });
    }
    state.vertexShader = vs;

    const buffer = gl.createBuffer();
    gl.bindBuffer(gl.ARRAY_BUFFER, buffer);
    gl.bufferData(gl.ARRAY_BUFFER, new Float32Array([-1, -1, 1, -1, -1, 1, 1, 1]), gl.STATIC_DRAW);
    state.vao = gl.createVertexArray();
    gl.bindVertexArray(state.vao);
    gl.enableVertexAttribArray(0);  // every program binds clipSpacePos to location 0
    gl.vertexAttribPointer(0, 2, gl.FLOAT, false, 0, 0);

    if (typeof op.pool_bytes === "number") POOL_BYTES = op.pool_bytes;
    state.framebuffer = gl.createFramebuffer();
    state.readFramebuffer = gl.createFramebuffer();
    state.scratch = makeTexture(1, 1, 4, null);
    state.halfFloatRender = halfRenderable();
    return describe();
  }

  // Whether R16F and RGBA16F textures are complete render targets (EXT_color_buffer_float makes
  // them so in WebGL2; EXT_color_buffer_half_float where only that one is offered).
  function halfRenderable() {
    const gl = state.gl;
    gl.getExtension("EXT_color_buffer_half_float");
    let ok = true;
    for (const components of [1, 4]) {
      const made = makeTexture(1, 1, components, null, "float16");
      gl.bindFramebuffer(gl.FRAMEBUFFER, state.framebuffer);
      gl.framebufferTexture2D(gl.FRAMEBUFFER, gl.COLOR_ATTACHMENT0, gl.TEXTURE_2D, made.texture, 0);
      ok = ok && gl.checkFramebufferStatus(gl.FRAMEBUFFER) === gl.FRAMEBUFFER_COMPLETE;
      gl.framebufferTexture2D(gl.FRAMEBUFFER, gl.COLOR_ATTACHMENT0, gl.TEXTURE_2D, null, 0);
      gl.bindFramebuffer(gl.FRAMEBUFFER, null);
      gl.deleteTexture(made.texture);
    }
    return ok;
  }

  function renderer(gl) {
    const debug = gl.getExtension("WEBGL_debug_renderer_info");
    return debug ? gl.getParameter(debug.UNMASKED_RENDERER_WEBGL) : gl.getParameter(gl.RENDERER);
  }

  function describe() {
    const gl = state.gl;
    const debug = gl.getExtension("WEBGL_debug_renderer_info");
    const supported = gl.getSupportedExtensions() || [];
    const extensions = {};
    for (const name of EXTENSIONS) extensions[name] = supported.includes(name);
    return {
      renderer: debug ? gl.getParameter(debug.UNMASKED_RENDERER_WEBGL) : null,
      vendor: debug ? gl.getParameter(debug.UNMASKED_VENDOR_WEBGL) : null,
      webgl_renderer: gl.getParameter(gl.RENDERER),
      webgl_vendor: gl.getParameter(gl.VENDOR),
      version: gl.getParameter(gl.VERSION),
      shading_language_version: gl.getParameter(gl.SHADING_LANGUAGE_VERSION),
      max_texture_size: gl.getParameter(gl.MAX_TEXTURE_SIZE),
      max_draw_buffers: gl.getParameter(gl.MAX_DRAW_BUFFERS),
      max_color_attachments: gl.getParameter(gl.MAX_COLOR_ATTACHMENTS),
      max_texture_image_units: gl.getParameter(gl.MAX_TEXTURE_IMAGE_UNITS),
      extensions: extensions,
      supported_extensions: supported,
      programs: state.programs.size,
      textures: state.textures.size,
      pooled_textures: state.pooled.size,
      pooled_bytes: state.pooledBytes,
      pool_bytes_limit: POOL_BYTES,
      half_float_render: !!state.halfFloatRender,
    };
  }

  // ---- textures -----------------------------------------------------------------
  function makeTexture(cols, rows, components, floats, storage) {
    const half = storage === "float16";
    const gl = state.gl;
    const texture = gl.createTexture();
    gl.bindTexture(gl.TEXTURE_2D, texture);
    gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_MIN_FILTER, gl.NEAREST);
    gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_MAG_FILTER, gl.NEAREST);
    gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_WRAP_S, gl.CLAMP_TO_EDGE);
    gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_WRAP_T, gl.CLAMP_TO_EDGE);
    const internal = half ? (components === 4 ? gl.RGBA16F : gl.R16F) : (components === 4 ? gl.RGBA32F : gl.R32F);
    gl.texStorage2D(gl.TEXTURE_2D, 1, internal, cols, rows);
    if (floats) {  // a Float32Array, or (half) a Uint16Array of float16 bits
      const format = components === 4 ? gl.RGBA : gl.RED;
      gl.texSubImage2D(gl.TEXTURE_2D, 0, 0, 0, cols, rows, format, half ? gl.HALF_FLOAT : gl.FLOAT, floats);
    }
    gl.bindTexture(gl.TEXTURE_2D, null);
    return { texture, cols, rows, components, half, bytes: cols * rows * components * (half ? 2 : 4) };
  }

  function poolKey(cols, rows, components, half) {
    return cols + "," + rows + "," + components + "," + (half ? "h" : "f");
  }

  // A pooled texture of this size and format (its old texels still there), or a new one.
  function takeTexture(cols, rows, components, storage) {
    const half = storage === "float16";
    const stack = state.pool.get(poolKey(cols, rows, components, half));
    if (stack && stack.length) {
      const entry = stack.pop();
      state.pooled.delete(entry);
      state.pooledBytes -= entry.bytes;
      return entry;
    }
    return makeTexture(cols, rows, components, null, storage);
  }

  // Delete a texture for good, detached first from the framebuffers that keep it attached
  // between draws (an attachment would keep it alive).
  function destroyTexture(entry) {
    const gl = state.gl;
    const slot = state.drawAttached.indexOf(entry.texture);
    if (slot >= 0) {
      gl.bindFramebuffer(gl.DRAW_FRAMEBUFFER, state.framebuffer);
      gl.framebufferTexture2D(gl.DRAW_FRAMEBUFFER, gl.COLOR_ATTACHMENT0 + slot, gl.TEXTURE_2D, null, 0);
      state.drawAttached[slot] = null;
    }
    if (state.readAttached === entry.texture) {
      gl.bindFramebuffer(gl.READ_FRAMEBUFFER, state.readFramebuffer);
      gl.framebufferTexture2D(gl.READ_FRAMEBUFFER, gl.COLOR_ATTACHMENT0, gl.TEXTURE_2D, null, 0);
      state.readAttached = null;
    }
    gl.deleteTexture(entry.texture);
  }

  function poolTexture(entry) {
    if (entry.bytes > POOL_BYTES) { destroyTexture(entry); return; }
    const key = poolKey(entry.cols, entry.rows, entry.components, entry.half);
    let stack = state.pool.get(key);
    if (!stack) state.pool.set(key, stack = []);
    stack.push(entry);
    state.pooled.add(entry);
    state.pooledBytes += entry.bytes;
    while (state.pooledBytes > POOL_BYTES) {
      const oldest = state.pooled.values().next().value;
      state.pooled.delete(oldest);
      const list = state.pool.get(poolKey(oldest.cols, oldest.rows, oldest.components, oldest.half));
      list.splice(list.indexOf(oldest), 1);
      state.pooledBytes -= oldest.bytes;
      destroyTexture(oldest);
    }
  }

  function emptyPool() {
    if (state.gl) for (const entry of state.pooled) destroyTexture(entry);
    state.pool.clear();
    state.pooled.clear();
    state.pooledBytes = 0;
    return null;
  }

  function texture(id) {
    const entry = state.textures.get(id);
    if (!entry) throw new GpuconvError("error", "no texture " + id + " in the page (freed already?)");
    return entry;
  }

  function upload(op) {
    if (state.textures.has(op.id)) throw new GpuconvError("error", "texture " + op.id + " exists already");
    const half = op.storage === "float16";
    const bytes = op.payload;  // float16 bits as Uint16 (uploaded as HALF_FLOAT), else float32
    const floats = half ? new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 2)
                        : new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
    const expected = op.cols * op.rows * op.components;
    if (floats.length !== expected) {
      throw new GpuconvError("error", "texture " + op.id + ": got " + floats.length + " values, expected " + expected);
    }
    const entry = takeTexture(op.cols, op.rows, op.components, op.storage);
    const gl = state.gl;
    gl.bindTexture(gl.TEXTURE_2D, entry.texture);
    gl.texSubImage2D(gl.TEXTURE_2D, 0, 0, 0, op.cols, op.rows, op.components === 4 ? gl.RGBA : gl.RED,
                     half ? gl.HALF_FLOAT : gl.FLOAT, floats);
    gl.bindTexture(gl.TEXTURE_2D, null);
    state.textures.set(op.id, entry);
    return null;
  }

  function deleteTexture(id) {
    const entry = state.textures.get(id);
    if (!entry) return;
    state.textures.delete(id);
    poolTexture(entry);  // deleted for good once the pool is full (or on release: emptyPool)
    if (state.lastOutput === id) state.lastOutput = null;
  }

  // How readPixels may read a float texture with this many components: RGBA/FLOAT always
  // works (half-float textures too, read as float32); the implementation's own format
  // (RED/FLOAT for R32F on most) reads 4x less.
  function readFormat(components, half) {
    const gl = state.gl;
    if (half) return [gl.RGBA, gl.FLOAT, 4];
    let cached = state.readFormats.get(components);
    if (cached) return cached;
    cached = [gl.RGBA, gl.FLOAT, 4];
    if (components === 1) {
      const format = gl.getParameter(gl.IMPLEMENTATION_COLOR_READ_FORMAT);
      const type = gl.getParameter(gl.IMPLEMENTATION_COLOR_READ_TYPE);
      if (format === gl.RED && type === gl.FLOAT) cached = [gl.RED, gl.FLOAT, 1];
    }
    state.readFormats.set(components, cached);
    return cached;
  }

  // The read framebuffer keeps its texture attached after the read: re-attaching makes ANGLE
  // and the driver validate the framebuffer again in the GPU process (finish() reads the same
  // output texture run after run).
  function readTexels(entry, cols, rows) {
    const gl = state.gl;
    gl.bindFramebuffer(gl.READ_FRAMEBUFFER, state.readFramebuffer);
    if (state.readAttached !== entry.texture) {
      gl.framebufferTexture2D(gl.READ_FRAMEBUFFER, gl.COLOR_ATTACHMENT0, gl.TEXTURE_2D, entry.texture, 0);
      state.readAttached = entry.texture;
    }
    const [format, type, channels] = readFormat(entry.components, entry.half);
    const pixels = new Float32Array(cols * rows * channels);
    gl.readPixels(0, 0, cols, rows, format, type, pixels);
    if (channels === entry.components) return pixels;
    const out = new Float32Array(cols * rows);  // R32F read as RGBA: keep the red channel
    for (let i = 0; i < out.length; i++) out[i] = pixels[i * 4];
    return out;
  }

  function read(op) {
    const entry = texture(op.id);
    const floats = readTexels(entry, entry.cols, entry.rows);
    return transfer.send(new Uint8Array(floats.buffer, floats.byteOffset, floats.byteLength), blobBytes);
  }

  function finish() {
    // Chromium's gl.finish() only flushes (and costs a synchronous round trip to the GPU
    // process); reading a pixel of the last output waits until the GPU has drawn it.
    const entry = state.lastOutput !== null && state.textures.has(state.lastOutput)
      ? state.textures.get(state.lastOutput) : state.scratch;
    readTexels(entry, 1, 1);
    return null;
  }

  // ---- programs -----------------------------------------------------------------
  // Compiling is two halves, so that several programs can be compiled at once: start hands
  // the sources to the driver; finish asks for the link status (which waits for the compile)
  // and looks the uniforms up.
  function startCompile(spec) {
    const gl = state.gl;
    const fs = gl.createShader(gl.FRAGMENT_SHADER);
    gl.shaderSource(fs, spec.source);
    gl.compileShader(fs);
    const program = gl.createProgram();
    gl.attachShader(program, state.vertexShader);
    gl.attachShader(program, fs);
    gl.bindAttribLocation(program, 0, "clipSpacePos");
    gl.linkProgram(program);
    return { spec, fs, program };
  }

  function finishCompile({ spec, fs, program }) {
    const gl = state.gl;
    if (!gl.getProgramParameter(program, gl.LINK_STATUS)) {
      const log = (gl.getShaderInfoLog(fs) || "") + (gl.getProgramInfoLog(program) || "");
      const compiled = gl.getShaderParameter(fs, gl.COMPILE_STATUS);
      gl.deleteProgram(program);
      gl.deleteShader(fs);
      throw new GpuconvError("compile", spec.name + (compiled ? " did not link" : " did not compile"),
                             { name: spec.name, log: log.trim() });
    }
    gl.detachShader(program, fs);
    gl.deleteShader(fs);
    const uniforms = new Map();
    const count = gl.getProgramParameter(program, gl.ACTIVE_UNIFORMS);
    for (let i = 0; i < count; i++) {
      const info = gl.getActiveUniform(program, i);
      const name = info.name.endsWith("[0]") ? info.name.slice(0, -3) : info.name;
      uniforms.set(name, { location: gl.getUniformLocation(program, info.name), type: info.type });
    }
    gl.useProgram(program);
    // A sampler reads texture unit = its input's position (the compiler may have dropped some).
    spec.samplers.forEach((name, unit) => {
      const uniform = uniforms.get(name);
      if (uniform) gl.uniform1i(uniform.location, unit);
    });
    const entry = { program, uniforms, name: spec.name, samplers: spec.samplers.length };
    state.programs.set(spec.id, entry);
    return entry;
  }

  function compile(spec) {
    return finishCompile(startCompile(spec));
  }

  // Compile several programs at once: every source goes to the driver before any status is
  // asked, and with KHR_parallel_shader_compile the page polls COMPLETION_STATUS_KHR (yielding
  // to the event loop) instead of blocking on each link in turn, so that the browser may
  // compile them in parallel.  Answers how many it compiled and whether it could poll.
  async function compileMany(op) {
    const gl = state.gl;
    const parallel = gl.getExtension("KHR_parallel_shader_compile");
    const started = op.programs.filter((spec) => !state.programs.has(spec.id)).map(startCompile);
    if (parallel) {
      const waiting = new Set(started);
      while (waiting.size) {
        for (const item of waiting) {
          if (gl.getProgramParameter(item.program, parallel.COMPLETION_STATUS_KHR)) waiting.delete(item);
        }
        if (waiting.size) await new Promise((resolve) => setTimeout(resolve, 1));
        if (gl.isContextLost()) throw new GpuconvError("lost", "the WebGL context was lost while compiling");
      }
    }
    let failure = null;
    for (const item of started) {  // finish all, so that none is left half made
      try { finishCompile(item); } catch (error) { failure = failure || error; }
    }
    if (failure) throw failure;
    return { compiled: started.length, parallel: !!parallel };
  }
  function setUniform(gl, uniform, value) {
    const v = Array.isArray(value) ? value : [value];
    switch (uniform.type) {
      case gl.FLOAT: gl.uniform1f(uniform.location, v[0]); break;
      case gl.FLOAT_VEC2: gl.uniform2f(uniform.location, v[0], v[1]); break;
      case gl.FLOAT_VEC3: gl.uniform3f(uniform.location, v[0], v[1], v[2]); break;
      case gl.FLOAT_VEC4: gl.uniform4f(uniform.location, v[0], v[1], v[2], v[3]); break;
      case gl.INT: case gl.BOOL: gl.uniform1i(uniform.location, v[0]); break;
      case gl.INT_VEC2: case gl.BOOL_VEC2: gl.uniform2i(uniform.location, v[0], v[1]); break;
      case gl.INT_VEC3: case gl.BOOL_VEC3: gl.uniform3i(uniform.location, v[0], v[1], v[2]); break;
      case gl.INT_VEC4: case gl.BOOL_VEC4: gl.uniform4i(uniform.location, v[0], v[1], v[2], v[3]); break;
      case gl.UNSIGNED_INT: gl.uniform1ui(uniform.location, v[0]); break;
      case gl.UNSIGNED_INT_VEC2: gl.uniform2ui(uniform.location, v[0], v[1]); break;
      default:
        throw new GpuconvError("error", "uniform of unsupported type 0x" + uniform.type.toString(16));
    }
  }

  function draw(op) {
    const gl = state.gl;
    const entry = op.program.source !== undefined ? compile(op.program) : state.programs.get(op.program.id);
    if (!entry) throw new GpuconvError("error", "program " + op.program.id + " is not in the page");
    gl.useProgram(entry.program);
    for (const [name, value] of Object.entries(op.uniforms)) {
      const uniform = entry.uniforms.get(name);
      if (!uniform) continue;
      // A program keeps its uniforms: set only those that changed since its last draw
      // (each WebGL call is validated and serialized into Chromium's command buffer).
      const key = Array.isArray(value) ? value.join(",") : String(value);
      if (uniform.last === key) continue;
      setUniform(gl, uniform, value);
      uniform.last = key;
    }
    const outputs = op.outputs.map((o) => {
      if (state.textures.has(o.id)) throw new GpuconvError("error", "texture " + o.id + " exists already");
      const made = takeTexture(o.cols, o.rows, o.components, o.storage);
      state.textures.set(o.id, made);
      return made;
    });
    // The draw framebuffer stays bound with its attachments between draws, and only those that
    // change are set: every attachment change makes ANGLE and the driver validate the
    // framebuffer again in the GPU process (the texture pool hands a layer's run the same
    // output textures as the run before).  Attachments beyond this draw's outputs are cleared,
    // so that no input can be a render target too.
    gl.bindFramebuffer(gl.DRAW_FRAMEBUFFER, state.framebuffer);
    const attached = state.drawAttached;
    const count = attached.length;
    outputs.forEach((made, i) => {
      if (attached[i] === made.texture) return;
      gl.framebufferTexture2D(gl.DRAW_FRAMEBUFFER, gl.COLOR_ATTACHMENT0 + i, gl.TEXTURE_2D, made.texture, 0);
      attached[i] = made.texture;
    });
    for (let i = outputs.length; i < count; i++) {
      if (attached[i]) gl.framebufferTexture2D(gl.DRAW_FRAMEBUFFER, gl.COLOR_ATTACHMENT0 + i, gl.TEXTURE_2D, null, 0);
    }
    attached.length = outputs.length;
    if (outputs.length !== count) gl.drawBuffers(outputs.map((_, i) => gl.COLOR_ATTACHMENT0 + i));
    // checkFramebufferStatus is a synchronous round trip to Chromium's GPU process (it stalls
    // the command stream): ask once per combination of render-target formats, as TF.js asks
    // only in debug mode.
    const formats = outputs.map((made) => made.components + (made.half ? "h" : "f")).join(",");
    const status = state.completeFormats.has(formats) ? gl.FRAMEBUFFER_COMPLETE
      : gl.checkFramebufferStatus(gl.DRAW_FRAMEBUFFER);
    if (status === gl.FRAMEBUFFER_COMPLETE) state.completeFormats.add(formats);
    if (status !== gl.FRAMEBUFFER_COMPLETE) {
      throw new GpuconvError("error", entry.name + ": the framebuffer of its " + outputs.length +
                             (outputs[0] && outputs[0].half ? " half-float" : " float32") +
                             " render targets is incomplete (status 0x" + status.toString(16) + ")");
    }
    op.inputs.forEach((id, unit) => {
      gl.activeTexture(gl.TEXTURE0 + unit);
      gl.bindTexture(gl.TEXTURE_2D, texture(id).texture);
    });
    gl.viewport(0, 0, op.outputs[0].cols, op.outputs[0].rows);
    gl.bindVertexArray(state.vao);
    // The inputs stay bound too (deleting a texture unbinds it; a program samples only the
    // units of its own inputs, which every draw binds).
    gl.drawArrays(gl.TRIANGLE_STRIP, 0, 4);
    state.lastOutput = op.outputs[op.outputs.length - 1].id;
    return null;
  }

  const OPS = { init, upload, draw, read, finish, describe, compile: compileMany, empty_pool: emptyPool };

  async function call(message) {
    try {
      if (state.gl && (state.lost || state.gl.isContextLost())) return LOST;
      if (message.drop) {
        for (const id of message.drop.programs || []) {
          const entry = state.programs.get(id);
          if (entry) { state.gl.deleteProgram(entry.program); state.programs.delete(id); }
        }
        for (const id of message.drop.textures || []) deleteTexture(id);
      }
      const results = [];
      blobBytes = message.blob_bytes || 0;
      try {
        await transfer.receive(message.ops || []);
        for (const op of message.ops || []) {
          const run = OPS[op.op];
          if (!run) throw new GpuconvError("error", "unknown operation " + op.op);
          if (!state.gl && op.op !== "init") throw new GpuconvError("error", "the page has no WebGL context yet");
          const result = run(op);
          results.push(result instanceof Promise ? await result : result);
        }
        transfer.flush();  // the call's large read-backs, as one download
      } finally {
        for (const id of message.free || []) deleteTexture(id);
      }
      if (state.gl && state.gl.isContextLost()) return LOST;
      return { ok: true, results };
    } catch (error) {
      transfer.discard();
      const failure = error instanceof GpuconvError
        ? Object.assign({ ok: false, kind: error.kind, message: error.message }, error.extra)
        : { ok: false, kind: "error", message: String(error && error.stack || error) };
      if (!state.gl || failure.kind !== "error") return failure;
      // An unexpected failure (an incomplete framebuffer, say) may be a context that is being
      // lost: the page hears of a crashed GPU process a little later, so let it.
      return new Promise((resolve) => setTimeout(() => resolve(isLost() ? LOST : failure), 100));
    }
  }

  const LOST = { ok: false, kind: "lost", message: "the WebGL context was lost (did Chromium's GPU process crash?)" };

  function isLost() {
    const gl = state.gl;
    return state.lost || gl.isContextLost() || gl.getError() === gl.CONTEXT_LOST_WEBGL;
  }

  globalThis.gpuconv = { call };
})();
