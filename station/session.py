"""The exam attempt's state machine: pure data and functions, no clock, no IO, no randomness.

registered -> checked_in -> item_drawn -> running <-> paused -> (next item: item_drawn ...) ->
ended (or at once by `end_attempt`) -> scored -> reviewed -> signed -> queued -> delivered. Every
function takes the attempt and the current time and returns the new attempt with the events that
happened (the lifecycle records for the timeline, and what the audit log must say); an illegal
step raises InvalidTransition with what was asked, the state it met, and what is allowed. The
service layer persists the events in the same transaction as the new state, so a restart resumes
exactly where the attempt was.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

from scoring.timeline import EndReason, LifecycleKind


class SessionError(Exception):
    """Something about an exam session is wrong."""


class InvalidTransition(SessionError):
    """The requested step is not allowed in the attempt's current state."""


class State(StrEnum):
    REGISTERED = "registered"
    CHECKED_IN = "checked_in"
    ITEM_DRAWN = "item_drawn"
    RUNNING = "running"
    PAUSED = "paused"
    ENDED = "ended"
    SCORED = "scored"
    REVIEWED = "reviewed"
    SIGNED = "signed"
    QUEUED = "queued"
    DELIVERED = "delivered"


@dataclass(frozen=True, slots=True)
class Now:
    """The moment a step happens: monotonic for durations, UTC for people."""

    mono_ns: int
    utc_ns: int


@dataclass(frozen=True, slots=True)
class Event:
    """Something that happened; `lifecycle` events also go into the timeline as records."""

    kind: str
    item: str
    detail: str
    at: Now

    @property
    def lifecycle(self) -> LifecycleKind | None:
        kinds: tuple[LifecycleKind, ...] = ("attempt_start", "item_start", "item_end", "pause", "resume",
                                            "signature_refused", "attempt_end")
        return next((k for k in kinds if k == self.kind), None)


@dataclass(frozen=True, slots=True)
class ItemClock:
    """One drawn item and its clock: time runs only while the item runs and nothing pauses it."""

    code: str
    subject: str
    time_limit_s: int
    started_ns: int | None = None
    ended_ns: int | None = None
    end_reason: str = ""
    paused_ns: int = 0
    paused_since_ns: int | None = None
    pause_reasons: tuple[str, ...] = ()
    candidate_decision: str = ""
    """'signed' or 'refused' once the candidate has been asked to sign this item's sheet."""

    def active_ns(self, now_ns: int) -> int:
        """Exam time used so far (pauses excluded)."""
        if self.started_ns is None:
            return 0
        end = self.ended_ns if self.ended_ns is not None else now_ns
        open_pause = (end - self.paused_since_ns) if self.paused_since_ns is not None else 0
        return max(0, end - self.started_ns - self.paused_ns - open_pause)

    def remaining_s(self, now_ns: int) -> float:
        return self.time_limit_s - self.active_ns(now_ns) / 1e9


@dataclass(frozen=True, slots=True)
class Attempt:
    attempt_id: str
    candidate: str
    station: str
    operation: str
    examiners_required: int
    state: State = State.REGISTERED
    items: tuple[ItemClock, ...] = ()
    current: int | None = None
    """Index of the item running or paused, None between items."""
    seed: int | None = None
    checked_in_by: str = ""
    examiner_signatures: tuple[str, ...] = ()

    def item(self, code: str) -> ItemClock:
        for it in self.items:
            if it.code == code:
                return it
        raise SessionError(f"attempt {self.attempt_id} has no item {code}; drawn: {[i.code for i in self.items]}")

    @property
    def running_item(self) -> ItemClock | None:
        return None if self.current is None else self.items[self.current]


@dataclass(frozen=True, slots=True)
class ItemChoice:
    """What the rubric offers for one subject: its items, and whether the candidate may choose."""

    subject: str
    items: tuple[tuple[str, int, bool], ...]
    """(code, time limit s, candidate may choose)"""


Step = tuple[Attempt, tuple[Event, ...]]


def _refuse(a: Attempt, action: str, allowed: Sequence[State], hint: str = "") -> InvalidTransition:
    allowed_txt = " or ".join(s.value for s in allowed)
    return InvalidTransition(
        f"attempt {a.attempt_id} at station {a.station}: cannot {action} while {a.state.value}; "
        f"allowed only when {allowed_txt}" + (f"; {hint}" if hint else "")
    )


def _need(a: Attempt, action: str, *states: State, hint: str = "") -> None:
    if a.state not in states:
        raise _refuse(a, action, states, hint)


def check_in(a: Attempt, verified_by: str, method: str, now: Now) -> Step:
    """The invigilator has matched the candidate's ID card to the registration."""
    _need(a, "check in", State.REGISTERED)
    if not verified_by.strip():
        raise SessionError(f"attempt {a.attempt_id}: check-in needs the name of who verified the ID")
    return (replace(a, state=State.CHECKED_IN, checked_in_by=verified_by),
            (Event("checked_in", "", f"ID verified by {verified_by} ({method})", now),))


