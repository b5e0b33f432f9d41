"""Server-side sessions: the browser holds only a random token; who it is lives here.

Why server-side: signing out, disabling a user or a restart ends the session for real (a signed
cookie stays valid until it expires). Sessions are in memory: a controller restart signs everyone
out, which is what a hall expects after a restart anyway. Each session has its own CSRF token,
which every unsafe request must echo (form field `csrf` or header `X-CSRF-Token`).
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field

from station.users import UserInfo

IDLE_TIMEOUT_S = 8 * 3600.0
"""A session unused this long ends: one exam day."""


@dataclass
class UiSession:
    token: str
    user: UserInfo
    csrf: str
    last_used: float = field(default_factory=time.monotonic)


class SessionStore:
    def __init__(self, idle_timeout_s: float = IDLE_TIMEOUT_S) -> None:
        self._sessions: dict[str, UiSession] = {}
        self._lock = threading.Lock()
        self.idle_timeout_s = idle_timeout_s

    def create(self, user: UserInfo) -> UiSession:
        s = UiSession(secrets.token_urlsafe(32), user, secrets.token_urlsafe(32))
        with self._lock:
            self._sessions[s.token] = s
        return s

    def get(self, token: str | None) -> UiSession | None:
        if not token:
            return None
        now = time.monotonic()
        with self._lock:
            s = self._sessions.get(token)
            if s is None:
                return None
            if now - s.last_used > self.idle_timeout_s:
                del self._sessions[token]
                return None
            s.last_used = now
            return s

    def end(self, token: str) -> None:
        with self._lock:
            self._sessions.pop(token, None)

    def end_user(self, name: str) -> None:
        """Sign a user out everywhere (disabled, or their stations changed)."""
        with self._lock:
            for t in [t for t, s in self._sessions.items() if s.user.name == name]:
                del self._sessions[t]
