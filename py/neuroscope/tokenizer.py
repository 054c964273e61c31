"""``Tokenizer``: Hugging Face ``tokenizer.json`` behind one small interface.

In CPython it wraps the ``tokenizers`` library, so ids equal those of
transformers' fast tokenizer for the same file. The browser supplies its own
implementation of the same interface (``encode``, ``decode``, ``id_to_token``,
``token_to_id``, ``vocab_size``).
"""

from .errors import InvalidTokenError, ModelFormatError


class Tokenizer:
    def __init__(self, backend, source="tokenizer.json"):
        self._tok = backend
        self.source = source

    @classmethod
    def from_file(cls, path):
        try:
            from tokenizers import Tokenizer as HFTokenizer
        except ImportError as error:
            raise ImportError("reading tokenizer.json in CPython needs the 'tokenizers' package "
                              "(pip install tokenizers)") from error
        try:
            return cls(HFTokenizer.from_file(str(path)), str(path))
        except Exception as error:  # tokenizers raises plain Exception subclasses
            raise ModelFormatError(f"{path}: not a valid tokenizer.json: {error}") from None

    @property
    def vocab_size(self):
        return self._tok.get_vocab_size(with_added_tokens=True)

    def encode(self, text, add_special_tokens=True):
        """Token ids for ``text``, as transformers' tokenizer gives them."""
        if not isinstance(text, str):
            raise TypeError(f"encode expects a str, got {type(text).__name__}")
        return self._tok.encode(text, add_special_tokens=add_special_tokens).ids

    def encode_batch(self, texts, add_special_tokens=True):
        return [e.ids for e in self._tok.encode_batch(list(texts), add_special_tokens=add_special_tokens)]

    def decode(self, ids, skip_special_tokens=False):
        ids = [int(i) for i in ids]
        bad = [i for i in ids if not 0 <= i < self.vocab_size]
        if bad:
            raise InvalidTokenError(f"token ids {bad[:5]} are outside the vocabulary 0-{self.vocab_size - 1}")
        return self._tok.decode(ids, skip_special_tokens=skip_special_tokens)

    def id_to_token(self, token_id):
        return self._tok.id_to_token(int(token_id))

    def token_to_id(self, token):
        return self._tok.token_to_id(token)

    def __repr__(self):
        return f"Tokenizer({self.source!r}, vocab_size={self.vocab_size})"
