"""One camera's writer thread: packets from the reader's queue into 10 s segments, each reported.

Why a thread apart from the reader: closing a segment fsyncs and hashes it, and a slow or stalled
disk must not stop the reading (a full queue is reported by the reader as a gap instead). The
writer cuts a segment at the first keyframe at or after `segment_s`, at a new connection (the
packets in between are missing) and when the camera has been silent for `stall_s`. A write error
(ENOSPC, EIO) opens a `disk` gap from the start of the segment that failed; its `.part` is kept for
`recover_partials`; the writer retries at the first keyframe after a capped backoff, and never
deletes or skips a finished segment.
"""

from __future__ import annotations

import errno
import logging
import queue
import time
from pathlib import Path

import av

from devices.camera.arrival import Arrival, ConnectionEnded
from devices.camera.camera_stats import CameraStats
from devices.camera.contract import CameraSource, RecorderListener
from devices.camera.gap_book import GapBook
from devices.camera.reader import Backoff, QueueItem
from devices.camera.segment_file import SegmentFile

logger = logging.getLogger(__name__)

DISK_ERRORS = (OSError, av.FFmpegError)
_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT}


class CameraWriter:
    """Runs in its own thread (`run`) until it takes None from the queue."""

    def __init__(self, source: CameraSource, root: Path, inbox: queue.Queue[QueueItem], gaps: GapBook,
                 stats: CameraStats, listener: RecorderListener, clock_run: str, *, segment_s: float,
                 stall_s: float, backoff: Backoff) -> None:
        self.source = source
        self._root = root
        self._inbox = inbox
        self._gaps = gaps
        self._stats = stats
        self._listener = listener
        self._clock_run = clock_run
        self._segment_ns = int(segment_s * 1e9)
        self._stall_s = stall_s
        self._backoff = backoff
        self._segment: SegmentFile | None = None
        self._retry_at_mono_ns = 0
        self._recorded_until = (0, 0)
        """(UTC, monotonic) end of the last finished segment: a disk gap never starts before it."""

    def run(self) -> None:
        while True:
            try:
                item = self._inbox.get(timeout=self._stall_s / 2)
            except queue.Empty:
                self._close_if_idle()
                continue
            if item is None:
                self._finish()
                return
            if isinstance(item, ConnectionEnded):
                if self._segment is not None and self._segment.connection == item.connection:
                    self._finish()
                continue
            try:
                self._write(item)
            except Exception as err:  # a bug must not end this camera's recording unseen
                logger.exception("camera %s: writer failed", self.source.label)
                self._disk_failed(err, item.utc_ns, item.mono_ns, self._root, what="recorder error (a bug: report it)")

    def _write(self, arrival: Arrival) -> None:
        segment = self._segment
        if segment is not None and (arrival.connection != segment.connection or (
                arrival.is_keyframe and self._due(segment, arrival))):
            self._finish()
            segment = None
        if segment is None:
            if not arrival.is_keyframe or arrival.mono_ns < self._retry_at_mono_ns:
                return  # inside an open disk gap: wait for a keyframe after the backoff
            try:
                segment = self._segment = SegmentFile(self._root, self.source, arrival, self._clock_run)
            except DISK_ERRORS as err:
                self._disk_failed(err, arrival.utc_ns, arrival.mono_ns, self._root)
                return
        try:
            segment.write(arrival)
        except DISK_ERRORS as err:
            self._disk_failed(err, segment.start_utc_ns, segment.start_mono_ns, segment.part)
            return
        self._stats.frames += 1
        if segment.frames == 1 and self._gaps.close("disk", arrival.utc_ns, arrival.mono_ns) is not None:
            self._backoff.reset()

    def _due(self, segment: SegmentFile, arrival: Arrival) -> bool:
        """`segment_s` reached, give or take half a frame of arrival jitter (a keyframe arriving 1 ms
        early would otherwise make the segment a whole GOP longer)."""
        return arrival.mono_ns - segment.start_mono_ns >= self._segment_ns - segment.frame_ns // 2

    def _close_if_idle(self) -> None:
        """Finish a segment whose camera went silent even if the reader's marker did not fit the queue."""
        segment = self._segment
        if segment is not None and time.monotonic_ns() - segment.last_mono_ns > self._stall_s * 1e9:
            self._finish()

    def _finish(self) -> None:
        segment, self._segment = self._segment, None
        if segment is None:
            return
        try:
            finished = segment.finish()
        except DISK_ERRORS as err:
            self._disk_failed(err, segment.start_utc_ns, segment.start_mono_ns, segment.part, segment)
            return
        self._stats.segments += 1
        self._recorded_until = (finished.end_utc_ns, finished.end_mono_ns)
        logger.info("camera %s: segment %s closed (%d frames, %.1f s)", self.source.label, finished.segment_id,
                    finished.frames, (finished.end_mono_ns - finished.start_mono_ns) / 1e9)
        try:
            self._listener.segment_closed(finished)
        except Exception:
            logger.exception("camera %s: the listener failed on segment %s; the file is kept at %s",
                             self.source.label, finished.segment_id, finished.path)

    def _disk_failed(self, err: BaseException, from_utc_ns: int, from_mono_ns: int, path: Path,
                     segment: SegmentFile | None = None, what: str | None = None) -> None:
        """Open the disk gap from the first packet that is not in a finished segment; retry later."""
        segment = segment or self._segment
        self._segment = None
        if segment is not None:
            segment.abandon()
        code = getattr(err, "errno", None)
        what = what or ("disk full" if code in _FULL_ERRNOS else "disk write failed")
        delay_s = self._backoff.next_s()
        self._retry_at_mono_ns = time.monotonic_ns() + int(delay_s * 1e9)
        self._gaps.open("disk", f"{what}: {err}; camera {self.source.label} not recorded, retrying in {delay_s:.1f} s "
                        f"(writing {path}; free space on the evidence disk)", max(from_utc_ns, self._recorded_until[0]),
                        max(from_mono_ns, self._recorded_until[1]))
