"""Nothing changed before a refusal (issue 12): a file that is not ours is recognised read-only.

`upgrade` (`examstation db upgrade`) and `open_database` look at the file through a read-only
SQLite connection before they make theirs, so another program's database is refused with its
bytes, its journal mode and its directory exactly as they were, and the message never tells the
administrator to run `db upgrade` on it.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import OperationalError

from station.db import Database, DatabaseError, head_revision, open_database, upgrade
from station.db.connection import read_only_uri
from station.db.errors import ForeignDatabaseError
from station.db.models import Candidate

DB = "examstation.sqlite3"


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file in `folder` by name, with its bytes."""
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def other_program_database(path: Path, journal_mode: str = "delete") -> None:
    """What another program (or `sqlite3` by hand) leaves: its own tables, closed cleanly."""
    conn = sqlite3.connect(path)
    try:
        conn.execute(f"PRAGMA journal_mode={journal_mode}")
        conn.execute("CREATE TABLE patients (id INTEGER PRIMARY KEY, name TEXT)")
        conn.execute("CREATE TABLE visits (patient INTEGER, day TEXT)")
        conn.execute("INSERT INTO patients (name) VALUES ('王五')")
        conn.commit()
    finally:
        conn.close()


def journal_mode(path: Path) -> str:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return str(conn.execute("PRAGMA journal_mode").fetchone()[0])
    finally:
        conn.close()


@pytest.mark.parametrize("mode", ["delete", "wal"])
def test_upgrade_refuses_another_programs_database_and_leaves_it_as_it_was(tmp_path: Path, mode: str) -> None:
    path = tmp_path / DB
    other_program_database(path, mode)
    before = snapshot(tmp_path)
    with pytest.raises(ForeignDatabaseError) as refused:
        upgrade(path)
    message = str(refused.value)
    assert str(path) in message and "patients" in message, message
    assert "not an examstation database" in message and "move it away" in message and "--data-dir" in message
    assert "db upgrade" not in message, message
    assert snapshot(tmp_path) == before, "the file (and its directory) must be exactly as before the refusal"
    assert journal_mode(path) == mode


@pytest.mark.parametrize("mode", ["delete", "wal"])
def test_opening_another_programs_database_never_recommends_db_upgrade(tmp_path: Path, mode: str) -> None:
    path = tmp_path / DB
    other_program_database(path, mode)
    before = snapshot(tmp_path)
    with pytest.raises(ForeignDatabaseError) as refused:
        open_database(path)
    message = str(refused.value)
    assert str(path) in message and "not an examstation database" in message and "move it away" in message
    assert "db upgrade" not in message, message
    assert snapshot(tmp_path) == before


def test_a_file_that_is_not_sqlite_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / DB
    path.write_bytes("站点配置 site: GD-SZ-0101\n".encode() * 20)
    before = snapshot(tmp_path)
    for attempt in (upgrade, open_database):
        with pytest.raises(ForeignDatabaseError) as refused:
            attempt(path)  # type: ignore[operator]
        message = str(refused.value)
        assert str(path) in message and "not an SQLite database" in message and "--data-dir" in message, message
        assert "db upgrade" not in message, message
    assert snapshot(tmp_path) == before


def test_a_blank_sqlite_file_is_ours_to_fill(tmp_path: Path) -> None:
    """An SQLite file with no tables at all (`sqlite3 FILE 'PRAGMA user_version=0'`) is not foreign."""
    path = tmp_path / DB
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version=1")
    conn.close()
    assert upgrade(path) == head_revision()
    with open_database(path) as db:
        assert db.revision == head_revision()


def test_our_tables_without_a_revision_are_refused_with_restore_not_upgrade(tmp_path: Path) -> None:
    path = tmp_path / DB
    upgrade(path)
    conn = sqlite3.connect(path)
    conn.execute("DROP TABLE alembic_version")
    conn.commit()
    conn.close()
    before = snapshot(tmp_path)
    for attempt in (upgrade, open_database):
        with pytest.raises(DatabaseError) as refused:
            attempt(path)  # type: ignore[operator]
        message = str(refused.value)
        assert "no schema revision" in message and "backup" in message, message
        assert "db upgrade" not in message, message
    assert snapshot(tmp_path) == before


# -- read-only open: a forensic copy, a live database, a copy caught mid-WAL ---------------------------


def station_database(folder: Path, candidates: int) -> Path:
    """A real station database with `candidates` rows, closed cleanly (no -wal, no -shm left)."""
    path = folder / DB
    upgrade(path)
    with open_database(path) as db:
        add_candidates(db, 0, candidates)
    return path


def add_candidates(db: Database, first: int, count: int) -> None:
    with db.write() as s:
        for n in range(first, first + count):
            s.add(Candidate(id_number=f"1101011990010{n:05d}", name="张三", photo_ref=None, operation="低压电工作业",
                            batch="B1", attempt_number=1, passed_at_utc_ns=None))


