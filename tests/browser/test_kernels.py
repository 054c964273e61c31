"""Kernel parity: every primitive op on each browser backend equals the numpy reference.

The op stream is recorded in CPython through the real JsBackend (same JSON and
bytes Pyodide sends), replayed in Chromium on one kernel backend, and the
outputs read back are compared here. Tolerances: 1e-5 relative for elementwise
ops, 1e-4 for matmuls and reductions, exact for indexing; fp32.
"""

import math

import numpy as np
import pytest

from .op_cases import cases
from .replay import record

BACKENDS = ["cpu", "webgpu", "webgl"]


@pytest.fixture(scope="module")
def recording():
    return record(cases())


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_op_matches_numpy(page, repo_server, recording, backend):
    calls, plan, _ = recording
    page.goto(f"{repo_server}/tests/browser/replay.html")
    page.wait_for_function("window.replayReady === true")
    ids = [handle_id for _, outputs in plan for handle_id, _ in outputs]
    result = page.evaluate("([b, c, i]) => window.replay(b, c, i)", [backend, calls, ids])
    assert result["backend"] == backend, page.messages
    failures = []
    for case, outputs in plan:
        name, _, _, _, tolerance = case
        for handle_id, expected in outputs:
            got = np.asarray(result["values"][str(handle_id)], dtype=np.float64)
            want = np.asarray(expected, dtype=np.float64).ravel()
            if got.shape != want.shape:
                failures.append(f"{name}: {got.size} values, expected {want.size}")
                continue
            finite = np.isfinite(want)
            # Non-finite entries match exactly: NaN where numpy has NaN, +-inf where it has +-inf.
            if not np.array_equal(got[~finite], want[~finite], equal_nan=True) or not np.isfinite(
                    got[finite]).all():
                failures.append(f"{name}: non-finite entries differ")
                continue
            if tolerance == 0:
                ok = np.array_equal(got[finite], want[finite])
            else:
                ok = np.allclose(got[finite], want[finite], rtol=tolerance, atol=tolerance)
            if not ok:
                worst = np.max(np.abs(got[finite] - want[finite])) if finite.any() else math.nan
                failures.append(f"{name}: max abs error {worst:.3g} > {tolerance}")
    assert not failures, "\n".join(failures[:40])
