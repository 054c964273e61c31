"""Resident-memory readings for the benchmarks (Linux ``/proc``), one definition.

``status_kib("VmRSS")`` is the resident set now, ``status_kib("VmHWM")`` its high-water
mark; ``reset_peak_rss()`` sets the mark back to the current RSS (``clear_refs`` 5), so
a measurement's peak is not hidden by what ran before it. ``blas_summary()`` names the
BLAS libraries, kernels and thread counts this process loaded (threadpoolctl).
"""

import os
import re


def status_kib(field):
    with open("/proc/self/status") as status:
        return int(re.search(rf"^{field}:\s+(\d+) kB", status.read(), re.MULTILINE).group(1))


def reset_peak_rss():
    """Reset the RSS high-water mark (and so ``ru_maxrss``); False where the kernel refuses."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
    except OSError:
        return False
    return status_kib("VmHWM") <= status_kib("VmRSS") + 1024


def blas_summary():
    from threadpoolctl import threadpool_info

    return [f"{p['internal_api']} {p.get('version') or ''} {p.get('architecture') or ''} "
            f"x{p['num_threads']} ({os.path.basename(p['filepath'])})".replace("  ", " ")
            for p in threadpool_info()]
