"""Bytes that JavaScript holds, read by range: the one copy of a downloaded file.

In the browser a weights file (or a stored activation entry) arrives in the worker as
one ``Uint8Array``. Copying it into Python would hold a second copy of a file that may
be gigabytes, so Python keeps a ``HostBuffer`` (a proxy of that array) instead: it reads
the few bytes it must parse (a safetensors header) by slicing, and hands each tensor to
the device as a ``HostRange``, which ``JsBackend.from_bytes`` uploads straight from the
JS array (``bridge.uploadFromBuffer``, worker/bridge.js). Any other consumer (numpy in
Pyodide, ``array.frombytes``) gets the range's bytes through the buffer protocol
(``__buffer__``, Python 3.12+; HostBuffers only exist in Pyodide, which is 3.14).
"""


class HostBuffer:
    """A JS ``Uint8Array`` (a Pyodide JsProxy) with ``len`` and slicing to ``bytes``.

    ``commit``: for a fresh download, the JS function that stores these bytes in the
    weight cache (worker/weights.js); the reader calls it once the file parses.
    """

    def __init__(self, js_bytes, name="<host buffer>", commit=None):
        self.js = js_bytes
        self.name = name
        self.size = int(js_bytes.byteLength)
        self.commit = commit

    def __len__(self):
        return self.size

    def __getitem__(self, key):
        if not isinstance(key, slice):
            raise TypeError(f"{self.name}: HostBuffer supports slices, not {type(key).__name__}")
        start, stop, step = key.indices(self.size)
        if step != 1:
            raise ValueError(f"{self.name}: HostBuffer slices need step 1, got {step}")
        if self.js is None:
            raise ValueError(f"{self.name}: buffer released")
        return self.js.subarray(start, max(start, stop)).to_bytes()

    def range(self, begin, end):
        return HostRange(self, begin, end)

    def release(self):
        """Drop the reference to the JS array (JS frees it once nothing else holds it)."""
        self.js = None

    def __repr__(self):
        return f"HostBuffer({self.name!r}, {self.size} bytes)"


class HostRange:
    """``buffer[begin:end]`` of a ``HostBuffer``, not yet copied anywhere."""

    __slots__ = ("buffer", "begin", "end")

    def __init__(self, buffer, begin, end):
        self.buffer, self.begin, self.end = buffer, begin, end

    def __len__(self):
        return self.end - self.begin

    @property
    def nbytes(self):
        return self.end - self.begin

    def tobytes(self):
        return self.buffer[self.begin:self.end]

    def __buffer__(self, flags):
        return memoryview(self.tobytes())

    def __repr__(self):
        return f"HostRange({self.buffer.name!r}, {self.begin}, {self.end})"
