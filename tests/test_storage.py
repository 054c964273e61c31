"""Activations on disk in CPython (storage.py, spill.py): ``cache.save(key)`` /
``ActivationCache.load(key)`` round-trip exactly; a byte budget spills the least recently
used tensors to disk and reads them back with identical values; a full quota (or disk)
raises ``StorageQuotaError`` naming key, sizes and quota, and leaves earlier entries intact.
The browser side (IndexedDB) is tests/browser/test_storage_browser.py.
"""

import errno
import os

import numpy as np
import pytest

from neuroscope import ActivationCache, StorageKeyError, StorageQuotaError, TransformerModel, tensor
from neuroscope.storage import FolderStorage, default_storage, spill_storage

CONFIG = dict(model_type="gpt2", vocab_size=50, n_positions=32, n_embd=32, n_layer=2, n_head=4)
TOKENS = [[3, 14, 15, 9, 26, 5, 35, 8]]


@pytest.fixture(scope="module")
def model():
    return TransformerModel.from_config(CONFIG, seed=1)


@pytest.fixture(scope="module")
def reference(model):
    logits, cache = model.run_with_cache(TOKENS)
    return logits.numpy(), {name: cache[name].numpy() for name in cache}


def _assert_same(cache, expected):
    assert list(cache) == list(expected)
    for name, want in expected.items():
        got = cache[name].numpy()
        assert got.dtype == want.dtype and got.shape == want.shape, name
        np.testing.assert_array_equal(got, want, err_msg=name)


def test_save_and_load_round_trip_exactly(model, reference, tmp_path):
    storage = FolderStorage(tmp_path)
    _, cache = model.run_with_cache(TOKENS)
    written = cache.save("ioi/run 1", storage)
    assert written > sum(t.nbytes for t in cache.values())
    assert storage.keys() == ["ioi/run 1"] and os.listdir(tmp_path) == ["ioi%2Frun%201.safetensors"]
    loaded = ActivationCache.load("ioi/run 1", storage)
    _assert_same(loaded, reference[1])
    assert loaded.tokens.dtype == "int64" and loaded.tokens.tolist() == TOKENS
    assert loaded.attention_mask is None
    assert storage.delete("ioi/run 1") and storage.keys() == []


def test_saved_entries_are_plain_safetensors(model, reference, tmp_path):
    safetensors = pytest.importorskip("safetensors.numpy", reason="the safetensors package is not installed")
    _, cache = model.run_with_cache(TOKENS)
    cache.save("plain", FolderStorage(tmp_path))
    plain = safetensors.load_file(str(tmp_path / "plain.safetensors"))
    for name, want in reference[1].items():
        np.testing.assert_array_equal(plain[name], want)
    assert plain["__tokens__"].tolist() == TOKENS


def test_async_save_and_load_match_the_plain_ones(model, reference, tmp_path):
    import asyncio
    storage = FolderStorage(tmp_path)
    _, cache = model.run_with_cache(TOKENS)
    # A thread of its own: the browser tests' Playwright session may hold this thread's loop.
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, cache.save_async("async", storage)).result()
        loaded = pool.submit(asyncio.run, ActivationCache.load_async("async", storage)).result()
    _assert_same(loaded, reference[1])
    _assert_same(ActivationCache.load("async", storage), reference[1])


def test_missing_key_names_the_stored_keys(tmp_path):
    storage = FolderStorage(tmp_path)
    ActivationCache({"x": tensor([1.0, 2.0])}).save("kept", storage)
    with pytest.raises(StorageKeyError, match=r"nothing is stored under 'gone' in .*stored keys: 'kept'"):
        ActivationCache.load("gone", storage)


def test_default_storage_is_a_folder_under_the_cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("NEUROSCOPE_CACHE_DIR", str(tmp_path))
    ActivationCache({"x": tensor([[1, 2]])}).save("default")
    assert default_storage().root == str(tmp_path / "activations")
    assert ActivationCache.load("default")["x"].tolist() == [[1, 2]]


