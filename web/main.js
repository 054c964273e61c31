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

const worker = new Worker(new URL("../worker/worker.js", import.meta.url), { type: "module" });
const client = new WorkerClient(worker, { onProgress: showProgress, onLog: showLog });
const ready = client.call("boot", { backend: params.get("backend"), threads: params.get("threads"),
  hubURL: params.get("hub"), pageURL: location.href });

window.neuroscope = {
  ready,
  python: (code, globals) => ready.then(() => client.call("python", { code, globals })),
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

renderStages();
let readyText = null;
ready.then((info) => {
  const software = info.fallback ? " (software adapter)" : "";
  readyText = `Ready: kernels ${info.backend ?? "none"}${software}; ` +
    Object.entries(info.versions).map(([name, version]) => `${name} ${version}`).join(", ");
  $("status").textContent = readyText;
  document.querySelector("#repl button").disabled = false;
}, (error) => {
  $("status").textContent = `Start-up failed: ${error.message}`;
  for (const item of document.querySelectorAll("#stages li:not(.done)")) item.classList.add("failed");
});

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
