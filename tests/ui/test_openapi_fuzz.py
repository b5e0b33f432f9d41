"""schemathesis against the served OpenAPI schema, signed in as each role: no request gets a 5xx.

The schema is the app's own `/openapi.json`, read through its guard; every operation gets a few
generated requests, sent by the test's own client (one event loop, nothing left running) with the
role's session cookie and CSRF token (so unsafe requests
reach the routes rather than stopping at the CSRF check). Left out: streams that never end (SSE,
MJPEG), and signing in or out (they would change who is asking mid-run).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.core.result import Ok
from schemathesis.generation.case import Case

from proctor_ui.app import asgi, create_app
from proctor_ui.context import UiContext
from tests.ui.conftest import login

EXAMPLES_PER_OPERATION = 4
SKIPPED = re.compile(r"^/(events|login|logout)$|\.mjpeg$")


def _httpx_files(files: Any) -> list[tuple[str, tuple[str, bytes]]]:
    """schemathesis gives multipart parts the way `requests` takes them, content of any JSON type;
    httpx wants bytes."""
    pairs = files.items() if isinstance(files, dict) else files
    out = []
    for name, value in pairs:
        filename, content = (value[0], value[1]) if isinstance(value, tuple) else (name, value)
        data = content if isinstance(content, bytes) else str(content).encode()
        out.append((str(name), (str(filename), data)))
    return out


@pytest.fixture
def served(ui_ctx: UiContext) -> Iterator[tuple[object, TestClient]]:
    app = asgi(create_app(ui_ctx))
    with TestClient(app, base_url="https://testserver") as c:
        yield app, c


@pytest.mark.parametrize("user", ["admin1", "exam1", "proc1"])
def test_no_request_gets_a_5xx(served: tuple[object, TestClient], user: str) -> None:
    _, c = served
    csrf = login(c, user)
    served_schema = c.get("/openapi.json")
    assert served_schema.status_code == 200, "create_app must serve /openapi.json"
    schema = schemathesis.openapi.from_dict(served_schema.json())
    failures: list[str] = []
    statuses: list[int] = []
    checked = 0
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), f"the served schema has an operation schemathesis cannot read: {result}"
        operation = result.ok()
        if SKIPPED.search(operation.path):
            continue
        checked += 1

        @given(case=operation.as_strategy(), _n=st.just(0))
        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        def call(case: Case[Any], _n: int) -> None:
            sent = case.as_transport_kwargs(base_url="https://testserver", headers={"X-CSRF-Token": csrf})
            sent.pop("cookies", None)  # the client's own: the session
            if sent.get("files"):
                sent["files"] = _httpx_files(sent["files"])
            response = c.request(sent.pop("method"), sent.pop("url"), follow_redirects=False,
                                 **{k: v for k, v in sent.items() if k in ("headers", "params", "json", "data",
                                                                           "files", "content")})
            statuses.append(response.status_code)
            if "页面已过期" in response.text:
                failures.append(f"{case.method} {case.formatted_path}: refused by the CSRF check; send the token")
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path} as {user}: {response.status_code} "
                                f"{response.text[:300]}")

        call()
    assert checked > 20, "the schema lists too few operations: is /openapi.json served?"
    assert not failures, "\n".join(failures[:20])
    assert 200 in statuses, f"no request reached a route: {sorted(set(statuses))}"
