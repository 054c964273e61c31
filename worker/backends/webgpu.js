// The WebGPU kernel backend: tensors live in GPU storage buffers, every op of the op
// table (backends/op_table.js) runs as WGSL compute kernels from shaders/.
// Interface: see the header of worker/bridge.js; the numpy backend defines each op.
//
// Device layout: every element is one 32-bit word: float32 as f32, int64/int32 as i32
// (values must fit), bool as u32 0/1 (read back as Uint8Array). Tensors that share
// bytes (reshape, same-width casts) share one refcounted buffer: ops never write
// their inputs. Work is recorded into a command encoder and submitted in batches;
// only read() waits for the GPU.
//
// Kernels take their shapes as uniforms and select their op by a uniform, so one
// pipeline per kernel file serves every shape, dtype and op (14 at most).

import { GpuDevice, loadKernelSources } from "./webgpu_device.js";
import { LAYOUT_OPS } from "./webgpu_layout.js";
import { MATH_OPS } from "./webgpu_math.js";
import { kindOf, product } from "./webgpu_shapes.js";

class DeviceTensor {
  constructor(store, shape, dtype) {
    this.store = store; // {buffer, refs}
    this.shape = shape;
    this.dtype = dtype;
    this.size = product(shape);
    this.kind = kindOf(dtype);
  }

  get buffer() {
    return this.store.buffer;
  }
}

export default class WebGPUBackend {
  static async create(options = {}) {
    const gpu = globalThis.navigator?.gpu;
    if (!gpu) throw new Error("WebGPU is not available here (navigator.gpu is missing)");
    const adapter = await gpu.requestAdapter(options.powerPreference ? { powerPreference: options.powerPreference } : {});
    if (!adapter) throw new Error("WebGPU is present but no adapter was granted");
    const isFallbackAdapter = Boolean(adapter.info?.isFallbackAdapter ?? adapter.isFallbackAdapter);
    // Embedding tables exceed the 128 MiB default binding size: ask for what the adapter has.
    const requiredLimits = {};
    for (const name of ["maxStorageBufferBindingSize", "maxBufferSize"]) {
      if (adapter.limits[name]) requiredLimits[name] = adapter.limits[name];
    }
    const [device, sources] = await Promise.all([adapter.requestDevice({ requiredLimits }), loadKernelSources()]);
    return new WebGPUBackend(device, sources, isFallbackAdapter, adapter.info);
  }

  constructor(device, sources, isFallbackAdapter, adapterInfo) {
    this.name = "webgpu";
    this.isFallbackAdapter = isFallbackAdapter;
    this.adapterInfo = adapterInfo;
    this.gpu = new GpuDevice(device, sources);
    this.tensors = new Map();
    device.lost?.then((info) => console.error(`WebGPU device lost: ${info.message}`));
  }

  // Pipelines created so far and the milliseconds spent creating them.
  get stats() {
    return { pipelines: this.gpu.pipelines.size, compileMs: this.gpu.compileMs };
  }

  // -- allocator ---------------------------------------------------------------
  upload(id, shape, dtype, data) {
    const kind = kindOf(dtype);
    const words = kind === 2 ? Uint32Array.from(data, (v) => (v ? 1 : 0)) : data;
    this._register(id, new DeviceTensor({ buffer: this.gpu.upload(words), refs: 1 }, shape, dtype));
  }

  async read(id) {
    const tensor = this.tensor(id);
    const bytes = tensor.size * 4;
    const Type = tensor.kind === 0 ? Float32Array : Int32Array;
    if (!bytes) {
      this.gpu.flush();
      return tensor.kind === 2 ? new Uint8Array(0) : new Type(0);
    }
    const words = await this.gpu.readBack(tensor.buffer, bytes);
    return tensor.kind === 2 ? Uint8Array.from(new Uint32Array(words)) : new Type(words);
  }

  free(id) {
    const tensor = this.tensors.get(id);
    if (!tensor) return;
    this.tensors.delete(id);
    this.releaseStore(tensor.store);
  }

  // -- helpers for the op modules ----------------------------------------------
  tensor(id) {
    const tensor = this.tensors.get(id);
    if (!tensor) throw new Error(`tensor ${id} is not on the webgpu device (freed or never uploaded)`);
    return tensor;
  }

  // The tensor behind an argument ({tensor: id}), or null for a scalar / None.
  input(arg) {
    return arg && typeof arg === "object" && "tensor" in arg ? this.tensor(arg.tensor) : null;
  }

  // A fresh buffer for an output of the op, registered under its id.
  output(out) {
    const tensor = this.temp(out.shape, out.dtype);
    this._register(out.id, tensor);
    return tensor;
  }

  // An output sharing the bytes of `source` (reshape, same-width cast).
  alias(out, source) {
    source.store.refs += 1;
    this._register(out.id, new DeviceTensor(source.store, out.shape, out.dtype));
  }

  // A scratch tensor; give it back with drop() once its last use is recorded.
  temp(shape, dtype) {
    const size = product(shape);
    return new DeviceTensor({ buffer: this.gpu.alloc(size * 4), refs: 1 }, shape, dtype);
  }

  drop(tensor) {
    if (tensor) this.releaseStore(tensor.store);
  }

  releaseStore(store) {
    store.refs -= 1;
    if (store.refs === 0) this.gpu.release(store.buffer);
  }

  _register(id, tensor) {
    if (this.tensors.has(id)) this.free(id);
    this.tensors.set(id, tensor);
  }

  // -- ops -----------------------------------------------------------------------
  run(op, outs, params) {
    const kernel = Object.hasOwn(OPS, op) ? OPS[op] : null;
    if (!kernel) throw new Error(`WebGPU backend has no op ${op}; expected one of ${Object.keys(OPS).sort().join(", ")}`);
    kernel(this, outs, params);
  }
}

// Every op of the op table (bridge.js), by name: (backend, outs, params).
export const OPS = { ...LAYOUT_OPS, ...MATH_OPS };
