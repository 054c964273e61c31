// The ONNX nodes of each op the cpu backend's graphs hold (cpu_graph.js plans and runs
// the segments): per op, which parameters are tensors, whether a call fits, the shape
// facts its nodes depend on, and its emitter; and GraphBuilder, which writes one
// segment's graph from its planned ops. Semantics are those of the ops one by one
// (py/neuroscope/backends/numpy_backend.py).

import { sizeOf } from "./cpu_layout.js";
import { swapLast, symbolic } from "./cpu_ort.js";
import { floatTensor, int64Tensor, node, tensorInfo, CONTRIB_DOMAIN, ONNX_BOOL, ONNX_FLOAT } from "./onnx_graph.js";

// name -> (graph, x, out) emitting out = op(x).
const UNARY = {
  neg: (g, x, out) => g.add("Neg", [x], {}, out),
  exp: (g, x, out) => g.add("Exp", [x], {}, out),
  log: (g, x, out) => g.add("Log", [x], {}, out),
  sqrt: (g, x, out) => g.add("Sqrt", [x], {}, out),
  rsqrt: (g, x, out) => g.add("Reciprocal", [g.add("Sqrt", [x])], {}, out),
  tanh: (g, x, out) => g.add("Tanh", [x], {}, out),
  abs: (g, x, out) => g.add("Abs", [x], {}, out),
  square: (g, x, out) => g.add("Mul", [x, x], {}, out),
  relu: (g, x, out) => g.add("Relu", [x], {}, out),
  sigmoid: (g, x, out) => g.add("Sigmoid", [x], {}, out),
  silu: (g, x, out) => g.add("Mul", [x, g.add("Sigmoid", [x])], {}, out),
  // 0.5 x (1 + erf(x / sqrt 2))
  gelu: (g, x, out) => g.add("Mul", [g.add("Mul", [x, g.scalar(0.5)]),
    g.add("Add", [g.scalar(1), g.add("Erf", [g.add("Mul", [x, g.scalar(Math.SQRT1_2)])])])], {}, out),
  // 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))): onnxruntime's fused kernel (one
  // pass, 1.5x faster than six nodes; within 1.1e-6 of float64, as the six nodes are).
  gelu_new: (g, x, out) => g.add("FastGelu", [x], {}, out, CONTRIB_DOMAIN),
};

const BINARY = { add: "Add", sub: "Sub", mul: "Mul", div: "Div", pow: "Pow" };

// Per op: which parameters are tensors; whether this call can run in a graph
// (accepts, from the parameters and the input shapes t); the shape facts its nodes
// depend on (signature, part of the segment's key: the graphs are otherwise free of
// sizes, so one graph serves every batch and prompt length); and its ONNX nodes.
export const OPS = {
  matmul: {
    tensors: ["a", "b"],
    accepts: (p, t) => t.a.shape.length >= 2 && t.b.shape.length >= 2,
    signature: () => "",
    emit: emitMatmul,
  },
  binary: {
    tensors: ["a", "b"],
    accepts: (p) => Object.hasOwn(BINARY, p.op) && (typeof p.a !== "number" || typeof p.b !== "number"),
    signature: () => "",
    emit: (g, p, [out]) => g.add(BINARY[p.op], [g.operand(p.a), g.operand(p.b)], {}, out),
  },
  unary: {
    tensors: ["x"],
    accepts: (p) => Object.hasOwn(UNARY, p.op),
    signature: () => "",
    emit: (g, p, [out]) => UNARY[p.op](g, g.ref(p.x), out),
  },
  layer_norm: {
    tensors: ["x", "weight", "bias"],
    accepts: (p, t) => !t.weight || t.weight.shape.length === 1,
    signature: (p, t) => (p.weight ? "" : `${t.x.shape[t.x.shape.length - 1]}`),
    emit: emitLayerNorm,
  },
  rms_norm: {
    tensors: ["x", "weight"],
    accepts: () => true,
    signature: () => "",
    emit: emitRmsNorm,
  },
  reshape: {
    tensors: ["x"],
    accepts: (p) => p.shape.every((d) => d > 0),
    signature: (p, t) => `${reshapeSpec(t.x.shape, p.shape)}`,
    emit: (g, p, [out], t) => g.internal(out, g.add("Reshape", [g.ref(p.x), g.ints(reshapeSpec(t.x.shape, p.shape))])),
  },
  permute: {
    tensors: ["x"],
    accepts: () => true,
    signature: () => "",
    emit: (g, p, [out]) => g.add("Transpose", [g.ref(p.x)], { perm: p.axes }, out),
  },
  attention: {
    tensors: ["q", "k", "v", "mask"],
    accepts: (p, t) => t.q.shape[2] % t.k.shape[2] === 0 && (!t.mask || t.mask.shape.length === 3),
    signature: (p, t) => `${t.q.shape[2]},${t.k.shape[2]},${t.q.shape[3]},` +
      (p.mask ? "mask" : `causal${t.k.shape[1] >= t.q.shape[1] ? "" : ",empty rows"}`),
    emit: emitAttention,
  },
};

