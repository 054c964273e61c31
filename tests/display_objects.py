"""One real object of every type neuroscope.display draws, built on the demo model (a few seconds),
for tests/test_display.py and tests/browser/test_display.py."""

import functools

import neuroscope as ns
from neuroscope import lens
from neuroscope.analysis import AttentionAnalyzer, logit_lens
from neuroscope.analysis import circuit_runs as runs
from neuroscope.datasets import load_heldout

PROMPT = "When Mary and John went to the store, John gave a drink to"


@functools.cache
def demo():
    return ns.TransformerModel.from_huggingface("demo")


@functools.cache
def objects():
    """``{name: object}``: each drawn type once (lens results are the dicts the Lens draws)."""
    model = demo()
    names = [ns.act_name(short, layer) for layer in range(model.cfg.n_layers)
             for short in ("resid_pre", "resid_post", "attn_out", "mlp_out", "pattern")]
    _, cache = model.run_with_cache(PROMPT, names_filter=names)
    ioi = load_heldout("ioi")["prompts"][:8]
    features = ns.tensor([[float((i * 7 + j * 3) % 11) - 5.0 for j in range(6)] for i in range(40)])
    probe = ns.LinearProbe(features, [int(row[0] > row[1]) for row in features.tolist()])
    probe.train()
    words = ns.Dataset.from_records([{"text": f"The {word} is here", "label": word in ("cat", "dog")}
                                     for word in ("cat", "dog", "car", "bus", "sun", "sea") * 3])
    texts = [item["prompt"] for item in ioi]
    pair = [ioi[0][key] for key in ("prompt", "corrupted_prompt", "answer", "incorrect")]
    circuit = ns.Circuit("ioi", "manual", 0.0, {runs.head(3, 6): 0.6, runs.head(2, 1): 0.3, runs.mlp(0): 0.1},
                         [], 0.7, {"full": 2.0, "corrupted": 0.1}, model=model, n_layers=4, n_heads=8)
    return {
        "tensor_2d": ns.tensor([[float(i - j) for j in range(12)] for i in range(9)]),
        "tensor_3d": cache["blocks.0.hook_resid_post"],
        "cache": cache,
        "attention": AttentionAnalyzer(model).analyze_cache(cache),
        "logit_lens": logit_lens(model, cache, k=3),
        "analysis": lens.analyze(model, "The cat sat on the mat"),
        "patching": lens.patch(model, *pair, progress=False),
        "attribution": lens.attribute(model, *pair, saliency_steps=4, progress=False),
        "probe": probe,
        "probe_sweep": ns.probe_layers(model, words, "residual", progress=False),
        "neurons": ns.NeuronAnalyzer(model, 1).top_tokens_all(texts, count=4, bins=12, progress=False),
        "circuit": circuit,
        "dataset_attention": ns.DistributedAnalysis(model, None, "attention_pattern_analysis", texts,
                                                    progress=False).run(),
        "patching_average": ns.DistributedAnalysis(model, None, "activation_patching", [{"text": item["prompt"], **item} for item in ioi[:2]], kind="heads",
                                                   progress=False).run(),
        "hypothesis": ns.HypothesisTester(model, "L3H6 moves the indirect object's name to the output", ioi,
                                          draws=64, bootstrap=200, progress=False).run(),
    }
