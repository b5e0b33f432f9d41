"""The station page's fMP4 of a recorded camera comes from the recorder's own connection.

Against a simulated RTSP camera, a real Recorder writing segments, and the LiveHub given the
recorder's readers: the camera has one RTSP client for recording and live view together, what the
viewers get plays (ffprobe), the recording is unaffected, a camera drop reaches the viewer and a
new init segment follows the recorder's reconnect, and without a recording the view opens its own.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from devices.camera.contract import CameraSource
from devices.camera.live_fmp4_box import Fmp4Chunk
from devices.camera.live_hub import LiveHub, LiveStreamLost
from devices.camera.recorder import Recorder
from hardware_sim.rtsp_camera import SimRtspCamera
from tests.integration.waiting import wait_for
from tests.recorder_kit import KeepingListener

SIZE = (640, 360)
FPS = 10


def _hub(source: CameraSource, recorder: Recorder | None) -> LiveHub:
    return LiveHub([source], linger_s=0.5, backoff_initial_s=0.1, backoff_max_s=0.4, stall_s=2.0,
                   connect_timeout_s=2.0, readers=recorder.reader if recorder is not None else None)


async def _chunks(sub: AsyncIterator[Fmp4Chunk], n: int, timeout_s: float = 10.0) -> list[Fmp4Chunk]:
    got: list[Fmp4Chunk] = []
    async with asyncio.timeout(timeout_s):
        async for chunk in sub:
            got.append(chunk)
            if len(got) == n:
                break
    return got


def _frames(path: Path) -> tuple[int, tuple[int, int], bool]:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-count_frames", "-show_entries",
         "stream=width,height,nb_read_frames:frame=key_frame", "-of", "json", str(path)],
        check=True, capture_output=True, text=True, timeout=30).stdout
    data = json.loads(out)
    stream = data["streams"][0]
    return int(stream["nb_read_frames"]), (stream["width"], stream["height"]), data["frames"][0]["key_frame"] == 1


async def test_a_recorded_camera_has_one_rtsp_client_for_recording_and_live_view(tmp_path: Path) -> None:
    async with SimRtspCamera("A01", "overview", size=SIZE, fps=FPS) as cam:
        source = CameraSource("A01", "overview", cam.url)
        listener = KeepingListener()
        recorder = Recorder([source], tmp_path / "evidence", listener, segment_s=2.0)
        await asyncio.to_thread(recorder.start)
        try:
            await wait_for(lambda: cam.clients == 1, 5.0, "the recorder to connect")
            async with _hub(source, recorder) as hub, hub.fmp4("A01", "overview") as a, \
                    hub.fmp4("A01", "overview") as b:
                got = await _chunks(a, 2 * FPS + 1)
                assert cam.clients == 1, "the live view must reuse the recorder's connection"
                assert got[0].kind == "init" and got[1].keyframe
                assert [c.data for c in await _chunks(b, len(got))] == [c.data for c in got], "same bytes to all"
                clip = tmp_path / "live.mp4"
                clip.write_bytes(b"".join(c.data for c in got))
                frames, size, first_key = _frames(clip)
                assert (frames, size, first_key) == (2 * FPS, SIZE, True)
                stats = hub.stats()["A01/overview"].fmp4
                assert stats is not None and stats.upstream_opens == 1 and stats.frames >= 2 * FPS

                await cam.drop_clients()  # the recorder reconnects; the viewer is told, then gets a new init
                with pytest.raises(LiveStreamLost, match="A01/overview"):
                    await _chunks(a, 100)
                again = await _chunks(a, 3)
                assert again[0].kind == "init" and again[1].keyframe
                assert cam.clients == 1
        finally:
            await asyncio.to_thread(recorder.stop)
    segments = listener.segments()
    assert segments and sum(s.frames for s in segments) >= 2 * FPS, "recording went on under the live view"


async def test_without_a_recording_the_live_view_opens_its_own_connection() -> None:
    async with SimRtspCamera("A01", "overview", size=SIZE, fps=FPS) as cam:
        source = CameraSource("A01", "overview", cam.url)
        recorder = Recorder([source], Path("/nonexistent-never-started"), KeepingListener(), segment_s=2.0)
        async with _hub(source, recorder) as hub, hub.fmp4("A01", "overview") as sub:
            got = await _chunks(sub, 4)
            assert got[0].kind == "init" and got[1].keyframe
            assert cam.clients == 1
        await wait_for(lambda: cam.clients == 0, 3.0, "the live view's own connection to close")
