"""Issue 10 at the service layer, on a real database: what an examiner's input may and may not do
to a score. The devices are driven the way the device hub drives the services (`device_status`,
`record_sample`); there is no device here, only the station's contract with them."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from devices.ref import DeviceRef
from station import audit
from station import session as sm
from station.db.models import AuditRow
from station.services import ServiceError, StationServices
from tests.integration.conftest import ManualClock, S, ready_station, report


def actions(services: StationServices, aid: str) -> list[tuple[str, dict[str, object]]]:
    with services.db.read() as s:
        rows = s.scalars(select(AuditRow).where(AuditRow.subject == f"attempt:{aid}").order_by(AuditRow.seq))
        return [(r.action, json.loads(r.payload)) for r in rows]


def test_a_mark_or_override_the_rubric_lacks_is_refused_with_the_valid_codes(
        svc: tuple[StationServices, ManualClock]) -> None:
    services, clock = svc
    aid = ready_station(services, clock, {"K3": "K31"})
    services.start_item(aid, "K31", "考评员甲")
    clock.t += 60 * S
    services.end_item(aid, "done", "考评员甲")
    services.score(aid)
    with pytest.raises(ServiceError, match=r"K31 has no deduction or veto K21-9z.*K31-1a, K31-2a, K31-3a"):
        services.mark(aid, "K31", "K21-9z", 1, "考评员甲")
    with pytest.raises(ServiceError, match=r"item K21, which was not taken.*K31"):
        services.mark(aid, "K21", "K21-1a", 1, "考评员甲")
    with pytest.raises(ServiceError, match=r"count.*at least 1"):
        services.mark(aid, "K31", "K31-1a", 0, "考评员甲")
    with pytest.raises(ServiceError, match=r"K31 has no row K31-9.*K31-1, K31-2, K31-3"):
        services.override(aid, "K31", "K31-9", 10, "typo", "考评员甲")
    with pytest.raises(ServiceError, match=r"row K31-2 holds 0-30 points.*31"):
        services.override(aid, "K31", "K31-2", 31, "generous", "考评员甲")
    with pytest.raises(ServiceError, match=r"hundredths"):
        services.override(aid, "K31", "K31-2", 25.005, "precise", "考评员甲")
    assert services.score(aid).item("K31").score == 100  # nothing refused was kept
    assert audit.verify(services.db).ok


def test_an_unknown_end_reason_is_refused(svc: tuple[StationServices, ManualClock]) -> None:
    services, clock = svc
    aid = ready_station(services, clock, {"K3": "K31"})
    services.start_item(aid, "K31", "考评员甲")
    with pytest.raises(ServiceError, match=r"'banana'.*done, timeout, veto_stop, abandoned, interrupted"):
        services.end_item(aid, "banana", "考评员甲")  # type: ignore[arg-type]
    assert services.attempt(aid).state == sm.State.RUNNING


def test_an_item_starts_on_a_rig_at_rest_or_by_the_examiners_decision(
        svc: tuple[StationServices, ManualClock]) -> None:
    """The previous candidate's 合格 is still on the bench and the meter leads are on the terminals:
    the item does not start until the bench is reset, or the examiner starts it anyway with a reason,
    which is audited and shown on the sheet."""
    services, clock = svc
    aid = ready_station(services, clock, {"K2": "K21"})
    report(services, clock, {"bench.check_result": 1, "bench.meter_probe": True})
    with pytest.raises(ServiceError, match=r"A01 is not at rest for K21: bench.check_result is 1 \(expected 0.*"
                                           r"bench.meter_probe is True \(expected False.*start anyway"):
        services.start_item(aid, "K21", "考评员甲")
    assert services.attempt(aid).state == sm.State.ITEM_DRAWN
    services.start_item(aid, "K21", "考评员甲", start_anyway="考台复位键损坏，已人工确认接线为新")
    clock.t += 60 * S
    services.end_item(aid, "done", "考评员甲")
    it = services.score(aid).item("K21")
    assert [(d.signal, d.value) for d in it.rig_at_start] == [("bench.check_result", 1), ("bench.meter_probe", True)]
    assert [(d.kind, d.reason, d.examiner) for d in it.decisions] == [
        ("start_anyway", "考台复位键损坏，已人工确认接线为新", "考评员甲")]
    assert ("item.start_anyway", {"item": "K21", "reason": "考台复位键损坏，已人工确认接线为新",
                                  "not_at_rest": ["bench.check_result is 1 (expected 0: 线路检测结果已清除)",
                                                  "bench.meter_probe is True (expected False: 表笔未接在线路上)"]}) \
        in actions(services, aid)


def test_an_item_does_not_start_while_a_device_it_reads_is_offline(svc: tuple[StationServices, ManualClock]) -> None:
    services, clock = svc
    aid = ready_station(services, clock, {"K4": "K42"})
    services.device_status(DeviceRef("A01", "manikin"), False, "no valid frame for 3.0 s")
    with pytest.raises(ServiceError, match=r"A01/manikin is offline \(no valid frame for 3.0 s\)"):
        services.start_item(aid, "K42", "考评员甲")
    services.device_status(DeviceRef("A01", "manikin"), True, "")
    services.start_item(aid, "K42", "考评员甲")


def test_ending_an_item_while_its_device_is_down_needs_the_examiners_choice(
        svc: tuple[StationServices, ManualClock]) -> None:
    """The manikin dies during CPR and never comes back. `done` is refused; the examiner either ends
    the item interrupted (a re-sit, no score) or scores it with the gap, giving a reason. The rows the
    dead manikin could not show are then unverified, not charged (main scored this 73 as 'done')."""
    services, clock = svc
    aid = ready_station(services, clock, {"K4": "K42"})
    services.start_item(aid, "K42", "考评员甲")
    clock.t += 30 * S
    services.device_status(DeviceRef("A01", "manikin"), False, "no valid frame for 3.0 s")
    clock.t += 120 * S
    with pytest.raises(ServiceError, match=r"A01/manikin.*offline.*interrupted.*re-sit.*with_gap"):
        services.end_item(aid, "done", "考评员甲")
    assert services.attempt(aid).state == sm.State.PAUSED
    services.end_item(aid, "done", "考评员甲", with_gap="模拟人通讯中断，考评员现场确认按压合格")
    it = services.score(aid).item("K42")
    assert it.outcome == "scored"
    assert not [d for r in it.rows for d in r.deductions if d.by == "auto"]  # every finding spans the gap
    assert any(d.by == "unverified" for r in it.rows for d in r.deductions)
    assert [g.device for g in it.gaps] == ["A01/manikin"]
    assert [(d.kind, d.examiner) for d in it.decisions] == [("score_with_gap", "考评员甲")]
    assert any(a == "item.score_with_gap" for a, _ in actions(services, aid))


def test_an_item_ended_interrupted_for_a_dead_device_scores_nothing(
        svc: tuple[StationServices, ManualClock]) -> None:
    services, clock = svc
    aid = ready_station(services, clock, {"K4": "K42"})
    services.start_item(aid, "K42", "考评员甲")
    clock.t += 30 * S
    services.device_status(DeviceRef("A01", "manikin"), False, "no valid frame for 3.0 s")
    services.end_item(aid, "interrupted", "考评员甲")
    sheet = services.score(aid)
    assert sheet.item("K42").outcome == "interrupted" and sheet.item("K42").score == 0 and not sheet.passed


# -- found in review of the fix -------------------------------------------------------------------------

def test_a_device_the_item_does_not_read_neither_pauses_it_nor_leaves_a_gap(
        svc: tuple[StationServices, ManualClock]) -> None:
    services, clock = svc
    aid = ready_station(services, clock, {"K4": "K42"})
    services.start_item(aid, "K42", "考评员甲")
    clock.t += 30 * S
    services.device_status(DeviceRef("A01", "cabinet"), False, "timeout")  # the PPE cabinet plays no part in CPR
    assert services.attempt(aid).state == sm.State.RUNNING
    clock.t += 60 * S
    assert services.item_gap(aid) == ""
    services.end_item(aid, "done", "考评员甲")
    assert services.score(aid).item("K42").gaps == ()


def test_a_device_back_after_a_start_anyway_closes_its_gap(svc: tuple[StationServices, ManualClock]) -> None:
    """Started anyway while the manikin was down; it answers 2 s later. The gap is those 2 s, not
    the whole item (the 'back online' record used to be dropped: nothing in the state changed)."""
    services, clock = svc
    aid = ready_station(services, clock, {"K4": "K42"})
    services.device_status(DeviceRef("A01", "manikin"), False, "no valid frame for 3.0 s")
    services.start_item(aid, "K42", "考评员甲", start_anyway="模拟人正在重连")
    clock.t += 2 * S
    services.device_status(DeviceRef("A01", "manikin"), True, "")
    clock.t += 118 * S
    assert services.item_gap(aid) == ""
    services.end_item(aid, "done", "考评员甲")
    it = services.score(aid).item("K42")
    assert [(g.device, g.to_offset_s - g.from_offset_s) for g in it.gaps] == [("A01/manikin", 2.0)]
    assert not it.needs_gap_decision


def test_a_mark_beyond_what_its_deduction_may_charge_is_refused(svc: tuple[StationServices, ManualClock]) -> None:
    services, clock = svc
    aid = ready_station(services, clock, {"K2": "K21"})
    services.start_item(aid, "K21", "考评员甲")
    for _ in range(3):  # three short circuits: K21-3g's cap
        clock.t += 20 * S
        report(services, clock, {"bench.short_trip": True})
        clock.t += 5 * S
        report(services, clock, {"bench.short_trip": False})
    services.end_item(aid, "done", "考评员甲")
    services.score(aid)
    with pytest.raises(ServiceError, match=r"K21-3g is charged at most 3 times and 3 are charged already"):
        services.mark(aid, "K21", "K21-3g", 1, "考评员甲", "a fourth one the bench missed")
