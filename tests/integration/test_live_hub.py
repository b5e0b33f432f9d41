"""The live hub against simulated cameras on real sockets: one upstream per camera stream whatever
the number of viewers, the same bytes to everyone, no work without viewers, fMP4 that Debian's
ffprobe and PyAV read, and a clear end for viewers when a camera drops."""

from __future__ import annotations

import ast
import asyncio
import hashlib
import json
import subprocess
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import av
import pytest

from devices.camera.contract import CameraSource
from devices.camera.live_fmp4_box import Fmp4Chunk, Fmp4Splitter, iter_boxes
from devices.camera.live_hub import LiveHub, LiveStreamLost, LiveViewUnavailable
from devices.errors import DeviceConfigError
from hardware_sim.camera import SimCamera
from hardware_sim.rtsp_camera import SimRtspCamera
from tests.integration.waiting import wait_for
from tests.recorder_kit import gst_rtsp_server

SUB_FPS = 20
RTSP_SIZE = (640, 360)
RTSP_FPS = 10
LINGER_S = 0.5


def _hub(sources: list[CameraSource], sub_urls: dict[tuple[str, str], str] | None = None, *, stall_s: float = 2.0,
         snapshot_max_age_s: float = 5.0, fmp4_queue_fragments: int = 50) -> LiveHub:
    """A hub with short linger and backoff, so each test takes seconds."""
    return LiveHub(sources, sub_urls, linger_s=LINGER_S, backoff_initial_s=0.1, backoff_max_s=0.4, stall_s=stall_s,
                   connect_timeout_s=2.0, snapshot_max_age_s=snapshot_max_age_s,
                   fmp4_queue_fragments=fmp4_queue_fragments)


def _digest(jpeg: bytes) -> str:
    return hashlib.sha256(jpeg).hexdigest()[:16]


async def _take(frames: AsyncIterator[bytes], n: int, timeout_s: float = 10.0) -> list[bytes]:
    got: list[bytes] = []
    async with asyncio.timeout(timeout_s):
        async for jpeg in frames:
            got.append(jpeg)
            if len(got) == n:
                break
    return got


async def _chunks(sub: AsyncIterator[Fmp4Chunk], n: int, timeout_s: float = 10.0) -> list[Fmp4Chunk]:
    got: list[Fmp4Chunk] = []
    async with asyncio.timeout(timeout_s):
        async for chunk in sub:
            got.append(chunk)
            if len(got) == n:
                break
    return got


def _ffprobe(path: Path) -> dict[str, object]:
    """Debian's ffprobe on a file: the video stream's codec, size and decoded frame count, and the
    first frame's key flag and picture type."""
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-count_frames", "-show_entries",
         "stream=codec_name,width,height,nb_read_frames:frame=key_frame,pict_type", "-of", "json", str(path)],
        check=True, capture_output=True, text=True, timeout=30).stdout
    data = json.loads(out)
    stream, frames = data["streams"][0], data["frames"]
    return {"codec": stream["codec_name"], "size": (stream["width"], stream["height"]),
            "frames": int(stream["nb_read_frames"]), "first_key": frames[0]["key_frame"] == 1,
            "first_type": frames[0]["pict_type"]}


def _box_types(data: bytes) -> list[bytes]:
    return [kind for kind, _, _ in iter_boxes(data)]


# -- MJPEG tiles -------------------------------------------------------------------------------

