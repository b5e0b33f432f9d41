"""Is there room for 3 years of evidence at the site's planned volume and its cameras' bitrates?

3 years because 104号 Art. 17 keeps the whole exam's video that long (STANDARD.md). The volume:

    3 years = attempts_per_day x exam_days_per_year x 3 x minutes_per_attempt x 60
              x (mean over stations of the summed bitrate of the station's cameras) / 8   bytes

Each attempt is filmed by its own station's cameras, not by every camera of the hall, so the
per-attempt rate is the station's; attempts are taken as spread evenly over the stations. Per
camera the bitrate is, in this order: what the camera check measured in this run (figure
`bitrate_bps`, `bitrate_kbps` or `bitrate_mbps`), else what its recorded segments in the evidence
store average, else DEFAULT_BITRATE_BPS. The room is the free space of the data directory's
filesystem plus the evidence already kept there (it is part of the 3 years, not extra).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select

from station.config import SiteConfig
from station.db import database_path, open_database
from station.db.disk import free_bytes
from station.db.errors import DatabaseError
from station.db.models import EvidenceSegment
from station.site_check.report import Check, CheckContext, Figure

DEFAULT_BITRATE_BPS = 2_000_000
DEFAULT_SOURCE = "default 2 Mbit/s: docs/evidence.md, Storage arithmetic (720p at 10-15 fps is clear at 1-2 Mbit/s)"
YEARS = 3
_UNITS = {"bitrate_bps": 1.0, "bitrate_kbps": 1e3, "bitrate_mbps": 1e6}


@dataclass(frozen=True, slots=True)
class Recorded:
    """What the evidence store already holds: per camera its mean bitrate, and the bytes kept."""

    bitrate_bps: dict[str, float]
    kept_bytes: int


def measured_bitrates(earlier: Sequence[Check]) -> dict[str, float]:
    """Bitrates the camera check measured in this run, keyed `{station}/{camera}`."""
    out: dict[str, float] = {}
    for c in earlier:
        if c.category != "camera" or c.station is None or c.subject is None:
            continue
        for name, unit in _UNITS.items():
            value = c.figures.get(name)
            if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
                out[f"{c.station}/{c.subject}"] = float(value) * unit
    return out


def recorded(data_dir: Path) -> Recorded:
    """The evidence store's own figures (empty when there is no database yet)."""
    path = database_path(data_dir)
    if not path.is_file():
        return Recorded({}, 0)
    seconds = (func.sum(EvidenceSegment.end_utc_ns - EvidenceSegment.start_utc_ns) / 1e9)
    try:
        with open_database(path, read_only=True) as db, db.read() as session:
            rows = session.execute(
                select(EvidenceSegment.station, EvidenceSegment.camera, func.sum(EvidenceSegment.size_bytes), seconds)
                .where(EvidenceSegment.deleted_utc_ns.is_(None))
                .group_by(EvidenceSegment.station, EvidenceSegment.camera)).all()
    except DatabaseError:
        return Recorded({}, 0)  # the database check says what is wrong with it
    rates = {f"{st}/{cam}": float(size) * 8 / float(secs) for st, cam, size, secs in rows if secs and secs > 0}
    return Recorded(rates, int(sum(size or 0 for _, _, size, _ in rows)))


def planned_bytes(config: SiteConfig, rates: Mapping[str, float]) -> float:
    """Bytes of 3 years of evidence (see the module docstring); `rates` per `{station}/{camera}`."""
    a = config.acceptance
    per_station = [sum(rates[f"{st.id}/{cam.id}"] for cam in st.cameras) for st in config.stations]
    mean_bps = sum(per_station) / len(per_station)
    return a.attempts_per_day * a.exam_days_per_year * YEARS * a.minutes_per_attempt * 60 * mean_bps / 8


def _existing(folder: Path) -> Path:
    """The data directory, or its nearest existing parent before the first run (same filesystem)."""
    for p in (folder, *folder.absolute().parents):
        if p.exists():
            return p
    return Path("/")


async def check_disk(ctx: CheckContext, earlier: Sequence[Check] = ()) -> list[Check]:
    """One Check `disk`: free space (plus evidence kept) against 3 years at the planned volume."""
    measured = measured_bitrates(earlier)
    store = await asyncio.to_thread(recorded, ctx.data_dir)
    rates: dict[str, float] = {}
    sources: dict[str, int] = {"measured": 0, "recorded": 0, "default": 0}
    for st in ctx.config.stations:
        for cam in st.cameras:
            key = f"{st.id}/{cam.id}"
            if key in measured:
                rates[key], kind = measured[key], "measured"
            elif key in store.bitrate_bps:
                rates[key], kind = store.bitrate_bps[key], "recorded"
            else:
                rates[key], kind = DEFAULT_BITRATE_BPS, "default"
            sources[kind] += 1
    need = planned_bytes(ctx.config, rates)
    where = _existing(ctx.data_dir)
    free = free_bytes(where)
    a = ctx.config.acceptance
    figures: dict[str, Figure] = {
        "free_gb": None if free is None else round(free / 1e9, 3), "kept_evidence_gb": round(store.kept_bytes / 1e9, 3),
        "needed_gb": round(need / 1e9, 3), "cameras": len(rates),
        "mean_bitrate_mbps": round(sum(rates.values()) / len(rates) / 1e6, 3),
        "bitrates_measured": sources["measured"], "bitrates_recorded": sources["recorded"],
        "bitrates_default": sources["default"], "attempts_per_day": a.attempts_per_day,
        "exam_days_per_year": a.exam_days_per_year, "minutes_per_attempt": a.minutes_per_attempt, "years": YEARS}
    how = (f"{a.attempts_per_day} attempts/day x {a.exam_days_per_year} days x {YEARS} years x "
           f"{a.minutes_per_attempt:g} min at {figures['mean_bitrate_mbps']} Mbit/s per camera over "
           f"{len(rates)} cameras "
           f"(bitrates: {sources['measured']} measured, {sources['recorded']} from recorded segments, "
           f"{sources['default']} at the {DEFAULT_SOURCE})")
    title = f"room for {YEARS} years of evidence under {ctx.data_dir}"
    if free is None:
        return [Check(id="disk", category="disk", title=title, passed=False, figures=figures,
                      detail=f"cannot read the free space of {where}", fix="check that the data directory "
                      "(storage.data_dir) is on a mounted, readable filesystem")]
    room = free + store.kept_bytes
    detail = (f"{room / 1e9:.1f} GB ({free / 1e9:.1f} GB free on the filesystem of {where} + "
              f"{store.kept_bytes / 1e9:.1f} GB of evidence kept) against {need / 1e9:.1f} GB needed: {how}")
    if room >= need:
        return [Check(id="disk", category="disk", title=title, passed=True, detail=detail, figures=figures)]
    return [Check(id="disk", category="disk", title=title, passed=False, detail=detail, figures=figures,
                  fix=f"give the data directory a filesystem with at least {(need - room) / 1e9:.1f} GB more "
                      "(a NAS or an array: docs/evidence.md), lower the cameras' bitrate, or correct the planned "
                      "volume under acceptance: in the site config")]
