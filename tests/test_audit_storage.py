"""Saved and spilled activations, share links, stored datasets and safetensors files given
awkward or hostile input: each is read back exactly or refused with a message naming the value,
never half-read or silently replaced (storage.py, spill.py, share.py, datasets.py,
safetensors_format.py)."""

import re

import numpy as np
import pytest

from neuroscope import ActivationCache, TransformerModel, tensor
from neuroscope.storage import FolderStorage

CONFIG = dict(model_type="gpt2", vocab_size=50, n_positions=32, n_embd=32, n_layer=2, n_head=4)
TOKENS = [[3, 14, 15, 9, 26, 5, 35, 8]]


@pytest.fixture(scope="module")
def model():
    return TransformerModel.from_config(CONFIG, seed=1)


# -- activations: saved and spilled ------------------------------------------------------
def test_axes_survive_a_spill_and_a_save(model, tmp_path):
    _, cache = model.run_with_cache(TOKENS)
    axes = {name: cache[name].axes for name in cache}
    assert axes["blocks.0.attn.hook_pattern"] == ("batch", "head", "pos", "key_pos")
    _, spilled = model.run_with_cache(TOKENS, budget=1024)
    assert spilled.spill_stats["spilled"] > 0
    assert {name: spilled[name].axes for name in spilled} == axes  # read back from the spill
    storage = FolderStorage(tmp_path)
    cache.save("plain", storage)
    spilled.save("spilled", storage)
    for key in ("plain", "spilled"):
        loaded = ActivationCache.load(key, storage)
        assert {name: loaded[name].axes for name in loaded} == axes, key
    loaded = ActivationCache.load("plain", storage, budget=1024)
    assert {name: loaded[name].axes for name in loaded} == axes
    # A spilled head-shaped activation still says where its heads are.
    zeroed = spilled["pattern", 0].zero_heads([1])
    np.testing.assert_array_equal(zeroed.numpy()[:, 1], 0.0)


def test_an_activation_named_like_the_saved_tokens_is_refused(tmp_path):
    storage = FolderStorage(tmp_path)
    cache = ActivationCache({"__tokens__": tensor([9.0])}, tokens=tensor([[1, 2]]))
    with pytest.raises(ValueError, match="'__tokens__'.*rename it"):
        cache.save("clash", storage)
    assert storage.keys() == []


# -- datasets -------------------------------------------------------------------------------
def test_a_line_holds_what_the_scan_checked(tmp_path):
    from neuroscope.datasets import Dataset
    # Only "\n" ends a line: a form feed, a lone "\r" or U+2028 inside one is part of its text.
    text = tmp_path / "lines.txt"
    text.write_bytes("one\x0cpage\ntwo\rparts\nthree\u2028four\nlast\r\n".encode())
    assert [example["text"] for example in Dataset.from_file(text)] == [
        "one\x0cpage", "two\rparts", "three\u2028four", "last"]
    jsonl = tmp_path / "lines.jsonl"
    jsonl.write_bytes('{"text": "a\u2028b", "label": 1}\n{"text": "c\x85d"}\n'.encode())
    assert Dataset.from_file(jsonl).to_records() == [{"text": "a\u2028b", "label": 1}, {"text": "c\x85d"}]


@pytest.mark.parametrize("name, content, message", [
    ("twice.jsonl", '{"text": "a", "label": 0, "label": 1}\n', r"twice.jsonl:1: .*key 'label' twice"),
    ("twice.json", '[{"text": "a", "text": "b"}]', r"twice.json: not JSON .*key 'text' twice"),
    ("nan.jsonl", '{"text": "a", "label": NaN}\n', r"nan.jsonl:1: .*NaN is not a JSON value"),
    ("twice.csv", "text,label,label\nhello,0,1\n", r"twice.csv:1: the CSV header names 'label' more than once"),
])
def test_a_field_given_twice_or_a_nan_is_refused(tmp_path, name, content, message):
    from neuroscope.datasets import Dataset, DatasetError
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DatasetError, match=message):
        Dataset.from_file(path)


def test_a_file_changed_after_indexing_is_refused(tmp_path):
    import os

    from neuroscope.datasets import Dataset, DatasetError
    path = tmp_path / "grows.jsonl"
    path.write_text('{"text": "first"}\n{"text": "second"}\n', encoding="utf-8")
    dataset = Dataset.from_file(path)
    path.write_text('{"text": "a much longer first line"}\n{"text": "second"}\n', encoding="utf-8")
    os.utime(path, ns=(0, 1))  # a different time even where the clock is coarse
    with pytest.raises(DatasetError, match=r"grows.jsonl: the file changed after it was indexed"):
        dataset[1]
    assert Dataset.from_file(path)[1] == {"text": "second"}


