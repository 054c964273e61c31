// The Lens's requests to the Python worker: each action's calls counted busy while they
// run, the latest request of an action winning (an older one's result is dropped as
// Superseded), failures kept per action for its views, and interrupt / restart.

// A result that arrived after a newer request of the same action was made: dropped.
export class Superseded extends Error {
  constructor(what) {
    super(`${what}: superseded by a newer request`);
    this.name = "Superseded";
    this.shown = true;
  }
}

export class Requests {
  // neuroscope: window.neuroscope; onBusy(): the busy set changed; onFailure(what, text):
  // an action's latest request failed (the app shows it).
  constructor(neuroscope, { onBusy, onFailure }) {
    this.neuroscope = neuroscope;
    this.onBusy = onBusy;
    this.onFailure = onFailure;
    this.busy = new Map(); // action -> requests in flight (busy.size: actions running)
    this.tickets = {}; // action -> the number of its latest request (the latest wins)
    this.failures = {}; // action -> the error of its latest request, shown in its views
  }

  // Runs code in the worker, counting it busy under `what`. Only the latest request of each
  // action counts: an older one's result or error is dropped (Superseded). Errors are shown
  // (onFailure) and rethrown marked `shown`.
  async run(what, code, globals) {
    const ticket = this.tickets[what] = (this.tickets[what] ?? 0) + 1;
    try {
      const value = await this.track(what, this.neuroscope.python(code, globals));
      if (ticket !== this.tickets[what]) throw new Superseded(what);
      this.failures[what] = null; // the caller draws the new result
      return value;
    } catch (error) {
      if (error instanceof Superseded || ticket !== this.tickets[what]) throw new Superseded(what);
      if (error.name === "WorkerRestarted") error.shown = true; // restart says so, once
      if (!error.shown) this.fail(what, `${what}: ${error.pyType ?? error.name}: ${error.message}`);
      error.shown = true;
      throw error;
    }
  }

  // An action failed: its views show the error instead of an older result.
  fail(what, text) {
    this.failures[what] = text;
    this.onFailure(what, text);
  }

  // Counts `promise` as busy under `what` until it settles; returns it.
  async track(what, promise) {
    this.busy.set(what, (this.busy.get(what) ?? 0) + 1);
    this.onBusy();
    try {
      return await promise;
    } finally {
      const left = this.busy.get(what) - 1;
      if (left > 0) this.busy.set(what, left);
      else this.busy.delete(what);
      this.onBusy();
    }
  }

  // KeyboardInterrupt in the running Python: false where the page cannot (not cross-origin
  // isolated: no shared memory with the worker).
  interrupt() {
    return Boolean(this.neuroscope.interrupt());
  }

  // KeyboardInterrupt in long work at its next progress report (see main.js cancel()).
  cancel() {
    return Boolean(this.neuroscope.cancel?.());
  }

  // A fresh Python worker; requests in flight are dropped. `reload()` then brings the model back.
  async restart(reload) {
    if (this.restarting) return this.restarting;
    this.restarting = (async () => {
      await this.neuroscope.restart();
      this.busy.clear();
      this.onBusy();
      await reload();
    })();
    try {
      await this.restarting;
    } finally {
      this.restarting = null;
    }
  }
}
