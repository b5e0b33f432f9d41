"""Two less common paths: a writer that falls behind, and `file://` sources.

Falling behind is produced for real, not mocked: the listener holds the writer thread for 3 s in
`segment_closed`, as a stalled fsync would, while the camera keeps sending; a queue of 10 packets
then overflows. The recorder must report the packets it could not keep as a gap, keep every
finished segment, and restart at the next keyframe once the writer has caught up.
"""

from __future__ import annotations

import asyncio
import itertools
import subprocess
import threading
import time
from pathlib import Path

from devices.camera.contract import CameraSource, Segment
from devices.camera.recorder import Recorder
from hardware_sim.rtsp_camera import SimRtspCamera
from tests.ffprobe_checks import check_segment, h264_annexb
from tests.h264_sei import stamps_of
from tests.integration.waiting import wait_for
from tests.recorder_kit import KeepingListener

FPS = 10


class SlowListener(KeepingListener):
    """Takes 3 s over the first segment, on the recorder's writer thread."""

    def __init__(self) -> None:
        super().__init__()
        self.stalled = threading.Event()

    def segment_closed(self, segment: Segment) -> None:
        if not self.stalled.is_set():
            self.stalled.set()
            time.sleep(3.0)
        super().segment_closed(segment)


async def test_a_writer_that_falls_behind_reports_the_lost_packets_as_a_gap_and_catches_up(tmp_path: Path) -> None:
    listener = SlowListener()
    async with SimRtspCamera("A01", "overview", fps=FPS) as cam:
        recorder = Recorder([CameraSource("A01", "overview", cam.url)], tmp_path, listener, segment_s=2.0,
                            queue_frames=10)
        recorder.start()
        try:
            await wait_for(lambda: listener.gaps("gap_closed"), 15, "the behind gap to close")
            await wait_for(lambda: len(listener.segments()) >= 3, 15, "segments after catching up")
        finally:
            await asyncio.to_thread(recorder.stop)
        dropped = cam.frames_dropped
    assert dropped == 0, "the simulator itself dropped nothing"
    [opened] = listener.gaps("gap_opened")
    [closed] = listener.gaps("gap_closed")
    assert opened.cause.startswith("recorder fell behind: write queue full (10 packets)"), opened.cause
    assert closed.to_mono_ns is not None and 0.5e9 < closed.to_mono_ns - opened.from_mono_ns < 4e9
    segments = sorted(listener.segments(), key=lambda s: s.start_mono_ns)
    stamps = []
    for segment in segments:
        assert segment.path.exists(), "no finished segment is deleted to catch up"
        assert segment.end_mono_ns <= opened.from_mono_ns + 1e8 or segment.start_mono_ns >= closed.to_mono_ns
        assert check_segment(segment.path, FPS).packets == segment.frames
        stamps += stamps_of(h264_annexb(segment.path))
    steps = [b.counter - a.counter for a, b in itertools.pairwise(stamps)]
    assert min(steps) == 1 and sum(1 for s in steps if s > 1) == 1, "one hole in the counters: the gap"
    hole_s = max(b.capture_utc_ns - a.capture_utc_ns for a, b in itertools.pairwise(stamps)) / 1e9
    assert closed.to_utc_ns is not None
    assert abs(hole_s - (closed.to_utc_ns - opened.from_utc_ns) / 1e9) < 0.25, "the gap is the hole"


def test_a_file_source_is_read_at_its_own_pace_and_its_end_is_a_gap(tmp_path: Path) -> None:
    """A 3 s clip with B-frames (pts != dts), made by Debian's ffmpeg."""
    clip = tmp_path / "clip.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=640x360:rate=10", "-t", "3",
                    "-c:v", "libx264", "-g", "10", "-bf", "2", "-pix_fmt", "yuv420p", str(clip)], check=True)
    listener = KeepingListener()
    recorder = Recorder([CameraSource("A09", "import", f"file://{clip}")], tmp_path / "rec", listener,
                        segment_s=2.0, backoff_initial_s=5.0, backoff_max_s=5.0)
    started = time.monotonic()
    recorder.start()
    deadline = started + 10
    while not listener.gaps("gap_opened") and time.monotonic() < deadline:
        time.sleep(0.05)
    took_s = time.monotonic() - started
    recorder.stop()
    assert 2.5 < took_s < 4.5, f"a 3 s file took {took_s:.1f} s: it is read at its own pace"
    [gap] = listener.gaps("gap_opened")
    assert "stream ended (EOF)" in gap.cause
    segments = listener.segments()
    assert sum(s.frames for s in segments) == 30
    for segment in segments:
        assert check_segment(segment.path, FPS, b_frames=True).packets == segment.frames
