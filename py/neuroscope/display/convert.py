"""Each NeuroScope object (and each ``neuroscope.lens`` result dict) as the Lens views that draw it.

``display_of(obj)`` returns a ``Display``; an object with no view is refused with a TypeError
naming its type and the types that have one.
"""

from ..lens.common import round_sig
from .core import Display, part
from .tensors import tensor_part

MAX_TENSORS = 12  # tensors drawn for a cache or a dict of tensors; the rest are listed only


def display_of(obj, title=None):
    from ..tensor import Tensor

    if isinstance(obj, Display):
        return obj
    if isinstance(obj, Tensor):
        return Display([tensor_part(obj)], title=title)
    for kind, convert in _converters():
        if isinstance(obj, kind):
            parts, text = convert(obj)
            return Display(parts, title=title or type(obj).__name__, text=text)
    if isinstance(obj, dict):
        lens = lens_parts(obj)
        if lens is not None:
            return Display(lens, title=title)
    names = ", ".join(kind.__name__ for kind, _ in _converters())
    raise TypeError(
        f"no NeuroScope view draws a {type(obj).__name__}; views draw a Tensor, {names}, "
        "or a neuroscope.lens result dict"
    )


def _converters():
    from ..analysis.attention import AttentionAnalysis
    from ..analysis.attribution import EdgeAttribution
    from ..analysis.circuits import Circuit
    from ..analysis.hypothesis import HypothesisResult
    from ..analysis.logit_lens import LogitLensTable
    from ..analysis.neurons import NeuronSummary
    from ..analysis.probes import LinearProbe, ProbeSweep
    from ..cache import ActivationCache
    from ..distributed.results import DatasetAttentionScores, PatchingAverage

    return (
        (ActivationCache, cache_parts),
        (AttentionAnalysis, attention_parts),
        (LogitLensTable, logit_lens_parts),
        (EdgeAttribution, edge_parts),
        (LinearProbe, probe_parts),
        (ProbeSweep, sweep_parts),
        (NeuronSummary, neuron_summary_parts),
        (Circuit, circuit_parts),
        (HypothesisResult, hypothesis_parts),
        (DatasetAttentionScores, dataset_attention_parts),
        (PatchingAverage, patching_average_parts),
    )


def dataset_attention_parts(scores):
    """Each kind's ``[L, H]`` means as a heatmap (rows: ``layers``, columns: ``heads``)."""
    parts = [tensor_part(values, title=f"{kind}: mean over {scores.n_examples} examples")
             for kind, values in scores.scores.items()]
    top = "; ".join(f"{kind} L{layer}H{head} {value:.3g}" for kind in scores.kinds
                    for layer, head, value in scores.top_heads(kind, 1))
    return parts, f"top heads: {top}"


def patching_average_parts(average):
    """A head sweep in the patching view; a sweep by position as a heatmap."""
    title = f"{average.kind}: mean over {average.n_examples} pairs (0 = corrupted, 1 = clean)"
    if average.kind == "attn_head_out_all_pos":
        return [part("patching", {"heads": [[round_sig(v) for v in row] for row in average.mean.tolist()]},
                     title)], ""
    return [tensor_part(average.mean, title=title)], ""


def cache_parts(cache):
    names = list(cache.keys())
    lines = [f"{name}  {list(cache[name].shape)} {cache[name].dtype}" for name in names]
    parts = [tensor_part(cache[name], title=name) for name in names[:MAX_TENSORS]]
    if len(names) > MAX_TENSORS:
        lines.append(f"(first {MAX_TENSORS} of {len(names)} drawn)")
    return parts, "\n".join(lines)


def attention_props(analysis, scores=None):
    from ..tensor import stack

    patterns = stack([analysis.patterns[layer][0] for layer in analysis.layers])  # [L, H, q, k]
    tokens = (
        analysis.str_tokens
        if analysis.str_tokens is not None
        else [str(t) for t in analysis.tokens[0].tolist()]
    )
    table = {
        kind: [[round_sig(v) for v in row] for row in values.tolist()]
        for kind, values in analysis.scores.items()
    }
    return {
        "patterns": patterns,
        "tokens": list(tokens),
        "scores": table,
        "selected": {"layer": 0, "head": 0},
        "scoreKind": scores or next(iter(table), None),
    }


