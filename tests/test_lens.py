"""The Lens views (``neuroscope.lens``): values against independent computations (a full
``run_with_cache`` and numpy, plain function hooks), the ``code`` each view returns run
as a notebook would run it, JSON-ability, and errors for bad input.

The model is a tiny random GPT-2 (std 0.2, so predictions are peaked) with a real
byte-level BPE tokenizer trained by ``reference_models.train_tokenizer``.
"""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import neuroscope as ns
from neuroscope import FunctionHook, InterventionHook, lens
from neuroscope.analysis import AttentionAnalyzer
from neuroscope.demo import data

PROMPT = "When Mary and John went to the store, John gave a drink to"
SWAPPED = "When John and Mary went to the store, Mary gave a drink to"  # same token length
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    pytest.importorskip("tokenizers", reason="the dev extra (tokenizers) is not installed")
    import reference_models
    path = str(tmp_path_factory.mktemp("lens") / "tokenizer.json")
    vocab_size = reference_models.train_tokenizer(path)
    tokenizer = ns.Tokenizer.from_file(path)
    bos = tokenizer.token_to_id(reference_models.SPECIAL)
    config = dict(model_type="gpt2", vocab_size=vocab_size, n_positions=64, n_embd=32, n_layer=2, n_head=4,
                  bos_token_id=bos, eos_token_id=bos, initializer_range=0.2)
    return ns.TransformerModel.from_config(config, seed=1, tokenizer=tokenizer)


@pytest.fixture(scope="module")
def full(model):
    """An independent run caching everything: (logits [p, v], cache) as numpy."""
    logits, cache = model.run_with_cache(PROMPT)
    return logits.numpy()[0], {name: value.numpy()[0] for name, value in cache.items()}


def _softmax(logits):
    exp = np.exp(logits - logits.max(-1, keepdims=True))
    return exp / exp.sum(-1, keepdims=True)


def _check_top(entries, probs, decode=None):
    """``entries`` ([{"id", "text", "prob"}]) are the top of ``probs`` [v], to the 5 digits kept."""
    order = np.argsort(-probs, kind="stable")[:len(entries)]
    np.testing.assert_allclose([e["prob"] for e in entries], probs[order], rtol=1e-4)
    assert [e["id"] for e in entries] == order.tolist()
    if decode is not None:
        assert [e["text"] for e in entries] == [decode([i]) for i in order.tolist()]


def _run(code, model):
    namespace = {"model": model}
    exec(code, namespace)
    return namespace


def _json(result):
    """``result`` as JSON, Tensors replaced by their shapes."""
    return json.dumps(result, default=lambda value: list(value.shape) if isinstance(value, ns.Tensor) else None)


# -- analyze ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def analyzed(model):
    return lens.analyze(model, PROMPT, k=4)


def test_analyze_tokens_predictions_and_model(model, full, analyzed):
    logits, _ = full
    ids = model.to_tokens(PROMPT)[0].tolist()
    assert ids[0] == model.cfg.bos_token_id
    assert analyzed["tokens"] == [{"id": i, "text": t} for i, t in zip(ids, model.to_str_tokens(PROMPT))]
    probs = _softmax(logits)
    assert len(analyzed["predictions"]) == len(ids)
    for position, entries in enumerate(analyzed["predictions"]):
        assert len(entries) == 4
        _check_top(entries, probs[position], model.tokenizer.decode)
    assert analyzed["model"] == {"name": "random(seed=1)", "n_layers": 2, "n_heads": 4, "d_model": 32,
                                 "d_vocab": model.cfg.d_vocab, "d_mlp": 128}
    assert len(_json(analyzed)) > 0


def test_analyze_norms(full, analyzed):
    _, cache = full
    resid = [cache[f"blocks.{layer}.hook_resid_pre"] for layer in range(2)] + [cache["blocks.1.hook_resid_post"]]
    np.testing.assert_allclose(analyzed["residual_norms"], np.linalg.norm(resid, axis=-1), rtol=1e-4)
    for view, name in [("residual", "hook_resid_post"), ("attention", "hook_attn_out"), ("mlp", "hook_mlp_out")]:
        expected = [np.linalg.norm(cache[f"blocks.{layer}.{name}"], axis=-1) for layer in range(2)]
        np.testing.assert_allclose(analyzed["activation_norms"][view], expected, rtol=1e-4)


