"""Discipline incidents (考场违纪): what a proctor or examiner saw at a station, kept with the attempt.

A proctor watching the hall, or the station's examiner, records an incident: a category from a
fixed list (so the province can count them), a note, who, and when. It belongs to the attempt open
at the station at that moment (none between candidates), is an audit entry in the same
transaction, is published on the station's event stream (the examiner's page shows it live), is
listed on review, and goes into the signed result with where it is in the video.

The examiner may end the whole attempt for an incident (`end_attempt`), or only the running item
(`stop_item`: a lesser incident, the candidate goes on with the next item). Either ends the running
item `abandoned`: in the terms of scoring.timeline that is the candidate's doing (they gave up, or
their conduct ended the exam), not `interrupted` (the equipment or the site failed them, which
earns a re-sit). Both score 0; the difference is whose fault it was, and a cheating candidate is
not owed a re-sit. Ending the attempt also closes the items not started (session.end_attempt), so
the attempt is ENDED and goes to scoring and signatures at once: its paper is incomplete, so it is
failed, and the signed result lists the incident. The `item_end` record's detail is only ever the
end reason, so the incident id and the examiner's reason go into the audit entry
(`discipline.stopped`, `discipline.ended_attempt`) committed in the same transaction as the end.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from scoring.timeline import EndReason
from station import audit
from station import session as sm
from station.db.models import DisciplineIncident
from station.errors import ServiceError
from station.events import DisciplineEvent
from station.result_document import DisciplineNote

if TYPE_CHECKING:
    from station.services import StationServices

RECORDED: Final = "discipline.recorded"
STOPPED: Final = "discipline.stopped"
ENDED_ATTEMPT: Final = "discipline.ended_attempt"
NOTE_MAX: Final = 500
RECENT: Final = 20


@dataclass(frozen=True, slots=True)
class Category:
    code: str
    label_zh: str
    """What the page shows and the result lists beside the code."""


CATEGORIES: Final = (
    Category("crib", "夹带"),
    Category("impersonation", "替考嫌疑"),
    Category("talking", "交谈"),
    Category("device", "使用通讯工具"),
    Category("left_station", "离开考位"),
    Category("other", "其他"),
)
"""The categories of incident, as data: a province with its own list changes only this."""


def category(code: str) -> Category:
    found = next((c for c in CATEGORIES if c.code == code), None)
    if found is None:
        raise ServiceError(f"discipline category {code!r} is not one of: {', '.join(c.code for c in CATEGORIES)}")
    return found


@dataclass(frozen=True, slots=True)
class Incident:
    id: int
    station: str
    attempt_id: str | None
    category: str
    note: str
    recorded_by: str
    utc_ns: int

    @property
    def label_zh(self) -> str:
        return category(self.category).label_zh

    def as_note(self) -> DisciplineNote:
        return DisciplineNote(self.category, self.label_zh, self.note, self.recorded_by, self.utc_ns)


def _incident(row: DisciplineIncident) -> Incident:
    return Incident(row.id, row.station, row.attempt_id, row.category, row.note, row.recorded_by, row.utc_ns)


def incidents_in(tx: Session, attempt_id: str) -> list[Incident]:
    """The attempt's incidents inside an open transaction (the signing's, which lists them)."""
    rows = tx.execute(select(DisciplineIncident).where(DisciplineIncident.attempt_id == attempt_id)
                      .order_by(DisciplineIncident.utc_ns, DisciplineIncident.id)).scalars().all()
    return [_incident(r) for r in rows]


class DisciplineBook:
    """Records and lists incidents; one per StationServices (`for_services`)."""

    def __init__(self, services: StationServices) -> None:
        self.services = services

    @classmethod
    def for_services(cls, services: StationServices) -> DisciplineBook:
        """The book of `services`, made on first use and kept on it (the UI and the CLI share it)."""
        with _MADE_LOCK:
            found = _MADE.get(services)
            if found is None:
                found = _MADE[services] = cls(services)
            return found

    def record(self, station: str, category_code: str, note: str, by: str) -> Incident:
        """Store an incident at `station` with the attempt open there, audited; publish it."""
        if station not in {s.id for s in self.services.config.stations}:
            raise ServiceError(f"no station {station} at this site")
        cat = category(category_code)
        text = note.strip()
        if len(text) > NOTE_MAX:
            raise ServiceError(f"the note is {len(text)} characters; at most {NOTE_MAX}")
        if cat.code == "other" and not text:
            raise ServiceError("an incident of category 其他 needs a note saying what happened")
        book = self.services.book
        utc_ns = self.services.clock.utc_ns()
        with book.lock:  # the attempt open now stays open until the incident is stored with it
            attempt_id = book.active(station)

            def store(tx: Session) -> int:
                row = DisciplineIncident(station=station, attempt_id=attempt_id, category=cat.code, note=text,
                                         recorded_by=by, utc_ns=utc_ns)
                tx.add(row)
                tx.flush()
                audit.append(tx, by, RECORDED, f"attempt:{attempt_id}" if attempt_id else f"station:{station}",
                             {"incident": row.id, "station": station, "category": cat.code, "note": text}, utc_ns)
                return row.id

            incident_id = book.writer.commit_with([], store)
        found = Incident(incident_id, station, attempt_id, cat.code, text, by, utc_ns)
        self.services.events.publish(DisciplineEvent(station, attempt_id, incident_id, cat.code, text, by, utc_ns))
        return found

    def get(self, incident_id: int) -> Incident:
        with self.services.db.read() as s:
            row = s.get(DisciplineIncident, incident_id)
            if row is None:
                raise ServiceError(f"no discipline incident {incident_id}")
            return _incident(row)

    def for_attempt(self, attempt_id: str) -> list[Incident]:
        with self.services.db.read() as s:
            return incidents_in(s, attempt_id)

    def recent(self, station: str, limit: int = RECENT) -> list[Incident]:
        """The station's latest incidents, newest first."""
        with self.services.db.read() as s:
            rows = s.execute(select(DisciplineIncident).where(DisciplineIncident.station == station)
                             .order_by(DisciplineIncident.utc_ns.desc(), DisciplineIncident.id.desc())
                             .limit(limit)).scalars().all()
            return [_incident(r) for r in rows]

    def end_attempt(self, incident_id: int, reason: str, examiner: str) -> None:
        """The examiner ends the whole attempt for incident `incident_id`: the running item
        `abandoned`, the items not started closed unstarted, the attempt ENDED for scoring and
        signatures; the incident, the reason and the items in the audit entry committed with it."""
        why, a = self._open_attempt(incident_id, reason, "the attempt")
        if a.state not in (sm.State.ITEM_DRAWN, sm.State.RUNNING, sm.State.PAUSED):
            raise ServiceError(f"attempt {a.attempt_id} is {a.state.value}; only an attempt whose items are under way "
                               "can be ended")
        running = a.running_item.code if a.running_item else None
        left = [i.code for i in a.items if i.started_ns is None]

        def log_it(tx: Session, _a: sm.Attempt, n: sm.Now) -> None:
            audit.append(tx, examiner, ENDED_ATTEMPT, f"attempt:{a.attempt_id}",
                         {"incident": incident_id, "end_reason": EndReason.ABANDONED.value, "reason": why,
                          "item_ended": running, "items_not_taken": left}, n.utc_ns)

        self.services.book.step(a.attempt_id, examiner, sm.end_attempt, EndReason.ABANDONED, extra=log_it)

    def stop_item(self, incident_id: int, reason: str, examiner: str) -> None:
        """The examiner ends only the running item for incident `incident_id`: `abandoned`, with the
        incident and the reason in the audit entry committed with the end; the attempt goes on."""
        why, a = self._open_attempt(incident_id, reason, "the item")
        if a.state not in (sm.State.RUNNING, sm.State.PAUSED) or a.running_item is None:
            raise ServiceError(f"attempt {a.attempt_id} has no item running (it is {a.state.value}); nothing to end")
        item = a.running_item.code

        def log_it(tx: Session, _a: sm.Attempt, n: sm.Now) -> None:
            audit.append(tx, examiner, STOPPED, f"attempt:{a.attempt_id}",
                         {"incident": incident_id, "item": item, "end_reason": EndReason.ABANDONED.value,
                          "reason": why}, n.utc_ns)

        self.services.book.step(a.attempt_id, examiner, sm.end_item, EndReason.ABANDONED, extra=log_it)


    def _open_attempt(self, incident_id: int, reason: str, what: str) -> tuple[str, sm.Attempt]:
        """The examiner's reason, and the attempt the incident was recorded in."""
        why = reason.strip()
        if not why:
            raise ServiceError(f"ending {what} for an incident needs your reason; it is audited")
        incident = self.get(incident_id)
        if incident.attempt_id is None:
            raise ServiceError(f"incident {incident_id} was recorded with no attempt open at {incident.station}")
        return why, self.services.attempt(incident.attempt_id)


_MADE: weakref.WeakKeyDictionary[StationServices, DisciplineBook] = weakref.WeakKeyDictionary()
_MADE_LOCK = threading.Lock()


def notes(incidents: Sequence[Incident]) -> list[DisciplineNote]:
    return [i.as_note() for i in incidents]
