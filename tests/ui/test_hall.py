"""The hall page: every role sees one tile per station, with the candidate, item, running score and
alarms of the server's snapshot on the first paint (before any script runs)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from proctor_ui.context import UiContext
from tests.integration.conftest import ready_station
from tests.ui.conftest import CONFIG

Client = Callable[[str | None], TestClient]


@pytest.mark.parametrize("name", ["admin1", "exam1", "exam2", "proc1"])
def test_every_role_sees_every_station(client_for: Client, name: str) -> None:
    page = client_for(name).get("/", headers={"accept": "text/html"})
    assert page.status_code == 200
    for st in CONFIG.stations:
        assert f'id="tile-{st.id}"' in page.text
        assert f'href="/station/{st.id}"' in page.text
    assert "/static/hall.js" in page.text
    assert "/static/vendor/htmx/htmx.min.js" in page.text


def test_hall_needs_sign_in(client_for: Client) -> None:
    r = client_for(None).get("/", headers={"accept": "text/html"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    assert client_for(None).get("/events").status_code == 401


def test_running_item_shows_on_first_paint(client_for: Client, ui_ctx: UiContext) -> None:
    services = ui_ctx.services
    aid = ready_station(services, services.clock, {"K2": "K21"}, name="李四")
    services.start_item(aid, "K21", "exam1")
    page = client_for("proc1").get("/", headers={"accept": "text/html"})
    tile = page.text.split('id="tile-A01"')[1].split("</article>")[0]
    assert "李四" in tile and "K21" in tile
    assert 'data-left="' in tile  # the item's clock, counted down by hall.js
    assert "100.00" in tile  # nothing deducted yet
    idle = page.text.split('id="tile-A03"')[1].split("</article>")[0]
    assert "李四" not in idle
