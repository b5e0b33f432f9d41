"""A simulated provincial exam server: the receiving end of the uplink, for tests and the demo.

It does what the contract asks of a real one (docs/uplink.md): subscribe to every station's
results, check each against the result schema, verify its Ed25519 signature against the key
the site registered, store it (any SQLAlchemy URL; SQLite by default), deduplicate on result_id,
watch the per-site seq for gaps, and answer each result with a receipt signed by the province's
own Ed25519 key. Storing comes before the receipt, always: a receipt is the station's licence to
forget.

It is an independent implementation of the contract: it imports nothing from `station`. Topics
and schemas come from docs/asyncapi.yaml (hardware_sim.province_contract), signatures are made and
checked with its own canonicalisation (hardware_sim.jcs) and `cryptography`
(hardware_sim.province_key), so a topic, schema or canonicalisation bug on either side shows up
as a result not heard, a rejected result or a receipt that does not verify.

What each result is checked for, and the audit-checkpoint watch: hardware_sim.province_checks.

Site acceptance (hardware_sim.province_acceptance): probes and published site-check reports on
`examstation/v1/{site}/acceptance` are verified against the same registered site key, stored, and
answered with a signed acceptance receipt on the site's receipt topic.

Faults, for tests: drop the next N receipts, send every receipt twice, delay receipts, reject
chosen results with a reason, send receipts unsigned or signed with another (forger's) key.

Run alone: `python -m hardware_sim.province --broker mqtt://127.0.0.1:1883 --key SITE=public.pem
--province-key province.pem --sign-receipts` (hardware_sim.province_cli).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aiomqtt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import insert, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

import hardware_sim.province_key as ed25519
from hardware_sim.province_acceptance import Acceptance, AcceptanceDesk
from hardware_sim.province_checks import CheckpointWatch, reason_to_reject, stream_of
from hardware_sim.province_contract import ASYNCAPI, Contract, ContractError, parse_broker_url
from hardware_sim.province_faults import ProvinceFaults, ProvinceStats
from hardware_sim.province_receipts import Verdict, receipt, receipt_messages
from hardware_sim.province_store import Rejection, StoredAcceptance, StoredResult, open_store, stored_results

__all__ = ["Acceptance", "ProvinceFaults", "ProvinceServer", "ProvinceStats"]
log = logging.getLogger(__name__)
RECEIPTS_IN_FLIGHT = 64
"""Receipts awaiting their PUBACK at once. aiomqtt scans every pending call on each publish, so
thousands in flight cost more than they gain."""
SIGN_RECEIPTS = True
"""Whether receipts carry the province's signature unless told otherwise: the contract requires it
(station/uplink/schemas/receipt.json); off only to show what a station does with unsigned ones."""
NO_DELAY = ((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),)
"""TCP_NODELAY, as docs/uplink.md asks of a receiving server: with Nagle's algorithm on, a receipt
written right after a PUBACK waits ~40 ms for the peer's delayed ACK."""


