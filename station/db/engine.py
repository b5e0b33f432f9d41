"""The station database: one writer connection behind a lock, reader connections beside it.

`open_database(path)` opens an existing database and checks, before anything is written, that it
is one examstation may use:
1. the file exists (a new one is made by `examstation db upgrade`, i.e. `station.db.migrate.upgrade`)
   and, looked at through a read-only connection (`station.db.migrate.examine`), is ours: another
   program's database or a file that is not SQLite is refused as it is (`ForeignDatabaseError`);
2. its header says WAL; a file in a rollback-journal mode is refused, never converted here
   (`UnsafeJournalModeError`; only `examstation db upgrade` converts, explicitly);
3. every connection reads back journal_mode=wal, synchronous=FULL and foreign_keys=ON after the
   connect hook set them (`station.db.connection`);
4. its Alembic revision is this version's head (`SchemaRevisionError` otherwise).

All writes go through `Database.write()`: one `BEGIN IMMEDIATE` transaction on the single writer
connection, serialised by a lock, so there is never a second writer (LIBRARY-NOTES: two writers
or checkpointers at once can hit SQLite's WAL-reset bug; a deferred read-then-write can fail at
once with "database is locked"). A commit is on disk when `write()` returns (synchronous=FULL):
these calls block for an fsync, so asyncio code calls them from a worker thread.

`open_database(path, read_only=True)` only reads (`audit verify`, a forensic copy in a read-only
directory): no WAL switch, no migration, nothing written to the file or beside it.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType

import sqlalchemy
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from station.db.connection import (
    create_read_only_engine,
    create_sqlite_engine,
    unsafe_mode_message,
    upgrade_hint,
)
from station.db.disk import free_space_todo, full_disk
from station.db.errors import DatabaseError, DatabaseNotFoundError, UnsafeJournalModeError
from station.db.migrate import examine, require_head

log = logging.getLogger(__name__)


class Database:
    """An open station database. Use `open_database`; close it (or use `with`) when done."""

    def __init__(self, path: Path, writer: Engine | None, reader: Engine, revision: str) -> None:
        self.path = path
        self.revision = revision
        self.read_only = writer is None
        self.sqlite_version = sqlite3.sqlite_version
        self._writer = writer
        self._reader = reader
        self._lock = threading.Lock()
        self._owner: int | None = None
        self._closed = False

    @contextmanager
    def write(self) -> Iterator[Session]:
        """One BEGIN IMMEDIATE transaction on the writer connection; commits on exit, rolls back on error.

        Waits for the writer lock (other threads' write transactions). Nesting `write()` in one
        thread is a bug (there is one connection) and raises DatabaseError.
        """
        if self._writer is None:
            raise DatabaseError(f"database {self.path} is open read-only (open_database(read_only=True)); "
                                "nothing can be written through it")
        me = threading.get_ident()
        if self._owner == me:
            raise DatabaseError(f"{self.path}: write() called inside write() in the same thread; "
                                "pass the open session down instead")
        with self._lock:
            self._check_open()
            self._owner = me
            try:
                with Session(self._writer, expire_on_commit=False) as session, session.begin():
                    yield session
            finally:
                self._owner = None

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only snapshot (BEGIN on a query_only reader connection); never blocks the writer."""
        self._check_open()
        with Session(self._reader) as session, session.begin():
            yield session

    def close(self) -> None:
        """Close every connection (waits for a write in progress to finish). Idempotent."""
        if self._owner == threading.get_ident():
            raise DatabaseError(f"{self.path}: close() called inside write(); leave the transaction first")
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._reader.dispose()
            if self._writer is not None:
                self._writer.dispose()
        log.info("closed database %s", self.path)

    def __enter__(self) -> Database:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise DatabaseError(f"database {self.path} is closed")

    def __repr__(self) -> str:
        mode = ", read_only=True" if self.read_only else ""
        return f"Database({str(self.path)!r}, revision={self.revision!r}{mode})"


def open_database(path: Path, *, read_only: bool = False) -> Database:
    """Open the station database at `path`, refusing one that is missing, not ours, not WAL+FULL, or not at head.

    `read_only=True` opens it for reading only (`audit verify`, a forensic copy): through
    `read_only_uri` (SQLite `mode=ro`, or `immutable=1` when nothing has the file open), so
    nothing is written to the file or beside it and it works in a read-only directory; no WAL
    switch, no migration, a rollback-journal copy is read as it is; `write()` raises DatabaseError.
    """
    state = examine(path)  # read-only: a file that is not ours is refused before anything touches it
    if state.journal_mode is None:
        todo = "check --data-dir" if read_only else f"{upgrade_hint(path)} to create it"
        raise DatabaseNotFoundError(
            f"no examstation database at {path} (missing or empty file); {todo}, or restore a backup there"
        )
    if read_only:
        return _open_read_only(path)
    if state.journal_mode != "wal":
        raise UnsafeJournalModeError(unsafe_mode_message(path, f"journal_mode={state.journal_mode}"))
    writer = create_sqlite_engine(path, "writer")
    reader = create_sqlite_engine(path, "reader")
    try:
        with writer.connect() as conn:  # runs the connect hook's checks on the writer connection now
            pass
        with reader.connect() as conn:
            revision = require_head(conn, path)
    except sqlalchemy.exc.OperationalError as err:
        reader.dispose()
        writer.dispose()
        disk = full_disk(path.parent, str(err.orig))
        if disk is not None:
            raise DatabaseError(f"cannot open database {path}: {disk} ({err.orig}); {free_space_todo(path.parent)}, "
                                "then start again") from err
        raise DatabaseError(f"cannot open database {path}: {err.orig}; check the file and its permissions") from err
    except BaseException:
        reader.dispose()
        writer.dispose()
        raise
    log.info(
        "opened database %s (SQLite %s, SQLAlchemy %s, schema revision %s, journal_mode=wal, synchronous=FULL)",
        path, sqlite3.sqlite_version, sqlalchemy.__version__, revision,
    )
    return Database(path, writer, reader, revision)


def _open_read_only(path: Path) -> Database:
    reader = create_read_only_engine(path)
    try:
        with reader.connect() as conn:
            revision = require_head(conn, path)
    except sqlalchemy.exc.OperationalError as err:
        reader.dispose()
        raise DatabaseError(f"cannot read database {path}: {err.orig}; check the file and its permissions") from err
    except BaseException:
        reader.dispose()
        raise
    log.info("opened database %s read-only (SQLite %s, schema revision %s)", path, sqlite3.sqlite_version, revision)
    return Database(path, None, reader, revision)
