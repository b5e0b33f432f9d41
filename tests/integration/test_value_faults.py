"""A value the device profile cannot represent is a device fault at the decoder, kept with its raw
form, never a sample (issue 10, finding 5): a NaN float32 and a reading above the profile's range,
served by pymodbus's own simulator (not ours) over a real TCP socket to the production poller."""

from __future__ import annotations

import asyncio
from typing import cast

from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from devices.modbus.poller import ModbusPoller, PolledDevice
from devices.profile import ModbusProfile, RegisterPoint
from devices.sample import Sample, ValueFault
from devices.settings import ModbusTcpDevice
from tests.integration.waiting import wait_for

PROFILE = ModbusProfile(
    protocol="modbus", profile="test-gauge", title_zh="测试仪表", vendor="test", source="test",
    poll_interval_ms=50,
    points=(RegisterPoint(signal="gauge.temperature_c", table="holding", address=0, type="float32"),
            RegisterPoint(signal="gauge.depth_mm", table="holding", address=2, type="uint16", scale=0.1, min=0,
                          max=100)),
)
NAN = [0x7FC0, 0x0000]
TWENTY = [0x41A0, 0x0000]  # 20.0 as a big-endian float32


async def test_nan_and_out_of_range_become_faults_with_their_raw_words() -> None:
    server = ModbusTcpServer(SimDevice(id=1, simdata=[SimData(0, values=[*NAN, 1500], datatype=DataType.REGISTERS)]),
                             address=("127.0.0.1", 0))
    await server.serve_forever(background=True)
    try:
        port = int(cast(asyncio.Server, server.transport).sockets[0].getsockname()[1])
        settings = ModbusTcpDevice(kind="modbus-tcp", name="gauge", profile="test-gauge", host="127.0.0.1", port=port,
                                   unit=1, poll_interval_ms=50, timeout_s=0.5)
        samples: list[Sample] = []
        faults: list[ValueFault] = []
        async with ModbusPoller([PolledDevice("T01", settings, PROFILE)], samples.append, on_fault=faults.append):
            await wait_for(lambda: len(faults) >= 2, 5, "two value faults")
            await asyncio.sleep(0.3)  # several more polls of the same bad words: still reported once
            assert [(f.signal, f.raw, str(f.device)) for f in faults] == [
                ("gauge.temperature_c", "0x7FC0 0x0000", "T01/gauge"), ("gauge.depth_mm", "0x05DC", "T01/gauge")]
            assert "nan" in faults[0].reason and "above the profile's max 100" in faults[1].reason
            assert not [s for s in samples if s.signal.startswith("gauge.")]
            await server.async_setValues(1, 3, 0, [*TWENTY, 550])
            await wait_for(lambda: len(samples) >= 2, 5, "the good values")
            assert sorted((s.signal, s.value) for s in samples) == [("gauge.depth_mm", 55.0),
                                                                    ("gauge.temperature_c", 20.0)]
            await server.async_setValues(1, 3, 0, NAN)
            await wait_for(lambda: len(faults) >= 3, 5, "the NaN again")
            assert faults[2].signal == "gauge.temperature_c" and len(samples) == 2
    finally:
        await server.shutdown()  # type: ignore[no-untyped-call]
