"""Backends: where tensor math runs.

``get_backend()`` returns the active backend. Until ``set_backend`` installs one, it
is the one named by the environment variable ``NEUROSCOPE_BACKEND`` (``numpy`` or
``torch``), else torch on the CPU when torch is installed (the fast CPython path), else
numpy (the reference); in a stdlib-only Pyodide, ``set_backend`` installs the JS bridge.
``set_backend("torch", device="cuda")`` picks the torch backend on a CUDA device.

Importing this module never imports numpy or torch: each backend module is imported
when it is first asked for (``default_backend_name`` only looks for torch).
"""

import importlib.util
import os
import sys
import warnings

from .base import PRIMITIVE_OPS, Backend

BACKEND_NAMES = ("numpy", "torch")
ENVIRONMENT_VARIABLE = "NEUROSCOPE_BACKEND"
_active = None


def set_backend(backend, **options):
    """Install ``backend``: a ``Backend`` instance, or a name in ``BACKEND_NAMES`` with
    that backend's options (``set_backend("torch", device="cuda")``)."""
    global _active
    if isinstance(backend, str):
        backend = _by_name(backend, **options)
    elif options:
        raise TypeError(f"options {sorted(options)} go with a backend name, not with {backend!r}")
    if not isinstance(backend, Backend):
        raise TypeError(f"expected a Backend or a backend name, got {backend!r}")
    _active = backend
    return backend


def get_backend():
    """The active backend, created on first use (``NEUROSCOPE_BACKEND``, else
    ``default_backend_name()``)."""
    global _active
    if _active is None:
        chosen = os.environ.get(ENVIRONMENT_VARIABLE)
        if chosen:
            _active = _by_name(chosen)
        else:
            _active = _default_backend()
    return _active


def default_backend_name():
    """``"torch"`` where torch is installed (never in Pyodide), else ``"numpy"``."""
    if sys.platform == "emscripten":
        return "numpy"
    try:
        installed = importlib.util.find_spec("torch") is not None
    except (ImportError, ValueError):  # ValueError: sys.modules["torch"] is None (blocked)
        installed = False
    return "torch" if installed else "numpy"


def _default_backend():
    name = default_backend_name()
    if name == "torch":
        try:
            return _by_name("torch")
        except RuntimeError as error:  # installed but broken: say so, and use the reference
            warnings.warn(f"{error}; using the numpy backend", RuntimeWarning, stacklevel=3)
    return _by_name("numpy")


def _by_name(name, **options):
    if name in BACKEND_NAMES:
        from .host_malloc import tune_malloc
        tune_malloc()  # glibc keeps a forward pass's freed memory for the next (host_malloc.py)
    if name == "numpy":
        if options:
            raise TypeError(f"the numpy backend takes no options, got {sorted(options)}")
        try:
            from .numpy_backend import NumpyBackend
        except ImportError as error:
            raise RuntimeError(
                "the numpy backend needs numpy, which is not installed here; "
                "install numpy or call neuroscope.set_backend() with another backend"
            ) from error
        return NumpyBackend()
    if name == "torch":
        try:
            from .torch_backend import TorchBackend
        except ImportError as error:
            raise RuntimeError(
                f"the torch backend needs torch and numpy ({error}); install them with "
                "`pip install neuroscope[torch]`, or use set_backend('numpy')"
            ) from error
        return TorchBackend(**options)
    raise ValueError(f"unknown backend {name!r}; expected one of {list(BACKEND_NAMES)} or a Backend "
                     f"instance (from set_backend or ${ENVIRONMENT_VARIABLE})")


__all__ = ["BACKEND_NAMES", "Backend", "PRIMITIVE_OPS", "default_backend_name", "get_backend", "set_backend"]
