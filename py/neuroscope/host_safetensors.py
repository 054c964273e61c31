"""A safetensors reader over bytes that JavaScript holds (``HostBuffer``).

Only the header crosses into Python (8 bytes of length, then the JSON); it is validated
by the same ``parse_header`` as every other file, so a bad download fails with the same
``ModelFormatError``. ``raw(name)`` is a ``HostRange`` that the JS backend uploads from
the JS array directly: loading a model holds the file once, in JS, plus device buffers.
"""

from .safetensors_format import TensorReader, missing_tensor, parse_header


class HostSafetensors(TensorReader):
    """A validated safetensors file held by JS; tensors are read lazily by range."""

    def __init__(self, buffer, name=None):
        self.name = name or buffer.name
        self._buffer = buffer
        self.metadata, self._index = parse_header(buffer, self.name)

    def info(self, name):
        try:
            return self._index[name]
        except KeyError:
            raise missing_tensor(self.name, name, self._index) from None

    def raw(self, name):
        info = self.info(name)
        if self._buffer is None:
            raise ValueError(f"{self.name}: file is closed")
        return self._buffer.range(info.begin, info.end)

    def close(self):
        if self._buffer is not None:
            self._buffer.release()
            self._buffer = None
