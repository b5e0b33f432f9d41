"""Detectors over discrete events: something happened, never happened, happened in the wrong
order, lasted too long or too short, or the item ran over its time."""

from __future__ import annotations

import math
from dataclasses import dataclass

from scoring.detectors.base import Condition, Finding, ItemView, detector, seconds


def _at(view: ItemView, t_ns: int) -> str:
    return f"+{seconds(t_ns - view.t_start_ns):.1f} s"


@dataclass(frozen=True, slots=True)
class WhenParams:
    when: Condition


@detector("reached", WhenParams)
def reached(p: WhenParams, view: ItemView) -> tuple[Finding, ...]:
    """One finding each time the condition becomes true during the item (a short-circuit trip, a
    wrong item taken). A condition already true when the item started is the previous candidate's
    (a latched trip nobody reset) and is not counted."""
    return tuple(Finding(a, b, f"{p.when.describe()} at {_at(view, a)}") for a, b in view.transitions(p.when))


@dataclass(frozen=True, slots=True)
class SignalParams:
    signal: str


@detector("no_increase", SignalParams)
def no_increase(p: SignalParams, view: ItemView) -> tuple[Finding, ...]:
    """One finding if a counter did not go up during the item (the energy meter never counted);
    the counter's value at the start is whatever the previous candidate left."""
    s = view.signal(p.signal)
    first = s.initial if s.initial is not None else (s.values[0] if s.values else None)
    last = s.values[-1] if s.values else s.initial
    if isinstance(first, int | float) and isinstance(last, int | float) and last > first:
        return ()
    return (Finding(view.t_start_ns, view.t_end_ns, f"{p.signal} stayed at {last} during the item"),)


@detector("never_reached", WhenParams)
def never_reached(p: WhenParams, view: ItemView) -> tuple[Finding, ...]:
    """One finding if the condition never held during the item (the motor never ran, fire not out)."""
    if view.occurrences(p.when):
        return ()
    return (Finding(view.t_start_ns, view.t_end_ns, f"never: {p.when.describe()}"),)


@dataclass(frozen=True, slots=True)
class BeforeParams:
    first: Condition
    then: Condition


@detector("before", BeforeParams)
def before(p: BeforeParams, view: ItemView) -> tuple[Finding, ...]:
    """One finding if `then` happened before `first` ever did (power on before the meter check)."""
    t_then = view.first(p.then)
    if t_then is None:
        return ()
    t_first = view.first(p.first)
    if t_first is not None and t_first <= t_then:
        return ()
    missing = "never" if t_first is None else f"only at {_at(view, t_first)}"
    return (Finding(t_then, t_then, f"{p.then.describe()} at {_at(view, t_then)}, but {p.first.describe()} {missing}"),)


@dataclass(frozen=True, slots=True)
class DurationParams:
    when: Condition
    min_s: float
    max_s: float
    missing_counts: bool = True


@detector("duration_outside", DurationParams)
def duration_outside(p: DurationParams, view: ItemView) -> tuple[Finding, ...]:
    """One finding per time the condition held for less than min_s or more than max_s (pulse check
    5-10 s); one more if it never held and `missing_counts`."""
    occ = view.occurrences(p.when)
    if not occ:
        return (Finding(view.t_start_ns, view.t_end_ns, f"never: {p.when.describe()}"),) if p.missing_counts else ()
    out = []
    for a, b in occ:
        d = seconds(b - a)
        if not p.min_s <= d <= p.max_s:
            out.append(Finding(a, b, f"{p.when.describe()} lasted {d:.1f} s, expected {p.min_s:g}-{p.max_s:g} s"))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class OvertimeParams:
    per_s: int
    """One occurrence per started `per_s` seconds over the item's time limit."""


@detector("overtime", OvertimeParams)
def overtime(p: OvertimeParams, view: ItemView) -> tuple[Finding, ...]:
    """Occurrences for time over the limit (the clock excludes pauses): -2 per started 5 min.
    An item the controller ended because its time was up is not over time, whatever the last
    tick's lateness."""
    if view.end_reason == "timeout":
        return ()
    over_s = seconds(view.active_ns) - view.time_limit_s
    if over_s <= 0:
        return ()
    n = math.ceil(over_s / p.per_s)
    return (Finding(view.t_end_ns, view.t_end_ns, f"{over_s:.0f} s over the {view.time_limit_s} s limit", count=n),)
