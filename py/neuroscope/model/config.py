"""``ModelConfig``: one normalised description of a decoder-only transformer.

Built from a Hugging Face ``config.json`` (``ModelConfig.from_hf``) for the
supported families, or directly for random models. Field names follow
TransformerLens' ``HookedTransformerConfig`` where one exists.
"""

import dataclasses
import json
import math

from ..errors import ModelFormatError, UnsupportedModelError

SUPPORTED = {
    "gpt2": "GPT-2 (GPT2LMHeadModel)",
    "gpt_neox": "GPT-NeoX / Pythia (GPTNeoXForCausalLM)",
    "llama": "Llama (LlamaForCausalLM)",
    "qwen2": "Qwen2 (Qwen2ForCausalLM)",
    "mistral": "Mistral (MistralForCausalLM)",
}


@dataclasses.dataclass
class ModelConfig:
    family: str                   # "gpt2" | "gpt_neox" | "llama"
    model_type: str               # HF model_type, e.g. "qwen2"
    d_model: int
    n_layers: int
    n_heads: int
    d_vocab: int
    n_ctx: int
    d_mlp: int
    n_kv_heads: int = None
    d_head: int = None
    act_fn: str = "gelu_new"
    eps: float = 1e-5
    normalization: str = "layernorm"      # "layernorm" | "rmsnorm" | "none" (toy models)
    positional: str = "learned"           # "learned" | "rotary"
    rotary_dim: int = 0
    rope_theta: float = 10000.0
    parallel_attn_mlp: bool = False
    gated_mlp: bool = False
    qkv_bias: bool = True
    o_bias: bool = True
    mlp_bias: bool = True
    tie_word_embeddings: bool = True
    sliding_window: int = None
    scale_attn_by_inverse_layer_idx: bool = False
    bos_token_id: int = None
    eos_token_id: int = None
    pad_token_id: int = None
    initializer_range: float = 0.02
    use_attn_result: bool = False         # add the per-head hook_result point (costly)
    hf_config: dict = dataclasses.field(default=None, repr=False)

    def __post_init__(self):
        if self.n_kv_heads is None:
            self.n_kv_heads = self.n_heads
        if self.d_head is None:
            self.d_head = self.d_model // self.n_heads
        if self.normalization not in ("layernorm", "rmsnorm", "none"):
            raise ModelFormatError(f"normalization={self.normalization!r}; expected 'layernorm', 'rmsnorm' "
                                   "or 'none'")
        if self.n_heads % self.n_kv_heads:
            raise ModelFormatError(f"n_heads={self.n_heads} is not a multiple of "
                                   f"n_kv_heads={self.n_kv_heads}")

    @property
    def attn_scale(self):
        return 1.0 / math.sqrt(self.d_head)

    def to_dict(self):
        return {k: v for k, v in dataclasses.asdict(self).items() if k != "hf_config"}

    # -- from Hugging Face ------------------------------------------------------
    @classmethod
    def from_hf(cls, hf, source="config.json"):
        """Normalise a Hugging Face config dict (or a path to config.json)."""
        if isinstance(hf, str):
            try:
                with open(hf, encoding="utf-8") as handle:
                    hf = json.load(handle)
            except (OSError, ValueError) as error:
                raise ModelFormatError(f"{hf}: cannot read config: {error}") from None
        model_type = hf.get("model_type")
        if model_type not in SUPPORTED:
            raise UnsupportedModelError(
                f"model_type {model_type!r} (architectures {hf.get('architectures')}) is not "
                f"supported; supported: " + ", ".join(f"{k} ({v})" for k, v in SUPPORTED.items()))
        try:
            config = _FROM_HF[model_type](hf)
        except KeyError as error:
            raise ModelFormatError(f"{source}: missing field {error} for model_type {model_type!r}") from None
        config.hf_config = hf
        return config


def _rope_theta(hf):
    # transformers 5 moved rope settings into "rope_parameters".
    params = hf.get("rope_parameters") or {}
    scaling = hf.get("rope_scaling") or {}
    rope_type = params.get("rope_type", scaling.get("rope_type", scaling.get("type", "default")))
    if rope_type not in (None, "default"):
        raise UnsupportedModelError(f"rope_type {rope_type!r} is not supported; supported: 'default'")
    return float(params.get("rope_theta", hf.get("rope_theta", 10000.0)))


