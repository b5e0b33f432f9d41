"""Expose simulated device models as real Modbus servers (pymodbus SimDevice/SimData).

One server per endpoint: a TCP port for a rig with Ethernet, or one pty for an RS-485 bus with
several devices (unit ids) on it. The server's register image is laid out from the device's
profile with the controller's own register codec, so both sides share one definition of the map;
every table is contiguous from its lowest to its highest point, like PLC memory, so block reads
over small holes work as they do on real benches.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import cast

from pymodbus import FramerType
from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from devices.modbus.block_plan import FUNCTION_CODE
from devices.modbus.register_codec import Value, encode_point
from devices.profile import ModbusProfile, Table, load_profile
from hardware_sim.fault import FaultPlan
from hardware_sim.models.base import DeviceModel

log = logging.getLogger(__name__)

TICK_S = 0.01
"""How often models advance and registers are refreshed: 10 ms, finer than any poll interval."""


@dataclass
class SimulatedDevice:
    """A model behind one unit id, with the profile that says where its values live."""

    unit: int
    profile: ModbusProfile
    model: DeviceModel
    faults: FaultPlan = field(default_factory=FaultPlan)
    requests: int = 0


def _table_span(profile: ModbusProfile, table: Table) -> tuple[int, int] | None:
    points = [p for p in profile.points if p.table == table]
    if not points:
        return None
    return min(p.address for p in points), max(p.address + p.words for p in points)


def answer_as(faults: FaultPlan, profile: str) -> None:
    """Make a device's identity register say it is a `profile` device (a wrong device at this address)."""
    other = load_profile(profile)
    if not isinstance(other, ModbusProfile) or other.identity is None:
        raise ValueError(f"profile {profile} has no identity register to answer with")
    faults.identity_code = other.identity.code


def build_sim_device(dev: SimulatedDevice) -> SimDevice:
    """A pymodbus SimDevice with four separate tables sized from the profile, and the identity
    register as a block of its own when it lies outside its table's points (as on a PLC, where
    the product code sits in a system area apart from the process image)."""
    tables: list[list[SimData]] = []
    ident = dev.profile.identity
    for table in ("coil", "discrete", "holding", "input"):
        span = _table_span(dev.profile, table)
        bits = table in ("coil", "discrete")
        blocks: list[SimData] = []
        taken: set[int] = set()
        if span is None:
            blocks.append(SimData(0, values=[False] * 16 if bits else [0],
                                  datatype=DataType.BITS if bits else DataType.REGISTERS))
        elif bits:
            start, end = span
            start -= start % 16
            n = -(-(end - start) // 16) * 16
            blocks.append(SimData(start, values=[False] * n, datatype=DataType.BITS))
        else:
            start, end = span
            blocks.append(SimData(start, values=[0] * (end - start), datatype=DataType.REGISTERS))
            taken = set(range(start, end))
        if ident is not None and ident.table == table and ident.address not in taken:
            blocks.append(SimData(ident.address, values=[ident.code], datatype=DataType.REGISTERS))
        tables.append(blocks)

    async def action(function_code: int, start_address: int, address: int, count: int,
                     registers: list[int], set_values: list[int] | list[bool] | None) -> ExcCodes | None:
        # Our own register refreshes (set_values) always pass; only client requests see faults.
        if set_values is None:
            dev.requests += 1
            if dev.faults.exception_code:
                return ExcCodes(dev.faults.exception_code)
        return None

    return SimDevice(id=dev.unit, simdata=(tables[0], tables[1], tables[2], tables[3]), action=action)


class SimModbusServer:
    """Runs one pymodbus server for `devices` and keeps its registers equal to the models."""

    def __init__(self, devices: Sequence[SimulatedDevice], *, tcp_port: int | None = None,
                 serial_path: str | None = None, baudrate: int = 115200, time_scale: float = 1.0) -> None:
        if (tcp_port is None) == (serial_path is None):
            raise ValueError("give exactly one of tcp_port or serial_path")
        self.devices = list(devices)
        self._tcp_port = tcp_port
        self._serial_path = serial_path
        self._baudrate = baudrate
        self.time_scale = time_scale
        """Device seconds per real second: models run on exam time in a rehearsal."""
        self._server: ModbusTcpServer | ModbusSerialServer | None = None
        self._task: asyncio.Task[None] | None = None
        self._pushed: dict[tuple[int, Table, int], int] = {}

    @property
    def port(self) -> int:
        """The TCP port the server listens on (after start)."""
        if self._server is None or self._server.transport is None:
            raise RuntimeError("server not started or not TCP")
        server = cast(asyncio.Server, self._server.transport)
        return int(server.sockets[0].getsockname()[1])

    async def __aenter__(self) -> SimModbusServer:
        sim_devices = [build_sim_device(d) for d in self.devices]
        if self._tcp_port is not None:
            self._server = ModbusTcpServer(sim_devices, address=("127.0.0.1", self._tcp_port))
        else:
            self._server = ModbusSerialServer(
                sim_devices, framer=FramerType.RTU, port=self._serial_path or "", baudrate=self._baudrate,
            )
        await self._server.serve_forever(background=True)
        await self.refresh(0.0)
        self._task = asyncio.create_task(self._run(), name="sim-modbus-refresh")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._server is not None:
            await self._server.shutdown()  # type: ignore[no-untyped-call]

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        last = loop.time()
        while True:
            await asyncio.sleep(TICK_S)
            now = loop.time()
            await self.refresh((now - last) * self.time_scale)
            last = now

    async def refresh(self, dt_s: float) -> None:
        """Advance every model and write the registers whose encoded value changed."""
        assert self._server is not None
        for dev in self.devices:
            if dt_s:
                dev.model.tick(dt_s)
            await self._push(dev, dev.model.values())

    async def _push(self, dev: SimulatedDevice, values: dict[str, Value]) -> None:
        assert self._server is not None
        image: dict[tuple[Table, int], int] = {}
        ident = dev.profile.identity
        if ident is not None:
            code = dev.faults.identity_code
            image[(ident.table, ident.address)] = ident.code if code is None else code
        for point in dev.profile.points:
            if point.signal not in values:
                continue
            current = image.get((point.table, point.address), 0)
            for i, word in enumerate(encode_point(point, values[point.signal], current)):
                image[(point.table, point.address + i)] = word
        for (table, address), word in image.items():
            key = (dev.unit, table, address)
            if self._pushed.get(key) == word:
                continue
            self._pushed[key] = word
            payload: list[int] | list[bool] = [bool(word)] if table in ("coil", "discrete") else [word]
            await self._server.async_setValues(dev.unit, FUNCTION_CODE[table], address, payload)
