// Share links: the whole analysis in a URL fragment (#s=...), or in a .neuroscope file when
// the URL would be too long. Pure functions; nothing here touches the DOM or runs code.
// Opening a link restores the state only: the app shell must never run a notebook cell from
// a link without a click.
//
// The encoding ("ns1." + base64url of the bytes below, no padding):
//   [4 bytes] length of the compressed data, big-endian   (a cut-off link is told apart)
//   [8 bytes] the first 8 bytes of SHA-256(compressed)     (a changed link is detected)
//   [rest]    deflate-raw(UTF-8(JSON(state)))
//
// The state (validateState; keys not listed are kept as they are):
//   v             1
//   model         {ref: "demo" | a URL | a hub name, sha256?: 64 hex digits of the weights}
//   prompt        string
//   corrupted?, answer?, wrong?   strings (a ? field may also be absent or null)
//   view          string: the view on screen
//   selection     object: what is selected in it (free-form)
//   interventions [spec]: Intervention.to_spec() ({type, ...}) or InterventionHook.to_spec()
//                 ({layer, component | name, heads, intervention: {type, ...}})
//                 (py/neuroscope/interventions.py, py/neuroscope/hooks.py)
//   notebook      [{type: "markdown" | "code" | "view", source: string, ...}]
//
// Every failure is a ShareLinkError whose message says what is wrong, and whose `reason`
// is one of: "format", "version", "base64", "truncated", "checksum", "compression",
// "encoding", "json", "schema", "file", "too-large".

export const FORMAT = "ns1";
export const FILE_FORMAT = "neuroscope-share";
export const FILE_EXTENSION = ".neuroscope";
export const STATE_VERSION = 1;
export const CELL_TYPES = ["markdown", "code", "view"];
const HEADER = 12; // bytes: 4 of length + 8 of checksum
const CHECKSUM = 8;
const MAX_STATE_BYTES = 64 << 20; // a decompressed state larger than this is refused

export class ShareLinkError extends Error {
  constructor(message, { reason = "format", field = null } = {}) {
    super(message);
    this.name = "ShareLinkError";
    this.reason = reason;
    this.field = field;
  }
}

// -- the state ------------------------------------------------------------------------
export function validateState(state) {
  const fail = (field, expected, value) => {
    throw new ShareLinkError(`share state: field "${field}" ${describe(value)}, expected ${expected}`,
      { reason: "schema", field });
  };
  if (!isObject(state)) fail("(root)", "an object", state);
  if (!("v" in state)) fail("v", `the state version ${STATE_VERSION}`, undefined);
  if (state.v !== STATE_VERSION) {
    const newer = Number.isInteger(state.v) && state.v > STATE_VERSION;
    throw new ShareLinkError(newer
      ? `share state version ${state.v} was made by a newer NeuroScope; this one reads version ` +
        `${STATE_VERSION} (reload the app to update it)`
      : `share state: field "v" ${describe(state.v)}, expected ${STATE_VERSION}`,
    { reason: newer ? "version" : "schema", field: "v" });
  }
  if (!isObject(state.model)) fail("model", "an object {ref, sha256?}", state.model);
  if (typeof state.model.ref !== "string" || !state.model.ref) {
    fail("model.ref", 'a non-empty string ("demo", a URL or a hub name)', state.model.ref);
  }
  const sha = state.model.sha256;
  if (sha != null && !(typeof sha === "string" && /^[0-9a-f]{64}$/i.test(sha))) {
    fail("model.sha256", "64 hexadecimal digits (a SHA-256 digest)", sha);
  }
  for (const field of ["prompt", "view"]) {
    if (typeof state[field] !== "string") fail(field, "a string", state[field]);
  }
  for (const field of ["corrupted", "answer", "wrong"]) {
    if (state[field] != null && typeof state[field] !== "string") fail(field, "a string or nothing", state[field]);
  }
  if (!isObject(state.selection)) fail("selection", "an object", state.selection);
  if (!Array.isArray(state.interventions)) fail("interventions", "an array of intervention specs", state.interventions);
  state.interventions.forEach((spec, i) => {
    const where = `interventions[${i}]`;
    if (!isObject(spec)) fail(where, "an object (an intervention spec)", spec);
    if ("intervention" in spec) {
      if (!isObject(spec.intervention) || typeof spec.intervention.type !== "string") {
        fail(`${where}.intervention.type`, "a string naming the intervention", spec.intervention?.type);
      }
    } else if (typeof spec.type !== "string") {
      fail(`${where}.type`, 'a string naming the intervention (e.g. "zero_ablation")', spec.type);
    }
  });
  if (!Array.isArray(state.notebook)) fail("notebook", "an array of cells", state.notebook);
  state.notebook.forEach((cell, i) => {
    if (!isObject(cell)) fail(`notebook[${i}]`, "an object {type, source}", cell);
    if (!CELL_TYPES.includes(cell.type)) fail(`notebook[${i}].type`, `one of ${CELL_TYPES.map(quote).join(", ")}`, cell.type);
    if (typeof cell.source !== "string") fail(`notebook[${i}].source`, "a string", cell.source);
  });
  return state;
}

