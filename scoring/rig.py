"""What an item reads of its rig, and whether the rig was at rest when the item started.

The engine and the station ask the same questions: which signals (and so which devices) a sheet
depends on, for device gaps and for refusing to start an item whose device is down; and how the
rig differed from the item's declared rest state, which the station checks before the start and
the sheet shows afterwards (from the values recorded just before the item started).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import scoring.detectors  # noqa: F401  - registers every detector
from scoring.condition import SignalUse
from scoring.detectors.base import REGISTRY
from scoring.rubric import Item
from scoring.sheet import RestDeviation
from scoring.timeline import Value


def item_reads(item: Item) -> dict[str, tuple[SignalUse, ...]]:
    """What each automatic deduction and veto of the item reads, by code; the rest state under `rest`."""
    out: dict[str, tuple[SignalUse, ...]] = {}
    for row in item.rows:
        for d in row.deductions:
            if d.detector is not None:
                out[d.code] = REGISTRY[d.detector.name].reads(d.detector.params)
    for v in item.vetoes:
        if v.detector is not None:
            out[v.code] = REGISTRY[v.detector.name].reads(v.detector.params)
    out["rest"] = tuple(r.condition.use() for r in item.rest)
    return out


def signals_read(item: Item) -> frozenset[str]:
    """Every signal the item's sheet or rest state depends on."""
    return frozenset(u.signal for uses in item_reads(item).values() for u in uses)


def rest_deviations(item: Item, value_of: Callable[[str], Value | None]) -> tuple[RestDeviation, ...]:
    """The rest conditions the rig does not meet, given each signal's value at the start. A signal
    with no value yet is at rest: devices report on change, from their power-on state (a manikin
    nobody has touched sends no state frame)."""
    out = []
    for rest in item.rest:
        c = rest.condition
        value = value_of(c.signal)
        if value is None or c.holds(value):
            continue
        shown = value.get(c.field) if c.field is not None and isinstance(value, Mapping) else value
        out.append(RestDeviation(f"{c.signal}.{c.field}" if c.field else c.signal, shown, c.expectation(),
                                 rest.label_zh))
    return tuple(out)
