"""The uplink under the faults a site's network and broker really show: nothing is lost, duplicates are absorbed.

Each test runs the production relay (station.uplink.relay) against a real mosquitto and the
simulated province (hardware_sim.province), with real signed results in a real station database,
and ends with the same three checks:

- 0 results lost: every outbox row is `delivered`, and the province stored exactly the N distinct
  result_ids of the station, seqs 1..N, no gap (`missing == []`);
- duplicates absorbed: every copy the province received beyond the first of each result was
  answered as a duplicate and not stored (stored still exactly N);
- the station's audit chain verifies.

Why these faults (DESIGN.md "Durability and delivery"):

1. `test_broker_killed_five_times_during_1000_results`: a PUBACK is not durability. Mosquitto at
   its default `persistence false` loses everything in flight on kill -9: the publishes it had
   acknowledged but not yet forwarded, the receipts it had not yet delivered, and every session
   and subscription. Each kill is timed to the instant the province has stored a batch and not
   yet sent its receipts, so results the province holds (and the broker PUBACKed) are still
   queued at the station, and the relay must send them again: relay.stats.published > N.
   Whether those copies reach the province as duplicates is a race the test does not assert:
   the relay usually reconnects before the province has subscribed again, so its first resends
   are PUBACKed and dropped by the broker (nobody subscribed: PUBACK is not delivery, again),
   and the province re-sends the receipts it could not deliver once it is back.
2. `test_connection_reset_fifty_times`: the station's TCP connection is reset 50 times mid-flow
   (a flaky uplink) while the broker and the province live on. Every reconnect makes all queued
   results due at once, so results whose receipts were in flight may be sent again; the broker
   also holds the receipts for the station's persistent session while it is away, so often the
   receipt wins the race. Either way the province stores each result once.
3. `test_thirty_minute_outage_on_an_injected_clock`: the link is down for 30 exam-minutes while
   500 results pile up (run in ~9 s on a ScaledClock driving the relay's clock and waits). The
   relay's health says so (500 queued, oldest ~1800 s, not connected), and with the clock back at
   real speed the whole backlog is delivered within 30 s of the link's return, with the relay's
   production reconnect and resend settings, gap-free at the receiver.
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select

from devices.clock import ScaledClock, SystemClock
from hardware_sim.mosquitto import Mosquitto
from hardware_sim.province import ProvinceServer, StoredResult
from hardware_sim.tcp_proxy import FaultyTcpProxy
from scoring.rubric_loader import rubric_for
from station import audit
from station.db import Database
from station.db.models import ResultRow
from station.signing import SiteKey
from station.uplink.relay import RelaySettings, UplinkRelay
from tests.uplink_kit import ResultFactory, outbox_states, province_key, site_config, station_database, wait_until

pytestmark = [
    pytest.mark.timeout(300), pytest.mark.slow,
]

RUBRICS = [rubric_for("低压电工作业")]
FAST = RelaySettings(resend_first_s=1.0, resend_cap_s=4.0, reconnect_first_s=0.1, reconnect_cap_s=1.0,
                     idle_poll_s=0.2)
"""Quick resends and reconnects, so a fault test runs in seconds (the outage test keeps the defaults)."""
RESETS = RelaySettings(resend_first_s=1.0, resend_cap_s=4.0, reconnect_first_s=0.1, reconnect_cap_s=1.0,
                       idle_poll_s=0.2, publish_timeout_s=3.0)
"""FAST, and a reset that lands while the relay awaits its SUBACK or status PUBACK costs 3 s, not 15:
those waits are not woken by the disconnect, only by publish_timeout_s (reported as a relay defect)."""
DRAIN_TIMEOUT_S = 90.0


def province_for(broker: Mosquitto, site: str, key: SiteKey, tmp_path: Path) -> ProvinceServer:
    return ProvinceServer(broker.url, keys={site: key.public_pem()}, db_url=f"sqlite:///{tmp_path / 'province.db'}",
                          province_key=province_key())


def province_ids(tmp_path: Path, site: str) -> list[str]:
    """Result ids in the province's own database (read with a separate engine, as an auditor would)."""
    engine = create_engine(f"sqlite:///{tmp_path / 'province.db'}")
    try:
        with engine.connect() as conn:
            return list(conn.execute(select(StoredResult.result_id).where(StoredResult.site == site)).scalars())
    finally:
        engine.dispose()


