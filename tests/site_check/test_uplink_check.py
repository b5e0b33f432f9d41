"""The uplink check against a real mosquitto and the simulated province (hardware_sim.province).

Each fault in its own test gives the `uplink` check's failure with its step and only that: no
broker (a closed port), a login the broker refuses, a province that does not answer, receipts
signed by a key other than uplink.province_key, and a province that holds another key for this
site (the site's signing key does not match the registered one). Nothing goes to a result topic:
the province stores no result.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiomqtt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from devices.clock import SystemClock
from hardware_sim.mosquitto import Mosquitto
from hardware_sim.process_probe import free_port
from hardware_sim.province import ProvinceServer
from hardware_sim.province_key import public_pem
from scoring.rubric_loader import rubric_for
from station.config import SiteConfig
from station.signing import SiteKey
from station.site_check.report import Check, CheckContext
from station.site_check.uplink_check import check_uplink
from station.uplink import contract
from station.uplink.relay import RelaySettings, UplinkRelay
from tests.uplink_kit import (
    SITE_CONFIG,
    ResultFactory,
    outbox_states,
    province_key,
    site_config,
    station_database,
    wait_until,
)

SITE = "GD-SZ-0101"
QUICK = RelaySettings(resend_first_s=0.3, resend_cap_s=1.0, reconnect_first_s=0.1, reconnect_cap_s=0.5,
                      idle_poll_s=0.1)


@dataclass
class Site:
    broker: Mosquitto
    data: Path
    key: SiteKey
    config: SiteConfig

    def ctx(self, config: SiteConfig | None = None) -> CheckContext:
        return CheckContext(config or self.config, SITE_CONFIG, self.data, sample_s=1.0)


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    async with Mosquitto() as broker:
        data = tmp_path / "data"
        yield Site(broker, data, SiteKey.load_or_create(data), site_config(broker.url))


def province(site: Site, site_public_pem: str | None = None) -> ProvinceServer:
    return ProvinceServer(site.broker.url, keys={SITE: site_public_pem or site.key.public_pem()},
                          province_key=province_key(), client_id="province-test")


def only(checks: list[Check]) -> Check:
    assert [c.id for c in checks] == ["uplink"], checks
    return checks[0]


async def test_a_round_trip_with_a_verified_receipt_passes(site: Site) -> None:
    async with province(site) as prov:
        await prov.connected.wait()
        check = only(await check_uplink(site.ctx()))
        assert check.passed, check.detail
        assert check.category == "uplink" and check.fix is None
        assert 0 < float(check.figures["round_trip_ms"] or 0) < 5000, check.figures
        assert check.figures["key_id"] == site.key.key_id and site.key.key_id in check.detail
        kept = prov.acceptances(SITE)
        assert [(a.kind, a.status, a.signature_ok) for a in kept] == [("probe", "stored", True)]
        assert prov.stored(SITE) == 0, "a probe is not a result"


async def test_no_broker_is_that_failure_only(site: Site) -> None:
    closed = site.config.model_copy(update={"uplink": site.config.uplink.model_copy(
        update={"broker_url": f"mqtt://127.0.0.1:{free_port()}"})})
    check = only(await check_uplink(site.ctx(closed), timeout_s=3))
    assert not check.passed and check.figures["step"] == "unreachable", check
    assert "refused" in check.detail.lower() and "network" in (check.fix or "")


async def test_a_province_holding_another_key_for_the_site_fails_saying_the_key_does_not_match(site: Site) -> None:
    other = SiteKey(Ed25519PrivateKey.generate())
    async with province(site, other.public_pem()) as prov:
        await prov.connected.wait()
        check = only(await check_uplink(site.ctx()))
    assert not check.passed
    assert "does not match the key the province holds" in check.detail, check.detail
    assert site.key.key_id in check.detail and other.key_id in check.detail
    assert "keys export" in (check.fix or "") and "backup" in (check.fix or "")
    [kept] = prov.acceptances(SITE)
    assert (kept.status, kept.signature_ok) == ("rejected", False)


async def test_receipts_not_signed_by_the_configured_province_key_fail(site: Site) -> None:
    elsewhere = site.data / "other-province.pub.pem"
    elsewhere.write_text(public_pem(Ed25519PrivateKey.generate().public_key()), encoding="utf-8")
    config = site.config.model_copy(update={"uplink": site.config.uplink.model_copy(
        update={"province_key": str(elsewhere)})})
    async with province(site) as prov:
        await prov.connected.wait()
        check = only(await check_uplink(site.ctx(config)))
    assert not check.passed and check.figures["step"] == "untrusted", check
    assert prov.key_id in check.detail and "uplink.province_key" in (check.fix or "")


async def test_a_broker_without_a_province_gives_no_receipt(site: Site) -> None:
    check = only(await check_uplink(site.ctx(), timeout_s=1.0))
    assert not check.passed and check.figures["step"] == "no_receipt", check
    assert "within 1 s" in check.detail and "receiving server" in (check.fix or "")


async def test_a_missing_site_key_leaves_the_link_passing(site: Site, tmp_path: Path) -> None:
    """The key check reports the missing key; the uplink check still measures the round trip."""
    async with province(site) as prov:
        await prov.connected.wait()
        check = only(await check_uplink(CheckContext(site.config, SITE_CONFIG, tmp_path / "empty", 1.0)))
    assert check.passed and "unsigned" in check.detail, check
    [kept] = prov.acceptances(SITE)
    assert (kept.status, kept.signature_ok) == ("rejected", False)


@pytest.fixture
def passwd(tmp_path: Path) -> Path:
    """A mosquitto password file (hashed by mosquitto_passwd, from Debian's mosquitto package)."""
    path = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(path), SITE, "right"], check=True, capture_output=True)
    return path