class ProvinceServer:
    """`async with ProvinceServer(broker_url, keys={site: public_pem}) as province:` receives until the block ends."""

    def __init__(self, broker_url: str, *, keys: Mapping[str, str] | None = None, db_url: str = "sqlite://",
                 client_id: str = "province-sim", faults: ProvinceFaults | None = None,
                 batch_receipts: bool = True, province_key: Ed25519PrivateKey | Path | str | None = None,
                 sign_receipts: bool = SIGN_RECEIPTS, contract: Path = ASYNCAPI) -> None:
        """`province_key`: the key that signs receipts, or the path of its PEM file (created when
        missing); a new key for this run when None. `contract`: the AsyncAPI document whose
        channels and schemas the province follows."""
        self.address = parse_broker_url(broker_url)
        self.broker_url = broker_url
        self.contract = Contract.load(contract)
        self._results = self.contract.channel("result").topic
        self._receipts = self.contract.channel("receipt").topic
        for name, topic, wanted in (("result", self._results, {"site", "station"}),
                                    ("receipt", self._receipts, {"site"})):
            if set(topic.parameters) != wanted:
                raise ContractError(f"{contract}: channel {name} ({topic.address}) must take the parameters "
                                    f"{sorted(wanted)}")
        self.client_id = client_id
        self.batch_receipts = batch_receipts
        self.sign_receipts = sign_receipts
        if isinstance(province_key, Ed25519PrivateKey):
            self._private = province_key
        elif province_key is None:
            self._private = Ed25519PrivateKey.generate()
        else:
            self._private = ed25519.load_or_create(Path(province_key))
        self.key_id = ed25519.key_id(self._private.public_key())
        self.faults = faults or ProvinceFaults()
        self.stats = ProvinceStats()
        self.connected = asyncio.Event()
        self._keys: dict[str, Ed25519PublicKey] = {}
        for site, pem in (keys or {}).items():
            self.register_key(site, pem)
        self._engine = open_store(db_url)
        self._desk = AcceptanceDesk(self.contract, self._keys, self._engine) if "acceptance" in self.contract.channels \
            else None
        """None with a contract that has no acceptance channel (an older docs/asyncapi.yaml)."""
        self._seqs: dict[str, set[int]] = {}
        """By stream (`stream_of`): the seqs stored."""
        self._max_seq: dict[str, int] = {}
        self._by_id: dict[str, tuple[str, int, int]] = {}
        """result_id -> (stream, seq, stored_utc_ns), for dedup without a query."""
        self._checkpoints = CheckpointWatch(self.stats)
        self._load()
        self._inbox: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
        self._outbox: asyncio.Queue[list[Verdict]] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._changed = asyncio.Event()

    def register_key(self, site: str, public_pem: str) -> None:
        """The site's public key, as `examstation keys export` prints it."""
        self._keys[site] = ed25519.load_public_pem(public_pem, f"site {site}")

    def public_pem(self) -> str:
        """The public half of the key that signs receipts: what a site configures as `uplink.province_key`."""
        return ed25519.public_pem(self._private.public_key())

    def _load(self) -> None:
        for rid, stream, seq, at in stored_results(self._engine):
            self._by_id[rid] = (stream, seq, at)
            self._seqs.setdefault(stream, set()).add(seq)
            self._max_seq[stream] = max(self._max_seq.get(stream, 0), seq)

    # -- what tests ask ------------------------------------------------------------------------
    def stored(self, site: str) -> int:
        """Results of `site` stored, from all its boxes."""
        return sum(len(got) for stream, got in self._seqs.items() if stream.split("/")[0] == site)

    def seqs(self, stream: str) -> set[int]:
        """The seqs stored of a site, or of one box of a split hall (`SITE/BOX`)."""
        return set(self._seqs.get(stream, ()))

    def missing(self, stream: str) -> list[int]:
        """Seqs below the highest one received that were never stored: the gaps right now (of a site, or
        `SITE/BOX`)."""
        got = self._seqs.get(stream, set())
        return [] if not got else [n for n in range(1, max(got) + 1) if n not in got]

    def rejections(self) -> list[tuple[str, str]]:
        with Session(self._engine) as s:
            return [(r.result_id, r.reason) for r in s.execute(select(Rejection).order_by(Rejection.id)).scalars()]

    def acceptances(self, site: str) -> list[Acceptance]:
        """The site-check probes and reports of `site` the province kept, with its verdict on each."""
        return [] if self._desk is None else self._desk.acceptances(site)

    async def wait_acceptances(self, site: str, count: int, timeout_s: float) -> None:
        """Until `count` acceptance messages of `site` are kept (TimeoutError otherwise)."""
        async with asyncio.timeout(timeout_s):
            while len(self.acceptances(site)) < count:
                self._changed.clear()
                await self._changed.wait()

    async def wait_stored(self, site: str, count: int, timeout_s: float) -> None:
        """Until `count` distinct results of `site` are stored (TimeoutError otherwise)."""
        async with asyncio.timeout(timeout_s):
            while self.stored(site) < count:
                self._changed.clear()
                await self._changed.wait()

    # -- running -------------------------------------------------------------------------------
    async def __aenter__(self) -> ProvinceServer:
        self._tasks = [asyncio.create_task(self._connection_loop(), name="province-connection"),
                       asyncio.create_task(self._work(), name="province-worker")]
        return self

    async def __aexit__(self, *exc: object) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._engine.dispose()

    async def _connection_loop(self) -> None:
        delay = 0.2
        while True:
            try:
                async with aiomqtt.Client(self.address.host, self.address.port, identifier=self.client_id,
                                          clean_session=False, keepalive=15, max_inflight_messages=200,
                                          max_queued_incoming_messages=0,
                                          socket_options=NO_DELAY) as client:
                    client.pending_calls_threshold = RECEIPTS_IN_FLIGHT * 2
                    await client.subscribe(self._results.filter, qos=1)
                    if self._desk is not None:
                        await client.subscribe(self._desk.topic.filter, qos=1)
                    self.connected.set()
                    delay = 0.2
                    async with asyncio.TaskGroup() as tg:
                        tg.create_task(self._receive(client))
                        tg.create_task(self._send_receipts(client))
            except* (aiomqtt.MqttError, OSError) as group:
                log.info("province: broker connection lost (%s); reconnecting", group.exceptions[0])
            self.connected.clear()
            await asyncio.sleep(delay)
            delay = min(2.0, delay * 2)

    async def _receive(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            payload = message.payload if isinstance(message.payload, bytes) else str(message.payload).encode()
            self._inbox.put_nowait((message.topic.value, payload))

    async def _send_receipts(self, client: aiomqtt.Client) -> None:
        window = asyncio.Semaphore(RECEIPTS_IN_FLIGHT)

        async def send(body: bytes, topic: str) -> None:
            try:
                await client.publish(topic, body, qos=1)
                self.stats.receipts_sent += 1
            finally:
                window.release()

        while True:
            verdicts = await self._outbox.get()
            try:
                if self.faults.delay_receipts_s:
                    await asyncio.sleep(self.faults.delay_receipts_s)
                async with asyncio.TaskGroup() as tg:
                    for site, body in receipt_messages(verdicts, self.batch_receipts, self._signed):
                        for _ in range(2 if self.faults.duplicate_receipts else 1):
                            await window.acquire()
                            tg.create_task(send(body, self._receipts.format(site=site)))
            except BaseException:
                self._outbox.put_nowait(verdicts)  # maybe not all sent: send them after the reconnect
                raise

    def _signed(self, message: dict[str, Any]) -> dict[str, Any]:
        """The receipt message as it goes out: signed as a whole (single or batch), unless told otherwise."""
        if self.faults.unsigned_receipts:
            return message
        if self.faults.sign_with is not None:
            return ed25519.sign(message, self.faults.sign_with, claimed_key_id=self.key_id)
        return ed25519.sign(message, self._private) if self.sign_receipts else message

    async def _work(self) -> None:
        while True:
            batch = [await self._inbox.get()]
            while len(batch) < 1000 and not self._inbox.empty():
                batch.append(self._inbox.get_nowait())
            verdicts = await asyncio.to_thread(self._process, batch)
            self._changed.set()
            kept = []
            for v in verdicts:
                if self.faults.drop_receipts > 0:
                    self.faults.drop_receipts -= 1
                    self.stats.receipts_dropped += 1
                    continue
                kept.append(v)
            if kept:
                self._outbox.put_nowait(kept)

    # -- judging -------------------------------------------------------------------------------
    def _process(self, batch: list[tuple[str, bytes]]) -> list[Verdict]:
        """Judge a batch and store it in ONE transaction, before any receipt goes out."""
        verdicts: list[Verdict] = []
        now = time.time_ns()
        rows: list[dict[str, Any]] = []
        rejections: list[dict[str, Any]] = []
        fresh: dict[str, tuple[str, int, int]] = {}
        taken: set[tuple[str, int]] = set()
        accepted: list[dict[str, Any]] = []
        for topic, payload in batch:
            self.stats.messages += 1
            if self._desk is not None and self._desk.hears(topic):
                v = self._desk.judge(topic, payload, now, accepted)
            else:
                v = self._judge(topic, payload, now, fresh, taken, rows, rejections)
            if v is not None:
                verdicts.append(v)
        try:
            with Session(self._engine) as s, s.begin():
                if rows:
                    s.execute(insert(StoredResult), rows)
                if rejections:
                    s.execute(insert(Rejection), rejections)
                if accepted:
                    s.execute(insert(StoredAcceptance), accepted)
        except SQLAlchemyError as err:  # nothing stored, so no receipt: the stations send them again
            log.error("province: cannot store %d results (%s); no receipts sent", len(rows), err)
            return []
        # only what is committed counts as stored, for receipts and for whoever asks
        if self._desk is not None:
            self._desk.committed(accepted)
        for rid, (stream, seq, at) in fresh.items():
            self._by_id[rid] = (stream, seq, at)
            top = self._max_seq.get(stream, 0)
            if top and seq > top + 1:
                self.stats.gaps_seen += 1
            self._max_seq[stream] = max(top, seq)
            self._seqs.setdefault(stream, set()).add(seq)
            self.stats.stored += 1
        return verdicts

    def _judge(self, topic: str, payload: bytes, now: int, fresh: dict[str, tuple[str, int, int]],
               taken: set[tuple[str, int]], rows: list[dict[str, Any]],
               rejections: list[dict[str, Any]]) -> Verdict | None:
        try:
            doc = json.loads(payload)
            where = self._results.parse(topic)
            site, station = where["site"], where["station"]
        except (ValueError, RecursionError) as err:
            self.stats.malformed += 1
            log.warning("province: message on %s ignored: %s", topic, err)
            return None
        rid, seq = (doc.get("result_id"), doc.get("seq")) if isinstance(doc, dict) else (None, None)
        if not isinstance(rid, str) or not isinstance(seq, int):
            self.stats.malformed += 1
            log.warning("province: message on %s has no result_id/seq; no receipt can name it", topic)
            return None
        known = self._by_id.get(rid) or fresh.get(rid)
        if known is not None:
            self.stats.duplicates += 1
            return Verdict(site, receipt(rid, known[1], "duplicate", stored_utc_ns=known[2]))
        box = doc.get("box")
        stream = stream_of(site, box if isinstance(box, str) else None)
        reason = reason_to_reject(doc, site=site, station=station, seq=seq, stream=stream, contract=self.contract,
                                  keys=self._keys, seqs_stored=self._seqs.get(stream, set()), faults=self.faults)
        if reason is None and (stream, seq) in taken:
            reason = f"seq {seq} of {stream} was already used by another result"
        if reason is not None:
            self.stats.rejected += 1
            rejections.append({"result_id": rid, "site": site, "seq": seq, "reason": reason, "utc_ns": now})
            log.warning("province: result %s of %s rejected: %s", rid, site, reason)
            return Verdict(site, receipt(rid, seq, "rejected", reason=reason))
        rows.append({"result_id": rid, "site": site, "station": station, "seq": seq, "attempt_id": doc["attempt_id"],
                     "document": payload.decode(), "stored_utc_ns": now})
        fresh[rid] = (stream, seq, now)
        taken.add((stream, seq))
        self._checkpoints.see(stream, seq, doc["audit_checkpoint"]["seq"])
        return Verdict(site, receipt(rid, seq, "stored", stored_utc_ns=now))


if __name__ == "__main__":
    from hardware_sim.province_cli import main

    main()
