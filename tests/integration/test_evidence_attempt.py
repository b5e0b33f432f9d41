"""An attempt at a recorded station: its segments, gaps and still end up in the signed result.

Real parts: a simulated IP camera over HTTP on a real socket, the recorder's threads, the station
database. The station's clock is the system clock (cameras record in real time); segments are 2 s
so the test runs in seconds.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from devices.clock import SystemClock
from devices.ref import DeviceRef
from hardware_sim.camera import SimCamera
from station import record_commands
from station.config import SiteConfig, load_site_config
from station.db import database_path, open_database
from station.db.models import AttemptEvidence, AuditRow, EvidenceSegment
from station.errors import ServiceError
from station.events import AlarmEvent
from station.recording import Recording
from station.result_document import iso_utc, pointer_problems
from station.services import StationServices
from station.signing import SiteKey
from station.stored import ensure_database
from station.uplink import contract
from tests.integration.conftest import A01_DEVICES, BENCH_AT_REST, CANDIDATE, report
from tests.integration.waiting import wait_for

pytestmark = pytest.mark.timeout(90)


def recorded_site(url: str, **storage: float) -> SiteConfig:
    data = load_site_config("examples/site.yaml").model_dump(mode="python")
    a01 = next(s for s in data["stations"] if s["id"] == "A01")
    a01["cameras"] = [{"id": "overview", "url": url, "sub_url": None}]
    data["stations"] = [a01]
    data["buses"] = [b for b in data["buses"] if b["id"] in {getattr(d, "bus", None) or d.get("bus")
                                                            for d in a01["devices"]}]
    data["recording"] = {"segment_s": 2, "pre_roll_s": 1, "post_roll_s": 1}
    data["storage"] = {"data_dir": "unused", "min_free_gb": storage.get("min_free_gb", 0.0),
                       "critical_free_gb": storage.get("critical_free_gb", 0.0)}
    return SiteConfig.model_validate(data)


@pytest.fixture
async def camera() -> AsyncIterator[SimCamera]:
    async with SimCamera("A01", "overview", main_fps=10, sub_fps=2) as cam:
        yield cam


def play_attempt(services: StationServices) -> tuple[str, dict[str, Any]]:
    clock = services.clock
    for device in A01_DEVICES:
        services.device_status(device, True, "")
    report(services, clock, BENCH_AT_REST)
    services.register_candidate(CANDIDATE, "张三", "低压电工作业", "B1")
    aid = services.check_in(CANDIDATE, "A01", "监考员王")
    services.assign(aid, {"K3": "K31"}, "exam-system")
    services.device_status(DeviceRef("A01", "bench"), True, "")
    services.start_item(aid, "K31", "考评员甲")
    return aid, {}


def finish(services: StationServices, aid: str) -> dict[str, Any]:
    services.end_item(aid, "done", "考评员甲")
    services.score(aid)
    services.mark(aid, "K31", "K31-1a", 1, "考评员甲", "一处隐患未指出")
    services.review(aid, "考评员甲")
    services.candidate_decision(aid, "K31", signed=True)
    assert services.examiner_sign(aid, "考评员甲") is None
    doc = services.examiner_sign(aid, "考评员乙")
    assert doc is not None
    return doc


async def test_a_recorded_attempt_lists_its_segments_still_and_pointers(tmp_path: Path, camera: SimCamera) -> None:
    config = recorded_site(camera.url)
    ensure_database(tmp_path)
    with open_database(database_path(tmp_path)) as db:
        services = StationServices(config, db, SiteKey.load_or_create(tmp_path), SystemClock())
        async with Recording(services, tmp_path) as rec:
            aid, _ = await asyncio.to_thread(play_attempt, services)
            await wait_for(lambda: rec.index.covered_until("A01", "overview") or 0, 10, "a first segment")
            await asyncio.sleep(3)
            doc = await asyncio.to_thread(finish, services, aid)
        await asyncio.to_thread(services.close)

        assert contract.problems("result", doc) == []
        segments = doc["evidence"]
        assert len(segments) >= 2 and {s["camera"] for s in segments} == {"overview"}
        for seg in segments:  # each listed segment is the file on disk, as hashed when it was indexed
            with db.read() as s:
                row = s.get(EvidenceSegment, seg["segment_id"])
                assert row is not None and row.keep_until_utc_ns is not None
                path = tmp_path / row.path
            assert hashlib.sha256(path.read_bytes()).hexdigest() == seg["sha256"]
        # the window ends a post-roll after the last examiner pressed sign; the signing waited until the
        # segment covering that was final, so the last listed segment reaches the window's end
        with db.read() as s:
            payload = s.execute(select(AuditRow.payload).where(AuditRow.action == "evidence.linked")).scalar_one()
        linked = json.loads(payload)
        assert segments[-1]["to"] >= iso_utc(linked["to_utc_ns"])
        assert linked["segments"] == [{"segment_id": s["segment_id"], "sha256": s["sha256"]} for s in segments]
        assert doc["video_gaps"] == [], doc["video_gaps"]
        assert [s["camera"] for s in doc["checkin_stills"]] == ["overview"]
        mark = doc["items"][0]["manual_marks"][0]
        assert mark["video"] and mark["video"][0]["segment_id"] in {s["segment_id"] for s in segments}
        assert pointer_problems(doc) == []
        with db.read() as s:
            links = s.execute(select(func.count()).select_from(AttemptEvidence)).scalar()
            actions = set(s.execute(select(AuditRow.action)).scalars())
        assert links == len(segments)
        assert {"evidence.segment", "evidence.still", "evidence.linked"} <= actions
    ok, text = record_commands.audit_verify(tmp_path)
    assert ok, text


async def test_a_camera_gap_during_the_attempt_is_listed_with_its_cause(tmp_path: Path, camera: SimCamera) -> None:
    config = recorded_site(camera.url)
    ensure_database(tmp_path)
    with open_database(database_path(tmp_path)) as db:
        services = StationServices(config, db, SiteKey.load_or_create(tmp_path), SystemClock())
        alarms = services.events.subscribe("test alarms", maxsize=50, kinds=(AlarmEvent,))
        async with Recording(services, tmp_path) as rec:
            aid, _ = await asyncio.to_thread(play_attempt, services)
            await wait_for(lambda: rec.index.covered_until("A01", "overview") or 0, 10, "a first segment")
            camera.freeze()
            await wait_for(lambda: rec.index.covered_until("A01", "overview") is None, 6, "the gap to open")
            camera.resume()
            await camera.drop_clients()
            await wait_for(lambda: rec.index.covered_until("A01", "overview") is not None, 15, "the gap to close")
            doc = await asyncio.to_thread(finish, services, aid)
        await asyncio.to_thread(services.close)
    gaps = doc["video_gaps"]
    assert len(gaps) == 1 and gaps[0]["camera"] == "overview" and gaps[0]["to"] is not None, gaps
    codes = []
    while (event := alarms.get_nowait()) is not None:
        codes.append((getattr(event, "code", None), getattr(event, "cleared", None)))
    assert ("camera.gap", False) in codes and ("camera.gap", True) in codes


async def test_at_the_critical_disk_mark_check_in_is_refused_and_nothing_is_deleted(tmp_path: Path,
                                                                                   camera: SimCamera) -> None:
    config = recorded_site(camera.url, min_free_gb=1e9, critical_free_gb=1e9)  # more than any disk has
    ensure_database(tmp_path)
    with open_database(database_path(tmp_path)) as db:
        services = StationServices(config, db, SiteKey.load_or_create(tmp_path), SystemClock())
        async with Recording(services, tmp_path):
            services.register_candidate(CANDIDATE, "张三", "低压电工作业", "B1")
            with pytest.raises(ServiceError, match=r"refused: the disk holding .* below the critical mark"):
                services.check_in(CANDIDATE, "A01", "监考员王")
        await asyncio.to_thread(services.close)
