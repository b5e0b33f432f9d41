"""A Modbus client nobody here wrote (mbpoll, from Debian) reads the simulated bench and sees
exactly what the simulator holds: the simulator speaks real Modbus, not a dialect of our client."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import sys

import pytest

from devices.modbus.register_codec import encode_point
from devices.profile import ModbusProfile, load_profile
from hardware_sim.modbus_server import SimModbusServer, SimulatedDevice
from hardware_sim.models.bench import BenchModel
from station.config import load_site_config

pytestmark = pytest.mark.skipif(shutil.which("mbpoll") is None, reason="mbpoll missing: run `make test`")

MBPOLL_TYPE = {"discrete": "1", "coil": "0", "input": "3", "holding": "4"}


async def mbpoll(port: int, table: str, first: int, count: int) -> dict[int, int]:
    """Read `count` entries of `table` from 0-based `first`; returns {0-based address: value}."""
    proc = await asyncio.create_subprocess_exec(
        "mbpoll", "-m", "tcp", "-a", "1", "-t", MBPOLL_TYPE[table], "-r", str(first + 1), "-c", str(count),
        "-1", "-p", str(port), "127.0.0.1",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 10)
    assert proc.returncode == 0, err.decode()
    values = {int(m[1]) - 1: int(m[2]) for m in re.finditer(r"^\[(\d+)\]:\s+(-?\d+)", out.decode(), re.M)}
    assert len(values) == count, out.decode()
    return values


async def test_mbpoll_reads_what_the_bench_holds() -> None:
    profile = load_profile("lv-bench")
    assert isinstance(profile, ModbusProfile)
    bench = BenchModel(task=22)
    bench.main_switch = True
    bench.press("sb2_start")
    bench.energy_kwh = 40.0  # 128000 pulses: needs both words of the uint32
    async with SimModbusServer([SimulatedDevice(1, profile, bench)], tcp_port=0) as server:
        await server.refresh(1.0)  # one simulated second: KM1 in, motor up to speed
        assert bench.km1 and bench.motor_rpm > 0
        held = bench.values()
        expected: dict[tuple[str, int], int] = {}
        for point in profile.points:
            current = expected.get((point.table, point.address), 0)
            for i, word in enumerate(encode_point(point, held[point.signal], current)):
                expected[(point.table, point.address + i)] = word
        for table in ("discrete", "input", "holding"):
            addresses = sorted(a for t, a in expected if t == table)
            got = await mbpoll(server.port, table, addresses[0], addresses[-1] - addresses[0] + 1)
            for address in addresses:
                assert got[address] == expected[(table, address)], (table, address)
    # and the values mean what the bench shows: KM1 in, running forward, 220.0 V on L1
    assert held["bench.km1"] is True and held["bench.motor_dir"] == 1
    assert expected[("input", 4)] == 2200
    assert (expected[("input", 2)] << 16) + expected[("input", 3)] == 128000


async def test_sim_cli_prints_endpoints_that_mbpoll_can_read() -> None:
    """The acceptance path: `examstation sim --print-endpoints`, then mbpoll on the printed port."""
    config = load_site_config("examples/site.yaml")
    expected_lines = sum(len(s.devices) + len(s.cameras) for s in config.stations)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "station.cli", "sim", "--config", "examples/site.yaml", "--print-endpoints",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        endpoints = []
        for _ in range(expected_lines):
            line = await asyncio.wait_for(proc.stdout.readline(), 30)
            endpoints.append(json.loads(line))
        kinds = {e.get("kind", "camera") for e in endpoints}
        existing = {e["path"] for e in endpoints if "path" in e and os.path.exists(e["path"])}  # noqa: ASYNC240
        assert kinds == {"modbus-tcp", "modbus-rtu", "serial", "camera"}
        for e in endpoints:
            if e.get("kind") == "modbus-tcp":
                assert set(e) == {"station", "device", "kind", "host", "port", "unit"}
            elif e.get("kind") == "modbus-rtu":
                assert set(e) == {"station", "device", "kind", "path", "unit"} and e["path"] in existing
            elif e.get("kind") == "serial":
                assert set(e) == {"station", "device", "kind", "path"} and e["path"] in existing
            else:
                assert set(e) == {"station", "camera", "url", "sub_url"}
                assert e["url"].startswith("rtsp://127.0.0.1:") and e["sub_url"].startswith("http://127.0.0.1:")
        bench = next(e for e in endpoints if e["station"] == "A01" and e["device"] == "bench")
        regs = await mbpoll(bench["port"], "holding", 100, 5)
        assert regs[100] == 21  # bench.task: the bench is set up for K21
        bits = await mbpoll(bench["port"], "discrete", 0, 13)
        assert set(bits.values()) == {0}  # main switch open, nothing energised
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        rc = await asyncio.wait_for(proc.wait(), 15)
        if proc.stdout:
            await proc.stdout.read()
        if proc.stderr:
            await proc.stderr.read()
    assert rc == 0, "Ctrl-C must stop the simulator cleanly"
