"""The forward passes behind circuit discovery: clean prompts with chosen nodes or edges
taken from their corrupted counterparts.

A set of clean/corrupted prompt pairs runs as one batch, right-padded: attention is causal,
so padding after a prompt's last token changes nothing before it, and each example's metric
is read at its own last token. A *configuration* is a set of nodes (heads, MLPs) or of
edges; ``PromptPairs.node_values`` / ``edge_values`` run several configurations in one
forward pass (the batch repeated once per configuration) and return the metric of every
example under each.

The graph (the one of ``attribution_patching``'s edges, and of ACDC / path patching):

* upstream nodes write into the residual stream: ``("embed",)`` (the token and position
  embeddings, ``blocks.0.hook_resid_pre``), ``("head", l, h)`` (``z_h @ W_O[h]``) and
  ``("mlp", l)`` (``hook_mlp_out``);
* downstream nodes read it: ``("head", l, h, "q" | "k" | "v")`` (one per key/value head for
  k and v), ``("mlp", l)`` and ``("logits",)``;
* an edge ``(u, d)`` exists when u writes before d reads: u in an earlier layer, or u a head
  of d's layer when d is that layer's MLP (not in parallel-attention models).

Patching node u from the corrupted run replaces its output everywhere (``hook_z`` for a
head, ``hook_mlp_out`` for an MLP). Removing edge ``(u, d)`` replaces u's contribution to
d's input only: d reads ``resid + u_corrupt - u_current``, where resid is the residual
stream of this very run (so removals compose, as in ACDC's and path patching's
"corrupted edge"); the q/k/v of one head, or an MLP's input, is recomputed from that input
with the block's own norm and weights. Removing every edge out of u equals patching u;
removing every edge into the logits gives the corrupted run's logits.
"""

from ..errors import NeuroScopeError
from ..model.components import linear
from ..names import act_name
from ..tensor import as_tensor, cat, stack, where

EMBED = ("embed",)
LOGITS = ("logits",)
# Rows of one forward pass: about this many token positions (as the patching sweeps).
TOKENS_PER_FORWARD = 2048


class ExampleError(NeuroScopeError, ValueError):
    """An example that cannot be used, named by its index."""


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


def as_records(examples):
    """Records in the ``prompt`` / ``corrupted_prompt`` / ``answer`` / ``incorrect`` format."""
    if isinstance(examples, PromptPairs):
        return examples.examples
    if isinstance(examples, (str, bytes)) or not hasattr(examples, "__iter__"):
        raise ExampleError(f"examples={examples!r}; expected a Dataset or a list of records")
    out = []
    for index, record in enumerate(examples):
        if not isinstance(record, dict):
            raise ExampleError(
                f"example {index} is {type(record).__name__}; expected a record (dict) with "
                "'prompt', 'corrupted_prompt', 'answer', 'incorrect'"
            )
        if "prompt" not in record and "clean" in record:
            record = {
                **record,
                "prompt": record["clean"],
                "corrupted_prompt": record.get("corrupted"),
                "incorrect": record.get("wrong"),
            }
        out.append(record)
    return out


