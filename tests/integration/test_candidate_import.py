"""Registering candidates on a real database: one at a time (the UI) and a batch file (the import).

"The database is unchanged" is checked on the bytes: the sha256 of the SQLite file and of its
write-ahead log (-wal), taken while the database is open (closing it would checkpoint the log into
the file). The -shm file is left out: it is SQLite's shared-memory index of the log, which readers
update and which holds no data.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from devices.serial.id_card_codec import check_digit
from station.candidates import MAX_LISTED, CandidateFileError, import_candidates_csv
from station.db import database_path
from station.db.models import AuditRow, Candidate
from station.maintenance import import_candidates
from station.services import ServiceError, StationServices
from station.stored import ensure_database
from tests.integration.conftest import CONFIG, ManualClock, S, ready_station

HEADER = "id_number,name,operation,batch,photo_ref,attempt_number"
ZHANG, LI, WANG, ZHAO = "110101199001010015", "110101199001010023", "110101199001010031", "11010119900101004X"
LV, WELD = "低压电工作业", "熔化焊接与热切割作业"


def csv_file(path: Path, *lines: str, encoding: str = "utf-8", newline: str = "\n") -> Path:
    path.write_bytes(newline.join([*lines, ""]).encode(encoding))
    return path


def stored_bytes(services: StationServices) -> dict[str, str]:
    """sha256 of the database file and its write-ahead log, as they are on disk now."""
    main = services.db.path
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in (main, main.with_name(main.name + "-wal")) if p.exists()}


def registered(services: StationServices) -> dict[str, tuple[str, str, str, int, int | None]]:
    with services.db.read() as s:
        return {c.id_number: (c.name, c.operation, c.batch, c.attempt_number, c.passed_at_utc_ns)
                for c in s.scalars(select(Candidate))}


def audit_count(services: StationServices) -> int:
    with services.db.read() as s:
        return s.scalar(select(func.count()).select_from(AuditRow)) or 0


def sign_result(services: StationServices, clock: ManualClock, id_number: str, name: str) -> str:
    """An attempt of `id_number` through to the examiners' signatures: a signed result."""
    aid = ready_station(services, clock, {"K2": "K21"}, candidate=id_number, name=name)
    services.start_item(aid, "K21", "考评员甲")
    clock.t += 60 * S
    services.end_item(aid, "done", "考评员甲")
    services.score(aid)
    services.review(aid, "考评员甲")
    services.candidate_decision(aid, "K21", signed=True)
    services.examiner_sign(aid, "考评员甲")
    assert services.examiner_sign(aid, "考评员乙") is not None
    return aid


def test_registration_checks_the_check_digit_and_the_birth_date(svc: tuple[StationServices, ManualClock]) -> None:
    services, _ = svc
    with pytest.raises(ServiceError, match=r"candidate '110101199001010011': ID number \(居民身份证号码\) check digit "
                                           r"should be 5, not 1; correct it"):
        services.register_candidate("110101199001010011", "张三", "低压电工作业", "B1")
    with pytest.raises(ServiceError, match="birth date 19901301 is not a date"):
        services.register_candidate("110101199013010012", "张三", "低压电工作业", "B1")
    services.register_candidate("11010519491231002x", "李四", "低压电工作业", "B1")
    with services.db.read() as s:
        assert s.get(Candidate, "11010519491231002X") is not None  # stored as the province takes it
        assert s.query(Candidate).count() == 1


@pytest.mark.parametrize(("encoding", "newline", "shown"), [("gbk", "\r\n", "gb18030"),
                                                             ("utf-8-sig", "\r\n", "utf-8-sig"),
                                                             ("utf-8", "\n", "utf-8")])
def test_a_file_as_a_chinese_site_exports_it_is_imported(svc: tuple[StationServices, ManualClock], tmp_path: Path,
                                                         encoding: str, newline: str, shown: str) -> None:
    """Excel and WPS on a Chinese Windows save CSV as GBK with CRLF, or as "CSV UTF-8" with a BOM."""
    services, _ = svc
    path = csv_file(tmp_path / "考生名单.csv", HEADER, f"{ZHANG},张三,{LV},GD-2026-11-28-A,,1",
                    f"{LI},欧阳 娜娜,{WELD},GD-2026-11-28-A,photos/li.jpg,2",
                    f"{ZHAO[:17]}x,赵六,{LV},GD-2026-11-28-A,,", encoding=encoding, newline=newline)
    report = import_candidates_csv(services, path)
    assert registered(services) == {ZHANG: ("张三", LV, "GD-2026-11-28-A", 1, None),
                                     LI: ("欧阳 娜娜", WELD, "GD-2026-11-28-A", 2, None),
                                     ZHAO: ("赵六", LV, "GD-2026-11-28-A", 1, None)}
    assert str(report).splitlines()[0] == (f"{path} ({shown}): registered 3 new, 0 updated; 0 unchanged, "
                                           "0 kept because they have an attempt")


