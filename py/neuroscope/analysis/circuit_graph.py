"""The graph of circuit discovery: its nodes and edges (the one of ``attribution_patching``'s
edges, and of ACDC / path patching).

* upstream nodes write into the residual stream: ``("embed",)`` (the token and position
  embeddings, ``blocks.0.hook_resid_pre``), ``("head", l, h)`` (``z_h @ W_O[h]``) and
  ``("mlp", l)`` (``hook_mlp_out``);
* downstream nodes read it: ``("head", l, h, "q" | "k" | "v")`` (one per key/value head for
  k and v), ``("mlp", l)`` and ``("logits",)``;
* an edge ``(u, d)`` exists when u writes before d reads: u in an earlier layer, or u a head
  of d's layer when d is that layer's MLP (not in parallel-attention models).
"""

EMBED = ("embed",)
LOGITS = ("logits",)


def head(layer, index):
    return ("head", layer, index)


def mlp(layer):
    return ("mlp", layer)


def components(cfg):
    """Every head and MLP, in graph order (layer by layer, heads before the MLP)."""
    return [c for layer in range(cfg.n_layers)
            for c in [head(layer, h) for h in range(cfg.n_heads)] + [mlp(layer)]]


def upstream_nodes(cfg):
    return [EMBED] + components(cfg)


def downstream_nodes(cfg):
    out = []
    for layer in range(cfg.n_layers):
        for kind in ("q", "k", "v"):
            count = cfg.n_heads if kind == "q" else cfg.n_kv_heads
            out += [("head", layer, unit, kind) for unit in range(count)]
        out.append(mlp(layer))
    return out + [LOGITS]


def n_upstream_before(cfg, node):
    """How many upstream nodes (in ``upstream_nodes`` order) the downstream ``node`` reads."""
    if node == LOGITS:
        return 1 + cfg.n_layers * (cfg.n_heads + 1)
    layer = node[1]
    before = 1 + layer * (cfg.n_heads + 1)
    if node[0] == "mlp" and not cfg.parallel_attn_mlp:
        before += cfg.n_heads
    return before


def all_edges(cfg):
    """Every edge ``(upstream, downstream)``, grouped by downstream node in graph order."""
    ups = upstream_nodes(cfg)
    return [(u, d) for d in downstream_nodes(cfg) for u in ups[:n_upstream_before(cfg, d)]]


def reader(downstream):
    """The unit a downstream node belongs to: ``("head", l, h, "q")`` -> ``("head", l, h)`` (for a
    key or value input, ``h`` counts key/value heads: see ``readers`` for the heads that read it)."""
    return downstream[:3] if downstream[0] == "head" else downstream


def readers(cfg, downstream):
    """The components that read through ``downstream``: the query head; every query head
    sharing a key/value head (grouped-query attention); the MLP; or ``[("logits",)]``."""
    if downstream[0] != "head" or downstream[3] == "q":
        return [reader(downstream)]
    group = cfg.n_heads // cfg.n_kv_heads
    return [head(downstream[1], h) for h in range(downstream[2] * group, (downstream[2] + 1) * group)]
