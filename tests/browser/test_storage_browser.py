"""Weights and activations kept in the browser (issue 3, items 7 and 8).

Weights: a model loaded once is cached in IndexedDB, so a new page in the same browser
profile loads it with NO request for model.safetensors; a changed file (new ETag, with a
server that asks for revalidation) is downloaded again; downloads report byte progress;
a bad file is a ModelFormatError, is never cached, and leaves the page usable.
Activations: ``cache.save`` / ``ActivationCache.load`` across a page reload; a byte budget
spills to IndexedDB with identical results; a full quota is a StorageQuotaError and what
was saved before still loads intact.
"""

import hashlib
import random
import re

import numpy as np
import pytest

from neuroscope.safetensors_format import SafetensorsFile, save_file

from .pages import open_page, python, python_error, site  # noqa: F401 (fixture)

LOAD = """
from neuroscope import TransformerModel
model = TransformerModel.from_huggingface(location)
model(model.to_tokens("When Mary and John went to the store"))
"""
PADDING = 3 * 2**20 + 12345  # an unused tensor, so the download spans several progress events


def _copy_model(reference_dir, site, name, padding=PADDING):  # noqa: F811
    """The tiny gpt2 under models/<name>/ on the site, with a padding tensor; returns the folder."""
    import shutil
    source = reference_dir("gpt2")
    target = f"{site.root}/models/{name}"
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(source, target)
    _rewrite(target, 1.0, padding)
    return target


def _rewrite(folder, scale_ln_f, padding=PADDING):
    with SafetensorsFile.open(f"{folder}/model.safetensors") as weights:
        tensors = {name: (weights.info(name).dtype, weights.info(name).shape, bytes(weights.raw(name)))
                   for name in weights.keys()}
    bias = np.frombuffer(tensors["transformer.ln_f.bias"][2], dtype=np.float32) * scale_ln_f + (scale_ln_f - 1)
    tensors["transformer.ln_f.bias"] = ("F32", tensors["transformer.ln_f.bias"][1], bias.tobytes())
    if padding:
        tensors["padding"] = ("U8", (padding,), random.Random(0).randbytes(padding))
    save_file(tensors, f"{folder}/model.safetensors")


def _logits(page, location):
    payload = python(page, LOAD, location=location)
    return np.asarray(payload["data"], dtype=np.float32).reshape(payload["shape"])


def _weight_requests(page):
    requests = []
    page.on("request", lambda request: requests.append(request) if request.url.endswith(
        "/model.safetensors") else None)
    return requests


def _downloads(page, url_part):
    return [event for event in page.evaluate("window.neuroscope.progress")
            if event["stage"] == "download" and url_part in event["url"]]


def test_second_page_loads_weights_from_indexeddb_without_a_request(browser, site, reference_dir):  # noqa: F811
    import os
    folder = _copy_model(reference_dir, site, "gpt2-cached")
    size = os.path.getsize(f"{folder}/model.safetensors")
    first, _ = open_page(browser, site, "cpu")
    try:
        requests = _weight_requests(first)
        expected = _logits(first, "../models/gpt2-cached")
        assert len(requests) == 1
        events = _downloads(first, "gpt2-cached/model.safetensors")
        done = [event["done"] for event in events]
        assert len(events) >= 3 and done == sorted(done) and done[-1] == size
        assert all(event["total"] == size and not event.get("cached") for event in events)
        # Python holds the file as a proxy of the JS bytes and hands the device byte ranges.
        kinds = python(first, "from neuroscope.model.loading import open_location\n"
                              "reader = open_location(location).weights()\n"
                              "type(reader).__name__, type(reader.raw('padding')).__name__",
                       location="../models/gpt2-cached")
        assert kinds == ["HostSafetensors", "HostRange"]

        second, _ = open_page(browser, site, "cpu", context=first.context)
        requests = _weight_requests(second)
        np.testing.assert_array_equal(_logits(second, "../models/gpt2-cached"), expected)
        assert requests == []
        [event] = _downloads(second, "gpt2-cached/model.safetensors")
        assert event["cached"] is True and event["done"] == event["total"] == size
        forget = "from neuroscope.storage import forget_weights\nforget_weights(url)"
        assert python(second, forget, url="../models/gpt2-cached/model.safetensors") == 1
        np.testing.assert_array_equal(_logits(second, "../models/gpt2-cached"), expected)
        assert len(requests) == 1  # forgotten: downloaded again
    finally:
        first.context.close()


