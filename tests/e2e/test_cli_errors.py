"""One error boundary in the CLI (issue 12): every error of ours ends with its message and exit
status 2, a bug with one "internal error" line and exit status 1; a traceback only with -v.

Each case runs `python -m station.cli` as a user would and checks the exit status, the message on
stderr and that no traceback was printed; where a refusal must change nothing, that too.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from scoring.rubric_loader import RubricError
from station.cli import _explain

ROOT = Path(__file__).resolve().parents[2]


def examstation(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "station.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)


def refused(done: subprocess.CompletedProcess[str], status: int = 2) -> str:
    """The one error line of a command that failed cleanly with `status`."""
    assert done.returncode == status, (done.returncode, done.stdout[-1000:], done.stderr[-2000:])
    assert "Traceback" not in done.stderr, done.stderr
    return done.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize("names", [["--scenario", "nosuch"], ["--exam", "k21-short-circuit,nosuch"]])
def test_an_unknown_scenario_is_named_before_anything_is_written(tmp_path: Path, names: list[str]) -> None:
    data = tmp_path / "data"
    line = refused(examstation("demo", *names, "--once", "--data-dir", str(data)))
    assert line == "examstation: no scenario named 'nosuch'; `examstation scenarios` lists them"
    assert not data.exists()


def test_a_bad_broker_address_is_named_before_anything_is_written(tmp_path: Path) -> None:
    data = tmp_path / "data"
    line = refused(examstation("demo", "--broker", "foo://x", "--duration", "5", "--data-dir", str(data)))
    assert line.startswith("examstation: broker address 'foo://x': ") and "mqtt://HOST:PORT" in line, line
    assert not data.exists()


@pytest.mark.parametrize("command", [["demo", "--scenario", "k21-short-circuit", "--once"], ["run"],
                                     ["db", "upgrade"], ["keys", "init"]])
def test_a_data_directory_that_is_a_file_is_named(tmp_path: Path, command: list[str]) -> None:
    data = tmp_path / "data"
    data.write_text("someone's notes\n")
    line = refused(examstation(*command, "--data-dir", str(data)))
    assert f"examstation: {data} is a file" in line or f"--data-dir {data} is a file" in line, line
    assert "--data-dir" in line, line
    assert data.read_text() == "someone's notes\n"


@pytest.mark.parametrize(("content", "expected"), [
    (b"site:\n  id: \xff\xfe\n", "is not UTF-8 or GBK text"),
    (b"PK\x03\x04 a workbook", ".xlsx"),
])
def test_a_config_that_is_not_text_is_named(tmp_path: Path, content: bytes, expected: str) -> None:
    config = tmp_path / "site.yaml"
    config.write_bytes(content)
    line = refused(examstation("keys", "init", "--config", str(config), "--data-dir", str(tmp_path / "data")))
    assert str(config) in line and expected in line, line


@pytest.mark.parametrize("args", [["sim", "--duration", "-5"], ["demo", "--duration", "0"],
                                  ["demo", "--status-every", "-1"], ["run", "--duration", "nan"],
                                  ["run", "--duration", "soon"]])
def test_a_duration_that_is_not_above_zero_is_refused_by_the_parser(args: list[str]) -> None:
    line = refused(examstation(*args))
    assert line.startswith(f"examstation {args[0]}: error: argument {args[1]}: "), line
    assert "above 0" in line or "not a number of seconds" in line, line


def sqlite_file_of_another_program(path: Path) -> bytes:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, amount REAL)")
    conn.commit()
    conn.close()
    return path.read_bytes()


def test_db_upgrade_refuses_another_programs_database_and_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "examstation.sqlite3"
    before = sqlite_file_of_another_program(path)
    line = refused(examstation("db", "upgrade", "--data-dir", str(tmp_path)))
    assert f"{path} is not an examstation database" in line and "invoices" in line, line
    assert "move it away" in line and "--data-dir" in line, line
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name], "no -wal, -shm or journal beside it"
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    conn.close()
    line = refused(examstation("audit", "verify", "--data-dir", str(tmp_path)))
    assert "not an examstation database" in line and "db upgrade" not in line, line
    assert path.read_bytes() == before


def tampered_outbox(data: Path) -> None:
    """A queued result whose signing time is text: a value no examstation writes, as a hand edit leaves."""
    assert examstation("db", "upgrade", "--data-dir", str(data)).returncode == 0
    conn = sqlite3.connect(data / "examstation.sqlite3")
    conn.execute("INSERT INTO results VALUES ('r1', 'a1', 1, '{}', 'x', 'yesterday')")
    conn.execute("INSERT INTO outbox VALUES ('r1', 'queued', 0, 0, NULL, NULL)")
    conn.commit()
    conn.close()


def test_an_unexpected_error_is_one_line_and_the_traceback_comes_with_v(tmp_path: Path) -> None:
    tampered_outbox(tmp_path)
    done = examstation("outbox", "--data-dir", str(tmp_path))
    line = refused(done, status=1)
    assert line.startswith("examstation: internal error: ValueError: "), line
    assert line.endswith("; run again with -v for the traceback and report it"), line
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    verbose = examstation("-v", "outbox", "--data-dir", str(tmp_path))
    assert verbose.returncode == 1
    assert "Traceback (most recent call last)" in verbose.stderr and "ValueError" in verbose.stderr


def test_v_shows_the_traceback_of_a_user_error_too(tmp_path: Path) -> None:
    sqlite_file_of_another_program(tmp_path / "examstation.sqlite3")
    done = examstation("-v", "db", "upgrade", "--data-dir", str(tmp_path))
    assert done.returncode == 2
    assert "Traceback (most recent call last)" in done.stderr, done.stderr
    assert "not an examstation database" in done.stderr.strip().splitlines()[-1]


def test_the_boundary_unwraps_the_controllers_exception_group() -> None:
    """A rubric file cannot be broken from the command line (they ship in the package), so this one is in-process."""
    assert _explain(ExceptionGroup("controller", [RubricError("rubric lv.yaml: row K21-3 twice")])) == \
        "rubric lv.yaml: row K21-3 twice"
    assert _explain(KeyError("attempt_id")) is None, "a KeyError is a bug, not an unknown scenario"


CANDIDATE = "110101199001010023"  # GB 11643 check digit and birth date valid


def test_candidates_import_takes_an_encoding_and_a_dry_run(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert examstation("db", "upgrade", "--data-dir", str(data)).returncode == 0
    listing = tmp_path / "考生名单.csv"
    listing.write_bytes(f"id_number,name,operation,batch\r\n{CANDIDATE},张三,低压电工作业,B1\r\n".encode("gbk"))
    database = data / "examstation.sqlite3"
    before = database.read_bytes()
    dry = examstation("candidates", "import", str(listing), "--encoding", "gbk", "--dry-run", "--data-dir", str(data))
    assert dry.returncode == 0, dry.stderr
    assert database.read_bytes() == before, "--dry-run wrote to the database"
    line = refused(examstation("candidates", "import", str(listing), "--encoding", "klingon", "--data-dir", str(data)))
    assert "klingon" in line, line
    done = examstation("candidates", "import", str(listing), "--encoding", "gbk", "--data-dir", str(data))
    assert done.returncode == 0, done.stderr
    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    assert conn.execute("SELECT name FROM candidates WHERE id_number = ?", (CANDIDATE,)).fetchall() == [("张三",)]
    conn.close()
