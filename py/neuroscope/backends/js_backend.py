"""The JS bridge backend: tensors live in the browser (WebGPU, WebGL2 or wasm).

Python keeps a small ``JsHandle`` (id, shape, dtype) per tensor; the bytes stay
on the device. Each primitive op becomes ONE call into the worker's kernel
bridge with a JSON message (no proxies cross)::

    {"op": "matmul",
     "out": [[7, [2, 5, 3], "float32"]],          # ids Python allocated, with shapes
     "params": {"a": {"t": 3}, "b": {"t": 4},     # every parameter of the op, by name
                "transpose_a": false, "transpose_b": true},
     "free": [1, 2]}                               # ids Python no longer references

``params`` holds every parameter of the op table (``ops.py``), in its order, with
defaults filled in: positional and keyword arguments are bound against the table
first, so ``f(x, 1)`` and ``f(x, axis=1)`` send the same message. Output shapes
come from the table's shape rules, so Python never waits for the device. Tensors
travel as ``{"t": id}``; non-finite floats as ``{"f": "inf" | "-inf" | "nan"}``;
slice keys (parameters of kind ``key``) as a list of ``int`` (drop the axis),
``{"s": [start, stop, step]}`` or ``{"i": [indices]}``. Integer tensors are int64
to Python and int32 on the device.

Reads go through ``bridge.read(id)``, a Promise of a typed array: ``to_list``
waits with Pyodide's ``run_sync`` (JSPI) and ``to_list_async`` awaits it.
"""

import json
import math
from array import array

from ..progress import browser_interrupted
from .base import Backend
from .host_buffer import HostRange
from .ops import ALLOCATORS, lookup

_TYPECODES = {"float32": "f", "int64": "i", "int32": "i", "bool": "B", "uint8": "B"}


# Interrupts in the worker. The page's Interrupt sets a pending flag, then Pyodide's
# interrupt buffer (SIGINT). Python's own check of the buffer can fall inside a wait on the
# device (run_sync), where a KeyboardInterrupt raised is lost; so the SIGINT handler raises
# only outside those waits (spending the flag), and each wait ends by raising a flag still
# pending. An interrupt is raised once, wherever it lands.
_waits = [0]  # run_sync waits in progress


def on_interrupt(signum, frame):
    """The worker's SIGINT handler (worker/session.py installs it)."""
    if _waits[0]:
        return  # the wait's end raises it
    spend = browser_interrupted()
    if spend is not None:
        spend()
    raise KeyboardInterrupt


def _raise_pending_interrupt():
    """KeyboardInterrupt if the page asked to interrupt and Python has not raised it yet."""
    interrupted = browser_interrupted()
    if interrupted is not None and interrupted():
        raise KeyboardInterrupt("interrupted while waiting on the device")


class JsHandle:
    __slots__ = ("id", "shape", "dtype", "_owner", "__weakref__")

    def __init__(self, owner, handle_id, shape, dtype):
        self._owner, self.id, self.shape, self.dtype = owner, handle_id, tuple(shape), dtype

    def __del__(self):
        owner = self._owner
        if owner is not None:
            owner._pending_free.append(self.id)

    def __repr__(self):
        return f"JsHandle({self.id}, {list(self.shape)}, {self.dtype})"


