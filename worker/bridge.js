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
//   run(messageJson)          message = {op, out: [[id, shape, dtype], ...], args, attrs, free}
//   read(id) -> Promise<Float32Array | Int32Array | Uint8Array>
//
// Args: {"t": id} is a tensor, numbers are scalars, {"f": "inf"|"-inf"|"nan"} a
// non-finite float, lists are lists (concat's tensors, reduce's axes, reshape's shape).
// Slice keys (ops slice / set_slice): a list with one entry per leading axis:
// an int (select, axis dropped), {"s": [start, stop, step]} (already normalised by
// Python's slice.indices) or {"i": [indices]} (non-negative).
//
// Ops and their meaning are exactly py/neuroscope/backends/numpy_backend.py (the
// reference), plus two allocators: full(attrs.value) and arange(attrs.start).
// Device dtypes: float32 -> Float32Array, int64/int32 -> Int32Array, bool -> Uint8Array.
//
// A kernel backend is a class with:
//   static async create(options) -> backend
//   name, isFallbackAdapter (true for software GPUs)
//   upload(id, shape, dtype, data)   data: a TypedArray of the device dtype (copied by the callee)
//   run(op, outs, args, attrs)       outs: [{id, shape, dtype}], args/attrs decoded (see decode())
//   read(id) -> Promise<TypedArray>
//   free(id)
// decode() turns {"t": id} into {tensor: id}, {"f": ...} into a JS number, so a
// backend only looks at plain values.

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
    this.backend.run(message.op, outs, message.args.map(decode), decodeAttrs(message.attrs));
  }

  read(id) {
    return this.backend.read(id);
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

function decodeAttrs(attrs) {
  const out = {};
  for (const [key, value] of Object.entries(attrs || {})) out[key] = decode(value);
  return out;
}
