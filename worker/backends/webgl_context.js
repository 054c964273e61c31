// The WebGL2 machinery under worker/backends/webgl.js: an OffscreenCanvas context
// (works in a Web Worker and on a page), R32F textures holding flat tensors, the
// program cache, one draw per kernel, and asynchronous readback.
//
// Texture layout: flat row-major data, `texWidth` texels per row (MAX_TEXTURE_SIZE),
// a tensor smaller than one row being a single row of its own length; so the
// texel of flat index i is (i % texWidth, i / texWidth) for every tensor, and a
// kernel needs no per-tensor layout uniform (shaders/common.glsl).

export const MAX_RANK = 8;

const VERTEX_KERNEL = "fullscreen";
// Every fragment kernel in shaders/ (fetched once, compiled on first use).
export const KERNELS = [
  "unary", "binary", "where", "cast", "fill", "matmul", "reduce", "argmax", "cumsum",
  "row_stats", "softmax", "norm", "gather", "take_along", "view", "set_slice", "concat",
  "topk", "rotary", "attention_scores", "attention_values",
];
const SOFTWARE_RENDERERS = /swiftshader|llvmpipe|softpipe|software|basic render driver/i;
// Freed textures kept for reuse (allocation churn is costly); beyond this many
// bytes the oldest are deleted.
const POOL_BYTES = 64 * 1024 * 1024;

async function fetchSources() {
  const names = [VERTEX_KERNEL, "common", ...KERNELS];
  const texts = await Promise.all(names.map(async (name) => {
    const url = new URL(`../../shaders/${name}.glsl`, import.meta.url);
    const response = await fetch(url);
    if (!response.ok) throw new Error(`cannot load shader ${url}: HTTP ${response.status}`);
    return response.text();
  }));
  return Object.fromEntries(names.map((name, i) => [name, texts[i]]));
}

function createContext() {
  if (typeof OffscreenCanvas === "undefined") {
    throw new Error("WebGL2 backend needs OffscreenCanvas, which this browser lacks");
  }
  const gl = new OffscreenCanvas(1, 1).getContext("webgl2", {
    alpha: true, depth: false, stencil: false, antialias: false,
    premultipliedAlpha: false, preserveDrawingBuffer: false, powerPreference: "high-performance",
  });
  if (!gl) throw new Error("WebGL2 is not available in this browser");
  if (!gl.getExtension("EXT_color_buffer_float")) {
    throw new Error("WebGL2 backend needs EXT_color_buffer_float (render to float textures)");
  }
  return gl;
}

export class GLContext {
  static async create() {
    const [gl, sources] = [createContext(), await fetchSources()];
    return new GLContext(gl, sources);
  }

  constructor(gl, sources) {
    this.gl = gl;
    this.sources = sources;
    this.texWidth = gl.getParameter(gl.MAX_TEXTURE_SIZE);
    this.programs = new Map();
    this.pool = new Map(); // "w x h" -> [WebGLTexture]
    this.poolOrder = [];
    this.poolBytes = 0;
    this.framebuffer = gl.createFramebuffer();
    this.attached = 0; // color attachments currently on the framebuffer
    this.vertexShader = this._compile(gl.VERTEX_SHADER, `#version 300 es\n${sources[VERTEX_KERNEL]}`, VERTEX_KERNEL);
    gl.disable(gl.DEPTH_TEST);
    gl.disable(gl.BLEND);
    gl.disable(gl.DITHER);
    gl.pixelStorei(gl.UNPACK_ALIGNMENT, 1);
    gl.pixelStorei(gl.PACK_ALIGNMENT, 1);
    this.readRed = this._supportsRedReadback();
  }

  get renderer() {
    const gl = this.gl;
    const info = gl.getExtension("WEBGL_debug_renderer_info");
    const unmasked = info ? gl.getParameter(info.UNMASKED_RENDERER_WEBGL) : "";
    return `${unmasked || ""} ${gl.getParameter(gl.RENDERER) || ""}`.trim();
  }

  get isSoftware() {
    return SOFTWARE_RENDERERS.test(this.renderer);
  }

  // -- textures --------------------------------------------------------------
  // A texture record: {texture, width, height, size, refs}. `refs` counts the
  // tensors sharing it (reshape and value-preserving casts share their input's).
  allocate(size) {
    const width = Math.max(1, Math.min(size, this.texWidth));
    const height = Math.max(1, Math.ceil(size / this.texWidth));
    if (height > this.texWidth) {
      throw new Error(`tensor of ${size} elements exceeds the WebGL2 limit of ` +
                      `${this.texWidth * this.texWidth} (MAX_TEXTURE_SIZE ${this.texWidth})`);
    }
    return { texture: this._texture(width, height), width, height, size, refs: 1 };
  }

  release(record) {
    record.refs -= 1;
    if (record.refs > 0) return;
    const key = `${record.width}x${record.height}`;
    if (!this.pool.has(key)) this.pool.set(key, []);
    this.pool.get(key).push(record.texture);
    this.poolOrder.push([key, record.texture]);
    this.poolBytes += record.width * record.height * 4;
    while (this.poolBytes > POOL_BYTES && this.poolOrder.length) {
      const [oldKey, texture] = this.poolOrder.shift();
      const list = this.pool.get(oldKey);
      const at = list.indexOf(texture);
      if (at < 0) continue; // already reused
      list.splice(at, 1);
      const [w, h] = oldKey.split("x").map(Number);
      this.poolBytes -= w * h * 4;
      this.gl.deleteTexture(texture);
    }
  }

