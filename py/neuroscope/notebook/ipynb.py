"""The .ipynb form of a notebook (nbformat 4), the same one web/notebook.js writes and reads.

The first cell loads the notebook's model from its source and checks its content hash
(``metadata.neuroscope.role == "load-model"``, the source and hash also in its metadata), and
loads the IPython extension whose ``%%neuroscope_view VIEW`` magic draws a view cell's value.
A view cell is a code cell with ``metadata.neuroscope.view`` whose source is that magic line
and the Lens cell's source; reading a notebook strips both again, so cells round-trip.
"""

import json

from .cells import Cell

NBFORMAT, NBFORMAT_MINOR = 4, 5
LOAD_ROLE = "load-model"
VIEW_MAGIC = "%%neuroscope_view"


def load_model_source(source, content_hash):
    """The first cell's Python (web/notebook.js loadModelSource writes the same)."""
    check = f", content_hash={json.dumps(content_hash)}" if content_hash else ""
    return ("# The notebook's model, loaded from its source; the content hash checks the weights.\n"
            "%load_ext neuroscope.notebook\n"
            "from neuroscope.notebook import load_model\n"
            f"model = load_model({json.dumps(source, ensure_ascii=False)}{check})")


def to_ipynb(lens_cells, source, content_hash, prompt=None):
    """An nbformat-4 dict: the model-loading cell, then ``lens_cells`` ({type, source, view?})."""
    model = {"source": source, **({"content_hash": content_hash} if content_hash else {})}
    cells = [{"cell_type": "code", "execution_count": None, "outputs": [], "id": "load-model",
              "metadata": {"neuroscope": {"role": LOAD_ROLE, "model": model}},
              "source": load_model_source(source, content_hash)}]
    for index, cell in enumerate(lens_cells):
        common = {"id": f"cell-{index}", "metadata": {}}
        if cell["type"] == "markdown":
            cells.append({"cell_type": "markdown", **common, "source": cell["source"]})
            continue
        text = cell["source"]
        if cell["type"] == "view":
            common["metadata"] = {"neuroscope": {"view": cell["view"]}}
            text = f"{VIEW_MAGIC} {cell['view']}\n{text}"
        cells.append({"cell_type": "code", "execution_count": None, "outputs": [], **common, "source": text})
    metadata = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                "language_info": {"name": "python"},
                "neuroscope": {"version": 1, "model": model, **({"prompt": prompt} if prompt else {})}}
    return {"nbformat": NBFORMAT, "nbformat_minor": NBFORMAT_MINOR, "metadata": metadata, "cells": cells}


def from_ipynb(notebook):
    """``(cells, model, prompt)`` of an nbformat-4 dict: the Lens cells (the model-loading cell
    dropped, view magic lines stripped) and the model's {source, content_hash?} (None if absent)."""
    if not isinstance(notebook, dict) or not isinstance(notebook.get("cells"), list):
        raise ValueError('not a notebook: expected a JSON object with a "cells" list (nbformat 4)')
    if notebook.get("nbformat") != NBFORMAT:
        raise ValueError(f"nbformat {notebook.get('nbformat')!r}; expected {NBFORMAT}")
    info = (notebook.get("metadata") or {}).get("neuroscope") or {}
    model, cells = info.get("model"), []
    for cell in notebook["cells"]:
        source = cell.get("source", "")
        text = "".join(source) if isinstance(source, list) else str(source)
        meta = (cell.get("metadata") or {}).get("neuroscope") or {}
        if cell.get("cell_type") == "markdown":
            cells.append(Cell.from_lens({"type": "markdown", "source": text}))
        elif cell.get("cell_type") != "code":
            continue
        elif meta.get("role") == LOAD_ROLE:
            model = meta.get("model") or model
        elif meta.get("view"):
            first, _, rest = text.partition("\n")
            if first.split()[:1] == [VIEW_MAGIC]:
                text = rest
            cells.append(Cell.from_lens({"type": "view", "view": meta["view"], "source": text}))
        else:
            cells.append(Cell.from_lens({"type": "code", "source": text}))
    return cells, model, info.get("prompt")


__all__ = ["LOAD_ROLE", "VIEW_MAGIC", "from_ipynb", "load_model_source", "to_ipynb"]
