"""Crash recovery: `.part` segments left by a killed recorder become recovered segments plus gaps.

Why: after kill -9 or a power cut the open segment of each camera is a `.part` that never became
final. Matroska keeps what was written, so its readable packets are remuxed (never re-encoded)
into the final `.mkv` (marked `recovered`), and the rest of the segment's time is a gap, so that
nothing half-written is ever indexed as final and nothing readable is thrown away. A `.part` with
nothing readable is renamed `.mkv.unreadable` (kept for a person to look at) and reported as a gap.
The `.part` is removed only after the final file is fsynced and renamed.

Clocks: a recovered segment keeps the UTC and monotonic times of the run that wrote it (its tags);
the gap belongs to the run doing the recovery (`clock_run`), its monotonic times mapped from UTC,
because it ends now, in this run.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import av

from devices.camera.contract import CameraGap, Segment
from devices.camera.segment_file import PART_SUFFIX, TAG_PREFIX, fsync_and_hash, fsync_dir

logger = logging.getLogger(__name__)

RECOVERING_SUFFIX: Final = ".mkv.recovering"
UNREADABLE_SUFFIX: Final = ".mkv.unreadable"


def recover_partials(root: Path, clock_run: str) -> list[tuple[Segment | None, CameraGap]]:
    """Recover every `.part` under `root`; per file, the recovered segment (None when nothing was
    readable) and the gap for the time it lost. Run it before the recorder starts on `root`."""
    for stale in root.rglob(f"*{RECOVERING_SUFFIX}"):
        stale.unlink()  # an interrupted earlier recovery; its .part is still there
    return [_recover(part, clock_run) for part in sorted(root.rglob(f"*{PART_SUFFIX}"))]


class _PartInfo:
    """Identity and start of a `.part`: from its header tags, else from its path and file name."""

    def __init__(self, part: Path, tags: dict[str, str]) -> None:
        segment_id = part.name.removesuffix(PART_SUFFIX)
        self.station = tags.get(f"{TAG_PREFIX}STATION", part.parent.parent.parent.name)
        self.camera = tags.get(f"{TAG_PREFIX}CAMERA", part.parent.parent.name)
        self.segment_id = tags.get(f"{TAG_PREFIX}SEGMENT_ID", segment_id)
        self.clock_run = tags.get(f"{TAG_PREFIX}CLOCK_RUN", "unknown")
        if f"{TAG_PREFIX}START_UTC_NS" in tags:
            self.start_utc_ns = int(tags[f"{TAG_PREFIX}START_UTC_NS"])
        else:
            stamp = segment_id.rsplit("-", 1)[-1]
            start = datetime.strptime(stamp, "%Y%m%dT%H%M%S.%fZ").replace(tzinfo=UTC)
            self.start_utc_ns = int(start.timestamp()) * 1_000_000_000 + start.microsecond * 1000
        self.start_mono_ns = int(tags.get(f"{TAG_PREFIX}START_MONO_NS", "0"))


def _read_tags(part: Path) -> dict[str, str]:
    try:
        with av.open(str(part)) as container:
            return {k.upper(): v for k, v in container.metadata.items()}
    except (OSError, av.FFmpegError):
        return {}


def _recover(part: Path, clock_run: str) -> tuple[Segment | None, CameraGap]:
    info = _PartInfo(part, _read_tags(part))
    final = part.with_name(part.name.removesuffix(PART_SUFFIX) + ".mkv")
    scratch = part.with_name(part.name.removesuffix(PART_SUFFIX) + RECOVERING_SUFFIX)
    try:
        kept = _remux_readable(part, scratch)
    except (OSError, av.FFmpegError) as err:
        logger.warning("recovery: %s is unreadable (%s)", part, err)
        kept = None
    now_utc, now_mono = time.time_ns(), time.monotonic_ns()
    if kept is None:
        with contextlib.suppress(FileNotFoundError):
            scratch.unlink()
        unreadable = part.with_name(part.name.removesuffix(PART_SUFFIX) + UNREADABLE_SUFFIX)
        os.rename(part, unreadable)
        fsync_dir(part.parent)
        cause = f"process stopped mid-segment; recovered 0 frames ({unreadable.name} kept, unreadable)"
        return None, _gap(info, info.start_utc_ns, now_utc, now_mono, clock_run, cause)
    frames, first_ns, end_ns, codec, width, height = kept
    sha256, size = fsync_and_hash(scratch)
    os.rename(scratch, final)
    fsync_dir(final.parent)
    part.unlink()
    fsync_dir(final.parent)
    segment = Segment(
        station=info.station, camera=info.camera, segment_id=info.segment_id, path=final, sha256=sha256,
        size_bytes=size, start_utc_ns=info.start_utc_ns + first_ns, end_utc_ns=info.start_utc_ns + end_ns,
        start_mono_ns=info.start_mono_ns + first_ns, end_mono_ns=info.start_mono_ns + end_ns,
        clock_run=info.clock_run, frames=frames, codec=codec, width=width, height=height, recovered=True)
    cause = f"process stopped mid-segment; recovered {frames} frames into {final.name}"
    logger.warning("recovery: camera %s/%s: %s", info.station, info.camera, cause)
    return segment, _gap(info, segment.end_utc_ns, now_utc, now_mono, clock_run, cause)


def _gap(info: _PartInfo, from_utc_ns: int, now_utc_ns: int, now_mono_ns: int, clock_run: str,
         cause: str) -> CameraGap:
    return CameraGap(info.station, info.camera, from_utc_ns, now_mono_ns - (now_utc_ns - from_utc_ns), clock_run,
                     cause, to_utc_ns=now_utc_ns, to_mono_ns=now_mono_ns)


def _remux_readable(part: Path, out: Path) -> tuple[int, int, int, str, int, int] | None:
    """Copy the video packets the demuxer can read, from the first keyframe until the first error.

    Returns (frames, first packet's time, end time = last packet + one frame, codec, width, height)
    with times in ns from the segment start, or None when no keyframe is readable."""
    frames = 0
    first_ns = last_ns = step_ns = 0
    with av.open(str(part)) as source:
        if not source.streams.video:
            return None
        stream = source.streams.video[0]
        tb = stream.time_base
        if tb is None:
            return None
        codec, width, height = stream.codec_context.name, stream.codec_context.width, stream.codec_context.height
        with av.open(str(out), "w", format="matroska") as target:
            target.metadata.update({k: v for k, v in source.metadata.items() if k.upper().startswith(TAG_PREFIX)})
            target.metadata[f"{TAG_PREFIX}RECOVERED"] = "1"
            out_stream = target.add_stream_from_template(stream)
            with contextlib.suppress(OSError, av.FFmpegError):  # the torn tail ends the readable part
                for packet in source.demux(stream):
                    if packet.size == 0 or packet.pts is None or (frames == 0 and not packet.is_keyframe):
                        continue
                    at_ns = int(packet.pts * tb * 1_000_000_000)
                    if frames:
                        step_ns = at_ns - last_ns
                    else:
                        first_ns = at_ns
                    last_ns = at_ns
                    packet.stream = out_stream
                    target.mux_one(packet)
                    frames += 1
    if frames == 0:
        out.unlink()
        return None
    return frames, first_ns, last_ns + max(step_ns, 0), codec, width, height
