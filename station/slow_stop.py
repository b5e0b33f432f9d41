"""What a stop that takes too long is waiting for.

Ctrl-C or SIGTERM closes attempts, recordings, the uplink and the UI in order; that normally takes
a few seconds. When it does not, an operator (or systemd, which kills after TimeoutStopSec) sees
only a process that will not go away. `watch_stop` arms a report for that case: after
`after_s` it prints every asyncio task still pending (from the loop, if the loop still turns) and
every thread's Python stack (from faulthandler, which works even when the loop is blocked), so
the hang can be found from the log alone. It prints nothing when the stop finishes in time.
"""

from __future__ import annotations

import asyncio
import contextlib
import faulthandler
import io
import sys
import threading
from collections.abc import Iterator
from typing import TextIO

SLOW_STOP_S = 20.0
"""A clean stop takes 2-5 s on the 2-core box (docs/PERFORMANCE.md); 20 s is clearly stuck, and
still before systemd's default TimeoutStopSec of 90 s."""


class SlowStop:
    """The report for one stop: `arm` when the stop is asked (from the loop's thread), and leave
    `watch_stop` when everything is closed, which disarms it."""

    def __init__(self, command: str, after_s: float, out: TextIO) -> None:
        self.command = command
        self.after_s = after_s
        self._out = out
        self._timer: threading.Timer | None = None
        self._thread_stacks = False

    def arm(self) -> None:
        if self._timer is not None:
            return
        loop = asyncio.get_running_loop()

        def tasks_on_loop() -> None:
            self._out.write(_pending_tasks(self.command, self.after_s))
            self._out.flush()

        def fire() -> None:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: the thread stacks still come
                loop.call_soon_threadsafe(tasks_on_loop)

        self._timer = threading.Timer(self.after_s, fire)
        self._timer.daemon = True
        self._timer.name = "slow stop report"
        self._timer.start()
        self._thread_stacks = _arm_thread_stacks(self._out, self.after_s + min(1.0, self.after_s))  # tasks first

    def disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._thread_stacks:
            faulthandler.cancel_dump_traceback_later()
            self._thread_stacks = False


@contextlib.contextmanager
def watch_stop(command: str, after_s: float = SLOW_STOP_S, out: TextIO | None = None) -> Iterator[SlowStop]:
    """Around a whole `run` or `demo`: the report is armed by `SlowStop.arm`, never before."""
    slow = SlowStop(command, after_s, out if out is not None else sys.stderr)
    try:
        yield slow
    finally:
        slow.disarm()


def _arm_thread_stacks(stream: TextIO, after_s: float) -> bool:
    """faulthandler writes to a file descriptor; a stream without one (a test's StringIO) gets the
    task report only."""
    try:
        stream.fileno()
    except (AttributeError, OSError, io.UnsupportedOperation):
        return False
    faulthandler.dump_traceback_later(after_s, repeat=False, file=stream, exit=False)
    return True


def _pending_tasks(command: str, after_s: float) -> str:
    tasks = [t for t in asyncio.all_tasks() if not t.done()]
    lines = [f"examstation {command}: the stop is still waiting after {after_s:g} s on {len(tasks)} task(s); "
             "the stacks below show where; if it does not end, kill it (nothing acknowledged is lost: the "
             "database and the outbox are committed as they go) and report this output"]
    for task in sorted(tasks, key=lambda t: t.get_name()):
        lines.append(f"  task {task.get_name()!r}: {task.get_coro()!r}")
        lines += [f"    {where}" for where in _await_chain(task.get_coro())]
    return "\n".join(lines) + "\n"


def _await_chain(awaitable: object, limit: int = 12) -> list[str]:
    """Where a suspended coroutine waits, outermost first: Task.get_stack gives only the outermost
    frame of a coroutine, the interesting part is what it awaits, and what that awaits."""
    places: list[str] = []
    while awaitable is not None and len(places) < limit:
        frame = getattr(awaitable, "cr_frame", None) or getattr(awaitable, "gi_frame", None) \
            or getattr(awaitable, "ag_frame", None)
        if frame is None:
            if isinstance(awaitable, asyncio.Future):
                places.append(f"on {awaitable!r}"[:300])
            break
        places.append(f"{frame.f_code.co_filename}:{frame.f_lineno} in {frame.f_code.co_name}")
        awaitable = getattr(awaitable, "cr_await", None) or getattr(awaitable, "gi_yieldfrom", None) \
            or getattr(awaitable, "ag_await", None)
    return places
