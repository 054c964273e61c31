// The model picker: the built-in demo model, a hub name ("gpt2": the hub's files, when
// the browser has network), a URL of a Hugging Face folder, or local files (config.json,
// model.safetensors, tokenizer.json) picked as files or a folder, or dropped on the panel.
// Downloads report progress and are cached in IndexedDB by the worker (worker/weights.js).

const NEEDED = ["config.json", "tokenizer.json"];

export class ModelPanel {
  // host: {load({ref} | {files}) -> Promise<info | null>}
  constructor(root, host) {
    this.root = root;
    this.host = host;
    root.innerHTML = "";
    const form = document.createElement("form");
    form.id = "model-form";
    const kind = document.createElement("select");
    kind.id = "model-kind";
    kind.append(new Option("Demo model (built in)", "demo"), new Option("Hub name", "hub"), new Option("URL", "url"),
      new Option("Local files…", "local"));
    const name = Object.assign(document.createElement("input"), { id: "model-ref", placeholder: "gpt2",
      hidden: true, spellcheck: false });
    const files = Object.assign(document.createElement("input"), { id: "model-files", type: "file", multiple: true,
      hidden: true });
    const folder = Object.assign(document.createElement("input"), { id: "model-folder", type: "file", hidden: true });
    folder.webkitdirectory = true;
    const load = Object.assign(document.createElement("button"), { type: "submit", textContent: "Load" });
    this.status = Object.assign(document.createElement("span"), { id: "model-status" });
    form.append(kind, name, files, folder, load, this.status);
    // The Python of the last load, as every Lens action shows its own.
    this.code = document.createElement("details");
    this.code.id = "model-code";
    this.code.append(Object.assign(document.createElement("summary"), { textContent: "Python" }),
      document.createElement("code"));
    this.code.hidden = true;
    root.append(form, this.code);

    kind.addEventListener("change", () => {
      name.hidden = !["hub", "url"].includes(kind.value);
      name.placeholder = kind.value === "url" ? "https://…/folder/" : "gpt2";
      files.hidden = folder.hidden = kind.value !== "local";
    });
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      if (kind.value === "demo") this.host.load({ ref: "demo" });
      else if (kind.value === "local") this.loadFiles([...files.files, ...folder.files]);
      else if (!name.value.trim()) this.setStatus("Type a hub name or a URL first.", "error");
      else this.host.load({ ref: name.value.trim() });
    });
    root.addEventListener("dragover", (event) => { event.preventDefault(); root.classList.add("drop"); });
    root.addEventListener("dragleave", () => root.classList.remove("drop"));
    root.addEventListener("drop", (event) => {
      event.preventDefault();
      root.classList.remove("drop");
      this.loadFiles([...event.dataTransfer.files]);
    });
  }

  loadFiles(files) {
    const names = files.map((file) => file.name);
    const missing = NEEDED.filter((needed) => !names.includes(needed));
    if (!names.some((n) => n.endsWith(".safetensors"))) missing.push("model.safetensors");
    if (missing.length) {
      this.setStatus(`Missing ${missing.join(", ")} among the files given (${names.join(", ") || "none"}); ` +
        "a model folder holds config.json, model.safetensors and tokenizer.json.", "error");
      return null;
    }
    return this.host.load({ files: files.filter((file) => /\.(json|safetensors)$/.test(file.name)) });
  }

  showCode(code) {
    this.code.querySelector("code").textContent = code;
    this.code.hidden = !code;
  }

  setStatus(text, level = "info") {
    this.status.textContent = text;
    this.status.className = level;
  }
}
