// Datasets uploaded in the Lens. A file picked in the probe, neuron or circuit form is checked and
// kept by Python (neuroscope.datasets.store_dataset: IndexedDB entries under "datasets/"), so
// after a reload it is still offered in both forms, as "stored:<name>"; the storage panel
// lists it with its size and removes it. A malformed line is refused with its line number
// and nothing is kept.

import { formatBytes, listEntries, STORAGE_CHANNEL } from "../worker/storage.js";
import { CIRCUIT_DATASETS, NEURON_DATASETS, PROBE_DATASETS, STORED_PREFIX } from "./state.js";

const PREFIX = "datasets/"; // as neuroscope.datasets.dataset_storage()
const UPLOAD = "from neuroscope import lens\nlens.upload_dataset(file_name, file_data)";

// A file name as a stored dataset may be called (neuroscope.datasets.STORED_NAME): letters,
// digits, ".", "_", "-" and spaces, at most 100 characters, the extension kept.
export function storedName(fileName) {
  const dot = fileName.lastIndexOf(".");
  const extension = dot > 0 ? fileName.slice(dot).toLowerCase() : "";
  const stem = (dot > 0 ? fileName.slice(0, dot) : fileName).replace(/[^A-Za-z0-9._ -]/g, "_")
    .replace(/^[^A-Za-z0-9]+/, "").slice(0, 100 - extension.length);
  return `${stem || "dataset"}${extension}`;
}

export class DatasetChoices {
  // app: the LensApp (run, message, state, root)
  constructor(app) {
    this.app = app;
    this.stored = []; // [{choice, name, bytes}]
    try {
      this.channel = new BroadcastChannel(STORAGE_CHANNEL); // removals in the storage panel
      this.channel.onmessage = () => this.refresh().catch((error) => app.shown(error));
    } catch {
      this.channel = null;
    }
  }

  choices() { return this.stored.map((entry) => entry.choice); }
  probe() { return [...PROBE_DATASETS, ...this.choices()]; }
  neuron() { return [...NEURON_DATASETS, ...this.choices()]; }
  circuit() { return [...CIRCUIT_DATASETS, ...this.choices()]; }

  // The stored datasets, read from IndexedDB, and the two forms' lists drawn again.
  async refresh() {
    const entries = (await listEntries()).filter((entry) => entry.key.startsWith(PREFIX));
    this.stored = entries.map((entry) => ({ choice: STORED_PREFIX + entry.key.slice(PREFIX.length),
      name: entry.key.slice(PREFIX.length), bytes: entry.size }));
    this.fill();
  }

  fill() {
    const { probeDataset, neuronDataset, circuitDataset } = this.app.state.selection;
    fillSelect(this.app.root.querySelector("#probe-dataset"), PROBE_DATASETS, this.stored, probeDataset);
    fillSelect(this.app.root.querySelector("#neuron-dataset"), NEURON_DATASETS, this.stored, neuronDataset);
    fillSelect(this.app.root.querySelector("#circuit-dataset"), CIRCUIT_DATASETS, this.stored, circuitDataset);
  }

  // Checks and keeps `file`, selects it in the form's `field` ("probeDataset",
  // "neuronDataset" or "circuitDataset") and returns its entry {choice, name, examples, bytes, fields}.
  async upload(file, field) {
    const name = storedName(file.name);
    const data = new Uint8Array(await file.arrayBuffer());
    const entry = await this.app.run("datasets", UPLOAD, { file_name: name, file_data: data });
    this.app.state.selection[field] = entry.choice;
    await this.refresh();
    this.app.message(`${entry.name}: ${entry.examples} examples (${formatBytes(entry.bytes)}, fields ` +
      `${entry.fields.join(", ")}) kept in this browser.`, "info");
    return entry;
  }
}

function fillSelect(select, builtins, stored, selected) {
  if (!select) return;
  const label = (name) => (name === "sample" ? "sample texts" : name);
  const options = builtins.map((name) => new Option(label(name), name));
  if (stored.length) {
    const group = document.createElement("optgroup");
    group.label = "Uploaded";
    group.append(...stored.map((entry) => new Option(`${entry.name} (${formatBytes(entry.bytes)})`, entry.choice)));
    options.push(group);
  }
  select.replaceChildren(...options);
  if (selected !== undefined) select.value = selected;
}
