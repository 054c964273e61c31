"""The attribution view of the Lens: the patching view's heatmaps from gradients.

``analysis.attribution_patching`` estimates what each activation patching sweep of the
patching view measures (``lens.patch``) from one forward pass of each prompt and one
backward pass of the corrupted one (``method="atp"``, Nanda 2023), or ``ig_steps``
backward passes along the line from the corrupted to the clean input embedding
(``method="eap-ig"``, Hanna et al. 2024): the residual stream entering each layer by
position, each head's output (``hook_z``) at all positions and each MLP's output by
position. Scores are divided by ``clean - corrupted`` logit difference, the patching
view's normalisation, so the two views are read on one scale (1 = the whole clean
effect). Beside them, ``analysis.integrated_gradients`` gives each token of the clean
prompt its share of the logit difference against the zero embedding.

Shapes: L layers, H heads, p positions.
"""

from ..analysis import attribution_patching, integrated_gradients
from ..progress import progress_reporter
from .common import decoder, round_sig, rounded
from .patching import logit_diffs, offset_progress, pair_code, prompt_pair

METHODS = ("atp", "eap-ig")
# result key -> attribution_patching's node kind (the sweeps of lens.patch)
NODES = (("resid", "resid_pre"), ("heads", "heads"), ("mlp", "mlp_out"))


def attribute(model, clean, corrupted, answer, wrong, method="atp", ig_steps=5, saliency_steps=20,
              progress=None):
    """Attribution patching from ``clean`` into ``corrupted`` (prompts of the same token length).

    ``answer`` / ``wrong`` as for ``lens.patch``. ``method``: ``"atp"`` (the corrupted run's
    gradient) or ``"eap-ig"`` (gradients averaged over ``ig_steps`` points between the
    corrupted and the clean embedding). ``saliency_steps``: integrated-gradient steps of the
    token saliency. ``progress`` counts the backward passes: None for the default reporter,
    False for none, or a callable ``(done, total)``. Returns::

        method                "atp" or "eap-ig"
        resid                 [L][pos]  attribution of resid_pre of each layer at each position
        heads                 [L][H]    attribution of each head's output (hook_z), all positions
        mlp                   [L][pos]  attribution of each MLP's output at each position
        saliency              {"scores": [pos], "value", "baseline_value", "delta", "steps"}: integrated
                              gradients of the clean logit difference from the zero embedding
        tokens                the clean prompt's str tokens
        clean_logit_diff      logit(answer) - logit(wrong) on the clean run (corrupted_logit_diff likewise)
        code                  Python source reproducing the view

    resid, heads and mlp are divided by clean - corrupted logit difference (as ``lens.patch``
    normalises); the saliency scores are in logits.
    """
    if method not in METHODS:
        raise ValueError(f"method={method!r}; the attribution view offers {list(METHODS)}")
    for what, steps in (("ig_steps", ig_steps), ("saliency_steps", saliency_steps)):
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise ValueError(f"{what}={steps!r}; expected a positive integer")
    clean_tokens, corrupted_tokens, metric = prompt_pair(model, clean, corrupted, answer, wrong,
                                                         "attribution")
    clean_diff, corrupted_diff = logit_diffs(metric, model(clean_tokens), model(corrupted_tokens))
    report = progress_reporter(progress, "attribution patching")
    passes = ig_steps if method == "eap-ig" else 1
    total = passes + saliency_steps
    report(0, total)
    scores = attribution_patching(model, clean_tokens, corrupted_tokens, metric,
                                  nodes=[kind for _, kind in NODES], method=method, ig_steps=ig_steps,
                                  progress=offset_progress(report, 0, total))
    report(passes, total)
    saliency = integrated_gradients(model, clean_tokens, metric, steps=saliency_steps,
                                    progress=offset_progress(report, passes, total))
    scale = 1.0 / (clean_diff - corrupted_diff)
    result = {"method": method}
    for key, kind in NODES:
        result[key] = rounded((scores[kind] * scale).tolist())
    decode = decoder(model)
    result.update(
        saliency={"scores": rounded(saliency.scores.tolist()[0]), "value": round_sig(saliency.value),
                  "baseline_value": round_sig(saliency.baseline_value), "delta": round_sig(saliency.delta),
                  "steps": saliency_steps},
        tokens=[decode(i) for i in clean_tokens[0].tolist()],
        clean_logit_diff=round_sig(clean_diff), corrupted_logit_diff=round_sig(corrupted_diff),
        code=attribute_code(clean, corrupted, answer, wrong, method, ig_steps, saliency_steps))
    return result


def attribute_code(clean, corrupted, answer, wrong, method="atp", ig_steps=5, saliency_steps=20):
    """Python source that computes what ``attribute`` shows."""
    steps = f", ig_steps={int(ig_steps)}" if method == "eap-ig" else ""
    return pair_code(clean, corrupted, answer, wrong) + f"""\
clean_logit_diff, corrupted_logit_diff = metric(model(clean)).item(), metric(model(corrupted)).item()
# (a_clean - a_corrupt) . d metric / d a on the corrupted run, summed over features
nodes = ["resid_pre", "heads", "mlp_out"]
scores = analysis.attribution_patching(model, clean, corrupted, metric, nodes=nodes, method={method!r}{steps})
scale = 1 / (clean_logit_diff - corrupted_logit_diff)  # as activation patching is normalised
resid = scores["resid_pre"] * scale  # [layer, pos]
heads = scores["heads"] * scale  # [layer, head]
mlp = scores["mlp_out"] * scale  # [layer, pos]
# per-token integrated gradients from the zero embedding: .scores [1, pos]
saliency = analysis.integrated_gradients(model, clean, metric, steps={int(saliency_steps)})
"""


__all__ = ["METHODS", "attribute", "attribute_code"]
