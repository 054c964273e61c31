"""InteractiveLens in Chromium: the Lens served from CPython on the demo model and on a local
Hugging Face folder opens on the prompt with that model (the same weights: the hash pinned
by Python is the one the page computes); a Python-built notebook opens with its cells unrun;
a notebook exported from the Lens runs unchanged in a real Jupyter kernel and reads back."""

import os
import socket

import pytest

from neuroscope import InteractiveLens, InterpretabilityNotebook, TextCell, VisualizationCell

from .pages import BOOT_TIMEOUT_MS, new_page, site  # noqa: F401 (fixture)
from .test_app import ANALYSED, DEMO

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROMPT = "The cat sat on the mat"
pytestmark = pytest.mark.skipif(not os.path.exists(os.path.join(DEMO, "model.safetensors")),
                                reason="the demo model is not trained yet (python build.py train-demo)")


def opened(browser, url):
    page = new_page(browser.new_context())
    page.goto(url)
    page.wait_for_function(ANALYSED, timeout=BOOT_TIMEOUT_MS)
    return page


def port_free(port):
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def test_opens_on_the_demo_and_a_local_folder(browser, site, tmp_path):  # noqa: F811
    from tests.reference_models import build
    folder = build("gpt2", str(tmp_path / "tiny-gpt2"))
    for model, name in (("demo", "demo"), (folder, None)):
        lens = InteractiveLens(model, site=site.root, backend="cpu")
        url = lens.open_on(PROMPT, open_browser=False)
        port = lens.server.server_address[1]
        page = opened(browser, url)
        try:
            assert page.input_value("#prompt") == PROMPT
            info = page.evaluate("window.neuroscope.app.modelInfo")
            expected = lens.model_state()
            assert page.evaluate("window.neuroscope.app.state.model") == expected
            if name:
                assert info["name"] == name
            else:
                assert expected["ref"].endswith("/") and "/models/" in expected["ref"] and info["n_layers"] == 2
                assert len(expected["sha256"]) == 64
            assert not [m for m in page.messages if "have changed" in m or m.startswith("pageerror")]
        finally:
            page.context.close()
            lens.close()
        assert port_free(port)


def test_python_notebook_opens_unrun_and_lens_export_runs_in_jupyter(browser, site, tmp_path):  # noqa: F811
    nbclient = pytest.importorskip("nbclient")
    nbformat = pytest.importorskip("nbformat")
    notebook = InterpretabilityNotebook("demo", prompt=PROMPT)
    notebook.add_cell(TextCell("# From Python"))
    notebook.add_cell(VisualizationCell("attention", prompt=PROMPT))
    lens = InteractiveLens("demo", site=site.root, backend="cpu")
    page = opened(browser, lens.open_notebook(notebook, open_browser=False))
    try:
        assert page.evaluate("window.neuroscope.app.notebook.cells()") == notebook.lens_cells()
        pending = page.locator("#notebook .cell .output.pending")
        assert pending.count() == 1 and "not run" in pending.first.inner_text()
        page.click('#tabs button[data-view="notebook"]')
        with page.expect_download() as download:
            page.click("#notebook .notebook-bar button:has-text('Export .ipynb')")
        path = tmp_path / "from-lens.ipynb"
        download.value.save_as(path)
    finally:
        page.context.close()
        lens.close()
    back = InterpretabilityNotebook.from_ipynb(path)
    assert back.cells == notebook.cells and back.model_ref == "demo"
    assert back.content_hash() == notebook.content_hash()  # the page's content_hash() is CPython's
    document = nbformat.read(path, as_version=4)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [os.path.join(ROOT, "py"),
                                                                      os.environ.get("PYTHONPATH")])))
    client = nbclient.NotebookClient(document, kernel_name="python3", timeout=300,
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.km = client.create_kernel_manager()
    with client.setup_kernel(env=env):
        for index, cell in enumerate(document.cells):
            client.execute_cell(cell, index)
    outputs = [output for cell in document.cells for output in cell.get("outputs", [])]
    assert not [o for o in outputs if o["output_type"] == "error"]
    assert any("text/html" in o.get("data", {}) for o in document.cells[2].outputs)
