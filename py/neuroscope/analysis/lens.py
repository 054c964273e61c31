"""Residual-stream decomposition and direct logit attribution over a model and its cache.

Free functions ``f(model, cache, ...)`` with the signatures and semantics of the
TransformerLens ``ActivationCache`` methods of the same names
(``transformer_lens/ActivationCache.py``: ``accumulated_resid``,
``decompose_resid``, ``stack_head_results``, ``apply_ln_to_stack``,
``logit_attrs``; ``tokens_to_residual_directions`` from the model). The cache
stays a plain mapping (see STYLE.md); the model supplies the config, the final
norm and the unembedding. Labels are TransformerLens' (``"0_pre"``,
``"1_attn_out"``, ``"L0H3"``, ``"final_post"`` ...).

Like TransformerLens, ``apply_ln`` with cached statistics divides by the
cached ``hook_scale`` (after centring, for LayerNorm) and does not apply the
norm's weight and bias; only the logit lens (``accumulated_resid`` up to the
unembed, ``recompute_ln``) runs the real ``ln_final`` on each entry. Use
``model.process_weights()`` first for attributions that account for the norm
weights, as TransformerLens' compatibility mode does.

Shapes: c stack entries, b batch, p positions, h heads, e d_head, d d_model,
v vocabulary. Stacks are ``[c, b, p, d]``; an int ``pos_slice`` drops ``p``.
"""

from ..tensor import as_tensor, cat, stack, zeros
from .common import Slice, cached, final_layer


def accumulated_resid(model, cache, layer=None, incl_mid=False, apply_ln=False, pos_slice=None,
                      mlp_input=False, return_labels=False):
    """The residual stream at the input of each layer up to ``layer``: ``[c, b, p, d]``.

    ``layer`` None / -1 / n_layers includes the final ``resid_post`` ("final_post");
    ``incl_mid`` adds each earlier layer's ``resid_mid``; ``mlp_input`` adds
    ``layer``'s own ``resid_mid``. With ``apply_ln`` the stack is normalised as
    the input to ``layer`` (the real ``ln_final`` when ``layer`` is the unembed).
    """
    pos_slice = Slice(pos_slice)
    n_layers = model.cfg.n_layers
    layer = final_layer(layer, n_layers, "accumulated_resid")
    if (incl_mid or mlp_input) and model.cfg.parallel_attn_mlp:
        raise ValueError("incl_mid / mlp_input need resid_mid, which parallel attention+MLP blocks "
                         f"({model.cfg.model_type}) do not have")
    parts, labels = [], []
    for index in range(layer + 1):
        if index == n_layers:
            parts.append(cached(cache, f"blocks.{n_layers - 1}.hook_resid_post", "accumulated_resid"))
            labels.append("final_post")
            continue
        parts.append(cached(cache, f"blocks.{index}.hook_resid_pre", "accumulated_resid"))
        labels.append(f"{index}_pre")
        if (incl_mid and index < layer) or (mlp_input and index == layer):
            parts.append(cached(cache, f"blocks.{index}.hook_resid_mid", "accumulated_resid (resid_mid)"))
            labels.append(f"{index}_mid")
    components = stack([pos_slice.apply(part, axis=-2) for part in parts])  # [c, b, p, d]
    if apply_ln:
        components = apply_ln_to_stack(model, cache, components, layer, mlp_input, pos_slice=pos_slice,
                                       recompute_ln=layer == n_layers)
    return (components, labels) if return_labels else components


