"""Fixtures the service-layer tests share: a station on a real database with a clock the test
moves by hand."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from devices.clock import Clock
from devices.ref import DeviceRef
from devices.sample import Sample
from station.config import load_site_config
from station.db import database_path, open_database
from station.services import StationServices
from station.signing import SiteKey
from station.stored import ensure_database

CONFIG = load_site_config("examples/site.yaml")
S = 1_000_000_000
CANDIDATE = "110101199001010015"
A01_DEVICES = tuple(DeviceRef("A01", name) for name in ("bench", "extinguisher", "cabinet", "manikin"))
BENCH = DeviceRef("A01", "bench")
BENCH_AT_REST = {"bench.main_switch": False, "bench.meter_probe": False, "bench.check_result": 0,
                 "bench.check_fault": 0, "bench.short_trip": False, "bench.rcd_trip": False, "bench.fr_trip": False,
                 "bench.motor_dir": 0, "bench.lamp_switch": False}
"""The A01 wiring bench switched off and untouched (the rest state of the K2 items in the rubric)."""


class ManualClock:
    """Monotonic and UTC time that move only when the test says so."""

    def __init__(self) -> None:
        self.t = 1_000 * S

    def mono_ns(self) -> int:
        return self.t

    def utc_ns(self) -> int:
        return 1_790_000_000 * S + self.t


def report(services: StationServices, clock: Clock, values: dict[str, object], device: str = "bench") -> None:
    """Samples from an A01 device, as the device hub hands them to the services."""
    for signal, value in values.items():
        services.record_sample(Sample(signal, value, clock.mono_ns(), clock.utc_ns(), DeviceRef("A01", device)))  # type: ignore[arg-type]


def ready_station(services: StationServices, clock: Clock, items: dict[str, str], candidate: str = CANDIDATE,
                  name: str = "张三") -> str:
    """Every A01 device online and the bench at rest; `candidate` checked in with `items` assigned."""
    for device in A01_DEVICES:
        services.device_status(device, True, "")
    report(services, clock, BENCH_AT_REST)
    services.register_candidate(candidate, name, "低压电工作业", "B1")
    aid = services.check_in(candidate, "A01", "监考员王")
    services.assign(aid, items, "exam-system")
    return aid


@pytest.fixture
def svc(tmp_path: Path) -> Iterator[tuple[StationServices, ManualClock]]:
    """The example site's services on a fresh database in `tmp_path`."""
    ensure_database(tmp_path)
    clock = ManualClock()
    with open_database(database_path(tmp_path)) as db:
        services = StationServices(CONFIG, db, SiteKey.load_or_create(tmp_path), clock)
        yield services, clock
        services.close()
