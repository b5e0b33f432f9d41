"""Fixtures for the proctor UI tests: the example site's services, users of each role, an HTTPS client.

The client speaks to the app behind its guard (sessions, CSRF) over ASGI, as a browser would
over HTTPS (the cookies are `__Host-`, Secure). Browser tests (tests/e2e/test_ui_*.py) serve the
same app with uvicorn on 127.0.0.1.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from proctor_ui.app import asgi, create_app
from proctor_ui.context import UiContext
from station.config import load_site_config
from station.db import database_path, open_database
from station.services import StationServices
from station.signing import SiteKey
from station.stored import ensure_database
from station.users import UserBook
from tests.integration.conftest import ManualClock

ROOT = Path(__file__).resolve().parents[2]
CONFIG = load_site_config(ROOT / "examples" / "site.yaml")
PASSWORD = "correct horse battery"
USERS = {"admin1": ("admin", ()), "exam1": ("examiner", ("A01", "A02")), "exam2": ("examiner", ("A03",)),
         "proc1": ("proctor", ())}
"""name -> (role, stations): one of each role, and a second examiner at other stations."""


@pytest.fixture
def ui_ctx(tmp_path: Path) -> Iterator[UiContext]:
    ensure_database(tmp_path)
    clock = ManualClock()
    with open_database(database_path(tmp_path)) as db:
        services = StationServices(CONFIG, db, SiteKey.load_or_create(tmp_path), clock)
        users = UserBook(db, clock, [s.id for s in CONFIG.stations])
        for name, (role, stations) in USERS.items():
            users.add(name, role, PASSWORD, stations)
        yield UiContext(services=services, users=users, data_dir=tmp_path)
        services.close()


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "the page has no CSRF field"
    return found.group(1)


def login(client: TestClient, name: str, password: str = PASSWORD) -> str:
    """Sign in through the login form; returns the session's CSRF token."""
    page = client.get("/login")
    r = client.post("/login", data={"name": name, "password": password, "csrf": csrf_of(page.text), "next": "/"},
                    follow_redirects=False)
    assert r.status_code == 303, r.text
    token = re.search(r'data-csrf="([^"]+)"', client.get("/", headers={"accept": "text/html"}).text)
    return token.group(1) if token else ""


@pytest.fixture
def client_for(ui_ctx: UiContext) -> Iterator[object]:
    """`client_for(name)`: a signed-in HTTPS test client for that user (None: not signed in)."""
    app = create_app(ui_ctx)
    clients: list[TestClient] = []

    def make(name: str | None) -> TestClient:
        c = TestClient(asgi(app), base_url="https://testserver")
        c.__enter__()
        clients.append(c)
        if name is not None:
            c.headers["X-CSRF-Token"] = login(c, name)
        return c

    yield make
    for c in clients:
        c.__exit__(None, None, None)
