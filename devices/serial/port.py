"""Opening a serial port without blocking the event loop, and what its errors mean.

Shared by the serial readers (manikin, ID-card reader): the open runs in a worker thread (a
`socket://` URL connects synchronously) and is shielded so a cancelled open closes what it opened;
OSError and pyserial's errors become device errors at this one place, with the fix in the message.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import random
from collections.abc import Awaitable, Callable
from typing import Any, Literal, NoReturn

import serial

from devices.errors import DeviceConfigError, DeviceDisconnected, DeviceError, DeviceUnreachable


def translate(err: OSError, who: str, doing: Literal["open", "read"], device: str) -> DeviceError:
    """`device` names the thing in the fix, e.g. "the manikin", "the ID card reader"."""
    if doing == "open" and err.errno in (errno.EACCES, errno.EPERM):
        return DeviceConfigError(f"{who}: permission denied opening the serial port ({err}); "
                                 "add the controller's user to the dialout group")
    if doing == "open" and err.errno in (errno.EAGAIN, errno.EWOULDBLOCK):
        return DeviceConfigError(f"{who}: the serial port is locked by another program ({err}); "
                                 "stop the other program or fix a duplicated port in the site config")
    if doing == "open":
        return DeviceUnreachable(f"{who}: cannot open the serial port ({err}); check that {device} is plugged in "
                                 "and switched on and that the port in the site config is right")
    return DeviceDisconnected(f"{who}: serial port lost ({err}); check the USB cable and {device}'s power")


def _open_blocking(url: str, baudrate: int, who: str, device: str) -> Any:
    try:
        return serial.serial_for_url(url, baudrate=baudrate, timeout=0, exclusive=True)
    except OSError as err:  # serial.SerialException is an OSError
        raise translate(err, who, "open", device) from err
    except ValueError as err:
        raise DeviceConfigError(f"{who}: invalid serial port or URL ({err}); fix the port in the site config") from err


async def open_port(url: str, baudrate: int, who: str, device: str) -> Any:
    """The opened pyserial port (non-blocking reads), or a DeviceError saying why not."""
    opening = asyncio.get_running_loop().run_in_executor(None, _open_blocking, url, baudrate, who, device)
    try:
        return await asyncio.shield(opening)
    except asyncio.CancelledError:
        # Let the thread finish and close what it opened: a cancelled open must not leak an fd.
        with contextlib.suppress(Exception):
            (await opening).close()
        raise


def reopen_delay_s(failures: int, min_s: float, max_s: float, rng: random.Random) -> float:
    """Capped exponential backoff with jitter, so a hall of readers does not retry in step."""
    exponent = min(max(failures - 1, 0), 16)
    return float(min(max_s, min_s * 2.0**exponent)) * rng.uniform(0.5, 1.0)


async def keep_open(
    open_: Callable[[], Awaitable[Any]],
    pump: Callable[[Any], Awaitable[None]],
    close: Callable[[Any], None],
    failed: Callable[[str], float],
    retry_note: str,
) -> NoReturn:
    """Open the port, read it until it fails, close it, wait, and again, for as long as the caller's
    task lives. `failed(problem)` records a failure and returns the seconds to wait before the next
    open; a port that cannot be opened and one that was lost say so differently."""
    while True:
        try:
            port = await open_()
        except DeviceError as err:
            await asyncio.sleep(failed(f"{err}; {retry_note}"))
            continue
        try:
            await pump(port)
        except DeviceError as err:
            delay = failed(f"{err}; reconnecting")
        else:
            delay = 0.0
        finally:
            close(port)
        await asyncio.sleep(delay)
