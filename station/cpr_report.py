"""The CPR report of a stored attempt (Laerdal QCPR style), graded by the bands its rubric deducts by.

Why not the engine's own `ItemScore.report`: that one grades against the guideline written into
scoring/reports/cpr.py, and it is only there once the attempt is scored. Here every band (depth,
rate, breath volume and length, set time, rhythm) is read from the parameters of the item's CPR
detectors in the rubric, so a province that replaces its rubric sees its own numbers on the chart
and the percentages agree with the deductions; a band the rubric does not hold is shown as none
(the 2015 sheets deduct only shallow compressions, so there is no upper depth limit to draw).
The compressions and breaths and their grouping into sets come from the same segmentation the
detectors use (`scoring.detectors.cpr_session.segment`).

`cpr_report(services, attempt_id)` reads the stored timeline (a running item shows what was stored
so far); `cpr_item_report(item, view)` is the pure part. `stored_item_views` is shared with the
welding traces (station.weld_report): each item of one report kind with its slice of the timeline.
"""

from __future__ import annotations

import bisect
import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from scoring.checks import ScoringError, split, windows
from scoring.detectors.base import ItemView, Series
from scoring.detectors.cpr import (
    BreathParams,
    CycleParams,
    DepthParams,
    RateParams,
    RhythmParams,
    SetDurationParams,
)
from scoring.detectors.cpr_session import segment
from scoring.rubric import Item, Rubric
from scoring.timeline import SampleRecord, Timeline, Value
from station.db.errors import DatabaseError
from station.errors import ServiceError
from station.services import StationServices
from station.stored import stored_timeline


class ReportNotFound(LookupError):
    """The attempt does not exist, or has no item of the report's kind (the UI answers 404)."""


def _series(samples: list[SampleRecord], start: int, end: int) -> dict[str, Series]:
    """Each signal's values inside [start, end] in time order, with the value held at the start."""
    grouped: dict[str, list[tuple[int, Value]]] = {}
    for s in samples:
        grouped.setdefault(s.signal, []).append((s.t_mono_ns, s.value))
    out: dict[str, Series] = {}
    for name, pairs in grouped.items():
        pairs.sort(key=lambda p: (p[0], repr(p[1])))
        times = [t for t, _ in pairs]
        i, j = bisect.bisect_left(times, start), bisect.bisect_right(times, end)
        initial = pairs[i - 1][1] if i > 0 else None
        if i < j or initial is not None:
            out[name] = Series(tuple(times[i:j]), tuple(v for _, v in pairs[i:j]), initial)
    return out


def item_views(rubric: Rubric, timeline: Timeline, kind: Literal["cpr", "weld"]) -> list[tuple[Item, ItemView]]:
    """Every item the timeline started whose rubric report is `kind`, with its slice of the timeline
    (an item still running ends at the last record stored). Raises ScoringError for a damaged one."""
    parts = split(timeline)
    last = max((r.t_mono_ns for r in timeline), default=0)
    out = []
    for w in windows(rubric, parts.lifecycle):
        item = rubric.item(w.item)
        if item.report != kind:
            continue
        start = w.start.t_mono_ns
        end = w.end.t_mono_ns if w.end else max(last, start)
        lifecycle = tuple(r for r in parts.lifecycle if start <= r.t_mono_ns <= end)
        out.append((item, ItemView(item.code, start, end, item.time_limit_s, end - start,
                                   _series(parts.samples, start, end), lifecycle,
                                   tuple(f for f in parts.faults if start <= f.t_mono_ns <= end),
                                   w.end.detail if w.end else "running")))
    return out


def stored_item_views(services: StationServices, attempt_id: str,
                      kind: Literal["cpr", "weld"]) -> tuple[dict[str, Any], list[tuple[Item, ItemView]]]:
    """(the attempt's heading, its items of `kind` with their views). ReportNotFound when the attempt
    is unknown or drew no such item; ServiceError when its stored timeline cannot be read."""
    try:
        a = services.attempt(attempt_id)
    except ServiceError as err:
        raise ReportNotFound(str(err)) from None
    rubric = services.rubric(a.operation)
    drawn = [it.code for it in a.items if rubric.item(it.code).report == kind]
    if not drawn:
        raise ReportNotFound(f"attempt {attempt_id} has no item with a {kind} report (items: "
                             f"{', '.join(it.code for it in a.items) or 'none drawn yet'})")
    try:
        views = item_views(rubric, stored_timeline(services.db, attempt_id), kind)
    except (ScoringError, DatabaseError) as err:
        raise ServiceError(f"attempt {attempt_id}: the {kind} report cannot be built: {err}") from err
    head = {"attempt_id": attempt_id, "station": a.station, "candidate": a.candidate,
            "operation": a.operation, "state": a.state.value, "drawn": drawn}
    return head, views


