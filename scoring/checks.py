"""The engine's boundary: a timeline is put in one order and checked before anything is scored.

A score must not depend on the order records were handed over in, and a record that could not
have happened (an item ending before it started, an end reason nobody defined, a mark on a code
the rubric lacks, a string where the rubric compares with a bool, a NaN depth) must stop scoring
with an error that names it, not quietly change a certificate. The same checks serve the station
when an examiner makes a mark or an override (`check_mark`, `check_override`), so what is refused
live is refused again when a stored timeline is loaded.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import TypeVar, cast

from scoring.condition import SignalUse
from scoring.detectors.base import ItemView
from scoring.points import to_hundredths
from scoring.rubric import Item, Rubric
from scoring.timeline import (
    DECISION_KINDS,
    END_REASONS,
    DecisionRecord,
    EndReason,
    FaultRecord,
    LifecycleRecord,
    MarkRecord,
    OverrideRecord,
    Record,
    SampleRecord,
    Timeline,
)


class ScoringError(Exception):
    """The timeline cannot be scored against this rubric; the message names the record and why."""


@dataclass(frozen=True, slots=True)
class Parts:
    """The timeline split by record type, each part in one canonical order (time, then content)."""

    lifecycle: list[LifecycleRecord]
    faults: list[FaultRecord]
    marks: list[MarkRecord]
    overrides: list[OverrideRecord]
    decisions: list[DecisionRecord]
    samples: list[SampleRecord]

    def last_t(self, last_sample_t: int) -> int:
        """The latest time in the timeline (the end of an item that never ended)."""
        ends = [last_sample_t]
        for part in (self.lifecycle, self.faults, self.marks, self.overrides, self.decisions):
            if part:
                ends.append(part[-1].t_mono_ns)
        return max(ends)


_R = TypeVar("_R", LifecycleRecord, FaultRecord, MarkRecord, OverrideRecord, DecisionRecord)


def _canonical(records: list[_R]) -> list[_R]:
    """Time order, and records at the same instant by their content: the input's order never counts."""
    return sorted(records, key=lambda r: (r.t_mono_ns, repr(r)))


def split(records: Timeline | Iterable[Record]) -> Parts:
    lifecycle: list[LifecycleRecord] = []
    faults: list[FaultRecord] = []
    marks: list[MarkRecord] = []
    overrides: list[OverrideRecord] = []
    decisions: list[DecisionRecord] = []
    samples: list[SampleRecord] = []
    for r in records:
        if type(r) is SampleRecord:
            samples.append(r)
        elif isinstance(r, LifecycleRecord):
            lifecycle.append(r)
        elif isinstance(r, FaultRecord):
            faults.append(r)
        elif isinstance(r, MarkRecord):
            marks.append(r)
        elif isinstance(r, OverrideRecord):
            overrides.append(r)
        elif isinstance(r, DecisionRecord):
            decisions.append(r)
    return Parts(_canonical(lifecycle), _canonical(faults), _canonical(marks), _canonical(overrides),
                 _canonical(decisions), samples)


@dataclass(frozen=True, slots=True)
class Window:
    """One item's run: its start record and its end record (None: no end was recorded, a crash)."""

    item: str
    start: LifecycleRecord
    end: LifecycleRecord | None


def windows(rubric: Rubric, lifecycle: list[LifecycleRecord]) -> list[Window]:
    """Each item's start and end, paired by item code, refusing what cannot happen."""
    starts: dict[str, LifecycleRecord] = {}
    ends: dict[str, LifecycleRecord] = {}
    clock: dict[tuple[str, int], str] = {}
    for r in lifecycle:
        if r.kind in ("pause", "resume"):
            other = clock.setdefault((r.item, r.t_mono_ns), r.kind)
            if other != r.kind:
                raise ScoringError(f"item {r.item}: a pause and a resume at the same instant ({r.t_mono_ns} ns); "
                                   "their order cannot be told, so neither can the item's clock (a station stamps "
                                   "every step at its own instant)")
        if r.kind not in ("item_start", "item_end"):
            continue
        seen = starts if r.kind == "item_start" else ends
        if r.item in seen:
            raise ScoringError(f"the timeline has two {r.kind} records for item {r.item} (at {seen[r.item].t_mono_ns} "
                               f"and {r.t_mono_ns} ns); an item is taken once per attempt")
        seen[r.item] = r
        if r.kind == "item_end" and r.detail not in END_REASONS.split(", "):
            raise ScoringError(f"item {r.item}: item_end at {r.t_mono_ns} ns has end reason {r.detail!r}; "
                               f"an item ends for one of: {END_REASONS}")
    out = []
    for code, end in ends.items():
        start = starts.get(code)
        if start is None:
            raise ScoringError(f"item {code}: item_end at {end.t_mono_ns} ns, but the item never started")
        if end.t_mono_ns < start.t_mono_ns:
            raise ScoringError(f"item {code}: item_end at {end.t_mono_ns} ns is before its item_start at "
                               f"{start.t_mono_ns} ns; the timeline is damaged: run `examstation audit verify`")
    for code, start in starts.items():
        try:
            rubric.item(code)
        except KeyError:
            raise ScoringError(f"the timeline starts item {code}, which rubric {rubric.id} does not have") from None
        out.append(Window(code, start, ends.get(code)))
    out.sort(key=lambda w: (w.start.t_mono_ns, w.item))
    for a, b in itertools.pairwise(out):
        if a.end is None or a.end.t_mono_ns > b.start.t_mono_ns:
            raise ScoringError(f"items {a.item} and {b.item} overlap (item {b.item} started at {b.start.t_mono_ns} ns "
                               f"before {a.item} ended); a station runs one item at a time")
    return out