// -- the link ----------------------------------------------------------------------------
export async function encodeState(state) {
  validateState(state);
  let text;
  try {
    text = JSON.stringify(state);
  } catch (error) {
    throw new ShareLinkError(`the share state cannot be written as JSON: ${error.message}`, { reason: "json" });
  }
  return encodeText(text);
}

export async function decodeState(fragment) {
  const text = await decodeText(fragment);
  let state;
  try {
    state = JSON.parse(text);
  } catch (error) {
    throw new ShareLinkError(`the share link's content is not JSON (${error.message})`, { reason: "json" });
  }
  return validateState(state);
}

// Any text in the link encoding (encodeState is this over the state's JSON).
export async function encodeText(text) {
  const compressed = await transform(new TextEncoder().encode(text), new CompressionStream("deflate-raw"));
  const bytes = new Uint8Array(HEADER + compressed.byteLength);
  new DataView(bytes.buffer).setUint32(0, compressed.byteLength);
  bytes.set(await checksum(compressed), 4);
  bytes.set(compressed, HEADER);
  return `${FORMAT}.${toBase64url(bytes)}`;
}

export async function decodeText(fragment) {
  if (typeof fragment !== "string" || !fragment.trim()) {
    throw new ShareLinkError("the share link is empty: it holds no state after #s=", { reason: "truncated" });
  }
  let encoded = fragment.trim();
  if (encoded.includes("%")) {
    try {
      encoded = decodeURIComponent(encoded);
    } catch {
      throw new ShareLinkError("the share link holds a broken %-escape", { reason: "base64" });
    }
  }
  const match = /^ns(\d+)\.(.*)$/s.exec(encoded);
  if (!match) {
    throw new ShareLinkError(`this is not a NeuroScope share link: it should start with "${FORMAT}." ` +
      `but starts with ${quote(encoded.slice(0, 8))}`, { reason: "format" });
  }
  if (`ns${match[1]}` !== FORMAT) {
    const newer = Number(match[1]) > Number(FORMAT.slice(2));
    throw new ShareLinkError(newer
      ? `this share link (format ns${match[1]}) was made by a newer NeuroScope; this one reads ${FORMAT} ` +
        "(reload the app to update it)"
      : `unknown share link format ns${match[1]}; expected ${FORMAT}`, { reason: "version" });
  }
  const bytes = fromBase64url(match[2]);
  if (bytes.byteLength < HEADER) {
    throw new ShareLinkError(`the share link is truncated: it holds ${bytes.byteLength} bytes, fewer than ` +
      `its ${HEADER}-byte header (was it cut off when copied?)`, { reason: "truncated" });
  }
  const declared = new DataView(bytes.buffer, bytes.byteOffset).getUint32(0);
  const compressed = bytes.subarray(HEADER);
  if (declared > MAX_STATE_BYTES) {
    // No state compresses to more than its own size limit: these bytes were never a state
    // (random text after "ns1.", another program's data), not a link cut off in copying.
    throw new ShareLinkError(`this is not a NeuroScope link: its header declares ${declared.toLocaleString("en")} ` +
      `bytes of data, more than any NeuroScope state holds (${MAX_STATE_BYTES.toLocaleString("en")})`,
    { reason: "format" });
  }
  if (compressed.byteLength < declared) {
    throw new ShareLinkError(`the share link is truncated: it holds ${compressed.byteLength} of the ` +
      `${declared} bytes of data it declares (was it cut off when copied?)`, { reason: "truncated" });
  }
  if (compressed.byteLength > declared) {
    throw new ShareLinkError(`the share link is damaged: it holds ${compressed.byteLength - declared} bytes ` +
      `more than the ${declared} it declares`, { reason: "checksum" });
  }
  const expected = await checksum(compressed);
  if (!expected.every((byte, i) => byte === bytes[4 + i])) {
    throw new ShareLinkError("the share link's checksum does not match its content: the link was changed " +
      "or damaged after it was made", { reason: "checksum" });
  }
  let inflated;
  try {
    inflated = await transform(compressed, new DecompressionStream("deflate-raw"), MAX_STATE_BYTES);
  } catch (error) {
    if (error instanceof ShareLinkError) throw error;
    throw new ShareLinkError(`the share link's compressed data is corrupt (${error.message})`,
      { reason: "compression" });
  }
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(inflated);
  } catch {
    throw new ShareLinkError("the share link's content is not UTF-8 text", { reason: "encoding" });
  }
}

