"""The other boxes' stations, for the hall page of a hall split over boxes (docs/boxes.md).

Each box publishes its own stations' live state (station.uplink.live) on the site's broker; this
subscribes to every station's live topic of the site (`examstation/v1/{site}/+/live`) and keeps
the latest message of each station another box runs, with when it was heard, for the hall.

Why its own MQTT connection and not the relay's: the relay's session carries results and receipts,
and a broker whose ACL refuses the live subscription (RabbitMQ closes the connection for it) must
cost the hall its remote tiles, never a result. So: a clean session, QoS 0, a client id of its own
(`examstation-{site}-{box}-hall`), reconnecting with a capped backoff, quiet about repeats.

What is trusted: only messages that follow the live schema, name this site and a station of the
site config that another box runs, and (when they name one) the box the config gives it. The hall
shows what another box says about its stations; it never acts on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiomqtt

from station.box import Box
from station.config import SiteConfig
from station.uplink import backoff, contract
from station.uplink.broker_link import client_id_of, leaf, login
from station.uplink.live import STALE_PERIODS, live_every_s

log = logging.getLogger(__name__)
KEEPALIVE_S = 15
RECONNECT_FIRST_S = 0.5
RECONNECT_CAP_S = 10.0
SUBSCRIBE_TIMEOUT_S = 5.0
Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class Heard:
    """A remote station's latest live message and when it arrived (monotonic seconds)."""

    doc: dict[str, Any]
    at_s: float


class PeerLive:
    """`async with PeerLive(config) as peers:` follows the other boxes' stations until the block ends.
    `config` is this box's part (SiteConfig.for_box)."""

    def __init__(self, config: SiteConfig, *, broker_url: str | None = None, clock: Clock = time.monotonic) -> None:
        self.config = config
        box = config.this_box
        if box is None:
            raise ValueError("PeerLive is for a box of a split hall: give it SiteConfig.for_box(ID)")
        self.box = box
        self.site = config.site.id
        self.address = contract.parse_broker_url(broker_url or config.uplink.broker_url)
        self.client_id = client_id_of(self.site, box.id) + "-hall"
        boxes = {b.id: b for b in config.whole_site.boxes}
        own = {st.id for st in config.stations}
        self.remote: dict[str, Box] = {st.id: boxes[st.box] for st in config.whole_site.stations
                                       if st.id not in own and st.box is not None}
        """Station -> the box that runs it, for every station of the site this box does not run."""
        every = live_every_s(config)
        self.stale_after_s = STALE_PERIODS * (every if every is not None else 5.0)
        self._clock = clock
        self._heard: dict[str, Heard] = {}
        self._listeners: list[Callable[[str], None]] = []
        self._warned: set[str] = set()
        self.connected = False
        self.last_error: str | None = None
        self.ignored = 0
        """Messages dropped: not JSON, off the schema, or about a station no other box runs."""
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> PeerLive:
        self._task = asyncio.create_task(self._connection_loop(), name=f"peer live {self.client_id}")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.connected = False

    def listen(self, changed: Callable[[str], None]) -> Callable[[], None]:
        """Call `changed(station)` (on the event loop) for each message taken; returns the unsubscribe."""
        self._listeners.append(changed)
        return lambda: self._listeners.remove(changed) if changed in self._listeners else None

    def heard(self, station: str) -> Heard | None:
        return self._heard.get(station)

    def age_s(self, heard: Heard) -> float:
        return max(0.0, self._clock() - heard.at_s)

    # -- messages ----------------------------------------------------------------------------------
    def take(self, topic: str, payload: bytes | bytearray | str) -> str | None:
        """Keep one live message if it is a remote station's; returns that station, else None."""
        try:
            site, station = contract.parse_live_topic(topic)
            doc = json.loads(payload)
        except (contract.ContractError, ValueError, RecursionError) as err:
            self._ignore(f"live message on {topic} ignored: {err}", topic)
            return None
        if site != self.site or station not in self.remote:
            return None  # this box's own stations (it shows them first-hand), or not of this site
        problems = contract.problems("live", doc)
        if problems:
            self._ignore(f"live message of station {station} breaks the live schema ({problems[0]}); is that box "
                         "running another version?", station)
            return None
        owner = self.remote[station]
        if doc["site"] != site or doc["station"] != station or doc.get("box", owner.id) != owner.id:
            self._ignore(f"live message on {topic} names {doc['site']}/{doc['station']} box {doc.get('box')}, but "
                         f"the site config gives station {station} to box {owner.id}; both boxes must read the same "
                         "site config", station)
            return None
        self._heard[station] = Heard(doc, self._clock())
        for changed in list(self._listeners):
            changed(station)
        return station

    def _ignore(self, what: str, key: str) -> None:
        self.ignored += 1
        if key not in self._warned:  # once per station: a box sends one every few seconds
            self._warned.add(key)
            log.warning("hall: %s", what)
        return None

    # -- connection --------------------------------------------------------------------------------
    def _client(self) -> aiomqtt.Client:
        password, tls = login(self.config.uplink, self.address)
        return aiomqtt.Client(self.address.host, self.address.port, identifier=self.client_id, clean_session=True,
                              username=self.config.uplink.username, password=password, keepalive=KEEPALIVE_S,
                              socket_options=contract.NO_DELAY, timeout=SUBSCRIBE_TIMEOUT_S,
                              logger=logging.getLogger(f"{__name__}.paho"), **tls)

    async def _connection_loop(self) -> None:
        delay = RECONNECT_FIRST_S
        rng = random.Random()
        topic = contract.live_filter(self.site)
        while True:
            subscribed = False
            try:
                async with self._client() as client:
                    granted = await client.subscribe(topic, qos=0)
                    if any((g if isinstance(g, int) else g.value) >= 0x80 for g in granted):
                        raise aiomqtt.MqttError(self._refused(topic))
                    subscribed = self.connected = True
                    self.last_error = None
                    delay = RECONNECT_FIRST_S
                    log.info("hall: following the other boxes' stations on %s (%s)", self.address.url, topic)
                    async for message in client.messages:
                        payload = message.payload
                        self.take(message.topic.value, payload if isinstance(payload, bytes | bytearray | str) else b"")
            except (aiomqtt.MqttError, OSError) as err:
                reason = str(leaf(err))
                if not subscribed and "refused" not in reason:  # RabbitMQ closes the link instead of a SUBACK 0x80
                    reason = f"{reason}; if this repeats, perhaps {self._refused(topic)}"
                self._lost(reason)
            await asyncio.sleep(delay * (1 + backoff.JITTER * (2 * rng.random() - 1)))
            delay = min(RECONNECT_CAP_S, delay * 2)

    def _refused(self, topic: str) -> str:
        return (f"the broker refused the subscription to {topic}: the other boxes' stations cannot be shown; the "
                f"broker's ACL must let user {self.config.uplink.username or '(anonymous)'} read its site's live "
                "topics (docs/boxes.md)")

    def _lost(self, reason: str) -> None:
        if self.connected or reason != self.last_error:
            log.warning("hall: the other boxes' stations are not followed from %s: %s; trying again",
                        self.address.url, reason)
        self.connected, self.last_error = False, reason
