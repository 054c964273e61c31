"""Shared fixtures: the package from this checkout, and tiny reference models."""

import os
import sys

import pytest

# Every CPython op is checked against the op table's shape rules, as the browser's backends
# check them, so code that works only on numpy fails here (backends/base.py).
os.environ.setdefault("NEUROSCOPE_CHECK_OPS", "1")
# The suite runs on numpy, the reference (and the default without torch), which its exact
# expectations are written against; the torch backend (the default where torch is
# installed) is checked against it in test_torch_backend.py, which re-runs the tensor,
# addressing and parity tests on torch, and in test_cache_deferred.py.
os.environ.setdefault("NEUROSCOPE_BACKEND", "numpy")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "py"))
sys.path.insert(0, os.path.join(ROOT, "tests"))


@pytest.fixture(scope="session")
def reference_dir(tmp_path_factory):
    """A function family -> folder holding a tiny random HF model of that family."""
    pytest.importorskip("torch", reason="the ref extra (torch, transformers) is not installed")
    pytest.importorskip("transformers", reason="the ref extra (transformers) is not installed")
    import reference_models
    root = tmp_path_factory.mktemp("reference_models")
    built = {}

    def get(family):
        if family not in built:
            built[family] = reference_models.build(family, str(root / family))
        return built[family]

    return get
