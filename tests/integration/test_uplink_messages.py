"""Every message the uplink puts on a real broker follows the contract (station/uplink/schemas/).

A separate subscriber on `examstation/v1/#` records the wire while a real relay delivers real
signed results to the simulated province through a real mosquitto: the retained birth status, the
live state, each result (schema and Ed25519 signature), each receipt in the single and in the
batch form with all three statuses, the clean `offline` goodbye, and the will the broker publishes
when the controller process dies with kill -9.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from devices.clock import SystemClock
from hardware_sim.mosquitto import Mosquitto
from hardware_sim.province import ProvinceFaults, ProvinceServer
from station.controller import uplink_relay
from station.db import open_database
from station.services import StationServices
from station.signing import SiteKey, verify
from station.stored import ensure_database
from station.uplink import contract
from station.uplink.relay import RelaySettings
from tests.uplink_kit import (
    EXAMINERS,
    ResultFactory,
    WireTap,
    one_real_result,
    outbox_states,
    province_key,
    site_config,
    wait_until,
)

ROOT = Path(__file__).resolve().parents[2]
EXTRA = 5
"""Results re-issued after the real one: enough for a batch of receipts."""


@dataclass(frozen=True, slots=True)
class Seen:
    topic: str
    payload: bytes
    qos: int

    @property
    def doc(self) -> Any:
        return json.loads(self.payload)

    @property
    def kind(self) -> contract.SchemaName:
        """Which schema the topic carries (examstation/v1/SITE/status|receipt, .../SITE/STATION/result|live)."""
        parts = self.topic.split("/")
        assert "/".join(parts[:2]) == contract.PREFIX, self.topic
        if len(parts) == 4 and parts[3] in ("status", "receipt"):
            return "status" if parts[3] == "status" else "receipt"
        assert len(parts) == 5 and parts[4] in ("result", "live"), f"{self.topic} is no topic of the contract"
        return "result" if parts[4] == "result" else "live"


class Wire(WireTap):
    """Records every message on examstation/v1/# from the moment `async with` returns."""

    def __init__(self, broker: Mosquitto) -> None:
        super().__init__(broker, f"{contract.PREFIX}/#", "contract-wire")

    @property
    def seen(self) -> list[Seen]:
        return [Seen(h.topic, h.payload, h.qos) for h in self.heard]

    def of(self, kind: contract.SchemaName) -> list[Seen]:
        return [s for s in self.seen if s.kind == kind]

    async def wait_for(self, what: Callable[[Seen], bool], timeout_s: float = 10.0) -> Seen:
        found: list[Seen] = []

        def check() -> bool:
            found[:] = [s for s in self.seen if what(s)]
            return bool(found)

        await wait_until(check, timeout_s, every_s=0.01)
        return found[0]


async def retained_status(broker: Mosquitto, site: str) -> tuple[dict[str, Any], bool]:
    """What a province that subscribes now gets first on the site's status topic, and its retain flag."""
    async with aiomqtt.Client(broker.host, broker.port, identifier="contract-retained") as client:
        await client.subscribe(contract.status_topic(site), qos=1)
        async with asyncio.timeout(5):
            m = await anext(aiter(client.messages))
    assert isinstance(m.payload, bytes)
    return json.loads(m.payload), m.retain


def problems_by_message(seen: list[Seen]) -> list[str]:
    return [f"{s.topic}: {p}" for s in seen for p in contract.problems(s.kind, s.doc)]


def receipt_entries(seen: list[Seen]) -> list[Mapping[str, Any]]:
    return [e for s in seen for e in s.doc.get("receipts", [s.doc])]


