"""Progress of long work: a text bar on stderr in CPython, the page's progress bar in the
browser (the worker's ``neuroscope_js.progress``), or a callable of the caller's.

Below the model and the analyses, which both report through ``progress_reporter``.
"""

import sys
import time


class ProgressBar:
    """A plain text progress bar on stderr: the default ``progress`` of the sweeps."""

    def __init__(self, label, stream=None, width=30, min_interval=0.1):
        self.label, self.width, self.min_interval = label, width, min_interval
        self.stream = stream if stream is not None else sys.stderr
        self._last = 0.0

    def __call__(self, done, total):
        now = time.monotonic()
        if done < total and now - self._last < self.min_interval:
            return
        self._last = now
        filled = int(self.width * done / total) if total else self.width
        bar = "#" * filled + "." * (self.width - filled)
        self.stream.write(f"\r{self.label} [{bar}] {done}/{total}")
        if done >= total:
            self.stream.write("\n")
        self.stream.flush()


def _browser_progress():
    """The worker's progress event sender (worker/worker.js), or None outside the browser."""
    try:
        import neuroscope_js
    except ImportError:
        return None
    return getattr(neuroscope_js, "progress", None)


def browser_interrupted():
    """The worker's check for an interrupt Python has not raised yet, or None outside the browser."""
    try:
        import neuroscope_js
    except ImportError:
        return None
    return getattr(neuroscope_js, "interrupted", None)


def progress_reporter(progress, label):
    """``progress``: None -> a stderr bar (in the browser: the page's progress bar, and a
    pending interrupt raised as KeyboardInterrupt when progress is reported); False -> silent;
    a callable ``(done, total)`` -> itself."""
    if progress is None:
        host = _browser_progress()
        if not host:
            return ProgressBar(label)
        interrupted = browser_interrupted()

        def report(done, total):
            if interrupted is not None and interrupted():
                raise KeyboardInterrupt(f"{label}: interrupted")
            host(label, done, total)
        return report
    if progress is False:
        return lambda done, total: None
    if not callable(progress):
        raise TypeError(f"progress={progress!r}; expected None (a stderr bar), False, or a "
                        "callable (done, total)")
    return progress
