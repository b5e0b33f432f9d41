"""Issue 15's acceptance, as a person would do it: `examstation sim --write-config hall.yaml` running,
`examstation site-check --config hall.yaml --json` exits 0 with every check passed; the simulator
stopped, it exits non-zero and names every device as unreachable. Real processes, the real CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from station.config import load_site_config

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "site.yaml"
CATEGORIES = {"station", "device", "camera", "clock", "disk", "database", "key", "uplink"}


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "station.cli", *args]


def _site_check(hall: Path, cwd: Path) -> tuple[int, dict[str, object]]:
    done = subprocess.run(_cli("site-check", "--config", str(hall), "--json"), cwd=cwd, capture_output=True,
                          text=True, timeout=180, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.stdout.strip(), f"no JSON (exit {done.returncode}): {done.stderr[-2000:]}"
    return done.returncode, json.loads(done.stdout)


def test_site_check_passes_against_the_running_simulator_and_names_each_device_when_it_stops(
        tmp_path: Path) -> None:
    hall, data = tmp_path / "hall.yaml", tmp_path / "data"
    log = tmp_path / "sim.log"
    with log.open("w") as sim_log:
        sim = subprocess.Popen(_cli("sim", "--config", str(EXAMPLE), "--data-dir", str(data), "--write-config",
                                    str(hall)), cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=sim_log,
                               env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        deadline = time.monotonic() + 60
        while not hall.exists():
            assert sim.poll() is None, f"the simulator ended: {log.read_text()}"
            assert time.monotonic() < deadline, "the simulator wrote no config within 60 s"
            time.sleep(0.2)
        written = load_site_config(hall)  # what it wrote is a valid site config
        assert written.uplink.province_key and written.acceptance.ntp_server

        status, report = _site_check(hall, tmp_path)
        checks = report["checks"]
        assert isinstance(checks, list)
        failed = [c for c in checks if c["status"] != "pass"]
        assert status == 0 and report["verdict"] == "pass" and not failed, failed
        assert {c["category"] for c in checks} == CATEGORIES
        devices = {c["id"] for c in checks if c["category"] == "device"}
        example = load_site_config(EXAMPLE)
        assert devices == {f"device:{s.id}/{d.name}" for s in example.stations for d in s.devices}
        assert len(report["snapshots"]) == sum(len(s.cameras) for s in example.stations)  # type: ignore[arg-type]
    finally:
        sim.send_signal(signal.SIGTERM)
        sim.wait(30)

    status, report = _site_check(hall, tmp_path)
    assert status == 3 and report["verdict"] == "fail"
    unreachable = {c["id"] for c in report["checks"] if c["category"] == "device" and c["status"] == "fail"}  # type: ignore[union-attr]
    assert unreachable == devices, "every device of the stopped simulator is named"
