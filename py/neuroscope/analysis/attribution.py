"""Attribution patching: activation patching's first-order estimate, from gradients.

Convention (the one of Nanda's attribution patching, Syed et al.'s EAP and Hanna et al.'s
EAP-IG): gradients are taken on the *corrupted* run, and a node's score is

    score(node) = sum over batch, positions and features of (a_clean - a_corrupt) * d metric / d a

taken at the corrupted activations: the linear estimate of ``metric(corrupted run with
the node patched from the clean run) - metric(corrupted run)``, which an activation
patching sweep measures exactly with one forward pass per node. One forward pass per
prompt and one backward pass give every node's score.

Methods:
* ``"atp"``: node scores with the corrupted run's gradient.
* ``"eap"``: edge scores with the same gradient. Upstream nodes are the input embedding
  (``blocks.0.hook_resid_pre``), each head's output (``z_h @ W_O[h]``) and each MLP's
  output; downstream nodes are each head's query, key and value input, each MLP's input
  and the logits (the final residual). Since a downstream input reads the sum of the
  upstream outputs before it, score(u -> d) = (u_clean - u_corrupt) . d metric / d input_d,
  where input_d is d's own copy of the residual stream (its gradient flows through d
  alone: the norm before it, then only d's own projection of it). An upstream node's edges sum to
  its node score.
* ``"eap-ig"``: the gradient is averaged over ``ig_steps`` points on the straight line
  from the corrupted to the clean input embedding (a midpoint Riemann sum of integrated
  gradients; Hanna et al. use left points), for node scores or edges.

Shapes: ``nodes="resid_pre"`` (and ``resid_mid``, ``resid_post``, ``attn_out``, ``mlp_out``)
give ``[layer, pos]``, ``nodes="heads"`` ``[layer, head]``, ``nodes="heads_by_pos"``
``[layer, pos, head]`` (the shapes of the ``get_act_patch_*`` sweeps). References: Nanda,
"Attribution Patching" (2023); Syed, Rager & Conmy, "Attribution Patching Outperforms
Automated Circuit Discovery" (2023); Hanna, Pezzelle & Belinkov, "Have Faith in
Faithfulness" (2024).
"""

from ..autograd import enable_grad
from ..names import act_name
from ..progress import progress_reporter
from ..tensor import Tensor, as_tensor, cat, stack
from .common import check_metric_positions, mask_rows

METHODS = ("atp", "eap", "eap-ig")
# nodes -> (short hook name, the axes of its scores)
NODE_KINDS = {
    "resid_pre": ("resid_pre", ("layer", "pos")),
    "resid_mid": ("resid_mid", ("layer", "pos")),
    "resid_post": ("resid_post", ("layer", "pos")),
    "attn_out": ("attn_out", ("layer", "pos")),
    "mlp_out": ("mlp_out", ("layer", "pos")),
    "mlp": ("mlp_out", ("layer", "pos")),
    "heads": ("z", ("layer", "head")),
    "heads_by_pos": ("z", ("layer", "pos", "head")),
    # the names of the matching activation patching sweeps (analysis.SWEEPS)
    "attn_head_out_all_pos": ("z", ("layer", "head")),
    "attn_head_out_by_pos": ("z", ("layer", "pos", "head")),
}
_INPUT = "blocks.0.hook_resid_pre"


