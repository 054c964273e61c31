"""The primitive op table: every op a backend implements, defined once, as data.

Each ``Op`` has a name, named parameters (in order, with defaults), a number of
outputs and a shape rule: the output shapes and dtypes, computed without running
the op. Everything else reads this table: ``Backend.dispatch`` (which ops exist),
``JsBackend`` (binds positional and keyword arguments to the parameter names, so
``f(x, 1)`` and ``f(x, axis=1)`` send the same message, and allocates outputs by
the shape rule), and the worker's kernel bridge, which imports the table as JSON
from ``worker/backends/op_table.js`` (generated from this module; ``build.py``
writes it into the built site and ``tests/test_op_table.py`` checks the committed
copy is current).

Adding an op:

1. an ``Op(...)`` entry in the ``_OPS`` list below, with its shape rule;
2. the numpy reference: a ``NumpyBackend`` method of the same name and parameters
   (``numpy_backend.py``, the living definition of the op);
3. one kernel per JS backend, in the op map of ``worker/backends/cpu.js``,
   ``webgl.js`` and ``webgpu.js``: a function ``(backend, outs, params)`` whose
   ``params`` carry this table's parameter names;
4. cases in ``tests/browser/op_cases.py``, then
   ``python -m neuroscope.backends > worker/backends/op_table.js``.
   ``tests/test_op_table.py`` names whatever is still missing.

Parameter kinds (documentation, and how ``JsBackend`` encodes a value): ``tensor``,
``tensor?`` (or None), ``operand`` (a tensor or a Python scalar), ``tensors`` (a
list), ``name`` (one of ``choices``), ``int``, ``ints`` (a tuple), ``float``,
``number``, ``bool``, ``dtype`` (a dtype name) and ``key`` (a slice key: a tuple of
ints, ``(start, stop, step)`` triples normalised by ``slice.indices``, and int lists).

Shape rules follow the numpy reference (``tests/test_shapes.py`` checks them op by
op). Dtype rules, simplified for the browser: floating results are float32; integer
results int64 (stored as int32 on the device); comparisons and ``isfinite`` give bool.
Stdlib only: this module is imported in a Pyodide without numpy.
"""

from ..errors import ShapeError

_REQUIRED = object()
FLOAT, INT, BOOL = "float32", "int64", "bool"
# Half-precision tensors combined with ints, bools, Python numbers or their own dtype stay
# in it; with float32, float64 or the other half they give float32.
_HALF_FLOATS, _WIDE_FLOATS = frozenset(("float16", "bfloat16")), frozenset(("float32", "float64"))
_COMPARISONS = {"eq", "ne", "lt", "le", "gt", "ge"}


class Param:
    """One named parameter of an op: ``kind`` as listed in the module docstring."""

    __slots__ = ("name", "kind", "default", "choices")

    def __init__(self, name, kind, default=_REQUIRED, choices=None):
        self.name, self.kind, self.default = name, kind, default
        self.choices = tuple(choices) if choices is not None else None

    @property
    def required(self):
        return self.default is _REQUIRED

    def __repr__(self):
        return self.name if self.required else f"{self.name}={self.default!r}"

    def to_json(self):
        out = {"name": self.name, "kind": self.kind}
        if not self.required:
            out["default"] = self.default
        if self.choices is not None:
            out["choices"] = list(self.choices)
        return out


