"""The latest site acceptance check (验收检查): what `examstation site-check` found, for the site.

Read by the site administrator, who runs the check and fixes what failed, and by examiners, who
should know before the first candidate whether their station's devices and cameras passed this
morning. Proctors do not need it. The page shows the report's sections with the UI's language;
`/site-check/report.html` serves the printable single-file report (Chinese, as printed and
signed for the province).
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, Response

from proctor_ui.deps import Ui, role
from proctor_ui.i18n import gettext as _
from proctor_ui.templating import render
from station.site_check.html_report import render_html, report_view
from station.site_check.report import latest_report
from station.users import UserInfo

router = APIRouter()
Reader = Annotated[UserInfo, Depends(role("admin", "examiner"))]


@router.get("/site-check")
async def site_check(request: Request, ui: Ui, _user: Reader) -> Response:
    report = await asyncio.to_thread(latest_report, ui.data_dir)
    view = None if report is None else await asyncio.to_thread(report_view, report)
    return render(request, "site_check.html", {"view": view})


@router.get("/site-check/report.html")
async def printable(ui: Ui, _user: Reader) -> Response:
    report = await asyncio.to_thread(latest_report, ui.data_dir)
    if report is None:
        raise HTTPException(404, _("还没有验收检查报告"))
    html = await asyncio.to_thread(render_html, report)
    return HTMLResponse(html, headers={"Cache-Control": "no-store"})
