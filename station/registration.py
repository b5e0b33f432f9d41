"""Candidates and check-in: who may sit the exam, and the invigilator's ID check at a station.

A candidate comes from the exam centre's batch list (station.candidates imports a file of them);
the invigilator checks the candidate's ID against it at the station, by eye or with the station's
ID-card reader, and that opens the attempt. A wrong ID number is caught here, in the hall, not
when the province rejects the signed result weeks later.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, Literal, Protocol

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from station import audit
from station import session as sm
from station.attempt_book import snapshot
from station.db.models import Attempt as AttemptRow
from station.db.models import Candidate, CheckIn
from station.errors import ServiceError
from station.id_number import InvalidIdNumber, china_date, citizen_id_number
from station.ids import uuid7
from station.service_part import ServicePart

CARD_MAX_AGE_S = 120
"""A check-in by ID card reader needs a card read at the station at most this long ago."""
LOOKUP_CHUNK = 500
"""ID numbers per `IN (...)` query when a batch is compared with the database."""

Outcome = Literal["new", "updated", "unchanged", "kept"]


@dataclass(frozen=True, slots=True)
class CandidateData:
    """A candidate as the batch list (or the registration form) gives them."""

    id_number: str
    name: str
    operation: str
    batch: str
    photo_ref: str | None = None
    attempt_number: int = 1

    def changes_from(self, before: CandidateData) -> dict[str, tuple[object, object]]:
        """field -> (value before, value now), for the fields that differ."""
        return {f.name: (getattr(before, f.name), getattr(self, f.name)) for f in fields(self)
                if getattr(before, f.name) != getattr(self, f.name)}


@dataclass(frozen=True, slots=True)
class Registered:
    """What registering a batch does (or would do) to one candidate of it."""

    candidate: CandidateData
    """As the batch gives them."""
    before: CandidateData | None
    """As registered before the batch; None when new."""
    attempts: tuple[str, ...]
    """The attempts the candidate already has, oldest first: any one of them keeps the registration as it is."""

    @property
    def outcome(self) -> Outcome:
        if self.before is None:
            return "new"
        if self.before == self.candidate:
            return "unchanged"
        return "kept" if self.attempts else "updated"


class CheckInHooks(Protocol):
    """What the evidence recording (station.recording) asks of a check-in."""

    def refusal(self) -> str | None:
        """Why no new attempt may start now (the evidence disk at its critical mark), or None."""
        ...

    def checked_in(self, attempt_id: str, station: str) -> None:
        """An attempt opened at `station`: take its check-in stills (without delaying the check-in)."""
        ...


class Registration(ServicePart):
    recording: CheckInHooks | None = None
    """Set while cameras are recorded (station.recording); None only where nothing records (unit tests)."""

    def register_candidate(self, id_number: str, name: str, operation: str, batch: str,
                           photo_ref: str | None = None, attempt_number: int = 1) -> None:
        try:  # checked here, in the hall, not when the province rejects the signed result
            id_number = citizen_id_number(id_number, china_date(self.clock.utc_ns()))
        except InvalidIdNumber as err:
            raise ServiceError(f"candidate {id_number!r}: ID number (居民身份证号码) {err}; correct it in the "
                               "batch file or on the form") from err
        if attempt_number not in (1, 2):
            raise ServiceError(f"candidate {id_number}: attempt {attempt_number}; one re-sit (补考) is allowed: 1 or 2")
        with self.book.db.write() as tx:
            tx.merge(Candidate(id_number=id_number, name=name, photo_ref=photo_ref, operation=operation, batch=batch,
                               attempt_number=attempt_number, passed_at_utc_ns=None))
            audit.append(tx, "registration", "candidate.registered", f"candidate:{id_number}",
                         {"name": name, "operation": operation, "batch": batch, "attempt_number": attempt_number},
                         self.clock.utc_ns())

    def register_batch(self, batch: Sequence[CandidateData], source: str, *, dry_run: bool = False
                       ) -> tuple[Registered, ...]:
        """Register a batch in one transaction: all of it or, on any error, nothing.

        New candidates are added; registered ones are compared with the batch: identical ones are
        left alone, changed ones without an attempt are updated, and one with any attempt is never
        changed (its registration is what its attempts and results were made under). `source`
        (e.g. "batch.csv") goes into each audit entry. `dry_run`: compare only, write nothing.
        Returns each candidate's outcome, in the batch's order. The caller has checked the batch
        (valid, normalised, unique ID numbers: ValueError otherwise).
        """
        if len({c.id_number for c in batch}) != len(batch):
            raise ValueError(f"{source}: the batch names a candidate twice; check it before registering it")
        if dry_run:
            with self.book.db.read() as s:
                return _compare(s, batch)
        with self.book.db.write() as tx:
            plan = _compare(tx, batch)
            new = [_columns(r.candidate) for r in plan if r.outcome == "new"]
            changed = [_columns(r.candidate) for r in plan if r.outcome == "updated"]
            if new:
                tx.execute(insert(Candidate), [{**row, "passed_at_utc_ns": None} for row in new])
            if changed:
                tx.execute(update(Candidate), changed)  # by primary key; passed_at stays as it is
            audit.append_many(tx, [_audit_entry(r, source) for r in plan if r.outcome in ("new", "updated")],
                              self.clock.utc_ns())
        return plan

    def check_in(self, id_number: str, station: str, verified_by: str, method: str = "manual") -> str:
        """The invigilator verified the candidate's ID: opens an attempt at `station`."""
        st = self.config.station(station)
        refusal = self.recording.refusal() if self.recording is not None else None
        if refusal is not None:
            raise ServiceError(f"check-in of {id_number} at {station} refused: {refusal}")
        with self.book.db.read() as s:
            cand = s.get(Candidate, id_number)
            if cand is None:
                raise ServiceError(f"candidate {id_number} is not registered; import the batch first")
            if cand.operation != st.operation:
                raise ServiceError(f"candidate {id_number} is registered for {cand.operation}, station {station} "
                                   f"is a {st.operation} station")
        card_name = self._card_name(id_number, station) if method == "id_card_reader" else None
        rubric = self.rubric_of(st.operation)
        attempt_id = uuid7()

        def create(tx: Session, a: sm.Attempt, n: sm.Now) -> None:
            # the attempt row is born checked in: one transaction, no half-made attempt after a crash
            tx.add(AttemptRow(attempt_id=attempt_id, candidate_id_number=id_number, station=station,
                              operation=st.operation, rubric_id=rubric.id, rubric_hash=rubric.hash,
                              state=a.state.value, seed=None, drawn_items="[]", snapshot=snapshot(a),
                              created_utc_ns=n.utc_ns, updated_utc_ns=n.utc_ns))
            tx.flush()
            tx.add(CheckIn(candidate_id_number=id_number, attempt_id=attempt_id, verified_by=verified_by,
                           method=method, utc_ns=n.utc_ns))
            payload: dict[str, Any] = {"candidate": id_number, "station": station, "rubric_hash": rubric.hash}
            if card_name is not None:
                payload["card_name"] = card_name
            audit.append(tx, verified_by, "attempt.created", f"attempt:{attempt_id}", payload, n.utc_ns)

        new = sm.Attempt(attempt_id, id_number, station, st.operation, self.config.exam.examiners_required)
        self.book.open(new, verified_by, sm.check_in, verified_by, method, create=create)
        if self.recording is not None:
            self.recording.checked_in(attempt_id, station)
        return attempt_id

    def _card_name(self, id_number: str, station: str) -> str:
        """The name on the card the station's ID card reader read for this candidate, or why not."""
        card = self.rig.latest(station).get("idcard.read")
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


