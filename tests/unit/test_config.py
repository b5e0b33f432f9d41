"""A wrong site file fails with the file, the line, the YAML path and what to write instead."""

from __future__ import annotations

from pathlib import Path

import pytest

from station.config import ConfigError, load_site_config

EXAMPLE = Path("examples/site.yaml")


def test_example_site_has_every_device_kind() -> None:
    config = load_site_config(EXAMPLE)
    ops = [s.operation for s in config.stations]
    assert ops.count("低压电工作业") >= 4 and ops.count("熔化焊接与热切割作业") >= 2
    kinds = {d.kind for s in config.stations for d in s.devices}
    assert kinds == {"modbus-tcp", "modbus-rtu", "serial"}


def broken(tmp_path: Path, old: str, new: str) -> Path:
    text = EXAMPLE.read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "site.yaml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


def error_of(path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_site_config(path)
    return str(info.value)


def test_bad_port_names_path_line_and_fix(tmp_path: Path) -> None:
    path = broken(tmp_path, "host: a03-bench.hall.lan}", "host: a03-bench.hall.lan, port: seventy}")
    msg = error_of(path)
    assert "stations[2].devices[0].port" in msg
    line = next(i for i, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if "port: seventy" in text)
    assert f"{path}:{line}:" in msg  # the line of that device in the file
    assert "'seventy'" in msg and "TCP port (1..65535)" in msg


def test_misspelt_key(tmp_path: Path) -> None:
    msg = error_of(broken(tmp_path, "profile: extinguisher, host: a01", "profle: extinguisher, host: a01"))
    assert "stations[0].devices[1].profle" in msg and "remove it or fix its spelling" in msg
    assert "stations[0].devices[1].profile: Field required" in msg


def test_unknown_kind(tmp_path: Path) -> None:
    msg = error_of(broken(
        tmp_path, "kind: modbus-tcp, profile: lv-bench, host: a01", "kind: modbus, profile: lv-bench, host: a01"
    ))
    assert "stations[0].devices[0]" in msg and "modbus-tcp, modbus-rtu, serial" in msg


def test_unknown_profile_lists_the_known_ones(tmp_path: Path) -> None:
    msg = error_of(broken(tmp_path, "profile: lv-bench, host: a02", "profile: lv-bench-x, host: a02"))
    assert "stations[1].devices[0].profile" in msg and "known profiles: cpr-manikin, extinguisher" in msg


def test_undeclared_bus_and_duplicate_unit(tmp_path: Path) -> None:
    msg = error_of(broken(tmp_path, "bus: hall-a-485, unit: 2", "bus: hall-b, unit: 2"))
    assert "bus 'hall-b' is not declared" in msg
    msg = error_of(broken(tmp_path, "bus: hall-a-485, unit: 2", "bus: hall-a-485, unit: 1"))
    assert "unit 1 on bus hall-a-485 (/dev/serial/by-id/usb-hall-a-485) is already station A01 device cabinet's" in msg


def test_serial_device_with_a_modbus_profile(tmp_path: Path) -> None:
    port = "port: /dev/serial/by-id/usb-a01"
    msg = error_of(broken(tmp_path, f"profile: cpr-manikin, {port}", f"profile: lv-bench, {port}"))
    assert "lv-bench is a Modbus register map" in msg


def test_yaml_syntax_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("site: [unclosed\n", encoding="utf-8")
    assert "not valid YAML" in error_of(path)
    assert "cannot read the site config" in error_of(tmp_path / "nope.yaml")


def test_cli_reports_config_errors_without_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from station.cli import main

    path = broken(tmp_path, "unit: 3}", "unit: 300}")
    assert main(["sim", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "stations[2].devices[2].unit" in err and "Traceback" not in err
