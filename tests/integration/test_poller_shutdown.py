"""A poller stops when it is cancelled, even when the cancellation is lost inside the Modbus client.

Python 3.11's asyncio.wait_for, which pymodbus awaits every answer with, returns an answer that
lands in the same loop iteration as the cancellation and drops the cancellation (fixed in 3.12).
The task is then marked as cancelling but never sees a CancelledError again, and the device hub's
shutdown waited forever for it: a scenario test hung for 15 minutes in a clean-clone run. The link
below reads from a real server over TCP and then loses one cancellation the way wait_for does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import cast

from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from devices.modbus.link import ModbusLink, TcpTarget
from devices.modbus.poller import DevicePoller, PolledDevice
from devices.profile import ModbusProfile, RegisterPoint
from devices.sample import Sample
from devices.settings import ModbusTcpDevice
from tests.integration.waiting import wait_for

PROFILE = ModbusProfile(protocol="modbus", profile="test-counter", title_zh="计数器", vendor="test", source="test",
                        poll_interval_ms=20,
                        points=(RegisterPoint(signal="counter.value", table="holding", address=0),))


class CancelLosingLink(ModbusLink):
    """A real link whose next read, once armed, has its task cancelled while the answer lands and
    loses that cancellation, as Python 3.11's asyncio.wait_for does."""

    armed = False
    lost = 0

    async def read(self, who: str, unit: int, function_code: int, start: int, count: int
                   ) -> Sequence[int] | Sequence[bool]:
        values = await super().read(who, unit, function_code, start, count)
        if self.armed:
            self.armed = False
            task = asyncio.current_task()
            assert task is not None
            task.cancel()
            try:
                await asyncio.sleep(0)
            except asyncio.CancelledError:
                self.lost += 1  # wait_for returns the answer instead of raising
        return values


async def test_a_poller_whose_cancellation_was_lost_still_stops() -> None:
    server = ModbusTcpServer(SimDevice(id=1, simdata=[SimData(0, values=[7], datatype=DataType.REGISTERS)]),
                             address=("127.0.0.1", 0))
    await server.serve_forever(background=True)
    try:
        port = int(cast(asyncio.Server, server.transport).sockets[0].getsockname()[1])
        settings = ModbusTcpDevice(kind="modbus-tcp", name="counter", profile="test-counter", host="127.0.0.1",
                                   port=port, unit=1, poll_interval_ms=20, timeout_s=0.5)
        link = CancelLosingLink(TcpTarget("127.0.0.1", port), timeout_s=0.5)
        samples: list[Sample] = []
        poller = DevicePoller(PolledDevice("T01", settings, PROFILE), link, samples.append)
        task = asyncio.create_task(poller.run(), name="poll T01/counter")
        await wait_for(lambda: samples, 5, "a first sample")
        link.armed = True
        await wait_for(lambda: link.lost == 1, 5, "the lost cancellation")
        done, _ = await asyncio.wait([task], timeout=2)
        assert done, "the poller went on polling after its cancellation was lost"
        assert task.cancelled()
        link.close()
    finally:
        await server.shutdown()  # type: ignore[no-untyped-call]
