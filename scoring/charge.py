"""Charging an item's rows: what each finding and each examiner mark costs, in whole hundredths.

Three rules decide whether a finding is charged (docs/rubrics.md, "How a sheet is scored"):
- a finding whose evidence falls in a gap of a device the row reads is not charged: it is listed
  as `unverified` with what it would cost, and the examiner decides (a mark charges it);
- a finding whose evidence holds at the moment a finding of a deduction named in `same_fault_as`
  began is the same fault: not charged again if that one was charged, and left unverified with it
  if that one was (those deductions are judged first);
- `max_count` caps the occurrences of a deduction, automatic and manual together.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from scoring.condition import SignalUse
from scoring.detectors.base import REGISTRY, Finding, ItemView
from scoring.gaps import GapIndex, first_overlap
from scoring.points import share_of, shown, to_hundredths
from scoring.rubric import Deduction, Item
from scoring.sheet import DeductionLine, RowScore, VetoHit
from scoring.timeline import OverrideRecord


@dataclass(frozen=True, slots=True)
class ChargedRow:
    score: RowScore
    points_h: int
    auto_h: int


def _offset(t_ns: int, origin_ns: int) -> float:
    return round((t_ns - origin_ns) / 1e9, 1)


def _gap_note(gap_device: str, gap_signal: str, a_s: float, b_s: float, raw: str) -> str:
    if gap_signal:
        return (f"unverified: {gap_device} sent {gap_signal} = {raw}, which it cannot report, at +{a_s:.1f} s "
                f"(no good value until +{b_s:.1f} s)")
    return f"unverified: {gap_device} offline +{a_s:.1f}-+{b_s:.1f} s"


def _charge_order(item: Item) -> list[Deduction]:
    """Deductions with their `same_fault_as` ones first (the loader refuses circles)."""
    by_code = {d.code: d for r in item.rows for d in r.deductions}
    done: dict[str, Deduction] = {}

    def visit(d: Deduction) -> None:
        for other in d.same_fault_as:
            if other not in done:
                visit(by_code[other])
        done.setdefault(d.code, d)

    for d in by_code.values():
        visit(d)
    return list(done.values())


@dataclass(slots=True)
class _Spans:
    """Where a deduction's findings began: charged ones, and ones left unverified in a gap."""

    charged: list[int] = field(default_factory=list)
    unverified: list[int] = field(default_factory=list)


def _same_fault(f: Finding, starts: list[int]) -> bool:
    """`f` is a fault another row already judged when its evidence holds at the moment that row's
    finding began (a set too fast and its rate; a failed self-check and the fault code it reported).
    A later, different fault (the next self-check failing for another reason) is not."""
    return any(f.t_from_ns <= t <= f.t_to_ns for t in starts)


def _auto_lines(row: str, d: Deduction, findings: tuple[Finding, ...], uses: tuple[SignalUse, ...],
                gaps: GapIndex, judged: Mapping[str, _Spans], origin: int) -> tuple[list[DeductionLine], _Spans, int]:
    """(lines, where its findings began, occurrences used of max_count). Verified findings are
    charged first, so an unverified one is offered to the examiner only within what is left of
    max_count."""
    relevant = gaps.relevant(uses)
    charged_before = [t for other in d.same_fault_as for t in judged[other].charged]
    unverified_before = [t for other in d.same_fault_as for t in judged[other].unverified]
    points_h = to_hundredths(d.points, d.code)
    lines: list[DeductionLine] = []
    spans = _Spans()
    pending: list[tuple[Finding, str]] = []
    used = 0
    for f in findings:
        if _same_fault(f, charged_before):
            continue
        if _same_fault(f, unverified_before):
            same = ", ".join(d.same_fault_as)
            pending.append((f, f"unverified: the same fault as {same}, which is left to the examiner"))
            continue
        gap = first_overlap(relevant, f.t_from_ns, f.t_to_ns)
        if gap is not None:
            note = _gap_note(gap.device, gap.signal, _offset(gap.t_from_ns, origin), _offset(gap.t_to_ns, origin),
                             gap.raw)
            pending.append((f, note))
            continue
        if f.share is not None:
            cost, count = share_of(points_h, f.share), 1
        else:
            count = f.count if d.max_count is None else min(f.count, d.max_count - used)
            used += max(count, 0)
            cost = points_h * count
        if cost <= 0:
            continue
        spans.charged.append(f.t_from_ns)
        lines.append(DeductionLine(row, d.code, d.reason_zh, shown(cost), count, "auto", f.detail, f.t_from_ns,
                                   f.t_to_ns, _offset(f.t_from_ns, origin)))
    left = used
    for f, note in pending:
        if f.share is not None:
            cost, count = share_of(points_h, f.share), 1
        else:
            count = f.count if d.max_count is None else min(f.count, d.max_count - left)
            left += max(count, 0)
            cost = points_h * count
        if cost <= 0:
            continue
        spans.unverified.append(f.t_from_ns)
        lines.append(DeductionLine(row, d.code, d.reason_zh, shown(cost), count, "unverified", f"{note}; {f.detail}",
                                   f.t_from_ns, f.t_to_ns, _offset(f.t_from_ns, origin)))
    lines.sort(key=lambda x: (x.t_from_ns, x.by))
    return lines, spans, used


