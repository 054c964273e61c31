"""``neuroscope.Dataset`` and ``TransformerModel.activations_at`` (numpy backend).

Files of every format (and the same examples give the same dataset whatever the format),
bad input named with its line, streaming (a large JSONL is indexed, not held: tracemalloc),
URLs served by a real local HTTP server, the built-in demo sets, and activations over a
dataset against running each example alone, on the demo model and a grouped-query model,
with the result cached by content and read back.
"""

import csv
import functools
import http.server
import json
import threading
import tracemalloc

import numpy as np
import pytest

import neuroscope as ns
from neuroscope import Dataset, DatasetError
from neuroscope.model.activations import as_dataset, cache_key
from neuroscope.storage import FolderStorage

RECORDS = [
    {"text": "When Mary and John went to the store, John gave a drink to", "label": 1, "answer": " Mary"},
    {"text": "The cat sat on the mat.", "label": 0, "answer": " mat"},
    {"text": 'Quotes "inside", commas, and a\nnewline', "label": 1, "answer": ","},
    {"text": "Ünïcödé 東京 🙂", "label": 0, "answer": " 東"},
]


def _write(folder, records):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "d.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n\n" for r in records),
                                    encoding="utf-8")
    (folder / "d.json").write_text(json.dumps({"examples": records}, ensure_ascii=False), encoding="utf-8")
    (folder / "list.json").write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")
    with open(folder / "d.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["text", "label", "answer"])
        writer.writeheader()
        writer.writerows(records)
    return folder


def test_every_format_reads_the_same_examples(tmp_path):
    folder = _write(tmp_path, RECORDS)
    for name in ("d.jsonl", "d.json", "list.json"):
        ds = Dataset.from_file(folder / name)
        assert len(ds) == 4 and list(ds) == RECORDS, name
    as_csv = Dataset.from_file(folder / "d.csv")  # CSV fields are strings
    assert [dict(r, label=int(r["label"])) for r in as_csv] == RECORDS
    assert as_csv[2]["text"] == RECORDS[2]["text"]  # a quoted newline stays inside its field
    (tmp_path / "t.txt").write_text("first line\n\nsecond line\r\nthird\n", encoding="utf-8")
    assert Dataset.from_file(tmp_path / "t.txt").texts[:] == ["first line", "second line", "third"]


def test_the_sequence_api(tmp_path):
    ds = Dataset.from_file(_write(tmp_path, RECORDS) / "d.jsonl")
    assert ds[-1] == RECORDS[-1] and ds[np.int64(1)] == RECORDS[1]
    assert list(ds[1:3]) == RECORDS[1:3] and list(ds[[3, 0]]) == [RECORDS[3], RECORDS[0]]
    assert list(ds.texts) == [r["text"] for r in RECORDS] and ds.column("label") == [1, 0, 1, 0]
    train, test = ds.split(0.5, seed=3)
    assert len(train) == 2 and len(test) == 2
    assert sorted(r["text"] for r in [*train, *test]) == sorted(r["text"] for r in RECORDS)
    assert [r["text"] for r in ds.split(0.5, seed=3)[0]] == [r["text"] for r in train]  # seeded
    assert Dataset.from_records(RECORDS).content_hash == Dataset.from_records(list(RECORDS)).content_hash
    assert ds.content_hash != ds[:2].content_hash != ds[[1, 0]].content_hash
    with pytest.raises(IndexError, match="example 4 requested; the dataset 'd.jsonl' has 4"):
        ds[4]
    with pytest.raises(DatasetError, match="no field 'missing'"):
        ds.column("missing")
    with pytest.raises(DatasetError, match="split fraction 1.5"):
        ds.split(1.5)
    with pytest.raises(DatasetError, match="dataset index '1'"):
        ds["1"]


@pytest.mark.parametrize("name, content, words", [
    ("bad.jsonl", '{"text": "ok"}\n{"text": "broken"\n', "bad.jsonl:2: not a JSON object"),
    ("missing.jsonl", '{"text": "ok"}\n\n{"prompt": "no text"}\n', "missing.jsonl:3: the example has no 'text' (it has prompt)"),
    ("number.jsonl", '{"text": 5}\n', "number.jsonl:1: 'text' is a int; expected a string"),
    ("list.jsonl", '[1, 2]\n', "list.jsonl:1: an example must be an object"),
    ("bad.csv", 'text,label\n"a",1\n"b",2,3\n', "bad.csv:3: 3 fields; the header has 2"),
    ("open.csv", 'text,label\n"never closed,1\n', "open.csv:2: a quoted CSV field is never closed"),
    ("nohead.csv", 'prompt,label\nx,1\n', "the CSV header ['prompt', 'label'] has no 'text' column"),
    ("d.json", '{"rows": []}', "expected a list of examples"),
    ("d.parquet", "", "unknown dataset file type; expected one of .jsonl, .json, .csv, .txt"),
])
def test_bad_input_is_a_named_error(tmp_path, name, content, words):
    (tmp_path / name).write_text(content, encoding="utf-8")
    with pytest.raises(DatasetError) as error:
        Dataset.from_file(tmp_path / name)
    assert words in str(error.value)


def test_bad_bytes_and_missing_files(tmp_path):
    (tmp_path / "latin.jsonl").write_bytes(b'{"text": "ok"}\n{"text": "caf\xe9"}\n')
    with pytest.raises(DatasetError, match=r"latin.jsonl:2: not UTF-8 text"):
        Dataset.from_file(tmp_path / "latin.jsonl")
    with pytest.raises(DatasetError, match="no such file"):
        Dataset.from_file(tmp_path / "nothing.jsonl")
    with pytest.raises(DatasetError, match=r"records\[1\]: the example has no 'text'"):
        Dataset.from_records([{"text": "a"}, {"label": 1}])


def test_a_large_jsonl_is_indexed_not_held(tmp_path):
    path = tmp_path / "big.jsonl"
    line = json.dumps({"text": "x" * 900, "label": 1}) + "\n"
    with open(path, "w") as handle:
        for i in range(20_000):  # ~18 MB
            handle.write(line.replace('"label": 1', f'"label": {i}'))
    tracemalloc.start()
    ds = Dataset.from_file(path)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(ds) == 20_000 and ds[12_345]["label"] == 12_345 and ds[-1]["label"] == 19_999
    assert peak < 2 * 2**20, f"indexing an 18 MB file held {peak / 2**20:.1f} MiB"
    assert sum(1 for _ in ds) == 20_000


def test_urls_are_downloaded_and_indexed(tmp_path, monkeypatch):
    folder = _write(tmp_path / "served", RECORDS)
    monkeypatch.setenv("NEUROSCOPE_CACHE_DIR", str(tmp_path / "cache"))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        assert list(Dataset.from_file(f"{base}/d.jsonl")) == RECORDS
        assert list(Dataset.from_file(f"{base}/d.json")) == RECORDS
        with pytest.raises(DatasetError, match="could not be downloaded"):
            Dataset.from_file(f"{base}/missing.jsonl")
    finally:
        server.shutdown()


def test_builtin_demo_datasets():
    ioi = Dataset.builtin("demo/ioi")
    assert len(ioi) == 200 and {"text", "corrupted_prompt", "answer", "incorrect"} <= set(ioi[0])
    order = Dataset.builtin("demo/ioi-order")
    assert set(order.column("label")) == {0, 1}
    assert all((r["label"] == 0) == (r["order"] == "ABB") for r in order)
    assert set(Dataset.builtin("demo/facts-relation").column("label")) == {"capital", "language"}
    text = Dataset.builtin("demo/text")
    assert len(text) >= 20 and all(len(t) >= 40 for t in text.texts)
    with pytest.raises(DatasetError, match="no built-in dataset 'demo/nope'; expected one of demo/ioi"):
        Dataset.builtin("demo/nope")


# -- activations_at ---------------------------------------------------------------------
TEXTS = ["Hi", "When Mary and John went to the store, John gave a drink to", "The cat sat on the",
         "Paris is the capital of France, and Berlin is the capital of", "A"]


def _alone(model, name, text):
    return model.run_with_cache(model.to_tokens(text), names_filter=[name])[1][name].numpy()[0]


def _close(got, want):
    scale = max(1.0, float(np.abs(want).max()))
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5 * scale)


