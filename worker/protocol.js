// The one protocol between the page (web/) and the NeuroScope worker (worker/worker.js).
//
// Messages (structured-clone objects; nothing else crosses):
//   request   page -> worker   {id, op, args}
//   reply     worker -> page   {id, ok: true, result}
//                              {id, ok: false, error: {name, message, pyType?, traceback?}}
//   event     worker -> page   {event: "progress", stage, index, of, detail?, url?, done?, total?,
//                                      cached?}
//                              {event: "log", level: "info" | "warn" | "error", text}
//
// Ops:
//   boot    {backend?: "webgpu" | "webgl" | "cpu" | "none", threads?: number}
//                                                    -> {backend, fallback, threads, versions}
//           threads: the CPU backend's wasm threads (default all cores when cross-origin
//           isolated, else 1); the reply's threads is null for the GPU backends.
//           Staged start-up, one progress event per stage (STAGES). No backend: the best
//           available, where a software GPU (isFallbackAdapter) never beats the CPU path.
//           "none" boots Python without kernels (the tokenizer and plain Python still work).
//           interrupt?: an Int32Array(2) on a SharedArrayBuffer (cross-origin isolated pages):
//           [0] = 2 raises KeyboardInterrupt in the running Python; [1] = the seq of the last
//           python call it targets (the worker clears [0] when that call has ended).
//           lock?: a Web Lock name the worker holds while it lives; the page's request for
//           it is granted when the worker is gone (terminated, crashed, closed).
//   python  {code, globals?: {name: value}, seq?}             -> the value of the last expression
//           `globals` enter Python as variables of the session namespace (never pasted into
//           source): JSON-like values as Python ones, typed arrays as memoryviews (format
//           "f" for Float32Array). The namespace persists between calls. Results are JSON-able values;
//           a Tensor becomes {shape, dtype, data} (data a TypedArray whose buffer is
//           transferred; int64 tensors arrive as Int32Array, bool as Uint8Array); other
//           objects become their repr() string. A Python exception rejects with
//           error.pyType (e.g. "UnknownHookError"), error.message (str(exception)) and
//           error.traceback.
//
// Progress events with `done`/`total` are downloads (stage "download": bytes, with the
// file's url; `cached: true` marks a file read from IndexedDB instead) and long Python
// work (stage "task": steps of a sweep, with its `label`).

export const STAGES = ["runtime", "package", "kernels", "ready"];
export const OPS = ["boot", "python"];
export const BACKENDS = ["webgpu", "webgl", "cpu"];

export function isReply(message) {
  return message !== null && typeof message === "object" && "id" in message && "ok" in message;
}

export function isEvent(message) {
  return message !== null && typeof message === "object" && typeof message.event === "string";
}

// Error -> a plain object that survives structured cloning (custom fields of Error do not).
export function errorPayload(error) {
  if (error && typeof error === "object" && "pyType" in error && !(error instanceof Error)) return error;
  return {
    name: error?.name ?? "Error",
    message: String(error?.message ?? error),
    pyType: error?.pyType,
    traceback: error?.traceback ?? error?.stack,
  };
}

// The error a rejected call() carries: an Error with the Python type when there is one.
export class WorkerError extends Error {
  constructor(payload) {
    super(payload.message);
    this.name = payload.pyType ?? payload.name ?? "Error";
    this.pyType = payload.pyType;
    this.traceback = payload.traceback;
  }
}

function unknownOp(op) {
  return { name: "ProtocolError", message: `unknown op ${JSON.stringify(op)}; expected one of ${OPS.join(", ")}` };
}

// Every ArrayBuffer inside `value`, to transfer rather than copy (shared buffers are shared).
export function transferables(value, out = []) {
  if (value === null || typeof value !== "object") return out;
  const buffer = ArrayBuffer.isView(value) ? value.buffer : value instanceof ArrayBuffer ? value : null;
  if (buffer) {
    if (buffer instanceof ArrayBuffer && !out.includes(buffer)) out.push(buffer);
  } else {
    for (const item of Array.isArray(value) ? value : Object.values(value)) transferables(item, out);
  }
  return out;
}

// Page side: one client per worker.
export class WorkerClient {
  constructor(worker, { onProgress = () => {}, onLog = () => {} } = {}) {
    this.worker = worker;
    this.pending = new Map();
    this.nextId = 1;
    this.onProgress = onProgress;
    this.onLog = onLog;
    worker.addEventListener("message", (event) => this._receive(event.data));
    worker.addEventListener("error", (event) => this._failAll({
      name: "WorkerError", message: `the worker failed: ${event.message ?? "unknown error"}`,
    }));
  }

  call(op, args = {}, transfer = []) {
    if (!OPS.includes(op)) return Promise.reject(new WorkerError(unknownOp(op)));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ id, op, args }, transfer);
    });
  }

  _receive(message) {
    if (isEvent(message)) {
      if (message.event === "progress") this.onProgress(message);
      else if (message.event === "log") this.onLog(message);
      return;
    }
    if (!isReply(message)) return;
    const pending = this.pending.get(message.id);
    if (!pending) return;
    this.pending.delete(message.id);
    if (message.ok) pending.resolve(message.result);
    else pending.reject(new WorkerError(message.error));
  }

  // Every pending call rejects with `payload` (the worker is gone).
  failAll(payload) {
    this._failAll(payload);
  }

  _failAll(payload) {
    for (const { reject } of this.pending.values()) reject(new WorkerError(payload));
    this.pending.clear();
  }
}

// Worker side: route requests to handlers[op](args, context) and post replies and events.
// Requests run one at a time, in order: Python is single-threaded and a call may wait on
// the GPU (run_sync) in the middle.
export function serveRequests(scope, handlers) {
  const context = {
    progress(stage, extra = {}) {
      const index = STAGES.indexOf(stage); // -1: not a start-up stage (a download)
      const position = index >= 0 ? { index, of: STAGES.length } : {};
      scope.postMessage({ event: "progress", stage, ...position, ...extra });
    },
    log(level, text) {
      scope.postMessage({ event: "log", level, text: String(text) });
    },
  };
  let queue = Promise.resolve();
  scope.addEventListener("message", (event) => {
    const { id, op, args } = event.data ?? {};
    if (id === undefined) return;
    queue = queue.then(async () => {
      try {
        const handler = handlers[op];
        if (!OPS.includes(op) || !handler) throw new WorkerError(unknownOp(op));
        const result = await handler(args ?? {}, context);
        scope.postMessage({ id, ok: true, result }, transferables(result));
      } catch (error) {
        scope.postMessage({ id, ok: false, error: errorPayload(error) });
      }
    });
  });
  return context;
}
