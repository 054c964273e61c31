// The Lens: the app shell. It owns the state (./state.js), runs each action's Python in
// the worker (./lens_calls.js through window.neuroscope.python), and draws the views
// (./views/*, pure functions of their props) with render(). Every view shows the Python
// call that produced it, copyable and runnable in the notebook. The bodies of the actions
// (./lens_actions.js), the session and share link (./lens_session.js) and the controls'
// wiring (./lens_forms.js) are functions of the app; its methods of the same names call them.

import * as actions from "./lens_actions.js";
import * as calls from "./lens_calls.js";
import * as forms from "./lens_forms.js";
import * as session from "./lens_session.js";
import { DatasetChoices } from "./datasets.js";
import { ModelPanel } from "./models.js";
import { Notebook } from "./notebook.js";
import { render } from "./render.js";
import { viewProps } from "./view_props.js";
import { Requests } from "./requests.js";
import { defaultState, repairMessage, repairState } from "./state.js";
import { weightsHash } from "../worker/weights.js";
import * as AblationView from "./views/ablation.js";
import * as ActivationsView from "./views/activations.js";
import * as AttributionView from "./views/attribution.js";
import * as AttentionView from "./views/attention.js";
import * as CircuitView from "./views/circuit.js";
import * as LogitLensView from "./views/logit_lens.js";
import * as NeuronsView from "./views/neurons.js";
import * as ProbesView from "./views/probes.js";
import * as PatchingView from "./views/patching.js";
import * as ProgressView from "./views/progress.js";
import * as TokensView from "./views/tokens.js";

const $ = (selector, root = document) => root.querySelector(selector);

const EMPTY_RESULTS = { analysis: null, ablation: null, patching: null, attribution: null, neurons: null, probes: null,
  prompts: null, circuit: null, circuitAblation: null, hypothesis: null, patchingAverage: null };

export class LensApp {
  constructor(root, neuroscope) {
    this.root = root;
    this.neuroscope = neuroscope;
    this.state = defaultState();
    this.results = { ...EMPTY_RESULTS };
    this.code = {}; // view -> the Python that produced what it shows
    this.requests = new Requests(neuroscope, { onBusy: () => this.drawBusy(),
      onFailure: (what, text) => { this.message(text, "error"); this.draw(); } });
    this.notebook = new Notebook($("#notebook", root), {
      python: (code) => this.neuroscope.python(code),
      runCell: (source) => this.runCell(source),
      drawView: (el, view, value) => this.drawResult(el, view, value),
      onChange: (cells) => { this.state.notebook = cells; this.saveSoon(); },
      modelSource: () => this.modelSource(),
      interrupt: () => this.interrupt(),
      restart: () => this.restart().catch((error) => this.shown(error)),
    });
    this.datasets = new DatasetChoices(this);
    this.models = new ModelPanel($("#model-panel", root), {
      load: (source) => this.loadModel(source),
    });
    this.wire();
  }

  // -- start-up and the saved session (./lens_session.js) ---------------------------
  start() { return session.start(this); }
  openState(state, options) { return session.openState(this, state, options); }
  openStateFile(file) { return session.openStateFile(this, file); }
  saveSoon() { session.saveSoon(this); }
  saveNow() { session.saveNow(this); }
  offerRestore() { session.offerRestore(this); }
  share() { return session.share(this); }

