"""CPR on a manikin (K41/K42): the compression, breath and assessment rows of the 100-point sheet.

The sheet (STANDARD.md, "CPR as scored with a manikin") deducts per shallow compression, per
incomplete recoil, per failed breath, per set of 30 that took under 15 s or over 18 s, for an uneven
rhythm and for a pulse check outside 5-10 s. The compressions and breaths, their device-time
stamps and their grouping into sets and cycles come from `scoring.detectors.cpr_session.segment`.
Every detector here declares the record fields it reads (`COMPRESSION_USE`...), and the engine
refuses a timeline whose manikin records lack them or carry a non-finite number: the codec never
produces such a record, and skipping it would silently charge the gap it leaves to the candidate.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from scoring.detectors.base import Finding, ItemView, SignalUse, detector
from scoring.detectors.cpr_session import (
    COMPRESSION,
    EVENTS_USE,
    STATE,
    VENTILATION,
    Breath,
    Compression,
    elapsed_ms,
    number_field,
    segment,
)
from scoring.timeline import Scalar

__all__ = ["COMPRESSION", "STATE", "VENTILATION", "BreathParams", "breath_ok", "segment"]

def _check(params: object) -> None:
    """Each params type's __post_init__: pydantic runs it when the rubric loads, so a bad number fails
    the load with what to fix instead of scoring nonsense."""
    for low, high in (("min_mm", "max_mm"), ("min_s", "max_s"), ("min_per_min", "max_per_min"), ("min_ml", "max_ml")):
        a, b = getattr(params, low, None), getattr(params, high, None)
        if a is not None and b is not None and a > b:
            raise ValueError(f"{low} {a:g} is above {high} {b:g}; swap them")
    for name, least in (("gap_s", 0.1), ("per_set", 1), ("max_cv", 0), ("expected", 0), ("cycles", 0),
                        ("breaths_per_cycle", 0)):
        value = getattr(params, name, least)
        if value < least:
            raise ValueError(f"{name} must be at least {least:g}, got {value:g}")


def _per_compression(view: ItemView, problem: Callable[[Compression], str | None]) -> tuple[Finding, ...]:
    out = []
    for s in segment(view).sets:
        for i, c in enumerate(s.compressions, 1):
            why = problem(c)
            if why is not None:
                out.append(Finding(c.t_ns, c.t_ns, f"compression {i} of set {s.n}: {why}"))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class DepthParams:
    min_mm: float = 50.0
    max_mm: float | None = None
    """Guideline 60 mm; the sheets only deduct shallow compressions, so None (not checked)."""

    def __post_init__(self) -> None:
        _check(self)


@detector("cpr_depth", DepthParams, lambda p: EVENTS_USE)
def cpr_depth(p: DepthParams, view: ItemView) -> tuple[Finding, ...]:
    """One finding per compression shallower than min_mm (or deeper than max_mm, if set)."""

    def problem(c: Compression) -> str | None:
        if c.depth_mm < p.min_mm:
            return f"{c.depth_mm:.1f} mm < {p.min_mm:g} mm"
        if p.max_mm is not None and c.depth_mm > p.max_mm:
            return f"{c.depth_mm:.1f} mm > {p.max_mm:g} mm"
        return None

    return _per_compression(view, problem)


@dataclass(frozen=True, slots=True)
class NoParams:
    """The detector takes no parameters."""


@detector("cpr_recoil", NoParams, lambda p: EVENTS_USE)
def cpr_recoil(p: NoParams, view: ItemView) -> tuple[Finding, ...]:
    """One finding per compression without full chest recoil."""
    return _per_compression(view, lambda c: None if c.recoil_ok else "incomplete recoil")


@detector("cpr_hand_position", NoParams, lambda p: EVENTS_USE)
def cpr_hand_position(p: NoParams, view: ItemView) -> tuple[Finding, ...]:
    """One finding per compression with the hands off the lower half of the sternum."""
    return _per_compression(view, lambda c: None if c.hand_zone == "correct" else f"hands {c.hand_zone}")


@dataclass(frozen=True, slots=True)
class SetDurationParams:
    min_s: float = 15.0
    max_s: float = 18.0
    per_set: int = 30
    gap_s: float = 2.0

    def __post_init__(self) -> None:
        _check(self)


@detector("cpr_set_duration", SetDurationParams, lambda p: EVENTS_USE)
def cpr_set_duration(p: SetDurationParams, view: ItemView) -> tuple[Finding, ...]:
    """One finding per set whose first `per_set` compressions took under min_s or over max_s
    (CompressionSet.duration_s); shorter sets are left to cpr_cycles."""
    out = []
    for s in segment(view, p.gap_s).sets:
        d = s.duration_s(p.per_set)
        if len(s.compressions) < p.per_set or d is None or p.min_s <= d <= p.max_s:
            continue
        out.append(Finding(s.compressions[0].t_ns, s.compressions[p.per_set - 1].t_ns,
                           f"set {s.n}: {p.per_set} compressions took {d:.1f} s, expected {p.min_s:g}-{p.max_s:g} s"))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class RateParams:
    min_per_min: float = 100.0
    max_per_min: float = 120.0
    gap_s: float = 2.0

    def __post_init__(self) -> None:
        _check(self)


@detector("cpr_rate", RateParams, lambda p: EVENTS_USE)
def cpr_rate(p: RateParams, view: ItemView) -> tuple[Finding, ...]:
    """One finding per set whose mean compression rate is outside the band."""
    out = []
    for s in segment(view, p.gap_s).sets:
        rate = s.mean_rate_per_min()
        if rate is not None and not p.min_per_min <= rate <= p.max_per_min:
            band = f"{p.min_per_min:g}-{p.max_per_min:g}/min"
            out.append(Finding(s.compressions[0].t_ns, s.compressions[-1].t_ns,
                               f"set {s.n}: mean rate {rate:.0f}/min, expected {band}"))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class RhythmParams:
    max_cv: float = 0.15
    gap_s: float = 2.0

    def __post_init__(self) -> None:
        _check(self)


@detector("cpr_rhythm", RhythmParams, lambda p: EVENTS_USE)
def cpr_rhythm(p: RhythmParams, view: ItemView) -> tuple[Finding, ...]:
    """One finding per set whose intervals' coefficient of variation exceeds max_cv (uneven rhythm)."""
    out = []
    for s in segment(view, p.gap_s).sets:
        cv = s.cv()
        if cv is not None and cv > p.max_cv:
            out.append(Finding(s.compressions[0].t_ns, s.compressions[-1].t_ns,
                               f"set {s.n}: uneven rhythm, interval CV {cv:.2f} > {p.max_cv:g}"))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class BreathParams:
    min_ml: float = 500.0
    max_ml: float = 600.0
    min_duration_ms: float = 1000.0
    """A breath must last longer than this (guideline: over 1 s)."""
    expected: int = 10

    def __post_init__(self) -> None:
        _check(self)