// A Reshape target for `target` from `source` that holds for other lengths too: a
// dimension equal to the source's at the same index is copied (0), and one other is
// inferred (-1): the last that is neither 1 nor the source's feature size (so
// [b*p, d] -> [b, p, d] infers p), else the first; the rest are fixed. Checked
// against this call (the fixed target if it fails); the key holds it.
function reshapeSpec(source, target) {
  const spec = target.map((d, i) => (i < source.length && source[i] === d ? 0 : d));
  const features = source[source.length - 1];
  let free = -1;
  spec.forEach((d, i) => {
    if (d !== 0 && d !== 1 && d !== features) free = i;
  });
  if (free < 0) free = spec.findIndex((d) => d !== 0);
  if (free >= 0) spec[free] = -1;
  const copied = spec.map((d, i) => (d === 0 ? source[i] : d));
  const known = copied.reduce((product, d) => (d === -1 ? product : product * d), 1);
  const inferred = copied.map((d) => (d === -1 ? sizeOf(source) / known : d));
  return inferred.every((d, i) => d === target[i]) ? spec : target;
}

function emitMatmul(g, p, [out], t) {
  const rankA = t.a.shape.length;
  if (t.b.shape.length === 2 && rankA > 2 && !p.transpose_a && !p.transpose_b) {
    // x @ W with leading axes: MatMul folds them into rows itself and writes the
    // output in place (W prepacked once when baked); the node depends on ranks only.
    g.add("MatMul", [g.ref(p.a), g.ref(p.b)], {}, out);
    return;
  }
  if (t.b.shape.length === 2 && (rankA === 2 || !p.transpose_a)) {
    // x @ W (W transposed too): Gemm reads W transposed in place (prepacked once when
    // baked), the left operand's leading axes folded into its rows and unfolded after.
    // Whether W is baked or not, the same kernel runs: the node depends on ranks only.
    const attributes = { transA: p.transpose_a ? 1 : 0, transB: p.transpose_b ? 1 : 0 };
    if (rankA === 2) {
      g.add("Gemm", [g.ref(p.a), g.ref(p.b)], attributes, out);
      return;
    }
    const a = g.ref(p.a);
    const shape = g.add("Shape", [a]);
    const rows = g.add("Reshape", [a, g.add("Concat", [g.ints([-1]), g.add("Slice", [shape, g.ints([-1]), g.ints([rankA])])],
      { axis: 0 })]);
    const product = g.add("Gemm", [rows, g.ref(p.b)], attributes);
    const columns = g.add("Slice", [g.add("Shape", [product]), g.ints([1]), g.ints([2])]);
    g.add("Reshape", [product, g.add("Concat", [g.add("Slice", [shape, g.ints([0]), g.ints([-1])]), columns], { axis: 0 })],
      {}, out);
    return;
  }
  let a = g.ref(p.a);
  let b = g.ref(p.b);
  if (p.transpose_a) a = g.add("Transpose", [a], { perm: swapLast(rankA) });
  if (p.transpose_b) b = g.add("Transpose", [b], { perm: swapLast(t.b.shape.length) });
  g.add("MatMul", [a, b], {}, out);
}

