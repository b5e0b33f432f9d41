"""Detectors over discrete events: something happened, never happened, happened in the wrong
order, lasted too long or too short, or the item ran over its time."""

from __future__ import annotations

import math
from dataclasses import dataclass

from scoring.detectors.base import Condition, Finding, ItemView, SignalUse, detector, seconds


def _at(view: ItemView, t_ns: int) -> str:
    return f"+{seconds(t_ns - view.t_start_ns):.1f} s"


@dataclass(frozen=True, slots=True)
class WhenParams:
    when: Condition


def _reads_when(p: WhenParams) -> tuple[SignalUse, ...]:
    return (p.when.use(),)


@detector("reached", WhenParams, _reads_when)
def reached(p: WhenParams, view: ItemView) -> tuple[Finding, ...]:
    """One finding each time the condition becomes true during the item (a short-circuit trip, a
    wrong item taken). A condition already true when the item started is the previous candidate's
    (a latched trip nobody reset) and is not counted."""
    return tuple(Finding(a, b, f"{p.when.describe()} at {_at(view, a)}") for a, b in view.transitions(p.when))


@dataclass(frozen=True, slots=True)
class SignalParams:
    signal: str


@detector("no_increase", SignalParams, lambda p: (SignalUse(p.signal, "number"),))
def no_increase(p: SignalParams, view: ItemView) -> tuple[Finding, ...]:
    """One finding if a counter did not go up during the item (the energy meter never counted);
    the counter's value at the start is whatever the previous candidate left."""
    s = view.signal(p.signal)
    first = s.initial if s.initial is not None else (s.values[0] if s.values else None)
    last = s.values[-1] if s.values else s.initial
    if isinstance(first, int | float) and isinstance(last, int | float) and last > first:
        return ()
    return (Finding(view.t_start_ns, view.t_end_ns, f"{p.signal} stayed at {last} during the item"),)


@detector("never_reached", WhenParams, _reads_when)
def never_reached(p: WhenParams, view: ItemView) -> tuple[Finding, ...]:
    """One finding if the condition never became true during the item (the motor never ran, the
    fire never went out); a state already true at the start is the rig's, not the candidate's."""
    if view.transitions(p.when):
        return ()
    return (Finding(view.t_start_ns, view.t_end_ns, f"never: {p.when.describe()}"),)


@dataclass(frozen=True, slots=True)
class BeforeParams:
    first: Condition
    then: Condition


@detector("before", BeforeParams, lambda p: (p.first.use(), p.then.use()))
def before(p: BeforeParams, view: ItemView) -> tuple[Finding, ...]:
    """One finding if `then` happened before `first` ever did (power on before the meter check).
    Both count only when they become true during the item: meter leads left on the terminals, or a
    合格 left on the bench by the previous candidate, are not this candidate's check."""
    began = view.transitions(p.then)
    if not began:
        return ()
    t_then, t_until = began[0]
    t_first = view.first(p.first)
    if t_first is not None and t_first <= t_then:
        return ()
    missing = "never" if t_first is None else f"only at {_at(view, t_first)}"
    # the evidence spans the time `then` held (a failed self-check's verdict stood until the next
    # one): another row's finding about the same verdict overlaps it (same_fault_as)
    detail = f"{p.then.describe()} at {_at(view, t_then)}, but {p.first.describe()} {missing}"
    return (Finding(t_then, t_until, detail),)


@dataclass(frozen=True, slots=True)
class DurationParams:
    when: Condition
    min_s: float
    max_s: float
    missing_counts: bool = True


@detector("duration_outside", DurationParams, lambda p: (p.when.use(),))
def duration_outside(p: DurationParams, view: ItemView) -> tuple[Finding, ...]:
    """One finding per time the condition held for less than min_s or more than max_s (pulse check
    5-10 s); one more if it never held and `missing_counts`. Only times it began during the item."""
    occ = view.transitions(p.when)
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


@detector("overtime", OvertimeParams, lambda p: ())
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
