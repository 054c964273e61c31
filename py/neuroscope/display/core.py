"""Display values and their self-contained HTML (see the package docstring for the convention)."""

import base64
import html
import json
import math
import uuid
from array import array
from importlib import resources

_BUNDLE = "views_bundle.js"
VIEW_NAMES = (
    "ablation",
    "activations",
    "attention",
    "attribution",
    "circuit",
    "logit_lens",
    "neurons",
    "patching",
    "probes",
    "tensor",
    "tokens",
)


class Display(dict):
    """``{"neuroscope_display": 1, "title", "text", "parts": [{"view", "props", "title"}]}``: a dict, so
    the Lens worker sends it to the page like any result; ``_repr_html_`` draws it in Jupyter."""

    def __init__(self, parts, title=None, text=""):
        for part in parts:
            if part["view"] not in VIEW_NAMES:
                raise ValueError(f"no view named {part['view']!r}; expected one of {list(VIEW_NAMES)}")
        super().__init__(neuroscope_display=1, title=title, text=text, parts=list(parts))

    def _repr_html_(self):
        return display_html(self)

    def __repr__(self):
        views = ", ".join(part["view"] for part in self["parts"])
        return f"Display({self['title'] or 'untitled'}: {views or 'text only'})"


def part(view, props, title=None):
    return {"view": view, "props": props, "title": title}


def view_html(view, props, *, title=None):
    """Self-contained HTML drawing ``props`` with the Lens view ``view`` (see ``display_html``)."""
    return display_html(Display([part(view, props)], title=title))


def display_html(display):
    """One ``<div>`` with a unique id, a static fallback (the title and text, readable when the
    output's scripts do not run), the bundled views in a classic ``<script>`` (no network) and
    the parts as JSON, Float32 tensors base64-encoded."""
    # Random, not a counter: outputs saved from earlier kernel sessions share the page with new ones.
    element = f"neuroscope-display-{uuid.uuid4().hex}"
    spec = {"parts": [dict(p, props=encode(p["props"])) for p in display["parts"]]}
    payload = json.dumps(spec, allow_nan=True).replace("</", "<\\/")  # a "</script>" inside a string
    title = (
        f'<div style="font:600 14px system-ui,sans-serif;margin:4px 0">{html.escape(display["title"])}</div>'
        if display["title"]
        else ""
    )
    text = (
        (
            f'<pre class="neuroscope-text" style="margin:4px 0;font-size:12px">'
            f"{html.escape(display['text'])}</pre>"
        )
        if display["text"]
        else ""
    )
    views = ", ".join(p["view"] for p in display["parts"])
    # What shows until the script draws (the script replaces it): a note, and each tensor's values.
    fallback = (
        (
            '<p class="neuroscope-fallback" style="color:#59636e;font:12px system-ui,sans-serif">'
            f"Views ({html.escape(views)}) are drawn by a script in this output; trust the notebook to "
            "see them.</p>"
        )
        + "".join(
            f'<pre style="font-size:12px">{html.escape(p["props"]["text"])}</pre>'
            for p in display["parts"]
            if p["view"] == "tensor" and p["props"].get("text")
        )
        if display["parts"]
        else ""
    )
    return (
        f'<div class="neuroscope-display">{title}{text}<div id="{element}">{fallback}</div>'
        f"<script>{bundle()}\n;NeuroScopeDisplay.mount({json.dumps(element)}, {payload});</script></div>"
    )


_cache = {}


def bundle():
    """The bundled views (``views_bundle.js`` next to this module), read once."""
    if "js" not in _cache:
        source = resources.files(__package__).joinpath(_BUNDLE).read_text(encoding="utf-8")
        _cache["js"] = source.replace("</script", "<\\/script")
    return _cache["js"]


def encode(value):
    """Props as JSON: a Tensor becomes ``{shape, dtype, data: {"$float32": base64}}`` (the views take
    ``{shape, data}``), an ``array('f')`` becomes ``{"$float32": base64}``; NaN and infinities of
    plain numbers become None (JSON has none)."""
    from ..tensor import Tensor

    if isinstance(value, Tensor):
        flat = flatten(value.tolist())
        return {"shape": list(value.shape), "dtype": "float32", "data": {"$float32": _b64(array("f", flat))}}
    if isinstance(value, array):
        return {"$float32": _b64(array("f", value))}
    if isinstance(value, dict):
        return {str(key): encode(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [encode(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _b64(values):
    return base64.b64encode(values.tobytes()).decode("ascii")


def flatten(nested):
    """A nested list of numbers, flat (a scalar: one element)."""
    if not isinstance(nested, list):
        return [nested]
    out = []
    stack = [iter(nested)]
    while stack:
        for item in stack[-1]:
            if isinstance(item, list):
                stack.append(iter(item))
                break
            out.append(item)
        else:
            stack.pop()
    return out
