"""`examstation install-service --root DIR`: the unit systemd gets (checked by `systemd-analyze
verify` where it is installed), the config copied, the data directory with its database; a config
already there and different is kept; `--dry-run` writes nothing. Each runs the real command."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from station.config import load_site_config

EXAMPLE = Path("examples/site.yaml")
VENV_EXAMSTATION = Path(sys.executable).parent / "examstation"


def install(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "station.cli", "install-service", *args], capture_output=True,
                          text=True, timeout=60)


def test_root_gets_a_unit_systemd_accepts_the_config_and_a_data_directory(tmp_path: Path) -> None:
    done = install("--config", str(EXAMPLE), "--root", str(tmp_path))
    assert done.returncode == 0, done.stderr
    unit_file = tmp_path / "etc/systemd/system/examstation.service"
    unit = unit_file.read_text().splitlines()
    for line in ("Type=notify", "NotifyAccess=main", "WatchdogSec=30", "Restart=on-failure", "RestartSec=5",
                 "RestartPreventExitStatus=2",
                 "User=examstation", "SupplementaryGroups=dialout", "ProtectSystem=strict",
                 "ReadWritePaths=/var/lib/examstation", "PrivateTmp=true", "WantedBy=multi-user.target",
                 f"ExecStart={VENV_EXAMSTATION} run --config /etc/examstation/site.yaml "
                 "--data-dir /var/lib/examstation --log-format json"):
        assert line in unit, line
    assert not any(line.startswith("PrivateDevices") for line in unit)  # the serial ports must stay visible
    assert (tmp_path / "etc/examstation/site.yaml").read_bytes() == EXAMPLE.read_bytes()
    assert (tmp_path / "var/lib/examstation/examstation.sqlite3").is_file()  # `run` refuses to start without it
    assert "no user is created" in done.stdout and "systemctl daemon-reload && systemctl enable --now examstation" \
        in done.stdout
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed: the unit's lines are checked, systemd's own verify is not")
    verify = subprocess.run(["systemd-analyze", "verify", str(unit_file)], capture_output=True, text=True, timeout=60)
    assert verify.returncode == 0 and verify.stderr == "", verify.stderr  # a misspelt key is only a warning there


def test_a_different_config_already_installed_is_kept_and_said(tmp_path: Path) -> None:
    edited = tmp_path / "edited.yaml"
    edited.write_bytes(EXAMPLE.read_bytes() + b"# tuned on site\n")
    assert install("--config", str(edited), "--root", str(tmp_path / "root")).returncode == 0
    again = install("--config", str(EXAMPLE), "--root", str(tmp_path / "root"), "--data-dir", "/srv/exam-data",
                    "--user", "exam")
    assert again.returncode == 0, again.stderr
    assert "exists and differs; it is KEPT" in again.stdout
    assert (tmp_path / "root/etc/examstation/site.yaml").read_bytes() == edited.read_bytes()
    unit = (tmp_path / "root/etc/systemd/system/examstation.service").read_text().splitlines()
    assert "User=exam" in unit and "ReadWritePaths=/srv/exam-data" in unit  # the unit is ours: replaced
    assert load_site_config(tmp_path / "root/etc/examstation/site.yaml").site.id == "GD-SZ-0101"


def test_dry_run_writes_nothing(tmp_path: Path) -> None:
    done = install("--config", str(EXAMPLE), "--root", str(tmp_path), "--dry-run")
    assert done.returncode == 0, done.stderr
    assert list(tmp_path.iterdir()) == []
    assert f"would write the unit: {tmp_path}/etc/systemd/system/examstation.service" in done.stdout
    assert "would create the data directory" in done.stdout


def test_a_relative_data_dir_or_odd_user_is_refused(tmp_path: Path) -> None:
    relative = install("--root", str(tmp_path), "--data-dir", "data")
    assert relative.returncode == 2 and "absolute path" in relative.stderr
    odd = install("--root", str(tmp_path), "--user", "Exam Station")
    assert odd.returncode == 2 and "--user" in odd.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_box_of_a_split_hall_gets_its_box_in_the_unit_and_a_missing_one_is_named(tmp_path: Path) -> None:
    """On a hall split over boxes, `run` needs --box: a unit without it would fail at every start."""
    from tests.box_kit import example_raw, split, write

    config = write(split(example_raw()), tmp_path / "split.yaml")
    done = install("--config", str(config), "--root", str(tmp_path / "a"), "--box", "B")
    assert done.returncode == 0, done.stderr
    exec_start = [line for line in (tmp_path / "a/etc/systemd/system/examstation.service").read_text().splitlines()
                  if line.startswith("ExecStart=")]
    assert exec_start == [f"ExecStart={VENV_EXAMSTATION} run --config /etc/examstation/site.yaml --data-dir "
                          "/var/lib/examstation --log-format json --box B"]
    for args, words in ((), "--box"), (("--box", "C"), "C"):
        refused = install("--config", str(config), "--root", str(tmp_path / "b"), *args)
        assert refused.returncode == 2 and words in refused.stderr, refused.stderr
        assert not (tmp_path / "b").exists(), "nothing is written for a unit that could not start"
