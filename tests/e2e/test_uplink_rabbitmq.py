"""The uplink against RabbitMQ's MQTT plugin, as a province running a clustered RabbitMQ would have it.

The same guarantees the mosquitto tests check (tests/integration/test_uplink_messages.py,
tests/e2e/test_uplink_faults.py), with the production relay, the simulated province and real
signed results, through a real RabbitMQ 3.10 node (hardware_sim.rabbitmq):

- signed results reach the province, its signed receipts come back and settle the outbox, and a
  later subscriber to the site's status topic gets the retained birth manifest;
- a controller killed without DISCONNECT leaves the `offline` will as the retained status;
- results PUBACKed into the province's queue survive the broker's kill -9 and restart, and the
  receipts the province sends while the station is away wait in the station's session;
- the users and permissions docs/uplink.md gives the province (read from that page) let a site
  deliver, and keep another site off its topics.

Where RabbitMQ differs from mosquitto, the test pins what docs/uplink.md tells the province:
retained messages reach only a subscription to the exact topic (not `examstation/v1/+/status`),
and a PUBACKed result is on disk (mosquitto's PUBACK is not), though the station still resends
until a receipt.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from devices.clock import SystemClock
from hardware_sim.province import ProvinceServer
from hardware_sim.rabbitmq import RabbitMQ
from scoring.rubric_loader import rubric_for
from station import audit
from station.config import SiteConfig
from station.db import Database
from station.signing import SiteKey, verify
from station.stored import ensure_database
from station.uplink import contract
from station.uplink.relay import RelaySettings, UplinkRelay
from tests.integration.test_uplink_messages import RELAY_PROCESS, Wire, problems_by_message, retained_status
from tests.uplink_kit import ResultFactory, outbox_states, province_key, site_config, station_database, wait_until

pytestmark = [pytest.mark.timeout(120), pytest.mark.xdist_group("rabbitmq")]  # one worker boots the seed node once

ROOT = Path(__file__).resolve().parents[2]
UPLINK_DOC = ROOT / "docs" / "uplink.md"
RUBRICS = [rubric_for("低压电工作业")]
QUICK = RelaySettings(resend_first_s=1.0, resend_cap_s=4.0, reconnect_first_s=0.1, reconnect_cap_s=1.0,
                      idle_poll_s=0.2)
N = 30


def relay_for(config: SiteConfig, db: Database, key: SiteKey) -> UplinkRelay:
    return UplinkRelay(config, db, key_id=key.key_id, rubrics=RUBRICS, clock=SystemClock(), settings=QUICK)


def province_for(broker: RabbitMQ, site: str, key: SiteKey, tmp_path: Path) -> ProvinceServer:
    """The simulated province, its store in a file so that it can stop and start again."""
    return ProvinceServer(broker.url, keys={site: key.public_pem()}, db_url=f"sqlite:///{tmp_path / 'province.db'}",
                          province_key=province_key())


async def first_message(broker: RabbitMQ, topic_filter: str, timeout_s: float) -> aiomqtt.Message | None:
    """What a new subscriber to `topic_filter` gets within `timeout_s` (None: nothing, e.g. no retained message)."""
    async with aiomqtt.Client(broker.host, broker.port, identifier="rabbitmq-first-message") as client:
        await client.subscribe(topic_filter, qos=1)
        try:
            async with asyncio.timeout(timeout_s):
                return await anext(aiter(client.messages))
        except TimeoutError:
            return None


async def audit_ok(db: Database) -> None:
    report = await asyncio.to_thread(audit.verify, db)
    assert report.ok, str(report)


async def test_results_receipts_and_the_retained_status_through_rabbitmq(tmp_path: Path) -> None:
    async with RabbitMQ() as broker, Wire(broker) as wire:
        config = site_config(broker.url)
        site = config.site.id
        with station_database(tmp_path / "station", config) as (db, key):
            await asyncio.to_thread(ResultFactory(db, key).add, N - 1)
            async with province_for(broker, site, key, tmp_path) as province:
                await asyncio.wait_for(province.connected.wait(), 10)
                async with relay_for(config, db, key) as relay:
                    await province.wait_stored(site, N, timeout_s=30)
                    await wait_until(lambda: relay.stats.delivered == N, 30)
                    # a province that subscribes now gets the birth manifest: RabbitMQ's retained store
                    birth, retained = await retained_status(broker, site)
                    # ... but only on the exact topic: RabbitMQ 3.10 sends no retained message to a wildcard
                    # subscription, so the province subscribes to each site's status topic by name
                    by_wildcard = await first_message(broker, f"{contract.PREFIX}/+/status", timeout_s=1.0)
                assert await asyncio.to_thread(outbox_states, db) == {"delivered": N}
                assert province.missing(site) == [] and province.seqs(site) == set(range(1, N + 1))
            goodbye, goodbye_retained = await retained_status(broker, site)
            await audit_ok(db)
    assert province.stats.stored == N and province.stats.rejected == 0 and province.stats.malformed == 0
    assert relay.receipt_counts.untrusted == 0 and relay.receipt_counts.malformed == 0
    assert relay.stats.rejected == 0 and relay.stats.ignored_receipts == 0

    assert retained and birth["state"] == "online" and birth["key_id"] == key.key_id, birth
    assert contract.problems("status", birth) == []
    assert by_wildcard is None, f"RabbitMQ now sends retained messages to wildcard subscriptions: {by_wildcard}"
    assert goodbye_retained and goodbye["state"] == "offline" and goodbye["reason"] == "shutdown", goodbye

    # the wire as any subscriber saw it: every message by its schema, results signed by the site and
    # delivered at QoS 1, receipts (signed by the province, or the relay would not have settled them)
    assert problems_by_message(wire.seen) == []
    results = wire.of("result")
    assert {s.doc["seq"] for s in results} == set(range(1, N + 1))
    assert all(s.qos == 1 and verify(s.doc, key.public_pem()) for s in results)
    entries = [e for s in wire.of("receipt") for e in s.doc.get("receipts", [s.doc])]
    assert {e["result_id"] for e in entries} == {s.doc["result_id"] for s in results}
    assert all(s.topic == contract.receipt_topic(site) and "signature" in s.doc for s in wire.of("receipt"))


async def test_a_killed_controller_leaves_its_will_as_the_retained_status(tmp_path: Path) -> None:
    """The relay in its own process, killed with SIGKILL: RabbitMQ publishes the will it registered,
    retained like mosquitto does it."""
    ensure_database(tmp_path)
    SiteKey.load_or_create(tmp_path)
    async with RabbitMQ() as broker, Wire(broker) as wire:
        site = site_config(broker.url).site.id
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", RELAY_PROCESS, broker.url, str(tmp_path), cwd=ROOT,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        try:
            assert proc.stdout is not None
            async with asyncio.timeout(30):
                line = await proc.stdout.readline()
            assert line == b"connected\n", line + await proc.stdout.read()
            birth = await wire.wait_for(lambda s: s.kind == "status" and s.doc["state"] == "online")
        finally:
            if proc.returncode is None:
                proc.kill()
            output, _ = await proc.communicate()
        assert proc.returncode == -9, output
        will = await wire.wait_for(lambda s: s.kind == "status" and s.doc["state"] == "offline", timeout_s=10)
        retained, flag = await retained_status(broker, site)

    assert problems_by_message([birth, will]) == []
    assert will.topic == contract.status_topic(site) and will.qos == 1
    assert will.doc == {"schema": "examstation/status/v1", "site": site, "state": "offline"}, "no reason: not a goodbye"
    assert flag and retained == will.doc


async def test_results_queued_in_rabbitmq_survive_its_crash_and_are_delivered_after(tmp_path: Path) -> None:
    """The province is away while the station publishes N results; RabbitMQ acknowledges each one
    into the province's durable session queue, then is killed with SIGKILL and started again. The
    province, back, gets all N from that queue, and its receipts wait in the station's own session
    until the station connects again."""
    async with RabbitMQ() as broker:
        config = site_config(broker.url)
        site = config.site.id
        with station_database(tmp_path / "station", config) as (db, key):
            await asyncio.to_thread(ResultFactory(db, key).add, N - 1)
            async with province_for(broker, site, key, tmp_path) as province:  # its session: a durable queue
                await asyncio.wait_for(province.connected.wait(), 10)
            async with relay_for(config, db, key) as relay:
                await wait_until(lambda: relay.stats.published >= N, 30)
            assert await asyncio.to_thread(outbox_states, db) == {"queued": N}  # PUBACKed, never receipted

            await broker.kill9()
            await broker.start()

            async with province_for(broker, site, key, tmp_path) as province:
                await province.wait_stored(site, N, timeout_s=30)
                # everything came from the queue RabbitMQ kept on disk: no station is connected
                stored_without_station = province.stored(site)
                async with relay_for(config, db, key) as relay:
                    await wait_until(lambda: relay.stats.delivered == N, 30)
                    assert await asyncio.to_thread(outbox_states, db) == {"delivered": N}
                assert province.missing(site) == []
            await audit_ok(db)
    assert stored_without_station == N
    assert province.stats.stored == N, "a result was stored twice"
    assert province.stats.messages == N + province.stats.duplicates  # resends after the reconnect: duplicates
    assert relay.receipt_counts.untrusted == 0



def documented_definitions(passwords: dict[str, str], other_site: str) -> dict[str, Any]:
    """The RabbitMQ definitions docs/uplink.md gives (its first JSON block under "### RabbitMQ"), with
    test passwords, and a second site added the way the page says: its site's entries, the code changed."""
    section = UPLINK_DOC.read_text(encoding="utf-8").split("\n### RabbitMQ\n", 1)[1]
    block = section.split("```json\n", 1)[1].split("\n```", 1)[0]
    defs: dict[str, Any] = json.loads(block)
    for kind in ("users", "permissions", "topic_permissions"):
        site_entries = [e for e in defs[kind] if e.get("name", e.get("user")) == "GD-SZ-0101"]
        defs[kind] += json.loads(json.dumps(site_entries).replace("GD-SZ-0101", other_site))
    for user in defs["users"]:
        user["password"] = passwords[user["name"]]
    return defs


