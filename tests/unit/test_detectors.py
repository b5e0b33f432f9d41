"""Table tests for the generic detectors: each case is a tiny item timeline and the findings it
must give (CPR detectors have their own tables in test_cpr.py)."""

from __future__ import annotations

from typing import Any

import pytest

from scoring.detectors.bands import BandParams, band_share
from scoring.detectors.base import Condition, ItemView, Series
from scoring.detectors.equipment import AgentParams, PpeParams, ppe_missing, wrong_agent
from scoring.detectors.events import (
    BeforeParams,
    DurationParams,
    OvertimeParams,
    SignalParams,
    WhenParams,
    before,
    duration_outside,
    never_reached,
    no_increase,
    overtime,
    reached,
)

S = 1_000_000_000


def view(series: dict[str, list[tuple[float, Any]]], initial: dict[str, Any] | None = None, end_s: float = 100,
         limit_s: int = 60, active_s: float | None = None) -> ItemView:
    init = initial or {}
    built = {name: Series(tuple(int(t * S) for t, _ in pts), tuple(v for _, v in pts), init.get(name))
             for name, pts in series.items()}
    for name, v in init.items():
        built.setdefault(name, Series((), (), v))
    return ItemView("K21", 0, int(end_s * S), limit_s, int((end_s if active_s is None else active_s) * S), built,
                    (), (), "done")


TRIP = WhenParams(Condition("bench.short_trip", True))


@pytest.mark.parametrize(("points", "initial", "count"), [
    ([], None, 0),
    ([(10, True), (11, False), (20, True), (21, False)], None, 2),
    ([(10, True)], None, 1),  # still tripped at the end: one trip
    ([(5, False), (30, True)], {"bench.short_trip": True}, 1),  # latched by the previous candidate: not counted
])
def test_reached_counts_transitions_during_the_item(points: list[tuple[float, Any]], initial: dict[str, Any] | None,
                                                   count: int) -> None:
    assert len(reached(TRIP, view({"bench.short_trip": points}, initial))) == count


def test_never_reached_and_conditions_with_fields_and_ops() -> None:
    motor = WhenParams(Condition("bench.motor_dir", 1))
    assert len(never_reached(motor, view({"bench.motor_dir": [(5, 2)]}))) == 1
    assert never_reached(motor, view({"bench.motor_dir": [(5, 1)]})) == ()
    pulse = WhenParams(Condition("manikin.state", True, field="pulse_check"))
    assert never_reached(pulse, view({"manikin.state": [(3, {"pulse_check": True})]})) == ()
    above = WhenParams(Condition("bench.current_l1_a", 1.0, op="gt"))
    assert len(never_reached(above, view({"bench.current_l1_a": [(1, 0.5), (2, 1.0)]}))) == 1
    member = WhenParams(Condition("extinguisher.type_chosen", (1, 2), op="in"))
    assert never_reached(member, view({"extinguisher.type_chosen": [(1, 2)]})) == ()


@pytest.mark.parametrize(("probe", "switch", "findings"), [
    ([(5, True)], [(10, True)], 0),  # meter check first: fine
    ([(12, True)], [(10, True)], 1),  # checked only after power-on
    ([], [(10, True)], 1),  # never checked
    ([(12, True)], [], 0),  # never powered on: nothing to judge
])
def test_before(probe: list[tuple[float, Any]], switch: list[tuple[float, Any]], findings: int) -> None:
    p = BeforeParams(Condition("bench.meter_probe", True), Condition("bench.main_switch", True))
    assert len(before(p, view({"bench.meter_probe": probe, "bench.main_switch": switch}))) == findings


