// The notebook: markdown, code and view cells. Code runs in the worker (Python in the
// session namespace, where `model` is the Lens's model); a cell shows its printed output,
// its value, or the error with its traceback; a view cell draws its value with one of the
// Lens views. Cells that came from a share link or a file are shown but never run until
// the user clicks Run. Export/import as .ipynb (nbformat 4; view cells are code cells
// with metadata.neuroscope.view). A cell whose value is a neuroscope.display value (what
// neuroscope.show(), neuroscope.inspect() and the visualizers return) draws it with its views.

import { drawParts, isDisplay } from "./display.js";
import { render } from "./render.js";
import * as ablation from "./views/ablation.js";
import * as activations from "./views/activations.js";
import * as attention from "./views/attention.js";
import * as attribution from "./views/attribution.js";
import * as circuit from "./views/circuit.js";
import * as logit_lens from "./views/logit_lens.js";
import * as neurons from "./views/neurons.js";
import * as patching from "./views/patching.js";
import * as probes from "./views/probes.js";
import * as tensor from "./views/tensor.js";
import * as tokens from "./views/tokens.js";

const DISPLAY_VIEWS = { ablation, activations, attention, attribution, circuit, logit_lens, neurons, patching, probes,
  tensor, tokens };

const VIEWS = ["tokens", "attention", "logit_lens", "activations", "ablation", "patching", "attribution", "circuit",
  "neurons", "probes"];

export class Notebook {
  // host: {runCell(source) -> Promise<{stdout, value} | {stdout, error}>,
  //        drawView(el, view, value), onChange(cells), interrupt?(), restart?()}
  constructor(root, host) {
    this.root = root;
    this.host = host;
    this.list = document.createElement("div");
    this.list.className = "cells";
    const bar = document.createElement("div");
    bar.className = "notebook-bar";
    bar.append(
      button("+ Code", () => this.addCell({ type: "code", source: "" })),
      button("+ Text", () => this.addCell({ type: "markdown", source: "" })),
      button("+ View", () => this.addCell({ type: "view", view: "attention",
        source: "from neuroscope import lens\nlens.analyze(model, \"The capital of France is\")" })),
      button("Run all", () => this.runAll()),
      ...(host.interrupt ? [button("Interrupt", () => host.interrupt())] : []),
      ...(host.restart ? [button("Restart", () => host.restart())] : []),
      button("Export .ipynb", () => this.download()),
      fileButton("Import .ipynb", ".ipynb,application/json", (file) => this.importFile(file)),
    );
    this.status = document.createElement("span");
    this.status.className = "notebook-status";
    bar.append(this.status);
    root.replaceChildren(bar, this.list);
    this.items = [];
  }

  cells() {
    return this.items.map(({ cell }) => ({ ...cell }));
  }

  // fromLink: code cells wait for a click (they came from someone else).
  setCells(cells, { fromLink = false } = {}) {
    this.items = [];
    this.list.replaceChildren();
    for (const cell of cells) this.addCell(cell, { pending: fromLink && cell.type !== "markdown", quiet: true });
    this.changed();
  }

  addCell(cell, { pending = false, quiet = false } = {}) {
    const item = { cell: { type: cell.type, source: cell.source ?? "", ...(cell.view ? { view: cell.view } : {}) } };
    item.el = this.cellElement(item, pending);
    this.items.push(item);
    this.list.append(item.el);
    if (!quiet) this.changed();
    return item;
  }

