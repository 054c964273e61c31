"""Activation patching sweeps: their cells, metrics and progress, and parity with
TransformerLens' ``patching`` module.

TL's ``get_act_patch_*`` run on a ``TransformerBridge`` as is (without
compatibility mode, i.e. on the same unprocessed weights as ours); each sweep
is compared on a tiny random GPT-2 with the same prompts and metric, to 1e-4.
"""

import io
import re

import numpy as np
import pytest

import neuroscope as ns
from neuroscope import InterventionHook, Patch, analysis
from reference_models import load_hf

ATOL = 1e-4
CONFIG = dict(model_type="gpt2", vocab_size=40, n_positions=16, n_embd=16, n_layer=2, n_head=4)
CLEAN = [[1, 5, 7, 9, 11], [3, 4, 4, 8, 6]]
CORRUPT = [[1, 5, 8, 9, 12], [3, 9, 4, 7, 6]]


@pytest.fixture(scope="module")
def small():
    model = ns.TransformerModel.from_config(CONFIG, seed=4)
    clean_logits, clean_cache = model.run_with_cache(CLEAN)
    return model, clean_logits, clean_cache


def test_a_cell_is_one_patched_forward(small):
    model, _, clean_cache = small
    metric = analysis.logit_diff_metric([2, 3], [4, 5])
    sweep = analysis.get_act_patch_attn_head_out_by_pos(model, CORRUPT, clean_cache, metric, progress=False)
    assert sweep.shape == (2, 5, 4)
    hook = InterventionHook(layer=1, component="z", heads=[2], action=Patch(clean_cache, positions=[3]))
    by_hand = metric(model.run_with_hooks(CORRUPT, fwd_hooks=[hook])).item()
    assert sweep[1, 3, 2].item() == pytest.approx(by_hand, abs=1e-6)


@pytest.mark.parametrize("kind", sorted(analysis.SWEEPS))
def test_cells_sharing_a_forward_equal_one_forward_per_cell(small, kind):
    """The batched sweep (the corrupted batch repeated, one patch per copy) gives the numbers
    of one Patch hook per forward, for every sweep, with a padded batch too."""
    model, _, clean_cache = small
    metric = analysis.logit_diff_metric([2, 3], [4, 5])
    sweep = analysis.SWEEPS[kind]
    one = sweep(model, CORRUPT, clean_cache, metric, progress=False, cells_per_forward=1).numpy()
    for group in (None, 3, 7, 1000):
        shared = sweep(model, CORRUPT, clean_cache, metric, progress=False, cells_per_forward=group).numpy()
        np.testing.assert_allclose(shared, one, atol=1e-5, rtol=0)
    assert np.ptp(one) > 1e-3
    mask = [[1, 1, 1, 1, 1], [0, 0, 1, 1, 1]]  # the second prompt left-padded
    _, masked_cache = model.run_with_cache(CLEAN, attention_mask=mask)
    one = sweep(model, CORRUPT, masked_cache, metric, progress=False, cells_per_forward=1,
                attention_mask=mask).numpy()
    shared = sweep(model, CORRUPT, masked_cache, metric, progress=False, attention_mask=mask).numpy()
    np.testing.assert_allclose(shared, one, atol=1e-5, rtol=0)


def test_batched_sweep_reports_progress_per_forward_and_checks_its_option(small):
    model, _, clean_cache = small
    metric = analysis.logit_diff_metric([2, 3], [4, 5])
    seen = []
    analysis.get_act_patch_resid_pre(model, CORRUPT, clean_cache, metric, cells_per_forward=4,
                                     progress=lambda done, total: seen.append((done, total)))
    assert seen == [(0, 10), (4, 10), (8, 10), (10, 10)]
    for bad in (0, -2, 1.5, True, "4"):
        with pytest.raises(ValueError, match="cells_per_forward"):
            analysis.get_act_patch_resid_pre(model, CORRUPT, clean_cache, metric, progress=False,
                                             cells_per_forward=bad)


