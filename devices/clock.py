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


class ScaledClock:
    """Exam time running `scale` times faster than real time, from the moment it is made.

    For rehearsals and tests: a 30-minute item's time limit can be reached in seconds while every
    part of the controller still runs for real; durations measured with it are exam seconds.
    """

    def __init__(self, scale: float, base: Clock | None = None) -> None:
        if scale <= 0:
            raise ValueError(f"clock scale must be > 0, got {scale}")
        self.scale = scale
        self._base = base or SystemClock()
        self._out_mono0 = self._base.mono_ns()
        self._out_utc0 = self._base.utc_ns()
        self._seg_start = self._out_mono0
        """Real monotonic time the current scale took effect."""
        self._seg_elapsed_ns = 0
        """Exam time elapsed before the current scale took effect."""
        self._history: list[tuple[int, int, float]] = [(0, self._seg_start, scale)]
        """(exam elapsed, real monotonic, scale) at each change of scale, to map exam time back to real time."""

    def _elapsed_ns(self) -> int:
        return self._seg_elapsed_ns + int((self._base.mono_ns() - self._seg_start) * self.scale)

    def set_scale(self, scale: float) -> None:
        """Run at `scale` from now on; exam time stays continuous."""
        if scale <= 0:
            raise ValueError(f"clock scale must be > 0, got {scale}")
        self._seg_elapsed_ns = self._elapsed_ns()
        self._seg_start = self._base.mono_ns()
        self.scale = scale
        self._history.append((self._seg_elapsed_ns, self._seg_start, scale))

    def mono_ns(self) -> int:
        return self._out_mono0 + self._elapsed_ns()

    def utc_ns(self) -> int:
        return self._out_utc0 + self._elapsed_ns()

    def real_utc_ns(self, exam_utc_ns: int) -> int:
        """The real wall-clock time at which this clock read `exam_utc_ns` (video is recorded in real time,
        so a moment of a rehearsal's exam time is found in the evidence at this time)."""
        elapsed = exam_utc_ns - self._out_utc0
        if elapsed < 0:  # before this clock was made: nothing relates it to real time, take it as it is
            return exam_utc_ns
        exam0, real0, scale = self._history[0]
        for entry in self._history[1:]:
            if entry[0] > elapsed:
                break
            exam0, real0, scale = entry
        return self._base.utc_ns() - self._base.mono_ns() + real0 + int((elapsed - exam0) / scale)

    def seconds(self) -> float:
        """Exam seconds since the clock was made (for a simulated device's own clock)."""
        return self._elapsed_ns() / 1e9


class ContinuousClock:
    """`base` moved forward so its monotonic time never goes below `floor_ns`.

    A restart of the controller (or a reboot, which restarts the system's monotonic clock) must
    not make an attempt's timeline run backwards: the service layer builds its clock with the
    latest time already stored as the floor.
    """

    def __init__(self, base: Clock, floor_ns: int) -> None:
        self.base = base
        self.offset_ns = max(0, floor_ns + 1 - base.mono_ns())

    def mono_ns(self) -> int:
        return self.base.mono_ns() + self.offset_ns

    def utc_ns(self) -> int:
        return self.base.utc_ns()

    def real_utc_ns(self, exam_utc_ns: int) -> int:
        """UTC is passed through unchanged, so the base clock says where a moment is in real time."""
        return real_utc_ns(self.base, exam_utc_ns)


def real_utc_ns(clock: Clock, utc_ns: int) -> int:
    """The real wall-clock time of a moment read on `clock` (itself, unless the clock runs scaled)."""
    convert = getattr(clock, "real_utc_ns", None)
    return int(convert(utc_ns)) if convert is not None else utc_ns
