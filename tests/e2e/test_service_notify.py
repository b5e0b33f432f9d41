"""`examstation run` under a service manager: READY once it is up, WATCHDOG from its main loop at
half the watchdog timeout, STOPPING when SIGTERM stops it (cleanly, exit 0), and its log as JSON
lines for journald.

This machine has no systemd as PID 1 (a container), so the controller runs as systemd would run it:
a datagram socket bound by the test is its $NOTIFY_SOCKET (an abstract one, as systemd's own is
not), with $WATCHDOG_USEC set. Where systemd runs, the last test starts it as a transient unit.
The notifier's own tests send to real sockets too.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import signal
import socket
import sys
import time
import uuid
from pathlib import Path

import pytest
import yaml

from hardware_sim.site import SimSite
from station.config import load_site_config
from station.service_notify import ServiceNotifier, socket_address, watchdog_interval_s

CONFIG = load_site_config("examples/site.yaml")
CLI = [sys.executable, "-m", "station.cli"]


async def _prepared(site: SimSite, tmp_path: Path) -> tuple[Path, Path]:
    """The site config resolved to the simulator, and a data directory with its database."""
    config = tmp_path / "site.yaml"
    config.write_text(yaml.safe_dump(site.resolved_config().model_dump(mode="json"), allow_unicode=True),
                      encoding="utf-8")
    data = tmp_path / "data"
    up = await asyncio.create_subprocess_exec(*CLI, "db", "upgrade", "--config", str(config), "--data-dir", str(data),
                                              stdout=asyncio.subprocess.PIPE)
    assert b"revision" in (await up.communicate())[0]
    return config, data


async def _receive(sock: socket.socket, into: list[tuple[float, str]]) -> None:
    loop = asyncio.get_running_loop()
    while True:
        data = await loop.sock_recv(sock, 4096)
        into.append((time.monotonic(), data.decode()))


async def _first(messages: list[tuple[float, str]], field: str, timeout_s: float) -> float:
    """When the first message holding `field` (a line such as READY=1) arrived."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for at, text in messages:
            if field in text.split("\n"):
                return at
        await asyncio.sleep(0.05)
    raise AssertionError(f"no {field} within {timeout_s} s; got {[m for _, m in messages]}")


