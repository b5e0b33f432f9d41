"""The block planner merges nearby points into few reads and never breaks the protocol limits."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from devices.modbus.block_plan import MAX_BITS_PER_READ, MAX_REGISTERS_PER_READ, plan_blocks
from devices.profile import ModbusProfile, RegisterPoint, load_profile


def profile_of(points: list[RegisterPoint], max_gap: int = 8) -> ModbusProfile:
    return ModbusProfile(protocol="modbus", profile="t", title_zh="测试", vendor="t", source="test",
                         max_gap=max_gap, points=tuple(points))


def reg(i: int, address: int, type_: str = "uint16", table: str = "holding") -> RegisterPoint:
    return RegisterPoint(signal=f"t.p{i}", table=table, address=address, type=type_)  # type: ignore[arg-type]


def test_bench_profile_is_three_reads() -> None:
    profile = load_profile("lv-bench")
    assert isinstance(profile, ModbusProfile)
    blocks = plan_blocks(profile)
    assert [(b.table, b.start, b.count) for b in blocks] == [("discrete", 0, 13), ("holding", 100, 5), ("input", 0, 11)]


def test_gap_rule() -> None:
    points = [reg(0, 0), reg(1, 5), reg(2, 30, "uint32")]
    assert [(b.start, b.count) for b in plan_blocks(profile_of(points), max_gap=8)] == [(0, 6), (30, 2)]
    assert [(b.start, b.count) for b in plan_blocks(profile_of(points), max_gap=0)] == [(0, 1), (5, 1), (30, 2)]
    assert [(b.start, b.count) for b in plan_blocks(profile_of(points), max_gap=30)] == [(0, 32)]


def test_register_limit_splits_reads() -> None:
    points = [reg(i, i * 10) for i in range(30)]  # spans 291 registers
    blocks = plan_blocks(profile_of(points, max_gap=20))
    assert all(b.count <= MAX_REGISTERS_PER_READ for b in blocks)
    assert len(blocks) == 3


@given(st.lists(st.tuples(st.integers(0, 3000), st.sampled_from(["uint16", "uint32", "bool"])),
                min_size=1, max_size=60, unique_by=lambda t: t[0] // 2),
       st.integers(0, 50), st.sampled_from(["holding", "discrete"]))
def test_plan_covers_every_point_within_limits(spec: list[tuple[int, str]], gap: int, table: str) -> None:
    points = [reg(i, (a // 2) * 2, "bool" if table == "discrete" else t, table) for i, (a, t) in enumerate(spec)]
    blocks = plan_blocks(profile_of(points, max_gap=gap))
    limit = MAX_BITS_PER_READ if table == "discrete" else MAX_REGISTERS_PER_READ
    covered = {p.signal for b in blocks for p in b.points}
    assert covered == {p.signal for p in points}
    for b in blocks:
        assert 1 <= b.count <= limit
        for p in b.points:
            assert b.start <= p.address and p.address + p.words <= b.start + b.count
