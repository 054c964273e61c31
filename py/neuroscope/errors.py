"""Errors raised by NeuroScope.

Every error names the bad value and what was expected, so that a researcher can
fix the call without reading the source.
"""


class NeuroScopeError(Exception):
    """Base class of every error NeuroScope raises on purpose."""


class InvalidTokenError(NeuroScopeError, ValueError):
    """A token id is out of the vocabulary, negative, or the input is empty."""


class InvalidIndexError(NeuroScopeError, IndexError, ValueError):
    """A layer, head, position or neuron index of the wrong type or outside its range.

    Both an ``IndexError`` (out of range) and a ``ValueError`` (a bad argument value), so
    that either ``except`` catches it."""


class LayerNotFoundError(InvalidIndexError):
    """A layer index outside the model's layers (or not an integer) was requested."""

    def __init__(self, layer, n_layers, expected=None):
        self.layer = layer
        self.n_layers = n_layers
        expected = expected or f"0-{n_layers - 1}"
        if _is_integer(layer):
            message = f"layer {layer} requested, model has layers {expected}"
        else:
            message = (f"layer {layer!r} (a {type(layer).__name__}) requested; expected an integer "
                       f"in {expected}")
        super().__init__(message)


class UnknownHookError(NeuroScopeError, KeyError):
    """A hook name (or friendly address) that the model does not have."""

    def __init__(self, name, suggestions=()):
        self.name = name
        self.suggestions = list(suggestions)
        message = f"no hook point named {name!r}"
        if self.suggestions:
            message += "; closest valid names: " + ", ".join(self.suggestions)
        super().__init__(message)

    def __str__(self):
        # KeyError would wrap the message in quotes.
        return self.args[0]


class DatasetError(NeuroScopeError, ValueError):
    """A dataset file, line or record that cannot be read (the message names where)."""


class ModelFormatError(NeuroScopeError, ValueError):
    """A weight or config file is malformed; the message names file and tensor."""


class UnsupportedModelError(NeuroScopeError, ValueError):
    """The architecture is not one NeuroScope implements."""


class ShapeError(NeuroScopeError, ValueError):
    """Tensor shapes that do not fit the operation."""


class GradientError(NeuroScopeError, RuntimeError):
    """A gradient that cannot be computed correctly: nothing tracked, a missing output
    gradient, an in-place edit that would corrupt a recorded graph, an unsupported VJP."""


class StorageQuotaError(NeuroScopeError, OSError):
    """Storing an entry would exceed the storage quota; nothing was written."""

    def __init__(self, key, needed, usage=None, quota=None, detail=None):
        self.key, self.needed, self.usage, self.quota = key, needed, usage, quota
        if quota:
            why = f"it needs {needed} bytes, but the quota is {quota} bytes with {usage} in use"
        else:
            why = f"it needs {needed} bytes and the storage quota is exhausted"
        super().__init__(
            f"cannot store {key!r}: {why}{f' ({detail})' if detail else ''}. Nothing was written; "
            "entries stored earlier are intact. Delete saved entries "
            "(neuroscope.storage.default_storage().delete(key)) or store less")


class StorageKeyError(NeuroScopeError, KeyError):
    """No stored entry under a key."""

    def __init__(self, key, where, available=()):
        self.key = key
        available = sorted(available)
        listed = ", ".join(repr(k) for k in available[:10]) + (", ..." if len(available) > 10 else "")
        super().__init__(f"nothing is stored under {key!r} in {where}; "
                         f"stored keys: {listed or 'none'}")

    def __str__(self):
        return self.args[0]


def _is_integer(value):
    return not isinstance(value, bool) and hasattr(value, "__index__")