  cellElement(item, pending) {
    const { cell } = item;
    const el = document.createElement("section");
    el.className = `cell ${cell.type}`;
    el.dataset.type = cell.type;
    const editor = document.createElement("textarea");
    editor.value = cell.source;
    editor.spellcheck = false;
    editor.rows = Math.max(2, cell.source.split("\n").length);
    editor.addEventListener("input", () => { cell.source = editor.value; this.changed(); });
    editor.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && event.shiftKey) { event.preventDefault(); this.runItem(item); }
    });
    const tools = document.createElement("div");
    tools.className = "cell-tools";
    if (cell.type === "view") {
      const choose = document.createElement("select");
      choose.append(...VIEWS.map((view) => new Option(view, view, false, view === cell.view)));
      choose.addEventListener("change", () => { cell.view = choose.value; this.changed(); });
      tools.append(choose);
    }
    const run = button(cell.type === "markdown" ? "Render" : "Run", () => this.runItem(item));
    run.className = "run";
    tools.append(run, button("↑", () => this.move(item, -1)), button("↓", () => this.move(item, 1)),
      button("✕", () => this.remove(item)));
    const output = document.createElement("div");
    output.className = "output";
    if (pending) {
      output.className = "output pending";
      output.textContent = "From a shared link: not run. Read it, then click Run.";
    }
    el.append(tools, editor, output);
    item.editor = editor;
    item.output = output;
    if (cell.type === "markdown" && !pending) this.renderMarkdown(item);
    return el;
  }

  async runItem(item) {
    const { cell, output } = item;
    output.className = "output";
    if (cell.type === "markdown") { this.renderMarkdown(item); return; }
    output.textContent = "Running…";
    item.el.classList.add("running");
    this.status.textContent = "Running…";
    try {
      const result = await this.host.runCell(cell.source);
      output.replaceChildren();
      if (result.stdout) output.append(pre(result.stdout, "stdout"));
      if (result.error) {
        output.append(pre(result.error.traceback || `${result.error.pyType}: ${result.error.message}`, "error"));
      } else if (isDisplay(result.value)) {
        output.append(displayed(result.value));
      } else if (cell.type === "view") {
        const view = document.createElement("div");
        view.className = "view";
        output.append(view);
        this.host.drawView(view, cell.view, result.value);
      } else if (result.value !== null && result.value !== undefined) {
        output.append(pre(formatValue(result.value), "value"));
      }
    } catch (error) {
      output.replaceChildren(pre(error.traceback || `${error.name}: ${error.message}`, "error"));
    } finally {
      item.el.classList.remove("running");
      this.status.textContent = "";
    }
  }

  async runAll() {
    for (const item of [...this.items]) await this.runItem(item);
  }

  renderMarkdown(item) {
    item.output.replaceChildren(markdown(item.cell.source));
  }

  move(item, step) {
    const index = this.items.indexOf(item);
    const target = index + step;
    if (target < 0 || target >= this.items.length) return;
    this.items.splice(index, 1);
    this.items.splice(target, 0, item);
    this.list.replaceChildren(...this.items.map((entry) => entry.el));
    this.changed();
  }

  remove(item) {
    this.items.splice(this.items.indexOf(item), 1);
    item.el.remove();
    this.changed();
  }

  changed() {
    this.host.onChange?.(this.cells());
  }

  // -- .ipynb ----------------------------------------------------------------------
  // The first cell loads the Lens's model from its source with its content hash checked, and
  // the extension whose %%neuroscope_view magic draws a view cell in Jupyter; the format is
  // py/neuroscope/notebook/ipynb.py's, so a notebook goes both ways unchanged.
  // model: {source, content_hash?} (host.modelSource()).
  toIpynb(model = { source: "demo" }) {
    const info = { source: model.source, ...(model.content_hash ? { content_hash: model.content_hash } : {}) };
    const load = { cell_type: "code", execution_count: null, outputs: [], id: "load-model",
      metadata: { neuroscope: { role: LOAD_ROLE, model: info } }, source: loadModelSource(info) };
    return {
      nbformat: 4, nbformat_minor: 5,
      metadata: { kernelspec: { name: "python3", display_name: "Python 3", language: "python" },
        language_info: { name: "python" }, neuroscope: { version: 1, model: info } },
      cells: [load, ...this.cells().map((cell, index) => {
        const common = { id: `cell-${index}`, source: cell.source };
        if (cell.type === "markdown") return { cell_type: "markdown", metadata: {}, ...common };
        if (cell.type !== "view") return { cell_type: "code", execution_count: null, outputs: [], metadata: {}, ...common };
        return { cell_type: "code", execution_count: null, outputs: [], metadata: { neuroscope: { view: cell.view } },
          ...common, source: `${VIEW_MAGIC} ${cell.view}\n${cell.source}` };
      })],
    };
  }

  async download() {
    let model;
    try {
      model = await (this.host.modelSource?.() ?? { source: "demo" });
    } catch (error) {
      this.status.textContent = `Cannot export: ${error.message}`;
      return;
    }
    const blob = new Blob([JSON.stringify(this.toIpynb(model), null, 1)], { type: "application/x-ipynb+json" });
    const link = Object.assign(document.createElement("a"), { href: URL.createObjectURL(blob),
      download: "neuroscope.ipynb" });
    link.click();
    setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
  }

  async importFile(file) {
    try {
      this.setCells(cellsFromIpynb(JSON.parse(await file.text())), { fromLink: true });
    } catch (error) {
      this.status.textContent = `Cannot import ${file.name}: ${error.message}`;
    }
  }
}