class Op:
    """A primitive op: ``rule(**params)`` gives ``[(shape, dtype), ...]`` of its outputs.

    An op with ``outputs`` > 1 returns a tuple of that length; a rule may give fewer
    entries (attention without its pattern) and the missing outputs are None.
    """

    __slots__ = ("name", "params", "names", "outputs", "rule", "doc")

    def __init__(self, name, params, rule=None, outputs=1, doc=""):
        self.name, self.params, self.outputs, self.rule, self.doc = name, tuple(params), outputs, rule, doc
        self.names = tuple(p.name for p in self.params)  # read on every dispatch

    @property
    def signature(self):
        return f"{self.name}({', '.join(map(repr, self.params))})"

    def param(self, name):
        return next(p for p in self.params if p.name == name)

    def bind(self, args, kwargs):
        """``{name: value}`` in table order, defaults filled in, like Python binds a call."""
        if len(args) > len(self.params):
            raise TypeError(f"{self.signature} takes {len(self.params)} arguments, got {len(args)}")
        bound = dict(zip(self.names, args))
        for name, value in kwargs.items():
            if name not in self.names:
                raise TypeError(f"{self.signature} got an unexpected argument {name!r}")
            if name in bound:
                raise TypeError(f"{self.signature} got two values for argument {name!r}")
            bound[name] = value
        out = {}
        for param in self.params:
            if param.name in bound:
                value = bound[param.name]
                if param.choices is not None and value not in param.choices:
                    raise ValueError(f"{self.name}: {param.name} {value!r} is not one of "
                                     f"{list(param.choices)}")
                out[param.name] = value
            elif param.required:
                raise TypeError(f"{self.signature} is missing argument {param.name!r}")
            else:
                out[param.name] = param.default
        return out

    def infer(self, params):
        """``[(shape, dtype), ...]`` of the outputs, from bound ``params``."""
        return self.rule(**params)

    def to_json(self):
        return {"params": [p.to_json() for p in self.params], "outputs": self.outputs, "doc": self.doc}

    def __repr__(self):
        return f"<Op {self.signature} -> {self.outputs}>"


# -- shape rules ---------------------------------------------------------------------

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
    halves = kinds & _HALF_FLOATS
    if len(halves) == 1 and not kinds & _WIDE_FLOATS:
        return halves.pop()  # a half-precision model computes in its dtype (torch's rule)
    if kinds & (_HALF_FLOATS | _WIDE_FLOATS) or "pyfloat" in kinds or op == "div":
        return FLOAT
    if kinds <= {BOOL} and op in ("mul", "maximum", "minimum"):
        return BOOL
    return INT


def _unary(op, x):
    shape, dtype = _meta(x)
    return [(shape, BOOL if op == "isfinite" else dtype)]


def _binary(op, a, b):
    (sa, da), (sb, db) = _meta(a), _meta(b)
    return [(broadcast(sa, sb), _binary_dtype(op, da, db))]


def _where(cond, a, b):
    (sc, _), (sa, da), (sb, db) = _meta(cond), _meta(a), _meta(b)
    return [(broadcast(sc, sa, sb), _binary_dtype("add", da, db))]


def _cast(x, dtype):
    return [(_meta(x)[0], dtype)]


def check_matmul_operands(a, b):
    """ShapeError unless both operands are at least 2-d (numpy would take a 1-d one; the
    browser's kernels do not, so no backend does). Every backend's matmul calls it."""
    if len(a.shape) < 2 or len(b.shape) < 2:
        raise ShapeError(f"matmul needs at least 2-d operands, got {list(a.shape)} and {list(b.shape)}; "
                         "reshape a vector to [1, n] or [n, 1]")


def _matmul(a, b, transpose_a, transpose_b):
    (sa, da), (sb, db) = _meta(a), _meta(b)
    check_matmul_operands(a, b)
    m, k = (sa[-1], sa[-2]) if transpose_a else (sa[-2], sa[-1])
    k2, n = (sb[-1], sb[-2]) if transpose_b else (sb[-2], sb[-1])
    if k != k2:
        raise ShapeError(f"matmul inner sizes differ: {list(sa)} @ {list(sb)} "
                         f"(transpose_a={transpose_a}, transpose_b={transpose_b})")
    return [(broadcast(sa[:-2], sb[:-2]) + (m, n), _binary_dtype("mul", da, db))]


