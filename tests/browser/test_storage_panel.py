"""The Lens's Storage panel (web/storage_panel.js; issue 19, item 6), on real IndexedDB.

After the app has booted the panel lists the demo model's cached weights with the file's
size; an activation cache saved from Python appears (announced by the worker), Remove
deletes it from IndexedDB (Python's ActivationCache.load then raises StorageKeyError),
Remove all empties a kind; the persistent-storage state is the browser's own. When the
browser refuses a write, the StorageQuotaError and the panel both name the bytes stored
at that moment and the quota navigator.storage.estimate() claimed.
"""

import os
import re

import pytest

from .pages import open_page, python, python_error, site  # noqa: F401 (fixture)
from .test_app import DEMO, open_app, screenshot

MOUNT = """async () => {
  const { mountStoragePanel } = await import("./storage_panel.js");
  const panel = mountStoragePanel(document.getElementById("storage-panel"), {
    message: (text, level) => (window.neuroscope.app ? window.neuroscope.app.message(text, level) : null) });
  document.getElementById("storage").open = true;
  await panel.ready;
}"""
# Every entry in IndexedDB, read without NeuroScope's code: {key: size}, and the parts' keys.
ENTRIES = """async () => {
  const db = await new Promise((resolve) => { const r = indexedDB.open("neuroscope"); r.onsuccess = () => resolve(r.result); });
  const all = (store, method) => new Promise((resolve) => {
    const r = db.transaction(store).objectStore(store)[method](); r.onsuccess = () => resolve(r.result); });
  const entries = await all("entries", "getAll");
  const parts = await all("parts", "getAllKeys");
  db.close();
  return { sizes: Object.fromEntries(entries.map((e) => [e.key, e.size])), parts: parts.map((k) => k[0]) };
}"""
SAVE = "from neuroscope import ActivationCache, tensor\nActivationCache({'x': tensor(values)}).save(key)"


def _row(key):
    return f'#storage-panel tr[data-key="{key}"]'


def _row_bytes(page, key):
    page.wait_for_selector(_row(key))
    return int(page.get_attribute(_row(key), "data-bytes"))


@pytest.mark.skipif(not os.path.exists(os.path.join(DEMO, "model.safetensors")),
                    reason="the demo model is not trained yet (python build.py train-demo)")
def test_the_panel_lists_weights_and_saved_caches_and_removes_them(browser, site):  # noqa: F811
    page = open_app(browser, site)
    try:
        page.evaluate(MOUNT)
        weights = f"weights/{site.url}/py/neuroscope/demo/model/model.safetensors"
        size = os.path.getsize(os.path.join(site.root, "py", "neuroscope", "demo", "model", "model.safetensors"))
        assert size == os.path.getsize(os.path.join(DEMO, "model.safetensors"))
        assert _row_bytes(page, weights) == size
        assert page.inner_text(_row(weights)).startswith("/py/neuroscope/demo/model/model.safetensors")

        # Saved from Python in the worker: the panel hears of it without a refresh.
        saved = python(page, SAVE, key="k", values=[1.0, 2.0, 3.0])
        other = python(page, SAVE, key="k2", values=[4.0] * 100)
        assert _row_bytes(page, "activations/k") == saved == page.evaluate(ENTRIES)["sizes"]["activations/k"]
        assert _row_bytes(page, "activations/k2") == other
        screenshot(page, "storage")

        page.click(f'{_row("activations/k")} button.storage-remove')
        page.wait_for_selector(_row("activations/k"), state="detached")
        stored = page.evaluate(ENTRIES)
        assert "activations/k" not in stored["sizes"] and "activations/k" not in stored["parts"]
        missing = python_error(page, "from neuroscope import ActivationCache\nActivationCache.load('k')")
        assert missing["pyType"] == "StorageKeyError" and "'k2'" in missing["message"]

        page.click('#storage-panel tbody[data-kind="weights/"] button.storage-remove-all')
        page.wait_for_selector('#storage-panel tbody[data-kind="weights/"]', state="detached")
        stored = page.evaluate(ENTRIES)
        assert not [key for key in stored["sizes"] if key.startswith("weights/")]
        assert not [key for key in stored["parts"] if key.startswith("weights/")]
        assert "activations/k2" in stored["sizes"]
        assert "freed" in page.inner_text("#messages")

        # The persistent-storage line says what the browser says, before and after asking.
        assert page.get_attribute("#storage-panel", "data-persisted") == str(
            page.evaluate("navigator.storage.persisted()")).lower()
        if page.get_attribute("#storage-panel", "data-persisted") == "false":
            drawn = page.get_attribute("#storage-panel", "data-drawn")
            page.click("#storage-panel button.storage-persist-button")
            page.wait_for_function(f"document.getElementById('storage-panel').dataset.drawn !== '{drawn}'")
        granted = page.evaluate("navigator.storage.persisted()")
        assert page.get_attribute("#storage-panel", "data-persisted") == str(granted).lower()
        assert ("Persistent storage: granted" if granted else "Persistent storage: not granted") in page.inner_text(
            "#storage-panel .storage-persist")
    finally:
        page.context.close()


BIG = """
import random
from neuroscope import ActivationCache, tensor
rng = random.Random(1)
ActivationCache({"noise": tensor([rng.random() for _ in range(1 << 20)])}).save("second")  # 4 MiB
"""
QUOTA = 2 << 20


def test_a_refused_write_names_the_bytes_stored_and_the_estimated_quota(browser, site):  # noqa: F811
    page, _ = open_page(browser, site, "cpu")
    try:
        # Set before this origin stores anything (Chromium caches the space left for a while).
        cdp = page.context.new_cdp_session(page)
        cdp.send("Storage.overrideQuotaForOrigin", {"origin": page.evaluate("location.origin"), "quotaSize": QUOTA})
        page.evaluate(MOUNT)
        first = python(page, SAVE, key="first", values=[0.5] * 1000)
        page.wait_for_selector(_row("activations/first"))
        error = python_error(page, BIG)
        assert error["pyType"] == "StorageQuotaError", error
        assert "earlier are intact" in error["message"] and "QuotaExceededError" in error["message"]
        stored = page.evaluate(ENTRIES)
        assert stored["sizes"] == {"activations/first": first} and "activations/second" not in stored["parts"]
        # What was stored when the browser refused: the first cache (the 4 MiB went in one batch).
        refused = re.search(r"the browser refused more at [^(]+\((\d+) bytes stored; it had estimated a quota of "
                            r"[^,]+, (\d+) bytes\)", error["message"])
        assert refused, error["message"]
        # As in a fresh profile, the estimate claims far more than the quota the browser enforces.
        estimated = page.evaluate("navigator.storage.estimate().then((e) => e.quota)")
        assert int(refused.group(1)) == first and int(refused.group(2)) == estimated > QUOTA
        page.wait_for_function("!document.querySelector('#storage-panel .storage-refused').hidden")
        line = page.inner_text("#storage-panel .storage-refused")
        assert line.startswith("The browser refused more at") and f"({first} bytes stored;" in line
        assert f"{estimated} bytes" in line and "activations/second" in line
        # Kept across a reload: the page remembers the latest refusal.
        page.reload()
        page.evaluate("window.neuroscope.ready")
        page.evaluate(MOUNT)
        assert f"({first} bytes stored;" in page.inner_text("#storage-panel .storage-refused")
        assert _row_bytes(page, "activations/first") == first
    finally:
        page.context.close()
