"""The built-in demo model shows what it was taught, measured by NeuroScope's analyses.

Issue 4, item 6: the model in py/neuroscope/demo/model loads offline as
``TransformerModel.from_huggingface("demo")`` and, on its held-out splits, has an
induction head (Olsson et al. 2022), solves indirect-object identification with a
few heads carrying it (Wang et al. 2022), and recalls facts asked in phrasings they
were never trained in. Also unit tests of the data generators (``demo/data.py``): the
held-out splits are disjoint from the training data. The measured numbers are printed
and recorded as junit properties.
"""

import json
import os
import random
import re

import pytest

from neuroscope import TransformerModel
from neuroscope.demo import MODEL_DIR, data
from neuroscope.demo.evaluate import (
    fact_recall,
    induction,
    induction_circuit,
    ioi_head_patching,
    ioi_logit_diff,
    load_heldout,
)


@pytest.fixture(scope="module")
def model():
    return TransformerModel.from_huggingface("demo")


@pytest.fixture(scope="module")
def ioi_patching(model):
    return ioi_head_patching(model, load_heldout("ioi")["prompts"])


def report(record_property, name, value):
    record_property(name, value)
    print(f"demo model: {name} = {value}")


def test_demo_loads_offline_in_hf_layout(model, record_property):
    files = {name: os.path.getsize(os.path.join(MODEL_DIR, name))
             for name in ("config.json", "model.safetensors", "tokenizer.json")}
    assert sum(files.values()) <= 16.5 * 2**20, files
    assert model.cfg.family == "gpt2" and model.cfg.d_vocab == model.tokenizer.vocab_size
    assert model.to_str_tokens("The capital of France is")[0] == "<|endoftext|>"
    report(record_property, "files_bytes", sum(files.values()))


@pytest.mark.parametrize("bos", [True, False])
@pytest.mark.parametrize("length", [20, 30, 40])
def test_demo_has_an_induction_head(model, record_property, length, bos):
    result = induction(model, length=length, bos=bos)
    report(record_property, f"induction_top_heads_{length}_{'bos' if bos else 'no_bos'}", result["top_heads"])
    assert result["best_score"] >= 0.4, result


def test_the_induction_head_composes_with_previous_token_heads(model, record_property):
    result = induction_circuit(model)
    report(record_property, "induction_circuit", result)
    layer, _ = result["induction_head"]
    # Heads of earlier layers attend to the previous token, and without them the induction head is lost.
    assert result["previous_token_heads"] and all(row[0] < layer for row in result["previous_token_heads"])
    assert result["score_with_previous_token_heads_ablated"] <= 0.5 * result["induction_score"], result


def test_demo_ioi_logit_difference_on_heldout_prompts(model, record_property):
    result = ioi_logit_diff(model, load_heldout("ioi")["prompts"])
    report(record_property, "ioi_logit_diff", result)
    assert result["count"] >= 100
    assert result["mean"] >= 2.0, result


def test_demo_ioi_is_carried_by_few_heads(ioi_patching, record_property):
    summary = {key: ioi_patching[key] for key in ("clean_logit_diff", "corrupted_logit_diff", "ranked_heads",
                                                  "joint_recovery", "heads_needed", "head_budget")}
    report(record_property, "ioi_head_patching", summary)
    assert ioi_patching["head_budget"] == ioi_patching["n_heads_total"] // 10
    assert ioi_patching["clean_logit_diff"] - ioi_patching["corrupted_logit_diff"] >= 1.0, summary
    # The top 10% of heads by single-head recovery, patched together, recover at least half.
    assert ioi_patching["joint_recovery"][-1] >= 0.5, summary


def test_demo_recalls_facts_in_heldout_phrasings(model, record_property):
    result = fact_recall(model, load_heldout("facts")["facts"])
    report(record_property, "fact_recall", {"accuracy": result["accuracy"], "misses": result["misses"]})
    assert result["count"] == len(data.fact_list())
    assert result["accuracy"] >= 0.8, result