def test_a_changed_file_is_downloaded_again(browser, site, reference_dir):  # noqa: F811
    folder = _copy_model(reference_dir, site, "gpt2-changing")
    served = []

    def revalidating_server(route):  # ETag from the content; every use must revalidate
        with open(f"{folder}/model.safetensors", "rb") as handle:
            body = handle.read()
        etag = f'"{hashlib.sha256(body).hexdigest()[:16]}"'
        headers = {"etag": etag, "cache-control": "no-cache", "content-type": "application/octet-stream",
                   "cross-origin-resource-policy": "same-origin"}
        if route.request.headers.get("if-none-match") == etag:
            served.append(304)
            route.fulfill(status=304, headers=headers)
        else:
            served.append(200)
            route.fulfill(status=200, headers=headers, body=body)

    page, _ = open_page(browser, site, "cpu")
    try:
        page.context.route("**/models/gpt2-changing/model.safetensors", revalidating_server)
        before = _logits(page, "../models/gpt2-changing")
        again, _ = open_page(browser, site, "cpu", context=page.context)
        np.testing.assert_array_equal(_logits(again, "../models/gpt2-changing"), before)
        assert served == [200, 304]  # unchanged: revalidated, not downloaded
        _rewrite(folder, scale_ln_f=3.0)
        changed, _ = open_page(browser, site, "cpu", context=page.context)
        after = _logits(changed, "../models/gpt2-changing")
        assert served == [200, 304, 200] and not np.allclose(after, before)
        latest, _ = open_page(browser, site, "cpu", context=page.context)
        np.testing.assert_array_equal(_logits(latest, "../models/gpt2-changing"), after)
        assert served == [200, 304, 200, 304]
    finally:
        page.context.close()


FRESHNESS = """async () => {
  const { isFresh } = await import("../worker/weights.js");
  const now = Date.now();
  const at = (cacheControl, extra = {}) => isFresh({ cacheControl, validatedAt: now - 10_000, ...extra }, now);
  return {
    none: at(null), noCache: at("no-cache"), noStore: at("no-store"), immutable: at("public, immutable"),
    maxAgeLeft: at("max-age=60"), maxAgeSpent: at("max-age=5"), maxAgeZero: at("max-age=0"),
    expired: at(null, { expires: new Date(now - 1000).toUTCString() }),
    expiresLater: at(null, { expires: new Date(now + 60_000).toUTCString() }),
  };
}"""


def test_freshness_follows_cache_control_and_defaults_to_fresh(browser, site):  # noqa: F811
    page, _ = open_page(browser, site, "none")
    try:
        assert page.evaluate(FRESHNESS) == {
            "none": True, "noCache": False, "noStore": False, "immutable": True, "maxAgeLeft": True,
            "maxAgeSpent": False, "maxAgeZero": False, "expired": False, "expiresLater": True}
    finally:
        page.context.close()


