"""Several devices on one RS-485 line: one request at a time, with the configured silence between
frames, each device polled at its own interval. Checked on the wire (the pty bridge's trace)."""

from __future__ import annotations

import asyncio
import itertools
import tempfile
from pathlib import Path

from devices.modbus.poller import ModbusPoller, PolledDevice
from devices.profile import ModbusProfile, load_profile
from devices.ref import DeviceRef
from devices.sample import Sample
from devices.settings import ModbusRtuDevice, RtuBus
from hardware_sim.modbus_server import SimModbusServer, SimulatedDevice
from hardware_sim.models.ppe_cabinet import PpeCabinetModel
from hardware_sim.models.welding import WeldPowerModel, WeldSimModel
from hardware_sim.pty_bridge import PtyBridge

GAP_MS = 5.0
"""About 3.5 characters at 9600 baud: long enough to measure on a loaded machine."""
RUN_S = 1.5


def profile(name: str) -> ModbusProfile:
    p = load_profile(name)
    assert isinstance(p, ModbusProfile)
    return p


async def test_shared_bus_is_half_duplex_with_gap() -> None:
    torch = WeldSimModel("mma")
    sims = [SimulatedDevice(1, profile("weld-sim"), torch),
            SimulatedDevice(2, profile("weld-power"), WeldPowerModel(torch)),
            SimulatedDevice(3, profile("ppe-cabinet"), PpeCabinetModel())]
    samples: list[Sample] = []
    with tempfile.TemporaryDirectory() as tmp:
        async with PtyBridge(Path(tmp), "w01-485") as bridge, SimModbusServer(sims, serial_path=bridge.device_path):
            bus = RtuBus(id="w01-485", port=bridge.path, baudrate=115200, inter_frame_gap_ms=GAP_MS)
            devices = [
                PolledDevice("W01", ModbusRtuDevice(kind="modbus-rtu", name=n, profile=p, bus="w01-485", unit=u,
                                                    poll_interval_ms=ms), profile(p), bus)
                for n, p, u, ms in (("weldsim", "weld-sim", 1, 50), ("power", "weld-power", 2, 100),
                                    ("cabinet", "ppe-cabinet", 3, 200))
            ]
            bridge.trace = []
            async with ModbusPoller(devices, samples.append) as poller:
                await asyncio.sleep(RUN_S)
                health = poller.health()
            trace = bridge.trace
    assert all(h.online for h in health.values())
    # one request, then its answer, then the next request: never two requests in flight
    kinds = [k for k, _ in trace]
    assert kinds[0] == "request"
    for a, b in itertools.pairwise(kinds):
        assert a != b, "two requests without an answer between them: the bus lock failed"
    # the master keeps the configured silence after each answer before its next request
    gaps = [t2 - t1 for (k1, t1), (k2, t2) in itertools.pairwise(trace) if k1 == "answer" and k2 == "request"]
    assert gaps and min(gaps) >= GAP_MS / 1000 * 0.9, min(gaps)
    # the bus has room for all three (about 50 transactions/s of 200), so each keeps its own rate
    for device, interval_ms in (("W01/weldsim", 50), ("W01/power", 100), ("W01/cabinet", 200)):
        nominal = RUN_S * 1000 / interval_ms
        polls_ok = health[DeviceRef.parse(device)].polls_ok
        assert polls_ok >= 0.7 * nominal, (device, polls_ok, nominal)
    assert {str(s.device) for s in samples} == {"W01/weldsim", "W01/power", "W01/cabinet"}
