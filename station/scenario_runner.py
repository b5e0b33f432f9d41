"""Play one candidate scenario on the simulated station and score it with the production stack.

simulator (scenario drives it) -> wire -> DeviceHub (the production clients) -> timeline records
-> scoring.score. The runner plays the examiner's part of a session in its simplest form: start
the item once every device is online, pause the item's clock while a device is offline, end it at
the time limit, or when the candidate is done (as interrupted if equipment is still down). The
full session state machine with persistence is station.session's job; this is the rehearsal.

Like station.demo, this module may import hardware_sim (it exists to drive the simulator).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from dataclasses import dataclass

from devices.clock import ScaledClock
from devices.sample import Sample
from hardware_sim.scenarios import SCENARIOS, Context, Scenario
from hardware_sim.site import SimSite
from scoring.engine import score
from scoring.rubric import Rubric
from scoring.rubric_loader import rubric_for
from scoring.sheet import ItemScore, ScoreSheet
from scoring.timeline import (
    EndReason,
    FaultRecord,
    LifecycleKind,
    LifecycleRecord,
    Record,
    SampleRecord,
    Timeline,
    ordered,
)
from station.config import SiteConfig, Station
from station.device_hub import DeviceHub

SETTLE_REAL_S = 0.4
"""Real time for the first polls to report every device's state before the item starts, and for
the last change of the candidate to be polled before it ends (several 100 ms poll intervals)."""


@dataclass(frozen=True, slots=True)
class ScenarioRun:
    scenario: Scenario
    timeline: Timeline
    sheet: ScoreSheet

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


class _Session:
    """The rehearsal's record keeper: timeline records and the item clock's pauses."""

    def __init__(self, clock: ScaledClock, item: str) -> None:
        self.clock = clock
        self.item = item
        self.records: list[Record] = []
        self.offline: set[str] = set()
        self.running = False
        self.paused_ns = 0
        self._paused_at: int | None = None
        self.started_ns = 0

    def lifecycle(self, kind: LifecycleKind, detail: str = "", at_ns: int | None = None) -> None:
        """Record `kind` now, or at the earlier monotonic instant `at_ns` (its UTC shifted alike)."""
        mono, utc = self.clock.mono_ns(), self.clock.utc_ns()
        if at_ns is not None:
            mono, utc = at_ns, utc - (mono - at_ns)
        self.records.append(LifecycleRecord(kind, mono, utc, self.item if kind != "attempt_start" else "", detail))

    def on_sample(self, s: Sample) -> None:
        value = dict(s.value) if isinstance(s.value, Mapping) else s.value
        self.records.append(SampleRecord(s.signal, value, s.t_mono_ns, s.t_utc_ns, s.device))

    def on_status(self, device: str, online: bool, reason: str) -> None:
        self.records.append(FaultRecord(device, online, reason, self.clock.mono_ns(), self.clock.utc_ns()))
        was_down = bool(self.offline)
        (self.offline.discard if online else self.offline.add)(device)
        if not self.running:
            return
        if self.offline and not was_down:
            self._paused_at = self.clock.mono_ns()
            self.lifecycle("pause", f"device {device} offline")
        elif was_down and not self.offline and self._paused_at is not None:
            self.paused_ns += self.clock.mono_ns() - self._paused_at
            self._paused_at = None
            self.lifecycle("resume", f"device {device} back")

    def active_s(self) -> float:
        now = self.clock.mono_ns()
        paused = self.paused_ns + (now - self._paused_at if self._paused_at is not None else 0)
        return (now - self.started_ns - paused) / 1e9

    def limit_reached_ns(self, limit_s: int) -> int:
        """When the item's clock (pauses excluded) reached `limit_s`: the instant a timeout ends it.

        The watch loop notices the limit one check later (10 ms real, seconds of exam time at a
        high time scale); stamping the end then would score the item as over its time.
        """
        return self.started_ns + self.paused_ns + limit_s * 1_000_000_000


async def play(scenario: Scenario, config: SiteConfig, rubric: Rubric | None = None) -> ScenarioRun:
    """Play `scenario` on the station of its operation type in `config`, and score it."""
    rubric = rubric or rubric_for(scenario.operation)
    item = rubric.item(scenario.item)
    station = station_for(config, scenario.operation)
    clock = ScaledClock(scenario.time_scale)
    session = _Session(clock, scenario.item)
    async with SimSite(one_station(config, station), cameras=False, device_clock=clock.seconds,
                       time_scale=scenario.time_scale) as site:
        ctx = Context(site, station.id, scenario.time_scale)
        if scenario.setup:
            scenario.setup(ctx)
        async with DeviceHub(site.resolved_config(), session.on_sample, session.on_status, clock) as hub:
            async with asyncio.timeout(10):
                while not all(s.online for s in hub.status()):  # noqa: ASYNC110 - polling device health
                    await asyncio.sleep(0.02)
            await asyncio.sleep(SETTLE_REAL_S)
            session.lifecycle("attempt_start")
            session.started_ns = clock.mono_ns()
            session.running = True
            session.lifecycle("item_start")
            reason: EndReason = "done"
            ended_at: int | None = None
            candidate = asyncio.create_task(scenario.play(ctx), name=f"scenario {scenario.name}")
            try:
                while not candidate.done():
                    if session.active_s() >= item.time_limit_s:
                        reason = "timeout"
                        ended_at = session.limit_reached_ns(item.time_limit_s)
                        candidate.cancel()
                        break
                    await asyncio.sleep(0.01)
            finally:
                with contextlib.suppress(asyncio.CancelledError):
                    await candidate
            if reason == "done":
                await asyncio.sleep(SETTLE_REAL_S)
                if session.offline:
                    reason = "interrupted"
            session.running = False
            session.lifecycle("item_end", reason, at_ns=ended_at)
    timeline = ordered(session.records)
    return ScenarioRun(scenario, timeline, score(rubric, timeline))


def scenario_named(name: str) -> Scenario:
    try:
        return SCENARIOS[name]
    except KeyError:
        raise LookupError(f"no scenario named {name!r}; `examstation scenarios` lists them") from None
