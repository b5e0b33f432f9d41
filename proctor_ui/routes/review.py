"""Review and sign-off (复核与签字): scoring the ended attempt, marks, overrides with reasons, gap
decisions, the candidate's signature or refusal per item, the examiners' signatures, and the
result's delivery to the province.

Every signed-in user may read a review; only the examiners assigned to the attempt's station act on
it (403 for anyone else). Actions answer with the review body re-rendered (htmx) or the whole page;
a wrong field gets the form back with its message (422), a refusal of the station its reason (409).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, Response

from proctor_ui.deps import Viewer
from proctor_ui.forms import Fields, FormError
from proctor_ui.i18n import gettext as _
from proctor_ui.mark_form import mark_from_form
from proctor_ui.review_view import attempt_of, review_view
from proctor_ui.routes import evidence_media
from proctor_ui.sign_off_pool import run_sign_off
from proctor_ui.templating import render
from scoring.timeline import DECISION_KINDS
from station.errors import ServiceError
from station.users import UserInfo

router = APIRouter()
router.include_router(evidence_media.router)

TextField = Annotated[str, Form()]


def examiner_of(attempt_id: str, request: Request, user: Viewer) -> UserInfo:
    """An examiner assigned to the station of the attempt (404 for an unknown attempt)."""
    a = attempt_of(request.app.state.ui, attempt_id)
    if not user.may_act_at(a.station):
        raise HTTPException(403, f"{user.name} ({user.role}) is not an examiner assigned to {a.station}; only "
                                 f"they act on attempt {attempt_id}")
    return user


AttemptExaminer = Annotated[UserInfo, Depends(examiner_of)]


async def body(request: Request, attempt_id: str, user: UserInfo, *, errors: dict[str, str] | None = None,
               message: str = "", status: int = 200) -> HTMLResponse:
    view = await asyncio.to_thread(review_view, request.app.state.ui, attempt_id, user)
    view.errors, view.message = errors or {}, message
    name = "partials/review_body.html" if request.headers.get("hx-request") else "review.html"
    return render(request, name, {"v": view}, status_code=status)


async def act(request: Request, attempt_id: str, user: UserInfo, action: Callable[[], object],
              *, sign_off: bool = False) -> Response:
    """Run `action` off the loop (a signature on the sign-off threads: it may wait for the post-roll)."""
    try:
        await (run_sign_off(action) if sign_off else asyncio.to_thread(action))
    except FormError as err:
        return await body(request, attempt_id, user, errors=err.errors, status=422)
    except ServiceError as err:
        return await body(request, attempt_id, user, message=str(err), status=409)
    return await body(request, attempt_id, user)


@router.get("/attempt/{attempt_id}/review", response_class=HTMLResponse, include_in_schema=False)
async def review_page(request: Request, attempt_id: str, user: Viewer) -> HTMLResponse:
    return await body(request, attempt_id, user)


@router.get("/attempt/{attempt_id}/delivery", response_class=HTMLResponse)
async def delivery(request: Request, attempt_id: str, user: Viewer) -> HTMLResponse:
    """The result's delivery state alone (the page polls it every 2 s until delivered)."""
    view = await asyncio.to_thread(review_view, request.app.state.ui, attempt_id, user)
    return render(request, "partials/review_delivery.html", {"v": view})


@router.post("/attempt/{attempt_id}/score", response_class=HTMLResponse)
async def score(request: Request, attempt_id: str, user: AttemptExaminer) -> Response:
    return await act(request, attempt_id, user, lambda: request.app.state.ui.services.score(attempt_id))


@router.post("/attempt/{attempt_id}/mark", response_class=HTMLResponse)
async def mark(request: Request, attempt_id: str, user: AttemptExaminer, item: TextField = "", code: TextField = "",
               count: TextField = "1", note: TextField = "") -> Response:
    services = request.app.state.ui.services

    def do() -> None:
        items = [i.code for i in services.attempt(attempt_id).items]
        mark_from_form(services, attempt_id, items, lambda i: i.markable(), user.name,
                       item=item, code=code, count=count, note=note)
    return await act(request, attempt_id, user, do)


@router.post("/attempt/{attempt_id}/override", response_class=HTMLResponse)
async def override(request: Request, attempt_id: str, user: AttemptExaminer, item: TextField = "",
                   row: TextField = "", points: TextField = "", reason: TextField = "") -> Response:
    services = request.app.state.ui.services

    def do() -> None:
        a = services.attempt(attempt_id)
        f = Fields()
        it = f.choice(f"override_{row}", item, [i.code for i in a.items])
        found = services.rubric(a.operation).item(it).row(row) if not f.errors else None
        if found is None:
            raise FormError({f"override_{row}": _("没有这一评分项")})
        value = f.number(f"override_{row}", points, 0, found.points)
        f.text(f"override_reason_{row}", reason, missing=_("改分必须填写原因"))
        f.check()
        services.override(attempt_id, it, row, value, reason.strip(), user.name)
    return await act(request, attempt_id, user, do)


@router.post("/attempt/{attempt_id}/gap", response_class=HTMLResponse)
async def gap(request: Request, attempt_id: str, user: AttemptExaminer, item: TextField = "",
              choice: TextField = "", reason: TextField = "") -> Response:
    services = request.app.state.ui.services

    def do() -> None:
        f = Fields()
        kind = f.choice(f"gap_{item}", choice, [k for k in DECISION_KINDS if k != "start_anyway"])
        text = f.text(f"gap_reason_{item}", reason, missing=_("请填写原因"))
        f.check()
        services.decide_gap(attempt_id, item, kind, text, user.name)
    return await act(request, attempt_id, user, do)


@router.post("/attempt/{attempt_id}/reviewed", response_class=HTMLResponse)
async def reviewed(request: Request, attempt_id: str, user: AttemptExaminer) -> Response:
    return await act(request, attempt_id, user, lambda: request.app.state.ui.services.review(attempt_id, user.name))


@router.post("/attempt/{attempt_id}/candidate", response_class=HTMLResponse)
async def candidate(request: Request, attempt_id: str, user: AttemptExaminer, item: TextField = "",
                    decision: TextField = "") -> Response:
    """The candidate signs the item's sheet or refuses (the examiner records which, at the station)."""
    services = request.app.state.ui.services

    def do() -> None:
        f = Fields()
        choice = f.choice(f"candidate_{item}", decision, ["signed", "refused"])
        f.check()
        services.candidate_decision(attempt_id, item, choice == "signed")
    return await act(request, attempt_id, user, do)


@router.post("/attempt/{attempt_id}/sign", response_class=HTMLResponse)
async def sign(request: Request, attempt_id: str, user: AttemptExaminer) -> Response:
    """The examiner's signature; the last one stores the signed result and queues it (it may wait
    for the camera's post-roll first, off the event loop and off its default pool: sign_off_pool)."""
    return await act(request, attempt_id, user,
                     lambda: request.app.state.ui.services.examiner_sign(attempt_id, user.name), sign_off=True)
