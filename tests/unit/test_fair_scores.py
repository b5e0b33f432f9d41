"""Regression tests for issue 10, "fair scores": each finding, reproduced on a hand-built timeline
over the shipped rubrics and worked out by hand from the rubric file.

1. carry-over from the previous candidate; 2. the pass mark rounded up; 3. one fault charged
twice; 4. a partial paper passing; 5. inputs that silently change a score; 6. a dead device
scored as a careless candidate.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import pytest

from scoring.engine import ScoringError, score
from scoring.rubric_loader import rubric_for
from scoring.sheet import ItemScore
from scoring.timeline import (
    DecisionRecord,
    FaultRecord,
    LifecycleRecord,
    MarkRecord,
    Record,
    SampleRecord,
    Timeline,
    Value,
)

LV = rubric_for("低压电工作业")
S = 1_000_000_000
MS = 1_000_000


def at(t_s: float) -> int:
    return round(t_s * S)


def sample(signal: str, value: Value, t_s: float, device: str = "A01/bench") -> SampleRecord:
    return SampleRecord(signal, value, at(t_s), at(t_s), device)


def item(code: str, start_s: float, end_s: float, records: Iterable[Record], reason: str = "done",
         initial: dict[str, Value] | None = None, device: str = "A01/bench") -> list[Record]:
    """One item: the station's state just before it starts (as the services record it), its start,
    what happened, its end."""
    out: list[Record] = [SampleRecord(s, v, at(start_s) - 1, at(start_s) - 1, device)
                         for s, v in (initial or {}).items()]
    out += [LifecycleRecord("item_start", at(start_s), at(start_s), item=code), *records,
            LifecycleRecord("item_end", at(end_s), at(end_s), item=code, detail=reason)]
    return out


def attempt(*items: list[Record]) -> Timeline:
    first = min(r.t_mono_ns for r in items[0] if isinstance(r, LifecycleRecord))
    records: list[Record] = [LifecycleRecord("attempt_start", first, first)]
    for it in items:
        records += it
    return tuple(sorted(records, key=lambda r: r.t_mono_ns))


AT_REST = {"bench.main_switch": False, "bench.meter_probe": False, "bench.check_result": 0,
           "bench.check_fault": 0, "bench.short_trip": False, "bench.rcd_trip": False, "bench.fr_trip": False,
           "bench.motor_dir": 0, "bench.sb1_stop": False, "bench.sb2_start": False, "bench.sb3_jog": False}


def trial_run(t_s: float) -> list[Record]:
    """Power on at t, jog, continuous run, stop, power off: the K21 trial run done right."""
    return [sample("bench.main_switch", True, t_s),
            sample("bench.sb3_jog", True, t_s + 10), sample("bench.motor_dir", 1, t_s + 10),
            sample("bench.sb3_jog", False, t_s + 12), sample("bench.motor_dir", 0, t_s + 12),
            sample("bench.sb2_start", True, t_s + 20), sample("bench.motor_dir", 1, t_s + 20),
            sample("bench.sb2_start", False, t_s + 21),
            sample("bench.sb1_stop", True, t_s + 40), sample("bench.motor_dir", 0, t_s + 40),
            sample("bench.sb1_stop", False, t_s + 41), sample("bench.main_switch", False, t_s + 50)]


def lines(it: ItemScore, by: str = "auto") -> list[str]:
    return [f"{d.code} -{d.points:g}" for r in it.rows for d in r.deductions if d.by == by]


# -- 1. carry-over ------------------------------------------------------------------------------------

def test_a_self_check_result_latched_by_the_previous_candidate_is_not_this_candidates_pass() -> None:
    """k21-correct then k21-short-circuit on one bench: the bench still shows 合格 from the previous
    candidate. This candidate's first self-check says 不合格, so K21-3a -20 and the trip K21-3g -15:
    65, as k21-short-circuit declares (main gave 85)."""
    latched = {**AT_REST, "bench.check_result": 1}
    records = [sample("bench.meter_probe", True, 20), sample("bench.meter_probe", False, 40),
               sample("bench.check_result", 2, 60), sample("bench.check_fault", 2, 60),
               sample("bench.main_switch", True, 70), sample("bench.short_trip", True, 70),
               sample("bench.main_switch", False, 70), sample("bench.short_trip", False, 80),
               sample("bench.check_result", 1, 120), sample("bench.check_fault", 0, 120),
               *trial_run(130)]
    it = score(LV, attempt(item("K21", 10, 300, records, initial=latched))).item("K21")
    assert sorted(lines(it)) == ["K21-3a -20", "K21-3g -15"]
    assert it.score == 65


def test_meter_leads_left_connected_are_not_this_candidates_meter_check() -> None:
    """The previous candidate left the meter leads on the terminals; this one never checks the
    circuit before closing the main switch: K21-2a -10 (main gave 100)."""
    leads_on = {**AT_REST, "bench.meter_probe": True}
    records = [sample("bench.check_result", 1, 50), *trial_run(60)]
    it = score(LV, attempt(item("K21", 10, 300, records, initial=leads_on))).item("K21")
    assert lines(it) == ["K21-2a -10"]
    assert it.score == 90


# -- 2. the pass mark ---------------------------------------------------------------------------------

def extinguisher_item(start_s: float, off_target_ms: int) -> list[Record]:
    """K43 done right, except that the nozzle strays off the flame root for `off_target_ms` of a
    30 s discharge: K43-4c -15 x share."""
    d = "A01/extinguisher"
    t = start_s
    records = [sample("extinguisher.type_chosen", 1, t + 5, d), sample("extinguisher.pin_pulled", True, t + 10, d),
               sample("extinguisher.hose_held", True, t + 15, d), sample("extinguisher.aim_zone", 1, t + 19, d),
               sample("extinguisher.distance_cm", 200, t + 19, d),
               sample("extinguisher.discharging", True, t + 20, d),
               sample("extinguisher.aim_zone", 2, t + 30, d),
               SampleRecord("extinguisher.aim_zone", 1, at(t + 30) + off_target_ms * MS,
                            at(t + 30) + off_target_ms * MS, d),
               sample("extinguisher.fire_out", True, t + 50, d), sample("extinguisher.discharging", False, t + 50, d)]
    initial = {"extinguisher.fire_class": 1, "extinguisher.type_chosen": 0, "extinguisher.pin_pulled": False,
               "extinguisher.hose_held": False, "extinguisher.discharging": False, "extinguisher.fire_out": False,
               "extinguisher.aim_zone": 0, "extinguisher.distance_cm": 400}
    return item("K43", start_s, start_s + 100, records, initial=initial, device=d)


def test_a_total_just_under_the_pass_mark_does_not_pass() -> None:
    """K11 100 x 0.2 + K25 50 x 0.4 + K31 100 x 0.2 + K43 99.99 x 0.2 = 79.998, which is under 80:
    not passed (main rounded it to 80.0 and passed it)."""
    k25 = item("K25", 200, 300, [MarkRecord("K25", "K25-2a", 2, "考评员甲", "", at(299), at(299))])
    sheet = score(LV, attempt(item("K11", 0, 100, []), k25, item("K31", 400, 500, []),
                              extinguisher_item(600, off_target_ms=20)))
    assert [i.score for i in sheet.items] == [100, 50, 100, 99.99]
    assert sheet.complete and not sheet.veto_failed
    assert sheet.total < 80
    assert not sheet.passed


# -- 3. one fault, one charge -------------------------------------------------------------------------

def cpr_records(start_s: float, set_ms: list[int]) -> list[Record]:
    """Assessment, then one 30:2 cycle per entry of `set_ms` (30 compressions released `set_ms`/29 ms
    apart, two good breaths), then a reassessment; stamped on the manikin's clock."""
    d = "A01/manikin"
    out: list[Record] = []
    clock = 100_000
    t = at(start_s)
    state = {"airway_open": False, "head_tilt_deg": 0, "pulse_check": False, "consciousness_check": False}

    def emit(signal: str, value: dict[str, Value], step_ms: int) -> None:
        nonlocal clock, t
        clock += step_ms
        t += step_ms * MS
        out.append(SampleRecord(signal, {**value, "device_ms": clock}, t, t, d))

    def set_state(step_ms: int, **fields: Value) -> None:
        state.update(fields)
        emit("manikin.state", dict(state), step_ms)

    set_state(2000, consciousness_check=True)
    set_state(2000, consciousness_check=False)
    set_state(2000, pulse_check=True)
    set_state(7000, pulse_check=False)
    for span in set_ms:
        step = round(span / 29)
        for k in range(30):
            emit("manikin.compression", {"depth_mm": 55.0, "recoil_ok": True, "hand_zone": "correct",
                                         "duration_ms": 250, "peak_force_n": 400}, 3000 if k == 0 else step)
        set_state(1000, airway_open=True, head_tilt_deg=30)
        for _ in range(2):
            emit("manikin.ventilation", {"volume_ml": 550, "duration_ms": 1200}, 1500)
        set_state(1000, airway_open=False, head_tilt_deg=0)
    set_state(2000, pulse_check=True)
    set_state(7000, pulse_check=False)
    return out


