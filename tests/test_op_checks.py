"""The CPython backends refuse what the op table refuses, as the browser's backends do.

The test suite runs with ``NEUROSCOPE_CHECK_OPS=1`` (conftest.py): every op's result is
compared with the table's shape rule, so numpy-only behaviour fails here rather than in a
browser tab.
"""

import numpy as np
import pytest

from neuroscope.backends import base
from neuroscope.backends.numpy_backend import NumpyBackend
from neuroscope.errors import ShapeError
from neuroscope.tensor import as_tensor, where


def test_the_suite_checks_every_op():
    assert base._checking, "tests/conftest.py sets NEUROSCOPE_CHECK_OPS=1"


@pytest.mark.parametrize("checking", [True, False])
def test_one_dimensional_matmul_is_refused_whether_checking_or_not(checking):
    previous = base.check_ops(checking)
    try:
        vector, matrix = as_tensor([1.0, 2.0]), as_tensor([[1.0, 0.0], [0.0, 1.0]])
        with pytest.raises(ShapeError, match=r"at least 2-d operands, got \[2\] and \[2, 2\]"):
            vector @ matrix
        assert (vector.reshape(1, 2) @ matrix).tolist() == [[1.0, 2.0]]
    finally:
        base.check_ops(previous)


def test_a_backend_result_that_disagrees_with_the_table_is_refused():
    class Divergent(NumpyBackend):
        name = "divergent"

        def permute(self, x, axes):  # forgets to permute
            return x

    x = as_tensor(np.zeros((2, 3), dtype=np.float32), backend=Divergent())
    with pytest.raises(ShapeError, match=r"op 'permute' returned \[\(\(2, 3\), 'float32'\)\] where the op "
                                         r"table says \[\(\(3, 2\), 'float32'\)\]"):
        x.permute(1, 0)
    previous = base.check_ops(False)
    try:
        assert x.permute(1, 0).shape == (2, 3)  # unchecked, the divergence would pass silently
    finally:
        base.check_ops(previous)


def test_scalar_where_and_integer_division_are_float32_as_in_the_browser():
    chosen = where(as_tensor([True, False]), 1.0, 0.0)
    assert chosen.dtype == "float32" and chosen.tolist() == [1.0, 0.0]
    assert (as_tensor([1, 2]) / 2).dtype == "float32"
