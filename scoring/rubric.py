"""The rubric: one operation type's practical-exam scoring standard, as immutable data.

A rubric file (YAML, `scoring/rubrics/`) is loaded by `scoring.rubric_loader` into these frozen
dataclasses; the engine only ever sees these. Every number carries the source it comes from
(STANDARD.md: national-2015, revision-appendix, provincial-sheet, provisional) so an appeal board
can see which points are the standard's and which are this site's default, and a province can
replace the file with its own 评分细则 without touching code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from scoring.condition import Condition

Source = Literal["national-2015", "revision-appendix", "provincial-sheet", "provisional"]
SOURCES: tuple[Source, ...] = ("national-2015", "revision-appendix", "provincial-sheet", "provisional")


class RubricError(Exception):
    """A rubric file cannot be used; the message says where and how to fix it."""


@dataclass(frozen=True, slots=True)
class DetectorRef:
    """An automatic check: a named pure detector with its validated parameters."""

    name: str
    params: object
    """The detector's own frozen params dataclass (see scoring.detectors)."""
    source: Source


@dataclass(frozen=True, slots=True)
class Deduction:
    """Points taken off a row per occurrence; automatic (a detector) or manual (an examiner mark)."""

    code: str
    reason_zh: str
    points: float
    """Points per occurrence; a detector may give its own (a share of time outside a band)."""
    max_count: int | None
    source: Source
    detector: DetectorRef | None
    """None: a manual deduction the examiner marks (口述, 规范性)."""
    same_fault_as: tuple[str, ...] = ()
    """Deductions of the same item that charge the same fault first: a finding of this deduction
    whose evidence overlaps one they charged is that fault again and is not charged twice (a set of
    30 too fast is not also charged as a rate fault; a first self-check that failed for a missing PE
    is not also charged as "PE missing")."""


@dataclass(frozen=True, slots=True)
class Row:
    """One criterion of an item's 100-point sheet: full points unless deducted, never below 0."""

    code: str
    title_zh: str
    points: float
    source: Source
    deductions: tuple[Deduction, ...]


@dataclass(frozen=True, slots=True)
class Veto:
    """否决项: when it happens the item scores 0, stops, and the whole practical exam is failed."""

    code: str
    reason_zh: str
    source: Source
    detector: DetectorRef | None


@dataclass(frozen=True, slots=True)
class RestState:
    """One thing the rig must show before the item starts (the bench de-energised, the self-check
    result cleared, the cabinet full): what the previous candidate left is not this one's doing."""

    condition: Condition
    label_zh: str
    """What it means on the hall floor, e.g. 电源总开关断开."""
    source: Source


@dataclass(frozen=True, slots=True)
class Item:
    """One exam item (考题), e.g. K21, on its own 100-point sheet."""

    code: str
    subject: str
    title_zh: str
    time_limit_s: int
    time_limit_source: Source
    candidate_may_choose: bool
    rows: tuple[Row, ...]
    vetoes: tuple[Veto, ...]
    report: Literal["cpr", "weld"] | None
    rest: tuple[RestState, ...] = ()
    """The rig's rest state: checked before the item starts; the engine shows any difference found
    in the timeline on the sheet."""

    def deduction(self, code: str) -> tuple[Row, Deduction] | None:
        for row in self.rows:
            for d in row.deductions:
                if d.code == code:
                    return row, d
        return None

    def veto(self, code: str) -> Veto | None:
        return next((v for v in self.vetoes if v.code == code), None)

    def row(self, code: str) -> Row | None:
        return next((r for r in self.rows if r.code == code), None)

    def markable(self) -> tuple[str, ...]:
        """Codes an examiner may mark on this item: every deduction and every veto."""
        return (*(d.code for r in self.rows for d in r.deductions), *(v.code for v in self.vetoes))


@dataclass(frozen=True, slots=True)
class Subject:
    """科目 K1..K4 with its weight in the exam total."""

    code: str
    title_zh: str
    weight: float
    source: Source


@dataclass(frozen=True, slots=True)
class Rubric:
    """A whole operation type's exam: subjects and weights, items, the pass rule, and its identity."""

    id: str
    edition: str
    operation: str
    title_zh: str
    pass_total: float
    pass_source: Source
    subjects: tuple[Subject, ...]
    items: tuple[Item, ...]
    hash: str
    """sha256 of the canonical JSON of the file's content: names exactly what scored a result."""

    def item(self, code: str) -> Item:
        for item in self.items:
            if item.code == code:
                return item
        raise KeyError(f"rubric {self.id} has no item {code}; items: {', '.join(i.code for i in self.items)}")

    def subject(self, code: str) -> Subject:
        for s in self.subjects:
            if s.code == code:
                return s
        raise KeyError(f"rubric {self.id} has no subject {code}")
