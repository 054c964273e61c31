"""Interventions, hooks, patching and attribution refuse what they cannot do as asked.

Each test here pins down a case that once ran and gave a number (or an edit) other
than the one the call describes: it now gives the right one, or an error naming the
value and what was expected.
"""

import numpy as np
import pytest

import neuroscope as ns
from neuroscope import InterventionHook, Patch, analysis

GPT2 = dict(model_type="gpt2", vocab_size=40, n_positions=16, n_embd=16, n_layer=2, n_head=4)
LLAMA = dict(model_type="llama", vocab_size=40, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
             num_key_value_heads=2, intermediate_size=64, max_position_embeddings=64)
CLEAN = [[1, 5, 7, 9, 11, 2], [3, 4, 4, 4, 8, 6]]
CORRUPT = [[1, 5, 8, 9, 12, 2], [3, 9, 4, 7, 8, 6]]


@pytest.fixture(scope="module")
def gpt2():
    return ns.TransformerModel.from_config(GPT2, seed=4)


@pytest.fixture(scope="module")
def llama():
    return ns.TransformerModel.from_config(LLAMA, seed=3)


# -- activation patching sweeps ------------------------------------------------------
def _by_hand(model, clean_cache, metric, name, heads=None, positions=None):
    hook = InterventionHook(name=name, heads=heads, action=Patch(clean_cache, positions=positions))
    return metric(model.run_with_hooks(CORRUPT, fwd_hooks=[hook])).item()


@pytest.mark.parametrize("short", ["k", "v"])
def test_head_sweep_of_grouped_query_keys_and_values_covers_their_heads(llama, short):
    """k and v of a grouped-query model have n_kv_heads heads: the sweep has one cell per
    key/value head (before, the batched sweep had n_heads cells, and those past n_kv_heads
    patched nothing and reported the corrupted metric)."""
    _, clean_cache = llama.run_with_cache(CLEAN)
    metric = analysis.logit_diff_metric(3, 4)
    for group in (None, 1):
        sweep = analysis.generic_activation_patch(llama, CORRUPT, clean_cache, metric, short, ("layer", "head"),
                                                  progress=False, cells_per_forward=group).numpy()
        assert sweep.shape == (2, 2)
        expected = [[_by_hand(llama, clean_cache, metric, f"blocks.{layer}.attn.hook_{short}", heads=[head])
                     for head in range(2)] for layer in range(2)]
        np.testing.assert_allclose(sweep, expected, atol=1e-5)
    with pytest.raises(ValueError, match=r"heads \[2\] requested; expected integers in 0-1"):
        analysis.generic_activation_patch(llama, CORRUPT, clean_cache, metric, short, ("layer", "head"), heads=[2],
                                          progress=False)


def test_sweep_of_the_pattern_patches_its_query_positions_and_heads(gpt2):
    """hook_pattern is [batch, head, query, key]: a batched sweep patches the cell's head and
    query position there, as one Patch per forward does (before, it patched [:, pos, head],
    or refused the clean cache as having another shape)."""
    _, clean_cache = gpt2.run_with_cache(CLEAN)
    metric = analysis.logit_diff_metric([2, 3], [4, 5])
    shared = analysis.generic_activation_patch(gpt2, CORRUPT, clean_cache, metric, "pattern",
                                               ("layer", "pos", "head"), progress=False).numpy()
    one = analysis.generic_activation_patch(gpt2, CORRUPT, clean_cache, metric, "pattern",
                                            ("layer", "pos", "head"), progress=False, cells_per_forward=1).numpy()
    assert shared.shape == (2, 6, 4)
    np.testing.assert_allclose(shared, one, atol=1e-7)  # the pattern moves this metric by ~1e-5
    assert shared[1, 5, 2] == pytest.approx(
        _by_hand(gpt2, clean_cache, metric, "blocks.1.attn.hook_pattern", heads=[2], positions=[5]), abs=1e-7)
    assert np.ptp(shared) > 1e-5


def test_sweep_over_an_axis_the_activation_lacks_is_refused(gpt2):
    """A head sweep of the residual stream patched slices of its features (batched) before."""
    _, clean_cache = gpt2.run_with_cache(CLEAN)
    metric = analysis.logit_diff_metric(1, 2)
    for group in (None, 1):
        with pytest.raises(ValueError, match=r"blocks.0.hook_resid_pre has axes \['batch', 'pos', 'features'\], "
                                             "no head axis"):
            analysis.generic_activation_patch(gpt2, CORRUPT, clean_cache, metric, "resid_pre", ("layer", "head"),
                                              progress=False, cells_per_forward=group)


