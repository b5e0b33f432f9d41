"""Reading what the station database holds about attempts: timelines (one reader, which refuses a
timeline with a missing or unreadable row, for replay and for signing alike), device faults, the
latest stored time (for a clock that continues after a restart); sealing a timeline in the audit
chain; and creating the database for demos."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from scoring.timeline import FaultRecord, Record, ordered, record_from_dict
from station.audit import TIMELINE_SEALED, AuditEntry, Transaction, append
from station.db import Database, database_path, upgrade
from station.db.errors import DatabaseError
from station.db.models import TimelineRow


def latest_stored_mono_ns(db: Database) -> int:
    """The latest monotonic time in any stored timeline (0 for a new database)."""
    with db.read() as s:
        last = s.execute(select(TimelineRow.attempt_id, func.max(TimelineRow.seq)).group_by(TimelineRow.attempt_id))
        pairs = list(last)
        latest = 0
        for attempt_id, seq in pairs:
            text = s.execute(select(TimelineRow.record).where(TimelineRow.attempt_id == attempt_id,
                                                              TimelineRow.seq == seq)).scalar_one()
            latest = max(latest, int(json.loads(text).get("t_mono_ns", 0)))
    return latest


def _records(session: Session, attempt_id: str, where: object) -> tuple[Record, ...]:
    """The attempt's rows in seq order as records; DatabaseError on a gap or a bad row."""
    rows = session.execute(select(TimelineRow.seq, TimelineRow.record)
                           .where(TimelineRow.attempt_id == attempt_id).order_by(TimelineRow.seq)).all()
    records: list[Record] = []
    for expected, (seq, record_json) in enumerate(rows):
        if seq != expected:
            raise DatabaseError(f"timeline of attempt {attempt_id} in {where}: row {expected} is missing "
                                f"(next is {seq}); run `examstation audit verify` and restore a backup")
        try:
            records.append(record_from_dict(json.loads(record_json)))
        except (ValueError, TypeError, AttributeError) as err:
            raise DatabaseError(f"timeline of attempt {attempt_id} in {where}: row {seq} is not a valid "
                                f"record ({err}); run `examstation audit verify`") from err
    return tuple(records)


def load_timeline(db: Database, attempt_id: str) -> tuple[Record, ...]:
    """The stored timeline of an attempt, in seq order; raises DatabaseError on a gap or a bad row."""
    with db.read() as session:
        return _records(session, attempt_id, db.path)


def stored_timeline(db: Database, attempt_id: str) -> tuple[Record, ...]:
    """The stored timeline in time order: records reach the writer from several threads, so their
    row order can differ from their time order by a few milliseconds; scoring wants time order."""
    return ordered(load_timeline(db, attempt_id))


def load_timeline_in(tx: Session, attempt_id: str) -> tuple[Record, ...]:
    """The stored timeline read inside an open transaction (what the signature will cover), in time
    order, with the same checks as `load_timeline`."""
    return ordered(_records(tx, attempt_id, "the station database"))


def seal_timeline(tx: Transaction, actor: str, attempt_id: str, utc_ns: int) -> AuditEntry:
    """Record the timeline's row count and head hash in the audit chain (inside `tx`, after `flush()`).

    `audit verify` then detects a sealed timeline that was truncated or rewritten, which its own
    chain alone cannot show.
    """
    last = tx.execute(
        select(TimelineRow.seq, TimelineRow.row_hash)
        .where(TimelineRow.attempt_id == attempt_id).order_by(TimelineRow.seq.desc()).limit(1)
    ).first()
    rows, head = (0, attempt_id) if last is None else (last.seq + 1, last.row_hash)
    return append(tx, actor, TIMELINE_SEALED, f"attempt:{attempt_id}",
                  {"attempt_id": attempt_id, "rows": rows, "head_hash": head}, utc_ns)


def load_faults(db: Database, attempt_id: str) -> list[FaultRecord]:
    """The device faults of an attempt's timeline, in time order (whether an item's device gap needs
    the examiner's choice is decided from them)."""
    with db.read() as s:
        rows = s.execute(select(TimelineRow.record).where(TimelineRow.attempt_id == attempt_id,
                                                          TimelineRow.record.like('%"type":"fault"%'))).scalars()
        faults = [r for r in (record_from_dict(json.loads(text)) for text in rows) if isinstance(r, FaultRecord)]
    return sorted(faults, key=lambda f: f.t_mono_ns)


def ensure_database(data_dir: Path) -> Path:
    """The data directory's database, created (or upgraded) when missing — for demo and tests."""
    path = database_path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(path)
    return path
