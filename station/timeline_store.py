"""Append-only persistence of attempt timelines, as they happen, off the event loop.

`TimelineWriter.append(attempt_id, record)` serialises the record (canonical JSON, so a bad value
raises at the call site) and puts it in a bounded in-memory queue; a dedicated writer thread
commits what is queued in one transaction at the latest `flush_interval_s` (default 0.05 s, at
most 0.2 s) after the oldest queued record was appended, in batches of at most 1,000 rows so one
commit stays short (record on disk within 200 ms of `append`, the commit's fsync included), each
row hash-chained to the previous row of its attempt (see `station.db.digest.timeline_row_hash`).
The thread writes through `Database.write()`, i.e. the single writer connection and its lock.

Backpressure, by choice: when the queue is full (the disk has stalled for a while),
`append` blocks the caller for at most `append_block_s` (default 0.5 s) waiting for room, and
then raises `TimelineWriteError` instead of dropping the record or freezing the event loop for
good: a record is never silently lost, and the caller (the session service) learns that the
attempt can no longer be recorded and must pause it.

Errors while committing: "database is locked", I/O errors and a full disk (OperationalError) are
retried with capped backoff, keeping the batch; any other error (a missing attempt row, a
conflicting seq from a second writer) stops the writer, and every later `append`, `flush` and
`close` raises `TimelineWriteError` naming it. One TimelineWriter per database: it caches each
attempt's next seq and last hash.

`flush()` returns once everything appended before the call is committed (`aflush()` awaits the
same without blocking the loop); `close()` commits what is queued and joins the thread. If the
main thread ends without `close()`, the writer still commits what is queued, then exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TypeVar

from sqlalchemy import insert, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from scoring.timeline import Record, record_from_dict, record_to_dict
from station.audit import TIMELINE_SEALED, AuditEntry, Transaction, append
from station.db.digest import canonical_json, timeline_row_hash
from station.db.engine import Database
from station.db.errors import DatabaseError
from station.db.models import TimelineRow

log = logging.getLogger(__name__)

MAX_FLUSH_INTERVAL_S = 0.2


_R = TypeVar("_R")


class TimelineWriteError(DatabaseError):
    """Timeline records could not be stored; the message says how many and why."""


@dataclass(frozen=True, slots=True)
class _Pending:
    attempt_id: str
    record_json: str
    appended_mono: float


@dataclass(slots=True)
class _Txn:
    """Records plus a change of state that must commit together (see TimelineWriter.commit_with)."""

    items: list[_Pending]
    fn: Callable[[Session], object]
    done: threading.Event
    result: object = None
    error: BaseException | None = None


@dataclass(slots=True)
class _Waiter:
    target: int
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[int]


class TimelineWriter:
    """Persists timeline records in order, per attempt, from any thread or the event loop. See the module doc."""

    def __init__(
        self,
        db: Database,
        *,
        flush_interval_s: float = 0.05,
        max_queue: int = 10_000,
        max_batch: int = 1_000,
        append_block_s: float = 0.5,
        name: str = "timeline-writer",
    ) -> None:
        if not 0 < flush_interval_s <= MAX_FLUSH_INTERVAL_S:
            raise ValueError(f"flush_interval_s={flush_interval_s}: must be > 0 and <= {MAX_FLUSH_INTERVAL_S} s "
                             "(records must be on disk within 200 ms)")
        if max_queue < 1 or max_batch < 1 or append_block_s < 0:
            raise ValueError(f"max_queue={max_queue}, max_batch={max_batch} must be >= 1 and "
                             f"append_block_s={append_block_s} >= 0")
        self._db = db
        self._interval_s = flush_interval_s
        self._max_queue = max_queue
        self._max_batch = max_batch
        self._append_block_s = append_block_s
        self._cond = threading.Condition()
        self._pending: deque[_Pending | _Txn] = deque()
        self._appended = 0
        self._committed = 0
        self._flush_target = 0
        self._closing = False
        self._abandon = False
        self._failure: BaseException | None = None
        self._last_error: BaseException | None = None
        self._waiters: list[_Waiter] = []
        self._heads: dict[str, tuple[int, str | None]] = {}  # writer thread only: next seq, last row_hash
        self._thread = threading.Thread(target=self._run, name=name)
        self._thread.start()

    # -- producer side ---------------------------------------------------------------------------

    def append(self, attempt_id: str, record: Record) -> None:
        """Queue `record` as the next timeline row of `attempt_id`; returns at once unless the queue is full.

        The attempt row must exist by the time the batch is committed (foreign key).
        Raises ValueError for a record that is not plain JSON (NaN, objects), TimelineWriteError
        when the writer has failed or is closed, or the queue stayed full for append_block_s.
        """
        try:
            record_json = canonical_json(record_to_dict(record))
        except (TypeError, ValueError, KeyError) as err:
            raise ValueError(f"timeline record of attempt {attempt_id} cannot be stored as JSON ({err}): "
                             f"{record!r}") from err
        item = _Pending(attempt_id, record_json, time.monotonic())
        with self._cond:
            self._raise_if_unusable(attempt_id)
            if len(self._pending) >= self._max_queue:
                room = self._cond.wait_for(
                    lambda: len(self._pending) < self._max_queue or self._failure is not None or self._closing,
                    timeout=self._append_block_s,
                )
                self._raise_if_unusable(attempt_id)
                if not room:
                    raise TimelineWriteError(
                        f"timeline of attempt {attempt_id} in {self._db.path}: {len(self._pending)} records are "
                        f"queued and none was stored for {self._append_block_s} s (last error: "
                        f"{self._last_error or 'none, the disk is slow'}); this record was not accepted: "
                        "pause the attempt and check the disk"
                    )
            self._pending.append(item)
            self._appended += 1
            if len(self._pending) == 1 or len(self._pending) >= self._max_batch:
                self._cond.notify_all()

    def flush(self, timeout_s: float | None = 30.0) -> int:
        """Block until every record appended before this call is committed; return how many that is."""
        with self._cond:
            target = self._request_flush()
            self._cond.wait_for(
                lambda: self._committed >= target or self._failure is not None or not self._thread.is_alive(),
                timeout=timeout_s,
            )
            if self._committed >= target:
                return target
            raise self._not_stored(target, timeout_s)

    def commit_with(self, records: Sequence[tuple[str, Record]], fn: Callable[[Session], _R],
                    timeout_s: float = 30.0) -> _R:
        """Store `records` and run `fn` (the state change they belong to) in ONE transaction, after
        every record appended before; block until committed and return what `fn` returned.

        This is how an item's start or end reaches the timeline together with the attempt's new
        state and its audit entry: a kill -9 leaves both or neither. If `fn` raises, neither is
        stored (the records appended before still are) and the error is raised here.
        """
        items = []
        for attempt_id, record in records:
            try:
                items.append(_Pending(attempt_id, canonical_json(record_to_dict(record)), time.monotonic()))
            except (TypeError, ValueError, KeyError) as err:
                raise ValueError(f"timeline record of attempt {attempt_id} cannot be stored as JSON ({err})") from err
        txn = _Txn(items, fn, threading.Event())
        with self._cond:
            self._raise_if_unusable(records[0][0] if records else "-")
            self._pending.append(txn)
            self._appended += len(items)
            self._flush_target = max(self._flush_target, self._appended)
            self._cond.notify_all()
        if not txn.done.wait(timeout_s):
            raise TimelineWriteError(f"timeline writer for {self._db.path}: a state change was not committed within "
                                     f"{timeout_s} s (last error: {self._last_error or 'none'})")
        if txn.error is not None:
            raise txn.error
        return txn.result  # type: ignore[return-value]

    async def aflush(self, timeout_s: float | None = 30.0) -> int:
        """`flush()` for the event loop: awaits the commit without blocking the loop."""
        loop = asyncio.get_running_loop()
        with self._cond:
            target = self._request_flush()
            if self._committed >= target:
                return target
            if self._failure is not None or not self._thread.is_alive():
                raise self._not_stored(target, None)
            waiter = _Waiter(target, loop, loop.create_future())
            self._waiters.append(waiter)
        try:
            async with asyncio.timeout(timeout_s):
                return await waiter.future
        except TimeoutError:
            with self._cond:
                raise self._not_stored(target, timeout_s) from None
        finally:
            with self._cond, contextlib.suppress(ValueError):
                self._waiters.remove(waiter)

    def close(self, timeout_s: float = 30.0) -> None:
        """Commit what is queued, stop the thread and join it. Raises TimelineWriteError if records were lost."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            with self._cond:
                self._abandon = True
                self._cond.notify_all()
            self._thread.join()
        with self._cond:
            lost = self._appended - self._committed
            if lost:
                raise TimelineWriteError(
                    f"timeline writer for {self._db.path} closed with {lost} records not stored "
                    f"({self._failure or self._last_error or 'timed out'}); those attempts' timelines are incomplete"
                )

    @property
    def committed(self) -> int:
        """Records committed so far (since this writer started)."""
        with self._cond:
            return self._committed

    @property
    def appended(self) -> int:
        """Records accepted by `append` so far."""
        with self._cond:
            return self._appended

    def __enter__(self) -> TimelineWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _request_flush(self) -> int:
        target = self._appended
        if target > self._flush_target:
            self._flush_target = target
            self._cond.notify_all()
        return target

    def _raise_if_unusable(self, attempt_id: str) -> None:
        if self._failure is not None:
            raise TimelineWriteError(
                f"timeline of attempt {attempt_id} in {self._db.path}: the writer stopped after "
                f"{self._failure!r}; records are no longer stored"
            ) from self._failure
        if self._closing:
            raise TimelineWriteError(f"timeline of attempt {attempt_id} in {self._db.path}: the writer is closed")

    def _not_stored(self, target: int, timeout_s: float | None) -> TimelineWriteError:
        why = (f"the writer stopped after {self._failure!r}" if self._failure is not None
               else f"not committed within {timeout_s} s (last error: {self._last_error or 'none'})")
        err = TimelineWriteError(f"timeline writer for {self._db.path}: {target - self._committed} records "
                                 f"appended before the flush are not stored: {why}")
        err.__cause__ = self._failure
        return err

    # -- writer thread ---------------------------------------------------------------------------

    def _run(self) -> None:
        retry: list[_Pending | _Txn] = []
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
                if self._last_error is not None:
                    log.warning("timeline writer for %s: commits succeed again", self._db.path)
                    self._last_error = None
                self._committed += sum(len(e.items) if isinstance(e, _Txn) and e.error is None else
                                       0 if isinstance(e, _Txn) else 1 for e in batch)
                self._cond.notify_all()
                done = [w for w in self._waiters if w.target <= self._committed]
                self._waiters = [w for w in self._waiters if w.target > self._committed]
            for w in done:
                self._wake(w, w.target)

    def _next_batch(self) -> list[_Pending | _Txn]:
        """Wait for records, then until the oldest is flush_interval old (or a flush/close); take a batch."""
        with self._cond:
            while not self._pending and not self._closing:
                self._cond.wait(timeout=0.5)
                if not threading.main_thread().is_alive():
                    self._closing = True  # the program is ending without close(): store what is queued
            if not self._pending:
                return []
            head = self._pending[0]
            deadline = (head.appended_mono if isinstance(head, _Pending) else 0.0) + self._interval_s
            self._cond.wait_for(
                lambda: self._closing or self._flush_target > self._committed
                or len(self._pending) >= self._max_batch,
                timeout=max(0.0, deadline - time.monotonic()),
            )
            n = min(len(self._pending), self._max_batch)
            batch: list[_Pending | _Txn] = []
            while self._pending and len(batch) < n:
                entry = self._pending.popleft()
                batch.append(entry)
                if isinstance(entry, _Txn):
                    break  # a state change ends its batch, so its caller is answered at once
            self._cond.notify_all()  # room for appenders waiting on a full queue
            return batch

    def _write(self, batch: list[_Pending | _Txn]) -> None:
        heads: dict[str, tuple[int, str | None]] = {}

        def rows_for(items: list[_Pending], session: Session,
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

        txns = [e for e in batch if isinstance(e, _Txn)]
        with self._db.write() as session:
            plain = [e for e in batch if isinstance(e, _Pending)]
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
    def _wake(waiter: _Waiter, value: int | None) -> None:
        def settle() -> None:
            if waiter.future.done():
                return
            if value is None:
                waiter.future.set_exception(TimelineWriteError("the timeline writer stopped; see the log"))
            else:
                waiter.future.set_result(value)

        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is waiting any more
            waiter.loop.call_soon_threadsafe(settle)


def load_timeline(db: Database, attempt_id: str) -> tuple[Record, ...]:
    """The stored timeline of an attempt, in seq order; raises DatabaseError on a gap or a bad row."""
    with db.read() as session:
        rows = session.execute(
            select(TimelineRow.seq, TimelineRow.record)
            .where(TimelineRow.attempt_id == attempt_id).order_by(TimelineRow.seq)
        ).all()
    records: list[Record] = []
    for expected, (seq, record_json) in enumerate(rows):
        if seq != expected:
            raise DatabaseError(f"timeline of attempt {attempt_id} in {db.path}: row {expected} is missing "
                                f"(next is {seq}); run `examstation verify` and restore a backup")
        try:
            records.append(record_from_dict(json.loads(record_json)))
        except (ValueError, TypeError, AttributeError) as err:
            raise DatabaseError(f"timeline of attempt {attempt_id} in {db.path}: row {seq} is not a valid "
                                f"record ({err}); run `examstation verify`") from err
    return tuple(records)


def seal_timeline(tx: Transaction, actor: str, attempt_id: str, utc_ns: int) -> AuditEntry:
    """Record the timeline's row count and head hash in the audit chain (inside `tx`, after `flush()`).

    `verify` then detects a sealed timeline that was truncated or rewritten, which its own chain
    alone cannot show.
    """
    last = tx.execute(
        select(TimelineRow.seq, TimelineRow.row_hash)
        .where(TimelineRow.attempt_id == attempt_id).order_by(TimelineRow.seq.desc()).limit(1)
    ).first()
    rows, head = (0, attempt_id) if last is None else (last.seq + 1, last.row_hash)
    return append(tx, actor, TIMELINE_SEALED, f"attempt:{attempt_id}",
                  {"attempt_id": attempt_id, "rows": rows, "head_hash": head}, utc_ns)