def test_analyze_attention(model, full, analyzed):
    _, cache = full
    patterns = analyzed["attention"]["patterns"]
    assert isinstance(patterns, ns.Tensor)
    expected = np.stack([cache[f"blocks.{layer}.attn.hook_pattern"] for layer in range(2)])  # [l, h, q, k]
    np.testing.assert_allclose(patterns.numpy(), expected, atol=1e-6)
    scores = analyzed["attention"]["scores"]
    reference = AttentionAnalyzer(model).analyze_tokens(PROMPT)
    for kind in ("previous_token", "duplicate_token", "induction", "entropy"):
        np.testing.assert_allclose(scores[kind], reference.scores[kind].numpy(), rtol=1e-4, atol=1e-8)
    # By hand: previous-token share of attention, and mean entropy over queries.
    n = expected.shape[-1]
    previous = np.eye(n, k=-1)
    np.testing.assert_allclose(scores["previous_token"],
                               (expected * previous).sum((-2, -1)) / expected.sum((-2, -1)), rtol=1e-4)
    entropy = -(expected * np.log(np.maximum(expected, 1e-30))).sum(-1).mean(-1)
    np.testing.assert_allclose(scores["entropy"], entropy, rtol=1e-4)


def test_analyze_logit_lens(model, full, analyzed):
    logits, cache = full
    w, b = model.weights["ln_final.w"].numpy(), model.weights["ln_final.b"].numpy()
    w_u = model.W_U.numpy()
    rows = [cache[f"blocks.{layer}.hook_resid_pre"] for layer in range(2)] + [cache["blocks.1.hook_resid_post"]]
    assert len(analyzed["logit_lens"]) == 3
    for row, resid in zip(analyzed["logit_lens"], rows):
        centred = resid - resid.mean(-1, keepdims=True)
        normalised = centred / np.sqrt((centred ** 2).mean(-1, keepdims=True) + model.cfg.eps) * w + b
        probs = _softmax(normalised @ w_u)
        for position, entries in enumerate(row):
            _check_top(entries, probs[position])
    assert analyzed["logit_lens"][-1] == analyzed["predictions"]  # the last row is the model's output


def test_analyze_runs_one_forward_pass(model, monkeypatch):
    calls = []
    forward = model.forward
    monkeypatch.setattr(model, "forward", lambda *a, **kw: calls.append(1) or forward(*a, **kw))
    lens.analyze(model, "Paris.", k=2)
    assert len(calls) == 1


def test_analyze_code_reproduces_every_view(model, analyzed):
    code = analyzed["code"]
    assert set(code) == {"tokens", "predictions", "residual_norms", "activation_norms", "attention", "logit_lens"}
    assert [{"id": i, "text": t} for i, t in zip(*(_run(code["tokens"], model)[key] for key in
                                                   ("tokens", "str_tokens")))] == analyzed["tokens"]
    ns_ = _run(code["predictions"], model)
    assert ns_["top_ids"].tolist() == [[e["id"] for e in row] for row in analyzed["predictions"]]
    np.testing.assert_allclose(ns_["top_probs"].numpy(), [[e["prob"] for e in row] for row in analyzed["predictions"]],
                               rtol=1e-4)
    np.testing.assert_allclose(_run(code["residual_norms"], model)["residual_norms"].numpy(),
                               analyzed["residual_norms"], rtol=1e-4)
    norms = _run(code["activation_norms"], model)["activation_norms"]
    for view in ("residual", "attention", "mlp"):
        np.testing.assert_allclose(norms[view].numpy(), analyzed["activation_norms"][view], rtol=1e-4)
    ns_ = _run(code["attention"], model)
    np.testing.assert_allclose(ns_["patterns"].numpy(), analyzed["attention"]["patterns"].numpy(), atol=1e-6)
    for kind, values in analyzed["attention"]["scores"].items():
        np.testing.assert_allclose(ns_["scores"][kind].numpy(), values, rtol=1e-4, atol=1e-8)
    table = _run(code["logit_lens"], model)["table"]
    assert table.top_ids == [[[e["id"] for e in cell] for cell in row] for row in analyzed["logit_lens"]]
    np.testing.assert_allclose(table.top_probs, [[[e["prob"] for e in cell] for cell in row]
                                                 for row in analyzed["logit_lens"]], rtol=1e-4)