def test_a_set_too_fast_is_charged_once() -> None:
    """Set 1 of 30 takes 14.2 s (K42-5b -5); its mean rate of 127/min is the same fault and is not
    charged again by K42-10a. The other 4 sets take 16.4 s. 100 - 5 = 95 (main gave 94)."""
    spans = [round(14_200 * 29 / 30), *[round(16_400 * 29 / 30)] * 4]
    it = score(LV, attempt(item("K42", 10, 400, cpr_records(10, spans), device="A01/manikin"))).item("K42")
    assert lines(it) == ["K42-5b -5"]
    assert it.score == 95


@pytest.mark.parametrize(("wiring_fault", "code"), [(3, "K21-3e"), (6, "K21-1c")])
def test_a_first_self_check_failed_for_one_wiring_fault_is_one_charge(wiring_fault: int, code: str) -> None:
    """The first self-check fails because the circuit has no self-hold (fault 3) or no PE (fault 6):
    K21-3a "first power-on failed" -20, and the same self-check is not charged again as {code}.
    After rewiring everything is right: 80 (main gave 70)."""
    records = [sample("bench.meter_probe", True, 20), sample("bench.meter_probe", False, 40),
               sample("bench.check_result", 2, 60), sample("bench.check_fault", wiring_fault, 60),
               sample("bench.check_result", 1, 120), sample("bench.check_fault", 0, 120), *trial_run(130)]
    it = score(LV, attempt(item("K21", 10, 300, records, initial=AT_REST))).item("K21")
    assert lines(it) == ["K21-3a -20"], f"{code} charged the same self-check again"
    assert it.score == 80


