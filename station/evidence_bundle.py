"""`examstation export ATTEMPT_ID OUT`: one signed attempt's record as a bundle anyone can verify.

An appeal board, the province or a court gets the attempt without the station: the signed result,
the key that signed it, the timeline it was scored from, the sheet, the rubric edition, the video
and the audit-chain entries that tie them together (layout: station.bundle_format). `examstation
verify OUT` then checks it with no database (station.bundle_verify).

Why the export refuses rather than writes: a bundle that does not verify would accuse the site of
tampering it did not do, or hide tampering it did. So a segment whose file no longer hashes to what
the evidence index recorded, a rubric installed now of another edition than the one that scored, or
a record without its audit entry stops the export with a message that names it and says what to do.

The database is opened read-only (SQLite `mode=ro`), so a forensic copy can be exported. The bundle
is written into `OUT.partial`, every file fsynced, and renamed to OUT at the end: a directory named
OUT is always a whole bundle.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from scoring.canonical import canonical_json
from scoring.rubric_loader import RubricError, available_rubrics, load_rubric_file, rubric_for
from station.audit import RESULT_STORED, TIMELINE_SEALED
from station.bundle_format import (
    CHUNK_BYTES,
    EVIDENCE_LINKED,
    FORMAT,
    MANIFEST,
    PUBLIC_KEY,
    RESULT,
    RUBRIC_DIR,
    SEGMENT_STORED,
    SHEET,
    STILL_STORED,
    TIMELINE,
    BundleError,
    Entry,
    safe_name,
    segment_file,
    still_file,
)
from station.db import database_path, open_database
from station.db.models import (
    Attempt,
    AttemptEvidence,
    AttemptStill,
    AuditRow,
    EvidenceSegment,
    ResultRow,
    ScoreSheetRow,
    TimelineRow,
)
from station.record_proof import SHEET_SCORED
from station.signing import KEY_FILE, SigningError, SiteKey


@dataclass(frozen=True, slots=True)
class _Stored:
    """What the database holds about one signed attempt, read in one snapshot."""

    attempt_id: str
    operation: str
    result_id: str
    document: str
    sheet: str
    rubric_hash: str
    timeline: list[tuple[int, str, str]]
    segments: list[tuple[str, str, str, int | None]]
    """(segment_id, path relative to the data directory, sha256 recorded, deleted_utc_ns)."""
    stills: list[tuple[str, str, str]]
    """(camera, path relative to the data directory, sha256 recorded)."""
    entries: list[Entry]


def export_bundle(data_dir: Path, attempt_id: str, out: Path) -> str:
    """Write the bundle of `attempt_id` to the new directory `out`; return a one-line summary."""
    partial = _claim(out)
    public_pem = _public_key(data_dir)
    with open_database(database_path(data_dir), read_only=True) as db, db.read() as session:
        stored = _read(session, attempt_id)
    rubric_path = _rubric_file(stored)
    doc = json.loads(stored.document)
    try:
        partial.mkdir(parents=True)
        files = {
            RESULT: _write(partial, RESULT, stored.document.encode()),
            PUBLIC_KEY: _write(partial, PUBLIC_KEY, public_pem.encode("ascii")),
            SHEET: _write(partial, SHEET, stored.sheet.encode()),
            TIMELINE: _write(partial, TIMELINE, "".join(
                canonical_json({"seq": seq, "record": record, "row_hash": row_hash}) + "\n"
                for seq, record, row_hash in stored.timeline).encode()),
            f"{RUBRIC_DIR}/{rubric_path.name}": _write(partial, f"{RUBRIC_DIR}/{rubric_path.name}",
                                                       rubric_path.read_bytes()),
        }
        for segment_id, rel, sha256, deleted in stored.segments:
            if deleted is not None:
                raise BundleError(f"segment {segment_id} of attempt {attempt_id}: its file {rel} was deleted by a "
                                  "retention policy although the attempt links it; restore it from the backup")
            name = segment_file(segment_id, Path(rel).suffix or ".mkv")
            files[name] = _copy(data_dir / rel, partial / name, sha256, f"segment {segment_id}")
        for camera, rel, sha256 in stored.stills:
            name = still_file(camera)
            files[name] = _copy(data_dir / rel, partial / name, sha256, f"check-in still of camera {camera}")
        manifest = {"format": FORMAT, "site": doc.get("site"), "station": doc.get("station"),
                    "attempt_id": attempt_id, "result_id": stored.result_id, "files": files,
                    "audit": [e.to_dict() for e in stored.entries]}
        _write(partial, MANIFEST, canonical_json(manifest).encode())
        _fsync_dirs(partial)
        partial.rename(out)
        _fsync(out.resolve().parent)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    first, last = stored.entries[0].seq, stored.entries[-1].seq
    return (f"bundle {out}: result {stored.result_id} of attempt {attempt_id}, {len(stored.timeline)} timeline "
            f"rows, {len(stored.segments)} segments, {len(stored.stills)} stills, audit entries {first}..{last}; "
            f"check it with `examstation verify {out}`")


def _claim(out: Path) -> Path:
    """Refuse an OUT that exists and holds anything, or a half export left by an earlier run."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise BundleError(f"{out} exists and is not an empty directory; give a new directory for the bundle "
                          "(an export never writes over anything)")
    partial = out.with_name(out.name + ".partial")
    if partial.exists():
        raise BundleError(f"{partial} exists: an earlier export stopped half way; remove it and export again")
    return partial  # an empty OUT stays until the rename at the end puts the bundle in its place