async def test_ten_mjpeg_viewers_share_one_upstream_and_a_stalled_one_slows_nobody() -> None:
    async with SimCamera("A01", "overview", sub_fps=SUB_FPS) as cam, _hub(
            [CameraSource("A01", "overview", cam.url)], {("A01", "overview"): cam.sub_url},
            snapshot_max_age_s=1.0) as hub:
        assert hub.latest_jpeg("A01", "overview") is None, "nothing watched yet: no snapshot"
        views = [hub.mjpeg("A01", "overview") for _ in range(10)]
        readers, stalled = views[:9], views[9]
        start = time.monotonic()
        got = await asyncio.gather(*(_take(view, 2 * SUB_FPS) for view in readers))
        took_s = time.monotonic() - start

        assert cam.viewers == {"main": 0, "sub": 1}, "10 viewers must cost the camera one connection"
        stats = hub.stats()["A01/overview"].mjpeg
        assert stats is not None and stats.upstream_opens == 1 and stats.viewers == 10
        assert all(len(frames) == 2 * SUB_FPS for frames in got)
        assert len({tuple(map(_digest, frames)) for frames in got}) == 1, "every viewer gets the same frames"
        # 40 frames at 20 fps: the readers kept the camera's pace although one viewer never reads.
        assert took_s < 2 * 2 * SUB_FPS / SUB_FPS, f"readers took {took_s:.2f} s for 2 s of frames"
        assert stats.viewer_drops >= 2 * SUB_FPS - 2, "the stalled viewer lost its old frames"
        held = {_digest(f) for f in await _take(stalled, 2, timeout_s=1.0)}  # the 2 newest when it stalled
        assert not held & {_digest(f) for f in got[0][:-2]}, "a stalled viewer keeps the newest frames, not the oldest"
        latest = hub.latest_jpeg("A01", "overview")
        assert latest is not None and latest.startswith(b"\xff\xd8")

        for view in views:
            await view.aclose()
        encoded = cam.frames_encoded["sub"]
        await wait_for(lambda: cam.viewers["sub"] == 0, 3.0, "the upstream to close after the linger")
        await asyncio.sleep(0.3)
        assert cam.frames_encoded["sub"] - encoded <= SUB_FPS, "no work without viewers"
        assert hub.stats()["A01/overview"].mjpeg.connected is False  # type: ignore[union-attr]
        await wait_for(lambda: hub.latest_jpeg("A01", "overview") is None, 2.0, "the snapshot to age out")


async def test_mjpeg_viewer_back_within_the_linger_reuses_the_connection() -> None:
    async with SimCamera("A01", "overview", sub_fps=SUB_FPS) as cam, _hub(
            [CameraSource("A01", "overview", cam.url)]) as hub:
        async with hub.mjpeg_parts("A01", "overview") as parts:  # no sub_url: the MJPEG main stream
            part = (await _take(parts, 1))[0]
        assert part.startswith(b"--examstation-live\r\nContent-Type: image/jpeg\r\nContent-Length: ")
        assert cam.viewers == {"main": 1, "sub": 0}
        async with hub.mjpeg("A01", "overview") as tile, hub.mjpeg("A01", "overview", stream="main") as page:
            await asyncio.gather(_take(tile, 3), _take(page, 3))
            assert cam.viewers == {"main": 1, "sub": 0}, "the tile and the station page share the main stream"
        stats = hub.stats()["A01/overview"]
        assert stats.mjpeg is not None and stats.mjpeg.upstream_opens == 1
        assert stats.views["mjpeg main"] == stats.mjpeg


async def test_mjpeg_viewers_are_told_when_the_camera_drops_and_resume_when_it_is_back() -> None:
    async with SimCamera("A01", "overview", sub_fps=SUB_FPS) as cam:
        port = cam.port
        async with _hub([CameraSource("A01", "overview", cam.url)], {("A01", "overview"): cam.sub_url}) as hub, \
                hub.mjpeg("A01", "overview") as frames:
            await _take(frames, 3)
            await cam.drop_clients()
            with pytest.raises(LiveStreamLost, match=r"camera A01/overview: .*closed.*reconnecting in"):
                await _take(frames, 100)
            await _take(frames, 3)  # iterating again resumes after the reconnect
            assert hub.stats()["A01/overview"].mjpeg.upstream_opens == 2  # type: ignore[union-attr]

            await cam.aclose()  # unplugged: the port now refuses
            with pytest.raises(LiveStreamLost, match=r"A01/overview"):
                await _take(frames, 100)
            with pytest.raises(LiveStreamLost, match=r"[Cc]onnect"):
                await _take(frames, 1)
            async with SimCamera("A01", "overview", port=port, sub_fps=SUB_FPS) as back:
                await _take(frames, 3)  # the hub retried while the viewer stayed
                assert back.viewers["sub"] == 1


