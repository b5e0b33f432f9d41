"""The station's service layer: every exam action, used alike by the CLI, the controller and the UI.

Each action loads the attempt, applies the pure state machine (station.session), and commits the
new state, its timeline records and its audit entries in ONE transaction through the timeline
writer (after every sample appended before it), so a kill -9 leaves all of it or none. Calls are
synchronous (a commit waits for fsync): async code calls them with `asyncio.to_thread`.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from devices.clock import Clock, ContinuousClock
from devices.sample import Sample, ValueFault
from scoring.checks import ScoringError, check_mark, check_override
from scoring.engine import score
from scoring.gaps import item_gaps, needs_decision, offline_ns
from scoring.rubric import Item, Rubric
from scoring.rubric_loader import rubric_for
from scoring.sheet import ScoreSheet, canonical_json
from scoring.timeline import (
    END_REASONS,
    DecisionKind,
    DecisionRecord,
    EndReason,
    FaultRecord,
    LifecycleRecord,
    MarkRecord,
    OverrideRecord,
    Record,
    SampleRecord,
)
from station import audit
from station import session as sm
from station.config import SiteConfig
from station.db import Database
from station.db.digest import sha256_hex
from station.db.models import Attempt as AttemptRow
from station.db.models import (
    AttemptItem,
    Candidate,
    CheckIn,
    ScoreSheetRow,
    Signature,
)
from station.ids import uuid7
from station.result_document import CandidateRef, build_result
from station.rig_check import DeviceState, devices_read, readiness
from station.signing import SiteKey
from station.stored import latest_stored_mono_ns, load_faults, load_timeline_in, stored_timeline
from station.timeline_store import TimelineWriter, seal_timeline
from station.uplink import manifest, outbox

log = logging.getLogger(__name__)
ID_NUMBER = re.compile(r"[0-9]{17}[0-9X]")
"""What the result schema accepts; checked at registration so a wrong number is caught in the hall,
not when the province rejects the signed result."""
CARD_MAX_AGE_S = 120
"""A check-in by ID card reader needs a card read at the station at most this long ago."""
ACTIVE = (sm.State.CHECKED_IN, sm.State.ITEM_DRAWN, sm.State.RUNNING, sm.State.PAUSED)
"""States in which an attempt holds its station: the next candidate waits."""


def _sign_and_queue(a: sm.Attempt, examiner: str, now: sm.Now) -> sm.Step:
    """The examiner's signature and, when it is the last one, the step to `queued`: one state change,
    so no relay can deliver the stored result while the attempt still says `signed`."""
    after, events = sm.examiner_signs(a, examiner, now)
    if after.state != sm.State.SIGNED:
        return after, events
    queued, more = sm.queued(after, now)
    return queued, (*events, *more)


class ServiceError(Exception):
    """An exam action cannot be done; the message says why and what to do."""


def _taken(a: sm.Attempt) -> list[str]:
    """The items the attempt has started (marks and overrides may name only these)."""
    return [i.code for i in a.items if i.started_ns is not None]


@dataclass(frozen=True, slots=True)
class Stored:
    attempt: sm.Attempt
    events: tuple[sm.Event, ...]


class StationServices:
    def __init__(self, config: SiteConfig, db: Database, key: SiteKey, clock: Clock,
                 software: str | None = None) -> None:
        self.config = config
        self.db = db
        self.key = key
        self.clock: Clock = ContinuousClock(clock, latest_stored_mono_ns(db))
        """Give this clock to the device layer too: samples and lifecycle share one time line."""
        self.software = software or manifest.software()
        """The producer named in result documents: `examstation <version>`."""
        self.writer = TimelineWriter(db)
        self.rubrics: dict[str, Rubric] = {}
        self._attempts: dict[str, sm.Attempt] = {}
        self._active: dict[str, str] = {}
        self._latest: dict[str, dict[str, Sample]] = {}
        self._vetoed: dict[str, str] = {}
        self._devices: dict[str, DeviceState] = {}
        """What the device hub last said of each device (`A01/bench`): online, and why not."""
        self._lock = threading.RLock()
        self._last_step_ns = 0
        self.result_listeners: list[Callable[[dict[str, Any]], None]] = []
        """Called (in the signing thread) with each signed result once it is committed: the uplink
        relay wakes on it instead of waiting for its next poll."""
        self._load_open_attempts()

    def close(self) -> None:
        self.writer.close()

    # -- helpers ------------------------------------------------------------------------------
    def now(self) -> sm.Now:
        """The moment of a step: strictly after the previous step's, so no two lifecycle records of
        an attempt share an instant (scoring cannot tell the order of a pause and a resume that do)."""
        with self._lock:
            mono = max(self.clock.mono_ns(), self._last_step_ns + 1)
            self._last_step_ns = mono
            return sm.Now(mono, self.clock.utc_ns())

    def rubric(self, operation: str) -> Rubric:
        if operation not in self.rubrics:
            self.rubrics[operation] = rubric_for(operation)
        return self.rubrics[operation]

    def attempt(self, attempt_id: str) -> sm.Attempt:
        with self._lock:
            if attempt_id not in self._attempts:
                with self.db.read() as s:
                    row = s.get(AttemptRow, attempt_id)
                    if row is None:
                        raise ServiceError(f"no attempt {attempt_id} in {self.db.path}")
                    self._attempts[attempt_id] = sm.from_dict(json.loads(row.snapshot))
            return self._attempts[attempt_id]

    def forget(self, attempt_id: str) -> None:
        """Drop the cached state of a settled attempt that another component changed in the database
        (the uplink marks attempts delivered); the next `attempt()` reads it again."""
        with self._lock:
            if attempt_id not in self._active.values():
                self._attempts.pop(attempt_id, None)

    def active_attempt(self, station: str) -> str | None:
        return self._active.get(station)

    def active_attempts(self) -> dict[str, str]:
        """station -> attempt in progress there."""
        return dict(self._active)

    def _load_open_attempts(self) -> None:
        with self.db.read() as s:
            rows = s.execute(select(AttemptRow).where(AttemptRow.state.in_([st.value for st in ACTIVE]))).scalars()
            for row in rows:
                a = sm.from_dict(json.loads(row.snapshot))
                self._attempts[a.attempt_id] = a
                self._active[a.station] = a.attempt_id

    def _step(self, attempt_id: str, actor: str, fn: Callable[..., sm.Step], *args: Any,
              extra: Callable[[Session, sm.Attempt, sm.Now], None] | None = None,
              records: list[Record] | None = None) -> Stored:
        """Apply one state-machine step and commit it with its records and audit entries."""
        with self._lock:
            before = self.attempt(attempt_id)
            now = self.now()
            try:
                after, events = fn(before, *args, now)
            except sm.SessionError as err:
                raise ServiceError(str(err)) from err
            if after is before and not events and not records:
                return Stored(after, ())
            lifecycle: list[Record] = [
                LifecycleRecord(k, e.at.mono_ns, e.at.utc_ns, e.item, e.detail)
                for e in events if (k := e.lifecycle) is not None
            ]
            recs = [(attempt_id, r) for r in [*(records or []), *lifecycle]]

            def change(tx: Session) -> None:
                tx.execute(update(AttemptRow).where(AttemptRow.attempt_id == attempt_id).values(
                    state=after.state.value, snapshot=json.dumps(sm.to_dict(after), ensure_ascii=False),
                    seed=after.seed, drawn_items=json.dumps([i.code for i in after.items]), updated_utc_ns=now.utc_ns))
                for it in after.items:
                    tx.merge(AttemptItem(attempt_id=attempt_id, code=it.code, subject=it.subject,
                                         state="ended" if it.ended_ns else ("running" if it.started_ns else "pending"),
                                         started_mono_ns=it.started_ns, ended_mono_ns=it.ended_ns,
                                         end_reason=it.end_reason or None))
                for e in events:
                    audit.append(tx, actor, f"session.{e.kind}", f"attempt:{attempt_id}",
                                 {"item": e.item, "detail": e.detail, "state": after.state.value}, e.at.utc_ns)
                if extra:
                    extra(tx, after, now)

            self.writer.commit_with(recs, change)
            self._attempts[attempt_id] = after
            if after.state in ACTIVE:
                self._active[after.station] = attempt_id
            elif self._active.get(after.station) == attempt_id:
                del self._active[after.station]
            return Stored(after, events)

    # -- candidates and check-in ----------------------------------------------------------------
    def register_candidate(self, id_number: str, name: str, operation: str, batch: str,
                           photo_ref: str | None = None, attempt_number: int = 1) -> None:
        if not ID_NUMBER.fullmatch(id_number):
            raise ServiceError(f"candidate {id_number!r}: an ID number (居民身份证号码) is 17 digits and a digit or X; "
                               "correct it in the batch file")
        if attempt_number not in (1, 2):
            raise ServiceError(f"candidate {id_number}: attempt {attempt_number}; one re-sit (补考) is allowed: 1 or 2")
        with self.db.write() as tx:
            tx.merge(Candidate(id_number=id_number, name=name, photo_ref=photo_ref, operation=operation, batch=batch,
                               attempt_number=attempt_number, passed_at_utc_ns=None))
            audit.append(tx, "registration", "candidate.registered", f"candidate:{id_number}",
                         {"name": name, "operation": operation, "batch": batch, "attempt_number": attempt_number},
                         self.clock.utc_ns())

    def check_in(self, id_number: str, station: str, verified_by: str, method: str = "manual") -> str:
        """The invigilator verified the candidate's ID: opens an attempt at `station`."""
        with self._lock:
            st = self.config.station(station)
            if station in self._active:
                raise ServiceError(f"station {station} already has attempt {self._active[station]} in progress; "
                                   "end it before checking in the next candidate")
            with self.db.read() as s:
                cand = s.get(Candidate, id_number)
                if cand is None:
                    raise ServiceError(f"candidate {id_number} is not registered; import the batch first")
                if cand.operation != st.operation:
                    raise ServiceError(f"candidate {id_number} is registered for {cand.operation}, station {station} "
                                       f"is a {st.operation} station")
            card_name = self._card_name(id_number, station) if method == "id_card_reader" else None
            rubric = self.rubric(st.operation)
            attempt_id = uuid7()
            self._attempts[attempt_id] = sm.Attempt(attempt_id, id_number, station, st.operation,
                                                    self.config.exam.examiners_required)

            def create(tx: Session, a: sm.Attempt, n: sm.Now) -> None:
                # the attempt row is born checked in: one transaction, no half-made attempt after a crash
                tx.add(AttemptRow(attempt_id=attempt_id, candidate_id_number=id_number, station=station,
                                  operation=st.operation, rubric_id=rubric.id, rubric_hash=rubric.hash,
                                  state=a.state.value, seed=None, drawn_items="[]",
                                  snapshot=json.dumps(sm.to_dict(a), ensure_ascii=False),
                                  created_utc_ns=n.utc_ns, updated_utc_ns=n.utc_ns))
                tx.flush()
                tx.add(CheckIn(candidate_id_number=id_number, attempt_id=attempt_id, verified_by=verified_by,
                               method=method, utc_ns=n.utc_ns))
                payload: dict[str, Any] = {"candidate": id_number, "station": station, "rubric_hash": rubric.hash}
                if card_name is not None:
                    payload["card_name"] = card_name
                audit.append(tx, verified_by, "attempt.created", f"attempt:{attempt_id}", payload, n.utc_ns)

            try:
                self._step(attempt_id, verified_by, sm.check_in, verified_by, method, extra=create)
            except BaseException:
                self._attempts.pop(attempt_id, None)
                raise
            return attempt_id

    def _card_name(self, id_number: str, station: str) -> str:
        """The name on the card the station's ID card reader read for this candidate, or why not."""
        card = self._latest.get(station, {}).get("idcard.read")
        where = f"check-in of {id_number} at {station} by ID card reader"
        if card is None or not isinstance(card.value, Mapping):
            raise ServiceError(f"{where}: no card has been read there; place the candidate's card on the "
                               f"reader at {station}, or check in manually")
        age_s = max(0, self.clock.mono_ns() - card.t_mono_ns) / 1e9
        if age_s > CARD_MAX_AGE_S:
            raise ServiceError(f"{where}: the last card was read {age_s:.0f} s ago (at most {CARD_MAX_AGE_S} s "
                               f"allowed); place the candidate's card on the reader at {station} again")
        shown = str(card.value.get("id_number", ""))
        if shown.upper() != id_number.upper():
            raise ServiceError(f"{where}: the card shows {shown} but the registration is {id_number}: "
                               "check the candidate's identity")
        return str(card.value.get("name", ""))

    # -- the exam ----------------------------------------------------------------------------
    def draw(self, attempt_id: str, seed: int, chosen: Mapping[str, str] | None = None) -> sm.Attempt:
        a = self.attempt(attempt_id)
        rubric = self.rubric(a.operation)
        subjects = [sm.ItemChoice(s.code, tuple((i.code, i.time_limit_s, i.candidate_may_choose)
                                                for i in rubric.items if i.subject == s.code))
                    for s in rubric.subjects]
        return self._step(attempt_id, "exam-system", lambda at, n: sm.draw(at, subjects, n, seed, chosen)).attempt

    def assign(self, attempt_id: str, items: Mapping[str, str], by: str) -> sm.Attempt:
        """The exam system assigns the items (a rehearsal or a re-test of one subject): no draw."""
        a = self.attempt(attempt_id)
        rubric = self.rubric(a.operation)
        subjects = []
        for subject, code in items.items():
            it = rubric.item(code)
            subjects.append(sm.ItemChoice(subject, ((it.code, it.time_limit_s, True),)))
        return self._step(attempt_id, by, lambda at, n: sm.draw(at, subjects, n, 0, dict(items))).attempt

    def start_item(self, attempt_id: str, code: str, examiner: str, start_anyway: str = "") -> None:
        """Start a drawn item. The rig must be at the item's rest state and every device the item
        reads online (station.rig_check); otherwise the item starts only with the examiner's reason
        in `start_anyway`, which is audited and shown on the sheet."""
        with self._lock:  # no device may change between the check and the start
            self._start_item(attempt_id, code, examiner, start_anyway)

    def _start_item(self, attempt_id: str, code: str, examiner: str, start_anyway: str) -> None:
        a = self.attempt(attempt_id)
        item = self._item(a, code)
        station = self.config.station(a.station)
        latest = self._latest.get(a.station, {})
        ready = readiness(item, station, latest, self._devices)
        reason = start_anyway.strip()
        if not ready.ready and not reason:
            raise ServiceError(
                f"station {a.station} is not at rest for {code}: {'; '.join(ready.problems())}. Restore the rig "
                "(the bench's 复位 key clears the self-check verdict and resets tripped protection; switches off, "
                "meter leads off, every cabinet item back, the extinguisher back on its stand) and bring the device "
                "back online, then start again; or start anyway, giving the reason")
        start_ns, utc_ns = self.clock.mono_ns(), self.clock.utc_ns()
        # The station's state just before the item starts: the timeline then holds every signal's
        # initial value (devices report on change only) and every device already down.
        initial: list[Record] = [SampleRecord(s.signal, dict(s.value) if isinstance(s.value, Mapping) else s.value,
                                              start_ns - 1, utc_ns, s.device)
                                 for s in sorted(latest.values(), key=lambda x: x.signal)]
        for device in devices_read(item, station):
            state = self._devices.get(device)
            if state is None or state.online is not True:
                why = state.reason if state is not None and state.reason else "has not reported"
                initial.append(FaultRecord(device, False, why, start_ns - 1, utc_ns))
        log_it = None
        if not ready.ready:
            initial.append(DecisionRecord(code, "start_anyway", reason, examiner, start_ns - 1, utc_ns))

            def log_it(tx: Session, _a: sm.Attempt, n: sm.Now) -> None:
                audit.append(tx, examiner, "item.start_anyway", f"attempt:{attempt_id}",
                             {"item": code, "reason": reason, "not_at_rest": ready.problems()}, n.utc_ns)

        self._step(attempt_id, examiner, sm.start_item, code, records=initial, extra=log_it)

    def _item(self, a: sm.Attempt, code: str) -> Item:
        try:
            return self.rubric(a.operation).item(code)
        except KeyError as err:
            raise ServiceError(f"attempt {a.attempt_id}: {err.args[0]}") from None

    def pause(self, attempt_id: str, reason: str, by: str) -> None:
        self._step(attempt_id, by, sm.pause, reason)

    def resume(self, attempt_id: str, reason: str, by: str) -> None:
        self._step(attempt_id, by, sm.resume, reason)

    def end_item(self, attempt_id: str, reason: str, by: str, with_gap: str = "") -> None:
        """End the running item. Ending it `done` while a device it reads is down, or after one was
        down for over 10 % of it, needs the examiner's choice: end it `interrupted` (a re-sit, no
        score), or score it with the gap, giving the reason in `with_gap` (audited; the rows whose
        evidence fell in the gap are then left unverified on the sheet for the examiner)."""
        try:
            why = EndReason(reason)
        except ValueError:
            raise ServiceError(f"attempt {attempt_id}: end reason {reason!r} is not one of: {END_REASONS}") from None
        a = self.attempt(attempt_id)
        it = a.running_item
        records: list[Record] = []
        log_it = None
        gap_reason = with_gap.strip()
        if it is not None and why == EndReason.DONE:
            gap = self._gap(a, self._item(a, it.code), it.started_ns or 0)
            if gap and not gap_reason:
                raise ServiceError(
                    f"attempt {attempt_id} item {it.code}: {gap}, so the candidate could not be fully observed. End it "
                    "as 'interrupted' (a re-sit: no score for the item), or score it with the gap, giving your reason "
                    "(with_gap)")
            if gap_reason:
                if not gap:
                    raise ServiceError(f"attempt {attempt_id} item {it.code}: no device it reads was down; end it "
                                       "without with_gap")
                records.append(DecisionRecord(it.code, "score_with_gap", gap_reason, by, *self._stamp()))
                code = it.code

                def log_it(tx: Session, _a: sm.Attempt, n: sm.Now) -> None:
                    audit.append(tx, by, "item.score_with_gap", f"attempt:{attempt_id}",
                                 {"item": code, "reason": gap_reason, "gap": gap}, n.utc_ns)

        self._step(attempt_id, by, sm.end_item, why, records=records, extra=log_it)

    def item_gap(self, attempt_id: str) -> str:
        """Why ending the running item `done` needs the examiner's choice (a device it reads is down,
        or was for over 10 % of it), or '' when it does not: what a screen shows before asking."""
        a = self.attempt(attempt_id)
        it = a.running_item
        return "" if it is None else self._gap(a, self._item(a, it.code), it.started_ns or 0)

    def _gap(self, a: sm.Attempt, item: Item, started_ns: int) -> str:
        """Why the item's devices make `done` need a choice ('' when they do not)."""
        read = devices_read(item, self.config.station(a.station))
        down = [f"{d} is offline ({st.reason or 'no answer'})" for d in read
                if (st := self._devices.get(d)) is not None and st.online is False]
        if down:
            return "; ".join(down)
        self.writer.flush()
        now = self.clock.mono_ns()
        gaps = [g for g in item_gaps(load_faults(self.db, a.attempt_id), started_ns, now) if g.device in read]
        if needs_decision(gaps, started_ns, now):
            devices = ", ".join(sorted({g.device for g in gaps if not g.signal}))
            return (f"{devices} was offline for {offline_ns(gaps) / 1e9:.0f} s of the item's "
                    f"{(now - started_ns) / 1e9:.0f} s")
        return ""

    def tick(self) -> None:
        """End items whose time is up or that met a veto (call it a few times a second, off the loop)."""
        for attempt_id in list(self._active.values()):
            if self._vetoed.pop(attempt_id, None) and self.attempt(attempt_id).state in (sm.State.RUNNING,
                                                                                       sm.State.PAUSED):
                self._step(attempt_id, "exam-system", sm.end_item, EndReason.VETO_STOP)
            self._step(attempt_id, "exam-system", sm.tick)

    def record_sample(self, sample: Sample) -> None:
        """A device reported a change: keep it as the station's latest state, and in the timeline
        of the item running there."""
        station = sample.device.split("/", 1)[0]
        self._latest.setdefault(station, {})[sample.signal] = sample
        attempt_id = self._active.get(station)
        if attempt_id is None:
            return
        a = self._attempts[attempt_id]
        if a.state in (sm.State.RUNNING, sm.State.PAUSED):
            value = dict(sample.value) if isinstance(sample.value, Mapping) else sample.value
            self.writer.append(attempt_id, SampleRecord(sample.signal, value, sample.t_mono_ns, sample.t_utc_ns,
                                                        sample.device))
            code = self._live_veto(attempt_id, sample)
            if code is not None:  # stopped by the next tick (this runs on the event loop: no commit here)
                log.warning("attempt %s: veto %s (%s = %s): the item stops", attempt_id, code, sample.signal,
                            sample.value)
                self._vetoed[attempt_id] = code

    def record_value_fault(self, fault: ValueFault) -> None:
        """A device sent a value its profile cannot represent (NaN, out of range): kept in the
        running item's timeline with its raw form, never as a sample; the rows that read the signal
        are left unverified at that moment for the examiner."""
        station = fault.device.split("/", 1)[0]
        log.warning("%s: %s = %s cannot be a reading (%s); recorded as a device fault", fault.device, fault.signal,
                    fault.raw, fault.reason)
        attempt_id = self._active.get(station)
        if attempt_id is not None and self._attempts[attempt_id].state in (sm.State.RUNNING, sm.State.PAUSED):
            self.writer.append(attempt_id, FaultRecord(fault.device, True, fault.reason, fault.t_mono_ns,
                                                       fault.t_utc_ns, fault.signal, fault.raw))

    def _live_veto(self, attempt_id: str, sample: Sample) -> str | None:
        """A veto row whose condition this sample meets, for the running item (checked live so the
        item stops at once; the full veto detectors run again when the sheet is scored)."""
        a = self._attempts[attempt_id]
        it = a.running_item
        if it is None:
            return None
        for veto in self.rubric(a.operation).item(it.code).vetoes:
            det = veto.detector
            if det is not None and det.name == "reached":
                cond = det.params.when  # type: ignore[attr-defined]
                if cond.signal == sample.signal and cond.holds(sample.value):
                    return veto.code
        return None

    def veto(self, attempt_id: str, item: str, code: str, examiner: str, note: str = "") -> None:
        """The examiner stops the item for a 否决项 (unsafe act, damaged equipment): marked and ended."""
        a = self.attempt(attempt_id)
        if self.rubric(a.operation).item(item).veto(code) is None:
            raise ServiceError(f"item {item} has no veto {code}")
        mark = MarkRecord(item, code, 1, examiner, note, *self._stamp())
        self._step(attempt_id, examiner, sm.end_item, "veto_stop", records=[mark])

    def device_status(self, device: str, online: bool, reason: str) -> None:
        """A device went offline or came back. It is remembered (an item whose device is down does
        not start); when the item running at its station reads it, it is recorded in that item's
        timeline (a device gap) and pauses (resumes) the item's clock. Call it in the order the
        device layer reported the changes (station.status_feed)."""
        station = device.partition("/")[0]
        with self._lock:
            self._devices[device] = DeviceState(online, reason)
            attempt_id = self._active.get(station)
            if attempt_id is None:
                return
            a = self.attempt(attempt_id)
            it = a.running_item
            if it is None or device not in devices_read(self._item(a, it.code), self.config.station(station)):
                return  # a device the running item does not read (the cabinet during CPR): nothing to pause
            records: list[Record] = [FaultRecord(device, online, reason, *self._stamp())]
            self._step(attempt_id, "device-monitor", sm.device_status, device, online, records=records)

    # -- scoring, review, signatures -------------------------------------------------------------
    def score(self, attempt_id: str) -> ScoreSheet:
        """Score the ended attempt from its stored timeline and keep the sheet (version 1, 2... after marks)."""
        self.writer.flush()
        a = self.attempt(attempt_id)
        sheet = score(self.rubric(a.operation), stored_timeline(self.db, attempt_id))
        text = canonical_json(sheet)

        def keep(tx: Session, _a: sm.Attempt, n: sm.Now) -> None:
            version = (tx.execute(select(func.max(ScoreSheetRow.version)).where(
                ScoreSheetRow.attempt_id == attempt_id)).scalar() or 0) + 1
            tx.add(ScoreSheetRow(attempt_id=attempt_id, version=version, sheet=text, rubric_id=sheet.rubric_id,
                                 rubric_hash=sheet.rubric_hash, created_utc_ns=n.utc_ns, sheet_sha256=sha256_hex(text)))
            audit.append(tx, "exam-system", "sheet.scored", f"attempt:{attempt_id}",
                         {"version": version, "sheet_sha256": sha256_hex(text), "total": sheet.total}, n.utc_ns)
            if version == 1:
                seal_timeline(tx, "exam-system", attempt_id, n.utc_ns)

        if a.state == sm.State.ENDED:
            self._step(attempt_id, "exam-system", sm.scored, extra=keep)
        elif a.state in (sm.State.SCORED, sm.State.REVIEWED):
            with self.db.write() as tx:
                keep(tx, a, self.now())
        else:
            raise ServiceError(f"attempt {attempt_id} is {a.state.value}; it can be scored once every item has ended")
        return sheet

    def mark(self, attempt_id: str, item: str, code: str, count: int, examiner: str, note: str = "") -> None:
        """A manual deduction or veto (考评员扣分) on a code of the rubric; the sheet is scored again."""
        a = self.attempt(attempt_id)
        rubric = self.rubric(a.operation)
        self._refuse_unless(lambda: check_mark(rubric, _taken(a), item, code, count), attempt_id)
        found = rubric.item(item).deduction(code)
        if found is not None and found[1].max_count is not None:
            used = self._charged(attempt_id, item, code)
            if used + count > found[1].max_count:
                raise ServiceError(f"attempt {attempt_id}: {code} is charged at most {found[1].max_count} times and "
                                   f"{used} are charged already; a mark of {count} more would change nothing: "
                                   "override the row instead if the sheet is wrong")
        self._amend(attempt_id, MarkRecord(item, code, count, examiner, note, *self._stamp()), examiner)

    def _charged(self, attempt_id: str, item: str, code: str) -> int:
        """How many occurrences of deduction `code` the latest sheet charges (automatic and manual)."""
        sheet = self._latest_sheet(attempt_id)
        lines = [d for i in (sheet or {}).get("items", []) if i["code"] == item for r in i["rows"]
                 for d in r["deductions"] if d["code"] == code and d["by"] != "unverified"]
        return sum(int(d["count"]) for d in lines)

    def override(self, attempt_id: str, item: str, row: str, points: float, reason: str, examiner: str) -> None:
        """Set a row's points by hand (whole hundredths within the row), with a reason."""
        if not reason.strip():
            raise ServiceError("an override needs a reason; the automatic value stays beside it")
        a = self.attempt(attempt_id)
        self._refuse_unless(lambda: check_override(self.rubric(a.operation), _taken(a), item, row, points), attempt_id)
        self._amend(attempt_id, OverrideRecord(item, row, points, reason, examiner, *self._stamp()), examiner)

    def decide_gap(self, attempt_id: str, item: str, choice: DecisionKind, reason: str, examiner: str) -> None:
        """For an item the sheet says needs it (a device it reads was down for over 10 % of it, or at
        its end, and it was not ended by the examiner's choice): score it with the gap, or a re-sit."""
        if choice not in ("score_with_gap", "resit"):
            raise ServiceError(f"a gap decision is score_with_gap or resit, not {choice!r}")
        if not reason.strip():
            raise ServiceError("a gap decision needs a reason; it is shown on the sheet")
        pending = self._pending_gap_decisions(attempt_id)
        if item not in pending:
            raise ServiceError(f"attempt {attempt_id} item {item} needs no gap decision "
                               f"(items waiting for one: {', '.join(pending) or 'none'})")
        self._amend(attempt_id, DecisionRecord(item, choice, reason.strip(), examiner, *self._stamp()), examiner)

    def _pending_gap_decisions(self, attempt_id: str) -> list[str]:
        sheet = self._latest_sheet(attempt_id)
        return [i["code"] for i in (sheet or {}).get("items", []) if i.get("needs_gap_decision")]

    def _latest_sheet(self, attempt_id: str) -> dict[str, Any] | None:
        """The latest stored score sheet of the attempt, as JSON data (None before scoring)."""
        with self.db.read() as s:
            text = s.execute(select(ScoreSheetRow.sheet).where(ScoreSheetRow.attempt_id == attempt_id)
                             .order_by(ScoreSheetRow.version.desc()).limit(1)).scalar()
        return None if text is None else dict(json.loads(text))

    @staticmethod
    def _refuse_unless(check: Callable[[], None], attempt_id: str) -> None:
        try:
            check()
        except (ScoringError, KeyError) as err:
            raise ServiceError(f"attempt {attempt_id}: {err.args[0] if err.args else err}") from None

    def _stamp(self) -> tuple[int, int]:
        return self.clock.mono_ns(), self.clock.utc_ns()

    def _amend(self, attempt_id: str, record: MarkRecord | OverrideRecord | DecisionRecord, examiner: str) -> None:
        a = self.attempt(attempt_id)
        if a.state not in (sm.State.SCORED, sm.State.REVIEWED):
            raise ServiceError(f"attempt {attempt_id} is {a.state.value}: marks and overrides are made after scoring "
                               "and before the examiners sign")

        def log_it(tx: Session) -> None:
            audit.append(tx, examiner, f"sheet.{type(record).__name__.removesuffix('Record').lower()}",
                         f"attempt:{attempt_id}", {k: getattr(record, k) for k in record.__slots__}, record.t_utc_ns)

        self.writer.commit_with([(attempt_id, record)], log_it)
        self.score(attempt_id)

    def review(self, attempt_id: str, examiner: str) -> None:
        pending = self._pending_gap_decisions(attempt_id)
        if pending:
            raise ServiceError(f"attempt {attempt_id}: items {', '.join(pending)} had a device down for a large part "
                               "of them; decide first (decide_gap): score with the gap, or a re-sit")
        self._step(attempt_id, examiner, sm.reviewed, examiner)

    def candidate_decision(self, attempt_id: str, item: str, signed: bool) -> None:
        def keep(tx: Session, a: sm.Attempt, n: sm.Now) -> None:
            tx.add(Signature(attempt_id=attempt_id, item_code=item, role="candidate", who=a.candidate,
                             decision="signed" if signed else "refused", utc_ns=n.utc_ns))

        self._step(attempt_id, "candidate", sm.candidate_decision, item, signed, extra=keep)
        if not signed:
            self.score(attempt_id)  # a refused item scores 0

    def examiner_sign(self, attempt_id: str, examiner: str) -> dict[str, Any] | None:
        """An examiner signs; the last required signature stores the signed result and queues it,
        attempt state included, in ONE transaction (the uplink may deliver it a moment later).
        Returns the result document then."""
        stored: dict[str, Any] = {}

        def keep(tx: Session, a: sm.Attempt, n: sm.Now) -> None:
            tx.add(Signature(attempt_id=attempt_id, item_code=None, role="examiner", who=examiner, decision="signed",
                             utc_ns=n.utc_ns))
            if a.state == sm.State.QUEUED:
                stored.update(self._store_result(tx, a, n))

        self._step(attempt_id, examiner, _sign_and_queue, examiner, extra=keep)
        if stored:
            for listener in self.result_listeners:
                listener(stored)
            return stored
        return None

    def _store_result(self, tx: Session, a: sm.Attempt, now: sm.Now) -> dict[str, Any]:
        row = tx.execute(select(ScoreSheetRow).where(ScoreSheetRow.attempt_id == a.attempt_id)
                         .order_by(ScoreSheetRow.version.desc()).limit(1)).scalar_one()
        cand = tx.get(Candidate, a.candidate)
        assert cand is not None
        seq = outbox.next_seq(tx)
        result_id = uuid7(now.utc_ns // 1_000_000)
        timeline = load_timeline_in(tx, a.attempt_id)
        sheet = score(self.rubric(a.operation), timeline)
        if canonical_json(sheet) != row.sheet:
            raise ServiceError(f"attempt {a.attempt_id}: the stored sheet differs from a fresh score of the stored "
                               "timeline; run `examstation audit verify` before signing")
        origin = next(r for r in timeline if isinstance(r, LifecycleRecord) and r.kind == "attempt_start")
        doc = build_result(result_id=result_id, attempt_id=a.attempt_id, seq=seq, site=self.config.site.id,
                           station=a.station, candidate=CandidateRef(cand.id_number, cand.name, cand.batch),
                           sheet=sheet, origin_mono_ns=origin.t_mono_ns, origin_utc_ns=origin.t_utc_ns,
                           signed_by=a.examiner_signatures, signed_at_utc_ns=now.utc_ns, software=self.software)
        signed = self.key.sign(doc)
        outbox.store_result(tx, signed, actor=a.examiner_signatures[-1], attempt_id=a.attempt_id, utc_ns=now.utc_ns)
        if sheet.passed and sheet.complete:
            cand.passed_at_utc_ns = now.utc_ns  # the certificate's 12 months run from here
        return signed

    # -- replay and recovery ---------------------------------------------------------------------
    def replay(self, attempt_id: str) -> ScoreSheet:
        """Score the stored timeline again with the rubric that scored it (the hash must match)."""
        a = self.attempt(attempt_id)
        with self.db.read() as s:
            row = s.get(AttemptRow, attempt_id)
            assert row is not None
            rubric_hash = row.rubric_hash
        rubric = self.rubric(a.operation)
        if rubric.hash != rubric_hash:
            raise ServiceError(f"attempt {attempt_id} was scored with rubric {rubric_hash}; the rubric file now is "
                               f"{rubric.hash}; replay needs the same rubric file (restore it from the export)")
        return score(rubric, stored_timeline(self.db, attempt_id))

    def recover(self) -> list[str]:
        """After a restart: every item that was running is paused ('controller restarted') so its
        clock does not count the outage; the examiner resumes or closes it."""
        resumed = []
        for attempt_id in list(self._active.values()):
            if self._attempts[attempt_id].state == sm.State.RUNNING:
                self._step(attempt_id, "exam-system", sm.pause, "controller restarted")
                resumed.append(attempt_id)
        return resumed
