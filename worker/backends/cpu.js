// The CPU kernel backend, for browsers with neither WebGPU nor WebGL2 (interface:
// the header of worker/bridge.js). Tensors stay in JS memory as typed arrays
// (float32 -> Float32Array, int64/int32 -> Int32Array, bool -> Uint8Array) and are
// never written after the op that made them, so reshape shares its input's data.
// The ops onnxruntime-web can express (matmul, float arithmetic, the activations,
// norms, reshapes, permutes, attention) run on its wasm kernels, as graphs of many
// ops (cpu_graph.js); the others are plain JS loops over typed arrays
// (cpu_elementwise.js, cpu_reduce.js, cpu_layout.js), which also stand in for a
// graph that fails, and cpu_ort.js runs the matmuls no graph takes (integers, 1-d).
// Semantics are those of py/neuroscope/backends/numpy_backend.py.
//
// onnxruntime-web only runs asynchronously, while the bridge's run() is
// synchronous: ops wait in one list, in order, and run when Python next waits for a
// value (a read), so the whole window of work (a forward pass with its cached hooks)
// is there at once, and runs of graph ops in it become one graph each. When nothing
// is pending, an op no graph holds runs at once (its errors reach Python directly).
// An op that fails in the list marks its outputs failed, and reading them (or
// anything computed from them) rejects with its error.

import { deviceArrayType } from "../dtypes.js";
import { ELEMENTWISE_OPS } from "./cpu_elementwise.js";
import { LAYOUT_OPS, sizeOf } from "./cpu_layout.js";
import { GRAPH_OPS, SegmentGraphs } from "./cpu_graph.js";
import { OrtKernels, ORT_OPS } from "./cpu_ort.js";
import { REDUCTION_OPS } from "./cpu_reduce.js";

const JS_OPS = { ...ELEMENTWISE_OPS, ...REDUCTION_OPS, ...LAYOUT_OPS };
// Every op of the op table (bridge.js), by name: (backend, outs, params) -> optional Promise.
export const OPS = { ...JS_OPS, ...ORT_OPS };

export default class CpuBackend {
  // options.numThreads overrides the thread count (default: all cores when the
  // page is cross-origin isolated, else 1); options.bakeBytes bounds the weights
  // kept inside onnxruntime (cpu_ort.js, cpu_graph.js); options.graphs: false runs
  // every op on its own; options.wasmPaths where onnxruntime's wasm files are.
  static async create(options = {}) {
    return new CpuBackend(await OrtKernels.create(options), options);
  }

  constructor(ort, options = {}) {
    this.ort = ort;
    this.name = "cpu";
    this.isFallbackAdapter = false;
    this.numThreads = ort.numThreads;
    this.tensors = new Map(); // id -> {shape, dtype, data} or {error}
    this.graphs = options.graphs === false ? null : new SegmentGraphs(this);
    // Arrays that may be weights (cpu_graph.js bakes them into graphs): uploaded tensors and
    // those Python marked as a model's weights (markWeights). Never one an op made for a pass.
    this.weights = new WeakSet();
    this.pool = new ArrayPool(POOL_BYTES, (array) => {
      ort.forget(array);
      this.graphs?.forget(array);
      this.weights.delete(array);
    });
    this.pending = []; // {op, outs, params}, {free: id} or {weights: ids}, in order, not yet run
    this.queue = null; // Promise of the run of `pending`, null when idle
  }

  upload(id, shape, dtype, data) {
    const count = sizeOf(shape);
    if (data.length < count) {
      throw new Error(`upload of tensor ${id}: ${data.length} values cannot fill shape [${shape}]`);
    }
    const copy = this.pool.take(deviceArrayType(dtype), count);
    copy.set(data.length === count ? data : data.subarray(0, count));
    this.weights.add(copy);
    // A fresh id: no queued op can refer to it, so it is registered at once.
    this.define({ id, shape: [...shape], dtype }, copy);
  }

  run(op, outs, params) {
    const implementation = Object.hasOwn(OPS, op) ? OPS[op] : null;
    if (!implementation) {
      throw new Error(`CPU backend has no op ${op}; expected one of ${Object.keys(OPS).join(", ")}`);
    }
    // Ops onnxruntime runs always queue (a graph's ops too: where an op runs must not
    // depend on whether something was pending when it came).
    if (this.queue === null && !Object.hasOwn(ORT_OPS, op) && !(this.graphs && GRAPH_OPS.has(op))) {
      try {
        implementation(this, outs, params);
      } catch (error) {
        for (const out of outs) this._release(out.id);
        throw error;
      }
      return;
    }
    this._enqueue({ op, outs, params });
  }

  async read(id) {
    if (this.queue !== null) await this.queue;
    const tensor = this.tensor(id);
    return tensor.data.slice();
  }

  free(id) {
    if (this.queue === null) this._release(id);
    else this._enqueue({ free: id });
  }

  // Tensors `ids` are a model's weights (made by ops at load: GPT-2's Q, K, V split out of
  // one matrix, folded layer norms): noted in queue order, once they are computed.
  markWeights(ids) {
    if (this.queue === null) this._markWeights(ids);
    else this._enqueue({ weights: ids });
  }

