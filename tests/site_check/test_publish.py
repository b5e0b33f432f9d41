"""`site-check --publish` against a real mosquitto and the simulated province: the signed report is
verified and stored by the province and its receipt comes back; a province holding another key
for the site refuses it, saying why; a missing site key is an error that creates no key."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hardware_sim.mosquitto import Mosquitto
from hardware_sim.province import ProvinceServer
from station.config import SiteConfig
from station.signing import KEY_FILE, SiteKey, verify
from station.site_check.publish import PublishError, PublishRejected, publish_report
from station.site_check.report import Check, Report
from station.uplink import contract
from tests.uplink_kit import province_key, site_config

SITE = "GD-SZ-0101"
REPORT = Report(
    site_id=SITE, site_name="深圳市第一职业技能鉴定考点", province="广东", checked_at="2026-12-05T08:00:00Z",
    software_version="0.1.0",
    checks=(Check("device:A01/bench", "device", "A01 bench (lv-bench) answers as its profile", True,
                  "identity LV-BENCH-2 at unit 1; 100 polls in 10 s, 0 errors", station="A01", subject="bench",
                  figures={"polls": 100, "errors": 0}),
            Check("disk", "disk", "free space for 3 years of evidence", False,
                  "1.2 TB free, 3 years need 4.8 TB at 2.1 Mbit/s x 12 cameras",
                  fix="add storage of at least 3.6 TB, or lower the planned volume", figures={"free_gb": 1200.0})),
    snapshots={"A01/overview": b"\xff\xd8\xff\xd9"})


@dataclass
class Hall:
    broker: Mosquitto
    data: Path
    key: SiteKey
    config: SiteConfig


@pytest.fixture
async def hall(tmp_path: Path) -> AsyncIterator[Hall]:
    async with Mosquitto() as broker:
        data = tmp_path / "data"
        yield Hall(broker, data, SiteKey.load_or_create(data), site_config(broker.url))


async def test_the_province_verifies_and_stores_the_report(hall: Hall) -> None:
    async with ProvinceServer(hall.broker.url, keys={SITE: hall.key.public_pem()}, province_key=province_key(),
                              client_id="province-test") as prov:
        await prov.connected.wait()
        assert await publish_report(REPORT, hall.config, hall.data, timeout_s=5) == "stored"
        [kept] = prov.acceptances(SITE)
    assert (kept.kind, kept.status, kept.signature_ok) == ("report", "stored", True)
    message = kept.document
    assert contract.problems("acceptance", message) == []
    assert verify(message, hall.key.public_pem())
    assert message["report"] == json.loads(json.dumps(REPORT.to_json(), ensure_ascii=False))
    assert message["report"]["verdict"] == "fail" and message["report"]["snapshots"] == ["A01/overview"]
    assert "\xff\xd8" not in json.dumps(message), "snapshots stay at the site"


async def test_a_province_holding_another_key_refuses_the_report(hall: Hall) -> None:
    other = SiteKey(Ed25519PrivateKey.generate()).public_pem()
    async with ProvinceServer(hall.broker.url, keys={SITE: other}, province_key=province_key(),
                              client_id="province-test") as prov:
        await prov.connected.wait()
        with pytest.raises(PublishRejected, match="does not verify against the key the province holds") as caught:
            await publish_report(REPORT, hall.config, hall.data, timeout_s=5)
    assert "keys export" in str(caught.value)


async def test_a_missing_site_key_is_an_error_and_no_key_is_made(hall: Hall, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    with pytest.raises(PublishError, match="no site signing key") as caught:
        await publish_report(REPORT, hall.config, empty, timeout_s=2)
    assert "backup" in str(caught.value)
    assert not (empty / "keys" / KEY_FILE).exists()


async def test_no_province_means_no_receipt_and_says_so(hall: Hall) -> None:
    with pytest.raises(PublishError, match="no receipt") as caught:
        await publish_report(REPORT, hall.config, hall.data, timeout_s=1)
    assert "receiving server" in str(caught.value)
