"""The manual-mark form (人工扣分), one for the station page and the review page.

Why shared: the examiner marks what they see while the candidate works, on the station page, and
corrects the sheet after scoring, on the review page. Both offer the rubric's manual rows of an
item, check the same fields the same way and call the same service (SignOff.mark, which decides
what a mark may be at each state), and both list the marks made so far with the rubric row, the
moment each was made and its offset into the attempt's video. Only what may be marked differs:
the station page offers the item running or just ended and no veto (a veto stops the item: that
is the veto button), the review page every code of every item taken.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from proctor_ui.forms import Fields
from scoring.rubric import Item, Rubric
from station import session as sm
from station.services import StationServices


@dataclass(frozen=True, slots=True)
class ManualCode:
    """A code the examiner may mark on an item: a manual deduction or a veto."""

    code: str
    row: str
    reason_zh: str
    points: float | None
    """None for a veto."""
    max_count: int | None


@dataclass(frozen=True, slots=True)
class NotedMark:
    """A mark as the pages list it: what, on which rubric row, by whom, when, where in the video."""

    item: str
    code: str
    row: str
    reason_zh: str
    count: int
    note: str
    examiner: str
    utc_ns: int
    offset_s: float
    """Seconds from the attempt's start (its first item's start): where the mark is in the video."""


def manual_codes(item: Item, *, vetoes: bool) -> list[ManualCode]:
    """The item's deductions that no detector charges (the rubric's manual rows), and its vetoes."""
    out = [ManualCode(d.code, r.code, d.reason_zh, d.points, d.max_count)
           for r in item.rows for d in r.deductions if d.detector is None]
    if vetoes:
        out += [ManualCode(v.code, "", v.reason_zh, None, 1) for v in item.vetoes]
    return out


def origin_ns(a: sm.Attempt) -> int | None:
    """The attempt's start on its monotonic clock (its first item's start), None before it."""
    return min((i.started_ns for i in a.items if i.started_ns is not None), default=None)


def noted_marks(services: StationServices, a: sm.Attempt, rubric: Rubric) -> list[NotedMark]:
    """Every mark of the attempt, oldest first (blocking: a database read)."""
    origin = origin_ns(a) or 0
    out = []
    for m in services.sign_off.marks(a.attempt_id):
        item = rubric.item(m.item)
        found = item.deduction(m.code)
        veto = item.veto(m.code)
        row, reason = (found[0].code, found[1].reason_zh) if found else ("", veto.reason_zh if veto else "")
        out.append(NotedMark(m.item, m.code, row, reason, m.count, m.note, m.examiner, m.t_utc_ns,
                             round((m.t_mono_ns - origin) / 1e9, 1)))
    return out


def mark_from_form(services: StationServices, attempt_id: str, items: Sequence[str],
                   codes_of: Callable[[Item], Sequence[str]], examiner: str, *, item: str, code: str, count: str,
                   note: str) -> None:
    """Check the form (the item among `items`, the code among `codes_of(item)`, a count of 1 to 20,
    a note) and mark; a wrong field raises FormError, a refusal of the station ServiceError."""
    a = services.attempt(attempt_id)
    f = Fields()
    it = f.choice("mark_item", item, list(items))
    codes = list(codes_of(services.rubric(a.operation).item(it))) if it in items else []
    chosen = f.choice("mark_code", code, codes)
    n = f.integer("mark_count", count, 1, 20)
    text = f.text("mark_note", note, required=False)
    f.check()
    services.mark(attempt_id, it, chosen, n, examiner, text)
