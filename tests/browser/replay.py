"""Record the bridge messages a JsBackend sends, to replay them in a page.

CPython runs each op case on a ``JsBackend`` over a ``RecordingBridge``: the
exact JSON and bytes Pyodide would send. The page replays them on a real
kernel backend and reads the outputs back, which the test compares with the
numpy reference computed here.
"""

import base64

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
