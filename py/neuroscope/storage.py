"""Durable storage for activations: a folder on disk (CPython) or IndexedDB (browser).

One small interface, two implementations. An entry is a set of tensors plus string
metadata, stored as one safetensors file (model/safetensors.py's layout) under a key:

    write(key, tensors, metadata)   tensors: {name: (safetensors dtype, shape, buffer)}.
                                    Atomic: a failure leaves the previous entry (if any)
                                    untouched and no partial one; over quota it raises
                                    ``StorageQuotaError`` naming the key, sizes and quota.
    open(key)                       a reader (keys, info, raw, metadata, close), or
                                    ``StorageKeyError`` naming the stored keys
    delete(key) -> bool,  keys(prefix="") -> sorted list
    write_async, open_async         the same for ``await`` (browsers without JSPI)

* ``FolderStorage``: ``<root>/<quoted key>.safetensors`` (``file_name``: upper-case letters
  escaped too, for case-insensitive file systems), written to a temporary file and
  renamed over the old one (atomic on POSIX). An optional ``quota`` (bytes) bounds the
  folder; a full disk (ENOSPC, EDQUOT) is reported the same way.
* ``IndexedDBStorage``: worker/storage.js through ``neuroscope_js.storage`` (two-phase
  writes, see there). Reads come back as a ``HostBuffer``: the tensors go to the device
  from the JS bytes without a copy in Python. The plain methods wait on IndexedDB with
  ``run_sync`` (JSPI, current Chromium); the ``_async`` ones are awaited instead.

``default_storage()`` is IndexedDB in the browser and, in CPython, the folder
``$NEUROSCOPE_CACHE_DIR/activations`` (default ``~/.cache/neuroscope/activations``).
``spill_storage()`` is the scratch space for ``ActivationCache`` byte budgets (spill.py).
Downloaded weights are cached by worker/weights.js; ``forget_weights`` drops them.
"""

import errno
import os
import shutil
import tempfile
import urllib.parse
import uuid
import weakref

from .errors import StorageKeyError, StorageQuotaError
from .host_safetensors import HostSafetensors
from .safetensors_format import SafetensorsFile, layout

SUFFIX = ".safetensors"


class FolderStorage:
    """Entries as safetensors files in ``root``; ``quota`` bounds the folder's bytes."""

    def __init__(self, root, quota=None):
        self.root = os.fspath(root)
        self.quota = quota
        os.makedirs(self.root, exist_ok=True)

    def __repr__(self):
        return f"FolderStorage({self.root!r})"

    def _path(self, key):
        return os.path.join(self.root, file_name(key))

    def _stored_path(self, key):
        """The entry's file, or one written before upper-case letters were escaped (its
        exact name listed, so a case-insensitive file system cannot answer for another key)."""
        path = self._path(key)
        if os.path.exists(path):
            return path
        legacy = urllib.parse.quote(key, safe="") + SUFFIX
        return os.path.join(self.root, legacy) if legacy in os.listdir(self.root) else None

    def write(self, key, tensors, metadata=None):
        header, views = layout(tensors, metadata)
        needed = len(header) + sum(view.nbytes for view in views)
        path, previous = self._path(key), self._stored_path(key)
        if self.quota is not None:
            usage = self.usage() - (os.path.getsize(previous) if previous else 0)
            if usage + needed > self.quota:
                raise StorageQuotaError(key, needed, usage, self.quota, f"folder {self.root}")
        partial = f"{path}.{uuid.uuid4().hex}.partial"
        try:
            with open(partial, "wb") as handle:
                handle.write(header)
                handle.writelines(views)
            os.replace(partial, path)
            if previous is not None and previous != path:
                os.remove(previous)
        except OSError as error:
            if os.path.exists(partial):
                os.remove(partial)
            if error.errno in (errno.ENOSPC, errno.EDQUOT):
                raise StorageQuotaError(key, needed, detail=f"{self.root}: {error.strerror}") from None
            raise
        return needed

    def open(self, key):
        path = self._stored_path(key)
        if path is None:
            raise StorageKeyError(key, self.root, self.keys())
        return SafetensorsFile.open(path)

    async def write_async(self, key, tensors, metadata=None):
        return self.write(key, tensors, metadata)

    async def open_async(self, key):
        return self.open(key)

    def delete(self, key):
        path = self._stored_path(key)
        if path is None:
            return False
        os.remove(path)
        return True

    def keys(self, prefix=""):
        names = {urllib.parse.unquote(name[:-len(SUFFIX)]) for name in os.listdir(self.root)
                 if name.endswith(SUFFIX)}
        return sorted(name for name in names if name.startswith(prefix))

    def usage(self):
        return sum(entry.stat().st_size for entry in os.scandir(self.root) if entry.is_file())


def file_name(key):
    """``key`` as a file name: %-escaped (``/`` too), upper-case letters included, so that keys
    differing only in case ("Run", "run") stay two files on a case-insensitive file system."""
    return "".join(f"%{ord(char):02X}" if "A" <= char <= "Z" else urllib.parse.quote(char, safe="")
                   for char in key) + SUFFIX


