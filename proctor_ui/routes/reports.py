"""The CPR report (心肺复苏报告) and the welding traces (焊接参数曲线) of an attempt, as pages and JSON.

Any signed-in user may read them: examiners explain a CPR or weld deduction with them, proctors and
the site's administrator look at them on review; nobody acts here. The data are built by
station.cpr_report / station.weld_report from the stored timeline and the rubric's bands (so a
running item shows what was stored so far); the page embeds them as JSON that static/charts.js
draws with ECharts. An attempt without a CPR (or weld) item answers 404.

| method | path | who |
|---|---|---|
| GET | /attempt/{attempt_id}/cpr | any signed-in user |
| GET | /attempt/{attempt_id}/cpr.json | any signed-in user |
| GET | /attempt/{attempt_id}/weld | any signed-in user |
| GET | /attempt/{attempt_id}/weld.json | any signed-in user |
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse

from proctor_ui.deps import Ui, Viewer
from proctor_ui.templating import render
from station.cpr_report import ReportNotFound, cpr_report
from station.services import StationServices
from station.weld_report import weld_report

router = APIRouter()

Builder = Callable[[StationServices, str], dict[str, Any]]


async def _built(build: Builder, services: StationServices, attempt_id: str) -> dict[str, Any]:
    """The report, built off the event loop (it reads the database); 404 when there is none."""
    try:
        return await asyncio.to_thread(build, services, attempt_id)
    except ReportNotFound as err:
        raise HTTPException(404, str(err)) from None


@router.get("/attempt/{attempt_id}/cpr", response_class=HTMLResponse, include_in_schema=False)
async def cpr_page(request: Request, attempt_id: str, user: Viewer, ui: Ui) -> HTMLResponse:
    return render(request, "report_cpr.html", {"report": await _built(cpr_report, ui.services, attempt_id)})


@router.get("/attempt/{attempt_id}/cpr.json")
async def cpr_json(attempt_id: str, user: Viewer, ui: Ui) -> dict[str, Any]:
    """Per compression (depth, rate, recoil, hand position), per breath and per set, with the
    summary figures and the bands of the rubric they were graded by."""
    return await _built(cpr_report, ui.services, attempt_id)


@router.get("/attempt/{attempt_id}/weld", response_class=HTMLResponse, include_in_schema=False)
async def weld_page(request: Request, attempt_id: str, user: Viewer, ui: Ui) -> HTMLResponse:
    return render(request, "report_weld.html", {"report": await _built(weld_report, ui.services, attempt_id)})


@router.get("/attempt/{attempt_id}/weld.json")
async def weld_json(attempt_id: str, user: Viewer, ui: Ui) -> dict[str, Any]:
    """Each banded weld parameter's trace with its rubric band and the time outside it, and the
    other numeric weld signals' traces."""
    return await _built(weld_report, ui.services, attempt_id)
