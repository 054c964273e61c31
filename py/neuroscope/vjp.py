"""The vector-Jacobian products of the primitive op table, one per op of ``backends/ops.py``.

Each rule is written in the primitive ops themselves, so every backend (numpy, torch,
the browser's WebGPU / WebGL2 / wasm kernels) differentiates with its own forward
kernels. A rule takes ``(params, outputs, output gradients, wanted parameter names)``
and returns ``{name: gradient}``; ``autograd.py`` runs the graph and calls them.

References: JAX's per-primitive VJPs; FlashAttention (Dao et al., 2022) for the attention
backward dS = P * (dP - rowsum(dP * P)).
"""

import math

from .backends.ops import BINARY_OPS
from .errors import GradientError

_GELU_NEW_C = math.sqrt(2.0 / math.pi)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def _is_tensor(value):
    return hasattr(value, "_edge")  # a neuroscope Tensor (this module names no Tensor class)


# -- helpers in primitive ops ------------------------------------------------------------

def _op(op, *args, **attrs):
    """Dispatch a primitive op on Tensors (unwrapped here, as ``tensor._run`` does)."""
    like = next(a for a in args if _is_tensor(a) or (isinstance(a, list) and a and _is_tensor(a[0])))
    like = like[0] if isinstance(like, list) else like

    def unwrap(value):
        if _is_tensor(value):
            return value.data
        if isinstance(value, list) and value and _is_tensor(value[0]):
            return [v.data for v in value]
        return value

    result = like.backend.dispatch(op, *map(unwrap, args), **{k: unwrap(v) for k, v in attrs.items()})
    wrap = type(like)
    if isinstance(result, tuple):
        return tuple(None if r is None else wrap(r, like.backend) for r in result)
    return wrap(result, like.backend)


def _full(like, shape, value):
    return type(like)(like.backend.full(tuple(shape), value, "float32"), like.backend)


def _indices(like, values):
    return type(like)(like.backend.from_host(list(values), (len(values),), "int64"), like.backend)


def _where(cond, a, b):
    return _op("where", cond, a, b)


def _unbroadcast(g, shape):
    """``g`` summed back to ``shape``, the inverse of numpy broadcasting."""
    shape = tuple(shape)
    if tuple(g.shape) == shape:
        return g
    extra = g.ndim - len(shape)
    axes = tuple(range(extra)) + tuple(extra + i for i, size in enumerate(shape)
                                       if size == 1 and g.shape[extra + i] != 1)
    return (g.sum(axes) if axes else g).reshape(shape)


def _wrap_axis(indices, size):
    return _where(indices < 0, indices + size, indices)


def _take_adjoint(g, indices, axis, size):
    """The adjoint of ``gather`` (numpy take) as a one-hot matmul (there is no scatter op):
    g ``[*pre, *indices.shape, *post]`` -> ``[*pre, size, *post]``, repeats summed."""
    count, pre, post = indices.size, tuple(g.shape[:axis]), tuple(g.shape[axis + indices.ndim:])
    one_hot = _op("binary", "eq", _wrap_axis(indices, size).reshape(count, 1),
                  type(g)(g.backend.arange(0, size, "int64"), g.backend).reshape(1, size))
    flat = g.reshape(math.prod(pre), count, math.prod(post))
    summed = _op("matmul", one_hot.astype("float32"), flat, transpose_a=True)  # [pre, size, post]
    return summed.reshape(pre + (size,) + post)


def _take_along_adjoint(g, indices, axis, size):
    """The adjoint of ``take_along``: g ``[..., k, ...]`` -> ``[..., size, ...]`` on ``axis``."""
    positions = type(g)(g.backend.arange(0, size, "int64"), g.backend)
    one_hot = _op("binary", "eq", _wrap_axis(indices, size).unsqueeze(-1), positions)  # [*indices, size]
    spread = _where(one_hot, g.unsqueeze(-1), 0.0).sum(axis)  # [*g without axis, size]
    last = spread.ndim - 1
    return spread.permute(tuple(range(axis)) + (last,) + tuple(range(axis, last)))


# -- the VJP rules: (params, outputs, output gradients, wanted parameters) -> {name: gradient}

def _gelu_vjp(x, y, g):
    # d/dx x Phi(x) = Phi(x) + x phi(x); Phi = gelu(x) / x, as there is no erf op.
    is_zero = x.eq(0.0)
    cdf = _where(is_zero, 0.5, y / _where(is_zero, 1.0, x))
    pdf = (x * x * -0.5).exp() * _INV_SQRT_2PI
    return g * (cdf + x * pdf)