def candidate_count(db: Database) -> int:
    with db.read() as s:
        return int(s.execute(select(func.count()).select_from(Candidate)).scalar_one())


@contextmanager
def read_only_tree(folder: Path) -> Iterator[None]:
    """`chmod -R a-w` on `folder` for the block, then writable again so pytest can remove it."""
    paths = [folder, *folder.iterdir()]
    for p in paths:
        p.chmod(p.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    try:
        yield
    finally:
        for p in paths:
            p.chmod(p.stat().st_mode | stat.S_IWUSR)


def test_a_forensic_copy_in_a_read_only_directory_is_read_and_left_exactly_as_it_was(tmp_path: Path) -> None:
    """As root the permissions alone prove nothing (root writes anyway): what proves it is that no
    file in the directory changed and no -wal or -shm appeared, and that writes are refused."""
    station_database(tmp_path / "live", 3)
    copy = tmp_path / "copy"
    shutil.copytree(tmp_path / "live", copy)
    assert sorted(p.name for p in copy.iterdir()) == [DB], "the live database was closed cleanly"
    with read_only_tree(copy):
        before = snapshot(copy)
        with open_database(copy / DB, read_only=True) as db:
            assert db.read_only and db.revision == head_revision()
            assert candidate_count(db) == 3
            with pytest.raises(DatabaseError, match=r"is open read-only .*nothing can be written"), db.write():
                pass
            with pytest.raises(OperationalError, match="readonly"), db.read() as s:
                s.execute(text("DELETE FROM candidates"))
        assert snapshot(copy) == before, "a read-only open wrote to the file or beside it"


def test_the_read_only_uri_reads_a_read_only_directory_as_an_unprivileged_user(tmp_path: Path) -> None:
    """The SQLite behaviour the read-only open rests on, with permissions that hold: `mode=ro` alone
    cannot read a WAL database in a read-only directory (it must create the -shm), our URI can."""
    if os.geteuid() != 0:
        pytest.skip("not root: the test above already runs with permissions that hold")
    system_python = Path("/usr/bin/python3")
    if shutil.which("setpriv") is None or not system_python.exists():
        pytest.skip("needs setpriv and /usr/bin/python3 to run as nobody")
    folder = Path(tempfile.mkdtemp(prefix="examstation-ro-"))  # pytest's tmp_path is 0700 root
    try:
        path = station_database(folder, 2)
        probe = ("import sqlite3, sys\n"
                 "try:\n"
                 "    print(sqlite3.connect(sys.argv[1], uri=True).execute('SELECT count(*) FROM candidates')"
                 ".fetchone()[0])\n"
                 "except sqlite3.Error as err:\n"
                 "    print('error:', err)\n")

        def as_nobody(uri: str) -> str:
            done = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", str(system_python),
                                   "-c", probe, uri], capture_output=True, text=True, timeout=30, check=True)
            return done.stdout.strip()

        with read_only_tree(folder):
            folder.chmod(0o555)
            path.chmod(0o444)
            before = snapshot(folder)
            assert as_nobody(f"file:{path}?mode=ro").startswith("error:"), "SQLite changed: mode=ro now reads it"
            assert as_nobody(read_only_uri(path)) == "2"
            assert snapshot(folder) == before
    finally:
        shutil.rmtree(folder)


def test_a_live_database_is_read_with_what_its_wal_holds(tmp_path: Path) -> None:
    path = station_database(tmp_path, 2)
    with open_database(path) as live:
        add_candidates(live, 2, 3)  # in the -wal, not yet checkpointed into the file
        assert Path(f"{path}-shm").exists()
        with open_database(path, read_only=True) as db:
            assert candidate_count(db) == 5
            add_candidates(live, 5, 1)
            assert candidate_count(db) == 6, "each read() is a new snapshot"


def test_a_copy_caught_with_commits_in_its_wal_is_read_whole(tmp_path: Path) -> None:
    """A copy of a running station's -wal without its -shm: immutable=1 would skip the WAL's commits."""
    path = station_database(tmp_path / "live", 2)
    copy = tmp_path / "copy"
    copy.mkdir()
    with open_database(path) as live:
        add_candidates(live, 2, 4)
        for suffix in ("", "-wal"):
            shutil.copyfile(f"{path}{suffix}", f"{copy / DB}{suffix}")
    assert Path(f"{copy / DB}-wal").stat().st_size > 0
    with open_database(copy / DB, read_only=True) as db:
        assert candidate_count(db) == 6


def test_a_rollback_journal_copy_is_read_as_it_is(tmp_path: Path) -> None:
    path = station_database(tmp_path, 1)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=DELETE")
    conn.close()
    before = snapshot(tmp_path)
    with open_database(path, read_only=True) as db:
        assert candidate_count(db) == 1
    assert snapshot(tmp_path) == before and journal_mode(path) == "delete"
