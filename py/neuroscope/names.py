"""Hook-point names: TransformerLens' names and the friendly ``(layer, component)`` address.

This module sits just above ``errors`` so that the cache, the hooks and the
model agree on names without depending on each other.

Names follow TransformerLens: ``hook_embed``, ``blocks.{l}.hook_resid_pre``,
``blocks.{l}.attn.hook_pattern``, ``ln_final.hook_normalized`` ...
"""

import difflib

from .errors import UnknownHookError

# Short names as TransformerLens' ``utils.get_act_name`` understands them,
# mapped to the part of the hook name after ``blocks.{layer}.``.
_SHORT_NAMES = {
    "resid_pre": "hook_resid_pre", "resid_mid": "hook_resid_mid",
    "resid_post": "hook_resid_post", "attn_out": "hook_attn_out",
    "mlp_out": "hook_mlp_out", "attn_in": "hook_attn_in", "mlp_in": "hook_mlp_in",
    "q_input": "hook_q_input", "k_input": "hook_k_input", "v_input": "hook_v_input",
    "q": "attn.hook_q", "k": "attn.hook_k", "v": "attn.hook_v", "z": "attn.hook_z",
    "rot_q": "attn.hook_rot_q", "rot_k": "attn.hook_rot_k",
    "pattern": "attn.hook_pattern", "attn_scores": "attn.hook_attn_scores",
    "result": "attn.hook_result",
    "pre": "mlp.hook_pre", "post": "mlp.hook_post", "pre_linear": "mlp.hook_pre_linear",
}
_ALIASES = {
    "attn": "pattern", "attn_logits": "attn_scores", "key": "k", "query": "q",
    "value": "v", "mlp_pre": "pre", "mlp_post": "post", "neurons": "post",
}
_GLOBAL = {"embed": "hook_embed", "pos_embed": "hook_pos_embed"}

# The friendly components of ``(layer, component)`` addresses. "attention" is
# the per-head output before W_O, ``[batch, pos, head, d_head]``, so that
# ``zero_heads`` and ``heads=[...]`` apply to it directly.
COMPONENTS = {
    "residual": "hook_resid_post",
    "resid_pre": "hook_resid_pre",
    "resid_mid": "hook_resid_mid",
    "resid_post": "hook_resid_post",
    "attention": "attn.hook_z",
    "attn_out": "hook_attn_out",
    "mlp": "hook_mlp_out",
    "mlp_out": "hook_mlp_out",
    "mlp_pre": "mlp.hook_pre",
    "mlp_post": "mlp.hook_post",
    "neurons": "mlp.hook_post",
    "pattern": "attn.hook_pattern",
    "scores": "attn.hook_attn_scores",
    "q": "attn.hook_q",
    "k": "attn.hook_k",
    "v": "attn.hook_v",
    "z": "attn.hook_z",
    "result": "attn.hook_result",
}


def act_name(name, layer=None, layer_type=None):
    """The full hook name for a short name, like TransformerLens' ``get_act_name``.

    ``act_name("pattern", 3)`` -> ``"blocks.3.attn.hook_pattern"``;
    ``act_name("scale", 2, "ln1")`` -> ``"blocks.2.ln1.hook_scale"``;
    ``act_name("normalized")`` -> ``"ln_final.hook_normalized"``.
    A name that already contains a dot is returned unchanged.
    """
    if "." in name or (name.startswith("hook_") and layer is None):
        return name
    name = _ALIASES.get(name, name)
    if name in _GLOBAL:
        return _GLOBAL[name]
    if name in ("scale", "normalized"):
        if layer is None:
            return f"ln_final.hook_{name}"
        return f"blocks.{layer}.{layer_type or 'ln1'}.hook_{name}"
    if name not in _SHORT_NAMES:
        raise KeyError(name)
    if layer is None:
        raise KeyError(f"{name!r} needs a layer")
    return f"blocks.{layer}.{_SHORT_NAMES[name]}"


def component_name(layer, component):
    """The hook name for a friendly ``(layer, component)`` address."""
    if isinstance(component, str) and component in COMPONENTS:
        return f"blocks.{layer}.{COMPONENTS[component]}"
    try:
        if not isinstance(component, str):
            raise KeyError(component)
        return act_name(component, layer)
    except KeyError:
        close = difflib.get_close_matches(str(component), known_components(), n=3, cutoff=0.5)
        raise UnknownHookError(f"component {component!r}", close + [
            f"(valid components: {', '.join(known_components())})"]) from None


def known_components():
    """Every friendly component and short name a ``(layer, component)`` address accepts."""
    return sorted(set(COMPONENTS) | set(_SHORT_NAMES) | set(_ALIASES))


def head_components():
    """The friendly components whose activation has a head axis (every ``attn.hook_*``)."""
    return [name for name, hook in COMPONENTS.items() if hook.startswith("attn.")]


def layer_of(name):
    """The block index in a hook name, or None for global hook points."""
    if name.startswith("blocks."):
        return int(name.split(".")[1])
    return None
