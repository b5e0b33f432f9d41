"""Modbus polling benchmark: our device stack against bare pymodbus, and against the RS-485 wire.

Run: `.venv/bin/python bench/modbus_poll.py --json` (`--seconds N` per phase, default 3; the whole
run takes about 30 s). Progress goes to stderr; with `--json` the last line on stdout is one JSON
object whose first keys are poller_tps, baseline_tps, ratio, rtu_tps, rtu_limit_tps and
bus_efficiency (more keys follow them). docs/PERFORMANCE.md explains every figure.

What is measured
- poller_tps: Modbus transactions per second through the production path, `DevicePoller.poll_once`
  in a tight loop: block plan, `ModbusLink` (bus lock, per-request timeout, error translation,
  answer-byte tracing), register decoding, deadband and a Sample sink. Device: the lv-bench
  profile served by a `SimModbusServer` around a `BenchModel` (motor running) on 127.0.0.1, in
  this process, client connected straight to the server port (no fault proxy).
- baseline_tps: a bare `AsyncModbusTcpClient` loop reading the same blocks from the same server.
  ratio = poller_tps / baseline_tps is the share of pymodbus' speed our layers keep.
- rtu_tps: the same DevicePoller over Modbus RTU at 115200 baud, against a weld-sim device (the
  50 Hz welding simulator, the device that loads an RS-485 bus most) on `hardware_sim.wire_line`:
  a simulated line in its own process that holds every frame for its wire time (11 bits a
  character) and keeps the 3.5-character silence after each frame, with microsecond timing (a
  thread on select(); the event loop's epoll timeouts round up to whole milliseconds). The device
  is the line's ideal responder: it answers the moment a request has arrived, as the wire limit
  assumes, so the figure measures the master (our poller) and not the simulator's own speed. The
  link keeps its 3.5-character gap (0.33 ms), measured from the answer's last byte.
- rtu_limit_tps: what the wire allows for the same frames: transactions per poll divided by the
  sum of request + 3.5 + answer + 3.5 characters over the poll's frames (a read request is 8
  bytes, an answer 5 + 2 x registers or 5 + ceil(bits / 8) bytes). bus_efficiency = rtu_tps /
  rtu_limit_tps.
- Beside them: a bare pymodbus serial client on the same line (rtu_bare_*), and our poller
  against a pymodbus server as the device (bus_efficiency_pymodbus_device), whose own answer time
  (pymodbus_device_turnaround_ms, ~0.3 ms) a real device would add in its own way.

Why the baseline is fair
- Same client class and transport (pymodbus' own), same server, same process and event loop,
  same frames: function codes, addresses, counts and unit id come from the one `plan_blocks()`
  result the poller uses. The baseline client gets the link's timeout and retries (which change
  nothing while no request fails) but not its packet trace, which is one of our layers.
- The baseline does only the reads: no lock, no timeout of its own, no decoding, no samples. So
  the gap between the two is exactly what our layers cost.
- The machine is noisy (2 cores, other work): after a warm-up, `--rounds` phases of `--seconds`
  per side run cut into 0.5 s slices that alternate baseline/poller (swapping which goes first),
  so a burst of background load hits both; poller_tps and baseline_tps are the medians of their
  slices, and ratio = poller_tps / baseline_tps. Compare ratios, not absolute rates.

"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import math
import os
import statistics
import sys
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from pymodbus import FramerType
from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient

from devices.errors import DeviceError
from devices.modbus.block_plan import Block, plan_blocks
from devices.modbus.link import ModbusLink
from devices.modbus.poller import DevicePoller, PolledDevice
from devices.profile import ModbusProfile, load_profile
from devices.sample import Sample
from devices.settings import ModbusRtuDevice, ModbusTcpDevice, RtuBus
from hardware_sim.modbus_server import SimModbusServer, SimulatedDevice
from hardware_sim.models.bench import BenchModel
from hardware_sim.pty_bridge import BITS_PER_CHAR, wire_time_s

log = logging.getLogger("bench.modbus_poll")

UNIT = 1
WIRE_BAUDRATE = 115200
TCP_PROFILE = "lv-bench"
RTU_PROFILE = "weld-sim"
GAP_3_5_CHARS_S = 3.5 * BITS_PER_CHAR / WIRE_BAUDRATE
"""3.5 character times at 115200 baud, 11 bits a character: about 0.33 ms."""
SLICE_S = 0.5
"""TCP phases alternate in slices of at most this long (see bench_tcp)."""
RTU_REQUEST_BYTES = 8
"""A read request on RTU: unit, function code, start (2), count (2), CRC (2)."""

AnyClient = AsyncModbusTcpClient | AsyncModbusSerialClient


# --- the wire limit (pure) ---------------------------------------------------------------------
def rtu_response_bytes(block: Block) -> int:
    """Bytes of the RTU answer to a read of `block`: unit, FC, byte count, data, CRC (2)."""
    data = math.ceil(block.count / 8) if block.function_code in (1, 2) else 2 * block.count
    return 5 + data


def rtu_limit_tps(blocks: Sequence[Block], baudrate: int) -> float:
    """Most transactions per second a line at `baudrate` carries for these reads, silences included."""
    wire_s = sum(
        wire_time_s(RTU_REQUEST_BYTES, baudrate) + wire_time_s(rtu_response_bytes(b), baudrate) for b in blocks
    )
    return len(blocks) / wire_s


# --- simulated devices --------------------------------------------------------------------------
def running_bench() -> BenchModel:
    """An lv-bench with its main switch on and the motor started: every measurement is non-zero."""
    bench = BenchModel(task=21)
    bench.main_switch = True
    bench.press("sb2_start")
    bench.tick(0.01)
    bench.press("sb2_start", down=False)
    return bench


class SampleCounter:
    """The sample sink: counts what a station session would receive."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, sample: Sample) -> None:
        self.count += 1