def decompose_resid(model, cache, layer=None, mlp_input=False, mode="all", apply_ln=False, pos_slice=None,
                    incl_embeds=True, return_labels=False):
    """The residual stream at the input of ``layer`` split into what wrote it: ``[c, b, p, d]``.

    Entries: ``embed``, ``pos_embed`` (when cached), then each earlier layer's
    ``attn_out`` and ``mlp_out`` (``mode`` "attn" / "mlp" keeps one kind);
    ``mlp_input`` adds ``layer``'s own ``attn_out``.
    """
    if mode not in ("all", "mlp", "attn"):
        raise ValueError(f"mode={mode!r}; expected 'all', 'mlp' or 'attn'")
    pos_slice = Slice(pos_slice)
    layer = final_layer(layer, model.cfg.n_layers, "decompose_resid")
    incl_attn = mode != "mlp"
    incl_mlp = mode != "attn" and not getattr(model.cfg, "attn_only", False)
    parts, labels = [], []
    if incl_embeds:
        if "hook_embed" in cache:
            parts.append(cache["hook_embed"])
            labels.append("embed")
        if "hook_pos_embed" in cache:
            parts.append(cache["hook_pos_embed"])
            labels.append("pos_embed")
    for index in range(layer):
        if incl_attn:
            parts.append(cached(cache, f"blocks.{index}.hook_attn_out", "decompose_resid"))
            labels.append(f"{index}_attn_out")
        if incl_mlp:
            parts.append(cached(cache, f"blocks.{index}.hook_mlp_out", "decompose_resid"))
            labels.append(f"{index}_mlp_out")
    if mlp_input and incl_attn:
        parts.append(cached(cache, f"blocks.{layer}.hook_attn_out", "decompose_resid"))
        labels.append(f"{layer}_attn_out")
    if not parts:
        raise ValueError("decompose_resid: nothing to stack (no embeddings cached or requested, "
                         f"and layer={layer})")
    components = stack([pos_slice.apply(part, axis=-2) for part in parts])  # [c, b, p, d]
    if apply_ln:
        components = apply_ln_to_stack(model, cache, components, layer, mlp_input, pos_slice=pos_slice)
    return (components, labels) if return_labels else components


def head_results(model, cache, layer, pos_slice=None):
    """What each head of ``layer`` writes to the residual stream, head first: ``[h, b, p, d]``.

    Read from ``attn.hook_result`` when the cache has it, else computed from
    ``attn.hook_z`` and ``W_O`` (``z_h @ W_O[h]``, no ``b_O``), as TransformerLens'
    ``compute_head_results`` does.
    """
    pos_slice = Slice(pos_slice)
    name = f"blocks.{layer}.attn.hook_result"
    if name in cache:
        result = pos_slice.apply(cache[name], axis=-3)  # [b, p, h, d]
        head_axis = result.ndim - 2
        return result.permute((head_axis,) + tuple(range(head_axis)) + (head_axis + 1,))
    z = pos_slice.apply(cached(cache, f"blocks.{layer}.attn.hook_z", "head results"), axis=-3)  # [b, p, h, e]
    n_heads, d_head = z.shape[-2:]
    lead = z.shape[:-2]
    head_axis = z.ndim - 2
    z_heads = z.permute((head_axis,) + tuple(range(head_axis)) + (head_axis + 1,))
    z_heads = z_heads.reshape(n_heads, -1, d_head)  # [h, N, e]
    w_o = model.blocks[layer].attn.W_O.reshape(n_heads, d_head, -1)  # [h, e, d]
    return (z_heads @ w_o).reshape((n_heads,) + lead + (w_o.shape[-1],))  # [h, b, p, d]


