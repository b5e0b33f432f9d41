"""The running score while an item runs: only what the candidate has done so far counts.

Regression: at the start of CPR (K42) the hall showed every breath and cycle not yet given as a
deduction ("人工呼吸无效或缺少" eight times, 78 points) seconds after the start, because a running
item is scored as if it ended at its last sample, and "missing" lines are placed at that end.
"""

from __future__ import annotations

from devices.ref import DeviceRef
from devices.sample import Sample
from station.live_score import provisional, running_score
from station.services import StationServices
from tests.integration.conftest import ManualClock

S = 1_000_000_000


def test_a_cpr_item_seconds_in_shows_no_deduction_for_breaths_not_yet_due(
        svc: tuple[StationServices, ManualClock]) -> None:
    services, clock = svc
    services.register_candidate("110101199001010015", "张三", "低压电工作业", "B1")
    aid = services.check_in("110101199001010015", "A01", "监考员王")
    subject = services.rubric("低压电工作业").item("K42").subject
    services.assign(aid, {subject: "K42"}, "exam-system")
    manikin = DeviceRef("A01", "manikin")
    services.device_status(manikin, True, "")
    services.start_item(aid, "K42", "考评员甲", start_anyway="test: the rig state does not matter here")
    for i in range(10):  # ten good compressions at 110 per minute
        clock.t += int(0.545 * S)
        value = {"depth_mm": 55.0, "recoil_ok": True, "hand_zone": "correct", "device_ms": 1000 + i * 545}
        services.record_sample(Sample("manikin.compression", value, clock.t, clock.utc_ns(), manikin))
    services.book.writer.flush()
    sheet, ends = provisional(services, aid)
    total, charged = running_score(sheet.item("K42"), ends.get("K42"))
    shown = [f"{d.code} {d.reason_zh}" for _row, d in charged]
    assert not shown, f"seconds into CPR, nothing done wrong yet, the hall showed: {shown}"
    assert total == 100.0