def test_analyze_token_ids_and_errors(model):
    ids = [model.cfg.bos_token_id, 5, 9, 5, 9]
    result = lens.analyze(model, ids, k=2)
    assert [t["id"] for t in result["tokens"]] == ids
    assert _run(result["code"]["tokens"], model)["tokens"] == ids
    np.testing.assert_allclose(_run(result["code"]["residual_norms"], model)["residual_norms"].numpy(),
                               result["residual_norms"], rtol=1e-4)
    with pytest.raises(ValueError, match="k=0; expected an integer >= 1"):
        lens.analyze(model, PROMPT, k=0)
    with pytest.raises(TypeError, match="prompt is 3.5; expected a string or a non-empty list of token ids"):
        lens.analyze(model, 3.5)
    with pytest.raises(ns.InvalidTokenError, match="outside the vocabulary"):
        lens.analyze(model, [1, 10_000])


def test_model_names(monkeypatch):
    from types import SimpleNamespace

    from neuroscope.demo import MODEL_DIR

    def name(source):
        return lens.model_info(SimpleNamespace(source=source, cfg=SimpleNamespace(
            model_type="gpt2", n_layers=1, n_heads=1, d_model=4, d_vocab=8, d_mlp=16)))["name"]

    assert name(MODEL_DIR) == "demo"
    assert name("https://example.org/app/py/neuroscope/demo/model/") == "demo"
    assert name("https://huggingface.co/EleutherAI/pythia-70m/resolve/main/") == "EleutherAI/pythia-70m"
    assert name("/root/.cache/huggingface/hub/models--gpt2/snapshots/abc123") == "gpt2"
    assert name("/data/models/tiny-llama/") == "tiny-llama"
    assert name(None) == "gpt2"
    # A hub mirror (HF_ENDPOINT) names its models as the hub does; the page's ?hub= sets the same.
    monkeypatch.setenv("HF_ENDPOINT", "http://mirror.example:8080/hf/")
    assert name("http://mirror.example:8080/hf/gpt2/resolve/main/") == "gpt2"
    assert name("http://mirror.example:8080/hf/org/tiny/resolve/main/") == "org/tiny"
    assert name("https://huggingface.co/gpt2/resolve/main/") == "gpt2"


# -- ablate ----------------------------------------------------------------------------
def _last_probs(model, hooks=(), prompt=PROMPT):
    logits = model.run_with_hooks(prompt, fwd_hooks=list(hooks)).numpy()[0, -1]
    return logits, _softmax(logits)


def _replace_head(layer, head, values):
    """A plain hook that writes ``values`` [p or 1, e] into one head's hook_z."""
    def fn(activation, hook):
        out = activation.numpy().copy()
        out[0, :, head] = values
        return ns.tensor(out)
    return FunctionHook(f"blocks.{layer}.attn.hook_z", fn)


def _replace_mlp(layer, values):
    return FunctionHook(f"blocks.{layer}.hook_mlp_out",
                        lambda activation, hook: ns.tensor(np.broadcast_to(values, activation.shape).copy()))


