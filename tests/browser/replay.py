"""Record the bridge messages a JsBackend sends, to replay them in a page.

CPython runs each op case on a ``JsBackend`` over a ``RecordingBridge``: the
exact JSON and bytes Pyodide would send. The page replays them on a real
kernel backend and reads the outputs back, which the test compares with the
numpy reference computed here.
"""

import base64
import math

import numpy as np

from neuroscope.backends.js_backend import JsBackend
from neuroscope.backends.numpy_backend import NumpyBackend

from .op_cases import run_case


class RecordingBridge:
    def __init__(self):
        self.calls = []

    def upload(self, meta_json, buffer):
        self.calls.append(["upload", meta_json, base64.b64encode(bytes(buffer)).decode()])

    def run(self, message_json):
        self.calls.append(["run", message_json])

    def markWeights(self, meta_json):  # noqa: N802 (the bridge's JS name)
        self.calls.append(["markWeights", meta_json])

    def read(self, handle_id):
        raise RuntimeError("a recording has no device to read from")


def record(cases):
    """(calls, [(case, [(handle_id, expected ndarray)])]) for all cases in one stream."""
    bridge = RecordingBridge()
    backend = JsBackend(bridge, "recording")
    reference = NumpyBackend()
    plan, keep = [], []
    for case in cases:
        handles = run_case(backend, case)
        expected = run_case(reference, case)
        keep.append(handles)  # keep handles alive so their ids are not freed before reads
        plan.append((case, [(h.id, e) for h, e in zip(handles, expected)]))
    return bridge.calls, plan, keep


def mismatches(plan, values):
    """Messages for the outputs in ``values`` (handle id as a string -> list) that differ
    from ``plan``'s numpy results beyond each case's tolerance; non-finite entries must
    match exactly (NaN where numpy has NaN, +-inf where it has +-inf)."""
    failures = []
    for case, outputs in plan:
        name, _, _, _, tolerance = case
        for handle_id, expected in outputs:
            got = np.asarray(values[str(handle_id)], dtype=np.float64)
            want = np.asarray(expected, dtype=np.float64).ravel()
            if got.shape != want.shape:
                failures.append(f"{name}: {got.size} values, expected {want.size}")
                continue
            finite = np.isfinite(want)
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
    return failures
