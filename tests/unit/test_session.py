"""The attempt state machine: named transitions, clear refusals, and properties over random
sequences of everything an examiner, a candidate and the equipment can do."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from station import session as s
from station.session import Attempt, InvalidTransition, ItemChoice, Now, SessionError, State

SUBJECTS = [
    ItemChoice("K1", (("K11", 600, False), ("K12", 600, False), ("K13", 600, True))),
    ItemChoice("K2", (("K21", 1800, False), ("K22", 2700, False))),
    ItemChoice("K3", (("K31", 600, False),)),
    ItemChoice("K4", (("K41", 600, False), ("K42", 600, False), ("K43", 600, False))),
]
S = 1_000_000_000


def at(t_s: float) -> Now:
    return Now(int(t_s * S), 1_700_000_000 * S + int(t_s * S))


def fresh(examiners: int = 2) -> Attempt:
    return Attempt("a-1", "110101199001011237", "A01", "低压电工作业", examiners)


def test_a_whole_exam() -> None:
    a, _ = s.check_in(fresh(), "监考员王", "id_card_reader", at(0))
    a, ev = s.draw(a, SUBJECTS, at(1), seed=42)
    assert a.seed == 42 and [i.subject for i in a.items] == ["K1", "K2", "K3", "K4"]
    assert s.draw(s.check_in(fresh(), "x", "manual", at(0))[0], SUBJECTS, at(1), seed=42)[0].items == a.items
    t = 10.0
    for item in a.items:
        a, ev = s.start_item(a, item.code, at(t))
        a, _ = s.device_status(a, "A01/bench", False, at(t + 5))
        assert a.state == State.PAUSED
        a, _ = s.pause(a, "examiner", at(t + 6))
        a, _ = s.device_status(a, "A01/bench", True, at(t + 20))
        assert a.state == State.PAUSED, "the examiner's pause still holds"
        a, ev = s.resume(a, "examiner", at(t + 25))
        assert a.state == State.RUNNING and a.item(item.code).active_ns(at(t + 25).mono_ns) == 5 * S
        a, ev = s.end_item(a, "done", at(t + 100))
        t += 200
    assert a.state == State.ENDED and ev[-1].kind == "attempt_end"
    a, _ = s.scored(a, at(t))
    a, _ = s.reviewed(a, "考评员李", at(t))
    for item in a.items:
        a, _ = s.candidate_decision(a, item.code, item.code != "K31", at(t))
    a, _ = s.examiner_signs(a, "考评员李", at(t))
    assert a.state == State.REVIEWED
    with pytest.raises(InvalidTransition, match="already signed"):
        s.examiner_signs(a, "考评员李", at(t))
    a, _ = s.examiner_signs(a, "考评员张", at(t))
    assert a.state == State.SIGNED
    a, _ = s.queued(a, at(t))
    a, _ = s.delivered(a, "receipt 1", at(t))
    assert a.state == State.DELIVERED


def test_ending_the_attempt_ends_the_running_item_and_closes_the_rest() -> None:
    """For misconduct the examiner ends the whole attempt: the running item ends `abandoned`, the
    items not started are closed unstarted (no item_end: they never ran), the attempt is ENDED, and
    only the items taken await the candidate's signature."""
    a, _ = s.check_in(fresh(), "监考员王", "manual", at(0))
    a, _ = s.draw(a, SUBJECTS, at(1), seed=7)
    with pytest.raises(InvalidTransition, match="no item has started"):
        s.end_attempt(a, "abandoned", at(2))
    first, second, *rest = [i.code for i in a.items]
    a, _ = s.start_item(a, first, at(10))
    a, _ = s.end_item(a, "done", at(100))
    a, _ = s.start_item(a, second, at(110))
    a, ev = s.end_attempt(a, "abandoned", at(130))
    assert a.state == State.ENDED and a.current is None
    assert [(e.kind, e.item, e.detail) for e in ev] == [
        ("item_end", second, "abandoned"), *(("item_not_taken", c, "abandoned") for c in rest),
        ("attempt_end", "", "abandoned")]
    assert [e.lifecycle for e in ev if e.lifecycle] == ["item_end", "attempt_end"]
    assert [(i.end_reason, i.started_ns is None) for i in a.items] == [
        ("done", False), ("abandoned", False), *(("abandoned", True) for _ in rest)]
    with pytest.raises(InvalidTransition, match="cannot end the attempt while ended"):
        s.end_attempt(a, "abandoned", at(140))
    a, _ = s.scored(a, at(150))
    a, _ = s.reviewed(a, "考评员李", at(150))
    with pytest.raises(SessionError, match="was not taken"):
        s.candidate_decision(a, rest[0], True, at(150))
    for code in (first, second):
        a, _ = s.candidate_decision(a, code, True, at(150))
    a, _ = s.examiner_signs(a, "考评员李", at(151))
    a, _ = s.examiner_signs(a, "考评员张", at(152))
    assert a.state == State.SIGNED


