"""The ablation view of the Lens: switch heads and MLPs off and watch the prediction move.

Each ablation becomes one core ``InterventionHook`` with a built-in
intervention, so its JSON spec (``to_spec``) is the one share links carry:

* a head ``{"layer": l, "head": h}`` acts on ``blocks.{l}.attn.hook_z`` with
  ``heads=[h]`` (the head's output before ``W_O``, as TransformerLens patches
  heads); an MLP ``{"layer": l, "mlp": true}`` on ``blocks.{l}.hook_mlp_out``.
* ``"zero"``: ``ZeroAblation``.
* ``"mean"``: ``MeanAblation(mean=...)`` with the activation averaged over the
  positions of a clean run of the *reference* text (``reference``, or the prompt
  itself when it is None), then used at every position of the prompt.
* ``"resample"``: ``ResampleAblation`` from a clean run of ``reference``, which
  must have the prompt's token length: position ``i`` of the prompt receives
  the component's activation at position ``i`` of the reference (resampling
  ablation, Chan et al., "Causal Scrubbing", 2022).

Reference runs are clean (no ablation), so ablations do not feed into each
other's means or resampled activations. Shapes: v vocabulary.
"""

from ..args import as_index
from ..hooks import InterventionHook
from ..interventions import MeanAblation, ResampleAblation, ZeroAblation
from ..names import act_name
from .common import (
    check_k,
    check_layer,
    decoder,
    literal,
    prompt_tokens,
    round_sig,
    token_code,
    token_id,
    topk_table,
)

KINDS = ("zero", "mean", "resample")


def ablate(model, prompt, ablations, answer=None, wrong=None, k=5, reference=None):
    """The next-token prediction at the last position of ``prompt``, before and after ``ablations``.

    ``ablations``: a list of ``{"layer": int, "head": int, "kind": ...}`` or
    ``{"layer": int, "mlp": true, "kind": ...}``, ``kind`` one of "zero"
    (the default), "mean", "resample" (see the module docstring). ``answer`` and
    ``wrong`` (strings such as ``" Mary"``, whose first token is used, or ids) add
    the logit difference. Returns::

        baseline    top-k [{"id", "text", "prob"}] without ablation
        ablated     top-k with the ablations
        logit_diff  {"baseline", "ablated"}: logit(answer) - logit(wrong); None without answer/wrong
        changes     the k tokens whose probability moved most: [{"id", "text", "baseline",
                    "ablated", "delta"}], largest |delta| first
        spec        one InterventionHook spec per ablation: the resample ones first, then
                    the others in the order given (registered in this order, the specs
                    reproduce ``ablated``)
        reference   the text the mean / resample activations came from (None when unused)
        code        Python source reproducing the view
    """
    check_k(k)
    parsed = [_parse(model, index, ablation) for index, ablation in enumerate(_as_list(ablations))]
    # Resample hooks first: rebuilt from specs, a ResampleAblation runs its source prompt when it is
    # registered, through the hooks registered before it; resample hooks alone leave that run clean.
    parsed.sort(key=lambda ablation: ablation[2] != "resample")
    if (answer is None) != (wrong is None):
        raise ValueError(f"answer={answer!r}, wrong={wrong!r}: give both for a logit difference, or neither")
    ids = (token_id(model, answer, "answer"), token_id(model, wrong, "wrong")) if answer is not None else None
    tokens = prompt_tokens(model, prompt)  # [1, p]
    kinds = {kind for _, _, kind in parsed}
    if "resample" in kinds and reference is None:
        raise ValueError("a resample ablation needs reference= (another prompt of the same token length)")
    source = reference if reference is not None else prompt
    reference_cache = None
    if kinds & {"mean", "resample"}:
        reference_tokens = prompt_tokens(model, source, "reference")
        if "resample" in kinds and reference_tokens.shape[1] != tokens.shape[1]:
            raise ValueError(f"resample ablation: the reference is {reference_tokens.shape[1]} tokens and "
                             f"the prompt {tokens.shape[1]}; they must have the same token length")
        names = sorted({_hook_name(layer, head) for layer, head, kind in parsed if kind != "zero"})
        _, reference_cache = model.run_with_cache(reference_tokens, names_filter=names)
    hooks = [_hook(layer, head, kind, reference_cache) for layer, head, kind in parsed]
    baseline_logits = model(tokens)[0, -1]  # [v]
    ablated_logits = model.run_with_hooks(tokens, fwd_hooks=hooks)[0, -1]  # [v]
    baseline, ablated = baseline_logits.softmax(-1), ablated_logits.softmax(-1)  # [v]
    decode = decoder(model)
    used = source if reference_cache is not None else None
    result = {"baseline": topk_table(baseline, k, decode), "ablated": topk_table(ablated, k, decode),
              "logit_diff": None, "changes": _changes(baseline, ablated, k, decode),
              "spec": [hook.to_spec() for hook in hooks],
              "reference": used, "code": ablate_code(prompt, parsed, answer, wrong, k, used)}
    if ids is not None:
        pair = baseline_logits.take(list(ids)).tolist() + ablated_logits.take(list(ids)).tolist()
        result["logit_diff"] = {"baseline": round_sig(pair[0] - pair[1]),
                                "ablated": round_sig(pair[2] - pair[3])}
    return result


