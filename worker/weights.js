// Model weights (safetensors files) for Python, cached in IndexedDB (./storage.js).
//
// fetchWeights(url, onProgress, log) -> {url, status, statusText, etag, bytes, cached, commit}
//   bytes    a Uint8Array holding the whole file: the ONE copy in memory. Python parses
//            its header and uploads each tensor from a range of it (KernelBridge
//            .uploadFromBuffer), so the file is never copied into Python.
//   commit() stores a fresh download in the cache (Promise of {stored, reason?}); Python
//            calls it once the header is valid, so a bad file is never cached.
//   cached   true when the bytes came from IndexedDB.
//
// Cache entries are keyed by URL ("weights/" + url) and remember a SHA-256 content hash
// (contentHash) and the response's validators (ETag, Last-Modified, Cache-Control). A
// fresh cached file is used with NO network request: weights at a URL are taken as
// immutable unless the server says otherwise (no-cache, max-age, Expires), as
// transformers.js does; that is also what makes them work offline. A stale entry is
// revalidated with a conditional GET (If-None-Match / If-Modified-Since): 304 keeps it,
// 200 replaces it (a changed file is downloaded again). When the network fails, a cached
// copy is used and a warning logged.
// `no-store` responses are not cached. forgetWeights(url?) drops entries.

import { readStream } from "./files.js";
import { openStore } from "./storage.js";

// The cache's keys: WEIGHTS_PREFIX + the file's URL (web/storage_panel.js lists them).
export const WEIGHTS_PREFIX = "weights/";

export async function fetchWeights(url, onProgress = () => {}, log = () => {}) {
  const key = WEIGHTS_PREFIX + url;
  let store = null;
  let cached = null;
  try {
    store = await openStore();
    cached = await store.entry(key);
  } catch (error) {
    log("warn", `the weight cache (IndexedDB) is unavailable: ${error.message}; downloading ${url}`);
  }
  if (cached && isFresh(cached.meta)) {
    const hit = await fromCache(store, key, url, onProgress);
    if (hit) return hit;
    cached = null;
  }

  let response = await get(url, cached ? conditional(cached.meta) : {});
  if (response.status === 304 && cached) {
    await store.setMeta(key, { ...cached.meta, ...validators(response, cached.meta) }).catch(() => {});
    const hit = await fromCache(store, key, url, onProgress);
    if (hit) return hit;
    response = await get(url, {}); // the entry vanished or cannot be read: download it whole
  }
  if ((response.error || response.status >= 500) && cached) {
    const why = response.error ? `network error (${response.error.message})` : `HTTP ${response.status}`;
    log("warn", `${url}: ${why}; using the cached copy`);
    const hit = await fromCache(store, key, url, onProgress);
    if (hit) return hit;
  }
  if (response.error) {
    const statusText = String(response.error.message ?? response.error);
    return { url, status: 0, statusText, etag: null, bytes: null };
  }
  const head = { url: response.url || url, status: response.status, statusText: response.statusText,
    etag: response.headers.get("etag") };
  if (!response.ok) return { ...head, bytes: null, cached: false };

  const total = Number(response.headers.get("content-length")) || 0;
  const bytes = response.body
    ? await readStream(response.body, total, (done) => onProgress({ url, done, total }))
    : new Uint8Array(await response.arrayBuffer());
  onProgress({ url, done: bytes.byteLength, total: total || bytes.byteLength, cached: false });
  const meta = validators(response);
  const complete = !total || total === bytes.byteLength;
  const commit = async () => {
    if (!store) return { stored: false, reason: "IndexedDB is unavailable" };
    if (!complete) return { stored: false, reason: `incomplete (${bytes.byteLength} of ${total} bytes)` };
    if (/(^|,)\s*no-store/i.test(meta.cacheControl ?? "")) return { stored: false, reason: "no-store" };
    try {
      meta.sha256 = await contentHash(bytes);
      if (cached?.meta?.sha256 === meta.sha256 && cached.size === bytes.byteLength) {
        await store.setMeta(key, { ...cached.meta, ...meta }); // same content, new validators
      } else {
        await store.put(key, [bytes], meta);
      }
      return { stored: true };
    } catch (error) {
      log("warn", `${url}: not cached (${error.name}: ${error.message}); the next load downloads it again`);
      return { stored: false, reason: `${error.name}: ${error.message}` };
    }
  };
  return { ...head, bytes, cached: false, commit };
}

