"""Helpers shared by the analyses: position slices, cache look-ups, progress.

``Slice`` follows TransformerLens' ``utilities.slice.Slice`` so that the
``pos_slice`` / ``batch_slice`` arguments of the lens functions mean what they
mean there: None keeps the axis, an int selects one entry and drops the axis, a
tuple is ``slice(*tuple)`` (``(k,)`` is ``:k``), a ``slice`` is itself, and a
list (or int Tensor) of indices selects those entries.
"""


from ..args import is_integer
from ..errors import LayerNotFoundError, NeuroScopeError
from ..tensor import Tensor


class MissingActivationError(NeuroScopeError, KeyError):
    """An analysis needs an activation that the cache does not hold."""

    def __init__(self, name, purpose):
        self.name = name
        super().__init__(f"{purpose} needs {name!r} in the cache; run run_with_cache without a "
                         f"names_filter, or include {name!r} in it")

    def __str__(self):
        return self.args[0]


def cached(cache, name, purpose):
    """``cache[name]``, or a MissingActivationError saying who needed it."""
    if name not in cache:
        raise MissingActivationError(name, purpose)
    return cache[name]


class Slice:
    """A selection along one axis, with TransformerLens' ``Slice`` semantics."""

    def __init__(self, selection=None):
        if isinstance(selection, Slice):
            selection = selection.selection
        if isinstance(selection, Tensor):
            selection = selection.tolist()
        elif hasattr(selection, "tolist") and not isinstance(selection, (list, tuple)):
            selection = selection.tolist()  # numpy arrays and numpy integers
        if isinstance(selection, bool):
            raise ValueError(f"invalid slice {selection!r}: expected None, an int, a tuple, a slice "
                             "or a list of indices")
        if selection is None:
            self.mode, self.selection = "identity", None
        elif isinstance(selection, int):
            self.mode, self.selection = "int", selection
        elif isinstance(selection, tuple):
            self.mode, self.selection = "slice", slice(*selection)
        elif isinstance(selection, slice):
            self.mode, self.selection = "slice", selection
        elif isinstance(selection, list):
            self.mode, self.selection = "array", [int(i) for i in selection]
        else:
            raise ValueError(f"invalid slice {selection!r}: expected None, an int, a tuple, a slice "
                             "or a list of indices")

    def apply(self, tensor, axis=0):
        """``tensor`` with this selection applied along ``axis``."""
        if self.mode == "identity":
            return tensor
        key = [slice(None)] * tensor.ndim
        key[axis] = self.selection
        return tensor[tuple(key)]

    def indices(self, size):
        """The selected indices of an axis of length ``size``, as a list; an int or listed index
        outside ``-size .. size - 1`` is refused (``%`` would wrap it onto another entry)."""
        if self.mode in ("int", "array"):
            listed = [self.selection] if self.mode == "int" else self.selection
            for i in listed:
                if not -size <= i < size:
                    raise IndexError(f"index {i} requested of an axis of {size} entries; expected "
                                     f"{-size} to {size - 1}")
            return [i % size for i in listed]
        return list(range(size))[self.selection if self.selection is not None else slice(None)]

    def __repr__(self):
        return f"Slice({self.selection!r}, mode={self.mode!r})"


def mask_rows(mask, shape):
    """An attention mask (a Tensor, lists or None for no padding) as lists of 0 / 1 per row of
    a ``[batch, pos]`` ``shape``: what two runs compared position by position must share."""
    if mask is None:
        return [[1] * shape[1] for _ in range(shape[0])]
    rows = mask.tolist() if hasattr(mask, "tolist") else mask
    rows = rows if rows and isinstance(rows[0], list) else [rows]
    return [[int(bool(value)) for value in row] for row in rows]


def check_metric_positions(metric, attention_mask, shape):
    """Refuses a metric that says which position it reads (``metric.position``: the metrics of
    patching.py) when that position is a pad of some prompt (right padding, position -1)."""
    position = getattr(metric, "position", None)
    if position is None or attention_mask is None:
        return
    rows = mask_rows(attention_mask, shape)
    chosen = [position] * shape[0] if is_integer(position) else list(
        position.tolist() if hasattr(position, "tolist") else position)
    if len(chosen) != shape[0]:
        return  # the metric itself names the mismatch when it runs
    for row, (mask, at) in enumerate(zip(rows, chosen)):
        if is_integer(at) and -shape[1] <= at < shape[1] and not mask[at]:
            last = [max(i for i, real in enumerate(m) if real) if any(m) else 0 for m in rows]
            raise ValueError(f"the metric reads position {position!r}, a pad in prompt {row}: pass "
                             f"position={last} (each prompt's last real token), or pad on the left")


def final_layer(layer, n_layers, purpose):
    """TransformerLens' convention: None and -1 mean ``n_layers`` (the input to the unembed)."""
    if layer is None or layer == -1:
        return n_layers
    if not is_integer(layer) or not 0 <= layer <= n_layers:
        raise LayerNotFoundError(layer, n_layers, f"0-{n_layers} ({n_layers} is the unembed input), -1 or "
                                 f"None, for {purpose}")
    return int(layer)


def decoder(model):
    """``id -> text`` for one token, memoised; the id as a string when the model has no tokenizer."""
    if model.tokenizer is None:
        return str
    memo = {}

    def decode(token_id):
        if token_id not in memo:
            memo[token_id] = model.tokenizer.decode([token_id])
        return memo[token_id]

    return decode