def draw(a: Attempt, subjects: Sequence[ItemChoice], now: Now, seed: int,
         chosen: Mapping[str, str] | None = None) -> Step:
    """One item per subject, at random with `seed` (kept for audit), or the candidate's choice
    where the rubric allows it."""
    _need(a, "draw items", State.CHECKED_IN)
    rng = random.Random(seed)
    chosen = dict(chosen or {})
    clocks = []
    for subject in subjects:
        codes = [c for c, _, _ in subject.items]
        pick = chosen.pop(subject.subject, None)
        if pick is not None:
            entry = next((i for i in subject.items if i[0] == pick), None)
            if entry is None:
                raise SessionError(f"attempt {a.attempt_id}: {pick} is not an item of {subject.subject} ({codes})")
            if not entry[2]:
                raise SessionError(f"attempt {a.attempt_id}: the rubric does not let the candidate choose {pick}; "
                                   "draw it at random")
        else:
            entry = subject.items[rng.randrange(len(subject.items))]
        clocks.append(ItemClock(entry[0], subject.subject, entry[1]))
    if chosen:
        raise SessionError(f"attempt {a.attempt_id}: no subject {sorted(chosen)} in this rubric")
    detail = f"seed {seed}: " + ", ".join(c.code for c in clocks)
    return replace(a, state=State.ITEM_DRAWN, items=tuple(clocks), seed=seed), (Event("drawn", "", detail, now),)


def start_item(a: Attempt, code: str, now: Now) -> Step:
    _need(a, f"start item {code}", State.ITEM_DRAWN, hint="end the running item first")
    index = next((k for k, it in enumerate(a.items) if it.code == code), None)
    if index is None:
        raise SessionError(f"attempt {a.attempt_id}: {code} was not drawn; drawn: {[i.code for i in a.items]}")
    if a.items[index].started_ns is not None:
        raise InvalidTransition(f"attempt {a.attempt_id}: item {code} has already been taken")
    items = list(a.items)
    items[index] = replace(items[index], started_ns=now.mono_ns)
    events: list[Event] = []
    if all(it.started_ns is None for it in a.items):
        events.append(Event("attempt_start", "", "", now))
    events.append(Event("item_start", code, "", now))
    return replace(a, state=State.RUNNING, items=tuple(items), current=index), tuple(events)


def _with_current(a: Attempt, item: ItemClock) -> tuple[ItemClock, ...]:
    assert a.current is not None
    items = list(a.items)
    items[a.current] = item
    return tuple(items)


def pause(a: Attempt, reason: str, now: Now) -> Step:
    """Stop the item's clock (an examiner's pause, or `device X` when equipment fails)."""
    _need(a, "pause", State.RUNNING, State.PAUSED)
    it = a.running_item
    assert it is not None
    if reason in it.pause_reasons:
        return a, ()
    since = it.paused_since_ns if it.paused_since_ns is not None else now.mono_ns
    it = replace(it, paused_since_ns=since, pause_reasons=(*it.pause_reasons, reason))
    events = (Event("pause", it.code, reason, now),) if a.state == State.RUNNING else ()
    return replace(a, state=State.PAUSED, items=_with_current(a, it)), events


def resume(a: Attempt, reason: str, now: Now) -> Step:
    """Lift one pause reason; the clock runs again when none is left."""
    _need(a, "resume", State.PAUSED, State.RUNNING)
    it = a.running_item
    assert it is not None
    if reason not in it.pause_reasons:
        return a, ()
    left = tuple(r for r in it.pause_reasons if r != reason)
    if left:
        return replace(a, items=_with_current(a, replace(it, pause_reasons=left))), ()
    assert it.paused_since_ns is not None
    it = replace(it, pause_reasons=(), paused_ns=it.paused_ns + now.mono_ns - it.paused_since_ns, paused_since_ns=None)
    return replace(a, state=State.RUNNING, items=_with_current(a, it)), (Event("resume", it.code, reason, now),)


def device_status(a: Attempt, device: str, online: bool, now: Now) -> Step:
    """A device fault pauses the running item's clock; its return resumes it."""
    reason = f"device {device}"
    if a.state in (State.RUNNING, State.PAUSED):
        return resume(a, reason, now) if online else pause(a, reason, now)
    return a, ()


def end_item(a: Attempt, reason: EndReason, now: Now) -> Step:
    """The item ends: done, timeout, veto_stop, abandoned or interrupted."""
    _need(a, "end the item", State.RUNNING, State.PAUSED)
    if reason not in tuple(EndReason):
        raise SessionError(f"attempt {a.attempt_id}: end reason {reason!r} is not one of: "
                           f"{', '.join(r.value for r in EndReason)}")
    it = a.running_item
    assert it is not None
    paused = it.paused_ns + (now.mono_ns - it.paused_since_ns if it.paused_since_ns is not None else 0)
    it = replace(it, ended_ns=now.mono_ns, end_reason=EndReason(reason).value, paused_ns=paused, paused_since_ns=None,
                 pause_reasons=())
    items = _with_current(a, it)
    events = [Event("item_end", it.code, reason, now)]
    done = all(i.ended_ns is not None for i in items)
    if done:
        events.append(Event("attempt_end", "", "", now))
    state = State.ENDED if done else State.ITEM_DRAWN
    return replace(a, state=state, items=items, current=None), tuple(events)


