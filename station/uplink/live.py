"""Live station state for remote invigilation (`examstation/v1/{site}/{station}/live`, QoS 0).

What a provincial invigilator's wall shows for each station: the attempt in progress, its state,
the running item and its time left, and which devices answer. Built from the service layer and
the device hub on each publish; nothing here is stored, and a lost message is simply replaced
by the next one (QoS 0). Published every `uplink.live_every_s`, and also within
`CHANGE_DELAY_S` of an item starting, pausing or ending or a device dropping or returning (the
station's event stream), so the wall does not lag an item start by a whole period.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

from devices.ref import DeviceRef
from station.config import SiteConfig
from station.events import DeviceHealthEvent, EventBus, ItemStateEvent, Subscription
from station.result_document import iso_utc

log = logging.getLogger(__name__)
if TYPE_CHECKING:  # the relay runs `publish_live` and must not import the whole service layer
    from station.services import StationServices

LIVE_SCHEMA = "examstation/live/v1"
CHANGE_DELAY_S = 0.25
"""After a change, wait this long before publishing: a burst (an item ends, the next starts) is one
message per station, not several."""
BOX_LIVE_EVERY_S = 5.0
"""A split hall's live period when the site config sets none: changes go out within CHANGE_DELAY_S
anyway, so this is the heartbeat that tells the other boxes' halls the station is still there."""
STALE_PERIODS = 3
"""A station not heard for this many live periods is shown stale on the other boxes' halls."""
LiveSource = Callable[[], list[dict[str, Any]]]


def live_documents(config: SiteConfig, services: StationServices, devices: Iterable[tuple[DeviceRef, bool | None]],
                   now_mono_ns: int, now_utc_ns: int) -> list[dict[str, Any]]:
    """One live document per station. `devices`: (device, online) pairs from the device hub."""
    online: dict[str, dict[str, bool]] = {}
    for ref, up in devices:
        online.setdefault(ref.station, {})[ref.name] = bool(up)
    docs = []
    for st in config.stations:
        attempt_id = services.active_attempt(st.id)
        state = item = None
        remaining = None
        if attempt_id is not None:
            a = services.attempt(attempt_id)
            state = a.state.value
            running = a.running_item
            if running is not None:
                item = running.code
                remaining = round(max(0.0, running.remaining_s(now_mono_ns)), 1)
        doc = {"schema": LIVE_SCHEMA, "site": config.site.id, "station": st.id, "at": iso_utc(now_utc_ns),
               "attempt_id": attempt_id, "state": state, "item": item, "remaining_s": remaining,
               "devices": online.get(st.id, {})}
        if config.this_box is not None:  # the other boxes' halls mark the tile with it
            doc["box"] = config.this_box.id
        docs.append(doc)
    return docs


def live_every_s(config: SiteConfig) -> float | None:
    """How often live state is published: `uplink.live_every_s`, or for a box of a split hall
    BOX_LIVE_EVERY_S when that is not set (the other boxes' hall pages are built from it)."""
    if config.uplink.live_every_s is not None:
        return config.uplink.live_every_s
    return BOX_LIVE_EVERY_S if config.this_box is not None else None


async def publish_live(publish: Callable[[dict[str, Any]], Awaitable[None]], source: LiveSource, every_s: float,
                       events: EventBus | None, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
    """Publish each station's live document every `every_s`, and soon after each change the event
    stream reports; runs until cancelled (the relay runs it for each broker session)."""
    changes = events.subscribe("live uplink", maxsize=64, kinds=(ItemStateEvent, DeviceHealthEvent)) if events else None
    try:
        while True:
            try:
                docs = await asyncio.to_thread(source)
            except Exception as err:  # live state is optional; results are not
                log.warning("uplink: live state not published (%s: %s)", type(err).__name__, err)
                docs = []
            for doc in docs:
                await publish(doc)
            await _until_next(changes, every_s, sleep)
    finally:
        if changes is not None:
            changes.close()


async def _until_next(changes: Subscription | None, every_s: float, sleep: Callable[[float], Awaitable[None]]) -> None:
    if changes is None:
        await sleep(every_s)
        return
    timer = asyncio.ensure_future(sleep(every_s))
    change = asyncio.ensure_future(changes.get())
    try:
        await asyncio.wait((timer, change), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (timer, change):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    if change.done() and not change.cancelled():
        await sleep(CHANGE_DELAY_S)
    while changes.get_nowait() is not None:  # one publish covers every change so far
        pass
