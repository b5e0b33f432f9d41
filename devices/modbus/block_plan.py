"""Plan the fewest block reads that cover a profile's points.

Each Modbus request costs a round trip (and on RS-485 a 3.5-character silence), so adjacent and
nearby points are read in one request, as long as the request stays within the protocol's limit
(125 registers, 2000 bits) and the hole it reads over is no wider than the profile's `max_gap`
(some devices reject reads of unmapped addresses: their profile sets max_gap 0).
"""

from __future__ import annotations

from dataclasses import dataclass

from devices.profile import ModbusProfile, RegisterPoint, Table

MAX_REGISTERS_PER_READ = 125
"""Modbus Application Protocol v1.1b3, 6.3/6.4: read holding/input registers, 1..125."""
MAX_BITS_PER_READ = 2000
"""Modbus Application Protocol v1.1b3, 6.1/6.2: read coils/discrete inputs, 1..2000."""

FUNCTION_CODE: dict[Table, int] = {"coil": 1, "discrete": 2, "holding": 3, "input": 4}


@dataclass(frozen=True, slots=True)
class Block:
    """One read request: `count` entries of `table` starting at `start`, and the points inside."""

    table: Table
    start: int
    count: int
    points: tuple[RegisterPoint, ...]

    @property
    def function_code(self) -> int:
        return FUNCTION_CODE[self.table]


def limit_for(table: Table) -> int:
    """The most entries one request may read from `table`."""
    return MAX_BITS_PER_READ if table in ("coil", "discrete") else MAX_REGISTERS_PER_READ


def plan_blocks(profile: ModbusProfile, max_gap: int | None = None) -> tuple[Block, ...]:
    """Group the profile's points into reads; deterministic order (by table, then address)."""
    gap = profile.max_gap if max_gap is None else max_gap
    blocks: list[Block] = []
    for table in ("coil", "discrete", "holding", "input"):
        points = sorted((p for p in profile.points if p.table == table), key=lambda p: (p.address, p.bit or 0))
        if not points:
            continue
        limit = limit_for(table)
        start = points[0].address
        end = start + points[0].words
        members = [points[0]]
        for p in points[1:]:
            p_end = p.address + p.words
            new_end = max(end, p_end)
            if p.address - end <= gap and new_end - start <= limit:
                end = new_end
                members.append(p)
                continue
            blocks.append(Block(table, start, end - start, tuple(members)))
            start, end, members = p.address, p_end, [p]
        blocks.append(Block(table, start, end - start, tuple(members)))
    return tuple(blocks)
