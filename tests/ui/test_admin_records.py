"""Results, outbox and audit pages: search answers with field errors, unknown results are a clear 409,
the audit log pages and verifies."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

Client = Callable[[str | None], TestClient]


def test_results_search_for_every_role_with_field_errors(client_for: Client) -> None:
    for name in ("admin1", "exam2", "proc1"):
        c = client_for(name)
        assert c.get("/results", params={"q": "张", "station": "A01", "day": "2025-06-01"}).status_code == 200
    c = client_for("proc1")
    r = c.get("/results", params={"station": "Z9", "day": "yesterday"})
    assert r.status_code == 422 and "日期格式应为" in r.text and "没有这个考位" in r.text


def test_an_unknown_result_is_explained(client_for: Client) -> None:
    c = client_for("admin1")
    r = c.get("/results/nope", headers={"accept": "text/html"})
    assert r.status_code == 409 and "no result nope" in r.text
    assert c.get("/results/nope/bundle.tar").status_code == 409
    assert client_for("proc1").get("/results/nope/bundle.tar").status_code == 403


def test_outbox_page_and_retry_of_an_unknown_result(client_for: Client) -> None:
    c = client_for("admin1")
    assert c.get("/outbox").status_code == 200 and c.get("/outbox", params={"show": "all"}).status_code == 200
    r = c.post("/outbox/nope/retry")
    assert r.status_code == 409 and "no result nope in the outbox" in r.text


def test_audit_log_pages_and_verifies(client_for: Client) -> None:
    c = client_for("admin1")
    page = c.get("/audit")
    assert page.status_code == 200 and "user.added" in page.text
    r = c.post("/audit/verify")
    assert r.status_code == 200 and "校验通过" in r.text and "verified: all hold" in r.text
    assert c.get("/audit", params={"before": 0}).status_code == 422
