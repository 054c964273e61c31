// The Python each Lens action runs in the worker: one function per action, returning
// {code, run, globals}. Nothing from a link, a file or a form is pasted into the source
// that runs: `run` reads its inputs from the global `lens_args` (one JSON string, parsed
// in Python) or from other globals (uploaded file bytes). `code` is what the view's
// "Python" box shows, generated from the same values: validated integers, booleans and
// None, and strings as JSON string literals (which are also Python string literals), so
// copying it into the notebook reproduces the view and cannot run anything else.

export const ABLATION_KINDS = ["zero", "mean", "resample"];

// A JSON string literal: a valid Python string literal that contains no executable code.
function str(value, what) {
  if (typeof value !== "string") throw new TypeError(`${what} is ${describe(value)}; expected a string`);
  return JSON.stringify(value);
}

function int(value, what) {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new TypeError(`${what} is ${describe(value)}; expected a non-negative integer`);
  }
  return String(value);
}

function describe(value) {
  if (typeof value === "string") return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (value === undefined) return "missing";
  try { return `${typeof value} ${JSON.stringify(value)?.slice(0, 40)}`; } catch { return typeof value; }
}

// The code that runs: the arguments come from the global `lens_args`, never from the source.
function withArgs(call, args) {
  return {
    run: `import json\nfrom neuroscope import lens\nlens_args = json.loads(lens_args)\n${call}`,
    globals: { lens_args: JSON.stringify(args) },
  };
}

const optionalStr = (value, what) => (value == null ? "None" : str(value, what));

export function loadModel(ref) {
  const shown = `from neuroscope import TransformerModel, lens
model = TransformerModel.from_huggingface(${str(ref, "the model reference")})
{**lens.model_info(model), "family": model.cfg.family, "source": str(model.source)}`;
  return {
    code: shown,
    ...withArgs(`from neuroscope import TransformerModel
model = TransformerModel.from_huggingface(lens_args["ref"])
{**lens.model_info(model), "family": model.cfg.family, "source": str(model.source)}`, { ref }),
  };
}

// Files picked or dropped: written into Pyodide's file system, then loaded as a folder.
// The bytes and the names enter as the globals `file_data` and `file_names`.
export function loadFiles(names) {
  names.forEach((name, i) => str(name, `file name ${i}`));
  const body = `import os
from neuroscope import TransformerModel, lens
folder = "/tmp/uploaded-model"
os.makedirs(folder, exist_ok=True)
for old in os.listdir(folder):
    os.remove(os.path.join(folder, old))
for name, data in zip(file_names, file_data):
    with open(os.path.join(folder, os.path.basename(name)), "wb") as handle:
        handle.write(data)
del file_data
model = TransformerModel.from_huggingface(folder)
`;
  return {
    code: `${body}{**lens.model_info(model), "family": model.cfg.family, "source": ${str(names.join(", "), "file names")}}`,
    run: `${body}{**lens.model_info(model), "family": model.cfg.family, "source": ", ".join(file_names)}`,
    globals: {},
  };
}

export function analyze(prompt) {
  return {
    code: `from neuroscope import lens\nlens.analyze(model, ${str(prompt, "the prompt")})`,
    ...withArgs(`lens.analyze(model, lens_args["prompt"])`, { prompt }),
  };
}

// The ablation list, checked entry by entry: {layer, head, kind} or {layer, mlp: true, kind}.
export function cleanAblations(ablations) {
  if (!Array.isArray(ablations)) throw new TypeError(`ablations is ${describe(ablations)}; expected a list`);
  return ablations.map((entry, i) => {
    const where = `ablations[${i}]`;
    if (entry === null || typeof entry !== "object") throw new TypeError(`${where} is ${describe(entry)}; expected an object`);
    const kind = entry.kind ?? "zero";
    if (!ABLATION_KINDS.includes(kind)) {
      throw new TypeError(`${where}.kind is ${describe(kind)}; expected one of ${ABLATION_KINDS.join(", ")}`);
    }
    int(entry.layer, `${where}.layer`);
    if (entry.mlp === true) return { layer: entry.layer, mlp: true, kind };
    int(entry.head, `${where}.head`);
    return { layer: entry.layer, head: entry.head, kind };
  });
}

function ablationLiteral(ablation) {
  const unit = ablation.mlp ? `"mlp": True` : `"head": ${int(ablation.head, "head")}`;
  return `{"layer": ${int(ablation.layer, "layer")}, ${unit}, "kind": ${str(ablation.kind, "kind")}}`;
}

