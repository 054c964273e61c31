"""The torch backend equals the numpy reference: every op case, host transfers, the
reference models' logits and every cached hook, and the addressing, Hugging Face and
TransformerLens parity tests re-run with torch as the active backend.

Op cases are compared as the browser kernel test compares them (tests/browser/
test_kernels.py): non-finite entries exactly, finite ones within the case's tolerance
(1e-5 elementwise, 1e-4 matmuls and reductions, exact for indexing); here shapes and
dtypes must match numpy's too. Models: 1e-4 absolute, as tests/test_parity_hf.py.
"""

import inspect
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import neuroscope as ns  # noqa: E402
import test_addressing  # noqa: E402
import test_parity_hf  # noqa: E402
import test_parity_tl  # noqa: E402
import test_tensor  # noqa: E402
from browser.op_cases import cases, run_case  # noqa: E402
from neuroscope import backends  # noqa: E402
from neuroscope.backends import ops  # noqa: E402
from neuroscope.backends.numpy_backend import NumpyBackend  # noqa: E402
from neuroscope.backends.torch_backend import TorchBackend, TorchHandle  # noqa: E402
from reference_models import CORPUS, FAMILIES  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ATOL = 1e-4
CASES = cases()
NUMPY, TORCH = NumpyBackend(), TorchBackend()
# Op cases and model parity run on CUDA too where a CUDA device is present (none is needed).
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
ON_DEVICE = {device: TorchBackend(device) for device in DEVICES}


@pytest.fixture(scope="module", autouse=True)
def torch_is_the_active_backend():
    """Every test here, and the imported ones below, run with torch installed."""
    previous = backends._active
    backends.set_backend("torch")
    yield
    backends._active = previous


# The Tensor, addressing, Hugging Face and TransformerLens parity tests, collected again here so
# they run on torch (the fixture above is active for this module); not those that are about numpy
# itself: the numpy repr, and calls of numpy-backend methods on numpy arrays.
_NUMPY_ONLY = {"test_tensor_repr_shows_values_on_numpy", "test_unary_ops_match_references",
               "test_attention_op_equals_explicit_math", "test_rotary_rotates_pairs_of_halves",
               "test_from_bytes_decodes_safetensors_dtypes"}
for _module in (test_tensor, test_addressing, test_parity_hf, test_parity_tl):
    globals().update({name: value for name, value in vars(_module).items()
                      if name.startswith("test_") and name not in _NUMPY_ONLY})
model = test_addressing.model  # their module-scoped fixture, built with torch here


def _compare(name, got, want, tolerance):
    """None, or what differs between a torch and a numpy output (test_kernels' rules)."""
    if got.shape != want.shape or got.dtype != want.dtype:
        return f"{name}: {got.dtype}{list(got.shape)}, numpy gives {want.dtype}{list(want.shape)}"
    got, want = got.astype(np.float64).ravel(), want.astype(np.float64).ravel()
    finite = np.isfinite(want)
    if not np.array_equal(got[~finite], want[~finite], equal_nan=True) or not np.isfinite(got[finite]).all():
        return f"{name}: non-finite entries differ"
    if tolerance == 0:
        ok = np.array_equal(got[finite], want[finite])
    else:
        ok = np.allclose(got[finite], want[finite], rtol=tolerance, atol=tolerance)
    if not ok:
        return f"{name}: max abs error {np.max(np.abs(got[finite] - want[finite])):.3g} > {tolerance}"
    return None


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", CASES, ids=[case[0] for case in CASES])
def test_every_op_case_matches_numpy(case, device):
    backend = ON_DEVICE[device]
    want = run_case(NUMPY, case)
    got = run_case(backend, case, by_name=True)
    assert len(got) == len(want)
    for handle, expected in zip(got, want):
        assert isinstance(handle, TorchHandle) and not handle.tensor.requires_grad
        assert handle.tensor.device.type == device
        failure = _compare(case[0], backend.to_numpy(handle), np.asarray(expected), case[4])
        assert failure is None, failure


def test_ops_run_without_autograd():
    x = TORCH.from_host([1.0, 2.0], (2,), "float32")
    with torch.enable_grad():
        out = TORCH.dispatch("unary", "exp", x)
    assert torch.is_inference(out.tensor) and not out.tensor.requires_grad


