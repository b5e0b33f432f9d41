"""The evidence index: every finished segment and every camera gap, stored with its audit entry.

Why a worker thread of its own: the recorder reports from its camera threads (`RecorderListener`,
which must return at once) and the database's writer lock may be held for a moment by the
timeline's commits; a camera thread must never wait for that. So each fact is queued here and one
thread stores them in order: a segment row and its `evidence.segment` audit entry (with the file's
SHA-256) in one transaction, so a file is either indexed and chained or not indexed at all; a gap
row when it opens and its end when it closes, each with an `evidence.gap` entry.

Gaps are alarms (`camera.gap`): what happened and what to do, cleared when the camera records
again. The index also keeps, per camera, how far the recording is final (`covered_until`), which
the signing waits on (station.evidence_link): a result lists its post-roll only once it is final.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from sqlalchemy import select, update

from devices.camera.contract import CameraGap, Segment
from station import audit
from station.db.disk import free_space_todo
from station.db.engine import Database
from station.db.models import CameraGapRow, EvidenceSegment
from station.events import AlarmEvent, EventBus

log = logging.getLogger(__name__)

SEGMENT_STORED: Final = "evidence.segment"
"""Audit action of a finished segment; payload: segment_id, station, camera, path, sha256, size, times, frames."""
GAP_RECORDED: Final = "evidence.gap"
"""Audit action of a camera gap, once when it opens (to_utc_ns null) and once when it closes."""
GAP_ALARM: Final = "camera.gap"
ACTOR: Final = "recorder"
RATE_WINDOW_S: Final = 300.0


@dataclass(slots=True)
class _Coverage:
    final_until_utc_ns: int = 0
    """End of the latest segment stored for the camera."""
    open_gap_since_utc_ns: int | None = None
    """Set while the camera is in a gap: the recording is final (absent) from there on, until it closes."""


def hhmmss(utc_ns: int) -> str:
    return datetime.fromtimestamp(utc_ns / 1e9, UTC).astimezone().strftime("%H:%M:%S")


class EvidenceIndex:
    """Implements `devices.camera.contract.RecorderListener` for the station; `start()` before the recorder."""

    def __init__(self, db: Database, data_dir: Path, events: EventBus | None = None,
                 utc_ns: Callable[[], int] = time.time_ns) -> None:
        self.db = db
        self.data_dir = data_dir
        self.events = events
        self._utc_ns = utc_ns
        self._queue: queue.Queue[Callable[[], None] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._cond = threading.Condition()
        self._coverage: dict[tuple[str, str], _Coverage] = {}
        self._gap_ids: dict[tuple[str, str, str, int], int] = {}
        self._open_gaps: dict[str, dict[str, CameraGap]] = {}
        """Station -> camera -> its open gap. The hall keeps one `camera.gap` alarm per station, so it
        names every camera of the station still unrecorded and clears when the last records again."""
        self._recent: deque[tuple[float, int]] = deque()
        """(monotonic s, bytes) of the segments stored in the last RATE_WINDOW_S: the recording rate."""
        self.failures = 0
        """Facts that could not be stored (logged and alarmed; the files stay on disk)."""
        self._stopped = False
        """Set once the recorder and then this index have stopped: no segment will come any more."""

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("the evidence index is already started")
        with self._cond:
            self._stopped = False
        self._thread = threading.Thread(target=self._work, name="evidence-index", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 30.0) -> None:
        """Store what is queued, then stop the worker (call after the recorder stopped)."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._queue.put(None)
        thread.join(timeout_s)
        if thread.is_alive():
            log.error("evidence index: %d facts still queued after %.0f s; they are stored on the next start from "
                      "the files on disk only if recovery finds them", self._queue.qsize(), timeout_s)
        with self._cond:  # a signature waiting for the post-roll has all the video it will get
            self._stopped = True
            self._cond.notify_all()

    def flush(self, timeout_s: float = 30.0) -> bool:
        """Wait until everything reported so far is stored (tests, shutdown)."""
        done = threading.Event()
        self._queue.put(done.set)
        return done.wait(timeout_s)

    # -- RecorderListener (called on camera threads: queue and return) ---------------------------

    def segment_closed(self, segment: Segment) -> None:
        self._queue.put(lambda: self._store_segment(segment))

    def gap_opened(self, gap: CameraGap) -> None:
        self._queue.put(lambda: self._open_gap(gap))

    def gap_closed(self, gap: CameraGap) -> None:
        self._queue.put(lambda: self._close_gap(gap))

    def index_recovered(self, recovered: Sequence[tuple[Segment | None, CameraGap]]) -> None:
        """Segments rebuilt from `.part` files a crash left (None: nothing was readable), each with the
        gap of what was lost."""
        for segment, gap in recovered:
            if segment is not None:
                self.segment_closed(segment)
            self.gap_opened(gap)
            if not gap.is_open:
                self.gap_closed(gap)

    # -- what the signing waits on ---------------------------------------------------------------

    def covered_until(self, station: str, camera: str) -> int | None:
        """UTC up to which this camera's recording is final (segment stored, or an open gap: None = forever)."""
        with self._cond:
            cov = self._coverage.get((station, camera))
            if cov is None:
                return 0
            return None if cov.open_gap_since_utc_ns is not None else cov.final_until_utc_ns

    def wait_covered(self, station: str, cameras: Sequence[str], until_utc_ns: int, timeout_s: float) -> list[str]:
        """Wait until every camera's recording is final up to `until_utc_ns`; return the cameras that are not.
        The wait ends early once the index has stopped (the controller is stopping: no segment will
        come, and the stop must not wait a whole post-roll for this thread)."""
        deadline = time.monotonic() + timeout_s

        def behind() -> list[str]:
            return [c for c in cameras if (u := self.covered_until(station, c)) is not None and u < until_utc_ns]

        with self._cond:
            while (late := behind()) and not self._stopped and (left := deadline - time.monotonic()) > 0:
                self._cond.wait(min(left, 0.5))
        return late

    def bytes_per_s(self) -> float:
        """What the cameras wrote per second lately (for the disk watch's hours-left estimate)."""
        with self._cond:
            self._trim()
            return sum(n for _, n in self._recent) / RATE_WINDOW_S

    def _trim(self) -> None:
        while self._recent and self._recent[0][0] < time.monotonic() - RATE_WINDOW_S:
            self._recent.popleft()

    # -- the worker ------------------------------------------------------------------------------

    def _work(self) -> None:
        while (job := self._queue.get()) is not None:
            try:
                job()
            except Exception as err:  # a fact not stored must be seen, and the next ones still stored
                self.failures += 1
                log.exception("evidence index: a recorder fact was not stored")
                self._alarm("evidence.index", f"the evidence index could not store a recorder fact ({err}); the "
                            "segment files stay on disk", "check the disk and the database, then run `examstation "
                            "audit verify`", None)

    def _relative(self, path: Path) -> str:
        try:
            return str(path.resolve().relative_to(self.data_dir.resolve()))
        except ValueError:
            return str(path)

    def _store_segment(self, s: Segment) -> None:
        rel = self._relative(s.path)
        with self.db.write() as tx:
            if tx.get(EvidenceSegment, s.segment_id) is not None:
                log.warning("evidence index: segment %s is indexed already; the report is ignored", s.segment_id)
                return
            tx.add(EvidenceSegment(
                segment_id=s.segment_id, station=s.station, camera=s.camera, path=rel, sha256=s.sha256,
                size_bytes=s.size_bytes, start_utc_ns=s.start_utc_ns, end_utc_ns=s.end_utc_ns,
                start_mono_ns=s.start_mono_ns, end_mono_ns=s.end_mono_ns, clock_run=s.clock_run, frames=s.frames,
                codec=s.codec, width=s.width, height=s.height, recovered=int(s.recovered)))
            audit.append(tx, ACTOR, SEGMENT_STORED, f"segment:{s.segment_id}", {
                "segment_id": s.segment_id, "station": s.station, "camera": s.camera, "path": rel,
                "sha256": s.sha256, "size_bytes": s.size_bytes, "start_utc_ns": s.start_utc_ns,
                "end_utc_ns": s.end_utc_ns, "frames": s.frames, "recovered": s.recovered}, self._utc_ns())
        with self._cond:
            cov = self._coverage.setdefault((s.station, s.camera), _Coverage())
            cov.final_until_utc_ns = max(cov.final_until_utc_ns, s.end_utc_ns)
            self._recent.append((time.monotonic(), s.size_bytes))
            self._trim()
            self._cond.notify_all()

    def _open_gap(self, g: CameraGap) -> None:
        with self.db.write() as tx:
            row = CameraGapRow(station=g.station, camera=g.camera, from_utc_ns=g.from_utc_ns, to_utc_ns=g.to_utc_ns,
                               from_mono_ns=g.from_mono_ns, to_mono_ns=g.to_mono_ns, clock_run=g.clock_run,
                               cause=g.cause)
            tx.add(row)
            tx.flush()
            audit.append(tx, ACTOR, GAP_RECORDED, f"camera:{g.station}/{g.camera}", _gap_payload(row), self._utc_ns())
            gap_id = row.id
        self._gap_ids[_gap_key(g)] = gap_id
        if g.is_open:
            with self._cond:
                self._coverage.setdefault((g.station, g.camera), _Coverage()).open_gap_since_utc_ns = g.from_utc_ns
                self._cond.notify_all()
            self._open_gaps.setdefault(g.station, {})[g.camera] = g
            self._gap_alarm(g.station)

    def _close_gap(self, g: CameraGap) -> None:
        gap_id = self._gap_ids.pop(_gap_key(g), None)
        with self.db.write() as tx:
            if gap_id is None:  # opened by a run before this one (or its open report was lost): find it
                gap_id = tx.execute(select(CameraGapRow.id).where(
                    CameraGapRow.station == g.station, CameraGapRow.camera == g.camera,
                    CameraGapRow.from_utc_ns == g.from_utc_ns, CameraGapRow.to_utc_ns.is_(None))).scalar()
            if gap_id is None:
                raise LookupError(f"camera {g.station}/{g.camera}: a gap from {hhmmss(g.from_utc_ns)} closed that "
                                  "was never opened")
            tx.execute(update(CameraGapRow).where(CameraGapRow.id == gap_id)
                       .values(to_utc_ns=g.to_utc_ns, to_mono_ns=g.to_mono_ns))
            row = tx.get(CameraGapRow, gap_id)
            assert row is not None
            audit.append(tx, ACTOR, GAP_RECORDED, f"camera:{g.station}/{g.camera}", _gap_payload(row), self._utc_ns())
        with self._cond:
            cov = self._coverage.setdefault((g.station, g.camera), _Coverage())
            cov.open_gap_since_utc_ns = None
            cov.final_until_utc_ns = max(cov.final_until_utc_ns, g.to_utc_ns or 0)
            self._cond.notify_all()
        seconds = ((g.to_utc_ns or g.from_utc_ns) - g.from_utc_ns) / 1e9
        again = f"camera {g.station}/{g.camera} records again; a gap of {seconds:.1f} s ({g.cause}) is recorded"
        still = self._open_gaps.get(g.station, {})
        still.pop(g.camera, None)
        if still:  # another camera of the station is still unrecorded: the alarm stays, naming it
            self._gap_alarm(g.station, again)
        else:
            self._open_gaps.pop(g.station, None)
            self._alarm(GAP_ALARM, again, "", g.station, cleared=True)

    def _gap_alarm(self, station: str, news: str = "") -> None:
        """The station's `camera.gap` alarm, naming each of its cameras in a gap (`news`: what changed)."""
        gaps = sorted(self._open_gaps[station].values(), key=lambda g: g.from_utc_ns)
        parts = [f"camera {g.station}/{g.camera} is not recorded since {hhmmss(g.from_utc_ns)}: {g.cause}"
                 for g in gaps]
        tail = ("the gap is recorded and shown with every attempt it overlaps" if len(gaps) == 1
                else "the gaps are recorded and shown with every attempt they overlap")
        what = "; ".join([*parts, tail])
        if news:
            what = f"{news}; {what}"
        todos = list(dict.fromkeys(_todo(g.cause, self.data_dir) for g in gaps))
        self._alarm(GAP_ALARM, what, "; ".join(todos), station)

    def _alarm(self, code: str, what: str, todo: str, station: str | None, cleared: bool = False) -> None:
        if cleared:
            log.warning("%s", what)
        else:
            log.error("ALARM %s; %s", what, todo)
        if self.events is not None:
            self.events.publish(AlarmEvent(code, what, todo, station, self._utc_ns(), cleared=cleared))


def _gap_key(g: CameraGap) -> tuple[str, str, str, int]:
    return g.station, g.camera, g.clock_run, g.from_mono_ns


def _gap_payload(row: CameraGapRow) -> dict[str, object]:
    return {"gap_id": row.id, "station": row.station, "camera": row.camera, "from_utc_ns": row.from_utc_ns,
            "to_utc_ns": row.to_utc_ns, "cause": row.cause}


def _todo(cause: str, data_dir: Path) -> str:
    """What a proctor or the site administrator does about a gap of this cause."""
    if cause.startswith("disk full"):
        return f"{free_space_todo(data_dir)}; recording resumes by itself once there is room"
    if cause.startswith("recorder fell behind"):
        return ("the disk or the processor of this box cannot keep up with the cameras: check the disk's health and "
                "what else runs on the box; no finished segment is deleted to catch up")
    if cause.startswith("process stopped"):
        return "the controller was stopped mid-recording; nothing to do, the readable frames were kept"
    return "check the camera's power and network cable; recording resumes by itself when it answers"
