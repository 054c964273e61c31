"""Rich display of NeuroScope objects with the Lens's own views, in Jupyter and in the Lens notebook.

* ``html_of(obj)``: self-contained HTML drawing ``obj`` (a Tensor, ActivationCache, AttentionAnalysis,
  LogitLensTable, EdgeAttribution, LinearProbe, ProbeSweep, NeuronSummary, Circuit, HypothesisResult,
  or a ``neuroscope.lens`` result dict) with the views of web/views/. Each class's ``_repr_html_``
  returns it, so Jupyter shows the picture on its own.
* ``view_html(view, props, *, title=None)``: the HTML of one view (``"attention"``, ``"tensor"``, ...)
  drawn with the given props (the view's own props, as documented at the top of web/views/<view>.js).
* ``show(obj_or_view, props=None)``: ``show(obj)`` or ``show("attention", props)``. In Jupyter (IPython
  importable, not in the browser) it displays the HTML and returns None; elsewhere it returns the
  display value, which the Lens notebook draws and Jupyter displays through ``_repr_html_``.
* ``inspect(obj)``: an ``Inspector``: the object's fields (types, shapes, dtypes, backend, a model's
  registered hooks) and its views or tensors drawn; ``print(inspect(obj))`` is the terminal text.
* ``AttentionVisualizer.show(value, ...)``, ``LogitLensVisualizer``, ``PatchingVisualizer``,
  ``AttributionVisualizer``, ``NeuronVisualizer``, ``ProbeVisualizer``, ``CircuitVisualizer``,
  ``ActivationsVisualizer``, ``TensorVisualizer``: one view each (``.props(value, ...)`` gives the props).

The display value (the convention the Lens notebook draws): a dict (``Display``, a dict subclass)
``{"neuroscope_display": 1, "title": str | None, "text": str, "parts": [{"view": name, "props": {...},
"title": str | None}]}``. A Lens notebook cell (code or view) whose value is one draws ``text`` as
preformatted text and each part with its view (web/display.js); Tensors inside props travel as the
worker sends every Tensor (``{shape, dtype, data}``, data a typed array). Any code that returns such a
dict is drawn the same way.

The HTML (``display_html``) is one ``<div>`` with a unique id holding a static fallback (the title,
the text, and a line saying the views need a script), then one classic ``<script>`` with the bundled
views (views_bundle.js, built from web/views/ by ``bundle.py``) and the parts as JSON, Float32 Tensors
base64-encoded: no network access, no CDN. JupyterLab, classic Notebook and VS Code run output
scripts only in trusted notebooks (a notebook you ran yourself is trusted; an opened one needs
"Trust Notebook"); untrusted, the output shows the static fallback.
"""

import sys

from ..display_hooks import register
from .convert import display_of
from .core import Display, display_html, part, view_html
from .inspector import Inspector, inspect
from .visualizers import (
    ActivationsVisualizer,
    AttentionVisualizer,
    AttributionVisualizer,
    CircuitVisualizer,
    LogitLensVisualizer,
    NeuronVisualizer,
    PatchingVisualizer,
    ProbeVisualizer,
    TensorVisualizer,
)


def html_of(obj):
    """Self-contained HTML drawing ``obj`` with its Lens views (TypeError for an object with none)."""
    return display_html(display_of(obj))


def show(obj_or_view, props=None, *, title=None):
    """Display ``obj`` (or the view named ``obj_or_view`` with ``props``): in Jupyter it is shown and
    None returned; elsewhere (the Lens notebook, a script) the display value is returned."""
    if isinstance(obj_or_view, str):
        if props is None:
            raise TypeError(f"show({obj_or_view!r}) names a view; pass its props too: show(view, props)")
        value = Display([part(obj_or_view, props)], title=title)
    elif props is not None:
        raise TypeError(f"show(obj, props): props are for a view name, got a {type(obj_or_view).__name__}")
    else:
        value = obj_or_view if isinstance(obj_or_view, Display) else display_of(obj_or_view, title=title)
    ipython = _ipython_display()
    if ipython is None:
        return value
    ipython(value)
    return None


def _ipython_display():
    """IPython's display() inside a running IPython (Jupyter); None in Pyodide and plain Python."""
    if sys.platform == "emscripten":
        return None
    ipython_module = sys.modules.get("IPython")
    if ipython_module is None or ipython_module.get_ipython() is None:
        return None  # not in a kernel or shell: the caller gets the value to show itself
    from IPython.display import display

    return display


register(html_of, inspect)

__all__ = [
    "ActivationsVisualizer",
    "AttentionVisualizer",
    "AttributionVisualizer",
    "CircuitVisualizer",
    "Display",
    "Inspector",
    "LogitLensVisualizer",
    "NeuronVisualizer",
    "PatchingVisualizer",
    "ProbeVisualizer",
    "TensorVisualizer",
    "display_html",
    "display_of",
    "html_of",
    "inspect",
    "show",
    "view_html",
]
