"""kill -9 while the cameras are being recorded, then the next start: nothing half-written is indexed.

A real controller process (`examstation demo --scenario ... --once`) records the simulated H.264
cameras and is killed with SIGKILL in the middle of its first segments. The next start on the
same data directory (the station's recording, in this process) recovers each `.part`: its readable
frames become a segment marked recovered, the rest of its time a video gap with the cause, and the
index never lists a file that is not final or whose bytes differ from its hash. Every segment file
passes Debian's ffprobe; the audit chain and the record proofs verify.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from devices.clock import SystemClock
from hardware_sim.site import SimSite
from station import record_commands
from station.config import load_site_config
from station.db import database_path, open_database
from station.db.models import CameraGapRow, EvidenceSegment
from station.recording import Recording
from station.scenario_runner import one_station
from station.services import StationServices
from station.signing import SiteKey
from tests.ffprobe_checks import check_segment

pytestmark = pytest.mark.timeout(180)
CONFIG = load_site_config("examples/site.yaml")


def demo(data: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "station.cli", "demo", "--scenario", "cpr-correct", "--once", "--json",
         "--data-dir", str(data), "--config", "examples/site.yaml"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)


async def restart(data: Path) -> None:
    """The next start of the controller on this data directory: recording (and its recovery) for a few seconds."""
    config = one_station(CONFIG, CONFIG.station("A01"))
    with open_database(database_path(data)) as db:
        services = StationServices(config, db, SiteKey.load_or_create(data), SystemClock())
        try:
            async with SimSite(config) as site, Recording(services, data, site.resolved_config()):
                await asyncio.sleep(3)
        finally:
            services.close()


def test_a_kill_mid_segment_leaves_recovered_frames_and_a_gap_never_a_half_segment(tmp_path: Path) -> None:
    data = tmp_path / "data"
    proc = demo(data)
    deadline = time.monotonic() + 60
    while not list((data / "evidence").rglob("*.mkv.part")) and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(3.0)  # a few seconds into the first segments
    assert proc.poll() is None, "the demo ended before it could be killed mid-segment"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    parts = list((data / "evidence").rglob("*.mkv.part"))
    assert parts, "the kill must leave segments being written"

    asyncio.run(restart(data))
    assert not list((data / "evidence").rglob("*.part")), "every .part is recovered"

    with open_database(database_path(data), read_only=True) as db, db.read() as s:
        segments = list(s.execute(select(EvidenceSegment)).scalars())
        gaps = list(s.execute(select(CameraGapRow)).scalars())
        recovered = [g for g in segments if g.recovered]
        stopped = [g for g in gaps if g.cause.startswith("process stopped mid-segment")]
        assert len(stopped) == len(parts), f"one gap per killed segment: {[g.cause for g in stopped]}"
        for g in stopped:
            assert g.to_utc_ns is not None and g.to_utc_ns >= g.from_utc_ns
        for seg in segments:  # every indexed file is final, whole and the bytes hashed when indexed
            path = data / seg.path
            assert path.suffix == ".mkv" and path.exists(), seg.path
            assert hashlib.sha256(path.read_bytes()).hexdigest() == seg.sha256, seg.path
            check_segment(path, None)
    assert recovered, "the readable frames of the killed segments are kept"
    ok, text = record_commands.audit_verify(data)
    assert ok, text
