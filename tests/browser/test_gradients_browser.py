"""Backward passes on each browser backend equal the numpy backend's (itself checked
against torch autograd in tests/test_autograd.py and tests/test_gradients.py).

A backward pass is ops of the op table (each VJP is written in primitive ops), so it is
recorded in CPython through the real JsBackend, like the kernel parity cases
(tests/browser/replay.py), replayed in Chromium on cpu / webgpu / webgl, and the leaf
gradients read back. Cases: every VJP rule of ``vjp.py`` at awkward shapes, and the
gradient at every hook point of two random models (GPT-2-like; Llama-like with RMSNorm,
rotary, SwiGLU and grouped-query attention). Tolerance: relative error (2-norm) ≤ 1e-4.
"""

import math

import numpy as np
import pytest

from neuroscope.backends.js_backend import JsBackend
from neuroscope.backends.numpy_backend import NumpyBackend
from neuroscope.backends.ops import BINARY_OPS, REDUCE_OPS, UNARY_OPS
from neuroscope.model.config import ModelConfig
from neuroscope.model.transformer import TransformerModel
from neuroscope.tensor import as_tensor, cat, run_op

from .replay import RecordingBridge

BACKENDS = ["cpu", "webgpu", "webgl"]
TOLERANCE = 1e-4
_NOT_DIFFERENTIABLE = {"isfinite", "eq", "ne", "lt", "le", "gt", "ge"}


def _op_cases():
    """(name, fn(*tensors) -> Tensor, arrays, which arrays get gradients)."""
    rng = np.random.default_rng(3)

    def r(*shape, low=None):
        a = rng.standard_normal(shape).astype(np.float32)
        return np.abs(a) + low if low is not None else a

    out = []
    for op in UNARY_OPS:
        if op not in _NOT_DIFFERENTIABLE:
            positive = op in ("log", "sqrt", "rsqrt")
            out.append((f"unary {op}", lambda x, op=op: run_op("unary", op, x), [r(3, 129, low=0.1 if positive
                                                                                   else None)], [0]))
    for op in BINARY_OPS:
        if op not in _NOT_DIFFERENTIABLE:
            a, b = (r(2, 5, 7, low=0.5), r(5, 1)) if op == "pow" else (r(2, 5, 7), r(5, 1, low=0.5))
            out.append((f"binary {op} broadcast", lambda a, b, op=op: run_op("binary", op, a, b), [a, b], [0, 1]))
    for op in REDUCE_OPS:
        out.append((f"reduce {op}", lambda x, op=op: run_op("reduce", op, x, (1,), True), [r(4, 33, 3)], [0]))
    mask = rng.random((2, 5, 7)) > 0.4
    mask[..., 0] = True
    angles = np.arange(5)[:, None] * 10000.0 ** (-np.arange(2) / 2)
    angles = np.concatenate([angles, angles], -1)[None].repeat(2, 0)
    cos, sin = np.cos(angles).astype(np.float32), np.sin(angles).astype(np.float32)
    out += [
        ("where", lambda c, a, b: run_op("where", c, a, b), [r(3, 8) > 0, r(3, 8), r(1, 8)], [1, 2]),
        ("cast", lambda x: run_op("cast", x, "float32") * 2.0, [r(6, 5)], [0]),
        ("matmul transposed, batch-broadcast", lambda a, b: run_op("matmul", a, b, True, False),
         [r(2, 3, 9, 5), r(3, 9, 4)], [0, 1]),
        ("cumsum", lambda x: run_op("cumsum", x, 1), [r(3, 17)], [0]),
        ("softmax", lambda x: run_op("softmax", x, -1), [r(4, 65)], [0]),
        ("log_softmax", lambda x: run_op("log_softmax", x, 0), [r(9, 6)], [0]),
        ("layer_norm", lambda x, w, b: run_op("layer_norm", x, w, b, 1e-5), [r(2, 3, 40), r(40), r(40)], [0, 1, 2]),
        ("rms_norm", lambda x, w: run_op("rms_norm", x, w, 1e-6), [r(5, 24), r(24)], [0, 1]),
        ("gather repeated indices", lambda x, i: run_op("gather", x, i, 0),
         [r(11, 6), np.array([3, 3, 0, 10, -1], dtype=np.int64)], [0]),
        ("take_along", lambda x, i: run_op("take_along", x, i, 1),
         [r(4, 9), rng.integers(0, 9, (4, 3)).astype(np.int64)], [0]),
        ("slice", lambda x: x[1:, ::2, 3], [r(3, 9, 5)], [0]),
        ("set_slice", lambda x, v: _set_slice(x, v), [r(4, 6), r(2, 6)], [0, 1]),
        ("concat", lambda a, b: cat([a, b], axis=1), [r(2, 3, 4), r(2, 5, 4)], [0, 1]),
        ("reshape permute broadcast_to", lambda x: x.reshape(3, 2, 4).permute(2, 0, 1).unsqueeze(0)
         .broadcast_to(2, 4, 3, 2), [r(6, 4)], [0]),
        ("topk", lambda x: x.topk(3)[0], [r(5, 12)], [0]),
        ("rotary", lambda x, c, s: run_op("rotary", x, c, s, 4), [r(2, 5, 3, 8), cos, sin], [0]),
        ("attention masked GQA", lambda q, k, v, m: run_op("attention", q, k, v, m, 1 / math.sqrt(8), False)[0],
         [r(2, 5, 4, 8), r(2, 7, 2, 8), r(2, 7, 2, 6), mask], [0, 1, 2]),
    ]
    return out


