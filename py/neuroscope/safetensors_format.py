"""Read and write safetensors files with the standard library only.

NeuroScope loads Hugging Face checkpoints both in CPython and in a stdlib-only
Pyodide, so this reader cannot lean on numpy or the ``safetensors`` wheel. A
file is an 8-byte little-endian header length, a JSON header mapping each
tensor name to ``{"dtype", "shape", "data_offsets": [begin, end]}`` (offsets
relative to the data section) plus an optional ``"__metadata__"`` of strings,
then the raw little-endian tensor bytes.

Every structural check runs when the file is opened, so a bad checkpoint fails
with one message naming the file, the tensor and the bad value, instead of a
shape error deep inside a forward pass.

References:
    * Format: https://github.com/huggingface/safetensors (README, "Format").
    * Reference implementation: ``safetensors/src/tensor.rs`` (header limit,
      space padding to 8 bytes, tensor order in ``prepare``).
    * Sharded checkpoints: ``model.safetensors.index.json`` as written by
      ``transformers.modeling_utils.PreTrainedModel.save_pretrained``.
"""

import array
import difflib
import json
import math
import os
import struct
import sys
from dataclasses import dataclass

from . import strict_json
from .errors import ModelFormatError

try:
    import mmap
except ImportError:  # some Pyodide builds ship without mmap
    mmap = None

DTYPE_SIZES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2,
               "I8": 1, "U64": 8, "U32": 4, "U16": 2, "U8": 1, "BOOL": 1}

# The reference writer sorts tensors by its Dtype enum, largest first, then by
# name; using the same ranks makes our files byte-identical to its output.
_DTYPE_RANK = {dtype: rank for rank, dtype in enumerate(
    ("BOOL", "U8", "I8", "I16", "U16", "F16", "BF16", "I32", "U32", "F32", "F64", "I64", "U64"))}
_MAX_HEADER_BYTES = 100_000_000  # same limit as the reference reader
_CHUNK = 1 << 16  # elements per struct.unpack call; bounds temporary tuples
_BIG_ENDIAN_HOST = sys.byteorder == "big"
# Fixed-width typecodes only: 'l' is 4 bytes on wasm32 but 8 on 64-bit Linux.
_INT_TYPECODES = {"I64": "q", "I32": "i", "I16": "h", "I8": "b", "U64": "Q",
                  "U32": "I", "U16": "H", "U8": "B", "BOOL": "B"}


@dataclass(frozen=True)
class TensorInfo:
    """Where one tensor lives: ``begin``/``end`` are absolute byte offsets."""

    name: str
    dtype: str
    shape: tuple
    begin: int
    end: int

    @property
    def nbytes(self):
        return self.end - self.begin

    @property
    def numel(self):
        return math.prod(self.shape)


def _from_le_bytes(typecode, data):
    values = array.array(typecode)
    values.frombytes(data)
    if _BIG_ENDIAN_HOST:
        values.byteswap()
    return values


def _decode(info, data):
    """Decode raw bytes to an array: 'd' for F64, 'f' for other floats, ints."""
    if info.dtype == "F64":
        return _from_le_bytes("d", data)
    if info.dtype == "F32":
        return _from_le_bytes("f", data)
    if info.dtype == "BF16":
        # bfloat16 is the top half of a float32: put each 2-byte value in the
        # high half of a zeroed 4-byte little-endian word (C-speed slicing).
        widened = bytearray(2 * len(data))
        widened[2::4] = data[0::2]
        widened[3::4] = data[1::2]
        return _from_le_bytes("f", widened)
    if info.dtype == "F16":
        values = array.array("f")
        count = len(data) // 2
        for start in range(0, count, _CHUNK):
            stop = min(start + _CHUNK, count)
            values.extend(struct.unpack_from(f"<{stop - start}e", data, 2 * start))
        return values
    return _from_le_bytes(_INT_TYPECODES[info.dtype], data)


def _nest(values, shape):
    """Reshape a flat sequence into nested lists, like numpy's ``tolist``."""
    if not shape:
        return values[0]
    if len(shape) == 1:
        return list(values)
    step = math.prod(shape[1:])
    return [_nest(values[i * step:(i + 1) * step], shape[1:]) for i in range(shape[0])]


