"""The database and key checks on real data directories: made by `db upgrade` and `keys init` they
pass; a missing key fails and is not created; a missing database, one in a rollback-journal mode,
and one whose audit chain was altered each fail with the fix."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from station.db import database_path
from station.db.connection import file_journal_mode
from station.signing import KEY_FILE
from station.site_check.report import Check, CheckContext
from station.site_check.store_check import check_database, check_key
from tests.site_check.core_kit import CONFIG, EXAMPLE, prepared_data_dir


def ctx(data: Path) -> CheckContext:
    return CheckContext(config=CONFIG, config_path=EXAMPLE, data_dir=data, sample_s=1)


async def one(check: list[Check]) -> Check:
    assert len(check) == 1
    return check[0]


async def test_a_prepared_data_directory_passes(tmp_path: Path) -> None:
    data = prepared_data_dir(tmp_path / "data")
    db = await one(await check_database(ctx(data)))
    key = await one(await check_key(ctx(data)))
    assert db.passed and "journal_mode=wal" in db.detail, db.detail
    assert key.passed and str(key.figures["key_id"]).startswith("ed25519:")


async def test_a_missing_key_fails_and_is_not_created(tmp_path: Path) -> None:
    data = prepared_data_dir(tmp_path / "data")
    (data / "keys" / KEY_FILE).unlink()
    key = await one(await check_key(ctx(data)))
    assert not key.passed and key.fix is not None
    assert "restore the key" in key.fix and "examstation keys init" in key.fix
    assert not (data / "keys" / KEY_FILE).exists()  # a new key would not be the registered one
    assert (await one(await check_database(ctx(data)))).passed  # the other check is not affected


async def test_a_missing_database_fails_with_db_upgrade(tmp_path: Path) -> None:
    data = tmp_path / "empty"
    data.mkdir()
    db = await one(await check_database(ctx(data)))
    assert not db.passed and db.fix is not None and "examstation db upgrade" in db.fix
    assert not database_path(data).exists()


async def test_a_rollback_journal_database_fails(tmp_path: Path) -> None:
    data = prepared_data_dir(tmp_path / "data")
    with sqlite3.connect(database_path(data)) as conn:  # what a restore with another tool leaves
        conn.execute("PRAGMA journal_mode=DELETE")
    conn.close()
    assert file_journal_mode(database_path(data)) == "delete"
    db = await one(await check_database(ctx(data)))
    assert not db.passed and "not WAL" in db.detail
    assert db.fix is not None and "db upgrade" in db.fix


async def test_an_altered_audit_chain_fails_as_audit_verify_does(tmp_path: Path) -> None:
    data = prepared_data_dir(tmp_path / "data")
    with sqlite3.connect(database_path(data)) as conn:  # an entry that is not on the chain
        conn.execute("INSERT INTO audit (seq, utc_ns, actor, action, subject, payload, prev_hash, entry_hash) "
                     "VALUES (1, 0, 'x', 'x', 'x', '{}', 'bogus', 'bogus')")
    conn.close()
    db = await one(await check_database(ctx(data)))
    assert not db.passed and "audit" in db.detail, db.detail
    assert db.fix is not None and "examstation audit verify" in db.fix
