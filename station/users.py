"""The people who sign in to the proctor UI, their roles, and the stations examiners are assigned to.

Roles, as a site runs an exam:
- `admin` (站点管理员): users, candidates, the uplink and the audit log; never scores.
- `examiner` (考评员): runs items, marks, signs, only at the stations assigned to them.
- `proctor` (监考员): watches every station and records discipline incidents (考场违纪), never scores.

Passwords are stored as Argon2id hashes (pwdlib); there is no default password: `examstation user
add` asks for one, the demo makes random ones and prints them once. Checking a password costs the
same whether the user exists or not, so a login page cannot be used to find out who has an account.
Every change is an audit entry (`user.added`, `user.changed`; a new password is audited as changed,
never written there).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, get_args

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from sqlalchemy import select

from devices.clock import Clock
from station import audit
from station.db import Database
from station.db.models import User
from station.errors import ServiceError

Role = Literal["admin", "examiner", "proctor"]
ROLES: tuple[Role, ...] = get_args(Role)
MIN_PASSWORD_CHARS = 10
"""Shorter passwords are refused: a hall PC is shared, and a login page is reachable from the hall LAN."""

_HASHER = PasswordHash((Argon2Hasher(),))
_DUMMY_HASH = _HASHER.hash("examstation: a password nobody has")
"""Verified against when the user does not exist, so both answers take the same time."""


class LoginRefused(ServiceError):
    """The name or the password is wrong (which one is not said), or the account is disabled."""


@dataclass(frozen=True, slots=True)
class UserInfo:
    name: str
    role: Role
    stations: tuple[str, ...]
    """The stations an examiner acts at; empty for admins and proctors."""
    disabled: bool = False

    def may_act_at(self, station: str) -> bool:
        """Examiners act only at their own stations; nobody else acts on an exam."""
        return self.role == "examiner" and station in self.stations


def _info(row: User) -> UserInfo:
    return UserInfo(row.name, row.role, tuple(json.loads(row.stations)), bool(row.disabled))  # type: ignore[arg-type]


class UserBook:
    """Users in the station database; each change with its audit entry, in one transaction."""

    def __init__(self, db: Database, clock: Clock, station_ids: Sequence[str]) -> None:
        self.db = db
        self.clock = clock
        self.station_ids = tuple(station_ids)
        """The site's stations: an examiner can only be assigned to these."""

    def add(self, name: str, role: str, password: str, stations: Sequence[str] = (), by: str = "cli") -> UserInfo:
        """A new user. Raises ServiceError naming what is wrong (name taken, role, station, password)."""
        name = name.strip()
        if not name or len(name) > 64 or any(c.isspace() for c in name):
            raise ServiceError(f"user name {name!r}: use 1 to 64 characters without spaces")
        info = UserInfo(name, self._role(role), self._stations(role, stations))
        self._check_password(password)
        with self.db.write() as tx:
            if tx.get(User, name) is not None:
                raise ServiceError(f"user {name} exists already; choose another name")
            tx.add(User(name=name, role=info.role, stations=json.dumps(list(info.stations)),
                        password_hash=_HASHER.hash(password), created_utc_ns=self.clock.utc_ns(), disabled=0))
            audit.append(tx, by, "user.added", f"user:{name}", {"role": info.role, "stations": list(info.stations)},
                         self.clock.utc_ns())
        return info

    def set_stations(self, name: str, stations: Sequence[str], by: str) -> UserInfo:
        """Assign an examiner to stations (replacing the earlier assignment)."""
        with self.db.write() as tx:
            row = tx.get(User, name)
            if row is None:
                raise ServiceError(f"no user {name}")
            new = self._stations(row.role, stations)
            old = json.loads(row.stations)
            row.stations = json.dumps(list(new))
            audit.append(tx, by, "user.changed", f"user:{name}", {"stations": {"old": old, "new": list(new)}},
                         self.clock.utc_ns())
            return _info(row)

    def set_disabled(self, name: str, disabled: bool, by: str) -> UserInfo:
        with self.db.write() as tx:
            row = tx.get(User, name)
            if row is None:
                raise ServiceError(f"no user {name}")
            old = bool(row.disabled)
            row.disabled = int(disabled)
            audit.append(tx, by, "user.changed", f"user:{name}", {"disabled": {"old": old, "new": disabled}},
                         self.clock.utc_ns())
            return _info(row)

    def set_password(self, name: str, password: str, by: str) -> UserInfo:
        """A new password for `name`, set by an administrator (or by `examstation user passwd` on the
        box, the way back in when no administrator can sign in). The audit entry says that it
        changed, never the password or its hash."""
        self._check_password(password)
        hashed = _HASHER.hash(password)
        with self.db.write() as tx:
            row = tx.get(User, name)
            if row is None:
                raise ServiceError(f"no user {name}")
            row.password_hash = hashed
            audit.append(tx, by, "user.changed", f"user:{name}", {"password": "changed"}, self.clock.utc_ns())
            return _info(row)

    def change_own_password(self, name: str, current: str, new: str) -> UserInfo:
        """A user changing their own password: the current one first (a hall PC left signed in must
        not let anyone take the account over)."""
        try:
            self.authenticate(name, current)
        except LoginRefused:
            raise LoginRefused("the current password is wrong; nothing was changed") from None
        return self.set_password(name, new, by=name)

    def authenticate(self, name: str, password: str) -> UserInfo:
        """The user, when the password is theirs; LoginRefused otherwise (the same for every reason)."""
        with self.db.read() as s:
            row = s.get(User, name.strip())
            info = _info(row) if row is not None else None
            stored = row.password_hash if row is not None else _DUMMY_HASH
        ok = _HASHER.verify(password, stored)
        if info is None or not ok or info.disabled:
            raise LoginRefused("wrong user name or password")
        return info

    def get(self, name: str) -> UserInfo:
        with self.db.read() as s:
            row = s.get(User, name)
            if row is None:
                raise ServiceError(f"no user {name}")
            return _info(row)

    def all(self) -> list[UserInfo]:
        with self.db.read() as s:
            return [_info(r) for r in s.scalars(select(User).order_by(User.role, User.name))]

    def count(self) -> int:
        return len(self.all())

    def _role(self, role: str) -> Role:
        if role not in ROLES:
            raise ServiceError(f"role {role!r} is not one of {', '.join(ROLES)}")
        return role

    def _stations(self, role: str, stations: Sequence[str]) -> tuple[str, ...]:
        wanted = tuple(dict.fromkeys(s.strip() for s in stations if s.strip()))
        unknown = [s for s in wanted if s not in self.station_ids]
        if unknown:
            raise ServiceError(f"station(s) {', '.join(unknown)} are not in this site's config "
                               f"(stations: {', '.join(self.station_ids)})")
        if wanted and role != "examiner":
            raise ServiceError(f"only examiners are assigned to stations; a {role} watches the whole hall")
        return wanted

    @staticmethod
    def _check_password(password: str) -> None:
        if len(password) < MIN_PASSWORD_CHARS:
            raise ServiceError(f"the password has {len(password)} characters; use at least {MIN_PASSWORD_CHARS}")
