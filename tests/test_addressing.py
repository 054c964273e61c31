"""Heads address heads and positions address positions on every hook; arguments as users
pass them; observers never change the forward; TransformerLens habits (README, "Addressing")."""

import numpy as np
import pytest

import neuroscope as ns
from neuroscope import (
    ActivationHook,
    InterventionHook,
    InvalidIndexError,
    InvalidTokenError,
    LayerNotFoundError,
    NeuroScopeError,
    Scale,
    ShapeError,
    UnknownHookError,
    ZeroAblation,
)
from neuroscope.analysis import AttentionAnalyzer, AttentionMetric

GPT2 = dict(model_type="gpt2", vocab_size=50, n_positions=16, n_embd=24, n_layer=2, n_head=4)
LLAMA = dict(model_type="llama", vocab_size=50, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
             num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=32)
TOKENS = [[1, 5, 7, 9, 11, 2], [3, 4, 4, 4, 8, 6]]

# component -> (axis of heads, axis of positions) in its activation, as the hook declares them.
HEAD_HOOKS = {"q": (2, 1), "k": (2, 1), "v": (2, 1), "z": (2, 1), "attention": (2, 1),
              "scores": (1, 2), "pattern": (1, 2), "result": (2, 1)}


def _model(config):
    cfg = ns.ModelConfig.from_hf(config)
    cfg.use_attn_result = True
    return ns.TransformerModel(cfg, ns.TransformerModel.from_config(config, seed=3).weights)


@pytest.fixture(scope="module", params=["gpt2", "llama"])
def model(request):
    return _model(GPT2 if request.param == "gpt2" else LLAMA)


def _edited(model, component, **hook_args):
    """The activation at layer 1 ``component`` clean, and as the next hook sees it after the edit."""
    clean = ActivationHook(layer=1, component=component)
    with model.hooks([clean]):
        model(TOKENS)
    edit = InterventionHook(layer=1, component=component, **hook_args)
    seen = ActivationHook(layer=1, component=component)
    with model.hooks([edit, seen]):
        logits = model(TOKENS)
    return clean.last_activation.numpy(), seen.last_activation.numpy(), logits.numpy()


@pytest.mark.parametrize("component", sorted(HEAD_HOOKS))
def test_heads_and_positions_select_their_own_axes(model, component):
    head_axis, pos_axis = HEAD_HOOKS[component]
    n_heads = model.cfg.n_kv_heads if component in ("k", "v") else model.cfg.n_heads
    clean, ablated, _ = _edited(model, component, heads=[n_heads - 1], action=ZeroAblation())
    expected = clean.copy()
    index = [slice(None)] * clean.ndim
    index[head_axis] = n_heads - 1
    expected[tuple(index)] = 0.0
    np.testing.assert_array_equal(ablated, expected)

    clean, scaled, _ = _edited(model, component, action=Scale(2.0, positions=[3]))
    expected = clean.copy()
    index = [slice(None)] * clean.ndim
    index[pos_axis] = 3
    expected[tuple(index)] *= 2.0
    np.testing.assert_allclose(scaled, expected, rtol=1e-6)


def test_kv_heads_are_counted_on_keys_and_values():
    model = _model(LLAMA)  # 4 query heads, 2 key/value heads
    with pytest.raises(InvalidIndexError, match=r"head 3 requested; expected an integer in 0-1 \(at blocks.0"):
        model.hook_manager.add_hook(InterventionHook(layer=0, component="k", heads=[3], action=ZeroAblation()))
    assert model.hook_manager.hooks == []
    model.hook_manager.add_hook(InterventionHook(layer=0, component="q", heads=[3], action=ZeroAblation()))
    model.hook_manager.clear()


def test_heads_on_a_hook_without_heads_are_refused_when_added():
    model = _model(GPT2)
    for component in ("residual", "mlp", "resid_pre", "mlp_post"):
        with pytest.raises(NeuroScopeError, match="has no head axis; components with heads: attention, pattern"):
            model.hook_manager.add_hook(InterventionHook(layer=1, component=component, heads=[3],
                                                         action=ZeroAblation()))
    with pytest.raises(InvalidIndexError, match="head 99 requested; expected an integer in 0-3"):
        model.hook_manager.add_hook(InterventionHook(layer=1, component="pattern", heads=[99],
                                                     action=ZeroAblation()))
    with pytest.raises(InvalidIndexError, match="position 40 requested"):
        model.hook_manager.add_hook(InterventionHook(layer=1, component="residual",
                                                     action=ZeroAblation(positions=[40])))
    assert model.hook_manager.hooks == []


