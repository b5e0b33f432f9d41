"""The simulated station camera over real sockets: what an NVR, cv2 or a browser would see."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import cv2
import numpy as np
import pytest

from hardware_sim.camera import SimCamera
from hardware_sim.frame_painter import FrameMark, Image, read_frame_mark

MAIN_SHAPE = (720, 1280, 3)
SUB_SHAPE = (180, 320, 3)


@dataclass(frozen=True)
class Part:
    headers: dict[str, str]
    jpeg: bytes

    @property
    def counter(self) -> int:
        return int(self.headers["x-frame-counter"])

    @property
    def timestamp_s(self) -> float:
        return float(self.headers["x-timestamp"])


async def _read_headers(reader: asyncio.StreamReader) -> dict[str, str]:
    headers: dict[str, str] = {}
    while (line := (await reader.readline()).decode("latin-1").strip()) != "":
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return headers


@contextlib.asynccontextmanager
async def _http_get(
    port: int, path: str, method: str = "GET"
) -> AsyncIterator[tuple[asyncio.StreamReader, str, dict[str, str]]]:
    """Send one request; yield the reader, the status line and the response headers."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        async with asyncio.timeout(5):
            status = (await reader.readline()).decode("latin-1").strip()
            headers = await _read_headers(reader)
        yield reader, status, headers
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def _read_part(reader: asyncio.StreamReader, timeout_s: float = 3.0) -> Part:
    """Read one part of a multipart/x-mixed-replace; boundary=frame body."""
    async with asyncio.timeout(timeout_s):
        while (line := await reader.readline()).strip() != b"--frame":
            assert line, "stream ended before the next boundary"
            assert line.strip() == b"", f"unexpected bytes between parts: {line!r}"
        headers = await _read_headers(reader)
        assert headers["content-type"] == "image/jpeg"
        jpeg = await reader.readexactly(int(headers["content-length"]))
        assert await reader.readexactly(2) == b"\r\n"
    return Part(headers, jpeg)


def _decode(jpeg: bytes) -> Image:
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None, "not a JPEG"
    return np.asarray(image, dtype=np.uint8)


async def _decode_mark(jpeg: bytes) -> tuple[Image, FrameMark]:
    image = await asyncio.to_thread(_decode, jpeg)
    return image, read_frame_mark(image)


def _capture_frames(url: str, count: int) -> list[Image]:
    """Blocking: read `count` frames with cv2.VideoCapture (run in a thread)."""
    capture = cv2.VideoCapture(
        url, cv2.CAP_FFMPEG, [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, 5000, cv2.CAP_PROP_READ_TIMEOUT_MSEC, 5000]
    )
    try:
        assert capture.isOpened(), f"cv2 could not open {url}"
        frames: list[Image] = []
        for _ in range(count):
            ok, frame = capture.read()
            assert ok, f"cv2 could not read frame {len(frames)} of {url}"
            frames.append(np.asarray(frame, dtype=np.uint8))
        return frames
    finally:
        capture.release()


