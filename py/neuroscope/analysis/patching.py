"""Activation patching sweeps: which activations carry the clean run's answer?

Run the model on the corrupted prompt with one activation (a layer's residual
stream at one position, one head's output, ...) taken from the clean run, and
measure the output with a metric; repeat for every cell of the sweep. The clean
run is cached once (by the caller, or by ``patching_sweep``). With
``cells_per_forward=1`` each cell costs one forward pass with one
``InterventionHook(Patch(clean_cache, positions=...), heads=...)`` from the core,
the same JSON-able intervention a user could apply by hand. By default several
cells share one forward pass: the corrupted batch is repeated once per cell and
each copy gets its own patch, which gives the same numbers (each copy's rows
see only their own patch) in far fewer kernel dispatches, what makes sweeps
fast on the GPU backends.

The ``get_act_patch_*`` functions have the signatures, cell order and result
shapes of TransformerLens' ``patching.py`` (``generic_activation_patch`` with
its ``layer_pos`` / ``layer_head_vector`` / ``layer_pos_head_vector`` setters);
head outputs are patched at ``attn.hook_z``, as there. References: Meng et al.,
"Locating and Editing Factual Associations in GPT" (ROME, 2022); Wang et al.,
"Interpretability in the Wild" (2022); Heimersheim & Nanda, "How to use and
interpret activation patching" (2024).

Shapes: b batch, p positions, v vocabulary, l layers, h heads. Metrics take
logits ``[b, p, v]`` and return a scalar (a 0-d or one-element Tensor, or a float).
"""

from ..args import as_indices, is_integer
from ..hooks import InterventionHook
from ..interventions import Patch
from ..names import act_name
from ..progress import progress_reporter
from ..tensor import Tensor, as_tensor, cat
from .common import MissingActivationError, check_metric_positions, mask_rows

# The axes a sweep may iterate over, and the activation axis each one selects.
_AXES = ("layer", "pos", "head")
# By default a forward pass of a batched sweep holds about this many token positions.
TOKENS_PER_FORWARD = 2048


def generic_activation_patch(model, corrupted_tokens, clean_cache, patching_metric, activation_name,
                             index_axis_names, progress=None, layers=None, positions=None, heads=None,
                             attention_mask=None, cells_per_forward=None):
    """Patch ``activation_name`` from ``clean_cache`` into the corrupted run, cell by cell.

    ``index_axis_names`` is ``("layer", "pos")``, ``("layer", "head")`` or
    ``("layer", "pos", "head")``; the result has one axis per name, in that
    order, covering every layer / position / head (or the given ``layers``,
    ``positions``, ``heads``). ``activation_name`` is a short name
    (``"resid_pre"``, ``"z"``, ``"mlp_out"`` ...). ``progress``: None for a
    stderr bar, False for none, or a callable ``(done, total)``.
    ``cells_per_forward``: how many cells share a forward pass (None: as many as
    fit in about ``TOKENS_PER_FORWARD`` positions; 1: one ``Patch`` hook per run).
    The metric always sees one cell's logits, ``[b, p, v]``.
    """
    index_axis_names = tuple(index_axis_names)
    if index_axis_names[0] != "layer" or any(axis not in _AXES for axis in index_axis_names):
        raise ValueError(f"index_axis_names={index_axis_names!r}; expected 'layer' first, then 'pos' "
                         "and/or 'head'")
    # Texts are tokenized (and padded, with their mask) as the clean run's were.
    tokens, attention_mask = model._as_tokens(corrupted_tokens, attention_mask)
    layers = _checked("layers", layers, model.cfg.n_layers)
    names = {layer: act_name(activation_name, layer) for layer in layers}
    point = _hook_point(model, activation_name)
    # Where the swept axes sit in this activation (hook_pattern: [b, h, q, k]; k and v of a
    # grouped-query model have n_kv_heads heads).
    where = {"pos": point.axis("pos"), "head": point.axis("head", "kv_head")}
    for axis, chosen, what in (("pos", positions, "positions"), ("head", heads, "heads")):
        if axis in index_axis_names and where[axis] is None:
            raise ValueError(f"{point.name} has axes {list(point.axes)}, no {axis} axis to sweep over")
        if axis not in index_axis_names and chosen is not None:
            raise ValueError(f"{what}={chosen!r} given, but this sweep's cells are {index_axis_names}: "
                             f"each patches every {axis}; sweep over {axis} too to choose {what}")
    ranges = {
        "layer": layers,
        "pos": _checked("positions", positions, tokens.shape[1]),
        "head": _checked("heads", heads, point.sizes[where["head"]]) if where["head"] is not None else [],
    }
    axes = [ranges[axis] for axis in index_axis_names]
    cells = _product(axes)
    _check_clean(clean_cache, names, tokens, where["pos"], attention_mask)
    check_metric_positions(patching_metric, attention_mask, tokens.shape)
    group = _cells_per_forward(cells_per_forward, len(cells), tokens.shape)
    report = progress_reporter(progress, f"patching {activation_name}")
    report(0, len(cells))
    values = []
    for start in range(0, len(cells), group):
        chunk = [dict(zip(index_axis_names, cell)) for cell in cells[start:start + group]]
        run = _one_cell if len(chunk) == 1 else _cells_at_once
        values += run(model, tokens, clean_cache, patching_metric, names, chunk, attention_mask, where)
        report(len(values), len(cells))
    return as_tensor(values, dtype="float32", backend=model.backend).reshape([len(a) for a in axes])


