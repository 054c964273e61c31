"""The browser's tokenizer (worker/tokenizer.js, @huggingface/tokenizers) gives the same ids
as CPython's ``tokenizers`` on the same tokenizer.json."""

import pytest

from .pages import open_page, python, python_error, site  # noqa: F401 (fixture)

CORPUS = [
    "When Mary and John went to the store, John gave a drink to Mary.",
    "Café, naïve, über — déjà vu!",
    "東京 and 北京 are cities. 日本語のテキスト",
    "🙂🚀 emoji too 👩‍👩‍👧 family",
    " leading space",
    "    four leading spaces",
    "tabs\tand\t\ttabs",
    "new\nlines\n\n\nand   runs   of    spaces   ",
    "\u00a0non-breaking\u2003em space",
    "<|endoftext|>special<|endoftext|> tokens",
    "def forward(self, x):\n    return x @ self.W + self.b",
    "",
    " ",
]


@pytest.fixture(scope="module")
def tokenizer_file(tmp_path_factory, site):  # noqa: F811
    tokenizers = pytest.importorskip("tokenizers", reason="CPython tokenizers is the reference")
    import reference_models
    path = tmp_path_factory.mktemp("tokenizer") / "tokenizer.json"
    reference_models.train_tokenizer(str(path))
    return tokenizers.Tokenizer.from_file(str(path)), site.add(str(path), "data/tokenizer/tokenizer.json")


@pytest.fixture(scope="module")
def page(browser, site):  # noqa: F811
    page, _ = open_page(browser, site, "none")  # the tokenizer needs no kernels
    yield page
    page.context.close()


def _load(page, relative):
    return python(page, "from neuroscope.model.remote import fetch_bytes, page_url\n"
                        "from urllib.parse import urljoin\n"
                        "from neuroscope import Tokenizer\n"
                        "tok = Tokenizer.from_str(fetch_bytes(urljoin(page_url(), url)).decode(), url)\n"
                        "type(tok._tok).__name__", url=f"../{relative}")


def test_ids_match_cpython_tokenizers(page, tokenizer_file):
    reference, relative = tokenizer_file
    assert _load(page, relative) == "_JsTokenizer"  # no CPython tokenizers in Pyodide
    got = python(page, "[tok.encode(s) for s in corpus], tok.encode_batch(corpus), "
                       "[tok.encode(s, add_special_tokens=False) for s in corpus], tok.vocab_size",
                 corpus=CORPUS)
    want = [reference.encode(s).ids for s in CORPUS]
    for text, ids, expected in zip(CORPUS, got[0], want):
        assert ids == expected, f"{text!r}: {ids} != {expected}"
    assert got[1] == want
    assert got[2] == [reference.encode(s, add_special_tokens=False).ids for s in CORPUS]
    assert got[3] == reference.get_vocab_size(with_added_tokens=True)


def test_decode_and_vocabulary_lookups_match(page, tokenizer_file):
    reference, relative = tokenizer_file
    _load(page, relative)
    ids = [reference.encode(s).ids for s in CORPUS]
    got = python(page, "[tok.decode(i) for i in ids], [tok.decode(i, skip_special_tokens=True) for i in ids], "
                       "[tok.id_to_token(i) for i in range(tok.vocab_size)], "
                       "[tok.token_to_id(t) for t in tokens]",
                 ids=ids, tokens=["Ġthe", "<|endoftext|>", "not-a-token"])
    assert got[0] == [reference.decode(i, skip_special_tokens=False) for i in ids]
    assert got[1] == [reference.decode(i, skip_special_tokens=True) for i in ids]
    assert got[2] == [reference.id_to_token(i) for i in range(reference.get_vocab_size())]
    assert got[3] == [reference.token_to_id(t) for t in ["Ġthe", "<|endoftext|>", "not-a-token"]]


def test_bad_tokenizer_json_is_a_model_format_error(page, tokenizer_file):
    _load(page, tokenizer_file[1])
    error = python_error(page, "from neuroscope import Tokenizer\nTokenizer.from_str('{\"model\": 3', 'x.json')")
    assert error["pyType"] == "ModelFormatError" and "x.json" in error["message"]
    error = python_error(page, "Tokenizer.from_str('{\"model\": {\"type\": \"Nope\"}}', 'y.json')")
    assert error["pyType"] == "ModelFormatError" and "y.json" in error["message"]
    bad_id = python_error(page, "tok.decode([10**6])")
    assert bad_id["pyType"] == "InvalidTokenError"
