"""`examstation run` as a systemd service: readiness, watchdog, status and stop notifications.

systemd starts a `Type=notify` unit's next step only when the service says READY=1, and with
`WatchdogSec=` it restarts a service that stops sending WATCHDOG=1. The controller sends that ping
from its main loop (the item-clock tick), so a hung event loop or a clock tick stuck in its thread
stops the pings and systemd restarts the controller, instead of a hall silently losing its clocks.

The protocol (sd_notify(3)) is one datagram of newline-separated assignments to the AF_UNIX socket
named in $NOTIFY_SOCKET (an abstract socket when the name starts with '@'); it is written here in a
few lines rather than pulling in libsystemd bindings. Without $NOTIFY_SOCKET (a console, a test)
nothing is sent at all. SIGTERM (how systemd stops a service) ends the controller like Ctrl-C does:
attempts, recordings and the uplink are closed in order, then the process exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
from collections.abc import Iterator, Mapping

log = logging.getLogger(__name__)


def socket_address(name: str) -> str | bytes:
    """The address of $NOTIFY_SOCKET: a path, or for '@name' the abstract socket '\\0name'."""
    if name.startswith("@"):
        return b"\0" + os.fsencode(name[1:])
    return name


def watchdog_interval_s(environ: Mapping[str, str], pid: int) -> float | None:
    """Half of $WATCHDOG_USEC (sd_watchdog_enabled(3) advises pinging at half the timeout), or None
    when there is no watchdog or it is meant for another process ($WATCHDOG_PID)."""
    usec = environ.get("WATCHDOG_USEC", "")
    owner = environ.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if owner and owner != str(pid):
        return None
    return int(usec) / 2 / 1e6


class ServiceNotifier:
    """Notifications to the service manager; does nothing when the controller is not a service."""

    def __init__(self, address: str | bytes | None, watchdog_interval_s: float | None) -> None:
        self.address = address
        self.watchdog_interval_s = watchdog_interval_s if address is not None else None
        self._next_ping_s: float | None = None
        self._failed = False

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None, pid: int | None = None) -> ServiceNotifier:
        env = os.environ if environ is None else environ
        name = env.get("NOTIFY_SOCKET", "")
        address = socket_address(name) if name.startswith(("/", "@")) else None
        return cls(address, watchdog_interval_s(env, os.getpid() if pid is None else pid))

    def send(self, *assignments: str) -> bool:
        """One datagram of `KEY=value` lines; False (logged once) when the manager cannot be reached:
        the controller keeps running, a missed ping is the manager's to act on."""
        if self.address is None:
            return False
        message = "\n".join(assignments).encode("utf-8")
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.sendto(message, self.address)
        except OSError as err:
            if not self._failed:
                log.warning("cannot notify the service manager at %r: %s; systemd will not see this controller's "
                            "readiness or watchdog pings (check NotifyAccess= in the unit)", self.address, err)
                self._failed = True
            return False
        return True

    def ready(self, status: str) -> None:
        """The devices, recording, uplink and UI are up: systemd counts the service as started."""
        self.send("READY=1", _status(status))

    def status(self, line: str) -> None:
        """The status line `systemctl status examstation` shows."""
        self.send(_status(line))

    def watchdog(self, now_s: float) -> None:
        """Called on every turn of the main loop; pings every half watchdog timeout."""
        if self.watchdog_interval_s is None:
            return
        if self._next_ping_s is None or now_s >= self._next_ping_s:
            self.send("WATCHDOG=1")
            self._next_ping_s = now_s + self.watchdog_interval_s

    def stopping(self, status: str = "stopping: closing attempts, recordings and the uplink") -> None:
        self.send("STOPPING=1", _status(status))


def _status(line: str) -> str:
    return "STATUS=" + " ".join(line.split())  # one line: a newline would start another assignment


@contextlib.contextmanager
def sigterm_stops() -> Iterator[asyncio.Event]:
    """An event SIGTERM sets, for the running loop's main loop to end on. Outside the main thread
    (signals cannot be caught there) the event is never set and SIGTERM keeps its default."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    try:
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        installed = True
    except (RuntimeError, ValueError, NotImplementedError):
        installed = False
    try:
        yield stop
    finally:
        if installed:
            loop.remove_signal_handler(signal.SIGTERM)
