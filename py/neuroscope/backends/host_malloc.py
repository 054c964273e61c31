"""glibc malloc settings for the CPython backends (numpy, torch on the CPU).

A forward pass allocates and frees the same large activations every time. With glibc's
defaults, blocks above a moving threshold (128 KiB to start) are fresh ``mmap`` pages that
are handed back on ``free`` and zero-faulted in again by the next pass, and freed heap
above 128 KiB is trimmed back to the kernel: on GPT-2 small at 8x128 that made a numpy
forward ~25% slower than with the memory kept (bench/forward.py). So, once, when a CPython
backend is first created, the package sets (``mallopt``):

* ``M_MMAP_THRESHOLD`` 32 MiB (glibc's largest): blocks under it come from the heap and
  are reused; larger ones (a logits tensor) are still mapped and returned;
* ``M_TRIM_THRESHOLD`` 1 GiB: freed heap stays for the next pass unless more than that is
  free at the top. Peak memory is unchanged; memory freed after a pass is kept for reuse.

Nothing is changed where the user already chose (``MALLOC_MMAP_THRESHOLD_`` or
``MALLOC_TRIM_THRESHOLD_`` in the environment), with ``NEUROSCOPE_MALLOC=default``, off
glibc (musl, macOS, Windows) or in Pyodide.
"""

import os
import sys

ENVIRONMENT_VARIABLE = "NEUROSCOPE_MALLOC"
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # <malloc.h>
SETTINGS = {_M_MMAP_THRESHOLD: 32 << 20, _M_TRIM_THRESHOLD: 1 << 30}
_applied = None


def tune_malloc():
    """Apply ``SETTINGS`` once per process where allowed; returns whether they are in force."""
    global _applied
    if _applied is None:
        _applied = _apply()
    return _applied


def _apply():
    if sys.platform != "linux" or os.environ.get(ENVIRONMENT_VARIABLE, "").lower() == "default":
        return False
    if any(name in os.environ for name in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")):
        return False
    import ctypes
    import platform

    if platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return all(mallopt(option, value) == 1 for option, value in SETTINGS.items())
