"""Neuron analysis: the tokens of a dataset on which one MLP neuron fires most.

``top_activating_tokens`` runs texts through the model, reads one neuron of
``blocks.{layer}.mlp.hook_post`` (the MLP's activation after the nonlinearity,
TransformerLens' "neuron" activation) at every token, and keeps the ``k``
largest with their surrounding tokens: the dataset examples of Elhage et al.,
"Softmax Linear Units" (2022), of Bills et al., "Language models can explain
neurons in language models" (2023), and of Nanda's Neuroscope (neuroscope.io).

Texts run in batches of similar length, right-padded: under the causal mask a
real token never attends to the padding after it, so its activation is the
one it has alone. The forward pass stops once the neuron's layer has run.

Shapes: b batch, p positions, m d_mlp.
"""

import heapq

from ..args import as_index, as_layer
from ..errors import InvalidIndexError
from ..hooks import FunctionHook
from ..model.transformer import pad_rows
from .common import decoder


class _Captured(Exception):
    """Raised by the capturing hook to end the forward pass early (hooks are removed on raise)."""


def top_activating_tokens(model, layer, neuron, texts, k=10, context=8, batch_size=8, exclude_bos=True):
    """The ``k`` tokens of ``texts`` with the largest activation of MLP neuron ``neuron`` in ``layer``.

    ``texts`` is a list of strings (tokenised with ``model.to_tokens``, so GPT-2
    style models get BOS) or of token-id lists; a text longer than the model's
    context is cut to its first ``n_ctx`` tokens. ``exclude_bos`` skips a leading
    BOS token, whose activations say nothing about the text. Returns a list,
    largest activation first (ties: earlier text, then earlier position), of::

        {"text_index": int, "position": int, "token_id": int, "token": str,
         "activation": float, "left": [str] (up to ``context`` tokens before),
         "right": [str] (up to ``context`` tokens after)}
    """
    layer, neuron = _check_neuron(model, layer, neuron)
    for name, value, low in (("k", k, 1), ("context", context, 0), ("batch_size", batch_size, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{name}={value!r}; expected an integer >= {low}")
    if isinstance(texts, str):
        texts = [texts]
    rows = [_text_ids(model, text, index) for index, text in enumerate(texts)]
    if not rows:
        raise ValueError("texts is empty; expected at least one text")
    bos = model.cfg.bos_token_id
    # Similar lengths share a batch, so little compute goes to padding.
    order = sorted(range(len(rows)), key=lambda index: len(rows[index]))
    best = []  # (activation, -text_index, -position): nlargest then breaks ties by earlier text / position
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        values = neuron_activations(model, layer, neuron, [rows[index] for index in chunk])  # [b][p]
        candidates = [(value, -index, -position)
                      for index, row in zip(chunk, values)
                      for position, value in enumerate(row[:len(rows[index])])
                      if not (exclude_bos and position == 0 and rows[index][0] == bos)]
        best = heapq.nlargest(k, best + candidates)
    decode = decoder(model)
    examples = []
    for value, index, position in best:
        index, position = -index, -position
        row = rows[index]
        examples.append({
            "text_index": index, "position": position, "token_id": row[position],
            "token": decode(row[position]), "activation": value,
            "left": [decode(i) for i in row[max(0, position - context):position]],
            "right": [decode(i) for i in row[position + 1:position + 1 + context]]})
    return examples


def neuron_activations(model, layer, neuron, rows):
    """One neuron's activation at every token of ``rows`` (token-id lists): ``[b][p]`` host lists.

    Rows of unequal length are right-padded; entries past a row's length are padding.
    """
    layer, neuron = _check_neuron(model, layer, neuron)
    captured = {}

    def capture(activation, hook):
        captured["values"] = activation[:, :, neuron]  # [b, p, m] -> [b, p]
        raise _Captured

    lengths = {len(row) for row in rows}
    tokens, mask = pad_rows([list(row) for row in rows], 0, "right", model.backend)
    try:
        model.run_with_hooks(tokens, fwd_hooks=[FunctionHook(f"blocks.{layer}.mlp.hook_post", capture)],
                             attention_mask=mask if len(lengths) > 1 else None)
    except _Captured:
        pass
    return captured["values"].tolist()


def _check_neuron(model, layer, neuron):
    n_layers, d_mlp = model.cfg.n_layers, model.cfg.d_mlp
    layer = as_layer(layer, n_layers)
    try:
        neuron = as_index(neuron, "neuron", d_mlp)
    except InvalidIndexError as error:
        raise InvalidIndexError(f"{error} (layer {layer}'s MLP has {d_mlp} neurons)") from None
    return layer, neuron


def _text_ids(model, text, index):
    if isinstance(text, str):
        ids = model.to_tokens(text)[0].tolist()
    elif isinstance(text, (list, tuple)) and all(isinstance(i, int) and not isinstance(i, bool)
                                                   for i in text):
        ids = list(text)
    else:
        raise TypeError(f"texts[{index}] is a {type(text).__name__}; expected a string or a list of "
                        "token ids")
    if not ids:
        raise ValueError(f"texts[{index}] has no tokens")
    return ids[:model.cfg.n_ctx]


__all__ = ["neuron_activations", "top_activating_tokens"]
