"""Where an examiner's signature waits for the post-roll: a thread of its own, not the event loop's pool.

The last signature of an attempt waits, before its transaction, until every camera of the station
has recorded the post-roll into a stored segment (station.evidence_link.settle): 10 to 25 s with
the default recording settings. `asyncio.to_thread` runs on the loop's default executor, which has
min(32, cores + 4) threads: 6 on the 2-core edge box. In a hall whose examiners sign at about the
same time (bench/site.py signs 24 stations' results), six waiting signatures held all six threads,
and everything else the controller runs through `to_thread` queued behind them for up to a
minute: the item clocks' tick (time limits, the service watchdog), the uplink's outbox queries and
every other page and action of the UI. So each signature runs on a thread started for it, which
ends with it: signatures are a few a minute, a thread costs ~50 us to start, and nothing is left
running between them.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import itertools
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

_numbers = itertools.count(1)


async def run_sign_off(action: Callable[[], T]) -> T:
    """Run `action` (a blocking signature) on a new thread, with the caller's context; its result or
    error comes back here. Cancelling the caller does not stop the thread (as with `to_thread`)."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[T] = loop.create_future()
    ctx = contextvars.copy_context()

    def settle(value: T | None, error: BaseException | None) -> None:
        if done.cancelled():
            return
        if error is not None:
            done.set_exception(error)
        else:
            done.set_result(value)  # type: ignore[arg-type]

    def work() -> None:
        try:
            value = ctx.run(action)
        except BaseException as err:  # handed to the awaiting coroutine, which raises it
            outcome: tuple[T | None, BaseException | None] = (None, err)
        else:
            outcome = (value, None)
        # the loop may have closed meanwhile (the controller stopped; the signature is committed or not
        # by then, and the attempt's state says which): nobody is left to tell
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(settle, *outcome)

    threading.Thread(target=work, name=f"sign-off-{next(_numbers)}").start()
    return await done
