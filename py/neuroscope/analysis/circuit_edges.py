"""The edge-removal forward pass: clean prompts with chosen edges (and nodes) taken from their
corrupted counterparts, on the graph of ``circuit_graph``.

Patching node u from the corrupted run replaces its output everywhere (``hook_z`` for a
head, ``hook_mlp_out`` for an MLP). Removing edge ``(u, d)`` replaces u's contribution to
d's input only: d reads ``resid + u_corrupt - u_current``, where resid is the residual
stream of this very run (so removals compose, as in ACDC's and path patching's
"corrupted edge"); the q/k/v of one head, or an MLP's input, is recomputed from that input
with the block's own norm and weights. Removing every edge out of u equals patching u;
removing every edge into the logits gives the corrupted run's logits.
"""

from ..model.components import linear
from ..names import act_name
from ..tensor import as_tensor, cat, stack, where
from .circuit_graph import LOGITS, all_edges, downstream_nodes, head, mlp, n_upstream_before, upstream_nodes


def head_outputs(model, layer, z):
    """Each head's write into the residual stream, ``z_h @ W_O[h]``: ``[b, p, h, e]`` -> ``[h, b, p, d]``."""
    b, p, h, e = z.shape
    w_o = model.blocks[layer].attn.W_O_heads  # [h, e, d]
    return (z.permute(2, 0, 1, 3).reshape(h, b * p, e) @ w_o).reshape(h, b, p, -1)

def replace_hook(mask, source, rows):
    def hook(activation, hook):
        return where(mask, source.take(rows, axis=0), activation)

    return hook


