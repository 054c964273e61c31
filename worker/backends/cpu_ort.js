// The CPU backend's matmul-class ops on onnxruntime-web's wasm kernels (MLAS, SIMD,
// threads when the page is cross-origin isolated): matmul, and the two matmuls of
// attention around a safe softmax done in JS. Each op runs a tiny ONNX graph
// (onnx_graph.js) whose dimensions are symbolic, so a new length reuses the same
// session; sessions are cached by a key built from every compile-time parameter.
// Semantics: py/neuroscope/backends/numpy_backend.py (matmul, attention).

import * as ort from "../../node_modules/onnxruntime-web/dist/ort.wasm.min.mjs";
import { deviceArrayType } from "../dtypes.js";
import { fastExp } from "./cpu_elementwise.js";
import { sizeOf } from "./cpu_layout.js";
import { floatTensor, int64Tensor, modelBytes, node, tensorInfo, ONNX_FLOAT, ONNX_INT32 } from "./onnx_graph.js";

const ORT_DIST = new URL("../../node_modules/onnxruntime-web/dist/", import.meta.url).href;

const ELEMENT = { float32: ONNX_FLOAT, int32: ONNX_INT32 };

// Weights are baked into sessions as initializers: ORT then keeps them in wasm
// memory, pre-packed for its GEMM, instead of copying them in on every call
// (measured in Chromium here: matmuls at GPT-2 sizes 1.1-1.4x faster, the gain
// larger with threads). A 2-d float32 right operand of at least BAKE_MIN_ELEMENTS
// is baked on its second use (a weight, not a one-off), while the baked total stays
// under options.bakeBytes (default 1 GiB; 0 turns baking off). A baked copy lives
// as long as the array does: the backend calls forget() when it frees it.
const BAKE_MIN_ELEMENTS = 1 << 16;
const BAKE_USES = 2;
const BAKE_BYTES = 2 ** 30;

export class OrtKernels {
  static async create(options = {}) {
    const isolated = globalThis.crossOriginIsolated === true;
    const cores = globalThis.navigator?.hardwareConcurrency || 1;
    // The env is read when the first session initialises the wasm module, once per page.
    if (!OrtKernels.initialised) {
      ort.env.wasm.wasmPaths = options.wasmPaths || ORT_DIST;
      ort.env.wasm.numThreads = options.numThreads || (isolated ? cores : 1);
      ort.env.wasm.proxy = false;
      ort.env.logLevel = "error";
      OrtKernels.initialised = true;
    }
    const kernels = new OrtKernels(ort.env.wasm.numThreads, options.bakeBytes ?? BAKE_BYTES);
    await kernels.session("warmup", () => matmulGraph("float32", 2, 2, false, false));
    return kernels;
  }

  constructor(numThreads, bakeBytes) {
    this.numThreads = numThreads;
    this.sessions = new Map(); // key -> Promise<InferenceSession>
    this.bakeBytes = bakeBytes;
    this.bakedBytes = 0;
    this.weights = new WeakMap(); // Float32Array -> {uses, sessions: Map(key -> Promise), failed}
  }

  static createSession(graph) {
    return ort.InferenceSession.create(modelBytes(graph), {
      executionProviders: ["wasm"],
      graphOptimizationLevel: "all",
      logSeverityLevel: 3,
    });
  }

  // The cached session for `key`; `build` returns the graph (modelBytes' argument).
  session(key, build) {
    let session = this.sessions.get(key);
    if (!session) {
      session = OrtKernels.createSession(build());
      this.sessions.set(key, session);
      session.catch(() => this.sessions.delete(key));
    }
    return session;
  }

