"""One acceptance message to the province and its receipt back: what the uplink check and
`site-check --publish` share.

The exchange connects with the site's own uplink credentials (user, password file, TLS with the
configured CA), as the controller's relay does, but as a separate, short-lived client: its own
client id (the relay's `examstation-{site}` would throw a running controller off the broker and
could take its receipts), a clean session (nothing left on the province's broker afterwards) and
no will (a check that dies must not overwrite the site's retained status with `offline`). It
publishes on `examstation/v1/{site}/acceptance`, never on a result topic, so the outbox and the
real results are untouched.

A receipt counts only when it is an acceptance receipt naming this message and verifies against
the province's public key (`uplink.province_key`): the same rule the relay applies to result
receipts (station.uplink.receipts), since a receipt anyone could forge proves nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from dataclasses import dataclass
from typing import Any, Literal

import aiomqtt
from aiomqtt.exceptions import MqttConnectError

from station.config import SiteConfig
from station.ids import uuid7
from station.result_document import iso_utc
from station.signing import verify
from station.uplink import contract
from station.uplink.broker_link import UplinkConfigError, dumps, leaf, login
from station.uplink.manifest import software_version

Failure = Literal["config", "unreachable", "tls", "auth", "subscribe", "no_receipt", "untrusted"]
UNTRUSTED_GRACE_S = 1.0
"""After a receipt naming our message that does not verify, wait this long for a genuine one
before saying so (a forger may race the province; the province is never this slow after it)."""


class ExchangeError(Exception):
    """The exchange failed; `failure` says at which step, the message says what was seen."""

    def __init__(self, failure: Failure, message: str) -> None:
        super().__init__(message)
        self.failure = failure


@dataclass(frozen=True, slots=True)
class Exchange:
    acceptance_id: str
    receipt: dict[str, Any]
    """The province's acceptance receipt, verified against uplink.province_key."""
    round_trip_ms: float
    """From the publish to the verified receipt."""
    broker: str


def acceptance_message(site: str, kind: Literal["probe", "report"], body: dict[str, Any] | None = None,
                       now_ns: int | None = None) -> dict[str, Any]:
    """An unsigned acceptance message with a fresh acceptance_id (sign it with SiteKey.sign)."""
    utc_ns = time.time_ns() if now_ns is None else now_ns
    doc: dict[str, Any] = {"schema": contract.ACCEPTANCE_SCHEMA, "kind": kind,
                           "acceptance_id": uuid7(utc_ns // 1_000_000), "site": site, "sent_at": iso_utc(utc_ns)}
    if kind == "probe":
        doc["software"] = {"name": "examstation", "version": software_version()}
    else:
        doc["report"] = body
    return doc


def _client(config: SiteConfig, address: contract.BrokerAddress, timeout_s: float) -> aiomqtt.Client:
    up = config.uplink
    try:
        password, tls = login(up, address)
    except UplinkConfigError as err:
        raise ExchangeError("config", str(err)) from err
    client_id = f"examstation-{config.site.id}-check-{os.urandom(4).hex()}"
    return aiomqtt.Client(address.host, address.port, identifier=client_id, clean_session=True,
                          username=up.username, password=password, keepalive=15, timeout=timeout_s,
                          socket_options=contract.NO_DELAY, **tls)


def _connect_failure(err: BaseException) -> ExchangeError:
    text = str(err)
    rc = getattr(err, "rc", None)
    code = rc if isinstance(rc, int) else getattr(rc, "value", None)
    if isinstance(err, MqttConnectError) and code in (4, 5, 134, 135):
        return ExchangeError("auth", f"the broker refused the login ({text})")
    if "certificate" in text.lower() or "ssl" in text.lower():
        return ExchangeError("tls", f"TLS handshake failed ({text})")
    return ExchangeError("unreachable", text or type(err).__name__)


async def exchange(config: SiteConfig, message: dict[str, Any], province_pem: str, *,
                   timeout_s: float = 10.0) -> Exchange:
    """Publish `message` (QoS 1) on the site's acceptance topic and wait up to `timeout_s` for
    the province's verified acceptance receipt naming its acceptance_id. ExchangeError otherwise."""
    site = config.site.id
    try:
        address = contract.parse_broker_url(config.uplink.broker_url)
    except contract.ContractError as err:
        raise ExchangeError("config", str(err)) from err
    aid = str(message["acceptance_id"])
    receipts = contract.receipt_topic(site)
    client = _client(config, address, timeout_s)
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(timeout_s):
            await client.__aenter__()
    except (aiomqtt.MqttError, OSError, TimeoutError) as err:
        if isinstance(err, TimeoutError):
            raise ExchangeError("unreachable", f"no answer from {address.url} within {timeout_s:g} s") from err
        raise _connect_failure(err) from err
    try:
        async with asyncio.TaskGroup() as tg:
            # The reader runs first: in aiomqtt 2.5 only the message loop notices a dropped link.
            found: asyncio.Future[dict[str, Any]] = loop.create_future()
            reader = tg.create_task(_read(client, receipts, aid, province_pem, found))
            try:
                granted = await client.subscribe(receipts, qos=1)
                if any((g if isinstance(g, int) else g.value) >= 0x80 for g in granted):
                    raise ExchangeError("subscribe", f"the broker refused the subscription to {receipts}")
                started = time.perf_counter()
                await client.publish(contract.acceptance_topic(site), dumps(message), qos=1)
                try:
                    receipt = await asyncio.wait_for(found, timeout_s)
                except TimeoutError:
                    raise ExchangeError("no_receipt", f"no receipt for {aid} within {timeout_s:g} s") from None
                return Exchange(aid, receipt, (time.perf_counter() - started) * 1000, address.url)
            finally:
                reader.cancel()
    except* ExchangeError as group:
        raise leaf(group) from None
    except* aiomqtt.MqttError as group:
        raise ExchangeError("unreachable", f"the link to {address.url} broke: {leaf(group)}") from None
    finally:
        with contextlib.suppress(aiomqtt.MqttError):
            await client.__aexit__(None, None, None)


async def _read(client: aiomqtt.Client, topic: str, aid: str, province_pem: str,
                found: asyncio.Future[dict[str, Any]]) -> None:
    untrusted: dict[str, Any] | None = None
    grace: asyncio.TimerHandle | None = None

    def give_up() -> None:
        if not found.done() and untrusted is not None:
            signer = untrusted.get("signature")
            named = signer.get("key_id") if isinstance(signer, dict) else None
            found.set_exception(ExchangeError(
                "untrusted", f"a receipt for {aid} came back {'signed by ' + str(named) if named else 'unsigned'}, "
                "and does not verify against uplink.province_key"))

    try:
        async for msg in client.messages:
            if msg.topic.value != topic:
                continue
            try:
                doc = json.loads(bytes(msg.payload) if isinstance(msg.payload, bytes | bytearray) else str(msg.payload))
            except ValueError:
                continue
            if (not isinstance(doc, dict) or doc.get("schema") != contract.ACCEPTANCE_RECEIPT_SCHEMA
                    or doc.get("acceptance_id") != aid):
                continue  # result receipts, other checks' receipts: not ours
            if not contract.problems("acceptance_receipt", doc) and verify(doc, province_pem):
                if not found.done():
                    found.set_result(doc)
                return
            untrusted = doc
            if grace is None:
                grace = asyncio.get_running_loop().call_later(UNTRUSTED_GRACE_S, give_up)
    finally:
        if grace is not None:
            grace.cancel()
