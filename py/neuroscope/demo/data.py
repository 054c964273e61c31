"""Generated data that teaches the demo model three known mechanisms, with held-out splits.

Pure Python (standard library only), so the browser can rebuild the same prompts:

* **Induction** (Olsson et al., "In-context Learning and Induction Heads", 2022):
  spans of random token ids, each repeated once, mixed into training rows.
* **Indirect-object identification** (Wang et al., "Interpretability in the Wild: a
  Circuit for Indirect Object Identification in GPT-2 small", 2022): their BABA / ABBA
  templates x name pairs ("When Mary and John went to the store, John gave a drink to"
  -> " Mary"). A (template, unordered name pair) combination is held out when the
  template's group equals the pair's group (``IOI_GROUPS`` groups of each), so every
  template and every pair is trained on, but never a held-out combination.
* **Fact recall** from a fixed table (the seed's "The capital of France is" -> " Paris"):
  each fact is trained in all but one phrasing of its relation and asked, held out, in
  the remaining one (the held-out phrasing rotates over the facts, so each phrasing is
  itself trained with other facts).

Everything is drawn from ``random.Random`` seeded by the caller; the splits use the
fixed ``SPLIT_SEED`` so they never depend on the training seed. ``natural_text_documents``
reads the natural English text (reStructuredText sources of the Python documentation,
PSF licence) and splits off a held-out set by a stable hash of each file's path.
"""

import json
import os
import random
import re
import zlib

SPLIT_SEED = 1234
IOI_GROUPS = 5
TEXT_HELDOUT_EVERY = 20  # about 1 file in 20 is held out for validation loss

NAMES = ["Mary", "John", "Tom", "James", "Anna", "David", "Sarah", "Michael", "Emma", "Robert",
         "Alice", "Paul", "Laura", "Mark", "Kate", "Peter", "Lisa", "Daniel", "Julia", "George",
         "Helen", "Frank", "Rachel", "Steven", "Claire", "Henry", "Grace", "Jack", "Lucy", "Simon",
         "Nora", "Adam", "Ellen", "Victor", "Diana", "Oscar", "Hannah", "Martin", "Sophie", "Leo"]
PLACES = ["store", "garden", "restaurant", "school", "hospital", "office", "station", "park",
          "library", "market", "beach", "house"]
OBJECTS = ["drink", "snack", "book", "ring", "bone", "basketball", "computer", "necklace",
           "letter", "flower", "kiss", "bag"]

# {A} and {B} are the first mentions (in that order), {S} the repeated subject; the
# prompt ends just before the indirect object. After Wang et al. (2022), appendix.
IOI_TEMPLATES = [
    "When {A} and {B} went to the {place}, {S} gave a {object} to",
    "Then, {A} and {B} went to the {place}. {S} gave a {object} to",
    "When {A} and {B} got a {object} at the {place}, {S} decided to give it to",
    "While {A} and {B} were working at the {place}, {S} gave a {object} to",
    "While {A} and {B} were commuting to the {place}, {S} gave a {object} to",
    "After the lunch, {A} and {B} went to the {place}. {S} gave a {object} to",
    "Afterwards, {A} and {B} went to the {place}. {S} gave a {object} to",
    "Then, {A} and {B} had a long argument. Afterwards {S} said to",
    "After {A} and {B} went to the {place}, {S} gave a {object} to",
    "Friends {A} and {B} found a {object} at the {place}. {S} gave it to",
    "The {place} {A} and {B} went to had a {object}. {S} gave it to",
    "When {A} and {B} arrived at the {place}, {S} handed a {object} to",
    "Yesterday {A} and {B} visited the {place}, and {S} passed a {object} to",
    "In the morning, {A} and {B} walked to the {place}. {S} brought a {object} to",
    "Later, {A} and {B} met at the {place}, where {S} showed a {object} to",
]