@dataclass(frozen=True, slots=True)
class Band:
    """A range from the rubric (either end may be open) and the deduction it comes from."""

    low: float | None
    high: float | None
    deduction: str

    def holds(self, x: float | None) -> bool | None:
        if x is None:
            return None
        return (self.low is None or x >= self.low) and (self.high is None or x <= self.high)

    def shown(self) -> dict[str, Any]:
        return {"low": self.low, "high": self.high, "deduction": self.deduction}


@dataclass(frozen=True, slots=True)
class CprRules:
    """What the item's rubric rows ask of the compressions and breaths (None: the rubric has no row)."""

    depth_mm: Band | None = None
    rate_per_min: Band | None = None
    volume_ml: Band | None = None
    breath_ms: Band | None = None
    set_s: Band | None = None
    cv: Band | None = None
    per_set: int | None = None
    breaths_per_cycle: int | None = None
    cycles: int | None = None
    breaths_expected: int | None = None
    gap_s: float | None = None


def cpr_rules(item: Item) -> CprRules:
    """The bands and counts of the item's CPR detectors, read from their rubric parameters."""
    found: dict[str, Any] = {}
    for row in item.rows:
        for d in row.deductions:
            p = d.detector.params if d.detector else None
            if isinstance(p, DepthParams):
                found["depth_mm"] = Band(p.min_mm, p.max_mm, d.code)
            elif isinstance(p, RateParams):
                found.update(rate_per_min=Band(p.min_per_min, p.max_per_min, d.code), gap_s=p.gap_s)
            elif isinstance(p, BreathParams):
                found.update(volume_ml=Band(p.min_ml, p.max_ml, d.code), breaths_expected=p.expected,
                             breath_ms=Band(p.min_duration_ms, None, d.code))
            elif isinstance(p, SetDurationParams):
                found.update(set_s=Band(p.min_s, p.max_s, d.code), per_set=p.per_set)
                found.setdefault("gap_s", p.gap_s)
            elif isinstance(p, RhythmParams):
                found["cv"] = Band(None, p.max_cv, d.code)
            elif isinstance(p, CycleParams):
                found.update(cycles=p.cycles, breaths_per_cycle=p.breaths_per_cycle)
                found.setdefault("per_set", p.per_set)
                found.setdefault("gap_s", p.gap_s)
    return CprRules(**found)


def _r(x: float | None, digits: int = 1) -> float | None:
    return None if x is None else round(x, digits) + 0.0


def _pct(k: int, n: int) -> float | None:
    return round(100 * k / n, 1) if n else None


