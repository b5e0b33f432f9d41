"""The uplink under the faults a site's network and broker really show: nothing is lost, duplicates are absorbed.

Each test runs the production relay (station.uplink.relay) against a real mosquitto and the
simulated province (hardware_sim.province), with real signed results in a real station database,
and ends with the same three checks:

- 0 results lost: every outbox row is `delivered`, and the province stored exactly the N distinct
  result_ids of the station, seqs 1..N, no gap (`missing == []`);
- duplicates absorbed: where the fault makes resends likely the province saw duplicates, and its
  stored count is still exactly N;
- the station's audit chain verifies.

Why these faults (DESIGN.md "Durability and delivery"):

1. `test_broker_killed_five_times_during_1000_results`: a PUBACK is not durability. Mosquitto at
   its default `persistence false` loses everything in flight on kill -9: the publishes it had
   acknowledged but not yet forwarded, the receipts it had not yet delivered, and every session
   and subscription. Each kill is timed to the instant the province has stored a batch and not
   yet sent its receipts, so results the province holds are still queued at the station: the
   relay must send them again (relay.stats.published > N) and the province must answer the
   second copy as a duplicate, not store it twice.
2. `test_connection_reset_fifty_times`: the station's TCP connection is reset 50 times mid-flow
   (a flaky uplink) while the broker lives on. Every reconnect makes all queued results due at
   once, so results whose receipts were in flight are sent again: duplicates, absorbed.
3. `test_thirty_minute_outage_on_an_injected_clock`: the link is down for 30 exam-minutes while
   500 results pile up (run in ~9 s on a ScaledClock driving the relay's clock and waits). The
   relay's health says so (500 queued, oldest ~1800 s, not connected), and with the clock back at
   real speed the whole backlog is delivered within 30 s of the link's return, with the relay's
   production reconnect and resend settings, gap-free at the receiver.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select

from devices.clock import Clock, ScaledClock, SystemClock
from hardware_sim.mosquitto import Mosquitto, MosquittoError, mosquitto_binary
from hardware_sim.province import ProvinceServer, StoredResult
from hardware_sim.tcp_proxy import FaultyTcpProxy
from scoring.rubric_loader import rubric_for
from station import audit
from station.config import SiteConfig
from station.db import Database, open_database
from station.db.models import ResultRow
from station.services import StationServices
from station.signing import SiteKey
from station.stored import ensure_database
from station.uplink.relay import RelaySettings, UplinkRelay
from tests.uplink_kit import ResultFactory, one_real_result, outbox_states, site_config, wait_until

try:
    mosquitto_binary()
    HAVE_MOSQUITTO = True
except MosquittoError:
    HAVE_MOSQUITTO = False

pytestmark = [
    pytest.mark.timeout(300), pytest.mark.slow,
    pytest.mark.skipif(not HAVE_MOSQUITTO, reason="mosquitto missing: run `make test`"),
    # station/uplink/outbox.py backlog() calls Result.tuples(), deprecated in SQLAlchemy 2.1: under
    # filterwarnings=error the relay's every session dies on it (reported; remove once it is fixed)
    pytest.mark.filterwarnings(r"ignore:The Result\.tuples\(\) method is deprecated:sqlalchemy.exc.SADeprecationWarning"),
]

RUBRICS = [rubric_for("低压电工作业")]
FAST = RelaySettings(resend_first_s=1.0, resend_cap_s=4.0, reconnect_first_s=0.1, reconnect_cap_s=1.0,
                     idle_poll_s=0.2)
"""Quick resends and reconnects, so a fault test runs in seconds (the outage test keeps the defaults)."""
DRAIN_TIMEOUT_S = 90.0


@contextlib.contextmanager
def station(tmp_path: Path, config: SiteConfig, clock: Clock) -> Iterator[tuple[Database, SiteKey]]:
    """A fresh station database holding one real signed result (seq 1) made through the service layer."""
    data = tmp_path / "station"
    key = SiteKey.load_or_create(data)
    with open_database(ensure_database(data)) as db:
        services = StationServices(config, db, key, clock)
        try:
            one_real_result(services)
        finally:
            services.close()
        yield db, key


def province_for(broker: Mosquitto, site: str, key: SiteKey, tmp_path: Path) -> ProvinceServer:
    return ProvinceServer(broker.url, keys={site: key.public_pem()}, db_url=f"sqlite:///{tmp_path / 'province.db'}")


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


async def audit_ok(db: Database) -> None:
    report = await asyncio.to_thread(audit.verify, db)
    assert report.ok, str(report)


async def test_broker_killed_five_times_during_1000_results(tmp_path: Path) -> None:
    batches, per_batch = 10, 100
    n = 1 + batches * per_batch  # the real result (seq 1) and 1000 made while the relay runs
    # the province's stored counts at which the broker dies: spread over the flow, mid-batch
    kill_at = [110, 300, 500, 680, 850]
    async with Mosquitto() as broker:  # persistence false: mosquitto's default
        config = site_config(broker.url)
        site = config.site.id
        with station(tmp_path, config, SystemClock()) as (db, key):
            async with province_for(broker, site, key, tmp_path) as province:
                await asyncio.wait_for(province.connected.wait(), 10)
                async with UplinkRelay(config, db, key_id=key.key_id, rubrics=RUBRICS, clock=SystemClock(),
                                       settings=FAST) as relay:
                    factory = ResultFactory(db, key)
                    kills: list[tuple[int, int]] = []

                    async def kill_and_restart() -> None:
                        for planned in kill_at:
                            # both ends back on the new broker first (the province may have stored more
                            # from what it had already received, so a threshold alone could kill twice
                            # while the relay is still reconnecting) ...
                            connects = relay.stats.connects
                            await wait_until(lambda c=connects: relay.connected and relay.stats.connects > c
                                             and province.connected.is_set(), timeout_s=30, every_s=0.005)
                            # ... then woken as a batch is stored at the province and BEFORE its receipts
                            # go out: the kill loses them, so results the province holds stay queued here
                            await province.wait_stored(site, max(planned, province.stored(site) + 1),
                                                       timeout_s=DRAIN_TIMEOUT_S)
                            await broker.kill9()
                            kills.append((province.stored(site), relay.stats.delivered))
                            await broker.restart()

                    async def produce() -> None:
                        for _ in range(batches):
                            await asyncio.to_thread(factory.add, per_batch)
                            relay.wake()

                    async with asyncio.TaskGroup() as tg:
                        tg.create_task(kill_and_restart())
                        tg.create_task(produce())
                    await nothing_lost(tmp_path, db, province, relay, site, n)
                    print(f"kills (stored, delivered): {kills}; {relay.stats}; {province.stats}")
                    assert len(kills) == 5
                    # honest evidence that the kills hit traffic in flight: results the province had
                    # stored were still unreceipted at the station at each kill ...
                    assert all(stored > delivered for stored, delivered in kills), kills
                    # ... so they were sent (and PUBACKed) again, and the province absorbed the copies
                    assert relay.stats.published > n, relay.stats
                    assert province.stats.duplicates > 0, province.stats
                    assert relay.stats.connects >= 6
            await audit_ok(db)


async def test_connection_reset_fifty_times(tmp_path: Path) -> None:
    batches, per_batch, resets = 10, 100, 50
    n = 1 + batches * per_batch
    rng = random.Random(20260611)
    async with Mosquitto() as broker, FaultyTcpProxy(broker.host, broker.port) as proxy:
        config = site_config(f"mqtt://{proxy.host}:{proxy.port}")  # the station goes through the proxy
        site = config.site.id
        with station(tmp_path, config, SystemClock()) as (db, key):
            async with province_for(broker, site, key, tmp_path) as province:  # the province connects directly
                await asyncio.wait_for(province.connected.wait(), 10)
                async with UplinkRelay(config, db, key_id=key.key_id, rubrics=RUBRICS, clock=SystemClock(),
                                       settings=FAST) as relay:
                    factory = ResultFactory(db, key)
                    delivered_at_reset: list[int] = []

                    async def reset_connections() -> None:
                        for _ in range(resets):
                            # only reset a live connection: a reset while reconnecting would hit nothing
                            await wait_until(lambda: relay.connected, timeout_s=30, every_s=0.005)
                            await asyncio.sleep(rng.uniform(0.005, 0.08))
                            before = relay.stats.connects
                            proxy.disconnect_all()
                            delivered_at_reset.append(relay.stats.delivered)
                            await wait_until(lambda b=before: relay.stats.connects > b, timeout_s=30, every_s=0.005)

                    async def produce() -> None:
                        for _ in range(batches):
                            await asyncio.to_thread(factory.add, per_batch)
                            relay.wake()
                            await asyncio.sleep(rng.uniform(0.2, 0.6))

                    async with asyncio.TaskGroup() as tg:
                        tg.create_task(reset_connections())
                        tg.create_task(produce())
                    await nothing_lost(tmp_path, db, province, relay, site, n)
                    assert len(delivered_at_reset) == resets
                    assert relay.stats.connects >= resets + 1
                    # the resets hit the flow, not an idle link
                    assert sum(0 < d < n for d in delivered_at_reset) >= resets // 2, delivered_at_reset
                    assert province.stats.duplicates > 0, province.stats
            await audit_ok(db)


async def test_thirty_minute_outage_on_an_injected_clock(tmp_path: Path) -> None:
    queued, batches = 500, 10
    outage_s, scale = 1800.0, 200.0
    n = 1 + queued
    clock = ScaledClock(1.0)

    async def exam_time(t_s: float) -> None:
        """Wait until the clock shows `t_s` exam seconds."""
        while (left := t_s - clock.seconds()) > 0:
            await asyncio.sleep(left / clock.scale)

    async with Mosquitto() as broker, FaultyTcpProxy(broker.host, broker.port) as proxy:
        config = site_config(f"mqtt://{proxy.host}:{proxy.port}")
        site = config.site.id
        with station(tmp_path, config, clock) as (db, key):
            async with province_for(broker, site, key, tmp_path) as province:
                await asyncio.wait_for(province.connected.wait(), 10)
                # production resend and reconnect settings: "within 30 s" must hold for them
                async with UplinkRelay(config, db, key_id=key.key_id, rubrics=RUBRICS, clock=clock,
                                       sleep=lambda s: asyncio.sleep(s / clock.scale)) as relay:
                    await province.wait_stored(site, 1, timeout_s=30)  # the real result, before the outage
                    await wait_until(lambda: relay.stats.delivered == 1, timeout_s=30)

                    await proxy.power_off()
                    await wait_until(lambda: not relay.connected, timeout_s=30)
                    clock.set_scale(scale)
                    start = clock.seconds()
                    factory = ResultFactory(db, key, clock)
                    for i in range(batches):  # 50 results every 3 exam-minutes
                        await exam_time(start + i * outage_s / batches)
                        await asyncio.to_thread(factory.add, queued // batches)
                        relay.wake()
                    await exam_time(start + outage_s)

                    health = await asyncio.to_thread(relay.health)
                    assert not health.connected
                    assert health.last_error
                    assert health.backlog.queued == queued
                    assert health.backlog.delivered == 1
                    assert health.oldest_queued_age_s is not None
                    assert outage_s - 60 <= health.oldest_queued_age_s <= outage_s + 60, health.line()
                    assert province.stored(site) == 1

                    clock.set_scale(1.0)
                    back = clock.seconds()
                    await proxy.power_on()
                    await nothing_lost(tmp_path, db, province, relay, site, n)
                    took = clock.seconds() - back
                    assert took <= 30.0, f"the backlog took {took:.1f} s after the link came back"
                    assert relay.connected
            await audit_ok(db)
