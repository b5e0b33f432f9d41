"""Manual marks (人工扣分) on the station page: the examiner marks what they see while the candidate
works; the mark is a timeline record with its audit entry at once, and is charged when the attempt
is scored. Vetoes stay on the veto button; only the station's examiner marks."""

from __future__ import annotations

import json
from collections.abc import Callable

from fastapi.testclient import TestClient
from sqlalchemy import select

from proctor_ui.context import UiContext
from station import session as sm
from station.db.models import AuditRow
from tests.integration.conftest import CANDIDATE
from tests.ui.test_station_page import HX, post, ready_a01

Client = Callable[[str | None], TestClient]


def _running_k11(c: TestClient, ctx: UiContext) -> str:
    """exam1 at A01: K11 and K31 assigned, K11 running."""
    assert post(c, "/station/A01/check-in", id_number=CANDIDATE, method="manual")[0] == 200
    assert post(c, "/station/A01/assign", item_K1="K11", item_K3="K31")[0] == 200
    assert post(c, "/station/A01/start", item="K11")[0] == 200
    aid = ctx.services.active_attempt("A01")
    assert aid is not None and ctx.services.attempt(aid).state == sm.State.RUNNING
    return aid


def test_the_examiner_marks_the_running_item_and_scoring_charges_it(client_for: Client, ui_ctx: UiContext) -> None:
    ready_a01(ui_ctx)
    c = client_for("exam1")
    aid = _running_k11(c, ui_ctx)
    panel = c.get("/station/A01/panel").text
    assert 'hx-post="/station/A01/mark"' in panel and "K11-3a" in panel
    assert '<option value="K11-V1">' not in panel.split('hx-post="/station/A01/mark"')[1].split("</form>")[0]
    ui_ctx.services.clock.base.t += 35 * 10**9  # type: ignore[attr-defined]
    status, text = post(c, "/station/A01/mark", item="K11", code="K11-2a", count="1", note="未检查仪表外观")
    assert status == 200, text
    assert "K11-2a" in text and "未检查仪表外观" in text and "35.0 s" in text and "exam1" in text
    with ui_ctx.services.db.read() as s:
        payload = json.loads(s.execute(select(AuditRow.payload).where(AuditRow.action == "sheet.mark")).scalar_one())
    assert payload["item"] == "K11" and payload["code"] == "K11-2a" and payload["examiner"] == "exam1"
    # a veto is not a mark here: it stops the item (the veto button); a code of another item is refused
    assert post(c, "/station/A01/mark", item="K11", code="K11-V1", count="1")[0] == 422
    assert post(c, "/station/A01/mark", item="K11", code="K31-1a", count="1")[0] == 422
    assert post(c, "/station/A01/mark", item="K11", code="K11-2a", count="1")[0] == 409  # at most once
    for name in ("exam2", "proc1", "admin1"):
        assert client_for(name).post("/station/A01/mark", data={"item": "K11", "code": "K11-2a"},
                                     headers=HX).status_code == 403
    assert post(c, "/station/A01/end", reason="done")[0] == 200
    # between items the form stays for the item that just ended
    panel = c.get("/station/A01/panel").text
    assert 'hx-post="/station/A01/mark"' in panel and 'name="item" value="K11"' in panel
    assert post(c, "/station/A01/mark", item="K11", code="K11-4a", count="1", note="读数未判断")[0] == 200
    assert post(c, "/station/A01/start", item="K31")[0] == 200
    assert post(c, "/station/A01/mark", item="K11", code="K11-4b", count="1")[0] == 422  # K31 runs now
    assert post(c, "/station/A01/end", reason="done")[0] == 200
    assert ui_ctx.services.attempt(aid).state == sm.State.ENDED
    sheet = ui_ctx.services.score(aid)
    k11 = next(i for i in sheet.items if i.code == "K11")
    manual = {d.code: d.count for r in k11.rows for d in r.deductions if d.by == "manual"}
    assert manual == {"K11-2a": 1, "K11-4a": 1}
    review = c.get(f"/attempt/{aid}/review", headers={"accept": "text/html"}).text
    assert "未检查仪表外观" in review and "读数未判断" in review


def test_no_mark_before_an_item_started(client_for: Client, ui_ctx: UiContext) -> None:
    ready_a01(ui_ctx)
    c = client_for("exam1")
    assert post(c, "/station/A01/mark", item="K11", code="K11-2a")[0] == 409  # nobody checked in
    post(c, "/station/A01/check-in", id_number=CANDIDATE, method="manual")
    post(c, "/station/A01/assign", item_K1="K11")
    assert 'hx-post="/station/A01/mark"' not in c.get("/station/A01/panel").text
    assert post(c, "/station/A01/mark", item="K11", code="K11-2a")[0] == 422
