"""The Lens's static site, found and served from CPython, with model folders beside it.

``find_site()`` says where the built Lens is: the ``NEUROSCOPE_SITE`` folder, a ``site/``
folder shipped inside the package, or the checkout's ``dist/`` (rebuilt with ``build.py``
when its sources are newer and npm's node_modules are present). ``make_server`` serves a
folder with the cross-origin-isolation headers the Lens needs (wasm threads,
SharedArrayBuffer); ``LensServer`` adds ``/models/<key>/<file>`` routes to local Hugging
Face folders, so the page fetches a model from the same origin (COEP allows it). Standard
library only; build.py serves dist/ with the same handler.
"""

import functools
import hashlib
import http.server
import json
import os
import shutil
import threading
import urllib.parse

from .errors import NeuroScopeError

PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
CHECKOUT = os.path.dirname(os.path.dirname(PACKAGE_DIR))  # py/neuroscope -> the repository
SITE_ENV = "NEUROSCOPE_SITE"
BUILD_MARKER = "build.json"  # build.py writes it into every built site
ENTRY = "web/index.html"
# The files of a Hugging Face folder that the Lens reads (web/models.js, model/remote.py).
MODEL_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json", "generation_config.json",
               "model.safetensors", "model.safetensors.index.json")


class SiteNotFoundError(NeuroScopeError, FileNotFoundError):
    """No built Lens to serve, and none can be built here."""


class StaticHandler(http.server.SimpleHTTPRequestHandler):
    """Static files with the headers wasm threads need (cross-origin isolation)."""

    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map,
                      ".wasm": "application/wasm", ".mjs": "text/javascript", ".js": "text/javascript",
                      ".json": "application/json", ".wgsl": "text/plain", ".glsl": "text/plain",
                      ".webmanifest": "application/manifest+json", ".safetensors": "application/octet-stream"}

    def end_headers(self):
        self.send_header("Cross-Origin-Opener-Policy", "same-origin")
        self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        self.send_header("Cross-Origin-Resource-Policy", "same-origin")
        super().end_headers()

    def log_message(self, format, *args):
        if os.environ.get("NEUROSCOPE_SERVER_LOG"):
            super().log_message(format, *args)


class ModelFolderHandler(StaticHandler):
    """``StaticHandler`` plus ``/models/<key>/<name>`` -> ``folders[key]/<name>``: only the
    model's own files (MODEL_FILES and its safetensors shards), never a path outside it."""

    folders = {}

    def translate_path(self, path):
        parts = urllib.parse.unquote(urllib.parse.urlsplit(path).path).split("/")
        if len(parts) == 4 and parts[1] == "models" and parts[2] in self.folders:
            name = parts[3]
            if name in MODEL_FILES or (name.endswith(".safetensors") and "/" not in name and name[:1] != "."):
                return os.path.join(self.folders[parts[2]], name)
            return os.path.join(self.folders[parts[2]], ".not-served")
        return super().translate_path(path)


def make_server(root, port=0, host="127.0.0.1", folders=None):
    """A threaded static server for ``root`` (port 0 picks a free one); ``folders`` maps a key
    to a model folder served at ``/models/<key>/``."""
    handler_class = StaticHandler
    if folders is not None:
        handler_class = type("BoundModelFolderHandler", (ModelFolderHandler,), {"folders": folders})
    handler = functools.partial(handler_class, directory=root)
    return http.server.ThreadingHTTPServer((host, port), handler)


def serve_in_thread(root, port=0, folders=None):
    """Start ``make_server`` in a daemon thread; returns (server, base_url)."""
    server = make_server(root, port, folders=folders)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://localhost:{server.server_address[1]}"


# -- where the site comes from ---------------------------------------------------------------
def is_site(folder):
    return os.path.isfile(os.path.join(folder, ENTRY)) and os.path.isfile(os.path.join(folder, BUILD_MARKER))


