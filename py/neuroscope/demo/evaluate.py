"""Measure what the demo model was taught, with NeuroScope's own analyses.

Runs in CPython and in the browser (NeuroScope only; no torch):

* ``induction``: TransformerLens-style induction scores (``AttentionAnalyzer``) on
  repeated random tokens (also by span length, with and without BOS), and
  ``induction_circuit``: the earlier head the induction head composes with. An induction
  head puts its attention on the token after the earlier copy of the current one
  (Olsson et al., "In-context Learning and Induction Heads", 2022).
* ``ioi_logit_diff``: logit(indirect object) - logit(subject) on the held-out IOI prompts
  (Wang et al., "Interpretability in the Wild", 2022).
* ``ioi_head_patching``: each head's output (``hook_z``, all positions) patched from the
  clean run into the ABC-corrupted run (the repeated subject replaced by a third name),
  then the top heads patched together: the fraction of the logit difference recovered.
* ``fact_recall``: top-1 accuracy on each fact asked in its held-out phrasing.

Prompts of one token length run as one batch, so no padding enters any measurement.
"""


from ..analysis import (
    AttentionAnalyzer,
    get_act_patch_attn_head_out_all_pos,
    logit_diff_metric,
    repeated_random_tokens,
)
from ..datasets import load_heldout
from ..hooks import InterventionHook
from ..interventions import Patch, ZeroAblation
from ..names import act_name


def first_token(model, text):
    """The id of the first token of ``text`` (answers start with a space: " Paris")."""
    return model.tokenizer.encode(text, add_special_tokens=False)[0]


def _by_length(model, items, *keys):
    """Group ``items`` by the token length of ``item[keys[0]]``: ``[(items, {key: tokens})]``."""
    groups = {}
    for item in items:
        tokens = model.to_tokens(item[keys[0]])[0].tolist()
        groups.setdefault(len(tokens), []).append(item)
    out = []
    for length in sorted(groups):
        batch = groups[length]
        tokens = {key: model.to_tokens([item[key] for item in batch]) for key in keys}
        for key, value in tokens.items():
            if value.shape[1] != length:
                raise ValueError(f"{key} prompts have {value.shape[1]} tokens where the clean prompts have "
                                 f"{length}; the corruption must keep the token length")
        out.append((batch, tokens))
    return out


def induction(model, length=40, batch=8, seed=0, k=5, bos=True):
    """Induction scores on ``batch`` sequences of (BOS +) a random span of ``length`` repeated once."""
    tokens = repeated_random_tokens(model.cfg.d_vocab, length, batch=batch, seed=seed,
                                    bos=model.cfg.bos_token_id if bos else None, low=1)
    analysis = AttentionAnalyzer(model).analyze_tokens(tokens)
    top = analysis.top_heads("induction", k)
    return {"top_heads": [[layer, head, round(score, 4)] for layer, head, score in top],
            "best_score": top[0][2], "length": length, "batch": batch, "bos": bos}


def induction_circuit(model, length=30, batch=8, seed=0, threshold=0.3):
    """The best induction head and the previous-token heads it composes with (Olsson et al.
    2022, K-composition): the heads of earlier layers whose previous-token score is at least
    ``threshold``, zero-ablated together (``hook_z``); the induction head's score without them
    shows whether it depends on them (one at a time each may be redundant with the others)."""
    tokens = repeated_random_tokens(model.cfg.d_vocab, length, batch=batch, seed=seed,
                                    bos=model.cfg.bos_token_id, low=1)
    analyzer = AttentionAnalyzer(model)
    analysis = analyzer.analyze_tokens(tokens)
    layer, head, score = analysis.top_heads("induction", 1)[0]
    previous = analysis.table("previous_token")
    partners = sorted(((lh, value) for lh, value in previous.items() if lh[0] < layer and value >= threshold),
                      key=lambda item: -item[1])
    out = {"induction_head": [layer, head], "induction_score": round(score, 4), "length": length,
           "previous_token_heads": [[l, h, round(value, 4)] for (l, h), value in partners]}
    if partners:
        by_layer = {}
        for (l, h), _ in partners:
            by_layer.setdefault(l, []).append(h)
        hooks = [InterventionHook(name=act_name("z", l), action=ZeroAblation(), heads=sorted(heads))
                 for l, heads in sorted(by_layer.items())]
        with model.hooks(hooks):
            ablated = analyzer.analyze_tokens(tokens, layers=[layer]).table("induction")[(layer, head)]
        out["score_with_previous_token_heads_ablated"] = round(ablated, 4)
    return out


def ioi_logit_diff(model, prompts):
    """Mean over the prompts of logit(answer) - logit(incorrect) at the last position."""
    diffs = []
    for batch, tokens in _by_length(model, prompts, "prompt"):
        last = model(tokens["prompt"])[:, -1].tolist()  # [b][v]
        for row, item in zip(last, batch):
            diffs.append(row[first_token(model, item["answer"])] - row[first_token(model, item["incorrect"])])
    return {"mean": sum(diffs) / len(diffs), "min": min(diffs),
            "positive_fraction": sum(d > 0 for d in diffs) / len(diffs), "count": len(diffs)}