@pytest.fixture(scope="module")
def demo():
    return ns.TransformerModel.from_huggingface("demo")


@pytest.mark.parametrize("batch_size", [None, 1, 2, 5])
def test_activations_equal_running_each_example_alone(demo, batch_size):
    name = "blocks.2.hook_resid_post"
    alone = [_alone(demo, name, t) for t in TEXTS]
    last = demo.activations_at("residual", 2, TEXTS, batch_size=batch_size, cache=False, progress=False)
    assert last.shape == (len(TEXTS), demo.cfg.d_model)
    for i, want in enumerate(alone):
        _close(last.numpy()[i], want[-1])
    mean = demo.activations_at("residual", 2, TEXTS, position="mean", batch_size=batch_size, cache=False,
                               progress=False)
    for i, want in enumerate(alone):
        _close(mean.numpy()[i], want.mean(axis=0))
    every, index = demo.activations_at("residual", 2, TEXTS, position="all", batch_size=batch_size,
                                       cache=False, progress=False)
    want_index = [[i, t] for i, want in enumerate(alone) for t in range(len(want))]
    assert index.tolist() == want_index
    _close(every.numpy(), np.concatenate(alone))


def test_head_hooks_are_flattened_and_gqa_models_work(reference_dir):
    model = ns.TransformerModel.from_huggingface(reference_dir("llama"))
    z = model.activations_at("z", 1, TEXTS[:3], cache=False, progress=False)
    assert z.shape == (3, model.cfg.n_heads * model.cfg.d_head)
    for i, text in enumerate(TEXTS[:3]):
        _close(z.numpy()[i], _alone(model, "blocks.1.attn.hook_z", text)[-1].reshape(-1))
    k = model.activations_at("k", 0, TEXTS[:3], cache=False, progress=False)
    assert k.shape == (3, model.cfg.n_kv_heads * model.cfg.d_head) and model.cfg.n_kv_heads < model.cfg.n_heads