class TensorReader:
    """Names and decoding shared by single files and sharded checkpoints.

    Subclasses set ``name`` and ``_index`` (a dict keyed by tensor name) and
    implement ``info``, ``raw`` and ``close``.
    """

    def keys(self):
        return list(self._index)

    def __contains__(self, name):
        return name in self._index

    def __len__(self):
        return len(self._index)

    def __iter__(self):
        return iter(self._index)

    def __repr__(self):
        return f"{type(self).__name__}({self.name!r}, {len(self)} tensors)"

    def release(self, name):
        """Tell the reader that tensor ``name``'s bytes have been copied out (a no-op
        unless the file is memory-mapped; see ``SafetensorsFile.release``)."""

    def to_float_array(self, name):
        """The tensor flattened to ``array('f')`` (float32), any dtype."""
        values = _decode(self.info(name), self.raw(name))
        return values if values.typecode == "f" else array.array("f", values)

    def to_int_array(self, name):
        """An integer or BOOL tensor flattened to an ``array`` of its width."""
        info = self.info(name)
        if info.dtype not in _INT_TYPECODES:
            raise ModelFormatError(f"{self.name}: tensor {name!r} has dtype {info.dtype}, expected "
                                   f"an integer dtype ({', '.join(_INT_TYPECODES)})")
        return _decode(info, self.raw(name))

    def to_list(self, name):
        """The tensor as nested Python lists (a scalar for shape ``()``)."""
        info = self.info(name)
        values = _decode(info, self.raw(name))
        if info.dtype == "BOOL":
            values = [bool(value) for value in values]
        return _nest(values, info.shape)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


def missing_tensor(file_name, name, keys):
    keys = list(keys)
    nearest = difflib.get_close_matches(name, keys, n=5, cutoff=0.5) or keys[:5]
    return ModelFormatError(f"{file_name}: no tensor named {name!r}; it has {len(keys)} tensors, "
                            f"nearest: {', '.join(nearest) or 'none'}")


