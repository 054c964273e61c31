"""The torch backend: the op table on torch tensors, on the CPU or a CUDA device.

One more implementation of the primitive ops (``ops.py``), checked against the numpy
reference case by case (``tests/test_torch_backend.py`` runs every case of
``tests/browser/op_cases.py``, and the reference models' logits and hooks). It exists
for speed in CPython: torch's CPU matmuls beat numpy/OpenBLAS on many machines, and a
CUDA device beats both (DESIGN.md §10).

* Handles are ``TorchHandle``s: a torch tensor with the ``shape`` and dtype *name*
  (``"float32"``) that ``Tensor`` reads; torch spells its dtypes ``torch.float32``.
* Every op runs under ``torch.inference_mode()``: no tensor here requires grad, and
  torch skips its autograd bookkeeping. Gradients go through the op table's VJPs, as
  on every backend, never through torch's autograd.
* Results follow the numpy reference, including its edge cases: the safe softmax (a
  fully masked row gives zeros), outer indexing for slice keys, negative indices in
  ``gather``/``take_along``, ties in ``topk`` (lower index first), reductions over no
  axes. Dtype rules are the op table's (``ops.py``): an int tensor combined with a
  float gives float32 where numpy would give float64.
* Host data enters through numpy (this backend only runs in CPython, where numpy is
  installed), so ``from_host`` and ``from_bytes`` accept exactly what numpy's do.

This module imports torch; ``backends/__init__.py`` imports it only when asked for the
torch backend, so the package imports without torch (and in a stdlib-only Pyodide).
"""

import numpy as np
import torch
import torch.nn.functional as F

from .base import Backend
from .numpy_backend import NumpyBackend
from .ops import BINARY_OPS, REDUCE_OPS, UNARY_OPS, check_matmul_operands

_TORCH_DTYPES = {
    "float32": torch.float32, "float16": torch.float16, "float64": torch.float64,
    "bfloat16": torch.bfloat16, "int64": torch.int64, "int32": torch.int32,
    "uint8": torch.uint8, "bool": torch.bool,
}
_DTYPE_NAMES = {value: key for key, value in _TORCH_DTYPES.items()}
_NEG_INF = float("-inf")
# The C++ guard behind ``torch.inference_mode()``: entered once per op, and the Python
# context manager costs ~2 us more per entry than the op it wraps on small tensors.
_InferenceGuard = getattr(torch._C, "_InferenceMode", None)


def _inference_mode():
    return _InferenceGuard(True) if _InferenceGuard is not None else torch.inference_mode()


class TorchHandle:
    """A torch tensor as ``Tensor`` sees a handle: ``shape`` (a tuple), ``dtype`` (a name)."""

    __slots__ = ("tensor",)

    def __init__(self, tensor):
        self.tensor = tensor

    @property
    def shape(self):
        return tuple(self.tensor.shape)

    @property
    def dtype(self):
        return _DTYPE_NAMES[self.tensor.dtype]

    def __repr__(self):
        return f"TorchHandle({list(self.tensor.shape)}, {self.dtype}, {self.tensor.device})"


def _t(value):
    """The torch tensor of a handle; scalars and None pass through."""
    return value.tensor if isinstance(value, TorchHandle) else value


def _weak_scalar(value):
    return isinstance(value, (bool, int, float))


_UNARY = {
    "neg": torch.neg, "exp": torch.exp, "log": torch.log, "sqrt": torch.sqrt,
    "rsqrt": torch.rsqrt, "tanh": torch.tanh, "abs": torch.abs, "square": torch.square,
    "relu": torch.relu, "sigmoid": torch.sigmoid, "silu": F.silu, "gelu": F.gelu,
    "gelu_new": lambda x: F.gelu(x, approximate="tanh"), "isfinite": torch.isfinite,
}
# Ops torch computes from integer inputs in floating point (numpy's ufuncs do the same).
_FLOAT_ONLY = {"exp", "log", "sqrt", "rsqrt", "tanh", "sigmoid", "silu", "gelu", "gelu_new"}
_BINARY = {
    "add": torch.add, "sub": torch.sub, "mul": torch.mul, "div": torch.true_divide,
    "pow": torch.pow, "maximum": torch.maximum, "minimum": torch.minimum,
    "eq": torch.eq, "ne": torch.ne, "lt": torch.lt, "le": torch.le, "gt": torch.gt, "ge": torch.ge,
}
# ``scalar op tensor`` as ``tensor op' scalar``, exactly (torch takes scalars second).
_MIRRORED = {"add": "add", "mul": "mul", "eq": "eq", "ne": "ne", "lt": "gt", "le": "ge",
             "gt": "lt", "ge": "le", "maximum": "maximum", "minimum": "minimum"}
assert set(_UNARY) == set(UNARY_OPS) and set(_BINARY) == set(BINARY_OPS)


