"""The one writer of attempts: every change to an attempt, its timeline and its audit entries.

Registration, the exam run, sign-off and the uplink's receipts all change attempts; if each wrote
the database and kept its own copy, a receipt could move an attempt to `delivered` behind a cached
`queued`, and two threads could step one attempt at once. So they all go through here: the book
holds the only cache of attempts (and which station each active one holds), applies one pure
state-machine step at a time (station.session) under one lock, and commits the new state, its
timeline records and its audit entries in ONE transaction through the timeline writer, so a
kill -9 leaves all of it or none.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from devices.clock import Clock
from scoring.timeline import LifecycleRecord, Record
from station import attempt_snapshot, audit
from station import session as sm
from station.db import Database
from station.db.models import Attempt as AttemptRow
from station.db.models import AttemptItem
from station.errors import ServiceError
from station.events import EventBus, ItemStateEvent, ResultStateEvent
from station.timeline_store import MAX_QUEUE, TimelineWriter
from station.uplink import outbox

log = logging.getLogger(__name__)

ACTIVE = (sm.State.CHECKED_IN, sm.State.ITEM_DRAWN, sm.State.RUNNING, sm.State.PAUSED)
"""States in which an attempt holds its station: the next candidate waits."""
AWAITING_SIGN_OFF = (sm.State.ENDED, sm.State.SCORED, sm.State.REVIEWED)
"""Items over, signatures not yet given: the station is free, the examiners still owe the result."""
Extra = Callable[[Session, sm.Attempt, sm.Now], None]
"""More work in a step's transaction (a result stored, a signature row), given the new state."""


@dataclass(frozen=True, slots=True)
class Stored:
    attempt: sm.Attempt
    events: tuple[sm.Event, ...]


def snapshot(a: sm.Attempt) -> str:
    return json.dumps(attempt_snapshot.to_dict(a), ensure_ascii=False)


