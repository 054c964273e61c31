"""Loading models: the Hugging Face folder layout, and random models from a config.

``load_huggingface`` reads ``config.json``, ``model.safetensors`` (or the sharded
``model.safetensors.index.json``) and ``tokenizer.json`` from a folder, a file
inside one, the local Hugging Face cache for a hub name, or a URL (in the
browser also a path relative to the page). ``open_location`` picks the opener
(remote.py) that reads them; weights are read by NeuroScope's own safetensors
reader and converted on the backend.
"""

import os
import re
import urllib.parse

from ..backends import get_backend
from ..tensor import Tensor
from .config import ModelConfig
from .families import MAPPERS, canonical_shapes, check_shapes
from .remote import CONFIG, FolderOpener, UrlOpener, hub_url, is_url, page_url, site_url

# In the browser: the built-in model's files in the served site (build.py copies them
# there; the package zip holds only its small files), and the hub's file addresses.
DEMO_SITE_PATH = "py/neuroscope/demo/model/"
HUB_ENDPOINT = "https://huggingface.co"
_HUB_NAME = re.compile(r"[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?")


def open_location(name_or_path):
    """The opener for a folder, a file in one, a hub name or a URL.

    In the browser a location that is neither a URL nor a path in Pyodide's file
    system is a path relative to the page (``"models/gpt2"``); "demo" is the built-in
    model served with the site; a hub name (``"gpt2"``, ``"org/name"``) with no
    config.json at that relative path is read from the Hugging Face hub.
    """
    location = os.fspath(name_or_path)
    if is_url(location):
        return UrlOpener(location)
    page = page_url()
    if page is not None and not os.path.exists(location):
        if location == "demo":
            return UrlOpener(urllib.parse.urljoin(site_url() or page, DEMO_SITE_PATH))
        relative = UrlOpener(urllib.parse.urljoin(page, location))
        if _HUB_NAME.fullmatch(location) and relative.read(CONFIG, required=False) is None:
            return UrlOpener(hub_file_url(location))
        return relative
    return FolderOpener(resolve_folder(location))


def hub_endpoint():
    """The Hugging Face hub's address: ``HF_ENDPOINT`` (a mirror, as ``huggingface_hub``
    reads it), in the browser the page's ``?hub=`` parameter, else huggingface.co."""
    return (hub_url() or os.environ.get("HF_ENDPOINT") or HUB_ENDPOINT).rstrip("/")


def hub_file_url(name):
    """The folder URL of a hub model's files (main revision)."""
    return f"{hub_endpoint()}/{name}/resolve/main/"


def resolve_folder(name_or_path):
    """A local folder holding config.json for a path or a hub name ("demo": the built-in model)."""
    path = os.fspath(name_or_path)
    if path == "demo":  # shipped inside the package (neuroscope/demo/model), so no network is needed
        return os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "demo", "model")
    if os.path.isfile(path):
        path = os.path.dirname(path) or "."
    if os.path.isdir(path):
        return path
    cached = _hub_cache_snapshot(path)
    if cached:
        return cached
    downloaded, why = _download_from_hub(path)
    if downloaded:
        return downloaded
    raise FileNotFoundError(
        f"{path!r} is neither a folder nor a model in the local Hugging Face cache, and it could not "
        f"be downloaded ({why}); expected a folder with config.json, model.safetensors and tokenizer.json")


_HUB_FILES = ["config.json", "model.safetensors", "model.safetensors.index.json",
              "model-*.safetensors", "tokenizer.json"]


def _download_from_hub(name):
    """Fetch only the files NeuroScope reads, with huggingface_hub's progress bars."""
    if name.count("/") > 1 or name.startswith((".", "/")):
        return None, "not a hub name"
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        return None, "huggingface_hub is not installed"
    try:
        return snapshot_download(name, allow_patterns=_HUB_FILES), None
    except Exception as error:  # offline, unknown repo, gated model: all become one message
        return None, f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"


