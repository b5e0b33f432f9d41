"""The station page (考位): the live view, the timeline and score sheet as they happen, and the
examiner's actions from check-in to the end of the last item.

Every signed-in user may watch a station; only the examiners assigned to it act on its exam, and
proctors check candidates in (监考员 verify the ID, DESIGN.md). Each action is an htmx POST that
answers with the station's panel re-rendered: on success the new state, on a wrong field the form
with the field's message (422), when the station refuses (ServiceError) its reason and what to do
(409). Without htmx the same POST answers with the whole page.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, Response

from proctor_ui.deps import ExaminerAt, Ui, Viewer
from proctor_ui.forms import Fields, FormError
from proctor_ui.i18n import gettext as _
from proctor_ui.mark_form import manual_codes, mark_from_form
from proctor_ui.station_view import marking_item, station_of, station_view
from proctor_ui.templating import render
from scoring.timeline import EndReason
from station.errors import ServiceError
from station.users import UserInfo

router = APIRouter()

EXAMINER_PAUSE = "考评员暂停"
"""The pause reason of the examiner's button; resuming lifts exactly this one (a device's pause stays)."""
END_CHOICES = (EndReason.DONE.value, EndReason.ABANDONED.value, EndReason.INTERRUPTED.value)
CHECK_IN_METHODS = ("manual", "id_card_reader")


def checker_at(station: str, user: Viewer) -> UserInfo:
    """Who may check a candidate in at `station`: its examiners, or a proctor."""
    if not (user.may_act_at(station) or user.role == "proctor"):
        raise HTTPException(403, f"{user.name} ({user.role}) may not check candidates in at {station}; its "
                                 "examiners or a proctor do")
    return user


CheckerAt = Annotated[UserInfo, Depends(checker_at)]
TextField = Annotated[str, Form()]


async def panel(request: Request, ui: Ui, station: str, user: UserInfo, *, errors: dict[str, str] | None = None,
                message: str = "", status: int = 200) -> HTMLResponse:
    """The panel partial for htmx, the whole page otherwise."""
    view = await asyncio.to_thread(station_view, ui, station, user)
    view.errors, view.message = errors or {}, message
    name = "partials/station_panel.html" if request.headers.get("hx-request") else "station.html"
    return render(request, name, {"v": view}, status_code=status)


async def act(request: Request, ui: Ui, station: str, user: UserInfo, action: Callable[[], object]) -> Response:
    """Run `action` off the loop and answer with the panel: new state, field errors, or the refusal."""
    station_of(ui, station)
    try:
        await asyncio.to_thread(action)
    except FormError as err:
        return await panel(request, ui, station, user, errors=err.errors, status=422)
    except ServiceError as err:
        return await panel(request, ui, station, user, message=str(err), status=409)
    return await panel(request, ui, station, user)


def _attempt(ui: Ui, station: str) -> str:
    aid = ui.services.active_attempt(station)
    if aid is None:
        raise ServiceError(f"no candidate is checked in at {station}; check one in first")
    return aid


@router.get("/station/{station}", response_class=HTMLResponse, include_in_schema=False)
async def station_page(request: Request, station: str, ui: Ui, user: Viewer) -> HTMLResponse:
    station_of(ui, station)
    return await panel(request, ui, station, user)


@router.get("/station/{station}/panel", response_class=HTMLResponse)
async def station_panel(request: Request, station: str, ui: Ui, user: Viewer) -> HTMLResponse:
    """The panel alone (the page reloads it when the attempt's state changes)."""
    station_of(ui, station)
    view = await asyncio.to_thread(station_view, ui, station, user)
    return render(request, "partials/station_panel.html", {"v": view})


@router.post("/station/{station}/check-in", response_class=HTMLResponse)
async def check_in(request: Request, station: str, ui: Ui, user: CheckerAt, id_number: TextField = "",
                   method: TextField = "manual") -> Response:
    def do() -> None:
        f = Fields()
        number = f.text("id_number", id_number, max_len=32, missing=_("请填写身份证号码"))
        how = f.choice("method", method, CHECK_IN_METHODS)
        f.check()
        ui.services.check_in(number.upper(), station, user.name, how)
    return await act(request, ui, station, user, do)


@router.post("/station/{station}/draw", response_class=HTMLResponse)
async def draw(request: Request, station: str, ui: Ui, user: ExaminerAt) -> Response:
    """One item per subject at random (the seed is kept for audit)."""
    return await act(request, ui, station, user,
                     lambda: ui.services.draw(_attempt(ui, station), secrets.randbelow(2**31)))


@router.post("/station/{station}/assign", response_class=HTMLResponse)
async def assign(request: Request, station: str, ui: Ui, user: ExaminerAt) -> Response:
    """The items named per subject (fields `item_K1`...; empty subjects are left out)."""
    form = await request.form()
    chosen = {k.removeprefix("item_"): str(v).strip() for k, v in form.items()
              if k.startswith("item_") and isinstance(v, str) and v.strip()}

    def do() -> None:
        if not chosen:
            raise FormError({"assign": _("请至少选择一个考题")})
        rubric = ui.services.rubric(station_of(ui, station).operation)
        bad = {f"item_{s}": _("不是该科目的考题") for s, code in chosen.items()
               if not any(i.code == code and i.subject == s for i in rubric.items)}
        if bad:
            raise FormError(bad)
        ui.services.assign(_attempt(ui, station), chosen, user.name)
    return await act(request, ui, station, user, do)


@router.post("/station/{station}/start", response_class=HTMLResponse)
async def start(request: Request, station: str, ui: Ui, user: ExaminerAt, item: TextField = "",
                start_anyway: TextField = "") -> Response:
    def do() -> None:
        f = Fields()
        code = f.text("item", item, max_len=16)
        reason = f.text("start_anyway", start_anyway, required=False)
        f.check()
        try:
            ui.services.start_item(_attempt(ui, station), code, user.name, reason)
        except ServiceError as err:
            if "not at rest" in str(err) and not reason:
                raise FormError({"start_anyway": _("考位未复位：请先复位，或填写原因后强制开始")}) from err
            raise
    return await act(request, ui, station, user, do)


@router.post("/station/{station}/pause", response_class=HTMLResponse)
async def pause(request: Request, station: str, ui: Ui, user: ExaminerAt) -> Response:
    return await act(request, ui, station, user,
                     lambda: ui.services.pause(_attempt(ui, station), EXAMINER_PAUSE, user.name))


@router.post("/station/{station}/resume", response_class=HTMLResponse)
async def resume(request: Request, station: str, ui: Ui, user: ExaminerAt) -> Response:
    return await act(request, ui, station, user,
                     lambda: ui.services.resume(_attempt(ui, station), EXAMINER_PAUSE, user.name))


@router.post("/station/{station}/end", response_class=HTMLResponse)
async def end(request: Request, station: str, ui: Ui, user: ExaminerAt, reason: TextField = "done",
              with_gap: TextField = "") -> Response:
    def do() -> None:
        f = Fields()
        why = f.choice("reason", reason, END_CHOICES)
        gap = f.text("with_gap", with_gap, required=False)
        f.check()
        aid = _attempt(ui, station)
        if why == EndReason.DONE and not gap and ui.services.item_gap(aid):
            raise FormError({"with_gap": _("设备曾离线：请填写带缺口评分的原因，或以“中断”结束（补考）")})
        ui.services.end_item(aid, why, user.name, gap)
    return await act(request, ui, station, user, do)


@router.post("/station/{station}/veto", response_class=HTMLResponse)
async def veto(request: Request, station: str, ui: Ui, user: ExaminerAt, code: TextField = "",
               note: TextField = "") -> Response:
    def do() -> None:
        aid = _attempt(ui, station)
        a = ui.services.attempt(aid)
        if a.running_item is None:
            raise ServiceError(f"no item is running at {station}; a veto stops the running item")
        item = ui.services.rubric(a.operation).item(a.running_item.code)
        f = Fields()
        chosen = f.choice("code", code, [v.code for v in item.vetoes])
        text = f.text("note", note, required=False)
        f.check()
        ui.services.veto(aid, item.code, chosen, user.name, text)
    return await act(request, ui, station, user, do)


@router.post("/station/{station}/mark", response_class=HTMLResponse)
async def mark(request: Request, station: str, ui: Ui, user: ExaminerAt, item: TextField = "", code: TextField = "",
               count: TextField = "1", note: TextField = "") -> Response:
    """A manual deduction on the item running (or just ended), marked as the examiner sees it; it is
    audited now and charged when the attempt is scored (station.sign_off)."""
    def do() -> None:
        aid = _attempt(ui, station)
        it = marking_item(ui.services.attempt(aid))
        mark_from_form(ui.services, aid, [it.code] if it else [],
                       lambda i: [m.code for m in manual_codes(i, vetoes=False)], user.name,
                       item=item, code=code, count=count, note=note)
    return await act(request, ui, station, user, do)
