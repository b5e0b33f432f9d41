"""The event stream: each subscriber its own bounded queue; a slow one loses its own oldest events
and is told how many; publishing never waits, from any thread."""

from __future__ import annotations

import asyncio
import threading
import time

from devices.ref import DeviceRef
from station.events import AlarmEvent, DeviceHealthEvent, EventBus, Lost, SampleEvent

BENCH = DeviceRef("A01", "bench")


def sample(n: int) -> SampleEvent:
    return SampleEvent(BENCH, "bench.km1", n, n)


async def test_a_slow_subscriber_loses_its_own_oldest_events_and_is_told() -> None:
    bus = EventBus()
    slow = bus.subscribe("slow", maxsize=3)
    fast = bus.subscribe("fast", maxsize=100)
    for n in range(10):
        bus.publish(sample(n))
    assert await slow.get() == Lost(7)
    assert [await slow.get() for _ in range(3)] == [sample(7), sample(8), sample(9)]
    assert [await fast.get() for _ in range(10)] == [sample(n) for n in range(10)]
    assert slow.lost_total == 7 and fast.lost_total == 0


async def test_publishing_from_threads_never_waits_for_a_reader() -> None:
    bus = EventBus()
    sub = bus.subscribe("ui", maxsize=50)
    took: list[float] = []

    def publisher() -> None:
        for n in range(2000):
            t = time.perf_counter()
            bus.publish(DeviceHealthEvent(BENCH, n % 2 == 0, ""))
            took.append(time.perf_counter() - t)

    threads = [threading.Thread(target=publisher) for _ in range(3)]
    for th in threads:
        th.start()
    for th in threads:
        await asyncio.to_thread(th.join)
    assert sum(took) < 5  # 6000 events into a queue of 50 nobody reads: publishing never waited for room
    first = await sub.get()
    assert isinstance(first, Lost) and first.count == 6000 - 50
    rest = [sub.get_nowait() for _ in range(50)]
    assert all(isinstance(e, DeviceHealthEvent) for e in rest) and sub.get_nowait() is None


async def test_a_waiting_reader_wakes_when_a_worker_thread_publishes() -> None:
    bus = EventBus()
    sub = bus.subscribe("ui")
    threading.Timer(0.05, bus.publish, args=(sample(1),)).start()
    async with asyncio.timeout(2):
        assert await sub.get() == sample(1)
    sub.close()
    assert bus.subscribers == 0


async def test_a_subscriber_gets_only_the_kinds_it_asked_for() -> None:
    """A console that shows alarms is not crowded out of them by a flood of samples."""
    bus = EventBus()
    alarms = bus.subscribe("alarm lines", maxsize=2, kinds=(AlarmEvent,))
    bus.publish(AlarmEvent("storage.stalled", "the disk is full", "free space", None, 1))
    for n in range(1000):
        bus.publish(sample(n))
    assert await alarms.get() == AlarmEvent("storage.stalled", "the disk is full", "free space", None, 1)
    assert alarms.get_nowait() is None
