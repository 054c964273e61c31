"""``DistributedAnalysis``: one analysis over a dataset, sharded across a cluster's workers.

The dataset is cut into shards of consecutive examples (``shard_size`` of them, a multiple
of the neuron pass's chunk, fixed by the dataset's size alone); each shard is one task. A
task carries the model *by reference* — its source (folder, URL or hub name), dtype,
backend and content hash — and the shard's examples; each worker process loads the model
once, checks its hash, and keeps it for every later task (``worker_model``). Partials come
back and are combined in shard order, so the result is the same on any cluster, and equal
to ``cluster=None`` (every shard in this process, the model used as it is).

Faults are the engine's: Dask re-runs the tasks of a worker that dies; an error a task
raises comes back as itself, with the example's index (``tasks.at_example``).
"""

import os
import threading
import uuid

from ..errors import NeuroScopeError
from ..model.activations import as_dataset
from ..progress import progress_reporter
from .tasks import make_task

SHARD_QUANTUM = 64  # = analysis.neurons.EXAMPLES_PER_CHUNK: shards hold whole chunks
MAX_SHARDS = 1024  # the default shard size keeps the task count at most about this


class ModelReferenceError(NeuroScopeError, ValueError):
    """A model workers cannot load by reference, or one whose files no longer match it."""


def model_reference(model):
    """What a worker needs to load ``model``: ``{"source", "dtype", "backend", "content_hash"}``."""
    source = getattr(model, "source", None)
    if not isinstance(source, str) or not source or source.startswith("random("):
        raise ModelReferenceError(
            f"the model's source is {source!r}: workers load a model from its files (a folder, a URL or "
            "a hub name); save this one as a Hugging Face folder and load it from there")
    if "://" not in source and os.path.exists(source):
        source = os.path.abspath(source)
    dtype = next(iter(model.weights.values())).dtype
    return {"source": source, "dtype": dtype, "backend": model.backend.name,
            "content_hash": model.content_hash()}


_models = {}
_models_lock = threading.Lock()
loads = 0  # models this process has loaded for tasks (tests read it on each worker)


def worker_model(reference):
    """The model of ``reference``, loaded on the first task of this process and kept."""
    global loads
    key = tuple(sorted(reference.items()))
    with _models_lock:
        model = _models.get(key)
        if model is None:
            from ..backends import set_backend
            from ..model import TransformerModel
            backend = None
            if reference["backend"] in ("numpy", "torch"):
                backend = set_backend(reference["backend"])
            model = TransformerModel.from_huggingface(reference["source"], backend=backend,
                                                      dtype=reference["dtype"])
            if model.content_hash() != reference["content_hash"]:
                raise ModelReferenceError(
                    f"the model at {reference['source']!r} has content hash {model.content_hash()[:16]}..., "
                    f"the analysis's model {reference['content_hash'][:16]}...: its weights were changed "
                    "after loading (fold_ln, edits) or its files changed; save the model as it is and load "
                    "it from there")
            _models.clear()  # one model per worker process at a time
            _models[key] = model
            loads += 1
    return model


def run_shard(reference, task, examples, start, context):
    """A worker's task: the partial of ``task`` over one shard (``examples`` from ``start``)."""
    return task.partial(worker_model(reference), examples, start, context)