def test_ablate_zero_and_mean_against_plain_hooks(model, full):
    _, cache = full
    ablations = [{"layer": 0, "head": 1, "kind": "zero"}, {"layer": 1, "mlp": True, "kind": "mean"},
                 {"layer": 1, "head": 3, "kind": "mean"}]
    result = lens.ablate(model, PROMPT, ablations, answer=" Mary", wrong=" John", k=5)
    hooks = [_replace_head(0, 1, 0.0), _replace_mlp(1, cache["blocks.1.hook_mlp_out"].mean(0)),
             _replace_head(1, 3, cache["blocks.1.attn.hook_z"][:, 3].mean(0))]
    base_logits, base = _last_probs(model)
    ablated_logits, ablated = _last_probs(model, hooks)
    _check_top(result["baseline"], base, model.tokenizer.decode)
    _check_top(result["ablated"], ablated, model.tokenizer.decode)
    mary, john = (model.tokenizer.encode(name, add_special_tokens=False)[0] for name in (" Mary", " John"))
    assert result["logit_diff"]["baseline"] == pytest.approx(base_logits[mary] - base_logits[john], rel=1e-4)
    assert result["logit_diff"]["ablated"] == pytest.approx(ablated_logits[mary] - ablated_logits[john], rel=1e-4)
    delta = ablated - base
    order = np.argsort(-np.abs(delta), kind="stable")[:5]
    assert [c["id"] for c in result["changes"]] == order.tolist()
    np.testing.assert_allclose([c["delta"] for c in result["changes"]], delta[order], rtol=1e-3)
    np.testing.assert_allclose([c["baseline"] for c in result["changes"]], base[order], rtol=1e-4)
    assert result["reference"] == PROMPT  # the mean defaults to the prompt's own positions
    assert len(_json(result)) > 0


def test_ablate_mean_from_another_text_and_resample(model):
    other = "The capital of France is"
    _, other_cache = model.run_with_cache(other)
    result = lens.ablate(model, PROMPT, [{"layer": 0, "mlp": True, "kind": "mean"}], reference=other)
    _, expected = _last_probs(model, [_replace_mlp(0, other_cache["blocks.0.hook_mlp_out"].numpy()[0].mean(0))])
    _check_top(result["ablated"], expected)
    assert result["reference"] == other
    _, swapped_cache = model.run_with_cache(SWAPPED)
    result = lens.ablate(model, PROMPT, [{"layer": 1, "head": 2, "kind": "resample"}], reference=SWAPPED)
    _, expected = _last_probs(model, [_replace_head(1, 2, swapped_cache["blocks.1.attn.hook_z"].numpy()[0, :, 2])])
    _check_top(result["ablated"], expected)
    assert result["logit_diff"] is None


def test_ablate_specs_and_code_reproduce_the_result(model):
    ablations = [{"layer": 0, "head": 1, "kind": "mean"}, {"layer": 1, "mlp": True, "kind": "resample"},
                 {"layer": 1, "head": 0}]
    result = lens.ablate(model, PROMPT, ablations, answer=" Mary", wrong=" John", k=3, reference=SWAPPED)
    # The specs are the share-link form: rebuilt from JSON alone, they give the same prediction.
    specs = json.loads(json.dumps(result["spec"]))
    # Resample first (its source run must see no other hook), then the rest in the order given.
    assert [spec["intervention"]["type"] for spec in specs] == ["resample_ablation", "mean_ablation",
                                                                 "zero_ablation"]
    assert [(spec["layer"], spec["component"], spec["heads"]) for spec in specs] == [
        (1, "mlp_out", None), (0, "z", [1]), (1, "z", [0])]
    _, from_specs = _last_probs(model, [InterventionHook.from_spec(spec) for spec in specs])
    _check_top(result["ablated"], from_specs)
    namespace = _run(result["code"], model)
    assert namespace["top_ids"].tolist() == [e["id"] for e in result["ablated"]]
    np.testing.assert_allclose(namespace["top_probs"].numpy(), [e["prob"] for e in result["ablated"]], rtol=1e-4)
    assert namespace["logit_diff"] == pytest.approx((result["logit_diff"]["baseline"],
                                                     result["logit_diff"]["ablated"]), rel=1e-4)
    assert json.loads(json.dumps(namespace["spec"])) == specs


def test_ablate_without_ablations_changes_nothing(model):
    result = lens.ablate(model, PROMPT, [], k=3)
    assert result["ablated"] == result["baseline"] and result["spec"] == [] and result["reference"] is None
    assert all(change["delta"] == 0 for change in result["changes"])
    assert "hooks = [\n]" in result["code"]