@pytest.mark.parametrize("bad_line", [2, 5, 7])
def test_a_bad_line_anywhere_leaves_the_database_byte_for_byte_unchanged(
        svc: tuple[StationServices, ManualClock], tmp_path: Path, bad_line: int) -> None:
    services, _ = svc
    services.register_candidate(WANG, "王五", LV, "B0")
    lines = [f"{ZHANG},张三,{LV},B1,,1", f"{LI},李四,{LV},B1,,1", f"{WANG},王五,{WELD},B1,,1",
             f"{ZHAO},赵六,{LV},B1,,1", "110101199001010058,钱七,低压电工作业,B1,,1",
             "110101199001010066,孙八,低压电工作业,B1,,1"]
    lines.insert(bad_line - 2, "110101199001010070,周九,低压电工作业,B1,,1")
    before = stored_bytes(services)
    with pytest.raises(CandidateFileError, match=rf"batch.csv:{bad_line}: id_number: 110101199001010070: check "
                                                 "digit should be 4, not 0"):
        import_candidates_csv(services, csv_file(tmp_path / "batch.csv", HEADER, *lines))
    assert stored_bytes(services) == before
    assert registered(services) == {WANG: ("王五", LV, "B0", 1, None)}


def test_every_problem_is_listed_with_file_line_and_column(svc: tuple[StationServices, ManualClock],
                                                           tmp_path: Path) -> None:
    services, _ = svc
    path = csv_file(tmp_path / "batch.csv", HEADER,
                    f"{ZHANG},张三,{LV},B1,,1",
                    "110101199001010011,李四,电焊,B1,,1",
                    f",,{LV},B1,,1",
                    "",  # blank lines and the empty rows spreadsheets leave are skipped
                    ",,,,,",
                    '"110101199013010012","王\n五",低压电工作业,B1,,2',  # a quoted field over two lines
                    f"{ZHANG},张三,{LV},B1,,1",
                    f"{LI},李四,{LV},B1",
                    "1.10101E+17,赵六,低压电工作业,B1,,1",
                    f"{WANG},孙八,{LV},B1,,1")
    with pytest.raises(CandidateFileError) as caught:
        import_candidates_csv(services, path)
    assert caught.value.problems == (
        f"{path}:3: id_number: 110101199001010011: check digit should be 5, not 1",
        f"{path}:3: operation: '电焊' is not one of 低压电工作业, 熔化焊接与热切割作业",
        f"{path}:4: id_number: empty",
        f"{path}:4: name: empty",
        f"{path}:7: id_number: 110101199013010012: birth date 19901301 is not a date",
        f"{path}:7: name: '王\\n五' holds control characters",
        f"{path}:9: id_number: {ZHANG} is also on line 2; keep one line per candidate",
        f"{path}:10: 4 fields, the header has 6; check for a comma inside a value (put the value in double quotes)",
        f"{path}:11: id_number: 1.10101E+17: has 11 characters, expected 18; Excel saved it as a number and lost "
        "digits: format the column as text (文本) and type the numbers again",
    )
    message = str(caught.value)
    assert message.startswith(f"{path}: 9 problems; nothing was imported, fix the file and import it again:\n")
    assert registered(services) == {}


def test_the_listing_stops_at_fifty_and_counts_the_rest(svc: tuple[StationServices, ManualClock],
                                                        tmp_path: Path) -> None:
    services, _ = svc
    path = csv_file(tmp_path / "batch.csv", HEADER, *[f"{ZHANG},张三,{LV},B1,,9"] * 60)
    with pytest.raises(CandidateFileError) as caught:
        import_candidates_csv(services, path)
    assert len(caught.value.problems) == 60 + 59  # each line's attempt_number, and 59 repeats of line 2
    lines = str(caught.value).splitlines()
    assert len(lines) == 1 + MAX_LISTED + 1 and lines[-1] == f"  ... and {119 - MAX_LISTED} more"