def attention_parts(analysis):
    note = (
        (
            f"layers {analysis.layers}, heads {analysis.heads}: rows and columns of the view are these "
            "(row i is layers[i])"
        )
        if analysis.layers != list(range(len(analysis.layers)))
        else ""
    )
    return [part("attention", attention_props(analysis))], note


def logit_lens_props(table):
    names = table.top_tokens or [[[str(i) for i in cell] for cell in row] for row in table.top_ids]
    cells = [
        [
            [{"text": text, "prob": round_sig(prob)} for text, prob in zip(row_names, row_probs)]
            for row_names, row_probs in zip(names_row, probs_row)
        ]
        for names_row, probs_row in zip(names, table.top_probs)
    ]
    tokens = table.input_str_tokens or [str(t) for t in table.input_tokens]
    return {"table": cells, "tokens": [tokens[p] for p in table.positions], "layers": list(table.layers)}


def logit_lens_parts(table):
    return [part("logit_lens", logit_lens_props(table))], ""


def edge_parts(edges):
    top = "\n".join(f"{up} -> {down}: {score:+.4g}" for up, down, score in edges.top(10))
    return [tensor_part(edges.scores, title="edge scores [upstream, downstream]")], f"top edges:\n{top}"


def probe_parts(probe):
    parts = []
    direction = probe.weights  # None until train()
    if direction is not None:
        parts.append(tensor_part(direction, title="weights [rows, d]"))
    return parts, repr(probe)


def sweep_props(sweep):
    return {
        "layers": sweep.layers,
        "train": [round_sig(a) for a in sweep.train_accuracy],
        "test": [None if a is None else round_sig(a) for a in sweep.test_accuracy],
        "chance": None,
        "dataset": "probe sweep",
        "component": sweep.component,
        "classes": [str(c) for c in sweep.classes],
        "nTrain": sweep.n_train,
        "nTest": sweep.n_test,
    }


def sweep_parts(sweep):
    return [part("probes", sweep_props(sweep))], repr(sweep)


def neuron_summary_parts(summary, neuron=None):
    from ..tensor import tensor

    neuron = max(range(len(summary.max)), key=summary.max.__getitem__) if neuron is None else neuron
    edges, counts = summary.histogram(neuron)
    # The summary's first and last counts lie below edges[0] and above edges[-1]: close those bins
    # at the neuron's own minimum and maximum so that every count has its two edges.
    edges = [min(summary.min[neuron], edges[0]), *edges, max(summary.max[neuron], edges[-1])]
    props = {
        "layer": summary.layer,
        "neuron": neuron,
        "examples": summary.top[neuron],
        "nTokens": summary.n_tokens,
        "histogram": {"edges": edges, "counts": counts},
    }
    maxima = tensor([float(v) for v in summary.max], dtype="float32")
    return (
        [
            part("neurons", props, f"neuron {neuron} (the largest maximum)"),
            tensor_part(maxima, title="maximum activation per neuron"),
        ],
        repr(summary),
    )


def circuit_props(circuit):
    return {
        "svg": circuit.visualize().svg(),
        "components": [component_props(c, s) for c, s in circuit.scores.items()],
        "method": circuit.method,
        "threshold": circuit.threshold,
        "task": circuit.task,
        "nExamples": circuit.n_examples,
        "nHeldout": circuit.n_heldout,
        "nComponents": circuit.size[1],
        "faithfulness": _round(circuit.faithfulness),
        "edgeFaithfulness": _round(circuit.edge_faithfulness),
        "metric": {key: _round(value) for key, value in circuit.metric.items()},
        "ablated": [],
    }


def circuit_parts(circuit):
    edges = ", ".join(f"{component_label(u)}->{component_label(d)}" for u, d, _ in circuit.edges()[:20])
    return [part("circuit", circuit_props(circuit))], f"{circuit!r}\nedges: {edges}"


def hypothesis_parts(result):
    from ..tensor import tensor

    parts = (
        [
            tensor_part(
                tensor([float(v) for v in result.null], dtype="float32"),
                title="null distribution (random components of the same kinds)",
            )
        ]
        if result.null
        else []
    )
    return parts, result.summary()


