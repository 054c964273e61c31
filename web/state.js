// The Lens's whole state: what a share link carries and what every view is drawn from.
//
// {v: 1,
//  model: {ref: "demo" | URL | hub name | "local:<names>", sha256?: string},
//  prompt, corrupted, answer, wrong      strings (the clean/corrupted pair and the two
//                                        answer tokens of the logit difference)
//  view: one of VIEWS,
//  selection: {token, layer, head, scoreKind, component, neuronLayer, neuron,
//              ablations: [{layer, head, kind} | {layer, mlp: true, kind}], ablationKind,
//              probeDataset, probeComponent, neuronDataset, attributionMethod,
//              circuitDataset, circuitMethod, circuitThreshold, circuitCount, circuitAblated: [label],
//              hypothesis},
//  interventions: [JSON specs of neuroscope.interventions, as the last ablation ran them],
//  notebook: [{type: "markdown" | "code" | "view", source, view?}]}

export const VIEWS = ["tokens", "attention", "logit_lens", "activations", "ablation", "patching", "attribution",
  "circuit", "neurons", "probes", "notebook"];

export const VIEW_TITLES = {
  tokens: "Tokens", attention: "Attention", logit_lens: "Logit lens", activations: "Activations",
  ablation: "Ablation", patching: "Patching", attribution: "Attribution", circuit: "Circuit", neurons: "Neurons",
  probes: "Probes", notebook: "Notebook",
};

export const DEFAULT_PROMPT = "When Mary and John went to the store, John gave a drink to";

export function defaultState() {
  return {
    v: 1,
    model: { ref: "demo" },
    prompt: DEFAULT_PROMPT,
    corrupted: "When Mary and John went to the store, Kate gave a drink to",
    answer: " Mary",
    wrong: " John",
    view: "attention",
    selection: {
      token: null, layer: 0, head: 0, scoreKind: "induction", component: "residual",
      neuronLayer: 0, neuron: 0, ablations: [], ablationKind: "zero", probeDataset: PROBE_DATASETS[0],
      probeComponent: PROBE_COMPONENTS[0], neuronDataset: NEURON_DATASETS[0], attributionMethod: "atp",
      circuitDataset: CIRCUIT_DATASETS[0], circuitMethod: CIRCUIT_METHODS[0], circuitThreshold: 0.05,
      circuitCount: 16, circuitAblated: [], hypothesis: "Layer 3 head 6 moves the indirect object's name",
    },
    interventions: [],
    notebook: [
      { type: "markdown", source: "# Notes\nCells run Python in the worker; `model` is the loaded model." },
      { type: "code", source: "model.to_str_tokens(\"The capital of France is\")" },
    ],
  };
}

export const SCORE_KINDS = ["induction", "previous_token", "duplicate_token", "entropy"];
export const COMPONENTS = ["residual", "attention", "mlp"];
export const ABLATION_KINDS = ["zero", "mean", "resample"];
// As neuroscope.lens.attribution.METHODS.
export const ATTRIBUTION_METHODS = ["atp", "eap-ig"];
// As neuroscope.analysis.circuits.METHODS and neuroscope.lens.circuits.CIRCUIT_DATASETS.
export const CIRCUIT_METHODS = ["activation_patching", "path_patching", "acdc", "eap", "eap-ig"];
export const CIRCUIT_DATASETS = ["demo/ioi", "demo/facts"];
export const MAX_CIRCUIT_COUNT = 200;
export const COMPONENT_LABEL = /^(L(\d+)H(\d+)|MLP(\d+))$/;
// As neuroscope.lens.PROBE_DATASETS / PROBE_COMPONENTS (py/neuroscope/lens/probes.py).
export const PROBE_DATASETS = ["demo/ioi-order", "demo/facts-relation"];
export const PROBE_COMPONENTS = ["residual", "resid_pre", "attn_out", "mlp_out"];
// The neuron view's texts: "sample" (a few held-out texts) or a whole built-in dataset
// (neuroscope.lens.NEURON_DATASETS).
export const NEURON_DATASETS = ["sample", "demo/text", "demo/ioi", "demo/facts"];
// An uploaded dataset: "stored:<name>" (neuroscope.lens.datasets; the name as
// neuroscope.datasets.STORED_NAME allows). Whether this browser has it is checked when it runs.
export const STORED_PREFIX = "stored:";
const STORED_NAME = /^[A-Za-z0-9][A-Za-z0-9._ -]{0,99}$/;
const STORED_EXTENSION = /\.(jsonl|json|csv|txt)$/i;
export const isStoredChoice = (value) => typeof value === "string" && value.startsWith(STORED_PREFIX) &&
  STORED_NAME.test(value.slice(STORED_PREFIX.length)) && STORED_EXTENSION.test(value);

