"""The evidence recorder: every camera of a station remuxed (never re-encoded) into 10 s segments.

Why this shape: one reader and one writer thread per camera, joined by a bounded queue
(`devices.camera.reader`, `devices.camera.camera_writer`). PyAV releases the GIL while it reads
and writes packets, so 24 cameras fit in one process; a slow disk fills one camera's queue (a gap,
reported) instead of stalling its reading. Nothing here blocks an event loop: the listener is
called on the recorder's threads and must hand facts over quickly.

Listener calls, per camera: `segment_closed` after each segment is fsynced, renamed and hashed;
`gap_opened` when the camera stops (no packet for `stall_s`, refused, EOF), when the queue is full
or when a write fails; `gap_closed` with the same start when frames are recorded again or at
`stop()`.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

from devices.camera.camera_stats import CameraStats, CameraStatsSnapshot
from devices.camera.camera_writer import CameraWriter
from devices.camera.contract import CameraSource, RecorderListener
from devices.camera.gap_book import GapBook
from devices.camera.reader import Backoff, CameraReader, QueueItem, open_options

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class _Camera:
    source: CameraSource
    inbox: queue.Queue[QueueItem]
    gaps: GapBook
    stats: CameraStats
    reader: CameraReader
    writer: CameraWriter
    threads: tuple[threading.Thread, threading.Thread]


class Recorder:
    """Records `sources` under `root` until `stop()`; use as a context manager or start/stop.

    `segment_s`: a segment is cut at the first keyframe at or after this long. `stall_s`: a camera
    silent this long is a gap (reported at most `stall_s` after its last frame). Reconnects back off
    from `backoff_initial_s` doubling to `backoff_max_s`, jittered. `clock_run` names this process
    run for the monotonic times (a new uuid4 hex by default). `queue_frames`: packets a camera may
    have waiting for its writer before the recorder counts itself behind (a gap).
    """

    def __init__(self, sources: Sequence[CameraSource], root: Path, listener: RecorderListener, *,
                 segment_s: float = 10.0, stall_s: float = 2.0, backoff_initial_s: float = 0.5,
                 backoff_max_s: float = 10.0, clock_run: str | None = None, queue_frames: int = 256,
                 connect_timeout_s: float = 5.0) -> None:
        labels = [s.label for s in sources]
        duplicates = sorted({label for label in labels if labels.count(label) > 1})
        if duplicates:
            raise ValueError(f"recorder: cameras {duplicates} are listed twice; give each camera of a station its "
                             "own id")
        for name, value in (("segment_s", segment_s), ("stall_s", stall_s), ("backoff_initial_s", backoff_initial_s),
                            ("connect_timeout_s", connect_timeout_s)):
            if not value > 0:
                raise ValueError(f"recorder: {name}={value} must be above 0")
        if backoff_max_s < backoff_initial_s:
            raise ValueError(f"recorder: backoff_max_s={backoff_max_s} is below backoff_initial_s={backoff_initial_s}")
        if queue_frames < 1:
            raise ValueError(f"recorder: queue_frames={queue_frames} must be at least 1")
        for source in sources:
            try:
                open_options(source.url, stall_s)
            except ValueError as err:
                raise ValueError(f"camera {source.label}: {err}") from err
        self.root = root
        self.clock_run = clock_run or uuid.uuid4().hex
        self._sources = tuple(sources)
        self._listener = listener
        self._segment_s = segment_s
        self._stall_s = stall_s
        self._backoff = (backoff_initial_s, backoff_max_s)
        self._queue_frames = queue_frames
        self._connect_timeout_s = connect_timeout_s
        self._stop = threading.Event()
        self._cameras: list[_Camera] = []

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def start(self) -> None:
        if self._cameras:
            raise RuntimeError("recorder: already started; stop() it first")
        self._stop.clear()
        for source in self._sources:
            self._cameras.append(self._camera(source))
        for camera in self._cameras:
            for thread in camera.threads:
                thread.start()
        logger.info("recorder: recording %d camera(s) into %s (run %s)", len(self._cameras), self.root,
                    self.clock_run)

    def _camera(self, source: CameraSource) -> _Camera:
        inbox: queue.Queue[QueueItem] = queue.Queue(self._queue_frames)
        gaps = GapBook(source, self.clock_run, self._listener)
        stats = CameraStats(source.label)
        reader = CameraReader(source, inbox, gaps, stats, self._stop, stall_s=self._stall_s,
                              backoff=Backoff(*self._backoff), connect_timeout_s=self._connect_timeout_s)
        writer = CameraWriter(source, self.root, inbox, gaps, stats, self._listener, self.clock_run,
                              segment_s=self._segment_s, stall_s=self._stall_s, backoff=Backoff(*self._backoff))
        threads = (threading.Thread(target=reader.run, name=f"camera-read-{source.label}", daemon=True),
                   threading.Thread(target=writer.run, name=f"camera-write-{source.label}", daemon=True))
        return _Camera(source, inbox, gaps, stats, reader, writer, threads)

    def stop(self, timeout_s: float = 15.0) -> None:
        """Stop reading, finish every open segment as a final one, close the open gaps.

        A blocked read returns within `stall_s` (PyAV's read timeout), so this normally takes
        about that long; a thread still alive after `timeout_s` is named in the log and the error.
        """
        if not self._cameras:
            return
        deadline = time.monotonic() + timeout_s
        self._stop.set()
        for camera in self._cameras:
            camera.threads[0].join(max(0.0, deadline - time.monotonic()))
        for camera in self._cameras:
            try:
                camera.inbox.put(None, timeout=max(0.01, deadline - time.monotonic()))
            except queue.Full:
                logger.error("camera %s: writer queue still full at stop", camera.source.label)
        for camera in self._cameras:
            camera.threads[1].join(max(0.0, deadline - time.monotonic()))
        stuck = [t.name for c in self._cameras for t in c.threads if t.is_alive()]
        now_utc, now_mono = time.time_ns(), time.monotonic_ns()
        for camera in self._cameras:
            camera.gaps.close_all(now_utc, now_mono)
        self._cameras = []
        if stuck:
            raise TimeoutError(f"recorder: threads {stuck} did not stop within {timeout_s} s; their camera reads or "
                               "the evidence disk are blocked")
        logger.info("recorder: stopped (run %s)", self.clock_run)

    def reader(self, station: str, camera: str) -> CameraReader | None:
        """The running reader of a camera (to tap its packets), None when not recording it."""
        return next((c.reader for c in self._cameras if (c.source.station, c.source.camera) == (station, camera)),
                    None)

    def stats(self) -> dict[str, CameraStatsSnapshot]:
        """Per camera (by `station/camera`): frames written, segments, gaps, reconnects, last frame age."""
        return {c.source.label: c.stats.snapshot(c.gaps.opened, c.inbox.qsize()) for c in self._cameras}
