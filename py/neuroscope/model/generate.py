"""Autoregressive generation with a key/value cache (greedy, temperature, top-k).

Sampling draws from Python's ``random`` seeded by ``seed`` so CPython and the
browser produce the same continuation.
"""

import math
import random

from ..tensor import Tensor


def generate(model, prompt, max_tokens=20, temperature=0.0, top_k=None, seed=None,
             stop_at_eos=True, prepend_bos=None):
    """Text in -> text out (prompt + continuation); token ids in -> token ids out.

    Text comes back without the BOS token ``to_tokens`` prepended, as in TransformerLens."""
    if max_tokens < 0:
        raise ValueError(f"max_tokens={max_tokens}; expected a count >= 0")
    if temperature < 0:
        raise ValueError(f"temperature={temperature}; expected >= 0 (0 means greedy)")
    as_text = isinstance(prompt, str)
    added_bos = 0
    if as_text:
        ids = model.to_tokens(prompt, prepend_bos=prepend_bos).tolist()[0]
        own = model.tokenizer.encode(prompt)
        added_bos = int(len(ids) == len(own) + 1 and ids[0] == model.cfg.bos_token_id)
    else:
        ids = prompt.tolist() if isinstance(prompt, Tensor) or hasattr(prompt, "tolist") else list(prompt)
        if ids and isinstance(ids[0], list):
            if len(ids) != 1:
                raise ValueError(f"generate takes one prompt, got a batch of {len(ids)}")
            ids = ids[0]
    rng = random.Random(seed)
    eos = model.cfg.eos_token_id
    out = list(ids)
    past, step_input = None, [ids]
    for _ in range(max_tokens):
        result = model.forward(step_input, past_key_values=past, use_cache=True)
        past = result.past_key_values
        logits = result.logits[0, -1]  # [v]
        token = _pick(logits, temperature, top_k, rng)
        out.append(token)
        if stop_at_eos and eos is not None and token == eos:
            break
        step_input = [[token]]
    if as_text:
        return model.to_string(out[added_bos:])
    return out


def _pick(logits, temperature, top_k, rng):
    if temperature == 0:
        return int(logits.argmax(-1).item())
    if top_k is not None:
        values, indices = logits.topk(min(top_k, logits.shape[-1]))
        values, indices = values.tolist(), indices.tolist()
    else:
        values, indices = logits.tolist(), list(range(logits.shape[-1]))
    peak = max(values)
    weights = [math.exp((v - peak) / temperature) for v in values]
    return int(rng.choices(indices, weights=weights)[0])