async def test_a_viewer_that_does_not_read_through_an_outage_gets_one_loss_then_frames() -> None:
    async with SimCamera("A01", "overview", sub_fps=SUB_FPS) as cam:
        port = cam.port
        async with _hub([CameraSource("A01", "overview", cam.url)], {("A01", "overview"): cam.sub_url}) as hub, \
                hub.mjpeg("A01", "overview") as idle, hub.mjpeg("A01", "overview") as reader:
            await _take(reader, 3)
            await cam.aclose()
            for _ in range(3):  # closed, then refused on each retry
                with pytest.raises(LiveStreamLost):
                    await _take(reader, 100)
            async with SimCamera("A01", "overview", port=port, sub_fps=SUB_FPS):
                await _take(reader, 3)
                seen: list[str] = []
                while len(seen) < 5:
                    try:
                        await anext(idle)
                        seen.append("frame")
                    except LiveStreamLost:
                        seen.append("lost")
        # The frames it held from before the outage were pushed out by newer ones (2 kept, the newest);
        # the loss stays in place, once however many retries failed.
        assert seen == ["lost", "frame", "frame", "frame", "frame"]


async def test_a_frozen_camera_is_reported_after_stall_s() -> None:
    async with SimCamera("A01", "overview", sub_fps=SUB_FPS) as cam, _hub(
            [CameraSource("A01", "overview", cam.url)], {("A01", "overview"): cam.sub_url},
            stall_s=0.5) as hub, hub.mjpeg("A01", "overview") as frames:
        await _take(frames, 2)
        cam.freeze()
        with pytest.raises(LiveStreamLost, match=r"no frames for 0\.5 s"):
            await _take(frames, 100, timeout_s=3.0)
        cam.resume()
        await _take(frames, 2)


# -- fMP4 for MSE ------------------------------------------------------------------------------

async def test_fmp4_init_then_fragments_for_three_viewers_on_one_rtsp_client(tmp_path: Path) -> None:
    async with SimRtspCamera("A01", "overview", size=RTSP_SIZE, fps=RTSP_FPS) as cam, _hub(
            [CameraSource("A01", "overview", cam.url)]) as hub:
        subs = [hub.fmp4("A01", "overview") for _ in range(3)]
        first = await _chunks(subs[0], 2 * RTSP_FPS + 1)
        assert cam.clients == 1, "3 viewers must cost the camera one RTSP client"
        init, media = first[0], first[1:]
        assert init.kind == "init" and _box_types(init.data) == [b"ftyp", b"moov"]
        assert init.codec.startswith("avc1.") and len(init.codec) == 11
        assert hub.fmp4_codec("A01", "overview") == init.codec
        assert init.mime_type == f'video/mp4; codecs="{init.codec}"'
        assert all(c.kind == "media" and _box_types(c.data) == [b"moof", b"mdat"] for c in media)
        assert media[0].keyframe and sum(c.keyframe for c in media) >= 2  # a keyframe a second

        others = await asyncio.gather(*(_chunks(s, len(first)) for s in subs[1:]))
        assert all([c.data for c in other] == [c.data for c in first] for other in others), "same bytes to all"

        early = tmp_path / "early.mp4"
        early.write_bytes(b"".join(c.data for c in first))
        probe = _ffprobe(early)
        assert probe["codec"] == "h264" and probe["size"] == RTSP_SIZE
        assert probe["frames"] == len(media) and probe["first_key"]

        late = hub.fmp4("A01", "overview")  # joins mid-GOP: cached init, then the next keyframe
        joined = await _chunks(late, 6)
        assert joined[0].data == init.data and joined[1].keyframe and joined[1].kind == "media"
        late_file = tmp_path / "late.mp4"
        late_file.write_bytes(b"".join(c.data for c in joined))
        probe = _ffprobe(late_file)
        assert probe["first_key"] and probe["first_type"] == "I" and probe["frames"] == 5
        with av.open(str(late_file)) as container:
            frame = next(container.decode(video=0))
            assert frame.key_frame and (frame.width, frame.height) == RTSP_SIZE
        stats = hub.stats()["A01/overview"].fmp4
        assert stats is not None and stats.upstream_opens == 1 and stats.viewers == 4

        for sub in [*subs, late]:
            await sub.aclose()
        await wait_for(lambda: cam.clients == 0, 3.0, "the RTSP client to close after the linger")


