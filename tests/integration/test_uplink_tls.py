"""The uplink to a broker that wants TLS and a password, as a provincial broker does.

mosquitto here listens with a certificate from a test CA made in the test and refuses anonymous
clients. The station's `uplink:` settings (mqtts://, ca_file, username, password_file) get the
relay in; a wrong password or an unknown CA keeps it out with a reason in its health, and the
results stay queued for when the settings are fixed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import gc
import ipaddress
import json
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiomqtt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from devices.clock import SystemClock
from hardware_sim.mosquitto import Mosquitto
from hardware_sim.province_key import public_path
from scoring.rubric_loader import rubric_for
from station.config import SiteConfig, Uplink, load_site_config
from station.db import Database
from station.signing import SiteKey, verify
from station.uplink import contract, outbox
from station.uplink.relay import RelaySettings, UplinkRelay
from tests.uplink_kit import SITE_CONFIG, province_key, station_database, wait_until

USER, PASSWORD = "GD-SZ-0101", "考点密码-2026"


def _pem(obj: x509.Certificate) -> bytes:
    return obj.public_bytes(serialization.Encoding.PEM)


def make_ca_and_server(where: Path) -> tuple[Path, Path, Path]:
    """A CA, and a server certificate for 127.0.0.1 signed by it: (ca.pem, server.pem, server.key)."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "examstation test province CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
          .not_valid_after(now + dt.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = where / "ca.pem", where / "server.pem", where / "server.key"
    paths[0].write_bytes(_pem(ca))
    paths[1].write_bytes(_pem(cert))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths


def password_file(path: Path, users: dict[str, str]) -> Path:
    """A mosquitto password file (hashed by mosquitto_passwd, from Debian's mosquitto package)."""
    for n, (user, password) in enumerate(users.items()):
        subprocess.run(["mosquitto_passwd", "-b", *(["-c"] if n == 0 else []), str(path), user, password],
                       check=True, capture_output=True)
    return path


@dataclass
class Secure:
    broker: Mosquitto
    ca: Path
    db: Database
    key: SiteKey
    tmp: Path

    def config(self, password: str = PASSWORD, ca: Path | None = None) -> SiteConfig:
        pw = self.tmp / f"pw-{abs(hash(password))}"
        pw.write_text(password + "\n", encoding="utf-8")
        uplink = Uplink(broker_url=f"mqtts://127.0.0.1:{self.broker.port}", username=USER, password_file=str(pw),
                        ca_file=str(ca) if ca else str(self.ca), province_key=str(public_path(province_key())))
        return load_site_config(SITE_CONFIG).model_copy(update={"uplink": uplink})

    def relay(self, config: SiteConfig) -> UplinkRelay:
        return UplinkRelay(config, self.db, key_id=self.key.key_id, rubrics=[rubric_for("低压电工作业")],
                           clock=SystemClock(), settings=RelaySettings(reconnect_first_s=0.1, reconnect_cap_s=0.3))


@pytest.fixture
async def secure(tmp_path: Path) -> AsyncIterator[Secure]:
    ca, cert, key_file = make_ca_and_server(tmp_path)
    passwd = password_file(tmp_path / "passwd", {USER: PASSWORD, "province": "省平台"})
    extra = [f"cafile {ca}", f"certfile {cert}", f"keyfile {key_file}", f"password_file {passwd}"]
    async with Mosquitto(allow_anonymous=False, extra_config=extra) as broker:
        data = tmp_path / "data"
        with station_database(data, load_site_config(SITE_CONFIG)) as (db, site_key):
            yield Secure(broker, ca, db, site_key, tmp_path)


async def test_tls_and_password_get_results_through(secure: Secure) -> None:
    seen: dict[str, dict[str, object]] = {}
    tls = aiomqtt.TLSParameters(ca_certs=str(secure.ca))
    async with aiomqtt.Client("127.0.0.1", secure.broker.port, username="province", password="省平台",
                              tls_params=tls) as province:
        await province.subscribe("examstation/v1/#", qos=1)
        async with secure.relay(secure.config()) as relay:
            async with asyncio.timeout(20):
                async for message in province.messages:
                    seen[message.topic.value] = json.loads(bytes(message.payload))  # type: ignore[arg-type]
                    if any(t.endswith("/result") for t in seen):
                        break
            assert relay.connected and relay.last_error is None
    status = seen[contract.status_topic("GD-SZ-0101")]
    assert status["state"] == "online" and contract.problems("status", status) == []
    result = seen[contract.result_topic("GD-SZ-0101", "A01")]
    assert verify(result, secure.key.public_pem())
    assert outbox.state_of(secure.db, str(result["result_id"])) == "queued"  # no receipt: nobody stored it


async def test_a_wrong_password_keeps_the_relay_out_and_says_so(secure: Secure) -> None:
    async with secure.relay(secure.config(password="wrong")) as relay:
        await wait_until(lambda: relay.last_error is not None, 10)
        await asyncio.sleep(0.5)
        assert not relay.connected
        health = await asyncio.to_thread(relay.health)
    assert "authori" in (relay.last_error or "").lower(), relay.last_error
    assert health.backlog.queued == 1 and "NOT CONNECTED" in health.line()


# paho leaves the socket of a failed TLS handshake for the garbage collector (it holds no reference
# we could close); collected, it warns. Nothing accumulates: each one is freed at the next collection.
@pytest.mark.filterwarnings("ignore::ResourceWarning", "ignore::pytest.PytestUnraisableExceptionWarning")
async def test_an_unknown_ca_keeps_the_relay_out_and_says_so(secure: Secure, tmp_path: Path) -> None:
    (tmp_path / "other").mkdir()
    other_ca, _, _ = make_ca_and_server(tmp_path / "other")
    async with secure.relay(secure.config(ca=other_ca)) as relay:
        await wait_until(lambda: relay.last_error is not None, 10)
        assert not relay.connected
    gc.collect()
    assert "certificate" in (relay.last_error or "").lower(), relay.last_error
    assert outbox.backlog(secure.db).queued == 1


async def test_an_unreadable_password_file_is_named(secure: Secure) -> None:
    config = secure.config()
    broken = config.model_copy(update={"uplink": config.uplink.model_copy(
        update={"password_file": str(secure.tmp / "missing-password")})})
    async with secure.relay(broken) as relay:
        await wait_until(lambda: relay.last_error is not None, 10)
    assert "missing-password" in (relay.last_error or "") and "cannot read it" in (relay.last_error or "")
