"""Parity with TransformerLens 4's ``TransformerBridge``, hook by hook, and weight processing.

(a) Unprocessed weights: every hook the bridge caches under a classic
    HookedTransformer name equals ours, and so do the logits.
(b) ``process_weights()`` on ours against ``enable_compatibility_mode()`` on the
    bridge (fold_ln, centring, value-bias folding): the same, with no exemptions.
(c) Processing keeps the function: log-probabilities before and after agree
    (``center_unembed`` moves each position's logits by a constant).

Tolerance 1e-4 absolute (observed ~5e-6). The bridge fills masked attention
scores with ``finfo.min``, ours with ``-inf``: masks are compared as masks and
only unmasked scores as numbers.

Convention difference found (reported, not hidden): on LayerNorm models the
bridge's ``ln*.hook_normalized`` is the value *before* the norm's weight and
bias, ``x / scale``; classic HookedTransformer (and NeuroScope) hook it *after*,
``x / scale * w + b``. RMSNorm agrees (before the weight, in both). After
fold_ln the weights are gone and the two coincide.
"""

import re

import numpy as np
import pytest

import neuroscope as ns
from reference_models import FAMILIES, load_hf

torch = pytest.importorskip("torch")
pytest.importorskip("transformer_lens", reason="the ref extra (transformer-lens) is not installed")
pytestmark = pytest.mark.ref

ATOL = 1e-4

# Names the bridge caches that HookedTransformer never had: each wrapped module's
# own hook_in/hook_out (attn.q.hook_out, mlp.in.hook_out, blocks.0.hook_out, ...),
# attention's hook_hidden_states, the rotary cos/sin tables, and hook_unembed (an
# alias of unembed.hook_out, i.e. the logits, which are compared separately).
BRIDGE_ONLY = re.compile(r"(^|\.)hook_(in|out|hidden_states|cos|sin)$|^hook_unembed$")

# Our hook points the bridge does not cache, per family, and why.
BRIDGE_LACKS = {
    # GPT-NeoX's joint-QKV attention rotates q/k inside Hugging Face's code: no rotary hooks.
    "gpt_neox": re.compile(r"^blocks\.\d+\.attn\.hook_rot_[qk]$"),
}

# Unprocessed LayerNorm models only: see the module docstring. Ours is compared
# with the bridge's ln*.hook_out (the norm's output, after w and b) instead.
NORMALIZED = re.compile(r"^(blocks\.\d+\.ln[12]|ln_final)\.hook_normalized$")


def _tokens(model, batch=2, n_pos=9, seed=0):
    return np.random.default_rng(seed).integers(0, model.cfg.d_vocab, (batch, n_pos))


def _bridge(folder, compatibility):
    from transformer_lens.model_bridge import TransformerBridge
    # The bridge switches the model it wraps to eager attention and may edit it: a fresh one each time.
    bridge = TransformerBridge.boot_transformers(folder, hf_model=load_hf(folder), device="cpu",
                                                 dtype=torch.float32)
    if compatibility:
        bridge.enable_compatibility_mode(disable_warnings=True)
    return bridge


def _run_bridge(bridge, tokens):
    with torch.no_grad():
        logits, cache = bridge.run_with_cache(torch.tensor(tokens, dtype=torch.long))
    return logits.numpy(), {name: cache[name].detach().numpy() for name in cache.keys()}


def _max_error(name, ours, theirs):
    assert ours.shape == theirs.shape, f"{name}: ours {ours.shape}, bridge {theirs.shape}"
    if name.endswith("hook_attn_scores"):
        masked = np.isneginf(ours)
        masked_there = theirs <= np.finfo(np.float32).min / 2
        assert (masked == masked_there).all(), f"{name}: masked entries differ"
        ours, theirs = ours[~masked], theirs[~masked]
    return float(np.abs(ours - theirs).max())


def _common_hooks(family, model, bridge_cache):
    """Our hook names the bridge also caches, after checking both sides' leftovers."""
    ours, theirs = set(model.hook_names()), set(bridge_cache)
    classic = {name for name in theirs if not BRIDGE_ONLY.search(name)}
    assert not classic - ours, f"bridge hooks with classic names that we lack: {sorted(classic - ours)}"
    lacks = BRIDGE_LACKS.get(family)
    unmatched = {name for name in ours - theirs if not (lacks and lacks.search(name))}
    assert not unmatched, f"our hooks the bridge does not cache (and not known to): {sorted(unmatched)}"
    return [name for name in model.hook_names() if name in theirs]


def _compare_all(family, model, tokens, bridge, layernorm_convention):
    logits, cache = model.run_with_cache(tokens)
    bridge_logits, bridge_cache = _run_bridge(bridge, tokens)
    names = _common_hooks(family, model, bridge_cache)
    assert len(names) >= 8 * model.cfg.n_layers
    errors = {}
    for name in names:
        reference = bridge_cache[name]
        if layernorm_convention and NORMALIZED.match(name):
            reference = bridge_cache[name[:-len("hook_normalized")] + "hook_out"]
        errors[name] = _max_error(name, cache[name].numpy(), reference)
    errors["logits"] = _max_error("logits", logits.numpy(), bridge_logits)
    bad = {name: error for name, error in errors.items() if not error <= ATOL}
    assert not bad, f"{family}: differences above {ATOL}: {bad}"
    return cache, bridge_cache