@pytest.mark.parametrize(("header", "problem"), [
    ("id_number,name,batch", "the header lacks operation; expected id_number,name,operation,batch"
                             "[,photo_ref,attempt_number]"),
    ("id_number,name,operation,batch,attempt_numbr", "unknown column 'attempt_numbr'"),
    ("id_number,name,operation,batch,name", "column name twice in the header"),
    ("", "no header line"),
])
def test_a_wrong_header_is_named(svc: tuple[StationServices, ManualClock], tmp_path: Path, header: str,
                                 problem: str) -> None:
    services, _ = svc
    with pytest.raises(CandidateFileError, match=rf"batch.csv:1: {re.escape(problem)}"):
        import_candidates_csv(services, csv_file(tmp_path / "batch.csv", header, f"{ZHANG},张三,{LV},B1"))


def test_reimporting_leaves_the_same_alone_and_updates_changes_without_an_attempt(
        svc: tuple[StationServices, ManualClock], tmp_path: Path) -> None:
    services, _ = svc
    first = csv_file(tmp_path / "batch.csv", HEADER, f"{ZHANG},张三,{LV},B1,,1", f"{LI},李四,{LV},B1,,1",
                     f"{WANG},王五,{LV},B1,,1")
    import_candidates_csv(services, first)
    entries = audit_count(services)
    again = import_candidates_csv(services, first)
    assert str(again).splitlines() == [f"{first} (utf-8): registered 0 new, 0 updated; 3 unchanged, 0 kept because "
                                       "they have an attempt", "  unchanged (registered as in the file): lines 2-4"]
    assert audit_count(services) == entries  # nothing happened, nothing recorded

    second = csv_file(tmp_path / "batch2.csv", HEADER, f"{ZHANG},张三,{LV},B1,,1", f"{LI},李思,{WELD},B1,,1")
    report = import_candidates_csv(services, second)
    assert str(report).splitlines() == [
        f"{second} (utf-8): registered 0 new, 1 updated; 1 unchanged, 0 kept because they have an attempt",
        f"  line 3: {LI} updated: name '李四' -> '李思', operation '{LV}' -> '{WELD}'",
        "  unchanged (registered as in the file): line 2"]
    assert registered(services)[LI] == ("李思", WELD, "B1", 1, None)
    with services.db.read() as s:
        last = s.execute(select(AuditRow.action, AuditRow.subject, AuditRow.payload)
                         .order_by(AuditRow.seq.desc()).limit(1)).one()
    assert (last.action, last.subject) == ("candidate.updated", f"candidate:{LI}")
    assert json.loads(last.payload) == {"name": "李思", "operation": WELD, "batch": "B1", "photo_ref": None,
                                        "attempt_number": 1, "source": "batch2.csv",
                                        "was": {"name": "李四", "operation": LV}}


def test_a_candidate_with_a_signed_result_is_never_changed_by_an_import(
        svc: tuple[StationServices, ManualClock], tmp_path: Path) -> None:
    services, clock = svc
    aid = sign_result(services, clock, ZHANG, "张三")
    services.register_candidate(LI, "李四", LV, "B1")
    aid_li = services.check_in(LI, "A01", "监考员王")  # checked in: an attempt, no result yet
    with services.db.write() as tx:  # as when the province's receipt of a passing result came back
        cand = tx.get(Candidate, ZHANG)
        assert cand is not None
        cand.passed_at_utc_ns = 123
    before = registered(services)
    path = csv_file(tmp_path / "batch.csv", HEADER, f"{ZHANG},张山,{WELD},B2,,2", f"{LI},李四,{LV},B1,,2",
                    f"{WANG},王五,{LV},B2,,1")
    report = import_candidates_csv(services, path)
    after = registered(services)
    assert after[ZHANG] == before[ZHANG] == ("张三", LV, "B1", 1, 123)  # passed_at kept too
    assert after[LI] == before[LI]
    assert after[WANG] == ("王五", LV, "B2", 1, None)  # the rest of the batch is registered
    assert str(report).splitlines() == [
        f"{path} (utf-8): registered 1 new, 0 updated; 0 unchanged, 2 kept because they have an attempt",
        f"  line 2: {ZHANG} has attempt {aid}, not changed (the file would change name '张三' -> '张山', "
        f"operation '{LV}' -> '{WELD}', batch 'B1' -> 'B2', attempt_number 1 -> 2)",
        f"  line 3: {LI} has attempt {aid_li}, not changed (the file would change attempt_number 1 -> 2)"]


