"""What the devices tell the station while an exam runs: samples, unreadable values, online/offline.

Each sample becomes the station's latest state of its signal (what the next item's rest check and
check-in by ID card read) and, while an item runs there, a record of its timeline; a live veto
condition stops the item at the next tick. A value a device could not have meant is a device
fault in the timeline, never a sample. A device going offline or coming back is remembered, and
recorded and pauses the clock only when the running item reads that device.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from devices.clock import Clock
from devices.ref import DeviceRef
from devices.sample import Sample, ValueFault
from scoring.detectors.events import WhenParams
from scoring.rubric import Rubric
from scoring.timeline import FaultRecord, Record, SampleRecord
from station import session as sm
from station.attempt_book import AttemptBook
from station.config import SiteConfig
from station.events import DeviceHealthEvent, FindingEvent, SampleEvent
from station.exam_run import ExamRun
from station.rig_check import DeviceState, RigState, devices_read
from station.service_part import ServicePart

log = logging.getLogger(__name__)


class DeviceEvents(ServicePart):
    def __init__(self, book: AttemptBook, config: SiteConfig, rubric_of: Callable[[str], Rubric], rig: RigState,
                 clock: Clock, exam: ExamRun) -> None:
        super().__init__(book, config, rubric_of, rig, clock)
        self.events = book.events
        self.exam = exam
        self._refused_since: dict[tuple[str, DeviceRef], tuple[int, int]] = {}
        """(attempt, device) -> when its records were first refused (mono, utc): its gap so far."""
        self.samples: dict[DeviceRef, int] = {}
        """Samples each device reported (counted for /metrics; a plain dict, written on the loop only)."""
        self.samples_refused: dict[DeviceRef, int] = {}
        """Of those, refused because the station's store was full (the poller offers them again)."""

    def record_sample(self, sample: Sample) -> bool:
        """A device reported a change. Runs on the event loop and never waits: False when the
        station's store is full and the sample was not accepted (a poller offers it again; the
        stretch until a sample of that device is accepted again is recorded as a device gap)."""
        station = sample.device.station
        counts = self.samples
        counts[sample.device] = counts.get(sample.device, 0) + 1
        self.rig.sample(station, sample)
        self.events.publish(SampleEvent(sample.device, sample.signal, sample.value, sample.t_utc_ns))
        a = self.book.running(station)
        if a is None:
            return True
        value = dict(sample.value) if isinstance(sample.value, Mapping) else sample.value
        record = SampleRecord(sample.signal, value, sample.t_mono_ns, sample.t_utc_ns, str(sample.device))
        if not self._store(a.attempt_id, sample.device, record):
            self.samples_refused[sample.device] = self.samples_refused.get(sample.device, 0) + 1
            return False
        code = self._live_veto(a, sample)
        if code is not None:
            log.warning("attempt %s: veto %s (%s = %s): the item stops", a.attempt_id, code, sample.signal,
                        sample.value)
            self.events.publish(FindingEvent(station, a.attempt_id, a.running_item.code if a.running_item else "",
                                             code, f"{sample.signal} = {sample.value}", sample.t_utc_ns))
            self.exam.flag_veto(a.attempt_id, code)
        return True

    def _store(self, attempt_id: str, device: DeviceRef, record: Record) -> bool:
        """Offer `record` to the timeline; a device whose records were refused gets its gap recorded
        (offline from the first refusal to this record) before its next record is accepted."""
        key = (attempt_id, device)
        since = self._refused_since.get(key)
        if since is not None:
            gap = [FaultRecord(str(device), False, "not stored: the station's storage was full or stalled", *since),
                   FaultRecord(str(device), True, "", record.t_mono_ns, record.t_utc_ns)]
            if not all(self.book.offer(attempt_id, r) for r in gap):
                return False
            del self._refused_since[key]
        if self.book.offer(attempt_id, record):
            return True
        self._refused_since.setdefault(key, (record.t_mono_ns, record.t_utc_ns))
        return False

    def _live_veto(self, a: sm.Attempt, sample: Sample) -> str | None:
        """A veto row whose `reached` condition this sample meets, for the running item: checked live so
        the item stops at once; the veto detectors judge the whole item again when it is scored."""
        it = a.running_item
        if it is None:
            return None
        for veto in self.rubric_of(a.operation).item(it.code).vetoes:
            det = veto.detector
            if det is not None and det.name == "reached" and isinstance(det.params, WhenParams):
                cond = det.params.when
                if cond.signal == sample.signal and cond.holds(sample.value):
                    return veto.code
        return None

    def record_value_fault(self, fault: ValueFault) -> None:
        """A device sent a value its profile cannot represent (NaN, out of range): kept in the
        running item's timeline with its raw form, never as a sample; the rows that read the signal
        are left unverified at that moment for the examiner."""
        station = fault.device.station
        log.warning("%s: %s = %s cannot be a reading (%s); recorded as a device fault", fault.device, fault.signal,
                    fault.raw, fault.reason)
        a = self.book.running(station)
        if a is not None:
            record = FaultRecord(str(fault.device), True, fault.reason, fault.t_mono_ns, fault.t_utc_ns, fault.signal,
                                 fault.raw)
            self._store(a.attempt_id, fault.device, record)

    def device_status(self, device: DeviceRef, online: bool, reason: str) -> None:
        """A device went offline or came back. It is remembered (an item whose device is down does
        not start); when the item running at its station reads it, it is recorded in that item's
        timeline (a device gap) and pauses (resumes) the item's clock. Call it in the order the
        device layer reported the changes (station.status_feed)."""
        station = device.station
        self.events.publish(DeviceHealthEvent(device, online, reason))
        with self.book.lock:
            self.rig.set_device(device, DeviceState(online, reason))
            attempt_id = self.book.active(station)
            if attempt_id is None:
                return
            a = self.book.get(attempt_id)
            it = a.running_item
            if it is None or device not in devices_read(self.exam.item(a, it.code), self.config.station(station)):
                return  # a device the running item does not read (the cabinet during CPR): nothing to pause
            records: list[Record] = [FaultRecord(str(device), online, reason, self.clock.mono_ns(),
                                                 self.clock.utc_ns())]
            self.book.step(attempt_id, "device-monitor", sm.device_status, str(device), online, records=records)
