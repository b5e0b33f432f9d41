"""Results (成绩): search, the signed result document, and its evidence bundle as a .tar download.

Every signed-in role reads results (examiners and proctors too, read-only); the bundle, with the
attempt's video, goes to administrators and examiners. The bundle is `examstation export`'s
(station.evidence_bundle), written to a temporary directory and sent as one tar file.
"""

from __future__ import annotations

import asyncio
import shutil
import tarfile
import tempfile
from datetime import date
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, Response
from starlette.background import BackgroundTask

from proctor_ui.deps import Ui, Viewer, role
from proctor_ui.templating import render
from station import maintenance
from station.evidence_bundle import export_bundle
from station.users import UserInfo

router = APIRouter()


@router.get("/results")
async def results(request: Request, ui: Ui, _user: Viewer, q: str = "", station: str = "",
                  day: str = "") -> Response:
    errors: dict[str, str] = {}
    wanted: date | None = None
    if day.strip():
        try:
            wanted = date.fromisoformat(day.strip())
        except ValueError:
            errors["day"] = "日期格式应为 2025-06-01"
    known = [s.id for s in ui.services.config.stations]
    if station and station not in known:
        errors["station"] = "没有这个考位"
    rows = [] if errors else await asyncio.to_thread(maintenance.find_results, ui.services.db, q, station, wanted)
    return render(request, "admin/results.html", {"rows": rows, "q": q, "station": station, "day": day,
                                                  "errors": errors}, status_code=422 if errors else 200)


@router.get("/results/{result_id}")
async def result(request: Request, ui: Ui, _user: Viewer, result_id: str) -> Response:
    doc = await asyncio.to_thread(maintenance.result_document, ui.services.db, result_id)
    return render(request, "admin/result.html", {"doc": doc, "result_id": result_id})


@router.get("/results/{result_id}/bundle.tar")
async def bundle(ui: Ui, _user: Annotated[UserInfo, Depends(role("admin", "examiner"))],
                 result_id: str) -> Response:
    """The attempt's evidence bundle (`examstation verify` checks it after unpacking)."""
    doc = await asyncio.to_thread(maintenance.result_document, ui.services.db, result_id)
    attempt_id = str(doc["attempt_id"])
    folder = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="examstation-bundle-"))

    def build() -> Path:
        export_bundle(ui.data_dir, attempt_id, folder / attempt_id)
        out = folder / f"{attempt_id}.tar"
        with tarfile.open(out, "w") as tar:
            tar.add(folder / attempt_id, arcname=attempt_id)
        return out

    try:
        tar = await asyncio.to_thread(build)
    except BaseException:
        await asyncio.to_thread(shutil.rmtree, folder, True)
        raise
    return FileResponse(tar, media_type="application/x-tar", filename=f"evidence-{attempt_id}.tar",
                        background=BackgroundTask(shutil.rmtree, folder, True))
