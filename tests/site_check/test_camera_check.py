"""The camera check against the simulated hall's cameras: RTSP main streams and MJPEG sub-streams on
real sockets, read by PyAV as on a real site. Each fault is made the way it happens on a site (a
camera unplugged, a hung camera whose RTSP session stays up, a camera set to another size or rate)
and must give its own failure on that camera only.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from hardware_sim.site import SimSite
from station.config import SiteConfig, load_site_config
from station.site_check.camera_check import check_cameras
from station.site_check.report import Check, CheckContext

SAMPLE_S = 2.0


def hall() -> SiteConfig:
    """Stations A01 (two cameras) and A02 (one) of the example site, without devices: cameras only.
    A01/bench is declared at 640x360, 15 fps (the simulator must honour it); A02/overview declares nothing."""
    data = load_site_config("examples/site.yaml").model_dump(mode="python")
    stations = [s for s in data["stations"] if s["id"] in ("A01", "A02")]
    for st in stations:
        st["devices"] = []
    bench = stations[0]["cameras"][1]
    bench["resolution"], bench["fps"] = "640x360", 15
    a02 = stations[1]["cameras"][0]
    a02["codec"] = a02["resolution"] = a02["fps"] = None
    data["stations"], data["buses"] = stations, []
    return SiteConfig.model_validate(data)


@pytest.fixture
async def site() -> AsyncIterator[SimSite]:
    async with SimSite(hall()) as sim:
        yield sim


def with_camera(config: SiteConfig, station: str, camera: str, **changes: Any) -> SiteConfig:
    data = config.model_dump(mode="python")
    cam = next(c for s in data["stations"] if s["id"] == station for c in s["cameras"] if c["id"] == camera)
    cam.update(changes)
    return SiteConfig.model_validate(data)


def context(config: SiteConfig, tmp_path: Path) -> CheckContext:
    return CheckContext(config=config, config_path=tmp_path / "site.yaml", data_dir=tmp_path, sample_s=SAMPLE_S)


def by_id(checks: list[Check]) -> dict[str, Check]:
    assert len({c.id for c in checks}) == len(checks)
    return {c.id: c for c in checks}


def only_failure(checks: list[Check], check_id: str) -> Check:
    failed = [c for c in checks if not c.passed]
    assert [c.id for c in failed] == [check_id], [(c.id, c.detail) for c in failed]
    return failed[0]


async def test_a_healthy_hall_passes_with_figures_and_a_snapshot_per_camera(site: SimSite, tmp_path: Path) -> None:
    checks, snapshots = await check_cameras(context(site.resolved_config(), tmp_path))
    got = by_id(checks)
    assert list(got) == ["camera:A01/overview", "camera:A01/bench", "camera:A02/overview"]
    assert all(c.passed and c.category == "camera" and c.fix is None for c in checks), [c.detail for c in checks]
    overview, bench, undeclared = got.values()
    assert (overview.station, overview.subject) == ("A01", "overview")
    for check, resolution, fps in ((overview, "1280x720", 10), (bench, "640x360", 15), (undeclared, "1280x720", 10)):
        figures = check.figures
        assert figures["codec"] == "h264" and figures["resolution"] == resolution, figures
        assert figures["fps"] == pytest.approx(fps, rel=0.03)
        assert figures["keyframe_interval_s"] == pytest.approx(1.0, abs=0.05)
        bitrate = figures["bitrate_kbps"]
        assert isinstance(bitrate, float) and 50 < bitrate < 20_000
        assert figures["sub_resolution"] == "320x180" and figures["sub_fps"] == pytest.approx(fps / 2, rel=0.1)
        frames = figures["frames"]
        assert isinstance(frames, int) and frames >= SAMPLE_S * fps
        assert f"{resolution} at" in check.detail and "a keyframe every 1 s" in check.detail
    assert "codec, resolution, fps not declared" in undeclared.detail
    assert "not declared" not in overview.detail
    assert set(snapshots) == {"A01/overview", "A01/bench", "A02/overview"}
    for key, width, height in (("A01/overview", 960, 540), ("A01/bench", 640, 360)):
        jpeg = snapshots[key]
        assert jpeg[:3] == b"\xff\xd8\xff"
        picture = cv2.imdecode(np.frombuffer(jpeg, dtype=np.uint8), cv2.IMREAD_COLOR)
        assert picture is not None and picture.shape == (height, width, 3)
        assert float(picture.std()) > 10, "the snapshot is a blank picture"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("where", ["closed port", "wrong path"])
async def test_a_missing_camera_fails_as_missing_and_nothing_else(site: SimSite, tmp_path: Path, where: str) -> None:
    resolved = site.resolved_config()
    url = site.rtsp_cameras[("A01", "bench")].url
    url = f"rtsp://127.0.0.1:{closed_port()}/main" if where == "closed port" else url.replace("/main", "/stream9")
    checks, snapshots = await check_cameras(context(with_camera(resolved, "A01", "bench", url=url), tmp_path))
    failed = only_failure(checks, "camera:A01/bench")
    expected = "nothing listens on" if where == "closed port" else "404 Not Found"
    assert failed.detail.startswith("missing: ") and expected in failed.detail, failed.detail
    assert failed.fix is not None and "powered" in failed.fix
    assert "A01/bench" not in snapshots and "A01/overview" in snapshots


@pytest.mark.parametrize("freeze_after_s", [0.0, 1.0])
async def test_a_frozen_camera_fails_as_frozen_and_nothing_else(
        site: SimSite, tmp_path: Path, freeze_after_s: float) -> None:
    """A hung camera keeps its RTSP session (DESCRIBE and PLAY answered) and sends nothing more."""

    async def freeze() -> None:
        await asyncio.sleep(freeze_after_s)
        site.freeze_camera("A01", "bench")

    freezing = asyncio.create_task(freeze())
    if not freeze_after_s:
        await freezing
    checks, _ = await check_cameras(context(site.resolved_config(), tmp_path))
    await freezing
    failed = only_failure(checks, "camera:A01/bench")
    assert failed.detail.startswith("frozen: "), failed.detail
    assert ("sends no frame" if not freeze_after_s else "frames came, then no frame for 2 s") in failed.detail
    assert "sub-stream frozen" in failed.detail
    assert failed.fix is not None and "power-cycle" in failed.fix
    assert site.rtsp_cameras[("A01", "bench")].frozen


@pytest.mark.parametrize(("declared", "expected"), [
    ({"resolution": "1920x1080"}, "the resolution is 640x360, declared 1920x1080"),
    ({"fps": 25}, "the frame rate is 15 fps, declared 25 fps"),
    ({"codec": "mjpeg"}, "the codec is h264, declared mjpeg"),
])
async def test_a_camera_set_otherwise_than_declared_fails_naming_both(
        site: SimSite, tmp_path: Path, declared: dict[str, Any], expected: str) -> None:
    config = with_camera(site.resolved_config(), "A01", "bench", **declared)
    checks, snapshots = await check_cameras(context(config, tmp_path))
    failed = only_failure(checks, "camera:A01/bench")
    assert expected in failed.detail, failed.detail
    assert failed.fix is not None and str(next(iter(declared.values()))) in failed.fix.lower()
    assert failed.figures["resolution"] == "640x360" and "A01/bench" in snapshots


@contextlib.asynccontextmanager
async def stuck_mjpeg_camera() -> AsyncIterator[str]:
    """An MJPEG camera whose encoder is stuck on one picture: frames keep coming, byte for byte the same."""
    picture = np.tile(np.arange(0, 256, 2, dtype=np.uint8), (96, 1))
    ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(picture, cv2.COLOR_GRAY2BGR))
    assert ok
    jpeg = encoded.tobytes()
    part = b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n%s\r\n" % (len(jpeg), jpeg)

    handlers: set[asyncio.Task[None]] = set()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        handler = asyncio.current_task()
        assert handler is not None
        handlers.add(handler)
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary=frame\r\n"
                         b"Connection: close\r\n\r\n")
            while True:
                writer.write(part)
                await writer.drain()
                await asyncio.sleep(0.1)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass  # the check hung up, or its reachability probe connected and closed at once
        finally:
            writer.transport.abort()
            handlers.discard(handler)

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/main.mjpg"
    finally:
        server.close()
        for task in list(handlers):
            task.cancel()
        await asyncio.gather(*handlers)
        await server.wait_closed()


async def test_an_mjpeg_camera_repeating_one_picture_fails_as_frozen(site: SimSite, tmp_path: Path) -> None:
    async with stuck_mjpeg_camera() as url:
        config = with_camera(site.resolved_config(), "A01", "bench", url=url, codec="mjpeg", resolution="128x96",
                             fps=10, sub_url=None)
        checks, _ = await check_cameras(context(config, tmp_path))
    failed = only_failure(checks, "camera:A01/bench")
    assert failed.detail.startswith("frozen: the same picture, byte for byte, in all "), failed.detail
    assert failed.figures["codec"] == "mjpeg" and failed.figures["resolution"] == "128x96"