# -- 4. a partial paper -------------------------------------------------------------------------------

def test_a_paper_without_k2_does_not_pass() -> None:
    sheet = score(LV, attempt(item("K11", 0, 100, []), item("K31", 200, 300, []), item("K41", 400, 500, [])))
    assert sheet.total == 100 and not sheet.complete
    assert not sheet.passed


# -- 5. inputs that silently change a score -----------------------------------------------------------

def good_k21() -> Timeline:
    records = [sample("bench.meter_probe", True, 20), sample("bench.meter_probe", False, 40),
               sample("bench.check_result", 1, 60), *trial_run(70),
               MarkRecord("K21", "K21-1b", 3, "考评员甲", "loose terminals", at(299), at(299))]
    return attempt(item("K21", 10, 300, records, initial=AT_REST))


def test_the_same_records_in_another_order_give_the_same_sheet() -> None:
    timeline = good_k21()
    expected = score(LV, timeline)
    assert score(LV, tuple(reversed(timeline))) == expected
    assert score(LV, timeline[1::2] + timeline[::2]) == expected


def test_an_item_that_ends_before_it_starts_is_refused() -> None:
    records = [LifecycleRecord("attempt_start", at(10), at(10)),
               LifecycleRecord("item_end", at(5), at(5), item="K21", detail="done"),
               LifecycleRecord("item_start", at(10), at(10), item="K21")]
    with pytest.raises(ScoringError, match=r"K21.*item_end.*before.*item_start"):
        score(LV, tuple(records))


