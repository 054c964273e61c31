"""Model parity in the page: the tiny reference models load from the site with
``TransformerModel.from_huggingface(url)``; logits, every cached hook and two interventions
(zero ablation, patching) equal CPython's numpy results within 1e-3, on each kernel backend.

The same Python script runs in CPython and in the page; only the location differs (a
folder here, an absolute URL or a path relative to the page there).
"""

import numpy as np
import pytest

from .pages import kernel_page, python, python_error, site  # noqa: F401 (fixtures)

FAMILIES = ["gpt2", "gpt_neox", "llama"]
CLEAN = "When Mary and John went to the store, John gave a drink to"
CORRUPT = "When Mary and John went to the store, Mary gave a drink to"
TOLERANCE = 1e-3

SCRIPT = """
from neuroscope import InterventionHook, Patch, TransformerModel, ZeroAblation
model = TransformerModel.from_huggingface(location)
tokens = model.to_tokens(clean)
corrupt_tokens = model.to_tokens(corrupt)
logits, cache = model.run_with_cache(tokens)
ablate = InterventionHook(layer=1, component="attention", heads=[0, 2], action=ZeroAblation())
with model.hooks([ablate]):
    ablated = model(tokens)
clean_cache = model.run_with_caching(tokens, layers=(0,), components=("residual",))
patch = InterventionHook(layer=0, component="residual", action=Patch(clean_cache, positions=[position]))
patched = model.run_with_hooks(corrupt_tokens, fwd_hooks=[patch])
results = {"tokens": tokens, "logits": logits, "ablated": ablated, "patched": patched}
results.update({"cache." + name: cache[name] for name in cache})
"""


@pytest.fixture(scope="module")
def reference(reference_dir, site):  # noqa: F811
    """family -> (path on the site, CPython results as numpy arrays)."""
    from neuroscope import TransformerModel
    computed = {}

    def get(family):
        if family not in computed:
            folder = reference_dir(family)
            relative = site.add(folder, f"models/{family}")
            model = TransformerModel.from_huggingface(folder)
            clean, corrupt = model.to_tokens(CLEAN).tolist()[0], model.to_tokens(CORRUPT).tolist()[0]
            assert len(clean) == len(corrupt)
            position = next(i for i, (a, b) in enumerate(zip(clean, corrupt)) if a != b)
            namespace = {"location": folder, "clean": CLEAN, "corrupt": CORRUPT, "position": position}
            exec(SCRIPT, namespace)
            results = {name: tensor.numpy() for name, tensor in namespace["results"].items()}
            assert not np.allclose(results["ablated"], results["logits"])  # the interventions bite
            assert not np.allclose(results["patched"], results["logits"])
            computed[family] = relative, position, results
        return computed[family]

    return get


@pytest.mark.parametrize("family", FAMILIES)
def test_logits_hooks_and_interventions_match_cpython(page, site, reference, family):  # noqa: F811
    relative, position, expected = reference(family)
    # gpt2 by absolute URL; the others by a path relative to the page (web/index.html).
    location = f"{site.url}/{relative}" if family == "gpt2" else f"../{relative}"
    got = python(page, SCRIPT + "\nresults", location=location, clean=CLEAN, corrupt=CORRUPT, position=position)
    assert sorted(got) == sorted(expected)
    failures = []
    for name, want in expected.items():
        payload = got[name]
        value = np.asarray(payload["data"], dtype=np.float64).reshape(payload["shape"])
        if list(want.shape) != payload["shape"]:
            failures.append(f"{name}: shape {payload['shape']} != {list(want.shape)}")
        elif not np.allclose(value, want, rtol=TOLERANCE, atol=TOLERANCE):
            failures.append(f"{name}: max abs error {np.max(np.abs(value - want)):.3g}")
    assert not failures, f"{family}: " + "; ".join(failures)


def test_bad_weights_raise_model_format_error_and_the_page_stays_usable(page, site, reference, tmp_path):  # noqa: F811
    import shutil
    relative, _, _ = reference("gpt2")
    broken = tmp_path / "broken"
    shutil.copytree(f"{site.root}/{relative}", broken)
    data = (broken / "model.safetensors").read_bytes()
    (broken / "model.safetensors").write_bytes(data[: len(data) // 3])
    broken_relative = site.add(str(broken), f"models/broken-{tmp_path.name}")
    error = python_error(page, "from neuroscope import TransformerModel\n"
                               "TransformerModel.from_huggingface(location)", location=f"../{broken_relative}")
    assert error["pyType"] == "ModelFormatError"
    assert "model.safetensors" in error["message"] and "truncated" in error["message"]
    missing = python_error(page, "TransformerModel.from_huggingface('../models/does-not-exist')")
    assert missing["pyType"] == "FileNotFoundError" and "does-not-exist/config.json" in missing["message"]
    assert python(page, "1 + 1") == 2
    assert python(page, "m = TransformerModel.from_huggingface(location)\nm.cfg.n_layers",
                  location=f"../{relative}") == 2


TOKEN_TENSORS = """
from neuroscope import TransformerModel
from neuroscope.tensor import as_tensor
model = TransformerModel.from_huggingface(location)
ids = as_tensor([[3, 1, 4, 1, 5]], dtype="int64")
logits, cache = model.run_with_cache(ids)
again, _ = model.run_with_cache(ids)
[logits.tolist() == model(ids).tolist() == again.tolist(), cache["resid_post", 0].shape[1]]
"""


def test_token_tensors_are_checked_on_the_device_once_per_call(page, site, reference):  # noqa: F811
    # run_with_cache checks its tensor of ids and passes it on to forward unchecked (the
    # same handle: two reads saved); any other tensor is still checked.
    relative, _, _ = reference("gpt2")
    assert python(page, TOKEN_TENSORS, location=f"../{relative}") == [True, 5]
    for bad in ("[[3, 1, 10**6]]", "[[-2, 1, 4]]"):
        for call in ("model(as_tensor({}, dtype='int64'))", "model.run_with_cache(as_tensor({}, dtype='int64'))"):
            error = python_error(page, call.format(bad))
            assert error["pyType"] == "InvalidTokenError" and "outside the vocabulary" in error["message"], error
