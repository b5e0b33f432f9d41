"""Each station against the requirement rows of its operation type.

A station missing a required device (A02 without its ID-card reader) fails exactly that row and
nothing else, even though everything it does have works; a province's override adds a row that
the hall does not meet, and the failure names the row's source.
"""

from __future__ import annotations

from pathlib import Path

from hardware_sim.site import SimSite
from station.site_check.report import CheckContext
from station.site_check.station_check import check_stations
from tests.site_check.core_kit import CONFIG, EXAMPLE, failed_ids, failures, prepared_data_dir, run_core, without_device


async def test_a_station_missing_a_required_device_fails_that_row_only(tmp_path: Path) -> None:
    config = without_device(CONFIG, "A02", "idreader")
    data = prepared_data_dir(tmp_path / "data")
    async with SimSite(config, cameras=False) as site:
        report = await run_core(site.resolved_config(), data)
    assert failed_ids(report) == ["station:A02/id-card-reader"], failures(report)
    check = report.failures[0]
    assert check.detail == "station A02 (低压电工作业) needs 1 id-card-reader, has none"
    assert check.fix is not None and "profile: id-card-reader" in check.fix
    assert check.source is not None and "id-card-reader.md" in check.source


async def test_every_row_of_each_operation_is_checked_per_station(tmp_path: Path) -> None:
    ctx = CheckContext(config=CONFIG, config_path=EXAMPLE, data_dir=tmp_path, sample_s=1)
    checks = await check_stations(ctx)
    assert all(c.passed for c in checks), [c.detail for c in checks if not c.passed]
    a01 = [c.subject for c in checks if c.station == "A01"]
    w01 = [c.subject for c in checks if c.station == "W01"]
    assert a01 == ["wiring-bench", "cpr-manikin", "extinguisher-trainer", "ppe-cabinet", "id-card-reader", "camera"]
    assert w01 == ["welding-set", "cpr-manikin", "extinguisher-trainer", "ppe-cabinet", "id-card-reader", "camera"]
    weld = next(c for c in checks if c.id == "station:W01/welding-set")
    assert weld.detail == "2 of 1 needed: weldsim (weld-sim), power (weld-power)"
    assert all(c.source for c in checks)


async def test_a_province_override_adds_a_row_the_hall_does_not_meet(tmp_path: Path) -> None:
    override = tmp_path / "gd-requirements.yaml"
    override.write_text(
        "operations:\n"
        "  熔化焊接与热切割作业:\n"
        "    - {id: camera, title_zh: 监控摄像机, cameras: 2, source: 广东省考点建设标准 (booth and overview)}\n",
        encoding="gbk")  # a province's file saved on a Chinese PC
    data = CONFIG.model_dump(mode="python")
    data["acceptance"]["requirements"] = override.name  # relative: next to the site config
    config_path = tmp_path / "site.yaml"
    ctx = CheckContext(config=type(CONFIG).model_validate(data), config_path=config_path, data_dir=tmp_path,
                       sample_s=1)
    failed = [c for c in await check_stations(ctx) if not c.passed]
    assert [c.id for c in failed] == ["station:W02/camera"]  # W01 has two cameras, W02 one
    assert failed[0].source == "广东省考点建设标准 (booth and overview)"
    assert failed[0].detail == "station W02 (熔化焊接与热切割作业) needs 2 camera, has only overview"