def test_results_are_cached_by_content(demo, tmp_path):
    storage = FolderStorage(str(tmp_path / "store"))
    ds = Dataset.from_records([{"text": t} for t in TEXTS])
    calls = []
    first = demo.activations_at("mlp_post", 1, ds, storage=storage, progress=lambda d, t: calls.append((d, t)))
    assert calls and calls[-1] == (len(TEXTS), len(TEXTS))
    key = cache_key(demo, ds, "blocks.1.mlp.hook_post", "last")
    assert key in storage.keys()
    calls.clear()
    again = demo.activations_at("mlp_post", 1, ds, storage=storage, progress=lambda d, t: calls.append((d, t)))
    assert calls == []  # read back, not recomputed
    np.testing.assert_array_equal(again.numpy(), first.numpy())
    every, index = demo.activations_at("mlp_post", 1, ds, position="all", storage=storage, progress=False)
    every2, index2 = demo.activations_at("mlp_post", 1, ds, position="all", storage=storage, progress=False)
    np.testing.assert_array_equal(every.numpy(), every2.numpy())
    assert index.tolist() == index2.tolist()
    # Other data, another layer or another position is another key.
    assert cache_key(demo, ds[:2], "blocks.1.mlp.hook_post", "last") != key
    assert cache_key(demo, ds, "blocks.0.mlp.hook_post", "last") != key
    assert cache_key(demo, ds, "blocks.1.mlp.hook_post", "mean") != key
    assert len(demo.content_hash()) == 64


def test_a_processed_model_is_not_served_the_activations_cached_before_the_edit(tmp_path):
    # The storage key holds the model's content hash; weight processing makes a new hash
    # (before: the hash was kept from before the edit and the old activations came back).
    model = ns.TransformerModel.from_huggingface("demo")
    storage = FolderStorage(str(tmp_path / "store"))
    before_hash = model.content_hash()
    before = model.activations_at("residual", 0, TEXTS[:3], storage=storage, progress=False).numpy()
    model.center_writing_weights()
    assert model.content_hash() != before_hash
    cached = model.activations_at("residual", 0, TEXTS[:3], storage=storage, progress=False).numpy()
    fresh = model.activations_at("residual", 0, TEXTS[:3], cache=False, progress=False).numpy()
    np.testing.assert_array_equal(cached, fresh)
    assert np.abs(fresh - before).max() > 1e-3  # the edit changes this hook's values
    # The same weights hash the same, however they were reached.
    again = ns.TransformerModel.from_huggingface("demo").center_writing_weights()
    assert again.content_hash() == model.content_hash()


