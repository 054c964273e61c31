"""``TransformerModel``: a decoder-only transformer with hook points everywhere.

Composition, not flags: an embedding, optional learned positions or rotary
tables, a list of blocks (sequential or parallel), a final norm and an
unembedding. Weights arrive in the canonical layout of ``families.py``.
References: TransformerLens' ``HookedTransformer`` (names, conventions),
Hugging Face transformers (numerics), nanoGPT (structure).
"""

from ..args import as_layer, is_integer
from ..backends import get_backend
from ..cache import ActivationCache
from ..errors import InvalidTokenError, LayerNotFoundError, ShapeError
from ..hooks import CachingHook, GradientHook, HookManager
from ..names import component_name
from ..tensor import Tensor, arange, as_tensor, matmul
from .attention import causal_mask
from .blocks import Block, ParallelBlock, make_norm
from .components import Embed, HookRegistry, PosEmbed, Rotary, linear
from .weight_map import WeightMap


class ModelOutput:
    """What ``forward`` returns: ``logits [b, p, v]`` and the key/value cache."""

    def __init__(self, logits, past_key_values=None):
        self.logits = logits
        self.past_key_values = past_key_values

    def __repr__(self):
        return f"ModelOutput(logits={self.logits!r})"


class TransformerModel:
    def __init__(self, config, weights, tokenizer=None, backend=None, source=None):
        self.cfg = self.config = config
        self.weights = WeightMap(weights)
        self.tokenizer = tokenizer
        self.backend = backend or get_backend()
        self.source = source
        self._build()

    def _build(self):
        cfg, w = self.cfg, self.weights
        # The blocks read the weights from here on: a rebuild (weight processing) is the one
        # way an edit reaches the computation, and it makes content_hash() hash them again,
        # so nothing keyed on the hash (activations_at's storage, notebooks, distributed
        # runs, papers) takes the edited model for the one before.
        self._content_hash = None
        # Weights made by ops at load (GPT-2's Q, K, V split out of one matrix, folded norms)
        # are weights too: the browser's cpu backend compiles them into its graphs.
        self.backend.mark_weights([t.data for t in w.values() if t.backend is self.backend])
        hooks = HookRegistry()
        self.embed = Embed(w["embed.W_E"], hooks)
        self.pos_embed = PosEmbed(w["pos_embed.W_pos"], hooks) if cfg.positional == "learned" else None
        rotary = (Rotary(cfg.rotary_dim, cfg.rope_theta, cfg.n_ctx, self.backend)
                  if cfg.positional == "rotary" else None)
        block_class = ParallelBlock if cfg.parallel_attn_mlp else Block
        self.blocks = [block_class(cfg, w, layer, hooks, rotary) for layer in range(cfg.n_layers)]
        self.ln_final = make_norm(cfg, w, "ln_final", "ln_final.", hooks)
        self.hook_points = hooks
        self.hook_manager = HookManager(hooks, cfg.n_layers, context=self)

    # -- TransformerLens-style parameter access -------------------------------
    @property
    def W_E(self):
        return self.weights["embed.W_E"]

    @property
    def W_U(self):
        """``[d_model, d_vocab]``; a transposed view of W_E when embeddings are tied."""
        return self.weights["unembed.W_U"] if "unembed.W_U" in self.weights else self.W_E.T

    @property
    def b_U(self):
        return self.weights.get("unembed.b_U")

    @property
    def n_layers(self):
        return self.cfg.n_layers

    # -- tokens ----------------------------------------------------------------
    def _need_tokenizer(self):
        if self.tokenizer is None:
            raise RuntimeError("this model has no tokenizer (no tokenizer.json was found); pass token ids")
        return self.tokenizer

    def tokenize(self, text, prepend_bos=None, padding_side="right"):
        """``(tokens [b, p], attention_mask [b, p])`` for a string or a list of strings."""
        texts = [text] if isinstance(text, str) else list(text)
        rows = [self.token_ids(t, prepend_bos) for t in texts]
        return pad_rows(rows, self.pad_id(), padding_side, self.backend)

    def pad_token_rows(self, rows, padding_side="right"):
        """``(tokens [b, p], attention_mask [b, p])`` for lists of token ids of any lengths."""
        return pad_rows(rows, self.pad_id(), padding_side, self.backend)

    def prepends_bos(self):
        """Whether ``to_tokens`` prepends the BOS token by default (GPT-2-style models)."""
        return self.cfg.bos_token_id is not None and self.cfg.family == "gpt2"

    def token_ids(self, text, prepend_bos=None):
        """One text's token ids as a list, as ``to_tokens`` makes them (BOS included)."""
        ids = self._need_tokenizer().encode(text)
        bos = self.prepends_bos() if prepend_bos is None else prepend_bos
        if bos and (not ids or ids[0] != self.cfg.bos_token_id):
            ids = [self.cfg.bos_token_id] + ids
        return ids

    def pad_id(self):
        """The token id padding uses (pad, else EOS, else BOS, else 0)."""
        for candidate in (self.cfg.pad_token_id, self.cfg.eos_token_id, self.cfg.bos_token_id, 0):
            if candidate is not None and 0 <= candidate < self.cfg.d_vocab:
                return candidate
        return 0

    def to_tokens(self, text, prepend_bos=None, padding_side="right"):
        """Token ids ``[batch, pos]`` (GPT-2 style models get BOS prepended, as in TransformerLens).

        Texts of different lengths are padded without a mask: on the right the pads come after
        every real token, so a causal model's values at real positions are unchanged; on the
        left every real token would attend to them, so that is refused (``tokenize`` returns
        the attention mask to pass with them)."""
        tokens, mask = self.tokenize(text, prepend_bos, padding_side)
        if padding_side == "left" and not _all_ones(mask):
            raise ValueError("to_tokens(padding_side='left') would pad texts of different lengths without "
                             "the attention mask the model then needs (every real token would attend to "
                             "the pads): use tokens, mask = model.tokenize(texts, padding_side='left') and "
                             "model(tokens, attention_mask=mask)")
        return tokens

    def to_single_token(self, string):
        """The id of ``string`` when it is exactly one token (no BOS), as in TransformerLens."""
        if not isinstance(string, str):
            raise TypeError(f"to_single_token takes a string, got {string!r}")
        ids = self._need_tokenizer().encode(string)
        if len(ids) != 1:
            pieces = [self.tokenizer.decode([i]) for i in ids]
            raise InvalidTokenError(f"{string!r} is {len(ids)} tokens {pieces}, not one")
        return ids[0]

    def to_string(self, tokens):
        tokens = _host_tokens(tokens)
        if tokens and isinstance(tokens[0], list):
            return [self._need_tokenizer().decode(row) for row in tokens]
        return self._need_tokenizer().decode(tokens)

    def to_str_tokens(self, text_or_tokens, prepend_bos=None):
        if isinstance(text_or_tokens, str):
            text_or_tokens = self.to_tokens(text_or_tokens, prepend_bos)
        ids = _host_tokens(text_or_tokens)
        if ids and isinstance(ids[0], list):
            if len(ids) != 1:
                raise ValueError("to_str_tokens takes one sequence, got a batch of "
                                 f"{len(ids)}; call it per row")
            ids = ids[0]
        return [self._need_tokenizer().decode([i]) for i in ids]

    def _as_tokens(self, tokens, attention_mask):
        if isinstance(tokens, str) or (isinstance(tokens, (list, tuple)) and tokens
                                       and isinstance(tokens[0], str)):
            tokens, mask = self.tokenize(tokens)
            if attention_mask is None and not _all_ones(mask):
                attention_mask = mask
        host_ids = _flat_ids(tokens) if isinstance(tokens, (list, tuple)) else None
        kind = str(getattr(tokens, "dtype", "int"))
        if "int" not in kind:
            raise InvalidTokenError(f"token ids must be integers; got an array of dtype {kind}")
        tokens = as_tensor(tokens, dtype="int64", backend=self.backend)
        if tokens.ndim == 1:
            tokens = tokens.unsqueeze(0)
        if tokens.ndim != 2 or tokens.size == 0:
            raise InvalidTokenError(f"expected a non-empty [batch, pos] array of token ids, got shape "
                                    f"{list(tokens.shape)}")
        # Lists are checked on the host; tensors cost two small reductions. On a device (two
        # reads, each a round trip) the handle checked last is not checked again: handles
        # there are immutable, and run_with_cache checks its tokens before passing them on.
        if not self.backend.reads_synchronously and getattr(self, "_checked_tokens", None) is tokens.data:
            return tokens, attention_mask
        low, high = ((min(host_ids), max(host_ids)) if host_ids is not None
                     else (tokens.min().item(), tokens.max().item()))
        if low < 0 or high >= self.cfg.d_vocab:
            bad = low if low < 0 else high
            raise InvalidTokenError(f"token id {bad} is outside the vocabulary: expected ids in "
                                    f"0-{self.cfg.d_vocab - 1}")
        self._checked_tokens = tokens.data  # held, so no new handle can be this object
        return tokens, attention_mask

    # -- forward ---------------------------------------------------------------
    def forward(self, tokens, attention_mask=None, past_key_values=None, use_cache=False):
        """Run the model; ``attention_mask [b, k]`` (1 = real token) enables padding on either side."""
        tokens, attention_mask = self._as_tokens(tokens, attention_mask)
        batch, n_new = tokens.shape
        n_past = past_key_values[0][0].shape[1] if past_key_values else 0
        if self.cfg.positional == "learned" and n_past + n_new > self.cfg.n_ctx:
            raise InvalidTokenError(f"sequence of {n_past + n_new} tokens exceeds the model's context "
                                    f"of {self.cfg.n_ctx} positions")
        mask, positions = self._mask_and_positions(attention_mask, batch, n_past, n_new)
        resid = self.embed.forward(tokens)  # [b, p, d]
        if self.pos_embed is not None:
            resid = resid + self.pos_embed.forward(positions)
        logits, presents = self._blocks_forward(resid, 0, mask, positions, past_key_values)
        return ModelOutput(logits, presents if use_cache else None)

    def _blocks_forward(self, resid, start, mask, positions, past_key_values=None):
        presents = []
        for layer, block in enumerate(self.blocks[start:], start):
            past = past_key_values[layer] if past_key_values else None
            resid, present = block.forward(resid, mask, positions, past)
            presents.append(present)
        return self.unembed(self.ln_final.forward(resid)), presents

    def run_from_layer(self, resid, start_at_layer, attention_mask=None):
        """Logits from ``resid`` ``[b, p, d]`` taken as ``blocks.{start_at_layer}.hook_resid_pre``
        (TransformerLens' ``start_at_layer``): the blocks from that layer on, then the final norm
        and the unembedding, with the hooks in place (those of earlier layers do not run).
        ``attention_mask [b, p]`` as in ``forward``; no key/value cache."""
        n_layers = self.cfg.n_layers
        if isinstance(start_at_layer, bool) or not isinstance(start_at_layer, int) or \
                not 0 <= start_at_layer <= n_layers:
            raise LayerNotFoundError(start_at_layer, n_layers, expected=f"0-{n_layers} (start_at_layer)")
        resid = as_tensor(resid, backend=self.backend)
        if resid.ndim != 3 or resid.shape[2] != self.cfg.d_model:
            raise ShapeError(f"resid has shape {list(resid.shape)}; expected [batch, pos, "
                             f"{self.cfg.d_model}]")
        batch, n_new = resid.shape[0], resid.shape[1]
        if self.cfg.positional == "learned" and n_new > self.cfg.n_ctx:
            raise InvalidTokenError(f"sequence of {n_new} positions exceeds the model's context of "
                                    f"{self.cfg.n_ctx} positions")
        mask, positions = self._mask_and_positions(attention_mask, batch, 0, n_new)
        return self._blocks_forward(resid, start_at_layer, mask, positions)[0]

    def unembed(self, resid):
        """``resid [b, p, d]`` -> logits ``[b, p, v]``."""
        if "unembed.W_U" in self.weights:
            return linear(resid, self.weights["unembed.W_U"], self.b_U)
        lead = resid.shape[:-1]
        logits = matmul(resid.reshape(-1, resid.shape[-1]), self.W_E, transpose_b=True)
        if self.b_U is not None:
            logits = logits + self.b_U
        return logits.reshape(lead + (self.cfg.d_vocab,))

    def __call__(self, tokens, **kwargs):
        return self.forward(tokens, **kwargs).logits

    def _mask_and_positions(self, attention_mask, batch, n_past, n_new):
        n_keys = n_past + n_new
        window = self.cfg.sliding_window
        if attention_mask is None and not (window and window < n_keys):
            positions = arange(n_past, n_keys, backend=self.backend).reshape(1, n_new)
            return None, positions.broadcast_to(batch, n_new)
        if attention_mask is None:
            keys_valid = as_tensor([[True] * n_keys], backend=self.backend)
        else:
            keys_valid = as_tensor(attention_mask, backend=self.backend).astype("bool")
            if keys_valid.ndim == 1:
                keys_valid = keys_valid.unsqueeze(0)
            if keys_valid.shape != (batch, n_keys):
                raise ValueError(f"attention_mask has shape {list(keys_valid.shape)}; expected "
                                 f"[{batch}, {n_keys}] (batch, past + new tokens)")
        mask = causal_mask(n_new, n_keys, keys_valid) * keys_valid.unsqueeze(1)  # [b, p, k]
        if window and window < n_keys:
            queries = arange(n_past, n_keys, backend=self.backend).reshape(1, n_new, 1)
            keys = arange(0, n_keys, backend=self.backend).reshape(1, 1, n_keys)
            mask = mask * ((queries - keys) < window)
        # Left padding: a token's position counts only the real tokens before it.
        positions = (keys_valid.astype("int64").cumsum(-1) - 1).maximum(0)
        return mask, positions[:, n_past:]

    # -- hooks and caches --------------------------------------------------------
    def hook_names(self):
        """Every hook point, in forward order, with its activation shape."""
        return {name: list(shape) for name, shape in self.hook_points.shapes.items()}

    def hooks(self, hooks):
        """Context manager: ``with model.hooks([(name, fn), ActivationHook(...)]):``."""
        return self.hook_manager.hooks_context(hooks)

    def run_with_hooks(self, tokens, fwd_hooks=(), bwd_hooks=(), **kwargs):
        """Logits with ``fwd_hooks`` (``(name, fn(activation, hook))`` pairs or Hook objects) in
        place. ``bwd_hooks`` (``(name, fn(grad, hook))``, as in TransformerLens) make the logits
        tracked: each fn runs on its point's gradient when ``backward`` is later called on a
        metric of them (the hooks stay with that graph, so no ``reset_hooks_end=False`` is needed)."""
        hooks = list(fwd_hooks) + [GradientHook(name, fn) for name, fn in bwd_hooks]
        with self.hooks(hooks):
            return self(tokens, **kwargs)

    def run_with_cache(self, tokens, names_filter=None, budget=None, **kwargs):
        """``(logits, cache)``; ``names_filter`` is a name, a list of names or a predicate;
        ``budget`` (bytes) bounds the cache's device memory, spilling to storage (spill.py)."""
        if isinstance(names_filter, str):
            names_filter = [names_filter]
        # Token ids (not text) are kept on the cache so a Patch spec can re-create it.
        tokens, kwargs["attention_mask"] = self._as_tokens(tokens, kwargs.get("attention_mask"))
        hook = CachingHook(names_filter, ActivationCache(budget=budget))
        with self.hooks([hook]):
            logits = self(tokens, **kwargs)
        hook.cache.tokens, hook.cache.attention_mask = tokens, kwargs["attention_mask"]
        return logits, hook.cache

    def run_with_grad_cache(self, tokens, metric, names_filter=None, **kwargs):
        """``(value, cache, grads)``: the metric, the activations and d metric / d activation at
        every hook point ``names_filter`` keeps; ``metric(logits)`` returns a one-element Tensor.
        One forward and one backward pass (see gradients.py)."""
        from .gradients import run_with_grad_cache
        return run_with_grad_cache(self, tokens, metric, names_filter, **kwargs)

    def activations_at(self, component, layer, dataset, position="last", batch_size=None, cache=True,
                       progress=None, storage=None):
        """One hook point's activations over ``dataset`` (a ``Dataset`` or a list of texts):
        ``[n_examples, d]`` at each example's last token (``position="last"``) or averaged
        over its tokens (``"mean"``), or ``([n_tokens, d], index [n_tokens, 2])`` for every
        token (``"all"``). Batched, padded correctly, cached by content (see activations.py)."""
        from .activations import activations_at
        return activations_at(self, component, layer, dataset, position, batch_size, cache, progress, storage)

    def content_hash(self):
        """SHA-256 (hex) of the configuration and every weight's bytes; computed once per set
        of weights (weight processing such as ``fold_ln`` makes it hash them again)."""
        if getattr(self, "_content_hash", None) is None:
            import dataclasses
            import hashlib
            import json

            from ..spill import tensor_record
            config = json.dumps(dataclasses.asdict(self.cfg), sort_keys=True, default=str)
            digest = hashlib.sha256(config.encode())
            for name in sorted(self.weights):
                dtype, shape, data = tensor_record(self.weights[name])
                digest.update(f"{name}:{dtype}:{list(shape)};".encode())
                digest.update(bytes(data))
            self._content_hash = digest.hexdigest()
        return self._content_hash

    def run_with_caching(self, tokens, layers=None, components=("residual", "attention", "mlp"), **kwargs):
        """An ``ActivationCache`` of the given components at the given layers (all layers by default)."""
        layers = range(self.cfg.n_layers) if layers is None else layers
        layers = [as_layer(layer, self.cfg.n_layers) for layer in layers]
        names = [component_name(layer, c) for layer in layers for c in components]
        return self.run_with_cache(tokens, names_filter=names, **kwargs)[1]

    def generate(self, prompt, max_tokens=20, temperature=0.0, top_k=None, seed=None, **kwargs):
        """Continue ``prompt`` (text -> text, token ids -> token ids) with a key/value cache."""
        from .generate import generate
        return generate(self, prompt, max_tokens, temperature, top_k, seed, **kwargs)

    # -- opt-in weight processing (see processing.py); each returns the model ----
    def fold_ln(self, center_weights=True):
        from . import processing
        return processing.fold_ln(self, center_weights)

    def center_writing_weights(self):
        from . import processing
        return processing.center_writing_weights(self)

    def center_unembed(self):
        from . import processing
        return processing.center_unembed(self)

    def fold_value_biases(self):
        from . import processing
        return processing.fold_value_biases(self)

    def process_weights(self, fold_ln=True, center_writing_weights=True, center_unembed=True,
                        fold_value_biases=True):
        from . import processing
        return processing.process_weights(self, fold_ln, center_writing_weights, center_unembed,
                                          fold_value_biases)

    # -- construction ------------------------------------------------------------
    @classmethod
    def from_huggingface(cls, name_or_path, backend=None, **kwargs):
        from .loading import load_huggingface
        return load_huggingface(cls, name_or_path, backend=backend, **kwargs)

    @classmethod
    def from_config(cls, config, seed=0, tokenizer=None, backend=None):
        from .loading import random_model
        return random_model(cls, config, seed, tokenizer, backend)

    def inspect(self):
        """Config, backend and registered hooks (``neuroscope.inspect``)."""
        from ..display_hooks import inspect  # display imports the model: see display_hooks

        return inspect(self)

    def __repr__(self):
        c = self.cfg
        return (f"TransformerModel({c.model_type}: {c.n_layers} layers, d_model={c.d_model}, "
                f"{c.n_heads} heads, vocab {c.d_vocab})")


