"""Saved and spilled activations, share links, stored datasets and safetensors files given
awkward or hostile input: each is read back exactly or refused with a message naming the value,
never half-read or silently replaced (storage.py, spill.py, share.py, datasets.py,
safetensors_format.py)."""

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
