"""Watching the station's store: an alarm, and the running items paused, while it cannot keep up.

Every sample of a running item is held in memory until the database commits it
(station.timeline_store). When commits stall (another process holds the write lock, the disk is
slow) or fail (the disk is full), the samples wait there up to a stated bound, so nothing is lost;
but an exam must not go on as if it were recorded. So, as soon as the store falls behind, this
raises an alarm that names the database and the disk, and pauses every running item ("storage",
audited when the store accepts it again, in order, with the moment it was decided); when the store
catches up, the alarm clears and the items it paused resume.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from devices.clock import Clock
from station import session as sm
from station.attempt_book import AttemptBook
from station.db.disk import free_space_todo, full_disk
from station.events import AlarmEvent
from station.timeline_store import StoreHealth

log = logging.getLogger(__name__)

STALL_S = 1.0
"""The oldest record waiting longer than this, or any failed commit, is the store falling behind
(records normally reach the disk within 200 ms)."""
CHECK_EVERY_S = 0.25
PAUSE_REASON = "storage"
ALARM = "storage.stalled"


class StorageWatch:
    def __init__(self, book: AttemptBook, clock: Clock) -> None:
        self.book = book
        self.clock = clock
        self.alarmed = False
        self.paused: set[str] = set()
        """Attempts this watch paused (and resumes once the store catches up)."""

    async def run(self) -> None:
        """Check the store every CHECK_EVERY_S until cancelled (a task beside the controller's loop)."""
        while True:
            await asyncio.to_thread(self.check)
            await asyncio.sleep(CHECK_EVERY_S)

    def check(self) -> None:
        health = self.book.writer.health()
        trouble = health.stopped or health.last_error or health.oldest_queued_s > STALL_S
        if trouble:
            self._pause_running()
        if trouble and not self.alarmed:
            self.alarmed = True
            what, todo = self._describe(health)
            log.error("ALARM %s; %s", what, todo)
            self.book.events.publish(AlarmEvent(ALARM, what, todo, None, self.clock.utc_ns()))
        elif self.alarmed and health.oldest_queued_s < STALL_S / 2:  # caught up: records go in as they come
            self.alarmed = False
            self._resume_paused()
            log.warning("storage: the station database stores records again; the items paused for it resumed")
            self.book.events.publish(AlarmEvent(ALARM, "the station database stores records again", "", None,
                                                self.clock.utc_ns(), cleared=True))

    def _describe(self, h: StoreHealth) -> tuple[str, str]:
        path = Path(self.book.db.path)
        error = h.stopped or h.last_error or "commits are slow"
        disk = full_disk(path.parent, error)
        if disk is not None:
            todo = f"{free_space_todo(path.parent)}: the items resume by themselves once the records are stored"
        else:
            disk = f"the database {path} has not stored records for {max(h.oldest_queued_s, h.failing_s):.1f} s"
            todo = ("check that no other program holds the database (a backup, sqlite3 open on it) and that the disk "
                    "answers: the items resume by themselves once the records are stored")
        what = (f"storage: {disk} ({error}); {h.queued} records are held in memory (at most {h.capacity}), "
                "and the running items are paused")
        return what, todo

    def _pause_running(self) -> None:
        for attempt_id in self.book.active_attempts().values():
            a = self.book.get(attempt_id)
            it = a.running_item
            if a.state == sm.State.RUNNING or (it is not None and PAUSE_REASON not in it.pause_reasons
                                                and a.state == sm.State.PAUSED):
                self.book.step(attempt_id, "storage-watch", sm.pause, PAUSE_REASON, wait=False)
                self.paused.add(attempt_id)

    def _resume_paused(self) -> None:
        for attempt_id in sorted(self.paused):
            a = self.book.get(attempt_id)
            if a.state in (sm.State.RUNNING, sm.State.PAUSED):
                self.book.step(attempt_id, "storage-watch", sm.resume, PAUSE_REASON)
        self.paused.clear()

