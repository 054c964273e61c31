"""Multi-head causal self-attention with grouped-query heads and rotary positions.

Shapes (letters as in ``components.py``): q ``[b, p, h, e]``, k/v ``[b, k, g, e]``,
scores and pattern ``[b, h, p, k]``, z ``[b, p, h, e]``. The fused ``attention``
op gives z. A hook on the scores or the pattern gets them spelled out; z comes
from them only when a hook edited one, so observing never changes the numbers.
"""

import functools

from ..tensor import arange, cat, run_op, where
from .components import Rotary, linear

_NEG_INF = float("-inf")
_Q_AXES = ("batch", "pos", "head", "d_head")
_KV_AXES = ("batch", "pos", "kv_head", "d_head")
_PATTERN_AXES = ("batch", "head", "pos", "key_pos")
_RESULT_AXES = ("batch", "pos", "head", "d_model")


class Attention:
    def __init__(self, weights, cfg, prefix, hooks, rotary=None, layer=0):
        self.W_Q, self.b_Q = weights["W_Q"], weights.get("b_Q")  # [d, h*e], [h*e]
        self.W_K, self.b_K = weights["W_K"], weights.get("b_K")  # [d, g*e], [g*e]
        self.W_V, self.b_V = weights["W_V"], weights.get("b_V")  # [d, g*e], [g*e]
        self.W_O, self.b_O = weights["W_O"], weights.get("b_O")  # [h*e, d], [d]
        self.n_heads, self.n_kv_heads, self.d_head = cfg.n_heads, cfg.n_kv_heads, cfg.d_head
        self.scale = cfg.attn_scale / ((layer + 1) if cfg.scale_attn_by_inverse_layer_idx else 1)
        self.rotary = rotary
        self.rotary_dim = cfg.rotary_dim
        h, g, e = cfg.n_heads, cfg.n_kv_heads, cfg.d_head
        self.hook_q = hooks.add(prefix + "hook_q", ("batch", "pos", h, e), _Q_AXES)
        self.hook_k = hooks.add(prefix + "hook_k", ("batch", "pos", g, e), _KV_AXES)
        self.hook_v = hooks.add(prefix + "hook_v", ("batch", "pos", g, e), _KV_AXES)
        if rotary is not None:
            self.hook_rot_q = hooks.add(prefix + "hook_rot_q", ("batch", "pos", h, e), _Q_AXES)
            self.hook_rot_k = hooks.add(prefix + "hook_rot_k", ("batch", "pos", g, e), _KV_AXES)
        square = ("batch", h, "pos", "key_pos")
        self.hook_attn_scores = hooks.add(prefix + "hook_attn_scores", square, _PATTERN_AXES)
        self.hook_pattern = hooks.add(prefix + "hook_pattern", square, _PATTERN_AXES)
        self.hook_z = hooks.add(prefix + "hook_z", ("batch", "pos", h, e), _Q_AXES)
        self.hook_result = (hooks.add(prefix + "hook_result", ("batch", "pos", h, cfg.d_model), _RESULT_AXES)
                            if cfg.use_attn_result else None)

    def forward(self, x, mask, positions, past=None):
        """x ``[b, p, d]`` -> (out ``[b, p, d]``, (k, v) for the key/value cache)."""
        b, p, _ = x.shape
        h, g, e = self.n_heads, self.n_kv_heads, self.d_head
        q = self.hook_q(linear(x, self.W_Q, self.b_Q).reshape(b, p, h, e))
        k = self.hook_k(linear(x, self.W_K, self.b_K).reshape(b, p, g, e))
        v = self.hook_v(linear(x, self.W_V, self.b_V).reshape(b, p, g, e))
        if self.rotary is not None:
            n_keys = k.shape[1] + (past[0].shape[1] if past is not None else 0)
            cos, sin = self.rotary.tables(positions, n_keys)  # [b, p, rotary_dim]
            q = self.hook_rot_q(Rotary.apply(q, cos, sin, self.rotary_dim))
            k = self.hook_rot_k(Rotary.apply(k, cos, sin, self.rotary_dim))
        if past is not None:
            k, v = cat([past[0], k], axis=1), cat([past[1], v], axis=1)
        z = None
        scores_point, pattern_point = self.hook_attn_scores, self.hook_pattern
        observed = scores_point.fns or pattern_point.fns
        if observed and scores_point.defers(q, k) and pattern_point.defers(q, k):
            # Only cached: recipes, so the scores and pattern are computed when first read.
            scores_point.defer(functools.partial(attention_scores, scale=self.scale), (q, k), (mask,))
            pattern_point.defer(functools.partial(_attention_pattern, scale=self.scale), (q, k), (mask,))
        elif observed:
            z = self._explicit(q, k, v, mask)
        if z is None:  # the fused op: only cached, z is a recipe of q, k and v too
            z = self.hook_z.observe(_attention(q, k, v, mask, self.scale)[0],
                                    functools.partial(_attention_z, scale=self.scale), (q, k, v), (mask,))
        else:
            z = self.hook_z(z)  # [b, p, h, e]
        if self.hook_result is not None:
            # Per-head writes to the residual stream: z_h @ W_O[h].
            w_o = self.W_O.reshape(h, e, -1)  # [h, e, d]
            result = self.hook_result((z.permute(2, 0, 1, 3).reshape(h, b * p, e) @ w_o)
                                      .reshape(h, b, p, -1).permute(1, 2, 0, 3))  # [b, p, h, d]
            out = result.sum(2)
            out = out + self.b_O if self.b_O is not None else out
        else:
            out = linear(z.reshape(b, p, h * e), self.W_O, self.b_O)
        return out, (k, v)

    def _explicit(self, q, k, v, mask):
        scores, edited_scores = self.hook_attn_scores.run(attention_scores(q, k, mask, self.scale))
        pattern, edited_pattern = self.hook_pattern.run(scores.softmax(-1))
        if not (edited_scores or edited_pattern):
            return None  # only observed: the fused op gives z, as with no hooks
        v = _per_query_head(v, q.shape[2])
        return (pattern @ v.permute(0, 2, 1, 3)).permute(0, 2, 1, 3)  # [b, p, h, e]

    # -- TransformerLens-shaped views of the weights ---------------------------
    @property
    def W_Q_heads(self):
        """``[h, d, e]`` as TransformerLens' ``W_Q``."""
        return self.W_Q.reshape(-1, self.n_heads, self.d_head).permute(1, 0, 2)

    @property
    def W_O_heads(self):
        """``[h, e, d]`` as TransformerLens' ``W_O``."""
        return self.W_O.reshape(self.n_heads, self.d_head, -1)


