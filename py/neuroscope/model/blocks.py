"""MLPs and transformer blocks (sequential as GPT-2/Llama, parallel as GPT-NeoX).

Shapes: x ``[b, p, d]``; MLP hidden ``[b, p, m]``.
"""

import functools

from ..tensor import run_op
from .attention import Attention
from .components import IdentityNorm, LayerNorm, RMSNorm, linear


class MLP:
    """``act(x W_in + b_in) W_out + b_out``."""

    def __init__(self, weights, act_fn, prefix, hooks):
        self.W_in, self.b_in = weights["W_in"], weights.get("b_in")     # [d, m], [m]
        self.W_out, self.b_out = weights["W_out"], weights.get("b_out")  # [m, d], [d]
        self.act_fn = act_fn
        m = self.W_in.shape[1]
        self.hook_pre = hooks.add(prefix + "hook_pre", ("batch", "pos", m))
        self.hook_post = hooks.add(prefix + "hook_post", ("batch", "pos", m))

    def forward(self, x):
        pre = self.hook_pre(linear(x, self.W_in, self.b_in))
        # Only cached: the cache keeps act(pre) as a recipe instead of a second [b, p, m] tensor.
        recipe = functools.partial(_activation, act_fn=self.act_fn)
        post = self.hook_post.observe(recipe(pre), recipe, (pre,))
        return linear(post, self.W_out, self.b_out)


class GatedMLP(MLP):
    """SwiGLU: ``(act(x W_gate) * (x W_in)) W_out``; ``hook_pre`` is the gate, as in TransformerLens."""

    def __init__(self, weights, act_fn, prefix, hooks):
        super().__init__(weights, act_fn, prefix, hooks)
        self.W_gate = weights["W_gate"]  # [d, m]
        self.hook_pre_linear = hooks.add(prefix + "hook_pre_linear", ("batch", "pos", self.W_in.shape[1]))

    def forward(self, x):
        gate = self.hook_pre(linear(x, self.W_gate))
        up = self.hook_pre_linear(linear(x, self.W_in, self.b_in))
        recipe = functools.partial(_gated_activation, act_fn=self.act_fn)
        post = self.hook_post.observe(recipe(gate, up), recipe, (gate, up))
        return linear(post, self.W_out, self.b_out)


def _activation(pre, act_fn):
    return run_op("unary", act_fn, pre)


def _gated_activation(gate, up, act_fn):
    return run_op("unary", act_fn, gate) * up


def make_norm(cfg, weights, name, prefix, hooks):
    if cfg.normalization == "none":
        return IdentityNorm()
    if cfg.normalization == "rmsnorm":
        return RMSNorm(weights.get(name + ".w"), cfg.eps, prefix, hooks)
    return LayerNorm(weights.get(name + ".w"), weights.get(name + ".b"), cfg.eps, prefix, hooks)


class Block:
    """One transformer layer: ``resid_pre -> attn -> resid_mid -> mlp -> resid_post``."""

    def __init__(self, cfg, weights, layer, hooks, rotary=None):
        prefix = f"blocks.{layer}."
        sub = {k[len(prefix):]: v for k, v in weights.items() if k.startswith(prefix)}
        self.layer = layer
        resid = ("batch", "pos", cfg.d_model)
        # Hook points are created in forward order, so hook_names() reads top to bottom.
        self.hook_resid_pre = hooks.add(prefix + "hook_resid_pre", resid)
        self.ln1 = make_norm(cfg, sub, "ln1", prefix + "ln1.", hooks)
        self.attn = Attention({k[5:]: v for k, v in sub.items() if k.startswith("attn.")},
                              cfg, prefix + "attn.", hooks, rotary, layer)
        self.hook_attn_out = hooks.add(prefix + "hook_attn_out", resid)
        if not cfg.parallel_attn_mlp:
            self.hook_resid_mid = hooks.add(prefix + "hook_resid_mid", resid)
        self.ln2 = make_norm(cfg, sub, "ln2", prefix + "ln2.", hooks)
        mlp_weights = {k[4:]: v for k, v in sub.items() if k.startswith("mlp.")}
        self.mlp = (GatedMLP if cfg.gated_mlp else MLP)(mlp_weights, cfg.act_fn, prefix + "mlp.", hooks)
        self.hook_mlp_out = hooks.add(prefix + "hook_mlp_out", resid)
        self.hook_resid_post = hooks.add(prefix + "hook_resid_post", resid)

    def forward(self, resid, mask, positions, past=None):
        resid = self.hook_resid_pre(resid)
        attn_out, present = self.attn.forward(self.ln1.forward(resid), mask, positions, past)
        attn_out = self.hook_attn_out(attn_out)
        resid_mid = self.hook_resid_mid(resid + attn_out)
        mlp_out = self.hook_mlp_out(self.mlp.forward(self.ln2.forward(resid_mid)))
        return self.hook_resid_post(resid_mid + mlp_out), present


class ParallelBlock(Block):
    """GPT-NeoX's parallel residual: ``resid + attn(ln1(resid)) + mlp(ln2(resid))``."""

    def forward(self, resid, mask, positions, past=None):
        resid = self.hook_resid_pre(resid)
        attn_out, present = self.attn.forward(self.ln1.forward(resid), mask, positions, past)
        attn_out = self.hook_attn_out(attn_out)
        mlp_out = self.hook_mlp_out(self.mlp.forward(self.ln2.forward(resid)))
        return self.hook_resid_post(resid + attn_out + mlp_out), present