def _one_cell(model, tokens, clean_cache, metric, names, chunk, attention_mask, where):
    (index,) = chunk
    patch = Patch(clean_cache, positions=[index["pos"]] if "pos" in index else None)
    hook = InterventionHook(name=names[index["layer"]], action=patch,
                            heads=[index["head"]] if "head" in index else None)
    return [_scalar(metric(model.run_with_hooks(tokens, fwd_hooks=[hook], attention_mask=attention_mask)))]


def _cells_at_once(model, tokens, clean_cache, metric, names, chunk, attention_mask, where):
    """One forward pass for ``chunk``: copy i of the corrupted batch gets cell i's patch
    (``where``: the activation's position and head axes)."""
    batch = tokens.shape[0]
    rows = as_tensor([row for _ in chunk for row in range(batch)], dtype="int64", backend=model.backend)
    repeated = tokens.take(rows, axis=0)
    mask = attention_mask
    if mask is not None:
        mask = as_tensor(mask, backend=model.backend).take(rows, axis=0)

    def patch_copies(activation, hook):
        source = clean_cache[hook.name]
        for copy, index in enumerate(chunk):
            if names[index["layer"]] != hook.name:
                continue
            key = [slice(copy * batch, (copy + 1) * batch)] + [slice(None)] * (activation.ndim - 1)
            for axis in ("pos", "head"):
                if axis in index:
                    key[where[axis]] = slice(index[axis], index[axis] + 1)
            activation[tuple(key)] = source[(slice(None),) + tuple(key[1:])]
        return activation

    hooked = sorted({names[index["layer"]] for index in chunk})
    logits = model.run_with_hooks(repeated, fwd_hooks=[(name, patch_copies) for name in hooked],
                                  attention_mask=mask)
    return [_scalar(metric(logits[copy * batch:(copy + 1) * batch])) for copy in range(len(chunk))]