def attribution_patching(model, clean, corrupted, metric, nodes=None, method="atp", ig_steps=5,
                         attention_mask=None, progress=None):
    """Score every node (or edge) by how much patching it from ``clean`` into ``corrupted``
    moves ``metric`` (see the module docstring for the convention and the methods).

    ``clean`` / ``corrupted``: token ids (or texts) of the same shape. ``metric(logits)``
    returns a one-element Tensor computed from the logits (``logit_diff_metric(...)``).
    ``nodes``: one of ``NODE_KINDS`` (default ``"resid_pre"``), a list or tuple of them (one
    pass of gradients for all; returns a dict kind -> scores), or ``"edges"`` (the default
    for ``"eap"`` / ``"eap-ig"``). Returns a Tensor of node scores, or an ``EdgeAttribution``.
    """
    if method not in METHODS:
        raise ValueError(f"method={method!r}; expected one of {list(METHODS)}")
    if nodes is None:
        nodes = "resid_pre" if method == "atp" else "edges"
    kinds = list(nodes) if isinstance(nodes, (list, tuple)) else [nodes]
    if not kinds or any(not isinstance(kind, str) or (kind not in NODE_KINDS and kind != "edges")
                        for kind in kinds) or (len(kinds) > 1 and "edges" in kinds):
        raise ValueError(f"nodes={nodes!r}; expected 'edges', one of {sorted(NODE_KINDS)} or a non-empty "
                         "list of the latter")
    if method == "atp" and nodes == "edges":
        raise ValueError("method='atp' scores nodes; use method='eap' (or 'eap-ig') for edges")
    if method == "eap" and nodes != "edges":
        raise ValueError(f"method='eap' scores edges; nodes={nodes!r} are scored by method='atp' "
                         "(the same gradient) or 'eap-ig'")
    if not (isinstance(ig_steps, int) and ig_steps >= 1):
        raise ValueError(f"ig_steps={ig_steps!r}; expected a positive integer")
    clean, mask = model._as_tokens(clean, attention_mask)
    corrupted, corrupt_mask = model._as_tokens(corrupted, attention_mask)
    if tuple(clean.shape) != tuple(corrupted.shape):
        raise ValueError(f"the clean prompt has [batch, pos] {list(clean.shape)} and the corrupted one "
                         f"{list(corrupted.shape)}: attribution compares activations position by position, "
                         "so both must have the same number of tokens (pad them alike, or choose prompts "
                         "that tokenize to the same length)")
    # Texts bring their own padding; both runs use one mask, so it must be the same.
    real, corrupt_real = mask_rows(mask, clean.shape), mask_rows(corrupt_mask, clean.shape)
    if real != corrupt_real:
        row = next(i for i, (a, b) in enumerate(zip(real, corrupt_real)) if a != b)
        raise ValueError(f"the clean and the corrupted prompt {row} are padded differently (attention mask "
                         f"{real[row]} vs {corrupt_real[row]}): attribution compares activations position by "
                         "position, so each pair must tokenize to the same length")
    check_metric_positions(metric, mask, clean.shape)
    steps = ig_steps if method == "eap-ig" else 1
    if nodes == "edges":
        return _edges(model, clean, corrupted, metric, mask, steps, method, progress)
    layers = range(model.cfg.n_layers)
    names = []
    for kind in kinds:
        kind_names = [act_name(NODE_KINDS[kind][0], layer) for layer in layers]
        _check_names(model, kind_names, kind)
        names += [name for name in kind_names if name not in names]
    clean_cache = model.run_with_cache(clean, names_filter=names + [_INPUT], attention_mask=mask)[1]
    corrupt_cache, grads = _gradients(model, corrupted, metric, names, clean_cache, mask, steps, progress)
    scores = {}
    for kind in kinds:
        short, axes = NODE_KINDS[kind]
        rows = []
        for layer in layers:
            name = act_name(short, layer)
            product = (clean_cache[name] - corrupt_cache[name]) * grads[name]
            if axes == ("layer", "pos"):
                rows.append(product.sum(axis=(0, 2)))             # [b, p, d] -> [p]
            elif axes == ("layer", "head"):
                rows.append(product.sum(axis=(0, 1, 3)))          # [b, p, h, e] -> [h]
            else:
                rows.append(product.sum(axis=(0, 3)))             # -> [p, h]
        scores[kind] = stack(rows)
    return scores if isinstance(nodes, (list, tuple)) else scores[nodes]


