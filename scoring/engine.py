"""`score(rubric, timeline) -> ScoreSheet`: the pure, deterministic heart of the product.

No clocks, no IO, no randomness: the same rubric and timeline give the same sheet, byte for byte,
which is what lets `examstation replay` reproduce a stored result and an appeal re-check it.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

from scoring.detectors.base import REGISTRY, Finding, ItemView, Series
from scoring.reports import REPORTS
from scoring.rubric import Deduction, Item, Rubric
from scoring.sheet import DeductionLine, ItemScore, Outcome, RowScore, ScoreSheet, VetoHit
from scoring.timeline import (
    FaultRecord,
    LifecycleRecord,
    MarkRecord,
    OverrideRecord,
    SampleRecord,
    Timeline,
    Value,
)


class ScoringError(Exception):
    """The timeline cannot be scored against this rubric (an item the rubric does not have...)."""


@dataclass(frozen=True, slots=True)
class _Window:
    item: str
    start: LifecycleRecord
    end: LifecycleRecord | None


def _r(x: float) -> float:
    """Points are kept to two decimals; round once, the same way everywhere."""
    return round(x + 0.0, 2)


def _windows(records: list[LifecycleRecord]) -> list[_Window]:
    out: list[_Window] = []
    open_: dict[str, LifecycleRecord] = {}
    for r in records:
        if r.kind == "item_start":
            open_[r.item] = r
        elif r.kind == "item_end" and r.item in open_:
            out.append(_Window(r.item, open_.pop(r.item), r))
    out.extend(_Window(item, start, None) for item, start in open_.items())
    return sorted(out, key=lambda w: w.start.t_mono_ns)


class _Signals:
    """All samples grouped by signal once, sliced per item by bisection."""

    def __init__(self, samples: list[SampleRecord]) -> None:
        grouped: dict[str, tuple[list[int], list[Value]]] = {}
        for s in samples:
            times, values = grouped.setdefault(s.signal, ([], []))
            times.append(s.t_mono_ns)
            values.append(s.value)
        self._grouped = grouped

    def window(self, start: int, end: int) -> dict[str, Series]:
        out = {}
        for name, (times, values) in self._grouped.items():
            i = bisect.bisect_left(times, start)
            j = bisect.bisect_right(times, end)
            initial = values[i - 1] if i > 0 else None
            if i == j and initial is None:
                continue
            out[name] = Series(tuple(times[i:j]), tuple(values[i:j]), initial)
        return out


def _active_ns(lifecycle: list[LifecycleRecord], start: int, end: int) -> int:
    paused_at: int | None = None
    paused = 0
    for r in lifecycle:
        if not start <= r.t_mono_ns <= end:
            continue
        if r.kind == "pause" and paused_at is None:
            paused_at = r.t_mono_ns
        elif r.kind == "resume" and paused_at is not None:
            paused += r.t_mono_ns - paused_at
            paused_at = None
    if paused_at is not None:
        paused += end - paused_at
    return end - start - paused


def _lines(row_code: str, d: Deduction, findings: tuple[Finding, ...], marks: int, origin_ns: int,
           view: ItemView) -> list[DeductionLine]:
    lines = []
    budget = d.max_count
    for f in findings:
        if f.fraction is not None:
            pts, count = _r(d.points * min(1.0, max(0.0, f.fraction))), 1
        else:
            count = f.count if budget is None else min(f.count, budget)
            if count <= 0:
                continue
            if budget is not None:
                budget -= count
            pts = _r(d.points * count)
        if pts <= 0:
            continue
        lines.append(DeductionLine(row_code, d.code, d.reason_zh, pts, count, "auto", f.detail, f.t_from_ns,
                                   f.t_to_ns, round((f.t_from_ns - origin_ns) / 1e9, 1)))
    if marks > 0:
        count = marks if budget is None else min(marks, budget)
        if count > 0:
            lines.append(DeductionLine(row_code, d.code, d.reason_zh, _r(d.points * count), count, "manual",
                                       "examiner mark", view.t_end_ns, view.t_end_ns,
                                       round((view.t_end_ns - origin_ns) / 1e9, 1)))
    return lines


@dataclass(frozen=True, slots=True)
class _Parts:
    """The timeline split by record type once (a 60-minute timeline holds millions of samples)."""

    lifecycle: list[LifecycleRecord]
    faults: list[FaultRecord]
    marks: list[MarkRecord]
    overrides: list[OverrideRecord]
    last_t: int


def _split(records: Timeline) -> tuple[_Parts, list[SampleRecord]]:
    lifecycle: list[LifecycleRecord] = []
    faults: list[FaultRecord] = []
    marks: list[MarkRecord] = []
    overrides: list[OverrideRecord] = []
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
    return _Parts(lifecycle, faults, marks, overrides, records[-1].t_mono_ns if records else 0), samples


def _score_item(rubric: Rubric, item: Item, w: _Window, parts: _Parts, signals: _Signals,
                origin_ns: int) -> ItemScore:
    start = w.start.t_mono_ns
    lifecycle = parts.lifecycle
    end = w.end.t_mono_ns if w.end else max(parts.last_t, start)
    end_reason = w.end.detail if w.end else "interrupted"
    view = ItemView(
        item.code, start, end, item.time_limit_s, _active_ns(lifecycle, start, end), signals.window(start, end),
        tuple(r for r in lifecycle if start <= r.t_mono_ns <= end),
        tuple(r for r in parts.faults if start <= r.t_mono_ns <= end), end_reason,
    )
    marks: dict[str, int] = {}
    overrides: dict[str, OverrideRecord] = {}
    for m in parts.marks:
        if m.item == item.code:
            marks[m.code] = marks.get(m.code, 0) + m.count
    for o in parts.overrides:
        if o.item == item.code:
            overrides[o.row] = o  # the latest override of a row wins; earlier ones stay in the timeline
    vetoes = []
    for v in item.vetoes:
        if v.detector is not None:
            for f in REGISTRY[v.detector.name].detect(v.detector.params, view):
                vetoes.append(VetoHit(v.code, v.reason_zh, "auto", f.detail, f.t_from_ns,
                                      round((f.t_from_ns - origin_ns) / 1e9, 1)))
                break
        if marks.get(v.code, 0) > 0:
            vetoes.append(VetoHit(v.code, v.reason_zh, "manual", "examiner mark", end,
                                  round((end - origin_ns) / 1e9, 1)))
    rows = []
    for row in item.rows:
        lines: list[DeductionLine] = []
        for d in row.deductions:
            findings = REGISTRY[d.detector.name].detect(d.detector.params, view) if d.detector else ()
            lines.extend(_lines(row.code, d, findings, marks.get(d.code, 0), origin_ns, view))
        auto = _r(max(0.0, row.points - sum(x.points for x in lines)))
        ov = overrides.get(row.code)
        points = auto if ov is None else _r(min(row.points, max(0.0, ov.points)))
        rows.append(RowScore(row.code, row.title_zh, row.points, auto, points, tuple(lines),
                             ov.reason if ov else "", ov.examiner if ov else ""))
    refused = any(r.kind == "signature_refused" and r.item == item.code for r in lifecycle)
    outcome: Outcome
    if vetoes:
        outcome = "veto"
    elif end_reason == "timeout":
        outcome = "timeout"
    elif end_reason in ("interrupted", "abandoned"):
        outcome = "interrupted"
    else:
        outcome = "scored"
    auto_score = _r(sum(r.auto_points for r in rows))
    score = 0.0 if outcome in ("veto", "interrupted") or refused else _r(sum(r.points for r in rows))
    report_fn = REPORTS.get(item.report) if item.report else None
    return ItemScore(
        item.code, item.subject, item.title_zh, rubric.subject(item.subject).weight, score, auto_score, outcome,
        end_reason, refused, item.time_limit_s, round(view.active_ns / 1e9, 1), w.start.t_utc_ns,
        w.end.t_utc_ns if w.end else w.start.t_utc_ns + (end - start), tuple(rows), tuple(vetoes),
        report_fn(view, item) if report_fn else None,
    )


def score(rubric: Rubric, timeline: Timeline) -> ScoreSheet:
    """Score every item the timeline started, and the exam total over the subjects taken."""
    parts, samples = _split(timeline)
    starts = [r for r in parts.lifecycle if r.kind == "attempt_start"]
    origin = starts[0].t_mono_ns if starts else (timeline[0].t_mono_ns if timeline else 0)
    signals = _Signals(samples)
    items = []
    for w in _windows(parts.lifecycle):
        try:
            item = rubric.item(w.item)
        except KeyError as err:
            raise ScoringError(f"the timeline starts item {w.item}, which rubric {rubric.id} does not have") from err
        items.append(_score_item(rubric, item, w, parts, signals, origin))
    weights = sum(i.weight for i in items)
    total = _r(sum(i.weight * i.score for i in items) / weights) if weights else 0.0
    veto_failed = any(i.outcome == "veto" for i in items)
    complete = {i.subject for i in items} == {s.code for s in rubric.subjects}
    settled = all(i.outcome != "interrupted" for i in items)
    passed = bool(items) and total >= rubric.pass_total and not veto_failed and settled
    return ScoreSheet(rubric.id, rubric.hash, rubric.operation, tuple(items), total, rubric.pass_total, passed,
                      veto_failed, complete)


