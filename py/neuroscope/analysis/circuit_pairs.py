"""Clean/corrupted prompt pairs and the forward passes behind circuit discovery.

A set of clean/corrupted prompt pairs runs as one batch, right-padded: attention is causal,
so padding after a prompt's last token changes nothing before it, and each example's metric
is read at its own last token. A *configuration* is a set of nodes (heads, MLPs) or of
edges; ``PromptPairs.node_values`` / ``edge_values`` run several configurations in one
forward pass (the batch repeated once per configuration) and return the metric of every
example under each.

Nodes and edges: ``circuit_graph``; what removing an edge means: ``circuit_edges``.
"""

from ..errors import NeuroScopeError
from ..names import act_name
from ..tensor import as_tensor
from .circuit_edges import EdgeRun, head_outputs, replace_hook
from .circuit_graph import head, mlp

# Rows of one forward pass: about this many token positions (as the patching sweeps).
TOKENS_PER_FORWARD = 2048


class ExampleError(NeuroScopeError, ValueError):
    """An example that cannot be used, named by its index."""


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
                hooks.append((act_name("z", layer), replace_hook(mask, sources[("z", layer)], rows)))
            mlps = [1.0 if mlp(layer) in config else 0.0 for config in configs]
            if any(mlps):
                mask = as_tensor([[[v]] for v in mlps for _ in range(self.n)], backend=backend) > 0.5
                hooks.append((act_name("mlp_out", layer), replace_hook(mask, sources[("mlp", layer)], rows)))
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
            out += EdgeRun(
                self, [set(config) for config in configs[start : start + step]], set(patched_nodes or ())
            ).values()
        return out
