"""The device pages in docs/devices cannot drift from the profiles they document.

Every Modbus profile has a page; the register table in it is exactly what `render_register_table`
makes of the profile; the page's mbpoll examples are the block reads the controller plans; the
README links every page. Plus the rendering itself, row by row, on a tiny in-memory profile.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from devices.modbus.block_plan import plan_blocks
from devices.profile import ModbusProfile, RegisterPoint, available_profiles, load_profile
from devices.profile_doc import (
    BEGIN_MARKER,
    END_MARKER,
    extract_register_table,
    main,
    render_register_table,
    replace_register_table,
)

DOCS = Path(__file__).resolve().parents[2] / "docs" / "devices"

MODBUS_PROFILES = [n for n in available_profiles() if isinstance(load_profile(n), ModbusProfile)]

MBPOLL_TYPE = {"coil": "0", "discrete": "1", "holding": "4", "input": "3"}


def _modbus(name: str) -> ModbusProfile:
    profile = load_profile(name)
    assert isinstance(profile, ModbusProfile)
    return profile


def test_the_shipped_modbus_profiles_are_all_documented() -> None:
    assert set(MODBUS_PROFILES) >= {"lv-bench", "extinguisher", "ppe-cabinet", "weld-sim", "weld-power"}


@pytest.mark.parametrize("name", MODBUS_PROFILES)
def test_page_table_equals_the_rendered_profile(name: str) -> None:
    page_path = DOCS / f"{name}.md"
    assert page_path.is_file(), f"Modbus profile {name} has no page; write {page_path} (see docs/devices/README.md)"
    page = page_path.read_text(encoding="utf-8")
    assert page.count(BEGIN_MARKER) == 1 and page.count(END_MARKER) == 1, f"{page_path}: one marker pair expected"
    between = page.split(BEGIN_MARKER, 1)[1].split(END_MARKER, 1)[0]
    assert between == "\n" + render_register_table(_modbus(name)), (
        f"{page_path} is out of date with devices/profiles/{name}.yaml; "
        f"run: python -m devices.profile_doc {name} --write {page_path.relative_to(DOCS.parents[1])}"
    )


@pytest.mark.parametrize("name", MODBUS_PROFILES)
def test_page_mbpoll_examples_are_the_planned_reads(name: str) -> None:
    page = (DOCS / f"{name}.md").read_text(encoding="utf-8")
    commands = [line for line in page.splitlines() if line.startswith("mbpoll ")]
    for block in plan_blocks(_modbus(name)):
        wanted = f"-t {MBPOLL_TYPE[block.table]} -r {block.start + 1} -c {block.count} "
        assert any(wanted in c for c in commands), f"{name}.md: no mbpoll example reading {block} ({wanted.strip()})"


@pytest.mark.parametrize("name", MODBUS_PROFILES)
def test_page_names_the_device_and_its_source_rule(name: str) -> None:
    page = (DOCS / f"{name}.md").read_text(encoding="utf-8")
    assert _modbus(name).title_zh in page.splitlines()[0]
    assert "source:" in page and "Keep the signal names" in page


def test_readme_links_every_page() -> None:
    readme = (DOCS / "README.md").read_text(encoding="utf-8")
    linked = set(re.findall(r"\]\(([\w-]+\.md)\)", readme))
    assert {f"{n}.md" for n in MODBUS_PROFILES} | {"manikin-protocol.md"} <= linked


# --- render_register_table on a tiny profile ------------------------------------------------

HEADER = (
    "| signal | table | address | mbpoll ref | type | scale / unit | deadband | meaning | description |\n"
    "|---|---|---|---|---|---|---|---|---|\n"
)


def _tiny(*points: dict[str, Any]) -> ModbusProfile:
    return ModbusProfile(
        protocol="modbus", profile="tiny", title_zh="测试设备", vendor="test", source="test",
        points=tuple(RegisterPoint.model_validate(p) for p in points),
    )


ROWS: list[tuple[dict[str, Any], str]] = [
    (
        {"signal": "t.coil", "table": "coil", "address": 0, "type": "bool"},
        "| `t.coil` | coil (FC1) | 0 | 1 | bool |  |  |  |  |",
    ),
    (
        {"signal": "t.door", "table": "discrete", "address": 16, "type": "bool", "description": "柜门打开"},
        "| `t.door` | discrete (FC2) | 16 | 17 | bool |  |  |  | 柜门打开 |",
    ),
    (
        {"signal": "t.flag", "table": "holding", "address": 101, "type": "bool", "bit": 3},
        "| `t.flag` | holding (FC3) | 101 | 102 | bool, bit 3 |  |  |  |  |",
    ),
    (
        {"signal": "t.dir", "table": "input", "address": 0, "enum": {2: "reverse", 0: "stopped", 1: "forward"}},
        "| `t.dir` | input (FC4) | 0 | 1 | uint16 |  |  | 0 stopped, 1 forward, 2 reverse |  |",
    ),
    (
        {"signal": "t.volts_v", "table": "input", "address": 4, "scale": 0.1, "unit": "V", "deadband": 2.0},
        "| `t.volts_v` | input (FC4) | 4 | 5 | uint16 | ×0.1 V | 2 V |  |  |",
    ),
    (
        {"signal": "t.temp_c", "table": "input", "address": 5, "type": "int16", "scale": 0.1, "offset": -40,
         "unit": "°C", "deadband": 0.5},
        "| `t.temp_c` | input (FC4) | 5 | 6 | int16 | ×0.1 -40 °C | 0.5 °C |  |  |",
    ),
    (
        {"signal": "t.count", "table": "input", "address": 2, "type": "uint32"},
        "| `t.count` | input (FC4) | 2-3 | 3-4 | uint32, high word first |  |  |  |  |",
    ),
    (
        {"signal": "t.energy", "table": "holding", "address": 10, "type": "float32", "word_order": "little"},
        "| `t.energy` | holding (FC3) | 10-11 | 11-12 | float32, low word first |  |  |  |  |",
    ),
    (
        {"signal": "t.text", "table": "input", "address": 7, "description": "a | b\nsecond  line"},
        "| `t.text` | input (FC4) | 7 | 8 | uint16 |  |  |  | a \\| b second line |",
    ),
]


@pytest.mark.parametrize(("point", "row"), ROWS, ids=[p["signal"] for p, _ in ROWS])
def test_render_one_point(point: dict[str, Any], row: str) -> None:
    assert render_register_table(_tiny(point)) == HEADER + row + "\n"


def test_render_keeps_file_order_and_ends_with_a_newline() -> None:
    table = render_register_table(_tiny(*(p for p, _ in ROWS)))
    assert table == HEADER + "".join(row + "\n" for _, row in ROWS)


def test_replace_and_extract_round_trip() -> None:
    page = f"# t\n\n{BEGIN_MARKER}\nstale\n{END_MARKER}\n\nafter\n"
    table = render_register_table(_tiny(ROWS[0][0]))
    fresh = replace_register_table(page, table)
    assert fresh == f"# t\n\n{BEGIN_MARKER}\n{table}{END_MARKER}\n\nafter\n"
    assert extract_register_table(fresh) == table
    with pytest.raises(ValueError, match="register-table"):
        replace_register_table("# no markers\n", table)


def test_main_prints_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lv-bench"]) == 0
    assert capsys.readouterr().out == render_register_table(_modbus("lv-bench"))


def test_main_refuses_a_serial_profile_and_an_unknown_name(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cpr-manikin"]) == 2
    assert "manikin-protocol.md" in capsys.readouterr().err
    assert main(["no-such-device"]) == 2
    assert "known profiles" in capsys.readouterr().err
