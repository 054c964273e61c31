"""The cells of an ``InterpretabilityNotebook``: the Lens notebook's three kinds (web/notebook.js).

``TextCell`` is Markdown, ``CodeCell`` Python run where ``model`` is the notebook's model, and
``VisualizationCell`` Python whose last expression's value a Lens view draws (in Jupyter through
the matching visualizer, e.g. ``AttentionVisualizer.show``).
"""

import json

VIEWS = ("tokens", "attention", "logit_lens", "activations", "ablation", "patching", "attribution", "circuit",
         "neurons", "probes")  # web/notebook.js VIEWS: what a view cell can draw
# Views drawn from lens.analyze's result, so a VisualizationCell can be made from a prompt alone.
ANALYSIS_VIEWS = ("tokens", "attention", "logit_lens", "activations")


class Cell:
    type = None

    def __init__(self, source):
        if not isinstance(source, str):
            name = type(self).__name__
            raise TypeError(f"{name} takes its source as a string; got {type(source).__name__}")
        self.source = source

    def to_lens(self):
        """The cell as the Lens stores it: {type, source[, view]}."""
        return {"type": self.type, "source": self.source}

    @staticmethod
    def from_lens(cell):
        kind = cell.get("type")
        if kind == "markdown":
            return TextCell(cell["source"])
        if kind == "code":
            return CodeCell(cell["source"])
        if kind == "view":
            return VisualizationCell(cell.get("view") or "attention", cell["source"])
        raise ValueError(f"cell type {kind!r}; expected one of 'markdown', 'code', 'view'")

    def __eq__(self, other):
        return type(other) is type(self) and other.to_lens() == self.to_lens()

    def __repr__(self):
        return f"{type(self).__name__}({self.source!r})"


class TextCell(Cell):
    """Markdown."""

    type = "markdown"


class CodeCell(Cell):
    """Python; ``model`` is the notebook's model."""

    type = "code"


class VisualizationCell(Cell):
    """``source``'s last expression drawn by the Lens view ``view``. With ``prompt`` instead of
    ``source`` (views of lens.analyze: tokens, attention, logit_lens, activations) the source is
    ``lens.analyze(model, prompt)``, the call the Lens itself shows for those views."""

    type = "view"

    def __init__(self, view, source=None, prompt=None):
        if view not in VIEWS:
            raise ValueError(f"view {view!r}; expected one of {VIEWS}")
        if (source is None) == (prompt is None):
            raise TypeError("VisualizationCell takes either source (Python whose last expression is drawn) "
                            f"or prompt (for the views of lens.analyze: {ANALYSIS_VIEWS}), not both")
        if prompt is not None:
            if view not in ANALYSIS_VIEWS:
                raise ValueError(f"VisualizationCell({view!r}, prompt=...): the {view} view is not "
                                 f"drawn from lens.analyze; give its source (prompts: {ANALYSIS_VIEWS})")
            literal = json.dumps(prompt, ensure_ascii=False)
            source = f"from neuroscope import lens\nlens.analyze(model, {literal})"
        super().__init__(source)
        self.view = view

    def to_lens(self):
        return {**super().to_lens(), "view": self.view}

    def __repr__(self):
        return f"VisualizationCell({self.view!r}, {self.source!r})"


__all__ = ["ANALYSIS_VIEWS", "VIEWS", "Cell", "CodeCell", "TextCell", "VisualizationCell"]
