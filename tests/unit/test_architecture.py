"""The package rules of DESIGN.md, checked on the source: who may import whom."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
IO_MODULES = {"asyncio", "socket", "sqlite3", "sqlalchemy", "aiosqlite", "cv2", "av", "serial", "pymodbus",
              "aiomqtt", "paho", "threading", "time", "select", "selectors", "subprocess", "urllib", "http"}


def imports_of(package: str) -> dict[str, set[str]]:
    """Module path -> every module name it imports (top-level and inside functions), relative imports
    (`from .x import y`, `from .. import z`) resolved to absolute names."""
    out: dict[str, set[str]] = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        names: set[str] = set()
        here = list(path.relative_to(ROOT).with_suffix("").parts)[:-1]  # the package the module is in
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level == 0:
                    names.add(node.module or "")
                    continue
                base = here[: len(here) - (node.level - 1)] if node.level > 1 else here
                if node.module:
                    names.add(".".join([*base, node.module]))
                else:
                    names.update(".".join([*base, a.name]) for a in node.names)
        out[str(path.relative_to(ROOT))] = names
    return out


def test_relative_imports_are_resolved(tmp_path: Path) -> None:
    """The checks below would miss `from ..station import x` if relative imports were skipped."""
    assert imports_of("tests/unit") != {}
    module = ROOT / "hardware_sim" / "_architecture_probe.py"
    try:
        module.write_text("from ..station import services\nfrom . import province\nfrom .jcs import dumps\n")
        names = imports_of("hardware_sim")["hardware_sim/_architecture_probe.py"]
    finally:
        module.unlink()
    assert names == {"station", "hardware_sim.province", "hardware_sim.jcs"}


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
    # cli imports station.demo lazily, for sim/demo only; the scenario runner and the demo hall drive
    # the simulator
    allowed = {"station/demo.py", "station/cli.py", "station/scenario_runner.py", "station/demo_hall.py",
               "station/sim_hall.py"}
    for package in ("station", "devices", "scoring", "proctor_ui"):
        for module, names in imports_of(package).items():
            if module in allowed:
                continue
            assert "hardware_sim" not in roots(names), f"{module} imports hardware_sim"
            assert not names & {"station.demo", "station.scenario_runner", "station.demo_hall", "station.sim_hall"}, \
                f"{module} imports the rehearsal code"


def test_simulator_uses_codecs_not_clients() -> None:
    clients = {"devices.modbus.link", "devices.modbus.poller", "devices.serial.manikin_reader",
               "devices.serial.id_card_reader", "station.device_hub"}
    for module, names in imports_of("hardware_sim").items():
        assert not names & clients, f"{module} imports a production client: {names & clients}"
        # the simulated site is built from the site config; nothing else of the station is shared (the
        # simulated province follows the contract in docs/, with its own code: test_province_independent)
        assert not {n for n in names if n.startswith("station.")} - {"station.config"}, module
