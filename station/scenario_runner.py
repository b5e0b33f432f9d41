"""Play candidate scenarios on the simulated station through the real controller and services.

simulator (the scenario drives it) -> wire -> DeviceHub (production clients) -> StationServices
(session state machine, persisted timeline, scoring, signatures, signed result). The runner plays
the examiner's part the simplest way: check the demo candidate in, assign the scenario's items,
ready the rig (its rest state: bench restored and 复位, cabinet restocked...) and start each item
once every device is online, end it when the candidate is done (after a device gap that needs a
choice: scored with the gap if the scenario's examiner says why, else interrupted; the session
itself ends it at the time limit), score, sign.

`examstation demo --scenario NAME --once --json` and `--exam S1,S2,S3,S4` are this module. Like
station.demo, it may import hardware_sim: it exists to drive the simulator.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from devices.clock import ScaledClock
from devices.serial.id_card_codec import check_digit
from hardware_sim.scenarios import SCENARIOS, Context, Scenario
from hardware_sim.site import SimSite
from scoring.sheet import ItemScore, ScoreSheet
from scoring.timeline import EndReason, Timeline
from station import session as sm
from station.config import SiteConfig, Station
from station.db import open_database
from station.device_hub import DeviceHub
from station.recording import Recording
from station.services import StationServices
from station.signing import SiteKey
from station.status_feed import StatusFeed
from station.stored import ensure_database, load_timeline

SETTLE_REAL_S = 0.4
"""Real time for the first polls to report every device before an item starts, and for the last
change of the candidate to be polled before it ends (several 100 ms poll intervals)."""
TICK_REAL_S = 0.02
DEMO_CANDIDATE = ("110101199001010007", "演示考生", "DEMO-2026-11")
"""Sequence code 000: never one of `candidate_id`'s (1-999), so the demo candidate is nobody else."""
DEMO_EXAMINERS = ("演示考评员甲", "演示考评员乙")
DEMO_INVIGILATOR = "演示监考员"


@dataclass(frozen=True, slots=True)
class ScenarioRun:
    scenarios: tuple[Scenario, ...]
    attempt_id: str
    timeline: Timeline
    sheet: ScoreSheet
    document: dict[str, Any]
    data_dir: Path
    public_pem: str
    """The site key that signed `document` (the data dir may be a temporary one, gone by now)."""

    @property
    def scenario(self) -> Scenario:
        return self.scenarios[0]

    @property
    def item(self) -> ItemScore:
        return self.sheet.item(self.scenario.item)


def station_for(config: SiteConfig, operation: str) -> Station:
    for st in config.stations:
        if st.operation == operation:
            return st
    raise LookupError(f"the site config has no station for {operation}")


def one_station(config: SiteConfig, station: Station) -> SiteConfig:
    """The site reduced to one station and the buses it uses (other stations are not simulated)."""
    buses = {getattr(d, "bus", None) for d in station.devices}
    data = config.model_dump(mode="python")
    data["stations"] = [s for s in data["stations"] if s["id"] == station.id]
    data["buses"] = [b for b in data["buses"] if b["id"] in buses]
    return SiteConfig.model_validate(data)


def scenario_named(name: str) -> Scenario:
    try:
        return SCENARIOS[name]
    except KeyError:
        raise LookupError(f"no scenario named {name!r}; `examstation scenarios` lists them") from None


async def watch_candidate(candidate: asyncio.Task[None], sc: Scenario, services: StationServices,
                          attempt_id: str) -> None:
    """Tick the item clock while the candidate plays; stop the candidate when the session ends the
    item (time up, veto). A script that outlives its item's time limit by a minute is a bug: fail."""
    limit_real_s = services.rubric(sc.operation).item(sc.item).time_limit_s / sc.time_scale + 60
    try:
        async with asyncio.timeout(limit_real_s):
            while not candidate.done():
                await asyncio.to_thread(services.tick)
                if services.attempt(attempt_id).state not in (sm.State.RUNNING, sm.State.PAUSED):
                    candidate.cancel()  # the session ended the item: its time was up, or a veto
                    break
                await asyncio.sleep(TICK_REAL_S)
    except TimeoutError:
        candidate.cancel()
        raise RuntimeError(f"scenario {sc.name} ({attempt_id}) did not finish within {limit_real_s:.0f} s") from None
    finally:
        with contextlib.suppress(asyncio.CancelledError):
            await candidate


async def _play_item(sc: Scenario, ctx: Context, services: StationServices, attempt_id: str,
                     site: SimSite, clock: ScaledClock, restore: bool = True, start_anyway: str = "") -> None:
    clock.set_scale(sc.time_scale)
    site.set_time_scale(sc.time_scale)
    ctx.scale = sc.time_scale
    if restore:
        await ctx.restore_rig()
    if sc.setup:
        sc.setup(ctx)
    await asyncio.sleep(SETTLE_REAL_S)
    await asyncio.to_thread(services.start_item, attempt_id, sc.item, DEMO_EXAMINERS[0], start_anyway)
    candidate = asyncio.create_task(sc.play(ctx), name=f"scenario {sc.name}")
    await watch_candidate(candidate, sc, services, attempt_id)
    if services.attempt(attempt_id).state in (sm.State.RUNNING, sm.State.PAUSED):
        await asyncio.sleep(SETTLE_REAL_S)
        await end_item(services, attempt_id, sc)


