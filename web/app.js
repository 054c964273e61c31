// The Lens: the app shell. It owns the state (./state.js), runs each action's Python in
// the worker (./lens_calls.js through window.neuroscope.python), and draws the views
// (./views/*, pure functions of their props) with render(). Every view shows the Python
// call that produced it, copyable and runnable in the notebook.

import * as calls from "./lens_calls.js";
import { ModelPanel } from "./models.js";
import { Notebook } from "./notebook.js";
import { render } from "./render.js";
import { ShareLinkError, readStateFile, shareURL, stateFromLocation, validateState } from "./share.js";
import { completeState, defaultState, VIEW_TITLES, VIEWS } from "./state.js";
import { weightsHash } from "../worker/weights.js";
import * as AblationView from "./views/ablation.js";
import * as ActivationsView from "./views/activations.js";
import * as AttentionView from "./views/attention.js";
import * as LogitLensView from "./views/logit_lens.js";
import * as NeuronsView from "./views/neurons.js";
import * as PatchingView from "./views/patching.js";
import * as ProgressView from "./views/progress.js";
import * as TokensView from "./views/tokens.js";

const $ = (selector, root = document) => root.querySelector(selector);

export class LensApp {
  constructor(root, neuroscope) {
    this.root = root;
    this.neuroscope = neuroscope;
    this.state = defaultState();
    this.results = { analysis: null, ablation: null, patching: null, neurons: null, prompts: null };
    this.code = {}; // view -> the Python that produced what it shows
    this.busy = new Set();
    this.notebook = new Notebook($("#notebook", root), {
      python: (code) => this.neuroscope.python(code),
      runCell: (source) => this.runCell(source),
      drawView: (el, view, value) => this.drawResult(el, view, value),
      onChange: (cells) => { this.state.notebook = cells; },
    });
    this.models = new ModelPanel($("#model-panel", root), {
      load: (source) => this.loadModel(source),
    });
    this.wire();
  }

  // -- start-up ------------------------------------------------------------------
  async start() {
    let fromLink = null;
    try {
      fromLink = await stateFromLocation(location);
      if (fromLink) this.state = completeState(fromLink);
    } catch (error) {
      this.message(`${error instanceof ShareLinkError ? "This share link cannot be opened" : "Error"}: ` +
        `${error.message}. The app opened with its defaults instead.`, "error");
    }
    this.syncInputs();
    this.notebook.setCells(this.state.notebook, { fromLink: Boolean(fromLink) });
    await this.neuroscope.ready;
    const ref = this.state.model.ref;
    if (ref.startsWith("local:")) {
      this.message(`This analysis was made with local files (${ref.slice(6)}); pick them under "Local files…" ` +
        "to reproduce it. The demo model is loaded meanwhile.", "warn");
      await this.loadModel({ ref: "demo" }, { keepState: true });
      return;
    }
    const info = await this.loadModel({ ref }, { keepState: true });
    if (!info && ref !== "demo") {
      this.message(`${ref} could not be loaded; the demo model is loaded instead.`, "warn");
      await this.loadModel({ ref: "demo" }, { keepState: true });
    }
  }

  // -- actions -------------------------------------------------------------------
  async loadModel(source, { keepState = false } = {}) {
    const call = source.files ? calls.loadFiles(source.files.map((file) => file.name)) : calls.loadModel(source.ref);
    const globals = source.files ? {
      file_names: source.files.map((file) => file.name),
      file_data: await Promise.all(source.files.map(async (file) => new Uint8Array(await file.arrayBuffer()))),
    } : undefined;
    this.models.setStatus(`Loading ${source.ref ?? source.files.map((f) => f.name).join(", ")}…`);
    const firstEvent = this.neuroscope.progress.length;
    try {
      const info = await this.run("model", call.code, globals);
      this.modelInfo = info;
      const ref = source.ref ?? `local:${source.files.map((file) => file.name).join(",")}`;
      const sha256 = await this.contentHash(this.neuroscope.progress.slice(firstEvent));
      const pinned = keepState && this.state.model.ref === ref ? this.state.model.sha256 : null;
      if (pinned && sha256 && pinned !== sha256) {
        this.message(`The weights of ${ref} have changed since this analysis was shared ` +
          `(content hash ${sha256.slice(0, 12)}…, the link has ${pinned.slice(0, 12)}…): results may differ.`, "warn");
      }
      this.state.model = { ref, ...(sha256 ? { sha256 } : {}) };
      this.models.setStatus(`${info.name} (${info.family}: ${info.n_layers} layers × ${info.n_heads} heads, ` +
        `d_model ${info.d_model}, vocabulary ${info.d_vocab})`, "ok");
      this.code.model = call.code;
      this.models.showCode(call.code);
      if (!keepState) this.state.selection = { ...defaultState().selection };
      this.results = { analysis: null, ablation: null, patching: null, neurons: null, prompts: null };
    } catch (error) {
      const current = this.modelInfo ? ` The current model (${this.modelInfo.name}) is still loaded.` : "";
      this.models.setStatus(`Could not load the model: ${error.pyType ?? error.name}: ${error.message}.${current}`,
        "error");
      return null;
    }
    await this.analyze().catch(() => {}); // shown in the messages; the model stays loaded
    return this.modelInfo;
  }

