"""``TransformerModel.activations_at``: one hook point's activations over a whole dataset.

The examples are tokenized (as ``to_tokens`` does), sorted by length and run in batches
padded on the right with an attention mask (causal attention never lets a real token see
the padding after it, so each example's activations equal a run of it alone); only the
requested hook is kept, and each batch is reduced at once to what was asked:

* ``position="last"``: the last real token of each example -> ``[n_examples, d]``;
* ``"mean"``: the mean over each example's real tokens -> ``[n_examples, d]``;
* ``"all"``: every real token -> ``([n_tokens, d], index [n_tokens, 2])`` with the
  (example, position) of each row.

Rows come back in dataset order. Head-shaped hooks (``z``, ``q`` ...) are flattened to
``d = n_heads * d_head``. With ``cache=True`` the result is stored (CPython: the cache
folder; the browser: IndexedDB) under a key made of the model's content hash, the
dataset's content hash and the arguments; a later call with the same key (also after a
reload) reads it back instead of running the model. A run that fails stores nothing.
"""

import hashlib
import json

from ..args import as_layer
from ..cache import ActivationCache
from ..datasets import Dataset, DatasetError
from ..errors import InvalidTokenError, NeuroScopeError, StorageKeyError, StorageQuotaError, UnknownHookError
from ..hooks import FunctionHook
from ..names import component_name
from ..progress import progress_reporter
from ..tensor import as_tensor, cat

POSITIONS = ("last", "mean", "all")
TOKENS_PER_BATCH = 4096  # padded positions per forward when batch_size is None
KEY_VERSION = 2


def activations_at(model, component, layer, dataset, position="last", batch_size=None, cache=True,
                   progress=None, storage=None):
    name = _hook_name(model, component, layer)
    if position not in POSITIONS:
        raise ValueError(f"position={position!r}; expected one of {', '.join(map(repr, POSITIONS))}")
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int)
                                   or batch_size < 1):
        raise ValueError(f"batch_size={batch_size!r}; expected a positive integer or None")
    dataset = as_dataset(dataset)
    if not len(dataset):
        raise DatasetError(f"the dataset {dataset.name!r} has no examples")
    key = cache_key(model, dataset, name, position) if cache else None
    if key is not None:
        stored = _load(key, storage)
        if stored is not None:
            return stored if position != "all" else (stored["activations"], stored["index"])
    result = _compute(model, name, dataset, position, batch_size, progress)
    if key is not None:
        _store(key, storage, result, position)
    return result if position != "all" else (result["activations"], result["index"])


def as_dataset(dataset):
    """A ``Dataset`` from a Dataset, a list of strings or a list of records."""
    if isinstance(dataset, Dataset):
        return dataset
    if isinstance(dataset, str):
        raise DatasetError("activations_at takes a Dataset or a list of texts, got one string; "
                           "wrap it in a list")
    items = list(dataset)
    return Dataset.from_records([{"text": item} if isinstance(item, str) else item for item in items],
                                name="texts")


def cache_key(model, dataset, hook_name, position):
    """The storage key of ``activations_at``'s result for these arguments (None: not cached)."""
    tokenizer = model.tokenizer
    fingerprint = getattr(tokenizer, "fingerprint", None)
    # The tokenizer turns the texts into what runs (weights and texts alone do not say which
    # ids): one swapped in on the model, or changed in place, is another key. A tokenizer
    # that cannot say what it is (no fingerprint) gets no key: nothing is stored or read.
    if tokenizer is not None and fingerprint is None:
        return None
    tokens = fingerprint() if fingerprint else None
    described = {"v": KEY_VERSION, "model": model.content_hash(), "dataset": dataset.content_hash,
                 "hook": hook_name, "position": position, "bos": model.prepends_bos(), "tokenizer": tokens}
    digest = hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()
    return f"activations-at-{digest[:40]}"


def _hook_name(model, component, layer):
    layer = as_layer(layer, model.cfg.n_layers)
    name = component_name(layer, component)
    points = model.hook_manager.hook_points
    if name not in points:
        raise UnknownHookError(f"component {component!r} -> {name}")
    axes = tuple(points[name].axes or ())
    if axes[:2] != ("batch", "pos"):
        raise NeuroScopeError(f"activations_at needs a hook whose activation is [batch, pos, ...]; {name} is "
                              f"{list(axes)} (use a residual, MLP or per-head component)")
    return name


