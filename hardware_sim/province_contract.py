"""The uplink contract as the simulated province reads it: from the AsyncAPI document, not from station code.

A test double is written from the contract, not from the code it checks. So the province takes
its topics and message schemas from docs/asyncapi.yaml: each channel's `address`
(`examstation/v1/{site}/{station}/result`, `examstation/v1/{site}/receipt`) and the JSON Schema
file each message's `payload.$ref` names, relative to the AsyncAPI file
(`../station/uplink/schemas/result.json`). It reads those JSON files; it imports nothing from
`station`. A topic or schema the station changes without changing the document is then a result
the province does not hear or rejects, which is the point.

The schemas are checked with jsonschema-rs (a main dependency, so `python -m hardware_sim.province`
runs without the dev extras; ~5 us per result document where the pure-Python `jsonschema` takes
~0.7 ms, which would make the schema check the slowest step of draining a backlog).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema_rs
import yaml

ASYNCAPI = Path(__file__).resolve().parents[1] / "docs" / "asyncapi.yaml"
"""The contract of a source checkout (the simulator is a tool of the source tree, like the tests)."""
_PARAMETER = re.compile(r"^\{([A-Za-z_][A-Za-z0-9_]*)\}$")
_LEVEL = re.compile(r"^[^/+#\x00]+$")
"""What one topic level may hold: non-empty, no '/', and no MQTT wildcard."""


class ContractError(ValueError):
    """The contract document, a topic, a broker address or a message breaks the contract; the
    message says which and what was expected."""


@dataclass(frozen=True, slots=True)
class TopicTemplate:
    """A channel address such as `examstation/v1/{site}/{station}/result`: each `{name}` is one level."""

    address: str

    def __post_init__(self) -> None:
        for level in self.address.split("/"):
            if not _PARAMETER.match(level) and not _LEVEL.match(level):
                raise ContractError(f"channel address {self.address!r}: level {level!r} is neither a "
                                    "{parameter} nor a plain topic level")

    @property
    def levels(self) -> tuple[str, ...]:
        return tuple(self.address.split("/"))

    @property
    def parameters(self) -> tuple[str, ...]:
        return tuple(m.group(1) for level in self.levels if (m := _PARAMETER.match(level)))

    @property
    def filter(self) -> str:
        """The subscription filter matching every topic of this channel (each parameter as `+`)."""
        return "/".join("+" if _PARAMETER.match(level) else level for level in self.levels)

    def parse(self, topic: str) -> dict[str, str]:
        """The parameters of `topic` by name; ContractError when `topic` is not an address of this channel."""
        got = topic.split("/")
        if len(got) != len(self.levels):
            raise ContractError(f"{topic!r} is not a topic of {self.address} ({len(got)} levels, expected "
                                f"{len(self.levels)})")
        out: dict[str, str] = {}
        for want, level in zip(self.levels, got, strict=True):
            m = _PARAMETER.match(want)
            if m is None:
                if level != want:
                    raise ContractError(f"{topic!r} is not a topic of {self.address} ({level!r} where {want!r} "
                                        "belongs)")
            elif not _LEVEL.match(level):
                raise ContractError(f"{topic!r}: {m.group(1)} {level!r} cannot be a topic level")
            else:
                out[m.group(1)] = level
        return out

    def format(self, **values: str) -> str:
        """The topic with each `{name}` replaced by `values[name]`."""
        if set(values) != set(self.parameters):
            raise ContractError(f"{self.address} takes {sorted(self.parameters)}, got {sorted(values)}")
        out = []
        for level in self.levels:
            m = _PARAMETER.match(level)
            if m is None:
                out.append(level)
                continue
            value = values[m.group(1)]
            if not _LEVEL.match(value):
                raise ContractError(f"{m.group(1)} {value!r} cannot be a topic level: it must be non-empty "
                                    "without '/', '+' or '#'")
            out.append(value)
        return "/".join(out)


@dataclass(frozen=True, slots=True)
class Channel:
    name: str
    topic: TopicTemplate
    schemas: Mapping[str, Path]
    """Message name -> the JSON Schema file of its payload, in the document's order. Most channels
    carry one message; the receipt channel carries result receipts and acceptance receipts."""

    @property
    def schema_path(self) -> Path:
        """The payload schema of the channel's first message."""
        return next(iter(self.schemas.values()))


