"""The live video routes over real HTTP and WebSocket against simulated cameras on real sockets:
multipart MJPEG of the sub-stream and the main stream, the latest JPEG, fMP4 over a WebSocket (the
MIME type, then an init segment, then fragments), 404 for an unknown camera, 503 without a live
hub, and no video for someone not signed in."""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from devices.camera.contract import CameraSource
from devices.camera.live_hub import LiveHub
from hardware_sim.camera import SimCamera
from hardware_sim.rtsp_camera import SimRtspCamera
from proctor_ui.app import create_app
from proctor_ui.context import UiContext
from proctor_ui.server import serving
from proctor_ui.ws_direct import DirectSocket
from tests.sse_kit import sign_in
from tests.ui.conftest import PASSWORD, ui_ctx

__all__ = ["ui_ctx"]  # the UI tests' fixture: the example site with its users

pytestmark = pytest.mark.slow


@asynccontextmanager
async def live_ui(ctx: UiContext) -> AsyncIterator[tuple[str, httpx.AsyncClient, str]]:
    """A01/overview as the simulator makes it (H.264 main over RTSP, MJPEG sub over HTTP), a live hub
    over it, and the UI serving it; yields (url, client, signed-in cookie)."""
    async with SimCamera("A01", "overview", sub_fps=10) as mjpeg_cam, \
            SimRtspCamera("A01", "overview", size=(640, 360), fps=10) as rtsp_cam:
        hub = LiveHub([CameraSource("A01", "overview", rtsp_cam.url)], {("A01", "overview"): mjpeg_cam.sub_url},
                      linger_s=0.5, stall_s=3.0, connect_timeout_s=3.0, backoff_initial_s=0.1, backoff_max_s=0.5)
        ctx.live = hub
        try:
            async with hub, serving(create_app(ctx), "127.0.0.1", 0) as url, \
                    httpx.AsyncClient(base_url=url, timeout=10) as client:
                yield url, client, await sign_in(client, "proc1", PASSWORD)
        finally:
            ctx.live = None


async def _jpeg_parts(client: httpx.AsyncClient, cookie: str, path: str, n: int) -> list[bytes]:
    got: list[bytes] = []
    async with asyncio.timeout(15), client.stream("GET", path, headers={"cookie": cookie}) as r:
        assert r.status_code == 200, await r.aread()
        assert r.headers["content-type"].startswith("multipart/x-mixed-replace")
        body = b""
        async for chunk in r.aiter_bytes():
            body += chunk
            while (start := body.find(b"\xff\xd8")) >= 0 and (end := body.find(b"\xff\xd9", start)) >= 0:
                got.append(body[start:end + 2])
                body = body[end + 2:]
            if len(got) >= n:
                return got
    return got


async def test_mjpeg_jpeg_and_fmp4_from_a_simulated_camera(ui_ctx: UiContext) -> None:
    async with live_ui(ui_ctx) as (url, client, cookie):
        tiles = await _jpeg_parts(client, cookie, "/live/A01/overview.mjpeg", 3)
        assert len(tiles) == 3
        still = await client.get("/live/A01/overview.jpg", headers={"cookie": cookie})
        assert still.status_code == 200 and still.headers["content-type"] == "image/jpeg"
        assert still.content.startswith(b"\xff\xd8")
        ws_url = url.replace("http://", "ws://") + "/live/A01/overview/fmp4"
        async with asyncio.timeout(20), connect(ws_url, additional_headers={"cookie": cookie}) as ws:
            mime = await ws.recv()
            assert isinstance(mime, str) and mime.startswith('video/mp4; codecs="avc1.')
            init = await ws.recv()
            assert isinstance(init, bytes) and init[4:8] == b"ftyp"
            fragment = await ws.recv()
            assert isinstance(fragment, bytes) and fragment[4:8] in (b"moof", b"styp")
        tile_url = url.replace("http://", "ws://") + "/live/A01/overview/jpeg"
        async with asyncio.timeout(20), connect(tile_url, additional_headers={"cookie": cookie}) as ws:
            frames = [await ws.recv() for _ in range(3)]
        assert all(isinstance(f, bytes) and f.startswith(b"\xff\xd8") for f in frames), "hall tiles get JPEGs"
        assert len({bytes(f) for f in frames}) == 3, "each message is a new picture"
        stats = ui_ctx.live.stats()["A01/overview"] if ui_ctx.live else None
        assert stats is not None and stats.mjpeg is not None and stats.mjpeg.upstream_opens == 1, \
            "the multipart tile, the still and the WebSocket tile share one camera connection"


async def test_unknown_camera_no_hub_and_no_session(ui_ctx: UiContext) -> None:
    async with live_ui(ui_ctx) as (url, client, cookie):
        assert (await client.get("/live/A01/nope.jpg", headers={"cookie": cookie})).status_code == 404
        assert (await client.get("/live/Z99/overview.mjpeg", headers={"cookie": cookie})).status_code == 404
        assert (await client.get("/live/A01/overview.jpg")).status_code == 401
        ws_url = url.replace("http://", "ws://")
        for path, cookie_given in (("/live/A01/nope/fmp4", cookie), ("/live/A01/overview/fmp4", "")):
            with pytest.raises(InvalidStatus):
                async with connect(ws_url + path, additional_headers={"cookie": cookie_given}):
                    pass
    async with serving(create_app(ui_ctx), "127.0.0.1", 0) as url, httpx.AsyncClient(base_url=url) as client:
        cookie = await sign_in(client, "exam1", PASSWORD)
        r = await client.get("/live/A01/overview.mjpeg", headers={"cookie": cookie})
        assert r.status_code == 503 and "no live video" in r.json()["detail"]


async def test_station_viewers_get_a_stream_that_plays_whether_frames_go_direct_or_queued(
        ui_ctx: UiContext, tmp_path: Path) -> None:
    """Two station-page viewers of one camera: most fragments are written straight to their sockets
    (ws_direct), the init segment and the MIME type through ASGI; what each receives must be in
    order and play from its first keyframe (ffprobe decodes every frame)."""
    direct_before = DirectSocket.frames_written
    async with live_ui(ui_ctx) as (url, _client, cookie):
        ws_url = url.replace("http://", "ws://") + "/live/A01/overview/fmp4"
        async with asyncio.timeout(30), connect(ws_url, additional_headers={"cookie": cookie}) as a, \
                connect(ws_url, additional_headers={"cookie": cookie}) as b:
            for n, ws in enumerate((a, b)):
                assert isinstance(await ws.recv(), str), "the MIME type comes first"
                data = b"".join([bytes(m) for m in [await ws.recv() for _ in range(31)] if isinstance(m, bytes)])
                clip = tmp_path / f"viewer{n}.mp4"
                clip.write_bytes(data)
                assert await asyncio.to_thread(_frames_and_first_key, clip) == (30, True)
    assert DirectSocket.frames_written > direct_before, "fragments should mostly skip the relay task"


def _frames_and_first_key(clip: Path) -> tuple[int, bool]:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-count_frames", "-show_entries",
         "stream=nb_read_frames:frame=key_frame", "-of", "json", str(clip)],
        check=True, capture_output=True, text=True, timeout=30).stdout
    probe = json.loads(out)
    return int(probe["streams"][0]["nb_read_frames"]), probe["frames"][0]["key_frame"] == 1