// A state from a link or file, completed with defaults for anything it leaves out and
// repaired where a field has the wrong type (state.repaired lists what was replaced, for
// one message; repairState checks the ranges once the model is known).
export function completeState(partial) {
  const base = defaultState();
  const state = { ...base, ...partial };
  const repaired = [];
  state.model = { ...base.model, ...(partial.model ?? {}) };
  state.selection = { ...base.selection, ...(isObject(partial.selection) ? partial.selection : {}) };
  if (!VIEWS.includes(state.view)) {
    if ("view" in partial) repaired.push(`view ${describe(partial.view)}`);
    state.view = base.view;
  }
  for (const field of ["prompt", "corrupted", "answer", "wrong"]) {
    if (typeof state[field] !== "string") {
      if (partial[field] != null) repaired.push(`${field} ${describe(partial[field])}`);
      state[field] = base[field];
    }
  }
  repairSelection(state.selection, null, repaired);
  state.notebook = Array.isArray(partial.notebook) ? partial.notebook : base.notebook;
  if (!Array.isArray(state.interventions)) state.interventions = [];
  state.repaired = repaired;
  return state;
}

// Checks the selection against the loaded model ({n_layers, n_heads, d_mlp}): out-of-range
// or wrongly typed values go back to their defaults and bad ablation entries are dropped.
// Returns the list of what was replaced or dropped (empty when all was valid).
export function repairState(state, info) {
  const repaired = [];
  repairSelection(state.selection, info, repaired);
  return repaired;
}

export function repairMessage(repaired) {
  return `This link's state had values this app or model cannot use; replaced or dropped: ${repaired.join("; ")}.`;
}

function repairSelection(selection, info, repaired) {
  const base = defaultState().selection;
  const limits = {
    layer: info?.n_layers, head: info?.n_heads, neuronLayer: info?.n_layers, neuron: info?.d_mlp,
  };
  for (const [field, limit] of Object.entries(limits)) {
    if (!isIndex(selection[field], limit)) {
      repaired.push(`selection.${field} ${describe(selection[field])}` + (limit ? ` (expected 0-${limit - 1})` : ""));
      selection[field] = base[field];
    }
  }
  if (selection.token !== null && !isIndex(selection.token)) {
    repaired.push(`selection.token ${describe(selection.token)}`);
    selection.token = null;
  }
  for (const [field, allowed] of [["scoreKind", SCORE_KINDS], ["component", COMPONENTS],
    ["ablationKind", ABLATION_KINDS], ["probeDataset", PROBE_DATASETS], ["probeComponent", PROBE_COMPONENTS],
    ["neuronDataset", NEURON_DATASETS], ["attributionMethod", ATTRIBUTION_METHODS],
    ["circuitDataset", CIRCUIT_DATASETS], ["circuitMethod", CIRCUIT_METHODS]]) {
    const uploaded = ["probeDataset", "neuronDataset", "circuitDataset"].includes(field) &&
      isStoredChoice(selection[field]);
    if (!allowed.includes(selection[field]) && !uploaded) {
      repaired.push(`selection.${field} ${describe(selection[field])} (expected one of ${allowed.join(", ")})`);
      selection[field] = base[field];
    }
  }
  const threshold = selection.circuitThreshold;
  if (!(typeof threshold === "number" && threshold >= 0 && threshold <= 1)) {
    repaired.push(`selection.circuitThreshold ${describe(threshold)} (expected a number in 0-1)`);
    selection.circuitThreshold = base.circuitThreshold;
  }
  if (!isIndex(selection.circuitCount, MAX_CIRCUIT_COUNT + 1) || selection.circuitCount < 1) {
    repaired.push(`selection.circuitCount ${describe(selection.circuitCount)} (expected 1-${MAX_CIRCUIT_COUNT})`);
    selection.circuitCount = base.circuitCount;
  }
  if (typeof selection.hypothesis !== "string" || selection.hypothesis.length > 500) {
    repaired.push(`selection.hypothesis ${describe(selection.hypothesis)} (expected a sentence)`);
    selection.hypothesis = base.hypothesis;
  }
  if (!Array.isArray(selection.circuitAblated)) {
    repaired.push(`selection.circuitAblated ${describe(selection.circuitAblated)}`);
    selection.circuitAblated = [];
  }
  selection.circuitAblated = selection.circuitAblated.filter((label, i) => {
    const match = typeof label === "string" ? COMPONENT_LABEL.exec(label) : null;
    const layer = match && Number(match[2] ?? match[4]);
    const ok = match && (!info || (layer < info.n_layers && (match[3] === undefined || Number(match[3]) < info.n_heads)));
    if (!ok) repaired.push(`selection.circuitAblated[${i}] ${describe(label)}`);
    return ok;
  });
  if (!Array.isArray(selection.ablations)) {
    repaired.push(`selection.ablations ${describe(selection.ablations)}`);
    selection.ablations = [];
  }
  selection.ablations = selection.ablations.filter((entry, i) => {
    const ok = isObject(entry) && isIndex(entry.layer, info?.n_layers) &&
      (entry.mlp === true || isIndex(entry.head, info?.n_heads)) &&
      (entry.kind === undefined || ABLATION_KINDS.includes(entry.kind));
    if (!ok) repaired.push(`selection.ablations[${i}] ${describe(entry)}`);
    return ok;
  });
}

const isObject = (value) => value !== null && typeof value === "object" && !Array.isArray(value);
const isIndex = (value, limit) => Number.isSafeInteger(value) && value >= 0 && (!limit || value < limit);

function describe(value) {
  let text;
  try { text = JSON.stringify(value); } catch { text = undefined; }
  text = text ?? String(value);
  return text.length > 40 ? `${text.slice(0, 40)}…` : text;
}