def stack_head_results(model, cache, layer=-1, return_labels=False, incl_remainder=False, pos_slice=None,
                       apply_ln=False):
    """Every head's output in layers before ``layer``, ``[layer * h, b, p, d]``, labelled "L{l}H{h}".

    ``incl_remainder`` appends the rest of the residual stream (``resid_post``
    of ``layer - 1`` minus the heads: embeddings, MLPs and biases).
    """
    pos_slice = Slice(pos_slice)
    n_layers = model.cfg.n_layers
    layer = final_layer(layer, n_layers, "stack_head_results")
    parts, labels = [], []
    for index in range(layer):
        parts.append(head_results(model, cache, index, pos_slice))  # [h, b, p, d]
        labels.extend(f"L{index}H{head}" for head in range(model.cfg.n_heads))
    if incl_remainder:
        # The stream entering ``layer``. At layer 0 that is resid_pre 0; TransformerLens
        # reads the *last* layer's resid_post there (its ("resid_post", -1) wraps around).
        name = f"blocks.{layer - 1}.hook_resid_post" if layer > 0 else "blocks.0.hook_resid_pre"
        resid = pos_slice.apply(cached(cache, name, "stack_head_results"), axis=-2)  # [b, p, d]
        remainder = resid - cat(parts).sum(0) if parts else resid
        parts.append(remainder.unsqueeze(0))
        labels.append("remainder")
    if parts:
        components = cat(parts)  # [c, b, p, d]
    else:
        embed = pos_slice.apply(cached(cache, "hook_embed", "stack_head_results"), axis=-2)
        components = zeros((0,) + embed.shape, embed.dtype, embed.backend)
    if apply_ln:
        components = apply_ln_to_stack(model, cache, components, layer, pos_slice=pos_slice)
    return (components, labels) if return_labels else components


def apply_ln_to_stack(model, cache, residual_stack, layer=None, mlp_input=False, pos_slice=None,
                      batch_slice=None, has_batch_dim=True, recompute_ln=False):
    """Normalise each stack entry as the input to ``layer``'s norm (``ln_final`` at n_layers).

    With cached statistics (the default) every entry is centred (LayerNorm) and
    divided by the *whole* stream's cached ``hook_scale``, so the entries still
    sum to the normalised stream; ``recompute_ln`` at the unembed instead runs
    ``ln_final`` on each entry with its own statistics (the logit lens).
    ``pos_slice`` is assumed already applied to the stack; it slices the scale.
    """
    pos_slice, batch_slice = Slice(pos_slice), Slice(batch_slice)
    n_layers = model.cfg.n_layers
    layer = final_layer(layer, n_layers, "apply_ln_to_stack")
    if has_batch_dim:
        residual_stack = batch_slice.apply(residual_stack, axis=1)
    if model.cfg.normalization not in ("layernorm", "rmsnorm"):
        return residual_stack
    if recompute_ln and layer == n_layers:
        shape = residual_stack.shape
        rows = residual_stack.reshape(-1, 1, shape[-1])  # [N, 1, d]: ln_final takes [b, p, d]
        return model.ln_final.forward(rows).reshape(shape)
    if model.cfg.normalization == "layernorm":
        residual_stack = residual_stack - residual_stack.mean(-1, keepdims=True)
    if layer == n_layers:
        name = "ln_final.hook_scale"
    else:
        name = f"blocks.{layer}.ln{2 if mlp_input else 1}.hook_scale"
    scale = pos_slice.apply(cached(cache, name, "apply_ln_to_stack"), axis=-2)  # [b, p, 1]
    if has_batch_dim:
        scale = batch_slice.apply(scale, axis=0)
    return residual_stack / scale


def tokens_to_residual_directions(model, tokens):
    """The unembedding column of each token: ``[d]`` for one token, ``[*tokens.shape, d]`` otherwise.

    ``tokens`` is a token id, a one-token string, or a list / Tensor of ids.
    """
    if isinstance(tokens, str):
        tokens = single_token(model, tokens)
    if not isinstance(tokens, int):
        tokens = as_tensor(tokens, dtype="int64", backend=model.backend)
        if tokens.size == 1:
            tokens = int(tokens.item())
    if isinstance(tokens, int):
        if not 0 <= tokens < model.cfg.d_vocab:
            raise ValueError(f"token id {tokens} is outside the vocabulary 0-{model.cfg.d_vocab - 1}")
        return model.W_U[:, tokens]  # [d]
    ids = tokens.reshape(-1).tolist()
    outside = [i for i in ids if not 0 <= i < model.cfg.d_vocab]
    if outside:  # a negative id would count from the end of the vocabulary
        raise ValueError(f"token id {outside[0]} is outside the vocabulary 0-{model.cfg.d_vocab - 1}")
    return model.W_U.T.take(tokens, axis=0)  # [*tokens.shape, d]