# -- (a) unprocessed ---------------------------------------------------------------------
@pytest.mark.parametrize("family", FAMILIES)
def test_every_hook_matches_bridge(reference_dir, family):
    folder = reference_dir(family)
    model = ns.TransformerModel.from_huggingface(folder)
    layernorm = model.cfg.normalization == "layernorm"
    cache, bridge_cache = _compare_all(family, model, _tokens(model), _bridge(folder, False), layernorm)
    if layernorm:
        # Pin the convention difference, so this exemption goes when TransformerLens changes:
        # the bridge's hook_normalized is x / scale; ours is that times w plus b.
        for name in (n for n in model.hook_names() if NORMALIZED.match(n)):
            prefix = name[:-len(".hook_normalized")]
            w, b = model.weights[prefix + ".w"].numpy(), model.weights[prefix + ".b"].numpy()
            theirs = bridge_cache[name]
            assert np.abs(cache[name].numpy() - theirs).max() > ATOL
            assert np.abs(cache[name].numpy() - (theirs * w + b)).max() <= ATOL


# -- (b) processed -------------------------------------------------------------------------
@pytest.mark.parametrize("family", FAMILIES)
def test_processed_hooks_match_compatibility_mode(reference_dir, family):
    folder = reference_dir(family)
    model = ns.TransformerModel.from_huggingface(folder).process_weights()
    # Folded norms have no weight left, so hook_normalized needs no exemption here.
    _compare_all(family, model, _tokens(model), _bridge(folder, True), layernorm_convention=False)


# -- (c) processing keeps the function ---------------------------------------------------------
def _log_probs(model, tokens):
    return model(tokens).log_softmax(-1).numpy()


@pytest.mark.parametrize("family", FAMILIES)
def test_process_weights_preserves_log_probs(reference_dir, family):
    model = ns.TransformerModel.from_huggingface(reference_dir(family))
    tokens = _tokens(model, seed=1)
    before_logits = model(tokens).numpy()
    before = _log_probs(model, tokens)
    model.process_weights()
    assert np.abs(_log_probs(model, tokens) - before).max() <= ATOL
    # And the logits themselves move by one constant per position.
    shift = model(tokens).numpy() - before_logits
    assert np.abs(shift - shift.mean(-1, keepdims=True)).max() <= ATOL


TRANSFORMS = ("fold_ln", "center_writing_weights", "center_unembed", "fold_value_biases")


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("transform", TRANSFORMS)
def test_each_transform_preserves_log_probs(reference_dir, family, transform):
    model = ns.TransformerModel.from_huggingface(reference_dir(family))
    tokens = _tokens(model, seed=2)
    before = _log_probs(model, tokens)
    if transform == "center_writing_weights" and model.cfg.normalization == "rmsnorm":
        with pytest.raises(ValueError, match="rmsnorm"):
            model.center_writing_weights()
        return
    assert getattr(model, transform)() is model
    assert np.abs(_log_probs(model, tokens) - before).max() <= ATOL


def test_processing_is_copy_on_write_and_unties_embeddings(reference_dir):
    model = ns.TransformerModel.from_huggingface(reference_dir("gpt2"))
    assert model.cfg.tie_word_embeddings and "unembed.W_U" not in model.weights
    old = dict(model.weights)
    values = {name: tensor.numpy().copy() for name, tensor in old.items()}
    W_E = model.W_E.numpy().copy()
    model.center_unembed()
    np.testing.assert_array_equal(model.W_E.numpy(), W_E)  # the embedding is untouched
    W_U = model.weights["unembed.W_U"].numpy()
    np.testing.assert_allclose(W_U, W_E.T - W_E.T.mean(-1, keepdims=True), atol=1e-6)
    model.process_weights()
    for name, tensor in old.items():
        np.testing.assert_array_equal(tensor.numpy(), values[name], err_msg=name)


def test_fold_ln_leaves_bare_normalisation(reference_dir):
    model = ns.TransformerModel.from_huggingface(reference_dir("gpt2")).fold_ln()
    assert not [name for name in model.weights if ".ln" in name or name.startswith("ln_final")]
    _, cache = model.run_with_cache(_tokens(model))
    normalized = cache["blocks.1.ln2.hook_normalized"].numpy()  # [b, p, d]
    assert np.abs(normalized.mean(-1)).max() <= 1e-5
    np.testing.assert_allclose(np.sqrt((normalized ** 2).mean(-1)), 1.0, atol=1e-3)


def test_grouped_query_value_biases_fold_per_group(reference_dir):
    model = ns.TransformerModel.from_huggingface(reference_dir("qwen2"))
    assert model.cfg.n_kv_heads < model.cfg.n_heads and "blocks.0.attn.b_V" in model.weights
    tokens = _tokens(model)
    _, before = model.run_with_cache(tokens)
    model.fold_value_biases()
    assert "blocks.0.attn.b_V" not in model.weights and "blocks.0.attn.b_O" in model.weights
    _, after = model.run_with_cache(tokens)
    np.testing.assert_allclose(after["blocks.0.hook_attn_out"].numpy(),
                               before["blocks.0.hook_attn_out"].numpy(), atol=ATOL)


def test_processing_refuses_while_hooks_are_registered(reference_dir):
    model = ns.TransformerModel.from_huggingface(reference_dir("gpt2"))
    with model.hooks([("blocks.0.hook_resid_pre", lambda tensor, hook: tensor)]):
        with pytest.raises(RuntimeError, match="hook"):
            model.process_weights()
    model.process_weights()
