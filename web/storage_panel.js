// The Storage panel: what NeuroScope keeps in this browser, with sizes; Remove (one entry or
// every entry of a kind); persistent storage (navigator.storage.persist()); how much is in use
// against the quota the browser estimates, and the quota it actually enforced the last time
// it refused a write (worker/storage.js reports that on its BroadcastChannel).
//
// mountStoragePanel(element, {message}) -> {ready, refresh(), element}
//   element   where the panel draws (text only: every value goes in with textContent)
//   message   optional (text, level) -> shows removals and failures (the Lens's message())
//   ready     a Promise of the first drawing; refresh() draws again (also on every change
//             announced by a worker, and when an enclosing <details> opens)
// Rows carry data-key and data-bytes; the panel carries data-persisted ("true" / "false").
//
// What is listed: the IndexedDB entries of worker/storage.js grouped by key prefix (KINDS),
// and this origin's localStorage items whose names start with "neuroscope".

import { WEIGHTS_PREFIX } from "../worker/weights.js";
import {
  describeRefusal, estimate, formatBytes, listEntries, liveSpillSessions, removeEntries, SPILL_PREFIX,
  STORAGE_CHANNEL,
} from "../worker/storage.js";

// One entry per kind of stored thing; a key belongs to the first kind whose prefix it has.
// "activations/" is where cache.save(key) writes (py/neuroscope/storage.py default_storage).
export const KINDS = [
  { prefix: WEIGHTS_PREFIX, title: "Model weights (downloaded files)" },
  { prefix: "activations/", title: "Activation caches (cache.save)" },
  { prefix: SPILL_PREFIX, title: "Spilled tensors (ActivationCache byte budgets)" },
  { prefix: "datasets/", title: "Datasets" },
  { prefix: "notebooks/", title: "Notebooks and Lens state" },
  { prefix: "", title: "Other entries" },
];
const LOCAL_KIND = { prefix: "localStorage:", title: "Saved in localStorage (notebook, Lens state)" };
const LOCAL_NAME = /^neuroscope/i;
const REFUSAL_ITEM = "neuroscope.storage.refused"; // the latest refusal, kept across reloads
const SHOWN_PER_KIND = 50;

const mounted = new WeakMap();

export function mountStoragePanel(element, { message = null } = {}) {
  if (!mounted.has(element)) mounted.set(element, new StoragePanel(element, message));
  return mounted.get(element);
}

class StoragePanel {
  constructor(element, message) {
    this.element = element;
    this.message = message ?? ((text) => { this.status.textContent = text; });
    this.refusal = readRefusal();
    this.running = null;
    this.again = false;
    element.classList.add("storage-panel");
    element.replaceChildren();
    this.summary = add(element, "p", "storage-usage");
    this.persistLine = add(element, "p", "storage-persist");
    this.refusedLine = add(element, "p", "storage-refused");
    this.table = add(element, "table", "storage-entries");
    const tools = add(element, "p", "storage-tools");
    button(tools, "Refresh", () => this.refresh(), "storage-refresh");
    this.status = add(element, "span", "storage-status");
    try {
      this.channel = new BroadcastChannel(STORAGE_CHANNEL);
      this.channel.onmessage = ({ data }) => {
        if (data?.type === "refused") this.recordRefusal(data.report);
        this.refresh();
      };
    } catch {
      this.channel = null; // no live updates: Refresh and re-opening still list
    }
    element.closest("details")?.addEventListener("toggle", (event) => {
      if (event.target.open) this.refresh();
    });
    this.ready = this.refresh();
  }

  // Draws again; calls made while one runs are coalesced into one more.
  refresh() {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = this.draw().catch((error) => {
      this.summary.textContent = `The stored data cannot be listed: ${error?.name ?? "Error"}: ${error?.message ?? error}`;
    }).finally(() => {
      this.running = null;
      if (this.again) {
        this.again = false;
        this.refresh();
      }
    });
    return this.running;
  }

