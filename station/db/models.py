"""The station database's tables, as SQLAlchemy 2 typed declarative models.

Every JSON column holds canonical JSON text (see `station.db.digest`) written by us, because
digests are taken over that exact text; the models store it as `str` and never re-serialise.
Times are integers: `*_utc_ns` wall-clock nanoseconds for people and the province,
`*_mono_ns` monotonic nanoseconds for durations within one run. Models carry only columns and
keys, no relationships or behaviour: the services own the rules.

The schema itself is created by the Alembic migrations in `station/db/migrations/versions/`; a
test checks that the migrated schema matches these models.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
"""Stable constraint names, so later migrations (SQLite batch mode) can address them."""

OUTBOX_STATES = ("queued", "delivered", "failed")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Candidate(Base):
    """A person sitting the practical exam (考生), as registered for a batch (批次)."""

    __tablename__ = "candidates"
    __table_args__ = (CheckConstraint("attempt_number IN (1, 2)", name="attempt_number"),)

    id_number: Mapped[str] = mapped_column(Text, primary_key=True)
    """居民身份证号 (or other ID document number): the candidate's identity."""
    name: Mapped[str] = mapped_column(Text)
    photo_ref: Mapped[str | None] = mapped_column(Text)
    """Where the registration photo is (evidence store reference), for the check-in comparison."""
    operation: Mapped[str] = mapped_column(Text)
    """Operation type (作业类别), e.g. 低压电工作业."""
    batch: Mapped[str] = mapped_column(Text)
    """批次号: the exam batch this sitting belongs to."""
    attempt_number: Mapped[int] = mapped_column(Integer)
    """1 for the first sitting, 2 for the one re-sit (补考) the rules allow."""
    passed_at_utc_ns: Mapped[int | None] = mapped_column(BigInteger)
    """Set when a delivered result passed; null while not (yet) passed."""


