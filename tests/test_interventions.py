"""Interventions: their effects, their JSON specs, and activation patching."""

import json

import numpy as np
import pytest

import neuroscope as ns
from neuroscope import (
    AddVector,
    Intervention,
    InterventionHook,
    MeanAblation,
    NoiseInjection,
    Patch,
    ResampleAblation,
    Scale,
    ZeroAblation,
)

CONFIG = dict(model_type="gpt2", vocab_size=40, n_positions=16, n_embd=16, n_layer=3, n_head=4)
CLEAN = [[1, 5, 7, 9, 11, 2], [3, 4, 4, 4, 8, 6]]
CORRUPT = [[1, 5, 8, 9, 12, 2], [3, 9, 4, 7, 8, 6]]


@pytest.fixture(scope="module")
def model():
    return ns.TransformerModel.from_config(CONFIG, seed=4)


def _run(model, hook, tokens=CORRUPT):
    with model.hooks([hook]):
        return model(tokens).numpy()


def _capture(model, intervention, layer=1, component="attention", heads=None, tokens=CORRUPT):
    record = ns.ActivationHook(layer=layer + 1, component="resid_pre")
    seen = ns.ActivationHook(layer=layer, component=component)
    edit = InterventionHook(layer=layer, component=component, heads=heads, action=intervention)
    with model.hooks([seen, edit]):
        model(tokens)
    before = seen.last_activation.numpy()
    after_hook = ns.ActivationHook(layer=layer, component=component)
    with model.hooks([edit, after_hook, record]):
        model(tokens)
    return before, after_hook.last_activation.numpy()


def test_zero_ablation_of_heads(model):
    before, after = _capture(model, ZeroAblation(), heads=[1, 3])
    assert np.all(after[:, :, [1, 3]] == 0)
    np.testing.assert_array_equal(after[:, :, [0, 2]], before[:, :, [0, 2]])


def test_mean_ablation(model):
    before, after = _capture(model, MeanAblation(), component="mlp")
    np.testing.assert_allclose(after, np.broadcast_to(before.mean(0, keepdims=True), before.shape), atol=1e-6)
    _, after = _capture(model, MeanAblation(over="batch_and_positions", positions=[2]), component="mlp")
    np.testing.assert_allclose(after[:, 2], np.broadcast_to(before.mean((0, 1)), after[:, 2].shape), atol=1e-6)
    np.testing.assert_array_equal(np.delete(after, 2, axis=1), np.delete(before, 2, axis=1))


def test_scale_add_noise(model):
    before, after = _capture(model, Scale(0.5), component="residual")
    np.testing.assert_allclose(after, before * 0.5, atol=1e-6)
    vector = np.linspace(-1, 1, 16).astype(np.float32)
    before, after = _capture(model, AddVector(vector, coefficient=2.0, positions=[0, 5]), component="residual")
    np.testing.assert_allclose(after[:, [0, 5]], before[:, [0, 5]] + 2 * vector, atol=1e-6)
    np.testing.assert_array_equal(after[:, 1:5], before[:, 1:5])
    _, a = _capture(model, NoiseInjection(0.3, seed=7), component="residual")
    _, b = _capture(model, NoiseInjection(0.3, seed=7), component="residual")
    _, c = _capture(model, NoiseInjection(0.3, seed=8), component="residual")
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    assert 0.2 < np.std(a - before) < 0.4


def test_specs_round_trip_through_json(model):
    _, clean_cache = model.run_with_cache(CLEAN)
    interventions = [ZeroAblation(), MeanAblation(over="batch_and_positions", positions=[1, 2]),
                     MeanAblation(mean=[0.5] * 4), Scale(3.0), AddVector([1.0] * 16, 0.25),
                     NoiseInjection(0.1, seed=3), Patch(clean_cache, positions=[4]),
                     ResampleAblation(clean_cache, seed=2)]
    for intervention in interventions:
        spec = json.loads(json.dumps(intervention.to_spec()))
        rebuilt = Intervention.from_spec(spec)
        assert type(rebuilt) is type(intervention)
        assert rebuilt.to_spec() == spec
    for intervention in interventions[3:]:
        component = "residual"
        hook = InterventionHook(layer=1, component=component, action=intervention)
        spec = json.loads(json.dumps(hook.to_spec()))
        np.testing.assert_array_equal(_run(model, hook), _run(model, InterventionHook.from_spec(spec)))


def test_bad_specs():
    with pytest.raises(ValueError, match="unknown intervention type 'explode'"):
        Intervention.from_spec({"type": "explode"})
    with pytest.raises(ValueError, match="'type'"):
        Intervention.from_spec(["zero_ablation"])


