"""Residual decomposition, direct logit attribution and the logit lens against TransformerLens.

Each function in ``neuroscope.analysis.lens`` is compared with the
TransformerLens ``ActivationCache`` method of the same name, on a
``TransformerBridge`` without compatibility mode (unprocessed weights, as ours)
over tiny random GPT-2 (LayerNorm, learned positions) and Llama (RMSNorm,
rotary, grouped-query) models, to 1e-4 (observed ~4e-6). The logit-lens table
is compared with ``transformer_lens.tools.analysis.logit_lens``. Every TL
function used here runs on the bridge as is.
"""

import json

import numpy as np
import pytest

import neuroscope as ns
from neuroscope import analysis
from reference_models import load_hf

ATOL = 1e-4
CONFIG = dict(model_type="gpt2", vocab_size=40, n_positions=16, n_embd=16, n_layer=3, n_head=4)


@pytest.fixture(scope="module")
def small():
    model = ns.TransformerModel.from_config(CONFIG, seed=3)
    tokens = np.random.default_rng(1).integers(0, 40, (2, 6))
    logits, cache = model.run_with_cache(tokens)
    return model, logits, cache, tokens


# -- properties that need no reference ---------------------------------------------
def test_decomposition_sums_to_the_residual_stream(small):
    model, _, cache, _ = small
    for layer in range(model.cfg.n_layers + 1):
        parts = analysis.decompose_resid(model, cache, layer=layer).numpy().sum(0)
        resid = analysis.accumulated_resid(model, cache, layer=layer)[-1].numpy()
        np.testing.assert_allclose(parts, resid, atol=1e-5)
    heads = analysis.stack_head_results(model, cache, layer=2, incl_remainder=True).numpy()
    np.testing.assert_allclose(heads.sum(0), cache["blocks.1.hook_resid_post"].numpy(), atol=1e-5)


def test_head_results_sum_to_attention_output(small):
    model, _, cache, _ = small
    for layer in range(model.cfg.n_layers):
        heads = analysis.head_results(model, cache, layer).numpy().sum(0)
        b_o = model.blocks[layer].attn.b_O.numpy()
        np.testing.assert_allclose(heads + b_o, cache["attn_out", layer].numpy(), atol=1e-5)


def test_head_results_read_hook_result_when_cached(small):
    model, _, cache, tokens = small
    config = ns.ModelConfig.from_hf(dict(CONFIG, n_ctx=16))
    config.use_attn_result = True
    with_result = ns.TransformerModel(config, model.weights)
    _, result_cache = with_result.run_with_cache(tokens)
    assert "blocks.1.attn.hook_result" in result_cache
    np.testing.assert_allclose(analysis.stack_head_results(with_result, result_cache, pos_slice=[1, 4]).numpy(),
                               analysis.stack_head_results(model, cache, pos_slice=[1, 4]).numpy(), atol=1e-5)


def test_labels_and_shapes(small):
    model, _, cache, _ = small
    stack, labels = analysis.accumulated_resid(model, cache, incl_mid=True, return_labels=True)
    assert labels == ["0_pre", "0_mid", "1_pre", "1_mid", "2_pre", "2_mid", "final_post"]
    assert stack.shape == (7, 2, 6, 16)
    stack, labels = analysis.decompose_resid(model, cache, layer=1, mlp_input=True, pos_slice=-1,
                                             return_labels=True)
    assert labels == ["embed", "pos_embed", "0_attn_out", "0_mlp_out", "1_attn_out"]
    assert stack.shape == (5, 2, 16)
    stack, labels = analysis.stack_head_results(model, cache, layer=0, return_labels=True)
    assert stack.shape == (0, 2, 6, 16) and labels == []
    _, labels = analysis.stack_head_results(model, cache, layer=0, incl_remainder=True, return_labels=True)
    assert labels == ["remainder"]


