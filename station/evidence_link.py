"""Attempts and their video: the check-in still, the wait for the post-roll, the links the result lists.

An attempt's evidence is every segment of its station's cameras from check-in minus the pre-roll
to sign-off plus the post-roll (config `recording`). Linking happens inside the transaction of the
last examiner's signature, so the signed result, its links, their 3-year keep and the
`evidence.linked` audit entry commit together. Before that transaction the signing waits until the
post-roll is final on every camera (its segment stored, or the camera in a recorded gap), so a
result never lists a segment that is still being written. A camera that stays behind past the wait
is not waited for forever: its missing time is listed as a video gap, with the reason.

Times: the window and the segments are on the real wall clock (cameras record in real time). A
rehearsal's scaled exam clock (devices.clock.ScaledClock) is mapped back with `real_utc_ns`.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from devices.camera.still import StillError, grab_still
from devices.clock import Clock, real_utc_ns
from station import audit
from station.config import SiteConfig
from station.db.engine import Database
from station.db.models import AttemptEvidence, AttemptStill, CameraGapRow, CheckIn, EvidenceSegment
from station.evidence_index import EvidenceIndex
from station.evidence_store import durable_write
from station.result_document import VideoEvidence, iso_utc

log = logging.getLogger(__name__)

KEEP_NS: Final = 1096 * 86_400 * 1_000_000_000
"""Attempt-linked footage is kept at least 3 years (3 x 365 days + a leap day)."""
LINKED: Final = "evidence.linked"
STILL: Final = "evidence.still"
HOLE_NS: Final = 1_500_000_000
"""A stretch longer than this with neither segment nor recorded gap is listed as a gap of its own."""
SETTLE_MARGIN_S: Final = 15.0


class EvidenceLinker:
    """What the sign-off and the check-in ask of the evidence (built by station.recording)."""

    def __init__(self, db: Database, data_dir: Path, config: SiteConfig, index: EvidenceIndex, clock: Clock,
                 grab: Callable[[str, float], bytes] = grab_still) -> None:
        self.db = db
        self.data_dir = data_dir
        self.config = config
        self.index = index
        self.clock = clock
        self._grab = grab
        self._threads: list[threading.Thread] = []

    # -- check-in --------------------------------------------------------------------------------

    def checked_in(self, attempt_id: str, station: str) -> None:
        """Take a still from each camera of the station, on a thread of its own (never delays the check-in)."""
        thread = threading.Thread(target=self._stills, args=(attempt_id, station), name=f"still-{attempt_id[-6:]}",
                                  daemon=True)
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()

    def join(self, timeout_s: float = 10.0) -> None:
        """Wait for the stills being taken (shutdown, tests)."""
        for thread in self._threads:
            thread.join(timeout_s)

    def _stills(self, attempt_id: str, station: str) -> None:
        for cam in self.config.station(station).cameras:
            utc_ns = self.clock.utc_ns()
            try:
                jpeg = self._grab(cam.url, 5.0)
            except StillError as err:
                log.error("check-in at %s (attempt %s): %s; compare the person with the photo by eye and note it",
                          station, attempt_id, err)
                continue
            rel = Path("stills") / f"{attempt_id}-{cam.id}.jpg"
            durable_write(self.data_dir / rel, jpeg)
            digest = hashlib.sha256(jpeg).hexdigest()
            with self.db.write() as tx:
                tx.add(AttemptStill(attempt_id=attempt_id, camera=cam.id, path=str(rel), sha256=digest, utc_ns=utc_ns))
                audit.append(tx, "exam-system", STILL, f"attempt:{attempt_id}",
                             {"camera": cam.id, "path": str(rel), "sha256": digest, "utc_ns": utc_ns}, utc_ns)

    # -- sign-off --------------------------------------------------------------------------------

    def settle(self, station: str) -> int:
        """Wait (bounded) until the post-roll is final on every camera of `station`; return the window's
        end (real UTC ns). Called before the last signature's transaction, off the event loop."""
        rec = self.config.recording
        until = self._real_now() + int(rec.post_roll_s * 1e9)
        cameras = [c.id for c in self.config.station(station).cameras]
        late = self.index.wait_covered(station, cameras, until, rec.post_roll_s + rec.segment_s + SETTLE_MARGIN_S)
        if late:
            log.error("sign-off at %s: the video of camera(s) %s is not final up to the post-roll; their missing time "
                      "is listed as a video gap", station, ", ".join(late))
        return until

    def _real_now(self) -> int:
        """Now on the real wall clock, where the cameras record (the attempt's clock may run scaled)."""
        return real_utc_ns(self.clock, self.clock.utc_ns())

    def video_in(self, tx: Session, attempt_id: str, station: str, window_end_utc_ns: int | None) -> VideoEvidence:
        """Inside the signing transaction: link the window's segments (kept 3 years), audit the links, and
        return what the result lists. The window ends at `window_end_utc_ns` (real UTC, from `settle`),
        or now when the signing did not wait for a post-roll."""
        checked_in = tx.execute(select(CheckIn.utc_ns).where(CheckIn.attempt_id == attempt_id)
                                .order_by(CheckIn.utc_ns).limit(1)).scalar()
        start_exam = checked_in if checked_in is not None else self.clock.utc_ns()
        start = real_utc_ns(self.clock, start_exam) - int(self.config.recording.pre_roll_s * 1e9)
        end = window_end_utc_ns if window_end_utc_ns is not None else self._real_now()
        segments = tx.execute(select(EvidenceSegment).where(
            EvidenceSegment.station == station, EvidenceSegment.end_utc_ns > start,
            EvidenceSegment.start_utc_ns < end, EvidenceSegment.deleted_utc_ns.is_(None))
            .order_by(EvidenceSegment.camera, EvidenceSegment.start_utc_ns)).scalars().all()
        gaps = tx.execute(select(CameraGapRow).where(
            CameraGapRow.station == station, CameraGapRow.from_utc_ns < end,
            (CameraGapRow.to_utc_ns.is_(None)) | (CameraGapRow.to_utc_ns > start))
            .order_by(CameraGapRow.camera, CameraGapRow.from_utc_ns)).scalars().all()
        stills = tx.execute(select(AttemptStill).where(AttemptStill.attempt_id == attempt_id)
                            .order_by(AttemptStill.camera)).scalars().all()
        keep = end + KEEP_NS
        for seg in segments:
            if tx.get(AttemptEvidence, (attempt_id, seg.segment_id)) is None:
                tx.add(AttemptEvidence(attempt_id=attempt_id, segment_id=seg.segment_id))
            seg.keep_until_utc_ns = max(seg.keep_until_utc_ns or 0, keep)
        gap_list = [_gap(g.camera, g.from_utc_ns, g.to_utc_ns, g.cause) for g in gaps]
        cameras = [c.id for c in self.config.station(station).cameras]
        gap_list += _holes(cameras, segments, gaps, real_utc_ns(self.clock, start_exam), end)
        audit.append(tx, "exam-system", LINKED, f"attempt:{attempt_id}", {
            "attempt_id": attempt_id, "from_utc_ns": start, "to_utc_ns": end,
            "segments": [{"segment_id": s.segment_id, "sha256": s.sha256} for s in segments],
            "gaps": [g.id for g in gaps], "keep_until_utc_ns": keep}, self.clock.utc_ns())
        return VideoEvidence(
            segments=[{"segment_id": s.segment_id, "camera": s.camera, "sha256": s.sha256,
                       "from": iso_utc(s.start_utc_ns), "to": iso_utc(s.end_utc_ns), "frames": s.frames,
                       "size_bytes": s.size_bytes, "recovered": bool(s.recovered)} for s in segments],
            gaps=sorted(gap_list, key=lambda g: (g["camera"], g["from"])),
            stills=[{"camera": s.camera, "sha256": s.sha256, "at": iso_utc(s.utc_ns)} for s in stills],
            pointer=_Pointer(self.clock, [(s.camera, s.segment_id, s.start_utc_ns, s.end_utc_ns) for s in segments]))


