"""The printable site-check report, rendered in Debian's chromium (Playwright, no download).

A realistic report (a hall of two stations, one camera frame per station painted by the camera
simulator and JPEG-encoded as the camera probe keeps it, one failure) is written as a file and
opened from disk: the verdict is at the top, the failure shows its reason and fix, each station
shows its snapshot decoded by the browser, nothing is fetched from anywhere, and it prints (PDF).
The screenshot goes to docs/screenshots/site-check-report.png with EXAMSTATION_SCREENSHOTS=1.
"""

from __future__ import annotations

from pathlib import Path

import cv2
from playwright.sync_api import sync_playwright

from hardware_sim.frame_painter import FramePainter
from station.site_check.html_report import render_html, report_view, write_html
from station.site_check.report import Check, Report
from tests.e2e.browser import launch, screenshot_dir

T = 1_796_457_600.0  # 2026-12-05T08:00:00Z


def snapshot(station: str, camera: str) -> bytes:
    frame = FramePainter(station, camera, (640, 360)).paint(250, T)
    ok, jpeg = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 80])
    assert ok
    return bytes(jpeg.tobytes())


def hall_report() -> Report:
    ok = True
    checks = [
        Check("station:A01/lv-electrician", "station", "A01 (低压电工作业) holds what its operation needs", ok,
              "wiring bench, ID-card reader, 1 camera", station="A01", subject="lv-electrician",
              source="AQ 8001 附录 A 设备清单"),
        Check("device:A01/bench", "device", "A01 bench (lv-bench) answers as its profile", ok,
              "identity LV-BENCH-2 at unit 1; 100 polls in 10 s, 0 errors", station="A01", subject="bench",
              figures={"polls": 100, "errors": 0, "poll_interval_ms": 100}),
        Check("camera:A01/overview", "camera", "A01 camera overview delivers its declared stream", ok,
              "h264 1920x1080 at 25.0 fps, keyframe every 2.0 s", station="A01", subject="overview",
              figures={"fps": 25.0, "keyframe_interval_s": 2.0}),
        Check("device:W01/weldsim", "device", "W01 weldsim (weld-sim) answers as its profile", ok,
              "identity WS-300 at unit 3; 50 polls in 10 s, 0 errors", station="W01", subject="weldsim",
              figures={"polls": 50, "errors": 0}),
        Check("camera:W01/overview", "camera", "W01 camera overview delivers its declared stream", False,
              "the picture is frozen: 250 frames in 10 s, all identical since 07:59:52",
              fix="the camera sends but its image stopped: restart the camera (power off and on), then check its "
                  "firmware; if it repeats, replace it", station="W01", subject="overview",
              figures={"fps": 25.0, "frozen_s": 8.0}),
        Check("clock", "clock", "clock against ntp.gd.example", ok, "offset +0.012 s (limit 1.0 s)",
              figures={"offset_s": 0.012}),
        Check("disk", "disk", "free space for 3 years of evidence", ok, "3.1 TB free, 3 years need 2.4 TB",
              figures={"free_gb": 3100.0, "need_gb": 2400.0}),
        Check("database", "database", "database mode and audit chain", ok,
              "WAL, synchronous FULL; 1 204 entries verify"),
        Check("key", "key", "site signing key", ok, "ed25519:3f0c1a9e77b2d410 present"),
        Check("uplink", "uplink", "uplink round trip: signed probe to the province, signed receipt back", ok,
              "mqtts://exam-mqtt.gd.example:8883: signed receipt (stored) in 38 ms, key ed25519:3f0c1a9e77b2d410 "
              "verified by the province", figures={"round_trip_ms": 38.2}),
    ]
    return Report("GD-SZ-0101", "深圳市第一职业技能鉴定考点", "广东", "2026-12-05T08:00:00Z", "0.1.0", tuple(checks),
                  {"A01/overview": snapshot("A01", "overview"), "W01/overview": snapshot("W01", "overview")})


def test_the_view_groups_by_station_and_lists_failures_first() -> None:
    view = report_view(hall_report())
    assert [s.station for s in view.stations] == ["A01", "W01"]
    assert [c.id for c in view.failures] == ["camera:W01/overview"]
    assert [c.id for c in view.site_wide] == ["clock", "disk", "database", "key", "uplink"]
    assert [(s.category, s.passed, s.failed) for s in view.summary][:3] == [
        ("station", 1, 0), ("device", 2, 0), ("camera", 1, 1)]
    assert [len(s.snapshots) for s in view.stations] == [1, 1]


def test_text_from_the_site_is_escaped() -> None:
    bad = Check("device:A01/bench", "device", "A01 <b>bench</b>", False, "<script>alert(1)</script>",
                fix="<img src=x onerror=alert(1)>", station="A01", subject="bench")
    html = render_html(Report("S1", "考点", "广东", "2026-12-05T08:00:00Z", "0.1.0", (bad,)))
    assert "<script>alert" not in html and "&lt;script&gt;" in html and "<img src=x" not in html


def test_the_report_renders_in_chromium(tmp_path: Path) -> None:
    report = hall_report()
    out = tmp_path / "site-check.html"
    write_html(report, out)
    requests: list[str] = []
    with sync_playwright() as p:
        browser = launch(p)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            page.on("request", lambda r: requests.append(r.url))
            page.goto(out.as_uri(), wait_until="load")
            verdict = page.locator(".verdict")
            assert verdict.inner_text().startswith("不通过")
            assert verdict.bounding_box()["y"] < 200  # type: ignore[index]
            problem = page.locator(".problems li")
            assert problem.count() == 1
            assert "原因" in problem.inner_text() and "frozen" in problem.inner_text()
            assert "处理办法" in problem.inner_text() and "restart the camera" in problem.inner_text()
            assert page.locator("#station-W01 tr.fail .fix").inner_text().startswith("处理办法")
            widths = page.eval_on_selector_all("figure img", "imgs => imgs.map(i => i.complete ? i.naturalWidth : 0)")
            assert widths == [640, 640], "each station's snapshot decodes"
            assert page.locator("section.site-wide tr").count() == 6  # header + clock, disk, database, key, uplink
            assert page.locator("table.summary").inner_text().count("\n") >= 8
            shots = screenshot_dir(tmp_path)
            page.screenshot(path=str(shots / "site-check-report.png"), full_page=True)
            page.emulate_media(media="print")
            assert page.pdf(format="A4")[:5] == b"%PDF-"
        finally:
            browser.close()
    assert all(u.startswith(("file:", "data:")) for u in requests), f"the report fetched {requests}"
