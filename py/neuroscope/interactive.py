"""``InteractiveLens``: the Lens opened from CPython on a model and a prompt.

``InteractiveLens(model).open_on("The cat sat on the mat")`` serves the built Lens (see
serve.py for where the site comes from) on a free localhost port, serves the model's files
beside it when they are a local Hugging Face folder (``/models/<sha256 prefix>/``), and
opens the user's browser on a share link holding that model and prompt (the same state
format as web/share.js, so the page opens it exactly as it opens a shared analysis).
``ModelSource`` says where a model comes from; the notebooks (notebook/) use it too.
"""

import hashlib
import os
import urllib.parse
import webbrowser

from .errors import NeuroScopeError
from .serve import find_site, serve_in_thread, weights_sha256
from .share import DEFAULT_PROMPT, share_link, share_state

VIEWS = ("tokens", "attention", "logit_lens", "activations", "ablation", "patching", "attribution", "circuit",
         "neurons", "probes", "notebook")  # web/state.js VIEWS
BACKENDS = ("webgpu", "webgl", "cpu")  # web/main.js ?backend=


class ModelSourceError(NeuroScopeError, ValueError):
    """A model whose files cannot be named or served (e.g. random weights never saved)."""


class ModelSource:
    """Where a model comes from: ``kind`` is "demo", "hub" (a name), "url" or "folder" (a local
    Hugging Face folder); ``ref`` is what loads it again (TransformerModel.from_huggingface)."""

    def __init__(self, kind, ref, model=None):
        self.kind, self.ref, self._model = kind, ref, model

    @classmethod
    def of(cls, model):
        """The source of a TransformerModel, or of a name / URL / path given as a string."""
        from .demo import MODEL_DIR
        if isinstance(model, ModelSource):
            return model
        given = model if isinstance(model, (str, os.PathLike)) else getattr(model, "source", None)
        loaded = None if isinstance(model, (str, os.PathLike)) else model
        if not isinstance(given, (str, os.PathLike)) or not str(given):
            raise ModelSourceError(f"{model!r} has no source to load it from (source={given!r}); expected "
                                   "a model loaded with TransformerModel.from_huggingface, a folder, a "
                                   "URL or a hub name")
        given = os.fspath(given)
        if given == "demo" or (os.path.isdir(given) and os.path.samefile(given, MODEL_DIR)):
            return cls("demo", "demo", loaded)
        if given.startswith(("http://", "https://")):
            return cls("url", given, loaded)
        if os.path.isfile(given):
            given = os.path.dirname(given) or "."
        if os.path.isdir(given):
            return cls("folder", os.path.abspath(given), loaded)
        if given.startswith("random("):
            raise ModelSourceError(f"the model's weights are random ({given}) and exist in no file; save "
                                   "them as a Hugging Face folder (config.json, model.safetensors, "
                                   "tokenizer.json) and load that folder first")
        return cls("hub", given, loaded)

    @property
    def folder(self):
        return self.ref if self.kind == "folder" else None

    def model(self):
        """The model itself (loaded from ``ref`` when only the source was given)."""
        if self._model is None:
            from .model import TransformerModel
            self._model = TransformerModel.from_huggingface(self.ref)
        return self._model

    def content_hash(self):
        """The model's ``content_hash()`` (configuration and weights), loading it if needed."""
        return self.model().content_hash()

    def weights_sha256(self):
        """SHA-256 of the weights file, as the Lens pins it; None where the Lens cannot check it."""
        if self.kind == "folder":
            return weights_sha256(self.folder)
        if self.kind == "demo":
            from .demo import MODEL_DIR
            return weights_sha256(MODEL_DIR)
        return None

    def __repr__(self):
        return f"ModelSource({self.kind!r}, {self.ref!r})"


class InteractiveLens:
    """The Lens served from this process on ``model`` (a TransformerModel, "demo", a hub name,
    a URL or a local Hugging Face folder). ``site``: a built Lens folder (default: find_site())."""

    def __init__(self, model="demo", site=None, port=0, backend=None):
        if backend is not None and backend not in BACKENDS:
            raise ValueError(f"backend={backend!r}; expected None (the browser's best) or one of {BACKENDS}")
        self.source = ModelSource.of(model)
        self.site = os.path.abspath(site) if site is not None else None
        self.port, self.backend = port, backend
        self.server = self.base_url = None
        self.folders = {}

    # -- the server ----------------------------------------------------------------------------
    def start(self):
        """Serve the site (and the model's folder); returns the base URL. Idempotent."""
        if self.server is None:
            site = self.site or find_site()
            self.server, self.base_url = serve_in_thread(site, self.port, folders=self.folders)
            self.site = site
        return self.base_url

    def close(self):
        """Stop the server and free its port (the page, if open, can no longer load files)."""
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def running(self):
        return self.server is not None

    def model_state(self, source=None):
        """A state's ``model`` for ``source`` (default: this lens's): {ref, sha256?}, where a local
        folder's ``ref`` is its URL on this server (served from then on)."""
        source = source or self.source
        sha256 = source.weights_sha256()
        pin = {"sha256": sha256} if sha256 else {}
        if source.kind != "folder":
            return {"ref": source.ref, **pin}
        key = hashlib.sha256((sha256 or source.folder).encode()).hexdigest()[:16]
        self.folders[key] = source.folder
        return {"ref": f"{self.start()}/models/{key}/", **pin}

    # -- opening the page ------------------------------------------------------------------------
    def url(self, state):
        """The Lens's address on this server with ``state`` in the fragment."""
        query = f"?backend={self.backend}" if self.backend else ""
        return share_link(state, f"{self.start()}/web/index.html{query}")

    def state(self, text=DEFAULT_PROMPT, view="tokens", notebook=()):
        if not isinstance(text, str) or not text:
            raise ValueError(f"open_on takes a non-empty prompt string; got {text!r}")
        if view not in VIEWS:
            raise ValueError(f"view={view!r}; expected one of {VIEWS}")
        state = share_state(self.source.ref, prompt=text, view=view, notebook=notebook)
        state["model"] = self.model_state()
        return state

    def open_on(self, text, open_browser=True, view="tokens"):
        """Serve the Lens and open the browser on ``text`` with this model; returns the URL
        (``open_browser=False``: the URL only, nothing is opened)."""
        url = self.url(self.state(text, view))
        if open_browser:
            webbrowser.open(url)
        return url

    def open_notebook(self, notebook, open_browser=True):
        """Open an ``InterpretabilityNotebook`` in the Lens served here (its code cells wait for
        a click); the notebook's model is served like this lens's own."""
        url = self.url(notebook.lens_state(lens=self))
        if open_browser:
            webbrowser.open(url)
        return url

    def __repr__(self):
        where = self.base_url if self.running else "not serving"
        return f"InteractiveLens({self.source.ref!r}, {where})"


def served_url(url):
    """Whether ``url`` is a model folder on an InteractiveLens server (it dies with the server)."""
    parts = urllib.parse.urlsplit(url)
    return parts.hostname in ("localhost", "127.0.0.1") and parts.path.startswith("/models/")


__all__ = ["InteractiveLens", "ModelSource", "ModelSourceError"]