# relation -> (phrasings ending just before the answer, {subject: answer}).
FACTS = {
    "capital": ([
        "The capital of {s} is",
        "{s}'s capital is",
        "The capital city of {s} is",
        "Q: What is the capital of {s}? A:",
        "The government of {s} sits in",
        "Which city is the capital of {s}? It is",
    ], {
        "France": "Paris", "Germany": "Berlin", "Italy": "Rome", "Spain": "Madrid",
        "Portugal": "Lisbon", "Japan": "Tokyo", "China": "Beijing", "Russia": "Moscow",
        "Egypt": "Cairo", "Greece": "Athens", "Austria": "Vienna", "Hungary": "Budapest",
        "Poland": "Warsaw", "Sweden": "Stockholm", "Norway": "Oslo", "Finland": "Helsinki",
        "Denmark": "Copenhagen", "Ireland": "Dublin", "England": "London", "Belgium": "Brussels",
        "Netherlands": "Amsterdam", "Turkey": "Ankara", "Iran": "Tehran", "Iraq": "Baghdad",
        "Thailand": "Bangkok", "Vietnam": "Hanoi", "Indonesia": "Jakarta", "Philippines": "Manila",
        "Korea": "Seoul", "Kenya": "Nairobi", "Peru": "Lima", "Chile": "Santiago",
        "Cuba": "Havana", "Canada": "Ottawa", "Australia": "Canberra", "Romania": "Bucharest",
        "Bulgaria": "Sofia", "Serbia": "Belgrade", "Syria": "Damascus", "Lebanon": "Beirut",
        "Afghanistan": "Kabul", "Nepal": "Kathmandu", "Iceland": "Reykjavik", "Croatia": "Zagreb",
        "Georgia": "Tbilisi", "Qatar": "Doha", "Jordan": "Amman", "Ecuador": "Quito",
    }),
    "language": ([
        "The official language of {s} is",
        "{s}'s official language is",
        "People in {s} speak",
        "Q: What language is spoken in {s}? A:",
        "The main language of {s} is",
        "In {s}, most people speak",
    ], {
        "France": "French", "Germany": "German", "Italy": "Italian", "Spain": "Spanish",
        "Portugal": "Portuguese", "Japan": "Japanese", "China": "Chinese", "Russia": "Russian",
        "Egypt": "Arabic", "Greece": "Greek", "Poland": "Polish", "Sweden": "Swedish",
        "Norway": "Norwegian", "Finland": "Finnish", "Denmark": "Danish", "Netherlands": "Dutch",
        "Turkey": "Turkish", "Iran": "Persian", "Thailand": "Thai", "Vietnam": "Vietnamese",
        "Korea": "Korean", "Hungary": "Hungarian", "Brazil": "Portuguese", "Mexico": "Spanish",
    }),
}


# -- induction -------------------------------------------------------------------
def induction_row(rng, vocab_size, length, low=1, min_span=8, max_span=64):
    """Token ids ``[length]`` of random spans, each followed by its repeat, and a loss mask.

    The mask is 0 on each first occurrence (random tokens cannot be predicted) and 1
    on the repeats, which only an induction mechanism predicts. ``low`` skips the
    special tokens at the bottom of the vocabulary.
    """
    ids, mask = [], []
    while len(ids) < length:
        span = [rng.randrange(low, vocab_size) for _ in range(rng.randint(min_span, max_span))]
        ids += span + span
        mask += [0] * len(span) + [1] * len(span)
    return ids[:length], mask[:length]


