"""``Tensor`` semantics and the numpy backend's primitive ops.

The numpy backend defines each op; these tests pin that definition against
plain numpy (and torch where an op is a known function), including awkward
shapes, so the GPU kernels of later backends have a fixed target.
"""

import math

import numpy as np
import pytest

import neuroscope as ns
from neuroscope.backends.base import PRIMITIVE_OPS, UNARY_OPS
from neuroscope.errors import ShapeError

rng = np.random.default_rng(0)


def t(array):
    return ns.tensor(np.asarray(array))


@pytest.mark.parametrize("shape", [(1,), (7,), (3, 129), (2, 1, 5)])
def test_elementwise_and_reductions(shape):
    a = rng.standard_normal(shape).astype(np.float32)
    b = rng.standard_normal(shape[-1:]).astype(np.float32)
    np.testing.assert_allclose((t(a) + t(b) * 2 - 1 / (t(a).abs() + 1)).numpy(), a + b * 2 - 1 / (np.abs(a) + 1), rtol=1e-6)
    np.testing.assert_allclose(t(a).sum(-1).numpy(), a.sum(-1), rtol=1e-5)
    np.testing.assert_allclose(t(a).mean((0,), keepdims=True).numpy(), a.mean(0, keepdims=True), rtol=1e-5)
    np.testing.assert_allclose(t(a).max().item(), a.max())
    np.testing.assert_array_equal(t(a).argmax(-1).numpy(), a.argmax(-1))
    assert t(a).dtype == "float32"


def test_unary_ops_match_references():
    torch = pytest.importorskip("torch")
    x = np.linspace(-6, 6, 1001, dtype=np.float32)
    backend = ns.get_backend()
    expected = {
        "gelu": torch.nn.functional.gelu(torch.tensor(x)).numpy(),
        "gelu_new": torch.nn.functional.gelu(torch.tensor(x), approximate="tanh").numpy(),
        "silu": torch.nn.functional.silu(torch.tensor(x)).numpy(),
        "sigmoid": 1 / (1 + np.exp(-x)), "relu": np.maximum(x, 0), "tanh": np.tanh(x),
    }
    for op, reference in expected.items():
        np.testing.assert_allclose(backend.unary(op, x), reference, atol=2e-6, err_msg=op)
    assert set(UNARY_OPS) <= set(dir(backend)) | set(UNARY_OPS)


