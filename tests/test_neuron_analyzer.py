"""``NeuronAnalyzer`` on the demo model against a brute-force numpy reference (each text run
alone, ``mlp.hook_post`` held whole), and its memory bounded by ``d_mlp * count``."""

import tracemalloc

import numpy as np
import pytest

import neuroscope as ns
from neuroscope.analysis import NeuronAnalyzer, top_activating_tokens

LAYER = 1


@pytest.fixture(scope="module")
def demo():
    return ns.TransformerModel.from_huggingface("demo")


@pytest.fixture(scope="module")
def texts():
    return list(ns.Dataset.builtin("demo/text").texts) + list(ns.Dataset.builtin("demo/ioi").texts[:40])


@pytest.fixture(scope="module")
def reference(demo, texts):
    """Every token's activations, BOS excluded: ([n_tokens, d_mlp], [(text, position)])."""
    name = f"blocks.{LAYER}.mlp.hook_post"
    rows, index = [], []
    for t, text in enumerate(texts):
        act = demo.run_with_cache(demo.to_tokens(text), names_filter=[name])[1][name].numpy()[0]
        rows.append(act[1:])
        index += [(t, p) for p in range(1, len(act))]
    return np.concatenate(rows), index


def test_one_neuron_matches_brute_force_and_the_older_function(demo, texts, reference):
    acts, index = reference
    analyzer = NeuronAnalyzer(demo, LAYER)
    live = int(np.argmax(acts.max(axis=0)))  # the neuron that fires most on this data
    top = analyzer.find_top_activating_tokens(live, texts, count=12, context=4, progress=False)
    order = np.argsort(-acts[:, live], kind="stable")[:12]
    np.testing.assert_allclose([e["activation"] for e in top], acts[order, live], rtol=1e-5, atol=1e-5)
    where = {location: row for row, location in enumerate(index)}
    for entry in top:  # ties (the same first tokens in several texts) may pick either place
        row = where[(entry["text_index"], entry["position"])]
        assert entry["activation"] == pytest.approx(float(acts[row, live]), rel=1e-5, abs=1e-5)
    older = top_activating_tokens(demo, LAYER, live, texts, k=12, context=4)
    np.testing.assert_allclose([e["activation"] for e in top], [e["activation"] for e in older], rtol=1e-5,
                               atol=1e-5)
    first = top[0]
    ids = demo.to_tokens(texts[first["text_index"]])[0].tolist()
    assert first["token_id"] == ids[first["position"]] and f"⟦{first['token']}⟧" in first["context"]
    assert "".join(first["left"]) == demo.to_string(ids[max(0, first["position"] - 4):first["position"]])


def test_every_neuron_in_one_pass_matches_brute_force(demo, texts, reference):
    acts, index = reference
    summary = NeuronAnalyzer(demo, LAYER).top_tokens_all(texts, count=5, bins=20, progress=False)
    assert summary.n_tokens == len(index)
    np.testing.assert_allclose(summary.max, acts.max(axis=0), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(summary.min, acts.min(axis=0), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(summary.mean, acts.mean(axis=0), rtol=1e-4, atol=1e-5)
    assert summary.dead == [int(n) for n in np.nonzero(acts.max(axis=0) <= 0.0)[0]]
    assert summary.dead_fraction == pytest.approx(len(summary.dead) / demo.cfg.d_mlp)
    for neuron in (0, 17, int(np.argmax(acts.max(axis=0))), demo.cfg.d_mlp - 1):
        want = np.sort(acts[:, neuron])[::-1][:5]
        np.testing.assert_allclose([e["activation"] for e in summary.top[neuron]], want, rtol=1e-5, atol=1e-5)
        edges, counts = summary.histogram(neuron)
        at_least = [int((acts[:, neuron] >= np.float32(edge)).sum()) for edge in edges]
        want = [len(acts) - at_least[0]] + [a - b for a, b in zip(at_least, at_least[1:])] + [at_least[-1]]
        assert counts == want and sum(counts) == len(acts)


def test_logit_effect_is_w_out_times_w_u(demo):
    effect = demo.weights[f"blocks.{LAYER}.mlp.W_out"].numpy()[7] @ demo.W_U.numpy()
    got = NeuronAnalyzer(demo, LAYER).logit_effect(7, k=4)
    np.testing.assert_allclose([v for _, v in got["top"]], np.sort(effect)[::-1][:4], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose([v for _, v in got["bottom"]], np.sort(effect)[:4], rtol=1e-4, atol=1e-5)
    assert got["top"][0][0] == demo.tokenizer.decode([int(np.argmax(effect))])


def test_memory_is_bounded_by_neurons_times_count(demo):
    ioi = ns.Dataset.from_records(list(ns.Dataset.builtin("demo/ioi")) * 2)
    analyzer = NeuronAnalyzer(demo, LAYER)
    peaks = []
    for n in (128, 384):  # two chunks of examples, then six
        tracemalloc.start()
        analyzer.top_tokens_all(ioi[:n], count=3, bins=8, progress=False)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    assert peaks[1] < 1.1 * peaks[0], f"3x the tokens took {peaks[1] / peaks[0]:.2f}x the memory"


def test_bad_arguments(demo):
    analyzer = NeuronAnalyzer(demo, LAYER)
    with pytest.raises(ns.LayerNotFoundError):
        NeuronAnalyzer(demo, 9)
    with pytest.raises(ns.InvalidIndexError, match="neuron 5000 requested"):
        analyzer.find_top_activating_tokens(5000, ["a text"])
    with pytest.raises(ValueError, match="count=0"):
        analyzer.top_tokens_all(["a text"], count=0)
