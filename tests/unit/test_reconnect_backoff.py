"""Reconnect backoff of a Modbus link (devices.modbus.link.Backoff).

A link's backoff is capped at one poll interval of its fastest device (poller.py), so a
20 Hz welding simulator with its RS-485 adapter unplugged fails ~30 times a second, for hours.
The delay must stay a small finite number however many connects have failed.
"""

from __future__ import annotations

import random

import pytest

from devices.modbus.link import Backoff


@pytest.mark.parametrize("failures", [1, 2, 10, 1023, 1024, 1025, 10_000, 10**9])
def test_delay_stays_within_the_cap_after_any_number_of_failures(failures: int) -> None:
    backoff = Backoff(base_s=0.025, cap_s=0.05)
    rng = random.Random(7)
    delays = [backoff.delay_s(failures, rng) for _ in range(50)]
    assert all(0.0 < d <= backoff.cap_s for d in delays), (failures, min(delays), max(delays))


def test_delay_doubles_from_the_base_until_the_cap() -> None:
    backoff = Backoff(base_s=0.05, cap_s=2.0)
    top = [max(backoff.delay_s(n, random.Random(s)) for s in range(200)) for n in range(1, 8)]
    # jitter scales each delay into [0.5, 1.0] of its step: the largest seen is close to the step itself
    for got, step in zip(top, [0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 2.0], strict=True):
        assert step * 0.95 <= got <= step, (got, step)
    assert backoff.delay_s(0, random.Random(1)) == 0.0
