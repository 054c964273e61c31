"""Datasets: examples (dicts with a ``text`` and any other fields) from files, URLs,
records or the demo model's built-in splits.

``Dataset.from_file(path_or_url)`` reads ``.jsonl`` (one JSON object per line), ``.json``
(a list of objects, or ``{"examples": [...]}``), ``.csv`` (a header row naming the fields)
and ``.txt`` (one example per line: ``{"text": line}``). Line-based files (jsonl, csv, txt)
are *indexed*, not loaded: one pass checks every line (a malformed line, or one without a
``text``, is a ``DatasetError`` naming the file and the line number) and keeps only the
byte offset of each example, so a 1 GB JSONL costs 8 bytes per example in memory; an
example is parsed again when it is read. ``.json`` is one document and is read whole.

A ``Dataset`` is a sequence of dicts: ``len``, ``ds[i]``, ``ds[a:b]`` / ``ds[[i, j]]``
(views), iteration, ``texts``, ``column(name)``, ``split(fraction, seed)``. Its
``content_hash`` (SHA-256 of the file's bytes, or of the records as canonical JSON, plus
the selection of a view) keys cached activations (``TransformerModel.activations_at``).

``Dataset.builtin(name)`` gives the demo model's held-out data: ``demo/ioi`` (IOI prompts
with their corrupted prompts and answers), ``demo/facts`` (fact-recall prompts),
``demo/text`` (paragraphs of held-out natural text), and two labelled probing sets whose
labels are known from how the demo was trained: ``demo/ioi-order`` (label 0 when the
indirect object is the first name, "ABB", 1 when it is the second, "BAB") and
``demo/facts-relation`` (the fact's relation).

``store_dataset(name, data)`` keeps a file's bytes (an upload in the Lens) after checking
every example as ``from_file`` does — nothing is stored when a line is bad — in IndexedDB
(``datasets/<name>``) in the browser or ``$NEUROSCOPE_CACHE_DIR/stored-datasets`` in
CPython; ``Dataset.stored(name)`` reads it back (also after a reload), ``stored_datasets()``
lists them with their sizes and ``remove_stored_dataset(name)`` drops one.

Runs in a stdlib-only Pyodide: URLs are fetched with the package's fetcher (the worker's
in the browser), written to a local file and indexed like any other.
"""

import array
import contextlib
import csv
import hashlib
import io
import json
import os
import random
import re
import tempfile

from . import strict_json
from .errors import DatasetError, StorageKeyError
from .storage import cache_home, storage_for

EXTENSIONS = (".jsonl", ".json", ".csv", ".txt")
BUILTIN = ("demo/ioi", "demo/facts", "demo/text", "demo/ioi-order", "demo/facts-relation")
# A stored dataset's name: a file name with one of EXTENSIONS, no folders.
STORED_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._ -]{0,99}")


