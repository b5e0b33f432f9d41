"""What the review page shows: the latest score sheet with each deduction's rubric row, reason and
place in the video, the marks the rubric allows, the signatures, the incidents and the delivery.

The video pointers are made the way a signed result's are (station.evidence_clip.pointers_at on the
station's segments), so the page can jump to a deduction before the result exists.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi import HTTPException

from proctor_ui.context import UiContext
from proctor_ui.mark_form import ManualCode, NotedMark, manual_codes, noted_marks
from scoring.rubric import Rubric
from station import session as sm
from station.discipline import DisciplineBook, Incident
from station.errors import ServiceError
from station.evidence_clip import pointers_at
from station.sign_off import StoredResult
from station.users import UserInfo

SIGNABLE = (sm.State.SCORED, sm.State.REVIEWED)


@dataclass
class ReviewView:
    attempt: sm.Attempt
    user: UserInfo
    rubric: Rubric
    sheet: dict[str, Any] | None
    manual: dict[str, list[ManualCode]]
    """item code -> what may be marked on it."""
    marks: list[NotedMark]
    """Every mark made, also those made on the station page while the item ran."""
    incidents: list[Incident]
    result: StoredResult | None
    origin_utc_ns: int
    errors: dict[str, str] = field(default_factory=dict)
    message: str = ""

    @property
    def can_act(self) -> bool:
        return self.user.may_act_at(self.attempt.station)

    @property
    def amendable(self) -> bool:
        return self.attempt.state in SIGNABLE

    def report_of(self, code: str) -> str | None:
        """'cpr' or 'weld' when the item has a report page (its charts), from the rubric."""
        return self.rubric.item(code).report

    def decision(self, code: str) -> str:
        return next((i.candidate_decision for i in self.attempt.items if i.code == code), "")

    @property
    def pending_candidate(self) -> list[str]:
        return [i.code for i in self.attempt.items if not i.candidate_decision]

    def marks_of(self, code: str) -> list[NotedMark]:
        return [m for m in self.marks if m.item == code]

    def offset_s(self, utc_ns: int) -> float:
        return round((utc_ns - self.origin_utc_ns) / 1e9, 1)


def attempt_of(ui: UiContext, attempt_id: str) -> sm.Attempt:
    try:
        return ui.services.attempt(attempt_id)
    except ServiceError:
        raise HTTPException(404, f"no attempt {attempt_id}") from None


def review_view(ui: UiContext, attempt_id: str, user: UserInfo) -> ReviewView:
    """Blocking (database reads): call it with asyncio.to_thread."""
    services = ui.services
    a = attempt_of(ui, attempt_id)
    rubric = services.rubric(a.operation)
    sheet = services.sign_off.latest_sheet(attempt_id)
    origin = min((i["started_utc_ns"] for i in (sheet or {}).get("items", [])), default=0)
    for item in (sheet or {}).get("items", []):
        lines = [d for r in item["rows"] for d in r["deductions"]] + item["vetoes"]
        for line in lines:
            line["video"] = pointers_at(services.db, services.clock, a.station,
                                        origin + round(float(line["video_offset_s"]) * 1e9))
    manual = {it.code: manual_codes(rubric.item(it.code), vetoes=True) for it in a.items}
    return ReviewView(attempt=a, user=user, rubric=rubric, sheet=sheet, manual=manual,
                      marks=noted_marks(services, a, rubric),
                      incidents=DisciplineBook.for_services(services).for_attempt(attempt_id),
                      result=services.sign_off.result(attempt_id), origin_utc_ns=origin)
