"""``Tensor``: a thin handle on backend memory with one dispatch funnel.

A Tensor holds a backend handle and the backend; shape and dtype are read from
the handle. Every operation goes through ``_run``, which unwraps Tensor
arguments, calls ``backend.dispatch(op, ...)`` and wraps the results. Nothing
here imports numpy, so the class works unchanged on the JS bridge in Pyodide.

Indexing follows numpy for ints, slices, ``...`` and ``None``; an integer list
(or int Tensor) selects along one axis, and several lists index independently
("outer" indexing), which is what ``act[:, :, [3, 7]]`` users expect.
"""

import math
import sys

from . import autograd
from .args import as_indices
from .autograd import grad_mode
from .backends import get_backend
from .errors import ShapeError

_FLOAT = "float32"
_INT = "int64"


class Tensor:
    """An n-dimensional array living on a backend (numpy, WebGPU, ...)."""

    # ``axes``: the axis names of a hook's activation (set by the hook point), else None.
    # ``grad``: a leaf's (or a retained tensor's) gradient; ``_edge``: ``(node, output index)``
    # in the autograd graph (autograd.py) when this tensor is tracked, else None.
    __slots__ = ("data", "backend", "axes", "grad", "_edge")
    __array_priority__ = 1000  # numpy defers `ndarray + Tensor` to us

    def __init__(self, data, backend=None):
        self.data = data
        self.backend = backend if backend is not None else get_backend()
        self.axes = None
        self.grad = None
        self._edge = None

    # -- metadata ------------------------------------------------------------
    @property
    def shape(self):
        return tuple(self.data.shape)

    @property
    def dtype(self):
        return str(self.data.dtype)

    @property
    def ndim(self):
        return len(self.data.shape)

    @property
    def size(self):
        return math.prod(self.data.shape)

    @property
    def nbytes(self):
        return self.size * _ITEMSIZE[self.dtype]

    def __len__(self):
        if not self.shape:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def _repr_html_(self):
        from .display_hooks import html_of  # display imports this module: see display_hooks

        return html_of(self)

    def inspect(self):
        """Fields, shapes and views of this object (``neuroscope.inspect``)."""
        from .display_hooks import inspect

        return inspect(self)

    def __repr__(self):
        head = f"shape={list(self.shape)}, dtype={self.dtype}, backend={self.backend.name}"
        numpy = sys.modules.get("numpy") if self.backend.reads_synchronously else None
        if numpy is None:  # device memory: reading it back is the caller's choice
            return (f"Tensor({head}; values on the device: read them with .tolist(), .item() or "
                    "await .tolist_async())")
        values = numpy.array2string(self.numpy(), threshold=64, edgeitems=3, precision=4, separator=", ",
                                    prefix="Tensor(")
        return f"Tensor({values}, {head})"

    # -- autograd (autograd.py) ------------------------------------------------
    @property
    def requires_grad(self):
        return self._edge is not None

    def requires_grad_(self, requires_grad=True):
        """Make this tensor a leaf whose gradient ``backward`` accumulates into ``.grad``."""
        return autograd.requires_grad_(self, requires_grad)

    def detach(self):
        """The same values, untracked (no copy is made)."""
        out = Tensor(self.data, self.backend)
        out.axes = self.axes
        return out

    def backward(self, grad=None):
        """Accumulate the gradients of this tensor (weighted by ``grad``; 1.0 for one element)
        into the ``.grad`` of every leaf it was computed from."""
        autograd.backward([self], None if grad is None else [grad])

    def retain_grad(self):
        """Keep this non-leaf's gradient in ``.grad`` at the next ``backward``."""
        autograd.retain_grad(self)

    def register_hook(self, fn):
        """``fn(grad)`` runs when this tensor's gradient is complete; a Tensor it returns replaces
        the gradient. Returns a handle whose ``remove()`` unregisters it."""
        return autograd.register_hook(self, fn)

    # -- readback ------------------------------------------------------------
    def numpy(self):
        """A read-only numpy array (CPython, or Pyodide with numpy loaded): a view of the
        tensor's memory where the backend allows (numpy, torch on the CPU), so no copy is made,
        and read-only on every backend alike, since that memory is never written once made
        (``t[...] = v`` gives ``t`` new memory; a weight or another tensor sharing the old
        memory, edited through the array, would silently change what the model and its caches
        hold). ``tensor.numpy().copy()`` or ``np.array(tensor)`` gives an array to edit."""
        import numpy

        array = self.backend.to_numpy(self.data)
        if isinstance(array, numpy.generic):  # a numpy scalar (a 0-d reduction): immutable already
            return array
        array = array.view()
        array.flags.writeable = False
        return array

    def __array__(self, dtype=None, copy=None):
        # numpy's protocol: copy=True must copy, copy=False must not, None copies only
        # when it has to (a dtype change).
        array = self.numpy()
        if dtype is not None and array.dtype != dtype:
            if copy is False:
                raise ValueError(f"a {self.dtype} tensor as a {dtype} array needs a copy, and copy=False "
                                 f"was asked")
            return array.astype(dtype)
        return array.copy() if copy else array

    def tolist(self):
        return self.backend.to_list(self.data)

    async def tolist_async(self):
        """``tolist()`` that awaits device readback: for browsers without JSPI (``run_sync``)."""
        to_list_async = getattr(self.backend, "to_list_async", None)
        if to_list_async is None:  # host backends (numpy) read synchronously
            return self.backend.to_list(self.data)
        return await to_list_async(self.data)

    def item(self):
        if self.size != 1:
            raise ShapeError(f"item() needs a tensor with one element, got shape {list(self.shape)}")
        value = self.reshape(()).tolist()
        return value

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    # -- elementwise ---------------------------------------------------------
    def __add__(self, other):
        return _binary("add", self, other)

    def __radd__(self, other):
        return _binary("add", other, self)

    def __sub__(self, other):
        return _binary("sub", self, other)

    def __rsub__(self, other):
        return _binary("sub", other, self)

    def __mul__(self, other):
        return _binary("mul", self, other)

    def __rmul__(self, other):
        return _binary("mul", other, self)

    def __truediv__(self, other):
        return _binary("div", self, other)

    def __rtruediv__(self, other):
        return _binary("div", other, self)

    def __pow__(self, other):
        return _binary("pow", self, other)

    def __neg__(self):
        return _run("unary", "neg", self)

    def __lt__(self, other):
        return _binary("lt", self, other)

    def __le__(self, other):
        return _binary("le", self, other)

    def __gt__(self, other):
        return _binary("gt", self, other)

    def __ge__(self, other):
        return _binary("ge", self, other)

    def eq(self, other):
        return _binary("eq", self, other)

    def maximum(self, other):
        return _binary("maximum", self, other)

    def minimum(self, other):
        return _binary("minimum", self, other)

    def exp(self):
        return _run("unary", "exp", self)

    def log(self):
        return _run("unary", "log", self)

    def sqrt(self):
        return _run("unary", "sqrt", self)

    def tanh(self):
        return _run("unary", "tanh", self)

    def abs(self):
        return _run("unary", "abs", self)

    def relu(self):
        return _run("unary", "relu", self)

    def square(self):
        return _run("unary", "square", self)

    def astype(self, dtype):
        return self if dtype == self.dtype else _run("cast", self, dtype)

    def float(self):
        return self.astype(_FLOAT)

    def clone(self):
        out = _run("cast", self, self.dtype)
        out.axes = self.axes
        return out

    # -- matmul and reductions -----------------------------------------------
    def __matmul__(self, other):
        return _run("matmul", self, as_tensor(other, backend=self.backend))

    def __rmatmul__(self, other):
        return _run("matmul", as_tensor(other, backend=self.backend), self)

    def sum(self, axis=None, keepdims=False):
        return self._reduce("sum", axis, keepdims)

    def mean(self, axis=None, keepdims=False):
        return self._reduce("mean", axis, keepdims)

    def max(self, axis=None, keepdims=False):
        return self._reduce("max", axis, keepdims)

    def min(self, axis=None, keepdims=False):
        return self._reduce("min", axis, keepdims)

    def var(self, axis=None, keepdims=False):
        return self._reduce("var", axis, keepdims)

    def norm(self, axis=-1, keepdims=False):
        """The Euclidean norm along ``axis``."""
        return self.square().sum(axis, keepdims).sqrt()

    def _reduce(self, op, axis, keepdims):
        axes = tuple(range(self.ndim)) if axis is None else tuple(
            _axis(a, self.ndim) for a in (axis if isinstance(axis, (tuple, list)) else (axis,)))
        return _run("reduce", op, self, axes, keepdims)

    def argmax(self, axis=-1):
        return _run("argmax", self, _axis(axis, self.ndim))

    def take(self, indices, axis=0):
        """Rows (or entries along ``axis``) at integer ``indices`` (a Tensor or list)."""
        indices = as_tensor(indices, dtype=_INT, backend=self.backend)
        return _run("gather", self, indices, _axis(axis, self.ndim))

    def take_along(self, indices, axis=-1):
        indices = as_tensor(indices, dtype=_INT, backend=self.backend)
        return _run("take_along", self, indices, _axis(axis, self.ndim))

    def cumsum(self, axis=-1):
        return _run("cumsum", self, _axis(axis, self.ndim))

    def softmax(self, axis=-1):
        return _run("softmax", self, _axis(axis, self.ndim))

    def log_softmax(self, axis=-1):
        return _run("log_softmax", self, _axis(axis, self.ndim))

    def topk(self, k, axis=-1):
        """``(values, indices)`` of the ``k`` largest entries, largest first."""
        axis = _axis(axis, self.ndim)
        if not 1 <= k <= self.shape[axis]:
            raise ShapeError(f"topk k={k} requested, axis {axis} has {self.shape[axis]} entries")
        return _run("topk", self, k, axis)

    # -- layout --------------------------------------------------------------
    def reshape(self, *shape):
        shape = _shape_arg(shape)
        if -1 in shape:
            known = math.prod(s for s in shape if s != -1)
            shape = tuple(self.size // known if s == -1 else s for s in shape)
        if math.prod(shape) != self.size:
            raise ShapeError(f"cannot reshape {list(self.shape)} ({self.size} elements) to {list(shape)}")
        return _run("reshape", self, tuple(shape))

    view = reshape

    def permute(self, *axes):
        axes = _shape_arg(axes)
        if sorted(_axis(a, self.ndim) for a in axes) != list(range(self.ndim)):
            raise ShapeError(f"permute axes {list(axes)} are not a permutation of {self.ndim} axes")
        return _run("permute", self, tuple(_axis(a, self.ndim) for a in axes))

    def transpose(self, axis_a=-2, axis_b=-1):
        axes = list(range(self.ndim))
        a, b = _axis(axis_a, self.ndim), _axis(axis_b, self.ndim)
        axes[a], axes[b] = axes[b], axes[a]
        return _run("permute", self, tuple(axes))

    @property
    def T(self):
        return _run("permute", self, tuple(reversed(range(self.ndim))))

    def unsqueeze(self, axis):
        axis = _axis(axis, self.ndim + 1)
        shape = self.shape
        return self.reshape(shape[:axis] + (1,) + shape[axis:])

    def squeeze(self, axis):
        axis = _axis(axis, self.ndim)
        if self.shape[axis] != 1:
            raise ShapeError(f"cannot squeeze axis {axis} of size {self.shape[axis]}")
        shape = self.shape
        return self.reshape(shape[:axis] + shape[axis + 1:])

    def flatten(self):
        return self.reshape(self.size)

    def broadcast_to(self, *shape):
        return _run("broadcast_to", self, _shape_arg(shape))

    def __getitem__(self, key):
        key, new_axes = _normalise_key(key, self.shape)
        result = _run("slice", self, key)
        return result.reshape(_insert_axes(result.shape, new_axes)) if new_axes else result

    def __setitem__(self, key, value):
        # Functional underneath: other Tensors sharing the old handle keep
        # their values, so a hook that edits in place cannot corrupt a cache.
        key, _ = _normalise_key(key, self.shape)
        if autograd.check_inplace(self, isinstance(value, Tensor) and value._edge is not None):
            # Recorded as a new node for this Python object; nodes that saved the old
            # handle keep it, so their gradients stay right.
            edited = _run("set_slice", self, key, value)
            self.data, self._edge = edited.data, edited._edge
            return
        value = value.data if isinstance(value, Tensor) else value
        self.data = self.backend.dispatch("set_slice", self.data, key, value)

    def zero_heads(self, heads, axis=None):
        """A copy with the given heads zeroed. The head axis is the activation's own
        (``"head"`` / ``"kv_head"`` in ``axes``, as every hook's activation has), or ``axis``."""
        key = self._head_key(heads, axis)
        out = self.clone()
        out[key] = 0.0
        return out

    def scale_heads(self, heads, factor, axis=None):
        """A copy with the given heads multiplied by ``factor`` (head axis as in ``zero_heads``)."""
        key = self._head_key(heads, axis)
        out = self.clone()
        out[key] = self[key] * factor
        return out

    def _head_key(self, heads, axis):
        if axis is None:
            names = self.axes or ()
            found = [i for i, name in enumerate(names) if name in ("head", "kv_head")]
            if not found:
                raise ShapeError(
                    f"this tensor's axes are {list(names)}, with no head axis; pass axis= (the index of "
                    "the head axis)" if names else
                    "this tensor does not say which axis holds heads (only a hook's activation does); "
                    "pass axis= (e.g. axis=2 for [batch, pos, head, d_head])")
            axis = found[0]
        axis = _axis(axis, self.ndim)
        selected = as_indices(heads, "heads", self.shape[axis], allow_all=False)
        key = [slice(None)] * self.ndim
        key[axis] = selected
        return tuple(key)


_ITEMSIZE = {"float32": 4, "float16": 2, "bfloat16": 2, "float64": 8, "int64": 8, "int32": 4, "uint8": 1,
             "bool": 1}


# -- the funnel ----------------------------------------------------------------
def _unwrap(value):
    if isinstance(value, Tensor):
        return value.data
    if isinstance(value, (list, tuple)) and value and isinstance(value[0], Tensor):
        return [v.data for v in value]
    return value


def _run(op, *args, **attrs):
    """Dispatch one primitive op: the only way Tensor reaches a backend."""
    backend = next(a.backend for a in _tensors(args))
    result = backend.dispatch(op, *[_unwrap(a) for a in args],
                              **{k: _unwrap(v) for k, v in attrs.items()})
    if isinstance(result, tuple):
        out = tuple(None if r is None else Tensor(r, backend) for r in result)
    else:
        out = Tensor(result, backend)
    if grad_mode.recording and (_tracked(args) or (attrs and _tracked(attrs.values()))):
        autograd.record(op, args, attrs, out)
    return out


run_op = _run  # the funnel, for components that call fused ops directly


def _tracked(args):
    """Whether any tensor argument carries an autograd edge (one attribute check each)."""
    for arg in args:
        kind = arg.__class__
        if kind is Tensor:
            if arg._edge is not None:
                return True
        elif (kind is list or kind is tuple) and arg and isinstance(arg[0], Tensor):
            if any(a._edge is not None for a in arg):
                return True
    return False


def _tensors(args):
    for arg in args:
        if isinstance(arg, Tensor):
            yield arg
        elif isinstance(arg, (list, tuple)) and arg and isinstance(arg[0], Tensor):
            yield arg[0]


def _binary(op, a, b):
    backend = a.backend if isinstance(a, Tensor) else b.backend
    if not isinstance(a, (Tensor, int, float)):
        a = as_tensor(a, backend=backend)
    if not isinstance(b, (Tensor, int, float)):
        b = as_tensor(b, backend=backend)
    _check_broadcast(op, a, b)
    return _run("binary", op, a, b)


def _check_broadcast(op, a, b):
    if not (isinstance(a, Tensor) and isinstance(b, Tensor)):
        return
    for x, y in zip(reversed(a.shape), reversed(b.shape)):
        if x != y and x != 1 and y != 1:
            raise ShapeError(f"cannot {op} shapes {list(a.shape)} and {list(b.shape)}")


# -- argument normalisation ----------------------------------------------------
def _axis(axis, ndim):
    if not -ndim <= axis < max(ndim, 1):
        raise ShapeError(f"axis {axis} requested, tensor has {ndim} axes")
    return axis % ndim if ndim else 0


def _shape_arg(shape):
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = shape[0]
    return tuple(int(s) for s in shape)


def _normalise_key(key, shape):
    """numpy-style key -> (backend key, positions of new axes)."""
    if not isinstance(key, tuple):
        key = (key,)
    n_real = sum(1 for k in key if k is not None and k is not Ellipsis)
    if n_real > len(shape):
        raise ShapeError(f"too many indices ({n_real}) for a tensor of shape {list(shape)}")
    expanded = []
    for item in key:
        if item is Ellipsis:
            expanded.extend([slice(None)] * (len(shape) - n_real))
        else:
            expanded.append(item)
    if Ellipsis not in key:
        expanded.extend([slice(None)] * (len(shape) - n_real))
    out, new_axes, axis, out_axis = [], [], 0, 0
    for item in expanded:
        if item is None:
            new_axes.append(out_axis)
            out_axis += 1
            continue
        size = shape[axis]
        if isinstance(item, Tensor):
            item = item.tolist()
        if isinstance(item, bool) or not isinstance(item, (int, slice, list, tuple)):
            if hasattr(item, "__index__"):
                item = int(item)
            elif hasattr(item, "tolist"):
                item = item.tolist()
        if isinstance(item, slice):
            out.append(item.indices(size))
            out_axis += 1
        elif isinstance(item, (list, tuple)):
            out.append([_check_index(int(i), size, axis) for i in item])
            out_axis += 1
        else:
            out.append(_check_index(int(item), size, axis))
        axis += 1
    return tuple(out), new_axes


def _check_index(index, size, axis):
    if not -size <= index < size:
        raise IndexError(f"index {index} is out of range for axis {axis} with size {size}")
    return index % size


def _insert_axes(shape, new_axes):
    shape = list(shape)
    for position in new_axes:
        shape.insert(position, 1)
    return tuple(shape)


# -- construction --------------------------------------------------------------
def _flatten(data):
    """Nested lists -> (flat list, shape)."""
    shape = []
    probe = data
    while isinstance(probe, (list, tuple)):
        shape.append(len(probe))
        if not probe:
            break
        probe = probe[0]
    flat = data
    for _ in range(len(shape) - 1):
        flat = [x for row in flat for x in row]
    if len(shape) and len(flat) != math.prod(shape):
        raise ShapeError(f"ragged nested list: expected shape {shape}")
    return (list(flat) if shape else [data]), tuple(shape)


def as_tensor(data, dtype=None, backend=None):
    """A Tensor from a Tensor, nested lists, a scalar or a numpy array."""
    if isinstance(data, Tensor):
        return data.astype(dtype) if dtype else data
    backend = backend or get_backend()
    if hasattr(data, "__array_interface__") or hasattr(data, "dtype"):
        if dtype is None:
            kind = str(data.dtype)
            dtype = _INT if kind.startswith(("int", "uint")) else (
                "bool" if kind == "bool" else _FLOAT)
        return Tensor(backend.from_host(data, tuple(data.shape), dtype), backend)
    flat, shape = _flatten(data)
    if dtype is None:
        if all(isinstance(x, bool) for x in flat) and flat:
            dtype = "bool"
        elif all(isinstance(x, int) for x in flat):
            dtype = _INT
        else:
            dtype = _FLOAT
    return Tensor(backend.from_host(flat, shape, dtype), backend)


tensor = as_tensor


def zeros(shape, dtype=_FLOAT, backend=None):
    return full(shape, 0, dtype, backend)


def ones(shape, dtype=_FLOAT, backend=None):
    return full(shape, 1, dtype, backend)


def full(shape, value, dtype=_FLOAT, backend=None):
    backend = backend or get_backend()
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    return Tensor(backend.full(shape, value, dtype), backend)


def arange(start, stop=None, dtype=_INT, backend=None):
    if stop is None:
        start, stop = 0, start
    backend = backend or get_backend()
    return Tensor(backend.arange(start, stop, dtype), backend)


def matmul(a, b, transpose_a=False, transpose_b=False):
    """``a @ b`` with optional transposes of the last two axes (no copies made)."""
    return _run("matmul", a, b, transpose_a=transpose_a, transpose_b=transpose_b)


def cat(tensors, axis=0):
    tensors = list(tensors)
    if not tensors:
        raise ShapeError("cat() needs at least one tensor")
    return _run("concat", tensors, _axis(axis, tensors[0].ndim))


def stack(tensors, axis=0):
    tensors = [t.unsqueeze(axis) for t in tensors]
    return cat(tensors, axis)


def where(cond, a, b):
    backend = next(x.backend for x in (cond, a, b) if isinstance(x, Tensor))
    return _run("where", as_tensor(cond, backend=backend), a if not isinstance(a, (list, tuple))
                else as_tensor(a, backend=backend), b)
