"""Disk watermarks for the evidence store: warn early, and refuse new attempts rather than delete evidence.

Frigate's users lose retained footage when its disk runs low, because a space policy deletes it.
Here attempt-linked footage is never deleted for room. Instead:
- below `storage.min_free_gb` an alarm (`disk.low`) tells the administrator how many hours of
  recording are left at the cameras' measured rate, long before anything is at risk;
- below `storage.critical_free_gb` a second alarm (`disk.critical`), and `refusal()` makes the
  check-in of new candidates fail with that reason; attempts already running go on recording.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Final

from station.config import Storage
from station.db.disk import free_bytes, free_space_todo
from station.events import AlarmEvent, EventBus

log = logging.getLogger(__name__)

GB: Final = 1_000_000_000
CHECK_EVERY_S: Final = 10.0
LOW: Final = "disk.low"
CRITICAL: Final = "disk.critical"


class DiskWatch:
    def __init__(self, folder: Path, storage: Storage, events: EventBus | None, utc_ns: Callable[[], int],
                 bytes_per_s: Callable[[], float] = lambda: 0.0,
                 free: Callable[[Path], int | None] = free_bytes) -> None:
        """`bytes_per_s`: what the recorder writes now (to say how long the room lasts)."""
        self.folder = folder
        self.storage = storage
        self.events = events
        self._utc_ns = utc_ns
        self._rate = bytes_per_s
        self._free = free
        self.level: str | None = None
        """None, LOW or CRITICAL: the latest check's verdict."""
        self.free_gb: float | None = None

    async def run(self) -> None:
        while True:
            await asyncio.to_thread(self.check)
            await asyncio.sleep(CHECK_EVERY_S)

    def check(self) -> str | None:
        free = self._free(self.folder)
        if free is None:
            return self.level
        self.free_gb = free / GB
        level = (CRITICAL if self.free_gb < self.storage.critical_free_gb
                 else LOW if self.free_gb < self.storage.min_free_gb else None)
        if level != self.level:
            if self.level is not None:
                self._publish(self.level, f"disk: {self.free_gb:.1f} GB free under {self.folder} again", "",
                              cleared=True)
            if level is not None:
                self._publish(level, *self._describe(level))
            self.level = level
        return level

    def refusal(self) -> str | None:
        """Why no new attempt may start now, or None."""
        if self.level != CRITICAL:
            return None
        return (f"the disk holding {self.folder} has {self.free_gb:.1f} GB free, below the critical mark of "
                f"{self.storage.critical_free_gb:g} GB: no new attempt starts, so that no evidence is ever deleted "
                f"for room; {free_space_todo(self.folder)}, or add a disk")

    def _describe(self, level: str) -> tuple[str, str]:
        rate = self._rate()
        left = ""
        if rate > 0 and self.free_gb is not None:
            room = max(0.0, self.free_gb - self.storage.critical_free_gb) * GB
            left = (f"; at the cameras' current {rate * 8 / 1e6:.1f} Mbit/s that is {room / rate / 3600:.1f} h of "
                    "recording")
        if level == CRITICAL:
            return (f"disk: {self.free_gb:.1f} GB free under {self.folder}, below the critical mark of "
                    f"{self.storage.critical_free_gb:g} GB: new candidates cannot check in; running attempts go on "
                    "recording", f"{free_space_todo(self.folder)}, or add a disk; evidence is never deleted for room")
        return (f"disk: {self.free_gb:.1f} GB free under {self.folder}, below the warning mark of "
                f"{self.storage.min_free_gb:g} GB{left}",
                f"{free_space_todo(self.folder)} before it reaches {self.storage.critical_free_gb:g} GB, when new "
                "attempts are refused")

    def _publish(self, code: str, what: str, todo: str, cleared: bool = False) -> None:
        (log.warning if cleared else log.error)("%s%s", "" if cleared else "ALARM ", what)
        if self.events is not None:
            self.events.publish(AlarmEvent(code, what, todo, None, self._utc_ns(), cleared=cleared))
