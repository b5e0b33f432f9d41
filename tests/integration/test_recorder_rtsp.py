"""The recorder against GStreamer's RTSP server, a camera nobody in this project wrote; every
segment judged by Debian's ffprobe. The server runs as a subprocess of the system Python
(`tests/gst_rtsp_server.py`) on a free 127.0.0.1 port and is stopped by pid."""

from __future__ import annotations

import hashlib
import itertools
import os
import signal
import time
from pathlib import Path

from devices.camera.contract import CameraSource
from devices.camera.recorder import Recorder
from tests.ffprobe_checks import check_segment
from tests.recorder_kit import KeepingListener, free_port, gst_rtsp_server

FPS = 10
FRAME_NS = 1_000_000_000 // FPS


def _wait(condition: object, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not callable(condition) or not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout_s} s waiting for {what}"
        time.sleep(0.02)


def test_gstreamer_stream_is_recorded_into_segments_that_ffprobe_accepts(tmp_path: Path) -> None:
    listener = KeepingListener()
    with gst_rtsp_server(fps=FPS) as url:
        recorder = Recorder([CameraSource("A01", "gst", url)], tmp_path, listener, segment_s=3.0)
        recorder.start()
        _wait(lambda: len(listener.segments()) >= 2, 15, "two segments")
        frames = recorder.stats()["A01/gst"].frames
        recorder.stop()
    segments = listener.segments()
    assert len(segments) >= 3, "stop() finishes the open segment as a final one"
    assert sum(s.frames for s in segments) >= frames
    assert not list(tmp_path.rglob("*.part")), "no .part is left after stop()"
    assert not listener.gaps("gap_opened"), f"no gap in a healthy stream: {listener.gaps('gap_opened')}"
    for before, after in itertools.pairwise(segments):
        assert abs(after.start_mono_ns - before.end_mono_ns) < FRAME_NS // 2, "segments follow each other"
        assert after.start_utc_ns > before.start_utc_ns
    for segment in segments:
        assert segment.path.name == f"{segment.segment_id}.mkv"
        assert segment.path.parent.relative_to(tmp_path).parts[:2] == ("A01", "gst")
        assert hashlib.sha256(segment.path.read_bytes()).hexdigest() == segment.sha256
        assert segment.size_bytes == segment.path.stat().st_size
        assert (segment.codec, segment.width, segment.height) == ("h264", 1280, 720)
        probed = check_segment(segment.path, FPS)
        assert probed.packets == segment.frames, "every packet written is counted, none more"
        assert probed.codec == "h264" and (probed.width, probed.height) == (1280, 720)
    full = segments[1:-1]
    assert all(abs(s.frames - 3 * FPS) <= 1 for s in full), "cut at the first keyframe at or after 3 s"


def test_camera_unplugged_for_5_s_is_one_gap_to_within_1_s_and_recording_resumes(tmp_path: Path) -> None:
    """The server is stopped (SIGTERM: its connections close) and started again on the same port."""
    listener = KeepingListener()
    port = free_port()
    recorder = Recorder([CameraSource("A01", "gst", f"rtsp://127.0.0.1:{port}/cam")], tmp_path, listener,
                        segment_s=3.0, backoff_initial_s=0.25, backoff_max_s=0.5)
    with gst_rtsp_server(port, fps=FPS):
        recorder.start()
        _wait(lambda: recorder.stats()["A01/gst"].frames >= 2 * FPS, 10, "two seconds of frames")
        unplugged_mono_ns = time.monotonic_ns()
    time.sleep(5.0)
    with gst_rtsp_server(port, fps=FPS):
        back_mono_ns = time.monotonic_ns()
        _wait(lambda: listener.gaps("gap_closed"), 10, "the gap to close")
        frames_back = recorder.stats()["A01/gst"].frames
        _wait(lambda: recorder.stats()["A01/gst"].frames >= frames_back + 2 * FPS, 10, "recording to resume")
        recorder.stop()
    opened = listener.of("gap_opened")
    assert len(opened) == 1, [e.fact for e in opened]
    gap = listener.gaps("gap_closed")[0]
    assert gap.from_mono_ns == opened[0].fact.from_mono_ns  # type: ignore[union-attr]
    assert opened[0].at_mono_ns - (gap.from_mono_ns - FRAME_NS) <= 2_000_000_000, "alarm within 2 s of the last frame"
    assert abs(gap.from_mono_ns - unplugged_mono_ns) < 1_000_000_000, "gap starts within 1 s of the unplug"
    assert gap.to_mono_ns is not None and abs(gap.to_mono_ns - back_mono_ns) < 1_000_000_000, \
        "gap ends within 1 s of the camera's return"
    for segment in listener.segments():
        check_segment(segment.path, FPS)
    before = [s for s in listener.segments() if s.end_mono_ns <= gap.from_mono_ns]
    after = [s for s in listener.segments() if s.start_mono_ns >= (gap.to_mono_ns or 0)]
    assert before and after and len(before) + len(after) == len(listener.segments()), "no segment spans the gap"


def test_frozen_camera_is_a_gap_within_2_s_and_recording_resumes_when_it_thaws(tmp_path: Path) -> None:
    """The server process is stopped with SIGSTOP: its connection stays open and sends nothing."""
    listener = KeepingListener()
    with gst_rtsp_server(fps=FPS) as url:
        server_pid = _pid_listening(url)
        recorder = Recorder([CameraSource("A01", "gst", url)], tmp_path, listener, segment_s=3.0,
                            backoff_initial_s=0.25, backoff_max_s=0.5)
        recorder.start()
        _wait(lambda: recorder.stats()["A01/gst"].frames >= 2 * FPS, 10, "two seconds of frames")
        os.kill(server_pid, signal.SIGSTOP)
        frozen_mono_ns = time.monotonic_ns()
        try:
            _wait(lambda: listener.of("gap_opened"), 5, "the gap to open")
            time.sleep(max(0.0, 5.0 - (time.monotonic_ns() - frozen_mono_ns) / 1e9))
        finally:
            os.kill(server_pid, signal.SIGCONT)
        thawed_mono_ns = time.monotonic_ns()
        _wait(lambda: listener.gaps("gap_closed"), 10, "the gap to close")
        frames_back = recorder.stats()["A01/gst"].frames
        _wait(lambda: recorder.stats()["A01/gst"].frames >= frames_back + FPS, 10, "recording to resume")
        recorder.stop()
    opened = listener.of("gap_opened")[0]
    gap = listener.gaps("gap_closed")[0]
    assert "no frames for 2.0 s" in gap.cause
    last_frame_mono_ns = gap.from_mono_ns - FRAME_NS
    assert opened.at_mono_ns - last_frame_mono_ns <= 2_000_000_000, \
        f"alarm {(opened.at_mono_ns - last_frame_mono_ns) / 1e9:.2f} s after the last frame"
    assert abs(gap.from_mono_ns - frozen_mono_ns) < 1_000_000_000
    assert gap.to_mono_ns is not None and abs(gap.to_mono_ns - thawed_mono_ns) < 1_000_000_000
    for segment in listener.segments():
        check_segment(segment.path, FPS)


def _pid_listening(url: str) -> int:
    """The pid of the GStreamer server serving `url` (the child of this test that listens on its port)."""
    port = int(url.split(":")[2].split("/")[0])
    inode = None
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == port and fields[3] == "0A":
            inode = fields[9]
    assert inode is not None, f"nothing listens on port {port}"
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                fds = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
            except OSError:
                continue
            if f"socket:[{inode}]" in fds:
                return int(pid)
    raise AssertionError(f"no process owns the socket listening on {port}")
