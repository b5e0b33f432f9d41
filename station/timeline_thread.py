"""The writer thread of `station.timeline_store.TimelineWriter`: it takes queued records in
batches and commits them, each row hash-chained to the previous row of its attempt.

Split from the producer side by role: this half runs only in the writer's own thread and talks to
the database; `timeline_store` is what the rest of the station calls. Errors while committing:
"database is locked", I/O errors and a full disk (OperationalError) are retried with capped
backoff, keeping the batch; anything else stops the writer for good.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import insert, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from station.db.digest import timeline_row_hash
from station.db.engine import Database
from station.db.errors import DatabaseError
from station.db.models import TimelineRow

log = logging.getLogger(__name__)


class TimelineWriteError(DatabaseError):
    """Timeline records could not be stored; the message says how many and why."""


@dataclass(frozen=True, slots=True)
class Pending:
    attempt_id: str
    record_json: str
    appended_mono: float


@dataclass(slots=True)
class Txn:
    """Records plus a change of state that must commit together (see TimelineWriter.commit_with)."""

    items: list[Pending]
    fn: Callable[[Session], object]
    done: threading.Event
    result: object = None
    error: BaseException | None = None


@dataclass(slots=True)
class Waiter:
    target: int
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[int]


class WriterThread:
    """The state both halves share (under `_cond`), and the thread's loop."""

    _db: Database
    _interval_s: float
    _max_batch: int
    _cond: threading.Condition
    _pending: deque[Pending | Txn]
    _committed: int
    _flush_target: int
    _closing: bool
    _abandon: bool
    _failure: BaseException | None
    _last_error: BaseException | None
    _failing_since: float | None
    _waiters: list[Waiter]
    _heads: dict[str, tuple[int, str | None]]
    _appended: int
    _batch_since: float | None
    """When the oldest record of the batch being committed was queued (None between batches)."""

    # -- writer thread ---------------------------------------------------------------------------

    def _run(self) -> None:
        retry: list[Pending | Txn] = []
        backoff_s = 0.05
        while True:
            batch = retry or self._next_batch()
            if not batch:
                return
            try:
                self._write(batch)
            except OperationalError as err:  # locked, I/O error, disk full: keep the batch, try again
                with self._cond:
                    if self._last_error is None:
                        log.warning("timeline writer for %s: commit of %d records failed (%s); retrying",
                                    self._db.path, len(batch), err.orig)
                        self._failing_since = time.monotonic()
                    self._last_error = err
                    if self._cond.wait_for(lambda: self._abandon, timeout=backoff_s):
                        return
                retry, backoff_s = batch, min(backoff_s * 2, 2.0)
                continue
            except BaseException as err:  # anything else will not heal by retrying
                log.error("timeline writer for %s stopped: %d records not stored: %r",
                          self._db.path, len(batch), err)
                with self._cond:
                    self._failure = err
                    self._cond.notify_all()
                    waiters, self._waiters = self._waiters, []
                for w in waiters:
                    self._wake(w, None)
                return
            retry, backoff_s = [], 0.05
            with self._cond:
                self._batch_since = None
                if self._last_error is not None:
                    log.warning("timeline writer for %s: commits succeed again", self._db.path)
                    self._last_error = None
                    self._failing_since = None
                self._committed += sum(len(e.items) if isinstance(e, Txn) and e.error is None else
                                       0 if isinstance(e, Txn) else 1 for e in batch)
                self._cond.notify_all()
                done = [w for w in self._waiters if w.target <= self._committed]
                self._waiters = [w for w in self._waiters if w.target > self._committed]
            for w in done:
                self._wake(w, w.target)

    def _next_batch(self) -> list[Pending | Txn]:
        """Wait for records, then until the oldest is flush_interval old (or a flush/close); take a batch."""
        with self._cond:
            while not self._pending and not self._closing:
                self._cond.wait(timeout=0.5)
                if not threading.main_thread().is_alive():
                    self._closing = True  # the program is ending without close(): store what is queued
            if not self._pending:
                return []
            head = self._pending[0]
            deadline = (head.appended_mono if isinstance(head, Pending) else 0.0) + self._interval_s
            self._cond.wait_for(
                lambda: self._closing or self._flush_target > self._committed
                or len(self._pending) >= self._max_batch,
                timeout=max(0.0, deadline - time.monotonic()),
            )
            n = min(len(self._pending), self._max_batch)
            batch: list[Pending | Txn] = []
            while self._pending and len(batch) < n:
                entry = self._pending.popleft()
                batch.append(entry)
                if isinstance(entry, Txn):
                    break  # a state change ends its batch, so its caller is answered at once
            self._cond.notify_all()  # room for appenders waiting on a full queue
            self._batch_since = next((e.appended_mono for e in batch if isinstance(e, Pending)), time.monotonic())
            return batch

    def _write(self, batch: list[Pending | Txn]) -> None:
        heads: dict[str, tuple[int, str | None]] = {}

        def rows_for(items: list[Pending], session: Session,
                     into: dict[str, tuple[int, str | None]]) -> list[dict[str, object]]:
            rows: list[dict[str, object]] = []
            for item in items:
                head = into.get(item.attempt_id) or heads.get(item.attempt_id) or self._heads.get(item.attempt_id)
                if head is None:
                    last = session.execute(
                        select(TimelineRow.seq, TimelineRow.row_hash)
                        .where(TimelineRow.attempt_id == item.attempt_id)
                        .order_by(TimelineRow.seq.desc()).limit(1)
                    ).first()
                    head = (0, None) if last is None else (last.seq + 1, last.row_hash)
                seq, prev_hash = head
                row_hash = timeline_row_hash(item.attempt_id, prev_hash, item.record_json)
                rows.append({"attempt_id": item.attempt_id, "seq": seq, "record": item.record_json,
                             "row_hash": row_hash})
                into[item.attempt_id] = (seq + 1, row_hash)
            return rows

        txns = [e for e in batch if isinstance(e, Txn)]
        with self._db.write() as session:
            plain = [e for e in batch if isinstance(e, Pending)]
            if plain:
                session.execute(insert(TimelineRow), rows_for(plain, session, heads))
            for txn in txns:
                mine: dict[str, tuple[int, str | None]] = {}
                try:
                    with session.begin_nested():
                        if txn.items:
                            session.execute(insert(TimelineRow), rows_for(txn.items, session, mine))
                        txn.result = txn.fn(session)
                except OperationalError:
                    raise
                except Exception as err:  # the state change is refused: its records go with it
                    txn.error = err
                    with self._cond:
                        self._appended -= len(txn.items)
                    continue
                heads.update(mine)
        self._heads.update(heads)  # only once committed
        for txn in txns:
            txn.done.set()

    @staticmethod
    def _wake(waiter: Waiter, value: int | None) -> None:
        def settle() -> None:
            if waiter.future.done():
                return
            if value is None:
                waiter.future.set_exception(TimelineWriteError("the timeline writer stopped; see the log"))
            else:
                waiter.future.set_result(value)

        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is waiting any more
            waiter.loop.call_soon_threadsafe(settle)