class JsBackend(Backend):
    """``bridge`` is the worker's kernel bridge (a JS object with run/upload/read)."""

    def __init__(self, bridge, name="js"):
        self._bridge = bridge
        self._send = bridge.run  # bound once: each attribute of a JS object costs a lookup
        self.name = name
        self._next_id = 1
        self._pending_free = []

    # -- allocator -----------------------------------------------------------
    def _new(self, shape, dtype):
        handle = JsHandle(self, self._next_id, shape, dtype)
        self._next_id += 1
        return handle

    def from_host(self, data, shape, dtype):
        flat = _flat(data)
        shape = tuple(shape) if shape is not None else (len(flat),)
        if dtype == "bool":
            flat = [1 if v else 0 for v in flat]
        if isinstance(flat, array) and flat.typecode == _TYPECODES[dtype]:
            packed = flat
        else:
            packed = array(_TYPECODES[dtype], [int(v) for v in flat] if dtype != "float32" else flat)
        if len(packed) != math.prod(shape):
            raise ValueError(f"{len(packed)} values cannot fill shape {list(shape)}")
        return self._upload(packed.tobytes(), _DEVICE_SOURCE[dtype], shape, dtype)

    def from_bytes(self, buffer, source_dtype, shape, dtype="float32"):
        if isinstance(buffer, HostRange):  # bytes JS already holds: upload from there, no copy here
            handle = self._new(shape, dtype)
            self._bridge.uploadFromBuffer(json.dumps(
                {"id": handle.id, "shape": list(shape), "dtype": dtype, "source": source_dtype,
                 "free": self._take_free()}), buffer.buffer.js, buffer.begin, buffer.end)
            return handle
        return self._upload(buffer, source_dtype, shape, dtype)

    def _read(self, handle):
        """The device data of ``handle`` (a typed array), waited for with ``run_sync``; an
        interrupt that came during the wait is raised after it (see ``on_interrupt``), so a
        loop of model calls stops at its next readback, with no progress bar to check."""
        from pyodide.ffi import run_sync
        _waits[0] += 1
        try:
            data = run_sync(self._bridge.read(handle.id))
        finally:
            _waits[0] -= 1
        _raise_pending_interrupt()
        return data

    def raw_bytes(self, handle):
        """``(safetensors dtype, bytes)`` of the device data (int64 is int32 on the device)."""
        return _DEVICE_SOURCE[handle.dtype], self._read(handle).to_bytes()

    async def raw_bytes_async(self, handle):
        return _DEVICE_SOURCE[handle.dtype], (await self._bridge.read(handle.id)).to_bytes()

    def _upload(self, buffer, source_dtype, shape, dtype):
        handle = self._new(shape, dtype)
        self._bridge.upload(json.dumps({"id": handle.id, "shape": list(shape), "dtype": dtype,
                                        "source": source_dtype, "free": self._take_free()}),
                            memoryview(buffer).cast("B"))
        return handle

    def full(self, shape, value, dtype):
        return self._run(ALLOCATORS["full"], [(tuple(shape), dtype)], {"value": value})[0]

    def arange(self, start, stop, dtype):
        return self._run(ALLOCATORS["arange"], [((max(stop - start, 0),), dtype)], {"start": start})[0]

    def to_list(self, handle):
        return self._unpack(handle, self._read(handle))

    async def to_list_async(self, handle):
        return self._unpack(handle, await self._bridge.read(handle.id))

    def to_numpy(self, handle):
        import numpy as np
        return np.asarray(self.to_list(handle), dtype=handle.dtype if handle.dtype != "int64" else np.int64)

    def _unpack(self, handle, typed_array):
        # A returned typed array is a JsProxy (no destroy): to_bytes copies it out.
        values = array(_TYPECODES[handle.dtype], typed_array.to_bytes()).tolist()
        if handle.dtype == "bool":
            values = [bool(v) for v in values]
        return _nest(values, handle.shape)

    def free(self, handle):
        self._pending_free.append(handle.id)
        handle._owner = None

    def mark_weights(self, handles):
        self._bridge.markWeights(json.dumps({"ids": [h.id for h in handles], "free": self._take_free()}))

    def _take_free(self):
        pending, self._pending_free = self._pending_free, []
        return pending

    # -- ops -----------------------------------------------------------------
    def dispatch(self, op, /, *args, **attrs):
        spec = lookup(op)
        params = spec.bind(args, attrs)
        results = self._run(spec, spec.infer(params), params)
        if spec.outputs == 1:
            return results[0]
        return tuple(results) + (None,) * (spec.outputs - len(results))

    def _run(self, spec, outputs, params):
        handles = [self._new(shape, dtype) for shape, dtype in outputs]
        message = {
            "op": spec.name,
            "out": [[h.id, list(h.shape), h.dtype] for h in handles],
            "params": {p.name: _encode(params[p.name], p.kind) for p in spec.params},
            "free": self._take_free(),
        }
        self._send(json.dumps(message))
        return handles


_DEVICE_SOURCE = {"float32": "F32", "int64": "I32", "int32": "I32", "bool": "U8", "uint8": "U8"}


def _number(value):
    if isinstance(value, float) and not math.isfinite(value):
        return {"f": "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")}
    return value


def _encode(value, kind):
    """``value`` of a parameter of ``kind`` (ops.py) as JSON."""
    if isinstance(value, JsHandle):
        return {"t": value.id}
    if isinstance(value, (bool, int, float)) or value is None or isinstance(value, str):
        return _number(value)
    if kind == "key" and isinstance(value, (tuple, list)):
        return [_key_item(item) for item in value]
    if isinstance(value, (list, tuple)):
        return [_encode(v, kind) for v in value]
    raise TypeError(f"cannot send {type(value).__name__} to the JS bridge")


def _key_item(item):
    if isinstance(item, int):
        return item
    if isinstance(item, tuple):
        return {"s": list(item)}
    if isinstance(item, list):
        return {"i": list(item)}
    raise TypeError(f"slice key entry {item!r}: expected an int, a (start, stop, step) triple or an int list")


def _flat(data):
    if isinstance(data, (array, memoryview, bytes)):
        return data
    if hasattr(data, "ravel"):  # numpy, when present
        return data.ravel().tolist()
    out = data
    while out and isinstance(out[0], (list, tuple)):
        out = [x for row in out for x in row]
    return list(out) if isinstance(out, (list, tuple)) else [out]


def _nest(values, shape):
    if not shape:
        return values[0]
    for size in reversed(shape[1:]):
        values = [values[i:i + size] for i in range(0, len(values), size)]
    return values
