"""Gradients of a metric with respect to every hook point: ``run_with_grad_cache``.

One forward pass records the autograd graph from the first kept hook point on (weights
are never tracked; ``GradientHook`` makes the kept activations the graph's leaves, see
hooks.py), the metric is reduced to one number, and one backward pass delivers
d metric / d activation at each kept point — TransformerLens' forward-and-backward
cache (``get_cache_fwd_and_bwd`` in its attribution-patching demo), as one call.
"""

from ..autograd import enable_grad
from ..cache import ActivationCache
from ..errors import GradientError
from ..hooks import CachingHook, GradientHook
from ..tensor import Tensor


def run_with_grad_cache(model, tokens, metric, names_filter=None, fwd_hooks=(), **kwargs):
    """``(value, cache, grads)``: ``value`` the metric (a detached one-element Tensor),
    ``cache`` the forward activations and ``grads[name]`` d value / d activation, at every
    hook point ``names_filter`` keeps (a name, a list of names, a predicate, or None for
    all). ``metric(logits)`` must return a one-element Tensor computed from the logits.
    ``fwd_hooks`` run first at each point (an ablation, say): the gradients are then those
    of the edited model, with respect to the values that flow on."""
    if not callable(metric):
        raise TypeError(f"metric must be a function logits -> one-element Tensor, got "
                        f"{type(metric).__name__}")
    if isinstance(names_filter, str):
        names_filter = [names_filter]
    # The forward checks the ids again; passing it what it was given keeps a list of ids a
    # host-side check (a Tensor of ids costs two reductions, read back, each time).
    ids, kwargs["attention_mask"] = model._as_tokens(tokens, kwargs.get("attention_mask"))
    listed = isinstance(tokens, (list, tuple)) and tokens
    if isinstance(tokens, str) or (listed and isinstance(tokens[0], str)):
        tokens = ids  # text is tokenized once
    grads = {}

    def keep(grad, hook):
        grads[hook.name] = grad if hook.name not in grads else grads[hook.name] + grad

    caching = CachingHook(names_filter, ActivationCache())
    with enable_grad(), model.hooks(list(fwd_hooks) + [caching, GradientHook(names_filter, keep)]):
        logits = model(tokens, **kwargs)
        value = metric(logits)
        _check_metric(value)
    value.backward()
    cache = caching.cache
    ordered = ActivationCache()
    for name in cache:  # forward order; a point the metric does not depend on has gradient 0
        ordered[name] = grads[name] if name in grads else _zeros_like(cache[name])
    for kept in (cache, ordered):
        kept.tokens, kept.attention_mask = ids, kwargs["attention_mask"]
    return value.detach(), cache, ordered


def _check_metric(value):
    if not isinstance(value, Tensor):
        raise GradientError(f"metric(logits) returned {type(value).__name__}; expected a one-element Tensor "
                            "computed from the logits (e.g. logits[0, -1, a] - logits[0, -1, b])")
    if value.size != 1:
        raise GradientError(f"metric(logits) returned a Tensor of shape {list(value.shape)}; expected one "
                            "element (reduce it, e.g. with .mean() or .sum())")
    if not value.requires_grad:
        raise GradientError("metric(logits) does not depend on the logits (its result is not tracked): "
                            "compute it from the logits it is given, with NeuroScope ops")


def _zeros_like(tensor):
    return Tensor(tensor.backend.full(tuple(tensor.shape), 0.0, tensor.dtype), tensor.backend)
