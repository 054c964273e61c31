"""The logit lens as a table: layer x position -> top-k tokens and probabilities.

Each entry of the accumulated residual stream (``lens.accumulated_resid``) is
read through the model's own final norm, with statistics recomputed for that
entry, and unembedding (``W_U``, ``b_U``), as in nostalgebraist's "interpreting
GPT: the logit lens" (2020) and TransformerLens'
``tools/analysis/logit_lens.py`` (``logit_lens(..., top_k=k, return_type="probs")``).
The last row ("final_post") reproduces the model's own output.

Shapes: c stack entries (layers), p positions, d d_model, v vocabulary, k top-k.
"""

from .common import Slice, mask_rows
from .lens import accumulated_resid, single_token


class LogitLensTable:
    """Top-k predictions of one prompt at every layer (rows) and position (columns).

    ``top_ids[i][j]`` and ``top_probs[i][j]`` are the k most likely next tokens
    (largest first) when the stream after ``layers[i]`` at ``positions[j]`` is
    read as the model's output; ``top_tokens`` decodes them when the model has
    a tokenizer. With a ``target``, ``target_probs`` and ``target_ranks`` (0 is the
    top token) follow that token through the layers.
    """

    def __init__(self, layers, positions, input_tokens, top_ids, top_probs, top_tokens=None,
                 input_str_tokens=None, target=None, target_probs=None, target_ranks=None):
        self.layers, self.positions = layers, positions
        self.input_tokens, self.input_str_tokens = input_tokens, input_str_tokens
        self.top_ids, self.top_probs, self.top_tokens = top_ids, top_probs, top_tokens
        self.target, self.target_probs, self.target_ranks = target, target_probs, target_ranks

    @property
    def k(self):
        return len(self.top_ids[0][0]) if self.top_ids and self.top_ids[0] else 0

    def top(self, layer, position):
        """``[(token, probability), ...]`` at a layer label (or row index) and an input position."""
        row = self.layers.index(layer) if isinstance(layer, str) else layer
        n_tokens = len(self.input_tokens)
        if not -n_tokens <= position < n_tokens or position % n_tokens not in self.positions:
            raise IndexError(f"position {position} is not in this table: its positions are "
                             f"{self.positions} of {n_tokens} tokens")
        column = self.positions.index(position % n_tokens)
        names = self.top_tokens[row][column] if self.top_tokens else self.top_ids[row][column]
        return list(zip(names, self.top_probs[row][column]))

    def to_dict(self):
        """Plain lists, strings and numbers: JSON for the app and share links."""
        table = {"layers": list(self.layers), "positions": list(self.positions),
                 "input_tokens": list(self.input_tokens), "top_ids": self.top_ids,
                 "top_probs": self.top_probs}
        if self.input_str_tokens is not None:
            table["input_str_tokens"] = list(self.input_str_tokens)
        if self.top_tokens is not None:
            table["top_tokens"] = self.top_tokens
        if self.target is not None:
            table.update(target=self.target, target_probs=self.target_probs, target_ranks=self.target_ranks)
        return table

    def _repr_html_(self):
        from ..display_hooks import html_of  # display imports this module: see display_hooks

        return html_of(self)

    def inspect(self):
        """Fields, shapes and views of this object (``neuroscope.inspect``)."""
        from ..display_hooks import inspect

        return inspect(self)

    def __repr__(self):
        return (f"LogitLensTable({len(self.layers)} layers x {len(self.positions)} positions, "
                f"top {self.k})")


def logit_lens(model, cache, k=5, batch_index=0, positions=None, incl_mid=False, target=None):
    """A ``LogitLensTable`` of prompt ``batch_index`` in ``cache``.

    ``positions`` selects columns (``Slice`` semantics: None for all, an int,
    a list, a tuple) among the prompt's own tokens: in a padded batch the
    padding is not a position, so -1 is the prompt's last token.
    ``incl_mid`` adds a row after each attention layer;
    ``target`` (a token id or one-token string) adds its probability and rank.
    """
    stack, labels = accumulated_resid(model, cache, incl_mid=incl_mid, return_labels=True)  # [c, b, p, d]
    if not -stack.shape[1] <= batch_index < stack.shape[1]:
        raise IndexError(f"batch_index {batch_index} requested, the cache holds {stack.shape[1]} prompts")
    real = list(range(stack.shape[2]))  # the prompt's tokens' positions in the batch
    keep = mask_rows(getattr(cache, "attention_mask", None), stack.shape[1:3])[batch_index]
    real = [position for position in real if keep[position]]
    n_positions = len(real)
    columns = Slice(positions if not isinstance(positions, int) else [positions]).indices(n_positions)
    if not columns:
        raise ValueError(f"positions={positions!r} selects no position of {n_positions}")
    resid = stack[:, batch_index][:, [real[column] for column in columns]]  # [c, p, d]
    normalised = model.ln_final.forward(resid)  # statistics recomputed per entry and position
    logits = model.unembed(normalised)  # [c, p, v]
    probs = logits.softmax(-1)
    k = min(k, probs.shape[-1])
    top_probs, top_ids = probs.topk(k)  # [c, p, k]
    top_ids = top_ids.tolist()
    table = dict(top_ids=top_ids, top_probs=top_probs.tolist())
    tokens = cache.tokens[batch_index].tolist() if getattr(cache, "tokens", None) is not None else None
    tokens = [tokens[position] for position in real] if tokens is not None else None
    table["input_tokens"] = tokens if tokens is not None else [None] * n_positions
    if model.tokenizer is not None:
        decode = model.tokenizer.decode
        table["top_tokens"] = [[[decode([i]) for i in cell] for cell in row] for row in top_ids]
        if tokens is not None:
            table["input_str_tokens"] = [decode([i]) for i in tokens]
    if target is not None:
        target_id = single_token(model, target) if isinstance(target, str) else int(target)
        if not 0 <= target_id < probs.shape[-1]:
            raise ValueError(f"target={target!r} is outside the vocabulary 0-{probs.shape[-1] - 1}")
        target_logit = logits[:, :, target_id:target_id + 1]  # [c, p, 1]
        table.update(target=target_id, target_probs=probs[:, :, target_id].tolist(),
                     target_ranks=(logits > target_logit).astype("int64").sum(-1).tolist())
    return LogitLensTable(labels, columns, **table)


__all__ = ["LogitLensTable", "logit_lens"]