def pad_rows(rows, pad_id, padding_side, backend):
    if padding_side not in ("right", "left"):
        raise ValueError(f"padding_side={padding_side!r}; expected 'right' or 'left'")
    width = max(len(r) for r in rows)
    if width == 0:
        raise InvalidTokenError("empty input: the text produced no tokens")
    tokens, mask = [], []
    for row in rows:
        fill = width - len(row)
        if padding_side == "right":
            tokens.append(row + [pad_id] * fill)
            mask.append([1] * len(row) + [0] * fill)
        else:
            tokens.append([pad_id] * fill + row)
            mask.append([0] * fill + [1] * len(row))
    return (as_tensor(tokens, dtype="int64", backend=backend),
            as_tensor(mask, dtype="int64", backend=backend))


def _host_tokens(tokens):
    if isinstance(tokens, Tensor):
        return tokens.tolist()
    if hasattr(tokens, "tolist"):
        return tokens.tolist()
    return list(tokens)


def _flat_ids(tokens):
    rows = tokens if tokens and isinstance(tokens[0], (list, tuple)) else [tokens]
    ids = [t for row in rows for t in row]
    for t in ids:
        if not is_integer(t):
            raise InvalidTokenError(f"token id {t!r} (a {type(t).__name__}) is not an integer id")
    return [int(t) for t in ids] or [0]


def _all_ones(mask):
    return mask.min().item() == 1