def test_time_limit_ends_the_item_and_pauses_do_not_count() -> None:
    a, _ = s.check_in(fresh(), "王", "manual", at(0))
    a, _ = s.draw(a, SUBJECTS[2:3], at(0), seed=1)
    a, _ = s.start_item(a, "K31", at(0))
    a, _ = s.pause(a, "device A01/bench", at(100))
    a, ev = s.tick(a, at(1000))
    assert ev == () and a.state == State.PAUSED
    a, _ = s.resume(a, "device A01/bench", at(1000))
    a, ev = s.tick(a, at(1499))
    assert ev == ()
    a, ev = s.tick(a, at(1500))
    assert [e.kind for e in ev] == ["item_end", "attempt_end"] and ev[0].detail == "timeout"


def test_illegal_steps_say_what_and_why() -> None:
    with pytest.raises(InvalidTransition, match=r"cannot start item K21 while registered; allowed only when"):
        s.start_item(fresh(), "K21", at(0))
    with pytest.raises(InvalidTransition, match="cannot take an examiner's signature while registered"):
        s.examiner_signs(fresh(), "李", at(0))
    a, _ = s.check_in(fresh(), "王", "manual", at(0))
    with pytest.raises(SessionError, match="does not let the candidate choose K11"):
        s.draw(a, SUBJECTS, at(0), seed=1, chosen={"K1": "K11"})
    a, _ = s.draw(a, SUBJECTS, at(0), seed=1, chosen={"K1": "K13"})
    assert a.items[0].code == "K13"


class AttemptMachine(RuleBasedStateMachine):
    """Random sequences of every step; illegal ones must be refused, never corrupt the attempt."""

    @initialize(examiners=st.integers(1, 2), seed=st.integers(0, 10**6))
    def start(self, examiners: int, seed: int) -> None:
        self.t = 0.0
        self.a = fresh(examiners)
        self.seed = seed
        self.ended_before = 0

    def step(self, fn, *args) -> None:  # type: ignore[no-untyped-def]
        with contextlib.suppress(InvalidTransition, SessionError):
            self.a, _ = fn(self.a, *args)

    @rule(dt=st.floats(0.001, 900))
    def time_passes(self, dt: float) -> None:
        self.t += dt
        self.step(s.tick, at(self.t))

    @rule()
    def check_in(self) -> None:
        self.step(s.check_in, "王", "manual", at(self.t))

    @rule()
    def draw(self) -> None:
        self.step(s.draw, SUBJECTS, at(self.t), self.seed)

    @rule(k=st.integers(0, 3))
    def start_item(self, k: int) -> None:
        if self.a.items:
            self.step(s.start_item, self.a.items[k % len(self.a.items)].code, at(self.t))

    @rule(reason=st.sampled_from(["examiner", "device A01/bench", "device A01/manikin"]), on=st.booleans())
    def pause_or_resume(self, reason: str, on: bool) -> None:
        self.step(s.pause if on else s.resume, reason, at(self.t))

    @rule(reason=st.sampled_from(["done", "veto_stop", "abandoned", "interrupted"]))
    def end(self, reason: str) -> None:
        self.step(s.end_item, reason, at(self.t))

    @rule()
    def end_attempt(self) -> None:
        self.step(s.end_attempt, "abandoned", at(self.t))

    @rule(who=st.sampled_from(["李", "张"]), signed=st.booleans(), k=st.integers(0, 3))
    def sign_off(self, who: str, signed: bool, k: int) -> None:
        self.step(s.scored, at(self.t))
        self.step(s.reviewed, who, at(self.t))
        if self.a.items:
            self.step(s.candidate_decision, self.a.items[k % len(self.a.items)].code, signed, at(self.t))
        self.step(s.examiner_signs, who, at(self.t))

    @invariant()
    def consistent(self) -> None:
        a = self.a
        now = at(self.t).mono_ns
        assert (a.state in (State.RUNNING, State.PAUSED)) == (a.current is not None)
        if a.current is not None:
            it = a.items[a.current]
            assert it.started_ns is not None and it.ended_ns is None
            assert (a.state == State.PAUSED) == bool(it.pause_reasons)
        ended = sum(1 for it in a.items if it.ended_ns is not None)
        assert ended >= self.ended_before
        self.ended_before = ended
        for it in a.items:
            elapsed = now - it.started_ns if it.started_ns is not None else 0
            assert 0 <= it.active_ns(now) <= elapsed
            if it.end_reason == "timeout":
                assert it.active_ns(now) >= it.time_limit_s * S
        assert len(set(a.examiner_signatures)) == len(a.examiner_signatures) <= a.examiners_required
        if a.state in (State.ENDED, State.SCORED, State.REVIEWED, State.SIGNED):
            assert a.items and all(it.ended_ns is not None for it in a.items)
            assert any(it.started_ns is not None for it in a.items)
        if a.state == State.SIGNED:
            assert all(it.candidate_decision for it in a.items if it.started_ns is not None)
        assert all(not it.candidate_decision for it in a.items if it.started_ns is None)


TestAttemptMachine = AttemptMachine.TestCase
TestAttemptMachine.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
