"""The audit hash chain and `verify`: every tampered byte is found, with table, key and what differs.

Tampering is done the way someone with the file would do it: the stdlib sqlite3 module, one
character of one column changed.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from scoring.canonical import canonical_json
from scoring.sheet import ScoreSheet
from scoring.timeline import MarkRecord, SampleRecord
from station import audit
from station.db import Database, DatabaseError, open_database, upgrade
from station.db.digest import GENESIS_HASH, sha256_hex
from station.db.models import Attempt, Candidate, OutboxRow, ResultRow, ScoreSheetRow
from station.stored import load_timeline, seal_timeline
from station.timeline_store import TimelineWriter

ATTEMPTS = ("att-0001", "att-0002")


def seed_attempt(db: Database, attempt_id: str, id_number: str) -> None:
    with db.write() as s:
        s.add(Candidate(id_number=id_number, name="张三", photo_ref=None, operation="低压电工作业", batch="2025-03-B1",
                        attempt_number=1, passed_at_utc_ns=None))
        s.flush()
        s.add(Attempt(attempt_id=attempt_id, candidate_id_number=id_number, station="A01",
                      operation="低压电工作业", rubric_id="lv-2025", rubric_hash="ab" * 32, state="scored", seed=7,
                      drawn_items='["K11","K21"]', created_utc_ns=1, updated_utc_ns=2))


def store_result(db: Database, attempt_id: str, site_seq: int) -> str:
    result_id = f"0190-{site_seq:04d}"
    document = canonical_json_of({"result_id": result_id, "attempt_id": attempt_id, "seq": site_seq,
                                  "total": 87.5, "passed": True, "signed_by": ["考评员李四"]})
    digest = sha256_hex(document)
    with db.write() as s:
        s.add(ResultRow(result_id=result_id, attempt_id=attempt_id, site_seq=site_seq, document=document,
                        document_sha256=digest, created_utc_ns=10))
        s.flush()
        s.add(OutboxRow(result_id=result_id, state="queued", attempts=0, next_try_utc_ns=10, last_error=None,
                        delivered_utc_ns=None))
        audit.append_result(s, "station", result_id=result_id, attempt_id=attempt_id, site_seq=site_seq,
                            document_sha256=digest, utc_ns=10)
    return result_id


def canonical_json_of(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def store_sheet(db: Database, attempt_id: str) -> None:
    sheet = ScoreSheet(rubric_id="lv-2025", rubric_hash="ab" * 32, operation="低压电工作业", items=(), total=87.5,
                       pass_total=80.0, passed=True, veto_failed=False, complete=False)
    text = canonical_json(sheet.to_dict())
    with db.write() as s:
        s.add(ScoreSheetRow(attempt_id=attempt_id, version=1, sheet=text, rubric_id=sheet.rubric_id,
                            rubric_hash=sheet.rubric_hash, created_utc_ns=9, sheet_sha256=sha256_hex(text)))


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    """A database with 120 audit entries, two sealed timelines of 40 rows, two results and two sheets."""
    path = tmp_path / "examstation.sqlite3"
    upgrade(path)
    with open_database(path) as database:
        for n, attempt_id in enumerate(ATTEMPTS):
            seed_attempt(database, attempt_id, f"11010119900101{n:04d}")
        with database.write() as s:
            for i in range(120):
                audit.append(s, "考评员王五", "mark.added", f"attempt:{ATTEMPTS[i % 2]}",
                             {"item": "K21", "code": f"D{i}", "points": -2.5, "note": "未验电"}, 1_000 + i)
        writer = TimelineWriter(database)
        try:
            for i in range(40):
                for attempt_id in ATTEMPTS:
                    writer.append(attempt_id, SampleRecord("bench.km1", i % 2 == 0, i * 1000, i * 1000 + 5))
            writer.append(ATTEMPTS[0], MarkRecord("K21", "D3", 1, "考评员王五", "未戴绝缘手套", 5, 6))
            writer.flush()
        finally:
            writer.close()
        with database.write() as s:
            for attempt_id in ATTEMPTS:
                seal_timeline(s, "station", attempt_id, 2_000)
        for n, attempt_id in enumerate(ATTEMPTS):
            store_result(database, attempt_id, n + 1)
            store_sheet(database, attempt_id)
        yield database


def flip(value: str, at: int) -> str:
    """`value` with one character changed: the first letter or digit at or before index `at`."""
    pos = at % len(value)
    while not value[pos].isalnum():
        pos -= 1
    old = value[pos]
    if old.isdigit():
        new = str((int(old) + 1) % 10)
    elif old.isascii():
        new = "b" if old == "a" else "a"  # stays hex in a hash
    else:
        new = "乙" if old == "甲" else "甲"
    return value[:pos] + new + value[pos + 1:]


def tamper(db: Database, sql_select: str, sql_update: str, params: tuple[object, ...], at: int | str = -3) -> str:
    """Change one character of the column `sql_select` returns, with the stdlib sqlite3 module.

    `at` is an index, or a marker whose last character is the one to change.
    """
    conn = sqlite3.connect(db.path)
    try:
        (value,) = conn.execute(sql_select, params).fetchone()
        changed = flip(value, at if isinstance(at, int) else value.index(at) + len(at) - 1)
        with conn:
            conn.execute(sql_update, (changed, *params))
        return changed
    finally:
        conn.close()


def test_the_chain_verifies_and_counts_what_it_checked(db: Database) -> None:
    report = audit.verify(db)
    assert report.ok, str(report)
    assert report.checked == {"audit": 124, "timeline": 81, "results": 2, "score_sheets": 2}
    assert str(report).startswith("verified: all hold")


def test_entries_follow_the_documented_formula(db: Database) -> None:
    conn = sqlite3.connect(db.path)
    try:
        rows = conn.execute("SELECT seq, utc_ns, actor, action, subject, payload, prev_hash, entry_hash "
                            "FROM audit ORDER BY seq").fetchall()
        timeline = conn.execute("SELECT seq, record, row_hash FROM timeline WHERE attempt_id = ? ORDER BY seq",
                                (ATTEMPTS[0],)).fetchall()
    finally:
        conn.close()
    prev = "0" * 64
    for n, (seq, utc_ns, actor, action, subject, payload, prev_hash, entry_hash) in enumerate(rows, start=1):
        assert seq == n and prev_hash == prev
        body = json.dumps({"seq": seq, "utc_ns": utc_ns, "actor": actor, "action": action, "subject": subject,
                           "payload": json.loads(payload)}, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        assert entry_hash == hashlib.sha256((prev + body).encode()).hexdigest()
        prev = entry_hash
    prev = ATTEMPTS[0]
    for n, (seq, record, row_hash) in enumerate(timeline):
        assert seq == n
        assert row_hash == hashlib.sha256((prev + record).encode()).hexdigest()
        prev = row_hash


def test_an_entry_commits_or_vanishes_with_the_change_it_records(db: Database) -> None:
    class Boom(Exception):
        pass

    with pytest.raises(Boom), db.write() as s:
        s.add(Candidate(id_number="X1", name="李", photo_ref=None, operation="o", batch="b", attempt_number=2,
                        passed_at_utc_ns=None))
        audit.append(s, "proctor", "candidate.registered", "candidate:X1", {"attempt_number": 2}, 5)
        raise Boom
    with db.read() as s:
        assert s.get(Candidate, "X1") is None
    assert audit.verify(db).checked["audit"] == 124


def test_append_needs_the_open_write_transaction_and_plain_json(db: Database) -> None:
    with db.write() as s, pytest.raises(ValueError, match="payload is not plain JSON"):
        audit.append(s, "x", "y", "z", {"depth_mm": float("nan")}, 1)
    from sqlalchemy.orm import Session

    with Session(bind=None) as loose, pytest.raises(DatabaseError, match="needs the open write transaction"):
        audit.append(loose, "x", "y", "z", {}, 1)


def test_concurrent_writers_are_serialised_into_one_chain(db: Database) -> None:
    def work(n: int) -> None:
        for i in range(25):
            with db.write() as s:
                audit.append(s, f"thread-{n}", "segment.hashed", f"segment:{n}-{i}", {"sha256": "c" * 64}, i)

    threads = [threading.Thread(target=work, args=(n,), name=f"audit-{n}") for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    report = audit.verify(db)
    assert report.ok, str(report)
    assert report.checked["audit"] == 124 + 100


@pytest.mark.parametrize(
    ("select", "update", "params", "table", "key", "says"),
    [
        ("SELECT payload FROM audit WHERE seq = ?", "UPDATE audit SET payload = ? WHERE seq = ?", (57,),
         "audit", "seq=57", "entry_hash differs"),
        ("SELECT actor FROM audit WHERE seq = ?", "UPDATE audit SET actor = ? WHERE seq = ?", (3,),
         "audit", "seq=3", "entry_hash differs"),
        ("SELECT entry_hash FROM audit WHERE seq = ?", "UPDATE audit SET entry_hash = ? WHERE seq = ?", (88,),
         "audit", "seq=88", "entry_hash differs"),
        ("SELECT document FROM results WHERE result_id = ?", "UPDATE results SET document = ? WHERE result_id = ?",
         ("0190-0002",), "results", "result_id=0190-0002", "differs from the sha256 of the document text"),
        ("SELECT document_sha256 FROM results WHERE result_id = ?",
         "UPDATE results SET document_sha256 = ? WHERE result_id = ?",
         ("0190-0001",), "results", "result_id=0190-0001", "document_sha256 column"),
        ("SELECT record FROM timeline WHERE attempt_id = ? AND seq = ?",
         "UPDATE timeline SET record = ? WHERE attempt_id = ? AND seq = ?",
         (ATTEMPTS[1], 17), "timeline", f"attempt_id={ATTEMPTS[1]},seq=17", "row_hash differs"),
        ("SELECT row_hash FROM timeline WHERE attempt_id = ? AND seq = ?",
         "UPDATE timeline SET row_hash = ? WHERE attempt_id = ? AND seq = ?",
         (ATTEMPTS[0], 5), "timeline", f"attempt_id={ATTEMPTS[0]},seq=5", "row_hash differs"),
        ("SELECT sheet FROM score_sheets WHERE attempt_id = ? AND version = ?",
         "UPDATE score_sheets SET sheet = ? WHERE attempt_id = ? AND version = ?",
         (ATTEMPTS[0], 1), "score_sheets", f"attempt_id={ATTEMPTS[0]},version=1", "sheet_sha256 column"),
    ],
    ids=["audit-payload", "audit-actor", "audit-entry-hash", "result-document", "result-hash", "timeline-record",
         "timeline-row-hash", "score-sheet"],
)
def test_one_changed_character_is_reported_with_table_and_key(
    db: Database, select: str, update: str, params: tuple[object, ...], table: str, key: str, says: str
) -> None:
    marker = {"sheet": '"total":8', "record": '"t_utc_ns":1'}
    changed = tamper(db, select, update, params, at=next((m for c, m in marker.items() if c in select), -3))
    report = audit.verify(db)
    assert not report.ok
    where = [(p.table, p.key) for p in report.problems]
    assert (table, key) in where, str(report)
    assert any(says in p.message for p in report.problems if (p.table, p.key) == (table, key)), str(report)
    assert {(p.table, p.key) for p in report.problems} == {(table, key)}, f"no cascade to other rows:\n{report}"
    if "hash" in select:
        assert changed in str(report), "the report shows the stored value that differs"


def test_a_flip_that_breaks_the_json_is_reported_too(db: Database) -> None:
    for select, update, params in (
        ("SELECT payload FROM audit WHERE seq = ?", "UPDATE audit SET payload = ? WHERE seq = ?", (7,)),
        ("SELECT record FROM timeline WHERE attempt_id = ? AND seq = ?",
         "UPDATE timeline SET record = ? WHERE attempt_id = ? AND seq = ?", (ATTEMPTS[0], 0)),
    ):
        conn = sqlite3.connect(db.path)
        try:
            (value,) = conn.execute(select, params).fetchone()
            with conn:
                conn.execute(update, (value[:-1] + "]", *params))
        finally:
            conn.close()
    report = audit.verify(db)
    messages = [str(p) for p in report.problems]
    assert any(m.startswith("audit seq=7: payload is not valid JSON") for m in messages), messages
    assert f"timeline attempt_id={ATTEMPTS[0]},seq=0: row_hash differs" in "\n".join(messages)
    assert len(report.problems) == 3, str(report)  # the timeline row is also not a valid record


def test_a_changed_document_is_caught_by_its_audit_entry_too(db: Database) -> None:
    # Someone who edits the document and fixes up its hash column is still caught by the audit chain.
    conn = sqlite3.connect(db.path)
    try:
        (document,) = conn.execute("SELECT document FROM results WHERE result_id = '0190-0001'").fetchone()
        forged = document.replace('"passed":true', '"passed":false')
        with conn:
            conn.execute("UPDATE results SET document = ?, document_sha256 = ? WHERE result_id = '0190-0001'",
                         (forged, sha256_hex(forged)))
    finally:
        conn.close()
    report = audit.verify(db)
    (problem,) = report.problems
    assert (problem.table, problem.key) == ("results", "result_id=0190-0001")
    assert f"recorded document_sha256 {sha256_hex(document)}" in problem.message


def test_every_problem_is_reported_not_only_the_first(db: Database) -> None:
    tamper(db, "SELECT payload FROM audit WHERE seq = ?", "UPDATE audit SET payload = ? WHERE seq = ?", (10,))
    tamper(db, "SELECT record FROM timeline WHERE attempt_id = ? AND seq = ?",
           "UPDATE timeline SET record = ? WHERE attempt_id = ? AND seq = ?", (ATTEMPTS[0], 30), at='"t_mono_ns":3')
    tamper(db, "SELECT document FROM results WHERE result_id = ?",
           "UPDATE results SET document = ? WHERE result_id = ?", ("0190-0001",))
    tamper(db, "SELECT sheet FROM score_sheets WHERE attempt_id = ? AND version = ?",
           "UPDATE score_sheets SET sheet = ? WHERE attempt_id = ? AND version = ?", (ATTEMPTS[1], 1), at='"total":8')
    report = audit.verify(db)
    assert {(p.table, p.key) for p in report.problems} == {
        ("audit", "seq=10"),
        ("timeline", f"attempt_id={ATTEMPTS[0]},seq=30"),
        ("results", "result_id=0190-0001"),
        ("score_sheets", f"attempt_id={ATTEMPTS[1]},version=1"),
    }, str(report)
    assert str(report).startswith("5 problem(s) found")


def test_missing_rows_are_reported(db: Database) -> None:
    conn = sqlite3.connect(db.path)
    try:
        with conn:
            conn.execute("DELETE FROM audit WHERE seq = 40")
            conn.execute("DELETE FROM timeline WHERE attempt_id = ? AND seq = 12", (ATTEMPTS[1],))
            conn.execute("DELETE FROM timeline WHERE attempt_id = ? AND seq >= 38", (ATTEMPTS[0],))  # sealed tail
    finally:
        conn.close()
    report = audit.verify(db)
    messages = {(p.table, p.key): p.message for p in report.problems}
    assert "entries 40..40 are missing" in messages[("audit", "seq=41")]
    assert "rows 12..12 are missing" in messages[("timeline", f"attempt_id={ATTEMPTS[1]},seq=13")]
    assert "sealed 41 rows, the table holds 38" in messages[("timeline", f"attempt_id={ATTEMPTS[0]}")]
    assert len(report.problems) == 3, str(report)


def test_a_deleted_result_is_reported_from_its_audit_entry(db: Database) -> None:
    conn = sqlite3.connect(db.path)
    try:
        with conn:
            conn.execute("DELETE FROM outbox WHERE result_id = '0190-0002'")
            conn.execute("DELETE FROM results WHERE result_id = '0190-0002'")
    finally:
        conn.close()
    (problem,) = audit.verify(db).problems
    assert (problem.table, problem.key) == ("results", "result_id=0190-0002")
    assert "the results table has no such row" in problem.message


def test_a_new_database_verifies_and_starts_at_genesis(tmp_path: Path) -> None:
    path = tmp_path / "e.sqlite3"
    upgrade(path)
    with open_database(path) as db:
        assert audit.verify(db).ok
        with db.write() as s:
            entry = audit.append(s, "admin", "site.configured", "site:GD-SZ-0101", {"stations": ["A01"]}, 1)
        assert (entry.seq, entry.prev_hash) == (1, GENESIS_HASH)
        with db.write() as s:
            seal = seal_timeline(s, "station", "att-none", 2)
        assert seal.payload == {"attempt_id": "att-none", "rows": 0, "head_hash": "att-none"}
        assert audit.verify(db).ok


def test_load_timeline_gives_back_the_records_in_order(db: Database) -> None:
    records = load_timeline(db, ATTEMPTS[0])
    assert records == (*(SampleRecord("bench.km1", i % 2 == 0, i * 1000, i * 1000 + 5) for i in range(40)),
                       MarkRecord("K21", "D3", 1, "考评员王五", "未戴绝缘手套", 5, 6))
