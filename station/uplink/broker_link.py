"""The relay's link to the province's broker: its settings, counters and health, and the MQTT
client made from the site's uplink config (TLS, password file, the `offline` will).

Kept apart from station.uplink.relay, which decides what to send and when, so that what a site
administrator configures and reads (settings, the status line) has one small place.
"""

from __future__ import annotations

import json
import logging
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiomqtt

from station.config import Uplink
from station.uplink import backoff, contract, manifest, outbox

PAHO_LOGGER = "station.uplink.relay.paho"
"""paho logs every reset socket at ERROR ("failed to receive on socket"); the relay itself reports a
lost link once, with what happens next, so the CLI turns this logger down (logging is configured
only in the entry point)."""
_paho_log = logging.getLogger(PAHO_LOGGER)


@dataclass(frozen=True, slots=True)
class RelaySettings:
    resend_first_s: float = backoff.RESEND_FIRST_S
    resend_cap_s: float = backoff.RESEND_CAP_S
    reconnect_first_s: float = 0.5
    reconnect_cap_s: float = 10.0
    """Short enough that results flow within seconds of the network's return."""
    batch: int = 500
    """Results claimed per database transaction."""
    max_inflight: int = 32
    """QoS 1 publishes awaiting PUBACK at once: enough to keep a loopback link busy; aiomqtt scans
    every pending call on each publish, so more costs CPU without sending faster."""
    idle_poll_s: float = 1.0
    """With nothing due, look again this often (a result signed in another process wakes nobody)."""
    keepalive_s: int = 15
    publish_timeout_s: float = 15.0
    status_every_s: float = 60.0
    """Re-publish the retained status this often so the province sees the backlog change."""
    live_every_s: float | None = None
    """Publish live station state this often (QoS 0); None: no live topic."""


@dataclass(slots=True)
class RelayStats:
    connects: int = 0
    published: int = 0
    receipts: int = 0
    delivered: int = 0
    rejected: int = 0
    ignored_receipts: int = 0
    """Signed by the province, but for a result this station did not send (or already settled)."""
    last_receipt_utc_ns: int | None = None
    """When the last receipt arrived: a broker that accepts the receipt subscription but never
    delivers to it (an ACL that filters on delivery, as mosquitto 2.0 does) shows here."""


@dataclass(frozen=True, slots=True)
class UplinkHealth:
    """What the controller's status line, `examstation outbox` and the birth manifest show."""

    broker: str
    connected: bool
    last_error: str | None
    backlog: outbox.Backlog
    oldest_queued_age_s: float | None
    stats: RelayStats = field(default_factory=RelayStats)
    last_receipt_age_s: float | None = None

    def line(self) -> str:
        link = "connected" if self.connected else f"NOT CONNECTED ({self.last_error or 'connecting'})"
        age = "" if self.oldest_queued_age_s is None else f", oldest {self.oldest_queued_age_s:.0f} s"
        failed = f", {self.backlog.failed} REJECTED" if self.backlog.failed else ""
        b = self.backlog
        heard = ""
        if b.queued and self.connected:
            heard = (", no receipt yet" if self.last_receipt_age_s is None
                     else f", last receipt {self.last_receipt_age_s:.0f} s ago")
        return f"uplink {self.broker} {link}: {b.queued} queued{age}{failed}{heard}, {b.delivered} delivered"



class UplinkConfigError(Exception):
    """The uplink settings cannot work (unreadable password file ...); the message says what to fix."""


def login(up: Uplink, address: contract.BrokerAddress) -> tuple[str | None, dict[str, Any]]:
    """The password (read from its file) and the TLS arguments of aiomqtt.Client for the province's
    broker; shared by the relay and site-check's own short-lived client."""
    password = None
    if up.password_file:
        try:
            password = Path(up.password_file).read_text(encoding="utf-8").strip()
        except OSError as err:
            raise UplinkConfigError(f"uplink.password_file {up.password_file}: cannot read it ({err.strerror}); "
                                    "create it (one line, the MQTT password) or fix the path") from err
    tls: dict[str, Any] = {}
    if address.tls:
        if up.ca_file:
            tls["tls_params"] = aiomqtt.TLSParameters(ca_certs=up.ca_file)
        else:
            tls["tls_context"] = ssl.create_default_context()
    return password, tls


def mqtt_client(up: Uplink, address: contract.BrokerAddress, client_id: str, settings: RelaySettings,
                site: str, box: str | None = None) -> aiomqtt.Client:
    """A client for the province's broker: persistent session, the site's (or box's) `offline` will
    (retained), TLS with the configured CA, the password read from its file."""
    password, tls = login(up, address)
    will = aiomqtt.Will(contract.status_topic(site, box), dumps(manifest.offline(site, box=box)), qos=1, retain=True)
    client = aiomqtt.Client(
        address.host, address.port, identifier=client_id, clean_session=False,
        username=up.username, password=password, will=will, keepalive=settings.keepalive_s,
        timeout=settings.publish_timeout_s, max_inflight_messages=settings.max_inflight,
        logger=_paho_log, socket_options=contract.NO_DELAY, **tls,
    )
    client.pending_calls_threshold = settings.max_inflight * 2  # we bound them ourselves
    return client


def client_id_of(site: str, box: str | None) -> str:
    """The relay's MQTT client id: one per site, or per box of a split hall. Two boxes with one id
    would take the broker's session from each other, each connect disconnecting the other."""
    return f"examstation-{site}" if box is None else f"examstation-{site}-{box}"


RECEIPTS_REFUSED = "uplink.receipts_refused"
"""The alarm code of a broker that will not let the site read its receipts."""


def receipts_refused(topic: str, user: str | None, how: str) -> str:
    """What happened, and what to do, when the broker refuses the site's receipt subscription: results
    could still be published but never settled, so the relay stays disconnected and says why."""
    return (f"the broker refused the subscription to {topic} ({how}): no receipt can reach this site, so no "
            f"result is ever settled; the province's broker ACL must let user {user or '(anonymous)'} read this "
            "site's receipts; see docs/uplink.md")


def dumps(doc: dict[str, Any]) -> bytes:
    """A message body: compact JSON, UTF-8."""
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()


def leaf(err: BaseException) -> BaseException:
    """The first real exception inside (nested) exception groups: what the operator should read."""
    while isinstance(err, BaseExceptionGroup) and err.exceptions:
        err = err.exceptions[0]
    return err
