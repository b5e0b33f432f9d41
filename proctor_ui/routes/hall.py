"""The hall (考场): a tile per station (being written: this placeholder lists the stations)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from proctor_ui.deps import Viewer
from proctor_ui.templating import render

router = APIRouter()


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def hall(request: Request, user: Viewer) -> HTMLResponse:
    return render(request, "hall.html")
