"""The demo hall: every station of the site at once, one candidate after another, through one controller.

`examstation demo` (and `make demo`) is this module with the uplink relay attached: each station
plays its rotation of scenarios (station.scenario_runner plays one), the storage watch and the alarm
lines run beside it as in `examstation run`, and every signed result goes to the simulated province.

A demo stopped mid-candidate (Ctrl-C, `--duration`, a crash, a full disk) leaves that candidate's
attempt open in the data directory, as a real controller would. A real examiner closes such an
attempt; so does the demo's, when it starts again on the same data: each item still open or never
taken is ended `interrupted` (a re-sit, no score), the attempt is signed and sent, and the console
says which. Without that, the next demo would refuse every station ("already has an attempt in
progress").
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Collection, Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devices.clock import ScaledClock
from hardware_sim.scenarios import SCENARIOS, Context, Scenario
from hardware_sim.site import SimSite
from scoring.timeline import EndReason
from station import session as sm
from station.config import SiteConfig, Station
from station.controller import print_alarms
from station.db import open_database
from station.demo_desk import DeskRig, HumanDesk
from station.device_hub import DeviceHub
from station.events import AlarmEvent
from station.recording import Recording
from station.scenario_runner import (
    DEMO_EXAMINERS,
    DEMO_INVIGILATOR,
    SETTLE_REAL_S,
    candidate_id,
    end_item,
    watch_candidate,
)
from station.services import StationServices
from station.signing import SiteKey
from station.status_feed import StatusFeed
from station.stored import ensure_database

HALL_SCALE = 20.0
"""Exam time in the demo hall runs this much faster (the hall scenarios are written for it)."""
LEFT_OPEN_REASON = "closing an attempt an earlier demo left open"
"""The demo examiner's reason for starting an item never taken, only to end it interrupted."""


@dataclass(frozen=True, slots=True)
class HallResult:
    station: str
    scenario: str
    attempt_id: str
    expected: tuple[float, str]
    got: tuple[float, str]


Attach = Callable[[StationServices, DeviceHub, SiteConfig], contextlib.AbstractAsyncContextManager[Any]]
"""What else runs beside the hall while it plays (the demo's uplink relay, status lines and UI); the
third argument is the site as the simulator resolved it (its cameras' URLs, for the live views)."""
DESK_SCENARIOS = ("cpr-too-shallow", "k22-no-meter-check", "k23-no-meter-check", "weld-k11-two-missing",
                  "weld-k21-travel-too-fast", "weld-k41-cpr-correct")
"""The candidate a person examines at a desk station plays these when the item starts (only the
scenarios written for the hall's exam time, each with an automatic deduction to watch where there is
one); an item not listed is done by a candidate who stands still."""


def hall_rotation(station: Station) -> list[Scenario]:
    """The demo hall's candidates: CPR at the electrician stations, welding at the welding booths;
    each station starts at another point of its list, so the hall shows different things at once."""
    electrician = ["cpr-correct", "cpr-too-shallow", "cpr-poor-recoil", "cpr-too-fast"]
    welding = ["weld-k21-good-run", "weld-k11-two-missing", "weld-k21-travel-too-fast", "weld-k11-complete-ppe"]
    names = electrician if station.operation == "低压电工作业" else welding
    offset = int(station.id[1:]) % len(names)
    return [SCENARIOS[n] for n in names[offset:] + names[:offset]]