class AttemptBook:
    """Owns the attempts: read them with `get`, change them only with `open`, `step` and
    `settle_receipts`. Thread-safe; every method may block on a commit (call it off the loop)."""

    def __init__(self, db: Database, clock: Clock, events: EventBus | None = None,
                 capacity: int = MAX_QUEUE) -> None:
        """`capacity`: timeline records held in memory while the store falls behind."""
        self.db = db
        self.clock = clock
        self.events = events or EventBus()
        """Every committed step is published here (ItemStateEvent), every settled result too."""
        self.writer = TimelineWriter(db, max_queue=capacity)
        self._attempts: dict[str, sm.Attempt] = {}
        self._active: dict[str, str] = {}
        self._lock = threading.RLock()
        self._last_step_ns = 0
        self._view: dict[str, sm.Attempt] = {}
        """station -> its active attempt, replaced whole on every change (never mutated): the event
        loop reads it without the lock, which a commit may hold for as long as storage stalls."""
        with db.read() as s:
            rows = s.execute(select(AttemptRow).where(AttemptRow.state.in_([st.value for st in ACTIVE]))).scalars()
            for row in rows:
                self._remember(attempt_snapshot.from_dict(json.loads(row.snapshot)))

    def close(self) -> None:
        self.writer.close()

    @property
    def lock(self) -> threading.RLock:
        """Held across a check and the step that depends on it (the rig at rest, then the start)."""
        return self._lock

    def now(self) -> sm.Now:
        """The moment of a step: strictly after the previous step's, so no two lifecycle records of
        an attempt share an instant (scoring cannot tell the order of a pause and a resume that do)."""
        with self._lock:
            mono = max(self.clock.mono_ns(), self._last_step_ns + 1)
            self._last_step_ns = mono
            return sm.Now(mono, self.clock.utc_ns())

    def get(self, attempt_id: str) -> sm.Attempt:
        with self._lock:
            if attempt_id not in self._attempts:
                with self.db.read() as s:
                    row = s.get(AttemptRow, attempt_id)
                    if row is None:
                        raise ServiceError(f"no attempt {attempt_id} in {self.db.path}")
                    self._attempts[attempt_id] = attempt_snapshot.from_dict(json.loads(row.snapshot))
            return self._attempts[attempt_id]

    def active(self, station: str) -> str | None:
        """The attempt holding `station` (checked in, drawn, running or paused), if any."""
        with self._lock:
            return self._active.get(station)

    def active_attempts(self) -> dict[str, str]:
        """station -> attempt in progress there."""
        with self._lock:
            return dict(self._active)

    def awaiting_sign_off(self) -> list[tuple[str, str]]:
        """(station, attempt) of every attempt whose items are over but whose result is not signed,
        oldest first. They hold no station, so `active_attempts` does not show them; a stop between
        an item's end and the signatures leaves them, and someone must still sign or close them."""
        with self._lock, self.db.read() as s:
            rows = s.execute(select(AttemptRow.station, AttemptRow.attempt_id)
                             .where(AttemptRow.state.in_([st.value for st in (*AWAITING_SIGN_OFF, *ACTIVE)]))
                             .order_by(AttemptRow.created_utc_ns, AttemptRow.attempt_id)).all()
            # the cache is ahead of the database while a step's commit waits behind a stalled store
            return [(station, aid) for station, aid in rows if self.get(aid).state in AWAITING_SIGN_OFF]

    def running(self, station: str) -> sm.Attempt | None:
        """The attempt whose item is running or paused at `station` now. Never waits: safe on the
        event loop."""
        a = self._view.get(station)
        return a if a is not None and a.state in (sm.State.RUNNING, sm.State.PAUSED) else None

    def open(self, attempt: sm.Attempt, actor: str, fn: Callable[..., sm.Step], *args: Any, create: Extra) -> Stored:
        """A new attempt: `create` inserts its row in the transaction of its first step."""
        with self._lock:
            if attempt.station in self._active:
                raise ServiceError(f"station {attempt.station} already has attempt {self._active[attempt.station]} "
                                   "in progress; end it before checking in the next candidate")
            self._attempts[attempt.attempt_id] = attempt
            try:
                return self.step(attempt.attempt_id, actor, fn, *args, extra=create)
            except BaseException:
                self._attempts.pop(attempt.attempt_id, None)
                raise

    def step(self, attempt_id: str, actor: str, fn: Callable[..., sm.Step], *args: Any, extra: Extra | None = None,
             records: Sequence[Record] = (), wait: bool = True) -> Stored:
        """Apply one state-machine step and commit it with its records and audit entries. With
        `wait=False` the step takes effect at once and its commit is queued behind what the store
        still holds (pausing items while storage is stalled: the pause must not wait for the disk)."""
        with self._lock:
            before = self.get(attempt_id)
            now = self.now()
            try:
                after, events = fn(before, *args, now)
            except sm.SessionError as err:
                raise ServiceError(str(err)) from err
            if after is before and not events and not records:
                return Stored(after, ())
            lifecycle: list[Record] = [
                LifecycleRecord(k, e.at.mono_ns, e.at.utc_ns, e.item, e.detail)
                for e in events if (k := e.lifecycle) is not None
            ]

            def change(tx: Session) -> None:
                tx.execute(update(AttemptRow).where(AttemptRow.attempt_id == attempt_id).values(
                    state=after.state.value, snapshot=snapshot(after), seed=after.seed,
                    drawn_items=json.dumps([i.code for i in after.items]), updated_utc_ns=now.utc_ns))
                for it in after.items:
                    tx.merge(AttemptItem(attempt_id=attempt_id, code=it.code, subject=it.subject,
                                         state="ended" if it.ended_ns else ("running" if it.started_ns else "pending"),
                                         started_mono_ns=it.started_ns, ended_mono_ns=it.ended_ns,
                                         end_reason=it.end_reason or None))
                for e in events:
                    audit.append(tx, actor, f"session.{e.kind}", f"attempt:{attempt_id}",
                                 {"item": e.item, "detail": e.detail, "state": after.state.value}, e.at.utc_ns)
                if extra:
                    extra(tx, after, now)

            recs = [(attempt_id, r) for r in [*records, *lifecycle]]
            if wait:
                self.writer.commit_with(recs, change)
            else:
                self.writer.submit_with(recs, _logged(change, f"attempt {attempt_id}: step {fn.__name__}"))
            self._remember(after)
        for e in events:
            self.events.publish(ItemStateEvent(after.station, attempt_id, after.state.value, e.kind, e.item, e.detail,
                                               e.at.utc_ns))
        return Stored(after, events)

    def offer(self, attempt_id: str, record: Record) -> bool:
        """Queue a record of the attempt's timeline without waiting (False: the store is full)."""
        return self.writer.offer(attempt_id, record)

    def _remember(self, a: sm.Attempt) -> None:
        self._attempts[a.attempt_id] = a
        if a.state in ACTIVE:
            self._active[a.station] = a.attempt_id
        elif self._active.get(a.station) == a.attempt_id:
            del self._active[a.station]
        self._view = {station: self._attempts[aid] for station, aid in self._active.items()}

    def settle_receipts(self, receipts: Sequence[outbox.Receipt], actor: str = "province") -> list[outbox.Applied]:
        """The province's receipts: their outbox rows settled and the attempts they deliver moved to
        `delivered`, in one transaction, the cache updated with it."""
        with self._lock:
            now = self.now()
            moved: dict[str, sm.Attempt] = {}

            def deliver(attempt_id: str, stored_snapshot: str, receipt: str) -> str | None:
                """The delivered attempt's snapshot (None when it is not queued)."""
                a = self._attempts.get(attempt_id) or attempt_snapshot.from_dict(json.loads(stored_snapshot))
                if a.state == sm.State.SIGNED:  # killed between storing the result and the `queued` step
                    a, _ = sm.queued(a, now)
                if a.state != sm.State.QUEUED:
                    return None
                a, _ = sm.delivered(a, receipt, now)
                moved[attempt_id] = a
                return snapshot(a)

            applied = outbox.apply_receipts(self.db, receipts, now, deliver, actor)
            for a in moved.values():
                if a.attempt_id in self._attempts:
                    self._remember(a)
        for ap in applied:
            if ap.state != outbox.UNCHANGED:
                self.events.publish(ResultStateEvent(ap.result_id, ap.attempt_id, outbox.OutboxState(ap.state),
                                                     ap.reason or ""))
        return applied


def _logged(change: Callable[[Session], None], what: str) -> Callable[[Session], None]:
    """A queued change whose commit nobody waits for: if it fails, the log says so."""

    def run(tx: Session) -> None:
        try:
            change(tx)
        except Exception:
            log.exception("%s: not committed; the attempt's stored state is behind (a restart pauses it)", what)
            raise

    return run
