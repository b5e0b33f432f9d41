"""A real RabbitMQ broker with its MQTT plugin, as a subprocess, for the uplink's tests.

Why RabbitMQ beside mosquitto: provinces run clustered brokers, and RabbitMQ's MQTT plugin is one
of them; it differs from mosquitto where the uplink cares (docs/uplink.md "What the province
configures"). Debian's `rabbitmq-server` is started from its own scripts in /usr/lib/rabbitmq/bin
(not /usr/sbin's wrapper, which switches to user `rabbitmq` and /var/lib/rabbitmq) with everything
in a work directory: config, enabled_plugins, mnesia, logs and HOME (the Erlang cookie), so the
system's broker and its service are never touched.

Nothing is left running. The node starts its Erlang distribution itself (`-sname`) on a free port
without epmd (`-start_epmd false -erl_epmd_port`), so RabbitMQ's prelaunch never spawns an epmd
daemon that would outlive the test; the broker runs in its own process group, which is killed
after it exits.

Startup time (measured on the 2-core test machine): a first boot on an empty database takes
~7-10 s, 3.3-6.3 s of it the MQTT plugin waiting (random, not configurable in 3.10) for cluster
peers before it elects itself leader of the Raft cluster that tracks client ids. A node that has
booted once skips that wait, so by default (`seeded=True`) each process boots one seed node once,
and every broker then starts on a copy of its stopped database: ~3 s. The seeded brokers of one
process share the seed's node name (unique per process); without epmd two of them running at once
do not clash, since each has its own distribution port, cookie and directories.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import os
import secrets
import shutil
import signal
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hardware_sim.process_probe import HOST, file_size, free_port, log_tail
from hardware_sim.rabbitmq_node import answers_connect, copy_database, group_gone

SCRIPT = "/usr/lib/rabbitmq/bin/rabbitmq-server"
INSTALL_HINT = "run `make test` (it installs Debian's rabbitmq-server) or apt-get install -y rabbitmq-server"
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0
GUEST = ("guest", "guest")
"""RabbitMQ's default user; anonymous MQTT logins use it (`mqtt.allow_anonymous`), from loopback only."""


class RabbitMQError(Exception):
    """The broker could not be found, started or stopped; the message says what to do about it."""


def rabbitmq_script() -> str:
    if os.access(SCRIPT, os.X_OK):
        return SCRIPT
    raise RabbitMQError(f"RabbitMQ is not installed ({SCRIPT} is missing): {INSTALL_HINT}")


