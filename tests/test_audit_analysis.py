"""Edge cases of the analyses where a result used to come back silently wrong: each test states
the wrong answer it guards against, and checks against a hand computation or a reference."""

import math

import numpy as np
import pytest

import neuroscope as ns
from neuroscope.analysis.hypothesis import Hypothesis, HypothesisError, HypothesisTester, HypothesisWarning
from neuroscope.datasets import load_heldout


@pytest.fixture(scope="module")
def demo():
    return ns.TransformerModel.from_huggingface("demo")


@pytest.fixture(scope="module")
def ioi():
    return load_heldout("ioi")["prompts"][:12]


# -- hypothesis tests -----------------------------------------------------------------------
def test_a_nan_metric_is_refused_not_reported_as_p_zero(demo, ioi):
    # A NaN effect compares as neither larger nor smaller than the null draws, so none counted
    # as extreme and the exact test reported p = 0.0.
    def nan_metric(last_logits, examples):
        return [math.nan] * last_logits.shape[0]

    claim = Hypothesis([("head", 3, 6)], metric=nan_metric)
    with pytest.raises(HypothesisError, match="the metric is nan on example 0 in the clean run"):
        HypothesisTester(demo, claim, ioi, progress=False).run()


def test_a_metric_that_is_nan_under_one_random_set_is_refused(demo, ioi):
    # NaN only when some other MLP is ablated: that draw counted as less extreme than the claim,
    # lowering p. The clean run and the claim's own ablation stay finite.
    def logit_gap(last_logits, examples):
        return [row[1] - row[2] for row in last_logits.tolist()]

    reference = HypothesisTester(demo, Hypothesis([("mlp", 0)], metric=logit_gap), ioi, progress=False).run()
    assert reference.exact and all(math.isfinite(v) for v in reference.null)

    def nan_elsewhere(last_logits, examples):
        values = logit_gap(last_logits, examples)
        mean = sum(values) / len(values)
        known = min(abs(mean - reference.clean_mean), abs(mean - reference.ablated_mean)) < 1e-4
        return values if known else [math.nan] * len(values)

    claim = Hypothesis([("mlp", 0)], metric=nan_elsewhere)
    with pytest.raises(HypothesisError, match=r"the metric is nan on example 0 in the run with MLP[123] ablated"):
        HypothesisTester(demo, claim, ioi, progress=False).run()


def test_an_interval_from_one_example_warns(demo, ioi):
    # One example: every bootstrap resample is that example, so the "95% interval" had width 0.
    with pytest.warns(HypothesisWarning, match="from 1 example"):
        result = HypothesisTester(demo, "L3H6", ioi[:1], progress=False).run()
    assert result.ci[0] == result.ci[1] == pytest.approx(result.effect)


# -- attention analysis -----------------------------------------------------------------------
def _induction_by_hand(pattern, tokens):
    """TransformerLens' detect_head "mul" induction score of one prompt, per head (numpy)."""
    n = len(tokens)
    detection = np.zeros((n, n))
    for query in range(n):
        for key in range(1, query + 1):
            detection[query, key] = float(tokens[key - 1] == tokens[query] and key - 1 < query)
    return (pattern * detection).sum((-2, -1)) / pattern.sum((-2, -1))


def test_attention_scores_refuse_tokens_of_another_batch_shape(demo):
    # A repeated prompt and one without repeats: tokens=[first row] broadcast over the batch, so
    # the second prompt was scored as if it were the first (induction 0.9 instead of 0).
    from neuroscope.analysis.attention import AttentionAnalyzer

    repeated = [7, 8, 9, 10, 7, 8, 9, 10]
    distinct = [11, 12, 13, 14, 15, 16, 17, 18]
    _, cache = demo.run_with_cache([repeated, distinct])
    analyzer = AttentionAnalyzer(demo)
    scores = analyzer.analyze_cache(cache, layers=[1]).scores["induction"].numpy()[0]
    pattern = cache["blocks.1.attn.hook_pattern"].numpy()
    by_hand = (_induction_by_hand(pattern[0], repeated) + _induction_by_hand(pattern[1], distinct)) / 2
    np.testing.assert_allclose(scores, by_hand, atol=1e-5)
    with pytest.raises(ValueError, match=r"tokens have shape \[1, 8\].*expected \[2, 8\]"):
        analyzer.analyze_cache(cache, layers=[1], tokens=[repeated])


def test_attention_scores_of_a_padded_cache_are_refused(demo):
    # run_with_cache on prompts of unequal length pads them; analyze_tokens refused that, but
    # analyze_cache averaged over the padding's queries and keys.
    from neuroscope.analysis.attention import AttentionAnalyzer

    _, cache = demo.run_with_cache(["When Mary and John went", "Hi"])
    with pytest.raises(ValueError, match="without padding"):
        AttentionAnalyzer(demo).analyze_cache(cache)


