"""Circuit discovery: which heads and MLPs (and which edges between them) carry a task.

``CircuitFinder(model).find_circuit_for(task, examples, method=..., threshold=...)`` scores
the model's components on clean/corrupted prompt pairs and returns a ``Circuit``. Every
score is a fraction of the *full effect*, ``metric(clean) - metric(corrupted)`` (means over
the examples; the metric defaults to the logit difference answer - incorrect at the last
token), so one threshold means the same for every method and model.

Methods:

* ``"activation_patching"`` (node level; noising, Heimersheim & Nanda 2024): each head
  (``hook_z``, one head) and each MLP (``hook_mlp_out``) is patched, alone and at every
  position, from the corrupted run into the clean one; its score is the fraction of the full
  effect it removes, and the circuit keeps the components scoring at least ``threshold``.
  One forward pass per component (several share a pass).
* ``"path_patching"`` (Wang et al., "Interpretability in the Wild", 2022): the nodes of
  ``"activation_patching"``, then every edge between them (and from the embeddings, and into
  the logits) scored by patching that edge alone: the receiver reads the sender's corrupted
  output, everything else is clean. Every scored edge is kept with its weight.
* ``"acdc"`` (Conmy et al., "Towards Automated Circuit Discovery", 2023): start from the
  full graph and visit the downstream nodes from the logits back to layer 0; remove each of
  a node's incoming edges (taking it from the corrupted run, on top of every removal so
  far) when that costs less than ``threshold`` of the full effect. Nodes left with no
  outgoing edge lose their incoming edges without a test. One forward pass per tested edge.
* ``"eap"`` / ``"eap-ig"`` (Syed et al. 2023; Hanna et al. 2024): every edge scored by
  ``attribution_patching(..., nodes="edges")`` (one backward pass, or ``ig_steps``); edges
  scoring at least ``threshold`` (in absolute value) are kept.

For the edge methods the circuit's components are the nodes with a kept edge on a path to
the logits, ranked by the summed weight of their kept outgoing edges. ``Circuit.faithfulness``
is always the node-level measure: the mean metric with every head and MLP *outside* the
circuit patched from the corrupted run at all positions, divided by the full model's (on
``heldout`` examples when given); edge circuits also have ``edge_faithfulness`` (every edge
outside the circuit removed).

Graph, node and edge names: see ``circuit_runs``.
"""

import json
import math

from ..progress import progress_reporter
from ..tensor import as_tensor
from . import circuit_runs as runs
from .circuit_runs import EMBED, LOGITS, ExampleError, PromptPairs, as_records

METHODS = ("activation_patching", "path_patching", "acdc", "eap", "eap-ig")
SPEC_VERSION = 1
_TASKS = {"ioi": "ioi", "indirect object identification": "ioi", "facts": "facts", "fact recall": "facts"}


def _mean(values):
    return sum(values) / len(values)


