"""The relay against a misbehaving province, over a real mosquitto.

The province is the simulated one (hardware_sim.province) told to drop, duplicate or delay its
receipts, to reject a result, or holding the wrong key. Each test checks what the station's
outbox says afterwards, because that is what decides whether a result is ever sent again: a
result leaves `queued` only on a receipt that names it, a rejected one waits as `failed` with the
province's reason, and nothing else stops the rest from flowing.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiomqtt
import pytest
from sqlalchemy import select

from devices.clock import SystemClock
from hardware_sim.mosquitto import Mosquitto
from hardware_sim.province import ProvinceFaults, ProvinceServer
from scoring.rubric_loader import rubric_for
from station import audit
from station.db import Database
from station.db.models import Attempt, AuditRow, OutboxRow, ResultRow
from station.maintenance import outbox_retry, outbox_status
from station.signing import SiteKey
from station.uplink import contract, outbox
from station.uplink.relay import RelaySettings, UplinkRelay
from tests.uplink_kit import ResultFactory, outbox_states, province_key, site_config, station_database, wait_until

QUICK = RelaySettings(resend_first_s=0.5, resend_cap_s=2.0, reconnect_first_s=0.1, reconnect_cap_s=0.5,
                      idle_poll_s=0.1)
N = 40


@dataclass
class Site:
    broker: Mosquitto
    data: Path
    db: Database
    key: SiteKey
    ids: list[str]
    """result ids in seq order (the real one first)."""

    def relay(self, settings: RelaySettings = QUICK) -> UplinkRelay:
        config = site_config(self.broker.url)
        return UplinkRelay(config, self.db, key_id=self.key.key_id, rubrics=[rubric_for("低压电工作业")],
                           clock=SystemClock(), settings=settings)

    def province(self, faults: ProvinceFaults | None = None, key_pem: str | None = None) -> ProvinceServer:
        return ProvinceServer(self.broker.url, keys={"GD-SZ-0101": key_pem or self.key.public_pem()}, faults=faults,
                              province_key=province_key())


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    async with Mosquitto() as broker:
        data = tmp_path / "data"
        with station_database(data, site_config(broker.url)) as (db, key):
            await asyncio.to_thread(ResultFactory(db, key).add, N - 1)
            with db.read() as s:
                ids = list(s.execute(select(ResultRow.result_id).order_by(ResultRow.site_seq)).scalars())
            yield Site(broker, data, db, key, ids)


async def delivered_all(site: Site, timeout_s: float = 30) -> None:
    await wait_until(lambda: outbox_states(site.db) == {"delivered": N}, timeout_s)


def assert_audit_ok(db: Database) -> None:
    report = audit.verify(db)
    assert report.ok, str(report)


async def test_lost_receipts_mean_resends_and_the_province_absorbs_them(site: Site) -> None:
    faults = ProvinceFaults(drop_receipts=10)
    async with site.province(faults) as province, site.relay() as relay:
        await delivered_all(site)
    assert province.stats.receipts_dropped == 10
    assert relay.stats.published >= N + 10  # each dropped receipt cost at least one more send
    assert province.stats.duplicates >= 10 and province.stats.stored == N
    assert province.missing("GD-SZ-0101") == []
    with site.db.read() as s:
        resent = s.execute(select(OutboxRow.attempts).where(OutboxRow.attempts > 1)).scalars().all()
    assert len(resent) >= 10
    assert_audit_ok(site.db)


async def test_duplicate_receipts_settle_each_result_once(site: Site) -> None:
    async with site.province(ProvinceFaults(duplicate_receipts=True)) as province, site.relay() as relay:
        await delivered_all(site)
        await wait_until(lambda: relay.stats.ignored_receipts >= N, 10)  # the second copy of each
    assert province.stats.stored == N
    with site.db.read() as s:
        delivered_entries = s.execute(select(AuditRow.subject).where(
            AuditRow.action == "uplink.delivered")).scalars().all()
        states = set(s.execute(select(Attempt.state).where(Attempt.attempt_id.in_(
            select(ResultRow.attempt_id)))).scalars())
    assert sorted(delivered_entries) == sorted(f"result:{i}" for i in site.ids)  # one audit entry each
    assert states == {"delivered"}  # the attempts moved queued -> delivered, once
    assert_audit_ok(site.db)


async def test_slow_receipts_cost_resends_not_results(site: Site) -> None:
    async with site.province(ProvinceFaults(delay_receipts_s=1.5)) as province, site.relay() as relay:
        await delivered_all(site, timeout_s=40)
    assert relay.stats.published > N  # resent while the receipts were on their way
    assert province.stats.stored == N and province.stats.duplicates > 0
    assert_audit_ok(site.db)


async def test_a_rejected_result_waits_as_failed_with_the_reason_and_the_rest_flow(
        site: Site, caplog: pytest.LogCaptureFixture) -> None:
    reason = "考生报名信息与省考试库不一致 (candidate not in the provincial register)"
    bad = site.ids[7]
    faults = ProvinceFaults(reject={bad: reason})
    with caplog.at_level(logging.ERROR, logger="station.uplink.relay"):
        async with site.province(faults) as province, site.relay():
            await wait_until(lambda: outbox_states(site.db) == {"delivered": N - 1, "failed": 1}, 30)
            assert province.rejections() == [(bad, reason)]
            ok, text = await asyncio.to_thread(outbox_status, site.data, False)
            assert not ok and bad in text and reason in text and "examstation outbox retry" in text
            alarms = [r.getMessage() for r in caplog.records if "ALARM" in r.getMessage()]
            assert len(alarms) == 1 and bad in alarms[0] and reason in alarms[0]
            # the province fixes its side; the administrator sends it again
            faults.reject.clear()
            print(await asyncio.to_thread(outbox_retry, site.data, bad))
            await delivered_all(site)
    with site.db.read() as s:
        row = s.get(OutboxRow, bad)
        assert row is not None and row.last_error is None and row.state == "delivered"
        actions = s.execute(select(AuditRow.action).where(AuditRow.subject == f"result:{bad}")
                            .order_by(AuditRow.seq)).scalars().all()
    assert actions == [audit.RESULT_STORED, "uplink.rejected", "uplink.requeued", "uplink.delivered"]
    assert_audit_ok(site.db)


async def test_a_province_with_the_wrong_key_rejects_everything_and_nothing_is_lost(site: Site) -> None:
    other = SiteKey.load_or_create(site.data / "another-site")
    async with site.province(key_pem=other.public_pem()) as province, site.relay():
        await wait_until(lambda: outbox_states(site.db) == {"failed": N}, 30)
        assert all("signature does not verify" in reason for _, reason in province.rejections())
    assert province.stats.stored == 0
    listed = outbox.listing(site.db)
    assert len(listed) == N and all(r.state == "failed" for r in listed)
    # with the right key registered, a retry of each delivers them all
    for rid in site.ids:
        await asyncio.to_thread(outbox_retry, site.data, rid)
    async with site.province() as province, site.relay():
        await delivered_all(site)
    assert province.stats.stored == N


async def test_garbage_on_the_receipt_topic_is_ignored(site: Site, caplog: pytest.LogCaptureFixture) -> None:
    async with site.province() as province, site.relay() as relay:
        await wait_until(lambda: relay.connected, 10)
        async with aiomqtt.Client(site.broker.host, site.broker.port) as intruder:
            topic = contract.receipt_topic("GD-SZ-0101")
            await intruder.publish(topic, b"\xff not json", qos=1)
            fake = {"schema": "examstation/receipt/v1", "result_id": site.ids[0], "seq": 999, "status": "stored",
                    "stored_at": "2026-11-28T00:00:00Z", "signature": {"alg": "Ed25519"}}
            await intruder.publish(topic, json.dumps(fake).encode(), qos=1)  # a signature block of the wrong shape
            await intruder.publish(topic, json.dumps({"result_id": site.ids[1], "signature": {}}).encode(),
                                   qos=1)  # no schema
        await delivered_all(site)
    assert relay.receipt_counts.malformed == 3
    assert province.stats.stored == N
    assert "not JSON" in caplog.text and "breaks the receipt schema" in caplog.text


async def test_a_restarted_relay_finishes_what_the_last_one_started(site: Site) -> None:
    async with site.province(ProvinceFaults(delay_receipts_s=0.3)) as province:
        async with site.relay() as relay:
            await wait_until(lambda: relay.stats.published > 0, 10)
        first = outbox_states(site.db)
        assert first.get("queued", 0) > 0, first  # stopped with receipts still on their way
        async with site.relay():
            await delivered_all(site)
    assert province.stats.stored == N and province.missing("GD-SZ-0101") == []


async def test_backlog_reports_count_and_oldest_age(site: Site) -> None:
    now = SystemClock().utc_ns()
    b = outbox.backlog(site.db)
    assert (b.queued, b.failed, b.delivered) == (N, 0, 0)
    age = b.oldest_age_s(now)
    assert age is not None and 0 <= age < 120
    ok, text = outbox_status(site.data, as_json=True)
    doc = json.loads(text)
    assert ok and doc["queued"] == N and doc["oldest_queued_age_s"] is not None
    assert [r["seq"] for r in doc["results"]] == list(range(1, N + 1))


async def test_an_unreadable_attempt_snapshot_does_not_hold_its_receipt_or_the_batch(site: Site) -> None:
    """A snapshot the state machine cannot read (written by another version, say) costs the
    attempt's bookkeeping, not the delivery of that result or of the results settled with it."""
    with site.db.write() as tx:
        aid = tx.get(ResultRow, site.ids[3]).attempt_id  # type: ignore[union-attr]
        tx.get(Attempt, aid).snapshot = json.dumps({"state": "queued", "from_a_later_version": True})  # type: ignore[union-attr]
    async with site.province() as province, site.relay():
        await delivered_all(site)
    assert province.stats.stored == N
    with site.db.read() as s:
        payload = json.loads(s.execute(select(AuditRow.payload).where(
            AuditRow.subject == f"result:{site.ids[3]}", AuditRow.action == "uplink.delivered")).scalar_one())
    assert payload["attempt_state"] is None and payload["attempt_error"]
    assert_audit_ok(site.db)


def test_a_clock_stepped_back_does_not_park_results(site: Site) -> None:
    """next_try is wall-clock time; after the clock is stepped back by an hour, a row claimed just
    before must not wait that hour on top of its backoff."""
    now = SystemClock().utc_ns()
    claimed = outbox.take_due(site.db, now, 5)
    assert len(claimed) == 5 and outbox.take_due(site.db, now, 5, horizon_s=360)[0].seq == 6
    stepped_back = now - 3600 * 10**9
    again = outbox.take_due(site.db, stepped_back, 100, horizon_s=360)
    assert {d.seq for d in claimed} <= {d.seq for d in again}
