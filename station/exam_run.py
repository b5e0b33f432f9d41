"""The exam run: the draw, each item's start, pauses and end, its clock, and vetoes.

What the examiner does at the station between check-in and scoring. An item starts only on a rig
at its rest state with every device it reads online (or by the examiner's decision, audited);
it ends `done` after a device gap only by the examiner's choice between a re-sit and scoring with
the gap; the clock (`tick`) ends it at its time limit or when a live veto fired.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping

from sqlalchemy.orm import Session

from devices.clock import Clock
from scoring.gaps import item_gaps, needs_decision, offline_ns
from scoring.rubric import Item, Rubric
from scoring.timeline import END_REASONS, DecisionRecord, EndReason, FaultRecord, MarkRecord, Record, SampleRecord
from station import audit
from station import session as sm
from station.attempt_book import AttemptBook
from station.config import SiteConfig
from station.errors import ServiceError
from station.rig_check import RigState, devices_read, readiness
from station.service_part import ServicePart
from station.stored import load_faults


class ExamRun(ServicePart):
    def __init__(self, book: AttemptBook, config: SiteConfig, rubric_of: Callable[[str], Rubric], rig: RigState,
                 clock: Clock) -> None:
        super().__init__(book, config, rubric_of, rig, clock)
        self._vetoed: dict[str, str] = {}
        self._vetoed_lock = threading.Lock()

    def item(self, a: sm.Attempt, code: str) -> Item:
        try:
            return self.rubric_of(a.operation).item(code)
        except KeyError as err:
            raise ServiceError(f"attempt {a.attempt_id}: {err.args[0]}") from None

    def draw(self, attempt_id: str, seed: int, chosen: Mapping[str, str] | None = None) -> sm.Attempt:
        rubric = self.rubric_of(self.book.get(attempt_id).operation)
        subjects = [sm.ItemChoice(s.code, tuple((i.code, i.time_limit_s, i.candidate_may_choose)
                                                for i in rubric.items if i.subject == s.code))
                    for s in rubric.subjects]
        return self.book.step(attempt_id, "exam-system", lambda at, n: sm.draw(at, subjects, n, seed, chosen)).attempt

    def assign(self, attempt_id: str, items: Mapping[str, str], by: str) -> sm.Attempt:
        """The exam system assigns the items (a rehearsal or a re-test of one subject): no draw."""
        rubric = self.rubric_of(self.book.get(attempt_id).operation)
        subjects = []
        for subject, code in items.items():
            it = rubric.item(code)
            subjects.append(sm.ItemChoice(subject, ((it.code, it.time_limit_s, True),)))
        return self.book.step(attempt_id, by, lambda at, n: sm.draw(at, subjects, n, 0, dict(items))).attempt

    def start_item(self, attempt_id: str, code: str, examiner: str, start_anyway: str = "") -> None:
        """Start a drawn item. The rig must be at the item's rest state and every device the item
        reads online (station.rig_check); otherwise the item starts only with the examiner's reason
        in `start_anyway`, which is audited and shown on the sheet."""
        with self.book.lock:  # no attempt may change between the check and the start
            a = self.book.get(attempt_id)
            item = self.item(a, code)
            station = self.config.station(a.station)
            latest = self.rig.latest(a.station)
            devices = self.rig.devices()
            ready = readiness(item, station, latest, devices)
            reason = start_anyway.strip()
            if not ready.ready and not reason:
                raise ServiceError(
                    f"station {a.station} is not at rest for {code}: {'; '.join(ready.problems())}. Restore the rig "
                    "(the bench's 复位 key clears the self-check verdict and resets tripped protection; switches off, "
                    "meter leads off, every cabinet item back, the extinguisher back on its stand) and bring the "
                    "device back online, then start again; or start anyway, giving the reason")
            start_ns, utc_ns = self.clock.mono_ns(), self.clock.utc_ns()
            # The station's state just before the item starts: the timeline then holds every signal's
            # initial value (devices report on change only) and every device already down.
            initial: list[Record] = [SampleRecord(s.signal, dict(s.value) if isinstance(s.value, Mapping) else s.value,
                                                  start_ns - 1, utc_ns, str(s.device))
                                     for s in sorted(latest.values(), key=lambda x: x.signal)]
            for device in devices_read(item, station):
                state = devices.get(device)
                if state is None or state.online is not True:
                    why = state.reason if state is not None and state.reason else "has not reported"
                    initial.append(FaultRecord(str(device), False, why, start_ns - 1, utc_ns))
            log_it = None
            if not ready.ready:
                initial.append(DecisionRecord(code, "start_anyway", reason, examiner, start_ns - 1, utc_ns))

                def log_it(tx: Session, _a: sm.Attempt, n: sm.Now) -> None:
                    audit.append(tx, examiner, "item.start_anyway", f"attempt:{attempt_id}",
                                 {"item": code, "reason": reason, "not_at_rest": ready.problems()}, n.utc_ns)

            self.book.step(attempt_id, examiner, sm.start_item, code, records=initial, extra=log_it)

    def pause(self, attempt_id: str, reason: str, by: str) -> None:
        self.book.step(attempt_id, by, sm.pause, reason)

    def resume(self, attempt_id: str, reason: str, by: str) -> None:
        self.book.step(attempt_id, by, sm.resume, reason)

    def end_item(self, attempt_id: str, reason: str, by: str, with_gap: str = "") -> None:
        """End the running item. Ending it `done` while a device it reads is down, or after one was
        down for over 10 % of it, needs the examiner's choice: end it `interrupted` (a re-sit, no
        score), or score it with the gap, giving the reason in `with_gap` (audited; the rows whose
        evidence fell in the gap are then left unverified on the sheet for the examiner)."""
        try:
            why = EndReason(reason)
        except ValueError:
            raise ServiceError(f"attempt {attempt_id}: end reason {reason!r} is not one of: {END_REASONS}") from None
        a = self.book.get(attempt_id)
        it = a.running_item
        records: list[Record] = []
        log_it = None
        gap_reason = with_gap.strip()
        if it is not None and why == EndReason.DONE:
            gap = self._gap(a, self.item(a, it.code), it.started_ns or 0)
            if gap and not gap_reason:
                raise ServiceError(
                    f"attempt {attempt_id} item {it.code}: {gap}, so the candidate could not be fully observed. End it "
                    "as 'interrupted' (a re-sit: no score for the item), or score it with the gap, giving your reason "
                    "(with_gap)")
            if gap_reason:
                if not gap:
                    raise ServiceError(f"attempt {attempt_id} item {it.code}: no device it reads was down; end it "
                                       "without with_gap")
                records.append(DecisionRecord(it.code, "score_with_gap", gap_reason, by, self.clock.mono_ns(),
                                              self.clock.utc_ns()))
                code = it.code

                def log_it(tx: Session, _a: sm.Attempt, n: sm.Now) -> None:
                    audit.append(tx, by, "item.score_with_gap", f"attempt:{attempt_id}",
                                 {"item": code, "reason": gap_reason, "gap": gap}, n.utc_ns)

        self.book.step(attempt_id, by, sm.end_item, why, records=records, extra=log_it)

    def item_gap(self, attempt_id: str) -> str:
        """Why ending the running item `done` needs the examiner's choice (a device it reads is down,
        or was for over 10 % of it), or '' when it does not: what a screen shows before asking."""
        a = self.book.get(attempt_id)
        it = a.running_item
        return "" if it is None else self._gap(a, self.item(a, it.code), it.started_ns or 0)

    def _gap(self, a: sm.Attempt, item: Item, started_ns: int) -> str:
        """Why the item's devices make `done` need a choice ('' when they do not)."""
        read = devices_read(item, self.config.station(a.station))
        devices = self.rig.devices()
        down = [f"{d} is offline ({st.reason or 'no answer'})" for d in read
                if (st := devices.get(d)) is not None and st.online is False]
        if down:
            return "; ".join(down)
        self.book.writer.flush()
        now = self.clock.mono_ns()
        names = {str(d) for d in read}
        gaps = [g for g in item_gaps(load_faults(self.book.db, a.attempt_id), started_ns, now) if g.device in names]
        if needs_decision(gaps, started_ns, now):
            down_devices = ", ".join(sorted({g.device for g in gaps if not g.signal}))
            return (f"{down_devices} was offline for {offline_ns(gaps) / 1e9:.0f} s of the item's "
                    f"{(now - started_ns) / 1e9:.0f} s")
        return ""

    def flag_veto(self, attempt_id: str, code: str) -> None:
        """A live veto fired (on the event loop): the next tick stops the item."""
        with self._vetoed_lock:
            self._vetoed[attempt_id] = code

    def tick(self) -> None:
        """End items whose time is up or that met a veto (call it a few times a second, off the loop)."""
        for attempt_id in self.book.active_attempts().values():
            with self._vetoed_lock:
                vetoed = self._vetoed.pop(attempt_id, None)
            if vetoed and self.book.get(attempt_id).state in (sm.State.RUNNING, sm.State.PAUSED):
                self.book.step(attempt_id, "exam-system", sm.end_item, EndReason.VETO_STOP)
            self.book.step(attempt_id, "exam-system", sm.tick)

    def veto(self, attempt_id: str, item: str, code: str, examiner: str, note: str = "") -> None:
        """The examiner stops the item for a 否决项 (unsafe act, damaged equipment): marked and ended."""
        a = self.book.get(attempt_id)
        if self.item(a, item).veto(code) is None:
            raise ServiceError(f"item {item} has no veto {code}")
        mark = MarkRecord(item, code, 1, examiner, note, self.clock.mono_ns(), self.clock.utc_ns())
        self.book.step(attempt_id, examiner, sm.end_item, EndReason.VETO_STOP, records=[mark])