class Contract:
    """The channels of an AsyncAPI 3 document with their payload schemas: `Contract.load()`."""

    def __init__(self, source: Path, channels: Mapping[str, Channel]) -> None:
        self.source = source
        self.channels = dict(channels)
        self._validators: dict[tuple[str, str], jsonschema_rs.Validator] = {}
        for name, channel in self.channels.items():
            for message, path in channel.schemas.items():
                try:
                    schema = json.loads(path.read_text(encoding="utf-8"))
                    self._validators[name, message] = jsonschema_rs.validator_for(schema)
                except (OSError, ValueError) as err:
                    raise ContractError(f"{source}: the schema of message {message} of channel {name}, {path}, "
                                        f"cannot be used ({err})") from err

    @classmethod
    def load(cls, asyncapi: Path = ASYNCAPI) -> Contract:
        """Read the AsyncAPI document; every channel with its messages, each payload a `$ref` to a file."""
        try:
            doc = yaml.safe_load(asyncapi.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as err:
            raise ContractError(f"the uplink contract {asyncapi} cannot be read ({err}); the simulated province "
                                "needs the AsyncAPI document of a source checkout (docs/asyncapi.yaml)") from err
        if not isinstance(doc, dict) or not isinstance(doc.get("channels"), dict):
            raise ContractError(f"{asyncapi} is no AsyncAPI document: it has no `channels`")
        channels = {}
        for name, raw in doc["channels"].items():
            channel = _resolve(doc, raw, asyncapi)
            messages = channel.get("messages")
            if not isinstance(messages, dict) or not messages:
                raise ContractError(f"{asyncapi}: channel {name} must carry at least one message")
            schemas = {}
            for key, raw_message in messages.items():
                message = _resolve(doc, raw_message, asyncapi)
                payload = message.get("payload")
                ref = payload.get("$ref") if isinstance(payload, dict) else None
                if not isinstance(ref, str) or ref.startswith("#"):
                    raise ContractError(f"{asyncapi}: message {key} of channel {name} must name its payload schema "
                                        "file with payload.$ref")
                schemas[key] = (asyncapi.parent / ref).resolve()
            address = channel.get("address")
            if not isinstance(address, str):
                raise ContractError(f"{asyncapi}: channel {name} has no address")
            channels[name] = Channel(name, TopicTemplate(address), schemas)
        return cls(asyncapi, channels)

    def channel(self, name: str) -> Channel:
        try:
            return self.channels[name]
        except KeyError:
            raise ContractError(f"{self.source} has no channel {name!r} (it has {sorted(self.channels)})") from None

    def problems(self, channel: str, message: Any, kind: str | None = None) -> list[str]:
        """Every way `message` breaks the payload schema of `channel` (of its message `kind` when the
        channel carries several), each as '$.json.path: what is wrong'."""
        schemas = self.channel(channel).schemas
        if kind is None:
            if len(schemas) != 1:
                raise ContractError(f"channel {channel} carries {sorted(schemas)}: name the message")
            kind = next(iter(schemas))
        elif kind not in schemas:
            raise ContractError(f"channel {channel} carries no message {kind!r} (it has {sorted(schemas)})")
        return sorted(f"{_json_path(err.instance_path)}: {err.message}"
                      for err in self._validators[channel, kind].iter_errors(message))


def _json_path(path: Sequence[str | int]) -> str:
    """`$.items[0].code`: where in the message a problem is, as a provincial engineer's tools write it."""
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)


def _resolve(doc: Mapping[str, Any], node: Any, source: Path) -> dict[str, Any]:
    """`node`, or what its local `$ref` (`#/components/...`) points at."""
    seen = 0
    while isinstance(node, dict) and isinstance(node.get("$ref"), str) and node["$ref"].startswith("#/"):
        seen += 1
        if seen > 16:
            raise ContractError(f"{source}: $ref chain too long at {node['$ref']}")
        target: Any = doc
        for part in node["$ref"][2:].split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(target, dict) or part not in target:
                raise ContractError(f"{source}: $ref {node['$ref']} points at nothing")
            target = target[part]
        node = target
    if not isinstance(node, dict):
        raise ContractError(f"{source}: expected an object, found {node!r}")
    return node


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    host: str
    port: int


def parse_broker_url(url: str) -> BrokerAddress:
    """mqtt://HOST[:PORT] (port 1883 by default): the simulated province speaks plain MQTT only, to a
    broker on this machine or the test network."""
    parts = urlsplit(url)
    try:
        host, port = parts.hostname, parts.port or 1883
    except ValueError:
        host = None
    if parts.scheme != "mqtt" or not host or parts.path.strip("/") or parts.username or parts.query:
        raise ContractError(f"broker address {url!r}: the simulated province takes mqtt://HOST:PORT "
                            "(plain MQTT, no TLS, user name, path or query; a port from 1 to 65535)")
    return BrokerAddress(host, port)
