"""Attention analysis: patterns and per-head scores, with pluggable metrics.

``AttentionAnalyzer(model).analyze_tokens(tokens)`` runs the model once,
caching only the attention patterns, and scores every head with a list of
``AttentionMetric`` objects. Built in: attention entropy, and the
previous-token, duplicate-token and induction scores exactly as TransformerLens'
``head_detector.detect_head`` defines them (``error_measure="mul"`` by default:
the share of a head's attention that falls where the detection pattern is 1;
a batch scores as the mean over its prompts, like ``detect_head`` on a list).
References: TransformerLens ``head_detector.py``; Olsson et al., "In-context
Learning and Induction Heads" (2022); Wang et al., "Interpretability in the
Wild" (2022) for duplicate-token heads.

A metric is a class with ``compute(pattern, tokens) -> [head]``::

    class AttentionEntropy(AttentionMetric):
        name = "entropy"
        def compute(self, pattern, tokens):
            ...

Shapes: b batch, h heads, q query positions, k key positions (q == k here).
Tokens are ``[b, p]`` without padding.
"""

import random

from ..args import as_indices, as_layer, is_integer
from ..tensor import Tensor, arange, as_tensor, cat, full, stack, zeros


class AttentionMetric:
    """A per-head score of one layer's attention: subclass and implement ``compute``."""

    name = None  # the key in ``AttentionAnalysis.scores``; the class name in snake case if None

    def compute(self, pattern, tokens):
        """``pattern [b, h, q, k]`` of one layer, ``tokens [b, p]`` -> a ``[h]`` Tensor."""
        raise NotImplementedError(f"{type(self).__name__} must implement compute(pattern, tokens)")

    @property
    def key(self):
        if self.name:
            return self.name
        title = type(self).__name__
        return "".join("_" + c.lower() if c.isupper() and i else c.lower() for i, c in enumerate(title))

    def __repr__(self):
        return f"{type(self).__name__}()"


class AttentionEntropy(AttentionMetric):
    """Mean entropy (nats) of each head's attention distribution over its query positions."""

    name = "entropy"

    def compute(self, pattern, tokens):
        # 0 log 0 = 0: the floor keeps log finite where the pattern is exactly 0.
        plogp = pattern * pattern.maximum(1e-30).log()  # [b, h, q, k]
        return (-plogp.sum(-1)).mean((0, 2))  # [h]


class DetectionScore(AttentionMetric):
    """How well each head matches a detection pattern, as TransformerLens' ``detect_head`` scores it.

    ``error_measure="mul"``: ``sum(pattern * detection) / sum(pattern)`` per prompt;
    ``"abs"``: ``1 - round(mean(|pattern - detection|) * q, 3)``. ``exclude_bos``
    and ``exclude_current_token`` zero attention to key 0 and to the diagonal.
    """

    def __init__(self, exclude_bos=False, exclude_current_token=False, error_measure="mul"):
        if error_measure not in ("mul", "abs"):
            raise ValueError(f"error_measure={error_measure!r}; expected 'mul' or 'abs'")
        self.exclude_bos, self.exclude_current_token = exclude_bos, exclude_current_token
        self.error_measure = error_measure

    def detection_pattern(self, tokens):
        """``tokens [b, p]`` -> float ``[b, q, k]``, lower triangular, 1 where attention is expected."""
        raise NotImplementedError

    def _keep(self, n, backend):
        """Float ``[q, k]``: 1 on the entries that count after the exclusions."""
        query, key = _grid(n, backend)
        keep = full((n, n), 1.0, backend=backend)
        if self.exclude_bos:
            keep = keep * (key > 0).astype("float32")
        if self.exclude_current_token:
            keep = keep * (1.0 - query.eq(key).astype("float32"))
        return keep

    def compute(self, pattern, tokens):
        n = pattern.shape[-1]
        detection = self.detection_pattern(tokens).unsqueeze(1)  # [b, 1, q, k]
        keep = self._keep(n, pattern.backend) if self.exclude_bos or self.exclude_current_token else None
        if self.error_measure == "mul":
            if keep is not None:
                pattern = pattern * keep
            per_prompt = (pattern * detection).sum((2, 3)) / pattern.sum((2, 3))  # [b, h]
            return per_prompt.mean(0)
        abs_diff = (pattern - detection).abs()  # [b, h, q, k]
        if keep is not None:
            abs_diff = abs_diff * keep
        raw = (abs_diff.mean((2, 3)) * n).tolist()  # [b][h]
        # TransformerLens rounds each prompt's error to 3 decimals before subtracting.
        rounded = [[1 - round(value, 3) for value in row] for row in raw]
        return as_tensor(rounded, dtype="float32", backend=pattern.backend).mean(0)

    def __repr__(self):
        return (f"{type(self).__name__}(exclude_bos={self.exclude_bos}, exclude_current_token="
                f"{self.exclude_current_token}, error_measure={self.error_measure!r})")