class Dataset:
    """A sequence of examples (dicts, each with a ``text`` string). Build one with
    ``from_file``, ``from_records`` or ``builtin``."""

    def __init__(self, store, name, indices=None):
        self._store = store
        self.name = name
        self._indices = indices  # a view: positions in the store, or None for all of it

    # -- construction ------------------------------------------------------------------
    @classmethod
    def from_records(cls, records, name="records"):
        """A dataset of ``records`` (dicts with a ``text``; each is checked)."""
        if isinstance(records, (str, bytes, dict)) or not hasattr(records, "__iter__"):
            raise DatasetError(f"from_records takes a list of dicts, got {type(records).__name__}")
        records = [dict(_check_example(record, f"{name}[{i}]")) for i, record in enumerate(records)]
        return cls(_Records(records), name)

    @classmethod
    def from_file(cls, path_or_url, name=None):
        """The examples of a .jsonl, .json, .csv or .txt file (a path or an http(s) URL)."""
        location = os.fspath(path_or_url)
        if not isinstance(location, str):
            raise DatasetError(f"from_file takes a path or a URL, got {path_or_url!r}")
        extension = _extension(location)
        path = _local_copy(location) if _is_url(location) else location
        if not os.path.isfile(path):
            raise DatasetError(f"{location}: no such file")
        name = name or os.path.basename(location.split("?", 1)[0])
        if extension == ".json":
            return cls(_Records(_read_json(path, location)[0]), name)._with_hash(_file_hash(path))
        return cls(_IndexedFile(path, location, extension), name)

    @classmethod
    def builtin(cls, name):
        """One of the demo model's held-out datasets: ``BUILTIN`` lists them."""
        if name not in BUILTIN:
            raise DatasetError(f"no built-in dataset {name!r}; expected one of {', '.join(BUILTIN)}")
        return cls(_Records(_builtin_records(name)), name)

    @classmethod
    def stored(cls, name, storage=None):
        """A dataset kept by ``store_dataset`` (``stored_datasets()`` lists them)."""
        storage = storage or dataset_storage()
        _check_stored_name(name)
        try:
            entry = storage.open(name)
        except StorageKeyError:
            known = ", ".join(item["name"] for item in stored_datasets(storage)) or "none"
            raise DatasetError(f"no stored dataset {name!r}; stored here: {known}") from None
        try:
            # The scratch copy is named by the bytes' own hash, checked against the one stored
            # with them: a missing or wrong value would name another dataset's copy.
            data = bytes(entry.raw("bytes"))
            digest = hashlib.sha256(data).hexdigest()
            if entry.metadata.get("sha256") != digest:
                said = str(entry.metadata.get("sha256"))[:16]
                raise DatasetError(f"stored dataset {name!r} is damaged: its bytes hash to {digest[:16]}..., "
                                   f"its entry says {said}...; store it again")
            path = os.path.join(_scratch_folder(), f"stored-{digest[:24]}{_extension(name)}")
            if not os.path.exists(path):
                _write_new(path, lambda handle: handle.write(data))
        finally:
            entry.close()
        return cls.from_file(path, name=name)

    def _with_hash(self, digest):
        self._store.digest = digest
        return self

    # -- the sequence ----------------------------------------------------------------
    def __len__(self):
        return len(self._store) if self._indices is None else len(self._indices)

    def __getitem__(self, key):
        if isinstance(key, slice):
            return self._view(range(len(self))[key])
        if isinstance(key, (list, tuple)) or (hasattr(key, "tolist") and not hasattr(key, "__index__")):
            positions = list(key.tolist() if hasattr(key, "tolist") else key)
            return self._view([self._position(index) for index in positions])
        return self._store.example(self._store_index(self._position(key)))

    def _position(self, key):
        if isinstance(key, bool) or not hasattr(key, "__index__"):
            raise DatasetError(f"dataset index {key!r} (a {type(key).__name__}); expected an integer, "
                               "a slice or a list of integers")
        index, size = key.__index__(), len(self)
        if not -size <= index < size:
            raise IndexError(f"example {index} requested; the dataset {self.name!r} has {size} "
                             f"(0-{size - 1})")
        return index % size

    def _store_index(self, position):
        return position if self._indices is None else self._indices[position]

    def _view(self, positions):
        return Dataset(self._store, self.name, array.array("q", (self._store_index(p) for p in positions)))

    def __iter__(self):
        if self._indices is None:
            yield from self._store.examples()
        else:
            for index in self._indices:
                yield self._store.example(index)

    @property
    def texts(self):
        """The examples' texts (a sequence read as it is used)."""
        return _Column(self, "text")

    def column(self, name):
        """Every example's ``name`` field as a list; an example without it is an error."""
        values = []
        for i, example in enumerate(self):
            if name not in example:
                fields = ", ".join(sorted(example))
                raise DatasetError(f"example {i} of {self.name!r} has no field {name!r} (it has {fields})")
            values.append(example[name])
        return values

    def split(self, fraction, seed=0):
        """``(first, second)``: a seeded shuffle cut after ``round(fraction * len)`` examples."""
        if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction < 1:
            raise DatasetError(f"split fraction {fraction!r}; expected a number between 0 and 1")
        order = list(range(len(self)))
        random.Random(seed).shuffle(order)
        cut = round(fraction * len(order))
        return self._view(order[:cut]), self._view(order[cut:])

    @property
    def content_hash(self):
        """SHA-256 (hex) of the examples this dataset holds, in order."""
        digest = self._store.content_hash()
        if self._indices is None:
            return digest
        return hashlib.sha256(digest.encode() + self._indices.tobytes()).hexdigest()

    def to_records(self):
        return list(self)

    def __repr__(self):
        return f"Dataset({self.name!r}, {len(self)} examples)"