class TorchBackend(Backend):
    """``device``: ``"cpu"`` (the default), ``"cuda"`` / ``"cuda:1"`` or a ``torch.device``."""

    name = "torch"
    reads_synchronously = True
    weight_dtypes = ("float32", "float16", "bfloat16")

    def __init__(self, device="cpu"):
        device = torch.device(device)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"torch backend: device {str(device)!r} requested, but this torch "
                               f"({torch.__version__}) has no CUDA device; use device='cpu'")
        self.device = device
        self._numpy = NumpyBackend()

    def __repr__(self):
        return f"<TorchBackend {self.name!r} on {self.device}>"

    def dispatch(self, op, /, *args, **attrs):
        # Backend.dispatch (which checks ``op`` against the table) under inference mode. With
        # dispatch overridden, Backend does not check the op methods when the class is defined;
        # tests/test_torch_backend.py checks each against the table's signature.
        with _inference_mode():
            return super().dispatch(op, *args, **attrs)

    def _dtype(self, name):
        try:
            return _TORCH_DTYPES[str(name)]
        except KeyError:
            raise ValueError(f"torch backend: dtype {name!r} is not supported; expected one of "
                             f"{sorted(_TORCH_DTYPES)}") from None

    def _scalar_tensor(self, value, like):
        """A 0-d tensor of ``value`` in the dtype ``like op value`` has (ops without scalar forms)."""
        return torch.tensor(value, dtype=torch.result_type(like, value), device=self.device)

    def _operand(self, value):
        """An operand as torch takes it: a handle's tensor, a Python scalar as it is, and
        host data (a numpy array or scalar, nested lists: numpy's ops take them) uploaded."""
        if isinstance(value, TorchHandle):
            return value.tensor
        if _weak_scalar(value) or isinstance(value, torch.Tensor):
            return value
        return torch.as_tensor(np.asarray(value), device=self.device)

    # -- allocator -----------------------------------------------------------
    def _host_dtype(self, dtype):
        """The numpy dtype host data is read in for ``dtype`` (numpy has no bfloat16)."""
        self._dtype(dtype)
        return "float32" if dtype == "bfloat16" else dtype

    def _to_device(self, array, dtype):
        return TorchHandle(torch.from_numpy(array).to(device=self.device, dtype=self._dtype(dtype)))

    def from_host(self, data, shape, dtype):
        if isinstance(data, TorchHandle):
            data = data.tensor
        if isinstance(data, torch.Tensor):
            tensor = data.detach().to(device=self.device, dtype=self._dtype(dtype), copy=True)
            return TorchHandle(tensor.reshape(shape) if shape is not None else tensor)
        # A copy that owns its memory (numpy's may be a read-only view of the caller's).
        array = np.array(data, dtype=self._host_dtype(dtype))
        return self._to_device(array.reshape(shape) if shape is not None else array, dtype)

    def from_bytes(self, buffer, source_dtype, shape, dtype="float32"):
        if source_dtype == "BF16":
            # torch has bfloat16: copy the bits once and reinterpret them, so a bfloat16
            # file kept in bfloat16 costs one copy and an upcast no numpy temporary.
            bits = np.frombuffer(buffer, dtype="<u2").copy().reshape(shape)
            tensor = torch.from_numpy(bits).view(torch.bfloat16)
            return TorchHandle(tensor.to(device=self.device, dtype=self._dtype(dtype)))
        array = self._numpy.from_bytes(buffer, source_dtype, shape, self._host_dtype(dtype))
        return self._to_device(array, dtype)

    def full(self, shape, value, dtype):
        return TorchHandle(torch.full(tuple(shape), value, dtype=self._dtype(dtype), device=self.device))

    def arange(self, start, stop, dtype):
        # numpy gives an empty range for stop < start; torch refuses it.
        stop = max(start, stop)
        return TorchHandle(torch.arange(start, stop, dtype=self._dtype(dtype), device=self.device))

    def to_list(self, handle):
        return handle.tensor.tolist()

    def to_numpy(self, handle):
        tensor = handle.tensor.detach()
        if tensor.dtype == torch.bfloat16:  # numpy has no bfloat16
            tensor = tensor.float()
        return tensor.cpu().numpy()

    def free(self, handle):
        handle.tensor = None

    # -- elementwise ---------------------------------------------------------
    def unary(self, op, x):
        x = x.tensor
        if op in _FLOAT_ONLY and not x.is_floating_point():
            x = x.float()
        elif op == "relu" and x.dtype == torch.bool:
            x = x.to(torch.int64)
        return TorchHandle(_UNARY[op](x))

    def binary(self, op, a, b):
        a, b = self._operand(a), self._operand(b)
        if _weak_scalar(a):
            if op in _MIRRORED:
                op, a, b = _MIRRORED[op], b, a
            elif op == "sub":
                return TorchHandle(torch.rsub(b, a))
            elif op != "pow":  # torch.pow takes a scalar base
                a = self._scalar_tensor(a, b)
        if _weak_scalar(b) and op in ("maximum", "minimum"):
            b = self._scalar_tensor(b, a)
        return TorchHandle(_BINARY[op](a, b))

    def where(self, cond, a, b):
        cond = cond.tensor
        if cond.dtype != torch.bool:
            cond = cond != 0
        return TorchHandle(torch.where(cond, self._operand(a), self._operand(b)))

    def cast(self, x, dtype):
        # A copy even when the dtype is unchanged, as numpy's astype (Tensor.clone relies on it).
        return TorchHandle(x.tensor.to(self._dtype(dtype), copy=True))

    # -- matmul and reductions -----------------------------------------------
    def matmul(self, a, b, transpose_a=False, transpose_b=False):
        check_matmul_operands(a, b)
        a, b = a.tensor, b.tensor
        if transpose_a:
            a = a.transpose(-1, -2)
        if transpose_b:
            b = b.transpose(-1, -2)
        return TorchHandle(torch.matmul(a, b))

    def reduce(self, op, x, axes, keepdims):
        assert op in REDUCE_OPS
        x = x.tensor
        axes = tuple(axes)
        if op in ("mean", "var") and not x.is_floating_point():
            x = x.float()
        if not axes:  # torch reads dim=() as every axis; numpy as none
            if op == "var":
                return TorchHandle(torch.zeros_like(x))
            return TorchHandle(x.to(torch.int64) if op == "sum" and x.dtype == torch.bool else x.clone())
        if op == "sum":
            out = torch.sum(x, dim=axes, keepdim=keepdims)
        elif op == "mean":
            out = torch.mean(x, dim=axes, keepdim=keepdims)
        elif op == "max":
            out = torch.amax(x, dim=axes, keepdim=keepdims)
        elif op == "min":
            out = torch.amin(x, dim=axes, keepdim=keepdims)
        else:
            out = torch.var(x, dim=axes, correction=0, keepdim=keepdims)
        return TorchHandle(out)

    def argmax(self, x, axis):
        x = x.tensor
        if x.dtype == torch.bool:
            x = x.to(torch.uint8)
        return TorchHandle(torch.argmax(x, dim=axis))

    def cumsum(self, x, axis):
        return TorchHandle(torch.cumsum(x.tensor, dim=axis))

    def softmax(self, x, axis):
        return TorchHandle(_safe_softmax(x.tensor, axis))

    def log_softmax(self, x, axis):
        return TorchHandle(torch.log_softmax(x.tensor, dim=axis))

    def layer_norm(self, x, weight, bias, eps):
        x = x.tensor
        return TorchHandle(F.layer_norm(x, x.shape[-1:], _t(weight), _t(bias), eps))

    def rms_norm(self, x, weight, eps):
        x = x.tensor
        return TorchHandle(F.rms_norm(x, x.shape[-1:], _t(weight), eps))

    # -- indexing and layout -------------------------------------------------
    def gather(self, x, indices, axis):
        x, indices = x.tensor, self._wrapped_indices(indices.tensor, x.shape[axis])
        out = torch.index_select(x, axis, indices.reshape(-1))
        return TorchHandle(out.reshape(x.shape[:axis] + indices.shape + x.shape[axis + 1:]))

    def take_along(self, x, indices, axis):
        x = x.tensor
        indices = self._wrapped_indices(indices.tensor, x.shape[axis])
        return TorchHandle(torch.take_along_dim(x, indices, axis))

    @staticmethod
    def _wrapped_indices(indices, size):
        # numpy counts negative indices from the end; torch refuses them.
        indices = indices.to(torch.int64)
        return torch.where(indices < 0, indices + size, indices)

    def slice(self, x, key):
        x = x.tensor
        if _is_basic(key):
            return TorchHandle(x[_basic_index(key)])
        axis = 0  # outer indexing in axis order, one axis at a time
        for item in key:
            if isinstance(item, int):
                x = x.select(axis, item)
                continue
            if isinstance(item, tuple) and item[2] > 0:
                x = x[(slice(None),) * axis + (slice(*item),)]
            else:
                x = torch.index_select(x, axis, self._index_tensor(item))
            axis += 1
        return TorchHandle(x)

    def set_slice(self, x, key, value):
        x = x.tensor
        out = x.clone()
        value = self._operand(value)
        if isinstance(value, torch.Tensor):
            value = value.to(device=out.device, dtype=out.dtype)
        if _is_basic(key):
            out[_basic_index(key)] = value
            return TorchHandle(out)
        # An open mesh over every axis (numpy's ix_): integer axes stay as size 1, so the
        # value gets them too.
        dropped = [i for i, item in enumerate(key) if isinstance(item, int)]
        if isinstance(value, torch.Tensor) and value.dim():
            for axis in dropped:
                value = value.unsqueeze(axis)
        full_key = tuple(key) + tuple((0, size, 1) for size in x.shape[len(key):])
        ranges = [self._index_tensor([item] if isinstance(item, int) else item) for item in full_key]
        mesh = tuple(r.reshape((1,) * i + (-1,) + (1,) * (len(ranges) - i - 1)) for i, r in enumerate(ranges))
        out[mesh] = value
        return TorchHandle(out)

    def _index_tensor(self, item):
        """int64 indices of a key item: an int list, or a (start, stop, step) triple."""
        if isinstance(item, tuple):
            return torch.arange(*item, dtype=torch.int64, device=self.device)
        return torch.as_tensor(item, dtype=torch.int64, device=self.device)

    def concat(self, xs, axis):
        return TorchHandle(torch.cat([x.tensor for x in xs], dim=axis))

    def reshape(self, x, shape):
        return TorchHandle(x.tensor.reshape(tuple(shape)))

    def permute(self, x, axes):
        return TorchHandle(x.tensor.permute(tuple(axes)))

    def broadcast_to(self, x, shape):
        return TorchHandle(torch.broadcast_to(x.tensor, tuple(shape)))

    def topk(self, x, k, axis):
        # A stable descending sort: ties keep the lower index first, as every backend does.
        values, indices = torch.sort(x.tensor, dim=axis, descending=True, stable=True)
        return TorchHandle(values.narrow(axis, 0, k)), TorchHandle(indices.narrow(axis, 0, k))

    # -- fused transformer ops -----------------------------------------------
    def rotary(self, x, cos, sin, rotary_dim):
        x = x.tensor
        rot, rest = x[..., :rotary_dim], x[..., rotary_dim:]
        half = rotary_dim // 2
        rotated = torch.cat([-rot[..., half:], rot[..., :half]], dim=-1)
        out = rot * cos.tensor[:, :, None, :] + rotated * sin.tensor[:, :, None, :]
        return TorchHandle(torch.cat([out, rest], dim=-1) if rest.shape[-1] else out)

    def attention(self, q, k, v, mask, scale, return_pattern):
        q, k, v, mask = q.tensor, k.tensor, v.tensor, _t(mask)
        n_heads, n_kv = q.shape[2], k.shape[2]
        if n_heads != n_kv:
            k = torch.repeat_interleave(k, n_heads // n_kv, dim=2)
            v = torch.repeat_interleave(v, n_heads // n_kv, dim=2)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)  # [batch, head, pos, d_head]
        q_len, k_len = q.shape[2], k.shape[2]
        if mask is None and q_len != k_len:  # causal, queries aligned to the last keys
            mask = torch.ones(q_len, k_len, dtype=torch.bool, device=self.device).tril(k_len - q_len)[None]
        if return_pattern:
            scores = torch.matmul(q, k.transpose(-1, -2)) * scale  # [batch, head, q_pos, k_pos]
            if mask is None:
                mask = torch.ones(q_len, k_len, dtype=torch.bool, device=self.device).tril()[None]
            pattern = _safe_softmax(scores.masked_fill_(~mask[:, None], _NEG_INF), -1)
            z = torch.matmul(pattern, v)
        else:
            attn_mask = None if mask is None else mask[:, None]
            z = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, is_causal=mask is None,
                                               scale=scale)
            if mask is not None:  # a query that may attend nowhere gets zeros (the safe softmax)
                z = z.masked_fill(~mask.any(-1)[:, None, :, None], 0.0)
            pattern = None
        z = TorchHandle(z.transpose(1, 2))  # [batch, q_pos, head, d_head]
        return z, (TorchHandle(pattern) if pattern is not None else None)


def _safe_softmax(x, axis):
    """Softmax where a row that is entirely -inf gives zeros (torch gives NaN)."""
    peak = torch.amax(x, dim=axis, keepdim=True)
    if bool(torch.isfinite(peak).all()):
        return torch.softmax(x, dim=axis)
    # Rows with -inf (fully masked) or +inf / NaN peaks: numpy's formula, step by step.
    peak = torch.where(torch.isfinite(peak), peak, 0.0)
    out = torch.exp(x - peak)
    total = out.sum(dim=axis, keepdim=True)
    return out / torch.where(total == 0, 1.0, total)


def _is_basic(key):
    """Only ints and forward slices: one torch index does it (a view, as numpy's)."""
    return all(isinstance(item, int) or (isinstance(item, tuple) and item[2] > 0) for item in key)


def _basic_index(key):
    return tuple(item if isinstance(item, int) else slice(*item) for item in key)