class Circuit:
    """A circuit found by ``CircuitFinder``: components ranked by importance, weighted edges,
    and how much of the task the circuit alone keeps (``faithfulness``)."""

    def __init__(self, task, method, threshold, scores, edges, faithfulness, metric, model=None,
                 model_source=None, model_hash=None, n_examples=None, n_heldout=None, n_layers=None,
                 n_heads=None, edge_faithfulness=None, edge_kind="residual", n_kv_heads=None):
        self.task, self.method, self.threshold = task, method, threshold
        ranked = sorted(scores.items(), key=lambda item: (-item[1], _order_key(item[0])))
        self.scores = dict(ranked)
        self._edges = list(edges)
        self.faithfulness, self.edge_faithfulness = faithfulness, edge_faithfulness
        self.metric = dict(metric)
        self.model = model
        self.model_source, self.model_hash = model_source, model_hash
        self.n_examples, self.n_heldout = n_examples, n_heldout
        self.n_layers, self.n_heads = n_layers, n_heads
        self.n_kv_heads = n_kv_heads or n_heads  # key/value heads (grouped-query attention: fewer)
        self.edge_kind = edge_kind
        self.code = None  # the Python that found it (set by CircuitFinder)

    def components(self):
        """``("head", layer, head)`` / ``("mlp", layer)``, most important first."""
        return list(self.scores)

    def edges(self):
        """``(from, to, weight)``: from ``("embed",)``, a head or an MLP; to a head's input
        (``("head", l, h, "q" | "k" | "v")``), an MLP or ``("logits",)``. ``weight`` is the
        edge's score (a fraction of the full effect), or None for a node-level circuit, whose
        edges are every residual-stream connection between its components (unscored)."""
        return list(self._edges)

    def __len__(self):
        return len(self.scores)

    def __contains__(self, component):
        return tuple(component) in self.scores

    @property
    def size(self):
        """``(components kept, heads + MLPs of the model)``."""
        return len(self.scores), (self.n_layers * (self.n_heads + 1) if self.n_layers else None)

    def _repr_html_(self):
        from ..display_hooks import html_of  # display imports this module: see display_hooks

        return html_of(self)

    def inspect(self):
        """Fields, shapes and views of this object (``neuroscope.inspect``)."""
        from ..display_hooks import inspect

        return inspect(self)

    def __repr__(self):
        kept, total = self.size
        faith = f", faithfulness={self.faithfulness:.3f}" if self.faithfulness is not None else ""
        return (f"Circuit({self.task!r}, method={self.method!r}, {kept} of {total} components"
                f"{faith}, top={[_label(c) for c in self.components()[:3]]})")

    # -- using it -----------------------------------------------------------------------------
    def _need_model(self, what):
        if self.model is None:
            raise ValueError(f"Circuit.{what} needs the model: Circuit.from_spec(spec, model=model)")
        return self.model

    def outside(self):
        """Every head and MLP of the model that is not in the circuit."""
        model = self._need_model("outside()")
        return [c for c in runs.components(model.cfg) if c not in self.scores]

    def evaluate(self, examples, metric=None):
        """Faithfulness on ``examples`` (the same record format as ``find_circuit_for``):
        ``{"faithfulness", "full", "circuit", "corrupted"}`` with the means of the metric."""
        model = self._need_model("evaluate()")
        pairs = examples if isinstance(examples, PromptPairs) else \
            PromptPairs(model, as_records(examples), metric)
        full, corrupted, circuit = (
            _mean(v) for v in pairs.node_values([set(), set(runs.components(model.cfg)), set(self.outside())])
        )
        return {
            "faithfulness": circuit / full if full else math.nan,
            "full": full,
            "circuit": circuit,
            "corrupted": corrupted,
        }

    def ablate(self, corrupted=None, ablation="patch"):
        """The interventions that keep only the circuit: every head (``hook_z``, per head) and
        MLP (``hook_mlp_out``) outside it patched from ``corrupted`` (texts or token ids, the
        corrupted prompts of the batch it will run on) with ``ablation="patch"``, or
        mean-ablated over the batch (``"mean"``) or zeroed (``"zero"``). Returns a list of
        ``InterventionHook`` (JSON specs via ``to_spec()``), for ``model.hooks(...)``."""
        from ..hooks import InterventionHook
        from ..interventions import MeanAblation, Patch, ZeroAblation
        from ..names import act_name

        model = self._need_model("ablate()")
        if ablation not in ("patch", "mean", "zero"):
            raise ValueError(f"ablation={ablation!r}; expected 'patch', 'mean' or 'zero'")
        if ablation == "patch":
            if corrupted is None:
                raise ValueError(
                    "ablation='patch' needs corrupted= (the corrupted prompts, texts or token ids)"
                )
            texts = isinstance(corrupted, str) or (
                isinstance(corrupted, list) and corrupted and all(isinstance(text, str) for text in corrupted)
            )
            source = model.to_tokens(corrupted) if texts else corrupted

        def action():
            if ablation == "patch":
                return Patch(source_tokens=source)
            return MeanAblation() if ablation == "mean" else ZeroAblation()

        hooks = []
        outside = self.outside()
        for layer in range(model.cfg.n_layers):
            heads = [c[2] for c in outside if c[0] == "head" and c[1] == layer]
            if heads:
                hooks.append(InterventionHook(name=act_name("z", layer), action=action(), heads=heads))
            if runs.mlp(layer) in outside:
                hooks.append(InterventionHook(name=act_name("mlp_out", layer), action=action()))
        return hooks

    def _repr_svg_(self):
        """Jupyter shows a circuit as its graph."""
        return self.visualize().svg()

    def visualize(self, width=None):
        """The circuit as an SVG graph (``CircuitFigure``: ``.svg``, ``.save(path)``, shown
        inline in Jupyter): layers as rows from the embeddings at the bottom to the logits at
        the top, heads and MLPs as nodes sized by score (circuit members filled), edges by
        weight (q/k/v of one head drawn as one edge, labelled with the inputs it reaches)."""
        from .circuit_figure import CircuitFigure

        return CircuitFigure(self, width=width)

    # -- specs ----------------------------------------------------------------------------------
    def to_spec(self):
        """A JSON-able dict (travels in share links): ``Circuit.from_spec(spec, model=...)``."""
        return {
            "type": "circuit",
            "version": SPEC_VERSION,
            "task": self.task,
            "method": self.method,
            "threshold": self.threshold,
            "model": {
                "source": self.model_source,
                "hash": self.model_hash,
                "n_layers": self.n_layers,
                "n_heads": self.n_heads,
                "n_kv_heads": self.n_kv_heads,
            },
            "components": [[list(c), self.scores[c]] for c in self.scores],
            "edges": [[list(u), list(d), w] for u, d, w in self._edges],
            "edge_kind": self.edge_kind,
            "faithfulness": self.faithfulness,
            "edge_faithfulness": self.edge_faithfulness,
            "metric": self.metric,
            "n_examples": self.n_examples,
            "n_heldout": self.n_heldout,
        }

    def to_json(self):
        return json.dumps(self.to_spec())

    @classmethod
    def from_spec(cls, spec, model=None):
        """The circuit of ``to_spec()``; with ``model`` its ``evaluate`` / ``ablate`` work (a model
        whose content hash differs from the spec's is refused)."""
        if isinstance(spec, str):
            try:
                spec = json.loads(spec)
            except ValueError as error:
                raise ValueError(f"not a circuit spec: {error}") from None
        if not isinstance(spec, dict) or spec.get("type") != "circuit":
            raise ValueError(f"not a circuit spec (expected a dict with type 'circuit'): {str(spec)[:80]!r}")
        if spec.get("version") != SPEC_VERSION:
            raise ValueError(
                f"circuit spec version {spec.get('version')!r}; this NeuroScope reads version {SPEC_VERSION}"
            )
        info = spec.get("model") or {}
        n_layers, n_heads = info.get("n_layers"), info.get("n_heads")
        try:
            scores = {_component(c, n_layers, n_heads): float(score) for c, score in spec["components"]}
            edges = [(_node(u), _node(d), None if w is None else float(w)) for u, d, w in spec["edges"]]
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"malformed circuit spec: {error}") from None
        if model is not None:
            if info.get("hash") and model.content_hash() != info["hash"]:
                raise ValueError(
                    f"this circuit was found on the model with content hash {info['hash'][:12]}..., "
                    f"not this one ({model.content_hash()[:12]}...)"
                )
            if (n_layers, n_heads) != (model.cfg.n_layers, model.cfg.n_heads):
                raise ValueError(
                    f"the circuit's model has {n_layers} layers x {n_heads} heads; this one "
                    f"{model.cfg.n_layers} x {model.cfg.n_heads}"
                )
        return cls(
            spec.get("task"),
            spec.get("method"),
            spec.get("threshold"),
            scores,
            edges,
            spec.get("faithfulness"),
            spec.get("metric") or {},
            model=model,
            model_source=info.get("source"),
            model_hash=info.get("hash"),
            n_examples=spec.get("n_examples"),
            n_heldout=spec.get("n_heldout"),
            n_layers=n_layers,
            n_heads=n_heads,
            edge_faithfulness=spec.get("edge_faithfulness"),
            edge_kind=spec.get("edge_kind", "residual"),
            n_kv_heads=info.get("n_kv_heads"),
        )

    def to_dict(self):
        return self.to_spec()

    def table(self):
        """``[(label, score)]`` most important first: ``[("L2H3", 0.41), ("MLP1", 0.2), ...]``."""
        return [(_label(c), s) for c, s in self.scores.items()]