async def test_fmp4_viewer_that_falls_behind_resumes_at_a_keyframe() -> None:
    async with SimRtspCamera("A01", "overview", size=RTSP_SIZE, fps=RTSP_FPS) as cam, _hub(
            [CameraSource("A01", "overview", cam.url)], fmp4_queue_fragments=4) as hub:
        async with hub.fmp4("A01", "overview") as slow, hub.fmp4("A01", "overview") as fast:
            await _chunks(fast, 2 * RTSP_FPS)  # 2 s: `slow` read nothing meanwhile
            assert slow.dropped > 0
            caught_up = await _chunks(slow, 3)
            assert caught_up[0].kind == "init" and caught_up[1].keyframe
        assert cam.clients == 1


async def test_fmp4_viewers_are_told_when_the_camera_drops_and_get_a_new_init_after() -> None:
    async with SimRtspCamera("A01", "overview", size=RTSP_SIZE, fps=RTSP_FPS) as cam, _hub(
            [CameraSource("A01", "overview", cam.url)]) as hub, hub.fmp4("A01", "overview") as sub:
        await _chunks(sub, 3)
        cam.refuse_connections(True)
        await cam.drop_clients()
        with pytest.raises(LiveStreamLost, match=r"camera A01/overview: .*reconnecting in"):
            await _chunks(sub, 100)
        with pytest.raises(LiveStreamLost, match=r"cannot connect"):
            await _chunks(sub, 1)
        cam.refuse_connections(False)
        again = await _chunks(sub, 2)
        assert again[0].kind == "init" and again[1].keyframe, "after a reconnect: a new init, then a keyframe"
        stats = hub.stats()["A01/overview"].fmp4
        assert stats is not None and stats.upstream_opens == 2 and stats.connect_failures >= 1
        assert cam.clients == 1


async def test_fmp4_from_gstreamer_rtsp_server(tmp_path: Path) -> None:
    """Interop: a server nobody here wrote (GStreamer's), 720p x264 with a keyframe a second."""
    with gst_rtsp_server(fps=RTSP_FPS) as url:
        async with _hub([CameraSource("A02", "overview", url)]) as hub, \
                hub.fmp4("A02", "overview") as sub:
            got = await _chunks(sub, RTSP_FPS + 1)
    assert got[0].kind == "init" and got[1].keyframe
    clip = tmp_path / "gst.mp4"
    clip.write_bytes(b"".join(c.data for c in got))
    probe = _ffprobe(clip)
    assert probe["codec"] == "h264" and probe["size"] == (1280, 720) and probe["frames"] == RTSP_FPS
    assert probe["first_key"]