def test_ablate_errors(model):
    with pytest.raises(ns.LayerNotFoundError, match="layer 2 requested, model has layers 0-1"):
        lens.ablate(model, PROMPT, [{"layer": 2, "head": 0}])
    with pytest.raises(IndexError, match=r"ablations\[0\] head 4 requested; expected an integer in 0-3"):
        lens.ablate(model, PROMPT, [{"layer": 1, "head": 4, "kind": "zero"}])
    with pytest.raises(ValueError, match="kind 'shuffle'; expected one of"):
        lens.ablate(model, PROMPT, [{"layer": 1, "head": 0, "kind": "shuffle"}])
    with pytest.raises(ValueError, match="exactly one of 'head'"):
        lens.ablate(model, PROMPT, [{"layer": 1, "head": 0, "mlp": True}])
    with pytest.raises(ValueError, match="needs reference="):
        lens.ablate(model, PROMPT, [{"layer": 1, "head": 0, "kind": "resample"}])
    n, m = model.to_tokens(PROMPT).shape[1], model.to_tokens("Paris.").shape[1]
    with pytest.raises(ValueError, match=f"the reference is {m} tokens and the prompt {n}"):
        lens.ablate(model, PROMPT, [{"layer": 1, "mlp": True, "kind": "resample"}], reference="Paris.")
    with pytest.raises(ValueError, match="give both"):
        lens.ablate(model, PROMPT, [], answer=" Mary")


# -- patch -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def patched(model):
    calls = []
    result = lens.patch(model, PROMPT, SWAPPED, " Mary", " John", progress=lambda d, t: calls.append((d, t)))
    return result, calls


def _logit_diff(model, hooks, prompt=SWAPPED):
    logits = model.run_with_hooks(prompt, fwd_hooks=hooks).numpy()[0, -1]
    mary, john = (model.tokenizer.encode(name, add_special_tokens=False)[0] for name in (" Mary", " John"))
    return logits[mary] - logits[john]


def _check_cells(model, result, expected, positions, **tolerance):
    """The shapes of a patching-like result and its cells at ``positions`` (and the last) of both
    layers and every head, against ``expected(hook_name, position=None, head=None)``."""
    n = model.to_tokens(PROMPT).shape[1]
    assert np.shape(result["resid"]) == (2, n) and np.shape(result["mlp"]) == (2, n)
    assert np.shape(result["heads"]) == (2, 4)
    for layer in range(2):
        for position in (*positions, n - 1):
            for key, name in (("resid", f"blocks.{layer}.hook_resid_pre"), ("mlp", f"blocks.{layer}.hook_mlp_out")):
                assert result[key][layer][position] == pytest.approx(expected(name, position), **tolerance)
        for head in range(4):
            assert result["heads"][layer][head] == pytest.approx(
                expected(f"blocks.{layer}.attn.hook_z", head=head), **tolerance)


def test_patch_cells_by_hand(model, patched):
    result, _ = patched
    _, clean = model.run_with_cache(PROMPT)
    clean_diff, corrupted_diff = _logit_diff(model, [], PROMPT), _logit_diff(model, [])
    assert result["clean_logit_diff"] == pytest.approx(clean_diff, rel=1e-4)
    assert result["corrupted_logit_diff"] == pytest.approx(corrupted_diff, rel=1e-4)

    def patched_at(name, position=None, head=None):
        def fn(activation, hook):
            out, source = activation.numpy().copy(), clean[name].numpy()
            index = (0, slice(None) if position is None else position) + (() if head is None else (head,))
            out[index] = source[index]
            return ns.tensor(out)
        value = _logit_diff(model, [FunctionHook(name, fn)])
        return (value - corrupted_diff) / (clean_diff - corrupted_diff)

    _check_cells(model, result, patched_at, (3, 5), rel=1e-3, abs=1e-4)
    # Positions where the prompts agree carry nothing at layer 0; the swapped names carry everything.
    # (Cells share batched forward passes, so "nothing" is 0 to float32 rounding.)
    assert result["resid"][0][0] == pytest.approx(0, abs=1e-4) and result["resid"][0][1] == pytest.approx(0, abs=1e-4)
    assert result["tokens"] == model.to_str_tokens(PROMPT)


