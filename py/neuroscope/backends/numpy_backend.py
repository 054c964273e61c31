"""The numpy backend: the reference definition of every primitive op.

Each method is the specification the WebGPU, WebGL2 and CPU kernels are tested
against: one per op of the op table (``ops.py``), with its parameter names and
defaults (``tests/test_op_table.py`` checks the signatures). Work is done in
place on fresh buffers where that saves a pass over memory; inputs are never
modified.
"""

import math

import numpy as np

from .base import Backend
from .ops import BINARY_OPS, REDUCE_OPS, UNARY_OPS, check_matmul_operands

_SAFETENSORS_DTYPES = {
    "F64": np.float64, "F32": np.float32, "F16": np.float16,
    "I64": np.int64, "I32": np.int32, "I16": np.int16, "I8": np.int8,
    "U8": np.uint8, "BOOL": np.bool_,
}

_GELU_NEW_C = math.sqrt(2.0 / math.pi)


def _erf(x):
    # numpy has no erf. Abramowitz & Stegun 7.1.26, evaluated in float64: its
    # 1.5e-7 absolute error is below float32 resolution for gelu's use. The
    # GPU kernels use the same formula.
    t64 = x.astype(np.float64)
    sign = np.sign(t64)
    a = np.abs(t64)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741
                + t * (-1.453152027 + t * 1.061405429))))
    return (sign * (1.0 - poly * np.exp(-a * a))).astype(x.dtype)


def _gelu_new(x):
    # GPT-2's approximation 0.5 x (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3),
    # evaluated as x / (1 + exp(-2u)): the same function, since 0.5 (1 + tanh(u)) =
    # sigmoid(2u). One exp in place of a tanh and half the passes over memory (twice
    # as fast), and no cancellation in 1 + tanh(u) for very negative x.
    inner = x * x
    inner *= -2.0 * 0.044715 * _GELU_NEW_C
    inner -= 2.0 * _GELU_NEW_C
    inner *= x  # -2u
    with np.errstate(over="ignore"):  # exp(-2u) = inf for x < -10 gives the right 0
        np.exp(inner, out=inner)
    inner += 1.0
    return np.divide(x, inner, out=inner)


def _gelu(x):
    return (0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))).astype(x.dtype, copy=False)


def _silu(x):
    out = np.negative(x)
    np.exp(out, out=out)
    out += 1.0
    np.divide(x, out, out=out)
    return out


_UNARY = {
    "neg": np.negative, "exp": np.exp, "log": np.log, "sqrt": np.sqrt,
    "rsqrt": lambda x: 1.0 / np.sqrt(x), "tanh": np.tanh, "abs": np.abs,
    "square": np.square, "relu": lambda x: np.maximum(x, 0),
    "sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)), "silu": _silu,
    "gelu": _gelu, "gelu_new": _gelu_new, "isfinite": np.isfinite,
}
_BINARY = {
    "add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.true_divide,
    "pow": np.power, "maximum": np.maximum, "minimum": np.minimum,
    "eq": np.equal, "ne": np.not_equal, "lt": np.less, "le": np.less_equal,
    "gt": np.greater, "ge": np.greater_equal,
}
assert set(_UNARY) == set(UNARY_OPS) and set(_BINARY) == set(BINARY_OPS)


def _index(key):
    """Translate the backend's slice key into a numpy index tuple."""
    out = []
    for item in key:
        if isinstance(item, tuple):
            start, stop, step = item
            # A normalised triple is range() arguments: stop -1 with a negative step
            # means "through index 0", which slice() spells as None.
            out.append(slice(start, None if stop < 0 else stop, step))
        elif isinstance(item, list):
            out.append(np.asarray(item, dtype=np.int64))
        elif isinstance(item, np.ndarray):
            out.append(item)
        else:
            out.append(item)
    return tuple(out)


def _needs_outer(index):
    """numpy would index several lists (or a list and ints) jointly and may move the
    axes to the front; the backend contract is outer indexing in axis order."""
    arrays = sum(isinstance(i, np.ndarray) for i in index)
    ints = sum(isinstance(i, (int, np.integer)) for i in index)
    return arrays > 1 or (arrays == 1 and ints > 0)


def _table_float(result, *operands):
    """``result`` as float32 where numpy widened it to float64 but no operand was float64
    (Python scalars and int tensors): the op table's float is float32 on every backend,
    and a float16 tensor with an int one stays float16 (ops.py)."""
    if result.dtype == np.float64:
        dtypes = {getattr(x, "dtype", None) for x in operands}
        if np.float64 not in dtypes:
            half = np.float16 in dtypes and np.float32 not in dtypes
            return result.astype(np.float16 if half else np.float32)
    return result


