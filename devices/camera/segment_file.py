"""One evidence segment on disk: written as `.part`, then fsynced, renamed, hashed, never changed.

Why this order: a crash (kill -9, power loss) may leave a `.part`, never a `.mkv` that is not
complete and on disk; the `.mkv` name is the promise that the file is final. Matroska keeps what
was written when the process dies (plain MP4 does not), so `devices.camera.recovery` can rebuild a
`.part`. The header carries the segment's identity and clocks as tags for that rebuild.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import av

from devices.camera.arrival import Arrival
from devices.camera.contract import CameraSource, Segment
from devices.camera.packet_timeline import PacketTimeline

PART_SUFFIX: Final = ".mkv.part"
TAG_PREFIX: Final = "EXAMSTATION_"
_HASH_CHUNK: Final = 1 << 20
MUXER_OPTIONS: Final = {"cluster_time_limit": "1000", "flush_packets": "1"}
"""A Matroska cluster at most every second, handed to the OS when it closes: a kill -9 loses at
most the last second of a `.part` (the muxer builds each cluster in memory; its default is 5 s)."""


def segment_id(source: CameraSource, start_utc_ns: int) -> str:
    """`{station}-{camera}-{YYYYmmddTHHMMSS.ffffffZ}`: unique per camera and sortable by time."""
    seconds, ns = divmod(start_utc_ns, 1_000_000_000)
    stamp = datetime.fromtimestamp(seconds, UTC).strftime("%Y%m%dT%H%M%S")
    return f"{source.station}-{source.camera}-{stamp}.{ns // 1000:06d}Z"


def segment_dir(root: Path, source: CameraSource, start_utc_ns: int) -> Path:
    day = datetime.fromtimestamp(start_utc_ns // 1_000_000_000, UTC).strftime("%Y-%m-%d")
    return root / source.station / source.camera / day


def fsync_dir(directory: Path) -> None:
    """Make a rename or creation in `directory` durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_dirs_durable(root: Path, directory: Path) -> None:
    """Create `directory` under `root` and fsync the parent of every level created, so a new day's
    directory (and the segments renamed into it) survives a power cut."""
    missing = [d for d in (directory, *directory.parents) if d.is_relative_to(root) and not d.is_dir()]
    for created in reversed(missing):
        created.mkdir(exist_ok=True)
        fsync_dir(created.parent)


def fsync_and_hash(path: Path) -> tuple[str, int]:
    """fsync the file and return its SHA-256 and size; it was just written, so it is read from cache."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as f:
        while chunk := f.read(_HASH_CHUNK):
            digest.update(chunk)
            size += len(chunk)
        os.fsync(f.fileno())
    return digest.hexdigest(), size


class SegmentFile:
    """The open segment of one camera; `write` one packet at a time, then `finish` or `abandon`.

    Every method may raise OSError (ENOSPC, EIO) or av.FFmpegError from the file; the caller turns
    that into a disk gap.
    """

    def __init__(self, root: Path, source: CameraSource, first: Arrival, clock_run: str) -> None:
        self.source = source
        self.clock_run = clock_run
        self.connection = first.connection
        self.template = first.template
        self.start_utc_ns = first.utc_ns
        self.start_mono_ns = first.mono_ns
        self.last_utc_ns = first.utc_ns
        self.last_mono_ns = first.mono_ns
        self.frames = 0
        self.segment_id = segment_id(source, first.utc_ns)
        directory = segment_dir(root, source, first.utc_ns)
        if not directory.is_dir():
            make_dirs_durable(root, directory)
        self.directory = directory
        self.part = directory / f"{self.segment_id}{PART_SUFFIX}"
        self.final = directory / f"{self.segment_id}.mkv"
        template = first.template
        self.timeline = PacketTimeline(template.time_base, wall_clock=template.wall_clock,
                                       start_mono_ns=first.mono_ns, nominal_frame_ns=template.nominal_frame_ns)
        self._container = av.open(str(self.part), "w", format="matroska", options=MUXER_OPTIONS)
        try:
            self._container.metadata.update({
                f"{TAG_PREFIX}STATION": source.station, f"{TAG_PREFIX}CAMERA": source.camera,
                f"{TAG_PREFIX}SEGMENT_ID": self.segment_id, f"{TAG_PREFIX}CLOCK_RUN": clock_run,
                f"{TAG_PREFIX}START_UTC_NS": str(first.utc_ns), f"{TAG_PREFIX}START_MONO_NS": str(first.mono_ns),
            })
            self._stream = self._container.add_stream_from_template(template.stream)
            self._stream.time_base = template.time_base
        except BaseException:
            self._container.close()
            raise

    @property
    def frame_ns(self) -> int:
        """One frame's duration: the stream's declared rate, else the measured step between packets."""
        return self.template.nominal_frame_ns or self.timeline.step_ns

    def write(self, arrival: Arrival) -> None:
        packet = arrival.packet
        pts, dts = self.timeline.stamp(packet.pts, packet.dts, arrival.mono_ns)
        packet.stream = self._stream
        packet.time_base = self.timeline.time_base
        packet.pts, packet.dts = pts, dts
        self._container.mux_one(packet)
        self.frames += 1
        self.last_utc_ns = arrival.utc_ns
        self.last_mono_ns = arrival.mono_ns

    def finish(self) -> Segment:
        """Close the Matroska file, fsync, rename `.part` -> `.mkv`, fsync the directory, hash."""
        self._container.close()
        sha256, size = fsync_and_hash(self.part)
        os.rename(self.part, self.final)
        fsync_dir(self.directory)
        frame_ns = self.frame_ns
        return Segment(
            station=self.source.station, camera=self.source.camera, segment_id=self.segment_id, path=self.final,
            sha256=sha256, size_bytes=size, start_utc_ns=self.start_utc_ns, end_utc_ns=self.last_utc_ns + frame_ns,
            start_mono_ns=self.start_mono_ns, end_mono_ns=self.last_mono_ns + frame_ns, clock_run=self.clock_run,
            frames=self.frames, codec=self.template.codec, width=self.template.width, height=self.template.height,
        )

    def abandon(self) -> None:
        """After a write error: release the file, keep the `.part` for `recover_partials` (never delete
        what was written)."""
        with contextlib.suppress(OSError, av.FFmpegError):
            self._container.close()