  // -- actions -------------------------------------------------------------------
  async loadModel(source, { keepState = false } = {}) {
    const call = source.files ? calls.loadFiles(source.files.map((file) => file.name)) : calls.loadModel(source.ref);
    const globals = source.files ? {
      ...call.globals,
      file_names: source.files.map((file) => file.name),
      file_data: await Promise.all(source.files.map(async (file) => new Uint8Array(await file.arrayBuffer()))),
    } : call.globals;
    this.models.setStatus(`Loading ${source.ref ?? source.files.map((f) => f.name).join(", ")}…`);
    const firstEvent = this.neuroscope.progress.length;
    try {
      const info = await this.run("model", call.run, globals);
      this.modelInfo = info;
      this.source = source;
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
      const repaired = [...(this.state.repaired ?? []), ...repairState(this.state, info)];
      delete this.state.repaired;
      if (repaired.length) this.message(repairMessage(repaired), "warn");
      this.results = { ...EMPTY_RESULTS };
    } catch (error) {
      const current = this.modelInfo ? ` The current model (${this.modelInfo.name}) is still loaded.` : "";
      this.models.setStatus(`Could not load the model: ${error.pyType ?? error.name}: ${error.message}.${current}`,
        "error");
      return null;
    }
    await this.analyze().catch((error) => this.shown(error)); // the model stays loaded
    if (!this.results.prompts) await this.loadDemoPrompts(); // the Examples menu, for this model
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

  // The actions (./lens_actions.js).
  analyze() { return actions.analyze(this); }
  probes() { return actions.probes(this); }
  ablate() { return actions.ablate(this); }
  patch() { return actions.patch(this); }
  patchAverage() { return actions.patchAverage(this); }
  attribute() { return actions.attribute(this); }
  findCircuit() { return actions.findCircuit(this); }
  toggleCircuitNode(label) { return actions.toggleCircuitNode(this, label); }
  testHypothesis() { return actions.testHypothesis(this); }
  exportPaper() { return actions.exportPaper(this); }
  neurons() { return actions.neurons(this); }
  showView(view) { return actions.showView(this, view); }
  loadDemoPrompts() { return actions.loadDemoPrompts(this); }
  toggleAblation(unit) { return actions.toggleAblation(this, unit); }

  // The call of an action, built from the state; a value it refuses is shown and rethrown.
  prepare(what, make) {
    try {
      return make();
    } catch (error) {
      this.fail(what, `${what}: ${error.message}`);
      error.shown = true;
      throw error;
    }
  }

  get busy() { return this.requests.busy; }
  get failures() { return this.requests.failures; }
  get restarting() { return this.requests.restarting; }
  run(what, code, globals) { return this.requests.run(what, code, globals); }
  fail(what, text) { this.requests.fail(what, text); }
  track(what, promise) { return this.requests.track(what, promise); }

  // For promises whose errors run() and prepare() have already shown; anything else (a bug)
  // becomes a message too, so no error is silently dropped.
  shown(error) {
    if (!error?.shown) this.message(`Unexpected error: ${error?.name ?? "Error"}: ${error?.message ?? error}`, "error");
  }

  // The model of an exported .ipynb: its source and content_hash() (Python's, as Jupyter checks it).
  async modelSource() {
    const result = await this.runCell("model.content_hash()");
    if (result.error) throw new Error(`the model's content hash: ${result.error.message}`);
    return { source: this.state.model.ref, content_hash: result.value };
  }

  async runCell(source) {
    return this.track("notebook cell", this.neuroscope.python(
      "import neuroscope_session\nawait neuroscope_session.run_cell(cell_source)", { cell_source: source }));
  }

  // KeyboardInterrupt in the running Python (the request in flight fails with it).
  interrupt() {
    if (this.requests.interrupt()) return true;
    this.message("Python cannot be interrupted here: the page is not cross-origin isolated (no shared " +
      "memory with the worker). Restart stops it; the model reloads from the cache.", "warn");
    return false;
  }

  // A fresh Python worker: requests in flight are dropped, the current model reloads (from
  // IndexedDB), the prompts, selection and notebook cells stay. `why`: said in a message.
  async restart(why = null) {
    if (!this.restarting) {
      this.message(why ?? "Restarting Python: the model reloads from the cache; the notebook is kept.", "warn");
      this.models.setStatus("Restarting Python…");
    }
    return this.requests.restart(() => this.loadModel(this.source ?? { ref: this.state.model.ref },
      { keepState: true }));
  }

  // -- drawing -------------------------------------------------------------------
  draw() {
    this.saveSoon();
    for (const tab of this.root.querySelectorAll("#tabs button")) {
      tab.setAttribute("aria-selected", String(tab.dataset.view === this.state.view));
    }
    for (const panel of this.root.querySelectorAll(".panel")) {
      panel.hidden = panel.dataset.view !== this.state.view;
    }
    const view = this.state.view;
    if (view === "notebook") return;
    const el = $(`.panel[data-view="${view}"] .view`, this.root);
    const action = Object.keys(actions.ACTION_VIEWS).find((name) => actions.ACTION_VIEWS[name].includes(view));
    const failure = this.failures[action] ?? (action !== "analysis" ? this.failures.analysis : null);
    const props = failure ? null : this.props(view);
    const waiting = (view === "patching" || view === "attribution" || view === "circuit") && !this.results[view];
    if (failure) this.showError(el, view, failure);
    else if (props) this.render(el, view, waiting ? ProgressView : VIEW_MODULES[view], props);
    else if (!this.busy.size) el.replaceChildren();
    const average = view === "patching" && this.results.patchingAverage ? `\n\n${this.averageCode}` : "";
    $(`.panel[data-view="${view}"] .code code`, this.root).textContent = (this.code[view] ?? "") + average;
  }

  // Draws a view; a draw that throws leaves the error in the view, never a blank or an old picture.
  render(el, view, module, props) {
    try {
      render(el, module, props);
    } catch (error) {
      this.showError(el, view, `This view could not be drawn: ${error.name}: ${error.message}`);
    }
  }

  showError(el, view, text) {
    el.replaceChildren(Object.assign(document.createElement("p"), { className: "view-error", textContent: text }));
    el.dataset.view = view;
  }

  // The props of `view` from the latest results and the selection (null: nothing yet).
  props(view, results = this.results) {
    return viewProps(this, view, results);
  }

  // A notebook view cell: the value of its code drawn by the named view.
  drawResult(el, view, value) {
    const key = ["tokens", "attention", "logit_lens", "activations"].includes(view) ? "analysis" : view;
    const props = this.props(view, { ...this.results, [key]: value });
    if (props) this.render(el, view, VIEW_MODULES[view], props);
    else this.showError(el, view, `Nothing to draw in the ${view} view: the value has no ${view} result.`);
  }

  drawBusy() {
    const busy = [...this.busy].map(([what, count]) => (count > 1 ? `${what} (×${count})` : what));
    $("#busy", this.root).textContent = busy.length ? `Running: ${busy.join(", ")}…` : "";
    const cancel = $("#circuit-cancel", this.root); // the circuit view's own Interrupt
    if (cancel) cancel.hidden = !["circuit", "hypothesis"].some((what) => this.busy.has(what));
    const interrupt = $("#interrupt", this.root);
    if (interrupt) {
      interrupt.hidden = !busy.length;
      interrupt.title = this.neuroscope.canInterrupt ? "Stop the running Python (KeyboardInterrupt)"
        : "Unavailable on this page (not cross-origin isolated): use Restart";
    }
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

  // -- inputs (./lens_forms.js) -----------------------------------------------------
  syncInputs() { forms.syncInputs(this); }
  wire() { forms.wire(this); }
}

const VIEW_MODULES = {
  tokens: TokensView, attention: AttentionView, logit_lens: LogitLensView, activations: ActivationsView,
  ablation: AblationView, patching: PatchingView, attribution: AttributionView, circuit: CircuitView,
  neurons: NeuronsView, probes: ProbesView,
};