def test_budget_spills_least_recently_used_and_results_are_identical(model, reference):
    budget = 4096
    logits, cache = model.run_with_cache(TOKENS, budget=budget)
    np.testing.assert_array_equal(logits.numpy(), reference[0])
    stats = cache.spill_stats
    largest = max(v.nbytes for v in reference[1].values())
    assert stats["spilled_bytes"] > 0 and stats["spilled"] > 0
    assert stats["resident_bytes"] <= budget + largest
    assert cache.nbytes == sum(v.nbytes for v in reference[1].values())
    _assert_same(cache, reference[1])  # every access reads spilled tensors back
    after = cache.spill_stats
    assert after["restored_bytes"] > 0 and after["resident_bytes"] <= budget + largest
    # Read back and evicted again unchanged: nothing is written twice.
    spilled = after["spilled_bytes"]
    _assert_same(cache, reference[1])
    assert cache.spill_stats["spilled_bytes"] == spilled


def test_a_tensor_changed_in_place_is_written_again(tmp_path):
    storage = FolderStorage(tmp_path)
    cache = ActivationCache(budget=16, storage=storage)
    cache["a"] = tensor([1.0, 2.0, 3.0, 4.0])
    cache["b"] = tensor([5.0, 6.0, 7.0, 8.0])  # evicts a
    cache["a"][0] = 10.0  # a comes back (evicting b), then changes in place
    cache["b"]  # evicts the changed a
    assert cache["a"].tolist() == [10.0, 2.0, 3.0, 4.0] and cache["b"].tolist() == [5.0, 6.0, 7.0, 8.0]
    del cache["a"]
    assert "a" not in cache and list(cache) == ["b"] and len(storage.keys()) == 1


def test_a_spilled_cache_saves_and_loads_under_a_budget(model, reference, tmp_path):
    _, cache = model.run_with_cache(TOKENS, budget=2048)
    cache.save("spilled", FolderStorage(tmp_path))
    loaded = ActivationCache.load("spilled", FolderStorage(tmp_path), budget=2048)
    assert loaded.spill_stats["spilled"] > 0
    _assert_same(loaded, reference[1])


def test_spill_folder_goes_away_with_its_storage():
    storage = spill_storage()
    root = storage.root
    storage.write("t0", {"tensor": ("F32", (1,), b"\0\0\0\0")})
    assert os.path.isdir(root)
    del storage
    assert not os.path.exists(root)


def test_quota_error_names_key_sizes_and_quota_and_keeps_earlier_entries(model, reference, tmp_path):
    _, cache = model.run_with_cache(TOKENS)
    first = cache.save("first", FolderStorage(tmp_path))
    storage = FolderStorage(tmp_path, quota=first + first // 2)
    big = ActivationCache({"big": tensor(np.ones(first // 2, dtype=np.float32))})  # 2x the first
    with pytest.raises(StorageQuotaError) as raised:
        big.save("second", storage)
    message = str(raised.value)
    assert "'second'" in message and f"quota is {first + first // 2} bytes with {first} in use" in message
    assert raised.value.needed > 2 * first and raised.value.key == "second"
    # Replacing an entry with one that does not fit keeps the old one.
    with pytest.raises(StorageQuotaError):
        big.save("first", storage)
    assert storage.keys() == ["first"] and not [n for n in os.listdir(tmp_path) if n.endswith(".partial")]
    _assert_same(ActivationCache.load("first", storage), reference[1])


def test_a_full_disk_is_a_quota_error_and_leaves_no_partial_file(model, reference, tmp_path, monkeypatch):
    storage = FolderStorage(tmp_path)
    _, cache = model.run_with_cache(TOKENS)
    cache.save("kept", storage)
    real_open = open

    class FullDisk:
        def __init__(self, handle):
            self.handle = handle

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

        def write(self, data):
            self.handle.write(bytes(data)[:10])

        def writelines(self, views):
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("builtins.open", lambda path, mode="r", *a, **k: FullDisk(real_open(path, mode))
                        if str(path).endswith(".partial") else real_open(path, mode, *a, **k))
    with pytest.raises(StorageQuotaError, match=r"cannot store 'kept'.*No space left on device"):
        cache.save("kept", storage)
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["kept.safetensors"]
    _assert_same(ActivationCache.load("kept", storage), reference[1])