def _compute(model, name, dataset, position, batch_size, progress):
    rows = []
    for i, text in enumerate(dataset.texts):
        ids = model.token_ids(text)
        if not ids:
            raise InvalidTokenError(f"example {i} of {dataset.name!r} has no tokens")
        if len(ids) > model.cfg.n_ctx:
            raise InvalidTokenError(f"example {i} of {dataset.name!r} is {len(ids)} tokens; the model's "
                                    f"context is {model.cfg.n_ctx}")
        rows.append(ids)
    order = sorted(range(len(rows)), key=lambda i: len(rows[i]))
    report = progress_reporter(progress, f"activations at {name}")
    pieces, index, done, start = [], [], 0, 0
    report(0, len(rows))
    while start < len(order):
        size = batch_size or max(1, TOKENS_PER_BATCH // max(1, len(rows[order[start]])))
        batch = order[start:start + size]
        width = max(len(rows[i]) for i in batch)
        if batch_size is None:  # the batch's longest row sets the padding: keep it in budget
            while len(batch) > 1 and len(batch) * width > TOKENS_PER_BATCH:
                batch = batch[:-1]
                width = max(len(rows[i]) for i in batch)
        pieces.append(_batch(model, name, [rows[i] for i in batch], position, batch, index))
        start += len(batch)
        done += len(batch)
        report(done, len(rows))
    result = cat(pieces, axis=0) if len(pieces) > 1 else pieces[0]
    if position == "all":
        # Rows are grouped by example in batch order; put the examples back in dataset order.
        by_example = {}
        for row, (example, _) in enumerate(index):
            by_example.setdefault(example, []).append(row)
        rows_in_order = [row for example in range(len(rows)) for row in by_example[example]]
        activations = result.take(rows_in_order)
        positions = [index[row] for row in rows_in_order]
        return {"activations": activations,
                "index": as_tensor(positions, dtype="int64", backend=model.backend)}
    inverse = [0] * len(order)
    for row, example in enumerate(order):
        inverse[example] = row
    return result.take(inverse)


def _batch(model, name, batch_rows, position, examples, index):
    lengths = [len(row) for row in batch_rows]
    width = max(lengths)
    tokens, mask = model.pad_token_rows(batch_rows, "right")
    padded = any(length < width for length in lengths)
    act = run_to(model, name, tokens, attention_mask=mask if padded else None)
    b, p = act.shape[0], act.shape[1]
    flat = act.reshape(b * p, -1)
    if position == "last":
        return flat.take([i * p + length - 1 for i, length in enumerate(lengths)])
    if position == "all":
        rows = [i * p + t for i, length in enumerate(lengths) for t in range(length)]
        index.extend((examples[i], t) for i, length in enumerate(lengths) for t in range(length))
        return flat.take(rows)
    weights = as_tensor([[1.0 / length if t < length else 0.0 for t in range(p)] for length in lengths],
                        dtype=act.dtype, backend=model.backend)
    return (act.reshape(b, p, -1) * weights.reshape(b, p, 1)).sum(axis=1)


class _Reached(Exception):
    """Raised by the capturing hook: the rest of the forward pass is not needed."""


def run_to(model, name, tokens, attention_mask=None):
    """The activation at hook ``name`` for ``tokens``, running the model only that far."""
    captured = {}

    def capture(activation, hook):
        captured["activation"] = activation
        raise _Reached

    try:
        model.run_with_hooks(tokens, fwd_hooks=[FunctionHook(name, capture)], attention_mask=attention_mask)
    except _Reached:
        pass
    return captured["activation"]


def _load(key, storage):
    try:
        stored = ActivationCache.load(key, storage)
    except StorageKeyError:
        return None
    names = set(stored.keys())
    if names == {"activations"}:
        return stored["activations"]
    if names == {"activations", "index"}:
        return {"activations": stored["activations"], "index": stored["index"]}
    return None  # not an activations_at entry: recompute (and overwrite it)


def _store(key, storage, result, position):
    tensors = result if position == "all" else {"activations": result}
    try:
        ActivationCache(dict(tensors)).save(key, storage)
    except StorageQuotaError as error:
        import warnings
        warnings.warn(f"activations_at: the result was not cached ({error})", stacklevel=3)


__all__ = ["POSITIONS", "activations_at", "as_dataset", "cache_key", "run_to"]
