"""`examstation run`: the controller against the site's hardware (here the simulator, in this
process, with the config rewritten to its endpoints), and its refusal of a missing database."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import yaml

from hardware_sim.site import SimSite
from station.config import load_site_config

CONFIG = load_site_config("examples/site.yaml")


def test_run_refuses_a_missing_database(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "station.cli", "run", "--config", "examples/site.yaml",
                          "--data-dir", str(tmp_path), "--duration", "1"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert "examstation db upgrade" in out.stderr and "Traceback" not in out.stderr


async def test_run_polls_every_device_of_the_site(tmp_path: Path) -> None:
    async with SimSite(CONFIG, cameras=False) as site:
        config = tmp_path / "site.yaml"
        config.write_text(yaml.safe_dump(site.resolved_config().model_dump(mode="json"), allow_unicode=True),
                          encoding="utf-8")
        base = [sys.executable, "-m", "station.cli"]
        up = await asyncio.create_subprocess_exec(*base, "db", "upgrade", "--config", str(config), "--data-dir",
                                                  str(tmp_path / "data"), stdout=asyncio.subprocess.PIPE)
        assert b"revision" in (await up.communicate())[0]
        run = await asyncio.create_subprocess_exec(
            *base, "run", "--port", "0", "--config", str(config), "--data-dir", str(tmp_path / "data"),
            "--duration", "4",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(run.communicate(), 60)
    text = out.decode()
    assert run.returncode == 0, err.decode()
    assert "6 stations, 32 devices" in text
    assert text.count(" online") == 32, text  # every device reported online once
    assert "OFFLINE" not in text
