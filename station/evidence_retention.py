"""Retention of evidence video: attempt-linked footage is kept; the rest follows the site's policy.

A segment an attempt links carries `keep_until_utc_ns` (3 years after the attempt's sign-off) and
no policy here ever removes it, whatever the disk says: a full disk refuses new attempts instead
(station.disk_watch). Footage no attempt links is removed when older than the policy allows
(`recording.policy`: `attempts` keeps it `unlinked_keep_hours`, long enough to cover the pre-roll of
any attempt still open; `continuous` keeps it `continuous_keep_days`). Each removal keeps the index
row (with `deleted_utc_ns`) and adds an `evidence.deleted` audit entry: the record says what
existed and when it went. A linked segment past its 3 years is left for the administrator: the
province may still hold an appeal open, so expiry is reported, not acted on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Final

from sqlalchemy import select

from station import audit
from station.config import Recording
from station.db.engine import Database
from station.db.models import AttemptEvidence, EvidenceSegment

log = logging.getLogger(__name__)

DELETED: Final = "evidence.deleted"
EVERY_S: Final = 600.0
BATCH: Final = 500


def expired_unlinked(db: Database, policy: Recording, now_utc_ns: int) -> list[str]:
    """Segment ids no attempt links whose footage the policy no longer keeps."""
    hours = policy.unlinked_keep_hours if policy.policy == "attempts" else policy.continuous_keep_days * 24
    before = now_utc_ns - int(hours * 3600 * 1e9)
    with db.read() as s:
        linked = select(AttemptEvidence.segment_id)
        rows = s.execute(select(EvidenceSegment.segment_id).where(
            EvidenceSegment.end_utc_ns < before, EvidenceSegment.deleted_utc_ns.is_(None),
            EvidenceSegment.keep_until_utc_ns.is_(None), EvidenceSegment.segment_id.not_in(linked))
            .order_by(EvidenceSegment.start_utc_ns).limit(BATCH)).scalars().all()
    return list(rows)


def remove(db: Database, data_dir: Path, segment_ids: list[str], now_utc_ns: int) -> int:
    """Remove the files of these unlinked segments, one transaction each, re-checking the link inside it."""
    removed = 0
    for segment_id in segment_ids:
        with db.write() as tx:
            seg = tx.get(EvidenceSegment, segment_id)
            if seg is None or seg.deleted_utc_ns is not None or seg.keep_until_utc_ns is not None or \
                    tx.execute(select(AttemptEvidence).where(AttemptEvidence.segment_id == segment_id)).first():
                continue  # linked since the query: kept
            seg.deleted_utc_ns = now_utc_ns
            audit.append(tx, "retention", DELETED, f"segment:{segment_id}",
                         {"segment_id": segment_id, "sha256": seg.sha256, "reason": "not linked to any attempt"},
                         now_utc_ns)
            path = data_dir / seg.path
        path.unlink(missing_ok=True)  # after the commit: a crash in between leaves a file the index calls deleted
        removed += 1
    return removed


async def run_retention(db: Database, data_dir: Path, policy: Recording, utc_ns: Callable[[], int]) -> None:
    """Every EVERY_S: remove what the policy no longer keeps (a task beside the controller's loop)."""
    while True:
        ids = await asyncio.to_thread(expired_unlinked, db, policy, utc_ns())
        if ids:
            n = await asyncio.to_thread(remove, db, data_dir, ids, utc_ns())
            log.info("retention: removed %d unlinked segment(s) older than the %s policy keeps", n, policy.policy)
        await asyncio.sleep(EVERY_S if len(ids) < BATCH else 1.0)
