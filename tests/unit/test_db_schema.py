"""Schema revisions: `upgrade` creates and migrates; `open_database` refuses anything not at head."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from station.db import (
    DatabaseError,
    DatabaseNotFoundError,
    SchemaRevisionError,
    database_path,
    head_revision,
    migrate,
    open_database,
    upgrade,
)
from station.db.connection import create_sqlite_engine
from station.db.errors import ForeignDatabaseError
from station.db.models import Base

EXTRA_REVISION = '''"""A later revision, for the test: adds a column.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("candidates") as batch:
        batch.add_column(sa.Column("note", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("candidates") as batch:
        batch.drop_column("note")
'''


def revision_in_file(path: Path) -> list[str]:
    with sqlite3.connect(path) as conn:
        rows = [str(r[0]) for r in conn.execute("SELECT version_num FROM alembic_version")]
    conn.close()
    return rows


def test_upgrade_creates_a_database_at_head_from_nothing(tmp_path: Path) -> None:
    path = database_path(tmp_path / "data")  # the data directory does not exist yet either
    assert upgrade(path) == head_revision() == "0003"
    assert revision_in_file(path) == ["0003"]
    assert upgrade(path) == "0003", "upgrading a database at head is a no-op"
    with open_database(path) as db:
        assert db.revision == "0003"


def test_migrated_schema_is_exactly_the_models(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    upgrade(path)
    engine = create_sqlite_engine(path, "reader")
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    finally:
        engine.dispose()
    assert diff == [], f"models and migrations differ; write a migration: {diff}"


def test_a_database_at_an_older_revision_is_refused_until_upgraded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "old.sqlite3"
    upgrade(path)  # at 0003
    # This version of examstation ships one more revision than the file has.
    scripts = tmp_path / "migrations"
    shutil.copytree(migrate.SCRIPT_LOCATION, scripts, ignore=shutil.ignore_patterns("__pycache__"))
    (scripts / "versions" / "0004_note.py").write_text(EXTRA_REVISION, encoding="utf-8")
    monkeypatch.setattr(migrate, "SCRIPT_LOCATION", scripts)

    with pytest.raises(SchemaRevisionError) as refused:
        open_database(path)
    assert str(refused.value) == (
        f"examstation refuses to open {path}: its schema is at revision 0003, this version needs 0004; "
        f"run `examstation db upgrade --data-dir {tmp_path}`, after taking a backup"
    )
    assert upgrade(path) == "0004"
    with open_database(path) as db:
        assert db.revision == "0004"


def test_a_database_without_schema_revision_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "base.sqlite3"
    upgrade(path)
    engine = create_sqlite_engine(path, "writer")
    try:
        with engine.connect() as conn:
            cfg = migrate.alembic_config(path)
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "base")
            conn.commit()
    finally:
        engine.dispose()
    with pytest.raises(SchemaRevisionError, match=r"has no schema revision \(expected 0003\); run `examstation db "
                                                 rf"upgrade --data-dir {tmp_path}` to create the schema"):
        open_database(path)
    assert upgrade(path) == "0003"
    open_database(path).close()


def test_a_database_from_a_newer_version_is_refused_and_not_touched(tmp_path: Path) -> None:
    path = tmp_path / "new.sqlite3"
    upgrade(path)
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '0099'")
    conn.close()
    with pytest.raises(SchemaRevisionError, match=r"revision 0099 is unknown to this version .*newer examstation"):
        open_database(path)
    with pytest.raises(SchemaRevisionError, match=r"cannot upgrade .*0099 is unknown"):
        upgrade(path)
    assert revision_in_file(path) == ["0099"]


def test_a_missing_database_is_refused_with_how_to_create_it(tmp_path: Path) -> None:
    path = database_path(tmp_path)
    with pytest.raises(DatabaseNotFoundError) as refused:
        open_database(path)
    assert f"no examstation database at {path}" in str(refused.value)
    assert f"run `examstation db upgrade --data-dir {tmp_path}` to create it" in str(refused.value)
    assert not path.exists(), "opening must not create the file"


def test_a_file_that_is_not_sqlite_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "examstation.sqlite3"
    path.write_text("station: A01\n" * 20, encoding="utf-8")
    with pytest.raises(DatabaseError, match="is not an SQLite database"):
        open_database(path)
    with pytest.raises(DatabaseError, match="is not an SQLite database"):
        upgrade(path)


def test_upgrade_will_not_take_over_another_programs_database(tmp_path: Path) -> None:
    path = tmp_path / "other.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY)")
    conn.close()
    before = path.read_bytes()
    with pytest.raises(ForeignDatabaseError, match="is not an examstation database: it holds tables invoices"):
        upgrade(path)
    assert path.read_bytes() == before
