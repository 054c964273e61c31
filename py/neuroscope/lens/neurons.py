"""The neuron view of the Lens: the tokens on which one MLP neuron fires most.

``neurons`` wraps ``analysis.top_activating_tokens`` (dataset examples, as in
Elhage et al., "Softmax Linear Units", 2022) over a text sample;
``sample_texts`` is that sample: the held-out natural text stored next to the
demo model (``text_heldout.json``, written by ``demo.data.write_heldout``), or
a few built-in English sentences when that file is absent.
"""

import json
import os

from ..analysis import top_activating_tokens
from ..distributed import DistributedAnalysis
from .common import check_k, dataset_cluster, literal, round_sig

# Used when no text_heldout.json is found: plain English with repeated words and
# names, so token-, position- and induction-like neurons all have something to fire on.
BUILTIN_TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    "When Mary and John went to the store, John gave a drink to Mary.",
    "The capital of France is Paris, and the capital of Japan is Tokyo.",
    "In 1969, two astronauts walked on the Moon while a third orbited above them.",
    "She opened the window, looked at the rain, and closed the window again.",
    "Water boils at 100 degrees Celsius at sea level, but at a lower temperature on a mountain.",
    "def add(a, b):\n    return a + b",
    "The committee will meet on Monday, Wednesday and Friday to discuss the budget.",
    "Harry Potter went to Hogwarts. Harry Potter met Ron and Hermione there.",
    "It was the best of times, it was the worst of times, it was the age of wisdom.",
    "Please send the report to the manager by the end of the week.",
    "Cats sleep for most of the day and hunt at night.",
]


def sample_texts(model=None, folder=None):
    """A list of English texts for neuron views.

    The ``samples`` of ``text_heldout.json`` (held-out Python-documentation prose,
    up to 400 characters each) from ``folder``, else from the model's own folder,
    else from the demo model's folder; ``BUILTIN_TEXTS`` when none has the file.
    """
    from ..demo import MODEL_DIR
    source = getattr(model, "source", None)
    candidates = [folder, source if isinstance(source, str) and os.path.isdir(source) else None, MODEL_DIR]
    for candidate in candidates:
        if candidate is None:
            continue
        path = os.path.join(candidate, "text_heldout.json")
        try:
            with open(path, encoding="utf-8") as handle:
                samples = json.load(handle).get("samples")
        except (OSError, ValueError, AttributeError):
            continue
        texts = [text for text in samples or () if isinstance(text, str) and text.strip()]
        if texts:
            return texts
    return list(BUILTIN_TEXTS)


NEURON_DATASETS = ("demo/text", "demo/ioi", "demo/facts")


def neurons(model, layer, neuron, texts=None, k=10, context=8, dataset=None):
    """The top-``k`` activating tokens of MLP neuron ``neuron`` in ``layer`` over ``texts``.

    ``texts`` defaults to ``sample_texts(model)`` (and ``code`` then calls it rather
    than spelling the texts out). Returns::

        layer, neuron   as given
        hook            "blocks.{layer}.mlp.hook_post"
        n_texts         how many texts were searched
        examples        [{"text_index", "position", "token_id", "token", "activation",
                          "left": [str], "right": [str]}], largest activation first
                        (see ``analysis.top_activating_tokens``)
        code            Python source reproducing the view
    """
    check_k(k)
    if dataset is not None:
        return _over_dataset(model, layer, neuron, dataset, k, context)
    if isinstance(texts, str):
        texts = [texts]
    default = texts is None or list(texts) == sample_texts(model)
    texts = sample_texts(model) if texts is None else list(texts)
    examples = top_activating_tokens(model, layer, neuron, texts, k=k, context=context)
    for example in examples:
        example["activation"] = round_sig(example["activation"])
    source = "sample_texts(model)" if default else literal(texts)
    imports = "from neuroscope.analysis import top_activating_tokens\n"
    if default:
        imports += "from neuroscope.lens import sample_texts\n"
    code = (f"{imports}\ntexts = {source}\n"
            f"examples = top_activating_tokens(model, {layer}, {neuron}, texts, k={k}, context={context})\n")
    return {"layer": layer, "neuron": neuron, "hook": f"blocks.{layer}.mlp.hook_post",
            "n_texts": len(texts), "examples": examples, "code": code}


def _over_dataset(model, layer, neuron, dataset, k, context):
    """``neurons`` over a whole dataset (a built-in name or a file): the top tokens plus the
    neuron's activation histogram over every token and its direct logit effect."""
    from ..analysis.neurons import NeuronAnalyzer
    from .datasets import open_dataset
    data, source = open_dataset(dataset)
    analyzer = NeuronAnalyzer(model, layer)
    cluster = dataset_cluster(model, len(data))
    if cluster is None:
        profile = analyzer.profile(neuron, data, count=k, context=context)
    else:
        profile = DistributedAnalysis(model, cluster, "neuron_profile", data, layer=layer, neuron=neuron,
                                      count=k, context=context).run()
    effect = analyzer.logit_effect(neuron, k=8)
    for example in profile["examples"]:
        example["activation"] = round_sig(example["activation"])
    if cluster is None:
        code = (f"from neuroscope import Dataset, NeuronAnalyzer\n\n"
                f"neurons = NeuronAnalyzer(model, {layer})\n"
                f"profile = neurons.profile({neuron}, {source}, count={k}, "
                f"context={context})\neffect = neurons.logit_effect({neuron}, k=8)\n")
    else:
        code = (f"from neuroscope import ComputeCluster, Dataset, DistributedAnalysis, NeuronAnalyzer\n\n"
                f"# {cluster.n_workers} workers of this page share the dataset\n"
                f"profile = DistributedAnalysis(model, ComputeCluster.browser({cluster.n_workers}), "
                f"\"neuron_profile\", {source},\n"
                f"                              layer={layer}, neuron={neuron}, count={k}, "
                f"context={context}).run()\n"
                f"effect = NeuronAnalyzer(model, {layer}).logit_effect({neuron}, k=8)\n")
    return {"layer": layer, "neuron": neuron, "hook": f"blocks.{layer}.mlp.hook_post", "dataset": dataset,
            "n_texts": len(data), "n_tokens": profile["n_tokens"], "examples": profile["examples"],
            "workers": 1 if cluster is None else cluster.n_workers,
            "histogram": {"edges": [round_sig(e) for e in profile["edges"]], "counts": profile["counts"]},
            "max": round_sig(profile["max"]), "mean": round_sig(profile["mean"]),
            "fraction_active": round_sig(profile["fraction_active"]),
            "logit_effect": {side: [[token, round_sig(value)] for token, value in effect[side]]
                             for side in ("top", "bottom")},
            "code": code}


__all__ = ["BUILTIN_TEXTS", "NEURON_DATASETS", "neurons", "sample_texts"]
