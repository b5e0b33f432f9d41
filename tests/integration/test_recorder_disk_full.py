"""The evidence disk fills up while recording: a real 16 MB tmpfs (`small_disk`, mounted where the
machine allows it; skipped with the reason otherwise, never faked), filled by a filler file. The
write error is ENOSPC from the kernel at the writer's own files. Expected: a `disk full` gap naming
the file, no finished segment lost or changed, recording back at a keyframe once space is freed."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

from devices.camera.contract import CameraSource
from devices.camera.recorder import Recorder
from devices.camera.recovery import recover_partials
from tests.ffprobe_checks import check_segment
from tests.integration.small_disk import fill, small_disk
from tests.recorder_kit import KeepingListener, gst_rtsp_server

FPS = 10


def _wait(condition: object, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not callable(condition) or not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout_s} s waiting for {what}"
        time.sleep(0.02)


def test_disk_full_is_a_gap_keeps_finished_segments_and_recording_resumes_when_space_is_freed(tmp_path: Path) -> None:
    listener = KeepingListener()
    with small_disk(tmp_path / "disk") as disk, gst_rtsp_server(fps=FPS) as url:
        recorder = Recorder([CameraSource("A01", "gst", url)], disk, listener, segment_s=2.0,
                            backoff_initial_s=0.25, backoff_max_s=0.5)
        recorder.start()
        try:
            _wait(lambda: len(listener.segments()) >= 2, 15, "two segments before the disk fills")
            before = {s.path: s.sha256 for s in listener.segments()}
            filler = fill(disk)
            _wait(lambda: listener.gaps("gap_opened"), 10, "a disk-full gap")
            time.sleep(2.0)  # the writer keeps retrying at keyframes while the disk stays full
            assert not listener.gaps("gap_closed"), "the gap stays open while the disk is full"
            filler.unlink()
            freed_mono_ns = time.monotonic_ns()
            _wait(lambda: listener.gaps("gap_closed"), 10, "the gap to close once space is freed")
            _wait(lambda: len(listener.segments()) >= len(before) + 2, 15, "new segments after the gap")
        finally:
            recorder.stop()
        opened = listener.gaps("gap_opened")
        closed = listener.gaps("gap_closed")
        assert len(opened) == 1, opened
        assert opened[0].cause.startswith("disk full: ") and str(disk) in opened[0].cause, opened[0].cause
        assert closed[0].to_mono_ns is not None and closed[0].to_mono_ns - freed_mono_ns < 1_500_000_000
        for path, sha256 in before.items():
            assert hashlib.sha256(path.read_bytes()).hexdigest() == sha256, f"{path.name} changed after the disk filled"
        for segment in listener.segments():
            assert segment.end_mono_ns <= opened[0].from_mono_ns or segment.start_mono_ns >= (closed[0].to_mono_ns or 0)
            assert check_segment(segment.path, FPS).packets == segment.frames
        recovered = recover_partials(disk, "next-run")
        for rebuilt, gap in recovered:
            assert rebuilt is None or check_segment(rebuilt.path, FPS).packets == rebuilt.frames
            assert gap.from_utc_ns >= opened[0].from_utc_ns - 1_000_000_000 // FPS
