"""The demo's people: an admin, two examiners at the station left to a person, and a proctor.

The issue says no default password, ever: the demo makes each of them a new random password every
time it starts, prints them once, and (with `--logins-file`) writes them to a file only its owner
can read, for a test that drives the browser. On a data directory an earlier demo used, the same
names are kept and their passwords replaced (an audit entry `user.changed` each, the password
itself never written anywhere but that file and the console), so `examstation audit verify` still
holds and nobody signs in with yesterday's password.

Why the password change lives here and not in station.users: only the demo resets passwords
without asking the person; a site changes them through the users page.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from station import audit
from station.db.models import User
from station.services import StationServices
from station.users import Role, UserBook

_HASHER = PasswordHash((Argon2Hasher(),))
DEMO_ACTOR = "examstation demo"
"""Who the audit log says made the demo's users and changed their passwords."""


@dataclass(frozen=True, slots=True)
class Login:
    name: str
    role: Role
    password: str
    stations: tuple[str, ...]


def demo_logins(human_stations: Sequence[str]) -> list[Login]:
    """Fresh random passwords for the demo's four users (16 URL-safe characters each)."""
    def pw() -> str:
        return secrets.token_urlsafe(12)

    at = tuple(human_stations)
    return [Login("demo-admin", "admin", pw(), ()),
            Login("demo-examiner1", "examiner", pw(), at),
            Login("demo-examiner2", "examiner", pw(), at),
            Login("demo-proctor", "proctor", pw(), ())]


def ensure_demo_users(services: StationServices, human_stations: Sequence[str]) -> list[Login]:
    """Create the demo users, or give the existing ones new passwords and the human stations.
    Blocking (Argon2id hashing, a DB write): call it in a thread from async code."""
    book = UserBook(services.db, services.clock, [st.id for st in services.config.stations])
    existing = {u.name: u for u in book.all()}
    logins = demo_logins(human_stations)
    for login in logins:
        if login.name not in existing:
            book.add(login.name, login.role, login.password, login.stations, by=DEMO_ACTOR)
            continue
        if existing[login.name].role != login.role:
            raise RuntimeError(f"user {login.name} in this data directory is a {existing[login.name].role}, "
                               f"the demo needs a {login.role}; use another --data-dir for the demo")
        _reset(services, login)
        if existing[login.name].disabled:
            book.set_disabled(login.name, False, DEMO_ACTOR)
    return logins


def _reset(services: StationServices, login: Login) -> None:
    """A new password and the demo's stations for a user an earlier demo made; one audit entry."""
    with services.db.write() as tx:
        row = tx.get(User, login.name)
        assert row is not None
        old = json.loads(row.stations)
        row.password_hash = _HASHER.hash(login.password)
        row.stations = json.dumps(list(login.stations))
        audit.append(tx, DEMO_ACTOR, "user.changed", f"user:{login.name}",
                     {"password": "replaced by a new random one at demo start",
                      "stations": {"old": old, "new": list(login.stations)}}, services.clock.utc_ns())


def login_lines(url: str, logins: Sequence[Login]) -> list[str]:
    """What the demo prints once: where to open the UI and who can sign in."""
    what = {"admin": "站点管理员 admin", "examiner": "考评员 examiner", "proctor": "监考员 proctor"}
    lines = [f"  proctor UI: {url}  (sign in with one of these; the passwords are new at every start)"]
    for login in logins:
        at = f" at {','.join(login.stations)}" if login.stations else ""
        lines.append(f"    {what[login.role]:<20} {login.name:<16} {login.password}{at}")
    return lines


def write_logins_file(path: Path, url: str, logins: Sequence[Login]) -> None:
    """`--logins-file`: the URL and the logins as JSON, readable by its owner only (0600), written
    whole under a temporary name first so a reader never sees half of it."""
    tmp = path.with_name(path.name + ".tmp")
    data = {"url": url, "users": [asdict(login) for login in logins]}
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(data, f, ensure_ascii=False, indent=1)
    os.replace(tmp, path)
