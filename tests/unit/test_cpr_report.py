"""The CPR report's figures from a timeline built by hand, graded by the electrician rubric's K42 rows.

Pure: the same functions the report page uses (station.cpr_report.item_views, cpr_item_report) on
records as the station stores them. A second rubric with other numbers shows that every band comes
from the rubric, not from the report's code.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from scoring.detectors.cpr import DepthParams
from scoring.rubric import Rubric
from scoring.rubric_loader import rubric_for
from scoring.timeline import LifecycleRecord, Record, SampleRecord
from station.cpr_report import cpr_item_report, cpr_rules, item_views

S = 1_000_000_000
T0 = 5_000 * S
UTC = 1_790_000_000 * S


@pytest.fixture(scope="module")
def rubric() -> Rubric:
    return rubric_for("低压电工作业")


class Manikin:
    """Compressions and breaths stamped with the manikin's own clock, as the codec reports them."""

    def __init__(self, t_ns: int) -> None:
        self.t = t_ns
        self.device_ms = 90_000.0
        self.records: list[Record] = []

    def wait(self, ms: float) -> None:
        self.t += int(ms * 1e6)
        self.device_ms += ms

    def _sample(self, signal: str, value: dict[str, Any]) -> None:
        self.records.append(SampleRecord(signal, {**value, "device_ms": int(self.device_ms)}, self.t, UTC + self.t,
                                         "A01/manikin"))

    def compressions(self, n: int, rate_per_min: float, depth_mm: Any = lambda k: 55.0, recoil: bool = True,
                     zone: str = "correct") -> None:
        for k in range(n):
            if k:
                self.wait(60_000 / rate_per_min)
            self._sample("manikin.compression", {"depth_mm": depth_mm(k), "recoil_ok": recoil, "hand_zone": zone,
                                                 "duration_ms": 270, "peak_force_n": 0})

    def breath(self, volume_ml: float, duration_ms: float = 1200) -> None:
        self.wait(duration_ms + 800)
        self._sample("manikin.ventilation", {"volume_ml": volume_ml, "duration_ms": duration_ms})


def timeline(m: Manikin, end_ns: int) -> tuple[Record, ...]:
    return (LifecycleRecord("attempt_start", T0, UTC + T0), LifecycleRecord("item_start", T0, UTC + T0, "K42"),
            *m.records, LifecycleRecord("item_end", end_ns, UTC + end_ns, "K42", "done"),
            LifecycleRecord("attempt_end", end_ns, UTC + end_ns))


def two_sets() -> tuple[tuple[Record, ...], Manikin]:
    """Set 1: 30 at 110/min, three of them 45 mm; two breaths (one of 450 ml); set 2: 30 at 140/min
    with the hands too low on the last five."""
    m = Manikin(T0 + 10 * S)
    m.compressions(30, 110, depth_mm=lambda k: 45.0 if k in (3, 4, 5) else 55.0)
    m.breath(550)
    m.breath(450)
    m.wait(2_000)
    m.compressions(30, 140, zone="correct")
    m.records[-5:] = [dataclasses.replace(r, value={**r.value, "hand_zone": "too_low"})
                      for r in m.records[-5:] if isinstance(r, SampleRecord) and isinstance(r.value, dict)]
    return timeline(m, m.t + 5 * S), m


def report(rubric: Rubric, records: tuple[Record, ...]) -> dict[str, Any]:
    [(item, view)] = item_views(rubric, records, "cpr")
    return cpr_item_report(item, view)


def test_the_bands_are_the_rubric_rows(rubric: Rubric) -> None:
    rules = cpr_rules(rubric.item("K42"))
    assert rules.depth_mm is not None and (rules.depth_mm.low, rules.depth_mm.high) == (50, None)
    assert rules.rate_per_min is not None and (rules.rate_per_min.low, rules.rate_per_min.high) == (100, 120)
    assert rules.volume_ml is not None and (rules.volume_ml.low, rules.volume_ml.high) == (500, 600)
    assert rules.set_s is not None and (rules.set_s.low, rules.set_s.high) == (15, 18)
    assert (rules.per_set, rules.breaths_per_cycle, rules.cycles, rules.breaths_expected) == (30, 2, 5, 10)


