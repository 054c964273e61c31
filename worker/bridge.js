// The kernel bridge: what Python's JsBackend (py/neuroscope/backends/js_backend.py)
// talks to. It owns one kernel backend (webgpu, webgl or cpu) and turns the JSON
// messages of the protocol below into calls on it.
//
// Protocol (one JSON string per call; no proxies kept):
//   upload(metaJson, bytes)   meta = {id, shape, dtype, source, free}
//                             bytes: raw little-endian data in safetensors dtype
//                             `source` (F32, F16, BF16, F64, I64, I32, I16, I8, U8, BOOL),
//                             converted to `dtype` ("float32" | "int64" | "int32" | "bool")
//   uploadFromBuffer(metaJson, bytes, begin, end)
//                             the same, from bytes[begin:end] of a Uint8Array that JS already
//                             holds (a downloaded weights file, a stored entry), so a file
//                             is never copied into Python (py/neuroscope/backends/host_buffer.py)
//   run(messageJson)          message = {op, out: [[id, shape, dtype], ...], params, free}
//   read(id) -> Promise<Float32Array | Int32Array | Uint8Array>
//   markWeights(metaJson)     meta = {ids, free}: those tensors are a model's weights
//
// Ops, their parameters (names, order, defaults) and outputs are the op table,
// OP_TABLE in backends/op_table.js, generated from py/neuroscope/backends/ops.py: its
// primitive ops, whose meaning is exactly py/neuroscope/backends/numpy_backend.py (the
// reference), and its allocators full(value) and arange(start). `params` names every
// parameter ({name: value}); a missing one takes the table's default.
// Values: {"t": id} is a tensor, numbers are scalars, {"f": "inf"|"-inf"|"nan"} a
// non-finite float, lists are lists (concat's tensors, reduce's axes, reshape's shape).
// Slice keys (parameters of kind "key"): a list with one entry per leading axis:
// an int (select, axis dropped), {"s": [start, stop, step]} (already normalised by
// Python's slice.indices) or {"i": [indices]} (non-negative).
// Device dtypes: float32 -> Float32Array, int64/int32 -> Int32Array, bool -> Uint8Array.
//
// A kernel backend is a class with:
//   static async create(options) -> backend
//   name, isFallbackAdapter (true for software GPUs)
//   upload(id, shape, dtype, data)   data: a TypedArray of the device dtype (copied by the callee)
//   run(op, outs, params)            outs: [{id, shape, dtype}]; params: every parameter of
//                                    the op by its table name, decoded (see decode())
//   read(id) -> Promise<TypedArray>
//   free(id)
//   markWeights(ids)                 optional: a lifetime hint (cpu.js bakes such weights)
// and exports OPS, its kernels by op name: one for every op of the table
// (tests/test_op_table.py checks). decode() turns {"t": id} into {tensor: id},
// {"f": ...} into a JS number, so a backend only looks at plain values.

import { OP_TABLE } from "./backends/op_table.js";
import { decodeSource } from "./dtypes.js";

export class KernelBridge {
  constructor(backend) {
    this.backend = backend;
  }

  get name() {
    return this.backend.name;
  }

  upload(metaJson, bytesProxy) {
    const meta = JSON.parse(metaJson);
    this._free(meta.free);
    // A Python memoryview arrives as a PyProxy: borrow its buffer, copy, release.
    let view = bytesProxy;
    let release = null;
    if (bytesProxy && typeof bytesProxy.getBuffer === "function") {
      const buffer = bytesProxy.getBuffer("u8");
      view = buffer.data;
      release = () => buffer.release();
    }
    try {
      const data = decodeSource(view, meta.source, meta.dtype, meta.shape);
      this.backend.upload(meta.id, meta.shape, meta.dtype, data);
    } finally {
      if (release) release();
    }
  }

  uploadFromBuffer(metaJson, bytes, begin, end) {
    const meta = JSON.parse(metaJson);
    this._free(meta.free);
    const data = decodeSource(bytes.subarray(begin, end), meta.source, meta.dtype, meta.shape);
    this.backend.upload(meta.id, meta.shape, meta.dtype, data);
  }

  run(messageJson) {
    const message = JSON.parse(messageJson);
    this._free(message.free);
    const outs = message.out.map(([id, shape, dtype]) => ({ id, shape, dtype }));
    this.backend.run(message.op, outs, bindParams(message.op, message.params));
  }

  read(id) {
    return this.backend.read(id);
  }

  // meta = {ids, free}: those tensors are a model's weights (a hint; backends without
  // markWeights ignore it).
  markWeights(metaJson) {
    const meta = JSON.parse(metaJson);
    this._free(meta.free);
    this.backend.markWeights?.(meta.ids);
  }

  _free(ids) {
    if (ids) for (const id of ids) this.backend.free(id);
  }
}

const NON_FINITE = { inf: Infinity, "-inf": -Infinity, nan: NaN };

export function decode(value) {
  if (value === null || typeof value !== "object") return value;
  if (Array.isArray(value)) return value.map(decode);
  if ("t" in value) return { tensor: value.t };
  if ("f" in value) return NON_FINITE[value.f];
  return value; // slice key entries {"s": ...} / {"i": ...}
}

// Every parameter of `op` by its table name, decoded, defaults filled in.
export function bindParams(op, params = {}) {
  const table = Object.hasOwn(OP_TABLE.primitive, op) ? OP_TABLE.primitive : OP_TABLE.allocators;
  const spec = Object.hasOwn(table, op) ? table[op] : null;
  if (!spec) {
    const known = [...Object.keys(OP_TABLE.primitive), ...Object.keys(OP_TABLE.allocators)];
    throw new Error(`unknown op ${op}; expected one of ${known.join(", ")}`);
  }
  const names = spec.params.map((p) => p.name);
  const extra = Object.keys(params).filter((name) => !names.includes(name));
  if (extra.length) throw new Error(`op ${op} has no parameter ${extra.join(", ")}; its parameters: ${names.join(", ")}`);
  const out = {};
  for (const param of spec.params) {
    if (param.name in params) out[param.name] = decode(params[param.name]);
    else if ("default" in param) out[param.name] = param.default;
    else throw new Error(`op ${op} is missing parameter ${param.name}; its parameters: ${names.join(", ")}`);
  }
  return out;
}
