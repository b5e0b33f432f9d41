"""Append-only persistence of attempt timelines, as they happen, off the event loop.

`TimelineWriter.append(attempt_id, record)` serialises the record (canonical JSON, so a bad value
raises at the call site) and puts it in a bounded in-memory queue; a dedicated writer thread
commits what is queued in one transaction at the latest `flush_interval_s` (default 0.05 s, at
most 0.2 s) after the oldest queued record was appended, in batches of at most 1,000 rows so one
commit stays short (record on disk within 200 ms of `append`, the commit's fsync included), each
row hash-chained to the previous row of its attempt (see `station.db.digest.timeline_row_hash`).
The thread writes through `Database.write()`, i.e. the single writer connection and its lock.

Backpressure: the event loop never waits here. `offer()` accepts a record when the queue has
room and refuses it (returns False) when it holds `max_queue` records (the disk has stalled for a
while), so the device layer keeps the sample and offers it again; the station watches `health()`,
raises the alarm and pauses the running items while the store falls behind. `append()` is the
blocking form for code off the loop: it waits at most `append_block_s` for room, then raises
`TimelineWriteError`. A record is never silently lost. `submit_with()` queues a state change
without waiting for its commit (pausing items while the store is stalled).

The writer thread lives in `station.timeline_thread`: it commits in batches, retries "database
is locked", I/O errors and a full disk with capped backoff keeping the batch, and stops for good
on anything else, after which every `append`, `offer`, `flush` and `close` raises
`TimelineWriteError` naming it. One TimelineWriter per database: it caches each attempt's next
seq and last hash.

`flush()` returns once everything appended before the call is committed (`aflush()` awaits the
same without blocking the loop); `close()` commits what is queued and joins the thread. If the
main thread ends without `close()`, the writer still commits what is queued, then exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TypeVar, cast

from sqlalchemy.orm import Session

from scoring.canonical import canonical_json
from scoring.timeline import Record, record_to_dict
from station.db.engine import Database
from station.timeline_thread import Pending, TimelineWriteError, Txn, Waiter, WriterThread

__all__ = ["StoreHealth", "TimelineWriteError", "TimelineWriter"]

log = logging.getLogger(__name__)

MAX_FLUSH_INTERVAL_S = 0.2
MAX_QUEUE = 200_000
"""Records held in memory while the store falls behind: at a busy hall's ~1,000 samples a second,
over three minutes of exam, about 60 MB. Past it `offer` refuses records."""


@dataclass(frozen=True, slots=True)
class StoreHealth:
    """How the store keeps up: what the station watches to raise the alarm and pause items."""

    queued: int
    """Records not yet committed (queued, and in the batch being committed)."""
    capacity: int
    oldest_queued_s: float
    """Age of the oldest record not yet committed (0 when none is queued)."""
    failing_s: float
    """How long commits have been failing (0 when the last one succeeded)."""
    last_error: str | None
    stopped: str | None
    """Why the writer stopped for good (None while it runs)."""


_R = TypeVar("_R")


class TimelineWriter(WriterThread):
    """Persists timeline records in order, per attempt, from any thread or the event loop. See the module doc."""

    def __init__(
        self,
        db: Database,
        *,
        flush_interval_s: float = 0.05,
        max_queue: int = MAX_QUEUE,
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
        self._pending: deque[Pending | Txn] = deque()
        self._appended = 0
        self._committed = 0
        self._flush_target = 0
        self._closing = False
        self._abandon = False
        self._failure: BaseException | None = None
        self._last_error: BaseException | None = None
        self._failing_since: float | None = None
        self._batch_since: float | None = None
        self._waiters: list[Waiter] = []
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
        item = Pending(attempt_id, record_json, time.monotonic())
        with self._cond:
            self._raise_if_unusable(attempt_id)
            if self._outstanding() >= self._max_queue:
                room = self._cond.wait_for(
                    lambda: self._outstanding() < self._max_queue or self._failure is not None or self._closing,
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

    def offer(self, attempt_id: str, record: Record) -> bool:
        """Queue `record` if there is room, at once; False when the queue is full or the writer has
        stopped (the caller keeps the record and tries again). Never waits: safe on the event loop.
        Raises ValueError for a record that is not plain JSON."""
        try:
            record_json = canonical_json(record_to_dict(record))
        except (TypeError, ValueError, KeyError) as err:
            raise ValueError(f"timeline record of attempt {attempt_id} cannot be stored as JSON ({err}): "
                             f"{record!r}") from err
        with self._cond:
            if self._failure is not None or self._closing or self._outstanding() >= self._max_queue:
                return False
            self._pending.append(Pending(attempt_id, record_json, time.monotonic()))
            self._appended += 1
            if len(self._pending) == 1 or len(self._pending) >= self._max_batch:
                self._cond.notify_all()
            return True

    def submit_with(self, records: Sequence[tuple[str, Record]], fn: Callable[[Session], object]) -> None:
        """Queue `records` and the state change `fn` to commit together, after everything queued
        before, without waiting for the commit (raises only when the writer is unusable)."""
        self._queue_txn(records, fn)

    def health(self) -> StoreHealth:
        now = time.monotonic()
        with self._cond:
            head = next((e for e in self._pending if isinstance(e, Pending)), None)
            oldest = min((t for t in (self._batch_since, head.appended_mono if head else None) if t is not None),
                         default=None)
            return StoreHealth(self._appended - self._committed, self._max_queue,
                               0.0 if oldest is None else now - oldest,
                               0.0 if self._failing_since is None else now - self._failing_since,
                               None if self._last_error is None else str(getattr(self._last_error, "orig", None)
                                                                          or self._last_error),
                               None if self._failure is None else repr(self._failure))

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
        txn = self._queue_txn(records, fn)
        if not txn.done.wait(timeout_s):
            raise TimelineWriteError(f"timeline writer for {self._db.path}: a state change was not committed within "
                                     f"{timeout_s} s (last error: {self._last_error or 'none'})")
        if txn.error is not None:
            raise txn.error
        return cast(_R, txn.result)

    def _queue_txn(self, records: Sequence[tuple[str, Record]], fn: Callable[[Session], object]) -> Txn:
        items = []
        for attempt_id, record in records:
            try:
                items.append(Pending(attempt_id, canonical_json(record_to_dict(record)), time.monotonic()))
            except (TypeError, ValueError, KeyError) as err:
                raise ValueError(f"timeline record of attempt {attempt_id} cannot be stored as JSON ({err})") from err
        txn = Txn(items, fn, threading.Event())
        with self._cond:
            self._raise_if_unusable(records[0][0] if records else "-")
            self._pending.append(txn)
            self._appended += len(items)
            self._flush_target = max(self._flush_target, self._appended)
            self._cond.notify_all()
        return txn

    async def aflush(self, timeout_s: float | None = 30.0) -> int:
        """`flush()` for the event loop: awaits the commit without blocking the loop."""
        loop = asyncio.get_running_loop()
        with self._cond:
            target = self._request_flush()
            if self._committed >= target:
                return target
            if self._failure is not None or not self._thread.is_alive():
                raise self._not_stored(target, None)
            waiter = Waiter(target, loop, loop.create_future())
            self._waiters.append(waiter)
        try:
            async with asyncio.timeout(timeout_s):
                return int(await waiter.future)
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

    def _outstanding(self) -> int:
        """Records not committed yet, those of the batch being committed included (under `_cond`)."""
        return self._appended - self._committed

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
