"""``ComputeCluster.browser()``: the Lens page's own cores as a pool of Pyodide workers.

The worker that runs the notebook starts more workers like itself (``worker/pool.js``, one
wasm thread each on the cpu backend) and hands each shard to the next idle one as JSON:
the model reference, the task's name and options, the shard's examples. A member loads the
model from its URL once (its weights come from the IndexedDB cache after the first) and
keeps it; a member that dies has its shard re-run by another. Python waits for each
finished shard with ``run_sync`` (JSPI), so the page stays live and Cancel works between
shards. Tasks travel by name: a built-in task, or a user's function importable as
``module.function`` in every worker (a function defined in a notebook cell is refused).
"""

import importlib
import json

from .. import errors
from .analysis import gather_in_order, run_shard
from .errors import ClusterError
from .tasks import UserTask, make_task


def _host():
    try:
        import neuroscope_js
    except ImportError:
        neuroscope_js = None
    if neuroscope_js is None or getattr(neuroscope_js, "pool", None) is None:
        raise ClusterError("ComputeCluster.browser() is the Lens page's pool of workers and exists only "
                           "in its worker; in CPython use ComputeCluster.local() or a scheduler's address")
    return neuroscope_js


def task_spec(task):
    """A task as JSON-able data another worker rebuilds it from (``make_task``)."""
    if isinstance(task, UserTask):
        function = task.function
        module, name = getattr(function, "__module__", None), getattr(function, "__qualname__", "")
        if not module or module in ("__main__", "builtins") or "<" in name:
            raise ClusterError(f"the task function {name or function!r} is defined here only (module "
                               f"{module!r}); the browser's workers import a task by name: put it in a "
                               "module they can import, or use a built-in task")
        return {"function": f"{module}:{name}"}
    return {"name": task.name, "options": task.options}


def _task_from_spec(spec):
    if "function" in spec:
        module, _, name = spec["function"].partition(":")
        function = importlib.import_module(module)
        for part in name.split("."):
            function = getattr(function, part)
        return UserTask(function, combine=list)
    return make_task(spec["name"], **spec["options"])


def run_payload(payload):
    """A pool member's job (``worker/pool.js``): one shard's partial, or the error, as JSON."""
    job = json.loads(payload)
    try:
        partial = run_shard(job["reference"], _task_from_spec(job["task"]), job["examples"], job["start"],
                            job["context"])
        return json.dumps({"partial": partial})
    except Exception as error:
        kind = type(error)
        return json.dumps({"error": {"type": f"{kind.__module__}:{kind.__qualname__}", "message": str(error),
                                     "example_index": getattr(error, "example_index", None),
                                     "notes": list(getattr(error, "__notes__", []))}})


def _rebuilt(error):
    """The error a member sent back, as its own type when this side can make one."""
    module, _, name = error["type"].partition(":")
    kind = None
    if module in ("builtins", errors.__name__) or module.startswith("neuroscope."):
        try:
            kind = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError):
            kind = None
    try:
        rebuilt = kind(error["message"]) if isinstance(kind, type) and issubclass(kind, Exception) else None
    except Exception:  # a constructor that wants other arguments
        rebuilt = None
    if rebuilt is None:
        rebuilt = RuntimeError(f"{name}: {error['message']}")
    rebuilt.example_index = error["example_index"]
    for note in error["notes"]:
        rebuilt.add_note(note)
    return rebuilt


class BrowserPool:
    """The pool of ``n_workers`` workers (default: ``navigator.hardwareConcurrency``)."""

    kind = "browser"

    def __init__(self, n_workers=None):
        self._js = _host()
        cores = int(self._js.cores)
        if n_workers is None:
            n_workers = cores
        if isinstance(n_workers, bool) or not isinstance(n_workers, int) or n_workers < 1:
            raise ClusterError(f"n_workers={n_workers!r}; expected a positive integer (this page has "
                               f"{cores} cores)")
        self.n_workers = n_workers

    def run_shards(self, reference, task, shards, context, report):
        from pyodide.ffi import run_sync, to_js

        if "://" not in reference["source"]:
            raise ClusterError(f"the model comes from {reference['source']!r}, which only this worker can "
                               "read; the pool's workers load a model from a URL (the demo, a hub name or "
                               "a URL)")
        spec = task_spec(task)
        pool = self._js.pool
        run_sync(pool.ensure(self.n_workers))
        jobs = [{"index": number, "payload": json.dumps({"reference": reference, "task": spec, "start": start,
                                                          "examples": records, "context": context})}
                for number, (start, records) in enumerate(shards)]
        def outcomes():
            for _ in range(len(jobs)):
                outcome = run_sync(pool.next())
                answer = json.loads(outcome.result)
                error = _rebuilt(answer["error"]) if "error" in answer else None
                yield int(outcome.index), answer.get("partial"), error

        try:
            pool.submit(to_js(jobs, dict_converter=_js_object))
            return gather_in_order(outcomes(), len(jobs), report)
        finally:
            pool.cancel()  # drops what is left of the run (nothing, when it finished)

    def __repr__(self):
        return f"ComputeCluster.browser({self.n_workers} workers)"


def _js_object(entries):
    import js
    return js.Object.fromEntries(entries)


__all__ = ["BrowserPool", "run_payload", "task_spec"]
