"""The database mode that makes acknowledged records survive, and what happens when it is not there.

- a new database is WAL with synchronous=FULL, writes take the write lock at BEGIN (IMMEDIATE);
- a copy converted to another journal mode is refused with the documented message and left as it
  is; `upgrade` converts it explicitly;
- kill -9 at random moments while a child process appends timeline records: the database opens,
  is intact, the stored timeline is a gap-free prefix whose chain verifies, and every record the
  child reported as flushed is there.

Run as a script (`python test_db_durability.py child DB ATTEMPT_ID SEED`), this file is that child.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from scoring.timeline import SampleRecord
from station import audit
from station.db import UnsafeJournalModeError, head_revision, open_database, upgrade
from station.db.models import Attempt, Candidate
from station.stored import load_timeline
from station.timeline_store import TimelineWriter

ATTEMPT = "0190aa00-0000-7000-8000-000000000001"


def header_versions(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:20]
    return header[18], header[19]


def test_a_new_database_is_wal_with_synchronous_full(tmp_path: Path) -> None:
    path = tmp_path / "examstation.sqlite3"
    upgrade(path)
    assert header_versions(path) == (2, 2), "file format 2/2 = WAL, persistent in the file"
    with open_database(path) as db:
        with db.write() as s:
            assert s.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert s.execute(text("PRAGMA synchronous")).scalar() == 2  # FULL
            assert s.execute(text("PRAGMA foreign_keys")).scalar() == 1
        with db.read() as s:
            assert s.execute(text("PRAGMA synchronous")).scalar() == 2
            assert s.execute(text("PRAGMA query_only")).scalar() == 1, "readers cannot write"


def test_a_write_transaction_holds_the_write_lock_from_its_begin(tmp_path: Path) -> None:
    path = tmp_path / "examstation.sqlite3"
    upgrade(path)
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        with open_database(path) as db, db.write() as s:
            s.execute(text("SELECT count(*) FROM audit")).scalar()  # a read only: BEGIN IMMEDIATE still locks
            with pytest.raises(sqlite3.OperationalError, match="database is locked"):
                other.execute("BEGIN IMMEDIATE")
    finally:
        other.close()


def test_a_copy_in_another_journal_mode_is_refused_then_converted_by_upgrade(tmp_path: Path) -> None:
    path = tmp_path / "examstation.sqlite3"
    upgrade(path)
    with open_database(path) as db, db.write() as s:
        audit.append(s, "admin", "site.configured", "site:GD-SZ-0101", {"stations": 12}, 1)
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA journal_mode=DELETE")  # what a careless backup tool or a manual copy leaves
    finally:
        conn.close()
    assert header_versions(path) == (1, 1)

    with pytest.raises(UnsafeJournalModeError) as refused:
        open_database(path)
    assert str(refused.value) == (
        f"examstation refuses to open {path}: it is in journal_mode=delete; it needs WAL with synchronous=FULL "
        "so acknowledged records survive a power cut; "
        f"run `examstation db upgrade --data-dir {tmp_path}` to convert it, or restore a backup"
    )
    assert header_versions(path) == (1, 1), "refusing must not convert the file behind the administrator's back"

    assert upgrade(path) == head_revision()
    assert header_versions(path) == (2, 2)
    with open_database(path) as db:
        report = audit.verify(db)
        assert report.ok and report.checked["audit"] == 1, str(report)


# -- kill -9 ---------------------------------------------------------------------------------------


def child(path: Path, attempt_id: str, seed: int) -> None:
    """Append samples whose value is their seq, flush now and then, print the flushed total; until killed."""
    rng = random.Random(seed)
    with open_database(path) as db:
        start = len(load_timeline(db, attempt_id))
        writer = TimelineWriter(db, flush_interval_s=0.02)
        n = start
        print(f"ready {start}", flush=True)
        while True:
            for _ in range(rng.randint(1, 60)):
                writer.append(attempt_id, _sample(n))
                n += 1
            if rng.random() < 0.3:
                writer.flush()
                print(n, flush=True)
            else:
                time.sleep(rng.random() * 0.004)


def _sample(n: int) -> SampleRecord:
    return SampleRecord("bench.current_l1_a", n, n * 1_000_000, 1_700_000_000_000_000_000 + n, "bench")


def test_kill_9_while_appending_loses_nothing_acknowledged(tmp_path: Path) -> None:
    path = tmp_path / "examstation.sqlite3"
    upgrade(path)
    with open_database(path) as db, db.write() as s:
        s.add(Candidate(id_number="110101199001010007", name="张三", photo_ref=None, operation="低压电工作业",
                        batch="B1", attempt_number=1, passed_at_utc_ns=None))
        s.flush()
        s.add(Attempt(attempt_id=ATTEMPT, candidate_id_number="110101199001010007", station="A01",
                      operation="低压电工作业", rubric_id="lv", rubric_hash="h", state="running", seed=None,
                      drawn_items="[]", created_utc_ns=0, updated_utc_ns=0))
    seed = random.SystemRandom().randrange(2**32)
    rng = random.Random(seed)
    acknowledged = 0
    for round_no in range(5):
        with subprocess.Popen(
            [sys.executable, __file__, "child", str(path), ATTEMPT, str(seed + round_no)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[2],
        ) as proc:
            assert proc.stdout is not None
            ready = proc.stdout.readline()
            assert ready.startswith("ready "), f"child failed to start: {ready!r} {proc.stderr and proc.stderr.read()}"
            assert int(ready.split()[1]) >= acknowledged
            time.sleep(rng.uniform(0.05, 0.4))
            os.kill(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
            assert proc.returncode == -signal.SIGKILL, f"child ended by itself: {err}"
        flushed = [int(line) for line in out.split()]
        acknowledged = max([acknowledged, *flushed])
        what = f"seed {seed}, round {round_no}"

        conn = sqlite3.connect(path)
        try:
            assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)], what
        finally:
            conn.close()
        with open_database(path) as db:
            stored = load_timeline(db, ATTEMPT)  # raises on a gap in seq
            assert len(stored) >= acknowledged, f"{what}: {acknowledged} records were flushed, {len(stored)} stored"
            assert [getattr(r, "value", None) for r in stored] == list(range(len(stored))), what
            report = audit.verify(db)
            assert report.ok, f"{what}:\n{report}"
    assert acknowledged > 0, "the child never got to flush: the test proved nothing"


if __name__ == "__main__" and sys.argv[1:2] == ["child"]:
    child(Path(sys.argv[2]), sys.argv[3], int(sys.argv[4]))