class EdgeRun:
    """One forward pass of ``len(configs)`` copies of the clean batch, copy c with the edges
    of ``configs[c]`` removed (see the module docstring)."""

    def __init__(self, pairs, configs, patched_nodes):
        self.pairs, self.configs, self.cfg = pairs, configs, pairs.cfg
        self.model = pairs.model
        self.copies = len(configs)
        self.rows = pairs._rows(self.copies)
        self.patched = patched_nodes
        self.diffs = {}  # upstream position -> (u_corrupt - u_current) [B, p, d] of this run
        self.resid = {}
        ups = upstream_nodes(self.cfg)
        self.position = {node: i for i, node in enumerate(ups)}
        self.masks, self.units, self.columns = {}, {}, {}
        by_reader = {}
        degree = _out_degree(self.cfg)
        removed_from = [{} for _ in configs]
        for c, config in enumerate(configs):
            for u, d in config:
                if (
                    u not in self.position
                    or d not in _downstream_set(self.cfg)
                    or self.position[u] >= n_upstream_before(self.cfg, d)
                ):
                    raise ValueError(f"edge {(u, d)!r} is not an edge of this model's graph")
                by_reader.setdefault(_input_key(self.cfg, d), {}).setdefault(c, []).append((u, d))
                removed_from[c][u] = removed_from[c].get(u, 0) + 1
        # A component all of whose outgoing edges are removed is read by nobody: its current
        # output cancels out of every input, so its own inputs need not be recomputed.
        dead = [
            {u for u, count in counts.items() if count == degree[u]} | set(patched_nodes)
            for counts in removed_from
        ]
        for key, per_copy in by_reader.items():
            into = {c: {d[2] if d[0] == "head" else 0 for _, d in edges} for c, edges in per_copy.items()}
            units = [
                unit
                for unit in range(self._units(key[1]))
                if any(unit in into[c] and not _unit_dead(self.cfg, key, unit, dead[c]) for c in into)
            ]
            if units:
                self.units[key] = units
                self.masks[key], self.columns[key] = self._mask(per_copy, units)
        self.read = {position for columns in self.columns.values() for position in columns}

    def _mask(self, per_copy, units):
        """``([C, len(units), len(columns)] 0/1, columns)``: which upstream nodes (the columns, by
        position) have their corrupted outputs read by each unit."""
        row = {unit: i for i, unit in enumerate(units)}
        entries = {
            (c, row[d[2] if d[0] == "head" else 0], self.position[u])
            for c, edges in per_copy.items()
            for u, d in edges
            if (d[2] if d[0] == "head" else 0) in row
        }
        columns = sorted({position for _, _, position in entries})
        column = {position: i for i, position in enumerate(columns)}
        mask = [[[0.0] * len(columns) for _ in units] for _ in range(self.copies)]
        for c, r, position in entries:
            mask[c][r][column[position]] = 1.0
        return as_tensor(mask, backend=self.model.backend), columns

    def _units(self, kind):
        return {"q": self.cfg.n_heads, "k": self.cfg.n_kv_heads, "v": self.cfg.n_kv_heads}.get(kind, 1)

    def _corrupt(self, key):
        value = self.pairs.corrupt[key]
        return value if self.copies == 1 else value.take(self.rows, axis=1 if key[0] == "heads" else 0)

    def values(self):
        cfg = self.cfg
        hooks = [(act_name("resid_pre", 0), self._record_embed)]
        for layer in range(cfg.n_layers):
            prefix = f"blocks.{layer}."
            if any((layer, kind) in self.masks for kind in "qkv"):
                hooks.append((act_name("resid_pre", layer), self._keep(("attn", layer))))
                for kind in "qkv":
                    if (layer, kind) in self.masks:
                        hooks.append((act_name(kind, layer), self._attention_input(layer, kind)))
            if any(head(layer, h) in self.patched for h in range(cfg.n_heads)):
                mask = [[[[1.0 if head(layer, h) in self.patched else 0.0] for h in range(cfg.n_heads)]]]
                hooks.append(
                    (
                        act_name("z", layer),
                        replace_hook(
                            as_tensor(mask, backend=self.model.backend) > 0.5,
                            self.pairs.corrupt[("z", layer)],
                            self.rows,
                        ),
                    )
                )
            hooks.append((act_name("z", layer), self._record_heads(layer)))
            if (layer, "mlp") in self.masks:
                source = "resid_pre" if cfg.parallel_attn_mlp else "resid_mid"
                hooks.append((act_name(source, layer), self._keep(("mlp", layer))))
                hooks.append(
                    (prefix + "mlp.hook_pre", self._mlp_input(layer, "gate" if cfg.gated_mlp else "in"))
                )
                if cfg.gated_mlp:
                    hooks.append((prefix + "mlp.hook_pre_linear", self._mlp_input(layer, "in")))
            if mlp(layer) in self.patched:
                hooks.append(
                    (
                        act_name("mlp_out", layer),
                        replace_hook(
                            as_tensor([[[1.0]]], backend=self.model.backend) > 0.5,
                            self.pairs.corrupt[("mlp", layer)],
                            self.rows,
                        ),
                    )
                )
            hooks.append((act_name("mlp_out", layer), self._record_mlp(layer)))
        if (cfg.n_layers, "logits") in self.masks:
            hooks.append((act_name("resid_post", cfg.n_layers - 1), self._logits_input))
        start = self._start()
        if start == 0:
            tokens = self.pairs.clean.take(self.rows, axis=0) if self.copies > 1 else self.pairs.clean
            return self.pairs.values(self.model.run_with_hooks(tokens, fwd_hooks=hooks))
        # Nothing below layer `start` changes: start from the clean run's residual stream there,
        # with the upstream outputs below it as in the clean run.
        clean = self.pairs.clean_run
        below = self.position[head(start, 0)]
        for position in self.read:
            if position < below:
                diff = clean["diffs"][position]
                self.diffs[position] = diff if self.copies == 1 else diff.take(self.rows, axis=0)
        resid = clean["resid"][start]
        with self.model.hooks(hooks):
            logits = self.model.run_from_layer(
                resid if self.copies == 1 else resid.take(self.rows, axis=0), start
            )
        return self.pairs.values(logits)

    def _start(self):
        """The first layer whose computation differs from the clean run's."""
        layers = [key[0] for key in self.masks] + [node[1] for node in self.patched]
        return min(min(layers, default=0), self.cfg.n_layers - 1)

    # -- recording the upstream outputs of this run ---------------------------------------------
    def _record_embed(self, activation, hook):
        if 0 in self.read:
            self.diffs[0] = self._corrupt("embed") - activation

    def _record_heads(self, layer):
        first = self.position[head(layer, 0)]
        wanted = [h for h in range(self.cfg.n_heads) if first + h in self.read]

        def hook(activation, hook):
            if wanted:
                block = self._corrupt(("heads", layer)) - head_outputs(self.model, layer, activation)
                for h in wanted:
                    self.diffs[first + h] = block[h]

        return hook

    def _record_mlp(self, layer):
        position = self.position[mlp(layer)]

        def hook(activation, hook):
            if position in self.read:
                self.diffs[position] = self._corrupt(("mlp", layer)) - activation

        return hook

    def _keep(self, key):
        def hook(activation, hook):
            self.resid[key] = activation

        return hook

    # -- rewriting the inputs of downstream nodes ---------------------------------------------------
    def _delta(self, key):
        """``[units, B, p, d]``: the sum of (u_corrupt - u_current) over the removed edges into each unit."""
        mask = self.masks[key]  # [C, units, K]
        diffs = stack([self.diffs[position] for position in self.columns[key]])  # [K, B, p, d]
        size, _, p, d = diffs.shape
        n = self.pairs.n
        parts = []
        for c in range(self.copies):
            block = diffs if self.copies == 1 else diffs[:, c * n : (c + 1) * n]
            parts.append((mask[c] @ block.reshape(size, n * p * d)).reshape(mask.shape[1], n, p, d))
        return parts[0] if self.copies == 1 else cat(parts, axis=1)

    def _attention_input(self, layer, kind):
        attn = self.model.blocks[layer].attn
        weight, bias = {"q": (attn.W_Q, attn.b_Q), "k": (attn.W_K, attn.b_K), "v": (attn.W_V, attn.b_V)}[kind]
        units = self.units[(layer, kind)]

        def hook(activation, hook):
            resid = self.resid[("attn", layer)]  # [B, p, d]
            delta = self._delta((layer, kind))  # [k, B, p, d]
            k, rows, p, d = delta.shape
            n, e = activation.shape[2], activation.shape[3]
            x = self.model.blocks[layer].ln1.apply(resid.unsqueeze(0) + delta)  # [k, B, p, d]
            w = weight.reshape(d, n, e).permute(1, 0, 2)  # [n, d, e]
            if k < n:
                w = w.take(units, axis=0)
            out = x.reshape(k, rows * p, d) @ w  # [k, B*p, e]
            if bias is not None:
                b = bias.reshape(n, 1, e)
                out = out + (b.take(units, axis=0) if k < n else b)
            out = out.reshape(k, rows, p, e).permute(1, 2, 0, 3)  # [B, p, k, e]
            if k == n:
                return out
            slot = {unit: i for i, unit in enumerate(units)}
            return cat(
                [
                    out[:, :, slot[u] : slot[u] + 1] if u in slot else activation[:, :, u : u + 1]
                    for u in range(n)
                ],
                axis=2,
            )

        return hook

    def _mlp_input(self, layer, which):
        block = self.model.blocks[layer]

        def hook(activation, hook):
            x = block.ln2.apply(self.resid[("mlp", layer)] + self._delta((layer, "mlp"))[0])
            if which == "gate":
                return linear(x, block.mlp.W_gate)
            return linear(x, block.mlp.W_in, block.mlp.b_in)

        return hook

    def _logits_input(self, activation, hook):
        return activation + self._delta((self.cfg.n_layers, "logits"))[0]