@pytest.mark.parametrize(("points", "findings"), [
    ([(10, True), (17, False)], 0),
    ([(10, True), (13, False)], 1),  # 3 s: too short
    ([(10, True), (12, False), (20, True), (32, False)], 2),  # 2 s and 12 s
    ([], 1),  # never checked
])
def test_duration_outside(points: list[tuple[float, Any]], findings: int) -> None:
    p = DurationParams(Condition("manikin.state", True, field="pulse_check"), 5, 10)
    states = {"manikin.state": [(t, {"pulse_check": v}) for t, v in points]}
    assert len(duration_outside(p, view(states))) == findings


@pytest.mark.parametrize(("active_s", "count"), [(60, 0), (61, 1), (360, 1), (361, 2)])
def test_overtime_counts_started_periods(active_s: float, count: int) -> None:
    found = overtime(OvertimeParams(per_s=300), view({}, end_s=400, limit_s=60, active_s=active_s))
    assert sum(f.count for f in found) == count


@pytest.mark.parametrize(("points", "gate", "share"), [
    ([(0, 3.0)], [(0, True)], None),  # always inside
    ([(0, 6.0)], [(0, True)], 1.0),  # always outside
    ([(0, 3.0), (50, 6.0)], [(0, True)], 0.5),  # half the time
    ([(0, 6.0), (50, 3.0)], [(0, False), (50, True)], None),  # outside only while the arc was off
    ([(0, 3.0), (25, 6.0), (50, 3.0)], [(0, True), (50, False)], 0.5),  # 25 of 50 gated seconds
])
def test_band_share(points: list[tuple[float, Any]], gate: list[tuple[float, Any]], share: float | None) -> None:
    p = BandParams("weldsim.travel_speed_mm_s", 2.0, 5.0, Condition("weldsim.arc_on", True))
    found = band_share(p, view({"weldsim.travel_speed_mm_s": points, "weldsim.arc_on": gate}))
    if share is None:
        assert found == ()
    else:
        assert len(found) == 1 and found[0].share is not None and float(found[0].share) == pytest.approx(share)


def test_band_share_without_any_gated_time_deducts_everything() -> None:
    p = BandParams("weldsim.ctwd_mm", 2, 6, Condition("weldsim.arc_on", True))
    found = band_share(p, view({"weldsim.ctwd_mm": [(0, 4.0)], "weldsim.arc_on": [(0, False)]}))
    assert found[0].share == 1 and "never measured" in found[0].detail


def test_ppe_missing_and_wrong_items() -> None:
    p = PpeParams(required=("welding_mask", "welding_gloves", "spats"), wrong=("sunglasses",))
    slots = {"cabinet.slot.welding_mask": [(5, False)], "cabinet.slot.welding_gloves": [(6, False)],
             "cabinet.slot.spats": [], "cabinet.slot.sunglasses": [(7, False)]}
    found = ppe_missing(p, view(slots, {f"cabinet.slot.{k}": True for k in ("spats", "sunglasses")}))
    assert sorted(f.detail.split()[0] for f in found) == ["spats", "sunglasses"]


@pytest.mark.parametrize(("kind", "fire", "findings"), [(1, 4, 0), (2, 4, 0), (4, 4, 1), (2, 1, 1), (3, 1, 0)])
def test_wrong_agent(kind: int, fire: int, findings: int) -> None:
    p = AgentParams(suitable=((1, (1, 3, 4)), (2, (1, 2, 3)), (3, (1,)), (4, (1, 2))))
    v = view({"extinguisher.type_chosen": [(1, kind)], "extinguisher.fire_class": [(0, fire)],
              "extinguisher.discharging": [(5, True)]})
    assert len(wrong_agent(p, v)) == findings


@pytest.mark.parametrize(("points", "initial", "findings"), [
    ([(10, 1), (20, 3)], 0, 0), ([], 7, 1), ([(10, 7)], 7, 1), ([(10, 8)], None, 1),
])
def test_no_increase(points: list[tuple[float, Any]], initial: Any, findings: int) -> None:
    init = {} if initial is None else {"bench.meter_pulses": initial}
    assert len(no_increase(SignalParams("bench.meter_pulses"), view({"bench.meter_pulses": points}, init))) == findings
