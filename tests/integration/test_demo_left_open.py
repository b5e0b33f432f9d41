"""A demo stopped between an item's end and its sign-off leaves attempts that hold no station
(ended, scored, reviewed); the next demo on the same data closes them too, and says so."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from station import session as sm
from station.config import load_site_config
from station.db import database_path, open_database
from station.demo_hall import close_left_open
from station.services import StationServices
from station.signing import SiteKey
from station.stored import ensure_database
from tests.integration.conftest import ManualClock, S, ready_station

CONFIG = load_site_config("examples/site.yaml")


@contextmanager
def station(data: Path, clock: ManualClock) -> Iterator[StationServices]:
    """One run of the controller's services on `data`."""
    with open_database(database_path(data)) as db:
        services = StationServices(CONFIG, db, SiteKey.load_or_create(data), clock)
        try:
            yield services
        finally:
            services.close()


def test_the_next_demo_signs_attempts_stopped_before_their_sign_off(tmp_path: Path) -> None:
    ensure_database(tmp_path)
    clock = ManualClock()
    left: dict[str, sm.State] = {}
    with station(tmp_path, clock) as services:
        for n, (id_number, stop_at) in enumerate((("110101199001010023", sm.State.ENDED),
                                                  ("110101199001010031", sm.State.SCORED),
                                                  ("110101199001010015", sm.State.REVIEWED))):
            aid = ready_station(services, clock, {"K2": "K21"}, candidate=id_number, name=f"考生{n}")
            services.start_item(aid, "K21", "考评员甲")
            clock.t += 60 * S
            services.end_item(aid, "done", "考评员甲")
            if stop_at != sm.State.ENDED:
                services.score(aid)
            if stop_at == sm.State.REVIEWED:
                services.review(aid, "考评员甲")
            assert services.attempt(aid).state == stop_at
            left[aid] = stop_at
        assert services.active_attempts() == {}  # none holds its station: the hall moved on
        assert services.awaiting_sign_off() == [("A01", aid) for aid in left]

    with station(tmp_path, clock) as services:  # the next demo on the same data
        lines = close_left_open(services)
        for aid, state in left.items():
            assert any(f"attempt {aid} at A01 was left {state.value}" in line for line in lines), lines
            assert services.attempt(aid).state == sm.State.QUEUED
        assert services.awaiting_sign_off() == []
