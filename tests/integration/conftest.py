"""Fixtures the service-layer tests share: a station on a real database with a clock the test
moves by hand."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from station.config import load_site_config
from station.db import database_path, open_database
from station.services import StationServices
from station.signing import SiteKey
from station.stored import ensure_database

CONFIG = load_site_config("examples/site.yaml")
S = 1_000_000_000


class ManualClock:
    """Monotonic and UTC time that move only when the test says so."""

    def __init__(self) -> None:
        self.t = 1_000 * S

    def mono_ns(self) -> int:
        return self.t

    def utc_ns(self) -> int:
        return 1_790_000_000 * S + self.t


@pytest.fixture
def svc(tmp_path: Path) -> Iterator[tuple[StationServices, ManualClock]]:
    """The example site's services on a fresh database in `tmp_path`."""
    ensure_database(tmp_path)
    clock = ManualClock()
    with open_database(database_path(tmp_path)) as db:
        services = StationServices(CONFIG, db, SiteKey.load_or_create(tmp_path), clock)
        yield services, clock
        services.close()
