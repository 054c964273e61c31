"""``Tokenizer``: Hugging Face ``tokenizer.json`` behind one small interface.

Two implementations read the same file and give the same ids:

* CPython: the ``tokenizers`` library, so ids equal those of transformers' fast
  tokenizer for the same file.
* The browser: ``@huggingface/tokenizers`` in the worker (worker/tokenizer.js),
  reached through the ``neuroscope_js`` module the worker registers in Pyodide.
  It is chosen when ``tokenizers`` is not importable but that module is.

Both sit behind the same internal interface (``vocab_size``, ``encode``,
``encode_batch``, ``decode``, ``id_to_token``, ``token_to_id``, ``fingerprint``; the
fingerprints of one file differ between the two, whose caches never meet).
"""

import hashlib
import json

from .errors import InvalidTokenError, ModelFormatError


class Tokenizer:
    """``backend`` is a ``tokenizers.Tokenizer`` or one of the implementations below."""

    def __init__(self, backend, source="tokenizer.json"):
        wrapped = isinstance(backend, (_RustTokenizer, _JsTokenizer))
        self._tok = backend if wrapped else _RustTokenizer(backend)
        self.source = source

    @classmethod
    def from_file(cls, path):
        path = str(path)
        if _rust_library() is not None:
            return cls(_RustTokenizer.from_file(path), path)
        with open(path, encoding="utf-8") as handle:
            return cls.from_str(handle.read(), path)

    @classmethod
    def from_str(cls, text, source="tokenizer.json"):
        """A tokenizer from the text of a tokenizer.json (e.g. a fetched file)."""
        if _rust_library() is not None:
            return cls(_RustTokenizer.from_str(text, source), source)
        host = _js_host()
        if host is None:
            raise ImportError("reading tokenizer.json needs the 'tokenizers' package in CPython "
                              "(pip install tokenizers), or NeuroScope's browser worker in Pyodide")
        return cls(_JsTokenizer.from_str(host, text, source), source)

    @property
    def vocab_size(self):
        return self._tok.vocab_size()

    def fingerprint(self):
        """SHA-256 (hex) of the tokenizer as it encodes now (its tokenizer.json, with any
        settings changed since): what results keyed on tokenization (``activations_at``'s
        storage) include, so another tokenizer never reads them."""
        return self._tok.fingerprint()

    def encode(self, text, add_special_tokens=True):
        """Token ids for ``text``, as transformers' tokenizer gives them."""
        if not isinstance(text, str):
            raise TypeError(f"encode expects a str, got {type(text).__name__}")
        return self._tok.encode(text, add_special_tokens)

    def encode_batch(self, texts, add_special_tokens=True):
        texts = list(texts)
        bad = [type(t).__name__ for t in texts if not isinstance(t, str)]
        if bad:
            raise TypeError(f"encode_batch expects strs, got {', '.join(bad[:3])}")
        return self._tok.encode_batch(texts, add_special_tokens)

    def decode(self, ids, skip_special_tokens=False):
        ids = [int(i) for i in ids]
        bad = [i for i in ids if not 0 <= i < self.vocab_size]
        if bad:
            raise InvalidTokenError(f"token ids {bad[:5]} are outside the vocabulary 0-{self.vocab_size - 1}")
        return self._tok.decode(ids, skip_special_tokens)

    def id_to_token(self, token_id):
        return self._tok.id_to_token(int(token_id))

    def token_to_id(self, token):
        return self._tok.token_to_id(token)

    def __repr__(self):
        return f"Tokenizer({self.source!r}, vocab_size={self.vocab_size})"


def _rust_library():
    try:
        import tokenizers
    except ImportError:
        return None
    return tokenizers


def _js_host():
    try:
        import neuroscope_js  # registered by worker/worker.js
    except ImportError:
        return None
    return neuroscope_js


class _RustTokenizer:
    """CPython: the ``tokenizers`` library."""

    def __init__(self, tok):
        self._tok = tok

    @classmethod
    def from_file(cls, path):
        try:
            return cls(_rust_library().Tokenizer.from_file(path))
        except Exception as error:  # tokenizers raises plain Exception subclasses
            raise ModelFormatError(f"{path}: not a valid tokenizer.json: {error}") from None

    @classmethod
    def from_str(cls, text, source):
        try:
            return cls(_rust_library().Tokenizer.from_str(text))
        except Exception as error:
            raise ModelFormatError(f"{source}: not a valid tokenizer.json: {error}") from None

    def vocab_size(self):
        return self._tok.get_vocab_size(with_added_tokens=True)

    def fingerprint(self):
        # Serialised each time: a tokenizers.Tokenizer can be changed in place (added tokens,
        # truncation, padding), and its JSON says how it encodes now.
        return hashlib.sha256(self._tok.to_str().encode()).hexdigest()

    def encode(self, text, add_special_tokens):
        return self._tok.encode(text, add_special_tokens=add_special_tokens).ids

    def encode_batch(self, texts, add_special_tokens):
        return [e.ids for e in self._tok.encode_batch(texts, add_special_tokens=add_special_tokens)]

    def decode(self, ids, skip_special_tokens):
        return self._tok.decode(ids, skip_special_tokens=skip_special_tokens)

    def id_to_token(self, token_id):
        return self._tok.id_to_token(token_id)

    def token_to_id(self, token):
        return self._tok.token_to_id(token)


class _JsTokenizer:
    """The browser: worker/tokenizer.js; ids cross as JSON text (one call per encode)."""

    def __init__(self, js_tokenizer, text):
        self._tok = js_tokenizer
        self._vocab_size = int(js_tokenizer.vocabSize)
        self._fingerprint = hashlib.sha256(text.encode()).hexdigest()  # it cannot change

    @classmethod
    def from_str(cls, host, text, source):
        try:
            json.loads(text)
        except ValueError as error:
            raise ModelFormatError(f"{source}: not a valid tokenizer.json: {error}") from None
        try:
            return cls(host.createTokenizer(text), text)
        except Exception as error:  # a JsException from the JS library
            raise ModelFormatError(f"{source}: not a valid tokenizer.json: {error}") from None

    def vocab_size(self):
        return self._vocab_size

    def fingerprint(self):
        return self._fingerprint

    def encode(self, text, add_special_tokens):
        return json.loads(self._tok.encode(text, bool(add_special_tokens)))

    def encode_batch(self, texts, add_special_tokens):
        return json.loads(self._tok.encodeBatch(json.dumps(texts), bool(add_special_tokens)))

    def decode(self, ids, skip_special_tokens):
        return self._tok.decode(json.dumps(ids), bool(skip_special_tokens))

    def id_to_token(self, token_id):
        return self._tok.idToToken(token_id)

    def token_to_id(self, token):
        return self._tok.tokenToId(token)