export function ablate(state) {
  const { prompt, answer, wrong } = state;
  const ablations = cleanAblations(state.selection.ablations ?? []);
  const reference = state.selection.ablationKind === "resample" ? (state.corrupted ?? null) : null;
  const args = { prompt, ablations, answer: answer ?? null, wrong: wrong ?? null, reference };
  return {
    code: `from neuroscope import lens\nlens.ablate(model, ${str(prompt, "the prompt")}, ` +
      `[${ablations.map(ablationLiteral).join(", ")}], answer=${optionalStr(answer, "answer")}, ` +
      `wrong=${optionalStr(wrong, "wrong")}, reference=${optionalStr(reference, "the corrupted prompt")})`,
    ...withArgs(`lens.ablate(model, lens_args["prompt"], lens_args["ablations"], answer=lens_args["answer"], ` +
      `wrong=lens_args["wrong"], reference=lens_args["reference"])`, args),
  };
}

export function patch(state) {
  const args = { prompt: state.prompt, corrupted: state.corrupted, answer: state.answer, wrong: state.wrong };
  return {
    code: `from neuroscope import lens\nlens.patch(model, ${str(args.prompt, "the prompt")}, ` +
      `${str(args.corrupted, "the corrupted prompt")}, ${str(args.answer, "answer")}, ${str(args.wrong, "wrong")})`,
    ...withArgs(`lens.patch(model, lens_args["prompt"], lens_args["corrupted"], lens_args["answer"], ` +
      `lens_args["wrong"])`, args),
  };
}

// The patching view's average over a dataset of pairs (the page's workers share it).
export function patchDataset(dataset = "demo/ioi", count = 64) {
  if (!Number.isInteger(count) || count < 1) throw new TypeError(`count must be a positive integer, got ${describe(count)}`);
  const args = { dataset, count };
  return {
    code: `from neuroscope import lens\nlens.patch_dataset(model, ${str(dataset, "the dataset")}, count=${count})`,
    ...withArgs(`lens.patch_dataset(model, lens_args["dataset"], count=lens_args["count"])`, args),
  };
}

// The attribution view: state.selection.attributionMethod is "atp" or "eap-ig" (checked here too).
export function attribute(state) {
  const method = state.selection.attributionMethod ?? "atp";
  if (!["atp", "eap-ig"].includes(method)) {
    throw new TypeError(`the attribution method is ${describe(method)}; expected atp or eap-ig`);
  }
  const args = { prompt: state.prompt, corrupted: state.corrupted, answer: state.answer, wrong: state.wrong, method };
  return {
    code: `from neuroscope import lens\nlens.attribute(model, ${str(args.prompt, "the prompt")}, ` +
      `${str(args.corrupted, "the corrupted prompt")}, ${str(args.answer, "answer")}, ${str(args.wrong, "wrong")}, ` +
      `method=${str(method, "method")})`,
    ...withArgs(`lens.attribute(model, lens_args["prompt"], lens_args["corrupted"], lens_args["answer"], ` +
      `lens_args["wrong"], method=lens_args["method"])`, args),
  };
}

// A dataset choice of a form: one of `datasets` (built-in names and this browser's uploads).
function checkDataset(dataset, datasets, what) {
  if (datasets.includes(dataset)) return;
  if (typeof dataset === "string" && dataset.startsWith("stored:")) {
    throw new TypeError(`the ${what} dataset ${describe(dataset.slice(7))} is not stored in this browser; ` +
      "upload the file in this view");
  }
  throw new TypeError(`the ${what} dataset is ${describe(dataset)}; expected one of ${datasets.join(", ")}`);
}

// dataset: "sample" (a few held-out texts) or one of `datasets` (a whole built-in or uploaded dataset).
export function neurons(layer, neuron, dataset = "sample", datasets = ["sample"]) {
  checkDataset(dataset, datasets, "neuron");
  const head = `from neuroscope import lens\nlens.neurons(model, ${int(layer, "the neuron layer")}, ` +
    `${int(neuron, "the neuron")}`;
  return {
    code: dataset === "sample" ? `${head}, lens.sample_texts(model))` : `${head}, dataset=${str(dataset, "dataset")})`,
    ...withArgs(`lens.neurons(model, lens_args["layer"], lens_args["neuron"], ` +
      `lens.sample_texts(model) if lens_args["dataset"] is None else None, dataset=lens_args["dataset"])`,
    { layer, neuron, dataset: dataset === "sample" ? null : dataset }),
  };
}

