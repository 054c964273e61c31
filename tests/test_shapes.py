"""``backends/shapes.py`` predicts every op's output exactly as the numpy reference
produces it: a checking backend compares prediction and result on each dispatch
while whole models of every family run (padding, caches, generation, patching)."""

import numpy as np
import pytest

import neuroscope as ns
from neuroscope.backends import shapes
from neuroscope.backends.numpy_backend import NumpyBackend

CONFIGS = {
    "gpt2": dict(model_type="gpt2", vocab_size=30, n_positions=16, n_embd=16, n_layer=2, n_head=4),
    "gpt_neox": dict(model_type="gpt_neox", vocab_size=30, hidden_size=16, num_hidden_layers=2,
                     num_attention_heads=4, intermediate_size=24, rotary_pct=0.5),
    "mistral": dict(model_type="mistral", vocab_size=30, hidden_size=16, num_hidden_layers=2,
                    num_attention_heads=4, num_key_value_heads=2, intermediate_size=24, sliding_window=3),
}


class CheckingBackend(NumpyBackend):
    name = "checking"

    def __init__(self):
        self.seen = set()

    def dispatch(self, op, *args, **attrs):
        predicted = shapes.infer(op, *args, **attrs)
        result = super().dispatch(op, *args, **attrs)
        outputs = [r for r in (result if isinstance(result, tuple) else (result,)) if r is not None]
        assert len(outputs) == len(predicted), op
        for array, (shape, dtype) in zip(outputs, predicted):
            assert tuple(array.shape) == shape, (op, array.shape, shape)
            kind = "float" if dtype.startswith("float") else dtype
            assert str(array.dtype).startswith(kind) or (kind == "int64" and array.dtype.kind in "iu"), \
                (op, array.dtype, dtype)
        self.seen.add(op)
        return result


@pytest.fixture
def checking():
    backend = CheckingBackend()
    previous = ns.get_backend()
    ns.set_backend(backend)
    yield backend
    ns.set_backend(previous)


@pytest.mark.parametrize("family", sorted(CONFIGS))
def test_shape_rules_match_numpy_on_whole_models(checking, family):
    model = ns.TransformerModel.from_config(CONFIGS[family], seed=0)
    tokens = [[1, 2, 3, 4, 5, 6], [7, 8, 9, 10, 11, 12]]
    model(tokens, attention_mask=[[0, 0, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1]])
    _, cache = model.run_with_cache(tokens)
    model.generate([1, 2, 3], max_tokens=3, temperature=1.0, top_k=5, seed=0)
    hook = ns.InterventionHook(layer=1, component="attention", heads=[0, 2], action=ns.Patch(cache))
    with model.hooks([hook, ns.InterventionHook(layer=0, component="mlp", action=ns.MeanAblation())]):
        model(tokens)
    assert {"attention", "matmul", "slice", "set_slice", "topk"} <= checking.seen


def test_tensor_level_ops(checking):
    x = ns.tensor(np.arange(24, dtype=np.float32).reshape(2, 3, 4))
    x[:, [0, 2], 1:3].sum((0,), keepdims=True)
    x.log_softmax(-1).argmax(1).cumsum(-1)
    x.take_along(ns.tensor(np.zeros((2, 3, 1), dtype=np.int64)), -1)
    ns.where(x > 3, x, 0.0).var(-1)
    ns.cat([x, x], 1).permute(2, 0, 1).broadcast_to(3, 4, 2, 6)
    (x.eq(x) * (x > 1)).astype("float32")
    (x > 3).sum(-1)
    (x > 3).cumsum(-1)
    (x > 3).max(-1)
    assert {"take_along", "cumsum", "where", "concat", "broadcast_to", "cast"} <= checking.seen


def test_shape_errors_are_named():
    a, b = np.zeros((2, 3)), np.zeros((4, 5))
    with pytest.raises(ns.ShapeError, match="matmul inner sizes differ"):
        shapes.infer("matmul", a, b)
    with pytest.raises(ns.ShapeError, match="do not broadcast"):
        shapes.infer("binary", "add", a, b)
