"""CPR detectors and the QCPR report over hand-built manikin sessions (STANDARD.md, CPR rows).

Sessions are built the way the manikin reports them: one event per compression and per breath,
stamped with the manikin's own clock, arriving with jittery latency; the detectors must judge by
the device clock. Property tests hold the detectors to never raising and to sane counts.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from scoring.detectors.base import REGISTRY, Finding, ItemView, Series
from scoring.detectors.cpr import COMPRESSION, STATE, VENTILATION, segment
from scoring.engine import score
from scoring.reports.cpr import cpr_report
from scoring.rubric import Deduction, DetectorRef, Item, Row, Rubric, Subject
from scoring.timeline import LifecycleRecord, Record, SampleRecord, Scalar, Value

T0_NS = 5_000_000_000
ZONES = ("correct", "too_high", "too_low", "left", "right")
CPR_DETECTORS = ("cpr_depth", "cpr_recoil", "cpr_hand_position", "cpr_set_duration", "cpr_rate", "cpr_rhythm",
                 "cpr_breaths", "cpr_cycles", "cpr_pulse_check")


@dataclass
class Manikin:
    """Builds what the manikin would send: (signal, device_ms, value) in order."""

    device_ms: int = 100_000
    events: list[tuple[str, int, dict[str, Scalar]]] = field(default_factory=list)
    initial_state: dict[str, Scalar] | None = None

    def compressions(self, n: int = 30, rate: float = 110, depth: float | Iterable[float] = 55.0,
                     recoil: Iterable[bool] | None = None, zones: Iterable[str] | None = None,
                     intervals_ms: Iterable[int] | None = None) -> Manikin:
        depths = iter([depth] * n if isinstance(depth, float | int) else depth)
        recoils = iter(recoil or [True] * n)
        hands = iter(zones or ["correct"] * n)
        steps = iter(intervals_ms or [round((i + 1) * 60_000 / rate) - round(i * 60_000 / rate) for i in range(n)])
        for _ in range(n):
            self.events.append((COMPRESSION, self.device_ms, {
                "depth_mm": float(next(depths)), "recoil_ok": next(recoils), "hand_zone": next(hands),
                "duration_ms": 280, "peak_force_n": 400, "device_ms": self.device_ms}))
            self.device_ms += next(steps)
        return self

    def breaths(self, volumes: Iterable[int] = (550, 550), durations: Iterable[int] | None = None) -> Manikin:
        vols = list(volumes)
        for v, d in zip(vols, durations or [1200] * len(vols), strict=True):
            self.device_ms += 1500
            self.events.append((VENTILATION, self.device_ms, {"volume_ml": v, "duration_ms": d,
                                                              "device_ms": self.device_ms}))
        self.device_ms += 1500
        return self

    def state(self, after_ms: int = 1000, **fields: Scalar) -> Manikin:
        self.device_ms += after_ms
        base = {"airway_open": False, "head_tilt_deg": 0, "pulse_check": False, "consciousness_check": False}
        last = next((v for s, _, v in reversed(self.events) if s == STATE), base)
        self.events.append((STATE, self.device_ms, {**last, **fields, "device_ms": self.device_ms}))
        return self

    def samples(self) -> list[SampleRecord]:
        """Arrival = device time + 5..305 ms of jitter: rates from arrival times would be wrong."""
        origin = self.events[0][1] if self.events else 0
        return [SampleRecord(s, v, T0_NS + (d - origin) % 2**32 * 1_000_000 + (i * 7919 % 300 + 5) * 1_000_000, 0)
                for i, (s, d, v) in enumerate(self.events)]

    def view(self) -> ItemView:
        return view_of([(r.signal, r.t_mono_ns, r.value) for r in self.samples()], self.initial_state)


def view_of(samples: Iterable[tuple[str, int, Value]], initial_state: Value | None = None) -> ItemView:
    grouped: dict[str, list[tuple[int, Value]]] = {}
    for signal, t, value in samples:
        grouped.setdefault(signal, []).append((t, value))
    series = {k: Series(tuple(t for t, _ in v), tuple(x for _, x in v)) for k, v in grouped.items()}
    if initial_state is not None:
        old = series.get(STATE, Series((), ()))
        series[STATE] = Series(old.times, old.values, initial_state)
    end = max((t for _, t, _ in grouped_items(grouped)), default=T0_NS) + 1_000_000_000
    return ItemView("K42", T0_NS - 1_000_000_000, end, 600, end - T0_NS, series, (), (), "done")


def grouped_items(grouped: dict[str, list[tuple[int, Value]]]) -> Iterable[tuple[str, int, Value]]:
    return ((k, t, v) for k, vs in grouped.items() for t, v in vs)


def assessed(m: Manikin) -> Manikin:
    """Shoulders tapped, airway opened, a 7 s pulse check: the assessment rows are clean."""
    return (m.state(consciousness_check=True).state(consciousness_check=False)
            .state(airway_open=True, head_tilt_deg=30).state(pulse_check=True).state(7000, pulse_check=False))


def perfect(cycles: int = 5, **compression_kw: object) -> Manikin:
    m = assessed(Manikin())
    for _ in range(cycles):
        m.compressions(**compression_kw).breaths()  # type: ignore[arg-type]
    return m


def run(name: str, view: ItemView, **params: object) -> tuple[Finding, ...]:
    spec = REGISTRY[name]
    return spec.detect(TypeAdapter(spec.params_type).validate_python(params), view)


def counts(view: ItemView) -> dict[str, int]:
    return {name: len(run(name, view)) for name in CPR_DETECTORS}


NONE = dict.fromkeys(CPR_DETECTORS, 0)


@pytest.mark.parametrize(("session", "expected"), [
    pytest.param(perfect(), NONE, id="perfect-5-cycles"),
    pytest.param(perfect(depth=45.0), {**NONE, "cpr_depth": 150}, id="shallow-45mm"),
    pytest.param(perfect(rate=140), {**NONE, "cpr_rate": 5, "cpr_set_duration": 5}, id="fast-140"),
    pytest.param(perfect(rate=90), {**NONE, "cpr_rate": 5, "cpr_set_duration": 5}, id="slow-90"),
    pytest.param(perfect(rate=102), NONE, id="slow-but-in-band-102"),
    pytest.param(perfect(intervals_ms=[400, 700] * 15), {**NONE, "cpr_rhythm": 5}, id="uneven-rhythm"),
    pytest.param(perfect(recoil=[False] * 4 + [True] * 26), {**NONE, "cpr_recoil": 20}, id="poor-recoil"),
    pytest.param(perfect(zones=["too_low"] * 2 + ["correct"] * 28), {**NONE, "cpr_hand_position": 10},
                 id="hands-low"),
    pytest.param(perfect(3), {**NONE, "cpr_cycles": 2, "cpr_breaths": 4}, id="3-cycles"),
    pytest.param(assessed(Manikin()).compressions(29).breaths().compressions(30).breaths([550])
                 .compressions(31).breaths(), {**NONE, "cpr_cycles": 4, "cpr_breaths": 5}, id="short-set-one-breath"),
])
def test_detector_table(session: Manikin, expected: dict[str, int]) -> None:
    assert counts(session.view()) == expected


def test_shallow_finding_names_compression_set_and_depth() -> None:
    m = assessed(Manikin()).compressions().breaths().compressions(depth=[55.0] * 11 + [43.5] + [55.0] * 18)
    (f,) = run("cpr_depth", m.view())
    assert f.detail == "compression 12 of set 2: 43.5 mm < 50 mm"
    assert f.t_from_ns == f.t_to_ns == m.samples()[5 + 30 + 2 + 11].t_mono_ns


def test_depth_band_from_the_rubric() -> None:
    view = perfect(1, depth=[55.0] * 28 + [65.0, 48.0]).view()
    assert len(run("cpr_depth", view)) == 1
    assert [f.detail.split(": ")[1] for f in run("cpr_depth", view, min_mm=45, max_mm=60)] == ["65.0 mm > 60 mm"]


def test_set_duration_is_thirty_periods_of_device_time() -> None:
    (s,) = segment(perfect(1).view()).sets
    assert s.duration_s(30) == pytest.approx(16.36, abs=0.01)
    fast = run("cpr_set_duration", perfect(1, rate=140).view())
    assert [f.detail for f in fast] == ["set 1: 30 compressions took 12.9 s, expected 15-18 s"]


def test_sets_split_on_a_pause_and_on_a_breath() -> None:
    m = Manikin().compressions(10, intervals_ms=[500] * 9 + [2500]).compressions(10).breaths([550])
    m.compressions(5, intervals_ms=[500, 500, 500, 1999, 500])
    sizes = [len(s.compressions) for s in segment(m.view()).sets]
    assert sizes == [10, 10, 5]
    assert [len(s.compressions) for s in segment(m.view(), gap_s=3.0).sets] == [20, 5]


def test_device_clock_wrap_does_not_split_a_set() -> None:
    m = perfect(1)  # compressions from device 111 000 to 126 818 ms: wrap the clock at 118 000
    shifted = [(s, (d + 2**32 - 118_000) % 2**32, v) for s, d, v in m.events]
    m.events = [(s, d, {**v, "device_ms": d}) for s, d, v in shifted]
    assert [len(s.compressions) for s in segment(m.view()).sets] == [30]
    assert counts(m.view()) == {**NONE, "cpr_breaths": 8, "cpr_cycles": 4}


def test_failed_breaths() -> None:
    m = perfect(4).compressions().breaths([450, 700])
    m.compressions().breaths([550, 550], [1200, 1000])
    assert [f.detail for f in run("cpr_breaths", m.view())] == [
        "breath 9: 450 ml, expected 500-600 ml", "breath 10: 700 ml, expected 500-600 ml",
        "breath 12: 1000 ms, expected over 1000 ms"]
    assert len(run("cpr_cycles", m.view())) == 0


@pytest.mark.parametrize(("checks_s", "expected"), [
    ([7], []), ([3], ["pulse check lasted 3.0 s, expected 5-10 s"]),
    ([12], ["pulse check lasted 12.0 s, expected 5-10 s"]),
    ([], ["no carotid pulse check"]), ([3, 6], ["pulse check lasted 3.0 s, expected 5-10 s"]),
])
def test_pulse_check(checks_s: list[int], expected: list[str]) -> None:
    m = Manikin().state(airway_open=True)
    for s in checks_s:
        m.state(pulse_check=True).state(s * 1000, pulse_check=False).state(head_tilt_deg=10)
    assert [f.detail for f in run("cpr_pulse_check", m.compressions().view())] == expected


def test_a_pulse_check_running_when_the_item_starts_is_not_this_candidates() -> None:
    """A hand left on the carotid from before the item is the rig's state, not a check; lifting it
    and checking again is (timed on the device clock)."""
    m = Manikin(device_ms=53_000).state(pulse_check=False)
    m.initial_state = {"pulse_check": True, "airway_open": False, "consciousness_check": False, "device_ms": 50_000}
    assert [f.detail for f in run("cpr_pulse_check", m.view())] == ["no carotid pulse check"]
    m.state(pulse_check=True).state(4000, pulse_check=False)
    assert [f.detail for f in run("cpr_pulse_check", m.view())] == ["pulse check lasted 4.0 s, expected 5-10 s"]


def test_state_missing() -> None:
    view = Manikin().state(airway_open=True).state(airway_open=False).view()
    assert run("cpr_state_missing", view, field="airway_open") == ()
    assert [f.detail for f in run("cpr_state_missing", view, field="consciousness_check")] == [
        "manikin.state consciousness_check never true"]
    m = Manikin().state(airway_open=False)
    m.initial_state = {"consciousness_check": True}  # the previous candidate's, still on: not this one's
    assert len(run("cpr_state_missing", m.view(), field="consciousness_check")) == 1
    m.state(consciousness_check=False).state(consciousness_check=True)
    assert run("cpr_state_missing", m.view(), field="consciousness_check") == ()


@pytest.mark.parametrize(("name", "params"), [
    ("cpr_rate", {"min_per_min": 130}), ("cpr_set_duration", {"per_set": 0}), ("cpr_cycles", {"gap_s": 0}),
    ("cpr_depth", {"min_mm": 50, "max_mm": 40}), ("cpr_breaths", {"expected": -1}), ("cpr_state_missing", {}),
])
def test_bad_params_fail_when_the_rubric_loads(name: str, params: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        TypeAdapter(REGISTRY[name].params_type).validate_python(params)


def test_report_perfect_session() -> None:
    report = cpr_report(perfect().view())
    json.dumps(report, allow_nan=False)
    s = report["summary"]
    assert s == {"compressions": 150, "depth_ok_pct": 100.0, "recoil_ok_pct": 100.0, "hand_ok_pct": 100.0,
                 "rate_ok_pct": 100.0, "mean_depth_mm": 55.0, "mean_rate_per_min": 110.0, "cycles": 5,
                 "breaths_ok": 10, "breaths": 10}
    first, second = report["compressions"][:2]
    assert first == {"n": 1, "set": 1, "t_s": 0.0, "depth_mm": 55.0, "rate_per_min": None, "recoil_ok": True,
                     "hand_zone": "correct", "depth_ok": True, "rate_ok": None}
    assert second["rate_per_min"] == 110.1 and second["t_s"] == 0.5 and second["rate_ok"] is True
    assert report["sets"][0] == {"n": 1, "compressions": 30, "duration_s": 16.4, "mean_rate_per_min": 110.0,
                                 "mean_depth_mm": 55.0, "cv": 0.001}
    assert [b["cycle"] for b in report["breaths"]] == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert report["guideline"] == {"depth_mm": [50, 60], "rate_per_min": [100, 120], "volume_ml": [500, 600],
                                   "set_s": [15, 18]}


def test_report_of_an_empty_item() -> None:
    report = cpr_report(Manikin().view())
    assert report["compressions"] == report["breaths"] == report["sets"] == []
    assert report["summary"]["depth_ok_pct"] is None and report["summary"]["cycles"] == 0


def test_engine_deducts_and_caps_with_the_report_attached() -> None:
    def ded(code: str, points: float, name: str, params: object, max_count: int | None = None) -> Deduction:
        p = TypeAdapter(REGISTRY[name].params_type).validate_python(params)
        return Deduction(code, code, points, max_count, "provincial-sheet", DetectorRef(name, p, "provincial-sheet"))

    rows = (Row("K42-1", "胸外按压", 30, "provincial-sheet", (
        ded("depth", 2, "cpr_depth", {}, max_count=15), ded("set", 5, "cpr_set_duration", {}, max_count=1),
        ded("rhythm", 5, "cpr_rhythm", {}, max_count=1), ded("recoil", 2, "cpr_recoil", {}))),
        Row("K42-2", "人工呼吸", 20, "provincial-sheet", (ded("breath", 2, "cpr_breaths", {}),)),
        Row("K42-3", "颈动脉", 6, "provincial-sheet", (ded("pulse", 2, "cpr_pulse_check", {}),)),
        Row("K42-4", "其余", 44, "provincial-sheet", ()))
    item = Item("K42", "K4", "单人徒手心肺复苏", 600, "provincial-sheet", False, rows, (), "cpr")
    rubric = Rubric("test", "1", "op", "t", 80, "provincial-sheet", (Subject("K4", "K4", 1.0, "provincial-sheet"),),
                    (item,), "sha256:test")
    samples = perfect(3, depth=[45.0] + [55.0] * 29, rate=140).samples()
    timeline: list[Record] = [LifecycleRecord("attempt_start", T0_NS - 2_000_000_000, 0),
                              LifecycleRecord("item_start", T0_NS - 1_000_000_000, 0, "K42")]
    timeline += [*samples, LifecycleRecord("item_end", samples[-1].t_mono_ns + 1, 0, "K42", "done")]
    sheet = score(rubric, tuple(timeline))
    (it,) = sheet.items
    lines = {line.code: (line.points, line.count) for row in it.rows for line in row.deductions}
    assert lines == {"depth": (2.0, 1), "set": (5.0, 1), "breath": (2.0, 1)}  # 3 lines each for depth / breath
    assert sum(x.points for row in it.rows for x in row.deductions) == 3 * 2 + 5 + 4 * 2
    assert it.score == 100 - 19
    assert it.report is not None and it.report["summary"]["cycles"] == 3


# --- properties ---------------------------------------------------------------------------------

good_compression = st.fixed_dictionaries({
    "depth_mm": st.floats(0, 90, allow_nan=False), "recoil_ok": st.booleans(), "hand_zone": st.sampled_from(ZONES),
    "duration_ms": st.integers(0, 900), "peak_force_n": st.integers(0, 900)})
good_breath = st.fixed_dictionaries({"volume_ml": st.integers(0, 1500), "duration_ms": st.integers(0, 3000)})
good_state = st.fixed_dictionaries({"pulse_check": st.booleans(), "airway_open": st.booleans(),
                                    "consciousness_check": st.booleans(), "head_tilt_deg": st.integers(0, 60)})
junk_scalar = st.one_of(st.booleans(), st.integers(), st.floats(), st.text(max_size=3))
FIELDS = ("depth_mm", "recoil_ok", "hand_zone", "volume_ml", "duration_ms", "device_ms", "pulse_check")
junk = st.one_of(junk_scalar, st.dictionaries(st.sampled_from(FIELDS), junk_scalar))
event = st.one_of(st.tuples(st.just(COMPRESSION), good_compression), st.tuples(st.just(VENTILATION), good_breath),
                  st.tuples(st.just(STATE), good_state))
steps = st.one_of(st.integers(0, 3000), st.integers(-(2**32), 2**32))  # mostly plausible; resets and wraps too


def build(events: list[tuple[tuple[str, dict[str, Scalar]], int]], start_ms: int) -> list[tuple[str, int, Value]]:
    out: list[tuple[str, int, Value]] = []
    device = start_ms
    for i, ((signal, value), step) in enumerate(events):
        device = (device + step) % 2**32
        out.append((signal, T0_NS + i * 400_000_000, {**value, "device_ms": device}))
    return out


session_events = st.lists(st.tuples(event, steps), max_size=80)


junk_events = st.lists(st.tuples(st.sampled_from([COMPRESSION, VENTILATION, STATE]), junk), max_size=6)
mutations = st.lists(st.tuples(st.integers(0, 80), st.sampled_from(FIELDS), junk_scalar), max_size=6)


def mutate(samples: list[tuple[str, int, Value]], changes: list[tuple[int, str, Scalar]]) -> None:
    """A well-formed sample with one field gone wrong: NaN depth, a text clock, 1e300 ml..."""
    for i, key, bad in changes:
        if i < len(samples) and isinstance(value := samples[i][2], dict):
            samples[i] = (samples[i][0], samples[i][1], {**value, key: bad})


@settings(max_examples=80, deadline=None)
@given(session_events, st.integers(0, 2**32 - 1), junk_events, mutations)
def test_detectors_never_raise_and_counts_are_bounded(events: list[tuple[tuple[str, dict[str, Scalar]], int]],
                                                       start_ms: int, odd: list[tuple[str, Value]],
                                                       changes: list[tuple[int, str, Scalar]]) -> None:
    samples = build(events, start_ms)
    mutate(samples, changes)
    samples += [(s, T0_NS + i * 123_456_789, v) for i, (s, v) in enumerate(odd)]
    view = view_of(sorted(samples, key=lambda x: x[1]))
    n_comp = sum(s == COMPRESSION for s, _, _ in samples)
    n_breath = sum(s == VENTILATION for s, _, _ in samples)
    n_state = sum(s == STATE for s, _, _ in samples)
    found = counts(view)
    for name in ("cpr_depth", "cpr_recoil", "cpr_hand_position", "cpr_set_duration", "cpr_rate", "cpr_rhythm"):
        assert found[name] <= n_comp, name
    assert found["cpr_breaths"] <= n_breath + 10
    assert found["cpr_cycles"] <= 5
    assert found["cpr_pulse_check"] <= n_state + 1
    assert len(run("cpr_state_missing", view, field="airway_open")) <= 1
    json.dumps(cpr_report(view), allow_nan=False)


@settings(max_examples=60, deadline=None)
@given(session_events, st.integers(0, 2**32 - 1), st.integers(0, 80), st.floats(0, 49.9))
def test_one_more_shallow_compression_never_reduces_depth_findings(
        events: list[tuple[tuple[str, dict[str, Scalar]], int]], start_ms: int, at: int, depth: float) -> None:
    value: dict[str, Scalar] = {"depth_mm": depth, "recoil_ok": True, "hand_zone": "correct", "duration_ms": 300}
    shallow = (COMPRESSION, value)
    at = min(at, len(events))
    before = len(run("cpr_depth", view_of(build(events, start_ms))))
    after = len(run("cpr_depth", view_of(build([*events[:at], (shallow, 0), *events[at:]], start_ms))))
    assert after == before + 1