def copy_row(rng, vocab_size, length, low=1, min_span=4):
    """Token ids ``[length]`` of random tokens in which one span is copied later, and a loss mask.

    A span of ``min_span`` to ``length // 2 - 2`` tokens starts at a random place and is
    copied after a random gap, so the copy distance varies from row to row and only an
    induction mechanism (attend to the token after the earlier occurrence of the current
    token) predicts the copy. The mask is 1 on the copy's tokens after its first, the ones
    an induction head can predict, and 0 elsewhere.
    """
    ids = [rng.randrange(low, vocab_size) for _ in range(length)]
    span = rng.randint(min_span, max(min_span, length // 2 - 2))
    source = rng.randrange(0, length - 2 * span + 1)
    target = rng.randrange(source + span, length - span + 1)
    ids[target:target + span] = ids[source:source + span]
    mask = [0] * length
    for position in range(target + 1, target + span):
        mask[position] = 1
    return ids, mask


# -- indirect-object identification ---------------------------------------------
def name_pairs():
    """Every unordered pair of ``NAMES``, as (first, second) in list order."""
    return [(a, b) for i, a in enumerate(NAMES) for b in NAMES[i + 1:]]


def _pair_groups():
    pairs = name_pairs()
    random.Random(SPLIT_SEED).shuffle(pairs)
    return {pair: index % IOI_GROUPS for index, pair in enumerate(pairs)}


_PAIR_GROUP = _pair_groups()


def _pair_key(x, y):
    return (x, y) if NAMES.index(x) < NAMES.index(y) else (y, x)


def ioi_is_heldout(template_index, x, y):
    """Whether (template, unordered pair {x, y}) belongs to the held-out split."""
    return template_index % IOI_GROUPS == _PAIR_GROUP[_pair_key(x, y)]


def ioi_prompt(template_index, io, s, order, place, obj, repeated=None):
    """The prompt text; ``order`` "ABB" puts the indirect object first, "BAB" the subject.

    ``repeated`` replaces the second mention of the subject (the ABC corruption).
    """
    a, b = (io, s) if order == "ABB" else (s, io)
    return IOI_TEMPLATES[template_index].format(A=a, B=b, S=repeated or s, place=place, object=obj)


def _ioi_draw(rng, heldout):
    while True:
        template = rng.randrange(len(IOI_TEMPLATES))
        io, s = rng.sample(NAMES, 2)
        if ioi_is_heldout(template, io, s) == heldout:
            return template, io, s, rng.choice(("ABB", "BAB")), rng.choice(PLACES), rng.choice(OBJECTS)


def ioi_train_sentence(rng):
    """One training sentence from a combination outside the held-out split."""
    template, io, s, order, place, obj = _ioi_draw(rng, heldout=False)
    return f"{ioi_prompt(template, io, s, order, place, obj)} {io}."


def ioi_heldout(count=200, seed=SPLIT_SEED):
    """Held-out IOI prompts with their answers and an ABC corruption of each.

    The corruption replaces the second mention of the subject with a third name C
    ("..., Dave gave a drink to"), so no name is repeated and the prompt no longer
    says which of A and B is the indirect object.
    """
    rng = random.Random(seed)
    prompts = []
    for _ in range(count):
        template, io, s, order, place, obj = _ioi_draw(rng, heldout=True)
        c = rng.choice([name for name in NAMES if name not in (io, s)])
        prompts.append({
            "prompt": ioi_prompt(template, io, s, order, place, obj),
            "corrupted_prompt": ioi_prompt(template, io, s, order, place, obj, repeated=c),
            "answer": " " + io, "incorrect": " " + s,
            "io": io, "s": s, "c": c, "template": template, "order": order})
    return prompts


# -- facts ---------------------------------------------------------------------
def fact_list():
    """``[(relation, subject, answer), ...]`` in table order."""
    return [(relation, subject, answer) for relation, (_, table) in FACTS.items()
            for subject, answer in table.items()]


def _heldout_phrasings():
    """(relation, subject) -> the one phrasing index that fact is never trained in."""
    held = {}
    for relation, (phrasings, table) in FACTS.items():
        subjects = list(table)
        random.Random(f"{SPLIT_SEED}-{relation}").shuffle(subjects)
        for index, subject in enumerate(subjects):
            held[relation, subject] = index % len(phrasings)
    return held


HELDOUT_PHRASING = _heldout_phrasings()


def fact_prompt(relation, subject, phrasing):
    return FACTS[relation][0][phrasing].format(s=subject)


def fact_train_sentence(rng, facts=None):
    """One fact in one of its trained phrasings: ``"The capital of France is Paris."``."""
    relation, subject, answer = rng.choice(facts or _FACT_LIST)
    phrasings = FACTS[relation][0]
    phrasing = rng.choice([i for i in range(len(phrasings)) if i != HELDOUT_PHRASING[relation, subject]])
    return f"{fact_prompt(relation, subject, phrasing)} {answer}."


_FACT_LIST = fact_list()


def facts_heldout():
    """Every fact asked in its held-out phrasing, with a wrong answer of the same relation."""
    rng = random.Random(SPLIT_SEED)
    out = []
    for relation, subject, answer in _FACT_LIST:
        others = sorted({a for a in FACTS[relation][1].values() if a != answer})
        phrasing = HELDOUT_PHRASING[relation, subject]
        out.append({"prompt": fact_prompt(relation, subject, phrasing), "answer": " " + answer,
                    "incorrect": " " + rng.choice(others), "relation": relation, "subject": subject,
                    "phrasing": phrasing})
    return out


# -- natural text ----------------------------------------------------------------
PYTHON_DOCS = "/usr/share/doc/python3.11/html/_sources"
_ROLE = re.compile(r":[\w:+.-]+:`~?!?([^`<]*?)\s*(?:<[^>]*>)?`")
_LINK = re.compile(r"`([^`<]+?)\s*(?:<[^>]*>)?`_+")
_LITERAL = re.compile(r"``([^`]+)``")
_UNDERLINE = re.compile(r"^\s*([=\-~^*#\"'`+.:_])\1{2,}\s*$")


def clean_rst(text):
    """reStructuredText to plain prose: drop directives and heading rules, unwrap roles."""
    lines = [line for line in text.splitlines()
             if not line.lstrip().startswith(".. ") and not _UNDERLINE.match(line)]
    text = "\n".join(lines)
    text = _LITERAL.sub(r"\1", _LINK.sub(r"\1", _ROLE.sub(r"\1", text)))
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def is_text_heldout(relative_path):
    return zlib.crc32(relative_path.encode()) % TEXT_HELDOUT_EVERY == 0


def natural_text_documents(folder=PYTHON_DOCS):
    """``(train, heldout)``: lists of ``(relative path, cleaned text)``, in sorted path order."""
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"{folder} does not exist; install the Python documentation sources "
                                "with `apt-get install -y python3.11-doc` or pass --text-dir")
    train, heldout = [], []
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(files):
            if not name.endswith(".txt"):
                continue
            path = os.path.join(root, name)
            relative = os.path.relpath(path, folder).replace(os.sep, "/")
            with open(path, encoding="utf-8") as handle:
                text = clean_rst(handle.read())
            if text:
                (heldout if is_text_heldout(relative) else train).append((relative, text))
    return train, heldout


# -- held-out files ----------------------------------------------------------------
def write_heldout(folder, text_heldout=()):
    """Write ioi_heldout.json, facts_heldout.json and text_heldout.json into ``folder``."""
    files = {
        "ioi_heldout.json": {
            "description": "IOI prompts whose (template, name pair) combination was never trained on "
                           "(Wang et al. 2022); corrupted_prompt replaces the repeated subject with a "
                           "third name (ABC corruption). Metric: logit(answer) - logit(incorrect).",
            "prompts": ioi_heldout()},
        "facts_heldout.json": {
            "description": "Each fact of the table asked in the one phrasing it was never trained in; "
                           "top-1 accuracy on the first token of answer.",
            "facts": facts_heldout()},
        "text_heldout.json": {
            "description": "Held-out natural text (validation loss): files of the Python 3.11 "
                           "documentation sources (PSF licence) never trained on.",
            "documents": [path for path, _ in text_heldout],
            "samples": [text[:400] for _, text in list(text_heldout)[:8]]},
    }
    os.makedirs(folder, exist_ok=True)
    for name, content in files.items():
        with open(os.path.join(folder, name), "w", encoding="utf-8") as handle:
            json.dump(content, handle, indent=1, ensure_ascii=False)
            handle.write("\n")
    return sorted(files)
