"""A real mosquitto broker process for tests and benchmarks.

Why a real broker and never a mock: what the station's MQTT outbox has to survive is exactly what
a mock would hide. Two facts about Debian's mosquitto 2.0 matter here (DESIGN.md and LIBRARY-NOTES
build on them):

* a PUBACK is not on disk. The broker acknowledges a QoS 1 publish once it holds the message in
  memory; with persistence on it writes its database only on a clean shutdown or every
  `autosave_interval` (30 min by default).
* so with mosquitto's default `persistence false` a `kill -9` loses every queued and retained
  message (and with `persistence true` it loses everything since the last save). That is exactly
  the crash the fault tests need: `kill9()` then `restart()` on the same port.

Each broker runs from its own config file in a work directory (a temporary one unless given),
listens on 127.0.0.1 only, on a free port picked at the first start and kept across restarts so
clients reconnect to the same address.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from hardware_sim.process_probe import HOST, file_size, free_port, listens, log_tail, port_is_free

# Debian installs the broker in /usr/sbin, which is often not on a normal user's PATH.
FALLBACK_BINARIES = ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto")
INSTALL_HINT = "run `make test` (it installs Debian's mosquitto) or apt-get install -y mosquitto"
START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0
# after a crash or restart the old socket can hold the port for a moment
BUSY_RETRY_S = 5.0
ADDRESS_IN_USE = "Address already in use"


class MosquittoError(Exception):
    """The broker could not be found, started or stopped; the message says what to do about it."""


def mosquitto_binary() -> str:
    """Path of the mosquitto executable: PATH first, then where Debian puts it."""
    found = shutil.which("mosquitto")
    if found:
        return found
    for candidate in FALLBACK_BINARIES:
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise MosquittoError(f"mosquitto is not installed: {INSTALL_HINT}")


class _Exited(Exception):
    """The broker process ended before it listened."""


class Mosquitto:
    """One mosquitto process on 127.0.0.1; `port` 0 = a free port picked at the first start, then kept.

    `max_queued_messages` defaults to 100 000 rather than mosquitto's 1000 per client: above that
    many QoS 1 messages queued for one client (a subscriber slower than a benchmark's publisher,
    or one offline with a persistent session) mosquitto silently drops the rest, which would show
    up as message loss in the code under test when it is the broker's queue limit.
    """

    def __init__(self, port: int = 0, *, persistence: bool = False, max_queued_messages: int = 100_000,
                 workdir: Path | None = None, log_path: Path | None = None, binary: str | None = None,
                 tcp_nodelay: bool = True, allow_anonymous: bool = True, extra_config: Sequence[str] = ()) -> None:
        self.host = HOST
        self.port = port
        self.persistence = persistence
        self.max_queued_messages = max_queued_messages
        self.binary = binary
        self.tcp_nodelay = tcp_nodelay
        self.allow_anonymous = allow_anonymous
        self.extra_config = tuple(extra_config)
        """More lines after the listener's: `cafile`/`certfile`/`keyfile` for TLS, `password_file`."""
        """`set_tcp_nodelay true`: without it a receipt that follows a PUBACK on the same connection
        waits for the client's delayed ACK (~40 ms on Linux) under Nagle's algorithm."""
        self._workdir = workdir
        self._log_path = log_path
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._proc: asyncio.subprocess.Process | None = None
        # True once the broker listened on `port`: from then on the port is kept, never re-picked
        self._port_kept = False
        self._picked_port: int | None = None  # a port we chose (for port=0), so free to re-pick on a clash

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        """Process id of the running broker; None when it is not running."""
        proc = self._proc
        return proc.pid if proc is not None and proc.returncode is None else None

    @property
    def running(self) -> bool:
        return self.pid is not None

    @property
    def workdir(self) -> Path | None:
        """Where the config, output and (by default) log and database live; None before the first start."""
        if self._workdir is not None:
            return self._workdir
        return Path(self._tmp.name) if self._tmp is not None else None

    @property
    def log_path(self) -> Path | None:
        if self._log_path is not None:
            return self._log_path
        workdir = self.workdir
        return workdir / "mosquitto.log" if workdir is not None else None

    async def __aenter__(self) -> Mosquitto:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Spawn the broker and return once its port accepts TCP connections; no-op when running."""
        if self.running:
            return
        fresh_tmp = self._workdir is None and self._tmp is None
        try:
            await self._launch(busy_retry_s=BUSY_RETRY_S if self._port_kept else 0.0)
        except BaseException:
            # `async with` does not call stop() when start() fails: drop the temporary directory here
            tmp, self._tmp = self._tmp, None
            if fresh_tmp and tmp is not None:
                tmp.cleanup()
            else:
                self._tmp = tmp
            raise

    async def kill9(self) -> None:
        """Crash the broker: SIGKILL, then reap it. Whatever it held only in memory is gone."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
        await proc.wait()

    async def restart(self) -> None:
        """Start again on the same port (stopping cleanly first if still running)."""
        await self._terminate()
        await self._launch(busy_retry_s=BUSY_RETRY_S)

    async def stop(self) -> None:
        """SIGTERM, up to 5 s for a clean exit, then SIGKILL; remove a temporary workdir. Idempotent."""
        try:
            await self._terminate()
        finally:
            tmp, self._tmp = self._tmp, None
            if tmp is not None:
                tmp.cleanup()

    async def _terminate(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.returncode is not None:
            if proc is not None:
                await proc.wait()
            return
        try:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), STOP_TIMEOUT_S)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        except BaseException:
            # cancelled while waiting: never leave a broker behind
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
            raise

    def _binary(self) -> str:
        if self.binary is None:
            return mosquitto_binary()
        if not (os.path.isfile(self.binary) and os.access(self.binary, os.X_OK)):
            raise MosquittoError(f"mosquitto binary {self.binary!r} is missing or not executable: {INSTALL_HINT}")
        return self.binary

    def _ensure_workdir(self) -> Path:
        if self._workdir is not None:
            self._workdir.mkdir(parents=True, exist_ok=True)
            return self._workdir
        if self._tmp is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="mosquitto-")
        return Path(self._tmp.name)

    def _config(self, workdir: Path, log_path: Path) -> str:
        lines = [
            "# written by hardware_sim.mosquitto",
            # run as root, mosquitto 2.0 switches to user `mosquitto`, which cannot write this directory
            f"user {pwd.getpwuid(os.geteuid()).pw_name}",
            f"listener {self.port} {self.host}",
            f"allow_anonymous {'true' if self.allow_anonymous else 'false'}",
            *self.extra_config,
            f"persistence {'true' if self.persistence else 'false'}",
        ]
        if self.tcp_nodelay:
            lines.append("set_tcp_nodelay true")
        if self.persistence:
            lines.append(f"persistence_location {workdir}/")
        lines += [
            f"max_queued_messages {self.max_queued_messages}",
            f"log_dest file {log_path}",
            "log_type error",
            "log_type warning",
            "log_type notice",
        ]
        return "\n".join(lines) + "\n"

    async def _launch(self, busy_retry_s: float) -> None:
        binary = self._binary()
        workdir = self._ensure_workdir()
        log_path = self.log_path
        assert log_path is not None
        log_path.parent.mkdir(parents=True, exist_ok=True)
        config = workdir / "mosquitto.conf"
        output = workdir / "mosquitto.out"
        busy_deadline = time.monotonic() + busy_retry_s
        repicks = 0
        while True:
            if self.port == 0:
                self.port = self._picked_port = free_port(self.host)
            clash = not port_is_free(self.host, self.port)
            if not clash:
                config.write_text(self._config(workdir, log_path))
                log_start = file_size(log_path)  # the log is appended to across restarts: read this run's part
                proc = await self._spawn(binary, config, output)
                try:
                    await self._wait_listening(proc, log_path, log_start)
                except _Exited:
                    await proc.wait()
                    why = "\n".join(t for t in (log_tail(output), log_tail(log_path, log_start)) if t)
                    clash = ADDRESS_IN_USE in why
                    if not clash:
                        raise MosquittoError(
                            f"mosquitto exited with code {proc.returncode} before listening on {self.host}:{self.port}"
                            f" (config {config}, log {log_path}); its last output:\n{why or '(none)'}"
                        ) from None
                except BaseException:
                    with contextlib.suppress(ProcessLookupError):
                        proc.kill()
                    await proc.wait()
                    raise
                else:
                    self._proc = proc
                    self._port_kept = True
                    return
            # the port is taken: re-pick one we chose ourselves, else wait a little for it to free up
            if not self._port_kept and self._picked_port == self.port and repicks < 5:
                repicks += 1
                self.port = 0
            elif time.monotonic() < busy_deadline:
                await asyncio.sleep(0.1)
            else:
                raise MosquittoError(
                    f"port {self.host}:{self.port} is in use by another process: stop it, or use another port"
                )

    async def _spawn(self, binary: str, config: Path, output: Path) -> asyncio.subprocess.Process:
        # errors before the log file is open (bad config, some bind errors) only go to stderr: keep them
        # in a file, closed here right after the spawn, so no pipe stays open
        with output.open("wb") as out:
            try:
                return await asyncio.create_subprocess_exec(
                    binary, "-c", str(config),
                    stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=out,
                )
            except OSError as e:
                raise MosquittoError(f"cannot run mosquitto binary {binary!r} ({e}): {INSTALL_HINT}") from e

    async def _wait_listening(self, proc: asyncio.subprocess.Process, log_path: Path, log_start: int) -> None:
        """Return once this very process listens on the port and it accepts a TCP connection."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if proc.returncode is not None:
                raise _Exited
            if listens(proc.pid, self.port) is not False and await self._accepts():
                return
            if time.monotonic() > deadline:
                tail = log_tail(log_path, log_start)
                raise MosquittoError(
                    f"mosquitto did not listen on {self.host}:{self.port} within {START_TIMEOUT_S:.0f} s"
                    f" (log {log_path}); its last log lines:\n{tail or '(none)'}"
                )
            await asyncio.sleep(0.02)

    async def _accepts(self) -> bool:
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(self.host, self.port), 1.0)
        except (OSError, TimeoutError):
            return False
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return True
