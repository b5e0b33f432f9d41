"""Helpers of hardware_sim.rabbitmq that need no running node: the MQTT CONNECT its readiness probe
sends and the probe itself, waiting for a process group to be gone, and copying a stopped node's database.

Kept apart so hardware_sim.rabbitmq stays about starting and stopping the node.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import time
from pathlib import Path


def mqtt_connect_packet(client_id: str, user: tuple[str, str] | None = None) -> bytes:
    """An MQTT 3.1.1 CONNECT (clean session, keepalive 5 s): what the readiness probe sends."""

    def field(text: str) -> bytes:
        raw = text.encode()
        return len(raw).to_bytes(2, "big") + raw

    flags = 0x02 | (0xC0 if user else 0)
    body = field("MQTT") + bytes([4, flags]) + (5).to_bytes(2, "big") + field(client_id)
    if user:
        body += field(user[0]) + field(user[1])
    assert len(body) < 128  # one-byte remaining length
    return bytes([0x10, len(body)]) + body


async def answers_connect(host: str, port: int, user: tuple[str, str] | None) -> bool:
    """Whether an MQTT CONNECT to host:port gets a CONNACK (any return code: a refused login still
    means the MQTT listener is up)."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 1.0)
    except (OSError, TimeoutError):
        return False
    try:
        writer.write(mqtt_connect_packet(f"ready-probe-{secrets.token_hex(4)}", user))
        await writer.drain()
        connack = await asyncio.wait_for(reader.readexactly(4), 2.0)
        if connack[0] == 0x20 and connack[3] == 0:
            writer.write(b"\xe0\x00")  # DISCONNECT: a clean goodbye, no will, nothing logged as lost
            await writer.drain()
        return connack[0] == 0x20
    except (OSError, TimeoutError, asyncio.IncompleteReadError):
        return False
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def group_gone(pgid: int, timeout_s: float = 5.0) -> None:
    """Until no process of the group is left running (the node exits a moment after its script)."""
    deadline = time.monotonic() + timeout_s
    while _group_running(pgid) and time.monotonic() < deadline:  # noqa: ASYNC110 - no event tells a process's end
        await asyncio.sleep(0.02)


def _group_running(pgid: int) -> bool:
    """Whether a process of group `pgid` still runs; a zombie does not count (it holds no port or file,
    and is reaped by whoever inherited it, maybe late)."""
    with os.scandir("/proc") as entries:
        pids = [e.name for e in entries if e.name.isdigit()]
    for pid in pids:
        try:
            stat = Path("/proc", pid, "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()  # state ppid pgrp ...
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def copy_database(seed: Path, mnesia: Path) -> None:
    """Copy a stopped node's database. The Ra servers' `config` files (the MQTT plugin's client id
    tracker) name their directory by absolute path: point them at the copy, or the copy's Ra server
    writes into the seed's directory and the node fails to boot."""
    shutil.copytree(seed, mnesia, dirs_exist_ok=True)
    old, new = str(seed), str(mnesia)
    for config in mnesia.glob("*/*/*/*/config"):  # NODE/coordination|quorum/NODE/SERVER_UID/config
        text = config.read_text(encoding="utf-8")
        if old in text:
            config.write_text(text.replace(f'"{old}/', f'"{new}/'), encoding="utf-8")
