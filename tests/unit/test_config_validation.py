"""What the site config refuses beyond a field's own shape: a key written twice, two devices on one
Modbus endpoint. Each refusal names the file, where, both parties and what to do."""

from __future__ import annotations

from pathlib import Path

import pytest

from station.config import ConfigError, load_site_config

EXAMPLE = Path("examples/site.yaml")


def edited(tmp_path: Path, old: str, new: str) -> Path:
    text = EXAMPLE.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"examples/site.yaml changed: {old!r} is no longer there once"
    path = tmp_path / "site.yaml"
    path.write_text(text.replace(old, new), encoding="utf-8")
    return path


def line_of(path: Path, fragment: str, nth: int = 1) -> int:
    lines = [i for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if fragment in line]
    return lines[nth - 1]


def error_of(path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_site_config(path)
    return str(info.value)


# --- duplicate keys ------------------------------------------------------------------------------

def test_a_key_written_twice_in_a_block_mapping(tmp_path: Path) -> None:
    path = edited(tmp_path, "  min_free_gb: 20\n", "  min_free_gb: 20\n  data_dir: /srv/exam\n")
    mapping, first, second = line_of(path, "storage:"), line_of(path, "data_dir:"), line_of(path, "data_dir:", 2)
    assert second == first + 2
    assert error_of(path) == (f"{path}: key 'data_dir' appears twice in the mapping at line {mapping + 1} "
                              f"(lines {first} and {second}); keep one of them")


def test_a_key_written_twice_in_a_flow_mapping(tmp_path: Path) -> None:
    path = edited(tmp_path, "host: a01-bench.hall.lan, port: 502,", "host: a01-bench.hall.lan, port: 502, port: 503,")
    line = line_of(path, "a01-bench")
    assert f"{path}: key 'port' appears twice in the mapping at line {line} (both on line {line})" in error_of(path)


def test_the_example_has_no_duplicate_keys() -> None:
    load_site_config(EXAMPLE)


# --- one endpoint, one device --------------------------------------------------------------------

def test_two_modbus_tcp_devices_on_one_host_port_and_unit(tmp_path: Path) -> None:
    path = edited(tmp_path, "host: a02-bench.hall.lan}", "host: a01-bench.hall.lan}")
    msg = error_of(path)
    assert f"{path}:{line_of(path, 'a01-bench', 2)}: stations[1].devices[0]: " in msg
    assert ("station A02 device bench: Modbus TCP a01-bench.hall.lan:502 unit 1 is already station A01 device "
            "bench's address") in msg
    assert "give each device its own host or port, or its own unit id behind a shared gateway" in msg


def test_host_names_compare_as_dns_does(tmp_path: Path) -> None:
    msg = error_of(edited(tmp_path, "host: a02-bench.hall.lan}", "host: A01-Bench.hall.lan., port: 502, unit: 1}"))
    assert "station A02 device bench: Modbus TCP A01-Bench.hall.lan.:502 unit 1 is already station A01 device" in msg


def test_one_gateway_with_several_unit_ids_is_allowed(tmp_path: Path) -> None:
    config = load_site_config(edited(tmp_path, "host: a02-bench.hall.lan}", "host: a01-bench.hall.lan, unit: 2}"))
    assert config.station("A02").devices[0].host == "a01-bench.hall.lan"  # type: ignore[union-attr]


def test_two_rtu_devices_with_one_unit_on_one_bus(tmp_path: Path) -> None:
    path = edited(tmp_path, "bus: hall-a-485, unit: 2", "bus: hall-a-485, unit: 1")
    msg = error_of(path)
    assert f"{path}:{line_of(path, 'bus: hall-a-485, unit: 1', 2)}: stations[1].devices[2]: " in msg
    assert ("station A02 device cabinet: unit 1 on bus hall-a-485 (/dev/serial/by-id/usb-hall-a-485) is already "
            "station A01 device cabinet's address") in msg
    assert "every device on one RS-485 line needs its own unit id" in msg


def test_two_buses_on_one_serial_port(tmp_path: Path) -> None:
    path = edited(tmp_path, "port: /dev/serial/by-id/usb-w02-485,", "port: /dev/serial/by-id/usb-w01-485,")
    msg = error_of(path)
    assert f"{path}:{line_of(path, 'w02-485, port')}: buses[2]: bus w02-485: serial port " in msg
    assert "/dev/serial/by-id/usb-w01-485 is already bus w01-485's" in msg
    assert "one port is one RS-485 line: declare it once and put its devices on it with their own unit ids" in msg


def test_a_serial_device_on_a_port_already_taken(tmp_path: Path) -> None:
    path = edited(tmp_path, "port: /dev/serial/by-id/usb-a02-manikin}", "port: /dev/serial/by-id/usb-a01-manikin}")
    msg = error_of(path)
    assert "stations[1].devices[3]: station A02 device manikin: serial port /dev/serial/by-id/usb-a01-manikin is " \
        "already station A01 device manikin's" in msg
    bus = error_of(edited(tmp_path, "port: /dev/serial/by-id/usb-a02-manikin}", "port: /dev/serial/by-id/usb-w01-485}"))
    assert "station A02 device manikin: serial port /dev/serial/by-id/usb-w01-485 is already bus w01-485's" in bus


def test_devices_sharing_one_rs485_line_with_their_own_units_are_allowed() -> None:
    config = load_site_config(EXAMPLE)
    on_w01 = [d for d in config.station("W01").devices if getattr(d, "bus", None) == "w01-485"]
    assert sorted(d.unit for d in on_w01) == [1, 2, 3]  # type: ignore[union-attr]
