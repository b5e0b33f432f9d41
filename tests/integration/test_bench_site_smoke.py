"""bench/site.py end to end on one station for a few seconds (~22 s): the real simulator process,
mosquitto, province, `examstation run` and the examiner driving the UI. Not a measurement: it checks
that the JSON carries the figures the issue names, first and in order, and that each is a real count
(polls made, frames recorded and watched, a result signed and delivered), so a broken counter cannot
pass as "nothing lost"."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
KEYS = ["max_stations", "cpu_percent", "rss_mb", "samples_lost", "frames_lost", "poll_deadline_miss_rate",
        "stations_tried"]


def test_site_bench_reports_real_figures_for_one_station() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "site.py"), "--json", "--only", "1", "--minutes", "0.1", "--item-s",
         "2", "--warmup-s", "2", "--segment-s", "2", "--post-roll-s", "0"],
        capture_output=True, text=True, timeout=100, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert list(result)[:len(KEYS)] == KEYS
    (row,) = result["stations_tried"]
    assert "error" not in row, row
    assert row["k"] == 1 and row["driver_errors"] == []
    assert 0 < result["cpu_percent"] < 200 and 50 < result["rss_mb"] < 4000
    assert row["polls"] > 50  # bench at 10 Hz and cabinet at 5 Hz for ~6 s, and the wind-down
    assert 0 <= result["poll_deadline_miss_rate"] <= 1
    assert row["samples_changed_by_sim"] > 0 and row["samples_accepted"] >= row["samples_changed_by_sim"]
    assert row["camera_frames_recorded"] > 50 and row["tile_frames_received"] > 10
    assert result["samples_lost"] == 0 and result["frames_lost"] == 0
    assert row["results_signed"] >= 1 and row["results_delivered"] == row["results_signed"] == row["province_stored"]
