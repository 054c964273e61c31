"""``inspect(obj)``: an object's fields (type, shape, dtype, backend), the hooks registered on a
model, and each tensor drawn; HTML in Jupyter, a display value in the Lens notebook, text in a
terminal (``str`` / ``repr``)."""

from .convert import MAX_TENSORS, display_of
from .core import Display
from .tensors import tensor_part

MAX_FIELDS = 60
MAX_VALUE = 80  # characters of a field's repr shown


class Inspector(Display):
    """The fields of one object as text, and its views (``display_of``) or its tensors drawn."""

    def __init__(self, obj):
        self.target = obj
        rows = list(fields(obj))
        parts, about = _views(obj, rows)
        text = _table(rows) + (f"\n\n{about}" if about else "")
        super().__init__(parts, title=f"{type(obj).__module__}.{type(obj).__qualname__}", text=text)

    def __str__(self):
        return f"{self['title']}\n{self['text']}" if self["text"] else self["title"]

    def __repr__(self):
        return str(self)


def _views(obj, rows):
    """The object's views and their text (``display_of``), else its tensor fields drawn."""
    from ..tensor import Tensor

    try:
        shown = display_of(obj)
    except TypeError:  # no view draws the object itself
        tensors = [(name, value) for name, value, _ in rows if isinstance(value, Tensor)]
        return [tensor_part(value, title=name) for name, value in tensors[:MAX_TENSORS]], ""
    return list(shown["parts"]), shown["text"]


def fields(obj):
    """``(name, value, description)`` for each field: a Tensor's shape, dtype and backend; a
    model's config and registered hooks; a cache's activations; others' public attributes."""
    from ..cache import ActivationCache
    from ..model import TransformerModel
    from ..tensor import Tensor

    if isinstance(obj, Tensor):
        yield "shape", list(obj.shape), None
        yield "dtype", obj.dtype, None
        yield "backend", obj.backend.name, None
        yield "requires_grad", obj.requires_grad, None
        if obj.axes:
            yield "axes", list(obj.axes), None
        return
    if isinstance(obj, TransformerModel):
        yield "backend", obj.backend.name if hasattr(obj, "backend") else None, None
        for name, value in vars(obj.cfg).items():
            yield f"cfg.{name}", value, None
        hooks = obj.hook_manager.hooks
        yield "hooks registered", len(hooks), "; ".join(repr(hook) for hook in hooks) or "none"
        points = obj.hook_manager.hook_points
        active = [name for name in points if points[name].fns]
        yield (
            "hook points",
            len(points),
            f"{len(active)} with functions: {', '.join(active[:10])}" if active else None,
        )
        return
    if isinstance(obj, ActivationCache):
        for name in obj.keys():
            yield name, obj[name], None
        return
    items = vars(obj).items() if hasattr(obj, "__dict__") else ((n, getattr(obj, n)) for n in _slots(obj))
    for name, value in items:
        if not name.startswith("_"):
            yield name, value, None


def _slots(obj):
    return [
        name for kind in type(obj).__mro__ for name in getattr(kind, "__slots__", ()) if hasattr(obj, name)
    ]


def describe(value):
    from ..tensor import Tensor

    if isinstance(value, Tensor):
        return f"Tensor {list(value.shape)} {value.dtype} on {value.backend.name}"
    if isinstance(value, dict) and value and all(isinstance(v, Tensor) for v in value.values()):
        first = next(iter(value.values()))
        return f"dict of {len(value)} Tensors, e.g. {list(first.shape)} {first.dtype}"
    text = repr(value)
    return text if len(text) <= MAX_VALUE else text[: MAX_VALUE - 1] + "…"


def _table(rows):
    shown = rows[:MAX_FIELDS]
    width = max((len(name) for name, _, _ in shown), default=0)
    lines = [
        f"{name.ljust(width)}  {describe(value)}" + (f"  ({note})" if note else "")
        for name, value, note in shown
    ]
    if len(rows) > MAX_FIELDS:
        lines.append(f"… {len(rows) - MAX_FIELDS} more fields")
    return "\n".join(lines)


def inspect(obj):
    """An ``Inspector`` of ``obj``: shows as HTML in Jupyter and in the Lens notebook, as text in print()."""
    return Inspector(obj)
