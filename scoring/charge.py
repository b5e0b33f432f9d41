"""Charging an item's rows: what each finding and each examiner mark costs, in whole hundredths.

Three rules decide whether a finding is charged (docs/rubrics.md, "How a sheet is scored"):
- a finding whose evidence falls in a gap of a device the row reads is not charged: it is listed
  as `unverified` with what it would cost, and the examiner decides (a mark charges it);
- a finding whose evidence overlaps a finding charged by a deduction named in `same_fault_as` is
  the same fault and is not charged again (those deductions are charged first);
- `max_count` caps the occurrences of a deduction, automatic and manual together.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

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
        return f"unverified: {gap_device} sent {gap_signal} = {raw}, which it cannot report, at +{a_s:.1f} s"
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


def _auto_lines(row: str, d: Deduction, findings: tuple[Finding, ...], uses: tuple[SignalUse, ...],
                gaps: GapIndex, charged: Mapping[str, list[tuple[int, int]]], origin: int
                ) -> tuple[list[DeductionLine], list[tuple[int, int]], int]:
    """(lines, evidence of the charged findings, occurrences used of max_count)."""
    relevant = gaps.relevant(uses)
    same_fault = [span for other in d.same_fault_as for span in charged.get(other, [])]
    points_h = to_hundredths(d.points, d.code)
    budget = d.max_count
    lines: list[DeductionLine] = []
    spans: list[tuple[int, int]] = []
    used = 0
    for f in findings:
        gap = first_overlap(relevant, f.t_from_ns, f.t_to_ns)
        if gap is not None:
            cost = share_of(points_h, f.share) if f.share is not None else points_h * f.count
            if cost > 0:
                note = _gap_note(gap.device, gap.signal, _offset(gap.t_from_ns, origin), _offset(gap.t_to_ns, origin),
                                 gap.raw)
                lines.append(DeductionLine(row, d.code, d.reason_zh, shown(cost), f.count, "unverified",
                                           f"{note}; {f.detail}", f.t_from_ns, f.t_to_ns, _offset(f.t_from_ns, origin)))
            continue
        if any(a <= f.t_to_ns and b >= f.t_from_ns for a, b in same_fault):
            continue
        if f.share is not None:
            cost, count = share_of(points_h, f.share), 1
        else:
            count = f.count if budget is None else min(f.count, budget - used)
            if count <= 0:
                continue
            used += count
            cost = points_h * count
        if cost <= 0:
            continue
        spans.append((f.t_from_ns, f.t_to_ns))
        lines.append(DeductionLine(row, d.code, d.reason_zh, shown(cost), count, "auto", f.detail, f.t_from_ns,
                                   f.t_to_ns, _offset(f.t_from_ns, origin)))
    return lines, spans, used


def charge_rows(item: Item, view: ItemView, marks: Mapping[str, int], overrides: Mapping[str, OverrideRecord],
                uses: Mapping[str, tuple[SignalUse, ...]], gaps: GapIndex, origin: int) -> list[ChargedRow]:
    """Every row of the item with its lines, automatic value and (overridden) points."""
    row_of = {d.code: r.code for r in item.rows for d in r.deductions}
    charged: dict[str, list[tuple[int, int]]] = {}
    lines: dict[str, list[DeductionLine]] = {}
    for d in _charge_order(item):
        out: list[DeductionLine] = []
        used = 0
        if d.detector is not None:
            findings = REGISTRY[d.detector.name].detect(d.detector.params, view)
            out, charged[d.code], used = _auto_lines(row_of[d.code], d, findings, uses.get(d.code, ()), gaps,
                                                     charged, origin)
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
