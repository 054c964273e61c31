// Durable bytes in IndexedDB: downloaded weights (./weights.js) and saved or spilled
// activations (py/neuroscope/storage.py, through `neuroscope_js.storage`).
//
// One database, two object stores:
//   entries  {key, version, size, parts: [byteLength, ...], meta, storedAt}    keyPath "key"
//   parts    [key, version, index] -> ArrayBuffer (at most PART_BYTES each)
//
// Writes are two-phase so that a failure (quota, a closed tab) never leaves a partial
// entry and never touches what was stored before: the parts of a NEW version are written
// first, in transactions of at most BATCH_BYTES (memory stays bounded for big files); then
// ONE transaction checks they are all there, points the entry at the new version and
// deletes the old version's parts. Readers only follow entries, so they see the old bytes
// or the new ones, never a mix. A failed write deletes its parts; parts orphaned by a crash
// are swept the first time the database is opened in a worker.
//
// Python's view (`neuroscope_js.storage`, each call a Promise; errors come back as values):
//   write(key, chunks)         chunks: Uint8Arrays or Python buffers (PyProxy, borrowed)
//                              -> {ok: true, size}
//                                 | {ok: false, quotaExceeded, message, size, usage, quota}
//   read(key)                  -> Uint8Array of the whole entry | null
//   remove(key)                -> true when something was deleted
//   keys(prefix)               -> [key, ...] (sorted)
//   usage()                    -> {usage, quota} (navigator.storage.estimate)
//   removePrefix(prefix)       deletes every entry whose key starts with prefix
//   spillPrefix()              -> "spill/<session>/": this worker's scratch space for spilled
//                                 tensors. The worker holds a Web Lock named after the session
//                                 while it lives; the first call deletes the spill entries of
//                                 sessions whose lock is gone (closed tabs, crashes).
//
// When the browser refuses a write (a quota error), the error says how much was stored at
// that moment (the entries, plus the parts of this write already in), next to the quota
// navigator.storage.estimate() claims: the two can differ widely (a fresh Chromium profile
// refused more at ~1.5 GB while estimating ~10.7 GB). The report is also posted on the
// BroadcastChannel STORAGE_CHANNEL as {type: "refused", report}; every stored or removed
// entry as {type: "changed", key}.
//
// The page may import this module too (web/storage_panel.js): nothing here needs a worker,
// and only a worker sweeps orphaned parts (a page must not race a worker's unfinished write).
// The page's view: listEntries(), removeEntries(keys), liveSpillSessions(), estimate(),
// formatBytes(n), describeRefusal(report).

const DATABASE = "neuroscope";
const VERSION = 1;
const PART_BYTES = 8 << 20;
const BATCH_BYTES = 64 << 20;

export const STORAGE_CHANNEL = "neuroscope-storage";
export const SPILL_PREFIX = "spill/";

let opening = null;
const inWorker = typeof WorkerGlobalScope !== "undefined" && globalThis instanceof WorkerGlobalScope;

export function openStore() {
  opening ??= openDatabase().then(async (db) => {
    if (inWorker) await sweepOrphans(db).catch(() => {}); // best effort: a sweep never blocks a session
    return new EntryStore(db);
  });
  return opening;
}

let channel = null;

function announce(message) {
  try {
    channel ??= new BroadcastChannel(STORAGE_CHANNEL);
    channel.postMessage(message);
  } catch {
    // no BroadcastChannel: pages refresh their listing when they are opened instead
  }
}

function openDatabase() {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DATABASE, VERSION);
    request.onupgradeneeded = () => {
      const db = request.result;
      if (!db.objectStoreNames.contains("entries")) db.createObjectStore("entries", { keyPath: "key" });
      if (!db.objectStoreNames.contains("parts")) db.createObjectStore("parts");
    };
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
    request.onblocked = () => reject(new Error("IndexedDB is blocked by another tab holding an older version"));
  });
}