def test_patching_everything_from_clean_restores_the_clean_metric(small):
    model, clean_logits, clean_cache = small
    metric = analysis.probability_metric(7)
    sweep = analysis.get_act_patch_resid_pre(model, CLEAN, clean_cache, metric, progress=False)
    np.testing.assert_allclose(sweep.numpy(), metric(clean_logits).item(), atol=1e-6)
    # Layer 0's residual stream at every position is the whole input: patching all of it is the clean run.
    corrupt_metric = metric(model(CORRUPT)).item()
    sweep = analysis.get_act_patch_resid_pre(model, CORRUPT, clean_cache, metric, progress=False)
    assert sweep[0, 2].item() != pytest.approx(corrupt_metric)  # position 2 differs between the prompts
    assert sweep[0, 0].item() == pytest.approx(corrupt_metric, abs=1e-6)  # position 0 does not


def test_metrics(small):
    model, clean_logits, _ = small
    logits = clean_logits.numpy()
    diff = analysis.logit_diff_metric(3, [4, 5], position=2)(clean_logits).item()
    assert diff == pytest.approx(np.mean([logits[0, 2, 3] - logits[0, 2, 4], logits[1, 2, 3] - logits[1, 2, 5]]),
                                 abs=1e-5)
    probs = np.exp(logits[:, -1]) / np.exp(logits[:, -1]).sum(-1, keepdims=True)
    assert analysis.probability_metric([1, 2])(clean_logits).item() == pytest.approx(
        (probs[0, 1] + probs[1, 2]) / 2, abs=1e-6)
    corrupt_logits = model(CORRUPT)
    normalized = analysis.normalized_metric(analysis.logit_diff_metric(3, 4), clean_logits, corrupt_logits)
    assert normalized(clean_logits) == pytest.approx(1.0) and normalized(corrupt_logits) == pytest.approx(0.0)
    with pytest.raises(ValueError, match="3 token ids for a batch of 2"):
        analysis.logit_diff_metric([1, 2, 3], 4)(clean_logits)


def test_custom_metric_and_subsets(small):
    model, _, clean_cache = small

    def mean_top_logit(logits):  # any callable logits -> scalar
        return float(logits[:, -1].max(-1).mean().item())

    full = analysis.get_act_patch_mlp_out(model, CORRUPT, clean_cache, mean_top_logit, progress=False)
    part = analysis.get_act_patch_mlp_out(model, CORRUPT, clean_cache, mean_top_logit, progress=False,
                                          layers=[1], positions=[0, 4])
    np.testing.assert_allclose(part.numpy(), full.numpy()[[1]][:, [0, 4]], atol=1e-6)
    with pytest.raises(ValueError, match="expected a scalar"):
        analysis.get_act_patch_mlp_out(model, CORRUPT, clean_cache, lambda logits: logits[:, -1, 0],
                                       progress=False)


def test_progress_callback_and_default_bar(small, monkeypatch):
    model, _, clean_cache = small
    calls = []
    metric = analysis.logit_diff_metric(1, 2)
    analysis.get_act_patch_attn_head_out_all_pos(model, CORRUPT, clean_cache, metric, cells_per_forward=1,
                                                 progress=lambda done, total: calls.append((done, total)))
    assert calls == [(i, 8) for i in range(9)]
    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    analysis.get_act_patch_attn_head_out_all_pos(model, CORRUPT, clean_cache, metric)
    assert stream.getvalue().rstrip().endswith("8/8") and "#" in stream.getvalue()


def test_patching_sweep_caches_the_clean_run_itself(small):
    model, _, clean_cache = small
    metric = analysis.logit_diff_metric(1, 2)
    for kind, sweep in analysis.SWEEPS.items():
        expected = sweep(model, CORRUPT, clean_cache, metric, progress=False)
        got = analysis.patching_sweep(model, CLEAN, CORRUPT, metric, kind=kind, progress=False)
        np.testing.assert_allclose(got.numpy(), expected.numpy(), atol=1e-6)


