"""The persistence layer's one exception tree.

Every message names the database file, what was found, what is required and what to do, so an
administrator reading it at 07:30 before the first batch of candidates can act on it.
"""

from __future__ import annotations


class DatabaseError(Exception):
    """The station database cannot be used as it is."""


class DatabaseNotFoundError(DatabaseError):
    """There is no database file yet; `examstation db upgrade` creates one."""


class UnsafeJournalModeError(DatabaseError):
    """The file is not in WAL with synchronous=FULL, so acknowledged commits could be lost."""


class SchemaRevisionError(DatabaseError):
    """The schema is behind (or ahead of) the migrations this version of examstation ships."""


class ForeignDatabaseError(DatabaseError):
    """The file is not an examstation database (another program's, or not SQLite at all); left as it is."""