class RabbitMQ:
    """One RabbitMQ node with MQTT on 127.0.0.1; ports are picked at the first start, then kept.

    The same interface as hardware_sim.mosquitto.Mosquitto for what the uplink tests use: `host`,
    `port` (MQTT), `url`, `pid`, `running`, `start`, `stop`, `restart`, `kill9`, `async with`.

    `definitions`: RabbitMQ definitions (users, permissions, topic_permissions ...) imported at
    every boot, e.g. a site's user and its topic ACL. `config`: more rabbitmq.conf lines.
    """

    def __init__(self, *, allow_anonymous: bool = True, definitions: Mapping[str, Any] | None = None,
                 config: Sequence[str] = (), seeded: bool = True, node_name: str | None = None) -> None:
        self.host = HOST
        self.port = 0
        self.amqp_port = 0
        self.dist_port = 0
        self.allow_anonymous = allow_anonymous
        self.definitions = dict(definitions) if definitions else None
        self.config = tuple(config)
        self.seeded = seeded and node_name is None
        self.node_name = node_name or (_process_node_name() if self.seeded else _unique_node_name())
        self.startup_s: float | None = None
        """How long the last start took until the MQTT port answered a CONNECT."""
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._proc: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        proc = self._proc
        return proc.pid if proc is not None and proc.returncode is None else None

    @property
    def running(self) -> bool:
        return self.pid is not None

    @property
    def workdir(self) -> Path | None:
        return Path(self._tmp.name) if self._tmp is not None else None

    @property
    def log_path(self) -> Path | None:
        workdir = self.workdir
        return None if workdir is None else workdir / "log" / f"{self.node_name}.log"

    async def __aenter__(self) -> RabbitMQ:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Boot the node and return once its MQTT listener answers a CONNECT; no-op when running."""
        if self.running:
            return
        fresh = self._tmp is None
        if fresh:
            self._tmp = tempfile.TemporaryDirectory(prefix="rabbitmq-")
        try:
            if fresh and self.seeded:
                await _copy_seed(self.node_name, self._workdir() / "mnesia")
            await self._launch(pick_ports=fresh)
        except BaseException:
            if fresh:
                await self.stop()
            raise

    async def restart(self) -> None:
        """A clean stop (SIGTERM: queues and retained messages written out), then a start on the same
        ports and database."""
        await self._terminate(signal.SIGTERM)
        await self._launch(pick_ports=False)

    async def kill9(self) -> None:
        """Crash the node: SIGKILL. What it had confirmed to publishers is on disk; the rest is gone."""
        await self._terminate(signal.SIGKILL)

    async def stop(self) -> None:
        """SIGKILL (the database is thrown away with the work directory); idempotent."""
        try:
            await self._terminate(signal.SIGKILL)
        finally:
            tmp, self._tmp = self._tmp, None
            if tmp is not None:
                tmp.cleanup()

    # -- the process -----------------------------------------------------------------------------
    def _workdir(self) -> Path:
        assert self._tmp is not None
        return Path(self._tmp.name)

    async def _terminate(self, sig: signal.Signals) -> None:
        """SIGTERM: to the script, which stops the node cleanly and waits for it. SIGKILL: to the whole
        process group (script, node, its helpers) at once. Returns once none of them is left."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    if sig == signal.SIGKILL:
                        os.killpg(proc.pid, signal.SIGKILL)
                    else:
                        proc.send_signal(sig)
                with contextlib.suppress(TimeoutError):  # then SIGKILL below
                    await asyncio.wait_for(proc.wait(), STOP_TIMEOUT_S)
        finally:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            if proc.returncode is None:
                await proc.wait()
            await group_gone(proc.pid)

    def _conf(self) -> str:
        workdir = self._workdir()
        lines = [
            "# written by hardware_sim.rabbitmq",
            f"listeners.tcp.default = {self.host}:{self.amqp_port}",
            f"mqtt.listeners.tcp.default = {self.host}:{self.port}",
            f"mqtt.allow_anonymous = {'true' if self.allow_anonymous else 'false'}",
            "log.console = false",
            "log.file.level = info",
            *self.config,
        ]
        if self.definitions is not None:
            defs = workdir / "definitions.json"
            defs.write_text(json.dumps(self.definitions, indent=1), encoding="utf-8")
            lines.append(f"load_definitions = {defs}")
        return "\n".join(lines) + "\n"

    def _env(self) -> dict[str, str]:
        workdir = self._workdir()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RABBITMQ_", "ERL_"))}
        env.update(
            HOME=str(workdir),
            RABBITMQ_CONF_ENV_FILE=str(workdir / "rabbitmq-env.conf"),
            RABBITMQ_CONFIG_FILE=str(workdir / "rabbitmq.conf"),
            RABBITMQ_ADVANCED_CONFIG_FILE=str(workdir / "advanced.config"),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(workdir / "enabled_plugins"),
            RABBITMQ_MNESIA_BASE=str(workdir / "mnesia"),
            RABBITMQ_LOG_BASE=str(workdir / "log"),
            RABBITMQ_PLUGINS_EXPAND_DIR=str(workdir / "plugins-expand"),
            RABBITMQ_NODENAME=self.node_name,
            RABBITMQ_DIST_PORT=str(self.dist_port),
            RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=(
                f"-sname {self.node_name} -start_epmd false -erl_epmd_port {self.dist_port}"
                " -kernel inet_dist_use_interface {127,0,0,1}"),
        )
        return env

    async def _launch(self, pick_ports: bool) -> None:
        script = rabbitmq_script()
        workdir = self._workdir()
        for sub in ("mnesia", "log"):
            (workdir / sub).mkdir(exist_ok=True)
        (workdir / "rabbitmq-env.conf").write_text("")
        (workdir / "enabled_plugins").write_text("[rabbitmq_mqtt].\n")
        for attempt in range(3):
            if pick_ports:  # a port picked free may be taken before the node binds it: pick again
                self.port, self.amqp_port, self.dist_port = _free_ports(3)
            elif attempt:
                await asyncio.sleep(0.5)  # a kept port still held by the old node's socket
            (workdir / "rabbitmq.conf").write_text(self._conf())
            log_path = self.log_path
            assert log_path is not None
            log_start = file_size(log_path)
            output = workdir / "rabbitmq.out"
            started = time.monotonic()
            with output.open("ab") as out:
                try:
                    proc = await asyncio.create_subprocess_exec(
                        script, stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=out, env=self._env(),
                        cwd=workdir, start_new_session=True)
                except OSError as e:
                    raise RabbitMQError(f"cannot run {script} ({e}): {INSTALL_HINT}") from e
            self._proc = proc
            try:
                await self._wait_ready(proc)
            except _Exited:
                self._proc = None
                why = "\n".join(t for t in (log_tail(output), log_tail(log_path, log_start)) if t)
                if "eaddrinuse" in why and attempt < 2:
                    continue
                raise RabbitMQError(f"RabbitMQ exited with code {proc.returncode} before its MQTT listener on "
                                    f"{self.host}:{self.port} answered (work directory {workdir}); its last "
                                    f"output:\n{why or '(none)'}") from None
            except BaseException:
                await self._terminate(signal.SIGKILL)
                raise
            self.startup_s = time.monotonic() - started
            return

    async def _wait_ready(self, proc: asyncio.subprocess.Process) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if proc.returncode is not None:
                raise _Exited
            if await answers_connect(self.host, self.port, None if self.allow_anonymous else GUEST):
                return
            if time.monotonic() > deadline:
                log_path = self.log_path
                tail = log_tail(log_path) if log_path is not None else ""
                raise RabbitMQError(f"RabbitMQ's MQTT listener {self.host}:{self.port} did not answer a CONNECT "
                                    f"within {START_TIMEOUT_S:.0f} s (log {log_path}):\n{tail or '(none)'}")
            await asyncio.sleep(0.05)


