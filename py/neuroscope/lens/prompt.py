"""The prompt views of the Lens: tokens, predictions, norms, attention and the logit lens.

``analyze`` runs the prompt once, caching only what the views read (each
layer's ``resid_pre``, ``resid_post``, ``attn_out``, ``mlp_out`` and attention
pattern), and builds every view from that one cache with the package's
analyses: ``analysis.accumulated_resid`` (residual norms),
``analysis.AttentionAnalyzer`` (patterns and TransformerLens' ``detect_head``
scores: Olsson et al. 2022, Wang et al. 2022) and ``analysis.logit_lens``
(nostalgebraist 2020). Each view comes with the NeuroScope code that
reproduces it in the notebook.

Shapes: L layers, H heads, p positions, d d_model, v vocabulary, k top-k.
"""

from string import Template

from ..analysis import AttentionAnalyzer, accumulated_resid, logit_lens
from ..names import act_name
from ..tensor import cat, stack
from .common import check_k, decoder, literal, model_info, prompt_tokens, rounded, top_entries, topk_table

SCORE_KINDS = ("previous_token", "duplicate_token", "induction", "entropy")
# activation_norms key -> the short hook name it reads
NORM_VIEWS = (("residual", "resid_post"), ("attention", "attn_out"), ("mlp", "mlp_out"))


def analyze(model, prompt, k=5):
    """Every prompt view of ``prompt`` (a string, or a list of token ids) in one forward pass.

    Returns a JSON-able dict (``Tensor``s for the patterns)::

        tokens            [{"id", "text"}] per position (BOS included when the model adds it)
        predictions       [pos] -> top-k next tokens [{"id", "text", "prob"}]
        residual_norms    [L + 1][pos]: |resid_pre| of each layer, then |final resid_post|
        activation_norms  {"residual": [L][pos] |resid_post|, "attention": [L][pos] |attn_out|,
                           "mlp": [L][pos] |mlp_out|}
        attention         {"patterns": Tensor [L, H, query, key],
                           "scores": {"previous_token" | "duplicate_token" | "induction" | "entropy": [L][H]}}
        logit_lens        [L + 1][pos] -> top-k [{"id", "text", "prob"}] (rows as residual_norms)
        model             {"name", "n_layers", "n_heads", "d_model", "d_vocab", "d_mlp"}
        code              {view: Python source reproducing it, with ``model`` loaded}
    """
    check_k(k)
    tokens = prompt_tokens(model, prompt)  # [1, p]
    n_layers = model.cfg.n_layers
    names = [act_name(short, layer) for layer in range(n_layers)
             for short in ("resid_pre", "resid_post", "attn_out", "mlp_out", "pattern")]
    logits, cache = model.run_with_cache(tokens, names_filter=names)
    decode = decoder(model)
    ids = tokens[0].tolist()
    norms = _norms(model, cache).tolist()  # [L + 1 + 3L][p]: one readback for every norm
    attention = AttentionAnalyzer(model).analyze_cache(cache)
    patterns = stack([attention.patterns[layer][0] for layer in attention.layers])  # [L, H, q, k]
    scores = stack([attention.scores[kind] for kind in SCORE_KINDS]).tolist()  # [kinds][L][H]
    table = logit_lens(model, cache, k=k)
    return {
        "tokens": [{"id": i, "text": decode(i)} for i in ids],
        "predictions": topk_table(logits[0].softmax(-1), k, decode),  # [p] -> k entries
        "residual_norms": rounded(norms[:n_layers + 1]),
        "activation_norms": {view: rounded(norms[n_layers + 1 + n_layers * index:
                                                 n_layers + 1 + n_layers * (index + 1)])
                             for index, (view, _) in enumerate(NORM_VIEWS)},
        "attention": {"patterns": patterns,
                      "scores": {kind: rounded(values) for kind, values in zip(SCORE_KINDS, scores)}},
        "logit_lens": [[top_entries(cell_ids, cell_probs, decode)
                        for cell_ids, cell_probs in zip(row_ids, row_probs)]
                       for row_ids, row_probs in zip(table.top_ids, table.top_probs)],
        "model": model_info(model),
        "code": analyze_code(prompt, k),
    }


def _norms(model, cache):
    """Residual norms ``[L + 1, p]`` stacked over the activation norms ``3 x [L, p]``."""
    residual = accumulated_resid(model, cache)[:, 0]  # [L + 1, p, d]
    parts = [residual.norm(-1)]
    for _, short in NORM_VIEWS:
        layers = [cache[short, layer][0] for layer in range(model.cfg.n_layers)]  # [p, d] each
        parts.append(stack(layers).norm(-1))  # [L, p]
    return cat(parts)


_CODE = {
    "predictions": """\
prompt = $prompt
probs = model(prompt)[0].softmax(-1)  # [pos, vocab]: the next-token distribution at each position
top_probs, top_ids = probs.topk($k)  # [pos, k]
""",
    "residual_norms": """\
from neuroscope.analysis import accumulated_resid

prompt = $prompt
_, cache = model.run_with_cache(prompt, names_filter=lambda name: name.endswith(("resid_pre", "resid_post")))
# resid_pre of each layer, then the final resid_post
residual_norms = accumulated_resid(model, cache)[:, 0].norm(-1)  # [layer + 1, pos]
""",
    "activation_norms": """\
from neuroscope import stack

prompt = $prompt
_, cache = model.run_with_cache(
    prompt, names_filter=lambda name: name.endswith(("resid_post", "attn_out", "mlp_out")))
layers = range(model.cfg.n_layers)
activation_norms = {
    view: stack([cache[name, layer][0] for layer in layers]).norm(-1)  # [layer, pos]
    for view, name in [("residual", "resid_post"), ("attention", "attn_out"), ("mlp", "mlp_out")]
}
""",
    "attention": """\
from neuroscope import stack
from neuroscope.analysis import AttentionAnalyzer

prompt = $prompt
attention = AttentionAnalyzer(model).analyze_tokens(prompt)
patterns = stack([attention.patterns[layer][0] for layer in attention.layers])  # [layer, head, query, key]
scores = {kind: attention.scores[kind]  # [layer, head]
          for kind in ("previous_token", "duplicate_token", "induction", "entropy")}
""",
    "logit_lens": """\
from neuroscope.analysis import logit_lens

prompt = $prompt
_, cache = model.run_with_cache(prompt, names_filter=lambda name: name.endswith(("resid_pre", "resid_post")))
table = logit_lens(model, cache, k=$k)  # rows: resid_pre of each layer, then the final resid_post
table.top_tokens, table.top_probs  # [layer + 1][pos][k]
""",
}


def analyze_code(prompt, k=5):
    """``{view: code}``: NeuroScope code that reproduces each view of ``analyze(model, prompt, k)``."""
    values = {"prompt": literal(prompt), "k": k}
    if isinstance(prompt, str):
        tokens = ("prompt = $prompt\ntokens = model.to_tokens(prompt)[0].tolist()  "
                  "# ids, BOS first when the model adds it\n")
    else:
        tokens = "prompt = $prompt\ntokens = list(prompt)\n"
    tokens += "str_tokens = model.to_str_tokens(tokens)\n"
    code = {"tokens": Template(tokens).substitute(values)}
    code.update({view: Template(text).substitute(values) for view, text in _CODE.items()})
    return code


__all__ = ["analyze", "analyze_code"]
