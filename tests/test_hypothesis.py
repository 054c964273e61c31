"""HypothesisTester: effect, bootstrap interval and permutation test of a claim about components.

On the demo model (IOI, 32 held-out prompts, their ABC corruptions as resampling inputs) a
claim about the IOI circuit's top head (L3H6) is supported and a claim about a head whose
patching effect is about 0 (L2H1) is not. The exact permutation p-value equals the rank of
the claim among every head measured one by one; the bootstrap interval agrees with the normal
approximation; runs are seeded; sentences are parsed, and what cannot be parsed is named.
"""

import json
import math

import numpy as np
import pytest

import neuroscope as ns
from neuroscope.analysis import circuit_runs as runs
from neuroscope.analysis.hypothesis import Hypothesis, HypothesisError, HypothesisTester, parse_components
from neuroscope.datasets import load_heldout


@pytest.fixture(scope="module")
def demo():
    return ns.TransformerModel.from_huggingface("demo")


@pytest.fixture(scope="module")
def ioi():
    return load_heldout("ioi")["prompts"][:32]


@pytest.fixture(scope="module")
def top_head(demo, ioi):
    return HypothesisTester(demo, "Layer 3 head 6 moves the indirect object's name to the output", ioi,
                            progress=False).run()


def test_a_claim_about_the_top_ioi_head_is_supported(top_head):
    assert top_head.ablation == "resample" and top_head.exact and len(top_head.null) == 32
    assert top_head.supported, top_head.summary()
    assert top_head.effect < -1.0 and top_head.ci[1] < 0 and top_head.p_value == pytest.approx(1 / 32)


def test_a_claim_about_a_head_without_effect_is_not_supported(demo, ioi):
    result = HypothesisTester(demo, "L2H1 performs subject extraction", ioi, progress=False).run()
    assert not result.supported and result.p_value > 0.2 and result.ci[0] < 0 < result.ci[1], result


def test_the_exact_p_value_is_the_rank_among_all_heads(demo, ioi, top_head):
    pairs = runs.PromptPairs(demo, ioi)
    clean = np.mean(pairs.clean_values())
    heads = [runs.head(l, h) for l in range(4) for h in range(8)]
    effects = [np.mean(v) - clean for v in pairs.node_values([{h} for h in heads])]
    mine = effects[heads.index(runs.head(3, 6))]
    assert mine == pytest.approx(top_head.effect, abs=1e-4)
    assert top_head.p_value == pytest.approx(sum(e <= mine + 1e-6 for e in effects) / 32)
    assert sorted(top_head.null) == pytest.approx(sorted(effects), abs=1e-4)


def test_the_bootstrap_interval_matches_the_normal_approximation(demo, ioi, top_head):
    pairs = runs.PromptPairs(demo, ioi)
    differences = np.array(pairs.node_values([{runs.head(3, 6)}])[0]) - np.array(pairs.clean_values())
    half = 1.96 * differences.std(ddof=1) / math.sqrt(len(differences))
    low, high = top_head.ci
    assert low < top_head.effect < high
    assert (high - low) / 2 == pytest.approx(half, rel=0.2)


def test_random_draws_are_seeded_and_count_the_claim(demo, ioi):
    options = dict(draws=40, bootstrap=200, progress=False)
    claim = Hypothesis("heads 1.1 and 1.7 detect the duplicate name", ablation="mean")
    first = HypothesisTester(demo, claim, ioi[:12], seed=3, **options).run()
    again = HypothesisTester(demo, claim, ioi[:12], seed=3, **options).run()
    other = HypothesisTester(demo, claim, ioi[:12], seed=4, **options).run()
    assert not first.exact and len(first.null) == 40
    assert first.to_dict() == again.to_dict() and first.null != other.null
    assert first.p_value == pytest.approx((sum(v <= first.effect for v in first.null) + 1) / 41)
    assert first.supported and first.p_value < 0.05
    assert json.loads(json.dumps(first.to_dict()))["components"] == [["head", 1, 1], ["head", 1, 7]]


def test_mean_and_zero_ablation_replace_outputs_as_stated(demo, ioi):
    pairs = runs.PromptPairs(demo, ioi[:4], corrupted=False)
    zero = pairs.sources("zero")[("mlp", 1)]
    mean = pairs.sources("mean")[("z", 2)]
    assert float(zero.abs().max().item()) == 0.0
    cache = demo.run_with_cache(pairs.clean)[1]["blocks.2.attn.hook_z"].numpy()
    lengths = pairs.lengths
    position = max(lengths) - 1        # only the longest prompts reach it
    reaching = [i for i, n in enumerate(lengths) if n > position]
    np.testing.assert_allclose(mean.numpy()[0, position], cache[reaching, position].mean(0), atol=1e-6)
    np.testing.assert_allclose(mean.numpy()[0, 0], cache[:, 0].mean(0), atol=1e-6)


@pytest.mark.parametrize("sentence, components", [
    ("Layer 3 head 5 performs subject extraction", [("head", 3, 5)]),
    ("layer 3, head 5 and L0H2 together", [("head", 3, 5), ("head", 0, 2)]),
    ("head 4 of layer 1 copies", [("head", 1, 4)]),
    ("heads 0.2 and 1.4, and 2.3 inhibit", [("head", 0, 2), ("head", 1, 4), ("head", 2, 3)]),
    ("MLP 2 stores the fact", [("mlp", 2)]),
    ("MLPs 1 and 3 store it", [("mlp", 1), ("mlp", 3)]),
    ("the layer 2 MLP and the MLP in layer 0", [("mlp", 2), ("mlp", 0)]),
])
def test_sentences_are_parsed(sentence, components):
    assert parse_components(sentence) == components


@pytest.mark.parametrize("sentence, message", [
    ("Layer 3 performs subject extraction", "could not parse 'Layer 3'"),
    ("the name movers move names", "no head or MLP named"),
    ("", "expected a sentence"),
])
def test_what_cannot_be_parsed_is_named(sentence, message):
    with pytest.raises(HypothesisError, match=message):
        parse_components(sentence)


def test_bad_hypotheses_are_refused(demo, ioi):
    with pytest.raises(HypothesisError, match="L5H0 is not in this model"):
        HypothesisTester(demo, "L5H0 does things", ioi)
    with pytest.raises(HypothesisError, match="ablation='noise'"):
        Hypothesis([("head", 0, 1)], ablation="noise")
    with pytest.raises(HypothesisError, match="direction='up'"):
        Hypothesis([("head", 0, 1)], direction="up")
    with pytest.raises(HypothesisError, match="draws=0"):
        HypothesisTester(demo, "L0H1", ioi, draws=0)
    with pytest.raises(runs.ExampleError, match="corrupted_prompt"):
        HypothesisTester(demo, Hypothesis("L0H1", ablation="resample"),
                         [{"prompt": "When Mary and John", "answer": " Mary", "incorrect": " John"}]).run()
