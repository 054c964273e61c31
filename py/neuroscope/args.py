"""Indices as users pass them: layers, heads, positions and neurons.

One place decides what an index may be, so every API agrees: a Python or numpy
integer (anything with ``__index__``, not a bool); for head lists also ``"all"``
in any case, or None, meaning every head. Strings, floats and out-of-range
values are refused with a message naming the value, its type and the range.
"""

from .errors import InvalidIndexError, LayerNotFoundError


def is_integer(value):
    """A Python or numpy integer (or 0-d integer array); not a bool, a float or a string."""
    return (not isinstance(value, bool) and hasattr(value, "__index__")
            and tuple(getattr(value, "shape", ())) == ())


def as_index(value, what, size, negative=False):
    """``value`` as a plain int in ``0..size-1`` (or ``-size..size-1`` with ``negative``);
    ``size`` None checks the type (and sign) only."""
    low = (-size if size is not None else None) if negative else 0
    expected = _range(low, size)
    if not is_integer(value) and not _scalar_integer(value):
        raise InvalidIndexError(f"{what} {value!r} (a {type(value).__name__}) requested; expected "
                                f"an integer {expected}")
    index = int(value.item() if hasattr(value, "item") else value)
    if (low is not None and index < low) or (size is not None and index >= size):
        raise InvalidIndexError(f"{what} {index} requested; expected an integer {expected}")
    return index


def as_layer(layer, n_layers, negative=False):
    """A layer index, or ``LayerNotFoundError`` (every layer check raises that)."""
    try:
        return as_index(layer, "layer", n_layers, negative)
    except InvalidIndexError:
        expected = _range(-n_layers if negative else 0, n_layers)[3:]
        raise LayerNotFoundError(layer, n_layers, expected) from None


def as_indices(value, what, size, allow_all=True, negative=False):
    """A list of ints for one index or many; None for ``"all"`` / None (every index)."""
    if value is None or (allow_all and isinstance(value, str) and value.lower() == "all"):
        return None
    if isinstance(value, str):
        alternative = " or 'all'" if allow_all else ""
        raise InvalidIndexError(f"{what} {value!r} requested; expected an integer or a list of integers "
                                f"{_range(0, size)}{alternative}")
    single = what[:-1] if what.endswith("s") else what
    if is_integer(value) or _scalar_integer(value):
        return [as_index(value, single, size, negative)]
    if hasattr(value, "tolist"):
        value = value.tolist()
    try:
        items = list(value)
    except TypeError:
        raise InvalidIndexError(f"{what} {value!r} (a {type(value).__name__}) requested; expected an "
                                f"integer or a list of integers {_range(0, size)}") from None
    return [as_index(item, single, size, negative) for item in items]


def _scalar_integer(value):
    # A 0-d integer Tensor or numpy array.
    shape = getattr(value, "shape", None)
    dtype = str(getattr(value, "dtype", ""))
    return shape is not None and tuple(shape) == () and "int" in dtype


def _range(low, size):
    """The valid range in words, e.g. "in 0-7"; ``size`` None: no upper bound."""
    if size is None:
        return ">= 0" if low == 0 else ""
    if size <= 0:
        return "in nothing (the axis is empty)"
    if low < 0:
        return f"in 0-{size - 1} (or {low} to -1, counting from the end)"
    return f"in {low}-{size - 1}"
