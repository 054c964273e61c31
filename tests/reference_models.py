"""Tiny random-weight Hugging Face models of each supported family, built offline.

Weights are drawn with a fixed seed and a large spread (std 0.2, norm weights
around 1) so that logits differ clearly between positions and comparisons at
1e-4 mean something. A byte-level BPE tokenizer is trained on a small text
with unicode, so ``tokenizer.json`` is real and shared by every family.
"""

import os

FAMILIES = ("gpt2", "gpt_neox", "llama", "qwen2", "mistral")

CORPUS = [
    "When Mary and John went to the store, John gave a drink to Mary.",
    "The capital of France is Paris. The capital of Japan is Tokyo.",
    "Café, naïve, über — déjà vu! 東京 and 北京 are cities. 🙂🚀 emoji too.",
    "    leading spaces\tand tabs\n\nand newlines   ",
    "def forward(self, x):\n    return x @ self.W + self.b",
] * 20

SPECIAL = "<|endoftext|>"


def train_tokenizer(path, vocab_size=320):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[SPECIAL],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(CORPUS, trainer)
    tokenizer.save(path)
    return tokenizer.get_vocab_size()


def hf_config(family, vocab_size, eos):
    import transformers as tf
    common = dict(vocab_size=vocab_size, bos_token_id=eos, eos_token_id=eos, pad_token_id=None)
    if family == "gpt2":
        return tf.GPT2Config(n_positions=64, n_embd=32, n_layer=2, n_head=4, **common)
    small = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                 max_position_embeddings=64, **common)
    if family == "gpt_neox":
        return tf.GPTNeoXConfig(rotary_pct=0.5, use_parallel_residual=True, **small)
    if family == "llama":
        return tf.LlamaConfig(num_key_value_heads=2, tie_word_embeddings=False, **small)
    if family == "qwen2":
        return tf.Qwen2Config(num_key_value_heads=2, tie_word_embeddings=False, **small)
    if family == "mistral":
        return tf.MistralConfig(num_key_value_heads=2, sliding_window=6, **small)
    raise ValueError(family)


def build(family, folder, seed=0):
    """Write config.json, model.safetensors and tokenizer.json for ``family`` into ``folder``."""
    import torch
    import transformers as tf
    os.makedirs(folder, exist_ok=True)
    vocab_size = train_tokenizer(os.path.join(folder, "tokenizer.json"))
    from tokenizers import Tokenizer
    eos = Tokenizer.from_file(os.path.join(folder, "tokenizer.json")).token_to_id(SPECIAL)
    config = hf_config(family, vocab_size, eos)
    torch.manual_seed(seed)
    model = tf.AutoModelForCausalLM.from_config(config, attn_implementation="eager").eval()
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "norm" in name or "ln" in name:
                param.copy_(1.0 + 0.2 * torch.randn_like(param) if name.endswith("weight")
                            else 0.2 * torch.randn_like(param))
            else:
                param.normal_(0.0, 0.2)
    model.save_pretrained(folder, safe_serialization=True)
    return folder


def load_hf(folder):
    import transformers as tf
    return tf.AutoModelForCausalLM.from_pretrained(folder, attn_implementation="eager").eval()


def gpt2_heads_from_qkv(block, q, k, v):
    """GPT-2 attention from per-head ``q``, ``k``, ``v`` ``[b, p, h, e]`` (torch, causal): each
    head's write into the residual stream, ``[b, p, h, d]`` (before the output bias)."""
    import torch
    b, p, h, e = q.shape
    causal = torch.tril(torch.ones(p, p, dtype=torch.bool))
    scores = torch.einsum("bqhe,bkhe->bhqk", q, k) / e ** 0.5
    pattern = scores.masked_fill(~causal, float("-inf")).softmax(-1)
    z = torch.einsum("bhqk,bkhe->bqhe", pattern, v)
    return torch.einsum("bphe,hed->bphd", z, block.attn.c_proj.weight.reshape(h, e, -1))