# --- the two loops being compared ----------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Phase:
    name: str
    transactions: int
    seconds: float

    @property
    def tps(self) -> float:
        return self.transactions / self.seconds


async def bare_read(client: AnyClient, block: Block) -> None:
    """One read as a plain pymodbus user writes it; fails loudly on an error answer."""
    fc, start, count = block.function_code, block.start, block.count
    if fc == 1:
        rr = await client.read_coils(start, count=count, device_id=UNIT)
    elif fc == 2:
        rr = await client.read_discrete_inputs(start, count=count, device_id=UNIT)
    elif fc == 3:
        rr = await client.read_holding_registers(start, count=count, device_id=UNIT)
    else:
        rr = await client.read_input_registers(start, count=count, device_id=UNIT)
    if rr.isError():
        raise RuntimeError(f"baseline: FC{fc} at {start} x{count} answered {rr}; the benchmark is invalid")


async def run_baseline(name: str, client: AnyClient, blocks: Sequence[Block], seconds: float) -> Phase:
    """Read every block in turn, as often as possible, for `seconds`."""
    polls = 0
    t0 = time.perf_counter()
    deadline = t0 + seconds
    while time.perf_counter() < deadline:
        for block in blocks:
            await bare_read(client, block)
        polls += 1
    return Phase(name, polls * len(blocks), time.perf_counter() - t0)


async def run_poller(name: str, poller: DevicePoller, seconds: float) -> Phase:
    """`poll_once()` as often as possible for `seconds`; every poll must succeed."""
    before = poller.link.transactions
    t0 = time.perf_counter()
    deadline = t0 + seconds
    while time.perf_counter() < deadline:
        if not await poller.poll_once():
            raise RuntimeError(f"{name}: a poll failed ({poller.health.last_error}); the benchmark is invalid")
    return Phase(name, poller.link.transactions - before, time.perf_counter() - t0)


def report(phase: Phase) -> Phase:
    log.info("  %-42s %8.1f transactions/s  (%d in %.2f s)", phase.name, phase.tps, phase.transactions, phase.seconds)
    return phase


