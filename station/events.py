"""The station's event stream: what happens, as it happens, for whoever watches.

The proctor UI, the live uplink and the status lines all want to know when a sample arrives, an
item starts or pauses, a device drops, an alarm is raised or a result is delivered. Each
subscribes here and gets its own bounded queue: a slow subscriber loses its own oldest events
(and is told how many, with a `Lost` event), it never slows the station, and the station never
waits for it. Publishing is thread-safe and never blocks: the exam's worker threads and the event
loop both publish.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from devices.ref import DeviceRef
from station.uplink.outbox import OutboxState


@dataclass(frozen=True, slots=True)
class SampleEvent:
    device: DeviceRef
    signal: str
    value: Any
    t_utc_ns: int


@dataclass(frozen=True, slots=True)
class FindingEvent:
    """A rubric row found something live (today: a veto condition met, which stops the item)."""

    station: str
    attempt_id: str
    item: str
    code: str
    detail: str
    t_utc_ns: int


@dataclass(frozen=True, slots=True)
class ItemStateEvent:
    """An attempt changed state: `kind` is the step (item_start, pause, item_end, scored, queued...)."""

    station: str
    attempt_id: str
    state: str
    kind: str
    item: str
    detail: str
    t_utc_ns: int


@dataclass(frozen=True, slots=True)
class DeviceHealthEvent:
    device: DeviceRef
    online: bool
    reason: str


@dataclass(frozen=True, slots=True)
class AlarmEvent:
    """Something a person must act on: what happened and what to do. `cleared` ends an alarm."""

    code: str
    """Stable key of the condition (storage.stalled, uplink.untrusted_receipt...), for the UI."""
    what: str
    todo: str
    station: str | None
    t_utc_ns: int
    cleared: bool = False


@dataclass(frozen=True, slots=True)
class ResultStateEvent:
    result_id: str
    attempt_id: str
    state: OutboxState
    detail: str = ""


@dataclass(frozen=True, slots=True)
class DisciplineEvent:
    """A proctor or examiner recorded a discipline incident (考场违纪) at a station (station.discipline)."""

    station: str
    attempt_id: str | None
    incident_id: int
    category: str
    note: str
    recorded_by: str
    t_utc_ns: int


@dataclass(frozen=True, slots=True)
class Lost:
    """This subscriber fell behind: `count` events were dropped (its oldest) since the last one."""

    count: int


Event = (SampleEvent | FindingEvent | ItemStateEvent | DeviceHealthEvent | AlarmEvent | ResultStateEvent
         | DisciplineEvent)


class Subscription:
    """One subscriber's queue: `async for event in subscription` (a `Lost` when it fell behind)."""

    def __init__(self, bus: EventBus, name: str, maxsize: int, loop: asyncio.AbstractEventLoop,
                 kinds: tuple[type, ...] | None) -> None:
        self.name = name
        self.kinds = kinds
        """The event types this subscriber wants (None: all): alarms are not crowded out by samples."""
        self._bus = bus
        self._queue: deque[Event] = deque()
        self._maxsize = maxsize
        self._lost = 0
        self.lost_total = 0
        self._lock = threading.Lock()
        self._loop = loop
        self._ready = asyncio.Event()

    def _put(self, event: Event) -> None:
        if self.kinds is not None and not isinstance(event, self.kinds):
            return
        with self._lock:
            if len(self._queue) >= self._maxsize:
                self._queue.popleft()
                self._lost += 1
                self.lost_total += 1
            self._queue.append(event)
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is waiting any more
            self._loop.call_soon_threadsafe(self._ready.set)

    def get_nowait(self) -> Event | Lost | None:
        with self._lock:
            if self._lost:
                lost, self._lost = self._lost, 0
                return Lost(lost)
            return self._queue.popleft() if self._queue else None

    async def get(self) -> Event | Lost:
        while True:
            item = self.get_nowait()
            if item is not None:
                return item
            self._ready.clear()
            item = self.get_nowait()
            if item is not None:
                return item
            await self._ready.wait()

    async def __aiter__(self) -> AsyncIterator[Event | Lost]:
        while True:
            yield await self.get()

    def close(self) -> None:
        self._bus.unsubscribe(self)


class EventBus:
    def __init__(self) -> None:
        self._subs: tuple[Subscription, ...] = ()
        self._lock = threading.Lock()

    def subscribe(self, name: str, maxsize: int = 1000, kinds: tuple[type, ...] | None = None) -> Subscription:
        """A new queue of `maxsize` events of `kinds` (all when None), fed from now on; call it on the
        event loop that reads it."""
        sub = Subscription(self, name, maxsize, asyncio.get_running_loop(), kinds)
        with self._lock:
            self._subs = (*self._subs, sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            self._subs = tuple(s for s in self._subs if s is not sub)

    def publish(self, event: Event) -> None:
        """Hand `event` to every subscriber; never blocks, from any thread."""
        for sub in self._subs:
            sub._put(event)

    @property
    def subscribers(self) -> int:
        return len(self._subs)
