"""All devices of a site, started from the site config: Modbus pollers, manikin and ID-card readers.

The one place where the application turns configuration into running device clients. It hands
every Sample to a single callback (the session layer routes them to stations), every value a device
sent that its profile cannot represent to another (a device fault, never a sample), and reports
each device's online/offline transitions, so the session can pause an item's clock on a device
fault.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass

from devices.clock import Clock, SystemClock
from devices.modbus.poller import ModbusPoller, PolledDevice
from devices.modbus.poller_thread import PollerThread
from devices.profile import ModbusProfile, SerialProfile, load_profile
from devices.ref import DeviceRef
from devices.sample import SampleSink, ValueFault
from devices.serial.id_card_reader import IdCardHealth, IdCardReader
from devices.serial.manikin_reader import ManikinHealth, ManikinReader
from devices.settings import ModbusRtuDevice, SerialDevice
from station.config import SiteConfig

StatusSink = Callable[[DeviceRef, bool, str], None]
"""Called as (device, online, reason) on every transition."""


@dataclass(frozen=True, slots=True)
class DeviceStatus:
    """What the proctor's device panel shows for one device."""

    device: DeviceRef
    kind: str
    online: bool | None
    detail: str


class DeviceHub:
    """Runs every configured device client; leave the context to stop them all."""

    def __init__(self, config: SiteConfig, on_sample: SampleSink,
                 on_status: StatusSink | None = None, clock: Clock | None = None,
                 on_fault: Callable[[ValueFault], None] | None = None, *, poll_thread: bool = False) -> None:
        """`poll_thread`: poll the Modbus devices on a thread of their own (devices.modbus.poller_thread),
        as `examstation run` and the demo do, so the rest of the controller cannot make a poll late;
        the sinks are still called on this loop. Off, the polls run on this loop and each sample is
        handed over the moment it is read, which the scenario replays need to be exact."""
        self.config = config
        self._clock = clock or SystemClock()
        self._on_status = on_status
        polled: list[PolledDevice] = []
        self.readers: list[ManikinReader | IdCardReader] = []
        for st in config.stations:
            for dev in st.devices:
                profile = load_profile(dev.profile)
                if isinstance(dev, SerialDevice):
                    assert isinstance(profile, SerialProfile)
                    if profile.protocol == "idcard-line-v1":
                        self.readers.append(IdCardReader(st.id, dev, profile, on_sample, self._clock,
                                                         on_health=self._serial_health))
                        continue
                    self.readers.append(ManikinReader(st.id, dev, profile, on_sample, self._clock,
                                                      on_health=self._serial_health, on_fault=on_fault))
                else:
                    assert isinstance(profile, ModbusProfile)
                    bus = config.bus(dev.bus) if isinstance(dev, ModbusRtuDevice) else None
                    polled.append(PolledDevice(st.id, dev, profile, bus))
        self.poller: ModbusPoller | PollerThread = (PollerThread if poll_thread else ModbusPoller)(
            polled, on_sample, on_status, self._clock, on_fault=on_fault)
        self._stack = contextlib.AsyncExitStack()

    def _serial_health(self, health: ManikinHealth | IdCardHealth) -> None:
        if self._on_status:
            self._on_status(health.device, health.online, health.problem)

    async def __aenter__(self) -> DeviceHub:
        await self._stack.enter_async_context(self.poller)
        for reader in self.readers:
            await self._stack.enter_async_context(reader)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()

    def status(self) -> list[DeviceStatus]:
        out = []
        for device, h in self.poller.health().items():
            detail = (f"{h.polls_ok} polls ok, {h.polls_failed} failed, "
                      f"{h.mean_latency_ms or 0:.1f} ms" + (f"; {h.last_error}" if h.online is False else ""))
            out.append(DeviceStatus(device, "modbus", h.online, detail))
        for r in self.readers:
            m = r.health
            if isinstance(m, IdCardHealth):
                detail = f"{m.cards_ok} cards, {m.bad_lines + m.overlong_lines} rejected lines"
            else:
                detail = f"{m.frames_ok} frames, {m.crc_errors} CRC errors"
            out.append(DeviceStatus(m.device, "serial", m.online, detail + (f"; {m.problem}" if not m.online else "")))
        return out
