"""InterpretabilityNotebook: .ipynb written for Jupyter and run by a real kernel (nbclient and
ipykernel), read back; share links and files decoded as the Lens decodes them; the model's
content hash checked; where the Lens's site comes from."""

import json
import os

import pytest

from neuroscope import CodeCell, InteractiveLens, InterpretabilityNotebook, TextCell, VisualizationCell
from neuroscope.notebook import ModelMismatchError, load_model
from neuroscope.serve import SiteNotFoundError
from neuroscope.share import decode_state

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROMPT = "The cat sat on the mat. The cat"


def notebook():
    nb = InterpretabilityNotebook(model="demo", prompt=PROMPT)
    nb.add_cell(TextCell("# Induction on the demo model"))
    nb.add_cell(CodeCell("logits = model(model.to_tokens('The cat sat'))\nprint(tuple(logits.shape))"))
    nb.add_cell(VisualizationCell("attention", prompt=PROMPT))
    nb.add_cell(VisualizationCell("logit_lens", source="from neuroscope import lens\nlens.analyze(model, 'Paris is')"))
    return nb


def test_ipynb_runs_in_a_real_kernel_and_reads_back(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    path = tmp_path / "demo.ipynb"
    nb = notebook()
    nb.to_ipynb(path)
    document = nbformat.read(path, as_version=4)
    nbformat.validate(document)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [os.path.join(ROOT, "py"),
                                                                      os.environ.get("PYTHONPATH")])))
    client = nbclient.NotebookClient(document, kernel_name="python3", timeout=300,
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.km = client.create_kernel_manager()
    with client.setup_kernel(env=env):
        for index, cell in enumerate(document.cells):
            client.execute_cell(cell, index)
    outputs = [cell.get("outputs", []) for cell in document.cells]
    assert not [o for cell in outputs for o in cell if o["output_type"] == "error"]
    assert any(o.get("text", "").startswith("(1, ") for o in outputs[2]), outputs[2]  # the printed shape
    for index, view in ((3, "attention"), (4, "logit_lens")):
        html = [o["data"]["text/html"] for o in outputs[index] if "text/html" in o.get("data", {})]
        assert html, f"the {view} view cell displayed no HTML: {outputs[index]}"
        assert f'"view": "{view}"' in html[0] or f'"view":"{view}"' in html[0]
    back = InterpretabilityNotebook.from_ipynb(path)
    assert back == nb and back.cells == nb.cells and back.prompt == PROMPT
    assert back.content_hash() == nb.content_hash()


def test_load_model_refuses_other_weights():
    with pytest.raises(ModelMismatchError, match="content hash"):
        load_model("demo", content_hash="0" * 64)
    with pytest.raises(FileNotFoundError, match="local files"):
        load_model("local:config.json,model.safetensors,tokenizer.json")


def test_share_link_and_file_hold_the_cells_for_the_lens(tmp_path):
    nb = notebook()
    state = decode_state(nb.share_link(base="http://localhost:8000/web/index.html"))
    assert state["view"] == "notebook" and state["prompt"] == PROMPT and state["model"]["ref"] == "demo"
    assert state["notebook"] == nb.lens_cells() and state["notebook"][2]["view"] == "attention"
    document = json.loads(open(nb.to_neuroscope(tmp_path / "a.neuroscope")).read())
    assert document["format"] == "neuroscope-share" and decode_state(document["state"]) == state


def test_cells_refuse_what_they_cannot_draw():
    with pytest.raises(ValueError, match="expected one of"):
        VisualizationCell("pie_chart", prompt="x")
    with pytest.raises(ValueError, match="not drawn from lens.analyze"):
        VisualizationCell("patching", prompt="x")
    with pytest.raises(TypeError, match="add_cell takes"):
        InterpretabilityNotebook().add_cell("# text")


def test_no_site_and_no_npm_says_how_to_build(monkeypatch):
    from neuroscope import serve
    monkeypatch.delenv(serve.SITE_ENV, raising=False)
    monkeypatch.setattr(serve, "is_site", lambda folder: False)
    monkeypatch.setattr(serve, "can_build", lambda: False)
    with pytest.raises(SiteNotFoundError, match="python build.py build --out DIR"):
        InteractiveLens("demo").open_on("The cat", open_browser=False)
