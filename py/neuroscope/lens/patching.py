"""The patching view of the Lens: which activations carry the clean prompt's answer?

Three sweeps of ``analysis.patching`` (TransformerLens' ``patching`` module):
the residual stream entering each layer by position (``get_act_patch_resid_pre``),
each head's output at all positions (``get_act_patch_attn_head_out_all_pos``,
``hook_z``) and each MLP's output by position (``get_act_patch_mlp_out``),
each cell patched from the clean run into the corrupted one and scored by the
logit difference ``logit(answer) - logit(wrong)`` at the last position,
normalised so that 0 is the corrupted run and 1 the clean run. References:
Meng et al., "Locating and Editing Factual Associations in GPT" (2022); Wang et
al., "Interpretability in the Wild" (2022); Heimersheim & Nanda, "How to use and
interpret activation patching" (2024).

Shapes: L layers, H heads, p positions.
"""

from ..analysis import (
    get_act_patch_attn_head_out_all_pos,
    get_act_patch_mlp_out,
    get_act_patch_resid_pre,
    logit_diff_metric,
    normalized_metric,
)
from ..names import act_name
from ..progress import progress_reporter
from .common import (
    check_k,
    dataset_cluster,
    decoder,
    literal,
    prompt_tokens,
    round_sig,
    rounded,
    token_code,
    token_id,
)

# result key -> the sweep that fills it, in the order they run
SWEEPS = (("resid", get_act_patch_resid_pre), ("heads", get_act_patch_attn_head_out_all_pos),
          ("mlp", get_act_patch_mlp_out))


def patch(model, clean, corrupted, answer, wrong, progress=None):
    """Activation patching from ``clean`` into ``corrupted`` (prompts of the same token length).

    ``answer`` / ``wrong`` are strings such as ``" Mary"`` (their first token is
    used) or token ids. ``progress`` counts the forward passes of all three sweeps
    together: None for the default reporter (``analysis.common.progress_reporter``:
    a stderr bar in CPython, the page's bar in the browser), False for none, or a
    callable ``(done, total)``. Returns::

        resid                 [L][pos]  resid_pre of each layer patched at one position
        heads                 [L][H]    each head's output (hook_z) patched at every position
        mlp                   [L][pos]  each MLP's output patched at one position
        tokens                the clean prompt's str tokens
        clean_logit_diff      logit(answer) - logit(wrong) on the clean run (corrupted_logit_diff likewise)
        code                  Python source reproducing the view

    Every sweep is normalised: (metric - corrupted) / (clean - corrupted).
    """
    report = progress_reporter(progress, "activation patching")
    clean_tokens, corrupted_tokens, metric = prompt_pair(model, clean, corrupted, answer, wrong,
                                                         "activation patching")
    n_layers = model.cfg.n_layers
    names = [act_name(short, layer) for layer in range(n_layers) for short in ("resid_pre", "z", "mlp_out")]
    clean_logits, clean_cache = model.run_with_cache(clean_tokens, names_filter=names)
    corrupted_logits = model(corrupted_tokens)
    clean_diff, corrupted_diff = logit_diffs(metric, clean_logits, corrupted_logits)
    normalized = normalized_metric(metric, clean_logits, corrupted_logits)
    n_positions = clean_tokens.shape[1]
    sizes = [n_layers * n_positions, n_layers * model.cfg.n_heads, n_layers * n_positions]
    result, done = {}, 0
    for (key, sweep), size in zip(SWEEPS, sizes):
        values = sweep(model, corrupted_tokens, clean_cache, normalized,
                       progress=offset_progress(report, done, sum(sizes)))  # [L, p] or [L, H]
        result[key] = rounded(values.tolist())
        done += size
    decode = decoder(model)
    result.update(tokens=[decode(i) for i in clean_tokens[0].tolist()],
                  clean_logit_diff=round_sig(clean_diff), corrupted_logit_diff=round_sig(corrupted_diff),
                  code=patch_code(clean, corrupted, answer, wrong))
    return result


