"""``InterpretabilityNotebook``: a Lens notebook built in Python, written for Jupyter or the Lens.

    notebook = InterpretabilityNotebook(model=model)
    notebook.add_cell(TextCell("# Induction heads"))
    notebook.add_cell(VisualizationCell("attention", prompt="The cat sat on the mat. The cat"))
    notebook.to_ipynb("induction.ipynb")      # Jupyter: loads the model (hash checked), draws the views
    notebook.share_link()                     # the Lens: cells shown, code run only on a click
    notebook.to_neuroscope("induction.neuroscope")
    InterpretabilityNotebook.from_ipynb("induction.ipynb")  # ours, or one the Lens exported

The .ipynb format is ipynb.py's (the same as web/notebook.js's Export .ipynb); Jupyter's side
is jupyter.py (``load_model`` and the ``%%neuroscope_view`` magic).
"""

import json

from ..interactive import ModelSource
from ..share import DEFAULT_PROMPT, encode_state, share_link, share_state, validate_state
from .cells import Cell, CodeCell, TextCell, VisualizationCell
from .ipynb import from_ipynb, to_ipynb
from .jupyter import ModelMismatchError, load_ipython_extension, load_model, run_view_cell, show_view

SHARE_FILE_FORMAT, SHARE_FILE_VERSION = "neuroscope-share", 1  # web/share.js FILE_FORMAT
# The files of a local folder, as the Lens names a model it was given as files (web/app.js
# "local:..."): a link cannot carry the folder, so the Lens asks for the files.
# `python build.py serve`: the Lens page itself (the site root's redirect would drop the fragment).
DEFAULT_BASE = "http://localhost:8000/web/index.html"
LOCAL_FILES = "local:config.json,model.safetensors,tokenizer.json"


class InterpretabilityNotebook:
    """Cells (TextCell, CodeCell, VisualizationCell) over one model: a TransformerModel, "demo",
    a hub name, a URL or a local Hugging Face folder; ``prompt`` is the Lens's prompt."""

    def __init__(self, model="demo", cells=(), prompt=DEFAULT_PROMPT, content_hash=None):
        self.source = ModelSource.of(model)
        self.prompt = prompt
        self.cells = []
        self._content_hash = content_hash
        for cell in cells:
            self.add_cell(cell)

    def add_cell(self, cell):
        """Append ``cell``; returns it."""
        if not isinstance(cell, Cell) or type(cell) is Cell:
            raise TypeError(f"add_cell takes a TextCell, CodeCell or VisualizationCell; got {cell!r}")
        self.cells.append(cell)
        return cell

    @property
    def model_ref(self):
        return self.source.ref

    def content_hash(self):
        """The model's content hash (loading it once, when only its source was given)."""
        if self._content_hash is None:
            self._content_hash = self.source.content_hash()
        return self._content_hash

    def lens_cells(self):
        return [cell.to_lens() for cell in self.cells]

    # -- Jupyter ------------------------------------------------------------------------------
    def to_ipynb(self, path=None):
        """The notebook as nbformat 4 (a dict), written to ``path`` when given."""
        notebook = to_ipynb(self.lens_cells(), self.source.ref, self.content_hash(), self.prompt)
        if path is not None:
            with open(path, "w", encoding="utf-8") as handle:
                json.dump(notebook, handle, indent=1, ensure_ascii=False)
                handle.write("\n")
        return notebook

    @classmethod
    def from_ipynb(cls, path_or_notebook):
        """A notebook read from an .ipynb file (or its dict) that this class or the Lens wrote;
        its model is the source in the first cell (the content hash is kept, not checked here)."""
        notebook = path_or_notebook
        if not isinstance(notebook, dict):
            with open(path_or_notebook, encoding="utf-8") as handle:
                notebook = json.load(handle)
        cells, model, prompt = from_ipynb(notebook)
        if not model or not model.get("source"):
            raise ValueError("this notebook names no model (no neuroscope load-model cell and no "
                             "metadata.neuroscope.model); it was not written by NeuroScope")
        return cls(model["source"], cells, prompt or DEFAULT_PROMPT, content_hash=model.get("content_hash"))

    # -- the Lens -----------------------------------------------------------------------------
    def lens_state(self, lens=None):
        """The Lens state of this notebook (view "notebook"). A local folder's model is served by
        ``lens`` (an InteractiveLens) when given; otherwise the Lens asks for its files."""
        state = share_state(None, prompt=self.prompt, view="notebook", notebook=self.lens_cells())
        if lens is not None:
            state["model"] = lens.model_state(self.source)
        else:
            sha256 = self.source.weights_sha256()
            ref = LOCAL_FILES if self.source.kind == "folder" else self.source.ref
            state["model"] = {"ref": ref, **({"sha256": sha256} if sha256 else {})}
        return validate_state(state)

    def share_link(self, base=DEFAULT_BASE, lens=None):
        """A Lens link (at ``base``, or at ``lens``'s server) that opens these cells unrun."""
        if lens is not None:
            return lens.url(self.lens_state(lens))
        return share_link(self.lens_state(), base)

    def to_neuroscope(self, path):
        """Write the Lens share file (``{"format": "neuroscope-share", ...}``) the Lens opens."""
        document = {"format": SHARE_FILE_FORMAT, "version": SHARE_FILE_VERSION,
                    "state": encode_state(self.lens_state())}
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(document, handle)
        return path

    def __eq__(self, other):
        return (isinstance(other, InterpretabilityNotebook) and other.cells == self.cells
                and other.source.ref == self.source.ref)

    def __repr__(self):
        return f"InterpretabilityNotebook({self.source.ref!r}, {len(self.cells)} cells)"


__all__ = ["CodeCell", "InterpretabilityNotebook", "ModelMismatchError", "TextCell", "VisualizationCell",
           "load_ipython_extension", "load_model", "run_view_cell", "show_view"]
