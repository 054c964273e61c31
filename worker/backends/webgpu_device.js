// The WebGPU device plumbing under worker/backends/webgpu.js: kernel sources, the
// pipeline cache, a buffer pool, uniform packing and batched command encoding.
//
// Ordering rule: nothing is written with queue.writeBuffer. Uploads, uniforms and
// index tables go into fresh buffers mapped at creation, so they cannot overtake
// commands still waiting in the open encoder; pooled buffers are only ever written
// by kernels, which the queue runs in order.

export const KERNELS = ["unary", "binary", "where", "copy", "slice", "gather", "matmul", "reduce",
  "argmax", "softmax", "layer_norm", "cumsum", "topk", "rotary"];

export const ELEMENTWISE_LANES = 64;
const MAX_GROUPS = 65535;
const DISPATCHES_PER_SUBMIT = 64;
const POOL_BYTES = 256 * 1024 * 1024;
const STORAGE_USAGE = 0x80 | 0x04 | 0x08; // STORAGE | COPY_SRC | COPY_DST
const UNIFORM_USAGE = 0x40; // UNIFORM
const MAP_READ_USAGE = 0x01 | 0x08; // MAP_READ | COPY_DST

// Fetched relative to this module so the same layout works from the repo and from dist/.
export async function loadKernelSources() {
  const entries = await Promise.all(KERNELS.map(async (name) => {
    const url = new URL(`../../shaders/${name}.wgsl`, import.meta.url);
    const response = await fetch(url);
    if (!response.ok) throw new Error(`cannot load kernel ${url}: HTTP ${response.status}`);
    return [name, await response.text()];
  }));
  return new Map(entries);
}

// Every compile-time parameter of a pipeline goes into its key: the kernel and the
// values of its override constants.
export function pipelineKey(kernel, constants = {}) {
  const parts = Object.keys(constants).sort().map((name) => `${name}=${constants[name]}`);
  return [kernel, ...parts].join("|");
}

// Uniform block builder: 32-bit scalars in declaration order, then 8-entry vectors
// (two vec4s), each starting on a 16-byte boundary, as the kernels' Params structs.
export class Uniforms {
  constructor() {
    this.words = [];
  }

  u32(...values) {
    for (const v of values) this.words.push(["u", v]);
    return this;
  }

  i32(...values) {
    for (const v of values) this.words.push(["i", v]);
    return this;
  }

  f32(...values) {
    for (const v of values) this.words.push(["f", v]);
    return this;
  }

  align() {
    while (this.words.length % 4) this.words.push(["u", 0]);
    return this;
  }

  // `values` padded with zeros to `length` entries (8 for per-axis data, 4 for batch axes).
  vector(values, type = "u", length = 8) {
    this.align();
    if (values.length > length) throw new Error(`${values.length} axes; kernels take at most ${length}`);
    for (let d = 0; d < length; d++) this.words.push([type, d < values.length ? values[d] : 0]);
    return this;
  }

  bytes() {
    this.align();
    const view = new DataView(new ArrayBuffer(this.words.length * 4));
    this.words.forEach(([type, value], i) => {
      if (type === "f") view.setFloat32(4 * i, value, true);
      else if (type === "i") view.setInt32(4 * i, value, true);
      else view.setUint32(4 * i, value, true);
    });
    return view.buffer;
  }
}

export class GpuDevice {
  constructor(device, sources) {
    this.device = device;
    this.sources = sources;
    this.pipelines = new Map();
    this.compileMs = 0;
    this.pool = new Map(); // byte size -> [GPUBuffer]
    this.pooledBytes = 0;
    this.encoder = null;
    this.queued = 0;
    this.transient = []; // buffers to destroy once their commands are submitted
    this.error = null;
    this.dummy = this.mappedBuffer(new Uint32Array(4), STORAGE_USAGE);
    device.addEventListener("uncapturederror", (event) => {
      const message = event.error?.message ?? String(event.error);
      if (!this.error) this.error = message;
      console.error(`WebGPU error: ${message}`);
    });
  }

  pipeline(kernel, constants = {}) {
    const key = pipelineKey(kernel, constants);
    let pipeline = this.pipelines.get(key);
    if (!pipeline) {
      const code = this.sources.get(kernel);
      if (code === undefined) throw new Error(`unknown kernel ${kernel}; expected one of ${KERNELS.join(", ")}`);
      const start = performance.now();
      const module = this.device.createShaderModule({ code, label: kernel });
      pipeline = this.device.createComputePipeline({
        label: key, layout: "auto", compute: { module, entryPoint: "main", constants },
      });
      this.compileMs += performance.now() - start;
      this.pipelines.set(key, pipeline);
    }
    return pipeline;
  }

