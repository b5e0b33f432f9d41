"""Device status changes reach the station in the order the device layer reported them, even when
recording the first takes longer than the second (each is a database commit in a worker thread)."""

from __future__ import annotations

import asyncio
import time

from devices.ref import DeviceRef
from station.status_feed import StatusFeed

MANIKIN = DeviceRef("A01", "manikin")


async def test_a_quick_flap_is_applied_in_order() -> None:
    applied: list[tuple[DeviceRef, bool]] = []

    def apply(device: DeviceRef, online: bool, reason: str) -> None:
        time.sleep(0.05 if not online else 0.0)  # the offline commit is the slow one
        applied.append((device, online))

    async with StatusFeed(apply) as feed:
        for online in (False, True, False, True):
            feed(MANIKIN, online, "" if online else "no valid frame")
        await asyncio.sleep(0)
    assert applied == [(MANIKIN, False), (MANIKIN, True)] * 2


async def test_a_failing_update_does_not_stop_the_ones_after_it() -> None:
    applied: list[bool] = []

    def apply(device: DeviceRef, online: bool, reason: str) -> None:
        if not online:
            raise RuntimeError("database is locked")
        applied.append(online)

    async with StatusFeed(apply) as feed:
        feed(DeviceRef("A01", "bench"), False, "timeout")
        feed(DeviceRef("A01", "bench"), True, "")
    assert applied == [True]
