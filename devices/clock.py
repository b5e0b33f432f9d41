"""Clocks as an injected dependency, so pollers and readers can be tested without sleeping."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    """What the device layer needs to know about time."""

    def mono_ns(self) -> int:
        """Monotonic nanoseconds: for ordering and durations."""
        ...

    def utc_ns(self) -> int:
        """Wall-clock nanoseconds since the Unix epoch: for records a person reads."""
        ...


class SystemClock:
    """The real clocks of this machine."""

    def mono_ns(self) -> int:
        return time.monotonic_ns()

    def utc_ns(self) -> int:
        return time.time_ns()
