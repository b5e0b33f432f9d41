"""Live camera views for any signed-in user, relayed by the live hub (one camera connection each,
however many people watch; devices/camera/live_hub.py).

- `GET /live/{station}/{camera}.mjpeg?stream=sub|main`: multipart MJPEG for an `<img>` (hall tiles
  use the sub-stream; `main` is the fallback player where the browser cannot play H.264).
- `GET /live/{station}/{camera}.jpg`: the newest JPEG (a still for a report or a slow link).
- WebSocket `/live/{station}/{camera}/jpeg`: hall tiles. The MJPEG sub-stream's JPEGs, one binary
  message each, as the camera sent them. Why not multipart MJPEG for tiles: a browser opens at most
  six HTTP/1.1 connections to one server, so six streaming tiles left none for the hall's SSE
  stream or for following a link; WebSockets are not counted in that pool.
- WebSocket `/live/{station}/{camera}/fmp4`: the H.264 main stream as fragmented MP4 for Media
  Source Extensions (static/player.js): a text frame with the MIME type (codec string) before each
  init segment, binary frames with the fMP4 bytes, and a text frame "lost: ..." when the camera
  drops (the stream resumes with a new init segment after the reconnect).

An unknown station or camera is 404 (WebSocket: closed with 4404 before accepting); without a live
hub (no camera watched by this process) 503 says so (WebSocket: 4503); a camera without the stream
asked for is 409 naming what to configure (WebSocket: 4409).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, WebSocket, WebSocketDisconnect
from fastapi.responses import Response, StreamingResponse

from devices.camera.live_fmp4 import Fmp4Subscription
from devices.camera.live_hub import MJPEG_CONTENT_TYPE, JpegView, LiveHub, LiveStreamLost, LiveViewUnavailable
from proctor_ui.context import UiContext
from proctor_ui.deps import Ui, Viewer
from proctor_ui.ws_direct import DirectSocket

router = APIRouter()

NO_HUB = ("no live video in this process: the controller was started without cameras or with live views "
          "off; restart it with the site's cameras configured")
SNAPSHOT_WAIT_S = 5.0
NO_STORE = {"Cache-Control": "no-store"}


def _known(ui: UiContext, station: str, camera: str) -> str | None:
    """Why (station, camera) is not a camera of this site, or None."""
    st = next((s for s in ui.services.config.stations if s.id == station), None)
    if st is None:
        return f"no station {station} at this site"
    if all(c.id != camera for c in st.cameras):
        return f"station {station} has no camera {camera} (cameras: {', '.join(c.id for c in st.cameras)})"
    return None


def _hub(ui: UiContext, station: str, camera: str) -> LiveHub:
    why = _known(ui, station, camera)
    if why is not None:
        raise HTTPException(404, why)
    if ui.live is None:
        raise HTTPException(503, NO_HUB)
    return ui.live


@router.get("/live/{station}/{camera}.mjpeg", include_in_schema=False)
async def mjpeg(station: str, camera: str, user: Viewer, ui: Ui,
                stream: Literal["sub", "main"] = "sub") -> StreamingResponse:
    hub = _hub(ui, station, camera)
    try:
        view = hub.mjpeg_parts(station, camera, stream)
    except LiveViewUnavailable as err:
        raise HTTPException(409, str(err)) from err

    async def body() -> AsyncIterator[bytes]:
        async with view as parts:
            while True:
                try:
                    async for part in parts:
                        yield part
                    return  # the hub closed
                except LiveStreamLost:
                    continue  # the tile freezes on its last frame until the camera is back

    return StreamingResponse(body(), media_type=MJPEG_CONTENT_TYPE, headers=NO_STORE)


@router.get("/live/{station}/{camera}.jpg", include_in_schema=False)
async def still(station: str, camera: str, user: Viewer, ui: Ui) -> Response:
    hub = _hub(ui, station, camera)
    jpeg = hub.latest_jpeg(station, camera)
    if jpeg is None:
        try:
            jpeg = await _one_frame(hub, station, camera)
        except LiveViewUnavailable as err:
            raise HTTPException(409, str(err)) from err
        except (TimeoutError, LiveStreamLost) as err:
            raise HTTPException(503, f"camera {station}/{camera} sent no picture within {SNAPSHOT_WAIT_S:.0f} s "
                                     f"({err or 'no frame'}); check its power and network cable") from err
    return Response(jpeg, media_type="image/jpeg", headers=NO_STORE)


async def _one_frame(hub: LiveHub, station: str, camera: str) -> bytes:
    async with asyncio.timeout(SNAPSHOT_WAIT_S), hub.mjpeg(station, camera) as frames:
        async for jpeg in frames:
            return jpeg
    raise TimeoutError("the live hub closed")


async def _ws_hub(ws: WebSocket, station: str, camera: str) -> LiveHub | None:
    """The live hub for a signed-in viewer of a known camera; else the socket is closed with why."""
    ui: UiContext = ws.app.state.ui
    if getattr(ws.state, "session", None) is None:
        await ws.close(code=1008, reason="sign in first")
        return None
    why = _known(ui, station, camera)
    if why is not None:
        await ws.close(code=4404, reason=why[:120])
        return None
    if ui.live is None:
        await ws.close(code=4503, reason=NO_HUB[:120])
        return None
    return ui.live


@router.websocket("/live/{station}/{camera}/jpeg")
async def jpeg_frames(ws: WebSocket, station: str, camera: str) -> None:
    hub = await _ws_hub(ws, station, camera)
    if hub is None:
        return
    try:
        view = hub.mjpeg(station, camera)
    except LiveViewUnavailable as err:
        await ws.close(code=4409, reason=str(err)[:120])
        return
    await ws.accept()
    await _serve(ws, view, _relay_jpeg)


async def _relay_jpeg(ws: WebSocket, frames: JpegView) -> None:
    direct = DirectSocket.of(ws.scope)
    if direct is not None:  # most frames go from the hub straight to the socket; the rest come here
        frames.subscription.direct = lambda frame: direct.try_binary(frame.jpeg)
    while True:
        try:
            async for jpeg in frames:
                await _send(ws, direct, jpeg)
            return
        except LiveStreamLost:
            continue  # the tile keeps its last picture until the camera is back


async def _send(ws: WebSocket, direct: DirectSocket | None, message: bytes | str) -> None:
    """Send through ASGI; meanwhile no frame may go direct, or it would overtake this message."""
    if direct is not None:
        direct.busy = True
    try:
        await (ws.send_bytes(message) if isinstance(message, bytes) else ws.send_text(message))
    finally:
        if direct is not None:
            direct.busy = False


@router.websocket("/live/{station}/{camera}/fmp4")
async def fmp4(ws: WebSocket, station: str, camera: str) -> None:
    hub = await _ws_hub(ws, station, camera)
    if hub is None:
        return
    try:
        sub = hub.fmp4(station, camera)
    except LiveViewUnavailable as err:
        await ws.close(code=4409, reason=str(err)[:120])
        return
    await ws.accept()
    await _serve(ws, sub, _relay)


Relay = Callable[[WebSocket, Any], Coroutine[Any, Any, None]]


async def _serve(ws: WebSocket, subscription: Any, relay_fn: Relay) -> None:
    """Relay a live subscription to an accepted socket until either side ends."""
    closed = asyncio.create_task(_until_closed(ws))
    try:
        async with subscription as chunks:
            relay = asyncio.create_task(relay_fn(ws, chunks))
            await asyncio.wait({relay, closed}, return_when=asyncio.FIRST_COMPLETED)
            relay.cancel()
            with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, RuntimeError):
                await relay
    finally:
        closed.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await closed
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):
            await ws.close()


async def _relay(ws: WebSocket, chunks: Fmp4Subscription) -> None:
    direct = DirectSocket.of(ws.scope)
    if direct is not None:  # media fragments mostly go straight to the socket; init and losses come here
        chunks.direct = lambda chunk: direct.try_binary(chunk.data)
    while True:
        try:
            async for chunk in chunks:
                if chunk.kind == "init":
                    await _send(ws, direct, chunk.mime_type)  # the browser (re)creates its SourceBuffer
                await _send(ws, direct, chunk.data)
            return
        except LiveStreamLost as lost:
            await _send(ws, direct, f"lost: {lost}")


async def _until_closed(ws: WebSocket) -> None:
    """The viewer says nothing; this only notices it leaving, so the relay stops at once."""
    with contextlib.suppress(WebSocketDisconnect):
        while True:
            msg = await ws.receive()
            if msg["type"] == "websocket.disconnect":
                return