def _hub_cache_snapshot(name):
    if name.count("/") > 1 or not name:
        return None
    home = os.environ.get("HF_HUB_CACHE") or os.path.join(
        os.environ.get("HF_HOME", os.path.join(os.path.expanduser("~"), ".cache", "huggingface")), "hub")
    snapshots = os.path.join(home, "models--" + name.replace("/", "--"), "snapshots")
    if not os.path.isdir(snapshots):
        return None
    for snapshot in sorted(os.listdir(snapshots)):
        folder = os.path.join(snapshots, snapshot)
        if os.path.exists(os.path.join(folder, "config.json")):
            return folder
    return None


def load_huggingface(model_class, name_or_path, backend=None, dtype="float32"):
    backend = backend or get_backend()
    # Checked before anything is read: an integer dtype loaded truncated weights, and a dtype
    # the backend cannot hold failed deep inside it, after the file was read.
    if dtype not in ("float32", "float16", "bfloat16"):
        raise ValueError(f"dtype={dtype!r}; expected 'float32' (half-precision files upcast on load), "
                         f"'float16' or 'bfloat16' (kept as the file has them)")
    if dtype not in backend.weight_dtypes:
        raise ValueError(f"dtype={dtype!r}: the {backend.name} backend keeps weights in "
                         f"{' or '.join(backend.weight_dtypes)}; dtype='float32' upcasts the file"
                         + ("" if backend.name == "torch" else " (the torch backend keeps bfloat16)"))
    opener = open_location(name_or_path)
    cfg = opener.config()
    weights = weights_from_reader(cfg, opener.weights(), backend, dtype)
    return model_class(cfg, weights, opener.tokenizer(), backend, source=opener.source)


def weights_from_reader(cfg, reader, backend, dtype="float32"):
    """Canonical weights from a safetensors reader (file or sharded index)."""
    names = set(reader.keys())

    def get(name):
        info = reader.info(name)  # raises ModelFormatError naming file and tensor
        tensor = Tensor(backend.from_bytes(reader.raw(name), info.dtype, info.shape, dtype), backend)
        reader.release(name)  # copied out: a mapped file's pages need not stay resident
        return tensor

    weights = MAPPERS[cfg.family](cfg, get, names)
    check_shapes(cfg, weights, getattr(reader, "name", "weights"))
    return weights


def random_model(model_class, config, seed=0, tokenizer=None, backend=None):
    """A model with HF-style random init: N(0, initializer_range) matrices, unit norms, zero biases."""
    backend = backend or get_backend()
    cfg = _as_config(config)
    draw = _normal_sampler(seed)
    weights = {}
    for name, shape in canonical_shapes(cfg).items():
        leaf = name.rsplit(".", 1)[1]
        if leaf == "w":
            weights[name] = Tensor(backend.full(shape, 1.0, "float32"), backend)
        elif leaf.startswith("b"):
            weights[name] = Tensor(backend.full(shape, 0.0, "float32"), backend)
        else:
            weights[name] = Tensor(backend.from_host(draw(shape, cfg.initializer_range), shape,
                                                     "float32"), backend)
    return model_class(cfg, weights, tokenizer, backend, source=f"random(seed={seed})")


def _as_config(config):
    if isinstance(config, ModelConfig):
        return config
    if hasattr(config, "to_dict"):  # a transformers PretrainedConfig
        config = config.to_dict()
    if isinstance(config, dict) and "model_type" in config and "family" not in config:
        return ModelConfig.from_hf(config, source="config")
    if isinstance(config, dict):
        return ModelConfig(**config)
    raise TypeError(f"expected a ModelConfig, a Hugging Face config or a dict, got {type(config).__name__}")


def _normal_sampler(seed):
    try:
        import numpy as np
    except ImportError:
        np = None
    if np is not None:
        rng = np.random.default_rng(seed)
        return lambda shape, std: rng.normal(0.0, std, size=shape).astype(np.float32)
    import random
    rng = random.Random(seed)
    return lambda shape, std: [rng.gauss(0.0, std) for _ in range(_prod(shape))]


def _prod(shape):
    out = 1
    for s in shape:
        out *= s
    return out