function emitLayerNorm(g, p, [out], t) {
  const size = t.x.shape[t.x.shape.length - 1];
  const scale = p.weight ? g.ref(p.weight) : g.floats([size], new Float32Array(size).fill(1));
  const inputs = [g.ref(p.x), scale, ...(p.bias ? [g.ref(p.bias)] : [])];
  g.add("LayerNormalization", inputs, { axis: -1, epsilon: { float: p.eps } }, out);
}

function emitRmsNorm(g, p, [out]) {
  const x = g.ref(p.x);
  const meanSquare = g.add("Add", [g.add("ReduceMean", [g.add("Mul", [x, x])], { axes: [-1], keepdims: 1 }),
    g.scalar(p.eps)]);
  const root = g.add("Sqrt", [meanSquare]);
  if (p.weight) g.add("Mul", [g.add("Div", [x, root]), g.ref(p.weight)], {}, out);
  else g.add("Div", [x, root], {}, out);
}

// numpy_backend.attention: scores = q k^T * scale, masked to -inf, a safe softmax
// (a row with no allowed key is zeros), z = pattern v; query head j reads kv head j / r.
// Only the head counts and d_head are fixed; batch, queries and keys come from q, k.
function emitAttention(g, p, [zOut, patternOut], t) {
  const [, , heads, dHead] = t.q.shape;
  const kvHeads = t.k.shape[2];
  const qt = g.add("Reshape", [g.add("Transpose", [g.ref(p.q)], { perm: [0, 2, 1, 3] }), g.ints([0, kvHeads, -1, dHead])]);
  const kt = g.add("Transpose", [g.ref(p.k)], { perm: [0, 2, 3, 1] });
  const scores = g.add("Mul", [g.add("Reshape", [g.add("MatMul", [qt, kt]), g.ints([0, heads, -1, 0])]),
    g.scalar(p.scale)]); // [b, h, p, k]
  let allowed;
  let emptyRows = true;
  if (p.mask) {
    allowed = g.add("Unsqueeze", [g.ref(p.mask), g.ints([1])]); // [b or 1, 1, p, k]
  } else {
    // Causal, the queries aligned to the last keys: key j is allowed for query i when
    // j <= i + (keys - queries).
    const shape = g.add("Shape", [scores]);
    const queries = g.add("Squeeze", [g.add("Slice", [shape, g.ints([2]), g.ints([3])]), g.ints([0])]);
    const keys = g.add("Squeeze", [g.add("Slice", [shape, g.ints([3]), g.ints([4])]), g.ints([0])]);
    const rows = g.add("Unsqueeze", [g.add("Range", [g.int(0), queries, g.int(1)]), g.ints([1])]); // [p, 1]
    const last = g.add("Add", [rows, g.add("Sub", [keys, queries])]);
    allowed = g.add("LessOrEqual", [g.add("Range", [g.int(0), keys, g.int(1)]), last]); // [p, k]
    emptyRows = t.k.shape[1] < t.q.shape[1];
  }
  const named = patternOut && p.return_pattern ? patternOut : null;
  const masked = g.add("Where", [allowed, scores, g.scalar(-Infinity)]);
  let pattern;
  if (emptyRows) {
    const any = g.add("ReduceMax", [g.add("Cast", [allowed], { to: ONNX_FLOAT })], { axes: [-1], keepdims: 1 });
    pattern = g.add("Where", [g.add("Greater", [any, g.scalar(0)]), g.add("Softmax", [masked], { axis: -1 }),
      g.scalar(0)], {}, named);
  } else {
    pattern = g.add("Softmax", [masked], { axis: -1 }, named);
  }
  const mixed = g.add("MatMul", [g.add("Reshape", [pattern, g.ints([0, kvHeads, -1, 0])]),
    g.add("Transpose", [g.ref(p.v)], { perm: [0, 2, 1, 3] })]); // [b, g, r*p, e]
  g.add("Transpose", [g.add("Reshape", [mixed, g.ints([0, heads, -1, 0])])], { perm: [0, 2, 1, 3] }, zOut);
}