def test_matmul_with_transposes_and_batches():
    a = rng.standard_normal((2, 7, 129)).astype(np.float32)
    b = rng.standard_normal((129, 5)).astype(np.float32)
    np.testing.assert_allclose((t(a) @ t(b)).numpy(), a @ b, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(ns.matmul(t(a), t(b.T.copy()), transpose_b=True).numpy(), a @ b,
                               rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(ns.matmul(t(a.transpose(0, 2, 1).copy()), t(b), transpose_a=True).numpy(),
                               a @ b, rtol=1e-4, atol=1e-4)


def test_softmax_is_safe_on_fully_masked_rows():
    x = np.array([[1.0, 2.0, -math.inf], [-math.inf, -math.inf, -math.inf]], dtype=np.float32)
    out = t(x).softmax(-1).numpy()
    np.testing.assert_allclose(out[0], np.exp([1, 2, -np.inf]) / np.exp([1, 2]).sum(), rtol=1e-6)
    np.testing.assert_array_equal(out[1], 0.0)


def test_indexing_like_numpy():
    a = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5)
    for key in [1, (slice(None), 2), (Ellipsis, 1), (slice(None), slice(None), [0, 3]),
                (slice(None), None, 1), (-1, Ellipsis, slice(None, -1))]:
        expected = a[key] if not (isinstance(key, tuple) and sum(isinstance(k, list) for k in key) > 1) else None
        np.testing.assert_array_equal(t(a)[key].numpy(), expected, err_msg=str(key))
    np.testing.assert_array_equal(t(a)[0, 1::2, [1, 2]].numpy(), a[0, 1::2][:, [1, 2]])
    # Two lists index independently (outer), unlike numpy's joint fancy indexing.
    np.testing.assert_array_equal(t(a)[:, [0, 2], :, [1, 4]].numpy(), a[:, [0, 2]][..., [1, 4]])
    with pytest.raises(IndexError, match="index 3 is out of range for axis 0 with size 2"):
        t(a)[3]
    with pytest.raises(ShapeError, match="too many indices"):
        t(a)[0, 0, 0, 0, 0]


def test_setitem_is_copy_on_write():
    a = t(np.zeros((2, 3), dtype=np.float32))
    alias = ns.Tensor(a.data)
    a[:, 1] = 5.0
    assert a.tolist() == [[0, 5, 0], [0, 5, 0]]
    assert alias.tolist() == [[0, 0, 0], [0, 0, 0]]


def _cpython_backends():
    from neuroscope.backends.numpy_backend import NumpyBackend

    backends = [NumpyBackend()]
    try:
        from neuroscope.backends.torch_backend import TorchBackend
    except ImportError:
        return backends
    return backends + [TorchBackend("cpu")]


@pytest.mark.parametrize("backend", _cpython_backends(), ids=lambda backend: backend.name)
def test_numpy_arrays_in_and_out_cannot_edit_the_tensor(backend):
    # .numpy() is a view of the tensor's memory on the CPython backends: writable, an edit
    # through it changed a cached activation or a weight behind the model's back (and
    # np.array(tensor), which promises a copy, returned that view too).
    a = ns.Tensor(backend.from_host([[1.0, 2.0], [3.0, 4.0]], (2, 2), "float32"), backend)
    view = a.numpy()
    assert not view.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        view[0, 0] = 9.0
    with pytest.raises(ValueError, match="read-only"):
        np.asarray(a)[0, 0] = 9.0
    copied = np.array(a)
    copied[0, 0] = 9.0
    assert copied.flags.writeable and a.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    wider = np.asarray(a, dtype=np.float64)  # a dtype change copies
    assert wider.dtype == np.float64 and wider.flags.writeable
    with pytest.raises(ValueError, match="needs a copy"):
        np.asarray(a, dtype=np.float64, copy=False)
    np.testing.assert_array_equal(np.asarray(a, copy=False), [[1.0, 2.0], [3.0, 4.0]])
    assert np.shares_memory(a.numpy(), a.numpy())  # no copy made for a plain read
    assert a.sum().numpy() == 10.0  # a 0-d result reads back too
    # Nor can the array a tensor was made from: the tensor holds its own copy.
    source = np.array([[1.0, 2.0]], dtype=np.float32)
    made = ns.Tensor(backend.from_host(source, (1, 2), "float32"), backend)
    source[0, 0] = 9.0
    assert made.tolist() == [[1.0, 2.0]]


def test_float16_norms_compute_in_float32_and_round_once():
    from neuroscope.backends.numpy_backend import NumpyBackend

    backend = NumpyBackend()
    x = (rng.standard_normal((3, 768)) * 300).astype(np.float16)  # squares past float16's range
    weight, bias = rng.standard_normal(768).astype(np.float16), rng.standard_normal(768).astype(np.float16)
    wide = [a.astype(np.float32) for a in (x, weight, bias)]
    got = backend.layer_norm(x, weight, bias, 1e-5)
    assert got.dtype == np.float16
    np.testing.assert_array_equal(got, backend.layer_norm(*wide, 1e-5).astype(np.float16))
    got = backend.rms_norm(x, weight, 1e-5)
    assert got.dtype == np.float16 and np.isfinite(got).all()
    np.testing.assert_array_equal(got, backend.rms_norm(wide[0], wide[1], 1e-5).astype(np.float16))


def test_shape_errors_name_the_shapes():
    with pytest.raises(ShapeError, match=r"cannot add shapes \[2, 3\] and \[4\]"):
        t(np.zeros((2, 3))) + t(np.zeros(4))
    with pytest.raises(ShapeError, match=r"cannot reshape \[2, 3\] \(6 elements\) to \[4\]"):
        t(np.zeros((2, 3))).reshape(4)
    with pytest.raises(ShapeError, match="topk k=9 requested"):
        t(np.zeros(3)).topk(9)


def test_topk_sorted_descending():
    x = rng.standard_normal((3, 129)).astype(np.float32)
    values, indices = t(x).topk(5)
    expected = np.sort(x, axis=-1)[:, ::-1][:, :5]
    np.testing.assert_array_equal(values.numpy(), expected)
    np.testing.assert_array_equal(np.take_along_axis(x, indices.numpy(), -1), expected)


def test_attention_op_equals_explicit_math():
    backend = ns.get_backend()
    q = rng.standard_normal((2, 7, 4, 3)).astype(np.float32)
    k = rng.standard_normal((2, 9, 2, 3)).astype(np.float32)  # 2 kv heads for 4 query heads
    v = rng.standard_normal((2, 9, 2, 3)).astype(np.float32)
    z, pattern = backend.attention(q, k, v, None, 0.5, True)
    kr, vr = np.repeat(k, 2, axis=2), np.repeat(v, 2, axis=2)
    scores = np.einsum("bqhe,bkhe->bhqk", q, kr) * 0.5
    scores[:, :, ~np.tril(np.ones((7, 9), bool), 2)] = -np.inf
    expected_pattern = np.exp(scores - scores.max(-1, keepdims=True))
    expected_pattern /= expected_pattern.sum(-1, keepdims=True)
    np.testing.assert_allclose(pattern, expected_pattern, atol=1e-6)
    np.testing.assert_allclose(z, np.einsum("bhqk,bkhe->bqhe", expected_pattern, vr), atol=1e-5)


def test_rotary_rotates_pairs_of_halves():
    backend = ns.get_backend()
    x = rng.standard_normal((1, 3, 2, 8)).astype(np.float32)
    angle = rng.standard_normal((1, 3, 2)).astype(np.float32)
    cos = np.cos(np.concatenate([angle, angle], -1))
    sin = np.sin(np.concatenate([angle, angle], -1))
    out = backend.rotary(x, cos, sin, 4)
    first, second = x[..., 0:2], x[..., 2:4]
    c, s = np.cos(angle)[:, :, None], np.sin(angle)[:, :, None]
    np.testing.assert_allclose(out[..., :2], first * c - second * s, atol=1e-6)
    np.testing.assert_allclose(out[..., 2:4], second * c + first * s, atol=1e-6)
    np.testing.assert_array_equal(out[..., 4:], x[..., 4:])


def test_every_primitive_op_is_implemented_by_numpy():
    backend = ns.get_backend()
    for op in PRIMITIVE_OPS:
        assert callable(getattr(backend, op)), op
    with pytest.raises(NotImplementedError, match="not a primitive op"):
        backend.dispatch("fft", None)


def test_from_bytes_decodes_safetensors_dtypes():
    torch = pytest.importorskip("torch")
    backend = ns.get_backend()
    values = torch.tensor([1.5, -2.25, 3e-3, 65504.0])
    for dtype, name in ((torch.bfloat16, "BF16"), (torch.float16, "F16"), (torch.float32, "F32")):
        raw = values.to(dtype).view(torch.uint8).numpy().tobytes()
        got = backend.from_bytes(raw, name, (2, 2))
        np.testing.assert_array_equal(got, values.to(dtype).float().numpy().reshape(2, 2))
        assert got.dtype == np.float32


def test_reversed_and_mixed_indexing():
    a = np.arange(3 * 5 * 7, dtype=np.float32).reshape(3, 5, 7)
    np.testing.assert_array_equal(t(a)[::-1].numpy(), a[::-1])
    np.testing.assert_array_equal(t(a)[:, 3::-2].numpy(), a[:, 3::-2])
    # An int and a list index in axis order ("outer"), unlike numpy's advanced indexing.
    np.testing.assert_array_equal(t(a)[1, :, [4, 0]].numpy(), a[1][:, [4, 0]])
    b = t(a)
    b[1, :, [4, 0]] = np.ones((5, 2), dtype=np.float32) * -1
    expected = a.copy()
    expected[1][:, [4, 0]] = -1
    np.testing.assert_array_equal(b.numpy(), expected)


def test_topk_ties_keep_lower_index_first():
    values, indices = t(np.array([1, 3, 3, 2, 3, 0], dtype=np.float32)).topk(4)
    assert indices.tolist() == [1, 2, 4, 3]
    assert values.tolist() == [3, 3, 3, 2]


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_topk_of_a_few_from_many_equals_a_stable_sort(axis):
    # k much smaller than the axis takes numpy's partition path; it must agree with a
    # stable argsort exactly, ties (many here: small integers) included.
    rng = np.random.default_rng(axis + 5)
    for x in (rng.integers(-3, 4, size=(60, 50)).astype(np.float32), rng.standard_normal((60, 50), np.float32),
              np.zeros((60, 50), np.float32)):
        order = np.argsort(-x, axis=axis, kind="stable")
        want = np.take(order, np.arange(5), axis=axis)
        values, indices = t(x).topk(5, axis=axis)
        np.testing.assert_array_equal(indices.numpy(), want)
        np.testing.assert_array_equal(values.numpy(), np.take_along_axis(x, want, axis=axis))