// The probe view: a probe per layer over a built-in probing set or an uploaded dataset.
export function probes(state, { datasets, components }) {
  const { probeDataset: dataset, probeComponent: component } = state.selection;
  checkDataset(dataset, datasets, "probe");
  if (!components.includes(component)) {
    throw new TypeError(`the probe component is ${describe(component)}; expected one of ${components.join(", ")}`);
  }
  return {
    code: `from neuroscope import lens\nlens.probes(model, ${str(dataset, "dataset")}, ${str(component, "component")})`,
    ...withArgs(`lens.probes(model, lens_args["dataset"], lens_args["component"])`, { dataset, component }),
  };
}

// The circuit view (neuroscope.lens.circuits): the selection's dataset, method, threshold and
// number of pairs, checked here as in Python.
const CIRCUIT_METHODS = ["activation_patching", "path_patching", "acdc", "eap", "eap-ig"];

function circuitArgs(state, datasets) {
  const { circuitDataset: dataset, circuitMethod: method, circuitThreshold: threshold, circuitCount: count } =
    state.selection;
  checkDataset(dataset, datasets, "circuit");
  if (!CIRCUIT_METHODS.includes(method)) {
    throw new TypeError(`the circuit method is ${describe(method)}; expected one of ${CIRCUIT_METHODS.join(", ")}`);
  }
  if (!(typeof threshold === "number" && threshold >= 0 && threshold <= 1)) {
    throw new TypeError(`the circuit threshold is ${describe(threshold)}; expected a number in 0-1`);
  }
  int(count, "the number of pairs");
  return { dataset, method, threshold, count };
}

const number = (value) => (Number.isInteger(value) ? value.toFixed(1) : String(value));

export function findCircuit(state, { datasets }) {
  const args = circuitArgs(state, datasets);
  return {
    code: `from neuroscope import lens\nlens.find_circuit(model, ${str(args.dataset, "dataset")}, ` +
      `${str(args.method, "method")}, ${number(args.threshold)}, ${int(args.count, "count")})`,
    ...withArgs(`lens.find_circuit(model, lens_args["dataset"], lens_args["method"], lens_args["threshold"], ` +
      `lens_args["count"])`, args),
  };
}

export function ablateComponents(state, { datasets }) {
  const { dataset, count } = circuitArgs(state, datasets);
  const labels = state.selection.circuitAblated ?? [];
  labels.forEach((label, i) => {
    if (typeof label !== "string" || !/^(L\d+H\d+|MLP\d+)$/.test(label)) {
      throw new TypeError(`ablated node ${i} is ${describe(label)}; expected a label such as L3H6 or MLP2`);
    }
  });
  return {
    code: `from neuroscope import lens\nlens.ablate_components(model, ${str(dataset, "dataset")}, ` +
      `${int(count, "count")}, [${labels.map((label) => str(label, "label")).join(", ")}])`,
    ...withArgs(`lens.ablate_components(model, lens_args["dataset"], lens_args["count"], lens_args["labels"])`,
      { dataset, count, labels }),
  };
}

export function testHypothesis(state, { datasets }) {
  const { dataset, count } = circuitArgs(state, datasets);
  const hypothesis = state.selection.hypothesis;
  str(hypothesis, "the hypothesis");
  return {
    code: `from neuroscope import lens\nlens.hypothesis_test(model, ${str(hypothesis, "the hypothesis")}, ` +
      `${str(dataset, "dataset")}, ${int(count, "count")})`,
    ...withArgs(`lens.hypothesis_test(model, lens_args["hypothesis"], lens_args["dataset"], lens_args["count"])`,
      { hypothesis, dataset, count }),
  };
}

export function exportPaper(title, lensUrl) {
  str(title, "the paper's title");
  str(lensUrl, "the Lens address");
  return {
    code: `from neuroscope import lens\nlens.export_paper(model, ${str(title, "title")}, lens_url=${str(lensUrl, "url")})`,
    ...withArgs(`lens.export_paper(model, lens_args["title"], lens_url=lens_args["url"])`, { title, url: lensUrl }),
  };
}

export function demoPrompts() {
  const code = "from neuroscope import lens\nlens.demo_prompts(model)";
  return { code, run: code, globals: {} };
}
