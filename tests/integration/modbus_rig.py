"""Test rigs: one simulated device on a real endpoint (TCP relay or RS-485 pty bridge) plus the
production poller pointed at it. Shared by the Modbus integration tests; not a fixture library
for anything else."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from devices.modbus.poller import ModbusPoller, PolledDevice
from devices.profile import ModbusProfile, load_profile
from devices.sample import Sample
from devices.settings import ModbusRtuDevice, ModbusTcpDevice, RtuBus
from hardware_sim.fault import FaultPlan
from hardware_sim.modbus_server import SimModbusServer, SimulatedDevice
from hardware_sim.models.base import DeviceModel
from hardware_sim.pty_bridge import PtyBridge
from hardware_sim.tcp_proxy import FaultyTcpProxy

POLL_MS = 100
TIMEOUT_S = 0.3


@dataclass
class Rig:
    kind: str
    device: SimulatedDevice
    wire_faults: FaultPlan
    poller: ModbusPoller
    proxy: FaultyTcpProxy | None = None
    bridge: PtyBridge | None = None
    samples: list[Sample] = field(default_factory=list)
    transitions: list[tuple[str, bool, str]] = field(default_factory=list)

    @property
    def health(self):  # type: ignore[no-untyped-def]
        return next(iter(self.poller.health().values()))

    def latest(self, signal: str) -> object:
        for s in reversed(self.samples):
            if s.signal == signal:
                return s.value
        raise KeyError(signal)

    async def power_off(self) -> None:
        if self.proxy is not None:
            await self.proxy.power_off()
        else:
            assert self.bridge is not None
            self.bridge.unplug()

    async def power_on(self) -> None:
        if self.proxy is not None:
            await self.proxy.power_on()
        else:
            assert self.bridge is not None
            self.bridge.plug()


@contextlib.asynccontextmanager
async def modbus_rig(kind: str, profile_name: str, model: DeviceModel, unit: int = 1) -> AsyncIterator[Rig]:
    """`kind` is modbus-tcp (server behind a fault relay) or modbus-rtu (server on a pty bridge)."""
    profile = load_profile(profile_name)
    assert isinstance(profile, ModbusProfile)
    async with contextlib.AsyncExitStack() as stack:
        device = SimulatedDevice(unit, profile, model)
        samples: list[Sample] = []
        transitions: list[tuple[str, bool, str]] = []
        proxy = bridge = None
        if kind == "modbus-tcp":
            server = await stack.enter_async_context(SimModbusServer([device], tcp_port=0))
            proxy = await stack.enter_async_context(FaultyTcpProxy("127.0.0.1", server.port, device.faults))
            wire_faults = device.faults
            settings: ModbusTcpDevice | ModbusRtuDevice = ModbusTcpDevice(
                kind="modbus-tcp", name="dut", profile=profile_name, host="127.0.0.1", port=proxy.port,
                unit=unit, poll_interval_ms=POLL_MS, timeout_s=TIMEOUT_S,
            )
            bus = None
        else:
            link_dir = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            bridge = await stack.enter_async_context(PtyBridge(link_dir, "rs485"))
            await stack.enter_async_context(SimModbusServer([device], serial_path=bridge.device_path))
            wire_faults = bridge.faults
            bus = RtuBus(id="rs485", port=bridge.path, baudrate=115200)
            settings = ModbusRtuDevice(kind="modbus-rtu", name="dut", profile=profile_name, bus="rs485",
                                       unit=unit, poll_interval_ms=POLL_MS, timeout_s=TIMEOUT_S)
        poller = ModbusPoller([PolledDevice("T01", settings, profile, bus)], samples.append,
                              lambda *t: transitions.append(t))
        await stack.enter_async_context(poller)
        yield Rig(kind, device, wire_faults, poller, proxy, bridge, samples, transitions)