def station_ids(db: Database) -> list[str]:
    with db.read() as s:
        return list(s.execute(select(ResultRow.result_id)).scalars())


async def nothing_lost(tmp_path: Path, db: Database, province: ProvinceServer, relay: UplinkRelay, site: str,
                       n: int) -> None:
    """Wait for all N to be settled, then check: every row delivered, exactly the N ids stored, seqs 1..N."""
    await province.wait_stored(site, n, timeout_s=DRAIN_TIMEOUT_S)
    await wait_until(lambda: relay.stats.delivered >= n, timeout_s=DRAIN_TIMEOUT_S)
    assert await asyncio.to_thread(outbox_states, db) == {"delivered": n}
    assert relay.stats.delivered == n
    assert relay.stats.rejected == 0
    ours = await asyncio.to_thread(station_ids, db)
    theirs = await asyncio.to_thread(province_ids, tmp_path, site)
    assert len(ours) == n
    assert len(theirs) == n, "a result was stored twice at the province"
    assert set(theirs) == set(ours)
    assert province.stored(site) == n
    assert province.seqs(site) == set(range(1, n + 1))
    assert province.missing(site) == []
    assert province.stats.stored == n
    assert province.stats.rejected == 0
    assert province.stats.malformed == 0


def copies_absorbed(province: ProvinceServer, n: int) -> None:
    """After the province stopped (its counters are final): every copy beyond the first was a duplicate."""
    assert province.stats.messages == n + province.stats.duplicates, province.stats
    assert province.stats.stored == n


async def audit_ok(db: Database) -> None:
    report = await asyncio.to_thread(audit.verify, db)
    assert report.ok, str(report)


async def test_broker_killed_five_times_during_1000_results(tmp_path: Path) -> None:
    batches, per_batch = 10, 100
    n = 1 + batches * per_batch  # the real result (seq 1) and 1000 made while the relay runs
    async with Mosquitto() as broker:  # persistence false: mosquitto's default
        config = site_config(broker.url)
        site = config.site.id
        with station_database(tmp_path / "station", config, SystemClock()) as (db, key):
            async with province_for(broker, site, key, tmp_path) as province:
                await asyncio.wait_for(province.connected.wait(), 10)
                async with UplinkRelay(config, db, key_id=key.key_id, rubrics=RUBRICS, clock=SystemClock(),
                                       settings=FAST) as relay:
                    factory = ResultFactory(db, key)
                    kills: list[tuple[int, int]] = []
                    connects = 0
                    for b in range(batches):
                        # the next batch once half the last one is delivered: an overlapping flow, and
                        # kills (during batches 2, 4, 6, 8 and 10) spread over it
                        await wait_until(lambda t=1 + b * per_batch: relay.stats.delivered >= t - per_batch // 2,
                                         timeout_s=DRAIN_TIMEOUT_S, every_s=0.005)
                        kill = b % 2 == 1
                        if kill:  # both ends on the (new) broker, so this kill hits a live flow
                            await wait_until(lambda c=connects: relay.connected and relay.stats.connects > c
                                             and province.connected.is_set(), timeout_s=30, every_s=0.005)
                            connects = relay.stats.connects
                        await asyncio.to_thread(factory.add, per_batch)
                        relay.wake()
                        if kill:
                            # woken as the province has stored its next batch (this one is not stored
                            # yet) and BEFORE its receipts go out: the kill loses them, so results the
                            # province holds stay queued here
                            await province.wait_stored(site, province.stored(site) + 1, timeout_s=DRAIN_TIMEOUT_S)
                            await broker.kill9()
                            kills.append((province.stored(site), relay.stats.delivered))
                            await broker.restart()
                    await nothing_lost(tmp_path, db, province, relay, site, n)
            await audit_ok(db)
    copies_absorbed(province, n)
    assert len(kills) == 5
    assert relay.stats.connects >= 6, relay.stats
    # honest evidence that each kill hit traffic in flight: results the province had stored were
    # still unreceipted at the station (stored > delivered) ...
    assert all(stored > delivered for stored, delivered in kills), kills
    # ... so the relay had to send results it had already had PUBACKed again
    assert relay.stats.published > n, relay.stats


