"""kill -9 of a recording process mid-segment, then `recover_partials`: no half segment is final,
the `.part`'s readable frames are kept in a recovered segment, the rest is a gap. The recorder runs
in a child process (`tests/recorder_kit.py`) fed by GStreamer's RTSP server."""

from __future__ import annotations

import hashlib
import os
import signal
import time
from pathlib import Path

from devices.camera.recovery import recover_partials
from tests.ffprobe_checks import check_segment
from tests.recorder_kit import child_recorder, gst_rtsp_server

FPS = 10


def test_kill_9_mid_segment_keeps_the_readable_frames_and_records_the_rest_as_a_gap(tmp_path: Path) -> None:
    with gst_rtsp_server(fps=FPS) as url, child_recorder(tmp_path, url, segment_s=30.0) as child:
        time.sleep(4.0)
        os.kill(child.pid, signal.SIGKILL)
        killed_utc_ns = time.time_ns()
        child.wait(5)
    parts = list(tmp_path.rglob("*.mkv.part"))
    assert len(parts) == 1, f"one open segment at the kill: {parts}"
    assert not list(tmp_path.rglob("*.mkv")), "nothing half-written carries the final name"

    recovered = recover_partials(tmp_path, "run-after-crash")

    assert len(recovered) == 1
    segment, gap = recovered[0]
    assert segment is not None and segment.recovered
    assert not parts[0].exists(), "the .part is gone once the recovered segment is final"
    assert segment.path == parts[0].with_name(parts[0].name.removesuffix(".part"))
    assert hashlib.sha256(segment.path.read_bytes()).hexdigest() == segment.sha256
    probed = check_segment(segment.path, FPS)
    assert probed.packets == segment.frames
    assert 2 * FPS <= segment.frames <= 5 * FPS, f"{segment.frames} of ~{4 * FPS} frames were readable"
    assert (segment.station, segment.camera, segment.codec) == ("A01", "main", "h264")
    assert segment.end_utc_ns - segment.start_utc_ns == segment.frames * 1_000_000_000 // FPS
    assert segment.clock_run != "run-after-crash", "the segment keeps the clocks of the run that wrote it"
    assert gap.clock_run == "run-after-crash"
    assert gap.from_utc_ns == segment.end_utc_ns and gap.to_utc_ns is not None and gap.to_utc_ns >= killed_utc_ns
    assert killed_utc_ns - gap.from_utc_ns < 2_000_000_000, "at most the last cluster (1 s) is lost"
    assert f"recovered {segment.frames} frames" in gap.cause
    assert recover_partials(tmp_path, "again") == [], "recovery is done once"


def test_a_part_with_nothing_readable_is_kept_as_unreadable_and_reported_as_a_gap(tmp_path: Path) -> None:
    day = tmp_path / "A02" / "desk" / "2026-12-05"
    day.mkdir(parents=True)
    part = day / "A02-desk-20261205T081500.250000Z.mkv.part"
    part.write_bytes(b"\x1aE\xdf\xa3" + bytes(range(256)) * 4)

    [(segment, gap)] = recover_partials(tmp_path, "run-2")

    assert segment is None
    assert not part.exists() and (day / "A02-desk-20261205T081500.250000Z.mkv.unreadable").exists()
    assert not list(tmp_path.rglob("*.mkv")), "nothing unreadable is indexed as a segment"
    assert (gap.station, gap.camera) == ("A02", "desk")
    assert gap.from_utc_ns == 1_796_458_500_250_000_000
    assert "recovered 0 frames" in gap.cause and gap.to_utc_ns is not None
