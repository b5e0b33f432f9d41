"""One physical Modbus link: a TCP connection or an RS-485 bus, with its lock, gap and reconnect.

Why a link object apart from the device: several devices share one RS-485 line (half duplex, so
one request at a time, with a 3.5-character silence between frames) or one TCP gateway. The link
owns the pymodbus client, serialises requests, and is the single place where pymodbus errors are
translated into `devices.errors` with a message that names the link, what happened and the fix.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from pymodbus import FramerType
from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException

from devices.errors import (
    DeviceDisconnected,
    DeviceExceptionResponse,
    DeviceTimeout,
    DeviceUnreachable,
    ProtocolError,
)

log = logging.getLogger(__name__)

EXCEPTION_NAMES = {
    1: "illegal function",
    2: "illegal data address",
    3: "illegal data value",
    4: "server device failure",
    5: "acknowledge",
    6: "server device busy",
    10: "gateway path unavailable",
    11: "gateway target device failed to respond",
}


@dataclass(frozen=True, slots=True)
class Backoff:
    """Capped, jittered exponential backoff for reconnects (first retry after `base_s`)."""

    base_s: float = 0.05
    cap_s: float = 2.0

    def delay_s(self, failures: int, rng: random.Random) -> float:
        """Delay before attempt number `failures + 1`; jitter keeps a hall of stations from syncing."""
        if failures <= 0:
            return 0.0
        # The exponent is clamped: the cap is often one poll interval (poller.py), so a link to an
        # unplugged adapter fails tens of times a second and 2 ** 1024 does not fit a float.
        raw = min(self.cap_s, self.base_s * 2.0 ** min(failures - 1, 60))
        return float(raw * rng.uniform(0.5, 1.0))


@dataclass(frozen=True, slots=True)
class TcpTarget:
    host: str
    port: int

    def describe(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class RtuTarget:
    port: str
    baudrate: int
    parity: str
    stopbits: int
    gap_s: float

    def describe(self) -> str:
        return f"{self.port} {self.baudrate} 8{self.parity}{self.stopbits}"


class ModbusLink:
    """Requests over one connection, one at a time, with reconnect and error translation.

    Use as an async context manager; `read()` connects lazily and reconnects after a drop, also
    when the very first connect fails (pymodbus never retries that one by itself).
    """

    def __init__(
        self,
        target: TcpTarget | RtuTarget,
        *,
        timeout_s: float = 0.5,
        backoff: Backoff | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.target = target
        self.timeout_s = timeout_s
        self.backoff = backoff or Backoff()
        self._rng = rng or random.Random()
        self._lock = asyncio.Lock()
        self._client: AsyncModbusTcpClient | AsyncModbusSerialClient | None = None
        self._connect_failures = 0
        self._next_connect_at = 0.0
        self._last_frame_end = 0.0
        self._rx_bytes = 0
        self._rx_at = 0.0
        self._late_until = 0.0
        self._late_window_s = max(2.0, 4 * timeout_s)
        """After a silent timeout the device's answers may still come, one after another: bytes that
        are not a valid answer to the current request, seen within this window of the last timeout
        or late answer, are late answers (DeviceTimeout), not a garbled line (ProtocolError)."""
        self.transactions = 0

    @property
    def gap_s(self) -> float:
        return self.target.gap_s if isinstance(self.target, RtuTarget) else 0.0

    async def __aenter__(self) -> ModbusLink:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _trace(self, sending: bool, data: bytes) -> bytes:
        # Counts answer bytes per request: bytes that never became a frame mean a garbled
        # answer (ProtocolError), no bytes at all mean silence (DeviceTimeout).
        if not sending:
            self._rx_bytes += len(data)
            self._rx_at = time.monotonic()  # the clock asyncio's loop.time() reads
        return data

    def _make_client(self) -> AsyncModbusTcpClient | AsyncModbusSerialClient:
        t = self.target
        if isinstance(t, TcpTarget):
            return AsyncModbusTcpClient(
                t.host, port=t.port, timeout=self.timeout_s, retries=0,
                reconnect_delay=0, trace_packet=self._trace,
            )
        return AsyncModbusSerialClient(
            t.port, framer=FramerType.RTU, baudrate=t.baudrate, bytesize=8, parity=t.parity,
            stopbits=t.stopbits, timeout=self.timeout_s, retries=0, reconnect_delay=0,
            trace_packet=self._trace,
        )

    async def _ensure_connected(self, who: str) -> AsyncModbusTcpClient | AsyncModbusSerialClient:
        if self._client is not None and self._client.connected:
            return self._client
        loop = asyncio.get_running_loop()
        wait = self._next_connect_at - loop.time()
        if wait > 0:
            raise DeviceUnreachable(
                f"{who}: not connected to {self.target.describe()}; next attempt in {wait:.2f} s "
                f"after {self._connect_failures} failed connects; check that the device is powered and reachable"
            )
        self.close()
        client = self._make_client()
        try:
            async with asyncio.timeout(self.timeout_s + 1.0):
                ok = await client.connect()
        except Exception as err:  # pyserial raises termios.error, which is not an OSError
            ok = False
            reason = f"{type(err).__name__}: {err}"
        else:
            reason = "connection refused or port missing"
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            # pymodbus' connect() swallows CancelledError; re-raise it so shutdown never hangs.
            client.close()
            raise asyncio.CancelledError
        if not ok:
            client.close()
            self._connect_failures += 1
            self._next_connect_at = loop.time() + self.backoff.delay_s(self._connect_failures, self._rng)
            raise DeviceUnreachable(
                f"{who}: cannot connect to {self.target.describe()} ({reason}); "
                "check power, cabling and the host/port or serial port in the site config"
            )
        self._connect_failures = 0
        self._client = client
        return client

    async def read(
        self, who: str, unit: int, function_code: int, start: int, count: int
    ) -> Sequence[int] | Sequence[bool]:
        """One read transaction; raises DeviceTimeout, DeviceDisconnected or ProtocolError."""
        async with self._lock:
            loop = asyncio.get_running_loop()
            if self.gap_s:
                await _keep_silence(loop, self._last_frame_end + self.gap_s)
            client = await self._ensure_connected(who)
            self._rx_bytes = 0
            self.transactions += 1
            # No asyncio.timeout here: pymodbus bounds the wait by `timeout` itself (asyncio.wait_for
            # inside), and a timeout context per request costs 5-7 % of throughput
            # (bench/modbus_poll.py).
            try:
                if function_code == 1:
                    rr = await client.read_coils(start, count=count, device_id=unit)
                elif function_code == 2:
                    rr = await client.read_discrete_inputs(start, count=count, device_id=unit)
                elif function_code == 3:
                    rr = await client.read_holding_registers(start, count=count, device_id=unit)
                else:
                    rr = await client.read_input_registers(start, count=count, device_id=unit)
            except (TimeoutError, ModbusIOException) as err:
                what = _what(function_code, start, count)
                if self._client is None or not self._client.connected:
                    self.close()
                    raise DeviceDisconnected(
                        f"{who}: {what}: connection to {self.target.describe()} lost while waiting for the answer; "
                        "will reconnect; check the network or serial adapter if it persists"
                    ) from err
                now = loop.time()
                if not self._rx_bytes:
                    self._late_until = now + self._late_window_s
                # pymodbus names an answer whose transaction or device id is not this request's
                text = str(err)
                stale_ids = isinstance(err, ModbusIOException) and ("transaction id" in text or "device id" in text)
                if stale_ids or (self._rx_bytes and now < self._late_until):
                    self._late_until = now + self._late_window_s
                    raise DeviceTimeout(
                        f"{who}: {what}: answer came too late (it belongs to an earlier request) from "
                        f"{self.target.describe()}; the device is slower than timeout_s={self.timeout_s:.2f} s"
                    ) from err
                if self._rx_bytes:
                    raise ProtocolError(
                        f"{who}: {what} got {self._rx_bytes} bytes that are not a valid answer "
                        f"(bad CRC, length or ids) from {self.target.describe()}; check wiring, "
                        "termination and that no second master shares the bus"
                    ) from err
                raise DeviceTimeout(
                    f"{who}: {what} timed out after {self.timeout_s:.2f} s ({self.target.describe()}); "
                    "check power, cabling and the unit id"
                ) from err
            except (ConnectionException, OSError) as err:
                what = _what(function_code, start, count)
                self.close()
                self._next_connect_at = 0.0
                raise DeviceDisconnected(
                    f"{who}: {what}: connection to {self.target.describe()} lost ({err}); "
                    "will reconnect; check the network or serial adapter if it persists"
                ) from err
            except ModbusException as err:
                what = _what(function_code, start, count)
                raise ProtocolError(f"{who}: {what}: invalid answer from {self.target.describe()} ({err})") from err
            finally:
                # The silence runs from the answer's last byte, not from when we finished decoding it:
                # our own processing then overlaps the gap instead of adding to it.
                self._last_frame_end = self._rx_at if self._rx_bytes else loop.time()
        if rr.isError() or rr.function_code != function_code:
            self._bad_answer(who, rr, function_code, start, count)
        values: Sequence[int] | Sequence[bool] = rr.bits[:count] if function_code in (1, 2) else rr.registers
        if len(values) != count:
            raise ProtocolError(
                f"{who}: {_what(function_code, start, count)}: answer holds {len(values)} values, expected {count}"
            )
        return values

    def _bad_answer(self, who: str, rr: Any, function_code: int, start: int, count: int) -> NoReturn:
        """Raise the right error for an exception response or an answer to another request."""
        what = _what(function_code, start, count)
        if rr.isError():
            code = int(getattr(rr, "exception_code", 0))
            name = EXCEPTION_NAMES.get(code, "unknown exception")
            raise DeviceExceptionResponse(
                f"{who}: {what}: device answered exception {code} ({name}); "
                "check the profile's addresses against the device manual", code,
            )
        # RTU has no transaction id: a late answer to an earlier request can arrive now.
        self._late_until = asyncio.get_running_loop().time() + self._late_window_s
        raise DeviceTimeout(
            f"{who}: {what}: answer came too late (got the answer to an earlier FC{rr.function_code} "
            f"request) from {self.target.describe()}; the device is slower than timeout_s={self.timeout_s:.2f} s"
        )


def _what(function_code: int, start: int, count: int) -> str:
    return f"read {count} {'bits' if function_code in (1, 2) else 'regs'} (FC{function_code}) at {start}"


async def _keep_silence(loop: asyncio.AbstractEventLoop, until: float) -> None:
    """Wait until `until` (loop time) precisely. asyncio's epoll timeouts round up to whole
    milliseconds, so a 0.33 ms RS-485 gap would cost 1 ms: sleep the coarse part, then yield to
    the loop until the deadline (other tasks keep running meanwhile)."""
    while (left := until - loop.time()) > 0:  # noqa: ASYNC110 - a deadline, not an event
        await asyncio.sleep(left - 0.001 if left > 0.0015 else 0)

