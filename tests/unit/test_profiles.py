"""Every shipped profile loads; a broken profile names the file, the point and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from devices.errors import DeviceConfigError
from devices.profile import ModbusProfile, available_profiles, load_profile, load_profile_file

CANONICAL = {  # DESIGN.md's examples of canonical signals, each must be provided by some profile
    "bench.km1", "bench.motor_dir", "bench.short_trip", "bench.rcd_trip", "bench.check_result",
    "manikin.compression", "manikin.ventilation", "extinguisher.aim_zone", "weldsim.travel_speed_mm_s",
    "weldsim.work_angle_deg", "weldsim.ctwd_mm", "weld.current_a",
}


def test_all_profiles_load_and_cover_the_design_signals() -> None:
    names = available_profiles()
    assert {"lv-bench", "cpr-manikin", "extinguisher", "ppe-cabinet", "weld-sim", "weld-power"} <= set(names)
    signals = {p.signal for n in names for p in load_profile(n).points}
    assert signals >= CANONICAL
    assert any(s.startswith("cabinet.slot.") for s in signals)


def test_every_modbus_point_documents_itself() -> None:
    for name in available_profiles():
        profile = load_profile(name)
        if isinstance(profile, ModbusProfile):
            assert profile.source
            for p in profile.points:
                assert p.description, f"{name}: {p.signal} has no description"


def test_overlapping_points_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_text(
        "protocol: modbus\nprofile: x\ntitle_zh: 测试\nvendor: v\nsource: s\npoints:\n"
        "  - {signal: x.a, table: input, address: 0, type: uint32}\n"
        "  - {signal: x.b, table: input, address: 1, type: uint16}\n", encoding="utf-8")
    with pytest.raises(DeviceConfigError, match=r"x.b overlaps x.a at input 1; move one of them"):
        load_profile_file(path)


def test_bad_point_names_signal(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_text(
        "protocol: modbus\nprofile: x\ntitle_zh: 测试\nvendor: v\nsource: s\npoints:\n"
        "  - {signal: x.a, table: discrete, address: 0, type: uint16}\n", encoding="utf-8")
    with pytest.raises(DeviceConfigError, match=r"points\[0\] \(x.a\).*discrete holds single bits"):
        load_profile_file(path)


def test_unknown_profile() -> None:
    with pytest.raises(DeviceConfigError, match="known profiles: cpr-manikin"):
        load_profile("nope")