// The longest link Share makes. Browsers open far longer ones (Chromium 2 MB, Firefox about
// 1 MB, Safari about 80,000 characters), but mail, chat and form fields often cut a URL near
// 8 KB; a longer state travels as a file instead, so no link it makes fails to open anywhere.
export const MAX_LINK_LENGTH = 8000;

// {url} when the link fits in maxLength characters, else {file, name}: a .neuroscope file
// holding the same encoding (readStateFile reads it back).
export async function shareURL(state, base = globalThis.location?.href, { maxLength = MAX_LINK_LENGTH } = {}) {
  const encoded = await encodeState(state);
  const url = new URL(base);
  url.hash = `s=${encoded}`;
  if (url.href.length <= maxLength) return { url: url.href };
  const text = JSON.stringify({ format: FILE_FORMAT, version: 1, state: encoded });
  return { file: new Blob([text], { type: "application/json" }), name: fileName(state) };
}

export async function readStateFile(fileOrText) {
  const text = typeof fileOrText === "string" ? fileOrText : await fileOrText.text();
  let content;
  try {
    content = JSON.parse(text);
  } catch {
    throw new ShareLinkError(`this is not a NeuroScope share file (${FILE_EXTENSION}): it is not JSON`,
      { reason: "file" });
  }
  if (!isObject(content) || content.format !== FILE_FORMAT) {
    throw new ShareLinkError(`this is not a NeuroScope share file (${FILE_EXTENSION}): it has no ` +
      `"format": "${FILE_FORMAT}"`, { reason: "file" });
  }
  if (content.version !== 1) {
    throw new ShareLinkError(`this share file is version ${quote(content.version ?? null)}; this ` +
      "NeuroScope reads version 1", { reason: "version" });
  }
  if (typeof content.state !== "string") {
    throw new ShareLinkError(`this share file's "state" ${describe(content.state)}, expected a string`,
      { reason: "file", field: "state" });
  }
  return decodeState(content.state);
}

// The state in a location's fragment (#s=... or #...&s=...&...), or null when it has none.
export async function stateFromLocation(location = globalThis.location) {
  const hash = new URL(String(location?.href ?? location)).hash.replace(/^#/, "");
  const part = hash.split("&").find((piece) => piece.startsWith("s="));
  return part === undefined ? null : decodeState(part.slice(2));
}

// -- helpers -----------------------------------------------------------------------------
async function transform(bytes, stream, limit = Infinity) {
  const reader = new Blob([bytes]).stream().pipeThrough(stream).getReader();
  const chunks = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel();
      throw new ShareLinkError(`the share state is larger than ${limit >> 20} MiB once decompressed`,
        { reason: "too-large" });
    }
    chunks.push(value);
  }
  const joined = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    joined.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return joined;
}

async function checksum(bytes) {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)).subarray(0, CHECKSUM);
}

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const INDEX = Object.fromEntries([...ALPHABET].map((c, i) => [c, i]));

export function toBase64url(bytes) {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

// Strict: only the URL-safe alphabet, and the unused bits of the last character zero, so
// that every change to a link changes its bytes.
export function fromBase64url(text) {
  const body = text.replace(/=+$/, "");
  for (let i = 0; i < body.length; i++) {
    if (!(body[i] in INDEX)) {
      throw new ShareLinkError(`the share link is not valid base64url: character ${quote(body[i])} at ` +
        `position ${i} (were characters added or changed when it was copied?)`, { reason: "base64" });
    }
  }
  if (body.length % 4 === 1) {
    throw new ShareLinkError(`the share link is truncated or damaged: ${body.length} base64url characters ` +
      "cannot encode whole bytes (was it cut off when copied?)", { reason: "truncated" });
  }
  const bytes = new Uint8Array(Math.floor((body.length * 3) / 4));
  let bits = 0;
  let value = 0;
  let out = 0;
  for (const char of body) {
    value = (value << 6) | INDEX[char];
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      bytes[out++] = (value >> bits) & 0xff;
      value &= (1 << bits) - 1;
    }
  }
  if (value & ((1 << bits) - 1)) {
    throw new ShareLinkError("the share link's last character was changed: it is not valid base64url there",
      { reason: "checksum" });
  }
  return bytes;
}

function fileName(state) {
  const words = state.prompt.normalize("NFKD").replace(/[^A-Za-z0-9]+/g, " ").trim().split(" ").slice(0, 5);
  const slug = words.join("-").slice(0, 40).replace(/-+$/, "");
  return `neuroscope-${slug || "state"}${FILE_EXTENSION}`;
}

function isObject(value) {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

function quote(value) {
  return JSON.stringify(value);
}

function describe(value) {
  if (value === undefined) return "is missing";
  if (value === null) return "is null";
  if (Array.isArray(value)) return "is an array";
  if (typeof value === "string") return `is the string ${quote(value.length > 40 ? `${value.slice(0, 40)}…` : value)}`;
  if (typeof value === "object") return "is an object";
  return `is the ${typeof value} ${String(value)}`;
}