def _check_names(model, names, what):
    known = model.hook_names()
    missing = [name for name in names if name not in known]
    if missing:
        raise ValueError(f"nodes={what!r}: this model has no {missing[0]} (a {model.cfg.family} model"
                         f"{' with parallel attention and MLP' if model.cfg.parallel_attn_mlp else ''})")


def _gradients(model, corrupted, metric, names, clean_cache, mask, steps, progress, post=None):
    """The corrupted run's activations at ``names`` and d metric / d activation there: on
    the corrupted run itself (steps=1), or averaged over ``steps`` midpoints on the line
    from the corrupted input embedding to the clean one. ``post(cache, grads)``, when given,
    maps each step's (cache, grads) to what is averaged instead of grads."""
    report = progress_reporter(progress, "attribution") if steps > 1 else (lambda done, total: None)
    corrupt_cache = model.run_with_cache(corrupted, names_filter=names + [_INPUT], attention_mask=mask)[1]
    clean_input, corrupt_input = clean_cache[_INPUT], corrupt_cache[_INPUT]
    total = None
    report(0, steps)
    for step in range(steps):
        hooks = ()
        if steps > 1:
            alpha = (step + 0.5) / steps
            point = corrupt_input + (clean_input - corrupt_input) * alpha
            hooks = [(_INPUT, lambda activation, hook, point=point: point)]
        _, cache, grads = model.run_with_grad_cache(corrupted, metric, names_filter=names, fwd_hooks=hooks,
                                                    attention_mask=mask)
        kept = post(cache, grads) if post else {name: grads[name] for name in names}
        total = kept if total is None else {name: total[name] + kept[name] for name in kept}
        report(step + 1, steps)
    average = total if steps == 1 else {name: value * (1.0 / steps) for name, value in total.items()}
    return corrupt_cache, average


# -- edges ----------------------------------------------------------------------------------
class EdgeAttribution:
    """Edge scores between upstream outputs and downstream inputs (see the module docstring).

    ``scores[i, j]``: the edge from ``upstream[i]`` to ``downstream[j]``, 0 where there is no
    edge (``allowed[i][j]`` False: j comes before i). Labels: ``"input"``, ``"a{layer}.h{head}"``,
    ``"m{layer}"`` upstream; ``"a{layer}.h{head}<q>"`` (``<k>`` / ``<v>`` per key/value head),
    ``"m{layer}"`` and ``"logits"`` downstream."""

    def __init__(self, scores, upstream, downstream, allowed, n_layers, n_heads, method):
        self.scores, self.upstream, self.downstream, self.allowed = scores, upstream, downstream, allowed
        self.n_layers, self.n_heads, self.method = n_layers, n_heads, method

    def _repr_html_(self):
        from ..display_hooks import html_of  # display imports this module: see display_hooks

        return html_of(self)

    def inspect(self):
        """Fields, shapes and views of this object (``neuroscope.inspect``)."""
        from ..display_hooks import inspect

        return inspect(self)

    def __repr__(self):
        n_edges = sum(sum(row) for row in self.allowed)
        return (f"EdgeAttribution({self.method}: {len(self.upstream)} upstream x {len(self.downstream)} "
                f"downstream nodes, {n_edges} edges)")

    def edges(self):
        """``[(upstream, downstream, score)]`` for every edge, in graph order."""
        values = self.scores.tolist()
        return [(up, down, values[i][j]) for i, up in enumerate(self.upstream)
                for j, down in enumerate(self.downstream) if self.allowed[i][j]]

    def top(self, k=10, absolute=True):
        """The ``k`` edges with the largest scores (by absolute value unless ``absolute=False``)."""
        key = (lambda edge: abs(edge[2])) if absolute else (lambda edge: edge[2])
        return sorted(self.edges(), key=key, reverse=True)[:k]

    def node_scores(self):
        """Each upstream node's edges summed: ``{"input": float, "heads": [layer, head] Tensor,
        "mlp": [layer] Tensor}``, the node scores of the same gradient."""
        totals = self.scores.sum(axis=1)  # [U]
        h = self.n_heads
        per_layer = totals[1:].reshape(self.n_layers, h + 1)
        return {"input": float(totals[0].item()), "heads": per_layer[:, :h], "mlp": per_layer[:, h]}

    def to_dict(self):
        return {"method": self.method, "upstream": list(self.upstream), "downstream": list(self.downstream),
                "scores": self.scores.tolist(), "allowed": [list(row) for row in self.allowed]}


