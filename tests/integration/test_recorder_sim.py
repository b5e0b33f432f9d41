"""The recorder against the project's simulated cameras on real sockets: H.264 over RTSP with a frame
counter in every frame (read back from the segments with Debian's ffmpeg), and MJPEG over HTTP.

`EXAMSTATION_LONG_VIDEO=1` runs the frame-counter test for the full 2 minutes the issue asks for;
the suite runs it for 30 s (three 10 s segment boundaries per camera, 1,200 frames in all)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import time
from pathlib import Path

import pytest

from devices.camera.contract import CameraSource
from devices.camera.recorder import Recorder
from hardware_sim.camera import SimCamera
from hardware_sim.rtsp_camera import SimRtspCamera
from tests.ffprobe_checks import check_segment, h264_annexb
from tests.h264_sei import stamps_of
from tests.integration.waiting import wait_for
from tests.recorder_kit import KeepingListener

SECONDS = 120.0 if os.environ.get("EXAMSTATION_LONG_VIDEO") == "1" else 30.0
FPS = 10


@pytest.mark.timeout(SECONDS + 90)
async def test_frame_counters_of_4_cameras_run_on_across_segments_without_gap_or_duplicate(tmp_path: Path) -> None:
    listener = KeepingListener()
    async with contextlib.AsyncExitStack() as stack:
        cams = [await stack.enter_async_context(SimRtspCamera("A01", f"cam{i}", fps=FPS)) for i in range(4)]
        recorder = Recorder([CameraSource("A01", c.camera, c.url) for c in cams], tmp_path, listener)
        recorder.start()
        try:
            await asyncio.sleep(SECONDS)
        finally:
            await asyncio.to_thread(recorder.stop)
        dropped = {c.camera: c.frames_dropped for c in cams}
    assert dropped == dict.fromkeys(dropped, 0), f"the simulator dropped frames for a slow client: {dropped}"
    assert not listener.gaps("gap_opened"), listener.gaps("gap_opened")
    for cam in cams:
        segments = sorted(listener.segments(cam.camera), key=lambda s: s.start_mono_ns)
        assert len(segments) >= int(SECONDS // 10), f"{cam.camera}: {len(segments)} segments in {SECONDS} s"
        counters: list[int] = []
        for segment in segments:
            probed = check_segment(segment.path, FPS)
            stamps = stamps_of(h264_annexb(segment.path))
            assert len(stamps) == probed.packets == segment.frames, f"{segment.segment_id}: one counter per frame"
            counters += [s.counter for s in stamps]
        steps = {b - a for a, b in itertools.pairwise(counters)}
        assert steps == {1}, f"{cam.camera}: counters skip or repeat across segments: steps {sorted(steps)}"
        assert len(counters) >= (SECONDS - 1.5) * FPS, f"{cam.camera}: {len(counters)} frames in {SECONDS} s"


async def test_unplugged_sim_camera_is_a_gap_and_recording_resumes_with_the_next_keyframe(tmp_path: Path) -> None:
    listener = KeepingListener()
    async with SimRtspCamera("A01", "overview", fps=FPS) as cam:
        recorder = Recorder([CameraSource("A01", "overview", cam.url)], tmp_path, listener, segment_s=4.0,
                            backoff_initial_s=0.25, backoff_max_s=0.5)
        recorder.start()
        try:
            await wait_for(lambda: recorder.stats()["A01/overview"].frames >= 2 * FPS, 10, "two seconds of frames")
            cam.refuse_connections(True)
            await cam.drop_clients()
            unplugged = time.monotonic_ns()
            await asyncio.sleep(5.0)
            cam.refuse_connections(False)
            back = time.monotonic_ns()
            await wait_for(lambda: listener.gaps("gap_closed"), 10, "the gap to close")
            frames = recorder.stats()["A01/overview"].frames
            await wait_for(lambda: recorder.stats()["A01/overview"].frames >= frames + FPS, 10, "recording to resume")
        finally:
            await asyncio.to_thread(recorder.stop)
    opened = listener.of("gap_opened")
    gap = listener.gaps("gap_closed")[0]
    assert len(opened) == 1 and opened[0].at_mono_ns - unplugged < 2_000_000_000
    assert abs(gap.from_mono_ns - unplugged) < 1_000_000_000
    assert gap.to_mono_ns is not None and abs(gap.to_mono_ns - back) < 1_000_000_000
    stamps = []
    for segment in sorted(listener.segments(), key=lambda s: s.start_mono_ns):
        check_segment(segment.path, FPS)
        stamps += stamps_of(h264_annexb(segment.path))
    assert all(b.counter > a.counter for a, b in itertools.pairwise(stamps)), "no frame twice"
    # The simulator produces nothing while nobody plays, so its counters run on; its capture clock
    # shows the hole, which must be the gap recorded, give or take a second.
    hole_s = max(b.capture_utc_ns - a.capture_utc_ns for a, b in itertools.pairwise(stamps)) / 1e9
    assert gap.to_utc_ns is not None
    assert abs(hole_s - (gap.to_utc_ns - gap.from_utc_ns) / 1e9) < 1.0, f"capture clock hole {hole_s:.2f} s"


async def test_mjpeg_camera_is_stored_as_is_with_wall_clock_timestamps(tmp_path: Path) -> None:
    listener = KeepingListener()
    async with SimCamera("A01", "desk", main_fps=FPS) as cam:
        recorder = Recorder([CameraSource("A01", "desk", cam.url)], tmp_path, listener, segment_s=2.0)
        recorder.start()
        try:
            await wait_for(lambda: len(listener.segments()) >= 2, 15, "two segments")
        finally:
            await asyncio.to_thread(recorder.stop)
    segments = listener.segments()
    for segment in segments:
        probed = check_segment(segment.path, None)
        assert probed.codec == "mjpeg" and (probed.width, probed.height) == (1280, 720)
        assert probed.packets == segment.frames
        if segment.frames < 3:
            continue  # the one stop() cut short
        steps = [b - a for a, b in zip(probed.pts_s, probed.pts_s[1:], strict=False)]
        mean_step = sum(steps) / len(steps)
        assert abs(mean_step - 1 / FPS) < 0.01, f"{segment.segment_id}: a frame every {mean_step:.3f} s, not 0.1 s"
        wall_s = (segment.end_mono_ns - segment.start_mono_ns) / 1e9
        assert abs(probed.pts_s[-1] + mean_step - wall_s) < 0.05, "the file's time is the wall-clock time"
    full = segments[0]
    assert abs(full.frames - 2 * FPS) <= 1, f"{full.frames} frames in a 2 s segment at {FPS} fps"


async def test_frozen_mjpeg_camera_is_a_gap_within_2_s_and_recording_resumes(tmp_path: Path) -> None:
    listener = KeepingListener()
    async with SimCamera("A01", "desk", main_fps=FPS) as cam:
        recorder = Recorder([CameraSource("A01", "desk", cam.url)], tmp_path, listener, segment_s=2.0,
                            backoff_initial_s=0.25, backoff_max_s=0.5)
        recorder.start()
        try:
            await wait_for(lambda: recorder.stats()["A01/desk"].frames >= FPS, 10, "a second of frames")
            cam.freeze()
            await wait_for(lambda: listener.of("gap_opened"), 5, "the gap to open")
            await asyncio.sleep(1.0)
            cam.resume()
            resumed = time.monotonic_ns()
            await wait_for(lambda: listener.gaps("gap_closed"), 10, "the gap to close")
            frames = recorder.stats()["A01/desk"].frames
            await wait_for(lambda: recorder.stats()["A01/desk"].frames >= frames + FPS, 10, "recording to resume")
        finally:
            await asyncio.to_thread(recorder.stop)
    [opened] = listener.of("gap_opened")
    [gap] = listener.gaps("gap_closed")
    assert "no frames for 2.0 s" in gap.cause
    last_frame_mono_ns = gap.from_mono_ns - 1_000_000_000 // FPS
    assert opened.at_mono_ns - last_frame_mono_ns <= 2_000_000_000, "alarm within 2 s of the last frame"
    assert gap.to_mono_ns is not None and abs(gap.to_mono_ns - resumed) < 1_000_000_000
    for segment in listener.segments():
        assert check_segment(segment.path, None).packets == segment.frames