class CircuitFinder:
    """``CircuitFinder(model).find_circuit_for(task, examples, method=..., threshold=...)``.

    ``progress``: None for a stderr bar, False for none, or a callable ``(done, total)``
    (raising in it stops the search)."""

    def __init__(self, model, progress=None):
        self.model = model
        self.progress = progress

    def find_circuit_for(
        self,
        task,
        examples=None,
        method="activation_patching",
        threshold=0.1,
        metric=None,
        heldout=None,
        ig_steps=5,
    ):
        """The circuit of ``task`` (a label; ``"ioi"`` / ``"indirect object identification"`` and
        ``"facts"`` / ``"fact recall"`` take the demo model's held-out pairs when ``examples`` is
        None) on ``examples``: a ``Dataset`` or records with ``prompt``, ``corrupted_prompt``,
        ``answer``, ``incorrect`` (or the Lens's ``clean``, ``corrupted``, ``answer``, ``wrong``).
        ``metric``: None for the logit difference at the last token, or ``metric(last_logits
        [b, v], examples) -> one value per example``. ``heldout``: examples on which
        ``faithfulness`` is measured (default: ``examples``). See the module docstring."""
        if method not in METHODS:
            raise ValueError(f"method={method!r}; expected one of {list(METHODS)}")
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 <= threshold <= 1:
            raise ValueError(f"threshold={threshold!r}; expected a fraction of the full effect in [0, 1]")
        if not (isinstance(ig_steps, int) and not isinstance(ig_steps, bool) and ig_steps >= 1):
            raise ValueError(f"ig_steps={ig_steps!r}; expected a positive integer")
        given = examples
        if examples is None:
            examples = builtin_examples(task, self.model)
        pairs = PromptPairs(self.model, as_records(examples), metric)
        full, corrupted = _mean(pairs.clean_values()), _mean(pairs.corrupted_values())
        effect = full - corrupted
        if not abs(effect) > 1e-6:
            raise ExampleError(
                f"the metric is {full:.4g} on the clean prompts and {corrupted:.4g} on the "
                "corrupted ones: there is no effect to explain"
            )
        search = _Search(self.model, pairs, full, effect, threshold, self.progress, method)
        found = {
            "activation_patching": search.nodes,
            "path_patching": search.path_patching,
            "acdc": search.acdc,
            "eap": lambda: search.eap(1),
            "eap-ig": lambda: search.eap(ig_steps),
        }[method]()
        scores, edges, kind, kept_edges = found
        cfg = self.model.cfg
        circuit = Circuit(
            _task_label(task),
            method,
            threshold,
            scores,
            edges,
            None,
            {
                "name": "logit_diff" if metric is None else getattr(metric, "__name__", "custom"),
                "full": full,
                "corrupted": corrupted,
            },
            model=self.model,
            model_source=_source(self.model),
            model_hash=self.model.content_hash(),
            n_examples=len(pairs),
            n_layers=cfg.n_layers,
            n_heads=cfg.n_heads,
            edge_kind=kind,
            n_kv_heads=cfg.n_kv_heads,
        )
        test = pairs if heldout is None else PromptPairs(self.model, as_records(heldout), metric)
        measured = circuit.evaluate(test)
        circuit.faithfulness = measured["faithfulness"]
        circuit.metric["heldout"] = {
            "full": measured["full"],
            "circuit": measured["circuit"],
            "corrupted": measured["corrupted"],
        }
        circuit.n_heldout = None if heldout is None else len(test)
        if kept_edges is not None:
            removed = set(runs.all_edges(cfg)) - kept_edges
            circuit.edge_faithfulness = _mean(test.edge_values([removed])[0]) / measured["full"]
        options = (
            [repr(task)]
            + (["examples"] if given is not None else [])
            + [f"method={method!r}", f"threshold={threshold!r}"]
            + (["heldout=heldout"] if heldout is not None else [])
            + ([f"ig_steps={ig_steps}"] if method == "eap-ig" and ig_steps != 5 else [])
        )
        circuit.code = (
            "from neuroscope import CircuitFinder\n\n"
            + (examples_code(given, "examples") if given is not None else "")
            + (examples_code(heldout, "heldout") if heldout is not None else "")
            + ("# metric: a custom function, not reproduced here\n" if metric is not None else "")
            + f"circuit = CircuitFinder(model).find_circuit_for({', '.join(options)})\n"
            + "circuit.visualize()\n"
        )
        return circuit


