// The WebGL2 kernel backend, for browsers without WebGPU (interface: the header of
// worker/bridge.js). Each tensor is an R32F texture of its flat row-major data
// (webgl_context.js); each primitive op is one or a few GLSL ES 3.00 fragment
// kernels from shaders/*.glsl drawn into the output texture, with shapes and
// strides as uniforms so a new length does not recompile. Integers and booleans
// are stored as float values: exact for integers up to 2^24 in magnitude.
// Semantics are those of py/neuroscope/backends/numpy_backend.py.

import { deviceArrayType } from "../dtypes.js";
import { GLContext } from "./webgl_context.js";
import { ELEMENTWISE_OPS } from "./webgl_ops_elementwise.js";
import { LAYOUT_OPS } from "./webgl_ops_layout.js";
import { REDUCTION_OPS } from "./webgl_ops_reduce.js";
import { sizeOf } from "./webgl_layout.js";

// Every op of the op table (bridge.js), by name: (backend, outs, params).
export const OPS = { ...ELEMENTWISE_OPS, ...REDUCTION_OPS, ...LAYOUT_OPS };

export default class WebGLBackend {
  static async create(options = {}) {
    return new WebGLBackend(await GLContext.create(options));
  }

  constructor(gl) {
    this.gl = gl;
    this.name = "webgl";
    this.isFallbackAdapter = gl.isSoftware;
    this.renderer = gl.renderer;
    this.tensors = new Map(); // id -> {record, shape, dtype}
  }

  upload(id, shape, dtype, data) {
    const count = sizeOf(shape);
    if (data.length < count) {
      throw new Error(`upload of tensor ${id}: ${data.length} values cannot fill shape [${shape}]`);
    }
    const record = this.gl.upload(data.length === count ? data : data.subarray(0, count));
    this._register(id, { record, shape: [...shape], dtype });
  }

  run(op, outs, params) {
    const implementation = Object.hasOwn(OPS, op) ? OPS[op] : null;
    if (!implementation) {
      throw new Error(`WebGL2 backend has no op ${op}; expected one of ${Object.keys(OPS).join(", ")}`);
    }
    implementation(this, outs, params);
  }

  async read(id) {
    const tensor = this.tensor(id);
    const values = await this.gl.read(tensor.record);
    const Type = deviceArrayType(tensor.dtype);
    if (Type === Float32Array) return values;
    const out = new Type(values.length);
    if (Type === Uint8Array) for (let i = 0; i < values.length; i++) out[i] = values[i] !== 0 ? 1 : 0;
    else for (let i = 0; i < values.length; i++) out[i] = Math.round(values[i]);
    return out;
  }

  free(id) {
    const tensor = this.tensors.get(id);
    if (!tensor) return;
    this.tensors.delete(id);
    this.gl.release(tensor.record);
  }

  // -- helpers for the op modules -------------------------------------------
  tensor(id) {
    const tensor = this.tensors.get(id);
    if (!tensor) throw new Error(`WebGL2 backend has no tensor ${id} (freed, or never uploaded)`);
    return tensor;
  }

  // The tensor behind an argument {tensor: id}, or null for anything else.
  input(value) {
    return value !== null && typeof value === "object" && "tensor" in value ? this.tensor(value.tensor) : null;
  }

  // A fresh output texture registered under the output's id.
  output(out) {
    const tensor = { record: this.gl.allocate(sizeOf(out.shape)), shape: [...out.shape], dtype: out.dtype };
    this._register(out.id, tensor);
    return tensor;
  }

  // An output holding exactly the values of `source` (reshape, value-preserving
  // casts): it shares the texture, which no kernel ever writes after creation.
  share(out, source) {
    source.record.refs += 1;
    this._register(out.id, { record: source.record, shape: [...out.shape], dtype: out.dtype });
  }

  // A scratch texture of `size` elements; give it back with gl.release(record).
  scratch(size) {
    return this.gl.allocate(size);
  }

  // A one-element tensor for a scalar argument where a kernel needs a texture.
  constant(value, dtype = "float32") {
    return { record: this.gl.upload([Number(value)]), shape: [], dtype, scratch: true };
  }

  _register(id, tensor) {
    this.free(id);
    this.tensors.set(id, tensor);
  }
}