class _Column:
    """One field of every example, as a read-only sequence."""

    def __init__(self, dataset, field):
        self._dataset, self._field = dataset, field

    def __len__(self):
        return len(self._dataset)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [example[self._field] for example in self._dataset[index]]
        return self._dataset[index][self._field]

    def __iter__(self):
        return (example[self._field] for example in self._dataset)

    def __repr__(self):
        return f"<{len(self)} {self._field}s of {self._dataset.name!r}>"


# -- stores -------------------------------------------------------------------------
class _Records:
    """Examples held in memory."""

    def __init__(self, records):
        self.records = records
        self.digest = None

    def __len__(self):
        return len(self.records)

    def example(self, index):
        return dict(self.records[index])

    def examples(self):
        return (dict(record) for record in self.records)

    def content_hash(self):
        if self.digest is None:
            canonical = json.dumps(self.records, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
            self.digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
        return self.digest


class _IndexedFile:
    """A line-based file: byte offsets of its examples, each parsed again when read."""

    def __init__(self, path, location, extension):
        self.path, self.location, self.extension = path, location, extension
        self.offsets = array.array("q")  # start of each example
        self.lines = array.array("q")  # its first line number (1-based), for messages
        self.header = None
        self.digest = self._scan()

    def __len__(self):
        return len(self.offsets)

    def _scan(self):
        digest = hashlib.sha256()
        with open(self.path, "rb") as handle:
            stat = os.fstat(handle.fileno())
            self.stat = (stat.st_size, stat.st_mtime_ns)
            offset, number = 0, 0
            pending = None  # csv: a record spanning lines (a quoted newline): (offset, line, bytes)
            for raw in handle:
                digest.update(raw)
                number += 1
                start, offset = offset, offset + len(raw)
                if self.extension == ".csv":
                    pending = self._scan_csv(raw, start, number, pending)
                    continue
                text = _decode(raw, self.location, number)
                if not text.strip():
                    continue
                self._parse(text, number)  # checks the line; the example is parsed again when read
                self.offsets.append(start)
                self.lines.append(number)
            if pending is not None:
                raise DatasetError(f"{self.location}:{pending[1]}: a quoted CSV field is never closed")
        if self.extension == ".csv" and self.header is None:
            raise DatasetError(f"{self.location}: empty CSV file; expected a header row with a 'text' column")
        return digest.hexdigest()

    def _scan_csv(self, raw, start, number, pending):
        begin, first, chunk = (start, number, raw) if pending is None else (*pending[:2], pending[2] + raw)
        if chunk.count(b'"') % 2:  # inside a quoted field: the record goes on
            return begin, first, chunk
        text = _decode(chunk, self.location, first)
        if self.header is None:
            self.header = _csv_row(text, self.location, first)
            repeated = sorted({field for field in self.header if self.header.count(field) > 1})
            if repeated:
                names = ", ".join(map(repr, repeated))
                raise DatasetError(f"{self.location}:{first}: the CSV header names {names} more than once; "
                                   "each column needs its own name")
            if "text" not in self.header:
                raise DatasetError(f"{self.location}:{first}: the CSV header {self.header} has no "
                                   "'text' column")
            return None
        if text.strip():
            self._parse(text, first)
            self.offsets.append(begin)
            self.lines.append(first)
        return None

    def _parse(self, text, number):
        where = f"{self.location}:{number}"
        if self.extension == ".txt":
            return {"text": text.rstrip("\r\n")}
        if self.extension == ".csv":
            row = _csv_row(text, self.location, number)
            if len(row) != len(self.header):
                raise DatasetError(f"{where}: {len(row)} fields; the header has {len(self.header)} "
                                   f"({', '.join(self.header)})")
            return _check_example(dict(zip(self.header, row)), where)
        try:
            value = strict_json.loads(text)
        except ValueError as error:
            raise DatasetError(f"{where}: not a JSON object ({error})") from None
        return _check_example(value, where)

    def example(self, index):
        with open(self.path, "rb") as handle:
            self._check_unchanged(os.fstat(handle.fileno()))
            handle.seek(self.offsets[index])
            if self.extension == ".csv":  # a record may span lines (a quoted newline)
                end = self.offsets[index + 1] if index + 1 < len(self.offsets) else None
                raw = handle.read(end - self.offsets[index]) if end is not None else handle.read()
            else:  # the line the scan checked: ended by b"\n" only, as iterating a file splits
                raw = handle.readline()
        text = raw.decode("utf-8")
        return self._parse(text.rstrip("\r\n") if self.extension == ".csv" else text, self.lines[index])

    def _check_unchanged(self, stat):
        """The offsets are those of the file as scanned: refuse to read one changed since."""
        if (stat.st_size, stat.st_mtime_ns) != self.stat:
            raise DatasetError(f"{self.location}: the file changed after it was indexed ({self.stat[0]} "
                               f"bytes then, {stat.st_size} now); open it again with Dataset.from_file")

    def examples(self):
        for index in range(len(self.offsets)):
            yield self.example(index)

    def content_hash(self):
        return self.digest


# -- helpers ------------------------------------------------------------------------
def _check_example(value, where):
    if not isinstance(value, dict):
        raise DatasetError(f"{where}: an example must be an object with a 'text', got {type(value).__name__}")
    if "text" not in value:
        fields = ", ".join(sorted(map(str, value))) or "no fields"
        raise DatasetError(f"{where}: the example has no 'text' (it has {fields})")
    if not isinstance(value["text"], str):
        raise DatasetError(f"{where}: 'text' is a {type(value['text']).__name__}; expected a string")
    return value




def _decode(raw, location, number):
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise DatasetError(f"{location}:{number}: not UTF-8 text ({error.reason} at byte "
                           f"{error.start})") from None


def _csv_row(text, location, number):
    try:
        rows = [row for row in csv.reader(io.StringIO(text)) if row]
    except csv.Error as error:
        raise DatasetError(f"{location}:{number}: malformed CSV ({error})") from None
    if len(rows) != 1:
        raise DatasetError(f"{location}:{number}: malformed CSV record")
    return rows[0]


def _read_json(path, location):
    with open(path, "rb") as handle:
        raw = handle.read()
    try:
        value = strict_json.loads(_decode(raw, location, 1))
    except ValueError as error:
        raise DatasetError(f"{location}: not JSON ({error})") from None
    if isinstance(value, dict) and isinstance(value.get("examples"), list):
        value = value["examples"]
    if not isinstance(value, list):
        raise DatasetError(f"{location}: expected a list of examples or {{\"examples\": [...]}}, got "
                           f"{type(value).__name__}")
    return [_check_example(item, f"{location}: example {i}") for i, item in enumerate(value)], raw


def _file_hash(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _extension(location):
    lower = location.split("?", 1)[0].split("#", 1)[0].lower()
    for extension in EXTENSIONS:
        if lower.endswith(extension):
            return extension
    raise DatasetError(f"{location}: unknown dataset file type; expected one of {', '.join(EXTENSIONS)}")


def _is_url(location):
    return location.startswith(("http://", "https://"))


def _local_copy(url):
    """The bytes at ``url`` in a local file (a cache file in CPython; Pyodide's file system in
    the browser), so that they are indexed like any file."""
    from .model.remote import fetch_bytes
    in_browser = _in_browser()
    path = os.path.join(_scratch_folder(), hashlib.sha256(url.encode()).hexdigest()[:24] + _extension(url))
    if in_browser:
        try:
            data = fetch_bytes(url)
        except OSError as error:
            raise DatasetError(f"{url}: could not be downloaded ({error})") from None
        if data is None:
            raise DatasetError(f"{url}: could not be downloaded (HTTP 404: not found)")
        _write_new(path, lambda handle: handle.write(data))
    else:
        import urllib.request

        def download(handle):
            with urllib.request.urlopen(url) as response:
                for block in iter(lambda: response.read(1 << 20), b""):
                    handle.write(block)
        try:
            _write_new(path, download)
        except OSError as error:
            raise DatasetError(f"{url}: could not be downloaded ({error})") from None
    return path


def _write_new(path, write):
    """``path`` written by ``write(handle)`` under a name no other writer uses, then moved into
    place in one step: two processes fetching one dataset (distributed workers) never write into
    one file, and no reader sees half of one."""
    handle, partial = tempfile.mkstemp(dir=os.path.dirname(path), prefix=os.path.basename(path) + ".",
                                       suffix=".partial")
    try:
        with os.fdopen(handle, "wb") as out:
            write(out)
        os.replace(partial, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(partial)
        raise


def _scratch_folder():
    """Where downloaded and stored datasets are written to be indexed."""
    folder = "/tmp/neuroscope-datasets" if _in_browser() else os.path.join(cache_home(), "datasets")
    os.makedirs(folder, exist_ok=True)
    return folder


def _in_browser():
    import sys
    return sys.platform == "emscripten"


# -- stored datasets (uploads) ------------------------------------------------------
def dataset_storage():
    """Where ``store_dataset`` keeps files: IndexedDB (``datasets/``) in the browser, the
    folder ``$NEUROSCOPE_CACHE_DIR/stored-datasets`` in CPython."""
    return storage_for("datasets/", "stored-datasets")


def _check_stored_name(name):
    if not isinstance(name, str) or not STORED_NAME.fullmatch(name):
        raise DatasetError(f"stored dataset name {name!r}; expected a file name of letters, digits, "
                           "'.', '_', '-' and spaces (at most 100 characters) ending in "
                           f"{', '.join(EXTENSIONS)}")
    _extension(name)


def store_dataset(name, data, storage=None):
    """Check ``data`` (the bytes of a .jsonl/.json/.csv/.txt file called ``name``) as
    ``from_file`` does and keep it under ``name``, replacing a stored dataset of that name.

    Returns the ``Dataset``. A malformed line or an example without a ``text`` raises
    ``DatasetError`` (with the line number) and nothing is stored; so does a file without
    examples.
    """
    _check_stored_name(name)
    data = bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    extension = _extension(name)
    path = os.path.join(_scratch_folder(), f"stored-{digest[:24]}{extension}")
    partial = os.path.join(_scratch_folder(), f"partial-{os.getpid()}-{digest[:24]}{extension}")
    with open(partial, "wb") as handle:
        handle.write(data)
    try:
        dataset = Dataset.from_file(partial, name=name)
        if not len(dataset):
            raise DatasetError(f"{name}: no examples")
        metadata = {"name": name, "sha256": digest, "examples": str(len(dataset)),
                    "fields": json.dumps(sorted(dataset[0]))}
    except DatasetError as error:
        os.remove(partial)
        raise DatasetError(str(error).replace(partial, name)) from None
    os.replace(partial, path)
    (storage or dataset_storage()).write(name, {"bytes": ("U8", [len(data)], data)}, metadata)
    return Dataset.from_file(path, name=name)


def stored_datasets(storage=None):
    """``[{"name", "bytes", "examples", "fields"}]`` of the stored datasets, by name."""
    storage = storage or dataset_storage()
    out = []
    for name in storage.keys():
        entry = storage.open(name)
        try:
            out.append({"name": name, "bytes": entry.info("bytes").nbytes,
                        "examples": int(entry.metadata.get("examples", 0)),
                        "fields": json.loads(entry.metadata.get("fields", "[]"))})
        finally:
            entry.close()
    return out


def remove_stored_dataset(name, storage=None):
    """Drop a stored dataset; False if there was none of that name."""
    _check_stored_name(name)
    return (storage or dataset_storage()).delete(name)


def load_heldout(kind, folder=None):
    """The demo model's held-out split ``kind`` ("ioi", "facts", "text") stored next to the
    model (or in ``folder``), as stored."""
    from .demo import MODEL_DIR
    with open(os.path.join(folder or MODEL_DIR, f"{kind}_heldout.json"), encoding="utf-8") as handle:
        return json.load(handle)


def _builtin_records(name):
    if name in ("demo/ioi", "demo/ioi-order"):
        records = [{"text": item["prompt"], **item} for item in load_heldout("ioi")["prompts"]]
        if name == "demo/ioi-order":
            records = [{**item, "label": 0 if item["order"] == "ABB" else 1} for item in records]
        return records
    if name in ("demo/facts", "demo/facts-relation"):
        records = [{"text": item["prompt"], **item} for item in load_heldout("facts")["facts"]]
        if name == "demo/facts-relation":
            records = [{**item, "label": item["relation"]} for item in records]
        return records
    paragraphs = []
    for sample in load_heldout("text")["samples"]:
        paragraphs += [part.strip() for part in sample.split("\n\n") if len(part.strip()) >= 40]
    return [{"text": paragraph} for paragraph in paragraphs]


__all__ = ["BUILTIN", "Dataset", "DatasetError", "EXTENSIONS", "dataset_storage", "remove_stored_dataset",
           "store_dataset", "stored_datasets"]