@pytest.mark.parametrize("batch_receipts", [True, False], ids=["batch-receipts", "single-receipts"])
async def test_every_message_on_the_wire_follows_the_contract(tmp_path: Path, batch_receipts: bool,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    async with Mosquitto() as broker, Wire(broker) as wire:
        config = site_config(broker.url)
        site = config.site.id
        key = SiteKey.load_or_create(tmp_path)
        first_extra: list[int] = []

        def province_judge(doc: Mapping[str, Any]) -> str | None:
            """Hold the first re-issued result a moment (the rest pile up: one batch of receipts), and
            refuse the last one."""
            if doc["seq"] == 2 and not first_extra:
                first_extra.append(2)
                time.sleep(0.3)  # in the province's worker thread
            return "candidate not in the exam centre's batch list" if doc["seq"] == 1 + EXTRA else None

        # the first receipt is lost: the relay resends that result and the province answers `duplicate`
        faults = ProvinceFaults(drop_receipts=1, reject_when=province_judge)
        settings = RelaySettings(resend_first_s=1.0, resend_cap_s=2.0, idle_poll_s=0.1, live_every_s=0.2)
        with open_database(ensure_database(tmp_path)) as db:
            services = StationServices(config, db, key, SystemClock())
            try:
                async with ProvinceServer(broker.url, keys={site: key.public_pem()}, faults=faults,
                                          batch_receipts=batch_receipts, province_key=province_key()) as province:
                    async with asyncio.timeout(10):
                        await province.connected.wait()
                    async with uplink_relay(config, services, None, settings) as relay:
                        async with asyncio.timeout(10):
                            await relay.first_connect.wait()
                        await asyncio.to_thread(one_real_result, services)
                        await wait_until(lambda: relay.stats.published >= 2, 10)  # sent, and sent again
                        ids = await asyncio.to_thread(ResultFactory(db, key).add, EXTRA)
                        relay.wake()
                        await wait_until(lambda: relay.stats.delivered + relay.stats.rejected >= 1 + EXTRA, 20)
                        await wire.wait_for(lambda s: s.kind == "live")
                        birth, retained = await retained_status(broker, site)
                        assert retained and birth["state"] == "online", birth
                        assert contract.problems("status", birth) == []
                    goodbye = await wire.wait_for(lambda s: s.kind == "status" and s.doc["state"] == "offline")
                    assert province.missing(site) == []
            finally:
                services.close()
            assert outbox_states(db) == {"delivered": EXTRA, "failed": 1}
        retained_goodbye, retained = await retained_status(broker, site)

    # every message, by its topic's schema
    assert problems_by_message(wire.seen) == []
    assert {s.kind for s in wire.seen} == {"status", "result", "receipt", "live"}
    assert {(s.kind, s.qos) for s in wire.seen} == {("status", 1), ("result", 1), ("receipt", 1), ("live", 0)}

    # status: the birth on connect, the goodbye on a clean stop (also left retained)
    states = [s.doc["state"] for s in wire.of("status")]
    assert states[0] == "online" and states[-1] == "offline", states
    assert goodbye.doc["reason"] == "shutdown" and "at" in goodbye.doc
    assert goodbye.topic == contract.status_topic(site)
    assert retained and retained_goodbye == goodbye.doc

    # results: each signed by the site, on its own station's topic, one of them sent twice
    results = wire.of("result")
    for s in results:
        doc = s.doc
        assert s.topic == contract.result_topic(doc["site"], doc["station"])
        assert verify(doc, key.public_pem()), f"result {doc['result_id']} does not verify"
    assert sorted({s.doc["seq"] for s in results}) == list(range(1, 2 + EXTRA))
    assert len(results) > 1 + EXTRA, "the result whose receipt was lost is on the wire twice"
    assert {s.doc["result_id"] for s in results} >= set(ids)

    # receipts: all three statuses; the batch form only from a batching province
    receipts = wire.of("receipt")
    assert all(s.topic == contract.receipt_topic(site) for s in receipts)
    entries = receipt_entries(receipts)
    assert {e["status"] for e in entries} == {"stored", "duplicate", "rejected"}
    assert {e["result_id"] for e in entries} == {s.doc["result_id"] for s in results}
    batches = [s.doc for s in receipts if "receipts" in s.doc]
    if batch_receipts:
        assert batches and max(len(b["receipts"]) for b in batches) >= 2, [s.doc for s in receipts]
    else:
        assert batches == [] and len(receipts) >= 1 + EXTRA  # the first one was dropped, its duplicate's sent
    assert any("receipts" not in s.doc for s in receipts), "the duplicate's receipt comes alone"

    # live: every station of the site, QoS 0
    live = wire.of("live")
    assert {s.doc["station"] for s in live} == {st.id for st in config.stations}
    assert all(s.topic == contract.live_topic(site, s.doc["station"]) for s in live)

    # a rejected result: failed in the outbox, an ALARM naming the command that sends it again
    rejected = next(e["result_id"] for e in entries if e["status"] == "rejected")
    alarms = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR and "ALARM" in r.getMessage()]
    assert any(f"examstation outbox retry {rejected}" in a for a in alarms), alarms


