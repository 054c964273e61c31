// The Lens's session: opening it at start-up (a share link in the URL fragment, this
// profile's saved session, or the defaults), opening a state from a link or a file, saving
// it as it changes (./session_store.js), "Restore" for the session a link replaced, and
// Share (a link, or a file when the analysis is too large for one; ./share.js). Every
// function takes the LensApp (./app.js), whose methods of the same names call them.

import { MAX_LINK_LENGTH, ShareLinkError, readStateFile, shareURL, stateFromLocation, validateState } from "./share.js";
import { differs, keepPrevious, previousSessions, readSession, setPrevious, writeSession } from "./session_store.js";
import { completeState, defaultState } from "./state.js";

const $ = (selector, root = document) => root.querySelector(selector);

// The input fields saved with the session as typed (drafts not yet run).
export const DRAFT_FIELDS = ["prompt", "corrupted", "answer", "wrong"];

export async function start(app) {
  let fromLink = null;
  try {
    fromLink = await stateFromLocation(location);
  } catch (error) {
    app.message(`${error instanceof ShareLinkError ? "This share link cannot be opened" : "Error"}: ` +
      `${error.message}. The app opened with its defaults instead.`, "error");
  }
  // This profile's own session (saved as it changed) comes back; a link opens on top of
  // it, and the session it replaced on screen is kept for "Restore".
  const { entry: saved, problem } = readSession();
  if (problem) app.message(`${problem}; this session starts from the defaults and will replace it.`, "warn");
  if (fromLink) {
    // From here on the session is saved as it changes; a reload restores it (with the
    // user's edits) instead of opening the link over them again.
    history.replaceState(null, "", location.pathname + location.search);
    if (saved && differs(saved.state, fromLink)) {
      keepPrevious(saved);
      app.offerRestore();
    }
    await app.openState(fromLink);
  } else if (saved) {
    await app.openState(saved.state, { fromLink: false, drafts: saved.drafts });
  } else {
    await app.openState(null);
  }
}

// Opens a state (null: the defaults): from a link or a file (`fromLink`: its code cells
// wait for a click) or this profile's saved session. Fields of the wrong type or out of
// the loaded model's range are repaired (one message lists them); the model is loaded.
export async function openState(app, state, { fromLink = true, drafts = null } = {}) {
  app.state = defaultState();
  if (state) {
    try {
      app.state = completeState(validateState(state));
    } catch (error) {
      fromLink = false;
      app.message(`This state cannot be opened: ${error.message}. The app opened with its defaults instead.`,
        "error");
    }
  }
  app.syncInputs();
  for (const [name, value] of Object.entries(drafts ?? {})) {
    const input = $(`#${name}`, app.root);
    if (input && typeof value === "string" && DRAFT_FIELDS.includes(name)) input.value = value;
  }
  app.notebook.setCells(app.state.notebook, { fromLink: Boolean(state) && fromLink });
  app.autosave = true;
  app.saveSoon();
  await app.neuroscope.ready;
  await app.datasets.refresh().catch((error) => app.message(`The uploaded datasets could not be listed: ` +
    `${error.message}`, "warn"));
  const ref = app.state.model.ref;
  if (ref.startsWith("local:")) {
    app.message(`This analysis was made with local files (${ref.slice(6)}); pick them under "Local files…" ` +
      "to reproduce it. The demo model is loaded meanwhile.", "warn");
    await app.loadModel({ ref: "demo" }, { keepState: true });
    return;
  }
  const site = fromLink ? otherSite(ref) : null;
  if (site && !globalThis.confirm(`This analysis loads its model from another site, ${site}:\n${ref}\n\n` +
    "That site learns of this visit and chooses the weights the analysis runs on. Load the model from " +
    "there? (Cancel loads the demo model instead.)")) {
    app.message(`The model of this analysis (${ref}) was not loaded: it is on another site (${site}). The demo ` +
      "model is loaded instead; pick URL in the model bar and enter that address to load it.", "warn");
    await app.loadModel({ ref: "demo" }, { keepState: true });
    return;
  }
  const info = await app.loadModel({ ref }, { keepState: true });
  if (!info && ref !== "demo") {
    app.message(`${ref} could not be loaded; the demo model is loaded instead.`, "warn");
    await app.loadModel({ ref: "demo" }, { keepState: true });
  }
}

// The site of a model reference that is a URL of another origin (null for "demo", a hub name,
// a path relative to the page, or this page's origin): a link or a file (untrusted) loads
// from there only when the viewer agrees.
function otherSite(ref) {
  let url;
  try {
    url = new URL(ref);
  } catch {
    return null; // not an absolute URL: resolved against this page (or the hub, by name)
  }
  if (url.origin === location.origin) return null;
  return url.origin === "null" ? `a ${url.protocol} address` : url.origin;
}

export function saveSoon(app) {
  if (!app.autosave) return;
  clearTimeout(app.saveTimer);
  app.saveTimer = setTimeout(() => app.saveNow(), 250);
}

export function saveNow(app) {
  if (!app.autosave) return;
  clearTimeout(app.saveTimer);
  const { repaired, ...state } = app.state;
  const drafts = Object.fromEntries(DRAFT_FIELDS.map((name) => [name, $(`#${name}`, app.root).value]));
  const problem = writeSession({ ...state, notebook: app.notebook.cells() }, drafts);
  if (problem && problem !== app.saveProblem) {
    app.message(`This session is not being saved in the browser (${problem}): share it or export the ` +
      "notebook to keep it.", "warn");
  }
  app.saveProblem = problem;
}

// A message with a button that brings back the session a link replaced on screen.
export function offerRestore(app) {
  const item = app.message("This link opened over your own session, which is kept:", "info");
  const button = Object.assign(document.createElement("button"), { id: "restore-session",
    textContent: "Restore my previous session" });
  button.addEventListener("click", () => {
    const [entry, ...rest] = previousSessions();
    if (!entry) return;
    app.saveNow();
    setPrevious([readSession().entry, ...rest].filter(Boolean)); // the link's session, restorable in turn
    item.remove();
    app.openState(entry.state, { fromLink: false, drafts: entry.drafts }).catch((error) => app.shown(error));
  });
  item.insertBefore(button, item.lastChild);
}

export async function share(app) {
  const state = { ...app.state, notebook: app.notebook.cells() };
  validateState(state);
  const result = await shareURL(state, location.href);
  const out = $("#share-result", app.root);
  if (result.url) {
    out.replaceChildren(Object.assign(document.createElement("input"), { value: result.url, readOnly: true,
      id: "share-url" }));
    navigator.clipboard?.writeText(result.url).catch(() => {});
  } else {
    const link = Object.assign(document.createElement("a"), { href: URL.createObjectURL(result.file),
      download: result.name, id: "share-file", textContent: `Download ${result.name}` });
    const why = Object.assign(document.createElement("span"), { className: "share-note",
      textContent: ` — this analysis is too large for a link (over ${MAX_LINK_LENGTH.toLocaleString("en")} ` +
        "characters, more than mail and chat reliably keep); send the file: it opens with Open…" });
    out.replaceChildren(link, why);
  }
  return result;
}

export async function openStateFile(app, file) {
  if (!file) return;
  try {
    await app.openState(await readStateFile(file));
  } catch (error) {
    app.message(`Cannot open ${file.name}: ${error.message}`, "error");
  }
}
