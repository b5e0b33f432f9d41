"""Users page: add with field errors, assign stations and disable, each ending the user's sessions; audited."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

from proctor_ui.context import UiContext
from station import maintenance
from tests.ui.conftest import PASSWORD

Client = Callable[[str | None], TestClient]


def _signed_in(c: TestClient) -> bool:
    return c.get("/", headers={"accept": "text/html"}, follow_redirects=False).status_code == 200


def test_add_a_user_with_stations(client_for: Client, ui_ctx: UiContext) -> None:
    admin = client_for("admin1")
    r = admin.post("/users", data={"name": "exam9", "role": "examiner", "password": PASSWORD, "password2": PASSWORD,
                                   "stations": ["A03", "W01"]})
    assert r.status_code == 200 and "exam9" in r.text
    assert ui_ctx.users.get("exam9").stations == ("A03", "W01")
    entry = maintenance.audit_page(ui_ctx.services.db, None, 1)[0]
    assert (entry.actor, entry.action, entry.subject) == ("admin1", "user.added", "user:exam9")


def test_a_wrong_user_form_names_each_field(client_for: Client) -> None:
    admin = client_for("admin1")
    r = admin.post("/users", data={"name": "", "role": "root", "password": "short", "password2": "short"})
    assert r.status_code == 422 and "必填" in r.text and "请选择角色" in r.text and "密码太短" in r.text
    r = admin.post("/users", data={"name": "p2", "role": "proctor", "password": PASSWORD, "password2": PASSWORD + "x"})
    assert r.status_code == 422 and "两次输入的密码不一致" in r.text
    r = admin.post("/users", data={"name": "p2", "role": "proctor", "password": PASSWORD, "password2": PASSWORD,
                                   "stations": ["A01"]})
    assert r.status_code == 422 and "only examiners are assigned to stations" in r.text
    r = admin.post("/users", data={"name": "exam1", "role": "proctor", "password": PASSWORD, "password2": PASSWORD})
    assert r.status_code == 422 and "exists already" in r.text


def test_changing_stations_ends_the_examiners_sessions(client_for: Client, ui_ctx: UiContext) -> None:
    exam1, admin = client_for("exam1"), client_for("admin1")
    assert _signed_in(exam1)
    assert admin.post("/users/exam1/stations", data={"stations": ["A02"]}).status_code == 200
    assert ui_ctx.users.get("exam1").stations == ("A02",)
    assert not _signed_in(exam1)


def test_disabling_ends_the_sessions_and_refuses_the_login(client_for: Client, ui_ctx: UiContext) -> None:
    proc1, admin = client_for("proc1"), client_for("admin1")
    assert _signed_in(proc1)
    assert admin.post("/users/proc1/disable").status_code == 200
    assert ui_ctx.users.get("proc1").disabled and not _signed_in(proc1)
    assert admin.post("/users/admin1/disable").status_code == 409, "nobody locks themselves out"
    assert admin.post("/users/proc1/enable").status_code == 200 and not ui_ctx.users.get("proc1").disabled


def test_only_admins_manage_users(client_for: Client) -> None:
    for name in ("exam1", "proc1"):
        c = client_for(name)
        assert c.get("/users").status_code == 403
        assert c.post("/users/exam2/disable").status_code == 403


def _can_sign_in(client_for: Client, name: str, password: str) -> bool:
    c = client_for(None)
    page = c.get("/login")
    token = page.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    r = c.post("/login", data={"name": name, "password": password, "csrf": token, "next": "/"},
               follow_redirects=False)
    return r.status_code == 303


def test_an_admin_sets_a_forgotten_password_which_ends_the_users_sessions(client_for: Client,
                                                                           ui_ctx: UiContext) -> None:
    exam2, admin = client_for("exam2"), client_for("admin1")
    assert _signed_in(exam2)
    new = "a new password for exam2"
    short = admin.post("/users/exam2/password", data={"password": "short", "password2": "short"})
    assert short.status_code == 422 and "密码太短" in short.text
    differ = admin.post("/users/exam2/password", data={"password": new, "password2": new + "!"})
    assert differ.status_code == 422 and "两次输入的密码不一致" in differ.text
    assert _signed_in(exam2), "a refused form changes nothing"
    assert admin.post("/users/exam2/password", data={"password": new, "password2": new}).status_code == 200
    assert not _signed_in(exam2)
    assert _can_sign_in(client_for, "exam2", new) and not _can_sign_in(client_for, "exam2", PASSWORD)
    entry = maintenance.audit_page(ui_ctx.services.db, None, 1)[0]
    assert (entry.actor, entry.action, entry.subject) == ("admin1", "user.changed", "user:exam2")
    assert dict(entry.payload) == {"password": "changed"}
    for name in ("exam1", "proc1"):
        assert client_for(name).post("/users/exam2/password", data={"password": new, "password2": new}).status_code \
            == 403


def test_anyone_changes_their_own_password_giving_the_current_one(client_for: Client, ui_ctx: UiContext) -> None:
    proc1, other_tab = client_for("proc1"), client_for("proc1")
    page = proc1.get("/account/password", headers={"accept": "text/html"})
    assert page.status_code == 200 and 'name="current"' in page.text
    new = "the proctor's new one"
    wrong = proc1.post("/account/password", data={"current": "not it at all", "password": new, "password2": new})
    assert wrong.status_code == 422 and "当前密码错误" in wrong.text
    same = proc1.post("/account/password", data={"current": PASSWORD, "password": PASSWORD, "password2": PASSWORD})
    assert same.status_code == 422 and "新密码与当前密码相同" in same.text
    assert _can_sign_in(client_for, "proc1", PASSWORD), "refused forms change nothing"
    done = proc1.post("/account/password", data={"current": PASSWORD, "password": new, "password2": new})
    assert done.status_code == 200 and "密码已修改" in done.text
    assert not _signed_in(proc1) and not _signed_in(other_tab), "every session of the user ends"
    assert _can_sign_in(client_for, "proc1", new) and not _can_sign_in(client_for, "proc1", PASSWORD)
    entry = maintenance.audit_page(ui_ctx.services.db, None, 1)[0]
    assert (entry.actor, entry.action, entry.subject) == ("proc1", "user.changed", "user:proc1")