def _gelu_new_vjp(x, y, g):
    # y = 0.5 x (1 + t), t = tanh(u), u = c (x + 0.044715 x^3):
    # dy/dx = 0.5 (1 + t) + 0.5 x (1 - t^2) c (1 + 3 * 0.044715 x^2). tanh, not the forward's
    # sigmoid(2u), so that large negative x does not overflow an exp.
    t = ((x + x * x * x * 0.044715) * _GELU_NEW_C).tanh()
    du = (x * x * (3.0 * 0.044715) + 1.0) * _GELU_NEW_C
    return g * ((t + 1.0) * 0.5 + x * (1.0 - t * t) * du * 0.5)


def _silu_vjp(x, y, g):
    s = _op("unary", "sigmoid", x)
    return g * s * (x * (1.0 - s) + 1.0)


UNARY_VJPS = {
    "neg": lambda x, y, g: -g,
    "exp": lambda x, y, g: g * y,
    "log": lambda x, y, g: g / x,
    "sqrt": lambda x, y, g: g / (y * 2.0),
    "rsqrt": lambda x, y, g: g * y * y * y * -0.5,
    "tanh": lambda x, y, g: g * (1.0 - y * y),
    "abs": lambda x, y, g: _where(x > 0.0, g, 0.0) - _where(x < 0.0, g, 0.0),
    "square": lambda x, y, g: g * x * 2.0,
    "relu": lambda x, y, g: _where(x > 0.0, g, 0.0),
    "sigmoid": lambda x, y, g: g * y * (1.0 - y),
    "silu": _silu_vjp,
    "gelu": _gelu_vjp,
    "gelu_new": _gelu_new_vjp,
}


def _unary(p, outs, gs, wants):
    return {"x": UNARY_VJPS[p["op"]](p["x"], outs[0], gs[0])}


def _pow_grads(a, b, y, g, wants):
    out = {}
    if "a" in wants:  # d/da a^b = b a^(b-1), 0 where b = 0 (as torch)
        if not _is_tensor(b):
            out["a"] = g * 0.0 if b == 0 else g * _op("binary", "pow", a, b - 1) * b
        else:
            out["a"] = _where(b.eq(0.0), 0.0, g * b * _op("binary", "pow", a, b - 1.0))
    if "b" in wants:  # d/db a^b = a^b log a, 0 where a = 0 (as torch)
        log_a = math.log(a) if not _is_tensor(a) else _where(a.eq(0.0), 1.0, a).log()
        out["b"] = g * y * log_a
    return out


def _binary(p, outs, gs, wants):
    op, a, b, g, y = p["op"], p["a"], p["b"], gs[0], outs[0]
    if op == "add":
        grads = {"a": g, "b": g}
    elif op == "sub":
        grads = {"a": g, "b": -g if "b" in wants else None}
    elif op == "mul":
        grads = {"a": g * b if "a" in wants else None, "b": g * a if "b" in wants else None}
    elif op == "div":
        grads = {"a": g / b if "a" in wants else None, "b": -(g * y) / b if "b" in wants else None}
    elif op == "pow":
        grads = _pow_grads(a, b, y, g, wants)
    elif op in ("maximum", "minimum"):  # ties split the gradient evenly (as torch)
        wins = "gt" if op == "maximum" else "lt"
        tie = _where(_op("binary", "eq", a, b), g * 0.5, 0.0)
        grads = {"a": _where(_op("binary", wins, a, b), g, 0.0) + tie if "a" in wants else None,
                 "b": _where(_op("binary", wins, b, a), g, 0.0) + tie if "b" in wants else None}
    else:
        raise GradientError(f"binary {op} has no gradient")
    return {name: _unbroadcast(grads[name], p[name].shape) for name in wants if grads.get(name) is not None}


def _where_vjp(p, outs, gs, wants):
    g, cond = gs[0], p["cond"]
    grads = {"a": lambda: _where(cond, g, 0.0), "b": lambda: _where(cond, 0.0, g)}
    return {name: _unbroadcast(grads[name](), p[name].shape) for name in wants if name in grads}


def _cast(p, outs, gs, wants):
    return {"x": gs[0].astype(p["x"].dtype)}


def _matmul(p, outs, gs, wants):
    a, b, ta, tb, g = p["a"], p["b"], p["transpose_a"], p["transpose_b"], gs[0]
    out = {}
    if "a" in wants:  # dA = g B^T, A = a or a^T
        da = _op("matmul", b, g, transpose_a=tb, transpose_b=True) if ta else \
            _op("matmul", g, b, transpose_b=not tb)
        out["a"] = _unbroadcast(da, a.shape)
    if "b" in wants:  # dB = A^T g, B = b or b^T
        if a.ndim > 2 and b.ndim == 2 and not ta:  # x @ W: one product over all rows
            a, g = a.reshape(-1, a.shape[-1]), g.reshape(-1, g.shape[-1])
        db = _op("matmul", g, a, transpose_a=True, transpose_b=ta) if tb else \
            _op("matmul", a, g, transpose_a=not ta)
        out["b"] = _unbroadcast(db, b.shape)
    return out


