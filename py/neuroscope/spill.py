"""Activations beyond device memory: saved caches and a byte budget that spills.

``ActivationCache`` stays a plain mapping; this module holds what it delegates to:

* ``save_activations`` / ``load_activations``: one cache as one storage entry
  (storage.py: IndexedDB in the browser, safetensors files on disk in CPython), with the
  tokens and attention mask it came from and each tensor's dtype, axes and order.
* ``SpillingStore``: the mapping behind a cache with a byte budget. Tensors stay on the
  device until the resident bytes exceed the budget; then the least recently used ones
  are written to scratch storage (``spill_storage()``) and dropped from the device, and
  read back when accessed. A tensor is written once: read back and evicted again
  unchanged, it is simply dropped (Tensor ops never mutate; ``t[...] = v`` rebinds the
  handle, which is noticed and written again). The most recently used tensor is never
  evicted, so the device holds at most ``budget`` bytes plus that one tensor.

Device bytes are taken as the backend holds them (``raw_bytes``: int64 is int32 on the
JS device) and come back through ``Backend.from_bytes``, so values round-trip exactly.
"""

import json
from collections import OrderedDict
from collections.abc import MutableMapping

from .backends import get_backend
from .storage import default_storage, spill_storage
from .tensor import Tensor

FORMAT = "neuroscope.activations"
EXTRAS = {"tokens": "__tokens__", "attention_mask": "__attention_mask__"}
_SAFETENSORS_DTYPES = {"float32": "F32", "float64": "F64", "float16": "F16", "int64": "I64",
                       "int32": "I32", "uint8": "U8", "bool": "BOOL"}


def tensor_record(tensor):
    """``(safetensors dtype, shape, buffer)`` with the tensor's bytes as the backend holds them."""
    raw_bytes = getattr(tensor.backend, "raw_bytes", None)
    if raw_bytes is not None:
        source, data = raw_bytes(tensor.data)
        return source, tensor.shape, data
    import numpy as np
    array = np.ascontiguousarray(tensor.numpy())
    return _SAFETENSORS_DTYPES[array.dtype.name], tensor.shape, memoryview(array.reshape(-1)).cast("B")


async def tensor_record_async(tensor):
    """``tensor_record`` that awaits the device (browsers without JSPI)."""
    raw_bytes_async = getattr(tensor.backend, "raw_bytes_async", None)
    if raw_bytes_async is None:
        return tensor_record(tensor)
    source, data = await raw_bytes_async(tensor.data)
    return source, tensor.shape, data


def tensor_from(reader, name, dtype, backend=None):
    backend = backend or get_backend()
    info = reader.info(name)
    return Tensor(backend.from_bytes(reader.raw(name), info.dtype, info.shape, dtype), backend)


class SpillingStore(MutableMapping):
    """name -> Tensor with at most ``budget`` bytes resident on the device (see above)."""

    def __init__(self, budget, storage=None):
        if not isinstance(budget, int) or budget < 0:
            raise ValueError(f"budget must be a non-negative number of bytes, got {budget!r}")
        self.budget = budget
        self._storage = storage
        self._names = {}  # name -> slot in storage; insertion order is iteration order
        self._resident = OrderedDict()  # name -> Tensor, least recently used first
        self._stored = {}  # name -> (dtype, shape, nbytes, backend): a copy is in storage
        self._clean = {}  # name -> the resident handle whose bytes equal the stored copy
        self._next_slot = 0
        self.resident_bytes = self.spilled_bytes = self.restored_bytes = 0

    @property
    def storage(self):
        if self._storage is None:
            self._storage = spill_storage()
        return self._storage

    # -- mapping -------------------------------------------------------------
    def __setitem__(self, name, tensor):
        if name in self._names:
            self._forget(name, keep_slot=True)
        else:
            self._names[name] = f"t{self._next_slot}"
            self._next_slot += 1
        self._make_resident(name, tensor)

    def __getitem__(self, name):
        if name in self._resident:
            self._resident.move_to_end(name)
            return self._resident[name]
        if name not in self._stored:
            raise KeyError(name)
        dtype, _, nbytes, backend, axes = self._stored[name]
        reader = self.storage.open(self._names[name])
        try:
            tensor = tensor_from(reader, "tensor", dtype, backend)
        finally:
            reader.close()
        tensor.axes = axes
        self.restored_bytes += nbytes
        self._make_resident(name, tensor)
        self._clean[name] = tensor.data
        return tensor

    def __delitem__(self, name):
        if name not in self._names:
            raise KeyError(name)
        self._forget(name)
        del self._names[name]

    def __iter__(self):
        return iter(list(self._names))

    def __len__(self):
        return len(self._names)

    def __contains__(self, name):
        return name in self._names

    @property
    def nbytes(self):
        spilled = sum(meta[2] for name, meta in self._stored.items() if name not in self._resident)
        return self.resident_bytes + spilled

    def stats(self):
        return {"budget": self.budget, "resident_bytes": self.resident_bytes,
                "spilled_bytes": self.spilled_bytes, "restored_bytes": self.restored_bytes,
                "resident": len(self._resident), "spilled": len(self._names) - len(self._resident)}

    def record(self, name):
        """``(dtype, axes, (safetensors dtype, shape, buffer), close)`` without a trip to the device."""
        if name in self._resident or name not in self._stored:
            tensor = self[name]
            return tensor.dtype, tensor.axes, tensor_record(tensor), lambda: None
        reader = self.storage.open(self._names[name])
        info = reader.info("tensor")
        dtype, axes = self._stored[name][0], self._stored[name][4]
        return dtype, axes, (info.dtype, info.shape, reader.raw("tensor")), reader.close

    # -- budget --------------------------------------------------------------
    def _make_resident(self, name, tensor):
        self._resident[name] = tensor
        self.resident_bytes += tensor.nbytes
        while self.resident_bytes > self.budget and len(self._resident) > 1:
            self._evict(next(iter(self._resident)))

    def _evict(self, name):
        tensor = self._resident.pop(name)
        self.resident_bytes -= tensor.nbytes
        if name not in self._stored or self._clean.get(name) is not tensor.data:
            self.storage.write(self._names[name], {"tensor": tensor_record(tensor)})
            self.spilled_bytes += tensor.nbytes
        # The axes are the tensor's own (a hook's names), set again when it is read back.
        self._stored[name] = (tensor.dtype, tensor.shape, tensor.nbytes, tensor.backend, tensor.axes)
        self._clean.pop(name, None)

    def _forget(self, name, keep_slot=False):
        tensor = self._resident.pop(name, None)
        if tensor is not None:
            self.resident_bytes -= tensor.nbytes
        self._clean.pop(name, None)
        if self._stored.pop(name, None) is not None and not keep_slot:
            self.storage.delete(self._names[name])