async def test_a_refused_login_is_named(tmp_path: Path, passwd: Path) -> None:
    async with Mosquitto(allow_anonymous=False, extra_config=[f"password_file {passwd}"]) as broker:
        wrong = tmp_path / "mqtt-password"
        wrong.write_text("wrong\n", encoding="utf-8")
        config = site_config(broker.url)
        config = config.model_copy(update={"uplink": config.uplink.model_copy(
            update={"username": SITE, "password_file": str(wrong)})})
        check = only(await check_uplink(CheckContext(config, SITE_CONFIG, tmp_path / "data", 1.0), timeout_s=3))
    assert not check.passed and check.figures["step"] == "auth", check
    assert "uplink.username" in (check.fix or "")


async def test_a_running_controller_is_left_alone(tmp_path: Path) -> None:
    """The morning check runs beside the controller: its relay stays connected (the check has its own
    client id), its results are delivered as usual, no result is settled by an acceptance receipt,
    and the retained status still says online (the check registers no will)."""
    async with Mosquitto() as broker:
        config = site_config(broker.url)
        with station_database(tmp_path / "data", config) as (db, key):
            await asyncio.to_thread(ResultFactory(db, key).add, 3)
            async with UplinkRelay(config, db, key_id=key.key_id, rubrics=[rubric_for("低压电工作业")],
                                   clock=SystemClock(), settings=QUICK) as relay:
                await wait_until(lambda: relay.connected, 10)
                check = only(await check_uplink(CheckContext(config, SITE_CONFIG, tmp_path / "data", 1.0),
                                                timeout_s=1.0))
                assert not check.passed and check.figures["step"] == "no_receipt"
                assert outbox_states(db) == {"queued": 4}, "nothing settled, nothing added"
                async with ProvinceServer(broker.url, keys={SITE: key.public_pem()}, province_key=province_key(),
                                          client_id="province-test") as prov:
                    await prov.connected.wait()
                    check = only(await check_uplink(CheckContext(config, SITE_CONFIG, tmp_path / "data", 1.0)))
                    assert check.passed, check.detail
                    await wait_until(lambda: outbox_states(db) == {"delivered": 4}, 20)
                assert relay.connected and relay.stats.connects == 1, "the check did not take the relay's session"
                # the relay counts a delivery once its settling thread is back on the loop, just after the commit
                await wait_until(lambda: relay.stats.delivered == 4, 5)
                assert relay.receipt_counts.untrusted == 0
        async with aiomqtt.Client(broker.host, broker.port, identifier="status-reader") as reader:
            await reader.subscribe(contract.status_topic(SITE), qos=1)
            async with asyncio.timeout(5):
                status = json.loads(bytes((await anext(reader.messages)).payload))
    assert status["state"] == "offline" and status.get("reason") == "shutdown", "the relay's own goodbye, no will"