def test_sweep_refuses_a_selection_along_an_axis_it_does_not_sweep(gpt2):
    """positions= on an all-positions head sweep (or heads= on a residual sweep) was ignored:
    every position was patched."""
    _, clean_cache = gpt2.run_with_cache(CLEAN)
    metric = analysis.logit_diff_metric(1, 2)
    with pytest.raises(ValueError, match=r"positions=\[3\] given, but this sweep's cells are \('layer', 'head'\)"):
        analysis.get_act_patch_attn_head_out_all_pos(gpt2, CORRUPT, clean_cache, metric, positions=[3],
                                                     progress=False)
    with pytest.raises(ValueError, match=r"heads=\[1\] given"):
        analysis.get_act_patch_resid_pre(gpt2, CORRUPT, clean_cache, metric, heads=[1], progress=False)


def test_sweep_indices_are_integers(gpt2):
    """True was taken as index 1; numpy integers are integers."""
    _, clean_cache = gpt2.run_with_cache(CLEAN)
    metric = analysis.logit_diff_metric(1, 2)
    for bad in (True, [True], [1.0]):
        with pytest.raises(ValueError, match=r"positions \[.*\] requested; expected integers in 0-5"):
            analysis.get_act_patch_resid_pre(gpt2, CORRUPT, clean_cache, metric, positions=bad, progress=False)
    sweep = analysis.get_act_patch_resid_pre(gpt2, CORRUPT, clean_cache, metric, positions=np.int64(2),
                                             layers=np.array([1]), progress=False)
    assert sweep.item() == pytest.approx(_by_hand(gpt2, clean_cache, metric, "blocks.1.hook_resid_pre",
                                                  positions=[2]), abs=1e-6)


# -- intervention specs ----------------------------------------------------------------
def test_hook_spec_with_an_unknown_key_is_refused():
    """{"head": [3]} (for "heads") was ignored, so the spec ablated every head."""
    spec = {"layer": 1, "component": "attention", "head": [3], "intervention": {"type": "zero_ablation"}}
    with pytest.raises(ValueError, match=r"unknown key 'head' in an InterventionHook spec; expected layer, "
                                         r"component, name, heads, intervention"):
        InterventionHook.from_spec(spec)
    with pytest.raises(ValueError, match="with an 'intervention'"):
        InterventionHook.from_spec({"layer": 1, "component": "attention"})
    hook = InterventionHook(layer=1, component="attention", heads=[3], action=ns.ZeroAblation())
    assert InterventionHook.from_spec(hook.to_spec()).to_spec() == hook.to_spec()


# -- hooks ---------------------------------------------------------------------------
def test_a_with_block_leaves_a_hook_registered_before_it(gpt2):
    """A hook added for good and named again in ``with model.hooks([...])`` was removed at the
    end of the block, so the model then ran without it."""
    ablate = InterventionHook(layer=1, component="residual", action=ns.Scale(0.0))
    gpt2.hook_manager.add_hook(ablate)
    try:
        ablated = gpt2(CORRUPT).numpy()
        with gpt2.hooks([ablate, ("blocks.0.hook_resid_pre", lambda activation, hook: None)]):
            np.testing.assert_array_equal(gpt2(CORRUPT).numpy(), ablated)
        assert gpt2.hook_manager.hooks == [ablate]
        np.testing.assert_array_equal(gpt2(CORRUPT).numpy(), ablated)
    finally:
        gpt2.hook_manager.clear()
    assert not np.allclose(gpt2(CORRUPT).numpy(), ablated)


# -- interventions -------------------------------------------------------------------
def _seen_after(model, hook, name):
    seen = ns.ActivationHook(name=name)
    with model.hooks([hook, seen]):
        model(CORRUPT)
    return seen.last_activation.numpy()


