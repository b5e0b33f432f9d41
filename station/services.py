"""The station's application layer, in one place: every exam action the CLI, the controller, the
uplink and the UI may take, each handed to the module that does it.

| module | what users do there |
|---|---|
| station.registration | the batch list of candidates; the invigilator's ID check at a station (check-in) |
| station.exam_run | the draw; starting, pausing, resuming and ending items; the item clock; vetoes |
| station.device_events | what the devices say while an exam runs: samples, unreadable values, offline |
| station.sign_off | scoring, the examiners' marks, overrides and gap decisions, signatures |
| station.results | the signed result stored with its outbox row |
| station.attempt_book | the one writer of attempts, their timelines and their audit entries |
| station.storage_watch | the alarm, and running items paused, while the store cannot keep up |
| station.events | the event stream the UI, the live uplink and the status lines subscribe to |

Calls may wait for a commit (fsync): async code calls them with `asyncio.to_thread`, except
`record_sample` and `record_value_fault`, which run on the event loop and never wait.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from devices.clock import Clock, ContinuousClock
from devices.ref import DeviceRef
from devices.sample import Sample, ValueFault
from scoring.rubric import Rubric
from scoring.rubric_loader import rubric_for
from scoring.sheet import ScoreSheet
from scoring.timeline import DecisionKind
from station import session as sm
from station.attempt_book import AttemptBook
from station.config import SiteConfig
from station.db import Database
from station.device_events import DeviceEvents
from station.errors import ServiceError
from station.events import EventBus
from station.exam_run import ExamRun
from station.registration import Registration
from station.rig_check import RigState
from station.sign_off import SignOff
from station.signing import SiteKey
from station.storage_watch import StorageWatch
from station.stored import latest_stored_mono_ns
from station.timeline_store import MAX_QUEUE
from station.uplink import manifest, outbox

__all__ = ["ServiceError", "StationServices"]


class StationServices:
    """Builds the application layer for one site and one database (the composition root)."""

    def __init__(self, config: SiteConfig, db: Database, key: SiteKey, clock: Clock,
                 software: str | None = None, store_capacity: int = MAX_QUEUE) -> None:
        """`store_capacity`: timeline records held in memory while the database falls behind."""
        self.config = config
        self.db = db
        self.key = key
        self.clock: Clock = ContinuousClock(clock, latest_stored_mono_ns(db))
        """Give this clock to the device layer too: samples and lifecycle share one time line."""
        self.software = software or manifest.software()
        """The producer named in result documents: `examstation <version>`."""
        self._rubrics: dict[str, Rubric] = {}
        self.events = EventBus()
        """What happens, as it happens: samples, item states, device health, alarms, results."""
        self.book = AttemptBook(db, self.clock, self.events, store_capacity)
        self.rig = RigState()
        parts = (self.book, config, self.rubric, self.rig, self.clock)  # what every part works with
        self.registration = Registration(*parts)
        self.exam = ExamRun(*parts)
        self.devices = DeviceEvents(*parts, self.exam)
        self.sign_off = SignOff(*parts, key, self.software)
        self.storage = StorageWatch(self.book, self.clock)
        self.ticked_mono_ns: int | None = None
        """When the main loop last ticked the item clocks (`tick`): /healthz fails when it stops."""

    def close(self) -> None:
        """Store what is queued and stop the writer (it may wait for the disk: call it off the loop)."""
        self.book.close()

    def rubric(self, operation: str) -> Rubric:
        """The rubric of an operation type, loaded once."""
        if operation not in self._rubrics:
            self._rubrics[operation] = rubric_for(operation)
        return self._rubrics[operation]

    # -- reading attempts ---------------------------------------------------------------------
    def attempt(self, attempt_id: str) -> sm.Attempt:
        return self.book.get(attempt_id)

    def active_attempt(self, station: str) -> str | None:
        return self.book.active(station)

    def active_attempts(self) -> dict[str, str]:
        """station -> attempt in progress there."""
        return self.book.active_attempts()

    def awaiting_sign_off(self) -> list[tuple[str, str]]:
        """(station, attempt) whose items are over and whose result is not yet signed."""
        return self.book.awaiting_sign_off()

    # -- candidates and check-in ----------------------------------------------------------------
    def register_candidate(self, id_number: str, name: str, operation: str, batch: str,
                           photo_ref: str | None = None, attempt_number: int = 1) -> None:
        self.registration.register_candidate(id_number, name, operation, batch, photo_ref, attempt_number)

    def check_in(self, id_number: str, station: str, verified_by: str, method: str = "manual") -> str:
        return self.registration.check_in(id_number, station, verified_by, method)

    # -- the exam run ----------------------------------------------------------------------------
    def draw(self, attempt_id: str, seed: int, chosen: Mapping[str, str] | None = None) -> sm.Attempt:
        return self.exam.draw(attempt_id, seed, chosen)

    def assign(self, attempt_id: str, items: Mapping[str, str], by: str) -> sm.Attempt:
        return self.exam.assign(attempt_id, items, by)

    def start_item(self, attempt_id: str, code: str, examiner: str, start_anyway: str = "") -> None:
        self.exam.start_item(attempt_id, code, examiner, start_anyway)

    def pause(self, attempt_id: str, reason: str, by: str) -> None:
        self.exam.pause(attempt_id, reason, by)

    def resume(self, attempt_id: str, reason: str, by: str) -> None:
        self.exam.resume(attempt_id, reason, by)

    def end_item(self, attempt_id: str, reason: str, by: str, with_gap: str = "") -> None:
        self.exam.end_item(attempt_id, reason, by, with_gap)

    def item_gap(self, attempt_id: str) -> str:
        return self.exam.item_gap(attempt_id)

    def veto(self, attempt_id: str, item: str, code: str, examiner: str, note: str = "") -> None:
        self.exam.veto(attempt_id, item, code, examiner, note)

    def tick(self) -> None:
        self.exam.tick()
        self.ticked_mono_ns = self.clock.mono_ns()

    # -- the devices -----------------------------------------------------------------------------
    def record_sample(self, sample: Sample) -> bool:
        return self.devices.record_sample(sample)

    def record_value_fault(self, fault: ValueFault) -> None:
        self.devices.record_value_fault(fault)

    def device_status(self, device: DeviceRef, online: bool, reason: str) -> None:
        self.devices.device_status(device, online, reason)

    # -- review and sign-off -----------------------------------------------------------------------
    def score(self, attempt_id: str) -> ScoreSheet:
        return self.sign_off.score(attempt_id)

    def mark(self, attempt_id: str, item: str, code: str, count: int, examiner: str, note: str = "") -> None:
        self.sign_off.mark(attempt_id, item, code, count, examiner, note)

    def override(self, attempt_id: str, item: str, row: str, points: float, reason: str, examiner: str) -> None:
        self.sign_off.override(attempt_id, item, row, points, reason, examiner)

    def decide_gap(self, attempt_id: str, item: str, choice: DecisionKind, reason: str, examiner: str) -> None:
        self.sign_off.decide_gap(attempt_id, item, choice, reason, examiner)

    def review(self, attempt_id: str, examiner: str) -> None:
        self.sign_off.review(attempt_id, examiner)

    def candidate_decision(self, attempt_id: str, item: str, signed: bool) -> None:
        self.sign_off.candidate_decision(attempt_id, item, signed)

    def examiner_sign(self, attempt_id: str, examiner: str, wait_for_video: bool = True) -> dict[str, Any] | None:
        return self.sign_off.examiner_sign(attempt_id, examiner, wait_for_video)

    # -- results ----------------------------------------------------------------------------------
    def settle_receipts(self, receipts: list[outbox.Receipt]) -> list[outbox.Applied]:
        """The province's receipts, applied through the one writer of attempts."""
        return self.book.settle_receipts(receipts)

    # -- after a restart ----------------------------------------------------------------------------
    def recover(self) -> list[str]:
        """After a restart: every item that was running is paused ('controller restarted') so its
        clock does not count the outage; the examiner resumes or closes it."""
        resumed = []
        for attempt_id in self.book.active_attempts().values():
            if self.book.get(attempt_id).state == sm.State.RUNNING:
                self.book.step(attempt_id, "exam-system", sm.pause, "controller restarted")
                resumed.append(attempt_id)
        return resumed
