"""Errors raised by NeuroScope.

Every error names the bad value and what was expected, so that a researcher can
fix the call without reading the source.
"""


class NeuroScopeError(Exception):
    """Base class of every error NeuroScope raises on purpose."""


class InvalidTokenError(NeuroScopeError, ValueError):
    """A token id is out of the vocabulary, negative, or the input is empty."""


class LayerNotFoundError(NeuroScopeError, IndexError):
    """A layer index outside the model's layers was requested."""

    def __init__(self, layer, n_layers):
        self.layer = layer
        self.n_layers = n_layers
        super().__init__(
            f"layer {layer} requested, model has layers 0-{n_layers - 1}")


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


class ModelFormatError(NeuroScopeError, ValueError):
    """A weight or config file is malformed; the message names file and tensor."""


class UnsupportedModelError(NeuroScopeError, ValueError):
    """The architecture is not one NeuroScope implements."""


class ShapeError(NeuroScopeError, ValueError):
    """Tensor shapes that do not fit the operation."""