def test_indices_as_users_pass_them():
    model = _model(GPT2)
    base = model(TOKENS).numpy()
    same = [dict(layer=np.int64(1), heads=[2]), dict(layer=1, heads=np.array([2])),
            dict(layer=1, heads=np.int32(2)), dict(layer=1, heads=2)]
    results = []
    for args in same:
        with model.hooks([InterventionHook(component="z", action=ZeroAblation(), **args)]):
            results.append(model(TOKENS).numpy())
    for result in results[1:]:
        np.testing.assert_array_equal(result, results[0])
    assert not np.allclose(results[0], base)
    for spelling in ("all", "All", "ALL", None):
        with model.hooks([InterventionHook(layer=1, component="z", heads=spelling, action=ZeroAblation())]):
            every = model(TOKENS).numpy()
        with model.hooks([InterventionHook(layer=1, component="z", action=ZeroAblation())]):
            np.testing.assert_array_equal(every, model(TOKENS).numpy())
    with pytest.raises(InvalidIndexError, match=r"heads 'Al' requested; expected an integer or a list .* or 'all'"):
        InterventionHook(layer=1, component="z", heads="Al", action=ZeroAblation())
    with pytest.raises(InvalidIndexError, match=r"head 1.5 \(a float\)"):
        InterventionHook(layer=1, component="z", heads=[1.5], action=ZeroAblation())
    for layer, shown in (("1", r"'1' \(a str\)"), (1.0, r"1.0 \(a float\)"), (True, r"True \(a bool\)"),
                         (7, "7")):
        with pytest.raises(LayerNotFoundError, match=rf"layer {shown} requested.* 0-1"):
            model.hook_manager.add_hook(ActivationHook(layer=layer, component="residual"))
    assert model.hook_manager.hooks == []


def test_a_callable_with_heads_acts_on_those_heads_only():
    model = _model(GPT2)
    clean, edited, _ = _edited(model, "z", heads=[0, 2], action=lambda a: a * 0.0 + 1.0)
    expected = clean.copy()
    expected[:, :, [0, 2]] = 1.0
    np.testing.assert_array_equal(edited, expected)
    clean, edited, _ = _edited(model, "z", action=lambda a: a.zero_heads([1]))
    expected = clean.copy()
    expected[:, :, 1] = 0.0
    np.testing.assert_array_equal(edited, expected)
    clean, edited, _ = _edited(model, "pattern", action=lambda a: a.zero_heads([1]))  # heads on axis 1 here
    expected = clean.copy()
    expected[:, 1] = 0.0
    np.testing.assert_array_equal(edited, expected)
    with pytest.raises(ShapeError, match="does not say which axis holds heads"):
        ns.zeros((1, 2, 3, 4)).zero_heads([1])
    np.testing.assert_array_equal(ns.ones((1, 2, 3, 4)).zero_heads([1], axis=2).numpy()[:, :, 1], 0.0)


def test_observers_observe_and_interventions_check_shapes():
    model = _model(GPT2)
    base = model(TOKENS).numpy()
    for action in (lambda a: a.norm(), lambda a: a[:, :2], lambda a: a * 0.0):
        hook = ActivationHook(layer=1, component="residual", action=action)
        with model.hooks([hook]):
            out = model(TOKENS)
        assert out.shape == (2, 6, 50)
        np.testing.assert_array_equal(out.numpy(), base)
        assert hook.last_result is not None
    probe = ns.ProbeHook(layer=1, component="residual", probe=lambda a: a * 0.0)
    with model.hooks([probe]):
        np.testing.assert_array_equal(model(TOKENS).numpy(), base)
    wrong = InterventionHook(layer=1, component="residual", action=lambda a: a[:, :2])
    with pytest.raises(ShapeError, match=r"blocks.1.hook_resid_post returned shape \[2, 2, 24\]; .* \[2, 6, 24\]"):
        model.run_with_hooks(TOKENS, fwd_hooks=[wrong])
    with pytest.raises(ShapeError, match=r"blocks.1.hook_resid_post returned shape \[2, 6\]"):
        model.run_with_hooks(TOKENS, fwd_hooks=[("blocks.1.hook_resid_post", lambda a, h: a.sum(-1))])
    assert model.hook_manager.hooks == []


