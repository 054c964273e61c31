"""The analyses ``DistributedAnalysis`` runs over shards of a dataset.

A task is three steps: ``prepare`` on the caller's side (whatever every shard must agree
on, such as a histogram's edges), ``partial`` on a worker over one shard's examples (numbered
from ``start``, the shard's place in the dataset), and ``combine`` of the partials *in
shard order* on the caller's side. Partials are plain data (numbers, lists, dicts), so they
pickle for Dask and cross a browser worker's boundary as JSON; sums are kept in float64
and added in shard order, so a result does not depend on which worker ran which shard.

Built in: ``attention_pattern_analysis``, ``top_activating_neurons``, ``neuron_profile``,
``activation_patching`` and ``activations``; ``UserTask(partial, combine)`` wraps a user's pair of functions.
Every task runs one example at a time where it can, so an error names its example (see
``at_example``).

Shapes: L layers, H heads, p positions, d a hook point's width.
"""

import contextlib
import heapq

from ..analysis.attention import AttentionAnalyzer
from ..analysis.neurons import EXAMPLES_PER_CHUNK, NeuronAnalyzer, NeuronScan
from ..analysis.patching import SWEEPS, logit_diff_metric, normalized_metric, patching_sweep
from ..errors import NeuroScopeError
from ..tensor import as_tensor, cat
from .results import DatasetAttentionScores, PatchingAverage


class DistributedTaskError(NeuroScopeError, ValueError):
    """A task name, an option or an example a task cannot use."""


@contextlib.contextmanager
def at_example(index):
    """Errors raised inside carry the dataset index of the example being analysed: as
    ``error.example_index`` and as a note on the traceback; the error keeps its type."""
    try:
        yield
    except Exception as error:
        if getattr(error, "example_index", None) is None:
            error.example_index = index
            error.add_note(f"(while analysing example {index} of the dataset)")
        raise


def name_failing_example(error, run_one, examples, start):
    """Give ``error`` (raised by a whole shard) the index of the first example that raises
    the same type when run alone (``run_one(example)``), as ``at_example`` would."""
    if getattr(error, "example_index", None) is not None:
        return
    for offset, example in enumerate(examples):
        try:
            run_one(example)
        except type(error):
            error.example_index = start + offset
            error.add_note(f"(while analysing example {start + offset} of the dataset)")
            return
        except Exception:  # another failure: keep looking for the original one
            continue


def _host(tensor):
    """A tensor's values for the trip back: a numpy array in CPython, lists in the browser."""
    return tensor.numpy() if tensor.backend.name in ("numpy", "torch") else tensor.tolist()


def _text(example, index):
    text = example.get("text") if isinstance(example, dict) else example
    if not isinstance(text, str):
        raise DistributedTaskError(f"example {index} has no 'text' string (got {example!r:.80})")
    return text


class AttentionPatternTask:
    """Per-head attention scores averaged over the dataset: ``DatasetAttentionScores``.

    Options: ``layers`` (None: all), ``heads`` ("all"), ``per_example`` (False: keep each
    example's ``[L, H]`` tables too). Each text is analysed alone (no padding)."""

    name = "attention_pattern_analysis"
    chunked = False

    def __init__(self, layers=None, heads="all", per_example=False):
        self.layers, self.heads, self.per_example = layers, heads, bool(per_example)

    def prepare(self, model, dataset):
        analyzer = AttentionAnalyzer(model)
        return {"layers": analyzer.select_layers(self.layers), "heads": analyzer.select_heads(self.heads)}

    def partial(self, model, examples, start, context):
        analyzer = AttentionAnalyzer(model)
        sums, rows = None, []
        for offset, example in enumerate(examples):
            with at_example(start + offset):
                tokens = model.to_tokens(_text(example, start + offset))
                analysis = analyzer.analyze_tokens(tokens, context["layers"], context["heads"])
                tables = {kind: values.tolist() for kind, values in analysis.scores.items()}
            if sums is None:
                sums = {kind: [[0.0] * len(row) for row in table] for kind, table in tables.items()}
            for kind, table in tables.items():
                sums[kind] = [[a + b for a, b in zip(x, y)] for x, y in zip(sums[kind], table)]
            if self.per_example:
                rows.append(tables)
        return {"n": len(examples), "sums": sums, "per_example": rows if self.per_example else None}

    def combine(self, partials, model, dataset, context):
        total, sums, rows = 0, None, []
        for part in partials:
            if not part["n"]:
                continue
            total += part["n"]
            sums = part["sums"] if sums is None else {
                kind: [[a + b for a, b in zip(x, y)] for x, y in zip(sums[kind], part["sums"][kind])]
                for kind in sums}
            rows += part["per_example"] or []
        if not total:
            raise DistributedTaskError("the dataset is empty: no attention scores to average")
        means = {kind: as_tensor([[value / total for value in row] for row in table], dtype="float32",
                                 backend=model.backend) for kind, table in sums.items()}
        per_example = None
        if self.per_example:
            per_example = {kind: as_tensor([row[kind] for row in rows], dtype="float32",
                                           backend=model.backend) for kind in means}
        return DatasetAttentionScores(context["layers"], context["heads"], means, total, per_example)


