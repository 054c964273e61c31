// Runs of queued ops as one onnxruntime graph (the CPU backend's segments). The CPU
// backend (cpu.js) queues ops until Python reads a value; at that point the whole
// window of work (a forward pass, every cached hook included) is in its queue. A run
// of consecutive ops that onnxruntime can express (matmul, float arithmetic, the
// activations, norms, reshapes, permutes and attention) becomes one ONNX graph: its
// inputs are the tensors it reads from outside, every value it makes is a graph
// output (but a reshape's, which shares its source's array, as the JS reshape does),
// and each run fetches only those still held after it (a cached activation, the
// residual the next op reads) — so every hook point keeps its value, and ops that
// edit an activation (or anything outside the list) simply end a segment and run in
// JS between two graphs. onnxruntime then runs the elementwise work on its threads,
// in SIMD, without a copy into and out of wasm around each matmul.
//
// A segment is keyed by its structure (ops, parameters, ranks, which weights), not by
// sizes: one graph serves every batch and prompt length. It is compiled the first
// time its key is seen, with matmul weights baked in as initializers (GPT-2 small:
// 1.5 s alone, up to 7 s beside another large session), and kept until evicted
// (least recently used) to keep the baked bytes in budget. Compiling at once, not on a second sighting, keeps results reproducible:
// the same work always takes the same path, so rerunning it gives the same bits
// (onnxruntime's kernels round transcendental functions and sums differently from
// the JS ones). Semantics are those of the ops one by one
// (py/neuroscope/backends/numpy_backend.py); tests/browser/test_cpu_graphs.py holds
// segments to them.

import * as ort from "../../node_modules/onnxruntime-web/dist/ort.wasm.min.mjs";
import { sizeOf } from "./cpu_layout.js";
import { swapLast, symbolic } from "./cpu_ort.js";
import { floatTensor, int64Tensor, modelBytes, node, tensorInfo, CONTRIB_DOMAIN, ONNX_BOOL, ONNX_FLOAT } from "./onnx_graph.js";

