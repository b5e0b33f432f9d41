"""Welding traces from a timeline built by hand, against the welding rubric's K21 bands.

Pure: station.weld_report on records as the station stores them. The time outside each band is the
one the band_share detector deducts for, so the report and the score sheet are compared directly.
"""

from __future__ import annotations

from typing import Any

import pytest

from scoring.engine import score
from scoring.rubric import Rubric
from scoring.rubric_loader import rubric_for
from scoring.timeline import LifecycleRecord, Record, SampleRecord
from station.cpr_report import item_views
from station.weld_report import MAX_POINTS, trace, unit_of, weld_item_report

S = 1_000_000_000
T0 = 7_000 * S
UTC = 1_790_000_000 * S
STEADY = {"weldsim.position_offset_mm": 0.0, "weldsim.work_angle_deg": 90.0, "weldsim.travel_angle_deg": 15.0,
          "weldsim.ctwd_mm": 4.0, "weldsim.travel_speed_mm_s": 3.0, "weldsim.arc_on": False, "weld.current_a": 0.0}


@pytest.fixture(scope="module")
def rubric() -> Rubric:
    return rubric_for("熔化焊接与热切割作业")


def sample(signal: str, value: Any, t_s: float) -> SampleRecord:
    t = T0 + int(t_s * S)
    return SampleRecord(signal, value, t, UTC + t, "W01/weldsim")


def weld_timeline(*changes: tuple[float, str, Any], end_s: float = 15.0) -> tuple[Record, ...]:
    """The torch held steady before the item, then `changes` (seconds after the start, signal, value)."""
    end = T0 + int(end_s * S)
    return (LifecycleRecord("attempt_start", T0, UTC + T0), LifecycleRecord("item_start", T0, UTC + T0, "K21"),
            *(sample(name, value, -1.0) for name, value in STEADY.items()),
            *(sample(name, value, t) for t, name, value in changes),
            LifecycleRecord("item_end", end, UTC + end, "K21", "done"), LifecycleRecord("attempt_end", end, UTC + end))


def report(rubric: Rubric, records: tuple[Record, ...]) -> dict[str, Any]:
    [(item, view)] = item_views(rubric, records, "weld")
    return weld_item_report(item, view)


def test_time_outside_each_band_counts_only_while_the_arc_burns(rubric: Rubric) -> None:
    records = weld_timeline((2.0, "weldsim.arc_on", True), (2.0, "weld.current_a", 110.0),
                            (5.0, "weldsim.travel_speed_mm_s", 6.0), (7.0, "weldsim.travel_speed_mm_s", 3.0),
                            (12.0, "weldsim.arc_on", False), (12.0, "weld.current_a", 0.0),
                            (13.0, "weldsim.ctwd_mm", 20.0))  # arc off: a long stick-out does not count
    r = report(rubric, records)
    by = {p["signal"]: p for p in r["parameters"]}
    speed = by["weldsim.travel_speed_mm_s"]
    assert speed["band"] == {"low": 2, "high": 5} and speed["unit"] == "mm/s" and speed["row"] == "K21-6"
    assert speed["gate_windows"] == [[2.0, 12.0]] and speed["gated_s"] == 10.0
    assert speed["outside_s"] == 2.0 and speed["outside"] == [[5.0, 7.0]] and speed["in_band_pct"] == 80.0
    assert (speed["min"], speed["max"]) == (3.0, 6.0)
    assert speed["trace"] == [[0.0, 3.0], [5.0, 6.0], [7.0, 3.0], [15.0, 3.0]]
    assert by["weldsim.ctwd_mm"]["outside_s"] == 0.0 and by["weldsim.ctwd_mm"]["in_band_pct"] == 100.0
    assert r["summary"] == {"arc_s": 10.0, "parameters": 5, "all_in_band": 4, "worst": "weldsim.travel_speed_mm_s"}
    [current] = [g for g in r["signals"] if g["signal"] == "weld.current_a"]
    assert current["unit"] == "A" and current["trace"][1] == [2.0, 110.0]
    # the sheet deducts that same share: K21-6 is worth 10, 20 % of the arc time outside -> 8 left
    sheet = score(rubric, records)
    row = next(r for r in sheet.item("K21").rows if r.code == "K21-6")
    assert row.points == pytest.approx(10 * speed["in_band_pct"] / 100)


def test_no_arc_at_all_is_shown_as_no_arc_time(rubric: Rubric) -> None:
    r = report(rubric, weld_timeline())
    assert all(p["gated_s"] == 0 and p["in_band_pct"] is None and p["gate_windows"] == [] for p in r["parameters"])
    assert r["summary"]["arc_s"] == 0 and r["summary"]["all_in_band"] == 0


def test_a_long_trace_is_thinned_but_keeps_its_spike(rubric: Rubric) -> None:
    wobble = [(2.0 + k * 0.002, "weldsim.work_angle_deg", 90.0 + (k % 7) * 0.1) for k in range(5000)]
    wobble[3333] = (wobble[3333][0], "weldsim.work_angle_deg", 130.0)
    records = weld_timeline((1.0, "weldsim.arc_on", True), *wobble)
    [(_, view)] = item_views(rubric, records, "weld")
    points = trace(view, view.signal("weldsim.work_angle_deg"))
    assert len(points) <= MAX_POINTS + 4 and [2.0 + 3333 * 0.002, 130.0] in [[round(t or 0, 3), v] for t, v in points]
    assert points == sorted(points, key=lambda p: p[0] or 0.0)


@pytest.mark.parametrize(("signal", "unit"), [("weldsim.travel_speed_mm_s", "mm/s"), ("weldsim.work_angle_deg", "°"),
                                              ("weldsim.ctwd_mm", "mm"), ("weld.current_a", "A"),
                                              ("weld.voltage_v", "V"), ("weld.wire_feed_m_min", "m/min"),
                                              ("weldsim.process", "")])
def test_units_come_from_the_signal_name(signal: str, unit: str) -> None:
    assert unit_of(signal) == unit
