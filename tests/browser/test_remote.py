"""Loading from a URL (model/remote.py) in CPython: the opener the browser uses, with urllib.

A model served over HTTP loads exactly like the same folder on disk; a sharded
checkpoint fetches its shards; missing and bad files name the URL.
"""

import json
import os
import shutil

import numpy as np
import pytest

from neuroscope import ModelFormatError, TransformerModel
from neuroscope.model.remote import FolderOpener, UrlOpener
from neuroscope.safetensors_format import SafetensorsFile, save_file


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    import build
    root = tmp_path_factory.mktemp("served")
    server, url = build.serve_in_thread(str(root))
    yield root, url
    server.shutdown()
    server.server_close()


def _copy(reference_dir, family, root, name):
    target = root / name
    if not target.exists():
        shutil.copytree(reference_dir(family), target)
    return target


def test_url_loads_like_the_folder(reference_dir, served):
    root, url = served
    folder = _copy(reference_dir, "gpt2", root, "gpt2")
    local = TransformerModel.from_huggingface(str(folder))
    remote = TransformerModel.from_huggingface(f"{url}/gpt2")
    assert remote.source == f"{url}/gpt2/"
    assert remote.cfg.to_dict() == local.cfg.to_dict()
    tokens = local.to_tokens("Café 東京 🙂 went to the store")
    assert remote.to_tokens("Café 東京 🙂 went to the store").tolist() == tokens.tolist()
    np.testing.assert_array_equal(remote(tokens).numpy(), local(tokens).numpy())
    # A file inside the folder names the folder, as a local path does.
    assert UrlOpener(f"{url}/gpt2/config.json").base_url == f"{url}/gpt2/"


def test_sharded_checkpoint_over_http(reference_dir, served):
    root, url = served
    folder = _copy(reference_dir, "llama", root, "llama-sharded")
    with SafetensorsFile.open(folder / "model.safetensors") as weights:
        names = weights.keys()
        tensors = {name: (weights.info(name).dtype, weights.info(name).shape, bytes(weights.raw(name)))
                   for name in names}
    os.remove(folder / "model.safetensors")
    shards = {"model-00001-of-00002.safetensors": names[: len(names) // 2],
              "model-00002-of-00002.safetensors": names[len(names) // 2:]}
    for shard, members in shards.items():
        save_file({name: tensors[name] for name in members}, folder / shard)
    with open(folder / "model.safetensors.index.json", "w") as handle:
        json.dump({"metadata": {}, "weight_map": {n: s for s, ms in shards.items() for n in ms}}, handle)
    local = TransformerModel.from_huggingface(str(folder))
    remote = TransformerModel.from_huggingface(f"{url}/llama-sharded/")
    tokens = [[1, 5, 9, 200, 3]]
    np.testing.assert_array_equal(remote(tokens).numpy(), local(tokens).numpy())


def test_missing_and_bad_files_name_the_url(reference_dir, served):
    root, url = served
    with pytest.raises(FileNotFoundError, match=f"{url}/nowhere/config.json: not found"):
        TransformerModel.from_huggingface(f"{url}/nowhere")
    folder = _copy(reference_dir, "gpt2", root, "gpt2-broken")
    data = (folder / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFormatError, match=r"gpt2-broken/model.safetensors.*truncated"):
        TransformerModel.from_huggingface(f"{url}/gpt2-broken")
    os.remove(folder / "model.safetensors")
    with pytest.raises(ModelFormatError, match="no model.safetensors or model.safetensors.index.json"):
        TransformerModel.from_huggingface(f"{url}/gpt2-broken")
    (folder / "config.json").write_text("{not json")
    with pytest.raises(ModelFormatError, match="gpt2-broken/config.json: file is not valid JSON"):
        TransformerModel.from_huggingface(f"{url}/gpt2-broken")


def test_folder_opener_is_the_local_path(reference_dir):
    folder = reference_dir("gpt2")
    opener = FolderOpener(folder)
    assert opener.source == folder and opener.tokenizer() is not None
    assert isinstance(opener.weights(), SafetensorsFile)
