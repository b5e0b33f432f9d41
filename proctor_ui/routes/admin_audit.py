"""The audit log (审计): the latest entries, page by page, and verifying the whole record.

"Verify" runs station.audit.verify (every chain, result and score sheet cross-checked) and shows
its verdict; `examstation audit verify` does more (signatures against a registered key, re-scores).
"""

from __future__ import annotations

import asyncio
import json

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from proctor_ui.deps import Admin, Ui
from proctor_ui.templating import render
from station import audit, maintenance
from station.result_document import iso_utc

router = APIRouter()
PAGE = 50


async def _page(request: Request, ui: Ui, before: int | None, verdict: audit.VerifyReport | None = None) -> Response:
    entries = await asyncio.to_thread(maintenance.audit_page, ui.services.db, before, PAGE)
    older = entries[-1].seq if len(entries) == PAGE else None
    rows = [(e, iso_utc(e.utc_ns), json.dumps(e.payload, ensure_ascii=False, sort_keys=True)) for e in entries]
    return render(request, "admin/audit.html", {"rows": rows, "older": older, "verdict": verdict})


@router.get("/audit")
async def audit_log(request: Request, ui: Ui, _user: Admin,
                    before: int | None = Query(None, ge=1, le=2**62)) -> Response:
    return await _page(request, ui, before)


@router.post("/audit/verify")
async def verify(request: Request, ui: Ui, _user: Admin) -> Response:
    report = await asyncio.to_thread(audit.verify, ui.services.db)
    return await _page(request, ui, None, report)
