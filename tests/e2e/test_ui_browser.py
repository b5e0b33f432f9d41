"""The proctor and examiner UI in a real browser: Debian's chromium (Playwright) against `examstation
demo` started as a person starts it (its own process, a free port, a temporary data directory).

- A proctor sees every hall tile's picture change between two screenshots 2 s apart (the tiles
  relay each camera's live sub-stream), and the CPR report and welding traces of finished attempts.
- An examiner at the desk station A01 checks the candidate in by the ID card on the reader, starts
  the CPR item, watches the scenario's automatic deduction appear live, adds a manual mark, ends,
  reviews, jumps the player to a deduction, signs (both examiners: the site requires two), and sees
  the result delivered to the simulated province.

Screenshots go to docs/screenshots/ with EXAMSTATION_SCREENSHOTS=1 (else under the test's tmp).
"""

from __future__ import annotations

import re
import sqlite3
import time
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.e2e.browser import DemoSite, demo_site, launch, png_pixels, screenshot_dir, sign_in

VIEW = {"width": 1600, "height": 1000}
TILE_VIDEO = "[data-station] img[data-live-ws]"
"""A hall tile's live picture: the station's camera sub-stream as multipart MJPEG."""


@pytest.mark.timeout(240)
def test_proctor_sees_every_tile_change_and_the_reports(tmp_path: Path) -> None:
    shots = screenshot_dir(tmp_path)
    with demo_site(tmp_path) as site, sync_playwright() as p:
        browser = launch(p)
        try:
            page = browser.new_page(viewport=VIEW)
            sign_in(page, site.url, *site.login_of("proctor"))  # lands on the hall
            tiles = page.locator(TILE_VIDEO)
            expect(tiles).to_have_count(6, timeout=15_000)  # one per station of examples/site.yaml
            for i in range(tiles.count()):
                tiles.nth(i).scroll_into_view_if_needed()  # the tiles load lazily
            page.evaluate("window.scrollTo(0, 0)")
            page.wait_for_function(
                f"[...document.querySelectorAll({TILE_VIDEO!r})].every(i => i.naturalWidth > 0)", timeout=20_000)
            # the live stream connected beside six live tiles (each tile's picture has its own WebSocket,
            # so the browser's six HTTP connections to the server stay free for SSE and links)
            expect(page.locator("#hall-status.ok")).to_have_count(1, timeout=10_000)
            time.sleep(1.0)  # a few frames in, and the first state events on every tile
            before = [png_pixels(tiles.nth(i).screenshot()) for i in range(tiles.count())]
            page.evaluate("window.scrollTo(0, 0)")
            page.screenshot(path=shots / "hall.png")
            time.sleep(2.0)
            after = [png_pixels(tiles.nth(i).screenshot()) for i in range(tiles.count())]
            still = [page.locator("[data-station]").nth(i).get_attribute("data-station")
                     for i in range(len(before)) if before[i] == after[i]]
            assert not still, f"these tiles' pictures did not change in 2 s: {still}"
            # a welding booth (W01) has two cameras: its tile switches to the booth's, over a new socket
            w01 = page.locator("#tile-W01")
            booth = w01.locator(".cam-switch button[data-cam='booth']")
            booth.click()
            expect(booth).to_have_attribute("aria-pressed", "true")
            expect(w01.locator(".cam-switch button[data-cam='overview']")).to_have_attribute("aria-pressed", "false")
            picture = w01.locator("img[data-live-ws]")
            expect(picture).to_have_attribute("data-live-ws", "/live/W01/booth/jpeg")
            expect(picture).to_have_attribute("alt", re.compile(r"W01/booth$"))
            shown = picture.get_attribute("src")
            page.wait_for_function("(s) => document.querySelector('#tile-W01 img[data-live-ws]').src !== s",
                                   arg=shown, timeout=5_000)  # the booth's frames arrive

            # the reports in a second window, as a proctor keeps the hall open on one screen
            reports = browser.new_context(viewport=VIEW).new_page()
            sign_in(reports, site.url, *site.login_of("proctor"), next="/results")
            cpr, weld = _finished_attempts(site, timeout_s=90)
            for path, name in ((f"/attempt/{cpr}/cpr", "cpr-report.png"), (f"/attempt/{weld}/weld", "weld-traces.png")):
                reports.goto(f"{site.url}{path}", wait_until="domcontentloaded")
                reports.wait_for_selector("body[data-charts-ready]", state="attached", timeout=20_000)
                assert reports.locator("[data-chart] canvas").count() >= 1
                time.sleep(1.0)  # ECharts' entry animation
                reports.screenshot(path=shots / name)
        finally:
            browser.close()


def _finished_attempts(site: DemoSite, timeout_s: float) -> tuple[str, str]:
    """A signed CPR attempt (K42 at A03) and a signed welding run (K21 at a booth)
    the demo hall has finished, read from its database (read-only, beside the running demo)."""
    deadline = time.monotonic() + timeout_s
    while True:
        db = sqlite3.connect(f"file:{site.data_dir / 'examstation.sqlite3'}?mode=ro", uri=True)
        try:
            rows = db.execute("SELECT attempt_id, station, drawn_items FROM attempts "
                              "WHERE state IN ('signed', 'queued', 'delivered') ORDER BY created_utc_ns").fetchall()
        finally:
            db.close()
        # A03's first candidate compresses too fast (hall_rotation): the rate chart shows red dots
        cpr = [a for a, st, items in rows if st == "A03" and "K42" in items]
        weld = [a for a, st, items in rows if st.startswith("W") and "K21" in items]
        if cpr and weld:
            return cpr[-1], weld[-1]
        if time.monotonic() > deadline:
            raise AssertionError(f"no finished CPR and welding attempts within {timeout_s:g} s: {rows}\n"
                                 f"{site.console()}")
        time.sleep(1.0)


