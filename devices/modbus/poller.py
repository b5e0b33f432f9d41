"""Poll Modbus devices at their interval and turn register changes into Samples.

One `DevicePoller` per device reads its planned blocks through the device's link (shared with
the other devices on the same bus or gateway), retries once, keeps health, and emits a Sample
only when a value moved more than its deadband. `ModbusPoller` owns the links and one named task
per device, so leaving its context stops everything it started.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from devices.clock import Clock, SystemClock
from devices.errors import (
    DeviceDisconnected,
    DeviceError,
    DeviceExceptionResponse,
    DeviceTimeout,
    DeviceUnreachable,
    ProtocolError,
)
from devices.health import DeviceHealth
from devices.modbus.block_plan import Block, plan_blocks
from devices.modbus.link import Backoff, ModbusLink, RtuTarget, TcpTarget
from devices.modbus.register_codec import Decoder, Unrepresentable, Value, compile_decoder
from devices.profile import ModbusProfile
from devices.ref import DeviceRef
from devices.sample import Sample, SampleSink, ValueFault
from devices.settings import ModbusRtuDevice, ModbusTcpDevice, RtuBus

log = logging.getLogger(__name__)

StatusSink = Callable[[DeviceRef, bool, str], None]
"""Called as (device, online, reason) when a device goes offline or comes back."""
FaultSink = Callable[[ValueFault], None]
"""Called with a value a device sent that its profile cannot represent (once per new raw value)."""


def error_kind(err: DeviceError) -> str:
    """Short name of an error class, used as the health counter key."""
    if isinstance(err, DeviceExceptionResponse):
        return "exception"
    if isinstance(err, ProtocolError):
        return "protocol"
    if isinstance(err, DeviceTimeout):
        return "timeout"
    if isinstance(err, DeviceDisconnected):
        return "disconnected"
    return "error"


@dataclass(frozen=True, slots=True)
class PolledDevice:
    """A configured Modbus device with its register map, ready to poll."""

    station: str
    settings: ModbusTcpDevice | ModbusRtuDevice
    profile: ModbusProfile
    bus: RtuBus | None = None

    @property
    def ref(self) -> DeviceRef:
        return DeviceRef(self.station, self.settings.name)

    @property
    def interval_s(self) -> float:
        ms = self.settings.poll_interval_ms or self.profile.poll_interval_ms
        return ms / 1000.0

    def link_key(self) -> TcpTarget | RtuTarget:
        s = self.settings
        if isinstance(s, ModbusTcpDevice):
            return TcpTarget(s.host, s.port)
        if self.bus is None:
            raise DeviceError(f"{self.ref}: modbus-rtu device without its bus settings")
        b = self.bus
        return RtuTarget(b.port, b.baudrate, b.parity, b.stopbits, b.gap_s())


class DevicePoller:
    """Reads one device's blocks, decodes them and emits changes."""

    def __init__(
        self, device: PolledDevice, link: ModbusLink, on_sample: SampleSink,
        on_status: StatusSink | None = None, clock: Clock | None = None, on_fault: FaultSink | None = None,
    ) -> None:
        self.device = device
        self._on_fault = on_fault
        self._bad: dict[str, str] = {}
        """signal -> the raw words of the unrepresentable value last reported (reported once)."""
        self.link = link
        self.blocks: tuple[Block, ...] = plan_blocks(device.profile)
        self._last_raw: list[Sequence[int] | Sequence[bool] | None] = [None] * len(self.blocks)
        self._decoders: list[list[tuple[str, Decoder, float]]] = [
            [(p.signal, compile_decoder(p, b.start), p.deadband) for p in b.points] for b in self.blocks
        ]
        self._block_of: dict[str, int] = {p.signal: k for k, b in enumerate(self.blocks) for p in b.points}
        self.health = DeviceHealth(device.ref)
        self._on_sample = on_sample
        self._on_status = on_status
        self._clock = clock or SystemClock()
        self._last: dict[str, Value] = {}
        kind = "modbus-tcp" if isinstance(device.settings, ModbusTcpDevice) else "modbus-rtu"
        self.who = f"station {device.station} {device.settings.name}@{kind} unit {device.settings.unit}"

    async def _retry(self, block: Block, err: DeviceError) -> Sequence[int] | Sequence[bool]:
        """After a failed read: count it, then retry (a lost connection at once, the link
        reconnects); an exception answer or a refused connect is not retried."""
        settings = self.device.settings
        for attempt in range(settings.retries + 1):
            self.health.record_error(error_kind(err), str(err))
            if isinstance(err, DeviceUnreachable | DeviceExceptionResponse) or attempt == settings.retries:
                raise err
            try:
                return await self.link.read(self.who, settings.unit, block.function_code, block.start, block.count)
            except (DeviceTimeout, ProtocolError, DeviceDisconnected) as again:
                err = again
        raise err

    async def poll_once(self) -> bool:
        """Read every block once; True if all reads succeeded. Never raises a DeviceError."""
        started = self._clock.mono_ns()
        results: list[Sequence[int] | Sequence[bool]] = []
        try:
            unit = self.device.settings.unit
            for block in self.blocks:
                # the happy path awaits the link directly: one coroutine less per read (hot path)
                try:
                    raw = await self.link.read(self.who, unit, block.function_code, block.start, block.count)
                except (DeviceTimeout, ProtocolError, DeviceDisconnected) as err:
                    raw = await self._retry(block, err)
                results.append(raw)
        except DeviceError as err:
            if self.health.record_failed_poll():
                log.warning("%s offline: %s", self.who, err)
                if self._on_status:
                    self._on_status(self.device.ref, False, str(err))
            return False
        t_mono = self._clock.mono_ns()
        t_utc = self._clock.utc_ns()
        if self.health.record_ok((t_mono - started) / 1e6):
            if self.health.polls_ok > 1 or self.health.polls_failed:
                log.warning("%s back online after %d failed polls", self.who, self.health.polls_failed)
            if self._on_status:
                self._on_status(self.device.ref, True, "")
        last = self._last
        sink = self._on_sample
        ref = self.device.ref
        previous = self._last_raw
        for k, (decoders, raw) in enumerate(zip(self._decoders, results, strict=True)):
            # Same words as last poll: same decoded values, already compared with what was emitted.
            # Most blocks of a rig at rest are unchanged, so this skips most of the decoding.
            if raw == previous[k]:
                continue
            refused = False
            for signal, decode, deadband in decoders:
                try:
                    value = decode(raw)
                except Unrepresentable as err:
                    self._unrepresentable(signal, err, t_mono, t_utc)
                    continue
                if signal in self._bad:
                    del self._bad[signal]
                if signal not in last or self._changed(last[signal], value, deadband):
                    if sink(Sample(signal, value, t_mono, t_utc, ref)) is False:
                        refused = True  # not stored: keep the old state, so the next poll offers it again
                    else:
                        last[signal] = value
            if not refused:
                previous[k] = raw
        return True

    def reoffer(self, signal: str) -> None:
        """Offer `signal` again at the next poll: its sample was refused after `poll_once` had
        returned (devices.modbus.poller_thread hands samples to the station on another thread)."""
        self._last.pop(signal, None)
        k = self._block_of.get(signal)
        if k is not None:
            self._last_raw[k] = None

    def _unrepresentable(self, signal: str, err: Unrepresentable, t_mono: int, t_utc: int) -> None:
        """A value the profile cannot represent is a device fault, never a sample: the last good
        value stands, and the fault (with the raw words) is reported once until the words change."""
        if self._bad.get(signal) == err.raw:
            return
        self._bad[signal] = err.raw
        self.health.record_error("value", str(err))
        log.warning("%s: %s; recorded as a device fault, not a reading: check the device and its profile",
                    self.who, err)
        if self._on_fault:
            self._on_fault(ValueFault(signal, err.raw, err.reason, t_mono, t_utc, self.device.ref))

    @staticmethod
    def _changed(last: Value, value: Value, deadband: float) -> bool:
        if deadband == 0 or isinstance(value, bool) or isinstance(last, bool):
            return value != last
        # "More than the deadband" in engineering units; the tolerance keeps a change of exactly one
        # deadband (0.1 V read as 220.1 - 220.0 = 0.09999999999999432) on the same side every time.
        return abs(float(value) - float(last)) > deadband * (1 + 1e-9) + 1e-12

    async def run(self) -> None:
        """Poll forever at a fixed rate; a slow poll skips missed slots instead of bunching up.

        A bug in one device's decoding must not stop the other devices of the hall: it is logged
        with its traceback, counted as a failed poll, and polling goes on.
        """
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        interval = self.device.interval_s
        next_at = loop.time()
        while True:
            try:
                await self.poll_once()
            except Exception as err:
                log.exception("%s: unexpected error while polling; report this as a bug", self.who)
                self.health.record_error("internal", f"{type(err).__name__}: {err}")
                self.health.record_failed_poll()
            if task is not None and task.cancelling():
                # Python 3.11's asyncio.wait_for (inside pymodbus) returns an answer that lands as the
                # task is cancelled and loses the cancellation: stop anyway, or shutdown waits forever.
                raise asyncio.CancelledError
            next_at += interval
            now = loop.time()
            if next_at < now:  # this poll ended after the next was due: late, and the missed slots are skipped
                self.health.polls_late += 1
                next_at = now + (interval - (now - next_at) % interval)
            await asyncio.sleep(next_at - now)


