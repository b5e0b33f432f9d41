"""The audit log: a hash chain over everything that changes a result, and `verify` for the whole database.

`append` adds one entry inside the caller's open write transaction (the same transaction as the
change it records, so the change and its entry commit or vanish together):
    entry_hash = sha256(prev_hash + canonical JSON of {seq, utc_ns, actor, action, subject, payload})
with seq 1, 2, 3, ... and prev_hash of entry 1 = 64 zeros. An entry that records a result carries
the result's `document_sha256` (`append_result`); an entry that seals a timeline carries the
timeline's row count and head hash (`station.timeline_store.seal_timeline`).

`verify(db)` re-checks, in one read snapshot: SQLite's own integrity and foreign keys, the audit
chain, every attempt's timeline chain (and its seals), every result's document hash against its
own column and its audit entry, every score sheet's hash. It reports every problem found (table,
key, what differs), not only the first; `ok` is True only when there are none. Deleting the newest
entries of a chain leaves a valid shorter chain: that is what the checkpoints sent to the province
are for (DESIGN.md "Durability and delivery").
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, insert, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from scoring.canonical import canonical_json
from scoring.timeline import record_from_dict
from station.db.digest import GENESIS_HASH, audit_entry_hash, sha256_hex, timeline_row_hash
from station.db.engine import Database
from station.db.errors import DatabaseError
from station.db.models import AuditRow, ResultRow, ScoreSheetRow, TimelineRow

RESULT_STORED = "result.stored"
"""Action of the entry recording a result; its payload has result_id and document_sha256."""
TIMELINE_SEALED = "timeline.sealed"
"""Action of the entry sealing a timeline; its payload has attempt_id, rows and head_hash."""

Transaction = Session | Connection
"""An open write transaction: the session of `Database.write()` (or its connection)."""


@dataclass(frozen=True, slots=True)
class AuditEntry:
    seq: int
    utc_ns: int
    actor: str
    action: str
    subject: str
    payload: Mapping[str, Any]
    prev_hash: str
    entry_hash: str


def append(
    tx: Transaction, actor: str, action: str, subject: str, payload: Mapping[str, Any], utc_ns: int
) -> AuditEntry:
    """Add the next entry to the chain inside `tx`, the open write transaction of the change it records.

    Raises ValueError when the payload is not plain JSON (NaN, bytes, objects), DatabaseError
    when `tx` has no open transaction.
    """
    if not tx.in_transaction():
        raise DatabaseError(f"audit entry {action} on {subject}: append() needs the open write transaction "
                            "of the change it records (inside Database.write())")
    try:
        payload_json = canonical_json(dict(payload))
    except (TypeError, ValueError) as err:
        raise ValueError(f"audit entry {action} on {subject}: payload is not plain JSON ({err})") from err
    value = json.loads(payload_json)  # hash what verify will read back, exactly
    last = tx.execute(select(AuditRow.seq, AuditRow.entry_hash).order_by(AuditRow.seq.desc()).limit(1)).first()
    seq = 1 if last is None else last.seq + 1
    prev_hash = GENESIS_HASH if last is None else last.entry_hash
    entry_hash = audit_entry_hash(prev_hash, seq, utc_ns, actor, action, subject, value)
    tx.execute(insert(AuditRow).values(
        seq=seq, utc_ns=utc_ns, actor=actor, action=action, subject=subject,
        payload=payload_json, prev_hash=prev_hash, entry_hash=entry_hash,
    ))
    return AuditEntry(seq, utc_ns, actor, action, subject, value, prev_hash, entry_hash)


def append_many(tx: Transaction, entries: Sequence[tuple[str, str, str, Mapping[str, Any]]], utc_ns: int) -> int:
    """Add several entries (actor, action, subject, payload) at one time in one statement: the
    uplink settles hundreds of receipts per transaction. Same chain, same hashes as `append`."""
    if not entries:
        return 0
    if not tx.in_transaction():
        raise DatabaseError("audit entries need the open write transaction of the change they record")
    last = tx.execute(select(AuditRow.seq, AuditRow.entry_hash).order_by(AuditRow.seq.desc()).limit(1)).first()
    seq = 0 if last is None else last.seq
    prev_hash = GENESIS_HASH if last is None else last.entry_hash
    rows = []
    for actor, action, subject, payload in entries:
        payload_json = canonical_json(dict(payload))
        value = json.loads(payload_json)
        seq += 1
        entry_hash = audit_entry_hash(prev_hash, seq, utc_ns, actor, action, subject, value)
        rows.append({"seq": seq, "utc_ns": utc_ns, "actor": actor, "action": action, "subject": subject,
                     "payload": payload_json, "prev_hash": prev_hash, "entry_hash": entry_hash})
        prev_hash = entry_hash
    tx.execute(insert(AuditRow), rows)
    return len(rows)


def append_result(
    tx: Transaction, actor: str, *, result_id: str, attempt_id: str, site_seq: int, document_sha256: str,
    utc_ns: int,
) -> AuditEntry:
    """The entry recording a stored result; call it in the transaction that inserts the result and outbox rows."""
    payload = {"result_id": result_id, "attempt_id": attempt_id, "site_seq": site_seq,
               "document_sha256": document_sha256}
    return append(tx, actor, RESULT_STORED, f"result:{result_id}", payload, utc_ns)


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing that does not hold: where (table and row key) and what differs."""

    table: str
    key: str
    message: str

    def __str__(self) -> str:
        return f"{self.table} {self.key}: {self.message}"


