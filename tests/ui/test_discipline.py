"""Discipline incidents from the station page: a proctor or the station's examiner records one, it
lands in the attempt's signed result; the examiner may end the running item, or the whole attempt, for it."""

from __future__ import annotations

import json
from collections.abc import Callable

from fastapi.testclient import TestClient
from sqlalchemy import select

from proctor_ui.context import UiContext
from station import session as sm
from station.db.models import AuditRow
from station.discipline import ENDED_ATTEMPT, STOPPED
from tests.integration.conftest import CANDIDATE
from tests.ui.conftest import PASSWORD
from tests.ui.test_station_page import HX, check_in_and_start, post, ready_a01

Client = Callable[[str | None], TestClient]


def test_who_may_record_and_bad_input(client_for: Client, ui_ctx: UiContext) -> None:
    status, text = post(client_for("proc1"), "/station/A01/discipline", category="talking", note="与邻座交谈")
    assert status == 200 and "交谈" in text and "与邻座交谈" in text
    assert post(client_for("exam1"), "/station/A01/discipline", category="crib")[0] == 200
    for name in ("exam2", "admin1"):
        r = client_for(name).post("/station/A01/discipline", data={"category": "crib"}, headers=HX)
        assert r.status_code == 403
    c = client_for("proc1")
    status, text = post(c, "/station/A01/discipline", category="sleeping")
    assert status == 422 and "请从列表中选择" in text
    status, text = post(c, "/station/A01/discipline", category="other")
    assert status == 422 and "field-error" in text
    assert post(c, "/station/A01/discipline", category="talking", note="x" * 600)[0] == 422
    assert post(c, "/station/Z99/discipline", category="talking")[0] == 404
    listed = client_for("exam2").get("/station/A01/discipline")
    assert listed.status_code == 200 and listed.text.count("data-incident=") == 2


def test_an_incident_appears_in_the_attempts_result(client_for: Client, ui_ctx: UiContext) -> None:
    ready_a01(ui_ctx)
    ui_ctx.users.add("exam3", "examiner", PASSWORD, ("A01",))
    c = client_for("exam1")
    aid = check_in_and_start(c, ui_ctx)
    assert post(client_for("proc1"), "/station/A01/discipline", category="device", note="手机响铃")[0] == 200
    post(c, "/station/A01/end", reason="done")
    review = c.get(f"/attempt/{aid}/review", headers={"accept": "text/html"}).text
    assert "使用通讯工具" in review and "手机响铃" in review
    for path, data in (("score", {}), ("reviewed", {}), ("candidate", {"item": "K13", "decision": "signed"}),
                       ("sign", {})):
        assert post(c, f"/attempt/{aid}/{path}", **data)[0] == 200, path
    assert post(client_for("exam3"), f"/attempt/{aid}/sign")[0] == 200
    result = ui_ctx.services.sign_off.result(aid)
    assert result is not None
    [incident] = result.document["discipline"]
    assert incident["category"] == "device" and incident["recorded_by"] == "proc1" and incident["note"] == "手机响铃"
    assert incident["video"] == []  # nothing recorded in this test


def test_the_examiner_ends_the_item_for_an_incident(client_for: Client, ui_ctx: UiContext) -> None:
    ready_a01(ui_ctx)
    c = client_for("exam1")
    aid = check_in_and_start(c, ui_ctx)
    post(client_for("proc1"), "/station/A01/discipline", category="crib", note="袖中夹带纸条")
    [incident] = c.get("/station/A01/discipline").text.split('data-incident="')[1:]
    incident_id = incident.split('"')[0]
    stop = f"/station/A01/discipline/{incident_id}/stop"
    assert client_for("proc1").post(stop, data={"reason": "r"}, headers=HX).status_code == 403
    status, text = post(c, stop, reason="")
    assert status == 422 and "field-error" in text
    assert post(c, stop, reason="夹带属实，终止考试")[0] == 200
    a = ui_ctx.services.attempt(aid)
    assert a.state == sm.State.ENDED and a.items[0].end_reason == "abandoned"
    with ui_ctx.services.db.read() as s:
        payload = json.loads(s.execute(select(AuditRow.payload).where(AuditRow.action == STOPPED)).scalar_one())
    assert payload["incident"] == int(incident_id) and payload["reason"] == "夹带属实，终止考试"
    assert post(c, stop, reason="again")[0] == 409