class ModbusPoller:
    """All Modbus devices of a site: shared links per TCP endpoint or RS-485 bus, one task each."""

    def __init__(
        self, devices: Sequence[PolledDevice], on_sample: SampleSink,
        on_status: StatusSink | None = None, clock: Clock | None = None, backoff: Backoff | None = None,
        on_fault: FaultSink | None = None,
    ) -> None:
        self.links: dict[TcpTarget | RtuTarget, ModbusLink] = {}
        self.pollers: list[DevicePoller] = []
        fastest: dict[TcpTarget | RtuTarget, float] = {}
        for dev in devices:
            key = dev.link_key()
            fastest[key] = min(fastest.get(key, dev.interval_s), dev.interval_s)
        for dev in devices:
            key = dev.link_key()
            link = self.links.get(key)
            if link is None:
                # Reconnect attempts back off up to one poll interval of the link's fastest device:
                # a refused connect or a missing port fails at once and costs nothing, and a device
                # that is back is then polled again within two intervals.
                link_backoff = backoff or Backoff(base_s=min(0.05, fastest[key] / 2), cap_s=fastest[key])
                link = ModbusLink(key, timeout_s=dev.settings.timeout_s, backoff=link_backoff)
                self.links[key] = link
            self.pollers.append(DevicePoller(dev, link, on_sample, on_status, clock, on_fault))
        self._group: asyncio.TaskGroup | None = None
        self._runner: asyncio.Task[None] | None = None

    async def __aenter__(self) -> ModbusPoller:
        self._runner = asyncio.create_task(self._run_all(), name="modbus-poller")
        return self

    async def _run_all(self) -> None:
        async with asyncio.TaskGroup() as group:
            for p in self.pollers:
                group.create_task(p.run(), name=f"poll {p.device.ref}")

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
        for link in self.links.values():
            link.close()

    def health(self) -> dict[DeviceRef, DeviceHealth]:
        return {p.device.ref: p.health for p in self.pollers}
