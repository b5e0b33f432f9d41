"""Signed results in bulk for the uplink's fault tests and benchmark, plus the broker helpers they share
(a tap on the wire, waiting, counting outbox states).

One attempt goes through the real service layer (check-in, item, score, review, two signatures);
its signed result is then re-issued N times as distinct attempts, each with its own UUIDv7
result_id, attempt_id and per-site seq, signed again with the site key and stored with the
production `outbox.store_result` (result + outbox row + audit entry in one transaction), so the
relay under test sees exactly what a busy exam day leaves in the outbox. Hundreds of full
attempts through the simulator would take minutes and test nothing more about delivery.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Self

import aiomqtt
from sqlalchemy import select

from devices.clock import Clock, SystemClock
from hardware_sim.mosquitto import Mosquitto
from hardware_sim.province_key import load_or_create, public_path
from station import attempt_snapshot
from station import session as sm
from station.config import SiteConfig, Uplink, load_site_config
from station.db import Database, open_database
from station.db.models import Attempt as AttemptRow
from station.db.models import OutboxRow, ResultRow
from station.ids import uuid7
from station.services import StationServices
from station.signing import SiteKey
from station.stored import ensure_database
from station.uplink import contract, outbox

SITE_CONFIG = Path(__file__).resolve().parents[1] / "examples" / "site.yaml"
EXAMINERS = ("考评员甲", "考评员乙")


def province_key() -> Path:
    """The simulated province's signing key (PEM) for this test run, with its public half beside it
    (`province_key.public_path`), which `site_config` configures as uplink.province_key."""
    global _PROVINCE_KEY
    if _PROVINCE_KEY is None:
        folder = Path(tempfile.mkdtemp(prefix="examstation-test-province-"))
        atexit.register(shutil.rmtree, folder, True)
        _PROVINCE_KEY = folder / "province.pem"
        load_or_create(_PROVINCE_KEY)
    return _PROVINCE_KEY


_PROVINCE_KEY: Path | None = None


def site_config(broker_url: str) -> SiteConfig:
    """The example site, its uplink pointed at a test broker (no TLS, no password), trusting the
    receipts of the province that signs with `province_key()`."""
    config = load_site_config(SITE_CONFIG)
    return config.model_copy(update={"uplink": Uplink(broker_url=broker_url,
                                                      province_key=str(public_path(province_key())))})


def one_real_result(services: StationServices) -> str:
    """A K31 (oral hazard) attempt through the service layer, signed by two examiners; its attempt id."""
    services.register_candidate("110101199001010015", "张三", "低压电工作业", "B-2026-11")
    aid = services.check_in("110101199001010015", "A01", "监考员王")
    services.assign(aid, {"K3": "K31"}, "exam-system")
    services.start_item(aid, "K31", EXAMINERS[0])
    services.end_item(aid, "done", EXAMINERS[0])
    services.score(aid)
    services.review(aid, EXAMINERS[0])
    services.candidate_decision(aid, "K31", signed=True)
    for examiner in EXAMINERS:
        services.examiner_sign(aid, examiner)
    return aid


@contextlib.contextmanager
def station_database(data: Path, config: SiteConfig, clock: Clock | None = None) -> Iterator[tuple[Database, SiteKey]]:
    """A fresh station database in `data` holding one real signed result (seq 1) made through the
    service layer, and the site key that signed it."""
    key = SiteKey.load_or_create(data)
    with open_database(ensure_database(data)) as db:
        services = StationServices(config, db, key, clock or SystemClock())
        try:
            one_real_result(services)
        finally:
            services.close()
        yield db, key


class ResultFactory:
    """Re-issues a template result as new signed results, stored in batches."""

    def __init__(self, db: Database, key: SiteKey, clock: Clock | None = None) -> None:
        self.db = db
        self.key = key
        self.clock = clock or SystemClock()
        with db.read() as s:
            row = s.execute(select(ResultRow).order_by(ResultRow.site_seq).limit(1)).scalar_one()
            attempt = s.get(AttemptRow, row.attempt_id)
            assert attempt is not None
            self._template = json.loads(row.document)
            self._attempt = {c: getattr(attempt, c) for c in ("candidate_id_number", "station", "operation",
                                                              "rubric_id", "rubric_hash", "seed", "drawn_items")}
            self._snapshot = attempt_snapshot.from_dict(json.loads(attempt.snapshot))

    def add(self, n: int, batch: int = 500, on_stored: Callable[[list[str]], None] | None = None) -> list[str]:
        """Store `n` new signed results (queued); returns their result ids in seq order."""
        ids: list[str] = []
        while len(ids) < n:
            ids += self._add_batch(min(batch, n - len(ids)))
            if on_stored is not None:
                on_stored(ids[-batch:])
        return ids

    def _add_batch(self, n: int) -> list[str]:
        out = []
        with self.db.write() as tx:
            seq = outbox.next_seq(tx)
            for i in range(n):
                utc_ns = self.clock.utc_ns()
                aid = uuid7(utc_ns // 1_000_000)
                rid = uuid7(utc_ns // 1_000_000)
                a = replace(self._snapshot, attempt_id=aid, state=sm.State.QUEUED)
                tx.add(AttemptRow(attempt_id=aid, **self._attempt, state=a.state.value,
                                  snapshot=json.dumps(attempt_snapshot.to_dict(a), ensure_ascii=False),
                                  created_utc_ns=utc_ns, updated_utc_ns=utc_ns))
                tx.flush()
                doc: dict[str, Any] = {k: v for k, v in self._template.items() if k != "signature"}
                doc.update(result_id=rid, attempt_id=aid, seq=seq + i)
                outbox.store_result(tx, self.key.sign(doc), actor=EXAMINERS[1], attempt_id=aid, utc_ns=utc_ns)
                out.append(rid)
        return out


def outbox_states(db: Database) -> dict[str, int]:
    with db.read() as s:
        rows = s.execute(select(OutboxRow.state)).scalars().all()
    counts: dict[str, int] = {}
    for state in rows:
        counts[state] = counts.get(state, 0) + 1
    return counts


def stored_results(db: Database) -> list[tuple[str, int, dict[str, Any]]]:
    """(result_id, seq, signed document) of every result the station stored, in seq order."""
    with db.read() as s:
        rows = s.execute(select(ResultRow.result_id, ResultRow.site_seq, ResultRow.document)
                         .order_by(ResultRow.site_seq)).all()
    return [(r.result_id, r.site_seq, json.loads(r.document)) for r in rows]


async def wait_until(predicate: Callable[[], bool], timeout_s: float, every_s: float = 0.05) -> None:
    async with asyncio.timeout(timeout_s):
        while not predicate():  # noqa: ASYNC110 - polling state another task changes
            await asyncio.sleep(every_s)


@dataclass(frozen=True, slots=True)
class Heard:
    topic: str
    payload: bytes
    qos: int


class WireTap:
    """Every message on `topic_filter` from the moment `async with` returns, heard by a client of
    its own: the wire as the province (or anyone on the broker) sees it."""

    def __init__(self, broker: Mosquitto, topic_filter: str, name: str) -> None:
        self.broker = broker
        self.topic_filter = topic_filter
        self.name = name
        self.heard: list[Heard] = []
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Self:
        ready = asyncio.Event()
        self._task = asyncio.create_task(self._run(ready), name=self.name)
        async with asyncio.timeout(10):
            await ready.wait()
        if self._task.done():
            self._task.result()  # the subscription failed: say why
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _run(self, ready: asyncio.Event) -> None:
        try:
            async with aiomqtt.Client(self.broker.host, self.broker.port, identifier=self.name,
                                      socket_options=contract.NO_DELAY) as client:
                await client.subscribe(self.topic_filter, qos=1)
                ready.set()
                async for m in client.messages:
                    assert isinstance(m.payload, bytes)
                    self.heard.append(Heard(m.topic.value, m.payload, m.qos))
        finally:
            ready.set()