class _Search:
    def __init__(self, model, pairs, full, effect, threshold, progress, method):
        self.model, self.cfg, self.pairs = model, model.cfg, pairs
        self.full, self.effect, self.threshold = full, effect, threshold
        self.report = progress_reporter(progress, f"circuit ({method})")

    def _measure(self, configs, run):
        """``run`` (node_values or edge_values) over ``configs``, a forward pass's worth at a time."""
        self.report(0, len(configs))
        values = []
        step = self.pairs.copies_per_forward()
        for start in range(0, len(configs), step):
            values += run(configs[start:start + step])
            self.report(len(values), len(configs))
        return values

    def node_scores(self):
        comps = runs.components(self.cfg)
        values = self._measure([{c} for c in comps], self.pairs.node_values)
        return {c: (self.full - _mean(v)) / self.effect for c, v in zip(comps, values)}

    def nodes(self):
        scores = self.node_scores()
        kept = {c: s for c, s in scores.items() if s >= self.threshold}
        return kept, _residual_edges(self.cfg, kept), "residual", None

    def path_patching(self):
        scores = self.node_scores()
        kept = {c: s for c, s in scores.items() if s >= self.threshold}
        edges = [(u, d) for u, d in runs.all_edges(self.cfg) if (u == EMBED or u in kept)
                 and (d == LOGITS or any(r in kept for r in runs.readers(self.cfg, d)))]
        values = self._measure([{edge} for edge in edges], self.pairs.edge_values)
        weighted = [(u, d, (self.full - _mean(v)) / self.effect) for (u, d), v in zip(edges, values)]
        return kept, weighted, "path_patching", None

    def acdc(self):
        cfg = self.cfg
        edges = runs.all_edges(cfg)
        by_reader = {}
        for u, d in edges:
            by_reader.setdefault(d, []).append(u)
        removed, weights = set(), {}
        current = self.full
        has_child = {}  # upstream node -> whether some kept edge leaves it
        total = len(edges)
        self.report(0, total)
        done = 0
        for d in reversed(runs.downstream_nodes(cfg)):
            alive = d == LOGITS or any(has_child.get(r, False) for r in runs.readers(cfg, d))
            for u in reversed(by_reader[d]):
                done += 1
                if not alive:
                    removed.add((u, d))
                    continue
                value = _mean(self.pairs.edge_values([removed | {(u, d)}])[0])
                damage = (current - value) / self.effect
                if damage < self.threshold:
                    removed.add((u, d))
                    current = value
                else:
                    weights[(u, d)] = damage
                    has_child[u] = True
                self.report(done, total)
        self.report(total, total)
        kept_edges = set(edges) - removed
        return self._from_edges(weights, kept_edges, "acdc")

    def eap(self, steps):
        from .attribution import attribution_patching

        pairs = self.pairs
        metric = edge_metric(pairs)
        result = attribution_patching(
            self.model,
            pairs.clean,
            pairs.corrupted,
            metric,
            method="eap" if steps == 1 else "eap-ig",
            nodes="edges",
            ig_steps=steps,
            progress=self.report if steps > 1 else False,
        )
        weights = {}
        for up, down, score in result.edges():
            weights[(node_of_label(up), node_of_label(down, downstream=True))] = score / self.effect
        kept = {edge for edge, w in weights.items() if abs(w) >= self.threshold}
        kept = _prune_to_logits(self.cfg, kept)
        return self._from_edges({e: weights[e] for e in kept}, kept, "eap" if steps == 1 else "eap-ig")

    def _from_edges(self, weights, kept_edges, kind):
        kept_edges = _prune_to_logits(self.cfg, kept_edges)
        scores = {}
        for u, d in kept_edges:
            if u != EMBED:
                scores[u] = scores.get(u, 0.0) + weights.get((u, d), 0.0)
        edges = [(u, d, weights.get((u, d))) for u, d in runs.all_edges(self.cfg) if (u, d) in kept_edges]
        return scores, edges, kind, kept_edges


