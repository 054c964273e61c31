// Micro-benchmark of the CPU kernel backend (worker/backends/cpu.js) in Node, at
// GPT-2-small sizes (1 x 128 tokens). Not a test: it prints medians, and for the
// matmul a ratio against onnxruntime-web's own MatMul session with both operands as
// inputs (the peer). The backend's right operand is reused as a weight is, so after
// the warm-up it runs baked into its session (cpu_ort.js).
//
//   node bench/cpu_kernels.mjs [--threads N] [--repeats N] [--cpu]
//
// Node has no cross-origin isolation, so threads are whatever --threads says.

import * as ort from "../node_modules/onnxruntime-web/dist/ort.wasm.min.mjs";
import CpuBackend from "../worker/backends/cpu.js";
import { OP_TABLE } from "../worker/backends/op_table.js";
import { bindParams } from "../worker/bridge.js";
import { modelBytes, node, tensorInfo, ONNX_FLOAT } from "../worker/backends/onnx_graph.js";

function option(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

const threads = option("threads", 1);
const repeats = option("repeats", 15);

function random(count, seed = 1) {
  const out = new Float32Array(count);
  let s = seed;
  for (let i = 0; i < count; i++) {
    s = (s * 1664525 + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[sorted.length >> 1];
}

// Median wall time in ms; with --cpu, the process's CPU time instead (steadier on a
// shared machine, and the same thing for one thread).
const cpuTime = process.argv.includes("--cpu");
function now() {
  if (!cpuTime) return performance.now();
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}

async function time(fn) {
  await fn(); // warm-up: session creation, JIT
  await fn();
  const samples = [];
  for (let i = 0; i < repeats; i++) {
    const start = now();
    await fn();
    samples.push(now() - start);
  }
  return median(samples);
}

const backend = await CpuBackend.create({ numThreads: threads });
let nextId = 1;
function tensor(shape, data = random(shape.reduce((a, b) => a * b, 1), nextId)) {
  const id = nextId++;
  backend.upload(id, shape, "float32", data);
  return { tensor: id };
}

// Runs one op on fresh output ids and waits for it; frees the outputs after. The arguments
// are bound to the op table's parameter names, as the worker's bridge binds a message.
async function op(name, outShapes, args) {
  const outs = outShapes.map((shape) => ({ id: nextId++, shape, dtype: "float32" }));
  const names = OP_TABLE.primitive[name].params.map((param) => param.name);
  backend.run(name, outs, bindParams(name, Object.fromEntries(args.map((value, i) => [names[i], value]))));
  if (backend.queue) await backend.queue;
  for (const out of outs) backend.free(out.id);
}

const rows = 128;
const results = [];
function report(name, ms, flops = 0) {
  results.push(name);
  const rate = flops ? `  ${(flops / ms / 1e6).toFixed(1)} GFLOP/s` : "";
  console.log(`${name.padEnd(44)} ${ms.toFixed(3).padStart(9)} ms${rate}`);
}

console.log(`CPU backend, Node ${process.version}, ORT ${ort.env.versions.web}, ${backend.numThreads} thread(s), ` +
  `median ${cpuTime ? "CPU" : "wall"} time of ${repeats}`);

for (const [k, n] of [[768, 2304], [768, 3072], [3072, 768], [768, 50257]]) {
  const flops = 2 * rows * k * n;
  const a = random(rows * k, 3);
  const b = random(k * n, 4);
  const session = await ort.InferenceSession.create(modelBytes({
    inputs: [tensorInfo("A", ONNX_FLOAT, ["m", "k"]), tensorInfo("B", ONNX_FLOAT, ["k", "n"])],
    outputs: [tensorInfo("Y", ONNX_FLOAT, ["m", "n"])],
    nodes: [node("MatMul", ["A", "B"], ["Y"])],
  }), { executionProviders: ["wasm"] });
  const peer = await time(() => session.run({
    A: new ort.Tensor("float32", a, [rows, k]), B: new ort.Tensor("float32", b, [k, n]),
  }));
  const left = tensor([rows, k], a);
  const right = tensor([k, n], b);
  const ours = await time(() => op("matmul", [[rows, n]], [left, right]));
  report(`matmul ${rows}x${k} @ ${k}x${n} (ORT session)`, peer, flops);
  report(`matmul ${rows}x${k} @ ${k}x${n} (backend)`, ours, flops);
  console.log(`${"  ratio backend / ORT".padEnd(44)} ${(ours / peer).toFixed(2)}`);
  backend.free(left.tensor);
  backend.free(right.tensor);
}

const scores = tensor([1, 12, rows, rows]);
report("softmax [1,12,128,128]", await time(() => op("softmax", [[1, 12, rows, rows]], [scores, 3])));
const resid = tensor([1, rows, 768]);
const w = tensor([768]);
const bias = tensor([768]);
report("layer_norm [1,128,768]", await time(() => op("layer_norm", [[1, rows, 768]], [resid, w, bias, 1e-5])));
const hidden = tensor([rows, 3072]);
report("unary gelu_new [128,3072]", await time(() => op("unary", [[rows, 3072]], ["gelu_new", hidden])));
report("unary gelu [128,3072]", await time(() => op("unary", [[rows, 3072]], ["gelu", hidden])));
const pre = tensor([rows, 2304]);
const b2304 = tensor([2304]);
report("binary add [128,2304] + [2304]", await time(() => op("binary", [[rows, 2304]], ["add", pre, b2304])));
const q = tensor([1, rows, 12, 64]);
const k = tensor([1, rows, 12, 64]);
const v = tensor([1, rows, 12, 64]);
report("attention [1,128,12,64] causal + pattern", await time(
  () => op("attention", [[1, rows, 12, 64], [1, 12, rows, rows]], [q, k, v, null, 0.125, true])));
report("permute [1,128,12,64] -> (0,2,1,3)", await time(() => op("permute", [[1, 12, rows, 64]], [q, [0, 2, 1, 3]])));
