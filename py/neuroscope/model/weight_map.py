"""``WeightMap``: what ``TransformerModel.weights`` is (name -> Tensor, read-only)."""

from collections.abc import Mapping


class WeightMap(Mapping):
    """``model.weights``: name -> Tensor, read-only. The blocks hold the tensors they were
    built from, so a weight put into the mapping would change nothing the model computes
    (and the model's content hash would no longer describe it): refused, with the ways
    that do change the weights."""

    __slots__ = ("_weights",)

    def __init__(self, weights):
        self._weights = dict(weights)

    def __getitem__(self, name):
        return self._weights[name]

    def __iter__(self):
        return iter(self._weights)

    def __len__(self):
        return len(self._weights)

    def __setitem__(self, name, value):
        raise TypeError(f"model.weights is read-only (changing {name!r} there would not change what the "
                        f"model computes): build a model with the new weights, TransformerModel(model.cfg, "
                        f"{{**model.weights, {name!r}: tensor}}, model.tokenizer, model.backend), or use "
                        f"an intervention (model.hooks, InterventionHook) to edit activations")

    def __delitem__(self, name):
        self.__setitem__(name, None)
