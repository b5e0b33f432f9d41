"""The asyncio reader of a CPR manikin's serial line: frames in, Samples and health out.

Why this shape: the manikin streams events on its own, so the reader is a single task that waits
for bytes, never a poller. The port is opened with pyserial (`timeout=0`, non-blocking) and read
from the event loop with `loop.add_reader` on its file descriptor; the open itself runs in a
worker thread because a `socket://` URL connects synchronously. Framing, CRC and resync live in
the pure codec (`manikin_codec.py`); this module adds the port's life cycle (reopen with capped,
jittered backoff), timestamps from the injected clock, the profile's frame -> signal mapping and
the device's health, logging once when it goes offline and once when it is back.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal

from devices.clock import Clock
from devices.errors import DeviceConfigError, DeviceError
from devices.profile import FramePoint, SerialProfile
from devices.ref import DeviceRef
from devices.sample import Sample, SampleSink, Scalar, ValueFault
from devices.serial.manikin_codec import (
    FRAME_FIELDS,
    Frame,
    HeartbeatFrame,
    frame_fields,
)
from devices.serial.manikin_decoder import FrameDecoder
from devices.serial.port import keep_open, open_port, reopen_delay_s, translate
from devices.settings import SerialDevice

logger = logging.getLogger(__name__)
DEVICE = "the manikin"
"""How error messages name the device in their fix."""

_READ_SIZE = 4096
HEARTBEAT_INTERVAL_S = 1.0
"""How often manikin-frame-v1 promises a heartbeat (used in messages only)."""


@dataclass(frozen=True, slots=True)
class ManikinHealth:
    """A snapshot of one manikin link, for the station's device panel and the site check."""

    device: DeviceRef
    online: bool
    port_open: bool
    frames_ok: int
    crc_errors: int
    lost_frames: int
    garbage_bytes: int
    resyncs: int
    malformed_frames: int
    unknown_frames: int
    last_frame_age_s: float | None
    """Seconds since the last good frame; None before the first one."""
    battery_pct: int | None
    firmware: str | None
    problem: str
    """Why it is offline (the logged text), empty while online."""


