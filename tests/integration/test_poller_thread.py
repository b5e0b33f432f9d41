"""The Modbus pollers on a thread of their own (devices.modbus.poller_thread), against a simulated
bench over a real TCP socket: the station's sinks are still called on the controller's loop, in
the order the polls found things; a refused sample is offered again; a controller loop that is
busy for half a second makes no poll late (on the loop itself it makes them late: the reason for
the thread); and leaving the context stops the thread."""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

import pytest

from devices.modbus.poller import ModbusPoller, PolledDevice
from devices.modbus.poller_thread import PollerThread
from devices.profile import ModbusProfile, load_profile
from devices.ref import DeviceRef
from devices.sample import Sample
from devices.settings import ModbusTcpDevice
from hardware_sim.modbus_server import SimModbusServer, SimulatedDevice
from hardware_sim.models.bench import BenchModel
from tests.integration.waiting import wait_for

PROFILE = "lv-bench"


@dataclass
class Seen:
    samples: list[Sample] = field(default_factory=list)
    threads: set[int] = field(default_factory=set)
    transitions: list[tuple[DeviceRef, bool, str]] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)
    """Signals refused once (the station's store full), then accepted."""
    refused: list[Sample] = field(default_factory=list)
    explode: set[str] = field(default_factory=set)
    """Signals whose next sample makes the sink raise (a bug in the station), once."""

    def sample(self, s: Sample) -> bool:
        self.threads.add(threading.get_ident())
        if s.signal in self.explode:
            self.explode.discard(s.signal)
            raise RuntimeError(f"a bug while storing {s.signal}")
        if s.signal in self.refuse:
            self.refuse.discard(s.signal)
            self.refused.append(s)
            return False
        self.samples.append(s)
        return True

    def status(self, device: DeviceRef, online: bool, reason: str) -> None:
        self.threads.add(threading.get_ident())
        self.transitions.append((device, online, reason))


@contextlib.asynccontextmanager
async def bench(threaded: bool, seen: Seen) -> AsyncIterator[tuple[BenchModel, ModbusPoller | PollerThread]]:
    """The simulated bench on a loop of its own thread (as a real bench is another machine: a busy
    controller loop must not slow the device), the poller under test on this one."""
    profile = load_profile(PROFILE)
    assert isinstance(profile, ModbusProfile)
    model = BenchModel()
    with device_thread(SimulatedDevice(1, profile, model)) as port:
        settings = ModbusTcpDevice(kind="modbus-tcp", name="bench", profile=PROFILE, host="127.0.0.1",
                                   port=port, unit=1, poll_interval_ms=100, timeout_s=0.3)
        devices = [PolledDevice("A01", settings, profile)]
        poller = (PollerThread if threaded else ModbusPoller)(devices, seen.sample, seen.status)
        async with poller:
            yield model, poller


@contextlib.contextmanager
def device_thread(device: SimulatedDevice) -> Iterator[int]:
    """A SimModbusServer on 127.0.0.1 serving `device` from its own thread and loop; yields the port."""
    ready: queue.Queue[int] = queue.Queue()
    stop = threading.Event()

    async def serve() -> None:
        async with SimModbusServer([device], tcp_port=0) as server:
            ready.put(server.port)
            while not stop.is_set():  # noqa: ASYNC110 - stopped from the test's thread
                await asyncio.sleep(0.05)

    thread = threading.Thread(target=asyncio.run, args=(serve(),), name="simulated bench")
    thread.start()
    try:
        yield ready.get(timeout=10)
    finally:
        stop.set()
        thread.join(10)


def values(seen: Seen, signal: str) -> list[object]:
    return [s.value for s in seen.samples if s.signal == signal]


