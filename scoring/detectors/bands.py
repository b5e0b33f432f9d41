"""Proportional detectors: the share of time a value spent outside its tolerance band.

This is how virtual-welding systems score (STANDARD.md: each parameter against an ideal and a
tolerance, weighted), and how an extinguisher's aim is judged over the whole discharge. Values
are held from one sample to the next (a device reports on change), and only the time the gate
holds counts (the arc is burning, the agent is flowing).
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction

from scoring.detectors.base import Condition, Finding, ItemView, SignalUse, detector, seconds


@dataclass(frozen=True, slots=True)
class BandParams:
    signal: str
    min: float
    max: float
    gate: Condition | None = None
    field: str | None = None


def _number(v: object, field: str | None) -> float | None:
    if field is not None:
        v = v.get(field) if isinstance(v, Mapping) else None
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    return float(v)


def band_time(p: BandParams, view: ItemView) -> tuple[int, int, list[tuple[int, int]]]:
    """(gated ns, ns outside the band, outside intervals) over the item; one linear pass."""
    s = view.signal(p.signal)
    windows = view.occurrences(p.gate) if p.gate else [(view.t_start_ns, view.t_end_ns)]
    gated = outside = 0
    intervals: list[tuple[int, int]] = []
    times, values = s.times, s.values
    i = bisect.bisect_right(times, windows[0][0]) if windows else 0
    for wa, wb in windows:
        while i < len(times) and times[i] <= wa:
            i += 1
        current = s.value_at(wa)
        a = wa
        while a < wb:
            b = min(times[i], wb) if i < len(times) else wb
            if b > a:
                gated += b - a
                v = _number(current, p.field)
                if v is None or not p.min <= v <= p.max:
                    outside += b - a
                    if intervals and intervals[-1][1] == a:
                        intervals[-1] = (intervals[-1][0], b)
                    else:
                        intervals.append((a, b))
            if i < len(times) and times[i] <= wb:
                current = values[i]
                i += 1
            a = b
    return gated, outside, intervals


def _reads_band(p: BandParams) -> tuple[SignalUse, ...]:
    value = SignalUse(p.signal, None, ((p.field, "number"),)) if p.field else SignalUse(p.signal, "number")
    return (value, p.gate.use()) if p.gate else (value,)


@detector("band_share", BandParams, _reads_band)
def band_share(p: BandParams, view: ItemView) -> tuple[Finding, ...]:
    """Deduct the deduction's points times the share of gated time outside [min, max]."""
    gated, outside, intervals = band_time(p, view)
    if gated == 0:
        what = f"while {p.gate.describe()}" if p.gate else "during the item"
        return (Finding(view.t_start_ns, view.t_end_ns, f"{p.signal} never measured {what}", share=Fraction(1)),)
    if outside == 0:
        return ()
    share = Fraction(outside, gated)
    return (Finding(intervals[0][0], intervals[-1][1],
                    f"{p.signal} outside {p.min:g}..{p.max:g} for {seconds(outside):.3f} s of "
                    f"{seconds(gated):.1f} s ({float(share):.2%})", share=share),)
