"""The CLI's maintenance commands: db upgrade, keys, candidates import, outbox, users. (audit verify and
replay: station.record_commands.)"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import or_, select

from devices.clock import SystemClock
from station.audit import AuditEntry
from station.candidates import import_candidates_csv
from station.config import SiteConfig
from station.db import Database, database_path, open_database, upgrade
from station.db.models import Attempt as AttemptRow
from station.db.models import AuditRow, Candidate, OutboxRow, ResultRow
from station.id_number import china_date
from station.result_document import iso_utc
from station.services import ServiceError, StationServices
from station.signing import SiteKey
from station.uplink import outbox
from station.users import UserBook


def db_upgrade(data_dir: Path) -> str:
    data_dir.mkdir(parents=True, exist_ok=True)
    revision = upgrade(database_path(data_dir))
    return f"database {database_path(data_dir)} is at revision {revision}"


def keys(data_dir: Path, action: str) -> str:
    key = SiteKey.load_or_create(data_dir)
    if action == "init":
        return f"site key {key.key_id} in {data_dir / 'keys'}"
    return key.public_pem().rstrip("\n")


def import_candidates(config: SiteConfig, data_dir: Path, path: Path, *, encoding: str | None = None,
                      dry_run: bool = False) -> str:
    """`examstation candidates import FILE [--encoding ENC] [--dry-run]`: the report of what changed.

    Raises ServiceError (CandidateFileError) listing every problem of the file; nothing is
    registered then. `dry_run` checks the file and compares it with the database, writing nothing.
    """
    with open_database(database_path(data_dir)) as db:
        services = StationServices(config, db, SiteKey.load_or_create(data_dir), SystemClock())
        try:
            report = import_candidates_csv(services, path, encoding=encoding, dry_run=dry_run)
        finally:
            services.close()
    return str(report)


def outbox_status(data_dir: Path, as_json: bool, show_all: bool = False) -> tuple[bool, str]:
    """`examstation outbox`: backlog, oldest undelivered age, and each undelivered result.

    Returns (no rejected results, text): a rejected result needs a person, so the command then
    exits non-zero for monitoring scripts.
    """
    now = SystemClock().utc_ns()
    with open_database(database_path(data_dir)) as db:
        backlog = outbox.backlog(db)
        states = ("queued", "failed", "delivered") if show_all else ("queued", "failed")
        rows = outbox.listing(db, states, limit=1000)
    age = backlog.oldest_age_s(now)
    if as_json:
        return backlog.failed == 0, json.dumps({
            "queued": backlog.queued, "failed": backlog.failed, "delivered": backlog.delivered,
            "oldest_queued_age_s": None if age is None else round(age, 1),
            "results": [{"result_id": r.result_id, "seq": r.seq, "station": r.station, "state": r.state,
                         "sends": r.sends, "signed_at": iso_utc(r.created_utc_ns),
                         "delivered_at": None if r.delivered_utc_ns is None else iso_utc(r.delivered_utc_ns),
                         "last_error": r.last_error} for r in rows]}, ensure_ascii=False)
    lines = [f"outbox of {database_path(data_dir)}: {backlog.queued} queued"
             + ("" if age is None else f" (oldest signed {age:.0f} s ago)")
             + f", {backlog.failed} rejected by the province, {backlog.delivered} delivered"]
    for r in rows:
        note = f"  {r.last_error}" if r.last_error else ""
        lines.append(f"  seq {r.seq:>6}  {r.result_id}  {r.station:<6} {r.state:<9} sent {r.sends}x  "
                     f"signed {iso_utc(r.created_utc_ns)}{note}")
    if backlog.failed:
        lines.append("rejected results wait for you: fix what the province named, then "
                     "`examstation outbox retry RESULT_ID`")
    return backlog.failed == 0, "\n".join(lines)


def outbox_retry(data_dir: Path, result_id: str) -> str:
    with open_database(database_path(data_dir)) as db:
        try:
            outbox.requeue(db, result_id, SystemClock().utc_ns(), "site-administrator")
        except (LookupError, ValueError) as err:
            raise ServiceError(str(err)) from err
    return f"result {result_id} is queued again; the running controller sends it within a second"


def user_add(config: SiteConfig, data_dir: Path, name: str, role: str, password: str,
             stations: list[str]) -> str:
    """`examstation user add NAME --role ROLE [--stations A01,A02]`: the new user, audited as done by `cli`.

    Raises ServiceError naming what is wrong (name taken, role, a station not in the config, a
    short password); nothing is written then.
    """
    with open_database(database_path(data_dir)) as db:
        info = _users(config, db).add(name, role, password, stations, by="cli")
    where = f" at {', '.join(info.stations)}" if info.stations else ""
    return f"user {info.name} added: {info.role}{where}; they sign in to the proctor UI with this password"


def user_passwd(config: SiteConfig, data_dir: Path, name: str, password: str) -> str:
    """`examstation user passwd NAME`: a new password, audited as changed by `cli`."""
    with open_database(database_path(data_dir)) as db:
        info = _users(config, db).set_password(name, password, by="cli")
    return (f"password of {info.name} ({info.role}) changed; a browser already signed in as {info.name} stays "
            "signed in until it signs out, idles out or the controller restarts")


def user_list(config: SiteConfig, data_dir: Path) -> str:
    """`examstation user list`: every user with role, stations and whether disabled."""
    with open_database(database_path(data_dir)) as db:
        users = _users(config, db).all()
    if not users:
        return "no users yet: `examstation user add NAME --role admin` adds the first"
    width = max(len(u.name) for u in users)
    return "\n".join(f"{u.name:<{width}}  {u.role:<8}  {','.join(u.stations) or '-':<16}"
                     f"{'  disabled' if u.disabled else ''}".rstrip() for u in users)


def _users(config: SiteConfig, db: Database) -> UserBook:
    return UserBook(db, SystemClock(), [st.id for st in config.stations])


# What the site-administration pages read (proctor_ui/routes/admin_*.py): routes do no SQL, these do.

@dataclass(frozen=True, slots=True)
class CandidateListed:
    id_number: str
    name: str
    operation: str
    batch: str
    attempt_number: int


def find_candidates(db: Database, query: str = "", limit: int = 200) -> list[CandidateListed]:
    """Registered candidates whose ID number, name or batch contains `query`, by ID number."""
    stmt = select(Candidate).order_by(Candidate.id_number).limit(limit)
    q = query.strip()
    if q:
        like = f"%{q.replace('%', '').replace('_', '')}%"
        stmt = stmt.where(or_(Candidate.id_number.like(like), Candidate.name.like(like), Candidate.batch.like(like)))
    with db.read() as s:
        return [CandidateListed(c.id_number, c.name, c.operation, c.batch, c.attempt_number) for c in s.scalars(stmt)]


@dataclass(frozen=True, slots=True)
class ResultListed:
    result_id: str
    attempt_id: str
    seq: int
    station: str
    id_number: str
    name: str
    total: float | None
    passed: bool | None
    signed_utc_ns: int
    delivery: str


def find_results(db: Database, query: str = "", station: str = "", day: date | None = None,
                 limit: int = 200) -> list[ResultListed]:
    """Signed results, newest first: `query` in the candidate's ID number or name, at `station`,
    signed on `day` (China's calendar date)."""
    q = query.strip().casefold()
    stmt = (select(ResultRow, AttemptRow.station, OutboxRow.state)
            .join(AttemptRow, AttemptRow.attempt_id == ResultRow.attempt_id)
            .join(OutboxRow, OutboxRow.result_id == ResultRow.result_id, isouter=True)
            .order_by(ResultRow.site_seq.desc()))
    if station:
        stmt = stmt.where(AttemptRow.station == station)
    out: list[ResultListed] = []
    with db.read() as s:
        for row, at, state in s.execute(stmt):
            if day is not None and china_date(row.created_utc_ns) != day:
                continue
            doc = json.loads(row.document)
            cand = doc.get("candidate") or {}
            idn, name = str(cand.get("id_number", "")), str(cand.get("name", ""))
            if q and q not in idn.casefold() and q not in name.casefold():
                continue
            out.append(ResultListed(row.result_id, row.attempt_id, row.site_seq, at, idn, name, doc.get("total"),
                                    doc.get("passed"), row.created_utc_ns, state or "-"))
            if len(out) >= limit:
                break
    return out


def result_document(db: Database, result_id: str) -> dict[str, Any]:
    """The signed result document as stored (ServiceError when there is none)."""
    with db.read() as s:
        row = s.get(ResultRow, result_id)
        if row is None:
            raise ServiceError(f"no result {result_id}; search the results page for it")
        doc: dict[str, Any] = json.loads(row.document)
        return doc


def audit_page(db: Database, before_seq: int | None = None, n: int = 50) -> list[AuditEntry]:
    """The `n` audit entries before `before_seq` (the latest without it), newest first."""
    stmt = select(AuditRow).order_by(AuditRow.seq.desc()).limit(n)
    if before_seq is not None:
        stmt = stmt.where(AuditRow.seq < before_seq)
    with db.read() as s:
        return [AuditEntry(r.seq, r.utc_ns, r.actor, r.action, r.subject, json.loads(r.payload), r.prev_hash,
                           r.entry_hash) for r in s.scalars(stmt)]