def test_patch_progress_and_code(model, patched):
    result, calls = patched
    n = model.to_tokens(PROMPT).shape[1]
    total = 2 * n + 2 * 4 + 2 * n
    assert calls[-1] == (total, total) and all(t == total for _, t in calls)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)
    namespace = _run(result["code"], model)
    for key in ("resid", "heads", "mlp"):
        np.testing.assert_allclose(namespace[key].numpy(), result[key], rtol=1e-3, atol=1e-4)
    assert namespace["clean_logit_diff"] == pytest.approx(result["clean_logit_diff"], rel=1e-4)
    assert len(_json(result)) > 0


# -- attribute ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def attributed(model):
    calls = []
    result = lens.attribute(model, PROMPT, SWAPPED, " Mary", " John", saliency_steps=8,
                            progress=lambda d, t: calls.append((d, t)))
    return result, calls


def test_attribute_cells_are_directional_derivatives(model, attributed):
    """Each cell is d/de metric(corrupted run with a -> a_corrupt + e (a_clean - a_corrupt)) at e = 0
    over clean - corrupted: checked by a central difference of forward passes with function hooks."""
    result, _ = attributed
    _, clean = model.run_with_cache(PROMPT)
    _, corrupt = model.run_with_cache(SWAPPED)
    scale = result["clean_logit_diff"] - result["corrupted_logit_diff"]
    assert result["clean_logit_diff"] == pytest.approx(_logit_diff(model, [], PROMPT), rel=1e-4)

    def derivative(name, position=None, head=None, eps=1e-2):
        index = (0, slice(None) if position is None else position) + (() if head is None else (head,))

        def moved(e):
            def fn(activation, hook):
                out = activation.numpy().copy()
                out[index] += e * (clean[name].numpy() - corrupt[name].numpy())[index]
                return ns.tensor(out)
            return _logit_diff(model, [FunctionHook(name, fn)])
        return (moved(eps) - moved(-eps)) / (2 * eps) / scale

    _check_cells(model, result, derivative, (3, 8), rel=1e-2, abs=1e-3)
    assert result["resid"][0][0] == 0 and result["resid"][0][1] == 0  # the prompts agree there
    assert result["tokens"] == model.to_str_tokens(PROMPT) and result["method"] == "atp"


def test_attribute_saliency_progress_and_code(model, attributed):
    result, calls = attributed
    saliency = result["saliency"]
    assert len(saliency["scores"]) == model.to_tokens(PROMPT).shape[1] and saliency["steps"] == 8
    assert saliency["value"] == pytest.approx(result["clean_logit_diff"], rel=1e-4)
    assert sum(saliency["scores"]) - (saliency["value"] - saliency["baseline_value"]) == pytest.approx(
        saliency["delta"], abs=1e-3)
    assert calls[0] == (0, 9) and calls[-1] == (9, 9) and [d for d, _ in calls] == sorted(d for d, _ in calls)
    namespace = _run(result["code"], model)
    for key in ("resid", "heads", "mlp"):
        np.testing.assert_allclose(namespace[key].numpy(), result[key], rtol=1e-3, atol=1e-5)
    np.testing.assert_allclose(namespace["saliency"].scores.numpy()[0], saliency["scores"], rtol=1e-3, atol=1e-5)
    assert "steps=8" in result["code"] and "method='atp'" in result["code"]
    assert len(_json(result)) > 0


def test_attribute_eap_ig_layer_zero_sums_to_the_whole_effect(model):
    """EAP-IG at blocks.0.hook_resid_pre integrates along the path it scores: completeness."""
    result = lens.attribute(model, PROMPT, SWAPPED, " Mary", " John", method="eap-ig", ig_steps=32,
                            saliency_steps=1, progress=False)
    assert sum(result["resid"][0]) == pytest.approx(1.0, abs=0.02)
    assert "method='eap-ig', ig_steps=32" in result["code"]
    namespace = _run(result["code"], model)
    np.testing.assert_allclose(namespace["heads"].numpy(), result["heads"], rtol=1e-3, atol=1e-5)


def test_attribute_errors(model):
    with pytest.raises(ValueError, match=r"method='eap'; the attribution view offers \['atp', 'eap-ig'\]"):
        lens.attribute(model, PROMPT, SWAPPED, " Mary", " John", method="eap")
    with pytest.raises(ValueError, match="saliency_steps=0; expected a positive integer"):
        lens.attribute(model, PROMPT, SWAPPED, " Mary", " John", saliency_steps=0)


