"""/metrics and /healthz of a controller put together as `examstation run` does: simulated devices
polled over real Modbus TCP sockets by the device hub, a simulated H.264 camera recorded, the item
clocks ticked, an uplink relay (its broker down), and the UI served by uvicorn on a free port.

Scraped with httpx and parsed with prometheus_client's own parser: polls, samples and frames grow;
a device that goes silent (hardware_sim's fault plan) shows offline with its failed and late polls
growing, and /healthz turns 503 naming it, as it does when the main loop stops ticking. From an
address that is not loopback (this machine's LAN address, over HTTPS) /metrics takes the bearer
token of monitoring.metrics_token_file, while /healthz answers anyone.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import json
import socket
import ssl
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from prometheus_client.parser import text_string_to_metric_families

from devices.clock import SystemClock
from hardware_sim.site import SimSite
from proctor_ui.wiring import ui_for
from station.config import Monitoring, SiteConfig, load_site_config
from station.controller import uplink_relay
from station.db import database_path, open_database
from station.device_hub import DeviceHub
from station.recording import Recording
from station.services import StationServices
from station.signing import SiteKey
from station.status_feed import StatusFeed
from station.stored import ensure_database
from station.uplink.relay import RelaySettings

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
TOKEN = "metrics-token-for-the-test"


def _site(token_file: Path) -> SiteConfig:
    """Station A01 of the example hall with its two Modbus TCP devices and one small camera."""
    data = load_site_config(ROOT / "examples" / "site.yaml").model_dump(mode="python")
    a01 = data["stations"][0]
    a01["devices"] = [d for d in a01["devices"] if d["name"] in ("bench", "extinguisher")]
    a01["cameras"] = [dict(a01["cameras"][0], resolution="320x180", fps=10)]
    data["stations"], data["buses"] = [a01], []
    data["monitoring"] = Monitoring(metrics_token_file=str(token_file)).model_dump()
    return SiteConfig.model_validate(data)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Controller:
    url: str
    site: SimSite
    services: StationServices
    ticking: asyncio.Task[None]
    lan: str | None
    """https://LAN-ADDRESS:PORT serving the same controller, when the machine has such an address."""
    ca: Path


async def _tick(services: StationServices) -> None:
    """The controller's main loop, as station.controller._clock_loop runs it."""
    while True:
        await asyncio.to_thread(services.tick)
        await asyncio.sleep(0.1)


@contextlib.asynccontextmanager
async def controller(tmp_path: Path, lan: bool = False) -> AsyncIterator[Controller]:
    """`lan`: serve the UI on this machine's LAN address too (HTTPS), besides loopback."""
    token_file = tmp_path / "metrics.token"
    token_file.write_text(TOKEN + "\n", encoding="utf-8")
    config = _site(token_file)
    data_dir = tmp_path / "data"
    ensure_database(data_dir)
    lan_address = _lan_address() if lan else None
    cert, key = _self_signed(tmp_path, lan_address or "127.0.0.1")
    async with SimSite(config) as site:
        resolved = site.resolved_config()
        with open_database(database_path(data_dir)) as db:
            services = StationServices(config, db, SiteKey.load_or_create(data_dir), SystemClock())
            try:
                async with contextlib.AsyncExitStack() as stack:
                    feed = await stack.enter_async_context(StatusFeed(services.device_status))
                    hub = await stack.enter_async_context(DeviceHub(resolved, services.record_sample, feed,
                                                                    services.clock, services.record_value_fault))
                    relay = await stack.enter_async_context(uplink_relay(
                        config, services, hub, RelaySettings(reconnect_first_s=0.2, reconnect_cap_s=0.5),
                        broker_url=f"mqtt://127.0.0.1:{_free_port()}"))  # nobody listens: the uplink is down
                    await stack.enter_async_context(Recording(services, data_dir, resolved))
                    url = await stack.enter_async_context(ui_for(services, config, data_dir, hub, relay=relay,
                                                                 port=0, live=False))
                    lan_url = None
                    if lan_address is not None:
                        lan_url = await stack.enter_async_context(ui_for(
                            services, config, data_dir, hub, relay=relay, host=lan_address, port=0, tls_cert=cert,
                            tls_key=key, live=False))
                    ticking = asyncio.create_task(_tick(services), name="test main loop")
                    try:
                        yield Controller(url, site, services, ticking, lan_url, cert)
                    finally:
                        ticking.cancel()
                        with contextlib.suppress(asyncio.CancelledError):
                            await ticking
            finally:
                await asyncio.to_thread(services.close)


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(client: httpx.AsyncClient, url: str) -> Samples:
    r = await client.get(f"{url}/metrics")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    out: Samples = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float:
    key = (name, tuple(sorted(labels.items())))
    assert key in samples, f"{name}{labels} is not in /metrics; it has {sorted({n for n, _ in samples})}"
    return samples[key]