def _reduce(p, outs, gs, wants):
    op, x, axes = p["op"], p["x"], tuple(p["axes"])
    kept = tuple(1 if i in axes else size for i, size in enumerate(x.shape))
    g = gs[0].reshape(kept)
    count = math.prod(x.shape[a] for a in axes)
    if op == "sum":
        gx = g.broadcast_to(x.shape)
    elif op == "mean":
        gx = (g / float(count)).broadcast_to(x.shape)
    elif op == "var":  # numpy's population variance (ddof 0)
        gx = g * (x - x.mean(axes, keepdims=True)) * (2.0 / count)
    else:  # max, min: split evenly between ties (as torch's amax / amin)
        hits = x.eq(outs[0].reshape(kept)).astype("float32")
        gx = g * hits / hits.sum(axes, keepdims=True)
    return {"x": gx}


def _flip(t, axis):
    return _op("slice", t, tuple((0, size, 1) for size in t.shape[:axis]) + ((t.shape[axis] - 1, -1, -1),))


def _cumsum(p, outs, gs, wants):
    axis = p["axis"]
    return {"x": _flip(_flip(gs[0], axis).cumsum(axis), axis)}


def _softmax(p, outs, gs, wants):
    y, g, axis = outs[0], gs[0], p["axis"]
    return {"x": y * (g - (g * y).sum(axis, keepdims=True))}


def _log_softmax(p, outs, gs, wants):
    y, g, axis = outs[0], gs[0], p["axis"]
    return {"x": g - y.exp() * g.sum(axis, keepdims=True)}


def _normalized_grads(p, g, xhat, scale, wants, centered):
    weight, out = p["weight"], {}
    if "weight" in wants:
        out["weight"] = _unbroadcast(g * xhat, weight.shape)
    if "bias" in wants:
        out["bias"] = _unbroadcast(g, p["bias"].shape)
    if "x" in wants:
        gh = g * weight if weight is not None else g
        inner = gh - xhat * (gh * xhat).mean(-1, keepdims=True)
        out["x"] = (inner - gh.mean(-1, keepdims=True) if centered else inner) * scale
    return out


def _layer_norm(p, outs, gs, wants):
    x = p["x"]
    centered = x - x.mean(-1, keepdims=True)
    rstd = _op("unary", "rsqrt", (centered * centered).mean(-1, keepdims=True) + p["eps"])
    return _normalized_grads(p, gs[0], centered * rstd, rstd, wants, True)


def _rms_norm(p, outs, gs, wants):
    x = p["x"]
    rstd = _op("unary", "rsqrt", (x * x).mean(-1, keepdims=True) + p["eps"])
    return _normalized_grads(p, gs[0], x * rstd, rstd, wants, False)


def _gather(p, outs, gs, wants):
    x, axis = p["x"], p["axis"]
    return {"x": _take_adjoint(gs[0], p["indices"], axis, x.shape[axis])}


def _take_along(p, outs, gs, wants):
    x, axis = p["x"], p["axis"]
    return {"x": _unbroadcast(_take_along_adjoint(gs[0], p["indices"], axis, x.shape[axis]), x.shape)}


def _topk(p, outs, gs, wants):
    x, axis = p["x"], p["axis"]
    return {"x": _take_along_adjoint(gs[0], outs[1], axis, x.shape[axis])}


def _has_repeats(key):
    return any(isinstance(item, list) and len(set(item)) != len(item) for item in key)


def _slice(p, outs, gs, wants):
    x, g, key = p["x"], gs[0], list(p["key"])
    out_axis = 0
    for axis, item in enumerate(key):
        if isinstance(item, list):
            if len(set(item)) != len(item):  # repeated indices: sum their gradients, one-hot
                g = _take_adjoint(g, _indices(g, item), out_axis, x.shape[axis])
                key[axis] = (0, x.shape[axis], 1)
            out_axis += 1
        elif isinstance(item, tuple):
            out_axis += 1
    return {"x": _op("set_slice", _full(g, x.shape, 0.0), tuple(key), g)}


def _set_slice(p, outs, gs, wants):
    g, key, out = gs[0], p["key"], {}
    if "x" in wants:
        out["x"] = _op("set_slice", g, key, 0.0)
    if "value" in wants:
        if _has_repeats(key):
            raise GradientError(f"set_slice with repeated indices {key}: only the last write of each "
                                "repeated index lands, so the value's gradient is refused; use distinct "
                                "indices")
        out["value"] = _unbroadcast(_op("slice", g, key), p["value"].shape)
    return out