  // A buffer holding `data` from birth (no queue write, so no ordering hazard).
  mappedBuffer(data, usage) {
    const size = Math.max(16, Math.ceil(data.byteLength / 16) * 16);
    const buffer = this.device.createBuffer({ size, usage, mappedAtCreation: true });
    new Uint8Array(buffer.getMappedRange()).set(new Uint8Array(data.buffer ?? data, data.byteOffset ?? 0,
      data.byteLength));
    buffer.unmap();
    return buffer;
  }

  upload(words) {
    return this.mappedBuffer(words, STORAGE_USAGE);
  }

  // A read-only table for one command batch (slice keys).
  transientStorage(words) {
    const buffer = this.mappedBuffer(words, STORAGE_USAGE);
    this.transient.push(buffer);
    return buffer;
  }

  alloc(bytes) {
    const size = Math.max(16, Math.ceil(bytes / 16) * 16); // as mappedBuffer, so pool keys match
    const free = this.pool.get(size);
    if (free && free.length) {
      this.pooledBytes -= size;
      return free.pop();
    }
    return this.device.createBuffer({ size, usage: STORAGE_USAGE });
  }

  release(buffer) {
    if (this.pooledBytes + buffer.size > POOL_BYTES) {
      this.transient.push(buffer); // destroyed after the commands using it are submitted
      return;
    }
    if (!this.pool.has(buffer.size)) this.pool.set(buffer.size, []);
    this.pool.get(buffer.size).push(buffer);
    this.pooledBytes += buffer.size;
  }

  // Record one compute dispatch: binding 0 is the uniform block, then `buffers` in order.
  dispatch(kernel, uniforms, buffers, groups) {
    const [x, y = 1, z = 1] = groups;
    if (!x || !y || !z) return;
    const pipeline = this.pipeline(kernel);
    const params = this.mappedBuffer(new Uint8Array(uniforms.bytes()), UNIFORM_USAGE);
    this.transient.push(params);
    const entries = [{ binding: 0, resource: { buffer: params } }];
    buffers.forEach((buffer, i) => entries.push({ binding: i + 1, resource: { buffer } }));
    const bindGroup = this.device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries });
    if (!this.encoder) this.encoder = this.device.createCommandEncoder();
    const pass = this.encoder.beginComputePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(x, y, z);
    pass.end();
    if (++this.queued >= DISPATCHES_PER_SUBMIT) this.flush();
  }

  // Workgroup grid for `count` workgroups, folded into two dimensions past the limit.
  grid(count) {
    if (count <= MAX_GROUPS) return [count, 1];
    const y = Math.ceil(count / MAX_GROUPS);
    if (y > MAX_GROUPS) throw new Error(`${count} workgroups exceed the ${MAX_GROUPS}² dispatch limit`);
    return [MAX_GROUPS, y];
  }

  // Grid for an elementwise kernel of `total` threads.
  elementGrid(total) {
    return this.grid(Math.ceil(total / ELEMENTWISE_LANES));
  }

  copyBuffer(source, destination, bytes) {
    if (!bytes) return;
    if (!this.encoder) this.encoder = this.device.createCommandEncoder();
    this.encoder.copyBufferToBuffer(source, 0, destination, 0, bytes);
  }

  flush() {
    if (this.encoder) {
      this.device.queue.submit([this.encoder.finish()]);
      this.encoder = null;
      this.queued = 0;
    }
    for (const buffer of this.transient) buffer.destroy();
    this.transient = [];
  }

  // A copy of the first `bytes` of `buffer`, as an ArrayBuffer.
  async readBack(buffer, bytes) {
    const staging = this.device.createBuffer({ size: Math.max(4, bytes), usage: MAP_READ_USAGE });
    this.copyBuffer(buffer, staging, bytes);
    this.flush();
    try {
      await staging.mapAsync(1 /* GPUMapMode.READ */);
      return staging.getMappedRange(0, bytes).slice(0);
    } finally {
      staging.destroy();
      if (this.error) {
        const message = this.error;
        this.error = null;
        throw new Error(`WebGPU kernel failed: ${message}`);
      }
    }
  }
}
