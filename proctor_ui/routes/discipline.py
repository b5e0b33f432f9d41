"""Discipline incidents (考场违纪) from the station page or a hall tile.

A proctor, or the station's examiner, records one (category, note; the time and the attempt open
at the station are taken by station.discipline). The answer is the station's incident list
re-rendered (partials/station_discipline.html), so a hall tile and the station page can both use
it. The station's examiner may then end the whole attempt for an incident, or only its running
item, with a reason (station.discipline says what each does); the answer is the station's panel.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, Response

from proctor_ui.deps import ExaminerAt, Ui, Viewer
from proctor_ui.forms import Fields
from proctor_ui.routes.station import act
from proctor_ui.station_view import station_of
from proctor_ui.templating import render
from station.discipline import CATEGORIES, DisciplineBook
from station.errors import ServiceError
from station.users import UserInfo

router = APIRouter()


def recorder_at(station: str, user: Viewer) -> UserInfo:
    """Who may record an incident at `station`: any proctor, or the station's examiner."""
    if not (user.role == "proctor" or user.may_act_at(station)):
        raise HTTPException(403, f"{user.name} ({user.role}) may not record incidents at {station}; a proctor or "
                                 "the station's examiner does")
    return user


RecorderAt = Annotated[UserInfo, Depends(recorder_at)]


async def incident_list(request: Request, ui: Ui, station: str, user: UserInfo, *,
                        errors: dict[str, str] | None = None, message: str = "", status: int = 200) -> HTMLResponse:
    incidents = await asyncio.to_thread(DisciplineBook.for_services(ui.services).recent, station)
    may_record = user.role == "proctor" or user.may_act_at(station)
    return render(request, "partials/station_discipline.html", {
        "station": station, "incidents": incidents, "categories": CATEGORIES, "may_record": may_record,
        "can_act": user.may_act_at(station), "errors": errors or {}, "message": message}, status_code=status)


@router.get("/station/{station}/discipline", response_class=HTMLResponse)
async def incidents(request: Request, station: str, ui: Ui, user: Viewer) -> HTMLResponse:
    station_of(ui, station)
    return await incident_list(request, ui, station, user)


@router.post("/station/{station}/discipline", response_class=HTMLResponse)
async def record(request: Request, station: str, ui: Ui, user: RecorderAt,
                 category: Annotated[str, Form()] = "", note: Annotated[str, Form()] = "") -> HTMLResponse:
    station_of(ui, station)
    f = Fields()
    code = f.choice("category", category, [c.code for c in CATEGORIES])
    text = f.text("note", note, required=code == "other")
    if f.errors:
        return await incident_list(request, ui, station, user, errors=f.errors, status=422)
    try:
        await asyncio.to_thread(DisciplineBook.for_services(ui.services).record, station, code, text, user.name)
    except ServiceError as err:
        return await incident_list(request, ui, station, user, message=str(err), status=409)
    return await incident_list(request, ui, station, user)


async def _end_for(request: Request, station: str, incident_id: int, ui: Ui, user: UserInfo, reason: str,
                   end: Callable[[DisciplineBook], Callable[[int, str, str], None]]) -> Response:
    """Check the reason and the incident's station, then `end(book)(incident, reason, examiner)`."""
    book = DisciplineBook.for_services(ui.services)

    def do() -> None:
        f = Fields()
        why = f.text("stop_reason", reason)
        f.check()
        if book.get(incident_id).station != station:
            raise ServiceError(f"incident {incident_id} was not recorded at {station}")
        end(book)(incident_id, why, user.name)

    return await act(request, ui, station, user, do)


@router.post("/station/{station}/discipline/{incident_id}/end-attempt", response_class=HTMLResponse)
async def end_attempt(request: Request, station: str, incident_id: int, ui: Ui, user: ExaminerAt,
                      reason: Annotated[str, Form()] = "") -> Response:
    """End the whole attempt for the incident: the running item `abandoned`, the rest not taken."""
    return await _end_for(request, station, incident_id, ui, user, reason, lambda b: b.end_attempt)


@router.post("/station/{station}/discipline/{incident_id}/stop", response_class=HTMLResponse)
async def stop_item(request: Request, station: str, incident_id: int, ui: Ui, user: ExaminerAt,
                    reason: Annotated[str, Form()] = "") -> Response:
    """End only the running item `abandoned` for the incident; the candidate goes on with the next."""
    return await _end_for(request, station, incident_id, ui, user, reason, lambda b: b.stop_item)