def _top_rows(rows, k):
    """Indices ``[r, k]`` of each row's ``k`` largest values, largest first, ties by lower index:
    what a stable argsort of ``-rows`` gives, from a partition (``O(n)``) plus a sort of the
    few candidates (the values at or above each row's k-th largest)."""
    kth = -np.partition(-rows, k - 1, axis=-1)[:, k - 1]  # [r]
    row, column = np.nonzero(rows >= kth[:, None])
    order = np.lexsort((column, -rows[row, column], row))  # by row, value descending, index
    row, column = row[order], column[order]
    starts = np.searchsorted(row, np.arange(rows.shape[0]))
    rank = np.arange(row.shape[0]) - starts[row]
    keep = rank < k
    out = np.empty((rows.shape[0], k), dtype=np.int64)
    out[row[keep], rank[keep]] = column[keep]
    return out


class NumpyBackend(Backend):
    name = "numpy"
    reads_synchronously = True
    weight_dtypes = ("float32", "float16")  # numpy has no bfloat16

    # -- allocator -----------------------------------------------------------
    def from_host(self, data, shape, dtype):
        # Always a copy: a view of the caller's array would change whenever the caller edits
        # it (a steering vector, a probe's weights), and tensors never change.
        array = np.array(data, dtype=dtype)
        return array.reshape(shape) if shape is not None else array

    def from_bytes(self, buffer, source_dtype, shape, dtype="float32"):
        if source_dtype == "BF16":
            # bfloat16 is the top half of a float32: widen by shifting 16 bits, in place, so
            # a big tensor costs one float32 array (not two) on top of the file.
            widened = np.frombuffer(buffer, dtype="<u2").astype(np.uint32)
            widened <<= 16
            array = widened.view(np.float32)
            return (array if np.dtype(dtype) == np.float32 else array.astype(dtype)).reshape(shape)
        array = np.frombuffer(buffer, dtype=np.dtype(_SAFETENSORS_DTYPES[source_dtype]).newbyteorder("<"))
        return array.astype(dtype).reshape(shape)  # a copy that owns its memory, as the map goes

    def full(self, shape, value, dtype):
        return np.full(shape, value, dtype=dtype)

    def arange(self, start, stop, dtype):
        return np.arange(start, stop, dtype=dtype)

    def to_list(self, handle):
        return handle.tolist()

    def to_numpy(self, handle):
        return handle

    # -- elementwise ---------------------------------------------------------
    def unary(self, op, x):
        return _UNARY[op](x)

    def binary(self, op, a, b):
        # numpy 2 keeps float32 with a Python float already; an int tensor divided, float32.
        return _table_float(_BINARY[op](a, b), a, b)

    def where(self, cond, a, b):
        # np.where(cond, 1.0, 0.0) is float64; the op table's float is float32.
        return _table_float(np.where(cond, a, b), a, b)

    def cast(self, x, dtype):
        return x.astype(dtype)

    # -- matmul and reductions -----------------------------------------------
    def matmul(self, a, b, transpose_a=False, transpose_b=False):
        check_matmul_operands(a, b)
        if transpose_b:
            b = np.swapaxes(b, -1, -2)
        if a.ndim > 2 and b.ndim == 2 and not transpose_a:
            # x @ W with leading axes: one product of all rows (numpy would loop over them).
            return np.matmul(a.reshape(-1, a.shape[-1]), b).reshape(a.shape[:-1] + b.shape[-1:])
        if transpose_a:
            a = np.swapaxes(a, -1, -2)
        return np.matmul(a, b)

    def reduce(self, op, x, axes, keepdims):
        assert op in REDUCE_OPS
        return getattr(np, op)(x, axis=axes, keepdims=keepdims)

    def argmax(self, x, axis):
        return np.argmax(x, axis=axis)

    def cumsum(self, x, axis):
        return np.cumsum(x, axis=axis)

    def softmax(self, x, axis):
        peak = np.max(x, axis=axis, keepdims=True)
        peak[~np.isfinite(peak)] = 0.0
        out = np.subtract(x, peak)
        np.exp(out, out=out)
        total = out.sum(axis=axis, keepdims=True)
        total[total == 0] = 1.0
        out /= total
        return out

    def log_softmax(self, x, axis):
        peak = np.max(x, axis=axis, keepdims=True)
        shifted = x - peak
        return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))

    def layer_norm(self, x, weight, bias, eps):
        half = x.dtype == np.float16
        if half:  # squares overflow float16 past |x| = 256: computed in float32, rounded once
            x, weight, bias = (None if a is None else a.astype(np.float32) for a in (x, weight, bias))
        centered = x - x.mean(axis=-1, keepdims=True)
        variance = np.square(centered).mean(axis=-1, keepdims=True)
        variance += eps
        centered /= np.sqrt(variance)
        if weight is not None:
            centered *= weight
        if bias is not None:
            centered += bias
        return centered.astype(np.float16) if half else centered

    def rms_norm(self, x, weight, eps):
        half = x.dtype == np.float16
        if half:  # as layer_norm
            x, weight = (None if a is None else a.astype(np.float32) for a in (x, weight))
        mean_square = np.square(x).mean(axis=-1, keepdims=True)
        mean_square += eps
        out = x / np.sqrt(mean_square)
        if weight is not None:
            out *= weight
        return out.astype(np.float16) if half else out

    # -- indexing and layout -------------------------------------------------
    def gather(self, x, indices, axis):
        return np.take(x, indices, axis=axis)

    def take_along(self, x, indices, axis):
        return np.take_along_axis(x, indices, axis=axis)

    def slice(self, x, key):
        index = _index(key)
        if _needs_outer(index):
            return self._outer(x, index)
        return x[index]

    def set_slice(self, x, key, value):
        out = x.copy()
        index = _index(key)
        if _needs_outer(index):
            # The open mesh keeps integer-indexed axes as size 1: give the value them too.
            dropped = tuple(i for i, item in enumerate(index) if isinstance(item, (int, np.integer)))
            value = np.asarray(value)
            if value.ndim and dropped:
                value = np.expand_dims(value, dropped)
            index = self._outer_index(x, index)
        out[index] = value
        return out

    @staticmethod
    def _outer_index(x, index):
        # Integer axes drop out; lists and slices become open-mesh ranges.
        ranges = []
        for item, size in zip(index + (slice(None),) * (x.ndim - len(index)), x.shape):
            if isinstance(item, np.ndarray):
                ranges.append(item)
            elif isinstance(item, slice):
                ranges.append(np.arange(size)[item])
            else:
                ranges.append(np.asarray([item]))
        return np.ix_(*ranges)

    def _outer(self, x, index):
        full = x[self._outer_index(x, index)]
        drop = tuple(i for i, item in enumerate(index) if isinstance(item, (int, np.integer)))
        return full.squeeze(axis=drop) if drop else full

    def concat(self, xs, axis):
        return np.concatenate(xs, axis=axis)

    def reshape(self, x, shape):
        return x.reshape(shape)

    def permute(self, x, axes):
        return x.transpose(axes)

    def broadcast_to(self, x, shape):
        return np.broadcast_to(x, shape)

    def topk(self, x, k, axis):
        # Sorted descending; ties keep the lower index first, as every backend does.
        n = x.shape[axis]
        if 4 * k >= n or x.dtype.kind != "f" or np.isnan(x).any():
            order = np.argsort(-x, axis=axis, kind="stable")
            indices = np.take(order, np.arange(k), axis=axis)
        else:
            indices = np.moveaxis(_top_rows(np.moveaxis(x, axis, -1).reshape(-1, n), k).reshape(
                np.moveaxis(x, axis, -1).shape[:-1] + (k,)), -1, axis)
        return np.take_along_axis(x, indices, axis=axis), indices.astype(np.int64)

    # -- fused transformer ops -----------------------------------------------
    def rotary(self, x, cos, sin, rotary_dim):
        rot, rest = x[..., :rotary_dim], x[..., rotary_dim:]
        half = rotary_dim // 2
        rotated = np.concatenate([-rot[..., half:], rot[..., :half]], axis=-1)
        cos = cos[:, :, None, :]
        sin = sin[:, :, None, :]
        out = rot * cos + rotated * sin
        return np.concatenate([out, rest], axis=-1) if rest.shape[-1] else out

    def attention(self, q, k, v, mask, scale, return_pattern):
        n_heads, n_kv = q.shape[2], k.shape[2]
        if n_heads != n_kv:
            k = np.repeat(k, n_heads // n_kv, axis=2)
            v = np.repeat(v, n_heads // n_kv, axis=2)
        # [batch, head, q_pos, k_pos]
        # Contiguous [b, h, p, d] copies: numpy's batched matmul on the strided views ran
        # 2.6x slower (bench: 27 x 8 heads x 150 positions).
        scores = np.matmul(np.ascontiguousarray(q.transpose(0, 2, 1, 3)),
                           np.ascontiguousarray(k.transpose(0, 2, 3, 1)))
        scores *= scale
        if mask is None:
            q_len, k_len = scores.shape[-2:]
            mask = np.tril(np.ones((q_len, k_len), dtype=bool), k_len - q_len)[None]
        np.copyto(scores, -np.inf, where=~mask[:, None])
        pattern = self.softmax(scores, -1)
        # [batch, head, q_pos, d_head] -> [batch, q_pos, head, d_head]
        z = np.matmul(pattern, v.transpose(0, 2, 1, 3)).transpose(0, 2, 1, 3)
        return z, (pattern if return_pattern else None)