RELAY_PROCESS = """
import asyncio, sys
from pathlib import Path
from devices.clock import SystemClock
from scoring.rubric_loader import rubric_for
from station.db import database_path, open_database
from station.signing import SiteKey
from station.uplink.relay import UplinkRelay
from tests.uplink_kit import site_config

async def main(url: str, data: Path) -> None:
    config = site_config(url)
    key = SiteKey.load_or_create(data)
    rubrics = [rubric_for(op) for op in sorted({st.operation for st in config.stations})]
    with open_database(database_path(data)) as db:
        async with UplinkRelay(config, db, key_id=key.key_id, rubrics=rubrics, clock=SystemClock()) as relay:
            await relay.first_connect.wait()
            print("connected", flush=True)
            await asyncio.sleep(3600)

asyncio.run(main(sys.argv[1], Path(sys.argv[2])))
"""


async def test_a_killed_controller_leaves_its_will_as_the_retained_status(tmp_path: Path) -> None:
    """The relay in its own process, killed with SIGKILL: no goodbye, so the broker publishes the
    will the relay registered at connect time."""
    ensure_database(tmp_path)
    SiteKey.load_or_create(tmp_path)
    async with Mosquitto() as broker, Wire(broker) as wire:
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


async def test_live_state_and_results_follow_the_event_stream_not_the_clock(tmp_path: Path) -> None:
    """With a live period and an idle poll of a minute, an item start still reaches the province's
    wall within a second, and a signed result goes out at once: the relay follows the station's
    event stream (ItemStateEvent, ResultStateEvent), not its timers."""
    async with Mosquitto() as broker, Wire(broker) as wire:
        config = site_config(broker.url)
        key = SiteKey.load_or_create(tmp_path)
        settings = RelaySettings(idle_poll_s=60.0, live_every_s=60.0, status_every_s=600.0)
        with open_database(ensure_database(tmp_path)) as db:
            services = StationServices(config, db, key, SystemClock())
            try:
                async with ProvinceServer(broker.url, keys={config.site.id: key.public_pem()},
                                          province_key=province_key()) as province:
                    await asyncio.wait_for(province.connected.wait(), 10)
                    async with uplink_relay(config, services, None, settings) as relay:
                        await asyncio.wait_for(relay.first_connect.wait(), 10)
                        await wire.wait_for(lambda s: s.kind == "live" and s.doc["station"] == "A01")
                        await asyncio.sleep(0.5)  # the relay's first live round is over: now only events move it

                        def start() -> str:
                            services.register_candidate("110101199001010015", "张三", "低压电工作业", "B-2026-11")
                            aid = services.check_in("110101199001010015", "A01", "监考员王")
                            services.assign(aid, {"K3": "K31"}, "exam-system")
                            services.start_item(aid, "K31", EXAMINERS[0])
                            return aid

                        aid = await asyncio.to_thread(start)
                        started = time.monotonic()
                        running = await wire.wait_for(
                            lambda s: s.kind == "live" and s.doc["attempt_id"] == aid and s.doc["item"] == "K31", 5)
                        live_after_s = time.monotonic() - started

                        def finish() -> None:
                            services.end_item(aid, "done", EXAMINERS[0])
                            services.score(aid)
                            services.review(aid, EXAMINERS[0])
                            services.candidate_decision(aid, "K31", signed=True)
                            for examiner in (EXAMINERS[0], "考评员赵六"):
                                services.examiner_sign(aid, examiner)

                        await asyncio.to_thread(finish)
                        signed = time.monotonic()
                        await wire.wait_for(lambda s: s.kind == "result" and s.doc["attempt_id"] == aid, 5)
                        result_after_s = time.monotonic() - signed
                        await wait_until(lambda: outbox_states(db) == {"delivered": 1}, 5)
            finally:
                services.close()
    assert running.doc["state"] == "running" and running.doc["remaining_s"] > 0
    assert live_after_s < 2.0, f"the live state followed the item start after {live_after_s:.1f} s"
    assert result_after_s < 2.0, f"the signed result went out after {result_after_s:.1f} s"