def _gpt2(hf):
    n_embd = hf["n_embd"]
    act = hf.get("activation_function", "gelu_new")
    if act not in ("gelu_new", "gelu", "relu"):
        raise UnsupportedModelError(f"GPT-2 activation_function {act!r}; supported: gelu_new, gelu, relu")
    return ModelConfig(
        family="gpt2", model_type="gpt2", d_model=n_embd, n_layers=hf["n_layer"],
        n_heads=hf["n_head"], d_vocab=hf["vocab_size"],
        n_ctx=hf.get("n_positions", hf.get("n_ctx", 1024)),
        d_mlp=hf.get("n_inner") or 4 * n_embd, act_fn=act,
        eps=hf.get("layer_norm_epsilon", 1e-5),
        scale_attn_by_inverse_layer_idx=hf.get("scale_attn_by_inverse_layer_idx", False),
        tie_word_embeddings=hf.get("tie_word_embeddings", True),
        bos_token_id=hf.get("bos_token_id"), eos_token_id=hf.get("eos_token_id"),
        pad_token_id=hf.get("pad_token_id"),
        initializer_range=hf.get("initializer_range", 0.02))


def _gpt_neox(hf):
    d_model, n_heads = hf["hidden_size"], hf["num_attention_heads"]
    d_head = d_model // n_heads
    params = hf.get("rope_parameters") or {}
    rotary_pct = params.get("partial_rotary_factor",
                            hf.get("rotary_pct", hf.get("partial_rotary_factor", 1.0)))
    act = hf.get("hidden_act", "gelu")
    if act not in ("gelu", "gelu_new", "relu", "silu"):
        raise UnsupportedModelError(f"GPT-NeoX hidden_act {act!r}; supported: gelu, gelu_new, relu, silu")
    return ModelConfig(
        family="gpt_neox", model_type="gpt_neox", d_model=d_model,
        n_layers=hf["num_hidden_layers"], n_heads=n_heads, d_vocab=hf["vocab_size"],
        n_ctx=hf.get("max_position_embeddings", 2048), d_mlp=hf["intermediate_size"],
        act_fn=act, eps=hf.get("layer_norm_eps", 1e-5), positional="rotary",
        rotary_dim=int(d_head * rotary_pct), rope_theta=_rope_theta_neox(hf),
        parallel_attn_mlp=hf.get("use_parallel_residual", True),
        qkv_bias=hf.get("attention_bias", True), o_bias=hf.get("attention_bias", True),
        tie_word_embeddings=hf.get("tie_word_embeddings", False),
        bos_token_id=hf.get("bos_token_id"), eos_token_id=hf.get("eos_token_id"),
        pad_token_id=hf.get("pad_token_id"),
        initializer_range=hf.get("initializer_range", 0.02))


def _rope_theta_neox(hf):
    if "rotary_emb_base" in hf:
        return float(hf["rotary_emb_base"])
    return _rope_theta(hf)


def _llama(hf):
    d_model, n_heads = hf["hidden_size"], hf["num_attention_heads"]
    act = hf.get("hidden_act", "silu")
    if act not in ("silu", "gelu", "gelu_new", "relu"):
        raise UnsupportedModelError(f"hidden_act {act!r}; supported: silu, gelu, gelu_new, relu")
    model_type = hf["model_type"]
    if model_type == "qwen2" and hf.get("use_sliding_window"):
        # Qwen2 windows only the layers from max_window_layers on; not implemented.
        raise UnsupportedModelError("Qwen2 with use_sliding_window=true is not supported; "
                                    "supported: use_sliding_window=false")
    window = hf.get("sliding_window") if model_type == "mistral" else None
    qkv_bias = hf.get("attention_bias", model_type == "qwen2")
    return ModelConfig(
        family="llama", model_type=model_type, d_model=d_model,
        n_layers=hf["num_hidden_layers"], n_heads=n_heads,
        n_kv_heads=hf.get("num_key_value_heads") or n_heads,
        d_head=hf.get("head_dim") or d_model // n_heads, d_vocab=hf["vocab_size"],
        n_ctx=hf.get("max_position_embeddings", 2048), d_mlp=hf["intermediate_size"],
        act_fn=act, eps=hf.get("rms_norm_eps", 1e-6), normalization="rmsnorm",
        positional="rotary", rotary_dim=hf.get("head_dim") or d_model // n_heads,
        rope_theta=_rope_theta(hf), gated_mlp=True, qkv_bias=qkv_bias,
        o_bias=hf.get("attention_bias", False) and model_type != "qwen2",
        mlp_bias=hf.get("mlp_bias", False),
        tie_word_embeddings=hf.get("tie_word_embeddings", False), sliding_window=window,
        bos_token_id=hf.get("bos_token_id"), eos_token_id=hf.get("eos_token_id"),
        pad_token_id=hf.get("pad_token_id"),
        initializer_range=hf.get("initializer_range", 0.02))


_FROM_HF = {"gpt2": _gpt2, "gpt_neox": _gpt_neox, "llama": _llama, "qwen2": _llama, "mistral": _llama}