@pytest.mark.timeout(300)
def test_an_examiner_checks_in_runs_reviews_and_signs_at_the_desk(tmp_path: Path) -> None:
    shots = screenshot_dir(tmp_path)
    with demo_site(tmp_path) as site, sync_playwright() as p:
        browser = launch(p)
        try:
            page = browser.new_page(viewport=VIEW)
            sign_in(page, site.url, *site.login_of("examiner", 0), next="/station/A01")
            attempt_id = _check_in_by_card(page)
            _start_cpr(page)
            # the candidate tires in the 5th set of compressions: the depth deduction (K42-5c) appears
            # live, without a reload, as the scenario plays
            expect(page.locator("#live-deductions")).to_contain_text("K42-5", timeout=45_000)
            time.sleep(3.0)  # the candidate finishes the last cycle
            page.evaluate("window.scrollTo(0, 0)")
            page.screenshot(path=shots / "station.png")
            page.locator("#station-panel form[hx-post$='/end'] button[type=submit]").click()
            expect(page.locator("#panel")).not_to_have_attribute("data-state", "running", timeout=15_000)
            page.goto(f"{site.url}/attempt/{attempt_id}/review", wait_until="domcontentloaded")
            if page.locator(".review[data-state='ended']").count():
                page.locator("form[hx-post$='/score'] button").click()
            _manual_mark(page)
            _jump_to_deduction(page)
            time.sleep(1.0)  # the player has scrolled into view and shows the deduction's moment
            page.screenshot(path=shots / "review.png")
            _sign(page, site, attempt_id, browser)
        finally:
            browser.close()


def _check_in_by_card(page: Page) -> str:
    """The candidate's card lies on A01's reader: the read shows live, the examiner checks them in."""
    live = page.locator("#idcard-live")
    expect(live).to_contain_text("考生A01-1", timeout=20_000)
    number = page.locator("#id-number")
    if not number.input_value():
        number.fill(live.inner_text().split()[-1])
    page.select_option("#station-panel select[name=method]", "id_card_reader")
    page.locator("#station-panel form[hx-post$='/check-in'] button[type=submit]").click()
    panel = page.locator("#panel[data-state='checked_in']")
    expect(panel).to_be_attached(timeout=15_000)
    found = panel.get_attribute("data-attempt")
    assert found
    return found


def _start_cpr(page: Page) -> None:
    """Assign the CPR item (K42) and start it once the rig is at rest (the desk readies it)."""
    page.select_option("#station-panel select[name=item_K4]", "K42")
    page.locator("#station-panel form[hx-post$='/assign'] button[type=submit]").click()
    start = page.locator("#station-panel form[hx-post$='/start'] button[type=submit]")
    expect(start).to_be_visible(timeout=15_000)
    for _ in range(20):
        if page.locator("#station-panel form[hx-post$='/start'] .ok").count():
            break
        time.sleep(0.5)
        page.reload(wait_until="domcontentloaded")
    page.locator("#station-panel form[hx-post$='/start'] button[type=submit]").click()
    expect(page.locator("#panel")).to_have_attribute("data-state", "running", timeout=15_000)


def _manual_mark(page: Page) -> None:
    """A manual row of the rubric: the form lists the item's manual rows."""
    form = page.locator("form.mark-form").first
    expect(form).to_be_visible(timeout=15_000)
    form.locator("select[name=code]").select_option(index=0)
    form.locator("button[type=submit]").click()
    expect(page.locator("li.line-manual").first).to_be_visible(timeout=10_000)


def _jump_to_deduction(page: Page) -> None:
    """An automatic deduction's video button seeks the evidence player to its offset."""
    button = page.locator("ul.lines li button.video-jump").first
    expect(button).to_be_visible(timeout=15_000)
    offset = float(button.get_attribute("data-offset") or "nan")
    button.click()
    page.wait_for_function("() => { const v = document.getElementById('review-video'); "
                           "return v.readyState >= 1 && Math.abs(v.currentTime - Number(v.dataset.offset)) < 1.5; }",
                           timeout=20_000)
    got = page.evaluate("document.getElementById('review-video').currentTime")
    assert abs(got - offset) < 1.5, (got, offset)


def _sign(page: Page, site: DemoSite, attempt_id: str, browser: Browser) -> None:
    """Review done, the candidate signs, both examiners sign; the result reaches the simulated province."""
    page.locator("form[hx-post$='/reviewed'] button").click()
    expect(page.locator(".review[data-state='reviewed']")).to_be_attached(timeout=10_000)
    candidate = page.locator("form[hx-post$='/candidate'] button[value=signed]")
    expect(candidate).to_have_count(1, timeout=10_000)  # one item: K42
    candidate.click()
    expect(candidate).to_have_count(0, timeout=10_000)
    sign = page.locator("form[hx-post$='/sign'] button")
    expect(sign).to_be_visible(timeout=10_000)
    sign.click()
    expect(page.get_by_text("需另一位考评员签字")).to_be_visible(timeout=60_000)
    second = browser.new_context(viewport=VIEW).new_page()  # another person, another browser
    sign_in(second, site.url, *site.login_of("examiner", 1), next=f"/attempt/{attempt_id}/review")
    second.locator("form[hx-post$='/sign'] button").click()
    expect(second.locator("#delivery .ok")).to_be_visible(timeout=60_000)
