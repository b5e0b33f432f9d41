"""bench/modbus_poll.py: the wire limit it divides by, checked against a hand count.

The benchmark itself needs sockets and ptys and ~30 s; here only its pure arithmetic is checked,
so a wrong limit cannot make a slow stack look efficient.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from devices.modbus.block_plan import Block, plan_blocks
from devices.profile import ModbusProfile, load_profile

BENCH = Path(__file__).resolve().parents[2] / "bench" / "modbus_poll.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_modbus_poll", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


def test_response_bytes_follow_the_rtu_frame_layout(bench: ModuleType) -> None:
    assert bench.rtu_response_bytes(Block("input", 0, 10, ())) == 5 + 20
    assert bench.rtu_response_bytes(Block("discrete", 0, 2, ())) == 5 + 1
    assert bench.rtu_response_bytes(Block("coil", 0, 9, ())) == 5 + 2


def test_weld_sim_wire_limit_matches_a_hand_count(bench: ModuleType) -> None:
    profile = load_profile("weld-sim")
    assert isinstance(profile, ModbusProfile)
    blocks = plan_blocks(profile)
    assert [(b.function_code, b.count) for b in blocks] == [(4, 11)]
    # One request of 8 bytes and an answer of 5 + 22 bytes, each frame plus 3.5 characters of
    # silence: 42 characters of 11 bits at 115200 baud carry one transaction.
    chars = (8 + 3.5) + (27 + 3.5)
    assert bench.rtu_limit_tps(blocks, 115200) == pytest.approx(1 / (chars * 11 / 115200))
    assert bench.rtu_limit_tps(blocks, 115200) == pytest.approx(249.35, abs=0.01)
