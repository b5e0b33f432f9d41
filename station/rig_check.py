"""Is a station's rig ready for an item? Its devices online, and the rig at the item's rest state.

Before an item starts, what the previous candidate left (a 合格 still on the bench, meter leads on
the terminals, an empty cabinet slot) must be cleared, or the new candidate is scored on it; and a
device the item reads must be online, or the candidate is scored on its silence. The station
refuses to start the item otherwise, unless the examiner starts it anyway with a reason (audited,
and shown on the sheet). When an item ends, the same device list decides whether a device gap
needs the examiner's choice (scoring.gaps).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass

from devices.profile import load_profile
from devices.ref import DeviceRef
from devices.sample import Sample
from scoring.rig import rest_deviations, signals_read
from scoring.rubric import Item
from scoring.sheet import RestDeviation
from scoring.timeline import Value
from station.config import Station


@dataclass(frozen=True, slots=True)
class DeviceState:
    """What the station last heard of a device: online (None: not yet), and why not."""

    online: bool | None
    reason: str = ""


class RigState:
    """What the devices last said: every station's latest value of each signal (devices report on
    change, so this is the rig's state now), and each device's online state. Written on the event
    loop and by the status feed, read by the exam's worker threads: one lock around both."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._latest: dict[str, dict[str, Sample]] = {}
        self._devices: dict[DeviceRef, DeviceState] = {}

    def sample(self, station: str, sample: Sample) -> None:
        with self._lock:
            self._latest.setdefault(station, {})[sample.signal] = sample

    def latest(self, station: str) -> dict[str, Sample]:
        """signal -> its latest sample at `station` (a copy)."""
        with self._lock:
            return dict(self._latest.get(station, {}))

    def set_device(self, device: DeviceRef, state: DeviceState) -> None:
        with self._lock:
            self._devices[device] = state

    def devices(self) -> dict[DeviceRef, DeviceState]:
        with self._lock:
            return dict(self._devices)


def device_signals(station: Station) -> dict[DeviceRef, frozenset[str]]:
    """Each device of the station -> the signals its profile maps."""
    return {DeviceRef(station.id, d.name): frozenset(p.signal for p in load_profile(d.profile).points)
            for d in station.devices}


def devices_read(item: Item, station: Station) -> list[DeviceRef]:
    """The station's devices whose signals the item reads, in config order."""
    wanted = signals_read(item)
    return [device for device, signals in device_signals(station).items() if signals & wanted]


def unmapped_signals(item: Item, station: Station) -> list[str]:
    """Signals the item reads that no device of the station reports (a rig the station lacks)."""
    mapped = frozenset().union(*device_signals(station).values())
    return sorted(signals_read(item) - mapped)


@dataclass(frozen=True, slots=True)
class Readiness:
    offline: tuple[str, ...]
    """`A01/manikin is offline (no valid frame for 3.0 s)`, one per device the item reads."""
    missing: tuple[str, ...]
    """Signals the item reads that no device of the station reports."""
    not_at_rest: tuple[RestDeviation, ...]

    @property
    def ready(self) -> bool:
        return not (self.offline or self.missing or self.not_at_rest)

    def problems(self) -> list[str]:
        return [*self.offline, *(f"no device of the station reports {s}" for s in self.missing),
                *(d.describe() for d in self.not_at_rest)]


def readiness(item: Item, station: Station, latest: Mapping[str, Sample], devices: Mapping[DeviceRef, DeviceState]
              ) -> Readiness:
    """Whether `station` may start `item` now, from its latest samples and device states."""
    offline = []
    for device in devices_read(item, station):
        state = devices.get(device, DeviceState(None))
        if state.online is None:
            offline.append(f"{device} has not reported since the controller started")
        elif not state.online:
            offline.append(f"{device} is offline ({state.reason or 'no answer'})")

    def value_of(signal: str) -> Value | None:
        s = latest.get(signal)
        return None if s is None else s.value

    return Readiness(tuple(offline), tuple(unmapped_signals(item, station)), rest_deviations(item, value_of))
