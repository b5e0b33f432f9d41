"""What a detector sees (an ItemView over one item's part of the timeline) and what it returns.

Detectors are small pure functions `detect(params, view) -> tuple[Finding, ...]`, registered by
name so rubric files can reference them; never eval(). Parameters are frozen dataclasses that the
rubric loader validates (pydantic, at load time only) against each detector's declared type.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from scoring.condition import Condition, SignalUse
from scoring.timeline import FaultRecord, LifecycleRecord, Value

__all__ = ["REGISTRY", "Condition", "DetectorSpec", "Finding", "ItemView", "Series", "SignalUse", "detector"]


@dataclass(frozen=True, slots=True)
class Finding:
    """One occurrence a deduction or veto is about, with the evidence time range."""

    t_from_ns: int
    t_to_ns: int
    detail: str
    count: int = 1
    share: Fraction | None = None
    """Set by proportional detectors: deduct this exact share (0..1) of the deduction's points once,
    instead of its points per occurrence (a share of welding time outside a tolerance band). A
    Fraction of nanoseconds, so the points taken are exact to the hundredth (scoring.points)."""


@dataclass(frozen=True, slots=True)
class Series:
    """One signal's values in time order; `initial` is the value it had when the item started."""

    times: tuple[int, ...]
    values: tuple[Value, ...]
    initial: Value | None = None

    def value_at(self, t_ns: int) -> Value | None:
        i = bisect.bisect_right(self.times, t_ns) - 1
        return self.values[i] if i >= 0 else self.initial


@dataclass(frozen=True, slots=True)
class ItemView:
    """One item's slice of the timeline, as detectors need it."""

    item: str
    t_start_ns: int
    t_end_ns: int
    time_limit_s: int
    active_ns: int
    """Time the item's clock ran: start to end minus pauses (device faults, examiner pauses)."""
    series: Mapping[str, Series]
    lifecycle: tuple[LifecycleRecord, ...]
    faults: tuple[FaultRecord, ...]
    end_reason: str

    def signal(self, name: str) -> Series:
        return self.series.get(name, Series((), ()))

    def occurrences(self, cond: Condition) -> list[tuple[int, int]]:
        """(start, end) of every interval in which `cond` holds (end = item end if still holding)."""
        s = self.signal(cond.signal)
        out: list[tuple[int, int]] = []
        since: int | None = self.t_start_ns if cond.holds(s.initial) else None
        for t, v in zip(s.times, s.values, strict=True):
            ok = cond.holds(v)
            if ok and since is None:
                since = t
            elif not ok and since is not None:
                out.append((since, t))
                since = None
        if since is not None:
            out.append((since, self.t_end_ns))
        return out

    def transitions(self, cond: Condition) -> list[tuple[int, int]]:
        """Like `occurrences`, without one that was already holding when the item started: what
        the candidate did, not what the rig was left in (a latched trip, a 合格 from the previous
        candidate's self-check, meter leads left on the terminals, an empty slot). A state present at
        the item's start belongs to the station, not the candidate (rubric items declare their
        rig's rest state, and the examiner starts an item on a rig not at rest only on purpose)."""
        occ = self.occurrences(cond)
        if occ and occ[0][0] == self.t_start_ns and cond.holds(self.signal(cond.signal).initial):
            return occ[1:]
        return occ

    def first(self, cond: Condition) -> int | None:
        """When `cond` first became true during the item (None if it never did; a state already
        true at the start does not count, see `transitions`)."""
        occ = self.transitions(cond)
        return occ[0][0] if occ else None

    def events(self, signal: str) -> list[tuple[int, Value]]:
        """Every value an event signal reported during the item (compressions, breaths)."""
        s = self.signal(signal)
        return list(zip(s.times, s.values, strict=True))


Reads = Callable[[Any], tuple[SignalUse, ...]]


@dataclass(frozen=True, slots=True)
class DetectorSpec:
    """A registered detector: its function, the params type the loader validates against, and
    what it reads (the signals and the kind of value each must carry, given its params)."""

    name: str
    params_type: type[Any]
    detect: Callable[[Any, ItemView], tuple[Finding, ...]]
    reads: Reads
    doc: str = field(default="")


REGISTRY: dict[str, DetectorSpec] = {}


def detector(name: str, params_type: type[Any], reads: Reads) -> Callable[
        [Callable[[Any, ItemView], tuple[Finding, ...]]], Callable[[Any, ItemView], tuple[Finding, ...]]]:
    """Register `fn` under `name`; rubric rows reference detectors by that name."""

    def wrap(fn: Callable[[Any, ItemView], tuple[Finding, ...]]) -> Callable[[Any, ItemView], tuple[Finding, ...]]:
        if name in REGISTRY:
            raise ValueError(f"detector {name} registered twice")
        REGISTRY[name] = DetectorSpec(name, params_type, fn, reads, (fn.__doc__ or "").strip())
        return fn

    return wrap


def seconds(ns: int) -> float:
    return ns / 1e9
