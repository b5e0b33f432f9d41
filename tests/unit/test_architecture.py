"""The package rules of DESIGN.md, checked on the source: who may import whom."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
IO_MODULES = {"asyncio", "socket", "sqlite3", "sqlalchemy", "aiosqlite", "cv2", "av", "serial", "pymodbus",
              "aiomqtt", "paho", "threading", "time", "select", "selectors", "subprocess", "urllib", "http"}


def imports_of(package: str) -> dict[str, set[str]]:
    """Module path -> every module name it imports (top-level and inside functions)."""
    out: dict[str, set[str]] = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
        out[str(path.relative_to(ROOT))] = names
    return out


def roots(names: set[str]) -> set[str]:
    return {n.split(".")[0] for n in names}


def test_scoring_is_pure() -> None:
    for module, names in imports_of("scoring").items():
        bad = roots(names) & IO_MODULES
        assert not bad, f"{module} imports {bad}: scoring takes time and data as arguments, it does no IO"
        assert not roots(names) & {"devices", "station", "hardware_sim", "proctor_ui"}, module


def test_session_state_machine_is_pure() -> None:
    names = imports_of("station")["station/session.py"]
    assert not roots(names) & IO_MODULES, names
    assert not roots(names) & {"devices", "hardware_sim", "proctor_ui"}, names


def test_devices_never_reach_up() -> None:
    for module, names in imports_of("devices").items():
        assert not roots(names) & {"station", "scoring", "hardware_sim", "proctor_ui"}, module


def test_production_code_never_imports_the_simulator() -> None:
    # cli imports station.demo lazily, for sim/demo only; the scenario runner drives the simulator
    allowed = {"station/demo.py", "station/cli.py", "station/scenario_runner.py"}
    for package in ("station", "devices", "scoring", "proctor_ui"):
        for module, names in imports_of(package).items():
            if module in allowed:
                continue
            assert "hardware_sim" not in roots(names), f"{module} imports hardware_sim"
            assert not names & {"station.demo", "station.scenario_runner"}, f"{module} imports the rehearsal code"


def test_simulator_uses_codecs_not_clients() -> None:
    clients = {"devices.modbus.link", "devices.modbus.poller", "devices.serial.manikin_reader",
               "devices.serial.id_card_reader", "station.device_hub"}
    for module, names in imports_of("hardware_sim").items():
        assert not names & clients, f"{module} imports a production client: {names & clients}"
        # the MQTT contract (topics, schemas) is shared with the simulated province; clients are not
        shared = {"station.config", "station.uplink.contract"}
        assert not {n for n in names if n.startswith("station.")} - shared, module
