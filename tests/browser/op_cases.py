"""Random op cases for kernel parity: every primitive op at awkward shapes.

A case is ``(name, op, args, attrs, tolerance)`` where args are numpy arrays
(uploaded as tensors), Python scalars, lists of arrays (concat) or slice keys.
``run_case(backend, case)`` runs it on any backend and returns its outputs.
Every op of the op table (``backends/ops.py``), and every choice of its ``op``
parameters, has cases here (``tests/test_op_table.py`` checks).
"""

import math

import numpy as np

from neuroscope.backends.ops import BINARY_OPS, PRIMITIVE_OPS, REDUCE_OPS, UNARY_OPS

ELEMENTWISE, MATMUL = 1e-5, 1e-4
AWKWARD = [(1,), (7,), (3, 129), (2, 5, 33)]


def _rand(rng, shape, low=-3.0, high=3.0):
    return rng.uniform(low, high, size=shape).astype(np.float32)


def cases(seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for shape in AWKWARD:
        tag = "x".join(map(str, shape))
        for op in UNARY_OPS:
            low = 0.05 if op in ("log", "sqrt", "rsqrt") else -6.0
            x = _rand(rng, shape, low, 6.0)
            if op == "isfinite":
                x.flat[0] = np.inf
            out.append((f"unary_{op}_{tag}", "unary", [op, x], {}, ELEMENTWISE))
        for op in BINARY_OPS:
            a = _rand(rng, shape, 0.1, 3.0) if op == "pow" else _rand(rng, shape)
            b = _rand(rng, shape[-1:], 0.1, 2.0)
            if op in ("eq", "ne", "le", "ge"):
                b = a[(0,) * (len(shape) - 1)].copy()
            out.append((f"binary_{op}_{tag}", "binary", [op, a, b], {}, ELEMENTWISE))
        out.append((f"binary_scalar_{tag}", "binary", ["mul", _rand(rng, shape), 0.5], {}, ELEMENTWISE))
        out.append((f"binary_rscalar_{tag}", "binary", ["sub", 2.0, _rand(rng, shape)], {}, ELEMENTWISE))
        x = _rand(rng, shape)
        out.append((f"where_{tag}", "where", [x > 0, x, -math.inf], {}, ELEMENTWISE))
        axis = len(shape) - 1
        for op in REDUCE_OPS:
            out.append((f"reduce_{op}_{tag}", "reduce", [op, x, (axis,), True], {}, MATMUL))
            out.append((f"reduce_{op}_all_{tag}", "reduce", [op, x, tuple(range(len(shape))), False], {}, MATMUL))
        out.append((f"softmax_{tag}", "softmax", [x, axis], {}, MATMUL))
        out.append((f"log_softmax_{tag}", "log_softmax", [x, axis], {}, MATMUL))
        out.append((f"argmax_{tag}", "argmax", [x, axis], {}, 0))
        out.append((f"cumsum_{tag}", "cumsum", [x, axis], {}, MATMUL))
        out.append((f"cast_int_{tag}", "cast", [x * 3, "int64"], {}, 0))
        d = shape[-1]
        out.append((f"layer_norm_{tag}", "layer_norm", [x, _rand(rng, (d,)), _rand(rng, (d,)), 1e-5], {}, MATMUL))
        out.append((f"layer_norm_plain_{tag}", "layer_norm", [x, None, None, 1e-5], {}, MATMUL))
        out.append((f"rms_norm_{tag}", "rms_norm", [x, _rand(rng, (d,)), 1e-6], {}, MATMUL))
        out.append((f"topk_{tag}", "topk", [x, min(3, d), axis], {}, 0))
        ties = np.round(x).astype(np.float32)  # many equal values: lower index first
        out.append((f"topk_ties_{tag}", "topk", [ties, min(4, d), axis], {}, 0))
    for m, k, n in [(1, 1, 1), (7, 129, 5), (33, 64, 65), (2, 300, 17)]:
        a, b = _rand(rng, (m, k)), _rand(rng, (k, n))
        out.append((f"matmul_{m}x{k}x{n}", "matmul", [a, b], {}, MATMUL))
        out.append((f"matmul_tb_{m}x{k}x{n}", "matmul", [a, b.T.copy()], {"transpose_b": True}, MATMUL))
        out.append((f"matmul_ta_{m}x{k}x{n}", "matmul", [a.T.copy(), b], {"transpose_a": True}, MATMUL))
    out.append(("matmul_batched", "matmul", [_rand(rng, (2, 3, 7, 9)), _rand(rng, (3, 9, 5))], {}, MATMUL))
    table = _rand(rng, (11, 6))
    out.append(("gather_rows", "gather", [table, np.array([[0, 10, 3], [3, 3, 1]], dtype=np.int64), 0], {}, 0))
    out.append(("gather_axis1", "gather", [table, np.array([5, 0], dtype=np.int64), 1], {}, 0))
    out.append(("take_along", "take_along", [table, np.array([[1], [5]] * 5 + [[0]], dtype=np.int64), 1], {}, 0))
    cube = _rand(rng, (3, 5, 7))
    # Keys arrive normalised (Python's slice.indices): triples are range() arguments.
    keys = [((1, 3, 1), (0, 5, 2)), (2,), ((0, 3, 1), [4, 0], (6, 0, -2)), ([2, 0], 1, [6, 6]),
            ((2, -1, -1), 3), (1, (4, -1, -2), [5, 0])]
    for i, key in enumerate(keys):
        out.append((f"slice_{i}", "slice", [cube, key], {}, 0))
        value = _rand(rng, _numpy_shape(cube, key))
        out.append((f"set_slice_{i}", "set_slice", [cube, key, value], {}, 0))
        out.append((f"set_slice_scalar_{i}", "set_slice", [cube, key, 0.0], {}, 0))
    out.append(("concat", "concat", [[cube, cube[:, :2], cube[:, :1]], 1], {}, 0))
    out.append(("reshape", "reshape", [cube, (5, 21)], {}, 0))
    out.append(("permute", "permute", [cube, (2, 0, 1)], {}, 0))
    out.append(("broadcast_to", "broadcast_to", [cube[:, :1], (3, 4, 7)], {}, 0))
    for b, q, kk, h, g, e in [(1, 1, 1, 1, 1, 1), (2, 7, 7, 4, 2, 5), (1, 3, 9, 2, 2, 16)]:
        qa, ka, va = _rand(rng, (b, q, h, e)), _rand(rng, (b, kk, g, e)), _rand(rng, (b, kk, g, e))
        out.append((f"attention_causal_{b}{q}{kk}{h}{g}{e}", "attention", [qa, ka, va, None, 0.3, True], {}, MATMUL))
        mask = rng.uniform(size=(b, q, kk)) > 0.3
        mask[:, :, 0] = True
        mask[0, -1] = False  # a fully masked row: safe softmax gives zeros
        out.append((f"attention_mask_{b}{q}{kk}{h}{g}{e}", "attention", [qa, ka, va, mask, 0.3, True], {}, MATMUL))
    x = _rand(rng, (2, 5, 3, 8))
    angle = _rand(rng, (2, 5, 3))
    cos, sin = np.cos(np.concatenate([angle, angle], -1)), np.sin(np.concatenate([angle, angle], -1))
    out.append(("rotary_partial", "rotary", [x, cos, sin, 6], {}, ELEMENTWISE))
    out.append(("full", "full", [(3, 129), -1.5, "float32"], {}, 0))
    out.append(("full_neg_inf", "full", [(2, 3), -math.inf, "float32"], {}, 0))
    out.append(("arange", "arange", [3, 130, "int64"], {}, 0))
    return out


def _numpy_shape(array, key):
    from neuroscope.backends.numpy_backend import NumpyBackend
    return NumpyBackend().slice(array, key).shape


def _upload(backend, value):
    if isinstance(value, np.ndarray):
        dtype = {"f": "float32", "i": "int64", "b": "bool"}[value.dtype.kind]
        return backend.from_host(value.astype(dtype) if dtype != "bool" else value, value.shape, dtype)
    if isinstance(value, list) and value and isinstance(value[0], np.ndarray):
        return [_upload(backend, v) for v in value]
    return value


def run_case(backend, case, by_name=False):
    """Outputs (handles) of one case on ``backend``; ``by_name`` passes every argument
    by keyword (the op table's parameter names) instead of by position."""
    _, op, args, attrs, _ = case
    if op in ("full", "arange"):
        return [getattr(backend, op)(*args)]
    args = [_upload(backend, a) for a in args]
    if by_name:
        result = backend.dispatch(op, **dict(zip(PRIMITIVE_OPS[op].names, args)), **attrs)
    else:
        result = backend.dispatch(op, *args, **attrs)
    return [r for r in (result if isinstance(result, tuple) else (result,)) if r is not None]