def _cells_per_forward(chosen, n_cells, shape):
    if chosen is None:
        return max(1, min(n_cells, TOKENS_PER_FORWARD // max(1, shape[0] * shape[1])))
    if isinstance(chosen, bool) or not isinstance(chosen, int) or chosen < 1:
        raise ValueError(f"cells_per_forward={chosen!r}; expected a positive integer or None")
    return chosen


def get_act_patch_resid_pre(model, corrupted_tokens, clean_cache, patching_metric, **options):
    """The residual stream entering each layer, by position: ``[n_layers, pos]``."""
    return generic_activation_patch(model, corrupted_tokens, clean_cache, patching_metric, "resid_pre",
                                    ("layer", "pos"), **options)


def get_act_patch_resid_mid(model, corrupted_tokens, clean_cache, patching_metric, **options):
    """The residual stream between attention and MLP, by position: ``[n_layers, pos]``."""
    return generic_activation_patch(model, corrupted_tokens, clean_cache, patching_metric, "resid_mid",
                                    ("layer", "pos"), **options)


def get_act_patch_attn_out(model, corrupted_tokens, clean_cache, patching_metric, **options):
    """Each attention layer's output, by position: ``[n_layers, pos]``."""
    return generic_activation_patch(model, corrupted_tokens, clean_cache, patching_metric, "attn_out",
                                    ("layer", "pos"), **options)


def get_act_patch_mlp_out(model, corrupted_tokens, clean_cache, patching_metric, **options):
    """Each MLP's output, by position: ``[n_layers, pos]``."""
    return generic_activation_patch(model, corrupted_tokens, clean_cache, patching_metric, "mlp_out",
                                    ("layer", "pos"), **options)


def get_act_patch_attn_head_out_all_pos(model, corrupted_tokens, clean_cache, patching_metric, **options):
    """Each head's output (``hook_z``) at every position at once: ``[n_layers, n_heads]``."""
    return generic_activation_patch(model, corrupted_tokens, clean_cache, patching_metric, "z",
                                    ("layer", "head"), **options)


def get_act_patch_attn_head_out_by_pos(model, corrupted_tokens, clean_cache, patching_metric, **options):
    """Each head's output (``hook_z``) at one position: ``[n_layers, pos, n_heads]``."""
    return generic_activation_patch(model, corrupted_tokens, clean_cache, patching_metric, "z",
                                    ("layer", "pos", "head"), **options)


SWEEPS = {
    "resid_pre": get_act_patch_resid_pre,
    "resid_mid": get_act_patch_resid_mid,
    "attn_out": get_act_patch_attn_out,
    "mlp_out": get_act_patch_mlp_out,
    "attn_head_out_all_pos": get_act_patch_attn_head_out_all_pos,
    "attn_head_out_by_pos": get_act_patch_attn_head_out_by_pos,
}
_SWEEP_ACTIVATION = {"attn_head_out_all_pos": "z", "attn_head_out_by_pos": "z"}


def patching_sweep(model, clean_tokens, corrupted_tokens, patching_metric, kind="resid_pre", **options):
    """Cache the clean run (only the activations ``kind`` patches) and sweep: see ``SWEEPS``.

    An ``attention_mask`` option applies to both runs (the prompts must be padded alike).
    """
    if kind not in SWEEPS:
        raise ValueError(f"kind={kind!r}; expected one of {sorted(SWEEPS)}")
    short = _SWEEP_ACTIVATION.get(kind, kind)
    names = [act_name(short, layer) for layer in range(model.cfg.n_layers)]
    _, clean_cache = model.run_with_cache(clean_tokens, names_filter=names,
                                          attention_mask=options.get("attention_mask"))
    return SWEEPS[kind](model, corrupted_tokens, clean_cache, patching_metric, **options)


# -- metrics -------------------------------------------------------------------
def _answer_ids(tokens, batch, backend, what):
    if isinstance(tokens, Tensor):
        tokens = tokens.tolist()
    ids = [tokens] * batch if isinstance(tokens, int) else list(tokens)
    if len(ids) != batch:
        raise ValueError(f"{what}: {len(ids)} token ids for a batch of {batch}; expected one id, "
                         f"or one per example")
    return as_tensor([[int(i)] for i in ids], dtype="int64", backend=backend)  # [b, 1]


def logit_diff_metric(correct, incorrect, position=-1):
    """``metric(logits)``: mean over the batch of ``logit[correct] - logit[incorrect]`` at ``position``.

    ``correct`` / ``incorrect`` are one token id each, or one id per example. ``position`` is
    one position for every example, or one per example (with right padding each prompt's last
    real token is ``mask.sum(-1) - 1``; a sweep refuses a position that reads a pad).
    """
    def logit_diff(logits):
        last = _at_positions(logits, position)  # [b, v]
        batch = last.shape[0]
        right = last.take_along(_answer_ids(correct, batch, last.backend, "correct"), axis=-1)
        wrong = last.take_along(_answer_ids(incorrect, batch, last.backend, "incorrect"), axis=-1)
        return (right - wrong).mean()

    logit_diff.position = position
    return logit_diff


def probability_metric(token, position=-1):
    """``metric(logits)``: mean over the batch of the probability of ``token`` at ``position``
    (one position, or one per example, as ``logit_diff_metric``)."""
    def probability(logits):
        probs = _at_positions(logits, position).softmax(-1)  # [b, v]
        return probs.take_along(_answer_ids(token, probs.shape[0], probs.backend, "token"), axis=-1).mean()

    probability.position = position
    return probability


def _at_positions(logits, position):
    """``logits[:, position]`` ([b, v]), ``position`` one index or one per example."""
    batch, n_positions = logits.shape[:2]
    if is_integer(position):
        as_indices([position], "position", n_positions, negative=True)
        return logits[:, int(position)]
    rows = position.tolist() if hasattr(position, "tolist") else position
    if not isinstance(rows, (list, tuple)) or len(rows) != batch:
        raise ValueError(f"position={position!r}; expected one position, or a list of one per example "
                         f"({batch})")
    rows = as_indices(list(rows), "position", n_positions, negative=True)
    return cat([logits[i:i + 1, p] for i, p in enumerate(rows)], 0)


def normalized_metric(metric, clean_logits, corrupted_logits):
    """``metric`` rescaled so the corrupted run scores 0 and the clean run 1."""
    clean, corrupted = _scalar(metric(clean_logits)), _scalar(metric(corrupted_logits))
    if clean == corrupted:
        raise ValueError(f"the metric is {clean} on both the clean and the corrupted run; "
                         "there is nothing to normalise by")

    def normalized(logits):
        return (_scalar(metric(logits)) - corrupted) / (clean - corrupted)

    normalized.position = getattr(metric, "position", None)
    return normalized


# -- helpers -------------------------------------------------------------------
def _scalar(value):
    if isinstance(value, Tensor):
        if value.size != 1:
            raise ValueError(f"the patching metric returned shape {list(value.shape)}; expected a scalar "
                             "(average over the batch in the metric)")
        return float(value.item())
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"the patching metric returned {value!r}; expected a scalar") from None


def _checked(what, chosen, size):
    if chosen is None:
        return list(range(size))
    chosen = [chosen] if is_integer(chosen) or isinstance(chosen, bool) else list(chosen)
    bad = [i for i in chosen if not is_integer(i) or not 0 <= i < size]
    if bad:
        raise ValueError(f"{what} {bad} requested; expected integers in 0-{size - 1}")
    return [int(i) for i in chosen]


def _product(axes):
    cells = [()]
    for axis in axes:
        cells = [cell + (i,) for cell in cells for i in axis]
    return cells


def _hook_point(model, activation_name):
    """The patched activation's hook point in layer 0 (every layer's has the same axes)."""
    name = act_name(activation_name, 0)
    if name not in model.hook_points:
        raise ValueError(f"this model has no hook point {name!r} to patch")
    return model.hook_points[name]


def _check_clean(clean_cache, names, tokens, pos_axis, attention_mask):
    batch, n_positions = tokens.shape
    for name in names.values():
        if name not in clean_cache:
            raise MissingActivationError(name, "activation patching")
        shape = clean_cache[name].shape
        got = [shape[0], shape[pos_axis]]  # [b, p] wherever the position axis sits
        if got != [batch, n_positions]:
            raise ValueError(f"clean {name} has batch and positions {got}, the corrupted tokens "
                             f"{[batch, n_positions]}: clean and corrupted prompts must have the same shape")
    # Patching is position by position: a clean run padded otherwise would move real tokens'
    # activations onto pads (the cache keeps the mask its run used).
    clean, corrupted = (mask_rows(getattr(clean_cache, "attention_mask", None), tokens.shape),
                        mask_rows(attention_mask, tokens.shape))
    if clean != corrupted:
        row = next(i for i, (a, b) in enumerate(zip(clean, corrupted)) if a != b)
        raise ValueError(f"the clean and the corrupted prompt {row} are padded differently (attention mask "
                         f"{clean[row]} vs {corrupted[row]}): patching moves activations position by "
                         "position, so each pair must tokenize to the same length and be padded alike")


__all__ = ["SWEEPS", "generic_activation_patch", "get_act_patch_attn_head_out_all_pos",
           "get_act_patch_attn_head_out_by_pos", "get_act_patch_attn_out", "get_act_patch_mlp_out",
           "get_act_patch_resid_mid", "get_act_patch_resid_pre", "logit_diff_metric", "TOKENS_PER_FORWARD",
           "normalized_metric", "patching_sweep", "probability_metric"]
