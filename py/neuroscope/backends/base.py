"""The backend interface: an allocator plus a fixed list of primitive ops.

``neuroscope.Tensor`` sends every op through ``Backend.dispatch``; a backend
implements exactly the methods listed in ``PRIMITIVE_OPS`` (plus the allocator)
and nothing else is ever asked of it. The numpy backend is the reference: the
living definition of each op. GPU backends are tested against it.

Handles are opaque to ``Tensor`` except for two attributes every handle has:
``shape`` (a tuple of ints) and ``dtype`` (something ``str()`` turns into a
dtype name such as ``"float32"``). numpy arrays already qualify.

Conventions shared by every backend (so that kernels agree):

* Broadcasting follows numpy's rules for the binary ops and ``where``.
* ``softmax`` is *safe*: a row that is entirely ``-inf`` yields zeros, not NaN
  (fully masked query rows appear with left padding).
* ``attention`` takes TransformerLens' layout: ``q [batch, q_pos, head, d_head]``,
  ``k, v [batch, k_pos, kv_head, d_head]``; ``head`` must be a multiple of
  ``kv_head`` (grouped-query attention repeats each key/value head). ``mask`` is a
  boolean ``[batch, q_pos, k_pos]`` (True = may attend) or None for plain causal
  attention with the queries aligned to the last keys (as with a key/value cache).
* ``rotary`` rotates the first ``rotary_dim`` features of ``x [batch, pos, head,
  d_head]`` GPT-NeoX style (``rotate_half``), with ``cos``/``sin`` of shape
  ``[batch, pos, rotary_dim]``.
"""

DTYPES = ("float32", "float16", "float64", "int64", "int32", "uint8", "bool")

UNARY_OPS = ("neg", "exp", "log", "sqrt", "rsqrt", "tanh", "abs", "square",
             "relu", "sigmoid", "silu", "gelu", "gelu_new", "isfinite")
BINARY_OPS = ("add", "sub", "mul", "div", "pow", "maximum", "minimum",
              "eq", "ne", "lt", "le", "gt", "ge")
REDUCE_OPS = ("sum", "mean", "max", "min", "var")

# The fixed list of primitive ops, with their signatures. Adding an op means
# adding it here, to the numpy reference, and to every other backend.
PRIMITIVE_OPS = {
    "unary": "(op, x) -> y; op in UNARY_OPS",
    "binary": "(op, a, b) -> y; op in BINARY_OPS; a or b may be a Python scalar",
    "where": "(cond, a, b) -> y",
    "cast": "(x, dtype) -> y",
    "matmul": "(a, b, transpose_a=False, transpose_b=False) -> y; batched, broadcasting",
    "reduce": "(op, x, axes, keepdims) -> y; op in REDUCE_OPS; axes a tuple",
    "argmax": "(x, axis) -> int64 y",
    "cumsum": "(x, axis) -> y",
    "softmax": "(x, axis) -> y; safe for all -inf rows",
    "log_softmax": "(x, axis) -> y",
    "layer_norm": "(x, weight, bias, eps) -> y; over the last axis; weight/bias may be None",
    "rms_norm": "(x, weight, eps) -> y; over the last axis; weight may be None",
    "gather": "(x, indices, axis) -> y; indices an int tensor, result shape x[:axis]+idx+x[axis+1:]",
    "take_along": "(x, indices, axis) -> y; numpy take_along_axis",
    "slice": "(x, key) -> y; key a tuple of ints / (start, stop, step) triples / int lists",
    "set_slice": "(x, key, value) -> y; a copy of x with x[key] = value",
    "concat": "(xs, axis) -> y",
    "reshape": "(x, shape) -> y",
    "permute": "(x, axes) -> y",
    "broadcast_to": "(x, shape) -> y",
    "topk": "(x, k, axis) -> (values, indices); sorted descending",
    "rotary": "(x, cos, sin, rotary_dim) -> y",
    "attention": "(q, k, v, mask, scale, return_pattern) -> (z, pattern or None)",
}


class Backend:
    """Allocator + primitive ops. Subclasses implement every method below."""

    name = "abstract"

    # -- allocator -----------------------------------------------------------
    def from_host(self, data, shape, dtype):
        """A handle holding ``data`` (flat sequence, buffer or nested list)."""
        raise NotImplementedError

    def from_bytes(self, buffer, source_dtype, shape, dtype="float32"):
        """A handle from raw little-endian bytes in a safetensors dtype
        (``"F32"``, ``"F16"``, ``"BF16"``, ``"I64"``, ...), converted to ``dtype``."""
        raise NotImplementedError

    def full(self, shape, value, dtype):
        raise NotImplementedError

    def arange(self, start, stop, dtype):
        raise NotImplementedError

    def to_list(self, handle):
        """Nested Python lists (scalars for 0-d)."""
        raise NotImplementedError

    def to_numpy(self, handle):
        raise NotImplementedError

    def free(self, handle):
        """Release device memory early; the handle must not be used again."""

    # -- dispatch ------------------------------------------------------------
    def dispatch(self, op, *args, **attrs):
        """The one funnel every Tensor op goes through."""
        if op not in PRIMITIVE_OPS:
            raise NotImplementedError(
                f"op {op!r} is not a primitive op; expected one of {sorted(PRIMITIVE_OPS)}")
        return getattr(self, op)(*args, **attrs)

    def __repr__(self):
        return f"<{type(self).__name__} {self.name!r}>"
