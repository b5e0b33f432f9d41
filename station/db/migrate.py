"""Schema revisions: bring a database file to the current head (`examstation db upgrade`).

Alembic is configured in code (no alembic.ini in the working directory): the script location is
this package's `migrations/` folder and the connection is the writer connection from
`station.db.connection`, so migrations run under the same WAL/FULL/BEGIN IMMEDIATE rules as the
station. `upgrade(path)`:
- creates a brand-new database (missing or empty file) in WAL mode and migrates it to head;
- converts an existing rollback-journal file to WAL, explicitly and with a warning in the log
  (the only place examstation changes an existing file's journal mode);
- refuses a file whose revision this version does not know (written by a newer examstation), and
  an SQLite file that has tables but no examstation revision (not our database).
`open_database` uses `require_head` to refuse a database that is not at head.
"""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect
from sqlalchemy.exc import OperationalError

from station.db.connection import create_sqlite_engine, file_journal_mode, upgrade_hint
from station.db.errors import DatabaseError, SchemaRevisionError

log = logging.getLogger(__name__)

SCRIPT_LOCATION = Path(__file__).resolve().parent / "migrations"


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
    """Create or migrate the database at `path` to head (WAL, synchronous=FULL); return the revision."""
    mode = file_journal_mode(path)
    if mode is None:
        path.parent.mkdir(parents=True, exist_ok=True)
        log.info("creating database %s (journal_mode=wal, synchronous=FULL)", path)
    elif mode != "wal":
        log.warning("converting database %s from journal_mode=%s to journal_mode=wal (synchronous=FULL)", path, mode)
    head = head_revision()
    engine = create_sqlite_engine(path, "writer")
    try:
        with engine.connect() as conn:
            found = current_revision(conn)
            if found is not None and not _known(found):
                raise SchemaRevisionError(
                    f"cannot upgrade {path}: its schema revision {found} is unknown to this version (head {head}); "
                    "it was written by a newer examstation: run that version, or restore a backup"
                )
            if found is None:
                foreign = sorted(set(inspect(conn).get_table_names()) - {"alembic_version"})
                if foreign:
                    raise SchemaRevisionError(
                        f"cannot upgrade {path}: it holds tables {', '.join(foreign[:5])} but no examstation schema "
                        "revision, so it is not an examstation database; check --data-dir"
                    )
            conn.commit()  # end the read transaction the checks began; alembic begins its own
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
