"""`examstation audit verify` and `examstation replay`: the commands an auditor runs on a result.

Both read only: they never create a key, a table or a journal file, so they work on a forensic
copy of the data directory. Both exit non-zero when anything does not hold (the CLI turns the
`ok` they return into the exit status), so a script or a court's expert cannot mistake a
difference for success.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

from sqlalchemy import select

from scoring.canonical import canonical_json
from scoring.engine import score
from scoring.rubric import Rubric
from scoring.rubric_loader import RubricError, rubric_for
from station import audit
from station.db import Database, database_path, open_database
from station.db.errors import DatabaseError
from station.db.models import Attempt as AttemptRow
from station.db.models import ScoreSheetRow
from station.errors import ServiceError
from station.record_proof import SiteKeyRef, key_ref, prove_records
from station.signing import KEY_FILE, SigningError, SiteKey
from station.stored import load_timeline_in


def site_key(data_dir: Path, public_key: Path | None) -> SiteKeyRef | None:
    """The key results must verify against: the PEM file given (the key the province registered),
    else the public half of the site key in the data directory; None when neither exists."""
    try:
        if public_key is not None:
            return key_ref(public_key.read_text(encoding="ascii"), str(public_key))
        path = data_dir / "keys" / KEY_FILE
        if not path.exists():
            return None
        return key_ref(SiteKey.load(path).public_pem(), str(path))
    except (OSError, UnicodeDecodeError, SigningError) as err:
        raise ServiceError(f"cannot use the site's public key: {err}") from err


def _rubrics() -> Callable[[str], Rubric]:
    return cache(rubric_for)


def _open(data_dir: Path) -> Database:
    """Read-only (SQLite `mode=ro`): nothing is created or changed, so a forensic copy can be used."""
    return open_database(database_path(data_dir), read_only=True)


def audit_verify(data_dir: Path, public_key: Path | None = None, province_copy: Path | None = None) -> tuple[bool, str]:
    """Every chain, digest, signature and cross-check (station.audit, station.record_proof)."""
    key = site_key(data_dir, public_key)
    copy = _province_copy(province_copy) if province_copy is not None else None
    with _open(data_dir) as db:
        report = audit.verify(db)
        with db.read() as session:
            found = prove_records(session, key, _rubrics(), copy)
    problems = (*report.problems, *found.problems)
    checked = {**report.checked, **found.checked}
    text = str(audit.VerifyReport(problems, checked))
    if key is not None:
        text += f"\nsignatures checked against {key.source}"
    if problems:
        text += "\nthe first problem is the place to start: restore the database from a backup taken before it, " \
                "and report the rest to the province"
    return not problems, text


def _province_copy(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ServiceError(f"{path}: cannot read the province's copy of a result ({err}); give the JSON result "
                           "document the province holds") from err
    if not isinstance(data, dict) or "result_id" not in data or "signature" not in data:
        raise ServiceError(f"{path}: not a signed result document (no result_id or signature)")
    return data


def replay(data_dir: Path, attempt_id: str, as_json: bool, public_key: Path | None = None) -> tuple[bool, str]:
    """Score the stored timeline again with the rubric edition that scored it; compare with the
    latest stored sheet and with the signed result. `ok` is False when anything differs."""
    key = site_key(data_dir, public_key)
    with _open(data_dir) as db:
        chains = [p for p in audit.verify(db).problems if attempt_id in p.key]  # its timeline chain and seal
        return _replay_in(db, attempt_id, as_json, key, chains)


def _replay_in(db: Database, attempt_id: str, as_json: bool, key: SiteKeyRef | None,
               chains: list[audit.Problem]) -> tuple[bool, str]:
    rubric_of = _rubrics()
    with db.read() as session:
        attempt = session.get(AttemptRow, attempt_id)
        if attempt is None:
            raise ServiceError(f"no attempt {attempt_id} in {db.path}; `examstation outbox --all` lists results "
                               "with their attempts")
        try:
            rubric = rubric_of(attempt.operation)
        except (RubricError, LookupError) as err:
            raise ServiceError(f"attempt {attempt_id}: {err}") from err
        if rubric.hash != attempt.rubric_hash:
            raise ServiceError(f"attempt {attempt_id} was scored with rubric {attempt.rubric_hash}; the rubric file "
                               f"now is {rubric.hash}; replay needs that rubric edition (restore it from the export)")
        try:
            sheet = score(rubric, load_timeline_in(session, attempt_id))
        except DatabaseError as err:
            raise ServiceError(str(err)) from err
        stored = session.execute(select(ScoreSheetRow.sheet).where(ScoreSheetRow.attempt_id == attempt_id)
                                 .order_by(ScoreSheetRow.version.desc()).limit(1)).scalar()
        found = prove_records(session, key, rubric_of, attempt_id=attempt_id)
    found.problems[:0] = chains
    identical = stored is None or stored == canonical_json(sheet.to_dict())
    ok = identical and not found.problems
    if as_json:
        return ok, json.dumps({"attempt_id": attempt_id, "identical_to_stored": identical,
                               "problems": [str(p) for p in found.problems], "sheet": sheet.to_dict()},
                              ensure_ascii=False)
    items = ", ".join(f"{i.code} {i.score:g} ({i.outcome})" for i in sheet.items)
    verdict = ("not scored yet" if stored is None else
               "identical to the stored sheet" if identical else "DIFFERENT from the stored sheet")
    lines = [f"attempt {attempt_id}: {items}; total {sheet.total:g}, passed {sheet.passed}; {verdict}"]
    lines += [f"  {p}" for p in found.problems]
    if found.checked.get("signatures"):
        lines.append("  the signed result agrees with the stored timeline and its signature verifies")
    return ok, "\n".join(lines)