const done = (request) => new Promise((resolve, reject) => {
  request.onsuccess = () => resolve(request.result);
  request.onerror = () => reject(request.error);
});

const finished = (tx) => new Promise((resolve, reject) => {
  tx.oncomplete = () => resolve();
  tx.onabort = () => reject(tx.error ?? new DOMException("transaction aborted", "AbortError"));
  tx.onerror = (event) => event.preventDefault(); // the abort reports it, once
});

const partRange = (key, version) => IDBKeyRange.bound([key, version, 0], [key, version, Infinity]);

async function sweepOrphans(db) {
  const tx = db.transaction(["entries", "parts"], "readwrite");
  const live = new Map((await done(tx.objectStore("entries").getAll())).map((e) => [e.key, e.version]));
  const parts = tx.objectStore("parts");
  const orphans = new Map();
  for (const [key, version] of await done(parts.getAllKeys())) {
    if (live.get(key) !== version) orphans.set(`${key}\u0000${version}`, [key, version]);
  }
  for (const [key, version] of orphans.values()) parts.delete(partRange(key, version));
  await finished(tx);
}

export class EntryStore {
  constructor(db) {
    this.db = db;
  }

  async entry(key) {
    const tx = this.db.transaction("entries", "readonly");
    return (await done(tx.objectStore("entries").get(key))) ?? null;
  }

  async setMeta(key, meta) {
    const tx = this.db.transaction("entries", "readwrite");
    const store = tx.objectStore("entries");
    const entry = await done(store.get(key));
    if (entry) store.put({ ...entry, meta });
    await finished(tx);
    return !!entry;
  }

  // chunks: an array of Uint8Array (any sizes); returns the new entry. Throws on failure,
  // after deleting what it wrote.
  async put(key, chunks, meta = {}) {
    const version = crypto.randomUUID();
    const parts = [];
    let needed = 0;
    try {
      let batch = [];
      let batchBytes = 0;
      needed = chunks.reduce((sum, chunk) => sum + chunk.byteLength, 0);
      for (const part of repartition(chunks)) {
        batch.push(part);
        batchBytes += part.byteLength;
        if (batchBytes >= BATCH_BYTES) {
          await this._writeParts(key, version, parts.length, batch);
          parts.push(...batch.map((p) => p.byteLength));
          batch = [];
          batchBytes = 0;
        }
      }
      if (batch.length) {
        await this._writeParts(key, version, parts.length, batch);
        parts.push(...batch.map((p) => p.byteLength));
      }
      const size = parts.reduce((a, b) => a + b, 0);
      const entry = { key, version, size, parts, meta, storedAt: Date.now() };
      await this._flip(entry);
      announce({ type: "changed", key });
      return entry;
    } catch (error) {
      await this._deleteParts(key, version).catch(() => {}); // the sweep gets them otherwise
      if (!isQuotaError(error)) throw error;
      const written = parts.reduce((a, b) => a + b, 0);
      throw await this._refused(error, { key, needed, written });
    }
  }

  // A quota error, restated with what was stored when the browser refused (see the header).
  async _refused(error, { key, needed, written }) {
    const entries = await this.list().catch(() => []);
    const { usage, quota } = await estimate();
    const stored = entries.reduce((sum, entry) => sum + entry.size, 0) + written;
    const report = { key, needed, stored, usage, quota, at: Date.now() };
    announce({ type: "refused", report });
    const refused = new Error(`${error.message}; ${describeRefusal(report)}`, { cause: error });
    refused.name = error.name || "QuotaExceededError";
    refused.report = report;
    return refused;
  }

