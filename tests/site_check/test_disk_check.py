"""The disk check: free space against 3 years of evidence at the planned volume.

Low disk is shown two honest ways, each against the whole core check of a running simulated hall so
that it is the only failure: a planned volume larger than this machine's real disk, and a real small
filesystem (a tmpfs mounted for the test, which needs root; skipped where it cannot be mounted).
The arithmetic is checked by hand, and bitrates come from the camera check's figures when present.
"""

from __future__ import annotations

from pathlib import Path

from hardware_sim.site import SimSite
from station.site_check.disk_check import DEFAULT_BITRATE_BPS, check_disk, planned_bytes
from station.site_check.report import Check, CheckContext
from tests.integration.small_disk import small_disk
from tests.site_check.core_kit import (
    CONFIG,
    EXAMPLE,
    failed_ids,
    failures,
    prepared_data_dir,
    run_core,
    with_acceptance,
)


async def test_a_planned_volume_beyond_the_disk_fails_only_the_disk_check(tmp_path: Path) -> None:
    data = prepared_data_dir(tmp_path / "data")
    async with SimSite(CONFIG, cameras=False) as site:
        report = await run_core(site.resolved_config(), data, attempts_per_day=10000, exam_days_per_year=366,
                                minutes_per_attempt=600)
    assert failed_ids(report) == ["disk"], failures(report)
    check = report.failures[0]
    assert isinstance(check.figures["needed_gb"], float) and isinstance(check.figures["free_gb"], float)
    assert check.figures["needed_gb"] > check.figures["free_gb"]
    assert "10000 attempts/day x 366 days x 3 years x 600 min" in check.detail
    assert check.fix is not None and "GB more" in check.fix


async def test_a_small_real_filesystem_fails_only_the_disk_check(tmp_path: Path) -> None:
    with small_disk(tmp_path / "small", size_mb=64) as disk:
        data = prepared_data_dir(disk / "data")
        async with SimSite(CONFIG, cameras=False) as site:
            # 3 years x 1 attempt x 5 min at 2 Mbit/s per camera: about 300 MB, on a 64 MB disk
            report = await run_core(site.resolved_config(), data, minutes_per_attempt=5)
    assert failed_ids(report) == ["disk"], failures(report)
    free = report.failures[0].figures["free_gb"]
    assert isinstance(free, float) and free <= 64 * 2**20 / 1e9


async def test_the_volume_is_attempts_times_the_station_cameras_rate(tmp_path: Path) -> None:
    config = with_acceptance(CONFIG, attempts_per_day=40, exam_days_per_year=250, minutes_per_attempt=45)
    rates = {f"{st.id}/{cam.id}": float(DEFAULT_BITRATE_BPS) for st in config.stations for cam in st.cameras}
    # 8 cameras over 6 stations: 8/6 cameras per attempt on average
    expected = 40 * 250 * 3 * 45 * 60 * (8 / 6) * 2e6 / 8
    assert abs(planned_bytes(config, rates) - expected) < 1
    assert round(expected / 1e12, 1) == 27.0  # 27 TB: the example plan needs real storage


async def test_the_camera_checks_measured_bitrates_are_used(tmp_path: Path) -> None:
    config = with_acceptance(CONFIG, attempts_per_day=1, exam_days_per_year=1, minutes_per_attempt=1)
    ctx = CheckContext(config=config, config_path=EXAMPLE, data_dir=tmp_path, sample_s=1)
    measured = [Check(id=f"camera:{st.id}/{cam.id}", category="camera", title="t", passed=True, detail="d",
                      station=st.id, subject=cam.id, figures={"bitrate_kbps": 600})
                for st in config.stations for cam in st.cameras]
    [with_measured] = await check_disk(ctx, measured)
    [with_default] = await check_disk(ctx)
    assert with_measured.figures["bitrates_measured"] == 8 and with_measured.figures["mean_bitrate_mbps"] == 0.6
    assert with_default.figures["bitrates_default"] == 8 and with_default.figures["mean_bitrate_mbps"] == 2.0
    assert with_default.figures["needed_gb"] == round(3 * 60 * (8 / 6) * 2e6 / 8 / 1e9, 3)
