"""`examstation demo` for a person: the desk station (A01) waits for a human examiner, the other
stations play on, the UI is served with new passwords at every start.

The first test drives the desk through the station's services exactly where the UI's routes do
(check-in by the ID card the desk keeps on the simulated reader, an item, end, review, signatures):
the item the examiner starts is played by its scenario and scores as that scenario declares, and
the next candidate's card is on the reader afterwards. The second starts the demo as a person
does and signs in with the printed logins in Debian's chromium; a second start replaces them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from hardware_sim.scenarios import SCENARIOS
from scoring.timeline import EndReason
from station import session as sm
from station.config import SiteConfig, load_site_config
from station.demo_hall import hall_rotation, play_hall
from station.device_hub import DeviceHub
from station.errors import ServiceError
from station.scenario_runner import candidate_id, one_station
from station.services import StationServices
from tests.e2e.browser import demo_site, launch, sign_in

CONFIG = load_site_config("examples/site.yaml")
SCALE = 20.0
EXAMINERS = ("考评员张", "考评员李")


async def until(what: str, timeout_s: float, check):  # type: ignore[no-untyped-def]
    """Call `check` (blocking, in a thread) until it returns something true, or fail naming `what`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    last: Exception | None = None
    while loop.time() < deadline:
        try:
            got = await asyncio.to_thread(check)
            if got:
                return got
        except ServiceError as err:
            last = err
        await asyncio.sleep(0.1)
    raise AssertionError(f"{what} within {timeout_s:g} s (last refusal: {last})")


@pytest.mark.timeout(150)
async def test_the_desk_plays_the_item_the_examiner_starts_and_brings_the_next_candidate(tmp_path: Path) -> None:
    site = one_station(CONFIG, CONFIG.station("A01"))
    done: dict[str, object] = {}

    async def examiner(services: StationServices) -> None:
        first = candidate_id("A01", 1)
        attempt_id = await until("the first candidate's card read at A01", 20,
                                 lambda: services.check_in(first, "A01", "监考员王", "id_card_reader"))
        subject = services.rubric("低压电工作业").item("K42").subject
        await asyncio.to_thread(services.assign, attempt_id, {subject: "K42"}, EXAMINERS[0])
        await until("K42 started on a rig at rest", 10, lambda: _started(services, attempt_id, "K42"))
        expected = SCENARIOS["cpr-too-shallow"]
        await until("the candidate's compressions on the timeline", 30,
                    lambda: services.attempt(attempt_id).state == sm.State.RUNNING and _compressions(services,
                                                                                                    attempt_id))
        await asyncio.sleep(12)  # the scenario's 2 minutes of CPR at 20x, then the examiner ends the item
        if services.attempt(attempt_id).state == sm.State.RUNNING:
            await asyncio.to_thread(services.end_item, attempt_id, EndReason.DONE, EXAMINERS[0])
        sheet = await asyncio.to_thread(services.score, attempt_id)
        done["score"] = sheet.item("K42").score
        done["expected"] = expected.expected_item_score
        await asyncio.to_thread(services.review, attempt_id, EXAMINERS[0])
        await asyncio.to_thread(services.candidate_decision, attempt_id, "K42", True)
        for name in EXAMINERS[: services.config.exam.examiners_required]:
            await asyncio.to_thread(services.examiner_sign, attempt_id, name, False)
        second = candidate_id("A01", 2)
        done["next"] = await until("the next candidate's card read at A01", 20,
                                   lambda: services.check_in(second, "A01", "监考员王", "id_card_reader"))

    @contextlib.asynccontextmanager
    async def attach(services: StationServices, hub: DeviceHub, resolved: SiteConfig) -> AsyncIterator[None]:
        task = asyncio.create_task(examiner(services))
        try:
            yield
        finally:
            if not task.done():
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            done["error"] = task.exception() if not task.cancelled() else None

    results = await play_hall(site, tmp_path, duration_s=60, scale=SCALE, pick=hall_rotation, attach=attach,
                              desks=("A01",))
    assert results == []  # the desk station plays no candidate by itself
    assert done.get("error") is None, done
    assert done["score"] == done["expected"], done
    assert done["next"], done


def _started(services: StationServices, attempt_id: str, item: str) -> bool:
    services.start_item(attempt_id, item, EXAMINERS[0])
    return True


def _compressions(services: StationServices, attempt_id: str) -> bool:
    from station.stored import load_timeline

    return any(getattr(r, "signal", "") == "manikin.compression" for r in load_timeline(services.db, attempt_id))


@pytest.mark.timeout(180)
def test_the_demo_prints_its_logins_and_makes_new_passwords_at_every_start(tmp_path: Path) -> None:
    with demo_site(tmp_path) as first:
        console = first.console()
        assert f"proctor UI: {first.url}" in console, console
        for user in first.users:
            assert f"{user['name']}" in console and user["password"] in console, console
        assert {u["role"] for u in first.users} == {"admin", "examiner", "proctor"}
        assert [u["stations"] for u in first.users if u["role"] == "examiner"] == [["A01"], ["A01"]]
        with sync_playwright() as p:
            browser = launch(p)
            try:
                for user in first.users:
                    page = browser.new_page()
                    sign_in(page, first.url, user["name"], user["password"])
                    assert user["name"] in page.inner_text("header .who")
                    page.close()
            finally:
                browser.close()
    old = {u["name"]: u["password"] for u in first.users}
    (tmp_path / "logins.json").unlink()
    with demo_site(tmp_path) as again, sync_playwright() as p:
        assert all(old[u["name"]] != u["password"] for u in again.users)
        browser = launch(p)
        try:
            page = browser.new_page()
            page.goto(f"{again.url}/login")
            name = again.users[1]["name"]
            page.fill("input[name=name]", name)
            page.fill("input[name=password]", old[name])
            page.click("form.login button[type=submit]")
            assert page.locator("p.error").is_visible()  # yesterday's password no longer opens it
            sign_in(page, again.url, name, again.users[1]["password"])
            assert name in page.inner_text("header .who")
        finally:
            browser.close()
