"""Suite-wide guards: a test that leaks threads or file descriptors fails.

Every simulator and client in this project is an async context manager that must stop what it
started; these checks hold the tests (and so the code) to that.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator

import hypothesis
import pytest

logging.getLogger("pymodbus").setLevel(logging.CRITICAL)


def _open_fds() -> set[int]:
    return {int(n) for n in os.listdir("/proc/self/fd")}


def _threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.is_alive()}


@pytest.fixture(autouse=True)
def no_leaks() -> Iterator[None]:
    threads_before = _threads()
    fds_before = _open_fds()
    yield
    deadline = time.monotonic() + 2.0
    while True:
        new_threads = {t for t in _threads() - threads_before if not t.daemon or "asyncio" not in t.name}
        new_fds = _open_fds() - fds_before
        # the listdir itself holds one descriptor while it runs
        if (not new_threads and len(new_fds) <= 1) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert not new_threads, f"test leaked threads: {sorted(t.name for t in new_threads)}"
    # A descriptor that another thread holds for an instant is not a leak: glibc's malloc, when a
    # thread's arena shrinks, opens /proc/sys/vm/overcommit_memory, reads and closes it. Only a
    # descriptor still open a moment later counts.
    if new_fds:
        time.sleep(0.2)
        new_fds &= _open_fds() - fds_before
    leaked = {fd: _describe(fd) for fd in new_fds}
    leaked = {fd: what for fd, what in leaked.items() if what}
    assert not leaked, f"test leaked file descriptors: {leaked}"


def _describe(fd: int) -> str:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return ""


# Hypothesis' per-example deadline (200 ms) measures the machine, not the code: the unit tests run
# beside others (make test's second phase), and a slow example is not a failure of what they check.
hypothesis.settings.register_profile("examstation", deadline=None)
hypothesis.settings.load_profile("examstation")