def charge_rows(item: Item, view: ItemView, marks: Mapping[str, int], overrides: Mapping[str, OverrideRecord],
                uses: Mapping[str, tuple[SignalUse, ...]], gaps: GapIndex, origin: int) -> list[ChargedRow]:
    """Every row of the item with its lines, automatic value and (overridden) points."""
    row_of = {d.code: r.code for r in item.rows for d in r.deductions}
    judged: dict[str, _Spans] = {}
    lines: dict[str, list[DeductionLine]] = {}
    for d in _charge_order(item):
        out: list[DeductionLine] = []
        used = 0
        judged[d.code] = _Spans()
        if d.detector is not None:
            findings = REGISTRY[d.detector.name].detect(d.detector.params, view)
            out, judged[d.code], used = _auto_lines(row_of[d.code], d, findings, uses.get(d.code, ()), gaps,
                                                    judged, origin)
        n = marks.get(d.code, 0)
        count = n if d.max_count is None else min(n, d.max_count - used)
        if count > 0:
            cost = to_hundredths(d.points, d.code) * count
            out.append(DeductionLine(row_of[d.code], d.code, d.reason_zh, shown(cost), count, "manual",
                                     "examiner mark", view.t_end_ns, view.t_end_ns, _offset(view.t_end_ns, origin)))
        lines[d.code] = out
    rows = []
    for row in item.rows:
        row_lines = tuple(x for d in row.deductions for x in lines[d.code])
        full = to_hundredths(row.points, row.code)
        taken = sum(to_hundredths(x.points, x.code) for x in row_lines if x.by != "unverified")
        auto_h = max(0, full - taken)
        ov = overrides.get(row.code)
        points_h = auto_h if ov is None else to_hundredths(ov.points, row.code)
        rows.append(ChargedRow(RowScore(row.code, row.title_zh, row.points, shown(auto_h), shown(points_h), row_lines,
                                        ov.reason if ov else "", ov.examiner if ov else ""), points_h, auto_h))
    return rows


def veto_hits(item: Item, view: ItemView, marks: Mapping[str, int], uses: Mapping[str, tuple[SignalUse, ...]],
              gaps: GapIndex, origin: int) -> tuple[VetoHit, ...]:
    """Vetoes that fired: the first finding of a veto detector outside any gap of what it reads (one
    only inside a gap is listed as unverified and stops nothing), or an examiner's mark."""
    out = []
    for v in item.vetoes:
        if v.detector is not None:
            relevant = gaps.relevant(uses.get(v.code, ()))
            unverified: VetoHit | None = None
            for f in REGISTRY[v.detector.name].detect(v.detector.params, view):
                gap = first_overlap(relevant, f.t_from_ns, f.t_to_ns)
                if gap is None:
                    out.append(VetoHit(v.code, v.reason_zh, "auto", f.detail, f.t_from_ns,
                                       _offset(f.t_from_ns, origin)))
                    unverified = None
                    break
                if unverified is None:
                    note = _gap_note(gap.device, gap.signal, _offset(gap.t_from_ns, origin),
                                     _offset(gap.t_to_ns, origin), gap.raw)
                    unverified = VetoHit(v.code, v.reason_zh, "unverified", f"{note}; {f.detail}", f.t_from_ns,
                                         _offset(f.t_from_ns, origin))
            if unverified is not None:
                out.append(unverified)
        if marks.get(v.code, 0) > 0:
            out.append(VetoHit(v.code, v.reason_zh, "manual", "examiner mark", view.t_end_ns,
                               _offset(view.t_end_ns, origin)))
    return tuple(out)
