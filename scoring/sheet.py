"""The ScoreSheet: what `score()` returns, what the examiner reviews, what the result document holds.

Every deduction keeps its reason, the rubric row, the evidence time range and the offset into the
attempt's video, so the UI can jump to the moment and an appeal board can see why. Serialised with
`to_dict()` into plain JSON types; `canonical_json()` gives the same bytes for the same sheet.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

Outcome = Literal["scored", "veto", "timeout", "interrupted"]


@dataclass(frozen=True, slots=True)
class DeductionLine:
    row: str
    code: str
    reason_zh: str
    points: float
    count: int
    by: Literal["auto", "manual"]
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
    code: str
    reason_zh: str
    by: Literal["auto", "manual"]
    detail: str
    t_ns: int
    video_offset_s: float


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


@dataclass(frozen=True, slots=True)
class ScoreSheet:
    rubric_id: str
    rubric_hash: str
    operation: str
    items: tuple[ItemScore, ...]
    total: float
    pass_total: float
    passed: bool
    veto_failed: bool
    complete: bool
    """True when one item of every subject was taken (a full exam, not a single-item attempt)."""

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


def canonical_json(sheet: ScoreSheet) -> str:
    """The sheet as JSON with sorted keys and no spaces: equal sheets give equal bytes."""
    return json.dumps(sheet.to_dict(), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