  async draw() {
    const [entries, live, usage, persisted] = await Promise.all([
      listEntries(), liveSpillSessions().catch(() => new Set()), usageDetails(), isPersisted()]);
    const groups = groupEntries(entries, live);
    this.drawSummary(entries, usage);
    this.drawPersist(persisted);
    this.drawRefusal();
    this.drawTable(groups);
    this.element.dataset.drawn = String(Number(this.element.dataset.drawn ?? 0) + 1);
  }

  drawSummary(entries, { usage, quota, details }) {
    const ours = entries.reduce((sum, entry) => sum + entry.size, 0);
    const parts = Object.entries(details ?? {}).filter(([, bytes]) => bytes > 0)
      .map(([where, bytes]) => `${USAGE_NAMES[where] ?? where} ${formatBytes(bytes)}`);
    const allowed = quota ? `of the ${formatBytes(quota)} this browser estimates it allows` : "(no quota estimate)";
    this.summary.textContent = `In use: ${formatBytes(usage)}${parts.length ? ` (${parts.join(", ")})` : ""} ` +
      `${allowed} (navigator.storage.estimate()); NeuroScope's stored entries: ${formatBytes(ours)}.`;
  }

  drawPersist(persisted) {
    this.element.dataset.persisted = String(persisted);
    this.persistLine.replaceChildren();
    const text = add(this.persistLine, "span");
    if (persisted) {
      text.textContent = "Persistent storage: granted (the browser will not evict this data to free space).";
      return;
    }
    text.textContent = "Persistent storage: not granted (the browser may evict this data when space runs low). ";
    button(this.persistLine, "Keep data persistent", async () => {
      const granted = await navigator.storage?.persist?.().catch(() => false);
      this.message(granted ? "Persistent storage was granted." : "The browser declined persistent storage " +
        "(Chromium grants it to sites that are installed, bookmarked or often used).", granted ? "info" : "warn");
      await this.refresh();
    }, "storage-persist-button");
  }

  drawRefusal() {
    this.refusedLine.hidden = !this.refusal;
    if (!this.refusal) return;
    const { key, needed, at } = this.refusal;
    const sentence = describeRefusal(this.refusal);
    this.refusedLine.textContent = `${sentence[0].toUpperCase()}${sentence.slice(1)}, when storing ${key} ` +
      `(${formatBytes(needed)} more) on ${new Date(at).toLocaleString()}.`;
  }

  recordRefusal(report) {
    this.refusal = report;
    try {
      localStorage.setItem(REFUSAL_ITEM, JSON.stringify(report));
    } catch {
      // kept for this page only
    }
  }

  drawTable(groups) {
    this.table.replaceChildren();
    if (!groups.length) {
      add(add(add(this.table, "tbody"), "tr"), "td").textContent = "NeuroScope stores nothing in this browser.";
      return;
    }
    for (const { kind, items } of groups) {
      const body = add(this.table, "tbody");
      body.dataset.kind = kind.prefix;
      const head = add(body, "tr", "storage-kind");
      const total = items.reduce((sum, item) => sum + item.size, 0);
      add(head, "th").textContent = `${kind.title}: ${items.length}`;
      add(head, "th").textContent = formatBytes(total);
      add(head, "th");
      const removable = items.filter((item) => !item.inUse);
      const all = add(head, "th");
      if (removable.length) {
        const label = removable.length === items.length ? "Remove all" : `Remove ${removable.length} unused`;
        button(all, label, () => this.remove(removable, `${kind.title}`), "storage-remove-all");
      }
      for (const item of items.slice(0, SHOWN_PER_KIND)) this.drawRow(body, item);
      if (items.length > SHOWN_PER_KIND) {
        add(add(body, "tr"), "td").textContent = `… and ${items.length - SHOWN_PER_KIND} more`;
      }
    }
  }