def patch_dataset(model, dataset="demo/ioi", count=64, progress=None):
    """Head patching averaged over the first ``count`` pairs of a dataset of clean/corrupted
    pairs (fields ``prompt``/``clean``, ``corrupted_prompt``/``corrupted``, ``answer``,
    ``incorrect``/``wrong``; the demo's ``demo/ioi``): the patching view's ``heads`` ``[L][H]``,
    each pair normalised (0 = corrupted, 1 = clean) before averaging, plus ``n_pairs``,
    ``workers`` (the page's pool when it has more than one core) and ``code``."""
    from ..distributed import DistributedAnalysis
    from .datasets import open_dataset

    check_k(count, "count")
    data, source = open_dataset(dataset)
    pairs = data[:count]
    cluster = dataset_cluster(model, len(pairs))
    average = DistributedAnalysis(model, cluster, "activation_patching", pairs, kind="heads",
                                  progress=progress).run()
    where = "None" if cluster is None else f"ComputeCluster.browser({cluster.n_workers})"
    names = ("" if cluster is None else "ComputeCluster, ") + "Dataset, DistributedAnalysis"
    code = (f"from neuroscope import {names}\n\npairs = {source}[:{count}]\n"
            f"average = DistributedAnalysis(model, {where}, \"activation_patching\", pairs,\n"
            "                              kind=\"heads\").run()\naverage.mean  # [layer, head]\n")
    return {"heads": rounded(average.mean.tolist()), "n_pairs": average.n_examples, "dataset": dataset,
            "workers": 1 if cluster is None else cluster.n_workers, "tokens": [], "code": code}


def prompt_pair(model, clean, corrupted, answer, wrong, what):
    """The clean and corrupted token ids ``[1, p]`` (refused when their lengths differ) and the
    logit-difference metric of ``answer`` and ``wrong``."""
    clean_tokens = prompt_tokens(model, clean, "clean")  # [1, p]
    corrupted_tokens = prompt_tokens(model, corrupted, "corrupted")  # [1, p]
    if clean_tokens.shape[1] != corrupted_tokens.shape[1]:
        raise ValueError(f"the clean prompt is {clean_tokens.shape[1]} tokens and the corrupted prompt "
                         f"{corrupted_tokens.shape[1]}; {what} needs prompts of the same token length")
    metric = logit_diff_metric(token_id(model, answer, "answer"), token_id(model, wrong, "wrong"))
    return clean_tokens, corrupted_tokens, metric


def logit_diffs(metric, clean_logits, corrupted_logits):
    """The metric on the clean and the corrupted run, refused when equal (nothing to normalise by)."""
    clean_diff, corrupted_diff = metric(clean_logits).item(), metric(corrupted_logits).item()
    if clean_diff == corrupted_diff:
        raise ValueError(f"the logit difference is {clean_diff} on both the clean and the corrupted prompt; "
                         "there is nothing to normalise by (do the prompts differ where it matters?)")
    return clean_diff, corrupted_diff


def offset_progress(report, done, total):
    """A sweep's ``(done, total)`` reports, shifted into the count over all sweeps."""
    return lambda sweep_done, sweep_total: report(done + sweep_done, total)


def pair_code(clean, corrupted, answer, wrong):
    """Python source that sets ``clean``, ``corrupted`` (token ids) and ``metric``."""
    def tokens(prompt):
        return f"model.to_tokens({literal(prompt)})" if isinstance(prompt, str) else \
            f"neuroscope.tensor([{literal(prompt)}])"

    head = "import neuroscope\n" if not isinstance(clean, str) or not isinstance(corrupted, str) else ""
    return f"""\
{head}from neuroscope import analysis

clean = {tokens(clean)}
corrupted = {tokens(corrupted)}
answer, wrong = {token_code(answer)}, {token_code(wrong)}
metric = analysis.logit_diff_metric(answer, wrong)  # logit(answer) - logit(wrong), last position
"""


def patch_code(clean, corrupted, answer, wrong):
    """Python source that runs the three sweeps of ``patch``."""
    return pair_code(clean, corrupted, answer, wrong) + """\
clean_logits, clean_cache = model.run_with_cache(clean)
clean_logit_diff, corrupted_logit_diff = metric(clean_logits).item(), metric(model(corrupted)).item()
normalized = analysis.normalized_metric(metric, clean_logits, model(corrupted))  # 0 = corrupted, 1 = clean
resid = analysis.get_act_patch_resid_pre(model, corrupted, clean_cache, normalized)  # [layer, pos]
# [layer, head]
heads = analysis.get_act_patch_attn_head_out_all_pos(model, corrupted, clean_cache, normalized)
mlp = analysis.get_act_patch_mlp_out(model, corrupted, clean_cache, normalized)  # [layer, pos]
"""


__all__ = ["patch", "patch_code", "patch_dataset"]