@pytest.mark.timeout(120)
async def test_run_notifies_ready_then_watchdog_then_stopping_on_sigterm(tmp_path: Path) -> None:
    name = f"@examstation-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(socket_address(name))
        sock.setblocking(False)
        messages: list[tuple[float, str]] = []
        receiver = asyncio.create_task(_receive(sock, messages))
        try:
            async with SimSite(CONFIG, cameras=False) as site:
                config, data = await _prepared(site, tmp_path)
                env = {**os.environ, "NOTIFY_SOCKET": name, "WATCHDOG_USEC": "1000000"}
                run = await asyncio.create_subprocess_exec(
                    *CLI, "run", "--no-ui", "--config", str(config), "--data-dir", str(data), "--log-format", "json",
                    env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
                try:
                    ready_at = await _first(messages, "READY=1", 60)
                    await asyncio.sleep(2.5)
                    assert not any("STOPPING=1" in m for _, m in messages)
                    run.send_signal(signal.SIGTERM)
                    stopping_at = await _first(messages, "STOPPING=1", 15)
                    out, err = await asyncio.wait_for(run.communicate(), 60)
                finally:
                    if run.returncode is None:
                        run.kill()
                        await run.wait()
        finally:
            receiver.cancel()
            await asyncio.gather(receiver, return_exceptions=True)
    assert run.returncode == 0, err.decode()[-3000:]
    ready = next(m for _, m in messages if "READY=1" in m.split("\n"))
    assert "STATUS=examstation run: site GD-SZ-0101, 6 stations, 32 devices" in ready
    assert not any("WATCHDOG=1" in m for at, m in messages if at < ready_at)  # nothing before it is up
    pings = [at for at, m in messages if m == "WATCHDOG=1" and ready_at <= at <= ready_at + 2.5]
    # every 0.5 s (half of WATCHDOG_USEC): at least 3 in 2.5 s, and not one per 0.1 s clock tick
    assert 3 <= len(pings) <= 7, [round(at - ready_at, 2) for at in pings]
    assert stopping_at > ready_at + 2.5
    # --log-format json: stdout's lines became records; every stderr line is one JSON object
    assert out == b""
    records = [json.loads(line) for line in err.decode().splitlines()]
    assert all({"time", "level", "logger", "message"} <= r.keys() for r in records), records[:3]
    console = [r["message"] for r in records if r["logger"] == "examstation.console"]
    assert any(m.startswith("examstation run: site GD-SZ-0101") for m in console), console[:5]
    assert sum(m.startswith("device ") and m.endswith(" online") for m in console) == 32, console


def test_notifier_sends_one_datagram_of_assignments_to_a_socket_path(tmp_path: Path) -> None:
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        sock.settimeout(5)
        notifier = ServiceNotifier.from_environ({"NOTIFY_SOCKET": str(path)})
        notifier.ready("site GD-SZ-0101,\n6 stations")
        assert sock.recv(4096) == b"READY=1\nSTATUS=site GD-SZ-0101, 6 stations"  # a newline would split STATUS
        notifier.stopping("stopping")
        assert sock.recv(4096) == b"STOPPING=1\nSTATUS=stopping"


def test_an_at_sign_names_an_abstract_socket() -> None:
    name = f"examstation-test-{uuid.uuid4().hex}"
    assert socket_address("@" + name) == b"\0" + name.encode()
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(b"\0" + name.encode())
        sock.settimeout(5)
        ServiceNotifier.from_environ({"NOTIFY_SOCKET": "@" + name}).status("all well")
        assert sock.recv(4096) == b"STATUS=all well"


def test_watchdog_pings_at_half_the_timeout_and_only_for_its_own_pid(tmp_path: Path) -> None:
    assert watchdog_interval_s({"WATCHDOG_USEC": "30000000"}, pid=7) == 15.0
    assert watchdog_interval_s({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "7"}, pid=7) == 15.0
    assert watchdog_interval_s({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "8"}, pid=7) is None
    assert watchdog_interval_s({"WATCHDOG_USEC": "0"}, pid=7) is None
    assert watchdog_interval_s({}, pid=7) is None
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        sock.setblocking(False)
        notifier = ServiceNotifier.from_environ({"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "1000000"})
        for now_s in (10.0, 10.1, 10.4, 10.5, 10.6, 10.99, 11.0):
            notifier.watchdog(now_s)
        pings = []
        while True:
            try:
                pings.append(sock.recv(4096))
            except BlockingIOError:
                break
        assert pings == [b"WATCHDOG=1"] * 3  # at 10.0, 10.5 and 11.0


def test_without_notify_socket_nothing_is_sent(caplog: pytest.LogCaptureFixture) -> None:
    notifier = ServiceNotifier.from_environ({"WATCHDOG_USEC": "1000000"})
    assert notifier.watchdog_interval_s is None
    assert notifier.send("READY=1") is False
    assert caplog.records == []


def test_an_unreachable_manager_is_logged_once_and_the_controller_goes_on(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    notifier = ServiceNotifier.from_environ({"NOTIFY_SOCKET": str(tmp_path / "nobody-listens")})
    with caplog.at_level(logging.WARNING):
        assert notifier.send("READY=1") is False
        assert notifier.send("WATCHDOG=1") is False
    assert len(caplog.records) == 1
    assert "NotifyAccess" in caplog.records[0].getMessage()


@pytest.mark.skipif(not Path("/run/systemd/system").is_dir() or shutil.which("systemd-run") is None,
                    reason="systemd is not PID 1 here (a container): the controller runs with NOTIFY_SOCKET above")
@pytest.mark.timeout(120)
async def test_the_controller_as_a_transient_systemd_unit(tmp_path: Path) -> None:
    """Where systemd runs: a Type=notify unit with a 4 s watchdog becomes active only on READY, stays
    active well past the watchdog (the pings arrive), and stops cleanly."""
    user = [] if os.geteuid() == 0 else ["--user"]
    unit = f"examstation-test-{uuid.uuid4().hex[:12]}"

    async def command(*args: str) -> str:
        proc = await asyncio.create_subprocess_exec(*args, stdout=asyncio.subprocess.PIPE)
        return (await proc.communicate())[0].decode()

    async def show() -> dict[str, str]:
        out = await command("systemctl", *user, "show", unit, "-p", "ActiveState", "-p", "Result", "-p", "StatusText")
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    async with SimSite(CONFIG, cameras=False) as site:
        config, data = await _prepared(site, tmp_path)
        await command("systemd-run", *user, "--unit", unit, "-p", "Type=notify", "-p", "NotifyAccess=main",
                      "-p", "WatchdogSec=4", "-p", f"WorkingDirectory={Path.cwd()}", "--no-block",
                      *CLI, "run", "--no-ui", "--config", str(config), "--data-dir", str(data), "--log-format", "json")
        try:
            for _ in range(300):  # up to 60 s: active only once READY=1 arrived
                if (await show()).get("ActiveState") == "active":
                    break
                await asyncio.sleep(0.2)
            assert (await show())["ActiveState"] == "active", await show()
            await asyncio.sleep(10)  # 2.5 watchdog timeouts
            state = await show()
            assert state["ActiveState"] == "active" and state["Result"] == "success", state
            assert state["StatusText"].startswith(("examstation run: site", "status:")), state
        finally:
            await command("systemctl", *user, "stop", unit)
        assert (await show()).get("Result") in ("success", ""), await show()
