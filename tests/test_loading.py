"""Loading the Hugging Face layout: single and sharded files, half precision,
and bad folders that must fail with an error naming the file and tensor."""

import json
import os
import shutil

import numpy as np
import pytest

import neuroscope as ns
from neuroscope import ModelFormatError, UnsupportedModelError
from neuroscope.safetensors_format import SafetensorsFile, save_file

pytestmark = pytest.mark.ref
TOKENS = [[3, 17, 42, 5, 99, 8]]


def _copy(folder, tmp_path):
    target = tmp_path / "model"
    shutil.copytree(folder, target)
    return target


def _rewrite(path, edit):
    """Rewrite a safetensors file after ``edit(tensors)`` on {name: (dtype, shape, bytes)}."""
    reader = SafetensorsFile.open(str(path))
    tensors = {n: (reader.info(n).dtype, reader.info(n).shape, bytes(reader.raw(n))) for n in reader.keys()}
    reader.close()
    edit(tensors)
    save_file(tensors, str(path))


def test_sharded_index_loads_like_single_file(reference_dir, tmp_path):
    folder = reference_dir("llama")
    single = ns.TransformerModel.from_huggingface(folder)
    target = _copy(folder, tmp_path)
    reader = SafetensorsFile.open(str(target / "model.safetensors"))
    names = sorted(reader.keys())
    tensors = {n: (reader.info(n).dtype, reader.info(n).shape, bytes(reader.raw(n))) for n in names}
    reader.close()
    halves = [names[: len(names) // 2], names[len(names) // 2:]]
    weight_map = {}
    for i, part in enumerate(halves):
        shard = f"model-0000{i + 1}-of-00002.safetensors"
        save_file({n: tensors[n] for n in part}, str(target / shard))
        weight_map.update({n: shard for n in part})
    os.remove(target / "model.safetensors")
    (target / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    sharded = ns.TransformerModel.from_huggingface(str(target))
    np.testing.assert_array_equal(sharded(TOKENS).numpy(), single(TOKENS).numpy())


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_weights(reference_dir, tmp_path, dtype):
    import torch

    from reference_models import load_hf
    hf = load_hf(reference_dir("gpt_neox")).to(getattr(torch, dtype))
    hf.save_pretrained(tmp_path, safe_serialization=True)
    shutil.copy(os.path.join(reference_dir("gpt_neox"), "tokenizer.json"), tmp_path)
    model = ns.TransformerModel.from_huggingface(str(tmp_path))
    hf32 = hf.float()  # the same rounded weights, computed in fp32
    with torch.no_grad():
        ref = hf32(torch.tensor(TOKENS)).logits.numpy()
    assert np.abs(model(TOKENS).numpy() - ref).max() <= 1e-4
    assert model.W_E.dtype == "float32"


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_weights_kept_in_their_dtype_on_torch(reference_dir, tmp_path, dtype):
    torch = pytest.importorskip("torch")

    from reference_models import load_hf
    hf = load_hf(reference_dir("gpt2")).to(getattr(torch, dtype))
    hf.save_pretrained(tmp_path, safe_serialization=True)
    from neuroscope.backends.torch_backend import TorchBackend

    backend = TorchBackend()
    kept = ns.TransformerModel.from_huggingface(str(tmp_path), backend=backend, dtype=dtype)
    upcast = ns.TransformerModel.from_huggingface(str(tmp_path), backend=backend)
    assert {w.dtype for w in kept.weights.values()} == {dtype}
    # The same bits: kept weights upcast equal the weights upcast on load.
    for name, weight in kept.weights.items():
        assert torch.equal(weight.data.tensor.float(), upcast.weights[name].data.tensor), name
    logits = kept(TOKENS)
    assert logits.dtype == dtype
    with torch.no_grad():
        ref = hf(torch.tensor(TOKENS)).logits.float().numpy()
    scale = np.abs(ref).max()
    assert np.abs(logits.float().numpy() - ref).max() <= 0.05 * scale


def test_missing_tensor_names_file_and_tensor(reference_dir, tmp_path):
    target = _copy(reference_dir("gpt2"), tmp_path)
    _rewrite(target / "model.safetensors", lambda t: t.pop("transformer.h.1.mlp.c_fc.weight"))
    with pytest.raises(ModelFormatError) as info:
        ns.TransformerModel.from_huggingface(str(target))
    assert "model.safetensors" in str(info.value) and "transformer.h.1.mlp.c_fc.weight" in str(info.value)


def test_shape_disagreeing_with_config(reference_dir, tmp_path):
    target = _copy(reference_dir("gpt2"), tmp_path)
    config = json.loads((target / "config.json").read_text())
    config["n_inner"] = 48
    (target / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelFormatError, match=r"blocks.0.mlp.W_in.*\[32, 128\].*\[32, 48\]"):
        ns.TransformerModel.from_huggingface(str(target))


def test_truncated_weights(reference_dir, tmp_path):
    target = _copy(reference_dir("gpt2"), tmp_path)
    data = (target / "model.safetensors").read_bytes()
    (target / "model.safetensors").write_bytes(data[: len(data) - 100])
    with pytest.raises(ModelFormatError, match="model.safetensors"):
        ns.TransformerModel.from_huggingface(str(target))


def test_unsupported_and_missing_files(reference_dir, tmp_path):
    target = _copy(reference_dir("gpt2"), tmp_path)
    config = json.loads((target / "config.json").read_text())
    (target / "config.json").write_text(json.dumps({**config, "model_type": "t5"}))
    with pytest.raises(UnsupportedModelError, match="'t5'.*supported: gpt2"):
        ns.TransformerModel.from_huggingface(str(target))
    (target / "config.json").write_text(json.dumps(config))
    os.remove(target / "model.safetensors")
    with pytest.raises(ModelFormatError, match="no model.safetensors"):
        ns.TransformerModel.from_huggingface(str(target))
    with pytest.raises(FileNotFoundError, match="neither a folder"):
        ns.TransformerModel.from_huggingface(str(tmp_path / "nowhere"))


def test_from_config_accepts_hf_config_objects():
    transformers = pytest.importorskip("transformers")
    config = transformers.LlamaConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=4,
                                      num_key_value_heads=1, intermediate_size=40, vocab_size=30)
    model = ns.TransformerModel.from_config(config, seed=0)
    assert model.cfg.n_kv_heads == 1 and model.cfg.family == "llama"
    assert model([[1, 2, 3]]).shape == (1, 3, 30)


def test_weights_cannot_be_put_into_a_built_model():
    # The blocks hold the tensors they were built from: a weight put into model.weights
    # changed nothing the model computed (silently) and made its content hash describe
    # another model. Refused; the way the message gives does change the model.
    model = ns.TransformerModel.from_huggingface("demo")
    tokens = [[1, 2, 3, 4]]
    before, before_hash = model(tokens).numpy(), model.content_hash()
    zeros = ns.tensor(np.zeros(model.weights["blocks.0.mlp.W_out"].shape, np.float32))
    with pytest.raises(TypeError, match=r"model.weights is read-only .*'blocks.0.mlp.W_out'.*TransformerModel\("):
        model.weights["blocks.0.mlp.W_out"] = zeros
    with pytest.raises(TypeError, match="read-only"):
        del model.weights["blocks.0.mlp.W_out"]
    np.testing.assert_array_equal(model(tokens).numpy(), before)
    assert model.content_hash() == before_hash
    edited = ns.TransformerModel(model.cfg, {**model.weights, "blocks.0.mlp.W_out": zeros}, model.tokenizer,
                                 model.backend)
    assert np.abs(edited(tokens).numpy() - before).max() > 1e-3 and edited.content_hash() != before_hash
    assert dict(model.fold_ln().weights) and "blocks.0.ln1.w" not in model.weights  # processing still edits


@pytest.mark.parametrize("backend_name", ["numpy", "torch"])
def test_a_float16_model_computes_like_float32_on_every_cpython_backend(backend_name):
    # numpy squared float16 activations in its norms: past |x| = 256 the variance
    # overflowed, and the demo's float16 logits were off by 12 (argmax agreeing on 70% of
    # positions), silently. The norms now compute in float32 and round once, as torch's do.
    if backend_name == "torch":
        pytest.importorskip("torch")
        from neuroscope.backends.torch_backend import TorchBackend as Backend
    else:
        from neuroscope.backends.numpy_backend import NumpyBackend as Backend
    backend = Backend()
    text = "The cat sat on the mat, and then the dog sat on the cat"
    full = ns.TransformerModel.from_huggingface("demo", backend=backend)(text).numpy()
    half = ns.TransformerModel.from_huggingface("demo", backend=backend, dtype="float16")(text)
    assert half.dtype == "float16"
    half = half.numpy().astype(np.float32)
    assert np.abs(half - full).max() <= 0.05
    np.testing.assert_array_equal(half.argmax(-1), full.argmax(-1))


def test_a_dtype_the_backend_cannot_keep_is_refused_before_loading():
    # dtype="int8" loaded the weights truncated to integers, silently; bfloat16 on numpy
    # failed inside numpy ("data type 'bfloat16' not understood") after the file was read.
    from neuroscope.backends.numpy_backend import NumpyBackend

    with pytest.raises(ValueError, match=r"dtype='int8'; expected 'float32' .*'float16' or 'bfloat16'"):
        ns.TransformerModel.from_huggingface("demo", dtype="int8", backend=NumpyBackend())
    with pytest.raises(ValueError, match=r"dtype='bfloat16': the numpy backend keeps weights in float32 or "
                                         r"float16; dtype='float32' upcasts the file"):
        ns.TransformerModel.from_huggingface("demo", dtype="bfloat16", backend=NumpyBackend())


def test_a_url_models_index_fetches_only_shards_beside_it():
    # A shard name was joined to the model's URL as it was, so an index could have the
    # loader fetch weights from another folder or another site.
    from neuroscope.model.remote import RemoteShardedSafetensors, UrlOpener

    fetched = []
    opener = UrlOpener("https://models.example/gpt2/", fetch=lambda url: fetched.append(url))
    where = opener.where("model.safetensors.index.json")
    for shard in ("https://other.example/x.safetensors", "//other.example/x.safetensors", "../x.safetensors",
                  "sub/x.safetensors", "%2e%2e%2fx.safetensors", "..", ""):
        index = json.dumps({"weight_map": {"wte.weight": shard}}).encode()
        with pytest.raises(ModelFormatError, match=r"shard .* \(holding 'wte.weight'\) is not a file name in "
                                                   r"the model's folder https://models.example/gpt2/"):
            RemoteShardedSafetensors.from_index(opener, index, where)
    assert fetched == []
    good = json.dumps({"weight_map": {"wte.weight": "model-00001-of-00002.safetensors"}}).encode()
    assert RemoteShardedSafetensors.from_index(opener, good, where).weight_map == {
        "wte.weight": "model-00001-of-00002.safetensors"}