def test_direct_logit_attribution_adds_up_to_the_logit_difference(small):
    # After processing, the final norm has no weight or bias, so the attributions of the
    # components (+ b_U) sum exactly to the logit difference.
    model = ns.TransformerModel.from_config(CONFIG, seed=3).process_weights()
    tokens = small[3]
    logits, cache = model.run_with_cache(tokens)
    attrs, labels = analysis.direct_logit_attribution(model, cache, [3, 4], [5, 6], by="heads")
    assert labels[-1] == "remainder" and attrs.shape == (13, 2)
    last = logits.numpy()[:, -1]
    if model.b_U is not None:  # fold_ln moves ln_final's bias into b_U: not part of the stream
        last = last - model.b_U.numpy()
    expected = last[[0, 1], [3, 4]] - last[[0, 1], [5, 6]]
    np.testing.assert_allclose(attrs.numpy().sum(0), expected, atol=1e-4)
    for by in ("components", "layers"):
        attrs, _ = analysis.direct_logit_attribution(model, cache, 3, 5, by=by)
        assert attrs.shape[1:] == (2,)


def test_logit_lens_table_final_row_is_the_model_output(small):
    model, logits, cache, tokens = small
    table = analysis.logit_lens(model, cache, k=3, batch_index=1, target=7)
    assert table.layers == ["0_pre", "1_pre", "2_pre", "final_post"]
    assert table.positions == list(range(6)) and table.input_tokens == tokens[1].tolist()
    probs = np.exp(logits.numpy()[1] - logits.numpy()[1].max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    order = np.argsort(-probs, axis=-1)[:, :3]
    assert table.top_ids[-1] == order.tolist()
    np.testing.assert_allclose(table.top_probs[-1], np.take_along_axis(probs, order, -1), atol=1e-6)
    np.testing.assert_allclose(table.target_probs[-1], probs[:, 7], atol=1e-6)
    assert table.target_ranks[-1] == (probs > probs[:, 7:8]).sum(-1).tolist()
    assert table.top("final_post", -1) == list(zip(table.top_ids[-1][-1], table.top_probs[-1][-1]))
    json.dumps(table.to_dict())
    assert analysis.logit_lens(model, cache, positions=-1, incl_mid=True).positions == [5]


def test_missing_activation_is_named(small):
    model, _, _, tokens = small
    _, cache = model.run_with_cache(tokens, names_filter=["blocks.0.hook_resid_pre"])
    with pytest.raises(analysis.MissingActivationError, match="blocks.1.hook_resid_pre"):
        analysis.accumulated_resid(model, cache)
    with pytest.raises(ValueError, match="layer 7"):
        analysis.decompose_resid(model, cache, layer=7)


# -- against TransformerLens ------------------------------------------------------
@pytest.fixture(scope="module", params=["gpt2", "llama"])
def pair(request, reference_dir):
    torch = pytest.importorskip("torch")
    pytest.importorskip("transformer_lens", reason="the ref extra (transformer-lens) is not installed")
    from transformer_lens.model_bridge import TransformerBridge
    folder = reference_dir(request.param)
    bridge = TransformerBridge.boot_transformers(folder, hf_model=load_hf(folder), device="cpu",
                                                 dtype=torch.float32)
    model = ns.TransformerModel.from_huggingface(folder)
    tokens = np.random.default_rng(0).integers(0, model.cfg.d_vocab, (2, 7))
    with torch.no_grad():
        _, tl_cache = bridge.run_with_cache(torch.tensor(tokens))
    _, cache = model.run_with_cache(tokens)
    return model, cache, bridge, tl_cache, tokens


def _close(ours, theirs):
    theirs = theirs.detach().numpy()
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours.numpy(), theirs, atol=ATOL, rtol=0)


ACCUMULATED = [dict(), dict(apply_ln=True), dict(layer=1, incl_mid=True, apply_ln=True),
               dict(layer=1, mlp_input=True, apply_ln=True), dict(layer=0, apply_ln=True),
               dict(pos_slice=-1, apply_ln=True), dict(pos_slice=[0, 3], incl_mid=True, apply_ln=True),
               dict(pos_slice=(1, 4), apply_ln=True, incl_mid=True)]
DECOMPOSED = [dict(), dict(apply_ln=True), dict(layer=1, mlp_input=True, apply_ln=True),
              dict(mode="attn", pos_slice=(1, 4), apply_ln=True), dict(mode="mlp", incl_embeds=False),
              dict(layer=0, pos_slice=-1, apply_ln=True)]
HEADS = [dict(), dict(apply_ln=True), dict(layer=1, incl_remainder=True, apply_ln=True),
         dict(pos_slice=-1, incl_remainder=True), dict(pos_slice=[1, 2], apply_ln=True)]


