"""Why each box of a split hall has its own MQTT client id (station.uplink.relay.client_id_of), on a
real mosquitto: two clients with the site's one id take the session from each other (the first is
disconnected when the second connects); with their box in the id both stay connected."""

from __future__ import annotations

import asyncio
import contextlib

import aiomqtt

from hardware_sim.mosquitto import Mosquitto
from station.uplink.relay import client_id_of

SITE = "GD-SZ-0101"


async def _first_survives_second(broker: Mosquitto, first_id: str, second_id: str) -> bool:
    """Whether the first client is still connected after the second connected."""
    async with aiomqtt.Client(broker.host, broker.port, identifier=first_id, clean_session=False) as first:
        lost = asyncio.Event()

        async def read() -> None:
            try:
                async for _ in first.messages:
                    pass
            except aiomqtt.MqttError:
                lost.set()

        reader = asyncio.create_task(read())
        await first.subscribe(f"examstation/v1/{SITE}/receipt", qos=1)
        try:
            async with aiomqtt.Client(broker.host, broker.port, identifier=second_id, clean_session=False):
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(lost.wait(), 2.0)
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
        return not lost.is_set()


async def test_one_id_for_two_boxes_would_kick_one_off_their_own_ids_do_not() -> None:
    assert client_id_of(SITE, None) == "examstation-GD-SZ-0101"  # a site that is not split: as before
    assert client_id_of(SITE, "A") != client_id_of(SITE, "B")
    async with Mosquitto() as broker:
        assert not await _first_survives_second(broker, client_id_of(SITE, None), client_id_of(SITE, None))
        assert await _first_survives_second(broker, client_id_of(SITE, "A"), client_id_of(SITE, "B"))