def _public_key(data_dir: Path) -> str:
    path = data_dir / "keys" / KEY_FILE
    if not path.exists():
        raise BundleError(f"no site key at {path}: the bundle needs the public half of the key that signed the "
                          "result; check --data-dir, or restore keys/ from the site's backup")
    try:
        return SiteKey.load(path).public_pem()
    except SigningError as err:
        raise BundleError(str(err)) from err


def _read(s: Session, attempt_id: str) -> _Stored:
    attempt = s.get(Attempt, attempt_id)
    if attempt is None:
        raise BundleError(f"no attempt {attempt_id} in this data directory; `examstation outbox --all` lists "
                          "results with their attempts")
    result = s.execute(select(ResultRow).where(ResultRow.attempt_id == attempt_id)).scalar()
    if result is None:
        raise BundleError(f"attempt {attempt_id} has no signed result (it is {attempt.state}); a bundle is made of "
                          "a signed attempt: export it after the examiners sign")
    sheet = s.execute(select(ScoreSheetRow).where(ScoreSheetRow.attempt_id == attempt_id)
                      .order_by(ScoreSheetRow.version.desc()).limit(1)).scalar_one()
    timeline = [(r.seq, r.record, r.row_hash) for r in s.execute(
        select(TimelineRow).where(TimelineRow.attempt_id == attempt_id).order_by(TimelineRow.seq)).scalars()]
    segments = [(g.segment_id, g.path, g.sha256, g.deleted_utc_ns) for g in s.execute(
        select(EvidenceSegment).join(AttemptEvidence, AttemptEvidence.segment_id == EvidenceSegment.segment_id)
        .where(AttemptEvidence.attempt_id == attempt_id).order_by(EvidenceSegment.segment_id)).scalars()]
    stills = [(t.camera, t.path, t.sha256) for t in s.execute(
        select(AttemptStill).where(AttemptStill.attempt_id == attempt_id).order_by(AttemptStill.camera)).scalars()]
    for camera, _, _ in stills:
        safe_name(camera, f"camera of attempt {attempt_id}")
    doc = json.loads(result.document)
    point = doc.get("audit_checkpoint") or {}
    stored = _Stored(attempt_id, attempt.operation, result.result_id, result.document, sheet.sheet,
                     sheet.rubric_hash, timeline, segments, stills, [])
    entries = _entries(s, stored, int(point.get("seq", 0)), sheet.version)
    return replace(stored, entries=entries)


_OF_ATTEMPT = (SHEET_SCORED, TIMELINE_SEALED, STILL_STORED, EVIDENCE_LINKED)
"""Covering actions whose subject is `attempt:<attempt_id>`."""


