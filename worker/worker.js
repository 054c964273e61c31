// The NeuroScope worker (a module worker): Pyodide + the neuroscope package + one kernel
// backend behind the KernelBridge. Start-up is staged (runtime -> package -> kernels ->
// ready, one progress event each); requests and replies are those of ./protocol.js.
//
// Everything is loaded from this site (paths relative to this file, the same from the repo
// root and from dist/): Pyodide's standard-library-only runtime, dist/py/neuroscope.zip
// (written by `python build.py build`), ./session.py (the Python side of this worker).
//
// Python reaches JavaScript through ONE registered module, `neuroscope_js`:
//   bridge, backendName      the KernelBridge and its backend's name (null with no kernels)
//   pageURL                  the page's address: relative model paths resolve against it
//   hubURL                   a Hugging Face hub mirror for hub names (null: huggingface.co)
//   createTokenizer(json)    ./tokenizer.js (the browser's tokenizer.json reader)
//   fetchBytes(url)          ./files.js: Promise of {status, bytes, ...} (streamed, progress)
//   fetchBytesSync(url)      ./files.js: the same by synchronous XHR (browsers without JSPI)
//   fetchWeights(url)        ./weights.js: a safetensors file, cached in IndexedDB (progress)
//   forgetWeights(url?)      ./weights.js: drop cached weights (one URL, or all)
//   storage                  ./storage.js: durable bytes for saved and spilled activations
//   progress(label, done, total), interrupted()   long work's progress; a pending interrupt
//   pool, cores              ./pool.js's WorkerPool (ComputeCluster.browser()); hardwareConcurrency
// Long-lived proxies: the `neuroscope_session` module's functions, kept for the worker's
// lifetime; each per-call proxy is destroyed after use.

import { loadPyodide } from "../node_modules/pyodide/pyodide.mjs";
import { KernelBridge } from "./bridge.js";
import { fetchBytes, fetchBytesSync } from "./files.js";
import { WorkerPool } from "./pool.js";
import { BACKENDS, serveRequests } from "./protocol.js";
import { pythonStorage } from "./storage.js";
import { createTokenizer } from "./tokenizer.js";
import { fetchWeights, forgetWeights } from "./weights.js";

const here = (path) => new URL(path, import.meta.url).href;
const state = { booting: null, pyodide: null, session: null, info: null, interrupt: null, running: new Set() };

serveRequests(self, {
  boot: (args, ctx) => (state.booting ??= boot(args, ctx)),
  python: (args) => runPython(args),
});

async function boot({ backend: forced = null, pageURL = null, hubURL = null, threads = null, interrupt = null,
  lock = null } = {}, ctx) {
  const started = performance.now();
  // Held for the worker's whole life: the page's request for the same lock is granted when
  // this worker is gone (terminated, crashed, closed), which is how the page notices.
  if (lock) await new Promise((held) => navigator.locks.request(lock, () => { held(); return new Promise(() => {}); }));
  const stage = (name, detail) =>
    ctx.progress(name, { detail, ms: Math.round(performance.now() - started) });
  if (forced !== null && forced !== "none" && !BACKENDS.includes(forced)) {
    throw new Error(`unknown backend ${JSON.stringify(forced)}; expected one of ${BACKENDS.join(", ")} or none`);
  }

  const indexURL = here("../node_modules/pyodide/");
  const pyodide = await loadPyodide({
    indexURL,
    packageBaseUrl: indexURL, // never a CDN: nothing is installed beyond the standard library
    stdout: (text) => ctx.log("info", text),
    stderr: (text) => ctx.log("warn", text),
  });
  stage("runtime", `Pyodide ${pyodide.version}`);
  if (interrupt) {
    // The page writes 2 (SIGINT) here: the running Python raises KeyboardInterrupt.
    pyodide.setInterruptBuffer(interrupt);
    state.interrupt = interrupt;
  }

  const [archive, sessionSource] = await Promise.all([
    fetchOk(here("../py/neuroscope.zip"), "arrayBuffer",
      "the neuroscope package; serve the site built by `python build.py build`"),
    fetchOk(here("./session.py"), "text", "the worker's Python session module"),
  ]);
  const sitePackages = pyodide.runPython("import site; site.getsitepackages()[0]");
  pyodide.unpackArchive(archive, "zip", { extractDir: sitePackages });
  pyodide.FS.writeFile(`${sitePackages}/neuroscope_session.py`, sessionSource);
  const host = {
    bridge: null,
    backendName: null,
    pageURL: pageURL ?? self.location.href,
    siteURL: here("../"),
    hubURL,
    createTokenizer,
    fetchBytes: (url) => fetchBytes(url, (p) => ctx.progress("download", p)),
    fetchBytesSync,
    fetchWeights: (url) => fetchWeights(url, (p) => ctx.progress("download", p), ctx.log),
    forgetWeights,
    // Long Python work (sweeps) reports {stage: "task", label, done, total}: see protocol.js.
    progress: (label, done, total) => ctx.progress("task", { label: String(label), done, total }),
    // Whether an interrupt is pending that Python has not raised (consumed by this call): long
    // work checks it as it reports progress, since a KeyboardInterrupt requested while Python
    // waits on an asynchronous kernel (JSPI) can be lost.
    interrupted: () => {
      if (!interrupt || Atomics.load(interrupt, 2) !== 1) return false;
      Atomics.store(interrupt, 2, 0);
      Atomics.store(interrupt, 0, 0);
      return true;
    },
    storage: pythonStorage,
    // ComputeCluster.browser(): more workers like this one (./pool.js), started on first use.
    cores: self.navigator?.hardwareConcurrency ?? 1,
    pool: new WorkerPool({ pageURL: pageURL ?? self.location.href, hubURL }, ctx.log),
  };
  pyodide.registerJsModule("neuroscope_js", host);
  const session = pyodide.pyimport("neuroscope_session");
  const versionsProxy = session.versions();
  const versions = { pyodide: pyodide.version, ...versionsProxy };
  stage("package", `neuroscope ${versions.neuroscope}`);

  // threads: the CPU backend's wasm thread count (default: all cores when cross-origin isolated).
  const kernels = await chooseBackend(forced, ctx, { numThreads: Number(threads) || undefined });
  if (kernels) {
    host.bridge = new KernelBridge(kernels);
    host.backendName = kernels.name;
    session.install_backend(host.bridge, kernels.name);
  }
  const software = kernels?.isFallbackAdapter ? " (software adapter)" : "";
  stage("kernels", kernels ? `${kernels.name}${software}` : "none");

  Object.assign(state, { pyodide, session });
  state.info = { backend: kernels ? kernels.name : null, fallback: !!kernels?.isFallbackAdapter,
    threads: kernels?.numThreads ?? null, versions };
  stage("ready");
  return state.info;
}

