"""The station's records: the database in the one mode it accepts and whole, and the site key present.

`database`: the file is examstation's, in WAL (the journal mode the controller requires so that an
acknowledged record survives a power cut; `station.db.connection`), at the schema head, and
`examstation audit verify` finds nothing: SQLite's integrity and foreign keys, every hash chain,
digest and signature (`station.record_commands.audit_verify`, the same function the command runs).
Read-only: the check changes nothing, not even a -shm beside the file.

`key`: the site's Ed25519 key is in the data directory and loads. A missing key is a failure, never
created here: a new key would not be the one the province registered.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from station.db import database_path
from station.db.connection import file_journal_mode, upgrade_hint
from station.db.errors import DatabaseError, DatabaseNotFoundError
from station.errors import ServiceError
from station.record_commands import audit_verify
from station.signing import KEY_FILE, SigningError, SiteKey
from station.site_check.report import Check, CheckContext


async def check_database(ctx: CheckContext) -> list[Check]:
    return [await asyncio.to_thread(_database, ctx.data_dir)]


def _database(data_dir: Path) -> Check:
    path = database_path(data_dir)
    title = f"database {path} in WAL mode, at the schema head, and `audit verify` clean"

    def fail(detail: str, fix: str) -> Check:
        return Check(id="database", category="database", title=title, passed=False, detail=detail, fix=fix)

    try:
        mode = file_journal_mode(path)
        if mode is None:
            return fail(f"no database at {path}", f"{upgrade_hint(path)} to create it, or restore the site's backup "
                        "there (check storage.data_dir in the site config)")
        if mode != "wal":
            return fail(f"{path} is in a rollback-journal mode, not WAL: acknowledged records could be lost at a "
                        "power cut", f"{upgrade_hint(path)} to convert it")
        ok, text = audit_verify(data_dir)
    except DatabaseNotFoundError as err:
        return fail(str(err), f"{upgrade_hint(path)} to create it, or restore the site's backup there")
    except (DatabaseError, ServiceError) as err:
        return fail(str(err), "do what the message says; `examstation audit verify` shows the same")
    lines = [line.strip().rstrip(":") for line in text.splitlines()
             if line.strip() and not line.startswith("the first problem is")]  # that advice is the fix below
    if not ok:
        return fail("audit verify: " + "; ".join(lines[:6]) + (" ..." if len(lines) > 6 else ""),
                    "run `examstation audit verify` for every problem; restore the database from a backup taken "
                    "before the first one, and report the rest to the province")
    return Check(id="database", category="database", title=title, passed=True,
                 detail="journal_mode=wal, schema at head; audit verify: " + "; ".join(lines),
                 figures={"journal_mode": "wal"})


async def check_key(ctx: CheckContext) -> list[Check]:
    return [await asyncio.to_thread(_key, ctx.data_dir)]


def _key(data_dir: Path) -> Check:
    path = data_dir / "keys" / KEY_FILE
    title = "site signing key present"
    if not path.exists():
        return Check(id="key", category="key", title=title, passed=False,
                     detail=f"no site key at {path}: results cannot be signed",
                     fix=f"restore the key from the site's backup into {path.parent}; only for a new site, create "
                         f"one with `examstation keys init --data-dir {data_dir}` and register its public half "
                         "(`examstation keys export`) with the province")
    try:
        key = SiteKey.load(path)
    except SigningError as err:
        return Check(id="key", category="key", title=title, passed=False, detail=str(err),
                     fix="restore the key file from the site's backup")
    return Check(id="key", category="key", title=title, passed=True, detail=f"{key.key_id} in {path}",
                 figures={"key_id": key.key_id})