export function cellsFromIpynb(notebook) {
  if (!notebook || !Array.isArray(notebook.cells)) {
    throw new Error("not a notebook: expected a JSON object with a \"cells\" list (nbformat 4)");
  }
  const kept = notebook.cells.filter((cell) => (cell.cell_type === "markdown" || cell.cell_type === "code") &&
    cell.metadata?.neuroscope?.role !== LOAD_ROLE);
  return kept.map((cell) => {
    const source = Array.isArray(cell.source) ? cell.source.join("") : String(cell.source ?? "");
    if (cell.cell_type === "markdown") return { type: "markdown", source };
    const view = cell.metadata?.neuroscope?.view;
    if (!view) return { type: "code", source };
    const [first, ...rest] = source.split("\n");
    return { type: "view", view, source: first.split(/\s+/)[0] === VIEW_MAGIC ? rest.join("\n") : source };
  });
}

const LOAD_ROLE = "load-model";
const VIEW_MAGIC = "%%neuroscope_view";

function loadModelSource({ source, content_hash: hash }) {
  return "# The notebook's model, loaded from its source; the content hash checks the weights.\n" +
    "%load_ext neuroscope.notebook\nfrom neuroscope.notebook import load_model\n" +
    `model = load_model(${JSON.stringify(source)}${hash ? `, content_hash=${JSON.stringify(hash)}` : ""})`;
}

// A neuroscope.display value: its title and text, then each part drawn with its view.
function displayed(value) {
  const el = document.createElement("div");
  el.className = "view display";
  if (value.title) el.append(pre(value.title, "display-title"));
  if (value.text) el.append(pre(value.text, "value"));
  drawParts(el, value.parts, DISPLAY_VIEWS, render);
  return el;
}

function formatValue(value) {
  if (typeof value === "string") return value;
  return JSON.stringify(value, (key, item) => (ArrayBuffer.isView(item)
    ? `${item.constructor.name}(${item.length})` : item), 1);
}

function pre(text, className) {
  const el = document.createElement("pre");
  el.className = className;
  el.textContent = text;
  return el;
}

function button(label, onClick) {
  const el = document.createElement("button");
  el.type = "button";
  el.textContent = label;
  el.addEventListener("click", onClick);
  return el;
}

function fileButton(label, accept, onFile) {
  const wrapper = document.createElement("label");
  wrapper.className = "file-button";
  const input = Object.assign(document.createElement("input"), { type: "file", accept, hidden: true });
  input.addEventListener("change", () => input.files[0] && onFile(input.files[0]));
  wrapper.append(label, input);
  return wrapper;
}

// A small, safe subset of Markdown (headings, paragraphs, lists, `code`, **bold**, *em*),
// built as DOM nodes: no HTML from a cell is ever parsed.
function markdown(source) {
  const root = document.createElement("div");
  root.className = "markdown";
  let list = null;
  for (const line of source.split("\n")) {
    const heading = /^(#{1,4})\s+(.*)$/.exec(line);
    const bullet = /^\s*[-*]\s+(.*)$/.exec(line);
    if (bullet) {
      list ??= root.appendChild(document.createElement("ul"));
      list.appendChild(inline(document.createElement("li"), bullet[1]));
      continue;
    }
    list = null;
    if (heading) root.appendChild(inline(document.createElement(`h${heading[1].length + 1}`), heading[2]));
    else if (line.trim()) root.appendChild(inline(document.createElement("p"), line));
  }
  return root;
}

function inline(el, text) {
  for (const part of text.split(/(`[^`]+`|\*\*[^*]+\*\*|\*[^*]+\*)/)) {
    if (!part) continue;
    if (part.startsWith("`")) el.appendChild(document.createElement("code")).textContent = part.slice(1, -1);
    else if (part.startsWith("**")) el.appendChild(document.createElement("strong")).textContent = part.slice(2, -2);
    else if (part.startsWith("*") && part.length > 2) el.appendChild(document.createElement("em")).textContent = part.slice(1, -1);
    else el.appendChild(document.createTextNode(part));
  }
  return el;
}