def _edges(model, clean, corrupted, metric, mask, steps, method, progress):
    cfg = model.cfg
    n_layers, h = cfg.n_layers, cfg.n_heads
    ups = [_INPUT] + [name for layer in range(n_layers)
                      for name in (act_name("z", layer), act_name("mlp_out", layer))]
    mlp_input = "resid_pre" if cfg.parallel_attn_mlp else "resid_mid"
    final = act_name("resid_post", n_layers - 1)
    downs = [name for layer in range(n_layers) for name in
             (act_name("resid_pre", layer), act_name("q", layer), act_name("k", layer), act_name("v", layer),
              act_name(mlp_input, layer), f"blocks.{layer}.mlp.hook_pre")
             + ((f"blocks.{layer}.mlp.hook_pre_linear",) if cfg.gated_mlp else ())] + [final]
    names = list(dict.fromkeys(ups + downs))
    clean_cache = model.run_with_cache(clean, names_filter=names, attention_mask=mask)[1]
    corrupt_cache, inputs = _gradients(model, corrupted, metric, names, clean_cache, mask, steps, progress,
                                       post=lambda cache, grads: _input_gradients(model, cache, grads))
    differences = [_head_outputs(model, layer, clean_cache, corrupt_cache) if name.endswith("hook_z")
                   else (clean_cache[name] - corrupt_cache[name]).unsqueeze(0)
                   for layer, name in [(-1, _INPUT)] + [(int(n.split(".")[1]), n) for n in ups[1:]]]
    upstream = cat(differences)                                  # [U, b, p, d]
    downstream = cat([inputs[key] for key in sorted(inputs, key=_order(n_layers))])  # [D, b, p, d]
    n = upstream.shape[1] * upstream.shape[2] * upstream.shape[3]
    scores = upstream.reshape(upstream.shape[0], n) @ downstream.reshape(downstream.shape[0], n).permute(1, 0)
    up_labels, up_layers = _upstream_labels(n_layers, h)
    down_labels, down_layers = _downstream_labels(n_layers, h, cfg.n_kv_heads, inputs, _order(n_layers))
    allowed = [[_edge_allowed(ul, dl, cfg.parallel_attn_mlp) for dl in down_layers] for ul in up_layers]
    scores = scores * as_tensor(allowed, dtype="float32", backend=scores.backend)
    return EdgeAttribution(scores, up_labels, down_labels, allowed, n_layers, h, method)


def _head_outputs(model, layer, clean_cache, corrupt_cache):
    """``(z_clean - z_corrupt)_h @ W_O[h]``: each head's change of what it writes, ``[h, b, p, d]``."""
    name = act_name("z", layer)
    dz = clean_cache[name] - corrupt_cache[name]                          # [b, p, h, e]
    b, p, h, e = dz.shape
    w_o = model.blocks[layer].attn.W_O_heads                              # [h, e, d]
    return (dz.permute(2, 0, 1, 3).reshape(h, b * p, e) @ w_o).reshape(h, b, p, -1)


