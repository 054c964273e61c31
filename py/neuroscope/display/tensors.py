"""A Tensor as the tensor view's props: numpy-style truncated text, summary statistics, and a
heatmap (2-D) or a histogram (any other shape)."""

import math

from .core import flatten, part

THRESHOLD, EDGE_ITEMS = 1000, 3  # numpy's print options: summarise above 1000 elements, 3 at each edge
MAX_CELLS = 128  # heatmap rows / columns drawn; larger tensors are strided
MAX_SAMPLES = 200_000  # values binned for the histogram; larger tensors are strided
BINS = 30


def tensor_part(tensor, title=None):
    values = tensor.tolist()
    flat = [float(v) for v in flatten(values)]
    props = {
        "shape": list(tensor.shape),
        "dtype": tensor.dtype,
        "backend": tensor.backend.name,
        "text": tensor_text(values, tensor.shape, tensor.size),
        "stats": stats(flat),
    }
    if tensor.ndim == 2 and tensor.size:
        props["heatmap"] = heatmap(values)
    elif tensor.size:
        props["histogram"] = histogram(flat)
    return part("tensor", props, title)


def tensor_text(values, shape, size):
    """The values as numpy prints them: nested brackets, 4 significant digits, ``...`` in place
    of the middle of any axis longer than 6 when the tensor has more than 1000 elements."""
    summarise = size > THRESHOLD
    flat = [v for v in flatten(_truncate(values, summarise)) if v is not _ELLIPSIS]
    width = max((len(_number(v)) for v in flat), default=1)
    return _nested(_truncate(values, summarise), len(shape), width, 1)


_ELLIPSIS = object()


def _truncate(values, summarise):
    if not isinstance(values, list):
        return values
    if summarise and len(values) > 2 * EDGE_ITEMS:
        values = values[:EDGE_ITEMS] + [_ELLIPSIS] + values[-EDGE_ITEMS:]
    return [item if item is _ELLIPSIS else _truncate(item, summarise) for item in values]


def _number(value):
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    return f"{value:.4g}"


def _nested(values, depth, width, indent):
    if depth == 0:
        return _number(values).rjust(width)
    if depth == 1:
        return "[" + ", ".join("..." if v is _ELLIPSIS else _number(v).rjust(width) for v in values) + "]"
    joiner = "," + "\n" * (depth - 1) + " " * indent
    rows = ["..." if v is _ELLIPSIS else _nested(v, depth - 1, width, indent + 1) for v in values]
    return "[" + joiner.join(rows) + "]"


def stats(flat):
    finite = [v for v in flat if math.isfinite(v)]
    if not finite:
        return None
    mean = sum(finite) / len(finite)
    std = math.sqrt(sum((v - mean) ** 2 for v in finite) / len(finite))
    return {"min": min(finite), "max": max(finite), "mean": mean, "std": std, "count": len(flat)}


def heatmap(rows):
    """Every k-th row and column so that at most MAX_CELLS of each are drawn."""
    from ..tensor import tensor

    row_step = max(1, math.ceil(len(rows) / MAX_CELLS))
    col_step = max(1, math.ceil(len(rows[0]) / MAX_CELLS))
    kept = [[float(v) for v in row[::col_step]] for row in rows[::row_step]]
    # A Tensor, so the Lens worker sends it as a typed array (and display HTML as base64).
    return {
        "rows": len(kept),
        "cols": len(kept[0]),
        "data": tensor(kept, dtype="float32"),
        "rowStep": row_step,
        "colStep": col_step,
    }


def histogram(flat, bins=BINS):
    step = max(1, math.ceil(len(flat) / MAX_SAMPLES))
    sample = [v for v in flat[::step] if math.isfinite(v)]
    if not sample:
        return None
    low, high = min(sample), max(sample)
    if high == low:
        low, high = low - 0.5, high + 0.5
    width = (high - low) / bins
    counts = [0] * bins
    for v in sample:
        counts[min(bins - 1, int((v - low) / width))] += 1
    return {"edges": [low + i * width for i in range(bins)] + [high], "counts": counts}
