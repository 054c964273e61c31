// A pool of NeuroScope workers started by this worker: the browser's ComputeCluster.browser()
// (py/neuroscope/distributed/browser.py drives it through neuroscope_js.pool).
//
//   ensure(n)        Promise of the pool's size once n members have booted (each a copy of
//                    ./worker.js: its own Pyodide, the cpu backend with one wasm thread)
//   submit(jobs)     queue [{index, payload}]: payload is a JSON string for
//                    neuroscope.distributed.browser.run_payload; idle members take jobs in order
//   next()           Promise of the next finished job: {index, result} (a JSON string: the
//                    shard's partial, or {"error": ...} when the task raised)
//   terminate(i)     end member i now (as a crash would): its job goes back to the queue and a
//                    new member takes its place
//   cancel()         end a run: drop the queue and outcomes, end the busy members
//   size, busy       members, and members with a job
//
// A member that dies (terminated, crashed, out of memory) has its job re-run by another, at
// most MAX_TRIES times; the pool then answers that job with an error instead of looping.

import { WorkerClient } from "./protocol.js";

const RUN = "from neuroscope.distributed.browser import run_payload\nrun_payload(shard_payload)";
const MAX_TRIES = 3;

export class WorkerPool {
  constructor(bootArgs, log = () => {}) {
    this.bootArgs = { ...bootArgs, backend: "cpu", threads: 1, interrupt: null };
    this.log = log;
    this.members = [];
    this.queue = [];
    this.finished = [];
    this.waiters = [];
    this.tries = new Map();
  }

  get size() {
    return this.members.length;
  }

  get busy() {
    return this.members.filter((member) => member.job).length;
  }

  async ensure(n) {
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`a pool needs at least one worker, got ${n}`);
    while (this.members.length > n) this.members.pop().worker.terminate();
    const starting = [];
    while (this.members.length < n) starting.push(this.start()); // start() adds its member at once
    await Promise.all(starting);
    return this.members.length;
  }

  async start() {
    const worker = new Worker(new URL("./worker.js", import.meta.url), { type: "module" });
    const member = { worker, client: new WorkerClient(worker, { onLog: (m) => this.log(m.level, m.text) }),
      job: null, ready: false, gone: false };
    this.members.push(member);
    // Held by the member while it lives: granted here once it is gone (crashed, terminated).
    const lock = navigator.locks ? `neuroscope-pool-${crypto.randomUUID()}` : null;
    try {
      await member.client.call("boot", { ...this.bootArgs, lock });
    } catch (error) {
      this.remove(member);
      throw error;
    }
    if (lock) navigator.locks.request(lock, () => this.died(member, "it stopped")).catch(() => {});
    member.ready = true;
    this.dispatch();
    return member;
  }

  submit(jobs) {
    for (const job of jobs) this.queue.push({ index: job.index, payload: job.payload });
    this.dispatch();
  }

  next() {
    if (this.finished.length) return Promise.resolve(this.finished.shift());
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  dispatch() {
    for (const member of this.members) {
      if (!member.ready || member.job || !this.queue.length) continue;
      const job = this.queue.shift();
      member.job = job;
      member.client.call("python", { code: RUN, globals: { shard_payload: job.payload } }).then(
        (result) => {
          member.job = null;
          this.finish({ index: job.index, result });
          this.dispatch();
        },
        (error) => this.lost(member, job, error));
    }
  }

  finish(outcome) {
    const waiter = this.waiters.shift();
    if (waiter) waiter(outcome);
    else this.finished.push(outcome);
  }

  // A member's call failed outside Python (the worker is gone): re-run its job elsewhere.
  lost(member, job, error) {
    if (member.job !== job) return;
    member.job = null;
    member.gone = true;
    this.remove(member);
    const tries = (this.tries.get(job.index) ?? 0) + 1;
    this.tries.set(job.index, tries);
    if (tries >= MAX_TRIES) {
      this.finish({ index: job.index, result: JSON.stringify({ error: { type: "RuntimeError",
        message: `shard ${job.index} lost its worker ${tries} times (${error?.message ?? error}); ` +
          "it may need more memory than a worker has" } }) });
    } else {
      this.queue.unshift(job);
      this.log("warn", `a pool worker stopped (${error?.message ?? error}); shard ${job.index} runs again`);
    }
    this.start().catch((reason) => this.log("error", `a pool worker could not start: ${reason.message}`));
    this.dispatch();
  }

  remove(member) {
    const at = this.members.indexOf(member);
    if (at >= 0) this.members.splice(at, 1);
    member.worker.terminate();
  }

  // A member is gone: its pending call fails (lost() re-queues the job), and a new member
  // takes its place.
  died(member, why) {
    if (member.gone) return;
    member.gone = true;
    const busy = !!member.job;
    member.client.failAll({ name: "WorkerLost", message: `a pool worker stopped: ${why}` });
    if (!busy) {
      this.remove(member);
      this.start().catch((reason) => this.log("error", `a pool worker could not start: ${reason.message}`));
    }
  }

  terminate(i) {
    const member = this.members[i];
    if (!member) throw new RangeError(`no pool worker ${i}; the pool has ${this.members.length}`);
    member.worker.terminate();
    this.died(member, `pool worker ${i} was terminated`);
  }

  // The end of a run, finished or not: the queue and outcomes go, busy members are ended.
  cancel() {
    this.queue = [];
    this.finished = [];
    this.waiters = [];
    this.tries.clear();
    for (const member of [...this.members]) {
      if (!member.job) continue;
      member.job = null;
      member.gone = true;
      this.remove(member);
      member.client.failAll({ name: "WorkerLost", message: "the run was cancelled" });
    }
  }
}
