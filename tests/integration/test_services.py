"""The service layer on a real database, without devices: the examiner's and the invigilator's
actions, their refusals, and what ends up stored and signed."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from devices.ref import DeviceRef
from devices.sample import Sample
from station import audit
from station import session as sm
from station.config import load_site_config
from station.db.models import AuditRow
from station.services import ServiceError, StationServices
from station.signing import verify
from tests.integration.conftest import ManualClock

CONFIG = load_site_config("examples/site.yaml")
S = 1_000_000_000


def run_item(services: StationServices, clock: ManualClock, aid: str, code: str) -> None:
    # as the device hub reports it: the rig is there and at rest
    services.device_status(DeviceRef("A01", "bench"), True, "")
    services.start_item(aid, code, "考评员甲")
    clock.t += 60 * S
    services.record_sample(Sample("bench.main_switch", True, clock.t, clock.utc_ns(), DeviceRef("A01", "bench")))
    clock.t += 60 * S


def test_examiner_veto_refusal_overrides_and_two_signatures(svc: tuple[StationServices, ManualClock]) -> None:
    services, clock = svc
    services.register_candidate("110101199001010015", "张三", "低压电工作业", "B1")
    # check-in by reader needs the card read
    services.record_sample(Sample("idcard.read", {"id_number": "110101199001010015", "name": "张三"}, clock.t,
                                  clock.utc_ns(), DeviceRef("A01", "idreader")))
    aid = services.check_in("110101199001010015", "A01", "监考员王", "id_card_reader")
    with pytest.raises(ServiceError, match="A01 already has attempt"):
        services.check_in("110101199001010015", "A01", "监考员王")
    services.assign(aid, {"K2": "K21", "K3": "K31"}, "exam-system")
    run_item(services, clock, aid, "K21")
    services.veto(aid, "K21", "K21-V3", "考评员甲", "带电接线")
    assert services.attempt(aid).state == sm.State.ITEM_DRAWN
    run_item(services, clock, aid, "K31")
    with pytest.raises(ServiceError, match="overrides and gap decisions are made after scoring"):
        services.override(aid, "K31", "K31-2", 10, "口述不完整", "考评员甲")
    with pytest.raises(ServiceError, match="is a veto"):  # a veto stops the item: not noted as a mark
        services.mark(aid, "K21", "K21-V1", 1, "考评员甲")
    services.end_item(aid, "done", "考评员甲")
    sheet = services.score(aid)
    assert sheet.item("K21").outcome == "veto" and sheet.veto_failed and not sheet.passed
    services.mark(aid, "K31", "K31-1a", 2, "考评员甲", "两处隐患未指出")
    with pytest.raises(ServiceError, match="needs a reason"):
        services.override(aid, "K31", "K31-2", 10, " ", "考评员乙")
    services.override(aid, "K31", "K31-2", 25, "口述基本正确，酌情扣 5 分", "考评员乙")
    services.review(aid, "考评员甲")
    services.candidate_decision(aid, "K21", signed=True)
    services.candidate_decision(aid, "K31", signed=False)  # refuses: the item scores 0
    assert services.examiner_sign(aid, "考评员甲") is None  # two examiners required
    doc = services.examiner_sign(aid, "考评员乙")
    assert doc is not None and services.attempt(aid).state == sm.State.QUEUED
    items = {i["code"]: i for i in doc["items"]}
    assert items["K31"]["score"] == 0 and items["K31"]["refused_to_sign"]
    assert items["K31"]["manual_marks"][0]["points"] == 20
    assert items["K31"]["overrides"] == [{"row": "K31-2", "auto_points": 30.0, "points": 25.0,
                                          "reason": "口述基本正确，酌情扣 5 分", "by": "考评员乙"}]
    assert items["K21"]["vetoes"][0]["code"] == "K21-V3"
    assert verify(doc, services.key.public_pem())
    report = audit.verify(services.db)
    assert report.ok, str(report)
    assert json.loads(json.dumps(doc, ensure_ascii=False)) == doc


def test_check_in_by_id_card_reader_needs_the_candidates_card(svc: tuple[StationServices, ManualClock]) -> None:
    services, clock = svc
    card_id, other_id = "11010519491231002X", "110101199001010015"
    services.register_candidate(card_id, "张三", "低压电工作业", "B1")

    def card(id_number: str, name: str) -> None:
        services.record_sample(Sample("idcard.read", {"id_number": id_number, "name": name}, clock.t, clock.utc_ns(),
                                      DeviceRef("A01", "idreader")))

    with pytest.raises(ServiceError, match="no card has been read there; place the candidate's card on the reader "
                                           "at A01"):
        services.check_in(card_id, "A01", "监考员王", "id_card_reader")
    card(other_id, "李四")
    with pytest.raises(ServiceError, match=f"the card shows {other_id} but the registration is {card_id}: "
                                           "check the candidate's identity"):
        services.check_in(card_id, "A01", "监考员王", "id_card_reader")
    card(card_id, "张三")
    clock.t += 121 * S
    with pytest.raises(ServiceError, match=r"read 121 s ago.*place the candidate's card on the reader at A01 again"):
        services.check_in(card_id, "A01", "监考员王", "id_card_reader")
    assert services.active_attempt("A01") is None  # nothing of the refused check-ins was kept
    card(card_id, "张三")
    clock.t += 120 * S
    aid = services.check_in(card_id, "A01", "监考员王", "id_card_reader")
    assert services.attempt(aid).state == sm.State.CHECKED_IN
    with services.db.read() as s:
        payloads = [e.payload for e in s.scalars(select(AuditRow).where(AuditRow.action == "attempt.created"))]
    assert len(payloads) == 1 and json.loads(payloads[0])["card_name"] == "张三"
    assert audit.verify(services.db).ok
