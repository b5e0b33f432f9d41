"""The signed result: built from the stored timeline when the last examiner signs, signed with the
site's key, and stored with its outbox row in that same transaction.

The sheet the examiners reviewed must be what the stored timeline scores to now: a result is
never signed over a sheet that differs from a fresh score (that would mean the timeline or the
sheet changed behind the examiners' backs).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from scoring.canonical import canonical_json
from scoring.engine import score
from scoring.rubric import Rubric
from scoring.timeline import LifecycleRecord
from station import session as sm
from station.config import SiteConfig
from station.db.digest import GENESIS_HASH
from station.db.models import AuditRow, Candidate, ScoreSheetRow
from station.errors import ServiceError
from station.ids import uuid7
from station.result_document import AuditCheckpoint, CandidateRef, VideoEvidence, build_result
from station.signing import SiteKey
from station.stored import load_timeline_in
from station.uplink import outbox


def store_signed_result(tx: Session, a: sm.Attempt, now: sm.Now, *, rubric: Rubric, config: SiteConfig,
                        key: SiteKey, software: str, video: VideoEvidence | None = None) -> dict[str, Any]:
    """Inside the transaction of the last signature: the signed document, stored and queued."""
    row = tx.execute(select(ScoreSheetRow).where(ScoreSheetRow.attempt_id == a.attempt_id)
                     .order_by(ScoreSheetRow.version.desc()).limit(1)).scalar_one()
    cand = tx.get(Candidate, a.candidate)
    if cand is None:
        raise ServiceError(f"attempt {a.attempt_id}: candidate {a.candidate} is not registered any more; restore "
                           "the registration from the batch list before signing")
    seq = outbox.next_seq(tx)
    result_id = uuid7(now.utc_ns // 1_000_000)
    timeline = load_timeline_in(tx, a.attempt_id)
    sheet = score(rubric, timeline)
    if canonical_json(sheet.to_dict()) != row.sheet:
        raise ServiceError(f"attempt {a.attempt_id}: the stored sheet differs from a fresh score of the stored "
                           "timeline; run `examstation audit verify` before signing")
    origin = next(r for r in timeline if isinstance(r, LifecycleRecord) and r.kind == "attempt_start")
    head = tx.execute(select(AuditRow.seq, AuditRow.entry_hash).order_by(AuditRow.seq.desc()).limit(1)).first()
    doc = build_result(result_id=result_id, attempt_id=a.attempt_id, seq=seq, site=config.site.id,
                       station=a.station, candidate=CandidateRef(cand.id_number, cand.name, cand.batch),
                       sheet=sheet, origin_mono_ns=origin.t_mono_ns, origin_utc_ns=origin.t_utc_ns,
                       signed_by=a.examiner_signatures, signed_at_utc_ns=now.utc_ns, software=software,
                       video=video or VideoEvidence(), box=config.this_box.id if config.this_box else None,
                       audit_checkpoint=AuditCheckpoint(0, GENESIS_HASH) if head is None else AuditCheckpoint(*head))
    signed = key.sign(doc)
    outbox.store_result(tx, signed, actor=a.examiner_signatures[-1], attempt_id=a.attempt_id, utc_ns=now.utc_ns)
    if sheet.passed and sheet.complete:
        cand.passed_at_utc_ns = now.utc_ns  # the certificate's 12 months run from here
    return signed