def _concat(p, outs, gs, wants):
    g, axis, start, grads = gs[0], p["axis"], 0, []
    lead = tuple((0, size, 1) for size in g.shape[:axis])
    for x in p["xs"]:
        size = x.shape[axis]
        grads.append(_op("slice", g, lead + ((start, start + size, 1),)))
        start += size
    return {"xs": grads}


def _reshape(p, outs, gs, wants):
    return {"x": gs[0].reshape(p["x"].shape)}


def _permute(p, outs, gs, wants):
    axes = tuple(p["axes"])
    return {"x": gs[0].permute(tuple(axes.index(i) for i in range(len(axes))))}


def _broadcast_to(p, outs, gs, wants):
    return {"x": _unbroadcast(gs[0], p["x"].shape)}


def _rotary(p, outs, gs, wants):
    if "cos" in wants or "sin" in wants:
        raise GradientError("rotary: gradients with respect to cos / sin are not supported (they are "
                            "position tables); detach them")
    # y = cos * r + sin * rotate_half(r); the adjoint of rotate_half is -rotate_half, and
    # rotate_half(sin * g) = swap(sin) * rotate_half(g), so dr = rotary(g, cos, -swap(sin))
    # (= -sin for the usual tables, whose halves are equal).
    sin, dim = p["sin"], p["rotary_dim"]
    half = dim // 2
    swapped = _op("concat", [sin[..., half:dim], sin[..., :half]], sin.ndim - 1)
    return {"x": _op("rotary", gs[0], p["cos"], -swapped, dim)}


def _attention(p, outs, gs, wants):
    q, k, v, scale = p["q"], p["k"], p["v"], p["scale"]
    gz, gpattern = gs
    batch, _, heads, _ = q.shape
    k_len, kv_heads = k.shape[1], k.shape[2]
    group = heads // kv_heads
    pattern = outs[1] if outs[1] is not None else \
        _op("attention", q, k, v, p["mask"], scale, True)[1]  # [batch, head, q_pos, k_pos]

    def heads_first(t):  # [batch, pos, head, d] <-> [batch, head, pos, d]
        return t.permute(0, 2, 1, 3)

    def repeat(t):  # [batch, k_pos, kv_head, d] -> [batch, k_pos, head, d]
        if group == 1:
            return t
        d = t.shape[-1]
        return t.unsqueeze(3).broadcast_to(batch, k_len, kv_heads, group, d).reshape(batch, k_len, heads, d)

    def fold(t):  # [batch, k_pos, head, d] -> [batch, k_pos, kv_head, d]: sum each group
        return t if group == 1 else t.reshape(batch, k_len, kv_heads, group, t.shape[-1]).sum(3)

    out = {}
    d_pattern = gpattern
    if gz is not None:
        dz = heads_first(gz)  # [batch, head, q_pos, d_head]
        from_z = _op("matmul", dz, heads_first(repeat(v)), transpose_b=True)  # [batch, head, q_pos, k_pos]
        d_pattern = from_z if d_pattern is None else d_pattern + from_z
        if "v" in wants:
            out["v"] = fold(heads_first(_op("matmul", pattern, dz, transpose_a=True)))
    elif "v" in wants:
        out["v"] = _full(v, v.shape, 0.0)
    d_scores = pattern * (d_pattern - (d_pattern * pattern).sum(-1, keepdims=True)) * scale
    if "q" in wants:
        out["q"] = heads_first(_op("matmul", d_scores, heads_first(repeat(k))))
    if "k" in wants:
        out["k"] = fold(heads_first(_op("matmul", d_scores, heads_first(q), transpose_a=True)))
    return out


VJPS = {
    "unary": _unary, "binary": _binary, "where": _where_vjp, "cast": _cast, "matmul": _matmul,
    "reduce": _reduce, "cumsum": _cumsum, "softmax": _softmax, "log_softmax": _log_softmax,
    "layer_norm": _layer_norm, "rms_norm": _rms_norm, "gather": _gather, "take_along": _take_along,
    "slice": _slice, "set_slice": _set_slice, "concat": _concat, "reshape": _reshape,
    "permute": _permute, "broadcast_to": _broadcast_to, "topk": _topk, "rotary": _rotary,
    "attention": _attention,
}
DIFFERENTIABLE_BINARY = ("add", "sub", "mul", "div", "pow", "maximum", "minimum")
# Ops (and sub-ops, as "unary.isfinite") whose results are integers or bools: no gradient.
NON_DIFFERENTIABLE = frozenset(
    {"argmax", "unary.isfinite"} | {f"binary.{op}" for op in BINARY_OPS if op not in DIFFERENTIABLE_BINARY})