def breath_ok(b: Breath, p: BreathParams) -> bool:
    return p.min_ml <= b.volume_ml <= p.max_ml and b.duration_ms > p.min_duration_ms


@detector("cpr_breaths", BreathParams, lambda p: EVENTS_USE)
def cpr_breaths(p: BreathParams, view: ItemView) -> tuple[Finding, ...]:
    """One finding per failed breath (volume outside the band, or too short) and one per breath
    missing below `expected` (a failed breath was given: it is not also missing)."""
    out = []
    breaths = segment(view).breaths
    for b in breaths:
        problems = []
        if not p.min_ml <= b.volume_ml <= p.max_ml:
            problems.append(f"{b.volume_ml:g} ml, expected {p.min_ml:g}-{p.max_ml:g} ml")
        if b.duration_ms <= p.min_duration_ms:
            problems.append(f"{b.duration_ms:g} ms, expected over {p.min_duration_ms:g} ms")
        if problems:
            out.append(Finding(b.t_ns, b.t_ns, f"breath {b.n}: {'; '.join(problems)}"))
    for k in range(len(breaths) + 1, p.expected + 1):
        out.append(Finding(view.t_start_ns, view.t_end_ns,
                           f"breath {k} of {p.expected} missing ({len(breaths)} given)"))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class CycleParams:
    cycles: int = 5
    per_set: int = 30
    breaths_per_cycle: int = 2
    gap_s: float = 2.0

    def __post_init__(self) -> None:
        _check(self)


