"""The asyncio reader of an ID-card reader's (二代身份证阅读器) serial line: cards in, Samples out.

Why this shape: the reader device sends one line when a card is placed on it and nothing else,
so this is a single task waiting for bytes, like the manikin's reader but without a heartbeat:
silence is normal, and the device counts as online while its port is open. The port is opened
with pyserial (`timeout=0`) in a worker thread and read from the event loop with
`loop.add_reader`; a lost port is reopened with capped, jittered backoff. Line framing and the
check digit live in the pure codec (`id_card_codec.py`). ID numbers and names are personal data:
they go into Samples only, never into the log.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal

from devices.clock import Clock
from devices.errors import DeviceConfigError, DeviceError
from devices.profile import FramePoint, SerialProfile
from devices.ref import DeviceRef
from devices.sample import Sample, SampleSink
from devices.serial.id_card_codec import FRAME_FIELDS, CardRead, LineDecoder, card_fields
from devices.serial.port import keep_open, open_port, reopen_delay_s, translate
from devices.settings import SerialDevice

logger = logging.getLogger(__name__)
DEVICE = "the ID card reader"
"""How error messages name the device in their fix."""

PROTOCOL = "idcard-line-v1"
_READ_SIZE = 4096


@dataclass(frozen=True, slots=True)
class IdCardHealth:
    """A snapshot of one ID-card reader link, for the station's device panel."""

    device: DeviceRef
    online: bool
    """The port is open (a card reader is silent between cards, so that is all there is to know)."""
    port_open: bool
    cards_ok: int
    bad_lines: int
    """Lines rejected: wrong fields, a bad ID number or check digit, not UTF-8."""
    overlong_lines: int
    last_card_age_s: float | None
    """Seconds since the last good card; None before the first one."""
    problem: str
    """Why it is offline (the logged text), empty while online."""


class IdCardReader:
    """Reads one ID-card reader and hands each valid card on as an `idcard.read` Sample.

    Use as `async with IdCardReader(...) as reader:`; it owns one task, named after the device,
    that opens the port, reads it and reopens it when it vanishes. It never raises for link
    problems: they show in `health` and in the log. `on_sample` is called on the event loop for
    every valid card, in wire order; it must not block. `on_health` (optional) is called on every
    online/offline transition.
    """

    def __init__(
        self,
        station: str,
        settings: SerialDevice,
        profile: SerialProfile,
        on_sample: SampleSink,
        clock: Clock,
        *,
        on_health: Callable[[IdCardHealth], None] | None = None,
        reopen_min_s: float = 0.5,
        reopen_max_s: float = 10.0,
        rng: random.Random | None = None,
    ) -> None:
        self._settings = settings
        self._on_sample = on_sample
        self._on_health = on_health
        self._clock = clock
        self._reopen_min_s = reopen_min_s
        self._reopen_max_s = max(reopen_max_s, reopen_min_s)
        self._rng = rng or random.Random()
        self.device = DeviceRef(station, settings.name)
        self._who = f"station {station} {settings.name}@{settings.port}"
        self._point = self._check_profile(profile)
        self._decoder = LineDecoder()
        self._task: asyncio.Task[None] | None = None
        self._port: Any = None
        self._port_error: DeviceError | None = None
        self._port_failed = asyncio.Event()
        self._state: Literal["starting", "online", "offline"] = "starting"
        self._problem = "not connected yet"
        self._failures = 0
        self._last_card_ns: int | None = None
        self._offline_since_ns = 0

    def _check_profile(self, profile: SerialProfile) -> FramePoint:
        if profile.protocol != PROTOCOL:
            raise DeviceConfigError(
                f"{self._who}: profile {profile.profile} speaks {profile.protocol}, not {PROTOCOL}; "
                "use an ID card reader profile such as id-card-reader"
            )
        for point in profile.points:
            known = FRAME_FIELDS.get(point.frame)
            if known is None:
                raise DeviceConfigError(
                    f"{self._who}: profile {profile.profile} maps frame {point.frame!r}, which {PROTOCOL} "
                    f"does not have; use one of {', '.join(FRAME_FIELDS)}"
                )
            for field in point.fields:
                if field.field not in known:
                    raise DeviceConfigError(
                        f"{self._who}: profile {profile.profile} maps field {field.field!r} of frame "
                        f"{point.frame}, which does not exist; use one of {', '.join(known)}"
                    )
        return profile.points[0]

    async def __aenter__(self) -> IdCardReader:
        if self._task is not None:
            raise RuntimeError(f"{self._who}: reader already started")
        self._task = asyncio.create_task(self._run(), name=f"idcard-reader {self.device}")
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
    def health(self) -> IdCardHealth:
        """The link's state and counters right now."""
        d = self._decoder
        age = None if self._last_card_ns is None else (self._clock.mono_ns() - self._last_card_ns) / 1e9
        return IdCardHealth(
            device=self.device,
            online=self._state == "online",
            port_open=self._port is not None,
            cards_ok=d.cards_ok,
            bad_lines=d.bad_lines,
            overlong_lines=d.overlong_lines,
            last_card_age_s=age,
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
        """Read until the port fails (raises the translated error)."""
        loop = asyncio.get_running_loop()
        fd: int = port.fileno()
        self._port, self._port_error = port, None
        self._port_failed.clear()
        self._decoder.reset()
        loop.add_reader(fd, self._on_readable)
        self._failures = 0
        self._go_online()
        try:
            await self._port_failed.wait()
            assert self._port_error is not None
            raise self._port_error
        finally:
            loop.remove_reader(fd)
            self._port = None

    def _close(self, port: Any) -> None:
        try:
            port.close()
        except OSError as err:
            logger.debug("%s: closing the port failed (%s); ignored", self._who, err)

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
        errors = self._decoder.errors
        cards = self._decoder.feed(data)
        if self._decoder.errors != errors:
            logger.warning(
                "%s: %d line(s) rejected, last because %s (%d rejected so far); if this repeats, check the "
                "reader's line settings (%d baud, idcard-line-v1) and ask the candidate to place the card again",
                self._who, self._decoder.errors - errors, self._decoder.last_problem, self._decoder.errors,
                self._settings.baudrate,
            )
        for card in cards:
            self._on_card(card)

    def _on_card(self, card: CardRead) -> None:
        now_ns = self._clock.mono_ns()
        self._last_card_ns = now_ns
        fields = card_fields(card)
        sample = Sample(
            signal=self._point.signal,
            value={f.field: fields[f.field] for f in self._point.fields},
            t_mono_ns=now_ns,
            t_utc_ns=self._clock.utc_ns(),
            device=self.device,
        )
        try:
            self._on_sample(sample)
        except Exception:
            logger.exception("%s: on_sample failed for a card read; this read is lost, place the card again",
                             self._who)

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

    def _go_online(self) -> None:
        if self._state == "online":
            return
        if self._state == "offline":
            offline_s = (self._clock.mono_ns() - self._offline_since_ns) / 1e9
            logger.info("%s: back online after %.1f s offline (port open)", self._who, offline_s)
        else:
            logger.info("%s: online (port open)", self._who)
        self._state = "online"
        self._notify()

    def _notify(self) -> None:
        if self._on_health is None:
            return
        try:
            self._on_health(self.health)
        except Exception:
            logger.exception("%s: on_health failed", self._who)