  _texture(width, height) {
    const key = `${width}x${height}`;
    const pooled = this.pool.get(key);
    if (pooled && pooled.length) {
      this.poolBytes -= width * height * 4;
      return pooled.pop();
    }
    const gl = this.gl;
    const texture = gl.createTexture();
    gl.bindTexture(gl.TEXTURE_2D, texture);
    gl.texStorage2D(gl.TEXTURE_2D, 1, gl.R32F, width, height);
    // R32F is not filterable; texelFetch also needs a complete (non-mipmapped) texture.
    gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_MIN_FILTER, gl.NEAREST);
    gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_MAG_FILTER, gl.NEAREST);
    gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_WRAP_S, gl.CLAMP_TO_EDGE);
    gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_WRAP_T, gl.CLAMP_TO_EDGE);
    return texture;
  }

  // A texture holding `values` (any numeric TypedArray or array: stored as float32).
  // Full rows and the partial last row go up separately, so a Float32Array (a
  // weight matrix) is uploaded without a padded copy.
  upload(values) {
    const record = this.allocate(values.length);
    if (values.length === 0) return record;
    const data = values instanceof Float32Array ? values : Float32Array.from(values);
    const width = record.width;
    const fullRows = Math.floor(data.length / width);
    const rest = data.length - fullRows * width;
    const gl = this.gl;
    gl.bindTexture(gl.TEXTURE_2D, record.texture);
    if (fullRows) {
      gl.texSubImage2D(gl.TEXTURE_2D, 0, 0, 0, width, fullRows, gl.RED, gl.FLOAT, data.subarray(0, fullRows * width));
    }
    if (rest) {
      gl.texSubImage2D(gl.TEXTURE_2D, 0, 0, fullRows, rest, 1, gl.RED, gl.FLOAT, data.subarray(fullRows * width));
    }
    return record;
  }

  // -- programs --------------------------------------------------------------
  // The cache key is derived from the kernel and every define the source sees,
  // including the context-wide TEX_WIDTH and MAX_RANK.
  program(kernel, defines) {
    const all = { TEX_WIDTH: this.texWidth, MAX_RANK, ...defines };
    const lines = Object.keys(all).sort().map((name) => `#define ${name} ${all[name]}`);
    const key = `${kernel}\n${lines.join("\n")}`;
    let program = this.programs.get(key);
    if (!program) {
      program = this._link(kernel, lines);
      this.programs.set(key, program);
    }
    return program;
  }

  _compile(type, source, name) {
    const gl = this.gl;
    const shader = gl.createShader(type);
    gl.shaderSource(shader, source);
    gl.compileShader(shader);
    if (!gl.getShaderParameter(shader, gl.COMPILE_STATUS)) {
      const log = gl.getShaderInfoLog(shader);
      gl.deleteShader(shader);
      throw new Error(`WebGL2 kernel ${name} does not compile: ${log}`);
    }
    return shader;
  }

  _link(kernel, defineLines) {
    const gl = this.gl;
    if (!(kernel in this.sources)) throw new Error(`unknown WebGL2 kernel ${kernel}`);
    const source = ["#version 300 es", ...defineLines, this.sources.common, this.sources[kernel]].join("\n");
    const fragment = this._compile(gl.FRAGMENT_SHADER, source, kernel);
    const handle = gl.createProgram();
    gl.attachShader(handle, this.vertexShader);
    gl.attachShader(handle, fragment);
    gl.linkProgram(handle);
    gl.deleteShader(fragment);
    if (!gl.getProgramParameter(handle, gl.LINK_STATUS)) {
      throw new Error(`WebGL2 kernel ${kernel} does not link: ${gl.getProgramInfoLog(handle)}`);
    }
    // Active uniforms by base name, with their setters' kind; samplers get units.
    const uniforms = new Map();
    let units = 0;
    const count = gl.getProgramParameter(handle, gl.ACTIVE_UNIFORMS);
    for (let i = 0; i < count; i++) {
      const info = gl.getActiveUniform(handle, i);
      const name = info.name.replace(/\[0\]$/, "");
      const location = gl.getUniformLocation(handle, info.name);
      const sampler = info.type === gl.SAMPLER_2D;
      uniforms.set(name, { location, type: info.type, size: info.size, unit: sampler ? units++ : -1 });
    }
    return { handle, uniforms, kernel };
  }

  // -- draws -----------------------------------------------------------------
  // Runs `kernel` once over the output texture(s) (several: multiple render
  // targets, all of one size). `values` maps uniform names to numbers, int arrays
  // or texture records (samplers); names the compiled program does not use are
  // ignored. `size` is the number of output elements (u_out_size).
  draw(kernel, defines, values, outputs, size = outputs[0].size) {
    if (size === 0) return;
    const gl = this.gl;
    const program = this.program(kernel, defines);
    gl.useProgram(program.handle);
    const all = { u_out_size: size, ...values };
    for (const [name, uniform] of program.uniforms) {
      if (!(name in all)) throw new Error(`WebGL2 kernel ${kernel}: no value for uniform ${name}`);
      this._set(uniform, all[name]);
    }
    const attachments = this._attach(outputs);
    gl.drawBuffers(attachments);
    gl.viewport(0, 0, outputs[0].width, outputs[0].height);
    gl.drawArrays(gl.TRIANGLES, 0, 3);
  }

  // Binds the framebuffer with `records` as its color attachments 0.. (and
  // nothing after them); returns the attachment points.
  _attach(records) {
    const gl = this.gl;
    gl.bindFramebuffer(gl.FRAMEBUFFER, this.framebuffer);
    const attachments = records.map((record, i) => {
      gl.framebufferTexture2D(gl.FRAMEBUFFER, gl.COLOR_ATTACHMENT0 + i, gl.TEXTURE_2D, record.texture, 0);
      return gl.COLOR_ATTACHMENT0 + i;
    });
    for (let i = records.length; i < this.attached; i++) {
      gl.framebufferTexture2D(gl.FRAMEBUFFER, gl.COLOR_ATTACHMENT0 + i, gl.TEXTURE_2D, null, 0);
    }
    this.attached = records.length;
    return attachments;
  }

  _set(uniform, value) {
    const gl = this.gl;
    if (uniform.unit >= 0) {
      if (!value || !value.texture) throw new Error("a sampler uniform needs a texture record");
      gl.activeTexture(gl.TEXTURE0 + uniform.unit);
      gl.bindTexture(gl.TEXTURE_2D, value.texture);
      gl.uniform1i(uniform.location, uniform.unit);
    } else if (uniform.type === gl.FLOAT) {
      gl.uniform1f(uniform.location, value);
    } else if (uniform.size > 1 || Array.isArray(value)) {
      gl.uniform1iv(uniform.location, Int32Array.from(value));
    } else {
      gl.uniform1i(uniform.location, value);
    }
  }

  // -- readback --------------------------------------------------------------
  // The texture's first `record.size` values as a Float32Array, through a pixel
  // pack buffer and a fence so the GPU is not stalled on the calling thread.
  async read(record) {
    if (record.size === 0) return new Float32Array(0);
    const gl = this.gl;
    const channels = this.readRed ? 1 : 4;
    const bytes = record.width * record.height * channels * 4;
    this._attach([record]);
    gl.readBuffer(gl.COLOR_ATTACHMENT0);
    const buffer = gl.createBuffer();
    gl.bindBuffer(gl.PIXEL_PACK_BUFFER, buffer);
    gl.bufferData(gl.PIXEL_PACK_BUFFER, bytes, gl.STREAM_READ);
    gl.readPixels(0, 0, record.width, record.height, this.readRed ? gl.RED : gl.RGBA, gl.FLOAT, 0);
    gl.bindBuffer(gl.PIXEL_PACK_BUFFER, null);
    const sync = gl.fenceSync(gl.SYNC_GPU_COMMANDS_COMPLETE, 0);
    gl.flush();
    try {
      await waitFor(gl, sync);
    } finally {
      gl.deleteSync(sync);
    }
    const texels = new Float32Array(bytes / 4);
    gl.bindBuffer(gl.PIXEL_PACK_BUFFER, buffer);
    gl.getBufferSubData(gl.PIXEL_PACK_BUFFER, 0, texels);
    gl.bindBuffer(gl.PIXEL_PACK_BUFFER, null);
    gl.deleteBuffer(buffer);
    if (channels === 1) return texels.slice(0, record.size);
    const out = new Float32Array(record.size);
    for (let i = 0; i < record.size; i++) out[i] = texels[4 * i];
    return out;
  }

  // RED/FLOAT readback moves a quarter of the bytes of RGBA/FLOAT, but only RGBA is
  // guaranteed for float color buffers: ask the implementation (with an R32F bound).
  _supportsRedReadback() {
    const gl = this.gl;
    const record = this.allocate(1);
    this._attach([record]);
    const status = gl.checkFramebufferStatus(gl.FRAMEBUFFER);
    if (status !== gl.FRAMEBUFFER_COMPLETE) {
      throw new Error(`WebGL2 cannot render to R32F textures (framebuffer status 0x${status.toString(16)})`);
    }
    const red = gl.getParameter(gl.IMPLEMENTATION_COLOR_READ_FORMAT) === gl.RED &&
                gl.getParameter(gl.IMPLEMENTATION_COLOR_READ_TYPE) === gl.FLOAT;
    this.release(record);
    return red;
  }
}

function waitFor(gl, sync) {
  return new Promise((resolve, reject) => {
    const poll = () => {
      const status = gl.clientWaitSync(sync, 0, 0);
      if (status === gl.WAIT_FAILED) reject(new Error("WebGL2 readback failed (context lost?)"));
      else if (status === gl.TIMEOUT_EXPIRED) setTimeout(poll, 1);
      else resolve();
    };
    poll();
  });
}
