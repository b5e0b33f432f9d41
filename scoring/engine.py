"""`score(rubric, timeline) -> ScoreSheet`: the pure, deterministic heart of the product.

No clocks, no IO, no randomness: the same rubric and the same records, in any order, give the same
sheet, byte for byte, which is what lets `examstation replay` reproduce a stored result and an
appeal re-check it. The timeline is checked first (scoring.checks); points are exact hundredths
(scoring.points); findings in a device gap are left to the examiner (scoring.gaps); a fault found
by two rows is charged once (`same_fault_as`, scoring.charge).
"""

from __future__ import annotations

import bisect
import itertools
import operator
from collections.abc import Sequence
from dataclasses import dataclass, replace
from fractions import Fraction

from scoring.charge import charge_rows, veto_hits
from scoring.checks import Parts, ScoringError, Window, check_records, check_values, end_reason, split, windows
from scoring.detectors.base import ItemView, Series
from scoring.gaps import Gap, GapIndex, item_gaps
from scoring.points import exact, shown, shown_total, to_hundredths, weighted_total
from scoring.reports import REPORTS
from scoring.rig import item_reads, rest_deviations
from scoring.rubric import Item, Rubric
from scoring.sheet import Decision, ItemScore, Outcome, Pause, ScoreSheet
from scoring.timeline import EndReason, LifecycleRecord, SampleRecord, Timeline, Value

__all__ = ["ScoringError", "Verdict", "score", "verdict"]


class _Signals:
    """All samples grouped by signal once, each signal in time order (same-instant values by their
    content, so the input's order never matters), sliced per item by bisection."""

    def __init__(self, samples: list[SampleRecord]) -> None:
        first: dict[str, tuple[list[int], list[Value], str]] = {}
        for s in samples:
            times, values, _ = first.setdefault(s.signal, ([], [], s.device))
            times.append(s.t_mono_ns)
            values.append(s.value)
        self.device_of = {name: device for name, (_, _, device) in first.items() if device}
        """signal -> the device that reported it (for device gaps)."""
        grouped: dict[str, tuple[list[int], list[Value]]] = {}
        for name, (times, values, _) in first.items():
            if not all(map(operator.lt, times, itertools.islice(times, 1, None))):  # not strictly increasing
                pairs = sorted(zip(times, values, strict=True), key=lambda p: (p[0], repr(p[1])))
                times, values = [t for t, _ in pairs], [v for _, v in pairs]
            grouped[name] = (times, values)
        self._grouped = grouped
        self.last_t = max((times[-1] for times, _ in grouped.values()), default=0)

    def next_after(self, signal: str, t_ns: int) -> int | None:
        """When `signal` next reported after `t_ns` (None: it did not)."""
        times = self._grouped.get(signal, ((), ()))[0]
        i = bisect.bisect_right(times, t_ns)
        return times[i] if i < len(times) else None

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


def _active_ns(lifecycle: tuple[LifecycleRecord, ...], start: int, end: int) -> int:
    """The item's clock: start to end without its pauses."""
    paused_at: int | None = None
    paused = 0
    for r in lifecycle:
        if r.kind == "pause" and paused_at is None:
            paused_at = r.t_mono_ns
        elif r.kind == "resume" and paused_at is not None:
            paused += r.t_mono_ns - paused_at
            paused_at = None
    if paused_at is not None:
        paused += end - paused_at
    return end - start - paused


def _until_good_again(gaps: list[Gap], signals: _Signals, end: int) -> list[Gap]:
    """A value fault lasts until the signal next reports a good value: the device layer reports the
    bad value once and keeps the last good one, which is not what the rig showed meanwhile."""
    out = []
    for g in gaps:
        if g.signal:
            nxt = signals.next_after(g.signal, g.t_from_ns)
            g = replace(g, t_to_ns=min(end, nxt) if nxt is not None else end)
        out.append(g)
    return out


def _pauses(lifecycle: tuple[LifecycleRecord, ...], end: int, origin: int) -> tuple[Pause, ...]:
    """The item's pauses with the reason that began each (the sheet shows them beside active_s)."""
    out, since = [], None
    for r in lifecycle:
        if r.kind == "pause" and since is None:
            since = r
        elif r.kind == "resume" and since is not None:
            out.append(Pause(since.detail, round((since.t_mono_ns - origin) / 1e9, 1),
                             round((r.t_mono_ns - origin) / 1e9, 1)))
            since = None
    if since is not None:
        out.append(Pause(since.detail, round((since.t_mono_ns - origin) / 1e9, 1), round((end - origin) / 1e9, 1)))
    return tuple(out)


def _outcome(vetoed: bool, reason: EndReason, resit: bool) -> Outcome:
    if vetoed:
        return "veto"
    if resit or reason in (EndReason.INTERRUPTED, EndReason.ABANDONED):
        return "interrupted"
    return "timeout" if reason == EndReason.TIMEOUT else "scored"