def _columns(c: CandidateData) -> dict[str, Any]:
    return {f.name: getattr(c, f.name) for f in fields(c)}


def _audit_entry(r: Registered, source: str) -> tuple[str, str, str, dict[str, Any]]:
    """(actor, action, subject, payload) of a candidate the batch registers or updates."""
    payload: dict[str, Any] = {**_columns(r.candidate), "source": source}
    del payload["id_number"]  # it is the subject
    if r.before is None:
        return "registration", "candidate.registered", f"candidate:{r.candidate.id_number}", payload
    payload["was"] = {name: old for name, (old, _) in r.candidate.changes_from(r.before).items()}
    return "registration", "candidate.updated", f"candidate:{r.candidate.id_number}", payload


def _compare(s: Session, batch: Sequence[CandidateData]) -> tuple[Registered, ...]:
    """Each candidate of the batch against their registration and attempts, in one snapshot."""
    before: dict[str, CandidateData] = {}
    attempts: defaultdict[str, list[str]] = defaultdict(list)
    ids = [c.id_number for c in batch]
    for start in range(0, len(ids), LOOKUP_CHUNK):
        chunk = ids[start:start + LOOKUP_CHUNK]
        for row in s.execute(select(Candidate.id_number, Candidate.name, Candidate.operation, Candidate.batch,
                                    Candidate.photo_ref, Candidate.attempt_number)
                             .where(Candidate.id_number.in_(chunk))):
            before[row.id_number] = CandidateData(*row)
        for id_number, attempt_id in s.execute(select(AttemptRow.candidate_id_number, AttemptRow.attempt_id)
                                               .where(AttemptRow.candidate_id_number.in_(chunk))
                                               .order_by(AttemptRow.created_utc_ns, AttemptRow.attempt_id)):
            attempts[id_number].append(attempt_id)
    return tuple(Registered(c, before.get(c.id_number), tuple(attempts.get(c.id_number, ()))) for c in batch)
