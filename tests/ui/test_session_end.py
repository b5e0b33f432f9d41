"""What a page's buttons get after the session ended (8 h unused, a restart, signed out elsewhere):
a 401 that says so, and for htmx the login page to offer (HX-Redirect with next=, which
static/session.js shows as a message with the link); the pages load session.js. A stale page whose
session lives (its CSRF token is old) still gets 403 with the server's message."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

from fastapi.testclient import TestClient

from proctor_ui.context import UiContext
from tests.ui.test_station_page import HX, ready_a01

Client = Callable[[str | None], TestClient]
PAGE = {**HX, "hx-current-url": "https://testserver/station/A01?x=1"}


def _sign_out_everywhere(ui_ctx: UiContext, client: TestClient, name: str) -> None:
    """As an idle timeout or a restart would: the server forgets the session, the browser keeps its cookie."""
    store = client.app.app.state.sessions  # type: ignore[attr-defined]
    store.end_user(name)


def test_a_button_after_the_session_ended_says_so_and_offers_the_login(client_for: Client,
                                                                         ui_ctx: UiContext) -> None:
    ready_a01(ui_ctx)
    c = client_for("exam1")
    _sign_out_everywhere(ui_ctx, c, "exam1")
    r = c.post("/station/A01/draw", headers=PAGE)
    assert r.status_code == 401
    assert "会话已结束" in r.text and "sign in again" in r.text
    target = urlsplit(r.headers["hx-redirect"])
    assert target.path == "/login" and parse_qs(target.query)["next"] == ["/station/A01?x=1"]
    r = c.get("/station/A01/panel", headers=PAGE)  # a reload the page asks for by itself
    assert r.status_code == 401 and parse_qs(urlsplit(r.headers["hx-redirect"]).query)["next"] == ["/station/A01?x=1"]
    r = c.post("/station/A01/draw")  # not htmx: the same answer, no htmx header
    assert r.status_code == 401 and "hx-redirect" not in r.headers
    r = c.post("/station/A01/draw", headers={**HX, "hx-current-url": "https://evil.example//evil.example/x"})
    assert parse_qs(urlsplit(r.headers["hx-redirect"]).query)["next"] == ["/"]


def test_a_stale_page_of_a_live_session_gets_the_servers_403(client_for: Client, ui_ctx: UiContext) -> None:
    c = client_for("exam1")
    r = c.post("/station/A01/draw", headers={**PAGE, "X-CSRF-Token": "from-an-older-page"})
    assert r.status_code == 403 and "页面已过期" in r.text and "hx-redirect" not in r.headers


def test_every_page_loads_the_session_script_with_its_messages(client_for: Client) -> None:
    c = client_for("exam1")
    for path in ("/", "/station/A01", "/results"):
        page = c.get(path, headers={"accept": "text/html"}).text
        assert '<script src="/static/session.js"' in page, path
        assert 'id="session-alert"' in page and "会话已过期，请重新登录" in page and "无法连接控制器" in page
    assert c.get("/static/session.js").status_code == 200
