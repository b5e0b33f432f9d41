"""The service layer on a real database, without devices: the examiner's and the invigilator's
actions, their refusals, and what ends up stored and signed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from devices.sample import Sample
from station import audit
from station import session as sm
from station.candidates import import_candidates_csv
from station.config import load_site_config
from station.db import database_path, open_database
from station.services import ServiceError, StationServices
from station.signing import SiteKey, verify
from station.stored import ensure_database

CONFIG = load_site_config("examples/site.yaml")
S = 1_000_000_000


class ManualClock:
    def __init__(self) -> None:
        self.t = 1_000 * S

    def mono_ns(self) -> int:
        return self.t

    def utc_ns(self) -> int:
        return 1_790_000_000 * S + self.t


@pytest.fixture
def svc(tmp_path: Path) -> Iterator[tuple[StationServices, ManualClock]]:
    ensure_database(tmp_path)
    clock = ManualClock()
    with open_database(database_path(tmp_path)) as db:
        services = StationServices(CONFIG, db, SiteKey.load_or_create(tmp_path), clock)
        yield services, clock
        services.close()


def test_csv_import_checks_the_whole_file_first(svc: tuple[StationServices, ManualClock], tmp_path: Path) -> None:
    services, _ = svc
    good = tmp_path / "batch.csv"
    good.write_text("id_number,name,operation,batch,attempt_number\n"
                    "110101199001010011,张三,低压电工作业,GD-2026-11-28-A,1\n"
                    "110101199001010022,李四,熔化焊接与热切割作业,GD-2026-11-28-A,2\n", encoding="utf-8")
    assert import_candidates_csv(services, good) == 2
    bad = tmp_path / "bad.csv"
    bad.write_text("id_number,name,operation,batch,attempt_number\n"
                   "110101199001010033,王五,低压电工作业,B,1\n110101199001010044,赵六,电焊,B,1\n", encoding="utf-8")
    with pytest.raises(ServiceError, match=r"bad.csv:3: operation '电焊' is not one of"):
        import_candidates_csv(services, bad)
    with pytest.raises(ServiceError, match="not registered"):
        services.check_in("110101199001010033", "A01", "监考员王")  # nothing of the bad file was kept
    with pytest.raises(ServiceError, match="registered for 熔化焊接与热切割作业, station A01 is a 低压电工作业"):
        services.check_in("110101199001010022", "A01", "监考员王")


def run_item(services: StationServices, clock: ManualClock, aid: str, code: str) -> None:
    services.start_item(aid, code, "考评员甲")
    clock.t += 60 * S
    services.record_sample(Sample("bench.main_switch", True, clock.t, clock.utc_ns(), "A01/bench"))
    clock.t += 60 * S


def test_examiner_veto_refusal_overrides_and_two_signatures(svc: tuple[StationServices, ManualClock]) -> None:
    services, clock = svc
    services.register_candidate("110101199001010011", "张三", "低压电工作业", "B1")
    aid = services.check_in("110101199001010011", "A01", "监考员王", "id_card_reader")
    with pytest.raises(ServiceError, match="A01 already has attempt"):
        services.check_in("110101199001010011", "A01", "监考员王")
    services.assign(aid, {"K2": "K21", "K3": "K31"}, "exam-system")
    run_item(services, clock, aid, "K21")
    services.veto(aid, "K21", "K21-V3", "考评员甲", "带电接线")
    assert services.attempt(aid).state == sm.State.ITEM_DRAWN
    run_item(services, clock, aid, "K31")
    with pytest.raises(ServiceError, match="marks and overrides are made after scoring"):
        services.mark(aid, "K31", "K31-1a", 1, "考评员甲")
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