def test_the_examiner_ends_the_whole_attempt_for_an_incident(client_for: Client, ui_ctx: UiContext) -> None:
    """Not item by item: one press ends the running item `abandoned` and closes the items not
    started; the attempt is scored and signed as failed, and its result lists the incident."""
    ready_a01(ui_ctx)
    ui_ctx.users.add("exam3", "examiner", PASSWORD, ("A01",))
    c = client_for("exam1")
    assert post(c, "/station/A01/check-in", id_number=CANDIDATE, method="manual")[0] == 200
    assert post(c, "/station/A01/assign", item_K1="K11", item_K3="K31", item_K4="K43")[0] == 200
    assert post(c, "/station/A01/start", item="K11")[0] == 200
    aid = ui_ctx.services.active_attempt("A01")
    assert aid is not None
    post(client_for("proc1"), "/station/A01/discipline", category="impersonation", note="与报名照片不符")
    listed = c.get("/station/A01/discipline").text
    assert "结束整场考试" in listed and "仅结束当前考题" in listed
    incident_id = listed.split('data-incident="')[1].split('"')[0]
    end = f"/station/A01/discipline/{incident_id}/end-attempt"
    assert client_for("proc1").post(end, data={"reason": "r"}, headers=HX).status_code == 403
    status, text = post(c, end, reason=" ")
    assert status == 422 and "field-error" in text
    status, text = post(c, end, reason="替考属实，终止考试")
    assert status == 200, text
    assert f"/attempt/{aid}/review" in text  # the station is free; the attempt waits for review
    a = ui_ctx.services.attempt(aid)
    assert a.state == sm.State.ENDED
    assert [(i.code, i.end_reason, i.started_ns is not None) for i in a.items] == [
        ("K11", "abandoned", True), ("K31", "abandoned", False), ("K43", "abandoned", False)]
    with ui_ctx.services.db.read() as s:
        payload = json.loads(s.execute(select(AuditRow.payload).where(AuditRow.action == ENDED_ATTEMPT)).scalar_one())
    assert payload == {"incident": int(incident_id), "end_reason": "abandoned", "reason": "替考属实，终止考试",
                       "item_ended": "K11", "items_not_taken": ["K31", "K43"]}
    assert post(c, end, reason="again")[0] == 409
    for path, data in (("score", {}), ("reviewed", {}), ("candidate", {"item": "K11", "decision": "signed"}),
                       ("sign", {})):
        assert post(c, f"/attempt/{aid}/{path}", **data)[0] == 200, path
    assert post(client_for("exam3"), f"/attempt/{aid}/sign")[0] == 200
    result = ui_ctx.services.sign_off.result(aid)
    assert result is not None
    doc = result.document
    assert not doc["passed"] and not doc["complete"]
    assert [(i["code"], i["end_reason"], i["score"]) for i in doc["items"]] == [("K11", "abandoned", 0)]
    [incident] = doc["discipline"]
    assert incident["category"] == "impersonation" and incident["note"] == "与报名照片不符"


def test_ending_the_attempt_before_any_item_started_is_refused(client_for: Client, ui_ctx: UiContext) -> None:
    ready_a01(ui_ctx)
    c = client_for("exam1")
    post(c, "/station/A01/check-in", id_number=CANDIDATE, method="manual")
    post(c, "/station/A01/assign", item_K1="K11")
    post(c, "/station/A01/discipline", category="crib")
    incident_id = c.get("/station/A01/discipline").text.split('data-incident="')[1].split('"')[0]
    status, text = post(c, f"/station/A01/discipline/{incident_id}/end-attempt", reason="夹带")
    assert status == 409 and "no item has started" in text
