"""SQLite connections set up the one way examstation accepts: WAL, synchronous=FULL, our own BEGIN.

This follows LIBRARY-NOTES "SQLite through SQLAlchemy 2": on "connect" the driver's own
transaction handling is switched off (`isolation_level = None`) and the pragmas are set; on
"begin" we emit `BEGIN IMMEDIATE` on the writer engine (take the write lock up front, so a
transaction never fails half-way with "database is locked") and a plain `BEGIN` on readers (a
consistent snapshot across statements). Reader connections are also `query_only`, so the single
writer connection really is the only one that writes.

When a file is put into WAL (the only time we change a file's journal mode):
- a brand-new file (missing or empty): `examstation db upgrade` creates it in WAL;
- an existing file in another journal mode (a rollback-journal copy, a restore made with another
  tool): `open_database` refuses it with `UnsafeJournalModeError`; only `examstation db upgrade`
  converts it, explicitly, and logs that it did.
Hence `file_journal_mode` reads the mode from the file header *before* any connection is made:
the connect hook's `PRAGMA journal_mode=WAL` would otherwise convert the file silently, and a file
is looked at only through `read_only_uri` (which writes nothing, not even a -shm beside it) until it
is known to be ours.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from pathlib import Path
from typing import Any, Literal, cast
from urllib.parse import quote

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL
from sqlalchemy.pool import QueuePool

from station.db.errors import DatabaseError, ForeignDatabaseError, UnsafeJournalModeError

log = logging.getLogger(__name__)

DB_FILENAME = "examstation.sqlite3"
"""The database's file name inside the data directory (`--data-dir`)."""

BUSY_TIMEOUT_MS = 5000
"""How long a connection waits for another process's lock (e.g. `examstation verify` reading)."""

_SQLITE_MAGIC = b"SQLite format 3\x00"
_SYNCHRONOUS_NAMES = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}
_FULL = 2

Role = Literal["writer", "reader"]


def database_path(data_dir: Path) -> Path:
    """The database file of a data directory."""
    return data_dir / DB_FILENAME


FOREIGN_TODO = ("if it is the station's database, restore it from a backup; otherwise move it away, "
                "or choose another --data-dir")
"""What to do about a file in the database's place that examstation cannot recognise as its own."""


def upgrade_hint(path: Path) -> str:
    return f"run `examstation db upgrade --data-dir {path.parent}`"


def file_journal_mode(path: Path) -> str | None:
    """'wal' or 'delete' (any rollback-journal mode) as the file header says; None for a new file.

    A missing or zero-length file is new. Anything else that is not an SQLite file raises.
    """
    try:
        with path.open("rb") as f:
            header = f.read(100)
    except FileNotFoundError:
        return None
    except OSError as err:
        raise DatabaseError(f"cannot read database file {path}: {err.strerror}; check --data-dir and its permissions") \
            from err
    if not header:
        return None
    if len(header) < 100 or not header.startswith(_SQLITE_MAGIC):
        raise ForeignDatabaseError(
            f"{path} is not an SQLite database (its first bytes are {header[:16]!r}, expected {_SQLITE_MAGIC!r}); "
            f"examstation leaves it as it is: {FOREIGN_TODO}"
        )
    # Bytes 18 and 19: file format write/read version, 1 = rollback journal, 2 = WAL.
    return "wal" if header[18] == 2 and header[19] == 2 else "delete"