async def test_connection_reset_fifty_times(tmp_path: Path) -> None:
    resets, per_reset = 50, 20
    n = 1 + resets * per_reset  # the real result and 1000 added in step with the resets
    rng = random.Random(20260611)
    async with Mosquitto() as broker, FaultyTcpProxy(broker.host, broker.port) as proxy:
        config = site_config(f"mqtt://{proxy.host}:{proxy.port}")  # the station goes through the proxy
        site = config.site.id
        with station_database(tmp_path / "station", config, SystemClock()) as (db, key):
            async with province_for(broker, site, key, tmp_path) as province:  # the province connects directly
                await asyncio.wait_for(province.connected.wait(), 10)
                async with UplinkRelay(config, db, key_id=key.key_id, rubrics=RUBRICS, clock=SystemClock(),
                                       settings=RESETS) as relay:
                    factory = ResultFactory(db, key)
                    undelivered_at_reset: list[int] = []
                    for i in range(resets):
                        await asyncio.to_thread(factory.add, per_reset)
                        relay.wake()
                        # only reset a live connection: a reset while reconnecting would hit nothing
                        await wait_until(lambda: relay.connected, timeout_s=30, every_s=0.005)
                        await asyncio.sleep(rng.uniform(0.005, 0.03))  # while these 20 are on their way
                        connects = relay.stats.connects
                        proxy.disconnect_all()
                        undelivered_at_reset.append(1 + (i + 1) * per_reset - relay.stats.delivered)
                        await wait_until(lambda c=connects: relay.stats.connects > c, timeout_s=30, every_s=0.005)
                    await nothing_lost(tmp_path, db, province, relay, site, n)
            await audit_ok(db)
    copies_absorbed(province, n)
    assert relay.stats.connects == resets + 1, relay.stats
    # the resets hit the flow, not an idle link: results were on their way at most of them
    assert sum(u > 0 for u in undelivered_at_reset) >= resets // 2, undelivered_at_reset
    # whether a reset makes duplicates is a race: the station's session is persistent, so receipts
    # the broker held while it was away usually arrive before its resend burst claims those rows


async def test_thirty_minute_outage_on_an_injected_clock(tmp_path: Path) -> None:
    queued, batches = 500, 10
    outage_s, scale = 1800.0, 200.0
    n = 1 + queued  # the real result, delivered before the outage, and 500 queued during it
    clock = ScaledClock(1.0)

    async def exam_time(t_s: float) -> None:
        """Until the clock shows `t_s` exam seconds (only this test changes its scale meanwhile)."""
        await asyncio.sleep(max(0.0, t_s - clock.seconds()) / clock.scale)

    async with Mosquitto() as broker, FaultyTcpProxy(broker.host, broker.port) as proxy:
        config = site_config(f"mqtt://{proxy.host}:{proxy.port}")
        site = config.site.id
        with station_database(tmp_path / "station", config, clock) as (db, key):
            async with province_for(broker, site, key, tmp_path) as province:
                await asyncio.wait_for(province.connected.wait(), 10)
                # production resend and reconnect settings: "within 30 s" must hold for them
                async with UplinkRelay(config, db, key_id=key.key_id, rubrics=RUBRICS, clock=clock,
                                       sleep=lambda s: asyncio.sleep(s / clock.scale)) as relay:
                    await wait_until(lambda: relay.stats.delivered == 1, timeout_s=30)

                    await proxy.power_off()
                    await wait_until(lambda: not relay.connected, timeout_s=30)
                    clock.set_scale(scale)  # 30 exam-minutes in 9 s
                    start = clock.seconds()
                    factory = ResultFactory(db, key, clock)
                    for i in range(batches):  # 50 results every 3 exam-minutes
                        await exam_time(start + i * outage_s / batches)
                        await asyncio.to_thread(factory.add, queued // batches)
                        relay.wake()
                    await exam_time(start + outage_s)

                    health = await asyncio.to_thread(relay.health)
                    assert not health.connected, health.line()
                    assert health.last_error, health.line()
                    assert health.backlog.queued == queued, health.line()
                    assert health.backlog.delivered == 1, health.line()
                    assert health.oldest_queued_age_s is not None
                    assert outage_s - 60 <= health.oldest_queued_age_s <= outage_s + 60, health.line()
                    assert province.stored(site) == 1

                    clock.set_scale(1.0)  # real speed again: exam seconds are seconds
                    back = clock.seconds()
                    await proxy.power_on()
                    await nothing_lost(tmp_path, db, province, relay, site, n)
                    took = clock.seconds() - back
                    assert took <= 30.0, f"the backlog took {took:.1f} s after the link came back"
                    assert relay.connected
            await audit_ok(db)
    copies_absorbed(province, n)
