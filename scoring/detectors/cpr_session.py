"""CPR on a manikin: its compressions and breaths, in order and grouped into sets and cycles.

Shared by the CPR detectors (scoring.detectors.cpr) and the QCPR-style report (scoring.reports.cpr),
so that a report and a deduction never disagree about which compressions formed a set.

A manikin reports each compression and each breath as one finished event stamped with its own
clock (`device_ms`, manikin time at release / at the end of the breath), so all timing here is
device time: serial and network delays do not shift it. Arrival time (t_mono_ns) is only kept as
evidence (the video offset).
- a SET is a run of compressions in which each compression is released less than `gap_s` device
  seconds after the previous one and no ventilation falls between them;
- a CYCLE is a set of at least `per_set` (30) compressions followed by at least
  `breaths_per_cycle` (2) ventilations before the next set starts (or the item ends).
The uint32 device clock wraps after ~49.7 days; a step backwards (the manikin restarted) falls
back to arrival time for that one step.
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Mapping
from dataclasses import dataclass

from scoring.detectors.base import ItemView, SignalUse
from scoring.timeline import Scalar

COMPRESSION = "manikin.compression"
VENTILATION = "manikin.ventilation"
STATE = "manikin.state"
_WRAP_MS = 2.0**32
COMPRESSION_USE = SignalUse(COMPRESSION, None, (("device_ms", "number"), ("depth_mm", "number"),
                                                ("recoil_ok", "bool"), ("hand_zone", "string")))
VENTILATION_USE = SignalUse(VENTILATION, None, (("device_ms", "number"), ("volume_ml", "number"),
                                                ("duration_ms", "number")))
EVENTS_USE = (COMPRESSION_USE, VENTILATION_USE)
"""What `segment` reads: every compression and breath detector depends on both."""


def number_field(v: Mapping[str, Scalar], key: str) -> float | None:
    """A number within the codec's widest field (the uint32 clock), else None: NaN, inf or 1e300 mm
    is a malformed sample, and keeping it out keeps every sum and mean finite."""
    x = v.get(key)
    if isinstance(x, bool) or not isinstance(x, int | float) or not -_WRAP_MS <= x <= _WRAP_MS:
        return None
    return float(x)


def elapsed_ms(device_a: float | None, device_b: float | None, t_a_ns: int, t_b_ns: int) -> float:
    """Device milliseconds from stamp a to stamp b, across the uint32 wrap; arrival time when a stamp
    is missing or the clock went backwards (the manikin restarted)."""
    if device_a is not None and device_b is not None:
        step = (device_b - device_a) % _WRAP_MS
        if step <= _WRAP_MS / 2:
            return step
    return max(0.0, (t_b_ns - t_a_ns) / 1e6)


@dataclass(frozen=True, slots=True)
class Compression:
    n: int  # 1-based over the item, as are sets and breaths
    t_ns: int
    clock_ms: float
    """Device time of the release, counted from the item's first manikin event."""
    depth_mm: float
    recoil_ok: bool
    hand_zone: str


@dataclass(frozen=True, slots=True)
class Breath:
    n: int
    t_ns: int
    clock_ms: float
    volume_ml: float
    duration_ms: float


@dataclass(frozen=True, slots=True)
class CompressionSet:
    n: int
    compressions: tuple[Compression, ...]
    breaths_after: tuple[Breath, ...]
    """Ventilations after this set and before the next one."""

    def intervals_ms(self) -> list[float]:
        return [b.clock_ms - a.clock_ms for a, b in itertools.pairwise(self.compressions)]

    def duration_s(self, limit: int) -> float | None:
        """How long the set's first `limit` compressions took: k compressions are k periods, so the
        release-to-release span of k compressions (k-1 intervals) is scaled by k/(k-1). A set of 30
        at a steady 110/min takes 16.4 s, and 15-18 s for 30 is exactly 100-120/min."""
        first = self.compressions[:limit]
        if len(first) < 2:
            return None
        return (first[-1].clock_ms - first[0].clock_ms) * len(first) / (len(first) - 1) / 1000

    def mean_rate_per_min(self) -> float | None:
        """Compressions per minute over the whole set (None for a single compression)."""
        c = self.compressions
        span_ms = c[-1].clock_ms - c[0].clock_ms
        return 60_000 * (len(c) - 1) / span_ms if len(c) > 1 and span_ms > 0 else None

    def cv(self) -> float | None:
        """Coefficient of variation (population sd / mean) of the intervals: 0 is a metronome."""
        iv = self.intervals_ms()
        mean = statistics.fmean(iv) if iv else 0.0
        return statistics.pstdev(iv) / mean if mean > 0 else None


@dataclass(frozen=True, slots=True)
class CprSession:
    compressions: tuple[Compression, ...]
    breaths: tuple[Breath, ...]
    sets: tuple[CompressionSet, ...]

    def cycles(self, per_set: int = 30, breaths_per_cycle: int = 2) -> int:
        """Complete cycles: sets of >= per_set compressions followed by >= breaths_per_cycle breaths."""
        return sum(len(s.compressions) >= per_set and len(s.breaths_after) >= breaths_per_cycle for s in self.sets)


def segment(view: ItemView, gap_s: float = 2.0) -> CprSession:
    """The item's compressions and breaths in order, grouped into sets (see the module docstring)."""
    raw: list[tuple[int, float, int, Mapping[str, Scalar]]] = []
    for kind, signal in enumerate((COMPRESSION, VENTILATION)):
        for t, value in view.events(signal):
            device = number_field(value, "device_ms") if isinstance(value, Mapping) else None
            if isinstance(value, Mapping) and device is not None:
                raw.append((t, device, kind, value))
    raw.sort(key=lambda r: (r[0], r[1], r[2]))
    compressions: list[Compression] = []
    breaths: list[Breath] = []
    groups: list[tuple[list[Compression], list[Breath]]] = []
    clock = 0.0
    prev: tuple[int, float] | None = None
    last_release: float | None = None  # None after a breath: the next compression starts a set
    for t, device, kind, v in raw:
        clock += elapsed_ms(prev[1], device, prev[0], t) if prev else 0.0
        prev = (t, device)
        if kind == 0:
            depth, recoil, zone = number_field(v, "depth_mm"), v.get("recoil_ok"), v.get("hand_zone")
            if depth is None or not isinstance(recoil, bool) or not isinstance(zone, str):
                continue
            if last_release is None or clock - last_release >= gap_s * 1000:
                groups.append(([], []))
            compressions.append(Compression(len(compressions) + 1, t, clock, depth, recoil, zone))
            groups[-1][0].append(compressions[-1])
            last_release = clock
        else:
            volume, duration = number_field(v, "volume_ml"), number_field(v, "duration_ms")
            if volume is None or duration is None:
                continue
            breaths.append(Breath(len(breaths) + 1, t, clock, volume, duration))
            if groups:
                groups[-1][1].append(breaths[-1])
            last_release = None
    sets = tuple(CompressionSet(i, tuple(cs), tuple(bs)) for i, (cs, bs) in enumerate(groups, 1))
    return CprSession(tuple(compressions), tuple(breaths), sets)
