"""Datasets and ``activations_at`` in the page (stdlib-only Pyodide, the cpu backend): a
JSONL file fetched from the site, the built-in demo sets, activations equal to CPython's,
and the cached result read back from IndexedDB after a reload instead of recomputed.
"""

import json

import numpy as np
import pytest

from neuroscope import Dataset, TransformerModel

from .pages import open_page, python, python_error, site  # noqa: F401 (fixture)

RECORDS = [{"text": "When Mary and John went to the store, John gave a drink to", "label": 1},
           {"text": "The cat sat on the", "label": 0}, {"text": "Hi", "label": 1}]

SCRIPT = """
from neuroscope import Dataset, TransformerModel
model = TransformerModel.from_huggingface("demo")
ds = Dataset.from_file(url)
calls = []
acts = model.activations_at("residual", 2, ds, progress=lambda done, total: calls.append(done))
{"n": len(ds), "labels": ds.column("label"), "ioi": len(Dataset.builtin("demo/ioi")),
 "computed": bool(calls), "acts": acts}
"""


def test_datasets_and_cached_activations_in_the_page(browser, site, tmp_path):  # noqa: F811
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "probe.jsonl").write_text("".join(json.dumps(r) + "\n" for r in RECORDS), encoding="utf-8")
    relative = site.add(str(folder), "datasets/probe")
    url = f"{site.url}/{relative}/probe.jsonl"
    want = TransformerModel.from_huggingface("demo").activations_at(
        "residual", 2, Dataset.from_file(folder / "probe.jsonl"), cache=False, progress=False).numpy()
    context = browser.new_context()
    page, _ = open_page(browser, site, "cpu", context=context)
    try:
        first = python(page, SCRIPT, url=url)
        assert (first["n"], first["labels"], first["ioi"], first["computed"]) == (3, [1, 0, 1], 200, True)
        got = np.asarray(first["acts"]["data"]).reshape(first["acts"]["shape"])
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
        page.reload()
        page.evaluate("window.neuroscope.ready")
        second = python(page, SCRIPT, url=url)
        assert second["computed"] is False  # read back from IndexedDB
        np.testing.assert_array_equal(np.asarray(second["acts"]["data"]), np.asarray(first["acts"]["data"]))
        error = python_error(page, "from neuroscope import Dataset\nDataset.from_file(url)",
                             url=f"{site.url}/{relative}/missing.jsonl")
        assert error["pyType"] == "DatasetError", error
    finally:
        context.close()


@pytest.mark.parametrize("content, words", [('{"text": "ok"}\n{"nope": 1}\n', ":2: the example has no 'text'")])
def test_bad_lines_are_named_in_the_page(browser, site, tmp_path, content, words):  # noqa: F811
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "bad.jsonl").write_text(content, encoding="utf-8")
    relative = site.add(str(folder), "datasets/bad")
    page, _ = open_page(browser, site, "cpu")
    try:
        error = python_error(page, "from neuroscope import Dataset\nDataset.from_file(url)",
                             url=f"{site.url}/{relative}/bad.jsonl")
        assert error["pyType"] == "DatasetError" and words in error["message"], error
    finally:
        page.context.close()
