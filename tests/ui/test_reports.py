"""The CPR report and the welding traces, for attempts the real scenarios played through the controller.

The scenarios play on the simulated site (SimSite, real sockets) through the production device hub
and services into one data directory, once for this module; each test then serves the UI over that
database. The figures are checked against what each scenario says its candidate did: cpr-correct
keeps every compression in the band, cpr-too-shallow's 5th set of 30 is 45 mm deep (so 120 of 150
compressions, 80 %, are deep enough), weld-k21-travel-too-fast travels at 7 mm/s through the whole
arc (outside 2-5 mm/s all the time) while every other parameter stays in its band.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from proctor_ui.app import asgi, create_app
from proctor_ui.context import UiContext
from proctor_ui.server import serving
from station.db import database_path, open_database
from station.scenario_runner import play_candidates, scenario_named
from station.services import StationServices
from station.signing import SiteKey
from station.users import UserBook
from tests.integration.conftest import ManualClock
from tests.ui.conftest import CONFIG, PASSWORD, USERS, login


@dataclass(frozen=True, slots=True)
class Played:
    data_dir: Path
    correct: str
    shallow: str
    weld: str


@pytest.fixture(scope="module")
def played(tmp_path_factory: pytest.TempPathFactory) -> Played:
    """cpr-correct and cpr-too-shallow at the electrician's CPR station, weld-k21-travel-too-fast at a
    welding station, all in one data directory, with the usual users of each role."""
    data_dir = tmp_path_factory.mktemp("played")

    async def play() -> list[str]:
        cpr = await play_candidates([[scenario_named("cpr-correct")], [scenario_named("cpr-too-shallow")]],
                                    CONFIG, data_dir)
        weld = await play_candidates([[scenario_named("weld-k21-travel-too-fast")]], CONFIG, data_dir)
        return [r.attempt_id for r in (*cpr, *weld)]

    correct, shallow, weld = asyncio.run(play())
    with open_database(database_path(data_dir)) as db:
        users = UserBook(db, ManualClock(), [s.id for s in CONFIG.stations])
        for name, (role, stations) in USERS.items():
            users.add(name, role, PASSWORD, stations)
    return Played(data_dir, correct, shallow, weld)


@pytest.fixture
def played_ctx(played: Played) -> Iterator[UiContext]:
    """The UI's context over the played data directory (as `examstation run` would open it)."""
    clock = ManualClock()
    with open_database(database_path(played.data_dir)) as db:
        services = StationServices(CONFIG, db, SiteKey.load_or_create(played.data_dir), clock)
        try:
            yield UiContext(services=services, users=UserBook(db, clock, [s.id for s in CONFIG.stations]),
                            data_dir=played.data_dir)
        finally:
            services.close()


@pytest.fixture
def signed_in(played_ctx: UiContext) -> Iterator[Callable[[str | None], TestClient]]:
    """`signed_in(name)`: an HTTPS test client over the played data, signed in as `name` (None: not)."""
    app = create_app(played_ctx)
    clients: list[TestClient] = []

    def make(name: str | None) -> TestClient:
        c = TestClient(asgi(app), base_url="https://testserver")
        c.__enter__()
        clients.append(c)
        if name is not None:
            c.headers["X-CSRF-Token"] = login(c, name)
        return c

    yield make
    for c in clients:
        c.__exit__(None, None, None)


PAGE = {"accept": "text/html"}


def embedded(html: str) -> dict[str, object]:
    found = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', html, re.S)
    assert found, "the page embeds no report data"
    data: dict[str, object] = json.loads(found.group(1))
    return data


def test_cpr_correct_keeps_every_compression_in_the_rubric_bands(played: Played, signed_in: Callable[..., TestClient]
                                                                ) -> None:
    r = signed_in("proc1").get(f"/attempt/{played.correct}/cpr.json")
    assert r.status_code == 200, r.text
    item = r.json()["items"][0]
    assert item["item"] == "K42"
    # the bands are the rubric's (K42-5c depth >= 50 mm, no upper limit; K42-10a 100-120/min; K42-8a 500-600 ml)
    assert item["bands"]["depth_mm"] == {"low": 50.0, "high": None, "deduction": "K42-5c"}
    assert item["bands"]["rate_per_min"] == {"low": 100.0, "high": 120.0, "deduction": "K42-10a"}
    assert item["bands"]["volume_ml"] == {"low": 500.0, "high": 600.0, "deduction": "K42-8a"}
    s = item["summary"]
    assert s["compressions"] == 150 and s["cycles"] == 5 == s["cycles_required"]
    assert s["depth_in_range_pct"] == s["rate_in_range_pct"] == s["recoil_pct"] == s["hand_ok_pct"] == 100.0
    assert 100 <= s["mean_rate_per_min"] <= 120 and s["mean_depth_mm"] >= 50
    assert s["breaths"] == s["breaths_ok"] == s["breaths_expected"] == 10
    assert 0 < s["hands_off_s"] < 60 and 50 < s["compression_fraction_pct"] < 100
    assert [st["compressions"] for st in item["sets"]] == [30] * 5
    assert all(st["duration_ok"] and st["breaths_after"] == 2 for st in item["sets"])
    assert [b["after_set"] for b in item["breaths"]] == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]