// fetch() that answers {error} instead of throwing. "no-store": the browser's HTTP cache
// neither keeps a second copy of the file nor answers our conditional requests itself.
async function get(url, headers) {
  try {
    return await fetch(url, { cache: "no-store", headers });
  } catch (error) {
    return { error };
  }
}

// The cached file, or null (no entry, or IndexedDB failed: then the network is asked).
async function fromCache(store, key, url, onProgress) {
  const found = await store.read(key).catch(() => null);
  if (!found) return null;
  const { entry, bytes } = found;
  onProgress({ url, done: bytes.byteLength, total: bytes.byteLength, cached: true });
  return { url, status: 200, statusText: "OK (cached)", etag: entry.meta.etag ?? null, bytes, cached: true,
    commit: async () => ({ stored: true }) };
}

export async function forgetWeights(url = null) {
  const store = await openStore();
  const keys = url ? [WEIGHTS_PREFIX + url] : await store.keys(WEIGHTS_PREFIX);
  let removed = 0;
  for (const key of keys) removed += (await store.remove(key)) ? 1 : 0;
  return removed;
}

function validators(response, previous = {}) {
  const header = (name) => response.headers.get(name);
  return {
    etag: header("etag") ?? previous.etag ?? null,
    lastModified: header("last-modified") ?? previous.lastModified ?? null,
    cacheControl: header("cache-control") ?? previous.cacheControl ?? null,
    expires: header("expires") ?? previous.expires ?? null,
    validatedAt: Date.now(),
  };
}

function conditional(meta) {
  const headers = {};
  if (meta.etag) headers["If-None-Match"] = meta.etag;
  if (meta.lastModified) headers["If-Modified-Since"] = meta.lastModified;
  return headers;
}

// RFC 9111 freshness, with "no information" meaning fresh (see the header).
export function isFresh(meta, now = Date.now()) {
  const directives = Object.fromEntries(String(meta.cacheControl ?? "").split(",")
    .map((part) => part.trim().toLowerCase().split("=")).filter(([name]) => name));
  if ("no-cache" in directives || "no-store" in directives) return false;
  if ("immutable" in directives) return true;
  const maxAge = Number(directives["max-age"]);
  if (directives["max-age"] !== undefined && Number.isFinite(maxAge)) {
    return now < meta.validatedAt + maxAge * 1000;
  }
  if (meta.expires) return now < Date.parse(meta.expires);
  return true;
}

// SHA-256 over the SHA-256 of each HASH_PIECE bytes: WebCrypto has no streaming digest and
// copies its input, so hashing the whole file at once would hold a second copy of it.
const HASH_PIECE = 8 << 20;

async function contentHash(bytes) {
  const pieces = [];
  for (let offset = 0; offset === 0 || offset < bytes.byteLength; offset += HASH_PIECE) {
    const piece = bytes.subarray(offset, offset + HASH_PIECE);
    pieces.push(new Uint8Array(await crypto.subtle.digest("SHA-256", piece)));
  }
  const joined = new Uint8Array(pieces.length * 32);
  pieces.forEach((piece, i) => joined.set(piece, 32 * i));
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", joined));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

// The content hash (SHA-256, see contentHash) recorded for the cached weights at `url`, or
// null when they are not cached. The page uses it to pin a model in a share link.
export async function weightsHash(url) {
  try {
    const store = await openStore();
    const entry = await store.entry(WEIGHTS_PREFIX + url);
    return entry?.meta?.sha256 ?? null;
  } catch {
    return null;
  }
}
