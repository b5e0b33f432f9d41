"""Per-camera counters the recorder keeps while it runs, and the snapshot it hands out.

Why plain counters: each is written by one thread (frames and segments by the writer, reconnects
and the last arrival by the reader) and read by anyone, so an int assignment under the GIL is
enough; `snapshot()` turns them into a frozen value for the station's health view.
"""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CameraStatsSnapshot:
    """One camera at one moment: `frames` packets written, `segments` finished, `gaps` opened,
    `reconnects` (connection attempts after the first), `last_frame_age_s` (None before a frame),
    `queued` packets waiting for the writer, `dropped` packets lost to a full queue, `connected`."""

    camera: str
    frames: int
    segments: int
    gaps: int
    reconnects: int
    last_frame_age_s: float | None
    queued: int
    dropped: int
    connected: bool


class CameraStats:
    def __init__(self, label: str) -> None:
        self.label = label
        self.frames = 0
        self.segments = 0
        self.reconnects = 0
        self.dropped = 0
        self.connected = False
        self.last_arrival_mono_ns: int | None = None

    def snapshot(self, gaps: int, queued: int) -> CameraStatsSnapshot:
        last = self.last_arrival_mono_ns
        age = None if last is None else (time.monotonic_ns() - last) / 1e9
        return CameraStatsSnapshot(self.label, self.frames, self.segments, gaps, self.reconnects, age, queued,
                                   self.dropped, self.connected)