  drawRow(body, item) {
    const row = add(body, "tr", "storage-entry");
    row.dataset.key = item.key;
    row.dataset.bytes = String(item.size);
    const name = add(row, "td", "storage-name");
    name.textContent = item.label;
    name.title = item.key;
    const size = add(row, "td", "storage-size");
    size.textContent = formatBytes(item.size);
    size.title = `${item.size} bytes`;
    add(row, "td", "storage-date").textContent = item.storedAt ? new Date(item.storedAt).toLocaleString() : "";
    const cell = add(row, "td");
    const remove = button(cell, "Remove", () => this.remove([item], item.label), "storage-remove");
    if (item.inUse) {
      remove.disabled = true;
      remove.title = "in use by a running Python worker; removed when that worker ends";
    }
  }

  async remove(items, what) {
    try {
      const local = items.filter((item) => item.local);
      for (const item of local) localStorage.removeItem(item.local);
      const freed = await removeEntries(items.filter((item) => !item.local).map((item) => item.key));
      const bytes = freed + local.reduce((sum, item) => sum + item.size, 0);
      this.message(`Removed ${items.length === 1 ? what : `${items.length} entries (${what})`}: ` +
        `${formatBytes(bytes)} freed.`, "info");
    } catch (error) {
      this.message(`Could not remove ${what}: ${error?.name ?? "Error"}: ${error?.message ?? error}`, "error");
    }
    await this.refresh();
  }
}

const USAGE_NAMES = { indexedDB: "IndexedDB", caches: "offline copy of the app", serviceWorkerRegistrations:
  "service worker", fileSystem: "files" };

// Entries (and localStorage items) grouped by KINDS, in that order, only the kinds present.
function groupEntries(entries, liveSessions) {
  const groups = new Map();
  const put = (kind, item) => {
    if (!groups.has(kind)) groups.set(kind, []);
    groups.get(kind).push(item);
  };
  for (const entry of entries) {
    const kind = KINDS.find((candidate) => entry.key.startsWith(candidate.prefix));
    const label = entry.key.slice(kind.prefix.length);
    const inUse = kind.prefix === SPILL_PREFIX && liveSessions.has(label.split("/")[0]);
    put(kind, { ...entry, label: kind.prefix === WEIGHTS_PREFIX ? pageRelative(label) : label, inUse });
  }
  for (const name of localNames()) {
    const value = localStorage.getItem(name) ?? "";
    // localStorage holds UTF-16: two bytes per code unit, names included.
    put(LOCAL_KIND, { key: LOCAL_KIND.prefix + name, label: name, size: 2 * (name.length + value.length),
      local: name, inUse: false });
  }
  return [...KINDS, LOCAL_KIND].filter((kind) => groups.has(kind)).map((kind) => ({ kind, items: groups.get(kind) }));
}

function localNames() {
  try {
    return Object.keys(localStorage).filter((name) => LOCAL_NAME.test(name) && name !== REFUSAL_ITEM).sort();
  } catch {
    return [];
  }
}

function readRefusal() {
  try {
    return JSON.parse(localStorage.getItem(REFUSAL_ITEM) ?? "null");
  } catch {
    return null;
  }
}

function pageRelative(url) {
  try {
    const parsed = new URL(url);
    return parsed.origin === location.origin ? parsed.pathname : url;
  } catch {
    return url;
  }
}

async function usageDetails() {
  const { usage, quota } = await estimate();
  let details = null;
  try {
    details = (await navigator.storage.estimate()).usageDetails ?? null; // Chromium only
  } catch {
    details = null;
  }
  return { usage, quota, details };
}

async function isPersisted() {
  try {
    return Boolean(await navigator.storage.persisted());
  } catch {
    return false;
  }
}

function add(parent, tag, className = "") {
  const child = document.createElement(tag);
  if (className) child.className = className;
  parent.append(child);
  return child;
}

function button(parent, label, onClick, className) {
  const element = add(parent, "button", className);
  element.type = "button";
  element.textContent = label;
  element.addEventListener("click", () => {
    element.disabled = true;
    Promise.resolve(onClick()).finally(() => { element.disabled = false; });
  });
  return element;
}
