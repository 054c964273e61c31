// The Lens's controls: the view tabs, the prompt, example, neuron, probe and circuit forms,
// uploads, Share / Open…, Interrupt / Restart, the panels' Copy and "To notebook" buttons,
// the storage panel, and the form inputs filled from the state. wire(app) adds the listeners
// once (the LensApp's constructor, ./app.js); syncInputs(app) fills the inputs when a state
// is opened or an example is picked.

import { DRAFT_FIELDS } from "./lens_session.js";
import { mountStoragePanel } from "./storage_panel.js";
import { CIRCUIT_METHODS, PROBE_COMPONENTS, VIEW_TITLES, VIEWS } from "./state.js";

const $ = (selector, root = document) => root.querySelector(selector);

export function syncInputs(app) {
  for (const name of ["prompt", "corrupted", "answer", "wrong"]) $(`#${name}`, app.root).value = app.state[name] ?? "";
  app.datasets.fill();
  if ($("#probe-component", app.root)) $("#probe-component", app.root).value = app.state.selection.probeComponent;
  const selection = app.state.selection;
  if ($("#circuit-method", app.root)) {
    $("#circuit-method", app.root).value = selection.circuitMethod;
    $("#circuit-threshold", app.root).value = String(selection.circuitThreshold);
    $("#circuit-count", app.root).value = String(selection.circuitCount);
    $("#hypothesis-text", app.root).value = selection.hypothesis;
  }
}

export function wire(app) {
  const tabs = $("#tabs", app.root);
  tabs.replaceChildren(...VIEWS.map((view) => {
    const button = document.createElement("button");
    button.type = "button";
    button.dataset.view = view;
    button.setAttribute("role", "tab");
    button.textContent = VIEW_TITLES[view];
    button.addEventListener("click", () => app.showView(view).catch((error) => app.shown(error)));
    return button;
  }));
  $("#prompt-form", app.root).addEventListener("submit", (event) => {
    event.preventDefault();
    for (const name of ["prompt", "corrupted", "answer", "wrong"]) app.state[name] = $(`#${name}`, app.root).value;
    app.analyze().catch((error) => app.shown(error));
  });
  $("#examples", app.root).addEventListener("change", (event) => {
    const item = app.results.prompts?.[Number(event.target.value)];
    if (!item) return;
    Object.assign(app.state, { prompt: item.clean, corrupted: item.corrupted, answer: item.answer,
      wrong: item.wrong });
    app.syncInputs();
    app.analyze().catch((error) => app.shown(error));
  });
  $("#neuron-form", app.root).addEventListener("submit", (event) => {
    event.preventDefault();
    const layer = Number($("#neuron-layer", app.root).value);
    const neuron = Number($("#neuron-index", app.root).value);
    const info = app.modelInfo ?? {};
    const bad = [["layer", layer, info.n_layers], ["neuron", neuron, info.d_mlp]]
      .filter(([, value, size]) => !Number.isSafeInteger(value) || value < 0 || (size && value >= size));
    if (bad.length) {
      app.message(bad.map(([what, value, size]) => `The neuron view's ${what} ${JSON.stringify(value)} is not ` +
        `an integer in 0-${(size ?? 1) - 1}`).join("; "), "error");
      return;
    }
    Object.assign(app.state.selection, { neuronLayer: layer, neuron,
      neuronDataset: $("#neuron-dataset", app.root)?.value ?? "sample" });
    app.neurons().catch((error) => app.shown(error));
  });
  $("#share", app.root).addEventListener("click", () => app.share());
  wireProbeForm(app);
  wireCircuitForms(app);
  wireUploads(app);
  const storage = $("#storage-panel", app.root);
  if (storage) app.storage = mountStoragePanel(storage, { message: (text, level) => app.message(text, level) });
  for (const name of DRAFT_FIELDS) $(`#${name}`, app.root).addEventListener("input", () => app.saveSoon());
  addEventListener("pagehide", () => app.saveNow());
  document.addEventListener("visibilitychange", () => { if (document.visibilityState === "hidden") app.saveNow(); });
  $("#interrupt", app.root)?.addEventListener("click", () => app.interrupt());
  $("#restart", app.root)?.addEventListener("click", () => app.restart().catch((error) => app.shown(error)));
  app.neuroscope.onWorkerLost?.((payload) => app.restart(`${payload.message}. Restarting it: the model ` +
    "reloads from the cache; the notebook is kept.").catch((error) => app.shown(error)));
  $("#open-state", app.root).addEventListener("change", (event) => app.openStateFile(event.target.files[0]));
  for (const panel of app.root.querySelectorAll(".panel[data-view]")) {
    const view = panel.dataset.view;
    panel.querySelector(".copy")?.addEventListener("click", () =>
      navigator.clipboard?.writeText(app.code[view] ?? "").catch(() => {}));
    panel.querySelector(".to-notebook")?.addEventListener("click", () => {
      app.notebook.addCell({ type: "view", view, source: app.code[view] ?? "" });
      app.showView("notebook");
    });
  }
}

