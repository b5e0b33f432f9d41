"""kill -9 in the middle of an exam, twenty times at random moments.

A real controller process (`examstation demo --scenario ... --once`) runs an attempt against the
simulator and is killed with SIGKILL. After each kill: the database opens, the attempt is there
with a timeline consistent with its state (what was committed together stays together), the
examiner can resume or close it and get it signed, every result signed before is byte for byte
what it was, and the audit chain verifies.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from devices.clock import SystemClock
from scoring.timeline import LifecycleRecord
from station import audit
from station import session as sm
from station.config import load_site_config
from station.db import database_path, open_database
from station.db.models import Attempt, ResultRow
from station.services import StationServices
from station.signing import SiteKey
from station.stored import load_timeline

CONFIG = load_site_config("examples/site.yaml")
KILLS = 20
SCENARIOS = ["k21-correct", "k21-no-meter-check", "cpr-three-cycles"]
EXAMINERS = ("考评员甲", "考评员乙")


def settle(services: StationServices, attempt_id: str, rng: random.Random) -> None:
    """What an examiner does with an attempt the crash left open: resume or close, then sign."""
    a = services.attempt(attempt_id)
    if a.state == sm.State.CHECKED_IN:
        services.draw(attempt_id, seed=1)
        a = services.attempt(attempt_id)
    while a.state in (sm.State.ITEM_DRAWN, sm.State.RUNNING, sm.State.PAUSED):
        if a.state == sm.State.ITEM_DRAWN:
            code = next(i.code for i in a.items if i.started_ns is None)
            # no rig is connected to this settling controller: the examiner starts the item anyway
            services.start_item(attempt_id, code, EXAMINERS[0], start_anyway="崩溃后补录，考台未连接")
        elif a.state == sm.State.PAUSED and rng.random() < 0.5:
            for reason in a.running_item.pause_reasons if a.running_item else ():
                services.resume(attempt_id, reason, EXAMINERS[0])
        else:
            services.end_item(attempt_id, "interrupted", EXAMINERS[0])
        a = services.attempt(attempt_id)
    if a.state == sm.State.ENDED:
        services.score(attempt_id)
        a = services.attempt(attempt_id)
    if a.state == sm.State.SCORED:
        services.review(attempt_id, EXAMINERS[0])
        a = services.attempt(attempt_id)
    if a.state == sm.State.REVIEWED:
        for it in a.items:
            if not it.candidate_decision:
                services.candidate_decision(attempt_id, it.code, signed=True)
        for examiner in EXAMINERS:
            if services.attempt(attempt_id).state == sm.State.REVIEWED and \
                    examiner not in services.attempt(attempt_id).examiner_signatures:
                services.examiner_sign(attempt_id, examiner)
    assert services.attempt(attempt_id).state == sm.State.QUEUED


def check_timeline_matches_state(services: StationServices, attempt_id: str) -> None:
    a = services.attempt(attempt_id)
    timeline = load_timeline(services.db, attempt_id)  # raises on a gap or a bad row
    starts = {r.item for r in timeline if isinstance(r, LifecycleRecord) and r.kind == "item_start"}
    ends = {r.item for r in timeline if isinstance(r, LifecycleRecord) and r.kind == "item_end"}
    assert starts == {i.code for i in a.items if i.started_ns is not None}
    assert ends == {i.code for i in a.items if i.ended_ns is not None}


@pytest.mark.timeout(600)
def test_twenty_kills_lose_nothing(tmp_path: Path) -> None:
    rng = random.Random(20261128)
    data = tmp_path / "data"
    signed: dict[str, str] = {}
    killed_mid_run = 0
    for round_ in range(KILLS):
        scenario = SCENARIOS[round_ % len(SCENARIOS)]
        proc = subprocess.Popen(
            [sys.executable, "-m", "station.cli", "demo", "--scenario", scenario, "--once", "--json",
             "--data-dir", str(data), "--config", "examples/site.yaml"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
        )
        time.sleep(rng.uniform(1.0, 6.5))
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            killed_mid_run += 1
        proc.communicate(timeout=30)
        if not database_path(data).exists():
            continue  # killed before the database was created
        with open_database(database_path(data)) as db:
            services = StationServices(CONFIG, db, SiteKey.load_or_create(data), SystemClock())
            try:
                services.recover()
                with db.read() as s:
                    attempts = list(s.execute(select(Attempt.attempt_id, Attempt.state)))
                    results = {r.result_id: r.document for r in s.execute(select(ResultRow)).scalars()}
                for result_id, text in signed.items():
                    assert results.get(result_id) == text, f"round {round_}: signed result {result_id} lost or changed"
                for attempt_id, state in attempts:
                    if state in ("queued", "delivered"):
                        continue
                    check_timeline_matches_state(services, attempt_id)
                    settle(services, attempt_id, rng)
                with db.read() as s:
                    signed.update({r.result_id: r.document for r in s.execute(select(ResultRow)).scalars()})
            finally:
                services.close()
            report = audit.verify(db)
            assert report.ok, f"round {round_}: {report}"
    assert killed_mid_run >= KILLS // 2, "most kills must land while the controller runs"
    assert len(signed) >= KILLS // 2
    for text in signed.values():
        assert json.loads(text)["signature"]["alg"] == "Ed25519"
