"""The simulated province is an independent implementation of the uplink contract.

A test double is written from the contract, not by importing the code it checks, so:

- (a) hardware_sim.province and every hardware_sim module it uses import nothing from `station`,
  checked on the source (relative and dynamic imports included) and in a fresh interpreter;
- (b) over a real mosquitto, a plain aiomqtt client publishes real signed results on the topics
  docs/asyncapi.yaml names; the province stores them and answers with receipts signed by its
  own Ed25519 key, checked here with the recipe of docs/uplink.md (the `rfc8785` package, not the
  province's hardware_sim.jcs), in the single and the batch form; its forgery faults make
  receipts that do not verify;
- (c) it rejects a result published on a topic its document does not name, and one that breaks
  the result schema, each with a signed `rejected` receipt on the topic's site.
"""

from __future__ import annotations

import ast
import asyncio
import base64
import contextlib
import hashlib
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from hardware_sim.mosquitto import Mosquitto
from hardware_sim.province import ProvinceFaults, ProvinceServer
from station.signing import SiteKey
from station.uplink import contract
from tests.uplink_kit import ResultFactory, WireTap, site_config, station_database, stored_results, wait_until

ROOT = Path(__file__).resolve().parents[2]
SITE = "GD-SZ-0101"
RESULT_TOPIC = "examstation/v1/{site}/{station}/result"
RECEIPT_FILTER = "examstation/v1/+/receipt"
"""The addresses as docs/asyncapi.yaml writes them, on purpose not taken from any of our code."""


# -- (a) no station code in the province ------------------------------------------------------
def _imported(tree: ast.AST, package: str) -> set[str]:
    """Every module name `tree` imports, relative imports resolved against `package` (the package
    the module lives in) and dynamic ones (`importlib.import_module("x")`, `__import__("x")`,
    `resources.files("x")`) read from their literal argument."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = parts[:len(parts) - node.level + 1] if node.level <= len(parts) else []
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            if prefix:
                names.add(prefix)
            names.update(f"{prefix}.{a.name}".lstrip(".") for a in node.names if a.name != "*")
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            if called in ("import_module", "__import__", "files", "find_spec") and isinstance(node.args[0].value, str):
                names.add(node.args[0].value)
    return names


def _module_file(name: str) -> Path | None:
    path = ROOT.joinpath(*name.split("."))
    for candidate in (path.with_suffix(".py"), path / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def province_imports(start: str = "hardware_sim.province") -> dict[str, set[str]]:
    """Module -> what it imports, for `start`, its packages' __init__ and every hardware_sim module
    it reaches."""
    todo, out = [start], {}
    while todo:
        name = todo.pop()
        if name in out:
            continue
        path = _module_file(name)
        if path is None:
            continue
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        out[name] = _imported(ast.parse(path.read_text(encoding="utf-8")), package)
        parents = [".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)]
        todo += [n for n in (*out[name], *parents) if n.split(".")[0] == "hardware_sim"]
    return out


def _station(names: set[str]) -> set[str]:
    return {n for n in names if n.split(".")[0] == "station"}


def test_the_import_check_sees_every_way_of_importing_station() -> None:
    source = """