// A parameter as key text: unlike JSON, keeps inf, -inf, NaN and -0 apart.
export function encodeValue(value) {
  if (typeof value === "number") return Object.is(value, -0) ? "-0" : String(value);
  if (Array.isArray(value)) return `[${value.map(encodeValue).join(",")}]`;
  return JSON.stringify(value);
}

export function isTensor(value) {
  return value !== null && typeof value === "object" && "tensor" in value;
}

// The ONNX graph of one segment, built from its planned ops.
export class GraphBuilder {
  constructor(plan, baked) {
    this.plan = plan;
    this.nodes = [];
    this.initializers = [];
    this.count = 0;
    this.constants = new Map();
    this.names = new Map(); // tensor id -> value name
    this.baked = baked; // slot -> array baked in as an initializer
    for (const [slot, external] of plan.externals.entries()) {
      const name = `x${slot}`;
      this.names.set(external.id, name);
      if (baked.has(slot)) this.initializers.push(floatTensor(name, external.shape, baked.get(slot)));
    }
  }

  fresh() {
    return `t${this.count++}`;
  }

  ref(value) {
    return this.names.get(value.tensor);
  }

  operand(value) {
    return isTensor(value) ? this.ref(value) : this.scalar(value);
  }

  // Appends a node (of `domain`: onnx_graph.js); `out` (an op output {id}) names its
  // result after that output.
  add(opType, inputs, attributes = {}, out = null, domain = "") {
    const name = out ? this.outputName(out) : this.fresh();
    this.nodes.push(node(opType, inputs, [name], attributes, domain));
    return name;
  }

  // Names op output `out` after `name`, a value that is not a graph output (a reshape's).
  internal(out, name) {
    this.names.set(out.id, name);
    return name;
  }

  outputName(out) {
    const name = `o${this.plan.outputIndex.get(out.id)}`;
    this.names.set(out.id, name);
    return name;
  }

  constant(key, make) {
    if (!this.constants.has(key)) {
      const name = `c${this.constants.size}`;
      this.initializers.push(make(name));
      this.constants.set(key, name);
    }
    return this.constants.get(key);
  }

  scalar(value) {
    return this.constant(`f${Object.is(value, -0) ? "-0" : value}`, (name) => floatTensor(name, [], Float32Array.of(value)));
  }

  ints(values) {
    return this.constant(`i${values}`, (name) => int64Tensor(name, values));
  }

  floats(dims, data) {
    return this.constant(`F${dims}:${data}`, (name) => floatTensor(name, dims, data));
  }

  int(value) {
    return this.constant(`n${value}`, (name) => int64Tensor(name, [value], []));
  }

  graph() {
    const { externals, outputs } = this.plan;
    const inputs = [];
    for (const [slot, external] of externals.entries()) {
      if (this.baked.has(slot)) continue;
      inputs.push(tensorInfo(`x${slot}`, external.bool ? ONNX_BOOL : ONNX_FLOAT, symbolic(`x${slot}_`, external.shape.length)));
    }
    return {
      inputs,
      outputs: outputs.map((shape, i) => tensorInfo(`o${i}`, ONNX_FLOAT, symbolic(`o${i}_`, shape.length))),
      nodes: this.nodes,
      initializers: this.initializers,
    };
  }
}

// The ops graphs can hold (the CPU backend queues these rather than run them at once).
export const GRAPH_OPS = new Set(Object.keys(OPS));