@pytest.mark.ref
@pytest.mark.parametrize("options", ACCUMULATED, ids=str)
def test_accumulated_resid(pair, options):
    model, cache, _, tl_cache, _ = pair
    ours, labels = analysis.accumulated_resid(model, cache, return_labels=True, **options)
    theirs, tl_labels = tl_cache.accumulated_resid(return_labels=True, **options)
    assert labels == tl_labels
    _close(ours, theirs)


@pytest.mark.ref
@pytest.mark.parametrize("options", DECOMPOSED, ids=str)
def test_decompose_resid(pair, options):
    model, cache, _, tl_cache, _ = pair
    ours, labels = analysis.decompose_resid(model, cache, return_labels=True, **options)
    theirs, tl_labels = tl_cache.decompose_resid(return_labels=True, **options)
    assert labels == tl_labels
    _close(ours, theirs)


@pytest.mark.ref
@pytest.mark.parametrize("options", HEADS, ids=str)
def test_stack_head_results(pair, options):
    model, cache, _, tl_cache, _ = pair
    ours, labels = analysis.stack_head_results(model, cache, return_labels=True, **options)
    theirs, tl_labels = tl_cache.stack_head_results(return_labels=True, **options)
    assert labels == tl_labels
    _close(ours, theirs)


@pytest.mark.ref
@pytest.mark.parametrize("options", [dict(layer=1), dict(layer=1, mlp_input=True), dict(layer=None),
                                     dict(batch_slice=1), dict(batch_slice=[1]), dict(recompute_ln=True)],
                         ids=str)
def test_apply_ln_to_stack(pair, options):
    model, cache, _, tl_cache, _ = pair
    stack = analysis.decompose_resid(model, cache, layer=1)
    theirs = tl_cache.apply_ln_to_stack(tl_cache.decompose_resid(layer=1), **options)
    _close(analysis.apply_ln_to_stack(model, cache, stack, **options), theirs)


@pytest.mark.ref
def test_logit_attrs(pair):
    import torch
    model, cache, _, tl_cache, tokens = pair
    stack, tl_stack = analysis.decompose_resid(model, cache), tl_cache.decompose_resid()
    heads, tl_heads = analysis.stack_head_results(model, cache), tl_cache.stack_head_results()
    _close(analysis.logit_attrs(model, cache, stack, 3), tl_cache.logit_attrs(tl_stack, 3))
    _close(analysis.logit_attrs(model, cache, heads, [3, 5], [6, 7]),
           tl_cache.logit_attrs(tl_heads, torch.tensor([3, 5]), torch.tensor([6, 7])))
    _close(analysis.logit_attrs(model, cache, stack, tokens), tl_cache.logit_attrs(tl_stack, torch.tensor(tokens)))
    # [pos] targets (length differs from the batch) are shared by every example.
    _close(analysis.logit_attrs(model, cache, stack, tokens[0]),
           tl_cache.logit_attrs(tl_stack, torch.tensor(tokens[0])))
    last, tl_last = analysis.decompose_resid(model, cache, pos_slice=-1), tl_cache.decompose_resid(pos_slice=-1)
    _close(analysis.logit_attrs(model, cache, last, [3, 5], [1, 2], pos_slice=-1),
           tl_cache.logit_attrs(tl_last, torch.tensor([3, 5]), torch.tensor([1, 2]), pos_slice=-1))
    _close(analysis.logit_attrs(model, cache, stack, 4, batch_slice=1),
           tl_cache.logit_attrs(tl_stack, 4, batch_slice=1))


@pytest.mark.ref
def test_logit_lens_table(pair):
    from transformer_lens.tools.analysis.logit_lens import logit_lens
    model, cache, bridge, tl_cache, _ = pair
    theirs = logit_lens(bridge, cache=tl_cache, positions=None, top_k=4, return_type="probs")
    for batch_index in (0, 1):
        table = analysis.logit_lens(model, cache, k=4, batch_index=batch_index)
        assert table.layers == theirs.labels
        np.testing.assert_allclose(table.top_probs, theirs.values[:, batch_index].numpy(), atol=ATOL)
        assert table.top_ids == theirs.readout.top_ids[:, batch_index].tolist()
