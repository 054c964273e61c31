"""The CPython backends keep a pass's freed memory for the next one (backends/host_malloc.py):
checked by what the kernel sees, the resident memory after freeing a 64 MiB block made of
8 MiB pieces, in fresh processes with and without the opt-out."""

import os
import platform
import subprocess
import sys
import textwrap

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = textwrap.dedent("""
    import re, sys
    import numpy as np
    import neuroscope

    def rss_mib():
        with open("/proc/self/status") as status:
            return int(re.search(r"VmRSS:\\s+(\\d+)", status.read()).group(1)) / 1024

    neuroscope.set_backend("numpy")
    from neuroscope.backends import host_malloc
    pieces = [np.ones(1 << 20) for _ in range(8)]  # 8 x 8 MiB, touched
    before = rss_mib()
    del pieces
    print(host_malloc._applied, round(before - rss_mib()))
""")


def _run(**env):
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "NEUROSCOPE_MALLOC"))}
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120,
                            env=dict(environ, PYTHONPATH=os.path.join(ROOT, "py"), **env))
    assert result.returncode == 0, result.stderr
    applied, released = result.stdout.split()
    return applied == "True", int(released)


@pytest.mark.skipif(not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
                    reason="mallopt is glibc's (Linux)")
def test_freed_activations_stay_for_the_next_pass_unless_opted_out():
    applied, released = _run()
    assert applied and released < 8  # the 64 MiB stays in the heap
    applied, released = _run(NEUROSCOPE_MALLOC="default")
    assert not applied and released > 56  # glibc's defaults: mapped blocks go back to the kernel
    applied, _ = _run(MALLOC_TRIM_THRESHOLD_="65536")
    assert not applied  # the user's own setting wins