# --- Modbus TCP: poller vs baseline --------------------------------------------------------------
async def bench_tcp(seconds: float, rounds: int, warmup_s: float) -> dict[str, Any]:
    profile = load_profile(TCP_PROFILE)
    assert isinstance(profile, ModbusProfile)
    samples = SampleCounter()
    async with contextlib.AsyncExitStack() as stack:
        server = await stack.enter_async_context(
            SimModbusServer([SimulatedDevice(UNIT, profile, running_bench())], tcp_port=0)
        )
        settings = ModbusTcpDevice(
            kind="modbus-tcp", name="bench", profile=TCP_PROFILE, host="127.0.0.1", port=server.port, unit=UNIT
        )
        device = PolledDevice("A01", settings, profile)
        link = await stack.enter_async_context(ModbusLink(device.link_key(), timeout_s=settings.timeout_s))
        poller = DevicePoller(device, link, samples)
        client = AsyncModbusTcpClient(
            "127.0.0.1", port=server.port, timeout=settings.timeout_s, retries=0, reconnect_delay=0
        )
        stack.callback(client.close)
        if not await client.connect():
            raise RuntimeError(f"baseline client cannot connect to 127.0.0.1:{server.port}")
        blocks = poller.blocks
        log.info("TCP %s: %d blocks %s", TCP_PROFILE, len(blocks), describe(blocks))
        await run_baseline("warm-up", client, blocks, warmup_s)
        await run_poller("warm-up", poller, warmup_s)
        baseline: list[Phase] = []
        ours: list[Phase] = []
        slices = max(1, math.ceil(seconds / SLICE_S))
        for r in range(1, rounds + 1):
            # A phase of `seconds` is cut into slices that alternate with the other side's and
            # swap which side goes first, so a burst of background load hits both sides alike.
            for i in range(slices):
                sides = ("baseline", "poller") if (r + i) % 2 else ("poller", "baseline")
                for side in sides:
                    name = f"round {r} slice {i + 1}"
                    if side == "baseline":
                        baseline.append(await run_baseline(name, client, blocks, seconds / slices))
                    else:
                        ours.append(await run_poller(name, poller, seconds / slices))
            report(merged(f"round {r} baseline", baseline[-slices:]))
            report(merged(f"round {r} poller", ours[-slices:]))
    poller_tps = statistics.median(p.tps for p in ours)
    baseline_tps = statistics.median(p.tps for p in baseline)
    return {
        "poller_tps": poller_tps,
        "baseline_tps": baseline_tps,
        "ratio": poller_tps / baseline_tps,
        "ratio_paired_median": statistics.median(p.tps / b.tps for p, b in zip(ours, baseline, strict=True)),
        "tcp_poller_rounds": [merged("", ours[k : k + slices]).tps for k in range(0, len(ours), slices)],
        "tcp_baseline_rounds": [merged("", baseline[k : k + slices]).tps for k in range(0, len(baseline), slices)],
        "tcp_samples": samples.count,
    }


def merged(name: str, phases: Sequence[Phase]) -> Phase:
    """Several slices of one side as one phase."""
    return Phase(name, sum(p.transactions for p in phases), sum(p.seconds for p in phases))


