"""Welding traces of a stored attempt (VRTEX style): each torch parameter over time against its band.

Why the bands come from the rubric: every parameter the weld items score is a `band_share` row
(signal, min, max, gated by the arc), and the time outside the band is what that row deducts for.
Drawing the same numbers, and measuring the time outside with the same function the detector uses
(`scoring.detectors.bands.band_time`), means the chart and the deduction can never disagree.
The other numeric weld signals of the item (current, voltage, wire feed, gas flow) are traced too,
without a band, because an examiner reading a bad pass looks at them next.

`weld_report(services, attempt_id)` reads the stored timeline; `weld_item_report(item, view)` is pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from scoring.detectors.bands import BandParams, band_time
from scoring.detectors.base import ItemView, Series
from scoring.rubric import Item
from station.cpr_report import stored_item_views
from station.services import StationServices

MAX_POINTS = 2000
"""Points per trace sent to the browser; a longer trace keeps each stretch's first, lowest, highest
and last value, so a spike outside the band is never dropped from the picture."""
PREFIXES = ("weld.", "weldsim.")
UNITS = (("_mm_s", "mm/s"), ("_deg", "°"), ("_mm", "mm"), ("_a", "A"), ("_v", "V"), ("_m_min", "m/min"),
         ("_l_min", "L/min"), ("_pct", "%"))


def unit_of(signal: str) -> str:
    return next((unit for suffix, unit in UNITS if signal.endswith(suffix)), "")


def _number(v: object, field: str | None) -> float | None:
    if field is not None:
        v = v.get(field) if isinstance(v, Mapping) else None
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    return float(v)


def _thin(points: list[list[float | None]]) -> list[list[float | None]]:
    """At most about MAX_POINTS points: per stretch its first, lowest, highest and last, in time order."""
    if len(points) <= MAX_POINTS:
        return points
    size = -(-len(points) * 4 // MAX_POINTS)
    out: list[list[float | None]] = []
    for k in range(0, len(points), size):
        chunk = points[k:k + size]
        valued = [p for p in chunk if p[1] is not None]
        keep = {id(chunk[0]): chunk[0], id(chunk[-1]): chunk[-1]}
        if valued:
            for p in (min(valued, key=lambda p: p[1] or 0.0), max(valued, key=lambda p: p[1] or 0.0)):
                keep[id(p)] = p
        out.extend(sorted(keep.values(), key=lambda p: p[0] or 0.0))
    return out


def trace(view: ItemView, series: Series, field: str | None = None) -> list[list[float | None]]:
    """[[seconds since the item started, value], ...]: the value held at the start, every change, and
    the value still held at the end (draw it as a step line: a device reports on change)."""
    def at(t_ns: int) -> float:
        return round((t_ns - view.t_start_ns) / 1e9, 3)

    def value(v: object) -> float | None:
        x = _number(v, field)
        return None if x is None else round(x, 3)

    points: list[list[float | None]] = []
    if series.initial is not None:
        points.append([0.0, value(series.initial)])
    points.extend([at(t), value(v)] for t, v in zip(series.times, series.values, strict=True))
    if points:
        points.append([at(view.t_end_ns), points[-1][1]])
    return _thin(points)


def _seconds(ns: int) -> float:
    return round(ns / 1e9, 2)


def weld_item_report(item: Item, view: ItemView) -> dict[str, Any]:
    """Each banded parameter with its trace, band, gate windows and time outside; then the other
    numeric weld signals without a band; pure."""
    parameters: list[dict[str, Any]] = []
    banded: set[str] = set()
    for row in item.rows:
        for d in row.deductions:
            p = d.detector.params if d.detector else None
            if not isinstance(p, BandParams):
                continue
            banded.add(p.signal)
            gated, outside, intervals = band_time(p, view)
            windows = view.occurrences(p.gate) if p.gate else [(view.t_start_ns, view.t_end_ns)]
            values = [x for t, v in view.events(p.signal) if (x := _number(v, p.field)) is not None
                      and any(a <= t < b for a, b in windows)]
            held = _number(view.signal(p.signal).value_at(windows[0][0]), p.field) if windows else None
            values += [held] if held is not None else []
            parameters.append({
                "signal": p.signal, "field": p.field, "label_zh": row.title_zh, "unit": unit_of(p.field or p.signal),
                "row": row.code, "deduction": d.code, "reason_zh": d.reason_zh, "points": d.points,
                "band": {"low": p.min, "high": p.max},
                "gate": p.gate.describe() if p.gate else None,
                "gate_windows": [[_seconds(a - view.t_start_ns), _seconds(b - view.t_start_ns)] for a, b in windows],
                "gated_s": _seconds(gated), "outside_s": _seconds(outside),
                "in_band_pct": round(100 * (gated - outside) / gated, 1) if gated else None,
                "outside": [[_seconds(a - view.t_start_ns), _seconds(b - view.t_start_ns)] for a, b in intervals],
                "min": round(min(values), 2) if values else None, "max": round(max(values), 2) if values else None,
                "trace": trace(view, view.signal(p.signal), p.field),
            })
    others = []
    for name in sorted(view.series):
        s = view.series[name]
        if name in banded or not name.startswith(PREFIXES) or not s.times:
            continue
        if all(_number(v, None) is None for v in (*s.values, s.initial) if v is not None):
            continue  # a switch or a state: shown elsewhere, not a trace
        others.append({"signal": name, "unit": unit_of(name), "trace": trace(view, s)})
    arc = max((p["gated_s"] for p in parameters), default=0.0)
    return {
        "item": item.code, "title_zh": item.title_zh, "end_reason": view.end_reason,
        "duration_s": _seconds(view.t_end_ns - view.t_start_ns),
        "parameters": parameters, "signals": others,
        "summary": {
            "arc_s": arc,
            "parameters": len(parameters),
            "all_in_band": sum(p["outside_s"] == 0 and p["gated_s"] > 0 for p in parameters),
            "worst": min(parameters, key=lambda p: p["in_band_pct"] if p["in_band_pct"] is not None else -1.0,
                         default={}).get("signal"),
        },
    }


def weld_report(services: StationServices, attempt_id: str) -> dict[str, Any]:
    """The attempt's welding traces: its heading and one report per weld item it started. Raises
    station.cpr_report.ReportNotFound (no such attempt, no weld item drawn) or ServiceError."""
    head, views = stored_item_views(services, attempt_id, "weld")
    return {**head, "items": [weld_item_report(item, view) for item, view in views]}