class IndexedDBStorage:
    """Entries in the browser's IndexedDB (worker/storage.js), under ``prefix``."""

    def __init__(self, prefix="activations/", host=None):
        self.prefix = prefix
        self._js = (host or _js_host()).storage

    def __repr__(self):
        return f"IndexedDBStorage({self.prefix!r})"

    def write(self, key, tensors, metadata=None):
        chunks = self._chunks(tensors, metadata)
        try:
            return self._written(key, _wait(self._js.write(self.prefix + key, chunks.js_array)))
        finally:
            chunks.destroy()

    async def write_async(self, key, tensors, metadata=None):
        chunks = self._chunks(tensors, metadata)
        try:
            return self._written(key, await self._js.write(self.prefix + key, chunks.js_array))
        finally:
            chunks.destroy()

    def open(self, key):
        data = _wait(self._js.read(self.prefix + key))
        return self._reader(key, data, None if not _is_null(data) else self.keys())

    async def open_async(self, key):
        data = await self._js.read(self.prefix + key)
        keys = None if not _is_null(data) else await self.keys_async()
        return self._reader(key, data, keys)

    def delete(self, key):
        return bool(_wait(self._js.remove(self.prefix + key)))

    def keys(self, prefix=""):
        return self._strip(_wait(self._js.keys(self.prefix + prefix)))

    async def keys_async(self, prefix=""):
        return self._strip(await self._js.keys(self.prefix + prefix))

    def _chunks(self, tensors, metadata):
        """The entry's bytes as a JS array of borrowed Python buffers (header, then tensors)."""
        from pyodide.ffi import create_proxy, to_js

        header, views = layout(tensors, metadata)
        proxies = [create_proxy(memoryview(header))] + [create_proxy(view) for view in views]
        return _Chunks(to_js(proxies), proxies)

    def _written(self, key, reply):
        if not reply.ok:
            estimate = f"navigator.storage.estimate(): {int(reply.usage)} of {int(reply.quota)} bytes used"
            if reply.quotaExceeded:
                raise StorageQuotaError(key, int(reply.size), detail=f"{reply.message}; {estimate}")
            raise OSError(f"storing {key!r} in IndexedDB failed: {reply.message}")
        return int(reply.size)

    def _reader(self, key, data, keys):
        from .backends.host_buffer import HostBuffer
        if keys is not None:
            raise StorageKeyError(key, f"IndexedDB ({self.prefix!r})", keys)
        return HostSafetensors(HostBuffer(data, f"indexeddb:{self.prefix}{key}"))

    def _strip(self, found):
        return sorted(str(key)[len(self.prefix):] for key in found.to_py())


class _Chunks:
    """A JS array handed to worker/storage.js, and the proxies to destroy after the call."""

    def __init__(self, js_array, proxies):
        self.js_array, self.proxies = js_array, proxies

    def destroy(self):
        for proxy in self.proxies:
            proxy.destroy()


def default_storage():
    """Where ``cache.save(key)`` writes: IndexedDB in the browser, a folder in CPython."""
    return storage_for("activations/", "activations")


def storage_for(prefix, folder):
    """IndexedDB entries under ``prefix`` in the browser; in CPython the folder ``folder``
    of ``cache_home()``."""
    if _js_host() is not None:
        return IndexedDBStorage(prefix)
    return FolderStorage(os.path.join(cache_home(), folder))


def spill_storage():
    """Scratch storage for spilled tensors; it goes away with this process or worker.

    CPython: a temporary folder, removed when the storage object is collected. Browser:
    IndexedDB under ``spill/<session>/<store>/``, removed when the storage object is
    collected; worker/storage.js also deletes the entries of sessions that no longer
    run (each worker holds a Web Lock while it lives).
    """
    host = _js_host()
    if host is not None:
        storage = IndexedDBStorage(f"{_wait(host.storage.spillPrefix())}{uuid.uuid4().hex}/")
        # Not awaited: safe from a finalizer; the next session's sweep catches a lost one.
        weakref.finalize(storage, host.storage.removePrefix, storage.prefix)
        return storage
    storage = FolderStorage(tempfile.mkdtemp(prefix="neuroscope-spill-"))
    weakref.finalize(storage, shutil.rmtree, storage.root, True)
    return storage


def forget_weights(url=None):
    """Browser: drop the cached weights of ``url`` (a safetensors file's URL, absolute or
    relative to the page) or, with None, every cached file; returns how many were dropped.
    (CPython has no weight cache of its own: files are read in place.)"""
    host = _js_host()
    if host is None:
        return 0
    if url is not None:
        url = urllib.parse.urljoin(str(host.pageURL), url)
    return int(_wait(host.forgetWeights(url)))


def cache_home():
    """CPython's cache folder: ``$NEUROSCOPE_CACHE_DIR``, default ``~/.cache/neuroscope``."""
    return os.environ.get("NEUROSCOPE_CACHE_DIR") or os.path.join(
        os.path.expanduser("~"), ".cache", "neuroscope")


def _js_host():
    try:
        import neuroscope_js  # registered by worker/worker.js
    except ImportError:
        return None
    return neuroscope_js


def _wait(promise):
    from pyodide.ffi import can_run_sync, run_sync
    if not can_run_sync():
        raise RuntimeError("IndexedDB storage waits with pyodide.ffi.run_sync, which needs JSPI "
                           "(WebAssembly.Suspending, current Chromium); this browser lacks it")
    return run_sync(promise)


def _is_null(value):
    return value is None or type(value).__name__ == "JsNull"
