"""The uplink outbox (上传): each result's delivery state, and sending a rejected one again.

The same as `examstation outbox` / `outbox retry` (station.uplink.outbox); the retry is an audit
entry naming the administrator, and the running relay sends the result within a second.
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import Response

from proctor_ui.deps import Admin, Ui
from proctor_ui.templating import render
from station.errors import ServiceError
from station.uplink import outbox

router = APIRouter()


async def _page(request: Request, ui: Ui, show: str, status_code: int = 200, **extra: object) -> Response:
    states = ("queued", "failed", "delivered") if show == "all" else ("queued", "failed")

    def read() -> tuple[outbox.Backlog, list[outbox.Listed]]:
        return outbox.backlog(ui.services.db), outbox.listing(ui.services.db, states, limit=1000)

    backlog, rows = await asyncio.to_thread(read)
    health = await asyncio.to_thread(ui.uplink_health) if ui.uplink_health is not None else None
    ctx: dict[str, object] = {"backlog": backlog, "rows": rows, "show": show, "health": health, "message": None,
                              "error": None}
    ctx.update(extra)
    return render(request, "admin/outbox.html", ctx, status_code=status_code)


@router.get("/outbox")
async def outbox_page(request: Request, ui: Ui, _user: Admin, show: str = "undelivered") -> Response:
    return await _page(request, ui, show)


@router.post("/outbox/{result_id}/retry")
async def retry(request: Request, ui: Ui, user: Admin, result_id: str) -> Response:
    try:
        await asyncio.to_thread(outbox.requeue, ui.services.db, result_id, ui.services.clock.utc_ns(), user.name)
    except (LookupError, ValueError) as err:
        raise ServiceError(str(err)) from err
    return await _page(request, ui, "undelivered", message=result_id)
