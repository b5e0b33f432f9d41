"""Anyone on the broker can publish on the receipt topic; only the province's signature settles a
result (issue 11). On a real mosquitto, with the relay delivering and no province listening yet,
an intruder publishes receipts: unsigned, signed with another key, signed by the province but
naming a result this station never sent, and one the province signed for another site's result.
None changes an outbox row; the alarm is raised once; the real province's receipts then settle
every result."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiomqtt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from devices.clock import SystemClock
from hardware_sim.mosquitto import Mosquitto
from hardware_sim.province import ProvinceServer
from hardware_sim.province_key import load_or_create, sign
from scoring.rubric_loader import rubric_for
from station.db import Database
from station.ids import uuid7
from station.signing import SiteKey
from station.uplink import contract
from station.uplink.relay import RelaySettings, UplinkRelay
from tests.uplink_kit import (
    ResultFactory,
    outbox_states,
    province_key,
    site_config,
    station_database,
    stored_results,
    wait_until,
)

SITE = "GD-SZ-0101"
QUICK = RelaySettings(resend_first_s=0.3, resend_cap_s=1.0, reconnect_first_s=0.1, reconnect_cap_s=0.5,
                      idle_poll_s=0.1)


@dataclass
class Station:
    broker: Mosquitto
    db: Database
    key: SiteKey
    results: list[tuple[str, int]]
    """(result_id, seq) of every queued result."""


@pytest.fixture
async def station(tmp_path: Path) -> AsyncIterator[Station]:
    async with Mosquitto() as broker:
        with station_database(tmp_path / "data", site_config(broker.url)) as (db, key):
            await asyncio.to_thread(ResultFactory(db, key).add, 4)
            yield Station(broker, db, key, [(rid, seq) for rid, seq, _doc in stored_results(db)])


def receipt(result_id: str, seq: int) -> dict[str, object]:
    return {"schema": "examstation/receipt/v1", "result_id": result_id, "seq": seq, "status": "stored",
            "stored_at": "2026-12-04T08:00:00.000Z"}


async def test_only_the_provinces_signature_settles_a_result(station: Station,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    province = load_or_create(province_key())
    (first, seq1), (second, seq2) = station.results[:2]
    forged = [
        receipt(first, seq1),  # unsigned
        sign(receipt(second, seq2), Ed25519PrivateKey.generate()),  # signed by someone else's key
        sign(receipt(uuid7(), 1), province),  # the province's, but for a result this station never sent
        sign({"schema": "examstation/receipt/v1", "receipts": [  # the province's, for another site's result
            {"result_id": uuid7(), "seq": seq1, "status": "stored", "stored_at": "2026-12-04T08:00:00.000Z"}]},
             province),
    ]
    config = site_config(station.broker.url)
    caplog.set_level(logging.ERROR, logger="station.uplink.receipts")
    async with UplinkRelay(config, station.db, key_id=station.key.key_id, rubrics=[rubric_for("低压电工作业")],
                           clock=SystemClock(), settings=QUICK) as relay:
        await wait_until(lambda: relay.connected, 10)
        async with aiomqtt.Client(station.broker.host, station.broker.port, identifier="intruder") as intruder:
            for message in forged:
                await intruder.publish(contract.receipt_topic(SITE), json.dumps(message).encode(), qos=1)
        await wait_until(lambda: relay.receipt_counts.untrusted == 2 and relay.stats.ignored_receipts == 2, 10)
        await asyncio.sleep(0.5)  # several resend rounds: nothing may have settled meanwhile
        assert outbox_states(station.db) == {"queued": len(station.results)}
        alarms = [r for r in caplog.records if r.levelno == logging.ERROR and "ALARM" in r.getMessage()]
        assert (len(alarms) == 1 and "not by the province's key" not in alarms[0].getMessage()) or len(alarms) == 1
        assert "carries no signature" in alarms[0].getMessage()
        async with ProvinceServer(station.broker.url, keys={SITE: station.key.public_pem()},
                                  province_key=province_key()) as real:
            await wait_until(lambda: outbox_states(station.db) == {"delivered": len(station.results)}, 20)
    assert real.stats.stored == len(station.results)
    assert relay.receipt_counts.untrusted == 2