def _unit_dead(cfg, key, unit, dead):
    """Whether every component reading through ``unit`` of input ``key`` is in ``dead``."""
    layer, kind = key
    if kind == "logits":
        return False
    if kind == "mlp":
        return mlp(layer) in dead
    if kind == "q":
        return head(layer, unit) in dead
    group = cfg.n_heads // cfg.n_kv_heads
    return all(head(layer, h) in dead for h in range(unit * group, (unit + 1) * group))


_DEGREE = {}


def _out_degree(cfg):
    key = (cfg.n_layers, cfg.n_heads, cfg.n_kv_heads, cfg.parallel_attn_mlp)
    if key not in _DEGREE:
        degree = {}
        for u, _ in all_edges(cfg):
            degree[u] = degree.get(u, 0) + 1
        _DEGREE[key] = degree
    return _DEGREE[key]


def _input_key(cfg, downstream):
    if downstream == LOGITS:
        return (cfg.n_layers, "logits")
    if downstream[0] == "mlp":
        return (downstream[1], "mlp")
    return (downstream[1], downstream[3])


_DOWNSTREAM = {}


def _downstream_set(cfg):
    key = (cfg.n_layers, cfg.n_heads, cfg.n_kv_heads)
    if key not in _DOWNSTREAM:
        _DOWNSTREAM[key] = set(downstream_nodes(cfg))
    return _DOWNSTREAM[key]
