"""Backends: where tensor math runs.

``get_backend()`` returns the active backend: numpy when it is importable
(always in CPython), otherwise whatever ``set_backend`` installed (the JS
bridge in a stdlib-only Pyodide). Importing this module never imports numpy.
"""

from .base import PRIMITIVE_OPS, Backend

_active = None


def set_backend(backend):
    """Install ``backend`` (a ``Backend`` instance or the name ``"numpy"``)."""
    global _active
    if isinstance(backend, str):
        backend = _by_name(backend)
    if not isinstance(backend, Backend):
        raise TypeError(f"expected a Backend or a backend name, got {backend!r}")
    _active = backend
    return backend


def get_backend():
    """The active backend, creating the numpy one on first use."""
    global _active
    if _active is None:
        _active = _by_name("numpy")
    return _active


def _by_name(name):
    if name == "numpy":
        try:
            from .numpy_backend import NumpyBackend
        except ImportError as error:
            raise RuntimeError(
                "the numpy backend needs numpy, which is not installed here; "
                "install numpy or call neuroscope.set_backend() with another backend"
            ) from error
        return NumpyBackend()
    raise ValueError(f"unknown backend {name!r}; expected 'numpy' or a Backend instance")


__all__ = ["Backend", "PRIMITIVE_OPS", "get_backend", "set_backend"]