class _Pointer:
    """A moment of the attempt's clock -> its place in each camera's segments."""

    def __init__(self, clock: Clock, spans: Sequence[tuple[str, str, int, int]]) -> None:
        self.clock = clock
        self.spans = spans

    def __call__(self, exam_utc_ns: int) -> list[dict[str, Any]]:
        t = real_utc_ns(self.clock, exam_utc_ns)
        return [{"camera": cam, "segment_id": sid, "offset_s": round((t - a) / 1e9, 3)}
                for cam, sid, a, b in self.spans if a <= t < b]


def _gap(camera: str, from_ns: int, to_ns: int | None, cause: str) -> dict[str, Any]:
    return {"camera": camera, "from": iso_utc(from_ns), "to": None if to_ns is None else iso_utc(to_ns), "cause": cause}


def _holes(cameras: Sequence[str], segments: Sequence[EvidenceSegment], gaps: Sequence[CameraGapRow],
           start: int, end: int) -> list[dict[str, Any]]:
    """Stretches from check-in to the window's end with neither a segment nor a recorded gap (the
    controller was not recording, or a camera's video was not final when the result was signed).
    The pre-roll is footage kept when there is some; a pre-roll from before the recorder started is
    not a hole in the exam's record."""
    out = []
    for cam in cameras:
        spans = sorted([(s.start_utc_ns, s.end_utc_ns) for s in segments if s.camera == cam]
                       + [(g.from_utc_ns, g.to_utc_ns if g.to_utc_ns is not None else end) for g in gaps
                          if g.camera == cam])
        cursor = start
        for a, b in spans:
            if a - cursor > HOLE_NS:
                out.append(_gap(cam, cursor, a, "not recorded: the controller was not recording this camera"))
            cursor = max(cursor, b)
        if end - cursor > HOLE_NS:
            out.append(_gap(cam, cursor, end, "not recorded, or its video was not final when the result was signed"))
    return out
