"""The hook, cache and error API on a random model built with ``from_config``."""

import numpy as np
import pytest

import neuroscope as ns
from neuroscope import (
    ActivationHook,
    CachingHook,
    InterventionHook,
    InvalidTokenError,
    LayerNotFoundError,
    ProbeHook,
    UnknownHookError,
    UnsupportedModelError,
)

CONFIG = dict(model_type="gpt2", vocab_size=50, n_positions=16, n_embd=24, n_layer=3, n_head=4)
TOKENS = [[1, 5, 7, 9, 11, 2], [3, 4, 4, 4, 8, 0]]


@pytest.fixture(scope="module")
def model():
    return ns.TransformerModel.from_config(CONFIG, seed=1)


def test_from_config_is_seeded(model):
    again = ns.TransformerModel.from_config(CONFIG, seed=1)
    other = ns.TransformerModel.from_config(CONFIG, seed=2)
    assert np.array_equal(model(TOKENS).numpy(), again(TOKENS).numpy())
    assert not np.allclose(model(TOKENS).numpy(), other(TOKENS).numpy())


def test_forward_output_and_call(model):
    out = model.forward(TOKENS)
    assert out.logits.shape == (2, 6, 50)
    assert isinstance(model(TOKENS), ns.Tensor)
    assert np.array_equal(out.logits.numpy(), model(np.array(TOKENS)).numpy())
    assert model([1, 2, 3]).shape == (1, 3, 50)


def test_hook_names_lists_every_point_with_shapes(model):
    names = model.hook_names()
    assert names["blocks.2.attn.hook_pattern"] == ["batch", 4, "pos", "key_pos"]
    assert names["blocks.0.hook_resid_pre"] == ["batch", "pos", 24]
    assert list(names)[:3] == ["hook_embed", "hook_pos_embed", "blocks.0.hook_resid_pre"]
    _, cache = model.run_with_cache(TOKENS)
    assert set(cache.keys()) == set(names)
    for name, shape in names.items():
        concrete = [{"batch": 2, "pos": 6, "key_pos": 6}.get(s, s) for s in shape]
        assert list(cache[name].shape) == concrete, name


def test_cache_lookups(model):
    logits, cache = model.run_with_cache(TOKENS, names_filter=lambda n: "pattern" in n or "resid" in n)
    assert cache["pattern", 1] is cache["blocks.1.attn.hook_pattern"]
    assert cache.at(2, "residual") is cache["blocks.2.hook_resid_post"]
    assert "blocks.0.hook_mlp_out" not in cache
    pattern = cache["pattern", 0].numpy()
    np.testing.assert_allclose(pattern.sum(-1), 1.0, atol=1e-6)
    assert np.all(np.triu(pattern[0, 0], 1) == 0)  # causal
    with pytest.raises(UnknownHookError, match="blocks.1.attn.hook_pattern"):
        cache["blocks.1.attn.hook_patern"]
    np.testing.assert_array_equal(logits.numpy(), model(TOKENS).numpy())


def test_run_with_caching_by_layer_and_component(model):
    cache = model.run_with_caching(TOKENS, layers=(0, 2), components=("residual", "attention", "mlp"))
    assert sorted(cache.keys()) == sorted(
        f"blocks.{l}.{n}" for l in (0, 2) for n in ("hook_resid_post", "attn.hook_z", "hook_mlp_out"))
    assert cache.at(0, "attention").shape == (2, 6, 4, 6)
    with pytest.raises(LayerNotFoundError, match="layer 14 requested, model has layers 0-2"):
        model.run_with_caching(TOKENS, layers=(14,))


def test_resid_stream_adds_up(model):
    _, cache = model.run_with_cache(TOKENS)
    for layer in range(3):
        pre, attn, mlp, post = (cache[f"blocks.{layer}.{n}"].numpy() for n in (
            "hook_resid_pre", "hook_attn_out", "hook_mlp_out", "hook_resid_post"))
        np.testing.assert_allclose(pre + attn + mlp, post, atol=1e-5)


def test_run_with_hooks_tl_style(model):
    seen = []

    def zero_head_2(z, hook):
        seen.append(hook.name)
        z[:, :, 2] = 0.0
        return z

    ablated = model.run_with_hooks(TOKENS, fwd_hooks=[("blocks.1.attn.hook_z", zero_head_2)])
    assert seen == ["blocks.1.attn.hook_z"]
    assert not np.allclose(ablated.numpy(), model(TOKENS).numpy())
    assert model.hook_manager.hooks == []
    same = model.run_with_hooks(TOKENS, fwd_hooks=[(lambda name: name.endswith("hook_q"), lambda a, h: None)])
    np.testing.assert_array_equal(same.numpy(), model(TOKENS).numpy())