def _entries(s: Session, stored: _Stored, checkpoint_seq: int, sheet_version: int) -> list[Entry]:
    """The covering entries and every entry between the first of them and the checkpoint the result
    carries (or the result's own entry, written just after it): one contiguous piece of the chain."""
    aid = stored.attempt_id
    subjects = [f"segment:{segment_id}" for segment_id, *_ in stored.segments]
    rows = s.execute(select(AuditRow).where(or_(
        (AuditRow.action == RESULT_STORED) & (AuditRow.subject == f"result:{stored.result_id}"),
        AuditRow.action.in_(_OF_ATTEMPT) & (AuditRow.subject == f"attempt:{aid}"),
        (AuditRow.action == SEGMENT_STORED) & AuditRow.subject.in_(subjects),
    ))).scalars().all()
    covering = list(rows)
    actions = {r.action for r in covering}
    missing = [what for action, what in ((RESULT_STORED, "its result"), (TIMELINE_SEALED, "the seal of its timeline"))
               if action not in actions]
    if not any(r.action == SHEET_SCORED and _payload(r).get("version") == sheet_version for r in covering):
        missing.append(f"its score sheet version {sheet_version}")
    recorded = {r.subject.removeprefix("segment:") for r in covering if r.action == SEGMENT_STORED}
    missing += [f"segment {segment_id}" for segment_id, *_ in stored.segments if segment_id not in recorded]
    if stored.segments and EVIDENCE_LINKED not in actions:
        missing.append("the link of its segments")
    stills = {_payload(r).get("camera") for r in covering if r.action == STILL_STORED}
    missing += [f"the check-in still of camera {camera}" for camera, *_ in stored.stills if camera not in stills]
    if missing:
        raise BundleError(f"attempt {aid}: no audit entry records {', '.join(missing)}; the bundle would not "
                          "verify. Run `examstation audit verify` and restore the database from a backup")
    first = min(r.seq for r in covering)
    last = max(checkpoint_seq, *(r.seq for r in covering))
    return [Entry(r.seq, r.utc_ns, r.actor, r.action, r.subject, _payload(r), r.prev_hash, r.entry_hash)
            for r in s.execute(select(AuditRow).where(AuditRow.seq.between(first, last))
                               .order_by(AuditRow.seq)).scalars()]


def _payload(row: AuditRow) -> dict[str, Any]:
    value = json.loads(row.payload)
    if not isinstance(value, dict):
        raise BundleError(f"audit seq={row.seq}: the payload is not a JSON object; run `examstation audit verify`")
    return value


def _rubric_file(stored: _Stored) -> Path:
    """The installed rubric file whose content hash is the one the sheet names."""
    for path in available_rubrics():
        try:
            if load_rubric_file(path).hash == stored.rubric_hash:
                return path
        except RubricError:
            continue  # a broken file of another operation is not this attempt's rubric
    try:
        now = rubric_for(stored.operation)
        installed = f"the installed rubric for {stored.operation} is {now.hash} ({now.id}), another edition"
    except RubricError as err:
        installed = f"no installed rubric file can be used ({err})"
    raise BundleError(f"attempt {stored.attempt_id} was scored with rubric {stored.rubric_hash}; {installed}. The "
                      "bundle must carry the edition that scored it: restore that file into scoring/rubrics/ (or "
                      "export on the installation that scored it) and export again")


def _write(root: Path, name: str, data: bytes) -> str:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    return hashlib.sha256(data).hexdigest()


def _copy(src: Path, dst: Path, recorded: str, what: str) -> str:
    """Copy byte for byte, hashing as it copies; refuse a file that is not what was recorded."""
    digest = hashlib.sha256()
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        with src.open("rb") as f, dst.open("wb") as g:
            while chunk := f.read(CHUNK_BYTES):
                digest.update(chunk)
                g.write(chunk)
            g.flush()
            os.fsync(g.fileno())
    except FileNotFoundError as err:
        raise BundleError(f"{what}: its file {src} is missing; restore it from the backup and export again") from err
    if digest.hexdigest() != recorded:
        raise BundleError(f"{what}: {src} hashes to {digest.hexdigest()}, the evidence index recorded {recorded} "
                          "when it was recorded: the file was changed after recording. Nothing was exported; run "
                          "`examstation audit verify` and restore the file from the backup")
    return recorded


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dirs(root: Path) -> None:
    for path in sorted({p.parent for p in root.rglob("*")} | {root}):
        _fsync(path)
