"""What the distributed tasks return: the same objects whichever cluster ran them.

Shapes: n examples, L layers, H heads.
"""

from .. import display_hooks
from ..analysis.attention import HeadScores


class DatasetAttentionScores(HeadScores):
    """Per-head attention scores averaged over a dataset.

    ``scores[kind]``: ``[L, H]`` Tensor of means over the ``n_examples`` texts, rows following
    ``layers`` and columns ``heads`` (kinds: ``previous_token``, ``duplicate_token``,
    ``induction``, ``entropy``: ``analysis.attention``'s scores); ``per_example[kind]``:
    ``[n, L, H]`` when asked for (``per_example=True``), else None.
    """

    def __init__(self, layers, heads, scores, n_examples, per_example=None):
        self.layers, self.heads, self.scores = list(layers), list(heads), scores
        self.n_examples, self.per_example = n_examples, per_example

    def to_dict(self):
        out = {"layers": self.layers, "heads": self.heads, "n_examples": self.n_examples,
               "scores": {kind: values.tolist() for kind, values in self.scores.items()}}
        if self.per_example is not None:
            out["per_example"] = {kind: values.tolist() for kind, values in self.per_example.items()}
        return out

    def _repr_html_(self):
        return display_hooks.html_of(self)

    def inspect(self):
        return display_hooks.inspect(self)

    def __repr__(self):
        return (f"DatasetAttentionScores({self.n_examples} examples, layers={self.layers}, "
                f"{len(self.heads)} heads, kinds={self.kinds})")


class PatchingAverage:
    """An activation-patching sweep averaged over clean/corrupted pairs.

    ``mean``: the sweep's Tensor (``[L, H]`` for heads, ``[L, p]`` by position), each pair
    normalised to 0 (corrupted) .. 1 (clean) before averaging; ``per_example``:
    ``[n, ...]`` when asked for; ``kind``: the ``analysis.patching.SWEEPS`` name."""

    def __init__(self, kind, mean, n_examples, per_example=None):
        self.kind, self.mean, self.n_examples, self.per_example = kind, mean, n_examples, per_example

    def to_dict(self):
        out = {"kind": self.kind, "n_examples": self.n_examples, "mean": self.mean.tolist()}
        if self.per_example is not None:
            out["per_example"] = self.per_example.tolist()
        return out

    def _repr_html_(self):
        return display_hooks.html_of(self)

    def inspect(self):
        return display_hooks.inspect(self)

    def __repr__(self):
        return f"PatchingAverage({self.kind}, {self.n_examples} pairs, shape={list(self.mean.shape)})"


__all__ = ["DatasetAttentionScores", "PatchingAverage"]
