"""station.heap: after the freeze the startup heap is out of the collector's full passes, and what is
made later is still collected. Runs in a child interpreter: the freeze is process-wide."""

from __future__ import annotations

import subprocess
import sys

CHILD = r"""
import gc, time
from station.heap import freeze_startup_heap
startup = [[i] for i in range(300_000)]  # a startup heap: long-lived containers
t0 = time.perf_counter(); gc.collect(); before = time.perf_counter() - t0
frozen = freeze_startup_heap()
t0 = time.perf_counter(); gc.collect(); after = time.perf_counter() - t0
class Cycle: pass
a, b = Cycle(), Cycle(); a.b, b.a = b, a
del a, b
assert gc.collect() >= 2, "a cycle made after the freeze is still collected"
assert frozen >= 300_000, frozen
assert after < before / 3, (before, after)
print("ok")
"""


def test_the_frozen_heap_is_not_walked_and_later_garbage_is_collected() -> None:
    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
