"""Login rate limiting: a password cannot be guessed from the hall LAN, and nobody learns who has an account.

Why both keys: counting per user name stops many machines (or one behind changing addresses) trying
one name; counting per client address stops one machine trying many names. A name is locked after
`max_failures` failures inside `window_s`, an address after `max_failures_per_address` (four times
as many): the people of a hall share a few PCs, and one examiner's typos must lock their own name,
not everyone at that PC. A key is locked until the oldest of the failures that lock it leaves the window;
meanwhile every login through it is refused before the password is even checked, with the time
to try again. The count is kept for any name typed, whether the account exists or not, so the
answers (and the lock) are the same for both: the lock says nothing about who exists.

A success clears the failures of that name and address. In memory, like the sessions: a restart
forgets them, which is fine for a limit measured in minutes.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

MAX_FAILURES = 5
"""Per user name."""
MAX_FAILURES_PER_ADDRESS = 20
"""Per client address: a shared hall PC."""
WINDOW_S = 300.0
MAX_KEYS = 10_000
"""Keys kept at most; the oldest are forgotten first, so a flood of made-up names cannot fill memory."""


@dataclass(frozen=True, slots=True)
class Locked:
    """Logins through this name or address are refused for `retry_after_s` more seconds."""

    retry_after_s: int

    @property
    def minutes(self) -> int:
        """The wait in whole minutes, as the login page says it."""
        return max(1, math.ceil(self.retry_after_s / 60))


class LoginLimit:
    def __init__(self, max_failures: int = MAX_FAILURES, window_s: float = WINDOW_S,
                 clock: Callable[[], float] = time.monotonic,
                 max_failures_per_address: int = MAX_FAILURES_PER_ADDRESS) -> None:
        self.max_failures = max_failures
        self.max_failures_per_address = max_failures_per_address
        self.window_s = window_s
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def keys(client: str, name: str) -> tuple[str, str]:
        """The address key and the name key (case- and space-insensitive: `Exam1 ` is `exam1`)."""
        return f"ip:{client}", f"user:{name.strip().casefold()}"

    def check(self, client: str, name: str) -> Locked | None:
        """None when a login may be tried now; else how long to wait."""
        now = self._clock()
        wait = 0.0
        with self._lock:
            for key, limit in zip(self.keys(client, name), (self.max_failures_per_address, self.max_failures),
                                  strict=True):
                times = self._recent(key, now)
                if len(times) >= limit:
                    wait = max(wait, times[-limit] + self.window_s - now)
        return Locked(max(1, math.ceil(wait))) if wait > 0 else None

    def failed(self, client: str, name: str) -> None:
        now = self._clock()
        with self._lock:
            for key in self.keys(client, name):
                self._recent(key, now).append(now)
            while len(self._failures) > MAX_KEYS:
                del self._failures[next(iter(self._failures))]

    def succeeded(self, client: str, name: str) -> None:
        with self._lock:
            for key in self.keys(client, name):
                self._failures.pop(key, None)

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures.setdefault(key, deque(maxlen=max(self.max_failures, self.max_failures_per_address)))
        while times and times[0] <= now - self.window_s:
            times.popleft()
        return times
