"""Where a model's files come from: a local folder or a URL ("openers").

``load_huggingface`` asks an opener for three things (the config, a weights
reader, the tokenizer) and does not care where the bytes live:

* ``FolderOpener``: a local folder (CPython, or Pyodide's file system). Config and
  tokenizer are read from disk, safetensors memory-mapped where possible.
* ``UrlOpener``: an http(s) URL, or in the browser a path relative to the page.
  Each file is fetched whole and parsed by the same pure-Python readers
  (``SafetensorsFile.from_buffer``); shards of an index are fetched when first used.

Fetching goes through ``fetch_bytes``: in the browser the worker's
``neuroscope_js.fetchBytes`` (worker/files.js: a Promise, awaited with ``run_sync``
where the browser has JSPI, else ``fetchBytesSync``, a synchronous XHR); in
CPython ``urllib``. Weights (``*.safetensors``) go through ``fetch_weights``: in a
browser with JSPI, ``neuroscope_js.fetchWeights`` (worker/weights.js: streamed with
progress, cached in IndexedDB by URL + content hash / ETag) answers a ``HostBuffer``
that stays in JS; ``HostSafetensors`` parses its header, commits it to the cache once
valid, and the backend uploads each tensor from the JS array.
"""

import json
import os
import posixpath
import urllib.error
import urllib.parse
import urllib.request

from ..backends.host_buffer import HostBuffer
from ..errors import ModelFormatError
from ..host_safetensors import HostSafetensors
from ..safetensors_format import SafetensorsFile, ShardedSafetensors
from ..tokenizer import Tokenizer
from .config import ModelConfig

CONFIG, SINGLE, INDEX, TOKENIZER = ("config.json", "model.safetensors", "model.safetensors.index.json",
                                    "tokenizer.json")
_FOLDER_HINT = "expected a Hugging Face model folder with config.json, model.safetensors and tokenizer.json"


def is_url(location):
    return isinstance(location, str) and location.startswith(("http://", "https://"))


class FolderOpener:
    """A model in a local folder."""

    def __init__(self, folder):
        self.folder = self.source = folder

    def where(self, name):
        return os.path.join(self.folder, name)

    def config(self):
        path = self.where(CONFIG)
        if not os.path.exists(path):
            raise ModelFormatError(f"{self.folder}: no config.json")
        return ModelConfig.from_hf(path, source=path)

    def weights(self):
        if os.path.exists(self.where(SINGLE)):
            return SafetensorsFile.open(self.where(SINGLE))
        if os.path.exists(self.where(INDEX)):
            return ShardedSafetensors.open(self.where(INDEX))
        raise ModelFormatError(f"{self.folder}: no model.safetensors or model.safetensors.index.json "
                               f"(found: {', '.join(sorted(os.listdir(self.folder))) or 'nothing'})")

    def tokenizer(self):
        path = self.where(TOKENIZER)
        return Tokenizer.from_file(path) if os.path.exists(path) else None


class UrlOpener:
    """A model at a URL: ``base_url`` is the folder (or a file inside it)."""

    def __init__(self, base_url, fetch=None):
        path = urllib.parse.urlsplit(base_url).path
        if posixpath.basename(path).endswith((".json", ".safetensors")):
            base_url = urllib.parse.urljoin(base_url, ".")
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self.source = self.base_url
        self._fetch = fetch or fetch_bytes
        self._fetch_weights = fetch or fetch_weights
        self._small = {}  # name -> bytes of the small files (config, tokenizer): read once

    def where(self, name):
        return urllib.parse.urljoin(self.base_url, name)

    def read(self, name, required=True):
        """The file's bytes; None when it does not exist and is not ``required``."""
        if name.endswith(".safetensors"):
            data = self._fetch_weights(self.where(name))
        else:
            if name not in self._small:
                self._small[name] = self._fetch(self.where(name))
            data = self._small[name]
        if data is None and required:
            raise FileNotFoundError(f"{self.where(name)}: not found (HTTP 404); {_FOLDER_HINT}")
        return data

    def config(self):
        url = self.where(CONFIG)
        return ModelConfig.from_hf(_json(self.read(CONFIG), url), source=url)

    def weights(self):
        single = self.read(SINGLE, required=False)
        if single is not None:
            return self.safetensors(single, self.where(SINGLE))
        index = self.read(INDEX, required=False)
        if index is not None:
            return RemoteShardedSafetensors.from_index(self, index, self.where(INDEX))
        raise ModelFormatError(f"{self.base_url}: no model.safetensors or model.safetensors.index.json "
                               f"(both answered HTTP 404); {_FOLDER_HINT}")

    def safetensors(self, data, url):
        if isinstance(data, HostBuffer):
            try:
                reader = HostSafetensors(data, url)
            except Exception:
                data.release()
                raise
            if data.commit is not None:  # cache it now that the header is valid: never a bad file
                _wait(data.commit())
            return reader
        return SafetensorsFile.from_buffer(data, url)

    def tokenizer(self):
        data = self.read(TOKENIZER, required=False)
        if data is None:
            return None
        try:
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError as error:
            raise ModelFormatError(f"{self.where(TOKENIZER)}: not UTF-8 ({error})") from None
        return Tokenizer.from_str(text, self.where(TOKENIZER))


