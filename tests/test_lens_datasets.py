"""``neuroscope.lens.probes`` and ``lens.neurons(dataset=...)``: the probe and neuron views' Python
on the demo model's built-in datasets."""

import pytest

import neuroscope as ns
from neuroscope import lens


@pytest.fixture(scope="module")
def demo():
    return ns.TransformerModel.from_huggingface("demo")


def test_probe_view_result_and_its_code(demo):
    result = lens.probes(demo, "demo/ioi-order", "residual")
    assert result["layers"] == list(range(demo.cfg.n_layers)) and result["classes"] == ["0", "1"]
    assert (result["n_train"], result["n_test"]) == (150, 50)
    assert 0.0 <= min(result["test"]) and max(result["test"]) <= 1.0 and 0.4 <= result["chance"] <= 0.6
    assert result["best_layer"] in result["layers"]
    namespace = {"model": demo}
    exec(result["code"].rsplit("\n", 1)[0], namespace)  # the code shown reproduces the numbers
    sweep = namespace["sweep"]
    assert [round(a, 4) for a in sweep.test_accuracy] == [round(a, 4) for a in result["test"]]


def test_the_fact_relation_is_decodable_at_every_layer(demo):
    # The relation ("capital" / "language") is in the prompt's words; the order of the IOI
    # names (ABB vs BAB) is not linearly decodable at the last token in this demo model
    # (test accuracy 0.36-0.58 for 50 held-out prompts), so it is not asserted.
    result = lens.probes(demo, "demo/facts-relation", "residual")
    assert min(result["test"]) > result["chance"] + 0.15, result


def test_probe_view_refuses_what_it_does_not_offer(demo):
    with pytest.raises(ValueError, match="component 'pattern'; the probe view offers residual"):
        lens.probes(demo, "demo/ioi-order", "pattern")
    with pytest.raises(ns.DatasetError):
        lens.probes(demo, "/no/such/file.jsonl")


def test_neuron_view_over_a_whole_dataset(demo):
    result = lens.neurons(demo, 1, 9, k=5, dataset="demo/ioi")
    assert result["dataset"] == "demo/ioi" and result["n_texts"] == 200 and len(result["examples"]) == 5
    assert sum(result["histogram"]["counts"]) == result["n_tokens"] and len(result["logit_effect"]["top"]) == 8
    namespace = {"model": demo}
    exec(result["code"], namespace)  # the code shown gives the same numbers
    assert namespace["profile"]["n_tokens"] == result["n_tokens"]
    assert [round(e["activation"], 3) for e in namespace["profile"]["examples"]] == \
        [round(e["activation"], 3) for e in result["examples"]]