def test_each_compression_breath_and_set_is_graded(rubric: Rubric) -> None:
    r = report(rubric, two_sets()[0])
    s = r["summary"]
    assert s["compressions"] == 60
    assert s["depth_in_range_pct"] == 95.0  # 57 of 60
    assert [c["n"] for c in r["compressions"] if c["depth_ok"] is False] == [4, 5, 6]
    assert s["rate_in_range_pct"] == pytest.approx(100 * 29 / 58, abs=0.1)  # set 2's 29 intervals at 140/min
    assert s["hand_ok_pct"] == pytest.approx(100 * 55 / 60, abs=0.1) and s["recoil_pct"] == 100.0
    assert [(st["compressions"], st["breaths_after"], st["rate_ok"]) for st in r["sets"]] == [(30, 2, True),
                                                                                          (30, 0, False)]
    assert r["sets"][0]["duration_ok"] is True and r["sets"][1]["duration_ok"] is False  # 12.9 s for 30
    assert [(b["volume_ok"], b["ok"]) for b in r["breaths"]] == [(True, True), (False, False)]
    assert s["breaths"] == 2 and s["breaths_ok"] == 1 and s["breaths_expected"] == 10
    assert s["cycles"] == 1 and s["cycles_required"] == 5
    pause = r["sets"][0]["pause_after_s"]
    assert pause == pytest.approx(2.0 + 2.0 + 2.0, abs=0.01) and s["hands_off_s"] == pause
    assert r["sets"][1]["pause_after_s"] is None
    # times are seconds since the item started: the first compression came 10 s in
    assert r["compressions"][0]["t_s"] == pytest.approx(10.0, abs=0.01)
    assert r["breaths"][0]["after_set"] == 1


def test_a_rubric_with_other_numbers_grades_by_them(rubric: Rubric) -> None:
    """A province's rubric asking 45-58 mm: the 45 mm compressions are in range, the band has a top."""
    item = rubric.item("K42")
    rows = []
    for row in item.rows:
        deductions = tuple(dataclasses.replace(d, detector=dataclasses.replace(d.detector, params=DepthParams(45, 58)))
                           if d.detector and d.detector.name == "cpr_depth" else d for d in row.deductions)
        rows.append(dataclasses.replace(row, deductions=deductions))
    province = dataclasses.replace(rubric, items=tuple(dataclasses.replace(i, rows=tuple(rows)) if i.code == "K42"
                                                       else i for i in rubric.items))
    r = report(province, two_sets()[0])
    assert r["bands"]["depth_mm"] == {"low": 45, "high": 58, "deduction": "K42-5c"}
    assert r["summary"]["depth_in_range_pct"] == 100.0


def test_an_item_without_manikin_events_is_an_empty_report(rubric: Rubric) -> None:
    r = report(rubric, timeline(Manikin(T0), T0 + 30 * S))
    assert r["compressions"] == r["breaths"] == r["sets"] == []
    s = r["summary"]
    assert s["compressions"] == 0 and s["depth_in_range_pct"] is None and s["mean_rate_per_min"] is None
    assert s["hands_off_s"] == 0.0 and s["cycles"] == 0


def test_a_running_item_reports_what_was_stored(rubric: Rubric) -> None:
    records, m = two_sets()
    running = tuple(r for r in records if not (isinstance(r, LifecycleRecord) and r.kind.endswith("_end")))
    r = report(rubric, running)
    assert r["end_reason"] == "running" and r["summary"]["compressions"] == 60
    assert r["duration_s"] == pytest.approx((m.t - T0) / S, abs=0.1)


def test_a_compression_before_the_item_is_not_the_candidates(rubric: Rubric) -> None:
    """The manikin's last report before the start is the value it held, not an event of this item."""
    before = Manikin(T0 - 3 * S)
    before.compressions(1, 110)
    records, _ = two_sets()
    r = report(rubric, (*before.records, *records))
    assert r["summary"]["compressions"] == 60
