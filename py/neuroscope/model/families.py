"""Hugging Face weight names -> NeoScope's canonical weights, one function per family.

Canonical names follow TransformerLens (``embed.W_E``, ``blocks.{l}.attn.W_Q``,
...), but projections are stored flat and ``[in, out]``: ``W_Q [d, h*e]``,
``W_O [h*e, d]``, ``W_in [d, m]``, ``W_out [m, d]``, ``W_U [d, v]``.
HF ``nn.Linear`` weights are ``[out, in]`` and are transposed here; GPT-2's
``Conv1D`` weights are already ``[in, out]``. Every transpose is listed.
"""

from ..errors import ModelFormatError


def _prefix(names, candidates):
    for candidate in candidates:
        if any(n.startswith(candidate) for n in names):
            return candidate
    return ""


def gpt2(cfg, get, names):
    p = _prefix(names, ("transformer.",))
    d = cfg.d_model
    w = {"embed.W_E": get(p + "wte.weight"), "pos_embed.W_pos": get(p + "wpe.weight")}
    for layer in range(cfg.n_layers):
        hf, ours = f"{p}h.{layer}.", f"blocks.{layer}."
        c_attn, c_attn_b = get(hf + "attn.c_attn.weight"), get(hf + "attn.c_attn.bias")  # [d, 3d] Conv1D
        for i, part in enumerate("QKV"):
            w[ours + f"attn.W_{part}"] = c_attn[:, i * d:(i + 1) * d].clone()
            w[ours + f"attn.b_{part}"] = c_attn_b[i * d:(i + 1) * d].clone()
        w.update({
            ours + "ln1.w": get(hf + "ln_1.weight"), ours + "ln1.b": get(hf + "ln_1.bias"),
            ours + "attn.W_O": get(hf + "attn.c_proj.weight"),  # Conv1D [d, d], no transpose
            ours + "attn.b_O": get(hf + "attn.c_proj.bias"),
            ours + "ln2.w": get(hf + "ln_2.weight"), ours + "ln2.b": get(hf + "ln_2.bias"),
            ours + "mlp.W_in": get(hf + "mlp.c_fc.weight"),     # Conv1D [d, m]
            ours + "mlp.b_in": get(hf + "mlp.c_fc.bias"),
            ours + "mlp.W_out": get(hf + "mlp.c_proj.weight"),  # Conv1D [m, d]
            ours + "mlp.b_out": get(hf + "mlp.c_proj.bias"),
        })
    w["ln_final.w"], w["ln_final.b"] = get(p + "ln_f.weight"), get(p + "ln_f.bias")
    if not cfg.tie_word_embeddings and "lm_head.weight" in names:
        w["unembed.W_U"] = get("lm_head.weight").T.clone()  # Linear [v, d] -> [d, v]
    return w


def gpt_neox(cfg, get, names):
    p = _prefix(names, ("gpt_neox.",))
    h, e = cfg.n_heads, cfg.d_head
    w = {"embed.W_E": get(p + "embed_in.weight")}
    for layer in range(cfg.n_layers):
        hf, ours = f"{p}layers.{layer}.", f"blocks.{layer}."
        # query_key_value is Linear [h*3*e, d], interleaved per head as [h, 3, e].
        qkv = get(hf + "attention.query_key_value.weight").reshape(h, 3, e, -1)
        qkv_b = get(hf + "attention.query_key_value.bias").reshape(h, 3, e)
        for i, part in enumerate("QKV"):
            w[ours + f"attn.W_{part}"] = qkv[:, i].reshape(h * e, -1).T.clone()  # -> [d, h*e]
            w[ours + f"attn.b_{part}"] = qkv_b[:, i].reshape(h * e).clone()
        w.update({
            ours + "ln1.w": get(hf + "input_layernorm.weight"),
            ours + "ln1.b": get(hf + "input_layernorm.bias"),
            ours + "ln2.w": get(hf + "post_attention_layernorm.weight"),
            ours + "ln2.b": get(hf + "post_attention_layernorm.bias"),
            ours + "attn.W_O": get(hf + "attention.dense.weight").T.clone(),   # Linear -> [h*e, d]
            ours + "attn.b_O": get(hf + "attention.dense.bias"),
            ours + "mlp.W_in": get(hf + "mlp.dense_h_to_4h.weight").T.clone(),  # Linear -> [d, m]
            ours + "mlp.b_in": get(hf + "mlp.dense_h_to_4h.bias"),
            ours + "mlp.W_out": get(hf + "mlp.dense_4h_to_h.weight").T.clone(),  # Linear -> [m, d]
            ours + "mlp.b_out": get(hf + "mlp.dense_4h_to_h.bias"),
        })
    w["ln_final.w"] = get(p + "final_layer_norm.weight")
    w["ln_final.b"] = get(p + "final_layer_norm.bias")
    if not cfg.tie_word_embeddings:
        w["unembed.W_U"] = get("embed_out.weight").T.clone()  # Linear [v, d] -> [d, v]
    return w