@pytest.mark.parametrize("view, what", [(lens.patch, "activation patching"), (lens.attribute, "attribution")])
def test_prompt_pair_errors(model, view, what):
    n = model.to_tokens(PROMPT).shape[1]
    m = model.to_tokens("The capital of France is").shape[1]
    with pytest.raises(ValueError, match=f"the clean prompt is {n} tokens and the corrupted prompt {m}; {what}"):
        view(model, PROMPT, "The capital of France is", " Mary", " John")
    with pytest.raises(ValueError, match="nothing to normalise"):
        view(model, PROMPT, PROMPT, " Mary", " John")
    with pytest.raises(TypeError, match="expected a non-empty string"):
        view(model, PROMPT, SWAPPED, None, " John")


# -- neurons and sample texts ----------------------------------------------------------
def test_neurons_view_and_code(model, tmp_path):
    data.write_heldout(str(tmp_path), [("a.txt", "Mary and John went to the store. " * 3), ("b.txt", "Paris.")])
    texts = lens.sample_texts(folder=str(tmp_path))
    assert texts == ["Mary and John went to the store. " * 3, "Paris."]
    result = lens.neurons(model, 1, 17, texts=texts, k=4, context=3)
    assert result["hook"] == "blocks.1.mlp.hook_post" and result["n_texts"] == 2 and len(result["examples"]) == 4
    # Independent: each text alone, hook_post of neuron 17, BOS skipped.
    values = []
    for index, text in enumerate(texts):
        _, cache = model.run_with_cache(text, names_filter="blocks.1.mlp.hook_post")
        values += [(v, index, p) for p, v in enumerate(cache["blocks.1.mlp.hook_post"].numpy()[0, :, 17]) if p]
    values.sort(key=lambda entry: (-entry[0], entry[1], entry[2]))
    assert [(e["text_index"], e["position"]) for e in result["examples"]] == [(i, p) for _, i, p in values[:4]]
    np.testing.assert_allclose([e["activation"] for e in result["examples"]], [v for v, _, _ in values[:4]],
                               rtol=1e-4)
    example = result["examples"][0]
    str_tokens = model.to_str_tokens(texts[example["text_index"]])
    assert example["token"] == str_tokens[example["position"]]
    assert example["left"] == str_tokens[max(0, example["position"] - 3):example["position"]]
    examples = _run(result["code"], model)["examples"]
    assert [(e["text_index"], e["position"], e["token"]) for e in examples] == [
        (e["text_index"], e["position"], e["token"]) for e in result["examples"]]
    assert len(_json(result)) > 0


def test_sample_texts_fall_back_to_builtin_sentences(model, tmp_path, monkeypatch):
    monkeypatch.setattr("neuroscope.demo.MODEL_DIR", str(tmp_path))
    assert lens.sample_texts() == lens.BUILTIN_TEXTS
    assert lens.sample_texts(model, folder=str(tmp_path / "missing")) == lens.BUILTIN_TEXTS
    result = lens.neurons(model, 0, 3, k=2)  # the default texts: the built-in ones here
    assert result["n_texts"] == len(lens.BUILTIN_TEXTS)
    assert "texts = sample_texts(model)" in result["code"]
    # Passing the sample explicitly (as the app does) still gives the short code.
    assert lens.neurons(model, 0, 3, lens.sample_texts(model), k=2)["code"] == result["code"]
    assert [e["position"] for e in _run(result["code"], model)["examples"]] == [
        e["position"] for e in result["examples"]]
    with pytest.raises(ns.LayerNotFoundError):
        lens.neurons(model, 5, 0)
    with pytest.raises(ValueError, match="neuron -1 requested"):
        lens.neurons(model, 0, -1)


