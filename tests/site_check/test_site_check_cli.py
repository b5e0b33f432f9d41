"""`examstation site-check`'s console output as a person reads it: a separate process, nothing
running at the site's addresses; the verdict, each failure with its fix, where the report is kept.
(The passing hall and the stopped one, through `examstation sim --write-config`, are
tests/e2e/test_site_check_sim.py.)"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import yaml

from station.site_check_command import PUBLISH_FAILED, SITE_NOT_FIT
from tests.site_check.core_kit import CONFIG, SMALL_PLAN, prepared_data_dir, with_acceptance

CLI = [sys.executable, "-m", "station.cli"]


async def cli(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(*CLI, *args, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


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


async def test_a_report_that_cannot_reach_the_province_says_so_with_its_own_exit_status(tmp_path: Path) -> None:
    data = prepared_data_dir(tmp_path / "data")
    hall = tmp_path / "hall.yaml"
    config = with_acceptance(CONFIG, **SMALL_PLAN)  # its broker, exam.gd.example, is not reachable from here
    hall.write_text(yaml.safe_dump(config.model_dump(mode="json"), allow_unicode=True), encoding="utf-8")
    code, out, err = await cli("site-check", "--config", str(hall), "--data-dir", str(data), "--json", "--publish")
    assert code == PUBLISH_FAILED, out + err
    assert "NOT published" in err and "Traceback" not in err
    assert json.loads(out)["verdict"] == "fail"  # the check's own report is still printed
