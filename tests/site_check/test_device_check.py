"""The device probe against the simulated hall (real Modbus TCP sockets, RS-485 on ptys, manikins and
ID-card readers on ptys), through the controller's own drivers.

A healthy hall passes every core check; a device that stops answering fails its own check and
nothing else; a device answering with another profile's identity register (another kind of
device at that unit id) fails its own check, naming what answers.
"""

from __future__ import annotations

from pathlib import Path

from hardware_sim.modbus_server import answer_as
from hardware_sim.site import SimSite
from tests.site_check.core_kit import CONFIG, failed_ids, failures, prepared_data_dir, run_core


async def test_a_healthy_hall_passes_every_core_check(tmp_path: Path) -> None:
    data = prepared_data_dir(tmp_path / "data")
    async with SimSite(CONFIG, cameras=False) as site:
        report = await run_core(site.resolved_config(), data)
    assert failed_ids(report) == [], failures(report)
    ids = [c.id for c in report.checks]
    devices = [f"device:{st.id}/{d.name}" for st in CONFIG.stations for d in st.devices]
    assert [i for i in ids if i.startswith("device:")] == devices  # every device, in config order
    assert {"database", "key", "disk"} <= set(ids)
    assert ids.index("station:A01/wiring-bench") < ids.index(devices[0]) < ids.index("disk")  # CATEGORIES order
    bench = next(c for c in report.checks if c.id == "device:A01/bench")
    assert bench.figures["identity_code"] == "0x4C56" and bench.figures["errors"] == 0
    assert isinstance(bench.figures["polls_ok"], int) and bench.figures["polls_ok"] >= 10  # 1.5 s at 100 ms
    weldsim = next(c for c in report.checks if c.id == "device:W01/weldsim")  # RTU, 20 ms, sharing its bus
    assert isinstance(weldsim.figures["polls_ok"], int) and weldsim.figures["polls_ok"] >= 40
    manikin = next(c for c in report.checks if c.id == "device:A01/manikin")
    assert manikin.figures["firmware"] == "1.2.0"


async def test_a_dead_device_fails_its_own_check_and_no_other(tmp_path: Path) -> None:
    data = prepared_data_dir(tmp_path / "data")
    async with SimSite(CONFIG, cameras=False) as site:
        site.rigs["A03"].faults["extinguisher"].no_answer = True  # powered, silent
        report = await run_core(site.resolved_config(), data)
    assert failed_ids(report) == ["device:A03/extinguisher"], failures(report)
    check = report.failures[0]
    assert "no answer" in check.detail and "timed out" in check.detail
    assert check.fix is not None and "power" in check.fix


async def test_a_device_answering_as_another_profile_fails_naming_what_answers(tmp_path: Path) -> None:
    data = prepared_data_dir(tmp_path / "data")
    async with SimSite(CONFIG, cameras=False) as site:
        # On W01's RS-485 line, unit 2 (the power source) answers with the welding simulator's code:
        # the two units' addresses are swapped. The register map alone would not show it.
        answer_as(site.rigs["W01"].faults["power"], "weld-sim")
        report = await run_core(site.resolved_config(), data)
    assert failed_ids(report) == ["device:W01/power"], failures(report)
    check = report.failures[0]
    assert "0x5753 (the code of weld-sim), expected 0x5750 (weld-power)" in check.detail
    assert check.fix is not None and "unit id" in check.fix
