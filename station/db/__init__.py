"""Persistence: SQLite (WAL, synchronous=FULL, one writer) through SQLAlchemy 2, migrated by Alembic.

- `open_database(path)` -> `Database` with `write()` / `read()` sessions (`engine`);
- `upgrade(path)` creates or migrates the file (`migrate`), behind `examstation db upgrade`;
- the tables (`models`), the canonical JSON and digests the chains use (`digest`), one error tree
  (`errors`).
"""

from station.db.connection import DB_FILENAME, database_path
from station.db.engine import Database, open_database
from station.db.errors import DatabaseError, DatabaseNotFoundError, SchemaRevisionError, UnsafeJournalModeError
from station.db.migrate import head_revision, upgrade

__all__ = [
    "DB_FILENAME",
    "Database",
    "DatabaseError",
    "DatabaseNotFoundError",
    "SchemaRevisionError",
    "UnsafeJournalModeError",
    "database_path",
    "head_revision",
    "open_database",
    "upgrade",
]