def _score_item(rubric: Rubric, item: Item, w: Window, parts: Parts, signals: _Signals, origin: int) -> ItemScore:
    start = w.start.t_mono_ns
    end = w.end.t_mono_ns if w.end else max(parts.last_t(signals.last_t), start)
    reason = end_reason(w)
    lifecycle = tuple(r for r in parts.lifecycle if start <= r.t_mono_ns <= end)
    view = ItemView(item.code, start, end, item.time_limit_s, _active_ns(lifecycle, start, end),
                    signals.window(start, end), lifecycle,
                    tuple(f for f in parts.faults if start <= f.t_mono_ns <= end), reason.value)
    uses = item_reads(item)
    check_values(item, uses, view, origin)
    gaps = GapIndex(_until_good_again(item_gaps(parts.faults, start, end), signals, end), signals.device_of)
    marks: dict[str, int] = {}
    for m in parts.marks:
        if m.item == item.code:
            marks[m.code] = marks.get(m.code, 0) + m.count
    overrides = {o.row: o for o in parts.overrides if o.item == item.code}  # the latest of a row wins
    decisions = [d for d in parts.decisions if d.item == item.code]
    vetoes = veto_hits(item, view, marks, uses, gaps, origin)
    rows = charge_rows(item, view, marks, overrides, uses, gaps, origin)
    kinds = {d.kind for d in decisions}
    all_uses = tuple(u for us in uses.values() for u in us)
    pending = (reason not in (EndReason.INTERRUPTED, EndReason.ABANDONED) and not kinds & {"score_with_gap", "resit"}
               and gaps.needs_decision(all_uses, start, end))
    outcome = _outcome(any(v.by != "unverified" for v in vetoes), reason, "resit" in kinds)
    refused = any(r.kind == "signature_refused" and r.item == item.code for r in parts.lifecycle)
    auto_h = sum(r.auto_h for r in rows)
    score_h = 0 if outcome in ("veto", "interrupted") or refused else sum(r.points_h for r in rows)
    report_fn = REPORTS.get(item.report) if item.report else None
    return ItemScore(
        item.code, item.subject, item.title_zh, rubric.subject(item.subject).weight, shown(score_h), shown(auto_h),
        outcome, reason.value, refused, item.time_limit_s, round(view.active_ns / 1e9, 1), w.start.t_utc_ns,
        w.end.t_utc_ns if w.end else w.start.t_utc_ns + (end - start), tuple(r.score for r in rows), vetoes,
        report_fn(view, item) if report_fn else None, rest_deviations(item, lambda s: view.signal(s).initial),
        tuple(Decision(d.kind, d.reason, d.examiner, d.t_mono_ns, round((d.t_mono_ns - origin) / 1e9, 1))
              for d in decisions),
        tuple(g.shown(origin) for g in gaps.relevant(all_uses)), pending, _pauses(lifecycle, end, origin),
    )


def score(rubric: Rubric, timeline: Timeline) -> ScoreSheet:
    """Score every item the timeline started, and the exam total over the subjects taken."""
    parts = split(timeline)
    runs = windows(rubric, parts.lifecycle)
    check_records(rubric, parts, {w.item for w in runs})
    starts = [r for r in parts.lifecycle if r.kind == "attempt_start"]
    origin = starts[0].t_mono_ns if starts else min((r.t_mono_ns for r in timeline), default=0)
    signals = _Signals(parts.samples)
    items = tuple(_score_item(rubric, rubric.item(w.item), w, parts, signals, origin) for w in runs)
    v = verdict(rubric, items)
    return ScoreSheet(rubric.id, rubric.hash, rubric.operation, items, shown_total(v.total), rubric.pass_total,
                      v.passed, v.veto_failed, v.complete)


@dataclass(frozen=True, slots=True)
class Verdict:
    total: Fraction
    """The exact weighted total (the sheet shows it cut to two decimals)."""
    passed: bool
    veto_failed: bool
    complete: bool


def verdict(rubric: Rubric, items: Sequence[ItemScore]) -> Verdict:
    """The pass rule, exactly: passed is "total >= pass mark, no veto, the paper complete (one item of
    every subject), no item interrupted or waiting for a gap decision", with the total an exact
    Fraction of the item scores' hundredths and the rubric's decimal weights."""
    total = weighted_total((exact(i.weight), to_hundredths(i.score, i.code)) for i in items)
    veto_failed = any(i.outcome == "veto" for i in items)
    complete = sorted(i.subject for i in items) == sorted(s.code for s in rubric.subjects)
    settled = all(i.outcome != "interrupted" and not i.needs_gap_decision for i in items)
    passed = complete and settled and not veto_failed and total >= exact(rubric.pass_total)
    return Verdict(total, passed, veto_failed, complete)