  // Every entry, without its bytes: [{key, size, storedAt, meta}], sorted by key.
  async list() {
    const tx = this.db.transaction("entries", "readonly");
    const entries = await done(tx.objectStore("entries").getAll());
    return entries.map(({ key, size, storedAt, meta }) => ({ key: String(key), size, storedAt, meta }))
      .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  async _writeParts(key, version, first, batch) {
    const tx = this.db.transaction("parts", "readwrite");
    const store = tx.objectStore("parts");
    batch.forEach((part, i) => store.put(part, [key, version, first + i]));
    await finished(tx);
  }

  async _flip(entry) {
    const tx = this.db.transaction(["entries", "parts"], "readwrite");
    const entries = tx.objectStore("entries");
    const parts = tx.objectStore("parts");
    // Another tab's sweep may have removed parts of an unfinished version: check, in the
    // same transaction that publishes the entry.
    const count = await done(parts.count(partRange(entry.key, entry.version)));
    if (count !== entry.parts.length) {
      tx.abort();
      throw new Error(`storing ${entry.key}: ${entry.parts.length - count} parts vanished before commit`);
    }
    const old = await done(entries.get(entry.key));
    entries.put(entry);
    if (old && old.version !== entry.version) parts.delete(partRange(old.key, old.version));
    await finished(tx);
  }

  async _deleteParts(key, version) {
    const tx = this.db.transaction("parts", "readwrite");
    tx.objectStore("parts").delete(partRange(key, version));
    await finished(tx);
  }

  // The entry's bytes in one Uint8Array (one copy; the parts are read one at a time), or
  // null when there is no entry or its parts are incomplete (then the entry is dropped).
  async read(key) {
    const tx = this.db.transaction(["entries", "parts"], "readonly");
    const entry = await done(tx.objectStore("entries").get(key));
    if (!entry) return null;
    const bytes = new Uint8Array(entry.size);
    const parts = tx.objectStore("parts");
    let offset = 0;
    for (let i = 0; i < entry.parts.length; i++) {
      const part = await done(parts.get([entry.key, entry.version, i]));
      if (!part || part.byteLength !== entry.parts[i]) {
        await this.remove(key);
        return null;
      }
      bytes.set(new Uint8Array(part), offset);
      offset += part.byteLength;
    }
    return { entry, bytes };
  }

  async remove(key) {
    const tx = this.db.transaction(["entries", "parts"], "readwrite");
    const entries = tx.objectStore("entries");
    const entry = await done(entries.get(key));
    if (entry) {
      entries.delete(key);
      tx.objectStore("parts").delete(partRange(entry.key, entry.version));
    }
    await finished(tx);
    if (entry) announce({ type: "changed", key });
    return !!entry;
  }

  async keys(prefix = "") {
    const tx = this.db.transaction("entries", "readonly");
    const range = prefix ? IDBKeyRange.bound(prefix, prefix + "\uffff") : undefined;
    return (await done(tx.objectStore("entries").getAllKeys(range))).map(String).sort();
  }
}

// Chunks of any size -> parts of PART_BYTES (each an ArrayBuffer of its own: IndexedDB
// clones a view's whole underlying buffer, so views are sliced first).
function* repartition(chunks) {
  let pending = null;
  let filled = 0;
  for (const chunk of chunks) {
    let offset = 0;
    while (offset < chunk.byteLength) {
      pending ??= new Uint8Array(PART_BYTES);
      const take = Math.min(PART_BYTES - filled, chunk.byteLength - offset);
      pending.set(chunk.subarray(offset, offset + take), filled);
      filled += take;
      offset += take;
      if (filled === PART_BYTES) {
        yield pending.buffer;
        pending = null;
        filled = 0;
      }
    }
  }
  if (filled) yield pending.buffer.slice(0, filled);
}

export async function estimate() {
  try {
    const { usage = 0, quota = 0 } = await navigator.storage.estimate();
    return { usage, quota };
  } catch {
    return { usage: 0, quota: 0 };
  }
}

// 1234567 -> "1.23 MB" (decimal units, as browsers and disks count).
export function formatBytes(bytes) {
  const units = ["bytes", "kB", "MB", "GB", "TB"];
  let value = Number(bytes) || 0;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return unit === 0 ? `${value} bytes` : `${value.toPrecision(3).replace(/\.?0+$/, "")} ${units[unit]}`;
}

// The sentence a quota error carries (and the Lens's storage panel shows).
export function describeRefusal({ stored, quota }) {
  const estimated = quota ? `it had estimated a quota of ${formatBytes(quota)}, ${quota} bytes`
    : "it gave no quota estimate";
  return `the browser refused more at ${formatBytes(stored)} (${stored} bytes stored; ${estimated})`;
}

export async function listEntries() {
  return (await openStore()).list();
}

// Removes each key's entry; returns the bytes freed.
export async function removeEntries(keys) {
  const store = await openStore();
  let freed = 0;
  for (const key of keys) {
    const entry = await store.entry(key);
    if (entry && (await store.remove(key))) freed += entry.size;
  }
  return freed;
}

// The spill sessions whose worker still runs (it holds the session's Web Lock): their
// entries are in use by a live ActivationCache and must not be removed from outside.
export async function liveSpillSessions() {
  const locks = globalThis.navigator?.locks;
  if (!locks) return new Set();
  const { held = [] } = await locks.query();
  return new Set(held.filter((lock) => lock.name.startsWith(LOCK)).map((lock) => lock.name.slice(LOCK.length)));
}

export function isQuotaError(error) {
  return error?.name === "QuotaExceededError" || /quota/i.test(String(error?.message ?? ""));
}

// A Python buffer (PyProxy) or a typed array -> [Uint8Array view, release()].
function borrow(chunk) {
  if (chunk && typeof chunk.getBuffer === "function") {
    const buffer = chunk.getBuffer("u8");
    return [buffer.data, () => buffer.release()];
  }
  const view = ArrayBuffer.isView(chunk) ? new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength)
    : new Uint8Array(chunk);
  return [view, () => {}];
}

