// onnxruntime-web running a whole model as ONE graph, in its own worker: the peer that
// bench/browser.py measures NeuroScope against. onnxruntime's settings (numThreads among
// them) are global per worker, so each thread count gets a worker of its own.
//
// Requests {id, op, args}, replies {id, ok, result | error}:
//   load  {url, threads}                  -> {threads, isolated, ms}  fetch the .onnx, make the session
//   time  {tokens, batch, positions, warmup, repeats}
//                                         -> {times, last}  ms per session.run (its outputs are
//                                            copied out of wasm memory: the readback), and the
//                                            last position's logits of the first row
// Weights are graph initializers, so the first runs pay no baking cost NeuroScope's cpu
// backend does; warm-up runs still come first.

import * as ort from "../node_modules/onnxruntime-web/dist/ort.wasm.min.mjs";

let session = null;

const OPS = {
  async load({ url, threads }) {
    ort.env.wasm.wasmPaths = new URL("../node_modules/onnxruntime-web/dist/", import.meta.url).href;
    ort.env.wasm.numThreads = threads;
    ort.env.wasm.proxy = false;
    ort.env.logLevel = "error";
    const response = await fetch(url);
    if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
    const bytes = new Uint8Array(await response.arrayBuffer());
    const started = performance.now();
    session = await ort.InferenceSession.create(bytes, {
      executionProviders: ["wasm"], graphOptimizationLevel: "all", logSeverityLevel: 3,
    });
    return { threads: ort.env.wasm.numThreads, isolated: self.crossOriginIsolated === true,
      ms: performance.now() - started };
  },

  async time({ tokens, batch, positions, warmup, repeats }) {
    if (tokens.length !== batch * positions) {
      throw new Error(`${tokens.length} token ids for a ${batch}x${positions} batch`);
    }
    const feeds = { input_ids: new ort.Tensor("int64", BigInt64Array.from(tokens, BigInt), [batch, positions]) };
    const times = [];
    let logits = null;
    for (let i = 0; i < warmup + repeats; i++) {
      const started = performance.now();
      logits = (await session.run(feeds))[session.outputNames[0]];
      const data = logits.data; // a Float32Array already outside wasm memory
      const elapsed = performance.now() - started;
      if (i >= warmup) times.push(elapsed);
      if (!(data.length > 0)) throw new Error("onnxruntime returned empty logits");
    }
    const vocab = logits.dims[2];
    const last = Array.from(logits.data.subarray((positions - 1) * vocab, positions * vocab));
    return { times, last };
  },
};

self.addEventListener("message", async (event) => {
  const { id, op, args } = event.data;
  try {
    if (!OPS[op]) throw new Error(`unknown op ${op}; expected one of ${Object.keys(OPS).join(", ")}`);
    self.postMessage({ id, ok: true, result: await OPS[op](args) });
  } catch (error) {
    self.postMessage({ id, ok: false, error: String(error?.stack ?? error) });
  }
});