def test_another_tokenizer_is_not_served_the_activations_of_the_first(tmp_path):
    # Weights and texts do not say which ids ran: the key holds the tokenizer's fingerprint
    # (before: a model given another tokenizer read the first one's activations back).
    tokenizers = pytest.importorskip("tokenizers")
    model = ns.TransformerModel.from_huggingface("demo")
    storage = FolderStorage(str(tmp_path / "store"))
    texts = TEXTS[:3]
    first = model.activations_at("residual", 1, texts, storage=storage, progress=False).numpy()
    key = cache_key(model, as_dataset(texts), "blocks.1.hook_resid_post", "last")
    rust = tokenizers.Tokenizer.from_str(model.tokenizer._tok._tok.to_str())
    rust.add_tokens(["cat", " sat"])  # ids past the vocabulary: refused, never stale
    other = ns.Tokenizer(rust)
    assert other.fingerprint() != model.tokenizer.fingerprint()
    original = model.tokenizer
    model.tokenizer = ns.Tokenizer(tokenizers.Tokenizer.from_str(original._tok._tok.to_str()))
    assert model.tokenizer.fingerprint() == original.fingerprint()  # the same file, the same key
    assert cache_key(model, as_dataset(texts), "blocks.1.hook_resid_post", "last") == key
    model.tokenizer = other
    assert cache_key(model, as_dataset(texts), "blocks.1.hook_resid_post", "last") != key
    with pytest.raises(ns.InvalidTokenError, match="outside the vocabulary"):
        model.activations_at("residual", 1, texts, storage=storage, progress=False)
    # Changed in place (a setting that changes ids): another key too.
    model.tokenizer = original
    before = model.tokenizer.fingerprint()
    original._tok._tok.enable_truncation(3)
    try:
        assert model.tokenizer.fingerprint() != before
        short = model.activations_at("residual", 1, texts, storage=storage, progress=False).numpy()
        assert np.abs(short - first).max() > 1e-3  # computed for the truncated ids, not read back
    finally:
        original._tok._tok.no_truncation()
    np.testing.assert_array_equal(model.activations_at("residual", 1, texts, storage=storage,
                                                       progress=False).numpy(), first)

    class Plain:  # a tokenizer that cannot say what it is: nothing stored or read
        def encode(self, text):
            return original.encode(text)

    model.tokenizer = Plain()
    assert cache_key(model, as_dataset(texts), "blocks.1.hook_resid_post", "last") is None


def test_bad_arguments(demo):
    with pytest.raises(ns.LayerNotFoundError):
        demo.activations_at("residual", 9, TEXTS, cache=False)
    with pytest.raises(ns.UnknownHookError):
        demo.activations_at("nonsense", 0, TEXTS, cache=False)
    with pytest.raises(ns.NeuroScopeError, match=r"needs a hook whose activation is \[batch, pos"):
        demo.activations_at("pattern", 0, TEXTS, cache=False)
    with pytest.raises(ValueError, match="position='first'"):
        demo.activations_at("residual", 0, TEXTS, position="first", cache=False)
    with pytest.raises(DatasetError, match="one string"):
        demo.activations_at("residual", 0, "a text", cache=False)
    with pytest.raises(DatasetError, match="no examples"):
        demo.activations_at("residual", 0, [], cache=False)
    with pytest.raises(ns.InvalidTokenError, match="example 1 of 'texts' is .* tokens; the model's context is"):
        demo.activations_at("residual", 0, ["ok", " the" * (demo.cfg.n_ctx + 1)], cache=False, progress=False)