@dataclass(frozen=True, slots=True)
class VerifyReport:
    problems: tuple[Problem, ...]
    checked: Mapping[str, int] = field(default_factory=dict)
    """Rows checked per table."""

    @property
    def ok(self) -> bool:
        return not self.problems

    def __str__(self) -> str:
        counts = ", ".join(f"{n} {table}" for table, n in self.checked.items())
        if self.ok:
            return f"verified: all hold ({counts})"
        lines = [f"{len(self.problems)} problem(s) found ({counts} checked):"]
        lines += [f"  {p}" for p in self.problems]
        return "\n".join(lines)


@dataclass(slots=True)
class _Walk:
    """What the audit walk learns that the other checks need."""

    result_hashes: dict[str, list[tuple[int, str]]] = field(default_factory=lambda: defaultdict(list))
    seals: list[tuple[int, str, int, str]] = field(default_factory=list)


def verify(db: Database) -> VerifyReport:
    """Check every chain and digest in `db`; report every problem (see the module docstring)."""
    problems: list[Problem] = []
    checked: dict[str, int] = {}
    walk = _Walk()
    with db.read() as session:
        steps: tuple[tuple[str, Callable[[], None]], ...] = (
            ("sqlite", lambda: _check_sqlite(session, problems)),
            ("audit", lambda: _check_audit(session, problems, checked, walk)),
            ("timeline", lambda: _check_timeline(session, problems, checked, walk)),
            ("results", lambda: _check_results(session, problems, checked, walk)),
            ("score_sheets", lambda: _check_score_sheets(session, problems, checked)),
        )
        for table, step in steps:
            try:
                step()
            except SQLAlchemyError as err:
                problems.append(Problem(table, "*", f"could not be read: {getattr(err, 'orig', err)}"))
    return VerifyReport(tuple(problems), checked)


def _check_sqlite(session: Session, problems: list[Problem]) -> None:
    for (line,) in session.execute(text("PRAGMA integrity_check")):
        if line != "ok":
            problems.append(Problem("sqlite", "integrity_check", str(line)))
    for table, rowid, parent, _fk in session.execute(text("PRAGMA foreign_key_check")):
        problems.append(Problem(str(table), f"rowid={rowid}", f"refers to a missing row of {parent}"))


def _check_audit(session: Session, problems: list[Problem], checked: dict[str, int], walk: _Walk) -> None:
    expected_seq = 1
    prev_stored = prev_recomputed = GENESIS_HASH
    count = 0
    for row in session.execute(select(AuditRow).order_by(AuditRow.seq)).scalars():
        count += 1
        key = f"seq={row.seq}"
        if row.seq != expected_seq:
            problems.append(Problem("audit", key, f"seq jumps from {expected_seq - 1} to {row.seq}: "
                                                  f"entries {expected_seq}..{row.seq - 1} are missing"))
        elif row.prev_hash not in (prev_stored, prev_recomputed):
            problems.append(Problem("audit", key, f"prev_hash {row.prev_hash} differs from the entry_hash "
                                                  f"{prev_stored} of seq {row.seq - 1}"))
        recomputed: str | None = None
        try:
            payload = json.loads(row.payload)
        except ValueError as err:
            problems.append(Problem("audit", key, f"payload is not valid JSON ({err}): {row.payload[:200]!r}"))
        else:
            if canonical_json(payload) != row.payload:
                problems.append(Problem("audit", key, "payload text is not in canonical form"))
            recomputed = audit_entry_hash(row.prev_hash, row.seq, row.utc_ns, row.actor, row.action, row.subject,
                                          payload)
            if recomputed != row.entry_hash:
                problems.append(Problem("audit", key, f"entry_hash differs: stored {row.entry_hash}, recomputed "
                                                      f"{recomputed} from the row's columns"))
            if isinstance(payload, dict):
                _learn(row.seq, row.action, payload, walk)
        prev_stored = row.entry_hash
        prev_recomputed = recomputed or row.entry_hash
        expected_seq = row.seq + 1
    checked["audit"] = count


def _learn(seq: int, action: str, payload: dict[str, Any], walk: _Walk) -> None:
    if isinstance(payload.get("result_id"), str) and isinstance(payload.get("document_sha256"), str):
        walk.result_hashes[payload["result_id"]].append((seq, payload["document_sha256"]))
    if action == TIMELINE_SEALED:
        attempt_id, rows, head = payload.get("attempt_id"), payload.get("rows"), payload.get("head_hash")
        if isinstance(attempt_id, str) and isinstance(rows, int) and isinstance(head, str):
            walk.seals.append((seq, attempt_id, rows, head))


