"""The MQTT contract with the provincial exam server: topics, message schemas, broker addresses.

This module is the contract and nothing else (no client, no IO beyond reading the schema files
shipped beside it), so the simulated province (hardware_sim.province) checks messages against
exactly what the station promises. docs/asyncapi.yaml refers to the same schema files.

Topics (DESIGN.md "MQTT contract"):
    examstation/v1/{site}/status            retained, QoS 1: birth manifest; `offline` as the will
    examstation/v1/{site}/status/{box}      the same, per box, for a hall split over boxes (docs/boxes.md)
    examstation/v1/{site}/{station}/result  QoS 1: the signed result document
    examstation/v1/{site}/{station}/live    QoS 0: live state for remote invigilation (optional)
    examstation/v1/{site}/receipt           QoS 1, from the province: what it did with a result, or
                                            with an acceptance message (told apart by `schema`)
    examstation/v1/{site}/acceptance        QoS 1: site-check's uplink probe, or its signed report
"""

from __future__ import annotations

import functools
import json
import re
import socket
from dataclasses import dataclass
from importlib import resources
from typing import Any, Literal
from urllib.parse import urlsplit

import jsonschema_rs

PREFIX = "examstation/v1"
RESULT_FILTER = f"{PREFIX}/+/+/result"
"""What a provincial server subscribes to: every station's results of every site."""
RECEIPT_FILTER = f"{PREFIX}/+/receipt"
SchemaName = Literal["result", "status", "receipt", "live", "acceptance", "acceptance_receipt"]
SCHEMA_NAMES: tuple[SchemaName, ...] = ("result", "status", "receipt", "live", "acceptance", "acceptance_receipt")
ACCEPTANCE_SCHEMA = "examstation/acceptance/v1"
ACCEPTANCE_RECEIPT_SCHEMA = "examstation/acceptance-receipt/v1"
"""An acceptance receipt shares the receipt topic with result receipts (the broker ACL a site
already has covers it); its `schema` member tells the two apart, and it settles no result."""
NO_DELAY = ((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),)
"""Socket options for every MQTT client here. paho leaves Nagle's algorithm on, so a receipt or a
result written right after a PUBACK waits for the peer's delayed ACK: ~40 ms a hop on Linux,
which made one result's round trip ~85 ms instead of a few."""
_SEGMENT = re.compile(r"^[^/+#\x00]+$")


class ContractError(ValueError):
    """A topic, broker address or message does not follow the contract; the message says which part."""


def _segment(kind: str, value: str) -> str:
    if not _SEGMENT.match(value):
        raise ContractError(f"{kind} {value!r} cannot be a topic level: it must be non-empty without '/', '+' or '#'")
    return value


def status_topic(site: str, box: str | None = None) -> str:
    """The site's retained status; a box of a split hall has its own beneath it, so one box's will
    never overwrites another's birth (`examstation/v1/+/status/#` hears both kinds)."""
    topic = f"{PREFIX}/{_segment('site id', site)}/status"
    return topic if box is None else f"{topic}/{_segment('box id', box)}"


def result_topic(site: str, station: str) -> str:
    return f"{PREFIX}/{_segment('site id', site)}/{_segment('station id', station)}/result"


def live_topic(site: str, station: str) -> str:
    return f"{PREFIX}/{_segment('site id', site)}/{_segment('station id', station)}/live"


def live_filter(site: str) -> str:
    """Every station's live topic of one site: what the boxes of a split hall subscribe to."""
    return f"{PREFIX}/{_segment('site id', site)}/+/live"


def parse_live_topic(topic: str) -> tuple[str, str]:
    """(site, station) of a live topic."""
    return _parse_station_topic(topic, "live")


def receipt_topic(site: str) -> str:
    return f"{PREFIX}/{_segment('site id', site)}/receipt"


def acceptance_topic(site: str) -> str:
    return f"{PREFIX}/{_segment('site id', site)}/acceptance"


def parse_result_topic(topic: str) -> tuple[str, str]:
    """(site, station) of a result topic."""
    return _parse_station_topic(topic, "result")


def _parse_station_topic(topic: str, kind: str) -> tuple[str, str]:
    parts = topic.split("/")
    if len(parts) != 5 or "/".join(parts[:2]) != PREFIX or parts[4] != kind:
        raise ContractError(f"{topic!r} is not a {kind} topic ({PREFIX}/SITE/STATION/{kind})")
    return parts[2], parts[3]


@functools.cache
def schema(name: SchemaName) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of one message kind, from station/uplink/schemas/."""
    text = resources.files("station.uplink").joinpath("schemas", f"{name}.json").read_text(encoding="utf-8")
    value: dict[str, Any] = json.loads(text)
    return value


@functools.cache
def _validator(name: SchemaName) -> jsonschema_rs.Draft202012Validator:
    # jsonschema-rs: ~5 us per result document where the pure-Python jsonschema takes ~0.7 ms,
    # which would make schema checks the slowest step of draining a backlog
    return jsonschema_rs.Draft202012Validator(schema(name))


def problems(name: SchemaName, message: Any) -> list[str]:
    """Every way `message` breaks the `name` schema, each as 'path: what is wrong' (empty when valid)."""
    validator = _validator(name)
    if validator.is_valid(message):
        return []
    out = []
    for err in validator.iter_errors(message):
        where = "/".join(str(p) for p in err.instance_path) or "(document)"
        out.append(f"{where}: {err.message}")
    return sorted(out)


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    host: str
    port: int
    tls: bool

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'mqtts' if self.tls else 'mqtt'}://{host}:{self.port}"


def parse_broker_url(url: str) -> BrokerAddress:
    """mqtt://HOST[:PORT] (1883) or mqtts://HOST[:PORT] (8883)."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname or parts.path not in ("", "/"):
        raise ContractError(f"broker address {url!r}: write it as mqtt://HOST:PORT or mqtts://HOST:PORT")
    if parts.username is not None or parts.query or parts.fragment:
        raise ContractError(f"broker address {url!r}: only mqtt(s)://HOST:PORT; the user name goes in "
                            "uplink.username and the password in the file uplink.password_file names")
    try:
        port = parts.port
    except ValueError as err:
        raise ContractError(f"broker address {url!r}: the port is not a number from 1 to 65535") from err
    if port == 0:
        raise ContractError(f"broker address {url!r}: the port is not a number from 1 to 65535")
    tls = parts.scheme == "mqtts"
    return BrokerAddress(parts.hostname, port if port is not None else (8883 if tls else 1883), tls)
