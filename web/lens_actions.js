// The Lens's actions: each one builds its call from the state (./lens_calls.js), runs it in
// the worker through the app (app.run: busy, latest-wins, failures shown), keeps the result
// and the Python it ran, and draws. Every function takes the LensApp (./app.js), whose
// methods of the same names call them; they call each other through the app too.

import * as calls from "./lens_calls.js";
import { PROBE_COMPONENTS } from "./state.js";

const $ = (selector, root = document) => root.querySelector(selector);

// The views each action draws: a failed action shows its error in them.
export const ACTION_VIEWS = {
  analysis: ["tokens", "attention", "logit_lens", "activations"], ablation: ["ablation"], patching: ["patching"],
  attribution: ["attribution"], neurons: ["neurons"], probes: ["probes"], circuit: ["circuit"],
};

export async function analyze(app) {
  const call = app.prepare("analysis", () => calls.analyze(app.state.prompt));
  for (const view of ACTION_VIEWS.analysis) app.code[view] = call.code;
  app.results.analysis = await app.run("analysis", call.run, call.globals);
  const { n_layers: layers, n_heads: heads } = app.results.analysis.model;
  const selection = app.state.selection;
  selection.layer = Math.min(selection.layer, layers - 1);
  selection.head = Math.min(selection.head, heads - 1);
  app.results.ablation = null;
  app.results.patching = null;
  app.results.attribution = null;
  app.draw();
  if (app.state.view === "ablation") await app.ablate();
  if (app.state.view === "patching") await app.patch();
  if (app.state.view === "attribution") await app.attribute();
  if (app.state.view === "neurons") await app.neurons();
  if (app.state.view === "probes" && !app.results.probes) await app.probes();
}

export async function probes(app) {
  const call = app.prepare("probes", () => calls.probes(app.state,
    { datasets: app.datasets.probe(), components: PROBE_COMPONENTS }));
  app.code.probes = call.code;
  app.results.probes = await app.run("probes", call.run, call.globals);
  app.draw();
}

export async function ablate(app) {
  const call = app.prepare("ablation", () => calls.ablate(app.state));
  app.code.ablation = call.code;
  app.results.ablation = await app.run("ablation", call.run, call.globals);
  app.state.interventions = app.results.ablation.spec ?? [];
  app.draw();
}

export async function patch(app) {
  const call = app.prepare("patching", () => calls.patch(app.state));
  app.code.patching = call.code;
  const pending = app.run("patching", call.run, call.globals);
  app.draw(); // the attribution view's "Compare" button shows the sweep running
  app.results.patching = await pending;
  app.draw();
}

// Head patching averaged over the demo's IOI pairs (the page's workers share them); it does
// not depend on the prompt, so it stays until the model changes.
export async function patchAverage(app) {
  const call = app.prepare("patching average", () => calls.patchDataset("demo/ioi", 64));
  const pending = app.run("patching average", call.run, call.globals);
  app.draw(); // the button shows the run
  app.results.patchingAverage = await pending;
  app.averageCode = call.code;
  app.draw();
}

export async function attribute(app) {
  const call = app.prepare("attribution", () => calls.attribute(app.state));
  app.code.attribution = call.code;
  app.results.attribution = await app.run("attribution", call.run, call.globals);
  app.draw();
}

// The circuit view: find the circuit, then ablate clicked nodes / test a hypothesis on the same pairs.
export async function findCircuit(app) {
  const call = app.prepare("circuit", () => calls.findCircuit(app.state, { datasets: app.datasets.circuit() }));
  app.code.circuit = call.code;
  app.results.circuit = null;
  app.results.circuitAblation = null;
  app.state.selection.circuitAblated = [];
  app.draw();
  app.results.circuit = await app.run("circuit", call.run, call.globals);
  app.draw();
}

export async function toggleCircuitNode(app, label) {
  const list = app.state.selection.circuitAblated;
  const index = list.indexOf(label);
  if (index >= 0) list.splice(index, 1);
  else list.push(label);
  if (!list.length) {
    app.results.circuitAblation = null;
    app.draw();
    return;
  }
  await circuitCall(app, "circuit ablation", calls.ablateComponents, "circuitAblation");
}

export async function testHypothesis(app) {
  await circuitCall(app, "hypothesis", calls.testHypothesis, "hypothesis");
}

// A call of the circuit tab on its datasets: its Python shown there, its result kept as
// app.results[key].
async function circuitCall(app, label, make, key) {
  const call = app.prepare(label, () => make(app.state, { datasets: app.datasets.circuit() }));
  app.code.circuit = call.code;
  app.draw();
  app.results[key] = await app.run(label, call.run, call.globals);
  app.draw();
}

// "Export paper": the circuit and the hypotheses tested since, as a .zip of main.tex,
// references.bib, the figures and the share file (neuroscope.lens.export_paper).
export async function exportPaper(app) {
  const title = $("#paper-title", app.root).value.trim() || "A circuit found with NeuroScope";
  const base = location.href.split("#")[0];
  const call = app.prepare("paper", () => calls.exportPaper(title, base));
  const result = await app.run("paper", call.run, call.globals);
  const bytes = Uint8Array.from(atob(result.zip_base64), (c) => c.charCodeAt(0));
  const link = Object.assign(document.createElement("a"), { id: "paper-download", download: result.name,
    href: URL.createObjectURL(new Blob([bytes], { type: "application/zip" })),
    textContent: `Download ${result.name}` });
  $("#paper-result", app.root).replaceChildren(link, ` (${result.files.join(", ")})`);
  link.click();
  return result;
}

export async function neurons(app) {
  const { neuronLayer, neuron } = app.state.selection;
  const { neuronDataset } = app.state.selection;
  const call = app.prepare("neurons", () => calls.neurons(neuronLayer, neuron, neuronDataset,
    app.datasets.neuron()));
  app.code.neurons = call.code;
  app.results.neurons = await app.run("neurons", call.run, call.globals);
  app.draw();
}

export async function showView(app, view) {
  app.state.view = view;
  app.draw();
  if (view === "ablation" && !app.results.ablation) await app.ablate();
  if (view === "patching" || view === "attribution") {
    if (!app.results.prompts) app.loadDemoPrompts();
    if (view === "patching" && !app.results.patching) await app.patch();
    if (view === "attribution" && !app.results.attribution) await app.attribute();
  }
  if (view === "neurons" && !app.results.neurons) await app.neurons();
  if (view === "probes" && !app.results.probes) await app.probes();
  if (view === "circuit" && !app.results.circuit && !app.busy.has("circuit")) await app.findCircuit();
}

export async function loadDemoPrompts(app) {
  try {
    const examples = await app.neuroscope.python(calls.demoPrompts().run);
    // Labels say what each is ("IOI: ...", "Fact: ...", "Induction: ...").
    app.results.prompts = [...(examples.induction ?? []), ...examples.ioi, ...examples.facts];
    const select = $("#examples", app.root);
    select.replaceChildren(new Option("Examples…", ""), ...app.results.prompts.map((item, index) =>
      new Option(item.label ?? item.clean, String(index))));
  } catch (error) {
    app.message(`No example prompts: ${error.message}`, "warn");
  }
}

export function toggleAblation(app, unit) {
  const list = app.state.selection.ablations;
  const same = (item) => item.layer === unit.layer && (unit.mlp ? item.mlp : item.head === unit.head);
  const index = list.findIndex(same);
  if (index >= 0) list.splice(index, 1);
  else list.push({ ...unit, kind: app.state.selection.ablationKind });
  for (const item of list) item.kind = app.state.selection.ablationKind;
  return app.ablate();
}