async function fetchOk(url, as, what) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status} while loading ${what}`);
  return as === "text" ? response.text() : response.arrayBuffer();
}

// The forced backend, or the best one here: a hardware GPU, else the CPU (wasm), and a
// software GPU (SwiftShader: isFallbackAdapter) only when the CPU path cannot load.
async function chooseBackend(forced, ctx, options) {
  if (forced === "none") return null;
  if (forced) return createBackend(forced, options);
  const software = [];
  const reasons = [];
  for (const name of BACKENDS) {
    try {
      if (name !== "cpu" && (await isSoftwareAdapter(name))) {
        software.push(name);
        reasons.push(`${name}: software adapter`);
        continue;
      }
      return await createBackend(name, options);
    } catch (error) {
      reasons.push(`${name}: ${error.message}`);
    }
  }
  for (const name of software) {
    try {
      return await createBackend(name, options);
    } catch (error) {
      reasons.push(`${name}: ${error.message}`);
    }
  }
  ctx.log("warn", `no kernel backend could start (${reasons.join("; ")}); ` +
    "Python runs without tensor kernels");
  return null;
}

async function createBackend(name, options = {}) {
  let module;
  try {
    module = await import(`./backends/${name}.js`);
  } catch (error) {
    throw new Error(`the ${name} kernel backend (worker/backends/${name}.js) could not be loaded: ` +
      error.message);
  }
  return module.default.create(options);
}

// A cheap probe before the (slow) backend start: is this GPU path a software rasteriser?
async function isSoftwareAdapter(name) {
  if (name === "webgpu") {
    const adapter = await self.navigator?.gpu?.requestAdapter();
    if (!adapter) throw new Error("no WebGPU adapter");
    return !!(adapter.info?.isFallbackAdapter ?? adapter.isFallbackAdapter);
  }
  const gl = typeof OffscreenCanvas === "function" ? new OffscreenCanvas(1, 1).getContext("webgl2") : null;
  if (!gl) throw new Error("no WebGL2 context");
  const debug = gl.getExtension("WEBGL_debug_renderer_info");
  const renderer = String(gl.getParameter(debug ? debug.UNMASKED_RENDERER_WEBGL : gl.RENDERER));
  gl.getExtension("WEBGL_lose_context")?.loseContext();
  return /swiftshader|llvmpipe|softpipe|software|basic render/i.test(renderer);
}

async function runPython({ code, globals = null, seq = 0 }) {
  if (!state.session) throw new Error("the worker is not booted; send a boot request first");
  if (typeof code !== "string") throw new TypeError(`python: code must be a string, got ${typeof code}`);
  // undefined arrives as None (null would be jsnull). Awaiting the coroutine's proxy
  // destroys it (Pyodide), and the reply is a plain JS object (to_js): no proxy outlives the call.
  let reply;
  state.running.add(seq);
  try {
    reply = await state.session.run(code, globals ?? undefined);
  } finally {
    state.running.delete(seq);
    // An interrupt is for the calls sent before it: once the last of them is done and none
    // of them runs any more (calls interleave at their awaits), one that no Python consumed
    // (it came as a call ended) must not hit a later call.
    const last = state.interrupt ? Atomics.load(state.interrupt, 1) : 0;
    if (state.interrupt && seq >= last && ![...state.running].some((running) => running <= last)) {
      Atomics.store(state.interrupt, 0, 0);
      Atomics.store(state.interrupt, 2, 0);
    }
  }
  if (reply.ok) return reply.result;
  throw reply.error; // a plain {pyType, message, traceback}: see protocol.js errorPayload
}
