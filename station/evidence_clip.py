"""Evidence for the review page: a stored segment as MP4 for the browser, which segment shows a
moment, and the pictures a check-in is judged by.

Segments are stored as Matroska (a torn tail stays readable after a crash), which browsers do not
play in a <video> element. `mp4_of` copies the segment's packets into an MP4 with its index at the
front (`movflags=+faststart`, so the player can seek before it has the whole file): no decode, no
re-encode, a few milliseconds per 10 s segment. The copy is cached under the data directory
(`clips/`) and is not evidence: the MKV, its SHA-256 and its audit entry are. A cached copy can be
deleted at any time; it is made again on the next request.

Before a result is signed its video pointers do not exist yet (they are made in the signing
transaction, station.evidence_link); the review page places a moment with `pointers_at`, on the
same segments, the same way.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import av
from sqlalchemy import select

from devices.clock import Clock, real_utc_ns
from station.db.engine import Database
from station.db.models import Attempt as AttemptRow
from station.db.models import AttemptStill, Candidate, EvidenceSegment
from station.errors import ServiceError

CLIPS: Final = "clips"
_SAFE = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")


class ClipNotFound(ServiceError):
    """No such segment, or its file is gone (deleted by the retention policy, or never written)."""


@dataclass(frozen=True, slots=True)
class Picture:
    """A picture beside the check-in: a camera's still, or the registered photo. `path` is absolute."""

    label: str
    path: Path


@dataclass(frozen=True, slots=True)
class CheckInPictures:
    candidate_name: str
    photo: Picture | None
    """The photo registered with the candidate (photo_ref, under the data directory), if there is one."""
    stills: tuple[Picture, ...]


class Clips:
    """Remuxes segments to MP4 once, whoever asks first; the others wait for that copy."""

    def __init__(self, db: Database, data_dir: Path) -> None:
        self.db = db
        self.data_dir = data_dir
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def segment_file(self, segment_id: str) -> Path:
        with self.db.read() as s:
            row = s.get(EvidenceSegment, segment_id)
            if row is None or row.deleted_utc_ns is not None:
                raise ClipNotFound(f"no evidence segment {segment_id}")
            path = self.data_dir / row.path
        if not path.is_file():
            raise ClipNotFound(f"evidence segment {segment_id}: its file {path} is missing; run "
                               "`examstation audit verify` and check the evidence disk")
        return path

    def mp4_of(self, segment_id: str) -> Path:
        """The segment as MP4 (made now, or the cached copy). Blocking: call it off the event loop."""
        source = self.segment_file(segment_id)
        name = segment_id if _SAFE.match(segment_id) else hashlib.sha256(segment_id.encode()).hexdigest()
        target = self.data_dir / CLIPS / f"{name}.mp4"
        with self._guard:
            lock = self._locks.setdefault(segment_id, threading.Lock())
        with lock:
            if not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                remux_to_mp4(source, target)
        return target


def remux_to_mp4(source: Path, target: Path) -> None:
    """Copy the video packets of `source` into an MP4 at `target` (written aside, then renamed)."""
    part = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}.part")
    try:
        with av.open(str(source)) as inp:
            if not inp.streams.video:
                raise ClipNotFound(f"{source.name} has no video stream")
            stream = inp.streams.video[0]
            with av.open(str(part), "w", format="mp4", options={"movflags": "+faststart"}) as out:
                out_stream = out.add_stream_from_template(stream)
                for packet in inp.demux(stream):
                    if packet.size == 0:  # the demuxer's flush packet
                        continue
                    packet.stream = out_stream
                    out.mux_one(packet)
        os.replace(part, target)
    except av.FFmpegError as err:
        raise ClipNotFound(f"{source.name}: cannot be copied to MP4 ({err}); download the MKV from the "
                           "export bundle instead") from err
    finally:
        with contextlib.suppress(FileNotFoundError):
            part.unlink()


def pointers_at(db: Database, clock: Clock, station: str, exam_utc_ns: int) -> list[dict[str, Any]]:
    """Where a moment of the attempt's clock is in each camera of `station`: `[{camera, segment_id,
    offset_s}]`, like a signed result's `video` pointers (a camera in a gap has none)."""
    t = real_utc_ns(clock, exam_utc_ns)
    with db.read() as s:
        rows = s.execute(select(EvidenceSegment.camera, EvidenceSegment.segment_id, EvidenceSegment.start_utc_ns)
                         .where(EvidenceSegment.station == station, EvidenceSegment.start_utc_ns <= t,
                                EvidenceSegment.end_utc_ns > t, EvidenceSegment.deleted_utc_ns.is_(None))
                         .order_by(EvidenceSegment.camera)).all()
    return [{"camera": cam, "segment_id": sid, "offset_s": round((t - start) / 1e9, 3)} for cam, sid, start in rows]


def checkin_pictures(db: Database, data_dir: Path, attempt_id: str) -> CheckInPictures:
    """The registered photo and the check-in stills of an attempt (files that exist only)."""
    with db.read() as s:
        row = s.get(AttemptRow, attempt_id)
        if row is None:
            raise ServiceError(f"no attempt {attempt_id}")
        cand = s.get(Candidate, row.candidate_id_number)
        stills = s.execute(select(AttemptStill).where(AttemptStill.attempt_id == attempt_id)
                           .order_by(AttemptStill.camera)).scalars().all()
        still_files = [Picture(st.camera, data_dir / st.path) for st in stills]
        name = cand.name if cand is not None else ""
        photo_ref = cand.photo_ref if cand is not None else None
    photo = None
    if photo_ref:
        found = (data_dir / photo_ref).resolve()
        if found.is_relative_to(data_dir.resolve()) and found.is_file():
            photo = Picture("registered", found)
    return CheckInPictures(name, photo, tuple(p for p in still_files if p.path.is_file()))
