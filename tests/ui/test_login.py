"""Signing in: the right password opens a session; a wrong one or an unknown name get the same answer."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

from proctor_ui.app import asgi, create_app
from proctor_ui.context import UiContext
from proctor_ui.login_limit import LoginLimit
from tests.ui.conftest import PASSWORD, csrf_of

Client = Callable[[str | None], TestClient]


def test_a_page_without_a_session_goes_to_the_login_page(client_for: Client) -> None:
    c = client_for(None)
    r = c.get("/", headers={"accept": "text/html"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")


def test_wrong_password_and_unknown_user_get_the_same_answer(client_for: Client) -> None:
    c = client_for(None)
    answers = []
    for name, password in (("exam1", "wrong password!"), ("nobody", PASSWORD)):
        page = c.get("/login")
        r = c.post("/login", data={"name": name, "password": password, "csrf": csrf_of(page.text)})
        answers.append((r.status_code, "用户名或密码错误" in r.text))
    assert answers == [(401, True), (401, True)]


def test_login_without_its_csrf_token_is_refused(client_for: Client) -> None:
    c = client_for(None)
    r = c.post("/login", data={"name": "exam1", "password": PASSWORD})
    assert r.status_code == 403 and "CSRF" in r.text


def test_signed_in_user_sees_their_name(client_for: Client) -> None:
    c = client_for("exam1")
    assert c.headers["X-CSRF-Token"]


def _try(c: TestClient, name: str, password: str) -> tuple[int, str]:
    page = c.get("/login")
    r = c.post("/login", data={"name": name, "password": password, "csrf": csrf_of(page.text)},
               follow_redirects=False)
    return r.status_code, r.text


def test_five_failures_lock_a_name_whether_it_exists_or_not(ui_ctx: UiContext) -> None:
    """The lock answers the same for a real and a made-up name: it does not tell who has an account.
    Each name is tried from its own address, so only the name's count locks it."""
    app = asgi(create_app(ui_ctx))
    answers = []
    for i, name in enumerate(("exam1", "nobody")):
        with TestClient(app, base_url="https://testserver", client=(f"192.0.2.{i + 1}", 50000)) as c:
            statuses = [_try(c, name, "wrong password!")[0] for _ in range(5)]
            status, text = _try(c, name, PASSWORD)
            answers.append((statuses, status, "分钟后再试" in text))
        with TestClient(app, base_url="https://testserver", client=(f"192.0.2.{i + 10}", 50000)) as other:
            assert _try(other, name, PASSWORD)[0] == 429, "a locked name stays locked from another address"
    assert answers == [([401] * 5, 429, True)] * 2


def test_the_lock_says_when_to_try_again_and_the_right_password_waits_too(client_for: Client) -> None:
    c = client_for(None)
    for _ in range(5):
        _try(c, "exam1", "wrong password!")
    page = c.get("/login")
    r = c.post("/login", data={"name": "exam1", "password": PASSWORD, "csrf": csrf_of(page.text)},
               follow_redirects=False)
    assert r.status_code == 429 and 0 < int(r.headers["retry-after"]) <= 300
    assert "请 5 分钟后再试" in r.text


def test_failures_from_one_address_lock_every_name_from_it(client_for: Client) -> None:
    c = client_for(None)
    for i in range(20):
        assert _try(c, f"guess{i}", "wrong password!")[0] == 401
    assert _try(c, "proc1", PASSWORD)[0] == 429


def test_one_persons_typos_at_a_shared_hall_pc_lock_only_their_name(client_for: Client) -> None:
    """Everyone at a hall PC shares its address: five typos of one examiner lock that examiner's
    name, and the proctor at the same PC still signs in (it used to lock the PC for 5 minutes)."""
    c = client_for(None)
    for _ in range(5):
        assert _try(c, "exam1", "wrong password!")[0] == 401
    assert _try(c, "exam1", PASSWORD)[0] == 429
    assert _try(c, "proc1", PASSWORD)[0] == 303


def test_a_success_clears_the_count(client_for: Client) -> None:
    c = client_for(None)
    for _ in range(4):
        _try(c, "exam1", "wrong password!")
    assert _try(c, "exam1", PASSWORD)[0] == 303
    c.cookies.clear()
    for _ in range(4):
        assert _try(c, "exam1", "wrong password!")[0] == 401


def test_the_limit_forgets_failures_after_its_window() -> None:
    now = [0.0]
    limit = LoginLimit(max_failures=2, window_s=60.0, clock=lambda: now[0])
    limit.failed("10.0.0.1", "exam1")
    now[0] = 30.0
    limit.failed("10.0.0.2", "Exam1 ")
    locked = limit.check("10.0.0.3", "exam1")
    assert locked is not None and locked.retry_after_s == 30 and locked.minutes == 1
    now[0] = 60.5
    assert limit.check("10.0.0.3", "exam1") is None


def test_logout_ends_the_session(client_for: Client) -> None:
    c = client_for("exam1")
    assert c.post("/logout", follow_redirects=False).status_code == 303
    r = c.get("/", headers={"accept": "text/html"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
