"""Heads address heads on every head-bearing hook, and observing never changes the logits,
in the page on each kernel backend (the CPython side: tests/test_addressing.py).

One script runs in CPython and in the page: for each hook with a head axis it zeroes head 1
with ``heads=[1]`` and records, by an observer added after it, the activation the model then
carries on. CPython checks those activations against a hand-computed expectation (the clean
activation with index 1 of the hook's head axis zeroed); the page must give the same numbers.
It also runs the model with an observer on every hook point: the logits must equal the
plain forward's.
"""

import numpy as np
import pytest

from .pages import kernel_page, python, site  # noqa: F401 (fixtures)

FAMILIES = ["gpt2", "gpt_neox", "llama"]  # llama's reference model has grouped-query attention
PROMPT = "When Mary and John went to the store, John gave a drink to"
COMPONENTS = ["q", "k", "v", "z", "attention", "scores", "pattern"]
TOLERANCE = 1e-3

SCRIPT = """
from neuroscope import ActivationHook, InterventionHook, TransformerModel, ZeroAblation, component_name
model = TransformerModel.from_huggingface(location)
tokens = model.to_tokens(prompt)
plain = model(tokens)
_, clean = model.run_with_cache(tokens)
seen = []
with model.hooks([(lambda name: True, lambda activation, hook: seen.append(hook.name))]):
    observed = model(tokens)
results = {"plain": plain, "observed": observed, "n_observed": len(seen)}
for component in components:
    name = component_name(1, component)
    ablate = InterventionHook(layer=1, component=component, heads=[1], action=ZeroAblation())
    keep = ActivationHook(layer=1, component=component)
    with model.hooks([ablate, keep]):
        results["logits." + component] = model(tokens)
    results["edited." + component] = keep.last_activation
    results["clean." + component] = clean[name]
    results["axes." + component] = list(model.hook_manager.hook_points[name].axes)
"""


def _expected(folder):
    from neuroscope import TransformerModel  # noqa: F401 (the script imports it)
    namespace = {"location": folder, "prompt": PROMPT, "components": COMPONENTS}
    exec(SCRIPT, namespace)
    return namespace["results"], namespace["model"]


@pytest.fixture(scope="module")
def reference(reference_dir, site):  # noqa: F811
    computed = {}

    def get(family):
        if family not in computed:
            folder = reference_dir(family)
            results, model = _expected(folder)
            computed[family] = site.add(folder, f"models/{family}"), results, model
        return computed[family]

    return get


@pytest.mark.parametrize("family", FAMILIES)
def test_cpython_head_addressing_matches_a_hand_computed_expectation(reference, family):
    _, results, model = reference(family)
    assert results["n_observed"] == len(model.hook_names())
    np.testing.assert_allclose(results["observed"].numpy(), results["plain"].numpy(), rtol=0, atol=1e-6)
    for component in COMPONENTS:
        axes = results["axes." + component]
        head_axis = axes.index("kv_head" if component in ("k", "v") else "head")
        want = results["clean." + component].numpy().copy()
        index = [slice(None)] * want.ndim
        index[head_axis] = 1
        want[tuple(index)] = 0
        np.testing.assert_allclose(results["edited." + component].numpy(), want, rtol=0, atol=1e-6,
                                   err_msg=f"{family} {component}")


@pytest.mark.parametrize("family", FAMILIES)
def test_head_addressing_and_observers_in_the_page(page, reference, family):
    relative, expected, _ = reference(family)
    got = python(page, SCRIPT + "\n{k: v for k, v in results.items() if not k.startswith('clean.')}",
                 location=f"../{relative}", prompt=PROMPT, components=COMPONENTS)
    assert got["n_observed"] == expected["n_observed"]
    observed = np.asarray(got["observed"]["data"]).reshape(got["observed"]["shape"])
    plain = np.asarray(got["plain"]["data"]).reshape(got["plain"]["shape"])
    np.testing.assert_allclose(observed, plain, rtol=0, atol=1e-6, err_msg="observing changed the logits")
    failures = []
    for name, value in got.items():
        if not isinstance(value, dict):
            assert value == expected[name], name
            continue
        have = np.asarray(value["data"], dtype=np.float64).reshape(value["shape"])
        want = expected[name].numpy()
        if have.shape != want.shape:
            failures.append(f"{name}: shape {have.shape} != {want.shape}")
        elif not np.allclose(have, want, rtol=TOLERANCE, atol=TOLERANCE):
            failures.append(f"{name}: max abs error {np.max(np.abs(have - want)):.3g}")
    assert not failures, f"{family}: " + "; ".join(failures)
