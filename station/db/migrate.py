"""Schema revisions: bring a database file to the current head (`examstation db upgrade`).

Alembic is configured in code (no alembic.ini in the working directory): the script location is
this package's `migrations/` folder and the connection is the writer connection from
`station.db.connection`, so migrations run under the same WAL/FULL/BEGIN IMMEDIATE rules as the
station. `upgrade(path)`:
- first examines the file through a read-only connection (`examine`) and refuses, with the file
  exactly as it was, one that is not SQLite, another program's database (tables, none of ours),
  examstation tables without a revision, and a revision this version does not know (written by
  a newer examstation);
- creates a brand-new database (missing or empty file) in WAL mode and migrates it to head;
- converts an existing rollback-journal file to WAL, explicitly and with a warning in the log
  (the only place examstation changes an existing file's journal mode).
`open_database` uses `examine` too, and `require_head` to refuse a database that is not at head.
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection
from sqlalchemy.exc import OperationalError

from station.db.connection import BUSY_TIMEOUT_MS, create_sqlite_engine, file_journal_mode, read_only_uri, upgrade_hint
from station.db.errors import DatabaseError, ForeignDatabaseError, SchemaRevisionError
from station.db.models import Base

log = logging.getLogger(__name__)

SCRIPT_LOCATION = Path(__file__).resolve().parent / "migrations"
_VERSION = "alembic_version"


def alembic_config(path: Path) -> Config:
    """An Alembic config for the database file `path`, built in code."""
    cfg = Config()
    # ConfigParser interpolation: a literal % in a path must be doubled.
    cfg.set_main_option("script_location", str(SCRIPT_LOCATION).replace("%", "%%"))
    cfg.set_main_option("sqlalchemy.url", f"sqlite:///{path}".replace("%", "%%"))
    return cfg


def head_revision() -> str:
    """The revision the models of this version of examstation correspond to."""
    head = ScriptDirectory(str(SCRIPT_LOCATION)).get_current_head()
    if head is None:  # pragma: no cover - the package always ships 0001
        raise SchemaRevisionError(f"no migrations found under {SCRIPT_LOCATION}; the installation is incomplete")
    return head


def current_revision(conn: Connection) -> str | None:
    """The revision stored in the database (None for a database no migration has touched)."""
    has_table = conn.exec_driver_sql(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'"
    ).first()
    if has_table is None:
        return None
    rows = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalars().all()
    if len(rows) > 1:
        raise SchemaRevisionError(f"alembic_version holds several revisions {rows}; examstation has a linear history")
    return str(rows[0]) if rows else None


@dataclass(frozen=True, slots=True)
class FileState:
    """What a database file is, as seen through a read-only connection before anything is changed."""

    journal_mode: str | None
    """'wal' or 'delete' from the file header; None when there is no file yet (missing or empty)."""
    tables: frozenset[str]
    revision: str | None
    """The Alembic revision stored in it; None when it has none (a blank SQLite file)."""


def examine(path: Path) -> FileState:
    """Look at `path` read-only (`read_only_uri`: nothing written to it or beside it) and refuse what is not ours.

    Raises ForeignDatabaseError for a file that is not SQLite, or holds tables but none of
    examstation's (another program's database), and SchemaRevisionError for examstation tables
    without a schema revision (`alembic_version` gone: only a backup can say which schema it is).
    A blank SQLite file (no tables, or an empty alembic_version only) is ours to fill.
    """
    mode = file_journal_mode(path)
    if mode is None:
        return FileState(None, frozenset(), None)
    try:
        conn = sqlite3.connect(read_only_uri(path), uri=True, timeout=BUSY_TIMEOUT_MS / 1000)
        try:
            tables = frozenset(str(name) for (name,) in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'"))
            rows = conn.execute("SELECT version_num FROM alembic_version").fetchall() if _VERSION in tables else []
        finally:
            conn.close()
    except sqlite3.DatabaseError as err:
        raise DatabaseError(f"cannot read {path}: {err}; check the file and its permissions, or restore a backup") \
            from err
    others = tables - {_VERSION}  # an alembic_version alone is what a downgrade to base leaves: blank
    ours = others & frozenset(Base.metadata.tables)
    if others and not ours:
        names = ", ".join(sorted(others)[:5]) + (", ..." if len(others) > 5 else "")
        raise ForeignDatabaseError(
            f"{path} is not an examstation database: it holds tables {names} but none of examstation's; "
            f"examstation leaves it as it is: move it away, or choose another --data-dir"
        )
    if len(rows) > 1:
        raise SchemaRevisionError(f"{path}: alembic_version holds several revisions {[r[0] for r in rows]}; "
                                  "examstation has a linear history; restore a backup")
    revision = str(rows[0][0]) if rows else None
    if ours and revision is None:
        raise SchemaRevisionError(
            f"examstation refuses to use {path}: it holds examstation tables ({', '.join(sorted(ours)[:3])}, ...) "
            "but no schema revision (its alembic_version table is gone or empty), so which schema it has is "
            "unknown; restore a backup"
        )
    return FileState(mode, tables, revision)


def _known(revision: str) -> bool:
    try:
        return ScriptDirectory(str(SCRIPT_LOCATION)).get_revision(revision) is not None
    except Exception:  # alembic raises several resolution errors for an unknown id
        return False


def require_head(conn: Connection, path: Path) -> str:
    """Return the revision when it is head; otherwise raise SchemaRevisionError saying what to do."""
    found = current_revision(conn)
    head = head_revision()
    if found == head:
        return found
    if found is None:
        raise SchemaRevisionError(
            f"examstation refuses to open {path}: it has no schema revision (expected {head}); "
            f"{upgrade_hint(path)} to create the schema, or restore a backup"
        )
    if not _known(found):
        raise SchemaRevisionError(
            f"examstation refuses to open {path}: its schema revision {found} is unknown to this version "
            f"(head {head}); it was written by a newer examstation: run that version, or restore a backup"
        )
    raise SchemaRevisionError(
        f"examstation refuses to open {path}: its schema is at revision {found}, this version needs {head}; "
        f"{upgrade_hint(path)}, after taking a backup"
    )


def upgrade(path: Path) -> str:
    """Create or migrate the database at `path` to head (WAL, synchronous=FULL); return the revision.

    The file is examined read-only first (`examine`): one that is not ours, or was written by a
    newer examstation, is refused before anything in it changes, its journal mode included.
    """
    state = examine(path)
    head = head_revision()
    if state.revision is not None and not _known(state.revision):
        raise SchemaRevisionError(
            f"cannot upgrade {path}: its schema revision {state.revision} is unknown to this version (head {head}); "
            "it was written by a newer examstation: run that version, or restore a backup"
        )
    if state.journal_mode is None:
        path.parent.mkdir(parents=True, exist_ok=True)
        log.info("creating database %s (journal_mode=wal, synchronous=FULL)", path)
    elif state.journal_mode != "wal":
        log.warning("converting database %s from journal_mode=%s to journal_mode=wal (synchronous=FULL)",
                    path, state.journal_mode)
    engine = create_sqlite_engine(path, "writer")
    try:
        with engine.connect() as conn:
            found = current_revision(conn)
            conn.commit()  # end the read transaction the check began; alembic begins its own
            cfg = alembic_config(path)
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
            if conn.in_transaction():
                conn.commit()
            done = current_revision(conn)
            conn.commit()
    except OperationalError as err:
        raise DatabaseError(
            f"cannot upgrade {path}: {err.orig}; stop every examstation process using it and try again"
        ) from err
    finally:
        engine.dispose()
    if done != head:  # pragma: no cover - alembic would have raised
        raise SchemaRevisionError(f"upgrade of {path} ended at revision {done}, expected {head}")
    if found != done:
        log.info("database %s upgraded from revision %s to %s", path, found or "(none)", done)
    return done
