// The page side: starts the worker, shows its staged start-up, and exposes the scripting
// entry used by tests and power users:
//   window.neuroscope.ready          Promise of {backend, fallback, threads, versions}
//   window.neuroscope.python(code, globals?)
//                                    Promise of the value of the code's last expression;
//                                    rejects with an Error carrying pyType, message, traceback
//   window.neuroscope.progress       every progress event so far; each is also dispatched on
//                                    window as a "neuroscope:progress" CustomEvent (detail: the
//                                    event). Downloads: {stage: "download", url, done, total,
//                                    cached?} with done/total in bytes (cached: from IndexedDB)
//   window.neuroscope.interrupt()    KeyboardInterrupt in the running Python (false: unavailable)
//   window.neuroscope.cancel()       the same for long work, at its next progress report
//   window.neuroscope.restart()      a new worker; Promise of its boot info
//   window.neuroscope.onWorkerLost(listener)   called when the worker dies on its own
//   window.neuroscope.app           the Lens (./app.js) once started
// URL parameters: ?backend=webgpu|webgl|cpu forces a backend; ?threads=N the CPU backend's
// wasm threads; ?hub=URL a Hugging Face hub mirror for hub names (as HF_ENDPOINT is in
// CPython); ?lens=off boots the worker without the Lens (no model is loaded: the page
// is then only the scripting entry, which tests use). The fragment (#s=...) is a share
// link (./share.js). Everything crosses the worker boundary through ../worker/protocol.js.

import { STAGES, WorkerClient } from "../worker/protocol.js";

const params = new URLSearchParams(location.search);
const $ = (id) => document.getElementById(id);
const progress = [];
const logs = [];

// The worker of the moment: restart() and a lost worker replace it (a new Pyodide, a new
// namespace); `generation` tells a stale worker's events from the current one's.
// seq: python calls sent to this worker; interrupt[1] holds the last one an interrupt targets.
const current = { worker: null, client: null, ready: null, interrupt: null, generation: 0, seq: 0 };
const lostListeners = [];
let readyText = null;

function startWorker() {
  const generation = ++current.generation;
  const worker = new Worker(new URL("../worker/worker.js", import.meta.url), { type: "module" });
  const client = new WorkerClient(worker, { onProgress: showProgress, onLog: showLog });
  // Interrupts need memory shared with the worker: only on a cross-origin isolated page.
  // [0]: Pyodide's interrupt signal; [1]: the last call it targets; [2]: the same request for
  // long work that checks it between steps (neuroscope_js.interrupted), which Pyodide never clears.
  const interrupt = globalThis.crossOriginIsolated ? new Int32Array(new SharedArrayBuffer(12)) : null;
  const lock = navigator.locks ? `neuroscope-worker-${crypto.randomUUID()}` : null;
  const ready = client.call("boot", { backend: params.get("backend"), threads: params.get("threads"),
    hubURL: params.get("hub"), pageURL: location.href, interrupt, lock });
  Object.assign(current, { worker, client, ready, interrupt, seq: 0 });
  renderStages();
  showReady(ready, generation);
  if (lock) {
    // Granted once the worker no longer holds it: it has died (or restart() ended it).
    ready.then(() => navigator.locks.request(lock, () => {
      if (generation !== current.generation) return;
      const payload = { name: "WorkerLost", message: "the Python worker stopped (it ran out of memory, crashed or " +
        "was closed); its namespace is gone" };
      client.failAll(payload);
      for (const listener of lostListeners) listener(payload);
    })).catch(() => {});
  }
  return ready;
}

startWorker();