// The object registered as `neuroscope_js.storage` (see the header).
export const pythonStorage = {
  async write(key, chunks) {
    const borrowed = Array.from(chunks, borrow);
    const size = borrowed.reduce((sum, [view]) => sum + view.byteLength, 0);
    try {
      const store = await openStore();
      await store.put(String(key), borrowed.map(([view]) => view));
      return { ok: true, size };
    } catch (error) {
      return { ok: false, quotaExceeded: isQuotaError(error), size, ...(await estimate()),
        message: `${error?.name ?? "Error"}: ${error?.message ?? error}` };
    } finally {
      for (const [, release] of borrowed) release();
    }
  },
  async read(key) {
    const found = await (await openStore()).read(String(key));
    return found ? found.bytes : null;
  },
  async remove(key) {
    return (await openStore()).remove(String(key));
  },
  async keys(prefix = "") {
    return (await openStore()).keys(String(prefix ?? ""));
  },
  usage: estimate,
  async removePrefix(prefix) {
    const store = await openStore();
    for (const key of await store.keys(String(prefix))) await store.remove(key);
  },
  spillPrefix() {
    spillSession ??= startSpillSession();
    return spillSession;
  },
};

let spillSession = null;
const LOCK = "neuroscope-spill/";

async function startSpillSession() {
  const id = crypto.randomUUID();
  const locks = globalThis.navigator?.locks;
  if (!locks) return `${SPILL_PREFIX}${id}/`;
  await new Promise((granted) => {
    locks.request(LOCK + id, () => {
      granted();
      return new Promise(() => {}); // held until the worker goes away
    });
  });
  const { held = [] } = await locks.query();
  const live = new Set(held.map((lock) => lock.name));
  const store = await openStore();
  for (const key of await store.keys(SPILL_PREFIX)) {
    const session = key.slice(SPILL_PREFIX.length).split("/")[0];
    if (!live.has(LOCK + session)) await store.remove(key);
  }
  return `${SPILL_PREFIX}${id}/`;
}