  // Counts a use of `weight` ([rows, cols] = dims) as a matmul's right operand; a
  // Promise of a session computing A @ op(weight) with it baked in, or null (not
  // baked: too small, first use, over budget, or ORT refused it).
  bakedSession(weight, dims, transposeA, transposeB) {
    if (weight.length < BAKE_MIN_ELEMENTS || this.bakeBytes <= 0) return null;
    let entry = this.weights.get(weight);
    if (!entry) {
      entry = { uses: 0, sessions: new Map(), failed: false };
      this.weights.set(weight, entry);
    }
    entry.uses += 1;
    if (entry.failed || entry.uses < BAKE_USES) return null;
    const key = `${transposeA}:${transposeB}`;
    let session = entry.sessions.get(key);
    if (!session) {
      if (this.bakedBytes + weight.byteLength > this.bakeBytes) return null;
      this.bakedBytes += weight.byteLength;
      session = OrtKernels.createSession(bakedGemmGraph(weight, dims, transposeA, transposeB)).catch(() => {
        entry.failed = true; // e.g. wasm memory exhausted: keep copying it in instead
        entry.sessions.delete(key);
        this.bakedBytes -= weight.byteLength;
        return null;
      });
      entry.sessions.set(key, session);
    }
    return session;
  }

  // `array` no longer holds a tensor (and may be reused): release what was baked from it.
  forget(array) {
    const entry = this.weights.get(array);
    if (!entry) return;
    this.weights.delete(array);
    for (const pending of entry.sessions.values()) {
      pending.then((session) => {
        if (!session) return;
        this.bakedBytes -= array.byteLength;
        session.release();
      });
    }
  }

  async run(key, build, feeds) {
    const session = await this.session(key, build);
    const inputs = {};
    for (const [name, [elem, data, dims]] of Object.entries(feeds)) {
      inputs[name] = new ort.Tensor(elem, data, dims);
    }
    return session.run(inputs);
  }
}

// -- graphs ---------------------------------------------------------------------

// Dimension names prefix0, prefix1, ... for a value of this rank (sizes left to onnxruntime).
export function symbolic(prefix, rank) {
  return Array.from({ length: rank }, (_, i) => `${prefix}${i}`);
}

export function swapLast(rank) {
  const perm = Array.from({ length: rank }, (_, i) => i);
  [perm[rank - 2], perm[rank - 1]] = [perm[rank - 1], perm[rank - 2]];
  return perm;
}

// Y = op(A) @ op(B): Gemm for 2-d float operands (transposes read in place),
// else MatMul with numpy broadcasting and explicit Transpose nodes.
function matmulGraph(elem, rankA, rankB, transposeA, transposeB) {
  const type = ELEMENT[elem];
  const inputs = [tensorInfo("A", type, symbolic("a", rankA)), tensorInfo("B", type, symbolic("b", rankB))];
  const outputs = [tensorInfo("Y", type, symbolic("y", Math.max(rankA, rankB)))];
  if (elem === "float32" && rankA === 2 && rankB === 2) {
    const nodes = [node("Gemm", ["A", "B"], ["Y"], { transA: transposeA ? 1 : 0, transB: transposeB ? 1 : 0 })];
    return { inputs, outputs, nodes };
  }
  const nodes = [];
  let a = "A";
  let b = "B";
  if (transposeA) nodes.push(node("Transpose", ["A"], [(a = "At")], { perm: swapLast(rankA) }));
  if (transposeB) nodes.push(node("Transpose", ["B"], [(b = "Bt")], { perm: swapLast(rankB) }));
  nodes.push(node("MatMul", [a, b], ["Y"]));
  return { inputs, outputs, nodes };
}

// Y [m, n] = op(A) @ op(W) with W baked in.
function bakedGemmGraph(weight, dims, transposeA, transposeB) {
  return {
    inputs: [tensorInfo("A", ONNX_FLOAT, ["a0", "a1"])],
    outputs: [tensorInfo("Y", ONNX_FLOAT, ["m", "n"])],
    initializers: [floatTensor("W", dims, weight)],
    nodes: [node("Gemm", ["A", "W"], ["Y"], { transA: transposeA ? 1 : 0, transB: transposeB ? 1 : 0 })],
  };
}

