"""Candidate scenarios: scripts of what a candidate does, played on the simulated equipment.

A scenario drives the simulated devices the way a person would (switches, buttons, the manikin,
the extinguisher, the torch) and never writes into the controller's timeline: the controller must
see it all over the wire. Each declares the item score and outcome it should get, worked out by
hand from the rubric, with the arithmetic next to it, so a run that disagrees points at a bug in
the simulator, the device layer, a detector or the rubric.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Literal, TypeVar

from hardware_sim.manikin import ManikinSim
from hardware_sim.models.bench import BenchModel
from hardware_sim.models.extinguisher import ExtinguisherModel
from hardware_sim.models.ppe_cabinet import PpeCabinetModel
from hardware_sim.models.welding import WeldPowerModel, WeldSimModel
from hardware_sim.site import SimSite, StationRig

_T = TypeVar("_T")
Outcome = Literal["scored", "veto", "timeout", "interrupted"]
ELECTRICIAN = "低压电工作业"
WELDING = "熔化焊接与热切割作业"

MIN_HOLD_REAL_S = 0.3
"""A state a person holds (a button) must last three 100 ms polls of real time to be seen."""


class Context:
    """What a scenario may touch: the station's simulated equipment, and exam time."""

    def __init__(self, site: SimSite, station: str, scale: float) -> None:
        self.site = site
        self.station = station
        self.scale = scale
        self.rig: StationRig = site.rigs[station]

    async def wait(self, exam_s: float) -> None:
        """Let `exam_s` seconds of exam time pass."""
        await asyncio.sleep(max(0.0, exam_s / self.scale))

    async def hold(self, exam_s: float = 1.0) -> None:
        """Keep the current state for `exam_s`, and long enough for the controller to poll it."""
        await asyncio.sleep(max(MIN_HOLD_REAL_S, exam_s / self.scale))

    async def tap(self, button: str, exam_s: float = 1.0) -> None:
        """Press a bench button, hold it, release it, and give the controller time to see both."""
        self.bench.press(button)
        await self.hold(exam_s)
        self.bench.press(button, down=False)
        await self.hold(exam_s)

    async def power_off(self, device: str) -> None:
        """The device loses power (its port refuses connections, or its adapter is unplugged)."""
        key = (self.station, device)
        if key in self.site.tcp:
            await self.site.tcp[key].power_off()
        elif key in self.site.manikins:
            await self.site.manikins[key].unplug()
        elif key in self.site.id_readers:
            await self.site.id_readers[key].unplug()
        else:
            raise ValueError(f"{self.station} has no device {device} that can be switched off here")

    async def power_on(self, device: str) -> None:
        key = (self.station, device)
        if key in self.site.tcp:
            await self.site.tcp[key].power_on()
        elif key in self.site.manikins:
            await self.site.manikins[key].plug()
        elif key in self.site.id_readers:
            await self.site.id_readers[key].plug()
        else:
            raise ValueError(f"{self.station} has no device {device} that can be switched on here")

    async def restore_rig(self) -> None:
        """The examiner readies the station for the next item (its rest state): the bench restored
        and 复位, the cabinet restocked, the extinguisher back on its stand, the booth switched off,
        the manikin's head back and nobody touching it."""
        rig = self.rig
        if rig.bench is not None:
            rig.bench.restore()
        if rig.cabinet is not None:
            rig.cabinet.restock()
        if rig.extinguisher is not None:
            rig.extinguisher.restore()
        if rig.power is not None:
            rig.power.restore()
        if rig.manikin is not None and rig.manikin.plugged:
            await rig.manikin.set_state(airway_open=False, head_tilt_deg=0, pulse_check=False,
                                        consciousness_check=False)

    @property
    def bench(self) -> BenchModel:
        return _need(self.rig.bench, "bench")

    @property
    def extinguisher(self) -> ExtinguisherModel:
        return _need(self.rig.extinguisher, "extinguisher")

    @property
    def cabinet(self) -> PpeCabinetModel:
        return _need(self.rig.cabinet, "cabinet")

    @property
    def weldsim(self) -> WeldSimModel:
        return _need(self.rig.weldsim, "welding simulator")

    @property
    def power(self) -> WeldPowerModel:
        return _need(self.rig.power, "welding power source")

    @property
    def manikin(self) -> ManikinSim:
        return _need(self.rig.manikin, "manikin")


def _need(thing: _T | None, what: str) -> _T:
    if thing is None:
        raise RuntimeError(f"this station has no {what}; the scenario needs one")
    return thing


Play = Callable[[Context], Coroutine[None, None, None]]


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    operation: str
    item: str
    expected_item_score: float
    expected_outcome: Outcome
    arithmetic: str
    """How the expected score follows from the rubric, row by row."""
    play: Play
    time_scale: float = 10.0
    """Exam seconds per real second while it plays."""
    setup: Callable[[Context], None] | None = None
    """Prepares the equipment before the item starts (the bench's task, the fire's class...)."""
    score_with_gap: str | None = None
    """The examiner's reason for scoring the item although a device it reads was down for a large
    part of it (None: such an item is ended interrupted, a re-sit)."""


SCENARIOS: dict[str, Scenario] = {}


def scenario(name: str, operation: str, item: str, expected_item_score: float, expected_outcome: Outcome,
             arithmetic: str, time_scale: float = 10.0, setup: Callable[[Context], None] | None = None,
             score_with_gap: str | None = None) -> Callable[[Play], Play]:
    """Register a scenario script under `name`."""

    def wrap(play: Play) -> Play:
        if name in SCENARIOS:
            raise ValueError(f"scenario {name} registered twice")
        SCENARIOS[name] = Scenario(name, operation, item, expected_item_score, expected_outcome,
                                   " ".join(arithmetic.split()), play, time_scale, setup, score_with_gap)
        return play

    return wrap