async def play_hall(config: SiteConfig, data_dir: Path, duration_s: float, scale: float,
                    pick: Callable[[Station], Sequence[Scenario]], attach: Attach | None = None,
                    desks: Collection[str] = ()) -> list[HallResult]:
    """Every station of the site at once, one controller: each station plays its scenarios in turn
    (one candidate after another) until `duration_s` of real time has passed. The stations in
    `desks` are left to a person at the UI (station.demo_desk): only their candidates are played."""
    clock = ScaledClock(scale)
    results: list[HallResult] = []
    with open_database(ensure_database(data_dir)) as db:
        services = StationServices(config, db, SiteKey.load_or_create(data_dir), clock)
        try:
            async with contextlib.AsyncExitStack() as stack:
                feed = await stack.enter_async_context(StatusFeed(services.device_status))
                site = await stack.enter_async_context(
                    SimSite(config, cameras=True, device_clock=clock.seconds, time_scale=scale))
                recording = await stack.enter_async_context(Recording(services, data_dir, site.resolved_config()))
                hub = await stack.enter_async_context(
                    DeviceHub(site.resolved_config(), services.record_sample, feed, services.clock,
                              services.record_value_fault, poll_thread=True))
                async with asyncio.timeout(15):
                    while not all(s.online for s in hub.status()):  # noqa: ASYNC110 - polling device health
                        await asyncio.sleep(0.05)
                for line in await asyncio.to_thread(close_left_open, services):
                    print(f"examstation demo: {line}", flush=True)
                if attach is not None:
                    await stack.enter_async_context(attach(services, hub, site.resolved_config()))
                end = asyncio.get_running_loop().time() + duration_s
                alarms = services.events.subscribe("alarm lines", maxsize=100, kinds=(AlarmEvent,))
                async with asyncio.TaskGroup() as group:  # one failing stops the hall with its own error
                    helpers = [group.create_task(services.storage.run(), name="storage watch"),
                               group.create_task(recording.run(), name="disk watch and retention"),
                               group.create_task(print_alarms(alarms), name="alarm lines")]
                    helpers += [group.create_task(HumanDesk(station, services, desk_rig(site, station, scale)).run(),
                                                  name=f"desk {station.id}")
                                for station in config.stations if station.id in desks]
                    try:
                        await asyncio.gather(*(
                            group.create_task(_station_loop(station, pick(station), site, services, scale, end,
                                                            results), name=f"hall {station.id}")
                            for station in config.stations if station.id not in desks))
                        await asyncio.sleep(max(0.0, end - asyncio.get_running_loop().time()))  # desks only
                    finally:
                        for task in helpers:
                            task.cancel()
        finally:
            try:
                services.close()
            finally:
                for station, attempt_id in [*sorted(services.active_attempts().items()),
                                            *services.awaiting_sign_off()]:
                    print(f"examstation demo: attempt {attempt_id} at {station} is left "
                          f"{services.attempt(attempt_id).state.value}; the next demo on this data closes it",
                          flush=True)
    return results


async def _station_loop(station: Station, scenarios: Sequence[Scenario], site: SimSite, services: StationServices,
                        scale: float, end: float, results: list[HallResult]) -> None:
    loop = asyncio.get_running_loop()
    n = 0
    while loop.time() < end:
        sc = scenarios[n % len(scenarios)]
        n += 1
        id_number = candidate_id(station.id, n)
        await asyncio.to_thread(services.register_candidate, id_number, f"考生{station.id}-{n}", sc.operation,
                                "HALL-2026-11")
        attempt_id = await asyncio.to_thread(services.check_in, id_number, station.id, DEMO_INVIGILATOR)
        subject = services.rubric(sc.operation).item(sc.item).subject
        await asyncio.to_thread(services.assign, attempt_id, {subject: sc.item}, "rehearsal")
        ctx = Context(site, station.id, scale)
        await ctx.restore_rig()  # the examiner readies the station between candidates
        if sc.setup:
            sc.setup(ctx)
        await asyncio.sleep(SETTLE_REAL_S)
        await asyncio.to_thread(services.start_item, attempt_id, sc.item, DEMO_EXAMINERS[0])
        candidate = asyncio.create_task(sc.play(ctx), name=f"{station.id} {sc.name}")
        await watch_candidate(candidate, sc, services, attempt_id)
        await asyncio.sleep(SETTLE_REAL_S)
        if services.attempt(attempt_id).state in (sm.State.RUNNING, sm.State.PAUSED):
            await end_item(services, attempt_id, sc)
        sheet = await asyncio.to_thread(services.score, attempt_id)
        item = sheet.item(sc.item)
        results.append(HallResult(station.id, sc.name, attempt_id, (sc.expected_item_score, sc.expected_outcome),
                                  (item.score, item.outcome)))
        await asyncio.to_thread(sign, services, attempt_id)