# -- saving and loading whole caches --------------------------------------------------
def save_activations(store, key, storage=None, tokens=None, attention_mask=None):
    """Write every activation of ``store`` (a dict or ``SpillingStore``) as one entry."""
    _check_names(store)
    storage = storage or default_storage()
    tensors, dtypes, axes, closers = {}, {}, {}, []
    try:
        for name in store:
            if isinstance(store, SpillingStore):
                dtype, axes[name], record, close = store.record(name)
                closers.append(close)
            else:
                dtype, axes[name], record = store[name].dtype, store[name].axes, tensor_record(store[name])
            tensors[name], dtypes[name] = record, dtype
        for stored, extra in _extras(tokens, attention_mask):
            tensors[stored], dtypes[stored] = tensor_record(extra), extra.dtype
        return storage.write(key, tensors, _metadata(store, dtypes, axes))
    finally:
        for close in closers:
            close()


async def save_activations_async(store, key, storage=None, tokens=None, attention_mask=None):
    """``save_activations`` that awaits the device and IndexedDB (browsers without JSPI).
    A budgeted cache spills with ``run_sync``, so this takes plain (unbudgeted) caches."""
    if isinstance(store, SpillingStore):
        raise TypeError("save_async needs a cache without a budget (spilling waits with run_sync); "
                        "use save()")
    _check_names(store)
    storage = storage or default_storage()
    tensors, dtypes = {}, {}
    for name, tensor in [*store.items(), *_extras(tokens, attention_mask)]:
        tensors[name], dtypes[name] = await tensor_record_async(tensor), tensor.dtype
    axes = {name: tensor.axes for name, tensor in store.items()}
    return await storage.write_async(key, tensors, _metadata(store, dtypes, axes))


def _check_names(store):
    """The entry holds the tokens and mask under EXTRAS' names: an activation may not."""
    taken = [name for name in EXTRAS.values() if name in store]
    if taken:
        raise ValueError(f"cannot save an activation named {taken[0]!r}: a saved cache keeps its "
                         f"tokens and attention mask under {', '.join(map(repr, EXTRAS.values()))}; "
                         "rename it")


def _extras(tokens, attention_mask):
    given = {"tokens": tokens, "attention_mask": attention_mask}
    return [(EXTRAS[field], value) for field, value in given.items() if isinstance(value, Tensor)]


def _metadata(store, dtypes, axes):
    return {"format": FORMAT, "version": "1", "dtypes": json.dumps(dtypes),
            "order": json.dumps(list(store)),
            "axes": json.dumps({name: list(names) for name, names in axes.items() if names})}


def load_activations(key, storage=None, into=None):
    """Fill ``into`` (a mapping; a ``SpillingStore`` spills as it fills) with the entry's
    activations in saved order; returns the extras ``{"tokens", "attention_mask"}``."""
    storage = storage or default_storage()
    return _fill(storage.open(key), key, storage, {} if into is None else into)


async def load_activations_async(key, storage=None, into=None):
    """``load_activations`` that awaits IndexedDB (uploads to the device never wait)."""
    storage = storage or default_storage()
    return _fill(await storage.open_async(key), key, storage, {} if into is None else into)


def _fill(reader, key, storage, into):
    try:
        metadata = reader.metadata or {}
        if metadata.get("format") != FORMAT:
            raise ValueError(f"{key!r} in {storage!r} is not a saved ActivationCache "
                             f"(metadata format {metadata.get('format')!r}, expected {FORMAT!r})")
        dtypes = json.loads(metadata["dtypes"])
        axes = json.loads(metadata.get("axes", "{}"))  # absent in entries saved before axes were
        backend = get_backend()
        for name in json.loads(metadata["order"]):
            tensor = tensor_from(reader, name, dtypes[name], backend)
            tensor.axes = tuple(axes[name]) if name in axes else None
            into[name] = tensor
        return {field: tensor_from(reader, stored, dtypes[stored], backend) if stored in dtypes else None
                for field, stored in EXTRAS.items()}
    finally:
        reader.close()
