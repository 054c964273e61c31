"""Transformer components, one class per concept (nanoGPT style).

Dimension letters used in shape comments:
    b batch, p query positions, k key positions, d d_model, h heads,
    g kv heads, e d_head, m d_mlp, v vocabulary.

Every projection weight is stored ``[in, out]`` (``x @ W``), converted from the
Hugging Face layout once at load time (see ``families.py``). Each component
owns its hook points, named with TransformerLens' names.
"""

import functools
import math
import struct

from ..hooks import HookPoint
from ..tensor import Tensor, matmul, run_op


class HookRegistry(dict):
    """name -> HookPoint, with the symbolic shape of each activation.

    Each point also declares the names of its axes (``HookPoint.axes``), which is
    how interventions find the head and position axes: ``("batch", "pos",
    "features")`` unless given, ``"head"`` / ``"kv_head"`` on per-head activations.
    """

    def __init__(self):
        super().__init__()
        self.shapes = {}

    def add(self, name, shape, axes=("batch", "pos", "features")):
        if len(axes) != len(shape):
            raise ValueError(f"hook point {name}: axes {axes} do not match shape {shape}")
        point = HookPoint(name, axes, sizes=shape)
        self[name] = point
        self.shapes[name] = shape
        return point


def linear(x, weight, bias=None):
    """``x @ weight + bias`` over the last axis; ``weight`` is ``[in, out]``."""
    out = matmul(x, weight)  # leading axes folded into rows by the backend, without a copy
    return out if bias is None else out + bias


class Embed:
    def __init__(self, W_E, hooks):
        self.W_E = W_E  # [v, d]
        self.hook_embed = hooks.add("hook_embed", ("batch", "pos", W_E.shape[1]))

    def forward(self, tokens):
        return self.hook_embed(self.W_E.take(tokens))  # [b, p, d]


class PosEmbed:
    def __init__(self, W_pos, hooks):
        self.W_pos = W_pos  # [n_ctx, d]
        self.hook_pos_embed = hooks.add("hook_pos_embed", ("batch", "pos", W_pos.shape[1]))

    def forward(self, positions):
        return self.hook_pos_embed(self.W_pos.take(positions))  # [b, p, d]


class LayerNorm:
    """LayerNorm; ``hook_normalized`` sees the output after w and b, as in TransformerLens.
    ``w``/``b`` are None once ``fold_ln`` has folded them into the next layer."""

    def __init__(self, w, b, eps, prefix, hooks):
        self.w, self.b, self.eps = w, b, eps
        d = (w.shape[0] if w is not None else "d_model")
        self.hook_scale = hooks.add(prefix + "hook_scale", ("batch", "pos", 1))
        self.hook_normalized = hooks.add(prefix + "hook_normalized", ("batch", "pos", d))

    def forward(self, x):
        scale_point = self.hook_scale
        if scale_point.fns and scale_point.defers(x):  # only cached: kept as a recipe, not computed
            scale_point.defer(functools.partial(_layer_norm_scale, eps=self.eps), (x,))
        elif scale_point.fns:
            centered = x - x.mean(-1, keepdims=True)
            scale, edited = scale_point.run(_layer_norm_scale(x, self.eps, centered))
            if edited:
                out = centered / scale  # [b, p, d]
                if self.w is not None:
                    out = out * self.w
                if self.b is not None:
                    out = out + self.b
                return self.hook_normalized(out)
        # Only observed: the fused op, as with no hooks.
        recipe = functools.partial(_layer_norm, eps=self.eps)
        return self.hook_normalized.observe(recipe(x, self.w, self.b), recipe, (x,), (self.w, self.b))

    def apply(self, x):
        """The norm's output at ``x`` (any leading axes), the fused op, with no hook points."""
        return _layer_norm(x, self.w, self.b, self.eps)


class IdentityNorm:
    """No normalization (TransformerLens' ``normalization_type=None``, as in attention-only toy
    models): the input passes unchanged, and there are no ln hook points."""

    w = b = None

    def forward(self, x):
        return x

    def apply(self, x):
        return x