def test_a_dry_run_says_what_would_change_and_writes_nothing(svc: tuple[StationServices, ManualClock],
                                                             tmp_path: Path) -> None:
    services, _ = svc
    services.register_candidate(LI, "李四", LV, "B1")
    before = stored_bytes(services)
    path = csv_file(tmp_path / "batch.csv", HEADER, f"{ZHANG},张三,{LV},B1,,1", f"{LI},李四,{LV},B2,,1")
    report = import_candidates_csv(services, path, dry_run=True)
    assert str(report).splitlines() == [
        f"{path} (utf-8): would register 1 new, 1 updated; 0 unchanged, 0 kept because they have an attempt",
        f"  line 3: {LI} would be updated: batch 'B1' -> 'B2'",
        "dry run: nothing was written; run the import again without --dry-run to register"]
    assert stored_bytes(services) == before


def test_a_spreadsheet_or_a_wrong_encoding_gets_a_clear_error(svc: tuple[StationServices, ManualClock],
                                                              tmp_path: Path) -> None:
    services, _ = svc
    xlsx = tmp_path / "考生名单.xlsx"
    xlsx.write_bytes(b"PK\x03\x04\x14\x00\x06\x00" + b"\x00" * 100)
    with pytest.raises(CandidateFileError, match=r"is an Excel workbook \(.xlsx\), not the candidate list: .* save "
                                                 "it as CSV"):
        import_candidates_csv(services, xlsx)
    gbk = csv_file(tmp_path / "batch.csv", HEADER, f"{ZHANG},张三,{LV},B1,,1", encoding="gbk")
    with pytest.raises(CandidateFileError, match=r"batch.csv is not utf-8 text \(byte 0x\w\w at line 2\)"):
        import_candidates_csv(services, gbk, encoding="utf-8")
    with pytest.raises(CandidateFileError, match="cannot read the candidate list"):
        import_candidates_csv(services, tmp_path / "missing.csv")
    assert registered(services) == {}


def test_the_command_imports_a_gbk_file_named_with_encoding(tmp_path: Path) -> None:
    """`examstation candidates import FILE --encoding gbk [--dry-run]` calls this."""
    ensure_database(tmp_path / "data")
    path = csv_file(tmp_path / "batch.csv", HEADER, f"{ZHANG},张三,{LV},B1,,1", encoding="gbk", newline="\r\n")
    assert import_candidates(CONFIG, tmp_path / "data", path, encoding="gbk", dry_run=True).startswith(
        f"{path} (gbk): would register 1 new")
    assert import_candidates(CONFIG, tmp_path / "data", path, encoding="gbk").startswith(
        f"{path} (gbk): registered 1 new")
    assert database_path(tmp_path / "data").exists()
    with pytest.raises(ServiceError, match=r"batch\.csv:2: operation"):
        import_candidates(CONFIG, tmp_path / "data", csv_file(path, HEADER, f"{LI},李四,电焊,B1,,1"))


def ten_thousand_ids() -> list[str]:
    """10,000 different valid ID numbers: birth dates from 1970 on, sequence codes 001-100."""
    out = []
    for day in range(100):
        born = date(1970, 1, 1) + timedelta(days=day * 97)
        for seq in range(1, 101):
            first17 = f"440305{born:%Y%m%d}{seq:03d}"
            out.append(first17 + check_digit(first17))
    return out


def test_ten_thousand_candidates_import_in_under_three_seconds(svc: tuple[StationServices, ManualClock],
                                                               tmp_path: Path) -> None:
    services, _ = svc
    ids = ten_thousand_ids()
    path = csv_file(tmp_path / "batch.csv", HEADER,
                    *[f"{n},考生{i},{LV if i % 2 else WELD},GD-2026-11-28-A,,1" for i, n in enumerate(ids)],
                    encoding="gbk", newline="\r\n")
    started = time.perf_counter()
    report = import_candidates_csv(services, path)
    elapsed_s = time.perf_counter() - started
    assert len(report.lines_of("new")) == 10_000 and len(registered(services)) == 10_000
    assert elapsed_s < 3.0, f"10,000 candidates took {elapsed_s:.2f} s"
    started = time.perf_counter()
    assert len(import_candidates_csv(services, path).lines_of("unchanged")) == 10_000
    assert time.perf_counter() - started < 3.0
