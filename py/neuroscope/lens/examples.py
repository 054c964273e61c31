"""Prompt pairs for the patching view, from the demo model's held-out splits.

* IOI (Wang et al., "Interpretability in the Wild", 2022): the held-out prompts of
  ``ioi_heldout.json`` with their ABC corruption (the repeated subject replaced by a
  third name); answer = the indirect object, wrong = the subject.
* Facts: each held-out fact of ``facts_heldout.json`` ("The capital of France is"),
  corrupted by asking the same phrasing about another subject of the same relation
  (ROME-style subject corruption, Meng et al. 2022); wrong = that subject's answer,
  so the logit difference flips sign between the runs. The other subject is the
  next one after this fact, in table order (wrapping), with a different answer and,
  when a model is given, a prompt of the same token length and answers whose first
  tokens differ.

* Induction: repeated random tokens (Olsson et al., "In-context Learning and Induction
  Heads", 2022): a span of random single-token words, then the span again up to its last
  word, which is the answer (only an induction head can predict it); corrupted: the same
  first span followed by other random words, so nothing repeats; wrong: a random word.
  Needs the model's tokenizer: the words are tokens that decode to a space and letters and
  encode back to themselves, so the text gives exactly those tokens.

When the files are missing, the same prompts are rebuilt with ``demo.data``
(``write_heldout`` writes exactly what ``ioi_heldout`` / ``facts_heldout`` return).
"""

import os
import random
import weakref

from ..demo import data

_SOURCES = {"ioi": ("ioi_heldout.json", "prompts"), "facts": ("facts_heldout.json", "facts")}


def demo_prompts(model=None, count=20, folder=None):
    """Up to ``count`` IOI pairs and ``count`` fact pairs for ``lens.patch``.

    ``folder`` holds the held-out files (default: the demo model's folder). With a
    ``model``, pairs whose prompts differ in token length (or whose answer and
    wrong share a first token) are skipped. Returns::

        {"ioi": [{"clean", "corrupted", "answer", "wrong", "label"}],
         "facts": [... the same fields ...],
         "induction": [... the same fields ...] (empty without a model),
         "source": "files" | "generated", "code": str}
    """
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise ValueError(f"count={count!r}; expected an integer >= 0")
    ioi, ioi_source = _load("ioi", folder)
    facts, facts_source = _load("facts", folder)
    usable = _checker(model)
    ioi_pairs = []
    for item in ioi:
        if len(ioi_pairs) == count:
            break
        pair = {"clean": item["prompt"], "corrupted": item["corrupted_prompt"], "answer": item["answer"],
                "wrong": item["incorrect"],
                "label": f"IOI: {item['answer'].strip()} vs {item['incorrect'].strip()} ({item['prompt']})"}
        if usable(pair):
            ioi_pairs.append(pair)
    induction = []
    if model is not None and model.tokenizer is not None and len(_round_trip_words(model)) > 40:
        induction = [repeated_tokens_pair(model, seed=seed) for seed in range(min(count, 3))]
    return {"ioi": ioi_pairs, "facts": _fact_pairs(facts, count, usable), "induction": induction,
            "source": "files" if ioi_source == facts_source == "files" else "generated",
            "code": _code(model, count, folder)}


def fact_pairs(model=None, count=20, folder=None):
    """``demo_prompts(model, count, folder)["facts"]`` alone, as new dicts on every call.

    With a model, the pairs are kept for its next call (the Lens asks on every circuit request).
    They are a function of the held-out facts, ``count``, the tokenizer and the model's BOS rule
    (``to_tokens`` lengths), never of the weights (nothing runs the model), so an edit of the
    weights leaves them valid; the facts (re-read, a small file), ``count``, the BOS rule and the
    tokenizer's identity are compared on every call and the pairs rebuilt when one differs."""
    facts = _load("facts", folder)[0]
    if model is None or model.tokenizer is None:
        return _fact_pairs(facts, count, _checker(model))
    inputs = (facts, count, model.cfg.bos_token_id, model.cfg.family)
    kept = _FACT_PAIRS.get(model)
    if kept is None or kept[0] is not model.tokenizer or kept[1] != inputs:
        kept = (model.tokenizer, inputs, _fact_pairs(facts, count, _checker(model)))
        _FACT_PAIRS[model] = kept
    return [dict(pair) for pair in kept[2]]


_FACT_PAIRS = weakref.WeakKeyDictionary()  # model -> (tokenizer, other inputs, its fact pairs)