def llama(cfg, get, names):
    p = _prefix(names, ("model.",))
    w = {"embed.W_E": get(p + "embed_tokens.weight")}
    for layer in range(cfg.n_layers):
        hf, ours = f"{p}layers.{layer}.", f"blocks.{layer}."
        w[ours + "ln1.w"] = get(hf + "input_layernorm.weight")
        w[ours + "ln2.w"] = get(hf + "post_attention_layernorm.weight")
        for part, proj in (("Q", "q_proj"), ("K", "k_proj"), ("V", "v_proj")):
            w[ours + f"attn.W_{part}"] = get(f"{hf}self_attn.{proj}.weight").T.clone()  # -> [d, out]
            if cfg.qkv_bias:
                w[ours + f"attn.b_{part}"] = get(f"{hf}self_attn.{proj}.bias")
        w[ours + "attn.W_O"] = get(hf + "self_attn.o_proj.weight").T.clone()  # -> [h*e, d]
        if cfg.o_bias:
            w[ours + "attn.b_O"] = get(hf + "self_attn.o_proj.bias")
        w[ours + "mlp.W_gate"] = get(hf + "mlp.gate_proj.weight").T.clone()  # -> [d, m]
        w[ours + "mlp.W_in"] = get(hf + "mlp.up_proj.weight").T.clone()      # -> [d, m]
        w[ours + "mlp.W_out"] = get(hf + "mlp.down_proj.weight").T.clone()   # -> [m, d]
        if cfg.mlp_bias:
            w[ours + "mlp.b_in"] = get(hf + "mlp.up_proj.bias")
            w[ours + "mlp.b_out"] = get(hf + "mlp.down_proj.bias")
    w["ln_final.w"] = get(p + "norm.weight")
    if not cfg.tie_word_embeddings:
        w["unembed.W_U"] = get("lm_head.weight").T.clone()  # Linear [v, d] -> [d, v]
    return w


MAPPERS = {"gpt2": gpt2, "gpt_neox": gpt_neox, "llama": llama}


def canonical_shapes(cfg):
    """Name -> shape of every canonical weight for ``cfg`` (used for random init and checks)."""
    d, m, v = cfg.d_model, cfg.d_mlp, cfg.d_vocab
    qd, kvd = cfg.n_heads * cfg.d_head, cfg.n_kv_heads * cfg.d_head
    shapes = {"embed.W_E": (v, d)}
    if cfg.positional == "learned":
        shapes["pos_embed.W_pos"] = (cfg.n_ctx, d)
    layernorm = cfg.normalization == "layernorm"
    for layer in range(cfg.n_layers):
        b = f"blocks.{layer}."
        for ln in ("ln1", "ln2"):
            shapes[b + ln + ".w"] = (d,)
            if layernorm:
                shapes[b + ln + ".b"] = (d,)
        shapes.update({b + "attn.W_Q": (d, qd), b + "attn.W_K": (d, kvd),
                       b + "attn.W_V": (d, kvd), b + "attn.W_O": (qd, d)})
        if cfg.qkv_bias:
            shapes.update({b + "attn.b_Q": (qd,), b + "attn.b_K": (kvd,), b + "attn.b_V": (kvd,)})
        if cfg.o_bias:
            shapes[b + "attn.b_O"] = (d,)
        shapes.update({b + "mlp.W_in": (d, m), b + "mlp.W_out": (m, d)})
        if cfg.gated_mlp:
            shapes[b + "mlp.W_gate"] = (d, m)
        if cfg.mlp_bias:
            shapes.update({b + "mlp.b_in": (m,), b + "mlp.b_out": (d,)})
    shapes["ln_final.w"] = (d,)
    if layernorm:
        shapes["ln_final.b"] = (d,)
    if not cfg.tie_word_embeddings:
        shapes["unembed.W_U"] = (d, v)
    return shapes


def check_shapes(cfg, weights, source):
    """Raise ModelFormatError naming the tensor when a weight has the wrong shape."""
    for name, shape in canonical_shapes(cfg).items():
        if name not in weights:
            raise ModelFormatError(f"{source}: missing weight {name!r} for a {cfg.model_type} model")
        if tuple(weights[name].shape) != shape:
            raise ModelFormatError(f"{source}: weight {name!r} has shape {list(weights[name].shape)}, "
                                   f"config.json implies {list(shape)}")
