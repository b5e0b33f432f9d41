"""The station page over the real app: check-in, the draw, the rig-at-rest check, start, pause,
end, veto, as the station's examiner; read-only for others; wrong input gets the form back."""

from __future__ import annotations

import re
from collections.abc import Callable

from fastapi.testclient import TestClient

from devices.ref import DeviceRef
from devices.sample import Sample
from proctor_ui.context import UiContext
from station import session as sm
from tests.integration.conftest import A01_DEVICES, BENCH_AT_REST, CANDIDATE, report

Client = Callable[[str | None], TestClient]
HX = {"hx-request": "true"}


def ready_a01(ctx: UiContext) -> None:
    """A01's devices online and its bench at rest; the candidate registered for A01's operation."""
    services = ctx.services
    for device in A01_DEVICES:
        services.device_status(device, True, "")
    at_rest: dict[str, object] = dict(BENCH_AT_REST)
    report(services, services.clock, at_rest)
    services.register_candidate(CANDIDATE, "张三", "低压电工作业", "B1")


def post(c: TestClient, path: str, **data: str) -> tuple[int, str]:
    r = c.post(path, data=data, headers=HX)
    return r.status_code, r.text


def check_in_and_start(c: TestClient, ctx: UiContext, item: str = "K13") -> str:
    """exam1's path at A01 from check-in to a running item; returns the attempt id."""
    assert post(c, "/station/A01/check-in", id_number=CANDIDATE, method="manual")[0] == 200
    aid = ctx.services.active_attempt("A01")
    assert aid is not None
    status, text = post(c, "/station/A01/assign", **{f"item_{item[:2]}": item})
    assert status == 200 and item in text
    status, text = post(c, "/station/A01/start", item=item)
    assert status == 200, text
    assert ctx.services.attempt(aid).state == sm.State.RUNNING
    return aid


def test_every_signed_in_user_sees_the_station_page(client_for: Client) -> None:
    for name in ("exam1", "exam2", "proc1", "admin1"):
        r = client_for(name).get("/station/A01", headers={"accept": "text/html"})
        assert r.status_code == 200 and "live-video" in r.text and "考场违纪" in r.text
    r = client_for("exam2").get("/station/A01", headers={"accept": "text/html"})
    assert "只读" in r.text and "/station/A01/draw" not in r.text
    assert client_for("exam1").get("/station/Z99", headers={"accept": "text/html"}).status_code == 404


def test_check_in_draw_start_pause_resume_end(client_for: Client, ui_ctx: UiContext) -> None:
    ready_a01(ui_ctx)
    c = client_for("exam1")
    aid = check_in_and_start(c, ui_ctx)
    assert "张三" in c.get("/station/A01/panel").text
    assert post(c, "/station/A01/pause")[0] == 200
    assert ui_ctx.services.attempt(aid).state == sm.State.PAUSED
    assert post(c, "/station/A01/resume")[0] == 200
    status, text = post(c, "/station/A01/end", reason="done")
    assert status == 200, text
    a = ui_ctx.services.attempt(aid)
    assert a.state == sm.State.ENDED and a.items[0].end_reason == "done"
    assert f"/attempt/{aid}/review" in c.get("/station/A01").text


def test_a_random_draw_gives_one_item_per_subject(client_for: Client, ui_ctx: UiContext) -> None:
    ready_a01(ui_ctx)
    c = client_for("exam1")
    post(c, "/station/A01/check-in", id_number=CANDIDATE, method="manual")
    assert post(c, "/station/A01/draw")[0] == 200
    aid = ui_ctx.services.active_attempt("A01")
    assert aid and [i.subject for i in ui_ctx.services.attempt(aid).items] == ["K1", "K2", "K3", "K4"]


def test_a_rig_not_at_rest_needs_a_reason_to_start(client_for: Client, ui_ctx: UiContext) -> None:
    ready_a01(ui_ctx)
    services = ui_ctx.services
    services.record_sample(Sample("bench.main_switch", True, services.clock.mono_ns(), services.clock.utc_ns(),
                                  DeviceRef("A01", "bench")))
    c = client_for("exam1")
    post(c, "/station/A01/check-in", id_number=CANDIDATE, method="manual")
    post(c, "/station/A01/assign", item_K2="K21")
    page = c.get("/station/A01/panel").text
    assert "考位未复位" in page and "bench.main_switch" in page
    status, text = post(c, "/station/A01/start", item="K21")
    assert status == 422 and "field-error" in text and "填写原因" in text
    status, _ = post(c, "/station/A01/start", item="K21", start_anyway="上一考生已确认断电，开关指示故障")
    assert status == 200


def test_veto_with_its_code_stops_the_item(client_for: Client, ui_ctx: UiContext) -> None:
    ready_a01(ui_ctx)
    c = client_for("exam1")
    aid = check_in_and_start(c, ui_ctx, "K11")
    page = c.get("/station/A01/panel").text
    assert "K11-V1" in page and "K11-V2" in page
    assert post(c, "/station/A01/veto", code="K99-V9")[0] == 422
    assert post(c, "/station/A01/veto", code="K11-V1", note="用万用表测绝缘电阻")[0] == 200
    a = ui_ctx.services.attempt(aid)
    assert a.state == sm.State.ENDED and a.items[0].end_reason == "veto_stop"
    assert ui_ctx.services.score(aid).veto_failed


def test_only_the_stations_examiner_acts_and_proctors_check_in(client_for: Client, ui_ctx: UiContext) -> None:
    ready_a01(ui_ctx)
    for name in ("exam2", "admin1", "proc1"):
        assert client_for(name).post("/station/A01/draw", headers=HX).status_code == 403
    assert client_for("exam2").post("/station/A01/check-in", data={"id_number": CANDIDATE},
                                     headers=HX).status_code == 403
    status, _ = post(client_for("proc1"), "/station/A01/check-in", id_number=CANDIDATE, method="manual")
    assert status == 200 and ui_ctx.services.active_attempt("A01")


def test_bad_input_gets_the_form_back_never_a_500(client_for: Client, ui_ctx: UiContext) -> None:
    ready_a01(ui_ctx)
    c = client_for("exam1")
    status, text = post(c, "/station/A01/check-in", id_number="", method="manual")
    assert status == 422 and "请填写身份证号码" in text
    assert post(c, "/station/A01/check-in", id_number=CANDIDATE, method="telepathy")[0] == 422
    status, text = post(c, "/station/A01/check-in", id_number="110101199001010099", method="manual")
    assert status == 409 and "无法完成" in text and "not registered" in text
    assert post(c, "/station/A01/start", item="K13")[0] == 409  # nobody checked in
    post(c, "/station/A01/check-in", id_number=CANDIDATE, method="manual")
    assert post(c, "/station/A01/assign")[0] == 422
    assert post(c, "/station/A01/assign", item_K1="K21")[0] == 422
    assert post(c, "/station/A01/end", reason="whatever")[0] == 422
    assert post(c, "/station/A01/start", item="x" * 5000)[0] == 422
    for path in ("/station/A01/pause", "/station/A01/resume", "/station/A01/veto", "/station/A01/end"):
        assert post(c, path)[0] in (409, 422), path
    r = c.post("/station/A01/check-in", data={"id_number": CANDIDATE})  # no htmx: the whole page
    assert r.status_code == 409 and "<html" in r.text and re.search(r"already has attempt", r.text)
