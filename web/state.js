// The Lens's whole state: what a share link carries and what every view is drawn from.
//
// {v: 1,
//  model: {ref: "demo" | URL | hub name | "local:<names>", sha256?: string},
//  prompt, corrupted, answer, wrong      strings (the clean/corrupted pair and the two
//                                        answer tokens of the logit difference)
//  view: one of VIEWS,
//  selection: {token, layer, head, scoreKind, component, neuronLayer, neuron,
//              ablations: [{layer, head, kind} | {layer, mlp: true, kind}], ablationKind},
//  interventions: [JSON specs of neuroscope.interventions, as the last ablation ran them],
//  notebook: [{type: "markdown" | "code" | "view", source, view?}]}

export const VIEWS = ["tokens", "attention", "logit_lens", "activations", "ablation", "patching", "neurons",
  "notebook"];

export const VIEW_TITLES = {
  tokens: "Tokens", attention: "Attention", logit_lens: "Logit lens", activations: "Activations",
  ablation: "Ablation", patching: "Patching", neurons: "Neurons", notebook: "Notebook",
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
      neuronLayer: 0, neuron: 0, ablations: [], ablationKind: "zero",
    },
    interventions: [],
    notebook: [
      { type: "markdown", source: "# Notes\nCells run Python in the worker; `model` is the loaded model." },
      { type: "code", source: "model.to_str_tokens(\"The capital of France is\")" },
    ],
  };
}

// A state from a link or file, completed with defaults for anything it leaves out.
export function completeState(partial) {
  const base = defaultState();
  const state = { ...base, ...partial };
  state.model = { ...base.model, ...(partial.model ?? {}) };
  state.selection = { ...base.selection, ...(partial.selection ?? {}) };
  if (!VIEWS.includes(state.view)) state.view = base.view;
  state.notebook = Array.isArray(partial.notebook) ? partial.notebook : base.notebook;
  return state;
}
