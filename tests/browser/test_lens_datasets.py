"""Uploading a dataset in the Lens: a JSONL picked in the probe form is checked and kept in
IndexedDB, the probe view runs on it with the same accuracies as CPython on the same file,
it is still offered (in the probe and neuron forms) after a reload, the storage panel lists
it with its size and removes it; a malformed file is refused with its line number and
nothing is kept."""

import json
import os

import numpy as np
import pytest

from .pages import BOOT_TIMEOUT_MS, site  # noqa: F401 (fixture)
from .test_app import DEMO, open_app, screenshot, show, wait_idle

pytestmark = pytest.mark.skipif(not os.path.exists(os.path.join(DEMO, "model.safetensors")),
                                reason="the demo model is not trained yet (python build.py train-demo)")

NAME = "ioi order sample.jsonl"
CHOICE = f"stored:{NAME}"
KEYS = """async () => (await import('/worker/storage.js')).listEntries().then((entries) =>
    Object.fromEntries(entries.map((entry) => [entry.key, entry.size])))"""
IDLE = "() => window.neuroscope.app.busy.size === 0"


def _jsonl(tmp_path):
    from neuroscope import Dataset
    records = [{"text": e["text"], "label": e["label"]} for e in Dataset.builtin("demo/ioi-order")][:60]
    path = tmp_path / NAME
    path.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")
    return path


def _options(page, select):
    return page.eval_on_selector_all(f"{select} option", "(options) => options.map((o) => o.value)")


def test_an_uploaded_dataset_is_probed_kept_across_reloads_and_removable(browser, site, tmp_path):  # noqa: F811
    path = _jsonl(tmp_path)
    context = browser.new_context()
    page = open_app(browser, site, context=context)
    try:
        show(page, "probes")
        page.set_input_files("#probe-upload", str(path))
        page.wait_for_function(f"() => window.neuroscope.app.results.probes?.dataset === {json.dumps(CHOICE)}"
                               " && window.neuroscope.app.busy.size === 0", timeout=BOOT_TIMEOUT_MS)
        result = page.evaluate("window.neuroscope.app.results.probes")
        assert page.evaluate(KEYS)[f"datasets/{NAME}"] > os.path.getsize(path)
        assert CHOICE in _options(page, "#probe-dataset") and CHOICE in _options(page, "#neuron-dataset")
        assert f'lens.probes(model, "{CHOICE}", "residual")' in page.inner_text('.panel[data-view="probes"] .code code')
        assert any("60 examples" in m for m in page.evaluate(
            "[...document.querySelectorAll('#messages p')].map((li) => li.textContent)"))

        from neuroscope import Dataset, TransformerModel
        from neuroscope.analysis import probe_layers
        sweep = probe_layers(TransformerModel.from_huggingface(DEMO), Dataset.from_file(str(path)), "residual")
        np.testing.assert_allclose(result["train"], sweep.train_accuracy, atol=0.05)
        assert result["n_train"] == sweep.n_train and result["n_test"] == sweep.n_test
        screenshot(page, "probes-uploaded")

        page.reload()
        wait_idle(page)
        assert CHOICE in _options(page, "#probe-dataset") and CHOICE in _options(page, "#neuron-dataset")
        assert page.evaluate("window.neuroscope.app.state.selection.probeDataset") == CHOICE
        show(page, "probes")
        page.wait_for_function(f"() => window.neuroscope.app.results.probes?.dataset === {json.dumps(CHOICE)}"
                               " && window.neuroscope.app.busy.size === 0", timeout=BOOT_TIMEOUT_MS)
        assert page.evaluate("window.neuroscope.app.results.probes.train") == result["train"]

        page.click("#storage > summary")
        row = f'#storage-panel tr[data-key="datasets/{NAME}"]'
        page.wait_for_selector(row, state="attached")
        assert int(page.get_attribute(row, "data-bytes")) == page.evaluate(KEYS)[f"datasets/{NAME}"]
        page.eval_on_selector(f"{row} button.storage-remove", "(button) => button.click()")
        page.wait_for_function(f"() => ![...document.querySelectorAll('#probe-dataset option')]"
                               f".some((o) => o.value === {json.dumps(CHOICE)})")
        assert f"datasets/{NAME}" not in page.evaluate(KEYS)
    finally:
        context.close()


def test_a_malformed_upload_names_the_line_and_keeps_nothing(browser, site, tmp_path):  # noqa: F811
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "fine", "label": 0}\n{"text": oops}\n', encoding="utf-8")
    context = browser.new_context()
    page = open_app(browser, site, context=context)
    try:
        show(page, "probes")
        page.set_input_files("#probe-upload", str(bad))
        page.wait_for_function("() => [...document.querySelectorAll('#messages p')]"
                               ".some((li) => li.textContent.includes('bad.jsonl:2'))", timeout=BOOT_TIMEOUT_MS)
        page.wait_for_function(IDLE)
        text = page.evaluate("[...document.querySelectorAll('#messages p')].map((li) => li.textContent).join('\\n')")
        assert "DatasetError" in text and "bad.jsonl:2: not a JSON object" in text
        assert not [key for key in page.evaluate(KEYS) if key.startswith("datasets/")]
        assert "stored:bad.jsonl" not in _options(page, "#probe-dataset")
        assert page.evaluate("window.neuroscope.app.state.selection.probeDataset") == "demo/ioi-order"
    finally:
        context.close()