@pytest.mark.parametrize("name", sorted(ops.PRIMITIVE_OPS))
def test_every_op_has_the_tables_signature(name):
    params = list(inspect.signature(getattr(TorchBackend, name)).parameters.values())[1:]
    got = [(p.name, None if p.default is inspect.Parameter.empty else repr(p.default)) for p in params]
    want = [(p.name, None if p.required else repr(p.default)) for p in ops.PRIMITIVE_OPS[name].params]
    assert got == want


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # numpy on inf - inf
def test_mixed_dtypes_scalars_and_edge_cases_match_numpy():
    rng = np.random.default_rng(1)
    x = rng.uniform(-3, 3, (4, 5)).astype(np.float32)
    ints = rng.integers(-4, 5, (4, 5))
    mask = x > 0
    checks = [
        ("binary", ["div", 3.0, x]), ("binary", ["pow", 2.0, x]), ("binary", ["maximum", 0.5, x]),
        ("binary", ["minimum", x, 1]), ("binary", ["lt", 0.0, x]), ("binary", ["ge", x, 0.5]),
        ("binary", ["add", ints, 2]), ("binary", ["mul", mask, mask]), ("binary", ["sub", 1, ints]),
        ("binary", ["maximum", mask, mask]), ("binary", ["eq", ints, 0]),
        ("where", [mask, 1.0, 0.0]), ("where", [mask, x, ints.astype(np.float32)]),
        ("reduce", ["sum", mask, (1,), False]), ("reduce", ["max", ints, (0, 1), True]),
        ("reduce", ["sum", x, (), False]), ("reduce", ["var", x, (), True]),
        ("cumsum", [mask, 1]), ("argmax", [mask, 1]), ("unary", ["relu", ints]),
        ("gather", [x, np.array([-1, 0, -4]), 0]), ("take_along", [x, np.array([[-1]] * 4), 1]),
        ("cast", [x, "float16"]), ("cast", [ints, "float32"]), ("cast", [x, "bool"]),
        ("softmax", [np.array([[-np.inf, -np.inf, -np.inf], [0.0, -np.inf, 1.0]], dtype=np.float32), 1]),
        ("softmax", [np.array([[np.inf, 1.0, -np.inf], [np.nan, 0.0, 1.0]], dtype=np.float32), 1]),
        ("slice", [x, ((3, -1, -1), [4, 4, 0])]), ("slice", [x, (2, (4, 0, -2))]),
        ("set_slice", [x, ([0, 2], 1), np.float32(7.0) * np.ones(2, np.float32)]),
        ("set_slice", [ints, ((0, 4, 2), (4, -1, -1)), 1.5]),
        ("concat", [[x, ints.astype(np.float32)], 0]),
    ]
    failures = []
    for op, args in checks:
        case = (f"{op}{args[:1]}", op, args, {}, 1e-6)
        want = np.asarray(run_case(NUMPY, case)[0])
        got = TORCH.to_numpy(run_case(TORCH, case)[0])
        if op == "where" and isinstance(args[1], float):
            want = want.astype(np.float32)  # numpy: Python floats alone make float64; the table says float32
        failures.append(_compare(case[0], got, want, 1e-6))
    failures = [f for f in failures if f]
    assert not failures, "\n".join(failures)


def test_attention_with_a_key_value_cache_and_a_pattern_matches_numpy():
    rng = np.random.default_rng(2)
    q, k, v = (rng.normal(size=shape).astype(np.float32) for shape in ((2, 3, 4, 8), (2, 7, 2, 8), (2, 7, 2, 8)))
    for return_pattern in (False, True):
        case = ("attention", "attention", [q, k, v, None, 0.35, return_pattern], {}, 1e-4)
        for got, want in zip(run_case(TORCH, case), run_case(NUMPY, case)):
            assert _compare(f"attention pattern={return_pattern}", TORCH.to_numpy(got), want, 1e-4) is None