def read_only_uri(path: Path) -> str:
    """An SQLite URI that reads the existing database `path` without writing to it or beside it.

    - `mode=ro` for a rollback-journal file, and for a WAL file whose `-shm` is there (a database
      in use, or a copy taken with its -wal and -shm): SQLite reads the WAL through the -shm.
    - `mode=ro&immutable=1` for a WAL file with no -shm and no WAL content (closed cleanly, or a
      copy of one). `mode=ro` alone would create -wal and -shm beside it and leave them there,
      and in a read-only directory (a forensic copy after `chmod -R a-w`) it cannot create them
      and fails with "attempt to write a readonly database". `immutable=1` reads the file alone
      and takes no locks; that is sound while there is no -shm, since nothing has the file open,
      but a controller started on it meanwhile could checkpoint into it: read briefly.
    - a WAL file whose -wal holds commits but has no -shm: SQLite must create the -shm to read
      them (immutable would skip them). In a writable directory `mode=ro` does; in a read-only
      one this raises DatabaseError saying what to do.
    """
    base = "file:" + quote(str(path.absolute()))
    if file_journal_mode(path) != "wal" or _exists(path, "-shm"):
        return f"{base}?mode=ro"
    wal = Path(f"{path}-wal")
    if not _exists(path, "-wal") or wal.stat().st_size == 0:
        return f"{base}?mode=ro&immutable=1"
    if os.access(path.parent, os.W_OK):
        return f"{base}?mode=ro"
    raise DatabaseError(
        f"cannot read {path} read-only: {wal} holds commits not yet in the file, and SQLite needs to create "
        f"{path.name}-shm to read them, which the read-only directory {path.parent} forbids; copy the database "
        "with its -wal to a writable directory and read that copy"
    )


def _exists(path: Path, suffix: str) -> bool:
    return Path(f"{path}{suffix}").exists()


def unsafe_mode_message(path: Path, found: str) -> str:
    return (
        f"examstation refuses to open {path}: it is in {found}; it needs WAL with synchronous=FULL "
        f"so acknowledged records survive a power cut; {upgrade_hint(path)} to convert it, or restore a backup"
    )


def create_sqlite_engine(path: Path, role: Role, *, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> Engine:
    """An engine on `path` whose connections are WAL + synchronous=FULL + foreign keys, checked.

    The writer engine has exactly one connection and begins with BEGIN IMMEDIATE; the reader
    engine has a few query_only connections and begins with BEGIN. A connection whose pragmas do
    not read back as required is closed and `UnsafeJournalModeError` raised.
    """
    writer = role == "writer"
    engine = create_engine(
        URL.create("sqlite+pysqlite", database=str(path)),
        connect_args={"check_same_thread": False, "timeout": busy_timeout_ms / 1000},
        pool_size=1 if writer else 4,
        max_overflow=0 if writer else 4,
    )

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        conn = cast(sqlite3.Connection, dbapi_connection)
        conn.isolation_level = None
        mode = str(conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]).lower()
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        if not writer:
            conn.execute("PRAGMA query_only=ON")
        synchronous = int(conn.execute("PRAGMA synchronous").fetchone()[0])
        foreign_keys = int(conn.execute("PRAGMA foreign_keys").fetchone()[0])
        if mode != "wal":
            raise UnsafeJournalModeError(unsafe_mode_message(path, f"journal_mode={mode} after connect"))
        if synchronous != _FULL:
            name = _SYNCHRONOUS_NAMES.get(synchronous, str(synchronous))
            raise UnsafeJournalModeError(unsafe_mode_message(path, f"synchronous={name} after connect"))
        if foreign_keys != 1:
            raise DatabaseError(
                f"examstation refuses to open {path}: foreign_keys stays off after PRAGMA foreign_keys=ON; "
                "this SQLite build lacks foreign key support; use the Python/SQLite the station was installed with"
            )

    def on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if writer else "BEGIN")

    event.listen(engine, "connect", on_connect)
    event.listen(engine, "begin", on_begin)
    return engine


def create_read_only_engine(path: Path, *, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> Engine:
    """An engine whose connections only read `path`, through `read_only_uri` (no WAL switch, no pragma
    that writes, query_only on), beginning with a plain BEGIN for a consistent snapshot."""
    uri = read_only_uri(path)

    def connect() -> sqlite3.Connection:
        conn = sqlite3.connect(uri, uri=True, timeout=busy_timeout_ms / 1000, check_same_thread=False,
                               isolation_level=None)
        conn.execute("PRAGMA query_only=ON")
        return conn

    # The URL only names the dialect; `creator` makes the connections, and a memory URL would
    # otherwise get SQLAlchemy's one-connection-per-thread pool.
    engine = create_engine("sqlite+pysqlite://", creator=connect, poolclass=QueuePool, pool_size=4, max_overflow=4)

    def on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN")

    event.listen(engine, "begin", on_begin)
    log.debug("reading %s through %s", path, uri)
    return engine