def default_shard_size(n_examples):
    """Whole neuron chunks, at most about ``MAX_SHARDS`` shards: a function of the size alone."""
    quanta = -(-n_examples // (SHARD_QUANTUM * MAX_SHARDS))
    return SHARD_QUANTUM * max(1, quanta)


def gather_in_order(outcomes, n_shards, report, cancel_after=None):
    """The partials of ``n_shards`` shards from ``outcomes``, ``(number, partial, error)`` in
    the order they finish. A failed shard's error is raised once every earlier shard is in,
    and only the first failing shard's: the same error as a run in one process, whichever
    worker was quicker. ``cancel_after(number)`` drops the work past a failed shard."""
    partials, done, failed = [None] * n_shards, [False] * n_shards, None
    finished = 0
    for number, partial, error in outcomes:
        if failed is not None and number > failed[0]:
            continue
        if error is not None:
            failed = (number, error)
            if cancel_after is not None:
                cancel_after(number)
        else:
            partials[number], done[number] = partial, True
            finished += 1
            report(finished, n_shards)
        if failed is not None and all(done[:failed[0]]):
            raise failed[1]
        if finished == n_shards:
            break
    return partials


class DistributedAnalysis:
    """``DistributedAnalysis(model, cluster, task, dataset, **options).run()``.

    ``cluster``: a ``ComputeCluster`` (Dask), ``ComputeCluster.browser()`` (the page's worker
    pool) or None (this process). ``task``: ``"attention_pattern_analysis"``,
    ``"top_activating_neurons"`` (``layer=``...), ``"activation_patching"`` (``kind=``),
    ``"activations"`` (``component=``, ``layer=``, ``position=``), or a function
    ``(model, examples) -> partial`` with ``combine=`` a function of the list of partials.
    ``dataset``: a ``Dataset`` or a list of texts / records. ``shard_size``: examples per
    task (default ``default_shard_size``); ``progress``: None for a bar over the tasks,
    False for none, or a callable ``(done, total)``. Other options go to the task.
    """

    def __init__(self, model, cluster, task, dataset, *, combine=None, shard_size=None, progress=None,
                 **options):
        self.model, self.cluster, self.progress = model, cluster, progress
        self.dataset = as_dataset(dataset)
        self.task = make_task(task, combine, **options)
        if shard_size is None:
            shard_size = default_shard_size(len(self.dataset))
        if isinstance(shard_size, bool) or not isinstance(shard_size, int) or shard_size < 1:
            raise ValueError(f"shard_size={shard_size!r}; expected a positive integer")
        if self.task.chunked and shard_size % SHARD_QUANTUM:
            raise ValueError(f"shard_size={shard_size} for {self.task.name}: expected a multiple of "
                             f"{SHARD_QUANTUM} (the pass's chunk), so shards give the one-process result")
        self.shard_size = shard_size

    def shards(self):
        """``[(start, records)]``: the dataset's shards in order."""
        n = len(self.dataset)
        return [(start, self.dataset[start:start + self.shard_size].to_records())
                for start in range(0, n, self.shard_size)]

    def run(self):
        """Run every shard and combine: the task's result (see the class docstring)."""
        context = self.task.prepare(self.model, self.dataset)
        shards = self.shards()
        report = progress_reporter(self.progress, f"{self.task.name} over {len(self.dataset)} examples")
        report(0, len(shards))
        if self.cluster is None:
            partials = []
            for start, records in shards:
                partials.append(self.task.partial(self.model, records, start, context))
                report(len(partials), len(shards))
        elif getattr(self.cluster, "kind", None) == "dask":
            partials = self._run_dask(shards, context, report)
        elif getattr(self.cluster, "kind", None) == "browser":
            reference = model_reference(self.model)
            partials = self.cluster.run_shards(reference, self.task, shards, context, report)
        else:
            raise TypeError(f"cluster={self.cluster!r}; expected a ComputeCluster, ComputeCluster.browser() "
                            "or None")
        return self.task.combine(partials, self.model, self.dataset, context)

    def _run_dask(self, shards, context, report):
        from distributed import as_completed

        client = self.cluster.client
        reference = model_reference(self.model)
        run = uuid.uuid4().hex[:8]
        futures = [client.submit(run_shard, reference, self.task, records, start, context, pure=False,
                                 key=f"neuroscope-{self.task.name}-{run}-{number}")
                   for number, (start, records) in enumerate(shards)]
        order = {future.key: number for number, future in enumerate(futures)}

        def outcomes():
            for future in as_completed(futures, loop=client.loop):
                try:
                    yield order[future.key], future.result(), None
                except Exception as error:  # the task's own error, re-raised by Dask
                    yield order[future.key], None, error

        def cancel_after(number):
            client.cancel(futures[number + 1:])

        try:
            return gather_in_order(outcomes(), len(futures), report, cancel_after)
        finally:
            client.cancel(futures)

    def __repr__(self):
        return (f"DistributedAnalysis({self.task.name}, {len(self.dataset)} examples in shards of "
                f"{self.shard_size}, cluster={self.cluster!r})")


__all__ = ["DistributedAnalysis", "ModelReferenceError", "default_shard_size", "gather_in_order",
           "model_reference", "run_shard", "worker_model"]
