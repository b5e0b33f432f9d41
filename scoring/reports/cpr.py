"""The QCPR-style CPR report: every compression and breath against the guideline band.

Laerdal QCPR is the model (STANDARD.md): the examiner and the candidate see each compression's
depth, rate, recoil and hand position, each breath's volume and duration, per-set timing and a
summary of the shares inside the band, not only the deductions. Grading here is against the
guideline (depth 50-60 mm, 100-120/min, 500-600 ml over 1 s, 30 in 15-18 s) whatever a province's
rubric deducts for, and uses the same segmentation as the detectors (`scoring.detectors.cpr`).
Floats are rounded (1 decimal; the rhythm CV 3, so it can be read against 0.15) so that the
report, like the sheet it sits in, is byte-stable on replay.
"""

from __future__ import annotations

import math
import statistics
from typing import Any

from scoring.detectors.base import ItemView
from scoring.detectors.cpr import BreathParams, breath_ok, segment

DEPTH_MM = (50, 60)
RATE_PER_MIN = (100, 120)
VOLUME_ML = (500, 600)
SET_S = (15, 18)
PER_SET = 30
BREATHS_PER_CYCLE = 2
GAP_S = 2.0
_BREATH = BreathParams(min_ml=VOLUME_ML[0], max_ml=VOLUME_ML[1], min_duration_ms=1000)


def _round(x: float | None, digits: int = 1) -> float | None:
    """Rounded for a stable report; None when not measurable (no interval, or one of 0 ms)."""
    return None if x is None or not math.isfinite(x) else round(x, digits) + 0.0  # + 0.0: never -0.0


def _pct(k: int, n: int) -> float | None:
    return round(100 * k / n, 1) if n else None


def _in(x: float | None, band: tuple[int, int]) -> bool | None:
    return None if x is None else band[0] <= x <= band[1]


def cpr_report(view: ItemView) -> dict[str, Any]:
    """Per-compression, per-breath and per-set data with a summary (empty lists if nothing came)."""
    session = segment(view, GAP_S)
    origin_ms = session.compressions[0].clock_ms if session.compressions else 0.0
    compressions: list[dict[str, Any]] = []
    sets: list[dict[str, Any]] = []
    cycle_of: dict[int, int] = {}
    for s in session.sets:
        for prev, c in zip((None, *s.compressions), s.compressions, strict=False):
            interval_ms = c.clock_ms - prev.clock_ms if prev is not None else 0.0
            rate = 60_000 / interval_ms if interval_ms > 0 else None
            depth_ok = _in(c.depth_mm, DEPTH_MM)
            compressions.append({
                "n": c.n, "set": s.n, "t_s": _round((c.clock_ms - origin_ms) / 1000), "depth_mm": _round(c.depth_mm),
                "rate_per_min": _round(rate), "recoil_ok": c.recoil_ok, "hand_zone": c.hand_zone,
                "depth_ok": depth_ok, "rate_ok": _in(rate, RATE_PER_MIN),
            })
        sets.append({
            "n": s.n, "compressions": len(s.compressions), "duration_s": _round(s.duration_s(PER_SET)),
            "mean_rate_per_min": _round(s.mean_rate_per_min()),
            "mean_depth_mm": _round(statistics.fmean(c.depth_mm for c in s.compressions)),
            "cv": _round(s.cv(), 3),
        })
        cycle_of.update((b.n, s.n) for b in s.breaths_after)
    breaths = [{"n": b.n, "cycle": cycle_of.get(b.n), "volume_ml": _round(b.volume_ml),
                "duration_ms": _round(b.duration_ms), "ok": breath_ok(b, _BREATH)} for b in session.breaths]
    intervals = [iv for s in session.sets for iv in s.intervals_ms()]
    rated = [c for c in compressions if c["rate_ok"] is not None]
    n = len(compressions)
    summary = {
        "compressions": n,
        "depth_ok_pct": _pct(sum(c["depth_ok"] is True for c in compressions), n),
        "recoil_ok_pct": _pct(sum(c["recoil_ok"] is True for c in compressions), n),
        "hand_ok_pct": _pct(sum(c["hand_zone"] == "correct" for c in compressions), n),
        "rate_ok_pct": _pct(sum(c["rate_ok"] is True for c in rated), len(rated)),
        "mean_depth_mm": _round(statistics.fmean(c.depth_mm for c in session.compressions)) if n else None,
        "mean_rate_per_min": _round(60_000 * len(intervals) / sum(intervals)) if sum(intervals) > 0 else None,
        "cycles": session.cycles(PER_SET, BREATHS_PER_CYCLE),
        "breaths_ok": sum(b["ok"] is True for b in breaths),
        "breaths": len(breaths),
    }
    guideline = {"depth_mm": list(DEPTH_MM), "rate_per_min": list(RATE_PER_MIN), "volume_ml": list(VOLUME_ML),
                 "set_s": list(SET_S)}
    return {"compressions": compressions, "breaths": breaths, "sets": sets, "summary": summary,
            "guideline": guideline}