@pytest.mark.parametrize("dtype", ["float32", "float16", "float64", "int64", "int32", "uint8", "bool"])
def test_host_transfers_as_on_numpy(dtype):
    values = [[0, 1, 2], [3, 1, 0]] if dtype != "bool" else [[True, False, True], [False, False, True]]
    for data in (values, np.asarray(values), np.asarray(values).ravel().tolist()):
        shape = (2, 3)
        want = NUMPY.from_host(data, shape, dtype)
        got = TORCH.from_host(data, shape, dtype)
        assert got.shape == want.shape and got.dtype == str(want.dtype)
        assert TORCH.to_list(got) == NUMPY.to_list(want)
        np.testing.assert_array_equal(TORCH.to_numpy(got), want)
        assert TORCH.to_numpy(got).dtype == want.dtype
    made = ns.tensor(values, dtype=dtype, backend=TORCH)
    assert made.backend is TORCH and made.dtype == dtype and made.tolist() == values
    assert np.asarray(made).dtype == np.dtype(dtype)


def test_tensor_creation_and_readback_through_the_package():
    source = np.arange(12, dtype=np.float32).reshape(3, 4) / 7
    t = ns.tensor(source)
    assert t.backend.name == "torch" and t.dtype == "float32" and t.shape == (3, 4)
    np.testing.assert_array_equal(t.numpy(), source)
    source[0, 0] = 99.0  # the tensor holds its own copy
    assert t.tolist()[0][0] == 0.0
    assert ns.tensor([1, 2, 3]).dtype == "int64" and ns.tensor([True]).dtype == "bool"
    assert ns.tensor(2.5).item() == 2.5 and ns.tensor([[1.5]]).tolist() == [[1.5]]
    assert ns.tensor(torch.tensor([1.0, 2.0])).tolist() == [1.0, 2.0]
    assert ns.arange(3, 1).shape == (0,) and ns.full((2,), -np.inf).tolist() == [-np.inf, -np.inf]
    cut = t[:, [3, 0]]
    cut[0] = 5.0
    assert t[0, 3].item() != 5.0 and cut.tolist()[0] == [5.0, 5.0]
    assert (t.clone().data.tensor.data_ptr() != t.data.tensor.data_ptr())


@pytest.mark.parametrize("source", ["F16", "BF16", "F64", "I64", "I32", "U8", "BOOL"])
def test_from_bytes_as_on_numpy(source):
    raw = np.arange(-3, 9, dtype=np.float32) / 4
    if source == "BF16":
        buffer = (raw.view(np.uint32) >> 16).astype("<u2").tobytes()
    else:
        numpy_dtype = {"F16": "<f2", "F64": "<f8", "I64": "<i8", "I32": "<i4", "U8": "u1", "BOOL": "?"}[source]
        values = raw if source.startswith("F") else (np.abs(raw * 4) % 2 if source == "BOOL" else np.abs(raw * 4))
        buffer = values.astype(numpy_dtype).tobytes()
    for dtype in ("float32", "int64") if source.startswith(("I", "U")) else ("float32",):
        want = NUMPY.from_bytes(buffer, source, (3, 4), dtype)
        got = TORCH.from_bytes(buffer, source, (3, 4), dtype)
        np.testing.assert_array_equal(TORCH.to_numpy(got), want)
        assert got.dtype == str(want.dtype)
    if source == "BF16":
        kept = TORCH.from_bytes(buffer, source, (3, 4), "bfloat16")
        assert kept.dtype == "bfloat16"
        np.testing.assert_array_equal(TORCH.to_numpy(kept), NUMPY.from_bytes(buffer, source, (3, 4)))


