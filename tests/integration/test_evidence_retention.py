"""Retention and disk watermarks: footage no attempt links goes when the policy says; linked footage never.

The segments are facts reported to the real evidence index (as the recorder reports them) with
real files on disk; the disk's free space is what the watch is told, so each watermark is crossed
on purpose.
"""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

from sqlalchemy import select

from devices.camera.contract import Segment
from station import audit
from station.config import Recording, Storage
from station.db import database_path, open_database
from station.db.engine import Database
from station.db.models import Attempt, AttemptEvidence, AuditRow, Candidate, EvidenceSegment
from station.disk_watch import CRITICAL, LOW, DiskWatch
from station.events import AlarmEvent, EventBus
from station.evidence_index import EvidenceIndex
from station.evidence_retention import expired_unlinked, remove
from station.stored import ensure_database
from tests.integration.conftest import CANDIDATE, CONFIG

HOUR_NS = 3600 * 1_000_000_000
NOW = 1_800_000_000 * 1_000_000_000


def segment(data: Path, name: str, start_ns: int) -> Segment:
    path = data / "evidence" / "A01" / "overview" / f"{name}.mkv"
    path.parent.mkdir(parents=True, exist_ok=True)
    body = name.encode() * 100
    path.write_bytes(body)
    return Segment("A01", "overview", name, path, hashlib.sha256(body).hexdigest(), len(body), start_ns,
                   start_ns + 10 * 10**9, 0, 10 * 10**9, uuid.uuid4().hex, 100, "h264", 1280, 720)


def linked_to_an_attempt(db: Database, segment_id: str) -> None:
    """An attempt's link, as the signing makes it (keep_until set, AttemptEvidence row)."""
    with db.write() as tx:
        tx.add(Candidate(id_number=CANDIDATE, name="张三", operation="低压电工作业", batch="B1", attempt_number=1))
        tx.flush()  # the models carry no relationships, so the unit of work does not order these inserts
        tx.add(Attempt(attempt_id="a1", candidate_id_number=CANDIDATE, station="A01", operation="低压电工作业",
                       rubric_id="r", rubric_hash="h", state="queued", seed=None, drawn_items="[]",
                       created_utc_ns=NOW, updated_utc_ns=NOW))
        tx.flush()
        tx.add(AttemptEvidence(attempt_id="a1", segment_id=segment_id))
        row = tx.get(EvidenceSegment, segment_id)
        assert row is not None
        row.keep_until_utc_ns = NOW + 1096 * 24 * HOUR_NS


def test_unlinked_footage_goes_after_its_hours_and_linked_footage_stays(tmp_path: Path) -> None:
    ensure_database(tmp_path)
    with open_database(database_path(tmp_path)) as db:
        index = EvidenceIndex(db, tmp_path)
        index.start()
        old, old_linked, recent = (segment(tmp_path, n, t) for n, t in (
            ("old", NOW - 30 * HOUR_NS), ("old-linked", NOW - 30 * HOUR_NS + 10**10), ("recent", NOW - HOUR_NS)))
        for seg in (old, old_linked, recent):
            index.segment_closed(seg)
        assert index.flush()
        index.stop()
        linked_to_an_attempt(db, "old-linked")

        policy = Recording(policy="attempts", unlinked_keep_hours=24)
        assert expired_unlinked(db, policy, NOW) == ["old"]
        assert expired_unlinked(db, Recording(policy="continuous", continuous_keep_days=2), NOW) == []
        assert remove(db, tmp_path, ["old"], NOW) == 1

        assert not old.path.exists() and old_linked.path.exists() and recent.path.exists()
        with db.read() as s:
            rows = {r.segment_id: r for r in s.execute(select(EvidenceSegment)).scalars()}
            deleted = s.execute(select(AuditRow.payload).where(AuditRow.action == "evidence.deleted")).scalars().all()
            assert rows["old"].deleted_utc_ns == NOW, "the row stays as the record of what existed"
            assert rows["old-linked"].deleted_utc_ns is None
        assert len(deleted) == 1 and '"old"' in deleted[0]
        # a linked segment is never removed, even when asked by id
        assert remove(db, tmp_path, ["old-linked"], NOW) == 0 and old_linked.path.exists()
        assert expired_unlinked(db, policy, NOW + 1000 * HOUR_NS) == ["recent"]
        assert audit.verify(db).ok


async def test_disk_watermarks_warn_then_refuse_and_clear() -> None:
    free = {"bytes": 50 * 10**9}
    events = EventBus()
    alarms = events.subscribe("alarms", kinds=(AlarmEvent,))
    watch = DiskWatch(Path("/srv/examstation"), Storage(min_free_gb=20, critical_free_gb=5), events, lambda: NOW,
                      bytes_per_s=lambda: 8_000_000, free=lambda _: free["bytes"])
    assert watch.check() is None and watch.refusal() is None
    free["bytes"] = 10 * 10**9
    assert watch.check() == LOW and watch.refusal() is None
    free["bytes"] = 4 * 10**9
    assert watch.check() == CRITICAL
    refusal = watch.refusal()
    assert refusal is not None and "4.0 GB free, below the critical mark of 5 GB" in refusal
    free["bytes"] = 60 * 10**9
    assert watch.check() is None and watch.refusal() is None
    seen = []
    while (event := alarms.get_nowait()) is not None:
        assert isinstance(event, AlarmEvent)
        seen.append((event.code, event.cleared, event.what))
    assert [(c, cl) for c, cl, _ in seen] == [(LOW, False), (LOW, True), (CRITICAL, False), (CRITICAL, True)]
    assert "at the cameras' current 64.0 Mbit/s that is 0.2 h of recording" in seen[0][2]


def test_the_example_site_keeps_attempt_footage_by_default() -> None:
    assert CONFIG.recording.policy == "attempts" and CONFIG.recording.segment_s == 10
