"""The outbox: every signed result waits here until the province's receipt names it.

A result is stored with its outbox row and its audit entry in the transaction of the last
examiner signature (`store_result`), so no signed result can exist without a delivery duty.
The relay (station.uplink.relay) then works only through the functions below:

    queued --(sent: attempts+1, next_try = now + backoff)--> queued ... --(receipt)--> delivered
                                                                    \\--(rejected)--> failed

A broker PUBACK changes nothing here (mosquitto acknowledges before it writes to disk, DESIGN.md);
only a receipt does. Backoff is capped and jittered, and never gives up: a result queued for a
year is still sent. Every function takes the clock's UTC nanoseconds from the caller, so tests
can run a 30-minute outage on an injected clock.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal, cast

from sqlalchemy import Table, bindparam, func, or_, select, update
from sqlalchemy.orm import Session

from scoring.canonical import canonical_json
from station import audit
from station import session as sm
from station.db import Database
from station.db.digest import sha256_hex
from station.db.models import Attempt as AttemptRow
from station.db.models import OutboxRow, ResultRow
from station.uplink.backoff import JITTER, RESEND_CAP_S, resend_delay_s

log = logging.getLogger(__name__)
_OUTBOX = cast(Table, OutboxRow.__table__)
_ATTEMPTS = cast(Table, AttemptRow.__table__)


class OutboxState(StrEnum):
    """Where a signed result is on its way to the province (the outbox row's `state`)."""

    QUEUED = "queued"
    """Sent again and again until a receipt names it."""
    DELIVERED = "delivered"
    """The province's receipt said stored (or duplicate)."""
    FAILED = "failed"
    """The province rejected it; it waits for a person (`examstation outbox retry`)."""


UNCHANGED: Literal["unchanged"] = "unchanged"
"""What a receipt did to a result it named that was settled already, or never sent here."""


@dataclass(frozen=True, slots=True)
class Due:
    """One result to publish now."""

    result_id: str
    seq: int
    station: str
    document: str
    attempts: int
    """Sends before this one."""


@dataclass(frozen=True, slots=True)
class Receipt:
    """What the province said about one result (the `receipt` topic)."""

    result_id: str
    seq: int
    status: str
    """stored | duplicate | rejected"""
    stored_at: str | None
    reason: str | None


@dataclass(frozen=True, slots=True)
class Applied:
    """What a receipt changed: the attempt it concerns and the outbox state it left."""

    result_id: str
    attempt_id: str
    state: OutboxState | Literal["unchanged"]
    """delivered or failed, or unchanged (already settled, or a receipt for a result we never sent)"""
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Backlog:
    """Delivery health: what `examstation outbox` and the status manifest show."""

    queued: int
    failed: int
    delivered: int
    oldest_queued_utc_ns: int | None

    def oldest_age_s(self, now_utc_ns: int) -> float | None:
        if self.oldest_queued_utc_ns is None:
            return None
        return max(0.0, (now_utc_ns - self.oldest_queued_utc_ns) / 1e9)


def store_result(tx: Session, signed: dict[str, Any], *, actor: str, attempt_id: str, utc_ns: int) -> str:
    """Insert the signed result, its queued outbox row and its audit entry in the open transaction `tx`.

    Returns the stored document text (its canonical JSON, the bytes its signature covers), whose
    SHA-256 the audit chain records.
    """
    text = canonical_json(signed)
    digest = sha256_hex(text)
    result_id = str(signed["result_id"])
    seq = int(signed["seq"])
    tx.add(ResultRow(result_id=result_id, attempt_id=attempt_id, site_seq=seq, document=text,
                     document_sha256=digest, created_utc_ns=utc_ns))
    tx.flush()  # the result row first: the outbox row refers to it
    tx.add(OutboxRow(result_id=result_id, state=OutboxState.QUEUED, attempts=0, next_try_utc_ns=utc_ns,
                     last_error=None, delivered_utc_ns=None))
    audit.append_result(tx, actor, result_id=result_id, attempt_id=attempt_id, site_seq=seq,
                        document_sha256=digest, utc_ns=utc_ns)
    return text


def next_seq(tx: Session) -> int:
    """The next per-site sequence number (the receiver detects gaps in it)."""
    return int(tx.execute(select(func.max(ResultRow.site_seq))).scalar() or 0) + 1


def take_due(db: Database, now_utc_ns: int, limit: int,
             wait_s: Callable[[str], float] = lambda _rid: resend_delay_s(1),
             horizon_s: float = RESEND_CAP_S * (1 + JITTER)) -> list[Due]:
    """Claim up to `limit` queued results whose time has come, oldest seq first, and set their next try
    `wait_s(result_id)` seconds from now. A next try further ahead than `horizon_s` (the longest wait
    there is) is due too: the system clock was stepped back after it was written.

    The next try is written BEFORE the publish, in one transaction for the whole batch: a process
    killed right after publishing still resends later, and the receiver absorbs the duplicate.
    """
    with db.write() as tx:
        rows = tx.execute(
            select(OutboxRow.result_id, OutboxRow.attempts, ResultRow.site_seq, ResultRow.document, AttemptRow.station)
            .join(ResultRow, ResultRow.result_id == OutboxRow.result_id)
            .join(AttemptRow, AttemptRow.attempt_id == ResultRow.attempt_id)
            .where(OutboxRow.state == OutboxState.QUEUED, or_(OutboxRow.next_try_utc_ns <= now_utc_ns,
                                                    OutboxRow.next_try_utc_ns > now_utc_ns + int(horizon_s * 1e9)))
            .order_by(ResultRow.site_seq).limit(limit)
        ).all()
        if rows:
            t = _OUTBOX
            tx.execute(t.update().where(t.c.result_id == bindparam("rid"))
                       .values(attempts=bindparam("n"), next_try_utc_ns=bindparam("next")), [
                {"rid": r.result_id, "n": r.attempts + 1, "next": now_utc_ns + int(wait_s(r.result_id) * 1e9)}
                for r in rows])
        return [Due(r.result_id, r.site_seq, r.station, r.document, r.attempts) for r in rows]


def due_all_now(db: Database, now_utc_ns: int) -> int:
    """The link came back: every queued result is due at once (those sent before it broke may be
    lost with the broker's memory). Returns how many are queued."""
    with db.write() as tx:
        result = tx.execute(update(OutboxRow)
                            .where(OutboxRow.state == OutboxState.QUEUED, OutboxRow.next_try_utc_ns > now_utc_ns)
                            .values(next_try_utc_ns=now_utc_ns))
        del result
        return int(tx.execute(select(func.count()).where(OutboxRow.state == OutboxState.QUEUED)).scalar() or 0)


def next_due_utc_ns(db: Database) -> int | None:
    with db.read() as s:
        value = s.execute(select(func.min(OutboxRow.next_try_utc_ns))
                          .where(OutboxRow.state == OutboxState.QUEUED)).scalar()
        return None if value is None else int(value)


Deliver = Callable[[str, str, str], "str | None"]
"""(attempt_id, its stored snapshot, the receipt in words) -> the attempt's delivered snapshot, or
None when it is not queued. The attempt book provides it: it owns the attempts (one writer)."""


def apply_receipts(db: Database, receipts: Sequence[Receipt], now: sm.Now, deliver: Deliver,
                   actor: str = "province") -> list[Applied]:
    """Settle the outbox rows the receipts name, in ONE transaction with their audit entries and the
    attempts' state (queued -> delivered, through `deliver`). Receipts for settled or unknown results
    change nothing. Call it through `AttemptBook.settle_receipts`, which keeps its cache in step.

    Bulk statements throughout: draining a backlog settles hundreds of receipts per transaction,
    and per-row ORM work would make this the slowest step of the whole uplink.
    """
    applied: list[Applied] = []
    with db.write() as tx:
        ids = list(dict.fromkeys(r.result_id for r in receipts))
        found = {}
        for i in range(0, len(ids), 500):
            found.update({r.result_id: r for r in tx.execute(
                select(OutboxRow.result_id, OutboxRow.state, OutboxRow.attempts, ResultRow.site_seq,
                       ResultRow.attempt_id, AttemptRow.snapshot)
                .join(ResultRow, ResultRow.result_id == OutboxRow.result_id)
                .join(AttemptRow, AttemptRow.attempt_id == ResultRow.attempt_id)
                .where(OutboxRow.result_id.in_(ids[i:i + 500]))).all()})
        outbox_rows: list[dict[str, Any]] = []
        attempt_rows: list[dict[str, Any]] = []
        entries: list[tuple[str, str, str, dict[str, Any]]] = []
        settled: set[str] = set()
        for rc in receipts:
            row = found.get(rc.result_id)
            if row is None or row.site_seq != rc.seq:
                applied.append(Applied(rc.result_id, "", UNCHANGED, "no such result (or another seq) here"))
                continue
            if row.state != OutboxState.QUEUED or rc.result_id in settled:
                applied.append(Applied(rc.result_id, row.attempt_id, UNCHANGED, f"already {row.state}"))
                continue
            settled.add(rc.result_id)
            payload = {"result_id": rc.result_id, "seq": rc.seq, "status": rc.status, "stored_at": rc.stored_at,
                       "reason": rc.reason, "sends": row.attempts}
            if rc.status == "rejected":
                outbox_rows.append({"rid": rc.result_id, "state": OutboxState.FAILED, "at": None,
                                    "error": f"rejected by the province: {rc.reason}"})
                entries.append((actor, "uplink.rejected", f"result:{rc.result_id}", payload))
                applied.append(Applied(rc.result_id, row.attempt_id, OutboxState.FAILED, rc.reason))
                continue
            outbox_rows.append({"rid": rc.result_id, "state": OutboxState.DELIVERED, "at": now.utc_ns, "error": None})
            try:
                snap = deliver(row.attempt_id, row.snapshot, f"{rc.status} at {rc.stored_at}")
                delivered = None if snap is None else {"aid": row.attempt_id, "state_": sm.State.DELIVERED.value,
                                                       "snap": snap, "at": now.utc_ns}
            except (ValueError, TypeError, KeyError, sm.SessionError) as err:
                # the delivery stands; only the attempt's bookkeeping failed (a snapshot an older
                # version wrote?), and it must not hold this receipt or the batch around it hostage
                log.error("attempt %s of result %s: state not moved to delivered (%s: %s)", row.attempt_id,
                          rc.result_id, type(err).__name__, err)
                payload["attempt_error"] = f"{type(err).__name__}: {err}"
                delivered = None
            if delivered is not None:
                attempt_rows.append(delivered)
            # one entry records both the delivery and the attempt's step to `delivered` (half the
            # hashing of two entries, when a backlog settles hundreds of receipts at once)
            payload.update(attempt_id=row.attempt_id, attempt_state=sm.State.DELIVERED.value if delivered else None)
            entries.append((actor, "uplink.delivered", f"result:{rc.result_id}", payload))
            applied.append(Applied(rc.result_id, row.attempt_id, OutboxState.DELIVERED))
        o, at = _OUTBOX, _ATTEMPTS
        for state in (OutboxState.DELIVERED, OutboxState.FAILED):
            rows = [r for r in outbox_rows if r["state"] == state]
            if rows:  # Core executemany: the ORM's bulk update costs more than the SQL here
                tx.execute(o.update().where(o.c.result_id == bindparam("rid")).values(
                    state=state, last_error=bindparam("error"), delivered_utc_ns=bindparam("at")), rows)
        if attempt_rows:
            tx.execute(at.update().where(at.c.attempt_id == bindparam("aid")).values(
                state=bindparam("state_"), snapshot=bindparam("snap"), updated_utc_ns=bindparam("at")), attempt_rows)
        audit.append_many(tx, entries, now.utc_ns)
    return applied


def requeue(db: Database, result_id: str, now_utc_ns: int, actor: str) -> None:
    """An administrator sends a failed (rejected) result again, after the province fixed its side."""
    with db.write() as tx:
        row = tx.get(OutboxRow, result_id)
        if row is None:
            raise LookupError(f"no result {result_id} in the outbox; `examstation outbox` lists them")
        if row.state != OutboxState.FAILED:
            raise ValueError(f"result {result_id} is {row.state}, not failed; only a rejected result is requeued")
        audit.append(tx, actor, "uplink.requeued", f"result:{result_id}", {"previous_error": row.last_error},
                     now_utc_ns)
        row.state = OutboxState.QUEUED
        row.next_try_utc_ns = now_utc_ns


def state_of(db: Database, result_id: str) -> str | None:
    """queued | delivered | failed, or None when there is no such result."""
    with db.read() as s:
        return s.execute(select(OutboxRow.state).where(OutboxRow.result_id == result_id)).scalar()


def backlog(db: Database) -> Backlog:
    with db.read() as s:
        counts = {state: n for state, n in s.execute(select(OutboxRow.state, func.count()).group_by(OutboxRow.state))}
        oldest = s.execute(select(func.min(ResultRow.created_utc_ns))
                           .join(OutboxRow, OutboxRow.result_id == ResultRow.result_id)
                           .where(OutboxRow.state == OutboxState.QUEUED)).scalar()
    return Backlog(int(counts.get(OutboxState.QUEUED, 0)), int(counts.get(OutboxState.FAILED, 0)),
                   int(counts.get(OutboxState.DELIVERED, 0)),
                   None if oldest is None else int(oldest))


@dataclass(frozen=True, slots=True)
class Listed:
    result_id: str
    seq: int
    station: str
    state: str
    sends: int
    created_utc_ns: int
    delivered_utc_ns: int | None
    last_error: str | None


def listing(db: Database, states: Sequence[str] = (OutboxState.QUEUED, OutboxState.FAILED),
            limit: int = 100) -> list[Listed]:
    """Undelivered results (by default) for `examstation outbox`, oldest first."""
    with db.read() as s:
        rows = s.execute(
            select(OutboxRow, ResultRow.site_seq, ResultRow.created_utc_ns, AttemptRow.station)
            .join(ResultRow, ResultRow.result_id == OutboxRow.result_id)
            .join(AttemptRow, AttemptRow.attempt_id == ResultRow.attempt_id)
            .where(OutboxRow.state.in_(list(states))).order_by(ResultRow.site_seq).limit(limit)
        ).all()
        return [Listed(o.result_id, seq, station, o.state, o.attempts, created, o.delivered_utc_ns, o.last_error)
                for o, seq, created, station in rows]
