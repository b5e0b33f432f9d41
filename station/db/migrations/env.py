"""Alembic environment: runs on the connection `station.db.migrate` hands over, never from an ini file.

`station.db.migrate.upgrade(path)` opens the writer connection (WAL, synchronous=FULL, BEGIN
IMMEDIATE) and puts it in `config.attributes["connection"]`; the whole upgrade is one transaction
(SQLite DDL is transactional), so a failed migration leaves the file at its old revision.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from station.db.models import Base

config = context.config
connection = config.attributes.get("connection")
if context.is_offline_mode() or not isinstance(connection, Connection):
    raise RuntimeError(
        "station.db migrations run only through station.db.migrate.upgrade(path) "
        "(`examstation db upgrade --data-dir D`), on a live connection; offline SQL generation is not supported"
    )
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=True,
    transactional_ddl=True,
)
with context.begin_transaction():
    context.run_migrations()