def test_demo_training_record(record_property):
    with open(os.path.join(MODEL_DIR, "training.json"), encoding="utf-8") as handle:
        record = json.load(handle)
    report(record_property, "validation_loss", record["validation_loss"])
    report(record_property, "train_minutes", round(record["train_seconds"] / 60, 1))
    assert 0 < record["validation_loss"] < 8.3  # below log(vocab): it learned the text
    assert record["train_seconds"] <= 60 * 60


# -- the data generators --------------------------------------------------------------
def _template_pattern(index):
    text = re.escape(data.IOI_TEMPLATES[index])
    for field in ("A", "B", "S", "place", "object"):
        text = text.replace(re.escape("{" + field + "}"), f"(?P<{field}>\\w+)", 1)
    return re.compile(text + r" (?P<answer>\w+)\.")


def test_ioi_heldout_combinations_never_trained():
    rng = random.Random(7)
    patterns = [_template_pattern(i) for i in range(len(data.IOI_TEMPLATES))]
    trained, names, templates = set(), set(), set()
    for _ in range(20_000):
        sentence = data.ioi_train_sentence(rng)
        matches = [(i, m) for i, p in enumerate(patterns) if (m := p.fullmatch(sentence))]
        assert matches, sentence
        for index, match in matches:
            pair = frozenset((match["A"], match["B"]))
            assert match["S"] in pair and match["answer"] in pair and match["S"] != match["answer"]
            trained.add((index, pair))
            names |= pair
            templates.add(index)
    assert names == set(data.NAMES) and templates == set(range(len(data.IOI_TEMPLATES)))
    heldout = data.ioi_heldout()
    for item in heldout:
        pair = frozenset((item["io"], item["s"]))
        assert (item["template"], pair) not in trained, item
        assert data.ioi_is_heldout(item["template"], item["io"], item["s"])
        assert item["c"] not in pair and item["prompt"].count(item["s"]) == 2
        assert item["corrupted_prompt"].count(item["s"]) == 1 and item["c"] in item["corrupted_prompt"]
    # Each held-out template and each held-out pair is trained with other partners.
    assert {item["template"] for item in heldout} <= templates
    assert all(any(p == frozenset((i["io"], i["s"])) for _, p in trained) for i in heldout[:50])


def test_fact_heldout_phrasings_never_trained():
    rng = random.Random(7)
    trained = {data.fact_train_sentence(rng) for _ in range(20_000)}
    phrasings_trained = {}
    for relation, (phrasings, table) in data.FACTS.items():
        for subject in table:
            for i in range(len(phrasings)):
                if any(s.startswith(data.fact_prompt(relation, subject, i) + " ") for s in trained):
                    phrasings_trained.setdefault((relation, subject), set()).add(i)
    for item in data.facts_heldout():
        key = (item["relation"], item["subject"])
        assert item["phrasing"] not in phrasings_trained[key], item
        assert not any(s.startswith(item["prompt"] + " ") for s in trained), item
        # ...but the fact is trained in every other phrasing of its relation.
        assert len(phrasings_trained[key]) == len(data.FACTS[item["relation"]][0]) - 1
        assert item["answer"] != item["incorrect"]


def test_shipped_heldout_files_match_the_generators():
    assert load_heldout("ioi")["prompts"] == data.ioi_heldout()
    assert load_heldout("facts")["facts"] == data.facts_heldout()
    text = load_heldout("text")
    assert text["documents"] and all(data.is_text_heldout(path) for path in text["documents"])


def test_induction_rows_repeat_each_span():
    ids, mask = data.induction_row(random.Random(0), 4096, 255, low=1)
    assert len(ids) == len(mask) == 255 and min(ids) >= 1 and max(ids) < 4096
    start = 0
    while start < 255:  # spans of length n followed by their copy, mask 0 then 1
        n = mask[start:].index(1) if 1 in mask[start:] else 255 - start
        assert ids[start:start + n][:255 - start - n] == ids[start + n:start + 2 * n]
        assert all(m == 1 for m in mask[start + n:start + 2 * n])
        start += 2 * n