def component_props(component, score):
    """One circuit component as the circuit view lists it (as ``lens.find_circuit`` does)."""
    kind, layer = component[0], component[1]
    head = component[2] if kind == "head" else None
    return {
        "label": component_label(component),
        "kind": kind,
        "layer": layer,
        "head": head,
        "score": round_sig(score),
    }


def component_label(node):
    """``L{layer}H{head}`` (``<q|k|v>`` for a head's input), ``MLP{layer}``, ``embed`` or ``logits``."""
    if node[0] in ("embed", "logits"):
        return node[0]
    if node[0] == "head":
        return f"L{node[1]}H{node[2]}" + (f"<{node[3]}>" if len(node) == 4 else "")
    return f"MLP{node[1]}"


def _round(value):
    return None if value is None else round_sig(value)


def lens_parts(result):
    """The views of a ``neuroscope.lens`` result dict (the props the Lens app passes), or None."""
    keys = set(result)
    if {"tokens", "attention", "logit_lens", "activation_norms"} <= keys:
        tokens = result["tokens"]
        return [
            part(
                "tokens",
                {
                    "tokens": tokens,
                    "predictions": result["predictions"],
                    "residualNorms": result["residual_norms"],
                    "hovered": len(tokens) - 1,
                },
            ),
            part(
                "attention",
                {
                    "patterns": result["attention"]["patterns"],
                    "tokens": tokens,
                    "scores": result["attention"]["scores"],
                    "selected": {"layer": 0, "head": 0},
                    "scoreKind": "induction",
                },
            ),
            part("logit_lens", {"table": result["logit_lens"], "tokens": tokens}),
            part(
                "activations",
                {"norms": result["activation_norms"], "tokens": tokens, "component": "residual"},
            ),
        ]
    common = {
        "resid": result.get("resid"),
        "heads": result.get("heads"),
        "mlp": result.get("mlp"),
        "tokens": result.get("tokens"),
        "cleanLogitDiff": result.get("clean_logit_diff"),
        "corruptedLogitDiff": result.get("corrupted_logit_diff"),
    }
    if {"method", "resid", "heads", "mlp", "clean_logit_diff"} <= keys:
        saliency = result.get("saliency")
        return [
            part(
                "attribution",
                dict(
                    common,
                    method=result["method"],
                    exact=None,
                    saliency=saliency
                    and {
                        "scores": saliency["scores"],
                        "value": saliency["value"],
                        "baselineValue": saliency["baseline_value"],
                        "delta": saliency["delta"],
                        "steps": saliency["steps"],
                    },
                ),
            )
        ]
    if {"resid", "heads", "mlp", "clean_logit_diff"} <= keys:
        return [part("patching", common)]
    if {"layer", "neuron", "examples"} <= keys:
        return [
            part(
                "neurons",
                {
                    "layer": result["layer"],
                    "neuron": result["neuron"],
                    "examples": result["examples"],
                    "dataset": result.get("dataset"),
                    "nTokens": result.get("n_tokens"),
                    "histogram": result.get("histogram"),
                    "logitEffect": result.get("logit_effect"),
                },
            )
        ]
    if {"layers", "train", "test", "chance"} <= keys:
        return [
            part(
                "probes",
                {
                    "layers": result["layers"],
                    "train": result["train"],
                    "test": result["test"],
                    "chance": result["chance"],
                    "dataset": result.get("dataset"),
                    "component": result.get("component"),
                    "classes": result.get("classes", []),
                    "nTrain": result.get("n_train"),
                    "nTest": result.get("n_test"),
                },
            )
        ]
    if {"svg", "components", "faithfulness"} <= keys:
        return [
            part(
                "circuit",
                {
                    "svg": result["svg"],
                    "components": result["components"],
                    "method": result.get("method"),
                    "threshold": result.get("threshold"),
                    "task": result.get("task"),
                    "nExamples": result.get("n_examples"),
                    "nHeldout": result.get("n_heldout"),
                    "nComponents": result.get("n_components"),
                    "faithfulness": result["faithfulness"],
                    "edgeFaithfulness": result.get("edge_faithfulness"),
                    "metric": result.get("metric"),
                    "ablated": [],
                },
            )
        ]
    return None
