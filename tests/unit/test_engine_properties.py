"""Properties of score(): deterministic, bounded, monotone in faults, and replayable from JSON.

Timelines are generated over the real K21 and K42 rubric items with random bench signals, manikin
events, pauses and examiner marks, so the properties hold for the shipped rubric, not a toy.
"""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scoring.canonical import canonical_json
from scoring.engine import score
from scoring.rubric_loader import rubric_for
from scoring.timeline import (
    LifecycleRecord,
    MarkRecord,
    Record,
    SampleRecord,
    Timeline,
    ordered,
    record_from_dict,
    record_to_dict,
)

RUBRIC = rubric_for("低压电工作业")
S = 1_000_000_000
END_S = 1500

BENCH_SIGNALS = {
    "bench.main_switch": st.booleans(), "bench.meter_probe": st.booleans(), "bench.sb1_stop": st.booleans(),
    "bench.sb2_start": st.booleans(), "bench.sb3_jog": st.booleans(), "bench.km1": st.booleans(),
    "bench.short_trip": st.booleans(), "bench.rcd_trip": st.booleans(), "bench.fr_trip": st.booleans(),
    "bench.check_result": st.integers(0, 2), "bench.check_fault": st.integers(0, 6),
    "bench.motor_dir": st.integers(0, 2),
}
MANUAL = [d.code for r in RUBRIC.item("K21").rows for d in r.deductions if d.detector is None]

times = st.integers(0, END_S * S)


@st.composite
def bench_samples(draw: st.DrawFn) -> list[Record]:
    out: list[Record] = []
    for signal, values in BENCH_SIGNALS.items():
        for t in draw(st.lists(times, max_size=6)):
            out.append(SampleRecord(signal, draw(values), t, t))
    return out


@st.composite
def compressions(draw: st.DrawFn) -> list[Record]:
    out: list[Record] = []
    t_ms = 0
    for _ in range(draw(st.integers(0, 80))):
        t_ms += draw(st.integers(300, 3000))
        value = {"depth_mm": draw(st.floats(20, 80)), "recoil_ok": draw(st.booleans()),
                 "hand_zone": draw(st.sampled_from(["correct", "too_low", "left"])), "duration_ms": 250,
                 "peak_force_n": 0, "device_ms": t_ms}
        out.append(SampleRecord("manikin.compression", value, t_ms * 1_000_000, t_ms * 1_000_000))
        if draw(st.integers(0, 9)) == 0:
            t_ms += 1500
            breath = {"volume_ml": draw(st.integers(200, 900)), "duration_ms": draw(st.integers(500, 2000)),
                      "device_ms": t_ms}
            out.append(SampleRecord("manikin.ventilation", breath, t_ms * 1_000_000, t_ms * 1_000_000))
    return out


def attempt(item: str, records: list[Record], end_s: int = END_S, pause: tuple[int, int] | None = None) -> Timeline:
    base: list[Record] = [LifecycleRecord("attempt_start", 0, 0), LifecycleRecord("item_start", 0, 0, item=item)]
    if pause:
        base += [LifecycleRecord("pause", pause[0], pause[0], item=item),
                 LifecycleRecord("resume", pause[1], pause[1], item=item)]
    base.append(LifecycleRecord("item_end", end_s * S, end_s * S, item=item, detail="done"))
    return ordered(base + records)


marks = st.lists(st.tuples(st.sampled_from(MANUAL), st.integers(1, 3)), max_size=4)
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def with_marks(records: list[Record], chosen: list[tuple[str, int]], item: str = "K21") -> list[Record]:
    return records + [MarkRecord(item, code, n, "考评员甲", "", (END_S - 1) * S, 0) for code, n in chosen]


@SETTINGS
@given(bench_samples(), marks)
def test_deterministic_and_bounded(samples: list[Record], chosen: list[tuple[str, int]]) -> None:
    timeline = attempt("K21", with_marks(samples, chosen))
    first, second = score(RUBRIC, timeline), score(RUBRIC, timeline)
    assert canonical_json(first.to_dict()) == canonical_json(second.to_dict())
    item = first.item("K21")
    assert 0 <= item.score <= 100
    for row in item.rows:
        assert 0 <= row.points <= row.max_points
    assert item.score == (0 if item.outcome == "veto" else round(sum(r.points for r in item.rows), 2))


@SETTINGS
@given(bench_samples(), marks, st.integers(1, END_S - 2), st.sampled_from(MANUAL))
def test_adding_a_fault_never_raises_the_score(samples: list[Record], chosen: list[tuple[str, int]],
                                               at_s: int, extra_mark: str) -> None:
    before = score(RUBRIC, attempt("K21", with_marks(samples, chosen))).item("K21").score
    # one more short circuit: the breaker trips and is reset a second later
    trip: list[Record] = [SampleRecord("bench.short_trip", True, at_s * S, 0),
                          SampleRecord("bench.short_trip", False, (at_s + 1) * S, 0)]
    worse_trip = score(RUBRIC, attempt("K21", with_marks(samples + trip, chosen))).item("K21").score
    worse_mark = score(RUBRIC, attempt("K21", with_marks(samples, [*chosen, (extra_mark, 1)]))).item("K21").score
    assert worse_trip <= before
    assert worse_mark <= before


@SETTINGS
@given(bench_samples(), marks,
       st.one_of(st.none(), st.tuples(st.integers(0, 700), st.integers(0, 700)).filter(lambda p: p[0] != p[1])))
def test_replay_from_stored_json_is_identical(samples: list[Record], chosen: list[tuple[str, int]],
                                              pause: tuple[int, int] | None) -> None:
    window = (min(pause) * S, max(pause) * S) if pause else None
    timeline = attempt("K21", with_marks(samples, chosen), pause=window)
    stored = json.dumps([record_to_dict(r) for r in timeline], ensure_ascii=False, sort_keys=True)
    replayed = tuple(record_from_dict(d) for d in json.loads(stored))
    assert replayed == timeline
    assert canonical_json(score(RUBRIC, replayed).to_dict()) == canonical_json(score(RUBRIC, timeline).to_dict())


@SETTINGS
@given(compressions())
def test_cpr_item_is_bounded_and_deterministic(events: list[Record]) -> None:
    end_s = max([600, *(r.t_mono_ns // S + 1 for r in events)])
    timeline = attempt("K42", events, end_s=end_s)
    sheet = score(RUBRIC, timeline)
    item = sheet.item("K42")
    assert 0 <= item.score <= 100 and item.report is not None
    assert canonical_json(sheet.to_dict()) == canonical_json(score(RUBRIC, timeline).to_dict())
