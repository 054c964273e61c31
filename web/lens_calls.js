// The Python each Lens action runs in the worker: one function per action, returning
// {code}. `code` is what the view's "Python" box shows and what runs, so copying it into
// the notebook reproduces the view; what the user typed enters it as JSON string literals,
// which are also valid Python literals. (Uploaded file bytes go in as globals instead.)

const q = (value) => JSON.stringify(value); // a Python literal for strings, numbers, lists

export function loadModel(ref) {
  return {
    code: `from neuroscope import TransformerModel, lens
model = TransformerModel.from_huggingface(${q(ref)})
{**lens.model_info(model), "family": model.cfg.family, "source": str(model.source)}`,
  };
}

// Files picked or dropped: written into Pyodide's file system, then loaded as a folder.
export function loadFiles(names) {
  return {
    code: `import os
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
{**lens.model_info(model), "family": model.cfg.family, "source": ${q(names.join(", "))}}`,
  };
}

export function analyze(prompt) {
  return { code: `from neuroscope import lens\nlens.analyze(model, ${q(prompt)})` };
}

export function ablate(state) {
  const { prompt, answer, wrong } = state;
  const ablations = state.selection.ablations ?? [];
  const reference = state.selection.ablationKind === "resample" ? state.corrupted : null;
  return {
    code: `from neuroscope import lens\nlens.ablate(model, ${q(prompt)}, ${pyValue(ablations)}, ` +
      `answer=${pyValue(answer)}, wrong=${pyValue(wrong)}, reference=${pyValue(reference)})`,
  };
}

export function patch(state) {
  return {
    code: `from neuroscope import lens\nlens.patch(model, ${q(state.prompt)}, ${q(state.corrupted)}, ` +
      `${q(state.answer)}, ${q(state.wrong)})`,
  };
}

export function neurons(layer, neuron) {
  return {
    code: `from neuroscope import lens\nlens.neurons(model, ${layer}, ${neuron}, lens.sample_texts(model))`,
  };
}

export function demoPrompts() {
  return { code: "from neuroscope import lens\nlens.demo_prompts(model)" };
}

// JSON -> Python literal (true/false/null differ).
export function pyValue(value) {
  if (value === null || value === undefined) return "None";
  if (value === true) return "True";
  if (value === false) return "False";
  if (Array.isArray(value)) return `[${value.map(pyValue).join(", ")}]`;
  if (typeof value === "object") {
    return `{${Object.entries(value).map(([key, item]) => `${q(key)}: ${pyValue(item)}`).join(", ")}}`;
  }
  return q(value);
}
