"""Discipline incidents on the service layer and a real database: stored with the attempt open at
the station, audited in the same transaction, published live, listed in the signed result (valid
against the result schema, signed, and not in the way of a re-score of the timeline)."""

from __future__ import annotations

import asyncio
import json

import pytest
from sqlalchemy import select

from scoring.canonical import canonical_json
from station import audit
from station.db.models import AuditRow, ScoreSheetRow
from station.discipline import RECORDED, DisciplineBook, Incident
from station.events import DisciplineEvent, Event, Lost
from station.result_check import SheetText, rescore
from station.result_document import pointer_problems
from station.services import ServiceError, StationServices
from station.signing import verify
from station.stored import stored_timeline
from station.uplink import contract
from tests.integration.conftest import ManualClock, S, ready_station


def test_incidents_belong_to_the_open_attempt_and_reach_the_signed_result(
        svc: tuple[StationServices, ManualClock]) -> None:
    services, clock = svc
    book = DisciplineBook.for_services(services)
    assert DisciplineBook.for_services(services) is book
    before = book.record("A01", "talking", "检录前交谈", "proc1")
    assert before.attempt_id is None
    aid = ready_station(services, clock, {"K1": "K13"})
    services.start_item(aid, "K13", "考评员甲")
    clock.t += 30 * S

    async def watch() -> tuple[Incident, Event | Lost]:
        sub = services.events.subscribe("test", kinds=(DisciplineEvent,))
        during = await asyncio.to_thread(book.record, "A01", "crib", "袖中纸条", "proc1")
        event = await asyncio.wait_for(sub.get(), 1.0)
        sub.close()
        return during, event

    during, event = asyncio.run(watch())
    assert isinstance(event, DisciplineEvent) and event.attempt_id == aid and event.category == "crib"
    assert [i.id for i in book.for_attempt(aid)] == [during.id]
    assert [i.category for i in book.recent("A01")] == ["crib", "talking"]
    with pytest.raises(ServiceError, match="not one of"):
        book.record("A01", "sleeping", "", "proc1")
    with pytest.raises(ServiceError, match="no station"):
        book.record("Z99", "crib", "", "proc1")
    clock.t += 30 * S
    services.end_item(aid, "done", "考评员甲")
    services.score(aid)
    services.review(aid, "考评员甲")
    services.candidate_decision(aid, "K13", signed=True)
    services.examiner_sign(aid, "考评员甲")
    doc = services.examiner_sign(aid, "考评员乙")
    assert doc is not None and verify(doc, services.key.public_pem())
    [entry] = doc["discipline"]
    assert entry == {"category": "crib", "label_zh": "夹带", "note": "袖中纸条", "recorded_by": "proc1",
                     "at": entry["at"], "offset_s": 30.0, "video": []}
    assert contract.problems("result", doc) == [] and pointer_problems(doc) == []
    with services.db.read() as s:
        row = s.execute(select(ScoreSheetRow).where(ScoreSheetRow.attempt_id == aid)
                        .order_by(ScoreSheetRow.version.desc()).limit(1)).scalar_one()
        sheet = SheetText(row.version, row.sheet, json.loads(row.sheet))
    assert rescore(doc, aid, sheet, services.rubric("低压电工作业"), stored_timeline(services.db, aid)) is None
    report = audit.verify(services.db)
    assert report.ok, str(report)
    assert canonical_json(doc)  # the document stays canonical JSON with the incidents in it


def test_a_result_without_incidents_has_no_discipline_member(svc: tuple[StationServices, ManualClock]) -> None:
    services, clock = svc
    aid = ready_station(services, clock, {"K1": "K13"})
    services.start_item(aid, "K13", "考评员甲")
    clock.t += 30 * S
    services.end_item(aid, "done", "考评员甲")
    services.score(aid)
    services.review(aid, "考评员甲")
    services.candidate_decision(aid, "K13", signed=True)
    services.examiner_sign(aid, "考评员甲")
    doc = services.examiner_sign(aid, "考评员乙")
    assert doc is not None and "discipline" not in doc


def test_recording_is_audited(svc: tuple[StationServices, ManualClock]) -> None:
    services, _ = svc
    incident = DisciplineBook.for_services(services).record("W01", "left_station", "离开考位约 2 分钟", "proc1")
    with services.db.read() as s:
        row = s.execute(select(AuditRow).where(AuditRow.action == RECORDED)).scalar_one()
        assert row.actor == "proc1" and json.loads(row.payload)["incident"] == incident.id