async def wait_healthy(client: httpx.AsyncClient, url: str, timeout_s: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout_s
    last = await client.get(f"{url}/healthz")
    while last.status_code != 200 and loop.time() < end:
        await asyncio.sleep(0.2)
        last = await client.get(f"{url}/healthz")
    assert last.status_code == 200, f"never healthy within {timeout_s} s: {last.text}"
    assert last.json() == {"ok": True, "problems": []}


BENCH = {"station": "A01", "device": "bench"}


async def test_figures_grow_and_a_silent_device_shows_offline_late_and_unhealthy(tmp_path: Path) -> None:
    async with controller(tmp_path) as c, httpx.AsyncClient(timeout=10) as client:
        await wait_healthy(client, c.url)
        first = await scrape(client, c.url)
        bench = c.site.rigs["A01"].bench
        assert bench is not None
        bench.main_switch = True  # the candidate switches the bench on: its readings change
        await asyncio.sleep(2.0)
        second = await scrape(client, c.url)
        polls = value(second, "examstation_device_polls_total", **BENCH)
        assert polls - value(first, "examstation_device_polls_total", **BENCH) >= 10, "10 Hz for 2 s"
        assert value(second, "examstation_samples_total", **BENCH) > value(first, "examstation_samples_total", **BENCH)
        cam = {"station": "A01", "camera": "overview"}
        assert value(second, "examstation_camera_frames_total", **cam) >= value(
            first, "examstation_camera_frames_total", **cam) + 10, "10 fps for 2 s"
        assert value(second, "examstation_camera_gaps_total", **cam) == 0
        assert value(second, "examstation_device_online", kind="modbus", **BENCH) == 1
        assert value(second, "examstation_outbox_queued") == 0
        assert value(second, "examstation_outbox_oldest_age_seconds") == 0
        assert value(second, "examstation_uplink_connected") == 0
        late_before = value(second, "examstation_device_polls_late_total", **BENCH)
        failed_before = value(second, "examstation_device_polls_failed_total", **BENCH)

        c.site.rigs["A01"].faults["bench"].no_answer = True  # powered, silent: every request times out
        await asyncio.sleep(2.5)
        third = await scrape(client, c.url)
        assert value(third, "examstation_device_online", kind="modbus", **BENCH) == 0
        assert value(third, "examstation_device_polls_failed_total", **BENCH) > failed_before
        assert value(third, "examstation_device_polls_late_total", **BENCH) > late_before, \
            "a poll waiting out its timeout ends after the next one was due"
        assert value(third, "examstation_device_request_errors_total", error="timeout", **BENCH) > 0
        other = {"station": "A01", "device": "extinguisher"}
        assert value(third, "examstation_device_online", kind="modbus", **other) == 1, "the other device is fine"
        health = await client.get(f"{c.url}/healthz")
        assert health.status_code == 503
        assert health.json() == {"ok": False, "problems": [{"what": "device", "who": "A01/bench",
                                                            "detail": "offline"}]}

        c.site.rigs["A01"].faults["bench"].no_answer = False
        await wait_healthy(client, c.url)
        c.ticking.cancel()  # the main loop hangs
        await asyncio.sleep(0.3)
        before = await scrape(client, c.url)
        assert value(before, "examstation_main_loop_tick_age_seconds") < 5
        await asyncio.sleep(5.5)
        hung = await client.get(f"{c.url}/healthz")
        assert hung.status_code == 503
        assert [p["what"] for p in hung.json()["problems"]] == ["main_loop"]
        assert "has not ticked for" in hung.json()["problems"][0]["detail"]


async def test_metrics_beyond_loopback_need_the_token_and_healthz_does_not(tmp_path: Path) -> None:
    if _lan_address() is None:
        pytest.skip("this machine has no address beyond loopback to ask from")
    async with controller(tmp_path, lan=True) as c:
        assert c.lan is not None
        verify = ssl.create_default_context(cafile=str(c.ca))
        async with httpx.AsyncClient(timeout=10, verify=verify) as client:
            anonymous = await client.get(f"{c.lan}/metrics")
            assert anonymous.status_code == 401 and anonymous.headers["www-authenticate"] == "Bearer"
            wrong = await client.get(f"{c.lan}/metrics", headers={"authorization": "Bearer not-the-token"})
            assert wrong.status_code == 401
            right = await client.get(f"{c.lan}/metrics", headers={"authorization": f"Bearer {TOKEN}"})
            assert right.status_code == 200 and "examstation_device_polls_total" in right.text
            health = await client.get(f"{c.lan}/healthz")
            assert health.status_code in (200, 503) and set(health.json()) == {"ok", "problems"}
            assert "/metrics" not in (await client.get(f"{c.lan}/openapi.json")).text


def _lan_address() -> str | None:
    """An IPv4 address of this machine beyond loopback (None when it has none)."""
    try:
        out = subprocess.run(["ip", "-j", "-4", "addr", "show", "scope", "global"], check=True,
                             capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    for link in json.loads(out or "[]"):
        for addr in link.get("addr_info", []):
            if addr.get("local") and not ipaddress.ip_address(addr["local"]).is_loopback:
                return str(addr["local"])
    return None


def _self_signed(folder: Path, address: str) -> tuple[Path, Path]:
    """A certificate for `address` signed by its own key: the client trusts it as its CA."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "examstation test site")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(address))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "site.crt", folder / "site.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path
