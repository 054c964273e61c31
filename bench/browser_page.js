// The benchmark page of bench/browser.py: it starts workers and runs what the script asks.
// NeuroScope workers are the app's own (worker/worker.js, booted through worker/protocol.js
// with a forced backend and thread count); onnxruntime-web runs in bench/ort_worker.js.
// Playwright drives window.bench; each call answers {ok, value} or {ok: false, error}, so
// a Python traceback reaches the script whole.
//
//   startNeuroScope(name, {backend, threads})   -> the worker's boot info
//   python(name, code, globals)                 -> the value of the code's last expression
//   startOrt(name, {url, threads})              -> {threads, isolated, ms}
//   timeOrt(name, {tokens, batch, positions, warmup, repeats}) -> {times, last}
//   stop(name)                                  terminates the worker (its memory goes too)

import { WorkerClient } from "../worker/protocol.js";

const workers = new Map(); // name -> {worker, call(op, args)}
const logs = [];

function neuroscopeWorker(name) {
  const worker = new Worker(new URL("../worker/worker.js", import.meta.url), { type: "module" });
  const client = new WorkerClient(worker, {
    onLog: (event) => { if (event.level !== "info") logs.push(`${name}: ${event.level}: ${event.text}`); },
  });
  return { worker, call: (op, args) => client.call(op, args) };
}

function ortWorker() {
  const worker = new Worker(new URL("./ort_worker.js", import.meta.url), { type: "module" });
  const pending = new Map();
  let nextId = 1;
  worker.addEventListener("message", ({ data }) => {
    const waiting = pending.get(data.id);
    pending.delete(data.id);
    if (data.ok) waiting.resolve(data.result);
    else waiting.reject(new Error(data.error));
  });
  worker.addEventListener("error", (event) => {
    for (const waiting of pending.values()) waiting.reject(new Error(`the ORT worker failed: ${event.message}`));
    pending.clear();
  });
  const call = (op, args) => new Promise((resolve, reject) => {
    const id = nextId++;
    pending.set(id, { resolve, reject });
    worker.postMessage({ id, op, args });
  });
  return { worker, call };
}

async function answer(work) {
  try {
    return { ok: true, value: await work() };
  } catch (error) {
    return { ok: false, error: error.traceback || `${error.name}: ${error.message}`, logs: logs.splice(0) };
  }
}

function started(name, entry) {
  if (workers.has(name)) throw new Error(`a worker named ${name} is already running`);
  workers.set(name, entry);
  return entry;
}

window.bench = {
  crossOriginIsolated: self.crossOriginIsolated === true,
  startNeuroScope: (name, { backend, threads = null }) => answer(() =>
    started(name, neuroscopeWorker(name)).call("boot", { backend, threads, pageURL: location.href })),
  python: (name, code, globals = {}) => answer(() => workers.get(name).call("python", { code, globals })),
  startOrt: (name, options) => answer(() => started(name, ortWorker()).call("load", options)),
  timeOrt: (name, options) => answer(() => workers.get(name).call("time", options)),
  stop(name) {
    workers.get(name)?.worker.terminate();
    workers.delete(name);
  },
  logs,
};