async def refused(broker: RabbitMQ, user: str, password: str, what: str, topic: str, client_id: str = "") -> bool:
    """Whether RabbitMQ cuts a client of `user` off when it does `what` ("publish"/"subscribe") on `topic`
    (or refuses its login). The client id is the site's own, which its queue permissions allow."""
    client = aiomqtt.Client(broker.host, broker.port, identifier=client_id or f"examstation-{user}", username=user,
                            password=password, timeout=1.0)
    try:
        async with client:
            if what == "publish":
                await client.publish(topic, b"{}", qos=1, timeout=1.0)
            else:
                await client.subscribe(topic, qos=1, timeout=1.0)
            await client.publish(f"{contract.PREFIX}/{user}/status", b"{}", qos=1, timeout=1.0)  # still connected?
    except aiomqtt.MqttError:
        return True
    return False


async def test_the_documented_acl_lets_a_site_deliver_and_keeps_other_sites_off_its_topics(tmp_path: Path) -> None:
    other = "GD-SZ-0202"
    passwords = {"GD-SZ-0101": "site-0101-secret", other: "site-0202-secret", "province": "province-secret"}
    defs = documented_definitions(passwords, other)
    # the simulated province logs in without a user name: RabbitMQ maps that to the province's user
    config_lines = ["mqtt.default_user = province", f"mqtt.default_pass = {passwords['province']}"]
    async with RabbitMQ(definitions=defs, config=config_lines) as broker:
        password_file = tmp_path / "mqtt-password"
        password_file.write_text(passwords["GD-SZ-0101"] + "\n", encoding="utf-8")
        plain = site_config(broker.url)
        site = plain.site.id
        config = plain.model_copy(update={"uplink": plain.uplink.model_copy(
            update={"username": site, "password_file": str(password_file)})})
        with station_database(tmp_path / "station", config) as (db, key):
            await asyncio.to_thread(ResultFactory(db, key).add, N - 1)
            async with province_for(broker, site, key, tmp_path) as province:
                await asyncio.wait_for(province.connected.wait(), 10)
                async with relay_for(config, db, key) as relay:
                    await province.wait_stored(site, N, timeout_s=30)
                    await wait_until(lambda: relay.stats.delivered == N, 30)
                    # the other site's credentials: its own status is fine, GD-SZ-0101's topics are not
                    own_status = await refused(broker, other, passwords[other], "publish",
                                               contract.status_topic(other))
                    forged_result = await refused(broker, other, passwords[other], "publish",
                                                  contract.result_topic(site, "A01"))
                    forged_receipt = await refused(broker, other, passwords[other], "publish",
                                                   contract.receipt_topic(site))
                    read_receipts = await refused(broker, other, passwords[other], "subscribe",
                                                  contract.receipt_topic(site))
                    wrong_password = await refused(broker, site, "not-the-password", "publish",
                                                   contract.status_topic(site), f"examstation-{site}-check-0badc0de")
                    assert relay.connected, relay.last_error
                assert await asyncio.to_thread(outbox_states, db) == {"delivered": N}
    assert not own_status
    assert forged_result and forged_receipt and read_receipts and wrong_password
    assert province.stats.stored == N and province.stats.malformed == 0 and province.stats.rejected == 0
    assert relay.receipt_counts.malformed == 0 and relay.receipt_counts.untrusted == 0