async def test_samples_reach_the_loop_in_order_and_a_refused_one_comes_again() -> None:
    seen = Seen()
    async with bench(True, seen) as (model, _poller):
        await wait_for(lambda: any(s.signal == "bench.main_switch" for s in seen.samples), 5.0, "the first poll")
        assert seen.threads == {threading.get_ident()}, "the sinks run on the controller's loop, not the poller's"
        assert seen.transitions == [(DeviceRef("A01", "bench"), True, "")]
        for turn in range(6):
            if turn == 3:
                seen.refuse.add("bench.meter_probe")  # the store is full for this one
            model.meter_probe = not model.meter_probe
            await asyncio.sleep(0.35)  # held for over three polls
        assert len(seen.refused) == 1 and seen.refused[0].value is False
        # every change arrived, in order, the refused one again at a later poll
        assert values(seen, "bench.meter_probe")[-6:] == [True, False, True, False, True, False]
        again = next(s for s in seen.samples if s.signal == "bench.meter_probe" and s.value is False
                     and s.t_mono_ns > seen.refused[0].t_mono_ns)
        assert 0 < again.t_mono_ns - seen.refused[0].t_mono_ns < 350_000_000
        stamps = [s.t_mono_ns for s in seen.samples]
        assert stamps == sorted(stamps)
        assert any(t.name == "modbus-pollers" for t in threading.enumerate())
    assert not any(t.name == "modbus-pollers" for t in threading.enumerate()), "leaving the context stops it"


async def test_a_busy_controller_loop_makes_no_poll_late_on_the_thread_and_does_on_the_loop() -> None:
    late = {threaded: await _late_polls_while_the_loop_is_busy(threaded) for threaded in (True, False)}
    assert late[True] == 0, late
    assert late[False] >= 1, late


async def _late_polls_while_the_loop_is_busy(threaded: bool) -> int:
    seen = Seen()
    async with bench(threaded, seen) as (model, poller):
        await wait_for(lambda: bool(seen.samples), 5.0, "the first poll")
        health = next(iter(poller.health().values()))
        before_late, before_ok = health.polls_late, health.polls_ok
        model.meter_probe = True
        time.sleep(0.5)  # noqa: ASYNC251 - the point: the controller's loop is busy for half a second
        await asyncio.sleep(0.5)
        late = health.polls_late - before_late
        assert health.polls_ok - before_ok >= (8 if threaded else 4), (threaded, health)
        await wait_for(lambda: values(seen, "bench.meter_probe")[-1:] == [True], 2.0, "the change")
    return late


async def test_a_sink_that_raises_loses_nothing(caplog: pytest.LogCaptureFixture) -> None:
    """With the polls on the loop, a sink's exception was a failed poll and the value came again;
    handed over from the thread it must come again too, and the rest of the batch still arrive."""
    seen = Seen()
    async with bench(True, seen) as (model, _poller):
        await wait_for(lambda: bool(seen.samples), 5.0, "the first poll")
        seen.explode.add("bench.meter_probe")
        model.meter_probe = True
        await wait_for(lambda: values(seen, "bench.meter_probe")[-1:] == [True], 2.0, "the value again")
        assert not seen.explode, "the sink did raise"
        model.main_switch = True
        await wait_for(lambda: values(seen, "bench.main_switch")[-1:] == [True], 2.0, "later changes")
    assert "handing over a sample failed; report this as a bug" in caplog.text


async def test_cancelled_while_starting_leaves_no_thread() -> None:
    seen = Seen()
    profile = load_profile(PROFILE)
    assert isinstance(profile, ModbusProfile)
    with device_thread(SimulatedDevice(1, profile, BenchModel())) as port:
        settings = ModbusTcpDevice(kind="modbus-tcp", name="bench", profile=PROFILE, host="127.0.0.1",
                                   port=port, unit=1, poll_interval_ms=100, timeout_s=0.3)
        poller = PollerThread([PolledDevice("A01", settings, profile)], seen.sample, seen.status)
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0):
                await poller.__aenter__()
        assert not any(t.name == "modbus-pollers" for t in threading.enumerate())
        await asyncio.sleep(0.3)
        assert seen.samples == [] and seen.transitions == [], "nothing polled after it gave up"