async def test_closing_the_hub_ends_every_viewer_and_stops_its_threads() -> None:
    async with SimRtspCamera("A01", "overview", size=RTSP_SIZE, fps=RTSP_FPS) as rtsp, \
            SimCamera("A01", "tile", sub_fps=SUB_FPS) as mjpeg:
        hub = _hub([CameraSource("A01", "overview", rtsp.url), CameraSource("A01", "tile", mjpeg.url)])
        sub, tile = hub.fmp4("A01", "overview"), hub.mjpeg("A01", "tile")
        await _chunks(sub, 2)
        await _take(tile, 2)
        await hub.aclose()
        async with asyncio.timeout(1.0):  # what was queued is delivered, then iteration ends
            assert len([c async for c in sub]) <= 50
            assert len([f async for f in tile]) <= 2
        with pytest.raises(LiveViewUnavailable, match=r"closed"):
            hub.mjpeg("A01", "tile")
        await wait_for(lambda: rtsp.clients == 0 and mjpeg.viewers["main"] == 0, 2.0, "upstreams to close")


async def test_closing_the_hub_while_a_remux_thread_is_stuck_on_a_frozen_camera_joins_it() -> None:
    """Linger over (first cancel), then aclose (second cancel) while the thread waits in a read: aclose
    returns only once the thread has ended."""
    async with SimRtspCamera("A01", "overview", size=RTSP_SIZE, fps=RTSP_FPS) as cam:
        hub = _hub([CameraSource("A01", "overview", cam.url)])
        async with hub.fmp4("A01", "overview") as sub:
            await _chunks(sub, 2)
            cam.freeze()
        await asyncio.sleep(LINGER_S + 0.2)
        await hub.aclose()
        assert not [t.name for t in threading.enumerate() if t.name.startswith("live-fmp4")]


# -- refusals and boundaries -------------------------------------------------------------------

async def test_views_a_camera_cannot_give_are_refused_with_the_camera_named() -> None:
    hub = _hub([CameraSource("A01", "overview", "rtsp://127.0.0.1:9/main"),
                   CameraSource("A01", "bench", "http://127.0.0.1:9/main.mjpg")])
    try:
        with pytest.raises(LiveViewUnavailable, match=r"A01/overview: no MJPEG sub stream .*never transcodes"):
            hub.mjpeg("A01", "overview")
        with pytest.raises(LiveViewUnavailable, match=r"A01/bench: fragmented MP4 needs an H.264 RTSP stream"):
            hub.fmp4("A01", "bench")
        with pytest.raises(LiveViewUnavailable, match=r"no camera A09/overview"):
            hub.fmp4("A09", "overview")
    finally:
        await hub.aclose()
    with pytest.raises(DeviceConfigError, match=r"A01/x.*not among the cameras"):
        _hub([CameraSource("A01", "overview", "rtsp://h/main")], {("A01", "x"): "http://h/sub.mjpg"})


def test_the_splitter_takes_the_muxer_output_in_any_pieces(tmp_path: Path) -> None:
    """One byte at a time: boxes are cut at their headers, not at write calls."""
    clip = tmp_path / "clip.mp4"
    with av.open(str(clip), "w", format="mp4",
                 options={"movflags": "frag_keyframe+empty_moov+default_base_moof+frag_every_frame"}) as out:
        stream = out.add_stream("libx264", rate=10, options={"g": "5", "preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(12):
            frame = av.VideoFrame(64, 48, "yuv420p")
            for plane in frame.planes:
                plane.update(bytes([i * 20 % 256]) * plane.buffer_size)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    data = clip.read_bytes()
    splitter = Fmp4Splitter()
    chunks = [chunk for i in range(len(data)) for chunk in splitter.feed(data[i:i + 1])]
    assert chunks[0].kind == "init" and (chunks[0].width, chunks[0].height) == (64, 48)
    assert [c.keyframe for c in chunks[1:]] == [i % 5 == 0 for i in range(12)]


def test_the_live_hub_imports_no_station_scoring_or_simulator() -> None:
    for path in Path("devices/camera").glob("live_*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
        names += [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
        bad = [n for n in names if n.split(".")[0] in {"station", "scoring", "hardware_sim", "proctor_ui"}]
        assert not bad, f"{path} imports {bad}"