class TopNeuronsTask:
    """``NeuronAnalyzer(model, layer).top_tokens_all(dataset, ...)``, shard by shard: a
    ``NeuronSummary``. The histogram's edges are fixed by the caller from the dataset's
    first chunk, as the one-process pass fixes them."""

    name = "top_activating_neurons"
    chunked = True

    def __init__(self, layer=None, count=20, context=8, bins=40, dead_threshold=0.0, exclude_bos=True):
        if layer is None:
            raise DistributedTaskError("top_activating_neurons needs layer=: the MLP layer whose neurons "
                                       "to rank")
        self.layer, self.count, self.context, self.bins = layer, count, context, bins
        self.dead_threshold, self.exclude_bos = dead_threshold, exclude_bos

    def prepare(self, model, dataset):
        analyzer = NeuronAnalyzer(model, self.layer)
        edges = None
        for start in range(0, len(dataset), EXAMPLES_PER_CHUNK):  # the first chunk with tokens
            edges = analyzer.scan(dataset[start:start + EXAMPLES_PER_CHUNK], self.count, self.bins,
                                  self.exclude_bos, progress=False).edges
            if edges is not None:
                break
        return {"edges": edges}

    def partial(self, model, examples, start, context):
        scan = NeuronAnalyzer(model, self.layer).scan(examples, self.count, self.bins, self.exclude_bos,
                                                      edges=context["edges"], start=start, progress=False)
        return {key: value for key, value in vars(scan).items()}

    def combine(self, partials, model, dataset, context):
        analyzer = NeuronAnalyzer(model, self.layer)
        scan = NeuronScan(analyzer.d_mlp, self.count, self.bins, context["edges"])
        for part in partials:
            shard = NeuronScan(analyzer.d_mlp, self.count, self.bins)
            shard.__dict__.update(part)
            shard.tops = [[tuple(entry) for entry in entries] for entries in shard.tops]
            scan.merge(shard)
        return analyzer.summary(scan, dataset, self.context, self.dead_threshold)


class NeuronProfileTask:
    """``NeuronAnalyzer(model, layer).profile(neuron, dataset, ...)`` shard by shard: the
    same dict (top tokens, histogram, max/min/mean, fraction active)."""

    name = "neuron_profile"
    chunked = True

    def __init__(self, layer=None, neuron=None, count=20, context=8, bins=30, exclude_bos=True):
        if layer is None or neuron is None:
            raise DistributedTaskError("neuron_profile needs layer= and neuron=")
        self.layer, self.neuron, self.count, self.context = layer, neuron, count, context
        self.bins, self.exclude_bos = bins, exclude_bos

    def prepare(self, model, dataset):
        return {}

    def partial(self, model, examples, start, context):
        analyzer = NeuronAnalyzer(model, self.layer)
        best, values = analyzer.profile_scan(self.neuron, examples, self.count, self.exclude_bos, start=start,
                                             progress=False)
        return {"best": best, "values": values}

    def combine(self, partials, model, dataset, context):
        best, values = [], []
        for part in partials:
            best = heapq.nlargest(self.count, best + [tuple(entry) for entry in part["best"]])
            values += part["values"]
        analyzer = NeuronAnalyzer(model, self.layer)
        return analyzer.profile_summary(best, values, dataset, self.context, self.bins)