def _input_gradients(model, cache, grads):
    """d metric / d (each downstream node's own copy of its input), ``{key: [n, b, p, d]}``:
    for head h's query, (grad q_h) W_Q[h]^T pulled back through ln1 at this run's input; for
    an MLP, (grad hook_pre) W_in^T (plus the gate's, when gated) pulled back through ln2; the
    logits read the final residual."""
    cfg = model.cfg
    out = {}
    for layer, block in enumerate(model.blocks):
        x = cache[act_name("resid_pre", layer)]
        attn = block.attn
        for kind, weight in (("q", attn.W_Q), ("k", attn.W_K), ("v", attn.W_V)):
            g = grads[act_name(kind, layer)]                              # [b, p, n, e]
            b, p, n, e = g.shape
            w = weight.reshape(weight.shape[0], n, e).permute(1, 2, 0)    # [n, e, d]
            gy = (g.permute(2, 0, 1, 3).reshape(n, b * p, e) @ w).reshape(n, b, p, -1)
            out[(layer, kind)] = _norm_pullback(block.ln1, x, gy)
        x2 = cache[act_name("resid_pre" if cfg.parallel_attn_mlp else "resid_mid", layer)]
        mlp = block.mlp
        prefix = f"blocks.{layer}.mlp."
        if cfg.gated_mlp:  # hook_pre = y W_gate, hook_pre_linear = y W_in
            gy = (_project_back(grads[prefix + "hook_pre"], mlp.W_gate)
                  + _project_back(grads[prefix + "hook_pre_linear"], mlp.W_in))
        else:              # hook_pre = y W_in + b_in
            gy = _project_back(grads[prefix + "hook_pre"], mlp.W_in)
        out[(layer, "mlp")] = _norm_pullback(block.ln2, x2, gy.unsqueeze(0))
    out[(cfg.n_layers, "logits")] = grads[act_name("resid_post", cfg.n_layers - 1)].unsqueeze(0)
    return out


def _project_back(grad, weight):
    """``grad @ weight^T``: ``[b, p, m]`` with ``weight`` ``[d, m]`` -> ``[b, p, d]``."""
    return grad @ weight.permute(1, 0)


def _norm_pullback(norm, x, cotangent):
    """The vector-Jacobian product of the norm at ``x`` ``[b, p, d]`` with each of the
    ``cotangent`` rows ``[n, b, p, d]`` (gradients with respect to the norm's output): the
    gradient with respect to its input of ``sum(norm(x) * cotangent[i])``, for each i at once
    (x is broadcast over n), by the same VJP rules as every backward pass."""
    leaf = Tensor(x.unsqueeze(0).broadcast_to(*cotangent.shape).data, x.backend).requires_grad_()
    with enable_grad():
        (norm.apply(leaf) * cotangent).sum().backward()
    return leaf.grad


def _order(n_layers):
    kinds = {"q": 0, "k": 1, "v": 2, "mlp": 3, "logits": 4}
    return lambda key: (key[0], kinds[key[1]])


def _upstream_labels(n_layers, h):
    labels, layers = ["input"], [(-1, "input")]
    for layer in range(n_layers):
        labels += [f"a{layer}.h{head}" for head in range(h)] + [f"m{layer}"]
        layers += [(layer, "attn")] * h + [(layer, "mlp")]
    return labels, layers


def _downstream_labels(n_layers, h, n_kv, inputs, order):
    labels, layers = [], []
    for layer, kind in sorted(inputs, key=order):
        if kind in ("q", "k", "v"):
            count = h if kind == "q" else n_kv
            labels += [f"a{layer}.h{i}<{kind}>" for i in range(count)]
            layers += [(layer, "attn")] * count
        else:
            labels.append(f"m{layer}" if kind == "mlp" else "logits")
            layers.append((layer, kind))
    return labels, layers


def _edge_allowed(up, down, parallel):
    (up_layer, up_kind), (down_layer, down_kind) = up, down
    if down_kind == "logits" or up_kind == "input":
        return True
    if down_kind == "attn":
        return up_layer < down_layer
    # an MLP input: earlier layers, and this layer's heads unless attention and MLP run in parallel
    return up_layer < down_layer or (up_layer == down_layer and up_kind == "attn" and not parallel)


__all__ = ["METHODS", "NODE_KINDS", "EdgeAttribution", "attribution_patching"]