def test_mean_over_batch_and_positions_of_the_pattern_keeps_its_heads(gpt2):
    """hook_pattern is [batch, head, query, key]: the mean is over batch and query positions
    (before, over axes 0 and 1, i.e. every head got the mean pattern of all heads)."""
    name = "blocks.1.attn.hook_pattern"
    before = gpt2.run_with_cache(CORRUPT, names_filter=[name])[1][name].numpy()
    after = _seen_after(gpt2, InterventionHook(name=name, action=ns.MeanAblation(over="batch_and_positions")),
                        name)
    np.testing.assert_allclose(after, np.broadcast_to(before.mean((0, 2), keepdims=True), before.shape),
                               atol=1e-6)
    resid = gpt2.run_with_cache(CORRUPT, names_filter=["blocks.1.hook_resid_pre"])[1]["blocks.1.hook_resid_pre"]
    with pytest.raises(ns.NeuroScopeError, match="over='batch_and_positions' needs to know the activation's axes"):
        ns.MeanAblation(over="batch_and_positions").apply(ns.Tensor(resid.data, resid.backend))


@pytest.mark.parametrize("action", [Patch, ns.ResampleAblation])
def test_patch_of_some_positions_or_heads_needs_a_source_of_the_same_shape(gpt2, action):
    """With positions= or heads=, a source prompt of another length was patched in silently
    (its position 3 into the run's position 3); without them it was refused."""
    _, short_cache = gpt2.run_with_cache([row[:5] for row in CLEAN])
    for heads, component, positions in ((None, "residual", [3]), ([1], "z", None), ([1], "z", [-1])):
        hook = InterventionHook(layer=1, component=component, heads=heads,
                                action=action(short_cache, positions=positions))
        with pytest.raises(ValueError, match=r"source shape \[2, 5, .*\] differs from activation shape \[2, 6, "):
            gpt2.run_with_hooks(CORRUPT, fwd_hooks=[hook])
    assert gpt2.hook_manager.hooks == []


# -- attribution ---------------------------------------------------------------------
def test_attribution_refuses_texts_padded_differently():
    """Texts are padded by the tokenizer; the corrupted texts' padding was dropped and both
    runs used the clean texts' mask, comparing a real token with a pad at the same position."""
    model = ns.TransformerModel.from_huggingface("demo")
    clean = ["When Mary and John went", "When Tom and Anna went to the park"]
    corrupted = ["When Mary and John went to the park", "When Tom and Anna went"]
    assert model.tokenize(clean)[0].shape == model.tokenize(corrupted)[0].shape
    metric = analysis.logit_diff_metric(5, 6)
    with pytest.raises(ValueError, match=r"the clean and the corrupted prompt 0 are padded differently \(attention "
                                         r"mask \[1, 1, 1, 1, 1, 1, 0, 0, 0\] vs \[1, 1, 1, 1, 1, 1, 1, 1, 1\]\)"):
        analysis.attribution_patching(model, clean, corrupted, metric)
    alike = ["When John and Mary went", "When Anna and Tom went to the park"]
    last = [int(sum(row)) - 1 for row in model.tokenize(clean)[1].tolist()]  # not a pad: position -1 is one
    metric = analysis.logit_diff_metric(5, 6, position=last)
    assert analysis.attribution_patching(model, clean, alike, metric).shape == (4, 9)


@pytest.mark.parametrize("spec, message", [
    ({"type": "scale", "factor": True}, r"factor=True \(a bool\); expected a number"),
    ({"type": "scale", "factor": "2"}, r"factor='2' \(a str\); expected a number"),
    ({"type": "add_vector", "vector": [1.0], "coefficient": None}, r"coefficient=None \(a NoneType\)"),
    ({"type": "noise", "noise_level": "0.1"}, r"noise_level='0.1' \(a str\)"),
    ({"type": "noise", "noise_level": 0.1, "seed": "x"}, r"seed='x' \(a str\); expected an integer"),
    ({"type": "noise", "noise_level": 0.1, "seed": 1.5}, r"seed=1.5 \(a float\); expected an integer"),
    ({"type": "resample_ablation", "source_tokens": [[1, 2]], "seed": None}, r"seed=None"),
])
def test_spec_values_of_the_wrong_type_are_refused(spec, message):
    """A spec's {"factor": true} scaled by 1.0 and {"seed": "x"} seeded the noise with a string."""
    with pytest.raises(TypeError, match=message):
        ns.Intervention.from_spec(spec)
    assert ns.Scale(np.float32(0.5)).factor == 0.5 and ns.NoiseInjection(2, seed=np.int64(3)).seed == 3