def test_texts_and_padding_are_those_of_both_runs():
    # Corrupted texts failed ("invalid literal for int()"); a clean run padded otherwise than
    # the corrupted one was patched position by position, real tokens onto pads, silently.
    demo = ns.TransformerModel.from_huggingface("demo")
    clean = ["When Mary and John went to the store, John gave a drink to", "The cat sat on the mat and the"]
    corrupt = ["When Mary and John went to the store, Kate gave a drink to", "The dog sat on the mat and the"]
    tokens, mask = demo.tokenize(corrupt)
    last = [int(sum(row)) - 1 for row in mask.tolist()]  # each prompt's last real token
    metric = analysis.logit_diff_metric(demo.to_single_token(" Mary"), demo.to_single_token(" John"), last)
    swept = analysis.patching_sweep(demo, clean, corrupt, metric, kind="resid_pre", layers=[1], progress=False)
    _, cache = demo.run_with_cache(clean, names_filter=["blocks.1.hook_resid_pre"])
    by_ids = analysis.get_act_patch_resid_pre(demo, tokens, cache, metric, layers=[1], attention_mask=mask,
                                              progress=False)
    np.testing.assert_array_equal(swept.numpy(), by_ids.numpy())
    with pytest.raises(ValueError, match=r"prompt 1 are padded differently .*position by position"):
        analysis.get_act_patch_resid_pre(demo, tokens, cache, metric, layers=[1], progress=False)


def test_a_metric_reading_a_pad_is_refused_and_positions_per_prompt_are_taken():
    # With right padding, position -1 of a shorter prompt is a pad: its metric read the pad's
    # logits, silently. The sweep now refuses, naming each prompt's last real token.
    demo = ns.TransformerModel.from_huggingface("demo")
    clean = ["When Mary and John went to the store, John gave a drink to", "The cat sat on the mat and the"]
    corrupt = ["When Mary and John went to the store, Kate gave a drink to", "The dog sat on the mat and the"]
    mary, john = demo.to_single_token(" Mary"), demo.to_single_token(" John")
    _, mask = demo.tokenize(corrupt)
    last = [int(sum(row)) - 1 for row in mask.tolist()]
    assert last[1] < mask.shape[1] - 1  # the second prompt is padded
    with pytest.raises(ValueError, match=re.escape(f"reads position -1, a pad in prompt 1: pass position={last}")):
        analysis.patching_sweep(demo, clean, corrupt, analysis.logit_diff_metric(mary, john), layers=[1],
                                progress=False)
    metric = analysis.logit_diff_metric(mary, john, position=last)
    swept = analysis.patching_sweep(demo, clean, corrupt, metric, layers=[1], progress=False)
    assert swept.shape == (1, mask.shape[1])
    # Each prompt's metric at its own last token: the mean of the prompts run alone.
    alone = [demo(text).numpy()[0, -1] for text in corrupt]
    tokens, _ = demo.tokenize(corrupt)
    got = metric(demo(tokens, attention_mask=mask)).item()
    assert got == pytest.approx(np.mean([row[mary] - row[john] for row in alone]), abs=1e-4)
    probability = analysis.probability_metric(mary, position=last)
    assert probability(demo(tokens, attention_mask=mask)).item() == pytest.approx(
        np.mean([np.exp(row[mary] - row.max()) / np.exp(row - row.max()).sum() for row in alone]), abs=1e-5)
    with pytest.raises(ValueError, match=re.escape(f"reads position -1, a pad in prompt 1: pass position={last}")):
        analysis.attribution_patching(demo, clean, corrupt, analysis.logit_diff_metric(mary, john), nodes="heads")
    with pytest.raises(ValueError, match=r"one position, or a list of one per example \(2\)"):
        analysis.logit_diff_metric(mary, john, position=[3])(demo(tokens, attention_mask=mask))