// scores [b, g, r*p, k] = (q [b, p, h, e] as [b, g, r*p, e]) @ (k [b, k, g, e] as [b, g, e, k]);
// with h = g*r, the rows are [b, h, p] in order: query head j uses key head j / r.
function scoresGraph(kvHeads) {
  return {
    inputs: [tensorInfo("Q", ONNX_FLOAT, ["b", "p", "h", "e"]), tensorInfo("K", ONNX_FLOAT, ["b", "k", kvHeads, "e"])],
    outputs: [tensorInfo("S", ONNX_FLOAT, ["b", kvHeads, "rp", "k"])],
    initializers: [int64Tensor("groups", [0, kvHeads, -1, 0])],
    nodes: [
      node("Transpose", ["Q"], ["Qt"], { perm: [0, 2, 1, 3] }),
      node("Reshape", ["Qt", "groups"], ["Qg"]),
      node("Transpose", ["K"], ["Kt"], { perm: [0, 2, 3, 1] }),
      node("MatMul", ["Qg", "Kt"], ["S"]),
    ],
  };
}

// z [b, p, h, e] from pattern [b, g, r*p, k] @ (v [b, k, g, e] as [b, g, k, e]).
function mixGraph(heads, kvHeads) {
  return {
    inputs: [tensorInfo("P", ONNX_FLOAT, ["b", kvHeads, "rp", "k"]), tensorInfo("V", ONNX_FLOAT, ["b", "k", kvHeads, "e"])],
    outputs: [tensorInfo("Z", ONNX_FLOAT, ["b", "p", heads, "e"])],
    initializers: [int64Tensor("heads", [0, heads, -1, 0])],
    nodes: [
      node("Transpose", ["V"], ["Vt"], { perm: [0, 2, 1, 3] }),
      node("MatMul", ["P", "Vt"], ["Zg"]),
      node("Reshape", ["Zg", "heads"], ["Zh"]),
      node("Transpose", ["Zh"], ["Z"], { perm: [0, 2, 1, 3] }),
    ],
  };
}

// -- ops ------------------------------------------------------------------------

function asFloat(tensor) {
  return tensor.data instanceof Float32Array ? tensor.data : Float32Array.from(tensor.data);
}

function convertInto(out, data) {
  const Type = deviceArrayType(out.dtype);
  if (data instanceof Type) return data;
  const converted = new Type(data.length);
  if (Type === Uint8Array) for (let i = 0; i < data.length; i++) converted[i] = data[i] !== 0 ? 1 : 0;
  else converted.set(data);
  return converted;
}

async function matmul(backend, [out], { a, b, transpose_a: transposeA, transpose_b: transposeB }) {
  const left = backend.input(a);
  const right = backend.input(b);
  const inner = transposeA ? left.shape[left.shape.length - 2] : left.shape[left.shape.length - 1];
  if (sizeOf(out.shape) === 0 || inner === 0) {
    backend.zeros(out); // empty, or a sum over nothing
    return;
  }
  const integer = left.data instanceof Int32Array && right.data instanceof Int32Array;
  const elem = integer ? "int32" : "float32";
  const dataA = integer ? left.data : asFloat(left);
  const dataB = integer ? right.data : asFloat(right);
  let dimsA = left.shape;
  // A 2-d right operand: fold the batch axes of the left one into its rows (a view),
  // so the common x @ W runs as one Gemm.
  if (right.shape.length === 2 && left.shape.length > 2 && !transposeA) {
    dimsA = [sizeOf(left.shape.slice(0, -1)), inner];
  }
  if (!integer && dimsA.length === 2 && right.shape.length === 2 && right.data instanceof Float32Array) {
    const baked = backend.ort.bakedSession(right.data, right.shape, transposeA, transposeB);
    const session = baked && await baked;
    if (session) {
      const result = await session.run({ A: new ort.Tensor("float32", dataA, dimsA) });
      backend.define(out, convertInto(out, result.Y.data));
      return;
    }
  }
  const key = `matmul:${elem}:${dimsA.length}:${right.shape.length}:${transposeA}:${transposeB}`;
  const result = await backend.ort.run(key, () => matmulGraph(elem, dimsA.length, right.shape.length, transposeA, transposeB), {
    A: [elem, dataA, dimsA],
    B: [elem, dataB, right.shape],
  });
  backend.define(out, convertInto(out, result.Y.data));
}

