"""Helpers shared by the Lens views: rounding, top-k tables, token look-ups, code strings.

Everything a view returns must cross the worker boundary as JSON (plus
``Tensor``s, which the worker turns into typed arrays), so small tables are
plain lists of numbers rounded to ``DIGITS`` significant digits.
"""

import os

from ..analysis.common import decoder
from ..args import as_layer
from ..tensor import as_tensor

DIGITS = 5  # significant digits kept in the small tables


def round_sig(value, digits=DIGITS):
    """``value`` rounded to ``digits`` significant digits, as a float."""
    return float(f"{float(value):.{digits}g}") + 0.0  # + 0.0 turns -0.0 into 0.0


def rounded(nested, digits=DIGITS):
    """A number, or nested lists of numbers, rounded to ``digits`` significant digits."""
    if isinstance(nested, (list, tuple)):
        return [rounded(item, digits) for item in nested]
    return round_sig(nested, digits)


def check_k(k, what="k"):
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"{what}={k!r}; expected an integer >= 1")
    return k


def check_layer(model, layer):
    return as_layer(layer, model.cfg.n_layers)


def prompt_tokens(model, prompt, what="prompt"):
    """Token ids ``[1, p]`` of a string (``model.to_tokens``: BOS as the model adds it) or an id list."""
    if isinstance(prompt, str):
        tokens = model.to_tokens(prompt)
    elif isinstance(prompt, (list, tuple)) and prompt and all(
            isinstance(i, int) and not isinstance(i, bool) for i in prompt):
        tokens = as_tensor([list(prompt)], dtype="int64", backend=model.backend)
    else:
        raise TypeError(f"{what} is {prompt!r}; expected a string or a non-empty list of token ids")
    if tokens.shape[0] != 1:
        raise ValueError(f"{what} gave {tokens.shape[0]} sequences; expected one")
    return tokens


def token_id(model, token, what):
    """The id of ``token``: an int, or the *first* token of a string such as ``" Mary"``."""
    if isinstance(token, int) and not isinstance(token, bool):
        if not 0 <= token < model.cfg.d_vocab:
            raise ValueError(f"{what} token id {token} is outside the vocabulary 0-{model.cfg.d_vocab - 1}")
        return token
    if not isinstance(token, str) or not token:
        raise TypeError(f"{what}={token!r}; expected a non-empty string (its first token is used) or a "
                        "token id")
    if model.tokenizer is None:
        raise RuntimeError(f"cannot tokenise {what}={token!r}: this model has no tokenizer; pass a token id")
    ids = model.tokenizer.encode(token, add_special_tokens=False)
    if not ids:
        raise ValueError(f"{what}={token!r} encodes to no tokens")
    return ids[0]


def token_code(token):
    """Python source that evaluates to the id ``token_id`` would give."""
    if isinstance(token, int):
        return repr(token)
    return f"model.tokenizer.encode({token!r}, add_special_tokens=False)[0]"


def top_entries(ids, probs, decode):
    """``[{"id", "text", "prob"}]`` from parallel lists of ids and probabilities (largest first)."""
    return [{"id": i, "text": decode(i), "prob": round_sig(p)} for i, p in zip(ids, probs)]


def topk_table(probs, k, decode):
    """Per row of ``probs [..., v]`` (a Tensor), its top-k entries: nested lists of ``top_entries``."""
    top_probs, top_ids = probs.topk(min(k, probs.shape[-1]))  # [..., k]
    return _zip_nested(top_ids.tolist(), top_probs.tolist(), decode)


def _zip_nested(ids, probs, decode):
    if ids and isinstance(ids[0], list):
        return [_zip_nested(i, p, decode) for i, p in zip(ids, probs)]
    return top_entries(ids, probs, decode)


def model_info(model):
    """``{"name", "n_layers", "n_heads", "d_model", "d_vocab", "d_mlp"}`` of ``model``."""
    cfg = model.cfg
    return {"name": model_name(model), "n_layers": cfg.n_layers, "n_heads": cfg.n_heads,
            "d_model": cfg.d_model, "d_vocab": cfg.d_vocab, "d_mlp": cfg.d_mlp}


def model_name(model):
    """A short name: "demo" for the built-in model, the hub or folder name, else the model type.

    ``model.source`` is a folder, a URL (in the browser the demo model is served at
    ``.../py/neuroscope/demo/model/``) or ``"random(seed=...)"``.
    """
    source = getattr(model, "source", None)
    if not isinstance(source, str) or not source:
        return model.cfg.model_type
    from ..demo import MODEL_DIR
    parts = [part for part in source.replace("\\", "/").split("/") if part]
    if parts[-3:] == ["neuroscope", "demo", "model"] or (
            os.path.isdir(source) and os.path.samefile(source, MODEL_DIR)):
        return "demo"
    hub = [part for part in parts if part.startswith("models--")]
    if hub:  # a snapshot in the Hugging Face cache: models--owner--name/snapshots/<hash>
        return hub[-1][len("models--"):].replace("--", "/")
    from ..model.loading import HUB_ENDPOINT, hub_endpoint
    for endpoint in {hub_endpoint(), HUB_ENDPOINT}:  # {endpoint}/{name}/resolve/main/
        if source.startswith(endpoint + "/"):
            rest = source[len(endpoint) + 1:].split("/")
            if "resolve" in rest[1:3]:
                return "/".join(rest[:rest.index("resolve")])
    return parts[-1] if parts else model.cfg.model_type


def literal(value):
    """Python source for a string or a list of token ids."""
    return repr(list(value) if isinstance(value, tuple) else value)


__all__ = ["DIGITS", "check_k", "check_layer", "decoder", "literal", "model_info", "model_name",
           "prompt_tokens", "round_sig", "rounded", "token_code", "token_id", "top_entries", "topk_table"]


POOL_MIN_EXAMPLES = 64  # fewer examples finish before a pool of workers has booted


def dataset_cluster(model, n_examples):
    """Where a dataset-scale view runs: the page's pool of workers (``ComputeCluster.browser()``)
    in the browser when it has more than one core, the model loads from a URL and the dataset
    holds at least ``POOL_MIN_EXAMPLES`` examples; otherwise None (this process)."""
    try:
        import neuroscope_js
    except ImportError:
        return None
    if int(getattr(neuroscope_js, "cores", 1) or 1) < 2 or n_examples < POOL_MIN_EXAMPLES:
        return None
    source = getattr(model, "source", None)
    if not isinstance(source, str) or "://" not in source:
        return None
    from ..distributed import ComputeCluster
    return ComputeCluster.browser()
