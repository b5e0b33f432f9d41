"""`examstation site-check` as a person runs it: a separate process, the site config resolved to the
simulated hall's endpoints, a data directory made as `db upgrade` and `keys init` make it.

With the hall running it exits 0 and `--json` lists every check as passed (the core probes: this
build's default list); with the simulator stopped it exits 3 and names every device as unreachable.
The report is kept in the data directory either way.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import yaml

from hardware_sim.site import SimSite
from station.site_check.report import latest_report
from station.site_check_command import SITE_NOT_FIT
from tests.site_check.core_kit import CONFIG, SMALL_PLAN, prepared_data_dir, with_acceptance

CLI = [sys.executable, "-m", "station.cli"]


async def cli(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(*CLI, *args, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_site_check_passes_on_the_running_hall_and_names_each_device_once_it_is_gone(tmp_path: Path) -> None:
    data = tmp_path / "data"
    hall = tmp_path / "hall.yaml"
    async with SimSite(CONFIG, cameras=False) as site:
        resolved = with_acceptance(site.resolved_config(), **SMALL_PLAN)
        hall.write_text(yaml.safe_dump(resolved.model_dump(mode="json"), allow_unicode=True), encoding="utf-8")
        prepared_data_dir(data)
        code, out, err = await cli("site-check", "--config", str(hall), "--data-dir", str(data), "--json")
    assert code == 0, out + err
    doc: dict[str, Any] = json.loads(out)
    assert doc["verdict"] == "pass" and doc["counts"]["fail"] == 0
    devices = {f"device:{st.id}/{d.name}" for st in CONFIG.stations for d in st.devices}
    ids = [c["id"] for c in doc["checks"]]
    assert devices <= set(ids) and {"database", "key", "disk"} <= set(ids)
    assert all(c["status"] == "pass" for c in doc["checks"])
    assert "\x1b[" not in err  # no progress display: --json, and stderr is not a terminal

    code, out, err = await cli("site-check", "--config", str(hall), "--data-dir", str(data), "--json")
    assert code == SITE_NOT_FIT, out + err
    doc = json.loads(out)
    failed = {c["id"]: c for c in doc["checks"] if c["status"] == "fail"}
    assert set(failed) == devices  # every device named, and nothing else blamed
    bench = failed["device:A01/bench"]["detail"]
    assert "cannot connect" in bench and "A01" in bench
    assert "cannot open" in failed["device:A01/manikin"]["detail"] or "no such" in \
        failed["device:A01/manikin"]["detail"].lower()
    saved = latest_report(data)
    assert saved is not None and not saved.passed and len(saved.failures) == len(devices)


async def test_the_table_shows_the_verdict_and_each_failure_with_its_fix(tmp_path: Path) -> None:
    data = tmp_path / "data"
    hall = tmp_path / "hall.yaml"
    config = with_acceptance(CONFIG, **SMALL_PLAN)  # nothing running at these addresses
    hall.write_text(yaml.safe_dump(config.model_dump(mode="json"), allow_unicode=True), encoding="utf-8")
    code, out, err = await cli("site-check", "--config", str(hall), "--data-dir", str(data))
    assert code == SITE_NOT_FIT, err
    assert "FAIL" in out and "fix:" in out
    assert "no database at" in out and "examstation db upgrade" in out
    assert "report kept in" in out
