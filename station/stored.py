"""Reading what the station database holds about attempts: timelines in time order, the latest
stored time (for a clock that continues after a restart), and creating the database for demos."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from scoring.timeline import FaultRecord, Record, ordered, record_from_dict
from station.db import Database, database_path, upgrade
from station.db.models import TimelineRow
from station.timeline_store import load_timeline


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


def stored_timeline(db: Database, attempt_id: str) -> tuple[Record, ...]:
    """The stored timeline in time order: records reach the writer from several threads, so their
    row order can differ from their time order by a few milliseconds; scoring wants time order."""
    return ordered(load_timeline(db, attempt_id))


def load_timeline_in(tx: Session, attempt_id: str) -> tuple[Record, ...]:
    """The stored timeline read inside an open transaction (what the signature will cover)."""
    rows = tx.execute(select(TimelineRow.record).where(TimelineRow.attempt_id == attempt_id)
                      .order_by(TimelineRow.seq)).scalars()
    return ordered([record_from_dict(json.loads(r)) for r in rows])


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