def _reduce(op, x, axes, keepdims):
    shape, dtype = _meta(x)
    out = tuple(1 if i in axes else s for i, s in enumerate(shape)) if keepdims else \
        tuple(s for i, s in enumerate(shape) if i not in axes)
    if op in ("mean", "var") and dtype not in _HALF_FLOATS:
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


def _same(x, **rest):
    return [_meta(x)]


def _check_axis(op, axis, ndim):
    if not 0 <= axis < ndim:
        raise ShapeError(f"{op}: axis {axis} for a {ndim}-d tensor; the op table takes axes 0-{ndim - 1} "
                         "(Tensor methods turn negative axes into these)")


def _gather(x, indices, axis):
    (sx, dx), (si, _) = _meta(x), _meta(indices)
    _check_axis("gather", axis, len(sx))
    return [(sx[:axis] + si + sx[axis + 1:], dx)]


def _take_along(x, indices, axis):
    (sx, dx), (si, _) = _meta(x), _meta(indices)
    _check_axis("take_along", axis, len(sx))
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
    _check_axis("topk", axis, len(shape))
    out = shape[:axis] + (k,) + shape[axis + 1:]
    return [(out, dtype), (out, INT)]


def _attention(q, k, v, mask, scale, return_pattern):
    (sq, dq), (sk, _), (sv, _) = _meta(q), _meta(k), _meta(v)
    batch, q_len, heads, _ = sq
    outputs = [((batch, q_len, heads, sv[-1]), dq)]
    if return_pattern:
        outputs.append(((batch, heads, q_len, sk[1]), dq))
    return outputs


# -- the table -----------------------------------------------------------------------

UNARY_OPS = ("neg", "exp", "log", "sqrt", "rsqrt", "tanh", "abs", "square",
             "relu", "sigmoid", "silu", "gelu", "gelu_new", "isfinite")
BINARY_OPS = ("add", "sub", "mul", "div", "pow", "maximum", "minimum",
              "eq", "ne", "lt", "le", "gt", "ge")
REDUCE_OPS = ("sum", "mean", "max", "min", "var")

P = Param
_OPS = [
    Op("unary", [P("op", "name", choices=UNARY_OPS), P("x", "tensor")], _unary),
    Op("binary", [P("op", "name", choices=BINARY_OPS), P("a", "operand"), P("b", "operand")], _binary,
       doc="numpy broadcasting; a or b may be a Python scalar"),
    Op("where", [P("cond", "tensor"), P("a", "operand"), P("b", "operand")], _where,
       doc="numpy broadcasting; a or b may be a Python scalar"),
    Op("cast", [P("x", "tensor"), P("dtype", "dtype")], _cast),
    Op("matmul", [P("a", "tensor"), P("b", "tensor"), P("transpose_a", "bool", False),
                  P("transpose_b", "bool", False)], _matmul,
       doc="batched over leading axes, which broadcast"),
    Op("reduce", [P("op", "name", choices=REDUCE_OPS), P("x", "tensor"), P("axes", "ints"),
                  P("keepdims", "bool")], _reduce),
    Op("argmax", [P("x", "tensor"), P("axis", "int")], _argmax, doc="int64 result"),
    Op("cumsum", [P("x", "tensor"), P("axis", "int")], _cumsum),
    Op("softmax", [P("x", "tensor"), P("axis", "int")], _same,
       doc="safe: a row that is entirely -inf gives zeros, not NaN"),
    Op("log_softmax", [P("x", "tensor"), P("axis", "int")], _same),
    Op("layer_norm", [P("x", "tensor"), P("weight", "tensor?"), P("bias", "tensor?"), P("eps", "float")],
       _same, doc="over the last axis; weight and bias may be None"),
    Op("rms_norm", [P("x", "tensor"), P("weight", "tensor?"), P("eps", "float")], _same,
       doc="over the last axis; weight may be None"),
    Op("gather", [P("x", "tensor"), P("indices", "tensor"), P("axis", "int")], _gather,
       doc="numpy take: result shape x[:axis] + indices + x[axis+1:]"),
    Op("take_along", [P("x", "tensor"), P("indices", "tensor"), P("axis", "int")], _take_along,
       doc="numpy take_along_axis"),
    Op("slice", [P("x", "tensor"), P("key", "key")], _slice,
       doc="outer indexing in axis order; an int drops its axis"),
    Op("set_slice", [P("x", "tensor"), P("key", "key"), P("value", "operand")], _same,
       doc="a copy of x with x[key] = value"),
    Op("concat", [P("xs", "tensors"), P("axis", "int")], _concat),
    Op("reshape", [P("x", "tensor"), P("shape", "ints")], _reshape),
    Op("permute", [P("x", "tensor"), P("axes", "ints")], _permute),
    Op("broadcast_to", [P("x", "tensor"), P("shape", "ints")], _broadcast_to),
    Op("topk", [P("x", "tensor"), P("k", "int"), P("axis", "int")], _topk, outputs=2,
       doc="(values, int64 indices), sorted descending; ties keep the lower index first"),
    Op("rotary", [P("x", "tensor"), P("cos", "tensor"), P("sin", "tensor"), P("rotary_dim", "int")], _same,
       doc="GPT-NeoX rotate_half on the first rotary_dim features of x [batch, pos, head, d_head]; "
           "cos, sin [batch, pos, rotary_dim]"),
    Op("attention", [P("q", "tensor"), P("k", "tensor"), P("v", "tensor"), P("mask", "tensor?"),
                     P("scale", "float"), P("return_pattern", "bool")], _attention, outputs=2,
       doc="(z, pattern or None); q [batch, q_pos, head, d_head], k, v [batch, k_pos, kv_head, d_head], "
           "head a multiple of kv_head; mask bool [batch, q_pos, k_pos] (True = may attend) or None "
           "for causal attention with the queries aligned to the last keys"),
]
del P

