// Downloads for Python (model files): what py/neuroscope/model/remote.py calls through the
// `neuroscope_js` module. Weights go through ./weights.js instead, which caches them in
// IndexedDB and streams with readStream below.
//
// Both functions answer {url, status, statusText, etag, bytes} with bytes a Uint8Array
// (null unless 200 <= status < 300); a network failure answers status 0.

const PROGRESS_EVERY = 1 << 20; // bytes between progress events

// Streamed fetch; onProgress({url, done, total}) after each MiB and at the end.
export async function fetchBytes(url, onProgress = () => {}) {
  let response;
  try {
    response = await fetch(url);
  } catch (error) {
    return { url, status: 0, statusText: String(error?.message ?? error), etag: null, bytes: null };
  }
  const head = { url: response.url || url, status: response.status, statusText: response.statusText,
    etag: response.headers.get("etag") };
  if (!response.ok) return { ...head, bytes: null };
  const total = Number(response.headers.get("content-length")) || 0;
  const bytes = response.body
    ? await readStream(response.body, total, (done) => onProgress({ url, done, total }))
    : new Uint8Array(await response.arrayBuffer());
  onProgress({ url, done: bytes.byteLength, total: total || bytes.byteLength });
  return { ...head, bytes };
}

export async function readStream(body, total, report) {
  const reader = body.getReader();
  // With a known length, fill one buffer: no second copy of a large file.
  let buffer = new Uint8Array(total || PROGRESS_EVERY);
  let done = 0;
  let reported = 0;
  for (;;) {
    const { done: finished, value } = await reader.read();
    if (finished) break;
    if (done + value.byteLength > buffer.byteLength) {
      const grown = new Uint8Array(Math.max(buffer.byteLength * 2, done + value.byteLength));
      grown.set(buffer.subarray(0, done));
      buffer = grown;
    }
    buffer.set(value, done);
    done += value.byteLength;
    if (done - reported >= PROGRESS_EVERY) {
      reported = done;
      report(done);
    }
  }
  return done === buffer.byteLength ? buffer : buffer.slice(0, done);
}

// Synchronous XHR (allowed in workers): the path for browsers without JSPI, where Python
// cannot wait on a Promise.
export function fetchBytesSync(url) {
  const request = new XMLHttpRequest();
  request.open("GET", url, false);
  request.responseType = "arraybuffer";
  try {
    request.send();
  } catch (error) {
    return { url, status: 0, statusText: String(error?.message ?? error), etag: null, bytes: null };
  }
  const ok = request.status >= 200 && request.status < 300;
  return { url: request.responseURL || url, status: request.status, statusText: request.statusText,
    etag: request.getResponseHeader("etag"), bytes: ok ? new Uint8Array(request.response) : null };
}