def _grid(n, backend):
    """Query and key indices, ``[q, 1]`` and ``[1, k]``."""
    return arange(n, backend=backend).reshape(n, 1), arange(n, backend=backend).reshape(1, n)


def _lower(n, backend, strict=True):
    query, key = _grid(n, backend)
    return ((key < query) if strict else (key <= query)).astype("float32")  # [q, k]


def duplicate_token_pattern(tokens):
    """1 where key ``j < i`` holds the same token as query ``i``: ``[b, q, k]``."""
    same = tokens.unsqueeze(2).eq(tokens.unsqueeze(1)).astype("float32")  # [b, q, k]
    return same * _lower(tokens.shape[-1], tokens.backend)


def previous_token_pattern(tokens):
    """1 on the key just before each query: ``[b, q, k]``."""
    n = tokens.shape[-1]
    query, key = _grid(n, tokens.backend)
    previous = (key + 1).eq(query).astype("float32")  # [q, k]
    return previous.unsqueeze(0).broadcast_to(tokens.shape[0], n, n)


def induction_pattern(tokens):
    """1 on the key just after each earlier copy of the query's token: ``[b, q, k]``."""
    duplicate = duplicate_token_pattern(tokens)  # [b, q, k]
    b, n, _ = duplicate.shape
    # TransformerLens rolls the duplicate pattern one key to the right and zeroes key 0.
    shifted = cat([zeros((b, n, 1), backend=tokens.backend), duplicate[:, :, :n - 1]], axis=2)
    return shifted * _lower(n, tokens.backend, strict=False)


class PreviousTokenScore(DetectionScore):
    name = "previous_token"

    def detection_pattern(self, tokens):
        return previous_token_pattern(tokens)


class DuplicateTokenScore(DetectionScore):
    name = "duplicate_token"

    def detection_pattern(self, tokens):
        return duplicate_token_pattern(tokens)


class InductionScore(DetectionScore):
    name = "induction"

    def detection_pattern(self, tokens):
        return induction_pattern(tokens)


def default_metrics():
    return [AttentionEntropy(), PreviousTokenScore(), DuplicateTokenScore(), InductionScore()]


class HeadScores:
    """Per-head tables ``scores[kind]`` (``[len(layers), len(heads)]`` Tensors) and ways to read them."""

    @property
    def kinds(self):
        return list(self.scores)

    def _kind(self, kind):
        if kind in self.scores:
            return kind
        # TransformerLens' head names ("induction_head") work too.
        if kind.endswith("_head") and kind[:-5] in self.scores:
            return kind[:-5]
        raise KeyError(f"no score named {kind!r}; these scores are {self.kinds}")

    def score(self, kind, layer, head):
        return self.scores[self._kind(kind)][self.layers.index(layer), self.heads.index(head)].item()

    def table(self, kind):
        """``{(layer, head): score}`` for one kind of score."""
        values = self.scores[self._kind(kind)].tolist()
        return {(layer, head): values[i][j] for i, layer in enumerate(self.layers)
                for j, head in enumerate(self.heads)}

    def top_heads(self, kind, k=5, largest=True):
        """The ``k`` heads with the largest (or smallest) score: ``[(layer, head, score), ...]``."""
        ranked = sorted(self.table(kind).items(), key=lambda item: item[1], reverse=largest)
        return [(layer, head, score) for (layer, head), score in ranked[:k]]


