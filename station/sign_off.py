"""Review and sign-off: the sheet scored from the stored timeline, the examiners' marks, overrides
and gap decisions, the candidate's signature or refusal, and the examiners' signatures.

Marks and overrides are checked against the rubric when made (scoring.checks, the same checks a
stored timeline meets when it is scored again). Each one is a timeline record with its audit entry,
and the sheet is scored again after it (version 1, 2, ...). The last examiner signature stores the
signed result and queues it for the province in the same transaction (station.results).

A manual deduction may also be marked before scoring, from the start of the item it names: the
examiner marks what they see while the candidate works (PPE not worn), when it happens, not from
memory after the last item. Such a mark is stored and audited at once, with the moment it was made,
and the engine charges it when the attempt is scored, like any mark in the timeline. Overrides and
gap decisions stay after scoring: they amend a sheet that must exist first. A veto is never marked
before scoring: it stops the item, which is the veto button's step (ExamRun.veto).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from devices.clock import Clock
from scoring.canonical import canonical_json
from scoring.checks import ScoringError, check_mark, check_override
from scoring.engine import score
from scoring.rubric import Rubric
from scoring.sheet import ScoreSheet
from scoring.timeline import DecisionKind, DecisionRecord, MarkRecord, OverrideRecord, record_from_dict
from station import audit
from station import session as sm
from station.attempt_book import AttemptBook
from station.config import SiteConfig
from station.db.digest import sha256_hex
from station.db.models import OutboxRow, ResultRow, ScoreSheetRow, Signature, TimelineRow
from station.discipline import incidents_in, notes
from station.errors import ServiceError
from station.events import ResultStateEvent
from station.evidence_link import EvidenceLinker
from station.result_document import VideoEvidence
from station.results import store_signed_result
from station.rig_check import RigState
from station.service_part import ServicePart
from station.signing import SiteKey
from station.stored import seal_timeline, stored_timeline
from station.uplink.outbox import OutboxState


def _sign_and_queue(a: sm.Attempt, examiner: str, now: sm.Now) -> sm.Step:
    """The examiner's signature and, when it is the last one, the step to `queued`: one state change,
    so no relay can deliver the stored result while the attempt still says `signed`."""
    after, events = sm.examiner_signs(a, examiner, now)
    if after.state != sm.State.SIGNED:
        return after, events
    queued, more = sm.queued(after, now)
    return queued, (*events, *more)


NOTED = (sm.State.ITEM_DRAWN, sm.State.RUNNING, sm.State.PAUSED, sm.State.ENDED)
"""States in which a mark is noted for scoring (items under way or over, the sheet not yet scored)."""
AMENDABLE = (sm.State.SCORED, sm.State.REVIEWED)
"""States in which a mark or an override amends the scored sheet (scored again at once)."""


def _taken(a: sm.Attempt) -> list[str]:
    """The items the attempt has started (marks and overrides may name only these)."""
    return [i.code for i in a.items if i.started_ns is not None]


@dataclass(frozen=True, slots=True)
class StoredResult:
    """An attempt's signed result and how far its delivery got (the review page shows it)."""

    document: dict[str, Any]
    state: str
    """queued, delivered or failed (station.uplink.outbox)."""
    sends: int
    delivered_utc_ns: int | None
    """When the province's receipt arrived."""
    last_error: str | None


