"""A station of the demo hall left to a person at the proctor UI (A01 in `examstation demo`).

The other stations play whole candidates by themselves; this one plays only the candidate's part,
so a person can do the examiner's: the desk registers the next candidate and keeps their ID card
on the station's simulated reader (re-read every few seconds, as a card lying on a real reader is:
check-in refuses a read older than two exam minutes), the examiner checks them in by the card in
the UI, draws or assigns items and starts one; when an item starts, the desk plays that item's
candidate scenario on the simulated equipment, and stops it when the item ends. The examiner ends
the item, reviews, takes the candidate's signature and signs; then the desk readies the rig and
brings the next candidate.

What the desk does to the simulator is handed in by the demo hall (`DeskRig`): this module never
imports the simulator, as no station module but the demo's own may.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from station import session as sm
from station.config import Station
from station.events import ItemStateEvent
from station.services import StationServices

log = logging.getLogger(__name__)

CARD_EVERY_REAL_S = 2.0
"""How often the waiting candidate's card is read again while no one is checked in at the desk."""
POLL_REAL_S = 0.2
"""How often the desk looks at its attempt when no event came (and ticks the item clock)."""
BATCH = "DEMO-DESK-2026-11"


@dataclass(frozen=True, slots=True)
class DeskRig:
    """What the desk may do to its simulated station; the demo hall, which owns the simulator, builds it."""

    present_card: Callable[[str, str], Awaitable[None]]
    """(id_number, name): the candidate's card is read by the station's ID card reader."""
    ready: Callable[[], Awaitable[None]]
    """The rig back to its rest state (bench restored, cabinet restocked...), for the next item."""
    candidate_plays: Callable[[str], Coroutine[Any, Any, None] | None]
    """item code -> the candidate doing that item on the equipment (a scenario), None for no scenario."""
    next_candidate: Callable[[int], tuple[str, str]]
    """n -> (id_number, name) of the n-th candidate at this desk."""


class HumanDesk:
    """The candidate's side of one station whose examiner is a person at the UI."""

    def __init__(self, station: Station, services: StationServices, rig: DeskRig) -> None:
        self.station = station
        self.services = services
        self.rig = rig
        self.waiting: tuple[str, str] | None = None
        """(id_number, name) of the candidate whose card lies on the reader, until checked in."""
        self.n = 0
        self._play: asyncio.Task[None] | None = None

    async def run(self) -> None:
        """Until cancelled: bring candidates, play each item the examiner starts."""
        events = self.services.events.subscribe(f"demo desk {self.station.id}", maxsize=200, kinds=(ItemStateEvent,))
        loop = asyncio.get_running_loop()
        next_card = 0.0
        try:
            await self.rig.ready()
            while True:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(POLL_REAL_S):
                        event = await events.get()
                        if isinstance(event, ItemStateEvent) and event.station == self.station.id:
                            await self._on(event)
                active = self.services.active_attempt(self.station.id)
                if active is None:
                    await self._stop_play()
                    if self.waiting is None:
                        self.waiting = await asyncio.to_thread(self._register_next)
                    if loop.time() >= next_card:
                        await self.rig.present_card(*self.waiting)
                        next_card = loop.time() + CARD_EVERY_REAL_S
                    continue
                attempt = self.services.attempt(active)
                if self.waiting is not None and attempt.candidate == self.waiting[0]:
                    self.waiting = None  # checked in
                if attempt.state == sm.State.RUNNING:
                    await asyncio.to_thread(self.services.tick)  # its time limit holds with no other station
                elif attempt.state != sm.State.PAUSED and self._play is not None:
                    await self._stop_play()  # the item ended (an event lost, or no event yet)
        finally:
            events.close()
            await self._stop_play()

    async def _on(self, event: ItemStateEvent) -> None:
        if event.kind == "item_start":
            await self._stop_play()
            play = self.rig.candidate_plays(event.item)
            if play is None:
                log.info("demo desk %s: no candidate scenario for item %s; the candidate stands still",
                         self.station.id, event.item)
                return
            self._play = asyncio.create_task(play, name=f"demo desk {self.station.id} {event.item}")
        elif event.kind == "item_end":
            await self._stop_play()
            await self.rig.ready()  # the examiner readies the station for the next item

    async def _stop_play(self) -> None:
        play, self._play = self._play, None
        if play is None:
            return
        play.cancel()
        await asyncio.wait({play})  # its own failure is logged, not raised: the desk goes on
        if not play.cancelled() and play.exception() is not None:
            log.warning("demo desk %s: the candidate scenario failed: %s", self.station.id, play.exception())

    def _register_next(self) -> tuple[str, str]:
        self.n += 1
        id_number, name = self.rig.next_candidate(self.n)
        self.services.register_candidate(id_number, name, self.station.operation, BATCH)
        return id_number, name
