"""Signing in: the right password opens a session; a wrong one or an unknown name get the same answer."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

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