def cpr_item_report(item: Item, view: ItemView) -> dict[str, Any]:
    """Per compression, per breath and per set, with a QCPR-style summary; pure."""
    rules = cpr_rules(item)
    session = segment(view, rules.gap_s) if rules.gap_s else segment(view)
    first = min((*(c.t_ns for c in session.compressions), *(b.t_ns for b in session.breaths)), default=view.t_start_ns)
    origin_s = (first - view.t_start_ns) / 1e9  # the device clock starts at the first manikin event

    def t_s(clock_ms: float) -> float | None:
        return _r(origin_s + clock_ms / 1000, 2)

    compressions: list[dict[str, Any]] = []
    sets: list[dict[str, Any]] = []
    set_of_breath: dict[int, int] = {}
    hands_off_ms = 0.0
    for s, nxt in zip(session.sets, (*session.sets[1:], None)[:len(session.sets)], strict=True):
        prev = None
        for c in s.compressions:
            rate = 60_000 / (c.clock_ms - prev.clock_ms) if prev and c.clock_ms > prev.clock_ms else None
            prev = c
            compressions.append({
                "n": c.n, "set": s.n, "t_s": t_s(c.clock_ms), "depth_mm": _r(c.depth_mm), "rate_per_min": _r(rate),
                "recoil_ok": c.recoil_ok, "hand_zone": c.hand_zone, "hand_ok": c.hand_zone == "correct",
                "depth_ok": rules.depth_mm.holds(c.depth_mm) if rules.depth_mm else None,
                "rate_ok": rules.rate_per_min.holds(rate) if rules.rate_per_min and rate is not None else None,
            })
        pause_ms = nxt.compressions[0].clock_ms - s.compressions[-1].clock_ms if nxt else None
        hands_off_ms += pause_ms or 0.0
        duration = s.duration_s(rules.per_set or len(s.compressions))
        rate = s.mean_rate_per_min()
        cv = s.cv()
        sets.append({
            "n": s.n, "compressions": len(s.compressions), "breaths_after": len(s.breaths_after),
            "t_s": t_s(s.compressions[0].clock_ms), "duration_s": _r(duration),
            "duration_ok": rules.set_s.holds(duration) if rules.set_s and len(s.compressions) >= (rules.per_set or 0)
            else None,
            "mean_rate_per_min": _r(rate), "rate_ok": rules.rate_per_min.holds(rate) if rules.rate_per_min else None,
            "mean_depth_mm": _r(statistics.fmean(c.depth_mm for c in s.compressions)),
            "cv": _r(cv, 3), "cv_ok": rules.cv.holds(cv) if rules.cv else None,
            "pause_after_s": _r(pause_ms / 1000 if pause_ms is not None else None),
        })
        set_of_breath.update((b.n, s.n) for b in s.breaths_after)
    breaths = []
    for b in session.breaths:
        volume_ok = rules.volume_ml.holds(b.volume_ml) if rules.volume_ml else None
        long_enough = b.duration_ms > rules.breath_ms.low if rules.breath_ms and rules.breath_ms.low is not None \
            else None
        breaths.append({"n": b.n, "after_set": set_of_breath.get(b.n), "t_s": t_s(b.clock_ms),
                        "volume_ml": _r(b.volume_ml), "duration_ms": _r(b.duration_ms, 0), "volume_ok": volume_ok,
                        "duration_ok": long_enough,
                        "ok": None if volume_ok is None else bool(volume_ok and long_enough)})
    span_ms = session.compressions[-1].clock_ms - session.compressions[0].clock_ms if session.compressions else 0.0
    return {
        "item": item.code, "title_zh": item.title_zh, "end_reason": view.end_reason,
        "duration_s": _r((view.t_end_ns - view.t_start_ns) / 1e9),
        "bands": {name: (band.shown() if band else None) for name, band in (
            ("depth_mm", rules.depth_mm), ("rate_per_min", rules.rate_per_min), ("volume_ml", rules.volume_ml),
            ("breath_ms", rules.breath_ms), ("set_s", rules.set_s), ("cv", rules.cv))},
        "rules": {"per_set": rules.per_set, "breaths_per_cycle": rules.breaths_per_cycle, "cycles": rules.cycles,
                  "breaths_expected": rules.breaths_expected, "gap_s": rules.gap_s},
        "compressions": compressions, "breaths": breaths, "sets": sets,
        "summary": _summary(compressions, breaths, session.sets, rules, hands_off_ms, span_ms,
                            session.cycles(rules.per_set or 30, rules.breaths_per_cycle or 2)),
    }


def _share(rows: Iterable[dict[str, Any]], key: str) -> float | None:
    graded = [r[key] for r in rows if r[key] is not None]
    return _pct(sum(graded), len(graded))


def _summary(compressions: list[dict[str, Any]], breaths: list[dict[str, Any]], sets: Iterable[Any],
             rules: CprRules, hands_off_ms: float, span_ms: float, cycles: int) -> dict[str, Any]:
    intervals = [iv for s in sets for iv in s.intervals_ms()]
    depths = [c["depth_mm"] for c in compressions]
    return {
        "compressions": len(compressions),
        "depth_in_range_pct": _share(compressions, "depth_ok"),
        "rate_in_range_pct": _share(compressions, "rate_ok"),
        "recoil_pct": _share(compressions, "recoil_ok"),
        "hand_ok_pct": _share(compressions, "hand_ok"),
        "mean_depth_mm": _r(statistics.fmean(depths)) if depths else None,
        "mean_rate_per_min": _r(60_000 * len(intervals) / sum(intervals)) if sum(intervals) > 0 else None,
        "hands_off_s": _r(hands_off_ms / 1000),
        "compression_fraction_pct": _r(100 * (span_ms - hands_off_ms) / span_ms) if span_ms > 0 else None,
        "cycles": cycles, "cycles_required": rules.cycles,
        "breaths": len(breaths), "breaths_ok": sum(b["ok"] is True for b in breaths),
        "breaths_expected": rules.breaths_expected,
    }


def cpr_report(services: StationServices, attempt_id: str) -> dict[str, Any]:
    """The attempt's CPR report: its heading and one report per CPR item it started (none yet: an
    empty list). Raises ReportNotFound (no such attempt, or no CPR item drawn) or ServiceError."""
    head, views = stored_item_views(services, attempt_id, "cpr")
    return {**head, "items": [cpr_item_report(item, view) for item, view in views]}