@detector("cpr_cycles", CycleParams, lambda p: EVENTS_USE)
def cpr_cycles(p: CycleParams, view: ItemView) -> tuple[Finding, ...]:
    """One finding per complete 30:2 cycle missing below `cycles` (3 done of 5: two findings)."""
    done = segment(view, p.gap_s).cycles(p.per_set, p.breaths_per_cycle)
    return tuple(Finding(view.t_start_ns, view.t_end_ns,
                         f"{p.per_set}:{p.breaths_per_cycle} cycle {k} of {p.cycles} missing ({done} complete)")
                 for k in range(done + 1, p.cycles + 1))


def _states(view: ItemView) -> list[tuple[int, Mapping[str, Scalar]]]:
    """Every manikin.state the manikin reported during the item. The state it was in when the item
    started is the previous candidate's (a head left tilted, a hand left on the carotid), not this
    one's: the item's rest state asks for it cleared."""
    return [(t, v) for t, v in view.events(STATE) if isinstance(v, Mapping)]


@dataclass(frozen=True, slots=True)
class PulseCheckParams:
    min_s: float = 5.0
    max_s: float = 10.0

    def __post_init__(self) -> None:
        _check(self)


@detector("cpr_pulse_check", PulseCheckParams, lambda p: (
    SignalUse(STATE, None, (("pulse_check", "bool"), ("device_ms", "number"))),))
def cpr_pulse_check(p: PulseCheckParams, view: ItemView) -> tuple[Finding, ...]:
    """One finding per carotid pulse check (pulse_check true -> false, device time) shorter than min_s
    or longer than max_s; one if there was none. A check already on when the item started is not this
    candidate's; one still on at the end counts as done but is not timed."""
    checks, out = 0, []
    initial = view.signal(STATE).initial
    was_on = isinstance(initial, Mapping) and initial.get("pulse_check") is True
    started: tuple[int, float | None] | None = None
    for t, v in _states(view):
        on = v.get("pulse_check") is True
        device = number_field(v, "device_ms")
        if was_on:  # the hand left on the carotid from before the item: wait until it is lifted
            was_on = on
            continue
        if on and started is None:
            started = (t, device)
            checks += 1
        elif not on and started is not None:
            d_s = elapsed_ms(started[1], device, started[0], t) / 1000
            if not p.min_s <= d_s <= p.max_s:
                out.append(Finding(started[0], t, f"pulse check lasted {d_s:.1f} s, expected "
                                                  f"{p.min_s:g}-{p.max_s:g} s"))
            started = None
    if checks == 0:
        return (Finding(view.t_start_ns, view.t_end_ns, "no carotid pulse check"),)
    return tuple(out)


@dataclass(frozen=True, slots=True)
class StateParams:
    field: str
    """A boolean manikin.state field: consciousness_check, airway_open, pulse_check."""


@detector("cpr_state_missing", StateParams, lambda p: (SignalUse(STATE, None, ((p.field, "bool"),)),))
def cpr_state_missing(p: StateParams, view: ItemView) -> tuple[Finding, ...]:
    """One finding if the manikin never reported `field` true during the item (shoulders never
    tapped, airway never opened); a state already true when the item started does not count."""
    initial = view.signal(STATE).initial
    held = isinstance(initial, Mapping) and initial.get(p.field) is True  # still as the rig was left
    for _, v in _states(view):
        on = v.get(p.field) is True
        if on and not held:
            return ()
        held = held and on
    return (Finding(view.t_start_ns, view.t_end_ns, f"{STATE} {p.field} never true"),)