PRIMITIVE_OPS = {op.name: op for op in _OPS}

# Messages the kernel bridge also takes that are not ops on tensors: the output's shape
# and dtype travel in ``out`` like an op's, the fill in these parameters.
ALLOCATORS = {
    "full": Op("full", [Param("value", "number")], doc="every element = value"),
    "arange": Op("arange", [Param("start", "int")], doc="start, start + 1, ... along the one axis"),
}


def lookup(op):
    """The ``Op`` named ``op``; NotImplementedError naming the valid ones if there is none."""
    spec = PRIMITIVE_OPS.get(op)
    if spec is None:
        raise NotImplementedError(f"op {op!r} is not a primitive op; expected one of {sorted(PRIMITIVE_OPS)}")
    return spec


def infer(op, *args, **attrs):
    """[(shape, dtype), ...] of the outputs of ``op`` on handles / scalars ``args``."""
    spec = lookup(op)
    return spec.infer(spec.bind(args, attrs))


def describe():
    """The op list as text, one signature per line: what the docs show."""
    return "\n".join(f"{op.signature} -> {op.outputs}" + (f"  # {op.doc}" if op.doc else "")
                     for op in PRIMITIVE_OPS.values())


def table_json():
    return {"primitive": {name: op.to_json() for name, op in PRIMITIVE_OPS.items()},
            "allocators": {name: op.to_json() for name, op in ALLOCATORS.items()}}


def js_module():
    """``worker/backends/op_table.js``: the table as JSON in an ES module, one op a line."""
    import json

    def block(ops):
        lines = (f"    {json.dumps(name)}: {json.dumps(spec)}" for name, spec in ops.items())
        return "{\n" + ",\n".join(lines) + "\n  }"

    table = table_json()
    return ("// Generated from py/neuroscope/backends/ops.py (the op table) by\n"
            "// `python -m neuroscope.backends > worker/backends/op_table.js`; do not edit.\n"
            "export const OP_TABLE = {\n"
            f'  "primitive": {block(table["primitive"])},\n'
            f'  "allocators": {block(table["allocators"])}\n'
            "};\n")