const MAX_OPS = 4096;
// The values a graph makes are its outputs, which onnxruntime holds until the run
// ends: a segment stops growing at this many bytes of them (long prompts split).
const MAX_SEGMENT_BYTES = 256 * 2 ** 20;
const MAX_SESSIONS = 256; // compiled graphs kept (least recently used go first)
// A segment stops growing before its baked weights pass this many bytes (a model
// larger than that runs as several graphs).
const MAX_SEGMENT_WEIGHT_BYTES = 384 * 2 ** 20;
const BAKE_MIN_ELEMENTS = 1 << 16; // a matmul's right operand this large is baked (a weight)
// The graphs are emitted as they should run (Gemm for x @ W, no Identity nodes), so
// onnxruntime's graph optimisers are off: they added 2-4 s to compiling
// GPT-2 small (1.4 s without) and nothing measurable to a run.
const SESSION_OPTIONS = { executionProviders: ["wasm"], graphOptimizationLevel: "disabled", logSeverityLevel: 3 };

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
const OPS = {
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
function encodeValue(value) {
  if (typeof value === "number") return Object.is(value, -0) ? "-0" : String(value);
  if (Array.isArray(value)) return `[${value.map(encodeValue).join(",")}]`;
  return JSON.stringify(value);
}

function isTensor(value) {
  return value !== null && typeof value === "object" && "tensor" in value;
}

// The ONNX graph of one segment, built from its planned ops.
class GraphBuilder {
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

// Plans, compiles and runs segments for one CpuBackend.
export class SegmentGraphs {
  constructor(backend) {
    this.backend = backend;
    this.ort = backend.ort;
    this.compiled = new Map(); // key -> {session: Promise, baked: [arrays], bytes}; insertion order = LRU
    this.failed = new Set();
    this.serials = new WeakMap(); // baked array -> serial in keys
    this.nextSerial = 1;
    this.permits = new WeakMap(); // matrix -> baked (true) or fed (false), for its life
    this.permittedBytes = 0;
    this.bakedBytes = 0; // in compiled graphs (a weight baked into two graphs counts twice)
    // Counters, read by tests and benchmarks (bakedWeights: weights allowed into graphs,
    // fedWeights: weights past the bake budget; times in ms, summed).
    this.stats = { graphRuns: 0, compiled: 0, evicted: 0, failures: 0, bakedWeights: 0, fedWeights: 0, compileMs: 0,
      runMs: 0 };
  }

  // The segment starting at items[start]: the run of ops a graph can hold (frees
  // between them included) as {end, key, ...}; null when items[start] cannot be in one.
  plan(items, start) {
    const tensors = this.backend.tensors;
    const produced = new Map(); // id -> {shape}
    const externals = new Map(); // id -> {id, shape, bool, data, bakeable}
    const outputIndex = new Map();
    const outputs = [];
    const aliases = new Map(); // a reshape's output id -> the id whose data it shares
    const ops = [];
    const frees = [];
    let end = start;
    let bytes = 0;
    const sizes = { weights: 0 }; // bytes of the weights it would bake
    for (let i = start; i < items.length && ops.length < MAX_OPS && bytes < MAX_SEGMENT_BYTES &&
      sizes.weights < MAX_SEGMENT_WEIGHT_BYTES; i++) {
      const item = items[i];
      if (item.free !== undefined) {
        frees.push(item.free);
        end = i + 1;
        continue;
      }
      const spec = Object.hasOwn(OPS, item.op) ? OPS[item.op] : null;
      const shapes = spec && this._accepts(spec, item, produced, externals, tensors, sizes);
      if (!shapes) break;
      for (const out of item.outs) {
        if (!out) continue;
        produced.set(out.id, { shape: out.shape });
        if (item.op === "reshape") { // not a graph output: a copy there, a shared array here
          const source = item.params.x.tensor;
          aliases.set(out.id, aliases.get(source) ?? source);
          continue;
        }
        outputIndex.set(out.id, outputs.length);
        outputs.push(out.shape);
        bytes += 4 * sizeOf(out.shape);
      }
      ops.push({ ...item, shapes });
      end = i + 1;
    }
    if (!ops.length) return null;
    const freed = new Set(frees);
    const kept = ops.flatMap((item) => item.outs.filter((out) => out && !freed.has(out.id)));
    // The graph outputs to fetch: the values held after the run, a held reshape's source.
    const fetched = [...new Set(kept.map((out) => aliases.get(out.id) ?? out.id))].filter((id) => outputIndex.has(id));
    return { start, end, ops, frees, kept, fetched, aliases, externals: [...externals.values()], outputIndex, outputs,
      key: this._key(ops, externals, produced) };
  }

  // The shapes of the op's tensor inputs ({name: {shape}}) when it can be in this
  // graph (its externals then noted in `externals`), else null.
  _accepts(spec, item, produced, externals, tensors, sizes) {
    const { params, outs } = item;
    if (item.op === "attention" && outs[1] && !params.return_pattern) return null;
    if (!outs.every((out) => !out || (out.dtype === "float32" && sizeOf(out.shape) > 0 && !produced.has(out.id)))) {
      return null;
    }
    const inputs = {};
    const found = [];
    for (const name of spec.tensors) {
      const value = params[name];
      if (value === null || value === undefined || (item.op === "binary" && typeof value === "number")) continue;
      if (!isTensor(value)) return null;
      const inner = produced.get(value.tensor);
      if (inner) {
        inputs[name] = inner;
        continue;
      }
      const tensor = tensors.get(value.tensor);
      const mask = item.op === "attention" && name === "mask";
      if (!tensor || !tensor.data || tensor.dtype !== (mask ? "bool" : "float32") || sizeOf(tensor.shape) === 0) {
        return null;
      }
      inputs[name] = tensor;
      found.push([value.tensor, tensor, item.op === "matmul" && name === "b"]);
    }
    if (!spec.accepts(params, inputs)) return null;
    for (const [id, tensor, rightOperand] of found) {
      let external = externals.get(id);
      if (!external) {
        external = { id, shape: tensor.shape, bool: tensor.dtype === "bool", data: tensor.data, bakeable: false };
        externals.set(id, external);
      }
      // Baked (when permitted): a 2-d float32 right operand of a matmul, that large.
      // Its other uses in the graph read the same initializer.
      const weight = rightOperand && tensor.shape.length === 2 && tensor.data.length >= BAKE_MIN_ELEMENTS;
      if (weight && !external.bakeable) sizes.weights += tensor.data.byteLength;
      external.bakeable = external.bakeable || weight;
    }
    return inputs;
  }

  // The segment's structure: ops, their parameters (sizes left out, but for the
  // ranks and each op's signature), where each tensor comes from (an earlier op, an
  // input, or a baked weight by identity and shape).
  _key(ops, externals, produced) {
    const labels = new Map();
    let slot = 0;
    for (const external of externals.values()) {
      external.baked = external.bakeable && this._permit(external.data);
      labels.set(external.id, external.baked ? `w${this._serial(external.data)}[${external.shape}]`
        : `x${slot}:${external.bool ? "b" : "f"}${external.shape.length}`);
      slot += 1;
    }
    let index = 0;
    for (const id of produced.keys()) labels.set(id, `%${index++}`);
    const encode = (value) => (isTensor(value) ? labels.get(value.tensor) : encodeValue(value));
    return ops.map(({ op, params, outs, shapes }) => {
      const args = Object.entries(params).filter(([name]) => !(op === "reshape" && name === "shape"));
      return `${op}(${args.map(([, value]) => encode(value)).join(",")})` +
        `${OPS[op].signature(params, shapes)}->${outs.map((out) => (out ? out.shape.length : "-")).join(",")}`;
    }).join("\n");
  }

  _serial(array) {
    let serial = this.serials.get(array);
    if (!serial) {
      serial = this.nextSerial++;
      this.serials.set(array, serial);
    }
    return serial;
  }

  // True when the segment ran as one graph (its outputs are defined and its frees
  // done); false when it should go op by op (not compiled yet, or it failed).
  async run(plan) {
    if (!plan.outputs.length) { // reshapes only: nothing to compute
      this._finish(plan, {});
      return true;
    }
    if (this.failed.has(plan.key)) return false;
    let entry = this.compiled.get(plan.key);
    if (!entry) {
      entry = this._compile(plan);
      if (!entry) return false;
    } else {
      this.compiled.delete(plan.key); // most recently used last
      this.compiled.set(plan.key, entry);
    }
    const session = await entry.session;
    if (!session) return false;
    let results;
    try {
      const feeds = {};
      plan.externals.forEach((external, slot) => {
        if (external.baked) return;
        const data = this.backend.tensors.get(external.id).data;
        feeds[`x${slot}`] = new ort.Tensor(external.bool ? "bool" : "float32", data, external.shape);
      });
      const fetches = plan.fetched.map((id) => `o${plan.outputIndex.get(id)}`);
      const began = performance.now();
      // Nothing it makes is still held: there is nothing to run.
      results = fetches.length ? await session.run(feeds, fetches) : {};
      this.stats.runMs += performance.now() - began;
      for (const out of plan.kept) {
        const source = plan.aliases.get(out.id) ?? out.id;
        if (!plan.outputIndex.has(source)) continue; // a reshape of an input
        const dims = results[`o${plan.outputIndex.get(source)}`].dims;
        const fits = source === out.id ? dims.length === out.shape.length && dims.every((d, i) => d === out.shape[i])
          : sizeOf(dims) === sizeOf(out.shape);
        if (!fits) throw new Error(`output ${out.id} came out [${dims}], not [${out.shape}]`);
      }
    } catch (error) {
      this.failed.add(plan.key);
      this._drop(plan.key);
      this.stats.failures += 1;
      console.warn(`a graph of ${plan.ops.length} ops failed in onnxruntime (${error.message}); ` +
        "those ops run one by one");
      return false;
    }
    this._finish(plan, results);
    this.stats.graphRuns += 1;
    return true;
  }

  // Defines the values held after the segment (a reshape shares its source's array) and
  // does its frees.
  _finish(plan, results) {
    for (const out of plan.kept) {
      const source = plan.aliases.get(out.id) ?? out.id;
      const data = plan.outputIndex.has(source) ? results[`o${plan.outputIndex.get(source)}`].data
        : this.backend.tensors.get(source).data;
      this.backend.define(out, data);
    }
    for (const id of plan.frees) this.backend._release(id);
  }

  // Whether `array` (a weight) is baked into graphs: decided once per array, the first
  // time a graph holds it, while the weights allowed so far fit the bake budget; a
  // weight past it is an input, copied in each run. Only weights (backend.weights:
  // uploaded, or marked by Python as a model's) are baked: a matrix an op made is new
  // each pass, and baking it would compile a graph each pass. The answer never changes
  // while the array lives (one marked a weight only after a graph fed it stays fed),
  // because baked and fed weights round differently (onnxruntime's prepacked GEMM): the
  // same work must always run the same graph.
  _permit(array) {
    let permit = this.permits.get(array);
    if (permit === undefined) {
      permit = this.backend.weights.has(array) && this.permittedBytes + array.byteLength <= this.ort.bakeBytes;
      if (permit) {
        this.permittedBytes += array.byteLength;
        this.stats.bakedWeights += 1;
      } else if (this.backend.weights.has(array)) {
        this.stats.fedWeights += 1;
      }
      this.permits.set(array, permit);
    }
    return permit;
  }

  // Compiles the plan's graph (entry {session, baked: [arrays], bytes}), its permitted
  // weights baked in.
  _compile(plan) {
    const baked = new Map(); // slot -> array
    let bytes = 0;
    plan.externals.forEach((external, slot) => {
      if (!external.baked) return;
      baked.set(slot, external.data);
      bytes += external.data.byteLength;
    });
    this._makeRoom(bytes);
    const builder = new GraphBuilder(plan, baked);
    for (const item of plan.ops) OPS[item.op].emit(builder, item.params, item.outs, item.shapes);
    this.bakedBytes += bytes;
    const entry = { baked: [...baked.values()], bytes, session: null };
    const began = performance.now();
    entry.session = ort.InferenceSession.create(modelBytes(builder.graph()), SESSION_OPTIONS).then((session) => {
      this.stats.compileMs += performance.now() - began;
      return session;
    }).catch((error) => {
      this.failed.add(plan.key);
      this._drop(plan.key);
      this.stats.failures += 1;
      console.warn(`onnxruntime refused a graph of ${plan.ops.length} ops (${error.message}); ` +
        "those ops run one by one");
      return null;
    });
    this.compiled.set(plan.key, entry);
    this.stats.compiled += 1;
    // Those weights are now baked here: their one-op sessions would hold a second copy.
    for (const array of baked.values()) this.ort.forget(array);
    return entry;
  }

  // Evicts least-recently-used graphs until `bytes` more baked bytes fit the budget
  // (a graph evicted is compiled again, the same, when next needed).
  _makeRoom(bytes) {
    for (const key of [...this.compiled.keys()]) {
      if (this.bakedBytes + bytes <= this.ort.bakeBytes && this.compiled.size < MAX_SESSIONS) break;
      this._drop(key);
      this.stats.evicted += 1;
    }
  }

  _drop(key) {
    const entry = this.compiled.get(key);
    if (!entry) return;
    this.compiled.delete(key);
    this.bakedBytes -= entry.bytes;
    entry.session.then((session) => session?.release());
  }

  // `array` no longer holds a tensor: sessions that baked it are dropped.
  forget(array) {
    if (this.permits.get(array)) this.permittedBytes -= array.byteLength;
    this.permits.delete(array);
    if (!this.serials.has(array)) return;
    this.serials.delete(array);
    for (const [key, entry] of [...this.compiled.entries()]) if (entry.baked.includes(array)) this._drop(key);
  }
}