def ioi_head_patching(model, prompts, max_fraction=0.1, progress=False):
    """Which heads carry IOI: patch each head clean -> ABC-corrupted, then the top ones together.

    Returns per-head recovery ``[layer][head]`` (0 = corrupted, 1 = clean), the
    heads ranked by it, and the recovery of the top 1, 2, ... heads patched together,
    up to ``max_fraction`` of all heads; ``heads_needed`` is the fewest that recover
    at least half (None if none do).
    """
    n_layers, n_heads = model.cfg.n_layers, model.cfg.n_heads
    z_names = [act_name("z", layer) for layer in range(n_layers)]
    groups = []
    for batch, tokens in _by_length(model, prompts, "prompt", "corrupted_prompt"):
        metric = logit_diff_metric([first_token(model, item["answer"]) for item in batch],
                                   [first_token(model, item["incorrect"]) for item in batch])
        clean_logits, cache = model.run_with_cache(tokens["prompt"], names_filter=z_names)
        corrupted = tokens["corrupted_prompt"]
        sweep = get_act_patch_attn_head_out_all_pos(model, corrupted, cache, metric, progress=progress)
        groups.append({"size": len(batch), "metric": metric, "cache": cache, "corrupted": corrupted,
                       "clean": metric(clean_logits).item(), "corrupt": metric(model(corrupted)).item(),
                       "sweep": sweep.tolist()})
    total = sum(group["size"] for group in groups)

    def mean(values):
        return sum(group["size"] * value for group, value in zip(groups, values)) / total

    clean, corrupt = mean([g["clean"] for g in groups]), mean([g["corrupt"] for g in groups])
    recovery = [[(mean([g["sweep"][layer][head] for g in groups]) - corrupt) / (clean - corrupt)
                 for head in range(n_heads)] for layer in range(n_layers)]
    ranked = sorted(((layer, head) for layer in range(n_layers) for head in range(n_heads)),
                    key=lambda lh: recovery[lh[0]][lh[1]], reverse=True)
    budget = max(1, int(max_fraction * n_layers * n_heads))
    joint = []
    for count in range(1, budget + 1):
        chosen = ranked[:count]
        values = [patch_heads(model, g["corrupted"], g["cache"], g["metric"], chosen) for g in groups]
        joint.append((mean(values) - corrupt) / (clean - corrupt))
    needed = next((count for count, value in enumerate(joint, 1) if value >= 0.5), None)
    return {"clean_logit_diff": clean, "corrupted_logit_diff": corrupt, "recovery": recovery,
            "ranked_heads": [[layer, head, recovery[layer][head]] for layer, head in ranked[:budget]],
            "joint_recovery": joint, "heads_needed": needed, "head_budget": budget,
            "n_heads_total": n_layers * n_heads, "prompts": total,
            "corruption": "ABC: the second mention of the subject replaced by a third name"}


def patch_heads(model, corrupted_tokens, clean_cache, metric, heads):
    """``metric`` on the corrupted run with the outputs of ``heads`` [(layer, head)] patched from clean."""
    by_layer = {}
    for layer, head in heads:
        by_layer.setdefault(layer, []).append(head)
    hooks = [InterventionHook(name=act_name("z", layer), action=Patch(clean_cache), heads=sorted(chosen))
             for layer, chosen in sorted(by_layer.items())]
    value = metric(model.run_with_hooks(corrupted_tokens, fwd_hooks=hooks))
    return value.item() if hasattr(value, "item") else float(value)


def fact_recall(model, facts):
    """Top-1 accuracy on the first token of each held-out fact's answer, and the misses."""
    correct, misses = 0, []
    for batch, tokens in _by_length(model, facts, "prompt"):
        predicted = model(tokens["prompt"])[:, -1].argmax(-1).tolist()
        for token, item in zip(predicted, batch):
            if token == first_token(model, item["answer"]):
                correct += 1
            else:
                misses.append({"prompt": item["prompt"], "answer": item["answer"],
                               "predicted": model.tokenizer.decode([token])})
    return {"accuracy": correct / len(facts), "count": len(facts), "misses": misses}


def evaluate(model, folder=None, progress=False):
    """Every measurement on the held-out splits in ``folder`` (default: the packaged model)."""
    ioi = load_heldout("ioi", folder)["prompts"]
    patching = ioi_head_patching(model, ioi, progress=progress)
    return {"induction": induction(model),
            "induction_by_length": {f"{length}{'' if bos else ' no BOS'}": induction(model, length, bos=bos)[
                "best_score"] for length in (20, 30, 40) for bos in (True, False)},
            "induction_circuit": induction_circuit(model),
            "ioi_logit_diff": ioi_logit_diff(model, ioi),
            "ioi_head_patching": {key: value for key, value in patching.items() if key != "recovery"},
            "ioi_head_recovery": patching["recovery"],
            "fact_recall": fact_recall(model, load_heldout("facts", folder)["facts"])}
