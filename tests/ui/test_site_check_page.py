"""/site-check: the latest saved site-check report, for the administrator and the examiners.

Reports are saved the way `examstation site-check` saves them (station.site_check.report.save_report,
snapshots beside the JSON); the page reads the newest. Before any run it says how to make one.
"""

from __future__ import annotations

import base64
from collections.abc import Callable

import cv2
from fastapi.testclient import TestClient

from hardware_sim.frame_painter import FramePainter
from proctor_ui.context import UiContext
from station.site_check.report import Check, Report, save_report

Client = Callable[[str | None], TestClient]


def jpeg() -> bytes:
    ok, data = cv2.imencode(".jpg", FramePainter("A01", "overview", (320, 180)).paint(7, 1_796_457_600.0))
    assert ok
    return bytes(data.tobytes())


def report(checked_at: str, camera_ok: bool) -> Report:
    checks = (
        Check("device:A01/bench", "device", "A01 bench (lv-bench) answers as its profile", True,
              "identity LV-BENCH-2; 100 polls in 10 s, 0 errors", station="A01", subject="bench",
              figures={"errors": 0}),
        Check("camera:A01/overview", "camera", "A01 camera overview delivers its declared stream", camera_ok,
              "h264 1920x1080 at 25.0 fps" if camera_ok else "no frame within 10 s from rtsp://192.0.2.7/main",
              fix=None if camera_ok else "check the camera's power and network cable", station="A01",
              subject="overview"),
        Check("uplink", "uplink", "uplink round trip", True, "signed receipt (stored) in 12 ms",
              figures={"round_trip_ms": 12.0}),
    )
    return Report("GD-SZ-0101", "示例考点", "广东", checked_at, "0.1.0", checks, {"A01/overview": jpeg()})


def test_before_any_run_the_page_says_how_to_make_one(client_for: Client) -> None:
    c = client_for("admin1")
    page = c.get("/site-check")
    assert page.status_code == 200 and 'id="no-report"' in page.text
    assert "还没有验收检查报告" in page.text and "examstation site-check --config FILE" in page.text
    assert c.get("/site-check/report.html", headers={"accept": "text/html"}).status_code == 404


def test_the_latest_report_with_its_failure_fix_and_snapshot(client_for: Client, ui_ctx: UiContext) -> None:
    save_report(report("2026-12-04T08:00:00Z", camera_ok=True), ui_ctx.data_dir)
    save_report(report("2026-12-05T08:00:00Z", camera_ok=False), ui_ctx.data_dir)
    c = client_for("exam2")
    page = c.get("/site-check").text
    assert "2026-12-05T08:00:00Z" in page and "2026-12-04T08:00:00Z" not in page, "the newest report"
    verdict = page.split('id="verdict"')[1].split("</div>")[0]
    assert "不通过" in verdict
    problems = page.split('id="problems"')[1].split("</section>")[0]
    assert "no frame within 10 s" in problems and "check the camera&#39;s power and network cable" in problems
    assert "原因" in problems and "处理办法" in problems
    station = page.split('id="station-A01"')[1].split("</section>")[0]
    assert "data:image/jpeg;base64," + base64.b64encode(jpeg()).decode() in station
    assert 'id="site-wide"' in page and "round_trip_ms" in page
    printable = c.get("/site-check/report.html")
    assert printable.status_code == 200 and "验收检查报告" in printable.text and "@media print" in printable.text


def test_in_english(client_for: Client, ui_ctx: UiContext) -> None:
    save_report(report("2026-12-05T08:00:00Z", camera_ok=False), ui_ctx.data_dir)
    c = client_for("admin1")
    c.get("/lang/en")
    page = c.get("/site-check").text
    assert "Problems to fix" in page and "What to do" in page and "Camera" in page
    assert "不通过" not in page


def test_proctors_do_not_read_it_and_the_nav_links_it_for_those_who_do(client_for: Client) -> None:
    assert client_for("proc1").get("/site-check", headers={"accept": "text/html"}).status_code == 403
    assert 'href="/site-check"' not in client_for("proc1").get("/").text
    assert 'href="/site-check"' in client_for("exam1").get("/").text