class ManikinReader:
    """Reads one manikin and hands each compression/ventilation/state frame on as a Sample.

    Use as `async with ManikinReader(...) as reader:`; the reader owns one task, named after the
    device, that opens the port, reads it and reopens it when it vanishes. It never raises for
    link problems: they show in `health` and in the log. `on_sample` is called on the event loop
    for every mapped frame, in wire order; it must not block. `on_health` (optional) is called on
    every online/offline transition.
    """

    def __init__(
        self,
        station: str,
        settings: SerialDevice,
        profile: SerialProfile,
        on_sample: SampleSink,
        clock: Clock,
        *,
        on_health: Callable[[ManikinHealth], None] | None = None,
        on_fault: Callable[[ValueFault], None] | None = None,
        reopen_min_s: float = 0.5,
        reopen_max_s: float = 10.0,
        rng: random.Random | None = None,
    ) -> None:
        self._station = station
        self._settings = settings
        self._on_sample = on_sample
        self._on_health = on_health
        self._on_fault = on_fault
        self._clock = clock
        self._reopen_min_s = reopen_min_s
        self._reopen_max_s = max(reopen_max_s, reopen_min_s)
        self._rng = rng or random.Random()
        self.device = DeviceRef(station, settings.name)
        self._who = f"station {station} {settings.name}@{settings.port}"
        self._points = self._check_profile(profile)
        self._decoder = FrameDecoder()
        self._task: asyncio.Task[None] | None = None
        self._port: Any = None
        self._port_error: DeviceError | None = None
        self._port_failed = asyncio.Event()
        self._state: Literal["starting", "online", "offline"] = "starting"
        self._problem = "not connected yet"
        self._failures = 0
        self._window_ns = clock.mono_ns()
        self._last_good_ns: int | None = None
        self._offline_since_ns = 0
        self._crc_at_good = 0
        self._garbage_at_good = 0
        self._battery_pct: int | None = None
        self._firmware: str | None = None

    def _check_profile(self, profile: SerialProfile) -> dict[str, FramePoint]:
        points: dict[str, FramePoint] = {}
        for point in profile.points:
            known = FRAME_FIELDS.get(point.frame)
            if known is None:
                raise DeviceConfigError(
                    f"{self._who}: profile {profile.profile} maps frame {point.frame!r}, which "
                    f"manikin-frame-v1 does not have; use one of {', '.join(FRAME_FIELDS)}"
                )
            for field in point.fields:
                if field.field not in known:
                    raise DeviceConfigError(
                        f"{self._who}: profile {profile.profile} maps field {field.field!r} of frame "
                        f"{point.frame}, which does not exist; use one of {', '.join(known)}"
                    )
            points[point.frame] = point
        return points

    async def __aenter__(self) -> ManikinReader:
        if self._task is not None:
            raise RuntimeError(f"{self._who}: reader already started")
        self._task = asyncio.create_task(self._run(), name=f"manikin-reader {self.device}")
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        task = self._task
        if task is None:
            return
        task.cancel()
        await asyncio.wait([task])
        error = None if task.cancelled() else task.exception()
        if error is not None:
            raise error

    @property
    def health(self) -> ManikinHealth:
        """The link's state and counters right now."""
        d = self._decoder
        age = None if self._last_good_ns is None else (self._clock.mono_ns() - self._last_good_ns) / 1e9
        return ManikinHealth(
            device=self.device,
            online=self._state == "online",
            port_open=self._port is not None,
            frames_ok=d.frames_ok,
            crc_errors=d.crc_errors,
            lost_frames=d.lost_frames,
            garbage_bytes=d.garbage_bytes,
            resyncs=d.resyncs,
            malformed_frames=d.malformed_frames,
            unknown_frames=d.unknown_frames,
            last_frame_age_s=age,
            battery_pct=self._battery_pct,
            firmware=self._firmware,
            problem="" if self._state == "online" else self._problem,
        )

    # -- the task ---------------------------------------------------------------------------------

    async def _run(self) -> None:
        try:
            await self._read_forever()
        except Exception as err:
            self._state, self._problem = "offline", f"{self._who}: reader stopped by an unexpected error ({err!r})"
            logger.exception("%s; restart the controller and report this log", self._problem)
            self._notify()
            raise

    async def _read_forever(self) -> None:
        await keep_open(self._open, self._pump, self._close, self._failed,
                        f"retrying every {self._reopen_max_s:.1f} s at most")

    def _failed(self, problem: str) -> float:
        """Count a failed open or a lost port, go offline, and say how long to wait."""
        self._failures += 1
        self._go_offline(problem)
        return reopen_delay_s(self._failures, self._reopen_min_s, self._reopen_max_s, self._rng)

    async def _open(self) -> Any:
        return await open_port(self._settings.port, self._settings.baudrate, self._who, DEVICE)

    async def _pump(self, port: Any) -> None:
        """Read until the port fails (raises the translated error); go offline on silence."""
        loop = asyncio.get_running_loop()
        fd: int = port.fileno()
        self._port, self._port_error = port, None
        self._port_failed.clear()
        self._decoder.reset()
        self._window_ns = self._clock.mono_ns()
        timeout_s = self._settings.heartbeat_timeout_s
        loop.add_reader(fd, self._on_readable)
        try:
            while True:
                remaining_s = timeout_s - self._silence_s()
                if remaining_s <= 0:
                    self._go_offline(self._silence_problem())
                    remaining_s = timeout_s
                try:
                    async with asyncio.timeout(remaining_s):
                        await self._port_failed.wait()
                except TimeoutError:
                    continue
                if self._port_error is not None:
                    raise self._port_error
        finally:
            loop.remove_reader(fd)
            self._port = None

    def _close(self, port: Any) -> None:
        try:
            port.close()
        except OSError as err:
            logger.debug("%s: closing the port failed (%s); ignored", self._who, err)

    def _silence_s(self) -> float:
        since = self._window_ns if self._last_good_ns is None else max(self._window_ns, self._last_good_ns)
        return (self._clock.mono_ns() - since) / 1e9

    def _silence_problem(self) -> str:
        d = self._decoder
        return (
            f"{self._who}: no valid frame for {self._silence_s():.1f} s (expected a heartbeat every "
            f"{HEARTBEAT_INTERVAL_S:.0f} s; seen {d.crc_errors - self._crc_at_good} CRC errors, "
            f"{d.garbage_bytes - self._garbage_at_good} garbage bytes); "
            "check the cable and the manikin's power"
        )

    # -- event-loop callbacks -----------------------------------------------------------------------

    def _on_readable(self) -> None:
        port = self._port
        if port is None or self._port_error is not None:
            return
        try:
            data: bytes = port.read(_READ_SIZE)
        except OSError as err:  # serial.SerialException is an OSError
            self._port_error = translate(err, self._who, "read", DEVICE)
            self._port_failed.set()
            asyncio.get_running_loop().remove_reader(port.fileno())
            return
        for frame in self._decoder.feed(data):
            self._on_frame(frame)

    def _on_frame(self, frame: Frame) -> None:
        now_ns = self._clock.mono_ns()
        self._last_good_ns = now_ns
        self._crc_at_good = self._decoder.crc_errors
        self._garbage_at_good = self._decoder.garbage_bytes
        self._failures = 0
        if isinstance(frame, HeartbeatFrame):
            self._battery_pct, self._firmware = frame.battery_pct, frame.firmware
        self._go_online(frame)
        point = self._points.get(frame.NAME)
        if point is None:
            return
        fields = frame_fields(frame)
        bad = self._out_of_range(point, fields)
        if bad is not None:
            field, reason = bad
            logger.warning("%s: %s frame seq %s has %s = %s: %s; recorded as a device fault, not a reading",
                           self._who, frame.NAME, frame.seq, field, fields[field], reason)
            if self._on_fault is not None:
                raw = ", ".join(f"{k}={v}" for k, v in fields.items())
                self._on_fault(ValueFault(point.signal, raw, f"{field} {reason}", now_ns, self._clock.utc_ns(),
                                          self.device))
            return
        sample = Sample(
            signal=point.signal,
            value={f.field: fields[f.field] for f in point.fields},
            t_mono_ns=now_ns,
            t_utc_ns=self._clock.utc_ns(),
            device=self.device,
        )
        try:
            self._on_sample(sample)
        except Exception:
            logger.exception("%s: on_sample failed for %s; this sample is lost", self._who, sample)

    @staticmethod
    def _out_of_range(point: FramePoint, fields: Mapping[str, Scalar]) -> tuple[str, str] | None:
        """The first field outside the range its profile gives, and why (None: every field fits)."""
        for f in point.fields:
            v = fields[f.field]
            if isinstance(v, bool) or not isinstance(v, int | float):
                continue
            if f.min is not None and v < f.min:
                return f.field, f"is below {f.min:g} {f.unit}, which no real frame carries"
            if f.max is not None and v > f.max:
                return f.field, f"is above {f.max:g} {f.unit}, which no real frame carries"
        return None

    # -- online/offline, logged once each way ---------------------------------------------------------

    def _go_offline(self, problem: str) -> None:
        self._problem = problem
        if self._state == "offline":
            logger.debug("%s: still offline: %s", self._who, problem)
            return
        self._state = "offline"
        self._offline_since_ns = self._clock.mono_ns()
        logger.warning("%s", problem)
        self._notify()

    def _go_online(self, frame: Frame) -> None:
        if self._state == "online":
            return
        if self._state == "offline":
            offline_s = (self._clock.mono_ns() - self._offline_since_ns) / 1e9
            logger.info(
                "%s: back online after %.1f s offline (first frame: %s, seq %s)",
                self._who, offline_s, frame.NAME, frame.seq,
            )
        else:
            logger.info("%s: online (first frame: %s, seq %s)", self._who, frame.NAME, frame.seq)
        self._state = "online"
        self._notify()

    def _notify(self) -> None:
        if self._on_health is None:
            return
        try:
            self._on_health(self.health)
        except Exception:
            logger.exception("%s: on_health failed", self._who)