def repeated_tokens_pair(model, length=20, seed=0):
    """A patching pair of repeated random tokens (see the module docstring): ``length``
    random words, then the first ``length - 1`` of them again."""
    words = _round_trip_words(model)
    if len(words) < 2 * length + 1:
        raise ValueError(f"the tokenizer has {len(words)} single-token words; {2 * length + 1} are needed")
    rng = random.Random(seed)
    chosen = rng.sample(words, 2 * length + 1)
    span, other, wrong = chosen[:length], chosen[length:2 * length], chosen[-1]
    return {"clean": "".join(span + span[:-1]), "corrupted": "".join(span + other[:-1]),
            "answer": span[-1], "wrong": wrong,
            "label": f"Induction: {length} random tokens, repeated (seed {seed})"}


def _round_trip_words(model):
    """Tokens that decode to " " + letters and encode back to themselves alone, in id order."""
    cached = _WORDS.get(model)
    if cached is not None and cached[0] is model.tokenizer:
        return cached[1]
    tokenizer, words = model.tokenizer, []
    for token in range(model.cfg.d_vocab):
        text = tokenizer.decode([token])
        if len(text) > 3 and text[0] == " " and text[1:].isascii() and text[1:].isalpha() \
                and tokenizer.encode(text, add_special_tokens=False) == [token]:
            words.append(text)
    _WORDS[model] = (tokenizer, words)
    return words


# model -> (its tokenizer, that tokenizer's round-trip words: a scan of the vocabulary)
_WORDS = weakref.WeakKeyDictionary()


def _code(model, count, folder):
    args = (["model"] if model is not None else []) + ([f"count={count}"] if count != 20 else []) + (
        [f"folder={folder!r}"] if folder is not None else [])
    return f"from neuroscope.lens import demo_prompts\n\nprompts = demo_prompts({', '.join(args)})\n"


def _load(kind, folder):
    from ..datasets import load_heldout
    from ..demo import MODEL_DIR
    name, key = _SOURCES[kind]
    folder = folder or MODEL_DIR
    if os.path.exists(os.path.join(folder, name)):
        try:
            return load_heldout(kind, folder)[key], "files"
        except (OSError, ValueError, KeyError):
            pass
    return (data.ioi_heldout() if kind == "ioi" else data.facts_heldout()), "generated"


def _checker(model):
    """``pair -> bool``: same token length, answers that differ in their first token."""
    if model is None or model.tokenizer is None:
        return lambda pair: True

    def usable(pair):
        first = [model.tokenizer.encode(pair[key], add_special_tokens=False)[:1]
                 for key in ("answer", "wrong")]
        if first[0] == first[1]:
            return False
        return model.to_tokens(pair["clean"]).shape[1] == model.to_tokens(pair["corrupted"]).shape[1]

    return usable


def _fact_pairs(facts, count, usable):
    by_relation = {}
    for item in facts:
        by_relation.setdefault(item["relation"], []).append(item)
    pairs = {relation: [] for relation in by_relation}
    for relation, items in by_relation.items():
        for index, item in enumerate(items):
            if len(pairs[relation]) == count:
                break
            pair = _fact_pair(item, items[index + 1:] + items[:index], usable)
            if pair is not None:
                pairs[relation].append(pair)
    # Alternate the relations (capital, language, capital, ...) so both appear in the first few.
    mixed = [pair for row in _zip_longest(list(pairs.values())) for pair in row]
    return mixed[:count]


def _fact_pair(item, others, usable):
    phrasings, table = data.FACTS.get(item["relation"], (None, None))
    if phrasings is None:
        return None
    for other in others:
        other_answer = table.get(other["subject"])
        if other_answer is None or " " + other_answer == item["answer"]:
            continue
        pair = {"clean": item["prompt"],
                "corrupted": phrasings[item["phrasing"]].format(s=other["subject"]),
                "answer": item["answer"], "wrong": " " + other_answer,
                "label": f"Fact: {item['subject']} -> {item['answer'].strip()} vs "
                         f"{other['subject']} -> {other_answer} ({item['prompt']})"}
        if usable(pair):
            return pair
    return None


def _zip_longest(rows):
    width = max((len(row) for row in rows), default=0)
    return [[row[i] for row in rows if i < len(row)] for i in range(width)]


__all__ = ["demo_prompts", "fact_pairs", "repeated_tokens_pair"]