# --- Modbus RTU on a simulated 115200-baud line --------------------------------------------------
@contextlib.asynccontextmanager
async def wire_line(ideal: bool) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """`python -m hardware_sim.wire_line` in its own process: the precise line and the device.

    Its own process so the line's timing thread and the device never wait for this process' event
    loop or GIL, as a real device on a real wire would not. Yields the port path and, after the
    block, the line's own statistics (turnaround times) in the dict.
    """
    args = [sys.executable, "-m", "hardware_sim.wire_line", "--profile", RTU_PROFILE, "--unit", str(UNIT),
            "--baud", str(WIRE_BAUDRATE), *(["--ideal"] if ideal else [])]
    proc = await asyncio.create_subprocess_exec(*args, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
    assert proc.stdin is not None and proc.stdout is not None
    stats: dict[str, Any] = {}
    try:
        first = await asyncio.wait_for(proc.stdout.readline(), 20)
        yield json.loads(first)["path"], stats
    finally:
        proc.stdin.close()
        with contextlib.suppress(TimeoutError, ValueError):
            stats.update(json.loads(await asyncio.wait_for(proc.stdout.readline(), 10)))
        await proc.wait()


async def poll_rtu(path: str, profile: ModbusProfile, gap_ms: float | None, seconds: float, warmup_s: float,
                   samples: SampleCounter, name: str) -> Phase:
    bus = RtuBus(id="rs485", port=path, baudrate=WIRE_BAUDRATE, inter_frame_gap_ms=gap_ms)
    settings = ModbusRtuDevice(kind="modbus-rtu", name="weldsim", profile=RTU_PROFILE, bus="rs485", unit=UNIT)
    device = PolledDevice("B01", settings, profile, bus)
    # One link at a time: pymodbus opens the port exclusively, like a real adapter.
    async with ModbusLink(device.link_key(), timeout_s=settings.timeout_s) as link:
        poller = DevicePoller(device, link, samples)
        await run_poller("warm-up", poller, warmup_s)
        return report(await run_poller(f"{name} (gap {bus.gap_s() * 1e3:.3f} ms)", poller, seconds))


async def bench_rtu(seconds: float, warmup_s: float) -> dict[str, Any]:
    profile = load_profile(RTU_PROFILE)
    assert isinstance(profile, ModbusProfile)
    blocks = plan_blocks(profile)
    limit = rtu_limit_tps(blocks, WIRE_BAUDRATE)
    samples = SampleCounter()
    log.info("RTU %s at %d baud: %d blocks %s; wire limit %.1f transactions/s",
             RTU_PROFILE, WIRE_BAUDRATE, len(blocks), describe(blocks), limit)
    gap_ms = GAP_3_5_CHARS_S * 1e3
    async with wire_line(ideal=True) as (path, ideal_stats):
        ours = await poll_rtu(path, profile, gap_ms, seconds, warmup_s, samples, "poller, ideal device")
        client = AsyncModbusSerialClient(
            path, framer=FramerType.RTU, baudrate=WIRE_BAUDRATE, bytesize=8, parity="N", stopbits=1,
            timeout=0.5, retries=0, reconnect_delay=0,
        )
        try:
            if not await client.connect():
                raise RuntimeError(f"bare RTU client cannot open {path}")
            await run_baseline("warm-up", client, blocks, warmup_s)
            bare = report(await run_baseline("bare pymodbus, no gap, ideal device", client, blocks, seconds / 2))
        finally:
            client.close()
    async with wire_line(ideal=False) as (path, server_stats):
        with_server = await poll_rtu(path, profile, gap_ms, seconds / 2, warmup_s, samples,
                                     "poller, pymodbus server device")
    return {
        "rtu_tps": ours.tps,
        "rtu_limit_tps": limit,
        "bus_efficiency": ours.tps / limit,
        "rtu_gap_s": GAP_3_5_CHARS_S,
        "rtu_master_turnaround_ms": ideal_stats.get("master_turnaround_ms"),
        "rtu_bare_tps": bare.tps,
        "rtu_bare_bus_efficiency": bare.tps / limit,
        "rtu_tps_pymodbus_device": with_server.tps,
        "bus_efficiency_pymodbus_device": with_server.tps / limit,
        "pymodbus_device_turnaround_ms": server_stats.get("device_turnaround_ms"),
        "rtu_samples": samples.count,
    }


async def sleep_overshoot_ms(delay_s: float = 0.0011, n: int = 50) -> float:
    """How much later than asked `asyncio.sleep(delay_s)` returns on this event loop (median, ms).

    On Linux the default loop waits in epoll, whose timeout is whole milliseconds, rounded up.
    """
    late: list[float] = []
    for _ in range(n):
        t0 = time.perf_counter()
        await asyncio.sleep(delay_s)
        late.append(time.perf_counter() - t0 - delay_s)
    return statistics.median(late) * 1e3


def describe(blocks: Sequence[Block]) -> str:
    return ", ".join(f"FC{b.function_code}@{b.start}x{b.count}" for b in blocks)


async def run_all(seconds: float, rounds: int) -> dict[str, Any]:
    warmup_s = min(0.5, seconds / 4)
    started = time.perf_counter()
    tcp = await bench_tcp(seconds, rounds, warmup_s)
    rtu = await bench_rtu(seconds, warmup_s)
    overshoot = await sleep_overshoot_ms()
    leaked = sorted(t.get_name() for t in asyncio.all_tasks() if t is not asyncio.current_task())
    if leaked:
        log.error("tasks left running after the benchmark: %s", ", ".join(leaked))
    figures: dict[str, Any] = {
        "poller_tps": tcp.pop("poller_tps"),
        "baseline_tps": tcp.pop("baseline_tps"),
        "ratio": tcp.pop("ratio"),
        "rtu_tps": rtu.pop("rtu_tps"),
        "rtu_limit_tps": rtu.pop("rtu_limit_tps"),
        "bus_efficiency": rtu.pop("bus_efficiency"),
        **tcp,
        **rtu,
        "loop_sleep_1_1ms_overshoot_ms": overshoot,
        "loadavg_1min": os.getloadavg()[0],
        "seconds_per_phase": seconds,
        "rounds": rounds,
        "wall_s": time.perf_counter() - started,
        "leaked_tasks": leaked,
    }
    return {k: _rounded(v) for k, v in figures.items()}


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 4 if abs(value) < 10 else 1)
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON line on stdout")
    parser.add_argument("--seconds", type=float, default=3.0, help="seconds per measured phase (default 3)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating TCP rounds, median taken (default 3)")
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.rounds < 1:
        parser.error("--seconds must be > 0 and --rounds >= 1")
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(message)s")
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    try:
        figures = asyncio.run(run_all(args.seconds, args.rounds))
    except (RuntimeError, DeviceError) as err:
        log.error("benchmark aborted: %s", err)
        return 2
    log.info(
        "poller %.0f/s vs bare pymodbus %.0f/s: ratio %.3f (target >= 0.9); RTU %.1f/s of %.1f/s wire limit: "
        "bus efficiency %.3f (target >= 0.9); bare pymodbus on the same line %.1f/s",
        figures["poller_tps"], figures["baseline_tps"], figures["ratio"], figures["rtu_tps"],
        figures["rtu_limit_tps"], figures["bus_efficiency"], figures["rtu_bare_tps"],
    )
    if args.json:
        print(json.dumps(figures, ensure_ascii=False))
    else:
        for key, value in figures.items():
            print(f"{key:32s} {value}")
    return 1 if figures["leaked_tasks"] else 0


if __name__ == "__main__":
    sys.exit(main())
