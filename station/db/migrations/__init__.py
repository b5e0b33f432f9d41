"""Alembic migrations of the station database; run through `station.db.migrate.upgrade`, not an alembic.ini."""
