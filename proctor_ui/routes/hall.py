"""The hall (考场): a tile per station for every signed-in role, and the SSE stream that keeps it live.

`GET /` renders every tile server-side (the first paint shows the truth even before any script
runs); static/hall.js then applies the `state` events of `GET /events`. `GET /events` is the
station's event stream for browsers (sse-starlette), per the SSE contract:

- `state`    one station's snapshot (proctor_ui.hall_snapshot), at connect and on each change;
- `timeline` item steps, findings and discipline incidents as they happen;
- `sample`   with `samples=1` only: device readings, each signal at most 5 per second;
- `alarm`    alarms raised or cleared (site-wide ones at connect too).

`station=A01` limits the stream to one station (site-wide alarms still come).

In a hall split over boxes (docs/boxes.md) the page and the stream also carry the stations the
other boxes run, built from their live messages (proctor_ui.hall_peers), marked with their box.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse
from sse_starlette import EventSourceResponse

from proctor_ui.deps import Ui, Viewer
from proctor_ui.hall_state import HallFeed
from proctor_ui.templating import render

router = APIRouter()

PING_S = 15
"""A comment line this often keeps proxies and the browser from closing an idle stream."""


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def hall(request: Request, user: Viewer, ui: Ui) -> HTMLResponse:
    feed = HallFeed.of(ui)
    await feed.start()
    site = ui.services.config.whole_site  # in a hall split over boxes, the other boxes' stations too
    snaps = await feed.current([st.id for st in site.stations])
    return render(request, "hall.html", {"tiles": snaps, "site_alarms": feed.active_alarms(None),
                                         "live": ui.live is not None,
                                         "cameras_of": {st.id: st.cameras for st in site.stations}})


@router.get("/events", include_in_schema=False)
async def events(request: Request, user: Viewer, ui: Ui, station: str | None = None,
                 samples: int = 0) -> EventSourceResponse:
    known = [st.id for st in ui.services.config.whole_site.stations]
    if station is not None and station not in known:
        raise HTTPException(404, f"no station {station} at this site (stations: {', '.join(known)})")
    feed = HallFeed.of(ui)

    async def stream() -> AsyncIterator[dict[str, Any]]:
        async with feed.watch(station, bool(samples)) as watch:
            for alarm in feed.active_alarms(None):
                yield _event("alarm", alarm)
            for snap in await feed.current([station] if station else known):
                yield _event("state", snap)
            async for name, data in watch:
                yield _event(name, data)

    return EventSourceResponse(stream(), ping=PING_S, headers={"Cache-Control": "no-store",
                                                               "X-Accel-Buffering": "no"})


def _event(name: str, data: dict[str, Any]) -> dict[str, Any]:
    return {"event": name, "data": json.dumps(data, ensure_ascii=False, separators=(",", ":"))}
