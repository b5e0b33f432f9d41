"""commit_with: a state change and its timeline records commit together, or not at all, and after
every record appended before them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from scoring.timeline import LifecycleRecord, SampleRecord
from station import audit
from station.db import Database, open_database, upgrade
from station.db.models import Attempt
from station.stored import load_timeline
from station.timeline_store import TimelineWriter
from tests.integration.test_db_timeline_store import seed_attempts


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    path = tmp_path / "examstation.sqlite3"
    upgrade(path)
    with open_database(path) as database:
        seed_attempts(database, "a1")
        yield database


def test_state_change_commits_with_its_records_after_earlier_samples(db: Database) -> None:
    with TimelineWriter(db, flush_interval_s=0.2) as writer:
        for i in range(50):
            writer.append("a1", SampleRecord("bench.km1", i % 2 == 0, i, i))

        def change(tx: Session) -> str:
            tx.execute(Attempt.__table__.update().where(Attempt.attempt_id == "a1").values(state="running"))
            audit.append(tx, "test", "session.item_start", "attempt:a1", {"item": "K21"}, 99)
            return "ok"

        assert writer.commit_with([("a1", LifecycleRecord("item_start", 60, 60, item="K21"))], change) == "ok"
        stored = load_timeline(db, "a1")
        assert len(stored) == 51 and isinstance(stored[-1], LifecycleRecord)
        with db.read() as s:
            assert s.execute(select(Attempt.state).where(Attempt.attempt_id == "a1")).scalar_one() == "running"
    assert audit.verify(db).ok


def test_a_refused_change_stores_neither_it_nor_its_records(db: Database) -> None:
    with TimelineWriter(db) as writer:
        writer.append("a1", SampleRecord("bench.km1", True, 1, 1))

        def refuse(tx: Session) -> None:
            audit.append(tx, "test", "session.item_end", "attempt:a1", {}, 5)
            raise ValueError("illegal")

        with pytest.raises(ValueError, match="illegal"):
            writer.commit_with([("a1", LifecycleRecord("item_end", 5, 5, item="K21", detail="done"))], refuse)
        writer.append("a1", SampleRecord("bench.km1", False, 6, 6))
        writer.flush()
        assert [type(r).__name__ for r in load_timeline(db, "a1")] == ["SampleRecord", "SampleRecord"]
    report = audit.verify(db)
    assert report.ok and report.checked.get("audit", 0) == 0