def causal_mask(q_len, k_len, like):
    """Boolean ``[1, q_len, k_len]``: query i (aligned to the last keys) sees keys <= it."""
    queries = arange(k_len - q_len, k_len, backend=like.backend).reshape(1, q_len, 1)
    keys = arange(0, k_len, backend=like.backend).reshape(1, 1, k_len)
    return keys <= queries


def _per_query_head(x, h):
    """k or v ``[b, k, g, e]`` with each key/value head repeated for its group: ``[b, k, h, e]``."""
    b, k_len, g, e = x.shape
    if g == h:
        return x
    return x.unsqueeze(3).broadcast_to(b, k_len, g, h // g, e).reshape(b, k_len, h, e)


def attention_scores(q, k, mask, scale):
    """``hook_attn_scores`` ``[b, h, p, k]``: scaled ``q . k``, -inf where a query may not look."""
    b, p, h, e = q.shape
    k_len = k.shape[1]
    scores = (q.permute(0, 2, 1, 3) @ _per_query_head(k, h).permute(0, 2, 3, 1)) * scale  # [b, h, p, k]
    allowed = mask.unsqueeze(1) if mask is not None else causal_mask(p, k_len, q)
    return where(allowed, scores, _NEG_INF)


def _attention_pattern(q, k, mask, scale):
    return attention_scores(q, k, mask, scale).softmax(-1)


def _attention(q, k, v, mask, scale):
    return run_op("attention", q, k, v, mask, scale, False)


def _attention_z(q, k, v, mask, scale):
    return _attention(q, k, v, mask, scale)[0]