def desk_rig(site: SimSite, station: Station, scale: float) -> DeskRig:
    """The simulator's side of a desk station: its ID card reader, its rig, its candidate's scenarios."""
    ctx = Context(site, station.id, scale)
    readers = [reader for (at, _), reader in site.id_readers.items() if at == station.id]
    if not readers:
        raise ValueError(f"station {station.id} has no ID card reader; a desk station needs one for check-in")

    async def present_card(id_number: str, name: str) -> None:
        await readers[0].present(id_number, name)

    def candidate_plays(item: str) -> Coroutine[Any, Any, None] | None:
        found = [SCENARIOS[n] for n in DESK_SCENARIOS
                 if SCENARIOS[n].item == item and SCENARIOS[n].operation == station.operation]
        if not found:
            return None
        sc = found[0]
        if sc.setup:
            sc.setup(ctx)
        return sc.play(ctx)

    def next_candidate(n: int) -> tuple[str, str]:
        return candidate_id(station.id, n), f"考生{station.id}-{n}"

    return DeskRig(present_card, ctx.restore_rig, candidate_plays, next_candidate)


def sign(services: StationServices, attempt_id: str, wait_for_video: bool = True) -> None:
    """The demo's examiners review a scored attempt, the candidate signs each item, both sign."""
    a = services.attempt(attempt_id)
    if a.state == sm.State.SCORED:
        services.review(attempt_id, DEMO_EXAMINERS[0])
    for it in services.attempt(attempt_id).items:
        if not it.candidate_decision and it.started_ns is not None:  # an item not taken has no sheet to sign
            services.candidate_decision(attempt_id, it.code, True)
    for examiner in DEMO_EXAMINERS:
        if examiner not in services.attempt(attempt_id).examiner_signatures:  # a stop may fall between the two
            services.examiner_sign(attempt_id, examiner, wait_for_video)


def close_left_open(services: StationServices) -> list[str]:
    """Close every attempt an earlier run left open, as the demo's examiner: one line each to print."""
    lines = []
    left = [*sorted(services.active_attempts().items()), *services.awaiting_sign_off()]
    for station, attempt_id in left:
        was = services.attempt(attempt_id).state
        if was == sm.State.RUNNING:
            services.pause(attempt_id, "controller restarted", "exam-system")
        if was == sm.State.CHECKED_IN:  # no items drawn yet: draw them as the hall would
            services.draw(attempt_id, seed=0)
        ended: list[str] = []
        while (a := services.attempt(attempt_id)).state in (sm.State.RUNNING, sm.State.PAUSED, sm.State.ITEM_DRAWN):
            if a.state == sm.State.ITEM_DRAWN:
                code = next(it.code for it in a.items if it.started_ns is None)
                services.start_item(attempt_id, code, DEMO_EXAMINERS[0], start_anyway=LEFT_OPEN_REASON)
            running = services.attempt(attempt_id).running_item
            assert running is not None
            services.end_item(attempt_id, EndReason.INTERRUPTED, DEMO_EXAMINERS[0])
            ended.append(running.code)
        if services.attempt(attempt_id).state == sm.State.ENDED:
            services.score(attempt_id)
        if services.attempt(attempt_id).state in (sm.State.SCORED, sm.State.REVIEWED):
            sign(services, attempt_id, wait_for_video=False)  # it ended when the earlier run stopped
        what = f"ended {', '.join(ended)} interrupted (a re-sit, no score), " if ended else ""
        lines.append(f"attempt {attempt_id} at {station} was left {was.value} by an earlier run; the demo examiner "
                     f"{what}signed it and it is sent to the province")
    return lines
