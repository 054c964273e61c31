"""Kernel parity: every primitive op on each browser backend equals the numpy reference.

The op stream is recorded in CPython through the real JsBackend (same JSON and
bytes Pyodide sends), replayed in Chromium on one kernel backend, and the
outputs read back are compared here. Tolerances: 1e-5 relative for elementwise
ops, 1e-4 for matmuls and reductions, exact for indexing; fp32.
"""

import pytest

from .op_cases import cases
from .replay import mismatches, record

BACKENDS = ["cpu", "webgpu", "webgl"]
# The cpu backend runs every op it can through onnxruntime graphs (cpu_graph.js); with
# graphs off, its JS kernels (the fallback) are checked too.
CPU_ONE_BY_ONE = {"backend": {"graphs": False}}


@pytest.fixture(scope="module")
def recording():
    return record(cases())


@pytest.mark.parametrize("backend, options", [(name, {}) for name in BACKENDS] + [("cpu", CPU_ONE_BY_ONE)],
                         ids=BACKENDS + ["cpu-one-by-one"])
def test_every_op_matches_numpy(page, repo_server, recording, backend, options):
    calls, plan, _ = recording
    page.goto(f"{repo_server}/tests/browser/replay.html")
    page.wait_for_function("window.replayReady === true")
    ids = [handle_id for _, outputs in plan for handle_id, _ in outputs]
    result = page.evaluate("([b, c, i, o]) => window.replay(b, c, i, o)", [backend, calls, ids, options])
    assert result["backend"] == backend, page.messages
    failures = mismatches(plan, result["values"])
    assert not failures, "\n".join(failures[:40])