def test_bad_inputs_are_named(small):
    model, _, clean_cache = small
    metric = analysis.logit_diff_metric(1, 2)
    _, partial = model.run_with_cache(CLEAN, names_filter=["blocks.0.hook_resid_pre"])
    with pytest.raises(analysis.MissingActivationError, match="blocks.1.hook_resid_pre"):
        analysis.get_act_patch_resid_pre(model, CORRUPT, partial, metric, progress=False)
    with pytest.raises(ValueError, match="same shape"):
        analysis.get_act_patch_resid_pre(model, [row[:4] for row in CORRUPT], clean_cache, metric, progress=False)
    with pytest.raises(ValueError, match=r"heads \[4\] requested"):
        analysis.get_act_patch_attn_head_out_all_pos(model, CORRUPT, clean_cache, metric, heads=[4])
    with pytest.raises(ValueError, match="kind="):
        analysis.patching_sweep(model, CLEAN, CORRUPT, metric, kind="everything")


# -- against TransformerLens ------------------------------------------------------
@pytest.fixture(scope="module")
def pair(reference_dir):
    torch = pytest.importorskip("torch")
    pytest.importorskip("transformer_lens", reason="the ref extra (transformer-lens) is not installed")
    from transformer_lens.model_bridge import TransformerBridge
    folder = reference_dir("gpt2")
    bridge = TransformerBridge.boot_transformers(folder, hf_model=load_hf(folder), device="cpu",
                                                 dtype=torch.float32)
    model = ns.TransformerModel.from_huggingface(folder)
    rng = np.random.default_rng(3)
    clean = rng.integers(0, model.cfg.d_vocab, (2, 6))
    corrupt = clean.copy()
    corrupt[:, [1, 3]] = rng.integers(0, model.cfg.d_vocab, (2, 2))
    with torch.no_grad():
        _, tl_cache = bridge.run_with_cache(torch.tensor(clean))
    _, cache = model.run_with_cache(clean)
    return model, cache, bridge, tl_cache, clean, corrupt


CORRECT, WRONG = [5, 9], [7, 2]


def _tl_logit_diff(logits):
    last = logits[:, -1]
    rows = list(range(last.shape[0]))
    return (last[rows, CORRECT] - last[rows, WRONG]).mean()


def _tl_probability(logits):
    return logits[:, -1].softmax(-1)[:, 11].mean()


SWEEP_NAMES = ["get_act_patch_resid_pre", "get_act_patch_attn_head_out_all_pos",
               "get_act_patch_attn_head_out_by_pos", "get_act_patch_mlp_out", "get_act_patch_resid_mid",
               "get_act_patch_attn_out"]


@pytest.mark.ref
@pytest.mark.parametrize("name", SWEEP_NAMES)
def test_sweeps_match_transformer_lens(pair, name):
    import torch
    from transformer_lens import patching
    model, cache, bridge, tl_cache, _, corrupt = pair
    ours = getattr(analysis, name)(model, corrupt, cache, analysis.logit_diff_metric(CORRECT, WRONG),
                                   progress=False)
    with torch.no_grad():
        theirs = getattr(patching, name)(bridge, torch.tensor(corrupt), tl_cache, _tl_logit_diff)
    assert ours.shape == tuple(theirs.shape)
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), atol=ATOL, rtol=0)
    assert np.ptp(ours.numpy()) > 1e-3  # the sweep is not trivially constant


@pytest.mark.ref
def test_probability_and_custom_metrics_match_transformer_lens(pair):
    import torch
    from transformer_lens import patching
    model, cache, bridge, tl_cache, _, corrupt = pair

    def top_logit(logits):
        return logits[:, -1].max(-1).mean()

    for ours_metric, tl_metric in ((analysis.probability_metric(11), _tl_probability),
                                   (top_logit, lambda logits: logits[:, -1].max(-1).values.mean())):
        ours = analysis.get_act_patch_resid_pre(model, corrupt, cache, ours_metric, progress=False)
        with torch.no_grad():
            theirs = patching.get_act_patch_resid_pre(bridge, torch.tensor(corrupt), tl_cache, tl_metric)
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), atol=ATOL, rtol=0)