def check_mark(rubric: Rubric, taken: Collection[str], item_code: str, code: str, count: int) -> None:
    """A mark names a deduction or veto of an item the attempt took, at least once."""
    if item_code not in taken:
        raise ScoringError(f"a mark on item {item_code}, which was not taken in this attempt "
                           f"(its items: {', '.join(sorted(taken)) or 'none'})")
    item = rubric.item(item_code)
    if code not in item.markable():
        raise ScoringError(f"item {item_code} has no deduction or veto {code}; its codes: {', '.join(item.markable())}")
    if count < 1:
        raise ScoringError(f"a mark's count must be at least 1, got {count} ({item_code} {code})")


def check_override(rubric: Rubric, taken: Collection[str], item_code: str, row_code: str, points: float) -> None:
    """An override names a row of an item the attempt took and sets whole hundredths within it."""
    if item_code not in taken:
        raise ScoringError(f"an override on item {item_code}, which was not taken in this attempt "
                           f"(its items: {', '.join(sorted(taken)) or 'none'})")
    item = rubric.item(item_code)
    row = item.row(row_code)
    if row is None:
        raise ScoringError(f"item {item_code} has no row {row_code}; its rows: {', '.join(r.code for r in item.rows)}")
    try:
        hundredths = to_hundredths(points, f"override of {row_code}")
    except ValueError as err:
        raise ScoringError(str(err)) from None
    if not 0 <= hundredths <= to_hundredths(row.points, row.code):
        raise ScoringError(f"row {row_code} holds 0-{row.points:g} points; an override of {points:g} is outside it")


def check_decision(taken: Collection[str], d: DecisionRecord) -> None:
    if d.item not in taken:
        raise ScoringError(f"a {d.kind} decision on item {d.item}, which was not taken in this attempt")
    if d.kind not in DECISION_KINDS:
        raise ScoringError(f"item {d.item}: unknown decision {d.kind!r}; one of: {', '.join(DECISION_KINDS)}")
    if not d.reason.strip():
        raise ScoringError(f"item {d.item}: the {d.kind} decision by {d.examiner} gives no reason")


def check_records(rubric: Rubric, parts: Parts, taken: Collection[str]) -> None:
    for m in parts.marks:
        check_mark(rubric, taken, m.item, m.code, m.count)
    for o in parts.overrides:
        check_override(rubric, taken, o.item, o.row, o.points)
    for d in parts.decisions:
        check_decision(taken, d)


def check_values(item: Item, uses: dict[str, tuple[SignalUse, ...]], view: ItemView, origin_ns: int) -> None:
    """Every value a row of the item reads is of the kind the row compares it with (and finite)."""
    checked: set[SignalUse] = set()
    for code, wanted in uses.items():
        for use in wanted:
            if use in checked:
                continue
            checked.add(use)
            series = view.series.get(use.signal)
            if series is None or _plainly_fine(use, series.values, series.initial):
                continue
            for t, v in ((view.t_start_ns, series.initial), *zip(series.times, series.values, strict=True)):
                if v is None:
                    continue
                why = use.problem(v)
                if why is not None:
                    raise ScoringError(
                        f"item {item.code}: sample {use.signal} = {v!r} at +{(t - origin_ns) / 1e9:.1f} s: {why}; "
                        f"{code} reads it: a device cannot report this (its decoder records a device fault "
                        "instead), so the timeline is damaged or was not written by a station: run "
                        "`examstation audit verify`")


_TYPES: dict[str, frozenset[type]] = {"bool": frozenset({bool}), "number": frozenset({int, float}),
                                      "string": frozenset({str})}


def _plainly_fine(use: SignalUse, values: tuple[object, ...], initial: object) -> bool:
    """The fast path for plain values (a 50 Hz weld trace has hundreds of thousands): their types
    in C, and finiteness only when there are floats. False means: look at each value."""
    if use.kind is None:
        return False
    types = set(map(type, values))
    if initial is not None:
        types.add(type(initial))
    if not types <= _TYPES[use.kind]:
        return False
    numbers = cast("tuple[float, ...]", values)
    return float not in types or (all(map(math.isfinite, numbers)) and (
        not isinstance(initial, float) or math.isfinite(initial)))


def end_reason(window: Window) -> EndReason:
    """The recorded end reason; an item with no recorded end (a crash) was interrupted."""
    return EndReason(window.end.detail) if window.end else EndReason.INTERRUPTED
