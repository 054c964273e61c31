"""Input attribution: integrated gradients of a metric with respect to the token embeddings.

``integrated_gradients(model, tokens, metric)`` scores each input token by

    saliency[b, p] = sum over d of (e - e_base)[b, p, d] * mean over alpha of d metric / d e(alpha)[b, p, d]

with ``e(alpha) = e_base + alpha (e - e_base)`` at ``hook_embed`` (the token embeddings,
before positions are added) and alpha at the midpoints of ``steps`` equal intervals of
[0, 1] (Sundararajan, Taly & Yan, "Axiomatic Attribution for Deep Networks", 2017). The
baseline is the zero embedding, or the embeddings of baseline tokens (a corrupted prompt, a
padding token). Completeness: the saliencies sum to metric(tokens) - metric(baseline) up
to the Riemann sum's error, reported as ``delta``.
"""

from ..progress import progress_reporter
from ..tensor import Tensor, as_tensor

_EMBED = "hook_embed"


class TokenSaliency:
    """``scores`` ``[batch, pos]``; ``tokens``; ``str_tokens`` (one list per row, when the model
    has a tokenizer); ``value`` / ``baseline_value`` the metric at the input and the baseline;
    ``delta`` = sum(scores) - (value - baseline_value), the integral's approximation error."""

    def __init__(self, scores, tokens, str_tokens, value, baseline_value, steps):
        self.scores, self.tokens, self.str_tokens = scores, tokens, str_tokens
        self.value, self.baseline_value, self.steps = value, baseline_value, steps
        self.delta = float(scores.sum().item()) - (value - baseline_value)

    def __repr__(self):
        return (f"TokenSaliency(shape={list(self.scores.shape)}, steps={self.steps}, "
                f"metric {self.value:.4g} vs baseline {self.baseline_value:.4g}, delta {self.delta:.2e})")

    def to_dict(self):
        return {"scores": self.scores.tolist(), "tokens": self.tokens.tolist(), "str_tokens": self.str_tokens,
                "value": self.value, "baseline_value": self.baseline_value, "delta": self.delta,
                "steps": self.steps}


def integrated_gradients(model, tokens, metric, baseline=None, steps=20, attention_mask=None, progress=None):
    """Per-token integrated gradients of ``metric(logits)`` (a one-element Tensor) with respect
    to the token embeddings; see the module docstring. ``baseline``: None (the zero embedding),
    token ids (or a text) of the same shape as ``tokens``, or embeddings ``[batch, pos, d_model]``.
    Returns a ``TokenSaliency``."""
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps={steps!r}; expected a positive integer")
    tokens, mask = model._as_tokens(tokens, attention_mask)
    embed = model.run_with_cache(tokens, names_filter=_EMBED, attention_mask=mask)[1][_EMBED]
    base = _baseline(model, baseline, embed, tokens, mask)
    report = progress_reporter(progress, "integrated gradients")
    total, difference = None, embed - base
    report(0, steps)
    for step in range(steps):
        point = base + difference * ((step + 0.5) / steps)
        hooks = [(_EMBED, lambda activation, hook, point=point: point)]
        _, _, grads = model.run_with_grad_cache(tokens, metric, names_filter=_EMBED, attention_mask=mask,
                                                fwd_hooks=hooks)
        total = grads[_EMBED] if total is None else total + grads[_EMBED]
        report(step + 1, steps)
    scores = (difference * total).sum(axis=-1) * (1.0 / steps)  # [b, p]
    value = _metric_at(model, tokens, metric, mask, None)
    baseline_value = _metric_at(model, tokens, metric, mask, base)
    str_tokens = None if model.tokenizer is None else [model.to_str_tokens(row) for row in tokens.tolist()]
    return TokenSaliency(scores, tokens, str_tokens, value, baseline_value, steps)


def _baseline(model, baseline, embed, tokens, mask):
    if baseline is None:
        return embed * 0.0
    if isinstance(baseline, Tensor) and baseline.dtype.startswith("float"):
        if tuple(baseline.shape) != tuple(embed.shape):
            raise ValueError(f"a baseline of embeddings has shape {list(baseline.shape)}; expected "
                             f"{list(embed.shape)} (the token embeddings of the input)")
        return as_tensor(baseline, dtype=embed.dtype, backend=embed.backend)
    ids, _ = model._as_tokens(baseline, mask)
    if tuple(ids.shape) != tuple(tokens.shape):
        raise ValueError(f"the baseline tokens have [batch, pos] {list(ids.shape)}, the input "
                         f"{list(tokens.shape)}: they must have the same shape")
    return model.run_with_cache(ids, names_filter=_EMBED, attention_mask=mask)[1][_EMBED]


def _metric_at(model, tokens, metric, mask, embedding):
    hooks = [] if embedding is None else [(_EMBED, lambda activation, hook: embedding)]
    value = metric(model.run_with_hooks(tokens, fwd_hooks=hooks, attention_mask=mask))
    return float(value.item()) if isinstance(value, Tensor) else float(value)


__all__ = ["TokenSaliency", "integrated_gradients"]