def end_attempt(a: Attempt, reason: EndReason, now: Now) -> Step:
    """The examiner ends the attempt early (a discipline incident): the running item ends for `reason`;
    each item not started is closed unstarted (`item_not_taken`: no item_end record, so scoring leaves
    it out and the incomplete paper fails). One item must have started: the attempt's clock begins there."""
    _need(a, "end the attempt", State.ITEM_DRAWN, State.RUNNING, State.PAUSED)
    if all(it.started_ns is None for it in a.items):
        raise InvalidTransition(f"attempt {a.attempt_id} at station {a.station}: no item has started, so there is "
                                "nothing to score; start an item before ending the attempt")
    events: list[Event] = []
    if a.running_item is not None:
        a, ended = end_item(a, reason, now)
        events += [e for e in ended if e.kind != "attempt_end"]
    why = EndReason(reason).value
    items = []
    for it in a.items:
        if it.ended_ns is None:
            events.append(Event("item_not_taken", it.code, why, now))
            it = replace(it, ended_ns=now.mono_ns, end_reason=why)
        items.append(it)
    events.append(Event("attempt_end", "", why, now))
    return replace(a, state=State.ENDED, items=tuple(items), current=None), tuple(events)


def tick(a: Attempt, now: Now) -> Step:
    """Called often by the controller: ends the running item when its time is up."""
    it = a.running_item
    if a.state == State.RUNNING and it is not None and it.remaining_s(now.mono_ns) <= 0:
        # end at the instant the limit was reached, not at this (possibly late) tick
        late_ns = int(-it.remaining_s(now.mono_ns) * 1e9)
        return end_item(a, EndReason.TIMEOUT, Now(now.mono_ns - late_ns, now.utc_ns - late_ns))
    return a, ()


def scored(a: Attempt, now: Now) -> Step:
    _need(a, "record the score", State.ENDED, hint="every drawn item must end first")
    return replace(a, state=State.SCORED), (Event("scored", "", "", now),)


def reviewed(a: Attempt, examiner: str, now: Now) -> Step:
    _need(a, "finish the review", State.SCORED)
    return replace(a, state=State.REVIEWED), (Event("reviewed", "", f"by {examiner}", now),)


def candidate_decision(a: Attempt, code: str, signed: bool, now: Now) -> Step:
    """The candidate signs an item's sheet, or refuses: a refused item scores 0 (STANDARD.md)."""
    _need(a, "take the candidate's signature", State.REVIEWED)
    index = next((k for k, it in enumerate(a.items) if it.code == code), None)
    if index is None:
        raise SessionError(f"attempt {a.attempt_id}: no item {code} to sign")
    if a.items[index].started_ns is None:
        raise SessionError(f"attempt {a.attempt_id}: item {code} was not taken; it has no sheet to sign")
    if a.items[index].candidate_decision:
        raise InvalidTransition(f"attempt {a.attempt_id}: the candidate already {a.items[index].candidate_decision} "
                                f"item {code}")
    items = list(a.items)
    items[index] = replace(items[index], candidate_decision="signed" if signed else "refused")
    kind = "candidate_signed" if signed else "signature_refused"
    return replace(a, items=tuple(items)), (Event(kind, code, "", now),)


def examiner_signs(a: Attempt, examiner: str, now: Now) -> Step:
    """An examiner signs; with the required number of different examiners the attempt is signed."""
    _need(a, "take an examiner's signature", State.REVIEWED)
    missing = [it.code for it in a.items if not it.candidate_decision and it.started_ns is not None]
    if missing:
        raise InvalidTransition(f"attempt {a.attempt_id}: the candidate has not signed or refused {missing} yet")
    if examiner in a.examiner_signatures:
        raise InvalidTransition(f"attempt {a.attempt_id}: {examiner} has already signed; a second examiner must sign")
    sigs = (*a.examiner_signatures, examiner)
    state = State.SIGNED if len(sigs) >= a.examiners_required else State.REVIEWED
    return replace(a, examiner_signatures=sigs, state=state), (Event("examiner_signed", "", examiner, now),)


def queued(a: Attempt, now: Now) -> Step:
    _need(a, "queue the result", State.SIGNED)
    return replace(a, state=State.QUEUED), (Event("queued", "", "", now),)


def delivered(a: Attempt, receipt: str, now: Now) -> Step:
    _need(a, "mark delivered", State.QUEUED)
    return replace(a, state=State.DELIVERED), (Event("delivered", "", receipt, now),)
