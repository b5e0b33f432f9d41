"""A simulated CPR manikin on a real pty, speaking manikin-frame-v1, with faults on demand.

Why a pty: the production reader opens a serial port path with pyserial and reads its file
descriptor; a pty pair gives it exactly that, so tests and the demo exercise the real driver and
not a stand-in. The simulator writes to the master side; the reader opens `.path`.

`.path` is a stable symlink (like udev's `/dev/serial/by-id/...` links) to the pty's slave
(`.tty_name`, e.g. /dev/pts/5). `unplug()` closes the pty and removes the link, so the path
disappears and an open reader sees the line hang up, as with a pulled USB cable; `plug()` opens a
new pty (usually with a different /dev/pts number) and points the same link at it, so a reader
configured with `.path` finds the manikin again.

The simulator uses the pure codec (`devices.serial.manikin_codec`), never the reader.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
import time
import tty
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from devices.serial.manikin_codec import (
    CompressionFrame,
    Frame,
    HandZone,
    HeartbeatFrame,
    StateFrame,
    VentilationFrame,
    encode,
)
from hardware_sim.pty_write import write_all


@dataclass
class ManikinFaults:
    """Faults a test or scenario switches on and off while the simulator runs."""

    corrupt_next: int = 0
    """Send the next N frames with a wrong CRC (counts down to 0)."""
    garbage_between: bytes = b""
    """Bytes written before every frame (line noise; may contain SOF bytes)."""
    chunk_size: int = 0
    """Split every write into chunks of this many bytes (0: whole frames)."""
    chunk_delay_s: float = 0.002
    """Pause between chunks when chunk_size is set."""
    silent: bool = False
    """Transmit nothing, heartbeats included; frames made meanwhile are lost (they use up seq numbers)."""


class ManikinSim:
    """One simulated manikin: `async with ManikinSim() as sim:` then `await sim.compress(52)`.

    A heartbeat goes out every `heartbeat_interval_s` from the simulator's own, named task. The
    event methods send one frame each and return it, so a test can compare what it sent with what
    the reader delivered.
    """

    def __init__(
        self,
        *,
        name: str = "manikin",
        heartbeat_interval_s: float = 1.0,
        battery_pct: int = 90,
        firmware: tuple[int, int, int] = (1, 2, 0),
        link_dir: Path | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.heartbeat_interval_s = heartbeat_interval_s
        self.battery_pct = battery_pct
        self.firmware = firmware
        self.faults = ManikinFaults()
        self.frames_made = 0
        """Frames produced, sent or not (the next seq is frames_made mod 256)."""
        self.frames_sent = 0
        """Frames that reached the wire (corrupted ones included)."""
        self.bytes_dropped = 0
        """Bytes dropped because the pty was full (nobody reading) or the manikin was unplugged."""
        self._given_link_dir = link_dir
        self._link_dir: Path | None = None
        self._master: int | None = None
        self._slave: int | None = None
        self._tty_name: str | None = None
        self._lock = asyncio.Lock()
        self._heartbeat_task: asyncio.Task[None] | None = None
        self._clock = clock
        """Seconds, for the manikin's own timestamps (device_ms); a rehearsal may run it faster."""
        self._t0 = clock()
        self._state = StateFrame(0, 0, airway_open=False, head_tilt_deg=0, pulse_check=False,
                                 consciousness_check=False)

    # -- life cycle ---------------------------------------------------------------------------------

    async def __aenter__(self) -> ManikinSim:
        if self._given_link_dir is None:
            self._link_dir = Path(tempfile.mkdtemp(prefix="manikin-sim-"))
        else:
            self._link_dir = self._given_link_dir
            self._link_dir.mkdir(parents=True, exist_ok=True)
        self._open_pty()
        self._heartbeat_task = asyncio.create_task(self._heartbeats(), name=f"manikin-sim {self.name} heartbeat")
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._heartbeat_task is not None:
            self._heartbeat_task.cancel()
            await asyncio.wait([self._heartbeat_task])
            self._heartbeat_task = None
        async with self._lock:
            self._close_pty()
        if self._given_link_dir is None and self._link_dir is not None:
            shutil.rmtree(self._link_dir, ignore_errors=True)

    @property
    def path(self) -> str:
        """The serial port path to give the reader: a stable link to the current pty slave."""
        if self._link_dir is None:
            raise RuntimeError("ManikinSim.path is known only inside `async with`")
        return str(self._link_dir / self.name)

    @property
    def tty_name(self) -> str | None:
        """The current pty slave (/dev/pts/N), None while unplugged."""
        return self._tty_name

    @property
    def plugged(self) -> bool:
        """Whether the pty exists (False between unplug() and plug())."""
        return self._master is not None

    async def unplug(self) -> None:
        """Pull the cable: close the pty (the reader's line hangs up) and remove `.path`."""
        async with self._lock:
            self._close_pty()

    async def plug(self) -> None:
        """Plug the cable back in: a new pty behind the same `.path`."""
        async with self._lock:
            if self._master is None:
                self._open_pty()

    def _open_pty(self) -> None:
        master, slave = os.openpty()
        tty.setraw(slave)
        os.set_blocking(master, False)
        self._master, self._slave = master, slave
        self._tty_name = os.ttyname(slave)
        link = Path(self.path)
        tmp = link.with_name(f".{link.name}.new")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        tmp.symlink_to(self._tty_name)
        tmp.replace(link)

    def _close_pty(self) -> None:
        if self._link_dir is not None:
            with contextlib.suppress(FileNotFoundError):
                Path(self.path).unlink()
        for fd in (self._master, self._slave):
            if fd is not None:
                os.close(fd)
        self._master = self._slave = self._tty_name = None

    # -- events -------------------------------------------------------------------------------------

    def device_ms(self) -> int:
        """The manikin's clock now (ms, wraps at 2**32)."""
        return self._device_ms()

    def _device_ms(self) -> int:
        return int((self._clock() - self._t0) * 1000) & 0xFFFF_FFFF

    def _next_seq(self) -> int:
        seq = self.frames_made & 0xFF
        self.frames_made += 1
        return seq

    async def compress(
        self,
        depth_mm: float,
        *,
        recoil_ok: bool = True,
        hand_zone: HandZone | str = HandZone.CORRECT,
        duration_ms: int = 300,
        peak_force_n: int = 0,
        device_ms: int | None = None,
    ) -> CompressionFrame:
        """One chest compression of `depth_mm` (0.1 mm resolution), stamped `device_ms` (the
        manikin's own clock; default now). A scenario on a busy host passes its schedule: a real
        manikin stamps the moment of the press on its own processor, whatever the PC is doing."""
        zone = hand_zone if isinstance(hand_zone, HandZone) else HandZone.from_label(hand_zone)
        async with self._lock:
            stamp = self._device_ms() if device_ms is None else device_ms & 0xFFFF_FFFF
            frame = CompressionFrame(
                self._next_seq(), stamp, round(depth_mm * 10), duration_ms, peak_force_n,
                recoil_ok, zone,
            )
            await self._transmit(frame)
        return frame

    async def ventilate(self, volume_ml: int, duration_ms: int = 1200) -> VentilationFrame:
        """One rescue breath."""
        async with self._lock:
            frame = VentilationFrame(self._next_seq(), self._device_ms(), volume_ml, duration_ms)
            await self._transmit(frame)
        return frame

    async def set_state(
        self,
        *,
        airway_open: bool | None = None,
        head_tilt_deg: int | None = None,
        pulse_check: bool | None = None,
        consciousness_check: bool | None = None,
    ) -> StateFrame:
        """Change some assessment sensors (None keeps a sensor as it is) and report the new state."""
        async with self._lock:
            old = self._state
            frame = StateFrame(
                self._next_seq(),
                self._device_ms(),
                old.airway_open if airway_open is None else airway_open,
                old.head_tilt_deg if head_tilt_deg is None else head_tilt_deg,
                old.pulse_check if pulse_check is None else pulse_check,
                old.consciousness_check if consciousness_check is None else consciousness_check,
            )
            self._state = frame
            await self._transmit(frame)
        return frame

    async def heartbeat(self) -> HeartbeatFrame:
        """Send a heartbeat now (the simulator also sends one every heartbeat_interval_s)."""
        async with self._lock:
            frame = HeartbeatFrame(self._next_seq(), self._device_ms(), self.battery_pct, *self.firmware)
            await self._transmit(frame)
        return frame

    async def send_raw(self, data: bytes) -> None:
        """Put arbitrary bytes on the line (noise, a half frame), honouring chunking and silence."""
        async with self._lock:
            if not self.faults.silent:
                await self._write(data)

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_interval_s)
            await self.heartbeat()

    # -- the wire -----------------------------------------------------------------------------------

    async def _transmit(self, frame: Frame) -> None:
        """Write one frame with the configured faults; the caller holds the lock."""
        faults = self.faults
        if faults.silent:
            return
        wire = encode(frame)
        if faults.corrupt_next > 0:
            faults.corrupt_next -= 1
            wire = wire[:-1] + bytes([wire[-1] ^ 0xFF])
        self.frames_sent += 1
        await self._write(faults.garbage_between + wire)

    async def _write(self, data: bytes) -> None:
        size = self.faults.chunk_size
        if size <= 0:
            await self._write_all(data)
            return
        for start in range(0, len(data), size):
            if start:
                await asyncio.sleep(self.faults.chunk_delay_s)
            await self._write_all(data[start : start + size])

    async def _write_all(self, data: bytes) -> None:
        self.bytes_dropped += await write_all(lambda: self._master, data)
