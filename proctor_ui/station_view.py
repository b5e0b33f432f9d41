"""What the station page shows, gathered from the station's services in one place.

The page and every action's answer (the panel partial) render the same view, so what an examiner
sees after pressing a button is exactly what a reload would show. Everything here reads; nothing
changes an attempt.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi import HTTPException

from proctor_ui.context import UiContext
from proctor_ui.mark_form import ManualCode, NotedMark, manual_codes, noted_marks
from scoring.rubric import Item, Rubric
from station import session as sm
from station.config import Station
from station.discipline import CATEGORIES, Category, DisciplineBook, Incident
from station.evidence_clip import CheckInPictures, checkin_pictures
from station.rig_check import readiness
from station.users import UserInfo

LIVE = (sm.State.CHECKED_IN, sm.State.ITEM_DRAWN, sm.State.RUNNING, sm.State.PAUSED)


@dataclass
class ItemLine:
    code: str
    subject: str
    title_zh: str
    time_limit_s: int
    status: str
    """pending, running, paused or ended."""
    remaining_s: float
    end_reason: str
    not_ready: list[str] = field(default_factory=list)
    """Why the rig is not at rest for it (pending items only): starting needs a reason then."""


@dataclass
class StationView:
    station: Station
    user: UserInfo
    rubric: Rubric
    attempt: sm.Attempt | None
    candidate_name: str
    items: list[ItemLine]
    subjects: list[tuple[str, str, list[Item]]]
    """(subject code, title, items) for the assign form."""
    running: Item | None
    gap: str
    """Why ending the running item `done` needs a choice ('' when it does not)."""
    awaiting: list[str]
    """Attempts of this station whose items are over and whose result is not signed."""
    incidents: list[Incident]
    categories: tuple[Category, ...]
    idcard: dict[str, Any] | None
    pictures: CheckInPictures | None
    marking: Item | None = None
    """The item a manual mark goes to: the one running, else the one that ended last."""
    mark_codes: list[ManualCode] = field(default_factory=list)
    """The rubric's manual rows of `marking` (no vetoes: a veto stops the item, the veto form does)."""
    marks: list[NotedMark] = field(default_factory=list)
    """The marks made on `marking` so far."""
    errors: dict[str, str] = field(default_factory=dict)
    message: str = ""

    @property
    def can_act(self) -> bool:
        return self.user.may_act_at(self.station.id)

    @property
    def may_check_in(self) -> bool:
        """The station's examiners, and proctors (监考员 check candidates' ID, DESIGN.md)."""
        return self.can_act or self.user.role == "proctor"

    @property
    def may_record(self) -> bool:
        return self.can_act or self.user.role == "proctor"


def marking_item(a: sm.Attempt | None) -> sm.ItemClock | None:
    """The item the station page marks: the one running, else the one that ended last (a mark
    remembered just after the end), None before the first start and between candidates."""
    if a is None or a.state not in LIVE:
        return None
    if a.running_item is not None:
        return a.running_item
    ended = [i for i in a.items if i.started_ns is not None and i.ended_ns is not None]
    return max(ended, key=lambda i: i.ended_ns or 0, default=None)


def station_of(ui: UiContext, station: str) -> Station:
    try:
        return ui.services.config.station(station)
    except KeyError:
        raise HTTPException(404, f"no station {station} at this site") from None


def station_view(ui: UiContext, station: str, user: UserInfo) -> StationView:
    """Blocking (database reads): call it with asyncio.to_thread."""
    services = ui.services
    st = station_of(ui, station)
    rubric = services.rubric(st.operation)
    attempt_id = services.active_attempt(station)
    awaiting = [aid for s, aid in services.awaiting_sign_off() if s == station]
    a = services.attempt(attempt_id) if attempt_id else None
    latest = services.rig.latest(station)
    devices = services.rig.devices()
    items: list[ItemLine] = []
    now = services.clock.mono_ns()
    for it in a.items if a else ():
        status = "ended" if it.ended_ns is not None else ("pending" if it.started_ns is None else
                                                           ("paused" if it.paused_since_ns is not None else "running"))
        line = ItemLine(it.code, it.subject, rubric.item(it.code).title_zh, it.time_limit_s, status,
                        round(it.remaining_s(now), 1), it.end_reason)
        if status == "pending":
            line.not_ready = readiness(rubric.item(it.code), st, latest, devices).problems()
        items.append(line)
    running = rubric.item(a.running_item.code) if a and a.running_item else None
    gap = services.item_gap(a.attempt_id) if a and running else ""
    card = latest.get("idcard.read")
    pictures = checkin_pictures(services.db, ui.data_dir, a.attempt_id) if a else None
    subjects = [(s.code, s.title_zh, [i for i in rubric.items if i.subject == s.code]) for s in rubric.subjects]
    marked = marking_item(a)
    marking = rubric.item(marked.code) if marked else None
    marks = [m for m in noted_marks(services, a, rubric) if m.item == marked.code] if a and marked else []
    return StationView(
        station=st, user=user, rubric=rubric, attempt=a, candidate_name=pictures.candidate_name if pictures else "",
        items=items, subjects=subjects, running=running, gap=gap, awaiting=awaiting,
        incidents=DisciplineBook.for_services(services).recent(station), categories=CATEGORIES,
        idcard=dict(card.value) if card is not None and isinstance(card.value, dict) else None, pictures=pictures,
        marking=marking, mark_codes=manual_codes(marking, vetoes=False) if marking else [], marks=marks)