def _as_list(ablations):
    if isinstance(ablations, dict):
        return [ablations]
    if not isinstance(ablations, (list, tuple)):
        raise TypeError(f"ablations={ablations!r}; expected a list of dicts like "
                        '{"layer": 0, "head": 1, "kind": "zero"} or '
                        '{"layer": 0, "mlp": true, "kind": "mean"}')
    return list(ablations)


def _parse(model, index, ablation):
    """``(layer, head or None for the MLP, kind)``, checked against the model."""
    if not isinstance(ablation, dict) or "layer" not in ablation:
        raise ValueError(f"ablations[{index}] is {ablation!r}; expected a dict with 'layer' and 'head', "
                         "or 'layer' and 'mlp': true")
    kind = ablation.get("kind", "zero")
    if kind not in KINDS:
        raise ValueError(f"ablations[{index}] has kind {kind!r}; expected one of {list(KINDS)}")
    layer = check_layer(model, ablation["layer"])
    has_head, is_mlp = ablation.get("head") is not None, bool(ablation.get("mlp"))
    if has_head == is_mlp:
        raise ValueError(f"ablations[{index}] is {ablation!r}; expected exactly one of 'head' (an int) "
                         "and 'mlp': true")
    if is_mlp:
        if getattr(model.cfg, "attn_only", False):
            raise ValueError(f"ablations[{index}]: this model has no MLPs")
        return layer, None, kind
    head = as_index(ablation["head"], f"ablations[{index}] head", model.cfg.n_heads)
    return layer, head, kind


def _hook_name(layer, head):
    return act_name("z" if head is not None else "mlp_out", layer)


def _hook(layer, head, kind, reference_cache):
    component = "z" if head is not None else "mlp_out"
    heads = [head] if head is not None else None
    if kind == "zero":
        action = ZeroAblation()
    elif kind == "mean":
        # [p, h, e] -> [h, e] for a head, [p, d] -> [d] for an MLP: the mean over the reference's positions
        action = MeanAblation(mean=reference_cache[_hook_name(layer, head)][0].mean(0))
    else:
        action = ResampleAblation(source=reference_cache)
    return InterventionHook(layer=layer, component=component, heads=heads, action=action)


def _changes(baseline, ablated, k, decode):
    delta = ablated - baseline  # [v]
    _, ids = delta.abs().topk(min(k, delta.shape[-1]))
    ids = ids.tolist()
    values = [row.take(ids).tolist() for row in (baseline, ablated, delta)]
    return [{"id": i, "text": decode(i), "baseline": round_sig(b), "ablated": round_sig(a),
             "delta": round_sig(d)} for i, b, a, d in zip(ids, *values)]


def ablate_code(prompt, parsed, answer=None, wrong=None, k=5, reference=None):
    """Python source that rebuilds the hooks of ``ablate`` and computes both distributions."""
    kinds = {kind for _, _, kind in parsed}
    classes = sorted({{"zero": "ZeroAblation", "mean": "MeanAblation", "resample": "ResampleAblation"}[kind]
                      for kind in kinds})
    lines = [f"from neuroscope import {', '.join(['InterventionHook', *classes])}", "",
             f"prompt = {literal(prompt)}"]
    if reference is not None:
        names = sorted({_hook_name(layer, head) for layer, head, kind in parsed if kind != "zero"})
        what = "means over its positions" if kinds & {"mean"} else "resampled activations"
        text = "prompt" if reference == prompt else literal(reference)
        lines += [f"reference = {text}  # {what} come from a clean run of this text",
                  f"_, reference_cache = model.run_with_cache(reference, names_filter={names!r})"]
    lines.append("hooks = [")
    for layer, head, kind in parsed:
        where = f"layer={layer}, component='z', heads=[{head}]" if head is not None else \
            f"layer={layer}, component='mlp_out'"
        if kind == "zero":
            action = "ZeroAblation()"
        elif kind == "mean":
            action = f"MeanAblation(mean=reference_cache[{_hook_name(layer, head)!r}][0].mean(0))"
        else:
            action = "ResampleAblation(source=reference_cache)"
        lines.append(f"    InterventionHook({where}, action={action}),")
    lines += ["]",
              "baseline_logits = model(prompt)[0, -1]  # [vocab], last position",
              "ablated_logits = model.run_with_hooks(prompt, fwd_hooks=hooks)[0, -1]",
              "baseline_probs, ablated_probs = baseline_logits.softmax(-1), ablated_logits.softmax(-1)",
              f"top_probs, top_ids = ablated_probs.topk({k})",
              "spec = [hook.to_spec() for hook in hooks]  # JSON, as share links carry it"]
    if answer is not None:
        lines += [f"answer, wrong = {token_code(answer)}, {token_code(wrong)}",
                  "logit_diff = (baseline_logits[answer] - baseline_logits[wrong]).item(), "
                  "(ablated_logits[answer] - ablated_logits[wrong]).item()"]
    return "\n".join(lines) + "\n"


__all__ = ["ablate", "ablate_code"]