# -- stored datasets (the Lens's uploads) -------------------------------------------------
def test_stored_datasets_round_trip_list_and_remove(tmp_path, monkeypatch):
    from neuroscope.datasets import remove_stored_dataset, store_dataset, stored_datasets
    monkeypatch.setenv("NEUROSCOPE_CACHE_DIR", str(tmp_path / "cache"))
    lines = [{"text": f"example {i}", "label": i % 2} for i in range(5)]
    data = "".join(json.dumps(line) + "\n" for line in lines).encode()
    stored = store_dataset("my set.jsonl", data)
    assert list(stored) == lines and stored.name == "my set.jsonl"
    again = Dataset.stored("my set.jsonl")
    assert list(again) == lines and again.content_hash == stored.content_hash
    assert stored_datasets() == [{"name": "my set.jsonl", "bytes": len(data), "examples": 5,
                                  "fields": ["label", "text"]}]
    store_dataset("my set.jsonl", json.dumps({"text": "replaced"}).encode())
    assert [e["text"] for e in Dataset.stored("my set.jsonl")] == ["replaced"]
    assert remove_stored_dataset("my set.jsonl") is True
    assert remove_stored_dataset("my set.jsonl") is False
    with pytest.raises(DatasetError, match=r"no stored dataset 'my set.jsonl'; stored here: none"):
        Dataset.stored("my set.jsonl")


def test_a_stored_dataset_is_read_from_its_own_bytes(tmp_path, monkeypatch):
    # Dataset.stored named its scratch copy after the hash written in the entry: two entries
    # without one (or with a wrong one) shared a copy, and the second read the first's examples.
    from neuroscope.datasets import dataset_storage, store_dataset
    monkeypatch.setenv("NEUROSCOPE_CACHE_DIR", str(tmp_path / "cache"))
    storage = dataset_storage()
    for name, text in (("a.jsonl", "first"), ("b.jsonl", "second")):
        data = (json.dumps({"text": text}) + "\n").encode()
        storage.write(name, {"bytes": ("U8", [len(data)], data)}, {"name": name, "examples": "1"})
    for name in ("a.jsonl", "b.jsonl"):
        with pytest.raises(DatasetError, match=f"stored dataset '{name}' is damaged: its bytes hash to"):
            Dataset.stored(name)
    store_dataset("a.jsonl", b'{"text": "first"}\n')
    store_dataset("b.jsonl", b'{"text": "second"}\n')
    assert [list(Dataset.stored(name)) for name in ("a.jsonl", "b.jsonl")] == [[{"text": "first"}],
                                                                                [{"text": "second"}]]
    assert not [path for path in (tmp_path / "cache").rglob("*.partial")]  # no scratch file left behind


@pytest.mark.parametrize("name, data, words", [
    ("bad.jsonl", b'{"text": "fine"}\n{"text": broken\n', "bad.jsonl:2: not a JSON object"),
    ("bad.jsonl", b'{"text": "fine"}\n{"label": 1}\n', "bad.jsonl:2: the example has no 'text'"),
    ("bad.csv", b"label,text\n1,a\n2\n", "bad.csv:3: 1 fields; the header has 2"),
    ("empty.txt", b"\n\n", "empty.txt: no examples"),
    ("bad.parquet", b"x", "unknown dataset file type"),
    ("../escape.jsonl", b'{"text": "x"}', "stored dataset name '../escape.jsonl'"),
    ("", b'{"text": "x"}', "stored dataset name ''"),
])
def test_a_bad_upload_stores_nothing(tmp_path, monkeypatch, name, data, words):
    from neuroscope.datasets import store_dataset, stored_datasets
    monkeypatch.setenv("NEUROSCOPE_CACHE_DIR", str(tmp_path / "cache"))
    store_dataset("kept.txt", b"one\ntwo\n")
    with pytest.raises(DatasetError) as caught:
        store_dataset(name, data)
    assert words in str(caught.value) and "partial-" not in str(caught.value)
    assert [item["name"] for item in stored_datasets()] == ["kept.txt"]
    scratch = tmp_path / "cache" / "datasets"
    assert not [p.name for p in scratch.iterdir() if p.name.startswith("partial-")]