def test_cpr_too_shallow_shows_the_shallow_set(played: Played, signed_in: Callable[..., TestClient]) -> None:
    item = signed_in("exam2").get(f"/attempt/{played.shallow}/cpr.json").json()["items"][0]
    s = item["summary"]
    assert s["depth_in_range_pct"] == 80.0, s  # the 5th set of 30 (of 150) at 45 mm
    assert s["rate_in_range_pct"] == 100.0 and s["cycles"] == 5
    shallow = [c for c in item["compressions"] if c["depth_ok"] is False]
    assert len(shallow) == 30 and {c["set"] for c in shallow} == {5} and {c["depth_mm"] for c in shallow} == {45.0}
    assert item["sets"][4]["mean_depth_mm"] == 45.0


def test_the_cpr_page_renders_figures_charts_and_its_data(played: Played, signed_in: Callable[..., TestClient]
                                                         ) -> None:
    r = signed_in("exam1").get(f"/attempt/{played.shallow}/cpr", headers=PAGE)
    assert r.status_code == 200, r.text
    assert "心肺复苏报告" in r.text and "按压深度达标率" in r.text and "80.0%" in r.text
    assert r.text.count('data-chart="cpr-') == 3 and "/static/charts.js" in r.text
    data = embedded(r.text)
    assert data["attempt_id"] == played.shallow
    english = signed_in("exam1")
    english.cookies.set("lang", "en")
    page = english.get(f"/attempt/{played.shallow}/cpr", headers=PAGE).text
    assert "CPR report" in page and "按压深度达标率" not in page


def test_weld_traces_show_the_travel_speed_outside_its_band(played: Played, signed_in: Callable[..., TestClient]
                                                           ) -> None:
    r = signed_in("admin1").get(f"/attempt/{played.weld}/weld.json")
    assert r.status_code == 200, r.text
    item = r.json()["items"][0]
    assert item["item"] == "K21"
    by_signal = {p["signal"]: p for p in item["parameters"]}
    speed = by_signal["weldsim.travel_speed_mm_s"]
    assert speed["band"] == {"low": 2.0, "high": 5.0} and speed["deduction"] == "K21-6a"
    assert speed["in_band_pct"] == 0.0 and speed["outside_s"] == speed["gated_s"] > 0
    assert speed["min"] == speed["max"] == 7.0
    assert all(p["in_band_pct"] == 100.0 for name, p in by_signal.items() if name != "weldsim.travel_speed_mm_s")
    assert set(by_signal) == {"weldsim.position_offset_mm", "weldsim.travel_speed_mm_s", "weldsim.work_angle_deg",
                              "weldsim.travel_angle_deg", "weldsim.ctwd_mm"}
    assert item["summary"]["worst"] == "weldsim.travel_speed_mm_s" and item["summary"]["all_in_band"] == 4
    assert any(g["signal"] == "weld.current_a" and g["unit"] == "A" for g in item["signals"])
    page = signed_in("admin1").get(f"/attempt/{played.weld}/weld", headers=PAGE)
    assert page.status_code == 200 and page.text.count('data-chart="weld-param"') == 5
    assert "焊接速度" in page.text and embedded(page.text)["items"]


@pytest.mark.parametrize(("which", "kind"), [("weld", "cpr"), ("correct", "weld")])
def test_an_attempt_without_that_item_is_404(played: Played, signed_in: Callable[..., TestClient], which: str,
                                             kind: str) -> None:
    client = signed_in("exam1")
    attempt = getattr(played, which)
    r = client.get(f"/attempt/{attempt}/{kind}.json")
    assert r.status_code == 404 and "has no item" in r.json()["detail"]
    assert client.get(f"/attempt/{attempt}/{kind}", headers=PAGE).status_code == 404
    assert client.get(f"/attempt/no-such-attempt/{kind}.json").status_code == 404


def test_reports_need_a_signed_in_user(played: Played, signed_in: Callable[..., TestClient]) -> None:
    anonymous = signed_in(None)
    assert anonymous.get(f"/attempt/{played.correct}/cpr.json").status_code == 401
    r = anonymous.get(f"/attempt/{played.weld}/weld", headers=PAGE, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")


async def test_chromium_draws_every_chart_without_animation(played: Played, played_ctx: UiContext) -> None:
    """The charts are on the canvas as soon as the page has loaded (what a screenshot needs)."""
    from playwright.async_api import async_playwright

    async with serving(create_app(played_ctx), "127.0.0.1", 0) as url, async_playwright() as p:
        browser = await p.chromium.launch(executable_path="/usr/bin/chromium")
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            await page.goto(f"{url}/login")
            await page.fill("input[name=name]", "proc1")
            await page.fill("input[name=password]", PASSWORD)
            await page.click("button[type=submit]")
            await page.wait_for_url(f"{url}/")
            for path, charts in ((f"/attempt/{played.shallow}/cpr", 3), (f"/attempt/{played.weld}/weld", None)):
                await page.goto(f"{url}{path}")
                await page.wait_for_load_state("load")
                ready = await page.get_attribute("body", "data-charts-ready")
                drawn = await page.locator("[data-chart] canvas").count()
                assert ready is not None and int(ready) == drawn > 0, (path, ready, drawn)
                assert charts is None or drawn == charts
        finally:
            await browser.close()
    assert not errors, errors