class AttentionAnalysis(HeadScores):
    """Patterns and per-head scores of the analysed layers and heads.

    ``patterns[layer]`` is ``[b, h_selected, q, k]``; ``scores[kind]`` is a
    ``[len(layers), len(heads)]`` Tensor whose rows follow ``layers`` and whose
    columns follow ``heads``.
    """

    def __init__(self, layers, heads, patterns, scores, tokens, str_tokens=None):
        self.layers, self.heads = list(layers), list(heads)
        self.patterns, self.scores = patterns, scores
        self.tokens, self.str_tokens = tokens, str_tokens

    def pattern(self, layer, head, batch_index=0):
        """One head's attention pattern ``[q, k]``."""
        if layer not in self.patterns:
            raise KeyError(f"layer {layer} was not analysed; analysed layers: {self.layers}")
        if head not in self.heads:
            raise KeyError(f"head {head} was not analysed; analysed heads: {self.heads}")
        return self.patterns[layer][batch_index, self.heads.index(head)]

    def to_dict(self, include_patterns=False):
        """JSON-able scores (and, optionally, patterns as nested lists)."""
        out = {"layers": self.layers, "heads": self.heads, "tokens": self.tokens.tolist(),
               "scores": {kind: values.tolist() for kind, values in self.scores.items()}}
        if self.str_tokens is not None:
            out["str_tokens"] = self.str_tokens
        if include_patterns:
            out["patterns"] = {str(layer): pattern.tolist() for layer, pattern in self.patterns.items()}
        return out

    def _repr_html_(self):
        from ..display_hooks import html_of  # display imports this module: see display_hooks

        return html_of(self)

    def inspect(self):
        """Fields, shapes and views of this object (``neuroscope.inspect``)."""
        from ..display_hooks import inspect

        return inspect(self)

    def __repr__(self):
        return (f"AttentionAnalysis(layers={self.layers}, {len(self.heads)} heads, scores={self.kinds}, "
                f"tokens={list(self.tokens.shape)})")


