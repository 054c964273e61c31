"""Output shape and dtype of every primitive op, computed without running it.

Backends whose tensors live elsewhere (the JS bridge: WebGPU, WebGL2, wasm)
allocate the result before the kernel runs, so they need the shape up front.
The rules are those of the numpy reference; ``tests/test_shapes.py`` checks
them against it op by op. Dtype rules, simplified for the browser: floating
results are float32; integer results int64 (stored as int32 on the device);
comparisons and ``isfinite`` give bool.
"""

from ..errors import ShapeError
from .base import BINARY_OPS, REDUCE_OPS, UNARY_OPS

_COMPARISONS = {"eq", "ne", "lt", "le", "gt", "ge"}
FLOAT, INT, BOOL = "float32", "int64", "bool"


def _is_float(dtype):
    return dtype.startswith("float")


def broadcast(*shapes):
    ndim = max((len(s) for s in shapes), default=0)
    out = []
    for axis in range(-ndim, 0):
        sizes = {s[axis] for s in shapes if len(s) >= -axis} - {1}
        if len(sizes) > 1:
            raise ShapeError(f"shapes {[list(s) for s in shapes]} do not broadcast")
        out.append(sizes.pop() if sizes else 1)
    return tuple(out)


def _meta(value):
    """(shape, dtype) of a handle or a Python scalar."""
    if isinstance(value, bool):
        return (), BOOL
    if isinstance(value, int):
        return (), "pyint"
    if isinstance(value, float):
        return (), "pyfloat"
    return tuple(value.shape), str(value.dtype)


def _binary_dtype(op, a, b):
    if op in _COMPARISONS:
        return BOOL
    kinds = {a, b}
    if any(_is_float(k) for k in kinds) or "pyfloat" in kinds or op == "div":
        return FLOAT
    if kinds <= {BOOL} and op in ("mul", "maximum", "minimum"):
        return BOOL
    return INT


def infer(op, *args, **attrs):
    """[(shape, dtype), ...] of the outputs of ``op`` on handles / scalars ``args``."""
    return _RULES[op](*args, **attrs)


def _unary(op, x):
    assert op in UNARY_OPS
    shape, dtype = _meta(x)
    return [(shape, BOOL if op == "isfinite" else dtype)]


def _binary(op, a, b):
    assert op in BINARY_OPS
    (sa, da), (sb, db) = _meta(a), _meta(b)
    return [(broadcast(sa, sb), _binary_dtype(op, da, db))]


def _where(cond, a, b):
    (sc, _), (sa, da), (sb, db) = _meta(cond), _meta(a), _meta(b)
    return [(broadcast(sc, sa, sb), _binary_dtype("add", da, db))]


def _cast(x, dtype):
    return [(_meta(x)[0], dtype)]


def _matmul(a, b, transpose_a=False, transpose_b=False):
    (sa, da), (sb, db) = _meta(a), _meta(b)
    if len(sa) < 2 or len(sb) < 2:
        raise ShapeError(f"matmul needs at least 2-d operands, got {list(sa)} and {list(sb)}")
    m, k = (sa[-1], sa[-2]) if transpose_a else (sa[-2], sa[-1])
    k2, n = (sb[-1], sb[-2]) if transpose_b else (sb[-2], sb[-1])
    if k != k2:
        raise ShapeError(f"matmul inner sizes differ: {list(sa)} @ {list(sb)} "
                         f"(transpose_a={transpose_a}, transpose_b={transpose_b})")
    return [(broadcast(sa[:-2], sb[:-2]) + (m, n), _binary_dtype("mul", da, db))]


def _reduce(op, x, axes, keepdims):
    assert op in REDUCE_OPS
    shape, dtype = _meta(x)
    out = tuple(1 if i in axes else s for i, s in enumerate(shape)) if keepdims else \
        tuple(s for i, s in enumerate(shape) if i not in axes)
    if op in ("mean", "var"):
        dtype = FLOAT
    elif op == "sum" and dtype == BOOL:
        dtype = INT  # counting a mask
    return [(out, dtype)]


def _argmax(x, axis):
    shape, _ = _meta(x)
    return [(shape[:axis] + shape[axis + 1:], INT)]


def _cumsum(x, axis):
    shape, dtype = _meta(x)
    return [(shape, INT if dtype == BOOL else dtype)]


def _same(x, *rest, **attrs):
    return [_meta(x)]


def _gather(x, indices, axis):
    (sx, dx), (si, _) = _meta(x), _meta(indices)
    return [(sx[:axis] + si + sx[axis + 1:], dx)]


def _take_along(x, indices, axis):
    (sx, dx), (si, _) = _meta(x), _meta(indices)
    expect = list(sx)
    expect[axis] = si[axis]
    return [(broadcast(tuple(expect), si), dx)]


def _slice(x, key):
    shape, dtype = _meta(x)
    out = []
    for item in key:
        if isinstance(item, tuple):
            out.append(len(range(*item)))
        elif isinstance(item, list):
            out.append(len(item))
        # an int drops the axis
    return [(tuple(out) + shape[len(key):], dtype)]


def _concat(xs, axis):
    metas = [_meta(x) for x in xs]
    first = metas[0][0]
    for shape, _ in metas[1:]:
        if shape[:axis] + shape[axis + 1:] != first[:axis] + first[axis + 1:]:
            raise ShapeError(f"cannot concat shapes {[list(m[0]) for m in metas]} on axis {axis}")
    total = sum(shape[axis] for shape, _ in metas)
    return [(first[:axis] + (total,) + first[axis + 1:], metas[0][1])]


def _reshape(x, shape):
    return [(tuple(shape), _meta(x)[1])]


def _permute(x, axes):
    shape, dtype = _meta(x)
    return [(tuple(shape[a] for a in axes), dtype)]


def _broadcast_to(x, shape):
    source, dtype = _meta(x)
    if broadcast(source, tuple(shape)) != tuple(shape):
        raise ShapeError(f"cannot broadcast {list(source)} to {list(shape)}")
    return [(tuple(shape), dtype)]


def _topk(x, k, axis):
    shape, dtype = _meta(x)
    out = shape[:axis] + (k,) + shape[axis + 1:]
    return [(out, dtype), (out, INT)]


def _attention(q, k, v, mask, scale, return_pattern):
    (sq, dq), (sk, _), (sv, _) = _meta(q), _meta(k), _meta(v)
    batch, q_len, heads, _ = sq
    outputs = [((batch, q_len, heads, sv[-1]), dq)]
    if return_pattern:
        outputs.append(((batch, heads, q_len, sk[1]), dq))
    return outputs


_RULES = {
    "unary": _unary, "binary": _binary, "where": _where, "cast": _cast, "matmul": _matmul,
    "reduce": _reduce, "argmax": _argmax, "cumsum": _cumsum, "softmax": _same, "log_softmax": _same,
    "layer_norm": _same, "rms_norm": _same, "gather": _gather, "take_along": _take_along,
    "slice": _slice, "set_slice": _same, "concat": _concat, "reshape": _reshape,
    "permute": _permute, "broadcast_to": _broadcast_to, "topk": _topk, "rotary": _same,
    "attention": _attention,
}
