"""The uplink relay: publishes queued results to the province's broker until receipts settle them.

Why it is built this way (DESIGN.md "Durability and delivery", LIBRARY-NOTES.md "MQTT"):
- aiomqtt does not reconnect by itself: one loop connects, works, and on any MQTT error waits a
  capped, jittered backoff and connects again, forever.
- A PUBACK is not delivery: a row leaves the outbox only through a receipt (station.uplink.outbox).
  Each claim of a row writes its next try before the publish, so a kill -9 after publishing
  still resends; the receiver absorbs duplicates on result_id.
- When the link comes back every queued result is due at once: whatever was in flight may have
  died with the broker's memory (mosquitto's default is no persistence), and waiting out each
  row's backoff would leave a site's backlog stuck for minutes after an outage.
- Sends are pipelined (many QoS 1 publishes in flight) and receipts are settled in batches, one
  database transaction each, so draining a backlog costs a few fsyncs, not one per result.
- Time comes from an injected clock and waits from an injected `sleep`, so tests run a
  30-minute outage in seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any

import aiomqtt

from devices.clock import Clock
from scoring.rubric import Rubric
from station.attempt_book import AttemptBook
from station.config import SiteConfig
from station.db import Database
from station.events import AlarmEvent, EventBus, Lost, ResultStateEvent
from station.uplink import backoff, contract, manifest, outbox
from station.uplink.broker_link import (
    RECEIPTS_REFUSED,
    RelaySettings,
    RelayStats,
    UplinkConfigError,
    UplinkHealth,
    client_id_of,
    dumps,
    leaf,
    mqtt_client,
    receipts_refused,
)
from station.uplink.live import LiveSource, publish_live
from station.uplink.receipts import ReceiptCounts, ReceiptKeyError, ReceiptReader, load_province_key
from station.uplink.settle import ReceiptSettler

__all__ = ["RelaySettings", "RelayStats", "UplinkConfigError", "UplinkHealth", "UplinkRelay", "client_id_of"]
log = logging.getLogger(__name__)
HEALTHY_SESSION_S = 30.0
"""A session that brought receipts, or lasted this long, resets the reconnect backoff; one that
fails right after the broker accepted it (a database error, a client id taken over) keeps backing
off instead of reconnecting twice a second."""
Sleep = Callable[[float], Awaitable[None]]


class UplinkRelay:
    """Run it as `async with UplinkRelay(...) as relay:`; it delivers until the block ends."""

    def __init__(self, config: SiteConfig, book: AttemptBook | Database, *, key_id: str, rubrics: list[Rubric],
                 clock: Clock, broker_url: str | None = None, settings: RelaySettings | None = None,
                 sleep: Sleep = asyncio.sleep, client_id: str | None = None, live: LiveSource | None = None) -> None:
        """`book`: the station's one writer of attempts, through which receipts settle them. A relay
        that runs without the station (`examstation outbox`, a demo delivering after the exam) is
        given the database instead and is then its only writer: it opens a book of its own."""
        self.config = config
        self._book = book if isinstance(book, AttemptBook) else None
        self._own_book = self._book is None
        self.db = book.db if isinstance(book, AttemptBook) else book
        self.key_id = key_id
        self.rubrics = rubrics
        self.clock = clock
        self.address = contract.parse_broker_url(broker_url or config.uplink.broker_url)
        self.settings = settings or RelaySettings()
        self._sleep = sleep
        self._box = config.this_box.id if config.this_box is not None else None
        self.client_id = client_id or client_id_of(config.site.id, self._box)
        self._live = live
        self.stats = RelayStats()
        try:
            self._reader = ReceiptReader(load_province_key(config.uplink.province_key), self._alarm)
        except ReceiptKeyError as err:
            raise UplinkConfigError(str(err)) from err
        self.connected = False
        self.last_error: str | None = None
        self.link_changed_utc_ns = clock.utc_ns()
        """When `connected` last changed (or the relay was made): /healthz says how long it has been down."""
        self._site = config.site.id
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._client: aiomqtt.Client | None = None
        self._rng = random.Random()
        self.first_connect = asyncio.Event()
        self._closing = False
        self._subscribing: str | None = None
        """The receipt topic while its SUBSCRIBE awaits the SUBACK: a link closed then was (most likely) a refusal."""
        self._sends = backoff.SendCounts(self.settings.resend_first_s, self.settings.resend_cap_s)
        self._settler = ReceiptSettler(lambda: self.book, self.stats, self._sends, self._alarm, sleep)

    # -- lifecycle ---------------------------------------------------------------------------
    def _alarm(self, what: str, todo: str, code: str = "uplink.untrusted_receipt") -> None:
        if self._book is not None:
            self._book.events.publish(AlarmEvent(code, what, todo, None, self.clock.utc_ns()))

    @property
    def receipt_counts(self) -> ReceiptCounts:
        """Receipt messages dropped: malformed, and untrusted (not signed by the province's key)."""
        return self._reader.counts

    @property
    def book(self) -> AttemptBook:
        if self._book is None:
            raise RuntimeError("the relay's attempt book opens when the relay starts (async with)")
        return self._book

    async def __aenter__(self) -> UplinkRelay:
        if self._book is None:
            self._book = AttemptBook(self.db, self.clock)
        self._loop = asyncio.get_running_loop()
        self._tasks = [asyncio.create_task(self._connection_loop(), name="uplink-connection"),
                       asyncio.create_task(self._settler.run(), name="uplink-receipts"),
                       asyncio.create_task(self._wake_on_results(self.book.events), name="uplink-wake")]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._closing = True  # no reconnect from here on, and no `online` status after the goodbye
        client = self._client
        if client is not None and self.connected:
            goodbye = manifest.offline(self._site, "shutdown", self.clock.utc_ns(), self._box)
            with contextlib.suppress(aiomqtt.MqttError, TimeoutError):
                await client.publish(contract.status_topic(self._site, self._box), dumps(goodbye), qos=1,
                                     retain=True, timeout=1.0)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._settler.settle_pending()
        self.connected = False
        if self._own_book and self._book is not None:
            await asyncio.to_thread(self._book.close)
            self._book = None

    async def _wake_on_results(self, events: EventBus) -> None:
        """A result signed at this station is queued: send it now, not at the next idle poll."""
        results = events.subscribe("uplink wake", maxsize=16, kinds=(ResultStateEvent,))
        try:
            async for event in results:
                if isinstance(event, Lost) or (isinstance(event, ResultStateEvent)
                                               and event.state == outbox.OutboxState.QUEUED):
                    self._wake.set()
        finally:
            results.close()

    def wake(self) -> None:
        """A result was stored: look at the outbox now. Safe to call from any thread."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._wake.set)

    def health(self) -> UplinkHealth:
        """Synchronous (reads the database): call it in a thread from async code."""
        backlog = outbox.backlog(self.db)
        now = self.clock.utc_ns()
        last = self.stats.last_receipt_utc_ns
        return UplinkHealth(self.address.url, self.connected, self.last_error, backlog, backlog.oldest_age_s(now),
                            self.stats, None if last is None else max(0.0, (now - last) / 1e9))

    # -- connection ----------------------------------------------------------------------------
    def _client_for(self) -> aiomqtt.Client:
        return mqtt_client(self.config.uplink, self.address, self.client_id, self.settings, self._site, self._box)

    async def _connection_loop(self) -> None:
        delay = self.settings.reconnect_first_s
        while True:
            started = asyncio.get_running_loop().time()
            receipts_before = self.stats.receipts
            try:
                client = self._client_for()
                async with client:
                    self._client = client
                    self.stats.connects += 1
                    await self._session(client)
            except* aiomqtt.MqttError as group:
                self._lost(self._explained(str(leaf(group))))
            except* UplinkConfigError as group:
                self._lost(str(leaf(group)))
            except* OSError as group:
                self._lost(str(leaf(group)))
            except* Exception as group:  # a database error must not stop delivery forever
                err = leaf(group)
                reason = f"{type(err).__name__}: {err}"
                if reason != self.last_error:  # once per kind of failure, not twice a second
                    log.error("uplink: %s; retrying", reason, exc_info=err)
                self._lost(reason)
            finally:
                self._client = None
                self._subscribing = None
            if self._closing:
                # an MQTT error raised while the cancel was delivered (aiomqtt's DISCONNECT on a dead
                # link) must not turn the relay's shutdown into another reconnect. Not
                # Task.cancelling(): in 3.11 a TaskGroup that cancelled its parent can leave it > 0.
                raise asyncio.CancelledError
            if (self.stats.receipts > receipts_before
                    or asyncio.get_running_loop().time() - started > HEALTHY_SESSION_S):
                delay = self.settings.reconnect_first_s  # the link worked: after a break, back at once
            await self._sleep(delay * (1 + backoff.JITTER * (2 * self._rng.random() - 1)))
            delay = min(self.settings.reconnect_cap_s, delay * 2)

    def _explained(self, reason: str) -> str:
        """An MQTT error as the operator must read it: RabbitMQ answers a SUBSCRIBE its permissions deny by
        closing the connection, which aiomqtt reports as "Disconnected during message iteration"."""
        topic = self._subscribing
        if topic is None or reason.startswith("the broker refused"):
            return reason
        return receipts_refused(topic, self.config.uplink.username,
                                "it closed the connection at the SUBSCRIBE, as RabbitMQ does for a topic its "
                                "permissions deny")

    def _lost(self, reason: str) -> None:
        if reason.startswith("the broker refused") and reason != self.last_error:
            log.error("ALARM uplink: %s", reason)
            self._alarm(f"uplink: {reason}", "ask the province to let this site read its receipt topic; results stay "
                        "queued here until then", RECEIPTS_REFUSED)
        if self.connected or self.last_error != reason:
            log.warning("uplink to %s: %s; results stay in the outbox and are sent once it is back",
                        self.address.url, reason)
        if self.connected:
            self.link_changed_utc_ns = self.clock.utc_ns()
        self.connected = False
        self.last_error = reason

    async def _session(self, client: aiomqtt.Client) -> None:
        # The reader starts first: in aiomqtt 2.5 only the message loop notices a dropped link, so a
        # SUBACK or PUBACK awaited without it would hang for the whole publish timeout (15 s).
        self._sends.clear()
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._receive(client))
            receipts = contract.receipt_topic(self._site)
            self._subscribing = receipts
            granted = await client.subscribe(receipts, qos=1)
            self._subscribing = None
            refused = [g for g in granted if (g if isinstance(g, int) else g.value) >= 0x80]
            if refused:  # e.g. the broker's ACL: results would be stored, receipts never seen
                raise aiomqtt.MqttError(receipts_refused(receipts, self.config.uplink.username,
                                                         f"SUBACK {refused[0]}"))
            await self._publish_status(client)
            self.link_changed_utc_ns = self.clock.utc_ns()
            self.connected = True
            self.last_error = None
            log.info("uplink connected to %s as %s", self.address.url, self.client_id)
            queued = await asyncio.to_thread(outbox.due_all_now, self.db, self.clock.utc_ns())
            if queued:
                log.info("uplink: %d results queued, sending them now", queued)
            self.first_connect.set()
            tg.create_task(self._send(client))
            tg.create_task(self._status(client))
            if self._live is not None and self.settings.live_every_s:
                async def publish(doc: dict[str, Any]) -> None:
                    await client.publish(contract.live_topic(self._site, str(doc["station"])), dumps(doc), qos=0)

                tg.create_task(publish_live(publish, self._live, self.settings.live_every_s,
                                            None if self._own_book else self.book.events, self._sleep))

    async def _publish_status(self, client: aiomqtt.Client) -> None:
        backlog = await asyncio.to_thread(outbox.backlog, self.db)
        doc = manifest.birth(self.config, self.rubrics, self.key_id, backlog, self.clock.utc_ns())
        await client.publish(contract.status_topic(self._site, self._box), dumps(doc), qos=1, retain=True)

    async def _status(self, client: aiomqtt.Client) -> None:
        while True:
            await self._sleep(self.settings.status_every_s)
            if self._closing:
                return
            try:
                await self._publish_status(client)
            except aiomqtt.MqttError:
                raise
            except Exception as err:  # a status that cannot be built must not stop the results
                log.warning("uplink: status not published (%s: %s)", type(err).__name__, err)

    # -- sending -------------------------------------------------------------------------------
    async def _send(self, client: aiomqtt.Client) -> None:
        s = self.settings
        while True:
            self._wake.clear()
            due = await asyncio.to_thread(outbox.take_due, self.db, self.clock.utc_ns(), s.batch,
                                          self._sends.waits(), s.resend_cap_s * (1 + backoff.JITTER))
            self._sends.claimed(d.result_id for d in due)
            if due:
                await self._publish_all(client, due)
                continue
            nxt = await asyncio.to_thread(outbox.next_due_utc_ns, self.db)
            wait = s.idle_poll_s if nxt is None else min(s.idle_poll_s, max(0.0, (nxt - self.clock.utc_ns()) / 1e9))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):  # not wait_for: in 3.11 it can swallow a cancel
                    await self._wake.wait()

    async def _publish_all(self, client: aiomqtt.Client, due: list[outbox.Due]) -> None:
        """Publish with at most `max_inflight` awaiting their PUBACK; return when all have it.
        One task per send in flight, never one per result: waking hundreds of parked tasks costs
        more than the sends."""
        window = asyncio.Semaphore(self.settings.max_inflight)
        async with asyncio.TaskGroup() as tg:
            for d in due:
                await window.acquire()
                tg.create_task(self._publish(client, d, window))

    async def _publish(self, client: aiomqtt.Client, d: outbox.Due, window: asyncio.Semaphore) -> None:
        try:
            await client.publish(contract.result_topic(self._site, d.station), d.document.encode(), qos=1)
        finally:
            window.release()
        self.stats.published += 1
        if d.attempts:
            log.debug("uplink: result %s (seq %d) sent again, send %d", d.result_id, d.seq, d.attempts + 1)

    # -- receipts ------------------------------------------------------------------------------
    async def _receive(self, client: aiomqtt.Client) -> None:
        topic = contract.receipt_topic(self._site)
        async for message in client.messages:
            if message.topic.value != topic:  # a subscription left in the persistent session by an older version
                continue
            self.stats.last_receipt_utc_ns = self.clock.utc_ns()
            for receipt in self._reader.read(topic, message.payload):
                self.stats.receipts += 1
                self._settler.put(receipt)
