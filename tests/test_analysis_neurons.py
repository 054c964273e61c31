"""Top-activating tokens of an MLP neuron, against each text run alone with run_with_cache."""

import numpy as np
import pytest

import neuroscope as ns
from neuroscope.analysis import neuron_activations, top_activating_tokens

CONFIG = dict(model_type="gpt2", vocab_size=40, n_positions=12, n_embd=16, n_layer=2, n_head=4,
              bos_token_id=0, eos_token_id=0, initializer_range=0.2)
TEXTS = [[0, 5, 7, 9, 11, 3], [0, 4, 4], [0, 8, 6, 2, 9, 9, 13, 1, 30], [0, 12], [0, 33, 21, 7, 7]]


@pytest.fixture(scope="module")
def model():
    return ns.TransformerModel.from_config(CONFIG, seed=5)


def _reference(model, layer, neuron, texts, exclude_bos=True):
    """Every (activation, text, position), each text run alone, largest first."""
    entries = []
    for index, text in enumerate(texts):
        _, cache = model.run_with_cache([text], names_filter=f"blocks.{layer}.mlp.hook_post")
        values = cache[f"blocks.{layer}.mlp.hook_post"].numpy()[0, :, neuron]
        entries += [(float(value), index, position) for position, value in enumerate(values)
                    if not (exclude_bos and position == 0 and text[0] == 0)]
    return sorted(entries, key=lambda entry: (-entry[0], entry[1], entry[2]))


@pytest.mark.parametrize("batch_size", [1, 2, 8])
def test_top_tokens_match_each_text_run_alone(model, batch_size):
    examples = top_activating_tokens(model, 1, 7, TEXTS, k=6, context=2, batch_size=batch_size)
    expected = _reference(model, 1, 7, TEXTS)[:6]
    assert [(e["text_index"], e["position"]) for e in examples] == [(i, p) for _, i, p in expected]
    np.testing.assert_allclose([e["activation"] for e in examples], [a for a, _, _ in expected], atol=1e-5)
    for example in examples:
        row, position = TEXTS[example["text_index"]], example["position"]
        assert example["token_id"] == row[position] and example["token"] == str(row[position])  # no tokenizer
        assert example["left"] == [str(i) for i in row[max(0, position - 2):position]]
        assert example["right"] == [str(i) for i in row[position + 1:position + 3]]


def test_bos_is_skipped_unless_asked(model):
    with_bos = top_activating_tokens(model, 0, 3, TEXTS, k=100, exclude_bos=False)
    without = top_activating_tokens(model, 0, 3, TEXTS, k=100)
    assert len(with_bos) == sum(len(t) for t in TEXTS) and len(without) == len(with_bos) - len(TEXTS)
    assert all(e["position"] > 0 for e in without)
    # Every text's BOS has the same activation: ties, so compare values and the set of cells.
    expected = _reference(model, 0, 3, TEXTS, exclude_bos=False)
    np.testing.assert_allclose([e["activation"] for e in with_bos], [a for a, _, _ in expected], atol=1e-5)
    assert {(e["text_index"], e["position"]) for e in with_bos} == {(i, p) for _, i, p in expected}


def test_neuron_activations_of_padded_rows_equal_rows_alone(model):
    values = neuron_activations(model, 0, 11, TEXTS[:3])
    for row, got in zip(TEXTS[:3], values):
        _, cache = model.run_with_cache([row], names_filter="blocks.0.mlp.hook_post")
        np.testing.assert_allclose(got[:len(row)], cache["blocks.0.mlp.hook_post"].numpy()[0, :, 11], atol=1e-5)
    assert model.hook_manager.hooks == []  # the early stop removed its hook


def test_long_texts_are_cut_to_the_context(model):
    long = list(range(1, 30))
    examples = top_activating_tokens(model, 1, 0, [long], k=50)
    assert len(examples) == CONFIG["n_positions"] and max(e["position"] for e in examples) == 11


def test_text_strings_use_the_tokenizer(model, monkeypatch):
    monkeypatch.setattr(model, "to_tokens", lambda text: ns.tensor([[0] + [1 + ord(c) % 30 for c in text]]))
    examples = top_activating_tokens(model, 1, 2, ["abc", "hello"], k=3)
    expected = _reference(model, 1, 2, [[0, 8, 9, 10], [0, 15, 12, 19, 19, 22]])[:3]
    assert [(e["text_index"], e["position"]) for e in examples] == [(i, p) for _, i, p in expected]


def test_bad_arguments(model):
    with pytest.raises(ns.LayerNotFoundError, match="layer 2 requested, model has layers 0-1"):
        top_activating_tokens(model, 2, 0, TEXTS)
    with pytest.raises(ValueError, match=r"neuron 64 requested; expected an integer in 0-63 \(layer 1's MLP has 64 neurons\)"):
        top_activating_tokens(model, 1, 64, TEXTS)
    with pytest.raises(ValueError, match="k=0; expected an integer >= 1"):
        top_activating_tokens(model, 1, 0, TEXTS, k=0)
    with pytest.raises(ValueError, match="texts is empty"):
        top_activating_tokens(model, 1, 0, [])
    with pytest.raises(TypeError, match=r"texts\[1\] is a float"):
        top_activating_tokens(model, 1, 0, [[0, 1], 2.5])