async def end_item(services: StationServices, attempt_id: str, sc: Scenario) -> None:
    """The examiner ends the item once the candidate is done. After a device gap that needs a choice
    it is scored with the gap if the scenario's examiner says why, else ended interrupted (a re-sit)."""
    gap = await asyncio.to_thread(services.item_gap, attempt_id)
    if gap and sc.score_with_gap is None:
        await asyncio.to_thread(services.end_item, attempt_id, EndReason.INTERRUPTED, DEMO_EXAMINERS[0])
    else:
        with_gap = sc.score_with_gap or "" if gap else ""
        await asyncio.to_thread(services.end_item, attempt_id, EndReason.DONE, DEMO_EXAMINERS[0], with_gap)


async def play_exam(scenarios: Sequence[Scenario], config: SiteConfig, data_dir: Path | None = None,
                    *, record: bool = False) -> ScenarioRun:
    """One attempt made of `scenarios` (one item each, all of one operation type), signed and stored."""
    return (await play_candidates([scenarios], config, data_dir, record=record))[0]


async def play_candidates(papers: Sequence[Sequence[Scenario]], config: SiteConfig, data_dir: Path | None = None,
                          *, restore: bool = True, start_anyway: str = "", record: bool = False) -> list[ScenarioRun]:
    """Candidates one after another at one station, as a hall works all day: each paper is one
    candidate's attempt (one scenario per item, all of one operation type), signed and stored. The
    examiner readies the rig before each item unless `restore` is false; then an item on a rig not
    at rest starts only with `start_anyway`, the examiner's reason. With `record`, the station's
    simulated cameras are recorded as a site records them (station.recording): each result then lists
    its video, and its signing waits for the post-roll (`demo` does this; scoring tests need not)."""
    operation = papers[0][0].operation
    if any(sc.operation != operation for paper in papers for sc in paper):
        raise ValueError("all scenarios must be of one operation type: they play at one station")
    station = station_for(config, operation)
    site_config = one_station(config, station)
    runs: list[ScenarioRun] = []
    with contextlib.ExitStack() as stack:
        if data_dir is None:
            data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="examstation-rehearsal-")))
        db = stack.enter_context(open_database(ensure_database(data_dir)))
        clock = ScaledClock(papers[0][0].time_scale)
        key = SiteKey.load_or_create(data_dir)
        services = StationServices(site_config, db, key, clock)
        stack.callback(services.close)
        async with StatusFeed(services.device_status) as feed, \
                SimSite(site_config, cameras=record, device_clock=clock.seconds,
                        time_scale=papers[0][0].time_scale) as site, \
                contextlib.AsyncExitStack() as recording:
            ctx = Context(site, station.id, papers[0][0].time_scale)
            if record:
                await recording.enter_async_context(Recording(services, data_dir, site.resolved_config()))
            async with DeviceHub(site.resolved_config(), services.record_sample, feed, services.clock,
                                 services.record_value_fault) as hub:
                async with asyncio.timeout(10):
                    while not all(s.online for s in hub.status()):  # noqa: ASYNC110 - polling device health
                        await asyncio.sleep(0.02)
                for n, paper in enumerate(papers):
                    id_number = DEMO_CANDIDATE[0] if n == 0 else candidate_id(station.id, n)
                    services.register_candidate(id_number, DEMO_CANDIDATE[1], operation, DEMO_CANDIDATE[2])
                    attempt_id = await asyncio.to_thread(services.check_in, id_number, station.id,
                                                         DEMO_INVIGILATOR, "manual")
                    rubric = services.rubric(operation)
                    items = {rubric.item(sc.item).subject: sc.item for sc in paper}
                    if len(items) != len(paper):
                        raise ValueError("one scenario per subject: these scenarios repeat a subject")
                    await asyncio.to_thread(services.assign, attempt_id, items, "rehearsal")
                    for sc in paper:
                        await _play_item(sc, ctx, services, attempt_id, site, clock, restore, start_anyway)
                    await feed.drain()
                    runs.append(await asyncio.to_thread(_sign, services, paper, attempt_id, config, data_dir))
    return runs


def _sign(services: StationServices, paper: Sequence[Scenario], attempt_id: str, config: SiteConfig,
          data_dir: Path) -> ScenarioRun:
    """Score, review, the candidate's and the examiners' signatures: the signed result."""
    sheet = services.score(attempt_id)
    services.review(attempt_id, DEMO_EXAMINERS[0])
    for sc in paper:
        services.candidate_decision(attempt_id, sc.item, signed=True)
    document: dict[str, Any] | None = None
    for examiner in DEMO_EXAMINERS[: config.exam.examiners_required]:
        document = services.examiner_sign(attempt_id, examiner) or document
    assert document is not None
    timeline = load_timeline(services.db, attempt_id)
    return ScenarioRun(tuple(paper), attempt_id, timeline, sheet, document, data_dir, services.key.public_pem())


def candidate_id(station: str, n: int) -> str:
    """A valid 居民身份证号码 (GB 11643 check digit and a real birth date; registration refuses others)
    for the n-th candidate at `station` ("A01", "W02"): the birth date is 1990-01-01 plus 100 days
    per station letter and one per station number, the sequence code is n (1-999, then round again)."""
    born = date(1990, 1, 1) + timedelta(days=(ord(station[0]) - ord("A")) * 100 + int(station[1:]) % 100 - 1)
    first17 = f"110101{born:%Y%m%d}{(n - 1) % 999 + 1:03d}"
    return first17 + check_digit(first17)


async def play(scenario: Scenario, config: SiteConfig, data_dir: Path | None = None,
               *, record: bool = False) -> ScenarioRun:
    """One scenario as a one-item attempt."""
    return await play_exam([scenario], config, data_dir, record=record)