// "Upload…" in the probe and neuron forms: the file is checked and kept (./datasets.js),
// then the view runs on it.
function wireUploads(app) {
  for (const [input, field, action] of [["#probe-upload", "probeDataset", () => app.probes()],
    ["#neuron-upload", "neuronDataset", () => app.neurons()],
    ["#circuit-upload", "circuitDataset", () => app.findCircuit()]]) {
    $(input, app.root)?.addEventListener("change", async (event) => {
      const file = event.target.files[0];
      event.target.value = "";
      if (!file) return;
      try {
        await app.datasets.upload(file, field);
        await action();
      } catch (error) {
        app.shown(error);
      }
    });
  }
}

function wireCircuitForms(app) {
  const method = $("#circuit-method", app.root);
  if (!method) return;
  method.replaceChildren(...CIRCUIT_METHODS.map((name) => new Option(name.replace("_", " "), name)));
  method.value = app.state.selection.circuitMethod;
  $("#circuit-form", app.root).addEventListener("submit", (event) => {
    event.preventDefault();
    const threshold = Number($("#circuit-threshold", app.root).value);
    const count = Number($("#circuit-count", app.root).value);
    if (!(threshold >= 0 && threshold <= 1) || !Number.isSafeInteger(count) || count < 1 || count > 200) {
      app.message(`The circuit form needs a threshold in 0-1 and 1-200 pairs, not ${JSON.stringify(
        $("#circuit-threshold", app.root).value)} and ${JSON.stringify($("#circuit-count", app.root).value)}`,
      "error");
      return;
    }
    Object.assign(app.state.selection, { circuitDataset: $("#circuit-dataset", app.root).value,
      circuitMethod: method.value, circuitThreshold: threshold, circuitCount: count });
    app.findCircuit().catch((error) => app.shown(error));
  });
  $("#circuit-cancel", app.root).addEventListener("click", () => {
    if (!app.requests.cancel()) {
      app.message("The search cannot be cancelled here: the page is not cross-origin isolated (no shared " +
        "memory with the worker). Restart stops it; the model reloads from the cache.", "warn");
    }
  });
  $("#hypothesis-form", app.root).addEventListener("submit", (event) => {
    event.preventDefault();
    app.state.selection.hypothesis = $("#hypothesis-text", app.root).value;
    app.testHypothesis().catch((error) => app.shown(error));
  });
  $("#export-paper", app.root).addEventListener("click", () => app.exportPaper().catch((error) => app.shown(error)));
}

function wireProbeForm(app) {
  const dataset = $("#probe-dataset", app.root), component = $("#probe-component", app.root);
  if (!dataset) return;
  app.datasets.fill();
  component.replaceChildren(...PROBE_COMPONENTS.map((name) => new Option(name, name)));
  $("#probe-form", app.root).addEventListener("submit", (event) => {
    event.preventDefault();
    Object.assign(app.state.selection, { probeDataset: dataset.value, probeComponent: component.value });
    app.probes().catch((error) => app.shown(error));
  });
}
