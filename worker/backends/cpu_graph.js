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
import { encodeValue, GraphBuilder, isTensor, OPS } from "./cpu_graph_ops.js";
import { modelBytes } from "./onnx_graph.js";

export { GRAPH_OPS } from "./cpu_graph_ops.js";

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
// GPT-2 small (1.4 s without) and nothing measurable to a run. The intra-op threads do
// not spin when a run ends: spinning, they kept a core from the worker's own thread
// while it copied the fetched values out and Python went on (GPT-2 small, 2 threads:
// run_with_cache of every hook 630 vs 672 ms, a plain forward the same).
const SESSION_OPTIONS = {
  executionProviders: ["wasm"],
  graphOptimizationLevel: "disabled",
  logSeverityLevel: 3,
  extra: { session: { intra_op: { allow_spinning: "0" } } },
};

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
