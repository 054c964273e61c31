"""What a NeuroScope notebook needs in Jupyter: ``load_model`` (its first cell) and the
``%%neuroscope_view VIEW`` cell magic (``%load_ext neuroscope.notebook``), which runs a view
cell and draws its last expression's value with the Lens view's visualizer
(``neuroscope.AttentionVisualizer.show`` for "attention", ...)."""

import ast

from ..errors import NeuroScopeError
from .cells import VIEWS

# Lens view -> the visualizer that draws it in Jupyter (neuroscope.display); views without
# one of their own are drawn by neuroscope.show.
VISUALIZERS = {"attention": "AttentionVisualizer", "logit_lens": "LogitLensVisualizer",
               "patching": "PatchingVisualizer", "attribution": "AttributionVisualizer",
               "neurons": "NeuronVisualizer", "probes": "ProbeVisualizer", "circuit": "CircuitVisualizer",
               "activations": "ActivationsVisualizer"}


class ModelMismatchError(NeuroScopeError):
    """The model loaded from a notebook's source is not the one the notebook was made with."""


def load_model(source, content_hash=None):
    """``TransformerModel.from_huggingface(source)``, refused when its ``content_hash()`` is not
    ``content_hash`` (the notebook was made with other weights)."""
    from ..model import TransformerModel
    if isinstance(source, str) and source.startswith("local:"):
        raise _local_files_error(source)
    model = TransformerModel.from_huggingface(source)
    if content_hash and model.content_hash() != content_hash:
        raise ModelMismatchError(
            f"the model at {source!r} has content hash {model.content_hash()[:16]}…, but this notebook was "
            f"made with {content_hash[:16]}…: its weights or configuration differ")
    return model


def _local_files_error(source):
    return FileNotFoundError(
        f"this notebook's model was loaded from local files in the Lens ({source[6:]}), whose folder the "
        f"Lens does not know: replace {source!r} in this cell with the path of the folder holding them")


def show_view(view, value):
    """Draw ``value`` with the Lens view ``view`` (in Jupyter: display it; returns what
    the visualizer returns)."""
    if view not in VIEWS:
        raise ValueError(f"view {view!r}; expected one of {VIEWS}")
    import neuroscope
    if view in VISUALIZERS:
        return getattr(neuroscope, VISUALIZERS[view]).show(value)
    return neuroscope.show(value)


def run_view_cell(view, source, namespace):
    """Run ``source`` in ``namespace`` and draw its last expression's value with ``view``."""
    tree = ast.parse(source, filename=f"<{view} view cell>")
    if not tree.body or not isinstance(tree.body[-1], ast.Expr):
        raise ValueError(f"a {view} view cell must end with an expression (the value the view draws); "
                         "this one ends with a statement")
    exec(compile(ast.Module(tree.body[:-1], type_ignores=[]), f"<{view} view cell>", "exec"), namespace)
    value = eval(compile(ast.Expression(tree.body[-1].value), f"<{view} view cell>", "eval"), namespace)
    return show_view(view, value)


def load_ipython_extension(ipython):
    def neuroscope_view(line, cell):
        view = line.strip()
        if view not in VIEWS:
            raise ValueError(f"%%neuroscope_view {view!r}: expected one of {VIEWS}")
        run_view_cell(view, cell, ipython.user_ns)

    ipython.register_magic_function(neuroscope_view, "cell", "neuroscope_view")


__all__ = ["ModelMismatchError", "load_ipython_extension", "load_model", "run_view_cell", "show_view"]