class SignOff(ServicePart):
    def __init__(self, book: AttemptBook, config: SiteConfig, rubric_of: Callable[[str], Rubric], rig: RigState,
                 clock: Clock, key: SiteKey, software: str) -> None:
        super().__init__(book, config, rubric_of, rig, clock)
        self.key = key
        """The site key that signs each result."""
        self.software = software
        """The controller's name and version, written into each result document."""
        self.evidence: EvidenceLinker | None = None
        """Set while cameras are recorded (station.recording): the last signature then waits for the
        post-roll and the result lists the attempt's video. None only where nothing records (unit tests)."""

    def score(self, attempt_id: str) -> ScoreSheet:
        """Score the ended attempt from its stored timeline and keep the sheet (version 1, 2... after marks)."""
        self.book.writer.flush()
        a = self.book.get(attempt_id)
        sheet = score(self.rubric_of(a.operation), stored_timeline(self.book.db, attempt_id))
        text = canonical_json(sheet.to_dict())

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
            self.book.step(attempt_id, "exam-system", sm.scored, extra=keep)
        elif a.state in (sm.State.SCORED, sm.State.REVIEWED):
            now = self.book.now()
            self.book.writer.commit_with([], lambda tx: keep(tx, a, now))
        else:
            raise ServiceError(f"attempt {attempt_id} is {a.state.value}; it can be scored once every item has ended")
        return sheet

    def mark(self, attempt_id: str, item: str, code: str, count: int, examiner: str, note: str = "") -> None:
        """A manual deduction or veto (考评员扣分) on a code of the rubric. After scoring the sheet is
        scored again; before it (a deduction only, on an item already started) the mark is noted in
        the timeline and charged when the attempt is scored (see the module's docstring)."""
        a = self.book.get(attempt_id)
        rubric = self.rubric_of(a.operation)
        _refuse_unless(lambda: check_mark(rubric, _taken(a), item, code, count), attempt_id)
        noted = a.state in NOTED
        if noted and rubric.item(item).veto(code) is not None:
            raise ServiceError(f"attempt {attempt_id}: {code} is a veto; a veto stops the item, so it is not noted as "
                               "a mark while the attempt runs: use the veto while the item runs, or mark it on "
                               "review after scoring")
        found = rubric.item(item).deduction(code)
        if found is not None and found[1].max_count is not None:
            used = self._noted(attempt_id, item, code) if noted else self._charged(attempt_id, item, code)
            if used + count > found[1].max_count:
                raise ServiceError(f"attempt {attempt_id}: {code} is charged at most {found[1].max_count} times and "
                                   f"{used} are {'marked' if noted else 'charged'} already; a mark of {count} more "
                                   "would change nothing: override the row on review if the sheet is wrong")
        record = MarkRecord(item, code, count, examiner, note, *self._stamp())
        if not noted:
            self._amend(attempt_id, record, examiner)
            return
        with self.book.lock:  # the attempt is not scored between the check and the commit
            now = self.book.get(attempt_id).state
            if now not in NOTED:
                raise ServiceError(f"attempt {attempt_id} became {now.value} meanwhile; mark again on review")
            self.book.writer.commit_with([(attempt_id, record)], _audited(attempt_id, record, examiner))

    def marks(self, attempt_id: str) -> list[MarkRecord]:
        """The examiners' marks in the attempt's stored timeline, in time order (all of them, also
        those made before scoring, with the moment each was made)."""
        self.book.writer.flush()
        with self.book.db.read() as s:
            rows = s.execute(select(TimelineRow.record).where(TimelineRow.attempt_id == attempt_id,
                                                              TimelineRow.record.like('%"type":"mark"%'))).scalars()
            found = [r for r in (record_from_dict(json.loads(text)) for text in rows) if isinstance(r, MarkRecord)]
        return sorted(found, key=lambda m: m.t_mono_ns)

    def _noted(self, attempt_id: str, item: str, code: str) -> int:
        """How many occurrences of `code` on `item` the examiners have marked so far (before scoring)."""
        return sum(m.count for m in self.marks(attempt_id) if m.item == item and m.code == code)

    def override(self, attempt_id: str, item: str, row: str, points: float, reason: str, examiner: str) -> None:
        """Set a row's points by hand (whole hundredths within the row), with a reason."""
        if not reason.strip():
            raise ServiceError("an override needs a reason; the automatic value stays beside it")
        a = self.book.get(attempt_id)
        _refuse_unless(lambda: check_override(self.rubric_of(a.operation), _taken(a), item, row, points), attempt_id)
        self._amend(attempt_id, OverrideRecord(item, row, points, reason, examiner, *self._stamp()), examiner)

    def decide_gap(self, attempt_id: str, item: str, choice: DecisionKind, reason: str, examiner: str) -> None:
        """For an item the sheet says needs it (a device it reads was down for over 10 % of it, or at
        its end, and it was not ended by the examiner's choice): score it with the gap, or a re-sit."""
        if choice not in ("score_with_gap", "resit"):
            raise ServiceError(f"a gap decision is score_with_gap or resit, not {choice!r}")
        if not reason.strip():
            raise ServiceError("a gap decision needs a reason; it is shown on the sheet")
        pending = self.pending_gap_decisions(attempt_id)
        if item not in pending:
            raise ServiceError(f"attempt {attempt_id} item {item} needs no gap decision "
                               f"(items waiting for one: {', '.join(pending) or 'none'})")
        self._amend(attempt_id, DecisionRecord(item, choice, reason.strip(), examiner, *self._stamp()), examiner)

    def pending_gap_decisions(self, attempt_id: str) -> list[str]:
        sheet = self.latest_sheet(attempt_id)
        return [i["code"] for i in (sheet or {}).get("items", []) if i.get("needs_gap_decision")]

    def latest_sheet(self, attempt_id: str) -> dict[str, Any] | None:
        """The latest stored score sheet of the attempt, as JSON data (None before scoring)."""
        with self.book.db.read() as s:
            text = s.execute(select(ScoreSheetRow.sheet).where(ScoreSheetRow.attempt_id == attempt_id)
                             .order_by(ScoreSheetRow.version.desc()).limit(1)).scalar()
        return None if text is None else dict(json.loads(text))

    def result(self, attempt_id: str) -> StoredResult | None:
        """The attempt's signed result and its delivery state (None before the last signature)."""
        with self.book.db.read() as s:
            row = s.execute(select(ResultRow).where(ResultRow.attempt_id == attempt_id)).scalar()
            if row is None:
                return None
            out = s.get(OutboxRow, row.result_id)
            return StoredResult(dict(json.loads(row.document)), out.state if out else "queued",
                                out.attempts if out else 0, out.delivered_utc_ns if out else None,
                                out.last_error if out else None)

    def _charged(self, attempt_id: str, item: str, code: str) -> int:
        """How many occurrences of deduction `code` the latest sheet charges (automatic and manual)."""
        sheet = self.latest_sheet(attempt_id)
        lines = [d for i in (sheet or {}).get("items", []) if i["code"] == item for r in i["rows"]
                 for d in r["deductions"] if d["code"] == code and d["by"] != "unverified"]
        return sum(int(d["count"]) for d in lines)

    def _stamp(self) -> tuple[int, int]:
        return self.clock.mono_ns(), self.clock.utc_ns()

    def _amend(self, attempt_id: str, record: MarkRecord | OverrideRecord | DecisionRecord, examiner: str) -> None:
        a = self.book.get(attempt_id)
        if a.state not in AMENDABLE:
            raise ServiceError(f"attempt {attempt_id} is {a.state.value}: overrides and gap decisions are made after "
                               "scoring and before the examiners sign; marks from the start of their item until "
                               "the examiners sign")
        self.book.writer.commit_with([(attempt_id, record)], _audited(attempt_id, record, examiner))
        self.score(attempt_id)

    def review(self, attempt_id: str, examiner: str) -> None:
        pending = self.pending_gap_decisions(attempt_id)
        if pending:
            raise ServiceError(f"attempt {attempt_id}: items {', '.join(pending)} had a device down for a large part "
                               "of them; decide first (decide_gap): score with the gap, or a re-sit")
        self.book.step(attempt_id, examiner, sm.reviewed, examiner)

    def candidate_decision(self, attempt_id: str, item: str, signed: bool) -> None:
        def keep(tx: Session, a: sm.Attempt, n: sm.Now) -> None:
            tx.add(Signature(attempt_id=attempt_id, item_code=item, role="candidate", who=a.candidate,
                             decision="signed" if signed else "refused", utc_ns=n.utc_ns))

        self.book.step(attempt_id, "candidate", sm.candidate_decision, item, signed, extra=keep)
        if not signed:
            self.score(attempt_id)  # a refused item scores 0

    def examiner_sign(self, attempt_id: str, examiner: str, wait_for_video: bool = True) -> dict[str, Any] | None:
        """An examiner signs; the last required signature stores the signed result and queues it,
        attempt state included, in ONE transaction (the uplink may deliver it a moment later).
        Returns the result document then. The last signature first waits until the post-roll is
        recorded, unless `wait_for_video` is false: an attempt closed after a restart ended when the
        earlier run stopped, and has no post-roll to wait for."""
        stored: dict[str, Any] = {}
        before = self.book.get(attempt_id)
        evidence = self.evidence
        last = examiner not in before.examiner_signatures and \
            len(before.examiner_signatures) + 1 >= before.examiners_required
        # The wait for the post-roll happens before the transaction, which holds the writer lock.
        window_end = evidence.settle(before.station) if evidence is not None and last and wait_for_video else None

        def keep(tx: Session, a: sm.Attempt, n: sm.Now) -> None:
            tx.add(Signature(attempt_id=attempt_id, item_code=None, role="examiner", who=examiner, decision="signed",
                             utc_ns=n.utc_ns))
            if a.state == sm.State.QUEUED:
                video = VideoEvidence() if evidence is None else \
                    evidence.video_in(tx, attempt_id, a.station, window_end)
                video = replace(video, discipline=notes(incidents_in(tx, attempt_id)))
                stored.update(store_signed_result(tx, a, n, rubric=self.rubric_of(a.operation), config=self.config,
                                                  key=self.key, software=self.software, video=video))

        self.book.step(attempt_id, examiner, _sign_and_queue, examiner, extra=keep)
        if stored:  # committed: the uplink relay, subscribed to these, sends it now
            self.book.events.publish(ResultStateEvent(str(stored["result_id"]), attempt_id, OutboxState.QUEUED))
            return stored
        return None


def _audited(attempt_id: str, record: MarkRecord | OverrideRecord | DecisionRecord,
             examiner: str) -> Callable[[Session], None]:
    """The audit entry committed with the record: `sheet.mark`, `sheet.override`, `sheet.decision`."""
    def log_it(tx: Session) -> None:
        audit.append(tx, examiner, f"sheet.{type(record).__name__.removesuffix('Record').lower()}",
                     f"attempt:{attempt_id}", {k: getattr(record, k) for k in record.__slots__}, record.t_utc_ns)
    return log_it


def _refuse_unless(check: Callable[[], None], attempt_id: str) -> None:
    try:
        check()
    except (ScoringError, KeyError) as err:
        raise ServiceError(f"attempt {attempt_id}: {err.args[0] if err.args else err}") from None
