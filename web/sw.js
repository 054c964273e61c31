// NeuroScope's service worker: after one visit the app, its runtime (Pyodide,
// onnxruntime-web, the tokenizer), the kernels and the built-in demo model work offline.
//
// It must be served from the site root so that its scope covers web/, worker/, shaders/,
// node_modules/ and py/: `python build.py build` writes dist/sw.js from this file with the
// precache list in place of the PRECACHE marker below (and the same list as dist/precache.json):
//   {version, files: [{url (relative to the site root), size, sha256}]}
// version is a hash over the list, so any change to any file makes a new service worker.
//
// Precache: installing fetches every listed file into "neuroscope-precache-<version>",
// checks its size and SHA-256 (a file that changed on the server mid-install fails the
// install, which the next visit retries) and reuses the copy an older version holds when
// the path and hash are unchanged. Precached files are served cache-first, ignoring the
// query string (?backend=... belongs to the app); a folder URL gets its index.html.
// Runtime: other same-origin GETs go to the network first and are kept in
// "neuroscope-runtime" for offline use (model files a user opened, for instance), except
// requests that ask not to be stored (cache: "no-store", as worker/weights.js does: it
// keeps weights in IndexedDB itself) and range requests.
// Updates: a new version installs beside the old one and waits until no page uses the old
// one, or until a page posts {type: "skip-waiting"} (web/pwa.js activateUpdate); activating
// deletes the older precaches and claims the open pages.
// Cached responses keep the headers they were served with (COOP/COEP/CORP, Content-Type),
// so pages and workers stay cross-origin isolated offline.

const PRECACHE = /* PRECACHE */null;
const PRECACHE_PREFIX = "neuroscope-precache-";
const RUNTIME_CACHE = "neuroscope-runtime";
const HASH_HEADER = "X-NeuroScope-SHA256";
const PARALLEL_DOWNLOADS = 4;

const files = PRECACHE?.files ?? [];
const precacheName = PRECACHE_PREFIX + (PRECACHE?.version ?? "unbuilt");
const keyOf = (file) => new URL(file.url, self.location).href;
const precachedPaths = new Map(files.map((file) => [new URL(keyOf(file)).pathname, file]));

self.addEventListener("install", (event) => event.waitUntil(precache()));

self.addEventListener("activate", (event) => event.waitUntil((async () => {
  for (const name of await caches.keys()) {
    if (name.startsWith(PRECACHE_PREFIX) && name !== precacheName) await caches.delete(name);
  }
  await self.clients.claim();
})()));

self.addEventListener("message", (event) => {
  if (event.data?.type === "skip-waiting") self.skipWaiting();
});

self.addEventListener("fetch", (event) => {
  const { request } = event;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  const file = precachedPaths.get(url.pathname) ?? precachedPaths.get(`${url.pathname}index.html`);
  if (file) {
    event.respondWith(fromPrecache(request, file));
  } else if (request.cache !== "no-store" && !request.headers.has("range")) {
    event.respondWith(networkFirst(event));
  }
});

async function precache() {
  const cache = await caches.open(precacheName);
  const present = new Set((await cache.keys()).map((request) => request.url));
  const older = await olderCopies();
  const missing = files.filter((file) => !present.has(keyOf(file)));
  const queue = [...missing];
  const download = async () => {
    for (let file = queue.shift(); file; file = queue.shift()) await store(cache, file, older);
  };
  await Promise.all(Array.from({ length: PARALLEL_DOWNLOADS }, download));
}

// "url sha256" -> {cacheName, url} for each file an older precache holds.
async function olderCopies() {
  const found = new Map();
  for (const name of await caches.keys()) {
    if (!name.startsWith(PRECACHE_PREFIX) || name === precacheName) continue;
    const cache = await caches.open(name);
    for (const request of await cache.keys()) {
      const response = await cache.match(request);
      const sha256 = response?.headers.get(HASH_HEADER);
      if (sha256) found.set(`${request.url} ${sha256}`, { cacheName: name, url: request.url });
    }
  }
  return found;
}

async function store(cache, file, older) {
  const key = keyOf(file);
  const previous = older.get(`${key} ${file.sha256}`);
  const reused = previous && await caches.match(previous.url, { cacheName: previous.cacheName });
  if (reused) {
    await cache.put(key, reused);
    return;
  }
  const response = await fetch(key, { cache: "reload" });
  if (!response.ok) throw new Error(`precaching ${file.url}: HTTP ${response.status}`);
  const body = await response.arrayBuffer();
  const sha256 = hex(await crypto.subtle.digest("SHA-256", body));
  if (body.byteLength !== file.size || sha256 !== file.sha256) {
    throw new Error(`precaching ${file.url}: the server sent ${body.byteLength} bytes with SHA-256 ` +
      `${sha256}, the build listed ${file.size} with ${file.sha256} (a newer build is being served?)`);
  }
  const headers = new Headers(response.headers);
  headers.set(HASH_HEADER, sha256);
  await cache.put(key, new Response(body, { status: response.status, statusText: response.statusText, headers }));
}

async function fromPrecache(request, file) {
  const hit = await caches.match(keyOf(file), { cacheName: precacheName });
  return hit ?? fetch(request); // not (yet) precached: this version is still installing
}

async function networkFirst(event) {
  const { request } = event;
  try {
    const response = await fetch(request);
    if (response.ok && response.type === "basic" && !/no-store/i.test(response.headers.get("cache-control") ?? "")) {
      const copy = response.clone();
      event.waitUntil(caches.open(RUNTIME_CACHE).then((cache) => cache.put(request, copy)));
    }
    return response;
  } catch (error) {
    const hit = await caches.match(request, { cacheName: RUNTIME_CACHE });
    if (hit) return hit;
    throw error;
  }
}

function hex(buffer) {
  return Array.from(new Uint8Array(buffer), (byte) => byte.toString(16).padStart(2, "0")).join("");
}