  _markWeights(ids) {
    for (const id of ids) {
      const tensor = this.tensors.get(id);
      if (tensor?.data) this.weights.add(tensor.data);
    }
  }

  _release(id) {
    const tensor = this.tensors.get(id);
    if (!tensor) return;
    this.tensors.delete(id);
    if (tensor.data) this.pool.release(tensor.data);
  }

  _enqueue(item) {
    this.pending.push(item);
    // Starts at the next microtask checkpoint: when Python waits, not before.
    if (this.queue === null) this.queue = Promise.resolve().then(() => this._drain());
  }

  async _drain() {
    let next = 0;
    try {
      while (next < this.pending.length) {
        const plan = await this._runGraph(next);
        if (plan?.ran) {
          next = plan.end;
          continue;
        }
        const end = plan ? plan.end : next + 1;
        while (next < end) await this._runOne(this.pending[next++]);
      }
    } finally {
      this.pending = [];
      this.queue = null;
    }
  }

  // The segment at pending[start] (cpu_graph.js), run as one graph when it can be:
  // {end, ran}, or null when no segment starts there.
  async _runGraph(start) {
    if (!this.graphs) return null;
    let plan = null;
    try {
      plan = this.graphs.plan(this.pending, start);
      return plan && { end: plan.end, ran: await this.graphs.run(plan) };
    } catch (error) {
      // A fault of the graph path itself: these ops still run, one by one.
      console.warn(`cpu backend: a graph of queued ops could not run (${error.message}); they run one by one`);
      return plan && { end: plan.end, ran: false };
    }
  }

  async _runOne(item) {
    if (item.free !== undefined) {
      this._release(item.free);
      return;
    }
    if (item.weights !== undefined) {
      this._markWeights(item.weights);
      return;
    }
    try {
      await OPS[item.op](this, item.outs, item.params);
    } catch (error) {
      for (const out of item.outs) {
        this._release(out.id);
        this.tensors.set(out.id, { error });
      }
    }
  }

  // -- helpers for the op modules -------------------------------------------
  tensor(id) {
    const tensor = this.tensors.get(id);
    if (!tensor) throw new Error(`CPU backend has no tensor ${id} (freed, or never uploaded)`);
    if (tensor.error) throw new Error(`tensor ${id} was not computed: ${tensor.error.message}`);
    return tensor;
  }

  // The tensor behind an argument {tensor: id}, or null for anything else.
  input(value) {
    return value !== null && typeof value === "object" && "tensor" in value ? this.tensor(value.tensor) : null;
  }

  // Registers `data` (a typed array of the output's dtype and size) as output `out`.
  define(out, data) {
    const count = sizeOf(out.shape);
    if (data.length !== count) {
      throw new Error(`op output ${out.id}: ${data.length} values for shape [${out.shape}]`);
    }
    this.pool.retain(data); // before releasing a previous tensor of this id, which may share it
    this._release(out.id);
    const tensor = { shape: out.shape, dtype: out.dtype, data };
    this.tensors.set(out.id, tensor);
    return tensor;
  }

  // An array for output `out`, registered under its id. It may be recycled: its
  // contents are undefined, and the op must write every element.
  output(out) {
    return this.define(out, this.pool.take(deviceArrayType(out.dtype), sizeOf(out.shape))).data;
  }

  // A zero-filled array for output `out`, registered under its id.
  zeros(out) {
    return this.output(out).fill(0);
  }
}

// Recycles the arrays of freed tensors. Fresh large arrays cost page faults on
// first touch (here ~0.85 ms per MB, more than most ops' arithmetic), so outputs
// reuse freed arrays of the same type and length. Arrays are shared between
// tensors (reshape, same-type casts), hence the reference counts.
const POOL_BYTES = 256 * 2 ** 20;
const POOL_MIN_BYTES = 16 * 2 ** 10; // smaller arrays are cheap to allocate

class ArrayPool {
  // onIdle(array) is told when no tensor holds `array` any more.
  constructor(limitBytes, onIdle) {
    this.limitBytes = limitBytes;
    this.onIdle = onIdle;
    this.bytes = 0;
    this.idle = new Map(); // "Float32Array:1024" -> [arrays]
    this.refs = new Map(); // array -> number of tensors holding it
  }

  take(Type, length) {
    const idle = this.idle.get(`${Type.name}:${length}`);
    if (idle && idle.length) {
      const array = idle.pop();
      this.bytes -= array.byteLength;
      return array;
    }
    return new Type(length);
  }

  retain(array) {
    this.refs.set(array, (this.refs.get(array) || 0) + 1);
  }

  release(array) {
    const count = (this.refs.get(array) || 1) - 1;
    if (count > 0) {
      this.refs.set(array, count);
      return;
    }
    this.refs.delete(array);
    this.onIdle(array);
    if (array.byteLength < POOL_MIN_BYTES || this.bytes + array.byteLength > this.limitBytes) return;
    const key = `${array.constructor.name}:${array.length}`;
    if (!this.idle.has(key)) this.idle.set(key, []);
    this.idle.get(key).push(array);
    this.bytes += array.byteLength;
  }
}