def test_an_unknown_end_reason_is_refused() -> None:
    timeline = [r if not (isinstance(r, LifecycleRecord) and r.kind == "item_end")
                else LifecycleRecord("item_end", r.t_mono_ns, r.t_utc_ns, item=r.item, detail="banana")
                for r in good_k21()]
    with pytest.raises(ScoringError, match=r"'banana'.*done, timeout"):
        score(LV, tuple(timeline))


def test_a_nan_sample_is_refused_not_dropped() -> None:
    """A manikin compression whose depth is NaN cannot come from a device (the decoder turns it into
    a device fault): scoring it would silently charge the gap it leaves (80 -> 76 on main)."""
    records = cpr_records(10, [round(16_400 * 29 / 30)] * 5)
    k = next(i for i, r in enumerate(records) if isinstance(r, SampleRecord) and r.signal == "manikin.compression")
    bad = records[k + 40]
    assert isinstance(bad, SampleRecord) and isinstance(bad.value, dict)
    records[k + 40] = SampleRecord(bad.signal, {**bad.value, "depth_mm": math.nan}, bad.t_mono_ns, bad.t_utc_ns,
                                   bad.device)
    with pytest.raises(ScoringError, match=r"manikin.compression.*depth_mm.*nan"):
        score(LV, attempt(item("K42", 10, 400, records, device="A01/manikin")))


def test_a_mark_on_a_code_the_rubric_lacks_is_refused() -> None:
    timeline = (*good_k21(), MarkRecord("K21", "K21-9z", 1, "考评员甲", "", at(299), at(299)))
    with pytest.raises(ScoringError, match=r"K21-9z.*K21-1a"):
        score(LV, tuple(sorted(timeline, key=lambda r: r.t_mono_ns)))


def test_a_string_for_a_boolean_signal_is_refused() -> None:
    """"true" is not True: on main the meter check never 'happened' and K21 went from 90 to 100 or the
    other way; the timeline is refused, naming the record."""
    timeline = tuple(SampleRecord(r.signal, "true", r.t_mono_ns, r.t_utc_ns, r.device)
                     if isinstance(r, SampleRecord) and r.signal == "bench.meter_probe" and r.value is True else r
                     for r in good_k21())
    with pytest.raises(ScoringError, match=r"bench.meter_probe.*'true'.*bool"):
        score(LV, timeline)


# -- 6. a dead device ---------------------------------------------------------------------------------

def test_rows_whose_evidence_falls_in_a_device_gap_are_left_to_the_examiner() -> None:
    """The manikin dies after two good cycles and never comes back; the examiner scores with the gap.
    What the candidate could not show (cycles 3-5, their breaths, the reassessment) is not charged:
    it is listed as unverified for the examiner to decide (main charged it: 73)."""
    records = cpr_records(10, [round(16_400 * 29 / 30)] * 2)
    died_s = records[-1].t_mono_ns / S + 1
    records = [*records, FaultRecord("A01/manikin", False, "no valid frame for 3.0 s", at(died_s), at(died_s)),
               DecisionRecord("K42", "score_with_gap", "manikin cable cut; the examiner saw 5 good cycles",
                              "考评员甲", at(399), at(399))]
    it = score(LV, attempt(item("K42", 10, 400, records, device="A01/manikin"))).item("K42")
    assert lines(it) == []
    unverified = lines(it, "unverified")
    assert unverified and all("K42-8a" in u or "K42-10b" in u for u in unverified), unverified
    assert it.score == 100
    assert it.gaps and it.gaps[0].device == "A01/manikin"


# -- found in review of the fix -------------------------------------------------------------------------

def test_a_second_self_check_failing_for_another_reason_is_another_fault() -> None:
    """Check 1 fails for a missing PE (K21-3a -20, K21-1c the same fault); the candidate adds PE and
    check 2 fails for no self-hold while the verdict stays 不合格: K21-3e -10 is a new fault. 70."""
    records = [sample("bench.meter_probe", True, 20), sample("bench.meter_probe", False, 40),
               sample("bench.check_result", 2, 60), sample("bench.check_fault", 6, 60),
               sample("bench.check_fault", 3, 90),
               sample("bench.check_result", 1, 120), sample("bench.check_fault", 0, 120), *trial_run(130)]
    it = score(LV, attempt(item("K21", 10, 300, records, initial=AT_REST))).item("K21")
    assert sorted(lines(it)) == ["K21-3a -20", "K21-3e -10"] and it.score == 70


