"""A station's `camera.gap` alarm with two cameras in a gap: the hall keeps one alarm per station
(code and station), so the alarm must stay raised, naming the camera still unrecorded, until the
last of them records again; before, the first camera to recover cleared it for both."""

from __future__ import annotations

import asyncio
from pathlib import Path

from devices.camera.contract import CameraGap
from station.db import database_path, open_database
from station.events import AlarmEvent, EventBus, Subscription
from station.evidence_index import GAP_ALARM, EvidenceIndex
from station.stored import ensure_database

NOW = 1_760_000_000 * 10**9


def gap(camera: str, start_s: int, cause: str, end_s: int | None = None) -> CameraGap:
    return CameraGap("A01", camera, NOW + start_s * 10**9, start_s * 10**9, "run-1", cause,
                     None if end_s is None else NOW + end_s * 10**9, None if end_s is None else end_s * 10**9)


async def test_the_alarm_stays_until_every_camera_of_the_station_records_again(tmp_path: Path) -> None:
    ensure_database(tmp_path)
    events = EventBus()
    alarms = events.subscribe("test", kinds=(AlarmEvent,))
    with open_database(database_path(tmp_path)) as db:
        index = EvidenceIndex(db, tmp_path, events, utc_ns=lambda: NOW)
        index.start()
        try:
            await gaps_of_two_cameras(index, alarms)
        finally:
            index.stop()


async def gaps_of_two_cameras(index: EvidenceIndex, alarms: Subscription) -> None:
    index.gap_opened(gap("overview", 0, "no frames for 2.0 s"))
    index.gap_opened(gap("bench", 1, "connection refused"))
    index.gap_closed(gap("overview", 0, "no frames for 2.0 s", end_s=5))
    assert await asyncio.to_thread(index.flush)
    await asyncio.sleep(0.05)  # the bus hands events over through the loop
    seen: list[AlarmEvent] = []
    while (ev := alarms.get_nowait()) is not None:
        assert isinstance(ev, AlarmEvent)
        seen.append(ev)
    last = seen[-1]
    assert last.code == GAP_ALARM and last.station == "A01"
    assert not last.cleared, "A01/bench is still not recorded: the alarm stays"
    assert "A01/bench" in last.what and "connection refused" in last.what
    assert "A01/overview is not recorded" not in last.what, last.what

    index.gap_closed(gap("bench", 1, "connection refused", end_s=9))
    assert await asyncio.to_thread(index.flush)
    await asyncio.sleep(0.05)
    while (ev := alarms.get_nowait()) is not None:
        assert isinstance(ev, AlarmEvent)
        last = ev
    assert last.cleared and "A01/bench records again" in last.what