def _set_slice(x, v):
    y = x * 1.0
    y[1:3] = v
    return y


def _run_case(backend, case, upstream_seed):
    _, fn, arrays, wrt = case
    tensors = [as_tensor(a, backend=backend) for a in arrays]
    for i in wrt:
        tensors[i].requires_grad_()
    out = fn(*tensors)
    upstream = np.random.default_rng(upstream_seed).standard_normal(out.shape).astype(np.float32)
    out.backward(as_tensor(upstream, backend=backend))
    return [tensors[i].grad for i in wrt]


def _model_case(backend, family):
    common = dict(d_model=32, n_layers=2, n_heads=4, d_vocab=50, n_ctx=16, d_mlp=64)
    if family == "gpt2":
        cfg = ModelConfig(family="gpt2", model_type="gpt2", **common)
    else:
        cfg = ModelConfig(family="llama", model_type="llama", n_kv_heads=2, act_fn="silu", normalization="rmsnorm",
                          positional="rotary", rotary_dim=8, gated_mlp=True, qkv_bias=False, o_bias=False,
                          mlp_bias=False, **common)
    model = TransformerModel.from_config(cfg, seed=1, backend=backend)
    tokens = np.random.default_rng(2).integers(0, 50, (2, 7)).tolist()
    weights = as_tensor(np.random.default_rng(4).standard_normal((2, 7, 50)).astype(np.float32), backend=backend)
    _, _, grads = model.run_with_grad_cache(tokens, lambda logits: (logits * weights).sum())
    return list(grads.values()), list(grads)


@pytest.fixture(scope="module")
def recording():
    bridge = RecordingBridge()
    js, reference = JsBackend(bridge, "recording"), NumpyBackend()
    plan, keep = [], []
    for seed, case in enumerate(_op_cases()):
        got, want = _run_case(js, case, seed), _run_case(reference, case, seed)
        keep.append(got)
        plan += [(f"{case[0]} (input {i})", g.data.id, w.numpy()) for i, (g, w) in enumerate(zip(got, want))]
    for family in ("gpt2", "llama"):
        got, names = _model_case(js, family)
        want, _ = _model_case(reference, family)
        keep.append(got)
        plan += [(f"{family} d/d {name}", g.data.id, w.numpy()) for name, g, w in zip(names, got, want)]
    return bridge.calls, plan, keep


@pytest.mark.parametrize("backend", BACKENDS)
def test_backward_passes_match_numpy(page, repo_server, recording, backend):
    calls, plan, _ = recording
    page.goto(f"{repo_server}/tests/browser/replay.html")
    page.wait_for_function("window.replayReady === true")
    result = page.evaluate("([b, c, i]) => window.replay(b, c, i)", [backend, calls, [p[1] for p in plan]])
    assert result["backend"] == backend, page.messages
    failures = []
    for name, handle_id, expected in plan:
        got = np.asarray(result["values"][str(handle_id)], dtype=np.float64)
        want = np.asarray(expected, dtype=np.float64).ravel()
        if got.shape != want.shape or not np.isfinite(got).all():
            failures.append(f"{name}: {got.size} values (finite: {np.isfinite(got).all()}), expected {want.size}")
            continue
        error = np.linalg.norm(got - want) / max(np.linalg.norm(want), 1e-30)
        if not error <= TOLERANCE:
            failures.append(f"{name}: relative error {error:.2e}")
    assert len(plan) > 60
    assert not failures, "\n".join(failures[:40])