class RMSNorm:
    """RMSNorm; ``hook_normalized`` sees ``x / scale`` before the weight, as in TransformerLens."""

    def __init__(self, w, eps, prefix, hooks):
        self.w, self.eps = w, eps
        d = (w.shape[0] if w is not None else "d_model")
        self.hook_scale = hooks.add(prefix + "hook_scale", ("batch", "pos", 1))
        self.hook_normalized = hooks.add(prefix + "hook_normalized", ("batch", "pos", d))

    def forward(self, x):
        scale_point, normalized_point = self.hook_scale, self.hook_normalized
        if not (scale_point.fns or normalized_point.fns):
            return _run_norm("rms_norm", x, self.w, self.eps)
        if scale_point.defers(x) and normalized_point.defers(x):  # only cached: recipes
            scale_point.defer(functools.partial(_rms_scale, eps=self.eps), (x,))
            normalized_point.defer(functools.partial(_rms_normalized, eps=self.eps), (x,))
            return _run_norm("rms_norm", x, self.w, self.eps)
        scale, edited_scale = scale_point.run(_rms_scale(x, self.eps))
        out, edited_out = normalized_point.run(x / scale)
        if not (edited_scale or edited_out):  # only observed: the fused op, as with no hooks
            return _run_norm("rms_norm", x, self.w, self.eps)
        return out * self.w if self.w is not None else out

    def apply(self, x):
        """The norm's output at ``x`` (any leading axes), the fused op, with no hook points."""
        return _run_norm("rms_norm", x, self.w, self.eps)


def _layer_norm(x, w, b, eps):
    return run_op("layer_norm", x, w, b, eps)


# The norms' scales and RMSNorm's output, spelled out: what the hooks see, and the recipes
# of the cache's deferred entries (cache.DeferredActivation).
def _layer_norm_scale(x, eps, centered=None):
    """``hook_scale`` of LayerNorm: ``sqrt(var(x) + eps)`` as ``[b, p, 1]``."""
    centered = x - x.mean(-1, keepdims=True) if centered is None else centered
    return (centered.square().mean(-1, keepdims=True) + eps).sqrt()


def _rms_scale(x, eps):
    return (x.square().mean(-1, keepdims=True) + eps).sqrt()


def _rms_normalized(x, eps):
    return x / _rms_scale(x, eps)


def _run_norm(op, x, w, eps):
    return run_op(op, x, w, eps)


class Rotary:
    """Rotary position embedding tables (GPT-NeoX ``rotate_half`` convention)."""

    def __init__(self, rotary_dim, theta, n_ctx, backend):
        self.rotary_dim = rotary_dim
        # Float32 products like Hugging Face's, so angles round the same way.
        inv_freq = [_f32(1.0 / (theta ** (i / rotary_dim))) for i in range(0, rotary_dim, 2)]
        self._inv_freq = inv_freq
        self._backend = backend
        self._tables = None
        # Tables grow on demand: some configs declare contexts of 100k+.
        self._grow(min(n_ctx, 512))

    def _grow(self, n_positions):
        cos, sin = [], []
        for pos in range(n_positions):
            angles = [_f32(pos * f) for f in self._inv_freq] * 2
            cos.extend(math.cos(a) for a in angles)
            sin.extend(math.sin(a) for a in angles)
        shape = (n_positions, self.rotary_dim)
        self._tables = (Tensor(self._backend.from_host(cos, shape, "float32"), self._backend),
                        Tensor(self._backend.from_host(sin, shape, "float32"), self._backend))

    def tables(self, positions, n_positions):
        """cos, sin for ``positions [b, p]`` (all < ``n_positions``) -> each ``[b, p, rotary_dim]``.

        The bound comes from the caller (past + new tokens), so no device readback is needed."""
        needed = max(n_positions, 1)
        if needed > self._tables[0].shape[0]:
            self._grow(max(needed, 2 * self._tables[0].shape[0]))
        cos, sin = self._tables
        return cos.take(positions), sin.take(positions)

    @staticmethod
    def apply(x, cos, sin, rotary_dim):
        return run_op("rotary", x, cos, sin, rotary_dim)


def _f32(value):
    return struct.unpack("f", struct.pack("f", value))[0]