class PromptPairs:
    """Clean/corrupted prompt pairs as one right-padded batch, with their metric.

    ``examples``: records with ``prompt``, ``corrupted_prompt`` (texts, or lists of token ids)
    and, for the default metric, ``answer`` and ``incorrect`` (texts, whose first token counts,
    or token ids). ``metric``: None for the logit difference
    logit(answer) - logit(incorrect) at each prompt's last token (first tokens of the two
    strings), or ``metric(last_logits, examples)`` taking the last-token logits ``[b, v]`` of
    ``b`` examples (a list of records) and returning one value per example.
    """

    def __init__(self, model, examples, metric=None, corrupted=True):
        self.model, self.cfg = model, model.cfg
        self.examples = [dict(record) for record in examples]
        if not self.examples:
            raise ExampleError("no examples: expected records with 'prompt' and 'corrupted_prompt'")
        self.custom_metric = metric
        clean, corrupt, self.lengths = [], [], []
        keys = ("prompt", "corrupted_prompt") if corrupted else ("prompt",)
        for index, record in enumerate(self.examples):
            pair = [self._tokens(record, key, index) for key in keys]
            if corrupted and len(pair[0]) != len(pair[1]):
                raise ExampleError(
                    f"example {index} ({record['prompt']!r}): the clean prompt has {len(pair[0])} tokens "
                    f"and the corrupted prompt {record['corrupted_prompt']!r} {len(pair[1])}; a pair must "
                    "have the same token length")
            clean.append(pair[0])
            corrupt.append(pair[-1])
            self.lengths.append(len(pair[0]))
        if metric is None:
            self.answers = [self._answer(r, "answer", index) for index, r in enumerate(self.examples)]
            self.wrong = [self._answer(r, "incorrect", index) for index, r in enumerate(self.examples)]
            for index, (a, w) in enumerate(zip(self.answers, self.wrong)):
                if a == w:
                    raise ExampleError(
                        f"example {index}: answer {self.examples[index]['answer']!r} and incorrect "
                        f"{self.examples[index]['incorrect']!r} start with the same token"
                    )
        width = max(self.lengths)
        pad = model.pad_id()
        backend = model.backend
        self.clean = as_tensor([row + [pad] * (width - len(row)) for row in clean], dtype="int64",
                               backend=backend)
        self.corrupted = as_tensor([row + [pad] * (width - len(row)) for row in corrupt], dtype="int64",
                                   backend=backend) if corrupted else None
        self.n, self.width = len(self.examples), width
        self._corrupt = self._clean = None
        self._sources = {}

    def __len__(self):
        return self.n

    def _tokens(self, record, key, index):
        value = record.get(key)
        if (
            isinstance(value, (list, tuple))
            and value
            and all(
                isinstance(t, int) and not isinstance(t, bool) and 0 <= t < self.cfg.d_vocab for t in value
            )
        ):
            return list(value)
        if not isinstance(value, str) or not value:
            raise ExampleError(
                f"example {index}: {key}={value!r}; expected a non-empty string or a list of "
                f"token ids in 0-{self.cfg.d_vocab - 1} (records need 'prompt', "
                "'corrupted_prompt', 'answer' and 'incorrect')"
            )
        return self.model.to_tokens(value)[0].tolist()

    def _answer(self, record, key, index):
        value = record.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < self.cfg.d_vocab:
            return value
        if not isinstance(value, str) or not value:
            raise ExampleError(
                f'example {index}: {key}={value!r}; expected the {key} as a string (" Mary") or '
                "a token id, or pass metric="
            )
        ids = self.model.tokenizer.encode(value, add_special_tokens=False)
        if not ids:
            raise ExampleError(f"example {index}: {key}={value!r} has no tokens")
        return ids[0]

    # -- the metric ------------------------------------------------------------------------
    def values(self, logits):
        """Per-example metric of each configuration: ``logits [C*n, p, v]`` -> C lists of n."""
        rows = logits.shape[0]
        copies = rows // self.n
        flat = logits.reshape(rows * logits.shape[1], logits.shape[2])
        index = [row * self.width + self.lengths[row % self.n] - 1 for row in range(rows)]
        last = flat.take(index, axis=0)  # [C*n, v]
        out = []
        if self.custom_metric is None:
            picked = last.take_along(
                as_tensor(
                    [[a, w] for a, w in zip(self.answers, self.wrong)] * copies,
                    dtype="int64",
                    backend=last.backend,
                ),
                axis=1,
            ).tolist()
            flat_values = [a - w for a, w in picked]
            return [flat_values[c * self.n : (c + 1) * self.n] for c in range(copies)]
        for c in range(copies):
            value = self.custom_metric(last[c * self.n : (c + 1) * self.n], self.examples)
            value = value.tolist() if hasattr(value, "tolist") else value
            if isinstance(value, (int, float)) and self.n == 1:
                value = [value]
            if not isinstance(value, list) or len(value) != self.n:
                raise ExampleError(f"metric returned {value!r}; expected one value per example ({self.n})")
            out.append([float(v) for v in value])
        return out

    def clean_values(self):
        return self.values(self.model(self.clean))[0]

    def corrupted_values(self):
        if self.corrupted is None:
            raise ExampleError("these examples were read without corrupted prompts")
        return self.values(self.model(self.corrupted))[0]

    # -- the corrupted run's activations ------------------------------------------------------
    @property
    def corrupt(self):
        """The corrupted run's upstream outputs: ``{"embed": [n, p, d], ("z", l): [n, p, h, e],
        ("heads", l): [h, n, p, d], ("mlp", l): [n, p, d]}``."""
        if self._corrupt is None:
            names = [act_name("resid_pre", 0)] + [
                act_name(kind, layer) for layer in range(self.cfg.n_layers) for kind in ("z", "mlp_out")
            ]
            cache = self.model.run_with_cache(self.corrupted, names_filter=names)[1]
            out = {"embed": cache[names[0]]}
            for layer in range(self.cfg.n_layers):
                z = cache[act_name("z", layer)]
                out[("z", layer)] = z
                out[("heads", layer)] = head_outputs(self.model, layer, z)
                out[("mlp", layer)] = cache[act_name("mlp_out", layer)]
            self._corrupt = out
        return self._corrupt

    @property
    def clean_run(self):
        """The clean run's residual stream before each layer (``{"resid": {layer: [n, p, d]}}``)
        and each upstream node's corrupted minus clean output (``{"diffs": {position: [n, p, d]}}``,
        positions in ``upstream_nodes`` order)."""
        if self._clean is None:
            cfg = self.cfg
            names = [
                act_name(kind, layer)
                for layer in range(cfg.n_layers)
                for kind in ("resid_pre", "z", "mlp_out")
            ]
            cache = self.model.run_with_cache(self.clean, names_filter=names)[1]
            corrupt = self.corrupt
            diffs = {0: corrupt["embed"] - cache[act_name("resid_pre", 0)]}
            for layer in range(cfg.n_layers):
                first = 1 + layer * (cfg.n_heads + 1)
                block = corrupt[("heads", layer)] - head_outputs(
                    self.model, layer, cache[act_name("z", layer)]
                )
                for h in range(cfg.n_heads):
                    diffs[first + h] = block[h]
                diffs[first + cfg.n_heads] = corrupt[("mlp", layer)] - cache[act_name("mlp_out", layer)]
            self._clean = {
                "resid": {layer: cache[act_name("resid_pre", layer)] for layer in range(cfg.n_layers)},
                "diffs": diffs,
            }
        return self._clean

    def _rows(self, copies):
        return as_tensor(
            [row for _ in range(copies) for row in range(self.n)], dtype="int64", backend=self.model.backend
        )

    def copies_per_forward(self):
        return max(1, TOKENS_PER_FORWARD // max(1, self.n * self.width))

    # -- runs ------------------------------------------------------------------------------------
    def node_values(self, configs, source="corrupted"):
        """For each configuration (a set of components), the per-example metric of the clean run
        with those components' outputs (at every position) replaced by ``source``: their
        outputs on the corrupted prompts (``"corrupted"``), their mean over the examples at each
        position (``"mean"``, over the examples long enough to have it) or zero (``"zero"``).
        Returns a list (one per configuration) of per-example lists."""
        sources = self.sources(source)
        out = []
        step = self.copies_per_forward()
        for start in range(0, len(configs), step):
            chunk = [set(config) for config in configs[start:start + step]]
            out += self._node_run(chunk, sources)
        return out

    def sources(self, source):
        """``{("z", l): [n, p, h, e], ("mlp", l): [n, p, d]}``: what ``node_values`` puts in."""
        if source not in self._sources:
            if source == "corrupted":
                if self.corrupted is None:
                    raise ExampleError("these examples were read without corrupted prompts")
                corrupt = self.corrupt
                self._sources[source] = {key: value for key, value in corrupt.items()
                                         if key[0] in ("z", "mlp")}
            elif source in ("mean", "zero"):
                names = {
                    (kind, layer): act_name("z" if kind == "z" else "mlp_out", layer)
                    for layer in range(self.cfg.n_layers)
                    for kind in ("z", "mlp")
                }
                cache = self.model.run_with_cache(self.clean, names_filter=list(names.values()))[1]
                self._sources[source] = {
                    key: self._mean(cache[name]) if source == "mean" else cache[name] * 0.0
                    for key, name in names.items()
                }
            else:
                raise ValueError(f"source={source!r}; expected 'corrupted', 'mean' or 'zero'")
        return self._sources[source]

    def _mean(self, activation):
        """The mean over the examples at each position (over those whose prompt reaches it),
        repeated for every example: ``[n, p, ...]``."""
        shape = activation.shape
        valid = [
            [[1.0 if position < length else 0.0] for position in range(self.width)] for length in self.lengths
        ]
        weights = as_tensor(valid, backend=activation.backend)  # [n, p, 1]
        flat = activation.reshape(shape[0], shape[1], -1)
        mean = (flat * weights).sum(axis=0) / weights.sum(axis=0)  # [p, features]
        return mean.unsqueeze(0).broadcast_to(*flat.shape).reshape(*shape)

    def _node_run(self, configs, sources):
        cfg, copies = self.cfg, len(configs)
        rows = self._rows(copies)
        backend = self.model.backend
        hooks = []
        for layer in range(cfg.n_layers):
            heads = [
                [1.0 if head(layer, h) in config else 0.0 for h in range(cfg.n_heads)] for config in configs
            ]
            if any(any(row) for row in heads):
                mask = (
                    as_tensor([[[[v] for v in row]] for row in heads for _ in range(self.n)], backend=backend)
                    > 0.5
                )  # [C*n, 1, h, 1]
                hooks.append((act_name("z", layer), _replace(mask, sources[("z", layer)], rows)))
            mlps = [1.0 if mlp(layer) in config else 0.0 for config in configs]
            if any(mlps):
                mask = as_tensor([[[v]] for v in mlps for _ in range(self.n)], backend=backend) > 0.5
                hooks.append((act_name("mlp_out", layer), _replace(mask, sources[("mlp", layer)], rows)))
        tokens = self.clean.take(rows, axis=0) if copies > 1 else self.clean
        return self.values(self.model.run_with_hooks(tokens, fwd_hooks=hooks))

    def edge_values(self, configs, patched_nodes=None):
        """For each configuration (a set of removed edges ``(upstream, downstream)``), the
        per-example metric of the clean run with those edges taken from the corrupted run
        (and, when given, the components in ``patched_nodes`` patched as in ``node_values``)."""
        out = []
        step = self.copies_per_forward()
        self.clean_run  # noqa: B018 -- both runs' activations, before any hook of ours is in place
        for start in range(0, len(configs), step):
            out += _EdgeRun(
                self, [set(config) for config in configs[start : start + step]], set(patched_nodes or ())
            ).values()
        return out


def head_outputs(model, layer, z):
    """Each head's write into the residual stream, ``z_h @ W_O[h]``: ``[b, p, h, e]`` -> ``[h, b, p, d]``."""
    b, p, h, e = z.shape
    w_o = model.blocks[layer].attn.W_O_heads  # [h, e, d]
    return (z.permute(2, 0, 1, 3).reshape(h, b * p, e) @ w_o).reshape(h, b, p, -1)


def _replace(mask, source, rows):
    def hook(activation, hook):
        return where(mask, source.take(rows, axis=0), activation)

    return hook


class _EdgeRun:
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
                        _replace(
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
                        _replace(
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
