"""A button whose answer the page cannot swap in says why, in a real browser (static/session.js):
the controller unreachable, a page older than its session (the server's 403 reason), and the
session ended (the cookie gone, as after 8 h unused or a restart): a message with a link to the
login page that leads back to the station, instead of a button that does nothing or a page that
jumps to the login form by itself."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page, expect, sync_playwright

from tests.e2e.browser import demo_site, launch, sign_in

CHECK_IN = "#station-panel form[hx-post$='/check-in'] button[type=submit]"


@pytest.mark.timeout(180)
def test_failed_buttons_say_what_happened_and_what_to_do(tmp_path: Path) -> None:
    with demo_site(tmp_path) as site, sync_playwright() as p:
        browser = launch(p)
        try:
            context = browser.new_context()
            page = context.new_page()
            sign_in(page, site.url, *site.login_of("examiner", 0), next="/station/A01")
            alert = page.locator("#session-alert")
            expect(alert).to_be_hidden()

            page.route("**/station/A01/check-in", lambda route: route.abort())
            page.locator(CHECK_IN).click()
            expect(alert).to_be_visible(timeout=10_000)
            expect(alert).to_contain_text("无法连接控制器")
            expect(alert.locator(".session-alert-login")).to_be_hidden()
            page.unroute("**/station/A01/check-in")

            page.evaluate("""document.body.setAttribute("hx-headers", '{"X-CSRF-Token": "of-an-older-page"}')""")
            page.locator(CHECK_IN).click()
            expect(alert).to_contain_text("操作被拒绝：页面已过期", timeout=10_000)

            context.clear_cookies()  # the session is gone, as after 8 h unused or a controller restart
            page.locator(CHECK_IN).click()
            expect(alert).to_contain_text("会话已过期，请重新登录", timeout=10_000)
            login = alert.locator(".session-alert-login")
            expect(login).to_be_visible()
            assert login.get_attribute("href") == "/login?next=%2Fstation%2FA01"
            assert page.url.endswith("/station/A01"), "the page stays: the person sees why"
            login.click()
            page.wait_for_url("**/login?next=*", wait_until="domcontentloaded")
            name, password = site.login_of("examiner", 0)
            page.fill("input[name=name]", name)
            page.fill("input[name=password]", password)
            page.click("form.login button[type=submit]")
            page.wait_for_url(f"{site.url}/station/A01", wait_until="domcontentloaded")
            expect(page.locator("#session-alert")).to_be_hidden()
            live_stream_closed_by_the_server(page, context, site.url)
        finally:
            browser.close()


def live_stream_closed_by_the_server(page: Page, context: BrowserContext, url: str) -> None:
    """The hall's live stream answered with an HTTP error (a restarted controller: the browser does
    not reconnect an EventSource after one) comes back by itself while the session lives, and says
    the session ended, with the login link, once it has."""
    status = page.locator("#hall-status")
    refuse = "**/events*"
    page.route(refuse, lambda route: route.fulfill(status=401, body="your session has ended"))
    page.goto(f"{url}/", wait_until="domcontentloaded")
    expect(status).to_contain_text("连接中断", timeout=10_000)
    page.unroute(refuse)
    expect(status).to_have_text("实时", timeout=15_000)  # opened again, not "reconnecting" for ever

    page.route(refuse, lambda route: route.fulfill(status=401, body="your session has ended"))
    page.goto(f"{url}/", wait_until="domcontentloaded")
    context.clear_cookies()
    alert = page.locator("#session-alert")
    expect(alert).to_contain_text("会话已过期，请重新登录", timeout=15_000)
    assert alert.locator(".session-alert-login").get_attribute("href") == "/login?next=%2F"