def test_the_same_fault_left_unverified_is_not_offered_twice() -> None:
    """The first self-check fails for a missing PE, but the bench sent an unreadable check_result in
    between: K21-3a is unverified, and K21-1c (the same fault) is unverified with it, not charged."""
    records = [sample("bench.meter_probe", True, 20), sample("bench.meter_probe", False, 40),
               sample("bench.check_result", 2, 60), sample("bench.check_fault", 6, 60),
               FaultRecord("A01/bench", True, "decode to nan", at(90), at(90), "bench.check_result", "0x7FC0"),
               sample("bench.check_result", 1, 120), sample("bench.check_fault", 0, 120), *trial_run(130)]
    it = score(LV, attempt(item("K21", 10, 300, records, initial=AT_REST))).item("K21")
    assert lines(it) == [] and sorted(lines(it, "unverified")) == ["K21-1c -10", "K21-3a -20"]
    same = next(d for r in it.rows for d in r.deductions if d.code == "K21-1c")
    assert same.detail.startswith("unverified: the same fault as K21-3a")


def test_a_bad_value_is_a_gap_until_the_signal_is_good_again() -> None:
    """The bench sends an unreadable check_result at 30 s and nothing readable until the 不合格 at
    60 s: a self-check in between may have passed, so "first power-on failed" cannot be judged and
    is left to the examiner (the device layer kept the last good value meanwhile, not the truth)."""
    records = [sample("bench.meter_probe", True, 20), sample("bench.meter_probe", False, 25),
               FaultRecord("A01/bench", True, "decode to 7, above the profile's max 2", at(30), at(30),
                           "bench.check_result", "0x0007"),
               sample("bench.check_result", 2, 60), sample("bench.check_fault", 2, 60),
               sample("bench.check_result", 1, 120), sample("bench.check_fault", 0, 120), *trial_run(130)]
    it = score(LV, attempt(item("K21", 10, 300, records, initial=AT_REST))).item("K21")
    assert lines(it) == [] and lines(it, "unverified") == ["K21-3a -20"]
    assert [(g.signal, g.from_offset_s, g.to_offset_s) for g in it.gaps] == [("bench.check_result", 20.0, 50.0)]


def test_a_pause_and_a_resume_at_one_instant_are_refused() -> None:
    recs: list[Record] = [*trial_run(20), LifecycleRecord("pause", at(50), at(50), "K21", "device A01/bench"),
                          LifecycleRecord("resume", at(100), at(100), "K21", "device A01/bench"),
                          LifecycleRecord("pause", at(100), at(100), "K21", "examiner"),
                          LifecycleRecord("resume", at(500), at(500), "K21", "examiner")]
    with pytest.raises(ScoringError, match="a pause and a resume at the same instant"):
        score(LV, attempt(item("K21", 10, 2000, recs, initial=AT_REST)))


def test_a_deduction_whose_cap_is_used_up_offers_nothing_unverified() -> None:
    """Four short circuits, the first while the bench was down: the other three use up K21-3g's
    max_count of 3, so nothing is left to offer the examiner for the first."""
    recs: list[Record] = [FaultRecord("A01/bench", False, "timeout", at(29), at(29)),
                          sample("bench.short_trip", True, 30), FaultRecord("A01/bench", True, "", at(31), at(31)),
                          sample("bench.short_trip", False, 35)]
    for t in (60, 90, 120):
        recs += [sample("bench.short_trip", True, t), sample("bench.short_trip", False, t + 5)]
    it = score(LV, attempt(item("K21", 10, 300, [*recs, *trial_run(150)], initial=AT_REST))).item("K21")
    assert [x for x in lines(it) if x.startswith("K21-3g")] == ["K21-3g -15"] * 3
    assert [x for x in lines(it, "unverified") if x.startswith("K21-3g")] == []
