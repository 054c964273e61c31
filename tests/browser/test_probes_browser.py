"""``LinearProbe`` in the page on each kernel backend (stdlib-only Pyodide: the solver is on
the Tensor API): trained on the same features as in CPython, its probabilities agree with
CPython's (which tests/test_probes.py checks against scikit-learn) to 1e-3."""

import numpy as np

from .pages import kernel_page, python, site  # noqa: F401 (fixtures)

SCRIPT = """
from neuroscope import LinearProbe, tensor
probes = {}
for name, (x, y) in data.items():
    probe = LinearProbe(tensor(x), y, regularization=0.01)
    probe.train()
    probes[name] = {"proba": probe.predict_proba(tensor(x)), "accuracy": probe.evaluate(tensor(x), y)["accuracy"],
                    "converged": probe.converged}
probes
"""


def _data():
    rng = np.random.default_rng(0)
    out = {}
    for name, (n, d, k) in {"binary": (120, 8, 2), "four": (160, 12, 4)}.items():
        centers = rng.normal(size=(k, d)) * 1.5
        labels = rng.integers(0, k, n)
        labels[:k] = np.arange(k)
        features = (centers[labels] + rng.normal(size=(n, d))).astype(np.float32)
        out[name] = (features.tolist(), labels.tolist())
    return out


def test_probes_train_alike_in_the_page(page):
    data = _data()
    namespace = {"data": data}
    exec(SCRIPT.replace("\nprobes\n", "\n"), namespace)
    want = namespace["probes"]
    got = python(page, SCRIPT, data=data)
    for name in data:
        have = np.asarray(got[name]["proba"]["data"]).reshape(got[name]["proba"]["shape"])
        assert got[name]["converged"] is True, name
        np.testing.assert_allclose(have, want[name]["proba"].numpy(), rtol=0, atol=1e-3, err_msg=name)
        assert abs(got[name]["accuracy"] - want[name]["accuracy"]) <= 1 / len(data[name][1])