# -- demo prompts ----------------------------------------------------------------------
def test_demo_prompts_from_files_and_generated(tmp_path, monkeypatch):
    data.write_heldout(str(tmp_path))
    from_files = lens.demo_prompts(count=5, folder=str(tmp_path))
    assert from_files["source"] == "files" and len(from_files["ioi"]) == 5 and len(from_files["facts"]) == 5
    stored = json.load(open(tmp_path / "ioi_heldout.json"))["prompts"][:5]
    assert [(p["clean"], p["corrupted"], p["answer"], p["wrong"]) for p in from_files["ioi"]] == [
        (s["prompt"], s["corrupted_prompt"], s["answer"], s["incorrect"]) for s in stored]
    assert {"capital", "language"} <= {
        relation for p in from_files["facts"] for relation in data.FACTS if p["clean"] in
        [phrasing.format(s=s) for phrasing in data.FACTS[relation][0] for s in data.FACTS[relation][1]]}
    for pair in from_files["facts"]:
        assert pair["answer"] != pair["wrong"] and pair["clean"] != pair["corrupted"]
    monkeypatch.setattr("neuroscope.demo.MODEL_DIR", str(tmp_path / "empty"))
    generated = lens.demo_prompts(count=5)
    assert generated["source"] == "generated"
    assert generated["ioi"] == from_files["ioi"] and generated["facts"] == from_files["facts"]
    assert _run(generated["code"], None)["prompts"]["ioi"] == generated["ioi"]


def test_demo_prompts_for_a_model_patch(model):
    prompts = lens.demo_prompts(model, count=3)
    assert prompts["ioi"] and prompts["facts"]
    for pair in prompts["ioi"] + prompts["facts"]:
        assert model.to_tokens(pair["clean"]).shape == model.to_tokens(pair["corrupted"]).shape
        first = [model.tokenizer.encode(pair[key], add_special_tokens=False)[0] for key in ("answer", "wrong")]
        assert first[0] != first[1]
    pair = prompts["facts"][0]
    result = lens.patch(model, pair["clean"], pair["corrupted"], pair["answer"], pair["wrong"], progress=False)
    assert np.shape(result["heads"]) == (2, 4)


def test_lens_runs_without_numpy():
    """The views use only the Tensor API: with numpy blocked, the module imports and the
    model-free helpers work (the tensor math itself needs a backend: the JS bridge in Pyodide)."""
    script = textwrap.dedent("""
        import sys
        sys.modules["numpy"] = None
        from neuroscope import lens
        assert lens.sample_texts()
        prompts = lens.demo_prompts(count=2)
        assert len(prompts["ioi"]) == 2 and len(prompts["facts"]) == 2
        print("ok")
    """)
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "py"))
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_the_induction_words_follow_a_replaced_tokenizer():
    # The vocabulary scan is kept per model and tokenizer: a model given another tokenizer
    # is scanned again, not served the words of the one it had.
    from neuroscope import TransformerModel
    from neuroscope.lens.examples import _round_trip_words

    class Silent:  # decodes every token to nothing: no round-trip words
        def decode(self, ids):
            return ""

        def encode(self, text, add_special_tokens=True):
            return []

    demo = TransformerModel.from_huggingface("demo")
    words, tokenizer = _round_trip_words(demo), demo.tokenizer
    assert len(words) >= 20
    demo.tokenizer = Silent()
    assert _round_trip_words(demo) == []
    demo.tokenizer = tokenizer
    assert _round_trip_words(demo) == words


def test_demo_prompts_offer_repeated_random_tokens_that_tokenize_back():
    from neuroscope import TransformerModel
    from neuroscope.lens.examples import repeated_tokens_pair
    demo = TransformerModel.from_huggingface("demo")
    pairs = lens.demo_prompts(demo, count=3)["induction"]
    assert len(pairs) == 3 and pairs[0] == repeated_tokens_pair(demo, seed=0)
    for pair in pairs:
        clean = demo.to_tokens(pair["clean"])[0].tolist()
        corrupted = demo.to_tokens(pair["corrupted"])[0].tolist()
        span = clean[1:21]
        assert len(clean) == len(corrupted) == 40 and clean[21:] == span[:-1] and len(set(span)) == 20
        assert corrupted[:21] == clean[:21] and not set(corrupted[21:]) & set(span)
        assert demo.tokenizer.encode(pair["answer"], add_special_tokens=False) == [span[-1]]
