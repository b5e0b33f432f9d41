"""The MQTT contract as data: the four JSON Schemas, docs/asyncapi.yaml, topics, broker addresses,
the status messages, the attempt snapshot and the resend backoff.

Two validators judge every document: the contract's own (jsonschema-rs, `contract.problems`) and
the pure-Python `jsonschema` as an independent reference, so a schema that one engine reads
differently from the other shows up here rather than at a province running the other engine.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import itertools
import json
import random
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from scoring.rubric import Rubric
from scoring.rubric_loader import rubric_for
from station import attempt_snapshot
from station import session as sm
from station.config import load_site_config
from station.signing import SiteKey, verify
from station.uplink import backoff, contract, manifest, outbox
from station.uplink.contract import ContractError

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_DIR = ROOT / "station" / "uplink" / "schemas"
ASYNCAPI = ROOT / "docs" / "asyncapi.yaml"
CONFIG = load_site_config(ROOT / "examples" / "site.yaml")
S = 1_000_000_000
NOW_NS = 1_790_000_000 * S
RID = "019a1b2c-3d4e-7f00-8a1b-2c3d4e5f6a7b"
AID = "019a1b2c-3d4e-7f00-9a1b-2c3d4e5f6a7c"
KEY = SiteKey(Ed25519PrivateKey.generate())


def reference(name: contract.SchemaName) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(contract.schema(name))


def judged(name: contract.SchemaName, doc: Any) -> tuple[bool, bool]:
    """(valid for jsonschema, valid for the contract's jsonschema-rs)."""
    return reference(name).is_valid(doc), contract.problems(name, doc) == []


# -- documents ---------------------------------------------------------------------------------------
def result_doc() -> dict[str, Any]:
    """A signed result in the shape station.result_document builds (one item, one deduction, one mark)."""
    line = {"row": "K31-2", "code": "K31-2a", "points": 5, "count": 1, "reason": "未指出危险点",
            "detail": "examiner mark", "t_from": "2026-11-28T01:02:03.000Z", "t_to": "2026-11-28T01:02:13.000Z",
            "video_offset_s": 12.5,
            "video": [{"camera": "overview", "segment_id": "A01-overview-20261128T010200.000000Z", "offset_s": 3.0}]}
    doc = {
        "schema": "examstation/result/v1", "result_id": RID, "attempt_id": AID, "seq": 1,
        "site": "GD-SZ-0101", "station": "A01", "operation": "低压电工作业",
        "candidate": {"id_number": "11010519491231002X", "name": "张三", "batch": "B-2026-11"},
        "rubric": {"id": "lv-electrician-2015", "hash": "sha256:" + "ab" * 32},
        "items": [{
            "code": "K31", "subject": "K3", "title_zh": "作业现场安全隐患排除", "weight": 0.2, "score": 95,
            "auto_score": 95, "outcome": "scored", "end_reason": "done", "refused_to_sign": False, "active_s": 310.4,
            "time_limit_s": 600, "started_at": "2026-11-28T01:00:00.000Z", "ended_at": "2026-11-28T01:05:10.400Z",
            "deductions": [], "manual_marks": [line], "overrides": [], "vetoes": [],
        }],
        "total": 95, "pass_total": 80, "passed": False, "veto_failed": False, "complete": False,
        "signed_by": ["考评员甲", "考评员乙"], "signed_at": "2026-11-28T01:10:00.000Z",
        "evidence": [{"segment_id": "A01-overview-20261128T010200.000000Z", "sha256": "cd" * 32, "camera": "overview",
                      "from": "2026-11-28T01:02:00.000Z", "to": "2026-11-28T01:02:10.000Z", "frames": 100,
                      "size_bytes": 1234567, "recovered": False}],
        "video_gaps": [{"camera": "overview", "from": "2026-11-28T01:04:00.000Z", "to": None,
                        "cause": "no frames for 2.0 s"}],
        "checkin_stills": [{"camera": "overview", "sha256": "ef" * 32, "at": "2026-11-28T00:59:00.000Z"}],
        "software": "examstation 0.1.0",
        "audit_checkpoint": {"seq": 41, "entry_hash": "ab" * 32},
    }
    return KEY.sign(doc)


PROVINCE = SiteKey(Ed25519PrivateKey.generate())
"""Receipts are signed by the province's key, the same way results are signed by the site's."""


def _receipt_body(status: str) -> dict[str, Any]:
    doc: dict[str, Any] = {"schema": "examstation/receipt/v1", "result_id": RID, "seq": 1, "status": status}
    if status == "rejected":
        doc["reason"] = "signature does not verify against the key registered for this site"
    else:
        doc["stored_at"] = "2026-11-28T01:10:00.123Z"
    return doc


def receipt_single(status: str = "stored") -> dict[str, Any]:
    return PROVINCE.sign(_receipt_body(status))


def receipt_batch() -> dict[str, Any]:
    entries = [{k: v for k, v in _receipt_body(s).items() if k != "schema"} for s in ("stored", "duplicate",
                                                                                      "rejected")]
    return PROVINCE.sign({"schema": "examstation/receipt/v1", "receipts": entries})


def live_doc() -> dict[str, Any]:
    return {"schema": "examstation/live/v1", "site": "GD-SZ-0101", "station": "A01", "at": "2026-11-28T01:02:03.456Z",
            "attempt_id": AID, "state": "running", "item": "K31", "remaining_s": 289.6,
            "devices": {"bench": True, "manikin": False}}


def check_json(passed: bool = True) -> dict[str, Any]:
    """One check as station.site_check.report.Check.to_json writes it."""
    return {"id": "camera:A01/overview", "category": "camera", "station": "A01", "subject": "overview",
            "title": "A01 camera overview delivers its declared stream", "status": "pass" if passed else "fail",
            "detail": "h264 1920x1080 at 25.0 fps, keyframe every 2.0 s" if passed else "no frame in 10 s",
            "fix": None if passed else "check the camera's power and network cable", "figures": {"fps": 25.0,
            "width": 1920, "frozen": False, "codec": "h264", "gap_s": None}, "source": None}


def site_check_report() -> dict[str, Any]:
    return {"schema": "examstation/site-check/v1",
            "site": {"id": "GD-SZ-0101", "name": "深圳市第一职业技能鉴定考点", "province": "广东"},
            "checked_at": "2026-12-05T08:00:00Z", "software": {"name": "examstation", "version": "0.1.0"},
            "verdict": "fail", "counts": {"pass": 1, "fail": 1}, "checks": [check_json(), check_json(False)],
            "snapshots": ["A01/overview"]}


def acceptance_probe() -> dict[str, Any]:
    return KEY.sign({"schema": "examstation/acceptance/v1", "kind": "probe", "acceptance_id": RID,
                     "site": "GD-SZ-0101", "sent_at": "2026-12-05T08:00:00.123Z",
                     "software": {"name": "examstation", "version": "0.1.0"}})


def acceptance_report() -> dict[str, Any]:
    return KEY.sign({"schema": "examstation/acceptance/v1", "kind": "report", "acceptance_id": RID,
                     "site": "GD-SZ-0101", "sent_at": "2026-12-05T08:00:00.123Z", "report": site_check_report()})


def acceptance_receipt(status: str = "stored") -> dict[str, Any]:
    doc: dict[str, Any] = {"schema": "examstation/acceptance-receipt/v1", "acceptance_id": RID, "kind": "probe",
                           "status": status}
    if status == "rejected":
        doc.update(reason="the site signature does not verify", signature_ok=False)
    else:
        doc["stored_at"] = "2026-12-05T08:00:00.200Z"
    return PROVINCE.sign(doc)


@functools.cache
def rubrics() -> list[Rubric]:
    return [rubric_for(op) for op in sorted({st.operation for st in CONFIG.stations})]


def birth_doc(backlog: outbox.Backlog | None = None) -> dict[str, Any]:
    return manifest.birth(CONFIG, rubrics(), KEY.key_id, backlog or outbox.Backlog(0, 0, 0, None), NOW_NS)


VALID: list[tuple[contract.SchemaName, str, Any]] = [
    ("result", "signed result", result_doc()),
    ("receipt", "stored", receipt_single("stored")),
    ("receipt", "duplicate", receipt_single("duplicate")),
    ("receipt", "rejected", receipt_single("rejected")),
    ("receipt", "batch", receipt_batch()),
    ("live", "attempt running", live_doc()),
    ("live", "idle station", {**live_doc(), "attempt_id": None, "state": None, "item": None, "remaining_s": None,
                              "devices": {}}),
    ("status", "birth", birth_doc()),
    ("status", "will", manifest.offline("GD-SZ-0101")),
    ("status", "goodbye", manifest.offline("GD-SZ-0101", "shutdown", NOW_NS)),
    ("acceptance", "probe", acceptance_probe()),
    ("acceptance", "unsigned probe (no site key yet)", {k: v for k, v in acceptance_probe().items()
                                                        if k != "signature"}),
    ("acceptance", "report", acceptance_report()),
    ("acceptance_receipt", "stored", acceptance_receipt("stored")),
    ("acceptance_receipt", "duplicate", acceptance_receipt("duplicate")),
    ("acceptance_receipt", "rejected", acceptance_receipt("rejected")),
]


def _without(doc: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k != key}


def _changed(doc: dict[str, Any], path: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    target: Any = out
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    return out


def _batch_with_schema_entry() -> dict[str, Any]:
    doc = receipt_batch()
    doc["receipts"][0]["schema"] = "examstation/receipt/v1"
    return doc


INVALID: list[tuple[contract.SchemaName, str, Any]] = [
    ("result", "missing result_id", _without(result_doc(), "result_id")),
    ("result", "extra key", {**result_doc(), "comment": "x"}),
    ("result", "seq 0", {**result_doc(), "seq": 0}),
    ("result", "full-width digits in id_number", _changed(result_doc(), ("candidate", "id_number"),
                                                          "１１０１０５１９４９１２３１００２Ｘ")),
    ("result", "lower-case x check character", _changed(result_doc(), ("candidate", "id_number"),
                                                        "11010519491231002x")),
    ("result", "seq true", {**result_doc(), "seq": True}),
    ("result", "three examiners", {**result_doc(), "signed_by": ["甲", "乙", "丙"]}),
    ("result", "signature without value", _changed(result_doc(), ("signature",), {"alg": "Ed25519",
                                                                                 "key_id": KEY.key_id})),
    ("result", "UUIDv4 result_id", {**result_doc(), "result_id": "019a1b2c-3d4e-4f00-8a1b-2c3d4e5f6a7b"}),
    ("receipt", "rejected without reason", _without(receipt_single("rejected"), "reason")),
    ("receipt", "rejected with stored_at", {**receipt_single("rejected"), "stored_at": "2026-11-28T01:10:00Z"}),
    ("receipt", "stored without stored_at", _without(receipt_single("stored"), "stored_at")),
    ("receipt", "unknown status", {**receipt_single("stored"), "status": "ok"}),
    ("receipt", "seq 0", {**receipt_single("stored"), "seq": 0}),
    ("receipt", "no schema", _without(receipt_single("stored"), "schema")),
    ("receipt", "batch entry with schema", _batch_with_schema_entry()),
    ("receipt", "empty batch", {"schema": "examstation/receipt/v1", "receipts": []}),
    ("receipt", "batch entry rejected without reason",
     _changed(receipt_batch(), ("receipts", 2), _without(receipt_batch()["receipts"][2], "reason"))),
    ("status", "birth with extra key", {**birth_doc(), "comment": "x"}),
    ("status", "birth without stations", {**birth_doc(), "stations": []}),
    ("status", "offline with software", {**manifest.offline("GD-SZ-0101"), "software": {"name": "x", "version": "1"}}),
    ("status", "unknown state", {**manifest.offline("GD-SZ-0101"), "state": "sleeping"}),
    ("live", "missing devices", _without(live_doc(), "devices")),
    ("live", "negative remaining_s", {**live_doc(), "remaining_s": -1}),
    ("live", "bad item code", {**live_doc(), "item": "K51"}),
    ("acceptance", "unsigned report", _without(acceptance_report(), "signature")),
    ("acceptance", "probe carrying a report", {**acceptance_probe(), "report": site_check_report()}),
    ("acceptance", "report failure without fix", _changed(acceptance_report(), ("report", "checks", 1, "fix"), None)),
    ("acceptance", "unknown category", _changed(acceptance_report(), ("report", "checks", 0, "category"), "misc")),
    ("acceptance", "snapshot bytes in the report", _changed(acceptance_report(), ("report", "snapshots", 0),
                                                           "/9j/4AAQSkZJRg==")),
    ("acceptance", "unknown kind", {**acceptance_probe(), "kind": "hello"}),
    ("acceptance_receipt", "rejected without reason", _without(acceptance_receipt("rejected"), "reason")),
    ("acceptance_receipt", "unsigned", _without(acceptance_receipt("stored"), "signature")),
    ("acceptance_receipt", "stored with signature_ok", {**acceptance_receipt("stored"), "signature_ok": True}),
    ("acceptance_receipt", "result receipt", receipt_single("stored")),
    ("receipt", "acceptance receipt on the result receipt schema", acceptance_receipt("stored")),
]


# -- the schemas -------------------------------------------------------------------------------------
def test_the_contract_names_exactly_the_schema_files() -> None:
    assert sorted(p.stem for p in SCHEMA_DIR.glob("*.json")) == sorted(contract.SCHEMA_NAMES)


@pytest.mark.parametrize("name", contract.SCHEMA_NAMES)
def test_each_schema_is_a_valid_draft_2020_12_schema(name: contract.SchemaName) -> None:
    doc = contract.schema(name)
    assert doc["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert doc == json.loads((SCHEMA_DIR / f"{name}.json").read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(doc)


@pytest.mark.parametrize("name", contract.SCHEMA_NAMES)
def test_the_schemas_own_examples_validate(name: contract.SchemaName) -> None:
    """None of the four files carries `examples` today; any added later must be valid."""
    for example in contract.schema(name).get("examples", []):
        assert judged(name, example) == (True, True), (name, contract.problems(name, example))


@pytest.mark.parametrize(("name", "case", "doc"), VALID, ids=[f"{n}-{c}" for n, c, _ in VALID])
def test_both_validators_accept_valid_documents(name: contract.SchemaName, case: str, doc: Any) -> None:
    assert contract.problems(name, doc) == [], case
    assert judged(name, doc) == (True, True), list(reference(name).iter_errors(doc))


@pytest.mark.parametrize(("name", "case", "doc"), INVALID, ids=[f"{n}-{c}" for n, c, _ in INVALID])
def test_both_validators_refuse_invalid_documents(name: contract.SchemaName, case: str, doc: Any) -> None:
    assert judged(name, doc) == (False, False), case
    found = contract.problems(name, doc)
    assert found and all(": " in p for p in found), found


def test_problems_say_where() -> None:
    assert contract.problems("result", {**result_doc(), "seq": 0}) == ["seq: 0 is less than the minimum of 1"]
    where = contract.problems("result", _changed(result_doc(), ("candidate", "id_number"), "１" * 18))
    assert [p.split(":")[0] for p in where] == ["candidate/id_number"]


def test_a_trailing_newline_is_refused_by_the_contract() -> None:
    """ECMA-262 `$` (jsonschema-rs) ends at the end of the string; Python's re `$` also matches before a
    final newline, so the pure-Python jsonschema accepts this id number. The contract's engine decides."""
    doc = _changed(result_doc(), ("candidate", "id_number"), "11010519491231002X\n")
    assert contract.problems("result", doc) == [
        'candidate/id_number: "11010519491231002X\\n" does not match "^[0-9]{17}[0-9X]$"']


def test_the_example_result_is_signed_over_its_canonical_form() -> None:
    doc = result_doc()
    assert verify(doc, KEY.public_pem())
    assert not verify({**doc, "total": 96}, KEY.public_pem())


# -- docs/asyncapi.yaml ------------------------------------------------------------------------------
def _asyncapi() -> dict[str, Any]:
    doc = yaml.safe_load(ASYNCAPI.read_text(encoding="utf-8"))
    assert isinstance(doc, dict)
    return doc


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [v for k, v in node.items() if k == "$ref"] + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def _resolve(doc: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = doc
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def test_asyncapi_parses_and_every_reference_resolves() -> None:
    doc = _asyncapi()
    assert str(doc["asyncapi"]).startswith("3.")
    files = set()
    for ref in _refs(doc):
        if ref.startswith("#"):
            _resolve(doc, ref)  # KeyError names the dangling part
            continue
        target = (ASYNCAPI.parent / ref).resolve()
        assert target.parent == SCHEMA_DIR and target.is_file(), f"{ref} is not one of {SCHEMA_DIR}/*.json"
        files.add(target.stem)
    assert files == set(contract.SCHEMA_NAMES)


def test_asyncapi_channels_are_the_contracts_topics() -> None:
    doc = _asyncapi()
    expected = {
        contract.status_topic("{site}"): {"status"},
        contract.status_topic("{site}", "{box}"): {"status"},
        contract.result_topic("{site}", "{station}"): {"result"},
        contract.live_topic("{site}", "{station}"): {"live"},
        contract.receipt_topic("{site}"): {"receipt", "acceptance_receipt"},
        contract.acceptance_topic("{site}"): {"acceptance"},
    }
    by_address = {ch["address"]: ch for ch in doc["channels"].values()}
    assert set(by_address) == set(expected)
    for address, schema_names in expected.items():
        channel = by_address[address]
        assert set(channel["parameters"]) == set(re.findall(r"\{(\w+)\}", address)), address
        payloads = {Path(_resolve(doc, m["$ref"])["payload"]["$ref"]).stem for m in channel["messages"].values()}
        assert payloads == schema_names, (address, payloads)


def test_asyncapi_qos_and_retain_match_the_contract() -> None:
    doc = _asyncapi()
    seen = {}
    for op in doc["operations"].values():
        address = _resolve(doc, op["channel"]["$ref"])["address"]
        mqtt = op["bindings"]["mqtt"]
        seen[address] = (op["action"], mqtt["qos"], mqtt["retain"])
    assert seen == {
        contract.status_topic("{site}"): ("send", 1, True),
        contract.status_topic("{site}", "{box}"): ("send", 1, True),
        contract.result_topic("{site}", "{station}"): ("send", 1, False),
        contract.live_topic("{site}", "{station}"): ("send", 0, False),
        contract.receipt_topic("{site}"): ("receive", 1, False),
        contract.acceptance_topic("{site}"): ("send", 1, False),
    }
    will = doc["servers"]["province"]["bindings"]["mqtt"]["lastWill"]
    assert (will["topic"], will["qos"], will["retain"]) == (contract.status_topic("{site}"), 1, True)


# -- topics and broker addresses ---------------------------------------------------------------------
def test_topics() -> None:
    assert contract.status_topic("GD-SZ-0101") == "examstation/v1/GD-SZ-0101/status"
    assert contract.result_topic("GD-SZ-0101", "A01") == "examstation/v1/GD-SZ-0101/A01/result"
    assert contract.live_topic("GD-SZ-0101", "A01") == "examstation/v1/GD-SZ-0101/A01/live"
    assert contract.receipt_topic("GD-SZ-0101") == "examstation/v1/GD-SZ-0101/receipt"
    assert contract.acceptance_topic("GD-SZ-0101") == "examstation/v1/GD-SZ-0101/acceptance"
    assert contract.parse_result_topic("examstation/v1/GD-SZ-0101/A01/result") == ("GD-SZ-0101", "A01")
    with pytest.raises(ContractError, match="is not a result topic"):
        contract.parse_result_topic("examstation/v1/GD-SZ-0101/A01/live")


@pytest.mark.parametrize("bad", ["", "a/b", "+", "a+", "#", "a#b", "\x00"])
def test_topic_builders_refuse_what_is_not_one_topic_level(bad: str) -> None:
    builders = [contract.status_topic, contract.receipt_topic, contract.acceptance_topic,
                lambda s: contract.result_topic(s, "A01"), lambda s: contract.result_topic("SITE", s),
                lambda s: contract.live_topic(s, "A01"), lambda s: contract.live_topic("SITE", s)]
    for build in builders:
        with pytest.raises(ContractError, match="cannot be a topic level"):
            build(bad)


@pytest.mark.parametrize(("url", "host", "port", "tls"), [
    ("mqtt://h", "h", 1883, False),
    ("mqtt://h:1884", "h", 1884, False),
    ("mqtts://h", "h", 8883, True),
    ("mqtts://broker.example:18883", "broker.example", 18883, True),
    ("mqtt://127.0.0.1:1883/", "127.0.0.1", 1883, False),
])
def test_broker_addresses(url: str, host: str, port: int, tls: bool) -> None:
    address = contract.parse_broker_url(url)
    assert (address.host, address.port, address.tls) == (host, port, tls)
    assert contract.parse_broker_url(address.url) == address


@pytest.mark.parametrize("url", ["http://h", "mqtt://h/x", "mqtt://h:99999", "mqtt://", "h:1883", "mqtt://h:port"])
def test_bad_broker_addresses_are_named(url: str) -> None:
    with pytest.raises(ContractError) as caught:
        contract.parse_broker_url(url)
    message = str(caught.value)
    assert repr(url) in message, message
    assert "mqtt://HOST:PORT" in message or "1 to 65535" in message, message


# -- status messages ---------------------------------------------------------------------------------
def test_birth_manifest_validates_and_says_what_the_province_needs() -> None:
    backlog = outbox.Backlog(queued=3, failed=1, delivered=10, oldest_queued_utc_ns=NOW_NS - 90 * S)
    doc = birth_doc(backlog)
    assert judged("status", doc) == (True, True), contract.problems("status", doc)
    assert doc["state"] == "online" and doc["key_id"] == KEY.key_id
    assert doc["outbox"] == {"queued": 3, "failed": 1, "oldest_queued_age_s": 90.0}
    assert [s["id"] for s in doc["stations"]] == [s.id for s in CONFIG.stations]
    assert {r["operation"] for r in doc["rubrics"]} == {"低压电工作业", "熔化焊接与热切割作业"}
    assert "rtsp://" not in json.dumps(doc), "camera stream URLs may hold credentials and are never published"
    ahead = birth_doc(outbox.Backlog(1, 0, 0, NOW_NS + 5 * S))  # a result stamped by a clock ahead of ours
    assert ahead["outbox"]["oldest_queued_age_s"] == 0.0 and contract.problems("status", ahead) == []


def test_offline_will_and_goodbye_validate() -> None:
    will = manifest.offline("GD-SZ-0101")
    assert will == {"schema": "examstation/status/v1", "site": "GD-SZ-0101", "state": "offline"}
    goodbye = manifest.offline("GD-SZ-0101", "shutdown", NOW_NS)
    assert goodbye["reason"] == "shutdown" and goodbye["at"].endswith("Z")
    for doc in (will, goodbye):
        assert judged("status", doc) == (True, True), contract.problems("status", doc)


# -- the attempt snapshot ----------------------------------------------------------------------------
SUBJECTS = [
    sm.ItemChoice("K1", (("K11", 600, False), ("K12", 600, False))),
    sm.ItemChoice("K3", (("K31", 600, False),)),
]


def _at(t_s: float) -> sm.Now:
    return sm.Now(int(t_s * S), NOW_NS + int(t_s * S))


def _attempts() -> list[sm.Attempt]:
    """Attempts at several points of their life, built through the state machine only."""
    out = []
    a = sm.Attempt(AID, "110101199001010015", "A01", "低压电工作业", 2)
    out.append(a)
    a, _ = sm.check_in(a, "监考员王", "id_card_reader", _at(0))
    a, _ = sm.draw(a, SUBJECTS, _at(1), seed=7)
    out.append(a)
    a, _ = sm.start_item(a, a.items[0].code, _at(10))
    a, _ = sm.pause(a, "device A01/bench", _at(20))
    a, _ = sm.pause(a, "examiner", _at(21))
    out.append(a)
    a, _ = sm.resume(a, "device A01/bench", _at(30))
    a, _ = sm.resume(a, "examiner", _at(31))
    a, _ = sm.end_item(a, "done", _at(100))
    a, _ = sm.start_item(a, "K31", _at(110))
    out.append(a)
    a, _ = sm.tick(a, _at(800))
    a, _ = sm.scored(a, _at(801))
    a, _ = sm.reviewed(a, "考评员甲", _at(802))
    a, _ = sm.candidate_decision(a, a.items[0].code, True, _at(803))
    a, _ = sm.candidate_decision(a, "K31", False, _at(804))
    a, _ = sm.examiner_signs(a, "考评员甲", _at(805))
    out.append(a)
    a, _ = sm.examiner_signs(a, "考评员乙", _at(806))
    a, _ = sm.queued(a, _at(806))
    a, _ = sm.delivered(a, "stored at 2026-11-28T01:10:00.123Z", _at(807))
    out.append(a)
    assert [x.state for x in out] == [sm.State.REGISTERED, sm.State.ITEM_DRAWN, sm.State.PAUSED, sm.State.RUNNING,
                                      sm.State.REVIEWED, sm.State.DELIVERED]
    return out


@pytest.mark.parametrize("attempt", _attempts(), ids=lambda a: a.state.value)
def test_to_dict_equals_asdict(attempt: sm.Attempt) -> None:
    """asdict keeps tuples and the State member where to_dict writes lists and the value: equal as the
    JSON stored with every step, byte for byte, key order included."""
    fast, slow = attempt_snapshot.to_dict(attempt), dataclasses.asdict(attempt)
    assert json.dumps(fast, ensure_ascii=False) == json.dumps(slow, ensure_ascii=False)
    assert fast == json.loads(json.dumps(slow))
    assert attempt_snapshot.from_dict(json.loads(json.dumps(fast))) == attempt


# -- resend backoff ----------------------------------------------------------------------------------
class _Midpoint(random.Random):
    """random() == 0.5: the jitter factor is exactly 1."""

    def random(self) -> float:
        return 0.5


@pytest.mark.parametrize(("first_s", "cap_s"), [(backoff.RESEND_FIRST_S, backoff.RESEND_CAP_S), (0.5, 10.0),
                                                (1.0, 1.0)])
def test_resend_delay_doubles_to_a_cap_with_bounded_jitter(first_s: float, cap_s: float) -> None:
    mid = _Midpoint()
    exact = [backoff.resend_delay_s(n, first_s, cap_s, mid) for n in range(1, 40)]
    assert exact[0] == first_s
    for before, after in itertools.pairwise(exact):
        assert after == min(cap_s, before * 2)
    assert exact[-1] == cap_s

    rng = random.Random(20261128)
    j = backoff.JITTER
    for n in [0, *range(1, 40), 10**6]:
        base = min(cap_s, first_s * 2 ** max(0, n - 1)) if n < 64 else cap_s
        for _ in range(50):
            d = backoff.resend_delay_s(n, first_s, cap_s, rng)
            assert base * (1 - j) <= d <= base * (1 + j), (n, d)
            assert first_s * (1 - j) <= d <= cap_s * (1 + j), (n, d)
    spread = {backoff.resend_delay_s(30, first_s, cap_s, rng) for _ in range(100)}
    assert len(spread) > 90, "a backlog must not resend in lockstep"
    assert backoff.resend_delay_s(3, first_s, cap_s, random.Random(1)) == backoff.resend_delay_s(
        3, first_s, cap_s, random.Random(1))