def single_token(model, text):
    """The id of ``text``, which must encode to exactly one token."""
    if model.tokenizer is None:
        raise RuntimeError(f"cannot look up {text!r}: this model has no tokenizer; pass a token id")
    ids = model.tokenizer.encode(text, add_special_tokens=False)
    if len(ids) != 1:
        raise ValueError(f"{text!r} is {len(ids)} tokens {ids}; expected exactly one")
    return ids[0]


def _token_shape(model, tokens):
    if isinstance(tokens, (str, int)):
        return ()
    return tuple(as_tensor(tokens, dtype="int64", backend=model.backend).shape)


def logit_attrs(model, cache, residual_stack, tokens, incorrect_tokens=None, pos_slice=None, batch_slice=None,
                has_batch_dim=True):
    """How much each stack entry pushes the logit of ``tokens`` (minus ``incorrect_tokens``): ``[c, b, p]``.

    Each entry goes through ``ln_final`` with the cached scale, then is dotted
    with the tokens' unembedding directions. ``tokens`` is one id / one-token
    string, ``[batch]`` (one per example), ``[pos]`` (shared over the batch, when
    its length is not the batch size) or ``[batch, pos]``.
    """
    batch_slice = Slice(batch_slice)
    directions = tokens_to_residual_directions(model, tokens)  # [..., d]
    if incorrect_tokens is not None:
        if _token_shape(model, tokens) != _token_shape(model, incorrect_tokens):
            raise ValueError(f"tokens and incorrect_tokens must have the same shape; got "
                             f"{list(_token_shape(model, tokens))} and "
                             f"{list(_token_shape(model, incorrect_tokens))}")
        directions = directions - tokens_to_residual_directions(model, incorrect_tokens)
    scaled = apply_ln_to_stack(model, cache, residual_stack, layer=-1, pos_slice=pos_slice,
                               batch_slice=batch_slice, has_batch_dim=has_batch_dim)  # [c, b, p, d]
    if (has_batch_dim and batch_slice.mode != "int" and scaled.ndim == 4 and directions.ndim == 2
            and directions.shape[0] == scaled.shape[1]):
        directions = directions.unsqueeze(-2)  # per-example directions broadcast over positions
    return (scaled * directions).sum(-1)


def direct_logit_attribution(model, cache, tokens, incorrect_tokens=None, by="components", pos_slice=-1):
    """Direct logit attribution at ``pos_slice`` (the last position by default): ``(attrs, labels)``.

    ``by="components"`` splits the final residual stream into embeddings,
    attention and MLP outputs (``decompose_resid``); ``by="heads"`` into every
    head plus the remainder (``stack_head_results``); ``by="layers"`` reads the
    accumulated stream after each layer. ``attrs`` is ``[c, b]`` for an int
    ``pos_slice``. The components sum (up to ``b_O`` and the final-norm bias)
    to the logit difference.
    """
    if by == "components":
        components, labels = decompose_resid(model, cache, pos_slice=pos_slice, return_labels=True)
    elif by == "heads":
        components, labels = stack_head_results(model, cache, pos_slice=pos_slice, incl_remainder=True,
                                                return_labels=True)
    elif by == "layers":
        components, labels = accumulated_resid(model, cache, pos_slice=pos_slice, return_labels=True)
    else:
        raise ValueError(f"by={by!r}; expected 'components', 'heads' or 'layers'")
    attrs = logit_attrs(model, cache, components, tokens, incorrect_tokens, pos_slice=pos_slice)
    return attrs, labels


__all__ = ["accumulated_resid", "apply_ln_to_stack", "decompose_resid", "direct_logit_attribution",
           "head_results", "logit_attrs", "single_token", "stack_head_results",
           "tokens_to_residual_directions"]
