"""How long the relay waits for a receipt before it sends a result again.

Doubling from `RESEND_FIRST_S` to `RESEND_CAP_S`, jittered, never giving up (DESIGN.md, uplink):
a result queued for a year is still sent. The waits grow only with sends made on the current
connection, which the relay keeps in a `SendCounts` on its event loop.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable

RESEND_FIRST_S = 10.0
"""No receipt this long after a send: send again (a receipt normally takes milliseconds)."""
RESEND_CAP_S = 300.0
"""The longest wait between two sends of one result while the link is up."""
JITTER = 0.2
"""Each wait is scaled by a random factor in [1 - JITTER, 1 + JITTER] so a site's backlog does not
resend in lockstep after an outage."""


def resend_delay_s(attempts: int, first_s: float = RESEND_FIRST_S, cap_s: float = RESEND_CAP_S,
                   rng: random.Random | None = None) -> float:
    """Seconds to wait for a receipt after send number `attempts` (1, 2, ...): doubling, capped, jittered."""
    base = min(cap_s, first_s * 2.0 ** max(0, min(attempts - 1, 30)))
    return float(base * (1 + JITTER * (2 * (rng or random).random() - 1)))


class SendCounts:
    """Sends of each result on the current connection, for its resend backoff. The backoff grows
    with these only: sends lost with a crashed broker (or before the province resubscribed) say
    nothing about the province, and counting them would leave a result waiting minutes after the
    link is back. Kept on the event loop; `take_due` in its worker thread gets `waits()`, a copy."""

    def __init__(self, first_s: float, cap_s: float) -> None:
        self._first_s, self._cap_s = first_s, cap_s
        self._counts: dict[str, int] = {}
        self._rng = random.Random()

    def waits(self) -> Callable[[str], float]:
        """Seconds to wait for the receipt of each send about to be made (a snapshot: thread-safe)."""
        counts, rng = dict(self._counts), random.Random(self._rng.random())
        return lambda rid: resend_delay_s(counts.get(rid, 0) + 1, self._first_s, self._cap_s, rng)

    def claimed(self, result_ids: Iterable[str]) -> None:
        """These results are being sent now."""
        for rid in result_ids:
            self._counts[rid] = self._counts.get(rid, 0) + 1

    def settled(self, result_id: str) -> None:
        self._counts.pop(result_id, None)

    def clear(self) -> None:
        """A new connection: earlier sends may have died with the broker."""
        self._counts.clear()