def test_numpy_and_list_returns_equal_tensor_returns():
    model = _model(GPT2)
    outs = []
    for convert in (lambda a: a * 0.5, lambda a: a.numpy() * 0.5, lambda a: (a.numpy() * 0.5).tolist()):
        for heads in (None, [1]):
            with model.hooks([InterventionHook(layer=0, component="z", heads=heads, action=convert)]):
                outs.append((heads, model(TOKENS).numpy()))
    for heads, out in outs:
        np.testing.assert_array_equal(out, outs[0 if heads is None else 1][1])

    class NumpyScore(AttentionMetric):
        key = "numpy_score"

        def compute(self, pattern, tokens):
            return pattern.numpy().mean(axis=(0, 2, 3))

    class ListScore(NumpyScore):
        key = "list_score"

        def compute(self, pattern, tokens):
            return super().compute(pattern, tokens).tolist()

    scores = AttentionAnalyzer(model, [NumpyScore, ListScore]).analyze_tokens(TOKENS).scores
    np.testing.assert_allclose(scores["numpy_score"].numpy(), scores["list_score"].numpy())
    assert scores["numpy_score"].shape == (2, 4)


def test_bad_token_ids_and_layers_everywhere():
    model = _model(GPT2)
    for tokens in ([[1.5, 2.0]], np.array([[1.0, 2.0]]), [[1, True]], [[1, 50]], [[-1, 2]]):
        with pytest.raises(InvalidTokenError):
            model(tokens)
    assert model([[np.int64(1), 2]]).shape == (1, 2, 50)
    analyzer = AttentionAnalyzer(model)
    for call in (lambda: analyzer.analyze_tokens(TOKENS, layers=[5]),
                 lambda: model.run_with_caching(TOKENS, layers=[2]),
                 lambda: ns.analysis.neuron_activations(model, 9, 0, TOKENS),
                 lambda: ns.analysis.neuron_activations(model, "1", 0, TOKENS),
                 lambda: model.hook_manager.add_hook(ActivationHook(layer=2.0, component="residual"))):
        with pytest.raises(LayerNotFoundError):
            call()
    with pytest.raises(UnknownHookError, match="valid components: .*attention.*residual"):
        model.hook_manager.add_hook(ActivationHook(layer=0, component="attn_pattern_thing"))


def test_observing_every_hook_point_never_changes_the_logits(reference_dir):
    for family in ("gpt2", "gpt_neox", "llama", "qwen2", "mistral"):
        model = ns.TransformerModel.from_huggingface(reference_dir(family))
        tokens = model.to_tokens("When Mary and John went to the store")
        plain = model(tokens).numpy()
        observed, _ = model.run_with_cache(tokens)
        np.testing.assert_allclose(observed.numpy(), plain, rtol=0, atol=1e-6, err_msg=family)
        seen = []
        with model.hooks([(lambda name: True, lambda a, hook, seen=seen: seen.append(hook.name))]):
            np.testing.assert_allclose(model(tokens).numpy(), plain, rtol=0, atol=1e-6, err_msg=family)
        assert len(seen) == len(model.hook_names())


def test_transformer_lens_habits(reference_dir):
    model = ns.TransformerModel.from_huggingface(reference_dir("gpt2"))
    text = model.generate("The capital of Japan", max_tokens=4)
    assert text.startswith("The capital of Japan") and "<|endoftext|>" not in text[:20]
    token = model.tokenizer.encode(" Mary")
    assert len(token) == 1 and model.to_single_token(" Mary") == token[0]
    with pytest.raises(InvalidTokenError, match="is 2 tokens|is 3 tokens|is 4 tokens"):
        model.to_single_token(" Mary and John")
    assert model.to_tokens("Hi").tolist()[0][0] == model.cfg.bos_token_id
    assert model.tokenizer.encode("Hi")[0] != model.cfg.bos_token_id


def test_tensor_repr_shows_values_on_numpy():
    text = repr(ns.tensor([[1.5, 2.0], [3.0, 4.0]]))
    assert text.startswith("Tensor([[1.5, 2. ],") and "shape=[2, 2], dtype=float32, backend=numpy" in text
    big = repr(ns.zeros((100, 100)))
    assert "..." in big and len(big) < 1000
