"""Starting on a full disk (issue 11): the operator is told the disk is full and where, with what to do,
and the command fails; no traceback and no "check the file and its permissions" that sends them
looking at the wrong thing. The disk is a real 16 MB tmpfs (see small_disk)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from station.signing import SiteKey
from station.stored import ensure_database
from tests.integration.small_disk import fill, small_disk

ROOT = Path(__file__).resolve().parents[2]


def examstation(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "station.cli", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize("command", [["run", "--port", "0", "--duration", "2"],
                                     ["demo", "--port", "0", "--duration", "2"]])
def test_a_full_disk_at_start_is_named_and_fails_the_command(tmp_path: Path, command: list[str]) -> None:
    with small_disk(tmp_path / "disk") as disk:
        data = disk / "data"
        ensure_database(data)
        SiteKey.load_or_create(data)
        fill(disk)
        done = examstation(*command, "--data", str(data))
    assert done.returncode == 2, (done.returncode, done.stderr[-2000:])
    assert "Traceback" not in done.stderr, done.stderr[-2000:]
    error = done.stderr.strip().splitlines()[-1]
    assert error.startswith("examstation: "), error
    assert "is full" in error and str(disk) in error, error
    assert "permissions" not in error, error