class _Exited(Exception):
    """The node's process ended before its MQTT listener answered."""


def _free_ports(n: int) -> list[int]:
    ports: list[int] = []
    while len(ports) < n:
        port = free_port(HOST)
        if port not in ports:
            ports.append(port)
    return ports


def _unique_node_name() -> str:
    return f"examstation-{os.getpid()}-{secrets.token_hex(3)}@localhost"


_PROCESS_NODE: str | None = None
_SEEDS: dict[str, Path] = {}


def _process_node_name() -> str:
    global _PROCESS_NODE
    if _PROCESS_NODE is None:
        _PROCESS_NODE = _unique_node_name()
    return _PROCESS_NODE


async def _copy_seed(node_name: str, mnesia: Path) -> None:
    """Copy the stopped database of a node named `node_name` that has booted once (made at the first call)."""
    seed = _SEEDS.get(node_name)
    if seed is None or not seed.is_dir():
        seed = await _make_seed(node_name)
    await asyncio.to_thread(copy_database, seed, mnesia)


async def _make_seed(node_name: str) -> Path:
    node = RabbitMQ(seeded=False, node_name=node_name)
    await node.start()
    try:
        await node._terminate(signal.SIGTERM)  # a clean stop: the database is complete
        folder = Path(tempfile.mkdtemp(prefix="rabbitmq-seed-"))
        atexit.register(shutil.rmtree, folder, True)
        seed = folder / "mnesia"
        await asyncio.to_thread(copy_database, node._workdir() / "mnesia", seed)
    finally:
        await node.stop()
    _SEEDS[node_name] = seed
    return seed