def _check_timeline(session: Session, problems: list[Problem], checked: dict[str, int], walk: _Walk) -> None:
    count = 0
    current: str | None = None
    expected_seq = 0
    prev_stored: str | None = None
    prev_recomputed: str | None = None
    heads: dict[tuple[str, int], str] = {}
    lengths: dict[str, int] = {}
    rows = session.execute(select(TimelineRow.attempt_id, TimelineRow.seq, TimelineRow.record, TimelineRow.row_hash)
                           .order_by(TimelineRow.attempt_id, TimelineRow.seq))
    for attempt_id, seq, record, row_hash in rows:
        count += 1
        if attempt_id != current:
            current, expected_seq, prev_stored, prev_recomputed = attempt_id, 0, None, None
        key = f"attempt_id={attempt_id},seq={seq}"
        after_gap = seq != expected_seq
        if after_gap:
            problems.append(Problem("timeline", key, f"seq jumps from {expected_seq - 1} to {seq}: rows "
                                                     f"{expected_seq}..{seq - 1} are missing (chain check of this "
                                                     "row skipped)"))
        recomputed = timeline_row_hash(attempt_id, prev_recomputed, record)
        if not after_gap and row_hash not in (recomputed, timeline_row_hash(attempt_id, prev_stored, record)):
            problems.append(Problem("timeline", key, f"row_hash differs: stored {row_hash}, recomputed {recomputed} "
                                                     "from the record and the previous row"))
        try:
            record_from_dict(json.loads(record))
        except (ValueError, TypeError, AttributeError) as err:
            problems.append(Problem("timeline", key, f"record is not a valid timeline record: {err}"))
        prev_stored, prev_recomputed, expected_seq = row_hash, recomputed, seq + 1
        heads[(attempt_id, seq)] = row_hash
        lengths[attempt_id] = seq + 1
    for audit_seq, attempt_id, n, head in walk.seals:
        key = f"attempt_id={attempt_id}"
        if n == 0:
            continue
        stored_head = heads.get((attempt_id, n - 1))
        if stored_head is None:
            problems.append(Problem("timeline", key, f"audit seq={audit_seq} sealed {n} rows, the table holds "
                                                     f"{lengths.get(attempt_id, 0)}"))
        elif stored_head != head:
            problems.append(Problem("timeline", key, f"audit seq={audit_seq} sealed row {n - 1} with hash {head}, "
                                                     f"the row now has {stored_head}"))
    checked["timeline"] = count


def _check_results(session: Session, problems: list[Problem], checked: dict[str, int], walk: _Walk) -> None:
    count = 0
    seen: set[str] = set()
    for row in session.execute(select(ResultRow).order_by(ResultRow.site_seq)).scalars():
        count += 1
        seen.add(row.result_id)
        key = f"result_id={row.result_id}"
        actual = sha256_hex(row.document)
        if row.document_sha256 != actual:
            problems.append(Problem("results", key, f"document_sha256 column {row.document_sha256} differs from "
                                                    f"the sha256 of the document text {actual}"))
        entries = walk.result_hashes.get(row.result_id, [])
        if not entries:
            problems.append(Problem("results", key, "no audit entry records this result's document_sha256"))
        for audit_seq, recorded in entries:
            if recorded != actual:
                problems.append(Problem("results", key, f"audit seq={audit_seq} recorded document_sha256 "
                                                        f"{recorded}, the document text hashes to {actual}"))
        try:
            document = json.loads(row.document)
        except ValueError as err:
            problems.append(Problem("results", key, f"document is not valid JSON ({err})"))
        else:
            if isinstance(document, dict) and document.get("result_id", row.result_id) != row.result_id:
                problems.append(Problem("results", key, f"document names result_id {document.get('result_id')!r}"))
    for result_id, entries in walk.result_hashes.items():
        if result_id not in seen:
            seqs = ", ".join(str(s) for s, _ in entries)
            problems.append(Problem("results", f"result_id={result_id}",
                                    f"audit seq={seqs} records this result, but the results table has no such row"))
    checked["results"] = count


def _check_score_sheets(session: Session, problems: list[Problem], checked: dict[str, int]) -> None:
    count = 0
    for row in session.execute(select(ScoreSheetRow).order_by(ScoreSheetRow.attempt_id,
                                                              ScoreSheetRow.version)).scalars():
        count += 1
        key = f"attempt_id={row.attempt_id},version={row.version}"
        actual = sha256_hex(row.sheet)
        if row.sheet_sha256 != actual:
            problems.append(Problem("score_sheets", key, f"sheet_sha256 column {row.sheet_sha256} differs from the "
                                                         f"sha256 of the sheet text {actual}"))
        try:
            sheet = json.loads(row.sheet)
        except ValueError as err:
            problems.append(Problem("score_sheets", key, f"sheet is not valid JSON ({err})"))
            continue
        if isinstance(sheet, dict):
            for column in ("rubric_id", "rubric_hash"):
                if sheet.get(column) != getattr(row, column):
                    problems.append(Problem("score_sheets", key, f"{column} column {getattr(row, column)!r} differs "
                                                                 f"from the sheet's {sheet.get(column)!r}"))
    checked["score_sheets"] = count
