"""When the station's database stalls, nothing is lost and nothing goes on as if it were recorded
(issue 11). Another connection holds the database's write lock for 10 s while a bench sends 100
samples a second; then it takes the lock again and keeps it (the store failing for good) while a
burst of samples goes past the bound of what the station holds in memory.

Checked: no sample lost within the bound (every accepted sample is stored once the lock is gone),
past the bound the device layer is told (the sample was not accepted) and the stretch is recorded
as a device gap; the alarm is raised and cleared; the running item is paused while the store is
stalled and resumes after, audited and on the sheet; the event loop never blocked over 50 ms.
"""

from __future__ import annotations

import asyncio
import gc
import json
import sqlite3
import threading
import time
from pathlib import Path

from sqlalchemy import select

from devices.clock import SystemClock
from devices.sample import Sample
from scoring.timeline import FaultRecord, SampleRecord
from station import session as sm
from station.db import database_path, open_database
from station.db.models import AuditRow
from station.events import AlarmEvent, Subscription
from station.services import StationServices
from station.signing import SiteKey
from station.stored import ensure_database, load_timeline
from tests.integration.conftest import BENCH, CONFIG, ready_station

BOUND = 1500
"""Records the station holds in memory in this test (the default is 200,000)."""


class LockHolder:
    """Another connection to the database holding its write lock (a backup tool, sqlite3 left open)."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._release = threading.Event()
        self._held = threading.Event()
        self._thread = threading.Thread(target=self._hold, name="lock holder")

    def _hold(self) -> None:
        conn = sqlite3.connect(self._path, timeout=30, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            self._held.set()
            self._release.wait()
            conn.execute("ROLLBACK")
        finally:
            conn.close()

    async def __aenter__(self) -> LockHolder:
        self._thread.start()
        await asyncio.to_thread(self._held.wait, 10)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._release.set()
        await asyncio.to_thread(self._thread.join)


async def loop_lag(worst: list[float]) -> None:
    """How late the event loop wakes a 5 ms sleep: what a blocking call on the loop would show."""
    while True:
        t = time.perf_counter()
        await asyncio.sleep(0.005)
        worst[0] = max(worst[0], time.perf_counter() - t - 0.005)


async def alarm(sub: Subscription, cleared: bool, within_s: float) -> AlarmEvent:
    async with asyncio.timeout(within_s):
        while True:
            event = await sub.get()
            if isinstance(event, AlarmEvent) and event.code == "storage.stalled" and event.cleared == cleared:
                return event


async def test_a_stalled_store_pauses_the_item_and_loses_nothing(tmp_path: Path) -> None:
    ensure_database(tmp_path)
    path = database_path(tmp_path)
    clock = SystemClock()
    with open_database(path) as db:
        services = StationServices(CONFIG, db, SiteKey.load_or_create(tmp_path), clock, store_capacity=BOUND)
        try:
            aid = ready_station(services, clock, {"K2": "K21"})
            services.start_item(aid, "K21", "考评员甲")
            alarms = services.events.subscribe("test", maxsize=1000, kinds=(AlarmEvent,))
            worst = [0.0]
            sent: list[float] = []
            refused: list[float] = []

            def send() -> bool:
                value = round(200 + len(sent) + len(refused) * 0.001, 3)
                ok = services.record_sample(Sample("bench.voltage_l1_v", value, clock.mono_ns(), clock.utc_ns(),
                                                   BENCH))
                (sent if ok else refused).append(value)
                return ok

            async def bench_at_100_hz() -> None:
                while True:
                    send()
                    await asyncio.sleep(0.01)

            # what the whole test run left on the heap is not this test's: a full collection of it
            # would be measured as the loop blocking
            gc.collect()
            gc.freeze()
            watch = asyncio.create_task(services.storage.run())
            lag = asyncio.create_task(loop_lag(worst))
            bench = asyncio.create_task(bench_at_100_hz())
            try:
                # 1. the write lock is held for 10 s
                async with LockHolder(path):
                    raised = await alarm(alarms, cleared=False, within_s=3)
                    assert "has not stored records" in raised.what and str(path) in raised.what
                    assert services.attempt(aid).state == sm.State.PAUSED
                    assert "storage" in (services.attempt(aid).running_item.pause_reasons or ())  # type: ignore[union-attr]
                    await asyncio.sleep(10 - 1)
                assert not refused, "samples were refused within the bound"
                await alarm(alarms, cleared=True, within_s=10)
                assert services.attempt(aid).state == sm.State.RUNNING
                # 2. the store fails for good: the lock is taken again and kept; a burst goes past the bound
                bench.cancel()
                async with LockHolder(path):
                    for _ in range(BOUND + 500):
                        send()
                        await asyncio.sleep(0)
                    assert refused, "nothing was refused past the bound"
                    await alarm(alarms, cleared=False, within_s=3)
                    assert services.attempt(aid).state == sm.State.PAUSED
                await alarm(alarms, cleared=True, within_s=10)
                assert send()  # accepted again: the refused stretch is recorded as the bench's gap
                await asyncio.to_thread(services.book.writer.flush)
            finally:
                gc.unfreeze()
                for task in (watch, lag, bench):
                    task.cancel()
            assert worst[0] < 0.05, f"the event loop was blocked for {worst[0] * 1000:.0f} ms"
            # a short item: the bench's gap may be over 10 % of it, and then the examiner chooses
            with_gap = "存储故障期间考生等待" if await asyncio.to_thread(services.item_gap, aid) else ""
            await asyncio.to_thread(services.end_item, aid, "done", "考评员甲", with_gap)
            sheet = await asyncio.to_thread(services.score, aid)
        finally:
            await asyncio.to_thread(services.close)
        timeline = load_timeline(db, aid)
        stored = [r.value for r in timeline if isinstance(r, SampleRecord) and r.signal == "bench.voltage_l1_v"]
        assert stored == sent, f"{len(sent) - len(stored)} accepted samples were not stored"
        gap = [r for r in timeline if isinstance(r, FaultRecord) and r.device == "A01/bench"]
        assert [g.online for g in gap] == [False, True] and "storage" in gap[0].reason
        with db.read() as s:
            steps = [(r.action, json.loads(r.payload)["detail"]) for r in s.scalars(
                select(AuditRow).where(AuditRow.actor == "storage-watch").order_by(AuditRow.seq))]
        assert steps[:2] == [("session.pause", "storage"), ("session.resume", "storage")]
        assert [p.reason for p in sheet.item("K21").pauses][:2] == ["storage", "storage"]