import station
from station.uplink import contract
from ..station import signing
from .. import station as s2
import importlib
importlib.import_module("station.uplink.contract")
from importlib import resources
resources.files("station.uplink")
"""
    found = _imported(ast.parse(source), "hardware_sim")
    assert _station(found) >= {"station", "station.uplink", "station.signing", "station.uplink.contract"}
    assert "station" in _station(_imported(ast.parse("from .. import station"), "hardware_sim"))
    assert not _station(_imported(ast.parse("from . import jcs\nx = {'station': 1}['station']"), "hardware_sim"))


def test_the_province_imports_nothing_from_station() -> None:
    modules = province_imports()
    assert {"hardware_sim.province", "hardware_sim.province_contract", "hardware_sim.province_key",
            "hardware_sim.jcs"} <= set(modules), sorted(modules)
    bad = {module: sorted(_station(names)) for module, names in modules.items() if _station(names)}
    assert not bad, f"the simulated province must follow the contract, not import the station: {bad}"


def test_importing_the_province_loads_no_station_module() -> None:
    code = ("import sys, hardware_sim.province\n"
            "print(sorted(m for m in sys.modules if m == 'station' or m.startswith('station.')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                         check=True)
    assert out.stdout.strip() == "[]", out.stdout


# -- (b), (c) on a real broker ----------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Receipt:
    topic: str
    message: dict[str, Any]

    @property
    def entries(self) -> list[dict[str, Any]]:
        receipts = self.message.get("receipts")
        return list(receipts) if isinstance(receipts, list) else [self.message]


class ReceiptWire(WireTap):
    """Every message on examstation/v1/+/receipt from the moment `async with` returns."""

    def __init__(self, broker: Mosquitto) -> None:
        super().__init__(broker, RECEIPT_FILTER, "receipt-wire")

    @property
    def seen(self) -> list[Receipt]:
        return [Receipt(h.topic, json.loads(h.payload)) for h in self.heard]

    def entry(self, result_id: str) -> list[tuple[Receipt, dict[str, Any]]]:
        return [(r, e) for r in self.seen for e in r.entries if e.get("result_id") == result_id]

    async def wait_for(self, result_id: str, copies: int = 1, timeout_s: float = 10.0) -> Receipt:
        await wait_until(lambda: len(self.entry(result_id)) >= copies, timeout_s, every_s=0.01)
        return self.entry(result_id)[copies - 1][0]


@dataclass
class Results:
    broker: Mosquitto
    key: SiteKey
    docs: list[dict[str, Any]]
    """Real signed results of the example site, in seq order."""

    @contextlib.asynccontextmanager
    async def heard_by(self, keys: Mapping[str, str] | None = None, **province: Any) -> AsyncIterator[
            tuple[ProvinceServer, ReceiptWire, aiomqtt.Client]]:
        """A connected province (trusting this site's key unless `keys` says otherwise), a tap on the
        receipt topics, and a plain MQTT client to publish results with."""
        async with (ProvinceServer(self.broker.url, keys=keys or {SITE: self.key.public_pem()}, **province) as prov,
                    ReceiptWire(self.broker) as wire,
                    aiomqtt.Client(self.broker.host, self.broker.port, identifier="plain-station") as client):
            async with asyncio.timeout(10):
                await prov.connected.wait()
            yield prov, wire, client

    async def publish(self, client: aiomqtt.Client, doc: Mapping[str, Any], *, site: str | None = None,
                      station: str | None = None) -> None:
        topic = RESULT_TOPIC.format(site=site or doc["site"], station=station or doc["station"])
        await client.publish(topic, json.dumps(doc, ensure_ascii=False).encode(), qos=1)


@pytest.fixture
async def results(tmp_path: Path) -> AsyncIterator[Results]:
    async with Mosquitto() as broker:
        with station_database(tmp_path / "data", site_config(broker.url)) as (db, key):
            await asyncio.to_thread(ResultFactory(db, key).add, 7)
            docs = [doc for _rid, _seq, doc in stored_results(db)]
        assert {d["site"] for d in docs} == {SITE}
        yield Results(broker, key, docs)


def key_id_of(public_pem: str) -> str:
    key = serialization.load_pem_public_key(public_pem.encode())
    assert isinstance(key, Ed25519PublicKey)
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "ed25519:" + hashlib.sha256(raw).hexdigest()[:16]


def verifies(message: Mapping[str, Any], public_pem: str) -> bool:
    """docs/uplink.md's recipe: Ed25519 over the RFC 8785 bytes of the message without `signature`."""
    sig = message.get("signature")
    key = serialization.load_pem_public_key(public_pem.encode())
    if not isinstance(sig, Mapping) or sig.get("alg") != "Ed25519" or not isinstance(key, Ed25519PublicKey):
        return False
    body = {k: v for k, v in message.items() if k != "signature"}
    try:
        key.verify(base64.b64decode(sig["value"], validate=True), rfc8785.dumps(body))
    except (InvalidSignature, ValueError, KeyError):
        return False
    return True


def unsigned(message: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in message.items() if k != "signature"}


async def test_receipts_single_and_batch_are_signed_by_the_province(results: Results) -> None:
    held: list[int] = []

    def hold_the_second(doc: Mapping[str, Any]) -> str | None:
        """Hold the second result a moment in the province's worker (and accept it): the ones after
        it pile up and are answered in one batch message."""
        if doc["seq"] == 2 and not held:
            held.append(2)
            time.sleep(0.3)
        return None

    faults = ProvinceFaults(reject_when=hold_the_second)
    docs = results.docs
    async with results.heard_by(faults=faults, sign_receipts=True) as (province, wire, client):
        public = province.public_pem()
        assert province.key_id == key_id_of(public)

        # one result alone: a single receipt
        await results.publish(client, docs[0])
        single = await wire.wait_for(docs[0]["result_id"])
        # the rest at once, and the first again: a batch with `stored` and `duplicate` entries
        await asyncio.gather(*(results.publish(client, d) for d in [*docs[1:5], docs[0]]))
        for d in docs[1:5]:
            await wire.wait_for(d["result_id"])
        await wire.wait_for(docs[0]["result_id"], copies=2)
        assert province.stored(SITE) == 5 and province.stats.duplicates == 1 and province.rejections() == []

    assert single.topic == f"examstation/v1/{SITE}/receipt"
    assert "receipts" not in single.message and single.message["status"] == "stored"
    batches = [r for r in wire.seen if "receipts" in r.message]
    assert batches, "no batch of receipts came: the piled-up results should have been answered together"
    assert {e["status"] for r in batches for e in r.entries} >= {"stored"}
    duplicate = [e for _, e in wire.entry(docs[0]["result_id"])][1]
    assert duplicate["status"] == "duplicate" and duplicate["stored_at"] == single.message["stored_at"]
    for r in wire.seen:
        assert r.topic == f"examstation/v1/{SITE}/receipt"
        sig = r.message["signature"]
        assert set(sig) == {"alg", "key_id", "value"} and sig["alg"] == "Ed25519"
        assert sig["key_id"] == province.key_id
        assert verifies(r.message, public), f"receipt does not verify with the province's key: {r.message}"
        assert not verifies(r.message, results.key.public_pem())
        # signed, the message is what the station's receipt schema describes; unsigned, it is not
        assert contract.problems("receipt", r.message) == []
        assert contract.problems("receipt", unsigned(r.message)) != []
        for entry in r.entries:
            assert {"result_id", "seq", "status"} <= set(entry)
    by_id = {e["result_id"]: e for r in wire.seen for e in r.entries if e["status"] == "stored"}
    assert {rid: e["seq"] for rid, e in by_id.items()} == {d["result_id"]: d["seq"] for d in docs[:5]}


async def test_forgery_faults_make_receipts_that_do_not_verify(results: Results) -> None:
    forger = Ed25519PrivateKey.generate()
    forger_pem = forger.public_key().public_bytes(serialization.Encoding.PEM,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    faults = ProvinceFaults()
    async with results.heard_by(faults=faults, sign_receipts=True, batch_receipts=False) as (province, wire, client):
        faults.sign_with = forger
        await results.publish(client, results.docs[0])
        forged = await wire.wait_for(results.docs[0]["result_id"])
        faults.sign_with, faults.unsigned_receipts = None, True
        await results.publish(client, results.docs[1])
        bare = await wire.wait_for(results.docs[1]["result_id"])
        faults.unsigned_receipts = False
        await results.publish(client, results.docs[2])
        honest = await wire.wait_for(results.docs[2]["result_id"])
    assert forged.message["signature"]["key_id"] == province.key_id  # it claims to be the province
    assert not verifies(forged.message, province.public_pem()) and verifies(forged.message, forger_pem)
    assert "signature" not in bare.message
    assert verifies(honest.message, province.public_pem())


async def test_unsigned_receipts_when_signing_is_off(results: Results) -> None:
    async with results.heard_by(sign_receipts=False) as (_province, wire, client):
        await results.publish(client, results.docs[0])
        receipt = await wire.wait_for(results.docs[0]["result_id"])
    # the contract requires the signature: a station drops this receipt (test_forged_receipts)
    assert "signature" not in receipt.message
    assert contract.problems("receipt", receipt.message) == ['(document): "signature" is a required property']


async def test_a_result_on_a_topic_its_document_does_not_name_is_rejected(results: Results) -> None:
    doc = results.docs[0]
    assert doc["station"] != "A02"
    both = {SITE: results.key.public_pem(), "GD-GZ-0202": results.key.public_pem()}
    async with results.heard_by(both, sign_receipts=True) as (province, wire, client):
        await results.publish(client, doc, station="A02")
        other_station = await wire.wait_for(doc["result_id"])
        await results.publish(client, doc, site="GD-GZ-0202")
        other_site = await wire.wait_for(doc["result_id"], copies=2)
        # a topic that is no result topic of the contract is not even heard
        await client.publish(f"examstation/v1/{SITE}/A01/results", json.dumps(doc).encode(), qos=1)
        await results.publish(client, results.docs[1])
        await wire.wait_for(results.docs[1]["result_id"])
        assert [rid for rid, _ in province.rejections()] == [doc["result_id"]] * 2

    assert other_station.topic == f"examstation/v1/{SITE}/receipt"
    assert other_station.message["status"] == "rejected"
    reason = other_station.message["reason"]
    assert f"{SITE}/A02" in reason and f"{SITE}/{doc['station']}" in reason, reason
    assert other_site.topic == "examstation/v1/GD-GZ-0202/receipt"  # answered on the site of the topic
    assert other_site.message["status"] == "rejected" and "GD-GZ-0202" in other_site.message["reason"]
    for r in (other_station, other_site):
        assert r.message["seq"] == doc["seq"] and "stored_at" not in r.message
        assert verifies(r.message, province.public_pem())
    assert province.stored(SITE) == 1 and province.seqs(SITE) == {results.docs[1]["seq"]}
    assert province.stats.malformed == 0  # the wrong topic matched no subscription at all


async def test_a_result_that_breaks_the_schema_is_rejected(results: Results) -> None:
    broken = {k: v for k, v in results.docs[0].items() if k != "total"}
    broken = results.key.sign(broken)  # properly signed by the site: only the schema is wrong
    extra = results.key.sign({**results.docs[1], "grade": "A"})
    async with results.heard_by(sign_receipts=True) as (province, wire, client):
        await results.publish(client, broken)
        missing = await wire.wait_for(broken["result_id"])
        await results.publish(client, extra)
        unknown = await wire.wait_for(extra["result_id"])
        assert [rid for rid, _ in province.rejections()] == [broken["result_id"], extra["result_id"]]
    for r, word in ((missing, "total"), (unknown, "grade")):
        assert r.message["status"] == "rejected" and r.message["reason"].startswith("schema: "), r.message
        assert word in r.message["reason"], r.message["reason"]
        assert verifies(r.message, province.public_pem())
    assert province.stored(SITE) == 0


async def test_the_command_line_keeps_the_province_key_and_prints_where_its_public_half_is(
        results: Results, tmp_path: Path) -> None:
    key_path = tmp_path / "keys" / "province.pem"
    cmd = [sys.executable, "-m", "hardware_sim.province", "--broker", results.broker.url, "--report-every", "3600",
           "--province-key", str(key_path), "--sign-receipts", "--client-id", "province-cli"]
    for run in range(2):
        proc = await asyncio.create_subprocess_exec(*cmd, cwd=ROOT, stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.DEVNULL)
        try:
            assert proc.stdout is not None
            async with asyncio.timeout(20):
                first = (await proc.stdout.readline()).decode()
                second = (await proc.stdout.readline()).decode()
        finally:
            proc.terminate()
            await proc.wait()
        assert first.startswith("province: receiving on "), first
        public_path = key_path.with_name("province.pub.pem")
        assert str(public_path) in second and "receipts signed" in second, second
        assert key_path.stat().st_mode & 0o077 == 0  # the private key is the province's alone
        public = public_path.read_text(encoding="utf-8")
        assert key_id_of(public) in second
        if run == 0:
            first_public = public
    assert public == first_public  # the second run used the key the first one created


async def test_a_later_result_signed_over_an_earlier_audit_checkpoint_is_a_rollback(results: Results) -> None:
    """Each result carries the station's audit head when it was signed (docs/verify.md): a later
    seq with a lower head means the station's database was cut back. Both are stored; the
    province counts the rollback for people to chase."""
    first, second, third = (results.key.sign({**unsigned(d), "audit_checkpoint": {"seq": n, "entry_hash": "ab" * 32}})
                            for d, n in zip(results.docs[:3], (50, 40, 60), strict=True))
    async with results.heard_by(sign_receipts=True) as (province, wire, client):
        for doc in (first, second, third):
            await results.publish(client, doc)
            await wire.wait_for(doc["result_id"])
        assert province.stored(SITE) == 3
        assert province.stats.rollbacks_seen == 1
