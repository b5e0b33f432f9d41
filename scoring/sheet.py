"""The ScoreSheet: what `score()` returns, what the examiner reviews, what the result document holds.

Every deduction keeps its reason, the rubric row, the evidence time range and the offset into the
attempt's video, so the UI can jump to the moment and an appeal board can see why. Serialised with
`to_dict()` into plain JSON types; `scoring.canonical.canonical_json` of that gives the same bytes
for the same sheet.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

Outcome = Literal["scored", "veto", "timeout", "interrupted"]
LineBy = Literal["auto", "manual", "unverified"]


@dataclass(frozen=True, slots=True)
class DeductionLine:
    """Points taken off a row, or (`by` "unverified") what a finding would take off had the device
    it depends on not been down: not charged, left to the examiner (a mark charges it)."""

    row: str
    code: str
    reason_zh: str
    points: float
    count: int
    by: LineBy
    detail: str
    t_from_ns: int
    t_to_ns: int
    video_offset_s: float


@dataclass(frozen=True, slots=True)
class RowScore:
    code: str
    title_zh: str
    max_points: float
    auto_points: float
    """What the rubric and the detectors gave, before any examiner override."""
    points: float
    deductions: tuple[DeductionLine, ...]
    override_reason: str = ""
    override_by: str = ""


@dataclass(frozen=True, slots=True)
class VetoHit:
    """A veto that fired (auto, manual), or (`unverified`) one whose evidence fell in a device gap:
    it does not stop the item unless the examiner marks it."""

    code: str
    reason_zh: str
    by: LineBy
    detail: str
    t_ns: int
    video_offset_s: float


@dataclass(frozen=True, slots=True)
class RestDeviation:
    """The rig was not at rest when the item started: what the signal showed and what rest is."""

    signal: str
    value: Any
    expected: str
    label_zh: str

    def describe(self) -> str:
        return f"{self.signal} is {self.value} (expected {self.expected}: {self.label_zh})"


@dataclass(frozen=True, slots=True)
class Decision:
    """An examiner's decision about the item (start anyway, score with a device gap, re-sit)."""

    kind: str
    reason: str
    examiner: str
    t_ns: int
    video_offset_s: float


@dataclass(frozen=True, slots=True)
class Pause:
    """A stretch in which the item's clock stood still, and why (a device down, the station's storage
    stalled, the examiner)."""

    reason: str
    from_offset_s: float
    to_offset_s: float


@dataclass(frozen=True, slots=True)
class DeviceGap:
    """A stretch of the item in which a device it reads was offline, or (`signal` set, an instant)
    the moment a device sent a value its profile cannot represent (`raw` is what it sent)."""

    device: str
    signal: str
    reason: str
    raw: str
    t_from_ns: int
    t_to_ns: int
    from_offset_s: float
    to_offset_s: float


@dataclass(frozen=True, slots=True)
class ItemScore:
    code: str
    subject: str
    title_zh: str
    weight: float
    score: float
    auto_score: float
    outcome: Outcome
    end_reason: str
    refused_to_sign: bool
    time_limit_s: int
    active_s: float
    started_utc_ns: int
    ended_utc_ns: int
    rows: tuple[RowScore, ...]
    vetoes: tuple[VetoHit, ...]
    report: Mapping[str, Any] | None
    rig_at_start: tuple[RestDeviation, ...] = ()
    """Where the rig differed from the item's rest state when it started (then a `start_anyway`
    decision says why the examiner started it)."""
    decisions: tuple[Decision, ...] = ()
    gaps: tuple[DeviceGap, ...] = ()
    needs_gap_decision: bool = False
    pauses: tuple[Pause, ...] = ()
    """A device the item reads was down for more than 10 % of it, or at its end, and the examiner
    has not yet chosen: score with the gap, or a re-sit. The sheet cannot be signed until then."""


@dataclass(frozen=True, slots=True)
class ScoreSheet:
    rubric_id: str
    rubric_hash: str
    operation: str
    items: tuple[ItemScore, ...]
    total: float
    pass_total: float
    passed: bool
    """Exactly: the exact weighted total >= pass_total, no veto, the paper complete, no item
    interrupted or waiting for the examiner's gap decision. `total` is that total cut to two
    decimals for display (never rounded up: 79.998 shows as 79.99 and does not pass)."""
    veto_failed: bool
    complete: bool
    """True when one item of every subject was taken (a full exam, not a single-item attempt);
    a partial paper never passes."""

    def item(self, code: str) -> ItemScore:
        return next(i for i in self.items if i.code == code)

    def to_dict(self) -> dict[str, Any]:
        return _plain(self)  # type: ignore[no-any-return]


def _plain(obj: Any) -> Any:
    if hasattr(obj, "__dataclass_fields__"):
        return {name: _plain(getattr(obj, name)) for name in obj.__dataclass_fields__}
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    return obj

