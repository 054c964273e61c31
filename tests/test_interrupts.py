"""The worker's SIGINT handler (``js_backend.on_interrupt``, installed by worker/session.py),
run here with real signals: it raises KeyboardInterrupt at once, except while Python waits on
the device, where a raise can be lost and the wait's end raises instead (the browser side:
tests/browser/test_lens_session.py)."""

import os
import signal
import time

import pytest

from neuroscope.backends import js_backend


@pytest.fixture
def handler():
    previous = signal.signal(signal.SIGINT, js_backend.on_interrupt)
    yield
    signal.signal(signal.SIGINT, previous)


def _deliver():
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(0.05)  # Python runs the handler at its next check


def test_an_interrupt_outside_a_wait_raises_at_once(handler):
    with pytest.raises(KeyboardInterrupt):
        _deliver()


def test_an_interrupt_during_a_wait_is_left_to_the_wait_s_end(handler):
    js_backend._waits[0] += 1
    try:
        _deliver()  # no raise here: outside the browser no flag is pending, so nothing later
    finally:
        js_backend._waits[0] -= 1
    js_backend._raise_pending_interrupt()  # outside the browser: nothing pending, no raise