window.neuroscope = {
  get ready() { return current.ready; },
  python: (code, globals) => {
    const { ready, client } = current;
    const seq = ++current.seq;
    return ready.then(() => client.call("python", { code, globals, seq }));
  },
  // Raises KeyboardInterrupt in the Python that runs now (or, if it has not started yet, in
  // the first of the calls already sent to start); false where the page is not cross-origin
  // isolated (no shared memory), where only restart() stops a runaway call. With no call in
  // flight it does nothing: a later call is never hit.
  interrupt() {
    if (!current.interrupt) return false;
    if (current.client.pending.size) {
      Atomics.store(current.interrupt, 1, current.seq);
      Atomics.store(current.interrupt, 2, 1);
      Atomics.store(current.interrupt, 0, 2);
    }
    return true;
  },
  // Stops long work (sweeps, circuit searches) at its next progress report with KeyboardInterrupt,
  // without Pyodide's own interrupt signal (which a wait on an asynchronous kernel can lose);
  // false where the page is not cross-origin isolated.
  cancel() {
    if (!current.interrupt) return false;
    if (current.client.pending.size) {
      Atomics.store(current.interrupt, 1, current.seq);
      Atomics.store(current.interrupt, 2, 1);
    }
    return true;
  },
  get canInterrupt() { return Boolean(current.interrupt); },
  // A new worker (a fresh Python; pending calls reject with WorkerRestarted); resolves when booted.
  restart() {
    const { worker, client } = current;
    const ready = startWorker();
    client.failAll({ name: "WorkerRestarted", message: "the Python worker was restarted; this call was dropped" });
    worker.terminate();
    return ready;
  },
  // listener(payload) when the worker dies on its own (not by restart()).
  onWorkerLost(listener) { lostListeners.push(listener); },
  progress,
  logs,
  app: null,
};

if (params.get("lens") !== "off") startLens();

async function startLens() {
  const { LensApp } = await import("./app.js");
  const app = new LensApp(document.body, window.neuroscope);
  window.neuroscope.app = app;
  window.neuroscope.started = app.start();
  // The service worker precaches the whole site (~36 MB) for offline use: started once the
  // first view is drawn, so that it does not compete with the first load.
  // A newer build found later waits for this page's old one; the Lens offers to switch.
  window.neuroscope.started.finally(async () => {
    const { activateUpdate, registerServiceWorker } = await import("./pwa.js");
    await registerServiceWorker({ onUpdate: (registration) => app.offerUpdate(
      () => activateUpdate(registration).then(() => location.reload())) });
  }).catch((error) => showLog({ level: "warn", text: `offline use unavailable: ${error.message}` }));
}

function showReady(ready, generation) {
  ready.then((info) => {
    if (generation !== current.generation) return;
    const software = info.fallback ? " (software adapter)" : "";
    readyText = `Ready: kernels ${info.backend ?? "none"}${software}; ` +
      Object.entries(info.versions).map(([name, version]) => `${name} ${version}`).join(", ");
    $("status").textContent = readyText;
    document.querySelector("#repl button").disabled = false;
  }, (error) => {
    if (generation !== current.generation) return;
    $("status").textContent = `Start-up failed: ${error.message}`;
    for (const item of document.querySelectorAll("#stages li:not(.done)")) item.classList.add("failed");
  });
}

$("repl").addEventListener("submit", async (event) => {
  event.preventDefault();
  const output = $("output");
  output.textContent = "…";
  try {
    const value = await window.neuroscope.python($("code").value);
    output.textContent = typeof value === "string" ? value : JSON.stringify(value, tensorsAsSummary, 1);
  } catch (error) {
    output.textContent = error.traceback || `${error.name}: ${error.message}`;
  }
});

function tensorsAsSummary(key, value) {
  return ArrayBuffer.isView(value) ? `${value.constructor.name}(${value.length})` : value;
}

function renderStages() {
  $("stages").replaceChildren(...STAGES.map((stage) => {
    const item = document.createElement("li");
    item.dataset.stage = stage;
    item.textContent = stage;
    return item;
  }));
}

function showProgress(event) {
  progress.push(event);
  window.dispatchEvent(new CustomEvent("neuroscope:progress", { detail: event }));
  window.neuroscope?.app?.showProgress(event);
  if (event.stage === "download") {
    const mib = (bytes) => (bytes / 2 ** 20).toFixed(1);
    const finished = event.total && event.done >= event.total;
    $("status").textContent = finished && readyText ? readyText
      : `${event.cached ? "Cached" : "Downloading"} ${event.url}: ${mib(event.done)}` +
        (event.total ? ` / ${mib(event.total)} MiB` : " MiB");
    return;
  }
  const item = document.querySelector(`#stages li[data-stage="${event.stage}"]`);
  if (item) {
    item.classList.add("done");
    item.title = [event.detail, event.ms !== undefined ? `${event.ms} ms` : ""].filter(Boolean).join(", ");
  }
}

function showLog(event) {
  logs.push(event);
  const log = $("log");
  log.textContent += `${event.level}: ${event.text}\n`;
  if (event.level !== "info") console[event.level === "error" ? "error" : "warn"](event.text);
}