_PATCH_KINDS = {"heads": "attn_head_out_all_pos", "resid": "resid_pre", "mlp": "mlp_out"}
_FIELDS = {"clean": ("clean", "prompt", "text"), "corrupted": ("corrupted", "corrupted_prompt"),
           "answer": ("answer",), "wrong": ("wrong", "incorrect")}


def _pair_field(example, role, index):
    for key in _FIELDS[role]:
        if isinstance(example, dict) and key in example:
            return example[key]
    raise DistributedTaskError(f"example {index} has none of the fields {list(_FIELDS[role])} (a patching "
                               f"pair needs clean, corrupted, answer and wrong); got {example!r:.100}")


def _first_token(model, answer):
    if isinstance(answer, int):
        return answer
    ids = model.token_ids(answer)
    if model.prepends_bos():
        ids = ids[1:]
    if not ids:
        raise DistributedTaskError(f"answer {answer!r} has no tokens")
    return ids[0]


class PatchingTask:
    """An activation-patching sweep (``analysis.patching.SWEEPS``; "heads", "resid" and
    "mlp" name the Lens's three) of each clean/corrupted pair, scored by the logit
    difference answer - wrong normalised per pair (0: corrupted run, 1: clean), averaged
    over pairs: ``PatchingAverage``. A sweep by position needs pairs of one token length."""

    name = "activation_patching"
    chunked = False

    def __init__(self, kind="heads", per_example=False):
        kind = _PATCH_KINDS.get(kind, kind)
        if kind not in SWEEPS:
            raise DistributedTaskError(f"kind={kind!r}; expected one of "
                                       f"{sorted(SWEEPS) + sorted(_PATCH_KINDS)}")
        self.kind, self.per_example = kind, bool(per_example)

    def prepare(self, model, dataset):
        return {}

    def partial(self, model, examples, start, context):
        sums, rows, shape = None, [], None
        for offset, example in enumerate(examples):
            index = start + offset
            with at_example(index):
                clean = model.to_tokens(_pair_field(example, "clean", index))
                corrupted = model.to_tokens(_pair_field(example, "corrupted", index))
                if clean.shape != corrupted.shape:
                    raise DistributedTaskError(
                        f"example {index}: the clean prompt has {clean.shape[1]} tokens and the corrupted "
                        f"one {corrupted.shape[1]}; patching needs equal lengths")
                metric = logit_diff_metric(_first_token(model, _pair_field(example, "answer", index)),
                                           _first_token(model, _pair_field(example, "wrong", index)))
                normalized = normalized_metric(metric, model(clean), model(corrupted))
                values = patching_sweep(model, clean, corrupted, normalized, self.kind, progress=False)
                table = values.tolist()
            if shape is None:
                shape, sums = list(values.shape), _zeros_like(table)
            elif list(values.shape) != shape:
                raise DistributedTaskError(
                    f"example {index}: its {self.kind} sweep has shape {list(values.shape)}, earlier ones "
                    f"{shape}; pairs of one token length are needed to average a sweep by position")
            sums = _add(sums, table)
            if self.per_example:
                rows.append(table)
        return {"n": len(examples), "shape": shape, "sums": sums,
                "per_example": rows if self.per_example else None}

    def combine(self, partials, model, dataset, context):
        total, sums, shape, rows = 0, None, None, []
        for part in partials:
            if not part["n"]:
                continue
            if shape is not None and part["shape"] != shape:
                raise DistributedTaskError(
                    f"shards have {self.kind} sweeps of shapes {shape} and {part['shape']}; pairs of one "
                    "token length are needed to average a sweep by position")
            shape, total = part["shape"], total + part["n"]
            sums = part["sums"] if sums is None else _add(sums, part["sums"])
            rows += part["per_example"] or []
        if not total:
            raise DistributedTaskError("the dataset is empty: no patching pairs to average")
        mean = as_tensor(_scale(sums, 1.0 / total), dtype="float32", backend=model.backend)
        per_example = as_tensor(rows, dtype="float32", backend=model.backend) if self.per_example else None
        return PatchingAverage(self.kind, mean, total, per_example)