def test_a_bad_file_is_a_model_format_error_and_is_not_cached(browser, site, reference_dir):  # noqa: F811
    folder = _copy_model(reference_dir, site, "gpt2-bad")
    with open(f"{folder}/model.safetensors", "rb") as handle:
        good = handle.read()
    with open(f"{folder}/model.safetensors", "wb") as handle:
        handle.write(good[: len(good) // 3])
    page, _ = open_page(browser, site, "cpu")
    try:
        error = python_error(page, LOAD, location="../models/gpt2-bad")
        assert error["pyType"] == "ModelFormatError"
        assert "gpt2-bad/model.safetensors" in error["message"] and "truncated" in error["message"]
        assert python(page, "1 + 1") == 2
        with open(f"{folder}/model.safetensors", "wb") as handle:
            handle.write(good)  # fixed on the server: the bad copy was never cached
        fresh, _ = open_page(browser, site, "cpu", context=page.context)
        requests = _weight_requests(fresh)
        assert _logits(fresh, "../models/gpt2-bad").shape[-1] > 0 and len(requests) == 1
    finally:
        page.context.close()


SAVE = LOAD + """
from neuroscope import ActivationCache
logits, cache = model.run_with_cache(model.to_tokens("When Mary and John went to the store"),
                                     budget=budget)
saved = cache.save(key) if key else 0
result = {"logits": logits, "tokens": cache.tokens, "saved": saved}
result.update({"cache." + name: cache[name] for name in cache})
result["stats"] = cache.spill_stats
result
"""
RESTORE = """
from neuroscope import ActivationCache
cache = ActivationCache.load(key)
result = {"tokens": cache.tokens}
result.update({"cache." + name: cache[name] for name in cache})
result
"""


def _arrays(payload):
    return {name: np.asarray(value["data"]).reshape(value["shape"]) for name, value in payload.items()
            if isinstance(value, dict) and "data" in value}


# The await-able twins (browsers without JSPI) on webgpu, the plain calls on cpu.
@pytest.mark.parametrize("backend, awaited", [("cpu", False), ("webgpu", True)])
def test_saved_activations_survive_a_reload(browser, site, reference_dir, backend, awaited):  # noqa: F811
    _copy_model(reference_dir, site, "gpt2-activations")
    save, restore = SAVE, RESTORE
    if awaited:
        save = SAVE.replace("cache.save(key)", "await cache.save_async(key)")
        restore = RESTORE.replace("ActivationCache.load(key)", "await ActivationCache.load_async(key)")
        assert save != SAVE and restore != RESTORE
    page, _ = open_page(browser, site, backend)
    try:
        saved = python(page, save, location="../models/gpt2-activations", key="ioi", budget=None)
        assert saved["saved"] > 0 and len([n for n in saved if n.startswith("cache.")]) > 20
        page.reload()
        page.evaluate("window.neuroscope.ready")
        restored = python(page, restore, key="ioi")
        want, got = _arrays(saved), _arrays(restored)
        assert sorted(got) == sorted(name for name in want if name != "logits")
        for name, value in got.items():
            np.testing.assert_array_equal(value, want[name], err_msg=name)
        missing = python_error(page, "ActivationCache.load('never-saved')")
        assert missing["pyType"] == "StorageKeyError" and "'ioi'" in missing["message"]
    finally:
        page.context.close()


def test_a_byte_budget_spills_to_indexeddb_with_identical_results(browser, site, reference_dir):  # noqa: F811
    _copy_model(reference_dir, site, "gpt2-spill")
    page, _ = open_page(browser, site, "cpu")
    try:
        plain = _arrays(python(page, SAVE, location="../models/gpt2-spill", key=None, budget=None))
        budgeted = python(page, SAVE, location="../models/gpt2-spill", key=None, budget=8192)
        stats = budgeted["stats"]
        assert stats["spilled_bytes"] > 0 and stats["restored_bytes"] > 0 and stats["spilled"] > 0
        assert stats["resident_bytes"] <= 8192 + max(v.nbytes for v in plain.values())
        got = _arrays(budgeted)
        assert sorted(got) == sorted(plain)
        for name, value in plain.items():
            np.testing.assert_array_equal(got[name], value, err_msg=name)
        session_keys = ("import neuroscope_js\nfrom neuroscope.storage import IndexedDBStorage\n"
                        "await IndexedDBStorage(await neuroscope_js.storage.spillPrefix()).keys_async()")
        assert python(page, session_keys)  # this session's spilled tensors, under spill/<session>/
        # The budgeted cache goes, and its spilled tensors with it: their deletes are queued
        # when the store is collected, so wait (up to 30 s) until IndexedDB has none left.
        left = python(page, "del cache, result\nimport asyncio, gc, time, neuroscope_js\ngc.collect()\n"
                            "from neuroscope.storage import IndexedDBStorage\n"
                            "spill = IndexedDBStorage(await neuroscope_js.storage.spillPrefix())\n"
                            "started = time.monotonic()\n"
                            "while (left := await spill.keys_async()) and time.monotonic() - started < 30:\n"
                            "    await asyncio.sleep(0.02)\n"
                            "left")
        assert left == []
    finally:
        page.context.close()


BIG = """
import random
from neuroscope import ActivationCache, tensor
rng = random.Random(1)
big = ActivationCache({"noise": tensor([rng.random() for _ in range(1 << 20)])})  # 4 MiB, incompressible
big.save("second")
"""
QUOTA = 2 << 20
PARTS = """async (key) => {
  const db = await new Promise((resolve) => { const r = indexedDB.open("neuroscope"); r.onsuccess = () => resolve(r.result); });
  const keys = await new Promise((resolve) => {
    const r = db.transaction("parts").objectStore("parts").getAllKeys(); r.onsuccess = () => resolve(r.result); });
  db.close();
  return keys.filter((k) => k[0] === key).length;
}"""


def test_a_full_quota_is_reported_and_earlier_saves_stay_intact(browser, site, reference_dir):  # noqa: F811
    _copy_model(reference_dir, site, "gpt2-quota", padding=0)
    page, _ = open_page(browser, site, "cpu")
    try:
        # Chromium's IndexedDB caches the space left for a few seconds, so the quota is set
        # before this origin stores anything: the weights and a first cache fit, 4 MiB do not.
        origin = page.evaluate("location.origin")
        cdp = page.context.new_cdp_session(page)
        cdp.send("Storage.overrideQuotaForOrigin", {"origin": origin, "quotaSize": QUOTA})
        saved = _arrays(python(page, SAVE, location="../models/gpt2-quota", key="first", budget=None))
        assert cdp.send("Storage.getUsageAndQuota", {"origin": origin})["usage"] < QUOTA
        error = python_error(page, BIG)
        assert error["pyType"] == "StorageQuotaError", error
        assert "'second'" in error["message"] and re.search(r"needs 41\d{5} bytes", error["message"])
        assert "QuotaExceededError" in error["message"] and "earlier are intact" in error["message"]
        assert page.evaluate(PARTS, "activations/second") == 0  # no partial entry
        assert python(page, "1 + 1") == 2
        assert python(page, "from neuroscope.storage import default_storage\ndefault_storage().keys()") == [
            "first"]
        restored = _arrays(python(page, RESTORE, key="first"))
        for name, value in restored.items():
            np.testing.assert_array_equal(value, saved[name], err_msg=name)
    finally:
        page.context.close()