class AttentionAnalyzer:
    """Scores attention heads of ``model`` with built-in and custom ``AttentionMetric`` s.

    ``metrics`` (instances or classes) are added to the built-ins; one with the
    name of a built-in replaces it; ``defaults=False`` keeps only yours.
    """

    def __init__(self, model, metrics=(), defaults=True):
        self.model = model
        self.metrics = _merge(default_metrics() if defaults else [], metrics)

    def analyze_tokens(self, tokens, layers=None, heads="all", metrics=()):
        """Run ``tokens`` (ids ``[b, p]`` or text) and score the heads: an ``AttentionAnalysis``."""
        layers = self.select_layers(layers)
        names = [f"blocks.{layer}.attn.hook_pattern" for layer in layers]
        _, cache = self.model.run_with_cache(tokens, names_filter=names)
        return self.analyze_cache(cache, layers, heads, metrics)

    def analyze_cache(self, cache, layers=None, heads="all", metrics=(), tokens=None):
        """Score the patterns already in ``cache`` (its own tokens unless ``tokens`` is given:
        ``[b, p]`` ids, one row per prompt of the cache)."""
        layers = self.select_layers(layers)
        heads = self.select_heads(heads)
        mask = getattr(cache, "attention_mask", None)
        if mask is not None and min(as_tensor(mask, dtype="int64").reshape(-1).tolist()) == 0:
            # the scores average over every query and key, padding's included
            raise ValueError("attention analysis needs prompts of equal length without padding; "
                             "analyse them one at a time")
        tokens = tokens if tokens is not None else cache.tokens
        if tokens is None:
            raise ValueError("this cache does not record its tokens; pass tokens=")
        tokens = as_tensor(tokens, dtype="int64", backend=self.model.backend)
        if tokens.ndim == 1:
            tokens = tokens.unsqueeze(0)
        all_heads = heads == list(range(self.model.cfg.n_heads))
        patterns = {}
        for layer in layers:
            pattern = cache[f"blocks.{layer}.attn.hook_pattern"]  # [b, h, q, k]
            if tuple(tokens.shape) != (pattern.shape[0], pattern.shape[-1]):
                # a single row would broadcast: every prompt scored against the first one's tokens
                raise ValueError(f"tokens have shape {list(tokens.shape)}; the cache's patterns are "
                                 f"{list(pattern.shape)}, so expected [{pattern.shape[0]}, "
                                 f"{pattern.shape[-1]}] (one row of ids per prompt)")
            patterns[layer] = pattern if all_heads else pattern[:, heads]
        scores = {}
        for metric in _merge(self.metrics, metrics):
            rows = [_per_head(metric, patterns[layer], tokens, len(heads)) for layer in layers]
            scores[metric.key] = stack(rows)  # [layers, heads]
        str_tokens = None
        if self.model.tokenizer is not None and tokens.shape[0] == 1:
            str_tokens = self.model.to_str_tokens(tokens)
        return AttentionAnalysis(layers, heads, patterns, scores, tokens, str_tokens)

    def select_layers(self, layers):
        """``layers`` (None: all; an int; negatives count from the end) as a list of layer numbers."""
        n_layers = self.model.cfg.n_layers
        if layers is None:
            layers = list(range(n_layers))
        layers = [layers] if is_integer(layers) or isinstance(layers, str) else list(layers)
        return [as_layer(layer, n_layers, negative=True) % n_layers for layer in layers]

    def select_heads(self, heads):
        """``heads`` ("all", an int or a list) as a list of head numbers."""
        n_heads = self.model.cfg.n_heads
        heads = as_indices(heads, "heads", n_heads)
        return list(range(n_heads)) if heads is None else heads


def _per_head(metric, pattern, tokens, n_heads):
    scores = metric.compute(pattern, tokens)
    if not isinstance(scores, Tensor):  # numpy arrays and lists are fine too
        scores = as_tensor(scores, dtype="float32", backend=pattern.backend)
    if tuple(scores.shape) != (n_heads,):
        raise ValueError(f"{metric!r}.compute returned shape {list(scores.shape)}; expected [{n_heads}] "
                         "(one score per head)")
    return scores


def _merge(base, extra):
    merged = {metric.key: metric for metric in base}
    for metric in extra or ():
        metric = metric() if isinstance(metric, type) else metric
        if not isinstance(metric, AttentionMetric):
            raise TypeError(f"{metric!r} is not an AttentionMetric (subclass it and implement compute)")
        merged[metric.key] = metric
    return list(merged.values())


def repeated_random_tokens(d_vocab, length, batch=1, seed=0, bos=None, low=0):
    """``[b, (1 +) 2 * length]`` ids: a random span repeated once, the induction test bed.

    Drawn with Python's ``random`` so CPython and the browser agree; ``bos``
    (an id) is prepended when given.
    """
    rng = random.Random(seed)
    rows = []
    for _ in range(batch):
        span = [rng.randrange(low, d_vocab) for _ in range(length)]
        rows.append(([bos] if bos is not None else []) + span + span)
    return as_tensor(rows, dtype="int64")


__all__ = ["AttentionAnalysis", "AttentionAnalyzer", "AttentionEntropy", "AttentionMetric", "DetectionScore",
           "DuplicateTokenScore", "InductionScore", "PreviousTokenScore", "default_metrics",
           "duplicate_token_pattern", "induction_pattern", "previous_token_pattern",
           "repeated_random_tokens"]