def test_user_subclass_only_implements_apply(model):
    class Clamp(Intervention):
        def apply(self, activation):
            return activation.minimum(0.1)

    before, after = _capture(model, Clamp(), component="residual")
    np.testing.assert_allclose(after, np.minimum(before, 0.1))
    with pytest.raises(TypeError, match="cannot serialise"):
        Clamp().to_spec()
    plain = lambda a, h: a * 2  # noqa: E731 - a TransformerLens-style function works too
    assert model.run_with_hooks(CORRUPT, fwd_hooks=[("blocks.0.hook_mlp_out", plain)]).shape == (2, 6, 40)


def test_patching_resid_pre_0_everywhere_reproduces_clean_logits(model):
    clean_logits, clean_cache = model.run_with_cache(CLEAN)
    hook = InterventionHook(name="blocks.0.hook_resid_pre", action=Patch(clean_cache))
    np.testing.assert_allclose(_run(model, hook), clean_logits.numpy(), atol=1e-5)
    assert not np.allclose(model(CORRUPT).numpy(), clean_logits.numpy(), atol=1e-3)


def test_seed_style_patching_of_a_layer_residual(model):
    clean_cache = model.run_with_caching(CLEAN, layers=(2,), components=("residual",))
    # The seed's workflow: the corrupted run with layer 2's residual taken from the clean run.
    patch = InterventionHook(layer=2, component="residual", action=lambda a: clean_cache.at(2, "residual"))
    np.testing.assert_allclose(_run(model, patch), model(CLEAN).numpy(), atol=1e-5)
    partial = _run(model, InterventionHook(layer=2, component="residual", action=Patch(clean_cache, positions=[3])))
    clean = model(CLEAN).numpy()
    np.testing.assert_allclose(partial[:, 3], clean[:, 3], atol=1e-5)
    assert not np.allclose(partial[:, 4], clean[:, 4], atol=1e-3)


def test_patch_from_tokens_runs_the_source_when_registered(model):
    _, clean_cache = model.run_with_cache(CLEAN)
    from_cache = InterventionHook(layer=1, component="attention", heads=[2], action=Patch(clean_cache))
    from_spec = InterventionHook.from_spec(json.loads(json.dumps(from_cache.to_spec())))
    assert from_spec.action.source is None
    np.testing.assert_array_equal(_run(model, from_cache), _run(model, from_spec))


def test_patch_source_run_ignores_hooks_already_registered(model):
    """A Patch rebuilt from a spec runs its source prompt clean, whatever else is registered."""
    _, clean_cache = model.run_with_cache(CLEAN)
    patch = InterventionHook(layer=2, component="mlp", action=Patch(clean_cache))
    rebuilt = InterventionHook.from_spec(json.loads(json.dumps(patch.to_spec())))
    ablation = InterventionHook(layer=0, component="attention", action=ZeroAblation())
    with model.hooks([ablation, rebuilt]):
        assert model.hook_manager.hooks == [ablation, rebuilt]  # both still registered
        source = rebuilt.action.source["blocks.2.hook_mlp_out"].numpy()
        np.testing.assert_array_equal(source, clean_cache["blocks.2.hook_mlp_out"].numpy())
        with_both = model(CORRUPT).numpy()
    with model.hooks([ablation, patch]):
        np.testing.assert_array_equal(with_both, model(CORRUPT).numpy())


def test_resample_ablation_takes_other_prompts(model):
    _, clean_cache = model.run_with_cache(CLEAN)
    hook = InterventionHook(layer=0, component="mlp", action=ResampleAblation(clean_cache, seed=1))
    seen = ns.ActivationHook(layer=0, component="mlp")
    with model.hooks([hook, seen]):
        model(CORRUPT)
    donors = clean_cache.at(0, "mlp").numpy()
    got = seen.last_activation.numpy()
    assert all(any(np.array_equal(row, donor) for donor in donors) for row in got)
    np.testing.assert_array_equal(_run(model, hook), _run(model, hook))


def test_patch_shape_mismatch_is_explained(model):
    _, short_cache = model.run_with_cache([[1, 2, 3]])
    hook = InterventionHook(layer=0, component="residual", action=Patch(short_cache))
    with pytest.raises(ValueError, match=r"source shape \[1, 3, 16\] differs from activation shape \[2, 6, 16\]"):
        _run(model, hook)
    assert model.hook_manager.hooks == []


def test_patch_spec_carries_the_source_padding(model):
    mask = [[0, 0, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1]]
    _, padded_cache = model.run_with_cache(CLEAN, attention_mask=mask)
    hook = InterventionHook(layer=1, component="residual", action=Patch(padded_cache))
    spec = json.loads(json.dumps(hook.to_spec()))
    assert spec["intervention"]["source_attention_mask"] == mask
    np.testing.assert_array_equal(_run(model, hook), _run(model, InterventionHook.from_spec(spec)))