def find_site(build=True):
    """The folder of a built Lens: ``$NEUROSCOPE_SITE``, the package's ``site/``, or the
    checkout's ``dist/`` (built or rebuilt here when ``build`` and npm's packages allow)."""
    configured = os.environ.get(SITE_ENV)
    if configured:
        if not is_site(configured):
            raise SiteNotFoundError(f"{SITE_ENV}={configured!r} is not a built Lens: expected {ENTRY} and "
                                    f"{BUILD_MARKER} in it (python build.py build --out {configured})")
        return os.path.abspath(configured)
    packaged = os.path.join(PACKAGE_DIR, "site")
    if is_site(packaged):
        return packaged
    return checkout_site(build)


def checkout_site(build=True):
    """dist/ of the checkout this package runs from, rebuilt when its sources are newer."""
    dist = os.path.join(CHECKOUT, "dist")
    in_checkout = all(os.path.exists(os.path.join(CHECKOUT, name)) for name in ("build.py", "web"))
    fresh = is_site(dist) and not _newer_sources(dist)
    if fresh or (is_site(dist) and not (build and in_checkout and can_build())):
        return dist
    if in_checkout and build and can_build():
        import importlib.util
        spec = importlib.util.spec_from_file_location("neuroscope_build", os.path.join(CHECKOUT, "build.py"))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module.command_build(dist)
    raise SiteNotFoundError(
        "no built NeuroScope Lens was found and none can be built here"
        + (" (npm is not installed)" if in_checkout else " (this package is not in a checkout)")
        + f". Build it on a machine with Node.js 20+ and npm: `python build.py build --out DIR` in the "
        f"NeuroScope repository, then set {SITE_ENV}=DIR (or copy DIR to {packaged_site()})")


def packaged_site():
    return os.path.join(PACKAGE_DIR, "site")


def can_build():
    """npm is on PATH or node_modules is already installed (build.py runs ``npm ci`` if stale)."""
    return shutil.which("npm") is not None or os.path.isdir(os.path.join(CHECKOUT, "node_modules", "pyodide"))


def _newer_sources(dist):
    """Whether any file of the site's sources changed after dist/ was built."""
    built = os.path.getmtime(os.path.join(dist, BUILD_MARKER))
    for folder in ("web", "worker", "shaders", os.path.join("py", "neuroscope")):
        for path, dirs, names in os.walk(os.path.join(CHECKOUT, folder)):
            dirs[:] = [d for d in dirs if d not in ("__pycache__", "site") and not d.startswith(".")]
            if any(os.path.getmtime(os.path.join(path, name)) > built for name in names):
                return True
    return False


# -- model folders ---------------------------------------------------------------------------
def weights_files(folder):
    """The safetensors files of a Hugging Face folder, in the order of its index (or the one file)."""
    index = os.path.join(folder, "model.safetensors.index.json")
    if os.path.isfile(index):
        with open(index, encoding="utf-8") as handle:
            return sorted(set(json.load(handle)["weight_map"].values()))
    if os.path.isfile(os.path.join(folder, "model.safetensors")):
        return ["model.safetensors"]
    raise FileNotFoundError(f"{folder!r} holds no model.safetensors (nor model.safetensors.index.json); "
                            "expected a Hugging Face folder saved with safetensors")


HASH_PIECE = 8 << 20  # worker/weights.js HASH_PIECE


def file_sha256(path):
    """The Lens's content hash of a weights file (worker/weights.js contentHash): SHA-256 over
    the SHA-256 digests of its 8 MiB pieces (one piece for an empty file)."""
    digests = []
    with open(path, "rb") as handle:
        while True:
            piece = handle.read(HASH_PIECE)
            if piece or not digests:
                digests.append(hashlib.sha256(piece).digest())
            if len(piece) < HASH_PIECE:
                break
    return hashlib.sha256(b"".join(digests)).hexdigest()


def weights_sha256(folder):
    """The hash the Lens pins in a share link (web/app.js contentHash): SHA-256 of the one
    weights file; None for sharded weights, whose combined hash depends on download order."""
    files = weights_files(folder)
    return file_sha256(os.path.join(folder, files[0])) if len(files) == 1 else None


__all__ = ["SiteNotFoundError", "StaticHandler", "find_site", "make_server", "serve_in_thread",
           "weights_sha256"]
