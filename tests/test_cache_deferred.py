"""Deferred cache entries (cache.DeferredActivation): a run_with_cache cache keeps the norms'
outputs and scales, the MLP's hook_post and the attention scores, pattern and z as recipes
of entries it holds, and computes each when first read. What is read must be, bit for bit,
what the forward pass had at that hook point: the reference here is the same forward pass
observed by plain function hooks, which always see materialized activations."""

import numpy as np
import pytest

import neuroscope as ns
from neuroscope.backends.numpy_backend import NumpyBackend
from reference_models import FAMILIES

pytestmark = pytest.mark.ref
PROMPTS = ["The capital of France is", "When Mary and John went to the store, John gave"]
BACKENDS = ["numpy", "torch"]


def _backend(name):
    if name == "numpy":
        return NumpyBackend()
    pytest.importorskip("torch")
    from neuroscope.backends.torch_backend import TorchBackend
    return TorchBackend()


def _observed(model, tokens, mask):
    """Every hook point's activation as function hooks see it (nothing deferred)."""
    seen = {}

    def record(activation, hook):
        seen[hook.name] = activation.numpy().copy()

    logits = model.run_with_hooks(tokens, attention_mask=mask,
                                  fwd_hooks=[(name, record) for name in model.hook_names()])
    return logits.numpy(), seen


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("family", FAMILIES)
def test_deferred_entries_equal_what_the_forward_pass_had(reference_dir, family, backend):
    model = ns.TransformerModel.from_huggingface(reference_dir(family), backend=_backend(backend))
    tokens, mask = model.tokenize(PROMPTS, padding_side="left")  # fully masked query rows too
    want_logits, want = _observed(model, tokens, mask)
    logits, cache = model.run_with_cache(tokens, attention_mask=mask)
    deferred = set(cache.deferred)
    kinds = {name.rsplit(".", 1)[1] for name in deferred}
    assert {"hook_attn_scores", "hook_pattern", "hook_post", "hook_normalized", "hook_scale", "hook_z"} <= kinds
    # Every norm's too: the residual stream they read stays held (a norm over a deferred
    # input would have to spell its scale out, splitting the cpu backend's graphs).
    assert {name for name in cache.keys() if name.endswith(("hook_scale", "hook_normalized"))} <= deferred
    assert not deferred & {name for name in cache.keys() if "resid" in name or name.endswith("hook_q")}
    held = cache.nbytes
    np.testing.assert_array_equal(logits.numpy(), want_logits)
    assert sorted(cache.keys()) == sorted(want)
    for name in cache.keys():
        np.testing.assert_array_equal(cache[name].numpy(), want[name], err_msg=name)
    assert not cache.deferred and cache.nbytes > held  # each read computed once and kept
    assert cache["blocks.0.attn.hook_pattern"] is cache["blocks.0.attn.hook_pattern"]


def test_a_cache_everything_run_holds_less_and_computes_on_read(reference_dir):
    model = ns.TransformerModel.from_huggingface(reference_dir("gpt2"), backend=NumpyBackend())
    _, cache = model.run_with_cache(PROMPTS[1])
    held, deferred = cache.nbytes, len(cache.deferred)
    assert deferred == 8 * model.cfg.n_layers + 2  # 2 norms x (scale, normalized), post, scores, pattern, z; ln_final
    full = sum(cache[name].nbytes for name in list(cache.keys()))
    assert held < 0.7 * full
    assert "computed when first read" not in repr(cache) and cache.nbytes == full


def test_later_edits_of_a_source_do_not_change_a_deferred_entry(reference_dir):
    model = ns.TransformerModel.from_huggingface(reference_dir("gpt2"), backend=NumpyBackend())
    tokens = model.to_tokens(PROMPTS[0])
    _, want = _observed(model, tokens, None)
    _, cache = model.run_with_cache(tokens)
    cache["blocks.0.mlp.hook_pre"][:, 0] = 0.0  # an in-place edit of a source, after the run
    cache["blocks.1.hook_resid_pre"][...] = 1.0
    np.testing.assert_array_equal(cache["blocks.0.mlp.hook_post"].numpy(), want["blocks.0.mlp.hook_post"])
    np.testing.assert_array_equal(cache["blocks.1.ln1.hook_normalized"].numpy(),
                                  want["blocks.1.ln1.hook_normalized"])


def test_nothing_is_deferred_where_the_cache_lacks_the_sources_or_another_hook_looks(reference_dir):
    model = ns.TransformerModel.from_huggingface(reference_dir("llama"), backend=NumpyBackend())
    tokens = model.to_tokens(PROMPTS[0])
    _, want = _observed(model, tokens, None)
    # Only the pattern: its sources (q, k) are not cached, so it is stored as computed.
    _, cache = model.run_with_cache(tokens, names_filter=["blocks.0.attn.hook_pattern", "blocks.1.mlp.hook_post"])
    assert cache.deferred == []
    np.testing.assert_array_equal(cache["blocks.0.attn.hook_pattern"].numpy(), want["blocks.0.attn.hook_pattern"])
    # Another hook looking at the same point gets the real activation, and so does the cache.
    watcher = ns.ActivationHook(layer=1, component="mlp_post")
    with model.hooks([watcher]):
        _, cache = model.run_with_cache(tokens)
    assert "blocks.1.mlp.hook_post" not in cache.deferred and "blocks.0.mlp.hook_post" in cache.deferred
    np.testing.assert_array_equal(cache["blocks.1.mlp.hook_post"].numpy(), want["blocks.1.mlp.hook_post"])
    # A byte budget counts what the cache holds: nothing deferred.
    _, cache = model.run_with_cache(tokens, budget=2**30)
    assert cache.deferred == []


def test_an_edited_pattern_still_flows_through_the_spelled_out_attention(reference_dir):
    model = ns.TransformerModel.from_huggingface(reference_dir("gpt2"), backend=NumpyBackend())
    tokens = model.to_tokens(PROMPTS[1])
    plain = model(tokens).numpy()
    edit = ns.FunctionHook("blocks.0.attn.hook_pattern", lambda pattern, hook: pattern * 0.5)
    with model.hooks([edit]):
        edited, cache = model.run_with_cache(tokens)
    assert "blocks.0.attn.hook_pattern" not in cache.deferred
    assert not np.allclose(edited.numpy(), plain)
    np.testing.assert_allclose(cache["blocks.0.attn.hook_pattern"].numpy().sum(-1), 0.5, atol=1e-6)


def test_a_reused_caching_hook_remembers_one_activation_per_point(reference_dir):
    model = ns.TransformerModel.from_huggingface(reference_dir("gpt2"), backend=NumpyBackend())
    tokens = model.to_tokens(PROMPTS[0])
    hook = ns.CachingHook()
    with model.hooks([hook]):
        for _ in range(3):
            model(tokens)
            deferred = set(hook.cache.deferred)
    held = [id(hook.cache._store[name]) for name in hook.cache.keys() if name not in deferred]
    assert hook._stored == {key: held.count(key) for key in held}  # the last run's only
    np.testing.assert_array_equal(hook.cache["blocks.0.attn.hook_pattern"].numpy(),
                                  _observed(model, tokens, None)[1]["blocks.0.attn.hook_pattern"])
