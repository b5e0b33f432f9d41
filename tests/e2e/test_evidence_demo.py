"""`examstation demo --scenario NAME --once --json`: the attempt's video, as an auditor would check it.

The demo records the station's simulated H.264 cameras (each frame carries its camera's frame
counter in an SEI NAL, docs/evidence.md). Every segment the signed result lists passes Debian's
ffprobe (first packet a keyframe, every packet decodes, timestamps rise one frame at a time), and
per camera the counters run on from segment to segment with no frame lost or repeated: the
segments cover the attempt without a hole.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from station.db import database_path, open_database
from station.db.models import EvidenceSegment
from tests.ffprobe_checks import check_segment, h264_annexb
from tests.h264_sei import stamps_of

pytestmark = pytest.mark.timeout(180)
SIM_FPS = 10


def test_the_demo_result_lists_whole_segments_with_every_frame(tmp_path: Path) -> None:
    data = tmp_path / "data"
    out = subprocess.run([sys.executable, "-m", "station.cli", "demo", "--scenario", "k21-correct", "--once", "--json",
                          "--data-dir", str(data), "--config", "examples/site.yaml"],
                         capture_output=True, timeout=150, check=False)
    assert out.returncode == 0, out.stderr.decode()
    doc = json.loads(out.stdout)
    evidence = doc["evidence"]
    station_cameras = {"overview", "bench"}  # A01's cameras in examples/site.yaml
    assert {e["camera"] for e in evidence} == station_cameras
    assert doc["video_gaps"] == []
    assert {s["camera"] for s in doc["checkin_stills"]} == station_cameras
    with open_database(database_path(data), read_only=True) as db, db.read() as s:
        paths = {r.segment_id: data / r.path for r in s.execute(select(EvidenceSegment)).scalars()}
    for camera in sorted(station_cameras):
        counters: list[int] = []
        for e in sorted((e for e in evidence if e["camera"] == camera), key=lambda e: e["from"]):
            path = paths[e["segment_id"]]
            assert hashlib.sha256(path.read_bytes()).hexdigest() == e["sha256"]
            probed = check_segment(path, SIM_FPS)
            assert probed.codec == "h264" and (probed.width, probed.height) == (1280, 720)
            stamps = stamps_of(h264_annexb(path))
            assert len(stamps) == probed.packets == e["frames"], f"{e['segment_id']}: one counter per frame"
            counters += [st.counter for st in stamps]
        steps = {b - a for a, b in itertools.pairwise(counters)}
        assert steps == {1}, f"camera {camera}: frame counters skip or repeat across segments: {sorted(steps)}"