def test_choosing_the_backend(monkeypatch):
    assert isinstance(ns.set_backend("torch", device="cpu"), TorchBackend)
    assert ns.get_backend().device == torch.device("cpu")
    assert isinstance(ns.set_backend("numpy"), NumpyBackend)
    for name, kind in (("numpy", NumpyBackend), ("torch", TorchBackend)):
        monkeypatch.setattr(backends, "_active", None)
        monkeypatch.setenv("NEUROSCOPE_BACKEND", name)
        assert isinstance(ns.get_backend(), kind)
    monkeypatch.setattr(backends, "_active", None)
    monkeypatch.setenv("NEUROSCOPE_BACKEND", "jax")
    with pytest.raises(ValueError, match=r"unknown backend 'jax'; expected one of \['numpy', 'torch'\]"):
        ns.get_backend()
    with pytest.raises(TypeError, match="numpy backend takes no options"):
        ns.set_backend("numpy", device="cuda")
    with pytest.raises(TypeError, match="go with a backend name"):
        ns.set_backend(TORCH, device="cpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="device 'cuda' requested, but this torch .* has no CUDA"):
            ns.set_backend("torch", device="cuda")
    ns.set_backend("torch")


def test_torch_is_the_default_where_installed_and_imported_only_when_used():
    script = textwrap.dedent("""
        import os, sys
        os.environ.pop("NEUROSCOPE_BACKEND", None)
        import neuroscope
        assert "torch" not in sys.modules, "importing neuroscope imported torch"
        backend = neuroscope.get_backend()
        assert backend.name == "torch" and str(backend.device) == "cpu", backend
        print("ok")
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                            env=dict(os.environ, PYTHONPATH=os.path.join(ROOT, "py")))
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


def test_the_package_imports_and_runs_without_torch():
    script = textwrap.dedent("""
        import os, sys
        os.environ.pop("NEUROSCOPE_BACKEND", None)
        sys.modules["torch"] = None  # any `import torch` now raises ImportError
        import neuroscope
        assert neuroscope.default_backend_name() == "numpy"
        assert neuroscope.get_backend().name == "numpy"
        try:
            neuroscope.set_backend("torch")
            raise SystemExit("the torch backend loaded without torch")
        except RuntimeError as error:
            assert "neuroscope[torch]" in str(error), error
        print("ok")
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                            env=dict(os.environ, PYTHONPATH=os.path.join(ROOT, "py")))
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("family", FAMILIES)
def test_reference_models_logits_and_every_hook_match_numpy(reference_dir, family, device):
    folder = reference_dir(family)
    on_numpy = ns.TransformerModel.from_huggingface(folder, backend=NUMPY)
    on_torch = ns.TransformerModel.from_huggingface(folder, backend=ON_DEVICE[device])
    prompts = test_parity_hf.PROMPTS
    for side in ("left", "right"):  # left padding gives fully masked query rows
        tokens, mask = on_numpy.tokenize(prompts, padding_side=side)
        want_logits, want = on_numpy.run_with_cache(tokens, attention_mask=mask)
        tokens, mask = on_torch.tokenize(prompts, padding_side=side)
        got_logits, got = on_torch.run_with_cache(tokens, attention_mask=mask)
        assert got_logits.backend is on_torch.backend
        assert sorted(got.keys()) == sorted(want.keys()) and len(want.keys()) == len(on_numpy.hook_names())
        failures = [_compare(name, got[name].numpy(), want[name].numpy(), ATOL) for name in want.keys()]
        failures.append(_compare("logits", got_logits.numpy(), want_logits.numpy(), ATOL))
        failures = [f for f in failures if f]
        assert not failures, f"{family}, {side} padding:\n" + "\n".join(failures)
    tokens = on_torch.to_tokens(CORPUS[2])
    np.testing.assert_allclose(on_torch(tokens).numpy(), on_numpy(tokens.tolist()).numpy(), rtol=0, atol=ATOL)


def test_edited_scores_and_patterns_match_numpy(reference_dir):
    """Hooks that edit scores or the pattern take the spelled-out attention path."""
    folder = reference_dir("llama")
    results = []
    for backend in (NUMPY, TORCH):
        model = ns.TransformerModel.from_huggingface(folder, backend=backend)
        tokens = model.to_tokens(test_parity_hf.PROMPTS[1])
        hooks = [("blocks.0.attn.hook_attn_scores", lambda a, hook: a * 0.5),
                 ("blocks.1.attn.hook_pattern", lambda a, hook: a.zero_heads([1])),
                 ("blocks.1.hook_resid_mid", lambda a, hook: a * 1.5)]
        results.append(model.run_with_hooks(tokens, fwd_hooks=hooks).numpy())
    np.testing.assert_allclose(results[1], results[0], rtol=0, atol=ATOL)
