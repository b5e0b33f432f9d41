"""A hall larger than one box (issue 16): two `examstation run` controllers, boxes A (A01-A04) and
B (W01-W02) of one site config, each with its own data directory and UI port, one mosquitto, the
simulated hall's devices and the simulated province.

- Box A's hall page (signed in over HTTP, its SSE read as a browser reads it) shows B's stations,
  marked with box B and linked to B's UI; when a device of B's stops answering, A's hall shows it
  within 2 s of B's live message about it.
- Both boxes are on the broker at once (own client ids, own retained status beneath the site's).
- Each box delivers its own result (both seq 1: seq counts per box) and settles its own receipt;
  the other box's receipts cost it no alarm.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import signal
import sys
import time
from collections.abc import AsyncGenerator, AsyncIterator
from pathlib import Path
from typing import Any

import aiomqtt
import httpx
import pytest

from hardware_sim.mosquitto import Mosquitto
from hardware_sim.process_probe import free_port
from hardware_sim.province import ProvinceServer
from hardware_sim.province_key import public_path
from hardware_sim.site import SimSite
from station.config import SiteConfig, load_site_config
from station.db import open_database
from station.signing import KEY_FILE
from tests.box_kit import example_raw, split, write
from tests.sse_kit import events, sign_in
from tests.uplink_kit import outbox_states, province_key, station_database

CLI = [sys.executable, "-m", "station.cli"]
SITE = "GD-SZ-0101"
PASSWORD = "two-box-hall-1"


class Box:
    """One `examstation run --box ID` and the lines it printed."""

    def __init__(self, box: str, config: Path, data: Path, port: int) -> None:
        self.box, self.config, self.data, self.port = box, config, data, port
        self.lines: list[str] = []
        self.proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            *CLI, "run", "--box", self.box, "--config", str(self.config), "--data-dir", str(self.data),
            "--port", str(self.port), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        async for raw in self.proc.stdout:
            self.lines.append(raw.decode(errors="replace").rstrip())

    async def wait_for(self, text: str, timeout_s: float) -> str:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            found = next((line for line in self.lines if text in line), None)
            if found is not None:
                return found
            assert self.proc is None or self.proc.returncode is None, "\n".join(self.lines[-30:])
            await asyncio.sleep(0.05)
        raise AssertionError(f"box {self.box} never printed {text!r}:\n" + "\n".join(self.lines[-30:]))

    async def stop(self) -> int:
        if self.proc is None:
            return 0
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)  # as systemd stops it: exit 0
            try:
                await asyncio.wait_for(self.proc.wait(), 30)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        if self._reader is not None:
            await self._reader
        return self.proc.returncode or 0


async def _cli(*args: str, stdin: bytes | None = None) -> str:
    proc = await asyncio.create_subprocess_exec(*CLI, *args, stdin=asyncio.subprocess.PIPE,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(stdin), 60)
    assert proc.returncode == 0, out.decode()
    return out.decode()


def _databases(whole: SiteConfig, data_a: Path, data_b: Path) -> None:
    """Each box's database with one signed, queued result. The boxes share the site's key (docs/boxes.md:
    copied from the first box), and each counts its own seq: both results are seq 1. B's result is
    made at A01 (the kit's attempt); the station matters nothing to delivery, the box does."""
    with station_database(data_a, whole.for_box("A")):
        pass
    (data_b / "keys").mkdir(parents=True)
    shutil.copy2(data_a / "keys" / KEY_FILE, data_b / "keys" / KEY_FILE)
    b_with_a01 = whole.for_box("B").model_copy(update={"stations": whole.stations})
    with station_database(data_b, b_with_a01):
        pass


async def _states(client: httpx.AsyncClient, cookie: str) -> AsyncGenerator[tuple[float, dict[str, Any]], None]:
    """Each `state` event of the hall's stream, with when it arrived."""
    async for ev in events(client, cookie):
        if ev.name == "state":
            yield ev.at, ev.data


async def _next_state(stream: AsyncIterator[tuple[float, dict[str, Any]]], station: str, timeout_s: float,
                      check: Any) -> tuple[float, dict[str, Any]]:
    async with asyncio.timeout(timeout_s):
        async for at, snap in stream:
            if snap["station"] == station and check(snap):
                return at, snap
    raise AssertionError("the hall's stream ended")


class LiveTap:
    """When each live message of the site arrived at the broker's side of the test, per station."""

    def __init__(self, broker: Mosquitto) -> None:
        self.broker = broker
        self.heard: list[tuple[float, dict[str, Any]]] = []
        self.status: dict[str, dict[str, Any]] = {}

    async def run(self, ready: asyncio.Event) -> None:
        async with aiomqtt.Client(self.broker.host, self.broker.port, identifier="two-box-tap") as client:
            await client.subscribe(f"examstation/v1/{SITE}/+/live")
            await client.subscribe(f"examstation/v1/{SITE}/status/#", qos=1)
            ready.set()
            async for message in client.messages:
                doc = json.loads(message.payload) if isinstance(message.payload, bytes) else {}
                if message.topic.value.endswith("/live"):
                    self.heard.append((time.monotonic(), doc))
                else:
                    self.status[message.topic.value] = doc


@contextlib.asynccontextmanager
async def _tap(broker: Mosquitto) -> AsyncIterator[LiveTap]:
    tap, ready = LiveTap(broker), asyncio.Event()
    task = asyncio.create_task(tap.run(ready))
    try:
        await asyncio.wait_for(ready.wait(), 10)
        yield tap
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _device(snap: dict[str, Any], name: str) -> bool | None:
    return next(d["online"] for d in snap["devices"] if d["name"] == name)


@pytest.mark.xdist_group("two_box")
@pytest.mark.timeout(150)
async def test_two_boxes_one_broker_one_hall(tmp_path: Path) -> None:
    port_a, port_b = free_port(), free_port()
    boxes = [{"id": "A", "name": "一号机", "ui_url": f"http://127.0.0.1:{port_a}"},
             {"id": "B", "name": "二号机", "ui_url": f"http://127.0.0.1:{port_b}"}]
    split_example = load_site_config(write(split(example_raw(), boxes), tmp_path / "split.yaml"))
    data_a, data_b = tmp_path / "box-a", tmp_path / "box-b"
    async with Mosquitto() as broker, SimSite(split_example, cameras=False) as sim, _tap(broker) as tap:
        raw = sim.resolved_config().model_dump(mode="json", exclude_none=True)
        raw["uplink"] = {"broker_url": broker.url, "province_key": str(public_path(province_key()))}
        config = write(raw, tmp_path / "site.yaml")
        whole = load_site_config(config)
        await asyncio.to_thread(_databases, whole, data_a, data_b)
        await _cli("user", "add", "hall", "--role", "proctor", "--password-stdin", "--config", str(config),
                   "--data-dir", str(data_a), stdin=f"{PASSWORD}\n".encode())
        site_pem = (await _cli("keys", "export", "--data-dir", str(data_a)))
        async with ProvinceServer(broker.url, keys={SITE: site_pem}, province_key=province_key()) as province:
            a, b = Box("A", config, data_a, port_a), Box("B", config, data_b, port_b)
            try:
                await asyncio.gather(a.start(), b.start())
                started = await a.wait_for("examstation run: site GD-SZ-0101 box A (一号机), 4 stations", 60)
                assert "results to mqtt://" in started
                await b.wait_for("examstation run: site GD-SZ-0101 box B (二号机), 2 stations", 60)
                await asyncio.gather(a.wait_for("proctor UI on", 60), b.wait_for("proctor UI on", 60))

                # each box's result reaches the province; both are seq 1, of their own box
                await province.wait_stored(SITE, 2, timeout_s=30)
                assert province.seqs(f"{SITE}/A") == {1} and province.seqs(f"{SITE}/B") == {1}
                assert province.rejections() == []

                async with httpx.AsyncClient(base_url=a.url, timeout=10) as client:
                    cookie = await sign_in(client, "hall", PASSWORD)
                    page = (await client.get("/", headers={"cookie": cookie})).text
                    for station in ("W01", "W02"):
                        tile = page[page.index(f'id="tile-{station}"'):]
                        tile = tile[:tile.index("</article>")]
                        assert 'data-box="B"' in tile and "二号机 · B" in tile, tile
                        assert f'href="{b.url}/station/{station}"' in tile  # watched, and run, on box B
                        assert "/live/" not in tile  # no picture of another box's camera here
                    assert 'id="tile-A01"' in page and "一号机 · A" in page

                    stream = _states(client, cookie)
                    _, w01 = await _next_state(stream, "W01", 20, lambda s: not s["remote"]["stale"]
                                               and _device(s, "extinguisher") is True)
                    assert w01["box"] == {"id": "B", "name": "二号机", "ui_url": b.url, "own": False}
                    assert w01["state"] == "idle" and w01["candidate"] is None

                    # a device of box B is switched off: box B says so on its live topic, box A's hall shows it
                    await sim.tcp[("W01", "extinguisher")].power_off()
                    shown_at, w01 = await _next_state(stream, "W01", 30,
                                                      lambda s: _device(s, "extinguisher") is False)
                    said_at = next(at for at, doc in tap.heard
                                   if doc["station"] == "W01" and doc["devices"].get("extinguisher") is False)
                    assert doc_box(tap, "W01") == "B"
                    print(f"box A showed it {shown_at - said_at:.2f} s after box B said it")
                    assert shown_at - said_at < 2.0, f"shown {shown_at - said_at:.2f} s after box B said it"
                    assert any(al["code"] == "device.lost" for al in w01["alarms"])
                    await stream.aclose()

                # both boxes on the broker at once, each with its own retained status
                status_a, status_b = tap.status[f"examstation/v1/{SITE}/status/A"], \
                    tap.status[f"examstation/v1/{SITE}/status/B"]
                assert (status_a["state"], status_a["box"]) == ("online", "A")
                assert (status_b["state"], status_b["box"]) == ("online", "B")
                assert [st["id"] for st in status_b["stations"]] == ["W01", "W02"]
                assert f"examstation/v1/{SITE}/status" not in tap.status
            finally:
                codes = await asyncio.gather(a.stop(), b.stop())
    assert codes == [0, 0], "\n".join(a.lines[-20:] + b.lines[-20:])
    for box, data in ((a, data_a), (b, data_b)):
        with open_database(data / "examstation.sqlite3") as db:
            assert outbox_states(db) == {"delivered": 1}, box.box
        # the other box's receipt named a result this box never sent: ignored, no alarm
        assert not [line for line in box.lines if "ALARM" in line and ("receipt" in line or "uplink" in line)], \
            box.lines
        # own client ids: neither box took the broker session from the other (no link lost, no reconnect)
        assert not [line for line in box.lines if "NOT CONNECTED" in line or "results stay in the outbox" in line
                    or "are not followed" in line], box.lines


def doc_box(tap: LiveTap, station: str) -> str | None:
    """The box the latest live message of `station` names."""
    docs = [doc for _, doc in tap.heard if doc.get("station") == station]
    return docs[-1].get("box") if docs else None