class ActivationsTask:
    """``model.activations_at(component, layer, dataset, position)`` shard by shard, in
    dataset order: ``[n_examples, d]``, or ``([n_tokens, d], index [n_tokens, 2])`` for
    ``position="all"`` (the index's example numbers are the dataset's). ``layer`` may be a
    list: then ``{layer: result}`` (the features of ``probe_layers(..., features=)``)."""

    name = "activations"
    chunked = True

    def __init__(self, component=None, layer=None, position="last"):
        if component is None or layer is None:
            raise DistributedTaskError("activations needs component= and layer= (as model.activations_at)")
        self.component, self.layer, self.position = component, layer, position
        self.layers = list(layer) if isinstance(layer, (list, tuple)) else [layer]

    def prepare(self, model, dataset):
        return {}

    def partial(self, model, examples, start, context):
        def run(chunk):
            return [model.activations_at(self.component, layer, chunk, self.position, cache=False,
                                         progress=False) for layer in self.layers]

        try:
            results = run(examples)
        except Exception as error:
            name_failing_example(error, lambda example: run([example]), list(examples), start)
            raise
        if self.position == "all":
            index = [[start + text, position] for text, position in results[0][1].tolist()]
            return {"acts": [_host(acts) for acts, _ in results], "index": index}
        return {"acts": [_host(acts) for acts in results]}

    def combine(self, partials, model, dataset, context):
        parts = [part for part in partials if len(part["acts"][0])]
        if not parts:
            raise DistributedTaskError("the dataset is empty: no activations to gather")
        out = {}
        for number, layer in enumerate(self.layers):
            acts = cat([as_tensor(part["acts"][number], dtype="float32", backend=model.backend)
                        for part in parts])
            if self.position == "all":
                rows = [row for part in parts for row in part["index"]]
                acts = acts, as_tensor(rows, dtype="int64", backend=model.backend)
            out[layer] = acts
        return out if isinstance(self.layer, (list, tuple)) else out[self.layers[0]]


class UserTask:
    """A user's analysis: ``partial(model, examples) -> partial`` over one shard's examples
    (a list of records) and ``combine(partials) -> result`` over the partials in dataset order."""

    chunked = False

    def __init__(self, partial, combine):
        if not callable(partial) or not callable(combine):
            raise DistributedTaskError(f"a user task is a function (model, examples) -> partial with a "
                                       f"combine= function; got task={partial!r}, combine={combine!r}")
        self.function, self.combiner = partial, combine
        self.name = getattr(partial, "__name__", "user task")

    def prepare(self, model, dataset):
        return {}

    def partial(self, model, examples, start, context):
        examples = list(examples)
        try:
            return self.function(model, examples)
        except Exception as error:
            name_failing_example(error, lambda example: self.function(model, [example]), examples, start)
            raise

    def combine(self, partials, model, dataset, context):
        return self.combiner(list(partials))


TASKS = {task.name: task for task in (AttentionPatternTask, TopNeuronsTask, NeuronProfileTask, PatchingTask,
                                      ActivationsTask)}


def make_task(task, combine=None, **options):
    """A task object from a built-in name (with its options) or a user's function."""
    if callable(task) and not isinstance(task, type):
        if options:
            raise DistributedTaskError(f"options {sorted(options)} go with a built-in task, not a user's "
                                       "function")
        return UserTask(task, combine)
    if combine is not None:
        raise DistributedTaskError("combine= goes with a user's task function, not a built-in task name")
    if task not in TASKS:
        raise DistributedTaskError(f"task={task!r}; expected one of {sorted(TASKS)} or a function "
                                   "(model, examples) -> partial with combine=")
    try:
        made = TASKS[task](**options)
    except TypeError as error:
        raise DistributedTaskError(f"task {task!r}: {error}") from None
    made.options = dict(options)  # how another process rebuilds it (browser.task_spec)
    return made


def _zeros_like(table):
    return [_zeros_like(item) for item in table] if isinstance(table, list) else 0.0


def _add(a, b):
    return [_add(x, y) for x, y in zip(a, b)] if isinstance(a, list) else a + b


def _scale(a, factor):
    return [_scale(x, factor) for x in a] if isinstance(a, list) else a * factor


__all__ = ["TASKS", "ActivationsTask", "AttentionPatternTask", "DistributedTaskError", "NeuronProfileTask",
           "PatchingTask",
           "TopNeuronsTask", "UserTask", "at_example", "make_task", "name_failing_example"]