  // The weights' content hash from the worker's cache (one file: its SHA-256; shards: the
  // SHA-256 of their hashes), for the share link; null for local files.
  async contentHash(events) {
    const urls = [...new Set(events.filter((event) => event.stage === "download" && /\.safetensors$/.test(event.url))
      .map((event) => event.url))];
    const hashes = await Promise.all(urls.map((url) => weightsHash(url)));
    if (!hashes.length || hashes.includes(null)) return null;
    if (hashes.length === 1) return hashes[0];
    const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(hashes.join(",")));
    return Array.from(new Uint8Array(digest), (byte) => byte.toString(16).padStart(2, "0")).join("");
  }

  async analyze() {
    const call = calls.analyze(this.state.prompt);
    this.results.analysis = await this.run("analysis", call.code);
    for (const view of ["tokens", "attention", "logit_lens", "activations"]) this.code[view] = call.code;
    const { n_layers: layers, n_heads: heads } = this.results.analysis.model;
    const selection = this.state.selection;
    selection.layer = Math.min(selection.layer, layers - 1);
    selection.head = Math.min(selection.head, heads - 1);
    this.results.ablation = null;
    this.results.patching = null;
    this.draw();
    if (this.state.view === "ablation") await this.ablate();
    if (this.state.view === "patching") await this.patch();
    if (this.state.view === "neurons") await this.neurons();
  }

  async ablate() {
    const call = calls.ablate(this.state);
    this.code.ablation = call.code;
    this.results.ablation = await this.run("ablation", call.code);
    this.state.interventions = this.results.ablation.spec ?? [];
    this.draw();
  }

  async patch() {
    const call = calls.patch(this.state);
    this.code.patching = call.code;
    this.results.patching = await this.run("patching", call.code);
    this.draw();
  }

  async neurons() {
    const { neuronLayer, neuron } = this.state.selection;
    const call = calls.neurons(neuronLayer, neuron);
    this.code.neurons = call.code;
    this.results.neurons = await this.run("neurons", call.code);
    this.draw();
  }

  async showView(view) {
    this.state.view = view;
    this.draw();
    if (view === "ablation" && !this.results.ablation) await this.ablate();
    if (view === "patching") {
      if (!this.results.prompts) this.loadDemoPrompts();
      if (!this.results.patching) await this.patch();
    }
    if (view === "neurons" && !this.results.neurons) await this.neurons();
  }

  async loadDemoPrompts() {
    try {
      const examples = await this.neuroscope.python(calls.demoPrompts().code);
      this.results.prompts = [...examples.ioi.map((item) => ({ ...item, label: `IOI: ${item.label}` })),
        ...examples.facts.map((item) => ({ ...item, label: `Fact: ${item.label}` }))];
      const select = $("#examples", this.root);
      select.replaceChildren(new Option("Examples…", ""), ...this.results.prompts.map((item, index) =>
        new Option(item.label ?? item.clean, String(index))));
    } catch (error) {
      this.message(`No example prompts: ${error.message}`, "warn");
    }
  }

  // Runs code in the worker, marking `what` busy; errors are shown and rethrown.
  async run(what, code, globals) {
    this.busy.add(what);
    this.drawBusy();
    try {
      return await this.neuroscope.python(code, globals);
    } catch (error) {
      this.message(`${what}: ${error.pyType ?? error.name}: ${error.message}`, "error");
      throw error;
    } finally {
      this.busy.delete(what);
      this.drawBusy();
    }
  }

  async runCell(source) {
    return this.neuroscope.python("import neuroscope_session\nawait neuroscope_session.run_cell(cell_source)",
      { cell_source: source });
  }

  // -- drawing -------------------------------------------------------------------
  draw() {
    for (const tab of this.root.querySelectorAll("#tabs button")) {
      tab.setAttribute("aria-selected", String(tab.dataset.view === this.state.view));
    }
    for (const panel of this.root.querySelectorAll(".panel")) {
      panel.hidden = panel.dataset.view !== this.state.view;
    }
    const view = this.state.view;
    if (view === "notebook") return;
    const el = $(`.panel[data-view="${view}"] .view`, this.root);
    const props = this.props(view);
    const waiting = view === "patching" && !this.results.patching;
    if (props) render(el, waiting ? ProgressView : VIEW_MODULES[view], props);
    $(`.panel[data-view="${view}"] .code code`, this.root).textContent = this.code[view] ?? "";
  }

  // The props of `view` from the latest results and the selection (null: nothing yet).
  props(view, results = this.results) {
    const analysis = results.analysis;
    const selection = this.state.selection;
    if (!analysis) return null;
    const tokens = analysis.tokens;
    const app = this;
    switch (view) {
      case "tokens":
        return { tokens, predictions: analysis.predictions, residualNorms: analysis.residual_norms,
          hovered: selection.token, onHover: (index) => { selection.token = index; app.draw(); } };
      case "attention":
        return { patterns: analysis.attention.patterns, tokens, scores: analysis.attention.scores,
          selected: { layer: selection.layer, head: selection.head }, scoreKind: selection.scoreKind,
          onSelect: ({ layer, head }) => { Object.assign(selection, { layer, head }); app.draw(); },
          onScoreKind: (kind) => { selection.scoreKind = kind; app.draw(); } };
      case "logit_lens":
        return { table: analysis.logit_lens, tokens };
      case "activations":
        return { norms: analysis.activation_norms, tokens, component: selection.component,
          onComponent: (component) => { selection.component = component; app.draw(); } };
      case "ablation": {
        const result = results.ablation;
        return { nLayers: analysis.model.n_layers, nHeads: analysis.model.n_heads,
          ablations: selection.ablations, kind: selection.ablationKind,
          baseline: result?.baseline ?? analysis.predictions.at(-1), ablated: result?.ablated ?? null,
          logitDiff: result?.logit_diff ?? null, busy: this.busy.has("ablation"),
          onToggle: (unit) => { app.toggleAblation(unit).catch(() => {}); },
          onKind: (kind) => {
            selection.ablationKind = kind;
            for (const item of selection.ablations) item.kind = kind;
            app.ablate().catch(() => {});
          } };
      }
      case "patching": {
        const result = results.patching;
        if (!result) return { label: "Patching every layer, position and head…", done: 0, total: 1 };
        return { resid: result.resid, mlp: result.mlp, heads: result.heads, tokens: result.tokens,
          cleanLogitDiff: result.clean_logit_diff, corruptedLogitDiff: result.corrupted_logit_diff };
      }
      case "neurons": {
        const result = results.neurons;
        return result ? { layer: selection.neuronLayer, neuron: selection.neuron, examples: result.examples ?? result }
          : null;
      }
      default:
        return null;
    }
  }

  toggleAblation(unit) {
    const list = this.state.selection.ablations;
    const same = (item) => item.layer === unit.layer && (unit.mlp ? item.mlp : item.head === unit.head);
    const index = list.findIndex(same);
    if (index >= 0) list.splice(index, 1);
    else list.push({ ...unit, kind: this.state.selection.ablationKind });
    for (const item of list) item.kind = this.state.selection.ablationKind;
    return this.ablate();
  }

  // A notebook view cell: the value of its code drawn by the named view.
  drawResult(el, view, value) {
    const key = ["tokens", "attention", "logit_lens", "activations"].includes(view) ? "analysis" : view;
    const props = this.props(view, { ...this.results, [key]: value });
    if (props) render(el, VIEW_MODULES[view], props);
  }

  drawBusy() {
    const busy = [...this.busy];
    $("#busy", this.root).textContent = busy.length ? `Running: ${busy.join(", ")}…` : "";
  }

  message(text, level = "info") {
    const box = $("#messages", this.root);
    const item = document.createElement("p");
    item.className = `message ${level}`;
    item.textContent = text;
    const close = document.createElement("button");
    close.textContent = "×";
    close.title = "Dismiss";
    close.addEventListener("click", () => item.remove());
    item.append(close);
    box.append(item);
    return item;
  }

  // A new version of the app has installed (web/pwa.js onUpdate): one message with a
  // button that switches to it (update() activates it and reloads the page).
  offerUpdate(update) {
    if ($("#update-app", this.root)) return;
    const item = this.message("A new version of NeuroScope is ready. Share your analysis first if you want " +
      "to keep unsaved work; then", "info");
    const button = Object.assign(document.createElement("button"), { id: "update-app", textContent: "Reload" });
    button.addEventListener("click", () => {
      button.disabled = true;
      update().catch((error) => this.message(`The update failed: ${error.message}`, "error"));
    });
    item.insertBefore(button, item.lastChild);
  }

  showProgress(event) {
    const el = $("#progress", this.root);
    if (event.stage !== "download" && event.stage !== "task") return;
    const label = event.stage === "download" ? `${event.cached ? "Cached" : "Downloading"} ${event.url}` : event.label;
    el.hidden = event.total ? event.done >= event.total : false;
    render(el, ProgressView, { label, done: event.done, total: event.total, bytes: event.stage === "download" });
  }

  // -- inputs --------------------------------------------------------------------
  syncInputs() {
    for (const name of ["prompt", "corrupted", "answer", "wrong"]) $(`#${name}`, this.root).value = this.state[name] ?? "";
  }

  wire() {
    const tabs = $("#tabs", this.root);
    tabs.replaceChildren(...VIEWS.map((view) => {
      const button = document.createElement("button");
      button.type = "button";
      button.dataset.view = view;
      button.setAttribute("role", "tab");
      button.textContent = VIEW_TITLES[view];
      button.addEventListener("click", () => this.showView(view).catch(() => {})); // errors: in #messages
      return button;
    }));
    $("#prompt-form", this.root).addEventListener("submit", (event) => {
      event.preventDefault();
      for (const name of ["prompt", "corrupted", "answer", "wrong"]) this.state[name] = $(`#${name}`, this.root).value;
      this.analyze().catch(() => {});
    });
    $("#examples", this.root).addEventListener("change", (event) => {
      const item = this.results.prompts?.[Number(event.target.value)];
      if (!item) return;
      Object.assign(this.state, { prompt: item.clean, corrupted: item.corrupted, answer: item.answer,
        wrong: item.wrong });
      this.syncInputs();
      this.analyze().catch(() => {});
    });
    $("#neuron-form", this.root).addEventListener("submit", (event) => {
      event.preventDefault();
      this.state.selection.neuronLayer = Number($("#neuron-layer", this.root).value);
      this.state.selection.neuron = Number($("#neuron-index", this.root).value);
      this.neurons().catch(() => {});
    });
    $("#share", this.root).addEventListener("click", () => this.share());
    $("#open-state", this.root).addEventListener("change", (event) => this.openStateFile(event.target.files[0]));
    for (const panel of this.root.querySelectorAll(".panel[data-view]")) {
      const view = panel.dataset.view;
      panel.querySelector(".copy")?.addEventListener("click", () =>
        navigator.clipboard?.writeText(this.code[view] ?? "").catch(() => {}));
      panel.querySelector(".to-notebook")?.addEventListener("click", () => {
        this.notebook.addCell({ type: "view", view, source: this.code[view] ?? "" });
        this.showView("notebook");
      });
    }
  }

  async share() {
    const state = { ...this.state, notebook: this.notebook.cells() };
    validateState(state);
    const result = await shareURL(state, location.href);
    const out = $("#share-result", this.root);
    if (result.url) {
      out.replaceChildren(Object.assign(document.createElement("input"), { value: result.url, readOnly: true,
        id: "share-url" }));
      navigator.clipboard?.writeText(result.url).catch(() => {});
    } else {
      const link = Object.assign(document.createElement("a"), { href: URL.createObjectURL(result.file),
        download: result.name, id: "share-file", textContent: `Download ${result.name} (too large for a link)` });
      out.replaceChildren(link);
    }
    return result;
  }

  async openStateFile(file) {
    if (!file) return;
    try {
      this.state = completeState(await readStateFile(file));
      this.syncInputs();
      this.notebook.setCells(this.state.notebook, { fromLink: true });
      await this.loadModel({ ref: this.state.model.ref }, { keepState: true });
    } catch (error) {
      this.message(`Cannot open ${file.name}: ${error.message}`, "error");
    }
  }
}

const VIEW_MODULES = {
  tokens: TokensView, attention: AttentionView, logit_lens: LogitLensView, activations: ActivationsView,
  ablation: AblationView, patching: PatchingView, neurons: NeuronsView,
};
