"""A simulated ID-card reader (二代身份证阅读器) on a real pty, speaking idcard-line-v1.

Like the manikin simulator: the production reader opens `.path`, a stable symlink (as udev's
`/dev/serial/by-id/...`) to the pty's slave, so tests and the demo exercise the real driver.
`unplug()` closes the pty and removes the link; `plug()` opens a new pty behind the same link.
`present()` is a candidate placing a card on the reader; it writes whatever it is given, so a
test can present a card with a wrong check digit. The simulator uses the pure codec only.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
import tty
from pathlib import Path
from types import TracebackType

from devices.serial.id_card_codec import encode
from hardware_sim.pty_write import write_all


class IdCardReaderSim:
    """One simulated reader: `async with IdCardReaderSim() as sim:` then `await sim.present(id, name)`."""

    def __init__(self, *, name: str = "idreader", link_dir: Path | None = None) -> None:
        self.name = name
        self.cards_sent = 0
        """Card lines that reached the wire (invalid ones included)."""
        self.bytes_dropped = 0
        """Bytes dropped because the pty was full (nobody reading) or the reader was unplugged."""
        self._given_link_dir = link_dir
        self._link_dir: Path | None = None
        self._master: int | None = None
        self._slave: int | None = None
        self._tty_name: str | None = None
        self._lock = asyncio.Lock()

    async def __aenter__(self) -> IdCardReaderSim:
        if self._given_link_dir is None:
            self._link_dir = Path(tempfile.mkdtemp(prefix="idcard-sim-"))
        else:
            self._link_dir = self._given_link_dir
            self._link_dir.mkdir(parents=True, exist_ok=True)
        self._open_pty()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        async with self._lock:
            self._close_pty()
        if self._given_link_dir is None and self._link_dir is not None:
            shutil.rmtree(self._link_dir, ignore_errors=True)

    @property
    def path(self) -> str:
        """The serial port path to give the reader: a stable link to the current pty slave."""
        if self._link_dir is None:
            raise RuntimeError("IdCardReaderSim.path is known only inside `async with`")
        return str(self._link_dir / self.name)

    @property
    def tty_name(self) -> str | None:
        """The current pty slave (/dev/pts/N), None while unplugged."""
        return self._tty_name

    async def unplug(self) -> None:
        """Pull the USB cable: close the pty (the reader's line hangs up) and remove `.path`."""
        async with self._lock:
            self._close_pty()

    async def plug(self) -> None:
        """Plug it back in: a new pty behind the same `.path`."""
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

    # -- the candidate and the faults ------------------------------------------------------------------

    async def present(self, id_number: str, name: str) -> None:
        """A card is placed on the reader: one `CARD,<id>,<name>` line (not validated here)."""
        async with self._lock:
            self.cards_sent += 1
            await self._write_all(encode(id_number, name))

    async def send_garbage(self, data: bytes) -> None:
        """Put arbitrary bytes on the line (noise, a half line, an overlong line)."""
        async with self._lock:
            await self._write_all(data)

    async def _write_all(self, data: bytes) -> None:
        self.bytes_dropped += await write_all(lambda: self._master, data)