async def _wait_for(condition: str, check: Callable[[], bool], timeout_s: float = 3.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting until {condition}"
        await asyncio.sleep(0.01)


async def test_opencv_reads_main_stream_with_expected_size() -> None:
    async with SimCamera("A03", "cam1") as cam:
        assert cam.url == f"http://127.0.0.1:{cam.port}/main.mjpg"
        frames = await asyncio.to_thread(_capture_frames, cam.url, 3)
    assert [f.shape for f in frames] == [MAIN_SHAPE] * 3
    marks = [read_frame_mark(f) for f in frames]
    assert [m.counter for m in marks] == sorted({m.counter for m in marks})
    assert marks[0].timestamp_ms < marks[1].timestamp_ms < marks[2].timestamp_ms
    assert abs(marks[-1].timestamp_ms / 1000 - time.time()) < 5


async def test_two_consecutive_parts_are_different_frames_in_order() -> None:
    async with SimCamera("A03", "cam1", main_fps=10) as cam, _http_get(cam.port, "/main.mjpg") as response:
        reader, status, headers = response
        assert status == "HTTP/1.1 200 OK"
        assert headers["content-type"] == "multipart/x-mixed-replace; boundary=frame"
        first, second = await _read_part(reader), await _read_part(reader)
    (image1, mark1), (image2, mark2) = await _decode_mark(first.jpeg), await _decode_mark(second.jpeg)
    assert image1.shape == image2.shape == MAIN_SHAPE
    assert float(cv2.absdiff(image1, image2).mean()) > 1.0, "consecutive frames look the same"
    assert second.counter == first.counter + 1
    assert 0.05 < second.timestamp_s - first.timestamp_s < 0.5, "main stream should run at ~10 fps"
    assert (mark1.counter, mark2.counter) == (first.counter, second.counter)
    assert mark1.timestamp_ms == round(first.timestamp_s * 1000)


async def test_sub_stream_has_small_size_and_its_own_rate() -> None:
    async with SimCamera("A03", "cam2", sub_fps=5) as cam, _http_get(cam.port, "/sub.mjpg") as response:
        assert cam.sub_url.endswith("/sub.mjpg")
        reader, status, _ = response
        assert status == "HTTP/1.1 200 OK"
        first, second = await _read_part(reader), await _read_part(reader)
        assert cam.frames_encoded["main"] == 0
    image, mark = await _decode_mark(second.jpeg)
    assert image.shape == SUB_SHAPE
    assert mark.counter == second.counter == first.counter + 1
    assert 0.1 < second.timestamp_s - first.timestamp_s < 0.5, "sub stream should run at ~5 fps"


async def test_no_frames_are_made_without_viewers() -> None:
    async with SimCamera("A03", "cam1") as cam:
        await asyncio.sleep(0.4)
        assert cam.frames_encoded == {"main": 0, "sub": 0}
        async with _http_get(cam.port, "/main.mjpg") as (reader, _, _):
            await _read_part(reader)
        await _wait_for("the viewer is gone", lambda: cam.viewers["main"] == 0)
        after_hang_up = cam.frames_encoded["main"]
        await asyncio.sleep(0.4)  # 4 frame periods
        assert cam.frames_encoded["main"] <= after_hang_up + 1  # at most the one in flight


async def test_two_viewers_share_each_encoded_frame() -> None:
    fps, duration_s = 10, 1.2
    async with (
        SimCamera("A03", "cam1", main_fps=fps) as cam,
        _http_get(cam.port, "/main.mjpg") as (reader_a, _, _),
        _http_get(cam.port, "/main.mjpg") as (reader_b, _, _),
    ):
        await _wait_for("both viewers joined", lambda: cam.viewers["main"] == 2)
        before = cam.frames_encoded["main"]

        async def collect(reader: asyncio.StreamReader) -> dict[int, bytes]:
            parts: dict[int, bytes] = {}
            deadline = time.monotonic() + duration_s
            while time.monotonic() < deadline:
                part = await _read_part(reader)
                parts[part.counter] = part.jpeg
            return parts

        parts_a, parts_b = await asyncio.gather(collect(reader_a), collect(reader_b))
        encoded = cam.frames_encoded["main"] - before
    assert fps * duration_s * 0.6 <= encoded <= fps * duration_s * 1.4 + 2, f"{encoded} frames encoded"
    common = parts_a.keys() & parts_b.keys()
    assert len(common) >= fps * duration_s * 0.6
    assert all(parts_a[c] == parts_b[c] for c in common), "viewers got different bytes for one frame"


async def test_a_stuck_viewer_does_not_stall_the_others() -> None:
    fps = 25
    stuck = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stuck.setblocking(False)
    loop = asyncio.get_running_loop()
    try:
        async with SimCamera("A03", "cam1", main_fps=fps) as cam:
            await loop.sock_connect(stuck, ("127.0.0.1", cam.port))
            await loop.sock_sendall(stuck, b"GET /main.mjpg HTTP/1.1\r\n\r\n")  # and never reads
            async with _http_get(cam.port, "/main.mjpg") as (reader, _, _):
                counters = []
                deadline = time.monotonic() + 1.5
                while time.monotonic() < deadline:
                    counters.append((await _read_part(reader)).counter)
                await _wait_for("the stuck viewer drops frames", lambda: cam.frames_dropped["main"] > 0)
                assert cam.viewers["main"] == 2, "the stuck viewer keeps its connection"
    finally:
        stuck.close()
    assert len(counters) >= fps * 1.5 * 0.6, f"the reading viewer got only {len(counters)} frames"
    assert counters == sorted(counters)


async def test_freeze_resume_and_drop_clients() -> None:
    async with SimCamera("A03", "cam1", main_fps=10) as cam:
        async with _http_get(cam.port, "/main.mjpg") as (reader, _, _):
            last = (await _read_part(reader)).counter
            cam.freeze()
            assert cam.frozen
            with pytest.raises(TimeoutError):  # frames already queued may still come, then nothing
                for _ in range(4):
                    last = (await _read_part(reader, timeout_s=0.6)).counter
            assert cam.viewers["main"] == 1, "a frozen camera keeps the connection"
            encoded_while_frozen = cam.frames_encoded["main"]
            await asyncio.sleep(0.3)
            assert cam.frames_encoded["main"] == encoded_while_frozen, "a frozen camera makes no frames"
            cam.resume()
            assert (await _read_part(reader)).counter == last + 1

            await cam.drop_clients()
            assert cam.viewers["main"] == 0
            async with asyncio.timeout(2):
                while await reader.read(65536):  # what was already in flight, then end of file
                    pass
        async with _http_get(cam.port, "/main.mjpg") as (reader, status, _):
            assert status == "HTTP/1.1 200 OK", "the camera accepts viewers again after a drop"
            await _read_part(reader)


async def test_snapshot_uses_the_given_clock() -> None:
    async with (
        SimCamera("A03", "cam1", clock=lambda: 1_700_000_000.123) as cam,
        _http_get(cam.port, "/snapshot.jpg") as (reader, status, headers),
    ):
        assert cam.snapshot_url == f"http://127.0.0.1:{cam.port}/snapshot.jpg"
        assert status == "HTTP/1.1 200 OK"
        assert headers["content-type"] == "image/jpeg"
        jpeg = await reader.readexactly(int(headers["content-length"]))
        assert await reader.read() == b""
        assert cam.snapshots_encoded == 1
        assert cam.frames_encoded == {"main": 0, "sub": 0}
    image, mark = await _decode_mark(jpeg)
    assert image.shape == MAIN_SHAPE
    assert mark == FrameMark(counter=0, timestamp_ms=1_700_000_000_123)


async def test_unknown_path_and_method_are_refused() -> None:
    async with SimCamera("A03", "cam1") as cam:
        async with _http_get(cam.port, "/stream.h264?x=1") as (reader, status, headers):
            assert status == "HTTP/1.1 404 Not Found"
            assert headers["content-type"].startswith("text/plain")
            body = await reader.read()
            assert len(body) == int(headers["content-length"])
            assert body.startswith(b"not found: /stream.h264;")
        async with _http_get(cam.port, "/main.mjpg", method="POST") as (_, status, _):
            assert status == "HTTP/1.1 405 Method Not Allowed"
        assert cam.frames_encoded == {"main": 0, "sub": 0}


async def test_close_ends_every_connection_and_leaks_nothing() -> None:
    threads_before = set(threading.enumerate())
    tasks_before = asyncio.all_tasks()
    cam = SimCamera("A03", "cam1", main_fps=25)
    with pytest.raises(RuntimeError, match="not started"):
        _ = cam.port
    async with (
        cam,
        _http_get(cam.port, "/main.mjpg") as (viewer, _, _),
        _http_get(cam.port, "/sub.mjpg") as (sub_viewer, _, _),
    ):
        idle_reader, idle_writer = await asyncio.open_connection("127.0.0.1", cam.port)  # sends nothing
        try:
            await _read_part(viewer)
            await _read_part(sub_viewer)
            assert any(t.name.startswith("simcam-A03/cam1") for t in threading.enumerate())
            started = time.monotonic()
            await cam.aclose()
            assert time.monotonic() - started < 1.0
            async with asyncio.timeout(2):
                for reader in (viewer, sub_viewer, idle_reader):
                    while await reader.read(65536):
                        pass
        finally:
            idle_writer.close()
            with contextlib.suppress(ConnectionError):
                await idle_writer.wait_closed()
    assert set(threading.enumerate()) <= threads_before
    assert asyncio.all_tasks() <= tasks_before
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection("127.0.0.1", cam.port)
