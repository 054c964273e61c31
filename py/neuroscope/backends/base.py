"""The backend interface: an allocator plus a fixed list of primitive ops.

``neuroscope.Tensor`` sends every op through ``Backend.dispatch``; a backend
implements exactly the ops of the op table (``ops.PRIMITIVE_OPS``: one method
each, with the table's parameter names, plus the allocator) and nothing else is
ever asked of it. The numpy backend is the reference: the
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

import os

from ..errors import ShapeError
from .ops import BINARY_OPS, PRIMITIVE_OPS, REDUCE_OPS, UNARY_OPS, describe, lookup

if __doc__:  # None under python -OO
    __doc__ += "\nThe primitive ops (generated from ``ops.PRIMITIVE_OPS``)::\n\n" + "\n".join(
        "    " + line for line in describe().splitlines()) + "\n"

DTYPES = ("float32", "float16", "float64", "int64", "int32", "uint8", "bool")
__all__ = ["BINARY_OPS", "DTYPES", "PRIMITIVE_OPS", "REDUCE_OPS", "UNARY_OPS", "Backend", "check_ops"]

# Whether Backend.dispatch runs each op's shape rule (ops.py) and compares the result with
# it. The browser's backends always do (they allocate outputs from the rule); in CPython it
# costs about 15 us an op, so it is on for the test suite (tests/conftest.py) and off by
# default; NEUROSCOPE_CHECK_OPS=1 turns it on.
_checking = os.environ.get("NEUROSCOPE_CHECK_OPS", "") not in ("", "0")


def check_ops(on=True):
    """Check every op of the CPython backends against the op table (the shape rules the
    browser's backends apply); returns the previous setting."""
    global _checking
    previous, _checking = _checking, bool(on)
    return previous


class Backend:
    """Allocator + primitive ops. Subclasses implement every method below, and one
    method per op of the table unless they override ``dispatch``."""

    name = "abstract"
    # Whether reading values back is synchronous and cheap (CPython's backends), so that a
    # tensor's repr can show them; the browser's device backends read back asynchronously.
    reads_synchronously = False
    # The dtypes a loaded model's weights may keep (``from_huggingface(dtype=...)``): the
    # browser's backends compute in float32 (half-precision files are widened on load).
    weight_dtypes = ("float32",)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.dispatch is Backend.dispatch:
            missing = [op for op in PRIMITIVE_OPS if not callable(getattr(cls, op, None))]
            if missing:
                raise TypeError(f"backend {cls.__name__} lacks the primitive ops {missing} "
                                "(backends/ops.py lists them; each is a method of that name)")

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

    def mark_weights(self, handles):
        """Says ``handles`` are a model's weights: long-lived, read by every pass. A hint
        about lifetime only (the browser's cpu backend compiles such matrices into its
        graphs instead of copying them in on each run); no backend needs it."""

    # -- dispatch ------------------------------------------------------------
    def dispatch(self, op, /, *args, **attrs):
        """The one funnel every Tensor op goes through (``op`` a name in the op table)."""
        spec = lookup(op)
        if not _checking:
            return getattr(self, op)(*args, **attrs)
        expected = spec.infer(spec.bind(args, attrs))  # raises what the browser would raise
        result = getattr(self, op)(*args, **attrs)
        got = [r for r in (result if isinstance(result, tuple) else (result,)) if r is not None]
        got = [(tuple(r.shape), self.dtype_name(r)) for r in got]
        if got != [(tuple(shape), str(dtype)) for shape, dtype in expected]:
            raise ShapeError(f"backend {self.name!r}: op {op!r} returned {got} where the op table says "
                             f"{expected}; the browser's backends would disagree")
        return result

    def dtype_name(self, handle):
        """The dtype name (``"float32"``) of one of this backend's handles."""
        return str(handle.dtype)

    def __repr__(self):
        return f"<{type(self).__name__} {self.name!r}>"
