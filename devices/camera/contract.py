"""What the camera recorder tells the station: finished segments and gaps, as plain facts.

Why a contract of its own: the recorder (`devices.camera.recorder`) runs one thread per camera and
knows nothing about attempts, the database or the audit chain; the station (`station.evidence_*`)
indexes what the recorder reports and links it to attempts. Both sides, and the tests, are written
against these types, not against each other's code.

Times: every fact carries UTC (for people, the province and the bundle) and the monotonic clock of
the recording process (to place it on an attempt's timeline, whose records use the same clock).
A monotonic time is only comparable with others from the same process run (`clock_run`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True, slots=True)
class CameraSource:
    """One camera to record: its station, its id within the station, and its main-stream URL
    (`rtsp://` H.264, `http(s)://` multipart MJPEG, or `file://` for tests and imports)."""

    station: str
    camera: str
    url: str

    @property
    def label(self) -> str:
        return f"{self.station}/{self.camera}"


@dataclass(frozen=True, slots=True)
class Segment:
    """One finished evidence segment: renamed from `.part` after fsync, hashed, never changed again.

    `segment_id` is unique in the site and stable (it names the file): `{station}-{camera}-{start}`
    with the UTC start as `YYYYmmddTHHMMSS.ffffffZ`. `frames` is the number of video packets written
    (one per frame). `recovered` is True for a segment rebuilt from a `.part` left by a crash: it
    holds the readable frames only, and a gap covers the rest.
    """

    station: str
    camera: str
    segment_id: str
    path: Path
    sha256: str
    size_bytes: int
    start_utc_ns: int
    end_utc_ns: int
    start_mono_ns: int
    end_mono_ns: int
    clock_run: str
    frames: int
    codec: str
    width: int
    height: int
    recovered: bool = False


@dataclass(frozen=True, slots=True)
class CameraGap:
    """A time a camera was not recorded, and why (`cause` says it for a person: "no frames for 2.0 s",
    "connection refused", "recorder fell behind: write queue full", "process stopped (recovered .part)").

    An open gap has `to_utc_ns`/`to_mono_ns` None; the same gap is reported again, closed, with the same
    `from_*` values when frames flow again (or when the recorder stops).
    """

    station: str
    camera: str
    from_utc_ns: int
    from_mono_ns: int
    clock_run: str
    cause: str
    to_utc_ns: int | None = None
    to_mono_ns: int | None = None

    @property
    def is_open(self) -> bool:
        return self.to_utc_ns is None


class RecorderListener(Protocol):
    """Receives the recorder's facts. Called on the recorder's own threads: an implementation must
    return quickly and never block on the database (the station hands each fact to its event loop)."""

    def segment_closed(self, segment: Segment) -> None: ...

    def gap_opened(self, gap: CameraGap) -> None: ...

    def gap_closed(self, gap: CameraGap) -> None: ...