def edge_metric(pairs):
    """The pairs' metric as a differentiable function of the whole logits ``[n, p, v]`` -> mean."""
    index = [row * pairs.width + pairs.lengths[row] - 1 for row in range(pairs.n)]

    def metric(logits):
        flat = logits.reshape(logits.shape[0] * logits.shape[1], logits.shape[2]).take(index, axis=0)
        if pairs.custom_metric is None:
            ids = as_tensor(
                [[a, w] for a, w in zip(pairs.answers, pairs.wrong)], dtype="int64", backend=flat.backend
            )
            picked = flat.take_along(ids, axis=1)  # [n, 2]
            return (picked[:, 0] - picked[:, 1]).mean()
        value = pairs.custom_metric(flat, pairs.examples)
        return as_tensor(value, backend=flat.backend).mean()

    return metric


def _prune_to_logits(cfg, edges):
    """The edges on some path to the logits: a reader with no kept outgoing edge drops its inputs."""
    edges = set(edges)
    while True:
        sources = {u for u, _ in edges}
        keep = {(u, d) for u, d in edges if d == LOGITS or any(r in sources for r in runs.readers(cfg, d))}
        if keep == edges:
            return edges
        edges = keep


def _residual_edges(cfg, kept):
    nodes = set(kept)
    return [
        (u, d, None)
        for u, d in runs.all_edges(cfg)
        if (u == EMBED or u in nodes) and (d == LOGITS or runs.reader(d) in nodes)
    ]


