"""Device status changes, applied to the station in the order the device layer reported them.

The device hub reports a device going offline and coming back on the event loop; the services
record it in a worker thread (a commit waits for fsync). Handing each change to its own thread
lets a quick offline-online flap land in reverse, leaving an open gap in the item's timeline and
the device marked offline for good. One task applies them one after another instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from types import TracebackType

from devices.ref import DeviceRef

log = logging.getLogger(__name__)

Apply = Callable[[DeviceRef, bool, str], None]


class StatusFeed:
    """`feed(device, online, reason)` from the event loop; `apply` runs in a worker thread, in order.
    Use as `async with StatusFeed(services.device_status) as feed:`; leaving waits for the queue."""

    def __init__(self, apply: Apply) -> None:
        self._apply = apply
        self._queue: asyncio.Queue[tuple[DeviceRef, bool, str]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def __call__(self, device: DeviceRef, online: bool, reason: str) -> None:
        self._queue.put_nowait((device, online, reason))

    async def __aenter__(self) -> StatusFeed:
        self._task = asyncio.create_task(self._run(), name="device status feed")
        return self

    async def drain(self) -> None:
        """Wait until every change reported so far has been applied."""
        await self._queue.join()

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        if exc is None:
            await self.drain()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            device, online, reason = await self._queue.get()
            try:
                await asyncio.to_thread(self._apply, device, online, reason)
            except Exception:
                log.exception("%s: recording %s failed; the station may not know this device's state",
                              device, "online" if online else f"offline ({reason})")
            finally:
                self._queue.task_done()