async function attention(backend, outs, { q, k, v, mask, scale, return_pattern: returnPattern }) {
  const query = backend.input(q);
  const key = backend.input(k);
  const value = backend.input(v);
  const allowed = backend.input(mask);
  const [batch, queries, heads, dHead] = query.shape;
  const [, keys, kvHeads] = key.shape;
  if (heads % kvHeads !== 0) {
    throw new Error(`attention: ${heads} query heads are not a multiple of ${kvHeads} key/value heads`);
  }
  const rows = batch * heads * queries;
  let pattern;
  if (rows === 0 || keys === 0 || dHead === 0) {
    pattern = new Float32Array(rows * keys);
  } else {
    const scores = await backend.ort.run(`attention_scores:${kvHeads}`, () => scoresGraph(kvHeads), {
      Q: ["float32", asFloat(query), query.shape],
      K: ["float32", asFloat(key), key.shape],
    });
    pattern = scores.S.data;
  }
  maskedSoftmax(pattern, batch, heads, queries, keys, scale, allowed);
  const [zOut, patternOut] = outs;
  if (returnPattern && patternOut) backend.define(patternOut, pattern);
  if (sizeOf(zOut.shape) === 0 || keys === 0) {
    backend.zeros(zOut);
    return;
  }
  const mixed = await backend.ort.run(`attention_mix:${heads}:${kvHeads}`, () => mixGraph(heads, kvHeads), {
    P: ["float32", pattern, [batch, kvHeads, (heads / kvHeads) * queries, keys]],
    V: ["float32", asFloat(value), value.shape],
  });
  backend.define(zOut, mixed.Z.data);
}

// In place on scores [b, h, p, k]: scale, mask (bool [b or 1, p, k], or causal with
// the queries aligned to the last keys), then softmax over keys; a row with no
// allowed key becomes zeros (numpy_backend.softmax).
function maskedSoftmax(scores, batch, heads, queries, keys, scale, mask) {
  const maskData = mask ? mask.data : null;
  const maskBatchStride = mask && mask.shape[0] !== 1 ? queries * keys : 0;
  const offset = keys - queries;
  let row = 0;
  for (let bi = 0; bi < batch; bi++) {
    for (let hi = 0; hi < heads; hi++) {
      for (let qi = 0; qi < queries; qi++, row += keys) {
        let peak = -Infinity;
        if (maskData) {
          const m = bi * maskBatchStride + qi * keys;
          for (let j = 0; j < keys; j++) {
            const s = maskData[m + j] ? Math.fround(scores[row + j] * scale) : -Infinity;
            scores[row + j] = s;
            if (s > peak) peak = s;
          }
        } else {
          const last = Math.min(qi + offset, keys - 1);
          for (let j = 0; j <= last; j++) {
            const s = Math.fround(scores[row + j] * scale);
            scores[row + j] = s;
            if (s > peak) peak = s;
          }
          for (let j = Math.max(last + 1, 0); j < keys; j++) scores[row + j] = -Infinity;
        }
        if (!Number.isFinite(peak)) peak = 0;
        let total = 0;
        for (let j = 0; j < keys; j++) {
          const e = fastExp(scores[row + j] - peak);
          scores[row + j] = e;
          total += e;
        }
        const inverse = total === 0 ? 1 : 1 / total;
        for (let j = 0; j < keys; j++) scores[row + j] *= inverse;
      }
    }
  }
}

export const ORT_OPS = { matmul, attention };
