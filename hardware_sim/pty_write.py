"""Writing to a simulated device's pty master without blocking the event loop.

A pty holds a few kilobytes; when nobody reads the other end (the controller is down, or the
cable is "unplugged"), a real device's UART just drops bytes, and so do the simulators after a
short wait, counting what they lost.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable

WRITE_WAIT_S = 1.0
"""How long to wait for room in a full pty before dropping the rest of a write."""


async def write_all(master: Callable[[], int | None], data: bytes) -> int:
    """Write `data` to the current master fd (it may vanish meanwhile); return the bytes dropped."""
    view = memoryview(data)
    while view:
        fd = master()
        if fd is None:
            return len(view)
        try:
            written = os.write(fd, view)
        except BlockingIOError:
            if not await _writable(fd):
                return len(view)
            continue
        view = view[written:]
    return 0


async def _writable(fd: int) -> bool:
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_writer(fd, wake)
    try:
        async with asyncio.timeout(WRITE_WAIT_S):
            await ready
        return True
    except TimeoutError:
        return False
    finally:
        loop.remove_writer(fd)
