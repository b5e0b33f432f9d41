"""TimelineWriter on a real database file: in order, nothing lost, committed within the flush interval."""

from __future__ import annotations

import asyncio
import gc
import itertools
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from scoring.timeline import FaultRecord, LifecycleRecord, Record, SampleRecord
from station import audit
from station.db import Database, open_database, upgrade
from station.db.models import Attempt, Candidate
from station.stored import load_timeline
from station.timeline_store import TimelineWriteError, TimelineWriter


def seed_attempts(db: Database, *attempt_ids: str) -> None:
    with db.write() as s:
        s.add(Candidate(id_number="110101199001010007", name="张三", photo_ref=None, operation="低压电工作业",
                        batch="B1", attempt_number=1, passed_at_utc_ns=None))
        s.flush()
        for attempt_id in attempt_ids:
            s.add(Attempt(attempt_id=attempt_id, candidate_id_number="110101199001010007", station="A01",
                          operation="低压电工作业", rubric_id="lv", rubric_hash="h", state="running", seed=None,
                          drawn_items="[]", created_utc_ns=0, updated_utc_ns=0))


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    path = tmp_path / "examstation.sqlite3"
    upgrade(path)
    with open_database(path) as database:
        seed_attempts(database, "A", "B")
        yield database


def sample(i: int) -> SampleRecord:
    return SampleRecord("manikin.compression", {"depth_mm": 50.0 + i % 7, "recoil_ok": i % 3 != 0}, i, 1_700_000 + i,
                        "manikin")


async def test_10000_records_from_the_event_loop_are_stored_in_order_within_the_flush_interval(
    db: Database,
) -> None:
    interval_s = 0.1
    # A full collection of what earlier tests left (a 100 ms pause late in a long suite) is not the
    # writer's doing: collect before measuring how long the loop is blocked.
    gc.collect()
    writer = TimelineWriter(db, flush_interval_s=interval_s)
    bursts: list[tuple[float, int]] = []  # (monotonic time the burst was appended, records appended so far)
    polls: list[tuple[float, int]] = []
    done = asyncio.Event()

    async def produce() -> None:
        for burst in range(40):
            for i in range(250):
                writer.append("A", sample(burst * 250 + i))
            bursts.append((time.monotonic(), (burst + 1) * 250))
            await asyncio.sleep(0.01)
        done.set()

    async def watch() -> None:
        while not done.is_set() or writer.committed < 10_000:
            polls.append((time.monotonic(), writer.committed))
            await asyncio.sleep(0.002)
            if polls[-1][0] - bursts[0][0] > 10:
                raise AssertionError(f"only {writer.committed} of 10000 records committed after 10 s")
        polls.append((time.monotonic(), writer.committed))

    try:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(produce(), name="produce")
            tg.create_task(watch(), name="watch")
        assert await writer.aflush() == 10_000
    finally:
        writer.close()

    latencies = [next(t for t, n in polls if t >= at and n >= count) - at for at, count in bursts]
    # Every record is committed within the flush interval plus one commit: well inside 200 ms.
    assert max(latencies) < 0.2, f"commit latency per burst (s): {[round(x, 3) for x in latencies]}"
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(polls)]
    assert max(gaps) < 0.1, f"the event loop was blocked for {max(gaps):.3f} s"
    assert load_timeline(db, "A") == tuple(sample(i) for i in range(10_000))
    report = audit.verify(db)
    assert report.ok, str(report)


def test_attempts_keep_their_own_order_when_appended_from_many_threads(db: Database) -> None:
    with TimelineWriter(db, flush_interval_s=0.05) as writer:
        def work(n: int) -> None:
            for i in range(500):
                writer.append("A" if i % 2 else "B", FaultRecord(f"dev{n}", i % 4 != 0, "timeout", i, i))

        threads = [threading.Thread(target=work, args=(n,), name=f"appender-{n}") for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert writer.flush() == 2000
    for attempt_id in ("A", "B"):
        records = load_timeline(db, attempt_id)
        assert len(records) == 1000
        for n in range(4):
            mine = [r.t_mono_ns for r in records if isinstance(r, FaultRecord) and r.device == f"dev{n}"]
            assert mine == sorted(mine), f"records of appender {n} reordered in attempt {attempt_id}"
    assert audit.verify(db).ok


def test_a_new_writer_continues_the_stored_chain(db: Database) -> None:
    first: list[Record] = [LifecycleRecord("attempt_start", 0, 10), LifecycleRecord("item_start", 1, 11, "K21")]
    with TimelineWriter(db) as writer:
        for r in first:
            writer.append("A", r)
    then = LifecycleRecord("item_end", 2, 12, "K21", "done")
    with TimelineWriter(db) as writer:  # e.g. after a controller restart
        writer.append("A", then)
    assert load_timeline(db, "A") == (*first, then)
    assert audit.verify(db).ok


def test_flush_returns_at_once_after_its_records_are_committed_not_after_the_interval(db: Database) -> None:
    with TimelineWriter(db, flush_interval_s=0.2) as writer:
        writer.append("A", sample(0))
        start = time.monotonic()
        assert writer.flush() == 1
        assert time.monotonic() - start < 0.15
        assert writer.committed == writer.appended == 1


def test_a_full_queue_blocks_briefly_then_refuses_without_dropping(db: Database) -> None:
    writer = TimelineWriter(db, max_queue=20, max_batch=5, append_block_s=0.05)
    try:
        with db.write():  # hold the writer connection: the writer thread cannot commit
            start = time.monotonic()
            with pytest.raises(TimelineWriteError, match=r"queued and none was stored for 0\.05 s") as refused:
                for i in range(1000):
                    writer.append("A", sample(i))
            assert time.monotonic() - start < 1.0
            accepted = writer.appended
            assert 20 <= accepted <= 25, accepted
            assert "pause the attempt and check the disk" in str(refused.value)
        assert writer.flush() == accepted
    finally:
        writer.close()
    assert load_timeline(db, "A") == tuple(sample(i) for i in range(accepted))


def test_a_record_that_is_not_json_is_refused_at_the_call(db: Database) -> None:
    with TimelineWriter(db) as writer, pytest.raises(ValueError, match="timeline record of attempt A cannot be stored"):
        writer.append("A", SampleRecord("weld.current_a", float("nan"), 0, 0))


def test_a_writer_that_cannot_store_says_so_everywhere(db: Database) -> None:
    writer = TimelineWriter(db)
    writer.append("no-such-attempt", sample(0))
    with pytest.raises(TimelineWriteError, match="FOREIGN KEY constraint failed"):
        writer.flush()
    with pytest.raises(TimelineWriteError, match="the writer stopped"):
        writer.append("A", sample(1))
    with pytest.raises(TimelineWriteError, match="closed with 1 records not stored"):
        writer.close()


def test_flush_interval_is_bounded_and_close_is_idempotent(db: Database) -> None:
    with pytest.raises(ValueError, match=r"must be > 0 and <= 0\.2 s"):
        TimelineWriter(db, flush_interval_s=0.5)
    writer = TimelineWriter(db)
    writer.close()
    writer.close()
    with pytest.raises(TimelineWriteError, match="the writer is closed"):
        writer.append("A", sample(0))