def test_hook_objects(model):
    record = ActivationHook(layer=1, component="residual")
    probe = ProbeHook(layer=2, component="mlp", probe=lambda a: a.norm(-1))
    zero = InterventionHook(layer=0, component="attention", action=lambda a: a.zero_heads([1, 3]))
    caching = CachingHook([(1, "pattern")])
    for hook in (record, probe, zero, caching):
        model.hook_manager.add_hook(hook)
    try:
        model(TOKENS)
        assert record.last_activation.shape == (2, 6, 24)
        assert probe.last_output.shape == (2, 6)
        assert list(caching.cache.keys()) == ["blocks.1.attn.hook_pattern"]
    finally:
        model.hook_manager.clear()
    _, cache = model.run_with_cache(TOKENS, names_filter="blocks.1.hook_resid_post")
    assert not np.allclose(record.last_activation.numpy(), cache["blocks.1.hook_resid_post"].numpy())
    with model.hooks([zero, ActivationHook(layer=0, component="attention")]) as (_, seen):
        model(TOKENS)
    z = seen.last_activation.numpy()
    assert np.all(z[:, :, [1, 3]] == 0) and np.any(z[:, :, 0] != 0)
    assert model.hook_manager.hooks == []


def test_hooks_removed_when_forward_raises(model):
    def boom(activation, hook):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        model.run_with_hooks(TOKENS, fwd_hooks=[("blocks.1.hook_resid_mid", boom)])
    with pytest.raises(RuntimeError):
        with model.hooks([("blocks.0.hook_mlp_out", boom)]):
            model(TOKENS)
    persistent = model.hook_manager.add_hook("blocks.2.hook_resid_post", boom)
    with pytest.raises(RuntimeError):
        model.run_with_cache(TOKENS)
    # The temporary caching hook is gone; the user's own persistent hook stays until removed.
    assert model.hook_manager.hooks == [persistent]
    model.hook_manager.remove_hook(persistent)
    assert model.hook_manager.hooks == []
    assert all(not point.fns for point in model.hook_points.values())


def test_bad_addresses_leave_nothing_behind(model):
    with pytest.raises(UnknownHookError) as info:
        model.run_with_hooks(TOKENS, fwd_hooks=[("blocks.0.hook_resid_pre", lambda a, h: None),
                                                ("blocks.0.attn.hook_patern", lambda a, h: None)])
    assert "blocks.0.attn.hook_pattern" in str(info.value)
    with pytest.raises(LayerNotFoundError, match="layer 7 requested, model has layers 0-2"):
        model.hook_manager.add_hook(ActivationHook(layer=7, component="residual"))
    with pytest.raises(LayerNotFoundError):
        model.hook_manager.add_hook("blocks.9.hook_resid_pre", lambda a, h: None)
    with pytest.raises(UnknownHookError, match="closest valid names"):
        model.hook_manager.add_hook(ActivationHook(layer=1, component="residul"))
    assert model.hook_manager.hooks == []
    assert all(not point.fns for point in model.hook_points.values())


def test_invalid_tokens(model):
    with pytest.raises(InvalidTokenError, match="token id 50 is outside the vocabulary: expected ids in 0-49"):
        model([[1, 2, 50]])
    with pytest.raises(InvalidTokenError, match="-3"):
        model([[1, -3]])
    with pytest.raises(InvalidTokenError, match="non-empty"):
        model([])
    with pytest.raises(InvalidTokenError, match="exceeds the model's context of 16"):
        model([list(range(17))])
    assert model.hook_manager.hooks == []


def test_unsupported_architecture_lists_supported():
    with pytest.raises(UnsupportedModelError) as info:
        ns.ModelConfig.from_hf({"model_type": "bert", "architectures": ["BertModel"]})
    for family in ("gpt2", "gpt_neox", "llama", "qwen2", "mistral"):
        assert family in str(info.value)


def test_friendly_components_map_to_tl_names(model):
    manager = model.hook_manager
    assert manager.resolve((3 - 1, "residual")) == ["blocks.2.hook_resid_post"]
    assert manager.resolve((0, "mlp")) == ["blocks.0.hook_mlp_out"]
    assert manager.resolve((1, "pattern")) == ["blocks.1.attn.hook_pattern"]
    assert manager.resolve("blocks.1.attn.hook_z") == ["blocks.1.attn.hook_z"]
    assert ns.act_name("scale", 2, "ln2") == "blocks.2.ln2.hook_scale"
    assert ns.act_name("normalized") == "ln_final.hook_normalized"