# -- logit lens -----------------------------------------------------------------------------------
def test_the_logit_lens_of_a_padded_prompt_reads_its_own_tokens(demo):
    # "Hi" padded to the batch's 6 positions: the table had 6 columns, 3 of them padding, and
    # positions=-1 read the last padding position instead of the prompt's last token.
    from neuroscope.analysis.logit_lens import logit_lens

    _, batch = demo.run_with_cache(["When Mary and John went", "Hi"])
    _, alone = demo.run_with_cache("Hi")
    own = alone.tokens[0].tolist()
    padded = logit_lens(demo, batch, k=3, batch_index=1)
    single = logit_lens(demo, alone, k=3)
    assert padded.input_tokens == own and padded.positions == list(range(len(own)))
    np.testing.assert_allclose(padded.top_probs, single.top_probs, atol=1e-5)
    last = logit_lens(demo, batch, k=3, batch_index=1, positions=-1)
    assert last.positions == [len(own) - 1]
    np.testing.assert_allclose(last.top_probs[-1][0], demo("Hi")[0, -1].softmax(-1).topk(3)[0].tolist(),
                               atol=1e-5)


def test_logit_lens_positions_and_targets_out_of_range_are_refused(demo):
    # positions=10 of a 6-token prompt wrapped (10 % 6) onto position 4; target=-1 read the last
    # vocabulary entry's probability.
    from neuroscope.analysis.logit_lens import logit_lens

    _, cache = demo.run_with_cache("When Mary and John went")
    assert cache.tokens.shape[1] == 6
    with pytest.raises(IndexError, match="index 10 requested of an axis of 6 entries"):
        logit_lens(demo, cache, positions=10)
    with pytest.raises(IndexError, match="index -7 requested"):
        logit_lens(demo, cache, positions=[-7, 2])
    with pytest.raises(ValueError, match="target=-1 is outside the vocabulary 0-4095"):
        logit_lens(demo, cache, target=-1)
    table = logit_lens(demo, cache, positions=[1, 2])
    assert table.top(0, 2) and table.top(0, -4)
    with pytest.raises(IndexError, match="position 8 is not in this table"):
        table.top(0, 8)


def test_token_directions_refuse_ids_outside_the_vocabulary(demo):
    # A single id -1 was refused, but in a list it counted from the end of the vocabulary.
    from neuroscope.analysis.lens import tokens_to_residual_directions

    w_u = demo.W_U.numpy()
    np.testing.assert_array_equal(tokens_to_residual_directions(demo, [3, 5]).numpy(), w_u[:, [3, 5]].T)
    for ids in ([-1, 5], [[2, 4096]]):
        with pytest.raises(ValueError, match="outside the vocabulary 0-4095"):
            tokens_to_residual_directions(demo, ids)


# -- probes ---------------------------------------------------------------------------------------
def test_the_probe_split_holds_out_every_class_with_two_examples():
    # round(0.25 * 2) is 0: a class of two examples was never tested, so the test accuracy was
    # that of the other classes alone, while the docstring promised every class in both sets.
    from neuroscope.analysis.probes import _split

    labels = ["rare", "rare"] + ["common"] * 10 + ["single"]
    train, test = _split(labels, 0.25, seed=0)
    assert sorted(train + test) == list(range(len(labels))) and not set(train) & set(test)
    assert sorted(labels[i] for i in test) == ["common"] * 2 + ["rare"]  # round(2.5) = 2
    assert {labels[i] for i in train} == {"rare", "common", "single"}
    assert _split(labels, 0.0, seed=0) == (list(range(len(labels))), [])


def test_probe_auc_and_loss_do_not_saturate_with_confident_logits():
    # Logits 20, 30, 25, -5, 40 all but one give a float32 probability of exactly 1.0: the AUC
    # tied them (0.667 where scikit-learn gives 0.5), and the loss was capped at -log(1e-45).
    from sklearn.metrics import log_loss, roc_auc_score

    from neuroscope.analysis.probes import LinearProbe

    spec = {"type": "linear_probe", "version": 1, "classes": [0, 1], "weights": [[1.0]], "bias": [0.0],
            "regularization": 0.01}
    probe = LinearProbe.from_spec(spec)
    gaps, labels = [20.0, 30.0, 25.0, -5.0, 40.0], [1, 1, 0, 0, 0]
    metrics = probe.evaluate([[g] for g in gaps], labels)
    assert metrics["auc"] == pytest.approx(roc_auc_score(labels, gaps))
    signed = np.array([-g if y else g for g, y in zip(gaps, labels)])
    assert metrics["loss"] == pytest.approx(np.logaddexp(0.0, signed).mean(), rel=1e-5)  # exact, unclipped
    small = [[0.5], [-1.0], [2.0]]
    p1 = 1 / (1 + np.exp(-np.array([0.5, -1.0, 2.0])))
    assert probe.evaluate(small, [1, 0, 0])["loss"] == pytest.approx(log_loss([1, 0, 0], p1), rel=1e-5)
    assert probe.evaluate([[200.0], [-1.0]], [0, 0])["loss"] == pytest.approx(
        np.logaddexp(0.0, [200.0, -1.0]).mean(), rel=1e-5)  # was capped near 104
