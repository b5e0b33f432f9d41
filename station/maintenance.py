"""The CLI's maintenance commands: db upgrade, audit verify, keys, replay."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select

from devices.clock import SystemClock
from scoring.sheet import canonical_json
from station import audit
from station.candidates import import_candidates_csv
from station.config import SiteConfig
from station.db import database_path, open_database, upgrade
from station.db.models import ScoreSheetRow
from station.services import StationServices
from station.signing import SiteKey


def db_upgrade(data_dir: Path) -> str:
    data_dir.mkdir(parents=True, exist_ok=True)
    revision = upgrade(database_path(data_dir))
    return f"database {database_path(data_dir)} is at revision {revision}"


def audit_verify(data_dir: Path) -> tuple[bool, str]:
    with open_database(database_path(data_dir)) as db:
        report = audit.verify(db)
    return report.ok, str(report)


def keys(data_dir: Path, action: str) -> str:
    key = SiteKey.load_or_create(data_dir)
    if action == "init":
        return f"site key {key.key_id} in {data_dir / 'keys'}"
    return key.public_pem().rstrip("\n")


def replay(config: SiteConfig, data_dir: Path, attempt_id: str, as_json: bool) -> str:
    """Re-score from the stored timeline and compare with the latest stored sheet, byte for byte."""
    with open_database(database_path(data_dir)) as db:
        services = StationServices(config, db, SiteKey.load_or_create(data_dir), SystemClock())
        try:
            sheet = services.replay(attempt_id)
            with db.read() as s:
                stored = s.execute(select(ScoreSheetRow.sheet).where(ScoreSheetRow.attempt_id == attempt_id)
                                   .order_by(ScoreSheetRow.version.desc()).limit(1)).scalar()
        finally:
            services.close()
    identical = stored == canonical_json(sheet)
    if as_json:
        return json.dumps({"attempt_id": attempt_id, "identical_to_stored": identical, "sheet": sheet.to_dict()},
                          ensure_ascii=False)
    items = ", ".join(f"{i.code} {i.score:g} ({i.outcome})" for i in sheet.items)
    verdict = "identical to the stored sheet" if identical else "DIFFERENT from the stored sheet"
    return f"attempt {attempt_id}: {items}; total {sheet.total:g}, passed {sheet.passed}; {verdict}"


def import_candidates(config: SiteConfig, data_dir: Path, path: Path) -> str:
    with open_database(database_path(data_dir)) as db:
        services = StationServices(config, db, SiteKey.load_or_create(data_dir), SystemClock())
        try:
            count = import_candidates_csv(services, path)
        finally:
            services.close()
    return f"registered {count} candidates from {path}"