# -- share links ----------------------------------------------------------------------------
def test_a_state_the_lens_would_refuse_makes_no_link():
    from neuroscope.share import ShareLinkError, decode_state, encode_state, share_state
    state = share_state(None, selection={"layer": 3})
    assert decode_state(encode_state(state)) == state
    # JSON has no NaN: json.dumps wrote one, and the Lens's JSON.parse refused the link.
    with pytest.raises(ShareLinkError, match="cannot be written as JSON"):
        encode_state({**state, "selection": {"threshold": float("nan")}})
    # The checks of web/share.js validateState that the Python side skipped.
    for bad, field in [({"model": {"ref": "demo", "sha256": "not-a-digest"}}, "model.sha256"),
                       ({"answer": 3}, "answer"),
                       ({"interventions": ["zero_ablation"]}, "interventions[0]"),
                       ({"interventions": [{"layer": 0, "intervention": {}}]}, "interventions[0].intervention.type"),
                       ({"interventions": [{"scale": 2}]}, "interventions[0].type")]:
        with pytest.raises(ShareLinkError, match=re.escape(f'field "{field}"')):
            encode_state({**state, **bad})


def test_a_link_holding_nan_is_refused_as_the_lens_refuses_it():
    import base64
    import hashlib
    import struct
    import zlib

    from neuroscope.share import ShareLinkError, decode_state
    text = ('{"v":1,"model":{"ref":"demo"},"prompt":"p","view":"tokens","selection":{"x":NaN},'
            '"interventions":[],"notebook":[]}')
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    compressed = compressor.compress(text.encode()) + compressor.flush()
    raw = struct.pack(">I", len(compressed)) + hashlib.sha256(compressed).digest()[:8] + compressed
    with pytest.raises(ShareLinkError, match="NaN is not a JSON value"):
        decode_state("ns1." + base64.urlsafe_b64encode(raw).decode().rstrip("="))


# -- safetensors ----------------------------------------------------------------------------
def test_a_sharded_index_reads_only_shards_beside_it(tmp_path):
    import json

    from neuroscope.errors import ModelFormatError
    from neuroscope.safetensors_format import ShardedSafetensors, save_file
    folder = tmp_path / "model"
    folder.mkdir()
    save_file({"w": ("F32", [1], b"\0\0\x80\x3f")}, tmp_path / "elsewhere.safetensors")
    save_file({"w": ("F32", [1], b"\0\0\0\0")}, folder / "model-1.safetensors")
    index = folder / "model.safetensors.index.json"
    for shard in ("../elsewhere.safetensors", str(tmp_path / "elsewhere.safetensors")):
        index.write_text(json.dumps({"weight_map": {"w": shard}}))
        with pytest.raises(ModelFormatError, match="is not a file name in the index's folder"):
            ShardedSafetensors.open(index)
    index.write_text('{"weight_map": {"w": "model-1.safetensors", "w": "../elsewhere.safetensors"}}')
    with pytest.raises(ModelFormatError, match="key 'w' twice"):
        ShardedSafetensors.open(index)
    index.write_text(json.dumps({"weight_map": {"w": "model-1.safetensors"}}))
    with ShardedSafetensors.open(index) as reader:
        assert reader.to_list("w") == [0.0]


# -- storage keys ---------------------------------------------------------------------------
def test_keys_differing_in_case_are_two_files_on_any_file_system(tmp_path):
    import os

    from neuroscope.safetensors_format import save_file
    storage = FolderStorage(tmp_path)
    storage.write("Run", {"t": ("F32", [1], b"\0\0\x80\x3f")})
    storage.write("run", {"t": ("F32", [1], b"\0\0\0\0")})
    storage.write("../up/NUL\0", {"t": ("F32", [1], b"\0\0\0\0")})
    names = os.listdir(tmp_path)
    # macOS and Windows fold case: two names equal but for case would be one file there.
    assert len({name.lower() for name in names}) == 3 and all("/" not in name for name in names)
    assert storage.keys() == ["../up/NUL\0", "Run", "run"]
    with storage.open("Run") as entry:
        assert entry.to_list("t") == [1.0]
    # An entry written under the earlier name (upper case as is) is still read, and replaced.
    save_file({"t": ("F32", [1], b"\0\0\0\x40")}, tmp_path / "Old.safetensors")
    assert "Old" in storage.keys()
    with storage.open("Old") as entry:
        assert entry.to_list("t") == [2.0]
    storage.write("Old", {"t": ("F32", [1], b"\0\0\x40\x40")})
    assert "Old.safetensors" not in os.listdir(tmp_path) and storage.keys().count("Old") == 1
    with storage.open("Old") as entry:
        assert entry.to_list("t") == [3.0]
    assert storage.delete("Old") and "Old" not in storage.keys()
