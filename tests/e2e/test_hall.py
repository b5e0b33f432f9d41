"""The whole hall at once: all six stations of examples/site.yaml run candidates back to back for
two minutes through one controller (one device hub over every TCP port and RS-485 line, one
database). Every attempt must score exactly as its scenario says, and the database must verify."""

from __future__ import annotations

from pathlib import Path

import pytest

from hardware_sim.scenarios import SCENARIOS
from station import audit
from station.config import Station, load_site_config
from station.db import database_path, open_database
from station.demo_hall import play_hall

CONFIG = load_site_config("examples/site.yaml")
SCALE = 20.0
ELECTRICIAN = ["cpr-correct", "cpr-too-shallow", "cpr-poor-recoil", "cpr-too-fast"]
WELDING = ["weld-k21-good-run", "weld-k11-two-missing", "weld-k21-travel-too-fast", "weld-k11-complete-ppe"]


def pick(station: Station):  # type: ignore[no-untyped-def]
    names = ELECTRICIAN if station.operation == "低压电工作业" else WELDING
    offset = int(station.id[1:])  # stations start at different points of the list
    names = names[offset % len(names):] + names[: offset % len(names)]
    return [SCENARIOS[n] for n in names]


@pytest.mark.timeout(400)
async def test_six_stations_for_two_minutes(tmp_path: Path) -> None:
    assert all(SCENARIOS[n].time_scale == SCALE for n in ELECTRICIAN + WELDING)
    results = await play_hall(CONFIG, tmp_path, duration_s=120, scale=SCALE, pick=pick)
    stations = {r.station for r in results}
    assert stations == {s.id for s in CONFIG.stations}
    wrong = [r for r in results if r.got != r.expected]
    assert not wrong, [(r.station, r.scenario, r.expected, r.got) for r in wrong]
    assert len(results) >= 2 * len(stations)
    with open_database(database_path(tmp_path)) as db:
        report = audit.verify(db)
    assert report.ok, str(report)
    assert report.checked["results"] == len(results)
