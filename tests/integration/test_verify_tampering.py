"""`audit verify` and `replay` against a tamperer who knows the hash formulas.

Each test signs real results on a real database, copies the data directory, changes the copy
the way a person with sqlite3 and the documented formulas would (recomputing every hash and the
audit chain after the change), and checks that verify fails naming the row, that `replay` exits
non-zero where it applies, and that the untouched original still verifies.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from devices.ref import DeviceRef
from devices.sample import Sample
from scoring.canonical import canonical_json
from station import audit
from station.config import load_site_config
from station.db import database_path, open_database
from station.record_commands import audit_verify, replay
from station.services import StationServices
from station.signing import SiteKey
from station.stored import ensure_database
from tests.integration.conftest import ManualClock, S, ready_station

CONFIG = load_site_config("examples/site.yaml")
CANDIDATES = ("110101199001010015", "110101199001010023")


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Signed:
    data: Path
    results: tuple[dict[str, Any], ...]


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> Signed:
    """Two candidates at A01, each K21 with the main switch thrown (a deduction), scored, signed."""
    data = tmp_path_factory.mktemp("signed")
    ensure_database(data)
    clock = ManualClock()
    results = []
    with open_database(database_path(data)) as db:
        services = StationServices(CONFIG, db, SiteKey.load_or_create(data), clock)
        try:
            for n, candidate in enumerate(CANDIDATES):
                aid = ready_station(services, clock, {"K2": "K21"}, candidate=candidate, name=f"考生{n}")
                services.start_item(aid, "K21", "考评员甲")
                clock.t += 30 * S
                services.record_sample(Sample("bench.main_switch", True, clock.t, clock.utc_ns(),
                                              DeviceRef("A01", "bench")))
                clock.t += 30 * S
                services.end_item(aid, "done", "考评员甲")
                services.score(aid)
                services.review(aid, "考评员甲")
                services.candidate_decision(aid, "K21", True)
                services.examiner_sign(aid, "考评员甲")
                doc = services.examiner_sign(aid, "考评员乙")
                assert doc is not None
                results.append(doc)
        finally:
            services.close()
    return Signed(data, tuple(results))


@contextmanager
def tampered(signed: Signed, tmp_path: Path) -> Iterator[sqlite3.Connection]:
    """A copy of the signed data directory, open for editing with sqlite3 as a tamperer would."""
    copy = tmp_path / "copy"
    shutil.copytree(signed.data, copy)
    con = sqlite3.connect(database_path(copy))
    try:
        yield con
        con.commit()
    finally:
        con.close()


def rechain(con: sqlite3.Connection, from_seq: int) -> None:
    """Recompute every audit entry hash from `from_seq` on (the formula in station/audit.py's docstring)."""
    prev = con.execute("SELECT entry_hash FROM audit WHERE seq = ?", (from_seq - 1,)).fetchone()
    prev_hash = prev[0] if prev else "0" * 64
    rows = con.execute("SELECT seq, utc_ns, actor, action, subject, payload FROM audit WHERE seq >= ? "
                       "ORDER BY seq", (from_seq,)).fetchall()
    for seq, utc_ns, actor, action, subject, payload in rows:
        body = {"seq": seq, "utc_ns": utc_ns, "actor": actor, "action": action, "subject": subject,
                "payload": json.loads(payload)}
        entry_hash = sha(prev_hash + canonical_json(body))
        con.execute("UPDATE audit SET prev_hash = ?, entry_hash = ? WHERE seq = ?", (prev_hash, entry_hash, seq))
        prev_hash = entry_hash


def edit_payload(con: sqlite3.Connection, action: str, subject: str, change: dict[str, Any]) -> int:
    """Change an audit entry's payload; the chain from it on is recomputed. Returns its seq."""
    seq, payload = con.execute("SELECT seq, payload FROM audit WHERE action = ? AND subject = ? ORDER BY seq "
                               "DESC LIMIT 1", (action, subject)).fetchone()
    con.execute("UPDATE audit SET payload = ? WHERE seq = ?", (canonical_json({**json.loads(payload), **change}), seq))
    rechain(con, seq)
    return int(seq)


def verify(data: Path, **kw: Any) -> tuple[bool, str]:
    return audit_verify(data, **kw)


def test_the_untouched_database_verifies_and_replays(signed: Signed) -> None:
    ok, text = verify(signed.data)
    assert ok, text
    assert "signatures checked against ed25519:" in text
    ok, text = replay(signed.data, signed.results[0]["attempt_id"], as_json=False)
    assert ok and "identical to the stored sheet" in text and "signature verifies" in text, text


def test_a_total_changed_with_every_hash_recomputed_fails_the_signature(signed: Signed, tmp_path: Path) -> None:
    doc = signed.results[0]
    rid = doc["result_id"]
    with tampered(signed, tmp_path) as con:
        changed = {**doc, "total": 95.0}
        text = canonical_json(changed)
        con.execute("UPDATE results SET document = ?, document_sha256 = ? WHERE result_id = ?", (text, sha(text), rid))
        edit_payload(con, "result.stored", f"result:{rid}", {"document_sha256": sha(text)})
    with open_database(database_path(tmp_path / "copy")) as db:  # every hash holds: what main checked passes
        assert not [p for p in audit.verify(db).problems if p.table == "results"]
    ok, report = verify(tmp_path / "copy")
    assert not ok, report
    assert f"results result_id={rid}: the Ed25519 signature does not verify" in report
    assert f"results result_id={rid}: the result says total 95, its score sheet (version 1) says " in report
    ok, text = replay(tmp_path / "copy", doc["attempt_id"], as_json=False)
    assert not ok and "signature does not verify" in text


def test_a_sheet_edited_with_its_column_hash_disagrees_with_its_audit_entry(signed: Signed, tmp_path: Path) -> None:
    aid = signed.results[0]["attempt_id"]
    with tampered(signed, tmp_path) as con:
        sheet = json.loads(con.execute("SELECT sheet FROM score_sheets WHERE attempt_id = ?", (aid,)).fetchone()[0])
        text = canonical_json({**sheet, "total": 100.0})
        con.execute("UPDATE score_sheets SET sheet = ?, sheet_sha256 = ? WHERE attempt_id = ?", (text, sha(text), aid))
    ok, report = verify(tmp_path / "copy")
    assert not ok, report
    assert f"score_sheets attempt_id={aid},version=1: audit seq=" in report
    assert "recorded sheet_sha256" in report and "the sheet was changed" in report


def test_a_sheet_and_its_audit_entry_edited_together_fail_the_re_score(signed: Signed, tmp_path: Path) -> None:
    aid = signed.results[0]["attempt_id"]
    with tampered(signed, tmp_path) as con:
        sheet = json.loads(con.execute("SELECT sheet FROM score_sheets WHERE attempt_id = ?", (aid,)).fetchone()[0])
        text = canonical_json({**sheet, "total": 100.0})
        con.execute("UPDATE score_sheets SET sheet = ?, sheet_sha256 = ? WHERE attempt_id = ?", (text, sha(text), aid))
        edit_payload(con, "sheet.scored", f"attempt:{aid}", {"sheet_sha256": sha(text), "total": 100.0})
    ok, report = verify(tmp_path / "copy")
    assert not ok, report
    assert (f"score_sheets attempt_id={aid},version=1: the stored timeline re-scores to total {sheet['total']:g}"
            in report)
    assert "first difference at total" in report
    assert "the result says total" in report  # and the signed result no longer matches its sheet
    ok, text = replay(tmp_path / "copy", aid, as_json=False)
    assert not ok and "DIFFERENT from the stored sheet" in text


def test_a_timeline_edit_with_its_chain_and_seal_recomputed_fails_the_re_score(signed: Signed, tmp_path: Path) -> None:
    aid = signed.results[0]["attempt_id"]
    with tampered(signed, tmp_path) as con:
        rows = con.execute("SELECT seq, record, row_hash FROM timeline WHERE attempt_id = ? ORDER BY seq",
                           (aid,)).fetchall()
        prev: str | None = None
        for seq, record, _ in rows:  # the candidate never threw the main switch
            value = json.loads(record)
            if value.get("signal") == "bench.main_switch" and value.get("value") is True:
                record = canonical_json({**value, "value": False})
            row_hash = sha((aid if prev is None else prev) + record)
            con.execute("UPDATE timeline SET record = ?, row_hash = ? WHERE attempt_id = ? AND seq = ?",
                        (record, row_hash, aid, seq))
            prev = row_hash
        edit_payload(con, "timeline.sealed", f"attempt:{aid}", {"head_hash": prev})
    ok, report = verify(tmp_path / "copy")
    assert not ok, report
    assert f"score_sheets attempt_id={aid},version=1: the stored timeline re-scores to total" in report
    ok, text = replay(tmp_path / "copy", aid, as_json=True)
    assert not ok and json.loads(text)["identical_to_stored"] is False


def test_the_newest_entries_deleted_past_a_signed_checkpoint_are_named(signed: Signed, tmp_path: Path) -> None:
    point = signed.results[1]["audit_checkpoint"]
    with tampered(signed, tmp_path) as con:
        con.execute("DELETE FROM audit WHERE seq >= ?", (point["seq"],))
    ok, report = verify(tmp_path / "copy")
    assert not ok, report
    assert f"audit seq={point['seq']}: result {signed.results[1]['result_id']} was signed over audit entry " \
           f"{point['seq']} with hash {point['entry_hash']}; the chain no longer holds it" in report


def test_a_result_rolled_back_is_found_with_the_provinces_copy(signed: Signed, tmp_path: Path) -> None:
    """The second result, its outbox row, its attempt's later rows and every audit entry from its
    checkpoint on are gone: a consistent older database. Only the province's copy can tell."""
    last = signed.results[1]
    with tampered(signed, tmp_path) as con:
        con.execute("DELETE FROM outbox WHERE result_id = ?", (last["result_id"],))
        con.execute("DELETE FROM results WHERE result_id = ?", (last["result_id"],))
        con.execute("DELETE FROM audit WHERE seq > ?", (last["audit_checkpoint"]["seq"],))
    copy = tmp_path / "province-copy.json"
    copy.write_text(json.dumps(last, ensure_ascii=False), encoding="utf-8")
    ok, report = verify(tmp_path / "copy", province_copy=copy)
    assert not ok
    assert f"results result_id={last['result_id']}: the province holds result seq 2" in report
    assert "no such row: it was rolled back" in report


def test_a_read_only_copy_verifies_and_nothing_in_it_changes(signed: Signed, tmp_path: Path) -> None:
    """A forensic copy: verify and replay read it without creating a journal, a key or a lock.
    (As root, permissions are not enforced, so the test checks the files instead.)"""
    copy = tmp_path / "forensic"
    shutil.copytree(signed.data, copy)
    with sqlite3.connect(database_path(copy)) as con:  # a copy as an examiner would take it: WAL folded in
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    for extra in copy.glob("*.sqlite3-*"):
        extra.unlink()
    before = {p.relative_to(copy): p.read_bytes() for p in copy.rglob("*") if p.is_file()}
    for p in [*copy.rglob("*"), copy]:
        p.chmod(p.stat().st_mode & ~0o222)
    try:
        ok, report = verify(copy)
        assert ok, report
        ok, text = replay(copy, signed.results[1]["attempt_id"], as_json=False)
        assert ok, text
    finally:
        for p in [copy, *copy.rglob("*")]:
            p.chmod(p.stat().st_mode | 0o200)
    after = {p.relative_to(copy): p.read_bytes() for p in copy.rglob("*") if p.is_file()}
    assert after == before
