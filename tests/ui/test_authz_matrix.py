"""The authorization matrix: every route of create_app against a table of who may call it.

Who: anonymous, an admin, the examiner at the route's station (exam1 at A01), an examiner elsewhere
(exam2, at A03), a proctor. The route's station is A01, its attempt an attempt checked in at A01.

- GET: an allowed user is not refused (no 401/403, no redirect to the login page, no 5xx); anyone
  else gets 403; anonymous gets the login page (303) or 401. Streaming routes (SSE, live video) are
  only asked of those refused: they answer at once, a stream would not end.
- Unsafe (POST...): without the CSRF token 403, from a user without the right 403; anonymous 401
  (no session: "sign in again", proctor_ui.guard), except the login form's POST (403 without its token).
A route missing from the table fails the test: add a row for it (who may call it, and why).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx2
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute

from proctor_ui.app import asgi, create_app
from proctor_ui.context import UiContext
from tests.ui.conftest import login

WHO = ("anonymous", "admin", "examiner_here", "examiner_elsewhere", "proctor")
USER_OF = {"admin": "admin1", "examiner_here": "exam1", "examiner_elsewhere": "exam2", "proctor": "proc1"}
SIGNED_IN = frozenset(USER_OF)
ANYONE = frozenset(WHO)
ADMIN = frozenset({"admin"})
EXAMINER_HERE = frozenset({"examiner_here"})
ID_NUMBER = "11010519491231002X"


@dataclass(frozen=True)
class Row:
    may: frozenset[str]
    stream: bool = False
    """Never asked of those allowed (the response does not end)."""
    unavailable: bool = False
    """503 is a right answer here (these tests serve no live cameras)."""


TABLE: dict[tuple[str, str], Row] = {
    ("GET", "/openapi.json"): Row(ANYONE),
    ("GET", "/login"): Row(ANYONE),
    ("POST", "/login"): Row(ANYONE),
    ("POST", "/logout"): Row(SIGNED_IN),
    ("GET", "/account/password"): Row(SIGNED_IN),
    ("POST", "/account/password"): Row(SIGNED_IN),
    ("GET", "/lang/{lang}"): Row(ANYONE),
    ("GET", "/"): Row(SIGNED_IN),
    ("GET", "/events"): Row(SIGNED_IN, stream=True),
    ("GET", "/live/{station}/{camera}.mjpeg"): Row(SIGNED_IN, stream=True),
    ("GET", "/live/{station}/{camera}.jpg"): Row(SIGNED_IN, unavailable=True),
    ("WS", "/live/{station}/{camera}/fmp4"): Row(SIGNED_IN, stream=True),
    ("WS", "/live/{station}/{camera}/jpeg"): Row(SIGNED_IN, stream=True),
    ("GET", "/station/{station}"): Row(SIGNED_IN),
    ("GET", "/station/{station}/panel"): Row(SIGNED_IN),
    ("POST", "/station/{station}/check-in"): Row(frozenset({"proctor", "examiner_here"})),  # 监考员 check ID
    ("POST", "/station/{station}/draw"): Row(EXAMINER_HERE),
    ("POST", "/station/{station}/assign"): Row(EXAMINER_HERE),
    ("POST", "/station/{station}/start"): Row(EXAMINER_HERE),
    ("POST", "/station/{station}/pause"): Row(EXAMINER_HERE),
    ("POST", "/station/{station}/resume"): Row(EXAMINER_HERE),
    ("POST", "/station/{station}/end"): Row(EXAMINER_HERE),
    ("POST", "/station/{station}/veto"): Row(EXAMINER_HERE),
    ("POST", "/station/{station}/mark"): Row(EXAMINER_HERE),
    ("GET", "/evidence/{segment_id}.mp4"): Row(SIGNED_IN),
    ("GET", "/attempt/{attempt_id}/picture/{which}.jpg"): Row(SIGNED_IN),
    ("GET", "/attempt/{attempt_id}/review"): Row(SIGNED_IN),
    ("GET", "/attempt/{attempt_id}/delivery"): Row(SIGNED_IN),
    ("GET", "/attempt/{attempt_id}/cpr"): Row(SIGNED_IN),
    ("GET", "/attempt/{attempt_id}/cpr.json"): Row(SIGNED_IN),
    ("GET", "/attempt/{attempt_id}/weld"): Row(SIGNED_IN),
    ("GET", "/attempt/{attempt_id}/weld.json"): Row(SIGNED_IN),
    ("POST", "/attempt/{attempt_id}/score"): Row(EXAMINER_HERE),
    ("POST", "/attempt/{attempt_id}/mark"): Row(EXAMINER_HERE),
    ("POST", "/attempt/{attempt_id}/override"): Row(EXAMINER_HERE),
    ("POST", "/attempt/{attempt_id}/gap"): Row(EXAMINER_HERE),
    ("POST", "/attempt/{attempt_id}/reviewed"): Row(EXAMINER_HERE),
    ("POST", "/attempt/{attempt_id}/candidate"): Row(EXAMINER_HERE),
    ("POST", "/attempt/{attempt_id}/sign"): Row(EXAMINER_HERE),
    ("GET", "/station/{station}/discipline"): Row(SIGNED_IN),
    ("POST", "/station/{station}/discipline"): Row(frozenset({"proctor", "examiner_here"})),
    ("POST", "/station/{station}/discipline/{incident_id}/stop"): Row(EXAMINER_HERE),
    ("POST", "/station/{station}/discipline/{incident_id}/end-attempt"): Row(EXAMINER_HERE),
    ("GET", "/candidates"): Row(ADMIN),
    ("POST", "/candidates/import"): Row(ADMIN),
    ("POST", "/candidates/import/{token}"): Row(ADMIN),
    ("POST", "/candidates"): Row(ADMIN),
    ("GET", "/results"): Row(SIGNED_IN),
    ("GET", "/results/{result_id}"): Row(SIGNED_IN),
    ("GET", "/results/{result_id}/bundle.tar"): Row(frozenset({"admin", "examiner_here", "examiner_elsewhere"})),
    ("GET", "/outbox"): Row(ADMIN),
    ("POST", "/outbox/{result_id}/retry"): Row(ADMIN),
    ("GET", "/audit"): Row(ADMIN),
    ("POST", "/audit/verify"): Row(ADMIN),
    ("GET", "/users"): Row(ADMIN),
    ("POST", "/users"): Row(ADMIN),
    ("POST", "/users/{name}/stations"): Row(ADMIN),
    ("POST", "/users/{name}/password"): Row(ADMIN),
    ("POST", "/users/{name}/disable"): Row(ADMIN),
    ("POST", "/users/{name}/enable"): Row(ADMIN),
    # the latest site-check: the administrator runs it, examiners see whether their stations passed
    ("GET", "/site-check"): Row(frozenset({"admin", "examiner_here", "examiner_elsewhere"})),
    ("GET", "/site-check/report.html"): Row(frozenset({"admin", "examiner_here", "examiner_elsewhere"})),
    # machines: /healthz for probes that do not sign in (503 here: nothing ticks, nothing records); /metrics
    # beyond loopback (these clients are 192.0.2.x) for administrators or the configured bearer token
    ("GET", "/healthz"): Row(ANYONE, unavailable=True),
    ("GET", "/metrics"): Row(ADMIN),
}
"""(method, path) -> who may call it. WS: a WebSocket route."""

PUBLIC_PREFIXES = ("/static",)
"""Mounted apps anyone reads (htmx, ECharts, the UI's CSS and JS)."""


def _routes(routes: list[BaseRoute], prefix: str = "") -> Iterator[tuple[str, BaseRoute]]:
    """Every route with its full path, through included routers (FastAPI keeps them nested)."""
    for r in routes:
        included = getattr(r, "original_router", None)
        if included is not None:
            yield from _routes(included.routes, prefix + r.include_context.prefix)  # type: ignore[attr-defined]
        else:
            yield prefix, r


def endpoints(app: FastAPI) -> list[tuple[str, str]]:
    out = []
    for prefix, r in _routes(app.routes):
        if isinstance(r, Mount):
            assert prefix + r.path in PUBLIC_PREFIXES, f"mounted app {r.path}: add it to PUBLIC_PREFIXES or the TABLE"
        elif isinstance(r, WebSocketRoute) or type(r).__name__ == "APIWebSocketRoute":
            out.append(("WS", prefix + r.path))  # type: ignore[attr-defined]
        elif isinstance(r, Route):
            out += [(m, prefix + r.path) for m in sorted((r.methods or set()) - {"HEAD"})]
    return out


@pytest.fixture
def app(ui_ctx: UiContext) -> FastAPI:
    return create_app(ui_ctx)


@pytest.fixture
def attempt_id(ui_ctx: UiContext) -> str:
    """An attempt at A01 (its examiner is exam1, not exam2)."""
    ui_ctx.services.registration.register_candidate(ID_NUMBER, "张三", "低压电工作业", "2025-06-A")
    return ui_ctx.services.check_in(ID_NUMBER, "A01", "proc1")


def _path(template: str, attempt_id: str) -> str:
    values = {"station": "A01", "camera": "overview", "attempt_id": attempt_id, "segment_id": "nope",
              "which": "checkin", "incident_id": "1", "result_id": "nope", "token": "0" * 32, "name": "exam2",
              "lang": "en"}
    return template.format(**values)


@pytest.fixture
def clients(app: FastAPI) -> Iterator[dict[str, TestClient]]:
    out: dict[str, TestClient] = {}
    for who in WHO:
        c = TestClient(asgi(app), base_url="https://testserver", client=(f"192.0.2.{len(out) + 1}", 50000))
        c.__enter__()
        if who in USER_OF:
            c.headers["X-CSRF-Token"] = login(c, USER_OF[who])
        out[who] = c
    yield out
    for c in out.values():
        c.__exit__(None, None, None)


def test_every_route_is_in_the_table(app: FastAPI) -> None:
    missing = [f"{m} {p}" for m, p in endpoints(app) if (m, p) not in TABLE]
    assert not missing, (f"routes missing from tests/ui/test_authz_matrix.py TABLE: {missing}; add a row for each "
                         "saying who may call it")


def _refused_login(r: httpx2.Response) -> bool:
    return r.status_code == 401 or (r.status_code == 303 and r.headers["location"].startswith("/login"))


def test_get_routes_answer_each_role_as_the_table_says(app: FastAPI, clients: dict[str, TestClient],
                                                        attempt_id: str) -> None:
    wrong = []
    for method, template in endpoints(app):
        row = TABLE.get((method, template))
        if method != "GET" or row is None:
            continue
        path = _path(template, attempt_id)
        for who, c in clients.items():
            allowed = who in row.may
            if allowed and row.stream:
                continue
            r = c.get(path, headers={"accept": "text/html"}, follow_redirects=False)
            if allowed:
                ok = ((r.status_code < 500 or (row.unavailable and r.status_code == 503))
                      and r.status_code not in (401, 403) and not _refused_login(r))
            elif who == "anonymous":
                ok = _refused_login(r)
            else:
                ok = r.status_code == 403
            if not ok:
                wrong.append(f"GET {path} as {who}: {r.status_code} ({'allowed' if allowed else 'refused'} expected)")
    assert not wrong, "\n".join(wrong)


def test_unsafe_routes_need_the_csrf_token_and_the_right(app: FastAPI, clients: dict[str, TestClient],
                                                         attempt_id: str) -> None:
    wrong = []
    for method, template in endpoints(app):
        row = TABLE.get((method, template))
        if method in ("GET", "WS") or row is None:
            continue
        path = _path(template, attempt_id)
        for who, c in clients.items():
            token = c.headers.get("X-CSRF-Token")
            without = c.request(method, path, headers={"X-CSRF-Token": ""}, follow_redirects=False)
            expected = 401 if who == "anonymous" and path != "/login" else 403
            if without.status_code != expected:
                wrong.append(f"{method} {path} as {who} without the CSRF token: {without.status_code}, "
                             f"{expected} expected")
            if who in row.may or token is None:
                continue
            r = c.request(method, path, follow_redirects=False)
            if r.status_code != 403:
                wrong.append(f"{method} {path} as {who}: {r.status_code}, 403 expected")
    assert not wrong, "\n".join(wrong)


def test_websockets_refuse_anonymous(app: FastAPI, clients: dict[str, TestClient], attempt_id: str) -> None:
    from starlette.websockets import WebSocketDisconnect

    for method, template in endpoints(app):
        if method != "WS":
            continue
        path = _path(template, attempt_id)
        with pytest.raises(WebSocketDisconnect), clients["anonymous"].websocket_connect(path) as ws:
            ws.receive_text()

