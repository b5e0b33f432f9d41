"""The open gaps of one camera, told to the listener exactly once when opened and once when closed.

Why gaps are kept by kind: the reader and the writer each see their own trouble (the camera's link
and the recorder falling behind on one side, the disk on the other) and end it on their own terms.
A link gap closed by a reconnect must not close a disk gap while the disk is still full; two
overlapping gaps with different causes are both facts.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable
from typing import Literal

from devices.camera.contract import CameraGap, CameraSource, RecorderListener

logger = logging.getLogger(__name__)

GapKind = Literal["link", "behind", "disk"]
"""link: the camera delivered nothing (stall, refused, EOF); behind: the write queue was full;
disk: writing the segment failed (ENOSPC or another OSError)."""


class GapBook:
    """Thread-safe: the reader opens and closes `link` and `behind`, the writer `disk`."""

    def __init__(self, source: CameraSource, clock_run: str, listener: RecorderListener) -> None:
        self._source = source
        self._clock_run = clock_run
        self._listener = listener
        self._lock = threading.Lock()
        self._open: dict[GapKind, CameraGap] = {}
        self.opened = 0

    def is_open(self, kind: GapKind) -> bool:
        with self._lock:
            return kind in self._open

    def open(self, kind: GapKind, cause: str, from_utc_ns: int, from_mono_ns: int) -> bool:
        """Open a gap of `kind` unless one is open already; True when this call opened it."""
        with self._lock:
            if kind in self._open:
                return False
            gap = CameraGap(self._source.station, self._source.camera, from_utc_ns, from_mono_ns,
                            self._clock_run, cause)
            self._open[kind] = gap
            self.opened += 1
        logger.warning("camera %s: gap opened: %s", self._source.label, cause)
        self._tell(self._listener.gap_opened, gap)
        return True

    def close(self, kind: GapKind, to_utc_ns: int, to_mono_ns: int) -> CameraGap | None:
        """Close the open gap of `kind`, if any, at the given time (never before its start)."""
        with self._lock:
            gap = self._open.pop(kind, None)
        if gap is None:
            return None
        closed = dataclasses.replace(gap, to_utc_ns=max(to_utc_ns, gap.from_utc_ns),
                                     to_mono_ns=max(to_mono_ns, gap.from_mono_ns))
        seconds = (closed.to_mono_ns or 0) / 1e9 - gap.from_mono_ns / 1e9
        logger.warning("camera %s: gap closed after %.2f s (%s)", self._source.label, seconds, gap.cause)
        self._tell(self._listener.gap_closed, closed)
        return closed

    def close_all(self, to_utc_ns: int, to_mono_ns: int) -> None:
        """At stop: every open gap ends now (the recorder stops looking, so the record stops too)."""
        for kind in ("link", "behind", "disk"):
            self.close(kind, to_utc_ns, to_mono_ns)

    def _tell(self, call: Callable[[CameraGap], None], gap: CameraGap) -> None:
        try:
            call(gap)
        except Exception:
            # A listener bug must not stop a camera's recording; it is logged with the gap it lost.
            logger.exception("camera %s: the listener failed on %s", self._source.label, gap)