def node_of_label(label, downstream=False):
    """A graph node from an ``EdgeAttribution`` label (``"a2.h3"``, ``"m1"``, ``"a2.h3<q>"`` downstream)."""
    if label == "input":
        return EMBED
    if label == "logits":
        return LOGITS
    if label.startswith("m"):
        return runs.mlp(int(label[1:]))
    layer, rest = label[1:].split(".h", 1)
    if downstream:
        index, kind = rest.rstrip(">").split("<")
        return ("head", int(layer), int(index), kind)
    return runs.head(int(layer), int(rest))


def examples_code(examples, name):
    """Python that rebuilds ``examples`` as ``name``: a built-in ``Dataset`` by name, else the
    records as a literal."""
    from ..datasets import BUILTIN, Dataset

    if (
        isinstance(examples, Dataset)
        and examples.name in BUILTIN
        and len(examples) == len(Dataset.builtin(examples.name))
    ):
        return f"from neuroscope import Dataset\n{name} = Dataset.builtin({examples.name!r})\n"
    records = [
        {
            key: value
            for key, value in record.items()
            if isinstance(value, (str, int, float, bool, list)) or value is None
        }
        for record in as_records(examples)
    ]
    return f"{name} = {records!r}\n"


def builtin_examples(task, model=None):
    """The demo model's pairs for ``task``: ``"ioi"`` (the held-out IOI prompts and their ABC
    corruption) or ``"facts"`` (each held-out fact against another subject of its relation)."""
    key = _TASKS.get(task)
    if key == "ioi":
        from ..datasets import load_heldout

        return load_heldout("ioi")["prompts"]
    if key == "facts":
        from ..lens.examples import fact_pairs

        return fact_pairs(model, count=1000)
    raise ExampleError(f"task={task!r} has no built-in examples (built in: 'ioi', 'facts'); pass examples=")


def _task_label(task):
    return {"ioi": "indirect object identification", "facts": "fact recall"}.get(task, task)


def _source(model):
    source = getattr(model, "source", None)
    return source if isinstance(source, str) else None


def _order_key(component):
    return (component[1], 1 if component[0] == "mlp" else 0, component[2] if component[0] == "head" else 0)


def _label(component):
    if component[0] == "head":
        return f"L{component[1]}H{component[2]}"
    if component[0] == "mlp":
        return f"MLP{component[1]}"
    return component[0]


def _component(value, n_layers, n_heads):
    value = tuple(value)
    if value[:1] == ("head",) and len(value) == 3:
        ok = (
            all(isinstance(v, int) for v in value[1:])
            and (n_layers is None or 0 <= value[1] < n_layers)
            and (n_heads is None or 0 <= value[2] < n_heads)
        )
    elif value[:1] == ("mlp",) and len(value) == 2:
        ok = isinstance(value[1], int) and (n_layers is None or 0 <= value[1] < n_layers)
    else:
        ok = False
    if not ok:
        raise ValueError(
            f"component {list(value)!r}; expected ['head', layer, head] or ['mlp', layer] in range"
        )
    return value


def _node(value):
    value = tuple(value)
    if value in (EMBED, LOGITS) or value[:1] in (("head",), ("mlp",)):
        return value
    raise ValueError(f"node {list(value)!r}; expected a component, ['embed'] or ['logits']")


__all__ = ["METHODS", "Circuit", "CircuitFinder", "builtin_examples", "edge_metric", "examples_code",
           "node_of_label"]
