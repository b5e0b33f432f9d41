"""Evidence media for the review and station pages: a segment as MP4, and the check-in pictures.

Any signed-in user may watch the evidence (proctors and examiners review it; the province's copy is
the export bundle). `/evidence/{segment_id}.mp4` is the stored MKV segment copied into MP4 without
re-encoding (station.evidence_clip, cached); FileResponse answers Range requests, so the player
seeks without fetching the whole file. Included by proctor_ui.routes.review.
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse

from proctor_ui.deps import Viewer
from proctor_ui.review_view import attempt_of
from station.evidence_clip import ClipNotFound, Clips, checkin_pictures

router = APIRouter()


def clips(request: Request) -> Clips:
    """The app's clip cache, made on first use (one per app, over the UI's data directory)."""
    found: Clips | None = getattr(request.app.state, "clips", None)
    if found is None:
        ui = request.app.state.ui
        found = request.app.state.clips = Clips(ui.services.db, ui.data_dir)
    return found


@router.get("/evidence/{segment_id}.mp4", response_class=FileResponse)
async def evidence_mp4(request: Request, segment_id: str, user: Viewer) -> FileResponse:
    try:
        path = await asyncio.to_thread(clips(request).mp4_of, segment_id)
    except ClipNotFound as err:
        raise HTTPException(404, str(err)) from None
    return FileResponse(path, media_type="video/mp4", headers={"Cache-Control": "private, max-age=3600"})


@router.get("/attempt/{attempt_id}/picture/{which}.jpg", response_class=FileResponse)
async def picture(request: Request, attempt_id: str, which: str, user: Viewer) -> FileResponse:
    """`photo`: the registered photo; a camera id: that camera's still at check-in."""
    ui = request.app.state.ui
    attempt_of(ui, attempt_id)
    pics = await asyncio.to_thread(checkin_pictures, ui.services.db, ui.data_dir, attempt_id)
    found = pics.photo if which == "photo" else next((p for p in pics.stills if p.label == which), None)
    if found is None:
        raise HTTPException(404, f"attempt {attempt_id} has no picture {which}")
    return FileResponse(found.path, media_type="image/jpeg", headers={"Cache-Control": "private, no-store"})