class SafetensorsFile(TensorReader):
    """A validated safetensors file or buffer, read lazily and zero-copy."""

    def __init__(self, buffer, name, closer=None):
        self.name = name
        self._view = memoryview(buffer).cast("B")
        self._closer = closer
        self._mapped = buffer if mmap is not None and isinstance(buffer, mmap.mmap) else None
        try:
            self.metadata, self._index = parse_header(self._view, name)
        except Exception:
            self.close()  # unmap now: the traceback would keep the map alive
            raise

    @classmethod
    def open(cls, path):
        """Open a file, memory-mapped where the filesystem allows it."""
        name = os.fspath(path)
        with open(name, "rb") as handle:
            if mmap is not None:
                try:
                    mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
                except (OSError, ValueError):
                    pass  # empty file, or a filesystem (Emscripten) without mmap
                else:
                    return cls(mapped, name, closer=mapped.close)
            return cls(handle.read(), name)

    @classmethod
    def from_buffer(cls, buffer, name="<buffer>"):
        """Wrap bytes, bytearray or a memoryview (e.g. a fetched file)."""
        return cls(buffer, name)

    def info(self, name):
        try:
            return self._index[name]
        except KeyError:
            raise missing_tensor(self.name, name, self._index) from None

    def raw(self, name):
        """The tensor's bytes as a read-only memoryview into the file."""
        info = self.info(name)
        if self._view is None:
            raise ValueError(f"{self.name}: file is closed")
        return self._view[info.begin:info.end]

    def release(self, name):
        """Drop a mapped tensor's pages from this process's resident memory.

        The pages of a mapped file count in the process's RSS once touched, so a loader
        that copies every tensor out would hold the weights twice by the end (the map and
        the copies). Once a tensor is copied, ``MADV_DONTNEED`` hands its pages back; the
        file's data stays in the kernel's page cache, and reading the tensor again simply
        faults the pages back in, so this never changes what ``raw`` returns.
        """
        info = self.info(name)
        advice = getattr(mmap, "MADV_DONTNEED", None) if self._mapped is not None else None
        if advice is None or self._view is None:
            return
        start = info.begin - info.begin % mmap.PAGESIZE
        end = min(len(self._mapped), -(-info.end // mmap.PAGESIZE) * mmap.PAGESIZE)
        if end > start:
            self._mapped.madvise(advice, start, end - start)

    def close(self):
        if self._view is None:
            return
        self._mapped = None
        self._view.release()
        self._view = None
        if self._closer is not None:
            try:
                self._closer()
            except BufferError:
                pass  # caller still holds raw() views; the map dies with them
            self._closer = None


def parse_header(view, name):
    """Validate the whole layout; return (metadata, {tensor: TensorInfo})."""
    size = len(view)
    if size < 8:
        raise ModelFormatError(f"{name}: file has {size} bytes, expected at least 8 (header length)")
    header_len = int.from_bytes(view[:8], "little")
    if header_len > _MAX_HEADER_BYTES:
        raise ModelFormatError(f"{name}: header length {header_len} is over the "
                               f"{_MAX_HEADER_BYTES}-byte limit; not a safetensors file?")
    if 8 + header_len > size:
        raise ModelFormatError(f"{name}: header length {header_len} needs {8 + header_len} bytes, "
                               f"file has {size}")

    try:
        header = strict_json.loads(bytes(view[8:8 + header_len]).decode("utf-8"))
    except UnicodeDecodeError as err:
        raise ModelFormatError(f"{name}: header is not UTF-8 ({err})") from None
    except ValueError as err:
        raise ModelFormatError(f"{name}: header is not valid JSON ({err})") from None
    if not isinstance(header, dict):
        raise ModelFormatError(f"{name}: header is a JSON {type(header).__name__}, expected an object")

    metadata = header.pop("__metadata__", {})
    _check_metadata(name, metadata)
    data_start = 8 + header_len
    data_size = size - data_start
    infos = {tensor: _parse_entry(name, tensor, entry, data_start, data_size)
             for tensor, entry in header.items()}

    # Empty tensors may share any offset, so only tensors with bytes can clash.
    previous = None
    for info in sorted((i for i in infos.values() if i.nbytes), key=lambda i: (i.begin, i.end)):
        if previous is not None and info.begin < previous.end:
            raise ModelFormatError(
                f"{name}: tensors {previous.name!r} (bytes {previous.begin}-{previous.end}) and "
                f"{info.name!r} (bytes {info.begin}-{info.end}) overlap")
        previous = info
    return metadata, infos




def _check_metadata(where, metadata):
    if not isinstance(metadata, dict) or not all(
            isinstance(key, str) and isinstance(value, str) for key, value in metadata.items()):
        raise ModelFormatError(f"{where}: __metadata__ must map strings to strings, got {metadata!r}")


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _check_tensor(where, dtype, shape, nbytes):
    """Shared by reader and writer: known dtype, sane shape, matching size."""
    if not isinstance(dtype, str) or dtype not in DTYPE_SIZES:
        raise ModelFormatError(f"{where}: unknown dtype {dtype!r}, supported: {', '.join(DTYPE_SIZES)}")
    if not isinstance(shape, (list, tuple)) or not all(map(_is_int, shape)):
        raise ModelFormatError(f"{where}: shape {shape!r} is not a list of integers")
    if any(dim < 0 for dim in shape):
        raise ModelFormatError(f"{where}: shape {list(shape)} has a negative dimension")
    expected = math.prod(shape) * DTYPE_SIZES[dtype]
    if nbytes != expected:
        raise ModelFormatError(
            f"{where}: has {nbytes} bytes of data, but shape {list(shape)} of {dtype} needs {expected}")


def _parse_entry(name, tensor, entry, data_start, data_size):
    where = f"{name}: tensor {tensor!r}"
    if not isinstance(entry, dict):
        raise ModelFormatError(f"{where}: entry is {entry!r}, expected an object with "
                               "dtype, shape and data_offsets")
    missing = [key for key in ("dtype", "shape", "data_offsets") if key not in entry]
    if missing:
        raise ModelFormatError(f"{where}: entry has no {', '.join(missing)}")
    dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if (not isinstance(offsets, list) or len(offsets) != 2
            or not all(_is_int(offset) and offset >= 0 for offset in offsets)):
        raise ModelFormatError(
            f"{where}: data_offsets {offsets!r}, expected [begin, end] with non-negative integers")
    begin, end = offsets
    if end < begin:
        raise ModelFormatError(f"{where}: data_offsets end {end} < begin {begin}")
    if end > data_size:
        raise ModelFormatError(f"{where}: data ends at byte {data_start + end} but the file has "
                               f"{data_start + data_size} bytes; the file is truncated")
    _check_tensor(where, dtype, shape, end - begin)
    return TensorInfo(tensor, dtype, tuple(shape), data_start + begin, data_start + end)


class ShardedSafetensors(TensorReader):
    """A checkpoint split over shards by ``model.safetensors.index.json``."""

    def __init__(self, weight_map, shard_dir, name, metadata=None):
        self.weight_map = self._index = weight_map
        self.metadata = metadata or {}
        self.name = name
        self._shard_dir = shard_dir
        self._shards = {}

    @classmethod
    def open(cls, index_path):
        """Read the index and check every shard exists; shards open lazily."""
        name = os.fspath(index_path)
        with open(name, "rb") as handle:
            text = handle.read()
        try:
            index = strict_json.loads(text.decode("utf-8"))
        except ValueError as err:  # UnicodeDecodeError is one too
            raise ModelFormatError(f"{name}: index is not valid JSON ({err})") from None
        weight_map = index.get("weight_map") if isinstance(index, dict) else None
        if not isinstance(weight_map, dict) or not all(isinstance(s, str) for s in weight_map.values()):
            raise ModelFormatError(
                f"{name}: expected a JSON object with a \"weight_map\" of tensor name -> shard file name")
        shard_dir = os.path.dirname(name)
        a_tensor_in = {shard: tensor for tensor, shard in weight_map.items()}
        for shard, tensor in a_tensor_in.items():
            # Shards sit beside the index; a path would read (or, from a URL, fetch) another file.
            if os.path.basename(shard) != shard or shard in ("", ".", "..") or "/" in shard:
                raise ModelFormatError(f"{name}: shard {shard!r} (holding {tensor!r}) is not a file name "
                                       "in the index's folder")
            if not os.path.isfile(os.path.join(shard_dir, shard)):
                raise ModelFormatError(
                    f"{name}: shard {shard!r} (holding {tensor!r}) not found in {shard_dir or '.'}")
        metadata = index.get("metadata")
        return cls(weight_map, shard_dir, name, metadata if isinstance(metadata, dict) else None)

    def shard_of(self, name):
        """The opened shard that holds tensor ``name``."""
        try:
            shard = self.weight_map[name]
        except KeyError:
            raise missing_tensor(self.name, name, self.weight_map) from None
        if shard not in self._shards:
            self._shards[shard] = SafetensorsFile.open(os.path.join(self._shard_dir, shard))
        opened = self._shards[shard]
        if name not in opened:
            raise ModelFormatError(f"{self.name}: weight_map puts tensor {name!r} in shard {shard!r}, "
                                   "which does not contain it")
        return opened

    def info(self, name):
        return self.shard_of(name).info(name)

    def raw(self, name):
        return self.shard_of(name).raw(name)

    def release(self, name):
        self.shard_of(name).release(name)

    def close(self):
        for shard in self._shards.values():
            shard.close()
        self._shards.clear()


def layout(tensors, metadata):
    """Validate ``tensors`` and return (header bytes, data views in order)."""
    if metadata is not None:
        _check_metadata("save_file", metadata)
    views = {}
    for tensor, (dtype, shape, data) in tensors.items():
        where = f"save_file: tensor {tensor!r}"
        if not isinstance(tensor, str) or tensor == "__metadata__":
            raise ModelFormatError(f"{where}: invalid name, expected a str other than '__metadata__'")
        view = memoryview(data)
        if not view.c_contiguous:
            raise ModelFormatError(f"{where}: data is not C-contiguous")
        _check_tensor(where, dtype, shape, view.nbytes)
        views[tensor] = (dtype, shape, view)

    order = sorted(views, key=lambda t: (-_DTYPE_RANK[views[t][0]], t))
    header = {} if metadata is None else {"__metadata__": metadata}
    offset = 0
    for tensor in order:
        dtype, shape, view = views[tensor]
        end = offset + view.nbytes
        header[tensor] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, end]}
        offset = end
    encoded = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    # Padding keeps the data section 8-byte aligned for zero-copy readers.
    encoded += b" " * (-len(encoded) % 8)
    return len(encoded).to_bytes(8, "little") + encoded, [views[tensor][2] for tensor in order]


def save_bytes(tensors, metadata=None):
    """Serialize ``{name: (dtype, shape, little-endian bytes)}`` to bytes."""
    header, views = layout(tensors, metadata)
    return header + b"".join(views)


def save_file(tensors, path, metadata=None):
    """Write ``{name: (dtype, shape, little-endian bytes)}`` to ``path``."""
    header, views = layout(tensors, metadata)
    with open(os.fspath(path), "wb") as handle:
        handle.write(header)
        handle.writelines(views)
