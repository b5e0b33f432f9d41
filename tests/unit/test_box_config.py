"""A hall split over boxes (station.box): the rules the site file must follow, what `--box` selects,
and that a site without boxes is exactly what it was."""

from __future__ import annotations

from pathlib import Path

import pytest

from station.config import ConfigError, load_site_config
from tests.box_kit import example_raw, split, write


def error_of(path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_site_config(path)
    return str(info.value)


def test_a_site_without_boxes_is_one_box_running_everything() -> None:
    config = load_site_config("examples/site.yaml")
    assert config.boxes == () and all(st.box is None for st in config.stations)
    assert config.for_box(None) is config
    assert config.this_box is None and config.whole_site is config


def test_for_box_keeps_the_box_s_stations_and_their_buses(tmp_path: Path) -> None:
    config = load_site_config(write(split(example_raw()), tmp_path / "site.yaml"))
    a, b = config.for_box("A"), config.for_box("B")
    assert [st.id for st in a.stations] == ["A01", "A02", "A03", "A04"]
    assert [st.id for st in b.stations] == ["W01", "W02"]
    assert [bus.id for bus in a.buses] == ["hall-a-485"] and [bus.id for bus in b.buses] == ["w01-485", "w02-485"]
    assert a.this_box is not None and a.this_box.id == "A" and a.this_box.name == "一号机"
    assert a.whole_site is config and len(b.whole_site.stations) == 6
    assert config.this_box is None  # the whole site is nobody's part


def test_boxes_declared_but_no_box_chosen(tmp_path: Path) -> None:
    config = load_site_config(write(split(example_raw()), tmp_path / "site.yaml"))
    with pytest.raises(ConfigError, match=r"split over boxes A \(一号机\), B \(二号机\): give --box"):
        config.for_box(None)
    with pytest.raises(ConfigError, match=r"--box C: no such box; the site config declares A \(一号机\), B"):
        config.for_box("C")


def test_a_box_chosen_where_none_is_declared() -> None:
    with pytest.raises(ConfigError, match=r"--box A: the site config declares no boxes:.*remove --box"):
        load_site_config("examples/site.yaml").for_box("A")


def test_a_station_naming_an_unknown_box(tmp_path: Path) -> None:
    raw = split(example_raw())
    raw["stations"][4]["box"] = "C"
    msg = error_of(write(raw, tmp_path / "site.yaml"))
    assert "stations[4].box: station W01: box C is not declared under boxes: (known: A, B)" in msg


def test_a_station_of_no_box(tmp_path: Path) -> None:
    raw = split(example_raw())
    del raw["stations"][5]["box"]
    msg = error_of(write(raw, tmp_path / "site.yaml"))
    assert "stations[5]: station W02 names no box; with boxes: declared every station says which box" in msg


def test_a_box_named_where_no_boxes_are_declared(tmp_path: Path) -> None:
    raw = split(example_raw())
    del raw["boxes"]
    msg = error_of(write(raw, tmp_path / "site.yaml"))
    assert "stations[0].box: station A01 names box A, but no boxes: are declared" in msg


def test_a_box_without_stations_and_a_box_twice(tmp_path: Path) -> None:
    raw = split(example_raw(), [{"id": "A", "name": "一号机"}, {"id": "B", "name": "二号机"},
                                {"id": "C", "name": "三号机"}])
    assert "boxes[2]: box C (三号机) runs no station; give it stations (box: C) or remove it" in error_of(
        write(raw, tmp_path / "a.yaml"))
    raw = split(example_raw(), [{"id": "A", "name": "一号机"}, {"id": "B", "name": "二号机"},
                                {"id": "A", "name": "again"}])
    assert "boxes[2].id: box id A is used twice" in error_of(write(raw, tmp_path / "b.yaml"))


def test_one_rs485_line_on_two_boxes(tmp_path: Path) -> None:
    raw = split(example_raw())
    raw["stations"][3]["box"] = "B"  # A04's cabinet hangs on hall-a-485 with A01-A03's
    msg = error_of(write(raw, tmp_path / "site.yaml"))
    assert ("buses[0]: bus hall-a-485 carries devices of stations on box A and on box B (station A04); an RS-485 "
            "line is wired to one machine") in msg


def test_box_fields_are_checked(tmp_path: Path) -> None:
    raw = split(example_raw(), [{"id": "A/1", "name": "一号机"}, {"id": "B", "name": "二号机", "ui_url": "ftp://x"}])
    msg = error_of(write(raw, tmp_path / "site.yaml"))
    assert "boxes[0].id: String should match pattern" in msg and "boxes[1].ui_url" in msg
