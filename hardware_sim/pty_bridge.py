"""A simulated RS-485 line: two pty pairs bridged in the event loop, with faults and wire time.

The device (a pymodbus RTU server) opens one pty, the controller opens the other, as it would a
USB RS-485 adapter. The bridge copies bytes between them, which is where a line's troubles are
injected: silence, delay, a flipped CRC, an unplugged adapter. A pty ignores baud rate, so the
bridge can also hold each frame for its real wire time (11 bits a character, plus the 3.5-character
gap) to model a 115200-baud line honestly. The controller's side is reached through a stable
symlink, like udev's /dev/serial/by-id names, so an unplug/replug keeps the configured path.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tty
from pathlib import Path

from hardware_sim.fault import FaultPlan

BITS_PER_CHAR = 11
"""8N1 on the wire: start bit, 8 data bits, (no parity), stop bit... 11 with parity or 2 stops;
the Modbus RTU spec counts 11 bits a character, which is what we charge."""


def wire_time_s(nbytes: int, baudrate: int) -> float:
    """Time `nbytes` occupy an RS-485 line, with the 3.5-character inter-frame silence."""
    return (nbytes + 3.5) * BITS_PER_CHAR / baudrate


class _PtyPair:
    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        os.set_blocking(self.master, False)
        self.path = os.ttyname(self.slave)

    def close(self) -> None:
        for fd in (self.master, self.slave):
            with contextlib.suppress(OSError):
                os.close(fd)


class PtyBridge:
    """device side `device_path` <-> controller side `path` (a symlink in `link_dir`)."""

    def __init__(self, link_dir: Path, name: str, faults: FaultPlan | None = None,
                 wire_baudrate: int | None = None) -> None:
        self.link = link_dir / name
        self.faults = faults or FaultPlan()
        self.wire_baudrate = wire_baudrate
        self._device = _PtyPair()
        self._controller: _PtyPair | None = None
        self._to_device: asyncio.Queue[bytes] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self.frames_to_device = 0
        self.trace: list[tuple[str, float]] | None = None
        """Set to a list to record ("request"|"answer", loop time) of every chunk, for timing tests."""

    @property
    def device_path(self) -> str:
        """The pty the simulated device's server opens."""
        return self._device.path

    @property
    def path(self) -> str:
        """The stable path the controller opens (a symlink to the current pty)."""
        return str(self.link)

    async def __aenter__(self) -> PtyBridge:
        self.plug()
        loop = asyncio.get_running_loop()
        loop.add_reader(self._device.master, self._from_device)
        self._task = asyncio.create_task(self._forward_requests(), name=f"pty-bridge {self.link.name}")
        return self

    async def __aexit__(self, *exc: object) -> None:
        loop = asyncio.get_running_loop()
        loop.remove_reader(self._device.master)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.unplug()
        self._device.close()

    def plug(self) -> None:
        """Connect the adapter: a fresh pty for the controller, the symlink pointing at it."""
        if self._controller is not None:
            return
        self._controller = _PtyPair()
        tmp = self.link.with_suffix(".tmp")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        tmp.symlink_to(self._controller.path)
        tmp.replace(self.link)
        with contextlib.suppress(RuntimeError):
            asyncio.get_running_loop().add_reader(self._controller.master, self._from_controller)

    def unplug(self) -> None:
        """Pull the adapter: the controller's port hangs up and its path disappears."""
        ctl = self._controller
        if ctl is None:
            return
        with contextlib.suppress(RuntimeError):
            asyncio.get_running_loop().remove_reader(ctl.master)
        with contextlib.suppress(FileNotFoundError):
            self.link.unlink()
        ctl.close()
        self._controller = None

    def _read(self, fd: int) -> bytes:
        try:
            return os.read(fd, 4096)
        except (BlockingIOError, InterruptedError):
            return b""
        except OSError:  # EIO: the other end closed; the reader stays until unplug/exit
            return b""

    def _from_controller(self) -> None:
        ctl = self._controller
        if ctl is None:
            return
        data = self._read(ctl.master)
        if data and self.trace is not None:
            self.trace.append(("request", asyncio.get_running_loop().time()))
        if data and not self.faults.no_answer:
            self._to_device.put_nowait(data)

    async def _forward_requests(self) -> None:
        while True:
            data = await self._to_device.get()
            if self.wire_baudrate:
                await asyncio.sleep(wire_time_s(len(data), self.wire_baudrate))
            self.frames_to_device += 1
            with contextlib.suppress(OSError):
                os.write(self._device.master, data)

    def _from_device(self) -> None:
        data = self._read(self._device.master)
        if not data:
            return
        f = self.faults
        if f.corrupt:
            data = data[:-1] + bytes([data[-1] ^ 0x5A])
        delay = f.delay_s + (wire_time_s(len(data), self.wire_baudrate) if self.wire_baudrate else 0.0)
        if delay > 0:
            asyncio.get_running_loop().call_later(delay, self._to_controller, data)
        else:
            self._to_controller(data)

    def _to_controller(self, data: bytes) -> None:
        ctl = self._controller
        if ctl is None:
            return
        if self.trace is not None:
            self.trace.append(("answer", asyncio.get_running_loop().time()))
        with contextlib.suppress(OSError):
            os.write(ctl.master, data)