class CheckIn(Base):
    """Who verified the candidate's identity at the door, how and when (an invigilator's act)."""

    __tablename__ = "check_ins"
    __table_args__ = (CheckConstraint("method IN ('manual', 'id_card_reader')", name="method"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    candidate_id_number: Mapped[str] = mapped_column(ForeignKey("candidates.id_number"), index=True)
    attempt_id: Mapped[str] = mapped_column(ForeignKey("attempts.attempt_id"), index=True)
    verified_by: Mapped[str] = mapped_column(Text)
    """The invigilator (监考员) who checked the ID."""
    method: Mapped[str] = mapped_column(Text)
    """'manual' (document and face by eye) or 'id_card_reader' (二代证 reader)."""
    utc_ns: Mapped[int] = mapped_column(BigInteger)


class Attempt(Base):
    """One candidate's exam attempt at one station: the session state machine's persisted state."""

    __tablename__ = "attempts"

    attempt_id: Mapped[str] = mapped_column(Text, primary_key=True)
    """UUID text."""
    candidate_id_number: Mapped[str] = mapped_column(ForeignKey("candidates.id_number"), index=True)
    station: Mapped[str] = mapped_column(Text)
    operation: Mapped[str] = mapped_column(Text)
    rubric_id: Mapped[str] = mapped_column(Text)
    rubric_hash: Mapped[str] = mapped_column(Text)
    """Content hash of the rubric edition scored against; replay must use the same one."""
    state: Mapped[str] = mapped_column(Text)
    """`station.session.State` value; the state machine, not the database, decides what is legal."""
    seed: Mapped[int | None] = mapped_column(BigInteger)
    """Seed of the item draw (抽题), so the draw can be shown to be reproducible."""
    drawn_items: Mapped[str] = mapped_column(Text)
    """JSON list of the drawn item codes, in exam order."""
    snapshot: Mapped[str] = mapped_column(Text, server_default="{}")
    """The session state machine's whole state (station.session.Attempt) as JSON: item clocks,
    pause reasons, signatures. Written in the transaction of every step, so a restart resumes it."""
    created_utc_ns: Mapped[int] = mapped_column(BigInteger)
    updated_utc_ns: Mapped[int] = mapped_column(BigInteger)


class AttemptItem(Base):
    """Progress of one drawn item within an attempt: running, ended and why."""

    __tablename__ = "attempt_items"

    attempt_id: Mapped[str] = mapped_column(ForeignKey("attempts.attempt_id"), primary_key=True)
    code: Mapped[str] = mapped_column(Text, primary_key=True)
    subject: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(Text)
    started_mono_ns: Mapped[int | None] = mapped_column(BigInteger)
    ended_mono_ns: Mapped[int | None] = mapped_column(BigInteger)
    end_reason: Mapped[str | None] = mapped_column(Text)
    """`scoring.timeline.EndReason`: done, timeout, veto_stop, abandoned, interrupted."""


class TimelineRow(Base):
    """Append-only: every timeline record of an attempt, in order, hash-chained per attempt.

    row_hash = sha256(row_hash of seq-1, or the attempt_id for seq 0, + record). Rows are
    never updated or deleted; `station.audit.verify` walks the chains.
    """

    __tablename__ = "timeline"

    attempt_id: Mapped[str] = mapped_column(ForeignKey("attempts.attempt_id"), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    """0, 1, 2, ... per attempt, without gaps."""
    record: Mapped[str] = mapped_column(Text)
    """Canonical JSON of `scoring.timeline.record_to_dict(record)`."""
    row_hash: Mapped[str] = mapped_column(Text)


class ScoreSheetRow(Base):
    """Every score sheet computed for an attempt (re-scoring after a review adds a version)."""

    __tablename__ = "score_sheets"

    attempt_id: Mapped[str] = mapped_column(ForeignKey("attempts.attempt_id"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    sheet: Mapped[str] = mapped_column(Text)
    """`scoring.canonical.canonical_json(sheet.to_dict())`."""
    rubric_id: Mapped[str] = mapped_column(Text)
    rubric_hash: Mapped[str] = mapped_column(Text)
    created_utc_ns: Mapped[int] = mapped_column(BigInteger)
    sheet_sha256: Mapped[str] = mapped_column(Text)
    """sha256 of the `sheet` text (UTF-8)."""


class Signature(Base):
    """A candidate's or examiner's signature (or refusal to sign) on an attempt or one item."""

    __tablename__ = "signatures"
    __table_args__ = (
        CheckConstraint("role IN ('candidate', 'examiner')", name="role"),
        CheckConstraint("decision IN ('signed', 'refused')", name="decision"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    attempt_id: Mapped[str] = mapped_column(ForeignKey("attempts.attempt_id"), index=True)
    item_code: Mapped[str | None] = mapped_column(Text)
    """Null when the signature covers the whole attempt."""
    role: Mapped[str] = mapped_column(Text)
    who: Mapped[str] = mapped_column(Text)
    decision: Mapped[str] = mapped_column(Text)
    utc_ns: Mapped[int] = mapped_column(BigInteger)


class ResultRow(Base):
    """The signed result document of an attempt, exactly as delivered to the province.

    Written in one transaction with its outbox row and its audit entry (which carries
    `document_sha256`). `site_seq` is the per-site sequence the receiver uses to detect gaps.
    """

    __tablename__ = "results"

    result_id: Mapped[str] = mapped_column(Text, primary_key=True)
    """UUIDv7 text."""
    attempt_id: Mapped[str] = mapped_column(ForeignKey("attempts.attempt_id"), unique=True)
    site_seq: Mapped[int] = mapped_column(Integer, unique=True)
    document: Mapped[str] = mapped_column(Text)
    """The signed result document, canonical JSON."""
    document_sha256: Mapped[str] = mapped_column(Text)
    created_utc_ns: Mapped[int] = mapped_column(BigInteger)


class OutboxRow(Base):
    """Delivery state of one result: queued until the province's receipt names it."""

    __tablename__ = "outbox"
    __table_args__ = (
        CheckConstraint("state IN ('queued', 'delivered', 'failed')", name="state"),
        Index("ix_outbox_state_next_try", "state", "next_try_utc_ns"),
    )

    result_id: Mapped[str] = mapped_column(ForeignKey("results.result_id"), primary_key=True)
    state: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    """How many times it was sent."""
    next_try_utc_ns: Mapped[int] = mapped_column(BigInteger)
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_utc_ns: Mapped[int | None] = mapped_column(BigInteger)
    """When the province's receipt arrived (a broker PUBACK is not delivery)."""


class AuditRow(Base):
    """Append-only hash chain of everything that changes a result: transitions, marks, results, segments.

    entry_hash = sha256(prev_hash + canonical JSON of {seq, utc_ns, actor, action, subject, payload});
    written in the same transaction as the change it records (`station.audit.append`).
    """

    __tablename__ = "audit"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    """1, 2, 3, ... without gaps."""
    utc_ns: Mapped[int] = mapped_column(BigInteger)
    actor: Mapped[str] = mapped_column(Text)
    action: Mapped[str] = mapped_column(Text)
    subject: Mapped[str] = mapped_column(Text, index=True)
    payload: Mapped[str] = mapped_column(Text)
    """Canonical JSON object."""
    prev_hash: Mapped[str] = mapped_column(Text)
    entry_hash: Mapped[str] = mapped_column(Text)


class EvidenceSegment(Base):
    """One finished evidence video segment (`devices.camera.contract.Segment`) as the index knows it.

    Written in one transaction with its `evidence.segment` audit entry (which carries the SHA-256),
    so a segment file is either indexed and chained or not indexed at all. `path` is relative to the
    data directory. `keep_until_utc_ns` is set when an attempt links the segment (3 years after the
    attempt); no space policy deletes a segment while it is set and in the future.
    """

    __tablename__ = "evidence_segments"
    __table_args__ = (
        Index("ix_evidence_segments_station_start", "station", "start_utc_ns"),
        CheckConstraint("end_utc_ns >= start_utc_ns", name="time_order"),
    )

    segment_id: Mapped[str] = mapped_column(Text, primary_key=True)
    station: Mapped[str] = mapped_column(Text)
    camera: Mapped[str] = mapped_column(Text)
    path: Mapped[str] = mapped_column(Text, unique=True)
    sha256: Mapped[str] = mapped_column(Text)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    start_utc_ns: Mapped[int] = mapped_column(BigInteger)
    end_utc_ns: Mapped[int] = mapped_column(BigInteger)
    start_mono_ns: Mapped[int] = mapped_column(BigInteger)
    end_mono_ns: Mapped[int] = mapped_column(BigInteger)
    clock_run: Mapped[str] = mapped_column(Text)
    """The recording process run; monotonic times compare only within one run."""
    frames: Mapped[int] = mapped_column(Integer)
    codec: Mapped[str] = mapped_column(Text)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    recovered: Mapped[int] = mapped_column(Integer)
    """1 when rebuilt from a `.part` a crash left (the readable frames only; a gap covers the rest)."""
    keep_until_utc_ns: Mapped[int | None] = mapped_column(BigInteger)
    deleted_utc_ns: Mapped[int | None] = mapped_column(BigInteger)
    """Set when a retention policy removed the file of an unlinked segment; the row stays as the record."""


class CameraGapRow(Base):
    """A time a camera was not recorded, and why; open (`to_utc_ns` null) while it lasts."""

    __tablename__ = "camera_gaps"
    __table_args__ = (Index("ix_camera_gaps_station_from", "station", "from_utc_ns"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    station: Mapped[str] = mapped_column(Text)
    camera: Mapped[str] = mapped_column(Text)
    from_utc_ns: Mapped[int] = mapped_column(BigInteger)
    to_utc_ns: Mapped[int | None] = mapped_column(BigInteger)
    from_mono_ns: Mapped[int] = mapped_column(BigInteger)
    to_mono_ns: Mapped[int | None] = mapped_column(BigInteger)
    clock_run: Mapped[str] = mapped_column(Text)
    cause: Mapped[str] = mapped_column(Text)


class AttemptEvidence(Base):
    """An attempt's link to a segment of one of its station's cameras (check-in - pre-roll .. sign-off + post-roll)."""

    __tablename__ = "attempt_evidence"

    attempt_id: Mapped[str] = mapped_column(ForeignKey("attempts.attempt_id"), primary_key=True)
    segment_id: Mapped[str] = mapped_column(ForeignKey("evidence_segments.segment_id"), primary_key=True)


class AttemptStill(Base):
    """The still taken from a station camera at check-in, to compare the person with the registered photo (替考)."""

    __tablename__ = "attempt_stills"

    attempt_id: Mapped[str] = mapped_column(ForeignKey("attempts.attempt_id"), primary_key=True)
    camera: Mapped[str] = mapped_column(Text, primary_key=True)
    path: Mapped[str] = mapped_column(Text)
    """Relative to the data directory."""
    sha256: Mapped[str] = mapped_column(Text)
    utc_ns: Mapped[int] = mapped_column(BigInteger)


class User(Base):
    """A person who signs in to the proctor UI: admin (站点管理员), examiner (考评员) or proctor (监考员)."""

    __tablename__ = "users"

    name: Mapped[str] = mapped_column(Text, primary_key=True)
    role: Mapped[str] = mapped_column(Text)
    stations: Mapped[str] = mapped_column(Text)
    """Canonical JSON list of the station ids an examiner is assigned to (empty for the other roles)."""
    password_hash: Mapped[str] = mapped_column(Text)
    """Argon2id, in the PHC string format pwdlib writes; never the password."""
    created_utc_ns: Mapped[int] = mapped_column(BigInteger)
    disabled: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (CheckConstraint("role IN ('admin', 'examiner', 'proctor')", name="role"),)


class DisciplineIncident(Base):
    """A discipline incident (考场违纪) recorded at a station, with the attempt then open there."""

    __tablename__ = "discipline_incidents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    station: Mapped[str] = mapped_column(Text)
    attempt_id: Mapped[str | None] = mapped_column(ForeignKey("attempts.attempt_id"), nullable=True)
    category: Mapped[str] = mapped_column(Text)
    note: Mapped[str] = mapped_column(Text)
    recorded_by: Mapped[str] = mapped_column(Text)
    utc_ns: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (Index("ix_discipline_incidents_attempt_id", "attempt_id"),)
