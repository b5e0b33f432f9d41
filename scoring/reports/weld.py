"""VRTEX-style welding report: each torch parameter traced along the weld against its band.

Virtual-welding trainers (Lincoln VRTEX) show every parameter as a trace over the pass with the
instructor's ideal band drawn behind it and the share of the weld inside it. The bands are the
item's own `band_share` rows, so the picture and the deductions always agree. Traces are cut to
at most `MAX_POINTS` per parameter (held values, evenly spaced in time) so a 10-minute weld at
50 Hz stays a small document.
"""

from __future__ import annotations

from typing import Any

from scoring.detectors.bands import BandParams, band_time
from scoring.detectors.base import ItemView
from scoring.rubric import Item

MAX_POINTS = 200


def _trace(view: ItemView, p: BandParams, windows: list[tuple[int, int]]) -> list[list[float | None]]:
    """[[t_s since item start, value], ...] sampled evenly over the gated (arc-on) time."""
    total = sum(b - a for a, b in windows)
    if total <= 0:
        return []
    s = view.signal(p.signal)
    n = min(MAX_POINTS, max(2, len(s.times) + 1))
    out: list[list[float | None]] = []
    for k in range(n):
        # the k-th point along the concatenated gated windows
        pos = total * k / (n - 1)
        for a, b in windows:
            if pos <= b - a:
                t = a + int(pos)
                break
            pos -= b - a
        else:
            t = windows[-1][1]
        v = s.value_at(t)
        number = float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None
        out.append([round((t - view.t_start_ns) / 1e9, 2), None if number is None else round(number, 2)])
    return out


def weld_report(view: ItemView, item: Item) -> dict[str, Any]:
    parameters = []
    gated_total = 0
    for row in item.rows:
        for d in row.deductions:
            if d.detector is None or d.detector.name != "band_share":
                continue
            p = d.detector.params
            assert isinstance(p, BandParams)
            gated, outside, _ = band_time(p, view)
            gated_total = max(gated_total, gated)
            windows = view.occurrences(p.gate) if p.gate else [(view.t_start_ns, view.t_end_ns)]
            share_in = (gated - outside) / gated if gated else 0.0
            parameters.append({
                "signal": p.signal,
                "row": row.code,
                "deduction": d.code,
                "reason_zh": d.reason_zh,
                "band": [p.min, p.max],
                "weight_points": d.points,
                "in_band_pct": round(100 * share_in, 1),
                "points_kept": round(d.points * share_in, 2),
                "trace": _trace(view, p, windows),
            })
    return {"arc_time_s": round(gated_total / 1e9, 2), "parameters": parameters, "max_points": MAX_POINTS}