class RemoteShardedSafetensors(ShardedSafetensors):
    """A sharded checkpoint at a URL: each shard is fetched when a tensor in it is first read."""

    def __init__(self, weight_map, opener, name, metadata=None):
        super().__init__(weight_map, opener.base_url, name, metadata)
        self._opener = opener

    @classmethod
    def from_index(cls, opener, data, url):
        index = _json(data, url, what="index")
        weight_map = index.get("weight_map") if isinstance(index, dict) else None
        if not isinstance(weight_map, dict) or not all(isinstance(s, str) for s in weight_map.values()):
            raise ModelFormatError(
                f"{url}: expected a JSON object with a \"weight_map\" of tensor name -> shard file name")
        for tensor, shard in weight_map.items():
            # Shards sit beside the index: a path, a URL or an escape (%2e%2e) would fetch a file
            # from elsewhere (another folder, another site) as this model's weights.
            if shard in ("", ".", "..") or any(c in shard for c in "/\\:?#%"):
                raise ModelFormatError(f"{url}: shard {shard!r} (holding {tensor!r}) is not a file name "
                                       f"in the model's folder {opener.base_url}")
        metadata = index.get("metadata")
        return cls(weight_map, opener, url, metadata if isinstance(metadata, dict) else None)

    def shard_of(self, name):
        if name not in self.weight_map:
            return super().shard_of(name)  # raises the missing-tensor error
        shard = self.weight_map[name]
        if shard not in self._shards:
            data = self._opener.read(shard, required=False)
            if data is None:
                raise ModelFormatError(f"{self.name}: shard {shard!r} (holding {name!r}) not found "
                                       f"at {self._opener.where(shard)}")
            self._shards[shard] = self._opener.safetensors(data, self._opener.where(shard))
        return super().shard_of(name)


def _json(data, url, what="file"):
    try:
        return json.loads(bytes(data).decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise ModelFormatError(f"{url}: {what} is not valid JSON ({error})") from None


# -- fetching ----------------------------------------------------------------------
def fetch_bytes(url):
    """The body of ``url`` as bytes; None for HTTP 404/410; OSError for other failures."""
    host = _js_host()
    if host is not None:
        return _fetch_in_browser(host, url)
    try:
        with urllib.request.urlopen(url) as response:
            return response.read()
    except urllib.error.HTTPError as error:
        if error.code in (404, 410):
            return None
        raise OSError(f"{url}: HTTP {error.code} {error.reason}") from None
    except urllib.error.URLError as error:
        raise OSError(f"{url}: {error.reason}") from None


def fetch_weights(url):
    """Like ``fetch_bytes``, but in a browser with JSPI a cached ``HostBuffer`` (see above)."""
    host = _js_host()
    if host is None or not _can_wait():
        return fetch_bytes(url)
    reply = _wait(host.fetchWeights(url))
    if not _ok(reply, url):
        return None
    return HostBuffer(reply.bytes, url, commit=reply.commit)


def _fetch_in_browser(host, url):
    reply = _wait(host.fetchBytes(url)) if _can_wait() else host.fetchBytesSync(url)
    if not _ok(reply, url):
        return None
    return reply.bytes.to_bytes()  # small files only (config, tokenizer): weights use fetch_weights


def _ok(reply, url):
    """True for HTTP 2xx, False for 404/410; OSError for other failures."""
    status = int(reply.status)
    if 200 <= status < 300:
        return True
    if status in (404, 410):
        return False
    reason = f"HTTP {status} {reply.statusText}" if status else f"network error: {reply.statusText}"
    raise OSError(f"{url}: {reason}")


def _can_wait():
    from pyodide.ffi import can_run_sync
    return can_run_sync()


def _wait(promise):
    from pyodide.ffi import run_sync
    return run_sync(promise)


def page_url():
    """The page's address in the browser (relative model paths resolve against it), else None."""
    return _host_url("pageURL")


def site_url():
    """The served site's root in the browser (where build.py puts dist/), else None."""
    return _host_url("siteURL")


def hub_url():
    """In the browser, the hub mirror the page names (``?hub=``), else None."""
    return _host_url("hubURL")


def _host_url(name):
    """A URL the worker registered on ``neuroscope_js`` (worker/worker.js); None if unset."""
    value = getattr(_js_host(), name, None)
    return str(value) if value else None


def _js_host():
    try:
        import neuroscope_js  # registered by worker/worker.js
    except ImportError:
        return None
    return neuroscope_js
